//! Real server clusters, as processes on 127.0.0.x with default ports per address:
//!
//! * three servers formed with `-bootstrap-expect=3` and `-retry-join`, a client agent; writes
//!   through the client; kill -9 of the leader → a new leader within 10 s, every acknowledged
//!   write still readable; the old leader restarts and catches up;
//! * durability: 100 acknowledged writes, kill -9 of all three servers, restart, all read back
//!   with `?consistent`.

use crate::common;

use std::time::{Duration, Instant};

use common::cluster::{http, leader, server};
use common::{start, stderr, stdout, wait_for, Proc, BIN};

fn put(ip: &str, key: &str, value: &str) -> bool {
    matches!(http(ip, "PUT", &format!("/v1/kv/{key}"), value), Some((200, b)) if b.trim() == "true")
}

/// A read that must find `key`: retried through transient errors (an election, a forward to
/// a leader that just went away) for up to 10 s; a 404 is a definite answer.
fn read_acknowledged(ip: &str, key: &str) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match http(ip, "GET", &format!("/v1/kv/{key}?raw&consistent"), "") {
            Some((200, b)) => return Ok(b),
            Some((404, _)) => return Err(format!("{key}: not found")),
            other if Instant::now() >= deadline => return Err(format!("{key}: {other:?}")),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn get_raw(ip: &str, key: &str, mode: &str) -> Option<String> {
    match http(ip, "GET", &format!("/v1/kv/{key}?raw&{mode}"), "")? {
        (200, b) => Some(b),
        _ => None,
    }
}

#[test]
fn three_servers_and_a_client_survive_a_leader_kill() {
    let dir = tempfile::tempdir().unwrap();
    let ips = ["127.0.0.41", "127.0.0.42", "127.0.0.43"];
    let mut servers: Vec<Option<Proc>> = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| Some(server(dir.path(), &format!("s{}", i + 1), ip, ips[0])))
        .collect();
    let _client = start(
        &[
            "agent",
            "-node=c1",
            "-bind=127.0.0.44",
            "-client=127.0.0.44",
            &format!("-data-dir={}", dir.path().join("c1").display()),
            "-retry-join=127.0.0.41",
            "-retry-interval=1s",
        ],
        &dir.path().join("c1.log"),
    );
    // bootstrap-expect: one leader, known to every server and the client, three peers.
    wait_for("a leader everywhere", Duration::from_secs(30), || {
        let l: Vec<Option<String>> = ips
            .iter()
            .chain(["127.0.0.44"].iter())
            .map(|ip| leader(ip))
            .collect();
        l[0].is_some() && l.iter().all(|x| x == &l[0])
    });
    wait_for("three peers", Duration::from_secs(10), || {
        http(ips[0], "GET", "/v1/status/peers", "")
            .is_some_and(|(_, b)| b.matches(":8300").count() == 3)
    });

    // operator raft list-peers, through the client: three voters, one leader, node names.
    let o = std::process::Command::new(BIN)
        .args([
            "operator",
            "raft",
            "list-peers",
            "-http-addr=127.0.0.44:8500",
        ])
        .output()
        .unwrap();
    let out = stdout(&o);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        [
            "Node",
            "ID",
            "Address",
            "State",
            "Voter",
            "RaftProtocol",
            "Commit",
            "Index",
            "Trails",
            "Leader",
            "By"
        ],
        "{out}"
    );
    // The leader trails itself by "-"; followers by "N commits", N from its view of them.
    for r in &rows[1..] {
        let idx: u64 = r[6].parse().unwrap();
        if r[3] == "leader" {
            assert_eq!(r[7..], ["-"], "{out}");
            assert!(idx > 0, "{out}");
        } else {
            assert_eq!(r[8], "commits", "{out}");
            assert!(r[7].parse::<u64>().is_ok(), "{out}");
        }
    }
    let mut nodes: Vec<&str> = rows[1..].iter().map(|r| r[0]).collect();
    nodes.sort();
    assert_eq!(nodes, ["s1", "s2", "s3"], "{out}");
    assert_eq!(rows.iter().filter(|r| r[3] == "leader").count(), 1, "{out}");
    let o = std::process::Command::new(BIN)
        .args([
            "operator",
            "raft",
            "remove-peer",
            "-address=127.0.0.99:8300",
            "-http-addr=127.0.0.44:8500",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("address \"127.0.0.99:8300\" was not found in the Raft configuration"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        http("127.0.0.44", "DELETE", "/v1/operator/raft/peer", "").map(|r| r.0),
        Some(400)
    );

    // Writes through the client (forwarded to a server, then to the leader).
    for i in 0..50 {
        assert!(
            put("127.0.0.44", &format!("k/{i}"), &format!("v{i}")),
            "write {i}"
        );
    }
    // Autopilot: three healthy voters, one failure tolerated.
    wait_for("autopilot healthy", Duration::from_secs(10), || {
        http("127.0.0.44", "GET", "/v1/operator/autopilot/health", "")
            .is_some_and(|(s, b)| s == 200 && b.contains(r#""Healthy":true,"FailureTolerance":1"#))
    });
    let (_, conf) = http(
        "127.0.0.44",
        "GET",
        "/v1/operator/autopilot/configuration",
        "",
    )
    .unwrap();
    assert!(conf.contains(r#""CleanupDeadServers":true"#), "{conf}");
    let o = std::process::Command::new(BIN)
        .args([
            "operator",
            "autopilot",
            "get-config",
            "-http-addr=127.0.0.44:8500",
        ])
        .output()
        .unwrap();
    assert_eq!(
        stdout(&o),
        "CleanupDeadServers = true\nLastContactThreshold = 200ms\nMaxTrailingLogs = 250\nMinQuorum = 0\nServerStabilizationTime = 10s\nRedundancyZoneTag = \"\"\nDisableUpgradeMigration = false\nUpgradeVersionTag = \"\"\n",
        "{}",
        stderr(&o)
    );

    // snapshot save through the client, a change, restore: every server has the old state.
    let snap = dir.path().join("backup.snap");
    let o = std::process::Command::new(BIN)
        .args([
            "snapshot",
            "save",
            "-http-addr=127.0.0.44:8500",
            snap.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        stdout(&o).starts_with("Saved and verified snapshot to index "),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    let o = std::process::Command::new(BIN)
        .args(["snapshot", "inspect", snap.to_str().unwrap()])
        .output()
        .unwrap();
    let inspect: Vec<Vec<String>> = stdout(&o)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    let names: Vec<&str> = inspect.iter().take(5).map(|r| r[0].as_str()).collect();
    assert_eq!(
        names,
        ["ID", "Size", "Index", "Term", "Version"],
        "{inspect:?}"
    );
    assert!(inspect[2][1].parse::<u64>().unwrap() > 0);
    assert_eq!(inspect[4][1], "1");
    // Then the records by type: the 50 keys written above among them.
    assert_eq!(inspect[6], ["Type", "Count", "Size"], "{inspect:?}");
    assert!(
        inspect
            .iter()
            .any(|r| r.len() == 3 && r[0] == "KVS" && r[1] == "50"),
        "{inspect:?}"
    );
    assert!(put("127.0.0.44", "k/0", "changed"));
    let o = std::process::Command::new(BIN)
        .args([
            "snapshot",
            "restore",
            "-http-addr=127.0.0.44:8500",
            snap.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "Restored snapshot\n", "{}", stderr(&o));
    for ip in ips {
        wait_for("restored everywhere", Duration::from_secs(10), || {
            get_raw(ip, "k/0", "stale").as_deref() == Some("v0")
        });
    }

    // Reads through a follower are forwarded to the leader (default consistency).
    let old = leader(ips[0]).unwrap();
    let follower = ips.iter().find(|ip| !old.starts_with(**ip)).unwrap();
    assert_eq!(get_raw(follower, "k/49", "").as_deref(), Some("v49"));

    // kill -9 the leader.
    let li = ips.iter().position(|ip| old.starts_with(ip)).unwrap();
    drop(servers[li].take());
    let t = Instant::now();
    let other = ips[(li + 1) % 3];
    wait_for("a new leader", Duration::from_secs(10), || {
        leader(other).is_some_and(|l| l != old)
    });
    eprintln!(
        "new leader after kill -9 of the old one: {:.1}s",
        t.elapsed().as_secs_f64()
    );
    for i in 0..50 {
        let v = read_acknowledged("127.0.0.44", &format!("k/{i}"));
        assert_eq!(v, Ok(format!("v{i}")), "acknowledged write {i}");
    }
    for i in 50..60 {
        assert!(
            put("127.0.0.44", &format!("k/{i}"), &format!("v{i}")),
            "write {i}"
        );
    }
    // With a voter down, autopilot reports unhealthy (429) and no failure tolerance.
    wait_for("autopilot unhealthy", Duration::from_secs(15), || {
        http("127.0.0.44", "GET", "/v1/operator/autopilot/health", "")
            .is_some_and(|(s, b)| s == 429 && b.contains(r#""Healthy":false,"FailureTolerance":0"#))
    });

    // The old leader restarts and catches up (stale reads from its own state).
    servers[li] = Some(server(dir.path(), &format!("s{}", li + 1), ips[li], other));
    wait_for("old leader caught up", Duration::from_secs(20), || {
        get_raw(ips[li], "k/59", "stale").as_deref() == Some("v59")
    });

    // A dead follower removed by address leaves two voters. (Not the leader: a removal sent
    // while the cluster elects a new one would be forwarded to the dead leader and fail, as
    // a write does in Consul.)
    let mut current = None;
    wait_for("one leader for all three", Duration::from_secs(20), || {
        current = common::cluster::agreed_leader(&ips);
        current.is_some()
    });
    let current = current.unwrap();
    let gone = (0..3)
        .find(|&i| current != format!("{}:8300", ips[i]))
        .unwrap();
    drop(servers[gone].take());
    let survivor = ips[(gone + 1) % 3];
    let o = std::process::Command::new(BIN)
        .args([
            "operator",
            "raft",
            "remove-peer",
            &format!("-address={}:8300", ips[gone]),
            &format!("-http-addr={survivor}:8500"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        stdout(&o),
        format!("Removed peer with address \"{}:8300\"\n", ips[gone]),
        "{}",
        stderr(&o)
    );
    wait_for("two peers", Duration::from_secs(10), || {
        http(survivor, "GET", "/v1/status/peers", "")
            .is_some_and(|(_, b)| b.matches(":8300").count() == 2)
    });
}

#[test]
fn acknowledged_writes_survive_killing_every_server() {
    let dir = tempfile::tempdir().unwrap();
    let ips = ["127.0.0.46", "127.0.0.47", "127.0.0.48"];
    let start_all = || -> Vec<Proc> {
        ips.iter()
            .enumerate()
            .map(|(i, ip)| server(dir.path(), &format!("d{}", i + 1), ip, ips[0]))
            .collect()
    };
    let servers = start_all();
    wait_for("a leader", Duration::from_secs(30), || {
        ips.iter().all(|ip| leader(ip).is_some())
    });
    for i in 0..100 {
        assert!(
            put(ips[i % 3], &format!("d/{i}"), &format!("v{i}")),
            "write {i}"
        );
    }
    drop(servers); // kill -9 all three
    let _servers = start_all();
    wait_for("a leader after restart", Duration::from_secs(30), || {
        ips.iter().all(|ip| leader(ip).is_some())
    });
    for i in 0..100 {
        let v = read_acknowledged(ips[(i + 1) % 3], &format!("d/{i}"));
        assert_eq!(v, Ok(format!("v{i}")), "acknowledged write {i}");
    }
}

/// `dig` one SRV question at `ip`:8600 with a fixed query (no cookie); returns dig's output.
fn dig_srv(ip: &str, name: &str) -> String {
    dig_srv_within(ip, name, 2)
}

fn dig_srv_within(ip: &str, name: &str, secs: u32) -> String {
    let out = std::process::Command::new("dig")
        .args([
            &format!("@{ip}"),
            "-p",
            "8600",
            "+nocookie",
            &format!("+time={secs}"),
            "+tries=1",
            name,
            "SRV",
        ])
        .output()
        .expect("dig is installed (apt-get install -y bind9-dnsutils)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn signal(p: &Proc, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &p.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

/// Resumes stopped servers whatever happens, so Drop can kill them.
struct Resume<'a>(Vec<&'a Proc>);
impl Drop for Resume<'_> {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-CONT", &p.0.id().to_string()])
                .status();
        }
    }
}

/// DNS on a server cut off from its leader: stale answers by default (Consul's `allow_stale`
/// with an unlimited `max_stale`); with `max_stale=1s` (set by a reload) it asks the leader
/// instead, and with none to ask answers SERVFAIL rather than data of unknown age.
#[test]
fn dns_on_a_follower_honours_max_stale() {
    let dir = tempfile::tempdir().unwrap();
    let ips = ["127.0.0.61", "127.0.0.62", "127.0.0.63"];
    let cfg = |i: usize| dir.path().join(format!("m{i}.json"));
    let servers: Vec<Proc> = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            std::fs::write(cfg(i), "{}").unwrap();
            let data = dir.path().join(format!("m{i}"));
            start(
                &[
                    "agent",
                    "-server",
                    "-bootstrap-expect=3",
                    &format!("-node=m{i}"),
                    &format!("-bind={ip}"),
                    &format!("-client={ip}"),
                    &format!("-data-dir={}", data.display()),
                    &format!("-retry-join={}", ips[0]),
                    "-retry-interval=1s",
                    &format!("-config-file={}", cfg(i).display()),
                ],
                &dir.path().join(format!("m{i}.log")),
            )
        })
        .collect();
    wait_for("a leader", Duration::from_secs(30), || {
        ips.iter().all(|ip| leader(ip).is_some())
    });
    let register = r#"{"Node":"ext","Address":"10.9.9.9","Service":{"Service":"web","Port":80},
        "Check":{"CheckID":"web","Name":"web","Status":"passing","ServiceID":"web"}}"#;
    wait_for("web registered", Duration::from_secs(10), || {
        matches!(
            http(ips[0], "PUT", "/v1/catalog/register", register),
            Some((200, _))
        )
    });
    // A follower, and the two others to stop.
    let lead = leader(ips[0]).unwrap();
    let f = (0..3).find(|&i| !lead.starts_with(ips[i])).unwrap();
    let others: Vec<&Proc> = (0..3).filter(|&i| i != f).map(|i| &servers[i]).collect();
    wait_for("web in the follower's DNS", Duration::from_secs(10), || {
        dig_srv(ips[f], "web.service.consul").contains("80 ext.node.dc1.consul.")
    });

    let _resume = Resume(others.clone());
    for p in &others {
        signal(p, "-STOP");
    }
    // Cut off for longer than the max_stale about to be set: still answered, from stale state.
    std::thread::sleep(Duration::from_millis(2500));
    let out = dig_srv(ips[f], "web.service.consul");
    assert!(
        out.contains("80 ext.node.dc1.consul."),
        "stale answer expected:\n{out}"
    );

    std::fs::write(cfg(f), r#"{"dns_config": {"max_stale": "1s"}}"#).unwrap();
    let o = std::process::Command::new(BIN)
        .args(["reload", &format!("-http-addr={}:8500", ips[f])])
        .output()
        .unwrap();
    assert!(o.status.success(), "reload: {}", stderr(&o));
    // The leader read waits out rpc_hold_timeout (7 s) for an election before giving up.
    wait_for("SERVFAIL past max_stale", Duration::from_secs(30), || {
        dig_srv_within(ips[f], "web.service.consul", 12).contains("status: SERVFAIL")
    });

    for p in &others {
        signal(p, "-CONT");
    }
    wait_for(
        "answers again with a leader",
        Duration::from_secs(30),
        || dig_srv(ips[f], "web.service.consul").contains("80 ext.node.dc1.consul."),
    );
}
