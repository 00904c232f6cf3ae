//! `members`: the agent's gossip pool as Consul prints it (servers first, then by segment,
//! partition and name), filtered by a status regexp; exit 2 when nothing matches.

use std::cmp::Ordering;

use proconsul_api::{AgentMember, QueryOptions};
use proconsul_types::member_status;
use regex_lite::Regex;

use super::{client, parse_flags};
use crate::flags::{self, Flag, CLIENT_FLAGS};
use crate::ui;

const FLAGS: &[Flag] = &[
    Flag::boolean("detailed", "Provides detailed information about nodes."),
    Flag::string("filter", "Filter to use with the request"),
    Flag::string(
        "status",
        "If provided, output is filtered to only nodes matching the regular expression for \
         status.",
    ),
    Flag::boolean(
        "wan",
        "If the agent is in server mode, this can be used to return the other peers in the WAN \
         pool.",
    ),
];

fn all_flags() -> Vec<Flag> {
    flags::with(FLAGS, &[CLIENT_FLAGS])
}

pub fn help() -> String {
    flags::usage(
        "
Usage: proconsul members [options]

  Outputs the members of a running Consul agent.
",
        &all_flags(),
    )
}

const ROLE_SERVER: &str = "consul";
const ROLE_CLIENT: &str = "node";

fn tag<'a>(m: &'a AgentMember, k: &str) -> &'a str {
    m.tags.get(k).map(String::as_str).unwrap_or("")
}

fn is_default_partition(p: &str) -> bool {
    p.is_empty() || p == "default"
}

/// Fill in the tags Consul's CLI shows for the default partition: `partition=default`, and
/// `segment=<all>` on servers or `<default>` on clients without one.
fn decorate(m: &mut AgentMember) {
    if tag(m, "ap").is_empty() {
        m.tags.insert("ap".into(), "default".into());
    }
    if is_default_partition(tag(m, "ap")) {
        if tag(m, "role") == ROLE_SERVER {
            m.tags.insert("segment".into(), "<all>".into());
        } else if tag(m, "segment").is_empty() {
            m.tags.insert("segment".into(), "<default>".into());
        }
    } else {
        m.tags.insert("segment".into(), String::new());
    }
}

/// Servers first, then default-partition members, then by segment, partition and name.
fn order(a: &AgentMember, b: &AgentMember) -> Ordering {
    let server = |m: &AgentMember| tag(m, "role") != ROLE_SERVER;
    let default = |m: &AgentMember| !is_default_partition(tag(m, "ap"));
    server(a)
        .cmp(&server(b))
        .then_with(|| default(a).cmp(&default(b)))
        .then_with(|| tag(a, "segment").cmp(tag(b, "segment")))
        .then_with(|| tag(a, "ap").cmp(tag(b, "ap")))
        .then_with(|| a.name.cmp(&b.name))
}

/// Filter by status, sort and render. `None` when no member matches (Consul exits 2).
pub fn render(mut members: Vec<AgentMember>, status: &Regex, detailed: bool) -> Option<String> {
    for m in &mut members {
        decorate(m);
    }
    members.retain(|m| status.is_match(member_status::name(m.status)));
    if members.is_empty() {
        return None;
    }
    members.sort_by(order);
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(members.len() + 1);
    if detailed {
        rows.push(
            ["Node", "Address", "Status", "Tags"]
                .map(String::from)
                .to_vec(),
        );
    } else {
        rows.push(
            [
                "Node",
                "Address",
                "Status",
                "Type",
                "Build",
                "Protocol",
                "DC",
                "Partition",
                "Segment",
            ]
            .map(String::from)
            .to_vec(),
        );
    }
    for m in &members {
        let addr = ui::host_port(&m.addr, m.port);
        let status = member_status::name(m.status).to_string();
        if detailed {
            let tags = m
                .tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            rows.push(vec![m.name.clone(), addr, status, tags]);
            continue;
        }
        let build = match tag(m, "build") {
            "" => "< 0.3",
            b => b.split(':').next().unwrap_or(b),
        };
        let kind = match tag(m, "role") {
            ROLE_SERVER => "server",
            ROLE_CLIENT => "client",
            _ => {
                let blank = || String::new();
                rows.push(vec![
                    m.name.clone(),
                    addr,
                    status,
                    "unknown".into(),
                    blank(),
                    blank(),
                    blank(),
                    blank(),
                    blank(),
                ]);
                continue;
            }
        };
        rows.push(vec![
            m.name.clone(),
            addr,
            status,
            kind.to_string(),
            build.to_string(),
            tag(m, "vsn").to_string(),
            tag(m, "dc").to_string(),
            tag(m, "ap").to_string(),
            tag(m, "segment").to_string(),
        ]);
    }
    Some(ui::columnize(&rows))
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&all_flags(), args, help)?;
    let status = crate::regex::compile(p.str("status").unwrap_or(".*"))
        .map_err(|e| ui::fail(format!("Failed to compile status regexp: {e}")))?;
    let c = client(&p)?;
    let mut q: Vec<(&str, String)> = Vec::new();
    if p.bool("wan") {
        q.push(("wan", "1".into()));
    }
    if let Some(f) = p.str("filter").filter(|f| !f.is_empty()) {
        q.push(("filter", f.to_string()));
    }
    let (members, _): (Vec<AgentMember>, _) = c
        .get_json("/v1/agent/members", &q, &QueryOptions::default())
        .map_err(|e| ui::fail(format!("Error retrieving members: {e}")))?;
    match render(members, &status, p.bool("detailed")) {
        Some(out) => {
            ui::out(&out);
            Ok(())
        }
        None => Err(ui::exit_silently(2)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, addr: &str, role: &str, status: u8) -> AgentMember {
        AgentMember {
            name: name.into(),
            addr: addr.into(),
            port: 8301,
            status,
            tags: [
                ("role", role),
                ("dc", "dc1"),
                ("build", "1.22.0:abcdef"),
                ("vsn", "2"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            ..AgentMember::default()
        }
    }

    #[test]
    fn servers_first_then_names() {
        let ms = vec![
            member("web-1", "10.0.0.21", "node", 1),
            member("consul-2", "10.0.0.12", "consul", 4),
            member("consul-1", "10.0.0.11", "consul", 1),
        ];
        let out = render(ms, &Regex::new(".*").unwrap(), false).unwrap();
        assert_eq!(
            out,
            "Node      Address         Status  Type    Build   Protocol  DC   Partition  Segment\n\
             consul-1  10.0.0.11:8301  alive   server  1.22.0  2         dc1  default    <all>\n\
             consul-2  10.0.0.12:8301  failed  server  1.22.0  2         dc1  default    <all>\n\
             web-1     10.0.0.21:8301  alive   client  1.22.0  2         dc1  default    <default>"
        );
    }

    #[test]
    fn status_filter_and_no_match() {
        let ms = vec![
            member("a", "10.0.0.1", "consul", 1),
            member("b", "10.0.0.2", "node", 4),
        ];
        let out = render(ms.clone(), &Regex::new("failed").unwrap(), false).unwrap();
        assert_eq!(out.lines().count(), 2);
        assert!(out.lines().nth(1).unwrap().starts_with("b "));
        assert!(render(ms, &Regex::new("left").unwrap(), false).is_none());
    }

    #[test]
    fn detailed_tags_sorted_with_cli_additions() {
        let out = render(
            vec![member("a", "10.0.0.1", "consul", 1)],
            &Regex::new(".*").unwrap(),
            true,
        )
        .unwrap();
        assert_eq!(
            out,
            "Node  Address        Status  Tags\n\
             a     10.0.0.1:8301  alive   ap=default,build=1.22.0:abcdef,dc=dc1,role=consul,segment=<all>,vsn=2"
        );
    }
}
