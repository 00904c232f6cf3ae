//! Check runners: HTTP and TCP probes on an interval, feeding status into the local state.
//!
//! Each runner is one task owned by the agent's tracker and stopped through its own
//! cancellation token when the check is removed or replaced. A status change triggers an
//! immediate anti-entropy sync; output-only changes ride along with the next one. Thresholds
//! (`success_before_passing`, `failures_before_warning`, `failures_before_critical`) follow
//! Consul's counters.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use proconsul_types::{duration, health, CheckDefinition};
use rand::Rng;
use tokio_util::sync::CancellationToken;

use crate::local::truncate_output;
use crate::Agent;

/// Consul's default check timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP check bodies are read up to this much (the output keeps 4 KiB of it).
const MAX_BODY: usize = 64 * 1024;

/// What a runner probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `alias_node`/`alias_service`: mirror the health of another node or service (empty node =
    /// this agent's node), read from the catalog each interval.
    Alias {
        node: String,
        service: String,
    },
    /// `args`: run a program; exit 0 passing, 1 warning, anything else critical.
    Script {
        args: Vec<String>,
    },
    Http {
        url: String,
        method: String,
        headers: Vec<(String, String)>,
        body: String,
    },
    Tcp {
        addr: String,
    },
}

impl Probe {
    /// The probe of a check definition; `Ok(None)` for checks that do not run (TTL).
    pub fn from_definition(def: &CheckDefinition) -> Result<Option<Probe>, String> {
        match def.kind() {
            "ttl" => Ok(None),
            "http" => {
                if def.http.starts_with("https://") {
                    return Err("HTTPS checks are not supported by this proconsul release yet".into());
                }
                if !def.http.starts_with("http://") {
                    return Err(format!("invalid HTTP check URL {:?}", def.http));
                }
                let headers = def
                    .header
                    .iter()
                    .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
                    .collect();
                let method = if def.method.is_empty() { "GET".into() } else { def.method.to_uppercase() };
                Ok(Some(Probe::Http { url: def.http.clone(), method, headers, body: def.body.clone() }))
            }
            "tcp" => Ok(Some(Probe::Tcp { addr: def.tcp.clone() })),
            "script" => {
                let args = if def.args.is_empty() { def.script_args.clone() } else { def.args.clone() };
                Ok(Some(Probe::Script { args }))
            }
            "alias" => Ok(Some(Probe::Alias { node: def.alias_node.clone(), service: def.alias_service.clone() })),
            other => Err(format!("{other} checks are not supported by this proconsul release yet (TTL, HTTP, TCP, script and alias checks are)")),
        }
    }

    /// Run once; returns (status, output).
    pub async fn run(&self, timeout: Duration) -> (String, String) {
        match tokio::time::timeout(timeout, self.run_inner()).await {
            Ok(r) => r,
            Err(_) => (
                health::CRITICAL.into(),
                match self {
                    Probe::Http { method, url, .. } => format!(
                        "{method} {url}: timed out after {}",
                        duration::format(timeout)
                    ),
                    Probe::Tcp { addr } => format!("dial tcp {addr}: i/o timeout"),
                    Probe::Script { .. } => {
                        format!("Timed out ({}) running check", duration::format(timeout))
                    }
                    Probe::Alias { .. } => "timed out reading the aliased checks".to_string(),
                },
            ),
        }
    }

    async fn run_inner(&self) -> (String, String) {
        match self {
            Probe::Script { args } => run_script(args).await,
            // Needs the agent's read path: run by `Agent::alias_status` instead.
            Probe::Alias { .. } => (
                health::CRITICAL.into(),
                "alias checks run through the agent".into(),
            ),
            Probe::Tcp { addr } => match tokio::net::TcpStream::connect(addr.as_str()).await {
                Ok(_) => (
                    health::PASSING.into(),
                    format!("TCP connect {addr}: Success"),
                ),
                Err(e) => (
                    health::CRITICAL.into(),
                    format!("dial tcp {addr}: connect: {e}"),
                ),
            },
            Probe::Http {
                url,
                method,
                headers,
                body,
            } => match http_probe(url, method, headers, body).await {
                Ok((code, reason, text)) => {
                    let status = match code {
                        200..=299 => health::PASSING,
                        429 => health::WARNING,
                        _ => health::CRITICAL,
                    };
                    (
                        status.into(),
                        format!("HTTP {method} {url}: {code} {reason} Output: {text}"),
                    )
                }
                Err(e) => (health::CRITICAL.into(), format!("{method} {url}: {e}")),
            },
        }
    }
}

/// Run a script check's program (killed if the check times out: `kill_on_drop`).
async fn run_script(args: &[String]) -> (String, String) {
    let Some((prog, rest)) = args.split_first() else {
        return (health::CRITICAL.into(), "no command given".into());
    };
    let out = tokio::process::Command::new(prog)
        .args(rest)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await;
    match out {
        Err(e) => (health::CRITICAL.into(), format!("Failed to start: {e}")),
        Ok(o) => {
            let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&o.stderr));
            let status = match o.status.code() {
                Some(0) => health::PASSING,
                Some(1) => health::WARNING,
                _ => health::CRITICAL,
            };
            (status.into(), text)
        }
    }
}

/// One HTTP/1.1 request; redirects are not followed.
async fn http_probe(
    url: &str,
    method: &str,
    headers: &[(String, String)],
    body: &str,
) -> Result<(u16, String, String), String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("invalid URL: {e}"))?;
    let host = uri.host().ok_or("URL has no host")?.to_string();
    let port = uri.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("dial tcp {host}:{port}: connect: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(conn);
    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(
            hyper::header::HOST,
            uri.authority().map(|a| a.as_str()).unwrap_or(&host),
        )
        .header(hyper::header::USER_AGENT, "Consul Health Check")
        .header(hyper::header::ACCEPT, "text/plain, text/*, */*");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string());
    let result = match resp {
        Ok(resp) => {
            let code = resp.status();
            let body = Limited::new(resp.into_body(), MAX_BODY).collect().await;
            let text = match body {
                Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
                Err(_) => String::from("(body too large)"),
            };
            Ok((
                code.as_u16(),
                code.canonical_reason().unwrap_or("").to_string(),
                text,
            ))
        }
        Err(e) => Err(e),
    };
    driver.abort();
    result
}

/// Consul's flap thresholds: consecutive results needed before a status change takes effect.
#[derive(Debug, Default)]
struct Thresholds {
    successes: u32,
    failures: u32,
}

impl Thresholds {
    /// The status to record given a probe result, or `None` to keep the current one.
    fn apply(&mut self, def: &CheckDefinition, status: &str) -> Option<String> {
        if status == health::PASSING {
            self.failures = 0;
            self.successes += 1;
            (self.successes >= def.success_before_passing).then(|| health::PASSING.to_string())
        } else {
            self.successes = 0;
            self.failures += 1;
            if status == health::WARNING {
                return (self.failures >= def.failures_before_warning.max(1))
                    .then(|| health::WARNING.into());
            }
            if self.failures >= def.failures_before_critical {
                Some(health::CRITICAL.into())
            } else if def.failures_before_warning > 0
                && self.failures >= def.failures_before_warning
            {
                Some(health::WARNING.into())
            } else {
                None
            }
        }
    }
}

impl Agent {
    /// The aggregate health of the aliased node (and service): critical beats warning beats
    /// passing; nothing found is critical.
    async fn alias_status(&self, node: &str, service: &str) -> (String, String) {
        use proconsul_types::{Consistency, QueryOptions, ReadRequest, ReadResponse};
        let node = if node.is_empty() {
            self.inner.node_name.clone()
        } else {
            node.to_string()
        };
        let opts = QueryOptions {
            consistency: Consistency::Stale,
            ..Default::default()
        };
        let checks = match self
            .rpc_read(ReadRequest::HealthNodeChecks { node }, opts)
            .await
        {
            Ok((_, ReadResponse::Checks(c))) => c,
            Ok(_) => Vec::new(),
            Err(e) => {
                return (
                    health::CRITICAL.into(),
                    format!("failed to read the aliased checks: {e}"),
                )
            }
        };
        let relevant: Vec<_> = checks
            .iter()
            .filter(|c| c.service_id.is_empty() || service.is_empty() || c.service_id == service)
            .collect();
        if !service.is_empty() && !checks.iter().any(|c| c.service_id == service) {
            return (
                health::CRITICAL.into(),
                format!("Service {service} could not be found"),
            );
        }
        if relevant.is_empty() {
            return (health::CRITICAL.into(), "No checks found.".into());
        }
        if relevant.iter().any(|c| c.status == health::CRITICAL) {
            (
                health::CRITICAL.into(),
                "At least one check is critical.".into(),
            )
        } else if relevant.iter().any(|c| c.status == health::WARNING) {
            (
                health::WARNING.into(),
                "At least one check is warning.".into(),
            )
        } else {
            (health::PASSING.into(), "All checks passing.".into())
        }
    }

    /// Start a runner for every running-type check that has none.
    pub(crate) fn start_check_runners(&self) {
        for (id, def, probe, token) in self.inner.local.take_unstarted(&self.inner.shutdown) {
            let agent = self.clone();
            self.inner
                .tasks
                .spawn(async move { agent.run_check(id, def, probe, token).await });
        }
    }

    async fn run_check(
        &self,
        id: String,
        def: CheckDefinition,
        probe: Probe,
        token: CancellationToken,
    ) {
        // Alias checks have no interval in Consul (they watch); we poll each second.
        let default_interval = match probe {
            Probe::Alias { .. } => Duration::from_secs(1),
            _ => Duration::from_secs(10),
        };
        let interval = duration::parse(&def.interval)
            .unwrap_or(default_interval)
            .max(Duration::from_secs(1));
        let timeout = match duration::parse(&def.timeout) {
            Ok(t) if !t.is_zero() => t,
            _ => DEFAULT_TIMEOUT.min(interval),
        };
        // Stagger the first run across the interval, like Consul, so checks do not fire in step.
        let first = Duration::from_millis(
            rand::rng().random_range(0..=interval.as_millis().min(1000) as u64),
        );
        let mut wait = first;
        let mut thresholds = Thresholds::default();
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = interval;
            let (status, output) = match &probe {
                Probe::Alias { node, service } => self.alias_status(node, service).await,
                _ => probe.run(timeout).await,
            };
            if token.is_cancelled() {
                return;
            }
            let status = thresholds.apply(&def, &status);
            if self
                .inner
                .local
                .set_check_result(&id, status.as_deref(), &truncate_output(&output))
            {
                self.sync_changes().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_follow_consul() {
        let def = CheckDefinition {
            success_before_passing: 2,
            failures_before_critical: 3,
            ..Default::default()
        };
        let mut t = Thresholds::default();
        assert_eq!(t.apply(&def, "passing"), None);
        assert_eq!(t.apply(&def, "passing").as_deref(), Some("passing"));
        assert_eq!(t.apply(&def, "critical"), None);
        assert_eq!(t.apply(&def, "critical"), None);
        assert_eq!(t.apply(&def, "critical").as_deref(), Some("critical"));
        let plain = CheckDefinition::default();
        let mut t = Thresholds::default();
        assert_eq!(t.apply(&plain, "critical").as_deref(), Some("critical"));
        assert_eq!(t.apply(&plain, "passing").as_deref(), Some("passing"));
        assert_eq!(t.apply(&plain, "warning").as_deref(), Some("warning"));
    }

    #[tokio::test]
    async fn tcp_and_http_probes() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]);
                let reply = if req.starts_with("GET /busy") {
                    "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 4\r\n\r\nbusy"
                } else if req.starts_with("GET /ok") {
                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                } else {
                    "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nboom"
                };
                let _ = s.write_all(reply.as_bytes()).await;
            }
        });
        let t = Duration::from_secs(2);
        let http = |path: &str| Probe::Http {
            url: format!("http://{addr}{path}"),
            method: "GET".into(),
            headers: vec![],
            body: String::new(),
        };
        let (s, o) = http("/ok").run(t).await;
        assert_eq!(s, "passing");
        assert_eq!(o, format!("HTTP GET http://{addr}/ok: 200 OK Output: ok"));
        assert_eq!(http("/busy").run(t).await.0, "warning");
        assert_eq!(http("/fail").run(t).await.0, "critical");
        assert_eq!(
            Probe::Tcp {
                addr: addr.to_string()
            }
            .run(t)
            .await
            .0,
            "passing"
        );
        // a closed port
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let (s, o) = Probe::Tcp {
            addr: closed.to_string(),
        }
        .run(t)
        .await;
        assert_eq!(s, "critical");
        assert!(o.starts_with(&format!("dial tcp {closed}")), "{o}");
        assert_eq!(http_on(closed).run(t).await.0, "critical");
    }

    fn http_on(addr: std::net::SocketAddr) -> Probe {
        Probe::Http {
            url: format!("http://{addr}/"),
            method: "GET".into(),
            headers: vec![],
            body: String::new(),
        }
    }
}
