//! TCP for the pool: accepting connections and serving push/pull and memberlist's TCP ping,
//! and the outbound push/pull exchange and fallback ping — each with a deadline and a size
//! cap.
//!
//! Owns connections and nothing else: framing and decoding belong to the wire layer
//! ([`WireConfig`]), and what a remote state means belongs to the actor, which gets it as a
//! command.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Semaphore};

use super::{nonce, Cmd, Pool, MAX_STREAM_MESSAGE, MAX_TCP_CONNS, TCP_TIMEOUT};
use crate::error::PoolError;
use crate::wire::codec::WireConfig;
use crate::wire::framing;
use crate::wire::messages::{self, AckResp, Message};
use crate::wire::security;
use crate::Error;

impl Pool {
    pub(super) async fn accept_loop(self, tcp: TcpListener) {
        let limit = Arc::new(Semaphore::new(MAX_TCP_CONNS));
        loop {
            let (stream, from) = tokio::select! {
                _ = self.inner.shutdown.cancelled() => return,
                r = tcp.accept() => match r {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(target: "agent", error = %e, "gossip accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                tracing::warn!(target: "agent", pool = self.inner.pool, %from, "too many gossip TCP connections; dropping one");
                continue;
            };
            let p = self.clone();
            self.inner.tasks.spawn(async move {
                let _permit = permit;
                let r = tokio::select! {
                    r = tokio::time::timeout(TCP_TIMEOUT, p.serve_stream(stream)) => r,
                    _ = p.inner.shutdown.cancelled() => return,
                };
                match r {
                    Ok(Err(e)) => tracing::warn!(target: "agent", pool = p.inner.pool, %from, error = %e, "memberlist: failed to handle stream"),
                    Err(_) => tracing::debug!(target: "agent", %from, "gossip stream timed out"),
                    Ok(Ok(())) => {}
                }
            });
        }
    }

    async fn serve_stream(&self, mut stream: TcpStream) -> Result<(), PoolError> {
        let wire = self.inner.wire.read().unwrap().clone();
        let mut buf = Vec::new();
        read_label(&mut stream, &mut buf, &wire).await?;
        let msg = read_message(&mut stream, &mut buf, &wire).await?;
        for m in msg.flatten() {
            match m {
                Message::PushPull(remote) => {
                    let (tx, rx) = oneshot::channel();
                    self.send(Cmd::LocalState(remote.join, tx)).await?;
                    let local = rx.await.map_err(|_| PoolError::ShutDown)?;
                    write_message(&mut stream, &Message::PushPull(local), &wire, true).await?;
                    self.check_merge(&remote)?;
                    self.send(Cmd::Merge(remote)).await?;
                }
                Message::Ping(p) => {
                    if !p.node.is_empty() && p.node != self.inner.name {
                        return Err(PoolError::UnexpectedPing(p.node));
                    }
                    let ack = Message::Ack(AckResp {
                        seq_no: p.seq_no,
                        payload: Vec::new(),
                    });
                    write_message(&mut stream, &ack, &wire, false).await?;
                }
                Message::User(_) => {
                    // Reliable user messages carry Serf messages; nothing we act on.
                }
                other => return Err(PoolError::UnexpectedMessage(other.message_type())),
            }
        }
        Ok(())
    }
}

/// Read the optional label header at the start of a connection and check it.
async fn read_label(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    wire: &WireConfig,
) -> Result<(), PoolError> {
    let need = loop {
        if let Some(n) = framing::label_header_len(buf) {
            break n;
        }
        let more = buf.len() + 1;
        fill(stream, buf, more).await?;
    };
    fill(stream, buf, need).await?;
    let rest_len = wire.accept_stream(&buf[..need])?.len();
    debug_assert_eq!(rest_len, 0);
    buf.drain(..need);
    Ok(())
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, n: usize) -> Result<(), PoolError> {
    let mut chunk = [0u8; 16 * 1024];
    while buf.len() < n {
        let k = stream.read(&mut chunk).await?;
        if k == 0 {
            return Err(PoolError::Eof);
        }
        buf.extend_from_slice(&chunk[..k]);
    }
    Ok(())
}

/// Read one stream message, reading more while it is incomplete (bounded).
async fn read_message(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    wire: &WireConfig,
) -> Result<Message, PoolError> {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        if !buf.is_empty() {
            match wire.decode_stream(buf) {
                Ok((m, used)) => {
                    buf.drain(..used);
                    if let Message::Err(e) = &m {
                        return Err(PoolError::Remote(e.error.clone()));
                    }
                    return Ok(m);
                }
                Err(Error::Truncated(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let announced = security::announced_stream_len(buf).unwrap_or(0);
        if buf.len() >= MAX_STREAM_MESSAGE || announced > MAX_STREAM_MESSAGE {
            return Err(PoolError::TooLarge);
        }
        let k = stream.read(&mut chunk).await?;
        if k == 0 {
            return Err(PoolError::Eof);
        }
        buf.extend_from_slice(&chunk[..k]);
    }
}

async fn write_message(
    stream: &mut TcpStream,
    m: &Message,
    wire: &WireConfig,
    compress: bool,
) -> Result<(), PoolError> {
    let n = nonce(&mut rand::rng());
    let bytes = wire.encode_stream(m, compress, n)?;
    stream.write_all(&bytes).await?;
    Ok(stream.flush().await?)
}

/// memberlist's TCP fallback probe: send a ping as a stream message, read the ack.
pub(super) async fn tcp_ping(
    to: SocketAddr,
    ping: messages::Ping,
    pool: &Pool,
) -> Result<AckResp, PoolError> {
    let wire = pool.inner.wire.read().unwrap().clone();
    let mut stream = TcpStream::connect(to).await?;
    let mut out = wire.stream_prelude()?;
    let n = nonce(&mut rand::rng());
    out.extend(wire.encode_stream(&Message::Ping(ping), false, n)?);
    stream.write_all(&out).await?;
    let mut buf = Vec::new();
    let msg = read_message(&mut stream, &mut buf, &wire).await?;
    msg.flatten()
        .into_iter()
        .find_map(|m| match m {
            Message::Ack(a) => Some(a),
            _ => None,
        })
        .ok_or(PoolError::NoAck)
}

/// Outbound push/pull: connect, send our state, read theirs.
pub(super) async fn exchange(
    to: SocketAddr,
    local: messages::PushPull,
    wire: &WireConfig,
) -> Result<messages::PushPull, PoolError> {
    let mut stream = TcpStream::connect(to).await?;
    let mut out = wire.stream_prelude()?;
    let n = nonce(&mut rand::rng());
    out.extend(wire.encode_stream(&Message::PushPull(local), true, n)?);
    stream.write_all(&out).await?;
    let mut buf = Vec::new();
    let msg = read_message(&mut stream, &mut buf, wire).await?;
    msg.flatten()
        .into_iter()
        .find_map(|m| match m {
            Message::PushPull(pp) => Some(pp),
            _ => None,
        })
        .ok_or(PoolError::NoRemoteState)
}

/// `host`, `ip`, `ip:port`, `[v6]:port`, `host:port` → socket addresses.
pub async fn resolve(s: &str, default_port: u16) -> Result<Vec<SocketAddr>, PoolError> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(vec![a]);
    }
    if let Ok(ip) = s.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, default_port)]);
    }
    let target = if s.contains(':') {
        s.to_string()
    } else {
        format!("{s}:{default_port}")
    };
    let v: Vec<SocketAddr> = tokio::net::lookup_host(target).await?.collect();
    if v.is_empty() {
        return Err(PoolError::NoAddresses);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolve_forms() {
        assert_eq!(
            resolve("127.0.0.5", 8301).await.unwrap(),
            vec!["127.0.0.5:8301".parse().unwrap()]
        );
        assert_eq!(
            resolve("127.0.0.5:9", 8301).await.unwrap(),
            vec!["127.0.0.5:9".parse().unwrap()]
        );
        assert_eq!(
            resolve("[::1]", 8301).await.unwrap(),
            vec!["[::1]:8301".parse().unwrap()]
        );
        assert!(resolve("no-such-host.invalid", 1).await.is_err());
    }
}
