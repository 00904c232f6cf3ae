//! The Raft log: openraft's storage-v2 `RaftLogStorage` on redb (durable) or a `BTreeMap` (`-dev`).
//!
//! Why redb: pure Rust, builds in seconds, and a write transaction with `Durability::Immediate`
//! is exactly one fsync. Every `append` call openraft makes (it batches concurrent proposals)
//! becomes one write transaction, and only after it commits is the flush callback fired — that is
//! the group commit the performance targets rely on.
//!
//! What this module must never do: skip an entry it cannot decode (that would silently diverge
//! the state machine), or acknowledge an append before it is durable. Vote, committed and
//! last-purged live in the same database so a restart sees one consistent picture.
//!
//! The disk work runs on `spawn_blocking` and is awaited before returning, so openraft's ordering
//! of log operations is preserved while the fsync does not stall a runtime worker.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogState, RaftLogReader, StorageIOError, Vote};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::types::{decode, encode, Entry, LogId, StorageError, TypeConfig};

/// Log entries: index → msgpack-encoded `Entry`.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// Small metadata records: `vote`, `committed`, `last_purged`.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const KEY_VOTE: &str = "vote";
const KEY_COMMITTED: &str = "committed";
const KEY_PURGED: &str = "last_purged";

/// A log store handle. Clones share the same log (the clone is also the openraft log reader).
#[derive(Clone)]
pub(crate) struct LogStore {
    backend: Arc<Backend>,
    /// Mirrors of the persisted metadata; written only by the single openraft writer.
    meta: LogMeta,
}

/// A read-only view of the log's metadata that does not keep the database open (the node
/// facade holds this, so a shut-down node releases `raft.redb`).
#[derive(Clone, Default)]
pub(crate) struct LogMeta(Arc<Mutex<Meta>>);

impl LogMeta {
    fn lock(&self) -> MutexGuard<'_, Meta> {
        // A poisoned lock only means another thread panicked mid-update of plain values.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
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
}

enum Backend {
    Mem(Mutex<BTreeMap<u64, Entry>>),
    Redb(Arc<Database>),
}

#[derive(Default, Clone)]
struct Meta {
    vote: Option<Vote<u64>>,
    committed: Option<LogId>,
    last_purged: Option<LogId>,
    /// Id of the last entry physically present (None if the log is empty).
    last_entry: Option<LogId>,
}

fn read_err<E: std::error::Error + 'static>(e: E) -> StorageError {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

fn write_err<E: std::error::Error + 'static>(e: E) -> StorageError {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

fn decode_entry(index: u64, bytes: &[u8]) -> Result<Entry, StorageError> {
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

/// Run blocking disk work off the async workers and wait for it.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f).await.map_err(write_err)?
}

impl LogStore {
    /// An in-memory log (for `-dev` and tests): same semantics, nothing survives the process.
    pub(crate) fn memory() -> Self {
        Self {
            backend: Arc::new(Backend::Mem(Mutex::new(BTreeMap::new()))),
            meta: LogMeta::default(),
        }
    }

    /// Open (or create) the durable log at `path` (e.g. `<data-dir>/raft/raft.redb`).
    pub(crate) fn open(path: &Path) -> Result<Self, StorageError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write_err)?;
        }
        let db = Database::create(path).map_err(write_err)?;

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

        Ok(Self {
            backend: Arc::new(Backend::Redb(Arc::new(db))),
            meta: LogMeta(Arc::new(Mutex::new(meta))),
        })
    }

    fn meta(&self) -> MutexGuard<'_, Meta> {
        self.meta.lock()
    }

    /// A metadata view that does not hold the database open.
    pub(crate) fn meta_handle(&self) -> LogMeta {
        self.meta.clone()
    }

    /// Write one metadata record.
    async fn put_meta(
        &self,
        key: &'static str,
        bytes: Vec<u8>,
        durability: Durability,
    ) -> Result<(), StorageError> {
        if let Backend::Redb(db) = &*self.backend {
            let db = db.clone();
            blocking(move || {
                let mut txn = db.begin_write().map_err(write_err)?;
                txn.set_durability(durability).map_err(write_err)?;
                txn.open_table(META)
                    .map_err(write_err)?
                    .insert(key, bytes.as_slice())
                    .map_err(write_err)?;
                txn.commit().map_err(write_err)
            })
            .await?;
        }
        Ok(())
    }

    fn read_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<Vec<Entry>, StorageError> {
        match &*self.backend {
            Backend::Mem(m) => {
                let m = m.lock().unwrap_or_else(|p| p.into_inner());
                Ok(m.range((start, end)).map(|(_, e)| e.clone()).collect())
            }
            Backend::Redb(db) => {
                let txn = db.begin_read().map_err(read_err)?;
                let t = txn.open_table(LOG).map_err(read_err)?;
                let mut out = Vec::new();
                for r in t.range::<u64>((start, end)).map_err(read_err)? {
                    let (k, v) = r.map_err(read_err)?;
                    out.push(decode_entry(k.value(), v.value())?);
                }
                Ok(out)
            }
        }
    }

    /// Remove every entry in `range` and return the id of the last remaining entry.
    async fn remove_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<Option<LogId>, StorageError> {
        match &*self.backend {
            Backend::Mem(m) => {
                let mut m = m.lock().unwrap_or_else(|p| p.into_inner());
                let doomed: Vec<u64> = m.range((start, end)).map(|(k, _)| *k).collect();
                for k in doomed {
                    m.remove(&k);
                }
                Ok(m.last_key_value().map(|(_, e)| e.log_id))
            }
            Backend::Redb(db) => {
                let db = db.clone();
                blocking(move || {
                    let mut txn = db.begin_write().map_err(write_err)?;
                    txn.set_durability(Durability::Immediate)
                        .map_err(write_err)?;
                    let last = {
                        let mut t = txn.open_table(LOG).map_err(write_err)?;
                        t.retain_in::<u64, _>((start, end), |_, _| false)
                            .map_err(write_err)?;
                        last_log_id(&t)?
                    };
                    txn.commit().map_err(write_err)?;
                    Ok(last)
                })
                .await
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
        self.put_meta(KEY_VOTE, bytes, Durability::Immediate)
            .await?;
        self.meta().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        Ok(self.meta().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not fsync'd on its own: losing it only means replaying less on restart; the next
        // durable append persists it too.
        let bytes = encode(&committed).map_err(write_err)?;
        self.put_meta(KEY_COMMITTED, bytes, Durability::None)
            .await?;
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
        let mut last = None;
        match &*self.backend {
            Backend::Mem(m) => {
                let mut m = m.lock().unwrap_or_else(|p| p.into_inner());
                for e in entries {
                    last = Some(e.log_id);
                    m.insert(e.log_id.index, e);
                }
            }
            Backend::Redb(db) => {
                let mut encoded = Vec::new();
                for e in entries {
                    let bytes = encode(&e).map_err(|err| {
                        StorageIOError::write_log_entry(e.log_id, AnyError::new(&err))
                    })?;
                    last = Some(e.log_id);
                    encoded.push((e.log_id.index, bytes));
                }
                if !encoded.is_empty() {
                    let db = db.clone();
                    blocking(move || {
                        let mut txn = db.begin_write().map_err(write_err)?;
                        txn.set_durability(Durability::Immediate)
                            .map_err(write_err)?;
                        {
                            let mut t = txn.open_table(LOG).map_err(write_err)?;
                            for (index, bytes) in &encoded {
                                t.insert(*index, bytes.as_slice()).map_err(write_err)?;
                            }
                        }
                        txn.commit().map_err(write_err)
                    })
                    .await?;
                }
            }
        }
        if let Some(last) = last {
            self.meta().last_entry = Some(last);
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(index = log_id.index, "truncate raft log");
        let last = self
            .remove_range(Bound::Included(log_id.index), Bound::Unbounded)
            .await?;
        self.meta().last_entry = last;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(index = log_id.index, "purge raft log");
        // Record the purge point first: a crash between the two steps leaves extra entries
        // (harmless, purged again later), never a log whose start is unknown.
        let bytes = encode(&Some(log_id)).map_err(write_err)?;
        self.put_meta(KEY_PURGED, bytes, Durability::Immediate)
            .await?;
        self.meta().last_purged = Some(log_id);
        let last = self
            .remove_range(Bound::Unbounded, Bound::Included(log_id.index))
            .await?;
        self.meta().last_entry = last;
        Ok(())
    }
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
        assert!(LogStore::open(&path).is_err());

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
        let mut store = LogStore::open(&path).unwrap();
        assert!(store.try_get_log_entries(2..3).await.is_ok());
        assert!(store.try_get_log_entries(1..3).await.is_err());
    }
}
