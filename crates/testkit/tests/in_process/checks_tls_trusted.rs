//! HTTPS and gRPC-over-TLS checks that verify the server's certificate against the system trust
//! store, pointed at the test CA through `SSL_CERT_FILE` (read by rustls-native-certs as by Go's
//! crypto/x509). The variable is process-wide and the store is read once, so the test runs in a
//! process of its own (`support::in_own_process`) started with the variable set.

use std::time::Duration;

use proconsul_testkit::{wait_until, TestAgent};
use serde_json::{json, Value};

use crate::support::{self, in_own_process, Kind, Server};

async fn status_and_output(a: &TestAgent, id: &str) -> (String, String) {
    let c = &a.get_json("/v1/agent/checks").await[id];
    (
        c["Status"].as_str().unwrap_or("").to_string(),
        c["Output"].as_str().unwrap_or("").to_string(),
    )
}

async fn wait_status(a: &TestAgent, id: &str, status: &str) -> String {
    wait_until(
        Duration::from_secs(15),
        &format!("{id} {status}"),
        // a fresh check is critical with no output until its first run
        || async {
            let (s, o) = status_and_output(a, id).await;
            s == status && !o.is_empty()
        },
    )
    .await;
    status_and_output(a, id).await.1
}

async fn register(a: &TestAgent, body: Value) {
    let r = a
        .put("/v1/agent/check/register", body.to_string().as_bytes())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn checks_verify_against_the_system_trust_store() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, support::CA_PEM).unwrap();
    let env = [("SSL_CERT_FILE", ca.as_os_str())];
    if !in_own_process(
        module_path!(),
        "checks_verify_against_the_system_trust_store",
        &env,
        &["SSL_CERT_DIR"],
    ) {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}

async fn run() {
    let a = TestAgent::dev().await;
    let web = Server::start(Kind::Https).await;
    let port = web.addr.port();
    let by_ip = format!("https://127.0.0.1:{port}/health");
    let by_name = format!("https://localhost:{port}/health");
    register(&a, json!({"Name": "ip", "HTTP": by_ip, "Interval": "1s"})).await;
    register(
        &a,
        json!({"Name": "name", "HTTP": by_name, "Interval": "1s"}),
    )
    .await;
    // tls_server_name is what the certificate must match (and the SNI sent)
    register(
        &a,
        json!({"Name": "sni-ok", "HTTP": by_ip, "TLSServerName": "localhost", "Interval": "1s"}),
    )
    .await;
    register(
        &a,
        json!({"Name": "sni-bad", "HTTP": by_ip, "TLSServerName": "db.example", "Interval": "1s"}),
    )
    .await;

    assert_eq!(
        wait_status(&a, "ip", "passing").await,
        format!("HTTP GET {by_ip}: 200 OK Output: ok")
    );
    wait_status(&a, "name", "passing").await;
    wait_status(&a, "sni-ok", "passing").await;
    let out = wait_status(&a, "sni-bad", "critical").await;
    assert!(
        out.starts_with(&format!(
            "GET {by_ip}: tls: failed to verify certificate: x509: "
        )) && out.contains("db.example"),
        "{out}"
    );

    let grpc = Server::start(Kind::GrpcTls).await;
    register(
        &a,
        json!({"Name": "grpc", "GRPC": format!("localhost:{}/web", grpc.addr.port()),
               "GRPCUseTLS": true, "Interval": "1s"}),
    )
    .await;
    register(
        &a,
        json!({"Name": "grpc-sni-bad", "GRPC": format!("{}/web", grpc.addr),
               "GRPCUseTLS": true, "TLSServerName": "db.example", "Interval": "1s"}),
    )
    .await;
    wait_status(&a, "grpc", "passing").await;
    let out = wait_status(&a, "grpc-sni-bad", "critical").await;
    assert!(out.contains("authentication handshake failed"), "{out}");
    a.stop().await;
}
