//! Reads: consistency modes and blocking queries over the store's watch sets.
//!
//! A blocking query (`min_index > 0`) re-runs its read each time something it read changes,
//! until the result's index passes `min_index` or the wait (plus up to 1/16 jitter, like
//! Consul, so many clients do not wake in step) runs out; then it answers with what it has.

use std::time::Duration;

use proconsul_state::{View, WatchSet};
use proconsul_types::{
    health, CheckServiceNode, Consistency, Query, QueryMeta, QueryOptions, ReadRequest,
    ReadResponse, RpcError,
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
            // Boxed: openraft's future is large, and a blocking query would carry its room
            // for as long as it waits.
            Consistency::Consistent => Box::pin(raft.ensure_linearizable())
                .await
                .map_err(raft_error)?,
        }

        let deadline = opts.max_wait.map(|w| {
            let jitter = (w.as_millis() as u64 / 16).max(1);
            tokio::time::Instant::now()
                + w
                + Duration::from_millis(rand::rng().random_range(0..jitter))
        });
        let mut stopping = false;
        loop {
            let view = self.inner.store.view();
            let mut ws = WatchSet::new();
            let (index, resp) = run_read(&view, &mut ws, &req);
            let done = match deadline {
                None => true,
                Some(d) => stopping || index > opts.min_index || tokio::time::Instant::now() >= d,
            };
            if done || ws.is_empty() {
                return Ok((self.meta(index, opts.consistency), resp));
            }
            // Not held while it waits (a service's instances with their checks are kilobytes,
            // times every open query): whatever ends the wait, the read runs again.
            drop((view, resp));
            let d = deadline.expect("blocking query has a deadline");
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => stopping = true,
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
            results_filtered_by_acls: false,
        }
    }
}

fn meta_matches(
    node_meta: &std::collections::BTreeMap<String, String>,
    filter: &[(String, String)],
) -> bool {
    filter.iter().all(|(k, v)| node_meta.get(k) == Some(v))
}

/// Answer `q` with `f`, in `q`'s own response variant.
fn answer<Q: Query>(q: &Q, f: impl FnOnce(&Q) -> (u64, Q::Out)) -> (u64, ReadResponse) {
    let (index, out) = f(q);
    (index, Q::reply(out))
}

/// Run one read against a view, registering what it read in `ws`.
fn run_read(view: &View, ws: &mut WatchSet, req: &ReadRequest) -> (u64, ReadResponse) {
    match req {
        ReadRequest::CatalogNodes(q) => answer(q, |q| {
            let (i, mut nodes) = view.nodes(ws);
            nodes.retain(|n| meta_matches(&n.meta, &q.node_meta));
            (i, nodes)
        }),
        ReadRequest::CatalogServices(q) => answer(q, |q| {
            let (i, services) = view.services(ws);
            if q.node_meta.is_empty() {
                return (i, services);
            }
            // Keep only services with an instance on a matching node.
            let mut out = std::collections::BTreeMap::new();
            for name in services.keys() {
                let (_, rows) = view.service_nodes(ws, name, &[]);
                let mut tags: Vec<String> = rows
                    .iter()
                    .filter(|r| meta_matches(&r.node_meta, &q.node_meta))
                    .flat_map(|r| r.service_tags.iter().cloned())
                    .collect();
                if rows
                    .iter()
                    .any(|r| meta_matches(&r.node_meta, &q.node_meta))
                {
                    tags.sort();
                    tags.dedup();
                    out.insert(name.clone(), tags);
                }
            }
            (i, out)
        }),
        ReadRequest::CatalogServiceNodes(q) => answer(q, |q| {
            let (i, mut rows) = if q.connect {
                view.connect_service_nodes(ws, &q.service, &q.tags)
            } else {
                view.service_nodes(ws, &q.service, &q.tags)
            };
            rows.retain(|r| meta_matches(&r.node_meta, &q.node_meta));
            (i, rows)
        }),
        ReadRequest::CatalogNodeServices(q) => answer(q, |q| view.node_services(ws, &q.node)),
        ReadRequest::HealthNodeChecks(q) => answer(q, |q| view.node_checks(ws, &q.node)),
        ReadRequest::HealthServiceChecks(q) => answer(q, |q| view.service_checks(ws, &q.service)),
        ReadRequest::HealthChecksInState(q) => answer(q, |q| view.checks_in_state(ws, &q.state)),
        ReadRequest::HealthServiceNodes(q) => answer(q, |q| {
            let (i, mut rows) = if q.connect {
                view.connect_check_service_nodes(ws, &q.service, &q.tags)
            } else {
                view.check_service_nodes(ws, &q.service, &q.tags)
            };
            rows.retain(|r| meta_matches(&r.node.meta, &q.node_meta));
            if q.passing {
                rows.retain(all_passing);
            }
            (i, rows)
        }),
        // Like Consul's KVS.Get: an existing key answers with its own ModifyIndex, so a
        // blocking query on it waits for *its* next change, not any KV write.
        ReadRequest::KvGet(q) => answer(q, |q| {
            let (i, e) = view.kv_get(ws, &q.key);
            (e.as_ref().map_or(i, |e| e.modify_index), e)
        }),
        ReadRequest::KvList(q) => answer(q, |q| view.kv_list(ws, &q.prefix)),
        ReadRequest::KvKeys(q) => {
            answer(q, |q| view.kv_keys(ws, &q.prefix, q.separator.as_deref()))
        }
        ReadRequest::SessionGet(q) => answer(q, |q| {
            let (i, s) = view.session(ws, &q.id);
            (i, s.into_iter().collect())
        }),
        ReadRequest::SessionList(q) => answer(q, |_| view.sessions(ws)),
        ReadRequest::SessionNode(q) => answer(q, |q| view.node_sessions(ws, &q.node)),
        ReadRequest::CoordinateNodes(q) => answer(q, |_| view.coordinates(ws)),
        ReadRequest::CoordinateNode(q) => answer(q, |q| view.node_coordinates(ws, &q.node)),
        // Not blocking in Consul either (nothing is added to `ws`). Before the leader stored
        // one, Consul's defaults with index 0.
        ReadRequest::AutopilotGetConfig(q) => answer(q, |_| {
            let c = view.autopilot_config().unwrap_or_default();
            let i = if c.modify_index > 0 {
                c.modify_index
            } else {
                view.index()
            };
            (i, crate::autopilot::to_api(&c))
        }),
        ReadRequest::InternalNodeDump(q) => answer(q, |_| view.node_dump(ws)),
        ReadRequest::InternalNodeInfo(q) => answer(q, |q| view.node_info(ws, &q.node)),
        ReadRequest::InternalServiceDump(q) => answer(q, |_| view.service_dump(ws)),
    }
}

/// `?passing`: every check of the instance (node-level and its own) is passing.
fn all_passing(r: &CheckServiceNode) -> bool {
    r.checks.iter().all(|c| c.status == health::PASSING)
}
