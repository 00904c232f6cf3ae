//! The one interface between the HTTP layer and the agent.
//!
//! Datacenter state goes through [`Backend::call`]: a typed request
//! ([`proconsul_types::ServerCall`]) that the agent serves on its own server or sends to one —
//! the same request a client agent forwards and a follower hands to the leader. `query` (a
//! typed read) and `write` are that call for the two general requests. Agent-local state (its services,
//! checks, members, gossip) has its own methods.

use std::collections::BTreeMap;
use std::future::Future;

use proconsul_types::{
    AgentMember, AgentService, CheckDefinition, HealthCheck, Query, QueryMeta, QueryOptions, Read,
    RpcError, ServerCall, ServiceDefinition, UserEvent, Write, WriteRequest, WriteResponse,
};

/// A service registration through the agent API, with its `?replace-existing-checks` flag.
#[derive(Debug, Clone)]
pub struct ServiceRegistration {
    pub definition: ServiceDefinition,
    pub replace_existing_checks: bool,
}

/// What the HTTP API needs from the agent.
pub trait Backend: Send + Sync + 'static {
    /// Serve a request on a server of the datacenter (this agent's, or one it reaches).
    fn call<R: ServerCall>(
        &self,
        req: R,
    ) -> impl Future<Output = Result<R::Reply, RpcError>> + Send;

    /// Serve a read (blocking if `opts.min_index` is set) and take its typed answer.
    fn query<Q: Query>(
        &self,
        q: Q,
        opts: QueryOptions,
    ) -> impl Future<Output = Result<(QueryMeta, Q::Out), RpcError>> + Send {
        async move {
            let (meta, resp) = self
                .call(Read {
                    req: q.into(),
                    opts,
                })
                .await?;
            Ok((meta, Q::from_response(resp)?))
        }
    }

    /// Commit a write; returns the Raft index it was committed at.
    fn write(
        &self,
        req: WriteRequest,
        datacenter: String,
    ) -> impl Future<Output = Result<(u64, WriteResponse), RpcError>> + Send {
        self.call(Write { req, datacenter })
    }

    /// What the caller's token may do on this agent (`None`: ACLs are off).
    fn caller_rights(
        &self,
    ) -> impl Future<Output = Result<Option<std::sync::Arc<crate::Rights>>, RpcError>> + Send;

    /// `acl.enabled`.
    fn acl_enabled(&self) -> bool;

    /// `acl.default_policy = "allow"` (Consul's default).
    fn acl_default_allow(&self) -> bool;

    /// `/v1/acl/replication`: how this agent's server replicates ACLs from the primary
    /// datacenter (a client agent, which has no server, reports none).
    fn acl_replication(&self) -> proconsul_types::AclReplicationStatus {
        proconsul_types::AclReplicationStatus {
            last_success: "0001-01-01T00:00:00Z".into(),
            last_error: "0001-01-01T00:00:00Z".into(),
            ..Default::default()
        }
    }

    /// `PUT /v1/agent/token/:kind`: replace one of the agent's ACL tokens (`NotFound` for a
    /// kind Consul does not have).
    fn set_agent_token(&self, kind: &str, token: String) -> Result<(), RpcError>;

    /// The agent's metrics (`/v1/agent/metrics`).
    fn telemetry(&self) -> std::sync::Arc<proconsul_telemetry::Telemetry>;
    /// `telemetry.prometheus_retention_time` > 0: `?format=prometheus` answers.
    fn prometheus_enabled(&self) -> bool;
    /// The agent's cache of `?cached` reads.
    fn query_cache(&self) -> &crate::QueryCache;
    /// The agent's datacenter.
    fn datacenter(&self) -> String;
    /// Known datacenters, local first.
    fn datacenters(&self) -> impl Future<Output = Result<Vec<String>, RpcError>> + Send;
    /// The agent's node name.
    fn node_name(&self) -> String;
    /// Where the web UI is served (`ui_config.content_path`, `/ui/` by default); `None` when
    /// `ui_config.enabled` is off. Read once, when the router is built: as in Consul, turning
    /// the UI on or moving it takes a restart.
    fn ui_content_path(&self) -> Option<String>;
    /// Largest KV value accepted (`limits.kv_max_value_size`).
    fn kv_max_value_size(&self) -> u64;
    /// `translate_wan_addrs`: other datacenters' rows carry WAN addresses.
    fn translate_wan_addrs(&self) -> bool;

    /// `/v1/agent/self`.
    fn agent_self(&self) -> serde_json::Value;
    /// `/v1/agent/host`: the machine's figures, in Consul's shape.
    fn agent_host(&self) -> serde_json::Value;
    /// `/v1/agent/members`.
    fn agent_members(&self, wan: bool) -> Vec<AgentMember>;
    /// `/v1/agent/services`.
    fn agent_services(&self) -> BTreeMap<String, AgentService>;
    /// One of the agent's services (`/v1/agent/service/:id`, a registration's checks).
    fn agent_service(&self, id: &str) -> Option<AgentService> {
        self.agent_services().remove(id)
    }
    /// Ticks when one of the agent's services is added, replaced or removed.
    fn agent_services_watch(&self) -> tokio::sync::watch::Receiver<u64>;
    /// `/v1/agent/checks`.
    fn agent_checks(&self) -> BTreeMap<String, HealthCheck>;
    fn agent_register_service(
        &self,
        reg: ServiceRegistration,
    ) -> impl Future<Output = Result<(), RpcError>> + Send;
    fn agent_deregister_service(
        &self,
        id: String,
    ) -> impl Future<Output = Result<(), RpcError>> + Send;
    fn agent_register_check(
        &self,
        def: CheckDefinition,
    ) -> impl Future<Output = Result<(), RpcError>> + Send;
    fn agent_deregister_check(
        &self,
        id: String,
    ) -> impl Future<Output = Result<(), RpcError>> + Send;
    /// TTL check update: `status` is passing|warning|critical.
    fn agent_update_ttl(
        &self,
        id: String,
        status: String,
        output: String,
    ) -> impl Future<Output = Result<(), RpcError>> + Send;
    fn agent_join(
        &self,
        addr: String,
        wan: bool,
    ) -> impl Future<Output = Result<(), RpcError>> + Send;
    fn agent_leave(&self) -> impl Future<Output = Result<(), RpcError>> + Send;
    /// `force-leave`: mark a failed member left (`prune`: forget it now).
    fn agent_force_leave(
        &self,
        node: String,
        prune: bool,
        wan: bool,
    ) -> impl Future<Output = Result<(), RpcError>> + Send;
    fn agent_reload(&self) -> impl Future<Output = Result<(), RpcError>> + Send;
    /// Node maintenance mode on/off (`_node_maintenance` check).
    fn agent_node_maintenance(
        &self,
        enable: bool,
        reason: String,
    ) -> impl Future<Output = Result<(), RpcError>> + Send;
    /// Service maintenance mode on/off (`_service_maintenance:<id>` check).
    fn agent_service_maintenance(
        &self,
        id: String,
        enable: bool,
        reason: String,
    ) -> impl Future<Output = Result<(), RpcError>> + Send;

    /// `/v1/operator/keyring`: `op` is `list`, `install`, `use` or `remove` (with `key`);
    /// one answer per gossip pool (WAN first on servers).
    fn operator_keyring(
        &self,
        op: &str,
        key: String,
    ) -> impl Future<Output = Result<Vec<proconsul_types::KeyringResponse>, RpcError>> + Send;

    /// `PUT /v1/snapshot`: verify the archive and restore it on every server.
    fn snapshot_restore(
        &self,
        archive: Vec<u8>,
    ) -> impl Future<Output = Result<(), RpcError>> + Send;

    /// Fire a user event in `datacenter` (empty: this one); returns it with ID (and, here,
    /// LTime) filled.
    fn event_fire(
        &self,
        ev: UserEvent,
        datacenter: &str,
    ) -> impl Future<Output = Result<UserEvent, RpcError>> + Send;
    /// Cancelled when the agent stops: long-lived answers (log streams) end then.
    fn shutdown_token(&self) -> tokio_util::sync::CancellationToken;

    /// A live feed of the agent's formatted log lines; `None` when the process has no log tap.
    fn agent_monitor(&self) -> Option<tokio::sync::broadcast::Receiver<std::sync::Arc<str>>>;

    /// Recent events, oldest first.
    fn event_list(&self) -> Vec<UserEvent>;
    /// Ticks each time the agent records a user event (blocking `/v1/event/list`).
    fn event_watch(&self) -> tokio::sync::watch::Receiver<u64>;

    /// `disable_coordinates`: every `/v1/coordinate/*` answers 401.
    fn coordinates_disabled(&self) -> bool;
    /// `/v1/coordinate/datacenters`: WAN coordinates of servers, per datacenter.
    fn coordinate_datacenters(
        &self,
    ) -> impl Future<Output = Result<Vec<proconsul_types::DatacenterCoordinates>, RpcError>> + Send;
}
