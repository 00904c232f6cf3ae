//! `/v1/session/*`: create, destroy, renew, info, node, list.

use axum::body::Body;
use axum::extract::{Path, RawQuery};
use axum::http::HeaderMap;
use serde::Deserialize;

use super::{decode_or_default, kv::unexpected, read_body, St, MAX_BODY};
use crate::params::Params;
use crate::reply::{self, Reply};
use crate::Backend;
use proconsul_types::{
    duration, Query, RpcError, ServiceCheckRef, SessionCreate, SessionCreated, SessionEntry,
    SessionGet, SessionList, SessionNode, WriteRequest, WriteResponse,
};

/// The create body as clients send it: `LockDelay` may be a Go duration string or a number.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    node: String,
    lock_delay: Option<serde_json::Value>,
    checks: Option<Vec<String>>,
    node_checks: Option<Vec<String>>,
    service_checks: Option<Vec<ServiceCheckRef>>,
    behavior: String,
    #[serde(rename = "TTL")]
    ttl: String,
}

/// Consul's lock-delay fix-up: strings are durations; numbers below 1000 are seconds, larger
/// numbers nanoseconds.
fn lock_delay_ns(v: &serde_json::Value) -> Result<u64, RpcError> {
    match v {
        serde_json::Value::String(s) => duration::parse(s)
            .map(|d| d.as_nanos() as u64)
            .map_err(|e| RpcError::BadRequest(format!("Request decode failed: LockDelay: {e}"))),
        serde_json::Value::Number(n) => {
            let n = n.as_u64().ok_or_else(|| {
                RpcError::BadRequest("Request decode failed: invalid LockDelay".into())
            })?;
            Ok(if n < 1000 { n * 1_000_000_000 } else { n })
        }
        serde_json::Value::Null => Ok(15_000_000_000),
        _ => Err(RpcError::BadRequest(
            "Request decode failed: invalid LockDelay".into(),
        )),
    }
}

pub async fn create<B: Backend>(
    st: St<B>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    reply::or_error(
        async {
            let p = Params::parse(q.as_deref());
            let opts = p.query_options()?;
            let body = read_body(&headers, body, MAX_BODY).await?;
            let b: CreateBody = decode_or_default(&body)?;
            let lock_delay_ns = b.lock_delay.as_ref().map(lock_delay_ns).transpose()?;
            // `Checks` is the old spelling of `NodeChecks`; both merge.
            let node_checks = match (b.checks, b.node_checks) {
                (None, None) if b.service_checks.is_none() => None,
                (a, n) => Some(
                    a.unwrap_or_default()
                        .into_iter()
                        .chain(n.unwrap_or_default())
                        .collect(),
                ),
            };
            let req = SessionCreate {
                name: b.name,
                // The agent's own node unless the body names one (Consul's agent fills it in,
                // so a client agent's sessions are its own, and ACLs check that node).
                node: if b.node.is_empty() {
                    st.node_name()
                } else {
                    b.node
                },
                lock_delay_ns,
                node_checks,
                service_checks: b
                    .service_checks
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| c.id)
                    .collect(),
                behavior: b.behavior,
                ttl: b.ttl,
            };
            let (idx, resp) = st
                .write(WriteRequest::SessionCreate(req), opts.datacenter)
                .await?;
            let WriteResponse::SessionId(id) = resp else {
                return Err(unexpected());
            };
            Ok(reply::with_index(
                reply::json(&SessionCreated { id }, p.pretty()),
                idx,
            ))
        }
        .await,
    )
}

pub async fn destroy<B: Backend>(
    st: St<B>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    reply::or_error(
        async {
            let p = Params::parse(q.as_deref());
            let opts = p.query_options()?;
            let (idx, _) = st
                .write(WriteRequest::SessionDestroy { id }, opts.datacenter)
                .await?;
            Ok(reply::with_index(reply::json(&true, p.pretty()), idx))
        }
        .await,
    )
}

pub async fn renew<B: Backend>(st: St<B>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(
        async {
            let p = Params::parse(q.as_deref());
            let opts = p.query_options()?;
            let (idx, resp) = st
                .write(
                    WriteRequest::SessionRenew { id: id.clone() },
                    opts.datacenter,
                )
                .await?;
            let WriteResponse::Session(found) = resp else {
                return Err(unexpected());
            };
            match found {
                Some(s) => Ok(reply::with_index(reply::json(&[s], p.pretty()), idx)),
                None => Err(RpcError::NotFound(format!("Session id '{id}' not found"))),
            }
        }
        .await,
    )
}

async fn sessions_reply<B: Backend, Q: Query<Out = Vec<SessionEntry>>>(
    b: &B,
    q: Option<String>,
    req: Q,
) -> Result<Reply, RpcError> {
    let p = Params::parse(q.as_deref());
    let opts = p.query_options()?;
    let (meta, s) = b.query(req, opts).await?;
    Ok(reply::json_meta(&s, &meta, p.pretty()))
}

pub async fn info<B: Backend>(st: St<B>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(sessions_reply(&**st, q, SessionGet { id }).await)
}

pub async fn node<B: Backend>(st: St<B>, Path(node): Path<String>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(sessions_reply(&**st, q, SessionNode { node }).await)
}

pub async fn list<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(sessions_reply(&**st, q, SessionList {}).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_delay_fixup() {
        assert_eq!(
            lock_delay_ns(&serde_json::json!("15s")).unwrap(),
            15_000_000_000
        );
        assert_eq!(
            lock_delay_ns(&serde_json::json!(15)).unwrap(),
            15_000_000_000
        );
        assert_eq!(
            lock_delay_ns(&serde_json::json!(2_000_000_000u64)).unwrap(),
            2_000_000_000
        );
        assert!(lock_delay_ns(&serde_json::json!("bogus")).is_err());
    }
}
