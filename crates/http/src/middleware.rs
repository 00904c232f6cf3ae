//! What wraps every response: Consul's fixed headers ([`consul_headers`]) and gzip ([`gzip`]).
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
pub(crate) async fn measure(req: Request, next: Next) -> Response {
    let start = std::time::Instant::now();
    let method = req.method().as_str().to_string();
    let path = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| route_label(m.as_str()))
        .unwrap_or_default();
    let resp = next.run(req).await;
    metrics::histogram!("consul.api.http", "method" => method, "path" => path)
        .record(start.elapsed().as_secs_f64() * 1000.0);
    resp
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

/// Headers Consul sets on every response before its handler runs: the ACL default policy
/// (`allow` while ACLs are not enforced; a config asking for them is refused at start).
pub(crate) async fn consul_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(
        "X-Consul-Default-ACL-Policy",
        HeaderValue::from_static("allow"),
    );
    resp
}

pub(crate) async fn gzip(req: Request, next: Next) -> Response {
    let wants = req
        .headers()
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(accepts_gzip);
    let resp = next.run(req).await;
    // Already compressed (a snapshot archive): compressing again only costs time.
    let compressed = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().ends_with(b"gzip"));
    if !wants || compressed || resp.headers().contains_key(CONTENT_ENCODING) {
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
