//! The state-machine adapter: openraft's `RaftStateMachine` over proconsul's [`StateMachine`].
//!
//! openraft needs to know the last applied log id and the last membership; the application
//! state does not. This adapter keeps both next to the state and writes them into the snapshot
//! envelope, so a snapshot is self-describing: on boot the durable node loads
//! `<dir>/snapshots/current.snap`, restores the state machine from it and tells openraft where it
//! stands — openraft then replays only the log after the snapshot.
//!
//! Snapshot consistency: openraft builds snapshots in a spawned task while entries keep being
//! applied, so the state is frozen in `get_snapshot_builder` (on the apply path, together with the
//! matching last-applied id: [`StateMachine::freeze`], O(1) for a persistent store); encoding it
//! and writing the file happen off that path.
//!
//! In durable mode the current snapshot lives only on disk (read back when a follower needs it),
//! so a large state is not held twice in memory. In memory (`-dev`) the current snapshot is the
//! frozen state itself, encoded only when a follower asks for it: a persistent store's frozen
//! copy shares everything unchanged with the live state, where its bytes would be a second
//! copy of the whole state (about as large as the store's records). Files are written to a temp name, fsync'd and
//! renamed, so a crash leaves either the old or the new snapshot, never a torn one. The file
//! carries a CRC-32 of its meta and state: msgpack decodes many damaged files without
//! complaint (a flipped byte in a value is still a value), so without it a damaged snapshot
//! would be served as if it were the data; with it the node refuses to start, naming the file.
//! A snapshot that finds the disk full waits for space (like the log, see `log_store`) rather
//! than stop the node.

use std::borrow::Cow;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{AnyError, EntryPayload, RaftSnapshotBuilder, StorageIOError};
use serde::{Deserialize, Serialize};

use proconsul_state::{ApplyResult, Proposal};

use crate::log_store::{DurableGate, TailRelease};
use crate::trace::{self, Step, Tracer};
use crate::types::{
    decode, encode, Blob, Entry, LogId, Response, SnapshotMeta, StorageError, StoredMembership,
    TypeConfig,
};

/// The replicated state machine, fed committed entries. Implemented by the server crate.
pub trait StateMachine: Send + Sync + 'static {
    /// Apply a committed entry at `index`; returns its result to the proposer. Must be
    /// deterministic.
    fn apply(&self, index: u64, entry: &Proposal) -> ApplyResult;
    /// A non-application entry (blank/membership) was applied at `index`.
    fn note_index(&self, index: u64);
    /// Serialise the whole state (deterministic bytes).
    fn snapshot(&self) -> Vec<u8>;
    /// The state as it is now, to be encoded later (possibly more than once, from another
    /// thread) into what [`StateMachine::snapshot`] returns now. Called on the apply path, so a
    /// store that can copy itself cheaply should override this default (which encodes at once).
    fn freeze(&self) -> Arc<dyn FrozenState> {
        Arc::new(EncodedState(self.snapshot()))
    }
    /// Replace the whole state from snapshot bytes.
    fn restore(&self, data: &[u8]) -> Result<(), String>;
}

/// A point-in-time copy of a state machine (see [`StateMachine::freeze`]).
pub trait FrozenState: Send + Sync + 'static {
    /// The snapshot bytes of the state as it was frozen.
    fn encode(&self) -> Cow<'_, [u8]>;
}

/// A state frozen as its snapshot bytes (the default [`StateMachine::freeze`], and a snapshot
/// received from the leader).
struct EncodedState(Vec<u8>);

impl FrozenState for EncodedState {
    fn encode(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }
}

const SNAPSHOT_FILE: &str = "current.snap";
const SNAPSHOT_TMP: &str = "current.snap.tmp";
/// Version 2 adds `checksum`; version 1 files (without one) are still read.
const ENVELOPE_VERSION: u32 = 2;

/// What a snapshot file holds: openraft's view (last applied id, membership) plus the state,
/// and (version 2) a CRC-32 of the msgpack encoding of `meta` followed by `data`.
#[derive(Serialize, Deserialize)]
pub(crate) struct Envelope {
    version: u32,
    meta: SnapshotMeta,
    pub(crate) data: Blob,
    #[serde(default)]
    checksum: Option<u32>,
}

/// State shared between the adapter, its snapshot builders and the node facade.
pub(crate) struct SmShared {
    sm: Arc<dyn StateMachine>,
    applied_index: AtomicU64,
    snapshot_seq: AtomicU64,
    /// `None`: snapshots kept in memory (`-dev`).
    dir: Option<PathBuf>,
    /// The current snapshot's meta, and its frozen state when in memory. The lock also orders
    /// the compare-and-write of snapshot files.
    current: Mutex<Option<CurrentSnapshot>>,
}

/// The current snapshot's meta, plus its frozen state when snapshots are kept in memory.
type CurrentSnapshot = (SnapshotMeta, Option<Arc<dyn FrozenState>>);

impl SmShared {
    pub(crate) fn applied_index(&self) -> u64 {
        self.applied_index.load(Ordering::Acquire)
    }

    /// Make `meta`/`state` the current snapshot unless a newer one is already current; the
    /// size of the snapshot file written (`None` in memory: nothing is encoded).
    /// Blocking (encoding and file I/O in durable mode): call from `spawn_blocking`.
    fn store(
        &self,
        meta: &SnapshotMeta,
        state: Arc<dyn FrozenState>,
    ) -> Result<Option<usize>, StorageError> {
        let is_stale = |cur: &Option<CurrentSnapshot>| {
            cur.as_ref()
                .is_some_and(|(m, _)| m.last_log_id > meta.last_log_id)
        };
        let Some(dir) = &self.dir else {
            let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
            if !is_stale(&cur) {
                *cur = Some((meta.clone(), Some(state)));
            }
            return Ok(None);
        };
        let data = state.encode();
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if is_stale(&cur) {
            return Ok(None);
        }
        write_snapshot_file(dir, meta, &data).map_err(|e| {
            StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e))
        })?;
        *cur = Some((meta.clone(), None));
        Ok(Some(data.len()))
    }

    fn current(&self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        match (&*cur, &self.dir) {
            (None, _) => Ok(None),
            (Some((meta, Some(state))), _) => Ok(Some(Snapshot {
                meta: meta.clone(),
                snapshot: Box::new(Cursor::new(state.encode().into_owned())),
            })),
            (Some((meta, None)), Some(dir)) => {
                let env = read_snapshot_file(dir)?.ok_or_else(|| {
                    snapshot_read_err(Some(meta), "snapshot file missing".to_string())
                })?;
                Ok(Some(Snapshot {
                    meta: env.meta,
                    snapshot: Box::new(Cursor::new(env.data.0)),
                }))
            }
            (Some((meta, None)), None) => Err(snapshot_read_err(
                Some(meta),
                "snapshot data missing".to_string(),
            )),
        }
    }
}

fn snapshot_read_err(meta: Option<&SnapshotMeta>, msg: String) -> StorageError {
    StorageIOError::read_snapshot(meta.map(|m| m.signature()), AnyError::error(msg)).into()
}

/// The checksum a version 2 envelope carries.
fn envelope_checksum(meta: &SnapshotMeta, data: &[u8]) -> Result<u32, rmp_serde::encode::Error> {
    let mut h = crc32fast::Hasher::new();
    h.update(&encode(meta)?);
    h.update(data);
    Ok(h.finalize())
}

/// Write the snapshot file; a full disk is waited out (the temp file is removed between
/// tries, so the attempt itself does not keep the space).
pub(crate) fn write_snapshot_file(
    dir: &Path,
    meta: &SnapshotMeta,
    data: &[u8],
) -> std::io::Result<()> {
    let mut reported = false;
    loop {
        match try_write_snapshot_file(dir, meta, data) {
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
                ) =>
            {
                let _ = std::fs::remove_file(dir.join(SNAPSHOT_TMP));
                if !reported {
                    reported = true;
                    tracing::error!(
                        "writing snapshot {} failed: {e}; retrying until space is freed",
                        dir.join(SNAPSHOT_FILE).display()
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            Err(e) => {
                let _ = std::fs::remove_file(dir.join(SNAPSHOT_TMP));
                return Err(e);
            }
            Ok(()) => return Ok(()),
        }
    }
}

fn try_write_snapshot_file(dir: &Path, meta: &SnapshotMeta, data: &[u8]) -> std::io::Result<()> {
    let env = Envelope {
        version: ENVELOPE_VERSION,
        meta: meta.clone(),
        data: Blob(data.to_vec()),
        checksum: Some(envelope_checksum(meta, data).map_err(std::io::Error::other)?),
    };
    let bytes = encode(&env).map_err(std::io::Error::other)?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(SNAPSHOT_TMP);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(SNAPSHOT_FILE))?;
    // Persist the rename itself.
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

fn read_snapshot_file(dir: &Path) -> Result<Option<Envelope>, StorageError> {
    let path = dir.join(SNAPSHOT_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(snapshot_read_err(None, format!("{}: {e}", path.display()))),
    };
    parse_snapshot_file(&path, &bytes).map(Some)
}

/// The envelope in a snapshot file's bytes (`path` names the file in errors).
pub(crate) fn parse_snapshot_file(path: &Path, bytes: &[u8]) -> Result<Envelope, StorageError> {
    let damaged = |what: String| {
        let msg = format!(
            "{}: {what}. The snapshot file is damaged: stop the server, move its raft directory \
             away and start it again to rejoin the cluster with a copy from the leader, or \
             restore a snapshot (see docs/outage-recovery.md)",
            path.display()
        );
        tracing::error!("{msg}");
        msg
    };
    let env: Envelope =
        decode(bytes).map_err(|e| snapshot_read_err(None, damaged(format!("undecodable: {e}"))))?;
    match (env.version, env.checksum) {
        (1, _) => {}
        (ENVELOPE_VERSION, Some(sum)) => {
            let want = envelope_checksum(&env.meta, &env.data.0)
                .map_err(|e| snapshot_read_err(Some(&env.meta), damaged(e.to_string())))?;
            if sum != want {
                return Err(snapshot_read_err(
                    Some(&env.meta),
                    damaged(format!(
                        "checksum mismatch (file says {sum:08x}, contents give {want:08x})"
                    )),
                ));
            }
        }
        (ENVELOPE_VERSION, None) => {
            return Err(snapshot_read_err(
                Some(&env.meta),
                damaged("no checksum".to_string()),
            ))
        }
        (v, _) => {
            return Err(snapshot_read_err(
                Some(&env.meta),
                format!("{}: unsupported snapshot version {v}", path.display()),
            ))
        }
    }
    Ok(env)
}

/// openraft's state machine: the application state plus last-applied id and membership.
pub(crate) struct SmStore {
    shared: Arc<SmShared>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    /// With a durable log: entries are applied only once durable on this node (the leader
    /// acknowledges its own appends to openraft before the fsync; see `log_store`).
    gate: Option<DurableGate>,
    /// Write-latency trace hook (`None`: off).
    trace: Tracer,
    /// With a durable log: drops applied entries from its in-memory tail.
    tail: Option<TailRelease>,
}

impl SmStore {
    /// Create the adapter. With `dir`, load `<dir>/current.snap` if present and restore the
    /// state machine from it (an unreadable snapshot is a fatal error, never ignored).
    pub(crate) fn open(
        sm: Arc<dyn StateMachine>,
        dir: Option<PathBuf>,
    ) -> Result<Self, StorageError> {
        let mut last_applied = None;
        let mut membership = StoredMembership::default();
        let mut current = None;
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| snapshot_read_err(None, format!("{}: {e}", dir.display())))?;
            let _ = std::fs::remove_file(dir.join(SNAPSHOT_TMP));
            if let Some(env) = read_snapshot_file(dir)? {
                sm.restore(&env.data.0)
                    .map_err(|e| snapshot_read_err(Some(&env.meta), e))?;
                tracing::info!(
                    index = env.meta.last_log_id.map(|l| l.index).unwrap_or(0),
                    id = %env.meta.snapshot_id,
                    "restored state from snapshot"
                );
                last_applied = env.meta.last_log_id;
                membership = env.meta.last_membership.clone();
                current = Some((env.meta, None));
            }
        }
        Ok(Self {
            shared: Arc::new(SmShared {
                sm,
                applied_index: AtomicU64::new(last_applied.map(|l| l.index).unwrap_or(0)),
                snapshot_seq: AtomicU64::new(0),
                dir,
                current: Mutex::new(current),
            }),
            last_applied,
            membership,
            gate: None,
            trace: None,
            tail: None,
        })
    }

    /// Apply entries only after the log has made them durable, and tell the log's tail what
    /// has been applied.
    pub(crate) fn set_log(&mut self, gate: Option<DurableGate>, tail: Option<TailRelease>) {
        self.gate = gate;
        self.tail = tail;
    }

    /// Record apply steps in `trace` (see `crate::trace`).
    pub(crate) fn set_trace(&mut self, trace: Tracer) {
        self.trace = trace;
    }

    pub(crate) fn shared(&self) -> Arc<SmShared> {
        self.shared.clone()
    }
}

/// Builds one snapshot from state frozen when the builder was created.
pub(crate) struct SmSnapshotBuilder {
    shared: Arc<SmShared>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    state: Arc<dyn FrozenState>,
}

impl RaftSnapshotBuilder<TypeConfig> for SmSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let seq = self.shared.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match self.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, seq),
            None => format!("0-0-{seq}"),
        };
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        };
        let state = self.state.clone();
        let shared = self.shared.clone();
        let start = std::time::Instant::now();
        let (meta, bytes) =
            tokio::task::spawn_blocking(move || shared.store(&meta, state).map(|b| (meta, b)))
                .await
                .map_err(|e| StorageIOError::write_snapshot(None, AnyError::new(&e)))??;
        metrics::histogram!("consul.raft.snapshot.persist")
            .record(start.elapsed().as_secs_f64() * 1000.0);
        tracing::info!(
            index = meta.last_log_id.map(|l| l.index).unwrap_or(0),
            bytes,
            "built snapshot"
        );
        // openraft reads only the meta of a snapshot it had built (`sm::worker`); followers
        // get the data through `get_current_snapshot`. So nothing is encoded for it here.
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(Vec::new())),
        })
    }
}

impl RaftStateMachine<TypeConfig> for SmStore {
    type SnapshotBuilder = SmSnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let last_index = entries.last().map_or(0, |e| e.log_id.index);
        trace::record(&self.trace, Step::ApplyStart, last_index, 0);
        if let (Some(gate), Some(last)) = (&self.gate, entries.last()) {
            gate.wait(last.log_id.index)
                .await
                .map_err(|e| StorageIOError::write_logs(AnyError::error(e)))?;
        }
        let sm = &self.shared.sm;
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let index = e.log_id.index;
            self.last_applied = Some(e.log_id);
            match e.payload {
                EntryPayload::Normal(req) => {
                    let start = std::time::Instant::now();
                    out.push(Response(sm.apply(index, &req.0)));
                    static APPLY: std::sync::OnceLock<metrics::Histogram> =
                        std::sync::OnceLock::new();
                    APPLY
                        .get_or_init(|| metrics::histogram!("consul.raft.fsm.apply"))
                        .record(start.elapsed().as_secs_f64() * 1000.0);
                }
                EntryPayload::Blank => {
                    sm.note_index(index);
                    out.push(Response::default());
                }
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(e.log_id), m);
                    sm.note_index(index);
                    out.push(Response::default());
                }
            }
            self.shared.applied_index.store(index, Ordering::Release);
        }
        if let Some(tail) = &self.tail {
            tail.applied(last_index);
        }
        trace::record(&self.trace, Step::Applied, last_index, 0);
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        let start = std::time::Instant::now();
        let state = self.shared.sm.freeze();
        metrics::histogram!("consul.raft.fsm.snapshot")
            .record(start.elapsed().as_secs_f64() * 1000.0);
        SmSnapshotBuilder {
            shared: self.shared.clone(),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            state,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let start = std::time::Instant::now();
        self.shared
            .sm
            .restore(&data)
            .map_err(|e| snapshot_read_err(Some(meta), format!("restore: {e}")))?;
        metrics::histogram!("consul.raft.fsm.restore")
            .record(start.elapsed().as_secs_f64() * 1000.0);
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.shared.applied_index.store(
            meta.last_log_id.map(|l| l.index).unwrap_or(0),
            Ordering::Release,
        );
        tracing::info!(
            index = meta.last_log_id.map(|l| l.index).unwrap_or(0),
            bytes = data.len(),
            "installed snapshot"
        );

        let shared = self.shared.clone();
        let meta = meta.clone();
        let state = Arc::new(EncodedState(data));
        tokio::task::spawn_blocking(move || shared.store(&meta, state))
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, AnyError::new(&e)))??;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.current())
            .await
            .map_err(|e| StorageIOError::read_snapshot(None, AnyError::new(&e)))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: Some(LogId::new(openraft::CommittedLeaderId::new(3, 1), 42)),
            last_membership: StoredMembership::default(),
            snapshot_id: "3-42-0".to_string(),
        }
    }

    #[test]
    fn a_damaged_snapshot_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let data = b"the state: key=value-042".to_vec();
        write_snapshot_file(dir.path(), &meta(), &data).unwrap();
        let path = dir.path().join(SNAPSHOT_FILE);
        let good = std::fs::read(&path).unwrap();
        assert_eq!(parse_snapshot_file(&path, &good).unwrap().data.0, data);

        // One flipped bit in the state still decodes as msgpack: only the checksum tells.
        let at = good.windows(3).position(|w| w == b"042").unwrap();
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        let e = parse_snapshot_file(&path, &bad).err().unwrap().to_string();
        assert!(
            e.contains("current.snap") && e.contains("checksum mismatch"),
            "{e}"
        );

        // So does one in the meta (the snapshot's last index).
        let mut bad = good.clone();
        let at = good.windows(6).position(|w| w == b"3-42-0").unwrap();
        bad[at + 2] = b'5';
        assert!(parse_snapshot_file(&path, &bad).is_err());

        // Cut short: undecodable, named.
        let e = parse_snapshot_file(&path, &good[..good.len() - 5])
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("current.snap") && e.contains("undecodable"),
            "{e}"
        );
    }

    #[test]
    fn version_1_snapshot_files_without_a_checksum_are_still_read() {
        #[derive(Serialize)]
        struct V1 {
            version: u32,
            meta: SnapshotMeta,
            data: Blob,
        }
        let bytes = encode(&V1 {
            version: 1,
            meta: meta(),
            data: Blob(b"old".to_vec()),
        })
        .unwrap();
        let env = parse_snapshot_file(Path::new("current.snap"), &bytes).unwrap();
        assert_eq!(env.data.0, b"old");
        // A version 2 file must carry one.
        let bytes = encode(&V1 {
            version: 2,
            meta: meta(),
            data: Blob(b"new".to_vec()),
        })
        .unwrap();
        assert!(parse_snapshot_file(Path::new("current.snap"), &bytes).is_err());
    }
}
