//! Test helpers: agents in-process on port 0 with temp dirs, a minimal HTTP/1.1 client, and
//! `wait_until` (poll a condition with a deadline — never a bare sleep as the assertion).

use std::net::SocketAddr;
use std::time::Duration;

use proconsul_agent::Agent;
use proconsul_config::{AgentFlags, RuntimeConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An agent started for a test; shut it down with [`TestAgent::stop`] (dropping it cancels it).
pub struct TestAgent {
    pub agent: Agent,
    pub http: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        self.agent.shutdown_token().cancel();
    }
}

/// Flags of `agent -dev` for tests.
pub fn dev_flags() -> AgentFlags {
    AgentFlags {
        dev: true,
        log_level: Some("warn".into()),
        ..Default::default()
    }
}

impl TestAgent {
    /// `agent -dev` on 127.0.0.1 with the HTTP API on a free port, waiting for leadership.
    pub async fn dev() -> TestAgent {
        Self::start_with(dev_flags(), |_| {}).await
    }

    /// Start with `flags`, then let `tweak` adjust the runtime config (ports, limits...).
    pub async fn start_with(
        flags: AgentFlags,
        tweak: impl FnOnce(&mut RuntimeConfig),
    ) -> TestAgent {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut flags = flags;
        if !flags.dev && flags.data_dir.is_none() {
            flags.data_dir = Some(dir.path().to_path_buf());
        }
        let mut cfg = proconsul_config::load(&flags).expect("config");
        cfg.http_addrs = vec!["127.0.0.1:0".parse().unwrap()];
        cfg.dns_addrs = Vec::new();
        cfg.serf_lan_port = 0;
        cfg.server_port = 0;
        cfg.serf_wan_port = Some(0);
        if cfg.data_dir.is_none() && !cfg.dev_mode {
            cfg.data_dir = Some(dir.path().to_path_buf());
        }
        tweak(&mut cfg);
        let agent = Agent::start(cfg, flags).await.expect("agent starts");
        let http = agent.http_addrs()[0];
        let t = TestAgent {
            agent,
            http,
            _dir: dir,
        };
        if let Some(s) = t.agent.server() {
            assert!(
                s.wait_for_leader(Duration::from_secs(10)).await,
                "no leader within 10s"
            );
        }
        t
    }

    pub async fn get(&self, path: &str) -> Response {
        request(self.http, "GET", path, &[]).await
    }
    pub async fn put(&self, path: &str, body: &[u8]) -> Response {
        request(self.http, "PUT", path, body).await
    }
    pub async fn delete(&self, path: &str) -> Response {
        request(self.http, "DELETE", path, &[]).await
    }

    /// Wait until the leader has registered this agent's node with its `serfHealth` check.
    pub async fn wait_registered(&self) {
        let path = format!("/v1/health/node/{}", self.agent.node_name());
        wait_until(
            Duration::from_secs(10),
            "node registered with serfHealth",
            || async {
                self.get(&path).await.json().as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["CheckID"] == proconsul_types::health::SERF_CHECK_ID)
                })
            },
        )
        .await;
    }

    /// Stop the agent and wait for all its tasks.
    pub async fn stop(self) {
        self.agent.shutdown().await;
    }
}

/// An HTTP response, fully read.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
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

/// One HTTP/1.1 request with `Connection: close`; reads the whole answer.
pub async fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Response {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return Response {
            status: 0,
            headers: Vec::new(),
            body: Vec::new(),
        };
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes()).await;
    // A server may answer (413) and close before reading a large body: keep its answer.
    let _ = s.write_all(body).await;
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw).await;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    // No complete answer (connection closed or refused): status 0, so callers can poll on it.
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Response {
            status: 0,
            headers: Vec::new(),
            body: raw.to_vec(),
        };
    };
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
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

/// Poll `cond` every 20 ms until it holds or `within` passes; panics with `what` on timeout.
pub async fn wait_until<F, Fut>(within: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if cond().await {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {within:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
