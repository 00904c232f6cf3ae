//! The agent config's `watches`: each runs the `watch` command's plan loop
//! ([`crate::commands::watch::run_plan`]) against the agent's own HTTP API, as Consul runs its
//! watch plans, and calls its handler — `args` (run directly), `handler` (through the shell)
//! or an HTTP request — with the result as JSON.
//!
//! Every (re)configuration starts a new generation of watch threads and stops the previous
//! one: a stopped plan never calls its handler again, and its thread ends when its blocking
//! query returns (at most a minute). Handler output is kept to its last 4 KiB and logged at
//! debug level, HTTP answers the same, like Consul's.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::ControlFlow;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use proconsul_agent::ConfigObserver;
use proconsul_api::{Client, Config};
use proconsul_config::watch::{HttpHandlerConfig, WatchDefinition, WatchHandler};
use proconsul_config::RuntimeConfig;

use crate::commands::watch::{run_plan, Data};
use crate::{process, ui};

/// How much of a handler's output is kept for the log (Consul's `WatchBufSize`).
const OUTPUT_TAIL: usize = 4 * 1024;

/// Runs the configured watches; one per agent process.
#[derive(Default)]
pub struct ConfigWatches {
    /// Set to stop the running generation.
    current: Mutex<Option<Arc<AtomicBool>>>,
}

impl ConfigWatches {
    fn replace(&self, next: Option<Arc<AtomicBool>>) {
        let old = std::mem::replace(&mut *self.current.lock().unwrap(), next);
        if let Some(old) = old {
            old.store(true, Ordering::SeqCst);
        }
    }
}

impl ConfigObserver for ConfigWatches {
    fn configured(&self, cfg: &RuntimeConfig, http_addrs: &[SocketAddr]) {
        if cfg.watches.is_empty() {
            self.replace(None);
            return;
        }
        let Some(addr) = http_addrs.first().map(|a| reachable(*a)) else {
            tracing::error!(target: "agent", "watch plans require an HTTP or HTTPS endpoint");
            self.replace(None);
            return;
        };
        let stop = Arc::new(AtomicBool::new(false));
        self.replace(Some(stop.clone()));
        for w in cfg.watches.iter().cloned() {
            let stop = stop.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("watch-{}", w.watch_type))
                .spawn(move || run_watch(addr, w, stop));
            if let Err(e) = spawned {
                tracing::error!(target: "agent", error = %e, "Failed to run watch");
            }
        }
    }

    fn stopped(&self) {
        self.replace(None);
    }
}

/// The address to reach a listener at: a wildcard bind is reached over loopback.
fn reachable(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), a.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), a.port())
        }
        _ => a,
    }
}

fn run_watch(addr: SocketAddr, w: WatchDefinition, stop: Arc<AtomicBool>) {
    let client = Client::new(Config {
        address: format!("http://{addr}"),
        token: Some(w.token.clone()).filter(|t| !t.is_empty()),
        token_file: None,
        datacenter: Some(w.datacenter.clone()).filter(|d| !d.is_empty()),
        ..Config::default()
    });
    let client = match client {
        Ok(c) => c.with_fresh_connections(),
        Err(e) => {
            tracing::error!(target: "agent", error = %e, "Failed to run watch");
            return;
        }
    };
    if let WatchHandler::Shell(_) = w.handler {
        tracing::warn!(target: "agent", "The 'handler' field in watches has been deprecated and replaced with the 'args' field. See https://www.consul.io/docs/agent/watches.html");
    }
    let stopped = || stop.load(Ordering::SeqCst);
    run_plan(
        &client,
        &w.plan,
        w.stale,
        &w.watch_type,
        &stopped,
        |index, data| {
            match &w.handler {
                WatchHandler::Args(args) => run_script(args, false, index, data),
                WatchHandler::Shell(script) => {
                    run_script(std::slice::from_ref(script), true, index, data)
                }
                WatchHandler::Http(h) => run_http(h, index, data),
            }
            ControlFlow::Continue(())
        },
    );
}

/// Keep the last [`OUTPUT_TAIL`] bytes of a stream; Consul's note when some were dropped.
fn read_tail(mut r: impl Read) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut total = 0usize;
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                total += n;
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > OUTPUT_TAIL {
                    kept.drain(..kept.len() - OUTPUT_TAIL);
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&kept).into_owned();
    if total > OUTPUT_TAIL {
        format!("Captured {OUTPUT_TAIL} of {total} bytes\n...\n{text}")
    } else {
        text
    }
}

fn input(data: &Data) -> String {
    let mut s = ui::go_json(data, None);
    s.push('\n');
    s
}

/// Run a script handler with the data on stdin and `CONSUL_INDEX` set; its output (both
/// streams) goes to the debug log, a failure to the error log. The watch goes on either way.
fn run_script(args: &[String], shell: bool, index: u64, data: &Data) {
    let mut cmd = match process::command(args, shell) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(target: "agent", error = %e, "Failed to setup watch");
            return;
        }
    };
    cmd.env("CONSUL_INDEX", index.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(target: "agent", watch_handler = ?args, error = %e, "Failed to run watch handler");
            return;
        }
    };
    let stdin = child.stdin.take();
    let body = input(data);
    // Feed stdin and drain stderr beside the stdout reader so no pipe can fill up and stall.
    let feeder = std::thread::spawn(move || {
        if let Some(mut s) = stdin {
            // A handler that does not read its input is not an error.
            let _ = s.write_all(body.as_bytes());
        }
    });
    let stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || stderr.map(read_tail).unwrap_or_default());
    let out = child.stdout.take().map(read_tail).unwrap_or_default();
    let _ = feeder.join();
    let err = err_reader.join().unwrap_or_default();
    match child.wait() {
        Ok(status) => {
            if let Some(f) = process::failure(status) {
                tracing::error!(target: "agent", watch_handler = ?args, error = %f, "Failed to run watch handler");
            }
        }
        Err(e) => {
            tracing::error!(target: "agent", watch_handler = ?args, error = %e, "Failed to run watch handler")
        }
    }
    tracing::debug!(target: "agent", watch_handler = ?args, output = %format!("{out}{err}"), "watch handler output");
}

/// Send the data to an HTTP handler (Consul's `makeHTTPWatchHandler`).
fn run_http(h: &HttpHandlerConfig, index: u64, data: &Data) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(h.timeout))
        .max_idle_connections(0)
        .build()
        .into();
    let mut req = ureq::http::Request::builder()
        .method(h.method.as_str())
        .uri(h.path.as_str())
        .header("Content-Type", "application/json")
        .header("X-Consul-Index", index.to_string());
    for (k, values) in &h.header {
        for v in values {
            req = req.header(k.as_str(), v.as_str());
        }
    }
    let req = match req.body(input(data)) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(target: "agent", error = %e, "Failed to setup http watch");
            return;
        }
    };
    let mut resp = match agent.run(req) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(target: "agent", watch = %h.path, error = %e, "Failed to invoke http watch handler");
            return;
        }
    };
    let status = resp.status();
    let output = read_tail(resp.body_mut().as_reader());
    if status.is_success() {
        tracing::trace!(target: "agent", watch = %h.path, output = %output, "http watch handler output");
    } else {
        tracing::error!(target: "agent", watch = %h.path, status = %status, output = %output, "http watch handler failed with output");
    }
}
