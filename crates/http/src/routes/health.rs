//! `/v1/health/*`: checks by node, by service, by state; service instances with their checks.

use axum::extract::{Path, RawQuery};
use axum::http::HeaderMap;

use super::catalog::{instance_rows, RowsAsk};
use super::St;
use crate::params::Params;
use crate::reply::{self, Reply};
use crate::Backend;
use proconsul_filter::schemas;
use proconsul_types::{
    health, HealthCheck, HealthChecksInState, HealthNodeChecks, HealthServiceChecks,
    HealthServiceNodes, Query, RpcError,
};

async fn checks_reply<B: Backend, Q: Query<Out = Vec<HealthCheck>>>(
    b: &B,
    q: Option<String>,
    req: Q,
) -> Result<Reply, RpcError> {
    let p = Params::parse(q.as_deref());
    let opts = p.query_options()?;
    let filter = p.filter(schemas::HEALTH_CHECK)?;
    let (meta, mut checks) = b.query(req, opts).await?;
    if let Some(f) = filter {
        f.retain(&mut checks);
    }
    Ok(reply::json_meta(&checks, &meta, p.pretty()))
}

pub async fn node<B: Backend>(st: St<B>, Path(node): Path<String>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(checks_reply(&**st, q, HealthNodeChecks { node }).await)
}

pub async fn checks<B: Backend>(
    st: St<B>,
    Path(service): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    reply::or_error(checks_reply(&**st, q, HealthServiceChecks { service }).await)
}

pub async fn state<B: Backend>(
    st: St<B>,
    Path(state): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    if !(health::is_valid_status(&state) || state == health::ANY) {
        return reply::error(&RpcError::BadRequest("Invalid check state".into()));
    }
    reply::or_error(checks_reply(&**st, q, HealthChecksInState { state }).await)
}

pub fn service<B: Backend>(
    st: St<B>,
    Path(name): Path<String>,
    q: RawQuery,
    headers: HeaderMap,
) -> impl std::future::Future<Output = Reply> + Send {
    service_rows(st, name, q, headers, false)
}

/// `/v1/health/connect/:service`: health of the proxies for a service and of its
/// Connect-native instances.
pub fn connect<B: Backend>(
    st: St<B>,
    Path(name): Path<String>,
    q: RawQuery,
    headers: HeaderMap,
) -> impl std::future::Future<Output = Reply> + Send {
    service_rows(st, name, q, headers, true)
}

fn service_rows<B: Backend>(
    st: St<B>,
    service: String,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    connect: bool,
) -> impl std::future::Future<Output = Reply> + Send {
    // Everything read from the request before the read starts: the future holds the query
    // and its options only, however long it waits.
    let asked = (|| {
        let p = Params::parse(q.as_deref());
        let req = HealthServiceNodes {
            service,
            tags: p.all("tag"),
            passing: p.flag("passing")?,
            node_meta: p.node_meta()?,
            connect,
        };
        Ok((
            req,
            RowsAsk::parse(&p, headers, schemas::CHECK_SERVICE_NODE)?,
        ))
    })();
    reply::or_error_later(asked.map(|(req, ask)| {
        instance_rows(
            st,
            ask,
            req,
            |r| &r.node.node,
            |r, dc| r.node.datacenter = dc.to_string(),
        )
    }))
}
