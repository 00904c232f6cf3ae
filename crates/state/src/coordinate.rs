//! LAN network coordinates: one row per (node, segment), written in batches by the leader
//! (Consul's `coordinates` table) and removed with their node.
//!
//! Coordinates change all the time (every agent sends one every 15 s or so), so they never
//! touch the catalog's tables or per-node notifiers: a blocking query on `/v1/catalog/nodes`
//! must not wake for them. They have their own table index and notifier.

use proconsul_types::{Coord, CoordinateEntry};

use crate::command::CoordinateUpdate;
use crate::records::fold;
use crate::store::{Table, Tx};
use crate::view::View;
use crate::watch::WatchSet;

fn to_api(c: &CoordinateUpdate) -> CoordinateEntry {
    CoordinateEntry {
        node: c.node.clone(),
        segment: c.segment.clone(),
        coord: Coord {
            vec: c.vec.clone(),
            error: c.error,
            adjustment: c.adjustment,
            height: c.height,
        },
    }
}

impl Tx {
    /// Consul `CoordinateBatchUpdate`: upsert each valid update whose node is in the catalog;
    /// the table index moves even when every update was skipped, like Consul's.
    pub(crate) fn coordinate_batch_update(&mut self, updates: &[CoordinateUpdate]) {
        for u in updates {
            if !u.is_valid() {
                continue;
            }
            let node = fold(&u.node);
            let Some(n) = self.s.nodes.get(&*node) else {
                continue;
            };
            let row = CoordinateUpdate {
                // The catalog's spelling of the name, whatever case the update used.
                node: n.name.clone(),
                ..u.clone()
            };
            self.s.coordinates.insert((node, fold(&u.segment)), row);
        }
        self.bump_table(Table::Coordinates);
    }

    /// Drop every coordinate of a node being deleted (part of Consul's `deleteNodeTxn`).
    pub(crate) fn delete_node_coordinates(&mut self, folded_node: &str) {
        let keys: Vec<(String, String)> = self
            .s
            .coordinates
            .range((folded_node.to_owned(), String::new())..)
            .take_while(|(k, _)| k.0 == folded_node)
            .map(|(k, _)| k.clone())
            .collect();
        if keys.is_empty() {
            return;
        }
        for k in keys {
            self.s.coordinates.remove(&k);
        }
        self.bump_table(Table::Coordinates);
    }
}

impl View {
    /// Every coordinate, sorted by node then segment. Index: the coordinates table.
    pub fn coordinates(&self, ws: &mut WatchSet) -> (u64, Vec<CoordinateEntry>) {
        self.watch_table(ws, Table::Coordinates);
        let s = self.state();
        (
            s.table_index(Table::Coordinates),
            s.coordinates.values().map(to_api).collect(),
        )
    }

    /// One node's coordinates (any case), one per segment. Index: the coordinates table.
    pub fn node_coordinates(&self, ws: &mut WatchSet, node: &str) -> (u64, Vec<CoordinateEntry>) {
        self.watch_table(ws, Table::Coordinates);
        let s = self.state();
        let key = fold(node);
        let rows = s
            .coordinates
            .range((key.clone(), String::new())..)
            .take_while(|(k, _)| k.0 == key)
            .map(|(_, c)| to_api(c))
            .collect();
        (s.table_index(Table::Coordinates), rows)
    }
}
