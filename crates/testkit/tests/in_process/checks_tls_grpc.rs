//! HTTPS, gRPC (plain and TLS) checks and HTTP redirects on `agent -dev`, against real local
//! servers that the tests stop and restart.

use std::time::Duration;

use proconsul_testkit::{wait_until, TestAgent};
use serde_json::{json, Value};

use crate::support::{Kind, Server};

async fn check(a: &TestAgent, id: &str) -> Value {
    a.get_json("/v1/agent/checks").await[id].clone()
}

async fn wait_status(a: &TestAgent, id: &str, status: &str) -> String {
    wait_until(
        Duration::from_secs(15),
        &format!("{id} {status}"),
        // a fresh check is critical with no output until its first run
        || async {
            let c = check(a, id).await;
            c["Status"] == status && c["Output"].as_str().is_some_and(|o| !o.is_empty())
        },
    )
    .await;
    check(a, id).await["Output"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

async fn register(a: &TestAgent, body: Value) {
    let r = a
        .put("/v1/agent/check/register", body.to_string().as_bytes())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn passing_instances(a: &TestAgent, service: &str) -> usize {
    a.get_json(&format!("/v1/health/service/{service}?passing"))
        .await
        .as_array()
        .map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_checks_skip_verify_or_fail_on_an_untrusted_certificate() {
    let a = TestAgent::dev().await;
    let mut web = Server::start(Kind::Https).await;
    let url = format!("https://{}/health", web.addr);
    register(
        &a,
        json!({"Name": "skip", "HTTP": url, "TLSSkipVerify": true, "Interval": "1s"}),
    )
    .await;
    register(&a, json!({"Name": "strict", "HTTP": url, "Interval": "1s"})).await;

    let out = wait_status(&a, "skip", "passing").await;
    assert_eq!(out, format!("HTTP GET {url}: 200 OK Output: ok"));
    assert_eq!(check(&a, "skip").await["Type"], "http");
    // the fixture's CA is in no system store
    let out = wait_status(&a, "strict", "critical").await;
    assert_eq!(
        out,
        format!(
            "GET {url}: tls: failed to verify certificate: x509: certificate signed by unknown authority"
        )
    );

    web.stop();
    let out = wait_status(&a, "skip", "critical").await;
    assert!(out.starts_with(&format!("GET {url}: dial tcp")), "{out}");
    web.start_again().await;
    wait_status(&a, "skip", "passing").await;
    assert_eq!(check(&a, "strict").await["Status"], "critical");

    // a plain-HTTP client speaking to the TLS port gets no valid answer
    register(
        &a,
        json!({"Name": "plain", "HTTP": format!("http://{}/health", web.addr), "Interval": "1s"}),
    )
    .await;
    wait_status(&a, "plain", "critical").await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_check_follows_the_health_server() {
    let a = TestAgent::dev().await;
    a.wait_registered().await;
    let mut grpc = Server::start(Kind::Grpc).await;
    let target = format!("{}/web", grpc.addr);
    let body = json!({
        "Name": "web", "Port": grpc.addr.port(), "Address": "127.0.0.1",
        "Check": {"GRPC": target, "Interval": "1s"}
    });
    let r = a
        .put("/v1/agent/service/register", body.to_string().as_bytes())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // the other targets hang off another service, so their failures leave `web` passing
    let body = json!({
        "Name": "probes",
        "Checks": [
            {"CheckID": "whole", "GRPC": grpc.addr.to_string(), "Interval": "1s"},
            {"CheckID": "down", "GRPC": format!("{}/down", grpc.addr), "Interval": "1s"},
            {"CheckID": "nosuch", "GRPC": format!("{}/nosuch", grpc.addr), "Interval": "1s"},
        ]
    });
    let r = a
        .put("/v1/agent/service/register", body.to_string().as_bytes())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    let out = wait_status(&a, "service:web", "passing").await;
    assert_eq!(out, format!("gRPC check {target}: success"));
    assert_eq!(check(&a, "service:web").await["Type"], "grpc");
    let out = wait_status(&a, "whole", "passing").await;
    assert_eq!(out, format!("gRPC check {}: success", grpc.addr));
    let out = wait_status(&a, "down", "critical").await;
    assert_eq!(
        out,
        format!("gRPC {}/down serving status: NOT_SERVING", grpc.addr)
    );
    let out = wait_status(&a, "nosuch", "critical").await;
    assert_eq!(out, "rpc error: code = NotFound desc = unknown service");
    wait_until(Duration::from_secs(15), "web in ?passing", || async {
        passing_instances(&a, "web").await == 1
    })
    .await;

    // the server goes away: critical, and the instance leaves ?passing
    grpc.stop();
    let out = wait_status(&a, "service:web", "critical").await;
    assert!(
        out.starts_with(&format!(
            "rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial tcp {}",
            grpc.addr
        )),
        "{out}"
    );
    wait_until(Duration::from_secs(15), "web out of ?passing", || async {
        passing_instances(&a, "web").await == 0
    })
    .await;

    // and comes back
    grpc.start_again().await;
    wait_status(&a, "service:web", "passing").await;
    wait_until(Duration::from_secs(15), "web back in ?passing", || async {
        passing_instances(&a, "web").await == 1
    })
    .await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_checks_over_tls() {
    let a = TestAgent::dev().await;
    let grpc = Server::start(Kind::GrpcTls).await;
    let target = format!("{}/web", grpc.addr);
    register(
        &a,
        json!({"Name": "tls-skip", "GRPC": target, "GRPCUseTLS": true, "TLSSkipVerify": true,
               "Interval": "1s"}),
    )
    .await;
    register(
        &a,
        json!({"Name": "tls-strict", "GRPC": target, "GRPCUseTLS": true, "Interval": "1s"}),
    )
    .await;
    register(
        &a,
        json!({"Name": "no-tls", "GRPC": target, "Interval": "1s", "Timeout": "2s"}),
    )
    .await;
    let out = wait_status(&a, "tls-skip", "passing").await;
    assert_eq!(out, format!("gRPC check {target}: success"));
    let out = wait_status(&a, "tls-strict", "critical").await;
    assert_eq!(
        out,
        "rpc error: code = Unavailable desc = connection error: desc = \"transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority\""
    );
    // plaintext HTTP/2 against a TLS port fails rather than hanging past the timeout
    wait_status(&a, "no-tls", "critical").await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_checks_follow_redirects_unless_disabled() {
    let a = TestAgent::dev().await;
    let web = Server::start(Kind::Http).await;
    let old = format!("http://{}/old", web.addr);
    register(&a, json!({"Name": "follow", "HTTP": old, "Interval": "1s"})).await;
    register(
        &a,
        json!({"Name": "nofollow", "HTTP": old, "DisableRedirects": true, "Interval": "1s"}),
    )
    .await;
    let looping = format!("http://{}/loop", web.addr);
    register(
        &a,
        json!({"Name": "loop", "HTTP": looping, "Interval": "1s"}),
    )
    .await;

    // the output names the configured URL and the final response, as Consul's does
    let out = wait_status(&a, "follow", "passing").await;
    assert_eq!(out, format!("HTTP GET {old}: 200 OK Output: ok"));
    let out = wait_status(&a, "nofollow", "critical").await;
    assert_eq!(
        out,
        format!("HTTP GET {old}: 301 Moved Permanently Output: ")
    );
    let out = wait_status(&a, "loop", "critical").await;
    assert_eq!(out, format!("GET {looping}: stopped after 10 redirects"));
    a.stop().await;
}
