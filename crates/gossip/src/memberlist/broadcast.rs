//! Retransmit-limited broadcast queue (memberlist `queue.go`
//! `TransmitLimitedQueue`, simplified): one pending broadcast per node name,
//! least-transmitted first, dropped after `retransmit_mult * ceil(log10(N+1))` sends.

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
    transmits: u32,
    id: u64,
}

/// The queue.
#[derive(Debug, Clone, Default)]
pub struct BroadcastQueue {
    entries: Vec<Entry>,
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
        self.entries.retain(|e| e.key != key);
        self.next_id += 1;
        self.entries.push(Entry {
            key: key.to_string(),
            msg,
            len,
            transmits: 0,
            id: self.next_id,
        });
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
        self.entries
            .sort_by(|a, b| a.transmits.cmp(&b.transmits).then(b.id.cmp(&a.id)));
        let mut used = 0usize;
        let mut out = Vec::new();
        for e in &mut self.entries {
            if out.len() >= 255 {
                break;
            }
            let need = e.len.saturating_add(overhead);
            if used.saturating_add(need) > limit {
                continue;
            }
            used += need;
            e.transmits += 1;
            out.push(e.msg.clone());
        }
        self.entries.retain(|e| e.transmits < transmit_limit.max(1));
        out
    }
}
