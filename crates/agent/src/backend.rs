//! The HTTP API's view of the agent (`proconsul_http::Backend`).

use std::collections::BTreeMap;
use std::time::Duration;

use proconsul_http::{Backend, ServiceRegistration};
use proconsul_types::{
    AgentMember, AgentService, CheckDefinition, HealthCheck, RpcError, ServerCall, UserEvent,
    WriteRequest,
};
use serde_json::json;

use crate::{gossip, Agent};

impl Agent {
    /// Script checks from the API only with `enable_script_checks` (not the `local` variant):
    /// an open HTTP API must not mean remote code execution.
    fn allow_api_checks<'a>(
        &self,
        defs: impl Iterator<Item = &'a CheckDefinition>,
    ) -> Result<(), RpcError> {
        let scripts = defs.into_iter().any(|d| d.kind() == "script");
        if scripts && !self.config().enable_script_checks {
            return Err(RpcError::Internal(
                "Scripts are disabled on this agent from remote calls; to enable, configure 'enable_script_checks' to true".into(),
            ));
        }
        Ok(())
    }
}

impl Backend for Agent {
    async fn call<R: ServerCall>(&self, req: R) -> Result<R::Reply, RpcError> {
        let token = self.request_token();
        self.call_as(req, &token).await
    }

    fn acl_enabled(&self) -> bool {
        self.config().acl.enabled
    }

    fn acl_default_allow(&self) -> bool {
        self.config().acl.default_allow
    }

    fn acl_replication(&self) -> proconsul_types::AclReplicationStatus {
        match &self.inner.server {
            Some(s) => s.acl_replication_status(),
            None => proconsul_types::AclReplicationStatus {
                last_success: "0001-01-01T00:00:00Z".into(),
                last_error: "0001-01-01T00:00:00Z".into(),
                ..Default::default()
            },
        }
    }

    fn set_agent_token(&self, kind: &str, token: String) -> Result<(), RpcError> {
        if self.inner.tokens.set(kind, token) {
            tracing::info!(target: "agent", kind, "updated agent ACL token");
            Ok(())
        } else {
            Err(RpcError::NotFound(format!("Token {kind:?} is unknown")))
        }
    }

    async fn caller_rights(
        &self,
    ) -> Result<Option<std::sync::Arc<proconsul_http::Rights>>, RpcError> {
        let token = self.request_token();
        self.rights_of(&token).await
    }

    fn datacenter(&self) -> String {
        self.inner.datacenter.clone()
    }

    /// A server's WAN pool, nearest first (a client agent asks a server).
    async fn datacenters(&self) -> Result<Vec<String>, RpcError> {
        match &self.inner.server {
            Some(s) => Ok(s.datacenters()),
            None => self.call(proconsul_types::CatalogListDatacenters {}).await,
        }
    }

    fn node_name(&self) -> String {
        self.inner.node_name.clone()
    }

    fn ui_content_path(&self) -> Option<String> {
        let cfg = self.config();
        cfg.ui.then(|| cfg.ui_content_path.clone())
    }

    fn translate_wan_addrs(&self) -> bool {
        self.config().translate_wan_addrs
    }

    fn kv_max_value_size(&self) -> u64 {
        self.inner.config.kv_max_value_size()
    }

    fn telemetry(&self) -> std::sync::Arc<proconsul_telemetry::Telemetry> {
        self.inner.telemetry.clone()
    }

    fn prometheus_enabled(&self) -> bool {
        !self.config().telemetry_prometheus_retention.is_zero()
    }

    fn query_cache(&self) -> &proconsul_http::QueryCache {
        &self.inner.query_cache
    }

    fn agent_host(&self) -> serde_json::Value {
        crate::host::collect()
    }

    fn agent_self(&self) -> serde_json::Value {
        let cfg = self.config();
        let member = self.self_member();
        let raft = self.inner.server.as_ref().map(|s| {
            let m = s.raft_metrics();
            json!({
                "state": m.state,
                "term": m.term.to_string(),
                "last_log_index": m.last_log_index.to_string(),
                "commit_index": m.commit_index.to_string(),
                "applied_index": m.applied_index.to_string(),
                "last_snapshot_index": m.last_snapshot_index.to_string(),
                "num_peers": m.num_voters.saturating_sub(1).to_string(),
                "last_contact": format!("{}ms", m.last_contact_ms),
            })
        });
        // Consul's sections: `agent`, `build`, `consul`, `runtime`, `serf_lan` everywhere;
        // `raft` and `serf_wan` on servers. Values are strings, as Consul's.
        let mut stats = serde_json::Map::new();
        let local = self.inner.local.snapshot();
        let ttls = local.checks.values().filter(|c| c.ttl.is_some()).count();
        stats.insert(
            "agent".into(),
            json!({
                "check_monitors": "0",
                "check_ttls": ttls.to_string(),
                "checks": local.checks.len().to_string(),
                "services": local.services.len().to_string(),
            }),
        );
        stats.insert(
            "build".into(),
            json!({
                "prerelease": "",
                "revision": "",
                "version": proconsul_types::CONSUL_COMPAT_VERSION,
                "version_metadata": "",
            }),
        );
        let consul = match &self.inner.server {
            Some(s) => json!({
                "acl": "disabled",
                "bootstrap": cfg.bootstrap.to_string(),
                "known_datacenters": self.inner.gossip.wan.as_ref().map_or(1, |w| {
                    w.members()
                        .iter()
                        .filter_map(|m| m.tags.get("dc").cloned())
                        .collect::<std::collections::BTreeSet<_>>()
                        .len()
                        .max(1)
                }).to_string(),
                "leader": s.is_leader().to_string(),
                "leader_addr": s.leader_addr(),
                "server": "true",
            }),
            None => json!({
                "acl": "disabled",
                "known_servers": self.known_servers().len().to_string(),
                "server": "false",
            }),
        };
        stats.insert("consul".into(), consul);
        stats.insert(
            "runtime".into(),
            json!({
                "arch": std::env::consts::ARCH,
                "cpu_count": std::thread::available_parallelism().map_or(1, |n| n.get()).to_string(),
                "os": std::env::consts::OS,
                "version": format!("proconsul {}", proconsul_types::PROCONSUL_VERSION),
            }),
        );
        if let Some(r) = raft {
            stats.insert("raft".into(), r);
        }
        stats.insert(
            "serf_lan".into(),
            gossip::Gossip::stats(&self.inner.gossip.lan),
        );
        if let Some(w) = &self.inner.gossip.wan {
            stats.insert("serf_wan".into(), gossip::Gossip::stats(w));
        }
        let mut out = json!({
            "Config": {
                "Datacenter": cfg.datacenter,
                "PrimaryDatacenter": cfg.primary_datacenter,
                "NodeName": self.inner.node_name,
                "NodeID": self.inner.node_id,
                "Revision": "",
                "Server": cfg.server,
                "Version": proconsul_types::CONSUL_COMPAT_VERSION,
                "BuildDate": option_env!("PROCONSUL_BUILD_DATE").unwrap_or("1970-01-01T00:00:01Z"),
                "Proconsul": { "Version": proconsul_types::PROCONSUL_VERSION },
            },
            "DebugConfig": crate::self_info::debug_config(self, &cfg),
            "Coord": crate::self_info::coord(self),
            "Member": member,
            "Stats": stats,
            "Meta": cfg.node_meta,
        });
        // Consul's agents always carry an xDS server and print it; proconsul serves no xDS, so
        // it names no supported proxy (Envoy reads the list and stays away).
        let grpc = cfg.grpc_port.map_or(-1, i64::from);
        let grpc_tls = cfg.grpc_tls_port.map_or(-1, i64::from);
        out["xDS"] = json!({
            "SupportedProxies": {},
            "Port": if grpc_tls > 0 { grpc_tls } else { grpc },
            "Ports": {"Plaintext": grpc, "TLS": grpc_tls},
        });
        out
    }

    fn agent_members(&self, wan: bool) -> Vec<AgentMember> {
        self.pool_members(wan)
    }

    fn agent_services(&self) -> BTreeMap<String, AgentService> {
        self.inner.local.agent_services(&self.inner.datacenter)
    }

    fn agent_service(&self, id: &str) -> Option<AgentService> {
        self.inner.local.agent_service(&self.inner.datacenter, id)
    }

    fn agent_services_watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.local.watch_services()
    }

    fn agent_checks(&self) -> BTreeMap<String, HealthCheck> {
        self.inner.local.agent_checks()
    }

    async fn agent_register_service(&self, reg: ServiceRegistration) -> Result<(), RpcError> {
        let defs = reg
            .definition
            .check
            .iter()
            .chain(reg.definition.checks.iter());
        self.allow_api_checks(defs)?;
        let node = &self.inner.node_name;
        let checks = self.inner.local.add_service(
            node,
            &reg.definition,
            false,
            reg.replace_existing_checks,
        )?;
        let id = if reg.definition.id.is_empty() {
            &reg.definition.name
        } else {
            &reg.definition.id
        };
        // Anti-entropy writes the service (and the checks it brought) with the token it was
        // registered with.
        let token = proconsul_http::caller_token()
            .map(|t| t.to_string())
            .unwrap_or_default();
        self.inner.tokens.remember(true, id, &token);
        for c in &checks {
            self.inner.tokens.remember(false, c.given_id(), "");
        }
        if let Some(p) = &self.inner.persisted {
            p.save_service(id, &reg.definition);
            p.save_token(true, id, &token);
            for c in &checks {
                p.save_check(c);
            }
        }
        self.start_check_runners();
        self.sync_changes().await;
        Ok(())
    }

    async fn agent_deregister_service(&self, id: String) -> Result<(), RpcError> {
        let check_ids: Vec<String> = self
            .inner
            .local
            .agent_checks()
            .into_values()
            .filter(|c| c.service_id == id)
            .map(|c| c.check_id)
            .collect();
        if !self.inner.local.remove_service(&id) {
            return Err(RpcError::NotFound(format!(
                "Unknown service ID \"{id}\". Ensure that the service ID is passed, not the service name."
            )));
        }
        if let Some(p) = &self.inner.persisted {
            p.remove_service(&id, &check_ids);
        }
        self.sync_changes().await;
        Ok(())
    }

    async fn agent_register_check(&self, def: CheckDefinition) -> Result<(), RpcError> {
        self.allow_api_checks(std::iter::once(&def))?;
        let def = self
            .inner
            .local
            .add_check(&self.inner.node_name, &def, false)?;
        let token = proconsul_http::caller_token()
            .map(|t| t.to_string())
            .unwrap_or_default();
        self.inner.tokens.remember(false, def.given_id(), &token);
        if let Some(p) = &self.inner.persisted {
            p.save_check(&def);
            p.save_token(false, def.given_id(), &token);
        }
        self.start_check_runners();
        self.sync_changes().await;
        Ok(())
    }

    async fn agent_deregister_check(&self, id: String) -> Result<(), RpcError> {
        if !self.inner.local.remove_check(&id) {
            return Err(RpcError::NotFound(format!(
                "Unknown check ID \"{id}\". Ensure that the check ID is passed, not the check name."
            )));
        }
        if let Some(p) = &self.inner.persisted {
            p.remove_check(&id);
        }
        self.sync_changes().await;
        Ok(())
    }

    async fn agent_update_ttl(
        &self,
        id: String,
        status: String,
        output: String,
    ) -> Result<(), RpcError> {
        self.inner.local.update_ttl(&id, &status, &output)?;
        self.sync_changes().await;
        Ok(())
    }

    async fn agent_join(&self, addr: String, wan: bool) -> Result<(), RpcError> {
        tracing::info!(target: "agent", cluster = if wan { "WAN" } else { "LAN" }, addresses = %addr, "joining");
        match self.join_pool(std::slice::from_ref(&addr), wan).await {
            Ok(n) => {
                tracing::info!(target: "agent", num_agents = n, "joined");
                Ok(())
            }
            Err(e) => Err(RpcError::Internal(format!(
                "1 error occurred:\n\t* Failed to join {addr}: {e}\n\n"
            ))),
        }
    }

    async fn agent_leave(&self) -> Result<(), RpcError> {
        tracing::info!(target: "agent", "requesting graceful leave");
        self.leave_cluster().await;
        // Answer first, then stop: the caller's HTTP request must complete.
        let token = self.inner.shutdown.clone();
        self.inner.tasks.spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            token.cancel();
        });
        Ok(())
    }

    async fn agent_force_leave(
        &self,
        node: String,
        prune: bool,
        wan: bool,
    ) -> Result<(), RpcError> {
        let Some(pool) = self.inner.gossip.pool(wan) else {
            return Err(RpcError::Internal(
                "WAN force-leave requires a server agent".into(),
            ));
        };
        tracing::info!(target: "agent", node = %node, prune, "force leaving node");
        match pool.force_leave(&node, prune).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(RpcError::Internal(format!(
                "agent: No node found with name '{node}'"
            ))),
            Err(e) => Err(RpcError::Internal(e.to_string())),
        }
    }

    async fn operator_keyring(
        &self,
        op: &str,
        key: String,
    ) -> Result<Vec<proconsul_types::KeyringResponse>, RpcError> {
        use proconsul_gossip::net::KeyOp;
        let kop = match op {
            "install" => KeyOp::Install,
            "use" => KeyOp::Use,
            "remove" => KeyOp::Remove,
            _ => KeyOp::List,
        };
        if kop != KeyOp::List && key.is_empty() {
            return Err(RpcError::BadRequest("Key must be provided".into()));
        }
        let mut pools: Vec<(bool, &proconsul_gossip::net::Pool)> = Vec::new();
        if let Some(w) = &self.inner.gossip.wan {
            pools.push((true, w));
        }
        pools.push((false, &self.inner.gossip.lan));
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for (wan, pool) in pools {
            let r = pool
                .key_operation(kop, &key)
                .await
                .map_err(|e| RpcError::BadRequest(e.to_string()))?;
            for (node, msg) in &r.messages {
                if r.num_err > 0 {
                    errors.push(format!("{node}: {msg}"));
                }
            }
            out.push(proconsul_types::KeyringResponse {
                wan,
                datacenter: self.inner.datacenter.clone(),
                segment: String::new(),
                keys: r.keys,
                primary_keys: r.primary_keys,
                num_nodes: r.num_nodes,
                messages: r.messages,
            });
        }
        // Consul's `keyringErrorsOrNil`: any member's failure fails the call, a list too
        // (without gossip encryption every list is an error).
        if !errors.is_empty() {
            return Err(RpcError::Internal(format!(
                "{} error(s) occurred:\n\t* {}",
                errors.len(),
                errors.join("\n\t* ")
            )));
        }
        Ok(out)
    }

    async fn snapshot_restore(&self, archive: Vec<u8>) -> Result<(), RpcError> {
        let (meta, state) = proconsul_archive::read(&archive)
            .map_err(|e| RpcError::BadRequest(format!("failed to read snapshot: {e}")))?;
        tracing::info!(target: "agent", index = meta.index, id = %meta.id, "restoring snapshot");
        let token = self.request_token();
        self.call_as(
            proconsul_types::Write {
                req: WriteRequest::SnapshotRestore(state),
                datacenter: String::new(),
            },
            &token,
        )
        .await?;
        Ok(())
    }

    async fn agent_reload(&self) -> Result<(), RpcError> {
        self.reload().await
    }

    async fn agent_node_maintenance(&self, enable: bool, reason: String) -> Result<(), RpcError> {
        if self
            .inner
            .local
            .set_maintenance(&self.inner.node_name, None, enable, &reason)?
        {
            tracing::info!(target: "agent", enable, "node maintenance mode changed");
            self.sync_changes().await;
        }
        Ok(())
    }

    async fn agent_service_maintenance(
        &self,
        id: String,
        enable: bool,
        reason: String,
    ) -> Result<(), RpcError> {
        if self
            .inner
            .local
            .set_maintenance(&self.inner.node_name, Some(&id), enable, &reason)?
        {
            tracing::info!(target: "agent", service = %id, enable, "service maintenance mode changed");
            self.sync_changes().await;
        }
        Ok(())
    }

    async fn event_fire(&self, ev: UserEvent, datacenter: &str) -> Result<UserEvent, RpcError> {
        if ev.name.is_empty() {
            return Err(RpcError::BadRequest("Missing name".into()));
        }
        gossip::validate_user_event(&ev).map_err(RpcError::BadRequest)?;
        let ev = gossip::prepare_user_event(ev);
        if !datacenter.is_empty() {
            self.call(proconsul_types::EventFire {
                datacenter: datacenter.to_string(),
                event: ev.clone(),
            })
            .await?;
            return Ok(ev);
        }
        let name = format!("{}{}", gossip::USER_EVENT_PREFIX, ev.name);
        self.inner
            .gossip
            .lan
            .user_event(name, gossip::encode_user_event(&ev), false)
            .await
            .map_err(|e| RpcError::Internal(e.to_string()))?;
        Ok(ev)
    }

    fn shutdown_token(&self) -> tokio_util::sync::CancellationToken {
        self.inner.shutdown.clone()
    }

    fn agent_monitor(&self) -> Option<tokio::sync::broadcast::Receiver<std::sync::Arc<str>>> {
        self.inner
            .log_tap
            .lock()
            .unwrap()
            .as_ref()
            .map(|t| t.subscribe())
    }

    fn event_list(&self) -> Vec<UserEvent> {
        self.inner.events.list()
    }

    fn event_watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.events.watch()
    }

    fn coordinates_disabled(&self) -> bool {
        self.config().disable_coordinates
    }

    async fn coordinate_datacenters(
        &self,
    ) -> Result<Vec<proconsul_types::DatacenterCoordinates>, RpcError> {
        Ok(self.wan_coordinates())
    }
}
