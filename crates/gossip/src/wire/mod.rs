//! The wire layer: HashiCorp's gossip bytes, and nothing else.
//!
//! Owns the go-msgpack dialect ([`msgpack`]), memberlist's message types and their
//! encoding ([`messages`]), the label/CRC/compression/compound wrappers ([`framing`]),
//! gossip encryption and the keyring ([`security`]), and the receive/send pipeline that
//! stacks them with memberlist's rules ([`codec`]). The driver asks this layer even how
//! many bytes a header needs ([`framing::label_header_len`],
//! [`security::announced_stream_len`]) rather than parsing any itself.
//!
//! Must never: do I/O, read a clock, draw randomness (nonces are passed in), or hold
//! protocol state. Every function maps bytes to values or values to bytes, and malformed
//! input is an [`Error`](crate::Error), never a panic.

pub mod codec;
pub mod framing;
pub mod messages;
pub mod msgpack;
pub mod security;

pub use codec::{SendOptions, WireConfig};
pub use security::Keyring;
