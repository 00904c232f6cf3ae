//! Who is calling: the request's ACL token, and what it may do on this agent.
//!
//! The token is read once per request, by the layer that wraps every route
//! ([`token_of`], Consul's order: `?token=`, `X-Consul-Token`, `Authorization: Bearer`), and
//! is the request's for as long as its handler runs ([`caller_token`]): every call the
//! handler makes to the datacenter carries it, and servers check it at `Server::call`.
//! Endpoints the agent serves itself (its services, checks, members, events) check the
//! caller's [`Rights`], which the agent resolves through its servers.

use std::sync::Arc;

use axum::extract::Request;
use proconsul_acl::{Authorizer, Check};
use proconsul_types::RpcError;

tokio::task_local! {
    static CALLER_TOKEN: Option<Arc<str>>;
}

/// The token of the request being served (`None`: it gave none, or this is not a request).
pub fn caller_token() -> Option<Arc<str>> {
    CALLER_TOKEN.try_with(|t| t.clone()).ok().flatten()
}

/// Run `fut` as the request carrying `token`.
pub(crate) fn with_token<F: std::future::Future>(
    token: Option<Arc<str>>,
    fut: F,
) -> tokio::task::futures::TaskLocalFuture<Option<Arc<str>>, F> {
    CALLER_TOKEN.scope(token, fut)
}

static X_CONSUL_TOKEN: axum::http::HeaderName =
    axum::http::HeaderName::from_static("x-consul-token");

/// The request's token: `?token=`, else `X-Consul-Token`, else `Authorization: Bearer …`.
pub(crate) fn token_of(req: &Request) -> Option<Arc<str>> {
    if let Some(q) = req.uri().query().filter(|q| q.contains("token=")) {
        if let Some((_, v)) = form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "token") {
            if !v.is_empty() {
                return Some(Arc::from(v.as_ref()));
            }
        }
    }
    let headers = req.headers();
    if let Some(v) = headers.get(&X_CONSUL_TOKEN).and_then(|v| v.to_str().ok()) {
        if !v.is_empty() {
            return Some(Arc::from(v));
        }
    }
    let auth = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())?;
    let (scheme, rest) = auth.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.split_whitespace().next()?;
    Some(Arc::from(token))
}

/// What the caller's token may do, for the endpoints the agent answers itself.
#[derive(Debug)]
pub struct Rights {
    pub accessor_id: String,
    pub authz: Authorizer,
    /// The request carried a token (Consul sets `X-Consul-Results-Filtered-By-ACLs` only then).
    pub has_token: bool,
}

impl Rights {
    /// `Ok` when the token passes `check`; Consul's 403 otherwise.
    pub fn need(&self, check: Check<'_>) -> Result<(), RpcError> {
        if self.authz.allows(check) {
            Ok(())
        } else {
            Err(RpcError::PermissionDenied(
                check.permission_denied(&self.accessor_id),
            ))
        }
    }
}

/// `Ok` when ACLs are off (`None`) or `rights` pass `check`.
pub fn need(rights: &Option<Arc<Rights>>, check: Check<'_>) -> Result<(), RpcError> {
    match rights {
        None => Ok(()),
        Some(r) => r.need(check),
    }
}

/// Does the caller (if ACLs are on) pass `check`?
pub fn allows(rights: &Option<Arc<Rights>>, check: Check<'_>) -> bool {
    rights.as_ref().is_none_or(|r| r.authz.allows(check))
}
