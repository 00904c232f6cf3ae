//! The ACL tables: tokens, policies, roles, auth methods, binding rules and the bootstrap mark.
//!
//! Like every table here they change only through the Raft log ([`AclCommand`]) and are read
//! through a [`View`]. The records are the store's own (their serde form is the log and
//! snapshot format); the server turns them into Consul's API shapes. Everything decided by a
//! clock or randomness (IDs, secrets, create times, expiry) is chosen by the proposer; apply
//! only checks what must hold across entries — unique secrets and names, the bootstrap
//! reset index — so two servers applying the same log agree.
//!
//! Consul's memdb tables and index-table rows (`acl-tokens`, `acl-policies`, `acl-roles`,
//! `acl-auth-methods`, `acl-binding-rules`, `acl-token-bootstrap`) map one to one.

use imbl::OrdMap;
use serde::{Deserialize, Serialize};

use crate::error::StateError;
use crate::store::{Table, Tx};
use crate::view::View;
use crate::watch::WatchSet;

/// A token's or role's link to a policy or role: the ID is what counts; the name is refreshed
/// from the linked record when read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclLink {
    pub id: String,
    #[serde(default)]
    pub name: String,
}

/// Consul's `ACLServiceIdentity`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclServiceIdentity {
    pub service_name: String,
    #[serde(default)]
    pub datacenters: Vec<String>,
}

/// Consul's `ACLNodeIdentity`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclNodeIdentity {
    pub node_name: String,
    pub datacenter: String,
}

/// Consul's `ACLTemplatedPolicy`: a builtin template and its variables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclTemplatedPolicy {
    pub template_name: String,
    /// The template's `name` variable, where it takes one.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub datacenters: Vec<String>,
}

/// What a token or role grants, besides its own identity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclGrants {
    #[serde(default)]
    pub policies: Vec<AclLink>,
    #[serde(default)]
    pub roles: Vec<AclLink>,
    #[serde(default)]
    pub service_identities: Vec<AclServiceIdentity>,
    #[serde(default)]
    pub node_identities: Vec<AclNodeIdentity>,
    #[serde(default)]
    pub templated_policies: Vec<AclTemplatedPolicy>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclTokenRec {
    pub accessor_id: String,
    pub secret_id: String,
    #[serde(default)]
    pub description: String,
    /// Roles are ignored here (tokens link roles, roles do not).
    #[serde(default)]
    pub grants: AclGrants,
    #[serde(default)]
    pub local: bool,
    /// The auth method that issued this token (`acl login`), or empty.
    #[serde(default)]
    pub auth_method: String,
    /// Unix ms after which the token no longer resolves; the leader reaps it.
    #[serde(default)]
    pub expiration_time_ms: Option<u64>,
    /// The TTL it was created with, in nanoseconds (0: none).
    #[serde(default)]
    pub expiration_ttl_ns: u64,
    pub create_time_ms: u64,
    #[serde(with = "serde_bytes", default)]
    pub hash: Vec<u8>,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
}

impl AclTokenRec {
    /// Has the token expired at unix ms `now_ms`?
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expiration_time_ms.is_some_and(|t| t <= now_ms)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclPolicyRec {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub rules: String,
    #[serde(default)]
    pub datacenters: Vec<String>,
    #[serde(with = "serde_bytes", default)]
    pub hash: Vec<u8>,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclRoleRec {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub grants: AclGrants,
    #[serde(with = "serde_bytes", default)]
    pub hash: Vec<u8>,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AclAuthMethodRec {
    pub name: String,
    /// `jwt`, `kubernetes`, `oidc`, …
    pub kind: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub max_token_ttl_ns: u64,
    #[serde(default)]
    pub token_locality: String,
    /// The method's configuration as given (its keys are the method type's own).
    #[serde(default)]
    pub config: crate::records::JsonMap,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AclBindingRuleRec {
    pub id: String,
    #[serde(default)]
    pub description: String,
    pub auth_method: String,
    #[serde(default)]
    pub selector: String,
    pub bind_type: String,
    pub bind_name: String,
    #[serde(default)]
    pub bind_vars: Option<crate::records::JsonMap>,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
}

/// A change to the ACL tables (one variant of [`crate::Command`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AclCommand {
    /// Create or replace a token (by accessor). Its secret must not be another token's.
    #[serde(rename = "token_set")]
    TokenSet(AclTokenRec),
    /// Delete tokens by accessor (absent ones are skipped).
    #[serde(rename = "token_delete")]
    TokenDelete { accessor_ids: Vec<String> },
    /// Create the first management token, once: `reset_index` must be 0 before the first
    /// bootstrap and the bootstrap mark's index after a reset.
    #[serde(rename = "bootstrap")]
    Bootstrap {
        token: AclTokenRec,
        #[serde(default)]
        reset_index: u64,
    },
    /// Create or replace a policy (by ID); names are unique.
    #[serde(rename = "policy_set")]
    PolicySet(AclPolicyRec),
    #[serde(rename = "policy_delete")]
    PolicyDelete { id: String },
    #[serde(rename = "role_set")]
    RoleSet(AclRoleRec),
    #[serde(rename = "role_delete")]
    RoleDelete { id: String },
    #[serde(rename = "auth_method_set")]
    AuthMethodSet(AclAuthMethodRec),
    /// Delete an auth method with its binding rules and the tokens it issued.
    #[serde(rename = "auth_method_delete")]
    AuthMethodDelete { name: String },
    #[serde(rename = "binding_rule_set")]
    BindingRuleSet(AclBindingRuleRec),
    #[serde(rename = "binding_rule_delete")]
    BindingRuleDelete { id: String },
}

/// Index-table row of the bootstrap mark (Consul's `acl-token-bootstrap`).
const BOOTSTRAP_ROW: &str = "acl-token-bootstrap";

/// The ACL tables of one state version.
#[derive(Clone, Default)]
pub(crate) struct AclTables {
    /// The highest index of the ACL tables (kept here so every request's token lookup reads
    /// one number rather than five index rows).
    pub index: u64,
    /// accessor ID → token
    pub tokens: OrdMap<String, AclTokenRec>,
    /// secret ID → accessor ID (rebuilt on restore)
    pub secrets: OrdMap<String, String>,
    pub policies: OrdMap<String, AclPolicyRec>,
    /// policy name → ID (rebuilt on restore)
    pub policy_names: OrdMap<String, String>,
    pub roles: OrdMap<String, AclRoleRec>,
    /// role name → ID (rebuilt on restore)
    pub role_names: OrdMap<String, String>,
    /// name → auth method
    pub auth_methods: OrdMap<String, AclAuthMethodRec>,
    pub binding_rules: OrdMap<String, AclBindingRuleRec>,
}

/// The ACL tables as snapshots hold them (secondary indexes are rebuilt).
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct AclSnapshot {
    #[serde(default)]
    tokens: Vec<AclTokenRec>,
    #[serde(default)]
    policies: Vec<AclPolicyRec>,
    #[serde(default)]
    roles: Vec<AclRoleRec>,
    #[serde(default)]
    auth_methods: Vec<AclAuthMethodRec>,
    #[serde(default)]
    binding_rules: Vec<AclBindingRuleRec>,
}

impl AclSnapshot {
    /// Each table's rows and their encoded size, under Consul's record names.
    pub(crate) fn stats(&self) -> [crate::snapshot::KindStats; 5] {
        use crate::snapshot::sized;
        [
            sized("ACLToken", &self.tokens),
            sized("ACLPolicy", &self.policies),
            sized("ACLRole", &self.roles),
            sized("ACLAuthMethod", &self.auth_methods),
            sized("ACLBindingRule", &self.binding_rules),
        ]
    }
}

impl AclTables {
    pub(crate) fn to_snapshot(&self) -> AclSnapshot {
        AclSnapshot {
            tokens: self.tokens.values().cloned().collect(),
            policies: self.policies.values().cloned().collect(),
            roles: self.roles.values().cloned().collect(),
            auth_methods: self.auth_methods.values().cloned().collect(),
            binding_rules: self.binding_rules.values().cloned().collect(),
        }
    }

    pub(crate) fn from_snapshot(snap: AclSnapshot) -> AclTables {
        let mut t = AclTables::default();
        for tok in snap.tokens {
            t.secrets
                .insert(tok.secret_id.clone(), tok.accessor_id.clone());
            t.tokens.insert(tok.accessor_id.clone(), tok);
        }
        for p in snap.policies {
            t.policy_names.insert(p.name.clone(), p.id.clone());
            t.policies.insert(p.id.clone(), p);
        }
        for r in snap.roles {
            t.role_names.insert(r.name.clone(), r.id.clone());
            t.roles.insert(r.id.clone(), r);
        }
        for m in snap.auth_methods {
            t.auth_methods.insert(m.name.clone(), m);
        }
        for b in snap.binding_rules {
            t.binding_rules.insert(b.id.clone(), b);
        }
        t
    }
}

fn invalid(msg: impl Into<String>) -> StateError {
    StateError::Message(msg.into())
}

impl Tx {
    pub(crate) fn acl_apply(&mut self, cmd: &AclCommand) -> Result<(), StateError> {
        let r = self.acl_apply_inner(cmd);
        if r.is_ok() {
            self.s.acl.index = self.s.max_index(&Table::ACL);
        }
        r
    }

    fn acl_apply_inner(&mut self, cmd: &AclCommand) -> Result<(), StateError> {
        match cmd {
            AclCommand::TokenSet(tok) => self.acl_token_set(tok.clone()),
            AclCommand::TokenDelete { accessor_ids } => {
                for id in accessor_ids {
                    self.acl_token_delete(id);
                }
                Ok(())
            }
            AclCommand::Bootstrap { token, reset_index } => {
                match self.s.index_of(BOOTSTRAP_ROW) {
                    Some(done) if *reset_index != done => {
                        return Err(invalid(if *reset_index == 0 {
                            "ACL bootstrap no longer allowed".to_string()
                        } else {
                            format!("Invalid bootstrap reset index (specified {reset_index}, reset index: {done})")
                        }));
                    }
                    None if *reset_index != 0 => {
                        return Err(invalid(format!(
                        "Invalid bootstrap reset index (specified {reset_index}, reset index: 0)"
                    )))
                    }
                    _ => {}
                }
                self.acl_token_set(token.clone())?;
                self.s.indexes.insert(BOOTSTRAP_ROW.to_string(), self.idx);
                Ok(())
            }
            AclCommand::PolicySet(p) => {
                let acl = &mut self.s.acl;
                if let Some(other) = acl.policy_names.get(&p.name) {
                    if *other != p.id {
                        return Err(invalid(format!(
                            "Invalid Policy: A Policy with Name {:?} already exists",
                            p.name
                        )));
                    }
                }
                let mut p = p.clone();
                match acl.policies.get(&p.id) {
                    Some(old) => {
                        p.create_index = old.create_index;
                        let old_name = old.name.clone();
                        acl.policy_names.remove(&old_name);
                    }
                    None => p.create_index = self.idx,
                }
                p.modify_index = self.idx;
                acl.policy_names.insert(p.name.clone(), p.id.clone());
                acl.policies.insert(p.id.clone(), p);
                self.bump_table(Table::AclPolicies);
                Ok(())
            }
            AclCommand::PolicyDelete { id } => {
                if let Some(old) = self.s.acl.policies.remove(id) {
                    self.s.acl.policy_names.remove(&old.name);
                    self.bump_table(Table::AclPolicies);
                }
                Ok(())
            }
            AclCommand::RoleSet(r) => {
                let acl = &mut self.s.acl;
                if let Some(other) = acl.role_names.get(&r.name) {
                    if *other != r.id {
                        return Err(invalid(format!(
                            "Invalid Role: A Role with Name {:?} already exists",
                            r.name
                        )));
                    }
                }
                let mut r = r.clone();
                match acl.roles.get(&r.id) {
                    Some(old) => {
                        r.create_index = old.create_index;
                        let old_name = old.name.clone();
                        acl.role_names.remove(&old_name);
                    }
                    None => r.create_index = self.idx,
                }
                r.modify_index = self.idx;
                acl.role_names.insert(r.name.clone(), r.id.clone());
                acl.roles.insert(r.id.clone(), r);
                self.bump_table(Table::AclRoles);
                Ok(())
            }
            AclCommand::RoleDelete { id } => {
                if let Some(old) = self.s.acl.roles.remove(id) {
                    self.s.acl.role_names.remove(&old.name);
                    self.bump_table(Table::AclRoles);
                }
                Ok(())
            }
            AclCommand::AuthMethodSet(m) => {
                let mut m = m.clone();
                m.create_index = self
                    .s
                    .acl
                    .auth_methods
                    .get(&m.name)
                    .map_or(self.idx, |old| old.create_index);
                m.modify_index = self.idx;
                self.s.acl.auth_methods.insert(m.name.clone(), m);
                self.bump_table(Table::AclAuthMethods);
                Ok(())
            }
            AclCommand::AuthMethodDelete { name } => {
                if self.s.acl.auth_methods.remove(name).is_none() {
                    return Ok(());
                }
                self.bump_table(Table::AclAuthMethods);
                let rules: Vec<String> = (self.s.acl.binding_rules.iter())
                    .filter(|(_, b)| b.auth_method == *name)
                    .map(|(id, _)| id.clone())
                    .collect();
                if !rules.is_empty() {
                    for id in rules {
                        self.s.acl.binding_rules.remove(&id);
                    }
                    self.bump_table(Table::AclBindingRules);
                }
                let tokens: Vec<String> = (self.s.acl.tokens.iter())
                    .filter(|(_, t)| t.auth_method == *name)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in tokens {
                    self.acl_token_delete(&id);
                }
                Ok(())
            }
            AclCommand::BindingRuleSet(b) => {
                if !self.s.acl.auth_methods.contains_key(&b.auth_method) {
                    return Err(invalid(format!(
                        "Invalid Binding Rule: unknown auth method {:?}",
                        b.auth_method
                    )));
                }
                let mut b = b.clone();
                b.create_index =
                    (self.s.acl.binding_rules.get(&b.id)).map_or(self.idx, |old| old.create_index);
                b.modify_index = self.idx;
                self.s.acl.binding_rules.insert(b.id.clone(), b);
                self.bump_table(Table::AclBindingRules);
                Ok(())
            }
            AclCommand::BindingRuleDelete { id } => {
                if self.s.acl.binding_rules.remove(id).is_some() {
                    self.bump_table(Table::AclBindingRules);
                }
                Ok(())
            }
        }
    }

    fn acl_token_set(&mut self, mut tok: AclTokenRec) -> Result<(), StateError> {
        let acl = &mut self.s.acl;
        if let Some(owner) = acl.secrets.get(&tok.secret_id) {
            if *owner != tok.accessor_id {
                return Err(invalid("Invalid Token: SecretID is already in use"));
            }
        }
        match acl.tokens.get(&tok.accessor_id) {
            Some(old) => {
                tok.create_index = old.create_index;
                let old_secret = old.secret_id.clone();
                acl.secrets.remove(&old_secret);
            }
            None => tok.create_index = self.idx,
        }
        tok.modify_index = self.idx;
        acl.secrets
            .insert(tok.secret_id.clone(), tok.accessor_id.clone());
        acl.tokens.insert(tok.accessor_id.clone(), tok);
        self.bump_table(Table::AclTokens);
        Ok(())
    }

    fn acl_token_delete(&mut self, accessor_id: &str) {
        if let Some(old) = self.s.acl.tokens.remove(accessor_id) {
            self.s.acl.secrets.remove(&old.secret_id);
            self.bump_table(Table::AclTokens);
        }
    }
}

/// Reads of the ACL tables. Each watches its table and answers with that table's index.
impl View {
    fn acl_read<T>(
        &self,
        ws: &mut WatchSet,
        t: Table,
        f: impl FnOnce(&AclTables) -> T,
    ) -> (u64, T) {
        self.watch_table(ws, t);
        let s = self.state();
        (s.table_index(t), f(&s.acl))
    }

    pub fn acl_token(&self, ws: &mut WatchSet, accessor_id: &str) -> (u64, Option<AclTokenRec>) {
        self.acl_read(ws, Table::AclTokens, |a| a.tokens.get(accessor_id).cloned())
    }

    pub fn acl_token_by_secret(
        &self,
        ws: &mut WatchSet,
        secret_id: &str,
    ) -> (u64, Option<AclTokenRec>) {
        self.acl_read(ws, Table::AclTokens, |a| {
            (a.secrets.get(secret_id)).and_then(|acc| a.tokens.get(acc).cloned())
        })
    }

    pub fn acl_tokens(&self, ws: &mut WatchSet) -> (u64, Vec<AclTokenRec>) {
        self.acl_read(ws, Table::AclTokens, |a| {
            a.tokens.values().cloned().collect()
        })
    }

    pub fn acl_policy(&self, ws: &mut WatchSet, id: &str) -> (u64, Option<AclPolicyRec>) {
        self.acl_read(ws, Table::AclPolicies, |a| a.policies.get(id).cloned())
    }

    pub fn acl_policy_by_name(&self, ws: &mut WatchSet, name: &str) -> (u64, Option<AclPolicyRec>) {
        self.acl_read(ws, Table::AclPolicies, |a| {
            (a.policy_names.get(name)).and_then(|id| a.policies.get(id).cloned())
        })
    }

    pub fn acl_policies(&self, ws: &mut WatchSet) -> (u64, Vec<AclPolicyRec>) {
        self.acl_read(ws, Table::AclPolicies, |a| {
            a.policies.values().cloned().collect()
        })
    }

    pub fn acl_role(&self, ws: &mut WatchSet, id: &str) -> (u64, Option<AclRoleRec>) {
        self.acl_read(ws, Table::AclRoles, |a| a.roles.get(id).cloned())
    }

    pub fn acl_role_by_name(&self, ws: &mut WatchSet, name: &str) -> (u64, Option<AclRoleRec>) {
        self.acl_read(ws, Table::AclRoles, |a| {
            (a.role_names.get(name)).and_then(|id| a.roles.get(id).cloned())
        })
    }

    pub fn acl_roles(&self, ws: &mut WatchSet) -> (u64, Vec<AclRoleRec>) {
        self.acl_read(ws, Table::AclRoles, |a| a.roles.values().cloned().collect())
    }

    pub fn acl_auth_method(
        &self,
        ws: &mut WatchSet,
        name: &str,
    ) -> (u64, Option<AclAuthMethodRec>) {
        self.acl_read(ws, Table::AclAuthMethods, |a| {
            a.auth_methods.get(name).cloned()
        })
    }

    pub fn acl_auth_methods(&self, ws: &mut WatchSet) -> (u64, Vec<AclAuthMethodRec>) {
        self.acl_read(ws, Table::AclAuthMethods, |a| {
            a.auth_methods.values().cloned().collect()
        })
    }

    pub fn acl_binding_rule(
        &self,
        ws: &mut WatchSet,
        id: &str,
    ) -> (u64, Option<AclBindingRuleRec>) {
        self.acl_read(ws, Table::AclBindingRules, |a| {
            a.binding_rules.get(id).cloned()
        })
    }

    pub fn acl_binding_rules(&self, ws: &mut WatchSet) -> (u64, Vec<AclBindingRuleRec>) {
        self.acl_read(ws, Table::AclBindingRules, |a| {
            a.binding_rules.values().cloned().collect()
        })
    }

    /// The index of the bootstrap, or `None` while ACLs were never bootstrapped.
    pub fn acl_bootstrap_index(&self) -> Option<u64> {
        self.state().index_of(BOOTSTRAP_ROW)
    }

    /// The highest index of every ACL table: a resolved token built from this view stays
    /// right until it changes.
    pub fn acl_index(&self) -> u64 {
        self.state().acl.index
    }
}
