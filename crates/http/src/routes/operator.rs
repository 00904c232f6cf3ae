//! `/v1/operator/raft/*`: the Raft configuration and removing a peer from it.

use axum::extract::RawQuery;
use axum::http::StatusCode;

use super::St;
use crate::params::Params;
use crate::reply::{self, Reply};
use crate::Backend;
use proconsul_types::RpcError;

pub async fn raft_configuration<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        st.operator_raft_configuration()
            .await
            .map(|c| reply::json(&c, p.pretty())),
    )
}

pub async fn raft_remove_peer<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    let id = p.get("id").unwrap_or("").to_string();
    let address = p.get("address").unwrap_or("").to_string();
    if id.is_empty() == address.is_empty() {
        return reply::or_error(Err(RpcError::BadRequest(
            "Must specify either ?id with the server's ID or ?address with IP:port of peer to remove"
                .into(),
        )));
    }
    reply::or_error(
        st.operator_raft_remove_peer(id, address)
            .await
            .map(|_| reply::text(StatusCode::OK, "")),
    )
}
