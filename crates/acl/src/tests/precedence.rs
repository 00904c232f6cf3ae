//! Which rule governs a name: exact beats prefix, the longest prefix wins, `""` covers all.

use super::decisions;
use crate::EnforcementDecision::{self, Allow, Default, Deny};
use crate::PolicyAuthorizer;

type NamedCheck = fn(&PolicyAuthorizer, &str) -> EnforcementDecision;

/// Consul's "Prefer Exact Matches" case (`acl/policy_authorizer_test.go`), for keys and nodes.
#[test]
fn exact_rules_beat_prefix_rules() {
    for resource in ["key", "node"] {
        let authz = decisions(&format!(
            r#"
            {resource} "foo" {{ policy = "write" }}
            {resource} "football" {{ policy = "deny" }}
            {resource}_prefix "foot" {{ policy = "read" }}
            {resource}_prefix "fo" {{ policy = "read" }}
            "#
        ));
        let (read, write): (NamedCheck, NamedCheck) = match resource {
            "key" => (PolicyAuthorizer::key_read, PolicyAuthorizer::key_write),
            _ => (PolicyAuthorizer::node_read, PolicyAuthorizer::node_write),
        };
        // (segment, read, write)
        let cases = [
            ("fo", Allow, Deny),
            ("for", Allow, Deny),
            ("foo", Allow, Allow),
            ("foot", Allow, Deny),
            ("foot2", Allow, Deny),
            ("food", Allow, Deny),
            ("football", Deny, Deny),
            ("f", Default, Default),
            ("bar", Default, Default),
        ];
        for (segment, can_read, can_write) in cases {
            assert_eq!(read(&authz, segment), can_read, "{resource} read {segment}");
            assert_eq!(
                write(&authz, segment),
                can_write,
                "{resource} write {segment}"
            );
        }
    }
}

#[test]
fn an_exact_rule_wins_even_when_less_permissive_or_more() {
    let authz = decisions(r#"key_prefix "a" { policy = "write" } key "a" { policy = "deny" }"#);
    assert_eq!(authz.key_read("a"), Deny);
    assert_eq!(authz.key_write("ab"), Allow);
    let authz = decisions(r#"key_prefix "a" { policy = "deny" } key "a" { policy = "write" }"#);
    assert_eq!(authz.key_write("a"), Allow);
    assert_eq!(authz.key_read("ab"), Deny);
}

#[test]
fn the_longest_prefix_wins_whatever_its_level() {
    let authz = decisions(
        r#"
        key_prefix "" { policy = "read" }
        key_prefix "app/" { policy = "write" }
        key_prefix "app/private/" { policy = "deny" }
        key_prefix "app/private/open/" { policy = "read" }
        "#,
    );
    let cases = [
        ("other", Allow, Deny),
        ("app", Allow, Deny),
        ("app/", Allow, Allow),
        ("app/x", Allow, Allow),
        ("app/private", Allow, Allow),
        ("app/private/", Deny, Deny),
        ("app/private/x", Deny, Deny),
        ("app/private/open/x", Allow, Deny),
    ];
    for (key, can_read, can_write) in cases {
        assert_eq!(authz.key_read(key), can_read, "read {key}");
        assert_eq!(authz.key_write(key), can_write, "write {key}");
    }
}

#[test]
fn a_matching_deny_is_final_even_under_a_broader_allow() {
    let authz = decisions(
        r#"service_prefix "" { policy = "write" } service_prefix "db" { policy = "deny" }"#,
    );
    assert_eq!(authz.service_read("db-primary"), Deny);
    assert_eq!(authz.service_read("web"), Allow);
}

#[test]
fn the_empty_prefix_matches_everything_including_the_empty_name() {
    let authz = decisions(r#"node_prefix "" { policy = "read" }"#);
    for name in ["", "a", "node-1", "é"] {
        assert_eq!(authz.node_read(name), Allow, "{name:?}");
        assert_eq!(authz.node_write(name), Deny, "{name:?}");
    }
    // An exact rule on "" only matches the empty name.
    let authz = decisions(r#"node "" { policy = "write" }"#);
    assert_eq!(authz.node_write(""), Allow);
    assert_eq!(authz.node_write("a"), Default);
}

#[test]
fn prefixes_are_matched_on_whole_characters() {
    let authz =
        decisions(r#"key_prefix "é" { policy = "write" } key_prefix "" { policy = "deny" }"#);
    assert_eq!(authz.key_write("été"), Allow);
    assert_eq!(authz.key_write("e"), Deny);
}
