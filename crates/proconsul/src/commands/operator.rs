//! `operator raft list-peers|remove-peer` (the servers' Raft configuration), `operator
//! autopilot get-config|set-config` and `operator usage instances`.

use super::{client, parse_flags};
use crate::flags::{self, Flag, Kind, CLIENT_FLAGS, SERVER_FLAGS};
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

const TRANSFER_FLAGS: &[Flag] = &[Flag::string(
    "id",
    "The ID of the node to transfer leadership to.",
)];

fn transfer_flags() -> Vec<Flag> {
    flags::with(TRANSFER_FLAGS, &[CLIENT_FLAGS])
}

pub fn transfer_leader_help() -> String {
    flags::usage(
        "
Usage: proconsul operator raft transfer-leader [options]

  Transfer raft leadership to another node (the server with -id, or the most
  up-to-date other voter). Writes are refused for the second or two it takes.
",
        &transfer_flags(),
    )
}

/// Consul's output: `Success`, or `Error transfering leadership: ...` (sic) and exit 1.
pub fn transfer_leader(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&transfer_flags(), args, transfer_leader_help)?;
    let id = p.str("id").unwrap_or_default();
    let c = client(&p)?;
    match c.operator_raft_transfer_leader(id) {
        Ok(true) => {
            ui::out("Success");
            Ok(())
        }
        Ok(false) => Err(ui::fail(
            "Error transfering leadership: Failed to transfer leadership",
        )),
        Err(e) => Err(ui::fail(format!(
            "Error transfering leadership: Failed to transfer leadership {e}"
        ))),
    }
}

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
  subsystem. The command can be used to view or modify the current configuration.

  Display the current Autopilot configuration:

      $ proconsul operator autopilot get-config

  Set a new Autopilot configuration, enabling automatic dead server cleanup:

      $ proconsul operator autopilot set-config -cleanup-dead-servers=true"
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

const SET_FLAGS: &[Flag] = &[
    Flag::new(
        "cleanup-dead-servers",
        Kind::Bool,
        "true|false",
        "Controls whether Consul will automatically remove dead servers when new ones are successfully added. Must be one of `true|false`.",
    ),
    Flag::new(
        "max-trailing-logs",
        Kind::Uint,
        "value",
        "Controls the maximum number of log entries that a server can trail the leader by before being considered unhealthy.",
    ),
    Flag::new(
        "min-quorum",
        Kind::Uint,
        "value",
        "Sets the minimum number of servers required in a cluster before autopilot is allowed to prune dead servers.",
    ),
    Flag::new(
        "last-contact-threshold",
        Kind::Str,
        "200ms",
        "Controls the maximum amount of time a server can go without contact from the leader before being considered unhealthy. Must be a duration value such as `200ms`.",
    ),
    Flag::new(
        "server-stabilization-time",
        Kind::Str,
        "10s",
        "Controls the minimum amount of time a server must be stable in the 'healthy' state before being added to the cluster. Only takes effect if all servers are running Raft protocol version 3 or higher. Must be a duration value such as `10s`.",
    ),
    Flag::string(
        "redundancy-zone-tag",
        "(Enterprise-only) Controls the node_meta tag name used for separating servers into different redundancy zones.",
    ),
    Flag::new(
        "disable-upgrade-migration",
        Kind::Bool,
        "true|false",
        "(Enterprise-only) Controls whether Consul will avoid promoting new servers until it can perform a migration. Must be one of `true|false`.",
    ),
    Flag::string(
        "upgrade-version-tag",
        "(Enterprise-only) The node_meta tag to use for version info when performing upgrade migrations. If left blank, the Consul version will be used.",
    ),
];

fn set_config_flags() -> Vec<Flag> {
    flags::with(SET_FLAGS, &[CLIENT_FLAGS, SERVER_FLAGS])
}

pub fn set_config_help() -> String {
    flags::usage(
        "
Usage: proconsul operator autopilot set-config [options]

  Modifies the current Autopilot configuration.
",
        &set_config_flags(),
    )
}

/// Read the configuration, change what the flags name, write it back with a check-and-set on
/// the `ModifyIndex` read (so a concurrent change is reported, not overwritten).
pub fn set_config(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&set_config_flags(), args, set_config_help)?;
    // Durations are checked before anything is sent, as Go's flag package does.
    let mut durations = Vec::new();
    for name in ["last-contact-threshold", "server-stabilization-time"] {
        if let Some(v) = p.str(name) {
            let d = proconsul_types::duration::parse(v).map_err(|e| {
                ui::fail(format!(
                    "invalid value {v:?} for flag -{name}: {e}\n{}",
                    set_config_help()
                ))
            })?;
            durations.push((name, proconsul_types::duration::format(d)));
        }
    }
    let c = client(&p)?;
    let mut conf = c
        .operator_autopilot_configuration()
        .map_err(|e| ui::fail(format!("Error querying Autopilot configuration: {e}")))?;
    if p.str("cleanup-dead-servers").is_some() {
        conf.cleanup_dead_servers = p.bool("cleanup-dead-servers");
    }
    if p.str("disable-upgrade-migration").is_some() {
        conf.disable_upgrade_migration = p.bool("disable-upgrade-migration");
    }
    if let Some(v) = p.str("redundancy-zone-tag") {
        conf.redundancy_zone_tag = v.to_string();
    }
    if let Some(v) = p.str("upgrade-version-tag") {
        conf.upgrade_version_tag = v.to_string();
    }
    if let Some(v) = p.u64("max-trailing-logs") {
        conf.max_trailing_logs = v;
    }
    if let Some(v) = p.u64("min-quorum") {
        conf.min_quorum = v;
    }
    for (name, d) in durations {
        match name {
            "last-contact-threshold" => conf.last_contact_threshold = d,
            _ => conf.server_stabilization_time = d,
        }
    }
    let updated = c
        .operator_autopilot_cas_configuration(&conf)
        .map_err(|e| ui::fail(format!("Error setting Autopilot configuration: {e}")))?;
    if updated {
        ui::out("Configuration updated!");
        Ok(())
    } else {
        ui::out("Configuration could not be atomically updated, please try again");
        Err(ui::exit_silently(1))
    }
}

pub fn usage_help() -> String {
    "Usage: proconsul operator usage <subcommand> [options]

  This command has subcommands for displaying usage information. The subcommands
  default to working with services registered with the local datacenter.

  Display the number of service instances:

      $ proconsul operator usage instances"
        .to_string()
}

const USAGE_INSTANCES_FLAGS: &[Flag] = &[
    Flag::boolean(
        "billable",
        "Display only billable service info. Cannot be used with -connect.",
    ),
    Flag::boolean(
        "connect",
        "Display only Connect service info.Cannot be used with -billable.",
    ),
    Flag::boolean(
        "all-datacenters",
        "Display service counts from all datacenters.",
    ),
];

fn usage_instances_flags() -> Vec<Flag> {
    flags::with(USAGE_INSTANCES_FLAGS, &[CLIENT_FLAGS, SERVER_FLAGS])
}

pub fn usage_instances_help() -> String {
    flags::usage(
        "
Usage: proconsul operator usage instances [options]

  Retrieves usage information about the number of services registered in a given
  datacenter. By default, the datacenter of the local agent is queried.

  To retrieve the service usage data:

      $ proconsul operator usage instances

  To show only billable service instance counts:

      $ proconsul operator usage instances -billable

  To show only connect service instance counts:

      $ proconsul operator usage instances -connect
",
        &usage_instances_flags(),
    )
}

pub fn usage_instances(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&usage_instances_flags(), args, usage_instances_help)?;
    if !p.args.is_empty() {
        return Err(ui::fail(format!(
            "Too many arguments (expected 0, got {})",
            p.args.len()
        )));
    }
    let (billable, connect, all) = (
        p.bool("billable"),
        p.bool("connect"),
        p.bool("all-datacenters"),
    );
    if billable && connect {
        return Err(ui::fail("Cannot specify both -billable and -connect flags"));
    }
    let c = client(&p)?;
    let usage = c
        .operator_usage(all, p.bool("stale"))
        .map_err(|e| ui::fail(format!("Error fetching usage information: {e}")))?;
    if !connect {
        let total: u64 = usage.values().map(|u| u.billable_service_instances).sum();
        ui::out(&format!("Billable Service Instances Total: {total}"));
        for (dc, u) in &usage {
            ui::out(&format!(
                "{dc} Billable Service Instances: {}",
                u.billable_service_instances
            ));
        }
        ui::out("\nBillable Services");
        ui::out(&format!("{}\n", service_counts(&usage, true, all)));
    }
    if !billable {
        ui::out("Connect Services");
        ui::out(&service_counts(&usage, false, all));
    }
    Ok(())
}

/// Consul's `formatServiceCounts`: billable services and instances, or Connect instances by
/// kind, per datacenter (with a total when datacenters are shown), through Go's tabwriter
/// (padding 6).
fn service_counts(
    usage: &std::collections::BTreeMap<String, proconsul_types::Usage>,
    billable: bool,
    show_dc: bool,
) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut head = Vec::new();
    if show_dc {
        head.push("Datacenter".to_string());
    }
    head.push(if billable { "Services" } else { "Type" }.to_string());
    head.push("Service instances".to_string());
    rows.push(head);
    let (mut services, mut instances) = (0u64, 0u64);
    // Datacenters in order, then the Connect kinds in order (BTreeMaps both).
    for (dc, u) in usage {
        let counts: Vec<(String, u64, u64)> = if billable {
            vec![(String::new(), u.services, u.billable_service_instances)]
        } else {
            u.connect_service_instances
                .iter()
                .map(|(kind, n)| (kind.clone(), 0, *n))
                .collect()
        };
        for (kind, svcs, n) in counts {
            let mut row = Vec::new();
            if show_dc {
                row.push(dc.clone());
            }
            row.push(if billable { svcs.to_string() } else { kind });
            row.push(n.to_string());
            rows.push(row);
            services += svcs;
            instances += n;
        }
    }
    if show_dc {
        rows.push(vec![String::new(); 3]);
        rows.push(vec![
            "Total".to_string(),
            if billable {
                services.to_string()
            } else {
                String::new()
            },
            instances.to_string(),
        ]);
    }
    let cells: Vec<Vec<Vec<u8>>> = rows
        .into_iter()
        .map(|r| r.into_iter().map(String::into_bytes).collect())
        .collect();
    String::from_utf8_lossy(&ui::tabwrite(&cells, 6))
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proconsul_types::Usage;

    fn usage(services: u64, billable: u64, connect: &[(&str, u64)]) -> Usage {
        Usage {
            services,
            billable_service_instances: billable,
            connect_service_instances: connect.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            ..Usage::default()
        }
    }

    /// Consul's own expectations (`usage_instances_ce_test.go`).
    #[test]
    fn service_counts_as_consul_lays_them_out() {
        let kinds = [
            ("connect-native", 1),
            ("connect-proxy", 3),
            ("ingress-gateway", 4),
            ("mesh-gateway", 2),
            ("terminating-gateway", 5),
        ];
        let one: std::collections::BTreeMap<_, _> =
            [("dc1".to_string(), usage(10, 20, &kinds))].into();
        assert_eq!(
            service_counts(&one, true, false),
            "Services      Service instances\n10            20"
        );
        assert_eq!(
            service_counts(&one, false, false),
            "Type                     Service instances\n\
             connect-native           1\n\
             connect-proxy            3\n\
             ingress-gateway          4\n\
             mesh-gateway             2\n\
             terminating-gateway      5"
        );
        let two: std::collections::BTreeMap<_, _> = [
            ("dc1".to_string(), usage(10, 20, &kinds)),
            ("dc2".to_string(), usage(23, 33, &[("connect-native", 9)])),
        ]
        .into();
        assert_eq!(
            service_counts(&two, true, true),
            "Datacenter      Services      Service instances\n\
             dc1             10            20\n\
             dc2             23            33\n\
             \x20                             \n\
             Total           33            53"
        );
        assert!(service_counts(&two, false, true)
            .ends_with("\nTotal                                    24"));
    }
}
