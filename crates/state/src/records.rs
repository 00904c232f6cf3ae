//! The store's own records, kept apart from the API shapes in `proconsul-types`.
//!
//! These are what the tables hold and what snapshots encode, so their serde form is part of the
//! snapshot format. API structs are produced from them at the edge (`to_api`) and may change
//! without touching persisted state. Records never carry a datacenter: the store does not know
//! it, the server fills it in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use proconsul_types as api;

pub(crate) type StrMap = BTreeMap<String, String>;
pub(crate) type JsonMap = serde_json::Map<String, serde_json::Value>;

/// Case-folded key, the way Consul's memdb indexes node names, service and check IDs.
pub(crate) fn fold(s: &str) -> String {
    s.to_lowercase()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct NodeRec {
    pub id: String,
    pub name: String,
    pub address: String,
    pub tagged_addresses: StrMap,
    pub meta: StrMap,
    pub create_index: u64,
    pub modify_index: u64,
}

impl NodeRec {
    /// A node as the API gives it (a transaction's node operation), with its `ModifyIndex`
    /// kept for `cas`.
    pub fn from_api(n: &api::Node) -> Self {
        NodeRec {
            id: n.id.clone(),
            name: n.node.clone(),
            address: n.address.clone(),
            tagged_addresses: n.tagged_addresses.clone(),
            meta: n.meta.clone(),
            create_index: 0,
            modify_index: n.modify_index,
        }
    }

    pub fn from_register(req: &api::RegisterRequest) -> Self {
        NodeRec {
            id: req.id.clone(),
            name: req.node.clone(),
            address: req.address.clone(),
            tagged_addresses: req.tagged_addresses.clone(),
            meta: req.node_meta.clone(),
            create_index: 0,
            modify_index: 0,
        }
    }

    /// Consul's `Node.IsSame`: equal apart from the Raft indexes.
    pub fn same(&self, o: &NodeRec) -> bool {
        self.id == o.id
            && self.name == o.name
            && self.address == o.address
            && self.tagged_addresses == o.tagged_addresses
            && self.meta == o.meta
    }

    pub fn to_api(&self) -> api::Node {
        api::Node {
            id: self.id.clone(),
            node: self.name.clone(),
            address: self.address.clone(),
            datacenter: String::new(),
            tagged_addresses: self.tagged_addresses.clone(),
            meta: self.meta.clone(),
            create_index: self.create_index,
            modify_index: self.modify_index,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ServiceRec {
    /// The node name as registered.
    pub node: String,
    pub kind: String,
    pub id: String,
    pub name: String,
    pub tags: Vec<String>,
    pub address: String,
    pub tagged_addresses: proconsul_types::ServiceAddresses,
    pub meta: StrMap,
    pub port: u16,
    pub weight_passing: i32,
    pub weight_warning: i32,
    pub enable_tag_override: bool,
    pub proxy_mesh_gateway: JsonMap,
    pub proxy_expose: JsonMap,
    /// The rest of a proxy's configuration, and `Connect.Native`, `Locality` (absent from
    /// records written before they were kept: `default`).
    #[serde(default)]
    pub proxy: ProxyRec,
    #[serde(default)]
    pub connect_native: bool,
    #[serde(default)]
    pub locality: Option<(String, String)>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A proxy's registration, beyond the mesh-gateway and expose maps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ProxyRec {
    pub destination_name: String,
    pub destination_id: String,
    pub local_address: String,
    pub local_port: u16,
    pub local_socket_path: String,
    pub mode: String,
    pub transparent: Option<serde_json::Value>,
    pub config: JsonMap,
    pub upstreams: Vec<serde_json::Value>,
}

impl ServiceRec {
    pub fn from_api(node: &str, s: &api::NodeService) -> Self {
        ServiceRec {
            node: node.to_owned(),
            kind: s.kind.clone(),
            // Consul's endpoint defaults the ID to the name; do it here too so the key is never empty.
            id: if s.id.is_empty() {
                s.service.clone()
            } else {
                s.id.clone()
            },
            name: s.service.clone(),
            tags: s.tags.clone(),
            address: s.address.clone(),
            tagged_addresses: s.tagged_addresses.clone(),
            meta: s.meta.clone(),
            port: s.port,
            weight_passing: s.weights.passing,
            weight_warning: s.weights.warning,
            enable_tag_override: s.enable_tag_override,
            proxy_mesh_gateway: s.proxy.mesh_gateway.clone(),
            proxy_expose: s.proxy.expose.clone(),
            proxy: ProxyRec {
                destination_name: s.proxy.destination_service_name.clone(),
                destination_id: s.proxy.destination_service_id.clone(),
                local_address: s.proxy.local_service_address.clone(),
                local_port: s.proxy.local_service_port,
                local_socket_path: s.proxy.local_service_socket_path.clone(),
                mode: s.proxy.mode.clone(),
                transparent: s.proxy.transparent_proxy.clone(),
                config: s.proxy.config.clone(),
                upstreams: s.proxy.upstreams.clone(),
            },
            connect_native: s.connect.native,
            locality: s
                .locality
                .as_ref()
                .map(|l| (l.region.clone(), l.zone.clone())),
            create_index: 0,
            modify_index: 0,
        }
    }

    /// Consul's `IsSameService`: equal apart from the Raft indexes.
    pub fn same(&self, o: &ServiceRec) -> bool {
        let (mut a, mut b) = (self.clone(), o.clone());
        a.create_index = 0;
        a.modify_index = 0;
        b.create_index = 0;
        b.modify_index = 0;
        a.node = fold(&a.node);
        b.node = fold(&b.node);
        a == b
    }

    /// Does this instance carry every tag in `tags` (case-insensitive, like Consul)?
    pub fn has_tags(&self, tags: &[String]) -> bool {
        tags.iter().all(|want| {
            let want = fold(want);
            self.tags.iter().any(|t| fold(t) == want)
        })
    }

    pub fn to_api(&self) -> api::NodeService {
        api::NodeService {
            kind: self.kind.clone(),
            id: self.id.clone(),
            service: self.name.clone(),
            tags: self.tags.clone(),
            address: self.address.clone(),
            tagged_addresses: self.tagged_addresses.clone(),
            meta: self.meta.clone(),
            port: self.port,
            weights: api::Weights {
                passing: self.weight_passing,
                warning: self.weight_warning,
            },
            enable_tag_override: self.enable_tag_override,
            locality: self.locality.as_ref().map(|(region, zone)| api::Locality {
                region: region.clone(),
                zone: zone.clone(),
            }),
            proxy: api::ServiceProxy {
                transparent_proxy: self.proxy.transparent.clone(),
                destination_service_name: self.proxy.destination_name.clone(),
                destination_service_id: self.proxy.destination_id.clone(),
                local_service_address: self.proxy.local_address.clone(),
                local_service_port: self.proxy.local_port,
                local_service_socket_path: self.proxy.local_socket_path.clone(),
                mode: self.proxy.mode.clone(),
                config: self.proxy.config.clone(),
                upstreams: self.proxy.upstreams.clone(),
                mesh_gateway: self.proxy_mesh_gateway.clone(),
                expose: self.proxy_expose.clone(),
            },
            connect: api::ServiceConnect {
                native: self.connect_native,
            },
            peer_name: String::new(),
            create_index: self.create_index,
            modify_index: self.modify_index,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct CheckRec {
    pub node: String,
    pub check_id: String,
    pub name: String,
    pub status: String,
    pub notes: String,
    pub output: String,
    pub service_id: String,
    pub service_name: String,
    pub service_tags: Vec<String>,
    pub check_type: String,
    pub interval: String,
    pub timeout: String,
    pub exposed_port: u16,
    pub definition: JsonMap,
    pub create_index: u64,
    pub modify_index: u64,
}

impl CheckRec {
    pub fn from_api(c: &api::HealthCheck) -> Self {
        CheckRec {
            node: c.node.clone(),
            check_id: c.check_id.clone(),
            name: c.name.clone(),
            status: c.status.clone(),
            notes: c.notes.clone(),
            output: c.output.clone(),
            service_id: c.service_id.clone(),
            service_name: c.service_name.clone(),
            service_tags: c.service_tags.clone(),
            check_type: c.check_type.clone(),
            interval: c.interval.clone(),
            timeout: c.timeout.clone(),
            exposed_port: c.exposed_port,
            definition: c.definition.clone(),
            create_index: 0,
            modify_index: 0,
        }
    }

    /// Consul's `HealthCheck.IsSame`: equal apart from the Raft indexes.
    pub fn same(&self, o: &CheckRec) -> bool {
        let (mut a, mut b) = (self.clone(), o.clone());
        a.create_index = 0;
        a.modify_index = 0;
        b.create_index = 0;
        b.modify_index = 0;
        a == b
    }

    pub fn to_api(&self) -> api::HealthCheck {
        api::HealthCheck {
            node: self.node.clone(),
            check_id: self.check_id.clone(),
            name: self.name.clone(),
            status: self.status.clone(),
            notes: self.notes.clone(),
            output: self.output.clone(),
            service_id: self.service_id.clone(),
            service_name: self.service_name.clone(),
            service_tags: self.service_tags.clone(),
            check_type: self.check_type.clone(),
            interval: self.interval.clone(),
            timeout: self.timeout.clone(),
            exposed_port: self.exposed_port,
            definition: self.definition.clone(),
            create_index: self.create_index,
            modify_index: self.modify_index,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KvRec {
    pub flags: u64,
    #[serde(with = "serde_bytes", default)]
    pub value: Option<Vec<u8>>,
    pub session: Option<String>,
    pub lock_index: u64,
    pub create_index: u64,
    pub modify_index: u64,
}

impl KvRec {
    /// Consul's `DirEntry.Equal`: same lock index, flags, value and session.
    pub fn same(&self, o: &KvRec) -> bool {
        self.lock_index == o.lock_index
            && self.flags == o.flags
            && self.value == o.value
            && self.session == o.session
    }

    pub fn to_api(&self, key: &str, with_value: bool) -> api::KvEntry {
        api::KvEntry {
            lock_index: self.lock_index,
            key: key.to_owned(),
            flags: self.flags,
            value: if with_value { self.value.clone() } else { None },
            session: self.session.clone(),
            create_index: self.create_index,
            modify_index: self.modify_index,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ServiceCheckRec {
    pub id: String,
    pub namespace: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SessionRec {
    pub id: String,
    pub name: String,
    pub node: String,
    /// Nanoseconds, as Consul's API carries it.
    pub lock_delay: u64,
    pub behavior: String,
    pub ttl: String,
    pub node_checks: Vec<String>,
    pub service_checks: Vec<ServiceCheckRec>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl SessionRec {
    pub fn from_api(s: &api::SessionEntry) -> Self {
        SessionRec {
            id: s.id.clone(),
            name: s.name.clone(),
            node: s.node.clone(),
            lock_delay: s.lock_delay,
            behavior: s.behavior.clone(),
            ttl: s.ttl.clone(),
            node_checks: s.node_checks.clone(),
            service_checks: s
                .service_checks
                .iter()
                .map(|c| ServiceCheckRec {
                    id: c.id.clone(),
                    namespace: c.namespace.clone(),
                })
                .collect(),
            create_index: 0,
            modify_index: 0,
        }
    }

    /// Every check the session is tied to (Consul's `Session.CheckIDs`).
    pub fn check_ids(&self) -> impl Iterator<Item = &str> {
        self.node_checks
            .iter()
            .map(String::as_str)
            .chain(self.service_checks.iter().map(|c| c.id.as_str()))
    }

    pub fn to_api(&self) -> api::SessionEntry {
        api::SessionEntry {
            id: self.id.clone(),
            name: self.name.clone(),
            node: self.node.clone(),
            lock_delay: self.lock_delay,
            behavior: self.behavior.clone(),
            ttl: self.ttl.clone(),
            node_checks: self.node_checks.clone(),
            service_checks: self
                .service_checks
                .iter()
                .map(|c| api::ServiceCheckRef {
                    id: c.id.clone(),
                    namespace: c.namespace.clone(),
                })
                .collect(),
            create_index: self.create_index,
            modify_index: self.modify_index,
        }
    }
}
