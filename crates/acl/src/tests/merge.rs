//! Merging several policies (Consul's `policy_merger.go`).

use super::policy;
use crate::AccessLevel::{Deny, Read, Write};
use crate::EnforcementDecision::{Allow, Default};
use crate::{Authorizer, DefaultPolicy, Policy, PolicyAuthorizer, Rule, ServiceRule};

/// Consul's `TestMergePolicies` "Agents" case, which the other segmented resources share.
#[test]
fn the_strongest_rule_per_name_wins() {
    for resource in ["agent", "event", "node", "key", "query", "session"] {
        let first = policy(&format!(
            r#"
            {resource} "foo" {{ policy = "write" }}
            {resource} "bar" {{ policy = "read" }}
            {resource} "baz" {{ policy = "write" }}
            {resource}_prefix "000" {{ policy = "write" }}
            {resource}_prefix "111" {{ policy = "read" }}
            {resource}_prefix "222" {{ policy = "write" }}
            "#
        ));
        let second = policy(&format!(
            r#"
            {resource} "foo" {{ policy = "read" }}
            {resource} "baz" {{ policy = "deny" }}
            {resource}_prefix "000" {{ policy = "read" }}
            {resource}_prefix "222" {{ policy = "deny" }}
            "#
        ));
        let expected = policy(&format!(
            r#"
            {resource} "foo" {{ policy = "write" }}
            {resource} "bar" {{ policy = "read" }}
            {resource} "baz" {{ policy = "deny" }}
            {resource}_prefix "000" {{ policy = "write" }}
            {resource}_prefix "111" {{ policy = "read" }}
            {resource}_prefix "222" {{ policy = "deny" }}
            "#
        ));
        assert_eq!(Policy::merge([&first, &second]), expected, "{resource}");
        assert_eq!(
            Policy::merge([&second, &first]),
            expected,
            "{resource}: order"
        );
    }
}

#[test]
fn list_sits_between_write_and_read() {
    let merged = Policy::merge([
        &policy(r#"key "a" { policy = "list" } key "b" { policy = "list" }"#),
        &policy(r#"key "a" { policy = "read" } key "b" { policy = "write" }"#),
    ]);
    assert_eq!(
        merged.keys,
        vec![
            Rule::new("a", crate::AccessLevel::List),
            Rule::new("b", Write)
        ]
    );
}

#[test]
fn single_values_merge_and_unset_never_wins() {
    let merged = Policy::merge([
        &policy(r#"acl = "read" keyring = "write" operator = "write""#),
        &policy(r#"acl = "write" keyring = "deny" mesh = "read""#),
        &policy(""),
    ]);
    assert_eq!(
        (
            merged.acl,
            merged.keyring,
            merged.operator,
            merged.mesh,
            merged.peering
        ),
        (Some(Write), Some(Deny), Some(Write), Some(Read), None)
    );
}

#[test]
fn service_policy_and_intentions_merge_separately() {
    let merged = Policy::merge([
        &policy(r#"service "web" { policy = "write" }"#),
        &policy(r#"service "web" { policy = "read" intentions = "deny" }"#),
        &policy(r#"service_prefix "" { policy = "deny" }"#),
        &policy(r#"service_prefix "" { policy = "read" intentions = "read" }"#),
    ]);
    assert_eq!(
        merged.services,
        vec![ServiceRule::new("web", Write).with_intentions(Deny)]
    );
    assert_eq!(
        merged.service_prefixes,
        vec![ServiceRule::new("", Deny).with_intentions(Read)]
    );
    // The intentions level is derived after merging: the deny service_prefix keeps the
    // explicit read intentions of the other policy.
    let authz = PolicyAuthorizer::new([&merged]);
    assert_eq!(authz.service_read("api"), crate::EnforcementDecision::Deny);
    assert_eq!(authz.intention_read("api"), Allow);
    assert_eq!(authz.service_write("web"), Allow);
    assert_eq!(
        authz.intention_read("web"),
        crate::EnforcementDecision::Deny
    );
}

#[test]
fn exact_and_prefix_rules_do_not_merge_with_each_other() {
    let merged = Policy::merge([
        &policy(r#"node "n" { policy = "deny" }"#),
        &policy(r#"node_prefix "n" { policy = "write" }"#),
    ]);
    assert_eq!(merged.nodes, vec![Rule::new("n", Deny)]);
    assert_eq!(merged.node_prefixes, vec![Rule::new("n", Write)]);
}

#[test]
fn the_authorizer_merges_its_policies() {
    let read_all = policy(r#"key_prefix "" { policy = "read" }"#);
    let write_app = policy(r#"key_prefix "app/" { policy = "write" }"#);
    let deny_app = policy(r#"key_prefix "app/" { policy = "deny" }"#);

    let authz = Authorizer::new([&read_all, &write_app], DefaultPolicy::Deny);
    assert!(authz.key_write("app/x"));
    assert!(authz.key_read("other"));
    assert!(!authz.key_write("other"));

    // Deny at equal specificity wins, whatever the order of the policies.
    for policies in [[&write_app, &deny_app], [&deny_app, &write_app]] {
        let authz = Authorizer::new(policies, DefaultPolicy::Allow);
        assert!(!authz.key_read("app/x"));
        assert!(authz.key_write("other"), "default allow for the rest");
    }

    // A rule of one policy shadows a less specific rule of another.
    let authz = Authorizer::new([&read_all, &deny_app], DefaultPolicy::Allow);
    assert!(!authz.key_read("app/x"));
    assert!(authz.key_read("ap"));
}

#[test]
fn merging_one_policy_resolves_its_own_duplicates() {
    let p = policy(r#"session "n" { policy = "read" } session "n" { policy = "write" }"#);
    assert_eq!(PolicyAuthorizer::new([&p]).session_write("n"), Allow);
    assert_eq!(PolicyAuthorizer::new([&p]).session_write("m"), Default);
    assert_eq!(Policy::merge([&p]).sessions, vec![Rule::new("n", Write)]);
}
