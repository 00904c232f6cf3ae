//! The Raft state machine over the store: decode the proposal, apply, encode the result.
//!
//! The encoding of [`Applied`] is internal to a server (the proposer decodes what its own state
//! machine produced), but it crosses Raft so it is a plain serde enum.

use proconsul_raft::StateMachine;
use proconsul_state::{ApplyResult, Proposal, Store};
use proconsul_types::{TxnError, TxnResult};
use serde::{Deserialize, Serialize};

/// A serialisable [`ApplyResult`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Applied {
    Ok,
    Bool(bool),
    Txn(Result<Vec<TxnResult>, Vec<TxnError>>),
    Err(String),
}

impl From<ApplyResult> for Applied {
    fn from(r: ApplyResult) -> Self {
        match r {
            ApplyResult::Ok => Applied::Ok,
            ApplyResult::Bool(b) => Applied::Bool(b),
            ApplyResult::Txn(t) => Applied::Txn(t),
            ApplyResult::Err(e) => Applied::Err(e.to_string()),
        }
    }
}

pub(crate) struct StoreMachine {
    store: Store,
}

impl StoreMachine {
    pub(crate) fn new(store: Store) -> Self {
        StoreMachine { store }
    }
}

impl StateMachine for StoreMachine {
    fn apply(&self, index: u64, payload: &[u8]) -> Vec<u8> {
        // An entry we cannot decode means a newer or corrupt log: stop loudly, never skip.
        let proposal: Proposal = rmp_serde::from_slice(payload).unwrap_or_else(|e| {
            panic!("fatal: cannot decode raft log entry at index {index}: {e}")
        });
        let applied = Applied::from(self.store.apply(index, &proposal));
        rmp_serde::to_vec_named(&applied).expect("encode apply result")
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
