//! The user layer: what one config file (or the flags) says, before defaults are applied.
//!
//! Every field is an `Option` so "not set" differs from "set to the default", and every struct
//! denies unknown fields so a typo is an error naming the key instead of a silently ignored line.
//! Layers merge in order (defaults → dev → files → flags): a later scalar replaces an earlier
//! one, lists append, maps merge. Nothing here applies defaults or cross-field rules; that is
//! [`crate::runtime`]'s job, so a reload can rebuild everything from the layers.

use proconsul_types::{CheckDefinition, ServiceDefinition};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::definitions;
use crate::error::{ConfigError, ParseError, ValueError};

/// Top-level keys of a Consul config file that proconsul understands (Consul's snake_case names).
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserConfig {
    pub node_name: Option<String>,
    pub node_id: Option<String>,
    pub datacenter: Option<String>,
    pub primary_datacenter: Option<String>,
    pub domain: Option<String>,
    pub alt_domain: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub server: Option<bool>,
    pub bootstrap: Option<bool>,
    pub bootstrap_expect: Option<i64>,
    pub bind_addr: Option<String>,
    pub advertise_addr: Option<String>,
    /// The address other datacenters reach this server at (WAN gossip and RPC).
    pub advertise_addr_wan: Option<String>,
    pub client_addr: Option<String>,
    pub ports: Option<Ports>,
    pub addresses: Option<Addresses>,
    pub log_level: Option<String>,
    pub log_json: Option<bool>,
    pub log_file: Option<String>,
    pub log_rotate_bytes: Option<i64>,
    pub log_rotate_duration: Option<String>,
    pub log_rotate_max_files: Option<i64>,
    pub node_meta: Option<BTreeMap<String, String>>,
    pub rejoin_after_leave: Option<bool>,
    pub retry_join: Option<Vec<String>>,
    pub retry_interval: Option<String>,
    pub retry_max: Option<i64>,
    pub start_join: Option<Vec<String>>,
    pub retry_join_wan: Option<Vec<String>>,
    pub start_join_wan: Option<Vec<String>>,
    pub retry_interval_wan: Option<String>,
    pub retry_max_wan: Option<i64>,
    pub encrypt: Option<String>,
    pub encrypt_verify_incoming: Option<bool>,
    pub encrypt_verify_outgoing: Option<bool>,
    pub reconnect_timeout: Option<String>,
    pub performance: Option<Performance>,
    pub enable_script_checks: Option<bool>,
    pub enable_local_script_checks: Option<bool>,
    pub session_ttl_min: Option<String>,
    pub check_update_interval: Option<String>,
    pub limits: Option<Limits>,
    pub dns_config: Option<DnsUser>,
    pub recursors: Option<Vec<String>>,
    pub leave_on_terminate: Option<bool>,
    pub skip_leave_on_interrupt: Option<bool>,
    pub disable_remote_exec: Option<bool>,
    pub pid_file: Option<PathBuf>,
    pub enable_debug: Option<bool>,
    pub disable_host_node_id: Option<bool>,
    pub disable_coordinates: Option<bool>,
    /// Consul's (undocumented) pacing of coordinate updates: each agent sends one every
    /// `max(sync_coordinate_interval_min, members / sync_coordinate_rate_target s)`.
    pub sync_coordinate_interval_min: Option<String>,
    pub sync_coordinate_rate_target: Option<f64>,
    /// `consul { coordinate { ... } }`: Consul's internal server tuning, honoured for tests.
    pub consul: Option<ConsulInternal>,
    /// Ownership and mode of unix-socket listeners (`addresses.http = "unix://…"`).
    pub unix_sockets: Option<UnixSockets>,
    /// `telemetry { … }`: the keys proconsul gives effect to (the rest warn, `consul_keys`).
    pub telemetry: Option<TelemetryUser>,
    /// `acl { … }` (the legacy top-level `acl_*` keys are lifted into it first).
    pub acl: Option<AclUser>,
    /// HTTP and gRPC checks present the agent's `tls.internal_rpc` certificate and trust its CA.
    pub enable_agent_tls_for_checks: Option<bool>,
    /// `tls { defaults, https, internal_rpc, grpc }` (legacy top-level keys lifted into it).
    pub tls: Option<TlsUser>,
    /// `ui_config { enabled, content_path }` (the legacy `ui`, `ui_content_path` and `ui_dir`
    /// keys are lifted into it first; its other keys warn that they have no effect).
    pub ui_config: Option<UiUser>,
    // Accepted, and in effect already: proconsul never checks for updates or reports usage,
    // and speaks one Raft protocol.
    pub disable_update_check: Option<bool>,
    pub disable_anonymous_signature: Option<bool>,
    pub raft_protocol: Option<i64>,
    /// Answer with other datacenters' WAN addresses (Consul's `translate_wan_addrs`).
    pub translate_wan_addrs: Option<bool>,
    /// Snapshot the state once this many log entries were applied since the last one
    /// (Consul's default 16384; 0 means the default, as in Consul).
    pub raft_snapshot_threshold: Option<i64>,
    /// Log entries kept behind a snapshot, for followers that lag (Consul's default 10240; 0
    /// means the default).
    pub raft_trailing_logs: Option<i64>,
}

/// `ports { ... }`: -1 disables a listener.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Ports {
    pub http: Option<i64>,
    pub https: Option<i64>,
    pub dns: Option<i64>,
    pub grpc: Option<i64>,
    pub grpc_tls: Option<i64>,
    pub serf_lan: Option<i64>,
    pub serf_wan: Option<i64>,
    pub server: Option<i64>,
}

/// `addresses { ... }`: per-listener bind addresses overriding `client_addr`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Addresses {
    pub http: Option<String>,
    pub https: Option<String>,
    pub dns: Option<String>,
    pub grpc: Option<String>,
}

/// `unix_sockets { user, group, mode }`: numeric IDs and an octal mode, as Consul takes them.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UnixSockets {
    pub user: Option<String>,
    pub group: Option<String>,
    pub mode: Option<String>,
}

/// `telemetry { … }` keys in effect.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TelemetryUser {
    pub prometheus_retention_time: Option<String>,
    pub metrics_prefix: Option<String>,
    /// proconsul never prefixes gauges with the host name: accepted, in effect already.
    pub disable_hostname: Option<bool>,
    /// `["+consul.raft.apply", "-consul.http"]`: keep or drop metrics by name prefix.
    pub prefix_filter: Option<Vec<String>>,
    /// Keep metrics no `prefix_filter` rule names (default true).
    pub filter_default: Option<bool>,
    /// `host:port` of a statsd server (UDP).
    pub statsd_address: Option<String>,
    /// `host:port` of a DogStatsD agent (UDP), and the tags added to every metric.
    pub dogstatsd_addr: Option<String>,
    pub dogstatsd_tags: Option<Vec<String>>,
    /// `host:port` of a statsite server (TCP).
    pub statsite_address: Option<String>,
    /// Also send the host's memory, CPU, data-dir disk and uptime figures.
    pub enable_host_metrics: Option<bool>,
}

/// `acl { … }`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AclUser {
    pub enabled: Option<bool>,
    pub default_policy: Option<String>,
    pub down_policy: Option<String>,
    pub enable_key_list_policy: Option<bool>,
    pub enable_token_persistence: Option<bool>,
    pub enable_token_replication: Option<bool>,
    pub token_ttl: Option<String>,
    pub policy_ttl: Option<String>,
    pub role_ttl: Option<String>,
    pub tokens: Option<AclTokensUser>,
}

/// `tls { … }`: one section per listener kind, each overriding `defaults`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsUser {
    pub defaults: Option<TlsSection>,
    pub https: Option<TlsSection>,
    pub internal_rpc: Option<TlsSection>,
    pub grpc: Option<TlsSection>,
}

/// One `tls` section. The settings this build does not enforce yet are refused when they
/// ask for protection (`consul_keys::UNMET`).
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsSection {
    pub ca_file: Option<String>,
    pub ca_path: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub tls_min_version: Option<String>,
    pub tls_cipher_suites: Option<String>,
    pub verify_incoming: Option<bool>,
    pub verify_outgoing: Option<bool>,
    pub verify_server_hostname: Option<bool>,
    pub use_auto_cert: Option<bool>,
}

/// `ui_config { … }` keys in effect.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UiUser {
    pub enabled: Option<bool>,
    pub content_path: Option<String>,
}

/// `acl { tokens { … } }`, with the deprecated names Consul still reads.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AclTokensUser {
    pub initial_management: Option<String>,
    pub master: Option<String>,
    pub agent: Option<String>,
    pub agent_recovery: Option<String>,
    pub agent_master: Option<String>,
    pub default: Option<String>,
    pub replication: Option<String>,
    pub dns: Option<String>,
    pub config_file_service_registration: Option<String>,
}

/// `consul { ... }`: Consul-internal settings; only `coordinate` is modelled.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsulInternal {
    pub coordinate: Option<ConsulCoordinate>,
}

/// `consul { coordinate { ... } }`
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsulCoordinate {
    pub update_period: Option<String>,
    pub update_batch_size: Option<i64>,
    pub update_max_batches: Option<i64>,
}

/// `performance { ... }`
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Performance {
    pub raft_multiplier: Option<i64>,
}

/// `limits { ... }`
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Limits {
    pub kv_max_value_size: Option<u64>,
    pub txn_max_req_len: Option<u64>,
    pub http_max_conns_per_client: Option<i64>,
    /// Connections one client IP may hold open to a server's RPC port.
    pub rpc_max_conns_per_client: Option<i64>,
    /// How long a new RPC connection has to send its first byte and finish TLS.
    pub rpc_handshake_timeout: Option<String>,
    /// RPCs per second a client agent sends its servers, and the burst above it.
    pub rpc_rate: Option<f64>,
    pub rpc_max_burst: Option<i64>,
    pub request_limits: Option<RequestLimitsUser>,
}

/// `limits { request_limits { … } }`: a server's global rate limit.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestLimitsUser {
    pub mode: Option<String>,
    pub read_rate: Option<f64>,
    pub write_rate: Option<f64>,
}

/// `dns_config { ... }`
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DnsUser {
    pub allow_stale: Option<bool>,
    pub max_stale: Option<String>,
    pub node_ttl: Option<String>,
    pub service_ttl: Option<BTreeMap<String, String>>,
    pub only_passing: Option<bool>,
    pub udp_answer_limit: Option<i64>,
    pub a_record_limit: Option<i64>,
    pub enable_truncate: Option<bool>,
    pub recursor_timeout: Option<String>,
    pub soa: Option<SoaUser>,
    // Accepted and ignored.
    pub disable_compression: Option<bool>,
    pub enable_additional_node_meta_txt: Option<bool>,
}

/// `dns_config { soa { ... } }`
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SoaUser {
    pub expire: Option<u32>,
    pub min_ttl: Option<u32>,
    pub refresh: Option<u32>,
    pub retry: Option<u32>,
}

/// One source of configuration: a file, the dev defaults or the flags.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Layer {
    pub user: UserConfig,
    pub services: Vec<ServiceDefinition>,
    pub checks: Vec<CheckDefinition>,
    pub watches: Vec<crate::watch::WatchDefinition>,
    /// Said once at start-up: deprecated keys, Consul keys that have no effect here.
    pub warnings: Vec<String>,
}

/// Later layers win: scalars are replaced, lists append, maps merge, sections merge key by key.
pub(crate) trait Merge {
    fn merge(&mut self, later: Self);
}

macro_rules! replace {
    ($dst:ident, $src:ident; $($f:ident),* $(,)?) => {
        $( if $src.$f.is_some() { $dst.$f = $src.$f; } )*
    };
}

fn append<T>(dst: &mut Option<Vec<T>>, src: Option<Vec<T>>) {
    if let Some(items) = src {
        dst.get_or_insert_with(Vec::new).extend(items);
    }
}

fn extend<K: Ord, V>(dst: &mut Option<BTreeMap<K, V>>, src: Option<BTreeMap<K, V>>) {
    if let Some(items) = src {
        dst.get_or_insert_with(BTreeMap::new).extend(items);
    }
}

fn section<T: Merge + Default>(dst: &mut Option<T>, src: Option<T>) {
    if let Some(s) = src {
        dst.get_or_insert_with(T::default).merge(s);
    }
}

impl Merge for UserConfig {
    fn merge(&mut self, o: Self) {
        replace!(self, o; node_name, node_id, datacenter, primary_datacenter, domain, alt_domain,
            data_dir, server, bootstrap, bootstrap_expect, bind_addr, advertise_addr, advertise_addr_wan, client_addr,
            log_level, log_json, log_file, log_rotate_bytes, log_rotate_duration,
            log_rotate_max_files, retry_interval_wan, retry_max_wan, rejoin_after_leave, retry_interval, retry_max, encrypt,
            encrypt_verify_incoming, encrypt_verify_outgoing, reconnect_timeout,
            enable_script_checks, enable_local_script_checks, session_ttl_min, check_update_interval,
            leave_on_terminate,
            skip_leave_on_interrupt, disable_remote_exec, pid_file, enable_debug,
            disable_host_node_id, disable_coordinates, sync_coordinate_interval_min,
            sync_coordinate_rate_target, disable_update_check, disable_anonymous_signature,
            raft_protocol, translate_wan_addrs, raft_snapshot_threshold, raft_trailing_logs,
            enable_agent_tls_for_checks);
        append(&mut self.retry_join, o.retry_join);
        append(&mut self.start_join, o.start_join);
        append(&mut self.retry_join_wan, o.retry_join_wan);
        append(&mut self.start_join_wan, o.start_join_wan);
        append(&mut self.recursors, o.recursors);
        extend(&mut self.node_meta, o.node_meta);
        section(&mut self.ports, o.ports);
        section(&mut self.addresses, o.addresses);
        section(&mut self.performance, o.performance);
        section(&mut self.consul, o.consul);
        section(&mut self.unix_sockets, o.unix_sockets);
        section(&mut self.telemetry, o.telemetry);
        section(&mut self.acl, o.acl);
        section(&mut self.tls, o.tls);
        section(&mut self.ui_config, o.ui_config);
        section(&mut self.limits, o.limits);
        section(&mut self.dns_config, o.dns_config);
    }
}

impl Merge for UiUser {
    fn merge(&mut self, o: Self) {
        replace!(self, o; enabled, content_path);
    }
}

impl Merge for Ports {
    fn merge(&mut self, o: Self) {
        replace!(self, o; http, https, dns, grpc, grpc_tls, serf_lan, serf_wan, server);
    }
}

impl Merge for Addresses {
    fn merge(&mut self, o: Self) {
        replace!(self, o; http, https, dns, grpc);
    }
}

impl Merge for TelemetryUser {
    fn merge(&mut self, o: Self) {
        replace!(self, o; prometheus_retention_time, metrics_prefix, disable_hostname,
            prefix_filter, filter_default, statsd_address, dogstatsd_addr, dogstatsd_tags,
            statsite_address, enable_host_metrics);
    }
}

impl Merge for AclUser {
    fn merge(&mut self, o: Self) {
        replace!(self, o; enabled, default_policy, down_policy, enable_key_list_policy,
            enable_token_persistence, enable_token_replication, token_ttl, policy_ttl, role_ttl);
        section(&mut self.tokens, o.tokens);
    }
}

impl Merge for TlsUser {
    fn merge(&mut self, o: Self) {
        section(&mut self.defaults, o.defaults);
        section(&mut self.https, o.https);
        section(&mut self.internal_rpc, o.internal_rpc);
        section(&mut self.grpc, o.grpc);
    }
}

impl Merge for TlsSection {
    fn merge(&mut self, o: Self) {
        replace!(self, o; ca_file, ca_path, cert_file, key_file, tls_min_version,
            tls_cipher_suites, verify_incoming, verify_outgoing, verify_server_hostname,
            use_auto_cert);
    }
}

impl Merge for AclTokensUser {
    fn merge(&mut self, o: Self) {
        replace!(self, o; initial_management, master, agent, agent_recovery, agent_master,
            default, replication, dns, config_file_service_registration);
    }
}

impl Merge for UnixSockets {
    fn merge(&mut self, o: Self) {
        replace!(self, o; user, group, mode);
    }
}

impl Merge for ConsulInternal {
    fn merge(&mut self, o: Self) {
        section(&mut self.coordinate, o.coordinate);
    }
}

impl Merge for ConsulCoordinate {
    fn merge(&mut self, o: Self) {
        replace!(self, o; update_period, update_batch_size, update_max_batches);
    }
}

impl Merge for Performance {
    fn merge(&mut self, o: Self) {
        replace!(self, o; raft_multiplier);
    }
}

impl Merge for Limits {
    fn merge(&mut self, o: Self) {
        replace!(self, o; kv_max_value_size, txn_max_req_len, http_max_conns_per_client,
            rpc_max_conns_per_client, rpc_handshake_timeout, rpc_rate, rpc_max_burst,
            request_limits);
    }
}

impl Merge for DnsUser {
    fn merge(&mut self, o: Self) {
        replace!(self, o; allow_stale, max_stale, node_ttl, only_passing, udp_answer_limit,
            a_record_limit, enable_truncate, recursor_timeout, disable_compression,
            enable_additional_node_meta_txt);
        extend(&mut self.service_ttl, o.service_ttl);
        section(&mut self.soa, o.soa);
    }
}

impl Merge for SoaUser {
    fn merge(&mut self, o: Self) {
        replace!(self, o; expire, min_ttl, refresh, retry);
    }
}

impl Merge for Layer {
    fn merge(&mut self, o: Self) {
        self.user.merge(o.user);
        self.services.extend(o.services);
        self.checks.extend(o.checks);
        self.watches.extend(o.watches);
        self.warnings.extend(o.warnings);
    }
}

/// Config file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Hcl,
}

impl Format {
    /// `-config-format` value.
    pub fn from_flag(s: &str) -> Result<Format, ConfigError> {
        match s {
            "json" => Ok(Format::Json),
            "hcl" => Ok(Format::Hcl),
            other => Err(ConfigError::ConfigFormat(other.into())),
        }
    }

    /// By extension, else the `-config-format` fallback.
    pub fn of(path: &Path, fallback: Option<Format>) -> Result<Format, ConfigError> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Ok(Format::Json),
            Some("hcl") => Ok(Format::Hcl),
            _ => fallback.ok_or_else(|| ConfigError::Format {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// Read and decode one config file into a layer; every error names the file.
pub(crate) fn read_file(path: &Path, format: Format) -> Result<Layer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // Consul skips an empty file (test harnesses write one before they know what to put in it).
    if text.trim().is_empty() {
        return Ok(Layer::default());
    }
    parse_str(&text, format).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// Decode config text; the error names the key (the caller adds the file).
pub(crate) fn parse_str(text: &str, format: Format) -> Result<Layer, ParseError> {
    let value = match format {
        Format::Json => serde_json::from_str::<Value>(text).map_err(ParseError::Json)?,
        Format::Hcl => crate::hcl::parse(text)?,
    };
    let Value::Object(mut map) = value else {
        return Err(ParseError::NotObject);
    };
    let mut layer = Layer::default();
    for key in ["service", "services"] {
        if let Some(v) = map.remove(key) {
            layer.services.extend(definitions::services(v)?);
        }
    }
    for key in ["check", "checks"] {
        if let Some(v) = map.remove(key) {
            layer.checks.extend(definitions::checks(v)?);
        }
    }
    if let Some(v) = map.remove("watches") {
        layer.watches.extend(crate::watch::watches(v)?);
    }
    flatten_blocks(&mut map);
    crate::consul_keys::drop_nulls(&mut map);
    crate::consul_keys::refuse_unmet(&map)?;
    let mut lifted = crate::consul_keys::lift_legacy_acl(&mut map);
    lifted.extend(crate::consul_keys::lift_legacy_tls(&mut map));
    lifted.extend(crate::consul_keys::lift_legacy_ui(&mut map));
    let (user, warnings) = decode(map)?;
    layer.warnings.extend(lifted);
    layer.user = user;
    layer.warnings.extend(warnings);
    check_user(&layer.user)?;
    Ok(layer)
}

/// HCL1 decodes a section written as a block into a list of objects (and repeats into longer
/// lists); sections are single objects, so merge such lists back into one.
fn flatten_blocks(map: &mut Map<String, Value>) {
    for v in map.values_mut() {
        if let Value::Array(items) = v {
            if !items.is_empty() && items.iter().all(Value::is_object) {
                let mut merged = Map::new();
                for item in items.drain(..) {
                    if let Value::Object(m) = item {
                        merged.extend(m);
                    }
                }
                *v = Value::Object(merged);
            }
        }
        if let Value::Object(inner) = v {
            flatten_blocks(inner);
        }
    }
}

/// Decode the top-level map. A key the decoder does not know is taken out with a warning if it
/// is one of Consul's (see [`crate::consul_keys`]) and is an error naming its path otherwise;
/// any other failure is pinned to the top-level key at fault so the message can name it.
fn decode(mut map: Map<String, Value>) -> Result<(UserConfig, Vec<String>), ParseError> {
    let mut warnings = Vec::new();
    loop {
        let whole = match serde_json::from_value::<UserConfig>(Value::Object(map.clone())) {
            Ok(u) => {
                warnings.extend(crate::consul_keys::deprecation_warnings(&map));
                return Ok((u, warnings));
            }
            Err(e) => e,
        };
        let mut fault = None;
        for (k, v) in &map {
            let mut one = Map::new();
            one.insert(k.clone(), v.clone());
            if let Err(e) = serde_json::from_value::<UserConfig>(Value::Object(one)) {
                fault = Some((k.clone(), e));
                break;
            }
        }
        let Some((key, e)) = fault else {
            return Err(ParseError::Decode(serde_message(&whole)));
        };
        match unknown_field(&e) {
            Some(field) => warnings.push(crate::consul_keys::take_out(&mut map, &key, &field)?),
            None => {
                return Err(ParseError::Field {
                    key,
                    message: serde_message(&e),
                })
            }
        }
    }
}

/// The key named by serde's ``unknown field `x`, expected ...``.
fn unknown_field(e: &serde_json::Error) -> Option<String> {
    let rest = e.to_string();
    let rest = rest.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

/// serde's message, shortened: `unknown field `x`, expected one of ...` → `unknown field "x"`.
pub(crate) fn serde_message(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        if let Some(end) = rest.find('`') {
            return format!("unknown field \"{}\"", &rest[..end]);
        }
    }
    msg
}

/// Value checks that need no other layer, so the error can still name the file.
pub(crate) fn check_user(u: &UserConfig) -> Result<(), ValueError> {
    use crate::values::{duration, ip_list, one_ip, port};
    duration("retry_interval", u.retry_interval.as_deref())?;
    duration("session_ttl_min", u.session_ttl_min.as_deref())?;
    duration("check_update_interval", u.check_update_interval.as_deref())?;
    duration("reconnect_timeout", u.reconnect_timeout.as_deref())?;
    if let Some(l) = &u.limits {
        duration(
            "limits.rpc_handshake_timeout",
            l.rpc_handshake_timeout.as_deref(),
        )?;
    }
    duration(
        "sync_coordinate_interval_min",
        u.sync_coordinate_interval_min.as_deref(),
    )?;
    if let Some(r) = u.sync_coordinate_rate_target {
        if !(r.is_finite() && r > 0.0) {
            return Err(ValueError::NotPositive {
                key: "sync_coordinate_rate_target".into(),
                value: r,
            });
        }
    }
    if let Some(c) = u.consul.as_ref().and_then(|c| c.coordinate.as_ref()) {
        duration(
            "consul.coordinate.update_period",
            c.update_period.as_deref(),
        )?;
        for (key, v) in [
            ("consul.coordinate.update_batch_size", c.update_batch_size),
            ("consul.coordinate.update_max_batches", c.update_max_batches),
        ] {
            if let Some(v) = v {
                if !(1..=100_000).contains(&v) {
                    return Err(ValueError::Range {
                        key: key.into(),
                        min: 1,
                        max: 100_000,
                        value: v,
                    });
                }
            }
        }
    }
    if let Some(d) = &u.dns_config {
        duration("dns_config.max_stale", d.max_stale.as_deref())?;
        duration("dns_config.node_ttl", d.node_ttl.as_deref())?;
        duration("dns_config.recursor_timeout", d.recursor_timeout.as_deref())?;
        for (svc, ttl) in d.service_ttl.iter().flatten() {
            duration(&format!("dns_config.service_ttl.{svc}"), Some(ttl))?;
        }
        for (key, v) in [
            ("udp_answer_limit", d.udp_answer_limit),
            ("a_record_limit", d.a_record_limit),
        ] {
            if let Some(n) = v.filter(|n| *n < 0 || *n > i64::from(u32::MAX)) {
                return Err(ValueError::Negative {
                    key: format!("dns_config.{key}"),
                    value: n,
                });
            }
        }
    }
    if let Some(p) = &u.ports {
        for (key, v) in [
            ("http", p.http),
            ("https", p.https),
            ("dns", p.dns),
            ("grpc", p.grpc),
            ("grpc_tls", p.grpc_tls),
            ("serf_lan", p.serf_lan),
            ("serf_wan", p.serf_wan),
            ("server", p.server),
        ] {
            if let Some(v) = v {
                port(&format!("ports.{key}"), v)?;
            }
        }
    }
    if let Some(a) = &u.bind_addr {
        one_ip("bind_addr", a)?;
    }
    if let Some(a) = &u.advertise_addr {
        one_ip("advertise_addr", a)?;
    }
    if let Some(a) = &u.client_addr {
        ip_list("client_addr", a)?;
    }
    if let Some(a) = &u.addresses {
        for (key, v) in [
            ("http", &a.http),
            ("https", &a.https),
            ("dns", &a.dns),
            ("grpc", &a.grpc),
        ] {
            if let Some(v) = v {
                // The HTTP API may also listen on unix sockets (`unix:///path`).
                let ips: String = v
                    .split_whitespace()
                    .filter(|a| !(key == "http" && a.starts_with("unix://")))
                    .collect::<Vec<_>>()
                    .join(" ");
                ip_list(&format!("addresses.{key}"), &ips)?;
            }
        }
    }
    if let Some(n) = u.bootstrap_expect.filter(|n| *n < 0) {
        return Err(ValueError::Negative {
            key: "bootstrap_expect".into(),
            value: n,
        });
    }
    if let Some(n) = u.retry_max.filter(|n| *n < 0 || *n > i64::from(u32::MAX)) {
        return Err(ValueError::Negative {
            key: "retry_max".into(),
            value: n,
        });
    }
    if let Some(n) = u.performance.as_ref().and_then(|p| p.raft_multiplier) {
        crate::values::raft_multiplier(n)?;
    }
    if let Some(n) = u.raft_protocol.filter(|n| *n != 3) {
        return Err(ValueError::RaftProtocol(n));
    }
    if let Some(l) = &u.log_level {
        crate::values::log_level(l)?;
    }
    if let Some(k) = u.encrypt.as_ref().filter(|k| !k.is_empty()) {
        crate::values::encrypt_key(k)?;
    }
    if let Some(r) = &u.recursors {
        for a in r {
            crate::values::recursor(a)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let e = |text: &str, format| parse_str(text, format).unwrap_err().to_string();
        assert_eq!(e(r#"{"foo": 1}"#, Format::Json), "invalid config key foo");
        assert_eq!(
            e(r#"{"ports": {"htp": 1}}"#, Format::Json),
            "invalid config key ports.htp"
        );
        assert_eq!(
            e("dns_config { soa { expiry = 1 } }", Format::Hcl),
            "invalid config key dns_config.soa.expiry"
        );
        // Inside a Consul block proconsul ignores, a typo is still an error.
        assert_eq!(
            e(r#"{"acl": {"tokens": {"agnet": "x"}}}"#, Format::Json),
            "invalid config key acl.tokens.agnet"
        );
        assert_eq!(
            e(r#"{"segments": [{"name": "a", "prot": 1}]}"#, Format::Json),
            "invalid config key segments[0].prot"
        );
        let s = e(r#"{"server": "yes"}"#, Format::Json);
        assert!(s.starts_with("server: invalid type"), "{s}");
        assert!(matches!(
            parse_str("[1]", Format::Json),
            Err(ParseError::NotObject)
        ));
        assert_eq!(
            e(r#"{"retry_max": -1}"#, Format::Json),
            "retry_max cannot be -1. Must be greater than or equal to zero"
        );
        assert_eq!(
            e(
                r#"{"consul": {"coordinate": {"update_batch_size": 0}}}"#,
                Format::Json
            ),
            "consul.coordinate.update_batch_size: must be between 1 and 100000, got 0"
        );
    }

    #[test]
    fn merge_rules() {
        let mut a = parse_str(
            r#"{"node_name":"a","retry_join":["x"],"node_meta":{"k":"1","j":"1"},"ports":{"http":1}}"#,
            Format::Json,
        )
        .unwrap();
        let b = parse_str(
            r#"{"node_name":"b","retry_join":["y"],"node_meta":{"k":"2"},"ports":{"dns":2}}"#,
            Format::Json,
        )
        .unwrap();
        a.merge(b);
        assert_eq!(a.user.node_name.as_deref(), Some("b"));
        assert_eq!(a.user.retry_join, Some(vec!["x".into(), "y".into()]));
        let meta = a.user.node_meta.unwrap();
        assert_eq!((meta["k"].as_str(), meta["j"].as_str()), ("2", "1"));
        let ports = a.user.ports.unwrap();
        assert_eq!((ports.http, ports.dns), (Some(1), Some(2)));
    }

    #[test]
    fn repeated_section_blocks_merge() {
        let l = parse_str("ports { http = 1 }\nports { dns = 2 }\n", Format::Hcl).unwrap();
        let p = l.user.ports.unwrap();
        assert_eq!((p.http, p.dns), (Some(1), Some(2)));
    }
}
