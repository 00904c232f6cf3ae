//! Pre-encoded answers: the hot path of a DNS server that answers from a catalog which changes
//! far less often than it is asked.
//!
//! A response depends only on the query's bytes after its ID (flags, question, EDNS record), the
//! transport, the handler's configuration and the catalog it was built from. So the cache is keyed
//! by exactly those bytes (per transport) and every entry carries the catalog *generation* the
//! backend reported before the lookup; an entry from another generation is a miss. A hit copies
//! the stored bytes and patches in the query's ID: no decoding, no record building, no encoding.
//!
//! Shuffling survives caching: a lookup that shuffles its answers stores several orderings
//! (every permutation of up to [`ALL_PERMUTATIONS_UP_TO`] answers, else [`SAMPLED_ORDERINGS`]
//! random ones), each fitted to the transport on its own, and a hit picks one at random.
//! Responses that carry an SOA (NXDOMAIN, NODATA) embed the current time as its serial, so they
//! live for the second they were built in. Nothing else is cached (recursor answers, SERVFAIL,
//! NS answers drawn from gossip).
//!
//! Bounded: queries longer than [`MAX_KEY`] bytes are not cached, and the whole cache is
//! dropped when its stored bytes pass [`MAX_BYTES`] (it refills from the next queries).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;

use crate::handler::Transport;

/// Orderings kept for a shuffled answer of up to this many records: all of them (3! = 6).
pub(crate) const ALL_PERMUTATIONS_UP_TO: usize = 3;
/// Orderings kept for larger shuffled answers: this many random ones.
pub(crate) const SAMPLED_ORDERINGS: usize = 8;
/// Longest query (after the ID) that is cached; a plain question with EDNS is ~50 bytes.
const MAX_KEY: usize = 512;
/// Stored bytes (keys + responses) past which the cache starts over.
const MAX_BYTES: usize = 4 << 20;

/// How long a freshly built response may be served from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifetime {
    /// Never cached.
    None,
    /// Until the catalog generation changes.
    Generation,
    /// Until the generation changes or the wall-clock second does (SOA serials are the time).
    ThisSecond,
}

struct Entry {
    generation: u64,
    /// Unix second the entry is valid in, for [`Lifetime::ThisSecond`].
    second: Option<u64>,
    variants: Vec<Vec<u8>>,
}

#[derive(Default)]
struct Table {
    udp: HashMap<Box<[u8]>, Entry>,
    tcp: HashMap<Box<[u8]>, Entry>,
    bytes: usize,
}

impl Table {
    fn map(&mut self, transport: Transport) -> &mut HashMap<Box<[u8]>, Entry> {
        match transport {
            Transport::Udp => &mut self.udp,
            Transport::Tcp => &mut self.tcp,
        }
    }
}

/// The answer cache of one [`crate::Handler`].
#[derive(Default)]
pub(crate) struct AnswerCache {
    table: Mutex<Table>,
}

fn now_second() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The part of a query the response depends on, or `None` when it is not worth caching.
fn key(packet: &[u8]) -> Option<&[u8]> {
    (packet.len() > 12 && packet.len() - 2 <= MAX_KEY).then(|| &packet[2..])
}

impl AnswerCache {
    /// The stored response to `packet` built at `generation`, with the query's ID.
    pub(crate) fn get(
        &self,
        transport: Transport,
        packet: &[u8],
        generation: u64,
    ) -> Option<Vec<u8>> {
        let key = key(packet)?;
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = table.map(transport).get(key)?;
        if entry.generation != generation || entry.second.is_some_and(|s| s != now_second()) {
            return None;
        }
        let pick = match entry.variants.len() {
            0 => return None,
            1 => 0,
            n => rand::rng().random_range(0..n),
        };
        let mut out = entry.variants[pick].clone();
        drop(table);
        out[..2].copy_from_slice(&packet[..2]);
        Some(out)
    }

    /// Remember the responses built for `packet` at `generation`.
    pub(crate) fn put(
        &self,
        transport: Transport,
        packet: &[u8],
        generation: u64,
        lifetime: Lifetime,
        variants: &[Vec<u8>],
    ) {
        let second = match lifetime {
            Lifetime::None => return,
            Lifetime::Generation => None,
            Lifetime::ThisSecond => Some(now_second()),
        };
        let Some(key) = key(packet) else { return };
        if variants.is_empty() || variants.iter().any(|v| v.len() < 12) {
            return;
        }
        let size = key.len() + variants.iter().map(Vec::len).sum::<usize>();
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if table.bytes + size > MAX_BYTES {
            *table = Table::default();
        }
        let entry = Entry {
            generation,
            second,
            variants: variants.to_vec(),
        };
        let old = table.map(transport).insert(key.into(), entry);
        let freed = old.map_or(0, |e| {
            key.len() + e.variants.iter().map(Vec::len).sum::<usize>()
        });
        table.bytes = (table.bytes + size).saturating_sub(freed);
    }
}

/// The orderings of `n` shuffled records to build and keep: index permutations.
pub(crate) fn orderings(n: usize, cached: bool) -> Vec<Vec<usize>> {
    let identity: Vec<usize> = (0..n).collect();
    if n <= 1 {
        return vec![identity];
    }
    if !cached {
        let mut one = identity;
        rand::seq::SliceRandom::shuffle(one.as_mut_slice(), &mut rand::rng());
        return vec![one];
    }
    if n <= ALL_PERMUTATIONS_UP_TO {
        let mut all = Vec::new();
        permute(&mut identity.clone(), 0, &mut all);
        return all;
    }
    (0..SAMPLED_ORDERINGS)
        .map(|_| {
            let mut o = identity.clone();
            rand::seq::SliceRandom::shuffle(o.as_mut_slice(), &mut rand::rng());
            o
        })
        .collect()
}

fn permute(items: &mut Vec<usize>, at: usize, out: &mut Vec<Vec<usize>>) {
    if at == items.len() {
        out.push(items.clone());
        return;
    }
    for i in at..items.len() {
        items.swap(at, i);
        permute(items, at + 1, out);
        items.swap(at, i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(id: u16, name: &[u8]) -> Vec<u8> {
        let mut q = id.to_be_bytes().to_vec();
        q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        q.extend_from_slice(name);
        q
    }

    #[test]
    fn a_hit_carries_the_queries_id_and_respects_the_generation() {
        let c = AnswerCache::default();
        let q1 = query(7, b"\x03web\x00\x00\x21\x00\x01");
        let mut resp = vec![0u8; 20];
        resp[2] = 0x84;
        c.put(
            Transport::Udp,
            &q1,
            5,
            Lifetime::Generation,
            &[resp.clone()],
        );
        let q2 = query(0xbeef, b"\x03web\x00\x00\x21\x00\x01");
        let hit = c.get(Transport::Udp, &q2, 5).unwrap();
        assert_eq!(&hit[..2], &[0xbe, 0xef]);
        assert_eq!(&hit[2..], &resp[2..]);
        // another generation, another transport, another question: misses
        assert!(c.get(Transport::Udp, &q2, 6).is_none());
        assert!(c.get(Transport::Tcp, &q2, 5).is_none());
        assert!(c
            .get(Transport::Udp, &query(1, b"\x03WEB\x00\x00\x21\x00\x01"), 5)
            .is_none());
        // never cached, and too short to be a query
        c.put(Transport::Tcp, &q1, 5, Lifetime::None, &[resp.clone()]);
        assert!(c.get(Transport::Tcp, &q1, 5).is_none());
        assert!(c.get(Transport::Udp, &q1[..12], 5).is_none());
    }

    #[test]
    fn the_cache_stays_bounded() {
        let c = AnswerCache::default();
        let big = vec![0u8; 64 * 1024];
        for i in 0..200u32 {
            let q = query(1, &i.to_be_bytes());
            c.put(
                Transport::Tcp,
                &q,
                1,
                Lifetime::Generation,
                std::slice::from_ref(&big),
            );
        }
        let t = c.table.lock().unwrap();
        assert!(t.bytes <= MAX_BYTES, "{}", t.bytes);
        assert!(t.tcp.len() < 200);
    }

    #[test]
    fn orderings_cover_small_answers_and_sample_large_ones() {
        let mut all = orderings(3, true);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 6);
        assert_eq!(orderings(3, false).len(), 1);
        assert_eq!(orderings(1, true), vec![vec![0]]);
        let big = orderings(10, true);
        assert_eq!(big.len(), SAMPLED_ORDERINGS);
        for o in big {
            let mut s = o.clone();
            s.sort();
            assert_eq!(s, (0..10).collect::<Vec<_>>());
        }
    }
}
