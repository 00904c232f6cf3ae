//! `/v1/coordinate/*` against in-process agents: the agent's own coordinate reaches the
//! catalog through `Coordinate.Update`, updates are validated like Consul's, coordinates leave
//! with their node, blocking queries wake on updates, WAN coordinates per datacenter, and
//! `disable_coordinates`. Coordinate pacing is shortened through the config knobs.

use std::time::Duration;

use proconsul_config::{AgentFlags, RuntimeConfig};
use proconsul_testkit::{dev_flags, wait_until, TestAgent};
use serde_json::{json, Value};

fn fast(cfg: &mut RuntimeConfig) {
    cfg.sync_coordinate_interval_min = Duration::from_millis(50);
    cfg.coordinate_update_period = Duration::from_millis(50);
}

/// Fast batching on the servers, but this agent never sends its own coordinate during the
/// test, so blocking queries wake only for what the test writes.
fn quiet(cfg: &mut RuntimeConfig) {
    cfg.sync_coordinate_interval_min = Duration::from_secs(3600);
    cfg.coordinate_update_period = Duration::from_millis(50);
}

fn coord(x: f64) -> Value {
    json!({"Vec": [x, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], "Error": 0.25, "Adjustment": 0.0001, "Height": 0.00002})
}

async fn nodes(a: &TestAgent) -> Vec<Value> {
    a.get_json("/v1/coordinate/nodes")
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinates_through_the_http_api() {
    let a = TestAgent::start_with(dev_flags(), quiet).await;
    a.wait_registered().await;
    let me = a.agent.node_name().to_string();
    let r = a.get("/v1/coordinate/nodes").await;
    assert_eq!((r.status, r.json()), (200, json!([])), "nothing sent yet");

    // What the agent sends (by itself every interval; here once, by hand).
    a.agent.send_coordinate().await.expect("Coordinate.Update");
    wait_until(Duration::from_secs(10), "own coordinate listed", || async {
        nodes(&a).await.iter().any(|c| c["Node"] == me.as_str())
    })
    .await;
    let r = a.get("/v1/coordinate/nodes").await;
    assert_eq!(r.status, 200);
    assert!(r.index() > 0);
    assert_eq!(r.header("X-Consul-KnownLeader"), Some("true"));
    let all = r.json();
    let mine = &all[0];
    assert_eq!(mine["Segment"], "");
    assert_eq!(mine["Coord"]["Vec"].as_array().map(Vec::len), Some(8));
    for f in ["Error", "Adjustment", "Height"] {
        assert!(mine["Coord"][f].is_number(), "{f} in {mine}");
    }
    let r = a.get(&format!("/v1/coordinate/node/{me}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()[0]["Node"], me.as_str());

    // Unknown node: a bare 404.
    let r = a.get("/v1/coordinate/node/nope").await;
    assert_eq!((r.status, r.text()), (404, String::new()));

    // An update for a catalog node shows up; a blocking query wakes for it.
    let r = a
        .put(
            "/v1/catalog/register",
            json!({"Node": "ext", "Address": "10.1.1.1"})
                .to_string()
                .as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let idx = a.get("/v1/coordinate/nodes").await.index();
    let blocked = {
        let http = a.http;
        tokio::spawn(async move {
            let t = std::time::Instant::now();
            let path = format!("/v1/coordinate/nodes?index={idx}&wait=20s");
            let r = proconsul_testkit::request(http, "GET", &path, b"").await;
            (r, t.elapsed())
        })
    };
    let body = json!({"Node": "ext", "Segment": "", "Coord": coord(0.003)}).to_string();
    let r = a.put("/v1/coordinate/update", body.as_bytes()).await;
    assert_eq!((r.status, r.text()), (200, String::new()));
    let (r, took) = blocked.await.unwrap();
    assert!(
        r.index() > idx && took < Duration::from_secs(15),
        "{took:?}"
    );
    assert!(r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["Node"] == "ext"));
    let got = a.get_json("/v1/coordinate/node/ext").await;
    assert_eq!(
        got,
        json!([{"Node": "ext", "Segment": "", "Coord": coord(0.003)}])
    );

    // Updates for unknown nodes are accepted and dropped, like Consul's.
    let body = json!({"Node": "ghost", "Coord": coord(0.001)}).to_string();
    assert_eq!(
        a.put("/v1/coordinate/update", body.as_bytes()).await.status,
        200
    );

    // Consul's validation.
    let wrong = json!({"Node": "ext", "Coord": {"Vec": [0.0, 0.0], "Error": 1.5}}).to_string();
    let r = a.put("/v1/coordinate/update", wrong.as_bytes()).await;
    assert_eq!(
        (r.status, r.text()),
        (500, "incompatible coordinate".into())
    );
    let none = json!({"Node": "ext"}).to_string();
    let r = a.put("/v1/coordinate/update", none.as_bytes()).await;
    assert_eq!((r.status, r.text()), (500, "invalid coordinate".into()));
    let r = a.put("/v1/coordinate/update", b"{\"Node\": ").await;
    assert_eq!(r.status, 400);
    assert!(
        r.text().starts_with("Request decode failed"),
        "{}",
        r.text()
    );

    // Deregistering the node takes its coordinate with it.
    let r = a.put("/v1/catalog/deregister", br#"{"Node": "ext"}"#).await;
    assert_eq!(r.status, 200);
    assert_eq!(a.get("/v1/coordinate/node/ext").await.status, 404);
    assert!(nodes(&a)
        .await
        .iter()
        .all(|c| c["Node"] != "ext" && c["Node"] != "ghost"));

    // WAN: this server, in its datacenter, without the `.dc1` suffix.
    let dcs = a.get_json("/v1/coordinate/datacenters").await;
    assert_eq!(dcs[0]["Datacenter"], "dc1");
    assert_eq!(dcs[0]["AreaID"], "WAN");
    assert_eq!(dcs[0]["Coordinates"][0]["Node"], me.as_str());
    assert_eq!(
        dcs[0]["Coordinates"][0]["Coord"]["Vec"]
            .as_array()
            .map(Vec::len),
        Some(8)
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossiping_agents_learn_real_coordinates() {
    let s = TestAgent::start_with(
        AgentFlags {
            node_name: Some("cs1".into()),
            ..dev_flags()
        },
        fast,
    )
    .await;
    let c = TestAgent::start_with(
        AgentFlags {
            node_name: Some("cc1".into()),
            bind_addr: Some("127.0.0.1".into()),
            log_level: Some("warn".into()),
            ..Default::default()
        },
        fast,
    )
    .await;
    let r = s
        .put(&format!("/v1/agent/join/{}", c.agent.serf_lan_addr()), b"")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Both nodes listed, each moved off the origin by measured RTTs (read through the client,
    // which forwards to the server).
    wait_until(
        Duration::from_secs(20),
        "both coordinates measured",
        || async {
            let all = nodes(&c).await;
            ["cs1", "cc1"].iter().all(|n| {
                all.iter().any(|e| {
                    e["Node"] == *n
                        && e["Coord"]["Vec"]
                            .as_array()
                            .is_some_and(|v| v.iter().any(|x| x.as_f64() != Some(0.0)))
                })
            })
        },
    )
    .await;
    // A client has no WAN pool: its datacenter with no coordinates.
    let dcs = c.get_json("/v1/coordinate/datacenters").await;
    assert_eq!(
        dcs,
        json!([{"Datacenter": "dc1", "AreaID": "WAN", "Coordinates": []}])
    );
    c.stop().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_coordinates_answer_401() {
    let a = TestAgent::start_with(dev_flags(), |cfg| cfg.disable_coordinates = true).await;
    for path in [
        "/v1/coordinate/nodes",
        "/v1/coordinate/datacenters",
        "/v1/coordinate/node/x",
    ] {
        let r = a.get(path).await;
        assert_eq!(
            (r.status, r.text()),
            (401, "Coordinate support disabled".into()),
            "{path}"
        );
    }
    let r = a.put("/v1/coordinate/update", b"{}").await;
    assert_eq!(r.status, 401);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_sorts_by_round_trip_time() {
    let a = TestAgent::start_with(dev_flags(), quiet).await;
    a.wait_registered().await;
    // Three nodes on a line: far (x=3), mid (x=1), near (x=0.1); a fourth without coordinates.
    for (node, x) in [
        ("far", Some(3.0)),
        ("mid", Some(1.0)),
        ("close", Some(0.1)),
        ("none", None),
    ] {
        let body = json!({"Node": node, "Address": "10.0.0.1",
                          "Service": {"Service": "db", "Port": 5432}});
        assert_eq!(
            a.put("/v1/catalog/register", body.to_string().as_bytes())
                .await
                .status,
            200
        );
        if let Some(x) = x {
            let up = json!({"Node": node, "Coord": coord(x)});
            assert_eq!(
                a.put("/v1/coordinate/update", up.to_string().as_bytes())
                    .await
                    .status,
                200
            );
        }
    }
    let origin = json!({"Node": "origin", "Address": "10.0.0.2"});
    a.put("/v1/catalog/register", origin.to_string().as_bytes())
        .await;
    let up = json!({"Node": "origin", "Coord": coord(0.0)});
    a.put("/v1/coordinate/update", up.to_string().as_bytes())
        .await;
    wait_until(Duration::from_secs(10), "coordinates stored", || async {
        nodes(&a).await.len() == 4
    })
    .await;
    let names = |v: Value, field: &str| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                field
                    .split('.')
                    .fold(r, |v, k| &v[k])
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(
        names(
            a.get_json("/v1/catalog/service/db?near=origin").await,
            "Node"
        ),
        ["close", "mid", "far", "none"]
    );
    assert_eq!(
        names(
            a.get_json("/v1/health/service/db?near=origin").await,
            "Node.Node"
        ),
        ["close", "mid", "far", "none"]
    );
    let nodes_near = names(a.get_json("/v1/catalog/nodes?near=far").await, "Node");
    assert_eq!(&nodes_near[..3], ["far", "mid", "close"]);
    // A node without a coordinate leaves the order as it was (by name).
    assert_eq!(
        names(a.get_json("/v1/catalog/service/db?near=none").await, "Node"),
        ["close", "far", "mid", "none"]
    );
    a.stop().await;
}
