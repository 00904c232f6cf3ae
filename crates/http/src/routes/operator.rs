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
        st.operator_raft_configuration(p.has("stale"))
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

/// `GET` lists the keys; `POST` installs, `PUT` makes primary, `DELETE` removes the body's key.
pub async fn keyring<B: Backend>(
    st: St<B>,
    method: axum::http::Method,
    RawQuery(q): RawQuery,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Reply {
    use axum::http::Method;
    let p = Params::parse(q.as_deref());
    reply::or_error(
        async {
            let op = match method {
                Method::GET => {
                    return st
                        .operator_keyring("list", String::new())
                        .await
                        .map(|r| reply::json(&r, p.pretty()))
                }
                Method::POST => "install",
                Method::PUT => "use",
                Method::DELETE => "remove",
                _ => return Err(RpcError::BadRequest("method not allowed".into())),
            };
            let body = super::read_body(&headers, body, super::MAX_BODY).await?;
            let req: proconsul_types::KeyringRequest = super::decode(&body)?;
            st.operator_keyring(op, req.key).await?;
            Ok(reply::text(StatusCode::OK, ""))
        }
        .await,
    )
}

pub async fn autopilot_configuration<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    let _ = &st;
    reply::json(
        &proconsul_types::AutopilotConfiguration::default(),
        p.pretty(),
    )
}

/// 200 when every server is healthy, 429 otherwise (Consul's codes), the body either way.
pub async fn autopilot_health<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(st.operator_autopilot_health().await.map(|h| {
        let mut r = reply::json(&h, p.pretty());
        if !h.healthy {
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        }
        r
    }))
}
