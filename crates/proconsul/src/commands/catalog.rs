//! `catalog datacenters|nodes|services`: the servers' view, formatted like Consul's CLI.

use std::collections::BTreeMap;

use proconsul_api::{Node, QueryOptions, ServiceNode};
use proconsul_types::NodeServices;

use super::{client, parse_flags, query_options};
use crate::flags::{self, Flag, CLIENT_FLAGS, SERVER_FLAGS};
use crate::ui;

pub fn help() -> String {
    "Usage: proconsul catalog <subcommand> [options] [args]

  This command has subcommands for interacting with Consul's catalog. The
  catalog should not be confused with the agent, although the APIs and
  responses may be similar.

  Here are some simple examples, and more detailed examples are available
  in the subcommands or the documentation.

  List all datacenters:

      $ proconsul catalog datacenters

  List all nodes:

      $ proconsul catalog nodes

  List all services:

      $ proconsul catalog services

  For more examples, ask for subcommand help or view the documentation."
        .to_string()
}

fn no_args(p: &flags::Parsed) -> anyhow::Result<()> {
    match p.args.len() {
        0 => Ok(()),
        n => Err(ui::fail(format!(
            "Too many arguments (expected 0, got {n})"
        ))),
    }
}

/// `-node-meta key=value` (repeatable) as the API's `node-meta=key:value` parameters.
fn node_meta_query(p: &flags::Parsed) -> anyhow::Result<Vec<(&'static str, String)>> {
    p.all("node-meta")
        .into_iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => Ok(("node-meta", format!("{k}:{v}"))),
            None => Err(ui::fail(format!(
                "invalid value \"{kv}\" for flag -node-meta: Missing \"=\" value in argument: {kv}"
            ))),
        })
        .collect()
}

// ---------------------------------------------------------------- datacenters

pub fn datacenters_help() -> String {
    flags::usage(
        "
Usage: proconsul catalog datacenters [options]

  Retrieves the list of all known datacenters. This datacenters are sorted in
  ascending order based on the estimated median round trip time from the servers
  in this datacenter to the servers in the other datacenters.

  To retrieve the list of datacenters:

      $ proconsul catalog datacenters

  For a full list of options and examples, please see the Consul documentation.
",
        &flags::with(&[], &[CLIENT_FLAGS, SERVER_FLAGS]),
    )
}

pub fn datacenters(args: &[String]) -> anyhow::Result<()> {
    let spec = flags::with(&[], &[CLIENT_FLAGS, SERVER_FLAGS]);
    let p = parse_flags(&spec, args, datacenters_help)?;
    no_args(&p)?;
    let c = client(&p)?;
    match c.catalog_datacenters() {
        Ok(dcs) => dcs.iter().for_each(|dc| ui::out(dc)),
        // Consul reports the error and still exits 0.
        Err(e) => ui::err(&format!("Error listing datacenters: {e}")),
    }
    Ok(())
}

// ---------------------------------------------------------------- nodes

const NODES_FLAGS: &[Flag] = &[
    Flag::boolean(
        "detailed",
        "Output detailed information about the nodes including their addresses and metadata.",
    ),
    Flag::string("filter", "Filter to use with the request"),
    Flag::string(
        "near",
        "Node name to sort the node list in ascending order based on estimated round-trip \
         time from that node. Passing \"_agent\" will use this agent's node for sorting.",
    ),
    Flag::new(
        "node-meta",
        flags::Kind::Str,
        "key=value",
        "Metadata to filter nodes with the given key=value pairs. This flag may be specified \
         multiple times to filter on multiple sources of metadata.",
    ),
    Flag::new(
        "service",
        flags::Kind::Str,
        "id or name",
        "Service id or name to filter nodes. Only nodes which are providing the given service \
         will be returned.",
    ),
];

fn nodes_flags() -> Vec<Flag> {
    flags::with(NODES_FLAGS, &[CLIENT_FLAGS, SERVER_FLAGS])
}

pub fn nodes_help() -> String {
    flags::usage(
        r#"
Usage: proconsul catalog nodes [options]

  Retrieves the list nodes registered in a given datacenter. By default, the
  datacenter of the local agent is queried.

  To retrieve the list of nodes:

      $ proconsul catalog nodes

  To print detailed information including full node IDs, tagged addresses, and
  metadata information:

      $ proconsul catalog nodes -detailed

  To list nodes which are running a particular service:

      $ proconsul catalog nodes -service=web

  To filter by node metadata:

      $ proconsul catalog nodes -node-meta="foo=bar"

  To sort nodes by estimated round-trip time from node-web:

      $ proconsul catalog nodes -near=node-web

  For a full list of options and examples, please see the Consul documentation.
"#,
        &nodes_flags(),
    )
}

/// `k1=v1, k2=v2`, sorted by key.
fn map_to_kv(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The node table: `Node ID Address DC` (ID cut at its first `-`), or with `-detailed` the full
/// ID plus `TaggedAddresses` and `Meta`.
pub fn render_nodes(nodes: &[Node], detailed: bool) -> String {
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(nodes.len() + 1);
    if detailed {
        rows.push(
            ["Node", "ID", "Address", "DC", "TaggedAddresses", "Meta"]
                .map(String::from)
                .to_vec(),
        );
    } else {
        rows.push(["Node", "ID", "Address", "DC"].map(String::from).to_vec());
    }
    for n in nodes {
        if detailed {
            rows.push(vec![
                n.node.clone(),
                n.id.clone(),
                n.address.clone(),
                n.datacenter.clone(),
                map_to_kv(&n.tagged_addresses),
                map_to_kv(&n.meta),
            ]);
        } else {
            let id = match n.id.find('-') {
                Some(i) if i > 0 => &n.id[..i],
                _ => &n.id,
            };
            rows.push(vec![
                n.node.clone(),
                id.to_string(),
                n.address.clone(),
                n.datacenter.clone(),
            ]);
        }
    }
    ui::columnize(&rows)
}

pub fn nodes(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&nodes_flags(), args, nodes_help)?;
    no_args(&p)?;
    let c = client(&p)?;
    let mut q = node_meta_query(&p)?;
    if let Some(near) = p.str("near") {
        q.push(("near", near.to_string()));
    }
    if let Some(filter) = p.str("filter") {
        q.push(("filter", filter.to_string()));
    }
    let opts = query_options(&p);
    let nodes: Vec<Node> = match p.str("service").filter(|s| !s.is_empty()) {
        Some(svc) => {
            let path = format!("/v1/catalog/service/{}", path_escape(svc));
            let (rows, _): (Vec<ServiceNode>, _) = c
                .get_json(&path, &q, &opts)
                .map_err(|e| ui::fail(format!("Error listing nodes for service: {e}")))?;
            rows.into_iter()
                .map(|s| Node {
                    id: s.id,
                    node: s.node,
                    address: s.address,
                    datacenter: s.datacenter,
                    tagged_addresses: s.tagged_addresses,
                    meta: s.node_meta,
                    create_index: s.create_index,
                    modify_index: s.modify_index,
                })
                .collect()
        }
        None => {
            c.get_json("/v1/catalog/nodes", &q, &opts)
                .map_err(|e| ui::fail(format!("Error listing nodes: {e}")))?
                .0
        }
    };
    if nodes.is_empty() {
        ui::err("No nodes match the given query - try expanding your search.");
        return Ok(());
    }
    ui::out(&render_nodes(&nodes, p.bool("detailed")));
    Ok(())
}

/// Minimal path escaping for a service or node name placed in a URL path.
fn path_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------- services

const SERVICES_FLAGS: &[Flag] = &[
    Flag::new(
        "node",
        flags::Kind::Str,
        "id or name",
        "Node id or name for which to list services.",
    ),
    Flag::new(
        "node-meta",
        flags::Kind::Str,
        "key=value",
        "Metadata to filter nodes with the given key=value pairs. If specified, only services \
         running on nodes matching the given metadata will be returned. This flag may be \
         specified multiple times to filter on multiple sources of metadata.",
    ),
    Flag::boolean(
        "tags",
        "Display each service's tags as a comma-separated list beside each service entry.",
    ),
];

fn services_flags() -> Vec<Flag> {
    flags::with(SERVICES_FLAGS, &[CLIENT_FLAGS, SERVER_FLAGS])
}

pub fn services_help() -> String {
    flags::usage(
        r#"
Usage: proconsul catalog services [options]

  Retrieves the list services registered in a given datacenter. By default, the
  datacenter of the local agent is queried.

  To retrieve the list of services:

      $ proconsul catalog services

  To include the services' tags in the output:

      $ proconsul catalog services -tags

  To list services which run on a particular node:

      $ proconsul catalog services -node=web

  To filter services on node metadata:

      $ proconsul catalog services -node-meta="foo=bar"

  For a full list of options and examples, please see the Consul documentation.
"#,
        &services_flags(),
    )
}

/// Service names one per line, or with `tags` a tabwriter table of name and sorted tags.
pub fn render_services(services: &BTreeMap<String, Vec<String>>, tags: bool) -> String {
    if !tags {
        return services.keys().cloned().collect::<Vec<_>>().join("\n");
    }
    let rows: Vec<Vec<Vec<u8>>> = services
        .iter()
        .map(|(name, t)| {
            let mut t = t.clone();
            t.sort();
            vec![name.as_bytes().to_vec(), t.join(",").into_bytes()]
        })
        .collect();
    String::from_utf8_lossy(&ui::tabwrite(&rows, 6))
        .trim()
        .to_string()
}

pub fn services(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&services_flags(), args, services_help)?;
    no_args(&p)?;
    let c = client(&p)?;
    let q = node_meta_query(&p)?;
    let services: BTreeMap<String, Vec<String>> = match p.str("node").filter(|s| !s.is_empty()) {
        Some(node) => {
            let path = format!("/v1/catalog/node/{}", path_escape(node));
            let (ns, _): (Option<NodeServices>, _) = c
                .get_json(&path, &q, &QueryOptions::default())
                .map_err(|e| ui::fail(format!("Error listing services for node: {e}")))?;
            let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for s in ns.map(|n| n.services).unwrap_or_default().into_values() {
                out.entry(s.service).or_default().extend(s.tags);
            }
            out
        }
        None => {
            c.get_json("/v1/catalog/services", &q, &QueryOptions::default())
                .map_err(|e| ui::fail(format!("Error listing services: {e}")))?
                .0
        }
    };
    if services.is_empty() {
        ui::err("No services match the given query - try expanding your search.");
        return Ok(());
    }
    ui::out(&render_services(&services, p.bool("tags")));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_table() {
        let nodes = vec![
            Node {
                node: "consul-server-1".into(),
                id: "a4e2b4d8-1111-2222-3333-444455556666".into(),
                address: "10.0.0.11".into(),
                datacenter: "dc1".into(),
                ..Node::default()
            },
            Node {
                node: "web".into(),
                id: "".into(),
                address: "10.0.0.2".into(),
                datacenter: "dc1".into(),
                meta: [("rack".to_string(), "r1".to_string())].into(),
                ..Node::default()
            },
        ];
        assert_eq!(
            render_nodes(&nodes, false),
            "Node             ID        Address    DC\n\
             consul-server-1  a4e2b4d8  10.0.0.11  dc1\n\
             web                        10.0.0.2   dc1"
        );
        assert!(render_nodes(&nodes, true).ends_with("rack=r1"));
    }

    #[test]
    fn services_with_tags() {
        let s: BTreeMap<String, Vec<String>> = [
            ("consul".to_string(), vec![]),
            ("web".to_string(), vec!["v2".to_string(), "v1".to_string()]),
        ]
        .into();
        assert_eq!(render_services(&s, false), "consul\nweb");
        // Go's tabwriter pads the first cell even when the tags are empty.
        assert_eq!(render_services(&s, true), "consul      \nweb         v1,v2");
    }
}
