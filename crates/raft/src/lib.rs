//! proconsul-raft: Raft consensus for proconsul servers, built on openraft 0.9 (storage-v2).
//!
//! What this crate owns: the Raft log (redb on disk, or memory for `-dev`), the adapter that
//! feeds committed entries to the state machine and snapshots it, and the encoding of Raft RPCs.
//! What it must never do: look inside proposals (they are opaque bytes — the server crate owns
//! the command enum), touch sockets (the RPC crate implements [`RaftTransport`]), or leak
//! openraft's generic types to other crates: [`RaftNode`] is the whole public surface.
//!
//! Layout on disk (durable mode), under [`RaftOptions::dir`] (`<data-dir>/raft`):
//! `raft.redb` (log, vote, committed, last-purged) and `snapshots/current.snap`.

// openraft's storage traits return its 224-byte `StorageError`; boxing it locally would only
// add conversions at every trait boundary.
#![allow(clippy::result_large_err)]

#[doc(hidden)]
pub mod fuzzing;
mod lease;
mod log_store;
mod network;
mod node;
mod state_machine;
mod trace;
mod types;

#[cfg(test)]
mod suite_tests;

pub use network::{MemRouter, RaftTransport, RpcKind, TransportError, TransportFuture};
pub use node::{
    recover_membership, Leadership, RaftError, RaftMetricsSummary, RaftNode, RaftOptions,
    TransferGuard,
};
pub use state_machine::{FrozenState, StateMachine};
pub use trace::TRACE_ENV;
