//! Request bodies exactly as Consul's official Go client (`github.com/hashicorp/consul/api`)
//! and Python clients send them: Go's nil slices, maps and pointers arrive as `null`, numbers
//! stand for durations. Each is accepted with the state Consul would make of it.

use proconsul_testkit::TestAgent;
use serde_json::json;

/// `json.Marshal(api.AgentServiceRegistration{Name: "web", Port: 80})`: `Check` and `Checks`
/// carry no `omitempty`, so Go writes them as `null`.
const GO_SERVICE: &[u8] = br#"{"Name":"web","Port":80,"Check":null,"Checks":null}"#;

/// `json.Marshal(api.CatalogRegistration{Node: "ext", Address: "10.0.0.9", Service:
/// &api.AgentService{ID: "db1", Service: "db", Port: 5432}})`: nil maps and slices as `null`,
/// the value-typed `Weights` as zeros.
const GO_CATALOG: &[u8] = br#"{"ID":"","Node":"ext","Address":"10.0.0.9","TaggedAddresses":null,"NodeMeta":null,"Datacenter":"","Service":{"ID":"db1","Service":"db","Tags":null,"Meta":null,"Port":5432,"Address":"","Weights":{"Passing":0,"Warning":0},"EnableTagOverride":false},"Check":null,"Checks":null,"SkipNodeUpdate":false}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_clients_null_fields_are_absent() {
    let a = TestAgent::dev().await;
    let r = a.put("/v1/agent/service/register", GO_SERVICE).await;
    assert_eq!((r.status, r.text().as_str()), (200, ""));
    let svc = a.get_json("/v1/agent/service/web").await;
    assert_eq!(svc["Service"], "web");
    assert_eq!(svc["Port"], 80);
    assert_eq!(svc["Tags"], json!([]));
    assert_eq!(a.get_json("/v1/agent/checks").await, json!({}));

    let r = a.put("/v1/catalog/register", GO_CATALOG).await;
    assert_eq!((r.status, r.text().as_str()), (200, "true"));
    let rows = a.get_json("/v1/catalog/service/db").await;
    assert_eq!(rows[0]["Node"], "ext");
    assert_eq!(rows[0]["ServicePort"], 5432);
    assert_eq!(rows[0]["NodeMeta"], json!({}));

    // A check with every optional member null, and a session and txn likewise.
    let r = a
        .put(
            "/v1/agent/check/register",
            br#"{"Name":"mem","TTL":"10s","Notes":null,"ServiceID":null,"Header":null,"ScriptArgs":null}"#,
        )
        .await;
    assert_eq!((r.status, r.text().as_str()), (200, ""));
    assert_eq!(
        a.get_json("/v1/agent/checks").await["mem"]["Status"],
        "critical"
    );
    let r = a
        .put(
            "/v1/session/create",
            br#"{"Name":"s","LockDelay":null,"NodeChecks":null,"ServiceChecks":null,"TTL":null}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["ID"].as_str().unwrap().to_string();
    let info = a.get_json(&format!("/v1/session/info/{id}")).await;
    assert_eq!(info[0]["NodeChecks"], json!(["serfHealth"]));
    assert_eq!(info[0]["LockDelay"], 15_000_000_000u64);
    let r = a
        .put(
            "/v1/txn",
            br#"[{"KV":{"Verb":"set","Key":"k","Value":"dg==","Flags":0,"Index":0,"Session":""},"Node":null,"Service":null,"Check":null}]"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = a
        .put(
            "/v1/operator/autopilot/configuration",
            br#"{"CleanupDeadServers":true,"LastContactThreshold":null,"MaxTrailingLogs":250,"ServerStabilizationTime":null}"#,
        )
        .await;
    assert_eq!((r.status, r.text().as_str()), (200, "true"));
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_durations_are_nanoseconds() {
    let a = TestAgent::dev().await;
    // Python clients send durations as numbers: nanoseconds, as Go reads them.
    let r = a
        .put(
            "/v1/agent/service/register",
            br#"{"Name":"api","Check":{"TCP":"127.0.0.1:1","Interval":10000000000,"Timeout":1500000000}}"#,
        )
        .await;
    assert_eq!((r.status, r.text().as_str()), (200, ""));
    let check = &a.get_json("/v1/agent/checks").await["service:api"];
    assert_eq!(check["Type"], "tcp");
    assert_eq!(check["Interval"], "10s");
    assert_eq!(check["Timeout"], "1.5s");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_tagged_addresses_are_address_and_port() {
    let a = TestAgent::dev().await;
    let r = a
        .put(
            "/v1/agent/service/register",
            br#"{"Name":"t","TaggedAddresses":{"lan":{"address":"10.10.10.1","port":8080},"wan":{"Address":"192.168.1.1","Port":80}}}"#,
        )
        .await;
    assert_eq!((r.status, r.text().as_str()), (200, ""));
    let want = json!({"lan": {"Address": "10.10.10.1", "Port": 8080},
                      "wan": {"Address": "192.168.1.1", "Port": 80}});
    assert_eq!(
        a.get_json("/v1/agent/services").await["t"]["TaggedAddresses"],
        want
    );
    proconsul_testkit::wait_until(
        std::time::Duration::from_secs(10),
        "the service in the catalog",
        || async {
            a.get_json("/v1/catalog/service/t")
                .await
                .as_array()
                .map(Vec::len)
                == Some(1)
        },
    )
    .await;
    let rows = a.get_json("/v1/catalog/service/t").await;
    assert_eq!(rows[0]["ServiceTaggedAddresses"], want);
    // Without tagged addresses the agent's view leaves the field out, as Consul's omitempty.
    a.put("/v1/agent/service/register", br#"{"Name":"plain"}"#)
        .await;
    assert!(a.get_json("/v1/agent/services").await["plain"]
        .get("TaggedAddresses")
        .is_none());
    a.stop().await;
}
