//! ACL shapes (`/v1/acl/*`): tokens, policies, roles, auth methods, binding rules.
//!
//! One struct per object serves as the request body (every field optional, matched
//! case-insensitively) and as the answer (Consul's field order, `omitempty` where Consul has
//! it). Token and role lists answer the same structs (a token's list stub differs only in
//! `ExpirationTTL`, which Consul never shows once a token is made); the policy list answers
//! [`AclPolicyStub`].

use serde::{Deserialize, Serialize};

use crate::Index;

/// A token's or role's link to a policy or role: by `ID` or by `Name` on input, both on output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclLink {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
}

/// Consul's `ACLServiceIdentity`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclServiceIdentity {
    pub service_name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub datacenters: Vec<String>,
}

/// Consul's `ACLNodeIdentity`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclNodeIdentity {
    pub node_name: String,
    pub datacenter: String,
}

/// The variables of a templated policy (Consul spells the key in lower case).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AclTemplateVariables {
    #[serde(
        rename = "name",
        alias = "Name",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
}

/// Consul's `ACLTemplatedPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclTemplatedPolicy {
    pub template_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_variables: Option<AclTemplateVariables>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub datacenters: Vec<String>,
}

/// Consul's `ACLToken` (and its list stub).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclToken {
    #[serde(rename = "AccessorID")]
    pub accessor_id: String,
    #[serde(rename = "SecretID")]
    pub secret_id: String,
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<AclLink>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<AclLink>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub service_identities: Vec<AclServiceIdentity>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub node_identities: Vec<AclNodeIdentity>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub templated_policies: Vec<AclTemplatedPolicy>,
    pub local: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auth_method: String,
    /// RFC 3339.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub expiration_time: String,
    /// A Go duration (`"10m0s"`), on input text or nanoseconds.
    #[serde(rename = "ExpirationTTL", skip_serializing_if = "String::is_empty")]
    pub expiration_ttl: String,
    /// RFC 3339.
    pub create_time: String,
    /// Base64 of the token's hash.
    pub hash: String,
    pub create_index: Index,
    pub modify_index: Index,
}

/// Consul's `ACLPolicy` (and its list stub, without `Rules`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclPolicy {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub description: String,
    /// `None` in list stubs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub datacenters: Vec<String>,
    pub hash: String,
    pub create_index: Index,
    pub modify_index: Index,
}

/// Consul's `ACLRole`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclRole {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<AclLink>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub service_identities: Vec<AclServiceIdentity>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub node_identities: Vec<AclNodeIdentity>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub templated_policies: Vec<AclTemplatedPolicy>,
    pub hash: String,
    pub create_index: Index,
    pub modify_index: Index,
}

/// Consul's `ACLAuthMethod`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclAuthMethod {
    /// A Go duration; empty when unset. First, as Consul's custom marshalling puts it.
    #[serde(rename = "MaxTokenTTL", skip_serializing_if = "String::is_empty")]
    pub max_token_ttl: String,
    pub name: String,
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub token_locality: String,
    /// `None` in list stubs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Map<String, serde_json::Value>>,
    pub create_index: Index,
    pub modify_index: Index,
}

/// Consul's `ACLBindingRule`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclBindingRule {
    #[serde(rename = "ID")]
    pub id: String,
    pub description: String,
    pub auth_method: String,
    pub selector: String,
    pub bind_type: String,
    pub bind_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_vars: Option<serde_json::Map<String, serde_json::Value>>,
    pub create_index: Index,
    pub modify_index: Index,
}

/// `GET /v1/acl/replication` in a datacenter that replicates from nowhere.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AclReplicationStatus {
    pub enabled: bool,
    pub running: bool,
    pub source_datacenter: String,
    pub replication_type: String,
    pub replicated_index: Index,
    pub replicated_role_index: Index,
    pub replicated_token_index: Index,
    pub last_success: String,
    pub last_error: String,
    pub last_error_message: String,
}

/// `POST /v1/acl/login`'s body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclLoginParams {
    pub auth_method: String,
    pub bearer_token: String,
    pub meta: std::collections::BTreeMap<String, String>,
}

/// An entry of `GET /v1/acl/policies` (Consul's `ACLPolicyListStub`: no `Rules`, and
/// `Datacenters` always present, `null` when empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclPolicyStub {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub description: String,
    pub datacenters: Option<Vec<String>>,
    pub hash: String,
    pub create_index: Index,
    pub modify_index: Index,
}

impl AclPolicy {
    /// What a policy list shows of it.
    pub fn stub(self) -> AclPolicyStub {
        AclPolicyStub {
            id: self.id,
            name: self.name,
            description: self.description,
            datacenters: (!self.datacenters.is_empty()).then_some(self.datacenters),
            hash: self.hash,
            create_index: self.create_index,
            modify_index: self.modify_index,
        }
    }
}

// ---- the requests a server answers (see `call.rs`) ----

/// `ACL.Bootstrap`: the first management token, once (`reset_index` after a reset).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclBootstrap {
    pub reset_index: u64,
}

/// `ACL.TokenSet`: create (`create`: `PUT /v1/acl/token`) or update a token.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclTokenSet {
    /// Set by a secondary datacenter's server forwarding the write to the primary
    /// (`primary_datacenter`), which holds the ACL state; empty otherwise.
    #[serde(default)]
    pub datacenter: String,
    pub token: AclToken,
    pub create: bool,
}

/// `ACL.TokenRead`: by accessor, or by secret (`/v1/acl/token/self`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclTokenRead {
    pub id: String,
    pub by_secret: bool,
}

/// `ACL.TokenClone`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclTokenClone {
    /// Set by a secondary datacenter's server forwarding the write to the primary
    /// (`primary_datacenter`), which holds the ACL state; empty otherwise.
    #[serde(default)]
    pub datacenter: String,
    pub accessor_id: String,
    pub description: String,
}

/// `ACL.TokenDelete`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclTokenDelete {
    /// Set by a secondary datacenter's server forwarding the write to the primary
    /// (`primary_datacenter`), which holds the ACL state; empty otherwise.
    #[serde(default)]
    pub datacenter: String,
    pub accessor_id: String,
}

/// `ACL.TokenList`, with its filters (each empty when not given).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclTokenList {
    pub policy: String,
    pub role: String,
    pub auth_method: String,
    pub service_name: String,
}

/// `ACL.PolicySet`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclPolicySet {
    /// Set by a secondary datacenter's server forwarding the write to the primary
    /// (`primary_datacenter`), which holds the ACL state; empty otherwise.
    #[serde(default)]
    pub datacenter: String,
    pub policy: AclPolicy,
    pub create: bool,
}

/// `ACL.PolicyRead`: by ID, or by name when `id` is empty.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclPolicyRead {
    pub id: String,
    pub name: String,
}

/// `ACL.PolicyDelete`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclPolicyDelete {
    /// Set by a secondary datacenter's server forwarding the write to the primary
    /// (`primary_datacenter`), which holds the ACL state; empty otherwise.
    #[serde(default)]
    pub datacenter: String,
    pub id: String,
}

/// `ACL.PolicyList`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclPolicyList {}

/// `ACL.RoleSet`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclRoleSet {
    /// Set by a secondary datacenter's server forwarding the write to the primary
    /// (`primary_datacenter`), which holds the ACL state; empty otherwise.
    #[serde(default)]
    pub datacenter: String,
    pub role: AclRole,
    pub create: bool,
}

/// `ACL.RoleRead`: by ID, or by name when `id` is empty.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclRoleRead {
    pub id: String,
    pub name: String,
}

/// `ACL.RoleDelete`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclRoleDelete {
    /// Set by a secondary datacenter's server forwarding the write to the primary
    /// (`primary_datacenter`), which holds the ACL state; empty otherwise.
    #[serde(default)]
    pub datacenter: String,
    pub id: String,
}

/// `ACL.RoleList`, optionally of the roles linking one policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclRoleList {
    pub policy: String,
}

/// `ACL.AuthMethodSet`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclAuthMethodSet {
    pub method: AclAuthMethod,
    pub create: bool,
}

/// `ACL.AuthMethodRead`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclAuthMethodRead {
    pub name: String,
}

/// `ACL.AuthMethodDelete`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclAuthMethodDelete {
    pub name: String,
}

/// `ACL.AuthMethodList`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclAuthMethodList {}

/// `ACL.BindingRuleSet`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclBindingRuleSet {
    pub rule: AclBindingRule,
    pub create: bool,
}

/// `ACL.BindingRuleRead`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclBindingRuleRead {
    pub id: String,
}

/// `ACL.BindingRuleDelete`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclBindingRuleDelete {
    pub id: String,
}

/// `ACL.BindingRuleList`, optionally of one auth method.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclBindingRuleList {
    pub auth_method: String,
}

/// `ACL.Login`: exchange a bearer token of an auth method for a local token.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclLogin {
    pub params: AclLoginParams,
}

/// `ACL.Logout`: delete the caller's own token (one an auth method issued).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclLogout {}

/// `ACL.ResolveIdentity`: what a client agent asks a server so it can authorise requests it
/// serves itself (the agent API): the token's accessor and the rules it grants.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclResolveIdentity {}

/// The answer of [`AclResolveIdentity`]: `None` rules mean management (every permission).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AclIdentity {
    pub accessor_id: String,
    /// Every policy the token grants, expanded (links, roles, identities, templates), as
    /// rules text; empty for a management token.
    pub rules: Vec<String>,
    pub management: bool,
    /// `acl.default_policy` of the servers: `allow` or `deny`.
    pub default_allow: bool,
}

/// The agent's `acl { … }` settings, as the server and the agent apply them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclConfig {
    pub enabled: bool,
    /// `default_policy = "allow"` (Consul's default) or `"deny"`.
    pub default_allow: bool,
    /// `extend-cache` (default), `async-cache`, `allow`, `deny`.
    pub down_policy: String,
    pub enable_key_list_policy: bool,
    pub enable_token_persistence: bool,
    /// How long a client agent trusts a token it resolved through a server.
    pub token_ttl: std::time::Duration,
    /// How long it trusts the policies and roles it resolved with it (`policy_ttl`,
    /// `role_ttl`): a token's rights are resolved as one, so the shortest of the three applies.
    #[serde(default = "thirty_seconds")]
    pub policy_ttl: std::time::Duration,
    #[serde(default = "thirty_seconds")]
    pub role_ttl: std::time::Duration,
    pub tokens: AclAgentTokens,
    /// The datacenter whose servers hold the ACL state (`primary_datacenter`); another
    /// datacenter's servers replicate its policies and roles (and, with
    /// `enable_token_replication`, its global tokens). Empty: this one.
    pub primary_datacenter: String,
    pub enable_token_replication: bool,
}

impl Default for AclConfig {
    fn default() -> Self {
        AclConfig {
            enabled: false,
            default_allow: true,
            down_policy: "extend-cache".into(),
            enable_key_list_policy: false,
            enable_token_persistence: false,
            token_ttl: std::time::Duration::from_secs(30),
            policy_ttl: thirty_seconds(),
            role_ttl: thirty_seconds(),
            tokens: AclAgentTokens::default(),
            primary_datacenter: String::new(),
            enable_token_replication: false,
        }
    }
}

fn thirty_seconds() -> std::time::Duration {
    std::time::Duration::from_secs(30)
}

impl AclConfig {
    /// How long a resolved token's rights (the token, its roles and policies compiled
    /// together) are trusted: the shortest of `token_ttl`, `policy_ttl` and `role_ttl`.
    pub fn rights_ttl(&self) -> std::time::Duration {
        self.token_ttl.min(self.policy_ttl).min(self.role_ttl)
    }
}

/// `acl.tokens { … }`: the secrets the agent holds (each empty when unset).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclAgentTokens {
    pub initial_management: String,
    pub agent: String,
    pub agent_recovery: String,
    pub default: String,
    pub replication: String,
    pub dns: String,
    pub config_file_service_registration: String,
}

/// `ACL.Replicate`: asked of the primary datacenter (`datacenter`) by a secondary's leader.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclReplicate {
    #[serde(default)]
    pub datacenter: String,
    /// Include the global (non-local) tokens (`enable_token_replication`).
    pub tokens: bool,
}

/// The primary's policies, roles and (when asked) global tokens at `index`, as its state
/// store's records (msgpack; only servers read them: the types crate does not know them).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AclReplicationBatch {
    pub index: u64,
    #[serde(with = "serde_bytes")]
    pub records: Vec<u8>,
}
