//! Service and node identities, templated policies, builtin policies.

use super::policy;
use crate::DefaultPolicy::Deny;
use crate::{
    global_management_policy, global_read_only_policy, is_valid_service_identity_name,
    node_identity_policy, node_identity_rules, service_identity_policy, service_identity_rules,
    templated_policy, templated_policy_rules, Authorizer, Check, Policy, TemplateError,
    TEMPLATED_POLICIES,
};

#[test]
fn service_identity_rules_and_policy_agree() {
    let rules = service_identity_rules("web");
    assert!(rules.contains(r#"service "web-sidecar-proxy""#), "{rules}");
    assert_eq!(policy(&rules), service_identity_policy("web"));
    assert_eq!(
        service_identity_policy("web"),
        policy(
            r#"
            service "web" { policy = "write" }
            service "web-sidecar-proxy" { policy = "write" }
            service_prefix "" { policy = "read" }
            node_prefix "" { policy = "read" }
            "#
        )
    );
}

#[test]
fn service_identity_grants() {
    let authz = Authorizer::new([&service_identity_policy("web")], Deny);
    assert!(authz.service_write("web"));
    assert!(authz.service_write("web-sidecar-proxy"));
    assert!(!authz.service_write("web2"));
    assert!(authz.service_read("db"));
    assert!(authz.node_read("any-node"));
    assert!(!authz.node_write("any-node"));
    assert!(
        authz.intention_read("db"),
        "service read implies intention read"
    );
    assert!(!authz.intention_write("web"));
    assert!(!authz.key_read("x"));
}

#[test]
fn node_identity_rules_and_policy_agree() {
    assert_eq!(
        policy(&node_identity_rules("node-1")),
        node_identity_policy("node-1")
    );
    let authz = Authorizer::new([&node_identity_policy("node-1")], Deny);
    assert!(authz.node_write("node-1"));
    assert!(!authz.node_write("node-2"));
    assert!(!authz.node_read("node-2"));
    assert!(authz.service_read("anything"));
    assert!(!authz.service_write("anything"));
}

#[test]
fn every_templated_policy_renders_valid_rules() {
    for template in TEMPLATED_POLICIES {
        let name = template.requires_name.then_some("my-name");
        let rules = templated_policy_rules(template.name, name).unwrap();
        assert!(!rules.contains("{{"), "{}: {rules}", template.name);
        Policy::parse(&rules).unwrap_or_else(|e| panic!("{}: {e}", template.name));
    }
}

#[test]
fn templated_policies_expand_like_consul() {
    assert_eq!(
        templated_policy("builtin/service", Some("api")).unwrap(),
        service_identity_policy("api")
    );
    assert_eq!(
        templated_policy("builtin/node", Some("n1")).unwrap(),
        node_identity_policy("n1")
    );
    assert_eq!(
        templated_policy("builtin/dns", None).unwrap(),
        policy(
            r#"node_prefix "" { policy = "read" }
               service_prefix "" { policy = "read" }
               query_prefix "" { policy = "read" }"#
        )
    );
    assert_eq!(
        templated_policy("builtin/api-gateway", Some("gw")).unwrap(),
        policy(
            r#"mesh = "read"
               node_prefix "" { policy = "read" }
               service_prefix "" { policy = "read" }
               service "gw" { policy = "write" }"#
        )
    );
    let nomad_server = templated_policy("builtin/nomad-server", Some("ignored")).unwrap();
    assert_eq!(nomad_server.acl, Some(crate::AccessLevel::Write));
}

#[test]
fn templated_policy_errors() {
    assert_eq!(
        templated_policy("builtin/nope", None)
            .unwrap_err()
            .to_string(),
        "acl templated policy does not exist: builtin/nope"
    );
    assert_eq!(
        templated_policy("builtin/service", None).unwrap_err(),
        TemplateError::MissingName("builtin/service".into())
    );
    assert_eq!(
        templated_policy("builtin/service", Some("")).unwrap_err(),
        TemplateError::MissingName("builtin/service".into())
    );
    assert_eq!(
        templated_policy("builtin/service", Some("Web")).unwrap_err(),
        TemplateError::InvalidServiceName("Web".into())
    );
    assert_eq!(
        templated_policy("builtin/node", Some("-n")).unwrap_err(),
        TemplateError::InvalidNodeName("-n".into())
    );
    // A name with quotes stays inside its string.
    let p = templated_policy("builtin/api-gateway", Some("a\"b")).unwrap();
    assert!(p.services.iter().any(|s| s.name == "a\"b"));
}

#[test]
fn identity_names() {
    for valid in ["a", "web", "web-1", "a_b", "0", "x9"] {
        assert!(is_valid_service_identity_name(valid), "{valid}");
    }
    let too_long = "a".repeat(257);
    for invalid in ["", "-a", "a-", "_a", "A", "web.1", "é", too_long.as_str()] {
        assert!(!is_valid_service_identity_name(invalid), "{invalid}");
    }
    assert!(is_valid_service_identity_name(&"a".repeat(256)));
}

#[test]
fn global_management_allows_everything_the_rules_can_grant() {
    let authz = Authorizer::new([&global_management_policy()], Deny);
    let manage = Authorizer::manage_all();
    let checks = [
        Check::AclRead,
        Check::AclWrite,
        Check::Snapshot,
        Check::AgentWrite("n"),
        Check::EventWrite("e"),
        Check::IntentionWrite("s"),
        Check::IntentionWrite("*"),
        Check::KeyWrite("k"),
        Check::KeyList("k"),
        Check::KeyWritePrefix(""),
        Check::KeyringWrite,
        Check::MeshWrite,
        Check::PeeringWrite,
        Check::NodeWrite("n"),
        Check::NodeReadAll,
        Check::OperatorWrite,
        Check::PreparedQueryWrite("q"),
        Check::ServiceWrite("s"),
        Check::ServiceReadAll,
        Check::ServiceWriteAny,
        Check::SessionWrite("n"),
    ];
    for check in checks {
        assert!(authz.allows(check), "{check:?}");
        assert!(manage.allows(check), "{check:?}");
    }
    // The one thing rules cannot grant: it follows the default policy.
    assert!(!authz.intention_default_allow());
    assert!(manage.intention_default_allow());
}

#[test]
fn global_read_only_reads_everything_and_writes_nothing() {
    let authz = Authorizer::new([&global_read_only_policy()], Deny);
    assert!(authz.acl_read() && !authz.acl_write() && !authz.snapshot());
    assert!(authz.key_read("k") && !authz.key_write("k") && !authz.key_write_prefix(""));
    assert!(authz.service_read_all() && authz.node_read_all() && !authz.service_write_any());
    assert!(authz.intention_read("*") && !authz.intention_write("*"));
    assert!(authz.mesh_read() && !authz.mesh_write());
    assert!(authz.peering_read() && !authz.peering_write());
    assert!(authz.operator_read() && authz.keyring_read() && !authz.keyring_write());
    assert!(authz.session_read("n") && authz.event_read("e") && authz.prepared_query_read("q"));
    assert!(authz.agent_read("n") && !authz.agent_write("n"));
}
