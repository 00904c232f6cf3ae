//! Transaction shapes (`PUT /v1/txn`): KV, node, service, check and session operations.

use serde::{Deserialize, Serialize};

use crate::kv::{base64_opt, KvEntry};
use crate::{HealthCheck, Index, Node, NodeService};

/// At most this many operations in one transaction, like Consul's default `txn_max_req_len` ops.
pub const MAX_TXN_OPS: usize = 64;

/// One operation of a transaction body: exactly one of its members is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TxnOp {
    #[serde(rename = "KV", skip_serializing_if = "Option::is_none")]
    pub kv: Option<TxnKvOp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<TxnNodeOp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<TxnServiceOp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<TxnCheckOp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<TxnSessionOp>,
}

/// The verbs of node, service and check operations (Consul's `api.NodeOp` and kin).
pub const CATALOG_VERBS: &[&str] = &["set", "cas", "get", "delete", "delete-cas"];

/// A node operation: `{"Verb": "set", "Node": {...}}`. `cas` and `delete-cas` compare the
/// node's `ModifyIndex`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TxnNodeOp {
    pub verb: String,
    pub node: Node,
}

/// A service operation on a node: `{"Verb": "set", "Node": "n1", "Service": {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TxnServiceOp {
    pub verb: String,
    pub node: String,
    pub service: NodeService,
}

/// A check operation: `{"Verb": "set", "Check": {"Node": …, "CheckID": …}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TxnCheckOp {
    pub verb: String,
    pub check: HealthCheck,
}

/// A session operation: `{"Verb": "delete", "Session": {"ID": …}}` (the only verb).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TxnSessionOp {
    pub verb: String,
    pub session: TxnSessionRef,
}

/// The session a [`TxnSessionOp`] names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TxnSessionRef {
    #[serde(rename = "ID")]
    pub id: String,
    pub node: String,
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

/// One result of a committed transaction: the entry an operation read or wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TxnResult {
    #[serde(rename = "KV", skip_serializing_if = "Option::is_none")]
    pub kv: Option<KvEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<Node>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<NodeService>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<HealthCheck>,
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
