//! Case-insensitive JSON input, the way Consul's decoder accepts it.
//!
//! Consul decodes request bodies with mapstructure, which matches keys to fields without regard to
//! case (and accepts snake_case for many fields). Clients rely on it: py-consul sends `{"name": ..}`,
//! others send `{"Name": ..}`. serde matches exactly, so before decoding we rewrite every object key
//! that names a known API field to its canonical PascalCase spelling. Values of free-form maps
//! (`Meta`, `NodeMeta`, `TaggedAddresses`, `Header`, ...) are user data and are left untouched.
//!
//! The same pass reads values the way Go's `encoding/json` and Consul's decode hooks do, so
//! every request type gets it without per-field code:
//! - `null` means absent (Go decodes it to the zero value; the Go client sends its nil slices
//!   and maps as `"Checks": null`, `"Tags": null`, `"NodeMeta": null`), so a `null` member is
//!   dropped and the field takes its default;
//! - a number where a duration is expected (`"Interval": 10`) is nanoseconds, as Consul's
//!   duration hooks read it, and becomes Go duration text (`"10ns"`).

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Every field name the API takes as input, in canonical spelling.
const FIELDS: &[&str] = &[
    // prepared queries
    "Failover",
    "NearestN",
    "IgnoreCheckIDs",
    "OnlyPassing",
    "Near",
    "Template",
    "Regexp",
    "RemoveEmptyTags",
    "DNS",
    // catalog / agent service
    "ID",
    "Node",
    "Address",
    "Datacenter",
    "TaggedAddresses",
    "NodeMeta",
    "Meta",
    "Service",
    "Services",
    "Check",
    "Checks",
    "SkipNodeUpdate",
    "Name",
    "Tags",
    "Port",
    "Kind",
    "EnableTagOverride",
    "Weights",
    "Passing",
    "Warning",
    "ServiceID",
    "CheckID",
    "ServiceName",
    "ServiceTags",
    "Status",
    "Notes",
    "Output",
    "Type",
    "Definition",
    "Interval",
    "Timeout",
    "TTL",
    "HTTP",
    "Header",
    "Method",
    "Body",
    "TCP",
    "GRPC",
    "GRPCUseTLS",
    "TCPUseTLS",
    "TLSServerName",
    "TLSSkipVerify",
    "DisableRedirects",
    "Args",
    "ScriptArgs",
    "AliasNode",
    "AliasService",
    "DeregisterCriticalServiceAfter",
    "SuccessBeforePassing",
    "FailuresBeforeWarning",
    "FailuresBeforeCritical",
    "DockerContainerID",
    "Shell",
    "H2PING",
    "OutputMaxSize",
    "SocketPath",
    "Proxy",
    "Connect",
    "Namespace",
    "Partition",
    "PeerName",
    "Locality",
    "ExposedPort",
    "CreateIndex",
    "ModifyIndex",
    "ServiceAddress",
    "ServicePort",
    "ServiceMeta",
    "ServiceTaggedAddresses",
    "ServiceWeights",
    "ServiceEnableTagOverride",
    "ServiceKind",
    // kv / txn
    "Key",
    "Value",
    "Flags",
    "Session",
    "LockIndex",
    "Verb",
    "Index",
    "KV",
    // session
    "LockDelay",
    "Behavior",
    "NodeChecks",
    "ServiceChecks",
    // events
    "Payload",
    "NodeFilter",
    "ServiceFilter",
    "TagFilter",
    // connect: proxies, sidecars, locality
    "DestinationServiceName",
    "DestinationServiceID",
    "LocalServiceAddress",
    "LocalServicePort",
    "LocalServiceSocketPath",
    "Mode",
    "Upstreams",
    "MeshGateway",
    "Expose",
    "TransparentProxy",
    "Native",
    "SidecarService",
    "Region",
    "Zone",
    "Config",
    // acl
    "AccessorID",
    "SecretID",
    "Description",
    "Policies",
    "Roles",
    "ServiceIdentities",
    "NodeIdentities",
    "TemplatedPolicies",
    "TemplateName",
    "TemplateVariables",
    "Datacenters",
    "NodeName",
    "Local",
    "AuthMethod",
    "ExpirationTime",
    "ExpirationTTL",
    "Rules",
    "DisplayName",
    "MaxTokenTTL",
    "TokenLocality",
    "Selector",
    "BindType",
    "BindName",
    "BindVars",
    "BearerToken",
    // misc
    "Reason",
    "Token",
];

/// Keys whose values are user data: their inner keys are never rewritten.
const FREE_FORM: &[&str] = &[
    "Meta",
    "NodeMeta",
    "TaggedAddresses",
    "ServiceMeta",
    "Header",
    "ServiceTaggedAddresses",
    "Definition",
    "Config",
    "BindVars",
];

/// Keys whose values are durations: text (`"10s"`) or integer nanoseconds.
const DURATIONS: &[&str] = &[
    "ExpirationTTL",
    "MaxTokenTTL",
    "Interval",
    "Timeout",
    "TTL",
    "DeregisterCriticalServiceAfter",
    "LastContactThreshold",
    "ServerStabilizationTime",
];

fn canonical() -> &'static HashMap<String, &'static str> {
    static TABLE: OnceLock<HashMap<String, &'static str>> = OnceLock::new();
    TABLE.get_or_init(|| FIELDS.iter().map(|f| (fold(f), *f)).collect())
}

/// Lower-case and drop underscores, so `enable_tag_override` meets `EnableTagOverride`.
fn fold(k: &str) -> String {
    k.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Rewrite known keys to their canonical spelling, recursively, leaving free-form maps alone;
/// drop `null` members and turn numeric durations into text (see the module docs).
pub fn canonicalize(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (k, val) in map {
                if val.is_null() {
                    continue;
                }
                let key = canonical()
                    .get(&fold(&k))
                    .map(|c| c.to_string())
                    .unwrap_or(k);
                let val = if FREE_FORM.contains(&key.as_str()) {
                    val
                } else if DURATIONS.contains(&key.as_str()) {
                    duration_text(val)
                } else {
                    canonicalize(val)
                };
                out.insert(key, val);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonicalize).collect()),
        other => other,
    }
}

/// A numeric duration (nanoseconds) as Go duration text; anything else unchanged.
fn duration_text(v: Value) -> Value {
    match &v {
        Value::Number(n) => {
            let nanos = n
                .as_i64()
                .or_else(|| n.as_u64().map(|u| u.min(i64::MAX as u64) as i64))
                .or_else(|| n.as_f64().map(|f| f as i64));
            match nanos {
                Some(ns) => Value::String(crate::duration::format_nanos(ns)),
                None => v,
            }
        }
        _ => v,
    }
}

/// Decode a request body, matching field names case-insensitively.
pub fn from_slice_ci<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    let v: Value = serde_json::from_slice(body)?;
    serde_json::from_value(canonicalize(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(rename_all = "PascalCase")]
    struct Svc {
        #[serde(rename = "ID")]
        id: String,
        name: String,
        enable_tag_override: bool,
        meta: HashMap<String, String>,
    }

    #[test]
    fn any_case_and_snake_case() {
        let s: Svc = from_slice_ci(
            br#"{"id":"a","NAME":"web","enable_tag_override":true,"meta":{"version":"1"}}"#,
        )
        .unwrap();
        assert_eq!(s.id, "a");
        assert_eq!(s.name, "web");
        assert!(s.enable_tag_override);
        // user keys inside Meta keep their spelling
        assert_eq!(s.meta.get("version").unwrap(), "1");
    }

    #[derive(Deserialize, Debug, Default)]
    #[serde(rename_all = "PascalCase", default)]
    struct Check {
        interval: String,
        #[serde(rename = "TTL")]
        ttl: String,
        args: Vec<String>,
        header: HashMap<String, Vec<String>>,
    }

    #[test]
    fn null_is_absent_and_numeric_durations_are_nanoseconds() {
        let c: Check =
            from_slice_ci(br#"{"Interval":10000000000,"ttl":1500000,"Args":null,"Header":null}"#)
                .unwrap();
        assert_eq!(c.interval, "10s");
        assert_eq!(c.ttl, "1.5ms");
        assert!(c.args.is_empty() && c.header.is_empty());
        // Inside free-form maps values are user data: kept as given.
        let v = canonicalize(serde_json::json!({"Meta": {"Interval": 5}, "Tags": null}));
        assert_eq!(v, serde_json::json!({"Meta": {"Interval": 5}}));
    }
}
