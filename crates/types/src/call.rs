//! Calls a server answers: one request struct per operation, tied to its reply type.
//!
//! Every front end reaches the datacenter's state through one path: a handler builds a request
//! (say [`StatusLeader`]) and hands it to the agent's `call`, which serves it on the local
//! server or sends it to one over RPC; a server forwards it to the leader when the request says
//! it must be served there ([`ServerRequest::route`]). Requests travel as one enum,
//! [`ServerRequest`], tagged with Consul's endpoint names (`Status.Leader`,
//! `Operator.RaftGetConfiguration`, …), and come back as [`ServerReply`]; [`ServerCall`] ties
//! each request struct to its variant of both, so a caller gets the typed reply and the one
//! place that could see a mismatched reply is [`ServerCall::from_reply`].
//!
//! Adding an endpoint: a request struct and one `server_calls!` line here, its handler arm in
//! the server (`proconsul_server::Server::serve`), its HTTP route.

use serde::{Deserialize, Serialize};

use crate::acl::*;
use crate::prepared_query::*;
use crate::{
    AutopilotState, Consistency, OperatorHealth, QueryMeta, QueryOptions, RaftConfiguration,
    ReadRequest, ReadResponse, RpcError, WriteRequest, WriteResponse,
};

/// A request a server answers, and the type of its answer.
pub trait ServerCall: Send + 'static {
    type Reply: Send + 'static;
    /// Consul's endpoint name.
    const NAME: &'static str;
    fn into_request(self) -> ServerRequest;
    /// The reply of this request out of the reply enum.
    fn from_reply(reply: ServerReply) -> Result<Self::Reply, RpcError>;
}

/// Where a request is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// By whichever server receives it, from its own state (status, `?stale` reads).
    AnyServer,
    /// By the leader: a follower forwards it.
    Leader,
}

macro_rules! server_calls {
    ($( $(#[$doc:meta])* $name:literal => $req:ident -> $reply:ty; )*) => {
        /// Every request a server answers, tagged with Consul's endpoint names.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone, Serialize, Deserialize)]
        pub enum ServerRequest {
            $( $(#[$doc])* #[serde(rename = $name)] $req($req), )*
        }

        /// The answer to a [`ServerRequest`], in the variant of the same name.
        #[derive(Debug, Clone, Serialize, Deserialize)]
        pub enum ServerReply {
            $( #[serde(rename = $name)] $req($reply), )*
        }

        impl ServerRequest {
            /// Consul's endpoint name.
            pub fn name(&self) -> &'static str {
                match self { $( ServerRequest::$req(_) => $name, )* }
            }
        }

        impl ServerReply {
            pub fn name(&self) -> &'static str {
                match self { $( ServerReply::$req(_) => $name, )* }
            }
        }

        $(
            impl ServerCall for $req {
                type Reply = $reply;
                const NAME: &'static str = $name;
                fn into_request(self) -> ServerRequest {
                    ServerRequest::$req(self)
                }
                fn from_reply(reply: ServerReply) -> Result<$reply, RpcError> {
                    match reply {
                        ServerReply::$req(r) => Ok(r),
                        #[allow(unreachable_patterns)]
                        other => Err(RpcError::Internal(format!(
                            "{} answered with a reply to {}", $name, other.name()
                        ))),
                    }
                }
            }
        )*
    };
}

server_calls! {
    /// The leader's RPC address, or empty.
    "Status.Leader" => StatusLeader -> String;
    /// The Raft voters' RPC addresses.
    "Status.Peers" => StatusPeers -> Vec<String>;
    /// Every datacenter the WAN pool knows, nearest first (`/v1/catalog/datacenters`).
    "Catalog.ListDatacenters" => CatalogListDatacenters -> Vec<String>;
    /// Broadcast a user event in the serving datacenter's LAN pool (`event fire
    /// -datacenter`: a server of that datacenter fires it).
    "Internal.EventFire" => EventFire -> ();
    /// A server's own view of the Raft cluster (autopilot asks each server).
    "Status.RaftStats" => StatusRaftStats -> RaftStats;
    /// A read of the datacenter's state (catalog, health, KV, sessions, coordinates, …).
    "Read" => Read -> (QueryMeta, ReadResponse);
    /// A change to the datacenter's state, committed through Raft.
    "Write" => Write -> (u64, WriteResponse);
    /// The Raft configuration (`/v1/operator/raft/configuration`).
    "Operator.RaftGetConfiguration" => RaftGetConfiguration -> RaftConfiguration;
    /// Remove a server from the Raft configuration by ID or address.
    "Operator.RaftRemovePeer" => RaftRemovePeer -> ();
    /// Hand leadership to a voter (any other voter without `id`).
    "Operator.RaftTransferLeader" => RaftTransferLeader -> ();
    /// Autopilot's view of server health.
    "Operator.AutopilotServerHealth" => AutopilotServerHealth -> OperatorHealth;
    /// Autopilot's state.
    "Operator.AutopilotState" => AutopilotGetState -> AutopilotState;
    /// Counts of what the catalog holds (`/v1/operator/usage`).
    "Operator.Usage" => OperatorUsage -> (QueryMeta, Usage);
    /// The whole state at an index (`GET /v1/snapshot`).
    "Snapshot.Save" => SnapshotSave -> (QueryMeta, SnapshotData);
    /// Stand for election now: the target of a leadership transfer, asked by the leader.
    "Raft.Elect" => RaftElect -> ();
    /// The first management token (`PUT /v1/acl/bootstrap`).
    "ACL.BootstrapTokens" => AclBootstrap -> AclToken;
    "ACL.TokenSet" => AclTokenSet -> AclToken;
    "ACL.TokenRead" => AclTokenRead -> (QueryMeta, Option<AclToken>);
    "ACL.TokenClone" => AclTokenClone -> AclToken;
    "ACL.TokenDelete" => AclTokenDelete -> ();
    "ACL.TokenList" => AclTokenList -> (QueryMeta, Vec<AclToken>);
    "ACL.PolicySet" => AclPolicySet -> AclPolicy;
    "ACL.PolicyRead" => AclPolicyRead -> (QueryMeta, Option<AclPolicy>);
    "ACL.PolicyDelete" => AclPolicyDelete -> ();
    "ACL.PolicyList" => AclPolicyList -> (QueryMeta, Vec<AclPolicyStub>);
    "ACL.RoleSet" => AclRoleSet -> AclRole;
    "ACL.RoleRead" => AclRoleRead -> (QueryMeta, Option<AclRole>);
    "ACL.RoleDelete" => AclRoleDelete -> ();
    "ACL.RoleList" => AclRoleList -> (QueryMeta, Vec<AclRole>);
    "ACL.AuthMethodSet" => AclAuthMethodSet -> AclAuthMethod;
    "ACL.AuthMethodRead" => AclAuthMethodRead -> (QueryMeta, Option<AclAuthMethod>);
    "ACL.AuthMethodDelete" => AclAuthMethodDelete -> ();
    "ACL.AuthMethodList" => AclAuthMethodList -> (QueryMeta, Vec<AclAuthMethod>);
    "ACL.BindingRuleSet" => AclBindingRuleSet -> AclBindingRule;
    "ACL.BindingRuleRead" => AclBindingRuleRead -> (QueryMeta, Option<AclBindingRule>);
    "ACL.BindingRuleDelete" => AclBindingRuleDelete -> ();
    "ACL.BindingRuleList" => AclBindingRuleList -> (QueryMeta, Vec<AclBindingRule>);
    "ACL.Login" => AclLogin -> AclToken;
    "ACL.Logout" => AclLogout -> ();
    /// The caller's token, resolved to what it grants (client agents authorising their own
    /// endpoints).
    "ACL.ResolveIdentity" => AclResolveIdentity -> AclIdentity;
    /// Create, update or delete a prepared query; answers its ID.
    "PreparedQuery.Apply" => PreparedQueryApply -> String;
    "PreparedQuery.Get" => PreparedQueryGet -> (QueryMeta, Vec<PreparedQuery>);
    "PreparedQuery.List" => PreparedQueryList -> (QueryMeta, Vec<PreparedQuery>);
    /// Run a prepared query, failing over to other datacenters as it says.
    "PreparedQuery.Execute" => PreparedQueryExecute -> (QueryMeta, PreparedQueryExecuteResponse);
    "PreparedQuery.Explain" => PreparedQueryExplain -> (QueryMeta, PreparedQueryExplainResponse);
    /// The primary datacenter's ACL state, for a secondary's replication.
    "ACL.Replicate" => AclReplicate -> AclReplicationBatch;
}

impl ServerRequest {
    /// Which server must serve this request.
    pub fn route(&self) -> Route {
        match self {
            ServerRequest::StatusLeader(_)
            | ServerRequest::StatusPeers(_)
            | ServerRequest::StatusRaftStats(_)
            | ServerRequest::CatalogListDatacenters(_)
            | ServerRequest::EventFire(_)
            | ServerRequest::RaftElect(_) => Route::AnyServer,
            ServerRequest::Read(r) if r.opts.consistency == Consistency::Stale => Route::AnyServer,
            ServerRequest::OperatorUsage(r) if r.stale => Route::AnyServer,
            ServerRequest::RaftGetConfiguration(r) if r.stale => Route::AnyServer,
            ServerRequest::SnapshotSave(r) if r.stale => Route::AnyServer,
            ServerRequest::PreparedQueryGet(r) if r.opts.consistency == Consistency::Stale => {
                Route::AnyServer
            }
            ServerRequest::PreparedQueryList(r) if r.opts.consistency == Consistency::Stale => {
                Route::AnyServer
            }
            _ => Route::Leader,
        }
    }

    /// Safe to send again when the first try may have reached a server (a read, not a write).
    pub fn is_idempotent(&self) -> bool {
        !matches!(
            self,
            ServerRequest::Write(_)
                | ServerRequest::RaftRemovePeer(_)
                | ServerRequest::RaftTransferLeader(_)
                | ServerRequest::AclBootstrap(_)
                | ServerRequest::AclTokenSet(_)
                | ServerRequest::AclTokenClone(_)
                | ServerRequest::AclTokenDelete(_)
                | ServerRequest::AclPolicySet(_)
                | ServerRequest::AclPolicyDelete(_)
                | ServerRequest::AclRoleSet(_)
                | ServerRequest::AclRoleDelete(_)
                | ServerRequest::AclAuthMethodSet(_)
                | ServerRequest::AclAuthMethodDelete(_)
                | ServerRequest::AclBindingRuleSet(_)
                | ServerRequest::AclBindingRuleDelete(_)
                | ServerRequest::AclLogin(_)
                | ServerRequest::AclLogout(_)
                | ServerRequest::PreparedQueryApply(_)
        )
    }

    /// The datacenter the caller asked for (`?dc=`), empty for the agent's own.
    pub fn datacenter(&self) -> &str {
        match self {
            ServerRequest::Read(r) => &r.opts.datacenter,
            ServerRequest::Write(w) => &w.datacenter,
            ServerRequest::OperatorUsage(u) => &u.datacenter,
            ServerRequest::StatusLeader(r) => &r.datacenter,
            ServerRequest::StatusPeers(r) => &r.datacenter,
            ServerRequest::RaftGetConfiguration(r) => &r.datacenter,
            ServerRequest::AutopilotServerHealth(r) => &r.datacenter,
            ServerRequest::AutopilotGetState(r) => &r.datacenter,
            ServerRequest::SnapshotSave(r) => &r.datacenter,
            ServerRequest::EventFire(r) => &r.datacenter,
            ServerRequest::PreparedQueryApply(r) => &r.datacenter,
            ServerRequest::PreparedQueryGet(r) => &r.opts.datacenter,
            ServerRequest::PreparedQueryList(r) => &r.opts.datacenter,
            ServerRequest::PreparedQueryExecute(r) => &r.datacenter,
            ServerRequest::PreparedQueryExplain(r) => &r.datacenter,
            ServerRequest::AclReplicate(r) => &r.datacenter,
            ServerRequest::AclTokenSet(r) => &r.datacenter,
            ServerRequest::AclTokenClone(r) => &r.datacenter,
            ServerRequest::AclTokenDelete(r) => &r.datacenter,
            ServerRequest::AclPolicySet(r) => &r.datacenter,
            ServerRequest::AclPolicyDelete(r) => &r.datacenter,
            ServerRequest::AclRoleSet(r) => &r.datacenter,
            ServerRequest::AclRoleDelete(r) => &r.datacenter,
            ServerRequest::StatusRaftStats(_)
            | ServerRequest::RaftRemovePeer(_)
            | ServerRequest::RaftTransferLeader(_)
            | ServerRequest::RaftElect(_) => "",
            // ACL state is the primary datacenter's; `?dc=` is not offered on these.
            _ => "",
        }
    }

    /// Address an ACL write to `datacenter` (a secondary's server sending it to the
    /// primary); `false` for requests that are not such writes.
    pub fn set_acl_datacenter(&mut self, datacenter: &str) -> bool {
        let dc = match self {
            ServerRequest::AclTokenSet(r) => &mut r.datacenter,
            ServerRequest::AclTokenClone(r) => &mut r.datacenter,
            ServerRequest::AclTokenDelete(r) => &mut r.datacenter,
            ServerRequest::AclPolicySet(r) => &mut r.datacenter,
            ServerRequest::AclPolicyDelete(r) => &mut r.datacenter,
            ServerRequest::AclRoleSet(r) => &mut r.datacenter,
            ServerRequest::AclRoleDelete(r) => &mut r.datacenter,
            _ => return false,
        };
        *dc = datacenter.to_string();
        true
    }

    /// How long a caller waits for the answer: a blocking read may take its whole wait (plus
    /// Consul's jitter of up to 1/16).
    pub fn max_wait(&self) -> Option<std::time::Duration> {
        match self {
            ServerRequest::Read(r) => r.opts.max_wait.map(|w| w + w / 16),
            ServerRequest::PreparedQueryGet(r) => r.opts.max_wait.map(|w| w + w / 16),
            ServerRequest::PreparedQueryList(r) => r.opts.max_wait.map(|w| w + w / 16),
            _ => None,
        }
    }
}

/// `Status.Leader`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatusLeader {
    /// `?dc=`: empty for the agent's own.
    #[serde(default)]
    pub datacenter: String,
}

/// `Status.Peers`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatusPeers {
    /// `?dc=`: empty for the agent's own.
    #[serde(default)]
    pub datacenter: String,
}

/// `Internal.EventFire`: the event (its ID already chosen) for `datacenter`'s LAN pool.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EventFire {
    #[serde(default)]
    pub datacenter: String,
    pub event: crate::UserEvent,
}

/// `Catalog.ListDatacenters`: answered by any server from its WAN pool.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CatalogListDatacenters {}

/// `Status.RaftStats`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatusRaftStats {}

/// A server's view of the Raft cluster.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RaftStats {
    /// `ip:port` of the leader, or empty.
    pub leader: String,
    /// Voters' RPC addresses.
    pub peers: Vec<String>,
    /// Milliseconds since this server last heard from the leader (0 on the leader).
    #[serde(default)]
    pub last_contact_ms: u64,
    /// This server's last log index and current term.
    #[serde(default)]
    pub last_index: u64,
    #[serde(default)]
    pub term: u64,
}

/// A read with its query options.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Read {
    pub req: ReadRequest,
    pub opts: QueryOptions,
}

/// A write, for the datacenter named (empty: the agent's own).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Write {
    pub req: WriteRequest,
    #[serde(default)]
    pub datacenter: String,
}

/// `Operator.RaftGetConfiguration`: the leader's view unless `stale`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RaftGetConfiguration {
    pub stale: bool,
    /// `?dc=`: empty for the agent's own.
    #[serde(default)]
    pub datacenter: String,
}

/// `Operator.RaftRemovePeer`: exactly one of `id` (the node ID a server is known by) and
/// `address` (its RPC `ip:port`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RaftRemovePeer {
    pub id: String,
    pub address: String,
}

/// `Operator.RaftTransferLeader`: to the server with this node ID, or any other voter.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RaftTransferLeader {
    pub id: String,
}

/// `Operator.AutopilotServerHealth`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AutopilotServerHealth {
    /// `?dc=`: empty for the agent's own.
    #[serde(default)]
    pub datacenter: String,
}

/// `Operator.AutopilotState`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AutopilotGetState {
    /// `?dc=`: empty for the agent's own.
    #[serde(default)]
    pub datacenter: String,
}

/// `Operator.Usage`: the leader's counts unless `stale`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OperatorUsage {
    pub stale: bool,
    /// `?dc=`: empty for the agent's own.
    #[serde(default)]
    pub datacenter: String,
}

/// What `/v1/operator/usage` reports for a datacenter (Consul's `ServiceUsage` and node
/// count, open-source fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Usage {
    /// Distinct service names.
    pub services: u64,
    /// Registered service instances.
    pub service_instances: u64,
    /// Connect instances per kind (`connect-native`, `connect-proxy`, …): none without Connect.
    pub connect_service_instances: std::collections::BTreeMap<String, u64>,
    /// Instances that are not Consul's own (`consul`), Connect proxies or gateways.
    pub billable_service_instances: u64,
    pub nodes: u64,
}

/// `Snapshot.Save`: the leader's state unless `stale`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SnapshotSave {
    pub stale: bool,
    /// `?dc=`: empty for the agent's own.
    #[serde(default)]
    pub datacenter: String,
}

/// A state snapshot: the index and term it reflects, and the store's dump.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotData {
    pub index: u64,
    pub term: u64,
    #[serde(with = "serde_bytes")]
    pub state: Vec<u8>,
}

/// `Raft.Elect`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RaftElect {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_come_back_typed_and_mismatches_are_errors() {
        let leader = StatusLeader::from_reply(ServerReply::StatusLeader("a:1".into())).unwrap();
        assert_eq!(leader, "a:1");
        let e = StatusPeers::from_reply(ServerReply::StatusLeader("a:1".into())).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Status.Peers answered with a reply to Status.Leader"
        );
    }

    #[test]
    fn routes_follow_consistency() {
        let read = |consistency| {
            ServerRequest::Read(Read {
                req: crate::SessionList {}.into(),
                opts: QueryOptions {
                    consistency,
                    ..Default::default()
                },
            })
        };
        assert_eq!(read(Consistency::Stale).route(), Route::AnyServer);
        assert_eq!(read(Consistency::Default).route(), Route::Leader);
        assert_eq!(read(Consistency::Consistent).route(), Route::Leader);
        assert_eq!(
            StatusLeader::default().into_request().route(),
            Route::AnyServer
        );
        assert_eq!(
            SnapshotSave::default().into_request().route(),
            Route::Leader
        );
        assert!(!RaftRemovePeer::default().into_request().is_idempotent());
        assert!(read(Consistency::Default).is_idempotent());
    }
}
