//! The handler never panics: random bytes, truncated valid queries and bit-flipped queries,
//! fed straight to `Handler::handle` (no sockets) with a fixed-seed PRNG so failures replay.

use crate::common;

use std::sync::Arc;

use common::*;
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use proconsul_dns::{DnsServerConfig, Handler, Transport};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn handler() -> Handler<Fake> {
    let cfg = DnsServerConfig {
        alt_domain: Some("alt.test".into()),
        ..Default::default()
    };
    Handler::new(cfg, Arc::new(catalog())).unwrap()
}

fn seeds() -> Vec<Vec<u8>> {
    let names = [
        ("web.service.consul.", RecordType::SRV),
        ("_web._tcp.consul.", RecordType::SRV),
        ("v1.web.service.dc1.consul.", RecordType::A),
        ("web1.node.consul.", RecordType::ANY),
        ("c0a80105.addr.dc1.consul.", RecordType::A),
        ("1.0.0.10.in-addr.arpa.", RecordType::PTR),
        ("consul.", RecordType::SOA),
        ("web.service.alt.test.", RecordType::AAAA),
        ("example.org.", RecordType::TXT),
    ];
    let mut out = Vec::new();
    for (n, t) in names {
        out.push(query(n, t, None).to_vec().unwrap());
        out.push(query(n, t, Some(1232)).to_vec().unwrap());
    }
    out
}

/// Whatever comes back must itself be a decodable DNS response that fits the transport.
fn check(reply: Option<Vec<u8>>, transport: Transport) {
    if let Some(r) = reply {
        let max = match transport {
            Transport::Udp => 65535 - 68,
            Transport::Tcp => 65535,
        };
        assert!(r.len() <= max);
        assert!(Message::from_vec(&r).is_ok(), "undecodable reply {r:?}");
    }
}

#[tokio::test]
async fn random_and_mangled_packets_never_panic() {
    let h = handler();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let seeds = seeds();
    let mut answered = 0;
    // Every prefix of every valid query.
    for s in &seeds {
        for len in 0..=s.len() {
            let r = h.handle(&s[..len], Transport::Udp).await;
            answered += usize::from(r.is_some());
            check(r, Transport::Udp);
        }
    }
    // Bit flips and byte overwrites of valid queries.
    for i in 0..3000 {
        let mut p = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(p.len());
            if rng.below(2) == 0 {
                p[at] ^= 1 << rng.below(8);
            } else {
                p[at] = rng.next() as u8;
            }
        }
        let t = if i % 2 == 0 {
            Transport::Udp
        } else {
            Transport::Tcp
        };
        check(h.handle(&p, t).await, t);
    }
    // Pure noise of every small length and some large ones.
    for _ in 0..3000 {
        let len = if rng.below(10) == 0 {
            rng.below(4096)
        } else {
            rng.below(64)
        };
        let p: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        check(h.handle(&p, Transport::Udp).await, Transport::Udp);
    }
    assert!(answered > 0);
}

#[tokio::test]
async fn odd_labels_answer_nxdomain_or_formerr() {
    let h = handler();
    // A label with a dot in it, an over-long node name, binary bytes: never a positive answer.
    let mut q = query("x.service.consul.", RecordType::A, None)
        .to_vec()
        .unwrap();
    // Replace the `x` label byte with a dot: the label is now "." inside one label.
    let pos = q.iter().position(|&b| b == b'x').unwrap();
    q[pos] = b'.';
    let m = Message::from_vec(&h.handle(&q, Transport::Udp).await.unwrap()).unwrap();
    assert_eq!(
        m.metadata.response_code,
        hickory_proto::op::ResponseCode::NXDomain
    );
    q[pos] = 0x00;
    let m = Message::from_vec(&h.handle(&q, Transport::Udp).await.unwrap()).unwrap();
    assert_eq!(
        m.metadata.response_code,
        hickory_proto::op::ResponseCode::NXDomain
    );
    let long = format!("{}.node.consul.", "a".repeat(63));
    let m = Message::from_vec(
        &h.handle(
            &query(&long, RecordType::A, None).to_vec().unwrap(),
            Transport::Udp,
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        m.metadata.response_code,
        hickory_proto::op::ResponseCode::NXDomain
    );
}
