//! What wraps every response ([`AroundLayer`]): Consul's fixed headers, gzip, the request timer,
//! and the connection's place with its client's scheduler ([`crate::fair`]).
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
/// Everything that wraps every response, as one tower layer: Consul's fixed headers, gzip when
/// asked for, and the `consul.api.http` timer. Written by hand rather than with axum's
/// `from_fn`, which clones the inner service and boxes a future per request (about 5% of a
/// KV GET on one connection); this layer allocates nothing unless it compresses.
#[derive(Clone, Copy)]
pub(crate) struct AroundLayer {
    /// `acl.default_policy`, for `X-Consul-Default-ACL-Policy`.
    pub default_allow: bool,
}

impl<S> tower::Layer<S> for AroundLayer {
    type Service = Around<S>;
    fn layer(&self, inner: S) -> Around<S> {
        Around {
            inner,
            default_allow: self.default_allow,
        }
    }
}

#[derive(Clone)]
pub(crate) struct Around<S> {
    inner: S,
    default_allow: bool,
}

impl<S> tower::Service<Request> for Around<S>
where
    S: tower::Service<Request, Response = Response>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future =
        AroundFuture<tokio::task::futures::TaskLocalFuture<Option<std::sync::Arc<str>>, S::Future>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let in_progress = req
            .extensions()
            .get::<axum::extract::ConnectInfo<crate::limit::ClientInfo>>()
            .map(|c| c.0.gate.begin(waits(&req)));
        // The route's pattern lives as long as the router: its address names the route, so
        // the timer is found without copying the pattern or touching its reference count.
        let route: &'static str = req
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .map_or("", |m| route_key(m.as_str()));
        AroundFuture {
            start: std::time::Instant::now(),
            method: req.method().clone(),
            route,
            wants_gzip: wants_gzip(&req),
            default_allow: self.default_allow,
            inner: {
                let token = crate::caller::token_of(&req);
                crate::caller::with_token(token, self.inner.call(req))
            },
            compressing: None,
            in_progress,
        }
    }
}

/// Will this request wait rather than compute: a blocking query, or a write (which waits for
/// Raft's group commit)? It then gives its connection's place back at once.
fn waits(req: &Request) -> bool {
    if !matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    ) {
        return true;
    }
    req.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|p| p.starts_with("index=") || p.starts_with("hash="))
    })
}

type Compressing = std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;

pin_project_lite::pin_project! {
    pub(crate) struct AroundFuture<F> {
        #[pin]
        inner: F,
        start: std::time::Instant,
        method: axum::http::Method,
        route: &'static str,
        wants_gzip: bool,
        default_allow: bool,
        // Set once the response is in and must be compressed (the only boxed step).
        compressing: Option<Compressing>,
        // The request's hold on its connection's place, let go when the response is in.
        in_progress: Option<crate::fair::RequestInProgress>,
    }
}

impl<F, E> std::future::Future for AroundFuture<F>
where
    F: std::future::Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let this = self.project();
        if this.compressing.is_none() {
            let mut resp = match this.inner.poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(r)) => r,
            };
            drop(this.in_progress.take());
            consul_headers(&mut resp, *this.default_allow);
            if !*this.wants_gzip {
                record_api_http(
                    this.method,
                    this.route,
                    this.start.elapsed().as_secs_f64() * 1000.0,
                );
                return Poll::Ready(Ok(resp));
            }
            *this.compressing = Some(Box::pin(gzip(resp)));
        }
        let fut = this.compressing.as_mut().expect("set above");
        match fut.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(resp) => {
                record_api_http(
                    this.method,
                    this.route,
                    this.start.elapsed().as_secs_f64() * 1000.0,
                );
                Poll::Ready(Ok(resp))
            }
        }
    }
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

/// Headers Consul sets on every response: the ACL default policy.
fn consul_headers(resp: &mut Response, default_allow: bool) {
    resp.headers_mut().insert(
        "X-Consul-Default-ACL-Policy",
        HeaderValue::from_static(if default_allow { "allow" } else { "deny" }),
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
