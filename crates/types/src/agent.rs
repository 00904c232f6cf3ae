//! Agent endpoint shapes (`/v1/agent/*`) and user events.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::catalog::{Locality, ServiceAddresses, ServiceConnect, ServiceProxy, StrMap, Weights};
use crate::kv::base64_opt;

/// A check definition as given to the agent: inside a service registration (`Check`/`Checks`) or
/// on its own (`/v1/agent/check/register`, where `ID`, `Name` and `ServiceID` matter).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CheckDefinition {
    #[serde(rename = "ID", skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(rename = "CheckID", skip_serializing_if = "String::is_empty")]
    pub check_id: String,
    pub name: String,
    pub notes: String,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    pub status: String,
    pub interval: String,
    pub timeout: String,
    #[serde(rename = "TTL")]
    pub ttl: String,
    #[serde(rename = "HTTP")]
    pub http: String,
    pub header: BTreeMap<String, Vec<String>>,
    pub method: String,
    pub body: String,
    #[serde(rename = "TCP")]
    pub tcp: String,
    #[serde(rename = "GRPC")]
    pub grpc: String,
    #[serde(rename = "GRPCUseTLS")]
    pub grpc_use_tls: bool,
    /// A TCP check completes a TLS handshake (`TCP+TLS connect …`).
    #[serde(rename = "TCPUseTLS")]
    pub tcp_use_tls: bool,
    #[serde(rename = "TLSServerName")]
    pub tls_server_name: String,
    #[serde(rename = "TLSSkipVerify")]
    pub tls_skip_verify: bool,
    pub disable_redirects: bool,
    pub args: Vec<String>,
    pub script_args: Vec<String>,
    pub alias_node: String,
    pub alias_service: String,
    pub deregister_critical_service_after: String,
    pub success_before_passing: u32,
    pub failures_before_warning: u32,
    pub failures_before_critical: u32,
}

impl CheckDefinition {
    /// The check's type as Consul names it in `HealthCheck.Type`.
    pub fn kind(&self) -> &'static str {
        if !self.ttl.is_empty() {
            "ttl"
        } else if !self.http.is_empty() {
            "http"
        } else if !self.tcp.is_empty() {
            "tcp"
        } else if !self.grpc.is_empty() {
            "grpc"
        } else if !self.args.is_empty() || !self.script_args.is_empty() {
            "script"
        } else if !self.alias_service.is_empty() || !self.alias_node.is_empty() {
            "alias"
        } else {
            ""
        }
    }

    /// The ID given by the caller, whichever of `ID`/`CheckID` it used.
    pub fn given_id(&self) -> &str {
        if !self.id.is_empty() {
            &self.id
        } else {
            &self.check_id
        }
    }
}

/// Split a gRPC check's target, `host:port` or `host:port/service`, into the address to dial
/// and the service to ask about (empty: the whole server). IPv6 hosts are bracketed.
pub fn split_grpc_target(target: &str) -> Result<(&str, &str), String> {
    let (addr, service) = target.split_once('/').unwrap_or((target, ""));
    let valid = match addr.rsplit_once(':') {
        Some((host, port)) => {
            let host_ok = if let Some(inner) = host.strip_prefix('[') {
                inner.strip_suffix(']').is_some_and(|h| !h.is_empty())
            } else {
                !host.is_empty() && !host.contains(':')
            };
            host_ok
                && !host.chars().any(|c| c.is_whitespace())
                && port.parse::<u16>().is_ok_and(|p| p != 0)
        }
        None => false,
    };
    if valid {
        Ok((addr, service))
    } else {
        Err(format!(
            "invalid gRPC target {target:?}: expected host:port or host:port/service"
        ))
    }
}

/// Body of `PUT /v1/agent/service/register` (and a `service {}` block in config files).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceDefinition {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub kind: String,
    pub tags: Vec<String>,
    pub address: String,
    pub tagged_addresses: ServiceAddresses,
    pub meta: StrMap,
    pub port: u16,
    pub enable_tag_override: bool,
    pub weights: Option<Weights>,
    pub check: Option<CheckDefinition>,
    pub checks: Vec<CheckDefinition>,
    /// A proxy's configuration (`Kind` `connect-proxy` and gateways).
    pub proxy: Option<ServiceProxy>,
    pub connect: Option<ConnectDefinition>,
    pub locality: Option<Locality>,
}

/// A service's `Connect` block as registered: Connect-native, or a sidecar proxy to register
/// beside it (`{"SidecarService": {}}` takes Consul's defaults for everything).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ConnectDefinition {
    pub native: bool,
    pub sidecar_service: Option<Box<ServiceDefinition>>,
}

/// One service of `/v1/agent/services` and `/v1/agent/service/:id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AgentService {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(rename = "ID")]
    pub id: String,
    pub service: String,
    pub tags: Vec<String>,
    pub meta: StrMap,
    pub port: u16,
    pub address: String,
    #[serde(skip_serializing_if = "ServiceAddresses::is_empty")]
    pub tagged_addresses: ServiceAddresses,
    pub weights: Weights,
    pub enable_tag_override: bool,
    /// Set only by `/v1/agent/service/:id`: a hash of the rest, for hash-based blocking.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub content_hash: String,
    /// Only for proxies and gateways.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<AgentServiceProxy>,
    /// Only for Connect-native services.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect: Option<ServiceConnect>,
    pub datacenter: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locality: Option<Locality>,
}

/// A proxy's configuration as the agent API prints it (Consul's
/// `api.AgentServiceConnectProxyConfig`: its own order, `Mode` left out when empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AgentServiceProxy {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub destination_service_name: String,
    #[serde(
        rename = "DestinationServiceID",
        skip_serializing_if = "String::is_empty"
    )]
    pub destination_service_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub local_service_address: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub local_service_port: u16,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub local_service_socket_path: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transparent_proxy: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub config: serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub upstreams: Vec<serde_json::Value>,
    pub mesh_gateway: serde_json::Map<String, serde_json::Value>,
    pub expose: serde_json::Map<String, serde_json::Value>,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

impl From<&ServiceProxy> for AgentServiceProxy {
    fn from(p: &ServiceProxy) -> Self {
        AgentServiceProxy {
            destination_service_name: p.destination_service_name.clone(),
            destination_service_id: p.destination_service_id.clone(),
            local_service_address: p.local_service_address.clone(),
            local_service_port: p.local_service_port,
            local_service_socket_path: p.local_service_socket_path.clone(),
            mode: p.mode.clone(),
            transparent_proxy: p.transparent_proxy.clone(),
            config: p.config.clone(),
            upstreams: p.upstreams.clone(),
            mesh_gateway: p.mesh_gateway.clone(),
            expose: p.expose.clone(),
        }
    }
}

/// One member of `/v1/agent/members`. `Status` is Serf's numeric member status
/// (0 none, 1 alive, 2 leaving, 3 left, 4 failed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AgentMember {
    pub name: String,
    pub addr: String,
    pub port: u16,
    pub tags: BTreeMap<String, String>,
    pub status: u8,
    pub protocol_min: u8,
    pub protocol_max: u8,
    pub protocol_cur: u8,
    pub delegate_min: u8,
    pub delegate_max: u8,
    pub delegate_cur: u8,
}

/// Serf member status numbers, as `/v1/agent/members` reports them.
pub mod member_status {
    pub const NONE: u8 = 0;
    pub const ALIVE: u8 = 1;
    pub const LEAVING: u8 = 2;
    pub const LEFT: u8 = 3;
    pub const FAILED: u8 = 4;

    /// The word `consul members` prints for a status number.
    pub fn name(s: u8) -> &'static str {
        match s {
            ALIVE => "alive",
            LEAVING => "leaving",
            LEFT => "left",
            FAILED => "failed",
            _ => "none",
        }
    }
}

/// A user event (`/v1/event/fire/:name`, `/v1/event/list`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UserEvent {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    #[serde(with = "base64_opt")]
    pub payload: Option<Vec<u8>>,
    pub node_filter: String,
    pub service_filter: String,
    pub tag_filter: String,
    pub version: u32,
    #[serde(rename = "LTime")]
    pub ltime: u64,
}

/// One server of `/v1/operator/raft/configuration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RaftServer {
    /// The server's node ID (UUID).
    #[serde(rename = "ID")]
    pub id: String,
    pub node: String,
    /// Server RPC address (`ip:8300`).
    pub address: String,
    pub leader: bool,
    pub voter: bool,
    pub protocol_version: String,
    pub last_index: u64,
}

/// `/v1/operator/raft/configuration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RaftConfiguration {
    pub servers: Vec<RaftServer>,
    pub index: u64,
}

/// One pool's answer in `/v1/operator/keyring`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct KeyringResponse {
    #[serde(rename = "WAN")]
    pub wan: bool,
    pub datacenter: String,
    pub segment: String,
    /// Installed keys → how many members hold them.
    pub keys: BTreeMap<String, usize>,
    /// Primary keys → how many members use them.
    pub primary_keys: BTreeMap<String, usize>,
    pub num_nodes: usize,
    /// Per-member error messages.
    pub messages: BTreeMap<String, String>,
}

/// The body of keyring writes: `{"Key": "<base64>"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct KeyringRequest {
    pub key: String,
}

/// `/v1/operator/autopilot/configuration`. Missing fields of a `PUT` body take Consul's
/// defaults (its `api.NewAutopilotConfiguration`); durations are Go duration text on output and
/// text or integer nanoseconds on input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AutopilotConfiguration {
    pub cleanup_dead_servers: bool,
    #[serde(deserialize_with = "duration_text")]
    pub last_contact_threshold: String,
    pub max_trailing_logs: u64,
    pub min_quorum: u64,
    #[serde(deserialize_with = "duration_text")]
    pub server_stabilization_time: String,
    pub redundancy_zone_tag: String,
    pub disable_upgrade_migration: bool,
    pub upgrade_version_tag: String,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Default for AutopilotConfiguration {
    fn default() -> Self {
        AutopilotConfiguration {
            cleanup_dead_servers: true,
            last_contact_threshold: "200ms".into(),
            max_trailing_logs: 250,
            min_quorum: 0,
            server_stabilization_time: "10s".into(),
            redundancy_zone_tag: String::new(),
            disable_upgrade_migration: false,
            upgrade_version_tag: String::new(),
            create_index: 0,
            modify_index: 0,
        }
    }
}

/// A duration given as Go text (`"200ms"`) or integer nanoseconds, kept as text.
fn duration_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a duration")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
            Ok(crate::duration::format_nanos(v.min(i64::MAX as u64) as i64))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
            Ok(crate::duration::format_nanos(v))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<String, E> {
            Ok(crate::duration::format_nanos(v as i64))
        }
    }
    d.deserialize_any(V)
}

/// `/v1/operator/autopilot/state`: autopilot's view of the servers (Consul's shape; the
/// Enterprise-only parts — redundancy zones, upgrades, read replicas — are empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AutopilotState {
    pub healthy: bool,
    pub failure_tolerance: usize,
    pub optimistic_failure_tolerance: usize,
    /// Server ID → details.
    pub servers: BTreeMap<String, AutopilotServer>,
    /// The leader's server ID.
    pub leader: String,
    pub voters: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub read_replicas: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub redundancy_zones: BTreeMap<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<serde_json::Value>,
}

/// One server in [`AutopilotState`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AutopilotServer {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub address: String,
    /// `alive`, `failed`, `left` or `none` (gossip does not know the server).
    pub node_status: String,
    pub version: String,
    /// Go duration text.
    pub last_contact: String,
    pub last_term: u64,
    pub last_index: u64,
    pub healthy: bool,
    /// RFC 3339.
    pub stable_since: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub redundancy_zone: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub upgrade_version: String,
    pub read_replica: bool,
    /// `leader`, `voter`, `non-voter` or `staging`.
    pub status: String,
    pub meta: BTreeMap<String, String>,
    /// What autopilot wants this server to be; always `voter` without Enterprise features.
    pub node_type: String,
}

/// One server in `/v1/operator/autopilot/health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServerHealth {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub address: String,
    pub serf_status: String,
    pub version: String,
    pub leader: bool,
    /// Go duration text (`"12ms"`).
    pub last_contact: String,
    pub last_term: u64,
    pub last_index: u64,
    pub healthy: bool,
    pub voter: bool,
    /// RFC 3339 time since which the server has been healthy.
    pub stable_since: String,
}

/// `/v1/operator/autopilot/health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct OperatorHealth {
    pub healthy: bool,
    pub failure_tolerance: usize,
    pub servers: Vec<ServerHealth>,
}

#[cfg(test)]
mod grpc_target_tests {
    use super::split_grpc_target;

    #[test]
    fn grpc_targets() {
        assert_eq!(
            split_grpc_target("127.0.0.1:50051"),
            Ok(("127.0.0.1:50051", ""))
        );
        assert_eq!(
            split_grpc_target("db.local:9000/web"),
            Ok(("db.local:9000", "web"))
        );
        assert_eq!(
            split_grpc_target("[::1]:9000/a/b"),
            Ok(("[::1]:9000", "a/b"))
        );
        for bad in [
            "",
            "host",
            ":80",
            "host:",
            "host:0",
            "host:99999",
            "::1:80",
            "[]:80",
            "a b:80",
            "/web",
        ] {
            let e = split_grpc_target(bad).unwrap_err();
            assert!(
                e.contains("expected host:port or host:port/service"),
                "{bad}: {e}"
            );
        }
    }
}
