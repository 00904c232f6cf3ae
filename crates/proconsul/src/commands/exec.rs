//! `exec [options] [-|command...]`: run a command on the agents of the datacenter.
//!
//! Consul's protocol (the agent side is `proconsul-agent`'s `remote_exec`): create a session
//! (TTL 15 s, behavior delete, renewed every 5 s), write the job spec to
//! `<prefix>/<session>/job` holding it, wait `-wait-repl`, fire the `_rexec` user event with
//! the node/service/tag filters, then follow `<prefix>/<session>/` with blocking key listings
//! and print acks, output, heartbeats and exit codes as they appear. The job ends after `-wait`
//! without news (twice that while an acknowledged node has not exited). Cleanup destroys the
//! session and deletes the prefix. Exit code: 0 when every node that acknowledged exited 0,
//! 2 otherwise, 1 on errors.
//!
//! One addition: Consul ends with `0 / 0 node(s) completed / acknowledged` and exit 0 when no
//! node took the job; when that happens and the local agent itself has remote exec disabled
//! (the default), proconsul says so on stderr and exits 1, since the likely cause is that
//! `disable_remote_exec` was never turned off.

use std::collections::HashSet;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use proconsul_api::{Client, KvWrite, QueryOptions, SessionRequest};
use serde::Serialize;

use super::{client, parse_flags};
use crate::flags::{self, Flag, Kind, CLIENT_FLAGS, SERVER_FLAGS};
use crate::ui;

const DEFAULT_PREFIX: &str = "_rexec";
const JOB_FILE: &str = "job";
const ACK_SUFFIX: &str = "/ack";
const EXIT_SUFFIX: &str = "/exit";
const OUTPUT_DIVIDER: &str = "/out/";
const SESSION_TTL: &str = "15s";
const RENEW_INTERVAL: Duration = Duration::from_secs(5);
/// Most distinct keys followed (acks, chunks, exits of all nodes); the job's own bound.
const MAX_KEYS: usize = 1_000_000;

const FLAGS: &[Flag] = &[
    Flag::string("node", "Regular expression to filter on node names."),
    Flag::string("prefix", "Prefix in the KV store to use for request data."),
    Flag::string(
        "service",
        "Regular expression to filter on service instances.",
    ),
    Flag::boolean("shell", "Use a shell to run the command."),
    Flag::string(
        "tag",
        "Regular expression to filter on service tags. Must be used with -service.",
    ),
    Flag::boolean("verbose", "Enables verbose output."),
    Flag::new(
        "wait",
        Kind::Str,
        "duration",
        "Period to wait with no responses before terminating execution.",
    ),
    Flag::new(
        "wait-repl",
        Kind::Str,
        "duration",
        "Period to wait for replication before firing event. This is an optimization to \
         allow stale reads to be performed.",
    ),
];

fn all_flags() -> Vec<Flag> {
    flags::with(FLAGS, &[CLIENT_FLAGS, SERVER_FLAGS])
}

pub fn help() -> String {
    flags::usage(
        "
Usage: proconsul exec [options] [-|command...]

  Evaluates a command on remote Consul nodes. The nodes responding can
  be filtered using regular expressions on node name, service, and tag
  definitions. If a command is '-', stdin will be read until EOF
  and used as a script input.
",
        &all_flags(),
    )
}

/// The job spec agents read (Go's JSON: bytes base64, the duration in nanoseconds).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Spec {
    #[serde(skip_serializing_if = "String::is_empty")]
    command: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    args: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    script: String,
    wait: u64,
}

/// What the key listing reports, in Consul's order of handling.
#[derive(Debug, PartialEq, Eq)]
enum Update {
    Ack(String),
    Heartbeat(String),
    Output(String, Vec<u8>),
    Exit(String, i32),
    Failed,
}

/// Consul's `TargetedUI.prefixLines`: every line prefixed by `==> node: ` (or four spaces for
/// output), trailing white space trimmed.
fn targeted(arrow: bool, node: &str, message: &str) -> String {
    let arrow = if arrow { "==>" } else { "   " };
    let mut out = String::new();
    for line in message.split('\n') {
        out.push_str(&format!("{arrow} {node}: {line}\n"));
    }
    out.trim_end().to_string()
}

fn duration_flag(p: &flags::Parsed, name: &str, default: Duration) -> anyhow::Result<Duration> {
    match p.str(name) {
        None => Ok(default),
        Some(v) => proconsul_types::duration::parse(v).map_err(|_| {
            ui::fail(format!(
                "invalid value {v:?} for flag -{name}: parse error\n{}",
                help()
            ))
        }),
    }
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&all_flags(), args, help)?;
    let shell = p.str("shell").map(|_| p.bool("shell")).unwrap_or(true);
    let verbose = p.bool("verbose");
    let wait = duration_flag(&p, "wait", Duration::from_secs(2))?;
    let repl_wait = duration_flag(&p, "wait-repl", Duration::from_millis(200))?;
    let prefix = p.str("prefix").unwrap_or(DEFAULT_PREFIX).to_string();
    let (node, service, tag) = (
        p.str("node").unwrap_or_default(),
        p.str("service").unwrap_or_default(),
        p.str("tag").unwrap_or_default(),
    );

    let mut spec = Spec {
        command: p.args.join(" "),
        args: Vec::new(),
        script: String::new(),
        wait: wait.as_nanos().min(u128::from(u64::MAX)) as u64,
    };
    if spec.command == "-" {
        if !shell {
            return Err(ui::fail(
                "Cannot configure -shell=false when reading from stdin",
            ));
        }
        spec.command.clear();
        let mut buf = Vec::new();
        if let Err(e) = std::io::stdin().read_to_end(&mut buf) {
            return Err(ui::fail(format!("Failed to read stdin: {e}\n\n{}", help())));
        }
        use base64::Engine;
        spec.script = base64::engine::general_purpose::STANDARD.encode(buf);
    } else if !shell {
        spec.command.clear();
        spec.args = p.args.clone();
    }
    if spec.command.is_empty() && spec.script.is_empty() && spec.args.is_empty() {
        return Err(ui::fail(format!(
            "Must specify a command to execute\n\n{}",
            help()
        )));
    }
    for (what, re) in [("node", node), ("service", service), ("tag", tag)] {
        if let Err(e) = (!re.is_empty())
            .then(|| crate::regex::compile(re))
            .transpose()
        {
            return Err(ui::fail(format!(
                "Failed to compile {what} filter regexp: {e}"
            )));
        }
    }
    if !tag.is_empty() && service.is_empty() {
        return Err(ui::fail(
            "Cannot provide tag filter without service filter.",
        ));
    }

    let c = client(&p)?;
    let info = c
        .agent_self()
        .map_err(|e| ui::fail(format!("Error querying Consul agent: {e}")))?;
    let local_dc = info["Config"]["Datacenter"].as_str().unwrap_or_default();
    let local_node = info["Config"]["NodeName"].as_str().unwrap_or_default();
    // Another datacenter (`-datacenter`: every call of `c` carries `?dc=`): the session is
    // made there, on one of its servers' nodes and tied to no check, as Consul's
    // `createSessionForeign` does; the job's KV and event go there too.
    let foreign = p
        .str("datacenter")
        .is_some_and(|d| !d.is_empty() && d != local_dc);
    let session_request = if foreign {
        let servers = c
            .health_service("consul", &[], true, &Default::default())
            .map_err(|e| {
                ui::fail(format!(
                    "Failed to find Consul server in remote datacenter: {e}"
                ))
            })?
            .0;
        let Some(server) = servers.first() else {
            return Err(ui::fail(
                "Failed to find Consul server in remote datacenter",
            ));
        };
        SessionRequest {
            name: format!("Remote Exec via {local_node}@{local_dc}"),
            node: server.node.node.clone(),
            checks: Some(Vec::new()),
            ttl: SESSION_TTL.into(),
            behavior: "delete".into(),
            ..SessionRequest::default()
        }
    } else {
        SessionRequest {
            name: "Remote Exec".into(),
            ttl: SESSION_TTL.into(),
            behavior: "delete".into(),
            ..SessionRequest::default()
        }
    };
    let local_disabled = info["DebugConfig"]["DisableRemoteExec"]
        .as_bool()
        .unwrap_or(false);
    let spec_json = serde_json::to_vec(&spec)
        .map_err(|e| ui::fail(format!("Failed to create job spec: {e}")))?;

    let session = c
        .session_create(&session_request)
        .map_err(|e| ui::fail(format!("Failed to create session: {e}")))?;
    let job = Job::start(c.clone(), prefix, session);
    {
        // Interrupted: clean up as Consul's deferred calls do, then exit 1.
        let (c, dir, id) = (c.clone(), job.dir(), job.session.clone());
        crate::process::on_shutdown(move || {
            let _ = c.session_destroy(&id);
            let _ = c.kv_delete(&dir, true, None);
            std::process::exit(1);
        });
    }
    if verbose {
        ui::out(&format!(
            "Created remote execution session: {}",
            job.session
        ));
    }
    let code = job.run(&spec_json, repl_wait, wait, verbose, (node, service, tag));
    job.cleanup();
    match code {
        Ok((0, 0, 0)) if local_disabled => {
            ui::err(
                "==> No node acknowledged the job. Remote execution is disabled on this agent \
                 (disable_remote_exec = true, the default); agents with it disabled ignore exec \
                 jobs. Set disable_remote_exec = false in the configuration of the agents that \
                 should run them.",
            );
            Err(ui::exit_silently(1))
        }
        Ok((0, _, _)) => Ok(()),
        Ok((code, _, _)) => Err(ui::exit_silently(code)),
        Err(e) => Err(e),
    }
}

/// One remote execution: its session (renewed in the background) and KV prefix.
struct Job {
    client: Client,
    prefix: String,
    session: String,
    stop_renew: Arc<AtomicBool>,
}

impl Job {
    fn start(client: Client, prefix: String, session: String) -> Job {
        let stop_renew = Arc::new(AtomicBool::new(false));
        let (c, id, stop) = (client.clone(), session.clone(), stop_renew.clone());
        std::thread::spawn(move || loop {
            let until = Instant::now() + RENEW_INTERVAL;
            while Instant::now() < until {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if let Err(e) = c.session_renew(&id) {
                ui::err(&format!("Session renew failed: {e}"));
                return;
            }
        });
        Job {
            client,
            prefix,
            session,
            stop_renew,
        }
    }

    fn dir(&self) -> String {
        format!("{}/{}", self.prefix.trim_end_matches('/'), self.session)
    }

    /// Upload, fire, follow. Returns (exit code, completed, acknowledged).
    fn run(
        &self,
        spec: &[u8],
        repl_wait: Duration,
        wait: Duration,
        verbose: bool,
        (node, service, tag): (&str, &str, &str),
    ) -> anyhow::Result<(i32, usize, usize)> {
        let key = format!("{}/{JOB_FILE}", self.dir());
        let acquired = self
            .client
            .kv_put(
                &key,
                spec,
                &KvWrite {
                    acquire: Some(self.session.clone()),
                    ..KvWrite::default()
                },
            )
            .map_err(|e| ui::fail(format!("Failed to create job file: {e}")))?;
        if !acquired {
            return Err(ui::fail(format!(
                "Failed to create job file: failed to acquire key {key}"
            )));
        }
        if verbose {
            ui::out("Uploaded remote execution spec");
        }
        std::thread::sleep(repl_wait);
        let payload = serde_json::json!({"Prefix": self.prefix, "Session": self.session});
        let ev = self
            .client
            .event_fire("_rexec", payload.to_string().as_bytes(), node, service, tag)
            .map_err(|e| ui::fail(format!("Failed to fire event: {e}")))?;
        if verbose {
            ui::out(&format!("Fired remote execution event: {}", ev.id));
        }
        Ok(self.wait_for_job(wait, verbose))
    }

    fn wait_for_job(&self, wait: Duration, verbose: bool) -> (i32, usize, usize) {
        let start = Instant::now();
        let (tx, rx) = mpsc::sync_channel::<Update>(128);
        let done = Arc::new(AtomicBool::new(false));
        {
            let (c, dir, done) = (
                self.client.clone(),
                format!("{}/", self.dir()),
                done.clone(),
            );
            std::thread::spawn(move || stream_results(&c, &dir, wait, &done, &tx));
        }
        let (mut acks, mut exits, mut bad) = (0usize, 0usize, 0usize);
        loop {
            let interval = if acks > exits { wait * 2 } else { wait };
            match rx.recv_timeout(interval) {
                Ok(Update::Ack(n)) => {
                    acks += 1;
                    if verbose {
                        ui::out(&targeted(true, &n, "acknowledged"));
                    }
                }
                Ok(Update::Heartbeat(n)) => {
                    if verbose {
                        ui::out(&targeted(true, &n, "heartbeat received"));
                    }
                }
                Ok(Update::Output(n, out)) => {
                    ui::out(&targeted(false, &n, &String::from_utf8_lossy(&out)));
                }
                Ok(Update::Exit(n, code)) => {
                    exits += 1;
                    ui::out(&targeted(
                        true,
                        &n,
                        &format!("finished with exit code {code}"),
                    ));
                    if code != 0 {
                        bad += 1;
                    }
                }
                Ok(Update::Failed) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    done.store(true, Ordering::SeqCst);
                    return (1, exits, acks);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    ui::out(&format!(
                        "{exits} / {acks} node(s) completed / acknowledged"
                    ));
                    if verbose {
                        ui::out(&format!(
                            "Completed in {:.2} seconds",
                            start.elapsed().as_secs_f64()
                        ));
                    }
                    if exits < acks {
                        bad += 1;
                    }
                    break;
                }
            }
        }
        done.store(true, Ordering::SeqCst);
        (if bad > 0 { 2 } else { 0 }, exits, acks)
    }

    /// Destroy the session first (so no agent can write any more), then delete the data.
    fn cleanup(&self) {
        self.stop_renew.store(true, Ordering::SeqCst);
        let _ = self.client.session_destroy(&self.session);
        let _ = self.client.kv_delete(&self.dir(), true, None);
    }
}

/// Classify one key under the job's directory (already trimmed), Consul's rules.
/// A results listing in the order to report it. A node writes its output before its exit code,
/// but the listing is sorted by key and `<node>/exit` sorts before `<node>/out/…`: exit codes go
/// last, so output that arrived with them is never dropped behind a finished node.
fn in_report_order(mut keys: Vec<String>) -> Vec<String> {
    keys.sort_by_key(|k| k.ends_with("/exit"));
    keys
}

fn classify(key: &str) -> Option<KeyKind<'_>> {
    if key == JOB_FILE {
        return None;
    }
    if let Some(n) = key.strip_suffix(ACK_SUFFIX) {
        return Some(KeyKind::Ack(n));
    }
    if let Some(n) = key.strip_suffix(EXIT_SUFFIX) {
        return Some(KeyKind::Exit(n));
    }
    if let Some(i) = key.rfind(OUTPUT_DIVIDER) {
        return Some(KeyKind::Output(&key[..i]));
    }
    Some(KeyKind::Unknown)
}

#[derive(Debug, PartialEq, Eq)]
enum KeyKind<'a> {
    Ack(&'a str),
    Exit(&'a str),
    Output(&'a str),
    Unknown,
}

/// Follow the job's keys with blocking listings and report each new one once.
fn stream_results(
    c: &Client,
    dir: &str,
    wait: Duration,
    done: &AtomicBool,
    tx: &mpsc::SyncSender<Update>,
) {
    let mut opts = QueryOptions {
        wait_time: Some(wait),
        ..QueryOptions::default()
    };
    let mut seen: HashSet<String> = HashSet::new();
    while !done.load(Ordering::SeqCst) {
        let (keys, meta) = match c.kv_keys(dir, "", &opts) {
            Ok(r) => r,
            Err(e) => {
                if !done.load(Ordering::SeqCst) {
                    ui::err(&format!("Failed to read results: {e}"));
                    let _ = tx.send(Update::Failed);
                }
                return;
            }
        };
        if meta.last_index == opts.wait_index {
            continue;
        }
        opts.wait_index = meta.last_index;
        for full in in_report_order(keys) {
            if seen.contains(&full) || seen.len() >= MAX_KEYS {
                continue;
            }
            seen.insert(full.clone());
            let key = full.strip_prefix(dir).unwrap_or(&full);
            let update = match classify(key) {
                None => continue,
                Some(KeyKind::Ack(n)) => Update::Ack(n.to_string()),
                Some(KeyKind::Unknown) => {
                    ui::err(&format!("Unknown key '{key}', ignoring."));
                    continue;
                }
                Some(kind) => {
                    let value = match c.kv_get(&full, &QueryOptions::default()) {
                        Ok((Some(e), _)) => e.value.unwrap_or_default(),
                        Ok((None, _)) => {
                            ui::err(&format!("Failed to read key '{full}': <nil>"));
                            continue;
                        }
                        Err(e) => {
                            ui::err(&format!("Failed to read key '{full}': {e}"));
                            continue;
                        }
                    };
                    match kind {
                        KeyKind::Exit(n) => {
                            let text = String::from_utf8_lossy(&value);
                            match text.parse::<i32>() {
                                Ok(code) => Update::Exit(n.to_string(), code),
                                Err(e) => {
                                    ui::err(&format!("Failed to parse exit code '{text}': {e}"));
                                    continue;
                                }
                            }
                        }
                        KeyKind::Output(n) if value.is_empty() => Update::Heartbeat(n.to_string()),
                        KeyKind::Output(n) => Update::Output(n.to_string(), value),
                        _ => continue,
                    }
                }
            };
            if tx.send(update).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_reported_after_the_output_listed_with_them() {
        let listing = [
            "p/n1/ack",
            "p/n1/exit",
            "p/n1/out/00000",
            "p/n2/exit",
            "p/n2/out/00000",
        ];
        let ordered = in_report_order(listing.iter().map(|k| k.to_string()).collect());
        assert_eq!(
            ordered,
            [
                "p/n1/ack",
                "p/n1/out/00000",
                "p/n2/out/00000",
                "p/n1/exit",
                "p/n2/exit"
            ]
        );
    }

    #[test]
    fn lines_are_targeted_like_consul() {
        assert_eq!(targeted(false, "n1", "hello\n"), "    n1: hello\n    n1:");
        assert_eq!(
            targeted(true, "n1", "finished with exit code 0"),
            "==> n1: finished with exit code 0"
        );
    }

    #[test]
    fn keys_are_classified() {
        assert_eq!(classify("job"), None);
        assert_eq!(classify("n1/ack"), Some(KeyKind::Ack("n1")));
        assert_eq!(classify("n1/exit"), Some(KeyKind::Exit("n1")));
        assert_eq!(classify("n1/out/00000"), Some(KeyKind::Output("n1")));
        assert_eq!(classify("zzz"), Some(KeyKind::Unknown));
    }

    #[test]
    fn spec_is_consuls_json() {
        let s = Spec {
            command: "uptime".into(),
            args: vec![],
            script: String::new(),
            wait: 2_000_000_000,
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"Command":"uptime","Wait":2000000000}"#
        );
    }
}
