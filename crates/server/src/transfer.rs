//! `operator raft transfer-leader`: hand leadership to another voter on purpose (before
//! upgrading or draining the leader's machine).
//!
//! openraft 0.9 has no leadership transfer (hashicorp/raft's `TimeoutNow`), so the leader
//! builds one from what it has:
//! 1. pick the target (the given voter, or the most up-to-date other voter) and refuse writes
//!    (`leadership transfer in progress`) with heartbeats off ([`RaftNode::begin_transfer`]);
//! 2. wait until the target holds the leader's whole log, so its election can win;
//! 3. wait out the followers' leader lease, after which they grant votes to a candidate —
//!    and before their own election timers fire, which is a full election timeout later;
//! 4. ask the target (RPC `ELECT`) to start an election now, and wait until it leads.
//!
//! Whatever the outcome the guard ends the pause, so a failed transfer costs one lease of
//! unavailability and leaves the old leader in place (or whoever the cluster elected).
//!
//! [`RaftNode::begin_transfer`]: proconsul_raft::RaftNode::begin_transfer

use std::time::Duration;

use proconsul_types::RpcError;

use crate::Server;

/// How long the target may take to catch up with the leader's log.
const CATCH_UP: Duration = Duration::from_secs(5);
/// How long the target may take to win once asked.
const ELECTION: Duration = Duration::from_secs(5);

impl Server {
    /// Transfer leadership to the voter with Raft id `target` (any other voter if `None`);
    /// runs on the leader (`Operator.RaftTransferLeader` is routed there).
    pub(crate) async fn transfer_here(&self, target: Option<u64>) -> Result<(), RpcError> {
        let raft = &self.inner.raft;
        let me = self.raft_id();
        let voters = raft.voters();
        let matched = raft.matched_indexes();
        let (target, addr) = match target {
            Some(t) if t == me => {
                return Err(RpcError::Internal(
                    "cannot transfer leadership to itself".into(),
                ))
            }
            Some(t) => voters
                .iter()
                .find(|(id, _)| *id == t)
                .cloned()
                .ok_or_else(|| {
                    RpcError::Internal(format!("server {t:x} is not a voter in the cluster"))
                })?,
            None => voters
                .iter()
                .filter(|(id, _)| *id != me)
                .max_by_key(|(id, _)| matched.get(id).copied().unwrap_or(0))
                .cloned()
                .ok_or_else(|| {
                    RpcError::Internal("no other voter to transfer leadership to".into())
                })?,
        };
        tracing::info!(target: "agent.server", to = %addr, "starting leadership transfer");
        let guard = raft.begin_transfer().map_err(crate::raft_error)?;

        // 2. The target must hold everything this leader has.
        let deadline = tokio::time::Instant::now() + CATCH_UP;
        loop {
            let last = raft.last_log_index();
            if raft.matched_indexes().get(&target).copied().unwrap_or(0) >= last {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RpcError::Internal(format!(
                    "server at {addr} did not catch up with the leader's log"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // 3. Silence until the followers' lease on this leader has run out.
        tokio::time::sleep(raft.follower_lease() + Duration::from_millis(100)).await;

        // 4. The target stands for election now.
        let pool = self.inner.opts.pool.clone();
        match pool.call_typed(&addr, proconsul_types::RaftElect {}).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => {
                return Err(RpcError::Internal(format!(
                    "rpc error asking {addr} to stand for election: {e}"
                )))
            }
        }
        let deadline = tokio::time::Instant::now() + ELECTION;
        while tokio::time::Instant::now() < deadline {
            if raft.leader().is_some_and(|(id, _)| id == target) {
                drop(guard);
                tracing::info!(target: "agent.server", to = %addr, "leadership transferred");
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(RpcError::Internal(format!(
            "server at {addr} did not take leadership in time"
        )))
    }

    /// The `ELECT` RPC: start an election on this server now (the target of a transfer).
    pub(crate) async fn elect_here(&self) -> Result<(), RpcError> {
        tracing::info!(target: "agent.server", "standing for election: leadership is being transferred here");
        self.inner.raft.elect().await.map_err(crate::raft_error)
    }
}
