//! The accepting side: one task per connection reads requests and answers each one in its own
//! task (so a slow call does not block the others), writing answers through a shared writer.
//! Connections (in all, and per client IP: `limits.rpc_max_conns_per_client`) and in-flight
//! requests per connection are bounded. A connection is TLS or plaintext by its first byte
//! (see [`crate::tls`]); that byte and the TLS handshake must arrive within
//! `limits.rpc_handshake_timeout`, on the connection's own task.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use proconsul_types::conn_limit::PerClientLimit;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::frame::{read_frame, write_frame, Frame, FrameKind, MAX_FRAME};
use crate::tls::{cert_valid_for, Peer, SharedTls, TLS_HANDSHAKE};

/// Most connections served at once.
const MAX_CONNECTIONS: usize = 512;
/// Most requests handled at once on one connection.
const MAX_IN_FLIGHT_PER_CONN: usize = 256;

/// Consul's `limits.rpc_max_conns_per_client` (default 100, 0 = no limit) and
/// `rpc_handshake_timeout` (default 5 s, `None` = no limit): how many connections one client
/// IP may hold open, and how long a new connection has to send its first byte and finish a
/// TLS handshake before it is closed. The count per client is shared with whoever holds the
/// limits, so a reload can change it ([`PerClientLimit::set_max`]); the timeout is fixed.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    pub per_client: Arc<PerClientLimit<()>>,
    pub handshake_timeout: Option<Duration>,
}

impl ConnLimits {
    pub fn new(max_per_client: u32, handshake_timeout: Option<Duration>) -> ConnLimits {
        ConnLimits {
            per_client: PerClientLimit::new(max_per_client),
            handshake_timeout,
        }
    }
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits::new(100, Some(Duration::from_secs(5)))
    }
}

/// `fut`, cut off after `limit` when there is one (`None` when it was).
async fn within<F: Future>(limit: Option<Duration>, fut: F) -> Option<F::Output> {
    match limit {
        Some(t) => tokio::time::timeout(t, fut).await.ok(),
        None => Some(fut.await),
    }
}

/// The refusal a plaintext caller gets when TLS is required (Consul's text).
pub const PLAINTEXT_REFUSED: &str = "Non-TLS connection attempted with VerifyIncoming set";

/// Answers requests: `Ok(body)` or `Err(text)`.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        peer: Peer,
        method: u8,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, String>> + Send;

    /// Accept or refuse a connection's handshake ([`crate::HELLO`]); `Err` is sent back as the
    /// reason and the connection is closed. What `Ok` holds is given to every later call on
    /// the connection as [`Peer::hello`] (e.g. which kind of caller it is).
    fn hello(&self, _body: &[u8]) -> Result<u32, String> {
        Ok(0)
    }

    /// Whether a connection must open with a handshake.
    fn requires_hello(&self) -> bool {
        false
    }
}

/// Serve `listener` until `shutdown`, with the TLS settings `tls` holds when each connection
/// arrives and the connection limits `limits`; every task is tracked and stops with it.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    tls: SharedTls,
    limits: ConnLimits,
    shutdown: CancellationToken,
) {
    let tasks = TaskTracker::new();
    let conns = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_client = limits.per_client.clone();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(target: "agent.rpc", error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = per_client.admit(peer.ip()) else {
            tracing::error!(target: "agent.rpc", conn = %format!("from={peer}"), "rejecting RPC conn from because rpc_max_conns_per_client exceeded");
            continue;
        };
        let Ok(permit) = conns.clone().try_acquire_owned() else {
            tracing::warn!(target: "agent.rpc", %peer, "too many RPC connections; closing");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (handler, stop, inner, tls) =
            (handler.clone(), shutdown.clone(), tasks.clone(), tls.get());
        let handshake = limits.handshake_timeout;
        tasks.spawn(async move {
            let _held = (permit, slot);
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = accept(stream, peer, tls, handshake, handler, stop.clone(), inner) => {}
            }
        });
    }
    tasks.close();
    tasks.wait().await;
}

/// Tell TLS from plaintext, enforce `verify_incoming`, then serve the connection.
async fn accept<H: Handler>(
    stream: TcpStream,
    addr: SocketAddr,
    tls: crate::TlsSettings,
    handshake: Option<Duration>,
    handler: Arc<H>,
    stop: CancellationToken,
    tasks: TaskTracker,
) {
    let mut first = [0u8; 1];
    let is_tls = match within(handshake, stream.peek(&mut first)).await {
        Some(Ok(1)) => first[0] == TLS_HANDSHAKE,
        None => {
            tracing::debug!(target: "agent.rpc", %addr, "closing an RPC connection that sent nothing within rpc_handshake_timeout");
            return;
        }
        _ => return,
    };
    let incoming = tls.incoming.as_ref();
    if !is_tls {
        if incoming.is_some_and(|i| i.required) {
            tracing::warn!(target: "agent.rpc", %addr, "refusing a plaintext RPC connection: {PLAINTEXT_REFUSED}");
            refuse(stream, PLAINTEXT_REFUSED).await;
            return;
        }
        let peer = Peer {
            addr,
            tls: false,
            server_authorized: true,
            hello: 0,
        };
        let (r, w) = stream.into_split();
        return serve_conn(r, w, peer, handler, stop, tasks).await;
    }
    let Some(incoming) = incoming else {
        tracing::debug!(target: "agent.rpc", %addr, "closing a TLS RPC connection: this agent has no tls.internal_rpc certificate");
        return;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(incoming.config.clone());
    let stream = match within(handshake, acceptor.accept(stream)).await {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            tracing::warn!(target: "agent.rpc", %addr, error = %e, "RPC TLS handshake failed");
            return;
        }
        None => {
            tracing::debug!(target: "agent.rpc", %addr, "RPC TLS handshake timed out");
            return;
        }
    };
    let server_authorized = match (&incoming.server_identity, incoming.required) {
        (Some(name), true) => cert_valid_for(stream.get_ref().1.peer_certificates(), name),
        _ => true,
    };
    let peer = Peer {
        addr,
        tls: true,
        server_authorized,
        hello: 0,
    };
    let (r, w) = tokio::io::split(stream);
    serve_conn(r, w, peer, handler, stop, tasks).await
}

/// Refuse a connection without reading a request from it: an error frame with id 0 (which no
/// call has) says why, then the write side is closed and what the caller had already sent is
/// drained briefly, so the refusal arrives instead of a reset.
async fn refuse(mut stream: TcpStream, why: &str) {
    let f = Frame {
        kind: FrameKind::Error,
        id: 0,
        method: 0,
        body: why.as_bytes().to_vec(),
    };
    if write_frame(&mut stream, &f).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let drain = async {
        let mut total = 0;
        while let Ok(n) = stream.read(&mut sink).await {
            total += n;
            if n == 0 || total > 64 * 1024 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// Read requests from one connection and answer them.
async fn serve_conn<H, R, W>(
    mut read: R,
    write: W,
    mut peer: Peer,
    handler: Arc<H>,
    stop: CancellationToken,
    tasks: TaskTracker,
) where
    H: Handler,
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let addr = peer.addr;
    let write = Arc::new(tokio::sync::Mutex::new(write));
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_CONN));
    let mut first = true;
    loop {
        let frame = tokio::select! {
            _ = stop.cancelled() => break,
            f = read_frame(&mut read, MAX_FRAME) => f,
        };
        let f = match frame {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(target: "agent.rpc", peer = %addr, error = %e, "closing RPC connection after a malformed frame");
                break;
            }
        };
        if f.kind != FrameKind::Request {
            tracing::debug!(target: "agent.rpc", peer = %addr, "closing RPC connection: a peer sent a non-request frame");
            break;
        }
        if std::mem::take(&mut first) {
            // The handshake, or its absence, decides whether the connection lives.
            let verdict = if f.method == crate::HELLO {
                handler.hello(&f.body)
            } else if handler.requires_hello() {
                Err("RPC connection without a handshake; is the caller a proconsul agent of the same version?".to_string())
            } else {
                Ok(0)
            };
            let answer = |kind, body| Frame {
                kind,
                id: f.id,
                method: f.method,
                body,
            };
            match verdict {
                Err(reason) => {
                    tracing::warn!(target: "agent.rpc", peer = %addr, reason = %reason, "refusing RPC connection");
                    let mut w = write.lock().await;
                    let _ =
                        write_frame(&mut *w, &answer(FrameKind::Error, reason.into_bytes())).await;
                    break;
                }
                Ok(tag) if f.method == crate::HELLO => {
                    peer.hello = tag;
                    let mut w = write.lock().await;
                    if write_frame(&mut *w, &answer(FrameKind::Response, Vec::new()))
                        .await
                        .is_err()
                    {
                        break;
                    }
                    continue;
                }
                Ok(_) => {}
            }
        }
        let Ok(slot) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let (h, w) = (handler.clone(), write.clone());
        tasks.spawn(async move {
            let _slot = slot;
            let (kind, body) = match h.handle(peer, f.method, f.body).await {
                Ok(b) => (FrameKind::Response, b),
                Err(e) => (FrameKind::Error, e.into_bytes()),
            };
            let answer = Frame {
                kind,
                id: f.id,
                method: f.method,
                body,
            };
            let mut w = w.lock().await;
            let _ = write_frame(&mut *w, &answer).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Client, WireError};
    use std::time::Duration;

    /// Method 1 echoes after a delay given in the body's first byte (ms); method 2 fails.
    struct Echo;
    impl Handler for Echo {
        async fn handle(&self, _peer: Peer, method: u8, body: Vec<u8>) -> Result<Vec<u8>, String> {
            match method {
                1 => {
                    tokio::time::sleep(Duration::from_millis(
                        body.first().copied().unwrap_or(0) as u64
                    ))
                    .await;
                    Ok(body)
                }
                _ => Err(format!("unknown method {method}")),
            }
        }
    }

    #[tokio::test]
    async fn multiplexed_calls_errors_and_timeouts() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let stop = CancellationToken::new();
        let srv = tokio::spawn(serve(
            l,
            Arc::new(Echo),
            SharedTls::default(),
            ConnLimits::default(),
            stop.clone(),
        ));
        let c = Client::connect(&addr, Duration::from_secs(2))
            .await
            .unwrap();

        // answers come back to the right caller even out of order: the slow one is sent first
        let slow = {
            let c = c.clone();
            tokio::spawn(async move { c.call(1, vec![200, 1], Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut fast = Vec::new();
        for i in 0..50u8 {
            let c = c.clone();
            fast.push(tokio::spawn(async move {
                c.call(1, vec![0, i], Duration::from_secs(5)).await
            }));
        }
        for (i, f) in fast.into_iter().enumerate() {
            assert_eq!(f.await.unwrap().unwrap(), vec![0, i as u8]);
        }
        assert!(!slow.is_finished(), "the slow call should still be running");
        assert_eq!(slow.await.unwrap().unwrap(), vec![200, 1]);

        assert_eq!(
            c.call(2, vec![], Duration::from_secs(1)).await,
            Err(WireError::Remote("unknown method 2".into()))
        );
        assert_eq!(
            c.call(1, vec![250], Duration::from_millis(50)).await,
            Err(WireError::Timeout)
        );

        // the server stops: callers see the connection close, and it is reported dead
        stop.cancel();
        srv.await.unwrap();
        let r = c.call(1, vec![0], Duration::from_secs(1)).await;
        assert!(
            matches!(r, Err(WireError::Closed) | Err(WireError::Timeout)),
            "{r:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(c.is_dead());
        match Client::connect(&addr, Duration::from_secs(1)).await {
            Err(e) => assert!(e.is_retryable(), "{e}"),
            Ok(_) => panic!("connected to a stopped server"),
        }
    }

    /// Accepts only the handshake `b"dc1"`, and requires one.
    struct Picky;
    impl Handler for Picky {
        async fn handle(&self, peer: Peer, method: u8, body: Vec<u8>) -> Result<Vec<u8>, String> {
            Echo.handle(peer, method, body).await
        }
        fn hello(&self, body: &[u8]) -> Result<u32, String> {
            if body == b"dc1" {
                Ok(1)
            } else {
                Err(format!(
                    "wrong datacenter {:?}",
                    String::from_utf8_lossy(body)
                ))
            }
        }
        fn requires_hello(&self) -> bool {
            true
        }
    }

    #[tokio::test]
    async fn handshake_and_malformed_input() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let stop = CancellationToken::new();
        let srv = tokio::spawn(serve(
            l,
            Arc::new(Picky),
            SharedTls::default(),
            ConnLimits::default(),
            stop.clone(),
        ));
        let t = Duration::from_secs(2);

        // The right handshake: calls work.
        let c = Client::connect_hello(&addr, t, None, b"dc1".to_vec())
            .await
            .unwrap();
        assert_eq!(c.call(1, vec![0, 7], t).await.unwrap(), vec![0, 7]);
        // The wrong one: refused with the reason, not retryable, and the connection closed.
        let r = Client::connect_hello(&addr, t, None, b"dc2".to_vec()).await;
        let Err(e) = r else {
            panic!("accepted a wrong handshake")
        };
        assert_eq!(e, WireError::Rejected("wrong datacenter \"dc2\"".into()));
        assert!(!e.is_retryable());
        // None at all: the first call gets the reason, the connection is closed.
        let bare = Client::connect(&addr, t).await.unwrap();
        let r = bare.call(1, vec![0], t).await;
        assert!(
            matches!(&r, Err(WireError::Remote(m)) if m.contains("without a handshake")),
            "{r:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(bare.is_dead());

        // Malformed frames close that connection only: an oversized length, a short frame,
        // an unknown kind, a response where a request belongs, garbage.
        let bad: [&[u8]; 5] = [
            &[0xFF, 0xFF, 0xFF, 0xFF, 0, 0],
            &[0, 0, 0, 2, 0, 0],
            &[0, 0, 0, 10, 9, 0, 0, 0, 0, 0, 0, 0, 1, 1],
            &[0, 0, 0, 10, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1],
            b"GET / HTTP/1.1\r\n\r\n",
        ];
        for input in bad {
            let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
            s.write_all(input).await.unwrap();
            let mut buf = Vec::new();
            let n = tokio::time::timeout(t, s.read_to_end(&mut buf))
                .await
                .expect("the server closes a connection with a malformed frame");
            assert!(n.is_ok(), "{input:?}");
            assert!(buf.is_empty(), "{input:?}: answered {buf:?}");
        }
        // The server is still serving.
        assert_eq!(c.call(1, vec![0, 8], t).await.unwrap(), vec![0, 8]);
        stop.cancel();
        srv.await.unwrap();
    }

    #[tokio::test]
    async fn connections_per_client_and_the_handshake_deadline_are_bounded() {
        use tokio::io::AsyncReadExt;
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let stop = CancellationToken::new();
        let limits = ConnLimits::new(2, Some(Duration::from_millis(300)));
        let srv = tokio::spawn(serve(
            l,
            Arc::new(Echo),
            SharedTls::default(),
            limits,
            stop.clone(),
        ));
        let t = Duration::from_secs(2);
        let closed_at_once = |mut s: tokio::net::TcpStream| async move {
            let mut buf = [0u8; 1];
            tokio::time::timeout(Duration::from_millis(150), s.read(&mut buf)).await
        };

        // Two connections from 127.0.0.1 are served; a third is closed before it is read.
        let a = Client::connect(&addr, t).await.unwrap();
        let b = Client::connect(&addr, t).await.unwrap();
        assert_eq!(a.call(1, vec![0, 1], t).await.unwrap(), vec![0, 1]);
        assert_eq!(b.call(1, vec![0, 2], t).await.unwrap(), vec![0, 2]);
        let third = tokio::net::TcpStream::connect(&addr).await.unwrap();
        assert!(
            matches!(closed_at_once(third).await, Ok(Ok(0)) | Ok(Err(_))),
            "a third connection from one client is closed at once"
        );
        // Closing one frees its slot.
        drop(a);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let c = Client::connect(&addr, t).await.unwrap();
        assert_eq!(c.call(1, vec![0, 3], t).await.unwrap(), vec![0, 3]);
        drop((b, c));
        tokio::time::sleep(Duration::from_millis(50)).await;

        // A connection that sends nothing is closed after the handshake timeout, not before.
        let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let start = std::time::Instant::now();
        let mut buf = [0u8; 1];
        let r = tokio::time::timeout(t, idle.read(&mut buf)).await;
        assert!(
            matches!(r, Ok(Ok(0)) | Ok(Err(_))),
            "an idle connection is closed: {r:?}"
        );
        assert!(
            start.elapsed() >= Duration::from_millis(250),
            "{:?}",
            start.elapsed()
        );
        // Once past the first byte, a connection may stay idle longer than that.
        let d = Client::connect(&addr, t).await.unwrap();
        assert_eq!(d.call(1, vec![0, 4], t).await.unwrap(), vec![0, 4]);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(d.call(1, vec![0, 5], t).await.unwrap(), vec![0, 5]);
        stop.cancel();
        srv.await.unwrap();
    }
}
