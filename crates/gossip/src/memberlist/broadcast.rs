//! Retransmit-limited broadcast queue (memberlist `queue.go`
//! `TransmitLimitedQueue`, simplified): one pending broadcast per node name,
//! least-transmitted first, dropped after `retransmit_mult * ceil(log10(N+1))` sends.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};

use crate::wire::messages::Message;

/// Bytes of framing a compound message adds per part (u16 length).
pub const COMPOUND_PART_OVERHEAD: usize = 2;
/// Bytes of framing a compound message adds once (type + count).
pub const COMPOUND_HEADER_OVERHEAD: usize = 2;

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    msg: Message,
    len: usize,
}

/// Where an entry sits: fewest transmissions first, then newest (highest id) first.
type Slot = (u32, Reverse<u64>);

/// The queue: entries in send order, and an index by key so that queueing a newer broadcast
/// about a node replaces the older one without a scan (memberlist keeps a btree and a map
/// for the same reason: after a mass join every member queues a broadcast per member).
#[derive(Debug, Clone, Default)]
pub struct BroadcastQueue {
    entries: BTreeMap<Slot, Entry>,
    by_key: HashMap<String, Slot>,
    /// How many entries have each encoded length (so a scan stops once nothing can fit).
    lens: BTreeMap<usize, usize>,
    next_id: u64,
}

/// `retransmit_mult * ceil(log10(n + 1))`.
pub fn retransmit_limit(retransmit_mult: u32, n: usize) -> u32 {
    let scale = ((n as f64) + 1.0).log10().ceil() as u32;
    retransmit_mult * scale
}

impl BroadcastQueue {
    /// Queue `msg` about node `key`, replacing any older broadcast about it.
    pub fn queue(&mut self, key: &str, msg: Message) {
        let len = msg.encode_packet().map(|b| b.len()).unwrap_or(usize::MAX);
        if let Some(old) = self.by_key.remove(key) {
            if let Some(e) = self.entries.remove(&old) {
                self.forget_len(e.len);
            }
        }
        *self.lens.entry(len).or_default() += 1;
        self.next_id += 1;
        let slot = (0, Reverse(self.next_id));
        self.by_key.insert(key.to_string(), slot);
        self.entries.insert(
            slot,
            Entry {
                key: key.to_string(),
                msg,
                len,
            },
        );
    }

    fn forget_len(&mut self, len: usize) {
        if let Some(c) = self.lens.get_mut(&len) {
            *c -= 1;
            if *c == 0 {
                self.lens.remove(&len);
            }
        }
    }

    /// Number of queued broadcasts.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Take broadcasts fitting in `limit` bytes with `overhead` bytes per
    /// message, fewest transmissions (then newest) first; each taken one counts
    /// a transmission and is dropped once it reaches the retransmit limit.
    pub fn take(&mut self, overhead: usize, limit: usize, transmit_limit: u32) -> Vec<Message> {
        let transmit_limit = transmit_limit.max(1);
        let smallest = self.lens.keys().next().copied().unwrap_or(0);
        let mut used = 0usize;
        let mut picked = Vec::new();
        for (slot, e) in &self.entries {
            if picked.len() >= 255 || limit.saturating_sub(used) < smallest + overhead {
                break;
            }
            let need = e.len.saturating_add(overhead);
            if used.saturating_add(need) > limit {
                continue;
            }
            used += need;
            picked.push(*slot);
        }
        let mut out = Vec::with_capacity(picked.len());
        for slot in picked {
            let Some(e) = self.entries.remove(&slot) else {
                continue;
            };
            let (transmits, id) = slot;
            if transmits + 1 >= transmit_limit {
                self.by_key.remove(&e.key);
                self.forget_len(e.len);
                out.push(e.msg);
            } else {
                out.push(e.msg.clone());
                let next = (transmits + 1, id);
                self.by_key.insert(e.key.clone(), next);
                self.entries.insert(next, e);
            }
        }
        // A smaller pool lowers the limit: what has been sent often enough for it goes.
        let spent = self.entries.split_off(&(transmit_limit, Reverse(u64::MAX)));
        for e in spent.into_values() {
            self.by_key.remove(&e.key);
            self.forget_len(e.len);
        }
        out
    }
}
