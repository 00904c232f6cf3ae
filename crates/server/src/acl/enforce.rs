//! What each request needs of its token, checked in `Server::call` before the request is
//! served ([`authorize`]), and what a token may see of a read's answer ([`filter`]).
//!
//! The permissions are Consul's, endpoint by endpoint (`agent/consul/*_endpoint.go`): a write
//! needs `write` on what it changes; a read of one named thing needs `read` on it (403
//! otherwise); a list is cut down to what the token may read and says so
//! (`X-Consul-Results-Filtered-By-ACLs`). Every request kind has an arm here: a new
//! request fails to compile until someone decides what it needs.

use proconsul_acl::Check;
use proconsul_state::WatchSet;
use proconsul_types::{
    KvWriteVerb, QueryMeta, ReadRequest, ReadResponse, RpcError, ServerReply, ServerRequest,
    WriteRequest,
};

use super::Identity;
use crate::Server;

/// Consul's 403 for `check`.
pub fn denied(id: &Identity, check: Check<'_>) -> RpcError {
    RpcError::PermissionDenied(check.permission_denied(&id.accessor_id))
}

/// `Ok` when the token passes `check`, Consul's 403 otherwise.
pub fn need(id: &Identity, check: Check<'_>) -> Result<(), RpcError> {
    if id.authz.allows(check) {
        Ok(())
    } else {
        Err(denied(id, check))
    }
}

/// Why a request may not be made.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Consul's 403.
    Denied(RpcError),
    /// Operation `index` of a transaction: Consul answers a rolled-back transaction (409,
    /// `Errors`), not a 403.
    TxnOp { index: usize, error: RpcError },
}

impl From<RpcError> for Refusal {
    fn from(e: RpcError) -> Refusal {
        Refusal::Denied(e)
    }
}

/// May `id` make request `req`? (Lists are not refused here but cut down by [`filter`].)
pub(crate) fn authorize(
    server: &Server,
    id: &Identity,
    req: &ServerRequest,
) -> Result<(), Refusal> {
    use ServerRequest as R;
    let decided = match req {
        R::StatusLeader(_)
        | R::StatusPeers(_)
        | R::StatusRaftStats(_)
        | R::RaftElect(_)
        | R::CatalogListDatacenters(_) => Ok(()),
        R::Read(r) => authorize_read(id, &r.req),
        R::Write(w) => return authorize_write(server, id, &w.req),
        R::RaftGetConfiguration(_)
        | R::AutopilotServerHealth(_)
        | R::AutopilotGetState(_)
        | R::OperatorUsage(_) => need(id, Check::OperatorRead),
        R::RaftRemovePeer(_) | R::RaftTransferLeader(_) => need(id, Check::OperatorWrite),
        R::EventFire(e) => need(id, Check::EventWrite(&e.event.name)),
        R::SnapshotSave(_) => need(id, Check::Snapshot),
        // Anyone may bootstrap once, read their own token, log in or out, and learn what
        // their own token grants: the secret is the credential.
        R::AclBootstrap(_) | R::AclLogin(_) | R::AclLogout(_) | R::AclResolveIdentity(_) => Ok(()),
        R::AclTokenRead(r) if r.by_secret => Ok(()),
        R::AclTokenRead(_)
        | R::AclTokenList(_)
        | R::AclPolicyRead(_)
        | R::AclPolicyList(_)
        | R::AclRoleRead(_)
        | R::AclRoleList(_)
        | R::AclAuthMethodRead(_)
        | R::AclAuthMethodList(_)
        | R::AclBindingRuleRead(_)
        | R::AclBindingRuleList(_)
        | R::AclReplicate(_) => need(id, Check::AclRead),
        R::AclTokenSet(_)
        | R::AclTokenClone(_)
        | R::AclTokenDelete(_)
        | R::AclPolicySet(_)
        | R::AclPolicyDelete(_)
        | R::AclRoleSet(_)
        | R::AclRoleDelete(_)
        | R::AclAuthMethodSet(_)
        | R::AclAuthMethodDelete(_)
        | R::AclBindingRuleSet(_)
        | R::AclBindingRuleDelete(_) => need(id, Check::AclWrite),
        // Judged against the stored query in `prepared_query.rs`, as Consul's endpoint does.
        R::PreparedQueryApply(_)
        | R::PreparedQueryGet(_)
        | R::PreparedQueryList(_)
        | R::PreparedQueryExecute(_)
        | R::PreparedQueryExplain(_) => Ok(()),
    };
    Ok(decided?)
}

fn authorize_read(id: &Identity, req: &ReadRequest) -> Result<(), RpcError> {
    use ReadRequest as Q;
    match req {
        Q::KvGet(q) => need(id, Check::KeyRead(&q.key)),
        Q::KvList(q) => list_allowed(id, &q.prefix),
        Q::KvKeys(q) => list_allowed(id, &q.prefix),
        Q::CoordinateNode(q) => need(id, Check::NodeRead(&q.node)),
        Q::AutopilotGetConfig(_) => need(id, Check::OperatorRead),
        // Lists: filtered.
        Q::CatalogNodes(_)
        | Q::CatalogNodeServices(_)
        | Q::CatalogServices(_)
        | Q::CatalogServiceNodes(_)
        | Q::HealthNodeChecks(_)
        | Q::HealthServiceChecks(_)
        | Q::HealthChecksInState(_)
        | Q::HealthServiceNodes(_)
        | Q::SessionGet(_)
        | Q::SessionList(_)
        | Q::SessionNode(_)
        | Q::CoordinateNodes(_)
        | Q::InternalNodeDump(_)
        | Q::InternalNodeInfo(_)
        | Q::InternalServiceDump(_) => Ok(()),
    }
}

/// `acl.enable_key_list_policy`: listing a prefix needs `list` on it.
fn list_allowed(id: &Identity, prefix: &str) -> Result<(), RpcError> {
    if id.authz.kv_list_allowed(prefix) {
        Ok(())
    } else {
        Err(denied(id, Check::KeyList(prefix)))
    }
}

fn authorize_write(server: &Server, id: &Identity, req: &WriteRequest) -> Result<(), Refusal> {
    // The store is read only for what the request alone does not say (whose service, whose
    // session): a KV write, the common case, is decided from the request.
    let view = || server.inner.store.view();
    let mut ws = WatchSet::new();
    let decided = match req {
        WriteRequest::Register(r) => {
            // Consul's `vetRegisterWithACL`: the node needs `node:write` unless the entry
            // leaves it as it is; the service needs `service:write`; each check, write on
            // what it belongs to.
            let unchanged = view().node(&mut ws, &r.node).1.is_some_and(|n| {
                r.skip_node_update
                    || (n.address == r.address
                        && (r.id.is_empty() || n.id.eq_ignore_ascii_case(&r.id))
                        && r.tagged_addresses
                            .iter()
                            .all(|(k, v)| n.tagged_addresses.get(k) == Some(v))
                        && r.node_meta.iter().all(|(k, v)| n.meta.get(k) == Some(v)))
            });
            if !unchanged {
                need(id, Check::NodeWrite(&r.node))?;
            }
            if let Some(s) = &r.service {
                need(id, Check::ServiceWrite(&s.service))?;
                let dest = &s.proxy.destination_service_name;
                if !dest.is_empty() {
                    need(id, Check::ServiceWrite(dest))?;
                }
            }
            for c in r.check.iter().chain(r.checks.iter()) {
                if c.service_id.is_empty() {
                    need(id, Check::NodeWrite(&r.node))?;
                } else {
                    let name = r
                        .service
                        .as_ref()
                        .filter(|s| {
                            s.id == c.service_id || (s.id.is_empty() && s.service == c.service_id)
                        })
                        .map(|s| s.service.clone())
                        .or_else(|| service_name(&view(), &r.node, &c.service_id))
                        .unwrap_or_else(|| c.service_id.clone());
                    need(id, Check::ServiceWrite(&name))?;
                }
            }
            Ok(())
        }
        WriteRequest::Deregister(d) => {
            if !d.service_id.is_empty() {
                match service_name(&view(), &d.node, &d.service_id) {
                    Some(name) => need(id, Check::ServiceWrite(&name)),
                    None => need(id, Check::NodeWrite(&d.node)),
                }
            } else if !d.check_id.is_empty() {
                let owner = view()
                    .node_checks(&mut ws, &d.node)
                    .1
                    .into_iter()
                    .find(|c| c.check_id == d.check_id)
                    .filter(|c| !c.service_id.is_empty());
                match owner {
                    Some(c) => need(id, Check::ServiceWrite(&c.service_name)),
                    None => need(id, Check::NodeWrite(&d.node)),
                }
            } else {
                need(id, Check::NodeWrite(&d.node))
            }
        }
        WriteRequest::Kv { verb, key, .. } => match verb {
            KvWriteVerb::DeleteTree => need(id, Check::KeyWritePrefix(key)),
            _ => need(id, Check::KeyWrite(key)),
        },
        WriteRequest::Txn(ops) => {
            let txn_view = view();
            for (index, op) in ops.iter().enumerate() {
                if let Err(error) = authorize_txn_op(&txn_view, id, op) {
                    return Err(Refusal::TxnOp { index, error });
                }
            }
            Ok(())
        }
        WriteRequest::SessionCreate(s) => need(id, Check::SessionWrite(&s.node)),
        WriteRequest::SessionDestroy { id: sid } | WriteRequest::SessionRenew { id: sid } => {
            match view().session(&mut ws, sid).1 {
                Some(s) => need(id, Check::SessionWrite(&s.node)),
                // Unknown sessions answer as they would without ACLs.
                None => Ok(()),
            }
        }
        WriteRequest::SnapshotRestore(_) => need(id, Check::Snapshot),
        WriteRequest::CoordinateUpdate(c) => need(id, Check::NodeWrite(&c.node)),
        WriteRequest::AutopilotSetConfig { .. } => need(id, Check::OperatorWrite),
    };
    Ok(decided?)
}

/// One transaction operation's permission (Consul checks each and reports the first refused
/// one by its index).
fn authorize_txn_op(
    view: &proconsul_state::View,
    id: &Identity,
    op: &proconsul_types::TxnOp,
) -> Result<(), RpcError> {
    let mut ws = WatchSet::new();
    if let Some(kv) = &op.kv {
        let check = match kv.verb.as_str() {
            "get" | "get-tree" | "check-index" | "check-session" => {
                if kv.verb == "get-tree" {
                    Check::KeyList(&kv.key)
                } else {
                    Check::KeyRead(&kv.key)
                }
            }
            "delete-tree" => Check::KeyWritePrefix(&kv.key),
            _ => Check::KeyWrite(&kv.key),
        };
        if matches!(check, Check::KeyList(_)) {
            list_allowed(id, &kv.key)?;
        } else {
            need(id, check)?;
        }
    }
    if let Some(n) = &op.node {
        if n.verb == "get" {
            need(id, Check::NodeRead(&n.node.node))?;
        } else {
            need(id, Check::NodeWrite(&n.node.node))?;
        }
    }
    if let Some(s) = &op.service {
        if s.verb == "get" {
            need(id, Check::ServiceRead(&s.service.service))?;
        } else {
            need(id, Check::ServiceWrite(&s.service.service))?;
        }
    }
    if let Some(c) = &op.check {
        let check = if c.check.service_id.is_empty() {
            Check::NodeWrite(&c.check.node)
        } else {
            Check::ServiceWrite(&c.check.service_name)
        };
        need(id, check)?;
    }
    if let Some(s) = &op.session {
        let node = view
            .session(&mut ws, &s.session.id)
            .1
            .map(|s| s.node)
            .unwrap_or_default();
        need(id, Check::SessionWrite(&node))?;
    }
    Ok(())
}

fn service_name(view: &proconsul_state::View, node: &str, service_id: &str) -> Option<String> {
    view.node_services(&mut WatchSet::new(), node)
        .1
        .and_then(|(_, services)| services.into_iter().find(|s| s.id == service_id))
        .map(|s| s.service)
}

/// What a token's secret reads as to those who may not see it.
const HIDDEN: &str = "<hidden>";

/// Cut a reply down to what `id` may read.
pub(crate) fn filter(id: &Identity, reply: ServerReply, has_token: bool) -> ServerReply {
    match reply {
        ServerReply::Read((meta, resp)) => {
            let (resp, cut) = filter_read(id, resp);
            ServerReply::Read((filtered(meta, cut && has_token), resp))
        }
        // Secrets are shown only to tokens that may write ACLs (and to their owner).
        ServerReply::AclTokenList((meta, mut v)) if !id.authz.acl_write() => {
            for t in &mut v {
                t.secret_id = HIDDEN.into();
            }
            ServerReply::AclTokenList((meta, v))
        }
        ServerReply::AclTokenRead((meta, Some(mut t)))
            if !id.authz.acl_write() && t.accessor_id != id.accessor_id =>
        {
            t.secret_id = HIDDEN.into();
            ServerReply::AclTokenRead((meta, Some(t)))
        }
        other => other,
    }
}

fn filtered(mut meta: QueryMeta, cut: bool) -> QueryMeta {
    meta.results_filtered_by_acls |= cut;
    meta
}

/// Keep what `keep` accepts; `true` when something was dropped.
fn retain<T>(v: &mut Vec<T>, keep: impl Fn(&T) -> bool) -> bool {
    let before = v.len();
    v.retain(keep);
    v.len() != before
}

fn filter_read(id: &Identity, resp: ReadResponse) -> (ReadResponse, bool) {
    use ReadResponse as A;
    let a = &id.authz;
    match resp {
        A::CatalogNodes(mut v) => {
            let cut = retain(&mut v, |n| a.node_read(&n.node));
            (A::CatalogNodes(v), cut)
        }
        A::CatalogServices(mut m) => {
            let before = m.len();
            m.retain(|name, _| a.service_read(name));
            let cut = m.len() != before;
            (A::CatalogServices(m), cut)
        }
        A::CatalogServiceNodes(mut v) => {
            let cut = retain(&mut v, |s| {
                a.service_read(&s.service_name) && a.node_read(&s.node)
            });
            (A::CatalogServiceNodes(v), cut)
        }
        // A node the token may not read is no node at all.
        A::CatalogNodeServices(Some((node, _))) if !a.node_read(&node.node) => {
            (A::CatalogNodeServices(None), true)
        }
        A::CatalogNodeServices(Some((node, mut services))) => {
            let cut = retain(&mut services, |s| a.service_read(&s.service));
            (A::CatalogNodeServices(Some((node, services))), cut)
        }
        A::HealthNodeChecks(mut v) => {
            let cut = retain(&mut v, |c| check_visible(id, c));
            (A::HealthNodeChecks(v), cut)
        }
        A::HealthServiceChecks(mut v) => {
            let cut = retain(&mut v, |c| check_visible(id, c));
            (A::HealthServiceChecks(v), cut)
        }
        A::HealthChecksInState(mut v) => {
            let cut = retain(&mut v, |c| check_visible(id, c));
            (A::HealthChecksInState(v), cut)
        }
        A::HealthServiceNodes(mut v) => {
            let cut = retain(&mut v, |c| {
                a.node_read(&c.node.node) && a.service_read(&c.service.service)
            });
            (A::HealthServiceNodes(v), cut)
        }
        A::KvList(mut v) => {
            let cut = retain(&mut v, |e| a.key_read(&e.key));
            (A::KvList(v), cut)
        }
        A::KvKeys(mut v) => {
            let cut = retain(&mut v, |k| a.key_read(k));
            (A::KvKeys(v), cut)
        }
        A::SessionGet(mut v) => {
            let cut = retain(&mut v, |s| a.session_read(&s.node));
            (A::SessionGet(v), cut)
        }
        A::SessionList(mut v) => {
            let cut = retain(&mut v, |s| a.session_read(&s.node));
            (A::SessionList(v), cut)
        }
        A::SessionNode(mut v) => {
            let cut = retain(&mut v, |s| a.session_read(&s.node));
            (A::SessionNode(v), cut)
        }
        A::CoordinateNodes(mut v) => {
            let cut = retain(&mut v, |c| a.node_read(&c.node));
            (A::CoordinateNodes(v), cut)
        }
        // Consul's `filterNodeDump`: nodes the token may read, and of each only the
        // services and checks it may read.
        A::InternalNodeDump(mut v) => {
            let cut = filter_node_dump(id, &mut v);
            (A::InternalNodeDump(v), cut)
        }
        A::InternalNodeInfo(mut v) => {
            let cut = filter_node_dump(id, &mut v);
            (A::InternalNodeInfo(v), cut)
        }
        A::InternalServiceDump(mut v) => {
            let cut = retain(&mut v, |c| {
                a.node_read(&c.node.node) && a.service_read(&c.service.service)
            });
            (A::InternalServiceDump(v), cut)
        }
        other => (other, false),
    }
}

/// Keep the nodes `id` may read, and of those the services and checks it may read; `true`
/// when something was dropped.
fn filter_node_dump(id: &Identity, dump: &mut Vec<proconsul_types::NodeInfo>) -> bool {
    let a = &id.authz;
    let mut cut = retain(dump, |n| a.node_read(&n.node));
    for n in dump.iter_mut() {
        cut |= retain(&mut n.services, |s| a.service_read(&s.service));
        cut |= retain(&mut n.checks, |c| check_visible(id, c));
    }
    cut
}

/// A node check needs `node:read`; a service check `service:read` on its service.
fn check_visible(id: &Identity, c: &proconsul_types::HealthCheck) -> bool {
    if c.service_id.is_empty() {
        id.authz.node_read(&c.node)
    } else {
        id.authz.service_read(&c.service_name)
    }
}
