//! The crate's errors: [`Error`] for the sans-I/O layers, [`PoolError`] for the driver.
//!
//! Decoding untrusted network bytes must never panic; every malformed,
//! truncated or unauthenticated input maps to an [`Error`] variant so the
//! caller can drop the packet and count it. [`PoolError`] is what the
//! driver's [`Pool`](crate::driver::Pool) operations report; its messages
//! are the ones users see (`consul join`, `consul keyring`, `consul event`).

use crate::serf::membership::USER_EVENT_SIZE_LIMIT;
use crate::serf::merge::MergeRefused;
use crate::wire::messages::MessageType;

/// Everything that can go wrong while decoding or encoding gossip bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input ended before the structure it announced.
    #[error("truncated input: {0}")]
    Truncated(&'static str),
    /// Malformed msgpack (reserved marker, nesting too deep, non-string key, ...).
    #[error("msgpack: {0}")]
    Msgpack(String),
    /// A struct field had a msgpack type the Go struct could not hold.
    #[error("field {field}: expected {expected}")]
    FieldType {
        /// Go field name.
        field: String,
        /// What we wanted.
        expected: &'static str,
    },
    /// Unknown or out-of-context message type byte.
    #[error("unsupported message type {0}")]
    UnknownType(u8),
    /// The CRC32 wrapper did not match its payload.
    #[error("CRC mismatch: header {expected:08x}, computed {actual:08x}")]
    BadCrc {
        /// CRC carried in the packet.
        expected: u32,
        /// CRC of the received bytes.
        actual: u32,
    },
    /// Compression wrapper problem (unknown algorithm, corrupt LZW stream).
    #[error("compression: {0}")]
    Compression(String),
    /// A compound message announced more bytes than it carried.
    #[error("compound message has {0} truncated parts")]
    CompoundTruncated(usize),
    /// Label header problem (bad length, mismatch with the configured label).
    #[error("label: {0}")]
    Label(String),
    /// Encryption problem: bad key size, unknown version, no key could decrypt.
    #[error("encryption: {0}")]
    Crypto(String),
    /// Data that cannot be represented on the wire (e.g. more than 255 compound parts).
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// Result alias for the codec.
pub type Result<T> = std::result::Result<T, Error>;

/// Why a [`Pool`](crate::driver::Pool) operation or one of its TCP exchanges failed.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The pool has stopped.
    #[error("gossip pool is shut down")]
    ShutDown,
    /// A socket or name lookup failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The wire layer refused bytes (bad label, decryption, malformed message).
    #[error("{0}")]
    Wire(#[from] Error),
    /// A TCP exchange outlived memberlist's `TCPTimeout`.
    #[error("i/o timeout")]
    Timeout,
    /// The connection closed before a whole message arrived.
    #[error("EOF")]
    Eof,
    /// A stream message larger than [`MAX_STREAM_MESSAGE`](crate::driver::MAX_STREAM_MESSAGE).
    #[error("stream message too large")]
    TooLarge,
    /// The peer answered with memberlist's error message.
    #[error("remote error: {0}")]
    Remote(String),
    /// A TCP fallback ping was not answered with an ack.
    #[error("no ack over TCP")]
    NoAck,
    /// A push/pull was not answered with the peer's state.
    #[error("remote did not answer with its state")]
    NoRemoteState,
    /// A TCP ping addressed to another node.
    #[error("got ping for unexpected node {0:?}")]
    UnexpectedPing(String),
    /// A stream message memberlist does not open a connection with.
    #[error("unexpected stream message {0:?}")]
    UnexpectedMessage(MessageType),
    /// A host name that resolved to no address.
    #[error("no addresses found")]
    NoAddresses,
    /// The merge delegate refused the remote state.
    #[error(transparent)]
    MergeRefused(#[from] MergeRefused),
    /// `join` was given no address.
    #[error("no addresses to join")]
    NothingToJoin,
    /// `join` reached nobody: one `address: reason` per failure.
    #[error("{}", .0.join("; "))]
    Join(Vec<String>),
    /// A user event whose name and payload exceed [`USER_EVENT_SIZE_LIMIT`].
    #[error(
        "user event exceeds configured limit of {USER_EVENT_SIZE_LIMIT} bytes before encoding"
    )]
    UserEventTooLarge,
    /// A keyring operation's key is not a base64 AES key.
    #[error("Invalid key: {0}")]
    InvalidKey(Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_error_messages_are_the_ones_users_saw() {
        let cases: Vec<(PoolError, &str)> = vec![
            (PoolError::ShutDown, "gossip pool is shut down"),
            (PoolError::NothingToJoin, "no addresses to join"),
            (
                PoolError::Join(vec!["a: EOF".into(), "b: i/o timeout".into()]),
                "a: EOF; b: i/o timeout",
            ),
            (
                PoolError::UserEventTooLarge,
                "user event exceeds configured limit of 512 bytes before encoding",
            ),
            (
                PoolError::InvalidKey(Error::Crypto("invalid base64 key: x".into())),
                "Invalid key: encryption: invalid base64 key: x",
            ),
            (
                PoolError::MergeRefused(MergeRefused(
                    "Member 'a' part of wrong datacenter 'dc2'".into(),
                )),
                "Member 'a' part of wrong datacenter 'dc2'",
            ),
            (PoolError::Io(std::io::Error::other("boom")), "boom"),
            (
                PoolError::Wire(Error::Truncated("label")),
                "truncated input: label",
            ),
            (PoolError::Timeout, "i/o timeout"),
            (PoolError::Remote("nope".into()), "remote error: nope"),
            (
                PoolError::UnexpectedPing("x".into()),
                "got ping for unexpected node \"x\"",
            ),
            (
                PoolError::UnexpectedMessage(MessageType::Alive),
                "unexpected stream message Alive",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }
}
