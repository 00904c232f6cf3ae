//! `watch -type=... [handler...]`: Consul's watch plans from the command line.
//!
//! The loop is Consul's (`api/watch/plan.go`): the first query runs at once, later ones block
//! with `?index=<last>`, and the handler runs only when the data changed. An error drops the
//! index and retries after 5 s × failures² (at most 180 s), so the watch rides out agent
//! restarts. An index that goes backwards (a restarted dev agent, a restored snapshot) resets
//! it to 0. Blocking queries start at least [`MIN_QUERY_GAP`] apart so an index that keeps
//! moving cannot make the loop spin.
//!
//! Two additions make restarts safe where Consul's loop can miss them: every request uses its
//! own connection (an agent that dies under a blocking query is always an error, never a silent
//! reconnect), and after any pause between answer and next query (a handler run, the rate
//! limit) a non-blocking read comes first, because a blocking query with the old agent's index
//! could otherwise wait on a restarted agent for a change it already has.
//!
//! Without a handler the first result is printed as indented JSON and the command exits. With
//! one, the handler gets the result as JSON on stdin and `CONSUL_INDEX` in its environment; a
//! failing handler stops the watch with exit 1.
//!
//! [`run_plan`] is the one loop: the agent's configured `watches` (`crate::config_watches`)
//! run through it too. The parameter rules (`Params::plan`) live in `proconsul_config::watch`,
//! shared with config-file validation.

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::ControlFlow;
use std::process::Stdio;
use std::time::{Duration, Instant};

use proconsul_api::{
    event_id_to_index, CheckServiceNode, Client, HealthCheck, KvEntry, Node, QueryOptions,
    UserEvent,
};
use serde::Serialize;

pub use proconsul_config::watch::{Params, Plan};

use super::{client, parse_flags};
use crate::flags::{self, Flag, Parsed, CLIENT_FLAGS, SERVER_FLAGS};
use crate::process;
use crate::ui;

/// Base of the error backoff (Consul's `retryInterval`).
const RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// Longest error backoff (Consul's `maxBackoffTime`).
const MAX_BACKOFF: Duration = Duration::from_secs(180);
/// Least time between the starts of two blocking queries.
const MIN_QUERY_GAP: Duration = Duration::from_millis(100);
/// A pause between an answer and the next query longer than this makes the next query a
/// non-blocking look at the current state.
const PROBE_AFTER: Duration = Duration::from_millis(50);
/// How long one blocking query waits at most, so a stopped plan (a reloaded agent's) ends soon.
const BLOCK_WAIT: Duration = Duration::from_secs(60);

const FLAGS: &[Flag] = &[
    Flag::string("key", "Specifies the key to watch. Only for 'key' type."),
    Flag::string(
        "name",
        "Specifies an event name to watch. Only for 'event' type.",
    ),
    Flag::new(
        "passingonly",
        flags::Kind::Str,
        "[true|false]",
        "Specifies if only hosts passing all checks are displayed. Optional for 'service' \
         type, must be one of `[true|false]`. Defaults false.",
    ),
    Flag::string(
        "prefix",
        "Specifies the key prefix to watch. Only for 'keyprefix' type.",
    ),
    Flag::string(
        "service",
        "Specifies the service to watch. Required for 'service' type, optional for 'checks' \
         type.",
    ),
    Flag::boolean(
        "shell",
        "Use a shell to run the command (can set a custom shell via the SHELL environment \
         variable).",
    ),
    Flag::string(
        "state",
        "Specifies the states to watch. Optional for 'checks' type.",
    ),
    Flag::string(
        "tag",
        "Specifies the service tag to filter on. Optional for 'service' type.",
    ),
    Flag::string(
        "type",
        "Specifies the watch type. One of key, keyprefix, services, nodes, service, checks, \
         or event.",
    ),
];

fn all_flags() -> Vec<Flag> {
    flags::with(FLAGS, &[CLIENT_FLAGS, SERVER_FLAGS])
}

pub fn help() -> String {
    flags::usage(
        "
Usage: proconsul watch [options] [child...]

  Watches for changes in a given data view from Consul. If a child process
  is specified, it will be invoked with the latest results on changes. Otherwise,
  the latest values are dumped to stdout and the watch terminates.

  Providing the watch type is required, and other parameters may be required
  or supported depending on the watch type.
",
        &all_flags(),
    )
}

/// A watch's result, serialized as Consul's Go client encodes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Data {
    Key(Option<KvEntry>),
    Entries(Vec<KvEntry>),
    Services(BTreeMap<String, Vec<String>>),
    Nodes(Vec<Node>),
    Service(Vec<CheckServiceNode>),
    Checks(Vec<HealthCheck>),
    Events(Vec<UserEvent>),
}

/// Run one query of `plan`; returns the result's index and data. `last` is the index the
/// previous answer had (events are pruned to the ones after it).
pub fn fetch(
    c: &Client,
    plan: &Plan,
    opts: &QueryOptions,
    last: Option<u64>,
) -> proconsul_api::Result<(u64, Data)> {
    Ok(match plan {
        Plan::Key(key) => {
            let (e, meta) = c.kv_get(key, opts)?;
            (meta.last_index, Data::Key(e))
        }
        Plan::KeyPrefix(prefix) => {
            let (e, meta) = c.kv_list(prefix, opts)?;
            (meta.last_index, Data::Entries(e))
        }
        Plan::Services => {
            let (s, meta) = c.catalog_services(opts)?;
            (meta.last_index, Data::Services(s))
        }
        Plan::Nodes => {
            let (n, meta) = c.catalog_nodes(opts)?;
            (meta.last_index, Data::Nodes(n))
        }
        Plan::Service {
            service,
            tags,
            passing,
        } => {
            let (s, meta) = c.health_service(service, tags, *passing, opts)?;
            (meta.last_index, Data::Service(s))
        }
        Plan::Checks {
            service,
            state,
            tags,
        } => {
            let (checks, meta) = if state.is_empty() {
                c.health_checks(service, opts)?
            } else {
                c.health_state(state, tags, opts)?
            };
            (meta.last_index, Data::Checks(checks))
        }
        Plan::Event(name) => {
            let (mut events, meta) = c.event_list(name, opts)?;
            if let Some(last) = last {
                if let Some(i) = events.iter().position(|e| event_id_to_index(&e.id) == last) {
                    events.drain(..=i);
                }
            }
            (meta.last_index, Data::Events(events))
        }
    })
}

/// The blocking loop's bookkeeping, separated from I/O so its rules are testable.
#[derive(Debug, Default)]
pub struct Tracker {
    /// Index to send as `?index=`; `None` before the first answer and after an error.
    pub wait_index: Option<u64>,
    last_result: Option<Data>,
    failures: u32,
}

impl Tracker {
    /// Record a failed query; returns how long to wait before the next one.
    pub fn failed(&mut self) -> Duration {
        self.failures += 1;
        self.wait_index = None;
        let retry = RETRY_INTERVAL * self.failures.saturating_mul(self.failures);
        retry.min(MAX_BACKOFF)
    }

    /// Record an answer; returns `true` when the handler must run with it: when the data
    /// differs from what the handler last saw. (Consul also skips answers whose index did not
    /// move; with the same data that is the same thing, and the same index with other data only
    /// happens on a restarted agent, where firing is right.)
    pub fn answered(&mut self, index: u64, data: Data) -> bool {
        self.failures = 0;
        self.wait_index = Some(match self.wait_index {
            Some(prev) if index < prev => 0,
            _ => index,
        });
        if self.last_result.as_ref() == Some(&data) {
            return false;
        }
        self.last_result = Some(data);
        true
    }
}

fn params_from(p: &Parsed) -> anyhow::Result<Params> {
    let s = |n: &str| p.str(n).unwrap_or_default().to_string();
    let passing = match p.str("passingonly").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(match v {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
            "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
            _ => {
                return Err(ui::fail(format!(
                    "Failed to parse passingonly flag: strconv.ParseBool: parsing {v:?}: invalid syntax"
                )))
            }
        }),
    };
    Ok(Params {
        watch_type: s("type"),
        key: s("key"),
        prefix: s("prefix"),
        service: s("service"),
        tags: p
            .str("tag")
            .filter(|t| !t.is_empty())
            .map(|t| vec![t.to_string()])
            .unwrap_or_default(),
        passing,
        state: s("state"),
        name: s("name"),
        stale: p.bool("stale"),
    })
}

/// Run the handler with `data` on stdin; `Err` carries Consul's message.
fn run_handler(args: &[String], shell: bool, index: u64, data: &Data) -> Result<(), String> {
    let mut cmd =
        process::command(args, shell).map_err(|e| format!("Error executing handler: {e}"))?;
    cmd.env("CONSUL_INDEX", index.to_string());
    let mut input = ui::go_json(data, None);
    input.push('\n');
    let mut child =
        process::spawn(cmd, Stdio::piped()).map_err(|e| format!("Error starting handler: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A handler that does not read its input is not an error.
        let _ = stdin.write_all(input.as_bytes());
    }
    let status = child
        .wait()
        .map_err(|e| format!("Error executing handler: {e}"))?;
    match process::failure(status) {
        None => Ok(()),
        Some(f) => Err(format!("Error executing handler: {f}")),
    }
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&all_flags(), args, help)?;
    let params = params_from(&p)?;
    if params.watch_type.is_empty() {
        ui::err("Watch type must be specified");
        ui::err("");
        ui::err(&help());
        return Err(ui::exit_silently(1));
    }
    let plan = params.plan().map_err(|e| ui::fail(e.to_string()))?;
    let shell = p.str("shell").map(|_| p.bool("shell")).unwrap_or(true);
    let c = client(&p)?.with_fresh_connections();
    c.agent_node_name()
        .map_err(|e| ui::fail(format!("Error querying Consul agent: {e}")))?;

    // Consul exits 0 on SIGINT/SIGTERM.
    process::on_shutdown(|| std::process::exit(0));

    let mut outcome: anyhow::Result<()> = Ok(());
    run_plan(
        &c,
        &plan,
        params.stale,
        &params.watch_type,
        &|| false,
        |index, data| {
            if p.args.is_empty() {
                ui::out(&ui::go_json(data, Some("    ")));
                return ControlFlow::Break(());
            }
            if let Err(e) = run_handler(&p.args, shell, index, data) {
                outcome = Err(ui::fail(e));
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        },
    );
    outcome
}

/// Consul's watch loop: query, block for changes, call `on_change` when the data changed,
/// back off on errors. Returns when `on_change` breaks or `stopped()` says so (checked before
/// every query and again before every call, so a stopped plan never fires).
pub fn run_plan(
    c: &Client,
    plan: &Plan,
    stale: bool,
    watch_type: &str,
    stopped: &dyn Fn() -> bool,
    mut on_change: impl FnMut(u64, &Data) -> ControlFlow<()>,
) {
    let mut t = Tracker::default();
    let mut last_block: Option<Instant> = None;
    let mut last_answer: Option<Instant> = None;
    while !stopped() {
        if let Some(s) = last_block {
            let since = s.elapsed();
            if since < MIN_QUERY_GAP {
                std::thread::sleep(MIN_QUERY_GAP - since);
            }
        }
        // After a gap (a handler run, the rate limit), look at the current state first: the
        // agent may have been restarted meanwhile, and a blocking query with the old index
        // would then wait on the new agent for a change that already happened.
        let probe = last_answer.is_some_and(|a| a.elapsed() > PROBE_AFTER);
        if !probe {
            last_block = Some(Instant::now());
        }
        let opts = QueryOptions {
            stale,
            wait_index: if probe { 0 } else { t.wait_index.unwrap_or(0) },
            wait_time: Some(BLOCK_WAIT),
            ..QueryOptions::default()
        };
        let (index, data) = match fetch(c, plan, &opts, t.wait_index) {
            Ok(r) => r,
            Err(e) => {
                last_answer = None;
                let retry = t.failed();
                ui::err(&format!(
                    "[ERROR] watch: Watch errored: type={watch_type} error=\"{e}\" retry={}s",
                    retry.as_secs()
                ));
                let until = Instant::now() + retry;
                while Instant::now() < until && !stopped() {
                    std::thread::sleep(Duration::from_millis(100).min(until - Instant::now()));
                }
                continue;
            }
        };
        last_answer = Some(Instant::now());
        if !t.answered(index, data.clone()) || stopped() {
            continue;
        }
        if on_change(index, &data).is_break() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_follows_consuls_rules() {
        let v = |s: &str| {
            Data::Key(Some(KvEntry {
                key: "k".into(),
                value: Some(s.as_bytes().to_vec()),
                ..KvEntry::default()
            }))
        };
        let mut t = Tracker::default();
        assert!(t.answered(5, v("a")), "first answer always fires");
        assert!(!t.answered(5, v("a")), "same index: nothing");
        assert!(!t.answered(6, v("a")), "new index, same data: nothing");
        assert!(t.answered(7, v("b")));
        assert_eq!(t.wait_index, Some(7));
        assert!(!t.answered(3, v("b")), "index went backwards");
        assert_eq!(t.wait_index, Some(0), "and was reset");
        assert!(
            t.answered(3, v("c")),
            "same index, other data: a restarted agent"
        );
        assert_eq!(t.failed(), Duration::from_secs(5));
        assert_eq!(t.wait_index, None);
        assert_eq!(t.failed(), Duration::from_secs(20));
        for _ in 0..10 {
            t.failed();
        }
        assert_eq!(t.failed(), MAX_BACKOFF);
        assert!(t.answered(4, v("d")));
    }
}
