//! Access levels (what a rule grants) and enforcement decisions (what a check answers).

use serde::{Deserialize, Serialize};

/// What a rule grants: the `policy = "..."` of a rule, or the value of `acl`, `operator`, ...
///
/// The variants are declared in **merge precedence** order, so `Ord`/`max` picks the winner when
/// two policies carry a rule for the same resource and name: `deny` beats `write` beats `list`
/// beats `read` (Consul's `takesPrecedenceOver` in `acl/policy.go`). This ordering is *not* the
/// "how much is allowed" order: `deny` allows nothing but wins every merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLevel {
    /// Read only.
    Read,
    /// Read, plus listing keys under a prefix (only valid on `key` and `key_prefix` rules; only
    /// consulted when `acl.enable_key_list_policy` is on).
    List,
    /// Read, list and write.
    Write,
    /// Nothing; an explicit denial that stops the search for a less specific rule.
    Deny,
}

impl AccessLevel {
    /// Parse a level as Consul does (`AccessLevelFromString`): case-insensitively.
    pub fn parse(text: &str) -> Option<AccessLevel> {
        match text.to_ascii_lowercase().as_str() {
            "read" => Some(AccessLevel::Read),
            "list" => Some(AccessLevel::List),
            "write" => Some(AccessLevel::Write),
            "deny" => Some(AccessLevel::Deny),
            _ => None,
        }
    }

    /// The level as written in rules.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::Read => "read",
            AccessLevel::List => "list",
            AccessLevel::Write => "write",
            AccessLevel::Deny => "deny",
        }
    }

    /// Does a rule at this level grant `required`? Consul's `enforce` in
    /// `acl/policy_authorizer.go`: `write` grants everything, `list` grants list and read, `read`
    /// grants read, `deny` grants nothing. A matching rule always gives a definite answer; only
    /// the absence of a rule gives [`EnforcementDecision::Default`].
    pub fn grants(self, required: Required) -> EnforcementDecision {
        let allowed = match self {
            AccessLevel::Write => true,
            AccessLevel::List => matches!(required, Required::List | Required::Read),
            AccessLevel::Read => required == Required::Read,
            AccessLevel::Deny => false,
        };
        EnforcementDecision::from_bool(allowed)
    }
}

impl std::fmt::Display for AccessLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The permission a check needs (Consul passes an `AccessLevel` here; `deny` is never needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Required {
    Read,
    List,
    Write,
}

/// The answer of one authorizer to one check (Consul's `EnforcementDecision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnforcementDecision {
    Allow,
    Deny,
    /// No rule applies: the next authorizer in the chain (in the end `acl.default_policy`) decides.
    Default,
}

impl EnforcementDecision {
    pub fn from_bool(allowed: bool) -> EnforcementDecision {
        if allowed {
            EnforcementDecision::Allow
        } else {
            EnforcementDecision::Deny
        }
    }
}

/// `acl.default_policy`: what happens when no rule of the token matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultPolicy {
    /// Consul's default: unmatched checks pass (except `acl:*` and snapshots, see [`crate::Authorizer`]).
    #[default]
    Allow,
    Deny,
}

impl DefaultPolicy {
    /// `"allow"` or `"deny"`, exactly as Consul's `RootAuthorizer` matches them.
    pub fn parse(text: &str) -> Option<DefaultPolicy> {
        match text {
            "allow" => Some(DefaultPolicy::Allow),
            "deny" => Some(DefaultPolicy::Deny),
            _ => None,
        }
    }
}
