//! Just enough DER for the `tls` commands: walk a certificate to its subject and key
//! identifier (the CA that signs a new certificate), and move EC/RSA private keys between the
//! PKCS #8 wrapping ring reads and writes and the SEC 1 / PKCS #1 forms Consul writes and
//! reads (`EC PRIVATE KEY`).
//!
//! It reads only definite-length, single-byte-tag DER — all a certificate or key holds — and
//! checks every length against its input; anything else is an error, never a panic. It
//! never interprets a value it does not need.

use std::fmt;

pub const SEQUENCE: u8 = 0x30;
pub const SET: u8 = 0x31;
pub const INTEGER: u8 = 0x02;
#[cfg(test)] // only the tests read key usage bits
pub const BIT_STRING: u8 = 0x03;
pub const OCTET_STRING: u8 = 0x04;
pub const OID: u8 = 0x06;
pub const BOOLEAN: u8 = 0x01;
/// `[0]`, constructed (a certificate's version, SEC 1's curve parameters).
pub const CONTEXT_0: u8 = 0xa0;
/// `[3]`, constructed (a certificate's extensions).
pub const CONTEXT_3: u8 = 0xa3;

/// The DER was not what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerError(pub &'static str);

impl fmt::Display for DerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for DerError {}

/// One element: its tag, its contents, and the whole encoding (tag and length included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// A reader over the contents of a constructed element.
    pub fn reader(&self) -> Reader<'a> {
        Reader::new(self.value)
    }
}

/// Reads consecutive elements.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Reader { rest: input }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next element, whatever its tag.
    pub fn read(&mut self) -> Result<Tlv<'a>, DerError> {
        let input = self.rest;
        let (&tag, after_tag) = input.split_first().ok_or(DerError("truncated DER"))?;
        if tag & 0x1f == 0x1f {
            return Err(DerError("unsupported DER tag"));
        }
        let (&first, mut after_len) = after_tag.split_first().ok_or(DerError("truncated DER"))?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || after_len.len() < n {
                return Err(DerError("bad DER length"));
            }
            let len = after_len[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            after_len = &after_len[n..];
            len
        };
        if after_len.len() < len {
            return Err(DerError("truncated DER"));
        }
        let header = input.len() - after_len.len();
        self.rest = &after_len[len..];
        Ok(Tlv {
            tag,
            value: &after_len[..len],
            raw: &input[..header + len],
        })
    }

    /// The next element, which must carry `tag`.
    pub fn expect(&mut self, tag: u8) -> Result<Tlv<'a>, DerError> {
        let t = self.read()?;
        if t.tag != tag {
            return Err(DerError("unexpected DER element"));
        }
        Ok(t)
    }

    /// The next element if it carries `tag`.
    pub fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.read().map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Encode one element.
pub fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value);
    out
}

/// An OID's arcs from its encoded contents.
pub fn oid_arcs(value: &[u8]) -> Result<Vec<u64>, DerError> {
    let mut arcs = Vec::new();
    let mut acc: u64 = 0;
    for (i, b) in value.iter().enumerate() {
        if acc > u64::MAX >> 7 {
            return Err(DerError("OID arc too large"));
        }
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        } else if i + 1 == value.len() {
            return Err(DerError("truncated OID"));
        }
    }
    if arcs.is_empty() {
        return Err(DerError("empty OID"));
    }
    Ok(arcs)
}

/// The parts of a certificate the `tls` commands need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertParts<'a> {
    /// `tbsCertificate.issuer`, whole.
    pub issuer: Tlv<'a>,
    /// `tbsCertificate.subject`, whole.
    pub subject: Tlv<'a>,
    /// `tbsCertificate.subjectPublicKeyInfo`, whole.
    pub spki: Tlv<'a>,
    /// `(critical, extnID arcs, extnValue contents)` of every extension.
    pub extensions: Vec<(bool, Vec<u64>, &'a [u8])>,
}

/// The subjectKeyIdentifier extension (2.5.29.14).
pub const SUBJECT_KEY_IDENTIFIER: &[u64] = &[2, 5, 29, 14];

impl<'a> CertParts<'a> {
    pub fn parse(der: &'a [u8]) -> Result<CertParts<'a>, DerError> {
        let cert = Reader::new(der).expect(SEQUENCE)?;
        let tbs = cert.reader().expect(SEQUENCE)?;
        let mut r = tbs.reader();
        r.optional(CONTEXT_0)?; // version
        r.expect(INTEGER)?; // serialNumber
        r.expect(SEQUENCE)?; // signature
        let issuer = r.expect(SEQUENCE)?;
        r.expect(SEQUENCE)?; // validity
        let subject = r.expect(SEQUENCE)?;
        let spki = r.expect(SEQUENCE)?;
        let mut extensions = Vec::new();
        while !r.is_empty() {
            let t = r.read()?;
            if t.tag != CONTEXT_3 {
                continue; // issuerUniqueID, subjectUniqueID
            }
            let mut list = t.reader().expect(SEQUENCE)?.reader();
            while !list.is_empty() {
                let mut ext = list.expect(SEQUENCE)?.reader();
                let id = oid_arcs(ext.expect(OID)?.value)?;
                let critical = ext
                    .optional(BOOLEAN)?
                    .is_some_and(|b| b.value.first().is_some_and(|v| *v != 0));
                let value = ext.expect(OCTET_STRING)?.value;
                extensions.push((critical, id, value));
            }
        }
        Ok(CertParts {
            issuer,
            subject,
            spki,
            extensions,
        })
    }

    /// The contents of the extension `id`.
    pub fn extension(&self, id: &[u64]) -> Option<&'a [u8]> {
        self.extensions
            .iter()
            .find(|(_, i, _)| i == id)
            .map(|(_, _, v)| *v)
    }

    /// The key identifier of the subjectKeyIdentifier extension, if there is one.
    pub fn subject_key_id(&self) -> Result<Option<Vec<u8>>, DerError> {
        match self.extension(SUBJECT_KEY_IDENTIFIER) {
            None => Ok(None),
            Some(v) => Ok(Some(Reader::new(v).expect(OCTET_STRING)?.value.to_vec())),
        }
    }
}

/// `id-ecPublicKey` (1.2.840.10045.2.1), encoded.
const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// `rsaEncryption` (1.2.840.113549.1.1.1), encoded, and its NULL parameters.
const RSA_ENCRYPTION: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];
/// `INTEGER 0`: PKCS #8 version 1.
const VERSION_0: &[u8] = &[0x02, 0x01, 0x00];

/// A SEC 1 `ECPrivateKey` (Go's `x509.MarshalECPrivateKey`, PEM `EC PRIVATE KEY`) wrapped as
/// PKCS #8 for ring. The curve comes from the key's `[0]` parameters, which Go always writes.
pub fn sec1_to_pkcs8(sec1: &[u8]) -> Result<Vec<u8>, DerError> {
    let key = Reader::new(sec1).expect(SEQUENCE)?;
    let mut r = key.reader();
    r.expect(INTEGER)?;
    r.expect(OCTET_STRING)?;
    let params = r
        .optional(CONTEXT_0)?
        .ok_or(DerError("EC private key names no curve"))?;
    let curve = params.reader().expect(OID)?;
    let alg = tlv(SEQUENCE, &[EC_PUBLIC_KEY, curve.raw].concat());
    let body = [VERSION_0, &alg, &tlv(OCTET_STRING, key.raw)].concat();
    Ok(tlv(SEQUENCE, &body))
}

/// A PKCS #1 `RSAPrivateKey` (PEM `RSA PRIVATE KEY`) wrapped as PKCS #8.
pub fn pkcs1_to_pkcs8(pkcs1: &[u8]) -> Vec<u8> {
    let alg = tlv(SEQUENCE, RSA_ENCRYPTION);
    tlv(
        SEQUENCE,
        &[VERSION_0, &alg, &tlv(OCTET_STRING, pkcs1)].concat(),
    )
}

/// A PKCS #8 EC key (as ring generates it) as SEC 1 with the curve written into the key, the
/// form Go's `MarshalECPrivateKey` produces and every Consul version reads.
pub fn pkcs8_to_sec1(pkcs8: &[u8]) -> Result<Vec<u8>, DerError> {
    let mut r = Reader::new(pkcs8).expect(SEQUENCE)?.reader();
    r.expect(INTEGER)?;
    let mut alg = r.expect(SEQUENCE)?.reader();
    if alg.expect(OID)?.raw != EC_PUBLIC_KEY {
        return Err(DerError("not an EC key"));
    }
    let curve = alg.expect(OID)?;
    let inner = r.expect(OCTET_STRING)?;
    let mut key = Reader::new(inner.value).expect(SEQUENCE)?.reader();
    let version = key.expect(INTEGER)?;
    let private = key.expect(OCTET_STRING)?;
    key.optional(CONTEXT_0)?; // replaced by the curve from the algorithm
    let mut body = [version.raw, private.raw, &tlv(CONTEXT_0, curve.raw)].concat();
    while !key.is_empty() {
        body.extend_from_slice(key.read()?.raw);
    }
    Ok(tlv(SEQUENCE, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_short_and_long() {
        for n in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let value = vec![7u8; n];
            let enc = tlv(OCTET_STRING, &value);
            let t = Reader::new(&enc).read().unwrap();
            assert_eq!(
                (t.tag, t.value.len(), t.raw.len()),
                (OCTET_STRING, n, enc.len())
            );
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(Reader::new(&[0x30]).read().is_err());
        assert!(Reader::new(&[0x30, 0x05, 0x00]).read().is_err());
        assert!(Reader::new(&[0x30, 0x85, 1, 2, 3, 4, 5]).read().is_err());
        assert!(Reader::new(&[0x1f, 0x01, 0x00]).read().is_err());
        assert!(oid_arcs(&[0x2a, 0x86]).is_err());
    }

    #[test]
    fn oids() {
        assert_eq!(oid_arcs(&[0x55, 0x1d, 0x0e]).unwrap(), vec![2, 5, 29, 14]);
        assert_eq!(
            oid_arcs(&EC_PUBLIC_KEY[2..]).unwrap(),
            vec![1, 2, 840, 10045, 2, 1]
        );
    }
}
