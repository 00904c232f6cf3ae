//! `operator raft list-peers|remove-peer`: the servers' Raft configuration.

use super::{client, parse_flags};
use crate::flags::{self, Flag, CLIENT_FLAGS, SERVER_FLAGS};
use crate::ui;

pub fn help() -> String {
    "Usage: proconsul operator <subcommand> [options]

  Provides cluster-level tools for Consul operators, such as interacting with
  the Raft subsystem. NOTE: Use this command with extreme caution, as improper
  use could lead to a Consul outage and even loss of data.

  Run proconsul operator <subcommand> with no arguments for help on that
  subcommand."
        .to_string()
}

pub fn raft_help() -> String {
    "Usage: proconsul operator raft <subcommand> [options]

  The Raft operator command is used to interact with Consul's Raft subsystem. The
  command can be used to verify Raft peers or in rare cases to recover quorum by
  removing invalid peers.

  List Raft peers:

      $ proconsul operator raft list-peers

  Remove a Raft peer:

      $ proconsul operator raft remove-peer -address=\"IP:port\""
        .to_string()
}

fn list_flags() -> Vec<Flag> {
    flags::with(&[], &[CLIENT_FLAGS, SERVER_FLAGS])
}

pub fn list_peers_help() -> String {
    flags::usage(
        "
Usage: proconsul operator raft list-peers [options]

  Displays the current Raft peer configuration.
",
        &list_flags(),
    )
}

pub fn list_peers(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&list_flags(), args, list_peers_help)?;
    let c = client(&p)?;
    let config = c
        .operator_raft_configuration(p.bool("stale"))
        .map_err(|e| ui::fail(format!("Error getting peers: {e}")))?;
    let mut rows = vec![vec![
        "Node".to_string(),
        "ID".into(),
        "Address".into(),
        "State".into(),
        "Voter".into(),
        "RaftProtocol".into(),
        "Commit Index".into(),
        "Trails Leader By".into(),
    ]];
    let leader_index = config
        .servers
        .iter()
        .find(|s| s.leader)
        .map(|s| s.last_index)
        .unwrap_or(0);
    for s in &config.servers {
        rows.push(vec![
            s.node.clone(),
            s.id.clone(),
            s.address.clone(),
            if s.leader { "leader" } else { "follower" }.to_string(),
            s.voter.to_string(),
            s.protocol_version.clone(),
            s.last_index.to_string(),
            if s.leader {
                "-".to_string()
            } else {
                format!("{} commits", leader_index.saturating_sub(s.last_index))
            },
        ]);
    }
    ui::out(&ui::columnize(&rows));
    Ok(())
}

const REMOVE_FLAGS: &[Flag] = &[
    Flag::string(
        "address",
        "The address to remove from the Raft configuration.",
    ),
    Flag::string("id", "The ID to remove from the Raft configuration."),
];

fn remove_flags() -> Vec<Flag> {
    flags::with(REMOVE_FLAGS, &[CLIENT_FLAGS])
}

pub fn remove_peer_help() -> String {
    flags::usage(
        "
Usage: proconsul operator raft remove-peer [options]

  Remove the Consul server with given -address from the Raft configuration.

  There are rare cases where a peer may be left behind in the Raft quorum even
  though the server is no longer present and known to the cluster. This command
  can be used to remove the failed server so that it is no longer affects the
  Raft quorum. If the server still shows in the output of the \"consul members\"
  command, it is preferable to clean up by simply running \"consul force-leave\"
  instead of this command.
",
        &remove_flags(),
    )
}

pub fn remove_peer(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&remove_flags(), args, remove_peer_help)?;
    let address = p.str("address").unwrap_or_default();
    let id = p.str("id").unwrap_or_default();
    if address.is_empty() == id.is_empty() {
        return Err(ui::fail(
            "Error removing peer: Must specify exactly one of -address or -id",
        ));
    }
    let c = client(&p)?;
    c.operator_raft_remove_peer(id, address)
        .map_err(|e| ui::fail(format!("Error removing peer: {e}")))?;
    if id.is_empty() {
        ui::out(&format!("Removed peer with address \"{address}\""));
    } else {
        ui::out(&format!("Removed peer with id \"{id}\""));
    }
    Ok(())
}

pub fn autopilot_help() -> String {
    "Usage: proconsul operator autopilot <subcommand> [options]

  The Autopilot operator command is used to interact with Consul's Autopilot
  subsystem. The command can be used to view the current Autopilot
  configuration.

  Display the current Autopilot configuration:

      $ proconsul operator autopilot get-config"
        .to_string()
}

fn get_config_flags() -> Vec<Flag> {
    flags::with(&[], &[CLIENT_FLAGS, SERVER_FLAGS])
}

pub fn get_config_help() -> String {
    flags::usage(
        "
Usage: proconsul operator autopilot get-config [options]

  Displays the current Autopilot configuration.
",
        &get_config_flags(),
    )
}

pub fn get_config(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&get_config_flags(), args, get_config_help)?;
    let c = client(&p)?;
    let conf = c
        .operator_autopilot_configuration()
        .map_err(|e| ui::fail(format!("Error querying Autopilot configuration: {e}")))?;
    ui::out(&format!(
        "CleanupDeadServers = {}",
        conf.cleanup_dead_servers
    ));
    ui::out(&format!(
        "LastContactThreshold = {}",
        conf.last_contact_threshold
    ));
    ui::out(&format!("MaxTrailingLogs = {}", conf.max_trailing_logs));
    ui::out(&format!("MinQuorum = {}", conf.min_quorum));
    ui::out(&format!(
        "ServerStabilizationTime = {}",
        conf.server_stabilization_time
    ));
    ui::out(&format!(
        "RedundancyZoneTag = {:?}",
        conf.redundancy_zone_tag
    ));
    ui::out(&format!(
        "DisableUpgradeMigration = {}",
        conf.disable_upgrade_migration
    ));
    ui::out(&format!(
        "UpgradeVersionTag = {:?}",
        conf.upgrade_version_tag
    ));
    Ok(())
}
