//! The [`RaftNode`] facade: the only thing other crates touch.
//!
//! It owns the openraft instance and hides its generic types: callers propose bytes and get
//! bytes back with the log index, ask who leads, and feed received RPC frames in. Errors are
//! folded into [`RaftError`], whose variants carry what a caller needs to act (the leader to
//! forward to, whether retrying makes sense).
//!
//! A node is a value, not a global: tests start several in one process over a [`MemRouter`].
//!
//! Leadership as reported here is openraft's plus a quorum lease ([`crate::lease`]): a leader
//! that has not heard from a quorum for the minimum election timeout reports no leader and
//! refuses leader work, the way a hashicorp/raft leader steps down.
//!
//! [`MemRouter`]: crate::MemRouter

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{
    ChangeMembershipError, CheckIsLeaderError, ClientWriteError, Fatal, ForwardToLeader,
    InitializeError, RaftError as OrRaftError,
};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, VoteRequest,
};
use openraft::{
    BasicNode, ChangeMembers, Config, Membership, Raft, RaftMetrics, ServerState, SnapshotPolicy,
};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::lease::{self, Lease};
use crate::log_store::{DurableGate, LogClosed, LogMeta, LogStore};
use crate::network::{NetFactory, RaftTransport, RpcKind};
use crate::state_machine::{SmShared, SmStore, StateMachine};
use crate::trace::{Step, Tracer, WriteTrace};
use proconsul_state::{ApplyResult, Proposal};

use crate::types::{decode, encode, Request, TypeConfig};

/// How long `add_voter` waits for a new server to catch up before giving up.
const CATCHUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long membership changes retry while another change is in progress.
const MEMBERSHIP_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings for one Raft node. Build with [`RaftOptions::new`] and adjust fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftOptions {
    /// This server's Raft id.
    pub node_id: u64,
    /// This server's RPC address (`ip:8300`), published in the membership.
    pub addr: String,
    /// `Some(<data-dir>/raft)`: durable log (`raft.redb`) and `snapshots/`. `None`: in memory.
    pub dir: Option<PathBuf>,
    /// Leader heartbeat interval.
    pub heartbeat_ms: u64,
    /// Election timeout is drawn from `[election_min_ms, election_max_ms)`.
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    /// Take a snapshot after this many entries since the last one (Consul: `SnapshotThreshold`).
    pub snapshot_logs_since_last: u64,
    /// Entries kept behind a snapshot so slightly lagging followers avoid a snapshot install
    /// (Consul: `TrailingLogs`).
    pub trailing_logs: u64,
}

impl RaftOptions {
    /// Consul-equivalent defaults at `raft_multiplier = 1` (what `-dev` uses).
    pub fn new(node_id: u64, addr: impl Into<String>, dir: Option<PathBuf>) -> Self {
        Self {
            node_id,
            addr: addr.into(),
            dir,
            heartbeat_ms: 200,
            election_min_ms: 1000,
            election_max_ms: 2000,
            snapshot_logs_since_last: 16_384,
            trailing_logs: 10_240,
        }
    }

    /// Scale the timing by Consul's `raft_multiplier` (Consul's production default is 5).
    pub fn with_multiplier(mut self, multiplier: u64) -> Self {
        let m = multiplier.max(1);
        self.heartbeat_ms = 200 * m;
        self.election_min_ms = 1000 * m;
        self.election_max_ms = 2000 * m;
        self
    }

    fn to_config(&self) -> Result<Config, RaftError> {
        let cfg = Config {
            cluster_name: "proconsul".to_string(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_min_ms,
            election_timeout_max: self.election_max_ms,
            // Per snapshot chunk; the last chunk includes the follower's restore, which can take a
            // while on a large state. A short value would resend the snapshot forever.
            install_snapshot_timeout: 30_000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_logs_since_last.max(1)),
            max_in_snapshot_log_to_keep: self.trailing_logs,
            // Keep snapshot frames small enough for any RPC frame limit.
            snapshot_max_chunk_size: 1024 * 1024,
            ..Default::default()
        };
        cfg.validate()
            .map_err(|e| RaftError::Other(format!("invalid raft config: {e}")))
    }
}

/// Errors from [`RaftNode`] operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RaftError {
    /// This node is not the leader; send the request to `leader`.
    #[error("not the leader (leader: {leader:?})")]
    ForwardToLeader { leader: Option<(u64, String)> },
    /// There is no known leader (election in progress or quorum lost).
    #[error("no cluster leader")]
    NoLeader,
    /// The leader lost its lease while the write waited for its commit. The entry may or may
    /// not be committed later.
    #[error("leadership lost while committing log")]
    LeadershipLost,
    /// The node has been shut down.
    #[error("raft is shut down")]
    Shutdown,
    /// The log or snapshot store failed; the node stops.
    #[error("raft storage error: {0}")]
    Storage(String),
    /// The log waits for disk space (the message names the file and the error); writes are
    /// refused until space is freed, then the node carries on by itself.
    #[error("{0}")]
    DiskFull(String),
    #[error("raft: {0}")]
    Other(String),
}

impl RaftError {
    /// Whether retrying (after forwarding to the leader, or after a short wait) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::ForwardToLeader { .. } | Self::NoLeader)
    }
}

/// Members `ids` of `mem` with their RPC addresses.
fn with_addresses(
    mem: &Membership<u64, BasicNode>,
    ids: impl Iterator<Item = u64>,
) -> Vec<(u64, String)> {
    ids.map(|id| {
        let addr = mem.get_node(&id).map(|n| n.addr.clone());
        (id, addr.unwrap_or_default())
    })
    .collect()
}

fn from_fatal(f: Fatal<u64>) -> RaftError {
    match f {
        Fatal::StorageError(e) => RaftError::Storage(e.to_string()),
        Fatal::Stopped => RaftError::Shutdown,
        Fatal::Panicked => RaftError::Other("raft core panicked".to_string()),
    }
}

fn from_forward(f: ForwardToLeader<u64, BasicNode>) -> RaftError {
    match (f.leader_id, f.leader_node) {
        (Some(id), Some(node)) => RaftError::ForwardToLeader {
            leader: Some((id, node.addr)),
        },
        _ => RaftError::NoLeader,
    }
}

fn from_write_err(e: OrRaftError<u64, ClientWriteError<u64, BasicNode>>) -> RaftError {
    match e {
        OrRaftError::Fatal(f) => from_fatal(f),
        OrRaftError::APIError(ClientWriteError::ForwardToLeader(f)) => from_forward(f),
        OrRaftError::APIError(ClientWriteError::ChangeMembershipError(c)) => {
            RaftError::Other(c.to_string())
        }
    }
}

fn is_membership_busy(e: &OrRaftError<u64, ClientWriteError<u64, BasicNode>>) -> bool {
    matches!(
        e,
        OrRaftError::APIError(ClientWriteError::ChangeMembershipError(
            ChangeMembershipError::InProgress(_)
        ))
    )
}

/// A cheap copy of the node's Raft status (for `/v1/agent/self`, `operator raft` and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftMetricsSummary {
    pub node_id: u64,
    /// "Leader", "Follower", "Candidate", "Learner" or "Shutdown".
    pub state: &'static str,
    pub term: u64,
    pub last_log_index: u64,
    pub last_log_term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_snapshot_index: u64,
    pub last_snapshot_term: u64,
    /// The last entry dropped from the log after a snapshot (0: none yet).
    pub last_purged_index: u64,
    pub leader_id: Option<u64>,
    pub num_voters: usize,
    /// Log index of the membership configuration in effect.
    pub latest_configuration_index: u64,
    pub last_contact_ms: u64,
}

/// Outage recovery before start: make `voters` (id → RPC address) and `learners` the
/// membership of the durable log in `dir` (`<data-dir>/raft`), whatever it was. Call only while
/// no [`RaftNode`] runs on `dir`; see the log store's `recover_membership` for how and why.
/// Returns the log index of the new membership entry.
pub fn recover_membership(
    dir: &std::path::Path,
    node_id: u64,
    voters: BTreeMap<u64, String>,
    learners: BTreeMap<u64, String>,
) -> Result<u64, RaftError> {
    std::fs::create_dir_all(dir).map_err(|e| RaftError::Storage(e.to_string()))?;
    crate::log_store::recover_membership(&dir.join("raft.redb"), node_id, voters, learners)
        .map(|id| id.index)
        .map_err(|e| RaftError::Storage(e.to_string()))
}

/// A node's leadership as it changes (see [`RaftNode::leadership`]).
pub struct Leadership {
    rx: watch::Receiver<Option<Instant>>,
    node: RaftNode,
}

impl Leadership {
    /// Wait until this node leads (lease held); the term it leads in. `None` once Raft has
    /// stopped.
    pub async fn leading(&mut self) -> Option<u64> {
        loop {
            self.rx.borrow_and_update();
            if let Some(term) = self.node.leading_term() {
                return Some(term);
            }
            self.rx.changed().await.ok()?;
        }
    }

    /// Wait until this node no longer leads in `term`: the lease lapsed, another term began,
    /// or Raft stopped.
    pub async fn lost(&mut self, term: u64) {
        loop {
            self.rx.borrow_and_update();
            if self.node.leading_term() != Some(term) {
                return;
            }
            if self.rx.changed().await.is_err() {
                return;
            }
        }
    }
}

/// A running Raft server. Cheap to clone; all clones drive the same node.
#[derive(Clone)]
pub struct RaftNode {
    inner: Arc<NodeInner>,
}

/// Ends a leadership transfer when dropped: heartbeats resume (they matter only if this node
/// is still the leader) and writes are accepted again.
pub struct TransferGuard {
    inner: Arc<NodeInner>,
}

impl Drop for TransferGuard {
    fn drop(&mut self) {
        self.inner.raft.runtime_config().heartbeat(true);
        self.inner.transferring.store(false, Ordering::Release);
    }
}

struct NodeInner {
    id: u64,
    raft: Raft<TypeConfig>,
    metrics: watch::Receiver<RaftMetrics<u64, BasicNode>>,
    log: LogMeta,
    /// Whether openraft's tasks have let go of the log (see [`RaftNode::shutdown`]).
    log_closed: LogClosed,
    sm: Arc<SmShared>,
    started: Instant,
    /// When an AppendEntries/InstallSnapshot from a current leader last arrived.
    last_contact: Mutex<Option<Instant>>,
    lease: Arc<Lease>,
    /// Keeps `lease` current; ends with Raft, aborted on shutdown.
    lease_task: tokio::task::JoinHandle<()>,
    shut: AtomicBool,
    /// A leadership transfer is under way: this leader sends nothing (no heartbeats, no
    /// entries) so the followers' leader leases run out and the target's election can win.
    transferring: AtomicBool,
    /// openraft's leader lease on followers (its `election_timeout_max`).
    follower_lease: Duration,
    /// The durable log's gate (`None` in memory): tells when the log waits for disk space.
    gate: Option<DurableGate>,
    /// Write-latency trace hook (`None`: off; see `crate::trace`).
    trace: Tracer,
}

impl RaftNode {
    /// Open storage (restoring `sm` from the latest snapshot in durable mode) and start Raft.
    /// Does not bootstrap: call [`RaftNode::bootstrap`] only on a node that
    /// [`is_initialized`](RaftNode::is_initialized) says has no state.
    pub async fn start(
        opts: RaftOptions,
        sm: Arc<dyn StateMachine>,
        transport: Arc<dyn RaftTransport>,
    ) -> Result<RaftNode, RaftError> {
        let config = Arc::new(opts.to_config()?);
        let dir = opts.dir.clone();
        let trace = WriteTrace::from_env(opts.node_id);
        let log_trace = trace.clone();
        // Opening redb and restoring a snapshot are blocking and may take a while.
        let (log, sm_store) = tokio::task::spawn_blocking(move || {
            let stores = match dir {
                Some(dir) => (
                    LogStore::open(&dir.join("raft.redb"), log_trace)?,
                    SmStore::open(sm, Some(dir.join("snapshots")))?,
                ),
                None => (LogStore::memory(), SmStore::open(sm, None)?),
            };
            Ok::<_, openraft::StorageError<u64>>(stores)
        })
        .await
        .map_err(|e| RaftError::Other(e.to_string()))?
        .map_err(|e| RaftError::Storage(e.to_string()))?;

        let (mut log, mut sm_store) = (log, sm_store);
        log.set_node_id(opts.node_id);
        let gate = log.durable_gate();
        sm_store.set_log(gate.clone(), log.tail_release());
        sm_store.set_trace(trace.clone());
        let log_meta = log.meta_handle();
        let log_closed = log.closed_handle();
        let shared = sm_store.shared();
        let network = NetFactory {
            id: opts.node_id,
            transport,
            gate: gate.clone(),
            trace: trace.clone(),
        };
        let raft = Raft::new(opts.node_id, config, network, log, sm_store)
            .await
            .map_err(from_fatal)?;
        tracing::info!(node_id = opts.node_id, addr = %opts.addr, durable = opts.dir.is_some(), "raft started");
        let lease = Arc::new(Lease::new(Duration::from_millis(opts.election_min_ms)));
        let lease_task = tokio::spawn(lease::run(opts.node_id, lease.clone(), raft.metrics()));
        Ok(RaftNode {
            inner: Arc::new(NodeInner {
                id: opts.node_id,
                metrics: raft.metrics(),
                raft,
                log: log_meta,
                log_closed,
                sm: shared,
                started: Instant::now(),
                last_contact: Mutex::new(None),
                lease,
                lease_task,
                shut: AtomicBool::new(false),
                transferring: AtomicBool::new(false),
                follower_lease: Duration::from_millis(opts.election_max_ms),
                gate,
                trace,
            }),
        })
    }

    fn check_running(&self) -> Result<(), RaftError> {
        if self.inner.shut.load(Ordering::Acquire) {
            Err(RaftError::Shutdown)
        } else {
            Ok(())
        }
    }

    /// Writes and membership changes wait for no one during a leadership transfer: they are
    /// refused (hashicorp/raft's `ErrLeadershipTransferInProgress`).
    fn check_not_transferring(&self) -> Result<(), RaftError> {
        if self.inner.transferring.load(Ordering::Acquire) {
            Err(RaftError::Other("leadership transfer in progress".into()))
        } else {
            Ok(())
        }
    }

    /// Start handing leadership away (openraft 0.9 has no leadership transfer, so it is built
    /// from its parts): stop heartbeats and refuse writes until the returned guard is dropped.
    /// Followers accept a new candidate once they have not heard from this leader for
    /// [`RaftNode::follower_lease`], and start elections of their own only an election timeout
    /// after that — the window in which the chosen target calls [`RaftNode::elect`].
    pub fn begin_transfer(&self) -> Result<TransferGuard, RaftError> {
        self.check_running()?;
        if self.inner.transferring.swap(true, Ordering::AcqRel) {
            return Err(RaftError::Other("leadership transfer in progress".into()));
        }
        self.inner.raft.runtime_config().heartbeat(false);
        Ok(TransferGuard {
            inner: self.inner.clone(),
        })
    }

    /// How long followers keep rejecting other candidates after the leader's last message.
    pub fn follower_lease(&self) -> Duration {
        self.inner.follower_lease
    }

    /// Start an election now (the target of a leadership transfer).
    pub async fn elect(&self) -> Result<(), RaftError> {
        self.check_running()?;
        if !self.voters().iter().any(|(id, _)| *id == self.inner.id) {
            return Err(RaftError::Other("only a voter can take leadership".into()));
        }
        self.inner.raft.trigger().elect().await.map_err(from_fatal)
    }

    /// The last log index this node holds.
    pub fn last_log_index(&self) -> u64 {
        let m = self.inner.metrics.borrow();
        m.last_log_index.unwrap_or(0)
    }

    /// Whether this node has any Raft state (a vote, log or snapshot). Such a node must never
    /// be bootstrapped again.
    pub async fn is_initialized(&self) -> bool {
        if self.inner.log.has_state() || self.inner.sm.applied_index() > 0 {
            return true;
        }
        self.inner.raft.is_initialized().await.unwrap_or(true)
    }

    /// Form a new cluster with `voters` (id, RPC address). A no-op if already initialized.
    pub async fn bootstrap(&self, voters: Vec<(u64, String)>) -> Result<(), RaftError> {
        self.check_running()?;
        if self.is_initialized().await {
            return Ok(());
        }
        let members: BTreeMap<u64, BasicNode> = voters
            .into_iter()
            .map(|(id, addr)| (id, BasicNode { addr }))
            .collect();
        match self.inner.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(OrRaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(OrRaftError::APIError(e)) => Err(RaftError::Other(e.to_string())),
            Err(OrRaftError::Fatal(f)) => Err(from_fatal(f)),
        }
    }

    /// Replicate `entry` and apply it; returns the entry's log index and the state machine's
    /// response. Returns only after the entry is committed and applied on this (leader) node.
    /// A leader without its lease refuses at once ([`RaftError::NoLeader`]); one that loses it
    /// while the entry waits for its commit answers [`RaftError::LeadershipLost`].
    ///
    /// While the log waits for disk space ([`RaftError::DiskFull`]) a proposal is refused at
    /// once, and one already waiting for its commit is answered with the same error (its
    /// entry may still be committed once space returns, like any write whose answer was lost).
    pub async fn propose(&self, entry: Proposal) -> Result<(u64, ApplyResult), RaftError> {
        self.check_running()?;
        self.check_not_transferring()?;
        self.check_lease()?;
        self.check_space()?;
        let started = self.inner.trace.as_ref().map(|_| std::time::Instant::now());
        let write = self.inner.raft.client_write(Request(Arc::new(entry)));
        let resp = if self.inner.lease.held() {
            tokio::select! {
                biased;
                r = write => r,
                _ = self.inner.lease.lost() => return Err(RaftError::LeadershipLost),
                e = Self::until_stalled(&self.inner.gate) => return Err(RaftError::DiskFull(e)),
            }
        } else {
            // Not the leader: openraft answers with where to forward.
            write.await
        };
        let resp = resp.map_err(from_write_err)?;
        if let (Some(t), Some(started)) = (&self.inner.trace, started) {
            t.record_at(Step::ProposeStart, resp.log_id.index, 0, started);
            t.record(Step::ProposeEnd, resp.log_id.index, 0);
        }
        Ok((resp.log_id.index, resp.data.0))
    }

    /// Refuses while the log waits for disk space.
    fn check_space(&self) -> Result<(), RaftError> {
        match self.inner.gate.as_ref().and_then(|g| g.stalled()) {
            Some(e) => Err(RaftError::DiskFull(e)),
            None => Ok(()),
        }
    }

    /// Resolves once the log waits for disk space (never for an in-memory log).
    async fn until_stalled(gate: &Option<DurableGate>) -> String {
        match gate {
            Some(g) => g.until_stalled().await,
            None => std::future::pending().await,
        }
    }

    /// Whether openraft itself considers this node the leader (lease or not).
    fn raft_leads(&self) -> bool {
        let m = self.inner.metrics.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.inner.id)
    }

    /// A leader whose lease ran out acts as if there were no leader.
    fn check_lease(&self) -> Result<(), RaftError> {
        if self.raft_leads() && !self.inner.lease.held() {
            Err(RaftError::NoLeader)
        } else {
            Ok(())
        }
    }

    /// Confirm leadership with a quorum round and wait until everything committed before the
    /// call is applied locally (for `?consistent` reads). [`RaftError::NoLeader`] when no
    /// quorum answers or the lease is not held.
    pub async fn ensure_linearizable(&self) -> Result<(), RaftError> {
        self.check_running()?;
        self.check_lease()?;
        let check = self.inner.raft.ensure_linearizable();
        let res = if self.inner.lease.held() {
            // A read waits until everything committed is applied; while the log waits for
            // disk space, that may be never: answer the error instead of hanging.
            tokio::select! {
                biased;
                r = check => r,
                _ = self.inner.lease.lost() => return Err(RaftError::NoLeader),
                e = Self::until_stalled(&self.inner.gate) => return Err(RaftError::DiskFull(e)),
            }
        } else {
            check.await
        };
        match res {
            Ok(_) => Ok(()),
            Err(OrRaftError::Fatal(f)) => Err(from_fatal(f)),
            Err(OrRaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                Err(from_forward(f))
            }
            Err(OrRaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))) => {
                Err(RaftError::NoLeader)
            }
        }
    }

    /// The current leader (id, RPC address), if known. A leader without its lease knows none.
    pub fn leader(&self) -> Option<(u64, String)> {
        let (id, addr) = {
            let m = self.inner.metrics.borrow();
            let id = m.current_leader?;
            let addr = m.membership_config.membership().get_node(&id)?.addr.clone();
            (id, addr)
        };
        if id == self.inner.id && !self.inner.lease.held() {
            return None;
        }
        Some((id, addr))
    }

    /// Follow this node's leadership: a [`Leadership`] wakes when the lease is gained or lost,
    /// so a caller can run leader duties for exactly one term without polling.
    pub fn leadership(&self) -> Leadership {
        Leadership {
            rx: self.inner.lease.subscribe(),
            node: self.clone(),
        }
    }

    /// The term this node leads in, with its lease held; `None` when it does not lead.
    pub fn leading_term(&self) -> Option<u64> {
        if !self.is_leader() {
            return None;
        }
        Some(self.inner.metrics.borrow().current_term)
    }

    /// Whether this node is the leader and has heard from a quorum within the lease.
    pub fn is_leader(&self) -> bool {
        self.raft_leads() && self.inner.lease.held()
    }

    /// 0 on the leader; on a leader without its lease, milliseconds since a quorum last
    /// answered; on other nodes, milliseconds since the last AppendEntries (heartbeat) or
    /// snapshot chunk from a current leader — or since start if none has arrived yet.
    pub fn last_contact_ms(&self) -> u64 {
        if self.is_leader() {
            return 0;
        }
        if self.raft_leads() {
            if let Some(acked) = self.inner.lease.acked() {
                return acked.elapsed().as_millis() as u64;
            }
        }
        let since = self
            .inner
            .last_contact
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or(self.inner.started);
        since.elapsed().as_millis() as u64
    }

    fn touch_contact(&self) {
        *self
            .inner
            .last_contact
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    /// The voting members (id, RPC address), sorted by id.
    pub fn voters(&self) -> Vec<(u64, String)> {
        let m = self.inner.metrics.borrow();
        let mem = m.membership_config.membership();
        with_addresses(mem, mem.voter_ids())
    }

    /// The non-voting members (id, RPC address), sorted by id: servers being caught up before
    /// promotion.
    pub fn learners(&self) -> Vec<(u64, String)> {
        let m = self.inner.metrics.borrow();
        let mem = m.membership_config.membership();
        with_addresses(mem, mem.learner_ids())
    }

    /// The index of the last entry applied to the state machine.
    pub fn applied_index(&self) -> u64 {
        self.inner.sm.applied_index()
    }

    /// Add (or re-address) a voter: it joins as a learner, is caught up, then promoted.
    /// Must be called on the leader.
    pub async fn add_voter(&self, id: u64, addr: String) -> Result<(), RaftError> {
        self.check_running()?;
        self.check_not_transferring()?;
        let existing = self.voters().into_iter().find(|(v, _)| *v == id);
        match existing {
            Some((_, a)) if a == addr => return Ok(()),
            Some(_) => {
                let change = ChangeMembers::SetNodes(BTreeMap::from([(id, BasicNode { addr })]));
                return self.change_membership(change).await;
            }
            None => {}
        }
        // A learner already at this address is not added again (each add is a new membership
        // entry); otherwise add it without openraft's blocking wait, which gives up after a
        // fixed time and then reports success whether or not the learner caught up.
        let already = self
            .learners()
            .into_iter()
            .any(|(l, a)| l == id && a == addr);
        if !already {
            self.inner
                .raft
                .add_learner(id, BasicNode { addr: addr.clone() }, false)
                .await
                .map_err(from_write_err)?;
        }
        // Promote only a learner that holds the leader's log: one the leader cannot reach (or
        // whose TLS identity it refuses) stays a learner and never counts toward a quorum.
        let target = self.inner.log.last_log_id().map_or(0, |l| l.index);
        let mut metrics = self.inner.metrics.clone();
        let caught_up = tokio::time::timeout(CATCHUP_TIMEOUT, async {
            loop {
                if self
                    .matched_indexes()
                    .get(&id)
                    .is_some_and(|m| *m >= target)
                {
                    return true;
                }
                if metrics.changed().await.is_err() {
                    return false;
                }
            }
        })
        .await;
        if caught_up != Ok(true) {
            return Err(RaftError::Other(format!(
                "server {id} at {addr} did not catch up in time"
            )));
        }
        self.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])))
            .await
    }

    /// Remove a server (voter or learner) from the cluster. Must be called on the leader.
    pub async fn remove_voter(&self, id: u64) -> Result<(), RaftError> {
        self.check_running()?;
        self.check_not_transferring()?;
        let known = {
            let m = self.inner.metrics.borrow();
            m.membership_config.membership().get_node(&id).is_some()
        };
        if !known {
            return Ok(());
        }
        let is_voter = self.voters().iter().any(|(v, _)| *v == id);
        let change = if is_voter {
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        self.change_membership(change).await
    }

    async fn change_membership(
        &self,
        change: ChangeMembers<u64, BasicNode>,
    ) -> Result<(), RaftError> {
        let deadline = Instant::now() + MEMBERSHIP_BUSY_TIMEOUT;
        loop {
            match self
                .inner
                .raft
                .change_membership(change.clone(), false)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if is_membership_busy(&e) && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(from_write_err(e)),
            }
        }
    }

    /// The receiving side of [`RaftTransport`]: decode a frame, hand it to openraft, and return
    /// the encoded reply (openraft's own `Result`, so remote Raft errors travel intact).
    pub async fn handle_rpc(&self, kind: RpcKind, body: &[u8]) -> Result<Vec<u8>, RaftError> {
        self.check_running()?;
        let bad =
            |e: rmp_serde::decode::Error| RaftError::Other(format!("bad {kind:?} request: {e}"));
        let raft = &self.inner.raft;
        let out = match kind {
            RpcKind::AppendEntries => {
                let received = self.inner.trace.as_ref().map(|_| std::time::Instant::now());
                let req: AppendEntriesRequest<TypeConfig> = decode(body).map_err(bad)?;
                let last = req.entries.last().map(|e| e.log_id.index);
                if let (Some(t), Some(at), Some(last)) = (&self.inner.trace, received, last) {
                    t.record_at(Step::FollowerRecv, last, 0, at);
                }
                let res = raft.append_entries(req).await;
                if let (Some(t), Some(last)) = (&self.inner.trace, last) {
                    t.record(Step::FollowerReply, last, 0);
                }
                if matches!(&res, Ok(r) if !matches!(r, AppendEntriesResponse::HigherVote(_))) {
                    self.touch_contact();
                }
                encode(&res)
            }
            RpcKind::Vote => {
                let req: VoteRequest<u64> = decode(body).map_err(bad)?;
                encode(&raft.vote(req).await)
            }
            RpcKind::InstallSnapshot => {
                let req: InstallSnapshotRequest<TypeConfig> = decode(body).map_err(bad)?;
                let res = raft.install_snapshot(req).await;
                if res.is_ok() {
                    self.touch_contact();
                }
                encode(&res)
            }
        };
        out.map_err(|e| RaftError::Other(format!("encode {kind:?} reply: {e}")))
    }

    /// On the leader: the last log index each follower is known to hold (openraft's
    /// replication progress). Empty on other servers.
    pub fn matched_indexes(&self) -> BTreeMap<u64, u64> {
        let m = self.inner.metrics.borrow();
        m.replication
            .iter()
            .flatten()
            .map(|(id, log)| (*id, log.map(|l| l.index).unwrap_or(0)))
            .collect()
    }

    /// A copy of the node's Raft status.
    pub fn metrics(&self) -> RaftMetricsSummary {
        let last_contact_ms = self.last_contact_ms();
        let lease_lost = self.raft_leads() && !self.inner.lease.held();
        let m = self.inner.metrics.borrow();
        let state = match m.state {
            // Consul's leader steps down to follower when it loses its lease.
            ServerState::Leader if lease_lost => "Follower",
            ServerState::Leader => "Leader",
            ServerState::Follower => "Follower",
            ServerState::Candidate => "Candidate",
            ServerState::Learner => "Learner",
            ServerState::Shutdown => "Shutdown",
        };
        let last_log = self.inner.log.last_log_id();
        let snap = m.snapshot;
        RaftMetricsSummary {
            node_id: self.inner.id,
            state,
            term: m.current_term,
            last_log_index: last_log.map(|l| l.index).unwrap_or(0),
            last_log_term: last_log.map(|l| l.leader_id.term).unwrap_or(0),
            commit_index: self.inner.log.committed().map(|l| l.index).unwrap_or(0),
            applied_index: self.inner.sm.applied_index(),
            last_snapshot_index: snap.map(|l| l.index).unwrap_or(0),
            last_snapshot_term: snap.map(|l| l.leader_id.term).unwrap_or(0),
            last_purged_index: m.purged.map(|l| l.index).unwrap_or(0),
            leader_id: m.current_leader.filter(|_| !lease_lost),
            num_voters: m.membership_config.membership().voter_ids().count(),
            latest_configuration_index: m.membership_config.log_id().map(|l| l.index).unwrap_or(0),
            last_contact_ms,
        }
    }

    /// How many durable write transactions (one fsync each) the Raft log has committed since
    /// start: with group commit, far fewer than the entries written under concurrent load.
    /// Always 0 for the in-memory log.
    pub fn log_sync_count(&self) -> u64 {
        self.inner.log.sync_count()
    }

    /// Stop Raft. Idempotent; later calls on this node return [`RaftError::Shutdown`].
    pub async fn shutdown(&self) {
        if self.inner.shut.swap(true, Ordering::AcqRel) {
            return;
        }
        self.inner.lease_task.abort();
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        // openraft's replication and snapshot tasks hold log readers and end a moment after
        // its core: wait for them, so the log database is closed (and can be opened again by
        // a node started in this process) when shutdown returns.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !self.inner.log_closed.is_closed() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tracing::info!(node_id = self.inner.id, "raft stopped");
    }

    /// Force a snapshot now (tests, `operator` tooling); returns when it has been requested.
    pub async fn trigger_snapshot(&self) -> Result<(), RaftError> {
        self.check_running()?;
        self.inner
            .raft
            .trigger()
            .snapshot()
            .await
            .map_err(from_fatal)
    }
}
