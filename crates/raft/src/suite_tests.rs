//! openraft's storage conformance suite against both log-store variants.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;

use proconsul_state::{ApplyResult, Command, Proposal};

use crate::log_store::LogStore;
use crate::state_machine::{SmStore, StateMachine};
use crate::types::TypeConfig;

/// A toy key/value state machine over KV set entries.
#[derive(Default)]
struct ToySm {
    map: Mutex<BTreeMap<String, String>>,
}

impl StateMachine for ToySm {
    fn apply(&self, _index: u64, entry: &Proposal) -> ApplyResult {
        if let Command::Kv(op) = &entry.command {
            let v = String::from_utf8_lossy(op.value.as_deref().unwrap_or_default()).into_owned();
            self.map.lock().unwrap().insert(op.key.clone(), v);
        }
        ApplyResult::Ok
    }
    fn note_index(&self, _index: u64) {}
    fn snapshot(&self) -> Vec<u8> {
        rmp_serde::to_vec(&*self.map.lock().unwrap()).unwrap()
    }
    fn restore(&self, data: &[u8]) -> Result<(), String> {
        *self.map.lock().unwrap() = rmp_serde::from_slice(data).map_err(|e| e.to_string())?;
        Ok(())
    }
}

struct MemBuilder;

impl StoreBuilder<TypeConfig, LogStore, SmStore, ()> for MemBuilder {
    async fn build(&self) -> Result<((), LogStore, SmStore), StorageError<u64>> {
        Ok((
            (),
            LogStore::memory(),
            SmStore::open(Arc::new(ToySm::default()), None)?,
        ))
    }
}

struct RedbBuilder;

impl StoreBuilder<TypeConfig, LogStore, SmStore, tempfile::TempDir> for RedbBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, SmStore), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = LogStore::open(&dir.path().join("raft.redb"), None)?;
        let sm = SmStore::open(
            Arc::new(ToySm::default()),
            Some(dir.path().join("snapshots")),
        )?;
        Ok((dir, log, sm))
    }
}

#[test]
fn suite_memory_store() -> Result<(), StorageError<u64>> {
    Suite::test_all(MemBuilder)
}

#[test]
fn suite_redb_store() -> Result<(), StorageError<u64>> {
    Suite::test_all(RedbBuilder)
}
