//! The typed requests every front end (HTTP, DNS, CLI via HTTP) sends down one path.
//!
//! A handler never touches the store: it builds a [`ReadRequest`] or [`WriteRequest`] and hands
//! it to the agent (reads as their own query structs, see [`crate::reads`]), which serves it from the local server or forwards it to one — the same enum
//! either way, so client agents and servers answer identically.

use serde::{Deserialize, Serialize};

use crate::{
    CoordinateUpdateRequest, DeregisterRequest, RegisterRequest, SessionEntry, TxnResponse,
};

/// The KV write verbs of `PUT`/`DELETE /v1/kv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvWriteVerb {
    Set,
    Cas,
    Lock,
    Unlock,
    Delete,
    DeleteCas,
    DeleteTree,
}

/// A session to create, as the HTTP body gives it (durations already parsed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCreate {
    pub name: String,
    /// Empty: the agent's own node.
    pub node: String,
    /// Lock delay in nanoseconds; `None` = Consul's default of 15 s.
    pub lock_delay_ns: Option<u64>,
    /// `None` = default (`serfHealth`).
    pub node_checks: Option<Vec<String>>,
    pub service_checks: Vec<String>,
    pub behavior: String,
    /// Raw TTL text, validated by the server (`Invalid Session TTL` errors).
    pub ttl: String,
}

/// A change to the datacenter's state; committed through Raft. Built once per request and moved,
/// so the size gap between variants costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WriteRequest {
    /// Boxed: a registration is ten times the size of any other request, and requests are
    /// moved through every await of the request path.
    Register(Box<RegisterRequest>),
    Deregister(DeregisterRequest),
    Kv {
        verb: KvWriteVerb,
        key: String,
        value: Option<Vec<u8>>,
        flags: u64,
        /// CAS index for `Cas`/`DeleteCas`.
        index: u64,
        session: Option<String>,
    },
    Txn(Vec<crate::TxnOp>),
    SessionCreate(SessionCreate),
    SessionDestroy {
        id: String,
    },
    /// Not a Raft write in Consul either: resets the TTL timer on the leader.
    SessionRenew {
        id: String,
    },
    /// Replace the whole state with a snapshot's (`PUT /v1/snapshot`, already verified).
    SnapshotRestore(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A node's LAN coordinate (`Coordinate.Update`): queued on the leader, which writes the
    /// latest of each node in batches, so it is acknowledged before it is committed.
    CoordinateUpdate(CoordinateUpdateRequest),
    /// Set autopilot's configuration; with `cas`, only if its `ModifyIndex` is that value.
    /// Answers `Bool`.
    AutopilotSetConfig {
        config: crate::AutopilotConfiguration,
        cas: Option<u64>,
    },
}

/// The answer to a [`WriteRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteResponse {
    Ok,
    Bool(bool),
    /// `Results` (committed) or `Errors` (rolled back: HTTP 409).
    Txn(TxnResponse),
    SessionId(String),
    Session(Option<SessionEntry>),
}

/// Why a request failed; each maps to Consul's HTTP status, the message is the body text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RpcError {
    /// 400
    BadRequest(String),
    /// 401 (`ACL support disabled`)
    Unauthorized(String),
    /// 403 (`Permission denied`)
    PermissionDenied(String),
    /// 404
    NotFound(String),
    /// 409
    Conflict(String),
    /// 413
    TooLarge(String),
    /// 429: a rate limit (`limits.request_limits` on a server, `limits.rpc_rate` on a client
    /// agent) refused the request; another server may take it.
    TooManyRequests(String),
    /// 500 `No cluster leader`
    NoLeader,
    /// 500 with the message (what Consul does for most RPC errors)
    Internal(String),
    /// 503: the agent is shutting down or no server can be reached
    Unavailable(String),
}

impl RpcError {
    /// The HTTP status Consul answers with.
    pub fn status(&self) -> u16 {
        match self {
            RpcError::BadRequest(_) => 400,
            RpcError::Unauthorized(_) => 401,
            RpcError::PermissionDenied(_) => 403,
            RpcError::NotFound(_) => 404,
            RpcError::Conflict(_) => 409,
            RpcError::TooLarge(_) => 413,
            RpcError::TooManyRequests(_) => 429,
            RpcError::NoLeader | RpcError::Internal(_) => 500,
            RpcError::Unavailable(_) => 503,
        }
    }

    /// Worth retrying on another server?
    pub fn is_retryable(&self) -> bool {
        matches!(self, RpcError::NoLeader | RpcError::Unavailable(_))
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RpcError::NoLeader => f.write_str("No cluster leader"),
            RpcError::BadRequest(m)
            | RpcError::Unauthorized(m)
            | RpcError::PermissionDenied(m)
            | RpcError::NotFound(m)
            | RpcError::Conflict(m)
            | RpcError::TooLarge(m)
            | RpcError::TooManyRequests(m)
            | RpcError::Internal(m)
            | RpcError::Unavailable(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for RpcError {}

/// `limits.request_limits`: a server's limits on the requests it serves per second (Consul's
/// global rate limit). Reads are counted where they arrive, writes on the leader.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RequestLimits {
    pub mode: RequestLimitMode,
    /// Reads per second; infinite when unset.
    pub read_rate: f64,
    /// Writes per second; infinite when unset.
    pub write_rate: f64,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            mode: RequestLimitMode::Disabled,
            read_rate: f64::INFINITY,
            write_rate: f64::INFINITY,
        }
    }
}

/// `limits.request_limits.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestLimitMode {
    /// No limit (the default).
    Disabled,
    /// Over the limit: logged and counted, served anyway.
    Permissive,
    /// Over the limit: refused.
    Enforcing,
}
