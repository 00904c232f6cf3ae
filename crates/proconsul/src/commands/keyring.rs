//! `keyring -list|-install|-use|-remove`: rotate the gossip encryption keys on every member
//! (the agent runs Serf's key queries on its LAN pool, and WAN pool on servers).

use super::{client, parse_flags};
use crate::flags::{self, Flag, CLIENT_FLAGS};
use crate::ui;

const FLAGS: &[Flag] = &[
    Flag::string(
        "install",
        "Install a new encryption key. This will broadcast the new key to all members in the cluster.",
    ),
    Flag::string(
        "use",
        "Change the primary encryption key, which is used to encrypt messages. The key must already be installed before this operation can succeed.",
    ),
    Flag::string(
        "remove",
        "Remove the given key from the cluster. This operation may only be performed on keys which are not currently the primary key.",
    ),
    Flag::boolean(
        "list",
        "List all keys currently in use within the cluster.",
    ),
];

fn all_flags() -> Vec<Flag> {
    flags::with(FLAGS, &[CLIENT_FLAGS])
}

pub fn help() -> String {
    flags::usage(
        "
Usage: proconsul keyring [options]

  Manages encryption keys used for gossip messages. Gossip encryption is
  optional. When enabled, this command may be used to examine active encryption
  keys in the cluster, add new keys, and remove old ones. When combined, this
  functionality provides the ability to perform key rotation cluster-wide,
  without disrupting the cluster.

  All operations performed by this command can only be run against server nodes,
  and affect both the LAN and WAN keyrings in lock-step.

  All variations of the keyring command return 0 if all nodes reply and there
  are no errors. If any node fails to reply or reports failure, the exit code
  will be 1.
",
        &all_flags(),
    )
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&all_flags(), args, help)?;
    let ops: Vec<(&str, &str)> = [
        ("install", p.str("install")),
        ("use", p.str("use")),
        ("remove", p.str("remove")),
    ]
    .into_iter()
    .filter_map(|(op, v)| v.map(|v| (op, v)))
    .collect();
    let list = p.bool("list");
    if ops.len() + usize::from(list) != 1 {
        ui::err("Exactly one operation must be specified");
        return Err(ui::exit_silently(1));
    }
    let c = client(&p)?;
    if list {
        ui::out("==> Gathering installed encryption keys...");
        let pools = c
            .operator_keyring_list()
            .map_err(|e| ui::fail(format!("error: {e}")))?;
        for r in pools {
            let title = if r.wan {
                "WAN".to_string()
            } else {
                format!("{} (LAN)", r.datacenter)
            };
            ui::out("");
            ui::out(&format!("{title}:"));
            for (node, msg) in &r.messages {
                ui::out(&format!("  {node}: {msg}"));
            }
            for (key, n) in &r.keys {
                ui::out(&format!("  {key} [{n}/{}]", r.num_nodes));
            }
        }
        return Ok(());
    }
    let (op, key) = ops[0];
    ui::out(match op {
        "install" => "==> Installing new gossip encryption key...",
        "use" => "==> Changing primary gossip encryption key...",
        _ => "==> Removing gossip encryption key...",
    });
    c.operator_keyring_change(op, key)
        .map_err(|e| ui::fail(format!("error: {e}")))?;
    Ok(())
}
