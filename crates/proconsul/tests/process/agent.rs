//! The real binary, driven as an operator would: `agent -dev` and a durable `-server`, the CLI
//! against them, `leave`, restart with the same data dir, and config errors.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::{cli, free_port, http_get, ports_config, start, stdout, wait_for, wait_leader, BIN};

#[test]
fn dev_agent_kv_members_and_leave() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = ports_config(dir.path(), port);
    let mut agent = start(
        &[
            "agent",
            "-dev",
            "-node=n1",
            &format!("-config-file={}", cfg.display()),
        ],
        &dir.path().join("log"),
    );
    wait_leader(port);

    let o = cli(port, &["kv", "put", "app/color", "blue"]);
    assert_eq!(stdout(&o), "Success! Data written to: app/color\n");
    let o = cli(port, &["kv", "get", "app/color"]);
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), "blue\n"));
    let o = cli(port, &["kv", "get", "app/none"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "Error! No key exists at: app/none\n"
    );

    let o = cli(port, &["members"]);
    let out = stdout(&o);
    let mut lines = out.lines();
    assert!(lines.next().unwrap().starts_with("Node  Address"), "{out}");
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!((row[0], row[2], row[3]), ("n1", "alive", "server"), "{out}");
    assert!(row[1].starts_with("127.0.0.1:"), "{out}");

    wait_for("n1 in the catalog", Duration::from_secs(10), || {
        stdout(&cli(port, &["catalog", "nodes"])).contains("n1")
    });
    assert_eq!(stdout(&cli(port, &["catalog", "datacenters"])), "dc1\n");

    let o = cli(port, &["leave"]);
    assert_eq!(stdout(&o), "Graceful leave complete\n");
    wait_for("the agent to exit", Duration::from_secs(10), || {
        agent.0.try_wait().unwrap().is_some()
    });
    assert_eq!(agent.0.try_wait().unwrap().unwrap().code(), Some(0));
}

#[test]
fn server_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let cfg = ports_config(dir.path(), port);
    let args = [
        "agent".to_string(),
        "-server".into(),
        "-bootstrap-expect=1".into(),
        "-node=s1".into(),
        "-bind=127.0.0.1".into(),
        format!("-data-dir={}", data.display()),
        format!("-config-file={}", cfg.display()),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let agent = start(&args, &dir.path().join("log1"));
    wait_leader(port);
    for i in 0..20 {
        let o = cli(
            port,
            &["kv", "put", &format!("durable/k{i}"), &format!("v{i}")],
        );
        assert!(o.status.success(), "{o:?}");
    }
    let node_id = std::fs::read_to_string(data.join("node-id")).unwrap();
    assert!(data.join("raft").is_dir());
    drop(agent); // SIGKILL: no graceful shutdown

    let _agent = start(&args, &dir.path().join("log2"));
    wait_leader(port);
    for i in [0, 7, 19] {
        let o = cli(port, &["kv", "get", &format!("durable/k{i}")]);
        assert_eq!(stdout(&o), format!("v{i}\n"));
    }
    assert_eq!(
        std::fs::read_to_string(data.join("node-id")).unwrap(),
        node_id
    );
    let (_, peers) = http_get(port, "/v1/status/peers").unwrap();
    assert!(
        peers.starts_with(r#"["127.0.0.1:"#) && !peers.contains(','),
        "{peers}"
    );
}

#[test]
fn bad_config_is_refused_with_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"datacenter": "dc1", "no_such_key": 1}"#).unwrap();
    let o = Command::new(BIN)
        .args(["agent", "-dev", &format!("-config-file={}", bad.display())])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.json") && err.contains("no_such_key"),
        "{err}"
    );

    let o = Command::new(BIN)
        .args(["agent", "-server"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("data_dir"),
        "{o:?}"
    );
}

/// `-log-file` (a directory: `consul.log` in it) gets the same lines as stdout, and
/// `-log-rotate-bytes` rotates it to `consul-<nanos>.log`, keeping `-log-rotate-max-files`.
/// A log file that cannot be opened stops the start with Consul's message.
#[test]
fn log_file_is_written_and_rotated() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = ports_config(dir.path(), port);
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let _agent = start(
        &[
            "agent",
            "-dev",
            "-node=n1",
            &format!("-config-file={}", cfg.display()),
            &format!("-log-file={}/", logs.display()),
            "-log-rotate-bytes=300",
            "-log-rotate-max-files=2",
        ],
        &dir.path().join("log"),
    );
    wait_leader(port);
    // Each reload logs a line: enough for several rotations.
    for _ in 0..20 {
        cli(port, &["reload"]);
    }
    let names = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&logs)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    wait_for("rotated log files", Duration::from_secs(10), || {
        names().len() >= 3
    });
    let n = names();
    assert!(n.contains(&"consul.log".to_string()), "{n:?}");
    assert!(n.len() <= 3, "at most 2 rotated files are kept: {n:?}");
    assert!(
        n.iter()
            .all(|f| f == "consul.log" || (f.starts_with("consul-") && f.ends_with(".log"))),
        "{n:?}"
    );
    let rotated = n.iter().find(|f| f.starts_with("consul-")).unwrap();
    let text = std::fs::read_to_string(logs.join(rotated)).unwrap();
    assert!(text.contains("[INFO]"), "{text}");

    let out = Command::new(BIN)
        .args(["agent", "-dev", "-log-file=/nonexistent/dir/consul.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Failed to setup logging"), "{err}");
}
