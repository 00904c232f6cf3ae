//! `/v1/agent/*`: the agent's own view: itself, its members, its services and checks.

use axum::body::Body;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::{decode, decode_or_default, read_body, St, MAX_BODY};
use crate::caller::{allows, need};
use crate::params::Params;
use crate::reply::{self, Reply};
use crate::{Backend, ServiceRegistration};
use proconsul_acl::Check;
use proconsul_filter::schemas;
use proconsul_types::{
    health, AgentService, CheckDefinition, HealthCheck, RpcError, ServiceDefinition,
};

fn ok_empty() -> Reply {
    reply::text(StatusCode::OK, "")
}

type Rights = Option<std::sync::Arc<crate::Rights>>;

/// `X-Consul-Results-Filtered-By-ACLs: true` when ACLs cut a list the caller asked for with
/// a token (Consul says nothing to a request without one).
fn mark_filtered(r: &mut Reply, rights: &Rights, cut: bool) {
    if cut && rights.as_ref().is_some_and(|r| r.has_token) {
        r.headers_mut().insert(
            "X-Consul-Results-Filtered-By-ACLs",
            axum::http::HeaderValue::from_static("true"),
        );
    }
}

/// `Ok` when ACLs are off or the caller passes `check`; Consul's 403 otherwise.
async fn require<B: Backend>(st: &St<B>, check: Check<'_>) -> Result<(), RpcError> {
    need(&st.caller_rights().await?, check)
}

/// May the caller change check `id` (404 first when there is none)? A service's check needs
/// `service:write` on the service, a node check `node:write` on this agent's node.
async fn may_write_check<B: Backend>(st: &St<B>, id: &str) -> Result<(), RpcError> {
    let rights = st.caller_rights().await?;
    if rights.is_none() {
        return Ok(());
    }
    let Some(c) = st.agent_checks().remove(id) else {
        return Err(RpcError::NotFound(format!(
            "Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name."
        )));
    };
    if c.service_id.is_empty() {
        need(&rights, Check::NodeWrite(&st.node_name()))
    } else {
        need(&rights, Check::ServiceWrite(&c.service_name))
    }
}

/// May the caller change service `id` (404 first when there is none)?
async fn may_write_service<B: Backend>(st: &St<B>, id: &str) -> Result<(), RpcError> {
    let rights = st.caller_rights().await?;
    if rights.is_none() {
        return Ok(());
    }
    let Some(s) = st.agent_service(id) else {
        return Err(RpcError::NotFound(format!(
            "Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."
        )));
    };
    need(&rights, Check::ServiceWrite(&s.service))
}

pub async fn self_<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        async {
            require(&st, Check::AgentRead(&st.node_name())).await?;
            Ok(reply::json(&st.agent_self(), p.pretty()))
        }
        .await,
    )
}

/// `/v1/agent/metrics`: go-metrics' in-memory summary, or with `?format=prometheus` the text
/// exposition format — when `telemetry.prometheus_retention_time` is set; otherwise Consul's
/// empty 200 with its reason in `X-Consul-Reason`.
pub async fn metrics<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    if let Err(e) = require(&st, Check::AgentRead(&st.node_name())).await {
        return reply::error(&e);
    }
    let t = st.telemetry();
    if p.get("format") != Some("prometheus") {
        return reply::json(&t.display(), p.pretty());
    }
    let mut r = if st.prometheus_enabled() {
        reply::text(StatusCode::OK, t.prometheus())
    } else {
        let mut r = reply::text(StatusCode::OK, "");
        r.headers_mut().insert(
            "X-Consul-Reason",
            axum::http::HeaderValue::from_static(
                "Prometheus is not enabled since its retention time is not positive",
            ),
        );
        r
    };
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// `GET /v1/agent/metrics/stream`: as each 10 s interval ends, its summary (the shape of
/// `/v1/agent/metrics`) as one line of JSON, until the client goes away or the agent stops —
/// go-metrics' `InmemSink.Stream`. Nothing is queued: the next summary is made only once the
/// last one has been taken by the connection, and a reader that fell behind gets the interval
/// that ends next, not a backlog.
pub async fn metrics_stream<B: Backend>(st: St<B>) -> Reply {
    if let Err(e) = require(&st, Check::AgentRead(&st.node_name())).await {
        return reply::error(&e);
    }
    let t = st.telemetry();
    let stop = st.shutdown_token();
    let stream = futures_util::stream::unfold((), move |()| {
        let (t, stop) = (t.clone(), stop.clone());
        async move {
            let (start, end) = proconsul_telemetry::interval_start(std::time::SystemTime::now());
            let wait = end
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default()
                // Past the boundary, so nothing more lands in the interval being sent.
                + std::time::Duration::from_millis(5);
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = tokio::time::sleep(wait) => {}
            }
            let mut line = serde_json::to_vec(&t.summary_of(start)).unwrap_or_default();
            line.push(b'\n');
            Some((
                Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(line)),
                (),
            ))
        }
    });
    // Consul sends no Content-Type here (its handler writes the header before any body).
    Reply::new(Body::from_stream(stream))
}

/// Consul's `version.BuildInfo`, in its field order.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct BuildInfo {
    #[serde(rename = "SHA")]
    sha: &'static str,
    build_date: &'static str,
    human_version: &'static str,
    #[serde(rename = "FIPS")]
    fips: &'static str,
}

/// Consul's `version.GetBuildInfo()`: the Consul version proconsul answers as.
pub async fn version(RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    let info = BuildInfo {
        sha: option_env!("PROCONSUL_GIT_SHA").unwrap_or(""),
        // Consul's default when the build does not say (a date that is clearly not real).
        build_date: option_env!("PROCONSUL_BUILD_DATE").unwrap_or("1970-01-01T00:00:01Z"),
        human_version: proconsul_types::CONSUL_COMPAT_VERSION,
        fips: "",
    };
    reply::json(&info, p.pretty())
}

pub async fn host<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    if let Err(e) = require(&st, Check::OperatorRead).await {
        return reply::error(&e);
    }
    let backend = std::sync::Arc::clone(&st.0);
    match tokio::task::spawn_blocking(move || backend.agent_host()).await {
        Ok(v) => reply::json(&v, p.pretty()),
        Err(e) => reply::error(&RpcError::Internal(e.to_string())),
    }
}

pub async fn members<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        async {
            let filter = p.filter(schemas::MEMBER)?;
            let rights = st.caller_rights().await?;
            let mut members = st.agent_members(p.has("wan"));
            let before = members.len();
            members.retain(|m| allows(&rights, Check::NodeRead(&m.name)));
            let cut = members.len() != before;
            if let Some(f) = filter {
                f.retain(&mut members);
            }
            let mut r = reply::json(&members, p.pretty());
            mark_filtered(&mut r, &rights, cut);
            Ok(r)
        }
        .await,
    )
}

pub async fn services<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        async {
            let filter = p.filter(schemas::SERVICE)?;
            let rights = st.caller_rights().await?;
            let mut services = st.agent_services();
            let before = services.len();
            services.retain(|_, s| allows(&rights, Check::ServiceRead(&s.service)));
            let cut = services.len() != before;
            if let Some(f) = filter {
                f.retain_values(&mut services);
            }
            let mut r = reply::json(&services, p.pretty());
            mark_filtered(&mut r, &rights, cut);
            Ok(r)
        }
        .await,
    )
}

pub async fn service<B: Backend>(
    st: St<B>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    let p = Params::parse(q.as_deref());
    // Hash-based blocking (Consul's `?hash=` with `?wait=`): answer once the service's hash
    // differs from the one given, or when the wait (plus up to 1/16 jitter) runs out.
    let wait_for = p.get("hash").filter(|h| !h.is_empty()).map(str::to_string);
    let deadline = match p.wait() {
        Ok(w) => crate::params::blocking_deadline(w),
        Err(e) => return reply::error(&e),
    };
    let rights = match st.caller_rights().await {
        Ok(r) => r,
        Err(e) => return reply::error(&e),
    };
    let mut changes = st.agent_services_watch();
    loop {
        changes.borrow_and_update();
        let Some(mut svc) = st.agent_service(&id) else {
            return reply::text(StatusCode::NOT_FOUND, format!("unknown service ID: {id}"));
        };
        if let Err(e) = need(&rights, Check::ServiceRead(&svc.service)) {
            return reply::error(&e);
        }
        svc.content_hash = content_hash(&svc);
        if wait_for.as_deref() == Some(svc.content_hash.as_str()) {
            tokio::select! {
                r = changes.changed() => if r.is_ok() { continue },
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
        let mut r = reply::json(&svc, p.pretty());
        if let Ok(v) = axum::http::HeaderValue::from_str(&svc.content_hash) {
            r.headers_mut().insert("X-Consul-ContentHash", v);
        }
        return r;
    }
}

/// A stable hash of a service as the agent reports it (FNV-1a over its JSON): opaque to
/// clients, which only hand it back, as with Consul's.
fn content_hash(svc: &AgentService) -> String {
    let bytes = serde_json::to_vec(svc).unwrap_or_default();
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

pub async fn checks<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        async {
            let filter = p.filter(schemas::HEALTH_CHECK)?;
            let rights = st.caller_rights().await?;
            let node = st.node_name();
            let mut checks = st.agent_checks();
            let before = checks.len();
            checks.retain(|_, c| {
                if c.service_id.is_empty() {
                    allows(&rights, Check::NodeRead(&node))
                } else {
                    allows(&rights, Check::ServiceRead(&c.service_name))
                }
            });
            let cut = checks.len() != before;
            if let Some(f) = filter {
                f.retain_values(&mut checks);
            }
            let mut r = reply::json(&checks, p.pretty());
            mark_filtered(&mut r, &rights, cut);
            Ok(r)
        }
        .await,
    )
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
            let rights = st.caller_rights().await?;
            need(&rights, Check::ServiceWrite(&definition.name))?;
            let id = if definition.id.is_empty() {
                &definition.name
            } else {
                &definition.id
            };
            if let Some(existing) = st.agent_service(id) {
                need(&rights, Check::ServiceWrite(&existing.service))?;
            }
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
    reply::or_error(
        async {
            may_write_service(&st, &id).await?;
            st.agent_deregister_service(id).await.map(|_| ok_empty())
        }
        .await,
    )
}

pub async fn register_check<B: Backend>(st: St<B>, headers: HeaderMap, body: Body) -> Reply {
    reply::or_error(
        async {
            let body = read_body(&headers, body, MAX_BODY).await?;
            let def: CheckDefinition = decode(&body)?;
            let rights = st.caller_rights().await?;
            if rights.is_some() {
                let service_id = def.service_id.clone();
                if service_id.is_empty() {
                    need(&rights, Check::NodeWrite(&st.node_name()))?;
                } else {
                    let name = st
                        .agent_service(&service_id)
                        .map_or(service_id, |s| s.service);
                    need(&rights, Check::ServiceWrite(&name))?;
                }
            }
            st.agent_register_check(def).await?;
            Ok(ok_empty())
        }
        .await,
    )
}

pub async fn deregister_check<B: Backend>(st: St<B>, Path(id): Path<String>) -> Reply {
    reply::or_error(
        async {
            may_write_check(&st, &id).await?;
            st.agent_deregister_check(id).await.map(|_| ok_empty())
        }
        .await,
    )
}

async fn ttl<B: Backend>(st: &St<B>, id: String, status: &str, q: Option<String>) -> Reply {
    let b: &B = st;
    let p = Params::parse(q.as_deref());
    let note = p.get("note").unwrap_or("").to_string();
    reply::or_error(
        async {
            may_write_check(st, &id).await?;
            b.agent_update_ttl(id, status.to_string(), note)
                .await
                .map(|_| ok_empty())
        }
        .await,
    )
}

pub async fn check_pass<B: Backend>(
    st: St<B>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    ttl(&st, id, health::PASSING, q).await
}
pub async fn check_warn<B: Backend>(
    st: St<B>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    ttl(&st, id, health::WARNING, q).await
}
pub async fn check_fail<B: Backend>(
    st: St<B>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    ttl(&st, id, health::CRITICAL, q).await
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
            may_write_check(&st, &id).await?;
            st.agent_update_ttl(id, u.status, u.output).await?;
            Ok(ok_empty())
        }
        .await,
    )
}

pub async fn join<B: Backend>(st: St<B>, Path(addr): Path<String>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        async {
            require(&st, Check::AgentWrite(&st.node_name())).await?;
            st.agent_join(addr, p.has("wan")).await.map(|_| ok_empty())
        }
        .await,
    )
}

pub async fn force_leave<B: Backend>(
    st: St<B>,
    Path(node): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        async {
            require(&st, Check::OperatorWrite).await?;
            st.agent_force_leave(node, p.has("prune"), p.has("wan"))
                .await
                .map(|_| ok_empty())
        }
        .await,
    )
}

pub async fn leave<B: Backend>(st: St<B>) -> Reply {
    reply::or_error(
        async {
            require(&st, Check::AgentWrite(&st.node_name())).await?;
            st.agent_leave().await.map(|_| ok_empty())
        }
        .await,
    )
}

pub async fn reload<B: Backend>(st: St<B>) -> Reply {
    reply::or_error(
        async {
            require(&st, Check::AgentWrite(&st.node_name())).await?;
            st.agent_reload().await.map(|_| ok_empty())
        }
        .await,
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct TokenBody {
    token: String,
}

/// `PUT /v1/agent/token/:kind`: needs ACLs on and `agent:write`.
pub async fn set_token<B: Backend>(
    st: St<B>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    reply::or_error(
        async {
            let rights = st.caller_rights().await?;
            if rights.is_none() {
                return Err(RpcError::Unauthorized("ACL support disabled".into()));
            }
            need(&rights, Check::AgentWrite(&st.node_name()))?;
            let body = read_body(&headers, body, MAX_BODY).await?;
            let t: TokenBody = decode(&body)?;
            st.set_agent_token(&kind, t.token)?;
            Ok(ok_empty())
        }
        .await,
    )
}

/// `?enable=` is required and must be a boolean, like Consul.
fn enable_param(p: &Params) -> Result<bool, RpcError> {
    match p.get("enable") {
        None | Some("") => Err(RpcError::BadRequest("Missing value for enable".into())),
        Some(_) => p.flag("enable").map_err(|_| {
            RpcError::BadRequest(format!(
                "Invalid value for enable: {:?}",
                p.get("enable").unwrap_or("")
            ))
        }),
    }
}

pub async fn node_maintenance<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        async {
            let enable = enable_param(&p)?;
            let reason = p.get("reason").unwrap_or("").to_string();
            require(&st, Check::NodeWrite(&st.node_name())).await?;
            st.agent_node_maintenance(enable, reason).await?;
            Ok(ok_empty())
        }
        .await,
    )
}

pub async fn service_maintenance<B: Backend>(
    st: St<B>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        async {
            let enable = enable_param(&p)?;
            let reason = p.get("reason").unwrap_or("").to_string();
            may_write_service(&st, &id).await?;
            st.agent_service_maintenance(id, enable, reason).await?;
            Ok(ok_empty())
        }
        .await,
    )
}

/// One service's local health, as `/v1/agent/health/service/*` reports it.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct ServiceHealth {
    aggregated_status: String,
    service: AgentService,
    checks: Vec<HealthCheck>,
}

/// Consul's aggregation: maintenance beats critical beats warning beats passing.
fn aggregate<'a>(checks: impl Iterator<Item = &'a HealthCheck>) -> &'static str {
    let mut worst = health::PASSING;
    for c in checks {
        if c.check_id.starts_with("_node_maintenance")
            || c.check_id.starts_with("_service_maintenance:")
        {
            return health::MAINT;
        }
        match c.status.as_str() {
            health::CRITICAL => worst = health::CRITICAL,
            health::WARNING if worst == health::PASSING => worst = health::WARNING,
            _ => {}
        }
    }
    worst
}

fn health_code(status: &str) -> StatusCode {
    match status {
        health::PASSING => StatusCode::OK,
        health::WARNING => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A service with its own checks and the node-level ones (Consul's `ChecksForService(id, true)`).
fn service_health(
    svc: AgentService,
    checks: &std::collections::BTreeMap<String, HealthCheck>,
) -> ServiceHealth {
    let mine: Vec<HealthCheck> = checks
        .values()
        .filter(|c| c.service_id == svc.id || c.service_id.is_empty())
        .cloned()
        .collect();
    ServiceHealth {
        aggregated_status: aggregate(mine.iter()).to_string(),
        service: svc,
        checks: mine,
    }
}

pub async fn health_by_id<B: Backend>(
    st: St<B>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    let p = Params::parse(q.as_deref());
    let text = p.get("format") == Some("text");
    let Some(svc) = st.agent_service(&id) else {
        return reply::text(StatusCode::NOT_FOUND, format!("ServiceId {id} not found"));
    };
    if let Err(e) = require(&st, Check::ServiceRead(&svc.service)).await {
        return reply::error(&e);
    }
    let h = service_health(svc, &st.agent_checks());
    let code = health_code(&h.aggregated_status);
    let mut r = if text {
        reply::text(code, h.aggregated_status.clone())
    } else {
        reply::json(&h, p.pretty())
    };
    *r.status_mut() = code;
    r
}

pub async fn health_by_name<B: Backend>(
    st: St<B>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    let p = Params::parse(q.as_deref());
    let text = p.get("format") == Some("text");
    if let Err(e) = require(&st, Check::ServiceRead(&name)).await {
        return reply::error(&e);
    }
    let checks = st.agent_checks();
    let all: Vec<ServiceHealth> = st
        .agent_services()
        .into_values()
        .filter(|s| s.service == name)
        .map(|s| service_health(s, &checks))
        .collect();
    if all.is_empty() {
        return reply::text(
            StatusCode::NOT_FOUND,
            format!("ServiceName {name} Not Found"),
        );
    }
    let status = aggregate_statuses(all.iter().map(|h| h.aggregated_status.as_str()));
    let code = health_code(status);
    let mut r = if text {
        reply::text(code, status)
    } else {
        reply::json(&all, p.pretty())
    };
    *r.status_mut() = code;
    r
}

/// The worst of several aggregated statuses.
fn aggregate_statuses<'a>(statuses: impl Iterator<Item = &'a str>) -> &'static str {
    let mut worst = health::PASSING;
    for s in statuses {
        match s {
            health::MAINT => return health::MAINT,
            health::CRITICAL => worst = health::CRITICAL,
            health::WARNING if worst == health::PASSING => worst = health::WARNING,
            _ => {}
        }
    }
    worst
}

/// Log levels by severity, as `?loglevel=` names them.
fn level_rank(level: &str) -> Option<u8> {
    match level.to_ascii_lowercase().as_str() {
        "trace" => Some(0),
        "debug" => Some(1),
        "" | "info" => Some(2),
        "warn" => Some(3),
        "err" | "error" => Some(4),
        _ => None,
    }
}

/// The severity of a formatted line: `[INFO]` in text lines, `"level":"INFO"` in JSON ones.
fn line_rank(line: &str) -> u8 {
    for (tag, rank) in [
        ("TRACE", 0),
        ("DEBUG", 1),
        ("INFO", 2),
        ("WARN", 3),
        ("ERROR", 4),
    ] {
        if line.contains(&format!("[{tag}]")) || line.contains(&format!("\"level\":\"{tag}\"")) {
            return rank;
        }
    }
    2
}

/// `GET /v1/agent/monitor?loglevel=`: stream log lines at or above the level until the client
/// goes away. Lines below the agent's own `-log-level` are never produced, so never streamed.
pub async fn monitor<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    if let Err(e) = require(&st, Check::AgentRead(&st.node_name())).await {
        return reply::error(&e);
    }
    let asked = p.get("loglevel").unwrap_or("info");
    let Some(min) = level_rank(asked) else {
        return reply::text(
            StatusCode::BAD_REQUEST,
            format!("Unknown log level: {asked}"),
        );
    };
    let Some(rx) = st.agent_monitor() else {
        return reply::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "log streaming is not available on this agent",
        );
    };
    let stop = st.shutdown_token();
    let stream = futures_util::stream::unfold(rx, move |mut rx| {
        let stop = stop.clone();
        async move {
            loop {
                let next = tokio::select! {
                    _ = stop.cancelled() => return None,
                    r = rx.recv() => r,
                };
                match next {
                    Ok(line) if line_rank(&line) >= min => {
                        return Some((
                            Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(
                                line.to_string(),
                            )),
                            rx,
                        ))
                    }
                    Ok(_) => continue,
                    // A slow reader lost lines: say so and carry on, like Consul's dropped-logs note.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        return Some((
                            Ok(axum::body::Bytes::from(format!(
                                "[WARN] monitor: {n} log lines dropped\n"
                            ))),
                            rx,
                        ))
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    let mut r = Reply::new(Body::from_stream(stream));
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain"),
    );
    r
}
