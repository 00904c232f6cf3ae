//! The DNS interface of `agent -dev`, queried with `dig` (bind9-dnsutils, installed by
//! scripts/test): SRV answers follow health, node lookups, NXDOMAIN.

use std::process::Command;
use std::time::Duration;

use proconsul_testkit::{dev_flags, wait_until, TestAgent};

fn dig(port: u16, args: &[&str]) -> String {
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
