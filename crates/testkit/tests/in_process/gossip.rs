//! Agents forming a LAN pool over real sockets: join over HTTP, members on both sides,
//! Consul user events over gossip with filters, failure → serfHealth critical, force-leave
//! (and -prune) → deregistered.

use std::time::Duration;

use proconsul_config::AgentFlags;
use proconsul_testkit::{dev_flags, wait_until, TestAgent};

fn client_flags(name: &str) -> AgentFlags {
    AgentFlags {
        node_name: Some(name.into()),
        bind_addr: Some("127.0.0.1".into()),
        log_level: Some("warn".into()),
        ..Default::default()
    }
}

async fn member_status(a: &TestAgent, name: &str) -> Option<u64> {
    a.get_json("/v1/agent/members")
        .await
        .as_array()?
        .iter()
        .find(|m| m["Name"] == name)
        .and_then(|m| m["Status"].as_u64())
}

async fn serf_health(a: &TestAgent, node: &str) -> Option<String> {
    a.get_json(&format!("/v1/health/node/{node}"))
        .await
        .as_array()?
        .iter()
        .find(|c| c["CheckID"] == "serfHealth")
        .and_then(|c| c["Status"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_events_failure_and_force_leave() {
    let s = TestAgent::start_with(
        AgentFlags {
            node_name: Some("s1".into()),
            ..dev_flags()
        },
        |_| {},
    )
    .await;
    let c = TestAgent::start_with(client_flags("c1"), |_| {}).await;

    // Join the client's pool from the server over HTTP.
    let r = s
        .put(&format!("/v1/agent/join/{}", c.agent.serf_lan_addr()), b"")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_until(Duration::from_secs(5), "both see both", || async {
        member_status(&s, "c1").await == Some(1) && member_status(&c, "s1").await == Some(1)
    })
    .await;
    let m = c.get_json("/v1/agent/members").await;
    let me = m
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Name"] == "s1")
        .unwrap();
    assert_eq!(me["Tags"]["role"], "consul");
    assert_eq!(me["Tags"]["bootstrap"], "1");
    wait_until(Duration::from_secs(10), "c1 registered", || async {
        serf_health(&s, "c1").await.as_deref() == Some("passing")
    })
    .await;

    // A bad join fails with Consul's status and names the address.
    let r = s.put("/v1/agent/join/127.0.0.1:1", b"").await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("127.0.0.1:1"), "{}", r.text());

    // Events: a filtered one is not recorded where it does not match; a plain one reaches
    // the other agent with its Lamport time.
    let r = c.put("/v1/event/fire/skipme?node=%5Enomatch%24", b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = c.put("/v1/event/fire/deploy", b"v42").await;
    assert_eq!(r.status, 200);
    let fired = r.json();
    assert_eq!(fired["Version"], 1);
    wait_until(Duration::from_secs(5), "event on s1", || async {
        s.get_json("/v1/event/list?name=deploy")
            .await
            .as_array()
            .is_some_and(|l| {
                l.iter()
                    .any(|e| e["ID"] == fired["ID"] && e["Payload"] == "djQy")
            })
    })
    .await;
    let all = s.get_json("/v1/event/list").await;
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|e| e["Name"] != "skipme"),
        "{all}"
    );
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["LTime"].as_u64() > Some(0)));
    // Oversized events are refused (Serf's 512-byte limit).
    let r = c.put("/v1/event/fire/big", &[b'x'; 500]).await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("exceeds"), "{}", r.text());

    // The client dies without leaving: failed, and its serfHealth goes critical.
    c.stop().await;
    wait_until(Duration::from_secs(15), "c1 failed", || async {
        member_status(&s, "c1").await == Some(4)
    })
    .await;
    wait_until(Duration::from_secs(5), "serfHealth critical", || async {
        serf_health(&s, "c1").await.as_deref() == Some("critical")
    })
    .await;

    // force-leave: unknown node is an error; the failed one becomes left, then pruned and
    // deregistered.
    let r = s.put("/v1/agent/force-leave/nobody", b"").await;
    assert_eq!(r.status, 500);
    assert_eq!(r.text(), "agent: No node found with name 'nobody'");
    assert_eq!(s.put("/v1/agent/force-leave/c1", b"").await.status, 200);
    assert_eq!(member_status(&s, "c1").await, Some(3));
    assert_eq!(
        s.put("/v1/agent/force-leave/c1?prune", b"").await.status,
        200
    );
    assert_eq!(member_status(&s, "c1").await, None);
    wait_until(Duration::from_secs(5), "c1 deregistered", || async {
        s.get("/v1/catalog/node/c1").await.text() == "null"
    })
    .await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_datacenter_and_duplicate_node_id_cannot_join() {
    let a = TestAgent::start_with(client_flags("a1"), |_| {}).await;
    let other_dc = TestAgent::start_with(
        AgentFlags {
            datacenter: Some("dc2".into()),
            ..client_flags("b1")
        },
        |_| {},
    )
    .await;
    let r = other_dc
        .put(&format!("/v1/agent/join/{}", a.agent.serf_lan_addr()), b"")
        .await;
    assert_eq!(r.status, 500);
    assert!(
        r.text()
            .contains("Member 'a1' part of wrong datacenter 'dc1'"),
        "{}",
        r.text()
    );
    let dup = TestAgent::start_with(
        AgentFlags {
            node_id: Some(a.agent.node_id().to_string()),
            ..client_flags("d1")
        },
        |_| {},
    )
    .await;
    let r = dup
        .put(&format!("/v1/agent/join/{}", a.agent.serf_lan_addr()), b"")
        .await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("conflicting node ID"), "{}", r.text());
    // Neither became a member on either side.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(member_status(&a, "b1").await, None);
    assert_eq!(member_status(&a, "d1").await, None);
    for t in [a, other_dc, dup] {
        t.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_join_over_wan_and_report_serf_stats() {
    let a = TestAgent::start_with(
        AgentFlags {
            node_name: Some("w1".into()),
            ..dev_flags()
        },
        |_| {},
    )
    .await;
    let b = TestAgent::start_with(
        AgentFlags {
            node_name: Some("w2".into()),
            ..dev_flags()
        },
        |_| {},
    )
    .await;
    let wan = b.agent.serf_wan_addr().expect("servers have a WAN pool");
    let r = a.put(&format!("/v1/agent/join/{wan}?wan"), b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_until(Duration::from_secs(5), "both in the WAN pool", || async {
        let m = a.get_json("/v1/agent/members?wan").await;
        let mut names: Vec<String> = m
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["Status"] == 1)
            .map(|m| m["Name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names == ["w1.dc1", "w2.dc1"]
    })
    .await;
    // The LAN pools stayed apart.
    assert_eq!(member_status(&a, "w2").await, None);
    let stats = a.get_json("/v1/agent/self").await["Stats"].clone();
    assert_eq!(stats["serf_lan"]["members"], "1");
    assert_eq!(stats["serf_wan"]["members"], "2");
    assert_eq!(stats["serf_lan"]["encrypted"], "false");
    assert!(stats["raft"].is_object());
    a.stop().await;
    b.stop().await;
}
