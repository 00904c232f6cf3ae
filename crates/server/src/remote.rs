//! Server RPC between agents (port 8300): the methods, their msgpack bodies, a pool of
//! connections, and the calls built on it.
//!
//! One [`ConnPool`] per agent keeps one multiplexed `proconsul-rpc` connection per peer
//! address and reconnects when a connection dies. It carries three kinds of traffic:
//! Raft's own RPCs (it implements [`RaftTransport`]), reads and writes a follower forwards
//! to the leader, and reads and writes a client agent sends to a server. The receiving side
//! is [`Server::handle_rpc`], behind [`RpcHandler`].
//!
//! Every connection opens with a handshake naming the caller's datacenter ([`Hello`]). A
//! caller of another datacenter is a server forwarding a `?dc=` request over the WAN
//! (`federation.rs`): it may make exactly those calls — naming this datacenter, not marked
//! as forwarded inside its own — and is refused Raft and everything else with an error that
//! says so.
//!
//! A client agent's call may be forwarded once more by the server it reaches (to the leader);
//! a call a server forwarded is executed where it lands without forwarding again, so a
//! leadership change mid-call ends in an error rather than a loop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use proconsul_raft::{RaftTransport, RpcKind, TransportError, TransportFuture};
use proconsul_rpc::{Client, Peer, SharedTls, WireError};
use proconsul_types::{
    RaftStats, RpcError, ServerCall, ServerReply, ServerRequest, StatusRaftStats,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::Server;

/// Method numbers on the wire. 0–2 are Raft's (`RpcKind`).
pub mod method {
    /// Every other call: a [`proconsul_types::ServerRequest`] ([`super::Call`]) answered with a
    /// [`proconsul_types::ServerReply`].
    pub const CALL: u8 = 20;
}

/// How long to wait to connect to a peer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline of a non-blocking call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Raft calls get openraft's own deadline on top; this only bounds a stuck connection.
const RAFT_CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// A request sent to a server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Call {
    pub req: ServerRequest,
    /// Already forwarded by a server: serve it where it lands, never forward again.
    #[serde(default)]
    pub forwarded: bool,
    /// The caller's ACL token (empty: anonymous).
    #[serde(default)]
    pub token: String,
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(v).expect("in-memory msgpack encoding cannot fail")
}

fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T, String> {
    rmp_serde::from_slice(b).map_err(|e| format!("bad RPC body: {e}"))
}

/// The connection handshake: who is calling.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Hello {
    pub datacenter: String,
}

/// One connection per peer address, reconnected on failure.
pub struct ConnPool {
    conns: Mutex<HashMap<String, Client>>,
    /// The encoded [`Hello`] every connection opens with.
    hello: Vec<u8>,
    /// Whether (and how) new connections use TLS; a reload replaces it.
    tls: SharedTls,
}

impl ConnPool {
    /// A pool for an agent of `datacenter`, dialing in plaintext.
    pub fn new(datacenter: &str) -> Self {
        Self::with_tls(datacenter, SharedTls::default())
    }

    /// A pool for an agent of `datacenter` whose new connections follow `tls`.
    pub fn with_tls(datacenter: &str, tls: SharedTls) -> Self {
        ConnPool {
            conns: Mutex::default(),
            hello: encode(&Hello {
                datacenter: datacenter.to_string(),
            }),
            tls,
        }
    }

    /// The connection to `addr`, a server of `datacenter` (`None`: this agent's own), dialed
    /// if there is none alive. Over TLS the name checked is that datacenter's server name.
    async fn client(&self, addr: &str, datacenter: Option<&str>) -> Result<Client, WireError> {
        if let Some(c) = self.conns.lock().unwrap().get(addr) {
            if !c.is_dead() {
                return Ok(c.clone());
            }
        }
        let tls = match (self.tls.get().outgoing, datacenter) {
            (Some(o), Some(dc)) => Some(Arc::new(proconsul_rpc::Outgoing {
                config: o.config.clone(),
                server_name: o.name_in(dc).ok_or_else(|| {
                    WireError::Rejected(format!("{dc:?} makes no valid server name"))
                })?,
                domain: o.domain.clone(),
            })),
            (o, _) => o,
        };
        let c = Client::connect_hello(addr, CONNECT_TIMEOUT, tls.as_deref(), self.hello.clone())
            .await?;
        self.conns
            .lock()
            .unwrap()
            .insert(addr.to_string(), c.clone());
        Ok(c)
    }

    /// Call `method` on `addr`; a connection that failed is dropped so the next call redials.
    pub async fn call(
        &self,
        addr: &str,
        method: u8,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, WireError> {
        self.call_in(None, addr, method, body, timeout).await
    }

    async fn call_in(
        &self,
        datacenter: Option<&str>,
        addr: &str,
        method: u8,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, WireError> {
        let c = self.client(addr, datacenter).await?;
        let r = c.call(method, body, timeout).await;
        if matches!(&r, Err(e) if e.is_retryable()) {
            self.conns.lock().unwrap().remove(addr);
        }
        r
    }

    /// Send `req` to the server at `addr` (`forwarded`: by a server, to the leader).
    /// `Ok(answer)` when the server answered (the answer may itself be an error), `Err` when
    /// the call never got an answer (try another server).
    pub async fn request(
        &self,
        addr: &str,
        req: ServerRequest,
        token: &str,
        forwarded: bool,
    ) -> Result<Result<ServerReply, RpcError>, WireError> {
        self.request_to(None, addr, req, token, forwarded).await
    }

    /// Send `req` to the server at `addr` of another `datacenter` (a `?dc=` request).
    pub async fn request_in(
        &self,
        datacenter: &str,
        addr: &str,
        req: ServerRequest,
        token: &str,
    ) -> Result<Result<ServerReply, RpcError>, WireError> {
        self.request_to(Some(datacenter), addr, req, token, false)
            .await
    }

    async fn request_to(
        &self,
        datacenter: Option<&str>,
        addr: &str,
        req: ServerRequest,
        token: &str,
        forwarded: bool,
    ) -> Result<Result<ServerReply, RpcError>, WireError> {
        let timeout = req.max_wait().map_or(CALL_TIMEOUT, |w| w + CALL_TIMEOUT);
        let body = encode(&Call {
            req,
            forwarded,
            token: token.to_string(),
        });
        static CALLS: OnceLock<metrics::Counter> = OnceLock::new();
        CALLS
            .get_or_init(|| metrics::counter!("consul.client.rpc"))
            .increment(1);
        let r = self
            .call_in(datacenter, addr, method::CALL, body, timeout)
            .await;
        if r.is_err() {
            metrics::counter!("consul.client.rpc.failed").increment(1);
        }
        decode(&r?).map_err(WireError::Protocol)
    }

    /// [`ConnPool::request`] with a typed request and reply.
    pub async fn call_typed<R: ServerCall>(
        &self,
        addr: &str,
        req: R,
    ) -> Result<Result<R::Reply, RpcError>, WireError> {
        Ok(self
            .request(addr, req.into_request(), "", false)
            .await?
            .and_then(R::from_reply))
    }

    /// The server at `addr`'s view of leader and peers.
    pub async fn status(&self, addr: &str) -> Result<RaftStats, WireError> {
        self.call_typed(addr, StatusRaftStats {})
            .await?
            .map_err(|e| WireError::Remote(e.to_string()))
    }
}

/// The pool shared by Raft's transport, forwarding and a client agent's calls.
#[derive(Clone)]
pub struct SharedPool(pub Arc<ConnPool>);

impl SharedPool {
    /// A pool for an agent of `datacenter`, dialing in plaintext.
    pub fn new(datacenter: &str) -> Self {
        SharedPool(Arc::new(ConnPool::new(datacenter)))
    }

    /// A pool for an agent of `datacenter` whose new connections follow `tls`.
    pub fn with_tls(datacenter: &str, tls: SharedTls) -> Self {
        SharedPool(Arc::new(ConnPool::with_tls(datacenter, tls)))
    }
}

impl std::ops::Deref for SharedPool {
    type Target = ConnPool;
    fn deref(&self) -> &ConnPool {
        &self.0
    }
}

impl RaftTransport for SharedPool {
    fn call(&self, _target: u64, addr: &str, kind: RpcKind, body: Vec<u8>) -> TransportFuture {
        let pool = self.0.clone();
        let addr = addr.to_string();
        Box::pin(async move {
            pool.call(&addr, kind.as_u8(), body, RAFT_CALL_TIMEOUT)
                .await
                .map_err(|e| match e {
                    WireError::Connect { .. } => TransportError::Unreachable(addr.clone()),
                    WireError::Timeout => TransportError::Timeout,
                    WireError::Remote(m) => TransportError::Remote(m),
                    other => TransportError::Network(other.to_string()),
                })
        })
    }
}

/// Who opened a connection, as its handshake said ([`Peer::hello`]).
mod caller {
    pub const OWN_DATACENTER: u32 = 1;
    pub const OTHER_DATACENTER: u32 = 2;
}

/// The RPC listener's handler: everything a server answers on port 8300.
pub struct RpcHandler(pub Server);

impl proconsul_rpc::Handler for RpcHandler {
    async fn handle(&self, peer: Peer, method: u8, body: Vec<u8>) -> Result<Vec<u8>, String> {
        self.0.handle_rpc(peer, method, body).await
    }

    /// Agents of this datacenter, and servers of others forwarding requests for this one.
    fn hello(&self, body: &[u8]) -> Result<u32, String> {
        let h: Hello = decode(body)?;
        Ok(if h.datacenter == self.0.datacenter() {
            caller::OWN_DATACENTER
        } else {
            caller::OTHER_DATACENTER
        })
    }

    fn requires_hello(&self) -> bool {
        true
    }
}

/// Why a caller without a server's certificate may not make a server-only call (worded
/// after Consul's `AuthorizeServerConn`).
fn not_a_server(datacenter: &str) -> String {
    format!(
        "AuthorizeServerConn failed certificate validation: the caller's certificate is not valid for server.{datacenter}.<domain>"
    )
}

impl Server {
    /// Answer one RPC: Raft's, or a [`Call`] through [`Server::call`]. Raft and calls forwarded
    /// by a server are server-only: under `verify_incoming` and `verify_server_hostname` the
    /// caller's certificate must name a server of this datacenter.
    pub async fn handle_rpc(
        &self,
        peer: Peer,
        method: u8,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let refuse = || {
            tracing::warn!(target: "agent.rpc", peer = %peer.addr, method, "refusing a server-only call from a caller without a server certificate");
            Err(not_a_server(self.datacenter()))
        };
        let foreign = peer.hello == caller::OTHER_DATACENTER;
        let not_ours = || {
            let ours = self.datacenter();
            Err(format!(
                "refusing RPC from another datacenter: this server is in datacenter {ours:?} and serves other datacenters only requests for {ours:?}"
            ))
        };
        if let Some(kind) = RpcKind::from_u8(method) {
            if foreign {
                return not_ours();
            }
            if !peer.server_authorized {
                return refuse();
            }
            let start = std::time::Instant::now();
            let r = self
                .inner
                .raft
                .handle_rpc(kind, &body)
                .await
                .map_err(|e| e.to_string());
            static TIMERS: OnceLock<[metrics::Histogram; 3]> = OnceLock::new();
            let timers = TIMERS.get_or_init(|| {
                [
                    metrics::histogram!("consul.raft.rpc.appendEntries"),
                    metrics::histogram!("consul.raft.rpc.requestVote"),
                    metrics::histogram!("consul.raft.rpc.installSnapshot"),
                ]
            });
            timers[kind.as_u8() as usize].record(start.elapsed().as_secs_f64() * 1000.0);
            return r;
        }
        match method {
            method::CALL => {
                static REQUESTS: OnceLock<metrics::Counter> = OnceLock::new();
                REQUESTS
                    .get_or_init(|| metrics::counter!("consul.rpc.request"))
                    .increment(1);
                let c: Call = decode(&body)?;
                if foreign && (c.forwarded || c.req.datacenter() != self.datacenter()) {
                    return not_ours();
                }
                if c.forwarded && !peer.server_authorized {
                    return refuse();
                }
                let r = self.call(c.req, &c.token, c.forwarded).await;
                Ok(encode(&r))
            }
            other => Err(format!("unknown RPC method {other}")),
        }
    }
}
