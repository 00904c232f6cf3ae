//! `leave`: ask the local agent to leave the cluster gracefully and shut down.

use super::{client, parse_flags};
use crate::flags::{self, CLIENT_FLAGS};
use crate::ui;

pub fn help() -> String {
    flags::usage(
        "
Usage: proconsul leave [options]

  Causes the agent to gracefully leave the Consul cluster and shutdown.
",
        CLIENT_FLAGS,
    )
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(CLIENT_FLAGS, args, help)?;
    if !p.args.is_empty() {
        ui::err(&format!(
            "Error found unexpected args: [{}]",
            p.args.join(" ")
        ));
        ui::out(&help());
        return Err(ui::exit_silently(1));
    }
    let c = client(&p)?;
    c.agent_leave()
        .map_err(|e| ui::fail(format!("Error leaving: {e}")))?;
    ui::out("Graceful leave complete");
    Ok(())
}
