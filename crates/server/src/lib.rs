//! The server role: the datacenter's state behind Raft, and the endpoints that read and change it.
//!
//! A [`Server`] owns a Raft node whose state machine is the pure `proconsul-state` store. Reads
//! ([`Server::read`]) honour the consistency mode and block on the store's watch sets; writes
//! ([`Server::write`]) are validated and completed with everything time- or randomness-dependent
//! (session IDs, `at_ms`, lock-delay checks) *before* they are proposed, so apply stays pure.
//! The leader loop ([`leader`]) does what only the leader may: reconcile members into the
//! catalog, expire session TTLs, reap KV tombstones, and run autopilot ([`autopilot`]).

pub mod acl;
mod autopilot;
mod call;
mod coordinate;
mod federation;
mod fsm;
mod leader;
mod prepared_query;
mod query_template;
pub mod rate_limit;
mod read;
mod recovery;
pub mod remote;
mod session_ttl;
mod transfer;
mod write;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use proconsul_raft::{RaftNode, RaftOptions, RaftTransport};
use proconsul_state::Store;
use proconsul_types::RpcError;

/// How long a request waits for a leader during an election (Consul's `rpc_hold_timeout`).
const RPC_HOLD_TIMEOUT: Duration = Duration::from_secs(7);
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use coordinate::CoordinateOptions;
pub use federation::{BoxFuture, EventSink, WanSource};
pub use leader::{LanMember, MemberSource, MemberStatus};

/// What a server needs to start.
#[derive(Clone)]
pub struct ServerOptions {
    pub node_name: String,
    /// The node's UUID; its first 8 bytes make the Raft node id.
    pub node_id: String,
    pub datacenter: String,
    /// Server RPC address published to Raft peers (`ip:8300`).
    pub rpc_addr: SocketAddr,
    /// `Some(<data-dir>/raft)` for a durable log; `None` for `-dev` (in memory).
    pub raft_dir: Option<PathBuf>,
    /// Bootstrap a single-voter cluster if there is no Raft state yet (`-dev`, `-bootstrap`,
    /// `-bootstrap-expect=1`).
    pub bootstrap: bool,
    /// `-bootstrap-expect` above 1: bootstrap once that many servers are in the LAN pool.
    pub bootstrap_expect: u32,
    /// Consul's `performance.raft_multiplier`.
    pub raft_multiplier: u32,
    /// Consul's `raft_snapshot_threshold` and `raft_trailing_logs` (durable servers; `-dev`
    /// keeps its own small values).
    pub raft_snapshot_threshold: u64,
    pub raft_trailing_logs: u64,
    pub session_ttl_min: Duration,
    /// How long KV tombstones are kept before the leader reaps them (Consul: 15 minutes).
    pub tombstone_ttl: Duration,
    /// The gossip pool's members, for the leader's reconcile loop.
    pub members: Arc<dyn MemberSource>,
    /// Carries Raft RPCs to peers.
    pub transport: Arc<dyn RaftTransport>,
    /// Connections to other servers, for forwarding to the leader.
    pub pool: remote::SharedPool,
    /// How coordinate updates are batched into Raft.
    pub coordinate: CoordinateOptions,
    /// `acl { … }`: enforcement, default policy, the initial management token.
    pub acl: proconsul_types::AclConfig,
    /// `limits.request_limits`: reads and writes served per second.
    pub request_limits: proconsul_types::RequestLimits,
    /// The WAN pool (other datacenters' servers); `None` serves this datacenter only.
    pub wan: Option<Arc<dyn WanSource>>,
    /// Where user events fired from other datacenters are broadcast.
    pub events: Option<Arc<dyn EventSink>>,
}

/// Errors starting a server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("raft: {0}")]
    Raft(#[from] proconsul_raft::RaftError),
    /// `peers.json` outage recovery failed; the message is Consul's.
    #[error("{0}")]
    Recovery(String),
}

/// A running server. Cheap to clone.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

struct Inner {
    opts: ServerOptions,
    store: Store,
    raft: RaftNode,
    /// Leader-local session TTL deadlines.
    sessions: session_ttl::SessionTtls,
    /// The term in which this server has established leadership (barrier passed, members
    /// reconciled); `None` while it does not lead or is still establishing.
    established: tokio::sync::watch::Sender<Option<u64>>,
    /// Each Raft member's last health verdict and when it last changed (autopilot's
    /// `StableSince`).
    stable_since: std::sync::Mutex<std::collections::HashMap<u64, (bool, std::time::SystemTime)>>,
    /// Raft heartbeat interval in ms (autopilot's last-contact threshold is at least twice it).
    raft_heartbeat_ms: u64,
    /// Raft ids with a membership change in flight (leader only).
    membership_changes: std::sync::Mutex<std::collections::HashSet<u64>>,
    /// How ACL replication from the primary datacenter is going (`/v1/acl/replication`).
    acl_replication: std::sync::Mutex<acl::replication::Progress>,
    /// Coordinate updates waiting for the next batch (leader).
    coordinates: coordinate::PendingCoordinates,
    /// Resolved ACL tokens.
    acl: acl::Resolver,
    /// `limits.request_limits`; replaced by a reload that changes them.
    limiter: std::sync::RwLock<Arc<rate_limit::RequestLimiter>>,
    /// Time decided by the proposer ([`Clock`]).
    clock: Clock,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// Raft node id from a node UUID: its first 16 hex digits (never 0).
pub fn raft_id_from_node_id(node_id: &str) -> u64 {
    let hex: String = node_id
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(16)
        .collect();
    u64::from_str_radix(&hex, 16).unwrap_or(0).max(1)
}

/// `-dev` keeps its Raft log in memory, where every entry not yet compacted costs as much as
/// the records it carries (a server's log is on disk). A snapshot there is the store's frozen
/// root, taken in O(1) and sharing what is unchanged with the live store, so snapshotting often
/// is cheap and the log stays a few thousand entries long however much is registered.
pub const DEV_SNAPSHOT_THRESHOLD: u64 = 1024;
/// Entries `-dev` keeps behind its snapshot: a server that joins it installs the snapshot.
pub const DEV_TRAILING_LOGS: u64 = 256;

impl Server {
    /// Start the Raft node and the leader loop; bootstrap if asked and there is no Raft state.
    pub async fn start(opts: ServerOptions) -> Result<Server, ServerError> {
        let store = Store::new();
        let raft_id = raft_id_from_node_id(&opts.node_id);
        if let Some(dir) = &opts.raft_dir {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || recovery::apply_peers_json(&dir, raft_id))
                .await
                .map_err(|e| ServerError::Recovery(e.to_string()))??;
        }
        let mut ropts = RaftOptions::new(raft_id, opts.rpc_addr.to_string(), opts.raft_dir.clone())
            .with_multiplier(opts.raft_multiplier as u64);
        ropts.snapshot_logs_since_last = opts.raft_snapshot_threshold;
        ropts.trailing_logs = opts.raft_trailing_logs;
        if opts.raft_dir.is_none() {
            // -dev: elect at once, keep compaction small.
            ropts.election_min_ms = 150;
            ropts.election_max_ms = 300;
            ropts.heartbeat_ms = 50;
            ropts.snapshot_logs_since_last = DEV_SNAPSHOT_THRESHOLD;
            ropts.trailing_logs = DEV_TRAILING_LOGS;
        }
        let raft_heartbeat_ms = ropts.heartbeat_ms;
        let sm = Arc::new(fsm::StoreMachine::new(store.clone()));
        let raft = RaftNode::start(ropts, sm, opts.transport.clone()).await?;
        if opts.bootstrap && !raft.is_initialized().await {
            tracing::info!(target: "agent.server", "bootstrapping a single-server cluster");
            raft.bootstrap(vec![(raft_id, opts.rpc_addr.to_string())])
                .await?;
        }
        let limiter = std::sync::RwLock::new(Arc::new(rate_limit::RequestLimiter::new(
            &opts.request_limits,
        )));
        let server = Server {
            inner: Arc::new(Inner {
                limiter,
                opts,
                store,
                raft,
                sessions: Default::default(),
                established: tokio::sync::watch::Sender::new(None),
                membership_changes: Default::default(),
                acl_replication: Default::default(),
                stable_since: Default::default(),
                raft_heartbeat_ms,
                coordinates: Default::default(),
                acl: Default::default(),
                clock: Clock::start(),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
        };
        let s = server.clone();
        server
            .inner
            .tasks
            .spawn(async move { leader::run(s).await });
        let expect = server.inner.opts.bootstrap_expect;
        if expect > 1 && !server.inner.opts.bootstrap {
            let s = server.clone();
            server
                .inner
                .tasks
                .spawn(leader::bootstrap_when_expected(s, expect));
        }
        Ok(server)
    }

    /// The store, for in-process readers that accept stale data (DNS on a server).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// This server's RPC address as published to Raft peers.
    pub fn rpc_addr(&self) -> SocketAddr {
        self.inner.opts.rpc_addr
    }

    pub fn datacenter(&self) -> &str {
        &self.inner.opts.datacenter
    }

    /// `ip:port` of the current leader, or empty.
    pub fn leader_addr(&self) -> String {
        self.leader().map(|(_, a)| a).unwrap_or_default()
    }

    /// The leader as this server reports it (Raft id, RPC address). This server names itself
    /// only once it has established leadership in its current term (see [`leader`]): until
    /// then there is no known leader, and requests wait as during an election.
    fn leader(&self) -> Option<(u64, String)> {
        let leader = self.inner.raft.leader()?;
        if leader.0 == self.raft_id() && !self.is_leader() {
            return None;
        }
        Some(leader)
    }

    /// The `limits.request_limits` in force.
    pub(crate) fn request_limiter(&self) -> Arc<rate_limit::RequestLimiter> {
        self.inner
            .limiter
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A reload's `limits.request_limits` (Consul's `ReloadConfig`): new buckets, full, when
    /// the limits changed; the same ones otherwise.
    pub fn reload_request_limits(&self, limits: &proconsul_types::RequestLimits) {
        let mut l = self
            .inner
            .limiter
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if l.limits() != limits {
            tracing::info!(target: "agent.server", mode = ?limits.mode, read_rate = limits.read_rate, write_rate = limits.write_rate, "request limits reloaded");
            *l = Arc::new(rate_limit::RequestLimiter::new(limits));
        }
    }

    /// Whether this server leads and has established its leadership in the current term.
    pub fn is_leader(&self) -> bool {
        let established = *self.inner.established.borrow();
        established.is_some() && established == self.inner.raft.leading_term()
    }

    /// Milliseconds since this server last heard from the leader; 0 on the leader itself.
    pub fn last_contact_ms(&self) -> u64 {
        if self.is_leader() {
            0
        } else {
            self.inner.raft.last_contact_ms()
        }
    }

    /// Raft voters' addresses.
    pub fn peers(&self) -> Vec<String> {
        self.inner
            .raft
            .voters()
            .into_iter()
            .map(|(_, a)| a)
            .collect()
    }

    /// Raft figures for `/v1/agent/self` and `info`.
    pub fn raft_metrics(&self) -> proconsul_raft::RaftMetricsSummary {
        self.inner.raft.metrics()
    }

    /// Wait until this server knows a leader (or the deadline passes).
    pub async fn wait_for_leader(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if self.leader().is_some() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    /// Run `call` on the leader. During a leadership change it is retried until Consul's
    /// `rpc_hold_timeout` (7 s): an `idempotent` call after any transport failure or a "no
    /// leader" answer, any other only when the request cannot have been sent (connect failed).
    async fn forward<T, F, Fut>(&self, idempotent: bool, call: F) -> Result<T, RpcError>
    where
        F: Fn(remote::SharedPool, String) -> Fut,
        Fut: std::future::Future<Output = Result<Result<T, RpcError>, proconsul_rpc::WireError>>,
    {
        let deadline = tokio::time::Instant::now() + RPC_HOLD_TIMEOUT;
        loop {
            let leader = self.wait_leader_addr(deadline).await?;
            let (retry, err) = match call(self.inner.opts.pool.clone(), leader).await {
                Ok(Err(RpcError::NoLeader)) if idempotent => (true, RpcError::NoLeader),
                Ok(r) => return r,
                Err(e) => {
                    let sent = !matches!(e, proconsul_rpc::WireError::Connect { .. });
                    let retry = !sent || (idempotent && e.is_retryable());
                    (
                        retry,
                        RpcError::Internal(format!("rpc error making call: {e}")),
                    )
                }
            };
            if !retry || tokio::time::Instant::now() >= deadline {
                return Err(err);
            }
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => return Err(err),
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    /// The leader's RPC address, waiting until `deadline` during an election; `No cluster
    /// leader` after that.
    async fn wait_leader_addr(&self, deadline: tokio::time::Instant) -> Result<String, RpcError> {
        loop {
            if let Some((_, addr)) = self.leader() {
                return Ok(addr);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RpcError::NoLeader);
            }
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => return Err(RpcError::NoLeader),
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }

    /// The Raft configuration (`/v1/operator/raft/configuration`): voters with the node name
    /// and ID the LAN pool knows them by.
    pub fn raft_configuration(&self) -> proconsul_types::RaftConfiguration {
        let members = self.inner.opts.members.members();
        let leader = self.leader().map(|(id, _)| id);
        let index = self.inner.raft.metrics().last_log_index;
        // The leader knows how far each follower's log reaches; elsewhere only our own.
        let matched = self.inner.raft.matched_indexes();
        let me = self.raft_id();
        let servers = self
            .inner
            .raft
            .voters()
            .into_iter()
            .map(|(id, address)| {
                let m = members
                    .iter()
                    .find(|m| m.server_port.is_some() && raft_id_from_node_id(&m.id) == id);
                proconsul_types::RaftServer {
                    id: m
                        .map(|m| m.id.clone())
                        .unwrap_or_else(|| format!("{id:016x}")),
                    node: m.map(|m| m.name.clone()).unwrap_or_default(),
                    address,
                    leader: leader == Some(id),
                    voter: true,
                    protocol_version: "3".into(),
                    last_index: if id == me {
                        index
                    } else {
                        matched.get(&id).copied().unwrap_or(0)
                    },
                }
            })
            .collect();
        // Consul's `Index` comes from hashicorp/raft's `GetConfiguration()`, which answers the
        // latest configuration without its log index: it is always 0.
        proconsul_types::RaftConfiguration { servers, index: 0 }
    }

    /// A snapshot of this server's state.
    pub(crate) fn snapshot_here(&self) -> proconsul_types::SnapshotData {
        proconsul_types::SnapshotData {
            index: self.inner.store.last_index(),
            term: self.inner.raft.metrics().term,
            state: self.inner.store.dump(),
        }
    }

    /// What this server's store holds (the `consul.state.*` gauges).
    pub fn state_counts(&self) -> proconsul_state::StateCounts {
        self.inner.store.view().counts()
    }

    /// This server's Raft id.
    pub fn raft_id(&self) -> u64 {
        raft_id_from_node_id(&self.inner.opts.node_id)
    }

    /// This server's Raft figures for a peer asking (`Status.RaftStats`).
    pub(crate) fn status_here(&self) -> proconsul_types::RaftStats {
        let m = self.inner.raft.metrics();
        proconsul_types::RaftStats {
            leader: self.leader_addr(),
            peers: self.peers(),
            last_contact_ms: if self.is_leader() {
                0
            } else {
                m.last_contact_ms
            },
            last_index: m.last_log_index,
            term: m.term,
        }
    }

    /// A graceful leave of a server: ask the leader to take us out of the Raft configuration
    /// while we still answer Raft (Consul's `Server.Leave`), and wait up to `within` for it.
    pub async fn leave_raft(&self, within: Duration) {
        let me = self.raft_id();
        let voters = self.inner.raft.voters();
        if voters.len() <= 1 || !voters.iter().any(|(id, _)| *id == me) {
            return;
        }
        tracing::info!(target: "agent.server", "removing ourselves from the raft configuration before leaving");
        let deadline = tokio::time::Instant::now() + within;
        let me_by_address = proconsul_types::RaftRemovePeer {
            id: String::new(),
            address: self.inner.opts.rpc_addr.to_string(),
        };
        if let Err(e) = tokio::time::timeout(
            within,
            self.call_typed(me_by_address, &self.inner.opts.acl.tokens.agent),
        )
        .await
        .unwrap_or(Err(RpcError::Internal("timed out".into())))
        {
            tracing::warn!(target: "agent.server", error = %e, "failed to leave the raft configuration");
            return;
        }
        while tokio::time::Instant::now() < deadline {
            if !self.inner.raft.voters().iter().any(|(id, _)| *id == me) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stop the leader loop and Raft.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        self.inner.raft.shutdown().await;
    }
}

/// Map a Raft error to what the HTTP API answers.
fn raft_error(e: proconsul_raft::RaftError) -> RpcError {
    use proconsul_raft::RaftError as E;
    match e {
        E::NoLeader => RpcError::NoLeader,
        // Forwarding to the leader over RPC arrives with the multi-server cluster; until then a
        // server that is not the leader cannot serve leader reads or writes.
        E::ForwardToLeader { leader: None } => RpcError::NoLeader,
        E::ForwardToLeader {
            leader: Some((_, addr)),
        } => RpcError::Unavailable(format!("not the leader; the leader is {addr}")),
        // Consul's ErrLeadershipLost: the write may or may not have been committed.
        E::LeadershipLost => RpcError::Internal(e.to_string()),
        E::Shutdown => RpcError::Unavailable("server is shutting down".into()),
        E::Storage(m) | E::DiskFull(m) | E::Other(m) => RpcError::Internal(m),
    }
}

/// The server's wall clock in Unix milliseconds, as carried in log entries (`at_ms`) and
/// compared with lock-delay deadlines. The system clock is read once, at start; after that the
/// runtime's monotonic clock advances it, so a step of the system clock never moves deadlines
/// backwards, and tests on paused tokio time move it as they move timers.
#[derive(Clone, Copy)]
pub(crate) struct Clock {
    base_ms: u64,
    base: tokio::time::Instant,
}

impl Clock {
    fn start() -> Clock {
        let base_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Clock {
            base_ms,
            base: tokio::time::Instant::now(),
        }
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.base_ms + self.base.elapsed().as_millis() as u64
    }
}
