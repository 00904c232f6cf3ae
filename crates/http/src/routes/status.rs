//! `/v1/status/*`: the Raft leader and peers.

use std::sync::Arc;

use axum::extract::RawQuery;
use axum::routing::get;
use axum::Router;

use super::St;
use crate::params::Params;
use crate::reply::{self, Reply};
use crate::Backend;
use proconsul_types::{StatusLeader, StatusPeers};

/// The `/v1/status/*` paths.
pub(super) fn routes<B: Backend>() -> Router<Arc<B>> {
    Router::new()
        .route("/v1/status/leader", get(leader::<B>))
        .route("/v1/status/peers", get(peers::<B>))
}

pub async fn leader<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        st.call(StatusLeader {
            datacenter: p.get("dc").unwrap_or("").to_string(),
        })
        .await
        .map(|l| reply::json(&l, p.pretty())),
    )
}

pub async fn peers<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        st.call(StatusPeers {
            datacenter: p.get("dc").unwrap_or("").to_string(),
        })
        .await
        .map(|l| reply::json(&l, p.pretty())),
    )
}
