//! Serf messages, carried inside memberlist user messages (type 8).
//!
//! Serf frames each message as `[serf type byte][go-msgpack struct]` (its
//! `encodeMessage`), hands it to memberlist as a broadcast or user message,
//! and puts a push/pull message in memberlist's push/pull user state. Member
//! tags travel in the memberlist node `Meta` as `[0xFF][msgpack map]` (serf
//! `encodeTags`); meta without the magic byte is a bare role name (protocol
//! < 3). Every message carries a Lamport time so receivers can order and
//! de-duplicate intents, events and queries.
//!
//! Kinds we do not model field by field (conflict and keyring messages) are
//! kept as [`SerfMessage::Other`] with their raw body so they can be relayed
//! unchanged.

use crate::error::{Error, Result};
use crate::wire::msgpack::{
    value_bytes, value_string, value_uint, Fields, StructWriter, Value, Writer,
};
use std::collections::BTreeMap;

/// Serf's logical clock value.
pub type LamportTime = u64;

/// Magic first byte of encoded tags.
pub const TAG_MAGIC_BYTE: u8 = 255;
/// Query flag: the sender wants acks.
pub const QUERY_FLAG_ACK: u32 = 1;
/// Query flag: do not re-broadcast.
pub const QUERY_FLAG_NO_BROADCAST: u32 = 2;
/// Version byte of the ping (ack) payload holding a coordinate.
pub const PING_VERSION: u8 = 1;

/// Serf message type bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SerfType {
    /// Leave intent.
    Leave = 0,
    /// Join intent.
    Join = 1,
    /// Push/pull user state.
    PushPull = 2,
    /// User event.
    UserEvent = 3,
    /// Query.
    Query = 4,
    /// Query response.
    QueryResponse = 5,
    /// Name conflict response.
    ConflictResponse = 6,
    /// Keyring request.
    KeyRequest = 7,
    /// Keyring response.
    KeyResponse = 8,
    /// Relayed message.
    Relay = 9,
}

/// A Lamport clock (sans-I/O; the owner serialises access).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LamportClock {
    counter: LamportTime,
}

impl LamportClock {
    /// Current time.
    pub fn time(&self) -> LamportTime {
        self.counter
    }
    /// Tick and return the new time.
    pub fn increment(&mut self) -> LamportTime {
        self.counter += 1;
        self.counter
    }
    /// Witness a remote time: the clock moves to `max(local, remote + 1)`.
    pub fn witness(&mut self, t: LamportTime) {
        if t >= self.counter {
            self.counter = t + 1;
        }
    }
}

/// `messageJoin`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Join {
    /// Lamport time.
    pub ltime: LamportTime,
    /// Node name.
    pub node: String,
}

/// `messageLeave`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Leave {
    /// Lamport time.
    pub ltime: LamportTime,
    /// Node name.
    pub node: String,
    /// Prune (force-leave -prune); `None` when the sender predates the field.
    pub prune: Option<bool>,
}

/// One buffered event in push/pull (`userEvent`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserEventEntry {
    /// Event name.
    pub name: String,
    /// Payload.
    pub payload: Vec<u8>,
}

/// Events at one Lamport time (`userEvents`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserEvents {
    /// Lamport time.
    pub ltime: LamportTime,
    /// Events.
    pub events: Vec<UserEventEntry>,
}

/// `messagePushPull`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushPull {
    /// Sender's clock.
    pub ltime: LamportTime,
    /// Member status times.
    pub status_ltimes: BTreeMap<String, LamportTime>,
    /// Left members.
    pub left_members: Vec<String>,
    /// Event clock.
    pub event_ltime: LamportTime,
    /// Recent events: serf sends its whole ring buffer, empty slots as nil.
    pub events: Vec<Option<UserEvents>>,
    /// Query clock.
    pub query_ltime: LamportTime,
}

/// `messageUserEvent`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserEvent {
    /// Event clock.
    pub ltime: LamportTime,
    /// Name.
    pub name: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// Coalesce.
    pub cc: bool,
}

/// `messageQuery`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    /// Query clock.
    pub ltime: LamportTime,
    /// Random id.
    pub id: u32,
    /// Reply IP.
    pub addr: Vec<u8>,
    /// Reply port.
    pub port: u16,
    /// Source node (newer serf; `None` when absent on the wire).
    pub source_node: Option<String>,
    /// Encoded filters.
    pub filters: Vec<Vec<u8>>,
    /// Flags ([`QUERY_FLAG_ACK`], ...).
    pub flags: u32,
    /// Relay factor.
    pub relay_factor: u8,
    /// Timeout in nanoseconds (Go `time.Duration`).
    pub timeout: i64,
    /// Name.
    pub name: String,
    /// Payload.
    pub payload: Vec<u8>,
}

/// `messageQueryResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryResponse {
    /// Query clock.
    pub ltime: LamportTime,
    /// Query id.
    pub id: u32,
    /// Responding node.
    pub from: String,
    /// Flags (ack = 1).
    pub flags: u32,
    /// Payload.
    pub payload: Vec<u8>,
}

/// Relay header + the message to forward.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Relay {
    /// Destination IP.
    pub dest_ip: Vec<u8>,
    /// Destination port.
    pub dest_port: i64,
    /// IPv6 zone.
    pub dest_zone: String,
    /// Encoded inner serf message.
    pub message: Vec<u8>,
}

/// A Serf message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerfMessage {
    /// 0
    Leave(Leave),
    /// 1
    Join(Join),
    /// 2
    PushPull(PushPull),
    /// 3
    UserEvent(UserEvent),
    /// 4
    Query(Query),
    /// 5
    QueryResponse(QueryResponse),
    /// 9
    Relay(Relay),
    /// 6, 7, 8 and unknown kinds: raw body after the type byte.
    Other {
        /// Type byte.
        kind: u8,
        /// Body.
        body: Vec<u8>,
    },
}

fn ltime_map(v: Vec<(Value, Value)>) -> Result<BTreeMap<String, LamportTime>> {
    v.into_iter()
        .map(|(k, v)| {
            Ok((
                value_string(Some(&k), "StatusLTimes")?,
                value_uint(Some(&v), "StatusLTimes")?,
            ))
        })
        .collect()
}

fn user_events(v: Vec<Value>) -> Result<Vec<Option<UserEvents>>> {
    let mut out = Vec::new();
    for e in v {
        if e == Value::Nil {
            out.push(None);
            continue;
        }
        let f = Fields::from_value(e, "userEvents")?;
        let mut events = Vec::new();
        for ev in f.array("Events")? {
            let g = Fields::from_value(ev, "userEvent")?;
            events.push(UserEventEntry {
                name: g.string("Name")?,
                payload: g.bytes("Payload")?,
            });
        }
        out.push(Some(UserEvents {
            ltime: f.uint("LTime")?,
            events,
        }));
    }
    Ok(out)
}

impl SerfMessage {
    /// Decode `[type][body]` (the payload of a memberlist user message).
    pub fn decode(buf: &[u8]) -> Result<SerfMessage> {
        let (&ty, body) = buf
            .split_first()
            .ok_or(Error::Truncated("serf message type"))?;
        let fields = || Fields::decode(body);
        Ok(match ty {
            0 => {
                let f = fields()?;
                SerfMessage::Leave(Leave {
                    ltime: f.uint("LTime")?,
                    node: f.string("Node")?,
                    prune: if f.has("Prune") {
                        Some(f.bool("Prune")?)
                    } else {
                        None
                    },
                })
            }
            1 => {
                let f = fields()?;
                SerfMessage::Join(Join {
                    ltime: f.uint("LTime")?,
                    node: f.string("Node")?,
                })
            }
            2 => {
                let f = fields()?;
                SerfMessage::PushPull(PushPull {
                    ltime: f.uint("LTime")?,
                    status_ltimes: ltime_map(f.map("StatusLTimes")?)?,
                    left_members: f
                        .array("LeftMembers")?
                        .iter()
                        .map(|v| value_string(Some(v), "LeftMembers"))
                        .collect::<Result<_>>()?,
                    event_ltime: f.uint("EventLTime")?,
                    events: user_events(f.array("Events")?)?,
                    query_ltime: f.uint("QueryLTime")?,
                })
            }
            3 => {
                let f = fields()?;
                SerfMessage::UserEvent(UserEvent {
                    ltime: f.uint("LTime")?,
                    name: f.string("Name")?,
                    payload: f.bytes("Payload")?,
                    cc: f.bool("CC")?,
                })
            }
            4 => {
                let f = fields()?;
                SerfMessage::Query(Query {
                    ltime: f.uint("LTime")?,
                    id: f.u32("ID")?,
                    addr: f.bytes("Addr")?,
                    port: f.u16("Port")?,
                    source_node: if f.has("SourceNode") {
                        Some(f.string("SourceNode")?)
                    } else {
                        None
                    },
                    filters: f
                        .array("Filters")?
                        .iter()
                        .map(|v| value_bytes(Some(v), "Filters"))
                        .collect::<Result<_>>()?,
                    flags: f.u32("Flags")?,
                    relay_factor: f.u8("RelayFactor")?,
                    timeout: f.int("Timeout")?,
                    name: f.string("Name")?,
                    payload: f.bytes("Payload")?,
                })
            }
            5 => {
                let f = fields()?;
                SerfMessage::QueryResponse(QueryResponse {
                    ltime: f.uint("LTime")?,
                    id: f.u32("ID")?,
                    from: f.string("From")?,
                    flags: f.u32("Flags")?,
                    payload: f.bytes("Payload")?,
                })
            }
            9 => {
                let (f, n) = Fields::read(body)?;
                let d = match f.get("DestAddr") {
                    Some(v) => Fields::from_value(v.clone(), "DestAddr")?,
                    None => Fields::from_value(Value::Nil, "DestAddr")?,
                };
                SerfMessage::Relay(Relay {
                    dest_ip: d.bytes("IP")?,
                    dest_port: d.int("Port")?,
                    dest_zone: d.string("Zone")?,
                    message: body[n..].to_vec(),
                })
            }
            kind => SerfMessage::Other {
                kind,
                body: body.to_vec(),
            },
        })
    }

    /// Encode as `[type][body]`, struct fields sorted by name like serf.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_prefix(&[self.kind()]);
        let mut s = StructWriter::default();
        match self {
            SerfMessage::Leave(m) => {
                s.field("LTime").uint(m.ltime);
                s.field("Node").str(&m.node);
                if let Some(p) = m.prune {
                    s.field("Prune").bool(p);
                }
            }
            SerfMessage::Join(m) => {
                s.field("LTime").uint(m.ltime);
                s.field("Node").str(&m.node);
            }
            SerfMessage::PushPull(m) => {
                s.field("LTime").uint(m.ltime);
                let st = s.field("StatusLTimes");
                st.map_len(m.status_ltimes.len() as u32);
                for (k, v) in &m.status_ltimes {
                    st.str(k).uint(*v);
                }
                let lm = s.field("LeftMembers");
                lm.array_len(m.left_members.len() as u32);
                for l in &m.left_members {
                    lm.str(l);
                }
                s.field("EventLTime").uint(m.event_ltime);
                let ev = s.field("Events");
                ev.array_len(m.events.len() as u32);
                for e in &m.events {
                    match e {
                        None => {
                            ev.nil();
                        }
                        Some(e) => {
                            let mut es = StructWriter::default();
                            es.field("LTime").uint(e.ltime);
                            let list = es.field("Events");
                            list.array_len(e.events.len() as u32);
                            for x in &e.events {
                                let mut xs = StructWriter::default();
                                xs.field("Name").str(&x.name);
                                xs.field("Payload").bytes(&x.payload);
                                xs.write_to(list);
                            }
                            es.write_to(ev);
                        }
                    }
                }
                s.field("QueryLTime").uint(m.query_ltime);
            }
            SerfMessage::UserEvent(m) => {
                s.field("LTime").uint(m.ltime);
                s.field("Name").str(&m.name);
                s.field("Payload").bytes(&m.payload);
                s.field("CC").bool(m.cc);
            }
            SerfMessage::Query(m) => {
                s.field("LTime").uint(m.ltime);
                s.field("ID").uint(m.id.into());
                s.field("Addr").bytes(&m.addr);
                s.field("Port").uint(m.port.into());
                if let Some(n) = &m.source_node {
                    s.field("SourceNode").str(n);
                }
                let f = s.field("Filters");
                if m.filters.is_empty() {
                    f.nil();
                } else {
                    f.array_len(m.filters.len() as u32);
                    for x in &m.filters {
                        f.bytes(x);
                    }
                }
                s.field("Flags").uint(m.flags.into());
                s.field("RelayFactor").uint(m.relay_factor.into());
                s.field("Timeout").int(m.timeout);
                s.field("Name").str(&m.name);
                s.field("Payload").bytes(&m.payload);
            }
            SerfMessage::QueryResponse(m) => {
                s.field("LTime").uint(m.ltime);
                s.field("ID").uint(m.id.into());
                s.field("From").str(&m.from);
                s.field("Flags").uint(m.flags.into());
                s.field("Payload").bytes(&m.payload);
            }
            SerfMessage::Relay(m) => {
                let mut d = StructWriter::default();
                d.field("IP").bytes(&m.dest_ip);
                d.field("Port").int(m.dest_port);
                d.field("Zone").str(&m.dest_zone);
                d.write_to(s.field("DestAddr"));
                s.write_to(&mut w);
                w.buf.extend_from_slice(&m.message);
                return w.finish();
            }
            SerfMessage::Other { body, .. } => {
                w.buf.extend_from_slice(body);
                return w.finish();
            }
        }
        s.write_to(&mut w);
        w.finish()
    }

    /// The type byte.
    pub fn kind(&self) -> u8 {
        match self {
            SerfMessage::Leave(_) => SerfType::Leave as u8,
            SerfMessage::Join(_) => SerfType::Join as u8,
            SerfMessage::PushPull(_) => SerfType::PushPull as u8,
            SerfMessage::UserEvent(_) => SerfType::UserEvent as u8,
            SerfMessage::Query(_) => SerfType::Query as u8,
            SerfMessage::QueryResponse(_) => SerfType::QueryResponse as u8,
            SerfMessage::Relay(_) => SerfType::Relay as u8,
            SerfMessage::Other { kind, .. } => *kind,
        }
    }
}

/// Encode member tags for node meta: `[0xFF][msgpack map]`, keys sorted.
pub fn encode_tags(tags: &BTreeMap<String, String>) -> Vec<u8> {
    let mut w = Writer::with_prefix(&[TAG_MAGIC_BYTE]);
    w.map_len(tags.len() as u32);
    for (k, v) in tags {
        w.str(k).str(v);
    }
    w.finish()
}

/// Decode node meta into tags. Meta without the magic byte is the role
/// name of a protocol < 3 member.
pub fn decode_tags(meta: &[u8]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    match meta.split_first() {
        None => {}
        Some((&TAG_MAGIC_BYTE, body)) => {
            let v = crate::wire::msgpack::decode_value(body)?;
            match v {
                Value::Map(m) => {
                    for (k, v) in m {
                        out.insert(
                            value_string(Some(&k), "tag key")?,
                            value_string(Some(&v), "tag value")?,
                        );
                    }
                }
                Value::Nil => {}
                _ => return Err(Error::Msgpack("tags are not a map".into())),
            }
        }
        Some(_) => {
            out.insert(
                "role".to_string(),
                String::from_utf8_lossy(meta).into_owned(),
            );
        }
    }
    Ok(out)
}

pub use super::coordinate::Coordinate;

/// Largest ack payload we decode: an 8-dimension coordinate takes about 130 bytes, so anything
/// near this is not a coordinate, and decoding it would only cost time.
pub const MAX_PING_PAYLOAD: usize = 1024;
/// Most dimensions a decoded coordinate may have (Serf uses 8).
pub const MAX_COORDINATE_DIMENSIONS: usize = 64;

/// Decode Serf's ack payload `[1][msgpack Coordinate]`.
pub fn decode_ping_payload(buf: &[u8]) -> Result<Coordinate> {
    if buf.len() > MAX_PING_PAYLOAD {
        return Err(Error::Msgpack(format!(
            "ping payload of {} bytes is larger than {MAX_PING_PAYLOAD}",
            buf.len()
        )));
    }
    let (&v, body) = buf.split_first().ok_or(Error::Truncated("ping payload"))?;
    if v != PING_VERSION {
        return Err(Error::Msgpack(format!("unsupported ping version {v}")));
    }
    let f = Fields::decode(body)?;
    let vec = f.array("Vec")?;
    if vec.len() > MAX_COORDINATE_DIMENSIONS {
        return Err(Error::Msgpack(format!(
            "coordinate has {} dimensions",
            vec.len()
        )));
    }
    let vec = vec
        .into_iter()
        .map(|x| match x {
            Value::Float(f) => Ok(f),
            Value::Uint(u) => Ok(u as f64),
            Value::Int(i) => Ok(i as f64),
            _ => Err(Error::Msgpack("coordinate element is not a number".into())),
        })
        .collect::<Result<_>>()?;
    Ok(Coordinate {
        vec,
        error: f.float("Error")?,
        adjustment: f.float("Adjustment")?,
        height: f.float("Height")?,
    })
}

/// Encode Serf's ack payload.
pub fn encode_ping_payload(c: &Coordinate) -> Vec<u8> {
    let mut w = Writer::with_prefix(&[PING_VERSION]);
    let mut s = StructWriter::default();
    let v = s.field("Vec");
    v.array_len(c.vec.len() as u32);
    for x in &c.vec {
        v.f64(*x);
    }
    s.field("Error").f64(c.error);
    s.field("Adjustment").f64(c.adjustment);
    s.field("Height").f64(c.height);
    s.write_to(&mut w);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lamport() {
        let mut c = LamportClock::default();
        assert_eq!(c.increment(), 1);
        c.witness(10);
        assert_eq!(c.time(), 11);
        c.witness(3);
        assert_eq!(c.time(), 11);
    }

    #[test]
    fn tags_roundtrip_and_legacy_role() {
        let mut t = BTreeMap::new();
        t.insert("role".to_string(), "consul".to_string());
        t.insert("dc".to_string(), "dc1".to_string());
        let enc = encode_tags(&t);
        assert_eq!(enc[0], 0xff);
        assert_eq!(decode_tags(&enc).unwrap(), t);
        assert_eq!(decode_tags(b"web").unwrap()["role"], "web");
        assert!(decode_tags(&[]).unwrap().is_empty());
    }

    #[test]
    fn coordinate_roundtrip() {
        let c = Coordinate {
            vec: vec![0.5, -1.0, 0.0],
            error: 1.5,
            adjustment: 0.0,
            height: 1e-5,
        };
        assert_eq!(decode_ping_payload(&encode_ping_payload(&c)).unwrap(), c);
    }

    /// An ack payload HashiCorp's serf sent (golden capture, `plain.udp-tcp-packets.jsonl`):
    /// we decode it and encode it back byte for byte (keys sorted, float64 throughout).
    #[test]
    fn serf_ack_payload_roundtrips_byte_for_byte() {
        let hex = "0184aa41646a7573746d656e74cb3ef8bb304ad4174ca54572726f72cb3ff6f6acf4af9ec9a6\
                   486569676874cb3ee4f8b588e368f1a356656398cbbf0efd0b53b94312cbbf0a432bf9371899\
                   cb3f0a1507ec01b0becbbf07c88303c5fba4cbbf050820d01d74a9cb3f0cfddcc71cb675cb3f\
                   0c87053c9cd5b0cb3eb287af2a9c495a";
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let c = decode_ping_payload(&bytes).unwrap();
        assert_eq!(c.vec.len(), 8);
        assert!(c.is_valid());
        assert!(c.error > 0.0 && c.error <= 1.5, "{c:?}");
        assert!(c.height >= 10.0e-6, "{c:?}");
        assert_eq!(encode_ping_payload(&c), bytes);
    }

    #[test]
    fn hostile_ping_payloads_are_refused() {
        assert!(decode_ping_payload(&[]).is_err());
        assert!(decode_ping_payload(&[2, 0x80]).is_err(), "unknown version");
        assert!(decode_ping_payload(&[1, 0xc1]).is_err());
        let mut big = vec![1u8];
        big.resize(MAX_PING_PAYLOAD + 1, 0);
        assert!(decode_ping_payload(&big).is_err());
        let many = Coordinate {
            vec: vec![0.0; MAX_COORDINATE_DIMENSIONS + 1],
            ..Coordinate::default()
        };
        let mut w = Writer::with_prefix(&[PING_VERSION]);
        w.map_len(1).key("Vec").array_len(many.vec.len() as u32);
        for _ in &many.vec {
            w.uint(0);
        }
        assert!(decode_ping_payload(&w.finish()).is_err());
        let mut w = Writer::with_prefix(&[PING_VERSION]);
        w.map_len(1).key("Vec").array_len(1).str("x");
        assert!(decode_ping_payload(&w.finish()).is_err());
    }

    #[test]
    fn every_serf_message_roundtrips() {
        let ev = UserEvents {
            ltime: 3,
            events: vec![UserEventEntry {
                name: "deploy".into(),
                payload: b"v42".to_vec(),
            }],
        };
        let inner = SerfMessage::Join(Join {
            ltime: 9,
            node: "x".into(),
        });
        let msgs = vec![
            SerfMessage::Leave(Leave {
                ltime: 2,
                node: "c".into(),
                prune: Some(true),
            }),
            SerfMessage::Leave(Leave {
                ltime: 2,
                node: "c".into(),
                prune: None,
            }),
            inner.clone(),
            SerfMessage::PushPull(PushPull {
                ltime: 5,
                status_ltimes: [("a".to_string(), 1), ("b".to_string(), 2)].into(),
                left_members: vec!["c".into()],
                event_ltime: 4,
                events: vec![None, Some(ev), None],
                query_ltime: 7,
            }),
            SerfMessage::UserEvent(UserEvent {
                ltime: 1,
                name: "deploy".into(),
                payload: b"v42".to_vec(),
                cc: true,
            }),
            SerfMessage::Query(Query {
                ltime: 1,
                id: 42,
                addr: vec![127, 0, 0, 1],
                port: 8301,
                source_node: Some("a".into()),
                filters: vec![vec![0, 1], vec![2]],
                flags: QUERY_FLAG_ACK | QUERY_FLAG_NO_BROADCAST,
                relay_factor: 2,
                timeout: 5_000_000_000,
                name: "uptime".into(),
                payload: b"p".to_vec(),
            }),
            SerfMessage::QueryResponse(QueryResponse {
                ltime: 1,
                id: 42,
                from: "b".into(),
                flags: 1,
                payload: b"up 3 days".to_vec(),
            }),
            SerfMessage::Relay(Relay {
                dest_ip: vec![127, 0, 0, 2],
                dest_port: 8301,
                dest_zone: String::new(),
                message: inner.encode(),
            }),
            SerfMessage::Other {
                kind: 7,
                body: vec![0x80],
            },
        ];
        for m in msgs {
            let b = m.encode();
            assert_eq!(b[0], m.kind());
            assert_eq!(SerfMessage::decode(&b).unwrap(), m);
        }
        assert!(SerfMessage::decode(&[]).is_err());
        assert!(SerfMessage::decode(&[1, 0x91]).is_err());
    }
}
