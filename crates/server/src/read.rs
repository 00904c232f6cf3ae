//! Reads: consistency modes and blocking queries over the store's watch sets.
//!
//! A blocking query (`min_index > 0`) re-runs its read each time something it read changes,
//! until the result's index passes `min_index` or the wait (plus up to 1/16 jitter, like
//! Consul, so many clients do not wake in step) runs out; then it answers with what it has.

use std::time::Duration;

use proconsul_state::{View, WatchSet};
use proconsul_types::{
    health, CheckServiceNode, Consistency, QueryMeta, QueryOptions, ReadRequest, ReadResponse,
    RpcError,
};
use rand::Rng;

use crate::{raft_error, Server};

impl Server {
    /// Serve a read here, without forwarding (a non-leader answers an error unless `stale`).
    pub(crate) async fn read_here(
        &self,
        req: ReadRequest,
        opts: QueryOptions,
    ) -> Result<(QueryMeta, ReadResponse), RpcError> {
        if !opts.datacenter.is_empty() && opts.datacenter != self.inner.opts.datacenter {
            return Err(RpcError::Internal("No path to datacenter".into()));
        }
        let raft = &self.inner.raft;
        match opts.consistency {
            Consistency::Stale => {}
            Consistency::Default => {
                if !self.is_leader() {
                    return Err(raft_error(proconsul_raft::RaftError::ForwardToLeader {
                        leader: self.leader(),
                    }));
                }
            }
            Consistency::Consistent => raft.ensure_linearizable().await.map_err(raft_error)?,
        }

        let deadline = opts.max_wait.map(|w| {
            let jitter = (w.as_millis() as u64 / 16).max(1);
            tokio::time::Instant::now()
                + w
                + Duration::from_millis(rand::rng().random_range(0..jitter))
        });
        loop {
            let view = self.inner.store.view();
            let mut ws = WatchSet::new();
            let (index, resp) = run_read(&view, &mut ws, &req);
            let done = match deadline {
                None => true,
                Some(d) => index > opts.min_index || tokio::time::Instant::now() >= d,
            };
            if done || ws.is_empty() {
                return Ok((self.meta(index, opts.consistency), resp));
            }
            let d = deadline.expect("blocking query has a deadline");
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => {
                    return Ok((self.meta(index, opts.consistency), resp));
                }
                _ = ws.changed() => {}
                _ = tokio::time::sleep_until(d) => {}
            }
        }
    }

    pub(crate) fn meta(&self, index: u64, consistency: Consistency) -> QueryMeta {
        QueryMeta {
            index: index.max(1),
            known_leader: self.leader().is_some(),
            last_contact_ms: self.last_contact_ms(),
            consistency,
        }
    }
}

fn meta_matches(
    node_meta: &std::collections::BTreeMap<String, String>,
    filter: &[(String, String)],
) -> bool {
    filter.iter().all(|(k, v)| node_meta.get(k) == Some(v))
}

/// Run one read against a view, registering what it read in `ws`.
fn run_read(view: &View, ws: &mut WatchSet, req: &ReadRequest) -> (u64, ReadResponse) {
    match req {
        ReadRequest::CatalogNodes { node_meta } => {
            let (i, mut nodes) = view.nodes(ws);
            nodes.retain(|n| meta_matches(&n.meta, node_meta));
            (i, ReadResponse::Nodes(nodes))
        }
        ReadRequest::CatalogServices { node_meta } => {
            let (i, services) = view.services(ws);
            if node_meta.is_empty() {
                return (i, ReadResponse::Services(services));
            }
            // Keep only services with an instance on a matching node.
            let mut out = std::collections::BTreeMap::new();
            for name in services.keys() {
                let (_, rows) = view.service_nodes(ws, name, &[]);
                let mut tags: Vec<String> = rows
                    .iter()
                    .filter(|r| meta_matches(&r.node_meta, node_meta))
                    .flat_map(|r| r.service_tags.iter().cloned())
                    .collect();
                if rows.iter().any(|r| meta_matches(&r.node_meta, node_meta)) {
                    tags.sort();
                    tags.dedup();
                    out.insert(name.clone(), tags);
                }
            }
            (i, ReadResponse::Services(out))
        }
        ReadRequest::CatalogServiceNodes {
            service,
            tags,
            node_meta,
        } => {
            let (i, mut rows) = view.service_nodes(ws, service, tags);
            rows.retain(|r| meta_matches(&r.node_meta, node_meta));
            (i, ReadResponse::ServiceNodes(rows))
        }
        ReadRequest::CatalogNodeServices { node } => {
            let (i, found) = view.node_services(ws, node);
            (i, ReadResponse::NodeServices(found))
        }
        ReadRequest::HealthNodeChecks { node } => {
            let (i, c) = view.node_checks(ws, node);
            (i, ReadResponse::Checks(c))
        }
        ReadRequest::HealthServiceChecks { service } => {
            let (i, c) = view.service_checks(ws, service);
            (i, ReadResponse::Checks(c))
        }
        ReadRequest::HealthChecksInState { state } => {
            let (i, c) = view.checks_in_state(ws, state);
            (i, ReadResponse::Checks(c))
        }
        ReadRequest::HealthServiceNodes {
            service,
            tags,
            passing,
            node_meta,
        } => {
            let (i, mut rows) = view.check_service_nodes(ws, service, tags);
            rows.retain(|r| meta_matches(&r.node.meta, node_meta));
            if *passing {
                rows.retain(all_passing);
            }
            (i, ReadResponse::CheckServiceNodes(rows))
        }
        ReadRequest::KvGet { key } => {
            // Like Consul's KVS.Get: an existing key answers with its own ModifyIndex, so a
            // blocking query on it waits for *its* next change, not any KV write.
            let (i, e) = view.kv_get(ws, key);
            let i = e.as_ref().map_or(i, |e| e.modify_index);
            (i, ReadResponse::Kv(e))
        }
        ReadRequest::KvList { prefix } => {
            let (i, e) = view.kv_list(ws, prefix);
            (i, ReadResponse::KvList(e))
        }
        ReadRequest::KvKeys { prefix, separator } => {
            let (i, k) = view.kv_keys(ws, prefix, separator.as_deref());
            (i, ReadResponse::Keys(k))
        }
        ReadRequest::SessionGet { id } => {
            let (i, s) = view.session(ws, id);
            (i, ReadResponse::Sessions(s.into_iter().collect()))
        }
        ReadRequest::SessionList => {
            let (i, s) = view.sessions(ws);
            (i, ReadResponse::Sessions(s))
        }
        ReadRequest::SessionNode { node } => {
            let (i, s) = view.node_sessions(ws, node);
            (i, ReadResponse::Sessions(s))
        }
        ReadRequest::CoordinateNodes => {
            let (i, c) = view.coordinates(ws);
            (i, ReadResponse::Coordinates(c))
        }
        ReadRequest::CoordinateNode { node } => {
            let (i, c) = view.node_coordinates(ws, node);
            (i, ReadResponse::Coordinates(c))
        }
        // Not blocking in Consul either (nothing is added to `ws`). Before the leader stored
        // one, Consul's defaults with index 0.
        ReadRequest::AutopilotConfig => {
            let c = view.autopilot_config().unwrap_or_default();
            let i = if c.modify_index > 0 {
                c.modify_index
            } else {
                view.index()
            };
            (
                i,
                ReadResponse::AutopilotConfig(crate::autopilot::to_api(&c)),
            )
        }
    }
}

/// `?passing`: every check of the instance (node-level and its own) is passing.
fn all_passing(r: &CheckServiceNode) -> bool {
    r.checks.iter().all(|c| c.status == health::PASSING)
}
