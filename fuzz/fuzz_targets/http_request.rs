//! HTTP requests through the whole `/v1/*` router (`proconsul_http::router`, middleware
//! included) over an in-memory agent: query parameters (`?index=&wait=&filter=&dc=`, flags,
//! `?near=`, `?cas=`, …), path segments and every JSON request body type. The input is
//! `METHOD URI\n` then the body (then headers, when the first line is followed by lines of
//! `Name: value` up to an empty line). Never a panic; every request is answered.
#![no_main]

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use libfuzzer_sys::fuzz_target;
use proconsul_fuzz::{http_router, runtime};
use tower::ServiceExt;

fn request(data: &[u8]) -> Option<Request<Body>> {
    let nl = data.iter().position(|b| *b == b'\n')?;
    let line = std::str::from_utf8(&data[..nl]).ok()?;
    let (method, uri) = line.split_once(' ')?;
    let mut b = Request::builder().method(method).uri(uri);
    let mut rest = &data[nl + 1..];
    // Optional headers, up to an empty line.
    if rest.starts_with(b"H:") {
        rest = &rest[2..];
        loop {
            let end = rest.iter().position(|b| *b == b'\n')?;
            let h = &rest[..end];
            rest = &rest[end + 1..];
            if h.is_empty() {
                break;
            }
            let h = std::str::from_utf8(h).ok()?;
            let (k, v) = h.split_once(':')?;
            b = b.header(k.trim(), v.trim());
        }
    }
    b.body(Body::from(rest.to_vec())).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some(req) = request(data) else {
        return;
    };
    let router = http_router().clone();
    runtime().block_on(async move {
        // Paused clock: a blocking query's wait (10 minutes at most) passes at once; an
        // answer that never ends within a day of that clock is a hang.
        let work = async {
            let resp = router.oneshot(req).await.expect("the router is infallible");
            let _ = axum::body::to_bytes(resp.into_body(), 64 << 20).await;
        };
        tokio::time::timeout(Duration::from_secs(86_400), work)
            .await
            .expect("the request was answered");
    });
});
