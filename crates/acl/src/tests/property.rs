//! Property test: random rule sets, split over random policies, against a naive reference.
//!
//! The reference knows nothing of trees or merging code: for each question it scans every raw
//! rule of every policy and applies the documented precedence directly (exact before prefix,
//! longest prefix, then deny > write > list > read among rules on the same name). The rule sets
//! are also written out as HCL and as JSON and parsed back, so the parser is covered too.

use crate::AccessLevel::{self, Deny, List, Read, Write};
use crate::EnforcementDecision::{self, Allow, Default};
use crate::{Authorizer, Check, DefaultPolicy, Policy, PolicyAuthorizer, Rule, ServiceRule};

/// SplitMix64: a tiny deterministic generator, enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Rule names: nested prefixes, a slash, and a multi-byte character.
const NAMES: &[&str] = &["", "a", "ab", "abc", "b", "b/", "b/c", "ba", "é", "éa"];
/// Lookups: the names themselves plus names only prefixes can reach.
const EXTRA_SEGMENTS: &[&str] = &["abcd", "b/cd", "c", "a/", "x", "éab", "e"];

/// Which resource a random rule is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    Key,
    Node,
    Service,
}

/// One raw rule as written in some policy.
#[derive(Debug, Clone)]
struct RawRule {
    resource: Resource,
    prefix: bool,
    name: &'static str,
    level: AccessLevel,
    /// Only for services.
    intentions: Option<AccessLevel>,
}

fn random_rule(rng: &mut Rng) -> RawRule {
    let resource = *rng.pick(&[Resource::Key, Resource::Node, Resource::Service]);
    let levels: &[AccessLevel] = match resource {
        Resource::Key => &[Read, List, Write, Deny],
        _ => &[Read, Write, Deny],
    };
    let intentions =
        (resource == Resource::Service && rng.chance(3)).then(|| *rng.pick(&[Read, Write, Deny]));
    let name = *rng.pick(NAMES);
    RawRule {
        resource,
        prefix: rng.chance(2),
        name,
        level: *rng.pick(levels),
        intentions,
    }
}

/// A random rule set split over 1 to 3 policies.
fn random_policies(rng: &mut Rng) -> Vec<Vec<RawRule>> {
    let count = 1 + rng.below(3);
    let mut policies = vec![Vec::new(); count];
    for _ in 0..rng.below(12) {
        let which = rng.below(count);
        policies[which].push(random_rule(rng));
    }
    policies
}

// ---------------------------------------------------------------------------------------------
// Building the policies three ways: directly, from HCL, from JSON.

fn build_policy(rules: &[RawRule]) -> Policy {
    let mut policy = Policy::default();
    for rule in rules {
        let plain = Rule::new(rule.name, rule.level);
        match (rule.resource, rule.prefix) {
            (Resource::Key, false) => policy.keys.push(plain),
            (Resource::Key, true) => policy.key_prefixes.push(plain),
            (Resource::Node, false) => policy.nodes.push(plain),
            (Resource::Node, true) => policy.node_prefixes.push(plain),
            (Resource::Service, prefix) => {
                let service = ServiceRule {
                    name: rule.name.to_string(),
                    policy: rule.level,
                    intentions: rule.intentions,
                };
                if prefix {
                    policy.service_prefixes.push(service)
                } else {
                    policy.services.push(service)
                }
            }
        }
    }
    policy.sort_rules();
    policy
}

fn keyword(rule: &RawRule) -> String {
    let base = match rule.resource {
        Resource::Key => "key",
        Resource::Node => "node",
        Resource::Service => "service",
    };
    if rule.prefix {
        format!("{base}_prefix")
    } else {
        base.to_string()
    }
}

/// Levels are case-insensitive; write some in upper case to cover that.
fn spelled(level: AccessLevel, rng: &mut Rng) -> String {
    if rng.chance(4) {
        level.as_str().to_uppercase()
    } else {
        level.as_str().to_string()
    }
}

fn to_hcl(rules: &[RawRule], rng: &mut Rng) -> String {
    let mut out = String::new();
    for rule in rules {
        let mut body = format!("policy = \"{}\"", spelled(rule.level, rng));
        if let Some(intentions) = rule.intentions {
            body.push_str(&format!(" intentions = \"{}\"", spelled(intentions, rng)));
        }
        out.push_str(&format!(
            "{} \"{}\" {{ {body} }}\n",
            keyword(rule),
            rule.name
        ));
    }
    out
}

/// JSON in HCL1's list form, which keeps repeated names: `{"key": [{"a": {...}}, ...]}`.
fn to_json(rules: &[RawRule], rng: &mut Rng) -> String {
    let mut by_keyword = serde_json::Map::new();
    for rule in rules {
        let mut body = serde_json::Map::new();
        body.insert("policy".into(), spelled(rule.level, rng).into());
        if let Some(intentions) = rule.intentions {
            body.insert("intentions".into(), spelled(intentions, rng).into());
        }
        let block = serde_json::json!({ rule.name: body });
        by_keyword
            .entry(keyword(rule))
            .or_insert_with(|| serde_json::Value::Array(Vec::new()))
            .as_array_mut()
            .expect("built as an array")
            .push(block);
    }
    serde_json::Value::Object(by_keyword).to_string()
}

// ---------------------------------------------------------------------------------------------
// The naive reference.

/// Merge precedence, written out independently of `AccessLevel`'s ordering.
fn rank(level: AccessLevel) -> u8 {
    match level {
        Deny => 4,
        Write => 3,
        List => 2,
        Read => 1,
    }
}

fn strongest(levels: impl Iterator<Item = AccessLevel>) -> Option<AccessLevel> {
    levels.max_by_key(|level| rank(*level))
}

/// What a level grants, as a table.
fn reference_grants(level: AccessLevel, need: &str) -> bool {
    matches!(
        (level, need),
        (Write, _) | (List, "read") | (List, "list") | (Read, "read")
    )
}

fn reference_decision(level: Option<AccessLevel>, need: &str) -> EnforcementDecision {
    match level {
        None => Default,
        Some(level) => EnforcementDecision::from_bool(reference_grants(level, need)),
    }
}

/// A rule flattened for the reference: resource, kind, name, and its effective level for the
/// question asked (service policy, or derived intentions level).
#[derive(Debug, Clone)]
struct Flat {
    prefix: bool,
    name: &'static str,
    level: AccessLevel,
}

/// The rules of one resource from every policy. For intentions, each (kind, name) group is
/// merged first (service policy and intentions separately), then the intentions level derived,
/// because that is the documented order: derivation happens after merging.
fn flat_rules(policies: &[Vec<RawRule>], resource: Resource, intentions: bool) -> Vec<Flat> {
    let all: Vec<&RawRule> = policies
        .iter()
        .flatten()
        .filter(|r| r.resource == resource)
        .collect();
    if !intentions {
        return all
            .iter()
            .map(|r| Flat {
                prefix: r.prefix,
                name: r.name,
                level: r.level,
            })
            .collect();
    }
    let mut out = Vec::new();
    for prefix in [false, true] {
        for name in NAMES {
            let group: Vec<&&RawRule> = all
                .iter()
                .filter(|r| r.prefix == prefix && r.name == *name)
                .collect();
            let Some(policy) = strongest(group.iter().map(|r| r.level)) else {
                continue;
            };
            let explicit = strongest(group.iter().filter_map(|r| r.intentions));
            let level = explicit.unwrap_or(if matches!(policy, Read | Write) {
                Read
            } else {
                Deny
            });
            out.push(Flat {
                prefix,
                name,
                level,
            });
        }
    }
    out
}

/// The governing level for `segment`: exact rules on it, else the longest covering prefix.
fn reference_lookup(rules: &[Flat], segment: &str) -> Option<AccessLevel> {
    let exact = strongest(
        rules
            .iter()
            .filter(|r| !r.prefix && r.name == segment)
            .map(|r| r.level),
    );
    if exact.is_some() {
        return exact;
    }
    longest_covering_prefix(rules, segment)
}

fn longest_covering_prefix(rules: &[Flat], segment: &str) -> Option<AccessLevel> {
    let covering = || {
        rules
            .iter()
            .filter(move |r| r.prefix && segment.starts_with(r.name))
    };
    let longest = covering().map(|r| r.name.len()).max()?;
    strongest(
        covering()
            .filter(|r| r.name.len() == longest)
            .map(|r| r.level),
    )
}

/// One level per (kind, name): what the merged policy holds.
fn merged(rules: &[Flat]) -> Vec<Flat> {
    let mut out: Vec<Flat> = Vec::new();
    for rule in rules {
        match out
            .iter_mut()
            .find(|m| m.prefix == rule.prefix && m.name == rule.name)
        {
            Some(existing) => {
                if rank(rule.level) > rank(existing.level) {
                    existing.level = rule.level;
                }
            }
            None => out.push(rule.clone()),
        }
    }
    out
}

fn catch_all(rules: &[Flat]) -> Option<AccessLevel> {
    rules
        .iter()
        .find(|r| r.prefix && r.name.is_empty())
        .map(|r| r.level)
}

fn reference_all_allowed(rules: &[Flat], need: &str) -> EnforcementDecision {
    let rules = merged(rules);
    if rules.iter().any(|r| !reference_grants(r.level, need)) {
        return EnforcementDecision::Deny;
    }
    reference_decision(catch_all(&rules), need)
}

fn reference_any_allowed(rules: &[Flat], need: &str) -> EnforcementDecision {
    let rules = merged(rules);
    if rules.iter().any(|r| reference_grants(r.level, need)) {
        return Allow;
    }
    reference_decision(catch_all(&rules), need)
}

fn reference_key_write_prefix(rules: &[Flat], prefix: &str) -> EnforcementDecision {
    let rules = merged(rules);
    let base = longest_covering_prefix(&rules, prefix);
    if base.is_some_and(|level| level != Write) {
        return EnforcementDecision::Deny;
    }
    if rules
        .iter()
        .any(|r| r.name.starts_with(prefix) && r.level != Write)
    {
        return EnforcementDecision::Deny;
    }
    if base.is_some() {
        Allow
    } else {
        Default
    }
}

/// The reference answer for each check the property test asks.
fn reference(policies: &[Vec<RawRule>], check: Check<'_>) -> EnforcementDecision {
    let keys = || flat_rules(policies, Resource::Key, false);
    let nodes = || flat_rules(policies, Resource::Node, false);
    let services = || flat_rules(policies, Resource::Service, false);
    let intentions = || flat_rules(policies, Resource::Service, true);
    match check {
        Check::KeyRead(k) => reference_decision(reference_lookup(&keys(), k), "read"),
        Check::KeyList(k) => reference_decision(reference_lookup(&keys(), k), "list"),
        Check::KeyWrite(k) => reference_decision(reference_lookup(&keys(), k), "write"),
        Check::KeyWritePrefix(k) => reference_key_write_prefix(&keys(), k),
        Check::NodeRead(n) => reference_decision(reference_lookup(&nodes(), n), "read"),
        Check::NodeWrite(n) => reference_decision(reference_lookup(&nodes(), n), "write"),
        Check::NodeReadAll => reference_all_allowed(&nodes(), "read"),
        Check::ServiceRead(s) => reference_decision(reference_lookup(&services(), s), "read"),
        Check::ServiceWrite(s) => reference_decision(reference_lookup(&services(), s), "write"),
        Check::ServiceReadAll => reference_all_allowed(&services(), "read"),
        Check::ServiceWriteAny => reference_any_allowed(&services(), "write"),
        Check::IntentionRead("*") => reference_any_allowed(&intentions(), "read"),
        Check::IntentionWrite("*") => reference_all_allowed(&intentions(), "write"),
        Check::IntentionRead(s) => reference_decision(reference_lookup(&intentions(), s), "read"),
        Check::IntentionWrite(s) => reference_decision(reference_lookup(&intentions(), s), "write"),
        other => panic!("the property test does not ask {other:?}"),
    }
}

fn checks_for(segment: &str) -> Vec<Check<'_>> {
    vec![
        Check::KeyRead(segment),
        Check::KeyList(segment),
        Check::KeyWrite(segment),
        Check::KeyWritePrefix(segment),
        Check::NodeRead(segment),
        Check::NodeWrite(segment),
        Check::ServiceRead(segment),
        Check::ServiceWrite(segment),
        Check::IntentionRead(segment),
        Check::IntentionWrite(segment),
    ]
}

const GLOBAL_CHECKS: [Check<'static>; 5] = [
    Check::NodeReadAll,
    Check::ServiceReadAll,
    Check::ServiceWriteAny,
    Check::IntentionRead("*"),
    Check::IntentionWrite("*"),
];

const CASES: usize = 4000;

#[test]
fn authorizer_matches_the_naive_reference() {
    let mut rng = Rng(0x00C0_FFEE_D00D_F00D);
    let segments: Vec<&str> = NAMES.iter().chain(EXTRA_SEGMENTS).copied().collect();
    let mut checked = 0usize;
    for case in 0..CASES {
        let raw = random_policies(&mut rng);
        let policies: Vec<Policy> = raw.iter().map(|rules| build_policy(rules)).collect();
        let authz = PolicyAuthorizer::new(&policies);
        let default = *rng.pick(&[DefaultPolicy::Allow, DefaultPolicy::Deny]);
        let full = Authorizer::new(&policies, default);

        let mut all_checks: Vec<Check<'_>> = GLOBAL_CHECKS.to_vec();
        for segment in &segments {
            all_checks.extend(checks_for(segment));
        }
        for check in all_checks {
            let expected = reference(&raw, check);
            let actual = authz.decide(check);
            assert_eq!(
                actual, expected,
                "case {case}: {check:?}\npolicies: {raw:#?}"
            );
            // The full authorizer applies the default only where the policies did not decide.
            let expected_bool = match expected {
                Allow => true,
                EnforcementDecision::Deny => false,
                Default => default == DefaultPolicy::Allow,
            };
            assert_eq!(
                full.allows(check),
                expected_bool,
                "case {case}: {check:?} with {default:?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 100_000, "only {checked} checks");
}

#[test]
fn hcl_and_json_renderings_parse_back_to_the_same_policy() {
    let mut rng = Rng(42);
    for case in 0..CASES {
        let rules: Vec<RawRule> = (0..rng.below(10)).map(|_| random_rule(&mut rng)).collect();
        let direct = build_policy(&rules);
        let hcl = to_hcl(&rules, &mut rng);
        let json = to_json(&rules, &mut rng);
        let from_hcl = Policy::parse(&hcl).unwrap_or_else(|e| panic!("case {case}: {e}\n{hcl}"));
        let from_json = Policy::parse(&json).unwrap_or_else(|e| panic!("case {case}: {e}\n{json}"));
        assert_eq!(from_hcl, direct, "case {case}: HCL\n{hcl}");
        assert_eq!(from_json, direct, "case {case}: JSON\n{json}");
    }
}

#[test]
fn merging_is_order_independent() {
    let mut rng = Rng(7);
    for case in 0..CASES / 4 {
        let raw = random_policies(&mut rng);
        let mut policies: Vec<Policy> = raw.iter().map(|rules| build_policy(rules)).collect();
        let forward = Policy::merge(&policies);
        policies.reverse();
        assert_eq!(Policy::merge(&policies), forward, "case {case}");
        // Merging is idempotent.
        assert_eq!(Policy::merge([&forward]), forward, "case {case}");
    }
}
