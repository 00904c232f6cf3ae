//! Lifeguard pieces: confirmation-shortened suspicion timers and the local
//! health ("awareness") score. Mirrors memberlist `suspicion.go` / `awareness.go`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Minimum suspicion timeout: `mult * max(1, log10(max(1, n))) * interval`.
pub fn suspicion_timeout(mult: u32, n: usize, interval: Duration) -> Duration {
    let node_scale = (n.max(1) as f64).log10().max(1.0);
    // memberlist computes this in milliseconds of node_scale to stay integral.
    let scaled_ms = (node_scale * 1000.0) as u128;
    let nanos = u128::from(mult) * scaled_ms * interval.as_nanos() / 1000;
    Duration::from_nanos(nanos.min(u128::from(u64::MAX)) as u64)
}

/// Total timeout after `n` of `k` expected confirmations:
/// `max - (max - min) * ln(n + 1) / ln(k + 1)`, floored to whole ms, never below `min`.
pub fn remaining_timeout(n: u32, k: u32, min: Duration, max: Duration) -> Duration {
    if k == 0 {
        return min;
    }
    let frac = f64::from(n + 1).ln() / f64::from(k + 1).ln();
    let raw = max.as_secs_f64() * 1000.0 - frac * (max.as_secs_f64() - min.as_secs_f64()) * 1000.0;
    let t = Duration::from_millis(raw.max(0.0).floor() as u64);
    t.max(min)
}

/// One running suspicion of a node.
#[derive(Debug, Clone)]
pub struct Suspicion {
    /// When the suspicion started.
    pub start: Instant,
    /// Incarnation that was suspected.
    pub incarnation: u32,
    min: Duration,
    max: Duration,
    k: u32,
    n: u32,
    seen: HashSet<String>,
}

impl Suspicion {
    /// Start a suspicion raised by `from`; `k` independent confirmations
    /// shrink the timeout from `max` down to `min`.
    pub fn new(
        from: &str,
        incarnation: u32,
        k: u32,
        min: Duration,
        max: Duration,
        start: Instant,
    ) -> Self {
        let mut seen = HashSet::new();
        seen.insert(from.to_string());
        Suspicion {
            start,
            incarnation,
            min,
            max,
            k,
            n: 0,
            seen,
        }
    }

    /// Record a confirmation; true if it was new and counted (worth re-gossiping).
    pub fn confirm(&mut self, from: &str) -> bool {
        if self.n >= self.k || !self.seen.insert(from.to_string()) {
            return false;
        }
        self.n += 1;
        true
    }

    /// Confirmations counted so far.
    pub fn confirmations(&self) -> u32 {
        self.n
    }

    /// When the node should be declared dead.
    pub fn deadline(&self) -> Instant {
        self.start + remaining_timeout(self.n, self.k, self.min, self.max)
    }
}

/// Lifeguard local health score in `[0, max)`; timeouts scale by `score + 1`.
#[derive(Debug, Clone)]
pub struct Awareness {
    max: i64,
    score: i64,
}

impl Awareness {
    /// New healthy (score 0) counter with the given multiplier ceiling.
    pub fn new(max: u32) -> Self {
        Awareness {
            max: i64::from(max.max(1)),
            score: 0,
        }
    }

    /// Add `delta` (clamped to the range).
    pub fn apply_delta(&mut self, delta: i64) {
        self.score = (self.score + delta).clamp(0, self.max - 1);
    }

    /// Current score (0 is healthy).
    pub fn score(&self) -> i64 {
        self.score
    }

    /// `d * (score + 1)`.
    pub fn scale(&self, d: Duration) -> Duration {
        d * (self.score as u32 + 1)
    }
}
