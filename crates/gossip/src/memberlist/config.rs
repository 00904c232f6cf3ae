//! Timing and identity configuration for the SWIM core.

use std::net::SocketAddr;
use std::time::Duration;

/// Configuration of one [`Swim`](super::Swim) instance.
///
/// Field names follow hashicorp/memberlist `config.go`; [`SwimConfig::lan`] and
/// [`SwimConfig::wan`] are its `DefaultLANConfig` / `DefaultWANConfig` timings
/// (DESIGN.md §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwimConfig {
    /// Our node name (unique in the pool).
    pub name: String,
    /// Our advertised address (put in alive messages and ping source fields).
    pub addr: SocketAddr,
    /// Node metadata (Serf tags), carried in alive messages.
    pub meta: Vec<u8>,
    /// Protocol/delegate version bytes carried in alive messages:
    /// `[pmin, pmax, pcur, dmin, dmax, dcur]`.
    pub vsn: Vec<u8>,
    /// Time between probe rounds (scaled by awareness).
    pub probe_interval: Duration,
    /// How long to wait for a direct ack before indirect probes (not scaled).
    pub probe_timeout: Duration,
    /// Number of peers asked to probe indirectly.
    pub indirect_checks: usize,
    /// Time between gossip rounds.
    pub gossip_interval: Duration,
    /// Number of random peers gossiped to per round.
    pub gossip_nodes: usize,
    /// Dead nodes keep receiving gossip (and count toward N) this long.
    pub gossip_to_the_dead_time: Duration,
    /// Suspicion timeout multiplier (`suspicion_mult * max(1, log10 N) * probe_interval`).
    pub suspicion_mult: u32,
    /// Upper bound of the suspicion timeout, as a multiple of the minimum.
    pub suspicion_max_timeout_mult: u32,
    /// Broadcasts are sent `retransmit_mult * ceil(log10(N + 1))` times.
    pub retransmit_mult: u32,
    /// Lifeguard awareness ceiling (timeouts scale up to this factor).
    pub awareness_max_multiplier: u32,
    /// Interval of periodic push/pull state syncs (zero disables).
    pub push_pull_interval: Duration,
    /// UDP packet budget used to decide how many broadcasts to piggyback.
    pub packet_budget: usize,
    /// Bytes the driver adds around each packet (label, CRC, encryption);
    /// subtracted from `packet_budget`.
    pub packet_overhead: usize,
}

impl SwimConfig {
    /// memberlist `DefaultLANConfig`.
    pub fn lan(name: impl Into<String>, addr: SocketAddr) -> Self {
        SwimConfig {
            name: name.into(),
            addr,
            meta: Vec::new(),
            vsn: vec![1, 5, 2, 2, 5, 4],
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            indirect_checks: 3,
            gossip_interval: Duration::from_millis(200),
            gossip_nodes: 3,
            gossip_to_the_dead_time: Duration::from_secs(30),
            suspicion_mult: 4,
            suspicion_max_timeout_mult: 6,
            retransmit_mult: 4,
            awareness_max_multiplier: 8,
            push_pull_interval: Duration::from_secs(30),
            packet_budget: 1400,
            packet_overhead: 0,
        }
    }

    /// memberlist `DefaultWANConfig`.
    pub fn wan(name: impl Into<String>, addr: SocketAddr) -> Self {
        SwimConfig {
            probe_interval: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(3),
            gossip_interval: Duration::from_millis(500),
            gossip_nodes: 4,
            gossip_to_the_dead_time: Duration::from_secs(60),
            suspicion_mult: 6,
            push_pull_interval: Duration::from_secs(60),
            ..SwimConfig::lan(name, addr)
        }
    }
}
