//! The Raft state machine is the store itself: openraft hands each committed entry, typed, to
//! [`Store::apply`] and the typed result goes back to the proposer. Nothing is encoded here.

use std::borrow::Cow;
use std::sync::Arc;

use proconsul_raft::{FrozenState, StateMachine};
use proconsul_state::{ApplyResult, Frozen, Proposal, Store};

pub(crate) struct StoreMachine {
    store: Store,
}

impl StoreMachine {
    pub(crate) fn new(store: Store) -> Self {
        StoreMachine { store }
    }
}

impl StateMachine for StoreMachine {
    fn apply(&self, index: u64, entry: &Proposal) -> ApplyResult {
        self.store.apply(index, entry)
    }

    fn note_index(&self, index: u64) {
        self.store.note_index(index);
    }

    fn snapshot(&self) -> Vec<u8> {
        self.store.dump()
    }

    fn freeze(&self) -> Arc<dyn FrozenState> {
        Arc::new(FrozenStore(self.store.freeze()))
    }

    fn restore(&self, data: &[u8]) -> Result<(), String> {
        self.store.restore(data).map_err(|e| e.to_string())
    }
}

/// A snapshot of the store: its root as of the snapshot's index, which shares every unchanged
/// part with the live store, encoded only when a snapshot file is written or a follower needs it.
struct FrozenStore(Frozen);

impl FrozenState for FrozenStore {
    fn encode(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.0.dump())
    }
}
