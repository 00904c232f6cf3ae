//! `/v1/coordinate/*`: network coordinates (Consul's `agent/coordinate_endpoint.go`).
//!
//! LAN coordinates are catalog data (read through the backend like any catalog read, with
//! blocking queries); WAN coordinates come from the servers' WAN gossip pool, so they are
//! neither blocking nor consistent. With `disable_coordinates` every route answers 401.

use axum::body::Body;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode};

use super::{decode, read_body, St, MAX_BODY};
use crate::params::Params;
use crate::reply::{self, Reply};
use crate::Backend;
use proconsul_types::{
    CoordinateEntry, CoordinateNode, CoordinateNodes, CoordinateUpdateRequest, WriteRequest,
};

fn disabled() -> Reply {
    reply::text(StatusCode::UNAUTHORIZED, "Coordinate support disabled")
}

/// `?segment=x` keeps only that segment's coordinates (Consul's `filterCoordinates`).
fn filter_segment(p: &Params, mut rows: Vec<CoordinateEntry>) -> Vec<CoordinateEntry> {
    if let Some(seg) = p.get("segment") {
        rows.retain(|c| c.segment == seg);
    }
    rows
}

pub async fn datacenters<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    if st.coordinates_disabled() {
        return disabled();
    }
    let p = Params::parse(q.as_deref());
    reply::or_error(
        st.coordinate_datacenters()
            .await
            .map(|d| reply::json(&d, p.pretty())),
    )
}

pub async fn nodes<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    if st.coordinates_disabled() {
        return disabled();
    }
    reply::or_error(
        async {
            let p = Params::parse(q.as_deref());
            let opts = p.query_options()?;
            let (meta, rows) = st.query(CoordinateNodes {}, opts).await?;
            Ok(reply::json_meta(
                &filter_segment(&p, rows),
                &meta,
                p.pretty(),
            ))
        }
        .await,
    )
}

pub async fn node<B: Backend>(st: St<B>, Path(node): Path<String>, RawQuery(q): RawQuery) -> Reply {
    if st.coordinates_disabled() {
        return disabled();
    }
    reply::or_error(
        async {
            let p = Params::parse(q.as_deref());
            let opts = p.query_options()?;
            let (meta, rows) = st.query(CoordinateNode { node }, opts).await?;
            let rows = filter_segment(&p, rows);
            if rows.is_empty() {
                // Consul: a bare 404 that still carries the query meta.
                let mut r = reply::text(StatusCode::NOT_FOUND, "");
                reply::add_meta(&mut r, &meta);
                return Ok(r);
            }
            Ok(reply::json_meta(&rows, &meta, p.pretty()))
        }
        .await,
    )
}

pub async fn update<B: Backend>(
    st: St<B>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    if st.coordinates_disabled() {
        return disabled();
    }
    reply::or_error(
        async {
            let p = Params::parse(q.as_deref());
            let body = read_body(&headers, body, MAX_BODY).await?;
            let req: CoordinateUpdateRequest = decode(&body)?;
            let dc = p.get("dc").unwrap_or("").to_string();
            let dc = if dc.is_empty() {
                req.datacenter.clone()
            } else {
                dc
            };
            st.write(WriteRequest::CoordinateUpdate(req), dc).await?;
            Ok(reply::text(StatusCode::OK, ""))
        }
        .await,
    )
}
