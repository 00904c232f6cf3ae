//! `translate_wan_addrs`: an agent that turns it on answers reads about another datacenter
//! (`?dc=`, `<svc>.service.<dc>.consul`, prepared queries that fail over) with the WAN tagged
//! addresses of its nodes and services, and says so in `X-Consul-Translate-Addresses`; its own
//! datacenter's rows, and agents that leave it off, keep the registered addresses.

use proconsul_config::AgentFlags;
use proconsul_testkit::{dev_flags, TestAgent};
use serde_json::{json, Value};

use crate::dns::dig;

/// A node of `a`'s datacenter with a LAN and a WAN address, running `web` with its own WAN
/// address and port.
async fn register_external(a: &TestAgent, node: &str, n: u8) {
    let body = json!({
        "Node": node,
        "Address": format!("10.1.0.{n}"),
        "TaggedAddresses": {"wan": format!("198.51.100.{n}")},
        "Service": {
            "Service": "web",
            "Address": format!("10.1.1.{n}"),
            "Port": 8080,
            "TaggedAddresses": {"wan": {"Address": format!("203.0.113.{n}"), "Port": 18080}}
        },
        "Check": {"CheckID": "web-ok", "Name": "web", "Status": "passing", "ServiceID": "web"}
    });
    let r = a
        .put("/v1/catalog/register", body.to_string().as_bytes())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_datacenters_rows_carry_wan_addresses() {
    let a = TestAgent::start_with(
        AgentFlags {
            node_name: Some("t1".into()),
            ..dev_flags()
        },
        |cfg| {
            cfg.translate_wan_addrs = true;
            cfg.dns_addrs = vec!["127.0.0.1:0".parse().unwrap()];
        },
    )
    .await;
    let b = TestAgent::start_with(
        AgentFlags {
            node_name: Some("t2".into()),
            datacenter: Some("dc2".into()),
            ..dev_flags()
        },
        |_| {},
    )
    .await;
    a.federate_with(&b, "dc2").await;
    register_external(&b, "far", 2).await;
    register_external(&a, "near", 1).await;

    // catalog/service: node and service addresses and the service port.
    let r = a.get("/v1/catalog/service/web?dc=dc2").await;
    assert_eq!(r.header("X-Consul-Translate-Addresses"), Some("true"));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        first_instance_address(&v),
        (json!("198.51.100.2"), json!("203.0.113.2"), json!(18080)),
        "{v}"
    );
    // The tags themselves are untouched.
    assert_eq!(v[0]["TaggedAddresses"]["wan"], "198.51.100.2");

    // health/service, catalog/nodes, catalog/node.
    let v = a.get_json("/v1/health/service/web?dc=dc2").await;
    assert_eq!(
        (
            &v[0]["Node"]["Address"],
            &v[0]["Service"]["Address"],
            &v[0]["Service"]["Port"]
        ),
        (&json!("198.51.100.2"), &json!("203.0.113.2"), &json!(18080)),
        "{v}"
    );
    let v = a.get_json("/v1/catalog/nodes?dc=dc2").await;
    let far = v
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["Node"] == "far")
        .unwrap();
    assert_eq!(far["Address"], "198.51.100.2");
    let v = a.get_json("/v1/catalog/node/far?dc=dc2").await;
    assert_eq!(v["Node"]["Address"], "198.51.100.2", "{v}");
    assert_eq!(v["Services"]["web"]["Address"], "203.0.113.2", "{v}");
    assert_eq!(v["Services"]["web"]["Port"], 18080, "{v}");

    // Its own datacenter: as registered, the header still says translation is on.
    let r = a.get("/v1/catalog/service/web").await;
    assert_eq!(r.header("X-Consul-Translate-Addresses"), Some("true"));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        first_instance_address(&v),
        (json!("10.1.0.1"), json!("10.1.1.1"), json!(8080)),
        "{v}"
    );
    // An agent without the setting: no header, registered addresses, even across.
    let r = b.get("/v1/catalog/service/web?dc=dc1").await;
    assert_eq!(r.header("X-Consul-Translate-Addresses"), None);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v[0]["ServiceAddress"], "10.1.1.1", "{v}");

    // A prepared query that fails over to dc2 answers with dc2's WAN addresses.
    let query =
        json!({"Name": "w", "Service": {"Service": "web", "Failover": {"Datacenters": ["dc2"]}}});
    let r =
        proconsul_testkit::http::request(a.http, "POST", "/v1/query", query.to_string().as_bytes())
            .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = a
        .put(
            "/v1/catalog/deregister",
            json!({"Node": "near"}).to_string().as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200);
    let v = a.get_json("/v1/query/w/execute").await;
    assert_eq!(v["Datacenter"], "dc2", "{v}");
    assert_eq!(v["Nodes"][0]["Service"]["Address"], "203.0.113.2", "{v}");

    // DNS: the service's WAN address and port for dc2's instances.
    let port = a.agent.dns_addrs()[0].port();
    assert_eq!(
        dig(port, &["+short", "web.service.dc2.consul", "A"]).trim(),
        "203.0.113.2"
    );
    let srv = dig(port, &["+short", "web.service.dc2.consul", "SRV"]);
    assert!(srv.contains(" 18080 "), "{srv}");
    a.stop().await;
    b.stop().await;
}

/// `catalog/service`'s first instance: node address, service address, service port.
fn first_instance_address(v: &Value) -> (Value, Value, Value) {
    (
        v[0]["Address"].clone(),
        v[0]["ServiceAddress"].clone(),
        v[0]["ServicePort"].clone(),
    )
}
