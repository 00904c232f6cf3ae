//! A one-shot fake agent for unit tests: accepts one connection, records the request, answers
//! with a canned response and closes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;

pub struct Canned {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Canned {
    pub fn ok(body: &str) -> Canned {
        Canned::status(200, body)
    }

    pub fn status(status: u16, body: &str) -> Canned {
        Canned {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Canned {
        self.headers.push((k.into(), v.into()));
        self
    }
}

/// Serve `canned` once on a fresh port; the handle yields the request (head and body) as text.
pub fn serve_once(canned: Canned) -> (String, JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request = String::new();
        let mut content_length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                content_length = v.trim().parse().unwrap();
            }
            request.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0u8; content_length];
        reader.read_exact(&mut body).unwrap();
        request.push_str(&String::from_utf8_lossy(&body));
        let mut out = stream;
        let mut resp = format!("HTTP/1.1 {} X\r\n", canned.status);
        for (k, v) in &canned.headers {
            resp.push_str(&format!("{k}: {v}\r\n"));
        }
        resp.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
            canned.body.len(),
            canned.body
        ));
        out.write_all(resp.as_bytes()).unwrap();
        request
    });
    (addr, handle)
}
