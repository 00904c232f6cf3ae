//! Process tests of `exec` (remote execution over KV + sessions + user events) and of the
//! agent config's `watches` (script and HTTP handlers, reload), driving the real binary.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use common::*;

/// A dev agent named n1 with every port free and `extra` top-level JSON fields.
fn dev_agent(dir: &Path, extra: &str) -> (Proc, u16) {
    let http = free_port();
    let cfg = isolated_config_with(dir, http, extra);
    let agent = start_dev(&cfg, http, &dir.join("agent.log"));
    (agent, http)
}

#[test]
fn exec_is_refused_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let (_agent, port) = dev_agent(dir.path(), "");
    let o = cli(port, &["exec", "-wait=500ms", "uptime"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(stdout(&o), "0 / 0 node(s) completed / acknowledged\n");
    assert!(
        stderr(&o).contains("Remote execution is disabled on this agent (disable_remote_exec"),
        "{}",
        stderr(&o)
    );
    let log = std::fs::read_to_string(dir.path().join("agent.log")).unwrap();
    assert!(
        log.contains("ignoring remote exec event, disabled."),
        "{log}"
    );
    // The job's data is gone.
    assert_eq!(
        http_get(port, "/v1/kv/_rexec?recurse").map(|r| r.0),
        Some(404)
    );
}

#[test]
fn exec_runs_when_enabled_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let (_agent, port) = dev_agent(dir.path(), r#""disable_remote_exec": false,"#);

    let o = cli(port, &["exec", "echo", "hello"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(
        stdout(&o),
        "    n1: hello\n    n1:\n==> n1: finished with exit code 0\n1 / 1 node(s) completed / acknowledged\n"
    );

    // A failing command: its code is reported, exec exits 2 (Consul's).
    let o = cli(
        port,
        &["exec", "-wait=1s", "echo out; echo err >&2; exit 3"],
    );
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let out = stdout(&o);
    assert!(out.contains("    n1: out\n"), "{out}");
    assert!(out.contains("n1: err"), "{out}");
    assert!(
        out.ends_with(
            "==> n1: finished with exit code 3\n1 / 1 node(s) completed / acknowledged\n"
        ),
        "{out}"
    );

    // Without a shell, the arguments run as they are; a script can come from stdin.
    let o = cli(
        port,
        &[
            "exec",
            "-shell=false",
            "-verbose",
            "printf",
            "%s-%s",
            "a b",
            "c",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = stdout(&o);
    assert!(out.contains("==> n1: acknowledged\n"), "{out}");
    assert!(out.contains("    n1: a b-c\n"), "{out}");
    let o = cli_with_stdin(port, &["exec", "-"], b"#!/bin/sh\necho from-script\n");
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(
        stdout(&o).contains("    n1: from-script\n"),
        "{}",
        stdout(&o)
    );

    // A node filter that matches nothing: no node takes the job.
    let o = cli(port, &["exec", "-wait=500ms", "-node=^nomatch$", "true"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(stdout(&o), "0 / 0 node(s) completed / acknowledged\n");

    // Everything under _rexec/ is gone, and so are the sessions.
    assert_eq!(
        http_get(port, "/v1/kv/_rexec?recurse").map(|r| r.0),
        Some(404)
    );
    assert_eq!(
        http_get(port, "/v1/session/list").map(|r| r.1.trim().to_string()),
        Some("[]".to_string())
    );
    // And the internal event is not listed as a user event.
    assert_eq!(
        http_get(port, "/v1/event/list").map(|r| r.1.trim().to_string()),
        Some("[]".to_string())
    );
}

/// One HTTP request as a tiny server saw it.
struct Seen {
    head: String,
    body: String,
}

/// A one-thread HTTP server answering 200 to everything, reporting each request.
fn hook_server() -> (u16, mpsc::Receiver<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            if tx
                .send(Seen {
                    head,
                    body: String::from_utf8_lossy(&body).into_owned(),
                })
                .is_err()
            {
                return;
            }
        }
    });
    (port, rx)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn handler_writing_to(out: &Path) -> String {
    // The handler appends its stdin to `out`.
    format!(r#"["sh", "-c", "cat >> {}"]"#, out.display())
}

#[test]
fn config_watches_run_handlers_and_follow_reload() {
    let dir = tempfile::tempdir().unwrap();
    let out_x: PathBuf = dir.path().join("x.out");
    let out_y: PathBuf = dir.path().join("y.out");
    let (hook_port, hooks) = hook_server();
    let watches = dir.path().join("watches.json");
    std::fs::write(
        &watches,
        format!(
            r#"{{"watches": [
                {{"type": "key", "key": "app/x", "args": {}}},
                {{"type": "keyprefix", "prefix": "web/", "handler_type": "http",
                  "http_handler_config": {{"path": "http://127.0.0.1:{hook_port}/hook",
                    "method": "PUT", "header": {{"X-Test": ["yes"]}}, "timeout": "5s"}}}}
            ]}}"#,
            handler_writing_to(&out_x)
        ),
    )
    .unwrap();
    let http = free_port();
    let ports = isolated_config(dir.path(), http);
    let _agent = start(
        &[
            "agent",
            "-dev",
            "-node=n1",
            &format!("-config-file={}", ports.display()),
            &format!("-config-file={}", watches.display()),
        ],
        &dir.path().join("agent.log"),
    );
    wait_leader_any(http);

    // The key watch fires once at start (no key yet: null), then on the write.
    assert_eq!(
        cli(http, &["kv", "put", "app/x", "first"]).status.code(),
        Some(0)
    );
    wait_for("the key handler", Duration::from_secs(15), || {
        read(&out_x).contains(r#""Key":"app/x""#) && read(&out_x).contains(r#""Value":"Zmlyc3Q=""#)
    });

    // The HTTP handler gets the data as JSON, with Consul's headers and the configured ones.
    assert_eq!(
        cli(http, &["kv", "put", "web/a", "1"]).status.code(),
        Some(0)
    );
    let seen = loop {
        let s = hooks
            .recv_timeout(Duration::from_secs(15))
            .expect("the http handler was called");
        if s.body.contains(r#""Key":"web/a""#) {
            break s;
        }
    };
    assert!(
        seen.head.starts_with("PUT /hook HTTP/1.1\r\n"),
        "{}",
        seen.head
    );
    let head = seen.head.to_ascii_lowercase();
    assert!(head.contains("x-test: yes\r\n"), "{head}");
    assert!(
        head.contains("content-type: application/json\r\n"),
        "{head}"
    );
    assert!(head.contains("x-consul-index: "), "{head}");
    assert!(
        seen.body.starts_with('[') && seen.body.contains(r#""Value":"MQ==""#),
        "{}",
        seen.body
    );

    // Reload with only a new watch: the old ones stop, the new one runs.
    std::fs::write(
        &watches,
        format!(
            r#"{{"watches": [{{"type": "key", "key": "app/y", "handler": "cat >> {}"}}]}}"#,
            out_y.display()
        ),
    )
    .unwrap();
    assert_eq!(cli(http, &["reload"]).status.code(), Some(0));
    let before = read(&out_x);
    assert_eq!(
        cli(http, &["kv", "put", "app/x", "second"]).status.code(),
        Some(0)
    );
    assert_eq!(
        cli(http, &["kv", "put", "web/b", "2"]).status.code(),
        Some(0)
    );
    assert_eq!(
        cli(http, &["kv", "put", "app/y", "why"]).status.code(),
        Some(0)
    );
    wait_for("the new watch's handler", Duration::from_secs(15), || {
        read(&out_y).contains(r#""Value":"d2h5""#)
    });
    // Give a stale watch the time it would need to fire as well.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        read(&out_x),
        before,
        "a removed watch still ran its handler"
    );
    while let Ok(s) = hooks.try_recv() {
        assert!(
            !s.body.contains("web/b"),
            "a removed http watch still fired"
        );
    }

    // An invalid watch makes the reload fail with Consul's message; the agent keeps running.
    std::fs::write(
        &watches,
        r#"{"watches": [{"type": "key", "args": ["true"]}]}"#,
    )
    .unwrap();
    let o = cli(http, &["reload"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        stderr(&o)
            .contains("watches[0]: Failed to parse watch: Must specify a single key to watch"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn agent_refuses_an_invalid_watch_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"watches": [{"type": "nope", "args": ["true"]}]}"#).unwrap();
    let o = std::process::Command::new(BIN)
        .args(["agent", "-dev", &format!("-config-file={}", bad.display())])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let text = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        text.contains("bad.json")
            && text.contains("watches[0]: Failed to parse watch: Unsupported watch type: nope"),
        "{text}"
    );
}
