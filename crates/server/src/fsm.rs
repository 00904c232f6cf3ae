//! The Raft state machine is the store itself: openraft hands each committed entry, typed, to
//! [`Store::apply`] and the typed result goes back to the proposer. Nothing is encoded here.

use proconsul_raft::StateMachine;
use proconsul_state::{ApplyResult, Proposal, Store};

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

    fn restore(&self, data: &[u8]) -> Result<(), String> {
        self.store.restore(data).map_err(|e| e.to_string())
    }
}
