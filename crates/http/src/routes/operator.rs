//! `/v1/operator/*`: the Raft configuration and removing a peer from it, the gossip keyring,
//! autopilot's configuration, health and state, and usage counts.

use std::sync::Arc;

use axum::extract::RawQuery;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::Router;

use super::St;
use crate::params::Params;
use crate::reply::{self, Reply};
use crate::Backend;
use proconsul_types::{
    AutopilotConfiguration, AutopilotGetConfig, AutopilotGetState, AutopilotServerHealth,
    OperatorUsage, RaftGetConfiguration, RaftRemovePeer, RaftTransferLeader, RpcError,
    WriteRequest, WriteResponse,
};

/// The `/v1/operator/*` paths.
pub(super) fn routes<B: Backend>() -> Router<Arc<B>> {
    Router::new()
        .route(
            "/v1/operator/raft/configuration",
            get(raft_configuration::<B>),
        )
        .route("/v1/operator/raft/peer", delete(raft_remove_peer::<B>))
        .route(
            "/v1/operator/raft/transfer-leader",
            post(raft_transfer_leader::<B>),
        )
        .route(
            "/v1/operator/autopilot/configuration",
            get(autopilot_configuration::<B>).put(autopilot_configuration::<B>),
        )
        .route("/v1/operator/autopilot/state", get(autopilot_state::<B>))
        .route("/v1/operator/autopilot/health", get(autopilot_health::<B>))
        .route(
            "/v1/operator/keyring",
            get(keyring::<B>)
                .post(keyring::<B>)
                .put(keyring::<B>)
                .delete(keyring::<B>),
        )
        .route("/v1/operator/usage", get(usage::<B>))
}

pub async fn raft_configuration<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        st.call(RaftGetConfiguration {
            stale: p.has("stale"),
            datacenter: p.get("dc").unwrap_or("").to_string(),
        })
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
        st.call(RaftRemovePeer { id, address })
            .await
            .map(|_| reply::text(StatusCode::OK, "")),
    )
}

/// `POST /v1/operator/raft/transfer-leader[?id=]`: `{"Success": true}` once the chosen server
/// leads (Consul's `TransferLeaderResponse`).
pub async fn raft_transfer_leader<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    let id = p.get("id").unwrap_or("").to_string();
    reply::or_error(
        st.call(RaftTransferLeader { id })
            .await
            .map(|_| reply::json(&serde_json::json!({ "Success": true }), p.pretty())),
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
            let rights = st.caller_rights().await?;
            let check = if method == Method::GET {
                proconsul_acl::Check::KeyringRead
            } else {
                proconsul_acl::Check::KeyringWrite
            };
            crate::caller::need(&rights, check)?;
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

/// `GET` reads autopilot's configuration (from the leader unless `?stale`); `PUT` replaces
/// it, answering `true`, or with `?cas=<ModifyIndex>` whether the check-and-set won.
pub async fn autopilot_configuration<B: Backend>(
    st: St<B>,
    method: axum::http::Method,
    RawQuery(q): RawQuery,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        async {
            let opts = p.query_options()?;
            if method == axum::http::Method::GET {
                let (meta, c) = st.query(AutopilotGetConfig {}, opts).await?;
                return Ok(reply::json_meta(&c, &meta, p.pretty()));
            }
            let body = super::read_body(&headers, body, super::MAX_BODY).await?;
            // Missing fields keep Consul's defaults (its api.NewAutopilotConfiguration).
            let config: AutopilotConfiguration = if body.iter().all(u8::is_ascii_whitespace) {
                AutopilotConfiguration::default()
            } else {
                proconsul_types::json::from_slice_ci(&body).map_err(|e| {
                    RpcError::BadRequest(format!("Error parsing autopilot config: {e}"))
                })?
            };
            let cas = match p.get("cas") {
                None if !p.has("cas") => None,
                v => {
                    let v = v.unwrap_or("");
                    Some(v.parse::<u64>().map_err(|_| {
                        RpcError::BadRequest(format!(
                            "Error parsing cas value: strconv.ParseUint: parsing {v:?}: invalid syntax"
                        ))
                    })?)
                }
            };
            let req = WriteRequest::AutopilotSetConfig { config, cas };
            let (_, resp) = st.write(req, opts.datacenter).await?;
            let ok = cas.is_none() || matches!(resp, WriteResponse::Bool(true));
            Ok(reply::json(&ok, p.pretty()))
        }
        .await,
    )
}

/// Autopilot's state (Consul's shape), as the leader sees it.
pub async fn autopilot_state<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        st.call(AutopilotGetState {
            datacenter: p.get("dc").unwrap_or("").to_string(),
        })
        .await
        .map(|s| reply::json(&s, p.pretty())),
    )
}

/// 200 when every server is healthy, 429 otherwise (Consul's codes), the body either way.
pub async fn autopilot_health<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        st.call(AutopilotServerHealth {
            datacenter: p.get("dc").unwrap_or("").to_string(),
        })
        .await
        .map(|h| {
            let mut r = reply::json(&h, p.pretty());
            if !h.healthy {
                *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            }
            r
        }),
    )
}

/// `GET /v1/operator/usage[?stale][&global]`: service, instance and node counts of this
/// datacenter (or the one `?dc=` names; with `?global`, of every datacenter the servers know),
/// in Consul's shape (the query meta is in the body as well as the headers).
pub async fn usage<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    let stale = p.has("stale");
    let asked = p.get("dc").unwrap_or("").to_string();
    let result = async {
        let here = if asked.is_empty() {
            st.datacenter()
        } else {
            asked.clone()
        };
        let (meta, usage) = st
            .call(OperatorUsage {
                stale,
                datacenter: asked.clone(),
            })
            .await?;
        let mut all = serde_json::Map::new();
        all.insert(
            here.clone(),
            serde_json::to_value(&usage).unwrap_or_default(),
        );
        if p.has("global") {
            for dc in st.datacenters().await? {
                if dc == here {
                    continue;
                }
                let (_, u) = st
                    .call(OperatorUsage {
                        stale,
                        datacenter: dc.clone(),
                    })
                    .await?;
                all.insert(dc, serde_json::to_value(&u).unwrap_or_default());
            }
        }
        Ok::<_, proconsul_types::RpcError>((meta, all))
    }
    .await;
    reply::or_error(result.map(|(meta, all)| {
        let body = serde_json::json!({
            "Usage": all,
            "Index": meta.index,
            "LastContact": meta.last_contact_ms,
            "KnownLeader": meta.known_leader,
            "ConsistencyLevel": meta.consistency.header_value(),
            "NotModified": false,
            "Backend": 0,
            "ResultsFilteredByACLs": false,
        });
        reply::json_meta(&body, &meta, p.pretty())
    }))
}
