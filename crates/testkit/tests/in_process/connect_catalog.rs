//! What the catalog knows of Connect: proxies registered with their destination (by hand or as
//! a service's sidecar), Connect-native services, and the endpoints that list the
//! Connect-capable instances of a service. proconsul runs no mesh; it keeps and answers what
//! Consul's catalog keeps and answers.

use std::time::Duration;

use proconsul_testkit::{wait_until, TestAgent};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecars_proxies_and_the_connect_endpoints() {
    let a = TestAgent::dev().await;
    a.wait_registered().await;
    // A sidecar with Consul's defaults (py-consul sends snake_case).
    let r = a
        .put(
            "/v1/agent/service/register",
            br#"{"name":"web","port":8080,"connect":{"sidecar_service":{}}}"#,
        )
        .await;
    assert_eq!((r.status, r.text().as_str()), (200, ""));
    let svcs = a.get_json("/v1/agent/services").await;
    let side = &svcs["web-sidecar-proxy"];
    assert_eq!(side["Kind"], "connect-proxy");
    assert_eq!(side["Service"], "web-sidecar-proxy");
    assert_eq!(side["Port"], 21000);
    assert_eq!(
        side["Proxy"],
        json!({"DestinationServiceName": "web", "DestinationServiceID": "web",
               "LocalServiceAddress": "127.0.0.1", "LocalServicePort": 8080,
               "MeshGateway": {}, "Expose": {}})
    );
    assert!(svcs["web"].get("Proxy").is_none() && svcs["web"].get("Connect").is_none());
    let checks = a.get_json("/v1/agent/checks").await;
    let names: Vec<&str> = checks
        .as_object()
        .unwrap()
        .values()
        .filter(|c| c["ServiceID"] == "web-sidecar-proxy")
        .map(|c| c["Name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Connect Sidecar Listening", "Connect Sidecar Aliasing web"]
    );

    // A proxy registered by hand, and a Connect-native service.
    let r = a
        .put(
            "/v1/agent/service/register",
            br#"{"Name":"api-proxy","Kind":"connect-proxy","Port":21500,
                 "Proxy":{"DestinationServiceName":"api","LocalServicePort":9000},
                 "Locality":{"Region":"us-west-1","Zone":"us-west-1a"}}"#,
        )
        .await;
    assert_eq!((r.status, r.text().as_str()), (200, ""));
    assert_eq!(
        a.get_json("/v1/agent/services").await["api-proxy"]["Locality"],
        json!({"Region": "us-west-1", "Zone": "us-west-1a"})
    );
    a.put(
        "/v1/agent/service/register",
        br#"{"Name":"native","Port":7000,"Connect":{"Native":true}}"#,
    )
    .await;
    assert_eq!(
        a.get_json("/v1/agent/services").await["native"]["Connect"],
        json!({"Native": true})
    );
    // A proxy must name its destination and a port; nothing is registered otherwise.
    let r = a
        .put(
            "/v1/agent/service/register",
            br#"{"Name":"bad","Kind":"connect-proxy","Port":1}"#,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(a.get_json("/v1/agent/services").await.get("bad").is_none());

    wait_until(
        Duration::from_secs(10),
        "proxies in the catalog",
        || async {
            a.get_json("/v1/catalog/connect/web")
                .await
                .as_array()
                .map(Vec::len)
                == Some(1)
                && a.get_json("/v1/catalog/connect/native")
                    .await
                    .as_array()
                    .map(Vec::len)
                    == Some(1)
                && a.get_json("/v1/catalog/connect/api")
                    .await
                    .as_array()
                    .map(Vec::len)
                    == Some(1)
        },
    )
    .await;
    let row = &a.get_json("/v1/catalog/connect/web").await[0];
    assert_eq!(row["ServiceID"], "web-sidecar-proxy");
    assert_eq!(row["ServiceProxy"]["DestinationServiceName"], "web");
    assert_eq!(row["ServiceProxy"]["Mode"], "");
    assert_eq!(
        a.get_json("/v1/catalog/connect/native").await[0]["ServiceConnect"],
        json!({"Native": true})
    );
    assert_eq!(
        a.get_json("/v1/catalog/connect/api").await[0]["ServiceLocality"],
        json!({"Region": "us-west-1", "Zone": "us-west-1a"})
    );
    let h = a.get_json("/v1/health/connect/web").await;
    assert_eq!(h[0]["Service"]["ID"], "web-sidecar-proxy");
    assert_eq!(h[0]["Service"]["Port"], 21000);
    assert_eq!(a.get_json("/v1/catalog/connect/nothing").await, json!([]));
    assert_eq!(a.get_json("/v1/health/connect/nothing").await, json!([]));

    // The sidecar leaves with its service.
    assert_eq!(
        a.put("/v1/agent/service/deregister/web", b"").await.status,
        200
    );
    let svcs = a.get_json("/v1/agent/services").await;
    assert!(svcs.get("web-sidecar-proxy").is_none(), "{svcs}");
    wait_until(
        Duration::from_secs(10),
        "sidecar gone from the catalog",
        || async { a.get_json("/v1/catalog/connect/web").await == json!([]) },
    )
    .await;
    a.stop().await;
}
