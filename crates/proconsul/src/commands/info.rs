//! `info`: the agent's debugging statistics in Consul's layout, `section:` lines followed by
//! sorted `\tkey = value` lines, sections sorted.
//!
//! Sections the agent reports under `Stats` of `/v1/agent/self` (`raft` on servers) are
//! printed as given. Consul's other sections (`agent`, `build`, `consul`, `runtime`,
//! `serf_lan`) are assembled here from the agent's other endpoints when the agent does not
//! report them itself; `runtime` then describes this CLI binary's platform, which is the
//! agent's when, as usual, `info` runs on the agent's host.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{client, parse_flags};
use crate::flags::{self, CLIENT_FLAGS};
use crate::ui;

type Section = BTreeMap<String, String>;

pub fn help() -> String {
    flags::usage(
        "Usage: proconsul info [options]

  Provides debugging information for operators",
        CLIENT_FLAGS,
    )
}

/// A stats value as Go's `%s` prints the strings Consul's agent reports.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Render sections in Consul's layout (no trailing newline).
pub fn render(sections: &BTreeMap<String, Section>) -> String {
    let mut lines = Vec::new();
    for (name, kv) in sections {
        lines.push(format!("{name}:"));
        for (k, v) in kv {
            lines.push(format!("\t{k} = {v}"));
        }
    }
    lines.join("\n")
}

/// Go's names for the machine architecture (`GOARCH`).
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64",
        other => other,
    }
}

fn runtime_section() -> Section {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut s = Section::new();
    s.insert("arch".into(), go_arch().into());
    s.insert("os".into(), std::env::consts::OS.into());
    s.insert("cpu_count".into(), cpus.to_string());
    s.insert("max_procs".into(), cpus.to_string());
    s.insert("version".into(), env!("PROCONSUL_RUSTC_VERSION").into());
    s
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(CLIENT_FLAGS, args, help)?;
    let c = client(&p)?;
    let me = c
        .agent_self()
        .map_err(|e| ui::fail(format!("Error querying agent: {e}")))?;
    let Some(stats) = me.get("Stats").and_then(Value::as_object) else {
        return Err(ui::fail(format!(
            "Agent response did not contain 'Stats' key: {me}"
        )));
    };
    let mut sections: BTreeMap<String, Section> = BTreeMap::new();
    for (name, sub) in stats {
        match sub {
            Value::Object(m) => {
                sections.insert(
                    name.clone(),
                    m.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
                );
            }
            // A section the agent has nothing for (`raft` on a client).
            Value::Null => {}
            other => {
                return Err(ui::fail(format!("Got invalid subkey in stats: {other}")));
            }
        }
    }

    let cfg = &me["Config"];
    let server = cfg["Server"].as_bool().unwrap_or(false);
    if !sections.contains_key("build") {
        let mut s = Section::new();
        s.insert("prerelease".into(), String::new());
        s.insert("revision".into(), text(&cfg["Revision"]));
        s.insert("version".into(), text(&cfg["Version"]));
        s.insert("version_metadata".into(), String::new());
        sections.insert("build".into(), s);
    }
    if !sections.contains_key("agent") {
        let mut s = Section::new();
        if let Ok(checks) = c.agent_checks() {
            let kind = |k: &str| {
                checks
                    .values()
                    .filter(|c| c.check_type == k)
                    .count()
                    .to_string()
            };
            s.insert("check_monitors".into(), kind("script"));
            s.insert("check_ttls".into(), kind("ttl"));
            s.insert("checks".into(), checks.len().to_string());
        }
        if let Ok(services) = c.agent_services() {
            s.insert("services".into(), services.len().to_string());
        }
        sections.insert("agent".into(), s);
    }
    let members = c.agent_members(false).ok();
    if !sections.contains_key("consul") {
        let mut s = Section::new();
        s.insert("server".into(), server.to_string());
        if server {
            let leader = sections
                .get("raft")
                .and_then(|r| r.get("state"))
                .is_some_and(|st| st == "Leader");
            s.insert("leader".into(), leader.to_string());
            s.insert("leader_addr".into(), c.status_leader().unwrap_or_default());
            s.insert(
                "bootstrap".into(),
                (me["DebugConfig"]["BootstrapExpect"].as_u64() == Some(1)).to_string(),
            );
            if let Ok(dcs) = c.catalog_datacenters() {
                s.insert("known_datacenters".into(), dcs.len().to_string());
            }
        } else if let Some(m) = &members {
            let known = m
                .iter()
                .filter(|m| m.tags.get("role").map(String::as_str) == Some("consul"))
                .count();
            s.insert("known_servers".into(), known.to_string());
        }
        sections.insert("consul".into(), s);
    }
    if !sections.contains_key("serf_lan") {
        if let Some(m) = &members {
            use proconsul_types::member_status::{FAILED, LEFT};
            let mut s = Section::new();
            s.insert("members".into(), m.len().to_string());
            let count = |st: u8| m.iter().filter(|m| m.status == st).count().to_string();
            s.insert("failed".into(), count(FAILED));
            s.insert("left".into(), count(LEFT));
            sections.insert("serf_lan".into(), s);
        }
    }
    sections
        .entry("runtime".into())
        .or_insert_with(runtime_section);
    ui::out(&render(&sections));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consul_layout() {
        let mut sections = BTreeMap::new();
        let raft: Section = [("term", "2"), ("state", "Leader")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        sections.insert("raft".to_string(), raft);
        sections.insert("agent".to_string(), Section::new());
        assert_eq!(
            render(&sections),
            "agent:\nraft:\n\tstate = Leader\n\tterm = 2"
        );
    }
}
