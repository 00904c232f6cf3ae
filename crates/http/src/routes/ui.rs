//! The web UI: a small single-page app embedded in the binary (`crates/http/ui/`: plain
//! HTML, CSS and JavaScript, no build step), served at `ui_config.content_path` (`/ui/`), and
//! the `/v1/internal/ui/*` reads it lists services and nodes with, shaped as Consul's
//! `agent/ui_endpoint.go` prints them.
//!
//! The reads are typed reads like any other (`Internal.ServiceDump`, `Internal.NodeDump`,
//! `Internal.NodeInfo`), so they block, forward and are cut down by ACLs on the servers as
//! the catalog's are; the summaries are computed here, from what the token could see.
//!
//! The app's files never change while the process runs: each is kept with its content type
//! and a hash of its bytes (its `ETag`, and the `?v=` the page asks for it with, so a
//! versioned asset may be cached for good while `index.html` is revalidated every time).
//! Any other path under the content path answers `index.html`, so the app's own URLs
//! (`/ui/dc1/services/web`) can be reloaded and bookmarked.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery};
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use axum::routing::get;
use axum::Router;

use super::catalog::dc_of;
use super::St;
use crate::params::Params;
use crate::reply::{self, Reply};
use crate::Backend;
use proconsul_filter::schemas;
use proconsul_types::{
    CheckServiceNode, Consistency, InternalNodeDump, InternalNodeInfo, InternalServiceDump, Query,
    QueryMeta, QueryOptions, RpcError, ServiceSummary,
};

/// The UI's routes: the `/v1/internal/ui/*` reads always (as Consul), the app and the `/`
/// redirect to it when the UI is on.
pub(super) fn routes<B: Backend>(backend: &B) -> Router<Arc<B>> {
    let api = Router::new()
        .route("/v1/internal/ui/services", get(services::<B>))
        .route("/v1/internal/ui/nodes", get(nodes::<B>))
        .route("/v1/internal/ui/node/{node}", get(node::<B>))
        .route(
            "/v1/internal/ui/exported-services",
            get(exported_services::<B>),
        );
    match backend.ui_content_path() {
        None => api.route("/", get(ui_disabled)),
        Some(path) => {
            let app = Arc::new(App::new(
                &path,
                backend.acl_enabled(),
                &backend.datacenter(),
            ));
            api.merge(app_routes(app, &path))
        }
    }
}

// ---- the app -------------------------------------------------------------------------------

/// The app's files, by their path under the content path.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "assets/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/app.js"),
    ),
    (
        "assets/style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../ui/style.css"),
    ),
    (
        "assets/favicon.svg",
        "image/svg+xml",
        include_bytes!("../../ui/favicon.svg"),
    ),
    (
        "robots.txt",
        "text/plain; charset=utf-8",
        b"User-agent: *\nDisallow: /\n",
    ),
];

const INDEX: &str = include_str!("../../ui/index.html");

/// What the page may load and run: its own files and the agent's API, nothing inline, and
/// it may not be framed. Values from the catalog or the KV store are only ever set as text,
/// and this stops anything that slipped through from running.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'self'; form-action 'none'; frame-ancestors 'none'";

/// One file, ready to send.
struct Asset {
    body: &'static [u8],
    content_type: &'static str,
    /// Hash of the bytes: the `ETag` (quoted) and the `?v=` of the page's links.
    version: String,
}

/// The app: its files and its rendered `index.html`.
struct App {
    files: BTreeMap<&'static str, Asset>,
    index: Bytes,
    index_etag: String,
}

impl App {
    /// Render `index.html` for this agent: the base every relative link resolves against,
    /// each asset's version, and the settings the app starts with (as JSON in a
    /// non-executed script element, `<` escaped so no value can close it).
    fn new(content_path: &str, acls_enabled: bool, datacenter: &str) -> App {
        let files: BTreeMap<&'static str, Asset> = FILES
            .iter()
            .map(|(path, content_type, body)| {
                let asset = Asset {
                    body,
                    content_type,
                    version: format!("{:016x}", fnv1a(body)),
                };
                (*path, asset)
            })
            .collect();
        let settings = serde_json::json!({
            "ContentPath": content_path,
            "ACLsEnabled": acls_enabled,
            "LocalDatacenter": datacenter,
        })
        .to_string()
        .replace('<', "\\u003c");
        let mut index = INDEX
            .replace("{{content_path}}", content_path)
            .replace("{{settings}}", &settings);
        for (path, asset) in &files {
            index = index.replace(&format!("{{{{v:{path}}}}}"), &asset.version);
        }
        let index_etag = format!("{:016x}", fnv1a(index.as_bytes()));
        App {
            files,
            index: Bytes::from(index),
            index_etag,
        }
    }

    /// The file at `rest` (the path under the content path), else `index.html` — but a
    /// missing file under `assets/` is a 404, not a page where a script was expected.
    fn serve(&self, rest: &str, query: Option<&str>, headers: &HeaderMap) -> Reply {
        if let Some(asset) = self.files.get(rest) {
            // Immutable only when asked for by the version it has: an unversioned or stale
            // link is revalidated instead.
            let versioned = Params::parse(query).get("v") == Some(asset.version.as_str());
            let cache = if versioned {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            return file(
                headers,
                Bytes::from_static(asset.body),
                asset.content_type,
                &asset.version,
                cache,
            );
        }
        if rest.starts_with("assets/") {
            return reply::text(StatusCode::NOT_FOUND, "404 page not found");
        }
        let mut r = file(
            headers,
            self.index.clone(),
            "text/html; charset=utf-8",
            &self.index_etag,
            "no-cache",
        );
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        r
    }
}

/// The app's routes under `path` (`/ui/`): the page at the path and everything below it,
/// `path` without its slash and `/` redirected to it (Consul: 301).
fn app_routes<B: Backend>(app: Arc<App>, path: &str) -> Router<Arc<B>> {
    let at_root = {
        let app = app.clone();
        move |RawQuery(q): RawQuery, headers: HeaderMap| {
            let app = app.clone();
            async move { app.serve("", q.as_deref(), &headers) }
        }
    };
    let below = move |Path(rest): Path<String>, RawQuery(q): RawQuery, headers: HeaderMap| {
        let app = app.clone();
        async move {
            // Mounted at `/`, the API's unknown paths stay 404s rather than the page.
            if rest.starts_with("v1/") {
                return reply::text(StatusCode::NOT_FOUND, "404 page not found");
            }
            app.serve(&rest, q.as_deref(), &headers)
        }
    };
    let router = Router::new()
        .route(path, get(at_root))
        .route(&format!("{path}{{*rest}}"), get(below));
    if path == "/" {
        return router;
    }
    let to = path.to_string();
    let redirect = move || {
        let to = to.clone();
        async move { moved_permanently(&to) }
    };
    router
        .route("/", get(redirect.clone()))
        .route(path.trim_end_matches('/'), get(redirect))
}

/// `GET /` with the UI off: Consul's text, so whoever looks knows what answers.
async fn ui_disabled() -> Reply {
    reply::text(
        StatusCode::OK,
        "Consul Agent: UI disabled. To enable, set ui_config.enabled=true in the agent configuration and restart.",
    )
}

fn moved_permanently(to: &str) -> Reply {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// A file's answer, or 304 when the client holds this version already.
fn file(
    headers: &HeaderMap,
    body: Bytes,
    content_type: &'static str,
    version: &str,
    cache: &'static str,
) -> Reply {
    let etag = format!("\"{version}\"");
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut r = if unchanged {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(Body::from(body));
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    };
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    r
}

/// FNV-1a, 64 bits: a stable fingerprint of a file's bytes (not a security measure).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

// ---- /v1/internal/ui/* ---------------------------------------------------------------------

/// A read as the UI's endpoints make it: without a leader, answered again allowing stale
/// data (Consul's `goto RPC` retry), so the UI still shows what a server knows.
async fn ui_query<B: Backend, Q: Query + Clone>(
    b: &B,
    q: Q,
    opts: QueryOptions,
) -> Result<(QueryMeta, Q::Out), RpcError> {
    match b.query(q.clone(), opts.clone()).await {
        Err(RpcError::NoLeader) if opts.consistency == Consistency::Default => {
            let stale = QueryOptions {
                consistency: Consistency::Stale,
                ..opts
            };
            b.query(q, stale).await
        }
        other => other,
    }
}

/// `GET /v1/internal/ui/services`: one summary per service name (Consul's
/// `ServiceListingSummary`), `?filter=` applied to the instances first.
pub async fn services<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(
        async {
            let p = Params::parse(q.as_deref());
            let opts = p.query_options()?;
            let filter = p.filter(schemas::CHECK_SERVICE_NODE)?;
            let dc = dc_of(&**st, &opts.datacenter);
            let (meta, mut rows) = ui_query(&**st, InternalServiceDump {}, opts).await?;
            for r in &mut rows {
                r.node.datacenter = dc.clone();
            }
            if let Some(f) = filter {
                f.retain(&mut rows);
            }
            // No cluster peers here: nothing is imported from one.
            if !p.peer().is_empty() {
                rows.clear();
            }
            Ok(reply::json_meta(&summarize(&rows), &meta, p.pretty()))
        }
        .await,
    )
}

/// `GET /v1/internal/ui/nodes`: every node with its services and checks.
pub async fn nodes<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(
        async {
            let p = Params::parse(q.as_deref());
            let opts = p.query_options()?;
            let filter = p.filter(schemas::NODE_INFO)?;
            let (meta, mut dump) = ui_query(&**st, InternalNodeDump {}, opts).await?;
            if let Some(f) = filter {
                f.retain(&mut dump);
            }
            if !p.peer().is_empty() {
                dump.clear();
            }
            Ok(reply::json_meta(&dump, &meta, p.pretty()))
        }
        .await,
    )
}

/// `GET /v1/internal/ui/node/:node`: one node with its services and checks; 404 with an
/// empty body when there is none (or the token may not see it).
pub async fn node<B: Backend>(st: St<B>, Path(node): Path<String>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(
        async {
            let p = Params::parse(q.as_deref());
            let opts = p.query_options()?;
            let (meta, found) = ui_query(&**st, InternalNodeInfo { node }, opts).await?;
            match found.into_iter().next() {
                Some(info) if p.peer().is_empty() => Ok(reply::json_meta(&info, &meta, p.pretty())),
                _ => {
                    let mut r = Response::new(Body::empty());
                    *r.status_mut() = StatusCode::NOT_FOUND;
                    reply::add_meta(&mut r, &meta);
                    Ok(r)
                }
            }
        }
        .await,
    )
}

/// `GET /v1/internal/ui/exported-services?peer=`: the services exported to a cluster peer.
/// proconsul has no peerings, so every peer is unknown and the list empty; a blocking call
/// waits out its time, since nothing can change it.
pub async fn exported_services<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(
        async {
            let p = Params::parse(q.as_deref());
            let opts = p.query_options()?;
            if p.peer().is_empty() {
                return Err(RpcError::Internal("must provide PeerName".into()));
            }
            if let Some(wait) = opts.max_wait.filter(|_| opts.min_index >= 1) {
                let shutdown = st.shutdown_token();
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep_until(crate::params::blocking_deadline(wait)) => {}
                }
            }
            let meta = QueryMeta {
                index: 1,
                known_leader: true,
                ..QueryMeta::default()
            };
            Ok(reply::json_meta(
                &Vec::<ServiceSummary>::new(),
                &meta,
                p.pretty(),
            ))
        }
        .await,
    )
}

/// What is known of one service while its instances are counted.
#[derive(Default)]
struct Tally {
    summary: ServiceSummary,
    tags: BTreeSet<String>,
    nodes: BTreeSet<String>,
    sources: Vec<String>,
    /// Each check once, by (node, check ID): a node check counts once however many of the
    /// service's instances run on that node.
    checks: BTreeMap<(String, String), String>,
    /// Has a proxy instance for this service been seen (for `TransparentProxy`)?
    proxy_seen: bool,
}

/// Consul's `summarizeServices` + `prepSummaryOutput`: per service name its instances,
/// kinds, tags, nodes, external sources and the statuses of their checks; a Connect
/// proxy's checks also count for the service it fronts, which is marked as having a proxy
/// and as transparent when every proxy for it is. Sorted by name.
fn summarize(rows: &[CheckServiceNode]) -> Vec<ServiceSummary> {
    let mut by_name: BTreeMap<String, Tally> = BTreeMap::new();
    let mut proxied: BTreeSet<String> = BTreeSet::new();
    for r in rows {
        let (node, svc) = (&r.node, &r.service);
        {
            let t = entry(&mut by_name, &svc.service);
            t.nodes.insert(node.node.clone());
            t.summary.kind = svc.kind.clone();
            t.summary.datacenter = node.datacenter.clone();
            t.summary.instance_count += 1;
            t.summary.connect_native |= svc.connect.native;
            t.tags.extend(svc.tags.iter().cloned());
            if let Some(source) = svc.meta.get("external-source").filter(|s| !s.is_empty()) {
                if !t.sources.contains(source) {
                    t.sources.push(source.clone());
                }
            }
            for c in &r.checks {
                t.checks
                    .insert((node.node.clone(), c.check_id.clone()), c.status.clone());
            }
        }
        if svc.kind == "connect-proxy" {
            let dest_name = &svc.proxy.destination_service_name;
            proxied.insert(dest_name.clone());
            let dest = entry(&mut by_name, dest_name);
            for c in &r.checks {
                dest.checks
                    .insert((node.node.clone(), c.check_id.clone()), c.status.clone());
            }
            let transparent = svc.proxy.mode == "transparent";
            if transparent && !dest.proxy_seen {
                dest.summary.transparent_proxy = true;
            }
            if !transparent {
                dest.summary.transparent_proxy = false;
            }
            dest.proxy_seen = true;
        }
    }
    by_name
        .into_values()
        .map(|t| {
            let mut s = t.summary;
            for status in t.checks.values() {
                match status.as_str() {
                    proconsul_types::health::PASSING => s.checks_passing += 1,
                    proconsul_types::health::WARNING => s.checks_warning += 1,
                    proconsul_types::health::CRITICAL => s.checks_critical += 1,
                    _ => {}
                }
            }
            s.connected_with_proxy = proxied.contains(&s.name);
            let some = |v: Vec<String>| (!v.is_empty()).then_some(v);
            s.tags = some(t.tags.into_iter().collect());
            s.nodes = some(t.nodes.into_iter().collect());
            s.external_sources = some(t.sources);
            s
        })
        .collect()
}

/// The tally of service `name`, started empty.
fn entry<'a>(m: &'a mut BTreeMap<String, Tally>, name: &str) -> &'a mut Tally {
    m.entry(name.to_string()).or_insert_with(|| Tally {
        summary: ServiceSummary {
            name: name.to_string(),
            ..ServiceSummary::default()
        },
        ..Tally::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proconsul_types::{HealthCheck, Node, NodeService};

    fn row(node: &str, service: &str, tags: &[&str], checks: &[(&str, &str)]) -> CheckServiceNode {
        CheckServiceNode {
            node: Node {
                node: node.into(),
                datacenter: "dc1".into(),
                ..Node::default()
            },
            service: NodeService {
                id: format!("{service}-{node}"),
                service: service.into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                ..NodeService::default()
            },
            checks: checks
                .iter()
                .map(|(id, status)| HealthCheck {
                    node: node.into(),
                    check_id: id.to_string(),
                    status: status.to_string(),
                    ..HealthCheck::default()
                })
                .collect(),
        }
    }

    #[test]
    fn summaries_count_each_check_once_and_sort_by_name() {
        let rows = vec![
            row(
                "n2",
                "web",
                &["v2", "a"],
                &[("serfHealth", "passing"), ("w2", "critical")],
            ),
            row(
                "n1",
                "web",
                &["v1", "a"],
                &[("serfHealth", "passing"), ("w1", "warning")],
            ),
            // A second instance on n1: its node check is the same check.
            row(
                "n1",
                "web",
                &[],
                &[("serfHealth", "passing"), ("w3", "passing")],
            ),
            row("n1", "api", &[], &[("serfHealth", "passing")]),
        ];
        let s = summarize(&rows);
        assert_eq!(
            s.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["api", "web"]
        );
        let web = &s[1];
        assert_eq!(web.instance_count, 3);
        assert_eq!(web.nodes, Some(vec!["n1".into(), "n2".into()]));
        assert_eq!(web.tags, Some(vec!["a".into(), "v1".into(), "v2".into()]));
        assert_eq!(
            (web.checks_passing, web.checks_warning, web.checks_critical),
            (3, 1, 1)
        );
        assert_eq!(s[0].tags, None, "no tags is null, as Consul's nil slice");
        assert_eq!(s[0].external_sources, None);
        let json = serde_json::to_value(&s[0]).unwrap();
        assert_eq!(json["GatewayConfig"], serde_json::json!({}));
        assert!(json.get("Kind").is_none() && json.get("PeerName").is_none());
    }

    #[test]
    fn a_proxy_counts_for_the_service_it_fronts() {
        let mut proxy = row("n1", "web-sidecar-proxy", &[], &[("p", "critical")]);
        proxy.service.kind = "connect-proxy".into();
        proxy.service.proxy.destination_service_name = "web".into();
        proxy.service.proxy.mode = "transparent".into();
        let s = summarize(&[row("n1", "web", &[], &[("w", "passing")]), proxy]);
        let web = s.iter().find(|s| s.name == "web").unwrap();
        assert!(web.connected_with_proxy && web.transparent_proxy);
        assert_eq!((web.checks_passing, web.checks_critical), (1, 1));
        let p = s.iter().find(|s| s.name == "web-sidecar-proxy").unwrap();
        assert_eq!(p.kind, "connect-proxy");
    }

    #[test]
    fn the_page_names_its_base_settings_and_asset_versions() {
        let app = App::new("/ui/", true, "dc1");
        let page = String::from_utf8(app.index.to_vec()).unwrap();
        assert!(page.contains(r#"<base href="/ui/">"#), "{page}");
        assert!(page.contains(r#""ACLsEnabled":true"#), "{page}");
        let v = &app.files["assets/app.js"].version;
        assert!(page.contains(&format!("assets/app.js?v={v}")), "{page}");
        assert!(!page.contains("{{"), "every placeholder filled: {page}");
    }
}
