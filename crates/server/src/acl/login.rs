//! `acl login` with a `jwt` auth method: check the bearer token's signature and claims
//! against the method's configuration, map its claims to selectable values, and issue a token
//! granting what the method's binding rules bind for them.
//!
//! The method's `Config` keys are Consul's (`JWTValidationPubKeys`, `JWKSURL`, `BoundIssuer`,
//! `BoundAudiences`, `ClaimMappings`, `ListClaimMappings`, `JWTSupportedAlgs`,
//! `ExpirationLeeway`, `NotBeforeLeeway`, `ClockSkewLeeway`). Keys come as PEM, or as a JWKS
//! document read from a `file://` path or an `http://` URL on a loopback address. Signature
//! and time checks are `jsonwebtoken`'s.
//!
//! Binding rules: a rule applies when its `Selector` (bexpr, over `value.<name>` and
//! `list.<name>`) matches, or always when it has none; its `BindName` has `${value.<name>}`
//! filled in, and it binds a service identity, a node identity (in this datacenter), a role or
//! a policy (by name; one that does not exist binds nothing), or a templated policy.

use std::collections::BTreeMap;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use proconsul_state::{
    AclAuthMethodRec, AclBindingRuleRec, AclGrants, AclLink, AclNodeIdentity, AclServiceIdentity,
    AclTemplatedPolicy, WatchSet,
};
use proconsul_types::RpcError;
use serde_json::{Map, Value};

use crate::Server;

/// What a login's claims make selectable: `value.<name>` and `list.<name>`.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Claims {
    pub values: BTreeMap<String, String>,
    pub lists: BTreeMap<String, Vec<String>>,
}

fn invalid(msg: impl std::fmt::Display) -> RpcError {
    RpcError::Internal(format!("Error validating auth method token: {msg}"))
}

fn config_strs(config: &Map<String, Value>, key: &str) -> Vec<String> {
    config
        .get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn config_str<'a>(config: &'a Map<String, Value>, key: &str) -> &'a str {
    config.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A leeway setting (`"30s"` or nanoseconds) in seconds.
fn leeway_secs(config: &Map<String, Value>, key: &str) -> u64 {
    match config.get(key) {
        Some(Value::String(s)) => proconsul_types::duration::parse(s).map_or(0, |d| d.as_secs()),
        Some(Value::Number(n)) => n.as_u64().map_or(0, |ns| ns / 1_000_000_000),
        _ => 0,
    }
}

/// The keys a bearer token may be signed with.
fn keys(config: &Map<String, Value>) -> Result<Vec<DecodingKey>, RpcError> {
    let mut out = Vec::new();
    for pem in config_strs(config, "JWTValidationPubKeys") {
        let key = DecodingKey::from_rsa_pem(pem.as_bytes())
            .or_else(|_| DecodingKey::from_ec_pem(pem.as_bytes()))
            .or_else(|_| DecodingKey::from_ed_pem(pem.as_bytes()))
            .map_err(|e| invalid(format!("error parsing public key: {e}")))?;
        out.push(key);
    }
    let url = config_str(config, "JWKSURL");
    if !url.is_empty() {
        let doc = read_jwks(url)?;
        let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&doc)
            .map_err(|e| invalid(format!("failed to decode keys from {url}: {e}")))?;
        for jwk in &set.keys {
            out.push(
                DecodingKey::from_jwk(jwk)
                    .map_err(|e| invalid(format!("bad key in {url}: {e}")))?,
            );
        }
    }
    if out.is_empty() {
        return Err(invalid("no keys to validate the token with"));
    }
    Ok(out)
}

/// A JWKS document from a local file or a loopback HTTP server (bounded to 1 MiB).
fn read_jwks(url: &str) -> Result<String, RpcError> {
    const MAX: u64 = 1 << 20;
    if let Some(path) = url.strip_prefix("file://") {
        let meta = std::fs::metadata(path).map_err(|e| invalid(format!("{url}: {e}")))?;
        if meta.len() > MAX {
            return Err(invalid(format!("{url}: larger than 1 MiB")));
        }
        return std::fs::read_to_string(path).map_err(|e| invalid(format!("{url}: {e}")));
    }
    let loopback = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split(['/', ':']).next())
        .is_some_and(|host| {
            host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
    if !loopback {
        return Err(invalid(format!(
            "JWKSURL {url:?}: only file:// paths and http:// URLs on a loopback address are supported"
        )));
    }
    let mut resp = ureq::get(url)
        .call()
        .map_err(|e| invalid(format!("fetching keys from {url}: {e}")))?;
    resp.body_mut()
        .with_config()
        .limit(MAX)
        .read_to_string()
        .map_err(|e| invalid(format!("reading keys from {url}: {e}")))
}

fn algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

/// A claim by name, or by JSON pointer (`/nested/claim`) as Consul's claim mappings allow.
fn claim<'a>(claims: &'a Value, name: &str) -> Option<&'a Value> {
    if name.starts_with('/') {
        claims.pointer(name)
    } else {
        claims.get(name)
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Check `bearer` against a `jwt` method's config; its mapped claims.
pub(crate) fn validate_jwt(method: &AclAuthMethodRec, bearer: &str) -> Result<Claims, RpcError> {
    let config = &method.config;
    let header = jsonwebtoken::decode_header(bearer).map_err(invalid)?;
    let supported = config_strs(config, "JWTSupportedAlgs");
    let allowed: Vec<Algorithm> = if supported.is_empty() {
        vec![Algorithm::RS256]
    } else {
        supported.iter().filter_map(|a| algorithm(a)).collect()
    };
    if !allowed.contains(&header.alg) {
        return Err(invalid(format!(
            "token signed with unsupported algorithm {:?}",
            header.alg
        )));
    }
    let mut validation = Validation::new(header.alg);
    validation.algorithms = allowed;
    // One leeway for every time claim: the widest configured (Consul's defaults: 150 s for
    // expiry and not-before, 60 s of clock skew).
    let or = |v: u64, d: u64| if v == 0 { d } else { v };
    validation.leeway = or(leeway_secs(config, "ExpirationLeeway"), 150)
        .max(or(leeway_secs(config, "NotBeforeLeeway"), 150))
        .max(or(leeway_secs(config, "ClockSkewLeeway"), 60));
    validation.validate_nbf = true;
    validation.required_spec_claims.clear();
    let issuer = config_str(config, "BoundIssuer");
    if !issuer.is_empty() {
        validation.set_issuer(&[issuer]);
        validation.required_spec_claims.insert("iss".into());
    }
    let audiences = config_strs(config, "BoundAudiences");
    if audiences.is_empty() {
        validation.validate_aud = false;
    } else {
        validation.set_audience(&audiences);
        validation.required_spec_claims.insert("aud".into());
    }
    let mut last = None;
    let mut claims = None;
    for key in keys(config)? {
        match jsonwebtoken::decode::<Value>(bearer, &key, &validation) {
            Ok(data) => {
                claims = Some(data.claims);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let claims = match (claims, last) {
        (Some(c), _) => c,
        (None, Some(e)) => return Err(invalid(e)),
        (None, None) => return Err(invalid("no keys to validate the token with")),
    };
    let mut out = Claims::default();
    if let Some(Value::Object(m)) = config.get("ClaimMappings") {
        for (from, to) in m {
            if let (Some(v), Some(to)) = (claim(&claims, from).and_then(scalar), to.as_str()) {
                out.values.insert(to.to_string(), v);
            }
        }
    }
    if let Some(Value::Object(m)) = config.get("ListClaimMappings") {
        for (from, to) in m {
            let Some(to) = to.as_str() else { continue };
            let items = match claim(&claims, from) {
                Some(Value::Array(a)) => a.iter().filter_map(scalar).collect(),
                Some(v) => scalar(v).into_iter().collect(),
                None => continue,
            };
            out.lists.insert(to.to_string(), items);
        }
    }
    Ok(out)
}

/// `${value.name}` in `text` filled from the claims; an unknown name is an error.
fn interpolate(text: &str, claims: &Claims) -> Result<String, RpcError> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let end = rest[at..]
            .find('}')
            .ok_or_else(|| invalid(format!("unterminated interpolation in {text:?}")))?;
        let var = rest[at + 2..at + end].trim();
        let value = var
            .strip_prefix("value.")
            .and_then(|n| claims.values.get(n))
            .ok_or_else(|| invalid(format!("cannot interpolate {var:?} in {text:?}")))?;
        out.push_str(value);
        rest = &rest[at + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Does the rule's selector match these claims (a rule without one always does)?
pub(crate) fn selector_matches(selector: &str, claims: &Claims) -> Result<bool, RpcError> {
    if selector.trim().is_empty() {
        return Ok(true);
    }
    let filter = proconsul_filter::Filter::new(selector, proconsul_filter::schemas::BINDING_RULE)
        .map_err(|e| RpcError::Internal(e.to_string()))?;
    let item = serde_json::json!({ "value": claims.values, "list": claims.lists });
    Ok(filter.matches_value(&item))
}

impl Server {
    /// What the binding rules of `method` grant for `claims`.
    pub(crate) fn bind(&self, method: &str, claims: &Claims) -> Result<AclGrants, RpcError> {
        let view = self.inner.store.view();
        let mut ws = WatchSet::new();
        let rules: Vec<AclBindingRuleRec> = view
            .acl_binding_rules(&mut ws)
            .1
            .into_iter()
            .filter(|r| r.auth_method == method)
            .collect();
        let mut g = AclGrants::default();
        for rule in rules {
            if !selector_matches(&rule.selector, claims)? {
                continue;
            }
            let name = interpolate(&rule.bind_name, claims)?;
            match rule.bind_type.as_str() {
                "service" => g.service_identities.push(AclServiceIdentity {
                    service_name: name,
                    datacenters: Vec::new(),
                }),
                "node" => g.node_identities.push(AclNodeIdentity {
                    node_name: name,
                    datacenter: self.inner.opts.datacenter.clone(),
                }),
                "role" => {
                    if let Some(r) = view.acl_role_by_name(&mut ws, &name).1 {
                        g.roles.push(AclLink {
                            id: r.id,
                            name: r.name,
                        });
                    }
                }
                "policy" => {
                    if let Some(p) = view.acl_policy_by_name(&mut ws, &name).1 {
                        g.policies.push(AclLink {
                            id: p.id,
                            name: p.name,
                        });
                    }
                }
                "templated-policy" => {
                    let var = match rule
                        .bind_vars
                        .as_ref()
                        .and_then(|v| v.get("Name").or_else(|| v.get("name")))
                    {
                        Some(Value::String(s)) => Some(interpolate(s, claims)?),
                        _ => None,
                    };
                    g.templated_policies.push(AclTemplatedPolicy {
                        template_name: name,
                        name: var,
                        datacenters: Vec::new(),
                    });
                }
                _ => {}
            }
        }
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_names_interpolate_claim_values() {
        let mut c = Claims::default();
        c.values.insert("service".into(), "web".into());
        assert_eq!(interpolate("svc-${value.service}", &c).unwrap(), "svc-web");
        assert!(interpolate("${value.nope}", &c).is_err());
        assert!(interpolate("${value.service", &c).is_err());
    }

    #[test]
    fn selectors_read_values_and_lists() {
        let mut c = Claims::default();
        c.values.insert("service".into(), "web".into());
        c.lists
            .insert("groups".into(), vec!["admins".into(), "dev".into()]);
        assert!(selector_matches("", &c).unwrap());
        assert!(selector_matches("value.service == web", &c).unwrap());
        assert!(selector_matches("\"admins\" in list.groups", &c).unwrap());
        assert!(!selector_matches("\"ops\" in list.groups", &c).unwrap());
        assert!(!selector_matches("value.service == db", &c).unwrap());
    }
}
