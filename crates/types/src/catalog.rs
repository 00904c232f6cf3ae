//! Catalog and health shapes: nodes, services, checks, as `/v1/catalog/*` and `/v1/health/*` emit.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::Index;

/// Free-form string map (`Meta`, `TaggedAddresses`); ordered so output is stable.
pub type StrMap = BTreeMap<String, String>;

/// One tagged address of a service (`TaggedAddresses.lan`): `{"Address": …, "Port": …}`.
///
/// Read from an object with any case of its keys (clients send `{"address": …}`) or from a
/// bare address string, which is what records and config files before this shape held.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceAddress {
    pub address: String,
    pub port: u16,
}

impl<'de> Deserialize<'de> for ServiceAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ServiceAddress;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an address, or an object with Address and Port")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ServiceAddress, E> {
                Ok(ServiceAddress {
                    address: v.to_string(),
                    port: 0,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ServiceAddress, A::Error> {
                let mut out = ServiceAddress::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.to_ascii_lowercase().as_str() {
                        "address" => {
                            out.address = map.next_value::<Option<String>>()?.unwrap_or_default()
                        }
                        "port" => out.port = map.next_value::<Option<u16>>()?.unwrap_or_default(),
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_any(V)
    }
}

/// A service's tagged addresses (`lan`, `wan`, `lan_ipv4`, …).
pub type ServiceAddresses = BTreeMap<String, ServiceAddress>;

fn is_zero(n: &u16) -> bool {
    *n == 0
}

/// SRV weights of a service instance (`Weights`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Weights {
    pub passing: i32,
    pub warning: i32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            passing: 1,
            warning: 1,
        }
    }
}

/// A Connect proxy's configuration (Consul's `ConnectProxyConfig`), in the order and with the
/// empty fields Consul prints on catalog and health services: `Mode`, `MeshGateway` and
/// `Expose` always, the rest only when set. proconsul keeps what a proxy registers and lists
/// proxies by destination; it does not run a mesh.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceProxy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transparent_proxy: Option<serde_json::Value>,
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
    pub mode: String,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub config: serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub upstreams: Vec<serde_json::Value>,
    pub mesh_gateway: serde_json::Map<String, serde_json::Value>,
    pub expose: serde_json::Map<String, serde_json::Value>,
}

impl ServiceProxy {
    /// Nothing set beyond Consul's empty defaults.
    pub fn is_empty(&self) -> bool {
        *self == ServiceProxy::default()
    }
}

/// A service's `Connect` block: `{}`, or `{"Native": true}` for a Connect-native service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceConnect {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub native: bool,
}

/// Where a service runs (`Locality`): a region and a zone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Locality {
    pub region: String,
    pub zone: String,
}

/// A node in the catalog (`/v1/catalog/nodes`, `Node` of health entries).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Node {
    #[serde(rename = "ID")]
    pub id: String,
    pub node: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: StrMap,
    pub meta: StrMap,
    pub create_index: Index,
    pub modify_index: Index,
}

/// A service instance as registered on a node (`Service` of health entries, agent services).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeService {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(rename = "ID")]
    pub id: String,
    pub service: String,
    pub tags: Vec<String>,
    pub address: String,
    #[serde(skip_serializing_if = "ServiceAddresses::is_empty")]
    pub tagged_addresses: ServiceAddresses,
    pub meta: StrMap,
    /// Left out when 0, as Consul's `NodeService` (unlike `ServicePort` and agent services).
    #[serde(skip_serializing_if = "is_zero")]
    pub port: u16,
    pub weights: Weights,
    pub enable_tag_override: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locality: Option<Locality>,
    pub proxy: ServiceProxy,
    pub connect: ServiceConnect,
    /// The cluster peer the instance was imported from; always `""` (no peering here), and
    /// always printed, as Consul's.
    pub peer_name: String,
    pub create_index: Index,
    pub modify_index: Index,
}

/// One row of `/v1/catalog/service/:name`: a node and one of its services, flattened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceNode {
    #[serde(rename = "ID")]
    pub id: String,
    pub node: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: StrMap,
    pub node_meta: StrMap,
    pub service_kind: String,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    pub service_name: String,
    pub service_tags: Vec<String>,
    pub service_address: String,
    #[serde(skip_serializing_if = "ServiceAddresses::is_empty")]
    pub service_tagged_addresses: ServiceAddresses,
    pub service_weights: Weights,
    pub service_meta: StrMap,
    pub service_port: u16,
    pub service_socket_path: String,
    pub service_enable_tag_override: bool,
    pub service_proxy: ServiceProxy,
    pub service_connect: ServiceConnect,
    /// `null` when the service has none (a pointer without `omitempty` in Consul).
    pub service_locality: Option<Locality>,
    pub create_index: Index,
    pub modify_index: Index,
}

impl ServiceNode {
    /// Flatten a node and one of its services into a catalog row.
    pub fn from_parts(node: &Node, svc: &NodeService) -> Self {
        ServiceNode {
            id: node.id.clone(),
            node: node.node.clone(),
            address: node.address.clone(),
            datacenter: node.datacenter.clone(),
            tagged_addresses: node.tagged_addresses.clone(),
            node_meta: node.meta.clone(),
            service_kind: svc.kind.clone(),
            service_id: svc.id.clone(),
            service_name: svc.service.clone(),
            service_tags: svc.tags.clone(),
            service_address: svc.address.clone(),
            service_tagged_addresses: svc.tagged_addresses.clone(),
            service_weights: svc.weights,
            service_meta: svc.meta.clone(),
            service_port: svc.port,
            service_socket_path: String::new(),
            service_enable_tag_override: svc.enable_tag_override,
            service_proxy: svc.proxy.clone(),
            service_connect: svc.connect.clone(),
            service_locality: svc.locality.clone(),
            create_index: svc.create_index,
            modify_index: svc.modify_index,
        }
    }
}

/// A health check in the catalog (`/v1/health/*`, `/v1/agent/checks`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthCheck {
    pub node: String,
    #[serde(rename = "CheckID")]
    pub check_id: String,
    pub name: String,
    pub status: String,
    pub notes: String,
    pub output: String,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    pub service_name: String,
    pub service_tags: Vec<String>,
    #[serde(rename = "Type")]
    pub check_type: String,
    pub interval: String,
    pub timeout: String,
    pub exposed_port: u16,
    pub definition: serde_json::Map<String, serde_json::Value>,
    pub create_index: Index,
    pub modify_index: Index,
}

/// One row of `/v1/health/service/:name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CheckServiceNode {
    pub node: Node,
    pub service: NodeService,
    pub checks: Vec<HealthCheck>,
}

/// `/v1/catalog/node/:name`: a node and its services keyed by ID. `null` when the node is unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeServices {
    pub node: Node,
    pub services: BTreeMap<String, NodeService>,
}

/// `/v1/catalog/node-services/:name`: a node and its services as a list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeServiceList {
    pub node: Node,
    pub services: Vec<NodeService>,
}

/// Body of `PUT /v1/catalog/register`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RegisterRequest {
    pub datacenter: String,
    #[serde(rename = "ID")]
    pub id: String,
    pub node: String,
    pub address: String,
    pub tagged_addresses: StrMap,
    pub node_meta: StrMap,
    pub service: Option<NodeService>,
    pub check: Option<HealthCheck>,
    pub checks: Vec<HealthCheck>,
    pub skip_node_update: bool,
}

/// Body of `PUT /v1/catalog/deregister`: the node, or one service, or one check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeregisterRequest {
    pub datacenter: String,
    pub node: String,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    #[serde(rename = "CheckID")]
    pub check_id: String,
}
