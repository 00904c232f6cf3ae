//! Sockets: one TCP listener and a few UDP worker sockets (`SO_REUSEPORT`, one per core)
//! per bind address, on the same port. On Linux each UDP socket has a thread of its own
//! (`udp.rs` says why); elsewhere a task.
//!
//! Every task is spawned into the server's [`TaskTracker`] and watches the shutdown token, which
//! is checked first in every `select!`. Work is bounded: UDP queries in flight (excess packets are
//! dropped; the client retries), concurrent TCP connections (excess ones are closed on accept)
//! and TCP idle time (a connection without a complete query for `tcp_idle_timeout` is closed).
//! TCP messages carry RFC 1035's 2-byte length prefix; queries on one connection are answered
//! in order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::handler::{Handler, Transport};
use crate::{DnsBackend, DnsError, DnsServerConfig};

/// A running DNS server. Dropping it does not stop it; cancel the shutdown token passed to
/// [`DnsServer::start`], then [`DnsServer::wait`].
#[derive(Debug)]
pub struct DnsServer {
    udp: Vec<SocketAddr>,
    tcp: Vec<SocketAddr>,
    tracker: TaskTracker,
}

impl DnsServer {
    /// Bind every address in `config.bind` (UDP and TCP) and start serving until `shutdown`.
    pub async fn start<B: DnsBackend>(
        config: DnsServerConfig,
        backend: Arc<B>,
        shutdown: CancellationToken,
    ) -> Result<DnsServer, DnsError> {
        let handler = Handler::new(config.clone(), backend)?;
        let mut sockets = Vec::new();
        for addr in &config.bind {
            sockets.push(bind_pair(*addr).await?);
        }
        let tracker = TaskTracker::new();
        let mut server = DnsServer {
            udp: Vec::new(),
            tcp: Vec::new(),
            tracker: tracker.clone(),
        };
        let tcp_slots = Arc::new(Semaphore::new(config.max_tcp_connections.max(1)));
        let udp_slots = Arc::new(Semaphore::new(config.max_udp_in_flight.max(1)));
        for (addr, (udp, tcp)) in config.bind.iter().zip(sockets) {
            // All were just bound, so local_addr cannot fail in practice.
            server.udp.extend(
                udp.first()
                    .and_then(|u| u.local_addr().ok())
                    .and_then(|a| a.as_socket()),
            );
            server.tcp.extend(tcp.local_addr().ok());
            tracing::info!(udp = ?server.udp.last(), tcp = ?server.tcp.last(), workers = udp.len(), "dns: listening");
            for socket in udp {
                #[cfg(target_os = "linux")]
                crate::udp::serve(
                    socket,
                    handler.clone(),
                    udp_slots.clone(),
                    tracker.clone(),
                    shutdown.clone(),
                )
                .map_err(|source| DnsError::Bind {
                    addr: server.udp.last().copied().unwrap_or(*addr),
                    source,
                })?;
                #[cfg(not(target_os = "linux"))]
                tracker.spawn(udp_loop(
                    Arc::new(
                        tokio::net::UdpSocket::from_std(socket.into()).map_err(|source| {
                            DnsError::Bind {
                                addr: server.udp.last().copied().unwrap_or(*addr),
                                source,
                            }
                        })?,
                    ),
                    handler.clone(),
                    udp_slots.clone(),
                    tracker.clone(),
                    shutdown.clone(),
                ));
            }
            tracker.spawn(tcp_loop(
                tcp,
                handler.clone(),
                tcp_slots.clone(),
                config.tcp_idle_timeout,
                tracker.clone(),
                shutdown.clone(),
            ));
        }
        tracker.close();
        Ok(server)
    }

    /// The bound UDP addresses, in `config.bind` order.
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp
    }

    /// The bound TCP addresses, in `config.bind` order (same ports as UDP).
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp
    }

    /// Wait until every listener and in-flight query has finished (after shutdown).
    pub async fn wait(self) {
        self.tracker.wait().await;
    }
}

/// UDP sockets per bind address, sharing the port through `SO_REUSEPORT` so the kernel spreads
/// queries over them (by source address and port) and each core can answer on its own.
fn udp_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4))
}

/// A UDP socket on `addr` that shares its port with the other workers' sockets (non-blocking;
/// the Linux worker threads switch theirs to blocking).
fn bind_udp(addr: SocketAddr) -> std::io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// Bind TCP and the UDP worker sockets on `addr`. TCP is bound without `SO_REUSEPORT`, first, so
/// a port another server holds is still an error. For port 0, retry until TCP gets a port whose
/// UDP side is free too.
async fn bind_pair(addr: SocketAddr) -> Result<(Vec<socket2::Socket>, TcpListener), DnsError> {
    let err = |source| DnsError::Bind { addr, source };
    let mut last = None;
    for _ in 0..16 {
        let tcp = TcpListener::bind(addr).await.map_err(err)?;
        let port = tcp.local_addr().map_err(err)?.port();
        let at = SocketAddr::new(addr.ip(), port);
        let udp: std::io::Result<Vec<socket2::Socket>> =
            (0..udp_workers()).map(|_| bind_udp(at)).collect();
        match udp {
            Ok(udp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 => last = Some(e),
            Err(e) => return Err(err(e)),
        }
    }
    Err(err(
        last.unwrap_or_else(|| std::io::Error::other("no free port"))
    ))
}

/// Answer one query the slow way, in its own task: bounded by `slots` (dropped when full).
#[cfg(not(target_os = "linux"))]
fn spawn_query<B: DnsBackend>(
    socket: &Arc<tokio::net::UdpSocket>,
    handler: &Handler<B>,
    slots: &Arc<Semaphore>,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
    packet: Vec<u8>,
    peer: SocketAddr,
) {
    let Ok(permit) = slots.clone().try_acquire_owned() else {
        tracing::debug!(%peer, "dns: too many udp queries in flight, dropping");
        return;
    };
    let (socket, handler, shutdown) = (socket.clone(), handler.clone(), shutdown.clone());
    tracker.spawn(async move {
        let _permit = permit;
        let reply = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            r = handler.handle(&packet, Transport::Udp) => r,
        };
        if let Some(reply) = reply {
            if let Err(e) = socket.send_to(&reply, peer).await {
                tracing::debug!(error = %e, %peer, "dns: udp send failed");
            }
        }
    });
}

/// Answer cached queries inline, the rest in a task each.
#[cfg(not(target_os = "linux"))]
async fn udp_loop<B: DnsBackend>(
    socket: Arc<tokio::net::UdpSocket>,
    handler: Handler<B>,
    slots: Arc<Semaphore>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, peer) = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // e.g. ECONNREFUSED from an earlier send: per packet, not fatal.
                    tracing::debug!(error = %e, "dns: udp receive failed");
                    continue;
                }
            },
        };
        // Cached answers are cheap and need no task: reply inline.
        let start = std::time::Instant::now();
        match handler.cached(&buf[..n], Transport::Udp) {
            Some(reply) => {
                if let Err(e) = socket.send_to(&reply, peer).await {
                    tracing::debug!(error = %e, %peer, "dns: udp send failed");
                }
                let reverse = usize::from(crate::handler::is_reverse(&buf[..n]));
                handler.record_batch(start.elapsed(), 1 - reverse, reverse);
            }
            None => spawn_query(
                &socket,
                &handler,
                &slots,
                &tracker,
                &shutdown,
                buf[..n].to_vec(),
                peer,
            ),
        }
    }
}

async fn tcp_loop<B: DnsBackend>(
    listener: TcpListener,
    handler: Handler<B>,
    slots: Arc<Semaphore>,
    idle: Duration,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "dns: tcp accept failed");
                    // Out of file descriptors and the like: back off a little.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "dns: too many tcp connections, closing");
            continue;
        };
        let (handler, shutdown) = (handler.clone(), shutdown.clone());
        tracker.spawn(async move {
            let _permit = permit;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {}
                r = serve_conn(stream, &handler, idle) => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, %peer, "dns: tcp connection ended");
                    }
                }
            }
        });
    }
}

/// Answer length-prefixed queries until EOF, an error, or `idle` without a complete query.
async fn serve_conn<B: DnsBackend>(
    mut stream: TcpStream,
    handler: &Handler<B>,
    idle: Duration,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 2];
        let read = async {
            stream.read_exact(&mut len).await?;
            buf.resize(usize::from(u16::from_be_bytes(len)), 0);
            stream.read_exact(&mut buf).await
        };
        match tokio::time::timeout(idle, read).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        }
        let Some(reply) = handler.handle(&buf, Transport::Tcp).await else {
            continue;
        };
        let Ok(n) = u16::try_from(reply.len()) else {
            continue;
        };
        let mut out = Vec::with_capacity(reply.len() + 2);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&reply);
        match tokio::time::timeout(idle, stream.write_all(&out)).await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        }
    }
}
