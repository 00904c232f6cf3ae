//! `event -name=NAME [-node] [-service] [-tag] [payload]`: fire a user event over gossip.

use super::{client, parse_flags};
use crate::flags::{self, Flag, CLIENT_FLAGS, SERVER_FLAGS};
use crate::ui;

const FLAGS: &[Flag] = &[
    Flag::string("name", "Name of the event."),
    Flag::string("node", "Regular expression to filter on node names."),
    Flag::string(
        "service",
        "Regular expression to filter on service instances.",
    ),
    Flag::string(
        "tag",
        "Regular expression to filter on service tags. Must be used with -service.",
    ),
];

fn all_flags() -> Vec<Flag> {
    flags::with(FLAGS, &[CLIENT_FLAGS, SERVER_FLAGS])
}

pub fn help() -> String {
    flags::usage(
        "
Usage: proconsul event [options] [payload]

  Dispatches a custom user event across a datacenter. An event must provide
  a name, but a payload is optional. Events support filtering using
  regular expressions on node name, service, and tag definitions.
",
        &all_flags(),
    )
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&all_flags(), args, help)?;
    let name = p.str("name").unwrap_or_default();
    if name.is_empty() {
        ui::err("Event name must be specified");
        ui::err(&help());
        return Err(ui::exit_silently(1));
    }
    let (node, service, tag) = (
        p.str("node").unwrap_or_default(),
        p.str("service").unwrap_or_default(),
        p.str("tag").unwrap_or_default(),
    );
    for (what, re) in [("node", node), ("service", service), ("tag", tag)] {
        if !re.is_empty() && crate::regex::compile(re).is_err() {
            return Err(ui::fail(format!("Failed to compile {what} filter regexp")));
        }
    }
    if !tag.is_empty() && service.is_empty() {
        return Err(ui::fail(
            "Cannot provide tag filter without service filter.",
        ));
    }
    let payload = match p.args.as_slice() {
        [] => Vec::new(),
        [one] => one.as_bytes().to_vec(),
        _ => {
            ui::err("Too many command line arguments.");
            ui::err(&help());
            return Err(ui::exit_silently(1));
        }
    };
    let c = client(&p)?;
    c.agent_node_name()
        .map_err(|e| ui::fail(format!("Error querying Consul agent: {e}")))?;
    let ev = c
        .event_fire(name, &payload, node, service, tag)
        .map_err(|e| ui::fail(format!("Error firing event: {e}")))?;
    ui::out(&format!("Event ID: {}", ev.id));
    Ok(())
}
