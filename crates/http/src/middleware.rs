//! What wraps every response ([`around`]): Consul's fixed headers, gzip, the request timer.
//!
//! Gzip'd responses for clients that accept them, as Consul's HTTP server does (its
//! `gziphandler` with no minimum size). Go's HTTP client asks for gzip by default, so every
//! Go program talking to Consul receives compressed bodies.
//!
//! Only complete bodies are compressed; a streamed one (`/v1/agent/monitor`, whose size is
//! not known up front) passes through, so a stream is never buffered.

use std::io::Write;

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, VARY};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// Does an `Accept-Encoding` value accept gzip (a `gzip` or `*` token whose `q` is not 0)?
fn accepts_gzip(value: &str) -> bool {
    value.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("");
        let q_zero = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q_zero
    })
}

/// `consul.api.http`: each request's time in milliseconds, labelled with its method and its
/// route as Consul labels it (the route's pattern, `/` as `_`: `v1_kv_`, `v1_agent_self`), so
/// keys and IDs never become labels.
/// Everything that wraps every response, as one layer (one boxed future per request):
/// Consul's fixed headers, gzip when asked for, and the `consul.api.http` timer.
pub(crate) async fn around(req: Request, next: Next) -> Response {
    let start = std::time::Instant::now();
    let method = req.method().clone();
    // The route's pattern lives as long as the router: its address names the route, so the
    // timer is found without copying the pattern or touching its shared reference count.
    let route: &'static str = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("", |m| route_key(m.as_str()));
    let wants = wants_gzip(&req);
    let mut resp = next.run(req).await;
    consul_headers(&mut resp);
    let resp = if wants { gzip(resp).await } else { resp };
    record_api_http(&method, route, start.elapsed().as_secs_f64() * 1000.0);
    resp
}

/// The routes' patterns, interned once each (the router's set is fixed): a `'static` copy per
/// pattern, found by the pattern's address through a per-thread map.
fn route_key(pattern: &str) -> &'static str {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    thread_local! {
        static SEEN: RefCell<HashMap<usize, &'static str>> = RefCell::new(HashMap::new());
    }
    static INTERNED: OnceLock<Mutex<HashMap<String, &'static str>>> = OnceLock::new();
    let addr = pattern.as_ptr() as usize;
    if let Some(k) = SEEN.with(|s| s.borrow().get(&addr).copied()) {
        return k;
    }
    let k = *INTERNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(pattern.to_string())
        .or_insert_with(|| Box::leak(pattern.to_string().into_boxed_str()));
    SEEN.with(|s| s.borrow_mut().insert(addr, k));
    k
}

/// Record one request in the `consul.api.http` histogram of its method and route. Each
/// thread keeps its own handles (the routes are a fixed set), so recording touches nothing
/// another request thread touches: no shared lock, no shared reference count.
fn record_api_http(method: &axum::http::Method, route: &'static str, ms: f64) {
    use std::cell::RefCell;
    use std::collections::HashMap;
    thread_local! {
        static TIMERS: RefCell<HashMap<(usize, axum::http::Method), metrics::Histogram>> =
            RefCell::new(HashMap::new());
    }
    TIMERS.with(|t| {
        let mut t = t.borrow_mut();
        let key = (route.as_ptr() as usize, method.clone());
        if let Some(h) = t.get(&key) {
            h.record(ms);
            return;
        }
        let h = metrics::histogram!(
            "consul.api.http",
            "method" => method_label(method),
            "path" => route_label(route)
        );
        h.record(ms);
        t.insert(key, h);
    });
}

fn method_label(m: &axum::http::Method) -> metrics::SharedString {
    use axum::http::Method;
    let s: &'static str = match *m {
        Method::GET => "GET",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        _ => return metrics::SharedString::from(m.as_str().to_string()),
    };
    metrics::SharedString::const_str(s)
}

/// `/v1/kv/{*key}` → `v1_kv_`, `/v1/agent/service/{id}` → `v1_agent_service_`.
fn route_label(pattern: &str) -> String {
    pattern
        .trim_start_matches('/')
        .split('/')
        .map(|seg| if seg.starts_with('{') { "" } else { seg })
        .collect::<Vec<_>>()
        .join("_")
}

/// Headers Consul sets on every response: the ACL default policy (`allow` while ACLs are not
/// enforced; a config asking for them is refused at start).
fn consul_headers(resp: &mut Response) {
    resp.headers_mut().insert(
        "X-Consul-Default-ACL-Policy",
        HeaderValue::from_static("allow"),
    );
}

fn wants_gzip(req: &Request) -> bool {
    req.headers()
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(accepts_gzip)
}

/// The response gzip'd, unless it is already compressed, streamed or empty.
async fn gzip(resp: Response) -> Response {
    // Already compressed (a snapshot archive): compressing again only costs time.
    let compressed = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().ends_with(b"gzip"));
    if compressed || resp.headers().contains_key(CONTENT_ENCODING) {
        return resp;
    }
    // Streams (no exact size) pass through; so do empty bodies.
    match resp.body().size_hint().exact() {
        Some(n) if n > 0 => {}
        _ => return resp,
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 2 + 32),
        flate2::Compression::fast(),
    );
    let gz = match enc.write_all(&bytes).and_then(|()| enc.finish()) {
        Ok(gz) => gz,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts
        .headers
        .append(VARY, HeaderValue::from_static("Accept-Encoding"));
    Response::from_parts(parts, Body::from(gz))
}

#[cfg(test)]
mod tests {
    use super::accepts_gzip;

    #[test]
    fn route_labels_leave_parameters_out() {
        use super::route_label;
        assert_eq!(route_label("/v1/kv/{*key}"), "v1_kv_");
        assert_eq!(route_label("/v1/agent/self"), "v1_agent_self");
        assert_eq!(
            route_label("/v1/health/service/{service}"),
            "v1_health_service_"
        );
    }

    #[test]
    fn accept_encoding_is_read_like_a_browser_would() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, gzip;q=0.5"));
        assert!(accepts_gzip("*"));
        assert!(accepts_gzip("GZIP"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("br, deflate"));
        assert!(!accepts_gzip(""));
    }
}
