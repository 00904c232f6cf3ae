//! `/v1/kv/*`: get (`recurse`, `keys`, `separator`, `raw`), put (`flags`, `cas`, `acquire`,
//! `release`), delete (`recurse`, `cas`), with Consul's 404-with-index and 413 rules.

use axum::body::Body;
use axum::extract::{Path, RawQuery};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};

use super::{read_body, St};
use crate::params::Params;
use crate::reply::{self, Reply};
use crate::Backend;
use proconsul_types::{KvGet, KvKeys, KvList, KvWriteVerb, RpcError, WriteRequest, WriteResponse};

pub fn get<B: Backend>(
    st: St<B>,
    Path(key): Path<String>,
    RawQuery(q): RawQuery,
) -> impl std::future::Future<Output = Reply> + Send {
    reply::or_error_later(read(st, key, q))
}
pub fn get_root<B: Backend>(
    st: St<B>,
    RawQuery(q): RawQuery,
) -> impl std::future::Future<Output = Reply> + Send {
    reply::or_error_later(read(st, String::new(), q))
}
pub async fn put<B: Backend>(
    st: St<B>,
    Path(key): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    reply::or_error(do_put(&**st, key, q, headers, body).await)
}
pub async fn put_root<B: Backend>(
    st: St<B>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    reply::or_error(do_put(&**st, String::new(), q, headers, body).await)
}
pub async fn delete<B: Backend>(
    st: St<B>,
    Path(key): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    reply::or_error(do_delete(&**st, key, q).await)
}
pub async fn delete_root<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(do_delete(&**st, String::new(), q).await)
}

/// Reject path traversal the way Consul does; any other byte is a legal key.
fn check_key(key: &str) -> Result<(), RpcError> {
    if key.contains("../") || key.contains("..\\") {
        return Err(RpcError::BadRequest(
            "key contains path traversal sequence".into(),
        ));
    }
    Ok(())
}

/// `Conflicting flags: ...` when more than one of `flags` is present.
fn conflicting(p: &Params, raw: Option<&str>, flags: &[&str]) -> Result<(), RpcError> {
    if flags.iter().filter(|f| p.has(f)).count() > 1 {
        return Err(RpcError::BadRequest(format!(
            "Conflicting flags: {}\n",
            raw.unwrap_or("")
        )));
    }
    Ok(())
}

fn not_found(meta: &proconsul_types::QueryMeta) -> Reply {
    let mut r = reply::text(StatusCode::NOT_FOUND, "");
    r.headers_mut().remove(header::CONTENT_TYPE);
    reply::add_meta(&mut r, meta);
    r
}

/// What a KV read asks for.
enum GetMode {
    Keys { separator: Option<String> },
    Recurse,
    Entry { raw: bool },
}

/// A KV read. The query string is read and let go before the future is made: a blocking read
/// keeps its future, and what it holds, for as long as it waits.
fn read<B: Backend>(
    st: St<B>,
    key: String,
    q: Option<String>,
) -> Result<impl std::future::Future<Output = Result<Reply, RpcError>> + Send, RpcError> {
    let (opts, pretty, mode) = {
        let p = Params::parse(q.as_deref());
        drop(q);
        let opts = p.query_options()?;
        let mode = if p.has("keys") {
            GetMode::Keys {
                separator: p
                    .get("separator")
                    .or_else(|| p.get("seperator"))
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            }
        } else if p.has("recurse") {
            GetMode::Recurse
        } else {
            GetMode::Entry { raw: p.has("raw") }
        };
        (opts, p.pretty(), mode)
    };
    check_key(&key)?;
    if matches!(mode, GetMode::Entry { .. }) && key.is_empty() {
        return Err(RpcError::BadRequest("Missing key name".into()));
    }
    Ok(async move {
        let raw = match mode {
            GetMode::Keys { separator } => {
                let empty_prefix = key.is_empty();
                let (meta, keys) = st
                    .query(
                        KvKeys {
                            prefix: key,
                            separator,
                        },
                        opts,
                    )
                    .await?;
                if keys.is_empty() && !empty_prefix {
                    return Ok(not_found(&meta));
                }
                return Ok(reply::json_meta(&keys, &meta, pretty));
            }
            GetMode::Recurse => {
                let (meta, entries) = st.query(KvList { prefix: key }, opts).await?;
                if entries.is_empty() {
                    return Ok(not_found(&meta));
                }
                return Ok(reply::json_meta(&entries, &meta, pretty));
            }
            GetMode::Entry { raw } => raw,
        };
        let (meta, entry) = st.query(KvGet { key }, opts).await?;
        let Some(entry) = entry else {
            return Ok(not_found(&meta));
        };
        if raw {
            let mut r = Reply::new(Body::from(entry.value.unwrap_or_default()));
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            h.insert(
                "X-Content-Type-Options",
                HeaderValue::from_static("nosniff"),
            );
            h.insert(
                "Content-Security-Policy",
                HeaderValue::from_static("sandbox"),
            );
            reply::add_meta(&mut r, &meta);
            return Ok(r);
        }
        Ok(reply::json_meta(&[entry], &meta, pretty))
    })
}

async fn do_put<B: Backend>(
    b: &B,
    key: String,
    q: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Reply, RpcError> {
    let p = Params::parse(q.as_deref());
    let opts = p.query_options()?;
    if key.is_empty() {
        return Err(RpcError::BadRequest("Missing key name".into()));
    }
    check_key(&key)?;
    conflicting(&p, q.as_deref(), &["cas", "acquire", "release"])?;
    let flags = p.u64("flags", "flags")?.unwrap_or(0);
    let mut verb = KvWriteVerb::Set;
    let mut index = 0;
    let mut session = None;
    if let Some(cas) = p.u64("cas", "cas index")? {
        verb = KvWriteVerb::Cas;
        index = cas;
    }
    if p.has("acquire") {
        verb = KvWriteVerb::Lock;
        session = Some(p.get("acquire").unwrap_or("").to_string());
    }
    if p.has("release") {
        verb = KvWriteVerb::Unlock;
        session = Some(p.get("release").unwrap_or("").to_string());
    }
    let limit = b.kv_max_value_size() as usize;
    let value = read_body(&headers, body, limit).await.map_err(|e| match e {
        RpcError::TooLarge(m) => RpcError::TooLarge(format!(
            "{} See https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size.",
            m.trim_end_matches('.').to_string() + "."
        )),
        other => other,
    })?;
    let req = WriteRequest::Kv {
        verb,
        key,
        // An empty body stores no value: Consul's `Value` is then `null` (Go's nil slice).
        value: (!value.is_empty()).then(|| value.to_vec()),
        flags,
        index,
        session,
    };
    let (idx, resp) = b.write(req, opts.datacenter).await?;
    let ok = match resp {
        WriteResponse::Bool(v) => v,
        _ => true,
    };
    let ok = if verb == KvWriteVerb::Set { true } else { ok };
    Ok(reply::with_index(reply::json(&ok, p.pretty()), idx))
}

async fn do_delete<B: Backend>(b: &B, key: String, q: Option<String>) -> Result<Reply, RpcError> {
    let p = Params::parse(q.as_deref());
    let opts = p.query_options()?;
    check_key(&key)?;
    conflicting(&p, q.as_deref(), &["recurse", "cas"])?;
    let mut verb = KvWriteVerb::Delete;
    let mut index = 0;
    if p.has("recurse") {
        verb = KvWriteVerb::DeleteTree;
    } else if key.is_empty() {
        return Err(RpcError::BadRequest("Missing key name".into()));
    }
    if let Some(cas) = p.u64("cas", "cas index")? {
        verb = KvWriteVerb::DeleteCas;
        index = cas;
    }
    let req = WriteRequest::Kv {
        verb,
        key,
        value: None,
        flags: 0,
        index,
        session: None,
    };
    let (idx, resp) = b.write(req, opts.datacenter).await?;
    let ok = match (verb, resp) {
        (KvWriteVerb::DeleteCas, WriteResponse::Bool(v)) => v,
        _ => true,
    };
    Ok(reply::with_index(reply::json(&ok, p.pretty()), idx))
}

pub(crate) fn unexpected() -> RpcError {
    RpcError::Internal("unexpected response type from the backend".into())
}
