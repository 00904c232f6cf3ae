#![allow(dead_code)] // each bench tool uses a part of it
//! What the bench load tools share: a minimal HTTP/1.1 exchange over a raw keep-alive
//! connection (so each connection costs the tool little and is exactly one socket), the
//! agent's RSS and thread count from /proc, and percentiles.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// One HTTP/1.1 response: status, `X-Consul-Index`, body.
pub struct Response {
    pub status: u16,
    pub index: u64,
    pub body: Vec<u8>,
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Read one response with a `Content-Length` body from `s`.
pub async fn read_response(s: &mut TcpStream) -> Result<Response, Error> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p + 4;
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err("connection closed before the response".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end])?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or("bad status line")?;
    let (mut len, mut index) = (None, 0);
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("content-length") {
            len = Some(v.parse::<usize>()?);
        } else if k.eq_ignore_ascii_case("x-consul-index") {
            index = v.parse()?;
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            return Err("chunked responses are not read by this tool".into());
        }
    }
    let len = len.ok_or("no Content-Length")?;
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err("connection closed inside the body".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(Response {
        status,
        index,
        body: buf[head_end..head_end + len].to_vec(),
    })
}

pub async fn request(
    s: &mut TcpStream,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<Response, Error> {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    let r = read_response(s).await?;
    if r.status != 200 {
        return Err(format!(
            "{method} {path}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        )
        .into());
    }
    Ok(r)
}

/// A process's resident memory in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    proc_status(pid, "VmRSS:")
}

/// A process's thread count.
pub fn threads(pid: u32) -> Option<u64> {
    proc_status(pid, "Threads:")
}

/// The number after `field` in `/proc/PID/status`.
fn proc_status(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}
