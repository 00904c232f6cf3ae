//! Reads of the datacenter's state: one struct per query, tied to the type of its answer.
//!
//! Every read travels inside one [`crate::Read`] call (so consistency modes and blocking are
//! handled once, on the server), as a [`ReadRequest`] variant holding the query struct, and
//! comes back as the [`ReadResponse`] variant of the same name. [`Query`] ties the two: a
//! caller hands a query to `query` and gets its typed answer, and a server answers through
//! [`Query::reply`], so neither side can pair a query with another query's answer. The tags
//! are Consul's endpoint names.
//!
//! Adding a read: one `reads!` line here, its arm in the server's `run_read`, its route.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::{
    AutopilotConfiguration, CheckServiceNode, CoordinateEntry, HealthCheck, KvEntry, Node,
    NodeInfo, NodeService, RpcError, ServiceNode, SessionEntry,
};

/// A read and the type of its answer.
pub trait Query: Into<ReadRequest> + Send + 'static {
    type Out: Send + 'static;
    /// Consul's endpoint name.
    const NAME: &'static str;
    /// Wrap this query's answer (the server's side).
    fn reply(out: Self::Out) -> ReadResponse;
    /// This query's answer out of a response (the caller's side).
    fn from_response(resp: ReadResponse) -> Result<Self::Out, RpcError>;
}

macro_rules! reads {
    ($( $(#[$doc:meta])* $name:literal => $q:ident { $($(#[$fdoc:meta])* $field:ident : $fty:ty),* $(,)? } -> $out:ty; )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
            pub struct $q { $($(#[$fdoc])* pub $field: $fty,)* }

            impl From<$q> for ReadRequest {
                fn from(q: $q) -> ReadRequest {
                    ReadRequest::$q(q)
                }
            }

            impl Query for $q {
                type Out = $out;
                const NAME: &'static str = $name;
                fn reply(out: $out) -> ReadResponse {
                    ReadResponse::$q(out)
                }
                fn from_response(resp: ReadResponse) -> Result<$out, RpcError> {
                    match resp {
                        ReadResponse::$q(out) => Ok(out),
                        #[allow(unreachable_patterns)]
                        other => Err(RpcError::Internal(format!(
                            "{} answered with a reply to {}", $name, other.name()
                        ))),
                    }
                }
            }
        )*

        /// A read against the datacenter's state, tagged with Consul's endpoint names.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        pub enum ReadRequest {
            $( #[serde(rename = $name)] $q($q), )*
        }

        /// The answer to a [`ReadRequest`], in the variant of the same name (not `Eq`:
        /// coordinates are floats).
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub enum ReadResponse {
            $( #[serde(rename = $name)] $q($out), )*
        }

        impl ReadRequest {
            pub fn name(&self) -> &'static str {
                match self { $( ReadRequest::$q(_) => $name, )* }
            }
        }

        impl ReadResponse {
            pub fn name(&self) -> &'static str {
                match self { $( ReadResponse::$q(_) => $name, )* }
            }
        }
    };
}

/// `?node-meta=key:value` pairs; a node matches when it has every pair.
pub type NodeMetaFilter = Vec<(String, String)>;

reads! {
    /// Every node (`/v1/catalog/nodes`).
    "Catalog.ListNodes" => CatalogNodes { node_meta: NodeMetaFilter } -> Vec<Node>;
    /// Every service name with the union of its instances' tags (`/v1/catalog/services`).
    "Catalog.ListServices" => CatalogServices { node_meta: NodeMetaFilter }
        -> BTreeMap<String, Vec<String>>;
    /// A service's instances, with every one of `tags` (`/v1/catalog/service/:name`).
    "Catalog.ServiceNodes" => CatalogServiceNodes {
        service: String,
        tags: Vec<String>,
        node_meta: NodeMetaFilter,
        /// The Connect-capable instances instead: proxies for the service, and its
        /// Connect-native instances (`/v1/catalog/connect/:name`).
        #[serde(default)]
        connect: bool,
    } -> Vec<ServiceNode>;
    /// A node and its services, `None` for an unknown node (`/v1/catalog/node/:node`).
    "Catalog.NodeServices" => CatalogNodeServices { node: String }
        -> Option<(Node, Vec<NodeService>)>;
    /// A node's checks (`/v1/health/node/:node`).
    "Health.NodeChecks" => HealthNodeChecks { node: String } -> Vec<HealthCheck>;
    /// A service's checks (`/v1/health/checks/:service`).
    "Health.ServiceChecks" => HealthServiceChecks { service: String } -> Vec<HealthCheck>;
    /// Checks in a state, or `any` (`/v1/health/state/:state`).
    "Health.ChecksInState" => HealthChecksInState { state: String } -> Vec<HealthCheck>;
    /// A service's instances with their node and checks (`/v1/health/service/:name`).
    "Health.ServiceNodes" => HealthServiceNodes {
        service: String,
        tags: Vec<String>,
        /// Only instances whose every check passes.
        passing: bool,
        node_meta: NodeMetaFilter,
        /// The Connect-capable instances instead (`/v1/health/connect/:name`).
        #[serde(default)]
        connect: bool,
    } -> Vec<CheckServiceNode>;
    /// One key (`/v1/kv/:key`).
    "KVS.Get" => KvGet { key: String } -> Option<KvEntry>;
    /// Every key under a prefix (`?recurse`).
    "KVS.List" => KvList { prefix: String } -> Vec<KvEntry>;
    /// Key names under a prefix, up to the separator (`?keys`).
    "KVS.ListKeys" => KvKeys { prefix: String, separator: Option<String> } -> Vec<String>;
    /// One session; empty when unknown (`/v1/session/info/:id`).
    "Session.Get" => SessionGet { id: String } -> Vec<SessionEntry>;
    /// Every session (`/v1/session/list`).
    "Session.List" => SessionList {} -> Vec<SessionEntry>;
    /// A node's sessions (`/v1/session/node/:node`).
    "Session.NodeSessions" => SessionNode { node: String } -> Vec<SessionEntry>;
    /// Every node's LAN coordinate (`/v1/coordinate/nodes`).
    "Coordinate.ListNodes" => CoordinateNodes {} -> Vec<CoordinateEntry>;
    /// One node's LAN coordinates, one per segment (`/v1/coordinate/node/:node`).
    "Coordinate.Node" => CoordinateNode { node: String } -> Vec<CoordinateEntry>;
    /// Autopilot's configuration (`/v1/operator/autopilot/configuration`).
    "Operator.AutopilotGetConfiguration" => AutopilotGetConfig {} -> AutopilotConfiguration;
    /// Every node with its services and checks (`/v1/internal/ui/nodes`).
    "Internal.NodeDump" => InternalNodeDump {} -> Vec<NodeInfo>;
    /// One node (by name or unique ID prefix) with its services and checks; empty when
    /// unknown (`/v1/internal/ui/node/:node`).
    "Internal.NodeInfo" => InternalNodeInfo { node: String } -> Vec<NodeInfo>;
    /// Every service instance with its node and checks (`/v1/internal/ui/services`).
    "Internal.ServiceDump" => InternalServiceDump {} -> Vec<CheckServiceNode>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_come_back_typed_and_mismatches_are_errors() {
        let keys = KvKeys::from_response(KvKeys::reply(vec!["a".into()])).unwrap();
        assert_eq!(keys, vec!["a".to_string()]);
        let e = KvList::from_response(KvKeys::reply(vec![])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "KVS.List answered with a reply to KVS.ListKeys"
        );
        assert_eq!(ReadRequest::from(SessionList {}).name(), "Session.List");
    }
}
