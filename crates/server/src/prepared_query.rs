//! Prepared queries (Consul's `PreparedQuery.*` endpoints): create, update, delete, read,
//! list, execute (with failover to other datacenters) and explain.
//!
//! Their ACLs need the stored query (a change is judged by the name of the query it changes as
//! well as the one it proposes), so, as in Consul's endpoint, they are checked here rather
//! than in `acl/enforce.rs`: a query with a name needs `query:write` on it to change and
//! `query:read` to be seen; one without a name is reached by its ID alone (the ID is the
//! credential) and listed only to tokens with `acl:read`. Execution needs no `query` rule;
//! its nodes are cut to what the query's token (else the caller's) may read.
//!
//! Templates (`query_template.rs`) answer for every name their own name is a prefix of,
//! rendered for that name when resolved.

use std::sync::Arc;

use proconsul_acl::Check;
use proconsul_state::{Command, PreparedQueryCommand, PreparedQueryRec, View, WatchSet};
use proconsul_types::{
    health, CheckServiceNode, Consistency, HealthServiceNodes, PreparedQuery, PreparedQueryApply,
    PreparedQueryExecute, PreparedQueryExecuteResponse, PreparedQueryExplainResponse,
    PreparedQueryOp, QueryMeta, QueryOptions, Read, ReadResponse, RpcError, ServerReply,
    ServerRequest,
};

use crate::acl::enforce::need;
use crate::acl::Identity;
use crate::{query_template, Server};

/// What a token reads as to those who may not see it (Consul's `redactedToken`).
const REDACTED: &str = "<hidden>";

/// Consul's `ErrQueryNotFound`.
fn not_found() -> RpcError {
    RpcError::NotFound("Query not found".into())
}

/// Consul's `GetACLPrefix`: the name, when there is one.
fn acl_prefix(q: &PreparedQuery) -> Option<&str> {
    (!q.name.is_empty()).then_some(q.name.as_str())
}

/// May `id` see `q`? (No ACLs: yes.)
fn readable(id: Option<&Identity>, q: &PreparedQuery) -> bool {
    let Some(id) = id else { return true };
    match acl_prefix(q) {
        Some(p) => id.authz.allows(Check::PreparedQueryRead(p)),
        None => id.authz.acl_read(),
    }
}

/// Hide the query's token from those who may not write ACLs.
fn redact(id: Option<&Identity>, mut q: PreparedQuery) -> PreparedQuery {
    if id.is_some_and(|id| !id.authz.acl_write()) && !q.token.is_empty() {
        q.token = REDACTED.into();
    }
    q
}

/// Consul's `parseQuery`: the shape of a query to create or update.
fn validate(q: &PreparedQuery) -> Result<(), String> {
    if q.name.is_empty() && q.template.kind.is_empty() && q.session.is_empty() {
        return Err("Must be bound to a session".into());
    }
    if q.token == REDACTED {
        return Err(format!(
            "Bad Token '{REDACTED}', it looks like a query definition with a redacted token was submitted"
        ));
    }
    if q.service.service.is_empty() {
        return Err("Must provide a Service name to query".into());
    }
    if q.service.failover.nearest_n < 0 {
        return Err(format!(
            "Bad NearestN '{}', must be >= 0",
            q.service.failover.nearest_n
        ));
    }
    let failover = &q.service.failover;
    if (failover.nearest_n != 0 || !failover.datacenters.is_empty()) && !failover.targets.is_empty()
    {
        return Err("Targets cannot be populated with NearestN or Datacenters".into());
    }
    for t in &failover.targets {
        if !t.peer.is_empty() {
            return Err(format!(
                "Bad failover target peer {:?}: cluster peering is not available in this build",
                t.peer
            ));
        }
        for (what, v) in [("partition", &t.partition), ("namespace", &t.namespace)] {
            if !v.is_empty() && v != "default" {
                return Err(format!(
                    "Bad failover target {what} {v:?}: only \"default\" exists (Consul Enterprise feature)"
                ));
            }
        }
    }
    if !q.dns.ttl.is_empty() {
        proconsul_types::duration::parse(&q.dns.ttl)
            .map_err(|e| format!("Bad DNS TTL '{}': {e}", q.dns.ttl))?;
    }
    Ok(())
}

/// Consul's execute filters, in its order: node and service metadata, health (critical
/// always out, warning out with `OnlyPassing`, `IgnoreCheckIDs` not counted), then tags
/// (`!tag` excludes; case-insensitive).
fn keep(q: &PreparedQuery, nodes: &mut Vec<CheckServiceNode>) {
    let s = &q.service;
    nodes.retain(|n| {
        s.node_meta
            .iter()
            .all(|(k, v)| n.node.meta.get(k) == Some(v))
            && s.service_meta
                .iter()
                .all(|(k, v)| n.service.meta.get(k) == Some(v))
            && n.checks.iter().all(|c| {
                s.ignore_check_ids.contains(&c.check_id)
                    || !(c.status == health::CRITICAL
                        || (s.only_passing && c.status == health::WARNING))
            })
            && s.tags.iter().all(|t| {
                let has = |tag: &str| n.service.tags.iter().any(|x| x.eq_ignore_ascii_case(tag));
                match t.strip_prefix('!') {
                    Some(not) => !has(not),
                    None => has(t),
                }
            })
    });
}

impl Server {
    /// `PreparedQuery.Apply`: the query's ID.
    pub(crate) async fn prepared_query_apply(
        &self,
        r: PreparedQueryApply,
        token: &str,
    ) -> Result<String, RpcError> {
        let id = self.resolve_token(token)?;
        let id = id.as_deref();
        let mut q = r.query;
        if r.op == PreparedQueryOp::Create {
            if !q.id.is_empty() {
                return Err(RpcError::Internal(
                    "ID must be empty when creating a new prepared query".into(),
                ));
            }
            q.id = uuid::Uuid::new_v4().to_string();
        }
        if let (Some(id), Some(prefix)) = (id, acl_prefix(&q)) {
            need(id, Check::PreparedQueryWrite(prefix))?;
        }
        if r.op != PreparedQueryOp::Create {
            let view = self.inner.store.view();
            let Some(existing) = view.prepared_query(&mut WatchSet::new(), &q.id).1 else {
                return Err(RpcError::Internal(format!(
                    "Cannot modify non-existent prepared query: '{}'",
                    q.id
                )));
            };
            if let (Some(id), Some(prefix)) = (id, acl_prefix(&existing)) {
                need(id, Check::PreparedQueryWrite(prefix))?;
            }
        }
        let cmd = match r.op {
            PreparedQueryOp::Create | PreparedQueryOp::Update => {
                validate(&q)
                    .map_err(|e| RpcError::Internal(format!("Invalid prepared query: {e}")))?;
                if query_template::is_template(&q) {
                    query_template::check(&q).map_err(|e| {
                        RpcError::Internal(format!("failed compiling template: {e}"))
                    })?;
                }
                PreparedQueryCommand::Set(PreparedQueryRec::from_api(&q))
            }
            PreparedQueryOp::Delete => PreparedQueryCommand::Delete { id: q.id.clone() },
        };
        self.propose_ok(Command::PreparedQuery(cmd)).await?;
        Ok(q.id)
    }

    /// `PreparedQuery.Get`: 404 when unknown, 403 when the token may not see it.
    pub(crate) async fn prepared_query_get(
        &self,
        query_id: &str,
        opts: &QueryOptions,
        token: &str,
    ) -> Result<(QueryMeta, Vec<PreparedQuery>), RpcError> {
        let id = self.resolve_token(token)?;
        let id = id.as_deref();
        let (index, q) = self
            .blocking(opts, |view, ws| view.prepared_query(ws, query_id))
            .await?;
        let q = q.ok_or_else(not_found)?;
        // Without a name, the ID is enough to see it.
        if let (Some(id), Some(prefix)) = (id, acl_prefix(&q)) {
            need(id, Check::PreparedQueryRead(prefix))?;
        }
        Ok((self.meta(index, opts.consistency), vec![redact(id, q)]))
    }

    /// `PreparedQuery.List`: the queries the token may see.
    pub(crate) async fn prepared_query_list(
        &self,
        opts: &QueryOptions,
        token: &str,
    ) -> Result<(QueryMeta, Vec<PreparedQuery>), RpcError> {
        let id = self.resolve_token(token)?;
        let id = id.as_deref();
        let (index, mut all) = self
            .blocking(opts, |view, ws| view.prepared_queries(ws))
            .await?;
        let before = all.len();
        all.retain(|q| readable(id, q));
        let mut meta = self.meta(index, opts.consistency);
        meta.results_filtered_by_acls = all.len() != before && !token.is_empty();
        Ok((meta, all.into_iter().map(|q| redact(id, q)).collect()))
    }

    /// Run `read` as a blocking query (Consul's `blockingQuery`): again each time what it
    /// read changes, until its index passes `opts.min_index` or `opts.max_wait` runs out.
    async fn blocking<T>(
        &self,
        opts: &QueryOptions,
        read: impl Fn(&View, &mut WatchSet) -> (u64, T),
    ) -> Result<(u64, T), RpcError> {
        if opts.consistency == Consistency::Consistent {
            self.inner
                .raft
                .ensure_linearizable()
                .await
                .map_err(crate::raft_error)?;
        }
        let deadline = opts.max_wait.map(|w| tokio::time::Instant::now() + w);
        loop {
            let mut ws = WatchSet::new();
            let (index, out) = read(&self.inner.store.view(), &mut ws);
            let Some(deadline) = deadline.filter(|_| opts.min_index > 0 && index <= opts.min_index)
            else {
                return Ok((index, out));
            };
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => return Ok((index, out)),
                _ = ws.changed() => {}
                _ = tokio::time::sleep_until(deadline) => return Ok((index, out)),
            }
        }
    }

    /// `PreparedQuery.Explain`: the query a name or ID resolves to.
    pub(crate) fn prepared_query_explain(
        &self,
        id_or_name: &str,
        token: &str,
    ) -> Result<(QueryMeta, PreparedQueryExplainResponse), RpcError> {
        let id = self.resolve_token(token)?;
        let id = id.as_deref();
        let (index, q) = self.prepared_query_resolve(id_or_name)?;
        if let (Some(id), Some(prefix)) = (id, acl_prefix(&q)) {
            need(id, Check::PreparedQueryRead(prefix))?;
        } else if !readable(id, &q) {
            return Err(RpcError::PermissionDenied("Permission denied".into()));
        }
        Ok((
            self.meta(index, Consistency::Default),
            PreparedQueryExplainResponse {
                query: redact(id, q),
            },
        ))
    }

    /// `PreparedQuery.Execute`: the query's healthy instances here, or else in the first
    /// failover datacenter that has some (`NearestN` nearest first, then `Datacenters`).
    pub(crate) async fn prepared_query_execute(
        &self,
        r: PreparedQueryExecute,
        token: &str,
    ) -> Result<(QueryMeta, PreparedQueryExecuteResponse), RpcError> {
        let (index, q) = self.prepared_query_resolve(&r.id_or_name)?;
        // The query's own token, if it has one, reads the service.
        let token = if q.token.is_empty() { token } else { &q.token };
        let reader = self.resolve_token(token)?;

        let view = self.inner.store.view();
        let (_, mut nodes) =
            view.check_service_nodes(&mut WatchSet::new(), &q.service.service, &[]);
        keep(&q, &mut nodes);
        self.readable_nodes(reader.as_ref(), &mut nodes);
        let near = if r.near.is_empty() {
            q.service.near.as_str()
        } else {
            r.near.as_str()
        };
        let near = if near == "_agent" {
            r.agent_node.as_str()
        } else {
            near
        };
        shuffle(&mut nodes);
        self.sort_near(&view, &mut nodes, near);
        if r.limit > 0 {
            nodes.truncate(r.limit);
        }
        let mut reply = PreparedQueryExecuteResponse {
            service: q.service.service.clone(),
            nodes,
            dns: q.dns.clone(),
            datacenter: self.inner.opts.datacenter.clone(),
            failovers: 0,
        };
        if reply.nodes.is_empty() {
            self.fail_over(&q, token, r.limit, &mut reply).await;
        }
        Ok((self.meta(index, Consistency::Default), reply))
    }

    /// The query `id_or_name` names, a template rendered for the name (Consul's
    /// `PreparedQueryResolve`); 404 `Query not found` when none.
    fn prepared_query_resolve(&self, id_or_name: &str) -> Result<(u64, PreparedQuery), RpcError> {
        let (index, q) = self.inner.store.view().prepared_query_resolve(id_or_name);
        let q = q.ok_or_else(not_found)?;
        if !query_template::is_template(&q) {
            return Ok((index, q));
        }
        if q.id == id_or_name {
            return Err(RpcError::Internal(
                "prepared query templates can only be resolved up by name, not by ID".into(),
            ));
        }
        let rendered = query_template::render(&q, id_or_name).map_err(RpcError::Internal)?;
        Ok((index, rendered))
    }

    /// Consul's `sortNodesByDistanceFrom`: by estimated round-trip time from the node `near`
    /// (nodes without a coordinate last; nothing when `near` has none), then `near` itself
    /// first if it is among the first ten.
    fn sort_near(&self, view: &View, nodes: &mut [CheckServiceNode], near: &str) {
        if near.is_empty() {
            return;
        }
        let (_, coords) = view.coordinates(&mut WatchSet::new());
        let coord_of = |node: &str| {
            coords
                .iter()
                .find(|c| c.segment.is_empty() && c.node == node)
                .map(|c| &c.coord)
        };
        if let Some(from) = coord_of(near) {
            let distance = |node: &str| {
                coord_of(node)
                    .and_then(|c| from.distance_secs(c))
                    .unwrap_or(f64::INFINITY)
            };
            nodes.sort_by(|a, b| distance(&a.node.node).total_cmp(&distance(&b.node.node)));
        }
        if let Some(i) = nodes.iter().take(10).position(|n| n.node.node == near) {
            nodes.swap(0, i);
        }
    }

    /// Cut `nodes` to what `reader` may read (service and node).
    fn readable_nodes(&self, reader: Option<&Arc<Identity>>, nodes: &mut Vec<CheckServiceNode>) {
        if let Some(id) = reader {
            nodes.retain(|n| {
                id.authz.service_read(&n.service.service) && id.authz.node_read(&n.node.node)
            });
        }
    }

    /// Consul's `queryFailover`: the datacenters to try, in order, each once; unknown ones
    /// are skipped. A datacenter that cannot be reached is passed over.
    async fn fail_over(
        &self,
        q: &PreparedQuery,
        token: &str,
        limit: usize,
        reply: &mut PreparedQueryExecuteResponse,
    ) {
        let here = self.inner.opts.datacenter.clone();
        let known = self.datacenters();
        let failover = &q.service.failover;
        let mut order: Vec<String> = known
            .iter()
            .filter(|d| **d != here)
            .take(failover.nearest_n.max(0) as usize)
            .cloned()
            .collect();
        // `Targets` (never together with the two above): datacenters named by each target.
        let listed = failover
            .datacenters
            .iter()
            .chain(failover.targets.iter().map(|t| &t.datacenter));
        for dc in listed {
            if *dc != here && known.contains(dc) && !order.contains(dc) {
                order.push(dc.clone());
            }
        }
        for dc in order {
            reply.failovers += 1;
            let read = Read {
                req: HealthServiceNodes {
                    service: q.service.service.clone(),
                    ..Default::default()
                }
                .into(),
                opts: QueryOptions {
                    datacenter: dc.clone(),
                    ..Default::default()
                },
            };
            // Straight to that datacenter's servers (what `call` does for another datacenter).
            let remote = self.forward_to_datacenter(&dc, ServerRequest::Read(read), token);
            let nodes = match remote.await {
                Ok(ServerReply::Read((_, ReadResponse::HealthServiceNodes(nodes)))) => nodes,
                Ok(other) => {
                    tracing::warn!(datacenter = %dc, reply = other.name(), "unexpected failover reply");
                    continue;
                }
                Err(error) => {
                    tracing::warn!(datacenter = %dc, %error, "prepared query failover failed");
                    continue;
                }
            };
            let mut nodes = nodes;
            keep(q, &mut nodes);
            shuffle(&mut nodes);
            if limit > 0 {
                nodes.truncate(limit);
            }
            if !nodes.is_empty() {
                reply.nodes = nodes;
                reply.datacenter = dc;
                return;
            }
        }
    }
}

/// Consul shuffles the nodes, so DNS answers spread the load (a `?near=` sort then orders
/// them by distance).
fn shuffle(nodes: &mut [CheckServiceNode]) {
    use rand::seq::SliceRandom;
    nodes.shuffle(&mut rand::rng());
}
