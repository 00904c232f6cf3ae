//! `/v1/acl/*` (bootstrap, tokens, policies, roles, auth methods, binding rules, login and
//! logout, templated policies) and `PUT /v1/agent/token/:kind`, the calls behind
//! `proconsul acl …`, `login` and `logout`.
//!
//! Reads follow the Go client's (`api/acl.go`) split: policy, role, auth-method and
//! binding-rule reads answer `None` on a 404, while token reads treat every non-200 as an
//! error — the servers answer 403 for a token that does not exist, and scripts see that text.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use proconsul_types::{
    AclAuthMethod, AclBindingRule, AclLoginParams, AclPolicy, AclRole, AclToken,
};

use crate::client::Method;
use crate::{encode, Client, QueryOptions, Result};

/// Consul's `ACLTemplatedPolicyResponse`: one builtin templated policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclTemplatedPolicyResponse {
    pub template_name: String,
    pub schema: String,
    pub template: String,
    pub description: String,
}

/// Decode an ACL answer. Consul (and proconsul, where it copies Consul) writes Go's nil
/// slices and maps as `null` (`"Datacenters": null` in policy list stubs); such fields are
/// dropped first so they read as their defaults. An empty body or `null` is `T::default()`.
fn decode<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let mut v: serde_json::Value = serde_json::from_slice(body)?;
    if v.is_null() {
        return Ok(T::default());
    }
    drop_nulls(&mut v);
    Ok(serde_json::from_value(v)?)
}

/// Remove every object member whose value is `null`, at any depth.
fn drop_nulls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(drop_nulls);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

impl Client {
    /// A PUT of `body` as JSON, decoding the answer.
    fn acl_put<B: Serialize, T: DeserializeOwned + Default>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let body = serde_json::to_vec(body)?;
        decode(&self.put(path, &[], &body)?)
    }

    /// A GET of one object: `None` on a 404 (the Go client's `requireNotFoundOrOK`).
    fn acl_get_opt<T: DeserializeOwned + Default>(&self, path: &str) -> Result<Option<T>> {
        let reply = self.get(path, &[], &QueryOptions::default())?;
        if reply.status == 404 {
            return Ok(None);
        }
        Ok(Some(decode(&reply.require_ok()?.body)?))
    }

    /// A GET whose non-200 answers are errors.
    fn acl_get<T: DeserializeOwned + Default>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T> {
        decode(
            &self
                .get(path, query, &QueryOptions::default())?
                .require_ok()?
                .body,
        )
    }

    // ---- bootstrap ----

    /// `PUT /v1/acl/bootstrap`: the first management token, once per cluster.
    pub fn acl_bootstrap(&self) -> Result<AclToken> {
        decode(&self.put("/v1/acl/bootstrap", &[], b"")?)
    }

    // ---- tokens ----

    /// `PUT /v1/acl/token`.
    pub fn acl_token_create(&self, token: &AclToken) -> Result<AclToken> {
        self.acl_put("/v1/acl/token", token)
    }

    /// `PUT /v1/acl/token/:accessor` (the accessor is `token.accessor_id`).
    pub fn acl_token_update(&self, token: &AclToken) -> Result<AclToken> {
        let path = format!("/v1/acl/token/{}", encode::path(&token.accessor_id));
        self.acl_put(&path, token)
    }

    /// `GET /v1/acl/token/:accessor`; a missing token is an error (403 from the servers).
    pub fn acl_token_read(&self, accessor: &str) -> Result<AclToken> {
        let path = format!("/v1/acl/token/{}", encode::path(accessor));
        self.acl_get(&path, &[])
    }

    /// `GET /v1/acl/token/self`: the token the client sends.
    pub fn acl_token_read_self(&self) -> Result<AclToken> {
        self.acl_get("/v1/acl/token/self", &[])
    }

    /// `PUT /v1/acl/token/:accessor/clone`: a copy with new IDs and `description`.
    pub fn acl_token_clone(&self, accessor: &str, description: &str) -> Result<AclToken> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Body<'a> {
            description: &'a str,
        }
        let path = format!("/v1/acl/token/{}/clone", encode::path(accessor));
        self.acl_put(&path, &Body { description })
    }

    /// `DELETE /v1/acl/token/:accessor`.
    pub fn acl_token_delete(&self, accessor: &str) -> Result<()> {
        let path = format!("/v1/acl/token/{}", encode::path(accessor));
        self.delete(&path, &[]).map(drop)
    }

    /// `GET /v1/acl/tokens`, optionally filtered (`policy`, `role`, `authmethod`,
    /// `servicename`; one at a time).
    pub fn acl_token_list(&self, filter: &[(&str, String)]) -> Result<Vec<AclToken>> {
        self.acl_get("/v1/acl/tokens", filter)
    }

    // ---- policies ----

    /// `PUT /v1/acl/policy`.
    pub fn acl_policy_create(&self, policy: &AclPolicy) -> Result<AclPolicy> {
        self.acl_put("/v1/acl/policy", policy)
    }

    /// `PUT /v1/acl/policy/:id` (the ID is `policy.id`).
    pub fn acl_policy_update(&self, policy: &AclPolicy) -> Result<AclPolicy> {
        let path = format!("/v1/acl/policy/{}", encode::path(&policy.id));
        self.acl_put(&path, policy)
    }

    /// `GET /v1/acl/policy/:id`; `None` when there is no such policy.
    pub fn acl_policy_read(&self, id: &str) -> Result<Option<AclPolicy>> {
        self.acl_get_opt(&format!("/v1/acl/policy/{}", encode::path(id)))
    }

    /// `GET /v1/acl/policy/name/:name`; `None` when there is no such policy.
    pub fn acl_policy_read_by_name(&self, name: &str) -> Result<Option<AclPolicy>> {
        self.acl_get_opt(&format!("/v1/acl/policy/name/{}", encode::path(name)))
    }

    /// `DELETE /v1/acl/policy/:id`.
    pub fn acl_policy_delete(&self, id: &str) -> Result<()> {
        let path = format!("/v1/acl/policy/{}", encode::path(id));
        self.delete(&path, &[]).map(drop)
    }

    /// `GET /v1/acl/policies` (stubs without `Rules`).
    pub fn acl_policy_list(&self) -> Result<Vec<AclPolicy>> {
        self.acl_get("/v1/acl/policies", &[])
    }

    // ---- roles ----

    /// `PUT /v1/acl/role`.
    pub fn acl_role_create(&self, role: &AclRole) -> Result<AclRole> {
        self.acl_put("/v1/acl/role", role)
    }

    /// `PUT /v1/acl/role/:id` (the ID is `role.id`).
    pub fn acl_role_update(&self, role: &AclRole) -> Result<AclRole> {
        let path = format!("/v1/acl/role/{}", encode::path(&role.id));
        self.acl_put(&path, role)
    }

    /// `GET /v1/acl/role/:id`; `None` when there is no such role.
    pub fn acl_role_read(&self, id: &str) -> Result<Option<AclRole>> {
        self.acl_get_opt(&format!("/v1/acl/role/{}", encode::path(id)))
    }

    /// `GET /v1/acl/role/name/:name`; `None` when there is no such role.
    pub fn acl_role_read_by_name(&self, name: &str) -> Result<Option<AclRole>> {
        self.acl_get_opt(&format!("/v1/acl/role/name/{}", encode::path(name)))
    }

    /// `DELETE /v1/acl/role/:id`.
    pub fn acl_role_delete(&self, id: &str) -> Result<()> {
        let path = format!("/v1/acl/role/{}", encode::path(id));
        self.delete(&path, &[]).map(drop)
    }

    /// `GET /v1/acl/roles`.
    pub fn acl_role_list(&self) -> Result<Vec<AclRole>> {
        self.acl_get("/v1/acl/roles", &[])
    }

    // ---- auth methods ----

    /// `PUT /v1/acl/auth-method`.
    pub fn acl_auth_method_create(&self, method: &AclAuthMethod) -> Result<AclAuthMethod> {
        self.acl_put("/v1/acl/auth-method", method)
    }

    /// `PUT /v1/acl/auth-method/:name` (the name is `method.name`).
    pub fn acl_auth_method_update(&self, method: &AclAuthMethod) -> Result<AclAuthMethod> {
        let path = format!("/v1/acl/auth-method/{}", encode::path(&method.name));
        self.acl_put(&path, method)
    }

    /// `GET /v1/acl/auth-method/:name`; `None` when there is no such method.
    pub fn acl_auth_method_read(&self, name: &str) -> Result<Option<AclAuthMethod>> {
        self.acl_get_opt(&format!("/v1/acl/auth-method/{}", encode::path(name)))
    }

    /// `DELETE /v1/acl/auth-method/:name`.
    pub fn acl_auth_method_delete(&self, name: &str) -> Result<()> {
        let path = format!("/v1/acl/auth-method/{}", encode::path(name));
        self.delete(&path, &[]).map(drop)
    }

    /// `GET /v1/acl/auth-methods` (stubs without `Config`).
    pub fn acl_auth_method_list(&self) -> Result<Vec<AclAuthMethod>> {
        self.acl_get("/v1/acl/auth-methods", &[])
    }

    // ---- binding rules ----

    /// `PUT /v1/acl/binding-rule`.
    pub fn acl_binding_rule_create(&self, rule: &AclBindingRule) -> Result<AclBindingRule> {
        self.acl_put("/v1/acl/binding-rule", rule)
    }

    /// `PUT /v1/acl/binding-rule/:id` (the ID is `rule.id`).
    pub fn acl_binding_rule_update(&self, rule: &AclBindingRule) -> Result<AclBindingRule> {
        let path = format!("/v1/acl/binding-rule/{}", encode::path(&rule.id));
        self.acl_put(&path, rule)
    }

    /// `GET /v1/acl/binding-rule/:id`; `None` when there is no such rule.
    pub fn acl_binding_rule_read(&self, id: &str) -> Result<Option<AclBindingRule>> {
        self.acl_get_opt(&format!("/v1/acl/binding-rule/{}", encode::path(id)))
    }

    /// `DELETE /v1/acl/binding-rule/:id`.
    pub fn acl_binding_rule_delete(&self, id: &str) -> Result<()> {
        let path = format!("/v1/acl/binding-rule/{}", encode::path(id));
        self.delete(&path, &[]).map(drop)
    }

    /// `GET /v1/acl/binding-rules`, of one auth method when `method` is not empty.
    pub fn acl_binding_rule_list(&self, method: &str) -> Result<Vec<AclBindingRule>> {
        let q: Vec<(&str, String)> = if method.is_empty() {
            Vec::new()
        } else {
            vec![("authmethod", method.to_string())]
        };
        self.acl_get("/v1/acl/binding-rules", &q)
    }

    // ---- login / logout ----

    /// `POST /v1/acl/login`: a bearer token exchanged for a new ACL token. Send it from a
    /// client without a token of its own.
    pub fn acl_login(&self, params: &AclLoginParams) -> Result<AclToken> {
        let body = serde_json::to_vec(params)?;
        let reply = self
            .request(Method::Post, "/v1/acl/login", &[], Some(&body))?
            .require_ok()?;
        decode(&reply.body)
    }

    /// `POST /v1/acl/logout`: destroy the client's own (login-issued) token.
    pub fn acl_logout(&self) -> Result<()> {
        self.request(Method::Post, "/v1/acl/logout", &[], Some(b""))?
            .require_ok()
            .map(drop)
    }

    // ---- templated policies ----

    /// `GET /v1/acl/templated-policies`, keyed by template name.
    pub fn acl_templated_policy_list(
        &self,
    ) -> Result<BTreeMap<String, AclTemplatedPolicyResponse>> {
        self.acl_get("/v1/acl/templated-policies", &[])
    }

    /// `GET /v1/acl/templated-policy/name/:name`.
    pub fn acl_templated_policy_read(&self, name: &str) -> Result<AclTemplatedPolicyResponse> {
        let path = format!("/v1/acl/templated-policy/name/{}", encode::path(name));
        self.acl_get(&path, &[])
    }

    /// `POST /v1/acl/templated-policy/preview/:name`: the policy the template renders with
    /// `name` as its `name` variable (empty when the template takes none).
    pub fn acl_templated_policy_preview(&self, template: &str, name: &str) -> Result<AclPolicy> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Vars<'a> {
            #[serde(skip_serializing_if = "str::is_empty")]
            name: &'a str,
        }
        let body = serde_json::to_vec(&Vars { name })?;
        let path = format!(
            "/v1/acl/templated-policy/preview/{}",
            encode::path(template)
        );
        let reply = self
            .request(Method::Post, &path, &[], Some(&body))?
            .require_ok()?;
        decode(&reply.body)
    }

    // ---- the agent's own tokens ----

    /// `PUT /v1/agent/token/:kind`: replace one of the agent's tokens (`default`, `agent`,
    /// `agent_recovery`, `replication`, `dns`, `config_file_service_registration`).
    pub fn agent_set_token(&self, kind: &str, token: &str) -> Result<()> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Body<'a> {
            token: &'a str,
        }
        let body = serde_json::to_vec(&Body { token })?;
        let path = format!("/v1/agent/token/{}", encode::path(kind));
        self.put(&path, &[], &body).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use crate::testserver::{serve_once, Canned};
    use crate::{Client, Config};
    use proconsul_types::{AclLink, AclPolicy, AclToken};

    fn client(addr: String) -> Client {
        Client::new(Config {
            address: addr,
            token: Some("root".into()),
            ..Config::default()
        })
        .unwrap()
    }

    #[test]
    fn token_create_sends_links_and_decodes_the_answer() {
        let (addr, req) = serve_once(Canned::ok(
            r#"{"AccessorID":"a1","SecretID":"s1","Policies":[{"ID":"p1","Name":"web"}],"Local":false,"CreateTime":"2026-01-02T03:04:05.5Z","Hash":"","CreateIndex":7,"ModifyIndex":7}"#,
        ));
        let t = client(addr)
            .acl_token_create(&AclToken {
                description: "d".into(),
                policies: vec![AclLink {
                    id: String::new(),
                    name: "web".into(),
                }],
                ..AclToken::default()
            })
            .unwrap();
        assert_eq!((t.accessor_id.as_str(), t.create_index), ("a1", 7));
        let req = req.join().unwrap();
        assert!(req.starts_with("PUT /v1/acl/token HTTP/1.1"), "{req}");
        assert!(
            req.contains(r#""Policies":[{"ID":"","Name":"web"}]"#),
            "{req}"
        );
    }

    #[test]
    fn policy_read_by_name_is_none_on_404() {
        let (addr, req) = serve_once(Canned::status(
            404,
            "Requested policy does not exist: ACL not found",
        ));
        assert_eq!(
            client(addr).acl_policy_read_by_name("a b").unwrap(),
            None::<AclPolicy>
        );
        assert!(req
            .join()
            .unwrap()
            .starts_with("GET /v1/acl/policy/name/a%20b HTTP/1.1"));
    }

    #[test]
    fn token_read_403_is_an_error_with_the_servers_text() {
        let (addr, _req) = serve_once(Canned::status(403, "token does not exist: ACL not found"));
        let err = client(addr).acl_token_read("nope").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Unexpected response code: 403 (token does not exist: ACL not found)"
        );
    }

    #[test]
    fn go_nulls_read_as_defaults() {
        let (addr, _req) = serve_once(Canned::ok(
            r#"[{"ID":"p1","Name":"global-management","Description":"","Datacenters":null,"Hash":"","CreateIndex":2,"ModifyIndex":2}]"#,
        ));
        let list = client(addr).acl_policy_list().unwrap();
        assert_eq!(list[0].name, "global-management");
        assert!(list[0].datacenters.is_empty());
        let (addr, _req) = serve_once(Canned::ok("null"));
        assert!(client(addr).acl_role_list().unwrap().is_empty());
    }

    #[test]
    fn agent_token_body() {
        let (addr, req) = serve_once(Canned::ok(""));
        client(addr).agent_set_token("default", "t0").unwrap();
        let req = req.join().unwrap();
        assert!(
            req.starts_with("PUT /v1/agent/token/default HTTP/1.1"),
            "{req}"
        );
        assert!(req.ends_with(r#"{"Token":"t0"}"#), "{req}");
    }
}
