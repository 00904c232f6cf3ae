//! Consul-compatible API structs shared by every proconsul crate.
//!
//! These are the shapes that cross the HTTP API (and the RPC wire): field names are Consul's
//! PascalCase names, empty lists serialise as `[]`, and maps as `{}`. The state store keeps its
//! own internal records and converts to these at the edge, so either side can change alone.
//!
//! Input from clients is matched case-insensitively (see [`json::from_slice_ci`]), the way
//! Consul's own decoder accepts `{"name": "web"}` from py-consul.

pub mod acl;
pub mod agent;
pub mod call;
pub mod catalog;
pub mod conn_limit;
pub mod coordinate;
pub mod duration;
pub mod json;
pub mod kv;
pub mod prepared_query;
pub mod query;
pub mod reads;
pub mod rpc;
pub mod session;
pub mod time;
pub mod translate;
pub mod txn;
pub mod ui;

pub use acl::*;
pub use agent::*;
pub use call::*;
pub use catalog::*;
pub use coordinate::*;
pub use kv::*;
pub use prepared_query::*;
pub use query::*;
pub use reads::*;
pub use rpc::*;
pub use session::*;
pub use txn::*;
pub use ui::*;

/// Deprecated: the snapshot archive moved to the `proconsul-archive` crate, since this crate
/// holds API shapes only. This re-export remains for callers not yet moved (one integration
/// test); use `proconsul_archive` directly. (`#[deprecated]` has no effect on a re-export.)
#[doc(hidden)]
pub use proconsul_archive as archive;

/// A Raft log index; every `CreateIndex`/`ModifyIndex` is one.
pub type Index = u64;

/// The version string proconsul reports where clients expect Consul's (`Config.Version`).
pub const CONSUL_COMPAT_VERSION: &str = "1.22.0";
/// proconsul's own version.
pub const PROCONSUL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Health check status strings, as Consul spells them.
pub mod health {
    pub const PASSING: &str = "passing";
    pub const WARNING: &str = "warning";
    pub const CRITICAL: &str = "critical";
    pub const MAINT: &str = "maintenance";
    /// Pseudo-state accepted by `/v1/health/state/any`.
    pub const ANY: &str = "any";

    /// Is `s` one of the states a check can be in?
    pub fn is_valid_status(s: &str) -> bool {
        matches!(s, PASSING | WARNING | CRITICAL)
    }

    /// The check ID of the node-level gossip health check every member carries.
    pub const SERF_CHECK_ID: &str = "serfHealth";
    pub const SERF_CHECK_NAME: &str = "Serf Health Status";
}
