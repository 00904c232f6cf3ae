//! The runtime layer: one validated, fully defaulted configuration the agent runs with.
//!
//! Built from the merged user layers in one pass: Consul's defaults fill what no layer set,
//! derived values are computed (advertise address, listener addresses, leave behaviour by role),
//! and cross-field rules are checked with Consul's messages. The result has no `Option` where a
//! default exists; it is plain data, rebuilt from scratch on reload, never patched in place.

use proconsul_types::{CheckDefinition, ServiceDefinition};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{InvalidConfig, ValueError};
use crate::host::HostInfo;
use crate::user::{Layer, UserConfig};
use crate::values;

/// The agent's configuration after defaults, files and flags, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeConfig {
    /// Node name; defaults to the host name.
    pub node_name: String,
    /// Node ID if configured; otherwise the agent generates one and keeps it in `data_dir`.
    pub node_id: Option<String>,
    /// Datacenter, lower-cased (`dc1`).
    pub datacenter: String,
    /// Primary datacenter (defaults to `datacenter`).
    pub primary_datacenter: String,
    /// DNS domain with trailing dot (`consul.`).
    pub domain: String,
    /// Alternate DNS domain with trailing dot.
    pub alt_domain: Option<String>,
    /// Data directory; `None` only in dev mode (in-memory).
    pub data_dir: Option<PathBuf>,
    /// `-dev`: in-memory single server.
    pub dev_mode: bool,
    pub server: bool,
    pub bootstrap: bool,
    pub bootstrap_expect: u32,
    /// Address the cluster listeners (RPC, Serf) bind to.
    pub bind_addr: IpAddr,
    /// Address other agents reach this one at; never unspecified.
    pub advertise_addr: IpAddr,
    /// `advertise_addr_wan` (`-advertise-wan`; default `advertise_addr`): the WAN pool's
    /// address, which other datacenters gossip and dial, and the node's `wan` address.
    pub advertise_addr_wan: IpAddr,
    /// `client_addr`: where HTTP and DNS listen unless `addresses.*` says otherwise.
    pub client_addrs: Vec<IpAddr>,
    /// HTTP listeners; empty when `ports.http = -1`.
    pub http_addrs: Vec<SocketAddr>,
    /// HTTP listeners on unix sockets (`addresses.http = "unix:///path"`), with
    /// `unix_sockets`' owner, group (numeric IDs) and mode.
    pub http_unix: Vec<PathBuf>,
    pub unix_socket_user: Option<u32>,
    pub unix_socket_group: Option<u32>,
    pub unix_socket_mode: Option<u32>,
    /// `telemetry.prometheus_retention_time`: > 0 turns `?format=prometheus` on.
    pub telemetry_prometheus_retention: Duration,
    /// `telemetry.metrics_prefix` (default `consul`).
    pub telemetry_prefix: String,
    /// `telemetry.prefix_filter` as `(prefix, keep)` rules, and `filter_default`.
    pub telemetry_filter: Vec<(String, bool)>,
    pub telemetry_filter_default: bool,
    /// `telemetry.statsd_address`, resolved.
    pub telemetry_statsd: Option<SocketAddr>,
    /// `telemetry.dogstatsd_addr`, resolved, and `dogstatsd_tags`.
    pub telemetry_dogstatsd: Option<SocketAddr>,
    pub telemetry_dogstatsd_tags: Vec<String>,
    /// `telemetry.statsite_address`, resolved (statsd's lines over TCP).
    pub telemetry_statsite: Option<SocketAddr>,
    /// `telemetry.enable_host_metrics`: the `consul.host.*` gauges.
    pub telemetry_host_metrics: bool,
    /// `acl { … }`.
    pub acl: proconsul_types::AclConfig,
    /// HTTPS listeners (`ports.https`, `addresses.https` or `client_addr`); empty when off.
    pub https_addrs: Vec<SocketAddr>,
    /// Their certificate, key and client verification (`tls.https` over `tls.defaults`).
    pub https_tls: Option<HttpsTls>,
    /// TLS on the server RPC port, both ways (`None`: plaintext).
    pub rpc_tls: Option<RpcTls>,
    /// Checks present the RPC certificate and trust its CA (`enable_agent_tls_for_checks`).
    pub enable_agent_tls_for_checks: bool,
    /// DNS listeners (UDP and TCP); empty when `ports.dns = -1`.
    pub dns_addrs: Vec<SocketAddr>,
    pub server_port: u16,
    pub serf_lan_port: u16,
    /// `None` when `ports.serf_wan = -1`.
    pub serf_wan_port: Option<u16>,
    /// gRPC port (dev: 8502); accepted, nothing served yet.
    pub grpc_port: Option<u16>,
    /// Accepted, nothing served yet.
    pub https_port: Option<u16>,
    /// Accepted, nothing served yet.
    pub grpc_tls_port: Option<u16>,
    /// Upper-cased: TRACE, DEBUG, INFO, WARN, ERR or ERROR.
    pub log_level: String,
    pub log_json: bool,
    /// `log_file`: also write the log to a file, rotated (`None`: stdout only).
    pub log_file: Option<LogFileConfig>,
    pub node_meta: BTreeMap<String, String>,
    pub rejoin_after_leave: bool,
    pub retry_join: Vec<String>,
    pub retry_interval: Duration,
    /// 0 = retry forever.
    pub retry_max: u32,
    pub start_join: Vec<String>,
    /// `retry_join_wan` and `start_join_wan` (servers): WAN pool addresses, joined like
    /// `retry_join`, every `retry_interval_wan` (30 s) up to `retry_max_wan` tries (0: forever).
    pub retry_join_wan: Vec<String>,
    pub retry_interval_wan: Duration,
    pub retry_max_wan: u32,
    /// Base64 gossip key (`encrypt`), validated as 16, 24 or 32 bytes.
    pub encrypt_key: Option<String>,
    /// `encrypt_verify_incoming` (default true).
    pub encrypt_verify_incoming: bool,
    /// `encrypt_verify_outgoing` (default true).
    pub encrypt_verify_outgoing: bool,
    /// `reconnect_timeout`: failed LAN members are reaped after this (default 72h, min 8m).
    pub reconnect_timeout: Duration,
    /// `performance.raft_multiplier`, 1..=10.
    pub raft_multiplier: u32,
    /// `translate_wan_addrs`: rows of another datacenter carry its nodes' and services' WAN
    /// addresses, in HTTP and DNS answers.
    pub translate_wan_addrs: bool,
    /// `raft_snapshot_threshold`: a snapshot every this many applied entries (default 16384).
    pub raft_snapshot_threshold: u64,
    /// `raft_trailing_logs`: log entries kept behind a snapshot (default 10240).
    pub raft_trailing_logs: u64,
    pub enable_script_checks: bool,
    pub enable_local_script_checks: bool,
    /// Services from config files; each service's checks are in its `checks` (never `check`).
    pub services: Vec<ServiceDefinition>,
    /// Top-level checks from config files.
    pub checks: Vec<CheckDefinition>,
    /// `watches`: watch plans the agent runs against its own HTTP API.
    pub watches: Vec<crate::watch::WatchDefinition>,
    pub session_ttl_min: Duration,
    /// `check_update_interval`: a check whose output changed but status did not is synced to
    /// the catalog at most this often (Consul: 5m; 0 in `-dev`).
    pub check_update_interval: Duration,
    pub kv_max_value_size: u64,
    pub txn_max_req_len: u64,
    /// `limits.http_max_conns_per_client` (200; 0 = unlimited).
    pub http_max_conns_per_client: u32,
    /// `limits.rpc_max_conns_per_client` (100; 0 = unlimited) and `rpc_handshake_timeout`
    /// (5 s; `None` when 0 = no limit): a server's RPC port.
    pub rpc_max_conns_per_client: u32,
    pub rpc_handshake_timeout: Option<Duration>,
    /// `limits.request_limits` (servers).
    pub request_limits: proconsul_types::RequestLimits,
    /// `limits.rpc_rate` (infinite by default) and `rpc_max_burst` (1000): RPCs a client
    /// agent sends its servers.
    pub rpc_rate: f64,
    pub rpc_max_burst: u32,
    pub dns: DnsConfig,
    pub leave_on_terminate: bool,
    pub skip_leave_on_interrupt: bool,
    pub disable_remote_exec: bool,
    /// `disable_host_node_id` (default true): do not derive the node ID from host data.
    pub disable_host_node_id: bool,
    /// `disable_coordinates`: no network coordinates are sent, and `/v1/coordinate/*`
    /// answers 401 `Coordinate support disabled`.
    pub disable_coordinates: bool,
    /// Each agent sends its LAN coordinate every `max(min, members / rate_target)` seconds
    /// plus up to as much again of random stagger (Consul: 15 s and 64 updates/s).
    pub sync_coordinate_interval_min: Duration,
    pub sync_coordinate_rate_target: f64,
    /// `consul.coordinate.*` (servers): how coordinate updates are batched into Raft
    /// (Consul: every 5 s, 128 per entry, 5 entries per period).
    pub coordinate_update_period: Duration,
    pub coordinate_update_batch_size: usize,
    pub coordinate_update_max_batches: usize,
    pub enable_debug: bool,
    /// `ui_config.enabled` (`ui`, `-ui`; on with `-dev`): serve the web UI.
    pub ui: bool,
    /// `ui_config.content_path` (`ui_content_path`): where the UI is served, `/`-delimited
    /// (`/ui/` by default; `consul` is read as `/consul/`, as Consul's `UIPathBuilder`).
    pub ui_content_path: String,
    /// The files actually read, in order.
    pub config_files: Vec<PathBuf>,
    pub pid_file: Option<PathBuf>,
    /// Non-fatal notes for the log.
    pub warnings: Vec<String>,
}

impl RuntimeConfig {
    /// Serf LAN listener: bind address and LAN port.
    pub fn serf_lan_bind(&self) -> SocketAddr {
        SocketAddr::new(self.bind_addr, self.serf_lan_port)
    }
    /// Serf WAN listener, if enabled.
    pub fn serf_wan_bind(&self) -> Option<SocketAddr> {
        self.serf_wan_port
            .map(|p| SocketAddr::new(self.bind_addr, p))
    }
    /// Server RPC listener.
    pub fn rpc_bind(&self) -> SocketAddr {
        SocketAddr::new(self.bind_addr, self.server_port)
    }
    /// Server RPC address other agents dial.
    pub fn rpc_advertise(&self) -> SocketAddr {
        SocketAddr::new(self.advertise_addr, self.server_port)
    }
}

/// `dns_config` and `recursors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    pub allow_stale: bool,
    pub max_stale: Duration,
    pub node_ttl: Duration,
    /// Per-service TTLs; `*` is the wildcard Consul supports (`web*` prefixes too).
    pub service_ttl: BTreeMap<String, Duration>,
    pub only_passing: bool,
    pub udp_answer_limit: u32,
    pub a_record_limit: u32,
    /// Set the TC bit when UDP answers were cut. proconsul defaults to `true` (Consul: `false`)
    /// because a cut answer without TC makes resolvers believe they saw everything.
    pub enable_truncate: bool,
    /// `ip` or `ip:port` strings, as given.
    pub recursors: Vec<String>,
    pub recursor_timeout: Duration,
    pub soa: SoaConfig,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            allow_stale: true,
            max_stale: Duration::from_secs(87600 * 3600),
            node_ttl: Duration::ZERO,
            service_ttl: BTreeMap::new(),
            only_passing: false,
            udp_answer_limit: 3,
            a_record_limit: 0,
            enable_truncate: true,
            recursors: Vec::new(),
            recursor_timeout: Duration::from_secs(2),
            soa: SoaConfig::default(),
        }
    }
}

/// `dns_config.soa`, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoaConfig {
    pub expire: u32,
    pub min_ttl: u32,
    pub refresh: u32,
    pub retry: u32,
}

impl Default for SoaConfig {
    fn default() -> Self {
        SoaConfig {
            expire: 86400,
            min_ttl: 0,
            refresh: 3600,
            retry: 600,
        }
    }
}

/// The layer `-dev` adds between the defaults and the files (Consul's `DevSource`).
pub(crate) fn dev_layer() -> Layer {
    use crate::user::{Performance, Ports};
    Layer {
        user: UserConfig {
            bind_addr: Some("127.0.0.1".into()),
            log_level: Some("DEBUG".into()),
            server: Some(true),
            bootstrap: Some(true),
            enable_debug: Some(true),
            ui_config: Some(crate::user::UiUser {
                enabled: Some(true),
                ..Default::default()
            }),
            check_update_interval: Some("0s".into()),
            performance: Some(Performance {
                raft_multiplier: Some(1),
            }),
            ports: Some(Ports {
                grpc: Some(8502),
                ..Ports::default()
            }),
            ..UserConfig::default()
        },
        ..Layer::default()
    }
}

/// Options of one build.
pub(crate) struct BuildOpts<'a> {
    pub dev: bool,
    /// `false` for `validate`, which checks fragments that need not name a data dir.
    pub require_data_dir: bool,
    pub host: &'a dyn HostInfo,
    pub config_files: Vec<PathBuf>,
}

fn port_or(key: &str, v: Option<i64>, default: i64) -> Result<Option<u16>, ValueError> {
    values::port(key, v.unwrap_or(default))
}

fn required_port(key: &str, v: Option<i64>, default: i64) -> Result<u16, InvalidConfig> {
    port_or(key, v, default)?.ok_or_else(|| InvalidConfig::PortRequired(key.into()))
}

fn dur_or(key: &str, v: Option<&str>, default: Duration) -> Result<Duration, ValueError> {
    Ok(values::duration(key, v)?.unwrap_or(default))
}

/// A count that must fit a `u32` (a connection limit, a burst), or `default` when absent.
fn count_or(key: &str, v: Option<i64>, default: u32) -> Result<u32, ValueError> {
    match v {
        None => Ok(default),
        Some(n) => u32::try_from(n).map_err(|_| ValueError::Negative {
            key: key.into(),
            value: n,
        }),
    }
}

/// The `tls` settings that protect nothing say so (there is no gRPC listener).
fn tls_warnings(t: &crate::user::TlsUser) -> Vec<String> {
    let set = |s: &Option<crate::user::TlsSection>| {
        s.as_ref()
            .is_some_and(|s| *s != crate::user::TlsSection::default())
    };
    let mut w = Vec::new();
    if set(&t.grpc) {
        w.push("config key \"tls.grpc\" is accepted for compatibility with Consul and has no effect in proconsul (no gRPC listener)".into());
    }
    w
}

/// `log_file` and its rotation, as Consul's `logging.LogFile` reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFileConfig {
    /// The directory (`log_file` up to its last `/`).
    pub dir: PathBuf,
    /// The current file's name (`consul.log` when `log_file` ends in `/`); rotated files are
    /// `<stem>-<unix nanoseconds><ext>` beside it.
    pub name: String,
    /// `log_rotate_bytes`: rotate when the file reaches this size (0: no size limit).
    pub rotate_bytes: u64,
    /// `log_rotate_duration` (default 24h): rotate a file this old.
    pub rotate_duration: Duration,
    /// `log_rotate_max_files`: rotated files kept (0: all; -1: none).
    pub max_files: i64,
}

/// What the HTTPS listener serves with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// The CA that client certificates must chain to (`ca_file`, or every `.pem`/`.crt` in
    /// `ca_path`).
    pub ca_file: Option<PathBuf>,
    pub ca_path: Option<PathBuf>,
    /// `verify_incoming`: a client certificate signed by the CA is required.
    pub verify_incoming: bool,
    /// `tls_min_version = "TLSv1_3"`: refuse TLS 1.2.
    pub tls13_only: bool,
    /// `tls_cipher_suites`: the TLS 1.2 suites offered, by IANA name (empty: rustls' own
    /// choice); TLS 1.3's suites are not configurable, as in Consul.
    pub cipher_suites: Vec<String>,
}

/// The server RPC port's TLS settings (`tls.internal_rpc` over `tls.defaults`), as Consul's
/// `tlsutil` reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcTls {
    /// This agent's certificate: served to callers (servers) and presented when dialing.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub ca_path: Option<PathBuf>,
    /// Callers must use TLS and present a certificate signed by the CA.
    pub verify_incoming: bool,
    /// Dial servers over TLS and check their certificate against the CA (`verify_outgoing`,
    /// or implied by `verify_server_hostname` as in Consul since CVE-2018-19653).
    pub verify_outgoing: bool,
    /// A server's certificate must be valid for [`RpcTls::server_name`] — both when dialing it
    /// and, with `verify_incoming`, when it calls as a server (Raft, forwarding).
    pub verify_server_hostname: bool,
    pub tls13_only: bool,
    /// As [`HttpsTls::cipher_suites`].
    pub cipher_suites: Vec<String>,
    /// `server.<datacenter>.<domain>`.
    pub server_name: String,
    /// The domain of server names (`consul`: `domain` without its trailing dot).
    pub domain: String,
}

/// Consul's agent cipher suites that rustls offers (Consul's list also has four CBC suites,
/// which rustls does not implement: asking for one is refused rather than ignored).
const CIPHER_SUITES: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
];
const CBC_SUITES: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
];

/// `tls_cipher_suites` (comma-separated IANA names) checked as Consul checks them.
fn cipher_suites(
    section: &str,
    v: Option<&str>,
    tls13_only: bool,
) -> Result<Vec<String>, ValueError> {
    let names: Vec<String> = v
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let invalid = |value: String, why: String| ValueError::Invalid {
        key: format!("tls.{section}.tls_cipher_suites"),
        value,
        why,
    };
    if names.is_empty() {
        return Ok(names);
    }
    if tls13_only {
        return Err(invalid(
            names.join(","),
            "cipher suites can only be configured when tls_min_version is TLSv1_2 or lower (TLS 1.3's are fixed)".into(),
        ));
    }
    let unknown: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !CIPHER_SUITES.contains(n) && !CBC_SUITES.contains(n))
        .collect();
    if !unknown.is_empty() {
        return Err(invalid(
            names.join(","),
            format!(
                "no matching Consul Agent TLS cipher suite found for {}",
                unknown.join(",")
            ),
        ));
    }
    if let Some(cbc) = names.iter().find(|n| CBC_SUITES.contains(&n.as_str())) {
        return Err(invalid(
            names.join(","),
            format!("{cbc} is a CBC suite, which proconsul does not offer (rustls has none); choose GCM or CHACHA20_POLY1305 suites"),
        ));
    }
    Ok(names)
}

/// One protocol's settings over `tls.defaults`, as `tlsutil` merges them.
struct Resolved {
    cert: Option<String>,
    key: Option<String>,
    ca_file: Option<String>,
    ca_path: Option<String>,
    verify_incoming: bool,
    verify_outgoing: bool,
    verify_server_hostname: bool,
    tls13_only: bool,
    cipher_suites: Vec<String>,
}

fn resolve(
    section: &str,
    d: &crate::user::TlsSection,
    s: Option<crate::user::TlsSection>,
) -> Result<Resolved, ValueError> {
    let s = s.unwrap_or_default();
    let pick = |a: Option<String>, b: &Option<String>| non_empty(a).or(non_empty(b.clone()));
    let min = pick(s.tls_min_version, &d.tls_min_version);
    let tls13_only = match min.as_deref() {
        None | Some("TLSv1_0" | "TLSv1_1" | "TLSv1_2" | "tls10" | "tls11" | "tls12") => false,
        Some("TLSv1_3" | "tls13") => true,
        Some(other) => {
            return Err(ValueError::Invalid {
                key: format!("tls.{section}.tls_min_version"),
                value: other.into(),
                why: "must be one of TLSv1_0, TLSv1_1, TLSv1_2, TLSv1_3".into(),
            })
        }
    };
    let suites = pick(s.tls_cipher_suites, &d.tls_cipher_suites);
    let r = Resolved {
        cipher_suites: cipher_suites(section, suites.as_deref(), tls13_only)?,
        cert: pick(s.cert_file, &d.cert_file),
        key: pick(s.key_file, &d.key_file),
        ca_file: pick(s.ca_file, &d.ca_file),
        ca_path: pick(s.ca_path, &d.ca_path),
        verify_incoming: s.verify_incoming.or(d.verify_incoming).unwrap_or(false),
        verify_outgoing: s.verify_outgoing.or(d.verify_outgoing).unwrap_or(false),
        verify_server_hostname: s
            .verify_server_hostname
            .or(d.verify_server_hostname)
            .unwrap_or(false),
        tls13_only,
    };
    let invalid = |key: &str, why: &str| ValueError::Invalid {
        key: format!("tls.{section}.{key}"),
        value: "set".into(),
        why: why.into(),
    };
    if r.cert.is_some() != r.key.is_some() {
        let which = if r.cert.is_some() {
            "key_file"
        } else {
            "cert_file"
        };
        return Err(invalid(
            which,
            "cert_file and key_file must be given together",
        ));
    }
    let has_ca = r.ca_file.is_some() || r.ca_path.is_some();
    if r.verify_incoming && !has_ca {
        return Err(invalid(
            "verify_incoming",
            "VerifyIncoming set but no CA certificates were provided",
        ));
    }
    if r.verify_incoming && r.cert.is_none() {
        return Err(invalid(
            "verify_incoming",
            "VerifyIncoming requires either a Cert and Key pair in the configuration file, or auto_encrypt/auto_config be enabled",
        ));
    }
    Ok(r)
}

/// `tls.https` over `tls.defaults`, checked as Consul checks it: a listener needs a
/// certificate and its key, client verification needs a CA. TLS 1.0 and 1.1 are not offered
/// (rustls has neither), so a lower minimum is met by 1.2.
fn https_tls(t: &crate::user::TlsUser, listening: bool) -> Result<Option<HttpsTls>, ValueError> {
    let d = t.defaults.clone().unwrap_or_default();
    let r = resolve("https", &d, t.https.clone())?;
    if !listening {
        return Ok(None);
    }
    let (Some(cert), Some(key)) = (r.cert, r.key) else {
        return Err(ValueError::Invalid {
            key: "ports.https".into(),
            value: "set".into(),
            why: "an HTTPS listener needs tls.https (or tls.defaults) cert_file and key_file"
                .into(),
        });
    };
    Ok(Some(HttpsTls {
        cert_file: cert.into(),
        key_file: key.into(),
        ca_file: r.ca_file.map(Into::into),
        ca_path: r.ca_path.map(Into::into),
        verify_incoming: r.verify_incoming,
        tls13_only: r.tls13_only,
        cipher_suites: r.cipher_suites,
    }))
}

/// `tls.internal_rpc` over `tls.defaults`; `None` when it asks for nothing (plaintext RPC).
/// Besides Consul's checks, a server that dials its peers over TLS must have a certificate
/// to answer them with (else every peer's dial fails and the cluster cannot form).
fn rpc_tls(
    t: &crate::user::TlsUser,
    server: bool,
    datacenter: &str,
    domain: &str,
) -> Result<Option<RpcTls>, ValueError> {
    let d = t.defaults.clone().unwrap_or_default();
    let r = resolve("internal_rpc", &d, t.internal_rpc.clone())?;
    let verify_outgoing = r.verify_outgoing || r.verify_server_hostname;
    if verify_outgoing && r.ca_file.is_none() && r.ca_path.is_none() {
        return Err(ValueError::Invalid {
            key: "tls.internal_rpc.verify_outgoing".into(),
            value: "true".into(),
            why: "VerifyOutgoing set but no CA certificates were provided".into(),
        });
    }
    if server && verify_outgoing && r.cert.is_none() {
        return Err(ValueError::Invalid {
            key: "tls.internal_rpc.verify_outgoing".into(),
            value: "true".into(),
            why: "a server that dials its peers over TLS needs cert_file and key_file to answer them with".into(),
        });
    }
    if r.cert.is_none() && !verify_outgoing {
        return Ok(None);
    }
    Ok(Some(RpcTls {
        cert_file: r.cert.map(Into::into),
        key_file: r.key.map(Into::into),
        ca_file: r.ca_file.map(Into::into),
        ca_path: r.ca_path.map(Into::into),
        verify_incoming: r.verify_incoming,
        verify_outgoing,
        verify_server_hostname: r.verify_server_hostname,
        tls13_only: r.tls13_only,
        cipher_suites: r.cipher_suites,
        server_name: format!("server.{datacenter}.{}", domain.trim_end_matches('.')),
        domain: domain.trim_end_matches('.').to_string(),
    }))
}

/// `acl { … }` with Consul's defaults (`default_policy = "allow"`, `down_policy =
/// "extend-cache"`, `token_ttl = "30s"`) and its checks of the two policies.
fn acl_config(a: crate::user::AclUser) -> Result<proconsul_types::AclConfig, ValueError> {
    let dflt = proconsul_types::AclConfig::default();
    // An empty string is unset, as Consul's `stringValWithDefault` reads it.
    let default_policy = non_empty(a.default_policy).unwrap_or_else(|| "allow".into());
    if default_policy != "allow" && default_policy != "deny" {
        return Err(ValueError::Invalid {
            key: "acl.default_policy".into(),
            value: default_policy,
            why: "must be either 'allow' or 'deny'".into(),
        });
    }
    let down_policy = non_empty(a.down_policy).unwrap_or(dflt.down_policy);
    if !["allow", "deny", "extend-cache", "async-cache"].contains(&down_policy.as_str()) {
        return Err(ValueError::Invalid {
            key: "acl.down_policy".into(),
            value: down_policy,
            why: "must be one of 'allow', 'deny', 'extend-cache' or 'async-cache'".into(),
        });
    }
    let t = a.tokens.unwrap_or_default();
    let pick = |new: Option<String>, old: Option<String>| new.or(old).unwrap_or_default();
    Ok(proconsul_types::AclConfig {
        enabled: a.enabled.unwrap_or(false),
        enable_token_replication: a.enable_token_replication.unwrap_or(false),
        default_allow: default_policy == "allow",
        down_policy,
        enable_key_list_policy: a.enable_key_list_policy.unwrap_or(false),
        enable_token_persistence: a.enable_token_persistence.unwrap_or(false),
        token_ttl: dur_or(
            "acl.token_ttl",
            a.token_ttl.as_deref().filter(|s| !s.is_empty()),
            dflt.token_ttl,
        )?,
        policy_ttl: dur_or(
            "acl.policy_ttl",
            a.policy_ttl.as_deref().filter(|s| !s.is_empty()),
            dflt.policy_ttl,
        )?,
        role_ttl: dur_or(
            "acl.role_ttl",
            a.role_ttl.as_deref().filter(|s| !s.is_empty()),
            dflt.role_ttl,
        )?,
        tokens: proconsul_types::AclAgentTokens {
            initial_management: pick(t.initial_management, t.master),
            agent: t.agent.unwrap_or_default(),
            agent_recovery: pick(t.agent_recovery, t.agent_master),
            default: t.default.unwrap_or_default(),
            replication: t.replication.unwrap_or_default(),
            dns: t.dns.unwrap_or_default(),
            config_file_service_registration: t
                .config_file_service_registration
                .unwrap_or_default(),
        },
        primary_datacenter: String::new(),
    })
}

/// `limits.request_limits`: mode `disabled` (default), `permissive` or `enforcing`; a rate
/// that is absent or negative is no limit.
fn request_limits(
    r: crate::user::RequestLimitsUser,
) -> Result<proconsul_types::RequestLimits, ValueError> {
    use proconsul_types::RequestLimitMode;
    let mode = match r.mode.as_deref().map(str::trim).unwrap_or("") {
        "" | "disabled" => RequestLimitMode::Disabled,
        "permissive" => RequestLimitMode::Permissive,
        "enforcing" => RequestLimitMode::Enforcing,
        other => {
            return Err(ValueError::Invalid {
                key: "limits.request_limits.mode".into(),
                value: other.into(),
                why: "must be one of 'disabled', 'permissive' or 'enforcing'".into(),
            })
        }
    };
    let rate = |r: Option<f64>| r.filter(|r| *r >= 0.0).unwrap_or(f64::INFINITY);
    Ok(proconsul_types::RequestLimits {
        mode,
        read_rate: rate(r.read_rate),
        write_rate: rate(r.write_rate),
    })
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// `performance.raft_multiplier` when not set. Consul defaults to 5 (for slow shared hosts) and
/// recommends 1 for production; proconsul defaults to 1: leader failure is detected and a new
/// leader elected in about 1–4 s instead of 5–20 s. Set 5 to get Consul's timing.
pub const DEFAULT_RAFT_MULTIPLIER: u32 = 1;

/// Defaults + merged layers → validated runtime config. Errors use Consul's wording.
pub(crate) fn build(layer: Layer, opts: BuildOpts<'_>) -> Result<RuntimeConfig, InvalidConfig> {
    let Layer {
        user: u,
        services,
        checks,
        watches,
        warnings,
    } = layer;
    let mut warnings = warnings;
    let dev = opts.dev;

    let node_name = non_empty(u.node_name)
        .or_else(|| opts.host.hostname())
        .unwrap_or_else(|| "proconsul".to_string());
    if node_name.is_empty() {
        return Err(ValueError::Empty("node_name".into()).into());
    }
    let node_id = non_empty(u.node_id)
        .map(|s| values::node_id(&s))
        .transpose()?;

    let datacenter = u
        .datacenter
        .unwrap_or_else(|| "dc1".into())
        .trim()
        .to_lowercase();
    values::basic_name("datacenter", &datacenter)?;
    let primary_datacenter = non_empty(u.primary_datacenter)
        .map(|s| s.to_lowercase())
        .unwrap_or_else(|| datacenter.clone());
    values::basic_name("primary_datacenter", &primary_datacenter)?;
    let domain = values::fqdn(&non_empty(u.domain).unwrap_or_else(|| "consul".into()));
    let alt_domain = non_empty(u.alt_domain).map(|d| values::fqdn(&d));

    let data_dir = u.data_dir.filter(|p| !p.as_os_str().is_empty());
    match &data_dir {
        None if !dev && opts.require_data_dir => {
            return Err(ValueError::Empty("data_dir".into()).into())
        }
        Some(d) if d.exists() && !d.is_dir() => {
            return Err(InvalidConfig::DataDirNotDirectory(d.display().to_string()))
        }
        _ => {}
    }

    let server = u.server.unwrap_or(false);
    let mut bootstrap = u.bootstrap.unwrap_or(false);
    let expect = u.bootstrap_expect.unwrap_or(0);
    if expect < 0 || expect > i64::from(u32::MAX) {
        return Err(ValueError::Negative {
            key: "bootstrap_expect".into(),
            value: expect,
        }
        .into());
    }
    let mut bootstrap_expect = expect as u32;
    if bootstrap_expect == 1 && !bootstrap {
        bootstrap = true;
        bootstrap_expect = 0;
        warnings.push("BootstrapExpect is set to 1; this is the same as Bootstrap mode.".into());
    } else if bootstrap_expect == 1 {
        bootstrap_expect = 0;
    }
    if bootstrap && !server {
        return Err(InvalidConfig::BootstrapNeedsServer);
    }
    if bootstrap_expect > 0 && !server {
        return Err(InvalidConfig::BootstrapExpectNeedsServer);
    }
    if bootstrap_expect > 0 && dev {
        return Err(InvalidConfig::BootstrapExpectInDev);
    }
    if bootstrap_expect > 0 && bootstrap {
        return Err(InvalidConfig::BootstrapAndExpect);
    }
    if server && !dev && bootstrap_expect == 2 {
        warnings.push(
            "bootstrap_expect = 2: A cluster with 2 servers will provide no failure tolerance."
                .into(),
        );
    } else if server && bootstrap_expect > 2 && bootstrap_expect & 1 == 0 {
        warnings.push("bootstrap_expect is even number: A cluster with an even number of servers does not achieve optimum fault tolerance.".into());
    }
    if server && bootstrap && !dev {
        warnings.push("bootstrap = true: do not enable unless necessary".into());
    }

    // Addresses.
    let bind_addr = match &u.bind_addr {
        Some(a) => values::one_ip("bind_addr", a)?,
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    let advertise_addr = match &u.advertise_addr {
        Some(a) => values::one_ip("advertise_addr", a)?,
        None if !bind_addr.is_unspecified() => bind_addr,
        None if dev => IpAddr::V4(Ipv4Addr::LOCALHOST),
        None => match opts.host.advertise_ipv4() {
            Some(ip) => IpAddr::V4(ip),
            None => {
                warnings.push(
                    "no non-loopback IPv4 address found to advertise; using 127.0.0.1 (set -advertise)"
                        .into(),
                );
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            }
        },
    };
    if advertise_addr.is_unspecified() {
        return Err(InvalidConfig::AdvertiseUnspecified);
    }
    let advertise_addr_wan = match non_empty(u.advertise_addr_wan.clone()) {
        Some(a) => values::one_ip("advertise_addr_wan", &a)?,
        None => advertise_addr,
    };
    if advertise_addr_wan.is_unspecified() {
        return Err(InvalidConfig::AdvertiseUnspecified);
    }
    let mut client_addrs = match &u.client_addr {
        Some(a) => values::ip_list("client_addr", a)?,
        None => Vec::new(),
    };
    if client_addrs.is_empty() {
        client_addrs.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }

    let p = u.ports.unwrap_or_default();
    let http_port = port_or("ports.http", p.http, 8500)?;
    let dns_port = port_or("ports.dns", p.dns, 8600)?;
    let https_port = port_or("ports.https", p.https, -1)?;
    let grpc_port = port_or("ports.grpc", p.grpc, -1)?;
    let grpc_tls_port = port_or("ports.grpc_tls", p.grpc_tls, -1)?;
    let server_port = required_port("ports.server", p.server, 8300)?;
    let serf_lan_port = required_port("ports.serf_lan", p.serf_lan, 8301)?;
    let serf_wan_port = port_or("ports.serf_wan", p.serf_wan, 8302)?;

    let a = u.addresses.unwrap_or_default();
    let listeners = |key: &str,
                     addrs: &Option<String>,
                     port: Option<u16>|
     -> Result<Vec<SocketAddr>, ValueError> {
        let Some(port) = port else {
            return Ok(Vec::new());
        };
        let ips = match addrs {
            Some(s) if !s.trim().is_empty() => values::ip_list(key, s)?,
            _ => client_addrs.clone(),
        };
        Ok(ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect())
    };
    // `addresses.http` may name unix sockets beside IPs: `"127.0.0.1 unix:///tmp/c.sock"`.
    let (http_unix, http_ips): (Vec<String>, Vec<String>) = a
        .http
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .partition(|s| s.starts_with("unix://"));
    let http_unix: Vec<PathBuf> = match http_port {
        Some(_) => http_unix
            .iter()
            .map(|u| PathBuf::from(u.trim_start_matches("unix://")))
            .collect(),
        None => Vec::new(),
    };
    let only_unix = !http_unix.is_empty() && http_ips.is_empty();
    let http_addrs = if only_unix {
        Vec::new()
    } else {
        let ips = (!http_ips.is_empty()).then(|| http_ips.join(" "));
        listeners("addresses.http", &ips, http_port)?
    };
    let https_addrs = listeners("addresses.https", &a.https, https_port)?;
    let tls = u.tls.clone().unwrap_or_default();
    warnings.extend(tls_warnings(&tls));
    let https_tls = https_tls(&tls, !https_addrs.is_empty())?;
    let rpc_tls = rpc_tls(&tls, server, &datacenter, &domain)?;
    let us = u.unix_sockets.clone().unwrap_or_default();
    let numeric = |key: &str, v: &Option<String>| -> Result<Option<u32>, ValueError> {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<u32>().map_err(|_| ValueError::Invalid {
                    key: key.into(),
                    value: s.into(),
                    why: "must be a numeric ID".into(),
                })
            })
            .transpose()
    };
    let tel = u.telemetry.clone().unwrap_or_default();
    let telemetry_prometheus_retention = dur_or(
        "telemetry.prometheus_retention_time",
        tel.prometheus_retention_time
            .as_deref()
            .filter(|s| !s.is_empty()),
        Duration::ZERO,
    )?;
    let mut telemetry_filter = Vec::new();
    for rule in tel.prefix_filter.clone().unwrap_or_default() {
        match rule.split_at_checked(1) {
            Some(("+", p)) if !p.is_empty() => telemetry_filter.push((p.to_string(), true)),
            Some(("-", p)) if !p.is_empty() => telemetry_filter.push((p.to_string(), false)),
            _ => warnings.push(format!(
                "Filter rule must begin with either '+' or '-': {rule:?}"
            )),
        }
    }
    let telemetry_filter_default = tel.filter_default.unwrap_or(true);
    let sink_addr = |key: &str, v: &Option<String>| -> Result<Option<SocketAddr>, ValueError> {
        let Some(addr) = v.as_deref().filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        use std::net::ToSocketAddrs;
        addr.to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .map(Some)
            .ok_or_else(|| ValueError::Invalid {
                key: key.into(),
                value: addr.into(),
                why: "must be a reachable host:port".into(),
            })
    };
    let telemetry_statsd = sink_addr("telemetry.statsd_address", &tel.statsd_address)?;
    let telemetry_dogstatsd = sink_addr("telemetry.dogstatsd_addr", &tel.dogstatsd_addr)?;
    let telemetry_dogstatsd_tags = tel.dogstatsd_tags.clone().unwrap_or_default();
    let telemetry_statsite = sink_addr("telemetry.statsite_address", &tel.statsite_address)?;
    let telemetry_host_metrics = tel.enable_host_metrics.unwrap_or(false);
    let telemetry_prefix = tel
        .metrics_prefix
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "consul".to_string());
    let mut acl = acl_config(u.acl.clone().unwrap_or_default())?;
    if primary_datacenter != datacenter {
        acl.primary_datacenter = primary_datacenter.clone();
    }
    let unix_socket_user = numeric("unix_sockets.user", &us.user)?;
    let unix_socket_group = numeric("unix_sockets.group", &us.group)?;
    let unix_socket_mode = us
        .mode
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            u32::from_str_radix(s, 8).map_err(|_| ValueError::Invalid {
                key: "unix_sockets.mode".into(),
                value: s.into(),
                why: "must be an octal mode such as 0700".into(),
            })
        })
        .transpose()?;
    let dns_addrs = listeners("addresses.dns", &a.dns, dns_port)?;
    for h in &http_addrs {
        if dns_addrs.iter().any(|d| d == h) {
            return Err(InvalidConfig::HttpAddressIsDns(*h));
        }
    }
    // Watches query this agent's own HTTP API (Consul's rule).
    if !watches.is_empty() && http_addrs.is_empty() {
        return Err(InvalidConfig::WatchesNeedHttp);
    }
    if watches.len() > crate::watch::MAX_WATCHES {
        return Err(InvalidConfig::TooManyWatches {
            max: crate::watch::MAX_WATCHES,
            got: watches.len(),
        });
    }

    let log_level = values::log_level(u.log_level.as_deref().unwrap_or("INFO"))?;
    let log_file = match non_empty(u.log_file.clone()) {
        None => None,
        Some(path) => {
            let (dir, name) = match path.rfind('/') {
                Some(i) => (&path[..i + 1], &path[i + 1..]),
                None => ("", path.as_str()),
            };
            let name = if name.is_empty() { "consul.log" } else { name };
            let rotate_duration = match values::duration(
                "log_rotate_duration",
                u.log_rotate_duration.as_deref().filter(|s| !s.is_empty()),
            )? {
                Some(d) if !d.is_zero() => d,
                _ => Duration::from_secs(24 * 3600),
            };
            let rotate_bytes = u.log_rotate_bytes.unwrap_or(0);
            if rotate_bytes < 0 {
                return Err(ValueError::Invalid {
                    key: "log_rotate_bytes".into(),
                    value: rotate_bytes.to_string(),
                    why: "must not be negative".into(),
                }
                .into());
            }
            Some(LogFileConfig {
                dir: if dir.is_empty() {
                    ".".into()
                } else {
                    dir.into()
                },
                name: name.to_string(),
                rotate_bytes: rotate_bytes as u64,
                rotate_duration,
                max_files: u.log_rotate_max_files.unwrap_or(0),
            })
        }
    };

    let retry_interval = dur_or(
        "retry_interval",
        u.retry_interval.as_deref(),
        Duration::from_secs(30),
    )?;
    let retry_max = u.retry_max.unwrap_or(0);
    if retry_max < 0 || retry_max > i64::from(u32::MAX) {
        return Err(ValueError::Negative {
            key: "retry_max".into(),
            value: retry_max,
        }
        .into());
    }

    let retry_interval_wan = dur_or(
        "retry_interval_wan",
        u.retry_interval_wan.as_deref(),
        Duration::from_secs(30),
    )?;
    let retry_max_wan = u.retry_max_wan.unwrap_or(0);
    if retry_max_wan < 0 || retry_max_wan > i64::from(u32::MAX) {
        return Err(ValueError::Negative {
            key: "retry_max_wan".into(),
            value: retry_max_wan,
        }
        .into());
    }
    let mut retry_join_wan = u.start_join_wan.clone().unwrap_or_default();
    retry_join_wan.extend(u.retry_join_wan.clone().unwrap_or_default());

    let reconnect_timeout = dur_or(
        "reconnect_timeout",
        u.reconnect_timeout.as_deref(),
        Duration::from_secs(72 * 3600),
    )?;
    if reconnect_timeout < Duration::from_secs(8 * 60) {
        return Err(InvalidConfig::ReconnectTimeout);
    }
    let encrypt_key = non_empty(u.encrypt);
    if let Some(k) = &encrypt_key {
        values::encrypt_key(k)?;
    }
    let raft_multiplier = values::raft_multiplier(
        u.performance
            .and_then(|p| p.raft_multiplier)
            .unwrap_or(i64::from(DEFAULT_RAFT_MULTIPLIER)),
    )?;

    let enable_script_checks = u.enable_script_checks.unwrap_or(false);
    let enable_local_script_checks = u.enable_local_script_checks.unwrap_or(false);
    let scripts = services
        .iter()
        .flat_map(|s| s.checks.iter())
        .chain(checks.iter())
        .any(|c| !c.args.is_empty() || !c.script_args.is_empty());
    if scripts && !enable_script_checks && !enable_local_script_checks {
        return Err(InvalidConfig::ScriptsDisabled);
    }

    let limits = u.limits.unwrap_or_default();
    let request_limits = request_limits(limits.request_limits.clone().unwrap_or_default())?;
    // Consul reads a negative or absent rate as no limit.
    let rpc_rate = limits
        .rpc_rate
        .filter(|r| *r >= 0.0)
        .unwrap_or(f64::INFINITY);
    let rpc_max_burst = count_or("limits.rpc_max_burst", limits.rpc_max_burst, 1000)?;
    let http_max_conns = count_or(
        "limits.http_max_conns_per_client",
        limits.http_max_conns_per_client,
        200,
    )?;
    let rpc_max_conns = count_or(
        "limits.rpc_max_conns_per_client",
        limits.rpc_max_conns_per_client,
        100,
    )?;
    let rpc_handshake_timeout = Some(dur_or(
        "limits.rpc_handshake_timeout",
        limits.rpc_handshake_timeout.as_deref(),
        Duration::from_secs(5),
    )?)
    .filter(|t| !t.is_zero());

    let d = u.dns_config.unwrap_or_default();
    let dflt = DnsConfig::default();
    let mut service_ttl = BTreeMap::new();
    for (svc, ttl) in d.service_ttl.unwrap_or_default() {
        let key = format!("dns_config.service_ttl.{svc}");
        service_ttl.insert(svc, dur_or(&key, Some(&ttl), Duration::ZERO)?);
    }
    let limit = |key: &str, v: Option<i64>, default: u32| -> Result<u32, ValueError> {
        match v {
            None => Ok(default),
            Some(n) if (0..=i64::from(u32::MAX)).contains(&n) => Ok(n as u32),
            Some(n) => Err(ValueError::Negative {
                key: format!("dns_config.{key}"),
                value: n,
            }),
        }
    };
    let recursors = u.recursors.unwrap_or_default();
    for r in &recursors {
        values::recursor(r)?;
    }
    let soa = d.soa.unwrap_or_default();
    let dns = DnsConfig {
        allow_stale: d.allow_stale.unwrap_or(dflt.allow_stale),
        max_stale: dur_or(
            "dns_config.max_stale",
            d.max_stale.as_deref(),
            dflt.max_stale,
        )?,
        node_ttl: dur_or("dns_config.node_ttl", d.node_ttl.as_deref(), dflt.node_ttl)?,
        service_ttl,
        only_passing: d.only_passing.unwrap_or(false),
        udp_answer_limit: limit(
            "udp_answer_limit",
            d.udp_answer_limit,
            dflt.udp_answer_limit,
        )?,
        a_record_limit: limit("a_record_limit", d.a_record_limit, dflt.a_record_limit)?,
        enable_truncate: d.enable_truncate.unwrap_or(true),
        recursors,
        recursor_timeout: dur_or(
            "dns_config.recursor_timeout",
            d.recursor_timeout.as_deref(),
            dflt.recursor_timeout,
        )?,
        soa: SoaConfig {
            expire: soa.expire.unwrap_or(dflt.soa.expire),
            min_ttl: soa.min_ttl.unwrap_or(dflt.soa.min_ttl),
            refresh: soa.refresh.unwrap_or(dflt.soa.refresh),
            retry: soa.retry.unwrap_or(dflt.soa.retry),
        },
    };

    let ui_user = u.ui_config.unwrap_or_default();
    let ui = ui_user.enabled.unwrap_or(false);
    let ui_content_path = values::ui_content_path(ui_user.content_path.as_deref())?;

    Ok(RuntimeConfig {
        node_name,
        node_id,
        datacenter,
        primary_datacenter,
        domain,
        alt_domain,
        data_dir,
        dev_mode: dev,
        server,
        bootstrap,
        bootstrap_expect,
        bind_addr,
        advertise_addr,
        advertise_addr_wan,
        client_addrs,
        http_addrs,
        http_unix,
        unix_socket_user,
        unix_socket_group,
        unix_socket_mode,
        telemetry_prometheus_retention,
        telemetry_prefix,
        telemetry_filter,
        telemetry_filter_default,
        telemetry_statsd,
        telemetry_dogstatsd,
        telemetry_dogstatsd_tags,
        telemetry_statsite,
        telemetry_host_metrics,
        acl,
        https_addrs,
        https_tls,
        rpc_tls,
        enable_agent_tls_for_checks: u.enable_agent_tls_for_checks.unwrap_or(false),
        dns_addrs,
        server_port,
        serf_lan_port,
        serf_wan_port,
        grpc_port,
        https_port,
        grpc_tls_port,
        log_level,
        log_json: u.log_json.unwrap_or(false),
        log_file,
        node_meta: u.node_meta.unwrap_or_default(),
        rejoin_after_leave: u.rejoin_after_leave.unwrap_or(false),
        retry_join: u.retry_join.unwrap_or_default(),
        retry_interval,
        retry_max: retry_max as u32,
        start_join: u.start_join.unwrap_or_default(),
        retry_join_wan,
        retry_interval_wan,
        retry_max_wan: retry_max_wan as u32,
        encrypt_key,
        encrypt_verify_incoming: u.encrypt_verify_incoming.unwrap_or(true),
        encrypt_verify_outgoing: u.encrypt_verify_outgoing.unwrap_or(true),
        reconnect_timeout,
        raft_multiplier,
        translate_wan_addrs: u.translate_wan_addrs.unwrap_or(false),
        // Consul applies these only when set and not 0.
        raft_snapshot_threshold: u
            .raft_snapshot_threshold
            .filter(|n| *n > 0)
            .map_or(16_384, |n| n as u64),
        raft_trailing_logs: u
            .raft_trailing_logs
            .filter(|n| *n > 0)
            .map_or(10_240, |n| n as u64),
        enable_script_checks,
        enable_local_script_checks,
        services,
        checks,
        watches,
        check_update_interval: dur_or(
            "check_update_interval",
            u.check_update_interval.as_deref(),
            Duration::from_secs(300),
        )?,
        session_ttl_min: dur_or(
            "session_ttl_min",
            u.session_ttl_min.as_deref(),
            Duration::from_secs(10),
        )?,
        kv_max_value_size: limits.kv_max_value_size.unwrap_or(512 * 1024),
        txn_max_req_len: limits.txn_max_req_len.unwrap_or(512 * 1024),
        http_max_conns_per_client: http_max_conns,
        rpc_max_conns_per_client: rpc_max_conns,
        rpc_handshake_timeout,
        request_limits,
        rpc_rate,
        rpc_max_burst,
        dns,
        leave_on_terminate: u.leave_on_terminate.unwrap_or(!server),
        skip_leave_on_interrupt: u.skip_leave_on_interrupt.unwrap_or(server),
        disable_remote_exec: u.disable_remote_exec.unwrap_or(true),
        disable_host_node_id: u.disable_host_node_id.unwrap_or(true),
        disable_coordinates: u.disable_coordinates.unwrap_or(false),
        sync_coordinate_interval_min: dur_or(
            "sync_coordinate_interval_min",
            u.sync_coordinate_interval_min.as_deref(),
            Duration::from_secs(15),
        )?,
        sync_coordinate_rate_target: u.sync_coordinate_rate_target.unwrap_or(64.0),
        coordinate_update_period: dur_or(
            "consul.coordinate.update_period",
            u.consul
                .as_ref()
                .and_then(|c| c.coordinate.as_ref())
                .and_then(|c| c.update_period.as_deref()),
            Duration::from_secs(5),
        )?,
        coordinate_update_batch_size: u
            .consul
            .as_ref()
            .and_then(|c| c.coordinate.as_ref())
            .and_then(|c| c.update_batch_size)
            .unwrap_or(128) as usize,
        coordinate_update_max_batches: u
            .consul
            .as_ref()
            .and_then(|c| c.coordinate.as_ref())
            .and_then(|c| c.update_max_batches)
            .unwrap_or(5) as usize,
        enable_debug: u.enable_debug.unwrap_or(false),
        ui,
        ui_content_path,
        config_files: opts.config_files,
        pid_file: u.pid_file.filter(|p| !p.as_os_str().is_empty()),
        warnings,
    })
}
