//! `monitor [-log-level=info] [-log-json]`: stream the agent's logs until interrupted.

use super::{client, parse_flags};
use crate::flags::{self, Flag, CLIENT_FLAGS};
use crate::ui;

const FLAGS: &[Flag] = &[
    Flag::string("log-level", "Log level of the agent."),
    Flag::boolean("log-json", "Output logs in JSON format."),
];

fn all_flags() -> Vec<Flag> {
    flags::with(FLAGS, &[CLIENT_FLAGS])
}

pub fn help() -> String {
    flags::usage(
        "
Usage: proconsul monitor [options]

  Shows recent log messages of a Consul agent, and attaches to the agent,
  outputting log messages as they occur in real time. The monitor lets you
  listen for log levels that may be filtered out of the Consul agent. For
  example your agent may only be logging at INFO level, but with the monitor
  you can see the DEBUG level logs.
",
        &all_flags(),
    )
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&all_flags(), args, help)?;
    let level = p.str("log-level").unwrap_or("info").to_string();
    let mut query = vec![("loglevel", level)];
    if p.bool("log-json") {
        query.push(("logjson", "true".into()));
    }
    let c = client(&p)?;
    c.stream_lines("/v1/agent/monitor", &query, |line| {
        ui::out(line);
        true
    })
    .map_err(|e| ui::fail(format!("Error starting monitor: {e}")))?;
    Ok(())
}
