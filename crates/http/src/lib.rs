//! Consul's HTTP API (`/v1/*`) on axum.
//!
//! This crate owns the wire surface only: paths, query parameters, body decoding, status codes,
//! `X-Consul-*` headers and JSON output. It never touches the state store: each handler builds a
//! typed request from `proconsul_types::rpc` and hands it to a [`Backend`] (the agent), which
//! serves it locally or forwards it. Blocking queries block inside the backend, so the handler
//! stays a straight line.

mod backend;
pub mod cache;
pub mod caller;
mod fair;
mod h1;
mod limit;
mod middleware;
mod near;
mod params;
mod reply;
mod routes;
mod tls;

pub use backend::{Backend, ServiceRegistration};
pub use cache::QueryCache;
pub use caller::{caller_token, Rights};
pub use routes::router;
pub use tls::{serve_tls, ServerTls};

pub use limit::{conn_limit, HttpConnLimit, LimitedListener};
use tokio_util::sync::CancellationToken;

/// Serve `router` on an already-bound listener until `shutdown` fires, admitting at most
/// `limit`'s connections per client IP (counted with the agent's other HTTP listeners).
///
/// Each request carries its connection's [`limit::ClientInfo`] (its place with its client's
/// scheduler, [`fair`]).
///
/// Plain HTTP/1.1 on the crate's own connection loop ([`h1`]), not `axum::serve` or hyper:
/// hyper keeps two 8 KiB buffers for each connection's life, which were most of what a parked
/// blocking query cost. Consul's plain HTTP port speaks HTTP/1.1 only (Go's server does HTTP/2
/// over TLS alone), so nothing is lost. Each connection's service is the
/// router itself (cloning it clones an `Arc`), never a `Router` turned into a connection's
/// service by `with_state(())`, which rebuilds its route tables: about 37 KB per connection
/// with our few hundred routes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limit: std::sync::Arc<HttpConnLimit>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    use axum::serve::Listener as _;
    let mut listener = LimitedListener::new(listener, limit);
    let conns = tokio_util::task::TaskTracker::new();
    loop {
        let (io, _) = tokio::select! {
            c = listener.accept() => c,
            _ = shutdown.cancelled() => break,
        };
        let info = io.client_info();
        conns.spawn(serve_conn(io, info, router.clone(), shutdown.clone()));
    }
    drop(listener);
    conns.close();
    // In-flight requests get a moment to finish; a client that holds a stream open (a blocking
    // query, `monitor`) must not hold the agent's shutdown hostage.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conns.wait()).await;
    Ok(())
}

/// One HTTP/1.1 connection (plain, or TLS once handshaken), until it closes; once `shutdown`
/// fires it finishes the request in progress and closes.
fn serve_conn<I>(
    io: I,
    info: limit::ClientInfo,
    router: axum::Router,
    shutdown: CancellationToken,
) -> impl std::future::Future<Output = ()>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // Not an `async fn` around it: that would keep a second copy of its arguments in every
    // connection's task.
    h1::serve_conn(io, info, router, shutdown)
}

/// One HTTP/1.1 connection on any byte stream, its requests without a client's scheduler or
/// address (an in-memory pipe: the fuzz target of the connection loop, tests).
#[doc(hidden)]
pub fn serve_stream<I>(
    io: I,
    router: axum::Router,
    shutdown: CancellationToken,
) -> impl std::future::Future<Output = ()>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    h1::serve_conn(io, (), router, shutdown)
}

/// Serve `router` on a unix socket until `shutdown` fires (`addresses.http = "unix://…"`).
/// Whoever can open the socket is local; the socket's mode and owner are its access control.
pub async fn serve_unix(
    listener: tokio::net::UnixListener,
    router: axum::Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let server = axum::serve(listener, router.into_make_service())
        .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    tokio::select! {
        r = server => r,
        _ = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => Ok(()),
    }
}

/// How long open connections may take to finish once the agent stops.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);
