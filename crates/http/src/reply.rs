//! Building responses: JSON (compact or `?pretty`), `X-Consul-*` headers, errors as plain text.

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use serde::Serialize;

use proconsul_types::{QueryMeta, RpcError};

pub type Reply = Response<Body>;

/// Serialise `value` as Consul does: compact, or indented by 4 spaces plus a newline with `?pretty`.
pub fn json<T: Serialize + ?Sized>(value: &T, pretty: bool) -> Reply {
    let body = if pretty {
        let mut buf = Vec::with_capacity(256);
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        match value.serialize(&mut ser) {
            Ok(()) => {
                buf.push(b'\n');
                buf
            }
            Err(e) => return error(&RpcError::Internal(e.to_string())),
        }
    } else {
        match serde_json::to_vec(value) {
            Ok(b) => b,
            Err(e) => return error(&RpcError::Internal(e.to_string())),
        }
    };
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A JSON reply carrying the blocking-query headers of a read.
pub fn json_meta<T: Serialize + ?Sized>(value: &T, meta: &QueryMeta, pretty: bool) -> Reply {
    let mut r = json(value, pretty);
    add_meta(&mut r, meta);
    r
}

/// Set `X-Consul-Index` (never 0), `X-Consul-KnownLeader`, `X-Consul-LastContact`,
/// `X-Consul-Effective-Consistency` and `X-Consul-Query-Backend` (always `blocking-query`:
/// proconsul has no streaming backend).
pub fn add_meta(r: &mut Reply, meta: &QueryMeta) {
    let h = r.headers_mut();
    h.insert(
        "X-Consul-Query-Backend",
        HeaderValue::from_static("blocking-query"),
    );
    h.insert("X-Consul-Index", HeaderValue::from(meta.index.max(1)));
    h.insert(
        "X-Consul-KnownLeader",
        HeaderValue::from_static(if meta.known_leader { "true" } else { "false" }),
    );
    h.insert(
        "X-Consul-LastContact",
        HeaderValue::from(meta.last_contact_ms),
    );
    h.insert(
        "X-Consul-Effective-Consistency",
        HeaderValue::from_static(meta.consistency.header_value()),
    );
    if meta.results_filtered_by_acls {
        h.insert(
            "X-Consul-Results-Filtered-By-ACLs",
            HeaderValue::from_static("true"),
        );
    }
}

/// `X-Cache` (`HIT`/`MISS`) and, on a hit, `Age` in whole seconds: a `?cached` read's answer.
pub fn add_cache(r: &mut Reply, c: crate::cache::CacheResult) {
    let h = r.headers_mut();
    h.insert(
        "X-Cache",
        HeaderValue::from_static(if c.hit { "HIT" } else { "MISS" }),
    );
    if c.hit {
        h.insert("Age", HeaderValue::from(c.age.as_secs()));
    }
}

/// `X-Consul-Translate-Addresses: true` on the reads that translate addresses, when the agent
/// has `translate_wan_addrs` on (Consul sets it whether or not this answer needed it).
pub fn add_translate_header(r: &mut Reply, translate_wan_addrs: bool) {
    if translate_wan_addrs {
        r.headers_mut().insert(
            "X-Consul-Translate-Addresses",
            HeaderValue::from_static("true"),
        );
    }
}

/// Rows of datacenter `dc` as the agent answers them: with WAN addresses when it translates
/// and `dc` is another datacenter (see `proconsul_types::translate`).
pub fn translate<B: crate::Backend, T: proconsul_types::translate::WanAddresses>(
    b: &B,
    dc: &str,
    rows: &mut [T],
) {
    if b.translate_wan_addrs() && !dc.is_empty() && dc != b.datacenter() {
        rows.iter_mut().for_each(|r| r.use_wan_addresses());
    }
}

/// Only the `X-Consul-Index` header: for write answers that report the index they committed at.
pub fn with_index(mut r: Reply, index: u64) -> Reply {
    r.headers_mut()
        .insert("X-Consul-Index", HeaderValue::from(index.max(1)));
    r
}

/// A status with a plain-text body, as Consul answers errors.
pub fn text(status: StatusCode, msg: impl Into<String>) -> Reply {
    let mut r = Response::new(Body::from(msg.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Map an RPC error to Consul's status code and text.
pub fn error(e: &RpcError) -> Reply {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    text(status, e.to_string())
}

/// Run a fallible handler body, turning its error into Consul's reply.
pub fn or_error(r: Result<Reply, RpcError>) -> Reply {
    r.unwrap_or_else(|e| error(&e))
}

/// The reply of `work` (a future made from what a request asked), or of the error met reading
/// the request: with no future of its own around `work`'s. A blocking read keeps its future
/// for its whole wait, and each `async fn` layer would keep its own copy of its arguments.
pub(crate) fn or_error_later<F>(
    work: Result<F, RpcError>,
) -> impl std::future::Future<Output = Reply> + Send
where
    F: std::future::Future<Output = Result<Reply, RpcError>> + Send,
{
    use futures_util::FutureExt as _;
    match work {
        Ok(f) => futures_util::future::Either::Left(f.map(or_error)),
        Err(e) => futures_util::future::Either::Right(std::future::ready(or_error(Err(e)))),
    }
}
