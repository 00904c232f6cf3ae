//! The Serf layer (hashicorp/serf) on top of the memberlist layer, sans-I/O.
//!
//! Owns, with HashiCorp's file names in brackets:
//! * [`messages`] — Serf's messages carried in memberlist user messages, member tags in
//!   node meta, Lamport clocks, the coordinate ping payload (`messages.go`, `lamport.go`);
//! * [`membership`] — the Serf state machine: member statuses, join/leave intents, user
//!   events, queries, reaping and reconnects (`serf.go`);
//! * [`coordinate`] — Vivaldi network coordinates (`coordinate/`);
//! * [`keyring`] — the `_serf_*-key` keyring queries (`keymanager.go`, `internal_query.go`);
//! * [`merge`] — the merge delegate's veto over remote members (`merge_delegate.go`);
//! * [`snapshot`] — the member snapshot format used to rejoin after a restart
//!   (`snapshot.go`).
//!
//! Must never: touch sockets, files or timers, read a clock or draw randomness itself
//! (time and random numbers come in as inputs), or frame packets (that is
//! [`crate::wire`]'s job).

pub mod coordinate;
pub mod keyring;
pub mod membership;
pub mod merge;
pub mod messages;
pub mod snapshot;

pub use membership::{Member, MemberStatus, Serf, SerfConfig, SerfEvent, SerfInput, SerfOutput};
