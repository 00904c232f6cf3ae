//! `/v1/agent/*`: the agent's own view: itself, its members, its services and checks.

use axum::body::Body;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::{decode, decode_or_default, read_body, St, MAX_BODY};
use crate::params::Params;
use crate::reply::{self, Reply};
use crate::{Backend, ServiceRegistration};
use proconsul_types::{health, CheckDefinition, RpcError, ServiceDefinition};

fn ok_empty() -> Reply {
    reply::text(StatusCode::OK, "")
}

pub async fn self_<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::json(&st.agent_self(), p.pretty())
}

pub async fn members<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::json(&st.agent_members(p.has("wan")), p.pretty())
}

pub async fn services<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::json(&st.agent_services(), p.pretty())
}

pub async fn service<B: Backend>(
    st: St<B>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    let p = Params::parse(q.as_deref());
    match st.agent_services().remove(&id) {
        Some(s) => reply::json(&s, p.pretty()),
        None => reply::text(StatusCode::NOT_FOUND, format!("unknown service ID: {id}")),
    }
}

pub async fn checks<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::json(&st.agent_checks(), p.pretty())
}

pub async fn register_service<B: Backend>(
    st: St<B>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    reply::or_error(
        async {
            let p = Params::parse(q.as_deref());
            let body = read_body(&headers, body, MAX_BODY).await?;
            let definition: ServiceDefinition = decode(&body)?;
            let replace_existing_checks = p.flag("replace-existing-checks")?;
            st.agent_register_service(ServiceRegistration {
                definition,
                replace_existing_checks,
            })
            .await?;
            Ok(ok_empty())
        }
        .await,
    )
}

pub async fn deregister_service<B: Backend>(st: St<B>, Path(id): Path<String>) -> Reply {
    reply::or_error(st.agent_deregister_service(id).await.map(|_| ok_empty()))
}

pub async fn register_check<B: Backend>(st: St<B>, headers: HeaderMap, body: Body) -> Reply {
    reply::or_error(
        async {
            let body = read_body(&headers, body, MAX_BODY).await?;
            let def: CheckDefinition = decode(&body)?;
            st.agent_register_check(def).await?;
            Ok(ok_empty())
        }
        .await,
    )
}

pub async fn deregister_check<B: Backend>(st: St<B>, Path(id): Path<String>) -> Reply {
    reply::or_error(st.agent_deregister_check(id).await.map(|_| ok_empty()))
}

async fn ttl<B: Backend>(b: &B, id: String, status: &str, q: Option<String>) -> Reply {
    let p = Params::parse(q.as_deref());
    let note = p.get("note").unwrap_or("").to_string();
    reply::or_error(
        b.agent_update_ttl(id, status.to_string(), note)
            .await
            .map(|_| ok_empty()),
    )
}

pub async fn check_pass<B: Backend>(
    st: St<B>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    ttl(&**st, id, health::PASSING, q).await
}
pub async fn check_warn<B: Backend>(
    st: St<B>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    ttl(&**st, id, health::WARNING, q).await
}
pub async fn check_fail<B: Backend>(
    st: St<B>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    ttl(&**st, id, health::CRITICAL, q).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CheckUpdate {
    status: String,
    output: String,
}

pub async fn check_update<B: Backend>(
    st: St<B>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    reply::or_error(
        async {
            let body = read_body(&headers, body, MAX_BODY).await?;
            let u: CheckUpdate = decode_or_default(&body)?;
            if !health::is_valid_status(&u.status) {
                return Err(RpcError::BadRequest(format!(
                    "Invalid check status: '{}'",
                    u.status
                )));
            }
            st.agent_update_ttl(id, u.status, u.output).await?;
            Ok(ok_empty())
        }
        .await,
    )
}

pub async fn join<B: Backend>(st: St<B>, Path(addr): Path<String>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(st.agent_join(addr, p.has("wan")).await.map(|_| ok_empty()))
}

pub async fn leave<B: Backend>(st: St<B>) -> Reply {
    reply::or_error(st.agent_leave().await.map(|_| ok_empty()))
}

pub async fn reload<B: Backend>(st: St<B>) -> Reply {
    reply::or_error(st.agent_reload().await.map(|_| ok_empty()))
}
