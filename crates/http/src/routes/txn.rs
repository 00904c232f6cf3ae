//! `PUT /v1/txn`: KV, node, service, check and session operations applied all-or-nothing;
//! 409 with `Errors` on rollback.

use axum::body::Body;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, StatusCode};

use super::{decode, kv::unexpected, read_body, St, MAX_BODY};
use crate::params::Params;
use crate::reply::{self, Reply};
use crate::Backend;
use proconsul_types::{RpcError, TxnOp, WriteRequest, WriteResponse, KV_VERBS, MAX_TXN_OPS};

pub async fn apply<B: Backend>(
    st: St<B>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    reply::or_error(do_apply(&**st, q, headers, body).await)
}

async fn do_apply<B: Backend>(
    b: &B,
    q: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Reply, RpcError> {
    let p = Params::parse(q.as_deref());
    let opts = p.query_options()?;
    let body = read_body(&headers, body, MAX_BODY).await?;
    let ops: Vec<TxnOp> = decode(&body)?;
    if ops.len() > MAX_TXN_OPS {
        return Err(RpcError::TooLarge(format!(
            "Transaction contains too many operations ({} > {})",
            ops.len(),
            MAX_TXN_OPS
        )));
    }
    for (i, op) in ops.iter().enumerate() {
        let set = [
            op.kv.is_some(),
            op.node.is_some(),
            op.service.is_some(),
            op.check.is_some(),
            op.session.is_some(),
        ];
        if set.iter().filter(|s| **s).count() != 1 {
            return Err(RpcError::BadRequest(format!(
                "Failed to parse transaction: operation {i} must hold exactly one of KV, Node, Service, Check or Session"
            )));
        }
        if let Some(kv) = &op.kv {
            if !KV_VERBS.contains(&kv.verb.as_str()) {
                return Err(RpcError::BadRequest(format!(
                    "Failed to parse transaction: Unknown KV operation: {}",
                    kv.verb
                )));
            }
        }
        if let Some(s) = &op.session {
            if s.verb != "delete" {
                return Err(RpcError::BadRequest(format!(
                    "Failed to parse transaction: Unknown Session operation: {}",
                    s.verb
                )));
            }
        }
    }
    let (idx, resp) = b.write(WriteRequest::Txn(ops), opts.datacenter).await?;
    let WriteResponse::Txn(out) = resp else {
        return Err(unexpected());
    };
    let mut r = reply::json(&out, p.pretty());
    if out.errors.as_ref().is_some_and(|e| !e.is_empty()) {
        *r.status_mut() = StatusCode::CONFLICT;
    }
    Ok(reply::with_index(r, idx))
}
