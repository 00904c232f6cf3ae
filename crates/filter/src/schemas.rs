//! The selectors each endpoint's filter accepts: Consul's field names and kinds, from its API
//! docs' "Filtering" tables and the Go structs behind them (`structs.HealthCheck`,
//! `structs.ServiceNode`, `api.AgentService`, …).

/// What a selector names, which decides the operators it takes (go-bexpr's rules):
/// strings `== != in matches` (and negations), bools and numbers `== !=`, lists of strings
/// `in`/`is empty`, maps `in` (on keys)/`is empty`, lists of structs `is empty`.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Str,
    Bool,
    Int,
    StrList,
    /// A map of strings (`Meta`): `Meta.key` is a string.
    StrMap,
    /// A map of structs (`TaggedAddresses` of a service): `TaggedAddresses.lan.Port`.
    StructMap(&'static Schema),
    Struct(&'static Schema),
    /// A list of structs (`Checks`): a selector through it matches when any element does.
    StructList(&'static Schema),
}

/// One selectable field.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
}

/// The fields of a type.
pub type Schema = [Field];

const fn f(name: &'static str, kind: Kind) -> Field {
    Field { name, kind }
}

use Kind::*;

const MESH_GATEWAY: &Schema = &[f("Mode", Str)];

const UPSTREAM: &Schema = &[
    f("Datacenter", Str),
    f("DestinationName", Str),
    f("DestinationNamespace", Str),
    f("DestinationPartition", Str),
    f("DestinationPeer", Str),
    f("DestinationType", Str),
    f("LocalBindAddress", Str),
    f("LocalBindPort", Int),
    f("LocalBindSocketPath", Str),
    f("MeshGateway", Struct(MESH_GATEWAY)),
];

const PROXY: &Schema = &[
    f("DestinationServiceID", Str),
    f("DestinationServiceName", Str),
    f("LocalServiceAddress", Str),
    f("LocalServicePort", Int),
    f("LocalServiceSocketPath", Str),
    f("Mode", Str),
    f(
        "TransparentProxy",
        Struct(&[f("OutboundListenerPort", Int), f("DialedDirectly", Bool)]),
    ),
    f("MeshGateway", Struct(MESH_GATEWAY)),
    f("Upstreams", StructList(UPSTREAM)),
];

const CONNECT: &Schema = &[f("Native", Bool)];

const SERVICE_ADDRESS: &Schema = &[f("Address", Str), f("Port", Int)];

const WEIGHTS: &Schema = &[f("Passing", Int), f("Warning", Int)];

/// `structs.HealthCheck`: `/v1/agent/checks`, `/v1/health/node|checks|state`.
/// What an ACL binding rule's `Selector` reads: a jwt/oidc method's mapped claims
/// (`value.x`, `list.x`), or a kubernetes method's service account (`serviceaccount.name`,
/// `serviceaccount.namespace`, `serviceaccount.uid`).
pub static BINDING_RULE: &Schema = &[
    f("value", StrMap),
    f("list", StrMap),
    f("serviceaccount", StrMap),
];

pub static HEALTH_CHECK: &Schema = &[
    f("Node", Str),
    f("CheckID", Str),
    f("Name", Str),
    f("Status", Str),
    f("Notes", Str),
    f("Output", Str),
    f("ServiceID", Str),
    f("ServiceName", Str),
    f("ServiceTags", StrList),
    f("Type", Str),
    f("Interval", Str),
    f("Timeout", Str),
    f("ExposedPort", Int),
    f("PeerName", Str),
];

/// `api.AgentService` / `structs.NodeService`: `/v1/agent/services`, `/v1/catalog/node/:n`,
/// `/v1/catalog/node-services/:n`.
pub static SERVICE: &Schema = &[
    f("Kind", Str),
    f("ID", Str),
    f("Service", Str),
    f("Tags", StrList),
    f("Address", Str),
    f("TaggedAddresses", StructMap(SERVICE_ADDRESS)),
    f("Meta", StrMap),
    f("Port", Int),
    f("SocketPath", Str),
    f("Weights", Struct(WEIGHTS)),
    f("EnableTagOverride", Bool),
    f("Proxy", Struct(PROXY)),
    f("Connect", Struct(CONNECT)),
    f("PeerName", Str),
];

/// `structs.Node`: `/v1/catalog/nodes`.
pub static NODE: &Schema = &[
    f("ID", Str),
    f("Node", Str),
    f("Address", Str),
    f("Datacenter", Str),
    f("TaggedAddresses", StrMap),
    f("Meta", StrMap),
    f("Partition", Str),
    f("PeerName", Str),
];

/// `structs.ServiceNode`: `/v1/catalog/service/:s`, and per instance `/v1/catalog/services`.
pub static SERVICE_NODE: &Schema = &[
    f("ID", Str),
    f("Node", Str),
    f("Address", Str),
    f("Datacenter", Str),
    f("TaggedAddresses", StrMap),
    f("NodeMeta", StrMap),
    f("ServiceKind", Str),
    f("ServiceID", Str),
    f("ServiceName", Str),
    f("ServiceTags", StrList),
    f("ServiceAddress", Str),
    f("ServiceTaggedAddresses", StructMap(SERVICE_ADDRESS)),
    f("ServiceWeights", Struct(WEIGHTS)),
    f("ServiceMeta", StrMap),
    f("ServicePort", Int),
    f("ServiceSocketPath", Str),
    f("ServiceEnableTagOverride", Bool),
    f("ServiceProxy", Struct(PROXY)),
    f("ServiceConnect", Struct(CONNECT)),
    f("PeerName", Str),
];

/// `structs.CheckServiceNode`: `/v1/health/service/:s`.
pub static CHECK_SERVICE_NODE: &Schema = &[
    f("Node", Struct(NODE)),
    f("Service", Struct(SERVICE)),
    f("Checks", StructList(HEALTH_CHECK)),
];

/// `structs.NodeInfo`: `/v1/internal/ui/nodes`.
pub static NODE_INFO: &Schema = &[
    f("ID", Str),
    f("Node", Str),
    f("Partition", Str),
    f("PeerName", Str),
    f("Address", Str),
    f("TaggedAddresses", StrMap),
    f("Meta", StrMap),
    f("Services", StructList(SERVICE)),
    f("Checks", StructList(HEALTH_CHECK)),
];

/// `api.AgentMember`: `/v1/agent/members`.
pub static MEMBER: &Schema = &[
    f("Name", Str),
    f("Addr", Str),
    f("Port", Int),
    f("Tags", StrMap),
    f("Status", Int),
    f("ProtocolMin", Int),
    f("ProtocolMax", Int),
    f("ProtocolCur", Int),
    f("DelegateMin", Int),
    f("DelegateMax", Int),
    f("DelegateCur", Int),
];
