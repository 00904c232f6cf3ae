//! ACLs on the server: who a token is ([`Server::resolve_token`]), what it may do
//! ([`enforce`], called by `Server::call` for every request), the `/v1/acl/*` handlers
//! ([`endpoints`]) and the leader's part (builtin policy, anonymous and initial management
//! tokens, expiry).
//!
//! Resolution reads the replicated ACL tables of this server's store: every server can
//! authorise a request itself, and a follower checks before it forwards (the leader checks
//! again, since a forwarded request carries the caller's token, not a verdict). Resolved
//! tokens are cached by secret and dropped when any ACL table changes, so a policy edit takes
//! effect with its commit.

pub(crate) mod endpoints;
pub(crate) mod enforce;
pub(crate) mod login;
pub(crate) mod replication;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use proconsul_acl::{Authorizer, DefaultPolicy, Policy};
use proconsul_state::{AclGrants, AclLink, AclTokenRec, Command, View, WatchSet};
use proconsul_types::{AclConfig, AclIdentity, RpcError};

use crate::Server;

/// The anonymous token: what a request without a token is.
pub const ANONYMOUS_ACCESSOR_ID: &str = "00000000-0000-0000-0000-000000000002";
pub const ANONYMOUS_SECRET_ID: &str = "anonymous";
/// The builtin management policy.
pub const GLOBAL_MANAGEMENT_ID: &str = "00000000-0000-0000-0000-000000000001";

/// Resolved tokens kept at most; the cache starts over when full.
const CACHE_MAX: usize = 4096;

/// Who a request's token is and what it may do.
#[derive(Debug)]
pub struct Identity {
    pub accessor_id: String,
    pub authz: Authorizer,
    /// What built this: the rules of every policy it grants (for client agents).
    pub rules: Vec<String>,
    /// Unix ms after which it stops resolving.
    expires_ms: Option<u64>,
}

/// The server's cache of resolved tokens.
///
/// Read-mostly: every request looks its token up, a miss writes once per token and ACL
/// change, so hits share a read lock.
#[derive(Default)]
pub(crate) struct Resolver {
    cache: RwLock<(u64, HashMap<String, Arc<Identity>>)>,
}

/// `ACL not found`: a secret no token has (Consul answers 403).
pub(crate) fn not_found() -> RpcError {
    RpcError::PermissionDenied("ACL not found".into())
}

impl Server {
    pub(crate) fn acl_config(&self) -> &AclConfig {
        &self.inner.opts.acl
    }

    /// The identity of `secret` (empty: anonymous), or `None` when ACLs are off.
    pub fn resolve_token(&self, secret: &str) -> Result<Option<Arc<Identity>>, RpcError> {
        let cfg = self.acl_config();
        if !cfg.enabled {
            return Ok(None);
        }
        let secret = if secret.is_empty() {
            ANONYMOUS_SECRET_ID
        } else {
            secret
        };
        let view = self.inner.store.view();
        let at = view.acl_index();
        let now = self.inner.clock.now_ms();
        {
            let cache = self
                .inner
                .acl
                .cache
                .read()
                .unwrap_or_else(|e| e.into_inner());
            if cache.0 == at {
                if let Some(id) = cache.1.get(secret) {
                    if id.expires_ms.is_none_or(|t| t > now) {
                        return Ok(Some(id.clone()));
                    }
                    return Err(not_found());
                }
            }
        }
        let identity = Arc::new(self.build_identity(&view, secret, now)?);
        let mut cache = self
            .inner
            .acl
            .cache
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if cache.0 != at || cache.1.len() >= CACHE_MAX {
            *cache = (at, HashMap::new());
        }
        cache.1.insert(secret.to_string(), identity.clone());
        Ok(Some(identity))
    }

    fn build_identity(&self, view: &View, secret: &str, now: u64) -> Result<Identity, RpcError> {
        let cfg = self.acl_config();
        let mut ws = WatchSet::new();
        let token = match view.acl_token_by_secret(&mut ws, secret).1 {
            Some(t) if !t.is_expired(now) => t,
            // Before the leader has written the anonymous token, it still means "no rules".
            None if secret == ANONYMOUS_SECRET_ID => AclTokenRec {
                accessor_id: ANONYMOUS_ACCESSOR_ID.into(),
                secret_id: ANONYMOUS_SECRET_ID.into(),
                description: String::new(),
                grants: AclGrants::default(),
                local: false,
                auth_method: String::new(),
                expiration_time_ms: None,
                expiration_ttl_ns: 0,
                create_time_ms: 0,
                hash: Vec::new(),
                create_index: 0,
                modify_index: 0,
            },
            _ => return Err(not_found()),
        };
        let rules = self.expand_grants(view, &token.grants, true);
        let policies: Vec<Policy> = rules
            .iter()
            .map(|r| Policy::parse_lenient(r))
            .collect::<Result<_, _>>()
            .map_err(|e| RpcError::Internal(format!("stored ACL policy does not parse: {e}")))?;
        let default = if cfg.default_allow {
            DefaultPolicy::Allow
        } else {
            DefaultPolicy::Deny
        };
        let authz = Authorizer::new(policies.iter(), default)
            .with_key_list_policy(cfg.enable_key_list_policy);
        Ok(Identity {
            accessor_id: token.accessor_id,
            authz,
            rules,
            expires_ms: token.expiration_time_ms,
        })
    }

    /// The rules text of every policy `grants` gives in this datacenter: linked policies
    /// (scoped by their `Datacenters`), roles' grants (one level), service and node
    /// identities, templated policies.
    pub(crate) fn expand_grants(
        &self,
        view: &View,
        grants: &AclGrants,
        with_roles: bool,
    ) -> Vec<String> {
        let dc = &self.inner.opts.datacenter;
        let in_dc = |dcs: &[String]| dcs.is_empty() || dcs.iter().any(|d| d == dc);
        let mut ws = WatchSet::new();
        let mut out = Vec::new();
        for link in &grants.policies {
            if let Some(p) = view.acl_policy(&mut ws, &link.id).1 {
                if in_dc(&p.datacenters) {
                    out.push(p.rules);
                }
            }
        }
        for s in &grants.service_identities {
            if in_dc(&s.datacenters) {
                out.push(proconsul_acl::service_identity_rules(&s.service_name));
            }
        }
        for n in &grants.node_identities {
            if n.datacenter == *dc {
                out.push(proconsul_acl::node_identity_rules(&n.node_name));
            }
        }
        for t in &grants.templated_policies {
            if in_dc(&t.datacenters) {
                if let Ok(r) =
                    proconsul_acl::templated_policy_rules(&t.template_name, t.name.as_deref())
                {
                    out.push(r);
                }
            }
        }
        if with_roles {
            for link in &grants.roles {
                if let Some(role) = view.acl_role(&mut ws, &link.id).1 {
                    out.extend(self.expand_grants(view, &role.grants, false));
                }
            }
        }
        out
    }

    /// What a client agent needs to authorise its own endpoints for `secret`.
    pub(crate) fn identity_of(&self, secret: &str) -> Result<AclIdentity, RpcError> {
        let cfg = self.acl_config();
        match self.resolve_token(secret)? {
            None => Ok(AclIdentity {
                accessor_id: String::new(),
                rules: Vec::new(),
                management: true,
                default_allow: true,
            }),
            Some(id) => Ok(AclIdentity {
                accessor_id: id.accessor_id.clone(),
                rules: id.rules.clone(),
                management: false,
                default_allow: cfg.default_allow,
            }),
        }
    }
}

/// The leader's ACL duties when it takes office: the builtin `global-management` policy, the
/// anonymous token and the configured initial management token (which also marks ACLs as
/// bootstrapped, as Consul does).
pub(crate) async fn initialize(server: &Server) {
    let cfg = server.acl_config().clone();
    if !cfg.enabled {
        return;
    }
    let now = server.inner.clock.now_ms();
    let view = server.inner.store.view();
    let mut ws = WatchSet::new();
    if view.acl_policy(&mut ws, GLOBAL_MANAGEMENT_ID).1.is_none() {
        let p = endpoints::global_management_rec();
        if let Err(e) = server
            .propose_acl(proconsul_state::AclCommand::PolicySet(p))
            .await
        {
            tracing::warn!(target: "agent.server.acl", error = %e, "failed to create the global-management policy");
        }
    }
    if view.acl_token(&mut ws, ANONYMOUS_ACCESSOR_ID).1.is_none() {
        let mut t = endpoints::new_token_rec(ANONYMOUS_ACCESSOR_ID, ANONYMOUS_SECRET_ID, now);
        t.description = "Anonymous Token".into();
        endpoints::rehash(&mut t);
        if let Err(e) = server
            .propose_acl(proconsul_state::AclCommand::TokenSet(t))
            .await
        {
            tracing::warn!(target: "agent.server.acl", error = %e, "failed to create the anonymous token");
        }
    }
    let secret = cfg.tokens.initial_management;
    if !secret.is_empty() && view.acl_token_by_secret(&mut ws, &secret).1.is_none() {
        let mut t = endpoints::new_token_rec(&uuid::Uuid::new_v4().to_string(), &secret, now);
        t.description = "Initial Management Token".into();
        t.grants.policies.push(AclLink {
            id: GLOBAL_MANAGEMENT_ID.into(),
            name: proconsul_acl::GLOBAL_MANAGEMENT_POLICY_NAME.into(),
        });
        endpoints::rehash(&mut t);
        let cmd = if view.acl_bootstrap_index().is_none() {
            proconsul_state::AclCommand::Bootstrap {
                token: t,
                reset_index: 0,
            }
        } else {
            proconsul_state::AclCommand::TokenSet(t)
        };
        match server.propose_acl(cmd).await {
            Ok(_) => {
                tracing::info!(target: "agent.server.acl", "created the initial management token")
            }
            Err(e) => {
                tracing::warn!(target: "agent.server.acl", error = %e, "failed to create the initial management token")
            }
        }
    }
}

/// Delete expired tokens (the leader, every reconcile).
pub(crate) async fn reap_expired(server: &Server) {
    if !server.acl_config().enabled {
        return;
    }
    let now = server.inner.clock.now_ms();
    let view = server.inner.store.view();
    let expired: Vec<String> = view
        .acl_tokens(&mut WatchSet::new())
        .1
        .into_iter()
        .filter(|t| t.is_expired(now))
        .map(|t| t.accessor_id)
        .collect();
    if !expired.is_empty() {
        let _ = server
            .propose(Command::Acl(proconsul_state::AclCommand::TokenDelete {
                accessor_ids: expired,
            }))
            .await;
    }
}
