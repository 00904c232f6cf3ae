//! openraft type configuration and the opaque payload newtypes.
//!
//! The Raft layer never looks inside a proposal: the server crate encodes its versioned command
//! enum into bytes, and the state machine decodes it. Keeping `D`/`R` as byte newtypes means this
//! crate does not depend on the state store's types and a log entry's payload is written once, as
//! a msgpack `bin`, not re-encoded field by field.

use std::fmt;
use std::io::Cursor;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

openraft::declare_raft_types!(
    /// proconsul's openraft type configuration.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// An encoded application proposal (the log entry payload).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Request(pub Vec<u8>);

/// The encoded result of applying a [`Request`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Response(pub Vec<u8>);

macro_rules! bytes_newtype {
    ($t:ident) => {
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({} bytes)", stringify!($t), self.0.len())
            }
        }

        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_byte_buf(BytesVisitor).map($t)
            }
        }
    };
}

bytes_newtype!(Request);
bytes_newtype!(Response);

/// Opaque bytes inside internal envelopes (snapshot files), encoded as one msgpack `bin`.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Blob(pub Vec<u8>);
bytes_newtype!(Blob);

/// Accepts msgpack `bin`, `str` and (for robustness) an array of small integers.
struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
        Ok(v.as_bytes().to_vec())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(out)
    }
}

/// A log entry of this configuration.
pub(crate) type Entry = openraft::Entry<TypeConfig>;
pub(crate) type LogId = openraft::LogId<u64>;
pub(crate) type StorageError = openraft::StorageError<u64>;
pub(crate) type StoredMembership = openraft::StoredMembership<u64, openraft::BasicNode>;
pub(crate) type SnapshotMeta = openraft::SnapshotMeta<u64, openraft::BasicNode>;

/// Encode in msgpack struct-map form (field names), like every internal encoding in proconsul.
pub(crate) fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    rmp_serde::to_vec_named(v)
}

pub(crate) fn decode<'a, T: Deserialize<'a>>(b: &'a [u8]) -> Result<T, rmp_serde::decode::Error> {
    rmp_serde::from_slice(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_bin_and_roundtrips() {
        let r = Request(vec![1, 2, 3, 255]);
        let b = encode(&r).unwrap();
        // bin8 marker, length, bytes: no per-byte integer encoding.
        assert_eq!(b, vec![0xc4, 4, 1, 2, 3, 255]);
        assert_eq!(decode::<Request>(&b).unwrap(), r);
    }
}
