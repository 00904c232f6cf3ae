//! The DNS interface of `agent -dev`, queried with `dig` (bind9-dnsutils, installed by
//! scripts/test): SRV answers follow health, node lookups, NXDOMAIN.

use std::process::Command;
use std::time::Duration;

use proconsul_testkit::{dev_flags, wait_until, TestAgent};

/// `dig` at the agent's DNS port (also used by `translate_wan`).
pub(crate) fn dig(port: u16, args: &[&str]) -> String {
    let out = Command::new("dig")
        // No client cookie: with a fresh one per query, no two queries would share a cached answer.
        .args([
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "+time=2",
            "+tries=1",
            "+nocookie",
        ])
        .args(args)
        .output()
        .expect("dig is installed (apt-get install -y bind9-dnsutils)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_answers_follow_health() {
    let a = TestAgent::start_with(dev_flags(), |c| {
        c.dns_addrs = vec!["127.0.0.1:0".parse().unwrap()]
    })
    .await;
    let port = a.agent.dns_addrs()[0].port();
    let node = a.agent.node_name().to_string();
    a.wait_registered().await;
    let r = a
        .put(
            "/v1/agent/service/register",
            br#"{"Name":"web","Port":9999,"Tags":["master"],"Check":{"TTL":"60s","Status":"passing"}}"#,
        )
        .await;
    assert_eq!(r.status, 200);
    let want = format!("1 1 9999 {node}.node.dc1.consul.");
    wait_until(Duration::from_secs(10), "SRV answer", || async {
        dig(port, &["+short", "web.service.consul", "SRV"]).trim() == want
    })
    .await;
    // the target's A record rides in the additional section
    let full = dig(
        port,
        &["+noall", "+additional", "web.service.consul", "SRV"],
    );
    assert!(
        full.contains(&format!("{node}.node.dc1.consul.")) && full.contains("127.0.0.1"),
        "{full}"
    );
    // tag and RFC 2782 forms, case-insensitively
    assert_eq!(
        dig(port, &["+short", "master.WEB.service.consul", "SRV"]).trim(),
        want
    );
    assert_eq!(
        dig(port, &["+short", "_web._master.service.consul", "SRV"]).trim(),
        want
    );
    assert_eq!(
        dig(port, &["+short", "web.service.consul", "A"]).trim(),
        "127.0.0.1"
    );
    assert_eq!(
        dig(port, &["+short", &format!("{node}.node.consul"), "A"]).trim(),
        "127.0.0.1"
    );
    assert!(dig(port, &["nosuch.service.consul", "SRV"]).contains("status: NXDOMAIN"));

    // a failing check takes the instance out of DNS; passing brings it back
    a.put("/v1/agent/check/fail/service:web", b"").await;
    wait_until(Duration::from_secs(10), "web gone from DNS", || async {
        dig(port, &["+short", "web.service.consul", "SRV"])
            .trim()
            .is_empty()
    })
    .await;
    a.put("/v1/agent/check/pass/service:web", b"").await;
    wait_until(Duration::from_secs(10), "web back in DNS", || async {
        dig(port, &["+short", "web.service.consul", "SRV"]).trim() == want
    })
    .await;
    a.stop().await;
}

/// The agent caches encoded answers per catalog generation: once the catalog shows a change,
/// the very next DNS answer must show it too — no waiting, no stale window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_answers_never_lag_the_catalog() {
    let a = TestAgent::start_with(dev_flags(), |c| {
        c.dns_addrs = vec!["127.0.0.1:0".parse().unwrap()]
    })
    .await;
    let port = a.agent.dns_addrs()[0].port();
    a.wait_registered().await;
    let r = a
        .put(
            "/v1/agent/service/register",
            br#"{"Name":"web","Port":9999,"Check":{"TTL":"60s","Status":"passing"}}"#,
        )
        .await;
    assert_eq!(r.status, 200);
    let passing = || async {
        let r = a.get("/v1/health/service/web?passing").await;
        String::from_utf8_lossy(&r.body).contains("\"Port\":9999")
    };
    wait_until(Duration::from_secs(10), "web passing", passing).await;
    for round in 0..6 {
        // Warm the cache with the current answer, several times over.
        for _ in 0..3 {
            assert!(
                dig(port, &["+short", "web.service.consul", "SRV"]).contains("9999"),
                "round {round}: passing web missing from DNS"
            );
        }
        a.put("/v1/agent/check/fail/service:web", b"").await;
        wait_until(Duration::from_secs(10), "web critical", || async {
            !passing().await
        })
        .await;
        for _ in 0..3 {
            let out = dig(port, &["web.service.consul", "SRV"]);
            assert!(
                out.contains("status: NXDOMAIN"),
                "round {round}: stale answer\n{out}"
            );
        }
        a.put("/v1/agent/check/pass/service:web", b"").await;
        wait_until(Duration::from_secs(10), "web passing again", passing).await;
    }
    a.stop().await;
}

/// DNS answers with the `dns` token (else `default`): a service it may not read is not there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_hides_what_its_token_may_not_read() {
    const ROOT: &str = "11111111-2222-3333-4444-555555555555";
    let a = TestAgent::start_with(dev_flags(), |c| {
        c.dns_addrs = vec!["127.0.0.1:0".parse().unwrap()];
        c.acl.enabled = true;
        c.acl.default_allow = false;
        c.acl.tokens.initial_management = ROOT.into();
        // Anti-entropy writes the agent's services with it.
        c.acl.tokens.agent = ROOT.into();
    })
    .await;
    let port = a.agent.dns_addrs()[0].port();
    let root = [("X-Consul-Token", ROOT)];
    let call = |m: &'static str, p: &'static str, b: &'static str| {
        let addr = a.http;
        async move { proconsul_testkit::http::request_with(addr, m, p, &root, b.as_bytes()).await }
    };
    wait_until(Duration::from_secs(10), "management token", || async {
        call("GET", "/v1/acl/token/self", "").await.status == 200
    })
    .await;
    for body in [
        r#"{"Name":"web","Port":80}"#,
        r#"{"Name":"secret","Port":81}"#,
    ] {
        let addr = a.http;
        let r = proconsul_testkit::http::request_with(
            addr,
            "PUT",
            "/v1/agent/service/register",
            &root,
            body.as_bytes(),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    wait_until(
        Duration::from_secs(10),
        "both services in the catalog",
        || async {
            let s = call("GET", "/v1/catalog/services", "").await.text();
            s.contains("web") && s.contains("secret")
        },
    )
    .await;
    // Without a dns or default token DNS is anonymous: with `default_policy = deny`, nothing.
    assert_eq!(
        dig(port, &["+short", "web.service.consul", "SRV"]).trim(),
        ""
    );
    let p = call(
        "PUT",
        "/v1/acl/policy",
        r#"{"Name":"dns","Rules":"service \"web\" { policy = \"read\" }\nnode_prefix \"\" { policy = \"read\" }"}"#,
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.text());
    let t = call("PUT", "/v1/acl/token", r#"{"Policies":[{"Name":"dns"}]}"#).await;
    let secret = t.json()["SecretID"].as_str().unwrap().to_string();
    let body = format!(r#"{{"Token":"{secret}"}}"#);
    let r = proconsul_testkit::http::request_with(
        a.http,
        "PUT",
        "/v1/agent/token/dns",
        &root,
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let node = a.agent.node_name().to_string();
    assert_eq!(
        dig(port, &["+short", "web.service.consul", "SRV"]).trim(),
        format!("1 1 80 {node}.node.dc1.consul.")
    );
    let hidden = dig(port, &["secret.service.consul", "SRV"]);
    assert!(hidden.contains("NXDOMAIN"), "{hidden}");
    a.stop().await;
}

/// Consul's DNS timers: forward names count as `consul.dns.domain_query`, reverse names as
/// `consul.dns.ptr_query`, both labelled with the node — cached answers included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_are_timed_as_consul_names_them() {
    let a = TestAgent::start_with(dev_flags(), |c| {
        c.dns_addrs = vec!["127.0.0.1:0".parse().unwrap()]
    })
    .await;
    let port = a.agent.dns_addrs()[0].port();
    let node = a.agent.node_name().to_string();
    a.wait_registered().await;
    let count = |v: &serde_json::Value, name: &str| -> u64 {
        v["Samples"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["Name"] == name && s["Labels"]["node"] == node.as_str())
            .map(|s| s["Count"].as_u64().unwrap())
            .sum()
    };
    // (The summary shows one 10 s interval: query until it holds both kinds.)
    wait_until(Duration::from_secs(25), "both timers", || async {
        for _ in 0..3 {
            dig(port, &["+short", "consul.service.consul", "SRV"]);
        }
        dig(port, &["+short", "-x", "127.0.0.1"]);
        let v = a.get_json("/v1/agent/metrics").await;
        count(&v, "consul.dns.domain_query") >= 3 && count(&v, "consul.dns.ptr_query") >= 1
    })
    .await;
    a.stop().await;
}
