//! The HTTP/1.1 exchange of an HTTP check: one request on a fresh connection, sent with
//! `Connection: close` (Consul's check client disables keep-alives), and the response read to
//! its end.
//!
//! Hand-written rather than hyper's client because a check runs this thousands of times a
//! minute and needs none of a general client: no pooling, no upgrades, no streaming, no
//! background connection task. Everything happens in the probe's own task with a couple of
//! buffers, which took the agent's CPU for 1,000 HTTP checks a second down (see
//! `bench/checks.sh`). Bounds: the response head is at most [`MAX_HEAD`] bytes and the body is
//! read up to the caller's limit; anything past that is an error, never a larger buffer.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest response head (status line and headers) accepted.
pub const MAX_HEAD: usize = 64 * 1024;

/// What a check needs from a response.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub code: u16,
    pub location: Option<String>,
    /// `None`: the body was larger than the caller's limit.
    pub body: Option<Vec<u8>>,
}

/// One request, serialised. Header names and values are checked here, so a definition cannot
/// smuggle a second request or header through CR/LF.
pub struct Request<'a> {
    pub method: &'a str,
    /// Path and query, `/` at least.
    pub target: &'a str,
    pub host: &'a str,
    /// In order; `Host`, `Connection` and `Content-Length` are the exchange's own.
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
}

impl Request<'_> {
    fn encode(&self) -> Result<Vec<u8>, String> {
        if !is_token(self.method) {
            return Err(format!("net/http: invalid method {:?}", self.method));
        }
        if self.target.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(format!("invalid request target {:?}", self.target));
        }
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(format!("{} {} HTTP/1.1\r\n", self.method, self.target).as_bytes());
        let mut line = |k: &str, v: &str| -> Result<(), String> {
            if !is_token(k) {
                return Err(format!("net/http: invalid header field name {k:?}"));
            }
            if v.bytes().any(|b| (b < b' ' && b != b'\t') || b == 0x7f) {
                return Err(format!("net/http: invalid header field value for {k:?}"));
            }
            for part in [k, ": ", v, "\r\n"] {
                out.extend_from_slice(part.as_bytes());
            }
            Ok(())
        };
        line("Host", self.host)?;
        for (k, v) in &self.headers {
            line(k, v)?;
        }
        line("Connection", "close")?;
        // Go sends a length for any body, and for an empty one on methods that carry one.
        if !self.body.is_empty() || matches!(self.method, "POST" | "PUT" | "PATCH") {
            line("Content-Length", &self.body.len().to_string())?;
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.body);
        Ok(out)
    }
}

/// An RFC 9110 token (method and header names).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Send `req` on `io` and read the response; bodies past `max_body` bytes are reported as
/// `body: None`. Interim (1xx) responses are skipped.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    req: &Request<'_>,
    max_body: usize,
) -> Result<Response, String> {
    io.write_all(&req.encode()?)
        .await
        .map_err(|e| format!("write: {e}"))?;
    io.flush().await.map_err(|e| format!("write: {e}"))?;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let head_len = read_head(io, &mut buf).await?;
        let head = parse_head(&buf[..head_len])?;
        buf.drain(..head_len);
        if (100..200).contains(&head.code) && head.code != 101 {
            continue; // 100 Continue and friends: the real response follows
        }
        let no_body =
            req.method == "HEAD" || matches!(head.code, 101 | 204 | 304) || head.code < 200;
        let body = if no_body {
            Some(Vec::new())
        } else if head.chunked {
            read_chunked(io, buf, max_body).await?
        } else if let Some(n) = head.content_length {
            read_exact_len(io, buf, n, max_body).await?
        } else {
            read_to_eof(io, buf, max_body).await?
        };
        return Ok(Response {
            code: head.code,
            location: head.location,
            body,
        });
    }
}

/// Read until the buffer holds a complete head; returns its length (blank line included).
async fn read_head<S: AsyncRead + Unpin>(io: &mut S, buf: &mut Vec<u8>) -> Result<usize, String> {
    let mut searched: usize = 0;
    loop {
        if let Some(i) = find(&buf[searched.saturating_sub(3)..], b"\r\n\r\n") {
            return Ok(searched.saturating_sub(3) + i + 4);
        }
        searched = buf.len();
        if buf.len() >= MAX_HEAD {
            return Err("net/http: server response headers exceeded 65536 bytes".into());
        }
        if fill(io, buf, MAX_HEAD).await? == 0 {
            return Err(if buf.is_empty() {
                "EOF".into()
            } else {
                "unexpected EOF reading the response headers".into()
            });
        }
    }
}

struct Head {
    code: u16,
    location: Option<String>,
    content_length: Option<usize>,
    chunked: bool,
}

fn parse_head(raw: &[u8]) -> Result<Head, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "malformed HTTP response".to_string())?;
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or("");
    let malformed = || format!("malformed HTTP response {status:?}");
    let rest = status
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status.strip_prefix("HTTP/1.0 "))
        .ok_or_else(malformed)?;
    let code: u16 = rest
        .get(..3)
        .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|c| c.parse().ok())
        .filter(|c| (100..1000).contains(c))
        .ok_or_else(malformed)?;
    let mut head = Head {
        code,
        location: None,
        content_length: None,
        chunked: false,
    };
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("malformed MIME header line: {line}"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse()
                .map_err(|_| format!("bad Content-Length {value:?}"))?;
            if head.content_length.is_some_and(|m| m != n) {
                return Err("http: message cannot contain multiple Content-Length headers".into());
            }
            head.content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("location") && head.location.is_none() {
            head.location = Some(value.to_string());
        }
    }
    Ok(head)
}

/// Append what the stream has (at most up to `cap` bytes in the buffer); 0 at EOF.
async fn fill<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut Vec<u8>,
    cap: usize,
) -> Result<usize, String> {
    let room = cap.saturating_sub(buf.len()).clamp(1, 16 * 1024);
    let start = buf.len();
    buf.resize(start + room, 0);
    let n = match io.read(&mut buf[start..]).await {
        Ok(n) => n,
        Err(e) => {
            buf.truncate(start);
            // A TLS peer that closes without close_notify still ended the body.
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                return Ok(0);
            }
            return Err(format!("read: {e}"));
        }
    };
    buf.truncate(start + n);
    Ok(n)
}

async fn read_exact_len<S: AsyncRead + Unpin>(
    io: &mut S,
    mut buf: Vec<u8>,
    len: usize,
    max_body: usize,
) -> Result<Option<Vec<u8>>, String> {
    if len > max_body {
        return Ok(None);
    }
    while buf.len() < len {
        if fill(io, &mut buf, len).await? == 0 {
            return Err("unexpected EOF".into());
        }
    }
    buf.truncate(len);
    Ok(Some(buf))
}

async fn read_to_eof<S: AsyncRead + Unpin>(
    io: &mut S,
    mut buf: Vec<u8>,
    max_body: usize,
) -> Result<Option<Vec<u8>>, String> {
    loop {
        if buf.len() > max_body {
            return Ok(None);
        }
        if fill(io, &mut buf, max_body + 1).await? == 0 {
            return Ok(Some(buf));
        }
    }
}

/// Decode a chunked body (chunk extensions and trailers are ignored).
async fn read_chunked<S: AsyncRead + Unpin>(
    io: &mut S,
    mut raw: Vec<u8>,
    max_body: usize,
) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    // Bounded: a chunk's size line, data and CRLF are consumed before the next is read.
    let cap = max_body + MAX_HEAD;
    loop {
        let line_end = loop {
            if let Some(i) = find(&raw, b"\r\n") {
                break i;
            }
            if raw.len() >= MAX_HEAD || fill(io, &mut raw, cap).await? == 0 {
                return Err("malformed chunked encoding".into());
            }
        };
        let line = std::str::from_utf8(&raw[..line_end]).unwrap_or("");
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| "malformed chunked encoding".to_string())?;
        raw.drain(..line_end + 2);
        if size == 0 {
            return Ok(Some(body)); // trailers, if any, are not needed
        }
        if body.len() + size > max_body {
            return Ok(None);
        }
        while raw.len() < size + 2 {
            if fill(io, &mut raw, cap).await? == 0 {
                return Err("unexpected EOF in a chunk".into());
            }
        }
        if &raw[size..size + 2] != b"\r\n" {
            return Err("malformed chunked encoding".into());
        }
        body.extend_from_slice(&raw[..size]);
        raw.drain(..size + 2);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run one exchange against canned response bytes; returns the response and the request
    /// bytes the client wrote.
    async fn against(reply: &[u8], req: Request<'_>) -> (Result<Response, String>, Vec<u8>) {
        let (mut client, mut server) = tokio::io::duplex(1 << 20);
        let reply = reply.to_vec();
        let srv = tokio::spawn(async move {
            let mut got = vec![0u8; 64 * 1024];
            let mut n = 0;
            // The request ends with a blank line (and these tests send no bodies).
            while !got[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                n += server.read(&mut got[n..]).await.unwrap();
            }
            server.write_all(&reply).await.unwrap();
            drop(server);
            got.truncate(n);
            got
        });
        let r = exchange(&mut client, &req, 64).await;
        (r, srv.await.unwrap())
    }

    fn get<'a>() -> Request<'a> {
        Request {
            method: "GET",
            target: "/health?x=1",
            host: "127.0.0.1:80",
            headers: vec![("User-Agent", "Consul Health Check")],
            body: b"",
        }
    }

    #[tokio::test]
    async fn content_length_chunked_and_eof_bodies() {
        let (r, sent) = against(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
            get(),
        )
        .await;
        assert_eq!(r.unwrap().body.as_deref(), Some(&b"ok"[..]));
        assert_eq!(
            String::from_utf8(sent).unwrap(),
            "GET /health?x=1 HTTP/1.1\r\nHost: 127.0.0.1:80\r\nUser-Agent: Consul Health Check\r\nConnection: close\r\n\r\n"
        );
        let chunked = b"HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nbus\r\n1\r\ny\r\n0\r\n\r\n";
        let r = against(chunked, get()).await.0.unwrap();
        assert_eq!((r.code, r.body.as_deref()), (429, Some(&b"busy"[..])));
        let r = against(b"HTTP/1.0 503 Nope\r\n\r\ndown", get())
            .await
            .0
            .unwrap();
        assert_eq!((r.code, r.body.as_deref()), (503, Some(&b"down"[..])));
        let r = against(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n",
            get(),
        )
        .await
        .0
        .unwrap();
        assert_eq!((r.code, r.location.as_deref()), (302, Some("/x")));
    }

    #[tokio::test]
    async fn bodies_past_the_limit_and_bad_responses() {
        let big = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 65\r\n\r\n{}",
            "a".repeat(65)
        );
        assert_eq!(against(big.as_bytes(), get()).await.0.unwrap().body, None);
        let big = format!("HTTP/1.1 200 OK\r\n\r\n{}", "a".repeat(65));
        assert_eq!(against(big.as_bytes(), get()).await.0.unwrap().body, None);
        let big = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n{}\r\n0\r\n\r\n",
            "a".repeat(65)
        );
        assert_eq!(against(big.as_bytes(), get()).await.0.unwrap().body, None);
        for bad in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.1 2x0 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"",
        ] {
            assert!(against(bad, get()).await.0.is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn header_injection_is_refused_before_anything_is_sent() {
        let mut req = get();
        req.headers.push(("X-A", "1\r\nX-Injected: 1"));
        let (mut client, _server) = tokio::io::duplex(1024);
        assert!(exchange(&mut client, &req, 64).await.is_err());
        let mut req = get();
        req.headers.push(("Bad Name", "1"));
        assert!(exchange(&mut client, &req, 64).await.is_err());
        let mut req = get();
        req.method = "GET /evil HTTP/1.1\r\n";
        assert!(exchange(&mut client, &req, 64).await.is_err());
    }

    #[tokio::test]
    async fn post_bodies_carry_their_length() {
        let req = Request {
            method: "POST",
            body: b"",
            ..get()
        };
        let (_, sent) = against(b"HTTP/1.1 204 No Content\r\n\r\n", req).await;
        assert!(String::from_utf8(sent)
            .unwrap()
            .contains("Content-Length: 0\r\n"));
    }
}
