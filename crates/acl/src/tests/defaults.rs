//! The default policy, management, the KV list flag and Consul's `Enforce` names.

use super::authorizer;
use crate::DefaultPolicy::{Allow, Deny};
use crate::{Authorizer, Check, EnforceError, EnforcementDecision};

/// Every check, for the "nothing matches" tests.
fn every_check() -> Vec<Check<'static>> {
    use Check::*;
    vec![
        AclRead,
        AclWrite,
        Snapshot,
        AgentRead("n"),
        AgentWrite("n"),
        EventRead("e"),
        EventWrite("e"),
        IntentionDefaultAllow,
        IntentionRead("s"),
        IntentionWrite("s"),
        IntentionRead("*"),
        IntentionWrite("*"),
        KeyRead("k"),
        KeyList("k"),
        KeyWrite("k"),
        KeyWritePrefix("k"),
        KeyringRead,
        KeyringWrite,
        MeshRead,
        MeshWrite,
        PeeringRead,
        PeeringWrite,
        NodeRead("n"),
        NodeReadAll,
        NodeWrite("n"),
        OperatorRead,
        OperatorWrite,
        PreparedQueryRead("q"),
        PreparedQueryWrite("q"),
        ServiceRead("s"),
        ServiceReadAll,
        ServiceWrite("s"),
        ServiceWriteAny,
        SessionRead("n"),
        SessionWrite("n"),
    ]
}

fn is_management_check(check: Check<'_>) -> bool {
    matches!(check, Check::AclRead | Check::AclWrite | Check::Snapshot)
}

#[test]
fn without_rules_the_policies_decide_nothing() {
    let authz = crate::PolicyAuthorizer::new([]);
    for check in every_check() {
        assert_eq!(
            authz.decide(check),
            EnforcementDecision::Default,
            "{check:?}"
        );
    }
}

#[test]
fn default_allow_allows_everything_but_acl_management() {
    for authz in [
        authorizer("", Allow),
        Authorizer::new([], Allow),
        Authorizer::for_default_policy(Allow),
    ] {
        for check in every_check() {
            assert_eq!(
                authz.allows(check),
                !is_management_check(check),
                "{check:?}"
            );
        }
    }
}

#[test]
fn default_deny_denies_everything() {
    for authz in [authorizer("", Deny), Authorizer::for_default_policy(Deny)] {
        for check in every_check() {
            assert!(!authz.allows(check), "{check:?}");
        }
    }
}

#[test]
fn manage_all_allows_everything() {
    let authz = Authorizer::manage_all();
    for check in every_check() {
        assert!(authz.allows(check), "{check:?}");
    }
}

#[test]
fn rules_override_the_default_both_ways() {
    let rules = r#"
        key_prefix "" { policy = "read" }
        key_prefix "secret/" { policy = "deny" }
        acl = "read"
    "#;
    let allow = authorizer(rules, Allow);
    let deny = authorizer(rules, Deny);
    for authz in [&allow, &deny] {
        assert!(authz.key_read("x"));
        assert!(
            !authz.key_write("x"),
            "a read rule refuses write whatever the default"
        );
        assert!(!authz.key_read("secret/x"));
        assert!(authz.acl_read());
        assert!(!authz.acl_write());
    }
    // Checks no rule covers follow the default.
    assert!(allow.service_write("web"));
    assert!(!deny.service_write("web"));
    assert!(allow.intention_default_allow());
    assert!(!deny.intention_default_allow());
}

#[test]
fn the_default_decides_what_read_all_leaves_open() {
    let rules = r#"service_prefix "web" { policy = "read" }"#;
    assert!(authorizer(rules, Allow).service_read_all());
    assert!(!authorizer(rules, Deny).service_read_all());
    let rules = r#"service_prefix "" { policy = "read" }"#;
    assert!(authorizer(rules, Deny).service_read_all());
}

#[test]
fn kv_listing_is_gated_only_with_the_key_list_policy() {
    let rules = r#"key_prefix "" { policy = "read" } key_prefix "open/" { policy = "list" }"#;
    let plain = authorizer(rules, Deny);
    assert!(plain.kv_list_allowed("closed/"), "no gate without the flag");
    assert!(plain.kv_list_allowed("open/"));

    let gated = authorizer(rules, Deny).with_key_list_policy(true);
    assert!(
        !gated.kv_list_allowed("closed/"),
        "read does not grant list"
    );
    assert!(gated.kv_list_allowed("open/"));
    assert!(gated.key_read("open/x"), "list grants read");
    assert!(!gated.key_write("open/x"));
}

#[test]
fn enforce_names_map_to_checks() {
    assert_eq!(
        Check::from_consul("key", "a", "READ"),
        Ok(Check::KeyRead("a"))
    );
    assert_eq!(
        Check::from_consul("key", "a", "list"),
        Ok(Check::KeyList("a"))
    );
    assert_eq!(
        Check::from_consul("key", "a/", "write-prefix"),
        Ok(Check::KeyWritePrefix("a/"))
    );
    assert_eq!(Check::from_consul("acl", "", "write"), Ok(Check::AclWrite));
    assert_eq!(Check::from_consul("mesh", "", "read"), Ok(Check::MeshRead));
    assert_eq!(
        Check::from_consul("peering", "", "write"),
        Ok(Check::PeeringWrite)
    );
    assert_eq!(
        Check::from_consul("query", "q", "write"),
        Ok(Check::PreparedQueryWrite("q"))
    );
    assert_eq!(
        Check::from_consul("intention", "web", "read"),
        Ok(Check::IntentionRead("web"))
    );
    let err = Check::from_consul("service", "web", "list").unwrap_err();
    assert_eq!(
        err,
        EnforceError::UnknownAccess {
            resource: "service".into(),
            access: "list".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "Invalid access level for service resource: list"
    );
    let err = Check::from_consul("namespace", "x", "read").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid ACL resource requested: \"namespace\""
    );
}
