//! The go-msgpack dialect memberlist and Serf speak, on top of `rmp`.
//!
//! HashiCorp encodes every message with `codec.MsgpackHandle{}` from
//! hashicorp/go-msgpack (the old ugorji codec) with `WriteExt` off. That
//! handle has three quirks we must reproduce to interoperate byte for byte:
//!
//! * Go structs are msgpack **maps keyed by the Go field name**, in
//!   declaration order; `omitempty` fields are left out when zero.
//! * `[]byte` and `string` are both written as the *old-spec raw* type:
//!   fixstr (< 32 bytes), str16, str32 — never str8 (0xd9) and never bin.
//!   Newer peers may still send str8 or bin8/16/32, so the reader accepts
//!   every string and binary form for both Go types.
//! * Integers use the smallest encoding for their value (positive fixint,
//!   u8, u16, ...), nil slices are written as nil.
//!
//! Decoding goes through a small dynamic [`Value`] tree: the messages are
//! tiny, the tree makes skipping unknown keys (fields added by newer
//! versions) trivial, and a missing key simply leaves the Go zero value,
//! exactly like go-msgpack does.

use crate::error::{Error, Result};
use rmp::Marker;

/// Nesting limit for untrusted input (memberlist never goes beyond ~4).
const MAX_DEPTH: usize = 32;

/// A decoded msgpack value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// nil
    Nil,
    /// true / false
    Bool(bool),
    /// Any non-negative integer.
    Uint(u64),
    /// A negative integer.
    Int(i64),
    /// float32 / float64 (widened).
    Float(f64),
    /// Any str or bin form: Go uses the same raw type for `string` and `[]byte`.
    Bytes(Vec<u8>),
    /// array
    Array(Vec<Value>),
    /// map, in wire order
    Map(Vec<(Value, Value)>),
    /// ext types (never sent by memberlist; kept to be able to skip them)
    Ext(i8, Vec<u8>),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or(Error::Truncated("msgpack value"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn bytes(&mut self, n: usize) -> Result<Value> {
        Ok(Value::Bytes(self.take(n)?.to_vec()))
    }
    fn array(&mut self, n: usize, depth: usize) -> Result<Value> {
        // Every element takes at least one byte: refuse absurd lengths early.
        if n > self.buf.len() - self.pos {
            return Err(Error::Truncated("msgpack array"));
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(v))
    }
    fn map(&mut self, n: usize, depth: usize) -> Result<Value> {
        if n.saturating_mul(2) > self.buf.len() - self.pos {
            return Err(Error::Truncated("msgpack map"));
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.value(depth + 1)?;
            let val = self.value(depth + 1)?;
            v.push((k, val));
        }
        Ok(Value::Map(v))
    }
    fn ext(&mut self, n: usize) -> Result<Value> {
        let t = self.u8()? as i8;
        Ok(Value::Ext(t, self.take(n)?.to_vec()))
    }
    fn value(&mut self, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(Error::Msgpack("nesting too deep".into()));
        }
        let m = Marker::from_u8(self.u8()?);
        Ok(match m {
            Marker::Null => Value::Nil,
            Marker::True => Value::Bool(true),
            Marker::False => Value::Bool(false),
            Marker::FixPos(n) => Value::Uint(n as u64),
            Marker::FixNeg(n) => Value::Int(n as i64),
            Marker::U8 => Value::Uint(self.u8()? as u64),
            Marker::U16 => Value::Uint(self.u16()? as u64),
            Marker::U32 => Value::Uint(self.u32()? as u64),
            Marker::U64 => Value::Uint(self.u64()?),
            Marker::I8 => int(self.u8()? as i8 as i64),
            Marker::I16 => int(self.u16()? as i16 as i64),
            Marker::I32 => int(self.u32()? as i32 as i64),
            Marker::I64 => int(self.u64()? as i64),
            Marker::F32 => Value::Float(f32::from_bits(self.u32()?) as f64),
            Marker::F64 => Value::Float(f64::from_bits(self.u64()?)),
            Marker::FixStr(n) => self.bytes(n as usize)?,
            Marker::Str8 | Marker::Bin8 => {
                let n = self.u8()? as usize;
                self.bytes(n)?
            }
            Marker::Str16 | Marker::Bin16 => {
                let n = self.u16()? as usize;
                self.bytes(n)?
            }
            Marker::Str32 | Marker::Bin32 => {
                let n = self.u32()? as usize;
                self.bytes(n)?
            }
            Marker::FixArray(n) => self.array(n as usize, depth)?,
            Marker::Array16 => {
                let n = self.u16()? as usize;
                self.array(n, depth)?
            }
            Marker::Array32 => {
                let n = self.u32()? as usize;
                self.array(n, depth)?
            }
            Marker::FixMap(n) => self.map(n as usize, depth)?,
            Marker::Map16 => {
                let n = self.u16()? as usize;
                self.map(n, depth)?
            }
            Marker::Map32 => {
                let n = self.u32()? as usize;
                self.map(n, depth)?
            }
            Marker::FixExt1 => self.ext(1)?,
            Marker::FixExt2 => self.ext(2)?,
            Marker::FixExt4 => self.ext(4)?,
            Marker::FixExt8 => self.ext(8)?,
            Marker::FixExt16 => self.ext(16)?,
            Marker::Ext8 => {
                let n = self.u8()? as usize;
                self.ext(n)?
            }
            Marker::Ext16 => {
                let n = self.u16()? as usize;
                self.ext(n)?
            }
            Marker::Ext32 => {
                let n = self.u32()? as usize;
                self.ext(n)?
            }
            Marker::Reserved => return Err(Error::Msgpack("reserved marker 0xc1".into())),
        })
    }
}

fn int(i: i64) -> Value {
    if i >= 0 {
        Value::Uint(i as u64)
    } else {
        Value::Int(i)
    }
}

/// Decode one value from the front of `buf`; returns it and the bytes consumed.
pub fn read_value(buf: &[u8]) -> Result<(Value, usize)> {
    let mut r = Reader { buf, pos: 0 };
    let v = r.value(0)?;
    Ok((v, r.pos))
}

/// Decode exactly one value; trailing bytes are ignored like go-msgpack does
/// when decoding from a byte slice.
pub fn decode_value(buf: &[u8]) -> Result<Value> {
    read_value(buf).map(|(v, _)| v)
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Uint(_) | Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Bytes(_) => "raw",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
            Value::Ext(..) => "ext",
        }
    }
}

/// The fields of a decoded Go struct, looked up by Go field name.
///
/// Missing keys give the Go zero value; unknown keys are ignored (skipped).
#[derive(Debug, Clone)]
pub struct Fields {
    entries: Vec<(Vec<u8>, Value)>,
}

fn type_err(field: &str, expected: &'static str) -> Error {
    Error::FieldType {
        field: field.to_string(),
        expected,
    }
}

impl Fields {
    /// Decode a struct (a msgpack map with string keys) from `buf`;
    /// returns the fields and the bytes consumed.
    pub fn read(buf: &[u8]) -> Result<(Fields, usize)> {
        let (v, n) = read_value(buf)?;
        Ok((Fields::from_value(v, "struct")?, n))
    }

    /// Decode a struct that must be the whole of `buf` (trailing bytes ignored).
    pub fn decode(buf: &[u8]) -> Result<Fields> {
        Fields::read(buf).map(|(f, _)| f)
    }

    /// Interpret an already decoded value as a struct.
    pub fn from_value(v: Value, what: &str) -> Result<Fields> {
        match v {
            Value::Map(m) => {
                let mut entries = Vec::with_capacity(m.len());
                for (k, v) in m {
                    match k {
                        Value::Bytes(k) => entries.push((k, v)),
                        other => {
                            return Err(Error::Msgpack(format!(
                                "{what}: struct key is {}, not a string",
                                other.kind()
                            )))
                        }
                    }
                }
                Ok(Fields { entries })
            }
            // go-msgpack decodes nil into a zero struct.
            Value::Nil => Ok(Fields {
                entries: Vec::new(),
            }),
            other => Err(Error::Msgpack(format!(
                "{what}: expected a map, got {}",
                other.kind()
            ))),
        }
    }

    /// The raw value of a field, if present (last occurrence wins).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k.as_slice() == name.as_bytes())
            .map(|(_, v)| v)
    }

    /// Whether the key was present on the wire.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// An unsigned integer field (nil/missing → 0).
    pub fn uint(&self, name: &str) -> Result<u64> {
        match self.get(name) {
            None | Some(Value::Nil) => Ok(0),
            Some(Value::Uint(u)) => Ok(*u),
            Some(_) => Err(type_err(name, "unsigned integer")),
        }
    }

    /// An unsigned integer field that must fit `max`.
    pub fn uint_max(&self, name: &str, max: u64) -> Result<u64> {
        let v = self.uint(name)?;
        if v > max {
            return Err(type_err(name, "smaller integer"));
        }
        Ok(v)
    }

    /// `u32` field.
    pub fn u32(&self, name: &str) -> Result<u32> {
        Ok(self.uint_max(name, u32::MAX as u64)? as u32)
    }

    /// `u16` field.
    pub fn u16(&self, name: &str) -> Result<u16> {
        Ok(self.uint_max(name, u16::MAX as u64)? as u16)
    }

    /// `u8` field.
    pub fn u8(&self, name: &str) -> Result<u8> {
        Ok(self.uint_max(name, u8::MAX as u64)? as u8)
    }

    /// A signed integer field (Go `int`, `time.Duration`).
    pub fn int(&self, name: &str) -> Result<i64> {
        match self.get(name) {
            None | Some(Value::Nil) => Ok(0),
            Some(Value::Int(i)) => Ok(*i),
            Some(Value::Uint(u)) => i64::try_from(*u).map_err(|_| type_err(name, "int64")),
            Some(_) => Err(type_err(name, "integer")),
        }
    }

    /// A bool field.
    pub fn bool(&self, name: &str) -> Result<bool> {
        match self.get(name) {
            None | Some(Value::Nil) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(type_err(name, "bool")),
        }
    }

    /// A float field.
    pub fn float(&self, name: &str) -> Result<f64> {
        match self.get(name) {
            None | Some(Value::Nil) => Ok(0.0),
            Some(Value::Float(f)) => Ok(*f),
            Some(Value::Uint(u)) => Ok(*u as f64),
            Some(Value::Int(i)) => Ok(*i as f64),
            Some(_) => Err(type_err(name, "float")),
        }
    }

    /// A `[]byte` field (any str/bin form; nil/missing → empty).
    pub fn bytes(&self, name: &str) -> Result<Vec<u8>> {
        value_bytes(self.get(name), name)
    }

    /// A `string` field. Go strings may hold any bytes; invalid UTF-8 is
    /// replaced rather than rejected so a peer's odd node name cannot make
    /// a whole packet undecodable.
    pub fn string(&self, name: &str) -> Result<String> {
        let b = self.bytes(name)?;
        Ok(match String::from_utf8(b) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// An array field (nil/missing → empty).
    pub fn array(&self, name: &str) -> Result<Vec<Value>> {
        match self.get(name) {
            None | Some(Value::Nil) => Ok(Vec::new()),
            Some(Value::Array(a)) => Ok(a.clone()),
            Some(_) => Err(type_err(name, "array")),
        }
    }

    /// A map field (nil/missing → empty), in wire order.
    pub fn map(&self, name: &str) -> Result<Vec<(Value, Value)>> {
        match self.get(name) {
            None | Some(Value::Nil) => Ok(Vec::new()),
            Some(Value::Map(m)) => Ok(m.clone()),
            Some(_) => Err(type_err(name, "map")),
        }
    }
}

/// Interpret a value as a Go `[]byte`/`string`.
pub fn value_bytes(v: Option<&Value>, name: &str) -> Result<Vec<u8>> {
    match v {
        None | Some(Value::Nil) => Ok(Vec::new()),
        Some(Value::Bytes(b)) => Ok(b.clone()),
        // go-msgpack also accepts an array of small ints for []uint8.
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                Value::Uint(u) if *u <= 255 => Ok(*u as u8),
                _ => Err(type_err(name, "bytes")),
            })
            .collect(),
        Some(_) => Err(type_err(name, "bytes")),
    }
}

/// Interpret a value as a Go `string`.
pub fn value_string(v: Option<&Value>, name: &str) -> Result<String> {
    let b = value_bytes(v, name)?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

/// Interpret a value as an unsigned integer.
pub fn value_uint(v: Option<&Value>, name: &str) -> Result<u64> {
    match v {
        None | Some(Value::Nil) => Ok(0),
        Some(Value::Uint(u)) => Ok(*u),
        Some(_) => Err(type_err(name, "unsigned integer")),
    }
}

// ---------------------------------------------------------------- encoding

/// Appends go-msgpack-dialect values to a byte vector.
///
/// Writing into a `Vec<u8>` cannot fail, so these helpers are infallible.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    /// The bytes written so far.
    pub buf: Vec<u8>,
}

impl Writer {
    /// A writer starting with `prefix` (typically the message type byte).
    pub fn with_prefix(prefix: &[u8]) -> Writer {
        Writer {
            buf: prefix.to_vec(),
        }
    }

    /// Map header for a struct of `n` fields.
    pub fn map_len(&mut self, n: u32) -> &mut Self {
        let _ = rmp::encode::write_map_len(&mut self.buf, n);
        self
    }

    /// Array header.
    pub fn array_len(&mut self, n: u32) -> &mut Self {
        let _ = rmp::encode::write_array_len(&mut self.buf, n);
        self
    }

    /// Old-spec raw: fixraw, raw16, raw32 (no str8, no bin) — used for
    /// both Go `string` and `[]byte`.
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        let n = b.len();
        if n < 32 {
            self.buf.push(0xa0 | n as u8);
        } else if n < 65536 {
            self.buf.push(0xda);
            self.buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            self.buf.push(0xdb);
            self.buf.extend_from_slice(&(n as u32).to_be_bytes());
        }
        self.buf.extend_from_slice(b);
        self
    }

    /// A Go `string`.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.raw(s.as_bytes())
    }

    /// A Go `[]byte`: empty is written as nil, as Go writes a nil slice.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        if b.is_empty() {
            self.nil()
        } else {
            self.raw(b)
        }
    }

    /// Smallest unsigned encoding.
    pub fn uint(&mut self, v: u64) -> &mut Self {
        let _ = rmp::encode::write_uint(&mut self.buf, v);
        self
    }

    /// Smallest signed encoding (non-negative values as unsigned, like go-msgpack).
    pub fn int(&mut self, v: i64) -> &mut Self {
        if v >= 0 {
            self.uint(v as u64)
        } else {
            let _ = rmp::encode::write_sint(&mut self.buf, v);
            self
        }
    }

    /// bool
    pub fn bool(&mut self, v: bool) -> &mut Self {
        let _ = rmp::encode::write_bool(&mut self.buf, v);
        self
    }

    /// float64
    pub fn f64(&mut self, v: f64) -> &mut Self {
        let _ = rmp::encode::write_f64(&mut self.buf, v);
        self
    }

    /// nil
    pub fn nil(&mut self) -> &mut Self {
        let _ = rmp::encode::write_nil(&mut self.buf);
        self
    }

    /// A struct field key.
    pub fn key(&mut self, name: &str) -> &mut Self {
        self.raw(name.as_bytes())
    }

    /// Write a generic value back (used for pass-through fields).
    pub fn value(&mut self, v: &Value) -> &mut Self {
        match v {
            Value::Nil => self.nil(),
            Value::Bool(b) => self.bool(*b),
            Value::Uint(u) => self.uint(*u),
            Value::Int(i) => self.int(*i),
            Value::Float(f) => self.f64(*f),
            Value::Bytes(b) => self.raw(b),
            Value::Array(a) => {
                self.array_len(a.len() as u32);
                for x in a {
                    self.value(x);
                }
                self
            }
            Value::Map(m) => {
                self.map_len(m.len() as u32);
                for (k, x) in m {
                    self.value(k);
                    self.value(x);
                }
                self
            }
            Value::Ext(t, d) => {
                let _ = rmp::encode::write_ext_meta(&mut self.buf, d.len() as u32, *t);
                self.buf.extend_from_slice(d);
                self
            }
        }
    }

    /// Take the bytes.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Collects the fields of a Go struct and writes them as a map sorted by
/// field name — the order the go-msgpack build inside serf/memberlist emits
/// (see the golden captures: `Node`, `SeqNo`, `SourceAddr`, ...).
#[derive(Debug, Default)]
pub struct StructWriter {
    fields: Vec<(&'static str, Writer)>,
}

impl StructWriter {
    /// Start a field; write its value into the returned writer.
    pub fn field(&mut self, name: &'static str) -> &mut Writer {
        self.fields.push((name, Writer::default()));
        let last = self.fields.len() - 1;
        &mut self.fields[last].1
    }

    /// Write the map (fields sorted bytewise by name) into `w`.
    pub fn write_to(mut self, w: &mut Writer) {
        self.fields
            .sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        w.map_len(self.fields.len() as u32);
        for (k, v) in self.fields {
            w.key(k);
            w.buf.extend_from_slice(&v.buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_uses_old_spec() {
        let mut w = Writer::default();
        w.raw(&[b'x'; 31]);
        assert_eq!(w.buf[0], 0xbf);
        let mut w = Writer::default();
        w.raw(&[b'x'; 32]);
        assert_eq!(&w.buf[..3], &[0xda, 0, 32]);
        let mut w = Writer::default();
        w.raw(&[b'x'; 70000]);
        assert_eq!(w.buf[0], 0xdb);
    }

    #[test]
    fn reads_str8_and_bin() {
        for buf in [
            vec![0xd9, 2, b'h', b'i'],
            vec![0xc4, 2, b'h', b'i'],
            vec![0xc5, 0, 2, b'h', b'i'],
            vec![0xc6, 0, 0, 0, 2, b'h', b'i'],
            vec![0xa2, b'h', b'i'],
        ] {
            assert_eq!(decode_value(&buf).unwrap(), Value::Bytes(b"hi".to_vec()));
        }
    }

    #[test]
    fn skips_unknown_keys_and_defaults_missing() {
        let mut w = Writer::default();
        w.map_len(3)
            .key("Future")
            .array_len(2)
            .uint(1)
            .map_len(0)
            .key("SeqNo")
            .uint(300)
            .key("Neg")
            .int(-5);
        let f = Fields::decode(&w.buf).unwrap();
        assert_eq!(f.u32("SeqNo").unwrap(), 300);
        assert_eq!(f.int("Neg").unwrap(), -5);
        assert_eq!(f.string("Node").unwrap(), "");
        assert!(f.u8("SeqNo").is_err());
    }

    #[test]
    fn truncated_and_hostile_inputs_error() {
        assert!(decode_value(&[0xda, 0, 5, 1]).is_err());
        assert!(decode_value(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_value(&[0xc1]).is_err());
        assert!(decode_value(&[0x91; 100]).is_err());
        assert!(decode_value(&[]).is_err());
    }
}
