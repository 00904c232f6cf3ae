//! The wrappers memberlist puts around messages: label header, CRC, LZW compression and
//! compound packing.
//!
//! Outside in, a packet is `[0xF4, len, label]` (memberlist `label.go`; also once at the
//! start of a TCP connection) → encryption (see [`super::security`]) → `[12, crc32 BE]`
//! → `[9, msgpack{Algo, Buf}]` (LZW, LSB, 8-bit literals; `util.go`) → one message or
//! `[7, n, n × u16 BE len, bodies]` (`makeCompoundMessage`). These helpers build and
//! strip one wrapper each; [`super::messages`] decodes the wrappers as [`Message`]
//! variants and [`super::codec`] decides which ones to apply.
//!
//! [`Message`]: super::messages::Message

use super::messages::MessageType;
use super::msgpack::{Fields, StructWriter, Writer};
use crate::error::{Error, Result};

/// Label header tag byte (memberlist `hasLabelMsg`).
pub const LABEL_TAG: u8 = 244;
/// Compression algorithm id for LZW (memberlist `lzwAlgo`).
pub const LZW_ALGO: u8 = 0;
/// Largest decompressed payload we accept (guards against LZW bombs).
pub const MAX_DECOMPRESSED: usize = 64 << 20;

// ------------------------------------------------------------ compression

/// LZW-decompress a `compress.Buf` (Go `compress/lzw`, LSB, litWidth 8).
pub fn lzw_decompress(data: &[u8]) -> Result<Vec<u8>> {
    let mut dec = weezl::decode::Decoder::new(weezl::BitOrder::Lsb, 8);
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 32 * 1024];
    let mut input = data;
    loop {
        let r = dec.decode_bytes(input, &mut chunk);
        out.extend_from_slice(&chunk[..r.consumed_out]);
        input = &input[r.consumed_in..];
        if out.len() > MAX_DECOMPRESSED {
            return Err(Error::Compression("decompressed payload too large".into()));
        }
        match r.status {
            Ok(weezl::LzwStatus::Done) => return Ok(out),
            Ok(weezl::LzwStatus::Ok) => {
                if r.consumed_in == 0 && r.consumed_out == 0 {
                    return Err(Error::Compression("LZW stream stalled".into()));
                }
            }
            Ok(weezl::LzwStatus::NoProgress) => {
                // Input exhausted without an end code: Go's reader reports
                // io.ErrUnexpectedEOF here.
                return Err(Error::Compression("LZW stream has no end code".into()));
            }
            Err(e) => return Err(Error::Compression(e.to_string())),
        }
    }
}

/// LZW-compress like memberlist's `compressPayload`.
pub fn lzw_compress(data: &[u8]) -> Vec<u8> {
    let mut enc = weezl::encode::Encoder::new(weezl::BitOrder::Lsb, 8);
    // Encoding into a Vec cannot fail for 8-bit input.
    enc.encode(data).unwrap_or_default()
}

/// Build `[9][msgpack{Algo, Buf}]` around an already encoded message.
pub fn compress_payload(inner: &[u8]) -> Vec<u8> {
    let mut w = Writer::with_prefix(&[MessageType::Compress as u8]);
    let mut s = StructWriter::default();
    s.field("Algo").uint(LZW_ALGO.into());
    s.field("Buf").bytes(&lzw_compress(inner));
    s.write_to(&mut w);
    w.finish()
}

/// Decode the body of a compress message (after the type byte): returns the
/// decompressed inner bytes and the body length consumed.
pub fn decompress_body(body: &[u8]) -> Result<(Vec<u8>, usize)> {
    let (f, n) = Fields::read(body)?;
    let algo = f.uint("Algo")?;
    if algo != LZW_ALGO as u64 {
        return Err(Error::Compression(format!("unknown algorithm {algo}")));
    }
    Ok((lzw_decompress(&f.bytes("Buf")?)?, n))
}

// ------------------------------------------------------------ compound/CRC

/// Build `[7, n, lens..., bodies...]` from encoded messages.
pub fn make_compound(parts: &[Vec<u8>]) -> Result<Vec<u8>> {
    if parts.len() > 255 {
        return Err(Error::Encode("more than 255 compound parts".into()));
    }
    let mut out = vec![MessageType::Compound as u8, parts.len() as u8];
    for p in parts {
        let n = u16::try_from(p.len())
            .map_err(|_| Error::Encode("compound part longer than 65535".into()))?;
        out.extend_from_slice(&n.to_be_bytes());
    }
    for p in parts {
        out.extend_from_slice(p);
    }
    Ok(out)
}

/// Split a compound body (after the type byte) like memberlist's
/// `decodeCompoundMessage`: returns the complete parts and how many parts
/// were truncated (memberlist still processes the complete ones).
pub fn split_compound(body: &[u8]) -> Result<(Vec<&[u8]>, usize)> {
    let (&n, rest) = body
        .split_first()
        .ok_or(Error::Truncated("compound count"))?;
    let n = n as usize;
    if rest.len() < n * 2 {
        return Err(Error::Truncated("compound length table"));
    }
    let (lens, mut data) = rest.split_at(n * 2);
    let mut parts = Vec::with_capacity(n);
    for (i, l) in lens.chunks_exact(2).enumerate() {
        let l = u16::from_be_bytes([l[0], l[1]]) as usize;
        if data.len() < l {
            return Ok((parts, n - i));
        }
        let (p, r) = data.split_at(l);
        parts.push(p);
        data = r;
    }
    Ok((parts, 0))
}

/// Wrap an encoded message as `[12][crc32 BE][msg]`.
pub fn add_crc(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 5);
    out.push(MessageType::HasCrc as u8);
    out.extend_from_slice(&crc32fast::hash(msg).to_be_bytes());
    out.extend_from_slice(msg);
    out
}

/// Check a CRC body (after the type byte) and return the protected bytes.
pub fn check_crc(body: &[u8]) -> Result<&[u8]> {
    if body.len() < 4 {
        return Err(Error::Truncated("crc"));
    }
    let expected = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    let inner = &body[4..];
    let actual = crc32fast::hash(inner);
    if expected != actual {
        return Err(Error::BadCrc { expected, actual });
    }
    Ok(inner)
}

// ------------------------------------------------------------------ label

/// Prefix `[0xF4, len, label]`; an empty label adds nothing.
pub fn add_label(label: &[u8], payload: &[u8]) -> Result<Vec<u8>> {
    if label.is_empty() {
        return Ok(payload.to_vec());
    }
    if label.len() > 255 {
        return Err(Error::Label("label longer than 255 bytes".into()));
    }
    let mut out = Vec::with_capacity(payload.len() + 2 + label.len());
    out.push(LABEL_TAG);
    out.push(label.len() as u8);
    out.extend_from_slice(label);
    out.extend_from_slice(payload);
    Ok(out)
}

/// The length of the optional label header at the start of a connection:
/// 0 when there is none, `None` while too few bytes are in to tell.
pub fn label_header_len(buf: &[u8]) -> Option<usize> {
    match buf {
        [] | [LABEL_TAG] => None,
        [LABEL_TAG, n, ..] => Some(2 + *n as usize),
        _ => Some(0),
    }
}

/// Split off an optional label header: `(label, rest)`; no header gives an
/// empty label.
pub fn strip_label(buf: &[u8]) -> Result<(&[u8], &[u8])> {
    if buf.first() != Some(&LABEL_TAG) {
        return Ok((&[], buf));
    }
    let n = *buf.get(1).ok_or(Error::Truncated("label length"))? as usize;
    if n == 0 {
        return Err(Error::Label("label header present but empty".into()));
    }
    if buf.len() < 2 + n {
        return Err(Error::Truncated("label"));
    }
    Ok((&buf[2..2 + n], &buf[2 + n..]))
}

/// Strip the label and require it to equal `expected` (memberlist rejects a
/// missing label when one is configured and vice versa, unless the inbound
/// check is skipped, which is the caller's policy).
pub fn check_label<'a>(buf: &'a [u8], expected: &[u8]) -> Result<&'a [u8]> {
    let (label, rest) = strip_label(buf)?;
    if label != expected {
        return Err(Error::Label(format!(
            "got {:?}, want {:?}",
            String::from_utf8_lossy(label),
            String::from_utf8_lossy(expected)
        )));
    }
    Ok(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lzw_garbage_rejected_and_empty_roundtrips() {
        assert!(lzw_decompress(&[0xff; 10]).is_err());
        assert_eq!(lzw_decompress(&lzw_compress(b"")).unwrap(), b"");
    }

    #[test]
    fn label_header() {
        let b = add_label(b"dc1", &[1, 2]).unwrap();
        assert_eq!(b, vec![0xf4, 3, b'd', b'c', b'1', 1, 2]);
        assert_eq!(check_label(&b, b"dc1").unwrap(), &[1, 2]);
        assert!(matches!(check_label(&b, b"dc2"), Err(Error::Label(_))));
        assert!(matches!(check_label(&[1, 2], b"dc1"), Err(Error::Label(_))));
        assert_eq!(check_label(&[1, 2], b"").unwrap(), &[1, 2]);
        assert!(strip_label(&[0xf4, 0, 1]).is_err());
        assert!(strip_label(&[0xf4, 5, 1]).is_err());
        assert_eq!(add_label(b"", &[1]).unwrap(), vec![1]);
        assert!(add_label(&[b'x'; 256], &[1]).is_err());
        assert_eq!(label_header_len(&b), Some(5));
        assert_eq!(label_header_len(&b[..2]), Some(5));
        assert_eq!(label_header_len(&b[..1]), None);
        assert_eq!(label_header_len(&[]), None);
        assert_eq!(label_header_len(&[1, 2]), Some(0));
    }
}
