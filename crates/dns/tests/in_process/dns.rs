//! A live `DnsServer` on 127.0.0.1:0 over a fake catalog, queried with hickory-proto over UDP
//! and TCP.

use crate::common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};

fn ips(records: &[Record]) -> BTreeSet<IpAddr> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

fn srv_targets(m: &Message) -> BTreeSet<(String, u16, u16)> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some((s.target.to_ascii(), s.port, s.weight)),
            _ => None,
        })
        .collect()
}

fn txts(records: &[Record]) -> BTreeSet<String> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(
                t.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect()
}

fn assert_soa_authority(m: &Message, domain: &str) {
    assert_eq!(m.answers.len(), 0, "{m:?}");
    assert_eq!(m.authorities.len(), 1, "{m:?}");
    let soa = &m.authorities[0];
    assert_eq!(soa.name.to_ascii(), domain);
    let RData::SOA(s) = &soa.data else {
        panic!("not an SOA: {soa:?}")
    };
    assert_eq!(s.mname.to_ascii(), format!("ns.{domain}"));
    assert_eq!(s.rname.to_ascii(), format!("hostmaster.{domain}"));
}

#[tokio::test]
async fn service_srv_has_targets_weights_and_glue() {
    let s = start().await;
    let m = udp(s.addr, &query("web.service.consul.", RecordType::SRV, None)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert!(!m.metadata.recursion_available);
    assert!(!m.metadata.truncation);
    assert_eq!(
        srv_targets(&m),
        BTreeSet::from([
            ("web1.node.dc1.consul.".to_string(), 80, 10),
            ("web2.node.dc1.consul.".to_string(), 8080, 10),
        ])
    );
    for a in &m.answers {
        let RData::SRV(srv) = &a.data else { panic!() };
        assert_eq!(srv.priority, 1);
        assert_eq!(a.name.to_ascii(), "web.service.consul.");
    }
    assert_eq!(m.additionals.len(), 2);
    for x in &m.additionals {
        let ip = ips(std::slice::from_ref(x));
        let expect: IpAddr = match x.name.to_ascii().as_str() {
            "web1.node.dc1.consul." => "10.0.0.1".parse().unwrap(),
            "web2.node.dc1.consul." => "10.0.0.2".parse().unwrap(),
            other => panic!("unexpected glue {other}"),
        };
        assert_eq!(ip, BTreeSet::from([expect]));
    }
}

#[tokio::test]
async fn service_a_tag_and_datacenter_forms() {
    let s = start().await;
    let m = udp(s.addr, &query("web.service.consul.", RecordType::A, None)).await;
    assert_eq!(
        ips(&m.answers),
        BTreeSet::from(["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()])
    );
    let m = udp(
        s.addr,
        &query("v1.web.service.consul.", RecordType::A, None),
    )
    .await;
    assert_eq!(
        ips(&m.answers),
        BTreeSet::from(["10.0.0.1".parse().unwrap()])
    );
    let m = udp(
        s.addr,
        &query("v2.web.service.dc1.consul.", RecordType::A, None),
    )
    .await;
    assert_eq!(
        ips(&m.answers),
        BTreeSet::from(["10.0.0.2".parse().unwrap()])
    );
    let m = udp(
        s.addr,
        &query("web.service.dc1.consul.", RecordType::ANY, None),
    )
    .await;
    assert_eq!(m.answers.len(), 2);
    // IPv6 node addresses answer AAAA, and A is NODATA for them.
    let m = udp(
        s.addr,
        &query("api.service.consul.", RecordType::AAAA, None),
    )
    .await;
    assert_eq!(
        ips(&m.answers),
        BTreeSet::from(["2001:db8::6".parse().unwrap()])
    );
    let m = udp(s.addr, &query("api.service.consul.", RecordType::A, None)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_soa_authority(&m, "consul.");
}

#[tokio::test]
async fn rfc2782_names() {
    let s = start().await;
    for (name, expect) in [
        ("_web._tcp.service.consul.", 2),
        ("_web._v1.service.consul.", 1),
        ("_web._tcp.service.dc1.consul.", 2),
        ("_web._tcp.consul.", 2),
        ("_web._v2.dc1.consul.", 1),
    ] {
        let m = udp(s.addr, &query(name, RecordType::SRV, None)).await;
        assert_eq!(m.answers.len(), expect, "{name}: {m:?}");
        assert_eq!(m.answers[0].name.to_ascii(), name);
    }
}

#[tokio::test]
async fn service_address_gives_addr_target_and_a_record() {
    let s = start().await;
    let m = udp(s.addr, &query("db.service.consul.", RecordType::SRV, None)).await;
    assert_eq!(
        srv_targets(&m),
        BTreeSet::from([("c0a80105.addr.dc1.consul.".to_string(), 5432, 10)])
    );
    assert_eq!(
        m.additionals[0].name.to_ascii(),
        "c0a80105.addr.dc1.consul."
    );
    assert_eq!(
        ips(&m.additionals),
        BTreeSet::from(["192.168.1.5".parse().unwrap()])
    );
    let m = udp(s.addr, &query("db.service.consul.", RecordType::A, None)).await;
    assert_eq!(
        ips(&m.answers),
        BTreeSet::from(["192.168.1.5".parse().unwrap()])
    );
    // The addr name itself resolves.
    let m = udp(
        s.addr,
        &query("c0a80105.addr.dc1.consul.", RecordType::A, None),
    )
    .await;
    assert_eq!(
        ips(&m.answers),
        BTreeSet::from(["192.168.1.5".parse().unwrap()])
    );
    let v6 = "20010db8000000000000000000000006.addr.dc1.consul.";
    let m = udp(s.addr, &query(v6, RecordType::AAAA, None)).await;
    assert_eq!(
        ips(&m.answers),
        BTreeSet::from(["2001:db8::6".parse().unwrap()])
    );
    let m = udp(s.addr, &query(v6, RecordType::A, None)).await;
    assert_soa_authority(&m, "consul.");
}

#[tokio::test]
async fn hostname_addresses_become_cnames() {
    let s = start().await;
    let m = udp(s.addr, &query("rds.service.consul.", RecordType::A, None)).await;
    assert_eq!(m.answers.len(), 1);
    let RData::CNAME(c) = &m.answers[0].data else {
        panic!("{m:?}")
    };
    assert_eq!(c.0.to_ascii(), "db.example.com.");
    let m = udp(s.addr, &query("rds.service.consul.", RecordType::SRV, None)).await;
    assert_eq!(
        srv_targets(&m),
        BTreeSet::from([("db.example.com.".to_string(), 5432, 10)])
    );
    assert!(m.additionals.is_empty());
    let m = udp(s.addr, &query("ext.node.consul.", RecordType::A, None)).await;
    assert!(matches!(m.answers[0].data, RData::CNAME(_)));
}

#[tokio::test]
async fn node_records_and_meta_txt() {
    let s = start().await;
    let m = udp(s.addr, &query("web1.node.consul.", RecordType::A, None)).await;
    assert_eq!(
        ips(&m.answers),
        BTreeSet::from(["10.0.0.1".parse().unwrap()])
    );
    // Meta rides along in the additional section; rfc1035- keys are published verbatim.
    assert_eq!(
        txts(&m.additionals),
        BTreeSet::from(["rack=r1".to_string(), "v=spf1".to_string()])
    );
    let m = udp(
        s.addr,
        &query("web1.node.dc1.consul.", RecordType::TXT, None),
    )
    .await;
    assert_eq!(
        txts(&m.answers),
        BTreeSet::from(["rack=r1".to_string(), "v=spf1".to_string()])
    );
    let m = udp(s.addr, &query("web1.node.consul.", RecordType::ANY, None)).await;
    assert_eq!(m.answers.len(), 3);
    let m = udp(s.addr, &query("v6.node.consul.", RecordType::AAAA, None)).await;
    assert_eq!(
        ips(&m.answers),
        BTreeSet::from(["2001:db8::6".parse().unwrap()])
    );
    // Known node, no record of that type: NODATA.
    let m = udp(s.addr, &query("web1.node.consul.", RecordType::AAAA, None)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_soa_authority(&m, "consul.");
    let m = udp(s.addr, &query("web1.node.consul.", RecordType::MX, None)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_soa_authority(&m, "consul.");
    let m = udp(s.addr, &query("nope.node.consul.", RecordType::MX, None)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}

#[tokio::test]
async fn nxdomain_versus_nodata() {
    let s = start().await;
    for name in [
        "missing.service.consul.",
        "nope.node.consul.",
        "bogus.consul.",
        "web.service.dc9.consul.",
        "web1.node.dc9.consul.",
        "web.query.consul.",
        "zz.addr.dc1.consul.",
    ] {
        let m = udp(s.addr, &query(name, RecordType::A, None)).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{name}");
        assert!(m.metadata.authoritative);
        assert_soa_authority(&m, "consul.");
    }
    for (name, t) in [
        ("web.service.consul.", RecordType::MX),
        ("web.service.consul.", RecordType::TXT),
        ("consul.", RecordType::A),
    ] {
        let m = udp(s.addr, &query(name, t, None)).await;
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NoError,
            "{name} {t}"
        );
        assert_soa_authority(&m, "consul.");
    }
}

#[tokio::test]
async fn soa_ns_axfr_foreign_class_and_servfail() {
    let s = start_with(catalog(), |c| {
        c.soa.min_ttl = 30;
        c.soa.refresh = 100;
    })
    .await;
    let m = udp(s.addr, &query("consul.", RecordType::SOA, None)).await;
    assert_eq!(m.answers.len(), 1);
    let RData::SOA(soa) = &m.answers[0].data else {
        panic!()
    };
    assert_eq!((soa.minimum, soa.refresh), (30, 100));
    assert_eq!(m.answers[0].ttl, 30);
    assert_eq!(m.authorities.len(), 1);
    let m = udp(s.addr, &query("consul.", RecordType::NS, None)).await;
    assert_eq!(m.answers.len(), 1);
    let RData::NS(ns) = &m.answers[0].data else {
        panic!()
    };
    assert_eq!(ns.0.to_ascii(), "server1.node.dc1.consul.");
    assert_eq!(
        ips(&m.additionals),
        BTreeSet::from(["10.0.0.100".parse().unwrap()])
    );
    // Negative answers carry the SOA whose TTL is the negative-cache TTL.
    let m = udp(
        s.addr,
        &query("missing.service.consul.", RecordType::A, None),
    )
    .await;
    assert_eq!(m.authorities[0].ttl, 30);

    let m = tcp(s.addr, &query("consul.", RecordType::AXFR, None)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NotImp);
    let m = udp(s.addr, &query("example.org.", RecordType::A, None)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(!m.metadata.recursion_available);
    let mut q = query("web.service.consul.", RecordType::A, None);
    q.queries[0].set_query_class(DNSClass::CH);
    let m = udp(s.addr, &q).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);

    *s.backend.fail.lock().unwrap() = true;
    let m = udp(s.addr, &query("web.service.consul.", RecordType::A, None)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    let m = udp(
        s.addr,
        &query("1.0.0.10.in-addr.arpa.", RecordType::PTR, None),
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
}

#[tokio::test]
async fn health_filtering_follows_check_changes() {
    let s = start().await;
    let names = |m: &Message| {
        srv_targets(m)
            .into_iter()
            .map(|(t, _, w)| (t, w))
            .collect::<BTreeSet<_>>()
    };
    let srv = || query("web.service.consul.", RecordType::SRV, None);
    // web3 is critical: absent.
    let m = udp(s.addr, &srv()).await;
    assert!(!names(&m).iter().any(|(t, _)| t.starts_with("web3")));
    // Back to passing: present.
    s.backend.set_status("web-3", "service:web-3", "passing");
    let m = udp(s.addr, &srv()).await;
    assert_eq!(m.answers.len(), 3);
    // Warning: present with the warning weight.
    s.backend.set_status("web-3", "service:web-3", "warning");
    let m = udp(s.addr, &srv()).await;
    assert!(names(&m).contains(&("web3.node.dc1.consul.".to_string(), 1)));
    // The node's serfHealth failing takes out every instance on it.
    s.backend.set_status("web1", "serfHealth", "critical");
    let m = udp(s.addr, &srv()).await;
    assert!(!names(&m).iter().any(|(t, _)| t.starts_with("web1")));
    // Everything critical: NXDOMAIN, like an unknown service.
    s.backend.set_status("web2", "serfHealth", "critical");
    s.backend.set_status("web3", "serfHealth", "critical");
    let m = udp(s.addr, &srv()).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}

#[tokio::test]
async fn only_passing_drops_warning() {
    let f = catalog();
    f.set_status("web-2", "service:web-2", "warning");
    let s = start_with(f, |c| c.only_passing = true).await;
    let m = udp(s.addr, &query("web.service.consul.", RecordType::A, None)).await;
    assert_eq!(
        ips(&m.answers),
        BTreeSet::from(["10.0.0.1".parse().unwrap()])
    );
}

fn big_catalog(n: usize) -> common::Fake {
    let f = catalog();
    for i in 0..n {
        let name = format!("big-node-{i:03}");
        f.add_node(&name, &format!("10.1.{}.{}", i / 250, i % 250 + 1), &[]);
        f.add_instance(&name, &format!("big-{i}"), "big", "", 9000, &[], "passing");
    }
    f
}

#[tokio::test]
async fn truncation_udp_versus_tcp_and_edns() {
    let s = start_with(big_catalog(40), |_| {}).await;
    // Plain UDP: udp_answer_limit (3) answers, glue in step, TC set.
    let m = udp(s.addr, &query("big.service.consul.", RecordType::SRV, None)).await;
    assert_eq!(m.answers.len(), 3);
    assert_eq!(m.additionals.len(), 3);
    assert!(m.metadata.truncation);
    assert!(m.edns.is_none());
    let m = udp(s.addr, &query("big.service.consul.", RecordType::A, None)).await;
    assert_eq!(m.answers.len(), 3);
    assert!(m.metadata.truncation);
    // TCP: everything.
    let m = tcp(s.addr, &query("big.service.consul.", RecordType::SRV, None)).await;
    assert_eq!(m.answers.len(), 40);
    assert_eq!(m.additionals.len(), 40);
    assert!(!m.metadata.truncation);
    // EDNS with room for all: everything, and an OPT echoed back.
    let m = udp(
        s.addr,
        &query("big.service.consul.", RecordType::SRV, Some(4096)),
    )
    .await;
    assert_eq!(m.answers.len(), 40);
    assert!(!m.metadata.truncation);
    assert!(m.edns.is_some());
    // EDNS with a small buffer: as many as fit, never more than asked.
    let q = query("big.service.consul.", RecordType::SRV, Some(1232));
    let raw = udp_raw(s.addr, &q.to_vec().unwrap()).await;
    assert!(raw.len() <= 1232, "{}", raw.len());
    let m = Message::from_vec(&raw).unwrap();
    assert!(
        m.answers.len() > 3 && m.answers.len() < 40,
        "{}",
        m.answers.len()
    );
    assert_eq!(m.answers.len(), m.additionals.len());
    assert!(m.metadata.truncation);
    assert!(m.edns.is_some());
    // A small service is not truncated.
    let m = udp(s.addr, &query("web.service.consul.", RecordType::SRV, None)).await;
    assert!(!m.metadata.truncation);
}

#[tokio::test]
async fn truncate_flag_is_configurable_and_a_record_limit_applies() {
    let s = start_with(big_catalog(10), |c| {
        c.enable_truncate = false;
        c.a_record_limit = 2;
    })
    .await;
    let m = udp(s.addr, &query("big.service.consul.", RecordType::SRV, None)).await;
    assert_eq!(m.answers.len(), 3);
    assert!(!m.metadata.truncation);
    let m = tcp(s.addr, &query("big.service.consul.", RecordType::A, None)).await;
    assert_eq!(m.answers.len(), 2);
    let m = tcp(s.addr, &query("big.service.consul.", RecordType::SRV, None)).await;
    assert_eq!(m.answers.len(), 10);
}

#[tokio::test]
async fn answers_are_shuffled() {
    let s = start_with(big_catalog(8), |_| {}).await;
    let mut orders = BTreeSet::new();
    for _ in 0..20 {
        let m = tcp(s.addr, &query("big.service.consul.", RecordType::A, None)).await;
        orders.insert(format!(
            "{:?}",
            m.answers
                .iter()
                .map(|r| ips(std::slice::from_ref(r)))
                .collect::<Vec<_>>()
        ));
    }
    assert!(orders.len() > 1, "20 identical orders of 8 answers");
}

#[tokio::test]
async fn case_insensitive_names_keep_question_case() {
    let s = start().await;
    let m = udp(s.addr, &query("WeB.SeRvIcE.CoNsUl.", RecordType::SRV, None)).await;
    assert_eq!(m.answers.len(), 2);
    assert_eq!(m.answers[0].name.to_ascii(), "WeB.SeRvIcE.CoNsUl.");
    let m = udp(s.addr, &query("WEB1.NODE.DC1.CONSUL.", RecordType::A, None)).await;
    assert_eq!(
        ips(&m.answers),
        BTreeSet::from(["10.0.0.1".parse().unwrap()])
    );
    let m = udp(
        s.addr,
        &query("_WEB._V1.Service.Consul.", RecordType::SRV, None),
    )
    .await;
    assert_eq!(m.answers.len(), 1);
}

#[tokio::test]
async fn ptr_for_nodes_and_services() {
    let s = start().await;
    let m = udp(
        s.addr,
        &query("1.0.0.10.in-addr.arpa.", RecordType::PTR, None),
    )
    .await;
    assert_eq!(m.answers.len(), 1);
    let RData::PTR(p) = &m.answers[0].data else {
        panic!()
    };
    assert_eq!(p.0.to_ascii(), "web1.node.dc1.consul.");
    let m = udp(
        s.addr,
        &query("5.1.168.192.in-addr.arpa.", RecordType::PTR, None),
    )
    .await;
    let RData::PTR(p) = &m.answers[0].data else {
        panic!()
    };
    assert_eq!(p.0.to_ascii(), "db.service.dc1.consul.");
    let v6 = "6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.";
    let m = udp(s.addr, &query(v6, RecordType::PTR, None)).await;
    let RData::PTR(p) = &m.answers[0].data else {
        panic!("{m:?}")
    };
    assert_eq!(p.0.to_ascii(), "v6.node.dc1.consul.");
    for name in ["9.9.9.9.in-addr.arpa.", "0.10.in-addr.arpa."] {
        let m = udp(s.addr, &query(name, RecordType::PTR, None)).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{name}");
    }
}

#[tokio::test]
async fn alt_domain_answers_in_its_own_domain() {
    let s = start_with(catalog(), |c| c.alt_domain = Some("Example.Net".into())).await;
    let m = udp(
        s.addr,
        &query("web.service.example.net.", RecordType::SRV, None),
    )
    .await;
    assert_eq!(m.answers.len(), 2);
    assert!(srv_targets(&m)
        .iter()
        .all(|(t, _, _)| t.ends_with(".node.dc1.example.net.")));
    let m = udp(
        s.addr,
        &query("missing.service.example.net.", RecordType::A, None),
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_soa_authority(&m, "example.net.");
    let m = udp(s.addr, &query("web.service.consul.", RecordType::A, None)).await;
    assert_eq!(m.answers.len(), 2);
}

#[tokio::test]
async fn ttls_from_config() {
    let s = start_with(catalog(), |c| {
        c.node_ttl = Duration::from_secs(7);
        c.service_ttl = vec![
            ("*".into(), Duration::from_secs(5)),
            ("we*".into(), Duration::from_secs(11)),
            ("db".into(), Duration::from_secs(13)),
        ];
    })
    .await;
    let ttl = |m: &Message| m.answers.iter().map(|r| r.ttl).collect::<BTreeSet<_>>();
    let m = udp(s.addr, &query("web.service.consul.", RecordType::SRV, None)).await;
    assert_eq!(ttl(&m), BTreeSet::from([11]));
    let m = udp(s.addr, &query("db.service.consul.", RecordType::A, None)).await;
    assert_eq!(ttl(&m), BTreeSet::from([13]));
    let m = udp(
        s.addr,
        &query("api.service.consul.", RecordType::AAAA, None),
    )
    .await;
    assert_eq!(ttl(&m), BTreeSet::from([5]));
    let m = udp(s.addr, &query("web1.node.consul.", RecordType::A, None)).await;
    assert_eq!(ttl(&m), BTreeSet::from([7]));
}

#[tokio::test]
async fn malformed_packets_get_formerr_or_nothing() {
    let s = start().await;
    // A header claiming one question, then garbage: FORMERR with the same ID.
    let raw = udp_raw(
        s.addr,
        &[0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff],
    )
    .await;
    let m = Message::from_vec(&raw).unwrap();
    assert_eq!(m.metadata.id, 0xabcd);
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    // Two questions: FORMERR.
    let mut q = query("web.service.consul.", RecordType::A, None);
    q.add_query(q.queries[0].clone());
    let m = udp(s.addr, &q).await;
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    // The server is still answering on both transports afterwards.
    let m = tcp(s.addr, &query("web.service.consul.", RecordType::A, None)).await;
    assert_eq!(m.answers.len(), 2);
}

#[tokio::test]
async fn tcp_connection_serves_several_queries_and_idles_out() {
    let s = start_with(catalog(), |c| {
        c.tcp_idle_timeout = Duration::from_millis(200)
    })
    .await;
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    for name in [
        "web.service.consul.",
        "db.service.consul.",
        "web1.node.consul.",
    ] {
        let m = tcp_on(&mut conn, &query(name, RecordType::A, None)).await;
        assert!(!m.answers.is_empty(), "{name}");
    }
    // Idle: the server closes the connection.
    use tokio::io::AsyncReadExt;
    let mut b = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut b))
        .await
        .expect("closed before the deadline")
        .unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn shutdown_stops_listeners() {
    let s = start().await;
    let addr = s.addr;
    s.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), s.server.wait())
        .await
        .expect("server stopped");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    // Every UDP worker socket is closed too: the port can be bound again without SO_REUSEPORT.
    std::net::UdpSocket::bind(addr).expect("udp port released");
}

#[test]
fn dropping_the_runtime_stops_the_udp_workers() {
    // UDP workers are threads of their own (on Linux); without a shutdown they still stop when
    // the runtime that started them goes away, and release the port.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(async {
        let s = start().await;
        let m = udp(s.addr, &query("web.service.consul.", RecordType::A, None)).await;
        assert_eq!(m.answers.len(), 2);
        s
    });
    let addr = s.addr;
    drop(rt);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while let Err(e) = std::net::UdpSocket::bind(addr) {
        assert!(
            std::time::Instant::now() < deadline,
            "udp port still held: {e}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(s);
}

#[tokio::test]
async fn recursors_answer_foreign_names_in_order() {
    // The upstream is another proconsul DNS server authoritative for `upstream.test.`.
    let upstream = start_with(catalog(), |c| c.domain = "upstream.test".into()).await;
    // A recursor that never answers (UDP) and refuses connections (TCP) comes first.
    let dead = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let dead_addr = dead.local_addr().unwrap();
    let s = start_with(catalog(), |c| {
        c.recursors = vec![dead_addr, upstream.addr];
        c.recursor_timeout = Duration::from_millis(300);
    })
    .await;
    let q = query("web.service.upstream.test.", RecordType::A, None);
    let m = udp(s.addr, &q).await;
    assert_eq!(m.answers.len(), 2, "{m:?}");
    let m = tcp(s.addr, &q).await;
    assert_eq!(m.answers.len(), 2, "{m:?}");
    // Our own zone is still ours, now with RA.
    let m = udp(s.addr, &query("web.service.consul.", RecordType::A, None)).await;
    assert_eq!(m.answers.len(), 2);
    assert!(m.metadata.recursion_available);

    // Every recursor down: SERVFAIL.
    let s = start_with(catalog(), |c| {
        c.recursors = vec![dead_addr];
        c.recursor_timeout = Duration::from_millis(100);
    })
    .await;
    let m = udp(s.addr, &q).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(m.metadata.recursion_available);
    drop(dead);
}

#[tokio::test]
async fn cached_answers_keep_the_query_id_and_both_orders() {
    // Two answers: over enough queries both orders must show up, each with its own query ID,
    // from the cache (the fake reports a generation) and without it.
    for uncached in [false, true] {
        let mut f = catalog();
        f.uncached = uncached;
        let s = start_with(f, |_| {}).await;
        let mut orders = BTreeSet::new();
        for i in 0..64u16 {
            let mut q = query("web.service.consul.", RecordType::SRV, None);
            q.metadata.id = 1000 + i;
            let m = udp(s.addr, &q).await; // asserts the ID
            assert_eq!(m.answers.len(), 2);
            orders.insert(format!(
                "{:?}",
                m.answers.iter().map(|r| r.data.clone()).collect::<Vec<_>>()
            ));
        }
        assert_eq!(orders.len(), 2, "uncached={uncached}: {orders:?}");
        s.shutdown.cancel();
    }
}

#[tokio::test]
async fn a_dns_port_in_use_is_an_error() {
    let s = start().await;
    let second = proconsul_dns::DnsServer::start(
        proconsul_dns::DnsServerConfig {
            bind: vec![s.addr],
            ..Default::default()
        },
        std::sync::Arc::new(catalog()),
        tokio_util::sync::CancellationToken::new(),
    )
    .await;
    assert!(second.is_err(), "a second server bound the same DNS port");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_udp_queries_is_answered_in_full() {
    // Queries sent back to back arrive in batches (recvmmsg) and cached answers leave in
    // batches (sendmmsg): every one must come back once, to its sender, with its own ID.
    let s = start().await;
    let mut socks = Vec::new();
    for _ in 0..4 {
        socks.push(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    }
    for (k, sock) in socks.iter().enumerate() {
        for i in 0..50u16 {
            let mut q = query("web.service.consul.", RecordType::SRV, None);
            q.metadata.id = (k as u16) * 1000 + i;
            sock.send_to(&q.to_vec().unwrap(), s.addr).await.unwrap();
        }
    }
    for (k, sock) in socks.iter().enumerate() {
        let mut ids = BTreeSet::new();
        let mut buf = vec![0u8; 4096];
        while ids.len() < 50 {
            let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
                .await
                .expect("every query answered")
                .unwrap();
            let m = Message::from_vec(&buf[..n]).unwrap();
            assert_eq!(m.answers.len(), 2);
            assert!(
                ids.insert(m.metadata.id),
                "duplicate answer {}",
                m.metadata.id
            );
        }
        let want: BTreeSet<u16> = (0..50u16).map(|i| (k as u16) * 1000 + i).collect();
        assert_eq!(ids, want);
    }
}
