//! The Raft log: openraft's storage-v2 `RaftLogStorage` on redb (durable) or a `BTreeMap` (`-dev`).
//!
//! Why redb: pure Rust, builds in seconds, and a write transaction with `Durability::Immediate`
//! is exactly one fsync.
//!
//! # Group commit
//!
//! openraft 0.9 does *not* coalesce concurrent `client_write`s: the core turns each one into its
//! own one-entry `append` and then waits for that append's flush callback before it looks at the
//! next message (`RaftCore::append_to_log`). A store that only acknowledges after its own fsync
//! therefore gets exactly one fsync per proposal, serialised.
//!
//! So the durable store decouples openraft from the disk:
//!
//! - Every log operation (append, truncate, purge, vote) goes, in order, through one queue to a
//!   dedicated writer thread. The writer drains everything queued, writes it in ONE redb write
//!   transaction, commits (one fsync), then completes every drained operation in order.
//!   Appended entries stay in an in-memory tail until applied, so reads and the log state always
//!   reflect every submitted append, and openraft's reads of what it applies next never touch
//!   the disk.
//! - A *follower's* append (entries from another leader) is acknowledged to openraft only after
//!   its batch is durable, as openraft's contract says: its reply to the leader counts towards a
//!   commit quorum.
//! - The *leader's own* appends (entries of the leader's current term, written while this node's
//!   committed vote names itself) are acknowledged to openraft at once, so the core keeps taking
//!   proposals while the fsync runs and the next batch collects behind it. openraft counts that
//!   acknowledgement towards the commit quorum, so it must never be what makes one:
//!   - The entries are shipped to the followers at once, while the leader's own fsync runs (Raft
//!     lets a leader replicate before its own write is durable, as long as it counts itself
//!     only once it is), but a follower's ack is handed to openraft only once the leader's copy
//!     of everything it acknowledges is durable here ([`DurableGate`]; the network waits). So
//!     any quorum openraft sees of two or more is made of durable copies, the leader's
//!     included: a commit means a majority has the entry on disk, and the two fsyncs overlap.
//!   - Until durable here, entries are not applied to the state machine either (so no client
//!     sees a result, no read observes them, no snapshot includes them). A single-voter cluster
//!     therefore still answers a client only after the fsync.
//!
//!   A crash before the fsync loses entries nobody was told about. A follower may hold them:
//!   uncommitted entries, which a later leader commits or overwrites, as for any leader crash.
//! - The committed index is not queued: openraft's latest one is set aside, and the writer's
//!   next transaction writes it once the entry it names is written (it was appended before
//!   openraft saved the index, so it is at the latest in that transaction unless a batch limit
//!   cut it off). A restart never finds committed beyond the durable log, and a Raft commit
//!   costs no transaction, and no wake-up of the writer, of its own.
//! - An I/O error poisons the writer: pending callbacks get the error, every later operation
//!   fails, and the gate reports it, so openraft stops with a storage error — never swallowed.
//! - Except a full disk (`ENOSPC`, `EDQUOT`), which is waited out rather than fatal
//!   ([`WaitForSpace`]): the write that found no room is retried until room appears, the
//!   writer (and so every later log operation) waits meanwhile, and the gate reports the log as
//!   *stalled*, so the node refuses new proposals at once with that error. Nothing is
//!   acknowledged while it waits; when space returns the write completes and the node carries
//!   on by itself. Retrying is safe because the failed `pwrite` put nothing in the page cache
//!   (an `fsync` failure, which may have dropped dirty pages, stays fatal).
//!
//! The database is opened with redb's integrity check on every open (every page's checksum,
//! not only after a crash), so a damaged file is refused at start-up with an error naming it,
//! never read as if it were good.
//!
//! What this module must never do: skip an entry it cannot decode (that would silently diverge
//! the state machine), or let an entry count towards a commit, be applied or be answered before
//! it is durable here. Vote, committed and last-purged live in the same database so a restart
//! sees one consistent picture.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Duration;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogState, RaftLogReader, StorageIOError, Vote};
use redb::backends::FileBackend;
use redb::{
    BackendError, Builder, Database, Durability, ReadableDatabase, ReadableTable, StorageBackend,
    TableDefinition,
};
use tokio::sync::{oneshot, watch};

use crate::trace::{self, Step, Tracer};
use crate::types::{decode, encode, Entry, LogId, StorageError, TypeConfig};

/// Log entries: index → msgpack-encoded `Entry`.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// Small metadata records: `vote`, `committed`, `last_purged`.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const KEY_VOTE: &str = "vote";
const KEY_COMMITTED: &str = "committed";
const KEY_PURGED: &str = "last_purged";

/// Upper bound on operations folded into one write transaction.
const MAX_BATCH_OPS: usize = 4096;

/// Whether a log's last handle is gone (its database closed, its writer stopped).
pub(crate) struct LogClosed(std::sync::Weak<Backend>);

impl LogClosed {
    pub(crate) fn is_closed(&self) -> bool {
        self.0.strong_count() == 0
    }
}

/// A log store handle. Clones share the same log (the clone is also the openraft log reader).
#[derive(Clone)]
pub(crate) struct LogStore {
    backend: Arc<Backend>,
    /// Mirrors of the persisted metadata; written only by the single openraft writer.
    meta: LogMeta,
    /// This node's Raft id once known ([`LogStore::set_node_id`]): enables the early
    /// acknowledgement of its own leader appends. Without it every append waits for its fsync.
    node_id: Option<u64>,
    /// Write-latency trace hook (`None`: off).
    trace: Tracer,
}

/// A read-only view of the log's metadata that does not keep the database open (the node
/// facade holds this, so a shut-down node releases `raft.redb`).
#[derive(Clone, Default)]
pub(crate) struct LogMeta {
    meta: Arc<Mutex<Meta>>,
    /// Durable (fsync'd) write transactions committed by the writer.
    syncs: Arc<AtomicU64>,
}

impl LogMeta {
    fn lock(&self) -> MutexGuard<'_, Meta> {
        // A poisoned lock only means another thread panicked mid-update of plain values.
        self.meta.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last committed log id this node knows of.
    pub(crate) fn committed(&self) -> Option<LogId> {
        self.lock().committed
    }

    /// The last log id (present or purged).
    pub(crate) fn last_log_id(&self) -> Option<LogId> {
        let m = self.lock();
        m.last_entry.or(m.last_purged)
    }

    /// Whether anything durable exists (a vote or any log): such a node must never re-bootstrap.
    pub(crate) fn has_state(&self) -> bool {
        let m = self.lock();
        m.vote.is_some() || m.last_entry.is_some() || m.last_purged.is_some()
    }

    /// How many durable write transactions (one fsync each) the log has committed.
    pub(crate) fn sync_count(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}

/// What is durable in the log: the last log index on disk, or the writer's failure; and
/// whether the writer is waiting for disk space (`stalled`, the error it is waiting out).
#[derive(Clone, Debug, Default)]
struct Durable {
    last: Option<u64>,
    failed: Option<String>,
    stalled: Option<String>,
}

/// Waits until log entries are durable on this node (see the module docs). Cheap to clone.
#[derive(Clone)]
pub(crate) struct DurableGate(watch::Receiver<Durable>);

impl DurableGate {
    /// Wait until every entry up to `index` is durable; `Err` if the log writer failed.
    pub(crate) async fn wait(&self, index: u64) -> Result<(), String> {
        let ready = |d: &Durable| d.failed.is_some() || d.last.is_some_and(|l| l >= index);
        let mut rx = self.0.clone();
        let d = rx
            .wait_for(ready)
            .await
            .map_err(|_| "raft log writer stopped".to_string())?;
        match &d.failed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// The error the log writer is waiting out (a full disk), if it is waiting.
    pub(crate) fn stalled(&self) -> Option<String> {
        self.0.borrow().stalled.clone()
    }

    /// Resolves with the error once the log writer waits for disk space (pending forever if
    /// its channel closes: a stopped writer is reported by [`DurableGate::wait`]).
    pub(crate) async fn until_stalled(&self) -> String {
        let mut rx = self.0.clone();
        let stalled = match rx.wait_for(|d| d.stalled.is_some()).await {
            Ok(d) => d.stalled.clone().unwrap_or_default(),
            Err(_) => String::new(),
        };
        if stalled.is_empty() {
            std::future::pending::<()>().await;
        }
        stalled
    }
}

#[cfg(test)]
impl DurableGate {
    /// A gate and the function that marks every entry up to an index durable.
    pub(crate) fn manual() -> (DurableGate, impl Fn(u64)) {
        let (tx, rx) = watch::channel(Durable::default());
        (DurableGate(rx), move |i| {
            tx.send_modify(|d| d.last = Some(i))
        })
    }
}

/// Drops applied entries from a durable log's in-memory tail (held by the state machine).
///
/// Only applied entries leave: they are committed, so no truncation can have replaced them,
/// and durable, since apply waits for the [`DurableGate`]; reads find them in the database.
#[derive(Clone)]
pub(crate) struct TailRelease(Arc<Mutex<BTreeMap<u64, Entry>>>);

impl TailRelease {
    /// Everything up to `index` has been applied.
    pub(crate) fn applied(&self, index: u64) {
        let mut tail = self.0.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(first) = tail.first_entry() {
            if *first.key() > index {
                break;
            }
            first.remove();
        }
    }
}

/// How long [`WaitForSpace`] waits before trying a write the disk had no room for again.
const SPACE_RETRY: Duration = Duration::from_millis(500);

/// redb's file backend, except that a write (or growth of the file) that finds the disk full
/// (`ENOSPC`, `EDQUOT`) is retried until it succeeds rather than failed: redb treats any I/O
/// error as fatal for the open database, and openraft any storage error as fatal for the node,
/// while a full disk is an operator's everyday problem that freeing space must fix without a
/// restart. While it waits, the log is reported *stalled* (see the module docs). It gives up
/// (returns the error) once the store is closing, so a shutdown never hangs on a full disk.
#[derive(Debug)]
struct WaitForSpace {
    file: FileBackend,
    path: PathBuf,
    /// Where the stall is reported (`None`: nobody to tell, e.g. `peers.json` recovery).
    report: Option<Arc<watch::Sender<Durable>>>,
    closing: Arc<AtomicBool>,
}

/// Whether an I/O error means the disk (or the user's quota) is full.
fn out_of_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

impl WaitForSpace {
    fn retry(&self, mut op: impl FnMut() -> io::Result<()>) -> io::Result<()> {
        let mut reported = false;
        loop {
            match op() {
                Err(e) if out_of_space(&e) && !self.closing.load(Ordering::Acquire) => {
                    if !reported {
                        reported = true;
                        let msg = format!(
                            "raft log write failed: {}: {e}; writes are refused until space is freed",
                            self.path.display()
                        );
                        tracing::error!("{msg}");
                        if let Some(r) = &self.report {
                            r.send_modify(|d| d.stalled = Some(msg));
                        }
                    }
                    std::thread::sleep(SPACE_RETRY);
                }
                r => return r,
            }
        }
    }
}

impl StorageBackend for WaitForSpace {
    fn len(&self) -> Result<u64, io::Error> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.retry(|| self.file.set_len(len))
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.retry(|| self.file.write(offset, data))
    }

    fn close(&self) -> Result<(), io::Error> {
        self.file.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}

/// Open (or create) the redb file at `path`, checking every page (see the module docs). An
/// error names the file and says what the operator can do.
fn open_database(
    path: &Path,
    report: Option<Arc<watch::Sender<Durable>>>,
    closing: Arc<AtomicBool>,
) -> Result<Database, StorageError> {
    let damaged = |e: &dyn std::fmt::Display| {
        let msg = format!(
            "cannot open the raft log {}: {e}. If the file is damaged, stop the server, move its \
             raft directory away and start it again to rejoin the cluster with a copy from the \
             leader, or restore a snapshot (see docs/outage-recovery.md)",
            path.display()
        );
        tracing::error!("{msg}");
        write_err(io::Error::other(msg))
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| damaged(&e))?;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| damaged(&e))?;
    let file = FileBackend::new(file).map_err(|e| damaged(&e))?;
    let backend = WaitForSpace {
        file,
        path: path.to_path_buf(),
        report,
        closing,
    };
    Builder::new()
        .set_check_integrity_on_open(true)
        .create_with_backend(backend)
        .map_err(|e| damaged(&e))
}

enum Backend {
    Mem(Mutex<BTreeMap<u64, Entry>>),
    Redb(Redb),
}

/// The durable backend: the database (for reads), the writer's queue and the tail.
struct Redb {
    db: Arc<Database>,
    queue: mpsc::Sender<Op>,
    /// Entries handed to the writer and not yet applied (a contiguous run of indexes; every
    /// index below the first is in the database). An entry leaves when the state machine has
    /// applied it ([`TailRelease`]), so openraft's read of what it applies next, the most
    /// frequent read of all, never opens a read transaction or decodes an entry; and since
    /// apply waits for durability, an entry is on disk before it leaves.
    tail: Arc<Mutex<BTreeMap<u64, Entry>>>,
    durable: watch::Receiver<Durable>,
    committed: PendingCommitted,
    /// Set when the store closes: a write waiting for disk space gives up.
    closing: Arc<AtomicBool>,
}

impl Drop for Redb {
    /// Flush what is queued and wait until the writer has released the database, so a node that
    /// has shut down can be reopened at once.
    fn drop(&mut self) {
        self.closing.store(true, Ordering::Release);
        let (tx, rx) = mpsc::channel();
        if self.queue.send(Op::Close(tx)).is_ok() {
            let _ = rx.recv();
        }
    }
}

impl Redb {
    fn tail(&self) -> MutexGuard<'_, BTreeMap<u64, Entry>> {
        self.tail.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn submit(&self, op: Op) -> Result<(), StorageError> {
        self.queue
            .send(op)
            .map_err(|_| write_err(io::Error::other("raft log writer stopped")))
    }
}

type Done<T> = oneshot::Sender<io::Result<T>>;

/// One queued log operation, executed by the writer in submission order.
enum Op {
    /// `flushed`: the callback to fire once durable (`None`: already acknowledged). The writer
    /// encodes the entries (off openraft's core, into one reused buffer).
    Append {
        entries: Vec<Entry>,
        flushed: Option<LogFlushed<TypeConfig>>,
    },
    /// Delete entries from `from` on; replies with the last remaining log id.
    Truncate {
        from: u64,
        done: Done<Option<LogId>>,
    },
    /// Record the purge point and delete entries up to it; replies with the last remaining id.
    Purge {
        upto: LogId,
        done: Done<Option<LogId>>,
    },
    /// Write a metadata record; durable (fsync'd) before `done`.
    Meta {
        key: &'static str,
        bytes: Vec<u8>,
        done: Done<()>,
    },
    /// The store is gone: finish what is queued, close the database, then reply.
    Close(mpsc::Sender<()>),
}

/// The committed index openraft last saved and the writer has not written yet (see the module
/// docs): `Some(committed)` while one waits.
type PendingCommitted = Arc<Mutex<Option<Option<LogId>>>>;

#[derive(Default, Clone)]
struct Meta {
    vote: Option<Vote<u64>>,
    committed: Option<LogId>,
    last_purged: Option<LogId>,
    /// Id of the last entry present, written or queued (None if the log is empty).
    last_entry: Option<LogId>,
}

fn read_err<E: std::error::Error + 'static>(e: E) -> StorageError {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

fn write_err<E: std::error::Error + 'static>(e: E) -> StorageError {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

pub(crate) fn decode_entry(index: u64, bytes: &[u8]) -> Result<Entry, StorageError> {
    decode::<Entry>(bytes).map_err(|e| {
        tracing::error!(index, error = %e, "undecodable raft log entry");
        StorageIOError::read_log_at_index(index, AnyError::new(&e)).into()
    })
}

fn decode_meta<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StorageError> {
    decode::<T>(bytes).map_err(|e| {
        tracing::error!(key, error = %e, "undecodable raft log metadata");
        read_err(e)
    })
}

/// The id of the last entry in a log table.
fn last_log_id(t: &impl ReadableTable<u64, &'static [u8]>) -> Result<Option<LogId>, StorageError> {
    let last = t.last().map_err(read_err)?;
    match last {
        Some((k, v)) => Ok(Some(decode_entry(k.value(), v.value())?.log_id)),
        None => Ok(None),
    }
}

/// Whether a range starting at `start` begins at or after `index`.
fn starts_at_or_after(start: Bound<u64>, index: u64) -> bool {
    match start {
        Bound::Included(s) => s >= index,
        Bound::Excluded(s) => s >= index.saturating_sub(1),
        Bound::Unbounded => false,
    }
}

/// The writer thread's state: everything it needs, nothing openraft holds.
struct Writer {
    db: Arc<Database>,
    durable: Arc<watch::Sender<Durable>>,
    syncs: Arc<AtomicU64>,
    committed: PendingCommitted,
    /// On-disk state after the last committed transaction.
    last_entry: Option<LogId>,
    last_purged: Option<LogId>,
    /// Reused for encoding entries.
    buf: Vec<u8>,
    trace: Tracer,
}

/// What a committed batch changed.
struct Written {
    /// Per op: the last remaining log id (truncate/purge), else `None`.
    lasts: Vec<Option<LogId>>,
    last_entry: Option<LogId>,
    last_purged: Option<LogId>,
    /// The pending committed index this transaction wrote, if it wrote it.
    committed: Option<Option<LogId>>,
}

impl Writer {
    fn run(mut self, queue: mpsc::Receiver<Op>) {
        let mut failed: Option<String> = None;
        let mut close = None;
        while close.is_none() {
            let Ok(first) = queue.recv() else { break };
            let mut batch = Vec::new();
            let mut next = Some(first);
            while let Some(op) = next.take() {
                match op {
                    Op::Close(done) => close = Some(done),
                    op => batch.push(op),
                }
                if close.is_none() && batch.len() < MAX_BATCH_OPS {
                    next = queue.try_recv().ok();
                }
            }
            if let Some(msg) = &failed {
                fail_all(batch, msg);
                continue;
            }
            // At close, a committed index still waiting gets a transaction of its own.
            let pending = self.lock_committed().is_some();
            if batch.is_empty() && !(close.is_some() && pending) {
                continue;
            }
            if self.trace.is_some() {
                let last = batch.iter().rev().find_map(|op| match op {
                    Op::Append { entries, .. } => entries.last().map(|e| e.log_id.index),
                    _ => None,
                });
                trace::record(&self.trace, Step::SyncStart, last.unwrap_or(0), 0);
            }
            match self.write(&batch) {
                Ok(w) => {
                    let last = w.last_entry.map_or(0, |l| l.index);
                    trace::record(&self.trace, Step::SyncEnd, last, 0);
                    self.finish(batch, w)
                }
                Err(e) => {
                    let msg = format!("raft log write failed: {e}");
                    tracing::error!("{msg}");
                    self.durable.send_modify(|d| d.failed = Some(msg.clone()));
                    fail_all(batch, &msg);
                    failed = Some(msg);
                }
            }
        }
        // Release the database before telling the store it is closed.
        drop(self);
        if let Some(done) = close {
            let _ = done.send(());
        }
    }

    fn lock_committed(&self) -> MutexGuard<'_, Option<Option<LogId>>> {
        self.committed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Write the whole batch in one transaction and commit it durably (one fsync), with the
    /// pending committed index once the entry it names is written.
    fn write(&mut self, batch: &[Op]) -> io::Result<Written> {
        let pending = *self.lock_committed();
        let mut last_entry = self.last_entry;
        let mut last_purged = self.last_purged;
        let mut lasts = Vec::with_capacity(batch.len());
        let mut txn = self.db.begin_write().map_err(io_err)?;
        txn.set_durability(Durability::Immediate).map_err(io_err)?;
        let mut committed = None;
        {
            let mut log = txn.open_table(LOG).map_err(io_err)?;
            let mut meta = txn.open_table(META).map_err(io_err)?;
            for op in batch {
                let mut last = None;
                match op {
                    Op::Append { entries, .. } => {
                        for e in entries {
                            self.buf.clear();
                            rmp_serde::encode::write_named(&mut self.buf, e).map_err(io_err)?;
                            log.insert(e.log_id.index, self.buf.as_slice())
                                .map_err(io_err)?;
                            last_entry = Some(e.log_id);
                        }
                    }
                    Op::Truncate { from, .. } => {
                        log.retain_in::<u64, _>(*from.., |_, _| false)
                            .map_err(io_err)?;
                        last_entry = last_log_id(&log).map_err(io_err)?;
                        last = last_entry;
                    }
                    Op::Purge { upto, .. } => {
                        let bytes = encode(&Some(*upto)).map_err(io_err)?;
                        meta.insert(KEY_PURGED, bytes.as_slice()).map_err(io_err)?;
                        log.retain_in::<u64, _>(..=upto.index, |_, _| false)
                            .map_err(io_err)?;
                        last_entry = last_log_id(&log).map_err(io_err)?;
                        last_purged = Some(*upto);
                        last = last_entry;
                    }
                    Op::Meta { key, bytes, .. } => {
                        meta.insert(*key, bytes.as_slice()).map_err(io_err)?;
                    }
                    Op::Close(_) => {}
                }
                lasts.push(last);
            }
            // The entry a committed index names was appended before openraft saved it, so it
            // is written by now unless a batch limit left it for the next transaction.
            if let Some(c) = pending {
                let on_disk = |l: Option<LogId>| match (c, l) {
                    (None, _) => true,
                    (Some(c), Some(l)) => l.index >= c.index,
                    (Some(_), None) => false,
                };
                if on_disk(last_entry) || on_disk(last_purged) {
                    let bytes = encode(&c).map_err(io_err)?;
                    meta.insert(KEY_COMMITTED, bytes.as_slice())
                        .map_err(io_err)?;
                    committed = Some(c);
                }
            }
        }
        txn.commit().map_err(io_err)?;
        Ok(Written {
            lasts,
            last_entry,
            last_purged,
            committed,
        })
    }

    /// After a commit: publish durability, complete ops. (Written entries stay in the tail
    /// until applied: see [`TailRelease`].)
    fn finish(&mut self, batch: Vec<Op>, w: Written) {
        self.last_entry = w.last_entry;
        self.last_purged = w.last_purged;
        if let Some(c) = w.committed {
            let mut pending = self.lock_committed();
            // Unless openraft saved a newer one meanwhile.
            if *pending == Some(c) {
                *pending = None;
            }
        }
        if self.durable.borrow().stalled.is_some() {
            tracing::info!("disk space available again: raft log writes resumed");
            self.durable.send_modify(|d| d.stalled = None);
        }
        self.syncs.fetch_add(1, Ordering::Relaxed);
        let last = w.last_entry.or(w.last_purged).map(|l| l.index);
        self.durable.send_modify(|d| d.last = last);
        for (op, last) in batch.into_iter().zip(w.lasts) {
            match op {
                Op::Append { flushed, .. } => {
                    if let Some(cb) = flushed {
                        cb.log_io_completed(Ok(()));
                    }
                }
                Op::Truncate { done, .. } | Op::Purge { done, .. } => {
                    let _ = done.send(Ok(last));
                }
                Op::Meta { done, .. } => {
                    let _ = done.send(Ok(()));
                }
                Op::Close(_) => {}
            }
        }
    }
}

/// Report a failed (or refused) batch to everyone waiting on it.
fn fail_all(batch: Vec<Op>, msg: &str) {
    for op in batch {
        match op {
            Op::Append { flushed, .. } => {
                if let Some(cb) = flushed {
                    cb.log_io_completed(Err(io::Error::other(msg.to_string())));
                }
            }
            Op::Truncate { done, .. } | Op::Purge { done, .. } => {
                let _ = done.send(Err(io::Error::other(msg.to_string())));
            }
            Op::Meta { done, .. } => {
                let _ = done.send(Err(io::Error::other(msg.to_string())));
            }
            Op::Close(_) => {}
        }
    }
}

/// Await a writer reply.
async fn reply<T>(rx: oneshot::Receiver<io::Result<T>>) -> io::Result<T> {
    rx.await
        .map_err(|_| io::Error::other("raft log writer stopped"))?
}

impl LogStore {
    /// An in-memory log (for `-dev` and tests): same semantics, nothing survives the process.
    pub(crate) fn memory() -> Self {
        Self {
            backend: Arc::new(Backend::Mem(Mutex::new(BTreeMap::new()))),
            meta: LogMeta::default(),
            node_id: None,
            trace: None,
        }
    }

    /// Open (or create) the durable log at `path` (e.g. `<data-dir>/raft/raft.redb`) and start
    /// its writer thread; `trace` records the writer's steps (see `crate::trace`).
    pub(crate) fn open(path: &Path, trace: Tracer) -> Result<Self, StorageError> {
        let (durable_tx, durable_rx) = watch::channel(Durable::default());
        let durable_tx = Arc::new(durable_tx);
        let closing = Arc::new(AtomicBool::new(false));
        let db = open_database(path, Some(durable_tx.clone()), closing.clone())?;

        // Make sure both tables exist so read transactions never see "table does not exist".
        let txn = db.begin_write().map_err(write_err)?;
        txn.open_table(LOG).map_err(write_err)?;
        txn.open_table(META).map_err(write_err)?;
        txn.commit().map_err(write_err)?;

        let mut meta = Meta::default();
        {
            let txn = db.begin_read().map_err(read_err)?;
            let m = txn.open_table(META).map_err(read_err)?;
            if let Some(v) = m.get(KEY_VOTE).map_err(read_err)? {
                meta.vote = Some(decode_meta(KEY_VOTE, v.value())?);
            }
            if let Some(v) = m.get(KEY_COMMITTED).map_err(read_err)? {
                meta.committed = decode_meta(KEY_COMMITTED, v.value())?;
            }
            if let Some(v) = m.get(KEY_PURGED).map_err(read_err)? {
                meta.last_purged = decode_meta(KEY_PURGED, v.value())?;
            }
            let log = txn.open_table(LOG).map_err(read_err)?;
            meta.last_entry = last_log_id(&log)?;
        }

        let db = Arc::new(db);
        let tail = Arc::new(Mutex::new(BTreeMap::new()));
        durable_tx.send_modify(|d| d.last = meta.last_entry.or(meta.last_purged).map(|l| l.index));
        let log_meta = LogMeta {
            meta: Arc::new(Mutex::new(meta.clone())),
            syncs: Arc::default(),
        };
        let committed = PendingCommitted::default();
        let writer = Writer {
            db: db.clone(),
            durable: durable_tx,
            syncs: log_meta.syncs.clone(),
            committed: committed.clone(),
            buf: Vec::new(),
            last_entry: meta.last_entry,
            last_purged: meta.last_purged,
            trace: trace.clone(),
        };
        let (queue, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("raft-log-writer".to_string())
            .spawn(move || writer.run(rx))
            .map_err(write_err)?;

        Ok(Self {
            backend: Arc::new(Backend::Redb(Redb {
                db,
                queue,
                tail,
                durable: durable_rx,
                committed,
                closing,
            })),
            meta: log_meta,
            node_id: None,
            trace,
        })
    }

    /// Tell the store which node it belongs to (enables early acks of own leader appends).
    ///
    /// Call before Raft starts: a vote for this node that was committed (it led that term when
    /// it stopped) is handed to openraft as not committed. openraft would otherwise restore
    /// the node as leader of its old term at once, with no election and no new entry of its
    /// own: its commit index is then only the last one it happened to write (it is written
    /// lazily), so linearizable reads answered from it could miss writes acknowledged before
    /// the restart. Uncommitted, the vote still binds the node to that term's promise; the
    /// node starts as a follower and leads again only by winning a newer term, whose first
    /// entry commits everything before it (Raft's rule; hashicorp/raft always starts as a
    /// follower). On disk the vote stays as it was until openraft saves the next one.
    pub(crate) fn set_node_id(&mut self, id: u64) {
        self.node_id = Some(id);
        let mut m = self.meta();
        if let Some(v) = m.vote {
            if v.is_committed() && v.leader_id().voted_for() == Some(id) {
                tracing::info!(
                    term = v.leader_id().term,
                    "led this term before the restart: starting as a follower"
                );
                m.vote = Some(Vote::new(v.leader_id().term, id));
            }
        }
    }

    /// What lets the state machine drop applied entries from the durable log's in-memory tail
    /// (`None` in memory: there is no tail).
    pub(crate) fn tail_release(&self) -> Option<TailRelease> {
        match &*self.backend {
            Backend::Mem(_) => None,
            Backend::Redb(r) => Some(TailRelease(r.tail.clone())),
        }
    }

    /// The durability gate of a durable log (`None` in memory: everything is "durable" at once).
    pub(crate) fn durable_gate(&self) -> Option<DurableGate> {
        match &*self.backend {
            Backend::Mem(_) => None,
            Backend::Redb(r) => Some(DurableGate(r.durable.clone())),
        }
    }

    fn meta(&self) -> MutexGuard<'_, Meta> {
        self.meta.lock()
    }

    /// A metadata view that does not hold the database open.
    pub(crate) fn meta_handle(&self) -> LogMeta {
        self.meta.clone()
    }

    /// Tells when every handle of this log is gone, and so its database closed.
    pub(crate) fn closed_handle(&self) -> LogClosed {
        LogClosed(Arc::downgrade(&self.backend))
    }

    /// Whether `entries` are this node's own appends as the leader of its current term: the
    /// committed vote names this node and every entry carries that leader id.
    fn is_own_leader_append(&self, entries: &[Entry]) -> bool {
        let Some(me) = self.node_id else {
            return false;
        };
        let Some(vote) = self.meta().vote else {
            return false;
        };
        vote.is_committed()
            && vote.leader_id().voted_for() == Some(me)
            && entries
                .iter()
                .all(|e| e.log_id.leader_id == *vote.leader_id())
    }

    /// Write one metadata record through the writer queue; returns once durable.
    async fn put_meta(&self, key: &'static str, bytes: Vec<u8>) -> io::Result<()> {
        let Backend::Redb(r) = &*self.backend else {
            return Ok(());
        };
        let (tx, rx) = oneshot::channel();
        r.queue
            .send(Op::Meta {
                key,
                bytes,
                done: tx,
            })
            .map_err(|_| io::Error::other("raft log writer stopped"))?;
        reply(rx).await
    }

    fn read_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<Vec<Entry>, StorageError> {
        match &*self.backend {
            Backend::Mem(m) => {
                let m = m.lock().unwrap_or_else(|p| p.into_inner());
                Ok(m.range((start, end)).map(|(_, e)| e.clone()).collect())
            }
            Backend::Redb(r) => {
                // Tail first: an entry leaves the tail only after it is durable, so anything
                // not seen here is visible to the read transaction opened afterwards.
                let tail: Vec<Entry> = r
                    .tail()
                    .range((start, end))
                    .map(|(_, e)| e.clone())
                    .collect();
                let mut out = Vec::new();
                // The tail is contiguous: disk supplies only what comes before it.
                let disk_end = match tail.first() {
                    Some(e) if starts_at_or_after(start, e.log_id.index) => None,
                    Some(e) => Some(Bound::Excluded(e.log_id.index)),
                    None => Some(end),
                };
                if let Some(disk_end) = disk_end {
                    let txn = r.db.begin_read().map_err(read_err)?;
                    let t = txn.open_table(LOG).map_err(read_err)?;
                    for item in t.range::<u64>((start, disk_end)).map_err(read_err)? {
                        let (k, v) = item.map_err(read_err)?;
                        out.push(decode_entry(k.value(), v.value())?);
                    }
                }
                out.extend(tail);
                Ok(out)
            }
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.read_range(range.start_bound().cloned(), range.end_bound().cloned())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let m = self.meta();
        Ok(LogState {
            last_purged_log_id: m.last_purged,
            last_log_id: m.last_entry.or(m.last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        let bytes = encode(vote).map_err(|e| StorageIOError::write_vote(AnyError::new(&e)))?;
        // Queued behind every earlier append: durable once this returns, and so are they.
        self.put_meta(KEY_VOTE, bytes)
            .await
            .map_err(|e| StorageIOError::write_vote(AnyError::new(&e)))?;
        self.meta().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        Ok(self.meta().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        trace::record(
            &self.trace,
            Step::Commit,
            committed.map_or(0, |c| c.index),
            0,
        );
        // Not written on its own, nor does it wake the writer: its next transaction takes it
        // along once the entry it names is written (see the module docs). Losing it only means
        // replaying less.
        if let Backend::Redb(r) = &*self.backend {
            *r.committed.lock().unwrap_or_else(|p| p.into_inner()) = Some(committed);
        }
        self.meta().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.meta().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        match &*self.backend {
            Backend::Mem(m) => {
                let mut last = None;
                {
                    let mut m = m.lock().unwrap_or_else(|p| p.into_inner());
                    for e in entries {
                        last = Some(e.log_id);
                        m.insert(e.log_id.index, e);
                    }
                }
                if let Some(last) = last {
                    self.meta().last_entry = Some(last);
                }
                callback.log_io_completed(Ok(()));
            }
            Backend::Redb(r) => {
                let entries: Vec<Entry> = entries.into_iter().collect();
                let early = !entries.is_empty() && self.is_own_leader_append(&entries);
                let last = entries.last().map(|e| e.log_id);
                if let (Some(t), Some(last)) = (&self.trace, last) {
                    let step = if early {
                        Step::LeaderAppend
                    } else {
                        Step::FollowerAppend
                    };
                    t.record(step, last.index, 0);
                }
                {
                    // Clones share the payload (an `Arc`): the writer encodes from them.
                    let mut tail = r.tail();
                    for e in &entries {
                        tail.insert(e.log_id.index, e.clone());
                    }
                }
                if let Some(last) = last {
                    self.meta().last_entry = Some(last);
                }
                if early {
                    r.submit(Op::Append {
                        entries,
                        flushed: None,
                    })?;
                    callback.log_io_completed(Ok(()));
                } else {
                    r.submit(Op::Append {
                        entries,
                        flushed: Some(callback),
                    })?;
                }
            }
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(index = log_id.index, "truncate raft log");
        let last = match &*self.backend {
            Backend::Mem(m) => {
                let mut m = m.lock().unwrap_or_else(|p| p.into_inner());
                m.split_off(&log_id.index);
                m.last_key_value().map(|(_, e)| e.log_id)
            }
            Backend::Redb(r) => {
                r.tail().split_off(&log_id.index);
                let (tx, rx) = oneshot::channel();
                r.submit(Op::Truncate {
                    from: log_id.index,
                    done: tx,
                })?;
                reply(rx).await.map_err(write_err)?
            }
        };
        self.meta().last_entry = last;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(index = log_id.index, "purge raft log");
        // The purge point and the deletion commit in one transaction.
        let last = match &*self.backend {
            Backend::Mem(m) => {
                let mut m = m.lock().unwrap_or_else(|p| p.into_inner());
                *m = m.split_off(&(log_id.index + 1));
                m.last_key_value().map(|(_, e)| e.log_id)
            }
            Backend::Redb(r) => {
                {
                    let mut tail = r.tail();
                    *tail = tail.split_off(&(log_id.index + 1));
                }
                let (tx, rx) = oneshot::channel();
                r.submit(Op::Purge {
                    upto: log_id,
                    done: tx,
                })?;
                reply(rx).await.map_err(write_err)?
            }
        };
        let mut m = self.meta();
        m.last_purged = Some(log_id);
        m.last_entry = last;
        Ok(())
    }
}

/// Outage recovery (Consul's `peers.json`): replace the membership of the durable log at `path`
/// before Raft starts, on a node that cannot reach a quorum of its old configuration.
///
/// hashicorp/raft's `RecoverCluster` rewrites the configuration through a snapshot; openraft
/// takes its membership from the latest membership entry in the log, so the same effect is
/// had by appending one: a membership entry of `voters` (+ `learners`) after the last log entry,
/// stamped with a leader id of a term above every term this node has seen (its own, so the log
/// stays monotonic), and a vote for itself one term later, uncommitted. On start the node is a
/// follower of the new membership; when it is a voter it campaigns in a newer term still, and
/// its first leader entry commits the new membership together with every entry before it —
/// like `RecoverCluster`, uncommitted entries become committed. Returns the entry's log id.
///
/// Safe only while Raft is not running on this log, and only when the servers left out have
/// failed for good (or come back with an empty data directory).
pub(crate) fn recover_membership(
    path: &Path,
    node_id: u64,
    voters: BTreeMap<u64, String>,
    learners: BTreeMap<u64, String>,
) -> Result<LogId, StorageError> {
    use openraft::{BasicNode, CommittedLeaderId, EntryPayload, Membership};
    if voters.is_empty() {
        return Err(write_err(io::Error::other(
            "need at least one voter in configuration",
        )));
    }
    let db = open_database(path, None, Arc::default())?;
    let mut txn = db.begin_write().map_err(write_err)?;
    txn.set_durability(Durability::Immediate)
        .map_err(write_err)?;
    let id = {
        let mut log = txn.open_table(LOG).map_err(write_err)?;
        let mut meta = txn.open_table(META).map_err(write_err)?;
        let vote: Option<Vote<u64>> = match meta.get(KEY_VOTE).map_err(read_err)? {
            Some(v) => Some(decode_meta(KEY_VOTE, v.value())?),
            None => None,
        };
        let purged: Option<LogId> = match meta.get(KEY_PURGED).map_err(read_err)? {
            Some(v) => decode_meta(KEY_PURGED, v.value())?,
            None => None,
        };
        let last = last_log_id(&log)?.or(purged);
        let term = vote
            .map(|v| v.leader_id().term)
            .max(last.map(|l| l.leader_id.term))
            .unwrap_or(0)
            + 1;
        let id = LogId::new(
            CommittedLeaderId::new(term, node_id),
            last.map(|l| l.index + 1).unwrap_or(1),
        );
        let nodes: BTreeMap<u64, BasicNode> = voters
            .iter()
            .chain(learners.iter())
            .map(|(id, addr)| (*id, BasicNode { addr: addr.clone() }))
            .collect();
        let membership = Membership::new(vec![voters.keys().copied().collect()], nodes);
        let entry = Entry {
            log_id: id,
            payload: EntryPayload::Membership(membership),
        };
        let bytes = encode(&entry).map_err(write_err)?;
        log.insert(id.index, bytes.as_slice()).map_err(write_err)?;
        let vote = Vote::new(term + 1, node_id);
        let bytes = encode(&vote).map_err(write_err)?;
        meta.insert(KEY_VOTE, bytes.as_slice()).map_err(write_err)?;
        id
    };
    txn.commit().map_err(write_err)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::entry::RaftEntry;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn undecodable_entry_is_an_error_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raft.redb");
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(LOG)
                .unwrap()
                .insert(1u64, &b"\xc1garbage"[..])
                .unwrap();
            txn.commit().unwrap();
        }
        // The last entry is decoded at open: a corrupt one stops the node.
        assert!(LogStore::open(&path, None).is_err());

        // A corrupt entry in the middle fails the read instead of being skipped.
        let good = Entry::new_blank(openraft::LogId::new(
            openraft::CommittedLeaderId::new(1, 0),
            2,
        ));
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(LOG)
                .unwrap()
                .insert(2u64, encode(&good).unwrap().as_slice())
                .unwrap();
            txn.commit().unwrap();
        }
        let mut store = LogStore::open(&path, None).unwrap();
        assert!(store.try_get_log_entries(2..3).await.is_ok());
        assert!(store.try_get_log_entries(1..3).await.is_err());
    }

    fn blank(term: u64, leader: u64, index: u64) -> Entry {
        Entry::new_blank(openraft::LogId::new(
            openraft::CommittedLeaderId::new(term, leader),
            index,
        ))
    }

    async fn indexes(store: &mut LogStore) -> Vec<u64> {
        let all = store.try_get_log_entries(0..u64::MAX).await.unwrap();
        all.iter().map(|e| e.log_id.index).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_operations_are_visible_ordered_and_durable() {
        use openraft::storage::RaftLogStorageExt;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raft.redb");
        {
            let mut store = LogStore::open(&path, None).unwrap();
            store.set_node_id(1);
            store.save_vote(&Vote::new_committed(1, 1)).await.unwrap();
            let gate = store.durable_gate().unwrap();
            let syncs = store.meta_handle().sync_count();

            // Own leader appends: acknowledged at once, readable from the tail, durable behind
            // the gate.
            for i in 1..=5 {
                store.blocking_append([blank(1, 1, i)]).await.unwrap();
            }
            assert_eq!(indexes(&mut store).await, vec![1, 2, 3, 4, 5]);
            let state = store.get_log_state().await.unwrap();
            assert_eq!(state.last_log_id.map(|l| l.index), Some(5));
            gate.wait(5).await.unwrap();
            assert!(store.meta_handle().sync_count() > syncs);

            // Truncate and purge are ordered behind the queued appends.
            store.blocking_append([blank(1, 1, 6)]).await.unwrap();
            store.truncate(blank(1, 1, 4).log_id).await.unwrap();
            assert_eq!(indexes(&mut store).await, vec![1, 2, 3]);
            store.purge(blank(1, 1, 1).log_id).await.unwrap();
            assert_eq!(indexes(&mut store).await, vec![2, 3]);

            // Another leader's entries (a follower append) are acknowledged only once durable.
            store.save_vote(&Vote::new_committed(2, 2)).await.unwrap();
            store.blocking_append([blank(2, 2, 4)]).await.unwrap();
            assert_eq!(indexes(&mut store).await, vec![2, 3, 4]);
        }
        // Dropping the store flushed and closed the database: it reopens with everything.
        let mut store = LogStore::open(&path, None).unwrap();
        assert_eq!(indexes(&mut store).await, vec![2, 3, 4]);
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(1));
        assert_eq!(
            store.read_vote().await.unwrap(),
            Some(Vote::new_committed(2, 2))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn committed_is_written_with_its_entry_and_never_beyond_the_log() {
        use openraft::storage::RaftLogStorageExt;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raft.redb");
        let id = |i| blank(1, 1, i).log_id;
        {
            let mut store = LogStore::open(&path, None).unwrap();
            store.set_node_id(1);
            store.save_vote(&Vote::new_committed(1, 1)).await.unwrap();
            let gate = store.durable_gate().unwrap();
            for i in 1..=3 {
                store.blocking_append([blank(1, 1, i)]).await.unwrap();
            }
            gate.wait(3).await.unwrap();
            let syncs = store.meta_handle().sync_count();
            // Saving it costs no transaction: it waits for the next one.
            store.save_committed(Some(id(2))).await.unwrap();
            assert_eq!(store.read_committed().await.unwrap(), Some(id(2)));
            assert_eq!(store.meta_handle().sync_count(), syncs);
            store.blocking_append([blank(1, 1, 4)]).await.unwrap();
            gate.wait(4).await.unwrap();
        }
        {
            let mut store = LogStore::open(&path, None).unwrap();
            assert_eq!(store.read_committed().await.unwrap(), Some(id(2)));
            // One naming an entry the log does not hold is never written, not even at close.
            store.save_committed(Some(id(9))).await.unwrap();
        }
        {
            let mut store = LogStore::open(&path, None).unwrap();
            assert_eq!(store.read_committed().await.unwrap(), Some(id(2)));
            // The latest one still waiting is written when the store closes.
            store.save_committed(Some(id(4))).await.unwrap();
        }
        let mut store = LogStore::open(&path, None).unwrap();
        assert_eq!(store.read_committed().await.unwrap(), Some(id(4)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entries_leave_the_tail_once_applied_and_reads_find_them_on_disk() {
        use openraft::storage::RaftLogStorageExt;

        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(&dir.path().join("raft.redb"), None).unwrap();
        store.set_node_id(1);
        store.save_vote(&Vote::new_committed(1, 1)).await.unwrap();
        let gate = store.durable_gate().unwrap();
        let release = store.tail_release().unwrap();
        let backend = store.backend.clone();
        let Backend::Redb(r) = &*backend else {
            unreachable!()
        };
        let tail = |r: &Redb| r.tail().keys().copied().collect::<Vec<_>>();
        for i in 1..=5 {
            store.blocking_append([blank(1, 1, i)]).await.unwrap();
        }
        gate.wait(5).await.unwrap();
        // Durable, but kept for the state machine's read of what it applies next.
        assert_eq!(tail(r), vec![1, 2, 3, 4, 5]);
        release.applied(3);
        assert_eq!(tail(r), vec![4, 5]);
        assert_eq!(indexes(&mut store).await, vec![1, 2, 3, 4, 5]);
        let mid = store.try_get_log_entries(2..5).await.unwrap();
        assert_eq!(
            mid.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        release.applied(5);
        assert!(tail(r).is_empty());
        assert_eq!(indexes(&mut store).await, vec![1, 2, 3, 4, 5]);
    }
}
