//! Records from catalog data: health filtering, SRV weights, TTLs, A/AAAA/CNAME/SRV/TXT/SOA/NS.
//!
//! Pure functions of backend data and configuration; no I/O. The one impurity is the shuffle of
//! service instances, which Consul does per query so clients spread their load.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use proconsul_types::{health, CheckServiceNode, Node};

use crate::name::encode_hex_ip;
use crate::SoaSettings;

/// Records for one answer: the answer and additional sections.
#[derive(Debug, Default)]
pub(crate) struct Records {
    pub answers: Vec<Record>,
    pub additionals: Vec<Record>,
}

/// Whole seconds, saturating.
pub(crate) fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// Is a check status disqualifying? Maintenance checks carry `critical` in Consul; the
/// `maintenance` spelling is treated the same way.
fn is_critical(status: &str) -> bool {
    status == health::CRITICAL || status == health::MAINT
}

/// Consul's `CheckServiceNodes.Filter(onlyPassing)`: drop any instance with a critical check
/// (node or service level, serfHealth and maintenance included); with `only_passing` drop any
/// instance with a check that is not passing.
pub(crate) fn is_healthy(csn: &CheckServiceNode, only_passing: bool) -> bool {
    csn.checks.iter().all(|c| {
        if only_passing {
            c.status == health::PASSING
        } else {
            !is_critical(&c.status)
        }
    })
}

/// SRV weight: `Weights.Warning` when a check of this instance (or its node) warns, else
/// `Weights.Passing`. Negative or oversized weights are clamped into the u16 range.
pub(crate) fn weight(csn: &CheckServiceNode) -> u16 {
    let relevant = csn
        .checks
        .iter()
        .filter(|c| c.service_id.is_empty() || c.service_id == csn.service.id);
    let mut warning = false;
    for c in relevant {
        if is_critical(&c.status) {
            return 0;
        }
        if c.status != health::PASSING {
            warning = true;
        }
    }
    let w = if warning {
        csn.service.weights.warning
    } else {
        csn.service.weights.passing
    };
    u16::try_from(w.max(0)).unwrap_or(u16::MAX)
}

/// `service_ttl` lookup: an exact (case-insensitive) key, else the longest `prefix*` key that
/// matches (`*` alone matches everything), else zero.
pub(crate) fn service_ttl(table: &[(String, Duration)], service: &str) -> u32 {
    if let Some((_, d)) = table
        .iter()
        .find(|(k, _)| !k.ends_with('*') && k.eq_ignore_ascii_case(service))
    {
        return secs(*d);
    }
    table
        .iter()
        .filter_map(|(k, d)| {
            let prefix = k.strip_suffix('*')?;
            let matches = service.len() >= prefix.len()
                && service.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes());
            matches.then_some((prefix.len(), *d))
        })
        .max_by_key(|(len, _)| *len)
        .map_or(0, |(_, d)| secs(d))
}

/// RFC 1464 `key=value`: backquote `` ` `` and `=` in the key, and its leading and trailing
/// spaces; backquote `` ` `` in the value.
pub(crate) fn rfc1464(key: &str, value: &str) -> String {
    let escaped = key.replace('`', "``").replace('=', "`=");
    let body = escaped.trim_matches(' ');
    let lead = escaped.len() - escaped.trim_start_matches(' ').len();
    let trail = if body.is_empty() {
        0
    } else {
        escaped.len() - escaped.trim_end_matches(' ').len()
    };
    format!(
        "{}{}{}={}",
        "` ".repeat(lead),
        body,
        "` ".repeat(trail),
        value.replace('`', "``")
    )
}

/// Node meta as TXT records: `key=value` (RFC 1464), except keys starting with `rfc1035-`,
/// whose value is published verbatim.
pub(crate) fn meta_txt(name: &Name, node: &Node, ttl: u32) -> Vec<Record> {
    node.meta
        .iter()
        .map(|(k, v)| {
            let txt = if k.to_ascii_lowercase().starts_with("rfc1035-") {
                v.clone()
            } else {
                rfc1464(k, v)
            };
            Record::from_rdata(name.clone(), ttl, RData::TXT(TXT::new(vec![txt])))
        })
        .collect()
}

/// An absolute name from dotted parts (`["web1", "node", "dc1", "consul."]`). `None` when a
/// part cannot be a DNS name (empty, label over 63 bytes, name over 255).
pub(crate) fn fqdn(parts: &[&str]) -> Option<Name> {
    let labels: Vec<&[u8]> = parts
        .iter()
        .flat_map(|p| p.split('.'))
        .filter(|l| !l.is_empty())
        .map(str::as_bytes)
        .collect();
    if labels.is_empty() {
        return None;
    }
    let mut name = Name::from_labels(labels).ok()?;
    name.set_fqdn(true);
    Some(name)
}

/// An A or AAAA record for `ip` if the query type wants that family.
pub(crate) fn addr_record(name: &Name, ip: IpAddr, ttl: u32, qtype: RecordType) -> Option<Record> {
    let rdata = match ip {
        IpAddr::V4(v4) if matches!(qtype, RecordType::A | RecordType::ANY | RecordType::SRV) => {
            RData::A(A(v4))
        }
        IpAddr::V6(v6) if matches!(qtype, RecordType::AAAA | RecordType::ANY | RecordType::SRV) => {
            RData::AAAA(AAAA(v6))
        }
        _ => return None,
    };
    Some(Record::from_rdata(name.clone(), ttl, rdata))
}

/// The name/addresses part of a service answer that does not depend on the query.
pub(crate) struct ServiceCtx<'a> {
    pub qname: &'a Name,
    pub qtype: RecordType,
    /// The datacenter the lookup was for (the local one when the name had none).
    pub datacenter: &'a str,
    /// Response domain with trailing dot (`consul.` or the alt domain the query used).
    pub domain: &'a str,
    pub ttl: u32,
    pub a_record_limit: usize,
}

/// SRV answers for healthy instances, with glue A/AAAA for `<node>.node.` and `<hex>.addr.`
/// targets in the additional section. Instances on the same node, address and port collapse.
pub(crate) fn service_srv(ctx: &ServiceCtx<'_>, instances: &[&CheckServiceNode]) -> Records {
    let mut out = Records::default();
    let mut seen = HashSet::new();
    let mut glued = HashSet::new();
    for csn in instances {
        let (svc_addr, node_addr) = (csn.service.address.trim(), csn.node.address.trim());
        if !seen.insert((csn.node.node.as_str(), svc_addr, csn.service.port)) {
            continue;
        }
        let (target, glue_ip) = if svc_addr.is_empty() || svc_addr == node_addr {
            match node_addr.parse::<IpAddr>() {
                Ok(ip) => (
                    fqdn(&[&csn.node.node, "node", ctx.datacenter, ctx.domain]),
                    Some(ip),
                ),
                Err(_) => (fqdn(&[node_addr]), None),
            }
        } else {
            match svc_addr.parse::<IpAddr>() {
                Ok(ip) => (
                    fqdn(&[&encode_hex_ip(ip), "addr", ctx.datacenter, ctx.domain]),
                    Some(ip),
                ),
                Err(_) => (fqdn(&[svc_addr]), None),
            }
        };
        let Some(target) = target else {
            tracing::debug!(node = %csn.node.node, "dns: skipping instance without a usable name");
            continue;
        };
        let srv = SRV::new(1, weight(csn), csn.service.port, target.clone());
        out.answers.push(Record::from_rdata(
            ctx.qname.clone(),
            ctx.ttl,
            RData::SRV(srv),
        ));
        if let Some(ip) = glue_ip {
            if glued.insert(target.to_lowercase()) {
                out.additionals
                    .extend(addr_record(&target, ip, ctx.ttl, RecordType::SRV));
            }
        }
    }
    out
}

/// A/AAAA (and ANY) answers for healthy instances: the service address, else the node's. A
/// hostname address becomes a CNAME, used only when no instance has an IP (as Consul does).
pub(crate) fn service_addrs(ctx: &ServiceCtx<'_>, instances: &[&CheckServiceNode]) -> Records {
    let mut out = Records::default();
    let mut seen = HashSet::new();
    let mut cname: Option<Record> = None;
    for csn in instances {
        let (svc_addr, node_addr) = (csn.service.address.trim(), csn.node.address.trim());
        let addr = if svc_addr.is_empty() {
            node_addr
        } else {
            svc_addr
        };
        let ip = match addr.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            // A service address that names this very query would loop: use the node's IP.
            Err(_) if fqdn(&[addr]).is_some_and(|n| n == *ctx.qname) => node_addr.parse().ok(),
            Err(_) => None,
        };
        match ip {
            Some(ip) => {
                if !seen.insert(ip) {
                    continue;
                }
                if let Some(r) = addr_record(ctx.qname, ip, ctx.ttl, ctx.qtype) {
                    out.answers.push(r);
                    if ctx.a_record_limit > 0 && out.answers.len() >= ctx.a_record_limit {
                        break;
                    }
                }
            }
            None if cname.is_none() => {
                cname = fqdn(&[addr]).map(|target| {
                    Record::from_rdata(ctx.qname.clone(), ctx.ttl, RData::CNAME(CNAME(target)))
                });
            }
            None => {}
        }
    }
    if out.answers.is_empty() {
        out.answers.extend(cname);
    }
    out
}

/// A node lookup: A/AAAA (or CNAME for a hostname address) and its meta as TXT — in the answer
/// for TXT and ANY, in the additional section for A/AAAA when `meta_in_extra`.
pub(crate) fn node_records(
    qname: &Name,
    qtype: RecordType,
    node: &Node,
    ttl: u32,
    meta_in_extra: bool,
) -> Records {
    let mut out = Records::default();
    if qtype != RecordType::TXT {
        let addr = node.address.trim();
        match addr.parse::<IpAddr>() {
            Ok(ip) => out.answers.extend(addr_record(qname, ip, ttl, qtype)),
            Err(_) => {
                if let Some(target) = fqdn(&[addr]) {
                    out.answers.push(Record::from_rdata(
                        qname.clone(),
                        ttl,
                        RData::CNAME(CNAME(target)),
                    ));
                }
            }
        }
    }
    match qtype {
        RecordType::TXT | RecordType::ANY => out.answers.extend(meta_txt(qname, node, ttl)),
        _ if meta_in_extra && !out.answers.is_empty() => {
            out.additionals.extend(meta_txt(qname, node, ttl))
        }
        _ => {}
    }
    out
}

/// The zone's SOA: `ns.<domain> hostmaster.<domain>`, TTL = minimum (the negative-cache TTL).
pub(crate) fn soa(domain: &str, soa: &SoaSettings, serial: u32) -> Option<Record> {
    let zone = fqdn(&[domain])?;
    let rdata = SOA::new(
        fqdn(&["ns", domain])?,
        fqdn(&["hostmaster", domain])?,
        serial,
        i32::try_from(soa.refresh).unwrap_or(i32::MAX),
        i32::try_from(soa.retry).unwrap_or(i32::MAX),
        i32::try_from(soa.expire).unwrap_or(i32::MAX),
        soa.min_ttl,
    );
    Some(Record::from_rdata(zone, soa.min_ttl, RData::SOA(rdata)))
}

/// NS records for up to three servers (`<node>.node.<dc>.<domain>`), with their glue.
pub(crate) fn nameservers(
    servers: &[(String, IpAddr)],
    datacenter: &str,
    domain: &str,
    ttl: u32,
) -> Records {
    let mut out = Records::default();
    let Some(zone) = fqdn(&[domain]) else {
        return out;
    };
    for (node, ip) in servers.iter().take(3) {
        let Some(target) = fqdn(&[&node.to_ascii_lowercase(), "node", datacenter, domain]) else {
            continue;
        };
        out.answers.push(Record::from_rdata(
            zone.clone(),
            ttl,
            RData::NS(NS(target.clone())),
        ));
        out.additionals
            .extend(addr_record(&target, *ip, ttl, RecordType::ANY));
    }
    out
}

/// A PTR answer pointing at `target`.
pub(crate) fn ptr(qname: &Name, target: Name) -> Record {
    Record::from_rdata(qname.clone(), 0, RData::PTR(PTR(target)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proconsul_types::{HealthCheck, NodeService, Weights};

    fn check(service_id: &str, status: &str) -> HealthCheck {
        HealthCheck {
            check_id: format!("{service_id}-c"),
            service_id: service_id.into(),
            status: status.into(),
            ..Default::default()
        }
    }

    fn csn(checks: Vec<HealthCheck>) -> CheckServiceNode {
        CheckServiceNode {
            node: Node::default(),
            service: NodeService {
                id: "web1".into(),
                service: "web".into(),
                weights: Weights {
                    passing: 10,
                    warning: 2,
                },
                ..Default::default()
            },
            checks,
        }
    }

    #[test]
    fn health_filter_and_weights() {
        let ok = csn(vec![check("", "passing"), check("web1", "passing")]);
        assert!(is_healthy(&ok, true));
        assert_eq!(weight(&ok), 10);
        let warn = csn(vec![check("", "passing"), check("web1", "warning")]);
        assert!(is_healthy(&warn, false));
        assert!(!is_healthy(&warn, true));
        assert_eq!(weight(&warn), 2);
        let node_down = csn(vec![check("", "critical"), check("web1", "passing")]);
        assert!(!is_healthy(&node_down, false));
        let maint = csn(vec![check("", "maintenance")]);
        assert!(!is_healthy(&maint, false));
        // A warning on another service of the node does not change this one's weight.
        let other = csn(vec![check("db1", "warning")]);
        assert_eq!(weight(&other), 10);
    }

    #[test]
    fn ttl_table() {
        let t = vec![
            ("*".to_string(), Duration::from_secs(5)),
            ("web*".to_string(), Duration::from_secs(10)),
            ("web-api*".to_string(), Duration::from_secs(20)),
            ("db".to_string(), Duration::from_secs(30)),
        ];
        assert_eq!(service_ttl(&t, "db"), 30);
        assert_eq!(service_ttl(&t, "DB"), 30);
        assert_eq!(service_ttl(&t, "dbx"), 5);
        assert_eq!(service_ttl(&t, "web"), 10);
        assert_eq!(service_ttl(&t, "web-api-v2"), 20);
        assert_eq!(service_ttl(&[], "web"), 0);
    }

    #[test]
    fn rfc1464_encoding() {
        assert_eq!(rfc1464("key", "value"), "key=value");
        assert_eq!(rfc1464("k=y", "v`l"), "k`=y=v``l");
        assert_eq!(rfc1464("  k ", "v"), "` ` k` =v");
        assert_eq!(rfc1464("a`b", "=="), "a``b===");
    }

    #[test]
    fn names() {
        assert_eq!(
            fqdn(&["web1", "node", "dc1", "consul."])
                .unwrap()
                .to_ascii(),
            "web1.node.dc1.consul."
        );
        assert!(fqdn(&[""]).is_none());
        assert!(fqdn(&[&"x".repeat(64)]).is_none());
    }
}
