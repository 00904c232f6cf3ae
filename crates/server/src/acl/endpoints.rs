//! The `ACL.*` calls behind `/v1/acl/*`: validation with Consul's texts, IDs and secrets
//! chosen here (never in apply), records written through Raft and read back in API shape.
//!
//! Permission checks (`acl:read`, `acl:write`) are made by `enforce` before a handler runs;
//! the handlers only check what depends on the data (the anonymous token cannot be deleted, a
//! token cannot delete itself, …).

use proconsul_state::{
    AclAuthMethodRec, AclBindingRuleRec, AclCommand, AclGrants, AclLink, AclNodeIdentity,
    AclPolicyRec, AclRoleRec, AclServiceIdentity, AclTemplatedPolicy, AclTokenRec, ApplyResult,
    Command, View, WatchSet,
};
use proconsul_types::{
    AclAuthMethod, AclBindingRule, AclLink as ApiLink, AclNodeIdentity as ApiNode, AclPolicy,
    AclRole, AclServiceIdentity as ApiService, AclTemplateVariables,
    AclTemplatedPolicy as ApiTemplated, AclToken, Consistency, QueryMeta, RpcError,
};
use sha2::{Digest, Sha256};

use super::{ANONYMOUS_ACCESSOR_ID, GLOBAL_MANAGEMENT_ID};
use crate::Server;

/// A rejected ACL write. Consul's server returns plain errors, which its HTTP layer answers
/// with 500 and the text.
fn bad(msg: impl Into<String>) -> RpcError {
    RpcError::Internal(msg.into())
}

/// `<kind> does not exist`: the HTTP layer answers 404 `Cannot find <kind> to delete`.
fn gone(kind: &str) -> RpcError {
    RpcError::NotFound(format!("Cannot find {kind} to delete"))
}

/// Consul reserves these for builtin objects.
const RESERVED_PREFIX: &str = "00000000-0000-0000-0000-0000000000";

/// Consul looks these IDs up in a UUID index, which refuses anything else (a 500).
fn uuid_index(id: &str, what: &str) -> Result<(), RpcError> {
    if is_uuid(id) {
        Ok(())
    } else {
        Err(RpcError::Internal(format!(
            "failed acl {what} lookup: index error: UUID must be 36 characters"
        )))
    }
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn rfc3339_ms(ms: u64) -> String {
    proconsul_types::time::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
}

/// The builtin `global-management` policy.
pub(crate) fn global_management_rec() -> AclPolicyRec {
    let mut p = AclPolicyRec {
        id: GLOBAL_MANAGEMENT_ID.into(),
        name: proconsul_acl::GLOBAL_MANAGEMENT_POLICY_NAME.into(),
        description: "A built-in policy that grants read and write access to all Consul features"
            .into(),
        rules: proconsul_acl::GLOBAL_MANAGEMENT_RULES.into(),
        datacenters: Vec::new(),
        hash: Vec::new(),
        create_index: 0,
        modify_index: 0,
    };
    p.hash = hash_of(&[&p.name, &p.description, &p.rules, &p.datacenters.join(",")]);
    p
}

/// A token with nothing granted yet.
pub(crate) fn new_token_rec(accessor: &str, secret: &str, now_ms: u64) -> AclTokenRec {
    AclTokenRec {
        accessor_id: accessor.into(),
        secret_id: secret.into(),
        description: String::new(),
        grants: AclGrants::default(),
        local: false,
        auth_method: String::new(),
        expiration_time_ms: None,
        expiration_ttl_ns: 0,
        create_time_ms: now_ms,
        hash: Vec::new(),
        create_index: 0,
        modify_index: 0,
    }
}

fn hash_of(parts: &[&str]) -> Vec<u8> {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize()[..16].to_vec()
}

/// Consul's token `Hash`: of what the token grants, so clients can tell a change.
pub(crate) fn rehash(t: &mut AclTokenRec) {
    let grants = serde_json::to_string(&(
        &t.grants.policies,
        &t.grants.roles,
        &t.grants.service_identities,
        &t.grants.node_identities,
        &t.grants.templated_policies,
    ))
    .unwrap_or_default();
    t.hash = hash_of(&[&t.description, &grants, if t.local { "local" } else { "" }]);
}

fn api_link(l: &AclLink) -> ApiLink {
    ApiLink {
        id: l.id.clone(),
        name: l.name.clone(),
    }
}

fn api_services(v: &[AclServiceIdentity]) -> Vec<ApiService> {
    v.iter()
        .map(|s| ApiService {
            service_name: s.service_name.clone(),
            datacenters: s.datacenters.clone(),
        })
        .collect()
}

fn api_nodes(v: &[AclNodeIdentity]) -> Vec<ApiNode> {
    v.iter()
        .map(|n| ApiNode {
            node_name: n.node_name.clone(),
            datacenter: n.datacenter.clone(),
        })
        .collect()
}

fn api_templated(v: &[AclTemplatedPolicy]) -> Vec<ApiTemplated> {
    v.iter()
        .map(|t| ApiTemplated {
            template_name: t.template_name.clone(),
            template_variables: t.name.clone().map(|name| AclTemplateVariables { name }),
            datacenters: t.datacenters.clone(),
        })
        .collect()
}

/// Links whose target still exists, with its current name (Consul drops dangling links when
/// it reads a token or role).
fn live_links(view: &View, links: &[AclLink], policies: bool) -> Vec<ApiLink> {
    let mut ws = WatchSet::new();
    links
        .iter()
        .filter_map(|l| {
            let name = if policies {
                view.acl_policy(&mut ws, &l.id).1.map(|p| p.name)
            } else {
                view.acl_role(&mut ws, &l.id).1.map(|r| r.name)
            }?;
            Some(api_link(&AclLink {
                id: l.id.clone(),
                name,
            }))
        })
        .collect()
}

pub(crate) fn token_api(view: &View, t: &AclTokenRec) -> AclToken {
    AclToken {
        accessor_id: t.accessor_id.clone(),
        secret_id: t.secret_id.clone(),
        description: t.description.clone(),
        policies: live_links(view, &t.grants.policies, true),
        roles: live_links(view, &t.grants.roles, false),
        service_identities: api_services(&t.grants.service_identities),
        node_identities: api_nodes(&t.grants.node_identities),
        templated_policies: api_templated(&t.grants.templated_policies),
        local: t.local,
        auth_method: t.auth_method.clone(),
        expiration_time: t.expiration_time_ms.map(rfc3339_ms).unwrap_or_default(),
        // Consul turns a TTL into an ExpirationTime on create and never shows it again.
        expiration_ttl: String::new(),
        create_time: rfc3339_ms(t.create_time_ms),
        hash: base64(&t.hash),
        create_index: t.create_index,
        modify_index: t.modify_index,
    }
}

fn policy_api(p: &AclPolicyRec) -> AclPolicy {
    AclPolicy {
        id: p.id.clone(),
        name: p.name.clone(),
        description: p.description.clone(),
        rules: Some(p.rules.clone()),
        datacenters: p.datacenters.clone(),
        hash: base64(&p.hash),
        create_index: p.create_index,
        modify_index: p.modify_index,
    }
}

fn role_api(view: &View, r: &AclRoleRec) -> AclRole {
    AclRole {
        id: r.id.clone(),
        name: r.name.clone(),
        description: r.description.clone(),
        policies: live_links(view, &r.grants.policies, true),
        service_identities: api_services(&r.grants.service_identities),
        node_identities: api_nodes(&r.grants.node_identities),
        templated_policies: api_templated(&r.grants.templated_policies),
        hash: base64(&r.hash),
        create_index: r.create_index,
        modify_index: r.modify_index,
    }
}

fn method_api(m: &AclAuthMethodRec) -> AclAuthMethod {
    AclAuthMethod {
        name: m.name.clone(),
        kind: m.kind.clone(),
        display_name: m.display_name.clone(),
        description: m.description.clone(),
        max_token_ttl: if m.max_token_ttl_ns > 0 {
            proconsul_types::duration::format_nanos(m.max_token_ttl_ns as i64)
        } else {
            String::new()
        },
        token_locality: m.token_locality.clone(),
        config: Some(m.config.clone()),
        create_index: m.create_index,
        modify_index: m.modify_index,
    }
}

fn rule_api(b: &AclBindingRuleRec) -> AclBindingRule {
    AclBindingRule {
        id: b.id.clone(),
        description: b.description.clone(),
        auth_method: b.auth_method.clone(),
        selector: b.selector.clone(),
        bind_type: b.bind_type.clone(),
        bind_name: b.bind_name.clone(),
        bind_vars: b.bind_vars.clone(),
        create_index: b.create_index,
        modify_index: b.modify_index,
    }
}

/// A token's or role's grants as given, validated, links resolved to IDs.
fn grants_from_api(
    view: &View,
    what: &str,
    policies: &[ApiLink],
    roles: &[ApiLink],
    services: &[ApiService],
    nodes: &[ApiNode],
    templated: &[ApiTemplated],
) -> Result<AclGrants, RpcError> {
    let mut ws = WatchSet::new();
    let mut g = AclGrants::default();
    for l in policies {
        let p = if !l.id.is_empty() {
            view.acl_policy(&mut ws, &l.id)
                .1
                .ok_or_else(|| bad(format!("No such ACL policy with ID {:?}", l.id)))?
        } else if !l.name.is_empty() {
            view.acl_policy_by_name(&mut ws, &l.name)
                .1
                .ok_or_else(|| bad(format!("No such ACL policy with name {:?}", l.name)))?
        } else {
            return Err(bad("Policy link is missing both an ID and a Name"));
        };
        if !g.policies.iter().any(|x| x.id == p.id) {
            g.policies.push(AclLink {
                id: p.id,
                name: p.name,
            });
        }
    }
    for l in roles {
        let r = if !l.id.is_empty() {
            view.acl_role(&mut ws, &l.id)
                .1
                .ok_or_else(|| bad(format!("No such ACL role with ID {:?}", l.id)))?
        } else if !l.name.is_empty() {
            view.acl_role_by_name(&mut ws, &l.name)
                .1
                .ok_or_else(|| bad(format!("No such ACL role with name {:?}", l.name)))?
        } else {
            return Err(bad("Role link is missing both an ID and a Name"));
        };
        if !g.roles.iter().any(|x| x.id == r.id) {
            g.roles.push(AclLink {
                id: r.id,
                name: r.name,
            });
        }
    }
    for s in services {
        if s.service_name.is_empty() {
            return Err(bad(format!(
                "Service identity is missing the service name field on this {what}"
            )));
        }
        if !proconsul_acl::is_valid_service_identity_name(&s.service_name) {
            return Err(bad(format!(
                "Service identity {:?} has an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed",
                s.service_name
            )));
        }
        g.service_identities.push(AclServiceIdentity {
            service_name: s.service_name.clone(),
            datacenters: s.datacenters.clone(),
        });
    }
    for n in nodes {
        if n.node_name.is_empty() {
            return Err(bad(format!(
                "Node identity is missing the node name field on this {what}"
            )));
        }
        if n.datacenter.is_empty() {
            return Err(bad(format!(
                "Node identity is missing the datacenter field on this {what}"
            )));
        }
        if !proconsul_acl::is_valid_node_identity_name(&n.node_name) {
            return Err(bad(format!(
                "Node identity {:?} has an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed",
                n.node_name
            )));
        }
        g.node_identities.push(AclNodeIdentity {
            node_name: n.node_name.clone(),
            datacenter: n.datacenter.clone(),
        });
    }
    for t in templated {
        let name = t
            .template_variables
            .as_ref()
            .map(|v| v.name.clone())
            .filter(|n| !n.is_empty());
        proconsul_acl::templated_policy_rules(&t.template_name, name.as_deref())
            .map_err(|e| bad(e.to_string()))?;
        g.templated_policies.push(AclTemplatedPolicy {
            template_name: t.template_name.clone(),
            name,
            datacenters: t.datacenters.clone(),
        });
    }
    Ok(g)
}

/// `ExpirationTTL` text → nanoseconds, within Consul's bounds (1 minute to 24 hours).
fn expiration_ttl(text: &str) -> Result<u64, RpcError> {
    let ns = proconsul_types::duration::parse_nanos(text)
        .map_err(|_| bad(format!("Invalid ExpirationTTL {text:?}")))?;
    if ns < 0 {
        return Err(bad(format!("Token Expiration TTL '{text}' should be > 0")));
    }
    let ns = ns as u64;
    const MIN: u64 = 60_000_000_000;
    const MAX: u64 = 24 * 3600 * 1_000_000_000;
    if ns != 0 && !(MIN..=MAX).contains(&ns) {
        return Err(bad(format!(
            "Expiration TTL '{}' should be between 1m0s and 24h0m0s",
            proconsul_types::duration::format_nanos(ns as i64)
        )));
    }
    Ok(ns)
}

/// RFC 3339 text → unix ms.
fn parse_time_ms(text: &str) -> Result<u64, RpcError> {
    proconsul_types::time::parse_rfc3339_ms(text)
        .ok_or_else(|| bad(format!("Invalid ExpirationTime {text:?}")))
}

impl Server {
    /// Propose an ACL change; a rejection by apply is the caller's error (400).
    pub(crate) async fn propose_acl(&self, cmd: AclCommand) -> Result<u64, RpcError> {
        let (idx, applied) = self.propose(Command::Acl(cmd)).await?;
        match applied {
            ApplyResult::Err(e) => Err(bad(e.to_string())),
            _ => Ok(idx),
        }
    }

    fn acl_meta(&self, index: u64) -> QueryMeta {
        self.meta(index, Consistency::Default)
    }

    fn acl_enabled(&self) -> Result<(), RpcError> {
        if self.acl_config().enabled {
            Ok(())
        } else {
            Err(RpcError::Unauthorized("ACL support disabled".into()))
        }
    }

    /// `<data_dir>/acl-bootstrap-reset`: the index an operator wrote to bootstrap again
    /// (after losing every management token), as Consul reads it.
    fn bootstrap_reset_file(&self) -> Option<std::path::PathBuf> {
        let dir = self.inner.opts.raft_dir.as_deref()?.parent()?;
        Some(dir.join("acl-bootstrap-reset"))
    }

    pub(crate) async fn acl_bootstrap(&self, reset_index: u64) -> Result<AclToken, RpcError> {
        self.acl_enabled()?;
        let view = self.inner.store.view();
        let reset_file = self.bootstrap_reset_file();
        let mut reset_index = reset_index;
        if let Some(done) = view.acl_bootstrap_index() {
            if reset_index == 0 {
                let from_file = reset_file
                    .as_deref()
                    .and_then(|p| std::fs::read_to_string(p).ok());
                if let Some(text) = from_file {
                    let asked: u64 = text.trim().parse().map_err(|_| {
                        bad(format!(
                            "failed to parse bootstrap reset index {:?}",
                            text.trim()
                        ))
                    })?;
                    if asked != done {
                        return Err(bad(format!(
                            "Invalid bootstrap reset index (specified {asked}, reset index: {done})"
                        )));
                    }
                    reset_index = done;
                }
            }
            if reset_index != done {
                return Err(RpcError::PermissionDenied(format!(
                    "Permission denied: ACL bootstrap no longer allowed (reset index: {done})"
                )));
            }
        }
        let now = self.inner.clock.now_ms();
        let mut t = new_token_rec(
            &uuid::Uuid::new_v4().to_string(),
            &uuid::Uuid::new_v4().to_string(),
            now,
        );
        t.description = "Bootstrap Token (Global Management)".into();
        t.grants.policies.push(AclLink {
            id: GLOBAL_MANAGEMENT_ID.into(),
            name: proconsul_acl::GLOBAL_MANAGEMENT_POLICY_NAME.into(),
        });
        rehash(&mut t);
        let accessor = t.accessor_id.clone();
        self.propose_acl(AclCommand::Bootstrap {
            token: t,
            reset_index: view.acl_bootstrap_index().map_or(0, |_| reset_index),
        })
        .await?;
        if let Some(p) = reset_file {
            let _ = std::fs::remove_file(p);
        }
        self.token_read_now(&accessor)
    }

    fn token_read_now(&self, accessor: &str) -> Result<AclToken, RpcError> {
        let view = self.inner.store.view();
        let t = view
            .acl_token(&mut WatchSet::new(), accessor)
            .1
            .ok_or_else(|| RpcError::Internal("token vanished after its write".into()))?;
        Ok(token_api(&view, &t))
    }

    pub(crate) async fn acl_token_set(
        &self,
        token: AclToken,
        create: bool,
    ) -> Result<AclToken, RpcError> {
        self.acl_enabled()?;
        let view = self.inner.store.view();
        let mut ws = WatchSet::new();
        let now = self.inner.clock.now_ms();
        let grants = grants_from_api(
            &view,
            "token",
            &token.policies,
            &token.roles,
            &token.service_identities,
            &token.node_identities,
            &token.templated_policies,
        )?;
        if token.local
            && token
                .service_identities
                .iter()
                .any(|s| !s.datacenters.is_empty())
        {
            return Err(bad("cannot specify a list of datacenters on a local token"));
        }
        let rec = if create {
            let accessor = if token.accessor_id.is_empty() {
                uuid::Uuid::new_v4().to_string()
            } else {
                if !is_uuid(&token.accessor_id) {
                    return Err(bad("Invalid Token: AccessorID - not a valid UUID"));
                }
                if token.accessor_id.starts_with(RESERVED_PREFIX) {
                    return Err(bad(format!("Invalid Token: AccessorID - UUIDs with the prefix {RESERVED_PREFIX:?} are reserved")));
                }
                if view.acl_token(&mut ws, &token.accessor_id).1.is_some()
                    || view
                        .acl_token_by_secret(&mut ws, &token.accessor_id)
                        .1
                        .is_some()
                {
                    return Err(bad("Invalid Token: AccessorID is already in use"));
                }
                token.accessor_id.clone()
            };
            let secret = if token.secret_id.is_empty() {
                uuid::Uuid::new_v4().to_string()
            } else {
                if !is_uuid(&token.secret_id) {
                    return Err(bad("Invalid Token: SecretID - not a valid UUID"));
                }
                if token.secret_id.starts_with(RESERVED_PREFIX) {
                    return Err(bad(format!("Invalid Token: SecretID - UUIDs with the prefix {RESERVED_PREFIX:?} are reserved")));
                }
                if view
                    .acl_token_by_secret(&mut ws, &token.secret_id)
                    .1
                    .is_some()
                {
                    return Err(bad("Invalid Token: SecretID is already in use"));
                }
                token.secret_id.clone()
            };
            let mut rec = new_token_rec(&accessor, &secret, now);
            if !token.expiration_ttl.is_empty() && !token.expiration_time.is_empty() {
                return Err(bad(
                    "Token Expiration TTL and Expiration Time cannot both be set",
                ));
            }
            if !token.expiration_ttl.is_empty() {
                let ns = expiration_ttl(&token.expiration_ttl)?;
                if ns > 0 {
                    rec.expiration_ttl_ns = ns;
                    rec.expiration_time_ms = Some(now + ns / 1_000_000);
                }
            } else if !token.expiration_time.is_empty() {
                let at = parse_time_ms(&token.expiration_time)?;
                if at <= now {
                    return Err(bad("ExpirationTime cannot be in the past"));
                }
                rec.expiration_time_ms = Some(at);
            }
            rec.local = token.local;
            rec
        } else {
            let Some(old) = view.acl_token(&mut ws, &token.accessor_id).1 else {
                return Err(bad(format!("Cannot find token {:?}", token.accessor_id)));
            };
            if !token.secret_id.is_empty() && token.secret_id != old.secret_id {
                return Err(bad("Changing a token's SecretID is not permitted"));
            }
            if token.local != old.local {
                return Err(bad(format!(
                    "Cannot toggle local mode of {}",
                    old.accessor_id
                )));
            }
            if !token.auth_method.is_empty() && token.auth_method != old.auth_method {
                return Err(bad(format!(
                    "Cannot change AuthMethod of {}",
                    old.accessor_id
                )));
            }
            if !token.expiration_ttl.is_empty() {
                return Err(bad(format!(
                    "Cannot change expiration time of {}",
                    old.accessor_id
                )));
            }
            old
        };
        let mut rec = rec;
        rec.description = token.description.clone();
        rec.grants = grants;
        rehash(&mut rec);
        let accessor = rec.accessor_id.clone();
        self.propose_acl(AclCommand::TokenSet(rec)).await?;
        self.token_read_now(&accessor)
    }

    pub(crate) fn acl_token_read(
        &self,
        id: &str,
        by_secret: bool,
    ) -> Result<(QueryMeta, Option<AclToken>), RpcError> {
        self.acl_enabled()?;
        let view = self.inner.store.view();
        let mut ws = WatchSet::new();
        let (index, t) = if by_secret {
            let secret = if id.is_empty() {
                super::ANONYMOUS_SECRET_ID
            } else {
                id
            };
            view.acl_token_by_secret(&mut ws, secret)
        } else {
            view.acl_token(&mut ws, id)
        };
        let now = self.inner.clock.now_ms();
        let t = t.filter(|t| !t.is_expired(now));
        Ok((self.acl_meta(index), t.map(|t| token_api(&view, &t))))
    }

    pub(crate) async fn acl_token_clone(
        &self,
        accessor: &str,
        description: String,
    ) -> Result<AclToken, RpcError> {
        self.acl_enabled()?;
        let view = self.inner.store.view();
        let Some(old) = view.acl_token(&mut WatchSet::new(), accessor).1 else {
            return Err(bad(format!("Cannot find token {accessor:?}")));
        };
        if !old.auth_method.is_empty() {
            return Err(bad("Cannot clone a token created from an auth method"));
        }
        let now = self.inner.clock.now_ms();
        let mut t = new_token_rec(
            &uuid::Uuid::new_v4().to_string(),
            &uuid::Uuid::new_v4().to_string(),
            now,
        );
        t.grants = old.grants.clone();
        t.local = old.local;
        t.expiration_time_ms = old.expiration_time_ms;
        t.expiration_ttl_ns = old.expiration_ttl_ns;
        t.description = if description.is_empty() {
            old.description.clone()
        } else {
            description
        };
        rehash(&mut t);
        let accessor = t.accessor_id.clone();
        self.propose_acl(AclCommand::TokenSet(t)).await?;
        self.token_read_now(&accessor)
    }

    pub(crate) async fn acl_token_delete(
        &self,
        accessor: &str,
        caller: &str,
    ) -> Result<(), RpcError> {
        self.acl_enabled()?;
        if accessor == ANONYMOUS_ACCESSOR_ID {
            return Err(bad("Delete operation not permitted on the anonymous token"));
        }
        let view = self.inner.store.view();
        let mut ws = WatchSet::new();
        let Some(t) = view.acl_token(&mut ws, accessor).1 else {
            return Err(gone("token"));
        };
        if t.secret_id == caller {
            return Err(bad(
                "Deletion of the request's authorization token is not permitted",
            ));
        }
        self.propose_acl(AclCommand::TokenDelete {
            accessor_ids: vec![accessor.to_string()],
        })
        .await?;
        Ok(())
    }

    pub(crate) fn acl_token_list(
        &self,
        req: &proconsul_types::AclTokenList,
    ) -> Result<(QueryMeta, Vec<AclToken>), RpcError> {
        self.acl_enabled()?;
        let view = self.inner.store.view();
        let (index, tokens) = view.acl_tokens(&mut WatchSet::new());
        let now = self.inner.clock.now_ms();
        let list = tokens
            .iter()
            .filter(|t| !t.is_expired(now))
            .filter(|t| {
                req.policy.is_empty() || t.grants.policies.iter().any(|l| l.id == req.policy)
            })
            .filter(|t| req.role.is_empty() || t.grants.roles.iter().any(|l| l.id == req.role))
            .filter(|t| req.auth_method.is_empty() || t.auth_method == req.auth_method)
            .filter(|t| {
                req.service_name.is_empty()
                    || t.grants
                        .service_identities
                        .iter()
                        .any(|s| s.service_name == req.service_name)
            })
            .map(|t| token_api(&view, t))
            .collect();
        Ok((self.acl_meta(index), list))
    }

    pub(crate) async fn acl_policy_set(
        &self,
        p: AclPolicy,
        create: bool,
    ) -> Result<AclPolicy, RpcError> {
        self.acl_enabled()?;
        let view = self.inner.store.view();
        let mut ws = WatchSet::new();
        if p.name.is_empty() {
            return Err(bad("Invalid Policy: no Name is set"));
        }
        if !valid_policy_name(&p.name) {
            return Err(bad("Invalid Policy: invalid Name. Only alphanumeric characters, '-' and '_' are allowed"));
        }
        let rules = p.rules.clone().unwrap_or_default();
        proconsul_acl::Policy::parse(&rules).map_err(|e| bad(format!("Invalid Policy: {e}")))?;
        let id = if create {
            if !p.id.is_empty() {
                return Err(bad(
                    "Invalid Policy: ID must be empty when creating a policy",
                ));
            }
            uuid::Uuid::new_v4().to_string()
        } else {
            let Some(old) = view.acl_policy(&mut ws, &p.id).1 else {
                return Err(bad(format!("cannot find policy {}", p.id)));
            };
            if old.id == GLOBAL_MANAGEMENT_ID {
                if rules != old.rules {
                    return Err(bad("Changing the Rules for the builtin global-management policy is not permitted"));
                }
                if !p.datacenters.is_empty() {
                    return Err(bad("Changing the Datacenters of the builtin global-management policy is not permitted"));
                }
            }
            old.id
        };
        if let Some(other) = view.acl_policy_by_name(&mut ws, &p.name).1 {
            if other.id != id {
                return Err(bad(format!(
                    "Invalid Policy: A Policy with Name {:?} already exists",
                    p.name
                )));
            }
        }
        let mut rec = AclPolicyRec {
            id: id.clone(),
            name: p.name,
            description: p.description,
            rules,
            datacenters: p.datacenters,
            hash: Vec::new(),
            create_index: 0,
            modify_index: 0,
        };
        rec.hash = hash_of(&[
            &rec.name,
            &rec.description,
            &rec.rules,
            &rec.datacenters.join(","),
        ]);
        self.propose_acl(AclCommand::PolicySet(rec)).await?;
        let view = self.inner.store.view();
        let rec = view
            .acl_policy(&mut ws, &id)
            .1
            .ok_or_else(|| RpcError::Internal("policy vanished after its write".into()))?;
        Ok(policy_api(&rec))
    }

    pub(crate) fn acl_policy_read(
        &self,
        id: &str,
        name: &str,
    ) -> Result<(QueryMeta, Option<AclPolicy>), RpcError> {
        self.acl_enabled()?;
        let view = self.inner.store.view();
        let mut ws = WatchSet::new();
        let (index, p) = if id.is_empty() {
            view.acl_policy_by_name(&mut ws, name)
        } else {
            uuid_index(id, "policy")?;
            view.acl_policy(&mut ws, id)
        };
        Ok((self.acl_meta(index), p.as_ref().map(policy_api)))
    }

    pub(crate) async fn acl_policy_delete(&self, id: &str) -> Result<(), RpcError> {
        self.acl_enabled()?;
        if id == GLOBAL_MANAGEMENT_ID {
            return Err(bad(
                "Delete operation not permitted on the builtin global-management policy",
            ));
        }
        let view = self.inner.store.view();
        if view.acl_policy(&mut WatchSet::new(), id).1.is_none() {
            return Err(gone("policy"));
        }
        self.propose_acl(AclCommand::PolicyDelete { id: id.into() })
            .await?;
        Ok(())
    }

    pub(crate) fn acl_policy_list(
        &self,
    ) -> Result<(QueryMeta, Vec<proconsul_types::AclPolicyStub>), RpcError> {
        self.acl_enabled()?;
        let view = self.inner.store.view();
        let (index, list) = view.acl_policies(&mut WatchSet::new());
        Ok((
            self.acl_meta(index),
            list.iter().map(|p| policy_api(p).stub()).collect(),
        ))
    }

    pub(crate) async fn acl_role_set(&self, r: AclRole, create: bool) -> Result<AclRole, RpcError> {
        self.acl_enabled()?;
        let view = self.inner.store.view();
        let mut ws = WatchSet::new();
        if r.name.is_empty() {
            return Err(bad("Invalid Role: no Name is set"));
        }
        if !valid_policy_name(&r.name) {
            return Err(bad(
                "Invalid Role: invalid Name. Only alphanumeric characters, '-' and '_' are allowed",
            ));
        }
        let id = if create {
            if !r.id.is_empty() {
                return Err(bad("Invalid Role: ID must be empty when creating a role"));
            }
            uuid::Uuid::new_v4().to_string()
        } else {
            match view.acl_role(&mut ws, &r.id).1 {
                Some(old) => old.id,
                None => return Err(bad(format!("cannot find role {}", r.id))),
            }
        };
        if let Some(other) = view.acl_role_by_name(&mut ws, &r.name).1 {
            if other.id != id {
                return Err(bad(format!(
                    "Invalid Role: A Role with Name {:?} already exists",
                    r.name
                )));
            }
        }
        let grants = grants_from_api(
            &view,
            "role",
            &r.policies,
            &[],
            &r.service_identities,
            &r.node_identities,
            &r.templated_policies,
        )?;
        let mut rec = AclRoleRec {
            id: id.clone(),
            name: r.name,
            description: r.description,
            grants,
            hash: Vec::new(),
            create_index: 0,
            modify_index: 0,
        };
        let g = serde_json::to_string(&(
            &rec.grants.policies,
            &rec.grants.service_identities,
            &rec.grants.node_identities,
            &rec.grants.templated_policies,
        ))
        .unwrap_or_default();
        rec.hash = hash_of(&[&rec.name, &rec.description, &g]);
        self.propose_acl(AclCommand::RoleSet(rec)).await?;
        let view = self.inner.store.view();
        let rec = view
            .acl_role(&mut ws, &id)
            .1
            .ok_or_else(|| RpcError::Internal("role vanished after its write".into()))?;
        Ok(role_api(&view, &rec))
    }

    pub(crate) fn acl_role_read(
        &self,
        id: &str,
        name: &str,
    ) -> Result<(QueryMeta, Option<AclRole>), RpcError> {
        self.acl_enabled()?;
        let view = self.inner.store.view();
        let mut ws = WatchSet::new();
        let (index, r) = if id.is_empty() {
            view.acl_role_by_name(&mut ws, name)
        } else {
            uuid_index(id, "role")?;
            view.acl_role(&mut ws, id)
        };
        Ok((self.acl_meta(index), r.map(|r| role_api(&view, &r))))
    }

    pub(crate) async fn acl_role_delete(&self, id: &str) -> Result<(), RpcError> {
        self.acl_enabled()?;
        if self
            .inner
            .store
            .view()
            .acl_role(&mut WatchSet::new(), id)
            .1
            .is_none()
        {
            return Err(gone("role"));
        }
        self.propose_acl(AclCommand::RoleDelete { id: id.into() })
            .await?;
        Ok(())
    }

    pub(crate) fn acl_role_list(
        &self,
        policy: &str,
    ) -> Result<(QueryMeta, Vec<AclRole>), RpcError> {
        self.acl_enabled()?;
        let view = self.inner.store.view();
        let (index, list) = view.acl_roles(&mut WatchSet::new());
        let list = list
            .iter()
            .filter(|r| policy.is_empty() || r.grants.policies.iter().any(|l| l.id == policy))
            .map(|r| role_api(&view, r))
            .collect();
        Ok((self.acl_meta(index), list))
    }

    pub(crate) async fn acl_auth_method_set(
        &self,
        m: AclAuthMethod,
        create: bool,
    ) -> Result<AclAuthMethod, RpcError> {
        self.acl_enabled()?;
        let view = self.inner.store.view();
        let mut ws = WatchSet::new();
        if m.name.is_empty() {
            return Err(bad("Invalid Auth Method: no Name is set"));
        }
        if !valid_policy_name(&m.name) {
            return Err(bad("Invalid Auth Method: invalid Name. Only alphanumeric characters, '-' and '_' are allowed"));
        }
        let existing = view.acl_auth_method(&mut ws, &m.name).1;
        // `PUT /v1/acl/auth-method` creates or replaces by name, as Consul's does.
        match (&existing, create) {
            (None, false) => {
                return Err(bad(format!(
                    "Invalid Auth Method: An Auth Method with Name {:?} does not exist",
                    m.name
                )))
            }
            (Some(old), _) if !m.kind.is_empty() && m.kind != old.kind => {
                return Err(bad(format!(
                    "Invalid Auth Method: cannot change the type of auth method {:?}",
                    m.name
                )))
            }
            _ => {}
        }
        let kind = if m.kind.is_empty() {
            existing
                .as_ref()
                .map(|o| o.kind.clone())
                .unwrap_or_default()
        } else {
            m.kind.clone()
        };
        let config = m.config.clone().unwrap_or_default();
        crate::acl::endpoints::validate_method(&kind, &config)?;
        let max_ttl = if m.max_token_ttl.is_empty() {
            0
        } else {
            let ns = proconsul_types::duration::parse_nanos(&m.max_token_ttl)
                .map_err(|_| bad(format!("Invalid MaxTokenTTL {:?}", m.max_token_ttl)))?;
            if !(60_000_000_000..=24 * 3600 * 1_000_000_000).contains(&ns) {
                return Err(bad(format!(
                    "MaxTokenTTL {} cannot be more than 24h0m0s or less than 1m0s",
                    m.max_token_ttl
                )));
            }
            ns as u64
        };
        if !m.token_locality.is_empty()
            && m.token_locality != "local"
            && m.token_locality != "global"
        {
            return Err(bad(
                "Invalid Auth Method: TokenLocality should be one of 'local' or 'global'",
            ));
        }
        let rec = AclAuthMethodRec {
            name: m.name.clone(),
            kind,
            display_name: m.display_name,
            description: m.description,
            max_token_ttl_ns: max_ttl,
            token_locality: m.token_locality,
            config,
            create_index: 0,
            modify_index: 0,
        };
        self.propose_acl(AclCommand::AuthMethodSet(rec)).await?;
        let rec = self
            .inner
            .store
            .view()
            .acl_auth_method(&mut ws, &m.name)
            .1
            .ok_or_else(|| RpcError::Internal("auth method vanished after its write".into()))?;
        Ok(method_api(&rec))
    }

    pub(crate) fn acl_auth_method_read(
        &self,
        name: &str,
    ) -> Result<(QueryMeta, Option<AclAuthMethod>), RpcError> {
        self.acl_enabled()?;
        let (index, m) = self
            .inner
            .store
            .view()
            .acl_auth_method(&mut WatchSet::new(), name);
        Ok((self.acl_meta(index), m.as_ref().map(method_api)))
    }

    pub(crate) async fn acl_auth_method_delete(&self, name: &str) -> Result<(), RpcError> {
        self.acl_enabled()?;
        if self
            .inner
            .store
            .view()
            .acl_auth_method(&mut WatchSet::new(), name)
            .1
            .is_none()
        {
            return Err(gone("auth method"));
        }
        self.propose_acl(AclCommand::AuthMethodDelete { name: name.into() })
            .await?;
        Ok(())
    }

    pub(crate) fn acl_auth_method_list(&self) -> Result<(QueryMeta, Vec<AclAuthMethod>), RpcError> {
        self.acl_enabled()?;
        let (index, list) = self
            .inner
            .store
            .view()
            .acl_auth_methods(&mut WatchSet::new());
        let list = list
            .iter()
            .map(|m| AclAuthMethod {
                config: None,
                ..method_api(m)
            })
            .collect();
        Ok((self.acl_meta(index), list))
    }

    pub(crate) async fn acl_binding_rule_set(
        &self,
        b: AclBindingRule,
        create: bool,
    ) -> Result<AclBindingRule, RpcError> {
        self.acl_enabled()?;
        let view = self.inner.store.view();
        let mut ws = WatchSet::new();
        let id = if create {
            if !b.id.is_empty() {
                return Err(bad(
                    "Invalid Binding Rule: ID must be empty when creating a binding rule",
                ));
            }
            uuid::Uuid::new_v4().to_string()
        } else {
            match view.acl_binding_rule(&mut ws, &b.id).1 {
                Some(old) => {
                    if !b.auth_method.is_empty() && b.auth_method != old.auth_method {
                        return Err(bad("Invalid Binding Rule: cannot change AuthMethod"));
                    }
                    old.id
                }
                None => return Err(bad(format!("cannot find binding rule {}", b.id))),
            }
        };
        if b.auth_method.is_empty() {
            return Err(bad("Invalid Binding Rule: no AuthMethod is set"));
        }
        if view.acl_auth_method(&mut ws, &b.auth_method).1.is_none() {
            return Err(bad(format!(
                "Invalid Binding Rule: unknown auth method {:?}",
                b.auth_method
            )));
        }
        match b.bind_type.as_str() {
            "service" | "node" | "role" | "policy" | "templated-policy" => {}
            "" => return Err(bad("Invalid Binding Rule: no BindType is set")),
            other => {
                return Err(bad(format!(
                    "Invalid Binding Rule: unknown BindType {other:?}"
                )))
            }
        }
        if b.bind_name.is_empty() {
            return Err(bad("Invalid Binding Rule: no BindName is set"));
        }
        if !b.selector.trim().is_empty() {
            proconsul_filter::Filter::new(&b.selector, proconsul_filter::schemas::BINDING_RULE)
                .map_err(|e| bad(format!("invalid Binding Rule: Selector is invalid: {e}")))?;
        }
        let rec = AclBindingRuleRec {
            id: id.clone(),
            description: b.description,
            auth_method: b.auth_method,
            selector: b.selector,
            bind_type: b.bind_type,
            bind_name: b.bind_name,
            bind_vars: b.bind_vars,
            create_index: 0,
            modify_index: 0,
        };
        self.propose_acl(AclCommand::BindingRuleSet(rec)).await?;
        let rec = self
            .inner
            .store
            .view()
            .acl_binding_rule(&mut ws, &id)
            .1
            .ok_or_else(|| RpcError::Internal("binding rule vanished after its write".into()))?;
        Ok(rule_api(&rec))
    }

    pub(crate) fn acl_binding_rule_read(
        &self,
        id: &str,
    ) -> Result<(QueryMeta, Option<AclBindingRule>), RpcError> {
        self.acl_enabled()?;
        uuid_index(id, "binding rule")?;
        let (index, b) = self
            .inner
            .store
            .view()
            .acl_binding_rule(&mut WatchSet::new(), id);
        Ok((self.acl_meta(index), b.as_ref().map(rule_api)))
    }

    pub(crate) async fn acl_binding_rule_delete(&self, id: &str) -> Result<(), RpcError> {
        self.acl_enabled()?;
        if self
            .inner
            .store
            .view()
            .acl_binding_rule(&mut WatchSet::new(), id)
            .1
            .is_none()
        {
            return Err(gone("binding rule"));
        }
        self.propose_acl(AclCommand::BindingRuleDelete { id: id.into() })
            .await?;
        Ok(())
    }

    pub(crate) fn acl_binding_rule_list(
        &self,
        method: &str,
    ) -> Result<(QueryMeta, Vec<AclBindingRule>), RpcError> {
        self.acl_enabled()?;
        let (index, list) = self
            .inner
            .store
            .view()
            .acl_binding_rules(&mut WatchSet::new());
        let list = list
            .iter()
            .filter(|b| method.is_empty() || b.auth_method == method)
            .map(rule_api)
            .collect();
        Ok((self.acl_meta(index), list))
    }

    pub(crate) async fn acl_login(
        &self,
        params: proconsul_types::AclLoginParams,
    ) -> Result<AclToken, RpcError> {
        self.acl_enabled()?;
        let view = self.inner.store.view();
        let Some(method) = view
            .acl_auth_method(&mut WatchSet::new(), &params.auth_method)
            .1
        else {
            return Err(RpcError::PermissionDenied(format!(
                "ACL not found: auth method {:?} not found",
                params.auth_method
            )));
        };
        if method.kind != "jwt" {
            return Err(bad(format!(
                "proconsul cannot log in with auth methods of type {:?} yet (only \"jwt\")",
                method.kind
            )));
        }
        // Reading a JWKS may touch the disk or a local HTTP server: off the runtime's threads.
        let bearer = params.bearer_token.clone();
        let m = method.clone();
        let claims = tokio::task::spawn_blocking(move || super::login::validate_jwt(&m, &bearer))
            .await
            .map_err(|e| RpcError::Internal(e.to_string()))??;
        let grants = self.bind(&method.name, &claims)?;
        if grants == AclGrants::default() {
            return Err(RpcError::PermissionDenied("Permission denied".into()));
        }
        let now = self.inner.clock.now_ms();
        let mut t = new_token_rec(
            &uuid::Uuid::new_v4().to_string(),
            &uuid::Uuid::new_v4().to_string(),
            now,
        );
        t.description = if params.meta.is_empty() {
            "token created via login".into()
        } else {
            format!(
                "token created via login: {}",
                serde_json::to_string(&params.meta).unwrap_or_default()
            )
        };
        t.auth_method = method.name.clone();
        t.local = method.token_locality != "global";
        if method.max_token_ttl_ns > 0 {
            t.expiration_time_ms = Some(now + method.max_token_ttl_ns / 1_000_000);
        }
        t.grants = grants;
        rehash(&mut t);
        let accessor = t.accessor_id.clone();
        self.propose_acl(AclCommand::TokenSet(t)).await?;
        self.token_read_now(&accessor)
    }

    pub(crate) async fn acl_logout(&self, secret: &str) -> Result<(), RpcError> {
        self.acl_enabled()?;
        let view = self.inner.store.view();
        if secret.is_empty() || secret == super::ANONYMOUS_SECRET_ID {
            return Err(RpcError::Unauthorized(
                "Supplied token does not exist".into(),
            ));
        }
        let Some(t) = view.acl_token_by_secret(&mut WatchSet::new(), secret).1 else {
            return Err(super::not_found());
        };
        if t.auth_method.is_empty() {
            return Err(RpcError::PermissionDenied(
                "Permission denied: token wasn't created via login".into(),
            ));
        }
        self.propose_acl(AclCommand::TokenDelete {
            accessor_ids: vec![t.accessor_id],
        })
        .await?;
        Ok(())
    }
}

/// Names of policies, roles and auth methods: Consul's `validPolicyName`.
fn valid_policy_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// An auth method's type and configuration, as far as proconsul checks them.
pub(crate) fn validate_method(
    kind: &str,
    config: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), RpcError> {
    match kind {
        "" => Err(bad("Invalid Auth Method: no Type is set")),
        "jwt" => {
            let keys = config
                .get("JWTValidationPubKeys")
                .and_then(|v| v.as_array())
                .is_some_and(|a| !a.is_empty());
            let jwks = config
                .get("JWKSURL")
                .and_then(|v| v.as_str())
                .is_some_and(|s| !s.is_empty());
            let oidc = config
                .get("OIDCDiscoveryURL")
                .and_then(|v| v.as_str())
                .is_some_and(|s| !s.is_empty());
            if [keys, jwks, oidc].iter().filter(|b| **b).count() != 1 {
                return Err(bad(
                    "Invalid Auth Method: exactly one of 'JWTValidationPubKeys', 'JWKSURL', or 'OIDCDiscoveryURL' must be set for type \"jwt\"",
                ));
            }
            Ok(())
        }
        "kubernetes" | "oidc" | "aws-iam" => Ok(()),
        other => Err(bad(format!(
            "Invalid Auth Method: Type should be one of: [jwt kubernetes oidc aws-iam], got {other:?}"
        ))),
    }
}
