//! Consul's ACL **rules language** and **authorizer**: what a token's policies allow.
//!
//! ```text
//! key_prefix ""        { policy = "read" }
//! key_prefix "app/"    { policy = "write" }
//! key "app/secret"     { policy = "deny" }
//! service "web"        { policy = "write" }
//! operator = "read"
//! ```
//!
//! [`Policy::parse`] reads such rules (HCL or the equivalent JSON) and validates them with
//! Consul's error texts. [`Authorizer::new`] merges the policies of a token and answers checks
//! such as [`Authorizer::key_write`] or [`Authorizer::service_read`], falling back to
//! `acl.default_policy` when no rule applies. [`PolicyAuthorizer`] gives the three-way
//! `Allow`/`Deny`/`Default` decision of the policies alone. Service identities, node identities,
//! templated policies and the builtin policies expand to ordinary [`Policy`] values
//! ([`service_identity_policy`], [`templated_policy`], [`global_management_policy`], ...).
//!
//! ```
//! use proconsul_acl::{Authorizer, DefaultPolicy, Policy};
//!
//! let policy = Policy::parse(r#"
//!     key_prefix "" { policy = "read" }
//!     key "app/secret" { policy = "deny" }
//!     service "web" { policy = "write" }
//! "#).unwrap();
//! let authz = Authorizer::new([&policy], DefaultPolicy::Deny);
//! assert!(authz.key_read("app/config"));
//! assert!(!authz.key_read("app/secret"));
//! assert!(!authz.key_write("app/config"));
//! assert!(authz.service_write("web") && authz.intention_read("web"));
//! assert!(!authz.node_read("n1")); // no rule: the default policy decides
//! ```
//!
//! # Why a crate of its own
//!
//! The semantics are subtle and must match Consul exactly, or a token that works against Consul
//! would be refused here (or, worse, a denial would be lost). Keeping them pure and synchronous
//! (no I/O, no async, no state) makes them testable on their own: the tests compare the
//! authorizer against a naive reference over thousands of random rule sets.
//!
//! # What it is not
//!
//! No token resolution (secret → token → policies, roles, identities, expiry, datacenter
//! scoping of identities and policies), no caching, no `acl.down_policy`, no endpoints, no
//! filtering of responses. Those belong to the server and HTTP crates, which call into this one.
//! Enterprise rules (`namespace`, `partition`, Sentinel) and the peer-aware reads of imported
//! services and nodes are not implemented.
//!
//! # The semantics, in short
//!
//! - **Lookup** of a named resource (`key`, `service`, `node`, `agent`, `session`, `event`,
//!   `query`, and intentions through service rules): an exact rule on the name wins; otherwise the
//!   prefix rule with the longest name the segment starts with; `""` prefixes everything. A
//!   `deny` found this way is final, even if a shorter prefix would allow.
//! - **Levels**: `write` ⊃ `list` ⊃ `read`; `deny` grants nothing. `list` only exists for keys
//!   and only gates listing when `acl.enable_key_list_policy` is on
//!   ([`Authorizer::with_key_list_policy`]); a `read` rule then does not allow listing.
//! - **Merging** several policies: per resource, exact/prefix kind and name, the winner is
//!   `deny` > `write` > `list` > `read` ([`Policy::merge`]). So "deny wins at equal specificity",
//!   and otherwise the most permissive rule wins.
//! - **Intentions** on a service follow the service rule's `intentions`, or `read` when the
//!   service rule is `read`/`write` and `deny` when it is `deny`.
//! - **mesh** and **peering** fall back to the `operator` rule when unset.
//! - **Snapshots** need `acl = "write"`. With `default_policy = "allow"`, ACL reads and writes
//!   and snapshots are still denied unless a rule allows them.
//!
//! # Where the semantics come from
//!
//! hashicorp/consul: `acl/policy.go` (rules and validation), `acl/policy_ce.go` (decoding),
//! `acl/policy_merger.go` (merging), `acl/policy_authorizer.go` (lookups and decisions),
//! `acl/authorizer.go` (the checks and `Enforce`), `acl/static_authorizer.go` and
//! `acl/chained_authorizer.go` (default policy and management), `acl/validation.go` (identity
//! names), `agent/structs/acl.go` and `agent/structs/acl_ce.go` (builtin and synthetic
//! policies), `agent/structs/acl_templated_policy.go` and
//! `agent/structs/acltemplatedpolicy/policies/ce/*.hcl` (templated policies), and the rules
//! reference `website/content/docs/security/acl/acl-rules.mdx`.
//!
//! # Deliberate differences
//!
//! - [`Policy::parse`] rejects unknown keys (Consul silently ignores them, so a misspelt
//!   `servce` block grants nothing without a word). [`Policy::parse_lenient`] ignores them like
//!   Consul, for policies already stored.
//! - An attribute repeated in one block (`policy = "read" policy = "write"`) keeps its last value;
//!   recent Consul rejects this when a policy is written and tolerates it when reading.
//! - Levels are normalized when parsed (`"WRITE"` is `write`), so merging compares levels, not
//!   strings; Consul merges the strings as written, which only differs for mixed-case levels.
//! - In JSON, a name repeated inside one object keeps its last body (the JSON reader keeps one
//!   value per key); in HCL, repeated blocks are all kept and merged.
//! - Consul's legacy (pre-1.4) rules syntax is gone from Consul itself and is not accepted.

mod access;
mod authorizer;
mod check;
mod error;
mod identities;
mod policy;
mod policy_authorizer;
mod rules;
mod tree;

pub use access::{AccessLevel, DefaultPolicy, EnforcementDecision, Required};
pub use authorizer::Authorizer;
pub use check::Check;
pub use error::{EnforceError, RulesError, TemplateError};
pub use identities::{
    global_management_policy, global_read_only_policy, is_valid_node_identity_name,
    is_valid_service_identity_name, node_identity_policy, node_identity_rules,
    service_identity_policy, service_identity_rules, templated_policy, templated_policy_by_name,
    templated_policy_rules, TemplatedPolicy, GLOBAL_MANAGEMENT_POLICY_ID,
    GLOBAL_MANAGEMENT_POLICY_NAME, GLOBAL_MANAGEMENT_RULES, GLOBAL_READ_ONLY_POLICY_ID,
    GLOBAL_READ_ONLY_POLICY_NAME, GLOBAL_READ_ONLY_RULES, IDENTITY_NAME_MAX_LENGTH,
    TEMPLATED_POLICIES,
};
pub use policy::{Policy, Rule, ServiceRule};
pub use policy_authorizer::PolicyAuthorizer;

/// The anonymous token's AccessorID: what a request without a token is.
pub const ANONYMOUS_TOKEN_ACCESSOR_ID: &str = "00000000-0000-0000-0000-000000000002";

#[cfg(test)]
mod tests;
