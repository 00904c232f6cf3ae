//! The log entry payload: what the Raft state machine hands to [`crate::Store::apply`].
//!
//! Entries are persisted in the Raft log and replayed on every server, possibly by a newer
//! binary, so the encoding is a contract: variant and field names are stable serde tags.
//! Never rename or repurpose a tag; add a new variant for new meaning. Everything
//! time-dependent travels inside the entry (`at_ms`), decided once by the proposer, so every
//! replica computes the same state.

use serde::{Deserialize, Serialize};

use proconsul_types::{
    DeregisterRequest, RegisterRequest, SessionEntry, TxnError, TxnKvOp, TxnResult,
};

use crate::error::StateError;
use crate::records::opt_bytes;

/// One committed log entry's payload.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Proposal {
    /// Unix milliseconds chosen by the proposer (lock-delay deadlines are computed from it).
    pub at_ms: u64,
    pub command: Command,
}

impl Proposal {
    pub fn new(at_ms: u64, command: Command) -> Self {
        Proposal { at_ms, command }
    }
}

/// A state change. Externally tagged with explicit, stable names.
///
/// `Register` is much larger than the rest; it is left unboxed because a command is built once
/// and moved into the log, so the size costs nothing measurable and the variants stay plain.
#[allow(clippy::large_enum_variant)]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Command {
    /// Upsert a node and optionally one service and its checks (Consul `EnsureRegistration`).
    #[serde(rename = "register")]
    Register(RegisterRequest),
    /// Remove a whole node, or one service (+ its checks), or one check.
    #[serde(rename = "deregister")]
    Deregister(DeregisterRequest),
    /// One KV operation (`PUT`/`DELETE /v1/kv/...`).
    #[serde(rename = "kv")]
    Kv(KvOp),
    /// An all-or-nothing KV transaction (`PUT /v1/txn`).
    #[serde(rename = "txn")]
    Txn(Vec<TxnKvOp>),
    /// Create a session whose ID the proposer already chose.
    #[serde(rename = "session_create")]
    SessionCreate(SessionEntry),
    /// Destroy a session, releasing or deleting its locks per its behavior.
    #[serde(rename = "session_destroy")]
    SessionDestroy { id: String },
    /// Forget KV tombstones with index `<= up_to_index`.
    #[serde(rename = "tombstone_reap")]
    TombstoneReap { up_to_index: u64 },
    /// Upsert LAN coordinates (Consul's `CoordinateBatchUpdate`). Updates for nodes the
    /// catalog does not hold, and invalid ones, are skipped: coordinates are cleaned up with
    /// their node, so one for an unknown node would never go away.
    #[serde(rename = "coordinate_batch_update")]
    CoordinateBatchUpdate(Vec<CoordinateUpdate>),
    /// Replace the whole state with a snapshot (`PUT /v1/snapshot`); `state` is a
    /// [`Store::dump`](crate::Store::dump). Applied at its log index, so indexes stay monotonic.
    #[serde(rename = "restore")]
    Restore {
        #[serde(with = "opt_bytes", default)]
        state: Option<Vec<u8>>,
    },
    /// Store autopilot's configuration; with `cas`, only if the stored `ModifyIndex` equals it.
    #[serde(rename = "autopilot_set_config")]
    AutopilotSetConfig {
        config: crate::AutopilotConfig,
        #[serde(default)]
        cas: Option<u64>,
    },
}

/// One node's coordinate in one network segment (`""` is the default segment); lengths in
/// seconds. Also the stored row.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CoordinateUpdate {
    pub node: String,
    #[serde(default)]
    pub segment: String,
    pub vec: Vec<f64>,
    pub error: f64,
    pub adjustment: f64,
    pub height: f64,
}

impl CoordinateUpdate {
    /// No NaN or infinity (serf's `IsValid`).
    pub fn is_valid(&self) -> bool {
        self.vec.iter().all(|x| x.is_finite())
            && self.error.is_finite()
            && self.adjustment.is_finite()
            && self.height.is_finite()
    }
}

/// One KV operation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct KvOp {
    pub verb: KvVerb,
    pub key: String,
    #[serde(with = "opt_bytes", default)]
    pub value: Option<Vec<u8>>,
    #[serde(default)]
    pub flags: u64,
    /// The expected `ModifyIndex` for `Cas`/`DeleteCas` (0 = "must not exist" for `Cas`).
    #[serde(default)]
    pub index: u64,
    #[serde(default)]
    pub session: Option<String>,
}

/// The verb of a [`KvOp`].
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KvVerb {
    #[default]
    #[serde(rename = "set")]
    Set,
    #[serde(rename = "cas")]
    Cas,
    #[serde(rename = "lock")]
    Lock,
    #[serde(rename = "unlock")]
    Unlock,
    #[serde(rename = "delete")]
    Delete,
    #[serde(rename = "delete_cas")]
    DeleteCas,
    #[serde(rename = "delete_tree")]
    DeleteTree,
}

/// What applying an entry produced, returned to the proposer.
#[derive(Clone, Debug, PartialEq)]
pub enum ApplyResult {
    /// Register/deregister/session/reap succeeded.
    Ok,
    /// A KV operation: `false` when a CAS index mismatched or a lock is held by someone else.
    Bool(bool),
    /// A transaction: its results, or the errors that rolled it back.
    Txn(Result<Vec<TxnResult>, Vec<TxnError>>),
    /// The command was rejected; nothing changed.
    Err(StateError),
}

impl ApplyResult {
    /// Did the command fail (and so change nothing)?
    pub fn is_err(&self) -> bool {
        matches!(self, ApplyResult::Err(_) | ApplyResult::Txn(Err(_)))
    }
}
