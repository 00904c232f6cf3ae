//! Anti-entropy: make the catalog's entry for this node match the agent's local state.
//!
//! The periodic repair is a full diff (the node, each service, each check; linear in their
//! number). The immediate sync after a registration or deregistration writes only the services
//! and checks it touched ([`crate::local::Changed`], Consul's `InSync` flags), so registering
//! the 10,000th service costs what registering the first did; any other change (a check's
//! result, a TTL, a reload), a failed write, or a node not yet synced makes it a full diff.
//! Changed checks go to the catalog in batches. Catalog entries for this node that the agent
//! does not know are removed, except what servers own: the `serfHealth` check and the `consul`
//! service.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use proconsul_types::{
    health, CatalogNodeServices, Consistency, DeregisterRequest, HealthCheck, HealthNodeChecks,
    NodeService, QueryOptions, RegisterRequest, RpcError, WriteRequest,
};

use crate::Agent;

/// How often anti-entropy runs a full sync even without local changes (Consul scales this with
/// cluster size from 1 minute; a single node uses the base).
const AE_INTERVAL: Duration = Duration::from_secs(60);
/// Retry delay after a failed sync (no leader yet, server restarting).
const AE_RETRY: Duration = Duration::from_secs(1);

/// Anti-entropy's own state: its wake-up, the lock that serialises passes, the tickets that let
/// a burst of changes share passes, and when each check was last written.
#[derive(Default)]
pub(crate) struct AntiEntropy {
    /// Wakes the loop after a failed immediate sync.
    wake: Notify,
    /// Held for a pass: passes never overlap.
    pass: tokio::sync::Mutex<()>,
    /// Immediate syncs asked for so far, and the count the last pass to start covered: a
    /// caller whose request a later-started pass covers does not run one of its own.
    requested: AtomicU64,
    covered: AtomicU64,
    /// When each check was last written to the catalog (`check_update_interval`).
    check_written: Mutex<HashMap<String, Instant>>,
    /// A full pass has succeeded: the node is in the catalog, and a sync of the changes alone
    /// is enough.
    node_synced: AtomicBool,
}

/// Checks written to the catalog in one registration, at most.
const CHECKS_PER_WRITE: usize = 128;

/// The service servers register for themselves; anti-entropy leaves it alone.
const CONSUL_SERVICE_ID: &str = "consul";

fn same_service(a: &NodeService, b: &NodeService) -> bool {
    a.id == b.id
        && a.service == b.service
        && a.tags == b.tags
        && a.address == b.address
        && a.port == b.port
        && a.meta == b.meta
        && a.tagged_addresses == b.tagged_addresses
        && a.weights == b.weights
        && a.enable_tag_override == b.enable_tag_override
        && a.kind == b.kind
        && a.proxy == b.proxy
        && a.connect == b.connect
        && a.locality == b.locality
}

fn same_check(a: &HealthCheck, b: &HealthCheck) -> bool {
    a.check_id == b.check_id
        && a.name == b.name
        && a.status == b.status
        && a.output == b.output
        && a.notes == b.notes
        && a.service_id == b.service_id
        && a.service_name == b.service_name
        && a.service_tags == b.service_tags
        && a.check_type == b.check_type
}

impl Agent {
    /// Sync a local change to the catalog now; returns once a pass that started after the
    /// change has finished. Concurrent callers share passes: a burst of changes (a thousand
    /// checks turning passing after start) costs a few full diffs, not one each.
    pub(crate) async fn sync_changes(&self) {
        let ae = &self.inner.anti_entropy;
        let ticket = ae.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let _guard = ae.pass.lock().await;
        if ae.covered.load(Ordering::SeqCst) >= ticket {
            return; // a pass that started after our change has run (its failure re-armed AE)
        }
        let covered = ae.requested.load(Ordering::SeqCst);
        ae.covered.store(covered, Ordering::SeqCst);
        let changed = self.inner.local.take_changed();
        let result = if changed.everything || !ae.node_synced.load(Ordering::SeqCst) {
            self.sync_pass().await
        } else {
            self.sync_changed(&changed).await
        };
        if let Err(e) = result {
            tracing::debug!(target: "agent", error = %e, "immediate sync failed; anti-entropy will retry");
            self.inner.local.mark_all_changed();
            ae.wake.notify_one();
        }
    }

    /// Write the services and checks `changed` names as they are now (removed ones are
    /// deregistered). The caller holds the pass lock; the node is in the catalog.
    async fn sync_changed(&self, changed: &crate::local::Changed) -> Result<(), RpcError> {
        let node = self.inner.node_name.clone();
        let entry_of_node = self.entry_of_node();
        let (services, checks) = self.inner.local.entries(changed);
        for (id, s) in services {
            match s {
                Some(s) => self.write_service(&entry_of_node, &id, &s).await?,
                None => {
                    let req = DeregisterRequest {
                        node: node.clone(),
                        service_id: id,
                        ..Default::default()
                    };
                    self.rpc_write(WriteRequest::Deregister(req)).await?;
                }
            }
        }
        let now = Instant::now();
        let mut by_token: BTreeMap<String, Vec<HealthCheck>> = BTreeMap::new();
        for (id, c) in checks {
            match c {
                Some(c) => {
                    self.inner
                        .anti_entropy
                        .check_written
                        .lock()
                        .unwrap()
                        .insert(id.clone(), now);
                    let token =
                        self.inner
                            .tokens
                            .check_token(&id, &c.check.service_id, c.from_config);
                    by_token.entry(token).or_default().push(c.check.clone());
                }
                None => {
                    let req = DeregisterRequest {
                        node: node.clone(),
                        check_id: id,
                        ..Default::default()
                    };
                    self.rpc_write(WriteRequest::Deregister(req)).await?;
                }
            }
        }
        self.write_checks(&entry_of_node, by_token).await
    }

    /// A registration of something on this node that leaves the node itself alone.
    fn entry_of_node(&self) -> RegisterRequest {
        RegisterRequest {
            id: self.inner.node_id.clone(),
            node: self.inner.node_name.clone(),
            address: self.config().advertise_addr.to_string(),
            skip_node_update: true,
            ..Default::default()
        }
    }

    /// Register one local service, with the token it was registered with.
    async fn write_service(
        &self,
        entry_of_node: &RegisterRequest,
        id: &str,
        s: &crate::local::LocalService,
    ) -> Result<(), RpcError> {
        let req = RegisterRequest {
            service: Some(s.service.clone()),
            ..entry_of_node.clone()
        };
        let token = self.inner.tokens.service_token(id, s.from_config);
        self.rpc_write_as(WriteRequest::Register(Box::new(req)), &token)
            .await
            .map(drop)
    }

    /// Register changed checks in batches, one series per token they carry: many change
    /// together (a reload, a restart, a burst of registrations), and one Raft entry each would
    /// cost far more.
    async fn write_checks(
        &self,
        entry_of_node: &RegisterRequest,
        by_token: BTreeMap<String, Vec<HealthCheck>>,
    ) -> Result<(), RpcError> {
        for (token, mut changed) in by_token {
            while !changed.is_empty() {
                let rest = changed.split_off(changed.len().min(CHECKS_PER_WRITE));
                let req = RegisterRequest {
                    checks: std::mem::replace(&mut changed, rest),
                    ..entry_of_node.clone()
                };
                self.rpc_write_as(WriteRequest::Register(Box::new(req)), &token)
                    .await?;
            }
        }
        Ok(())
    }

    /// The loop: a full sync every [`AE_INTERVAL`] (scaled with the cluster), sooner when woken,
    /// every [`AE_RETRY`] after a failure.
    pub(crate) async fn anti_entropy_loop(&self) {
        let ae = &self.inner.anti_entropy;
        let mut next = AE_RETRY.min(Duration::from_millis(50));
        loop {
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => return,
                _ = ae.wake.notified() => {}
                _ = tokio::time::sleep(next) => {}
            }
            next = match self.sync_once().await {
                Ok(()) => {
                    let n = self.inner.gossip.lan.members().len();
                    let d = ae_scale(AE_INTERVAL, n);
                    // Consul staggers full syncs so a restart of many agents does not align them.
                    d + Duration::from_millis(rand::random::<u64>() % d.as_millis().max(1) as u64)
                }
                Err(e) => {
                    tracing::debug!(target: "agent", error = %e, "anti-entropy sync failed");
                    AE_RETRY
                }
            };
        }
    }

    /// One anti-entropy pass. Serialised: concurrent callers wait for each other.
    pub(crate) async fn sync_once(&self) -> Result<(), RpcError> {
        let _guard = self.inner.anti_entropy.pass.lock().await;
        self.sync_pass().await
    }

    /// One pass; the caller holds the pass lock.
    pub(crate) async fn sync_pass(&self) -> Result<(), RpcError> {
        // This pass covers every change made so far.
        drop(self.inner.local.take_changed());
        let node = self.inner.node_name.clone();
        let stale = QueryOptions {
            consistency: Consistency::Stale,
            ..Default::default()
        };
        let (_, found) = self
            .query(CatalogNodeServices { node: node.clone() }, stale.clone())
            .await?;
        let (_, remote_checks) = self
            .query(HealthNodeChecks { node: node.clone() }, stale)
            .await?;
        let (remote_node, remote_services) = match found {
            Some((n, s)) => (Some(n), s),
            None => (None, Vec::new()),
        };
        let local = self.inner.local.snapshot();
        let cfg = self.config();
        let address = cfg.advertise_addr.to_string();

        // The node itself, as Consul's agent registers it: its LAN and WAN addresses, each
        // also under its family's name, and the meta Consul adds to the configured one.
        let family = if cfg.advertise_addr.is_ipv4() {
            "ipv4"
        } else {
            "ipv6"
        };
        let wan = cfg.advertise_addr_wan.to_string();
        let tagged_addresses: proconsul_types::StrMap = [("lan", &address), ("wan", &wan)]
            .into_iter()
            .flat_map(|(k, a)| {
                [
                    (k.to_string(), a.clone()),
                    (format!("{k}_{family}"), a.clone()),
                ]
            })
            .collect();
        let mut node_meta = cfg.node_meta.clone();
        node_meta
            .entry("consul-network-segment".into())
            .or_default();
        node_meta.insert(
            "consul-version".into(),
            proconsul_types::CONSUL_COMPAT_VERSION.into(),
        );
        let node_in_sync = remote_node.as_ref().is_some_and(|n| {
            n.address == address
                && n.meta == node_meta
                && n.id == self.inner.node_id
                && n.tagged_addresses == tagged_addresses
        });
        if !node_in_sync {
            let req = RegisterRequest {
                id: self.inner.node_id.clone(),
                node: node.clone(),
                address: address.clone(),
                node_meta,
                tagged_addresses,
                ..Default::default()
            };
            self.rpc_write(WriteRequest::Register(Box::new(req)))
                .await?;
        }

        let entry_of_node = self.entry_of_node();

        // Services: register what differs, remove what the agent does not have.
        let remote_by_id: HashMap<&str, &NodeService> =
            remote_services.iter().map(|r| (r.id.as_str(), r)).collect();
        for (id, s) in &local.services {
            let remote = remote_by_id.get(id.as_str()).copied();
            if remote.is_some_and(|r| same_service(r, &s.service)) {
                continue;
            }
            self.write_service(&entry_of_node, id, s).await?;
        }
        for r in &remote_services {
            if r.id == CONSUL_SERVICE_ID || local.services.contains_key(&r.id) {
                continue;
            }
            let req = DeregisterRequest {
                node: node.clone(),
                service_id: r.id.clone(),
                ..Default::default()
            };
            self.rpc_write(WriteRequest::Deregister(req)).await?;
        }

        // Checks likewise; serfHealth belongs to the servers. A change of output alone is
        // synced at most every `check_update_interval` (Consul's rate limit on chatty checks).
        let now = tokio::time::Instant::now();
        let remote_by_id: HashMap<&str, &HealthCheck> = remote_checks
            .iter()
            .map(|r| (r.check_id.as_str(), r))
            .collect();
        let mut changed: std::collections::BTreeMap<String, Vec<HealthCheck>> = Default::default();
        for (id, c) in &local.checks {
            let remote = remote_by_id.get(id.as_str()).copied();
            if remote.is_some_and(|r| same_check(r, &c.check)) {
                continue;
            }
            let output_only = remote.is_some_and(|r| {
                let mut r = r.clone();
                r.output = c.check.output.clone();
                same_check(&r, &c.check)
            });
            {
                // Remember when each check was last written, for any reason; an output-only
                // change within `check_update_interval` of that waits for a later pass.
                let mut synced = self.inner.anti_entropy.check_written.lock().unwrap();
                if output_only && !cfg.check_update_interval.is_zero() {
                    if let Some(at) = synced.get(id) {
                        if now.duration_since(*at) < cfg.check_update_interval {
                            continue;
                        }
                    }
                }
                synced.insert(id.clone(), now);
            }
            let token = self
                .inner
                .tokens
                .check_token(id, &c.check.service_id, c.from_config);
            changed.entry(token).or_default().push(c.check.clone());
        }
        self.write_checks(&entry_of_node, changed).await?;
        for r in &remote_checks {
            if r.check_id == health::SERF_CHECK_ID || local.checks.contains_key(&r.check_id) {
                continue;
            }
            let req = DeregisterRequest {
                node: node.clone(),
                check_id: r.check_id.clone(),
                ..Default::default()
            };
            self.rpc_write(WriteRequest::Deregister(req)).await?;
        }
        self.inner
            .anti_entropy
            .node_synced
            .store(true, Ordering::SeqCst);
        Ok(())
    }
}

/// Consul's `aeScale`: the full-sync interval grows with the cluster past 128 nodes (one step
/// per doubling), so servers see a bounded rate of anti-entropy syncs.
fn ae_scale(interval: Duration, nodes: usize) -> Duration {
    const THRESHOLD: usize = 128;
    if nodes <= THRESHOLD {
        return interval;
    }
    let mult = ((nodes as f64).log2() - (THRESHOLD as f64).log2()).ceil() as u32 + 1;
    interval * mult
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anti_entropy_interval_scales_with_cluster_size() {
        let d = Duration::from_secs(60);
        assert_eq!(ae_scale(d, 1), d);
        assert_eq!(ae_scale(d, 128), d);
        assert_eq!(ae_scale(d, 129), d * 2);
        assert_eq!(ae_scale(d, 256), d * 2);
        assert_eq!(ae_scale(d, 257), d * 3);
        assert_eq!(ae_scale(d, 10_000), d * 8);
    }
}
