//! `?near=`: sort a read's rows by estimated round-trip time from a node (Consul's
//! `sortByDistanceFrom`), from the network coordinates the servers hold. `_agent` means this
//! agent's node. Rows whose node has no coordinate go last; when the node named has none,
//! the order is left as it is.

use std::collections::HashMap;

use proconsul_types::{Coord, CoordinateNodes, QueryOptions, RpcError};

use crate::Backend;

/// Sort `rows` by distance from `near` (no-op when `near` is empty).
pub(crate) async fn sort<B: Backend, T>(
    b: &B,
    near: &str,
    opts: &QueryOptions,
    rows: &mut [T],
    node_of: impl Fn(&T) -> &str,
) -> Result<(), RpcError> {
    if near.is_empty() || rows.len() < 2 {
        return Ok(());
    }
    let near = if near == "_agent" {
        b.node_name()
    } else {
        near.to_string()
    };
    // The coordinates as of now: a blocking read of the rows must not block again here.
    let now = QueryOptions {
        min_index: 0,
        max_wait: None,
        ..opts.clone()
    };
    let (_, entries) = b.query(CoordinateNodes {}, now).await?;
    let coords: HashMap<&str, &Coord> = entries
        .iter()
        .filter(|e| e.segment.is_empty())
        .map(|e| (e.node.as_str(), &e.coord))
        .collect();
    let Some(from) = coords.get(near.as_str()) else {
        return Ok(());
    };
    let distance = |node: &str| {
        coords
            .get(node)
            .and_then(|c| from.distance_secs(c))
            .unwrap_or(f64::INFINITY)
    };
    rows.sort_by(|a, b| distance(node_of(a)).total_cmp(&distance(node_of(b))));
    Ok(())
}
