//! proconsul-gossip: HashiCorp-compatible gossip (memberlist + Serf), in layers.
//!
//! Consul's membership runs on hashicorp/memberlist (SWIM + Lifeguard) with
//! hashicorp/serf on top. To form one pool with HashiCorp agents we must speak
//! their bytes exactly, and no Rust crate does, so this crate implements the
//! protocol in four layers, each testable on its own:
//!
//! * [`wire`] — bytes: the go-msgpack dialect, memberlist's messages, label,
//!   CRC, compression and AES-GCM framing, and the receive/send pipeline.
//! * [`memberlist`] — the SWIM + Lifeguard membership core: probes, suspicion,
//!   awareness, the broadcast queue.
//! * [`serf`] — the Serf layer: tags, statuses, intents, user events, queries,
//!   reaping, Vivaldi coordinates.
//! * [`driver`] — the tokio driver: sockets, timers, push/pull over TCP, the
//!   member snapshot file. The only layer that does I/O.
//!
//! Below [`driver`], no sockets, clocks or randomness live here: callers pass
//! bytes, time and random numbers in and get bytes and effects out. Each layer
//! only uses the ones listed before it.

#![warn(missing_docs)]

pub mod driver;
pub mod error;
pub mod memberlist;
pub mod serf;
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
