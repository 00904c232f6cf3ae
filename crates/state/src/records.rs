//! The store's own records, kept apart from the API shapes in `proconsul-types`.
//!
//! These are what the tables hold and what snapshots encode, so their serde form is part of the
//! snapshot format. API structs are produced from them at the edge (`to_api`) and may change
//! without touching persisted state. Records never carry a datacenter: the store does not know
//! it, the server fills it in.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use proconsul_types as api;

pub(crate) use crate::compact::{StrMap, Tags};

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
            tagged_addresses: StrMap::from_api(&n.tagged_addresses),
            meta: StrMap::from_api(&n.meta),
            create_index: 0,
            modify_index: n.modify_index,
        }
    }

    pub fn from_register(req: &api::RegisterRequest) -> Self {
        NodeRec {
            id: req.id.clone(),
            name: req.node.clone(),
            address: req.address.clone(),
            tagged_addresses: StrMap::from_api(&req.tagged_addresses),
            meta: StrMap::from_api(&req.node_meta),
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
            tagged_addresses: self.tagged_addresses.to_api(),
            meta: self.meta.to_api(),
            create_index: self.create_index,
            modify_index: self.modify_index,
        }
    }
}

/// A service instance. In memory the proxy configuration and locality, which most instances
/// lack, are boxed apart ([`ServiceMesh`]: about 300 bytes inline); encoded, the record is the
/// flat struct it always was ([`ServiceWire`]).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(from = "ServiceWire")]
pub(crate) struct ServiceRec {
    /// The node name as registered.
    pub node: Arc<str>,
    pub kind: Box<str>,
    pub id: Arc<str>,
    pub name: Arc<str>,
    pub tags: Tags,
    pub address: Box<str>,
    pub tagged_addresses: proconsul_types::ServiceAddresses,
    pub meta: StrMap,
    pub port: u16,
    pub weight_passing: i32,
    pub weight_warning: i32,
    pub enable_tag_override: bool,
    pub connect_native: bool,
    /// `None` exactly when every part of it is empty, so records compare as before.
    mesh: Option<Box<ServiceMesh>>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// The rarely set part of a [`ServiceRec`].
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ServiceMesh {
    pub proxy_mesh_gateway: JsonMap,
    pub proxy_expose: JsonMap,
    pub proxy: ProxyRec,
    pub locality: Option<(String, String)>,
}

impl ServiceMesh {
    fn boxed_unless_empty(self) -> Option<Box<ServiceMesh>> {
        (self != ServiceMesh::default()).then(|| Box::new(self))
    }
}

/// The encoded form of a [`ServiceRec`] (snapshots, log entries): field names and order are
/// part of both formats.
#[derive(Serialize)]
struct ServiceWireRef<'a> {
    node: &'a str,
    kind: &'a str,
    id: &'a str,
    name: &'a str,
    tags: &'a Tags,
    address: &'a str,
    tagged_addresses: &'a proconsul_types::ServiceAddresses,
    meta: &'a StrMap,
    port: u16,
    weight_passing: i32,
    weight_warning: i32,
    enable_tag_override: bool,
    proxy_mesh_gateway: &'a JsonMap,
    proxy_expose: &'a JsonMap,
    proxy: &'a ProxyRec,
    connect_native: bool,
    locality: &'a Option<(String, String)>,
    create_index: u64,
    modify_index: u64,
}

/// [`ServiceWireRef`], owned, for decoding.
#[derive(Deserialize)]
struct ServiceWire {
    node: String,
    kind: String,
    id: String,
    name: String,
    tags: Tags,
    address: String,
    tagged_addresses: proconsul_types::ServiceAddresses,
    meta: StrMap,
    port: u16,
    weight_passing: i32,
    weight_warning: i32,
    enable_tag_override: bool,
    proxy_mesh_gateway: JsonMap,
    proxy_expose: JsonMap,
    /// The rest of a proxy's configuration, and `Connect.Native`, `Locality` (absent from
    /// records written before they were kept: `default`).
    #[serde(default)]
    proxy: ProxyRec,
    #[serde(default)]
    connect_native: bool,
    #[serde(default)]
    locality: Option<(String, String)>,
    create_index: u64,
    modify_index: u64,
}

impl From<ServiceWire> for ServiceRec {
    fn from(w: ServiceWire) -> Self {
        let mesh = ServiceMesh {
            proxy_mesh_gateway: w.proxy_mesh_gateway,
            proxy_expose: w.proxy_expose,
            proxy: w.proxy,
            locality: w.locality,
        };
        ServiceRec {
            node: w.node.into(),
            kind: w.kind.into(),
            id: w.id.into(),
            name: w.name.into(),
            tags: w.tags,
            address: w.address.into(),
            tagged_addresses: w.tagged_addresses,
            meta: w.meta,
            port: w.port,
            weight_passing: w.weight_passing,
            weight_warning: w.weight_warning,
            enable_tag_override: w.enable_tag_override,
            connect_native: w.connect_native,
            mesh: mesh.boxed_unless_empty(),
            create_index: w.create_index,
            modify_index: w.modify_index,
        }
    }
}

impl Serialize for ServiceRec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mesh = self.mesh();
        ServiceWireRef {
            node: &self.node,
            kind: &self.kind,
            id: &self.id,
            name: &self.name,
            tags: &self.tags,
            address: &self.address,
            tagged_addresses: &self.tagged_addresses,
            meta: &self.meta,
            port: self.port,
            weight_passing: self.weight_passing,
            weight_warning: self.weight_warning,
            enable_tag_override: self.enable_tag_override,
            proxy_mesh_gateway: &mesh.proxy_mesh_gateway,
            proxy_expose: &mesh.proxy_expose,
            proxy: &mesh.proxy,
            connect_native: self.connect_native,
            locality: &mesh.locality,
            create_index: self.create_index,
            modify_index: self.modify_index,
        }
        .serialize(s)
    }
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
            node: node.into(),
            kind: s.kind.as_str().into(),
            // Consul's endpoint defaults the ID to the name; do it here too so the key is never empty.
            id: if s.id.is_empty() {
                s.service.as_str().into()
            } else {
                s.id.as_str().into()
            },
            name: s.service.as_str().into(),
            tags: Tags::from_api(&s.tags),
            address: s.address.as_str().into(),
            tagged_addresses: s.tagged_addresses.clone(),
            meta: StrMap::from_api(&s.meta),
            port: s.port,
            weight_passing: s.weights.passing,
            weight_warning: s.weights.warning,
            enable_tag_override: s.enable_tag_override,
            connect_native: s.connect.native,
            mesh: ServiceMesh {
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
                locality: s
                    .locality
                    .as_ref()
                    .map(|l| (l.region.clone(), l.zone.clone())),
            }
            .boxed_unless_empty(),
            create_index: 0,
            modify_index: 0,
        }
    }

    /// The proxy configuration and locality (all empty for most instances).
    pub fn mesh(&self) -> &ServiceMesh {
        static EMPTY: std::sync::OnceLock<ServiceMesh> = std::sync::OnceLock::new();
        match &self.mesh {
            Some(m) => m,
            None => EMPTY.get_or_init(ServiceMesh::default),
        }
    }

    /// Consul's `IsSameService`: equal apart from the Raft indexes.
    pub fn same(&self, o: &ServiceRec) -> bool {
        let (mut a, mut b) = (self.clone(), o.clone());
        a.create_index = 0;
        a.modify_index = 0;
        b.create_index = 0;
        b.modify_index = 0;
        a.node = fold(&a.node).into();
        b.node = fold(&b.node).into();
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
        let mesh = self.mesh();
        api::NodeService {
            kind: self.kind.to_string(),
            id: self.id.to_string(),
            service: self.name.to_string(),
            tags: self.tags.to_api(),
            address: self.address.to_string(),
            tagged_addresses: self.tagged_addresses.clone(),
            meta: self.meta.to_api(),
            port: self.port,
            weights: api::Weights {
                passing: self.weight_passing,
                warning: self.weight_warning,
            },
            enable_tag_override: self.enable_tag_override,
            locality: mesh.locality.as_ref().map(|(region, zone)| api::Locality {
                region: region.clone(),
                zone: zone.clone(),
            }),
            proxy: api::ServiceProxy {
                transparent_proxy: mesh.proxy.transparent.clone(),
                destination_service_name: mesh.proxy.destination_name.clone(),
                destination_service_id: mesh.proxy.destination_id.clone(),
                local_service_address: mesh.proxy.local_address.clone(),
                local_service_port: mesh.proxy.local_port,
                local_service_socket_path: mesh.proxy.local_socket_path.clone(),
                mode: mesh.proxy.mode.clone(),
                config: mesh.proxy.config.clone(),
                upstreams: mesh.proxy.upstreams.clone(),
                mesh_gateway: mesh.proxy_mesh_gateway.clone(),
                expose: mesh.proxy_expose.clone(),
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

/// A health check. In memory the fields a plain check leaves empty (notes, type, interval,
/// timeout, exposed port, definition: about 120 bytes inline) are boxed apart
/// ([`CheckExtra`]), and the service's tags are the service record's own list ([`Tags`]);
/// encoded, the record is the flat struct it always was ([`CheckWireRef`]).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(from = "CheckWire")]
pub(crate) struct CheckRec {
    pub node: Arc<str>,
    pub check_id: Arc<str>,
    pub name: Box<str>,
    pub status: Box<str>,
    pub output: Box<str>,
    pub service_id: Arc<str>,
    pub service_name: Arc<str>,
    pub service_tags: Tags,
    /// `None` exactly when every part of it is empty, so records compare as before.
    extra: Option<Box<CheckExtra>>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// The rarely set part of a [`CheckRec`].
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct CheckExtra {
    pub notes: String,
    pub check_type: String,
    pub interval: String,
    pub timeout: String,
    pub exposed_port: u16,
    pub definition: JsonMap,
}

impl CheckExtra {
    fn boxed_unless_empty(self) -> Option<Box<CheckExtra>> {
        (self != CheckExtra::default()).then(|| Box::new(self))
    }
}

/// The encoded form of a [`CheckRec`] (snapshots, log entries): field names and order are part
/// of both formats.
#[derive(Serialize)]
struct CheckWireRef<'a> {
    node: &'a str,
    check_id: &'a str,
    name: &'a str,
    status: &'a str,
    notes: &'a str,
    output: &'a str,
    service_id: &'a str,
    service_name: &'a str,
    service_tags: &'a Tags,
    check_type: &'a str,
    interval: &'a str,
    timeout: &'a str,
    exposed_port: u16,
    definition: &'a JsonMap,
    create_index: u64,
    modify_index: u64,
}

/// [`CheckWireRef`], owned, for decoding.
#[derive(Deserialize)]
struct CheckWire {
    node: String,
    check_id: String,
    name: String,
    status: String,
    notes: String,
    output: String,
    service_id: String,
    service_name: String,
    service_tags: Tags,
    check_type: String,
    interval: String,
    timeout: String,
    exposed_port: u16,
    definition: JsonMap,
    create_index: u64,
    modify_index: u64,
}

impl From<CheckWire> for CheckRec {
    fn from(w: CheckWire) -> Self {
        CheckRec {
            node: w.node.into(),
            check_id: w.check_id.into(),
            name: w.name.into(),
            status: w.status.into(),
            output: w.output.into(),
            service_id: w.service_id.into(),
            service_name: w.service_name.into(),
            service_tags: w.service_tags,
            extra: CheckExtra {
                notes: w.notes,
                check_type: w.check_type,
                interval: w.interval,
                timeout: w.timeout,
                exposed_port: w.exposed_port,
                definition: w.definition,
            }
            .boxed_unless_empty(),
            create_index: w.create_index,
            modify_index: w.modify_index,
        }
    }
}

impl Serialize for CheckRec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let extra = self.extra();
        CheckWireRef {
            node: &self.node,
            check_id: &self.check_id,
            name: &self.name,
            status: &self.status,
            notes: &extra.notes,
            output: &self.output,
            service_id: &self.service_id,
            service_name: &self.service_name,
            service_tags: &self.service_tags,
            check_type: &extra.check_type,
            interval: &extra.interval,
            timeout: &extra.timeout,
            exposed_port: extra.exposed_port,
            definition: &extra.definition,
            create_index: self.create_index,
            modify_index: self.modify_index,
        }
        .serialize(s)
    }
}

impl CheckRec {
    pub fn from_api(c: &api::HealthCheck) -> Self {
        CheckRec {
            node: c.node.as_str().into(),
            check_id: c.check_id.as_str().into(),
            name: c.name.as_str().into(),
            status: c.status.as_str().into(),
            output: c.output.as_str().into(),
            service_id: c.service_id.as_str().into(),
            service_name: c.service_name.as_str().into(),
            service_tags: Tags::from_api(&c.service_tags),
            extra: CheckExtra {
                notes: c.notes.clone(),
                check_type: c.check_type.clone(),
                interval: c.interval.clone(),
                timeout: c.timeout.clone(),
                exposed_port: c.exposed_port,
                definition: c.definition.clone(),
            }
            .boxed_unless_empty(),
            create_index: 0,
            modify_index: 0,
        }
    }

    /// The notes, type, interval, timeout, exposed port and definition (all empty for most
    /// checks).
    pub fn extra(&self) -> &CheckExtra {
        static EMPTY: std::sync::OnceLock<CheckExtra> = std::sync::OnceLock::new();
        match &self.extra {
            Some(x) => x,
            None => EMPTY.get_or_init(CheckExtra::default),
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
        let extra = self.extra();
        api::HealthCheck {
            node: self.node.to_string(),
            check_id: self.check_id.to_string(),
            name: self.name.to_string(),
            status: self.status.to_string(),
            notes: extra.notes.clone(),
            output: self.output.to_string(),
            service_id: self.service_id.to_string(),
            service_name: self.service_name.to_string(),
            service_tags: self.service_tags.to_api(),
            check_type: extra.check_type.clone(),
            interval: extra.interval.clone(),
            timeout: extra.timeout.clone(),
            exposed_port: extra.exposed_port,
            definition: extra.definition.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A service with every field set, and one with none of the rarely used ones.
    fn services() -> Vec<ServiceRec> {
        let full: api::NodeService = serde_json::from_value(serde_json::json!({
            "Kind": "connect-proxy",
            "ID": "web-sidecar-proxy",
            "Service": "web-sidecar-proxy",
            "Tags": ["v1", "primary"],
            "Address": "10.0.0.1",
            "TaggedAddresses": {"lan": {"Address": "10.0.0.1", "Port": 21000}},
            "Meta": {"version": "1.2.3", "az": "a"},
            "Port": 21000,
            "Weights": {"Passing": 3, "Warning": 2},
            "EnableTagOverride": true,
            "Locality": {"Region": "eu", "Zone": "eu-1"},
            "Proxy": {
                "DestinationServiceName": "web",
                "DestinationServiceID": "web-1",
                "LocalServiceAddress": "127.0.0.1",
                "LocalServicePort": 8080,
                "Mode": "transparent",
                "Config": {"protocol": "http"},
                "Upstreams": [{"DestinationName": "db", "LocalBindPort": 9191}],
                "MeshGateway": {"Mode": "local"},
                "Expose": {"Checks": true}
            },
            "Connect": {"Native": true}
        }))
        .unwrap();
        let plain: api::NodeService = serde_json::from_value(serde_json::json!({
            "ID": "web-1", "Service": "web", "Tags": ["v1"], "Port": 8000,
            "Meta": {"version": "1.2.3"}
        }))
        .unwrap();
        let mut out = vec![
            ServiceRec::from_api("node-1", &full),
            ServiceRec::from_api("node-1", &plain),
        ];
        out[0].create_index = 7;
        out[0].modify_index = 9;
        out
    }

    /// Records are what snapshots and log entries encode: their bytes must not change with
    /// how records are laid out in memory. The expected bytes were written by the build before
    /// the compact layout (plain `BTreeMap`s and every proxy field inline).
    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn records_encode_as_they_always_have() {
        for (rec, want) in services().iter().zip(GOLDEN) {
            let bytes = rmp_serde::to_vec_named(rec).unwrap();
            assert_eq!(hex(&bytes), *want);
            let back: ServiceRec = rmp_serde::from_slice(&bytes).unwrap();
            assert_eq!(&back, rec);
            assert_eq!(back.to_api(), rec.to_api());
        }
        let node: api::RegisterRequest = serde_json::from_value(serde_json::json!({
            "Node": "node-1", "Address": "10.0.0.1",
            "TaggedAddresses": {"wan": "1.2.3.4", "lan": "10.0.0.1"},
            "NodeMeta": {"rack": "r1", "az": "a"}
        }))
        .unwrap();
        let node = NodeRec::from_register(&node);
        let bytes = rmp_serde::to_vec_named(&node).unwrap();
        assert_eq!(hex(&bytes), GOLDEN_NODE);
        let back: NodeRec = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, node);
        assert_eq!(back.to_api(), node.to_api());
    }

    /// A check with every field set, and a plain one.
    fn checks() -> Vec<CheckRec> {
        let full: api::HealthCheck = serde_json::from_value(serde_json::json!({
            "Node": "node-1", "CheckID": "service:web-1", "Name": "http", "Status": "passing",
            "Notes": "a note", "Output": "HTTP GET: 200 OK", "ServiceID": "web-1",
            "ServiceName": "web", "ServiceTags": ["v1", "primary"], "Type": "http",
            "Interval": "10s", "Timeout": "1s", "ExposedPort": 21500,
            "Definition": {"HTTP": "http://localhost/health", "Method": "GET"}
        }))
        .unwrap();
        let plain: api::HealthCheck = serde_json::from_value(serde_json::json!({
            "Node": "node-1", "CheckID": "serfHealth", "Name": "Serf Health Status",
            "Status": "passing"
        }))
        .unwrap();
        [full, plain]
            .iter()
            .map(|c| {
                let mut r = CheckRec::from_api(c);
                r.create_index = 7;
                r.modify_index = 9;
                assert_eq!(
                    r.to_api(),
                    api::HealthCheck {
                        create_index: 7,
                        modify_index: 9,
                        ..c.clone()
                    }
                );
                r
            })
            .collect()
    }

    /// The expected bytes were written by the build before checks were laid out compactly
    /// (every field inline).
    #[test]
    fn checks_encode_as_they_always_have() {
        let checks = checks();
        assert!(checks[0].extra.is_some() && checks[1].extra.is_none());
        for (rec, want) in checks.iter().zip(GOLDEN_CHECKS) {
            let bytes = rmp_serde::to_vec_named(rec).unwrap();
            assert_eq!(hex(&bytes), *want);
            let back: CheckRec = rmp_serde::from_slice(&bytes).unwrap();
            assert_eq!(&back, rec);
            assert_eq!(back.to_api(), rec.to_api());
        }
    }

    /// A plain check keeps only what it uses inline: its rare fields are one pointer, its
    /// service's tags another.
    #[test]
    fn a_plain_check_is_small() {
        let size = std::mem::size_of::<CheckRec>();
        assert!(size <= 152, "{size}");
    }

    /// Likewise a plain service instance: its proxy configuration and locality are one pointer.
    #[test]
    fn a_plain_service_is_small() {
        let size = std::mem::size_of::<ServiceRec>();
        assert!(size <= 176, "{size}");
    }

    const GOLDEN_CHECKS: [&str; 2] = [
        "de0010a46e6f6465a66e6f64652d31a8636865636b5f6964ad736572766963653a7765622d31a46e616d65a468747470a6737461747573a770617373696e67a56e6f746573a661206e6f7465a66f7574707574b048545450204745543a20323030204f4baa736572766963655f6964a57765622d31ac736572766963655f6e616d65a3776562ac736572766963655f7461677392a27631a77072696d617279aa636865636b5f74797065a468747470a8696e74657276616ca3313073a774696d656f7574a23173ac6578706f7365645f706f7274cd53fcaa646566696e6974696f6e82a448545450b7687474703a2f2f6c6f63616c686f73742f6865616c7468a64d6574686f64a3474554ac6372656174655f696e64657807ac6d6f646966795f696e64657809",
        "de0010a46e6f6465a66e6f64652d31a8636865636b5f6964aa736572664865616c7468a46e616d65b253657266204865616c746820537461747573a6737461747573a770617373696e67a56e6f746573a0a66f7574707574a0aa736572766963655f6964a0ac736572766963655f6e616d65a0ac736572766963655f7461677390aa636865636b5f74797065a0a8696e74657276616ca0a774696d656f7574a0ac6578706f7365645f706f727400aa646566696e6974696f6e80ac6372656174655f696e64657807ac6d6f646966795f696e64657809",
    ];
    const GOLDEN: [&str; 2] = [
        "de0013a46e6f6465a66e6f64652d31a46b696e64ad636f6e6e6563742d70726f7879a26964b17765622d736964656361722d70726f7879a46e616d65b17765622d736964656361722d70726f7879a47461677392a27631a77072696d617279a761646472657373a831302e302e302e31b07461676765645f61646472657373657381a36c616e82a741646472657373a831302e302e302e31a4506f7274cd5208a46d65746182a2617aa161a776657273696f6ea5312e322e33a4706f7274cd5208ae7765696768745f70617373696e6703ae7765696768745f7761726e696e6702b3656e61626c655f7461675f6f76657272696465c3b270726f78795f6d6573685f6761746577617981a44d6f6465a56c6f63616cac70726f78795f6578706f736581a6436865636b73c3a570726f787989b064657374696e6174696f6e5f6e616d65a3776562ae64657374696e6174696f6e5f6964a57765622d31ad6c6f63616c5f61646472657373a93132372e302e302e31aa6c6f63616c5f706f7274cd1f90b16c6f63616c5f736f636b65745f70617468a0a46d6f6465ab7472616e73706172656e74ab7472616e73706172656e74c0a6636f6e66696781a870726f746f636f6ca468747470a9757073747265616d739182af44657374696e6174696f6e4e616d65a26462ad4c6f63616c42696e64506f7274cd23e7ae636f6e6e6563745f6e6174697665c3a86c6f63616c69747992a26575a465752d31ac6372656174655f696e64657807ac6d6f646966795f696e64657809",
        "de0013a46e6f6465a66e6f64652d31a46b696e64a0a26964a57765622d31a46e616d65a3776562a47461677391a27631a761646472657373a0b07461676765645f61646472657373657380a46d65746181a776657273696f6ea5312e322e33a4706f7274cd1f40ae7765696768745f70617373696e6701ae7765696768745f7761726e696e6701b3656e61626c655f7461675f6f76657272696465c2b270726f78795f6d6573685f6761746577617980ac70726f78795f6578706f736580a570726f787989b064657374696e6174696f6e5f6e616d65a0ae64657374696e6174696f6e5f6964a0ad6c6f63616c5f61646472657373a0aa6c6f63616c5f706f727400b16c6f63616c5f736f636b65745f70617468a0a46d6f6465a0ab7472616e73706172656e74c0a6636f6e66696780a9757073747265616d7390ae636f6e6e6563745f6e6174697665c2a86c6f63616c697479c0ac6372656174655f696e64657800ac6d6f646966795f696e64657800",
    ];
    const GOLDEN_NODE: &str = "87a26964a0a46e616d65a66e6f64652d31a761646472657373a831302e302e302e31b07461676765645f61646472657373657382a36c616ea831302e302e302e31a377616ea7312e322e332e34a46d65746182a2617aa161a47261636ba27231ac6372656174655f696e64657800ac6d6f646966795f696e64657800";
}
