//! Decode HashiCorp serf's captured traffic (../shared/golden/serf, copied to tests/golden).

use proconsul_gossip::serf::messages::{self as serf, SerfMessage};
use proconsul_gossip::wire::messages::{Alive, Message, PushPull, Transport};
use proconsul_gossip::wire::security::{self, Keyring};
use std::collections::BTreeMap;
use std::path::PathBuf;

const KEY_B64: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=";

struct Rec {
    proto: String,
    src: String,
    dst: String,
    bytes: Vec<u8>,
}

fn golden_dir() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // A copy of ../shared/golden/serf ships with the crate so the tests never depend on the
    // checkout's surroundings; the shared copy is the source of truth.
    for cand in [
        here.join("tests/golden"),
        here.join("../../../shared/golden/serf"),
        PathBuf::from("/work/shared/golden/serf"),
    ] {
        if cand.exists() {
            return cand;
        }
    }
    panic!("golden serf directory not found");
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn load(name: &str) -> Vec<Rec> {
    let text = std::fs::read_to_string(golden_dir().join(name)).expect("read golden");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            Rec {
                proto: if v.get("proto").is_some() {
                    s("proto")
                } else {
                    "tcp".into()
                },
                src: if v.get("src").is_some() {
                    s("src")
                } else {
                    s("from")
                },
                dst: if v.get("dst").is_some() {
                    s("dst")
                } else {
                    s("to")
                },
                bytes: unhex(v["hex"].as_str().expect("hex field")),
            }
        })
        .collect()
}

fn keyring() -> Keyring {
    Keyring::from_base64(KEY_B64).unwrap()
}

/// Decode all messages of one stream direction (possibly encrypted).
fn decode_stream(mut buf: &[u8], kr: Option<&Keyring>) -> Vec<Message> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        match kr {
            Some(kr) => {
                let (plain, used) = security::decrypt_stream(kr, buf, b"").expect("decrypt stream");
                let (m, n) = Message::decode_stream(&plain).expect("decode decrypted stream");
                assert_eq!(n, plain.len(), "decrypted stream fully consumed");
                out.push(m);
                buf = &buf[used..];
            }
            None => {
                let (m, n) = Message::decode_stream(buf).expect("decode stream");
                out.push(m);
                buf = &buf[n..];
            }
        }
    }
    out
}

fn decode_record(r: &Rec, kr: Option<&Keyring>) -> Vec<Message> {
    if r.proto == "udp" {
        let plain = match kr {
            Some(kr) => security::decrypt_packet(kr, &r.bytes, b"").expect("decrypt udp"),
            None => r.bytes.clone(),
        };
        vec![Message::decode_packet(&plain).expect("decode udp")]
    } else {
        decode_stream(&r.bytes, kr)
    }
}

const FILES: [(&str, bool); 4] = [
    ("plain.udp-tcp-packets.jsonl", false),
    ("plain.tcp-streams.jsonl", false),
    ("encrypted.udp-tcp-packets.jsonl", true),
    ("encrypted.tcp-streams.jsonl", true),
];

/// Everything found in one capture file, flattened.
#[derive(Default)]
struct Seen {
    packets: usize,
    leaves: Vec<Message>,
    serf: Vec<SerfMessage>,
    tags: BTreeMap<String, BTreeMap<String, String>>,
    coords: usize,
}

fn collect(file: &str, enc: bool) -> Seen {
    let kr = keyring();
    let mut seen = Seen::default();
    for r in load(file) {
        for m in decode_record(&r, enc.then_some(&kr)) {
            seen.packets += 1;
            for leaf in m.flatten() {
                match &leaf {
                    Message::User(u) => seen.serf.push(SerfMessage::decode(u).expect("serf msg")),
                    Message::PushPull(pp) => {
                        seen.serf
                            .push(SerfMessage::decode(&pp.user_state).expect("serf pp"));
                        for n in &pp.nodes {
                            let t = serf::decode_tags(&n.meta).expect("tags");
                            seen.tags.insert(n.name.clone(), t);
                        }
                    }
                    Message::Alive(a) => {
                        let t = serf::decode_tags(&a.meta).expect("tags");
                        seen.tags.insert(a.node.clone(), t);
                    }
                    Message::Ack(a) if !a.payload.is_empty() => {
                        let c = serf::decode_ping_payload(&a.payload).expect("coordinate");
                        assert_eq!(c.vec.len(), 8, "serf coordinates have 8 dimensions");
                        seen.coords += 1;
                    }
                    _ => {}
                }
                seen.leaves.push(leaf);
            }
        }
    }
    seen
}

#[test]
fn every_golden_packet_decodes_with_expected_content() {
    for (file, enc) in FILES {
        let seen = collect(file, enc);
        assert!(seen.packets > 0, "{file}: no packets");
        // tags of a and b as configured; c has none
        let tags = &seen.tags;
        assert_eq!(
            tags["a"].get("role").map(String::as_str),
            Some("node"),
            "{file}"
        );
        assert_eq!(
            tags["a"].get("dc").map(String::as_str),
            Some("dc1"),
            "{file}"
        );
        assert_eq!(
            tags["b"].get("role").map(String::as_str),
            Some("consul"),
            "{file}"
        );
        assert!(tags["c"].is_empty(), "{file}");

        if file.contains("tcp-streams") {
            // push/pull joins of b and c via a
            let pps: Vec<&PushPull> = seen
                .leaves
                .iter()
                .filter_map(|m| match m {
                    Message::PushPull(p) => Some(p),
                    _ => None,
                })
                .collect();
            assert!(pps.len() >= 4, "{file}: {} push/pulls", pps.len());
            assert!(pps.iter().all(|p| p.join));
            for p in &pps {
                for n in &p.nodes {
                    assert_eq!(n.port, 8301);
                    assert_eq!(n.vsn, vec![1, 5, 2, 2, 5, 5]);
                    assert_eq!(n.addr[..3], [127, 0, 0]);
                }
            }
            continue;
        }

        let alive: Vec<&Alive> = seen
            .leaves
            .iter()
            .filter_map(|m| match m {
                Message::Alive(a) => Some(a),
                _ => None,
            })
            .collect();
        let a = alive.iter().find(|a| a.node == "a").expect("alive a");
        assert_eq!((a.addr.as_slice(), a.port), (&[127u8, 0, 0, 61][..], 8301));
        assert!(seen.leaves.iter().any(|m| matches!(m, Message::Ping(p)
            if p.source_port == 8301 && !p.source_node.is_empty())));
        assert!(seen.coords > 0, "{file}: acks carry coordinates");
        // b is killed: suspected, then declared dead by someone else
        assert!(
            seen.leaves
                .iter()
                .any(|m| matches!(m, Message::Suspect(s) if s.node == "b")),
            "{file}"
        );
        assert!(
            seen.leaves
                .iter()
                .any(|m| matches!(m, Message::Dead(d) if d.node == "b" && d.from != "b")),
            "{file}"
        );
        // c leaves: memberlist dead-from-self, serf leave intent
        assert!(
            seen.leaves
                .iter()
                .any(|m| matches!(m, Message::Dead(d) if d.node == "c" && d.from == "c")),
            "{file}"
        );
        assert!(
            seen.serf
                .iter()
                .any(|m| matches!(m, SerfMessage::Leave(l) if l.node == "c")),
            "{file}"
        );
        assert!(
            seen.serf
                .iter()
                .any(|m| matches!(m, SerfMessage::Join(j) if j.node == "b")),
            "{file}"
        );
        assert!(
            seen.serf
                .iter()
                .any(|m| matches!(m, SerfMessage::UserEvent(e)
            if e.name == "deploy" && e.payload == b"v42")),
            "{file}"
        );
        let q = seen
            .serf
            .iter()
            .find_map(|m| match m {
                SerfMessage::Query(q) => Some(q),
                _ => None,
            })
            .expect("query");
        assert_eq!(q.name, "uptime");
        assert_eq!(q.source_node.as_deref(), Some("a"));
        assert_eq!(q.flags & serf::QUERY_FLAG_ACK, serf::QUERY_FLAG_ACK);
        assert_eq!(q.timeout, 1_000_000_000);
        let responders: std::collections::BTreeSet<&str> = seen
            .serf
            .iter()
            .filter_map(|m| match m {
                SerfMessage::QueryResponse(r) if r.id == q.id => Some(r.from.as_str()),
                _ => None,
            })
            .collect();
        assert!(responders.contains("b"), "{file}: {responders:?}");
    }
}

/// decode → encode → decode gives equal messages; where our encoding is
/// byte-identical to serf's, check that too and count.
#[test]
fn golden_roundtrip() {
    let kr = keyring();
    for (file, enc) in FILES {
        let (mut total, mut identical) = (0, 0);
        for r in load(file) {
            let t = if r.proto == "udp" {
                Transport::Packet
            } else {
                Transport::Stream
            };
            let plains: Vec<Vec<u8>> = match (enc, t) {
                (false, Transport::Packet) => vec![r.bytes.clone()],
                (true, Transport::Packet) => {
                    vec![security::decrypt_packet(&kr, &r.bytes, b"").unwrap()]
                }
                (false, Transport::Stream) => {
                    let mut v = Vec::new();
                    let mut b = r.bytes.as_slice();
                    while !b.is_empty() {
                        let (_, n) = Message::decode_stream(b).unwrap();
                        v.push(b[..n].to_vec());
                        b = &b[n..];
                    }
                    v
                }
                (true, Transport::Stream) => {
                    let mut v = Vec::new();
                    let mut b = r.bytes.as_slice();
                    while !b.is_empty() {
                        let (p, n) = security::decrypt_stream(&kr, b, b"").unwrap();
                        v.push(p);
                        b = &b[n..];
                    }
                    v
                }
            };
            for plain in plains {
                let (m, _) = Message::decode_one(&plain, t).unwrap();
                let bytes = m.encode(t).unwrap();
                let (m2, n2) = Message::decode_one(&bytes, t).unwrap();
                assert_eq!(m, m2, "{file}: roundtrip");
                assert_eq!(n2, bytes.len());
                // serf messages inside round-trip too
                for leaf in m.flatten() {
                    let serf_bytes = match &leaf {
                        Message::User(u) => Some(u.clone()),
                        Message::PushPull(p) => Some(p.user_state.clone()),
                        _ => None,
                    };
                    if let Some(sb) = serf_bytes {
                        let sm = SerfMessage::decode(&sb).unwrap();
                        assert_eq!(SerfMessage::decode(&sm.encode()).unwrap(), sm);
                        // Serf maps (StatusLTimes) have Go's random order; single-entry
                        // ones and everything else must be byte-identical.
                        let multi_map =
                            matches!(&sm, SerfMessage::PushPull(p) if p.status_ltimes.len() > 1);
                        if !multi_map {
                            assert_eq!(sm.encode(), sb, "{file}: serf bytes {sm:?}");
                        }
                    }
                }
                total += 1;
                if bytes == plain {
                    identical += 1;
                }
            }
        }
        println!("{file}: {identical}/{total} byte-identical re-encodings");
        assert_eq!(
            identical, total,
            "{file}: only {identical}/{total} identical"
        );
    }
}

/// Every uncompressed, CRC'd or compound plain UDP packet re-encodes to the
/// exact bytes serf sent.
#[test]
fn uncompressed_udp_is_byte_identical() {
    fn has_compress(m: &Message) -> bool {
        match m {
            Message::Compress(_) => true,
            Message::Crc(i) => has_compress(i),
            Message::Compound(p) => p.iter().any(has_compress),
            _ => false,
        }
    }
    let mut n = 0;
    for r in load("plain.udp-tcp-packets.jsonl") {
        if r.proto != "udp" {
            continue;
        }
        let m = Message::decode_packet(&r.bytes).unwrap();
        if has_compress(&m) {
            continue;
        }
        assert_eq!(
            m.encode_packet().unwrap(),
            r.bytes,
            "{} -> {}: {m:?}",
            r.src,
            r.dst
        );
        n += 1;
    }
    assert!(n > 20, "{n}");
}

/// With the nonce taken from the capture, our AES-GCM framing reproduces
/// serf's ciphertext exactly (packets and streams).
#[test]
fn encryption_is_byte_identical_given_the_nonce() {
    let kr = keyring();
    let mut n = 0;
    for file in [
        "encrypted.udp-tcp-packets.jsonl",
        "encrypted.tcp-streams.jsonl",
    ] {
        for r in load(file) {
            if r.proto == "udp" {
                let plain = security::decrypt_packet(&kr, &r.bytes, b"").unwrap();
                assert_eq!(
                    r.bytes[0], 1,
                    "serf 0.8 / memberlist protocol 5 uses version 1"
                );
                let nonce: [u8; 12] = r.bytes[1..13].try_into().unwrap();
                let again = security::encrypt_packet(&kr, 1, nonce, &plain, b"").unwrap();
                assert_eq!(again, r.bytes, "{} -> {}", r.src, r.dst);
            } else {
                let mut b = r.bytes.as_slice();
                while !b.is_empty() {
                    let (plain, used) = security::decrypt_stream(&kr, b, b"").unwrap();
                    let nonce: [u8; 12] = b[6..18].try_into().unwrap();
                    let again = security::encrypt_stream(&kr, b[5], nonce, &plain, b"").unwrap();
                    assert_eq!(again, &b[..used]);
                    b = &b[used..];
                }
            }
            n += 1;
        }
    }
    assert!(n > 100);
}

#[test]
fn wrong_key_rejects_every_encrypted_packet() {
    let wrong = Keyring::new(b"12345678901234567890123456789013".to_vec(), vec![]).unwrap();
    for r in load("encrypted.udp-tcp-packets.jsonl") {
        if r.proto == "udp" {
            assert!(security::decrypt_packet(&wrong, &r.bytes, b"").is_err());
            // the right key with a label as associated data also fails
            assert!(security::decrypt_packet(&keyring(), &r.bytes, b"dc1").is_err());
        } else {
            assert!(security::decrypt_stream(&wrong, &r.bytes, b"").is_err());
        }
    }
}

/// Deterministic mutation fuzzing over real packets: truncations and bit
/// flips must give errors or values, never panics.
#[test]
fn mutated_golden_packets_never_panic() {
    let kr = keyring();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (file, _) in FILES {
        for r in load(file) {
            let b = &r.bytes;
            for cut in 0..b.len().min(300) {
                let _ = Message::decode_packet(&b[..cut]);
                let _ = Message::decode_stream(&b[..cut]);
                let _ = security::decrypt_stream(&kr, &b[..cut], b"");
            }
            for _ in 0..200 {
                let mut m = b.clone();
                let i = (rnd() as usize) % m.len();
                m[i] ^= 1 << (rnd() % 8);
                if rnd() % 4 == 0 {
                    let j = (rnd() as usize) % m.len();
                    m[j] = 0xff;
                }
                if let Ok(msg) = Message::decode_packet(&m) {
                    for leaf in msg.flatten() {
                        if let Message::User(u) = leaf {
                            let _ = SerfMessage::decode(&u);
                        }
                    }
                }
                let _ = Message::decode_stream(&m);
                let _ = security::decrypt_packet(&kr, &m, b"");
            }
        }
    }
}

/// The whole receive pipeline (`WireConfig`) on the captures: the encrypted
/// pool decodes with the key; the plain capture is refused by an encrypted
/// pool that verifies incoming traffic and accepted by one that does not.
#[test]
fn wire_config_pipeline_on_golden() {
    use proconsul_gossip::wire::WireConfig;
    let encrypted = WireConfig {
        keyring: Some(keyring()),
        ..Default::default()
    };
    let lax = WireConfig {
        keyring: Some(keyring()),
        verify_incoming: false,
        ..Default::default()
    };
    for r in load("encrypted.udp-tcp-packets.jsonl") {
        if r.proto == "udp" {
            encrypted.decode_packet(&r.bytes).unwrap();
            // Without a key the ciphertext is just bytes: version byte 1 reads as
            // an indirect-ping type, so it may even "decode"; it must not panic.
            let _ = WireConfig::default().decode_packet(&r.bytes);
        } else {
            let mut b = r.bytes.as_slice();
            while !b.is_empty() {
                let (_, n) = encrypted.decode_stream(b).unwrap();
                b = &b[n..];
            }
        }
    }
    for r in load("plain.udp-tcp-packets.jsonl") {
        if r.proto == "udp" {
            assert!(encrypted.decode_packet(&r.bytes).is_err());
            lax.decode_packet(&r.bytes).unwrap();
            WireConfig::default().decode_packet(&r.bytes).unwrap();
        } else {
            assert!(encrypted.decode_stream(&r.bytes).is_err());
            lax.decode_stream(&r.bytes).unwrap();
        }
    }
}
