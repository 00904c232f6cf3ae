//! Fitting a response to its transport: 512 bytes or the client's EDNS0 size over UDP (at most
//! `udp_answer_limit` answers without EDNS), 64 KiB over TCP.
//!
//! Answers are cut from the end (they were shuffled, so any prefix is a fair sample) and the
//! additional section is kept in step: for SRV answers only the glue of surviving targets stays
//! (Consul's `syncExtra`); other additional data (node meta TXT) goes first when space runs out.
//! The encoded size is measured exactly (with name compression), by binary search over the
//! number of answers kept.

use std::collections::HashSet;

use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, Record};

/// Largest UDP payload we send whatever the client advertises (Consul's `maxUDPDatagramSize`).
pub(crate) const MAX_UDP_SIZE: usize = 65535 - 68;
/// Largest TCP message (2-byte length prefix).
pub(crate) const MAX_TCP_SIZE: usize = 65535;
/// Consul never sends more than this many answers over UDP without EDNS.
pub(crate) const MAX_UDP_ANSWER_LIMIT: usize = 8;

/// Encode `msg` whole. hickory's encoder stops silently at 65535 bytes (dropping records and
/// setting TC), so a message whose header counts disagree with its sections is refused here.
pub(crate) fn encode(msg: &Message) -> Option<Vec<u8>> {
    let v = msg.to_vec().ok()?;
    let count = |i: usize| usize::from(u16::from_be_bytes([v[i], v[i + 1]]));
    let whole = v.len() >= 12
        && count(6) == msg.answers.len()
        && count(8) == msg.authorities.len()
        && count(10) == msg.additionals.len() + usize::from(msg.edns.is_some());
    whole.then_some(v)
}

fn encoded_len(msg: &Message) -> usize {
    encode(msg).map_or(usize::MAX, |v| v.len())
}

/// The additional records that still serve `answers`.
fn sync_extra(answers: &[Record], extra: &[Record], srv: bool, keep_other: bool) -> Vec<Record> {
    if !srv {
        return if keep_other {
            extra.to_vec()
        } else {
            Vec::new()
        };
    }
    let targets: HashSet<Name> = answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some(srv.target.to_lowercase()),
            _ => None,
        })
        .collect();
    extra
        .iter()
        .filter(|r| targets.contains(&r.name.to_lowercase()))
        .cloned()
        .collect()
}

/// Cut `msg` until it encodes in `max_size` bytes and holds at most `answer_cap` answers.
/// Returns whether any answer was dropped (the caller decides about TC).
pub(crate) fn fit(msg: &mut Message, max_size: usize, answer_cap: Option<usize>) -> bool {
    let total = msg.answers.len();
    let cap = answer_cap.map_or(total, |c| c.min(total));
    if cap == total && encoded_len(msg) <= max_size {
        return false;
    }
    let answers = std::mem::take(&mut msg.answers);
    let extra = std::mem::take(&mut msg.additionals);
    let srv = answers.iter().any(|r| matches!(r.data, RData::SRV(_)));
    let mut keep_other = true;

    let set = |msg: &mut Message, k: usize, keep_other: bool| {
        msg.answers = answers[..k].to_vec();
        msg.additionals = sync_extra(&msg.answers, &extra, srv, keep_other);
    };

    set(msg, cap, keep_other);
    if encoded_len(msg) > max_size && !msg.authorities.is_empty() {
        // Authority data (NS with an SOA answer) is the first thing to give up, as in Consul.
        msg.authorities.clear();
    }
    if encoded_len(msg) > max_size && !srv && !extra.is_empty() {
        keep_other = false;
        set(msg, cap, keep_other);
    }
    if encoded_len(msg) <= max_size {
        return cap < total;
    }
    // Largest k in [0, cap) that fits; k = 0 always "fits" once the sections are emptied.
    let (mut lo, mut hi) = (0, cap);
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        set(msg, mid, keep_other);
        if encoded_len(msg) <= max_size {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    set(msg, lo, keep_other);
    if encoded_len(msg) > max_size {
        msg.additionals.clear();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::{A, SRV};
    use hickory_proto::rr::RecordType;
    use std::net::Ipv4Addr;

    fn srv_message(n: usize) -> Message {
        let q: Name = "web.service.consul.".parse().unwrap();
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(q.clone(), RecordType::SRV));
        for i in 0..n {
            let target: Name = format!("node-{i:04}.node.dc1.consul.").parse().unwrap();
            m.add_answer(Record::from_rdata(
                q.clone(),
                0,
                RData::SRV(SRV::new(1, 1, 80, target.clone())),
            ));
            m.add_additional(Record::from_rdata(
                target,
                0,
                RData::A(A(Ipv4Addr::from(0x0a00_0000 + i as u32))),
            ));
        }
        m
    }

    #[test]
    fn small_answers_are_untouched() {
        let mut m = srv_message(2);
        assert!(!fit(&mut m, 512, Some(3)));
        assert_eq!((m.answers.len(), m.additionals.len()), (2, 2));
    }

    #[test]
    fn answer_cap_keeps_glue_in_step() {
        let mut m = srv_message(5);
        assert!(fit(&mut m, 512, Some(3)));
        assert_eq!((m.answers.len(), m.additionals.len()), (3, 3));
        for (a, x) in m.answers.iter().zip(&m.additionals) {
            let RData::SRV(srv) = &a.data else { panic!() };
            assert_eq!(srv.target, x.name);
        }
    }

    #[test]
    fn size_limit_is_exact() {
        for max in [512usize, 700, 1232, 4096] {
            let mut m = srv_message(200);
            assert!(fit(&mut m, max, None));
            let len = m.to_vec().unwrap().len();
            assert!(len <= max, "{len} > {max}");
            assert_eq!(m.answers.len(), m.additionals.len());
            // One more answer would not have fit.
            let bigger = srv_message(m.answers.len() + 1);
            assert!(bigger.to_vec().unwrap().len() > max);
        }
        let mut m = srv_message(2000);
        assert!(encode(&m).is_none(), "hickory cut it silently");
        assert!(fit(&mut m, MAX_TCP_SIZE, None));
        assert!(encode(&m).unwrap().len() <= MAX_TCP_SIZE);
        assert!(m.answers.len() > 500, "{}", m.answers.len());
    }
}
