//! `join [-wan] ADDR...`: ask the local agent to join other members; succeeds if any join did.

use super::{client, parse_flags};
use crate::flags::{self, Flag, CLIENT_FLAGS};
use crate::ui;

const FLAGS: &[Flag] = &[Flag::boolean(
    "wan",
    "Joins a server to another server in the WAN pool.",
)];

fn all_flags() -> Vec<Flag> {
    flags::with(FLAGS, &[CLIENT_FLAGS])
}

pub fn help() -> String {
    flags::usage(
        "
Usage: proconsul join [options] address ...

  Tells a running Consul agent (with \"consul agent\") to join the cluster
  by specifying at least one existing member.
",
        &all_flags(),
    )
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&all_flags(), args, help)?;
    if p.args.is_empty() {
        ui::err("At least one address to join must be specified.");
        ui::err("");
        ui::err(&help());
        return Err(ui::exit_silently(1));
    }
    let c = client(&p)?;
    let wan = p.bool("wan");
    let mut joins = 0;
    for addr in &p.args {
        match c.agent_join(addr, wan) {
            Ok(()) => joins += 1,
            Err(e) => ui::err(&format!("Error joining address '{addr}': {e}")),
        }
    }
    if joins == 0 {
        return Err(ui::fail("Failed to join any nodes."));
    }
    ui::out(&format!(
        "Successfully joined cluster by contacting {joins} nodes."
    ));
    Ok(())
}
