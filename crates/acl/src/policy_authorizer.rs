//! The decisions of a token's policies alone (Consul's `policyAuthorizer`).

use crate::access::{AccessLevel, EnforcementDecision, Required};
use crate::check::{named_checks, Check};
use crate::policy::{Policy, Rule, ServiceRule};
use crate::tree::{MatchKind, RuleTree};

/// A set of policies compiled for lookups. Every check answers `Allow`, `Deny`, or `Default`
/// when no rule applies; [`crate::Authorizer`] turns `Default` into the default policy's answer.
///
/// Built from the [merge](Policy::merge) of the policies. Named checks use the lookup described
/// in the `tree` module (exact beats prefix, longest prefix wins, `""` matches everything), then
/// the rule's level decides: `write` grants read, list and write; `list` grants list and read;
/// `read` grants read; `deny` grants nothing (and stops the search: a less specific rule that
/// would allow is never consulted).
#[derive(Debug, Clone, Default)]
pub struct PolicyAuthorizer {
    acl: Option<AccessLevel>,
    keyring: Option<AccessLevel>,
    operator: Option<AccessLevel>,
    mesh: Option<AccessLevel>,
    peering: Option<AccessLevel>,
    agents: RuleTree,
    events: RuleTree,
    intentions: RuleTree,
    keys: RuleTree,
    nodes: RuleTree,
    queries: RuleTree,
    services: RuleTree,
    sessions: RuleTree,
}

impl PolicyAuthorizer {
    /// Merge the policies and compile the result (Consul's `newPolicyAuthorizer`).
    pub fn new<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> PolicyAuthorizer {
        PolicyAuthorizer::from_merged(&Policy::merge(policies))
    }

    fn from_merged(policy: &Policy) -> PolicyAuthorizer {
        let mut authz = PolicyAuthorizer {
            acl: policy.acl,
            keyring: policy.keyring,
            operator: policy.operator,
            mesh: policy.mesh,
            peering: policy.peering,
            ..PolicyAuthorizer::default()
        };
        let plain: [(&mut RuleTree, &[Rule], &[Rule]); 6] = [
            (&mut authz.agents, &policy.agents, &policy.agent_prefixes),
            (&mut authz.events, &policy.events, &policy.event_prefixes),
            (&mut authz.keys, &policy.keys, &policy.key_prefixes),
            (&mut authz.nodes, &policy.nodes, &policy.node_prefixes),
            (&mut authz.queries, &policy.queries, &policy.query_prefixes),
            (
                &mut authz.sessions,
                &policy.sessions,
                &policy.session_prefixes,
            ),
        ];
        for (tree, exact, prefixes) in plain {
            insert_rules(tree, exact, MatchKind::Exact);
            insert_rules(tree, prefixes, MatchKind::Prefix);
        }
        for (rules, kind) in [
            (&policy.services, MatchKind::Exact),
            (&policy.service_prefixes, MatchKind::Prefix),
        ] {
            for rule in rules {
                authz.services.insert(&rule.name, kind, rule.policy);
                authz
                    .intentions
                    .insert(&rule.name, kind, intentions_level(rule));
            }
        }
        authz
    }

    /// The decision of these policies alone.
    pub fn decide(&self, check: Check<'_>) -> EnforcementDecision {
        use Required::{List, Read, Write};
        match check {
            Check::AclRead => single(self.acl, Read),
            Check::AclWrite | Check::Snapshot => single(self.acl, Write),
            Check::AgentRead(node) => named(&self.agents, node, Read),
            Check::AgentWrite(node) => named(&self.agents, node, Write),
            Check::EventRead(name) => named(&self.events, name, Read),
            Check::EventWrite(name) => named(&self.events, name, Write),
            // No rule can decide this; it always comes from the default policy.
            Check::IntentionDefaultAllow => EnforcementDecision::Default,
            Check::IntentionRead("*") => self.intentions.any_allowed(Read),
            Check::IntentionRead(name) => named(&self.intentions, name, Read),
            Check::IntentionWrite("*") => self.intentions.all_allowed(Write),
            Check::IntentionWrite(name) => named(&self.intentions, name, Write),
            Check::KeyRead(key) => named(&self.keys, key, Read),
            Check::KeyList(prefix) => named(&self.keys, prefix, List),
            Check::KeyWrite(key) => named(&self.keys, key, Write),
            Check::KeyWritePrefix(prefix) => self.key_write_prefix_decision(prefix),
            Check::KeyringRead => single(self.keyring, Read),
            Check::KeyringWrite => single(self.keyring, Write),
            // Without a mesh/peering rule, the operator rule decides (Consul 1.12+).
            Check::MeshRead => single(self.mesh.or(self.operator), Read),
            Check::MeshWrite => single(self.mesh.or(self.operator), Write),
            Check::PeeringRead => single(self.peering.or(self.operator), Read),
            Check::PeeringWrite => single(self.peering.or(self.operator), Write),
            Check::NodeRead(name) => named(&self.nodes, name, Read),
            Check::NodeReadAll => self.nodes.all_allowed(Read),
            Check::NodeWrite(name) => named(&self.nodes, name, Write),
            Check::OperatorRead => single(self.operator, Read),
            Check::OperatorWrite => single(self.operator, Write),
            Check::PreparedQueryRead(name) => named(&self.queries, name, Read),
            Check::PreparedQueryWrite(name) => named(&self.queries, name, Write),
            Check::ServiceRead(name) => named(&self.services, name, Read),
            Check::ServiceReadAll => self.services.all_allowed(Read),
            Check::ServiceWrite(name) => named(&self.services, name, Write),
            Check::ServiceWriteAny => self.services.any_allowed(Write),
            Check::SessionRead(node) => named(&self.sessions, node, Read),
            Check::SessionWrite(node) => named(&self.sessions, node, Write),
        }
    }

    /// Deleting every key under `prefix` (Consul's `KeyWritePrefix`, used for recursive KV
    /// deletes). Two steps:
    ///
    /// 1. The longest **prefix** rule covering `prefix` itself (exact rules are not consulted
    ///    here): if it exists and is not `write` → `Deny`.
    /// 2. Every rule, exact or prefix, whose name starts with `prefix` (a key or subtree that
    ///    would be deleted): if any is not `write` → `Deny`.
    ///
    /// Otherwise `Allow` if step 1 found a `write` rule, `Default` if it found none.
    fn key_write_prefix_decision(&self, prefix: &str) -> EnforcementDecision {
        let base = match self.keys.longest_prefix_rule(prefix) {
            Some(AccessLevel::Write) => EnforcementDecision::Allow,
            Some(_) => return EnforcementDecision::Deny,
            None => EnforcementDecision::Default,
        };
        let something_below_not_writable = self.keys.leaves_under(prefix).any(|leaf| {
            [leaf.exact, leaf.prefix]
                .into_iter()
                .flatten()
                .any(|level| level != AccessLevel::Write)
        });
        if something_below_not_writable {
            return EnforcementDecision::Deny;
        }
        base
    }
}

named_checks!(PolicyAuthorizer, EnforcementDecision, decide);

fn insert_rules(tree: &mut RuleTree, rules: &[Rule], kind: MatchKind) {
    for rule in rules {
        tree.insert(&rule.name, kind, rule.policy);
    }
}

/// The intentions level of a service rule: its `intentions`, or, when unset, `read` for a
/// `read`/`write` service rule and `deny` for a `deny` one (Consul's `loadRules`).
fn intentions_level(rule: &ServiceRule) -> AccessLevel {
    rule.intentions.unwrap_or(match rule.policy {
        AccessLevel::Read | AccessLevel::Write => AccessLevel::Read,
        AccessLevel::List | AccessLevel::Deny => AccessLevel::Deny,
    })
}

/// A single-valued resource (`acl`, `operator`, ...): its rule decides, or `Default` if unset.
fn single(rule: Option<AccessLevel>, required: Required) -> EnforcementDecision {
    rule.map_or(EnforcementDecision::Default, |level| level.grants(required))
}

/// A named resource: the rule governing `segment` decides, or `Default` if none matches.
fn named(tree: &RuleTree, segment: &str, required: Required) -> EnforcementDecision {
    single(tree.lookup(segment), required)
}
