//! The wire layer: HashiCorp's gossip bytes, and nothing else.
//!
//! Owns the go-msgpack dialect ([`msgpack`]), memberlist's message types and their
//! encoding ([`messages`]), gossip encryption and the keyring ([`security`]), and the
//! receive/send pipeline that stacks them with memberlist's rules ([`codec`]).
//!
//! Must never: do I/O, read a clock, draw randomness (nonces are passed in), or hold
//! protocol state. Every function maps bytes to values or values to bytes, and malformed
//! input is an [`Error`](crate::Error), never a panic.

pub mod codec;
pub mod messages;
pub mod msgpack;
pub mod security;

pub use codec::{SendOptions, WireConfig};
pub use security::Keyring;
