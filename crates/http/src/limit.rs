//! Per-client connection limit (`limits.http_max_conns_per_client`, Consul's default 200).
//!
//! A listener wrapper counts open connections per remote IP; a connection over the limit is
//! closed at once, before any request is read, so one client cannot exhaust the agent's sockets.
//! The count drops when the connection's stream is dropped.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

type Counts = Arc<Mutex<HashMap<IpAddr, u32>>>;

/// A TCP listener that admits at most `max_per_client` connections per remote IP (0 = no limit).
pub struct LimitedListener {
    inner: TcpListener,
    max_per_client: u32,
    counts: Counts,
}

impl LimitedListener {
    pub fn new(inner: TcpListener, max_per_client: u32) -> Self {
        LimitedListener {
            inner,
            max_per_client,
            counts: Arc::default(),
        }
    }
}

/// An accepted connection that releases its slot when dropped.
pub struct CountedStream {
    stream: TcpStream,
    ip: IpAddr,
    counts: Counts,
}

impl Drop for CountedStream {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap();
        if let Some(n) = c.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.remove(&self.ip);
            }
        }
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
            let ip = addr.ip();
            {
                let mut c = self.counts.lock().unwrap();
                let n = c.entry(ip).or_insert(0);
                if self.max_per_client > 0 && *n >= self.max_per_client {
                    drop(c);
                    tracing::warn!(target: "agent.http", client = %ip, limit = self.max_per_client, "too many connections from one client; closing");
                    drop(stream);
                    continue;
                }
                *n += 1;
            }
            let _ = stream.set_nodelay(true);
            return (
                CountedStream {
                    stream,
                    ip,
                    counts: self.counts.clone(),
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
