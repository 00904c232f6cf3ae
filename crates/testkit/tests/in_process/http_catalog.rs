//! Catalog, health, agent, session, status and event endpoints against `agent -dev`.

use std::time::Duration;

use proconsul_testkit::{wait_until, TestAgent};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_self() {
    let a = TestAgent::dev().await;
    let rpc = a.agent.server().unwrap().rpc_addr().to_string();
    let r = a.get("/v1/status/leader").await;
    assert_eq!(r.json(), json!(rpc));
    let r = a.get("/v1/status/peers").await;
    assert_eq!(r.json(), json!([rpc]));
    let v = a.get_json("/v1/agent/self").await;
    assert_eq!(v["Config"]["Datacenter"], "dc1");
    assert_eq!(v["Config"]["Server"], true);
    assert_eq!(v["Config"]["Version"], "1.22.0");
    assert_eq!(v["Config"]["NodeName"], a.agent.node_name());
    assert_eq!(v["Config"]["NodeID"], a.agent.node_id());
    assert!(v["Config"]["Proconsul"]["Version"].is_string());
    // DebugConfig holds the running config under Consul's RuntimeConfig names.
    let d = &v["DebugConfig"];
    let lan = a.agent.serf_lan_addr();
    assert_eq!(d["SerfBindAddrLAN"], format!("tcp://{lan}"));
    assert_eq!(d["SerfPortLAN"], lan.port());
    assert_eq!(d["ServerMode"], true);
    assert_eq!(d["DevMode"], true);
    assert_eq!(d["NodeName"], a.agent.node_name());
    assert_eq!(d["SessionTTLMin"], "10s");
    assert_eq!(
        d["HTTPAddrs"][0],
        format!("tcp://{}", a.agent.http_addrs()[0])
    );
    assert_eq!(d["EncryptKey"], "");
    // Printed as Consul's agents do, naming no supported proxy (no xDS is served).
    assert_eq!(v["xDS"]["SupportedProxies"], json!({}));
    let consul = &v["Stats"]["consul"];
    assert_eq!(
        (consul["leader"].as_str(), consul["leader_addr"].as_str()),
        (Some("true"), Some(rpc.as_str()))
    );
    assert_eq!(v["Stats"]["agent"]["services"], "0");
    // Coord: this agent's Vivaldi coordinate.
    assert_eq!(
        v["Coord"]["Vec"].as_array().map(Vec::len),
        Some(8),
        "{}",
        v["Coord"]
    );
    let m = a.get_json("/v1/agent/members").await;
    assert_eq!(m[0]["Name"], a.agent.node_name());
    assert_eq!(m[0]["Status"], 1);
    assert_eq!(m[0]["Tags"]["role"], "consul");
    assert!(m[0]["Port"].as_u64().is_some_and(|p| p > 0), "{m}");
    assert_eq!(m[0]["ProtocolCur"], 2);
    assert_eq!(m[0]["DelegateCur"], 4);
    // ?pretty indents by four spaces and ends with a newline
    let r = a.get("/v1/status/peers?pretty").await;
    assert_eq!(r.text(), format!("[\n    \"{rpc}\"\n]\n"));
    assert_eq!(a.get_json("/v1/catalog/datacenters").await, json!(["dc1"]));
    assert_eq!(a.get("/v1/no/such/thing").await.status, 404);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_registers_itself_with_serf_health() {
    let a = TestAgent::dev().await;
    let node = a.agent.node_name().to_string();
    a.wait_registered().await;
    let nodes = a.get_json("/v1/catalog/nodes").await;
    assert_eq!(nodes[0]["Node"], node.as_str());
    assert_eq!(nodes[0]["Address"], "127.0.0.1");
    assert_eq!(nodes[0]["Datacenter"], "dc1");
    assert_eq!(nodes[0]["ID"], a.agent.node_id());
    let checks = a.get_json(&format!("/v1/health/node/{node}")).await;
    let serf = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["CheckID"] == "serfHealth")
        .expect("serfHealth");
    assert_eq!(serf["Status"], "passing");
    assert_eq!(serf["Name"], "Serf Health Status");
    assert_eq!(serf["Output"], "Agent alive and reachable");
    // servers carry the `consul` service, on the server RPC port
    wait_until(Duration::from_secs(5), "consul service", || async {
        a.get_json("/v1/catalog/service/consul")
            .await
            .as_array()
            .is_some_and(|v| v.len() == 1)
    })
    .await;
    // whichever of the leader and anti-entropy registered the node first, it ends up with the
    // agent's tagged addresses
    wait_until(Duration::from_secs(5), "tagged addresses", || async {
        a.get_json("/v1/catalog/nodes").await[0]["TaggedAddresses"]
            == serde_json::json!({"lan": "127.0.0.1", "lan_ipv4": "127.0.0.1",
                                  "wan": "127.0.0.1", "wan_ipv4": "127.0.0.1"})
    })
    .await;
    let c = a.get_json("/v1/catalog/service/consul").await;
    assert_eq!(
        c[0]["ServicePort"],
        a.agent.server().unwrap().rpc_addr().port()
    );
    assert_eq!(c[0]["TaggedAddresses"]["lan"], "127.0.0.1");
    assert_eq!(c[0]["Node"], node.as_str());
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_service_reaches_catalog_and_health() {
    let a = TestAgent::dev().await;
    let node = a.agent.node_name().to_string();
    a.wait_registered().await;
    // lowercase keys, as py-consul sends them
    let r = a
        .put(
            "/v1/agent/service/register",
            br#"{"name":"web","port":9999,"tags":["master"],"meta":{"version":"1"},"check":{"ttl":"30s"}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    let svcs = a.get_json("/v1/agent/services").await;
    assert_eq!(svcs["web"]["Service"], "web");
    assert_eq!(svcs["web"]["Port"], 9999);
    assert_eq!(svcs["web"]["Meta"]["version"], "1");
    let checks = a.get_json("/v1/agent/checks").await;
    assert_eq!(checks["service:web"]["Status"], "critical");
    assert_eq!(checks["service:web"]["ServiceID"], "web");
    assert_eq!(checks["service:web"]["Type"], "ttl");

    // the catalog has it (synced by anti-entropy on registration)
    wait_until(Duration::from_secs(5), "web in catalog", || async {
        a.get_json("/v1/catalog/service/web")
            .await
            .as_array()
            .is_some_and(|v| v.len() == 1)
    })
    .await;
    let rows = a.get_json("/v1/catalog/service/web?pretty").await;
    let r = &rows[0];
    for f in [
        "ID",
        "Node",
        "Address",
        "Datacenter",
        "TaggedAddresses",
        "NodeMeta",
        "ServiceKind",
        "ServiceID",
        "ServiceName",
        "ServiceTags",
        "ServiceAddress",
        "ServiceWeights",
        "ServiceMeta",
        "ServicePort",
        "ServiceEnableTagOverride",
        "ServiceProxy",
        "ServiceConnect",
        "CreateIndex",
        "ModifyIndex",
    ] {
        assert!(r.get(f).is_some(), "missing field {f} in {r}");
    }
    assert_eq!(r["Node"], node.as_str());
    assert_eq!(r["ServiceID"], "web");
    assert_eq!(r["ServiceName"], "web");
    assert_eq!(r["ServiceTags"], json!(["master"]));
    assert_eq!(r["ServicePort"], 9999);
    assert_eq!(r["Datacenter"], "dc1");
    assert_eq!(r["ServiceWeights"], json!({"Passing": 1, "Warning": 1}));
    assert_eq!(
        a.get_json("/v1/catalog/service/web?tag=master")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        a.get_json("/v1/catalog/service/web?tag=other").await,
        json!([])
    );
    assert_eq!(
        a.get_json("/v1/catalog/services").await["web"],
        json!(["master"])
    );

    // critical until the TTL check passes; ?passing filters
    assert_eq!(
        a.get_json("/v1/health/service/web")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        a.get_json("/v1/health/service/web?passing").await,
        json!([])
    );
    let r = a.put("/v1/agent/check/pass/service:web?note=ok", b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_until(Duration::from_secs(5), "web passing", || async {
        a.get_json("/v1/health/service/web?passing")
            .await
            .as_array()
            .is_some_and(|v| v.len() == 1)
    })
    .await;
    let h = a.get_json("/v1/health/service/web?passing").await;
    assert_eq!(h[0]["Service"]["Service"], "web");
    assert_eq!(h[0]["Node"]["Node"], node.as_str());
    let ids: Vec<&str> = h[0]["Checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["CheckID"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"serfHealth") && ids.contains(&"service:web"),
        "{ids:?}"
    );
    let web_check = h[0]["Checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["CheckID"] == "service:web")
        .unwrap();
    assert_eq!(web_check["Output"], "ok");
    assert_eq!(
        a.get_json("/v1/health/checks/web").await[0]["Status"],
        "passing"
    );
    assert_eq!(
        a.get_json("/v1/health/state/passing")
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(a.get("/v1/health/state/bogus").await.status, 400);

    // check/update with a bad status is refused; fail makes it critical again
    let r = a
        .put(
            "/v1/agent/check/update/service:web",
            br#"{"Status":"fine"}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    a.put("/v1/agent/check/fail/service:web", b"").await;
    wait_until(Duration::from_secs(5), "web critical", || async {
        a.get_json("/v1/health/service/web?passing").await == json!([])
    })
    .await;

    // node and node-services views
    let n = a.get_json(&format!("/v1/catalog/node/{node}")).await;
    assert_eq!(n["Node"]["Node"], node.as_str());
    assert_eq!(n["Services"]["web"]["Port"], 9999);
    let n = a
        .get_json(&format!("/v1/catalog/node-services/{node}"))
        .await;
    let ids: Vec<&str> = n["Services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ID"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["consul", "web"]);
    assert!(a.get_json("/v1/catalog/node/nobody").await.is_null());

    // deregistration removes it from the catalog
    let r = a.put("/v1/agent/service/deregister/web", b"").await;
    assert_eq!(r.status, 200);
    wait_until(Duration::from_secs(5), "web gone", || async {
        a.get_json("/v1/catalog/service/web").await == json!([])
    })
    .await;
    assert_eq!(
        a.put("/v1/agent/service/deregister/web", b"").await.status,
        404
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_check_expires_to_critical() {
    let a = TestAgent::dev().await;
    let r = a
        .put(
            "/v1/agent/check/register",
            br#"{"Name":"heartbeat","TTL":"1s","Status":"passing"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        a.get_json("/v1/agent/checks").await["heartbeat"]["Status"],
        "passing"
    );
    wait_until(Duration::from_secs(5), "TTL expiry", || async {
        let c = a.get_json("/v1/agent/checks").await;
        c["heartbeat"]["Status"] == "critical" && c["heartbeat"]["Output"] == "TTL expired"
    })
    .await;
    assert_eq!(a.put("/v1/agent/check/pass/nope", b"").await.status, 404);
    assert_eq!(
        a.put("/v1/agent/check/deregister/heartbeat", b"")
            .await
            .status,
        200
    );
    assert!(a
        .get_json("/v1/agent/checks")
        .await
        .get("heartbeat")
        .is_none());
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_register_bad_input() {
    let a = TestAgent::dev().await;
    assert_eq!(
        a.put("/v1/agent/service/register", b"{nope").await.status,
        400
    );
    let r = a.put("/v1/agent/service/register", br#"{"Port":1}"#).await;
    assert_eq!((r.status, r.text().as_str()), (400, "Missing service name"));
    let r = a
        .put(
            "/v1/agent/service/register",
            br#"{"Name":"x","Port":"eighty"}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    let r = a
        .put(
            "/v1/agent/service/register",
            br#"{"Name":"x","Check":{"TTL":"soon"}}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(a.get_json("/v1/agent/services").await, json!({}));
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_register_and_deregister() {
    let a = TestAgent::dev().await;
    let body = br#"{"Node":"ext","Address":"10.1.2.3","NodeMeta":{"rack":"r1"},
        "Service":{"Service":"db","Port":5432,"Tags":["primary"]},
        "Check":{"CheckID":"db-alive","Name":"db alive","Status":"passing","ServiceID":"db"}}"#;
    let r = a.put("/v1/catalog/register", body).await;
    assert_eq!((r.status, r.text().as_str()), (200, "true"));
    let rows = a.get_json("/v1/catalog/service/db").await;
    assert_eq!(rows[0]["Node"], "ext");
    assert_eq!(rows[0]["Address"], "10.1.2.3");
    assert_eq!(rows[0]["ServiceID"], "db");
    assert_eq!(rows[0]["NodeMeta"]["rack"], "r1");
    assert_eq!(
        a.get_json("/v1/catalog/nodes?node-meta=rack:r1")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        a.get_json("/v1/catalog/nodes?node-meta=rack:r2").await,
        json!([])
    );
    assert_eq!(
        a.get_json("/v1/health/service/db?passing")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // bad registrations change nothing
    let r = a
        .put("/v1/catalog/register", br#"{"Address":"1.2.3.4"}"#)
        .await;
    assert_eq!((r.status, r.text().as_str()), (500, "Must provide node"));
    let r = a.put("/v1/catalog/register", br#"{"Node":"x"}"#).await;
    assert_eq!(r.status, 500);
    assert!(a.get_json("/v1/catalog/node/x").await.is_null());

    let r = a
        .put(
            "/v1/catalog/deregister",
            br#"{"Node":"ext","ServiceID":"db"}"#,
        )
        .await;
    assert_eq!(r.text(), "true");
    assert_eq!(a.get_json("/v1/catalog/service/db").await, json!([]));
    a.put("/v1/catalog/deregister", br#"{"Node":"ext"}"#).await;
    assert!(a.get_json("/v1/catalog/node/ext").await.is_null());
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_locks() {
    let a = TestAgent::dev().await;
    let node = a.agent.node_name().to_string();
    // the node must be in the catalog with serfHealth before a default session can be created
    a.wait_registered().await;

    let r = a
        .put("/v1/session/create", br#"{"Name":"patroni","TTL":"15s"}"#)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["ID"].as_str().unwrap().to_string();
    let info = a.get_json(&format!("/v1/session/info/{id}")).await;
    assert_eq!(info[0]["Name"], "patroni");
    assert_eq!(info[0]["Node"], node.as_str());
    assert_eq!(info[0]["TTL"], "15s");
    assert_eq!(info[0]["Behavior"], "release");
    assert_eq!(info[0]["LockDelay"], 15_000_000_000u64);
    assert_eq!(info[0]["NodeChecks"], json!(["serfHealth"]));
    assert_eq!(
        a.get_json("/v1/session/list")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        a.get_json(&format!("/v1/session/node/{node}"))
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // lock, contend, release
    assert_eq!(
        a.put(&format!("/v1/kv/service/leader?acquire={id}"), b"me")
            .await
            .text(),
        "true"
    );
    let e = a.get_json("/v1/kv/service/leader").await;
    assert_eq!(e[0]["Session"], id.as_str());
    assert_eq!(e[0]["LockIndex"], 1);
    let other = a
        .put("/v1/session/create", br#"{"LockDelay":"0s"}"#)
        .await
        .json()["ID"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        a.put(&format!("/v1/kv/service/leader?acquire={other}"), b"them")
            .await
            .text(),
        "false"
    );
    assert_eq!(
        a.put(&format!("/v1/kv/service/leader?release={id}"), b"")
            .await
            .text(),
        "true"
    );
    assert!(a.get_json("/v1/kv/service/leader").await[0]
        .get("Session")
        .is_none());
    assert_eq!(
        a.put(&format!("/v1/kv/service/leader?acquire={other}"), b"them")
            .await
            .text(),
        "true"
    );

    // acquiring with an unknown session: Consul's text
    let r = a
        .put(
            "/v1/kv/service/x?acquire=00000000-0000-0000-0000-000000000000",
            b"",
        )
        .await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("invalid session"), "{}", r.text());

    // renew: array back; unknown → 404
    let r = a.put(&format!("/v1/session/renew/{id}"), b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()[0]["ID"], id.as_str());
    let r = a
        .put(
            "/v1/session/renew/00000000-0000-0000-0000-000000000000",
            b"",
        )
        .await;
    assert_eq!(r.status, 404);

    // destroying the holder releases its lock (behavior release)
    assert_eq!(
        a.put(&format!("/v1/session/destroy/{other}"), b"")
            .await
            .text(),
        "true"
    );
    let e = a.get_json("/v1/kv/service/leader").await;
    assert!(e[0].get("Session").is_none());
    assert_eq!(e[0]["Value"], "dGhlbQ==");
    assert_eq!(
        a.get_json(&format!("/v1/session/info/{other}")).await,
        json!([])
    );

    // invalid TTLs: Consul's error text, nothing created
    let before = a
        .get_json("/v1/session/list")
        .await
        .as_array()
        .unwrap()
        .len();
    let r = a.put("/v1/session/create", br#"{"TTL":"1s"}"#).await;
    assert_eq!(r.status, 500);
    assert!(r.text().starts_with("Invalid Session TTL"), "{}", r.text());
    let r = a.put("/v1/session/create", br#"{"TTL":"forever"}"#).await;
    assert_eq!(r.status, 500);
    let r = a
        .put("/v1/session/create", br#"{"Behavior":"explode"}"#)
        .await;
    assert_eq!(r.status, 500);
    assert_eq!(
        a.get_json("/v1/session/list")
            .await
            .as_array()
            .unwrap()
            .len(),
        before
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_ttl_expiry_releases_lock() {
    let a = TestAgent::dev().await;
    a.wait_registered().await;
    let id = a
        .put("/v1/session/create", br#"{"TTL":"10s","LockDelay":"0s"}"#)
        .await
        .json()["ID"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        a.put(&format!("/v1/kv/lock?acquire={id}"), b"x")
            .await
            .text(),
        "true"
    );
    // TTL 10s × 2 = 20 s before the leader invalidates it
    wait_until(Duration::from_secs(30), "session expiry", || async {
        a.get_json(&format!("/v1/session/info/{id}")).await == json!([])
    })
    .await;
    assert!(a.get_json("/v1/kv/lock").await[0].get("Session").is_none());
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_fire_and_list() {
    let a = TestAgent::dev().await;
    // The service filter matches only agents running `web`: this one does.
    let r = a
        .put("/v1/agent/service/register", br#"{"Name": "web"}"#)
        .await;
    assert_eq!(r.status, 200);
    let r = a.put("/v1/event/fire/deploy?service=web", b"v2").await;
    assert_eq!(r.status, 200);
    let e = r.json();
    assert_eq!(e["Name"], "deploy");
    assert_eq!(e["Payload"], "djI=");
    assert_eq!(e["ServiceFilter"], "web");
    // Like Consul, the fire answer carries no Lamport time; the listed event does.
    assert_eq!(e["LTime"], 0);
    assert!(!e["ID"].as_str().unwrap().is_empty());
    a.put("/v1/event/fire/other", b"").await;
    a.put("/v1/event/fire/filtered?service=nosuch", b"").await;
    wait_until(Duration::from_secs(5), "events delivered", || async {
        a.get_json("/v1/event/list").await.as_array().unwrap().len() == 2
    })
    .await;
    let l = a.get_json("/v1/event/list").await;
    assert!(l[0]["LTime"].as_u64().unwrap() > 0);
    assert!(l
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["Name"] != "filtered"));
    let l = a.get_json("/v1/event/list?name=deploy").await;
    assert_eq!(l.as_array().unwrap().len(), 1);

    // The index comes from the last event's ID; none gives 1. A blocking list waits while
    // the index is the one given, and returns when an event arrives.
    assert_eq!(a.get("/v1/event/list?name=none").await.index(), 1);
    let r = a.get("/v1/event/list").await;
    let (index, last) = (r.index(), r.json()[1]["ID"].as_str().unwrap().to_string());
    let hex: String = last.chars().filter(|c| *c != '-').collect();
    let want =
        u64::from_str_radix(&hex[..16], 16).unwrap() ^ u64::from_str_radix(&hex[16..], 16).unwrap();
    assert_eq!(index, want);
    let waiting = {
        let url = format!("/v1/event/list?index={index}&wait=20s");
        let a = &a;
        async move { a.get(&url).await }
    };
    let fire = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        a.put("/v1/event/fire/later", b"").await;
    };
    let (r, ()) = tokio::join!(waiting, fire);
    assert_ne!(r.index(), index);
    assert_eq!(
        r.json().as_array().unwrap().last().unwrap()["Name"],
        "later"
    );
    let started = std::time::Instant::now();
    let r = a.get("/v1/event/list?name=none&index=1&wait=300ms").await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!((r.status, r.index()), (200, 1));

    let big = vec![b'x'; 1024];
    assert_eq!(a.put("/v1/event/fire/huge", &big).await.status, 413);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_version_and_host() {
    let a = TestAgent::dev().await;
    assert_eq!(
        keys(&a, "/v1/agent/version", &[]).await,
        ["SHA", "BuildDate", "HumanVersion", "FIPS"]
    );
    let v = a.get_json("/v1/agent/version").await;
    assert_eq!(v["HumanVersion"], proconsul_types::CONSUL_COMPAT_VERSION);
    for k in ["SHA", "BuildDate", "FIPS"] {
        assert!(v[k].is_string(), "{k}: {v}");
    }
    let h = a.get_json("/v1/agent/host").await;
    assert_eq!(h["Errors"], serde_json::json!([]), "{h}");
    assert!(h["Memory"]["total"].as_u64().unwrap() > 0);
    assert!(h["Memory"]["usedPercent"].is_f64());
    assert!(!h["CPU"].as_array().unwrap().is_empty());
    assert_eq!(h["Host"]["os"], "linux");
    assert!(h["Host"]["uptime"].as_u64().unwrap() > 0);
    assert!(!h["Host"]["hostname"].as_str().unwrap().is_empty());
    assert_eq!(h["Disk"]["path"], "/");
    assert!(h["Disk"]["total"].as_u64().unwrap() > 0);
    assert!(h["CollectionTime"].as_u64().unwrap() > 0);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_datacenter_is_refused_everywhere() {
    let a = TestAgent::dev().await;
    for path in [
        "/v1/catalog/nodes",
        "/v1/catalog/services",
        "/v1/health/service/consul",
        "/v1/kv/?keys",
        "/v1/session/list",
        "/v1/coordinate/nodes",
        "/v1/status/leader",
        "/v1/status/peers",
        "/v1/operator/raft/configuration",
        "/v1/operator/autopilot/health",
        "/v1/operator/autopilot/state",
        "/v1/operator/usage",
        "/v1/snapshot",
    ] {
        let sep = if path.contains('?') { '&' } else { '?' };
        let r = a.get(&format!("{path}{sep}dc=nope")).await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (500, "No path to datacenter"),
            "{path}"
        );
        assert_eq!(
            a.get(&format!("{path}{sep}dc=dc1")).await.status,
            200,
            "{path}"
        );
    }
    let r = a.put("/v1/kv/x?dc=nope", b"v").await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (500, "No path to datacenter")
    );
    assert_eq!(a.get("/v1/kv/x").await.status, 404, "nothing was written");
    let r = a.put("/v1/event/fire/e?dc=nope", b"").await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (500, "No path to datacenter")
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_are_gzipped_when_the_client_accepts_it() {
    use std::io::Read;
    let a = TestAgent::dev().await;
    let addr = a.agent.http_addrs()[0];
    let r = proconsul_testkit::http::request_with(
        addr,
        "GET",
        "/v1/agent/self",
        &[("Accept-Encoding", "gzip")],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Encoding"), Some("gzip"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&r.body[..])
        .read_to_string(&mut text)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["Config"]["Datacenter"], "dc1");
    // Not asked for, or refused with q=0: plain.
    let r = a.get("/v1/agent/self").await;
    assert_eq!(r.header("Content-Encoding"), None);
    let r = proconsul_testkit::http::request_with(
        addr,
        "GET",
        "/v1/agent/self",
        &[("Accept-Encoding", "gzip;q=0")],
        b"",
    )
    .await;
    assert_eq!(r.header("Content-Encoding"), None);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_service_blocks_on_its_content_hash() {
    let a = TestAgent::dev().await;
    a.put("/v1/agent/service/register", br#"{"Name":"web","Port":80}"#)
        .await;
    let r = a.get("/v1/agent/service/web").await;
    let hash = r.header("X-Consul-ContentHash").unwrap().to_string();
    assert_eq!(r.json()["ContentHash"], hash.as_str());
    assert!(a.get_json("/v1/agent/services").await["web"]
        .get("ContentHash")
        .is_none());
    // Same hash: waits until the service changes.
    let waiting = {
        let url = format!("/v1/agent/service/web?hash={hash}&wait=20s");
        let a = &a;
        async move { a.get(&url).await }
    };
    let change = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        a.put("/v1/agent/service/register", br#"{"Name":"web","Port":81}"#)
            .await;
    };
    let (r, ()) = tokio::join!(waiting, change);
    assert_eq!(r.json()["Port"], 81);
    assert_ne!(r.header("X-Consul-ContentHash"), Some(hash.as_str()));
    // Another hash: at once; no change before the wait runs out: the same answer.
    let started = std::time::Instant::now();
    let r = a.get("/v1/agent/service/web?hash=other&wait=10s").await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let now = r.header("X-Consul-ContentHash").unwrap().to_string();
    let r = a
        .get(&format!("/v1/agent/service/web?hash={now}&wait=200ms"))
        .await;
    assert_eq!(r.header("X-Consul-ContentHash"), Some(now.as_str()));
    a.stop().await;
}

/// JSON read with the order of object keys kept (serde_json's `Value` sorts them).
enum Ordered {
    Object(Vec<(String, Ordered)>),
    Array(Vec<Ordered>),
    Scalar,
}

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Ordered>()? {
                    out.push((k, v));
                }
                Ok(Ordered::Object(out))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = s.next_element::<Ordered>()? {
                    out.push(v);
                }
                Ok(Ordered::Array(out))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_str<E>(self, _: &str) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
        }
        d.deserialize_any(V)
    }
}

impl Ordered {
    fn get(&self, path: &[&str]) -> &Ordered {
        path.iter().fold(self, |v, step| match v {
            Ordered::Object(fields) => &fields.iter().find(|(k, _)| k == step).unwrap().1,
            Ordered::Array(items) => &items[step.parse::<usize>().unwrap()],
            Ordered::Scalar => panic!("no {step} in a scalar"),
        })
    }

    fn keys(&self) -> Vec<&str> {
        match self {
            Ordered::Object(fields) => fields.iter().map(|(k, _)| k.as_str()).collect(),
            _ => panic!("not an object"),
        }
    }
}

/// The keys of the object at `path` in the body of `GET path`, in the order written.
async fn keys(a: &TestAgent, url: &str, path: &[&str]) -> Vec<String> {
    let body = a.get(url).await.body;
    let v: Ordered = serde_json::from_slice(&body).unwrap();
    v.get(path).keys().into_iter().map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_shapes_follow_consuls_structs() {
    // Field order and which empty fields are printed, left out or null: Consul's Go structs
    // (docs/OUTPUT-SHAPES.md).
    let a = TestAgent::dev().await;
    a.wait_registered().await;
    a.put("/v1/agent/service/register", br#"{"Name":"web"}"#)
        .await;
    wait_until(Duration::from_secs(5), "web in the catalog", || async {
        a.get_json("/v1/catalog/service/web")
            .await
            .as_array()
            .map(Vec::len)
            == Some(1)
    })
    .await;
    wait_until(Duration::from_secs(5), "the node's meta", || async {
        a.get_json("/v1/catalog/nodes").await[0]["Meta"]
            == json!({"consul-network-segment": "", "consul-version": "1.22.0"})
    })
    .await;
    assert_eq!(
        keys(&a, "/v1/catalog/nodes", &["0"]).await,
        [
            "ID",
            "Node",
            "Address",
            "Datacenter",
            "TaggedAddresses",
            "Meta",
            "CreateIndex",
            "ModifyIndex"
        ]
    );
    let row = &a.get_json("/v1/catalog/service/web").await[0];
    assert_eq!(
        keys(&a, "/v1/catalog/service/web", &["0"]).await,
        [
            "ID",
            "Node",
            "Address",
            "Datacenter",
            "TaggedAddresses",
            "NodeMeta",
            "ServiceKind",
            "ServiceID",
            "ServiceName",
            "ServiceTags",
            "ServiceAddress",
            "ServiceWeights",
            "ServiceMeta",
            "ServicePort",
            "ServiceSocketPath",
            "ServiceEnableTagOverride",
            "ServiceProxy",
            "ServiceConnect",
            "ServiceLocality",
            "CreateIndex",
            "ModifyIndex"
        ]
    );
    assert_eq!(
        row["ServiceProxy"],
        json!({"Mode": "", "MeshGateway": {}, "Expose": {}})
    );
    assert_eq!(row["ServiceConnect"], json!({}));
    assert_eq!(row["ServiceLocality"], json!(null));
    let url = "/v1/health/service/web";
    assert_eq!(keys(&a, url, &["0"]).await, ["Node", "Service", "Checks"]);
    // `Port` 0 is left out of a NodeService; `PeerName` is always printed.
    assert_eq!(
        keys(&a, url, &["0", "Service"]).await,
        [
            "ID",
            "Service",
            "Tags",
            "Address",
            "Meta",
            "Weights",
            "EnableTagOverride",
            "Proxy",
            "Connect",
            "PeerName",
            "CreateIndex",
            "ModifyIndex"
        ]
    );
    assert_eq!(
        keys(&a, url, &["0", "Checks", "0"]).await,
        [
            "Node",
            "CheckID",
            "Name",
            "Status",
            "Notes",
            "Output",
            "ServiceID",
            "ServiceName",
            "ServiceTags",
            "Type",
            "Interval",
            "Timeout",
            "ExposedPort",
            "Definition",
            "CreateIndex",
            "ModifyIndex"
        ]
    );
    assert_eq!(
        keys(&a, "/v1/agent/services", &["web"]).await,
        [
            "ID",
            "Service",
            "Tags",
            "Meta",
            "Port",
            "Address",
            "Weights",
            "EnableTagOverride",
            "Datacenter"
        ]
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_api_on_a_unix_socket() {
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("http.sock");
    // A stale socket from an earlier run is replaced.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    let path = sock.clone();
    let a = TestAgent::start_with(proconsul_testkit::dev_flags(), move |cfg| {
        cfg.http_unix = vec![path.clone()];
        cfg.unix_socket_mode = Some(0o600);
    })
    .await;
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let mut s = tokio::net::UnixStream::connect(&sock).await.unwrap();
    s.write_all(b"GET /v1/agent/self HTTP/1.1\r\nHost: local\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"Datacenter\":\"dc1\""), "{text}");
    // TCP still answers beside it.
    assert_eq!(a.get("/v1/status/leader").await.status, 200);
    a.stop().await;
    assert!(!sock.exists(), "the socket is removed on shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_reads_are_served_by_the_agent_and_kept_fresh() {
    let a = TestAgent::dev().await;
    a.wait_registered().await;
    let reg = |port: u16| {
        let a = &a;
        async move {
            let body = json!({"Node": "ext", "Address": "10.0.0.1",
                              "Service": {"ID": format!("db{port}"), "Service": "db", "Port": port}});
            a.put("/v1/catalog/register", body.to_string().as_bytes())
                .await
        }
    };
    reg(1).await;
    let r = a.get("/v1/health/service/db?cached").await;
    assert_eq!(r.header("X-Cache"), Some("MISS"));
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    let r = a.get("/v1/health/service/db?cached").await;
    assert_eq!(r.header("X-Cache"), Some("HIT"));
    assert!(r.header("Age").is_some());
    let index = r.index();
    // Not cached without ?cached.
    assert_eq!(a.get("/v1/health/service/db").await.header("X-Cache"), None);

    // The entry follows the servers: a blocking cached read wakes on a change.
    let waiting = {
        let url = format!("/v1/health/service/db?cached&index={index}&wait=20s");
        let a = &a;
        async move { a.get(&url).await }
    };
    let change = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        reg(2).await;
    };
    let (r, _) = tokio::join!(waiting, change);
    assert_eq!(r.header("X-Cache"), Some("HIT"));
    assert!(r.index() > index);
    assert_eq!(r.json().as_array().unwrap().len(), 2);

    // Cache-Control: must-revalidate fetches again.
    let r = proconsul_testkit::http::request_with(
        a.agent.http_addrs()[0],
        "GET",
        "/v1/catalog/service/db?cached",
        &[],
        b"",
    )
    .await;
    assert_eq!(r.header("X-Cache"), Some("MISS"));
    let r = proconsul_testkit::http::request_with(
        a.agent.http_addrs()[0],
        "GET",
        "/v1/catalog/service/db?cached",
        &[("Cache-Control", "must-revalidate")],
        b"",
    )
    .await;
    assert_eq!(r.header("X-Cache"), Some("MISS"));
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_answers_as_consul_without_encryption() {
    let a = TestAgent::dev().await;
    // hashicorp/raft's GetConfiguration carries no index: Consul always answers 0.
    let c = a.get_json("/v1/operator/raft/configuration").await;
    assert_eq!(c["Index"], 0);
    assert_eq!(c["Servers"][0]["Leader"], true);
    // Without gossip encryption every member fails a keyring query, and so does the call,
    // a list too (Consul's keyringErrorsOrNil).
    let r = a.get("/v1/operator/keyring").await;
    assert_eq!(r.status, 500);
    assert!(
        r.text()
            .contains("Keyring is empty (encryption not enabled)"),
        "{}",
        r.text()
    );
    a.stop().await;
}

/// `advertise_addr_wan`: the node's `wan` tagged addresses (and the WAN pool's address) are
/// it; `lan` stays the advertise address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advertise_addr_wan_is_the_nodes_wan_address() {
    let a = TestAgent::start_with(proconsul_testkit::dev_flags(), |c| {
        c.advertise_addr_wan = "127.0.0.2".parse().unwrap();
    })
    .await;
    a.wait_registered().await;
    let node = a.agent.node_name().to_string();
    proconsul_testkit::wait_until(
        std::time::Duration::from_secs(10),
        "the node's wan address",
        || async {
            let v = a.get_json(&format!("/v1/catalog/node/{node}")).await;
            let t = &v["Node"]["TaggedAddresses"];
            t["wan"] == "127.0.0.2" && t["wan_ipv4"] == "127.0.0.2" && t["lan"] == "127.0.0.1"
        },
    )
    .await;
    let members = a.get_json("/v1/agent/members?wan=1").await;
    assert_eq!(members[0]["Addr"], "127.0.0.2", "{members}");
    a.stop().await;
}
