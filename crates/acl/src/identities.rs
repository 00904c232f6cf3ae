//! Policies Consul synthesizes or ships: service and node identities, templated policies, and
//! the two builtin policies.
//!
//! The rules texts are Consul's (`agent/structs/acl_ce.go` for identities,
//! `agent/structs/acltemplatedpolicy/policies/ce/*.hcl` for templated policies,
//! `agent/structs/acl.go` for the builtin policies). Each `*_rules` function gives the text a
//! synthetic policy shows as its `Rules`; each `*_policy` function gives the parsed [`Policy`].

use crate::access::AccessLevel;
use crate::error::TemplateError;
use crate::policy::{Policy, Rule, ServiceRule};

/// Longest service or node identity name Consul accepts.
pub const IDENTITY_NAME_MAX_LENGTH: usize = 256;

/// Consul's check for service identity names (also the `builtin/service` template variable):
/// 1 to 256 characters, lowercase ASCII letters, digits, `-` and `_`, starting and ending with a
/// letter or digit. Stricter than what the catalog accepts.
pub fn is_valid_service_identity_name(name: &str) -> bool {
    is_valid_identity_name(name)
}

/// Consul's check for node identity names: the same rule as for service identities.
pub fn is_valid_node_identity_name(name: &str) -> bool {
    is_valid_identity_name(name)
}

fn is_valid_identity_name(name: &str) -> bool {
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            bytes.len() <= IDENTITY_NAME_MAX_LENGTH
                && alnum(first)
                && alnum(last)
                && bytes.iter().all(|&c| alnum(c) || c == b'-' || c == b'_')
        }
        _ => false,
    }
}

/// The rules of a service identity: write on the service and its sidecar proxy, read on every
/// service and node (for discovery and Connect upstreams).
pub fn service_identity_rules(service: &str) -> String {
    SERVICE_TEMPLATE.replace(NAME_PLACEHOLDER, &escape_for_hcl_string(service))
}

/// [`service_identity_rules`] parsed.
pub fn service_identity_policy(service: &str) -> Policy {
    let mut policy = Policy {
        services: vec![
            ServiceRule::new(service, AccessLevel::Write),
            ServiceRule::new(format!("{service}-sidecar-proxy"), AccessLevel::Write),
        ],
        service_prefixes: vec![ServiceRule::new("", AccessLevel::Read)],
        node_prefixes: vec![Rule::new("", AccessLevel::Read)],
        ..Policy::default()
    };
    policy.sort_rules();
    policy
}

/// The rules of a node identity: write on the node (register itself, update coordinates), read on
/// every service (anti-entropy).
pub fn node_identity_rules(node: &str) -> String {
    NODE_TEMPLATE.replace(NAME_PLACEHOLDER, &escape_for_hcl_string(node))
}

/// [`node_identity_rules`] parsed.
pub fn node_identity_policy(node: &str) -> Policy {
    Policy {
        nodes: vec![Rule::new(node, AccessLevel::Write)],
        service_prefixes: vec![ServiceRule::new("", AccessLevel::Read)],
        ..Policy::default()
    }
}

/// A builtin templated policy (Consul 1.17+): a rules template, filled with the token's
/// `name` variable when the template has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplatedPolicy {
    /// `builtin/service`, ...
    pub name: &'static str,
    /// The reserved policy ID Consul gives the template.
    pub id: &'static str,
    pub description: &'static str,
    /// Whether the template needs the `name` variable.
    pub requires_name: bool,
    /// The rules, with `{{.Name}}` where the variable goes.
    pub template: &'static str,
}

const NAME_PLACEHOLDER: &str = "{{.Name}}";

const SERVICE_TEMPLATE: &str = r#"
service "{{.Name}}" {
	policy = "write"
}
service "{{.Name}}-sidecar-proxy" {
	policy = "write"
}
service_prefix "" {
	policy = "read"
}
node_prefix "" {
	policy = "read"
}"#;

const NODE_TEMPLATE: &str = r#"
node "{{.Name}}" {
	policy = "write"
}
service_prefix "" {
	policy = "read"
}"#;

/// Consul's builtin templated policies (CE).
pub const TEMPLATED_POLICIES: &[TemplatedPolicy] = &[
    TemplatedPolicy {
        name: "builtin/service",
        id: "00000000-0000-0000-0000-000000000003",
        description: "Gives the token or role permissions to register a service and discover services in the Consul catalog. It also gives the specified service's sidecar proxy the permission to discover and route traffic to other services.",
        requires_name: true,
        template: SERVICE_TEMPLATE,
    },
    TemplatedPolicy {
        name: "builtin/node",
        id: "00000000-0000-0000-0000-000000000004",
        description: "Gives the token or role permissions for a register an agent/node into the catalog. A node is typically a consul agent but can also be a physical server, cloud instance or a container.",
        requires_name: true,
        template: NODE_TEMPLATE,
    },
    TemplatedPolicy {
        name: "builtin/dns",
        id: "00000000-0000-0000-0000-000000000005",
        description: "Gives the token or role permissions for the Consul DNS to query services in the network.",
        requires_name: false,
        template: r#"
node_prefix "" {
	policy = "read"
}
service_prefix "" {
	policy = "read"
}
query_prefix "" {
	policy = "read"
}"#,
    },
    TemplatedPolicy {
        name: "builtin/nomad-server",
        id: "00000000-0000-0000-0000-000000000006",
        description: "Gives the token or role permissions required for integration with a nomad server.",
        requires_name: false,
        template: r#"
acl = "write"
agent_prefix "" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
service_prefix "" {
  policy = "write"
}"#,
    },
    TemplatedPolicy {
        name: "builtin/api-gateway",
        id: "00000000-0000-0000-0000-000000000008",
        description: "Gives the token or role permissions for a Consul api gateway",
        requires_name: true,
        template: r#"mesh = "read"
node_prefix "" {
	policy = "read"
}
service_prefix "" {
	policy = "read"
}
service "{{.Name}}" {
	policy = "write"
}"#,
    },
    TemplatedPolicy {
        name: "builtin/nomad-client",
        id: "00000000-0000-0000-0000-000000000009",
        description: "Gives the token or role permissions required for integration with a nomad client.",
        requires_name: false,
        template: r#"agent_prefix "" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
service_prefix "" {
  policy = "write"
}
key_prefix "" {
  policy = "read"
}"#,
    },
];

/// Look up a builtin templated policy by its name (`builtin/service`, ...).
pub fn templated_policy_by_name(template: &str) -> Option<&'static TemplatedPolicy> {
    TEMPLATED_POLICIES.iter().find(|t| t.name == template)
}

/// The rules text of a templated policy with its variable filled in. Checks the variable as
/// Consul does when a token or role is written: required where the template uses it, and a valid
/// identity name for `builtin/service` and `builtin/node`. `name` is ignored by templates without
/// variables.
pub fn templated_policy_rules(template: &str, name: Option<&str>) -> Result<String, TemplateError> {
    let base = templated_policy_by_name(template)
        .ok_or_else(|| TemplateError::UnknownTemplate(template.to_string()))?;
    if !base.requires_name {
        return Ok(base.template.to_string());
    }
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| TemplateError::MissingName(template.to_string()))?;
    match base.name {
        "builtin/service" if !is_valid_service_identity_name(name) => {
            return Err(TemplateError::InvalidServiceName(name.to_string()))
        }
        "builtin/node" if !is_valid_node_identity_name(name) => {
            return Err(TemplateError::InvalidNodeName(name.to_string()))
        }
        _ => {}
    }
    Ok(base
        .template
        .replace(NAME_PLACEHOLDER, &escape_for_hcl_string(name)))
}

/// [`templated_policy_rules`] parsed.
pub fn templated_policy(template: &str, name: Option<&str>) -> Result<Policy, TemplateError> {
    let rules = templated_policy_rules(template, name)?;
    // Only a name with characters an HCL string cannot hold can make this fail.
    Ok(Policy::parse(&rules)?)
}

/// ID of the builtin `global-management` policy.
pub const GLOBAL_MANAGEMENT_POLICY_ID: &str = "00000000-0000-0000-0000-000000000001";
pub const GLOBAL_MANAGEMENT_POLICY_NAME: &str = "global-management";
/// The rules of `global-management` (CE): `write` on everything, intentions included.
pub const GLOBAL_MANAGEMENT_RULES: &str = r#"
acl = "write"
agent_prefix "" {
	policy = "write"
}
event_prefix "" {
	policy = "write"
}
key_prefix "" {
	policy = "write"
}
keyring = "write"
node_prefix "" {
	policy = "write"
}
operator = "write"
mesh = "write"
peering = "write"
query_prefix "" {
	policy = "write"
}
service_prefix "" {
	policy = "write"
	intentions = "write"
}
session_prefix "" {
	policy = "write"
}"#;

/// ID of the builtin `builtin/global-read-only` policy.
pub const GLOBAL_READ_ONLY_POLICY_ID: &str = "00000000-0000-0000-0000-000000000002";
pub const GLOBAL_READ_ONLY_POLICY_NAME: &str = "builtin/global-read-only";
/// The rules of `builtin/global-read-only` (CE): `read` on everything.
pub const GLOBAL_READ_ONLY_RULES: &str = r#"
acl = "read"
agent_prefix "" {
	policy = "read"
}
event_prefix "" {
	policy = "read"
}
key_prefix "" {
	policy = "read"
}
keyring = "read"
node_prefix "" {
	policy = "read"
}
operator = "read"
mesh = "read"
peering = "read"
query_prefix "" {
	policy = "read"
}
service_prefix "" {
	policy = "read"
	intentions = "read"
}
session_prefix "" {
	policy = "read"
}"#;

/// [`GLOBAL_MANAGEMENT_RULES`] parsed.
pub fn global_management_policy() -> Policy {
    Policy::parse(GLOBAL_MANAGEMENT_RULES).expect("builtin policy rules are valid")
}

/// [`GLOBAL_READ_ONLY_RULES`] parsed.
pub fn global_read_only_policy() -> Policy {
    Policy::parse(GLOBAL_READ_ONLY_RULES).expect("builtin policy rules are valid")
}

/// Keep a name inside its HCL string. Consul interpolates names unescaped because it validates
/// them first; escaping changes nothing for valid names and keeps odd ones from breaking the text.
fn escape_for_hcl_string(name: &str) -> String {
    name.replace('\\', "\\\\").replace('"', "\\\"")
}
