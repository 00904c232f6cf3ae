//! memberlist's messages (the types of its `net.go`): bytes → wrappers → typed messages.
//!
//! A memberlist UDP packet, outside in, is: optional label header
//! `[0xF4, len, label]` → optional encryption (see [`super::security`]) →
//! optional CRC `[12, crc32 BE]` → optional compression
//! `[9, msgpack{Algo, Buf}]` (LZW, LSB, 8-bit literals) → either one message
//! `[type][msgpack body]` or a compound `[7, n, n × u16 BE len, bodies]`.
//! The wrappers themselves are built and stripped in [`super::framing`].
//!
//! The wrappers are kept as [`Message`] variants rather than stripped, so that
//! `decode` followed by `encode` reproduces the original bytes and the
//! protocol core can still see how a peer framed its packet. Use
//! [`Message::flatten`] to get the leaf messages.
//!
//! TCP streams reuse the same type bytes but two messages differ: push/pull
//! (`[6][header][node states...][user state]`) only exists on streams, and a
//! user message there carries a `{UserMsgLen}` header. Hence [`Transport`].

use super::framing::{
    add_crc, check_crc, compress_payload, decompress_body, make_compound, split_compound,
};
use super::msgpack::{Fields, StructWriter, Writer};
use crate::error::{Error, Result};

/// memberlist message type bytes (`messageType` in net.go).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// Direct probe.
    Ping = 0,
    /// Ask a third node to probe for us.
    IndirectPing = 1,
    /// Probe answer.
    AckResp = 2,
    /// Suspicion broadcast.
    Suspect = 3,
    /// Alive broadcast (also join).
    Alive = 4,
    /// Dead broadcast (also leave).
    Dead = 5,
    /// TCP state exchange.
    PushPull = 6,
    /// Several messages in one packet.
    Compound = 7,
    /// Delegate (Serf) payload.
    User = 8,
    /// LZW wrapper.
    Compress = 9,
    /// Encrypted TCP stream wrapper.
    Encrypt = 10,
    /// Indirect probe negative answer.
    NackResp = 11,
    /// CRC32 wrapper.
    HasCrc = 12,
    /// Error reply on a stream.
    Err = 13,
}

impl MessageType {
    /// Parse a type byte.
    pub fn from_u8(b: u8) -> Option<MessageType> {
        use MessageType::*;
        Some(match b {
            0 => Ping,
            1 => IndirectPing,
            2 => AckResp,
            3 => Suspect,
            4 => Alive,
            5 => Dead,
            6 => PushPull,
            7 => Compound,
            8 => User,
            9 => Compress,
            10 => Encrypt,
            11 => NackResp,
            12 => HasCrc,
            13 => Err,
            _ => return None,
        })
    }
}

/// Node states in push/pull (`nodeStateType`).
pub mod node_state {
    /// alive
    pub const ALIVE: i64 = 0;
    /// suspect
    pub const SUSPECT: i64 = 1;
    /// dead
    pub const DEAD: i64 = 2;
    /// left (memberlist >= 0.2)
    pub const LEFT: i64 = 3;
}

/// Where a message travels: the framing of user and push/pull differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP datagram.
    Packet,
    /// TCP stream.
    Stream,
}

/// `ping`: direct probe.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ping {
    /// Sequence number echoed by the ack.
    pub seq_no: u32,
    /// Intended recipient's name.
    pub node: String,
    /// Reply address (omitempty).
    pub source_addr: Vec<u8>,
    /// Reply port (omitempty).
    pub source_port: u16,
    /// Sender's name (omitempty).
    pub source_node: String,
}

/// `indirectPingReq`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndirectPingReq {
    /// Sequence number.
    pub seq_no: u32,
    /// Target IP bytes.
    pub target: Vec<u8>,
    /// Target port.
    pub port: u16,
    /// Target name.
    pub node: String,
    /// Whether a nack is wanted.
    pub nack: bool,
    /// Reply address (omitempty).
    pub source_addr: Vec<u8>,
    /// Reply port (omitempty).
    pub source_port: u16,
    /// Sender's name (omitempty).
    pub source_node: String,
}

/// `ackResp`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AckResp {
    /// Sequence number of the ping.
    pub seq_no: u32,
    /// Delegate ack payload (Serf: network coordinate).
    pub payload: Vec<u8>,
}

/// `nackResp`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NackResp {
    /// Sequence number of the indirect ping.
    pub seq_no: u32,
}

/// `errResp`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrResp {
    /// Error text.
    pub error: String,
}

/// `suspect`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Suspect {
    /// Incarnation being suspected.
    pub incarnation: u32,
    /// Suspected node.
    pub node: String,
    /// Suspecting node.
    pub from: String,
}

/// `alive`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Alive {
    /// Incarnation.
    pub incarnation: u32,
    /// Node name.
    pub node: String,
    /// IP bytes (4 or 16).
    pub addr: Vec<u8>,
    /// Gossip port.
    pub port: u16,
    /// Delegate metadata (Serf tags).
    pub meta: Vec<u8>,
    /// pmin, pmax, pcur, dmin, dmax, dcur.
    pub vsn: Vec<u8>,
}

/// `dead`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dead {
    /// Incarnation.
    pub incarnation: u32,
    /// Dead node.
    pub node: String,
    /// Declaring node (== node for a leave).
    pub from: String,
}

/// `pushPullHeader`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushPullHeader {
    /// Number of node states that follow.
    pub nodes: i64,
    /// Length of the user state that follows them.
    pub user_state_len: i64,
    /// Whether this exchange is a join.
    pub join: bool,
}

/// `pushNodeState`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushNodeState {
    /// Node name.
    pub name: String,
    /// IP bytes.
    pub addr: Vec<u8>,
    /// Port.
    pub port: u16,
    /// Meta (Serf tags).
    pub meta: Vec<u8>,
    /// Incarnation.
    pub incarnation: u32,
    /// See [`node_state`].
    pub state: i64,
    /// Versions.
    pub vsn: Vec<u8>,
}

/// A whole push/pull stream message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushPull {
    /// Join flag from the header.
    pub join: bool,
    /// Node states.
    pub nodes: Vec<PushNodeState>,
    /// Delegate (Serf) state, raw.
    pub user_state: Vec<u8>,
}

/// Any memberlist message, wrappers included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// 0
    Ping(Ping),
    /// 1
    IndirectPing(IndirectPingReq),
    /// 2
    Ack(AckResp),
    /// 3
    Suspect(Suspect),
    /// 4
    Alive(Alive),
    /// 5
    Dead(Dead),
    /// 6 (streams only)
    PushPull(PushPull),
    /// 7
    Compound(Vec<Message>),
    /// 8: raw delegate bytes (Serf message)
    User(Vec<u8>),
    /// 9: LZW-compressed inner message
    Compress(Box<Message>),
    /// 11
    Nack(NackResp),
    /// 12: CRC-protected inner message
    Crc(Box<Message>),
    /// 13
    Err(ErrResp),
}

/// The three `omitempty` reply fields shared by ping and indirect ping.
fn encode_source(s: &mut StructWriter, addr: &[u8], port: u16, node: &str) {
    if !addr.is_empty() {
        s.field("SourceAddr").raw(addr);
    }
    if port != 0 {
        s.field("SourcePort").uint(port.into());
    }
    if !node.is_empty() {
        s.field("SourceNode").str(node);
    }
}

impl Ping {
    fn decode(f: &Fields) -> Result<Self> {
        Ok(Ping {
            seq_no: f.u32("SeqNo")?,
            node: f.string("Node")?,
            source_addr: f.bytes("SourceAddr")?,
            source_port: f.u16("SourcePort")?,
            source_node: f.string("SourceNode")?,
        })
    }
    fn encode(&self, w: &mut Writer) {
        let mut s = StructWriter::default();
        s.field("SeqNo").uint(self.seq_no.into());
        s.field("Node").str(&self.node);
        encode_source(
            &mut s,
            &self.source_addr,
            self.source_port,
            &self.source_node,
        );
        s.write_to(w);
    }
}

impl IndirectPingReq {
    fn decode(f: &Fields) -> Result<Self> {
        Ok(IndirectPingReq {
            seq_no: f.u32("SeqNo")?,
            target: f.bytes("Target")?,
            port: f.u16("Port")?,
            node: f.string("Node")?,
            nack: f.bool("Nack")?,
            source_addr: f.bytes("SourceAddr")?,
            source_port: f.u16("SourcePort")?,
            source_node: f.string("SourceNode")?,
        })
    }
    fn encode(&self, w: &mut Writer) {
        let mut s = StructWriter::default();
        s.field("SeqNo").uint(self.seq_no.into());
        s.field("Target").bytes(&self.target);
        s.field("Port").uint(self.port.into());
        s.field("Node").str(&self.node);
        s.field("Nack").bool(self.nack);
        encode_source(
            &mut s,
            &self.source_addr,
            self.source_port,
            &self.source_node,
        );
        s.write_to(w);
    }
}

impl AckResp {
    fn decode(f: &Fields) -> Result<Self> {
        Ok(AckResp {
            seq_no: f.u32("SeqNo")?,
            payload: f.bytes("Payload")?,
        })
    }
    fn encode(&self, w: &mut Writer) {
        let mut s = StructWriter::default();
        s.field("SeqNo").uint(self.seq_no.into());
        s.field("Payload").bytes(&self.payload);
        s.write_to(w);
    }
}

/// `suspect` and `dead` carry the same three fields (who, about whom, at which incarnation).
macro_rules! accusation_codec {
    ($t:ident) => {
        impl $t {
            fn decode(f: &Fields) -> Result<Self> {
                Ok($t {
                    incarnation: f.u32("Incarnation")?,
                    node: f.string("Node")?,
                    from: f.string("From")?,
                })
            }
            fn encode(&self, w: &mut Writer) {
                let mut s = StructWriter::default();
                s.field("Incarnation").uint(self.incarnation.into());
                s.field("Node").str(&self.node);
                s.field("From").str(&self.from);
                s.write_to(w);
            }
        }
    };
}
accusation_codec!(Suspect);
accusation_codec!(Dead);

impl Alive {
    fn decode(f: &Fields) -> Result<Self> {
        Ok(Alive {
            incarnation: f.u32("Incarnation")?,
            node: f.string("Node")?,
            addr: f.bytes("Addr")?,
            port: f.u16("Port")?,
            meta: f.bytes("Meta")?,
            vsn: f.bytes("Vsn")?,
        })
    }
    fn encode(&self, w: &mut Writer) {
        let mut s = StructWriter::default();
        s.field("Incarnation").uint(self.incarnation.into());
        s.field("Node").str(&self.node);
        s.field("Addr").bytes(&self.addr);
        s.field("Port").uint(self.port.into());
        s.field("Meta").bytes(&self.meta);
        s.field("Vsn").bytes(&self.vsn);
        s.write_to(w);
    }
}

impl PushPullHeader {
    /// Decode from a struct.
    pub fn decode(f: &Fields) -> Result<Self> {
        Ok(PushPullHeader {
            nodes: f.int("Nodes")?,
            user_state_len: f.int("UserStateLen")?,
            join: f.bool("Join")?,
        })
    }
    /// Encode as a struct.
    pub fn encode(&self, w: &mut Writer) {
        let mut s = StructWriter::default();
        s.field("Nodes").int(self.nodes);
        s.field("UserStateLen").int(self.user_state_len);
        s.field("Join").bool(self.join);
        s.write_to(w);
    }
}

impl PushNodeState {
    /// Decode from a struct.
    pub fn decode(f: &Fields) -> Result<Self> {
        Ok(PushNodeState {
            name: f.string("Name")?,
            addr: f.bytes("Addr")?,
            port: f.u16("Port")?,
            meta: f.bytes("Meta")?,
            incarnation: f.u32("Incarnation")?,
            state: f.int("State")?,
            vsn: f.bytes("Vsn")?,
        })
    }
    /// Encode as a struct.
    pub fn encode(&self, w: &mut Writer) {
        let mut s = StructWriter::default();
        s.field("Name").str(&self.name);
        s.field("Addr").bytes(&self.addr);
        s.field("Port").uint(self.port.into());
        s.field("Meta").bytes(&self.meta);
        s.field("Incarnation").uint(self.incarnation.into());
        s.field("State").int(self.state);
        s.field("Vsn").bytes(&self.vsn);
        s.write_to(w);
    }
}

// --------------------------------------------------------------- messages

fn read_body(body: &[u8]) -> Result<(Fields, usize)> {
    Fields::read(body)
}

impl Message {
    /// Decode one UDP packet payload (label and encryption already removed).
    pub fn decode_packet(buf: &[u8]) -> Result<Message> {
        Message::decode_one(buf, Transport::Packet).map(|(m, _)| m)
    }

    /// Decode one message from the front of a (decrypted) TCP stream;
    /// returns the message and the bytes it used.
    pub fn decode_stream(buf: &[u8]) -> Result<(Message, usize)> {
        Message::decode_one(buf, Transport::Stream)
    }

    /// Decode one message; returns it and the number of bytes consumed.
    /// For packets, compound parts and wrapper payloads always extend to the
    /// end of their buffer.
    pub fn decode_one(buf: &[u8], t: Transport) -> Result<(Message, usize)> {
        let (&ty, body) = buf.split_first().ok_or(Error::Truncated("message type"))?;
        let mt = MessageType::from_u8(ty).ok_or(Error::UnknownType(ty))?;
        let (msg, used) = match mt {
            MessageType::Ping => {
                let (f, n) = read_body(body)?;
                (Message::Ping(Ping::decode(&f)?), n)
            }
            MessageType::IndirectPing => {
                let (f, n) = read_body(body)?;
                (Message::IndirectPing(IndirectPingReq::decode(&f)?), n)
            }
            MessageType::AckResp => {
                let (f, n) = read_body(body)?;
                (Message::Ack(AckResp::decode(&f)?), n)
            }
            MessageType::NackResp => {
                let (f, n) = read_body(body)?;
                (
                    Message::Nack(NackResp {
                        seq_no: f.u32("SeqNo")?,
                    }),
                    n,
                )
            }
            MessageType::Err => {
                let (f, n) = read_body(body)?;
                (
                    Message::Err(ErrResp {
                        error: f.string("Error")?,
                    }),
                    n,
                )
            }
            MessageType::Suspect => {
                let (f, n) = read_body(body)?;
                (Message::Suspect(Suspect::decode(&f)?), n)
            }
            MessageType::Alive => {
                let (f, n) = read_body(body)?;
                (Message::Alive(Alive::decode(&f)?), n)
            }
            MessageType::Dead => {
                let (f, n) = read_body(body)?;
                (Message::Dead(Dead::decode(&f)?), n)
            }
            MessageType::PushPull => {
                if t == Transport::Packet {
                    return Err(Error::UnknownType(ty));
                }
                let (pp, n) = decode_push_pull_body(body)?;
                (Message::PushPull(pp), n)
            }
            MessageType::User => match t {
                Transport::Packet => (Message::User(body.to_vec()), body.len()),
                Transport::Stream => {
                    let (f, n) = read_body(body)?;
                    let len = usize::try_from(f.int("UserMsgLen")?)
                        .map_err(|_| Error::Msgpack("negative UserMsgLen".into()))?;
                    let rest = &body[n..];
                    if rest.len() < len {
                        return Err(Error::Truncated("stream user message"));
                    }
                    (Message::User(rest[..len].to_vec()), n + len)
                }
            },
            MessageType::Compound => {
                let (parts, trunc) = split_compound(body)?;
                if trunc > 0 {
                    return Err(Error::CompoundTruncated(trunc));
                }
                let mut msgs = Vec::with_capacity(parts.len());
                for p in parts {
                    msgs.push(Message::decode_one(p, Transport::Packet)?.0);
                }
                (Message::Compound(msgs), body.len())
            }
            MessageType::Compress => {
                let (inner, n) = decompress_body(body)?;
                let (m, _) = Message::decode_one(&inner, t)?;
                let used = if t == Transport::Packet {
                    body.len()
                } else {
                    n
                };
                (Message::Compress(Box::new(m)), used)
            }
            MessageType::HasCrc => {
                let inner = check_crc(body)?;
                let (m, _) = Message::decode_one(inner, t)?;
                (Message::Crc(Box::new(m)), body.len())
            }
            MessageType::Encrypt => {
                return Err(Error::Crypto(
                    "encrypted stream: decrypt with security::decrypt_stream first".into(),
                ))
            }
        };
        Ok((msg, 1 + used))
    }

    /// Encode for a UDP packet.
    pub fn encode_packet(&self) -> Result<Vec<u8>> {
        self.encode(Transport::Packet)
    }

    /// Encode for the given transport.
    pub fn encode(&self, t: Transport) -> Result<Vec<u8>> {
        let ty = self.message_type() as u8;
        let mut w = Writer::with_prefix(&[ty]);
        match self {
            Message::Ping(m) => m.encode(&mut w),
            Message::IndirectPing(m) => m.encode(&mut w),
            Message::Ack(m) => m.encode(&mut w),
            Message::Nack(m) => {
                w.map_len(1).key("SeqNo").uint(m.seq_no.into());
            }
            Message::Err(m) => {
                w.map_len(1).key("Error").str(&m.error);
            }
            Message::Suspect(m) => m.encode(&mut w),
            Message::Alive(m) => m.encode(&mut w),
            Message::Dead(m) => m.encode(&mut w),
            Message::PushPull(pp) => encode_push_pull_body(pp, &mut w),
            Message::User(b) => match t {
                Transport::Packet => w.buf.extend_from_slice(b),
                Transport::Stream => {
                    w.map_len(1).key("UserMsgLen").int(b.len() as i64);
                    w.buf.extend_from_slice(b);
                }
            },
            Message::Compound(parts) => {
                let enc = parts
                    .iter()
                    .map(|p| p.encode(Transport::Packet))
                    .collect::<Result<Vec<_>>>()?;
                return make_compound(&enc);
            }
            Message::Compress(inner) => return Ok(compress_payload(&inner.encode(t)?)),
            Message::Crc(inner) => return Ok(add_crc(&inner.encode(t)?)),
        }
        Ok(w.finish())
    }

    /// The type byte this message is written with.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Ping(_) => MessageType::Ping,
            Message::IndirectPing(_) => MessageType::IndirectPing,
            Message::Ack(_) => MessageType::AckResp,
            Message::Suspect(_) => MessageType::Suspect,
            Message::Alive(_) => MessageType::Alive,
            Message::Dead(_) => MessageType::Dead,
            Message::PushPull(_) => MessageType::PushPull,
            Message::Compound(_) => MessageType::Compound,
            Message::User(_) => MessageType::User,
            Message::Compress(_) => MessageType::Compress,
            Message::Nack(_) => MessageType::NackResp,
            Message::Crc(_) => MessageType::HasCrc,
            Message::Err(_) => MessageType::Err,
        }
    }

    /// The leaf messages, with compound/compress/CRC wrappers removed.
    pub fn flatten(self) -> Vec<Message> {
        let mut out = Vec::new();
        fn go(m: Message, out: &mut Vec<Message>) {
            match m {
                Message::Compound(parts) => parts.into_iter().for_each(|p| go(p, out)),
                Message::Compress(inner) | Message::Crc(inner) => go(*inner, out),
                other => out.push(other),
            }
        }
        go(self, &mut out);
        out
    }
}

fn decode_push_pull_body(body: &[u8]) -> Result<(PushPull, usize)> {
    let (f, mut pos) = Fields::read(body)?;
    let h = PushPullHeader::decode(&f)?;
    let nodes = usize::try_from(h.nodes).map_err(|_| Error::Msgpack("negative Nodes".into()))?;
    let ulen = usize::try_from(h.user_state_len)
        .map_err(|_| Error::Msgpack("negative UserStateLen".into()))?;
    if nodes > body.len() {
        return Err(Error::Truncated("push/pull node states"));
    }
    let mut states = Vec::with_capacity(nodes);
    for _ in 0..nodes {
        let (f, n) = Fields::read(&body[pos..])?;
        states.push(PushNodeState::decode(&f)?);
        pos += n;
    }
    let rest = &body[pos..];
    if rest.len() < ulen {
        return Err(Error::Truncated("push/pull user state"));
    }
    Ok((
        PushPull {
            join: h.join,
            nodes: states,
            user_state: rest[..ulen].to_vec(),
        },
        pos + ulen,
    ))
}

fn encode_push_pull_body(pp: &PushPull, w: &mut Writer) {
    PushPullHeader {
        nodes: pp.nodes.len() as i64,
        user_state_len: pp.user_state.len() as i64,
        join: pp.join,
    }
    .encode(w);
    for n in &pp.nodes {
        n.encode(w);
    }
    w.buf.extend_from_slice(&pp.user_state);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping() -> Message {
        Message::Ping(Ping {
            seq_no: 7,
            node: "b".into(),
            source_addr: vec![127, 0, 0, 1],
            source_port: 8301,
            source_node: "a".into(),
        })
    }

    #[test]
    fn ping_fields_sorted_and_omitempty() {
        let b = Message::Ping(Ping {
            seq_no: 1,
            node: "x".into(),
            ..Default::default()
        })
        .encode_packet()
        .unwrap();
        // [0][fixmap 2]["Node" "x"]["SeqNo" 1]
        assert_eq!(b, b"\x00\x82\xa4Node\xa1x\xa5SeqNo\x01".to_vec());
    }

    #[test]
    fn crc_roundtrip_and_bad_crc_rejected() {
        let m = Message::Crc(Box::new(ping()));
        let mut b = m.encode_packet().unwrap();
        assert_eq!(b[0], 12);
        assert_eq!(Message::decode_packet(&b).unwrap(), m);
        let last = b.len() - 1;
        b[last] ^= 0x40;
        assert!(matches!(
            Message::decode_packet(&b),
            Err(Error::BadCrc { .. })
        ));
        assert!(Message::decode_packet(&[12, 0, 0]).is_err());
    }

    #[test]
    fn compound_roundtrip_and_truncation_rejected() {
        let m = Message::Compound(vec![
            ping(),
            Message::User(vec![1, 2, 3]),
            Message::Nack(NackResp { seq_no: 9 }),
        ]);
        let b = m.encode_packet().unwrap();
        assert_eq!(&b[..2], &[7, 3]);
        assert_eq!(Message::decode_packet(&b).unwrap(), m);
        let cut = &b[..b.len() - 2];
        assert_eq!(
            Message::decode_packet(cut),
            Err(Error::CompoundTruncated(1))
        );
        let (parts, trunc) = split_compound(&cut[1..]).unwrap();
        assert_eq!((parts.len(), trunc), (2, 1));
        assert!(Message::decode_packet(&[7, 2, 0]).is_err());
        assert!(Message::decode_packet(&[7]).is_err());
        assert!(make_compound(&vec![vec![0u8]; 256]).is_err());
    }

    #[test]
    fn compression_roundtrip_and_garbage_rejected() {
        let m = Message::Compress(Box::new(Message::Compound(vec![
            ping(),
            Message::User(b"hello hello hello hello".to_vec()),
        ])));
        let b = m.encode_packet().unwrap();
        assert_eq!(b[0], 9);
        assert_eq!(Message::decode_packet(&b).unwrap(), m);
        let mut w = Writer::with_prefix(&[9]);
        let mut s = StructWriter::default();
        s.field("Algo").uint(1);
        s.field("Buf").bytes(b"x");
        s.write_to(&mut w);
        assert!(matches!(
            Message::decode_packet(&w.buf),
            Err(Error::Compression(_))
        ));
    }

    #[test]
    fn every_simple_message_roundtrips() {
        let msgs = vec![
            ping(),
            Message::IndirectPing(IndirectPingReq {
                seq_no: 3,
                target: vec![10, 0, 0, 1],
                port: 8301,
                node: "t".into(),
                nack: true,
                ..Default::default()
            }),
            Message::Ack(AckResp {
                seq_no: 70000,
                payload: vec![],
            }),
            Message::Nack(NackResp { seq_no: 1 }),
            Message::Err(ErrResp {
                error: "boom".into(),
            }),
            Message::Suspect(Suspect {
                incarnation: 4,
                node: "b".into(),
                from: "a".into(),
            }),
            Message::Alive(Alive {
                incarnation: 5,
                node: "n".repeat(40),
                addr: vec![0; 16],
                port: 8302,
                meta: vec![0xff, 0x80],
                vsn: vec![1, 5, 2, 2, 5, 4],
            }),
            Message::Dead(Dead {
                incarnation: u32::MAX,
                node: "b".into(),
                from: "b".into(),
            }),
        ];
        for m in msgs {
            for t in [Transport::Packet, Transport::Stream] {
                let b = m.encode(t).unwrap();
                assert_eq!(Message::decode_one(&b, t).unwrap(), (m.clone(), b.len()));
            }
        }
    }

    #[test]
    fn stream_push_pull_and_user_framing() {
        let pp = Message::PushPull(PushPull {
            join: true,
            nodes: vec![PushNodeState {
                name: "a".into(),
                addr: vec![127, 0, 0, 1],
                port: 8301,
                meta: vec![0xff, 0x80],
                incarnation: 1,
                state: node_state::LEFT,
                vsn: vec![1, 5, 2, 2, 5, 5],
            }],
            user_state: vec![2, 0x80],
        });
        let mut b = pp.encode(Transport::Stream).unwrap();
        let user = Message::User(vec![9, 9]);
        let ub = user.encode(Transport::Stream).unwrap();
        assert_eq!(&ub[..2], &[8, 0x81]);
        b.extend_from_slice(&ub);
        let (m1, n1) = Message::decode_stream(&b).unwrap();
        assert_eq!(m1, pp);
        let (m2, n2) = Message::decode_stream(&b[n1..]).unwrap();
        assert_eq!(m2, user);
        assert_eq!(n1 + n2, b.len());
        // push/pull is a stream-only message
        assert_eq!(Message::decode_packet(&b[..n1]), Err(Error::UnknownType(6)));
        // truncated user state
        assert!(Message::decode_stream(&b[..n1 - 1]).is_err());
        assert!(Message::decode_packet(&[10, 0]).is_err());
        assert_eq!(Message::decode_packet(&[200]), Err(Error::UnknownType(200)));
    }
}
