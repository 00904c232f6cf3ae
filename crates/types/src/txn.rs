//! Transaction shapes (`PUT /v1/txn`), KV verbs only for now.

use serde::{Deserialize, Serialize};

use crate::kv::{base64_opt, KvEntry};
use crate::Index;

/// At most this many operations in one transaction, like Consul's default `txn_max_req_len` ops.
pub const MAX_TXN_OPS: usize = 64;

/// One operation of a transaction body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TxnOp {
    #[serde(rename = "KV")]
    pub kv: Option<TxnKvOp>,
}

/// A KV operation: `Verb` is one of set, cas, lock, unlock, get, get-tree, check-index,
/// check-session, check-not-exists, delete, delete-tree, delete-cas.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TxnKvOp {
    pub verb: String,
    pub key: String,
    #[serde(with = "base64_opt")]
    pub value: Option<Vec<u8>>,
    pub flags: u64,
    pub index: Index,
    pub session: String,
}

/// One result of a committed transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TxnResult {
    #[serde(rename = "KV")]
    pub kv: Option<KvEntry>,
}

/// Why a transaction was rolled back: the failing operation's position and a message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TxnError {
    pub op_index: usize,
    pub what: String,
}

/// Response body of `PUT /v1/txn`: `Results` on success (200), `Errors` on rollback (409).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TxnResponse {
    pub results: Option<Vec<TxnResult>>,
    pub errors: Option<Vec<TxnError>>,
}

/// The verbs a KV transaction operation may use.
pub const KV_VERBS: &[&str] = &[
    "set",
    "cas",
    "lock",
    "unlock",
    "get",
    "get-tree",
    "check-index",
    "check-session",
    "check-not-exists",
    "delete",
    "delete-tree",
    "delete-cas",
];
