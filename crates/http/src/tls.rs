//! The HTTPS listener: TCP accepted under the per-client connection limit, the TLS handshake
//! done on a task of its own (bounded by a timeout, so a client that never finishes cannot
//! hold up anyone else's accept), then the same router as plain HTTP.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::limit::{HttpConnLimit, LimitedListener};

/// How long a client has to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to take them.
const READY_QUEUE: usize = 64;

/// The HTTPS listener's TLS config, replaced by a reload; each connection takes the one in
/// force when it arrives.
pub type ServerTls = Arc<std::sync::RwLock<Arc<rustls::ServerConfig>>>;

/// Serve `router` over TLS on `listener` until `shutdown` fires.
pub async fn serve_tls(
    listener: TcpListener,
    router: axum::Router,
    config: ServerTls,
    limit: Arc<HttpConnLimit>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let (tx, mut ready) = tokio::sync::mpsc::channel(READY_QUEUE);
    let mut tcp = LimitedListener::for_tls(listener, limit);
    let stop = shutdown.clone();
    tokio::spawn(async move {
        use axum::serve::Listener;
        loop {
            let (io, addr) = tokio::select! {
                c = tcp.accept() => c,
                _ = stop.cancelled() => return,
            };
            let acceptor = TlsAcceptor::from(config.read().unwrap().clone());
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send((stream, addr)).await;
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(target: "agent.http", %addr, error = %e, "TLS handshake failed")
                    }
                    Err(_) => {
                        tracing::debug!(target: "agent.http", %addr, "TLS handshake timed out")
                    }
                }
            });
        }
    });
    // Each handshaken connection is served as a plain one is (`crate::serve_conn`: HTTP/1.1, the
    // only protocol the listener's ALPN offers), its requests knowing their client's scheduler:
    // without that a request would never say that it is done or that it waits, and its
    // connection would keep its place for good.
    let conns = tokio_util::task::TaskTracker::new();
    loop {
        let (stream, _) = tokio::select! {
            c = ready.recv() => match c {
                Some(c) => c,
                None => break,
            },
            _ = shutdown.cancelled() => break,
        };
        let info = stream.get_ref().0.client_info();
        conns.spawn(crate::serve_conn(
            stream,
            info,
            router.clone(),
            shutdown.clone(),
        ));
    }
    conns.close();
    let _ = tokio::time::timeout(crate::SHUTDOWN_GRACE, conns.wait()).await;
    Ok(())
}
