//! Outage recovery with `peers.json` (processes on 127.0.0.161–163, default ports): three
//! servers hold data; two are killed for good, so the survivor has no leader; it is stopped,
//! given a `raft/peers.json` naming only itself, and started again: it leads alone, the data
//! written before is there, it takes writes, and the file is gone.

use crate::common;

use std::time::Duration;

use common::cluster::{agreed_leader, http, leader, server};
use common::{stderr, stdout, wait_for, Proc, BIN};

const IPS: [&str; 3] = ["127.0.0.161", "127.0.0.162", "127.0.0.163"];

#[test]
fn peers_json_recovers_a_lone_survivor() {
    let dir = tempfile::tempdir().unwrap();
    let mut servers: Vec<Option<Proc>> = IPS
        .iter()
        .enumerate()
        .map(|(i, ip)| Some(server(dir.path(), &format!("s{}", i + 1), ip, IPS[0])))
        .collect();
    wait_for("a leader everywhere", Duration::from_secs(30), || {
        agreed_leader(&IPS).is_some()
    });
    for i in 0..20 {
        assert_eq!(
            http(IPS[0], "PUT", &format!("/v1/kv/k/{i}"), &format!("v{i}")),
            Some((200, "true".into())),
            "write {i}"
        );
    }
    // Every server has applied the writes before the outage.
    for ip in IPS {
        wait_for("replicated", Duration::from_secs(10), || {
            http(ip, "GET", "/v1/kv/k/19?raw&stale", "") == Some((200, "v19".into()))
        });
    }

    // Two servers are lost for good: the survivor (s1) has no leader.
    drop(servers[1].take());
    drop(servers[2].take());
    wait_for("no leader", Duration::from_secs(20), || {
        http(IPS[0], "GET", "/v1/status/leader", "").is_some_and(|(_, b)| b.trim() == "\"\"")
    });
    assert_eq!(
        http(IPS[0], "PUT", "/v1/kv/lost", "x").map(|r| r.0),
        Some(500)
    );

    // Stop it, write peers.json naming only itself, start it again.
    drop(servers[0].take());
    let raft_dir = dir.path().join("s1").join("raft");
    assert!(
        raft_dir.join("peers.info").exists(),
        "peers.info written at first start"
    );
    let node_id = std::fs::read_to_string(dir.path().join("s1").join("node-id")).unwrap();
    let peers = raft_dir.join("peers.json");
    std::fs::write(
        &peers,
        format!(
            r#"[{{"id": "{}", "address": "{}:8300", "non_voter": false}}]"#,
            node_id.trim(),
            IPS[0]
        ),
    )
    .unwrap();
    servers[0] = Some(server(dir.path(), "s1", IPS[0], IPS[0]));
    wait_for("the survivor leads", Duration::from_secs(30), || {
        leader(IPS[0]).is_some_and(|l| l == format!("{}:8300", IPS[0]))
    });
    assert!(!peers.exists(), "peers.json is deleted after recovery");
    for i in 0..20 {
        assert_eq!(
            http(IPS[0], "GET", &format!("/v1/kv/k/{i}?raw&consistent"), ""),
            Some((200, format!("v{i}"))),
            "data written before the outage"
        );
    }
    assert_eq!(
        http(IPS[0], "PUT", "/v1/kv/after", "recovered"),
        Some((200, "true".into()))
    );
    let o = std::process::Command::new(BIN)
        .args([
            "operator",
            "raft",
            "list-peers",
            &format!("-http-addr={}:8500", IPS[0]),
        ])
        .output()
        .unwrap();
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 2, "{out}{}", stderr(&o));
    assert!(out.contains(&format!("{}:8300", IPS[0])), "{out}");
    assert!(out.contains("leader"), "{out}");

    // A restart keeps the recovered configuration (the file is not read again).
    drop(servers[0].take());
    servers[0] = Some(server(dir.path(), "s1", IPS[0], IPS[0]));
    wait_for(
        "leads again after a restart",
        Duration::from_secs(30),
        || leader(IPS[0]).is_some(),
    );
    assert_eq!(
        http(IPS[0], "GET", "/v1/kv/after?raw&consistent", ""),
        Some((200, "recovered".into()))
    );
}
