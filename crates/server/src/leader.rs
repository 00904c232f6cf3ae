//! What only the leader does: reconcile gossip members into the catalog (`serfHealth`) and
//! servers into the Raft configuration, expire session TTLs, reap KV tombstones, and run
//! autopilot's dead-server cleanup ([`crate::autopilot`]).
//!
//! One task runs for the server's life; each tick it checks whether this server leads and, if
//! it just became leader, resets every session timer (Consul's `initializeSessionTimers`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use proconsul_state::{Command, WatchSet};
use proconsul_types::{health, DeregisterRequest, HealthCheck, NodeService, RegisterRequest};

/// The service every server registers for itself.
const CONSUL_SERVICE: &str = "consul";
use tokio::time::Instant;

use crate::write::parse_ttl;
use crate::Server;

/// Consul multiplies a session's TTL by 2 before invalidating it.
const SESSION_TTL_MULTIPLIER: u32 = 2;
const TICK: Duration = Duration::from_millis(200);
const RECONCILE_EVERY: Duration = Duration::from_secs(1);
const TOMBSTONE_GRANULARITY: Duration = Duration::from_secs(30);

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

/// Leader-local TTL deadlines of sessions.
#[derive(Default)]
pub(crate) struct SessionTimers {
    deadlines: Mutex<HashMap<String, Instant>>,
}

impl SessionTimers {
    pub(crate) fn reset(&self, id: &str, ttl: Duration) {
        let deadline = Instant::now() + ttl * SESSION_TTL_MULTIPLIER;
        self.deadlines
            .lock()
            .unwrap()
            .insert(id.to_string(), deadline);
    }
    pub(crate) fn clear(&self, id: &str) {
        self.deadlines.lock().unwrap().remove(id);
    }
    fn expired(&self, now: Instant) -> Vec<String> {
        let mut d = self.deadlines.lock().unwrap();
        let gone: Vec<String> = d
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for id in &gone {
            d.remove(id);
        }
        gone
    }
    fn clear_all(&self) {
        self.deadlines.lock().unwrap().clear();
    }
}

pub(crate) async fn run(server: Server) {
    let inner = &server.inner;
    let mut was_leader = false;
    let mut last_reconcile = Instant::now() - RECONCILE_EVERY;
    let mut tombstone_marks: VecDeque<(Instant, u64)> = VecDeque::new();
    let mut last_mark = Instant::now();
    let mut reaped_up_to = 0u64;
    let mut led_since = Instant::now();
    loop {
        tokio::select! {
            _ = inner.shutdown.cancelled() => return,
            _ = tokio::time::sleep(TICK) => {}
        }
        let leader = inner.raft.is_leader();
        if !leader {
            if was_leader {
                tracing::info!(target: "agent.server", "lost leadership");
                inner.sessions.clear_all();
            }
            was_leader = false;
            continue;
        }
        if !was_leader {
            tracing::info!(target: "agent.server", "cluster leadership acquired");
            init_session_timers(&server);
            crate::autopilot::ensure_config(&server).await;
            last_reconcile = Instant::now() - RECONCILE_EVERY;
            led_since = Instant::now();
            was_leader = true;
        }
        let now = Instant::now();
        for id in inner.sessions.expired(now) {
            tracing::info!(target: "agent.server.session", session = %id, "session TTL expired, invalidating");
            if let Err(e) = server
                .propose(Command::SessionDestroy { id: id.clone() })
                .await
            {
                tracing::warn!(target: "agent.server.session", session = %id, error = %e, "failed to invalidate expired session");
            }
        }
        if now.duration_since(last_reconcile) >= RECONCILE_EVERY {
            last_reconcile = now;
            reconcile(&server).await;
            reconcile_servers(&server);
            crate::autopilot::prune_dead_servers(&server, led_since);
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

/// A new leader gives every TTL session a full TTL from now.
pub(crate) fn init_session_timers(server: &Server) {
    let view = server.inner.store.view();
    let (_, sessions) = view.sessions(&mut WatchSet::new());
    for s in sessions {
        if let Some(ttl) = parse_ttl(&s.ttl) {
            server.inner.sessions.reset(&s.id, ttl);
        }
    }
}

/// Make the catalog agree with the member list: alive members registered with a passing
/// `serfHealth`, failed ones critical, left ones (and reaped ones) deregistered.
async fn reconcile(server: &Server) {
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
        if let Err(e) = server.propose(Command::Register(req)).await {
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
    if let Err(e) = server.propose(Command::Register(req)).await {
        tracing::warn!(target: "agent.leader", member = %m.name, error = %e, "failed to register the consul service");
    }
}

async fn deregister(server: &Server, node: &str) {
    let req = DeregisterRequest {
        node: node.to_string(),
        ..Default::default()
    };
    if let Err(e) = server.propose(Command::Deregister(req)).await {
        tracing::warn!(target: "agent.leader", member = %node, error = %e, "failed to deregister member");
    }
}
