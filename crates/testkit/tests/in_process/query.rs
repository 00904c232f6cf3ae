//! `/v1/query/*` against an in-process agent: create, read, list, update, delete; execute by
//! ID and by name with Consul's health and tag filters, `?limit=` and `?near=`; explain; the
//! validation texts and status codes; a query goes with its session.

use proconsul_testkit::{http::request, TestAgent};
use serde_json::{json, Value};

async fn post(a: &TestAgent, path: &str, body: Value) -> proconsul_testkit::http::Response {
    request(a.http, "POST", path, body.to_string().as_bytes()).await
}

/// An external node with one `web` instance and a check in `status`.
async fn web(a: &TestAgent, node: &str, tags: &[&str], check: (&str, &str)) {
    let body = json!({
        "Node": node,
        "Address": "10.1.0.1",
        "Service": {"Service": "web", "ID": "web", "Tags": tags, "Port": 80},
        "Check": {"CheckID": check.0, "Name": check.0, "ServiceID": "web", "Status": check.1},
    });
    let r = a
        .put("/v1/catalog/register", body.to_string().as_bytes())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

fn node_names(v: &Value) -> Vec<String> {
    let mut names: Vec<String> = v["Nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["Node"]["Node"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_execute_explain_and_errors() {
    let a = TestAgent::dev().await;
    a.wait_registered().await;
    web(&a, "n1", &["v1", "primary"], ("c1", "passing")).await;
    web(&a, "n2", &["v1"], ("c2", "warning")).await;
    web(&a, "n3", &["v1", "canary"], ("c3", "passing")).await;
    web(&a, "n4", &["v1"], ("c4", "critical")).await;

    let r = a.get("/v1/query").await;
    assert_eq!((r.status, r.json()), (200, json!([])));

    // Create.
    let r = post(
        &a,
        "/v1/query",
        json!({"Name": "web-q", "Service": {"Service": "web", "Tags": ["v1", "!canary"]}, "DNS": {"TTL": "10s"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["ID"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36);

    // Read and list.
    let r = a.get(&format!("/v1/query/{id}")).await;
    assert_eq!(r.status, 200);
    assert!(r.index() > 0);
    let q = &r.json()[0];
    assert_eq!(q["ID"], id.as_str());
    assert_eq!(q["Name"], "web-q");
    assert_eq!(q["Service"]["Tags"], json!(["v1", "!canary"]));
    assert_eq!(q["DNS"]["TTL"], "10s");
    assert_eq!(q["CreateIndex"], q["ModifyIndex"]);
    let list = a.get_json("/v1/query").await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Execute by ID and by name: critical is out, canary excluded by `!canary`, warning in.
    for key in [id.as_str(), "web-q", "WEB-Q"] {
        let r = a.get(&format!("/v1/query/{key}/execute")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(node_names(&v), ["n1", "n2"], "{key}");
        assert_eq!(v["Service"], "web");
        assert_eq!(v["Datacenter"], "dc1");
        assert_eq!(v["Failovers"], 0);
        assert_eq!(v["DNS"]["TTL"], "10s");
    }
    let v = a.get_json("/v1/query/web-q/execute?limit=1").await;
    assert_eq!(v["Nodes"].as_array().unwrap().len(), 1);
    for _ in 0..5 {
        let v = a.get_json("/v1/query/web-q/execute?near=n2").await;
        assert_eq!(v["Nodes"][0]["Node"]["Node"], "n2");
    }

    // Update: OnlyPassing drops the warning; IgnoreCheckIDs lets the critical one back.
    let r = a
        .put(
            &format!("/v1/query/{id}"),
            json!({"Name": "web-q", "Service": {"Service": "web", "OnlyPassing": true, "IgnoreCheckIDs": ["c4"]}})
                .to_string()
                .as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = a.get_json("/v1/query/web-q/execute").await;
    assert_eq!(node_names(&v), ["n1", "n3", "n4"]);
    let q = &a.get_json(&format!("/v1/query/{id}")).await[0];
    assert!(q["ModifyIndex"].as_u64() > q["CreateIndex"].as_u64());

    // Explain.
    let r = a.get("/v1/query/web-q/explain").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["Query"]["ID"], id.as_str());
    assert_eq!(r.json()["Query"]["Service"]["OnlyPassing"], true);

    // Errors.
    let unknown = "00000000-0000-0000-0000-000000000000";
    for path in [
        format!("/v1/query/{unknown}"),
        format!("/v1/query/{unknown}/execute"),
        "/v1/query/nope/explain".to_string(),
    ] {
        let r = a.get(&path).await;
        assert_eq!(
            (r.status, r.text()),
            (404, "Query not found".into()),
            "{path}"
        );
    }
    let r = post(&a, "/v1/query", json!({"Name": "x", "Service": {}})).await;
    assert_eq!(r.status, 500);
    assert_eq!(
        r.text(),
        "Invalid prepared query: Must provide a Service name to query"
    );
    let r = post(&a, "/v1/query", json!({"Service": {"Service": "web"}})).await;
    assert_eq!(
        r.text(),
        "Invalid prepared query: Must be bound to a session"
    );
    let r = post(
        &a,
        "/v1/query",
        json!({"Name": "y", "Service": {"Service": "web", "Failover": {"NearestN": -1}}}),
    )
    .await;
    assert_eq!(
        r.text(),
        "Invalid prepared query: Bad NearestN '-1', must be >= 0"
    );
    let r = post(
        &a,
        "/v1/query",
        json!({"Name": "Web-Q", "Service": {"Service": "db"}}),
    )
    .await;
    assert_eq!(
        (r.status, r.text()),
        (500, "name 'Web-Q' aliases an existing query name".into())
    );
    let r = a
        .put(
            &format!("/v1/query/{unknown}"),
            br#"{"Name":"z","Service":{"Service":"web"}}"#,
        )
        .await;
    assert_eq!(
        r.text(),
        format!("Cannot modify non-existent prepared query: '{unknown}'")
    );

    // Delete.
    let r = a.delete(&format!("/v1/query/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(a.get(&format!("/v1/query/{id}")).await.status, 404);
    assert_eq!(a.get_json("/v1/query").await, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_goes_with_its_session() {
    let a = TestAgent::dev().await;
    a.wait_registered().await;
    let s = a.put("/v1/session/create", b"{}").await.json()["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let r = post(
        &a,
        "/v1/query",
        json!({"Session": s, "Service": {"Service": "consul"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["ID"].as_str().unwrap().to_string();
    // Anonymous (no name): reached by ID.
    let v = a.get_json(&format!("/v1/query/{id}/execute")).await;
    assert_eq!(v["Nodes"].as_array().unwrap().len(), 1);
    let r = a.put(&format!("/v1/session/destroy/{s}"), b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(a.get(&format!("/v1/query/{id}")).await.status, 404);
}

/// Two federated dev servers: a query whose service has no healthy instance in dc1 answers
/// from dc2 (`NearestN`, or `Failover.Datacenters` with unknown names skipped), and from dc1
/// again once an instance there is healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_another_datacenter() {
    use proconsul_config::AgentFlags;
    use proconsul_testkit::dev_flags;

    let a = TestAgent::start_with(
        AgentFlags {
            node_name: Some("f1".into()),
            ..dev_flags()
        },
        |_| {},
    )
    .await;
    let b = TestAgent::start_with(
        AgentFlags {
            node_name: Some("f2".into()),
            datacenter: Some("dc2".into()),
            ..dev_flags()
        },
        |_| {},
    )
    .await;
    a.federate_with(&b, "dc2").await;

    web(&a, "here", &[], ("h", "critical")).await;
    web(&b, "there", &[], ("t", "passing")).await;
    for (name, failover) in [
        ("nearest", json!({"NearestN": 1})),
        ("listed", json!({"Datacenters": ["nope", "dc2"]})),
        (
            "targets",
            json!({"Targets": [{"Datacenter": "nope"}, {"Datacenter": "dc2"}]}),
        ),
    ] {
        let r = post(
            &a,
            "/v1/query",
            json!({"Name": name, "Service": {"Service": "web", "Failover": failover}}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = a.get_json(&format!("/v1/query/{name}/execute")).await;
        assert_eq!(node_names(&v), ["there"], "{name}: {v}");
        assert_eq!(v["Datacenter"], "dc2", "{name}");
        assert_eq!(v["Failovers"], 1, "{name}");
    }
    // Targets are read back as given; they exclude NearestN/Datacenters, and a peer target
    // (cluster peering) is refused, as is anything not in the default partition.
    let v = a.get_json("/v1/query").await;
    let targets = v
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["Name"] == "targets")
        .unwrap();
    assert_eq!(
        targets["Service"]["Failover"]["Targets"][1]["Datacenter"], "dc2",
        "{targets}"
    );
    for (failover, error) in [
        (
            json!({"NearestN": 1, "Targets": [{"Datacenter": "dc2"}]}),
            "Targets cannot be populated with NearestN or Datacenters",
        ),
        (
            json!({"Targets": [{"Peer": "other-cluster"}]}),
            "Bad failover target peer \"other-cluster\"",
        ),
        (
            json!({"Targets": [{"Datacenter": "dc2", "Partition": "p1"}]}),
            "Bad failover target partition \"p1\"",
        ),
    ] {
        let r = post(
            &a,
            "/v1/query",
            json!({"Name": "bad", "Service": {"Service": "web", "Failover": failover}}),
        )
        .await;
        assert_eq!(r.status, 500, "{failover}");
        assert!(r.text().contains(error), "{failover}: {}", r.text());
    }

    // Without failover: nothing, from dc1.
    post(
        &a,
        "/v1/query",
        json!({"Name": "local", "Service": {"Service": "web"}}),
    )
    .await;
    let v = a.get_json("/v1/query/local/execute").await;
    assert_eq!(
        (v["Nodes"].clone(), v["Datacenter"].clone()),
        (json!([]), json!("dc1"))
    );

    web(&a, "here", &[], ("h", "passing")).await;
    let v = a.get_json("/v1/query/nearest/execute").await;
    assert_eq!(node_names(&v), ["here"]);
    assert_eq!(
        (v["Datacenter"].clone(), v["Failovers"].clone()),
        (json!("dc1"), json!(0))
    );
    a.stop().await;
    b.stop().await;
}

fn dig(port: u16, args: &[&str]) -> String {
    let out = std::process::Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+time=2", "+tries=1"])
        .args(args)
        .output()
        .expect("dig is installed (apt-get install -y bind9-dnsutils)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `<name>.query.consul` (A) and `_<name>._tcp.query.consul` (SRV) answer from the query's
/// result, with its DNS TTL; an unknown query is NXDOMAIN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_answers_from_the_query() {
    let a = TestAgent::start_with(proconsul_testkit::dev_flags(), |c| {
        c.dns_addrs = vec!["127.0.0.1:0".parse().unwrap()]
    })
    .await;
    let port = a.agent.dns_addrs()[0].port();
    a.wait_registered().await;
    web(&a, "n1", &["v1"], ("c1", "passing")).await;
    web(&a, "n2", &["v2"], ("c2", "passing")).await;
    let r = post(
        &a,
        "/v1/query",
        json!({"Name": "webq", "Service": {"Service": "web", "Tags": ["v1"]}, "DNS": {"TTL": "7s"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());

    assert_eq!(
        dig(port, &["+short", "webq.query.consul", "A"]).trim(),
        "10.1.0.1"
    );
    assert_eq!(
        dig(port, &["+short", "_webq._tcp.query.consul", "SRV"]).trim(),
        "1 1 80 n1.node.dc1.consul."
    );
    let full = dig(port, &["+noall", "+answer", "webq.query.dc1.consul", "A"]);
    assert!(full.contains("\t7\tIN\tA\t10.1.0.1"), "{full}");
    let missing = dig(port, &["nope.query.consul", "A"]);
    assert!(missing.contains("NXDOMAIN"), "{missing}");
}

/// A `name_prefix_match` template answers for every name it prefixes, rendered for that name;
/// by ID it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_render_for_the_name_asked() {
    let a = TestAgent::dev().await;
    a.wait_registered().await;
    web(&a, "n1", &["blue"], ("c1", "passing")).await;
    web(&a, "n2", &["green"], ("c2", "passing")).await;
    let r = post(
        &a,
        "/v1/query",
        json!({
            "Name": "color-",
            "Template": {"Type": "name_prefix_match", "Regexp": "^color-(.+)$"},
            "Service": {"Service": "web", "Tags": ["${match(1)}"]},
        }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["ID"].as_str().unwrap().to_string();
    let v = a.get_json("/v1/query/color-green/execute").await;
    assert_eq!(node_names(&v), ["n2"]);
    let v = a.get_json("/v1/query/color-blue/explain").await;
    assert_eq!(v["Query"]["Service"]["Tags"], json!(["blue"]));
    let r = a.get(&format!("/v1/query/{id}/execute")).await;
    assert_eq!(
        (r.status, r.text()),
        (
            500,
            "prepared query templates can only be resolved up by name, not by ID".into()
        )
    );
    let r = post(
        &a,
        "/v1/query",
        json!({"Name": "bad-", "Template": {"Type": "nope"}, "Service": {"Service": "web"}}),
    )
    .await;
    assert_eq!(
        (r.status, r.text()),
        (
            500,
            "failed compiling template: Bad Template.Type 'nope'".into()
        )
    );
}

/// `GET /v1/query` and `/v1/query/:id` are blocking queries on the prepared-query table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_read_block_until_a_change() {
    let a = TestAgent::dev().await;
    a.wait_registered().await;
    let r = post(
        &a,
        "/v1/query",
        json!({"Name": "one", "Service": {"Service": "web"}}),
    )
    .await;
    let id = r.json()["ID"].as_str().unwrap().to_string();
    let index = a.get("/v1/query").await.index();
    assert!(index > 0);

    let http = a.http;
    let list = tokio::spawn(async move {
        request(
            http,
            "GET",
            &format!("/v1/query?index={index}&wait=10s"),
            b"",
        )
        .await
    });
    let path = format!("/v1/query/{id}?index={index}&wait=10s");
    let one = tokio::spawn(async move { request(http, "GET", &path, b"").await });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!list.is_finished() && !one.is_finished(), "they wait");
    let r = a
        .put(
            &format!("/v1/query/{id}"),
            br#"{"Name":"one","Service":{"Service":"db"}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (list, one) = (list.await.unwrap(), one.await.unwrap());
    assert!(list.index() > index);
    assert_eq!(list.json()[0]["Service"]["Service"], "db");
    assert_eq!(one.json()[0]["Service"]["Service"], "db");
    // A short wait with nothing changing answers when it runs out.
    let r = a
        .get(&format!("/v1/query?index={}&wait=100ms", list.index()))
        .await;
    assert_eq!((r.status, r.index()), (200, list.index()));
}

/// `?near=` orders the nodes by estimated round-trip time from the node named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_sorts_by_coordinates() {
    use std::time::Duration;
    let a = TestAgent::start_with(proconsul_testkit::dev_flags(), |c| {
        c.coordinate_update_period = Duration::from_millis(50);
    })
    .await;
    a.wait_registered().await;
    for (node, x) in [("n1", 0.0), ("n2", 0.004), ("n3", 0.010)] {
        web(&a, node, &[], ("c", "passing")).await;
        let coord = json!({"Node": node, "Coord": {"Vec": [x, 0, 0, 0, 0, 0, 0, 0], "Error": 0.25, "Adjustment": 0, "Height": 0.00001}});
        let r = a
            .put("/v1/coordinate/update", coord.to_string().as_bytes())
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    proconsul_testkit::wait_until(Duration::from_secs(10), "coordinates stored", || async {
        a.get_json("/v1/coordinate/nodes")
            .await
            .as_array()
            .map(Vec::len)
            >= Some(3)
    })
    .await;
    post(
        &a,
        "/v1/query",
        json!({"Name": "w", "Service": {"Service": "web"}}),
    )
    .await;
    let order = |v: Value| -> Vec<String> {
        v["Nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["Node"]["Node"].as_str().unwrap().to_string())
            .collect()
    };
    for _ in 0..3 {
        assert_eq!(
            order(a.get_json("/v1/query/w/execute?near=n3").await),
            ["n3", "n2", "n1"]
        );
        assert_eq!(
            order(a.get_json("/v1/query/w/execute?near=n1").await),
            ["n1", "n2", "n3"]
        );
    }
}
