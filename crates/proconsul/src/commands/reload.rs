//! `reload`: ask the local agent to reload its configuration files (like SIGHUP).

use super::{client, parse_flags};
use crate::flags::{self, CLIENT_FLAGS};
use crate::ui;

pub fn help() -> String {
    flags::usage(
        "
Usage: proconsul reload

  Causes the agent to reload configurations. This can be used instead
  of sending the SIGHUP signal to the agent.
",
        CLIENT_FLAGS,
    )
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(CLIENT_FLAGS, args, help)?;
    let c = client(&p)?;
    c.agent_reload()
        .map_err(|e| ui::fail(format!("Error reloading: {e}")))?;
    ui::out("Configuration reload triggered");
    Ok(())
}
