//! `/v1/status/*`: the Raft leader and peers.

use axum::extract::RawQuery;

use super::St;
use crate::params::Params;
use crate::reply::{self, Reply};
use crate::Backend;
use proconsul_types::{StatusLeader, StatusPeers};

pub async fn leader<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        st.call(StatusLeader {})
            .await
            .map(|l| reply::json(&l, p.pretty())),
    )
}

pub async fn peers<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        st.call(StatusPeers {})
            .await
            .map(|l| reply::json(&l, p.pretty())),
    )
}
