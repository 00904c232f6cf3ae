//! The `/v1/*` routes. One module per API area; shared parsing and replies live in
//! `params` and `reply`, so handlers stay short and alike. An area's module lists its own
//! paths (`routes()`, merged here) next to its handlers, so an endpoint is added in one file.

mod acl;
mod agent;
mod catalog;
mod coordinate;
mod event;
mod health;
mod kv;
mod operator;
mod query;
mod session;
mod snapshot;
mod status;
mod txn;
mod ui;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, put};
use axum::Router;
use serde::de::DeserializeOwned;

use crate::reply::{self, Reply};
use crate::Backend;
use proconsul_types::RpcError;

/// Largest body any endpoint other than KV accepts (Consul's `txn_max_req_len` default).
pub(crate) const MAX_BODY: usize = 512 * 1024;

/// Shared handler state.
pub(crate) type St<B> = axum::extract::State<Arc<B>>;

/// Build the router for a backend.
pub fn router<B: Backend>(backend: Arc<B>) -> Router {
    Router::new()
        .merge(status::routes::<B>())
        .merge(acl::routes::<B>())
        // kv: the bare prefix needs its own route besides the catch-all
        .route(
            "/v1/kv",
            get(kv::get_root::<B>)
                .put(kv::put_root::<B>)
                .delete(kv::delete_root::<B>),
        )
        .route(
            "/v1/kv/",
            get(kv::get_root::<B>)
                .put(kv::put_root::<B>)
                .delete(kv::delete_root::<B>),
        )
        .route(
            "/v1/kv/{*key}",
            get(kv::get::<B>).put(kv::put::<B>).delete(kv::delete::<B>),
        )
        .route("/v1/txn", put(txn::apply::<B>))
        // catalog
        .route("/v1/catalog/register", put(catalog::register::<B>))
        .route("/v1/catalog/deregister", put(catalog::deregister::<B>))
        .route("/v1/catalog/datacenters", get(catalog::datacenters::<B>))
        .route("/v1/catalog/nodes", get(catalog::nodes::<B>))
        .route("/v1/catalog/services", get(catalog::services::<B>))
        .route("/v1/catalog/service/{name}", get(catalog::service::<B>))
        .route("/v1/catalog/connect/{name}", get(catalog::connect::<B>))
        .route("/v1/catalog/node/{name}", get(catalog::node::<B>))
        .route(
            "/v1/catalog/node-services/{name}",
            get(catalog::node_services::<B>),
        )
        // coordinates
        .route(
            "/v1/coordinate/datacenters",
            get(coordinate::datacenters::<B>),
        )
        .route("/v1/coordinate/nodes", get(coordinate::nodes::<B>))
        .route("/v1/coordinate/node/{node}", get(coordinate::node::<B>))
        .route("/v1/coordinate/update", put(coordinate::update::<B>))
        // health
        .route("/v1/health/node/{node}", get(health::node::<B>))
        .route("/v1/health/checks/{service}", get(health::checks::<B>))
        .route("/v1/health/service/{service}", get(health::service::<B>))
        .route("/v1/health/connect/{service}", get(health::connect::<B>))
        .route("/v1/health/state/{state}", get(health::state::<B>))
        // session
        .route("/v1/session/create", put(session::create::<B>))
        .route("/v1/session/destroy/{id}", put(session::destroy::<B>))
        .route("/v1/session/renew/{id}", put(session::renew::<B>))
        .route("/v1/session/info/{id}", get(session::info::<B>))
        .route("/v1/session/node/{node}", get(session::node::<B>))
        .route("/v1/session/list", get(session::list::<B>))
        // agent
        .route("/v1/agent/self", get(agent::self_::<B>))
        .route("/v1/agent/version", get(agent::version))
        .route("/v1/agent/metrics", get(agent::metrics::<B>))
        .route("/v1/agent/metrics/stream", get(agent::metrics_stream::<B>))
        .route("/v1/agent/host", get(agent::host::<B>))
        .route("/v1/agent/members", get(agent::members::<B>))
        .route("/v1/agent/services", get(agent::services::<B>))
        .route("/v1/agent/service/{id}", get(agent::service::<B>))
        .route("/v1/agent/checks", get(agent::checks::<B>))
        .route(
            "/v1/agent/service/register",
            put(agent::register_service::<B>),
        )
        .route(
            "/v1/agent/service/deregister/{id}",
            put(agent::deregister_service::<B>),
        )
        .route("/v1/agent/check/register", put(agent::register_check::<B>))
        .route(
            "/v1/agent/check/deregister/{id}",
            put(agent::deregister_check::<B>),
        )
        .route("/v1/agent/check/pass/{id}", put(agent::check_pass::<B>))
        .route("/v1/agent/check/warn/{id}", put(agent::check_warn::<B>))
        .route("/v1/agent/check/fail/{id}", put(agent::check_fail::<B>))
        .route("/v1/agent/check/update/{id}", put(agent::check_update::<B>))
        .route("/v1/agent/join/{addr}", put(agent::join::<B>))
        .route("/v1/agent/leave", put(agent::leave::<B>))
        .route("/v1/agent/force-leave/{node}", put(agent::force_leave::<B>))
        .merge(operator::routes::<B>())
        .merge(query::routes::<B>())
        .route(
            "/v1/snapshot",
            get(snapshot::save::<B>).put(snapshot::restore::<B>),
        )
        .route("/v1/agent/reload", put(agent::reload::<B>))
        .route("/v1/agent/token/{kind}", put(agent::set_token::<B>))
        .route("/v1/agent/monitor", get(agent::monitor::<B>))
        .route("/v1/agent/maintenance", put(agent::node_maintenance::<B>))
        .route(
            "/v1/agent/service/maintenance/{id}",
            put(agent::service_maintenance::<B>),
        )
        .route(
            "/v1/agent/health/service/id/{id}",
            get(agent::health_by_id::<B>),
        )
        .route(
            "/v1/agent/health/service/name/{name}",
            get(agent::health_by_name::<B>),
        )
        // events
        .route("/v1/event/fire/{name}", put(event::fire::<B>))
        .route("/v1/event/list", get(event::list::<B>))
        .merge(ui::routes::<B>(&backend))
        .fallback(not_found)
        .layer(crate::middleware::AroundLayer {
            default_allow: backend.acl_default_allow(),
        })
        .with_state(backend)
}

async fn not_found() -> Reply {
    reply::text(StatusCode::NOT_FOUND, "404 page not found")
}

/// Read a request body of at most `limit` bytes; larger bodies are a 413.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, RpcError> {
    let too_large = |len: Option<u64>| {
        let shown = len.map(|l| l.to_string()).unwrap_or_else(|| "?".into());
        RpcError::TooLarge(format!(
            "Request body({shown} bytes) too large, max size: {limit} bytes."
        ))
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared {
        if len > limit as u64 {
            return Err(too_large(Some(len)));
        }
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large(declared))
}

/// Decode a JSON body, matching field names case-insensitively like Consul.
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, RpcError> {
    proconsul_types::json::from_slice_ci(body)
        .map_err(|e| RpcError::BadRequest(format!("Request decode failed: {e}")))
}

/// Decode an optional JSON body: empty means `T::default()`.
pub(crate) fn decode_or_default<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, RpcError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        Ok(T::default())
    } else {
        decode(body)
    }
}
