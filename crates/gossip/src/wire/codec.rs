//! The full packet/stream pipeline with memberlist's receive and send rules.
//!
//! The lower modules are the individual layers; this one stacks them the way
//! memberlist's `ingestPacket` / `rawSendMsgPacket` and its stream reader and
//! writer do, so the protocol core has a single call per direction:
//!
//! * receive: label header (must equal ours unless the inbound check is
//!   skipped) → decrypt with any key, the label as associated data (if
//!   `verify_incoming` is off, undecryptable input is taken as plaintext) →
//!   message (CRC/compression/compound wrappers are decoded as part of it).
//! * send: optional compression (kept only if smaller) → optional CRC (peers
//!   speaking protocol ≥ 5) → encryption with the primary key (if
//!   `verify_outgoing`) → label header.
//! * streams: the label header prefixes the connection once; each message is
//!   `[10][len][...]` when encrypted, and a plaintext message is refused when
//!   encryption is configured with `verify_incoming`.

use super::framing;
use super::messages::{self, Message, Transport};
use super::security::{self, Keyring, NONCE_SIZE};
use crate::error::{Error, Result};

/// Per-pool wire settings (memberlist `Config` fields of the same names).
#[derive(Debug, Clone)]
pub struct WireConfig {
    /// `Label` (empty = none).
    pub label: Vec<u8>,
    /// `SkipInboundLabelCheck`.
    pub skip_inbound_label_check: bool,
    /// `Keyring`; `None` disables encryption.
    pub keyring: Option<Keyring>,
    /// `GossipVerifyIncoming` (Consul: `encrypt_verify_incoming`).
    pub verify_incoming: bool,
    /// `GossipVerifyOutgoing` (Consul: `encrypt_verify_outgoing`).
    pub verify_outgoing: bool,
    /// Encryption version to send (1 for protocol ≥ 1).
    pub encryption_version: u8,
}

impl Default for WireConfig {
    fn default() -> Self {
        WireConfig {
            label: Vec::new(),
            skip_inbound_label_check: false,
            keyring: None,
            verify_incoming: true,
            verify_outgoing: true,
            encryption_version: 1,
        }
    }
}

/// How to frame one outgoing packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// LZW-compress (`EnableCompression`); kept only if it shrinks the packet.
    pub compress: bool,
    /// Add the CRC wrapper (destination speaks protocol ≥ 5).
    pub crc: bool,
}

impl WireConfig {
    fn encryption_enabled(&self) -> bool {
        self.keyring.as_ref().is_some_and(|k| !k.keys().is_empty())
    }

    fn check_label<'a>(&'a self, buf: &'a [u8]) -> Result<(&'a [u8], &'a [u8])> {
        let (label, rest) = framing::strip_label(buf)?;
        if self.skip_inbound_label_check {
            if !label.is_empty() {
                return Err(Error::Label("unexpected packet label header".into()));
            }
            return Ok((&self.label, rest));
        }
        if label != self.label.as_slice() {
            return Err(Error::Label(format!(
                "discarding packet with unacceptable label {:?}",
                String::from_utf8_lossy(label)
            )));
        }
        Ok((label, rest))
    }

    /// Bytes to leave free in each packet for the label header and encryption
    /// (`[0xF4, len, label]`, version byte, nonce, GCM tag), reserved whether
    /// or not encryption is on.
    pub fn packet_overhead(&self) -> usize {
        2 + self.label.len() + 1 + NONCE_SIZE + security::TAG_SIZE
    }

    /// Receive a UDP datagram.
    pub fn decode_packet(&self, buf: &[u8]) -> Result<Message> {
        let (label, rest) = self.check_label(buf)?;
        let plain;
        let mut body = rest;
        if let (true, Some(kr)) = (self.encryption_enabled(), &self.keyring) {
            match security::decrypt_packet(kr, rest, label) {
                Ok(p) => {
                    plain = p;
                    body = &plain;
                }
                Err(e) if self.verify_incoming => return Err(e),
                Err(_) => {}
            }
        }
        Message::decode_packet(body)
    }

    /// Frame an encoded message (`Message::encode_packet` or a compound) for
    /// sending. `nonce` must be fresh random bytes when encryption is on.
    pub fn encode_packet(
        &self,
        msg: &[u8],
        opts: SendOptions,
        nonce: [u8; NONCE_SIZE],
    ) -> Result<Vec<u8>> {
        let mut out = msg.to_vec();
        if opts.compress {
            let c = framing::compress_payload(&out);
            if c.len() < out.len() {
                out = c;
            }
        }
        if opts.crc {
            out = framing::add_crc(&out);
        }
        if let (true, true, Some(kr)) = (
            self.encryption_enabled(),
            self.verify_outgoing,
            &self.keyring,
        ) {
            out = security::encrypt_packet(kr, self.encryption_version, nonce, &out, &self.label)?;
        }
        framing::add_label(&self.label, &out)
    }

    /// Check the label header at the start of an incoming TCP connection;
    /// returns the bytes after it.
    pub fn accept_stream<'a>(&'a self, buf: &'a [u8]) -> Result<&'a [u8]> {
        self.check_label(buf).map(|(_, rest)| rest)
    }

    /// The label header an outgoing TCP connection starts with (may be empty).
    pub fn stream_prelude(&self) -> Result<Vec<u8>> {
        framing::add_label(&self.label, &[])
    }

    /// Decode one stream message (after the connection's label header);
    /// returns it and the bytes consumed.
    pub fn decode_stream(&self, buf: &[u8]) -> Result<(Message, usize)> {
        let first = *buf.first().ok_or(Error::Truncated("stream message"))?;
        if first == messages::MessageType::Encrypt as u8 {
            let kr = match (&self.keyring, self.encryption_enabled()) {
                (Some(kr), true) => kr,
                _ => {
                    return Err(Error::Crypto(
                        "remote state is encrypted and encryption is not configured".into(),
                    ))
                }
            };
            let (plain, used) = security::decrypt_stream(kr, buf, &self.label)?;
            let (m, _) = Message::decode_one(&plain, Transport::Stream)?;
            return Ok((m, used));
        }
        if self.encryption_enabled() && self.verify_incoming {
            return Err(Error::Crypto(
                "encryption is configured but remote state is not encrypted".into(),
            ));
        }
        Message::decode_stream(buf)
    }

    /// Encode one stream message, compressing it if asked and encrypting it
    /// when configured.
    pub fn encode_stream(
        &self,
        msg: &Message,
        compress: bool,
        nonce: [u8; NONCE_SIZE],
    ) -> Result<Vec<u8>> {
        let mut out = msg.encode(Transport::Stream)?;
        if compress {
            out = framing::compress_payload(&out);
        }
        if let (true, true, Some(kr)) = (
            self.encryption_enabled(),
            self.verify_outgoing,
            &self.keyring,
        ) {
            out = security::encrypt_stream(kr, self.encryption_version, nonce, &out, &self.label)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::messages::{NackResp, Ping};

    fn ping() -> Message {
        Message::Ping(Ping {
            seq_no: 1,
            node: "b".into(),
            ..Default::default()
        })
    }

    fn enc(label: &str) -> WireConfig {
        WireConfig {
            label: label.as_bytes().to_vec(),
            keyring: Some(Keyring::new(vec![4; 32], vec![]).unwrap()),
            ..Default::default()
        }
    }

    #[test]
    fn packet_pipeline_roundtrip() {
        for cfg in [WireConfig::default(), enc(""), enc("dc1")] {
            for opts in [
                SendOptions::default(),
                SendOptions {
                    compress: true,
                    crc: true,
                },
            ] {
                let b = cfg
                    .encode_packet(&ping().encode_packet().unwrap(), opts, [9; 12])
                    .unwrap();
                let m = cfg.decode_packet(&b).unwrap();
                assert_eq!(m.flatten(), vec![ping()]);
            }
        }
    }

    #[test]
    fn label_mismatch_and_wrong_key_rejected() {
        let a = enc("dc1");
        let b = a
            .encode_packet(
                &ping().encode_packet().unwrap(),
                SendOptions::default(),
                [0; 12],
            )
            .unwrap();
        assert!(matches!(enc("dc2").decode_packet(&b), Err(Error::Label(_))));
        assert!(matches!(enc("").decode_packet(&b), Err(Error::Label(_))));
        let mut other = enc("dc1");
        other.keyring = Some(Keyring::new(vec![5; 32], vec![]).unwrap());
        assert!(matches!(other.decode_packet(&b), Err(Error::Crypto(_))));
        // a plaintext packet is refused when verifying incoming, accepted otherwise
        let plain = ping().encode_packet().unwrap();
        assert!(enc("").decode_packet(&plain).is_err());
        let mut lax = enc("");
        lax.verify_incoming = false;
        assert_eq!(lax.decode_packet(&plain).unwrap(), ping());
        // skip_inbound_label_check: unlabeled accepted, labeled refused
        let mut skip = WireConfig {
            label: b"dc1".to_vec(),
            skip_inbound_label_check: true,
            ..Default::default()
        };
        assert_eq!(skip.decode_packet(&plain).unwrap(), ping());
        let labeled = framing::add_label(b"dc1", &plain).unwrap();
        assert!(skip.decode_packet(&labeled).is_err());
        skip.skip_inbound_label_check = false;
        assert_eq!(skip.decode_packet(&labeled).unwrap(), ping());
    }

    #[test]
    fn stream_pipeline() {
        let cfg = enc("dc1");
        let msg = Message::Nack(NackResp { seq_no: 5 });
        let mut s = cfg.stream_prelude().unwrap();
        s.extend(cfg.encode_stream(&msg, true, [1; 12]).unwrap());
        let rest = cfg.accept_stream(&s).unwrap();
        let (m, n) = cfg.decode_stream(rest).unwrap();
        assert_eq!(m.flatten(), vec![msg.clone()]);
        assert_eq!(n, rest.len());
        // plaintext stream refused when encryption is on
        let plain = msg.encode(Transport::Stream).unwrap();
        assert!(cfg.decode_stream(&plain).is_err());
        // encrypted stream refused without a keyring
        assert!(WireConfig::default().decode_stream(rest).is_err());
        assert!(enc("dc2").accept_stream(&s).is_err());
    }
}
