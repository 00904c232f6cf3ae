//! The HTTPS listener: TCP accepted under the per-client connection limit, the TLS handshake
//! done on a task of its own (bounded by a timeout, so a client that never finishes cannot
//! hold up anyone else's accept), then the same router as plain HTTP.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::limit::{ClientInfo, CountedStream, HttpConnLimit, LimitedListener};

/// How long a client has to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to take them.
const READY_QUEUE: usize = 64;

/// Connections that finished their TLS handshake.
struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(TlsStream<CountedStream>, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<CountedStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop ended (shutdown): nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// A request over TLS knows its connection's place with its client's scheduler, as over plain
/// HTTP: without it a request would never say that it is done or that it waits, and its
/// connection would keep its place for good.
impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>>
    for ClientInfo
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        stream.io().get_ref().0.client_info()
    }
}

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
    let local = listener.local_addr()?;
    let (tx, ready) = tokio::sync::mpsc::channel(READY_QUEUE);
    let mut tcp = LimitedListener::new(listener, limit);
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
    let server = axum::serve(
        TlsListener { ready, local },
        router.into_make_service_with_connect_info::<ClientInfo>(),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    tokio::select! {
        r = server => r,
        _ = async {
            shutdown.cancelled().await;
            tokio::time::sleep(crate::SHUTDOWN_GRACE).await;
        } => Ok(()),
    }
}
