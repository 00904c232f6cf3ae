//! Per-client connection limit (`limits.http_max_conns_per_client`, Consul's default 200).
//!
//! A listener wrapper counts open connections per remote IP; a connection over the limit is
//! closed at once, before any request is read, so one client cannot exhaust the agent's sockets.
//! The count drops when the connection's stream is dropped.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use proconsul_types::conn_limit::{ClientSlot, PerClientLimit};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener that admits at most `max_per_client` connections per remote IP (0 = no limit).
pub struct LimitedListener {
    inner: TcpListener,
    limit: Arc<PerClientLimit>,
}

impl LimitedListener {
    pub fn new(inner: TcpListener, max_per_client: u32) -> Self {
        LimitedListener {
            inner,
            limit: PerClientLimit::new(max_per_client),
        }
    }
}

/// An accepted connection that releases its slot when dropped.
pub struct CountedStream {
    stream: TcpStream,
    _slot: ClientSlot,
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
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            return (
                CountedStream {
                    stream,
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
        Pin::new(&mut self.stream).poll_read(cx, buf)
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
