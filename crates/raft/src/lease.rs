//! The leader lease: a leader that has not heard from a quorum for a while stops acting as one.
//!
//! Consul's Raft (hashicorp/raft) checks on the leader, every `LeaderLeaseTimeout`, whether a
//! quorum of voters answered within that time, and steps down to follower if not. openraft 0.9
//! has no such step-down: a leader cut off from the quorum stays `Leader` until it learns of a
//! higher term. Left alone, a partitioned leader would keep announcing itself, answer default
//! reads from state the majority has moved past, and hold writes until the partition heals.
//!
//! So the effect lives here, not in openraft. openraft tracks when a quorum last acknowledged
//! the leader (the send time of the newest AppendEntries, heartbeat or not, that a quorum has
//! answered) and publishes its age in its metrics (`millis_since_quorum_ack`). One task follows
//! the metrics and records that instant; a just-elected leader counts its election as the first
//! acknowledgement. While the instant is older than the lease, [`crate::RaftNode`] reports the
//! node as not leader with no known leader, refuses writes and linearizable reads with
//! [`crate::RaftError::NoLeader`], and fails a write still waiting for its commit with
//! [`crate::RaftError::LeadershipLost`] (Consul's `leadership lost while committing log`: the
//! entry may still commit, the caller cannot know). openraft itself keeps replicating and
//! heartbeating: if a quorum answers again before anyone else is elected the lease is back, and
//! once a newer leader's term reaches the node it becomes a follower the usual way. We never
//! change membership or the node's vote to force a step-down.
//!
//! The lease is the minimum election timeout (1 s at `raft_multiplier` 1: five heartbeats,
//! like Consul's 500 ms lease over 100 ms heartbeats). A follower campaigns only after openraft's
//! own follower lease (the maximum election timeout) plus an election timeout have passed since
//! the last heartbeat it accepted, and every acknowledged heartbeat was sent before it was
//! accepted, so the old leader stops serving leader reads before a new leader can exist.

use std::time::Duration;

use openraft::{BasicNode, RaftMetrics, ServerState};
use tokio::sync::watch;
use tokio::time::Instant;

/// The lease as the node's callers see it. Written only by [`run`].
pub(crate) struct Lease {
    len: Duration,
    /// While openraft says this node leads: when a quorum last acknowledged it; else `None`.
    /// Receivers are woken only when the lease is gained or lost, not on every refresh.
    acked: watch::Sender<Option<Instant>>,
}

fn valid(acked: &Option<Instant>, len: Duration, now: Instant) -> bool {
    acked.is_some_and(|t| now < t + len)
}

impl Lease {
    pub(crate) fn new(len: Duration) -> Self {
        Self {
            len,
            acked: watch::Sender::new(None),
        }
    }

    /// Whether this node leads with a quorum heard from within the lease.
    pub(crate) fn held(&self) -> bool {
        valid(&self.acked.borrow(), self.len, Instant::now())
    }

    /// When a quorum last acknowledged this node as leader (`None` unless openraft says it
    /// leads).
    pub(crate) fn acked(&self) -> Option<Instant> {
        *self.acked.borrow()
    }

    /// A receiver woken whenever the lease is gained or lost (not on every refresh).
    pub(crate) fn subscribe(&self) -> watch::Receiver<Option<Instant>> {
        self.acked.subscribe()
    }

    /// Resolves once the lease is not held (at once if it is not held now).
    pub(crate) async fn lost(&self) {
        let len = self.len;
        let mut rx = self.acked.subscribe();
        // An error means the task ended with Raft: the lease is gone as well.
        let _ = rx.wait_for(|a| !valid(a, len, Instant::now())).await;
    }
}

/// Follow openraft's metrics for node `id` and keep `lease` current until Raft stops.
pub(crate) async fn run(
    id: u64,
    lease: std::sync::Arc<Lease>,
    mut metrics: watch::Receiver<RaftMetrics<u64, BasicNode>>,
) {
    let mut leading_since: Option<Instant> = None;
    let mut announced = false;
    // The term of the election last counted in `consul.raft.state.candidate` (a self-vote
    // read back from disk at start was counted by the process that cast it).
    let mut campaigned: Option<u64> = {
        let m = metrics.borrow();
        let vote = m.vote.leader_id();
        (vote.voted_for() == Some(id)).then(|| vote.get_term())
    };
    // openraft reports the quorum's acknowledgement as an age computed when it publishes its
    // metrics: turned into an instant when a new report arrives, and kept as that instant
    // until the next. (Recomputed from the same old report at a later wake-up, the age would
    // be taken from the wrong "now" and renew a lease no quorum renewed.)
    let mut acked: Option<Instant> = None;
    let mut report_is_new = true;
    loop {
        let now = Instant::now();
        if std::mem::take(&mut report_is_new) {
            let m = metrics.borrow_and_update();
            // Every term this node voted for itself in is an election it ran (watching for the
            // Candidate state would miss one that the watch coalesced away).
            let vote = m.vote.leader_id();
            if vote.voted_for() == Some(id) && campaigned != Some(vote.get_term()) {
                campaigned = Some(vote.get_term());
                metrics::counter!("consul.raft.state.candidate").increment(1);
            }
            if let (ServerState::Leader, Some(ms)) = (m.state, m.millis_since_quorum_ack) {
                metrics::histogram!("consul.raft.leader.lastContact").record(ms as f64);
            }
            acked = if m.state == ServerState::Leader && m.current_leader == Some(id) {
                let elected = *leading_since.get_or_insert(now);
                let quorum = m
                    .millis_since_quorum_ack
                    .and_then(|ms| now.checked_sub(Duration::from_millis(ms)));
                Some(quorum.map_or(elected, |q| q.max(elected)))
            } else {
                leading_since = None;
                None
            };
        }
        let held = valid(&acked, lease.len, now);
        if announced && !held && acked.is_some() {
            tracing::warn!(
                lease_ms = lease.len.as_millis() as u64,
                "failed to contact a quorum of servers within the leader lease; no longer acting as leader"
            );
        } else if !announced && held && leading_since.is_some_and(|t| t < now) {
            tracing::info!("a quorum answers again; acting as leader");
        }
        lease.acked.send_if_modified(|cur| {
            *cur = acked;
            held != announced
        });
        announced = held;
        // Wake at expiry even if openraft reports nothing new.
        let expiry = acked.map(|t| t + lease.len).filter(|e| *e > now);
        tokio::select! {
            changed = metrics.changed() => {
                if changed.is_err() {
                    lease.acked.send_replace(None);
                    return;
                }
                report_is_new = true;
            }
            _ = tokio::time::sleep_until(expiry.unwrap_or(now)), if expiry.is_some() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// One report from openraft saying a quorum just answered, then silence (a cut-off leader
    /// whose openraft has nothing new to report): the lease runs out one lease later and stays
    /// out; the old report is not read again as if it were new.
    #[tokio::test(start_paused = true)]
    async fn an_old_report_does_not_renew_the_lease() {
        let mut m = RaftMetrics::<u64, BasicNode>::new_initial(1);
        m.state = ServerState::Leader;
        m.current_leader = Some(1);
        m.millis_since_quorum_ack = Some(0);
        let (_tx, rx) = watch::channel(m);
        let lease = Arc::new(Lease::new(Duration::from_secs(1)));
        let task = tokio::spawn(run(1, lease.clone(), rx));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(lease.held(), "held within the lease");
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(
            !lease.held(),
            "lost one lease after the quorum's last answer"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(!lease.held(), "and not renewed by the same old report");
        task.abort();
    }
}
