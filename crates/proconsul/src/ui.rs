//! Terminal output the way Consul's CLI formats it: `columnize` tables (two spaces between
//! columns, last column unpadded), `tabwriter` blocks, and the error type that carries an exit
//! code up to `main`.
//!
//! Output goes through [`out`]/[`err`], which ignore a closed pipe (`proconsul members | head`)
//! instead of panicking like `println!`.

use std::fmt;
use std::io::Write;

/// A command's non-zero outcome: the message for stderr (may be empty) and the exit code.
#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub message: String,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// Fail with exit code 1 and `message` on stderr.
pub fn fail(message: impl Into<String>) -> anyhow::Error {
    Exit {
        code: 1,
        message: message.into(),
    }
    .into()
}

/// Fail with `code` and nothing printed.
pub fn exit_silently(code: i32) -> anyhow::Error {
    Exit {
        code,
        message: String::new(),
    }
    .into()
}

/// Write `s` and a newline to stdout (mitchellh/cli `Ui.Output`/`Ui.Info`).
pub fn out(s: &str) {
    out_bytes(s.as_bytes());
}

/// Write raw bytes and a newline to stdout: KV values need not be UTF-8.
pub fn out_bytes(b: &[u8]) {
    let mut o = std::io::stdout().lock();
    let _ = o
        .write_all(b)
        .and_then(|_| o.write_all(b"\n"))
        .and_then(|_| o.flush());
}

/// Write `s` and a newline to stderr (`Ui.Error`).
pub fn err(s: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{s}");
}

/// ryanuber/columnize with Consul's settings: each row's cells are trimmed, every column but a
/// row's last is left-aligned to the widest cell of that column, columns are joined by two
/// spaces, and there is no trailing newline.
pub fn columnize(rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| r.iter().map(|c| c.trim()).collect())
        .collect();
    let mut widths: Vec<usize> = Vec::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            let w = cell.chars().count();
            if widths.len() <= i {
                widths.push(w);
            } else if widths[i] < w {
                widths[i] = w;
            }
        }
    }
    let mut out = String::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count();
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push('\n');
    }
    out.pop();
    out
}

/// Go's `text/tabwriter` with minwidth 0, padding `padding` and space padding, for rows of
/// cells where only the last cell of a row is free-form: every other cell is padded to its
/// column's widest cell plus `padding`. Bytes, because KV values are printed raw.
pub fn tabwrite(rows: &[Vec<Vec<u8>>], padding: usize) -> Vec<u8> {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            let w = String::from_utf8_lossy(cell).chars().count();
            if widths.len() <= i {
                widths.resize(i + 1, 0);
            }
            widths[i] = widths[i].max(w);
        }
    }
    let mut out = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        for (i, cell) in row.iter().enumerate() {
            out.extend_from_slice(cell);
            if i + 1 < row.len() {
                let w = String::from_utf8_lossy(cell).chars().count();
                out.extend_from_slice(" ".repeat(widths[i] + padding - w).as_bytes());
            }
        }
        if r + 1 < rows.len() {
            out.push(b'\n');
        }
    }
    out
}

/// Go's `net.TCPAddr{IP, Port}.String()`: `ip:port`, `[v6]:port`, `:port` for an unparsable IP.
pub fn host_port(ip: &str, port: u16) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => format!("{v4}:{port}"),
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("{v4}:{port}"),
            None => format!("[{v6}]:{port}"),
        },
        Err(_) => format!(":{port}"),
    }
}

/// An I/O error worded like Go's `os` package (`open x: no such file or directory`).
pub fn go_io_error(op: &str, path: &str, e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    let what = match e.kind() {
        NotFound => "no such file or directory".to_string(),
        PermissionDenied => "permission denied".to_string(),
        IsADirectory => "is a directory".to_string(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_lowercase(),
                None => s,
            }
        }
    };
    format!("{op} {path}: {what}")
}

/// Go's `encoding/json` output of `v`: compact, or indented by `indent` like `MarshalIndent`,
/// with `<`, `>`, `&`, U+2028 and U+2029 escaped as Go does (they only occur inside strings).
pub fn go_json<T: serde::Serialize>(v: &T, indent: Option<&str>) -> String {
    let raw = match indent {
        None => serde_json::to_vec(v),
        Some(i) => {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(i.as_bytes());
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            v.serialize(&mut ser).map(|_| buf)
        }
    }
    .unwrap_or_default();
    let mut out = String::with_capacity(raw.len());
    for c in String::from_utf8_lossy(&raw).chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn columnize_like_go() {
        let s = columnize(&[
            row(&["Node", "Address", "Status"]),
            row(&["consul-server-1", "10.0.0.1:8301", "alive"]),
            row(&["c2", " 10.0.0.22:8301 ", "failed"]),
        ]);
        assert_eq!(
            s,
            "Node             Address         Status\n\
             consul-server-1  10.0.0.1:8301   alive\n\
             c2               10.0.0.22:8301  failed"
        );
    }

    #[test]
    fn columnize_empty_cells_are_padded() {
        let s = columnize(&[row(&["a", "bb", "c"]), row(&["aaa", "", ""])]);
        assert_eq!(s, "a    bb  c\naaa      ");
    }

    #[test]
    fn tabwriter_pads_to_widest_plus_padding() {
        let rows: Vec<Vec<Vec<u8>>> = vec![
            vec![b"CreateIndex".to_vec(), b"5".to_vec()],
            vec![b"Key".to_vec(), b"k".to_vec()],
        ];
        assert_eq!(
            String::from_utf8(tabwrite(&rows, 6)).unwrap(),
            "CreateIndex      5\nKey              k"
        );
    }

    #[test]
    fn addresses_like_go() {
        assert_eq!(host_port("10.0.0.1", 8301), "10.0.0.1:8301");
        assert_eq!(host_port("::1", 8301), "[::1]:8301");
        assert_eq!(host_port("::ffff:10.0.0.1", 1), "10.0.0.1:1");
        assert_eq!(host_port("bogus", 1), ":1");
    }

    #[test]
    fn json_like_go() {
        let v = serde_json::json!([{"key": "a<b>&c"}]);
        assert_eq!(go_json(&v, None), r#"[{"key":"a\u003cb\u003e\u0026c"}]"#);
        assert_eq!(
            go_json(&v, Some("\t")),
            "[\n\t{\n\t\t\"key\": \"a\\u003cb\\u003e\\u0026c\"\n\t}\n]"
        );
    }

    #[test]
    fn io_errors_like_go() {
        let e = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(
            go_io_error("open", "x", &e),
            "open x: no such file or directory"
        );
    }
}
