//! Consul's HTTP API (`/v1/*`) on axum.
//!
//! This crate owns the wire surface only: paths, query parameters, body decoding, status codes,
//! `X-Consul-*` headers and JSON output. It never touches the state store: each handler builds a
//! typed request from `proconsul_types::rpc` and hands it to a [`Backend`] (the agent), which
//! serves it locally or forwards it. Blocking queries block inside the backend, so the handler
//! stays a straight line.

mod backend;
mod params;
mod reply;
mod routes;

pub use backend::{Backend, ServiceRegistration};
pub use routes::router;

use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

/// Serve `router` on an already-bound listener until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}
