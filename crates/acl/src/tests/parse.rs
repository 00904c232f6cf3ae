//! Parsing: HCL and JSON forms, validation errors with Consul's texts, shapes and strictness.

use super::policy;
use crate::AccessLevel::{Deny, List, Read, Write};
use crate::{Policy, Rule, RulesError, ServiceRule};

/// Consul's "Basic" parse case (`acl/policy_test.go`), in HCL.
const BASIC_HCL: &str = r#"
agent_prefix "bar" {
    policy = "write"
}
agent "foo" {
    policy = "read"
}
event_prefix "" {
    policy = "read"
}
event "foo" {
    policy = "write"
}
event "bar" {
    policy = "deny"
}
key_prefix "" {
    policy = "read"
}
key_prefix "foo/" {
    policy = "write"
}
key_prefix "foo/bar/" {
    policy = "read"
}
key "foo/bar/baz" {
    policy = "deny"
}
keyring = "deny"
node_prefix "" {
    policy = "read"
}
node "foo" {
    policy = "write"
}
node "bar" {
    policy = "deny"
}
operator = "deny"
mesh = "deny"
peering = "deny"
service_prefix "" {
    policy = "write"
}
service "foo" {
    policy = "read"
}
session "foo" {
    policy = "write"
}
session "bar" {
    policy = "deny"
}
session_prefix "baz" {
    policy = "deny"
}
query_prefix "" {
    policy = "read"
}
query "foo" {
    policy = "write"
}
query "bar" {
    policy = "deny"
}
"#;

/// The same rules in Consul's JSON form.
const BASIC_JSON: &str = r#"
{
  "agent_prefix": { "bar": { "policy": "write" } },
  "agent": { "foo": { "policy": "read" } },
  "event_prefix": { "": { "policy": "read" } },
  "event": { "foo": { "policy": "write" }, "bar": { "policy": "deny" } },
  "key_prefix": {
    "": { "policy": "read" },
    "foo/": { "policy": "write" },
    "foo/bar/": { "policy": "read" }
  },
  "key": { "foo/bar/baz": { "policy": "deny" } },
  "keyring": "deny",
  "node_prefix": { "": { "policy": "read" } },
  "node": { "foo": { "policy": "write" }, "bar": { "policy": "deny" } },
  "operator": "deny",
  "mesh": "deny",
  "peering": "deny",
  "service_prefix": { "": { "policy": "write" } },
  "service": { "foo": { "policy": "read" } },
  "session_prefix": { "baz": { "policy": "deny" } },
  "session": { "foo": { "policy": "write" }, "bar": { "policy": "deny" } },
  "query_prefix": { "": { "policy": "read" } },
  "query": { "foo": { "policy": "write" }, "bar": { "policy": "deny" } }
}
"#;

fn basic_expected() -> Policy {
    Policy {
        acl: None,
        agents: vec![Rule::new("foo", Read)],
        agent_prefixes: vec![Rule::new("bar", Write)],
        events: vec![Rule::new("bar", Deny), Rule::new("foo", Write)],
        event_prefixes: vec![Rule::new("", Read)],
        keys: vec![Rule::new("foo/bar/baz", Deny)],
        key_prefixes: vec![
            Rule::new("", Read),
            Rule::new("foo/", Write),
            Rule::new("foo/bar/", Read),
        ],
        keyring: Some(Deny),
        mesh: Some(Deny),
        nodes: vec![Rule::new("bar", Deny), Rule::new("foo", Write)],
        node_prefixes: vec![Rule::new("", Read)],
        operator: Some(Deny),
        peering: Some(Deny),
        queries: vec![Rule::new("bar", Deny), Rule::new("foo", Write)],
        query_prefixes: vec![Rule::new("", Read)],
        services: vec![ServiceRule::new("foo", Read)],
        service_prefixes: vec![ServiceRule::new("", Write)],
        sessions: vec![Rule::new("bar", Deny), Rule::new("foo", Write)],
        session_prefixes: vec![Rule::new("baz", Deny)],
    }
}

#[test]
fn hcl_and_json_forms_parse_to_the_same_policy() {
    let from_hcl = policy(BASIC_HCL);
    let from_json = policy(BASIC_JSON);
    assert_eq!(from_hcl, basic_expected());
    assert_eq!(from_json, basic_expected());
}

#[test]
fn service_intentions_are_optional() {
    let p = policy(r#"service "foo" { policy = "write" }"#);
    assert_eq!(p.services, vec![ServiceRule::new("foo", Write)]);
    let p = policy(r#"service "foo" { policy = "write" intentions = "read" }"#);
    assert_eq!(
        p.services,
        vec![ServiceRule::new("foo", Write).with_intentions(Read)]
    );
    let p = policy(r#"{ "service_prefix": { "": { "policy": "read", "intentions": "write" }}}"#);
    assert_eq!(
        p.service_prefixes,
        vec![ServiceRule::new("", Read).with_intentions(Write)]
    );
}

#[test]
fn empty_text_and_empty_single_values_are_an_empty_policy() {
    for rules in [
        "",
        "  \n\t",
        "# only a comment\n",
        "{}",
        r#"keyring = """#,
        r#"operator = """#,
        r#"mesh = """#,
        r#"peering = """#,
        r#"acl = """#,
        r#"{ "keyring": "", "operator": "", "mesh": "", "peering": "", "acl": "" }"#,
    ] {
        assert_eq!(policy(rules), Policy::default(), "{rules:?}");
    }
}

#[test]
fn single_values_parse() {
    let p = policy("acl = \"write\"\nkeyring = \"read\"\noperator = \"deny\"\nmesh = \"write\"\npeering = \"read\"");
    assert_eq!(
        (p.acl, p.keyring, p.operator, p.mesh, p.peering),
        (Some(Write), Some(Read), Some(Deny), Some(Write), Some(Read))
    );
}

#[test]
fn list_is_valid_only_on_key_rules() {
    let p = policy(r#"key "a" { policy = "list" } key_prefix "b/" { policy = "list" }"#);
    assert_eq!(p.keys, vec![Rule::new("a", List)]);
    assert_eq!(p.key_prefixes, vec![Rule::new("b/", List)]);
    for (rules, message) in [
        (r#"acl = "list""#, "Invalid acl policy"),
        (r#"operator = "list""#, "Invalid operator policy"),
        (
            r#"service "a" { policy = "list" }"#,
            "Invalid service policy",
        ),
        (
            r#"node_prefix "a" { policy = "list" }"#,
            "Invalid node_prefix policy",
        ),
        (
            r#"service "a" { policy = "read" intentions = "list" }"#,
            "Invalid service intentions policy",
        ),
    ] {
        let err = Policy::parse(rules).unwrap_err().to_string();
        assert!(err.starts_with(message), "{rules}: {err}");
    }
}

/// Consul's "Bad Policy" cases: every resource refuses an unknown level, with its own message,
/// in HCL and in JSON.
#[test]
fn bad_levels_are_refused_with_consuls_messages() {
    let segmented = [
        "agent",
        "agent_prefix",
        "key",
        "key_prefix",
        "node",
        "node_prefix",
        "service",
        "service_prefix",
        "session",
        "session_prefix",
        "event",
        "event_prefix",
        "query",
        "query_prefix",
    ];
    for resource in segmented {
        let hcl = format!(r#"{resource} "foo" {{ policy = "nope" }}"#);
        let json = format!(r#"{{ "{resource}": {{ "foo": {{ "policy": "nope" }}}}}}"#);
        for rules in [hcl, json] {
            let err = Policy::parse(&rules).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("Invalid {resource} policy: ")),
                "{rules}: {err}"
            );
        }
    }
    for resource in ["acl", "keyring", "operator", "mesh", "peering"] {
        let hcl = format!(r#"{resource} = "nope""#);
        let json = format!(r#"{{ "{resource}": "nope" }}"#);
        for rules in [hcl, json] {
            let err = Policy::parse(&rules).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("Invalid {resource} policy: \"nope\""),
                "{rules}"
            );
        }
    }
    let err = Policy::parse(r#"service_prefix "foo" { policy = "write" intentions = "foo" }"#)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("Invalid service_prefix intentions policy"),
        "{err}"
    );
}

#[test]
fn error_texts_print_the_rule_as_consul_does() {
    let err = Policy::parse(r#"key "foo" { policy = "nope" }"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Invalid key policy: &acl.KeyRule{Prefix:"foo", Policy:"nope", EnterpriseRule:acl.EnterpriseRule{}}"#
    );
    let err = Policy::parse(r#"service "web" { policy = "write" intentions = "x" }"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Invalid service intentions policy: &acl.ServiceRule{Name:"web", Policy:"write", Intentions:"x", EnterpriseRule:acl.EnterpriseRule{}}"#
    );
    let err = Policy::parse(r#"agent "n1" { }"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Invalid agent policy: &acl.AgentRule{Node:"n1", Policy:""}"#
    );
    let err = Policy::parse(r#"query_prefix "" { policy = "own" }"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Invalid query_prefix policy: &acl.PreparedQueryRule{Prefix:"", Policy:"own"}"#
    );
}

#[test]
fn validation_reports_the_first_error_in_consuls_order() {
    // Consul validates acl, then agent ... query_prefix, then keyring, operator, mesh, peering.
    let err = Policy::parse(
        r#"
        peering = "bad"
        query "q" { policy = "bad" }
        acl = "bad"
        "#,
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("Invalid acl policy"), "{err}");
    let err = Policy::parse(r#"{ "peering": "bad", "query": { "q": { "policy": "bad" } } }"#)
        .unwrap_err();
    assert!(err.to_string().starts_with("Invalid query policy"), "{err}");
}

#[test]
fn a_rule_without_policy_is_invalid() {
    let err = Policy::parse(r#"node "n" { }"#).unwrap_err();
    assert!(
        matches!(err, RulesError::InvalidPolicy { ref what, .. } if what == "node"),
        "{err}"
    );
}

#[test]
fn levels_and_keys_are_case_insensitive() {
    let p = policy(
        r#"
        Key_Prefix "a/" { Policy = "WRITE" }
        SERVICE "web" { policy = "Read" INTENTIONS = "deny" }
        Operator = "READ"
        "#,
    );
    assert_eq!(p.key_prefixes, vec![Rule::new("a/", Write)]);
    assert_eq!(
        p.services,
        vec![ServiceRule::new("web", Read).with_intentions(Deny)]
    );
    assert_eq!(p.operator, Some(Read));
}

#[test]
fn repeated_blocks_are_all_kept_until_merged() {
    let p = policy(
        r#"
        key_prefix "a" { policy = "read" }
        key_prefix "a" { policy = "deny" }
        key_prefix "b" { policy = "write" }
        "#,
    );
    assert_eq!(
        p.key_prefixes,
        vec![
            Rule::new("a", Read),
            Rule::new("a", Deny),
            Rule::new("b", Write)
        ]
    );
}

#[test]
fn json_accepts_hcl1s_list_forms() {
    let expected = policy(
        r#"key "a" { policy = "read" } key "a" { policy = "write" } key "b" { policy = "deny" }"#,
    );
    for json in [
        r#"{ "key": [ { "a": { "policy": "read" } }, { "a": { "policy": "write" } }, { "b": { "policy": "deny" } } ] }"#,
        r#"{ "key": { "a": [ { "policy": "read" }, { "policy": "write" } ], "b": { "policy": "deny" } } }"#,
        r#"{ "key": [ { "a": [ { "policy": "read" }, { "policy": "write" } ], "b": { "policy": "deny" } } ] }"#,
    ] {
        assert_eq!(policy(json), expected, "{json}");
    }
}

#[test]
fn hcl_object_assignment_form_parses() {
    assert_eq!(
        policy(r#"key_prefix = { "a/" = { policy = "read" } }"#),
        policy(r#"key_prefix "a/" { policy = "read" }"#)
    );
}

#[test]
fn syntax_errors_say_failed_to_parse() {
    for rules in [
        "key_prefix \"a\" { policy = ",
        "{ \"key\": ",
        "key_prefix \"a\" { policy = read }",
        "= \"read\"",
    ] {
        let err = Policy::parse(rules).unwrap_err();
        assert!(matches!(err, RulesError::Syntax(_)), "{rules}: {err:?}");
        assert!(
            err.to_string().starts_with("Failed to parse ACL rules: "),
            "{err}"
        );
    }
}

#[test]
fn wrong_shapes_are_syntax_errors() {
    for rules in [
        r#"key_prefix = "read""#,
        r#"acl { policy = "read" }"#,
        r#"{ "acl": ["write"] }"#,
        r#"{ "key": { "a": "read" } }"#,
        r#"{ "key": { "a": { "policy": 1 } } }"#,
        r#"{ "key": [ "a" ] }"#,
        r#"operator = true"#,
    ] {
        let err = Policy::parse(rules).unwrap_err();
        assert!(matches!(err, RulesError::Syntax(_)), "{rules}: {err:?}");
    }
}

#[test]
fn unknown_keys_are_refused_by_parse_and_ignored_by_parse_lenient() {
    let cases = [
        (r#"servce "web" { policy = "read" }"#, "servce", ""),
        (
            r#"namespace "team" { key_prefix "" { policy = "read" } }"#,
            "namespace",
            "",
        ),
        (
            r#"service "web" { policy = "read" polcy = "write" }"#,
            "polcy",
            r#" in service "web""#,
        ),
        (
            r#"key "k" { policy = "read" intentions = "read" }"#,
            "intentions",
            r#" in key "k""#,
        ),
    ];
    for (rules, key, location) in cases {
        assert_eq!(
            Policy::parse(rules).unwrap_err(),
            RulesError::UnknownKey {
                key: key.to_string(),
                location: location.to_string()
            },
            "{rules}"
        );
        assert!(Policy::parse_lenient(rules).is_ok(), "{rules}");
    }
    let lenient = Policy::parse_lenient(
        r#"servce "web" { policy = "read" } node "n" { policy = "read" sentinel { code = "x" } }"#,
    )
    .unwrap();
    assert_eq!(lenient, policy(r#"node "n" { policy = "read" }"#));
    // Lenient still validates what it knows.
    assert!(Policy::parse_lenient(r#"node "n" { polcy = "read" }"#).is_err());
}

#[test]
fn names_are_taken_verbatim() {
    let p = policy(r#"key "a b/\"c\"" { policy = "read" } node "é" { policy = "write" }"#);
    assert_eq!(p.keys, vec![Rule::new("a b/\"c\"", Read)]);
    assert_eq!(p.nodes, vec![Rule::new("é", Write)]);
}
