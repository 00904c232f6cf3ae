//! Consul's whole key set, so a Consul config file loads unchanged.
//!
//! proconsul decodes only the keys it gives effect to (`user::UserConfig`, which still denies
//! unknown fields). A key it does not decode is then looked up here, in the table of every key
//! Consul accepts (`consul_keys.txt`, from Consul's `agent/config/config.go`):
//! - a Consul key is taken out of the file with one warning naming it and saying it has no
//!   effect (Consul's own wording for Enterprise-only keys), after its sub-keys are checked
//!   against the table too, so a typo inside an ignored block is still an error;
//! - any other key is an error naming its full path, as Consul's `invalid config key` does.
//!
//! Security settings fail closed: a file that asks for ACL enforcement or TLS verification,
//! which this build cannot give, is refused rather than served without them ([`refuse_unmet`]).
//! Deprecated keys get Consul's deprecation warning ([`deprecation_warnings`]).

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::error::ParseError;

/// How a key's value is read (see `consul_keys.txt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// An object of listed keys.
    Block,
    /// A list of such objects; children listed under `path[]`.
    Blocks,
    /// An object of user-named such objects; children listed under `path.*`.
    NamedBlocks,
    /// A map or free-form value: anything below it is the user's.
    Open,
    /// A scalar or a list of scalars.
    Value,
}

fn table() -> &'static HashMap<&'static str, Shape> {
    static TABLE: OnceLock<HashMap<&'static str, Shape>> = OnceLock::new();
    TABLE.get_or_init(|| {
        include_str!("consul_keys.txt")
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (path, shape) = l.split_once(' ').expect("path and shape");
                let shape = match shape {
                    "block" => Shape::Block,
                    "blocks" => Shape::Blocks,
                    "named-blocks" => Shape::NamedBlocks,
                    "open" => Shape::Open,
                    "value" => Shape::Value,
                    other => panic!("consul_keys.txt: unknown shape {other:?}"),
                };
                (path, shape)
            })
            .collect()
    })
}

/// Consul's `deprecationWarning`: deprecated key → the key that replaces it.
const DEPRECATED: &[(&str, &str)] = &[
    ("acl.tokens.agent_master", "acl.tokens.agent_recovery"),
    ("acl_agent_master_token", "acl.tokens.agent_recovery"),
    ("acl_agent_token", "acl.tokens.agent"),
    ("acl_token", "acl.tokens.default"),
    ("acl.tokens.master", "acl.tokens.initial_management"),
    ("acl_master_token", "acl.tokens.initial_management"),
    ("acl_replication_token", "acl.tokens.replication"),
    ("enable_acl_replication", "acl.enable_token_replication"),
    ("acl_datacenter", "primary_datacenter"),
    ("acl_default_policy", "acl.default_policy"),
    ("acl_down_policy", "acl.down_policy"),
    ("acl_ttl", "acl.token_ttl"),
    ("acl_enable_key_list_policy", "acl.enable_key_list_policy"),
    ("start_join", "retry_join"),
    ("start_join_wan", "retry_join_wan"),
    ("raft_boltdb", "raft_logstore.boltdb"),
    ("ca_file", "tls.defaults.ca_file"),
    ("ca_path", "tls.defaults.ca_path"),
    ("cert_file", "tls.defaults.cert_file"),
    ("key_file", "tls.defaults.key_file"),
    ("tls_cipher_suites", "tls.defaults.tls_cipher_suites"),
    ("tls_min_version", "tls.defaults.tls_min_version"),
    ("verify_incoming", "tls.defaults.verify_incoming"),
    ("verify_incoming_https", "tls.https.verify_incoming"),
    ("verify_incoming_rpc", "tls.internal_rpc.verify_incoming"),
    ("verify_outgoing", "tls.defaults.verify_outgoing"),
    (
        "verify_server_hostname",
        "tls.internal_rpc.verify_server_hostname",
    ),
    ("ui", "ui_config.enabled"),
    ("ui_dir", "ui_config.dir"),
    ("ui_content_path", "ui_config.content_path"),
];

/// Keys open-source Consul accepts and ignores as Enterprise features (its `builder_ce.go`).
const ENTERPRISE: &[&str] = &[
    "read_replica",
    "non_voting_server",
    "segment",
    "segments",
    "partition",
    "autopilot.redundancy_zone_tag",
    "autopilot.upgrade_version_tag",
    "autopilot.disable_upgrade_migration",
    "dns_config.prefer_namespace",
    "acl.msp_disable_bootstrap",
    "acl.tokens.managed_service_provider",
    "audit",
    "license_path",
    "reporting.license",
];

/// Settings that ask for enforcement this build does not have: `(path, what it asks for)`.
/// Each is refused when `true` (or, for `acl_datacenter`, when set at all, since Consul turns
/// ACLs on with it).
const UNMET: &[(&str, &str)] = &[
    // Consul turns legacy ACLs on with `acl_datacenter`; give the `acl` block instead.
    (
        "acl_datacenter",
        "legacy ACL enforcement (use acl { enabled = true })",
    ),
    // There is no gRPC listener to verify clients on.
    ("tls.grpc.verify_incoming", "TLS client verification"),
];

/// One step of a path into a config value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Consul's spelling of a path: `a.b`, `a[0].b`.
fn display(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The table's spelling: keys lower-cased (Consul matches keys without regard to case),
/// list indices as `[]`.
fn table_key(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&k.to_ascii_lowercase());
            }
            Step::Index(_) => out.push_str("[]"),
        }
    }
    out
}

/// What the table says of a path, reading `*` for the names under a `named-blocks` key.
fn shape_of(path: &[Step]) -> Option<Shape> {
    let key = table_key(path);
    if let Some(s) = table().get(key.as_str()) {
        return Some(*s);
    }
    // `audit.sink.<name>.x` is listed as `audit.sink.*.x`.
    for cut in (1..path.len()).rev() {
        if table().get(table_key(&path[..cut]).as_str()) == Some(&Shape::NamedBlocks) {
            let mut starred = path.to_vec();
            starred[cut] = Step::Key("*".into());
            return table().get(table_key(&starred).as_str()).copied();
        }
    }
    None
}

/// Is every key at and below `path` one Consul accepts? The first that is not, as an error.
fn check_known(path: &mut Vec<Step>, value: &Value) -> Result<(), ParseError> {
    let unknown = |path: &[Step]| ParseError::UnknownField(display(path));
    let Some(shape) = shape_of(path) else {
        return Err(unknown(path));
    };
    match (shape, value) {
        (Shape::Block | Shape::NamedBlocks, Value::Object(m)) => {
            for (k, v) in m {
                path.push(Step::Key(k.clone()));
                let r = if shape == Shape::NamedBlocks {
                    // A named block: its keys are checked, its name is the user's.
                    match v {
                        Value::Object(inner) => inner.iter().try_for_each(|(ik, iv)| {
                            path.push(Step::Key(ik.clone()));
                            let r = check_known(path, iv);
                            path.pop();
                            r
                        }),
                        _ => Ok(()),
                    }
                } else {
                    check_known(path, v)
                };
                path.pop();
                r?;
            }
            Ok(())
        }
        // HCL's repeated blocks arrive merged into one object (`user::flatten_blocks`).
        (Shape::Blocks, Value::Object(_)) => check_known(path, &Value::Array(vec![value.clone()])),
        (Shape::Blocks, Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if let Value::Object(m) = item {
                    path.push(Step::Index(i));
                    for (k, v) in m {
                        path.push(Step::Key(k.clone()));
                        let r = check_known(path, v);
                        path.pop();
                        r?;
                    }
                    path.pop();
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn get<'a>(map: &'a Map<String, Value>, dotted: &str) -> Option<&'a Value> {
    let mut parts = dotted.split('.');
    let mut v = map.get(parts.next()?)?;
    for p in parts {
        v = v.as_object()?.get(p)?;
    }
    Some(v)
}

/// Refuse a file that asks for enforcement this build cannot give (fail closed).
pub(crate) fn refuse_unmet(map: &Map<String, Value>) -> Result<(), ParseError> {
    for (key, what) in UNMET {
        let asks = match get(map, key) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::String(s)) if *key != "acl_datacenter" => s == "true",
            Some(Value::String(s)) => !s.is_empty(),
            Some(_) => true,
        };
        if asks {
            return Err(ParseError::Unmet {
                key: (*key).to_string(),
                what: (*what).to_string(),
            });
        }
    }
    Ok(())
}

/// Consul's deprecation warnings for the deprecated keys `map` sets (called on what is left
/// once the keys without effect are taken out, which say so in their own warning).
pub(crate) fn deprecation_warnings(map: &Map<String, Value>) -> Vec<String> {
    DEPRECATED
        .iter()
        .filter(|(old, _)| get(map, old).is_some_and(|v| !v.is_null()))
        .map(|(old, new)| {
            format!("The '{old}' field is deprecated. Use the '{new}' field instead.")
        })
        .collect()
}

/// The warning for a Consul key proconsul takes out of the file: one per key, so a deprecated
/// key says both things at once.
fn no_effect(path: &[Step]) -> String {
    let key = table_key(path);
    if let Some((old, new)) = DEPRECATED.iter().find(|(old, _)| *old == key) {
        format!(
            "The '{old}' field is deprecated. Use the '{new}' field instead. It has no effect in proconsul."
        )
    } else if ENTERPRISE.contains(&key.as_str()) {
        format!(
            "{:?} is a Consul Enterprise configuration and will have no effect",
            display(path)
        )
    } else {
        format!(
            "config key {:?} is accepted for compatibility with Consul and has no effect in proconsul",
            display(path)
        )
    }
}

/// Where `field` sits in `value`, nearest the top first (the decoder names a key it does not
/// know, not its path).
fn locate(value: &Value, field: &str) -> Option<Vec<Step>> {
    let mut level: Vec<(Vec<Step>, &Value)> = vec![(Vec::new(), value)];
    while !level.is_empty() {
        let mut next = Vec::new();
        for (path, v) in level {
            match v {
                Value::Object(m) => {
                    for (k, child) in m {
                        let mut p = path.clone();
                        p.push(Step::Key(k.clone()));
                        if k == field {
                            return Some(p);
                        }
                        next.push((p, child));
                    }
                }
                Value::Array(items) => {
                    for (i, child) in items.iter().enumerate() {
                        let mut p = path.clone();
                        p.push(Step::Index(i));
                        next.push((p, child));
                    }
                }
                _ => {}
            }
        }
        level = next;
    }
    None
}

fn remove(map: &mut Map<String, Value>, path: &[Step]) -> Option<Value> {
    let (last, parents) = path.split_last()?;
    let Step::Key(first) = parents.first().unwrap_or(last) else {
        return None;
    };
    if parents.is_empty() {
        return map.remove(first);
    }
    let mut v = map.get_mut(first)?;
    for step in &parents[1..] {
        v = match step {
            Step::Key(k) => v.as_object_mut()?.get_mut(k)?,
            Step::Index(i) => v.as_array_mut()?.get_mut(*i)?,
        };
    }
    match last {
        Step::Key(k) => v.as_object_mut()?.remove(k),
        Step::Index(_) => None,
    }
}

/// The decoder refused `field`, somewhere inside `map[top]`: if that key is Consul's, take it
/// out (checking what is below it) and return the warning; otherwise the error naming it.
pub(crate) fn take_out(
    map: &mut Map<String, Value>,
    top: &str,
    field: &str,
) -> Result<String, ParseError> {
    let mut path = if top == field {
        vec![Step::Key(top.to_string())]
    } else {
        let inner = map.get(top).and_then(|v| locate(v, field));
        match inner {
            Some(mut p) => {
                p.insert(0, Step::Key(top.to_string()));
                p
            }
            None => return Err(ParseError::UnknownField(field.to_string())),
        }
    };
    let value = {
        let mut probe = map.clone();
        remove(&mut probe, &path).unwrap_or(Value::Null)
    };
    check_known(&mut path, &value)?;
    remove(map, &path);
    Ok(no_effect(&path))
}

/// The legacy top-level ACL keys and where Consul reads them now. They are moved into the
/// `acl` block (unless it sets the same key), so an old `acl_default_policy = "deny"` is
/// honoured rather than dropped with a warning: a dropped deny would fail open.
const LEGACY_ACL: &[(&str, &[&str])] = &[
    ("acl_default_policy", &["default_policy"]),
    ("acl_down_policy", &["down_policy"]),
    ("acl_ttl", &["token_ttl"]),
    ("acl_enable_key_list_policy", &["enable_key_list_policy"]),
    ("acl_master_token", &["tokens", "initial_management"]),
    ("acl_token", &["tokens", "default"]),
    ("acl_agent_token", &["tokens", "agent"]),
    ("acl_agent_master_token", &["tokens", "agent_recovery"]),
    ("acl_replication_token", &["tokens", "replication"]),
];

/// The legacy top-level TLS keys and where Consul reads them now. Moved, not dropped: a
/// dropped `verify_incoming = true` would fail open.
const LEGACY_TLS: &[(&str, &[&str])] = &[
    ("ca_file", &["defaults", "ca_file"]),
    ("ca_path", &["defaults", "ca_path"]),
    ("cert_file", &["defaults", "cert_file"]),
    ("key_file", &["defaults", "key_file"]),
    ("tls_min_version", &["defaults", "tls_min_version"]),
    ("tls_cipher_suites", &["defaults", "tls_cipher_suites"]),
    ("verify_incoming", &["defaults", "verify_incoming"]),
    ("verify_incoming_https", &["https", "verify_incoming"]),
    ("verify_incoming_rpc", &["internal_rpc", "verify_incoming"]),
    ("verify_outgoing", &["defaults", "verify_outgoing"]),
    (
        "verify_server_hostname",
        &["internal_rpc", "verify_server_hostname"],
    ),
];

/// The legacy top-level UI keys and where Consul reads them now (`ui_dir` lands on
/// `ui_config.dir`, which then warns that it has no effect: the UI is the embedded one).
const LEGACY_UI: &[(&str, &[&str])] = &[
    ("ui", &["enabled"]),
    ("ui_content_path", &["content_path"]),
    ("ui_dir", &["dir"]),
];

/// Move the legacy `ui*` keys into the `ui_config` block; returns their deprecation warnings.
pub(crate) fn lift_legacy_ui(map: &mut Map<String, Value>) -> Vec<String> {
    lift(map, "ui_config", LEGACY_UI)
}

/// Move the legacy top-level TLS keys into the `tls` block; returns their deprecation
/// warnings.
pub(crate) fn lift_legacy_tls(map: &mut Map<String, Value>) -> Vec<String> {
    lift(map, "tls", LEGACY_TLS)
}

/// Move the legacy `acl_*` keys into the `acl` block; returns their deprecation warnings.
pub(crate) fn lift_legacy_acl(map: &mut Map<String, Value>) -> Vec<String> {
    lift(map, "acl", LEGACY_ACL)
}

/// Move each `old` top-level key to `block.path` unless the block sets it already.
fn lift(map: &mut Map<String, Value>, block: &str, keys: &[(&str, &[&str])]) -> Vec<String> {
    let mut warnings = Vec::new();
    for (old, path) in keys {
        let Some(v) = map.remove(*old) else { continue };
        let new = DEPRECATED
            .iter()
            .find(|(o, _)| o == old)
            .map_or(String::new(), |(_, n)| n.to_string());
        warnings.push(format!(
            "The '{old}' field is deprecated. Use the '{new}' field instead."
        ));
        let mut at = map
            .entry(block)
            .or_insert_with(|| Value::Object(Map::new()));
        for (i, step) in path.iter().enumerate() {
            let Value::Object(m) = at else { break };
            if i + 1 == path.len() {
                m.entry(step.to_string()).or_insert(v);
                break;
            }
            at = m
                .entry(step.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    warnings
}

/// `null` means absent in a config file as in a request (`"segments": null`).
pub(crate) fn drop_nulls(map: &mut Map<String, Value>) {
    map.retain(|_, v| !v.is_null());
    for v in map.values_mut() {
        if let Value::Object(inner) = v {
            drop_nulls(inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_reads_and_knows_nested_shapes() {
        assert!(table().len() > 400);
        let p = |s: &str| -> Vec<Step> { s.split('.').map(|k| Step::Key(k.into())).collect() };
        assert_eq!(shape_of(&p("acl.tokens.agent")), Some(Shape::Value));
        assert_eq!(shape_of(&p("connect.ca_config")), Some(Shape::Open));
        assert_eq!(shape_of(&p("audit.sink.mine.path")), Some(Shape::Value));
        assert_eq!(shape_of(&p("ACL.Enabled")), Some(Shape::Value));
        assert_eq!(shape_of(&p("acl.nope")), None);
    }

    #[test]
    fn deprecated_and_unmet() {
        let m: Map<String, Value> =
            serde_json::from_str(r#"{"acl_token":"x","acl":{"enabled":false}}"#).unwrap();
        assert_eq!(
            deprecation_warnings(&m),
            vec![
                "The 'acl_token' field is deprecated. Use the 'acl.tokens.default' field instead."
            ]
        );
        assert!(refuse_unmet(&m).is_ok());
        let m: Map<String, Value> =
            serde_json::from_str(r#"{"tls":{"defaults":{"verify_incoming":true}}}"#).unwrap();
        assert!(refuse_unmet(&m).is_ok());
        let m: Map<String, Value> =
            serde_json::from_str(r#"{"tls":{"grpc":{"verify_incoming":true}}}"#).unwrap();
        assert_eq!(
            refuse_unmet(&m).unwrap_err().to_string(),
            "tls.grpc.verify_incoming = true asks for TLS client verification, which this \
             proconsul does not provide yet; refusing to start without it"
        );
    }
}
