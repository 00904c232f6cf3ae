//! The Serf layer (hashicorp/serf) on top of the memberlist layer, sans-I/O.
//!
//! Owns Serf's messages carried in memberlist user messages, member tags and Lamport
//! clocks ([`messages`]), keyring queries ([`keyring`]), the Serf state machine with member statuses, intents, user
//! events, queries and reaping ([`membership`]), Vivaldi network coordinates
//! ([`coordinate`]), the merge delegate ([`merge`]), and the member snapshot format used to rejoin after a restart
//! ([`snapshot`]).
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
