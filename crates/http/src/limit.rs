//! Per-client connection limit (`limits.http_max_conns_per_client`, Consul's default 200).
//!
//! A listener wrapper counts open connections per remote IP; a connection over the limit is
//! closed at once, before any request is read, so one client cannot exhaust the agent's sockets.
//! On plain HTTP it is first sent Consul's answer (go-connlimit's 429 handler), which clients
//! report as `Unexpected response code: 429 (Your IP is issuing too many concurrent
//! connections, please rate limit your calls)`; over TLS nothing can be written before a
//! handshake, so it is only closed.
//! The count drops when the connection's stream is dropped. The connections it admits read
//! through their client's scheduler ([`crate::fair`]).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use proconsul_types::conn_limit::{ClientSlot, PerClientLimit};

use crate::fair::{ClientSched, ConnGate};

/// What a request knows of its connection (axum's `ConnectInfo`): its place with its client's
/// scheduler.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    pub(crate) gate: Arc<ConnGate>,
}

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The agent's count of HTTP(S) connections per client IP, shared by all its HTTP and HTTPS
/// listeners (as Consul's one `httpConnLimiter`), with each client's scheduler.
pub type HttpConnLimit = PerClientLimit<ClientSched>;

/// A count for `max_per_client` connections per client IP (0 = no limit); a reload may change
/// the limit ([`PerClientLimit::set_max`]).
pub fn conn_limit(max_per_client: u32) -> Arc<HttpConnLimit> {
    PerClientLimit::new(max_per_client)
}

/// What Consul writes to a plain HTTP connection over the per-client limit before closing it.
pub const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\n\
Content-Type: text/plain\r\n\
Content-Length: 81\r\n\
Connection: close\r\n\r\n\
Your IP is issuing too many concurrent connections, please rate limit your calls\n";

/// A TCP listener that admits at most its limit's connections per remote IP.
pub struct LimitedListener {
    inner: TcpListener,
    limit: Arc<HttpConnLimit>,
    /// Plain HTTP: a refused connection gets [`TOO_MANY_CONNECTIONS`] before it is closed.
    answer_refused: bool,
}

impl LimitedListener {
    /// For plain HTTP.
    pub fn new(inner: TcpListener, limit: Arc<HttpConnLimit>) -> Self {
        LimitedListener {
            inner,
            limit,
            answer_refused: true,
        }
    }

    /// For connections that will speak TLS: a refused one is closed without an answer.
    pub fn for_tls(inner: TcpListener, limit: Arc<HttpConnLimit>) -> Self {
        LimitedListener {
            answer_refused: false,
            ..LimitedListener::new(inner, limit)
        }
    }
}

/// An accepted connection that releases its slot when dropped.
pub struct CountedStream {
    stream: TcpStream,
    gate: Arc<ConnGate>,
    /// `gate` as a waker: the socket's readiness goes through the client's scheduler.
    gate_waker: Waker,
    _slot: ClientSlot<ClientSched>,
}

impl CountedStream {
    /// What its requests know of it.
    pub(crate) fn client_info(&self) -> ClientInfo {
        ClientInfo {
            gate: self.gate.clone(),
        }
    }
}

impl Drop for CountedStream {
    fn drop(&mut self) {
        self.gate.close();
    }
}

impl axum::serve::Listener for LimitedListener {
    type Io = CountedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = match self.inner.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(target: "agent.http", error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(slot) = self.limit.admit(addr.ip()) else {
                tracing::warn!(target: "agent.http", client = %addr.ip(), limit = self.limit.max(), "too many connections from one client; closing");
                if self.answer_refused {
                    // Never waits: a new socket's send buffer has room, and if it has not,
                    // the client goes without the answer rather than holding up the accepts.
                    let _ = stream.try_write(TOO_MANY_CONNECTIONS);
                }
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let gate = ConnGate::new(slot.shared().clone());
            return (
                CountedStream {
                    stream,
                    gate_waker: Waker::from(gate.clone()),
                    gate,
                    _slot: slot,
                },
                addr,
            );
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.gate.may_read(cx.waker()) {
            return Poll::Pending; // the scheduler wakes the task when its turn comes
        }
        let before = buf.filled().len();
        let r =
            Pin::new(&mut this.stream).poll_read(&mut Context::from_waker(&this.gate_waker), buf);
        let got_bytes = matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before;
        this.gate.after_read(got_bytes, r.is_pending());
        r
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use crate::fair::RUNNING_PER_CLIENT;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Every request stays in its handler until released, counting how many are inside.
    #[derive(Default)]
    struct Hold {
        inside: AtomicUsize,
        release: tokio::sync::Notify,
    }

    async fn send_from(
        addr: SocketAddr,
        source: &str,
        method: &str,
        path: &str,
    ) -> tokio::net::TcpStream {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("{source}:0").parse().unwrap()).unwrap();
        let mut s = sock.connect(addr).await.unwrap();
        let req = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx");
        s.write_all(req.as_bytes()).await.unwrap();
        s
    }

    async fn inside_becomes(hold: &Hold, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while hold.inside.load(Ordering::SeqCst) != n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} inside, waiting for {n}",
                hold.inside.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_has_a_bounded_number_of_requests_running_and_others_are_not_queued_behind_it()
    {
        let hold = Arc::new(Hold::default());
        let h = hold.clone();
        let router = axum::Router::new()
            .route(
                "/hold",
                axum::routing::any(move || {
                    let h = h.clone();
                    async move {
                        h.inside.fetch_add(1, Ordering::SeqCst);
                        h.release.notified().await;
                        h.inside.fetch_sub(1, Ordering::SeqCst);
                        "done"
                    }
                }),
            )
            .layer(crate::middleware::AroundLayer {
                default_allow: true,
            });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let srv = tokio::spawn(crate::serve(l, router, super::conn_limit(0), stop.clone()));

        // A client alone is not held back: 12 reads over 12 connections all run.
        let mut lone = Vec::new();
        for _ in 0..12 {
            lone.push(send_from(addr, "127.0.0.3", "GET", "/hold").await);
        }
        inside_becomes(&hold, 12).await;
        // Beside it, a blocking query and a write wait without holding one of their client's
        // places...
        let _blocking = send_from(addr, "127.0.0.1", "GET", "/hold?index=5").await;
        let _write = send_from(addr, "127.0.0.1", "PUT", "/hold").await;
        inside_becomes(&hold, 14).await;
        // ...and 20 reads from that client over 20 connections: only its share runs.
        let mut flood = Vec::new();
        for _ in 0..20 {
            flood.push(send_from(addr, "127.0.0.1", "GET", "/hold").await);
        }
        inside_becomes(&hold, 14 + RUNNING_PER_CLIENT).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(hold.inside.load(Ordering::SeqCst), 14 + RUNNING_PER_CLIENT);
        // A third client's read runs at once.
        let _other = send_from(addr, "127.0.0.2", "GET", "/hold").await;
        inside_becomes(&hold, 15 + RUNNING_PER_CLIENT).await;
        // Released, every waiting read gets its turn and is answered.
        for mut s in flood {
            let mut buf = [0u8; 256];
            let n = loop {
                hold.release.notify_waiters();
                if let Ok(r) =
                    tokio::time::timeout(Duration::from_millis(20), s.read(&mut buf)).await
                {
                    break r.unwrap();
                }
            };
            let head = String::from_utf8_lossy(&buf[..n]);
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        }
        stop.cancel();
        let _ = srv.await;
    }
}
