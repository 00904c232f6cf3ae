//! The one request path, end to end: a client agent's HTTP API reaches the server through one
//! RPC (`Call`) carrying a typed request — `Operator.Usage` (an endpoint added on that path),
//! `Status.Leader`, reads with a `?dc=` the server checks — and gets the typed reply back.

use crate::common;

use std::time::Duration;

use common::{
    free_port, http_get, http_request, isolated_config, own_member_addr, start, start_dev, wait_for,
};

fn json(port: u16, path: &str) -> serde_json::Value {
    let (code, body) = http_get(port, path).unwrap();
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn a_client_agent_serves_server_requests_over_one_call() {
    let dir = tempfile::tempdir().unwrap();
    let server_http = free_port();
    let server_dir = dir.path().join("server");
    std::fs::create_dir_all(&server_dir).unwrap();
    let cfg = isolated_config(&server_dir, server_http);
    let _server = start_dev(&cfg, server_http, &server_dir.join("log"));
    let lan = own_member_addr(server_http);

    let client_http = free_port();
    let client_dir = dir.path().join("client");
    std::fs::create_dir_all(&client_dir).unwrap();
    let cfg = isolated_config(&client_dir, client_http);
    let _client = start(
        &[
            "agent",
            "-node=c1",
            "-bind=127.0.0.1",
            &format!("-retry-join={lan}"),
            &format!("-data-dir={}", client_dir.join("data").display()),
            &format!("-config-file={}", cfg.display()),
        ],
        &client_dir.join("log"),
    );
    wait_for(
        "the client to know the leader",
        Duration::from_secs(30),
        || http_get(client_http, "/v1/status/leader").is_some_and(|(c, b)| c == 200 && b.len() > 2),
    );
    let (code, body) = http_request(
        "127.0.0.1",
        client_http,
        "PUT",
        "/v1/agent/service/register",
        r#"{"Name":"web","Port":80}"#,
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    wait_for(
        "the client and its service in the catalog",
        Duration::from_secs(30),
        || {
            let usage = http_get(client_http, "/v1/operator/usage");
            usage.is_some_and(|(c, b)| {
                c == 200 && b.contains("\"Nodes\":2") && b.contains("\"ServiceInstances\":2")
            })
        },
    );

    let usage = json(client_http, "/v1/operator/usage");
    let dc = &usage["Usage"]["dc1"];
    assert_eq!(dc["Services"], 2, "{usage}");
    assert_eq!(dc["ServiceInstances"], 2, "{usage}");
    assert_eq!(
        dc["BillableServiceInstances"], 1,
        "consul is not billed: {usage}"
    );
    assert_eq!(dc["Nodes"], 2, "{usage}");
    assert_eq!(dc["ConnectServiceInstances"]["connect-proxy"], 0, "{usage}");
    assert_eq!(dc["ConnectServiceInstances"].as_object().unwrap().len(), 5);
    assert_eq!(usage["KnownLeader"], true);
    assert_eq!(usage["ConsistencyLevel"], "leader");
    assert!(usage["Index"].as_u64().unwrap() > 0, "{usage}");
    let stale = json(client_http, "/v1/operator/usage?stale");
    assert_eq!(stale["ConsistencyLevel"], "stale");
    assert_eq!(stale["Usage"]["dc1"], usage["Usage"]["dc1"]);

    assert_eq!(
        http_get(client_http, "/v1/status/leader").unwrap().1,
        http_get(server_http, "/v1/status/leader").unwrap().1
    );
    for path in ["/v1/kv/x?dc=elsewhere", "/v1/operator/usage?dc=elsewhere"] {
        let (code, body) = http_get(client_http, path).unwrap();
        assert_eq!(
            (code, body.trim()),
            (500, "No path to datacenter"),
            "{path}"
        );
    }
    assert_eq!(
        json(client_http, "/v1/operator/usage?dc=dc1")["Usage"]["dc1"]["Nodes"],
        2
    );
}
