//! Forwarding names outside our domains to upstream resolvers (`recursors`).
//!
//! The client's packet is sent as is over the transport it arrived on, so the upstream sees the
//! same ID, flags and EDNS size, and its reply goes back unchanged. Recursors are tried in order
//! (`sequential`) or in a random order (`random`), each with `recursor_timeout`; the first reply
//! wins. Consul does the same; when every recursor fails the caller answers SERVFAIL.

use std::net::SocketAddr;
use std::time::Duration;

use rand::seq::SliceRandom;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::handler::Transport;

/// The order recursors are tried in (`dns_config.recursor_strategy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RecursorStrategy {
    #[default]
    Sequential,
    Random,
}

/// Forward `packet` to the first recursor that answers; `None` when none did.
pub(crate) async fn forward(
    packet: &[u8],
    transport: Transport,
    recursors: &[SocketAddr],
    strategy: RecursorStrategy,
    timeout: Duration,
) -> Option<Vec<u8>> {
    let mut order = recursors.to_vec();
    if strategy == RecursorStrategy::Random {
        order.shuffle(&mut rand::rng());
    }
    for upstream in order {
        let attempt = async {
            match transport {
                Transport::Udp => via_udp(packet, upstream).await,
                Transport::Tcp => via_tcp(packet, upstream).await,
            }
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(reply)) => return Some(reply),
            Ok(Err(e)) => tracing::debug!(%upstream, error = %e, "dns: recursor failed"),
            Err(_) => tracing::debug!(%upstream, "dns: recursor timed out"),
        }
    }
    None
}

async fn via_udp(packet: &[u8], upstream: SocketAddr) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = if upstream.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(upstream).await?;
    sock.send(packet).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = sock.recv(&mut buf).await?;
        // Only a reply to this query (same ID, QR set) counts; anything else is ignored.
        if n >= 12 && buf[..2] == packet[..2] && buf[2] & 0x80 != 0 {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn via_tcp(packet: &[u8], upstream: SocketAddr) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(upstream).await?;
    let len = u16::try_from(packet.len()).map_err(std::io::Error::other)?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(packet);
    s.write_all(&out).await?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}
