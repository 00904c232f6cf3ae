//! The tests' one HTTP/1.1 client: one request on a fresh connection with `Connection: close`,
//! the whole answer read and parsed (a chunked body is decoded). [`request`] is for async tests,
//! whose agents share the test's runtime; [`request_blocking`] for tests that drive real
//! processes from plain threads (or from a thread inside a network namespace).
//!
//! No complete answer — connection refused, closed before the head, read timed out — is
//! status 0, so callers can poll on it.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long [`request_blocking`] waits for an answer: longer than the blocking queries the
/// process tests make, short enough that a hung agent fails the test instead of the run.
pub const BLOCKING_READ_TIMEOUT: Duration = Duration::from_secs(15);

/// An HTTP response, fully read.
#[derive(Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// No complete answer (see the module doc).
    fn none() -> Response {
        Response {
            status: 0,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }
    /// `X-Consul-Index` as a number.
    pub fn index(&self) -> u64 {
        self.header("X-Consul-Index")
            .and_then(|v| v.parse().ok())
            .expect("X-Consul-Index")
    }
}

/// The body as text, so a failed assertion's `{r:?}` is readable.
impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &self.text())
            .finish()
    }
}

fn head(host: &str, method: &str, path: &str, body_len: usize) -> String {
    head_with(host, method, path, &[], body_len)
}

fn head_with(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body_len: usize,
) -> String {
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Length: {body_len}\r\nConnection: close\r\n\r\n"
    )
}

/// One request from an async test.
pub async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> Response {
    request_with(addr, method, path, &[], body).await
}

/// [`request`] with extra request headers.
pub async fn request_with(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return Response::none();
    };
    let _ = s
        .write_all(head_with(&addr.to_string(), method, path, headers, body.len()).as_bytes())
        .await;
    // A server may answer (413) and close before reading a large body: keep its answer.
    let _ = s.write_all(body).await;
    let mut raw = Vec::new();
    let read = s.read_to_end(&mut raw).await;
    answer(&raw, read)
}

/// One request from a plain thread, waiting at most [`BLOCKING_READ_TIMEOUT`] for the answer.
pub fn request_blocking(
    addr: impl ToSocketAddrs,
    method: &str,
    path: &str,
    body: &[u8],
) -> Response {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return Response::none();
    };
    let host = s.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let _ = s.set_read_timeout(Some(BLOCKING_READ_TIMEOUT));
    let _ = s.write_all(head(&host, method, path, body.len()).as_bytes());
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let read = s.read_to_end(&mut raw);
    answer(&raw, read)
}

/// What arrived before the server closed (or reset) the connection, parsed; a read that timed
/// out has no complete answer.
fn answer(raw: &[u8], read: std::io::Result<usize>) -> Response {
    use std::io::ErrorKind::{TimedOut, WouldBlock};
    match read {
        Err(e) if matches!(e.kind(), WouldBlock | TimedOut) => Response::none(),
        _ => parse_response(raw),
    }
}

fn parse_response(raw: &[u8]) -> Response {
    // No complete head (connection closed or refused): status 0, so callers can poll on it.
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Response {
            body: raw.to_vec(),
            ..Response::none()
        };
    };
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&b[start..start + size]);
        b = &b[start + size + 2..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_head_headers_and_a_chunked_body() {
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nX-Consul-Index: 7\r\nTransfer-Encoding: chunked\r\n\r\n\
              3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        );
        assert_eq!((r.status, r.index(), r.text().as_str()), (200, 7, "abcde"));
        assert_eq!(r.header("x-consul-index"), Some("7"));
    }

    #[test]
    fn no_complete_head_is_status_zero() {
        assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\nContent-").status, 0);
        assert_eq!(parse_response(b"").status, 0);
        let timed_out = Err(std::io::ErrorKind::WouldBlock.into());
        assert_eq!(answer(b"HTTP/1.1 200 OK\r\n\r\nok", timed_out).status, 0);
        let reset = Err(std::io::ErrorKind::ConnectionReset.into());
        assert_eq!(answer(b"HTTP/1.1 413 X\r\n\r\nbig", reset).status, 413);
    }
}
