//! Helpers shared by the process-level tests: start the real binary as an agent on free
//! ports, run CLI commands against it, poll conditions with a deadline, and kill every
//! started process when the test ends (Drop guards).

pub mod cluster;
pub mod netns;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_proconsul");

/// Kills the process when the test ends, whatever happens.
pub struct Proc(pub Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A config file giving the HTTP API `port`, turning DNS and gRPC off, and putting the server
/// RPC and Serf ports on free ones so tests can run side by side.
pub fn ports_config(dir: &Path, port: u16) -> PathBuf {
    isolated_config(dir, port)
}

/// Every port of an agent: HTTP as given, server RPC and Serf LAN/WAN on free ones.
pub fn isolated_config(dir: &Path, http: u16) -> PathBuf {
    isolated_config_with(dir, http, "")
}

/// [`isolated_config`] with `extra` top-level JSON fields (each followed by a comma).
pub fn isolated_config_with(dir: &Path, http: u16, extra: &str) -> PathBuf {
    let p = dir.join("ports.json");
    std::fs::write(
        &p,
        format!(
            r#"{{{extra} "ports": {{"http": {http}, "dns": -1, "grpc": -1, "server": {}, "serf_lan": {}, "serf_wan": {}}}}}"#,
            free_port(),
            free_port(),
            free_port()
        ),
    )
    .unwrap();
    p
}

pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http_request("127.0.0.1", port, "GET", path, "")
}

/// One HTTP/1.1 request on a fresh connection (testkit's client): `(status, body)`, or `None`
/// when no complete answer came.
pub fn http_request(
    ip: &str,
    port: u16,
    method: &str,
    path: &str,
    body: &str,
) -> Option<(u16, String)> {
    let r = proconsul_testkit::request_blocking((ip, port), method, path, body.as_bytes());
    (r.status != 0).then(|| (r.status, r.text()))
}

pub fn wait_for(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn cli_command(port: u16, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env("CONSUL_HTTP_ADDR", format!("http://127.0.0.1:{port}"))
        .env_remove("CONSUL_HTTP_TOKEN")
        .env_remove("CONSUL_HTTP_TOKEN_FILE");
    c
}

/// A CLI command against the agent on `port`, given `stdin`.
pub fn cli_with_stdin(port: u16, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = cli_command(port, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

pub fn cli(port: u16, args: &[&str]) -> Output {
    cli_command(port, args).output().unwrap()
}

/// The gossip address (`ip:port`) of the agent whose HTTP API is on `port`, from the first
/// row of its own `members` list (an agent alone in its pool).
pub fn own_member_addr(port: u16) -> String {
    let m = stdout(&cli(port, &["members"]));
    m.lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no member row in {m:?}"))
        .to_string()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn start(args: &[&str], log: &Path) -> Proc {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Proc(
        Command::new(BIN)
            .args(args)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap(),
    )
}

/// Start `agent -dev` with the given config file; returns once it has a leader.
pub fn start_dev(cfg: &Path, http: u16, log: &Path) -> Proc {
    let agent = start(
        &[
            "agent",
            "-dev",
            "-node=n1",
            &format!("-config-file={}", cfg.display()),
        ],
        log,
    );
    wait_leader_any(http);
    // Sessions need the node's serfHealth check, which the leader registers shortly after
    // its election (Consul's tests wait for it the same way).
    wait_for("serfHealth", Duration::from_secs(20), || {
        http_get(http, "/v1/health/node/n1")
            .is_some_and(|(s, b)| s == 200 && b.contains("serfHealth"))
    });
    agent
}

pub fn wait_leader(port: u16) {
    wait_leader_any(port)
}

/// A leader on whatever RPC port.
pub fn wait_leader_any(port: u16) {
    wait_for("a leader", Duration::from_secs(20), || {
        http_get(port, "/v1/status/leader").is_some_and(|(s, b)| s == 200 && b.len() > 2)
    });
}
