//! Check runners: HTTP(S), TCP, gRPC, script and alias probes on an interval, feeding status
//! into the local state.
//!
//! Each runner is one task owned by the agent's tracker and stopped through its own
//! cancellation token when the check is removed or replaced. A status change triggers an
//! immediate anti-entropy sync; output-only changes ride along with the next one. Thresholds
//! (`success_before_passing`, `failures_before_warning`, `failures_before_critical`) follow
//! Consul's counters. TLS (HTTPS and `grpc_use_tls`) lives in `tls`, the gRPC health protocol in
//! `grpc`.

mod grpc;
mod http1;
mod tls;

use std::time::Duration;

use proconsul_types::{duration, health, CheckDefinition};
use rand::Rng;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

pub use tls::TlsOptions;

use crate::local::truncate_output;
use crate::Agent;

/// Consul's default check timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP check bodies are read up to this much (the output keeps 4 KiB of it).
const MAX_BODY: usize = 64 * 1024;
/// Redirects an HTTP check follows unless `disable_redirects` (Go's client default).
const MAX_REDIRECTS: usize = 10;

/// What a runner probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `alias_node`/`alias_service`: mirror the health of another node or service (empty node =
    /// this agent's node), read from the catalog each interval.
    Alias { node: String, service: String },
    /// `args`: run a program; exit 0 passing, 1 warning, anything else critical.
    Script { args: Vec<String> },
    /// `http`: 2xx passing, 429 warning, anything else critical. `https://` URLs use `tls`.
    Http {
        url: String,
        method: String,
        headers: Vec<(String, String)>,
        body: String,
        tls: TlsOptions,
        follow_redirects: bool,
    },
    /// `tcp`, with a TLS handshake under `tcp_use_tls`.
    Tcp {
        addr: String,
        tls: Option<TlsOptions>,
    },
    /// `grpc`: `grpc.health.v1.Health/Check` for `service` at `addr`; SERVING is passing.
    Grpc {
        target: String,
        addr: String,
        service: String,
        tls: Option<TlsOptions>,
    },
}

impl Probe {
    /// Present the agent's certificate and trust its CA (`enable_agent_tls_for_checks`).
    fn use_agent_tls(&mut self, agent: Option<std::sync::Arc<crate::tls::CheckTls>>) {
        match self {
            Probe::Http { tls, .. }
            | Probe::Grpc { tls: Some(tls), .. }
            | Probe::Tcp { tls: Some(tls), .. } => tls.agent = agent,
            _ => {}
        }
    }

    /// The probe of a check definition; `Ok(None)` for checks that do not run (TTL).
    pub fn from_definition(def: &CheckDefinition) -> Result<Option<Probe>, String> {
        let tls = TlsOptions {
            skip_verify: def.tls_skip_verify,
            server_name: def.tls_server_name.clone(),
            agent: None,
        };
        match def.kind() {
            "ttl" => Ok(None),
            "http" => {
                check_http_url(&def.http)?;
                let headers = def
                    .header
                    .iter()
                    .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
                    .collect();
                let method = if def.method.is_empty() {
                    "GET".into()
                } else {
                    def.method.to_uppercase()
                };
                Ok(Some(Probe::Http {
                    url: def.http.clone(),
                    method,
                    headers,
                    body: def.body.clone(),
                    tls,
                    follow_redirects: !def.disable_redirects,
                }))
            }
            "tcp" => Ok(Some(Probe::Tcp {
                addr: def.tcp.clone(),
                tls: def.tcp_use_tls.then_some(tls),
            })),
            "grpc" => {
                let (addr, service) = grpc::split_target(&def.grpc)?;
                Ok(Some(Probe::Grpc {
                    target: def.grpc.clone(),
                    addr: addr.to_string(),
                    service: service.to_string(),
                    tls: def.grpc_use_tls.then_some(tls),
                }))
            }
            "script" => {
                let args = if def.args.is_empty() {
                    def.script_args.clone()
                } else {
                    def.args.clone()
                };
                Ok(Some(Probe::Script { args }))
            }
            "alias" => Ok(Some(Probe::Alias {
                node: def.alias_node.clone(),
                service: def.alias_service.clone(),
            })),
            other => Err(format!(
                "{other} checks are not supported by this proconsul release"
            )),
        }
    }

    /// Run once; returns (status, output).
    pub async fn run(&self, timeout: Duration) -> (String, String) {
        match tokio::time::timeout(timeout, self.run_inner(timeout)).await {
            Ok(r) => r,
            Err(_) => (
                health::CRITICAL.into(),
                match self {
                    Probe::Http { method, url, .. } => format!(
                        "{method} {url}: timed out after {}",
                        duration::format(timeout)
                    ),
                    Probe::Tcp { addr, .. } => format!("dial tcp {addr}: i/o timeout"),
                    Probe::Grpc { .. } => {
                        "rpc error: code = DeadlineExceeded desc = context deadline exceeded".into()
                    }
                    Probe::Script { .. } => {
                        format!("Timed out ({}) running check", duration::format(timeout))
                    }
                    Probe::Alias { .. } => "timed out reading the aliased checks".to_string(),
                },
            ),
        }
    }

    async fn run_inner(&self, timeout: Duration) -> (String, String) {
        match self {
            Probe::Script { args } => run_script(args).await,
            // Needs the agent's read path: run by `Agent::alias_status` instead.
            Probe::Alias { .. } => (
                health::CRITICAL.into(),
                "alias checks run through the agent".into(),
            ),
            Probe::Tcp { addr, tls } => match tokio::net::TcpStream::connect(addr.as_str()).await {
                Ok(tcp) => match tls {
                    None => (
                        health::PASSING.into(),
                        format!("TCP connect {addr}: Success"),
                    ),
                    Some(opts) => match tls::handshake(tcp, grpc::host_of(addr), opts, &[]).await {
                        Ok(_) => (
                            health::PASSING.into(),
                            format!("TCP+TLS connect {addr}: Success"),
                        ),
                        Err(e) => (health::CRITICAL.into(), e),
                    },
                },
                Err(e) => (
                    health::CRITICAL.into(),
                    format!("dial tcp {addr}: connect: {e}"),
                ),
            },
            Probe::Grpc {
                target,
                addr,
                service,
                tls,
            } => match grpc::check(addr, service, tls.as_ref(), timeout).await {
                Ok(grpc::SERVING) => (
                    health::PASSING.into(),
                    format!("gRPC check {target}: success"),
                ),
                Ok(status) => (
                    health::CRITICAL.into(),
                    format!(
                        "gRPC {target} serving status: {}",
                        grpc::status_name(status)
                    ),
                ),
                Err(e) => (health::CRITICAL.into(), e),
            },
            Probe::Http {
                url,
                method,
                headers,
                body,
                tls,
                follow_redirects,
            } => {
                let max_redirects = if *follow_redirects { MAX_REDIRECTS } else { 0 };
                match http_probe(url, method, headers, body, tls, max_redirects).await {
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
                }
            }
        }
    }
}

/// An HTTP check's URL must be absolute `http://` or `https://` with a host.
fn check_http_url(url: &str) -> Result<(), String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("invalid HTTP check URL {url:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") if uri.host().is_some_and(|h| !h.is_empty()) => Ok(()),
        _ => Err(format!(
            "invalid HTTP check URL {url:?}: expected http:// or https:// and a host"
        )),
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

/// A connected stream, plain TCP or TLS.
trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}

/// Aborts a connection task when the probe ends (or is dropped by its timeout).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn has_header(headers: &[(String, String)], name: &str) -> bool {
    headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
}

/// An HTTP check: the request, then up to `max_redirects` redirects (Go's client rules, which
/// Consul uses: 301/302/303 continue as GET without a body unless the method was GET or HEAD,
/// 307/308 repeat the method and body; credentials headers only go to the same host).
/// Returns the final (code, reason, body text).
async fn http_probe(
    url: &str,
    method: &str,
    headers: &[(String, String)],
    body: &str,
    tls: &TlsOptions,
    max_redirects: usize,
) -> Result<(u16, String, String), String> {
    let first: hyper::Uri = url.parse().map_err(|e| format!("invalid URL: {e}"))?;
    let mut uri = first.clone();
    let mut method = method.to_string();
    let mut body = body.to_string();
    let mut redirects = 0;
    loop {
        let same_host = uri.authority() == first.authority();
        let (code, reason, location, text) =
            http_once(&uri, &method, headers, &body, tls, same_host)
                .await
                .map_err(|e| {
                    if redirects == 0 {
                        e
                    } else {
                        format!("{e} (after a redirect to {uri})")
                    }
                })?;
        let location = match location {
            Some(l) if max_redirects > 0 && matches!(code, 301 | 302 | 303 | 307 | 308) => l,
            _ => return Ok((code, reason, text)),
        };
        redirects += 1;
        if redirects >= max_redirects {
            return Err(format!("stopped after {max_redirects} redirects"));
        }
        uri = resolve_location(&uri, &location)?;
        if matches!(code, 301..=303) {
            if method != "GET" && method != "HEAD" {
                method = "GET".into();
            }
            body.clear();
        }
    }
}

/// The URL a `Location` header points to, relative to the request's.
fn resolve_location(base: &hyper::Uri, location: &str) -> Result<hyper::Uri, String> {
    let location = location.trim();
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or("");
    let absolute = if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        let path = base.path();
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        let dir = if dir.is_empty() { "/" } else { dir };
        format!("{scheme}://{authority}{dir}{location}")
    };
    check_http_url(&absolute)
        .map_err(|_| format!("failed to follow the redirect to {location:?}"))?;
    absolute
        .parse()
        .map_err(|_| format!("failed to follow the redirect to {location:?}"))
}

/// One HTTP/1.1 exchange over a fresh connection (TLS for `https`). `same_host`: the user's
/// `Host` override and credentials headers apply (Go drops them on a redirect elsewhere).
/// Returns (code, reason, Location, body text).
async fn http_once(
    uri: &hyper::Uri,
    method: &str,
    headers: &[(String, String)],
    body: &str,
    tls: &TlsOptions,
    same_host: bool,
) -> Result<(u16, String, Option<String>, String), String> {
    let https = uri.scheme_str() == Some("https");
    let host = uri.host().ok_or("URL has no host")?;
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let dial_host = host.trim_start_matches('[').trim_end_matches(']');
    let tcp = tokio::net::TcpStream::connect((dial_host, port))
        .await
        .map_err(|e| format!("dial tcp {host}:{port}: connect: {e}"))?;
    let mut io: Box<dyn Conn> = if https {
        Box::new(tls::handshake(tcp, host, tls, &[b"http/1.1"]).await?)
    } else {
        Box::new(tcp)
    };
    let host_override = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .filter(|_| same_host)
        .map(|(_, v)| v.as_str());
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host);
    let mut req = http1::Request {
        method,
        target: uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
        host: host_override.unwrap_or(authority),
        headers: Vec::with_capacity(headers.len() + 2),
        body: body.as_bytes(),
    };
    if !has_header(headers, "user-agent") {
        req.headers.push(("User-Agent", "Consul Health Check"));
    }
    if !has_header(headers, "accept") {
        req.headers.push(("Accept", "text/plain, text/*, */*"));
    }
    const CREDENTIALS: [&str; 4] = ["authorization", "www-authenticate", "cookie", "cookie2"];
    for (k, v) in headers {
        let sensitive = CREDENTIALS.iter().any(|c| k.eq_ignore_ascii_case(c));
        // Consul's check client disables keep-alives: the exchange sends its own
        // `Connection: close`, and the length of the body it sends.
        let own = ["host", "connection", "content-length"]
            .iter()
            .any(|o| k.eq_ignore_ascii_case(o));
        if own || (sensitive && !same_host) {
            continue;
        }
        req.headers.push((k.as_str(), v.as_str()));
    }
    let resp = http1::exchange(&mut io, &req, MAX_BODY).await?;
    let text = match resp.body {
        Some(b) => String::from_utf8_lossy(&b).into_owned(),
        None => String::from("(body too large)"),
    };
    let reason = hyper::StatusCode::from_u16(resp.code)
        .ok()
        .and_then(|c| c.canonical_reason())
        .unwrap_or("");
    Ok((resp.code, reason.to_string(), resp.location, text))
}

/// How a runner paces a check and when a result takes effect: everything a runner needs from
/// the check's definition, copied out once so the runner does not hold the whole definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub interval: Duration,
    pub timeout: Duration,
    pub success_before_passing: u32,
    pub failures_before_warning: u32,
    pub failures_before_critical: u32,
}

impl Schedule {
    /// Consul's defaults: a 10 s interval (alias checks, which Consul runs on change, are
    /// polled each second here), at least 1 s; the timeout defaults to 10 s capped by the
    /// interval.
    pub fn of(def: &CheckDefinition, probe: &Probe) -> Schedule {
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
        Schedule {
            interval,
            timeout,
            success_before_passing: def.success_before_passing,
            failures_before_warning: def.failures_before_warning,
            failures_before_critical: def.failures_before_critical,
        }
    }
}

/// Consul's flap thresholds: consecutive results needed before a status change takes effect.
#[derive(Default)]
struct Thresholds {
    successes: u32,
    failures: u32,
}

impl Thresholds {
    /// The status to record given a probe result, or `None` to keep the current one.
    fn apply(&mut self, s: &Schedule, status: &str) -> Option<String> {
        if status == health::PASSING {
            self.failures = 0;
            self.successes += 1;
            (self.successes >= s.success_before_passing).then(|| health::PASSING.to_string())
        } else {
            self.successes = 0;
            self.failures += 1;
            if status == health::WARNING {
                return (self.failures >= s.failures_before_warning.max(1))
                    .then(|| health::WARNING.into());
            }
            if self.failures >= s.failures_before_critical {
                Some(health::CRITICAL.into())
            } else if s.failures_before_warning > 0 && self.failures >= s.failures_before_warning {
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
        use proconsul_types::{Consistency, HealthNodeChecks, QueryOptions};
        let node = if node.is_empty() {
            self.inner.node_name.clone()
        } else {
            node.to_string()
        };
        let opts = QueryOptions {
            consistency: Consistency::Stale,
            ..Default::default()
        };
        let checks = match self.query(HealthNodeChecks { node }, opts).await {
            Ok((_, c)) => c,
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

    /// Start a runner for every running-type check that has none. HTTPS and gRPC-over-TLS
    /// probes take the agent's TLS settings in force when they start, under
    /// `enable_agent_tls_for_checks`.
    pub(crate) fn start_check_runners(&self) {
        let agent_tls = self.inner.tls.checks();
        for (id, schedule, mut probe, token) in
            self.inner.local.take_unstarted(&self.inner.shutdown)
        {
            probe.use_agent_tls(agent_tls.clone());
            let agent = self.clone();
            self.inner
                .tasks
                .spawn(async move { agent.run_check(id, schedule, probe, token).await });
        }
    }

    /// One check's runner. It sleeps most of its life, so its own state is kept small: the
    /// probe and the sync it may trigger are boxed while they run rather than inlined (inlined,
    /// every idle runner carried ~13 KB of their state).
    async fn run_check(
        &self,
        id: String,
        schedule: Schedule,
        probe: Probe,
        token: CancellationToken,
    ) {
        // Stagger the first run across the interval, like Consul, so checks do not fire in step.
        let first = Duration::from_millis(
            rand::rng().random_range(0..=schedule.interval.as_millis().min(1000) as u64),
        );
        let mut wait = first;
        let mut thresholds = Thresholds::default();
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = schedule.interval;
            let (status, output) = match &probe {
                Probe::Alias { node, service } => Box::pin(self.alias_status(node, service)).await,
                _ => Box::pin(probe.run(schedule.timeout)).await,
            };
            if token.is_cancelled() {
                return;
            }
            let status = thresholds.apply(&schedule, &status);
            if self
                .inner
                .local
                .set_check_result(&id, status.as_deref(), &truncate_output(&output))
            {
                Box::pin(self.sync_changes()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_follow_consul() {
        let tcp = Probe::Tcp {
            addr: "127.0.0.1:1".into(),
            tls: None,
        };
        let def = Schedule::of(
            &CheckDefinition {
                success_before_passing: 2,
                failures_before_critical: 3,
                ..Default::default()
            },
            &tcp,
        );
        let mut t = Thresholds::default();
        assert_eq!(t.apply(&def, "passing"), None);
        assert_eq!(t.apply(&def, "passing").as_deref(), Some("passing"));
        assert_eq!(t.apply(&def, "critical"), None);
        assert_eq!(t.apply(&def, "critical"), None);
        assert_eq!(t.apply(&def, "critical").as_deref(), Some("critical"));
        let plain = Schedule::of(&CheckDefinition::default(), &tcp);
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
            tls: TlsOptions::default(),
            follow_redirects: false,
        };
        let (s, o) = http("/ok").run(t).await;
        assert_eq!(s, "passing");
        assert_eq!(o, format!("HTTP GET http://{addr}/ok: 200 OK Output: ok"));
        assert_eq!(http("/busy").run(t).await.0, "warning");
        assert_eq!(http("/fail").run(t).await.0, "critical");
        assert_eq!(
            Probe::Tcp {
                addr: addr.to_string(),
                tls: None,
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
            tls: None,
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
            tls: TlsOptions::default(),
            follow_redirects: false,
        }
    }
}
