//! The shapes of the web UI's endpoints (`/v1/internal/ui/*`), as Consul's
//! `agent/ui_endpoint.go` and `structs.NodeInfo` print them.

use serde::{Deserialize, Serialize};

use crate::{HealthCheck, NodeService, StrMap};

/// A node with its services and checks: a row of `/v1/internal/ui/nodes`, and
/// `/v1/internal/ui/node/:node` (Consul's `structs.NodeInfo`). `Services` and `Checks` are
/// `[]`, never `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeInfo {
    #[serde(rename = "ID")]
    pub id: String,
    pub node: String,
    pub address: String,
    pub tagged_addresses: StrMap,
    pub meta: StrMap,
    pub services: Vec<NodeService>,
    pub checks: Vec<HealthCheck>,
}

/// A gateway's addresses and linked services (`GatewayConfig` of a summary); proconsul has no
/// gateway config entries, so it prints `{}`, as Consul does for every other service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GatewayConfig {
    #[serde(skip_serializing_if = "is_zero")]
    pub associated_service_count: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One service of `/v1/internal/ui/services` (Consul's `ServiceListingSummary`): its
/// instances counted, the union of their tags, the nodes they run on, and their checks —
/// node-level checks of those nodes included, each check counted once — by status.
/// `Tags`, `Nodes` and `ExternalSources` are `null` when empty, as Consul's nil slices.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceSummary {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    pub name: String,
    pub datacenter: String,
    pub tags: Option<Vec<String>>,
    pub nodes: Option<Vec<String>>,
    pub external_sources: Option<Vec<String>>,
    pub instance_count: u64,
    pub checks_passing: u64,
    pub checks_warning: u64,
    pub checks_critical: u64,
    pub gateway_config: GatewayConfig,
    pub transparent_proxy: bool,
    pub connect_native: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub peer_name: String,
    pub connected_with_proxy: bool,
    pub connected_with_gateway: bool,
}
