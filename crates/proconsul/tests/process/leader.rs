//! A server reports a leader only once leadership is established: on a fresh `agent -dev`,
//! the first moment `/v1/status/leader` names one, the agent's own node, its `serfHealth`
//! check and the `consul` service are in the catalog, and a session can be created at once.

use crate::common;

use std::time::{Duration, Instant};

use common::{free_port, http_get, http_request, ports_config, start};

/// Poll `/v1/status/leader` at ≤ 5 ms; at the first non-empty answer, check what a client
/// that just saw the leader would do next.
fn first_leader_moment(round: usize) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = ports_config(dir.path(), port);
    let node = format!("lead{round}");
    let _agent = start(
        &[
            "agent",
            "-dev",
            &format!("-node={node}"),
            &format!("-config-file={}", cfg.display()),
        ],
        &dir.path().join("log"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "no leader within 30 s");
        if let Some((200, body)) = http_get(port, "/v1/status/leader") {
            if body.trim() != "\"\"" && !body.trim().is_empty() {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }

    let (code, nodes) = http_get(port, "/v1/catalog/nodes").unwrap();
    assert_eq!(code, 200, "{nodes}");
    assert!(
        nodes.contains(&format!("\"Node\":\"{node}\"")),
        "node not in the catalog: {nodes}"
    );

    let (code, checks) = http_get(port, &format!("/v1/health/node/{node}")).unwrap();
    assert_eq!(code, 200, "{checks}");
    let checks: serde_json::Value = serde_json::from_str(&checks).unwrap();
    let serf = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["CheckID"] == "serfHealth")
        .unwrap_or_else(|| panic!("no serfHealth: {checks}"));
    assert_eq!(serf["Status"], "passing", "{checks}");

    let (code, services) = http_get(port, "/v1/catalog/services").unwrap();
    assert_eq!(code, 200, "{services}");
    assert!(
        services.contains("\"consul\""),
        "no consul service: {services}"
    );

    let (code, body) = http_request(
        "127.0.0.1",
        port,
        "PUT",
        "/v1/session/create",
        "{\"TTL\":\"15s\"}",
    )
    .unwrap();
    assert_eq!(code, 200, "session create: {body}");
    assert!(body.contains("\"ID\""), "{body}");
}

#[test]
fn first_reported_leader_has_reconciled_its_node() {
    for round in 0..3 {
        first_leader_moment(round);
    }
}
