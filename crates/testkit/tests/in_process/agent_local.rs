//! Agent-local features: maintenance mode, the agent health endpoints, and API-registered
//! services and checks surviving a restart.

use std::time::Duration;

use proconsul_config::AgentFlags;
use proconsul_testkit::{wait_until, TestAgent};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_takes_instances_out_of_discovery() {
    let a = TestAgent::dev().await;
    a.wait_registered().await;
    let r = a
        .put(
            "/v1/agent/service/register",
            br#"{"Name":"web","Port":80,"Check":{"TTL":"60s","Status":"passing"}}"#,
        )
        .await;
    assert_eq!(r.status, 200);
    wait_until(Duration::from_secs(5), "web passing", || async {
        a.get_json("/v1/health/service/web?passing")
            .await
            .as_array()
            .is_some_and(|v| v.len() == 1)
    })
    .await;

    // enable is required and must be a boolean
    assert_eq!(
        a.put("/v1/agent/service/maintenance/web", b"").await.text(),
        "Missing value for enable"
    );
    assert_eq!(
        a.put("/v1/agent/service/maintenance/web?enable=maybe", b"")
            .await
            .status,
        400
    );
    assert_eq!(
        a.put("/v1/agent/service/maintenance/nope?enable=true", b"")
            .await
            .status,
        404
    );

    let r = a
        .put(
            "/v1/agent/service/maintenance/web?enable=true&reason=deploying",
            b"",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = &a.get_json("/v1/agent/checks").await["_service_maintenance:web"];
    assert_eq!(c["Status"], "critical");
    assert_eq!(c["Notes"], "deploying");
    assert_eq!(c["Name"], "Service Maintenance Mode");
    wait_until(Duration::from_secs(5), "web out of discovery", || async {
        a.get_json("/v1/health/service/web?passing").await == json!([])
    })
    .await;
    // agent health: maintenance → 503
    let r = a.get("/v1/agent/health/service/id/web?format=text").await;
    assert_eq!((r.status, r.text().as_str()), (503, "maintenance"));
    a.put("/v1/agent/service/maintenance/web?enable=false", b"")
        .await;
    wait_until(Duration::from_secs(5), "web back", || async {
        a.get_json("/v1/health/service/web?passing")
            .await
            .as_array()
            .is_some_and(|v| v.len() == 1)
    })
    .await;

    // node maintenance takes every instance of the node out
    a.put("/v1/agent/maintenance?enable=true", b"").await;
    let c = &a.get_json("/v1/agent/checks").await["_node_maintenance"];
    assert_eq!(c["Name"], "Node Maintenance Mode");
    assert!(c["Notes"]
        .as_str()
        .unwrap()
        .contains("no reason was provided"));
    wait_until(Duration::from_secs(5), "node in maintenance", || async {
        a.get_json("/v1/health/service/web?passing").await == json!([])
    })
    .await;
    a.put("/v1/agent/maintenance?enable=false", b"").await;
    assert!(a
        .get_json("/v1/agent/checks")
        .await
        .get("_node_maintenance")
        .is_none());
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_health_endpoints() {
    let a = TestAgent::dev().await;
    a.put(
        "/v1/agent/service/register",
        br#"{"ID":"web1","Name":"web","Port":80,"Check":{"TTL":"60s","Status":"passing"}}"#,
    )
    .await;
    a.put(
        "/v1/agent/service/register",
        br#"{"ID":"web2","Name":"web","Port":81,"Check":{"TTL":"60s","Status":"warning"}}"#,
    )
    .await;

    let r = a.get("/v1/agent/health/service/id/web1").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["AggregatedStatus"], "passing");
    assert_eq!(v["Service"]["ID"], "web1");
    assert_eq!(v["Checks"][0]["CheckID"], "service:web1");
    let r = a.get("/v1/agent/health/service/id/web2?format=text").await;
    assert_eq!((r.status, r.text().as_str()), (429, "warning"));
    // by name: the worst instance decides
    let r = a.get("/v1/agent/health/service/name/web").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    a.put("/v1/agent/check/fail/service:web1", b"").await;
    assert_eq!(
        a.get("/v1/agent/health/service/name/web?format=text")
            .await
            .text(),
        "critical"
    );
    assert_eq!(a.get("/v1/agent/health/service/name/web").await.status, 503);
    assert_eq!(a.get("/v1/agent/health/service/id/nope").await.status, 404);
    assert_eq!(
        a.get("/v1/agent/health/service/name/nope").await.status,
        404
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_registrations_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let flags = AgentFlags {
        server: true,
        bootstrap: true,
        bind_addr: Some("127.0.0.1".into()),
        data_dir: Some(data.path().to_path_buf()),
        log_level: Some("warn".into()),
        ..Default::default()
    };
    let a = TestAgent::start_with(flags.clone(), |_| {}).await;
    a.put(
        "/v1/agent/service/register",
        br#"{"Name":"web","Port":80,"Tags":["v1"],"Check":{"TTL":"60s"}}"#,
    )
    .await;
    a.put(
        "/v1/agent/check/register",
        br#"{"Name":"disk","TTL":"30s"}"#,
    )
    .await;
    a.put(
        "/v1/agent/service/register",
        br#"{"Name":"gone","Port":81}"#,
    )
    .await;
    a.put("/v1/agent/service/deregister/gone", b"").await;
    a.stop().await;

    let a = TestAgent::start_with(flags, |_| {}).await;
    let s = a.get_json("/v1/agent/services").await;
    assert_eq!(s["web"]["Port"], 80);
    assert_eq!(s["web"]["Tags"], json!(["v1"]));
    assert!(s.get("gone").is_none());
    let c = a.get_json("/v1/agent/checks").await;
    assert_eq!(c["service:web"]["ServiceID"], "web");
    assert!(c.get("disk").is_some());
    a.stop().await;
}

/// A registration's immediate sync writes what it touched and only that (Consul's `InSync`
/// flags): the service and its checks are in the catalog when the call returns, a
/// deregistration's removal likewise, and drift elsewhere in the node's catalog entry is left
/// to the periodic full sync, not repaired by each registration's sync (which would cost a
/// diff of every service on the node per registration).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_syncs_what_it_touched() {
    let a = TestAgent::dev().await;
    a.wait_registered().await;
    let node = a.agent.node_name().to_string();
    let reg = |id: &str| {
        format!(
            r#"{{"ID":"{id}","Name":"web","Port":80,"Check":{{"TTL":"60s","Status":"passing"}}}}"#
        )
    };
    assert_eq!(
        a.put("/v1/agent/service/register", reg("w1").as_bytes())
            .await
            .status,
        200
    );
    // In the catalog, with its check, when the call returns: no waiting.
    let ids = |v: serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["Service"]["ID"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(a.get_json("/v1/health/service/web?passing").await),
        ["w1"]
    );

    // Drift: w1 removed from the catalog behind the agent's back.
    let r = a
        .put(
            "/v1/catalog/deregister",
            format!(r#"{{"Node":"{node}","ServiceID":"w1"}}"#).as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Registering w2 writes w2 (and its check) only.
    assert_eq!(
        a.put("/v1/agent/service/register", reg("w2").as_bytes())
            .await
            .status,
        200
    );
    assert_eq!(
        ids(a.get_json("/v1/health/service/web?passing").await),
        ["w2"]
    );
    // Deregistering w2 removes it and its check at once.
    assert_eq!(
        a.put("/v1/agent/service/deregister/w2", b"").await.status,
        200
    );
    assert_eq!(
        ids(a.get_json("/v1/health/service/web").await),
        Vec::<String>::new()
    );
    let checks = a.get_json(&format!("/v1/health/node/{node}")).await;
    assert!(
        !checks.to_string().contains("service:w2"),
        "w2's check is gone: {checks}"
    );
    // Any other change makes the next sync a full one, which repairs the drift: w1 is back.
    let r = a
        .put(
            "/v1/agent/check/register",
            br#"{"Name":"node-ttl","TTL":"60s","Status":"passing"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(ids(a.get_json("/v1/health/service/web").await), ["w1"]);
    a.stop().await;
}
