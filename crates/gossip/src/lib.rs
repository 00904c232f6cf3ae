//! proconsul-gossip: a sans-I/O codec for HashiCorp's gossip wire format.
//!
//! Consul's membership runs on hashicorp/memberlist (SWIM + Lifeguard) with
//! hashicorp/serf on top. To form one pool with HashiCorp agents we must speak
//! their bytes exactly, and no Rust crate does, so this crate implements the
//! wire format in layers, each testable against captured traffic:
//!
//! * [`msgpack`] — the go-msgpack dialect (structs as maps keyed by Go field
//!   names, old-spec raw strings).
//! * [`memberlist`] — message types, compound/CRC/compression wrappers, label
//!   header, push/pull stream messages.
//! * [`security`] — keyring and AES-GCM packet/stream encryption.
//! * [`codec`] — the whole receive/send pipeline with memberlist's rules
//!   (label check, verify incoming/outgoing, CRC, compression).
//! * [`serf`] — Serf messages carried in memberlist user messages, Lamport
//!   time, member tags in node meta.
//!
//! * [`coordinate`] — Serf's Vivaldi network coordinates (RTT estimates).
//! * [`swim`] — the SWIM + Lifeguard membership core (sans-I/O).
//! * [`membership`] — the Serf layer on top: tags, statuses, intents, user
//!   events, reaping (sans-I/O).
//! * [`net`] — the tokio driver: sockets, timers, push/pull over TCP, the
//!   member snapshot file. The only module that does I/O.
//!
//! Below [`net`], no sockets, clocks or randomness live here: callers pass
//! bytes, time and random numbers in and get bytes and effects out.

#![warn(missing_docs)]

pub mod codec;
pub mod coordinate;
pub mod error;
pub mod memberlist;
pub mod membership;
pub mod msgpack;
pub mod net;
pub mod security;
pub mod serf;
pub mod swim;

pub use error::{Error, Result};
