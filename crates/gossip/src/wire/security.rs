//! Gossip encryption: the keyring and memberlist's AES-GCM framing.
//!
//! memberlist encrypts a whole UDP packet as `[vsn][nonce(12)][ciphertext+tag]`
//! with the label as associated data. Version 0 PKCS#7-pads the plaintext to
//! the AES block size first (protocol < 1); version 1 (every modern peer)
//! does not pad. Receivers accept both and try every installed key; senders
//! always use the primary key — that is what makes key rotation work.
//!
//! On TCP the whole stream message is wrapped as `[10][len u32 BE][vsn][nonce]
//! [ciphertext+tag]` and the associated data is those first five bytes
//! followed by the label.
//!
//! Nonces are an input: this crate does no I/O and owns no RNG, so the
//! caller passes 12 random bytes per message.

use crate::error::{Error, Result};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm};
use base64::Engine;

type Aes192Gcm = AesGcm<aes_gcm::aes::Aes192, aes_gcm::aead::consts::U12>;

/// Version byte size.
pub const VERSION_SIZE: usize = 1;
/// GCM nonce size.
pub const NONCE_SIZE: usize = 12;
/// GCM tag size.
pub const TAG_SIZE: usize = 16;
/// AES block size (padding unit of version 0).
pub const BLOCK_SIZE: usize = 16;
/// Highest encryption version we understand.
pub const MAX_ENCRYPTION_VERSION: u8 = 1;
/// memberlist `encryptMsg` type byte used on TCP.
pub const ENCRYPT_MSG: u8 = 10;

/// Encryption version memberlist uses for a given protocol version.
pub fn encryption_version(protocol_version: u8) -> u8 {
    if protocol_version < 1 {
        0
    } else {
        1
    }
}

/// Size of the ciphertext frame for `len` plaintext bytes.
pub fn encrypted_length(vsn: u8, len: usize) -> usize {
    if vsn >= 1 {
        VERSION_SIZE + NONCE_SIZE + len + TAG_SIZE
    } else {
        let pad = BLOCK_SIZE - (len % BLOCK_SIZE);
        VERSION_SIZE + NONCE_SIZE + len + pad + TAG_SIZE
    }
}

/// A set of gossip keys; the first is the primary (used to encrypt).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Keyring {
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({} keys)", self.keys.len())
    }
}

/// Validate an AES key size (16, 24 or 32 bytes).
pub fn validate_key(key: &[u8]) -> Result<()> {
    match key.len() {
        16 | 24 | 32 => Ok(()),
        n => Err(Error::Crypto(format!(
            "key size must be 16, 24 or 32 bytes, got {n}"
        ))),
    }
}

/// Decode a base64 key as Consul's `-encrypt` / `keyring -install` take it.
pub fn decode_key_base64(s: &str) -> Result<Vec<u8>> {
    let k = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| Error::Crypto(format!("invalid base64 key: {e}")))?;
    validate_key(&k)?;
    Ok(k)
}

/// Encode a key as base64 (for `keyring -list`).
pub fn encode_key_base64(key: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(key)
}

impl Keyring {
    /// A keyring with `primary` and extra receive-only keys.
    pub fn new(primary: Vec<u8>, others: Vec<Vec<u8>>) -> Result<Keyring> {
        validate_key(&primary)?;
        let mut kr = Keyring {
            keys: vec![primary],
        };
        for k in others {
            kr.add_key(k)?;
        }
        Ok(kr)
    }

    /// A keyring from one base64 key (`-encrypt`).
    pub fn from_base64(s: &str) -> Result<Keyring> {
        Keyring::new(decode_key_base64(s)?, Vec::new())
    }

    /// Install a key (not primary); duplicates are ignored.
    pub fn add_key(&mut self, key: Vec<u8>) -> Result<()> {
        validate_key(&key)?;
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
        Ok(())
    }

    /// Make an installed key the primary.
    pub fn use_key(&mut self, key: &[u8]) -> Result<()> {
        let i = self
            .keys
            .iter()
            .position(|k| k == key)
            .ok_or_else(|| Error::Crypto("requested key is not in the keyring".into()))?;
        let k = self.keys.remove(i);
        self.keys.insert(0, k);
        Ok(())
    }

    /// Remove a non-primary key.
    pub fn remove_key(&mut self, key: &[u8]) -> Result<()> {
        if self.keys.first().map(|k| k.as_slice()) == Some(key) {
            return Err(Error::Crypto(
                "removing the primary key is not allowed".into(),
            ));
        }
        self.keys.retain(|k| k != key);
        Ok(())
    }

    /// The primary key.
    pub fn primary(&self) -> Option<&[u8]> {
        self.keys.first().map(|k| k.as_slice())
    }

    /// All keys, primary first.
    pub fn keys(&self) -> &[Vec<u8>] {
        &self.keys
    }
}

fn seal(key: &[u8], nonce: &[u8; NONCE_SIZE], msg: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    let p = Payload { msg, aad };
    let n = aes_gcm::Nonce::from_slice(nonce);
    let r = match key.len() {
        16 => Aes128Gcm::new_from_slice(key).map(|c| c.encrypt(n, p)),
        24 => Aes192Gcm::new_from_slice(key).map(|c| c.encrypt(n, p)),
        32 => Aes256Gcm::new_from_slice(key).map(|c| c.encrypt(n, p)),
        _ => return Err(validate_key(key).unwrap_err()),
    };
    r.map_err(|_| Error::Crypto("bad key".into()))?
        .map_err(|_| Error::Crypto("encryption failed".into()))
}

fn open(key: &[u8], nonce: &[u8], ct: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    let p = Payload { msg: ct, aad };
    let n = aes_gcm::Nonce::from_slice(nonce);
    match key.len() {
        16 => Aes128Gcm::new_from_slice(key).ok()?.decrypt(n, p).ok(),
        24 => Aes192Gcm::new_from_slice(key).ok()?.decrypt(n, p).ok(),
        32 => Aes256Gcm::new_from_slice(key).ok()?.decrypt(n, p).ok(),
        _ => None,
    }
}

/// Encrypt `msg` as `[vsn][nonce][ciphertext+tag]` with associated data `aad`.
pub fn encrypt_payload(
    vsn: u8,
    key: &[u8],
    nonce: [u8; NONCE_SIZE],
    msg: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>> {
    if vsn > MAX_ENCRYPTION_VERSION {
        return Err(Error::Crypto(format!(
            "unsupported encryption version {vsn}"
        )));
    }
    let ct = if vsn == 0 {
        let pad = BLOCK_SIZE - (msg.len() % BLOCK_SIZE);
        let mut padded = msg.to_vec();
        padded.resize(msg.len() + pad, pad as u8);
        seal(key, &nonce, &padded, aad)?
    } else {
        seal(key, &nonce, msg, aad)?
    };
    let mut out = Vec::with_capacity(1 + NONCE_SIZE + ct.len());
    out.push(vsn);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Decrypt `[vsn][nonce][ciphertext+tag]` with any key of the ring.
pub fn decrypt_payload(keys: &Keyring, msg: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    let &vsn = msg
        .first()
        .ok_or_else(|| Error::Crypto("cannot decrypt empty payload".into()))?;
    if vsn > MAX_ENCRYPTION_VERSION {
        return Err(Error::Crypto(format!(
            "unsupported encryption version {vsn}"
        )));
    }
    if msg.len() < encrypted_length(vsn, 0) {
        return Err(Error::Crypto("payload is too small to decrypt".into()));
    }
    let nonce = &msg[1..1 + NONCE_SIZE];
    let ct = &msg[1 + NONCE_SIZE..];
    for k in keys.keys() {
        if let Some(plain) = open(k, nonce, ct, aad) {
            if vsn == 0 {
                let pad = *plain.last().unwrap_or(&0) as usize;
                if pad == 0 || pad > BLOCK_SIZE || pad > plain.len() {
                    return Err(Error::Crypto("bad padding".into()));
                }
                return Ok(plain[..plain.len() - pad].to_vec());
            }
            return Ok(plain);
        }
    }
    Err(Error::Crypto(
        "no installed keys could decrypt the message".into(),
    ))
}

/// Encrypt a UDP packet with the primary key (label = associated data).
/// The label header itself is added by the caller
/// ([`super::framing::add_label`]).
pub fn encrypt_packet(
    keys: &Keyring,
    vsn: u8,
    nonce: [u8; NONCE_SIZE],
    msg: &[u8],
    label: &[u8],
) -> Result<Vec<u8>> {
    let key = keys
        .primary()
        .ok_or_else(|| Error::Crypto("empty keyring".into()))?;
    encrypt_payload(vsn, key, nonce, msg, label)
}

/// Decrypt a UDP packet (label header already stripped).
pub fn decrypt_packet(keys: &Keyring, buf: &[u8], label: &[u8]) -> Result<Vec<u8>> {
    decrypt_payload(keys, buf, label)
}

/// Wrap a stream message as `[10][len u32 BE][vsn][nonce][ciphertext+tag]`.
pub fn encrypt_stream(
    keys: &Keyring,
    vsn: u8,
    nonce: [u8; NONCE_SIZE],
    msg: &[u8],
    label: &[u8],
) -> Result<Vec<u8>> {
    let key = keys
        .primary()
        .ok_or_else(|| Error::Crypto("empty keyring".into()))?;
    let len = u32::try_from(encrypted_length(vsn, msg.len()))
        .map_err(|_| Error::Encode("stream message too large".into()))?;
    let mut out = vec![ENCRYPT_MSG];
    out.extend_from_slice(&len.to_be_bytes());
    let mut aad = out.clone();
    aad.extend_from_slice(label);
    let enc = encrypt_payload(vsn, key, nonce, msg, &aad)?;
    out.extend_from_slice(&enc);
    Ok(out)
}

/// The body length the header of an encrypted stream message announces
/// (`[10][len u32 BE]`), once those five bytes are in; `None` before that or
/// when `buf` does not start an encrypted message.
pub fn announced_stream_len(buf: &[u8]) -> Option<usize> {
    match buf {
        [ENCRYPT_MSG, a, b, c, d, ..] => Some(u32::from_be_bytes([*a, *b, *c, *d]) as usize),
        _ => None,
    }
}

/// Decrypt an encrypted stream message from the front of `buf`; returns the
/// plaintext (a stream message, often compressed) and the bytes consumed.
pub fn decrypt_stream(keys: &Keyring, buf: &[u8], label: &[u8]) -> Result<(Vec<u8>, usize)> {
    if buf.first() != Some(&ENCRYPT_MSG) {
        return Err(Error::Crypto("stream is not encrypted".into()));
    }
    if buf.len() < 5 {
        return Err(Error::Truncated("encrypted stream header"));
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    let end = 5usize
        .checked_add(len)
        .filter(|e| *e <= buf.len())
        .ok_or(Error::Truncated("encrypted stream body"))?;
    let mut aad = buf[..5].to_vec();
    aad.extend_from_slice(label);
    let plain = decrypt_payload(keys, &buf[5..end], &aad)?;
    Ok((plain, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(k: &[u8]) -> Keyring {
        Keyring::new(k.to_vec(), vec![]).unwrap()
    }

    #[test]
    fn roundtrip_all_key_sizes_and_versions() {
        for size in [16, 24, 32] {
            for vsn in [0, 1] {
                let kr = ring(&vec![7u8; size]);
                let ct = encrypt_packet(&kr, vsn, [3; 12], b"hello gossip", b"lbl").unwrap();
                assert_eq!(ct.len(), encrypted_length(vsn, 12));
                assert_eq!(ct[0], vsn);
                assert_eq!(decrypt_packet(&kr, &ct, b"lbl").unwrap(), b"hello gossip");
                assert!(decrypt_packet(&kr, &ct, b"other").is_err(), "label is AAD");
            }
        }
    }

    #[test]
    fn wrong_key_rejected_and_secondary_key_accepted() {
        let a = ring(&[1; 32]);
        let b = ring(&[2; 32]);
        let ct = encrypt_packet(&a, 1, [0; 12], b"x", b"").unwrap();
        assert!(matches!(
            decrypt_packet(&b, &ct, b""),
            Err(Error::Crypto(_))
        ));
        let both = Keyring::new(vec![2; 32], vec![vec![1; 32]]).unwrap();
        assert_eq!(decrypt_packet(&both, &ct, b"").unwrap(), b"x");
    }

    #[test]
    fn keyring_management() {
        assert!(Keyring::new(vec![0; 15], vec![]).is_err());
        let mut kr = Keyring::from_base64("MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=").unwrap();
        assert_eq!(kr.primary().unwrap(), b"12345678901234567890123456789012");
        kr.add_key(vec![9; 16]).unwrap();
        assert!(kr.remove_key(b"12345678901234567890123456789012").is_err());
        kr.use_key(&[9; 16]).unwrap();
        assert_eq!(kr.primary().unwrap(), &[9; 16]);
        kr.remove_key(b"12345678901234567890123456789012").unwrap();
        assert_eq!(kr.keys().len(), 1);
        assert!(kr.use_key(&[1; 16]).is_err());
        assert!(decode_key_base64("not base64!").is_err());
    }

    #[test]
    fn stream_roundtrip_and_tamper() {
        let kr = ring(&[5; 16]);
        let mut s = encrypt_stream(&kr, 1, [1; 12], b"stream body", b"").unwrap();
        s.extend_from_slice(b"trailing");
        let (p, used) = decrypt_stream(&kr, &s, b"").unwrap();
        assert_eq!(p, b"stream body");
        assert_eq!(&s[used..], b"trailing");
        assert_eq!(announced_stream_len(&s), Some(used - 5));
        assert_eq!(announced_stream_len(&s[..4]), None);
        assert_eq!(announced_stream_len(b"\x06plain"), None);
        s[3] ^= 1; // length is authenticated and now also wrong
        assert!(decrypt_stream(&kr, &s, b"").is_err());
    }

    #[test]
    fn short_and_bad_version_rejected() {
        let kr = ring(&[5; 16]);
        assert!(decrypt_packet(&kr, &[], b"").is_err());
        assert!(decrypt_packet(&kr, &[1; 20], b"").is_err());
        assert!(decrypt_packet(&kr, &[9; 64], b"").is_err());
    }
}
