//! A small parser for HCL version 1, the dialect Consul's config files are written in.
//!
//! Why not `hcl-rs`: it implements HCL2, which rejects forms Consul users write every day, such as
//! several attributes on one line (`service { name = "web" port = 80 }`). Consul still decodes its
//! files with HCL1, so we parse HCL1 too and hand the result over as a `serde_json::Value`; the
//! JSON and HCL routes then share one decoder and one set of error messages.
//!
//! Grammar covered: `#`, `//` and `/* */` comments; items `key = value`, `key { ... }`,
//! `key "label" { ... }` (labels nest as objects, like HCL1's JSON form); items separated by
//! newlines, commas or plain whitespace; values: strings with escapes, heredocs (`<<EOF`,
//! `<<-EOF`), integers, floats, `true`/`false`, lists and objects. A key repeated with a block
//! value becomes an array of objects (HCL1 decodes every block as a list); a repeated plain value
//! is replaced by the later one. No interpolation: `${...}` is kept as text, as Consul does.

use serde_json::{Map, Number, Value};

use crate::error::HclError;

/// Parse an HCL1 document into a JSON object.
pub fn parse(src: &str) -> Result<Value, HclError> {
    let mut p = Parser {
        s: src.as_bytes(),
        src,
        i: 0,
    };
    let body = p.body(None)?;
    Ok(Value::Object(body))
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn err(&self, msg: impl std::fmt::Display) -> HclError {
        let before = &self.src[..self.i.min(self.src.len())];
        let line = before.matches('\n').count() + 1;
        let col = before
            .rfind('\n')
            .map_or(before.len(), |n| before.len() - n - 1)
            + 1;
        HclError {
            line,
            column: col,
            message: msg.to_string(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Skip spaces, newlines and comments.
    fn skip_ws(&mut self) -> Result<(), HclError> {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' | b'\n' => self.i += 1,
                b'#' => self.skip_line(),
                b'/' if self.s.get(self.i + 1) == Some(&b'/') => self.skip_line(),
                b'/' if self.s.get(self.i + 1) == Some(&b'*') => {
                    let start = self.i;
                    match self.src[self.i + 2..].find("*/") {
                        Some(n) => self.i += n + 4,
                        None => {
                            self.i = start;
                            return Err(self.err("unterminated /* comment"));
                        }
                    }
                }
                _ => break,
            }
        }
        Ok(())
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.peek() {
            if c == b'\n' {
                break;
            }
            self.i += 1;
        }
    }

    /// Items up to `close` (or the end of input for the top level).
    fn body(&mut self, close: Option<u8>) -> Result<Map<String, Value>, HclError> {
        let mut out = Map::new();
        loop {
            self.skip_ws()?;
            match self.peek() {
                None if close.is_none() => return Ok(out),
                None => return Err(self.err("unexpected end of input, expected `}`")),
                Some(c) if Some(c) == close => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b',') => {
                    self.i += 1;
                    continue;
                }
                _ => {}
            }
            let (key, value, is_block) = self.item()?;
            insert(&mut out, key, value, is_block);
        }
    }

    /// `key = value`, `key { }` or `key "label" ... { }`.
    fn item(&mut self) -> Result<(String, Value, bool), HclError> {
        let key = self.key()?;
        self.skip_ws()?;
        match self.peek() {
            Some(b'=') | Some(b':') => {
                self.i += 1;
                self.skip_ws()?;
                let v = self.value()?;
                Ok((key, v, false))
            }
            Some(b'{') => {
                self.i += 1;
                let body = self.body(Some(b'}'))?;
                Ok((key, Value::Object(body), true))
            }
            Some(c) if c == b'"' || is_ident_start(c) => {
                // labelled block: key "label" { ... } nests as {key: {label: {...}}}
                let (label, inner, _) = self.item()?;
                let mut m = Map::new();
                m.insert(label, inner);
                Ok((key, Value::Object(m), true))
            }
            _ => Err(self.err(format!("expected `=` or `{{` after key \"{key}\""))),
        }
    }

    fn key(&mut self) -> Result<String, HclError> {
        match self.peek() {
            Some(b'"') => self.string(),
            Some(c) if is_ident_start(c) => Ok(self.ident()),
            Some(c) => Err(self.err(format!("expected a key, found `{}`", c as char))),
            None => Err(self.err("expected a key, found end of input")),
        }
    }

    fn ident(&mut self) -> String {
        let start = self.i;
        while self.peek().is_some_and(is_ident_char) {
            self.i += 1;
        }
        self.src[start..self.i].to_string()
    }

    fn value(&mut self) -> Result<Value, HclError> {
        match self.peek() {
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b'<') if self.s.get(self.i + 1) == Some(&b'<') => {
                Ok(Value::String(self.heredoc()?))
            }
            Some(b'{') => {
                self.i += 1;
                Ok(Value::Object(self.body(Some(b'}'))?))
            }
            Some(b'[') => {
                self.i += 1;
                self.list()
            }
            Some(c) if c == b'-' || c == b'+' || c.is_ascii_digit() || c == b'.' => self.number(),
            Some(c) if is_ident_start(c) => {
                let start = self.i;
                let word = self.ident();
                match word.as_str() {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    _ => {
                        self.i = start;
                        Err(self.err(format!("unexpected `{word}`: strings must be quoted")))
                    }
                }
            }
            Some(c) => Err(self.err(format!("expected a value, found `{}`", c as char))),
            None => Err(self.err("expected a value, found end of input")),
        }
    }

    fn list(&mut self) -> Result<Value, HclError> {
        let mut items = Vec::new();
        loop {
            self.skip_ws()?;
            match self.peek() {
                Some(b']') => {
                    self.i += 1;
                    return Ok(Value::Array(items));
                }
                None => return Err(self.err("unexpected end of input, expected `]`")),
                _ => {}
            }
            items.push(self.value()?);
            self.skip_ws()?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {}
                _ => return Err(self.err("expected `,` or `]` in list")),
            }
        }
    }

    fn number(&mut self) -> Result<Value, HclError> {
        let start = self.i;
        if matches!(self.peek(), Some(b'-') | Some(b'+')) {
            self.i += 1;
        }
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-' || c == b'+')
        {
            // stop a trailing sign that is not an exponent's
            let c = self.peek().unwrap_or(0);
            if (c == b'-' || c == b'+') && !matches!(self.s[self.i - 1], b'e' | b'E') {
                break;
            }
            self.i += 1;
        }
        let text = &self.src[start..self.i];
        let t = text.strip_prefix('+').unwrap_or(text);
        if let Ok(n) = t.parse::<i64>() {
            return Ok(Value::Number(n.into()));
        }
        let (neg, digits) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        if let Some(hex) = digits
            .strip_prefix("0x")
            .or_else(|| digits.strip_prefix("0X"))
        {
            if let Ok(n) = i64::from_str_radix(hex, 16) {
                return Ok(Value::Number((if neg { -n } else { n }).into()));
            }
        }
        match t.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Ok(Value::Number(n)),
            None => {
                self.i = start;
                Err(self.err(format!("invalid number `{text}`")))
            }
        }
    }

    fn string(&mut self) -> Result<String, HclError> {
        let start = self.i;
        self.i += 1; // opening quote
        let mut out = String::new();
        loop {
            let rest = &self.src[self.i..];
            let Some(c) = rest.chars().next() else {
                self.i = start;
                return Err(self.err("unterminated string"));
            };
            self.i += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\n' => {
                    self.i = start;
                    return Err(self.err("newline in string"));
                }
                '\\' => {
                    let Some(e) = self.src[self.i..].chars().next() else {
                        return Err(self.err("unterminated string"));
                    };
                    self.i += e.len_utf8();
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        'u' | 'U' => {
                            let len = if e == 'u' { 4 } else { 8 };
                            let hex = self.src.get(self.i..self.i + len).unwrap_or("");
                            let ch = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
                            match ch {
                                Some(ch) if hex.len() == len => {
                                    out.push(ch);
                                    self.i += len;
                                }
                                _ => return Err(self.err("invalid unicode escape")),
                            }
                        }
                        other => return Err(self.err(format!("invalid escape `\\{other}`"))),
                    }
                }
                c => out.push(c),
            }
        }
    }

    /// `<<EOF\n...\nEOF` and the indented form `<<-EOF` (common leading whitespace removed).
    fn heredoc(&mut self) -> Result<String, HclError> {
        let start = self.i;
        self.i += 2;
        let indented = self.peek() == Some(b'-');
        if indented {
            self.i += 1;
        }
        let marker = self.ident();
        if marker.is_empty() || self.peek() != Some(b'\n') && self.peek() != Some(b'\r') {
            self.i = start;
            return Err(self.err("invalid heredoc: expected <<MARKER and a newline"));
        }
        self.skip_line();
        self.i += 1;
        let mut lines = Vec::new();
        loop {
            if self.i >= self.s.len() {
                self.i = start;
                return Err(self.err(format!("heredoc not terminated by {marker}")));
            }
            let line_start = self.i;
            self.skip_line();
            let line = self.src[line_start..self.i].trim_end_matches('\r');
            if self.i < self.s.len() {
                self.i += 1;
            }
            if line.trim() == marker && (indented || line == marker) {
                break;
            }
            lines.push(line);
        }
        if indented {
            let indent = lines
                .iter()
                .filter(|l| !l.trim().is_empty())
                .map(|l| l.len() - l.trim_start().len())
                .min()
                .unwrap_or(0);
            let trimmed: Vec<&str> = lines
                .iter()
                .map(|l| l.get(indent..).unwrap_or(""))
                .collect();
            Ok(trimmed.join("\n") + "\n")
        } else {
            Ok(lines.join("\n") + "\n")
        }
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.'
}

/// Insert an item; repeated blocks collect into an array, like HCL1's list-of-objects decoding.
fn insert(out: &mut Map<String, Value>, key: String, value: Value, is_block: bool) {
    match out.get_mut(&key) {
        Some(Value::Array(items)) if is_block && items.iter().all(Value::is_object) => {
            items.push(value)
        }
        Some(existing @ Value::Object(_)) if is_block => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        _ => {
            out.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn consul_style_blocks() {
        let v = parse(
            r#"
# comment
service { name = "web" port = 80 check { http = "http://x" interval = "10s" } }
service {
  name = "db"   // trailing comment
  checks = [{ tcp = "1:2", interval = "5s" }]
}
ports { dns = 8600 }
ports = { http = -1 }
/* block
   comment */
retry_join = ["1.2.3.4", "5.6.7.8",]
node_meta { a = "b" }
telemetry { prometheus_retention_time = "30s", disable_hostname = true }
ratio = 1.5
"#,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({
                "service": [
                    {"name": "web", "port": 80, "check": {"http": "http://x", "interval": "10s"}},
                    {"name": "db", "checks": [{"tcp": "1:2", "interval": "5s"}]}
                ],
                "ports": {"http": -1},
                "retry_join": ["1.2.3.4", "5.6.7.8"],
                "node_meta": {"a": "b"},
                "telemetry": {"prometheus_retention_time": "30s", "disable_hostname": true},
                "ratio": 1.5
            })
        );
    }

    #[test]
    fn labels_strings_and_heredocs() {
        let v = parse(
            "\"quoted key\" = \"a\\\"b\\u0041\"\nx \"l\" { y = true }\nh = <<-EOF\n    one\n      two\n    EOF\n",
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"quoted key": "a\"bA", "x": {"l": {"y": true}}, "h": "one\n  two\n"})
        );
    }

    #[test]
    fn errors_have_positions() {
        let e = parse("a = = 1").unwrap_err();
        assert_eq!((e.line, e.column), (1, 5));
        assert!(e.to_string().starts_with("line 1, column 5: "), "{e}");
        let e = parse("a {\n b = 1\n").unwrap_err().to_string();
        assert!(e.contains("expected `}`"), "{e}");
        let e = parse("a = bare").unwrap_err().to_string();
        assert!(e.contains("must be quoted"), "{e}");
    }
}
