//! Serf's keyring queries: cluster-wide key install / use / remove / list.
//!
//! Serf rotates gossip keys with internal queries (`_serf_install-key`, `_serf_use-key`,
//! `_serf_remove-key`, `_serf_list-keys`; hashicorp/serf `keymanager.go` on the asking side,
//! `internal_query.go` on the answering side). The query payload is
//! `[KeyRequest type][{Key}]`; each member changes its own keyring and answers
//! `[KeyResponse type][{Keys, Message, PrimaryKey, Result}]`; the asker tallies the answers
//! into a [`KeyResponse`].
//!
//! This module owns those payloads, the change to a [`Keyring`] a query makes, the tally, and
//! the keyring file's text. It never sends, waits or touches the keyring file: the driver
//! runs the query, persists the keyring, and holds the lock around [`execute`].

use std::collections::{BTreeMap, HashSet};

use super::messages::{Query, QueryResponse, SerfType, QUERY_FLAG_ACK};
use crate::error::{Error, Result};
use crate::wire::msgpack::{value_string, Fields, Writer};
use crate::wire::security::{decode_key_base64, encode_key_base64, Keyring};

/// Query name: install a key everywhere.
pub const INSTALL_KEY_QUERY: &str = "_serf_install-key";
/// Query name: make a key the primary everywhere.
pub const USE_KEY_QUERY: &str = "_serf_use-key";
/// Query name: remove a key everywhere.
pub const REMOVE_KEY_QUERY: &str = "_serf_remove-key";
/// Query name: every member lists its keys.
pub const LIST_KEYS_QUERY: &str = "_serf_list-keys";
/// Serf's internal keyring queries.
pub const KEY_QUERIES: [&str; 4] = [
    INSTALL_KEY_QUERY,
    USE_KEY_QUERY,
    REMOVE_KEY_QUERY,
    LIST_KEYS_QUERY,
];

/// A cluster-wide keyring operation (Serf's key manager).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOp {
    /// Install a key everywhere (not primary).
    Install,
    /// Make an installed key the primary everywhere.
    Use,
    /// Remove a non-primary key everywhere.
    Remove,
    /// Ask every member for its keys.
    List,
}

impl KeyOp {
    /// The internal query that carries this operation.
    pub fn query_name(self) -> &'static str {
        match self {
            KeyOp::Install => INSTALL_KEY_QUERY,
            KeyOp::Use => USE_KEY_QUERY,
            KeyOp::Remove => REMOVE_KEY_QUERY,
            KeyOp::List => LIST_KEYS_QUERY,
        }
    }
}

/// What the members answered to a [`KeyOp`] (Serf's `KeyResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyResponse {
    /// Members asked (alive ones).
    pub num_nodes: usize,
    /// Members that answered.
    pub num_resp: usize,
    /// Members that answered with an error.
    pub num_err: usize,
    /// Error messages by member.
    pub messages: BTreeMap<String, String>,
    /// Installed keys (base64) → how many members hold them.
    pub keys: BTreeMap<String, usize>,
    /// Primary keys → how many members use them.
    pub primary_keys: BTreeMap<String, usize>,
}

/// The query payload for `op` with a base64 `key` (ignored for [`KeyOp::List`]).
pub fn encode_key_request(op: KeyOp, key: &str) -> Result<Vec<u8>> {
    let raw = if op == KeyOp::List {
        Vec::new()
    } else {
        decode_key_base64(key)?
    };
    let mut w = Writer::with_prefix(&[SerfType::KeyRequest as u8]);
    w.map_len(1);
    w.str("Key").bytes(&raw);
    Ok(w.finish())
}

/// The key a query payload carries; empty when there is none or it cannot be read.
pub fn decode_key_request(payload: &[u8]) -> Vec<u8> {
    payload
        .get(1..)
        .and_then(|b| Fields::decode(b).ok())
        .and_then(|f| f.bytes("Key").ok())
        .unwrap_or_default()
}

/// One member's answer to a key query (Serf's `nodeKeyResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyAnswer {
    /// Whether the operation succeeded.
    pub result: bool,
    /// Why it did not (or a note); empty otherwise.
    pub message: String,
    /// Installed keys, base64 (list only).
    pub keys: Vec<String>,
    /// The primary key, base64 (list only; empty otherwise).
    pub primary_key: String,
}

impl KeyAnswer {
    /// The response payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_prefix(&[SerfType::KeyResponse as u8]);
        w.map_len(4);
        w.str("Keys").array_len(self.keys.len() as u32);
        for k in &self.keys {
            w.str(k);
        }
        w.str("Message").str(&self.message);
        w.str("PrimaryKey").str(&self.primary_key);
        w.str("Result").bool(self.result);
        w.finish()
    }

    /// Read a response payload leniently, as Serf does: missing or mistyped fields keep
    /// their zero value, non-string keys are skipped. `None` when it is not a msgpack map.
    pub fn decode(payload: &[u8]) -> Option<KeyAnswer> {
        let f = Fields::decode(payload.get(1..)?).ok()?;
        let message = if f.has("Message") {
            f.string("Message").unwrap_or_default()
        } else {
            String::new()
        };
        let keys = f
            .array("Keys")
            .map(|ks| {
                ks.iter()
                    .filter_map(|k| value_string(Some(k), "Keys").ok())
                    .collect()
            })
            .unwrap_or_default();
        let primary_key = if f.has("PrimaryKey") {
            f.string("PrimaryKey").unwrap_or_default()
        } else {
            String::new()
        };
        Some(KeyAnswer {
            result: f.bool("Result").unwrap_or(false),
            message,
            keys,
            primary_key,
        })
    }
}

/// Whether a successful query of this name changed the keyring (so it must be saved).
pub fn changes_keyring(query_name: &str) -> bool {
    query_name != LIST_KEYS_QUERY
}

/// Carry out the key query `name` with `payload` on our keyring (`None` when encryption is
/// off) and say what to answer. Keys are only listed for [`LIST_KEYS_QUERY`].
pub fn execute(name: &str, payload: &[u8], keyring: Option<&mut Keyring>) -> KeyAnswer {
    let mut answer = KeyAnswer::default();
    let Some(kr) = keyring else {
        answer.message = if name == LIST_KEYS_QUERY {
            "Keyring is empty (encryption not enabled)".into()
        } else {
            "No keyring to modify (encryption not enabled)".into()
        };
        return answer;
    };
    let key = decode_key_request(payload);
    let r = match name {
        INSTALL_KEY_QUERY => kr.add_key(key),
        USE_KEY_QUERY => kr.use_key(&key),
        REMOVE_KEY_QUERY => kr.remove_key(&key),
        _ => Ok(()),
    };
    match r {
        Err(Error::Crypto(m)) => answer.message = m,
        Err(e) => answer.message = e.to_string(),
        Ok(()) => {
            answer.result = true;
            if !changes_keyring(name) {
                answer.keys = kr.keys().iter().map(|k| encode_key_base64(k)).collect();
                answer.primary_key = kr.primary().map(encode_key_base64).unwrap_or_default();
            }
        }
    }
    answer
}

/// Our response to query `q`, answered as member `from`.
pub fn response_to(q: &Query, from: &str, answer: &KeyAnswer) -> QueryResponse {
    QueryResponse {
        ltime: q.ltime,
        id: q.id,
        from: from.to_string(),
        flags: 0,
        payload: answer.encode(),
    }
}

/// Tallies the answers to one key query into a [`KeyResponse`] (Serf's
/// `streamKeyResp`): acks and repeated answers are skipped.
#[derive(Debug, Default)]
pub struct KeyTally {
    seen: HashSet<String>,
    response: KeyResponse,
}

impl KeyTally {
    /// A tally expecting answers from `num_nodes` members.
    pub fn new(num_nodes: usize) -> Self {
        KeyTally {
            seen: HashSet::new(),
            response: KeyResponse {
                num_nodes,
                ..KeyResponse::default()
            },
        }
    }

    /// Count one response to the query.
    pub fn add(&mut self, r: QueryResponse) {
        if r.flags & QUERY_FLAG_ACK != 0 || !self.seen.insert(r.from.clone()) {
            return;
        }
        let out = &mut self.response;
        out.num_resp += 1;
        let Some(a) = KeyAnswer::decode(&r.payload) else {
            out.num_err += 1;
            out.messages
                .insert(r.from, "failed to decode the response".into());
            return;
        };
        if !a.result {
            out.num_err += 1;
        }
        if !a.message.is_empty() {
            out.messages.insert(r.from.clone(), a.message);
        }
        for k in a.keys {
            *out.keys.entry(k).or_default() += 1;
        }
        if !a.primary_key.is_empty() {
            *out.primary_keys.entry(a.primary_key).or_default() += 1;
        }
    }

    /// Whether every member asked has answered.
    pub fn is_complete(&self) -> bool {
        self.seen.len() >= self.response.num_nodes
    }

    /// The tally so far.
    pub fn finish(self) -> KeyResponse {
        self.response
    }
}

/// The keyring file's text (Serf's format): a JSON list of base64 keys, primary first.
pub fn keyring_file_contents(kr: &Keyring) -> String {
    let keys: Vec<String> = kr
        .keys()
        .iter()
        .map(|k| format!("\"{}\"", encode_key_base64(k)))
        .collect();
    format!("[{}]", keys.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serf::messages::SerfMessage;

    const K1: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=";
    const K2: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=";

    fn query(op: KeyOp, key: &str) -> Query {
        Query {
            ltime: 3,
            id: 77,
            name: op.query_name().into(),
            payload: encode_key_request(op, key).unwrap(),
            ..Query::default()
        }
    }

    #[test]
    fn key_request_round_trips() {
        let p = encode_key_request(KeyOp::Install, K2).unwrap();
        assert_eq!(p[0], SerfType::KeyRequest as u8);
        assert_eq!(decode_key_request(&p), decode_key_base64(K2).unwrap());
        // List sends an empty key, whatever it was given.
        let p = encode_key_request(KeyOp::List, "not base64").unwrap();
        assert_eq!(decode_key_request(&p), Vec::<u8>::new());
        assert!(encode_key_request(KeyOp::Use, "not base64").is_err());
        assert!(encode_key_request(KeyOp::Remove, "AAAA").is_err());
        assert_eq!(decode_key_request(&[]), Vec::<u8>::new());
        assert_eq!(decode_key_request(&[7, 0xc1]), Vec::<u8>::new());
        assert_eq!(
            KEY_QUERIES.map(|n| n.to_string()),
            [KeyOp::Install, KeyOp::Use, KeyOp::Remove, KeyOp::List]
                .map(|o| o.query_name().to_string())
        );
    }

    #[test]
    fn key_answer_round_trips() {
        let a = KeyAnswer {
            result: true,
            message: "note".into(),
            keys: vec![K1.into(), K2.into()],
            primary_key: K1.into(),
        };
        let b = a.encode();
        assert_eq!(b[0], SerfType::KeyResponse as u8);
        assert_eq!(KeyAnswer::decode(&b), Some(a));
        assert_eq!(
            KeyAnswer::decode(&KeyAnswer::default().encode()),
            Some(KeyAnswer::default())
        );
        assert_eq!(KeyAnswer::decode(&[8]), None);
        assert_eq!(KeyAnswer::decode(&[]), None);
        // Lenient: unknown fields ignored, missing ones zero, non-string keys skipped.
        let mut w = Writer::with_prefix(&[SerfType::KeyResponse as u8]);
        w.map_len(3);
        w.str("Keys").array_len(2).uint(5).str(K2);
        w.str("Result").bool(true);
        w.str("Extra").uint(1);
        assert_eq!(
            KeyAnswer::decode(&w.finish()),
            Some(KeyAnswer {
                result: true,
                keys: vec![K2.into()],
                ..KeyAnswer::default()
            })
        );
    }

    #[test]
    fn execute_changes_the_keyring_and_lists_it() {
        let mut kr = Keyring::from_base64(K1).unwrap();
        let q = query(KeyOp::Install, K2);
        let a = execute(&q.name, &q.payload, Some(&mut kr));
        assert_eq!(
            a,
            KeyAnswer {
                result: true,
                ..KeyAnswer::default()
            }
        );
        assert_eq!(kr.keys().len(), 2);
        let q = query(KeyOp::Use, K2);
        assert!(execute(&q.name, &q.payload, Some(&mut kr)).result);
        assert_eq!(
            kr.primary(),
            Some(decode_key_base64(K2).unwrap().as_slice())
        );
        let q = query(KeyOp::List, "");
        let a = execute(&q.name, &q.payload, Some(&mut kr));
        assert!(a.result);
        assert_eq!(a.keys, vec![K2.to_string(), K1.to_string()]);
        assert_eq!(a.primary_key, K2);
        // Removing the primary fails with the keyring's message.
        let q = query(KeyOp::Remove, K2);
        let a = execute(&q.name, &q.payload, Some(&mut kr));
        assert!(!a.result);
        assert_eq!(a.message, "removing the primary key is not allowed");
        let q = query(KeyOp::Remove, K1);
        assert!(execute(&q.name, &q.payload, Some(&mut kr)).result);
        assert_eq!(kr.keys().len(), 1);
        assert_eq!(keyring_file_contents(&kr), format!("[\"{K2}\"]"));
    }

    #[test]
    fn execute_without_encryption_says_so() {
        let q = query(KeyOp::List, "");
        let a = execute(&q.name, &q.payload, None);
        assert!(!a.result);
        assert_eq!(a.message, "Keyring is empty (encryption not enabled)");
        let q = query(KeyOp::Install, K2);
        assert_eq!(
            execute(&q.name, &q.payload, None).message,
            "No keyring to modify (encryption not enabled)"
        );
    }

    #[test]
    fn tally_counts_answers_once_and_skips_acks() {
        let q = query(KeyOp::List, "");
        let mut kr = Keyring::from_base64(K1).unwrap();
        let ok = execute(&q.name, &q.payload, Some(&mut kr));
        let mut t = KeyTally::new(3);
        // Each answer travels as a Serf query response message.
        let wire = SerfMessage::QueryResponse(response_to(&q, "a", &ok)).encode();
        let SerfMessage::QueryResponse(r) = SerfMessage::decode(&wire).unwrap() else {
            panic!("not a query response");
        };
        assert_eq!((r.ltime, r.id, r.from.as_str()), (3, 77, "a"));
        t.add(r.clone());
        t.add(r);
        t.add(QueryResponse {
            from: "b".into(),
            flags: QUERY_FLAG_ACK,
            ..QueryResponse::default()
        });
        assert!(!t.is_complete());
        let bad = KeyAnswer {
            message: "boom".into(),
            ..KeyAnswer::default()
        };
        t.add(response_to(&q, "b", &bad));
        t.add(QueryResponse {
            from: "c".into(),
            payload: vec![8, 0xc1],
            ..QueryResponse::default()
        });
        assert!(t.is_complete());
        let r = t.finish();
        assert_eq!((r.num_nodes, r.num_resp, r.num_err), (3, 3, 2));
        assert_eq!(r.keys.get(K1), Some(&1));
        assert_eq!(r.primary_keys.get(K1), Some(&1));
        assert_eq!(r.messages.get("b").map(String::as_str), Some("boom"));
        assert_eq!(
            r.messages.get("c").map(String::as_str),
            Some("failed to decode the response")
        );
    }
}
