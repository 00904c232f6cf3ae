//! Helpers for tests that run several agents as real processes, each on its own loopback
//! address (127.0.0.x) with Consul's default ports: its HTTP API on `ip`:8500, Raft and
//! forwarding on `ip`:8300.

use std::path::Path;
use std::process::Output;

use super::{start, Proc, BIN};

/// A request to the agent's HTTP API on `ip`:8500.
pub fn http(ip: &str, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    super::http_request(ip, 8500, method, path, body)
}

/// The leader's RPC address as the agent on `ip` reports it; `None` when it knows none.
pub fn leader(ip: &str) -> Option<String> {
    let (s, b) = http(ip, "GET", "/v1/status/leader", "")?;
    let l = b.trim().trim_matches('"').to_string();
    (s == 200 && !l.is_empty()).then_some(l)
}

/// The leader every agent in `ips` names, if they all name the same one.
pub fn agreed_leader(ips: &[&str]) -> Option<String> {
    let first = leader(ips[0])?;
    ips[1..]
        .iter()
        .all(|ip| leader(ip).as_deref() == Some(first.as_str()))
        .then_some(first)
}

/// A server of a three-server cluster (`-bootstrap-expect=3`) on `ip`, data in `dir/name`,
/// log in `dir/name.log`, joining `join`.
pub fn server(dir: &Path, name: &str, ip: &str, join: &str) -> Proc {
    start(
        &[
            "agent",
            "-server",
            "-bootstrap-expect=3",
            &format!("-node={name}"),
            &format!("-bind={ip}"),
            &format!("-client={ip}"),
            &format!("-data-dir={}", dir.join(name).display()),
            &format!("-retry-join={join}"),
            "-retry-interval=1s",
        ],
        &dir.join(format!("{name}.log")),
    )
}

/// Run the CLI against the agent on `ip`.
pub fn cli(ip: &str, args: &[&str]) -> Output {
    std::process::Command::new(BIN)
        .args(args)
        .arg(format!("-http-addr={ip}:8500"))
        .output()
        .unwrap()
}
