//! Parsing a policy's rules text (HCL or JSON) into a [`Policy`].
//!
//! Consul decodes rules with HCL1 into a struct, then validates every rule
//! (`acl/policy.go`: `PolicyRules.Validate`). We do the same in two steps: [`decode`] turns the
//! document into raw strings (so a bad level is reported by validation, with Consul's text and in
//! Consul's order), then [`validate`] checks the levels and builds the typed [`Policy`].
//!
//! Shapes accepted, all from HCL1's decoding rules:
//! - HCL: `key_prefix "foo/" { policy = "read" }`, repeated blocks, `key_prefix = { "foo/" = {...} }`;
//! - JSON (chosen, as HCL1 does, when the first non-blank character is `{`):
//!   `{"key_prefix": {"foo/": {"policy": "read"}}}`, also with a list of such objects, or a list
//!   of bodies under one name (`{"key": {"a": [{"policy": "read"}, ...]}}`);
//! - keys match case-insensitively (`Key_Prefix`, `Policy`), as HCL1 matches struct fields.

use serde_json::{Map, Value};

use crate::access::AccessLevel;
use crate::error::RulesError;
use crate::policy::{Policy, Rule, ServiceRule};

/// How to treat keys Consul's decoder does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnknownKeys {
    /// Report them (a typo such as `servce` would otherwise silently grant nothing).
    Reject,
    /// Ignore them, as Consul's HCL1 decoder does (and Consul CE does with Enterprise-only
    /// blocks such as `namespace` or `partition`).
    Ignore,
}

impl Policy {
    /// Parse rules written in HCL or JSON, rejecting unknown keys.
    ///
    /// Validation follows Consul's `PolicyRules.Validate`: every rule needs `policy` set to
    /// `read`, `write` or `deny` (any case), plus `list` on `key`/`key_prefix`; `intentions` on
    /// services is optional; `acl`, `keyring`, `operator`, `mesh` and `peering` may be empty
    /// (meaning unset) and never take `list`. An empty text is an empty policy.
    ///
    /// Two deliberate differences from Consul, both documented in the crate docs: unknown keys
    /// are errors here (use [`Policy::parse_lenient`] for Consul's behaviour), and an attribute
    /// repeated inside one block keeps its last value (recent Consul rejects that when a policy is
    /// written, and accepts it when reading stored policies).
    pub fn parse(rules: &str) -> Result<Policy, RulesError> {
        parse_rules(rules, UnknownKeys::Reject)
    }

    /// Parse rules as Consul CE does, ignoring keys it does not know (Enterprise blocks such as
    /// `namespace "x" { ... }`, misspelt resources, unknown attributes in a rule). Use this for
    /// policies that are already stored, so they read back whatever Consul accepted.
    pub fn parse_lenient(rules: &str) -> Result<Policy, RulesError> {
        parse_rules(rules, UnknownKeys::Ignore)
    }
}

pub(crate) fn parse_rules(rules: &str, unknown: UnknownKeys) -> Result<Policy, RulesError> {
    if rules.is_empty() {
        // Consul's hot path for an empty source.
        return Ok(Policy::default());
    }
    let document = if rules.trim_start().starts_with('{') {
        serde_json::from_str(rules).map_err(|e| RulesError::Syntax(e.to_string()))?
    } else {
        proconsul_config::parse_hcl(rules).map_err(|e| RulesError::Syntax(e.to_string()))?
    };
    let raw = decode(document, unknown)?;
    validate(raw)
}

/// The resources with named rules, exact and prefix, in the order Consul validates them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleList {
    Agent,
    AgentPrefix,
    Key,
    KeyPrefix,
    Node,
    NodePrefix,
    Service,
    ServicePrefix,
    Session,
    SessionPrefix,
    Event,
    EventPrefix,
    Query,
    QueryPrefix,
}

impl RuleList {
    const ALL: [RuleList; 14] = [
        RuleList::Agent,
        RuleList::AgentPrefix,
        RuleList::Key,
        RuleList::KeyPrefix,
        RuleList::Node,
        RuleList::NodePrefix,
        RuleList::Service,
        RuleList::ServicePrefix,
        RuleList::Session,
        RuleList::SessionPrefix,
        RuleList::Event,
        RuleList::EventPrefix,
        RuleList::Query,
        RuleList::QueryPrefix,
    ];

    /// The block keyword in rules text.
    fn keyword(self) -> &'static str {
        match self {
            RuleList::Agent => "agent",
            RuleList::AgentPrefix => "agent_prefix",
            RuleList::Key => "key",
            RuleList::KeyPrefix => "key_prefix",
            RuleList::Node => "node",
            RuleList::NodePrefix => "node_prefix",
            RuleList::Service => "service",
            RuleList::ServicePrefix => "service_prefix",
            RuleList::Session => "session",
            RuleList::SessionPrefix => "session_prefix",
            RuleList::Event => "event",
            RuleList::EventPrefix => "event_prefix",
            RuleList::Query => "query",
            RuleList::QueryPrefix => "query_prefix",
        }
    }

    fn is_service(self) -> bool {
        matches!(self, RuleList::Service | RuleList::ServicePrefix)
    }

    /// Only KV rules may say `list`.
    fn allows_list(self) -> bool {
        matches!(self, RuleList::Key | RuleList::KeyPrefix)
    }

    /// The rule as Consul prints it in validation errors (Go's `%#v` of its rule struct).
    fn consul_dump(self, rule: &RawRule) -> String {
        let (name, policy) = (&rule.name, &rule.policy);
        match self {
            RuleList::Agent | RuleList::AgentPrefix => {
                format!("&acl.AgentRule{{Node:{name:?}, Policy:{policy:?}}}")
            }
            RuleList::Key | RuleList::KeyPrefix => format!(
                "&acl.KeyRule{{Prefix:{name:?}, Policy:{policy:?}, EnterpriseRule:acl.EnterpriseRule{{}}}}"
            ),
            RuleList::Node | RuleList::NodePrefix => format!(
                "&acl.NodeRule{{Name:{name:?}, Policy:{policy:?}, EnterpriseRule:acl.EnterpriseRule{{}}}}"
            ),
            RuleList::Service | RuleList::ServicePrefix => format!(
                "&acl.ServiceRule{{Name:{name:?}, Policy:{policy:?}, Intentions:{:?}, EnterpriseRule:acl.EnterpriseRule{{}}}}",
                rule.intentions
            ),
            RuleList::Session | RuleList::SessionPrefix => {
                format!("&acl.SessionRule{{Node:{name:?}, Policy:{policy:?}}}")
            }
            RuleList::Event | RuleList::EventPrefix => {
                format!("&acl.EventRule{{Event:{name:?}, Policy:{policy:?}}}")
            }
            RuleList::Query | RuleList::QueryPrefix => {
                format!("&acl.PreparedQueryRule{{Prefix:{name:?}, Policy:{policy:?}}}")
            }
        }
    }

    fn index(self) -> usize {
        RuleList::ALL.iter().position(|l| *l == self).unwrap_or(0)
    }

    /// Where validated rules of this list go (service lists are handled separately).
    fn plain_list(self, policy: &mut Policy) -> &mut Vec<Rule> {
        match self {
            RuleList::Agent => &mut policy.agents,
            RuleList::AgentPrefix => &mut policy.agent_prefixes,
            RuleList::Key => &mut policy.keys,
            RuleList::KeyPrefix => &mut policy.key_prefixes,
            RuleList::Node => &mut policy.nodes,
            RuleList::NodePrefix => &mut policy.node_prefixes,
            RuleList::Session => &mut policy.sessions,
            RuleList::SessionPrefix => &mut policy.session_prefixes,
            RuleList::Event => &mut policy.events,
            RuleList::EventPrefix => &mut policy.event_prefixes,
            RuleList::Query => &mut policy.queries,
            RuleList::QueryPrefix => &mut policy.query_prefixes,
            RuleList::Service | RuleList::ServicePrefix => {
                unreachable!("service rules carry intentions and are stored as ServiceRule")
            }
        }
    }
}

/// The resources with one value for the whole cluster, in the order Consul validates them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SingleValue {
    Acl,
    Keyring,
    Operator,
    Mesh,
    Peering,
}

impl SingleValue {
    const ALL: [SingleValue; 5] = [
        SingleValue::Acl,
        SingleValue::Keyring,
        SingleValue::Operator,
        SingleValue::Mesh,
        SingleValue::Peering,
    ];

    fn keyword(self) -> &'static str {
        match self {
            SingleValue::Acl => "acl",
            SingleValue::Keyring => "keyring",
            SingleValue::Operator => "operator",
            SingleValue::Mesh => "mesh",
            SingleValue::Peering => "peering",
        }
    }

    fn index(self) -> usize {
        SingleValue::ALL
            .iter()
            .position(|v| *v == self)
            .unwrap_or(0)
    }

    fn slot(self, policy: &mut Policy) -> &mut Option<AccessLevel> {
        match self {
            SingleValue::Acl => &mut policy.acl,
            SingleValue::Keyring => &mut policy.keyring,
            SingleValue::Operator => &mut policy.operator,
            SingleValue::Mesh => &mut policy.mesh,
            SingleValue::Peering => &mut policy.peering,
        }
    }
}

/// What a top-level key names.
enum TopLevel {
    Single(SingleValue),
    Rules(RuleList),
}

impl TopLevel {
    /// Case-insensitive, as HCL1 matches keys to struct fields.
    fn from_key(key: &str) -> Option<TopLevel> {
        let key = key.to_lowercase();
        if let Some(single) = SingleValue::ALL.into_iter().find(|s| s.keyword() == key) {
            return Some(TopLevel::Single(single));
        }
        RuleList::ALL
            .into_iter()
            .find(|l| l.keyword() == key)
            .map(TopLevel::Rules)
    }
}

/// A rule before validation: strings as written (`""` when absent, like Go's zero value).
#[derive(Debug, Clone, Default)]
struct RawRule {
    name: String,
    policy: String,
    intentions: String,
}

#[derive(Debug, Default)]
struct RawRules {
    singles: [String; 5],
    lists: [Vec<RawRule>; 14],
}

fn decode(document: Value, unknown: UnknownKeys) -> Result<RawRules, RulesError> {
    let Value::Object(top) = document else {
        return Err(RulesError::Syntax("rules must be an object".into()));
    };
    let mut raw = RawRules::default();
    for (key, value) in top {
        match TopLevel::from_key(&key) {
            Some(TopLevel::Single(single)) => {
                raw.singles[single.index()] = decode_string(value, || key.clone())?;
            }
            Some(TopLevel::Rules(list)) => {
                decode_blocks(list, value, unknown, &mut raw.lists[list.index()])?;
            }
            None if unknown == UnknownKeys::Reject => {
                return Err(RulesError::UnknownKey {
                    key,
                    location: String::new(),
                })
            }
            None => {}
        }
    }
    Ok(raw)
}

fn decode_string(value: Value, what: impl Fn() -> String) -> Result<String, RulesError> {
    match value {
        Value::String(text) => Ok(text),
        other => Err(RulesError::Syntax(format!(
            "{}: expected a string, got {}",
            what(),
            kind_of(&other)
        ))),
    }
}

/// `{ "<name>": <body>, ... }` or a list of such objects (one per HCL block).
fn decode_blocks(
    list: RuleList,
    value: Value,
    unknown: UnknownKeys,
    out: &mut Vec<RawRule>,
) -> Result<(), RulesError> {
    match value {
        Value::Object(named) => {
            for (name, body) in named {
                decode_bodies(list, name, body, unknown, out)?;
            }
            Ok(())
        }
        Value::Array(blocks) => {
            for block in blocks {
                let Value::Object(named) = block else {
                    return Err(block_shape_error(list, &block));
                };
                for (name, body) in named {
                    decode_bodies(list, name, body, unknown, out)?;
                }
            }
            Ok(())
        }
        other => Err(block_shape_error(list, &other)),
    }
}

fn block_shape_error(list: RuleList, found: &Value) -> RulesError {
    let keyword = list.keyword();
    RulesError::Syntax(format!(
        "{keyword}: expected blocks like {keyword} \"<name>\" {{ policy = \"<level>\" }}, got {}",
        kind_of(found)
    ))
}

/// One body (`{ policy = ... }`), or a list of bodies for the same name (HCL1's JSON form).
fn decode_bodies(
    list: RuleList,
    name: String,
    body: Value,
    unknown: UnknownKeys,
    out: &mut Vec<RawRule>,
) -> Result<(), RulesError> {
    match body {
        Value::Object(fields) => {
            out.push(decode_rule(list, name, fields, unknown)?);
            Ok(())
        }
        Value::Array(bodies) => {
            for body in bodies {
                let Value::Object(fields) = body else {
                    return Err(block_shape_error(list, &body));
                };
                out.push(decode_rule(list, name.clone(), fields, unknown)?);
            }
            Ok(())
        }
        other => Err(block_shape_error(list, &other)),
    }
}

fn decode_rule(
    list: RuleList,
    name: String,
    fields: Map<String, Value>,
    unknown: UnknownKeys,
) -> Result<RawRule, RulesError> {
    let mut rule = RawRule {
        name,
        ..RawRule::default()
    };
    let describe = |field: &str, name: &str| format!("{} {name:?}: {field}", list.keyword());
    for (field, value) in fields {
        match field.to_lowercase().as_str() {
            "policy" => rule.policy = decode_string(value, || describe(&field, &rule.name))?,
            "intentions" if list.is_service() => {
                rule.intentions = decode_string(value, || describe(&field, &rule.name))?
            }
            _ if unknown == UnknownKeys::Reject => {
                return Err(RulesError::UnknownKey {
                    key: field,
                    location: format!(" in {} {:?}", list.keyword(), rule.name),
                })
            }
            _ => {}
        }
    }
    Ok(rule)
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A level valid for the context (Consul's `isPolicyValid`): case-insensitive, `list` only
/// where allowed.
fn valid_level(text: &str, allow_list: bool) -> Option<AccessLevel> {
    AccessLevel::parse(text).filter(|level| allow_list || *level != AccessLevel::List)
}

/// Check the levels in Consul's order and build the policy.
fn validate(raw: RawRules) -> Result<Policy, RulesError> {
    let mut policy = Policy::default();

    // Consul checks `acl` first, the named rules next, the other single values last.
    let (acl, others) = SingleValue::ALL.split_at(1);
    for single in acl {
        validate_single(*single, &raw.singles[single.index()], &mut policy)?;
    }
    for list in RuleList::ALL {
        for rule in &raw.lists[list.index()] {
            validate_rule(list, rule, &mut policy)?;
        }
    }
    for single in others {
        validate_single(*single, &raw.singles[single.index()], &mut policy)?;
    }

    policy.sort_rules();
    Ok(policy)
}

fn validate_single(single: SingleValue, text: &str, policy: &mut Policy) -> Result<(), RulesError> {
    if text.is_empty() {
        // Allowed: the same as not writing it.
        return Ok(());
    }
    let level = valid_level(text, false).ok_or_else(|| RulesError::InvalidPolicy {
        what: single.keyword().to_string(),
        rule: format!("{text:?}"),
    })?;
    *single.slot(policy) = Some(level);
    Ok(())
}

fn validate_rule(list: RuleList, raw: &RawRule, policy: &mut Policy) -> Result<(), RulesError> {
    let invalid = |what: String| RulesError::InvalidPolicy {
        what,
        rule: list.consul_dump(raw),
    };
    let level = valid_level(&raw.policy, list.allows_list())
        .ok_or_else(|| invalid(list.keyword().into()))?;
    if !list.is_service() {
        list.plain_list(policy)
            .push(Rule::new(raw.name.clone(), level));
        return Ok(());
    }
    let intentions = if raw.intentions.is_empty() {
        None
    } else {
        let level = valid_level(&raw.intentions, false)
            .ok_or_else(|| invalid(format!("{} intentions", list.keyword())))?;
        Some(level)
    };
    let rule = ServiceRule {
        name: raw.name.clone(),
        policy: level,
        intentions,
    };
    match list {
        RuleList::Service => policy.services.push(rule),
        _ => policy.service_prefixes.push(rule),
    }
    Ok(())
}
