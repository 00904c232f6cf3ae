//! Consul's DNS interface (`:8600`, UDP and TCP).
//!
//! This crate owns the DNS wire surface only: name forms (`web.service.consul`,
//! `_web._tcp.service.dc1.consul`, `node1.node.consul`, `7f000001.addr.dc1.consul`, reverse
//! `in-addr.arpa` / `ip6.arpa`), the records Consul answers with, health filtering, TTLs, response
//! codes and truncation. It never touches the state store: every lookup goes through the narrow
//! [`DnsBackend`] trait the agent implements (locally, from a cached catalog view, or over RPC), so
//! the same handler runs against a live agent or an in-memory fake in tests.
//!
//! Layers, outside in (see `server.rs`, `handler.rs`, `name.rs`, `answer.rs`, `limits.rs`):
//! sockets and framing → decode with hickory-proto → parse the query name into a typed
//! `Query` → build records from backend data → fit the response to the transport → encode.
//!
//! Answers are pre-encoded per (query bytes, transport, catalog generation) and re-served with
//! the query's ID (`cache.rs`); shuffled answers keep several orderings to pick from.
//!
//! Not here (yet): prepared queries (`.query.`),
//! `connect`/`ingress`/`virtual` names, WAN address translation.

mod answer;
#[cfg(target_os = "linux")]
mod batch;
mod cache;
mod handler;
mod limits;
mod name;
mod recursor;
mod server;
#[cfg(target_os = "linux")]
mod udp;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use proconsul_types::{CheckServiceNode, Node, PreparedQueryExecuteResponse};

pub use handler::{Handler, Transport};
pub use recursor::RecursorStrategy;
pub use server::DnsServer;

/// Why a backend lookup failed. The classification decides the DNS response code.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DnsBackendError {
    /// The datacenter named in the query is not known: answered NXDOMAIN, like Consul's
    /// "No path to datacenter".
    #[error("unknown datacenter {0:?}")]
    UnknownDatacenter(String),
    /// Anything else (no leader, RPC failure, timeout): answered SERVFAIL.
    #[error("{0}")]
    Unavailable(String),
}

impl DnsBackendError {
    /// Does this error mean "the name does not exist" (NXDOMAIN) rather than "try again" (SERVFAIL)?
    pub fn is_name_error(&self) -> bool {
        matches!(self, DnsBackendError::UnknownDatacenter(_))
    }
}

/// What a reverse (PTR) lookup found at an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReverseMatch {
    /// A node whose `Address` is the IP: answered `<node>.node.<dc>.<domain>`.
    Node { node: String, datacenter: String },
    /// A service instance whose `ServiceAddress` is the IP: answered `<svc>.service.<dc>.<domain>`.
    Service { service: String, datacenter: String },
}

/// The catalog reads DNS needs; implemented by the agent.
///
/// Names arrive lower-cased (DNS is case-insensitive), so service, tag and node matching must be
/// case-insensitive. An empty `datacenter` means the local one. Implementations should answer from a
/// stale-allowed, cached view (Consul's `allow_stale`/`use_cache`): DNS is on the hot path and
/// calls these once per query. An unknown datacenter is [`DnsBackendError::UnknownDatacenter`].
pub trait DnsBackend: Send + Sync + 'static {
    /// Every instance of `service` (with `tag`, case-insensitive, when given) in `datacenter`,
    /// each with its node and all its node- and service-level checks. Health filtering is done by
    /// the DNS layer, so critical instances must be included. An unknown service is `Ok(vec![])`.
    fn service_nodes(
        &self,
        datacenter: &str,
        service: &str,
        tag: Option<&str>,
    ) -> impl Future<Output = Result<Vec<CheckServiceNode>, DnsBackendError>> + Send;

    /// The node called `name` (case-insensitive) in `datacenter`; `Ok(None)` when there is none.
    fn node(
        &self,
        datacenter: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Node>, DnsBackendError>> + Send;

    /// The local datacenter's node, else service instance, whose address is `ip`.
    fn reverse(
        &self,
        ip: IpAddr,
    ) -> impl Future<Output = Result<Option<ReverseMatch>, DnsBackendError>> + Send;

    /// Run the prepared query `name` (an ID or a name) from `datacenter`: its healthy
    /// instances, wherever it failed over to; `Ok(None)` when there is no such query.
    fn prepared_query(
        &self,
        datacenter: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<PreparedQueryExecuteResponse>, DnsBackendError>> + Send
    {
        let _ = (datacenter, name);
        async { Ok(None) }
    }

    /// The local datacenter's name (`dc1`).
    fn datacenter(&self) -> String;

    /// The local datacenter's servers (node name, address), for NS and SOA answers.
    fn servers(&self) -> Vec<(String, IpAddr)>;

    /// A number that changes whenever anything the lookups above read may have changed (the
    /// local state store's publish counter), or `None` when answers must not be cached (the
    /// data comes from another agent). Answers built at one generation are re-served, with only
    /// the ID changed, until it moves on.
    fn generation(&self) -> Option<u64> {
        None
    }
}

/// `dns_config.soa`, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoaSettings {
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    /// Also the TTL of the SOA record and so the negative-caching TTL (RFC 2308).
    pub min_ttl: u32,
}

impl Default for SoaSettings {
    fn default() -> Self {
        SoaSettings {
            refresh: 3600,
            retry: 600,
            expire: 86400,
            min_ttl: 0,
        }
    }
}

/// Everything the DNS server needs from the agent's `RuntimeConfig`, already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsServerConfig {
    /// Each address is bound for both UDP and TCP. With port 0 the UDP and TCP listeners share
    /// the port the kernel picked.
    pub bind: Vec<SocketAddr>,
    /// `consul.` (case-insensitive; a trailing dot is added if missing).
    pub domain: String,
    /// `alt_domain`, answered like `domain`.
    pub alt_domain: Option<String>,
    /// TTL of node, addr and NS records.
    pub node_ttl: Duration,
    /// Per-service TTLs: exact names first, then the longest `prefix*` key (`*` matches all).
    pub service_ttl: Vec<(String, Duration)>,
    /// Drop instances with a warning check too (critical ones are always dropped).
    pub only_passing: bool,
    /// Answers per UDP response to a query without EDNS (Consul caps this at 8).
    pub udp_answer_limit: usize,
    /// Maximum A/AAAA answers per response; 0 = no limit.
    pub a_record_limit: usize,
    /// Set TC when answers were cut. Consul defaults to false; we default to true because a cut
    /// answer without TC leaves clients no hint to retry over TCP.
    pub enable_truncate: bool,
    /// Add node meta TXT records to the additional section of node A/AAAA answers.
    pub node_meta_txt: bool,
    pub soa: SoaSettings,
    /// Concurrent TCP connections; more are closed on accept.
    pub max_tcp_connections: usize,
    /// A TCP connection with no complete query for this long is closed.
    pub tcp_idle_timeout: Duration,
    /// UDP queries being answered at once; more are dropped (the client retries).
    pub max_udp_in_flight: usize,
    /// Upstream resolvers for names outside our domains (and unknown reverse names). Empty:
    /// such queries get REFUSED and RA is clear.
    pub recursors: Vec<SocketAddr>,
    pub recursor_strategy: RecursorStrategy,
    /// How long each recursor gets before the next is tried.
    pub recursor_timeout: Duration,
    /// The agent's node name: the `node` label of the query timers.
    pub node_name: String,
}

impl Default for DnsServerConfig {
    fn default() -> Self {
        DnsServerConfig {
            bind: vec![SocketAddr::from(([127, 0, 0, 1], 8600))],
            domain: "consul.".into(),
            alt_domain: None,
            node_ttl: Duration::ZERO,
            service_ttl: Vec::new(),
            only_passing: false,
            udp_answer_limit: 3,
            a_record_limit: 0,
            enable_truncate: true,
            node_meta_txt: true,
            soa: SoaSettings::default(),
            max_tcp_connections: 256,
            tcp_idle_timeout: Duration::from_secs(10),
            max_udp_in_flight: 1024,
            recursors: Vec::new(),
            recursor_strategy: RecursorStrategy::Sequential,
            recursor_timeout: Duration::from_secs(2),
            node_name: String::new(),
        }
    }
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("dns: bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("dns: invalid domain {0:?}")]
    InvalidDomain(String),
}
