//! `/v1/acl/*`: bootstrap, tokens, policies, roles, auth methods, binding rules, login and
//! logout, templated policies, replication status. Each handler is Consul's HTTP part (URL vs
//! body IDs, 404s on reads and deletes); the servers do the rest behind `ACL.*` calls, and
//! check `acl:read`/`acl:write` at `Server::call`.

use axum::body::Body;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::Router;
use serde::Serialize;

use super::{decode, decode_or_default, read_body, St, MAX_BODY};
use crate::params::Params;
use crate::reply::{self, Reply};
use crate::Backend;
use proconsul_types::*;

pub(crate) fn routes<B: Backend>() -> Router<std::sync::Arc<B>> {
    Router::new()
        .route("/v1/acl/bootstrap", put(bootstrap::<B>))
        .route("/v1/acl/replication", get(replication::<B>))
        .route("/v1/acl/tokens", get(token_list::<B>))
        .route("/v1/acl/token", put(token_create::<B>))
        .route("/v1/acl/token/self", get(token_self::<B>))
        .route(
            "/v1/acl/token/{id}",
            get(token_read::<B>)
                .put(token_update::<B>)
                .delete(token_delete::<B>),
        )
        .route("/v1/acl/token/{id}/clone", put(token_clone::<B>))
        .route("/v1/acl/policies", get(policy_list::<B>))
        .route("/v1/acl/policy", put(policy_create::<B>))
        .route(
            "/v1/acl/policy/{id}",
            get(policy_read::<B>)
                .put(policy_update::<B>)
                .delete(policy_delete::<B>),
        )
        .route("/v1/acl/policy/name/{name}", get(policy_by_name::<B>))
        .route("/v1/acl/roles", get(role_list::<B>))
        .route("/v1/acl/role", put(role_create::<B>))
        .route(
            "/v1/acl/role/{id}",
            get(role_read::<B>)
                .put(role_update::<B>)
                .delete(role_delete::<B>),
        )
        .route("/v1/acl/role/name/{name}", get(role_by_name::<B>))
        .route("/v1/acl/auth-methods", get(method_list::<B>))
        .route("/v1/acl/auth-method", put(method_create::<B>))
        .route(
            "/v1/acl/auth-method/{name}",
            get(method_read::<B>)
                .put(method_update::<B>)
                .delete(method_delete::<B>),
        )
        .route("/v1/acl/binding-rules", get(rule_list::<B>))
        .route("/v1/acl/binding-rule", put(rule_create::<B>))
        .route(
            "/v1/acl/binding-rule/{id}",
            get(rule_read::<B>)
                .put(rule_update::<B>)
                .delete(rule_delete::<B>),
        )
        .route("/v1/acl/login", post(login::<B>))
        .route("/v1/acl/logout", post(logout::<B>))
        .route("/v1/acl/templated-policies", get(templated_list::<B>))
        .route(
            "/v1/acl/templated-policy/name/{*name}",
            get(templated_read::<B>),
        )
        .route(
            "/v1/acl/templated-policy/preview/{*name}",
            post(templated_preview::<B>),
        )
}

type Res = Result<Reply, RpcError>;

fn pretty(q: &Option<String>) -> bool {
    Params::parse(q.as_deref()).pretty()
}

fn ok_true() -> Reply {
    reply::json(&true, false)
}

/// A read of one object: 404 with Consul's text when there is none.
fn one<T: Serialize>(kind: &str, found: (QueryMeta, Option<T>), pretty: bool) -> Res {
    match found.1 {
        Some(v) => Ok(reply::json_meta(&v, &found.0, pretty)),
        None => {
            let mut r = reply::text(
                StatusCode::NOT_FOUND,
                format!("Requested {kind} does not exist: ACL not found"),
            );
            reply::add_meta(&mut r, &found.0);
            Ok(r)
        }
    }
}

/// `PUT`'s body, where an empty body is an error of its own.
async fn body<T: serde::de::DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: Body,
    what: &str,
) -> Result<T, RpcError> {
    let bytes = read_body(headers, body, MAX_BODY).await?;
    decode_or_default(&bytes).map_err(|e| {
        RpcError::BadRequest(
            e.to_string()
                .replace("Request decode failed", &format!("{what} decoding failed")),
        )
    })
}

/// The bootstrap answer: the token, led by `ID` (its secret, for old clients).
#[derive(Serialize)]
struct Bootstrapped {
    #[serde(rename = "ID")]
    id: String,
    #[serde(flatten)]
    token: AclToken,
}

async fn bootstrap<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(
        async {
            let token = st.call(AclBootstrap { reset_index: 0 }).await?;
            Ok(reply::json(
                &Bootstrapped {
                    id: token.secret_id.clone(),
                    token,
                },
                pretty(&q),
            ))
        }
        .await,
    )
}

async fn replication<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(
        async {
            // Needs no permission; a single-datacenter cluster replicates from nowhere.
            if !st.acl_enabled() {
                return Err(RpcError::Unauthorized("ACL support disabled".into()));
            }
            Ok(reply::json(&st.acl_replication(), pretty(&q)))
        }
        .await,
    )
}

async fn token_list<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(
        async {
            let p = Params::parse(q.as_deref());
            let req = AclTokenList {
                policy: p.get("policy").unwrap_or("").to_string(),
                role: p.get("role").unwrap_or("").to_string(),
                auth_method: p.get("authmethod").unwrap_or("").to_string(),
                service_name: p.get("servicename").unwrap_or("").to_string(),
            };
            let given = [&req.policy, &req.role, &req.auth_method, &req.service_name]
                .iter()
                .filter(|s| !s.is_empty())
                .count();
            if given > 1 {
                return Err(RpcError::Internal(
                    "can only filter by one of policy, role, serviceName, or methodName at a time"
                        .into(),
                ));
            }
            let (meta, list) = st.call(req).await?;
            Ok(reply::json_meta(&list, &meta, p.pretty()))
        }
        .await,
    )
}

async fn token_create<B: Backend>(
    st: St<B>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    b: Body,
) -> Reply {
    reply::or_error(
        async {
            let token: AclToken = body(&headers, b, "Token").await?;
            let t = st
                .call(AclTokenSet {
                    datacenter: String::new(),
                    token,
                    create: true,
                })
                .await?;
            Ok(reply::json(&t, pretty(&q)))
        }
        .await,
    )
}

async fn token_update<B: Backend>(
    st: St<B>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    b: Body,
) -> Reply {
    reply::or_error(
        async {
            let mut token: AclToken = body(&headers, b, "Token").await?;
            if token.accessor_id.is_empty() {
                token.accessor_id = id;
            } else if token.accessor_id != id {
                return Err(RpcError::BadRequest(
                    "Token Accessor ID in URL and payload do not match".into(),
                ));
            }
            let t = st
                .call(AclTokenSet {
                    datacenter: String::new(),
                    token,
                    create: false,
                })
                .await?;
            Ok(reply::json(&t, pretty(&q)))
        }
        .await,
    )
}

/// Token reads answer 403 when there is no such token (Consul's server errs, not the HTTP layer).
fn token_found(found: (QueryMeta, Option<AclToken>), pretty: bool) -> Res {
    match found.1 {
        Some(t) => Ok(reply::json_meta(&t, &found.0, pretty)),
        None => Err(RpcError::PermissionDenied(
            "token does not exist: ACL not found".into(),
        )),
    }
}

async fn token_read<B: Backend>(st: St<B>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(
        async {
            let found = st
                .call(AclTokenRead {
                    id,
                    by_secret: false,
                })
                .await?;
            token_found(found, pretty(&q))
        }
        .await,
    )
}

async fn token_self<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(
        async {
            let secret = crate::caller_token()
                .map(|t| t.to_string())
                .unwrap_or_default();
            let found = st
                .call(AclTokenRead {
                    id: secret,
                    by_secret: true,
                })
                .await?;
            token_found(found, pretty(&q))
        }
        .await,
    )
}

async fn token_delete<B: Backend>(st: St<B>, Path(id): Path<String>) -> Reply {
    reply::or_error(
        async {
            st.call(AclTokenDelete {
                datacenter: String::new(),
                accessor_id: id,
            })
            .await?;
            Ok(ok_true())
        }
        .await,
    )
}

#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CloneBody {
    description: String,
}

async fn token_clone<B: Backend>(
    st: St<B>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    b: Body,
) -> Reply {
    reply::or_error(
        async {
            let c: CloneBody = body(&headers, b, "Token").await?;
            let t = st
                .call(AclTokenClone {
                    datacenter: String::new(),
                    accessor_id: id,
                    description: c.description,
                })
                .await
                .map_err(|e| match e {
                    RpcError::Internal(m) if m.starts_with("Cannot find token") => {
                        RpcError::PermissionDenied("token does not exist: ACL not found".into())
                    }
                    other => other,
                })?;
            Ok(reply::json(&t, pretty(&q)))
        }
        .await,
    )
}

async fn policy_list<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(
        async {
            let (meta, list) = st.call(AclPolicyList {}).await?;
            Ok(reply::json_meta(&list, &meta, pretty(&q)))
        }
        .await,
    )
}

async fn policy_create<B: Backend>(
    st: St<B>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    b: Body,
) -> Reply {
    reply::or_error(
        async {
            let policy: AclPolicy = body(&headers, b, "Policy").await?;
            if !policy.id.is_empty() {
                return Err(RpcError::BadRequest(
                    "Cannot specify the ID when creating a new policy".into(),
                ));
            }
            let p = st
                .call(AclPolicySet {
                    datacenter: String::new(),
                    policy,
                    create: true,
                })
                .await?;
            Ok(reply::json(&p, pretty(&q)))
        }
        .await,
    )
}

async fn policy_update<B: Backend>(
    st: St<B>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    b: Body,
) -> Reply {
    reply::or_error(
        async {
            let mut policy: AclPolicy = body(&headers, b, "Policy").await?;
            if policy.id.is_empty() {
                policy.id = id;
            } else if policy.id != id {
                return Err(RpcError::BadRequest(
                    "Policy ID in URL and payload do not match".into(),
                ));
            }
            let p = st
                .call(AclPolicySet {
                    datacenter: String::new(),
                    policy,
                    create: false,
                })
                .await?;
            Ok(reply::json(&p, pretty(&q)))
        }
        .await,
    )
}

async fn policy_read<B: Backend>(
    st: St<B>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    reply::or_error(
        async {
            let found = st
                .call(AclPolicyRead {
                    id,
                    name: String::new(),
                })
                .await?;
            one("policy", found, pretty(&q))
        }
        .await,
    )
}

async fn policy_by_name<B: Backend>(
    st: St<B>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    reply::or_error(
        async {
            let found = st
                .call(AclPolicyRead {
                    id: String::new(),
                    name,
                })
                .await?;
            one("policy", found, pretty(&q))
        }
        .await,
    )
}

async fn policy_delete<B: Backend>(st: St<B>, Path(id): Path<String>) -> Reply {
    reply::or_error(
        async {
            st.call(AclPolicyDelete {
                datacenter: String::new(),
                id,
            })
            .await?;
            Ok(ok_true())
        }
        .await,
    )
}

async fn role_list<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(
        async {
            let p = Params::parse(q.as_deref());
            let policy = p.get("policy").unwrap_or("").to_string();
            let (meta, list) = st.call(AclRoleList { policy }).await?;
            Ok(reply::json_meta(&list, &meta, p.pretty()))
        }
        .await,
    )
}

async fn role_create<B: Backend>(
    st: St<B>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    b: Body,
) -> Reply {
    reply::or_error(
        async {
            let role: AclRole = body(&headers, b, "Role").await?;
            if !role.id.is_empty() {
                return Err(RpcError::BadRequest(
                    "Role ID in URL and payload do not match".into(),
                ));
            }
            let r = st
                .call(AclRoleSet {
                    datacenter: String::new(),
                    role,
                    create: true,
                })
                .await?;
            Ok(reply::json(&r, pretty(&q)))
        }
        .await,
    )
}

async fn role_update<B: Backend>(
    st: St<B>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    b: Body,
) -> Reply {
    reply::or_error(
        async {
            let mut role: AclRole = body(&headers, b, "Role").await?;
            if role.id.is_empty() {
                role.id = id;
            } else if role.id != id {
                return Err(RpcError::BadRequest(
                    "Role ID in URL and payload do not match".into(),
                ));
            }
            let r = st
                .call(AclRoleSet {
                    datacenter: String::new(),
                    role,
                    create: false,
                })
                .await?;
            Ok(reply::json(&r, pretty(&q)))
        }
        .await,
    )
}

async fn role_read<B: Backend>(st: St<B>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(
        async {
            let found = st
                .call(AclRoleRead {
                    id,
                    name: String::new(),
                })
                .await?;
            one("role", found, pretty(&q))
        }
        .await,
    )
}

async fn role_by_name<B: Backend>(
    st: St<B>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    reply::or_error(
        async {
            let found = st
                .call(AclRoleRead {
                    id: String::new(),
                    name,
                })
                .await?;
            one("role", found, pretty(&q))
        }
        .await,
    )
}

async fn role_delete<B: Backend>(st: St<B>, Path(id): Path<String>) -> Reply {
    reply::or_error(
        async {
            st.call(AclRoleDelete {
                datacenter: String::new(),
                id,
            })
            .await?;
            Ok(ok_true())
        }
        .await,
    )
}

async fn method_list<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(
        async {
            let (meta, list) = st.call(AclAuthMethodList {}).await?;
            Ok(reply::json_meta(&list, &meta, pretty(&q)))
        }
        .await,
    )
}

async fn method_create<B: Backend>(
    st: St<B>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    b: Body,
) -> Reply {
    reply::or_error(
        async {
            let method: AclAuthMethod = body(&headers, b, "AuthMethod").await?;
            let m = st
                .call(AclAuthMethodSet {
                    method,
                    create: true,
                })
                .await?;
            Ok(reply::json(&m, pretty(&q)))
        }
        .await,
    )
}

async fn method_update<B: Backend>(
    st: St<B>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    b: Body,
) -> Reply {
    reply::or_error(
        async {
            let mut method: AclAuthMethod = body(&headers, b, "AuthMethod").await?;
            if method.name.is_empty() {
                method.name = name;
            } else if method.name != name {
                return Err(RpcError::BadRequest(
                    "AuthMethod Name in URL and payload do not match".into(),
                ));
            }
            let m = st
                .call(AclAuthMethodSet {
                    method,
                    create: false,
                })
                .await?;
            Ok(reply::json(&m, pretty(&q)))
        }
        .await,
    )
}

async fn method_read<B: Backend>(
    st: St<B>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    reply::or_error(
        async {
            let found = st.call(AclAuthMethodRead { name }).await?;
            one("auth method", found, pretty(&q))
        }
        .await,
    )
}

async fn method_delete<B: Backend>(st: St<B>, Path(name): Path<String>) -> Reply {
    reply::or_error(
        async {
            st.call(AclAuthMethodDelete { name }).await?;
            Ok(ok_true())
        }
        .await,
    )
}

async fn rule_list<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(
        async {
            let p = Params::parse(q.as_deref());
            let auth_method = p.get("authmethod").unwrap_or("").to_string();
            let (meta, list) = st.call(AclBindingRuleList { auth_method }).await?;
            Ok(reply::json_meta(&list, &meta, p.pretty()))
        }
        .await,
    )
}

async fn rule_create<B: Backend>(
    st: St<B>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    b: Body,
) -> Reply {
    reply::or_error(
        async {
            let rule: AclBindingRule = body(&headers, b, "BindingRule").await?;
            if !rule.id.is_empty() {
                return Err(RpcError::BadRequest(
                    "BindingRule ID in URL and payload do not match".into(),
                ));
            }
            let r = st.call(AclBindingRuleSet { rule, create: true }).await?;
            Ok(reply::json(&r, pretty(&q)))
        }
        .await,
    )
}

async fn rule_update<B: Backend>(
    st: St<B>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    b: Body,
) -> Reply {
    reply::or_error(
        async {
            let mut rule: AclBindingRule = body(&headers, b, "BindingRule").await?;
            if rule.id.is_empty() {
                rule.id = id;
            } else if rule.id != id {
                return Err(RpcError::BadRequest(
                    "BindingRule ID in URL and payload do not match".into(),
                ));
            }
            let r = st
                .call(AclBindingRuleSet {
                    rule,
                    create: false,
                })
                .await?;
            Ok(reply::json(&r, pretty(&q)))
        }
        .await,
    )
}

async fn rule_read<B: Backend>(st: St<B>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(
        async {
            let found = st.call(AclBindingRuleRead { id }).await?;
            one("binding rule", found, pretty(&q))
        }
        .await,
    )
}

async fn rule_delete<B: Backend>(st: St<B>, Path(id): Path<String>) -> Reply {
    reply::or_error(
        async {
            st.call(AclBindingRuleDelete { id }).await?;
            Ok(ok_true())
        }
        .await,
    )
}

async fn login<B: Backend>(st: St<B>, RawQuery(q): RawQuery, headers: HeaderMap, b: Body) -> Reply {
    reply::or_error(
        async {
            let bytes = read_body(&headers, b, MAX_BODY).await?;
            let params: AclLoginParams = decode(&bytes).map_err(|e| {
                RpcError::BadRequest(
                    e.to_string()
                        .replace("Request decode failed", "Failed to decode request body"),
                )
            })?;
            let t = st.call(AclLogin { params }).await?;
            Ok(reply::json(&t, pretty(&q)))
        }
        .await,
    )
}

async fn logout<B: Backend>(st: St<B>) -> Reply {
    reply::or_error(
        async {
            st.call(AclLogout {}).await?;
            Ok(ok_true())
        }
        .await,
    )
}

/// Consul's `ACLTemplatedPolicyResponse`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TemplatedPolicyOut {
    template_name: &'static str,
    schema: &'static str,
    template: &'static str,
    description: &'static str,
}

/// The JSON schema of a template that takes the `name` variable.
const NAME_SCHEMA: &str = "{\n  \"type\": \"object\",\n  \"properties\": {\n    \"name\": { \"type\": \"string\", \"$ref\": \"#/definitions/min-length-one\" }\n  },\n  \"required\": [\"name\"],\n  \"definitions\": {\n    \"min-length-one\": {\n      \"type\": \"string\",\n      \"minLength\": 1\n    }\n  }\n}";

fn templated_out(t: &'static proconsul_acl::TemplatedPolicy) -> TemplatedPolicyOut {
    TemplatedPolicyOut {
        template_name: t.name,
        schema: if t.requires_name { NAME_SCHEMA } else { "" },
        template: t.template,
        description: t.description,
    }
}

/// Templated policies are builtin: the agent answers, once the caller may read ACLs.
async fn acl_read_allowed<B: Backend>(st: &St<B>) -> Result<(), RpcError> {
    let rights = st.caller_rights().await?;
    if rights.is_none() {
        return Err(RpcError::Unauthorized("ACL support disabled".into()));
    }
    crate::caller::need(&rights, proconsul_acl::Check::AclRead)
}

async fn templated_list<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(
        async {
            acl_read_allowed(&st).await?;
            let all: std::collections::BTreeMap<&str, TemplatedPolicyOut> =
                proconsul_acl::TEMPLATED_POLICIES
                    .iter()
                    .map(|t| (t.name, templated_out(t)))
                    .collect();
            Ok(reply::json(&all, pretty(&q)))
        }
        .await,
    )
}

async fn templated_read<B: Backend>(
    st: St<B>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    reply::or_error(
        async {
            acl_read_allowed(&st).await?;
            let t = proconsul_acl::templated_policy_by_name(&name).ok_or_else(|| {
                RpcError::BadRequest(format!("Invalid templated policy Name: {name}"))
            })?;
            Ok(reply::json(&templated_out(t), pretty(&q)))
        }
        .await,
    )
}

#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct PreviewBody {
    name: String,
}

async fn templated_preview<B: Backend>(
    st: St<B>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    b: Body,
) -> Reply {
    reply::or_error(
        async {
            acl_read_allowed(&st).await?;
            let Some(t) = proconsul_acl::templated_policy_by_name(&name) else {
                return Err(RpcError::BadRequest(format!(
                    "templated policy {name:?} does not exist"
                )));
            };
            let bytes = read_body(&headers, b, MAX_BODY).await?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Err(RpcError::BadRequest(
                    "Failed to decode request body: EOF".into(),
                ));
            }
            let vars: PreviewBody = decode(&bytes)?;
            let var = (!vars.name.is_empty()).then_some(vars.name.as_str());
            let rules = proconsul_acl::templated_policy_rules(t.name, var).map_err(|e| {
                RpcError::BadRequest(format!(
                    "validation error for templated policy: {name:?}: {e}"
                ))
            })?;
            let id = synthetic_id(&rules);
            Ok(reply::json(
                &AclPolicy {
                    id: id.clone(),
                    name: format!("synthetic-policy-{id}"),
                    description: format!(
                        "synthetic policy generated from templated policy: {name}"
                    ),
                    rules: Some(rules),
                    ..Default::default()
                },
                pretty(&q),
            ))
        }
        .await,
    )
}

/// A stable ID for a synthetic policy: hex of a 64-bit FNV-1a of its rules, twice salted.
fn synthetic_id(rules: &str) -> String {
    let fnv = |seed: u64| {
        rules.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    format!(
        "{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x8422_2325_cbf2_9ce4)
    )
}
