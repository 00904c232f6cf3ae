//! `/v1/status/*`: the Raft leader and peers.

use axum::extract::RawQuery;

use super::St;
use crate::params::Params;
use crate::reply::{self, Reply};
use crate::Backend;

pub async fn leader<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        st.status_leader()
            .await
            .map(|l| reply::json(&l, p.pretty())),
    )
}

pub async fn peers<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(st.status_peers().await.map(|l| reply::json(&l, p.pretty())))
}
