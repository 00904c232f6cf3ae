//! Process-level tests: run the built `proconsul` binary against a fake agent (a std
//! TcpListener answering canned Consul responses) and check exact output and exit codes.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

/// A fake agent: `(method, path)` → `(status, body)`; records every request line and body.
struct FakeAgent {
    addr: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeAgent {
    fn start(routes: &[(&str, &str, u16, &str)]) -> FakeAgent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let routes: HashMap<(String, String), (u16, String)> = routes
            .iter()
            .map(|(m, p, s, b)| ((m.to_string(), p.to_string()), (*s, b.to_string())))
            .collect();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    continue;
                }
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                let mut parts = first.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let target = parts.next().unwrap_or("").to_string();
                log.lock().unwrap().push(format!(
                    "{method} {target} {}",
                    String::from_utf8_lossy(&body)
                ));
                let path = target.split('?').next().unwrap().to_string();
                let (status, body) = routes
                    .get(&(method, path))
                    .cloned()
                    .unwrap_or((404, String::new()));
                let resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nX-Consul-Index: 7\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let mut out = stream;
                let _ = out.write_all(resp.as_bytes());
            }
        });
        FakeAgent { addr, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn proconsul(addr: &str, args: &[&str]) -> Output {
    proconsul_stdin(addr, args, "")
}

fn proconsul_stdin(addr: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_proconsul"))
        .args(args)
        .env("CONSUL_HTTP_ADDR", addr)
        .env_remove("CONSUL_HTTP_TOKEN")
        .env_remove("CONSUL_HTTP_TOKEN_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const ENTRY: &str = r#"[{"LockIndex":0,"Key":"redis/config/connections","Flags":0,"Value":"NQ==","CreateIndex":207,"ModifyIndex":207}]"#;

#[test]
fn kv_get_value_and_detailed() {
    let agent = FakeAgent::start(&[("GET", "/v1/kv/redis/config/connections", 200, ENTRY)]);
    let o = proconsul(&agent.addr, &["kv", "get", "redis/config/connections"]);
    assert_eq!((o.status.code(), stdout(&o)), (Some(0), "5\n".to_string()));

    let o = proconsul(
        &agent.addr,
        &["kv", "get", "-detailed", "/redis/config/connections"],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        "CreateIndex      207\nFlags            0\nKey              redis/config/connections\n\
         LockIndex        0\nModifyIndex      207\nSession          -\nValue            5\n"
    );
}

#[test]
fn kv_get_missing_key_exits_1() {
    let agent = FakeAgent::start(&[]);
    let o = proconsul(&agent.addr, &["kv", "get", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "Error! No key exists at: nope\n");
    assert_eq!(stdout(&o), "");
}

#[test]
fn kv_get_recurse_and_keys() {
    let agent = FakeAgent::start(&[(
        "GET",
        "/v1/kv/app",
        200,
        r#"[{"Key":"app/a","Value":"MQ=="},{"Key":"app/b","Value":null}]"#,
    )]);
    let o = proconsul(&agent.addr, &["kv", "get", "-recurse", "app"]);
    assert_eq!(stdout(&o), "app/a:1\napp/b:\n");
    assert!(agent.requests()[0].starts_with("GET /v1/kv/app?recurse= "));

    let agent = FakeAgent::start(&[("GET", "/v1/kv/", 200, r#"["app/","top"]"#)]);
    let o = proconsul(&agent.addr, &["kv", "get", "-keys", "-separator=/"]);
    assert_eq!(stdout(&o), "app/\ntop\n");
}

#[test]
fn kv_get_server_error_text() {
    let agent = FakeAgent::start(&[("GET", "/v1/kv/k", 500, "No cluster leader")]);
    let o = proconsul(&agent.addr, &["kv", "get", "k"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Error querying Consul agent: Unexpected response code: 500 (No cluster leader)\n"
    );
}

#[test]
fn kv_put_plain_stdin_and_cas_failure() {
    let agent = FakeAgent::start(&[("PUT", "/v1/kv/redis/maxconns", 200, "true")]);
    let o = proconsul(
        &agent.addr,
        &["kv", "put", "-flags=42", "redis/maxconns", "5"],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "Success! Data written to: redis/maxconns\n");
    assert_eq!(agent.requests()[0], "PUT /v1/kv/redis/maxconns?flags=42 5");

    let o = proconsul_stdin(
        &agent.addr,
        &["kv", "put", "redis/maxconns", "-"],
        "from-stdin",
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(agent.requests()[1], "PUT /v1/kv/redis/maxconns from-stdin");

    let agent = FakeAgent::start(&[("PUT", "/v1/kv/k", 200, "false")]);
    let o = proconsul(
        &agent.addr,
        &["kv", "put", "-cas", "-modify-index=9", "k", "v"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "Error! Did not write to k: CAS failed\n");
    assert_eq!(agent.requests()[0], "PUT /v1/kv/k?cas=9 v");

    let o = proconsul(&agent.addr, &["kv", "put", "-cas", "k", "v"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "Must specify -modify-index with -cas!\n");
}

#[test]
fn kv_put_locks() {
    let agent = FakeAgent::start(&[("PUT", "/v1/kv/lock", 200, "true")]);
    let o = proconsul(
        &agent.addr,
        &["kv", "put", "-acquire", "-session=abc", "lock", "x"],
    );
    assert_eq!(stdout(&o), "Success! Lock acquired on: lock\n");
    let o = proconsul(
        &agent.addr,
        &["kv", "put", "-release", "-session=abc", "lock"],
    );
    assert_eq!(stdout(&o), "Success! Lock released on: lock\n");
    let reqs = agent.requests();
    assert_eq!(reqs[0], "PUT /v1/kv/lock?acquire=abc x");
    assert_eq!(reqs[1], "PUT /v1/kv/lock?release=abc ");
    let o = proconsul(&agent.addr, &["kv", "put", "-acquire", "lock"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Error! Missing -session (required with -acquire and -release)\n"
    );
}

#[test]
fn kv_delete_variants() {
    let agent = FakeAgent::start(&[("DELETE", "/v1/kv/app", 200, "true")]);
    let o = proconsul(&agent.addr, &["kv", "delete", "app"]);
    assert_eq!(stdout(&o), "Success! Deleted key: app\n");
    let o = proconsul(&agent.addr, &["kv", "delete", "-recurse", "app"]);
    assert_eq!(stdout(&o), "Success! Deleted keys with prefix: app\n");
    assert!(agent.requests()[1].starts_with("DELETE /v1/kv/app?recurse= "));

    let agent = FakeAgent::start(&[("DELETE", "/v1/kv/app", 200, "false")]);
    let o = proconsul(
        &agent.addr,
        &["kv", "delete", "-cas", "-modify-index=3", "app"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "Error! Did not delete key app: CAS failed\n");
}

#[test]
fn members_table() {
    let agent = FakeAgent::start(&[(
        "GET",
        "/v1/agent/members",
        200,
        r#"[
 {"Name":"client-1","Addr":"10.0.0.21","Port":8301,"Status":1,
  "Tags":{"role":"node","dc":"dc1","build":"1.22.0:abc","vsn":"2","segment":""}},
 {"Name":"server-1","Addr":"10.0.0.11","Port":8301,"Status":1,
  "Tags":{"role":"consul","dc":"dc1","build":"1.22.0:abc","vsn":"2"}}
]"#,
    )]);
    let o = proconsul(&agent.addr, &["members"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        "Node      Address         Status  Type    Build   Protocol  DC   Partition  Segment\n\
         server-1  10.0.0.11:8301  alive   server  1.22.0  2         dc1  default    <all>\n\
         client-1  10.0.0.21:8301  alive   client  1.22.0  2         dc1  default    <default>\n"
    );
    let o = proconsul(&agent.addr, &["members", "-status=failed"]);
    assert_eq!((o.status.code(), stdout(&o)), (Some(2), String::new()));
}

#[test]
fn catalog_nodes_table() {
    let agent = FakeAgent::start(&[(
        "GET",
        "/v1/catalog/nodes",
        200,
        r#"[{"ID":"0e5b1e3c-aaaa-bbbb-cccc-ddddeeeeffff","Node":"server-1","Address":"10.0.0.11","Datacenter":"dc1","TaggedAddresses":{},"Meta":{},"CreateIndex":5,"ModifyIndex":6}]"#,
    )]);
    let o = proconsul(&agent.addr, &["catalog", "nodes"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        "Node      ID        Address    DC\nserver-1  0e5b1e3c  10.0.0.11  dc1\n"
    );
}

#[test]
fn leave_reload_join() {
    let agent = FakeAgent::start(&[
        ("PUT", "/v1/agent/leave", 200, ""),
        ("PUT", "/v1/agent/reload", 200, ""),
        ("PUT", "/v1/agent/join/10.0.0.2", 200, ""),
    ]);
    assert_eq!(
        stdout(&proconsul(&agent.addr, &["leave"])),
        "Graceful leave complete\n"
    );
    assert_eq!(
        stdout(&proconsul(&agent.addr, &["reload"])),
        "Configuration reload triggered\n"
    );
    let o = proconsul(&agent.addr, &["join", "10.0.0.2", "10.0.0.3"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        "Successfully joined cluster by contacting 1 nodes.\n"
    );
    assert!(
        stderr(&o).starts_with("Error joining address '10.0.0.3': Unexpected response code: 404")
    );
}

#[test]
fn http_addr_flag_overrides_env() {
    let agent = FakeAgent::start(&[("GET", "/v1/kv/k", 200, ENTRY)]);
    let o = proconsul(
        "127.0.0.1:1",
        &["kv", "get", "-http-addr", &agent.addr, "k"],
    );
    assert_eq!(stdout(&o), "5\n");
}

#[test]
fn connection_refused_is_reported() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = proconsul(&format!("127.0.0.1:{port}"), &["members"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("Error retrieving members: Get \"http://127.0.0.1:"));
    assert!(stderr(&o).contains("connect: connection refused"));
}

#[test]
fn help_usage_errors_and_exit_codes() {
    let o = proconsul("127.0.0.1:1", &["-h"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("Usage: proconsul [--version] [--help] <command> [<args>]"));
    assert!(stdout(&o).contains("    members        Lists the members of a Consul cluster\n"));

    let o = proconsul("127.0.0.1:1", &["kv", "get", "-h"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("Usage: proconsul kv get [options] [KEY_OR_PREFIX]"));

    let o = proconsul("127.0.0.1:1", &["kv", "get", "-bogus", "k"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("flag provided but not defined: -bogus\nUsage: proconsul kv get")
    );

    let o = proconsul("127.0.0.1:1", &["nonsense"]);
    assert_eq!(o.status.code(), Some(127));

    let o = proconsul("127.0.0.1:1", &[]);
    assert_eq!(o.status.code(), Some(127));

    let o = proconsul("127.0.0.1:1", &["kv"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Subcommands:"));

    let o = proconsul("127.0.0.1:1", &["rtt"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("One or two node names must be specified\n\nUsage: proconsul rtt")
    );
    let o = proconsul("127.0.0.1:1", &["rtt", "-wan", "a", "b"]);
    assert_eq!(
        (o.status.code(), stderr(&o)),
        (
            Some(1),
            "Node names must be specified as <node name>.<datacenter> with -wan\n".into()
        )
    );

    let o = proconsul("127.0.0.1:1", &["kv", "get"]);
    assert_eq!(
        (o.status.code(), stderr(&o)),
        (Some(1), "Error! Missing KEY argument\n".into())
    );
}

#[test]
fn version_output() {
    let o = proconsul("127.0.0.1:1", &["version"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.starts_with(&format!(
        "Proconsul v{}\nConsul-compatible: v1.22.0\n",
        env!("CARGO_PKG_VERSION")
    )));
    assert_eq!(stdout(&proconsul("127.0.0.1:1", &["-v"])), out);
}

#[test]
fn agent_flags_are_checked_before_the_unwired_stub() {
    let o = proconsul("127.0.0.1:1", &["agent", "-bogus"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("flag provided but not defined: -bogus"));
}
