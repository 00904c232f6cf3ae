//! `operator raft transfer-leader` on a real three-server cluster (processes on
//! 127.0.0.171–173, default ports): leadership moves to the server named by `-id`, then to
//! whichever voter is most up to date without one; every server agrees, writes go on after
//! each move, and nothing written before is lost. Bad targets get Consul's error line.

use crate::common;

use std::time::Duration;

use common::cluster::{agreed_leader, cli, http, server};
use common::{stderr, stdout, wait_for, Proc};

const IPS: [&str; 3] = ["127.0.0.171", "127.0.0.172", "127.0.0.173"];

/// (ID, Address) of every server in the Raft configuration.
fn servers(ip: &str) -> Vec<(String, String)> {
    let (_, b) = http(ip, "GET", "/v1/operator/raft/configuration", "").unwrap();
    let c: serde_json::Value = serde_json::from_str(&b).unwrap();
    c["Servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["ID"].as_str().unwrap().to_string(),
                s["Address"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn leadership_moves_where_it_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let _servers: Vec<Proc> = IPS
        .iter()
        .enumerate()
        .map(|(i, ip)| server(dir.path(), &format!("s{}", i + 1), ip, IPS[0]))
        .collect();
    wait_for("a leader everywhere", Duration::from_secs(30), || {
        agreed_leader(&IPS).is_some()
    });
    wait_for("three voters", Duration::from_secs(15), || {
        servers(IPS[0]).len() == 3
    });
    assert_eq!(
        http(IPS[0], "PUT", "/v1/kv/before", "1").map(|r| r.0),
        Some(200)
    );

    // To a named follower, asked through another follower.
    let old = agreed_leader(&IPS).unwrap();
    let all = servers(IPS[0]);
    let followers: Vec<&(String, String)> = all.iter().filter(|(_, a)| *a != old).collect();
    let (target_id, target_addr) = followers[0].clone();
    let via = IPS
        .iter()
        .find(|ip| !old.starts_with(*ip) && !target_addr.starts_with(*ip))
        .unwrap();
    let o = cli(
        via,
        &[
            "operator",
            "raft",
            "transfer-leader",
            &format!("-id={target_id}"),
        ],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o).trim(), "Success");
    wait_for(
        "every server follows the target",
        Duration::from_secs(10),
        || agreed_leader(&IPS).as_deref() == Some(target_addr.as_str()),
    );
    assert_eq!(
        http(IPS[1], "PUT", "/v1/kv/after-first", "2").map(|r| r.0),
        Some(200)
    );

    // Without -id: some other voter, over HTTP.
    let (code, body) = http(IPS[2], "POST", "/v1/operator/raft/transfer-leader", "").unwrap();
    assert_eq!((code, body.trim()), (200, r#"{"Success":true}"#));
    wait_for("a new leader everywhere", Duration::from_secs(10), || {
        agreed_leader(&IPS).is_some_and(|l| l != target_addr)
    });
    assert_eq!(
        http(IPS[2], "PUT", "/v1/kv/after-second", "3").map(|r| r.0),
        Some(200)
    );
    for key in ["before", "after-first", "after-second"] {
        let (code, _) = http(IPS[0], "GET", &format!("/v1/kv/{key}?consistent"), "").unwrap();
        assert_eq!(code, 200, "{key}");
    }

    // Bad targets: an unknown ID, and the leader itself.
    let o = cli(IPS[0], &["operator", "raft", "transfer-leader", "-id=nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("Error transfering leadership: Failed to transfer leadership"),
        "{}",
        stderr(&o)
    );
    let now = agreed_leader(&IPS).unwrap();
    let own = servers(IPS[0])
        .into_iter()
        .find(|(_, a)| *a == now)
        .unwrap()
        .0;
    let o = cli(
        IPS[0],
        &["operator", "raft", "transfer-leader", &format!("-id={own}")],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot transfer leadership to itself"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        agreed_leader(&IPS),
        Some(now),
        "a refused transfer moves nothing"
    );
}
