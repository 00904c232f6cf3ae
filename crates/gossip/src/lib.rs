//! proconsul-gossip: HashiCorp-compatible gossip (memberlist + Serf), in layers.
//!
//! Consul's membership runs on hashicorp/memberlist (SWIM + Lifeguard) with
//! hashicorp/serf on top. To form one pool with HashiCorp agents we must speak
//! their bytes exactly, and no Rust crate does, so this crate implements the
//! protocol in four layers, bottom up, each testable on its own:
//!
//! * [`wire`] — bytes only: the go-msgpack dialect, memberlist's messages, the
//!   label/CRC/compression/compound wrappers, AES-GCM and the keyring, and the
//!   receive/send pipeline ([`wire::WireConfig`]). Checked byte for byte
//!   against captured HashiCorp traffic (`tests/golden`).
//! * [`memberlist`] — the SWIM + Lifeguard membership core ([`memberlist::Swim`]):
//!   probes, suspicion, awareness, the broadcast queue.
//! * [`serf`] — the Serf layer ([`serf::Serf`]): tags, statuses, intents, user
//!   events, queries, reaping, Vivaldi coordinates, keyring queries, the merge
//!   delegate and the member snapshot format.
//! * [`driver`] — the tokio driver ([`driver::Pool`]): sockets, timers, TCP
//!   push/pull, the snapshot and keyring files. The only layer that does I/O.
//!
//! * `sim` (tests and the `sim` feature only) — a deterministic in-memory network
//!   of many memberlist cores on virtual time, for the scale figures of
//!   `docs/gossip-scale.md` and their CI checks.
//!
//! A layer only uses the layers below it. Below [`driver`] there are no
//! sockets, files, clocks or randomness: callers pass bytes, time and random
//! numbers in and get bytes and effects out. Errors are [`Error`] for the
//! sans-I/O layers and [`PoolError`] for the driver.

#![warn(missing_docs)]

pub mod driver;
pub mod error;
pub mod memberlist;
pub mod serf;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod wire;

pub use error::{Error, PoolError, Result};

// The flat module paths from before the layering, kept so dependents (crates/agent)
// compile unchanged. New code should name the layered paths.
#[doc(no_inline)]
pub use driver as net;
#[doc(no_inline)]
pub use memberlist as swim;
#[doc(no_inline)]
pub use serf::{coordinate, membership};
#[doc(no_inline)]
pub use wire::{codec, msgpack, security};
