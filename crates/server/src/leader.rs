//! What only the leader does, run as one task per leadership term.
//!
//! [`run`] follows the Raft node's leadership ([`proconsul_raft::Leadership`]: woken when the
//! leader lease is gained or lost, never polled). When this server starts leading in a term it
//! spawns [`term`], and when it stops leading in that term it cancels the task and waits for it.
//! A term first *establishes* leadership, as Consul's `establishLeadership` does:
//! 1. a barrier: everything committed before the term is applied here
//!    (`ensure_linearizable` waits for the term's first entry to be applied);
//! 2. every TTL session gets a full TTL from now (`initializeSessionTimers`), autopilot's
//!    configuration exists;
//! 3. the gossip members are reconciled into the catalog once (this server's own node,
//!    `serfHealth` and the `consul` service included).
//!
//! Only then does the server report itself leader ([`crate::Server::leader_addr`], and so
//! `/v1/status/leader`, DNS, forwarding): a client that sees a leader can create a session
//! against the node at once. The term then runs its duties until cancelled: reconcile members
//! and servers each second, expire session TTLs at their deadline, reap KV tombstones, prune
//! dead servers (autopilot) and write batched coordinate updates.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use proconsul_state::{Command, WatchSet};
use proconsul_types::{health, DeregisterRequest, HealthCheck, NodeService, RegisterRequest};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::session_ttl::parse_ttl;
use crate::Server;

/// The service every server registers for itself.
const CONSUL_SERVICE: &str = "consul";
const RECONCILE_EVERY: Duration = Duration::from_secs(1);
/// How often the leader records `consul.autopilot.healthy` and `failure_tolerance`
/// (go-metrics' interval).
const AUTOPILOT_METRICS_EVERY: Duration = Duration::from_secs(10);
const TOMBSTONE_GRANULARITY: Duration = Duration::from_secs(30);
/// Between two tries of a failed barrier.
const BARRIER_RETRY: Duration = Duration::from_millis(100);

/// A gossip member's status as the leader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    Alive,
    Failed,
    Left,
}

/// A LAN gossip member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanMember {
    pub name: String,
    /// The node's UUID (`id` tag).
    pub id: String,
    pub addr: String,
    pub status: MemberStatus,
    pub meta: BTreeMap<String, String>,
    /// The server RPC port when the member is a server (`role=consul`), else `None`.
    pub server_port: Option<u16>,
    /// A server's `expect` tag (`-bootstrap-expect`), if any.
    pub expect: Option<u32>,
}

impl LanMember {
    /// A server's Raft id and RPC address.
    pub fn raft_peer(&self) -> Option<(u64, String)> {
        let port = self.server_port?;
        Some((
            crate::raft_id_from_node_id(&self.id),
            format!("{}:{port}", self.addr),
        ))
    }
}

/// Where the leader learns the LAN pool's members (the gossip layer, or just this agent).
pub trait MemberSource: Send + Sync + 'static {
    fn members(&self) -> Vec<LanMember>;
}

/// Follow leadership for the server's life: one [`term`] task per term led.
pub(crate) async fn run(server: Server) {
    let inner = &server.inner;
    let mut leadership = inner.raft.leadership();
    loop {
        let term = tokio::select! {
            _ = inner.shutdown.cancelled() => return,
            t = leadership.leading() => match t {
                Some(t) => t,
                None => return,
            },
        };
        tracing::info!(target: "agent.server", term, "cluster leadership acquired");
        let cancel = inner.shutdown.child_token();
        let duties = inner
            .tasks
            .spawn(self::term(server.clone(), term, cancel.clone()));
        tokio::select! {
            _ = inner.shutdown.cancelled() => {}
            _ = leadership.lost(term) => {}
        }
        cancel.cancel();
        let _ = duties.await;
        inner.established.send_replace(None);
        metrics::gauge!("consul.server.isLeader").set(0.0);
        inner.sessions.clear_all();
        if inner.shutdown.is_cancelled() {
            return;
        }
        tracing::info!(target: "agent.server", term, "cluster leadership lost");
    }
}

/// One leadership term: establish leadership, then run the leader's duties until `cancel`.
async fn term(server: Server, term: u64, cancel: CancellationToken) {
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = lead(&server, term) => {}
    }
}

async fn lead(server: &Server, term: u64) {
    let inner = &server.inner;
    while let Err(e) = inner.raft.ensure_linearizable().await {
        tracing::debug!(target: "agent.server", error = %e, "leadership barrier failed; retrying");
        tokio::time::sleep(BARRIER_RETRY).await;
    }
    init_session_timers(server);
    crate::acl::initialize(server).await;
    crate::autopilot::ensure_config(server).await;
    reconcile(server).await;
    reconcile_servers(server);
    let led_since = Instant::now();
    inner.established.send_replace(Some(term));
    metrics::counter!("consul.raft.state.leader").increment(1);
    metrics::gauge!("consul.server.isLeader").set(1.0);
    tracing::info!(target: "agent.server", term, "established leadership");
    tokio::join!(
        duties(server, led_since),
        expire_sessions(server),
        crate::coordinate::flush_loop(server),
        crate::acl::replication::run(server),
    );
}

/// Reconcile each second; mark and reap KV tombstones.
async fn duties(server: &Server, led_since: Instant) {
    let inner = &server.inner;
    let mut tick = tokio::time::interval(RECONCILE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate: just reconciled
    let mut tombstone_marks: VecDeque<(Instant, u64)> = VecDeque::new();
    let mut last_mark = Instant::now();
    let mut reaped_up_to = 0u64;
    let mut health_recorded: Option<Instant> = None;
    loop {
        tick.tick().await;
        reconcile(server).await;
        reconcile_servers(server);
        crate::autopilot::prune_dead_servers(server, led_since);
        crate::acl::reap_expired(server).await;
        let now = Instant::now();
        if health_recorded.is_none_or(|t| now.duration_since(t) >= AUTOPILOT_METRICS_EVERY) {
            health_recorded = Some(now);
            // Bounded: a server that does not answer must not hold up the duties.
            let _ = tokio::time::timeout(RECONCILE_EVERY, crate::autopilot::record_health(server))
                .await;
        }
        if now.duration_since(last_mark) >= TOMBSTONE_GRANULARITY {
            last_mark = now;
            tombstone_marks.push_back((now, inner.store.last_index()));
        }
        while let Some(&(at, idx)) = tombstone_marks.front() {
            if now.duration_since(at) < inner.opts.tombstone_ttl {
                break;
            }
            tombstone_marks.pop_front();
            if idx > reaped_up_to
                && server
                    .propose(Command::TombstoneReap { up_to_index: idx })
                    .await
                    .is_ok()
            {
                reaped_up_to = idx;
            }
        }
    }
}

/// Invalidate TTL sessions at their deadline.
async fn expire_sessions(server: &Server) {
    let sessions = &server.inner.sessions;
    loop {
        sessions.next_expiry().await;
        for id in sessions.take_expired(Instant::now()) {
            tracing::info!(target: "agent.server.session", session = %id, "session TTL expired, invalidating");
            if let Err(e) = server
                .propose(Command::SessionDestroy { id: id.clone() })
                .await
            {
                tracing::warn!(target: "agent.server.session", session = %id, error = %e, "failed to invalidate expired session");
            }
        }
    }
}

/// Make the Raft configuration follow the servers in the LAN pool: an alive server that is not
/// a voter is added (it joins as a learner, catches up, is promoted), a server that left is
/// removed. Failed servers are autopilot's to remove ([`crate::autopilot::prune_dead_servers`],
/// within its quorum limits). Membership changes run in the
/// background, one per server at a time, so the leader loop keeps its pace.
fn reconcile_servers(server: &Server) {
    let inner = &server.inner;
    let voters: BTreeMap<u64, String> = inner.raft.voters().into_iter().collect();
    let me = crate::raft_id_from_node_id(&inner.opts.node_id);
    for m in inner.opts.members.members() {
        let Some((id, addr)) = m.raft_peer() else {
            continue;
        };
        let change = match m.status {
            MemberStatus::Alive if voters.get(&id) != Some(&addr) => Some(true),
            MemberStatus::Left if id != me && voters.contains_key(&id) => Some(false),
            _ => None,
        };
        let Some(add) = change else { continue };
        if !inner.membership_changes.lock().unwrap().insert(id) {
            continue; // already in progress
        }
        let s = server.clone();
        inner.tasks.spawn(async move {
            let r = if add {
                tracing::info!(target: "agent.server", server = %m.name, %addr, "adding server to the raft configuration");
                s.inner.raft.add_voter(id, addr).await
            } else {
                tracing::info!(target: "agent.server", server = %m.name, "removing server that left from the raft configuration");
                s.inner.raft.remove_voter(id).await
            };
            if let Err(e) = r {
                tracing::warn!(target: "agent.server", server = %m.name, error = %e, "raft membership change failed");
            }
            s.inner.membership_changes.lock().unwrap().remove(&id);
        });
    }
}

/// `-bootstrap-expect=N`: once N servers expecting N are alive in the LAN pool and this server
/// has no Raft state, bootstrap with all of them (each of them does the same with the same
/// configuration, which Raft accepts). A server with Raft state never bootstraps again.
pub(crate) async fn bootstrap_when_expected(server: Server, expect: u32) {
    let inner = &server.inner;
    loop {
        if inner.raft.is_initialized().await {
            return;
        }
        let mut peers: Vec<(u64, String)> = inner
            .opts
            .members
            .members()
            .into_iter()
            .filter(|m| m.status == MemberStatus::Alive)
            .filter_map(|m| {
                let peer = m.raft_peer()?;
                match m.expect {
                    Some(e) if e != expect => {
                        tracing::error!(target: "agent.server", server = %m.name, expect = e, "member has a conflicting expect value; all servers should expect the same number");
                        None
                    }
                    _ => Some(peer),
                }
            })
            .collect();
        peers.sort();
        peers.dedup();
        if peers.len() >= expect as usize {
            tracing::info!(target: "agent.server", servers = peers.len(), "found expected number of peers, attempting bootstrap");
            if let Err(e) = inner.raft.bootstrap(peers).await {
                tracing::warn!(target: "agent.server", error = %e, "bootstrap failed");
            }
            return;
        }
        tokio::select! {
            _ = inner.shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// A new leader (or a restored snapshot) gives every TTL session a full TTL from now.
pub(crate) fn init_session_timers(server: &Server) {
    let view = server.inner.store.view();
    let (_, sessions) = view.sessions(&mut WatchSet::new());
    server.inner.sessions.reset_all(
        sessions
            .into_iter()
            .filter_map(|s| parse_ttl(&s.ttl).map(|ttl| (s.id, ttl))),
    );
}

/// Make the catalog agree with the member list: alive members registered with a passing
/// `serfHealth`, failed ones critical, left ones (and reaped ones) deregistered.
async fn reconcile(server: &Server) {
    let start = std::time::Instant::now();
    reconcile_members(server).await;
    metrics::histogram!("consul.leader.reconcile").record(start.elapsed().as_secs_f64() * 1000.0);
}

/// Consul's `reconcile`: the catalog made to match the LAN pool's members.
async fn reconcile_members(server: &Server) {
    let members = server.inner.opts.members.members();
    let view = server.inner.store.view();
    let mut ws = WatchSet::new();
    let (_, nodes) = view.nodes(&mut ws);
    let known: BTreeMap<&str, &LanMember> = members.iter().map(|m| (m.name.as_str(), m)).collect();
    for m in &members {
        let want = match m.status {
            MemberStatus::Alive => Some((health::PASSING, "Agent alive and reachable")),
            MemberStatus::Failed => Some((health::CRITICAL, "Agent not live or unreachable")),
            MemberStatus::Left => None,
        };
        let Some((status, output)) = want else {
            if nodes.iter().any(|n| n.node == m.name) {
                deregister(server, &m.name).await;
            }
            continue;
        };
        if let Some(port) = m.server_port {
            ensure_consul_service(server, &view, m, port).await;
        }
        let node = nodes.iter().find(|n| n.node == m.name);
        let serf = view.node_check(&m.name, health::SERF_CHECK_ID);
        let node_ok = node.is_some_and(|n| n.address == m.addr && n.id == m.id);
        let check_ok = serf.is_some_and(|c| c.status == status && c.output == output);
        if node_ok && check_ok {
            continue;
        }
        let req = RegisterRequest {
            id: m.id.clone(),
            node: m.name.clone(),
            address: m.addr.clone(),
            node_meta: if node_ok {
                node.map(|n| n.meta.clone()).unwrap_or_default()
            } else {
                m.meta.clone()
            },
            tagged_addresses: node.map(|n| n.tagged_addresses.clone()).unwrap_or_default(),
            check: Some(HealthCheck {
                node: m.name.clone(),
                check_id: health::SERF_CHECK_ID.into(),
                name: health::SERF_CHECK_NAME.into(),
                status: status.into(),
                output: output.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut req = req;
        if let Some(c) = req.check.take() {
            req.checks.push(c);
        }
        if let Err(e) = server.propose(Command::register(req)).await {
            tracing::warn!(target: "agent.leader", member = %m.name, error = %e, "failed to reconcile member");
        }
    }
    // Nodes carrying a serfHealth check whose member is gone were reaped: deregister them.
    for n in &nodes {
        if known.contains_key(n.node.as_str()) {
            continue;
        }
        if view.node_check(&n.node, health::SERF_CHECK_ID).is_some() {
            deregister(server, &n.node).await;
        }
    }
}

/// Servers carry the `consul` service in the catalog (port = server RPC), as Consul's do.
async fn ensure_consul_service(
    server: &Server,
    view: &proconsul_state::View,
    m: &LanMember,
    port: u16,
) {
    let (_, found) = view.node_services(&mut WatchSet::new(), &m.name);
    let present = found.as_ref().is_some_and(|(_, svcs)| {
        svcs.iter()
            .any(|s| s.id == CONSUL_SERVICE && s.port == port)
    });
    if present {
        return;
    }
    // Leave an existing node entry alone (its tagged addresses and meta belong to the agent's
    // anti-entropy); only a missing node is created here.
    let req = RegisterRequest {
        id: m.id.clone(),
        node: m.name.clone(),
        address: m.addr.clone(),
        node_meta: m.meta.clone(),
        skip_node_update: found.is_some(),
        service: Some(NodeService {
            id: CONSUL_SERVICE.into(),
            service: CONSUL_SERVICE.into(),
            port,
            ..Default::default()
        }),
        ..Default::default()
    };
    if let Err(e) = server.propose(Command::register(req)).await {
        tracing::warn!(target: "agent.leader", member = %m.name, error = %e, "failed to register the consul service");
    }
}

async fn deregister(server: &Server, node: &str) {
    let req = DeregisterRequest {
        node: node.to_string(),
        ..Default::default()
    };
    if let Err(e) = server.propose(Command::deregister(req)).await {
        tracing::warn!(target: "agent.leader", member = %node, error = %e, "failed to deregister member");
    }
}
