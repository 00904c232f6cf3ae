//! The web UI against `agent -dev`: its `/v1/internal/ui/*` reads in Consul's shapes (with
//! blocking queries and `?filter=`), and the embedded app's files, redirects and headers.
//! The app itself is driven in a browser by the `browser` tier.

use std::time::Duration;

use proconsul_testkit::http::request_with;
use proconsul_testkit::{dev_flags, wait_until, TestAgent};
use serde_json::json;

/// Register `node` with one service and one service check in `status`.
async fn register(a: &TestAgent, node: &str, service: &str, tags: &[&str], status: &str) {
    let body = json!({
        "Node": node,
        "Address": "10.0.0.9",
        "NodeMeta": {"rack": "r1"},
        "Service": {"Service": service, "ID": format!("{service}-{node}"), "Tags": tags, "Port": 80},
        "Check": {"CheckID": format!("{service}-check"), "Name": "probe", "Status": status,
                  "Output": "it said so", "ServiceID": format!("{service}-{node}")},
    });
    let r = a
        .put("/v1/catalog/register", body.to_string().as_bytes())
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_summarise_instances_and_block_until_one_changes() {
    let a = TestAgent::dev().await;
    a.wait_registered().await;
    register(&a, "ext1", "web", &["v2", "edge"], "passing").await;
    register(&a, "ext2", "web", &["v1"], "critical").await;

    let r = a.get("/v1/internal/ui/services").await;
    assert_eq!(r.status, 200, "{r:?}");
    let list = r.json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["consul", "web"], "sorted by name: {list}");
    let web = &list[1];
    // Consul's ServiceListingSummary, field for field: empty lists are null, Kind and
    // PeerName left out when empty, GatewayConfig an empty object.
    assert_eq!(
        web,
        &json!({
            "Name": "web",
            "Datacenter": "dc1",
            "Tags": ["edge", "v1", "v2"],
            "Nodes": ["ext1", "ext2"],
            "ExternalSources": null,
            "InstanceCount": 2,
            "ChecksPassing": 1,
            "ChecksWarning": 0,
            "ChecksCritical": 1,
            "GatewayConfig": {},
            "TransparentProxy": false,
            "ConnectNative": false,
            "ConnectedWithProxy": false,
            "ConnectedWithGateway": false,
        })
    );
    // The agent's own `consul` service counts its node's serfHealth check.
    assert_eq!(list[0]["Tags"], json!(null));
    assert_eq!(list[0]["ChecksPassing"], 1, "{}", list[0]);

    // ?filter= applies to the instances, before they are summarised.
    let r = a
        .get("/v1/internal/ui/services?filter=Node.Node%20%3D%3D%20%22ext1%22")
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 1, "{r:?}");
    assert_eq!(r.json()[0]["Nodes"], json!(["ext1"]));
    let r = a
        .get("/v1/internal/ui/services?filter=Nope%20%3D%3D%201")
        .await;
    assert_eq!(r.status, 400, "{r:?}");

    // A blocking query returns when an instance is added (or anything else in the catalog
    // moves: the agent's own sync may land meanwhile, so follow the index until it shows).
    let index = a.get("/v1/internal/ui/services").await.index();
    let waiting = follow(&a, "/v1/internal/ui/services", index, |v| {
        v[0]["Name"] == "api"
    });
    let change = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        register(&a, "ext3", "api", &[], "warning").await;
    };
    let (r, ()) = tokio::join!(waiting, change);
    assert!(r.index() > index, "{r:?}");
    let api = r.json()[0].clone();
    assert_eq!(
        (api["Name"].as_str(), api["ChecksWarning"].as_u64()),
        (Some("api"), Some(1)),
        "{api}"
    );
    // With nothing changing it waits out its time.
    let index = r.index();
    let started = std::time::Instant::now();
    let r = a
        .get(&format!(
            "/v1/internal/ui/services?index={index}&wait=300ms"
        ))
        .await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.index(), index);
    a.stop().await;
}

/// Block on `path` from `index`, again from each answer's index, until an answer's body
/// satisfies `done` (within 10 s). Each answer must come from a later index.
async fn follow(
    a: &TestAgent,
    path: &str,
    mut index: u64,
    done: impl Fn(&serde_json::Value) -> bool,
) -> proconsul_testkit::Response {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = a.get(&format!("{path}?index={index}&wait=20s")).await;
        assert_eq!(r.status, 200, "{r:?}");
        if done(&r.json()) {
            return r;
        }
        assert!(
            r.index() > index,
            "a blocking answer without a change: {r:?}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "never saw the change: {r:?}"
        );
        index = r.index();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_and_one_node_with_services_and_checks() {
    let a = TestAgent::dev().await;
    a.wait_registered().await;
    register(&a, "ext1", "db", &["primary"], "critical").await;
    let bare = json!({"Node": "bare", "Address": "10.0.0.10"});
    a.put("/v1/catalog/register", bare.to_string().as_bytes())
        .await;

    let r = a.get("/v1/internal/ui/nodes").await;
    assert_eq!(r.status, 200, "{r:?}");
    let nodes = r.json();
    let names: Vec<&str> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["Node"].as_str().unwrap())
        .collect();
    let me = a.agent.node_name();
    let mut want = vec!["bare", "ext1", me];
    want.sort();
    assert_eq!(names, want);
    let bare = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["Node"] == "bare");
    // A node with nothing on it: [] not null (Consul's UINodes).
    assert_eq!(bare.unwrap()["Services"], json!([]));
    assert_eq!(bare.unwrap()["Checks"], json!([]));
    let ext1 = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["Node"] == "ext1")
        .unwrap();
    let keys: Vec<&String> = ext1.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "Address",
            "Checks",
            "ID",
            "Meta",
            "Node",
            "Services",
            "TaggedAddresses"
        ],
        "NodeInfo's fields: {ext1}"
    );
    assert_eq!(ext1["Meta"]["rack"], "r1");
    assert_eq!(ext1["Services"][0]["Service"], "db");
    assert_eq!(ext1["Services"][0]["Tags"], json!(["primary"]));
    assert_eq!(ext1["Checks"][0]["Status"], "critical");
    assert_eq!(ext1["Checks"][0]["Output"], "it said so");

    // ?filter= over NodeInfo, reaching into services.
    let r = a
        .get("/v1/internal/ui/nodes?filter=Services.Service%20contains%20%22db%22")
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = a
        .get("/v1/internal/ui/nodes?filter=Meta.rack%20%3D%3D%20%22r1%22")
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 1, "{r:?}");

    // One node: the same shape; an unknown node is a 404 with an empty body.
    let one = a.get("/v1/internal/ui/node/ext1").await;
    assert_eq!(one.status, 200);
    assert_eq!(&one.json(), ext1);
    let me_info = a.get_json(&format!("/v1/internal/ui/node/{me}")).await;
    assert!(me_info["Checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["CheckID"] == "serfHealth"));
    let missing = a.get("/v1/internal/ui/node/nope").await;
    assert_eq!((missing.status, missing.text().as_str()), (404, ""));
    assert!(missing.header("X-Consul-Index").is_some());

    // Blocking on one node: returns when its check changes.
    let index = one.index();
    let waiting = follow(&a, "/v1/internal/ui/node/ext1", index, |v| {
        v["Checks"][0]["Status"] == "passing"
    });
    let change = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        register(&a, "ext1", "db", &["primary"], "passing").await;
    };
    let (r, ()) = tokio::join!(waiting, change);
    assert!(r.index() > index);
    assert_eq!(r.json()["Checks"][0]["Status"], "passing");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_services_to_a_peer_are_none() {
    let a = TestAgent::dev().await;
    let r = a.get("/v1/internal/ui/exported-services").await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (500, "must provide PeerName")
    );
    let r = a.get("/v1/internal/ui/exported-services?peer=p1").await;
    assert_eq!((r.status, r.json()), (200, json!([])));
    let started = std::time::Instant::now();
    let r = a
        .get("/v1/internal/ui/exported-services?peer=p1&index=1&wait=200ms")
        .await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!((r.status, r.index()), (200, 1));
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_is_served_under_its_content_path() {
    let a = TestAgent::dev().await;
    // `/` and the path without its slash move to the UI, as Consul's.
    let r = a.get("/").await;
    assert_eq!((r.status, r.header("Location")), (301, Some("/ui/")));
    let r = a.get("/ui").await;
    assert_eq!((r.status, r.header("Location")), (301, Some("/ui/")));

    let page = a.get("/ui/").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("Cache-Control"), Some("no-cache"));
    assert!(page
        .header("Content-Security-Policy")
        .is_some_and(|c| c.contains("script-src 'self'")));
    let html = page.text();
    assert!(html.contains(r#"<base href="/ui/">"#), "{html}");
    assert!(html.contains(r#""LocalDatacenter":"dc1""#), "{html}");
    // The app's own routes answer the same page (client-side routing).
    for path in ["/ui/dc1/services", "/ui/dc1/kv/app/config/", "/ui/x?y=z"] {
        let r = a.get(path).await;
        assert_eq!((r.status, r.text()), (200, html.clone()), "{path}");
    }

    // Its files, with their types; a versioned link may be cached for good.
    let v = html
        .split("assets/app.js?v=")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("versioned script link")
        .to_string();
    let js = a.get(&format!("/ui/assets/app.js?v={v}")).await;
    assert_eq!(js.status, 200);
    assert_eq!(
        js.header("Content-Type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        js.header("Cache-Control"),
        Some("public, max-age=31536000, immutable")
    );
    assert!(js.text().contains("X-Consul-Token"));
    let unversioned = a.get("/ui/assets/app.js").await;
    assert_eq!(unversioned.header("Cache-Control"), Some("no-cache"));
    let css = a.get("/ui/assets/style.css").await;
    assert_eq!(css.header("Content-Type"), Some("text/css; charset=utf-8"));
    assert_eq!(a.get("/ui/assets/nope.js").await.status, 404);
    // Revalidation: the same version is a 304 without a body.
    let etag = js.header("ETag").unwrap().to_string();
    let r = request_with(
        a.http,
        "GET",
        "/ui/assets/app.js",
        &[("If-None-Match", &etag)],
        b"",
    )
    .await;
    assert_eq!((r.status, r.body.len()), (304, 0));
    // Gzip'd for a browser that asks, as every answer.
    let r = request_with(a.http, "GET", "/ui/", &[("Accept-Encoding", "gzip")], b"").await;
    assert_eq!(r.header("Content-Encoding"), Some("gzip"));
    // The API's unknown paths are still 404s.
    assert_eq!(a.get("/v1/no/such/thing").await.status, 404);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_moves_with_its_content_path_and_is_gone_when_off() {
    let a = TestAgent::start_with(dev_flags(), |c| c.ui_content_path = "/consul/web/".into()).await;
    let r = a.get("/").await;
    assert_eq!(
        (r.status, r.header("Location")),
        (301, Some("/consul/web/"))
    );
    let page = a.get("/consul/web/dc1/nodes").await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains(r#"<base href="/consul/web/">"#));
    assert_eq!(a.get("/ui/").await.status, 404);
    a.stop().await;

    let a = TestAgent::start_with(dev_flags(), |c| c.ui = false).await;
    let r = a.get("/").await;
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("Consul Agent: UI disabled."), "{r:?}");
    assert_eq!(a.get("/ui/").await.status, 404);
    assert_eq!(a.get("/ui/assets/app.js").await.status, 404);
    // The UI's reads stay, as Consul's.
    wait_until(Duration::from_secs(10), "services listed", || async {
        a.get("/v1/internal/ui/services").await.status == 200
    })
    .await;
    a.stop().await;
}
