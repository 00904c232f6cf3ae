//! The walk-through's web service, in Rust with only the standard library: `GET /` answers
//! `result from <hostname>`, `GET /health` answers 200 `ok`. Register it with `web.json`.
//!
//! usage: web [ADDR]        (default 0.0.0.0:9999; also $WEB_ADDR)

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Answer one request on `stream`; returns the status code sent.
fn handle(mut stream: TcpStream, host: &str) -> std::io::Result<u16> {
    let mut line = String::new();
    let mut reader = BufReader::new(stream.try_clone()?);
    reader.read_line(&mut line)?;
    // drain the headers (bounded: a request head over 64 lines is refused)
    for _ in 0..64 {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let (code, reason, body) = match path {
        "/health" => (200, "OK", "ok\n".to_string()),
        "/" => (200, "OK", format!("result from {host}\n")),
        _ => (404, "Not Found", "not found\n".to_string()),
    };
    write!(
        stream,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    Ok(code)
}

fn serve(listener: TcpListener, host: String) {
    for stream in listener.incoming().flatten() {
        let host = host.clone();
        std::thread::spawn(move || {
            let _ = handle(stream, &host);
        });
    }
}

fn main() {
    let addr = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("WEB_ADDR").ok())
        .unwrap_or_else(|| "0.0.0.0:9999".into());
    let listener = match TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("web: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("web: listening on {addr}");
    serve(listener, hostname());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn answers_root_and_health() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || serve(l, "testhost".into()));
        let root = get(addr, "/");
        assert!(root.starts_with("HTTP/1.1 200 OK"), "{root}");
        assert!(root.ends_with("\r\n\r\nresult from testhost\n"), "{root}");
        let health = get(addr, "/health");
        assert!(
            health.starts_with("HTTP/1.1 200 OK") && health.ends_with("ok\n"),
            "{health}"
        );
        assert!(get(addr, "/nope").starts_with("HTTP/1.1 404"));
    }
}
