//! The rest of Consul's command line against a real `agent -dev`: `kv export`/`kv import`,
//! `info`, `lock` (lock and semaphore, lock loss), `watch` across an agent restart,
//! `services register|deregister`, `maint`, and `validate`.

use crate::common;

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{
    cli, cli_command, cli_with_stdin, free_port, isolated_config, start_dev, stderr, stdout,
    wait_for, Proc, BIN,
};

fn http_put(port: u16, path: &str) -> Option<u16> {
    common::http_request("127.0.0.1", port, "PUT", path, "").map(|(status, _)| status)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Start `proconsul lock` in the background.
fn lock(port: u16, args: &[&str]) -> Proc {
    let mut all = vec!["lock", "-verbose"];
    all.extend_from_slice(args);
    let err = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(std::env::temp_dir().join(format!("proconsul-lock-test-{port}.err")))
        .unwrap();
    Proc(
        cli_command(port, &all)
            .stdout(Stdio::from(err.try_clone().unwrap()))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap(),
    )
}

fn wait_exit(p: &mut Proc, within: Duration) -> i32 {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = p.0.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "process did not exit in time");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kv_export_import_info_lock_services_and_maint() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = isolated_config(dir.path(), port);
    let _agent = start_dev(&cfg, port, &dir.path().join("log"));

    // ---- kv export -> import round trip
    for args in [
        &["kv", "put", "-flags=42", "app/a", "1"][..],
        &["kv", "put", "app/b", "hello <world> & more"],
        &["kv", "put", "app/dir/"],
        &["kv", "put", "other", "x"],
    ] {
        assert!(cli(port, args).status.success());
    }
    let o = cli(port, &["kv", "export", "app"]);
    assert_eq!(o.status.code(), Some(0));
    let exported = stdout(&o);
    assert!(
        exported.starts_with(
            "[\n\t{\n\t\t\"key\": \"app/a\",\n\t\t\"flags\": 42,\n\t\t\"value\": \"MQ==\"\n\t},"
        ),
        "{exported}"
    );
    let entries: Vec<serde_json::Value> = serde_json::from_str(&exported).unwrap();
    assert_eq!(entries.len(), 3);

    assert!(cli(port, &["kv", "delete", "-recurse", "app"])
        .status
        .success());
    assert_eq!(stdout(&cli(port, &["kv", "export", "app"])), "[]\n");

    let o = cli_with_stdin(port, &["kv", "import", "-"], exported.as_bytes());
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        "Imported: app/a\nImported: app/b\nImported: app/dir/\n"
    );
    assert_eq!(stdout(&cli(port, &["kv", "export", "app"])), exported);
    assert!(
        stdout(&cli(port, &["kv", "get", "-detailed", "app/a"])).contains("Flags            42")
    );

    let file = dir.path().join("export.json");
    std::fs::write(&file, &exported).unwrap();
    let o = cli(
        port,
        &[
            "kv",
            "import",
            "-prefix=copy",
            &format!("@{}", file.display()),
        ],
    );
    assert!(stdout(&o).starts_with("Imported: copy/app/a\n"), "{o:?}");
    assert_eq!(
        stdout(&cli(port, &["kv", "get", "copy/app/b"])),
        "hello <world> & more\n"
    );
    let o = cli(port, &["kv", "import", "not json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("Cannot unmarshal data: "), "{o:?}");

    // ---- watch without a handler prints once and exits
    let o = cli(port, &["watch", "-type=key", "-key=app/a"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(stdout(&o).contains("    \"Key\": \"app/a\",\n"), "{o:?}");

    // ---- info
    let o = cli(port, &["info"]);
    assert_eq!(o.status.code(), Some(0));
    let info = stdout(&o);
    let sections: Vec<&str> = info.lines().filter(|l| !l.starts_with('\t')).collect();
    assert_eq!(
        sections,
        [
            "agent:",
            "build:",
            "consul:",
            "raft:",
            "runtime:",
            "serf_lan:",
            "serf_wan:"
        ],
        "{info}"
    );
    assert!(info.contains("raft:\n\tapplied_index = "), "{info}");
    assert!(info.contains("\tstate = Leader\n"), "{info}");
    assert!(info.contains("\tserver = true\n"), "{info}");

    // ---- lock: two contenders run one after the other
    let log = dir.path().join("lock.log");
    let script = |who: &str| {
        format!(
            "echo {who}-start >> {l}; sleep 1.5; echo {who}-end >> {l}",
            l = log.display()
        )
    };
    let mut a = lock(port, &["locks/job", &script("A")]);
    wait_for("A to hold the lock", Duration::from_secs(10), || {
        read(&log).contains("A-start")
    });
    let mut b = lock(port, &["locks/job", &script("B")]);
    assert_eq!(wait_exit(&mut a, Duration::from_secs(10)), 0);
    assert_eq!(wait_exit(&mut b, Duration::from_secs(10)), 0);
    assert_eq!(read(&log), "A-start\nA-end\nB-start\nB-end\n");
    // the last holder removed the unused lock key
    assert_eq!(
        cli(port, &["kv", "get", "locks/job/.lock"]).status.code(),
        Some(1)
    );

    // ---- semaphore: -n=2 lets both run at once
    let log2 = dir.path().join("sem.log");
    let script2 = |who: &str| {
        format!(
            "echo {who}-start >> {l}; sleep 1.5; echo {who}-end >> {l}",
            l = log2.display()
        )
    };
    let mut a = lock(port, &["-n=2", "sem/job", &script2("A")]);
    let mut b = lock(port, &["-n=2", "sem/job", &script2("B")]);
    assert_eq!(wait_exit(&mut a, Duration::from_secs(10)), 0);
    assert_eq!(wait_exit(&mut b, Duration::from_secs(10)), 0);
    let lines: Vec<String> = read(&log2).lines().map(String::from).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines[..2].iter().all(|l| l.ends_with("-start")),
        "both held a slot at once: {lines:?}"
    );
    assert!(cli(port, &["kv", "get", "-recurse", "sem/"])
        .stdout
        .is_empty());

    // ---- lock lost: destroying the holder's session kills its child
    let log3 = dir.path().join("lost.log");
    let mut holder = lock(
        port,
        &[
            "-child-exit-code",
            "lost/job",
            &format!(
                "echo start >> {l}; sleep 30; echo end >> {l}",
                l = log3.display()
            ),
        ],
    );
    wait_for("the child to start", Duration::from_secs(10), || {
        read(&log3).contains("start")
    });
    let (_, lock_entry) = common::http_get(port, "/v1/kv/lost/job/.lock").unwrap();
    let v: serde_json::Value = serde_json::from_str(&lock_entry).unwrap();
    let session = v[0]["Session"].as_str().unwrap().to_string();
    assert_eq!(
        http_put(port, &format!("/v1/session/destroy/{session}")),
        Some(200)
    );
    // killed by SIGTERM, not a child failure of its own: exit 0
    assert_eq!(wait_exit(&mut holder, Duration::from_secs(10)), 0);
    assert_eq!(read(&log3), "start\n");

    // ---- services register / maint / deregister
    let o = cli(port, &["services", "register", "-name=web", "-port=8080"]);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(0), "Registered service: web\n")
    );
    let svc_file = dir.path().join("db.json");
    std::fs::write(&svc_file, r#"{"service": {"name": "db", "port": 5432}}"#).unwrap();
    let o = cli(port, &["services", "register", svc_file.to_str().unwrap()]);
    assert_eq!(stdout(&o), "Registered service: db\n", "{o:?}");
    let o = cli(
        port,
        &["maint", "-enable", "-service=web", "-reason=patching"],
    );
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(0), "Service maintenance is now enabled for \"web\"\n"),
        "{o:?}"
    );
    let o = cli(port, &["maint"]);
    assert_eq!(
        stdout(&o),
        "Service:\n  ID:     web\n  Reason: patching\n\n",
        "{o:?}"
    );
    let o = cli(port, &["maint", "-disable", "-service=web"]);
    assert_eq!(
        stdout(&o),
        "Service maintenance is now disabled for \"web\"\n"
    );
    let o = cli(port, &["maint", "-enable"]);
    assert_eq!(stdout(&o), "Node maintenance is now enabled\n", "{o:?}");
    assert!(stdout(&cli(port, &["maint"])).starts_with("Node:\n  Name:   n1\n  Reason: "));
    assert_eq!(
        stdout(&cli(port, &["maint", "-disable"])),
        "Node maintenance is now disabled\n"
    );
    assert_eq!(stdout(&cli(port, &["maint"])), "");
    let o = cli(port, &["maint", "-reason=x"]);
    assert_eq!(
        (o.status.code(), stderr(&o).as_str()),
        (Some(1), "Reason may only be provided with -enable\n")
    );
    let o = cli(port, &["services", "deregister", "-id=web"]);
    assert_eq!(stdout(&o), "Deregistered service: web\n");
    let o = cli(
        port,
        &["services", "deregister", svc_file.to_str().unwrap()],
    );
    assert_eq!(stdout(&o), "Deregistered service: db\n");
}

#[test]
fn watch_handler_follows_writes_across_an_agent_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = isolated_config(dir.path(), port);
    let mut agent = start_dev(&cfg, port, &dir.path().join("log1"));

    let out = dir.path().join("handler.out");
    let mut watch = Proc(
        cli_command(
            port,
            &[
                "watch",
                "-type=key",
                "-key=cfg/color",
                &format!("cat >> {}", out.display()),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("watch.err")).unwrap(),
        ))
        .spawn()
        .unwrap(),
    );
    // The first run fires at once: the key does not exist yet.
    wait_for("the first handler run", Duration::from_secs(5), || {
        read(&out) == "null\n"
    });

    assert!(cli(port, &["kv", "put", "cfg/color", "blue"])
        .status
        .success());
    let written = Instant::now();
    wait_for("the new value", Duration::from_secs(3), || {
        read(&out).contains("\"Value\":\"Ymx1ZQ==\"")
    });
    assert!(
        written.elapsed() < Duration::from_secs(1),
        "{:?}",
        written.elapsed()
    );

    // Restart the agent on the same port; the watch rides it out.
    drop(agent);
    agent = start_dev(&cfg, port, &dir.path().join("log2"));
    assert!(watch.0.try_wait().unwrap().is_none(), "watch exited");
    assert!(cli(port, &["kv", "put", "cfg/color", "green"])
        .status
        .success());
    let deadline = Instant::now() + Duration::from_secs(15);
    while !read(&out).contains("\"Value\":\"Z3JlZW4=\"") {
        assert!(
            Instant::now() < deadline,
            "no new value after the restart; handler got {:?}, watch said {:?}",
            read(&out),
            read(&dir.path().join("watch.err")),
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(watch.0.try_wait().unwrap().is_none(), "watch exited");
    drop(agent);
}

#[test]
fn validate_files_and_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        r#"{"datacenter": "dc1", "service": {"name": "web", "port": 80}}"#,
    )
    .unwrap();
    let run = |args: &[&str]| std::process::Command::new(BIN).args(args).output().unwrap();

    let o = run(&["validate", good.to_str().unwrap()]);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(0), "Configuration is valid!\n")
    );
    let o = run(&["validate", "-quiet", dir.path().to_str().unwrap()]);
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), ""));

    let bad = dir.path().join("bad.hcl");
    std::fs::write(&bad, "datacenter = \"dc1\"\nno_such_key = 1\n").unwrap();
    let o = run(&["validate", good.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.starts_with("Config validation failed: "), "{err}");
    assert!(
        err.contains("bad.hcl") && err.contains("no_such_key"),
        "{err}"
    );
    assert_eq!(stdout(&o), "");

    let o = run(&["validate"]);
    assert_eq!(
        (o.status.code(), stderr(&o).as_str()),
        (
            Some(1),
            "Must specify at least one config file or directory\n"
        )
    );

    for cmd in [
        &["watch"][..],
        &["lock"],
        &["info"],
        &["maint"],
        &["kv", "export"],
        &["kv", "import"],
        &["services", "register"],
        &["services", "deregister"],
        &["validate"],
    ] {
        let mut args = cmd.to_vec();
        args.push("-bogus");
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = stderr(&o);
        assert!(
            err.starts_with("flag provided but not defined: -bogus\n")
                && err.contains(&format!("Usage: proconsul {}", cmd.join(" "))),
            "{args:?}: {err}"
        );
        let mut args = cmd.to_vec();
        args.push("-h");
        let o = run(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(stdout(&o).starts_with(&format!("Usage: proconsul {}", cmd.join(" "))));
    }

    let o = run(&["watch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("Watch type must be specified\n\nUsage: proconsul watch"));
    let o = run(&["watch", "-type=key"]);
    assert_eq!(
        (o.status.code(), stderr(&o).as_str()),
        (Some(1), "Must specify a single key to watch\n")
    );
    let o = run(&["lock", "onlyprefix"]);
    assert_eq!(
        (o.status.code(), stderr(&o).as_str()),
        (Some(1), "Key prefix and child command must be specified\n")
    );
    let o = run(&["lock", "-n=0", "p", "true"]);
    assert_eq!(stderr(&o), "Lock holder limit must be positive\n");
    let o = run(&["maint", "-enable", "-disable"]);
    assert_eq!(
        stderr(&o),
        "Only one of -enable or -disable may be provided\n"
    );
    let o = run(&["services", "register"]);
    assert_eq!(
        stderr(&o),
        "Service registration requires at least one argument or flags.\n"
    );
}

#[test]
fn monitor_streams_the_agents_logs() {
    let dir = tempfile::tempdir().unwrap();
    let http = free_port();
    let cfg = isolated_config(dir.path(), http);
    let _agent = start_dev(&cfg, http, &dir.path().join("log"));
    let mut mon = Proc(
        cli_command(http, &["monitor", "-log-level=info"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        stdout(&cli(http, &["reload"])),
        "Configuration reload triggered\n"
    );
    // read the monitor's output until the reload line shows up
    let mut out = mon.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        let mut buf = [0u8; 1024];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            if seen.contains("configuration reloaded") {
                let _ = tx.send(seen.clone());
                return;
            }
        }
        let _ = tx.send(seen);
    });
    let seen = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("monitor output");
    assert!(
        seen.contains("[INFO]  agent: configuration reloaded"),
        "{seen}"
    );
    // a bad level is refused by the agent
    let o = cli(http, &["monitor", "-log-level=chatty"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Unknown log level"), "{}", stderr(&o));
}

#[test]
fn lock_waiter_proceeds_after_the_lock_delay_when_the_holder_session_dies() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = isolated_config(dir.path(), port);
    let _agent = start_dev(&cfg, port, &dir.path().join("agent.log"));
    let log = dir.path().join("delay.log");
    let child = |name: &str| format!("echo {name} >> {l}; sleep 60", l = log.display());
    let mut a = lock(port, &["delay/job", &child("A")]);
    wait_for("A holds the lock", Duration::from_secs(10), || {
        read(&log).contains("A")
    });
    let mut b = lock(port, &["delay/job", &child("B")]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(read(&log), "A\n", "B must wait while A holds the lock");

    // kill the holder's session: A's child is stopped; B gets the lock only after the
    // session's lock-delay (Consul's default, 15 s) has passed
    let (_, entry) = common::http_get(port, "/v1/kv/delay/job/.lock").unwrap();
    let v: serde_json::Value = serde_json::from_str(&entry).unwrap();
    let session = v[0]["Session"].as_str().unwrap().to_string();
    let destroyed = Instant::now();
    assert_eq!(
        http_put(port, &format!("/v1/session/destroy/{session}")),
        Some(200)
    );
    wait_exit(&mut a, Duration::from_secs(10));
    wait_for("B takes over", Duration::from_secs(40), || {
        read(&log).contains("B")
    });
    let waited = destroyed.elapsed();
    assert!(
        waited >= Duration::from_secs(14),
        "B acquired {waited:?} after the session died, inside the lock-delay"
    );
    assert_eq!(read(&log), "A\nB\n");
    let _ = b.0.kill();
}

/// `-http-addr=unix:///…` (and `CONSUL_HTTP_ADDR`) reach an agent listening on a unix socket
/// (`addresses.http = "127.0.0.1 unix:///…"`), as Consul's CLI does.
#[test]
fn cli_speaks_to_the_agent_over_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let http = free_port();
    let sock = dir.path().join("http.sock");
    let cfg = common::isolated_config_with(
        dir.path(),
        http,
        &format!(
            r#""addresses": {{"http": "127.0.0.1 unix://{}"}},"#,
            sock.display()
        ),
    );
    let _agent = start_dev(&cfg, http, &dir.path().join("agent.log"));
    let unix = format!("unix://{}", sock.display());

    let put = cli(
        http,
        &["kv", "put", &format!("-http-addr={unix}"), "sock/k", "v1"],
    );
    assert_eq!(put.status.code(), Some(0), "{}", stderr(&put));
    assert_eq!(stdout(&put), "Success! Data written to: sock/k\n");
    // The value went to the same agent (read back over TCP).
    let get = cli(http, &["kv", "get", "sock/k"]);
    assert_eq!(stdout(&get), "v1\n");

    // Through the environment too; `members` lists the agent's node.
    let members = cli_command(http, &["members"])
        .env("CONSUL_HTTP_ADDR", &unix)
        .output()
        .unwrap();
    assert_eq!(members.status.code(), Some(0), "{}", stderr(&members));
    assert!(stdout(&members).contains("n1"), "{}", stdout(&members));

    // A socket nobody listens on: Go's dial error, exit 1.
    let gone = dir.path().join("gone.sock");
    let out = cli(
        http,
        &[
            "kv",
            "get",
            &format!("-http-addr=unix://{}", gone.display()),
            "sock/k",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "dial unix {}: connect: no such file or directory",
            gone.display()
        )),
        "{}",
        stderr(&out)
    );
}
