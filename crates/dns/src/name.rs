//! Query names → a typed [`Query`].
//!
//! Pure string work on lower-cased labels: no backend, no records. Consul's rules: the name
//! minus the domain is scanned from the right for a kind label (`service`, `node`, `addr`, ...);
//! what is left of it names the thing, what is right of it is the datacenter. For SRV queries a
//! label starting with `_` also ends the scan (RFC 2782 `_web._tcp.consul` without `.service`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a name inside the Consul domain asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// The domain itself (`consul.`).
    Apex,
    /// `[tag.]<svc>.service[.<dc>]`, `_<svc>._<tag|tcp>[.service][.<dc>]`.
    Service {
        datacenter: Option<String>,
        service: String,
        tag: Option<String>,
    },
    /// `<node>.node[.<dc>]` (dots allowed in the node name).
    Node {
        datacenter: Option<String>,
        node: String,
    },
    /// `<hex>.addr[.<dc>]`: 8 hex digits for IPv4, 32 for IPv6.
    Addr { ip: IpAddr },
    /// `<name>.query[.<dc>]`, `_<name>._tcp.query[.<dc>]`: a prepared query's result
    /// (dots allowed in the name).
    Prepared {
        datacenter: Option<String>,
        name: String,
    },
    /// Inside the domain but not a form we answer: NXDOMAIN.
    Invalid,
}

/// Where a query name falls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// Inside `domain`, or `alt_domain` when `alt`.
    Zone { query: Query, alt: bool },
    /// `in-addr.arpa` / `ip6.arpa`; `None` when the name is not a full address.
    Reverse(Option<IpAddr>),
    /// Anything else: for recursors, REFUSED without them.
    Foreign,
}

/// A configured domain as lower-case labels (`["consul"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Domain {
    pub labels: Vec<String>,
    /// Canonical text with the trailing dot (`consul.`).
    pub text: String,
}

impl Domain {
    /// `None` for an empty or root domain.
    pub fn parse(s: &str) -> Option<Domain> {
        let labels: Vec<String> = s
            .trim_end_matches('.')
            .split('.')
            .filter(|l| !l.is_empty())
            .map(|l| l.to_ascii_lowercase())
            .collect();
        if labels.is_empty() || labels.iter().any(|l| l.len() > 63) {
            return None;
        }
        let text = format!("{}.", labels.join("."));
        Some(Domain { labels, text })
    }
}

/// Lower-case the raw labels of a query name. A label we could never have issued (a dot or a
/// non-printable byte inside it) is kept but marked with `None`, so domain matching still works
/// and the name answers NXDOMAIN rather than being misread.
pub(crate) fn labels<'a>(raw: impl Iterator<Item = &'a [u8]>) -> Vec<Option<String>> {
    raw.map(|l| {
        if l.iter().all(|b| b.is_ascii_graphic() && *b != b'.') {
            Some(String::from_utf8_lossy(l).to_ascii_lowercase())
        } else {
            None
        }
    })
    .collect()
}

/// Place a name (its lower-cased labels, root excluded) relative to our domains.
pub(crate) fn classify(
    labels: &[Option<String>],
    domain: &Domain,
    alt: Option<&Domain>,
    is_srv: bool,
) -> Target {
    let ends_with = |suffix: &[String]| {
        labels.len() >= suffix.len()
            && labels[labels.len() - suffix.len()..]
                .iter()
                .zip(suffix)
                .all(|(l, s)| l.as_deref() == Some(s.as_str()))
    };
    // The longer domain wins when one is a suffix of the other.
    let mut candidates: Vec<(&Domain, bool)> = vec![(domain, false)];
    if let Some(a) = alt {
        candidates.push((a, true));
    }
    candidates.sort_by_key(|(d, _)| std::cmp::Reverse(d.labels.len()));
    for (d, is_alt) in candidates {
        if ends_with(&d.labels) {
            let rest = &labels[..labels.len() - d.labels.len()];
            let query = match rest.iter().cloned().collect::<Option<Vec<String>>>() {
                Some(rest) => parse(&rest, is_srv),
                None => Query::Invalid,
            };
            return Target::Zone { query, alt: is_alt };
        }
    }
    let arpa = |a: &str, b: &str| {
        labels.len() >= 2
            && labels[labels.len() - 2].as_deref() == Some(a)
            && labels[labels.len() - 1].as_deref() == Some(b)
    };
    if arpa("in-addr", "arpa") {
        return Target::Reverse(reverse_v4(&labels[..labels.len() - 2]));
    }
    if arpa("ip6", "arpa") {
        return Target::Reverse(reverse_v6(&labels[..labels.len() - 2]));
    }
    Target::Foreign
}

/// Parse the labels left of the domain.
pub(crate) fn parse(labels: &[String], is_srv: bool) -> Query {
    if labels.is_empty() {
        return Query::Apex;
    }
    let mut found = None;
    for i in (0..labels.len()).rev() {
        match labels[i].as_str() {
            "service" | "node" | "addr" | "query" | "connect" | "virtual" | "ingress" => {
                found = Some((labels[i].as_str(), &labels[..i], &labels[i + 1..]));
                break;
            }
            l if is_srv && l.starts_with('_') => {
                found = Some(("service", &labels[..=i], &labels[i + 1..]));
                break;
            }
            _ => {}
        }
    }
    let Some((kind, parts, suffixes)) = found else {
        return Query::Invalid;
    };
    let Some(datacenter) = locality(suffixes) else {
        return Query::Invalid;
    };
    match kind {
        "service" => service(parts, datacenter),
        "node" if !parts.is_empty() => Query::Node {
            datacenter,
            node: parts.join("."),
        },
        "addr" if parts.len() == 1 => match decode_hex_ip(&parts[0]) {
            Some(ip) => Query::Addr { ip },
            None => Query::Invalid,
        },
        "query" if !parts.is_empty() => {
            let name = match parts {
                [a, b] if a.len() > 1 && a.starts_with('_') && b.starts_with('_') => {
                    a[1..].to_string()
                }
                _ => parts.join("."),
            };
            Query::Prepared { datacenter, name }
        }
        // Connect, ingress and virtual IPs are not served yet.
        _ => Query::Invalid,
    }
}

fn service(parts: &[String], datacenter: Option<String>) -> Query {
    let n = parts.len();
    let (service, tag) = if n == 2 && parts[0].starts_with('_') && parts[1].starts_with('_') {
        // RFC 2782: _name._tag; `_tcp` is the protocol, not a tag filter.
        let tag = &parts[1][1..];
        let tag = (tag != "tcp" && !tag.is_empty()).then(|| tag.to_string());
        (parts[0][1..].to_string(), tag)
    } else if n >= 1 {
        // Consul 0.3 form: tag.name, where the tag may itself contain dots.
        let tag = (n >= 2).then(|| parts[..n - 1].join("."));
        (parts[n - 1].clone(), tag)
    } else {
        return Query::Invalid;
    };
    if service.is_empty() {
        return Query::Invalid;
    }
    Query::Service {
        datacenter,
        service,
        tag,
    }
}

/// `[]` → local DC, `[dc1]` or `[dc1, "dc"]` → dc1; anything else is not a locality we know.
fn locality(suffixes: &[String]) -> Option<Option<String>> {
    match suffixes {
        [] => Some(None),
        [dc] => Some(Some(dc.clone())),
        [dc, kind] if kind == "dc" => Some(Some(dc.clone())),
        _ => None,
    }
}

/// `7f000001` → 127.0.0.1; 32 hex digits → an IPv6 address.
pub(crate) fn decode_hex_ip(s: &str) -> Option<IpAddr> {
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    match s.len() {
        8 => u32::from_str_radix(s, 16)
            .ok()
            .map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        32 => u128::from_str_radix(s, 16)
            .ok()
            .map(|v| IpAddr::V6(Ipv6Addr::from(v))),
        _ => None,
    }
}

/// 127.0.0.1 → `7f000001`; the inverse of [`decode_hex_ip`].
pub(crate) fn encode_hex_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{:08x}", u32::from(v4)),
        IpAddr::V6(v6) => format!("{:032x}", u128::from(v6)),
    }
}

fn reverse_v4(labels: &[Option<String>]) -> Option<IpAddr> {
    if labels.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (i, l) in labels.iter().enumerate() {
        let l = l.as_deref()?;
        if l.is_empty() || l.len() > 3 || !l.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        octets[3 - i] = l.parse().ok()?;
    }
    Some(IpAddr::V4(Ipv4Addr::from(octets)))
}

fn reverse_v6(labels: &[Option<String>]) -> Option<IpAddr> {
    if labels.len() != 32 {
        return None;
    }
    let mut v: u128 = 0;
    for l in labels.iter().rev() {
        let l = l.as_deref()?;
        if l.len() != 1 {
            return None;
        }
        v = (v << 4) | u128::from(u8::from_str_radix(l, 16).ok()?);
    }
    Some(IpAddr::V6(Ipv6Addr::from(v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(name: &str, srv: bool) -> Target {
        let domain = Domain::parse("consul").unwrap();
        let alt = Domain::parse("Example.COM.").unwrap();
        let raw: Vec<&[u8]> = name
            .trim_end_matches('.')
            .split('.')
            .filter(|l| !l.is_empty())
            .map(str::as_bytes)
            .collect();
        classify(&labels(raw.into_iter()), &domain, Some(&alt), srv)
    }

    fn zone(name: &str, srv: bool) -> Query {
        match q(name, srv) {
            Target::Zone { query, .. } => query,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn prepared_query_names() {
        let pq = |dc: Option<&str>, name: &str| Query::Prepared {
            datacenter: dc.map(str::to_string),
            name: name.into(),
        };
        assert_eq!(zone("web.query.consul", false), pq(None, "web"));
        assert_eq!(zone("Web.Query.dc2.consul", false), pq(Some("dc2"), "web"));
        assert_eq!(zone("a.b.query.consul", false), pq(None, "a.b"));
        assert_eq!(zone("_web._tcp.query.consul", true), pq(None, "web"));
        assert_eq!(zone("query.consul", false), Query::Invalid);
    }

    fn svc(dc: Option<&str>, service: &str, tag: Option<&str>) -> Query {
        Query::Service {
            datacenter: dc.map(str::to_string),
            service: service.into(),
            tag: tag.map(str::to_string),
        }
    }

    #[test]
    fn service_forms() {
        assert_eq!(zone("web.service.consul", false), svc(None, "web", None));
        assert_eq!(
            zone("WEB.Service.DC1.Consul.", false),
            svc(Some("dc1"), "web", None)
        );
        assert_eq!(
            zone("v1.web.service.consul", false),
            svc(None, "web", Some("v1"))
        );
        assert_eq!(
            zone("a.b.web.service.consul", false),
            svc(None, "web", Some("a.b"))
        );
        assert_eq!(
            zone("_web._tcp.service.consul", true),
            svc(None, "web", None)
        );
        assert_eq!(
            zone("_web._v1.service.dc2.consul", true),
            svc(Some("dc2"), "web", Some("v1"))
        );
        assert_eq!(zone("_web._tcp.consul", true), svc(None, "web", None));
        assert_eq!(
            zone("_web._tcp.dc1.consul", true),
            svc(Some("dc1"), "web", None)
        );
        assert_eq!(zone("_web._tcp.consul", false), Query::Invalid);
        assert_eq!(
            zone("web.service.dc1.dc.consul", false),
            svc(Some("dc1"), "web", None)
        );
        assert_eq!(zone("service.consul", false), Query::Invalid);
        assert_eq!(zone("web.service.a.b.consul", false), Query::Invalid);
    }

    #[test]
    fn node_addr_apex_and_alt() {
        assert_eq!(
            zone("foo.node.consul", false),
            Query::Node {
                datacenter: None,
                node: "foo".into()
            }
        );
        assert_eq!(
            zone("foo.bar.node.dc1.consul", false),
            Query::Node {
                datacenter: Some("dc1".into()),
                node: "foo.bar".into()
            }
        );
        assert_eq!(
            zone("7f000001.addr.dc1.consul", false),
            Query::Addr {
                ip: "127.0.0.1".parse().unwrap()
            }
        );
        assert_eq!(
            zone("20010db8000000000000000000000001.addr.dc1.consul", false),
            Query::Addr {
                ip: "2001:db8::1".parse().unwrap()
            }
        );
        assert_eq!(zone("7f0001.addr.dc1.consul", false), Query::Invalid);
        assert_eq!(zone("consul", false), Query::Apex);
        assert_eq!(zone("bogus.consul", false), Query::Invalid);
        assert_eq!(zone("web.connect.consul", false), Query::Invalid);
        assert!(matches!(
            q("web.service.example.com", false),
            Target::Zone { alt: true, .. }
        ));
        assert_eq!(q("example.org", false), Target::Foreign);
        assert_eq!(q("consulx", false), Target::Foreign);
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            q("1.0.0.127.in-addr.arpa.", false),
            Target::Reverse(Some("127.0.0.1".parse().unwrap()))
        );
        assert_eq!(q("0.127.in-addr.arpa.", false), Target::Reverse(None));
        assert_eq!(q("1.0.0.256.in-addr.arpa.", false), Target::Reverse(None));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let nibbles: Vec<String> = encode_hex_ip(v6)
            .chars()
            .rev()
            .map(|c| c.to_string())
            .collect();
        let name = format!("{}.ip6.arpa.", nibbles.join("."));
        assert_eq!(q(&name, false), Target::Reverse(Some(v6)));
    }

    #[test]
    fn hex_roundtrip() {
        for ip in ["10.1.2.3", "::1", "fe80::1:2"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(decode_hex_ip(&encode_hex_ip(ip)), Some(ip));
        }
        assert_eq!(decode_hex_ip("zz000001"), None);
    }

    #[test]
    fn odd_labels_are_invalid_not_misread() {
        let domain = Domain::parse("consul").unwrap();
        let raw: Vec<&[u8]> = vec![b"we.b", b"service", b"consul"];
        assert_eq!(
            classify(&labels(raw.into_iter()), &domain, None, false),
            Target::Zone {
                query: Query::Invalid,
                alt: false
            }
        );
    }
}
