//! `rtt [-wan] node1 [node2]`: estimate the round-trip time between two nodes from their
//! network coordinates (Consul's `command/rtt`), without sending a packet: LAN coordinates
//! from `/v1/coordinate/nodes`, or with `-wan` the servers' from `/v1/coordinate/datacenters`
//! (names as `node.dc`). Coordinates of different segments or areas are never compared.

use std::collections::BTreeMap;

use proconsul_api::QueryOptions;
use proconsul_types::Coord;

use super::{client, parse_flags};
use crate::flags::{self, Flag, CLIENT_FLAGS};
use crate::ui;

const FLAGS: &[Flag] = &[Flag::boolean(
    "wan",
    "Use WAN coordinates instead of LAN coordinates.",
)];

fn all_flags() -> Vec<Flag> {
    flags::with(FLAGS, &[CLIENT_FLAGS])
}

pub fn help() -> String {
    flags::usage(
        "
Usage: proconsul rtt [options] node1 [node2]

  Estimates the round trip time between two nodes using Consul's network
  coordinate model of the cluster.

  At least one node name is required. If the second node name isn't given, it
  is set to the agent's node name. Note that these are node names as known to
  Consul as \"consul members\" would show, not IP addresses.

  By default, the two nodes are assumed to be nodes in the local datacenter
  and the LAN coordinates are used. If the -wan option is given, then the WAN
  coordinates are used, and the node names must be suffixed by a period and
  the datacenter (eg. \"myserver.dc1\").

  It is not possible to measure between LAN coordinates and WAN coordinates
  because they are maintained by independent Serf gossip areas, so they are
  not compatible.
",
        &all_flags(),
    )
}

/// Consul's `CoordinateSet.Intersect`: the default segment, unless either node is in exactly
/// one segment (a client), whose segment then wins.
fn intersect<'a>(
    a: &'a BTreeMap<String, Coord>,
    b: &'a BTreeMap<String, Coord>,
) -> (Option<&'a Coord>, Option<&'a Coord>) {
    let mut segment = "";
    if a.len() == 1 {
        segment = a.keys().next().map(String::as_str).unwrap_or("");
    }
    if b.len() == 1 {
        segment = b.keys().next().map(String::as_str).unwrap_or("");
    }
    (a.get(segment), b.get(segment))
}

/// Go's `%q` for the names we print (ASCII names quote the same way).
fn quoted(s: &str) -> String {
    format!("{s:?}")
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&all_flags(), args, help)?;
    let mut nodes = p.args.clone();
    if nodes.is_empty() || nodes.len() > 2 {
        ui::err("One or two node names must be specified");
        ui::err("");
        ui::err(&help());
        return Err(ui::exit_silently(1));
    }
    let c = client(&p)?;
    let wan = p.bool("wan");
    let (source, c1, c2) = if wan {
        if nodes.len() < 2 {
            let me = c
                .agent_self()
                .map_err(|e| ui::fail(format!("Unable to look up agent info: {e}")))?;
            let name = me["Config"]["NodeName"].as_str().unwrap_or_default();
            let dc = me["Config"]["Datacenter"].as_str().unwrap_or_default();
            nodes.push(format!("{name}.{dc}"));
        }
        let split = |n: &str| -> Option<(String, String)> {
            let parts: Vec<&str> = n.split('.').collect();
            match parts.as_slice() {
                [node, dc] => Some((node.to_string(), dc.to_string())),
                _ => None,
            }
        };
        let (Some((node1, dc1)), Some((node2, dc2))) = (split(&nodes[0]), split(&nodes[1])) else {
            return Err(ui::fail(
                "Node names must be specified as <node name>.<datacenter> with -wan",
            ));
        };
        let dcs = c
            .coordinate_datacenters()
            .map_err(|e| ui::fail(format!("Error getting coordinates: {e}")))?;
        // Only coordinates of the same area are comparable.
        let (mut area1, mut area2) = (None, None);
        let (mut c1, mut c2) = (None, None);
        let mut found = false;
        'search: for dc in &dcs {
            for entry in &dc.coordinates {
                if dc.datacenter == dc1 && entry.node.eq_ignore_ascii_case(&node1) {
                    area1 = Some(dc.area_id.clone());
                    c1 = Some(entry.coord.clone());
                }
                if dc.datacenter == dc2 && entry.node.eq_ignore_ascii_case(&node2) {
                    area2 = Some(dc.area_id.clone());
                    c2 = Some(entry.coord.clone());
                }
                if area1 == area2 && c1.is_some() && c2.is_some() {
                    found = true;
                    break 'search;
                }
            }
        }
        if !found {
            (c1, c2) = (None, None);
        }
        ("WAN", c1, c2)
    } else {
        if nodes.len() < 2 {
            let name = c
                .agent_node_name()
                .map_err(|e| ui::fail(format!("Unable to look up agent info: {e}")))?;
            nodes.push(name);
        }
        let (entries, _) = c
            .coordinate_nodes(&QueryOptions::default())
            .map_err(|e| ui::fail(format!("Error getting coordinates: {e}")))?;
        let (mut cs1, mut cs2) = (BTreeMap::new(), BTreeMap::new());
        for e in entries {
            if e.node.eq_ignore_ascii_case(&nodes[0]) {
                cs1.insert(e.segment.clone(), e.coord.clone());
            }
            if e.node.eq_ignore_ascii_case(&nodes[1]) {
                cs2.insert(e.segment.clone(), e.coord.clone());
            }
        }
        let (a, b) = intersect(&cs1, &cs2);
        ("LAN", a.cloned(), b.cloned())
    };
    let Some(c1) = c1 else {
        return Err(ui::fail(format!(
            "Could not find a coordinate for node {}",
            quoted(&nodes[0])
        )));
    };
    let Some(c2) = c2 else {
        return Err(ui::fail(format!(
            "Could not find a coordinate for node {}",
            quoted(&nodes[1])
        )));
    };
    let Some(secs) = c1.distance_secs(&c2) else {
        return Err(ui::fail("coordinate dimensionality does not match"));
    };
    ui::out(&format!(
        "Estimated {} <-> {} rtt: {:.3} ms (using {source} coordinates)",
        nodes[0],
        nodes[1],
        secs * 1000.0
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(x: f64) -> Coord {
        Coord {
            vec: vec![x],
            ..Default::default()
        }
    }

    #[test]
    fn segments_intersect_like_consul() {
        let mut server = BTreeMap::new();
        server.insert(String::new(), c(1.0));
        server.insert("alpha".to_string(), c(2.0));
        let mut client = BTreeMap::new();
        client.insert("alpha".to_string(), c(3.0));
        let (a, b) = intersect(&server, &client);
        assert_eq!((a, b), (Some(&c(2.0)), Some(&c(3.0))));
        let mut plain = BTreeMap::new();
        plain.insert(String::new(), c(4.0));
        let (a, b) = intersect(&server, &plain);
        assert_eq!((a, b), (Some(&c(1.0)), Some(&c(4.0))));
        assert_eq!(intersect(&plain, &BTreeMap::new()), (Some(&c(4.0)), None));
    }
}
