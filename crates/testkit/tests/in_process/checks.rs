//! HTTP and TCP checks on `agent -dev`: status follows the probed endpoint; config-file services
//! with checks appear on start and on reload.

use std::time::Duration;

use proconsul_testkit::{dev_flags, wait_until, TestAgent};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// A tiny web service like the seed's: `/health` answers 200, everything else names the host.
async fn web(listener: tokio::net::TcpListener, stop: CancellationToken) {
    loop {
        let (mut s, _) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r { Ok(x) => x, Err(_) => return },
        };
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
                .await;
        });
    }
}

async fn check_status(a: &TestAgent, id: &str) -> String {
    a.get_json("/v1/agent/checks").await[id]["Status"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_check_follows_the_service() {
    let a = TestAgent::dev().await;
    a.wait_registered().await;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let body = json!({
        "Name": "web", "Port": addr.port(), "Address": "127.0.0.1",
        "Check": {"HTTP": format!("http://{addr}/health"), "Interval": "1s"}
    });
    let r = a
        .put("/v1/agent/service/register", body.to_string().as_bytes())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // nothing listens yet... well, the listener is bound but not answering: start answering
    let stop = CancellationToken::new();
    tokio::spawn(web(l, stop.clone()));
    wait_until(Duration::from_secs(10), "web passing", || async {
        check_status(&a, "service:web").await == "passing"
    })
    .await;
    let c = &a.get_json("/v1/agent/checks").await["service:web"];
    assert_eq!(c["Type"], "http");
    assert_eq!(
        c["Output"],
        format!("HTTP GET http://{addr}/health: 200 OK Output: ok\n")
    );
    wait_until(Duration::from_secs(10), "catalog passing", || async {
        a.get_json("/v1/health/service/web?passing")
            .await
            .as_array()
            .is_some_and(|v| v.len() == 1)
    })
    .await;

    // the service dies: the check goes critical and the instance leaves ?passing
    stop.cancel();
    wait_until(Duration::from_secs(10), "web critical", || async {
        check_status(&a, "service:web").await == "critical"
    })
    .await;
    wait_until(Duration::from_secs(10), "catalog critical", || async {
        a.get_json("/v1/health/service/web?passing").await == json!([])
    })
    .await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_check_and_invalid_targets() {
    let a = TestAgent::dev().await;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let body = json!({"Name": "db-port", "TCP": addr.to_string(), "Interval": "1s"});
    assert_eq!(
        a.put("/v1/agent/check/register", body.to_string().as_bytes())
            .await
            .status,
        200
    );
    wait_until(Duration::from_secs(10), "tcp passing", || async {
        check_status(&a, "db-port").await == "passing"
    })
    .await;
    drop(l);
    wait_until(Duration::from_secs(10), "tcp critical", || async {
        check_status(&a, "db-port").await == "critical"
    })
    .await;

    // an interval is required; bad targets are refused plainly; nothing is registered
    let r = a
        .put(
            "/v1/agent/check/register",
            br#"{"Name":"x","TCP":"127.0.0.1:1"}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Interval must be > 0"), "{}", r.text());
    let r = a
        .put(
            "/v1/agent/check/register",
            br#"{"Name":"g","GRPC":"127.0.0.1","Interval":"1s"}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("expected host:port or host:port/service"),
        "{}",
        r.text()
    );
    let r = a
        .put(
            "/v1/agent/check/register",
            br#"{"Name":"g","HTTP":"ftp://x/","Interval":"1s"}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("invalid HTTP check URL"), "{}", r.text());
    assert!(a.get_json("/v1/agent/checks").await.get("x").is_none());
    assert!(a.get_json("/v1/agent/checks").await.get("g").is_none());

    // deregistering stops the prober (no resurrection by a late result)
    assert_eq!(
        a.put("/v1/agent/check/deregister/db-port", b"")
            .await
            .status,
        200
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(a
        .get_json("/v1/agent/checks")
        .await
        .get("db-port")
        .is_none());
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_dir_services_load_and_reload() {
    let conf = tempfile::tempdir().unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(web(l, stop.clone()));
    // the seed's web.json, with a short interval
    std::fs::write(
        conf.path().join("web.json"),
        format!(
            r#"{{"service": {{"name": "web", "tags": ["master"], "address": "127.0.0.1", "port": {},
                "checks": [{{"http": "http://{addr}/health", "interval": "1s"}}]}}}}"#,
            addr.port()
        ),
    )
    .unwrap();
    let mut flags = dev_flags();
    flags.config_dirs.push(conf.path().to_path_buf());
    let a = TestAgent::start_with(flags, |_| {}).await;
    a.wait_registered().await;
    wait_until(
        Duration::from_secs(10),
        "web passing in the catalog",
        || async {
            a.get_json("/v1/health/service/web?passing")
                .await
                .as_array()
                .is_some_and(|v| v.len() == 1)
        },
    )
    .await;
    let rows = a.get_json("/v1/catalog/service/web").await;
    assert_eq!(rows[0]["ServiceTags"], json!(["master"]));
    assert_eq!(rows[0]["ServiceAddress"], "127.0.0.1");

    // add a second service and reload over HTTP
    std::fs::write(
        conf.path().join("api.hcl"),
        "service {\n  name = \"api\"\n  port = 8080\n}\n",
    )
    .unwrap();
    assert_eq!(a.put("/v1/agent/reload", b"").await.status, 200);
    wait_until(Duration::from_secs(10), "api in catalog", || async {
        a.get_json("/v1/catalog/service/api")
            .await
            .as_array()
            .is_some_and(|v| v.len() == 1)
    })
    .await;
    // a broken file: reload fails with the file named and the running config is untouched
    std::fs::write(
        conf.path().join("zz.json"),
        r#"{"service": {"name": "x", "prot": 1}}"#,
    )
    .unwrap();
    let r = a.put("/v1/agent/reload", b"").await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("zz.json"), "{}", r.text());
    assert!(a.get_json("/v1/agent/services").await.get("api").is_some());
    // remove a service file and reload: it leaves the catalog
    std::fs::remove_file(conf.path().join("zz.json")).unwrap();
    std::fs::remove_file(conf.path().join("api.hcl")).unwrap();
    assert_eq!(a.put("/v1/agent/reload", b"").await.status, 200);
    wait_until(Duration::from_secs(10), "api gone", || async {
        a.get_json("/v1/catalog/service/api").await == json!([])
    })
    .await;
    stop.cancel();
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_checks_need_enable_script_checks() {
    // refused over the API by default (the Consul RCE lesson), nothing registered
    let a = TestAgent::dev().await;
    let body = br#"{"Name":"s","Args":["/bin/true"],"Interval":"1s"}"#;
    let r = a.put("/v1/agent/check/register", body).await;
    assert_eq!(r.status, 500);
    assert!(
        r.text().contains("Scripts are disabled on this agent"),
        "{}",
        r.text()
    );
    let r = a
        .put(
            "/v1/agent/service/register",
            br#"{"Name":"w","Check":{"Args":["/bin/true"],"Interval":"1s"}}"#,
        )
        .await;
    assert_eq!(r.status, 500);
    assert_eq!(a.get_json("/v1/agent/checks").await, json!({}));
    assert_eq!(a.get_json("/v1/agent/services").await, json!({}));
    a.stop().await;

    // with enable_script_checks: exit 0 passing, 1 warning, other critical; output recorded
    let mut flags = dev_flags();
    flags.enable_script_checks = true;
    let a = TestAgent::start_with(flags, |_| {}).await;
    for (name, code, want) in [
        ("ok", 0, "passing"),
        ("warn", 1, "warning"),
        ("bad", 2, "critical"),
    ] {
        let body = json!({"Name": name, "Args": ["/bin/sh", "-c", format!("echo out-{name}; exit {code}")], "Interval": "1s", "Status": "passing"});
        assert_eq!(
            a.put("/v1/agent/check/register", body.to_string().as_bytes())
                .await
                .status,
            200
        );
        if want == "passing" {
            wait_until(Duration::from_secs(10), "script ran", || async {
                a.get_json("/v1/agent/checks").await[name]["Output"] == format!("out-{name}\n")
            })
            .await;
        }
        wait_until(Duration::from_secs(10), "script status", || async {
            check_status(&a, name).await == want
        })
        .await;
    }
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn critical_services_are_deregistered_after_the_deadline() {
    let a = TestAgent::dev().await;
    let body =
        br#"{"Name":"flaky","Port":1,"Check":{"TTL":"30s","DeregisterCriticalServiceAfter":"1s"}}"#;
    assert_eq!(a.put("/v1/agent/service/register", body).await.status, 200);
    assert!(a
        .get_json("/v1/agent/services")
        .await
        .get("flaky")
        .is_some());
    // critical from the start (no status given): gone after ~1 s, from the agent and the catalog
    wait_until(Duration::from_secs(10), "flaky reaped", || async {
        a.get_json("/v1/agent/services")
            .await
            .get("flaky")
            .is_none()
    })
    .await;
    wait_until(
        Duration::from_secs(10),
        "flaky gone from catalog",
        || async { a.get_json("/v1/catalog/service/flaky").await == json!([]) },
    )
    .await;
    // a passing one stays
    let body = br#"{"Name":"steady","Port":1,"Check":{"TTL":"30s","Status":"passing","DeregisterCriticalServiceAfter":"1s"}}"#;
    a.put("/v1/agent/service/register", body).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(a
        .get_json("/v1/agent/services")
        .await
        .get("steady")
        .is_some());
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alias_check_mirrors_the_aliased_service() {
    let a = TestAgent::dev().await;
    a.wait_registered().await;
    a.put(
        "/v1/agent/service/register",
        br#"{"Name":"db","Port":5432,"Check":{"TTL":"60s","Status":"passing"}}"#,
    )
    .await;
    let r = a
        .put(
            "/v1/agent/service/register",
            br#"{"Name":"api","Port":80,"Check":{"AliasService":"db"}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_until(Duration::from_secs(10), "alias passing", || async {
        check_status(&a, "service:api").await == "passing"
    })
    .await;
    assert_eq!(
        a.get_json("/v1/agent/checks").await["service:api"]["Type"],
        "alias"
    );
    a.put("/v1/agent/check/fail/service:db", b"").await;
    wait_until(Duration::from_secs(10), "alias critical", || async {
        check_status(&a, "service:api").await == "critical"
    })
    .await;
    // an alias of a service that does not exist is critical
    a.put(
        "/v1/agent/check/register",
        br#"{"Name":"ghost","AliasService":"nope"}"#,
    )
    .await;
    wait_until(
        Duration::from_secs(10),
        "ghost critical with output",
        || async {
            a.get_json("/v1/agent/checks").await["ghost"]["Output"]
                .as_str()
                .is_some_and(|o| o.contains("could not be found"))
        },
    )
    .await;
    a.stop().await;
}

/// The catalog's copy of one of this agent's checks: (status, output).
async fn catalog_check(a: &TestAgent, id: &str) -> Option<(String, String)> {
    let path = format!("/v1/health/node/{}", a.agent.node_name());
    a.get_json(&path)
        .await
        .as_array()?
        .iter()
        .find(|c| c["CheckID"] == id)
        .map(|c| {
            (
                c["Status"].as_str().unwrap_or("").to_string(),
                c["Output"].as_str().unwrap_or("").to_string(),
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_only_changes_wait_for_check_update_interval() {
    let a = TestAgent::start_with(dev_flags(), |c| {
        c.check_update_interval = Duration::from_secs(3600)
    })
    .await;
    a.wait_registered().await;
    let r = a
        .put(
            "/v1/agent/check/register",
            br#"{"Name":"chatty","TTL":"60s"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    a.put("/v1/agent/check/pass/chatty?note=first", b"").await;
    wait_until(Duration::from_secs(5), "status change synced", || async {
        catalog_check(&a, "chatty").await == Some(("passing".into(), "first".into()))
    })
    .await;
    // Same status, new output: the agent has it, the catalog keeps the old one for now.
    a.put("/v1/agent/check/pass/chatty?note=second", b"").await;
    assert_eq!(
        a.get_json("/v1/agent/checks").await["chatty"]["Output"],
        "second"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        catalog_check(&a, "chatty").await,
        Some(("passing".into(), "first".into()))
    );
    // A status change goes out at once, with its output.
    a.put("/v1/agent/check/fail/chatty?note=third", b"").await;
    wait_until(Duration::from_secs(5), "status change synced", || async {
        catalog_check(&a, "chatty").await == Some(("critical".into(), "third".into()))
    })
    .await;
    a.stop().await;
}
