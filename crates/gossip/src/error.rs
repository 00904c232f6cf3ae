//! One error type for every layer of the codec.
//!
//! Decoding untrusted network bytes must never panic; every malformed,
//! truncated or unauthenticated input maps to one of these variants so the
//! caller (the future protocol core) can drop the packet and count it.

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
