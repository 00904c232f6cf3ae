//! Autopilot on a real three-server cluster (processes on 127.0.0.151–153, default ports):
//! its configuration written through Raft (`PUT` with and without `?cas`, `operator autopilot
//! set-config`), read back on every server; `/v1/operator/autopilot/state`; and dead-server
//! cleanup: a server killed with -9 stays in the Raft configuration while
//! `CleanupDeadServers=false`, is removed once it is turned on, and is added back when it
//! returns.

use crate::common;

use std::time::{Duration, Instant};

use common::cluster::{agreed_leader, cli, http, leader, server};
use common::{stderr, stdout, wait_for, Proc};

const IPS: [&str; 3] = ["127.0.0.151", "127.0.0.152", "127.0.0.153"];

fn json(ip: &str, path: &str) -> Option<serde_json::Value> {
    match http(ip, "GET", path, "")? {
        (200 | 429, b) => serde_json::from_str(&b).ok(),
        _ => None,
    }
}

/// Raft member addresses as `ip` sees them (`?stale`: its own view).
fn raft_addresses(ip: &str) -> Vec<String> {
    let Some(c) = json(ip, "/v1/operator/raft/configuration") else {
        return Vec::new();
    };
    let mut out: Vec<String> = c["Servers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["Address"].as_str().unwrap_or("").to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn autopilot_configuration_state_and_dead_server_cleanup() {
    let dir = tempfile::tempdir().unwrap();
    let mut servers: Vec<Option<Proc>> = IPS
        .iter()
        .enumerate()
        .map(|(i, ip)| Some(server(dir.path(), &format!("s{}", i + 1), ip, IPS[0])))
        .collect();
    wait_for("a leader everywhere", Duration::from_secs(30), || {
        agreed_leader(&IPS).is_some()
    });
    wait_for("three voters", Duration::from_secs(15), || {
        raft_addresses(IPS[0]).len() == 3
    });

    // The leader stores Consul's defaults once: the configuration has Raft indexes.
    wait_for("stored configuration", Duration::from_secs(10), || {
        json(IPS[1], "/v1/operator/autopilot/configuration")
            .is_some_and(|c| c["CreateIndex"].as_u64() > Some(0))
    });
    let conf = json(IPS[1], "/v1/operator/autopilot/configuration").unwrap();
    assert_eq!(conf["CleanupDeadServers"], true, "{conf}");
    assert_eq!(conf["LastContactThreshold"], "200ms", "{conf}");
    let index = conf["ModifyIndex"].as_u64().unwrap();

    // A PUT with a stale ?cas loses; bad bodies and cas values are Consul's 400s.
    assert_eq!(
        http(
            IPS[2],
            "PUT",
            &format!("/v1/operator/autopilot/configuration?cas={}", index + 1000),
            r#"{"CleanupDeadServers": false}"#,
        ),
        Some((200, "false".into()))
    );
    let (code, body) = http(
        IPS[2],
        "PUT",
        "/v1/operator/autopilot/configuration",
        r#"{"LastContactThreshold": "soon"}"#,
    )
    .unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(
        body.starts_with("Error parsing autopilot config: "),
        "{body}"
    );
    let (code, body) = http(
        IPS[2],
        "PUT",
        "/v1/operator/autopilot/configuration?cas=x",
        "{}",
    )
    .unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(body.starts_with("Error parsing cas value: "), "{body}");
    assert_eq!(
        json(IPS[0], "/v1/operator/autopilot/configuration").unwrap()["ModifyIndex"],
        index
    );

    // set-config through a follower: a check-and-set on what it read.
    let o = cli(
        IPS[2],
        &[
            "operator",
            "autopilot",
            "set-config",
            "-cleanup-dead-servers=false",
            "-last-contact-threshold=300ms",
            "-max-trailing-logs=500",
        ],
    );
    assert_eq!(stdout(&o), "Configuration updated!\n", "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(0));
    let o = cli(
        IPS[1],
        &[
            "operator",
            "autopilot",
            "set-config",
            "-last-contact-threshold=soon",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("invalid value \"soon\" for flag -last-contact-threshold"),
        "{}",
        stderr(&o)
    );
    // Every server applied it: a stale read of each one's own state.
    for ip in IPS {
        wait_for("configuration everywhere", Duration::from_secs(10), || {
            json(ip, "/v1/operator/autopilot/configuration?stale").is_some_and(|c| {
                c["CleanupDeadServers"] == false
                    && c["LastContactThreshold"] == "300ms"
                    && c["MaxTrailingLogs"] == 500
                    && c["ModifyIndex"].as_u64() > Some(index)
            })
        });
    }
    let o = cli(IPS[0], &["operator", "autopilot", "get-config"]);
    assert_eq!(
        stdout(&o),
        "CleanupDeadServers = false\nLastContactThreshold = 300ms\nMaxTrailingLogs = 500\nMinQuorum = 0\nServerStabilizationTime = 10s\nRedundancyZoneTag = \"\"\nDisableUpgradeMigration = false\nUpgradeVersionTag = \"\"\n",
        "{}",
        stderr(&o)
    );

    // Autopilot's state: three healthy voters keyed by ID, one of them the leader.
    wait_for("healthy state", Duration::from_secs(15), || {
        json(IPS[1], "/v1/operator/autopilot/state")
            .is_some_and(|s| s["Healthy"] == true && s["FailureTolerance"] == 1)
    });
    let state = json(IPS[1], "/v1/operator/autopilot/state").unwrap();
    let servers_map = state["Servers"].as_object().unwrap();
    assert_eq!(servers_map.len(), 3, "{state}");
    assert_eq!(state["Voters"].as_array().unwrap().len(), 3, "{state}");
    assert_eq!(state["OptimisticFailureTolerance"], 1, "{state}");
    let leader_id = state["Leader"].as_str().unwrap();
    assert_eq!(servers_map[leader_id]["Status"], "leader", "{state}");
    for (id, s) in servers_map {
        assert_eq!(s["ID"], id.as_str(), "{state}");
        assert_eq!(s["NodeStatus"], "alive", "{state}");
        assert_eq!(s["NodeType"], "voter", "{state}");
        assert!(s["Address"].as_str().unwrap().ends_with(":8300"), "{state}");
        if id != leader_id {
            assert_eq!(s["Status"], "voter", "{state}");
        }
    }

    // kill -9 a follower. With CleanupDeadServers=false it stays in the Raft configuration
    // after gossip declares it failed.
    let lead = leader(IPS[0]).unwrap();
    let victim = (0..3).rev().find(|i| !lead.starts_with(IPS[*i])).unwrap();
    let survivor = IPS[(victim + 1) % 3];
    drop(servers[victim].take());
    let victim_rpc = format!("{}:8300", IPS[victim]);
    wait_for("victim failed in gossip", Duration::from_secs(30), || {
        json(survivor, "/v1/agent/members").is_some_and(|m| {
            m.as_array().unwrap().iter().any(|m| {
                m["Addr"] == IPS[victim] && m["Status"] == 4 // failed
            })
        })
    });
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        let peers = raft_addresses(survivor);
        assert!(
            peers.is_empty() || peers.contains(&victim_rpc),
            "removed while CleanupDeadServers=false: {peers:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(raft_addresses(survivor).contains(&victim_rpc));
    let state = json(survivor, "/v1/operator/autopilot/state").unwrap();
    assert_eq!(state["Healthy"], false, "{state}");
    assert!(
        state["Servers"]
            .as_object()
            .unwrap()
            .values()
            .any(|s| s["NodeStatus"] == "failed" && s["Healthy"] == false),
        "{state}"
    );

    // Turn cleanup on with a check-and-set on the current index: the dead server goes.
    let index = json(survivor, "/v1/operator/autopilot/configuration").unwrap()["ModifyIndex"]
        .as_u64()
        .unwrap();
    assert_eq!(
        http(
            survivor,
            "PUT",
            &format!("/v1/operator/autopilot/configuration?cas={index}"),
            r#"{"CleanupDeadServers": true}"#,
        ),
        Some((200, "true".into()))
    );
    let t = Instant::now();
    wait_for("dead server removed", Duration::from_secs(20), || {
        let peers = raft_addresses(survivor);
        peers.len() == 2 && !peers.contains(&victim_rpc)
    });
    eprintln!(
        "dead server removed {:.1}s after cleanup was enabled",
        t.elapsed().as_secs_f64()
    );
    let o = cli(survivor, &["operator", "raft", "list-peers"]);
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 3, "{out}{}", stderr(&o));
    assert!(!out.contains(&victim_rpc), "{out}");
    wait_for("healthy with two voters", Duration::from_secs(15), || {
        json(survivor, "/v1/operator/autopilot/health")
            .is_some_and(|h| h["Healthy"] == true && h["Servers"].as_array().unwrap().len() == 2)
    });

    // The server comes back: the leader adds it again.
    servers[victim] = Some(server(
        dir.path(),
        &format!("s{}", victim + 1),
        IPS[victim],
        survivor,
    ));
    wait_for("three voters again", Duration::from_secs(30), || {
        raft_addresses(survivor).len() == 3
    });
}
