//! Server RPC between agents (port 8300): the methods, their msgpack bodies, a pool of
//! connections, and the calls built on it.
//!
//! One [`ConnPool`] per agent keeps one multiplexed `proconsul-rpc` connection per peer
//! address and reconnects when a connection dies. It carries three kinds of traffic:
//! Raft's own RPCs (it implements [`RaftTransport`]), reads and writes a follower forwards
//! to the leader, and reads and writes a client agent sends to a server. The receiving side
//! is [`Server::handle_rpc`], behind [`RpcHandler`].
//!
//! Every connection opens with a handshake naming the caller's datacenter ([`Hello`]); a
//! server refuses callers of another datacenter — Raft peers, forwarding servers and client
//! agents alike — with an error that says so, before any call is read. (Consul forwards
//! `?dc=` requests between datacenters over the WAN; proconsul has no WAN federation yet, so
//! another datacenter has nothing to ask here.)
//!
//! A client agent's call may be forwarded once more by the server it reaches (to the leader);
//! a call a server forwarded is executed where it lands without forwarding again, so a
//! leadership change mid-call ends in an error rather than a loop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proconsul_raft::{RaftTransport, RpcKind, TransportError, TransportFuture};
use proconsul_rpc::{Client, RpcError as WireError};
use proconsul_types::{
    QueryMeta, QueryOptions, ReadRequest, ReadResponse, RpcError, WriteRequest, WriteResponse,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::Server;

/// Method numbers on the wire. 0–2 are Raft's (`RpcKind`).
pub mod method {
    /// A read ([`super::ReadCall`]).
    pub const READ: u8 = 10;
    /// A write ([`super::WriteCall`]).
    pub const WRITE: u8 = 11;
    /// Leader and peers ([`super::StatusReply`]).
    pub const STATUS: u8 = 12;
    /// Remove a server from the Raft configuration (`(raft id, forwarded)`).
    pub const REMOVE_PEER: u8 = 13;
    /// The Raft configuration ([`proconsul_types::RaftConfiguration`]).
    pub const RAFT_CONFIG: u8 = 14;
    /// A state snapshot (`(stale, forwarded)` → `(index, term, state)`).
    pub const SNAPSHOT: u8 = 15;
    /// Autopilot's view of server health ([`proconsul_types::OperatorHealth`]).
    pub const AUTOPILOT_HEALTH: u8 = 16;
    /// Autopilot's state ([`proconsul_types::AutopilotState`]).
    pub const AUTOPILOT_STATE: u8 = 17;
    /// Transfer leadership (`(Option<raft id>, forwarded)`), on the leader.
    pub const TRANSFER_LEADER: u8 = 18;
    /// Stand for election now: the target of a leadership transfer, asked by the leader.
    pub const ELECT: u8 = 19;
}

/// How long to wait to connect to a peer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline of a non-blocking call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Raft calls get openraft's own deadline on top; this only bounds a stuck connection.
const RAFT_CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// A read sent to a server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReadCall {
    pub req: ReadRequest,
    pub opts: QueryOptions,
    /// Already forwarded by a server: execute here, never forward again.
    #[serde(default)]
    pub forwarded: bool,
}

/// A write sent to a server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WriteCall {
    pub req: WriteRequest,
    pub datacenter: String,
    /// Already forwarded by a server: execute here, never forward again.
    #[serde(default)]
    pub forwarded: bool,
}

/// A state snapshot: the index and term it reflects, and [`proconsul_state::Store::dump`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotReply {
    pub index: u64,
    pub term: u64,
    #[serde(with = "proconsul_types::rpc::raw_bytes")]
    pub state: Vec<u8>,
}

/// A server's view of the Raft cluster.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusReply {
    /// `ip:port` of the leader, or empty.
    pub leader: String,
    /// Voters' RPC addresses.
    pub peers: Vec<String>,
    /// Milliseconds since this server last heard from the leader (0 on the leader).
    #[serde(default)]
    pub last_contact_ms: u64,
    /// This server's last log index and current term.
    #[serde(default)]
    pub last_index: u64,
    #[serde(default)]
    pub term: u64,
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
}

impl ConnPool {
    /// A pool for an agent of `datacenter`.
    pub fn new(datacenter: &str) -> Self {
        ConnPool {
            conns: Mutex::default(),
            hello: encode(&Hello {
                datacenter: datacenter.to_string(),
            }),
        }
    }

    async fn client(&self, addr: &str) -> Result<Client, WireError> {
        if let Some(c) = self.conns.lock().unwrap().get(addr) {
            if !c.is_dead() {
                return Ok(c.clone());
            }
        }
        let c = Client::connect_hello(addr, CONNECT_TIMEOUT, self.hello.clone()).await?;
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
        let c = self.client(addr).await?;
        let r = c.call(method, body, timeout).await;
        if matches!(&r, Err(e) if e.is_retryable()) {
            self.conns.lock().unwrap().remove(addr);
        }
        r
    }

    /// A typed call: `Ok(answer)` when the server answered (the answer may itself be an
    /// error), `Err` when the call never got an answer (try another server).
    async fn typed<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        method: u8,
        req: &Req,
        timeout: Duration,
    ) -> Result<Result<Resp, RpcError>, WireError> {
        let bytes = self.call(addr, method, encode(req), timeout).await?;
        let r: Result<Resp, RpcError> = decode(&bytes).map_err(WireError::Protocol)?;
        Ok(r)
    }

    /// A read on the server at `addr` (`forwarded`: by a server, to the leader).
    pub async fn read(
        &self,
        addr: &str,
        req: ReadRequest,
        opts: QueryOptions,
        forwarded: bool,
    ) -> Result<Result<(QueryMeta, ReadResponse), RpcError>, WireError> {
        // A blocking query may legitimately take its whole wait (plus Consul's jitter).
        let timeout = opts
            .max_wait
            .map(|w| w + w / 16 + CALL_TIMEOUT)
            .unwrap_or(CALL_TIMEOUT);
        let call = ReadCall {
            req,
            opts,
            forwarded,
        };
        self.typed(addr, method::READ, &call, timeout).await
    }

    /// A write on the server at `addr` (`forwarded`: by a server, to the leader).
    pub async fn write(
        &self,
        addr: &str,
        req: WriteRequest,
        datacenter: String,
        forwarded: bool,
    ) -> Result<Result<(u64, WriteResponse), RpcError>, WireError> {
        let call = WriteCall {
            req,
            datacenter,
            forwarded,
        };
        self.typed(addr, method::WRITE, &call, CALL_TIMEOUT).await
    }

    /// Remove the server with Raft id `id`, on the leader at `addr`.
    pub async fn remove_peer(
        &self,
        addr: &str,
        id: u64,
        forwarded: bool,
    ) -> Result<Result<(), RpcError>, WireError> {
        self.typed(addr, method::REMOVE_PEER, &(id, forwarded), CALL_TIMEOUT)
            .await
    }

    /// The Raft configuration from the server at `addr` (the leader's view unless `stale`).
    pub async fn raft_configuration(
        &self,
        addr: &str,
        stale: bool,
        forwarded: bool,
    ) -> Result<Result<proconsul_types::RaftConfiguration, RpcError>, WireError> {
        self.typed(addr, method::RAFT_CONFIG, &(stale, forwarded), CALL_TIMEOUT)
            .await
    }

    /// A snapshot of the state from the server at `addr` (the leader's unless `stale`).
    pub async fn snapshot(
        &self,
        addr: &str,
        stale: bool,
        forwarded: bool,
    ) -> Result<Result<SnapshotReply, RpcError>, WireError> {
        self.typed(addr, method::SNAPSHOT, &(stale, forwarded), CALL_TIMEOUT)
            .await
    }

    /// Autopilot's server health, as the server at `addr` (forwarding to the leader) sees it.
    pub async fn autopilot_health(
        &self,
        addr: &str,
    ) -> Result<Result<proconsul_types::OperatorHealth, RpcError>, WireError> {
        self.typed(addr, method::AUTOPILOT_HEALTH, &(), CALL_TIMEOUT)
            .await
    }

    /// Autopilot's state, as the server at `addr` (forwarding to the leader) sees it.
    pub async fn autopilot_state(
        &self,
        addr: &str,
    ) -> Result<Result<proconsul_types::AutopilotState, RpcError>, WireError> {
        self.typed(addr, method::AUTOPILOT_STATE, &(), CALL_TIMEOUT)
            .await
    }

    /// Transfer leadership to the voter `target` (any if `None`), on the leader at `addr`.
    /// Takes a follower lease and an election, so it gets a longer timeout than most calls.
    pub async fn transfer_leader(
        &self,
        addr: &str,
        target: Option<u64>,
        forwarded: bool,
    ) -> Result<Result<(), RpcError>, WireError> {
        self.typed(
            addr,
            method::TRANSFER_LEADER,
            &(target, forwarded),
            CALL_TIMEOUT,
        )
        .await
    }

    /// Ask the server at `addr` to stand for election now.
    pub async fn elect(&self, addr: &str) -> Result<Result<(), RpcError>, WireError> {
        self.typed(addr, method::ELECT, &(), CALL_TIMEOUT).await
    }

    /// The server at `addr`'s view of leader and peers.
    pub async fn status(&self, addr: &str) -> Result<StatusReply, WireError> {
        let r: Result<StatusReply, RpcError> =
            self.typed(addr, method::STATUS, &(), CALL_TIMEOUT).await?;
        r.map_err(|e| WireError::Remote(e.to_string()))
    }
}

/// The pool shared by Raft's transport, forwarding and a client agent's calls.
#[derive(Clone)]
pub struct SharedPool(pub Arc<ConnPool>);

impl SharedPool {
    /// A pool for an agent of `datacenter`.
    pub fn new(datacenter: &str) -> Self {
        SharedPool(Arc::new(ConnPool::new(datacenter)))
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

/// The RPC listener's handler: everything a server answers on port 8300.
pub struct RpcHandler(pub Server);

impl proconsul_rpc::Handler for RpcHandler {
    async fn handle(&self, method: u8, body: Vec<u8>) -> Result<Vec<u8>, String> {
        self.0.handle_rpc(method, body).await
    }

    /// Only agents of this server's datacenter may call it.
    fn hello(&self, body: &[u8]) -> Result<(), String> {
        let h: Hello = decode(body)?;
        let ours = self.0.datacenter();
        if h.datacenter != ours {
            return Err(format!(
                "refusing RPC from datacenter {:?}: this server is in datacenter {ours:?}",
                h.datacenter
            ));
        }
        Ok(())
    }

    fn requires_hello(&self) -> bool {
        true
    }
}

impl Server {
    /// Answer one RPC: Raft's, or a read/write/status call executed here (never forwarded).
    pub async fn handle_rpc(&self, method: u8, body: Vec<u8>) -> Result<Vec<u8>, String> {
        if let Some(kind) = RpcKind::from_u8(method) {
            return self
                .inner
                .raft
                .handle_rpc(kind, &body)
                .await
                .map_err(|e| e.to_string());
        }
        match method {
            method::READ => {
                let c: ReadCall = decode(&body)?;
                let r = if c.forwarded {
                    self.read_here(c.req, c.opts).await
                } else {
                    self.read(c.req, c.opts).await
                };
                Ok(encode(&r))
            }
            method::WRITE => {
                let c: WriteCall = decode(&body)?;
                let r = if c.forwarded {
                    self.write_here(c.req, &c.datacenter).await
                } else {
                    self.write(c.req, &c.datacenter).await
                };
                Ok(encode(&r))
            }
            method::STATUS => {
                let r: Result<StatusReply, RpcError> = Ok(self.status_here());
                Ok(encode(&r))
            }
            method::AUTOPILOT_HEALTH => {
                let r = self.autopilot_health().await;
                Ok(encode(&r))
            }
            method::AUTOPILOT_STATE => {
                let r = self.autopilot_state().await;
                Ok(encode(&r))
            }
            method::TRANSFER_LEADER => {
                let (target, forwarded): (Option<u64>, bool) = decode(&body)?;
                let r = self.transfer_leader(target, forwarded).await;
                Ok(encode(&r))
            }
            method::ELECT => {
                let r = self.elect_here().await;
                Ok(encode(&r))
            }
            method::REMOVE_PEER => {
                let (id, forwarded): (u64, bool) = decode(&body)?;
                let r = if self.is_leader() {
                    self.inner
                        .raft
                        .remove_voter(id)
                        .await
                        .map_err(crate::raft_error)
                } else if forwarded {
                    Err(RpcError::NoLeader)
                } else {
                    self.remove_peer(id).await
                };
                Ok(encode(&r))
            }
            method::SNAPSHOT => {
                let (stale, forwarded): (bool, bool) = decode(&body)?;
                let r = if forwarded {
                    Ok(self.snapshot_here())
                } else {
                    self.snapshot(stale).await
                };
                Ok(encode(&r))
            }
            method::RAFT_CONFIG => {
                let (stale, forwarded): (bool, bool) = decode(&body)?;
                let r = if forwarded {
                    Ok(self.raft_configuration())
                } else {
                    self.raft_configuration_read(stale).await
                };
                Ok(encode(&r))
            }
            other => Err(format!("unknown RPC method {other}")),
        }
    }
}
