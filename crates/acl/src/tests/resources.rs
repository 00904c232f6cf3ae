//! Every resource at every level: which checks each rule allows.

use super::decisions;
use crate::EnforcementDecision::{self, Allow, Default, Deny};
use crate::PolicyAuthorizer;

type NamedCheck = fn(&PolicyAuthorizer, &str) -> EnforcementDecision;
type SingleCheck = fn(&PolicyAuthorizer) -> EnforcementDecision;

/// The read and write checks of each named resource.
fn named_resources() -> Vec<(&'static str, NamedCheck, NamedCheck)> {
    vec![
        (
            "agent",
            PolicyAuthorizer::agent_read,
            PolicyAuthorizer::agent_write,
        ),
        (
            "event",
            PolicyAuthorizer::event_read,
            PolicyAuthorizer::event_write,
        ),
        (
            "key",
            PolicyAuthorizer::key_read,
            PolicyAuthorizer::key_write,
        ),
        (
            "node",
            PolicyAuthorizer::node_read,
            PolicyAuthorizer::node_write,
        ),
        (
            "query",
            PolicyAuthorizer::prepared_query_read,
            PolicyAuthorizer::prepared_query_write,
        ),
        (
            "service",
            PolicyAuthorizer::service_read,
            PolicyAuthorizer::service_write,
        ),
        (
            "session",
            PolicyAuthorizer::session_read,
            PolicyAuthorizer::session_write,
        ),
    ]
}

/// (level, read, write) as Consul's `enforce` answers.
const LEVELS: [(&str, EnforcementDecision, EnforcementDecision); 3] = [
    ("read", Allow, Deny),
    ("write", Allow, Allow),
    ("deny", Deny, Deny),
];

#[test]
fn named_resources_exact_rules() {
    for (resource, read, write) in named_resources() {
        for (level, can_read, can_write) in LEVELS {
            let authz = decisions(&format!(r#"{resource} "foo" {{ policy = "{level}" }}"#));
            let ctx = format!("{resource} \"foo\" = {level}");
            assert_eq!(read(&authz, "foo"), can_read, "{ctx}: read foo");
            assert_eq!(write(&authz, "foo"), can_write, "{ctx}: write foo");
            // Exact rules cover only their name.
            for other in ["fo", "foo2", "food", ""] {
                assert_eq!(read(&authz, other), Default, "{ctx}: read {other}");
                assert_eq!(write(&authz, other), Default, "{ctx}: write {other}");
            }
        }
    }
}

#[test]
fn named_resources_prefix_rules() {
    for (resource, read, write) in named_resources() {
        for (level, can_read, can_write) in LEVELS {
            let authz = decisions(&format!(
                r#"{resource}_prefix "foo" {{ policy = "{level}" }}"#
            ));
            let ctx = format!("{resource}_prefix \"foo\" = {level}");
            for covered in ["foo", "foo2", "food", "foo/bar"] {
                assert_eq!(read(&authz, covered), can_read, "{ctx}: read {covered}");
                assert_eq!(write(&authz, covered), can_write, "{ctx}: write {covered}");
            }
            for other in ["fo", "", "bar", "xfoo"] {
                assert_eq!(read(&authz, other), Default, "{ctx}: read {other}");
                assert_eq!(write(&authz, other), Default, "{ctx}: write {other}");
            }
        }
    }
}

#[test]
fn single_valued_resources() {
    let singles: [(&str, SingleCheck, SingleCheck); 5] = [
        (
            "acl",
            PolicyAuthorizer::acl_read,
            PolicyAuthorizer::acl_write,
        ),
        (
            "keyring",
            PolicyAuthorizer::keyring_read,
            PolicyAuthorizer::keyring_write,
        ),
        (
            "operator",
            PolicyAuthorizer::operator_read,
            PolicyAuthorizer::operator_write,
        ),
        (
            "mesh",
            PolicyAuthorizer::mesh_read,
            PolicyAuthorizer::mesh_write,
        ),
        (
            "peering",
            PolicyAuthorizer::peering_read,
            PolicyAuthorizer::peering_write,
        ),
    ];
    for (resource, read, write) in singles {
        let none = decisions("");
        assert_eq!(
            (read(&none), write(&none)),
            (Default, Default),
            "{resource} unset"
        );
        for (level, can_read, can_write) in LEVELS {
            let authz = decisions(&format!(r#"{resource} = "{level}""#));
            assert_eq!(read(&authz), can_read, "{resource} = {level}: read");
            assert_eq!(write(&authz), can_write, "{resource} = {level}: write");
        }
    }
}

#[test]
fn snapshot_needs_acl_write() {
    assert_eq!(decisions(r#"acl = "write""#).snapshot(), Allow);
    assert_eq!(decisions(r#"acl = "read""#).snapshot(), Deny);
    assert_eq!(decisions(r#"acl = "deny""#).snapshot(), Deny);
    assert_eq!(decisions(r#"operator = "write""#).snapshot(), Default);
}

#[test]
fn mesh_and_peering_fall_back_to_operator() {
    let authz = decisions(r#"operator = "read""#);
    assert_eq!((authz.mesh_read(), authz.mesh_write()), (Allow, Deny));
    assert_eq!((authz.peering_read(), authz.peering_write()), (Allow, Deny));

    let authz = decisions(r#"operator = "write""#);
    assert_eq!((authz.mesh_read(), authz.mesh_write()), (Allow, Allow));
    assert_eq!(
        (authz.peering_read(), authz.peering_write()),
        (Allow, Allow)
    );

    // An explicit mesh/peering rule wins over operator, in both directions.
    let authz = decisions(r#"operator = "write" mesh = "deny" peering = "read""#);
    assert_eq!((authz.mesh_read(), authz.mesh_write()), (Deny, Deny));
    assert_eq!((authz.peering_read(), authz.peering_write()), (Allow, Deny));
    let authz = decisions(r#"operator = "deny" mesh = "write""#);
    assert_eq!((authz.mesh_read(), authz.mesh_write()), (Allow, Allow));
    assert_eq!((authz.peering_read(), authz.peering_write()), (Deny, Deny));
}

#[test]
fn key_levels_including_list() {
    // (level, read, list, write)
    let cases = [
        ("read", Allow, Deny, Deny),
        ("list", Allow, Allow, Deny),
        ("write", Allow, Allow, Allow),
        ("deny", Deny, Deny, Deny),
    ];
    for (level, read, list, write) in cases {
        for rules in [
            format!(r#"key "k" {{ policy = "{level}" }}"#),
            format!(r#"key_prefix "k" {{ policy = "{level}" }}"#),
        ] {
            let authz = decisions(&rules);
            assert_eq!(authz.key_read("k"), read, "{rules}: read");
            assert_eq!(authz.key_list("k"), list, "{rules}: list");
            assert_eq!(authz.key_write("k"), write, "{rules}: write");
        }
    }
}

#[test]
fn intentions_follow_the_service_rule_unless_set() {
    // (service level, intentions, intention read, intention write)
    let cases = [
        ("read", None, Allow, Deny),
        ("write", None, Allow, Deny),
        ("deny", None, Deny, Deny),
        ("read", Some("write"), Allow, Allow),
        ("deny", Some("read"), Allow, Deny),
        ("write", Some("deny"), Deny, Deny),
    ];
    for (level, intentions, can_read, can_write) in cases {
        let extra = intentions.map_or(String::new(), |i| format!(r#" intentions = "{i}""#));
        for kind in ["service", "service_prefix"] {
            let rules = format!(r#"{kind} "web" {{ policy = "{level}"{extra} }}"#);
            let authz = decisions(&rules);
            assert_eq!(authz.intention_read("web"), can_read, "{rules}: read");
            assert_eq!(authz.intention_write("web"), can_write, "{rules}: write");
            assert_eq!(authz.intention_read("api"), Default, "{rules}: other");
        }
    }
    assert_eq!(decisions("").intention_default_allow(), Default);
    assert_eq!(
        decisions(r#"service_prefix "" { policy = "write" }"#).intention_default_allow(),
        Default
    );
}

#[test]
fn wildcard_intention_checks_scan_every_rule() {
    // `*` read: allowed when some rule grants intention read.
    let authz = decisions(r#"service "web" { policy = "read" }"#);
    assert_eq!(authz.intention_read("*"), Allow);
    let authz = decisions(r#"service "web" { policy = "deny" }"#);
    assert_eq!(authz.intention_read("*"), Default);
    let authz = decisions(r#"service_prefix "" { policy = "deny" }"#);
    assert_eq!(authz.intention_read("*"), Deny);

    // `*` write: allowed only when the catch-all grants it and no rule refuses it.
    let authz = decisions(r#"service_prefix "" { policy = "write" intentions = "write" }"#);
    assert_eq!(authz.intention_write("*"), Allow);
    let authz = decisions(
        r#"service_prefix "" { policy = "write" intentions = "write" }
           service "db" { policy = "write" }"#,
    );
    assert_eq!(authz.intention_write("*"), Deny);
    let authz = decisions(r#"service "web" { policy = "write" intentions = "write" }"#);
    assert_eq!(authz.intention_write("*"), Default);
}

#[test]
fn read_all_and_write_any() {
    assert_eq!(decisions("").service_read_all(), Default);
    assert_eq!(
        decisions(r#"service_prefix "" { policy = "read" }"#).service_read_all(),
        Allow
    );
    assert_eq!(
        decisions(r#"service_prefix "" { policy = "read" } service "secret" { policy = "deny" }"#)
            .service_read_all(),
        Deny
    );
    // Without a catch-all, the names no rule covers are up to the default policy.
    assert_eq!(
        decisions(r#"service_prefix "a" { policy = "read" }"#).service_read_all(),
        Default
    );
    assert_eq!(
        decisions(r#"service_prefix "" { policy = "deny" }"#).service_read_all(),
        Deny
    );

    assert_eq!(
        decisions(r#"node_prefix "" { policy = "write" }"#).node_read_all(),
        Allow
    );
    assert_eq!(
        decisions(r#"node_prefix "" { policy = "read" } node_prefix "x" { policy = "deny" }"#)
            .node_read_all(),
        Deny
    );

    assert_eq!(decisions("").service_write_any(), Default);
    assert_eq!(
        decisions(r#"service "a" { policy = "read" }"#).service_write_any(),
        Default
    );
    assert_eq!(
        decisions(r#"service "a" { policy = "write" }"#).service_write_any(),
        Allow
    );
    assert_eq!(
        decisions(r#"service_prefix "" { policy = "deny" } service "a" { policy = "write" }"#)
            .service_write_any(),
        Allow
    );
    assert_eq!(
        decisions(r#"service_prefix "" { policy = "read" }"#).service_write_any(),
        Deny
    );
}

#[test]
fn key_write_prefix_needs_write_on_the_whole_tree() {
    // No rule at all: the default policy decides.
    assert_eq!(decisions("").key_write_prefix("a/"), Default);
    // A covering write rule and nothing below: allowed.
    let authz = decisions(r#"key_prefix "a/" { policy = "write" }"#);
    assert_eq!(authz.key_write_prefix("a/"), Allow);
    assert_eq!(authz.key_write_prefix("a/b/"), Allow);
    assert_eq!(
        authz.key_write_prefix(""),
        Default,
        "rules only below: none covers \"\""
    );
    // A covering rule that is not write: denied.
    let authz = decisions(r#"key_prefix "" { policy = "list" }"#);
    assert_eq!(authz.key_write_prefix("a/"), Deny);
    // Anything below that is not write denies, exact or prefix, even an exact rule on the
    // prefix itself.
    for below in [
        r#"key "a/b/secret" { policy = "read" }"#,
        r#"key_prefix "a/b/" { policy = "deny" }"#,
        r#"key "a/" { policy = "read" }"#,
    ] {
        let authz = decisions(&format!(r#"key_prefix "" {{ policy = "write" }} {below}"#));
        assert_eq!(authz.key_write_prefix("a/"), Deny, "{below}");
        assert_eq!(authz.key_write_prefix("z/"), Allow, "{below}");
        assert_eq!(authz.key_write_prefix(""), Deny, "{below}");
    }
    // Write rules below and no covering rule: Default (the default policy decides the rest).
    let authz =
        decisions(r#"key_prefix "a/b/" { policy = "write" } key "a/c" { policy = "write" }"#);
    assert_eq!(authz.key_write_prefix("a/"), Default);
    // An exact write rule on the prefix is not a covering rule.
    let authz = decisions(r#"key "a/" { policy = "write" }"#);
    assert_eq!(authz.key_write_prefix("a/"), Default);
}
