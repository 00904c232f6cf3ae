//! The authorizer a request is checked against: a token's policies, then the default policy.

use crate::access::{DefaultPolicy, EnforcementDecision};
use crate::check::{named_checks, Check};
use crate::policy::Policy;
use crate::policy_authorizer::PolicyAuthorizer;

/// Yes/no answers for one token (Consul's chained authorizer: the token's policies first, then
/// the static authorizer of `acl.default_policy`, see `acl/chained_authorizer.go` and
/// `acl/static_authorizer.go`).
///
/// When no rule of the token decides:
/// - `default_policy = "allow"` allows everything **except** `acl:read`, `acl:write` and
///   snapshots, which only management tokens get without a rule;
/// - `default_policy = "deny"` denies everything.
///
/// [`Authorizer::manage_all`] is Consul's `ManageAll`: everything is allowed, including ACL
/// management (the agent recovery token). A token linked to the `global-management` policy gets
/// the same answers through its rules ([`crate::global_management_policy`]).
#[derive(Debug, Clone)]
pub struct Authorizer {
    policies: Option<PolicyAuthorizer>,
    fallback: StaticAuthorizer,
    enable_key_list_policy: bool,
}

/// Consul's `staticAuthorizer`: one answer for every check, except that ACL management and
/// snapshots have their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StaticAuthorizer {
    allow_manage: bool,
    default_allow: bool,
}

impl StaticAuthorizer {
    fn for_default_policy(default: DefaultPolicy) -> StaticAuthorizer {
        StaticAuthorizer {
            allow_manage: false,
            default_allow: default == DefaultPolicy::Allow,
        }
    }

    fn allows(self, check: Check<'_>) -> bool {
        if check.needs_management_by_default() {
            self.allow_manage
        } else {
            self.default_allow
        }
    }
}

impl Authorizer {
    /// The authorizer of a token whose policies (including the synthetic ones of its service
    /// identities, node identities and templated policies) are `policies`.
    pub fn new<'a>(
        policies: impl IntoIterator<Item = &'a Policy>,
        default_policy: DefaultPolicy,
    ) -> Authorizer {
        Authorizer {
            policies: Some(PolicyAuthorizer::new(policies)),
            fallback: StaticAuthorizer::for_default_policy(default_policy),
            enable_key_list_policy: false,
        }
    }

    /// Only the default policy (Consul's `RootAuthorizer("allow"|"deny")`): what a request gets
    /// when no token rule applies, e.g. with ACLs in their default-allow bootstrap state.
    pub fn for_default_policy(default_policy: DefaultPolicy) -> Authorizer {
        Authorizer {
            policies: None,
            fallback: StaticAuthorizer::for_default_policy(default_policy),
            enable_key_list_policy: false,
        }
    }

    /// Everything allowed, ACL management included (Consul's `ManageAll`).
    pub fn manage_all() -> Authorizer {
        Authorizer {
            policies: None,
            fallback: StaticAuthorizer {
                allow_manage: true,
                default_allow: true,
            },
            enable_key_list_policy: false,
        }
    }

    /// `acl.enable_key_list_policy`: when on, listing keys needs `list` (or `write`) on the
    /// prefix, see [`Authorizer::kv_list_allowed`]. Off by default, as in Consul.
    pub fn with_key_list_policy(mut self, enabled: bool) -> Authorizer {
        self.enable_key_list_policy = enabled;
        self
    }

    /// The token's policies alone, for callers that need the three-way decision.
    pub fn policy_authorizer(&self) -> Option<&PolicyAuthorizer> {
        self.policies.as_ref()
    }

    /// The answer to `check`: the policies' decision, or the default policy's when they have none.
    pub fn allows(&self, check: Check<'_>) -> bool {
        let decision = self
            .policies
            .as_ref()
            .map_or(EnforcementDecision::Default, |policies| {
                policies.decide(check)
            });
        match decision {
            EnforcementDecision::Allow => true,
            EnforcementDecision::Deny => false,
            EnforcementDecision::Default => self.fallback.allows(check),
        }
    }

    /// May the KV entries under `prefix` be listed at all? With `acl.enable_key_list_policy` this
    /// is [`Authorizer::key_list`] on the prefix; without it Consul does not gate listing (this
    /// returns `true`). Either way the listed entries must then be filtered one by one with
    /// [`Authorizer::key_read`], as Consul's `KVS.List`/`KVS.ListKeys` do.
    pub fn kv_list_allowed(&self, prefix: &str) -> bool {
        !self.enable_key_list_policy || self.key_list(prefix)
    }
}

named_checks!(Authorizer, bool, allows);
