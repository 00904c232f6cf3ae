//! openraft type configuration and the typed log payload.
//!
//! A log entry's payload is the server's typed [`Proposal`] (a versioned enum of proconsul's
//! own structs, defined by `proconsul-state`), and applying it returns the store's typed
//! [`ApplyResult`]: the leader hands its proposal to openraft and gets the result back with no
//! encoding or decoding in between. Bytes exist only where they must — in the redb log and in
//! AppendEntries to followers — and there the payload is one msgpack `bin` holding
//! [`Proposal::encode`], the same layout as the byte payloads of earlier builds, so their logs
//! still read ([`Proposal::decode`] knows every version).

use std::fmt;
use std::io::Cursor;
use std::sync::Arc;

use proconsul_state::{ApplyResult, Proposal};
use serde::de;
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

/// A log entry's application payload: shared, so the copies openraft makes are cheap.
#[derive(Clone, PartialEq)]
pub struct Request(pub Arc<Proposal>);

impl Default for Request {
    fn default() -> Self {
        Request(Arc::new(Proposal::new(
            0,
            proconsul_state::Command::TombstoneReap { up_to_index: 0 },
        )))
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0.command, f)
    }
}

impl Serialize for Request {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0.encode())
    }
}

impl<'de> Deserialize<'de> for Request {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = serde_bytes::ByteBuf::deserialize(d)?;
        // An entry this build cannot read stops the node (openraft treats a storage or
        // network decode error as fatal): never skip it.
        Proposal::decode(&bytes)
            .map(|p| Request(Arc::new(p)))
            .map_err(de::Error::custom)
    }
}

/// What applying a [`Request`] produced. Only returned to the proposer in this process, never
/// sent anywhere: its serde impls exist because openraft's `serde` feature asks for them, and
/// decoding one is an error.
#[derive(Clone, Debug, PartialEq)]
pub struct Response(pub ApplyResult);

impl Default for Response {
    fn default() -> Self {
        Response(ApplyResult::Ok)
    }
}

impl Serialize for Response {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de> Deserialize<'de> for Response {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(de::Error::custom("apply results never cross the wire"))
    }
}

/// Opaque bytes inside internal envelopes (snapshot files), encoded as one msgpack `bin`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Blob(#[serde(with = "serde_bytes")] pub Vec<u8>);

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
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
    fn payload_is_one_bin_holding_the_versioned_entry() {
        let p = Proposal::new(
            5,
            proconsul_state::Command::SessionDestroy { id: "s".into() },
        );
        let inner = p.encode();
        let b = encode(&Request(Arc::new(p.clone()))).unwrap();
        // bin8 marker, length, then the entry's own bytes.
        assert_eq!(b[0], 0xc4);
        assert_eq!(b[1] as usize, inner.len());
        assert_eq!(&b[2..], &inner[..]);
        assert_eq!(*decode::<Request>(&b).unwrap().0, p);
    }

    #[test]
    fn a_byte_payload_of_an_earlier_build_still_decodes() {
        // Earlier builds wrote the payload as bin(bytes) too, with a version 1 entry inside.
        #[derive(Serialize)]
        struct V1 {
            at_ms: u64,
            command: proconsul_state::Command,
        }
        let v1 = rmp_serde::to_vec_named(&V1 {
            at_ms: 1,
            command: proconsul_state::Command::TombstoneReap { up_to_index: 3 },
        })
        .unwrap();
        let mut b = vec![0xc4, v1.len() as u8];
        b.extend_from_slice(&v1);
        let r: Request = decode(&b).unwrap();
        assert_eq!(
            r.0.command,
            proconsul_state::Command::TombstoneReap { up_to_index: 3 }
        );
    }

    #[test]
    fn an_undecodable_payload_is_an_error() {
        assert!(decode::<Request>(&[0xc4, 2, 0xc1, 0xc1]).is_err());
    }
}
