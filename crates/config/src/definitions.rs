//! `service`/`services` and `check`/`checks` blocks of config files.
//!
//! These become the API structs the agent registers (`ServiceDefinition`, `CheckDefinition`),
//! decoded through the same case-insensitive route as `/v1/agent/service/register` bodies. Those
//! structs accept unknown fields (clients send extras), but a config file must not: a typo such
//! as `prot = 80` would otherwise register a service without its port. So keys are checked here
//! against the list this crate supports, and each definition is validated the way Consul's
//! builder does (a service needs a name, a check exactly one kind, an interval where it polls).

use proconsul_types::json::canonicalize;
use proconsul_types::{health, CheckDefinition, ServiceDefinition};
use serde_json::{Map, Value};

use crate::error::DefinitionError;

/// Keys a service block may hold (matched ignoring case and underscores, like the API).
const SERVICE_KEYS: &[&str] = &[
    "id",
    "name",
    "kind",
    "tags",
    "address",
    "port",
    "meta",
    "tagged_addresses",
    "enable_tag_override",
    "weights",
    "check",
    "checks",
    "proxy",
    "connect",
    "locality",
    // A service's ACL token: kept for the ACL system, which reads it when enabled.
    "token",
];

/// Keys a check block may hold.
const CHECK_KEYS: &[&str] = &[
    "id",
    "check_id",
    "name",
    "notes",
    "service_id",
    "status",
    "interval",
    "timeout",
    "http",
    "header",
    "method",
    "body",
    "tls_skip_verify",
    "tls_server_name",
    "disable_redirects",
    "tcp",
    "grpc",
    "grpc_use_tls",
    "tcp_use_tls",
    "ttl",
    "args",
    "script_args",
    "alias_service",
    "alias_node",
    "deregister_critical_service_after",
    "success_before_passing",
    "failures_before_warning",
    "failures_before_critical",
];

const WEIGHTS_KEYS: &[&str] = &["passing", "warning"];

fn fold(k: &str) -> String {
    k.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

fn check_keys(
    ctx: &str,
    obj: &Map<String, Value>,
    allowed: &[&str],
) -> Result<(), DefinitionError> {
    for k in obj.keys() {
        let f = fold(k);
        if !allowed.iter().any(|a| fold(a) == f) {
            return Err(DefinitionError::UnknownField {
                ctx: ctx.into(),
                key: k.clone(),
            });
        }
    }
    Ok(())
}

/// A value that may be one object or a list of them (JSON `service` vs `services`, repeated
/// HCL blocks).
fn objects(ctx: &str, v: Value) -> Result<Vec<Map<String, Value>>, DefinitionError> {
    let items = match v {
        Value::Array(items) => items,
        other => vec![other],
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::Object(m) => Ok(m),
            other => Err(DefinitionError::NotObject {
                ctx: ctx.into(),
                kind: kind(&other),
            }),
        })
        .collect()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Remove a key whatever its spelling (`enable_tag_override`, `EnableTagOverride`).
fn take(obj: &mut Map<String, Value>, key: &str) -> Option<Value> {
    let f = fold(key);
    let found = obj.keys().find(|k| fold(k) == f).cloned()?;
    obj.remove(&found)
}

/// HCL's blocks as single objects: a list of objects becomes one (later keys win), inside
/// objects too; `upstreams` and other real lists of objects stay lists.
fn unblock(v: Value) -> Value {
    match v {
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            let mut merged = Map::new();
            for item in items {
                if let Value::Object(m) = item {
                    merged.extend(m);
                }
            }
            unblock(Value::Object(merged))
        }
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let v = if fold(&k) == "upstreams" {
                        v
                    } else {
                        unblock(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        other => other,
    }
}

/// Decode `service`/`services`. A service's checks all end up in `checks` (`check` is `None`).
pub(crate) fn services(v: Value) -> Result<Vec<ServiceDefinition>, DefinitionError> {
    objects("service", v)?.into_iter().map(service).collect()
}

fn service(mut obj: Map<String, Value>) -> Result<ServiceDefinition, DefinitionError> {
    check_keys("service", &obj, SERVICE_KEYS)?;
    let name = obj
        .iter()
        .find(|(k, _)| fold(k) == "name")
        .and_then(|(_, v)| v.as_str())
        .unwrap_or("")
        .to_string();
    let ctx = if name.is_empty() {
        "service".to_string()
    } else {
        format!("service {name:?}")
    };
    if let Some(Value::Object(w)) = obj
        .iter()
        .find(|(k, _)| fold(k) == "weights")
        .map(|(_, v)| v)
    {
        check_keys(&format!("{ctx}: weights"), w, WEIGHTS_KEYS)?;
    }
    // HCL writes these as blocks, which decode as lists of objects: one object each.
    for key in ["proxy", "connect", "locality"] {
        if let Some(v) = take(&mut obj, key) {
            obj.insert(key.to_string(), unblock(v));
        }
    }
    let mut checks = Vec::new();
    for key in ["check", "checks"] {
        if let Some(v) = take(&mut obj, key) {
            for c in objects(&format!("{ctx}: {key}"), v)? {
                checks.push(check(&format!("{ctx}: check"), c, false)?);
            }
        }
    }
    let mut def: ServiceDefinition =
        serde_json::from_value(canonicalize(Value::Object(obj))).map_err(|e| decode(&ctx, &e))?;
    if def.name.trim().is_empty() {
        return Err(DefinitionError::MissingName {
            ctx: "service".into(),
        });
    }
    def.checks = checks;
    Ok(def)
}

/// Decode top-level `check`/`checks` (node checks, or checks bound to a service by `service_id`).
pub(crate) fn checks(v: Value) -> Result<Vec<CheckDefinition>, DefinitionError> {
    objects("check", v)?
        .into_iter()
        .map(|c| check("check", c, true))
        .collect()
}

/// The decoder's error for the block at `ctx`.
fn decode(ctx: &str, e: &serde_json::Error) -> DefinitionError {
    DefinitionError::Decode {
        ctx: ctx.into(),
        message: crate::user::serde_message(e),
    }
}

fn check(
    ctx: &str,
    obj: Map<String, Value>,
    need_name: bool,
) -> Result<CheckDefinition, DefinitionError> {
    check_keys(ctx, &obj, CHECK_KEYS)?;
    let def: CheckDefinition =
        serde_json::from_value(canonicalize(Value::Object(obj))).map_err(|e| decode(ctx, &e))?;
    let ctx = match (def.name.as_str(), def.given_id()) {
        ("", "") => ctx.to_string(),
        ("", id) => format!("{ctx} {id:?}"),
        (name, _) => format!("{ctx} {name:?}"),
    };
    if need_name && def.name.trim().is_empty() {
        return Err(DefinitionError::MissingName { ctx });
    }
    let kinds = [
        !def.http.is_empty(),
        !def.tcp.is_empty(),
        !def.grpc.is_empty(),
        !def.ttl.is_empty(),
        !def.args.is_empty() || !def.script_args.is_empty(),
        !def.alias_service.is_empty() || !def.alias_node.is_empty(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err(DefinitionError::CheckKind { ctx });
    }
    for (key, v) in [
        ("interval", &def.interval),
        ("timeout", &def.timeout),
        ("ttl", &def.ttl),
        (
            "deregister_critical_service_after",
            &def.deregister_critical_service_after,
        ),
    ] {
        if !v.is_empty() {
            crate::values::duration(&format!("{ctx}: {key}"), Some(v))?;
        }
    }
    let polls = def.ttl.is_empty() && def.alias_service.is_empty() && def.alias_node.is_empty();
    let interval_zero = def.interval.is_empty()
        || proconsul_types::duration::parse(&def.interval).is_ok_and(|d| d.is_zero());
    if polls && interval_zero {
        return Err(DefinitionError::Interval { ctx });
    }
    if !def.status.is_empty() && !health::is_valid_status(&def.status) {
        return Err(DefinitionError::Status {
            ctx,
            status: def.status,
        });
    }
    if !def.http.is_empty() {
        let rest = def
            .http
            .strip_prefix("http://")
            .or_else(|| def.http.strip_prefix("https://"));
        if !rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/')) {
            return Err(DefinitionError::HttpUrl { ctx, url: def.http });
        }
    }
    if !def.grpc.is_empty() {
        if let Err(message) = proconsul_types::split_grpc_target(&def.grpc) {
            return Err(DefinitionError::Grpc { ctx, message });
        }
    }
    Ok(def)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn service_with_checks() {
        let s = services(json!({
            "name": "web", "port": 80, "tags": ["a"], "meta": {"Some_Key": "v"},
            "enable_tag_override": true, "weights": {"passing": 3, "warning": 1},
            "check": {"http": "http://x/health", "interval": "10s"},
            "checks": [{"ttl": "30s"}, {"tcp": "localhost:1", "interval": "5s", "timeout": "1s"}]
        }))
        .unwrap();
        assert_eq!(s.len(), 1);
        let s = &s[0];
        assert_eq!((s.name.as_str(), s.port), ("web", 80));
        assert!(s.enable_tag_override);
        assert_eq!(s.meta["Some_Key"], "v");
        assert_eq!(s.weights.as_ref().unwrap().passing, 3);
        assert!(s.check.is_none());
        assert_eq!(s.checks.len(), 3);
        assert_eq!(s.checks[0].http, "http://x/health");
        assert_eq!(s.checks[2].timeout, "1s");
    }

    #[test]
    fn connect_blocks_from_hcl() {
        let layer = crate::user::parse_str(
            r#"service {
                 name = "web"
                 port = 8080
                 connect { sidecar_service {} }
               }
               service {
                 name = "web-proxy"
                 kind = "connect-proxy"
                 port = 21001
                 proxy {
                   destination_service_name = "web"
                   upstreams = [{ destination_name = "db", local_bind_port = 9191 }]
                 }
                 locality { region = "us-west-1" }
               }"#,
            crate::user::Format::Hcl,
        )
        .unwrap();
        let web = &layer.services[0];
        assert!(web.connect.as_ref().unwrap().sidecar_service.is_some());
        let p = &layer.services[1];
        let proxy = p.proxy.as_ref().unwrap();
        assert_eq!(proxy.destination_service_name, "web");
        assert_eq!(proxy.upstreams.len(), 1);
        assert_eq!(p.locality.as_ref().unwrap().region, "us-west-1");
    }

    #[test]
    fn errors_name_the_key() {
        let e = services(json!({"name": "web", "prot": 80}))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "service: unknown field \"prot\"");
        let e = services(json!({"name": "web", "check": {"http": "x", "intervl": "1s"}}))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "service \"web\": check: unknown field \"intervl\"");
        let e = services(json!({"port": 1})).unwrap_err().to_string();
        assert_eq!(e, "service: missing name");
        let e = services(json!({"name": "w", "check": {"http": "x", "interval": "1x"}}))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("service \"w\": check: interval: invalid duration: \"1x\""),
            "{e}"
        );
        let e = services(json!({"name": "w", "check": {"http": "x"}}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("interval must be > 0"), "{e}");
        let e = services(json!({"name": "w", "check": {"http": "x", "ttl": "1s"}}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("exactly one of"), "{e}");
        let e = checks(json!({"ttl": "1s"})).unwrap_err().to_string();
        assert_eq!(e, "check: missing name");
        let e = checks(json!([{"name": "n", "ttl": "1s", "status": "ok"}]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("check \"n\": status"), "{e}");
        let e = services(
            json!({"name": "w", "check": {"http": "localhost:80/health", "interval": "1s"}}),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "service \"w\": check: http: invalid URL \"localhost:80/health\": expected http:// or https:// and a host"
        );
        let e = checks(json!({"name": "g", "grpc": "localhost", "interval": "1s"}))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "check \"g\": grpc: invalid gRPC target \"localhost\": expected host:port or host:port/service"
        );
        let ok = checks(
            json!({"name": "g", "grpc": "127.0.0.1:50051/web", "grpc_use_tls": true,
            "tls_skip_verify": true, "tls_server_name": "web.local", "interval": "1s"}),
        )
        .unwrap();
        assert!(ok[0].grpc_use_tls && ok[0].tls_skip_verify);
        assert_eq!(ok[0].tls_server_name, "web.local");
        assert_eq!(
            checks(json!({"name": "mem", "args": ["/bin/true"], "interval": "5s"}))
                .unwrap()
                .len(),
            1
        );
    }
}
