//! `maint [-enable|-disable] [-service=id] [-reason=...]`: node or service maintenance mode,
//! or with no flags a listing of what is in maintenance (Consul's texts).

use super::{client, parse_flags};
use crate::flags::{self, Flag, CLIENT_FLAGS};
use crate::ui;

const FLAGS: &[Flag] = &[
    Flag::boolean("enable", "Enable maintenance mode."),
    Flag::boolean("disable", "Disable maintenance mode."),
    Flag::string("reason", "Text describing the maintenance reason."),
    Flag::string(
        "service",
        "Control maintenance mode for a specific service ID.",
    ),
];

fn all_flags() -> Vec<Flag> {
    flags::with(FLAGS, &[CLIENT_FLAGS])
}

pub fn help() -> String {
    flags::usage(
        r#"
Usage: proconsul maint [options]

  Places a node or service into maintenance mode. During maintenance mode,
  the node or service will be excluded from all queries through the DNS
  or API interfaces, effectively taking it out of the pool of available
  nodes. This is done by registering an additional critical health check.

  When enabling maintenance mode for a node or service, you may optionally
  specify a reason string. This string will appear in the "Notes" field
  of the critical health check which is registered against the node or
  service. If no reason is provided, a default value will be used.

  Maintenance mode is persistent, and will be restored in the event of an
  agent restart. It is therefore required to disable maintenance mode on
  a given node or service before it will be placed back into the pool.

  By default, we operate on the node as a whole. By specifying the
  "-service" argument, this behavior can be changed to enable or disable
  only a specific service.

  If no arguments are given, the agent's maintenance status will be shown.
  This will return blank if nothing is currently under maintenance.
"#,
        &all_flags(),
    )
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&all_flags(), args, help)?;
    let (enable, disable) = (p.bool("enable"), p.bool("disable"));
    let reason = p.str("reason").unwrap_or_default();
    let service = p.str("service").unwrap_or_default();
    if enable && disable {
        return Err(ui::fail("Only one of -enable or -disable may be provided"));
    }
    if !enable && !reason.is_empty() {
        return Err(ui::fail("Reason may only be provided with -enable"));
    }
    if !enable && !disable && !service.is_empty() {
        return Err(ui::fail("Service requires either -enable or -disable"));
    }
    let c = client(&p)?;
    let node = c
        .agent_node_name()
        .map_err(|e| ui::fail(format!("Error querying Consul agent: {e}")))?;

    if !enable && !disable {
        let checks = c
            .agent_checks()
            .map_err(|e| ui::fail(format!("Error getting checks: {e}")))?;
        for check in checks.values() {
            if check.check_id == "_node_maintenance" {
                ui::out("Node:");
                ui::out(&format!("  Name:   {node}"));
                ui::out(&format!("  Reason: {}", check.notes));
                ui::out("");
            } else if check.check_id.starts_with("_service_maintenance:") {
                ui::out("Service:");
                ui::out(&format!("  ID:     {}", check.service_id));
                ui::out(&format!("  Reason: {}", check.notes));
                ui::out("");
            }
        }
        return Ok(());
    }

    let verb = if enable { "enabling" } else { "disabling" };
    let state = if enable { "enabled" } else { "disabled" };
    if service.is_empty() {
        c.agent_node_maintenance(enable, reason)
            .map_err(|e| ui::fail(format!("Error {verb} node maintenance: {e}")))?;
        ui::out(&format!("Node maintenance is now {state}"));
    } else {
        c.agent_service_maintenance(service, enable, reason)
            .map_err(|e| ui::fail(format!("Error {verb} service maintenance: {e}")))?;
        ui::out(&format!(
            "Service maintenance is now {state} for {service:?}"
        ));
    }
    Ok(())
}
