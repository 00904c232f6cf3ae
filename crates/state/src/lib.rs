//! proconsul's state store: the catalog (nodes, services, checks), KV with locks and
//! tombstones, and sessions, with Consul's semantics and index rules.
//!
//! It is the bottom of the server: the Raft state machine calls [`Store::apply`] with each
//! committed entry's index and [`Proposal`]; endpoints read through [`Store::view`] and block
//! on [`WatchSet::changed`]. It must stay pure: no async runtime, no I/O, no clock, no
//! randomness. Anything time-dependent arrives inside the proposal, so every replica that
//! applies the same log holds the same state and produces the same [`Store::dump`] bytes.
//!
//! Layout: `command` (the versioned log entries), `legacy` (reading version 1 entries), `store` (root, writer, apply), `catalog` (with `key`, its shared keys), `kv`,
//! `session`, `coordinate`, `txn` (writes and reads per domain), `view` (read views), `watch` (notifiers and
//! watch sets), `snapshot` (dump/restore), `records` (internal rows, kept apart from the API
//! shapes in `proconsul-types`), `compact` (the records' shared small lists).

mod acl;
mod autopilot;
mod catalog;
mod command;
mod compact;
mod coordinate;
mod error;
mod key;
mod kv;
mod legacy;
mod prepared_query;
mod records;
mod session;
mod snapshot;
mod store;
mod txn;
mod view;
mod watch;

pub use acl::{
    AclAuthMethodRec, AclBindingRuleRec, AclCommand, AclGrants, AclLink, AclNodeIdentity,
    AclPolicyRec, AclRoleRec, AclServiceIdentity, AclTemplatedPolicy, AclTokenRec,
};
pub use autopilot::AutopilotConfig;
pub use command::{
    ApplyResult, CatalogVerb, Command, CoordinateUpdate, DecodeError, Deregistration, KvOp, KvVerb,
    NewSession, Proposal, Registration, TxnOp, TxnStep, TxnVerb, LOG_ENTRY_VERSION,
};
pub use error::StateError;
pub use prepared_query::{PreparedQueryCommand, PreparedQueryRec};
pub use snapshot::{dump_stats, DumpStats, KindStats};
pub use store::{Frozen, Store, Table};
pub use view::{StateCounts, View};
pub use watch::WatchSet;
