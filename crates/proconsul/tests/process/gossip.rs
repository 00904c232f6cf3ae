//! The gossip commands against real agents: a server and a client on 127.0.0.x join with
//! `join`, list each other with `members`, exchange `event`s, and the client's `leave` shows
//! as left; `force-leave` and `keygen` behave like Consul's.

use crate::common;

use std::time::Duration;

use common::{cli, free_port, start, stderr, stdout, wait_for, wait_leader_any};

fn config(dir: &std::path::Path, name: &str, http: u16) -> std::path::PathBuf {
    let p = dir.join(format!("{name}.json"));
    std::fs::write(
        &p,
        format!(
            r#"{{"ports": {{"http": {http}, "dns": -1, "grpc": -1, "server": {}, "serf_lan": {}, "serf_wan": -1}}}}"#,
            free_port(),
            free_port()
        ),
    )
    .unwrap();
    p
}

#[test]
fn join_members_event_leave_force_leave_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let (hs, hc) = (free_port(), free_port());
    let scfg = config(dir.path(), "s", hs);
    let ccfg = config(dir.path(), "c", hc);
    let _s = start(
        &[
            "agent",
            "-dev",
            "-node=s1",
            "-bind=127.0.0.31",
            "-client=127.0.0.1",
            &format!("-config-file={}", scfg.display()),
        ],
        &dir.path().join("s.log"),
    );
    wait_leader_any(hs);
    let data = dir.path().join("c-data");
    let mut c = start(
        &[
            "agent",
            "-node=c1",
            "-bind=127.0.0.32",
            "-client=127.0.0.1",
            &format!("-data-dir={}", data.display()),
            &format!("-config-file={}", ccfg.display()),
        ],
        &dir.path().join("c.log"),
    );
    wait_for("client HTTP", Duration::from_secs(10), || {
        common::http_get(hc, "/v1/agent/self").is_some()
    });
    // The server's LAN address, from its own members list.
    let saddr = common::own_member_addr(hs);
    assert!(saddr.starts_with("127.0.0.31:"), "{saddr}");

    let o = cli(hc, &["join", &saddr]);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (
            Some(0),
            "Successfully joined cluster by contacting 1 nodes.\n"
        ),
        "{}",
        stderr(&o)
    );
    let o = cli(hc, &["join", "127.0.0.1:1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("Error joining address '127.0.0.1:1'"),
        "{}",
        stderr(&o)
    );

    wait_for("both listed alive", Duration::from_secs(10), || {
        let out = stdout(&cli(hs, &["members"]));
        out.lines().filter(|l| l.contains(" alive ")).count() == 2
    });
    let out = stdout(&cli(hc, &["members", "-status=alive"]));
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!((rows[0][0], rows[0][3]), ("s1", "server"), "{out}");
    assert_eq!((rows[1][0], rows[1][3]), ("c1", "client"), "{out}");

    // An event fired on the client is listed on the server.
    let o = cli(hc, &["event", "-name=deploy", "v42"]);
    let out = stdout(&o);
    assert!(out.starts_with("Event ID: "), "{out}{}", stderr(&o));
    let id = out.trim().trim_start_matches("Event ID: ").to_string();
    wait_for("event on the server", Duration::from_secs(5), || {
        common::http_get(hs, "/v1/event/list").is_some_and(|(_, b)| b.contains(&id))
    });
    let o = cli(hc, &["event"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Event name must be specified"));

    // force-leave of a node that does not exist fails; of a live one, it refutes.
    let o = cli(hs, &["force-leave", "nobody"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("No node found with name 'nobody'"),
        "{}",
        stderr(&o)
    );

    // The client leaves gracefully and exits; the server lists it as left.
    let o = cli(hc, &["leave"]);
    assert_eq!(stdout(&o), "Graceful leave complete\n");
    wait_for("client exits", Duration::from_secs(10), || {
        c.0.try_wait().unwrap().is_some()
    });
    wait_for("c1 left", Duration::from_secs(10), || {
        stdout(&cli(hs, &["members"]))
            .lines()
            .any(|l| l.starts_with("c1") && l.contains(" left "))
    });

    let o = cli(hs, &["keygen"]);
    let key = stdout(&o);
    assert_eq!(key.trim().len(), 44, "{key}");
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(key.trim())
        .unwrap();
    assert_eq!(raw.len(), 32);
    assert_ne!(stdout(&cli(hs, &["keygen"])), key);
}

#[test]
fn keyring_rotation_with_the_cli() {
    const K1: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=";
    const K2: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=";
    let dir = tempfile::tempdir().unwrap();
    let (hs, hc) = (free_port(), free_port());
    let scfg = config(dir.path(), "s", hs);
    let ccfg = config(dir.path(), "c", hc);
    let _s = start(
        &[
            "agent",
            "-dev",
            "-node=ks1",
            "-bind=127.0.0.33",
            "-client=127.0.0.1",
            &format!("-encrypt={K1}"),
            &format!("-config-file={}", scfg.display()),
        ],
        &dir.path().join("s.log"),
    );
    wait_leader_any(hs);
    let saddr = common::own_member_addr(hs);
    let data = dir.path().join("c-data");
    let client_args = [
        "agent".to_string(),
        "-node=kc1".into(),
        "-bind=127.0.0.34".into(),
        "-client=127.0.0.1".into(),
        format!("-encrypt={K1}"),
        format!("-data-dir={}", data.display()),
        format!("-config-file={}", ccfg.display()),
        format!("-retry-join={saddr}"),
    ];
    let args: Vec<&str> = client_args.iter().map(String::as_str).collect();
    let c = start(&args, &dir.path().join("c.log"));
    wait_for("two members", Duration::from_secs(10), || {
        stdout(&cli(hs, &["members"])).matches(" alive ").count() == 2
    });
    let o = cli(hc, &["keyring", "-list"]);
    let out = stdout(&o);
    assert!(
        out.starts_with("==> Gathering installed encryption keys..."),
        "{out}"
    );
    assert!(out.contains(&format!("dc1 (LAN):\n  {K1} [2/2]")), "{out}");

    for (op, key, said) in [
        ("-install", K2, "Installing new gossip encryption key"),
        ("-use", K2, "Changing primary gossip encryption key"),
        ("-remove", K1, "Removing gossip encryption key"),
    ] {
        let o = cli(hs, &["keyring", op, key]);
        assert_eq!(o.status.code(), Some(0), "{op}: {}", stderr(&o));
        assert!(stdout(&o).contains(said), "{}", stdout(&o));
    }
    let out = stdout(&cli(hc, &["keyring", "-list"]));
    assert!(
        out.contains(&format!("{K2} [2/2]")) && !out.contains(K1),
        "{out}"
    );
    let o = cli(hc, &["keyring", "-remove", K2]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("primary key is not allowed"),
        "{}",
        stderr(&o)
    );
    let o = cli(hc, &["keyring", "-list", "-install", K1]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Exactly one operation must be specified"));

    // The client's keyring file holds the new key: after a restart it rejoins with it.
    drop(c);
    let _c = start(&args, &dir.path().join("c2.log"));
    wait_for("client back", Duration::from_secs(15), || {
        stdout(&cli(hc, &["keyring", "-list"])).contains(&format!("{K2} [2/2]"))
    });
}
