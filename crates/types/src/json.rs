//! Case-insensitive JSON input, the way Consul's decoder accepts it.
//!
//! Consul decodes request bodies with mapstructure, which matches keys to fields without regard to
//! case (and accepts snake_case for many fields). Clients rely on it: py-consul sends `{"name": ..}`,
//! others send `{"Name": ..}`. serde matches exactly, so before decoding we rewrite every object key
//! that names a known API field to its canonical PascalCase spelling. Values of free-form maps
//! (`Meta`, `NodeMeta`, `TaggedAddresses`, `Header`, ...) are user data and are left untouched.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Every field name the API takes as input, in canonical spelling.
const FIELDS: &[&str] = &[
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

/// Rewrite known keys to their canonical spelling, recursively, leaving free-form maps alone.
pub fn canonicalize(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (k, val) in map {
                let key = canonical()
                    .get(&fold(&k))
                    .map(|c| c.to_string())
                    .unwrap_or(k);
                let val = if FREE_FORM.contains(&key.as_str()) {
                    val
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
}
