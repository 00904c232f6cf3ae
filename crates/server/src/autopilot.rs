//! Autopilot: the leader's view of server health, its configuration, and dead-server cleanup.
//!
//! The configuration lives in the state store (written through Raft, so every server applies
//! the same settings; the leader writes Consul's defaults once if none is stored). Health is
//! computed on the leader from each server's own Raft figures (asked over RPC) and its gossip
//! status; `/v1/operator/autopilot/health` and `/state` are two shapes of the same figures.
//!
//! Cleanup follows Consul's autopilot (hashicorp/raft-autopilot `pruneDeadServers`): servers in
//! the Raft configuration that gossip reports failed or left, and "stale" ones gossip does not
//! know at all, are removed — non-voters first, stale before failed — but in one round at most
//! `(voters - 1) / 2` voters go, and never below `MinQuorum` voters. Consul makes a failed
//! server leave the gossip pool and lets the leave remove it from Raft; here the leader removes
//! it from Raft directly (the gossip member ages out on its own), which leaves the Raft
//! configuration in the same state. If the server comes back alive, the leader's member
//! reconciliation adds it again.
//!
//! What this module must never do: remove this server itself, or remove voters when gossip has
//! had no time to learn the pool (stale servers are only pruned after the leader has led for
//! `ServerStabilizationTime`).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use proconsul_state::{AutopilotConfig, Command};
use proconsul_types::{
    duration, AutopilotConfiguration, AutopilotServer, AutopilotState, OperatorHealth, RpcError,
    ServerHealth,
};
use tokio::time::Instant;

use crate::leader::{LanMember, MemberStatus};
use crate::{raft_id_from_node_id, Server};

/// The API shape of a stored configuration.
pub(crate) fn to_api(c: &AutopilotConfig) -> AutopilotConfiguration {
    AutopilotConfiguration {
        cleanup_dead_servers: c.cleanup_dead_servers,
        last_contact_threshold: duration::format(Duration::from_nanos(c.last_contact_threshold_ns)),
        max_trailing_logs: c.max_trailing_logs,
        min_quorum: c.min_quorum,
        server_stabilization_time: duration::format(Duration::from_nanos(
            c.server_stabilization_time_ns,
        )),
        redundancy_zone_tag: c.redundancy_zone_tag.clone(),
        disable_upgrade_migration: c.disable_upgrade_migration,
        upgrade_version_tag: c.upgrade_version_tag.clone(),
        create_index: c.create_index,
        modify_index: c.modify_index,
    }
}

/// Longest tag name accepted (node-meta keys are at most 128 characters in Consul).
const MAX_TAG: usize = 128;

/// A configuration from the API, durations parsed; Consul's 400 text when it does not parse.
pub(crate) fn from_api(c: &AutopilotConfiguration) -> Result<AutopilotConfig, RpcError> {
    let bad = |m: String| RpcError::BadRequest(format!("Error parsing autopilot config: {m}"));
    let dur = |s: &str| -> Result<u64, RpcError> {
        duration::parse(s)
            .map(|d| d.as_nanos().min(u64::MAX as u128) as u64)
            .map_err(|e| bad(e.to_string()))
    };
    if c.redundancy_zone_tag.len() > MAX_TAG || c.upgrade_version_tag.len() > MAX_TAG {
        return Err(bad(format!(
            "tag names are limited to {MAX_TAG} characters"
        )));
    }
    Ok(AutopilotConfig {
        cleanup_dead_servers: c.cleanup_dead_servers,
        last_contact_threshold_ns: dur(&c.last_contact_threshold)?,
        max_trailing_logs: c.max_trailing_logs,
        min_quorum: c.min_quorum,
        server_stabilization_time_ns: dur(&c.server_stabilization_time)?,
        redundancy_zone_tag: c.redundancy_zone_tag.clone(),
        disable_upgrade_migration: c.disable_upgrade_migration,
        upgrade_version_tag: c.upgrade_version_tag.clone(),
        create_index: 0,
        modify_index: 0,
    })
}

/// One server's figures as the leader sees them.
struct Figures {
    raft_id: u64,
    id: String,
    name: String,
    address: String,
    /// `alive`, `failed`, `left`, or `none` when gossip does not know it.
    status: &'static str,
    leader: bool,
    voter: bool,
    last_contact: String,
    last_term: u64,
    last_index: u64,
    healthy: bool,
    stable_since: SystemTime,
}

impl Server {
    /// The stored autopilot configuration, or Consul's defaults before the leader wrote one.
    pub fn autopilot_config(&self) -> AutopilotConfig {
        self.inner
            .store
            .view()
            .autopilot_config()
            .unwrap_or_default()
    }

    /// Every Raft member's health, on the leader: its gossip status, and its own Raft figures
    /// asked over RPC (a server that does not answer within a second is unhealthy).
    async fn autopilot_figures(&self) -> Vec<Figures> {
        let cfg = self.autopilot_config();
        let threshold_ms =
            (cfg.last_contact_threshold_ns / 1_000_000).max(2 * self.inner.raft_heartbeat_ms);
        let members = self.inner.opts.members.members();
        let me = self.raft_id();
        let mine = self.status_here();
        let raft = &self.inner.raft;
        let nodes = raft
            .voters()
            .into_iter()
            .map(|(id, a)| (id, a, true))
            .chain(raft.learners().into_iter().map(|(id, a)| (id, a, false)));
        let asks = nodes.map(|(id, address, voter)| {
            let pool = self.inner.opts.pool.clone();
            let mine = mine.clone();
            async move {
                let stats = if id == me {
                    Some(mine)
                } else {
                    tokio::time::timeout(Duration::from_secs(1), pool.status(&address))
                        .await
                        .ok()
                        .and_then(|r| r.ok())
                };
                (id, address, voter, stats)
            }
        });
        // Each ask is bounded by its own one-second timeout.
        let answers = futures::future::join_all(asks).await;
        let mut out = Vec::new();
        for (id, address, voter, stats) in answers {
            let m = find_member(&members, id);
            let status = match m.map(|m| m.status) {
                Some(MemberStatus::Alive) => "alive",
                Some(MemberStatus::Failed) => "failed",
                Some(MemberStatus::Left) => "left",
                None => "none",
            };
            let healthy = status == "alive"
                && stats.as_ref().is_some_and(|s| {
                    (id == me || s.last_contact_ms <= threshold_ms)
                        && mine.last_index.saturating_sub(s.last_index) <= cfg.max_trailing_logs
                });
            let stable_since = {
                let mut stable = self.inner.stable_since.lock().unwrap();
                let e = stable
                    .entry(id)
                    .or_insert_with(|| (healthy, SystemTime::now()));
                if e.0 != healthy {
                    *e = (healthy, SystemTime::now());
                }
                e.1
            };
            out.push(Figures {
                raft_id: id,
                id: m
                    .map(|m| m.id.clone())
                    .unwrap_or_else(|| format!("{id:016x}")),
                name: m.map(|m| m.name.clone()).unwrap_or_default(),
                address,
                status,
                leader: id == me,
                voter,
                last_contact: stats
                    .as_ref()
                    .map(|s| duration::format(Duration::from_millis(s.last_contact_ms)))
                    .unwrap_or_else(|| "-1ns".into()),
                last_term: stats.as_ref().map(|s| s.term).unwrap_or(0),
                last_index: stats.as_ref().map(|s| s.last_index).unwrap_or(0),
                healthy,
                stable_since,
            });
        }
        // Forget servers no longer in the configuration.
        let ids: Vec<u64> = out.iter().map(|f| f.raft_id).collect();
        self.inner
            .stable_since
            .lock()
            .unwrap()
            .retain(|id, _| ids.contains(id));
        out
    }

    /// Autopilot's health view (`/v1/operator/autopilot/health`), computed on the leader
    /// (the request is routed there). A server is healthy when its gossip status is alive, it answers, it
    /// heard from the leader within `LastContactThreshold` and its log trails the leader's by
    /// at most `MaxTrailingLogs`.
    pub(crate) async fn autopilot_health(&self) -> Result<OperatorHealth, RpcError> {
        let figures = self.autopilot_figures().await;
        let failure_tolerance = failure_tolerance(&figures);
        Ok(OperatorHealth {
            healthy: figures.iter().all(|f| f.healthy),
            failure_tolerance,
            servers: figures
                .into_iter()
                .map(|f| ServerHealth {
                    id: f.id,
                    name: f.name,
                    address: f.address,
                    serf_status: f.status.into(),
                    version: proconsul_types::CONSUL_COMPAT_VERSION.into(),
                    leader: f.leader,
                    last_contact: f.last_contact,
                    last_term: f.last_term,
                    last_index: f.last_index,
                    healthy: f.healthy,
                    voter: f.voter,
                    stable_since: proconsul_types::time::rfc3339(f.stable_since),
                })
                .collect(),
        })
    }

    /// Autopilot's state (`/v1/operator/autopilot/state`), computed on the leader (forwarded
    /// there): the same figures as the health view, keyed by server ID.
    pub(crate) async fn autopilot_state(&self) -> Result<AutopilotState, RpcError> {
        let figures = self.autopilot_figures().await;
        let failure_tolerance = failure_tolerance(&figures);
        let mut state = AutopilotState {
            healthy: figures.iter().all(|f| f.healthy),
            failure_tolerance,
            // Without redundancy zones the optimistic figure is the plain one.
            optimistic_failure_tolerance: failure_tolerance,
            ..Default::default()
        };
        for f in figures {
            if f.leader {
                state.leader = f.id.clone();
            }
            if f.voter {
                state.voters.push(f.id.clone());
            }
            let status = match (f.leader, f.voter) {
                (true, _) => "leader",
                (false, true) => "voter",
                (false, false) => "non-voter",
            };
            state.servers.insert(
                f.id.clone(),
                AutopilotServer {
                    id: f.id,
                    name: f.name,
                    address: f.address,
                    node_status: f.status.into(),
                    version: proconsul_types::CONSUL_COMPAT_VERSION.into(),
                    last_contact: f.last_contact,
                    last_term: f.last_term,
                    last_index: f.last_index,
                    healthy: f.healthy,
                    stable_since: proconsul_types::time::rfc3339(f.stable_since),
                    status: status.into(),
                    node_type: "voter".into(),
                    ..Default::default()
                },
            );
        }
        state.voters.sort();
        Ok(state)
    }
}

/// `consul.autopilot.healthy` (1 when every server is healthy) and
/// `consul.autopilot.failure_tolerance`, as the leader sees them.
pub(crate) async fn record_health(server: &Server) {
    let figures = server.autopilot_figures().await;
    metrics::gauge!("consul.autopilot.healthy")
        .set(f64::from(u8::from(figures.iter().all(|f| f.healthy))));
    metrics::gauge!("consul.autopilot.failure_tolerance").set(failure_tolerance(&figures) as f64);
}

/// Healthy voters beyond a quorum of all voters (Consul's `FailureTolerance`).
fn failure_tolerance(figures: &[Figures]) -> usize {
    let voters = figures.iter().filter(|f| f.voter).count();
    let healthy = figures.iter().filter(|f| f.voter && f.healthy).count();
    healthy.saturating_sub(voters / 2 + 1)
}

fn find_member(members: &[LanMember], raft_id: u64) -> Option<&LanMember> {
    members
        .iter()
        .find(|m| m.server_port.is_some() && raft_id_from_node_id(&m.id) == raft_id)
}

/// The leader writes Consul's default configuration once if none is stored (Consul's
/// `getOrCreateAutopilotConfig`); `cas = 0` makes it lose against an operator's write.
pub(crate) async fn ensure_config(server: &Server) {
    if server.inner.store.view().autopilot_config().is_some() {
        return;
    }
    let cmd = Command::AutopilotSetConfig {
        config: AutopilotConfig::default(),
        cas: Some(0),
    };
    if let Err(e) = server.propose(cmd).await {
        tracing::warn!(target: "agent.server.autopilot", error = %e, "failed to initialize the autopilot configuration");
    }
}

/// A Raft member that is a candidate for removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub raft_id: u64,
    pub voter: bool,
    /// Unknown to gossip (rather than failed or left).
    pub stale: bool,
}

/// Which candidates may go this round (raft-autopilot's `adjudicateRemoval`): non-voters
/// always; voters while the removals leave at least `min_quorum` voters and take no more than
/// `(voters - 1) / 2` of them. Candidates are taken stale non-voters, stale voters, failed
/// non-voters, failed voters, each by id.
pub(crate) fn adjudicate(
    mut candidates: Vec<Candidate>,
    voters: usize,
    min_quorum: u64,
) -> Vec<u64> {
    candidates.sort_by_key(|c| (!c.stale, c.voter, c.raft_id));
    let mut max_removal = voters.saturating_sub(1) / 2;
    let mut removed_voters = 0usize;
    let mut out = Vec::new();
    for c in candidates {
        if !c.voter {
            out.push(c.raft_id);
            continue;
        }
        if (voters - removed_voters).saturating_sub(1) < min_quorum as usize {
            tracing::debug!(target: "agent.server.autopilot", id = c.raft_id, min_quorum, "will not remove server: it would leave fewer voters than MinQuorum");
            continue;
        }
        if max_removal < 1 {
            tracing::debug!(target: "agent.server.autopilot", id = c.raft_id, "will not remove server: removing a majority of voters is not safe");
            continue;
        }
        max_removal -= 1;
        removed_voters += 1;
        out.push(c.raft_id);
    }
    out
}

/// One round of dead-server cleanup on the leader (see the module docs). `led_since`: when
/// this server became leader.
pub(crate) fn prune_dead_servers(server: &Server, led_since: Instant) {
    let inner = &server.inner;
    let cfg = server.autopilot_config();
    if !cfg.cleanup_dead_servers {
        return;
    }
    let settled = led_since.elapsed() >= Duration::from_nanos(cfg.server_stabilization_time_ns);
    let members = inner.opts.members.members();
    let known: BTreeMap<u64, MemberStatus> = members
        .iter()
        .filter(|m| m.server_port.is_some())
        .map(|m| (raft_id_from_node_id(&m.id), m.status))
        .collect();
    let me = server.raft_id();
    let voters = inner.raft.voters();
    let nodes = voters
        .iter()
        .map(|(id, _)| (*id, true))
        .chain(inner.raft.learners().into_iter().map(|(id, _)| (id, false)));
    let mut candidates = Vec::new();
    for (id, voter) in nodes {
        if id == me {
            continue;
        }
        match known.get(&id) {
            Some(MemberStatus::Alive) => {}
            Some(MemberStatus::Failed | MemberStatus::Left) => candidates.push(Candidate {
                raft_id: id,
                voter,
                stale: false,
            }),
            None if settled => candidates.push(Candidate {
                raft_id: id,
                voter,
                stale: true,
            }),
            None => {}
        }
    }
    if candidates.is_empty() {
        return;
    }
    let names: HashMap<u64, String> = members
        .iter()
        .filter(|m| m.server_port.is_some())
        .map(|m| (raft_id_from_node_id(&m.id), m.name.clone()))
        .collect();
    for id in adjudicate(candidates, voters.len(), cfg.min_quorum) {
        if !inner.membership_changes.lock().unwrap().insert(id) {
            continue; // a change for this server is already running
        }
        let name = names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("{id:016x}"));
        let s = server.clone();
        inner.tasks.spawn(async move {
            tracing::info!(target: "agent.server.autopilot", server = %name, "removing dead server from the raft configuration");
            if let Err(e) = s.inner.raft.remove_voter(id).await {
                tracing::warn!(target: "agent.server.autopilot", server = %name, error = %e, "failed to remove dead server");
            }
            s.inner.membership_changes.lock().unwrap().remove(&id);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(raft_id: u64, voter: bool, stale: bool) -> Candidate {
        Candidate {
            raft_id,
            voter,
            stale,
        }
    }

    #[test]
    fn removal_is_capped_to_a_minority_and_min_quorum() {
        // 3 voters, one failed: it goes.
        assert_eq!(adjudicate(vec![c(3, true, false)], 3, 0), vec![3]);
        // 3 voters, two failed: only one per round.
        assert_eq!(
            adjudicate(vec![c(3, true, false), c(2, true, false)], 3, 0),
            vec![2]
        );
        // 2 voters: removing one is a majority.
        assert!(adjudicate(vec![c(2, true, false)], 2, 0).is_empty());
        // MinQuorum 3 with 3 voters: none go.
        assert!(adjudicate(vec![c(3, true, false)], 3, 3).is_empty());
        // 5 voters, MinQuorum 4: one goes.
        assert_eq!(
            adjudicate(vec![c(5, true, false), c(4, true, false)], 5, 4),
            vec![4]
        );
        // Non-voters always go and do not count; stale before failed.
        assert_eq!(
            adjudicate(
                vec![c(9, false, false), c(5, true, false), c(7, true, true)],
                5,
                0
            ),
            vec![7, 9, 5]
        );
    }

    #[test]
    fn config_round_trips_and_rejects_bad_durations() {
        let api = AutopilotConfiguration {
            last_contact_threshold: "1s".into(),
            min_quorum: 3,
            ..Default::default()
        };
        let c = from_api(&api).unwrap();
        assert_eq!(c.last_contact_threshold_ns, 1_000_000_000);
        assert_eq!(to_api(&c), api);
        let bad = AutopilotConfiguration {
            server_stabilization_time: "ten".into(),
            ..Default::default()
        };
        assert_eq!(
            from_api(&bad),
            Err(RpcError::BadRequest(
                "Error parsing autopilot config: time: invalid duration \"ten\"".into()
            ))
        );
    }
}
