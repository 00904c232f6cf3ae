//! The connection to one agent: request building, consistency options, response metadata.
//!
//! Every endpoint method goes through [`Client::request`], so query options, the token and the
//! error mapping are applied in one place.

use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use ureq::http;

use crate::tls::{describe_tls_error, Tls};
use crate::{encode, Config, Error, Result};

/// Largest response body the client accepts (a recursive KV read of a big tree fits).
const MAX_BODY: u64 = 256 * 1024 * 1024;

/// Options of a read, as the Go client's `QueryOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryOptions {
    /// Query this datacenter instead of the client's default.
    pub datacenter: Option<String>,
    /// `?stale`: any server may answer.
    pub stale: bool,
    /// `?consistent`: the leader confirms its leadership first.
    pub consistent: bool,
    /// Blocking query: wait until the result's index exceeds this.
    pub wait_index: u64,
    /// Blocking query: wait at most this long.
    pub wait_time: Option<Duration>,
}

impl QueryOptions {
    /// Options that allow a stale read when `stale` is set (the CLI's `-stale`).
    pub fn stale(stale: bool) -> Self {
        QueryOptions {
            stale,
            ..QueryOptions::default()
        }
    }
}

/// What the agent reports besides a read's result (from the `X-Consul-*` headers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryMeta {
    /// `X-Consul-Index`: pass it back as `wait_index` to block for changes.
    pub last_index: u64,
    /// `X-Consul-KnownLeader`.
    pub known_leader: bool,
    /// `X-Consul-LastContact`, milliseconds.
    pub last_contact_ms: u64,
}

/// A raw answer: status, metadata and body.
pub(crate) struct Reply {
    pub status: u16,
    pub meta: QueryMeta,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Decode the body, reading an empty body or `null` as `T::default()` (Consul answers
    /// `null` for some empty results).
    pub fn json<T: DeserializeOwned + Default>(&self) -> Result<T> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        let v: Option<T> = serde_json::from_slice(&self.body)?;
        Ok(v.unwrap_or_default())
    }

    /// The `true`/`false` body of KV writes (the Go client looks for `true` in it).
    pub fn truthy(&self) -> bool {
        self.text().contains("true")
    }

    /// Turn a non-200 answer into [`Error::Status`].
    pub fn require_ok(self) -> Result<Reply> {
        if self.status == 200 {
            Ok(self)
        } else {
            Err(Error::Status {
                status: self.status,
                body: self.text(),
            })
        }
    }
}

/// HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Put,
    Post,
    Delete,
}

impl Method {
    /// How Go's `url.Error` names the method.
    fn go_name(self) -> &'static str {
        match self {
            Method::Get => "Get",
            Method::Put => "Put",
            Method::Post => "Post",
            Method::Delete => "Delete",
        }
    }

    fn http(self) -> http::Method {
        match self {
            Method::Get => http::Method::GET,
            Method::Put => http::Method::PUT,
            Method::Post => http::Method::POST,
            Method::Delete => http::Method::DELETE,
        }
    }
}

/// A blocking client bound to one agent. Cheap to clone; connections are pooled.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
    /// `host:port`, for Go-style transport errors.
    hostport: String,
    /// How connections are opened (TCP, TLS or a unix socket).
    dial: Dial,
    token: Option<String>,
    datacenter: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token stays out of debug output.
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("datacenter", &self.datacenter)
            .finish()
    }
}

/// How connections to the agent are opened.
#[derive(Clone)]
enum Dial {
    Tcp,
    /// `https://`: TCP, then our TLS.
    Tls(Tls),
    /// `unix:///path`.
    Unix(crate::unix::UnixConnector),
}

/// A ureq agent that dials as `dial` says; `pooled` keeps idle connections.
fn ureq_agent(dial: &Dial, pooled: bool) -> ureq::Agent {
    let mut builder = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)));
    if !pooled {
        builder = builder
            .max_idle_connections(0)
            .max_idle_connections_per_host(0);
    }
    let config = builder.build();
    use ureq::unversioned::resolver::DefaultResolver;
    use ureq::unversioned::transport::{ConnectProxyConnector, Connector, TcpConnector};
    match dial {
        Dial::Tcp => config.into(),
        Dial::Tls(tls) => {
            // ureq's default chain (CONNECT proxy, TCP) with our TLS in place of its own.
            let connector =
                ().chain(ConnectProxyConnector::default())
                    .chain(TcpConnector::default())
                    .chain(tls.clone());
            ureq::Agent::with_parts(config, connector, DefaultResolver::default())
        }
        Dial::Unix(unix) => {
            ureq::Agent::with_parts(config, ().chain(unix.clone()), DefaultResolver::default())
        }
    }
}

impl Client {
    /// Validate the config (address, token file, TLS files) and build a client. No request is
    /// made.
    pub fn new(config: Config) -> Result<Client> {
        let endpoint = config.endpoint()?;
        let token = config.resolve_token()?;
        // Consul loads the TLS files even for a plain-http address, so a bad one is an error
        // either way; the roots are only needed for https.
        let tls = if endpoint.https || config.tls.names_files() {
            Some(Tls::load(&config.tls)?)
        } else {
            None
        };
        let base = endpoint.url();
        let dial = match (endpoint.unix, tls.filter(|_| endpoint.https)) {
            (Some(path), _) => Dial::Unix(crate::unix::UnixConnector { path }),
            (None, Some(tls)) => Dial::Tls(tls),
            (None, None) => Dial::Tcp,
        };
        Ok(Client {
            agent: ureq_agent(&dial, true),
            base,
            hostport: endpoint.hostport,
            dial,
            token,
            datacenter: config.datacenter.filter(|d| !d.is_empty()),
        })
    }

    /// The same client, but every request opens its own connection. Long-running watchers
    /// use this so that a request never silently lands on a restarted agent through a
    /// re-established pooled connection: an agent that goes away always surfaces as an error.
    pub fn with_fresh_connections(mut self) -> Client {
        self.agent = ureq_agent(&self.dial, false);
        self
    }

    /// The base URL requests go to (`http://host:port` or `https://host:port`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Send one request. `path` is already escaped; `query` values are escaped here. The
    /// client's datacenter is added unless `query` names one.
    pub(crate) fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&[u8]>,
    ) -> Result<Reply> {
        let url = self.url(path, query);
        let builder = http::Request::builder()
            .method(method.http())
            .uri(url.as_str());
        let builder = match &self.token {
            Some(t) => builder.header("X-Consul-Token", t.as_str()),
            None => builder,
        };
        let transport = |message: String| Error::Transport {
            method: method.go_name(),
            url: url.clone(),
            message,
        };
        let result = match body {
            Some(b) => self
                .agent
                .run(builder.body(b).map_err(|e| transport(e.to_string()))?),
            None => self
                .agent
                .run(builder.body(()).map_err(|e| transport(e.to_string()))?),
        };
        let mut resp = result.map_err(|e| transport(describe(&e, &self.hostport, &self.dial)))?;
        let meta = meta_from(resp.headers());
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| transport(describe(&e, &self.hostport, &self.dial)))?;
        Ok(Reply { status, meta, body })
    }

    /// A GET whose body is a stream of text lines (`/v1/agent/monitor`): `on_line` gets each
    /// line as it arrives and returns `false` to stop. A non-200 answer is an error.
    pub fn stream_lines(
        &self,
        path: &str,
        query: &[(&str, String)],
        on_line: impl FnMut(&str) -> bool,
    ) -> Result<()> {
        self.stream_lines_until(path, query, None, on_line)
    }

    /// [`Client::stream_lines`] that also stops at `until`: the request is given up at that
    /// moment (a line still arriving is lost) and the stream ends without an error, as a Go
    /// caller's context deadline ends Consul's streams.
    pub fn stream_lines_until(
        &self,
        path: &str,
        query: &[(&str, String)],
        until: Option<Instant>,
        mut on_line: impl FnMut(&str) -> bool,
    ) -> Result<()> {
        use std::io::BufRead;
        let url = self.url(path, query);
        let transport = |message: String| Error::Transport {
            method: "Get",
            url: url.clone(),
            message,
        };
        let mut req = self.agent.get(url.as_str());
        if let Some(t) = &self.token {
            req = req.header("X-Consul-Token", t.as_str());
        }
        let past = || until.is_some_and(|u| Instant::now() >= u);
        if let Some(u) = until {
            let left = u.saturating_duration_since(Instant::now());
            req = req.config().timeout_global(Some(left)).build();
        }
        let mut resp = match req.call() {
            Ok(r) => r,
            Err(_) if past() => return Ok(()),
            Err(e) => return Err(transport(describe(&e, &self.hostport, &self.dial))),
        };
        let status = resp.status().as_u16();
        if status != 200 {
            let body = resp.body_mut().read_to_string().unwrap_or_default();
            return Err(Error::Status { status, body });
        }
        let reader = std::io::BufReader::new(resp.body_mut().as_reader());
        for line in reader.lines() {
            let line = match line {
                Ok(l) => l,
                Err(_) if past() => break,
                Err(e) => return Err(transport(e.to_string())),
            };
            if !on_line(&line) {
                break;
            }
        }
        Ok(())
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> String {
        let mut url = format!("{}{}", self.base, path);
        let mut sep = '?';
        let mut push = |k: &str, v: &str| {
            url.push(sep);
            sep = '&';
            url.push_str(&encode::query(k));
            url.push('=');
            url.push_str(&encode::query(v));
        };
        if !query.iter().any(|(k, _)| *k == "dc") {
            if let Some(dc) = &self.datacenter {
                push("dc", dc);
            }
        }
        for (k, v) in query {
            push(k, v);
        }
        url
    }

    /// A GET decoded as JSON, with the read's metadata. `query` holds endpoint parameters;
    /// `opts` adds consistency and blocking parameters.
    pub fn get_json<T: DeserializeOwned + Default>(
        &self,
        path: &str,
        query: &[(&str, String)],
        opts: &QueryOptions,
    ) -> Result<(T, QueryMeta)> {
        let reply = self.get(path, query, opts)?.require_ok()?;
        Ok((reply.json()?, reply.meta))
    }

    /// A PUT; returns the body of a 200 answer.
    pub fn put(&self, path: &str, query: &[(&str, String)], body: &[u8]) -> Result<Vec<u8>> {
        Ok(self
            .request(Method::Put, path, query, Some(body))?
            .require_ok()?
            .body)
    }

    /// A DELETE; returns the body of a 200 answer.
    pub fn delete(&self, path: &str, query: &[(&str, String)]) -> Result<Vec<u8>> {
        Ok(self
            .request(Method::Delete, path, query, None)?
            .require_ok()?
            .body)
    }

    /// A GET with query options applied; the caller decides what a non-200 means.
    pub(crate) fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        opts: &QueryOptions,
    ) -> Result<Reply> {
        let mut q: Vec<(&str, String)> = query.to_vec();
        if let Some(dc) = &opts.datacenter {
            q.push(("dc", dc.clone()));
        }
        if opts.stale {
            q.push(("stale", String::new()));
        }
        if opts.consistent {
            q.push(("consistent", String::new()));
        }
        if opts.wait_index != 0 {
            q.push(("index", opts.wait_index.to_string()));
        }
        if let Some(w) = opts.wait_time {
            q.push(("wait", format!("{}ms", w.as_millis())));
        }
        self.request(Method::Get, path, &q, None)
    }
}

fn meta_from(headers: &http::HeaderMap) -> QueryMeta {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    QueryMeta {
        last_index: get("X-Consul-Index")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        known_leader: get("X-Consul-KnownLeader") == Some("true"),
        last_contact_ms: get("X-Consul-LastContact")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    }
}

/// Describe a transport failure the way Go's net and crypto/tls packages do where users
/// recognise it (`dial tcp 127.0.0.1:8500: connect: connection refused`, `tls: failed to
/// verify certificate: x509: certificate signed by unknown authority`).
fn describe(e: &ureq::Error, hostport: &str, dial: &Dial) -> String {
    let network = match dial {
        Dial::Unix(_) => "unix",
        Dial::Tcp | Dial::Tls(_) => "tcp",
    };
    match e {
        ureq::Error::Io(io) => {
            if let Some(tls) = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                return describe_tls_error(tls);
            }
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return format!("dial {network} {hostport}: connect: connection refused")
                }
                std::io::ErrorKind::NotFound if network == "unix" => {
                    return format!("dial unix {hostport}: connect: no such file or directory")
                }
                _ => {}
            }
            e.to_string()
        }
        ureq::Error::HostNotFound => format!("dial tcp: lookup {hostport}: no such host"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testserver::{serve_once, Canned};

    fn client(addr: &str) -> Client {
        Client::new(Config {
            address: addr.to_string(),
            token: Some("tok".into()),
            datacenter: Some("dc2".into()),
            ..Config::default()
        })
        .unwrap()
    }

    #[test]
    fn token_dc_and_options_are_sent_and_meta_parsed() {
        let (addr, req) = serve_once(
            Canned::ok("[\"a\"]")
                .header("X-Consul-Index", "42")
                .header("X-Consul-KnownLeader", "true")
                .header("X-Consul-LastContact", "7"),
        );
        let (v, meta): (Vec<String>, _) = client(&addr)
            .get_json(
                "/v1/x",
                &[],
                &QueryOptions {
                    stale: true,
                    wait_index: 5,
                    wait_time: Some(Duration::from_secs(2)),
                    ..QueryOptions::default()
                },
            )
            .unwrap();
        assert_eq!(v, vec!["a".to_string()]);
        assert_eq!(
            meta,
            QueryMeta {
                last_index: 42,
                known_leader: true,
                last_contact_ms: 7
            }
        );
        let req = req.join().unwrap();
        assert!(
            req.starts_with("GET /v1/x?dc=dc2&stale=&index=5&wait=2000ms HTTP/1.1"),
            "{req}"
        );
        assert!(
            req.to_ascii_lowercase().contains("x-consul-token: tok"),
            "{req}"
        );
    }

    #[test]
    fn non_200_is_a_status_error_with_body() {
        let (addr, _req) = serve_once(Canned::status(500, "No cluster leader"));
        let err = client(&addr)
            .get_json::<Vec<String>>("/v1/x", &[], &QueryOptions::default())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Unexpected response code: 500 (No cluster leader)"
        );
    }

    #[test]
    fn unix_socket_address_carries_requests_over_the_socket() {
        use std::io::{BufRead, BufReader, Write};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("http.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        // One connection, two requests on it: the pooled connection is reused.
        let server = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut writer = conn;
            let mut request_lines = Vec::new();
            for _ in 0..2 {
                let mut first = String::new();
                reader.read_line(&mut first).unwrap();
                let mut host = String::new();
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line.to_ascii_lowercase().starts_with("host:") {
                        host = line.trim().to_string();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                request_lines.push((first.trim().to_string(), host));
                let body = "\"127.0.0.1:8300\"";
                write!(
                    writer,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
            request_lines
        });
        let c = Client::new(Config {
            address: format!("unix://{}", path.display()),
            ..Config::default()
        })
        .unwrap();
        assert_eq!(c.status_leader().unwrap(), "127.0.0.1:8300");
        assert_eq!(c.status_leader().unwrap(), "127.0.0.1:8300");
        let seen = server.join().unwrap();
        assert_eq!(seen[0].0, "GET /v1/status/leader HTTP/1.1");
        assert_eq!(seen[1].0, "GET /v1/status/leader HTTP/1.1");
        assert_eq!(seen[0].1.to_ascii_lowercase(), "host: localhost");

        let missing = dir.path().join("gone.sock");
        let c = Client::new(Config {
            address: format!("unix://{}", missing.display()),
            ..Config::default()
        })
        .unwrap();
        let err = c.status_leader().unwrap_err();
        assert!(err.is_transport());
        assert_eq!(
            err.to_string(),
            format!(
                "Get \"http://localhost/v1/status/leader\": dial unix {}: connect: no such file or directory",
                missing.display()
            )
        );
    }

    #[test]
    fn refused_connection_reads_like_go() {
        // Bind and drop to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = Client::new(Config {
            address: format!("127.0.0.1:{port}"),
            ..Config::default()
        })
        .unwrap();
        let err = c.status_leader().unwrap_err();
        assert!(err.is_transport());
        assert_eq!(
            err.to_string(),
            format!(
                "Get \"http://127.0.0.1:{port}/v1/status/leader\": dial tcp 127.0.0.1:{port}: connect: connection refused"
            )
        );
    }
}
