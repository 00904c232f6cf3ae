//! The parsed form of a policy's rules, and how several policies merge into one.

use std::collections::BTreeMap;

use crate::access::AccessLevel;

/// One policy's rules (Consul's `PolicyRules`), as parsed by [`Policy::parse`].
///
/// Rule lists are kept sorted by name (then level), so two spellings of the same rules (HCL and
/// JSON, or blocks in another order) compare equal. Several rules for the same name may remain
/// within one policy; they are resolved when policies are merged (see [`Policy::merge`]), which
/// every authorizer does first, as Consul's `newPolicyAuthorizer` does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// `acl = "..."`: the ACL system itself (`read`, `write` or `deny`).
    pub acl: Option<AccessLevel>,
    /// `agent "<node>" { ... }`: agent endpoints of the node with exactly this name.
    pub agents: Vec<Rule>,
    /// `agent_prefix "<prefix>" { ... }`.
    pub agent_prefixes: Vec<Rule>,
    /// `event "<name>" { ... }`: user events.
    pub events: Vec<Rule>,
    pub event_prefixes: Vec<Rule>,
    /// `key "<key>" { ... }`: one KV key (`list` is also allowed here).
    pub keys: Vec<Rule>,
    pub key_prefixes: Vec<Rule>,
    /// `keyring = "..."`: the gossip encryption keyring.
    pub keyring: Option<AccessLevel>,
    /// `mesh = "..."`: mesh config entries; unset falls back to `operator`.
    pub mesh: Option<AccessLevel>,
    /// `node "<name>" { ... }`: catalog nodes.
    pub nodes: Vec<Rule>,
    pub node_prefixes: Vec<Rule>,
    /// `operator = "..."`: cluster-level operator endpoints.
    pub operator: Option<AccessLevel>,
    /// `peering = "..."`: cluster peering; unset falls back to `operator`.
    pub peering: Option<AccessLevel>,
    /// `query "<name>" { ... }`: prepared queries.
    pub queries: Vec<Rule>,
    pub query_prefixes: Vec<Rule>,
    /// `service "<name>" { policy = "..." intentions = "..." }`: catalog services, and intentions
    /// whose destination is the service.
    pub services: Vec<ServiceRule>,
    pub service_prefixes: Vec<ServiceRule>,
    /// `session "<node>" { ... }`: sessions on the node.
    pub sessions: Vec<Rule>,
    pub session_prefixes: Vec<Rule>,
}

/// A rule on a named segment: `<resource> "<name>" { policy = "<level>" }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rule {
    /// The exact name, or the prefix for `*_prefix` rules (`""` matches everything).
    pub name: String,
    pub policy: AccessLevel,
}

/// A `service`/`service_prefix` rule, which also governs intentions on the service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceRule {
    pub name: String,
    pub policy: AccessLevel,
    /// `intentions = "..."`; when unset, intentions get `read` if `policy` is `read` or `write`,
    /// and `deny` otherwise (derived when the authorizer is built, after merging).
    pub intentions: Option<AccessLevel>,
}

impl Rule {
    pub fn new(name: impl Into<String>, policy: AccessLevel) -> Rule {
        Rule {
            name: name.into(),
            policy,
        }
    }
}

impl ServiceRule {
    pub fn new(name: impl Into<String>, policy: AccessLevel) -> ServiceRule {
        ServiceRule {
            name: name.into(),
            policy,
            intentions: None,
        }
    }

    pub fn with_intentions(mut self, intentions: AccessLevel) -> ServiceRule {
        self.intentions = Some(intentions);
        self
    }
}

impl Policy {
    /// Merge policies into one, as Consul's `acl/policy_merger.go` does before building an
    /// authorizer: for each resource, match kind (exact or prefix) and name, the rule with the
    /// highest precedence wins, `deny` > `write` > `list` > `read` (see [`AccessLevel`]); the
    /// same for the single-valued `acl`, `keyring`, `operator`, `mesh` and `peering`, where an
    /// unset value never wins. A service rule's `policy` and `intentions` merge independently,
    /// so `service "web" { policy = "write" }` and `service "web" { policy = "read"
    /// intentions = "deny" }` merge into `policy = "write", intentions = "deny"`.
    ///
    /// Exact and prefix rules never merge with each other: `key "a"` and `key_prefix "a"` are
    /// different rules, and at lookup time the exact one wins for the key `a`.
    pub fn merge<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> Policy {
        let mut merger = Merger::default();
        for policy in policies {
            merger.add(policy);
        }
        merger.finish()
    }

    /// Sort every rule list, so equal rule sets compare equal whatever order they were written in.
    pub(crate) fn sort_rules(&mut self) {
        for list in self.plain_lists_mut() {
            list.sort();
        }
        self.services.sort();
        self.service_prefixes.sort();
    }

    fn plain_lists_mut(&mut self) -> [&mut Vec<Rule>; 12] {
        [
            &mut self.agents,
            &mut self.agent_prefixes,
            &mut self.events,
            &mut self.event_prefixes,
            &mut self.keys,
            &mut self.key_prefixes,
            &mut self.nodes,
            &mut self.node_prefixes,
            &mut self.queries,
            &mut self.query_prefixes,
            &mut self.sessions,
            &mut self.session_prefixes,
        ]
    }

    fn plain_lists(&self) -> [&Vec<Rule>; 12] {
        [
            &self.agents,
            &self.agent_prefixes,
            &self.events,
            &self.event_prefixes,
            &self.keys,
            &self.key_prefixes,
            &self.nodes,
            &self.node_prefixes,
            &self.queries,
            &self.query_prefixes,
            &self.sessions,
            &self.session_prefixes,
        ]
    }

    fn single_values(&self) -> [Option<AccessLevel>; 5] {
        [
            self.acl,
            self.keyring,
            self.mesh,
            self.operator,
            self.peering,
        ]
    }

    fn single_values_mut(&mut self) -> [&mut Option<AccessLevel>; 5] {
        [
            &mut self.acl,
            &mut self.keyring,
            &mut self.mesh,
            &mut self.operator,
            &mut self.peering,
        ]
    }
}

/// The winner of two levels for the same rule: the higher merge precedence.
fn stronger(a: AccessLevel, b: AccessLevel) -> AccessLevel {
    a.max(b)
}

/// `None` (unset) loses to any level.
fn stronger_option(a: Option<AccessLevel>, b: Option<AccessLevel>) -> Option<AccessLevel> {
    a.max(b)
}

/// Accumulates policies one by one; one map per rule list, keyed by name.
#[derive(Default)]
struct Merger {
    singles: [Option<AccessLevel>; 5],
    plain: [BTreeMap<String, AccessLevel>; 12],
    services: BTreeMap<String, (AccessLevel, Option<AccessLevel>)>,
    service_prefixes: BTreeMap<String, (AccessLevel, Option<AccessLevel>)>,
}

impl Merger {
    fn add(&mut self, policy: &Policy) {
        for (merged, value) in self.singles.iter_mut().zip(policy.single_values()) {
            *merged = stronger_option(*merged, value);
        }
        for (merged, rules) in self.plain.iter_mut().zip(policy.plain_lists()) {
            for rule in rules {
                merged
                    .entry(rule.name.clone())
                    .and_modify(|level| *level = stronger(*level, rule.policy))
                    .or_insert(rule.policy);
            }
        }
        merge_service_rules(&mut self.services, &policy.services);
        merge_service_rules(&mut self.service_prefixes, &policy.service_prefixes);
    }

    fn finish(self) -> Policy {
        let mut policy = Policy::default();
        for (slot, value) in policy.single_values_mut().into_iter().zip(self.singles) {
            *slot = value;
        }
        for (list, merged) in policy.plain_lists_mut().into_iter().zip(self.plain) {
            *list = merged
                .into_iter()
                .map(|(name, policy)| Rule { name, policy })
                .collect();
        }
        policy.services = service_rules_from(self.services);
        policy.service_prefixes = service_rules_from(self.service_prefixes);
        policy
    }
}

fn merge_service_rules(
    merged: &mut BTreeMap<String, (AccessLevel, Option<AccessLevel>)>,
    rules: &[ServiceRule],
) {
    for rule in rules {
        merged
            .entry(rule.name.clone())
            .and_modify(|(policy, intentions)| {
                *policy = stronger(*policy, rule.policy);
                *intentions = stronger_option(*intentions, rule.intentions);
            })
            .or_insert((rule.policy, rule.intentions));
    }
}

fn service_rules_from(
    merged: BTreeMap<String, (AccessLevel, Option<AccessLevel>)>,
) -> Vec<ServiceRule> {
    merged
        .into_iter()
        .map(|(name, (policy, intentions))| ServiceRule {
            name,
            policy,
            intentions,
        })
        .collect()
}
