//! The agent's local state: the services and checks registered on *this* agent.
//!
//! The agent is the source of truth for them; anti-entropy (`sync`) pushes them into the catalog.
//! Definitions arrive from the HTTP API or from config files (`from_config`), and reload replaces
//! only the config-sourced ones.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proconsul_types::{
    duration, health, AgentService, CheckDefinition, HealthCheck, NodeService, RpcError,
    ServiceDefinition, Weights,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::checks::{Probe, Schedule};

/// A service registered on this agent.
#[derive(Debug, Clone)]
pub struct LocalService {
    pub service: NodeService,
    pub from_config: bool,
    /// A sidecar proxy registered with its service (`Connect.SidecarService`): the parent's
    /// ID. It leaves with its parent.
    pub sidecar_of: Option<String>,
}

/// A check registered on this agent, with its runtime state.
#[derive(Debug, Clone)]
pub struct LocalCheck {
    pub check: HealthCheck,
    pub from_config: bool,
    /// Whether the definition gave a status (re-registering without one keeps the current).
    pub status_given: bool,
    /// `deregister_critical_service_after`, parsed.
    pub deregister_after: Option<Duration>,
    /// TTL checks: the TTL and when it runs out.
    pub ttl: Option<Duration>,
    pub ttl_deadline: Option<Instant>,
    /// Running checks (HTTP, TCP, gRPC, script, alias): what to probe and how often. Boxed:
    /// an agent may hold thousands of TTL checks, which have none. Only what the runner and
    /// the catalog need is kept, not the whole definition.
    pub probe: Option<Box<(Probe, Schedule)>>,
    pub runner: Option<CancellationToken>,
    /// When the check last turned critical (for `deregister_critical_service_after`).
    pub critical_since: Option<Instant>,
}

impl LocalCheck {
    fn stop(&self) {
        if let Some(t) = &self.runner {
            t.cancel();
        }
    }
}

/// Services and checks of this agent, keyed by ID.
pub struct LocalState {
    inner: Mutex<Tables>,
    /// Ticks when a service is added, replaced or removed (hash-blocking on
    /// `/v1/agent/service/:id` waits on it).
    services_changed: tokio::sync::watch::Sender<u64>,
}

impl Default for LocalState {
    fn default() -> Self {
        LocalState {
            inner: Mutex::new(Tables::default()),
            services_changed: tokio::sync::watch::Sender::new(0),
        }
    }
}

/// Checks are shared (`Arc`) so a snapshot for anti-entropy costs a pointer per check rather
/// than a deep copy of thousands of them; a check changed while a snapshot is out is copied
/// then (`Arc::make_mut`), and only that one.
#[derive(Default, Clone)]
pub struct Tables {
    pub services: BTreeMap<String, LocalService>,
    pub checks: BTreeMap<String, Arc<LocalCheck>>,
    /// No TTL runs out before this: the 100 ms expiry tick skips its scan of every check until
    /// then. Only ever moved earlier outside `expire_ttls` (a deadline set anywhere lowers it).
    next_ttl_expiry: Option<Instant>,
    /// What changed since anti-entropy last took it ([`LocalState::take_changed`]).
    changed: Changed,
}

/// What changed locally since anti-entropy last looked: the services and checks a registration
/// or deregistration touched, by ID, so its immediate sync writes only those (Consul's
/// `InSync` flags); any other change marks everything, and the sync diffs it all.
#[derive(Default, Clone, Debug)]
pub struct Changed {
    pub services: std::collections::BTreeSet<String>,
    pub checks: std::collections::BTreeSet<String>,
    pub everything: bool,
}

impl Tables {
    fn note_ttl_deadline(&mut self, deadline: Option<Instant>) {
        if let Some(d) = deadline {
            self.next_ttl_expiry = Some(self.next_ttl_expiry.map_or(d, |n| n.min(d)));
        }
    }
}

/// The check ID of node maintenance mode.
pub const NODE_MAINT_ID: &str = "_node_maintenance";
/// The prefix of a service's maintenance check ID.
pub const SERVICE_MAINT_PREFIX: &str = "_service_maintenance:";

/// Output Consul records for a TTL check that ran out.
pub const TTL_EXPIRED: &str = "TTL expired";

impl LocalState {
    /// Ticks each time a service is added, replaced or removed.
    pub fn watch_services(&self) -> tokio::sync::watch::Receiver<u64> {
        self.services_changed.subscribe()
    }

    fn services_touched(&self) {
        self.services_changed.send_modify(|n| *n += 1);
    }

    /// A copy of everything (for sync and listings); checks are shared, not copied.
    pub fn snapshot(&self) -> Tables {
        self.inner.lock().unwrap().clone()
    }

    /// What changed since the last call (and forget it).
    pub fn take_changed(&self) -> Changed {
        std::mem::take(&mut self.inner.lock().unwrap().changed)
    }

    /// Mark everything changed again (a sync of the changes failed: the next one diffs all).
    pub fn mark_all_changed(&self) {
        self.inner.lock().unwrap().changed.everything = true;
    }

    /// The current entries of the services and checks `changed` names (`None`: removed).
    #[allow(clippy::type_complexity)]
    pub fn entries(
        &self,
        changed: &Changed,
    ) -> (
        Vec<(String, Option<LocalService>)>,
        Vec<(String, Option<Arc<LocalCheck>>)>,
    ) {
        let t = self.inner.lock().unwrap();
        let services = changed
            .services
            .iter()
            .map(|id| (id.clone(), t.services.get(id).cloned()))
            .collect();
        let checks = changed
            .checks
            .iter()
            .map(|id| (id.clone(), t.checks.get(id).cloned()))
            .collect();
        (services, checks)
    }

    /// Add or replace a service and its checks.
    pub fn add_service(
        &self,
        node: &str,
        def: &ServiceDefinition,
        from_config: bool,
        replace_existing_checks: bool,
    ) -> Result<Vec<CheckDefinition>, RpcError> {
        // Validate the sidecar before anything is registered, so a bad one changes nothing.
        let sidecar = match def
            .connect
            .as_ref()
            .and_then(|c| c.sidecar_service.as_deref())
        {
            Some(side) => {
                let port = self.free_sidecar_port(side.port);
                let sidecar = sidecar_definition(def, side, port)?;
                service_from_definition(&sidecar)?;
                Some(sidecar)
            }
            None => None,
        };
        let resolved = self.add_one(node, def, from_config, replace_existing_checks, None)?;
        let parent_id = if def.id.is_empty() {
            &def.name
        } else {
            &def.id
        };
        match sidecar {
            Some(side) => {
                self.add_one(node, &side, from_config, true, Some(parent_id))?;
            }
            // Re-registered without a sidecar: the old one goes.
            None => self.remove_sidecars_of(parent_id),
        }
        Ok(resolved)
    }

    /// The lowest port of Consul's sidecar range no other sidecar here uses (`given` if set).
    fn free_sidecar_port(&self, given: u16) -> u16 {
        if given != 0 {
            return given;
        }
        let t = self.inner.lock().unwrap();
        (SIDECAR_MIN_PORT..=SIDECAR_MAX_PORT)
            .find(|p| {
                !t.services
                    .values()
                    .any(|s| s.sidecar_of.is_some() && s.service.port == *p)
            })
            .unwrap_or(0)
    }

    fn remove_sidecars_of(&self, parent: &str) {
        let ids: Vec<String> = {
            let t = self.inner.lock().unwrap();
            t.services
                .iter()
                .filter(|(_, s)| s.sidecar_of.as_deref() == Some(parent))
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in ids {
            self.remove_service(&id);
        }
    }

    fn add_one(
        &self,
        node: &str,
        def: &ServiceDefinition,
        from_config: bool,
        replace_existing_checks: bool,
        sidecar_of: Option<&str>,
    ) -> Result<Vec<CheckDefinition>, RpcError> {
        let svc = service_from_definition(def)?;
        let mut defs: Vec<CheckDefinition> = def.checks.clone();
        if let Some(c) = &def.check {
            defs.insert(0, c.clone());
        }
        let total = defs.len();
        let mut checks = Vec::with_capacity(total);
        let mut resolved = Vec::with_capacity(total);
        for (i, mut c) in defs.into_iter().enumerate() {
            if c.given_id().is_empty() {
                c.id = if total == 1 {
                    format!("service:{}", svc.id)
                } else {
                    format!("service:{}:{}", svc.id, i + 1)
                };
            }
            if c.name.is_empty() {
                c.name = format!("Service '{}' check", svc.service);
            }
            c.service_id = svc.id.clone();
            checks.push(check_from_definition(node, &c, Some(&svc), from_config)?);
            resolved.push(c);
        }
        let mut t = self.inner.lock().unwrap();
        let t = &mut *t;
        if replace_existing_checks {
            let keep: Vec<String> = checks.iter().map(|c| c.check.check_id.clone()).collect();
            let changed = &mut t.changed;
            t.checks.retain(|id, c| {
                let keep = c.check.service_id != svc.id || keep.contains(id);
                if !keep {
                    c.stop();
                    changed.checks.insert(id.clone());
                }
                keep
            });
        }
        for c in checks {
            let id = c.check.check_id.clone();
            // Re-registering keeps the current status of an existing check unless one is given.
            let c = match t.checks.get(&id) {
                Some(old) if !c.status_given => LocalCheck {
                    check: HealthCheck {
                        status: old.check.status.clone(),
                        output: old.check.output.clone(),
                        ..c.check
                    },
                    ttl_deadline: old.ttl_deadline,
                    ..c
                },
                _ => c,
            };
            t.note_ttl_deadline(c.ttl_deadline);
            t.changed.checks.insert(id.clone());
            if let Some(old) = t.checks.insert(id, Arc::new(c)) {
                old.stop();
            }
        }
        t.changed.services.insert(svc.id.clone());
        t.services.insert(
            svc.id.clone(),
            LocalService {
                service: svc,
                from_config,
                sidecar_of: sidecar_of.map(str::to_string),
            },
        );
        self.services_touched();
        Ok(resolved)
    }

    /// Remove a service and its checks (and the sidecar registered with it); `false` if
    /// unknown.
    pub fn remove_service(&self, id: &str) -> bool {
        let mut t = self.inner.lock().unwrap();
        let t = &mut *t;
        if t.services.remove(id).is_none() {
            return false;
        }
        t.changed.services.insert(id.to_string());
        let sidecars: Vec<String> = t
            .services
            .iter()
            .filter(|(_, s)| s.sidecar_of.as_deref() == Some(id))
            .map(|(sid, _)| sid.clone())
            .collect();
        for sid in &sidecars {
            t.services.remove(sid);
            t.changed.services.insert(sid.clone());
        }
        let changed = &mut t.changed;
        t.checks.retain(|cid, c| {
            let keep = c.check.service_id != id && !sidecars.contains(&c.check.service_id);
            if !keep {
                c.stop();
                changed.checks.insert(cid.clone());
            }
            keep
        });
        self.services_touched();
        true
    }

    /// Add or replace a standalone check (it may name a service of this agent).
    pub fn add_check(
        &self,
        node: &str,
        def: &CheckDefinition,
        from_config: bool,
    ) -> Result<CheckDefinition, RpcError> {
        let mut def = def.clone();
        if def.name.is_empty() {
            return Err(RpcError::BadRequest("Missing check name".into()));
        }
        if def.given_id().is_empty() {
            def.id = def.name.clone();
        }
        let mut t = self.inner.lock().unwrap();
        t.changed.everything = true;
        let svc = if def.service_id.is_empty() {
            None
        } else {
            match t.services.get(&def.service_id) {
                Some(s) => Some(s.service.clone()),
                None => {
                    return Err(RpcError::NotFound(format!(
                        "ServiceID \"{}\" does not exist",
                        def.service_id
                    )))
                }
            }
        };
        let c = check_from_definition(node, &def, svc.as_ref(), from_config)?;
        t.note_ttl_deadline(c.ttl_deadline);
        if let Some(old) = t.checks.insert(c.check.check_id.clone(), Arc::new(c)) {
            old.stop();
        }
        Ok(def)
    }

    /// Turn maintenance mode on or off for the node (`service` None) or one service: a critical
    /// check that takes the node's or the instance's entries out of discovery. Returns whether
    /// anything changed; `Err` for an unknown service.
    pub fn set_maintenance(
        &self,
        node: &str,
        service: Option<&str>,
        enable: bool,
        reason: &str,
    ) -> Result<bool, RpcError> {
        let mut t = self.inner.lock().unwrap();
        t.changed.everything = true;
        let (id, svc) = match service {
            None => (NODE_MAINT_ID.to_string(), None),
            Some(sid) => match t.services.get(sid) {
                Some(s) => (
                    format!("{SERVICE_MAINT_PREFIX}{sid}"),
                    Some(s.service.clone()),
                ),
                None => {
                    return Err(RpcError::NotFound(format!(
                        "No service registered with ID \"{sid}\""
                    )))
                }
            },
        };
        if !enable {
            return Ok(t.checks.remove(&id).is_some());
        }
        let (name, default_note) = match &svc {
            None => ("Node Maintenance Mode", "Maintenance mode is enabled for this node, but no reason was provided. This is a default message."),
            Some(_) => ("Service Maintenance Mode", "Maintenance mode is enabled for this service, but no reason was provided. This is a default message."),
        };
        let check = HealthCheck {
            node: node.to_string(),
            check_id: id.clone(),
            name: name.into(),
            status: health::CRITICAL.into(),
            notes: if reason.is_empty() {
                default_note.into()
            } else {
                reason.into()
            },
            service_id: svc.as_ref().map(|s| s.id.clone()).unwrap_or_default(),
            service_name: svc.as_ref().map(|s| s.service.clone()).unwrap_or_default(),
            service_tags: svc.as_ref().map(|s| s.tags.clone()).unwrap_or_default(),
            check_type: "maintenance".into(),
            ..Default::default()
        };
        let changed = t.checks.get(&id).is_none_or(|c| c.check != check);
        t.checks.insert(
            id,
            Arc::new(LocalCheck {
                check,
                from_config: false,
                status_given: true,
                deregister_after: None,
                ttl: None,
                ttl_deadline: None,
                probe: None,
                runner: None,
                critical_since: None,
            }),
        );
        Ok(changed)
    }

    /// Remove a check; `false` if unknown.
    pub fn remove_check(&self, id: &str) -> bool {
        let mut t = self.inner.lock().unwrap();
        t.changed.everything = true;
        match t.checks.remove(id) {
            Some(c) => {
                c.stop();
                true
            }
            None => false,
        }
    }

    /// Hand out the checks that need a prober and have none yet, each with a fresh stop token
    /// (a child of `parent`, so agent shutdown stops them all).
    pub fn take_unstarted(
        &self,
        parent: &CancellationToken,
    ) -> Vec<(String, Schedule, Probe, CancellationToken)> {
        let mut t = self.inner.lock().unwrap();
        let mut out = Vec::new();
        for (id, c) in t.checks.iter_mut() {
            if let (Some(run), None) = (&c.probe, &c.runner) {
                let (probe, schedule) = (**run).clone();
                let token = parent.child_token();
                Arc::make_mut(c).runner = Some(token.clone());
                out.push((id.clone(), schedule, probe, token));
            }
        }
        out
    }

    /// Record a prober's result; `status` None keeps the current status (thresholds not met).
    /// Returns whether the status changed (worth an immediate sync).
    pub fn set_check_result(&self, id: &str, status: Option<&str>, output: &str) -> bool {
        let mut t = self.inner.lock().unwrap();
        let t = &mut *t;
        let Some(c) = t.checks.get_mut(id) else {
            return false;
        };
        let new_status = status.filter(|s| *s != c.check.status);
        if new_status.is_none() && c.check.output == output {
            return false; // the common case: nothing to write
        }
        let c = Arc::make_mut(c);
        t.changed.everything = true;
        if c.check.output != output {
            c.check.output = output.to_string();
        }
        match new_status {
            Some(s) => {
                c.check.status = s.to_string();
                true
            }
            None => false,
        }
    }

    /// Update a TTL check's status and output, restarting its TTL.
    pub fn update_ttl(&self, id: &str, status: &str, output: &str) -> Result<(), RpcError> {
        let mut t = self.inner.lock().unwrap();
        let Some(c) = t.checks.get_mut(id) else {
            return Err(RpcError::NotFound(format!("Unknown check ID \"{id}\". Ensure that the check ID is passed, not the check name.")));
        };
        let Some(ttl) = c.ttl else {
            return Err(RpcError::Internal(format!(
                "CheckID \"{id}\" does not have associated TTL"
            )));
        };
        let c = Arc::make_mut(c);
        c.check.status = status.to_string();
        c.check.output = truncate_output(output);
        c.ttl_deadline = Some(Instant::now() + ttl);
        let deadline = c.ttl_deadline;
        t.note_ttl_deadline(deadline);
        t.changed.everything = true;
        Ok(())
    }

    /// Mark TTL checks whose TTL ran out critical; returns whether anything changed.
    pub fn expire_ttls(&self, now: Instant) -> bool {
        let mut changed = false;
        let mut t = self.inner.lock().unwrap();
        if t.next_ttl_expiry.is_none_or(|n| n > now) {
            return false;
        }
        let mut next: Option<Instant> = None;
        for c in t.checks.values_mut() {
            if let Some(deadline) = c.ttl_deadline {
                if deadline > now {
                    next = Some(next.map_or(deadline, |n| n.min(deadline)));
                } else {
                    let c = Arc::make_mut(c);
                    c.ttl_deadline = None;
                    if c.check.status != health::CRITICAL || c.check.output != TTL_EXPIRED {
                        c.check.status = health::CRITICAL.to_string();
                        c.check.output = TTL_EXPIRED.to_string();
                        changed = true;
                    }
                }
            }
        }
        t.next_ttl_expiry = next;
        t.changed.everything |= changed;
        changed
    }

    /// Services whose check set `deregister_critical_service_after` and has been critical that
    /// long: removed here, their IDs returned (Consul's critical-service reaper).
    pub fn reap_critical(&self, now: Instant) -> Vec<String> {
        let mut t = self.inner.lock().unwrap();
        let mut reap = Vec::new();
        for c in t.checks.values_mut() {
            // Only checks that can reap their service track how long they have been critical.
            let Some(after) = c.deregister_after else {
                continue;
            };
            if c.check.status != health::CRITICAL {
                if c.critical_since.is_some() {
                    Arc::make_mut(c).critical_since = None;
                }
                continue;
            }
            let since = match c.critical_since {
                Some(since) => since,
                None => *Arc::make_mut(c).critical_since.insert(now),
            };
            if !c.check.service_id.is_empty()
                && now.duration_since(since) >= after
                && !reap.contains(&c.check.service_id)
            {
                reap.push(c.check.service_id.clone());
            }
        }
        t.changed.everything |= !reap.is_empty();
        for id in &reap {
            t.services.remove(id);
            t.checks.retain(|_, c| {
                let keep = &c.check.service_id != id;
                if !keep {
                    c.stop();
                }
                keep
            });
        }
        reap
    }

    /// Drop every config-sourced service and check (before a reload re-adds them).
    pub fn remove_config_sourced(&self) {
        let mut t = self.inner.lock().unwrap();
        t.changed.everything = true;
        t.services.retain(|_, s| !s.from_config);
        let services: Vec<String> = t.services.keys().cloned().collect();
        t.checks.retain(|_, c| {
            !c.from_config
                && (c.check.service_id.is_empty() || services.contains(&c.check.service_id))
        });
        drop(t);
        self.services_touched();
    }

    /// `/v1/agent/services`.
    pub fn agent_services(&self, datacenter: &str) -> BTreeMap<String, AgentService> {
        let t = self.inner.lock().unwrap();
        t.services
            .iter()
            .map(|(id, s)| (id.clone(), agent_service(&s.service, datacenter)))
            .collect()
    }

    /// `/v1/agent/service/:id`, and the one service a registration replaces.
    pub fn agent_service(&self, datacenter: &str, id: &str) -> Option<AgentService> {
        let t = self.inner.lock().unwrap();
        t.services
            .get(id)
            .map(|s| agent_service(&s.service, datacenter))
    }

    /// `/v1/agent/checks`.
    pub fn agent_checks(&self) -> BTreeMap<String, HealthCheck> {
        let t = self.inner.lock().unwrap();
        t.checks
            .iter()
            .map(|(id, c)| (id.clone(), c.check.clone()))
            .collect()
    }
}

/// The agent endpoints' view of one local service.
fn agent_service(v: &NodeService, datacenter: &str) -> AgentService {
    AgentService {
        kind: v.kind.clone(),
        id: v.id.clone(),
        service: v.service.clone(),
        tags: v.tags.clone(),
        meta: v.meta.clone(),
        port: v.port,
        address: v.address.clone(),
        tagged_addresses: v.tagged_addresses.clone(),
        weights: v.weights,
        enable_tag_override: v.enable_tag_override,
        datacenter: datacenter.to_string(),
        content_hash: String::new(),
        // Consul's `buildAgentService`: `Proxy` for proxies and gateways, `Connect` for
        // Connect-native services only.
        proxy: (!v.kind.is_empty()).then(|| (&v.proxy).into()),
        connect: v.connect.native.then(|| v.connect.clone()),
        locality: v.locality.clone(),
    }
}

/// Consul caps recorded check output at 4 KiB.
pub fn truncate_output(s: &str) -> String {
    const MAX: usize = 4096;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} ...\n(Output truncated)", &s[..end])
}

/// Validate a service definition and turn it into the catalog shape.
pub fn service_from_definition(def: &ServiceDefinition) -> Result<NodeService, RpcError> {
    if def.name.is_empty() {
        return Err(RpcError::BadRequest("Missing service name".into()));
    }
    let weights = def.weights.unwrap_or_default();
    if weights.passing < 1 || weights.warning < 0 {
        return Err(RpcError::BadRequest(
            "Passing weight must be greater than 0".into(),
        ));
    }
    let proxy = def.proxy.clone().unwrap_or_default();
    if def.kind == "connect-proxy" {
        if proxy.destination_service_name.is_empty() {
            return Err(RpcError::BadRequest(
                "Invalid service: Proxy.DestinationServiceName must be non-empty for Connect proxy services"
                    .into(),
            ));
        }
        if def.port == 0 {
            return Err(RpcError::BadRequest(
                "Invalid service: Port must be set for a Connect proxy".into(),
            ));
        }
    }
    // Consul's agent adds the address under its family's names unless the caller did.
    let mut tagged_addresses = def.tagged_addresses.clone();
    if let Ok(ip) = def.address.parse::<std::net::IpAddr>() {
        let family = if ip.is_ipv4() { "ipv4" } else { "ipv6" };
        let (lan, wan) = (format!("lan_{family}"), format!("wan_{family}"));
        if !tagged_addresses.contains_key(&lan) && !tagged_addresses.contains_key(&wan) {
            let a = proconsul_types::ServiceAddress {
                address: def.address.clone(),
                port: def.port,
            };
            tagged_addresses.insert(lan, a.clone());
            tagged_addresses.insert(wan, a);
        }
    }
    Ok(NodeService {
        kind: def.kind.clone(),
        id: if def.id.is_empty() {
            def.name.clone()
        } else {
            def.id.clone()
        },
        service: def.name.clone(),
        tags: def.tags.clone(),
        address: def.address.clone(),
        tagged_addresses,
        meta: def.meta.clone(),
        port: def.port,
        weights: Weights { ..weights },
        enable_tag_override: def.enable_tag_override,
        locality: def.locality.clone(),
        proxy,
        connect: proconsul_types::ServiceConnect {
            native: def.connect.as_ref().is_some_and(|c| c.native),
        },
        ..Default::default()
    })
}

/// Consul's sidecar port range (`ports.sidecar_min_port`..`sidecar_max_port`).
const SIDECAR_MIN_PORT: u16 = 21000;
const SIDECAR_MAX_PORT: u16 = 21255;

/// The service a `Connect.SidecarService` block registers beside `parent` (Consul's
/// `sidecarServiceFromNodeService`): `<id>-sidecar-proxy`, a `connect-proxy` for the parent,
/// on the given port, with a TCP check on its listener and an alias of the parent unless it
/// brings checks of its own.
fn sidecar_definition(
    parent: &ServiceDefinition,
    side: &ServiceDefinition,
    port: u16,
) -> Result<ServiceDefinition, RpcError> {
    let parent_id = if parent.id.is_empty() {
        parent.name.clone()
    } else {
        parent.id.clone()
    };
    if port == 0 {
        return Err(RpcError::BadRequest(
            "No sidecar port available in the range 21000-21255".into(),
        ));
    }
    let mut d = side.clone();
    if d.id.is_empty() {
        d.id = format!("{parent_id}-sidecar-proxy");
    }
    if d.name.is_empty() {
        d.name = format!("{}-sidecar-proxy", parent.name);
    }
    d.kind = "connect-proxy".into();
    d.port = port;
    if d.tags.is_empty() {
        d.tags = parent.tags.clone();
    }
    if d.meta.is_empty() {
        d.meta = parent.meta.clone();
    }
    if d.address.is_empty() {
        d.address = parent.address.clone();
    }
    d.connect = None;
    let mut proxy = d.proxy.take().unwrap_or_default();
    proxy.destination_service_name = parent.name.clone();
    proxy.destination_service_id = parent_id.clone();
    if proxy.local_service_address.is_empty() {
        proxy.local_service_address = "127.0.0.1".into();
    }
    if proxy.local_service_port == 0 {
        proxy.local_service_port = parent.port;
    }
    d.proxy = Some(proxy);
    if d.check.is_none() && d.checks.is_empty() {
        let host = if d.address.is_empty() {
            "127.0.0.1"
        } else {
            d.address.as_str()
        };
        d.checks = vec![
            CheckDefinition {
                name: "Connect Sidecar Listening".into(),
                tcp: format!("{host}:{port}"),
                interval: "10s".into(),
                ..Default::default()
            },
            CheckDefinition {
                name: format!("Connect Sidecar Aliasing {parent_id}"),
                alias_service: parent_id,
                ..Default::default()
            },
        ];
    }
    Ok(d)
}

/// Validate a check definition and build its catalog entry (TTL, HTTP(S), TCP, gRPC, script and
/// alias checks); a bad URL or gRPC target is refused here rather than left silently critical.
pub fn check_from_definition(
    node: &str,
    def: &CheckDefinition,
    svc: Option<&NodeService>,
    from_config: bool,
) -> Result<LocalCheck, RpcError> {
    let kind = def.kind();
    if kind.is_empty() {
        return Err(RpcError::BadRequest(
            "Invalid check: must specify exactly one of TTL, HTTP, TCP, GRPC, Args or Alias".into(),
        ));
    }
    let probe = Probe::from_definition(def)
        .map_err(|e| RpcError::BadRequest(format!("Invalid check: {e}")))?;
    let mut ttl = None;
    if kind == "ttl" {
        let t = duration::parse(&def.ttl)
            .map_err(|e| RpcError::BadRequest(format!("Invalid check: TTL: {e}")))?;
        if t.is_zero() {
            return Err(RpcError::BadRequest(
                "Invalid check: TTL must be > 0 for TTL checks".into(),
            ));
        }
        ttl = Some(t);
    } else if kind != "alias" {
        let interval = duration::parse(&def.interval).unwrap_or_default();
        if interval.is_zero() {
            return Err(RpcError::BadRequest(
                "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, or TCP checks"
                    .into(),
            ));
        }
        if !def.timeout.is_empty() {
            duration::parse(&def.timeout)
                .map_err(|e| RpcError::BadRequest(format!("Invalid check: Timeout: {e}")))?;
        }
    }
    let status = if def.status.is_empty() {
        health::CRITICAL.to_string()
    } else if health::is_valid_status(&def.status) {
        def.status.clone()
    } else {
        return Err(RpcError::BadRequest(format!(
            "Invalid check status: '{}'",
            def.status
        )));
    };
    let check = HealthCheck {
        node: node.to_string(),
        check_id: def.given_id().to_string(),
        name: def.name.clone(),
        status,
        notes: def.notes.clone(),
        output: String::new(),
        service_id: svc.map(|s| s.id.clone()).unwrap_or_default(),
        service_name: svc.map(|s| s.service.clone()).unwrap_or_default(),
        service_tags: svc.map(|s| s.tags.clone()).unwrap_or_default(),
        check_type: kind.to_string(),
        interval: def.interval.clone(),
        timeout: def.timeout.clone(),
        ..Default::default()
    };
    let deregister_after = duration::parse(&def.deregister_critical_service_after).ok();
    Ok(LocalCheck {
        check,
        from_config,
        status_given: !def.status.is_empty(),
        deregister_after,
        ttl,
        ttl_deadline: ttl.map(|t| Instant::now() + t),
        probe: probe.map(|p| {
            let schedule = Schedule::of(def, &p);
            Box::new((p, schedule))
        }),
        runner: None,
        critical_since: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ttl_check(id: &str, ttl: &str) -> CheckDefinition {
        CheckDefinition {
            id: id.into(),
            name: id.into(),
            ttl: ttl.into(),
            status: health::PASSING.into(),
            ..Default::default()
        }
    }

    fn status(l: &LocalState, id: &str) -> (String, String) {
        let c = &l.agent_checks()[id];
        (c.status.clone(), c.output.clone())
    }

    #[test]
    fn ttl_expiry_follows_every_deadline_set() {
        let l = LocalState::default();
        let t0 = Instant::now();
        l.add_check("n1", &ttl_check("a", "10s"), false).unwrap();
        l.add_check("n1", &ttl_check("b", "20s"), false).unwrap();
        assert!(!l.expire_ttls(t0 + Duration::from_secs(5)));
        assert!(l.expire_ttls(t0 + Duration::from_secs(11)));
        assert_eq!(status(&l, "a"), ("critical".into(), TTL_EXPIRED.into()));
        assert_eq!(status(&l, "b").0, "passing");

        // A renewal after the scan sets a deadline earlier than the next one the scan saw
        // (b's): it must still be honoured.
        l.update_ttl("a", health::PASSING, "ok").unwrap();
        assert_eq!(status(&l, "a"), ("passing".into(), "ok".into()));
        assert!(l.expire_ttls(t0 + Duration::from_secs(15)));
        assert_eq!(status(&l, "a").0, "critical");
        assert_eq!(status(&l, "b").0, "passing");
        assert!(
            !l.expire_ttls(t0 + Duration::from_secs(16)),
            "nothing left to expire yet"
        );

        // A check added later, with a shorter TTL than any left, is seen too.
        l.add_check("n1", &ttl_check("c", "1s"), false).unwrap();
        assert!(l.expire_ttls(t0 + Duration::from_secs(17)));
        assert_eq!(status(&l, "c").0, "critical");
        assert!(l.expire_ttls(t0 + Duration::from_secs(21)));
        assert_eq!(status(&l, "b").0, "critical");
    }
}
