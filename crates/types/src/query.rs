//! Query options and metadata shared by every read: consistency mode, blocking-query parameters,
//! and what the response headers report (`X-Consul-Index`, `X-Consul-KnownLeader`, ...).

use std::time::Duration;

use crate::Index;

/// Default wait of a blocking query (Consul: 5 minutes).
pub const DEFAULT_BLOCKING_WAIT: Duration = Duration::from_secs(300);
/// Longest wait a blocking query may ask for (Consul: 10 minutes).
pub const MAX_BLOCKING_WAIT: Duration = Duration::from_secs(600);

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Consistency {
    /// Served by the leader while it believes it leads.
    #[default]
    Default,
    /// Served by any server from its local state.
    Stale,
    /// Leadership confirmed with a quorum before reading.
    Consistent,
}

impl Consistency {
    /// The value of `X-Consul-Effective-Consistency`.
    pub fn header_value(self) -> &'static str {
        match self {
            Consistency::Default => "leader",
            Consistency::Stale => "stale",
            Consistency::Consistent => "consistent",
        }
    }
}

/// Options every read accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueryOptions {
    /// Target datacenter; empty means the agent's own.
    pub datacenter: String,
    pub consistency: Consistency,
    /// Blocking query: return once the result's index exceeds this (0 = don't block).
    pub min_index: Index,
    /// Blocking query: how long to wait at most (already clamped and defaulted).
    pub max_wait: Option<Duration>,
}

/// What a read reports back besides its result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueryMeta {
    /// Raft index the result reflects; never 0 on the wire.
    pub index: Index,
    pub known_leader: bool,
    /// Milliseconds since the serving server last heard from the leader (0 on the leader).
    pub last_contact_ms: u64,
    pub consistency: Consistency,
    /// Some results were left out because the token may not read them
    /// (`X-Consul-Results-Filtered-By-ACLs: true`).
    #[serde(default)]
    pub results_filtered_by_acls: bool,
}
