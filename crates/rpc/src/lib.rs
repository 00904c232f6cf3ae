//! Server RPC (port 8300): framed, multiplexed request/response over TCP.
//!
//! This is proconsul's own protocol between proconsul agents (DESIGN.md §1: not Consul's).
//! Layers, bottom up: [`frame`] turns bytes into length-prefixed frames with a method tag and a
//! request id; [`Client`] multiplexes many concurrent calls over one connection (a reader task
//! routes answers to waiting callers by id); [`serve`] accepts connections and answers each
//! request through a [`Handler`], concurrently. Bodies are opaque bytes: callers choose their
//! encoding (rmp-serde). Everything is bounded: frame size, in-flight calls per connection,
//! per-call timeouts.
//!
//! A connection may open with a handshake: the first request, method [`HELLO`], carries
//! whatever the caller's identity is to the server (proconsul: its datacenter); the
//! [`Handler`] accepts it or answers an error and the connection is closed. A handler that
//! [requires](Handler::requires_hello) one closes connections that start without it.
//!
//! Connections may be TLS ([`tls`]): the server tells TLS from plaintext by the first byte and
//! hands the handler what it learned of the caller ([`Peer`]).

mod client;
pub mod frame;
mod server;
pub mod tls;

pub use client::Client;
pub use tls::{Incoming, Outgoing, Peer, SharedTls, TlsSettings};

/// The method number of the connection handshake (the first request on a connection).
pub const HELLO: u8 = 0xFF;
pub use frame::{Frame, FrameKind, MAX_FRAME};
pub use server::{serve, ConnLimits, Handler};

/// Why a call failed on the wire (transport errors; the API error a server answers with is
/// `proconsul_types::RpcError`, carried inside a successful reply).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("connect {addr}: {message}")]
    Connect { addr: String, message: String },
    #[error("rpc timed out")]
    Timeout,
    #[error("connection closed")]
    Closed,
    #[error("frame of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("too many calls in flight on this connection")]
    Busy,
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The remote handler answered with an error.
    #[error("{0}")]
    Remote(String),
    /// The server refused the connection's handshake (the text says why); another try with
    /// the same handshake fails the same way.
    #[error("{0}")]
    Rejected(String),
}

impl WireError {
    /// Worth retrying on a fresh connection or another server?
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            WireError::Connect { .. } | WireError::Timeout | WireError::Closed | WireError::Busy
        )
    }
}
