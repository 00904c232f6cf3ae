//! The one place every request to a server passes: [`Server::call`].
//!
//! Whether it comes from this agent's HTTP API or DNS, from a client agent over RPC, or from a
//! follower forwarding it, a [`ServerRequest`] is checked here — the datacenter it names
//! (`?dc=`) — and routed by [`ServerRequest::route`]: served here, or forwarded to the leader
//! (waiting out an election up to Consul's `rpc_hold_timeout`). [`Server::serve`] is the table
//! of handlers, one arm per request. Authorisation (ACLs) and cross-datacenter forwarding hook
//! in at the top of [`Server::call`], before anything is served.

use proconsul_types::{
    Consistency, Route, RpcError, ServerCall, ServerReply, ServerRequest, Usage,
};

use crate::{raft_error, raft_id_from_node_id, Server};

/// Consul's own service, which usage does not bill.
const CONSUL_SERVICE: &str = "consul";
/// The Connect service kinds `/v1/operator/usage` reports.
const CONNECT_KINDS: [&str; 5] = [
    "connect-native",
    "connect-proxy",
    "ingress-gateway",
    "mesh-gateway",
    "terminating-gateway",
];

impl Server {
    /// Serve a typed request with `token`'s rights (see [`Server::call`]).
    pub async fn call_typed<R: ServerCall>(
        &self,
        req: R,
        token: &str,
    ) -> Result<R::Reply, RpcError> {
        R::from_reply(self.call(req.into_request(), token, false).await?)
    }

    /// Serve `req` here or on the leader, with the rights of the caller's ACL `token` (empty:
    /// anonymous). A request another server `forwarded` is served where it lands, never
    /// forwarded again, so a leadership change mid-call ends in an error (the forwarder
    /// retries idempotent requests) rather than a loop.
    ///
    /// The request goes boxed through the steps below: an `async fn` keeps room for its
    /// arguments beside the futures it awaits, so each step holding a `ServerRequest` by value
    /// (432 bytes) added about 900 bytes to the future every open blocking query holds.
    pub fn call<'a>(
        &'a self,
        req: ServerRequest,
        token: &'a str,
        forwarded: bool,
    ) -> impl std::future::Future<Output = Result<ServerReply, RpcError>> + Send + 'a {
        self.call_boxed(Box::new(req), token, forwarded)
    }

    /// [`Server::call`] of a request already boxed.
    pub async fn call_boxed(
        &self,
        req: Box<ServerRequest>,
        token: &str,
        forwarded: bool,
    ) -> Result<ServerReply, RpcError> {
        let dc = req.datacenter();
        // Forwarding is boxed here and below: an open blocking query holds this future for as
        // long as it waits, so its inline size is what a local read needs, not the largest
        // path a request can take (`inline_future_of_a_read_stays_small`).
        if !dc.is_empty() && dc != self.inner.opts.datacenter {
            let dc = dc.to_string();
            return Box::pin(self.forward_to_datacenter(&dc, *req, token)).await;
        }
        if let Some(primary) = self.acl_primary_of(&req) {
            // ACL state is the primary's: a secondary sends the write there and gets it back
            // by replication (Consul's `args.Datacenter = PrimaryDatacenter`).
            let mut req = req;
            req.set_acl_datacenter(&primary);
            return Box::pin(self.forward_to_datacenter(&primary, *req, token)).await;
        }
        self.route_call(req, token, forwarded).await
    }

    /// The primary datacenter an ACL write made here must go to: in a secondary, writes of
    /// policies, roles and global tokens (a token local to this datacenter stays here).
    fn acl_primary_of(&self, req: &ServerRequest) -> Option<String> {
        let primary = &self.acl_config().primary_datacenter;
        if primary.is_empty() {
            return None;
        }
        let local_token = |accessor: &str| {
            self.inner
                .store
                .view()
                .acl_token(&mut proconsul_state::WatchSet::new(), accessor)
                .1
                .is_some_and(|t| t.local)
        };
        let global = match req {
            ServerRequest::AclPolicySet(_)
            | ServerRequest::AclPolicyDelete(_)
            | ServerRequest::AclRoleSet(_)
            | ServerRequest::AclRoleDelete(_) => true,
            ServerRequest::AclTokenSet(t) => !t.token.local,
            ServerRequest::AclTokenClone(t) => !local_token(&t.accessor_id),
            ServerRequest::AclTokenDelete(t) => !local_token(&t.accessor_id),
            _ => false,
        };
        global.then(|| primary.clone())
    }

    /// Serve `req` here with `token`'s rights: who the token is, whether it may make this
    /// request at all, and (lists) what of the answer it may see. Done where the request is
    /// served, as Consul's endpoints do after forwarding: the leader judges what it serves
    /// by the ACL state it has applied, so a token created a moment ago is known there even
    /// if the follower that received the request has not applied it yet.
    async fn serve_checked(
        &self,
        req: Box<ServerRequest>,
        token: &str,
    ) -> Result<ServerReply, RpcError> {
        let identity = self.resolve_token(token)?;
        if let Some(id) = &identity {
            use crate::acl::enforce::Refusal;
            match crate::acl::enforce::authorize(self, id, &req) {
                Ok(()) => {}
                Err(Refusal::Denied(e)) => return Err(e),
                Err(Refusal::TxnOp { index, error }) => {
                    return Ok(ServerReply::Write((
                        0,
                        proconsul_types::WriteResponse::Txn(proconsul_types::TxnResponse {
                            results: None,
                            errors: Some(vec![proconsul_types::TxnError {
                                op_index: index,
                                what: error.to_string(),
                            }]),
                        }),
                    )))
                }
            }
        }
        let reply = self.serve(req, token).await?;
        Ok(match &identity {
            // Consul says a list was cut only to a caller that gave a token (the agent's
            // `default` token counts as given).
            Some(id) => crate::acl::enforce::filter(id, reply, !token.is_empty()),
            None => reply,
        })
    }

    async fn route_call(
        &self,
        req: Box<ServerRequest>,
        token: &str,
        forwarded: bool,
    ) -> Result<ServerReply, RpcError> {
        let route = req.route();
        let limiter = self.request_limiter();
        limiter.admit(&req, forwarded, forwarded || self.is_leader())?;
        if forwarded && route == Route::Leader && !self.inner.raft.is_leader() {
            // Forwarded to a server that no longer leads: the forwarder decides whether to
            // retry (idempotent requests) once a leader is known again.
            return Err(RpcError::NoLeader);
        }
        if forwarded || route == Route::AnyServer || self.is_leader() {
            return self.serve_checked(req, token).await;
        }
        let idempotent = req.is_idempotent();
        let me = self.inner.opts.rpc_addr.to_string();
        Box::pin(self.forward(idempotent, |pool, leader| {
            let req = req.clone();
            let here = (leader == me).then(|| self.clone());
            let token = token.to_string();
            async move {
                match here {
                    // This server has just established its own leadership.
                    Some(server) => Ok(server.serve_checked(req, &token).await),
                    None => pool.request(&leader, *req, &token, true).await,
                }
            }
        }))
        .await
    }

    /// The handlers: serve `req` from this server's own state and Raft node. A read is served
    /// inline; every other request in a boxed future of its own, so that the futures of open
    /// blocking queries are not sized by the largest handler.
    async fn serve(&self, req: Box<ServerRequest>, token: &str) -> Result<ServerReply, RpcError> {
        match *req {
            ServerRequest::Read(r) => Ok(ServerReply::Read(self.read_here(r.req, r.opts).await?)),
            req => Box::pin(self.serve_any(req, token)).await,
        }
    }

    async fn serve_any(&self, req: ServerRequest, token: &str) -> Result<ServerReply, RpcError> {
        Ok(match req {
            ServerRequest::StatusLeader(_) => ServerReply::StatusLeader(self.leader_addr()),
            ServerRequest::StatusPeers(_) => ServerReply::StatusPeers(self.peers()),
            ServerRequest::CatalogListDatacenters(_) => {
                ServerReply::CatalogListDatacenters(self.datacenters())
            }
            ServerRequest::EventFire(e) => ServerReply::EventFire(self.fire_event(e.event).await?),
            ServerRequest::AclReplicate(r) => {
                ServerReply::AclReplicate(crate::acl::replication::batch(self, r.tokens)?)
            }
            ServerRequest::StatusRaftStats(_) => ServerReply::StatusRaftStats(self.status_here()),
            ServerRequest::Read(r) => ServerReply::Read(self.read_here(r.req, r.opts).await?),
            ServerRequest::Write(w) => {
                ServerReply::Write(self.write_here(w.req, &w.datacenter).await?)
            }
            ServerRequest::RaftGetConfiguration(_) => {
                ServerReply::RaftGetConfiguration(self.raft_configuration())
            }
            ServerRequest::RaftRemovePeer(r) => {
                let id = self.voter_named(&r.id, &r.address)?;
                self.inner.raft.remove_voter(id).await.map_err(raft_error)?;
                ServerReply::RaftRemovePeer(())
            }
            ServerRequest::RaftTransferLeader(r) => {
                let target = if r.id.is_empty() {
                    None
                } else {
                    Some(self.voter_named(&r.id, "")?)
                };
                self.transfer_here(target).await?;
                ServerReply::RaftTransferLeader(())
            }
            ServerRequest::AutopilotServerHealth(_) => {
                ServerReply::AutopilotServerHealth(self.autopilot_health().await?)
            }
            ServerRequest::AutopilotGetState(_) => {
                ServerReply::AutopilotGetState(self.autopilot_state().await?)
            }
            ServerRequest::OperatorUsage(r) => {
                let (index, usage) = self.usage();
                let consistency = if r.stale {
                    Consistency::Stale
                } else {
                    Consistency::Default
                };
                ServerReply::OperatorUsage((self.meta(index, consistency), usage))
            }
            ServerRequest::SnapshotSave(r) => {
                let snap = self.snapshot_here();
                let consistency = if r.stale {
                    proconsul_types::Consistency::Stale
                } else {
                    proconsul_types::Consistency::Default
                };
                ServerReply::SnapshotSave((self.meta(snap.index, consistency), snap))
            }
            ServerRequest::RaftElect(_) => {
                self.elect_here().await?;
                ServerReply::RaftElect(())
            }
            ServerRequest::AclBootstrap(r) => {
                ServerReply::AclBootstrap(self.acl_bootstrap(r.reset_index).await?)
            }
            ServerRequest::AclTokenSet(r) => {
                ServerReply::AclTokenSet(self.acl_token_set(r.token, r.create).await?)
            }
            ServerRequest::AclTokenRead(r) => {
                ServerReply::AclTokenRead(self.acl_token_read(&r.id, r.by_secret)?)
            }
            ServerRequest::AclTokenClone(r) => ServerReply::AclTokenClone(
                self.acl_token_clone(&r.accessor_id, r.description).await?,
            ),
            ServerRequest::AclTokenDelete(r) => {
                self.acl_token_delete(&r.accessor_id, token).await?;
                ServerReply::AclTokenDelete(())
            }
            ServerRequest::AclTokenList(r) => ServerReply::AclTokenList(self.acl_token_list(&r)?),
            ServerRequest::AclPolicySet(r) => {
                ServerReply::AclPolicySet(self.acl_policy_set(r.policy, r.create).await?)
            }
            ServerRequest::AclPolicyRead(r) => {
                ServerReply::AclPolicyRead(self.acl_policy_read(&r.id, &r.name)?)
            }
            ServerRequest::AclPolicyDelete(r) => {
                self.acl_policy_delete(&r.id).await?;
                ServerReply::AclPolicyDelete(())
            }
            ServerRequest::AclPolicyList(_) => ServerReply::AclPolicyList(self.acl_policy_list()?),
            ServerRequest::AclRoleSet(r) => {
                ServerReply::AclRoleSet(self.acl_role_set(r.role, r.create).await?)
            }
            ServerRequest::AclRoleRead(r) => {
                ServerReply::AclRoleRead(self.acl_role_read(&r.id, &r.name)?)
            }
            ServerRequest::AclRoleDelete(r) => {
                self.acl_role_delete(&r.id).await?;
                ServerReply::AclRoleDelete(())
            }
            ServerRequest::AclRoleList(r) => {
                ServerReply::AclRoleList(self.acl_role_list(&r.policy)?)
            }
            ServerRequest::AclAuthMethodSet(r) => {
                ServerReply::AclAuthMethodSet(self.acl_auth_method_set(r.method, r.create).await?)
            }
            ServerRequest::AclAuthMethodRead(r) => {
                ServerReply::AclAuthMethodRead(self.acl_auth_method_read(&r.name)?)
            }
            ServerRequest::AclAuthMethodDelete(r) => {
                self.acl_auth_method_delete(&r.name).await?;
                ServerReply::AclAuthMethodDelete(())
            }
            ServerRequest::AclAuthMethodList(_) => {
                ServerReply::AclAuthMethodList(self.acl_auth_method_list()?)
            }
            ServerRequest::AclBindingRuleSet(r) => {
                ServerReply::AclBindingRuleSet(self.acl_binding_rule_set(r.rule, r.create).await?)
            }
            ServerRequest::AclBindingRuleRead(r) => {
                ServerReply::AclBindingRuleRead(self.acl_binding_rule_read(&r.id)?)
            }
            ServerRequest::AclBindingRuleDelete(r) => {
                self.acl_binding_rule_delete(&r.id).await?;
                ServerReply::AclBindingRuleDelete(())
            }
            ServerRequest::AclBindingRuleList(r) => {
                ServerReply::AclBindingRuleList(self.acl_binding_rule_list(&r.auth_method)?)
            }
            ServerRequest::AclLogin(r) => ServerReply::AclLogin(self.acl_login(r.params).await?),
            ServerRequest::AclLogout(_) => {
                self.acl_logout(token).await?;
                ServerReply::AclLogout(())
            }
            ServerRequest::AclResolveIdentity(_) => {
                ServerReply::AclResolveIdentity(self.identity_of(token)?)
            }
            ServerRequest::PreparedQueryApply(r) => {
                ServerReply::PreparedQueryApply(self.prepared_query_apply(r, token).await?)
            }
            ServerRequest::PreparedQueryGet(r) => {
                ServerReply::PreparedQueryGet(self.prepared_query_get(&r.id, &r.opts, token).await?)
            }
            ServerRequest::PreparedQueryList(r) => {
                ServerReply::PreparedQueryList(self.prepared_query_list(&r.opts, token).await?)
            }
            ServerRequest::PreparedQueryExecute(r) => {
                ServerReply::PreparedQueryExecute(self.prepared_query_execute(r, token).await?)
            }
            ServerRequest::PreparedQueryExplain(r) => ServerReply::PreparedQueryExplain(
                self.prepared_query_explain(&r.id_or_name, token)?,
            ),
        })
    }

    /// The Raft id of the voter known by node ID `id` or RPC address `address` (exactly one
    /// given), with Consul's texts when there is none.
    fn voter_named(&self, id: &str, address: &str) -> Result<u64, RpcError> {
        let config = self.raft_configuration();
        let found = config.servers.iter().find(|s| {
            (!id.is_empty() && s.id == id) || (!address.is_empty() && s.address == address)
        });
        let Some(target) = found else {
            return Err(RpcError::Internal(if id.is_empty() {
                format!("address {address:?} was not found in the Raft configuration")
            } else {
                format!("id {id:?} was not found in the Raft configuration")
            }));
        };
        // Node IDs (and the hex fallback for servers gossip does not know) map back to the
        // Raft id they were derived from.
        Ok(raft_id_from_node_id(&target.id))
    }

    /// Counts of what the catalog holds, and the index they reflect.
    fn usage(&self) -> (u64, Usage) {
        let view = self.inner.store.view();
        let mut ws = proconsul_state::WatchSet::new();
        let (index, nodes) = view.nodes(&mut ws);
        let (_, services) = view.services(&mut ws);
        let mut instances = 0;
        let mut consul_instances = 0;
        for name in services.keys() {
            let n = view.service_nodes(&mut ws, name, &[]).1.len() as u64;
            instances += n;
            if name == CONSUL_SERVICE {
                consul_instances += n;
            }
        }
        // Consul lists every Connect kind; without Connect each is zero.
        let connect = CONNECT_KINDS.iter().map(|k| (k.to_string(), 0)).collect();
        let usage = Usage {
            services: services.len() as u64,
            service_instances: instances,
            connect_service_instances: connect,
            billable_service_instances: instances - consul_instances,
            nodes: nodes.len() as u64,
        };
        (index, usage)
    }
}

#[cfg(test)]
mod future_size {
    use super::*;

    /// The size of the future `f` returns, without running it.
    fn size_of_future<A, B, C, D, F: std::future::Future>(
        _: impl FnOnce(A, B, C, D) -> F,
    ) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every open blocking query holds a `Server::call` future (inside its HTTP request's) for
    /// as long as it waits. Forwarding and the handlers of other requests are boxed, so the
    /// inline size is the local read's: 9,256 bytes before they were, 4,504 after, 920 once
    /// the request went boxed through its steps (each had kept room for it twice).
    #[test]
    fn inline_future_of_a_read_stays_small() {
        let call = size_of_future(
            |s: &'static Server, r: ServerRequest, t: &'static str, f: bool| s.call(r, t, f),
        );
        assert!(call <= 1536, "Server::call's future is {call} bytes");
    }
}
