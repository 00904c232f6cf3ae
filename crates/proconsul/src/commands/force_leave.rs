//! `force-leave [-prune] [-wan] NODE`: mark a failed member as left (and optionally forget it).

use super::{client, parse_flags};
use crate::flags::{self, Flag, CLIENT_FLAGS};
use crate::ui;

const FLAGS: &[Flag] = &[
    Flag::boolean("prune", "Remove agent forcibly from list of members"),
    Flag::boolean("wan", "Exclusively leave the agent from the WAN serf pool."),
];

fn all_flags() -> Vec<Flag> {
    flags::with(FLAGS, &[CLIENT_FLAGS])
}

pub fn help() -> String {
    flags::usage(
        "
Usage: proconsul force-leave [options] name

  Forces a member of a Consul cluster to enter the \"left\" state. Note
  that if the member is still actually alive, it will eventually rejoin
  the cluster. This command is most useful for cleaning out \"failed\" nodes
  that are never coming back. If you do not force leave a failed node,
  Consul will attempt to reconnect to those failed nodes for some period of
  time before eventually reaping them.
",
        &all_flags(),
    )
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&all_flags(), args, help)?;
    let [node] = p.args.as_slice() else {
        ui::err("A single node name must be specified to force leave.");
        ui::err(&help());
        return Err(ui::exit_silently(1));
    };
    let c = client(&p)?;
    c.agent_force_leave(node, p.bool("prune"), p.bool("wan"))
        .map_err(|e| ui::fail(format!("Error force leaving: {e}")))?;
    Ok(())
}
