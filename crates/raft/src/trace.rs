//! Per-write step timestamps for the write-latency benchmark (`bench/write-trace.sh`).
//!
//! Off unless the environment variable `PROCONSUL_WRITE_TRACE` names a directory when a node
//! starts; then every step a write takes on this node (proposal, own append, fsync, shipping,
//! a follower's append and reply, commit, apply) is recorded with the log index it concerns and
//! a wall-clock timestamp, so the steps of one write can be lined up across the processes of a
//! cluster on one machine. Records collect in memory and a helper thread appends them to
//! `<dir>/trace-<node id>.tsv` (`ns<TAB>step<TAB>index<TAB>peer`) every 200 ms and when the
//! node's last handle goes.
//!
//! Cost when off: the hooks hold an `Option<Arc<WriteTrace>>` that is `None`; nothing else
//! happens. This is a measuring tool, never a source of behaviour: nothing reads the records.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The environment variable that turns tracing on (a directory for the trace files).
pub const TRACE_ENV: &str = "PROCONSUL_WRITE_TRACE";

/// A step of a write. The names are what the analysis (`bench/write_trace.py`) reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// `RaftNode::propose` called (recorded once the index is known, at the call's time).
    ProposeStart,
    /// `RaftNode::propose` returns the applied result.
    ProposeEnd,
    /// The log store got the leader's own entries (index: the last).
    LeaderAppend,
    /// The log store got another leader's entries (a follower's append; index: the last).
    FollowerAppend,
    /// The log writer begins a write transaction (index: the last entry it appends).
    SyncStart,
    /// That transaction is durable (index: the last entry on disk).
    SyncEnd,
    /// Replication handed entries to the network, which puts them on the wire (index: the
    /// last; peer: the target).
    ShipSent,
    /// The target's reply arrived.
    AckRecv,
    /// The reply is handed back to openraft (after waiting for the leader's own fsync).
    AckDone,
    /// A heartbeat (no entries) went out (index: the leader's committed index).
    HeartbeatSent,
    /// Its reply arrived.
    HeartbeatAck,
    /// A follower decoded an AppendEntries frame with entries (index: the last).
    FollowerRecv,
    /// The follower's openraft answered it.
    FollowerReply,
    /// Committed index saved (index: the committed one).
    Commit,
    /// The state machine got entries to apply (index: the last).
    ApplyStart,
    /// They were applied.
    Applied,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::ProposeStart => "propose_start",
            Step::ProposeEnd => "propose_end",
            Step::LeaderAppend => "leader_append",
            Step::FollowerAppend => "follower_append",
            Step::SyncStart => "sync_start",
            Step::SyncEnd => "sync_end",
            Step::ShipSent => "ship_sent",
            Step::AckRecv => "ack_recv",
            Step::AckDone => "ack_done",
            Step::HeartbeatSent => "heartbeat_sent",
            Step::HeartbeatAck => "heartbeat_ack",
            Step::FollowerRecv => "follower_recv",
            Step::FollowerReply => "follower_reply",
            Step::Commit => "commit",
            Step::ApplyStart => "apply_start",
            Step::Applied => "applied",
        }
    }
}

/// One node's trace recorder (see the module docs).
pub(crate) struct WriteTrace {
    base: Instant,
    base_ns: u64,
    records: Mutex<Vec<(u64, Step, u64, u64)>>,
    path: PathBuf,
}

/// The hook the traced components hold: `None` when tracing is off.
pub(crate) type Tracer = Option<Arc<WriteTrace>>;

impl WriteTrace {
    /// A recorder for node `id` if [`TRACE_ENV`] is set, else `None`.
    pub(crate) fn from_env(id: u64) -> Tracer {
        let dir = std::env::var_os(TRACE_ENV)?;
        let path = PathBuf::from(dir).join(format!("trace-{id}.tsv"));
        let base_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let trace = Arc::new(WriteTrace {
            base: Instant::now(),
            base_ns,
            records: Mutex::new(Vec::with_capacity(1 << 16)),
            path,
        });
        tracing::warn!(path = %trace.path.display(), "write tracing on ({TRACE_ENV})");
        let weak = Arc::downgrade(&trace);
        let _ = std::thread::Builder::new()
            .name("write-trace".into())
            .spawn(move || flush_loop(weak));
        Some(trace)
    }

    /// Record `step` for `index` now.
    pub(crate) fn record(&self, step: Step, index: u64, peer: u64) {
        self.record_at(step, index, peer, Instant::now());
    }

    /// Record `step` for `index` as having happened at `at`.
    pub(crate) fn record_at(&self, step: Step, index: u64, peer: u64, at: Instant) {
        let ns = self.base_ns + at.saturating_duration_since(self.base).as_nanos() as u64;
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((ns, step, index, peer));
    }

    fn flush(&self) {
        let records = std::mem::take(&mut *self.records.lock().unwrap_or_else(|p| p.into_inner()));
        if records.is_empty() {
            return;
        }
        let mut out = String::with_capacity(records.len() * 40);
        for (ns, step, index, peer) in records {
            use std::fmt::Write as _;
            let _ = writeln!(out, "{ns}\t{}\t{index}\t{peer}", step.name());
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path);
        if let Err(e) = file.and_then(|mut f| f.write_all(out.as_bytes())) {
            tracing::warn!(path = %self.path.display(), error = %e, "write trace not saved");
        }
    }
}

impl Drop for WriteTrace {
    fn drop(&mut self) {
        self.flush();
    }
}

fn flush_loop(trace: Weak<WriteTrace>) {
    loop {
        std::thread::sleep(Duration::from_millis(200));
        match trace.upgrade() {
            Some(t) => t.flush(),
            None => return,
        }
    }
}

/// Record `step` if tracing is on (a no-op on `None`).
#[inline]
pub(crate) fn record(tracer: &Tracer, step: Step, index: u64, peer: u64) {
    if let Some(t) = tracer {
        t.record(step, index, peer);
    }
}
