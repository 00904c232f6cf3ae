//! The memberlist layer: the sans-I/O SWIM + Lifeguard membership core
//! (hashicorp/memberlist `state.go` semantics) on top of memberlist's message
//! types ([`crate::wire::messages`]).
//!
//! Owns the memberlist-level state: nodes and their states, incarnations,
//! probing, suspicion and awareness ([`Suspicion`], [`Awareness`]), the broadcast
//! queue ([`BroadcastQueue`]) and the timing configuration ([`SwimConfig`]).
//! Must never: do I/O, read a clock, draw randomness, frame or encrypt packets
//! (the wire layer does), or know about Serf (tags are opaque node meta).
//!
//! A [`Swim`] owns the node table, our incarnation, the probe cycle, suspicion
//! timers, the awareness score and the broadcast queue. It never reads a clock
//! or draws randomness: the driver feeds [`Input`]s (including [`Input::Tick`]
//! with the current time) plus a random-number closure, and performs the
//! returned [`Output`]s (send a UDP packet, run a TCP push/pull, deliver an
//! event). [`Swim::next_deadline`] says when the next `Tick` is due.
//!
//! Push/pull itself is driver work: the core emits [`Output::PushPull`] (on
//! join, twice after a join — see [`Input::Joined`] — and periodically: every
//! `push_pull_interval`, scaled with the pool and first staggered as memberlist
//! does), offers [`Swim::local_state`] to send,
//! and merges a received state with [`Input::PushPull`]. Likewise the TCP
//! fallback ping ([`Output::TcpPing`]) is the driver's to perform.

mod broadcast;
mod config;
mod suspicion;
#[cfg(test)]
mod tests;

pub use broadcast::{
    retransmit_limit, BroadcastQueue, COMPOUND_HEADER_OVERHEAD, COMPOUND_PART_OVERHEAD,
};
pub use config::SwimConfig;
pub use suspicion::{remaining_timeout, suspicion_timeout, Awareness, Suspicion};

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::wire::messages::{
    node_state, AckResp, Alive, Dead, IndirectPingReq, Message, NackResp, Ping, PushNodeState,
    PushPull, Suspect,
};

/// A member's state as memberlist tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Answering probes.
    Alive,
    /// Missed a probe; will be declared dead unless it refutes.
    Suspect,
    /// Declared dead by someone else (failed).
    Dead,
    /// Declared dead by itself (graceful leave).
    Left,
}

/// One row of [`Swim::members`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// Node name.
    pub name: String,
    /// Gossip address.
    pub addr: SocketAddr,
    /// Metadata (Serf tags).
    pub meta: Vec<u8>,
    /// Highest known incarnation.
    pub incarnation: u32,
    /// State.
    pub state: State,
    /// Protocol versions `[pmin, pmax, pcur, dmin, dmax, dcur]` (may be empty).
    pub vsn: Vec<u8>,
}

/// What happened to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A new (or previously dead/left) node is alive.
    Join,
    /// An alive node changed its address or metadata.
    Update,
    /// The node left gracefully (dead message from itself).
    Leave,
    /// The node was declared dead by others.
    Failed,
}

/// A membership change, for the Serf layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberEvent {
    /// Kind of change.
    pub kind: EventKind,
    /// Node name.
    pub name: String,
    /// Node address.
    pub addr: SocketAddr,
    /// Node metadata.
    pub meta: Vec<u8>,
    /// Protocol versions `[pmin, pmax, pcur, dmin, dmax, dcur]` (may be empty).
    pub vsn: Vec<u8>,
}

/// Inputs to [`Swim::handle`].
#[derive(Debug, Clone)]
pub enum Input {
    /// Time passes; run due timers (probe, gossip, suspicion, push/pull).
    Tick(Instant),
    /// A decoded UDP packet arrived (compound/CRC/compress wrappers allowed).
    Packet {
        /// Sender's address.
        from: SocketAddr,
        /// The decoded message.
        msg: Message,
        /// Receive time.
        now: Instant,
    },
    /// Join a pool through these seeds (emits [`Output::PushPull`] for each, and later the
    /// push/pull that follows a join, as [`Input::Joined`] does).
    Join(Vec<SocketAddr>, Instant),
    /// The driver joined the pool with push/pulls of its own. A joiner then syncs twice more,
    /// each time with a random member: once the join's broadcasts have had their time
    /// (`retransmit_limit · gossip_interval` after joining), and once its broadcast queue has
    /// run dry. memberlist does not; but when many members join at once, each got its seed's
    /// view from before the others' joins reached it, and the retransmit-limited gossip leaves
    /// a few members unaware of a few others until the periodic push/pull, 30 s later
    /// (memberlist: later still). See `docs/gossip-scale.md`.
    Joined(Instant),
    /// A push/pull exchange delivered a remote state; merge it.
    PushPull(PushPull, Instant),
    /// Leave gracefully: broadcast a dead message about ourselves from ourselves.
    Leave(Instant),
    /// Our metadata (Serf tags) changed: bump the incarnation and broadcast alive.
    UpdateMeta(Vec<u8>, Instant),
    /// Piggyback a user (Serf) message on outgoing packets; a newer broadcast
    /// with the same `key` replaces an older one.
    UserBroadcast {
        /// Invalidation key (kept apart from node names).
        key: String,
        /// Raw Serf bytes.
        payload: Vec<u8>,
    },
}

/// Effects for the driver to perform.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send this message as a UDP packet.
    SendPacket {
        /// Destination.
        to: SocketAddr,
        /// Message (possibly compound, carrying piggybacked broadcasts).
        msg: Message,
    },
    /// Run a TCP push/pull with `to`: send [`Swim::local_state`], feed the
    /// answer back as [`Input::PushPull`].
    PushPull {
        /// Peer.
        to: SocketAddr,
        /// True when this is part of a join.
        join: bool,
    },
    /// A membership change.
    MemberEvent(MemberEvent),
    /// Ping `to` over TCP (memberlist's fallback probe) before `deadline`; feed the
    /// answering ack back as an [`Input::Packet`].
    TcpPing {
        /// Target.
        to: SocketAddr,
        /// The ping to send.
        ping: Ping,
        /// Give up after this.
        deadline: Instant,
    },
    /// A user (Serf) message arrived.
    User {
        /// Sender.
        from: SocketAddr,
        /// Raw Serf bytes.
        payload: Vec<u8>,
    },
    /// A direct probe was answered in time (memberlist's `NotifyPingComplete`): the Serf
    /// layer feeds the RTT and the ack's payload (the peer's coordinate) to Vivaldi. Acks
    /// that arrive through indirect probes or the TCP fallback do not count: their RTT
    /// measures a detour.
    PingComplete {
        /// The probed node.
        node: String,
        /// From sending the ping to receiving the ack.
        rtt: std::time::Duration,
        /// The ack's payload (may be empty).
        payload: Vec<u8>,
    },
}

#[derive(Debug, Clone)]
struct Node {
    addr: SocketAddr,
    meta: Vec<u8>,
    vsn: Vec<u8>,
    incarnation: u32,
    state: State,
    state_change: Instant,
}

/// The push/pulls that follow a join ([`Input::Joined`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterJoin {
    /// Not joining (or done).
    Idle,
    /// Joined at this time; the first sync is due `retransmit_limit · gossip_interval` later.
    Settling(Instant),
    /// First sync done; the second is due when our broadcast queue is empty.
    Draining,
}

/// The probe in flight.
#[derive(Debug, Clone)]
struct Probe {
    seq: u32,
    target: String,
    sent: Instant,
    direct_deadline: Instant,
    end: Instant,
    indirect_sent: bool,
    expected_nacks: usize,
    nacks: usize,
}

/// An indirect ping we relay for someone else.
#[derive(Debug, Clone)]
struct Relay {
    orig_seq: u32,
    requester: SocketAddr,
    nack: bool,
    deadline: Instant,
}

/// The SWIM state machine. See the module docs.
#[derive(Debug, Clone)]
pub struct Swim {
    cfg: SwimConfig,
    incarnation: u32,
    leaving: bool,
    nodes: BTreeMap<String, Node>,
    /// The names in `nodes`, for picking random ones without a walk over the table.
    names: Vec<String>,
    suspicions: HashMap<String, Suspicion>,
    awareness: Awareness,
    queue: BroadcastQueue,
    seq: u32,
    probe: Option<Probe>,
    relays: HashMap<u32, Relay>,
    probe_order: Vec<String>,
    probe_index: usize,
    next_probe: Instant,
    next_gossip: Instant,
    next_push_pull: Instant,
    /// When the earliest dead or left node is due to be forgotten (None: none is).
    reap_at: Option<Instant>,
    /// Where we are in the push/pulls that follow a join (see [`Input::Joined`]).
    after_join: AfterJoin,
    /// The first periodic push/pull has been put off by a random stagger (at the first tick).
    push_pull_staggered: bool,
    /// Put in every ack we send (Serf: our coordinate).
    ack_payload: Vec<u8>,
    /// What the driver reports as metrics: rounds run and probes finished.
    rounds: Rounds,
}

/// Protocol rounds since the driver last looked ([`Swim::take_rounds`]): memberlist's
/// `probeNode` (one probe, from its ping to its ack or its end) and `gossip` timers. The core
/// reads no clock, so the driver times gossip rounds and reads probe durations from here.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rounds {
    /// Gossip rounds run.
    pub gossip: u32,
    /// How long each finished probe took, oldest first (at most [`MAX_PROBES_KEPT`]).
    pub probes: Vec<Duration>,
}

/// Probe durations kept between two looks of the driver (it looks after every input).
const MAX_PROBES_KEPT: usize = 16;

fn addr_bytes(a: SocketAddr) -> (Vec<u8>, u16) {
    match a.ip() {
        IpAddr::V4(ip) => (ip.octets().to_vec(), a.port()),
        IpAddr::V6(ip) => (ip.octets().to_vec(), a.port()),
    }
}

/// An IP (4 or 16 bytes) and port from the wire as a socket address.
pub fn parse_addr(ip: &[u8], port: u16) -> Option<SocketAddr> {
    let ip = match ip.len() {
        4 => IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
        16 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(ip);
            IpAddr::V6(Ipv6Addr::from(o))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Pools larger than this sync less often (memberlist `pushPullScaleThreshold`).
const PUSH_PULL_SCALE_THRESHOLD: usize = 32;

/// memberlist `pushPullScale`: the push/pull interval times `ceil(log2 n − log2 32) + 1` beyond
/// 32 members (×2 at 50, ×4 at 200, ×6 at 1,000), so that full state syncs do not saturate the
/// network as the pool grows.
pub fn push_pull_scale(interval: Duration, n: usize) -> Duration {
    if n <= PUSH_PULL_SCALE_THRESHOLD {
        return interval;
    }
    let mult = ((n as f64).log2() - (PUSH_PULL_SCALE_THRESHOLD as f64).log2()).ceil() + 1.0;
    interval * mult as u32
}

/// Pick up to `k` items at random (partial Fisher–Yates).
fn pick<T>(mut v: Vec<T>, k: usize, rng: &mut impl FnMut() -> u64) -> Vec<T> {
    let k = k.min(v.len());
    for i in 0..k {
        let j = i + (rng() % (v.len() - i) as u64) as usize;
        v.swap(i, j);
    }
    v.truncate(k);
    v
}

impl Swim {
    /// A fresh instance knowing only itself (incarnation 1); our alive
    /// message is queued for broadcast.
    pub fn new(cfg: SwimConfig, now: Instant) -> Self {
        let me = Node {
            addr: cfg.addr,
            meta: cfg.meta.clone(),
            vsn: cfg.vsn.clone(),
            incarnation: 1,
            state: State::Alive,
            state_change: now,
        };
        let mut nodes = BTreeMap::new();
        nodes.insert(cfg.name.clone(), me);
        let mut s = Swim {
            awareness: Awareness::new(cfg.awareness_max_multiplier),
            incarnation: 1,
            leaving: false,
            names: nodes.keys().cloned().collect(),
            nodes,
            suspicions: HashMap::new(),
            queue: BroadcastQueue::default(),
            seq: 0,
            probe: None,
            rounds: Rounds::default(),
            relays: HashMap::new(),
            probe_order: Vec::new(),
            probe_index: 0,
            next_probe: now + cfg.probe_interval,
            next_gossip: now + cfg.gossip_interval,
            next_push_pull: now + cfg.push_pull_interval,
            reap_at: None,
            after_join: AfterJoin::Idle,
            push_pull_staggered: false,
            ack_payload: Vec::new(),
            cfg,
        };
        let a = s.self_alive();
        s.queue.queue(&s.cfg.name.clone(), Message::Alive(a));
        s
    }

    /// Our configuration.
    pub fn config(&self) -> &SwimConfig {
        &self.cfg
    }

    /// Our current incarnation.
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// Set what our acks carry from now on (memberlist's `AckPayload` delegate).
    pub fn set_ack_payload(&mut self, payload: Vec<u8>) {
        self.ack_payload = payload;
    }

    /// The rounds run since the last call (see [`Rounds`]).
    pub fn take_rounds(&mut self) -> Rounds {
        std::mem::take(&mut self.rounds)
    }

    fn probe_done(&mut self, p: &Probe, now: Instant) {
        if self.rounds.probes.len() < MAX_PROBES_KEPT {
            self.rounds
                .probes
                .push(now.saturating_duration_since(p.sent));
        }
    }

    /// Lifeguard awareness score (0 = healthy).
    pub fn awareness(&self) -> i64 {
        self.awareness.score()
    }

    /// Broadcasts still waiting to be (re)transmitted.
    pub fn pending_broadcasts(&self) -> usize {
        self.queue.len()
    }

    /// All known members, ourselves included, sorted by name.
    pub fn members(&self) -> Vec<MemberView> {
        self.nodes
            .iter()
            .map(|(name, n)| MemberView {
                name: name.clone(),
                addr: n.addr,
                meta: n.meta.clone(),
                incarnation: n.incarnation,
                state: n.state,
                vsn: n.vsn.clone(),
            })
            .collect()
    }

    /// One member by name.
    pub fn member(&self, name: &str) -> Option<MemberView> {
        self.nodes.get(name).map(|n| MemberView {
            name: name.to_string(),
            addr: n.addr,
            meta: n.meta.clone(),
            incarnation: n.incarnation,
            state: n.state,
            vsn: n.vsn.clone(),
        })
    }

    /// One member's state by name (what [`Swim::member`] says, without the copy).
    pub fn state_of(&self, name: &str) -> Option<State> {
        self.nodes.get(name).map(|n| n.state)
    }

    /// The earliest time a [`Input::Tick`] has work to do.
    pub fn next_deadline(&self) -> Instant {
        let mut t = self.next_gossip;
        if !self.cfg.push_pull_interval.is_zero() {
            t = t.min(self.next_push_pull);
        }
        // The next probe waits for the one in flight (a failing probe runs to its
        // awareness-scaled end, past the next probe time) and does not run while leaving: a
        // past probe time then is no deadline, or the driver would spin until it passes.
        match &self.probe {
            Some(p) if p.indirect_sent => t = t.min(p.end),
            Some(p) => t = t.min(p.direct_deadline),
            None if !self.leaving => t = t.min(self.next_probe),
            None => {}
        }
        for s in self.suspicions.values() {
            t = t.min(s.deadline());
        }
        for r in self.relays.values() {
            t = t.min(r.deadline);
        }
        if let Some(at) = self.sync_after_join_at() {
            t = t.min(at);
        }
        t
    }

    /// Our node table as push/pull node states (memberlist `sendLocalState`).
    pub fn local_state(&self) -> Vec<PushNodeState> {
        self.nodes
            .iter()
            .map(|(name, n)| {
                let (addr, port) = addr_bytes(n.addr);
                PushNodeState {
                    name: name.clone(),
                    addr,
                    port,
                    meta: n.meta.clone(),
                    incarnation: n.incarnation,
                    state: match n.state {
                        State::Alive => node_state::ALIVE,
                        State::Suspect => node_state::SUSPECT,
                        State::Dead => node_state::DEAD,
                        State::Left => node_state::LEFT,
                    },
                    vsn: n.vsn.clone(),
                }
            })
            .collect()
    }

    /// Feed one input; returns the effects to perform, in order.
    pub fn handle(&mut self, input: Input, rng: &mut impl FnMut() -> u64) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Tick(now) => self.tick(now, rng, &mut out),
            Input::Packet { from, msg, now } => {
                for m in msg.flatten() {
                    self.handle_msg(from, m, now, &mut out);
                }
            }
            Input::Joined(now) => self.after_join = AfterJoin::Settling(now),
            Input::Join(seeds, now) => {
                if !seeds.is_empty() {
                    self.after_join = AfterJoin::Settling(now);
                }
                for to in seeds {
                    out.push(Output::PushPull { to, join: true });
                }
            }
            Input::PushPull(pp, now) => self.merge_remote(pp, now, &mut out),
            Input::Leave(now) => {
                self.leaving = true;
                let d = Dead {
                    incarnation: self.incarnation,
                    node: self.cfg.name.clone(),
                    from: self.cfg.name.clone(),
                };
                self.dead_node(d, now, &mut out);
            }
            Input::UpdateMeta(meta, now) if !self.leaving => {
                self.cfg.meta = meta.clone();
                if let Some(me) = self.nodes.get_mut(&self.cfg.name) {
                    me.meta = meta;
                }
                let inc = self.incarnation;
                self.bump_and_announce(inc, now);
            }
            Input::UpdateMeta(..) => {}
            Input::UserBroadcast { key, payload } => {
                self.queue
                    .queue(&format!("\u{0}user:{key}"), Message::User(payload));
            }
        }
        out
    }

    fn self_alive(&self) -> Alive {
        let (addr, port) = addr_bytes(self.cfg.addr);
        Alive {
            incarnation: self.incarnation,
            node: self.cfg.name.clone(),
            addr,
            port,
            meta: self.cfg.meta.clone(),
            vsn: self.cfg.vsn.clone(),
        }
    }

    /// memberlist `estNumNodes`: the size of the node table — dead and left nodes count until
    /// they are forgotten, `gossip_to_the_dead_time` after they died.
    fn num_nodes(&self) -> usize {
        self.nodes.len()
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn event(&self, kind: EventKind, name: &str, out: &mut Vec<Output>) {
        if let Some(n) = self.nodes.get(name) {
            out.push(Output::MemberEvent(MemberEvent {
                kind,
                name: name.to_string(),
                addr: n.addr,
                meta: n.meta.clone(),
                vsn: n.vsn.clone(),
            }));
        }
    }

    /// Send `msg`, piggybacking queued broadcasts when they fit.
    fn send(&mut self, to: SocketAddr, msg: Message, out: &mut Vec<Output>) {
        self.send_all(to, vec![msg], out);
    }

    /// Send `msgs` (at least one) in one packet, as a compound with as many
    /// queued broadcasts as fit in the packet budget (memberlist `sendMsg`).
    fn send_all(&mut self, to: SocketAddr, mut msgs: Vec<Message>, out: &mut Vec<Output>) {
        let size: usize = msgs
            .iter()
            .map(|m| m.encode_packet().map(|b| b.len()).unwrap_or(0) + COMPOUND_PART_OVERHEAD)
            .sum();
        let budget = self
            .cfg
            .packet_budget
            .saturating_sub(self.cfg.packet_overhead);
        let avail = budget.saturating_sub(size + COMPOUND_HEADER_OVERHEAD);
        if !self.queue.is_empty() {
            let limit = retransmit_limit(self.cfg.retransmit_mult, self.num_nodes());
            msgs.extend(self.queue.take(COMPOUND_PART_OVERHEAD, avail, limit));
        }
        let msg = if msgs.len() == 1 {
            msgs.remove(0)
        } else {
            Message::Compound(msgs)
        };
        out.push(Output::SendPacket { to, msg });
    }

    fn handle_msg(&mut self, from: SocketAddr, msg: Message, now: Instant, out: &mut Vec<Output>) {
        match msg {
            Message::Ping(p) => {
                if !p.node.is_empty() && p.node != self.cfg.name {
                    return; // meant for someone else (address reuse)
                }
                let to = if p.source_port > 0 {
                    parse_addr(&p.source_addr, p.source_port)
                } else {
                    None
                };
                let ack = AckResp {
                    seq_no: p.seq_no,
                    payload: self.ack_payload.clone(),
                };
                self.send(to.unwrap_or(from), Message::Ack(ack), out);
            }
            Message::IndirectPing(ind) => {
                let Some(target) = parse_addr(&ind.target, ind.port) else {
                    return;
                };
                let requester = if ind.source_port > 0 {
                    parse_addr(&ind.source_addr, ind.source_port)
                } else {
                    None
                };
                let seq = self.next_seq();
                self.relays.insert(
                    seq,
                    Relay {
                        orig_seq: ind.seq_no,
                        requester: requester.unwrap_or(from),
                        nack: ind.nack,
                        deadline: now + self.cfg.probe_timeout,
                    },
                );
                let ping = self.make_ping(seq, &ind.node);
                self.send(target, Message::Ping(ping), out);
            }
            Message::Ack(a) => {
                if let Some(p) = self.probe.as_mut() {
                    if p.seq == a.seq_no {
                        // Direct or relayed ack: the probe succeeded.
                        self.awareness.apply_delta(-1);
                        let p = p.clone();
                        self.probe_done(&p, now);
                        if !p.indirect_sent {
                            out.push(Output::PingComplete {
                                node: p.target.clone(),
                                rtt: now.saturating_duration_since(p.sent),
                                payload: a.payload,
                            });
                        }
                        self.probe = None;
                        return;
                    }
                }
                if let Some(r) = self.relays.remove(&a.seq_no) {
                    // Like memberlist, a relayed ack carries no payload: the requester learns
                    // nothing about the target's coordinate from a detour.
                    let ack = AckResp {
                        seq_no: r.orig_seq,
                        payload: Vec::new(),
                    };
                    self.send(r.requester, Message::Ack(ack), out);
                }
            }
            Message::Nack(n) => {
                if let Some(p) = self.probe.as_mut() {
                    if p.seq == n.seq_no {
                        p.nacks += 1;
                    }
                }
            }
            Message::Alive(a) => self.alive_node(a, now, out),
            Message::Suspect(s) => self.suspect_node(s, now, out),
            Message::Dead(d) => self.dead_node(d, now, out),
            Message::User(payload) => out.push(Output::User { from, payload }),
            // Stream-only or wrappers already flattened; errors are ignored.
            _ => {}
        }
    }

    fn make_ping(&self, seq: u32, node: &str) -> Ping {
        let (source_addr, source_port) = addr_bytes(self.cfg.addr);
        Ping {
            seq_no: seq,
            node: node.to_string(),
            source_addr,
            source_port,
            source_node: self.cfg.name.clone(),
        }
    }

    /// Bump our incarnation past `accused` and broadcast alive (memberlist
    /// `refute`); refuting counts against our awareness.
    fn refute(&mut self, accused: u32, now: Instant) {
        self.awareness.apply_delta(1);
        self.bump_and_announce(accused, now);
    }

    fn bump_and_announce(&mut self, accused: u32, now: Instant) {
        self.incarnation = self
            .incarnation
            .saturating_add(1)
            .max(accused.saturating_add(1));
        if let Some(me) = self.nodes.get_mut(&self.cfg.name) {
            me.incarnation = self.incarnation;
            me.state = State::Alive;
            me.state_change = now;
        }
        let a = self.self_alive();
        self.queue.queue(&self.cfg.name.clone(), Message::Alive(a));
    }

    fn alive_node(&mut self, a: Alive, now: Instant, out: &mut Vec<Output>) {
        let Some(addr) = parse_addr(&a.addr, a.port) else {
            return;
        };
        if a.node == self.cfg.name {
            let same = addr == self.cfg.addr && a.meta == self.cfg.meta;
            if self.leaving
                || a.incarnation < self.incarnation
                || (a.incarnation == self.incarnation && same)
            {
                return;
            }
            // Someone claims to be us with a newer or different view: refute.
            self.refute(a.incarnation, now);
            return;
        }
        match self.nodes.get_mut(&a.node) {
            None => {
                self.names.push(a.node.clone());
                self.nodes.insert(
                    a.node.clone(),
                    Node {
                        addr,
                        meta: a.meta.clone(),
                        vsn: a.vsn.clone(),
                        incarnation: a.incarnation,
                        state: State::Alive,
                        state_change: now,
                    },
                );
                self.event(EventKind::Join, &a.node, out);
            }
            Some(n) => {
                // A live node claimed from another address is a name conflict: keep the one
                // we know (memberlist's "Conflicting address"); a dead or left one may move.
                if n.addr != addr && matches!(n.state, State::Alive | State::Suspect) {
                    return;
                }
                if a.incarnation <= n.incarnation {
                    return;
                }
                let was = n.state;
                let changed = n.addr != addr || n.meta != a.meta;
                n.addr = addr;
                n.meta = a.meta.clone();
                n.vsn = a.vsn.clone();
                n.incarnation = a.incarnation;
                if was != State::Alive {
                    n.state = State::Alive;
                    n.state_change = now;
                }
                self.suspicions.remove(&a.node);
                match was {
                    State::Dead | State::Left => self.event(EventKind::Join, &a.node, out),
                    _ if changed => self.event(EventKind::Update, &a.node, out),
                    _ => {}
                }
            }
        }
        let key = a.node.clone();
        self.queue.queue(&key, Message::Alive(a));
    }

    fn suspect_node(&mut self, s: Suspect, now: Instant, out: &mut Vec<Output>) {
        let _ = out;
        let n_nodes = self.num_nodes();
        let Some(n) = self.nodes.get(&s.node) else {
            return;
        };
        if s.incarnation < n.incarnation {
            return;
        }
        if let Some(susp) = self.suspicions.get_mut(&s.node) {
            if susp.confirm(&s.from) {
                let key = s.node.clone();
                self.queue.queue(&key, Message::Suspect(s));
            }
            return;
        }
        if n.state != State::Alive {
            return;
        }
        if s.node == self.cfg.name {
            if !self.leaving {
                self.refute(s.incarnation, now);
            }
            return;
        }
        let k = if n_nodes.saturating_sub(2) < (self.cfg.suspicion_mult as usize).saturating_sub(2)
        {
            0
        } else {
            self.cfg.suspicion_mult.saturating_sub(2)
        };
        let min = suspicion_timeout(self.cfg.suspicion_mult, n_nodes, self.cfg.probe_interval);
        let max = min * self.cfg.suspicion_max_timeout_mult;
        if let Some(n) = self.nodes.get_mut(&s.node) {
            n.incarnation = s.incarnation;
            n.state = State::Suspect;
            n.state_change = now;
        }
        self.suspicions.insert(
            s.node.clone(),
            Suspicion::new(&s.from, s.incarnation, k, min, max, now),
        );
        let key = s.node.clone();
        self.queue.queue(&key, Message::Suspect(s));
    }

    fn dead_node(&mut self, d: Dead, now: Instant, out: &mut Vec<Output>) {
        let Some(n) = self.nodes.get(&d.node) else {
            return;
        };
        if d.incarnation < n.incarnation || matches!(n.state, State::Dead | State::Left) {
            return;
        }
        if d.node == self.cfg.name && !self.leaving {
            self.refute(d.incarnation, now);
            return;
        }
        let left = d.node == d.from;
        if let Some(n) = self.nodes.get_mut(&d.node) {
            n.incarnation = d.incarnation;
            n.state = if left { State::Left } else { State::Dead };
            n.state_change = now;
        }
        let forget = now + self.cfg.gossip_to_the_dead_time;
        self.reap_at = Some(self.reap_at.map_or(forget, |t| t.min(forget)));
        self.suspicions.remove(&d.node);
        let key = d.node.clone();
        self.event(
            if left {
                EventKind::Leave
            } else {
                EventKind::Failed
            },
            &key,
            out,
        );
        self.queue.queue(&key, Message::Dead(d));
    }

    /// memberlist `mergeRemoteState`: alive as alive, suspect and dead as
    /// suspicion (prefer suspicion to dead), left as dead-from-itself.
    fn merge_remote(&mut self, pp: PushPull, now: Instant, out: &mut Vec<Output>) {
        for ns in pp.nodes {
            match ns.state {
                node_state::ALIVE => self.alive_node(
                    Alive {
                        incarnation: ns.incarnation,
                        node: ns.name,
                        addr: ns.addr,
                        port: ns.port,
                        meta: ns.meta,
                        vsn: ns.vsn,
                    },
                    now,
                    out,
                ),
                node_state::LEFT => {
                    let d = Dead {
                        incarnation: ns.incarnation,
                        node: ns.name.clone(),
                        from: ns.name,
                    };
                    self.dead_node(d, now, out);
                }
                _ => {
                    let s = Suspect {
                        incarnation: ns.incarnation,
                        node: ns.name,
                        from: self.cfg.name.clone(),
                    };
                    self.suspect_node(s, now, out);
                }
            }
        }
    }

    fn tick(&mut self, now: Instant, rng: &mut impl FnMut() -> u64, out: &mut Vec<Output>) {
        // Relayed indirect pings that timed out: nack the requester.
        let mut expired: Vec<u32> = self
            .relays
            .iter()
            .filter(|(_, r)| now >= r.deadline)
            .map(|(s, _)| *s)
            .collect();
        expired.sort_unstable();
        for seq in expired {
            if let Some(r) = self.relays.remove(&seq) {
                if r.nack {
                    self.send(
                        r.requester,
                        Message::Nack(NackResp { seq_no: r.orig_seq }),
                        out,
                    );
                }
            }
        }
        // Suspicion timers.
        let mut due: Vec<String> = self
            .suspicions
            .iter()
            .filter(|(_, s)| now >= s.deadline())
            .map(|(n, _)| n.clone())
            .collect();
        due.sort();
        for name in due {
            if let Some(s) = self.suspicions.remove(&name) {
                let still = self
                    .nodes
                    .get(&name)
                    .is_some_and(|n| n.state == State::Suspect && n.incarnation == s.incarnation);
                if still {
                    let d = Dead {
                        incarnation: s.incarnation,
                        node: name,
                        from: self.cfg.name.clone(),
                    };
                    self.dead_node(d, now, out);
                }
            }
        }
        // Forget nodes dead for longer than we keep gossiping to them (memberlist
        // `resetNodes`); the Serf layer keeps its own record of failed members. Only when one
        // is due: the scan is over the whole table.
        if self.reap_at.is_some_and(|t| now >= t) {
            let me = self.cfg.name.clone();
            let keep = self.cfg.gossip_to_the_dead_time;
            self.nodes.retain(|name, n| {
                *name == me
                    || matches!(n.state, State::Alive | State::Suspect)
                    || now.saturating_duration_since(n.state_change) < keep
            });
            self.names = self.nodes.keys().cloned().collect();
            self.reap_at = self
                .nodes
                .iter()
                .filter(|(name, n)| **name != me && matches!(n.state, State::Dead | State::Left))
                .map(|(_, n)| n.state_change + keep)
                .min();
        }
        self.tick_probe(now, rng, out);
        if now >= self.next_gossip {
            self.next_gossip = now + self.cfg.gossip_interval;
            self.rounds.gossip = self.rounds.gossip.saturating_add(1);
            self.gossip(now, rng, out);
        }
        if !self.push_pull_staggered {
            // memberlist staggers its push/pull timer by a random part of the interval, so that
            // members started together do not all sync at the same moment, every time.
            self.push_pull_staggered = true;
            let interval = self.cfg.push_pull_interval.as_nanos() as u64;
            if interval > 0 {
                self.next_push_pull += Duration::from_nanos(rng() % interval);
            }
        }
        if !self.cfg.push_pull_interval.is_zero() && now >= self.next_push_pull {
            self.next_push_pull =
                now + push_pull_scale(self.cfg.push_pull_interval, self.num_nodes());
            let peers = self.random_nodes(1, rng, |_, n| n.state != State::Alive);
            if let Some(to) = peers.first().copied() {
                out.push(Output::PushPull { to, join: false });
            }
        }
        let sync = match self.after_join {
            AfterJoin::Settling(_) if self.sync_after_join_at().is_some_and(|at| now >= at) => {
                self.after_join = AfterJoin::Draining;
                true
            }
            AfterJoin::Draining if self.queue.is_empty() => {
                self.after_join = AfterJoin::Idle;
                true
            }
            _ => false,
        };
        if sync && !self.leaving {
            let peers = self.random_nodes(1, rng, |_, n| n.state != State::Alive);
            if let Some(to) = peers.first().copied() {
                out.push(Output::PushPull { to, join: false });
            }
        }
    }

    fn tick_probe(&mut self, now: Instant, rng: &mut impl FnMut() -> u64, out: &mut Vec<Output>) {
        if let Some(p) = self.probe.clone() {
            if !p.indirect_sent && now >= p.direct_deadline {
                self.send_indirect(p, rng, out);
            } else if p.indirect_sent && now >= p.end {
                // Probe failed: Lifeguard penalty, then suspect the target.
                let delta = if p.expected_nacks > 0 {
                    p.expected_nacks.saturating_sub(p.nacks) as i64
                } else {
                    1
                };
                self.awareness.apply_delta(delta);
                self.probe = None;
                self.probe_done(&p, now);
                if let Some(n) = self.nodes.get(&p.target) {
                    let s = Suspect {
                        incarnation: n.incarnation,
                        node: p.target.clone(),
                        from: self.cfg.name.clone(),
                    };
                    self.suspect_node(s, now, out);
                }
            }
        }
        if self.probe.is_some() || now < self.next_probe || self.leaving {
            return;
        }
        self.next_probe = now + self.cfg.probe_interval;
        let Some(target) = self.next_target(rng) else {
            return;
        };
        let Some(addr) = self.nodes.get(&target).map(|n| n.addr) else {
            return;
        };
        let seq = self.next_seq();
        let interval = self.awareness.scale(self.cfg.probe_interval);
        self.probe = Some(Probe {
            seq,
            target: target.clone(),
            sent: now,
            direct_deadline: now + self.cfg.probe_timeout,
            end: now + interval,
            indirect_sent: false,
            expected_nacks: 0,
            nacks: 0,
        });
        // A successful probe lets the next round start on the fixed
        // interval; a failing one holds it until its (awareness-scaled) end.
        let mut msgs = vec![Message::Ping(self.make_ping(seq, &target))];
        if let Some(n) = self
            .nodes
            .get(&target)
            .filter(|n| n.state == State::Suspect)
        {
            // Tell a suspect node directly so it can refute quickly.
            msgs.push(Message::Suspect(Suspect {
                incarnation: n.incarnation,
                node: target.clone(),
                from: self.cfg.name.clone(),
            }));
        }
        self.send_all(addr, msgs, out);
    }

    fn send_indirect(
        &mut self,
        mut p: Probe,
        rng: &mut impl FnMut() -> u64,
        out: &mut Vec<Output>,
    ) {
        let Some(target) = self.nodes.get(&p.target) else {
            self.probe = None;
            return;
        };
        let (taddr, tport) = addr_bytes(target.addr);
        let tcp_to = target.addr;
        let peers = self.random_nodes(self.cfg.indirect_checks, rng, |name, n| {
            name == p.target || n.state != State::Alive
        });
        let (source_addr, source_port) = addr_bytes(self.cfg.addr);
        for to in &peers {
            let ind = IndirectPingReq {
                seq_no: p.seq,
                target: taddr.clone(),
                port: tport,
                node: p.target.clone(),
                nack: true,
                source_addr: source_addr.clone(),
                source_port,
                source_node: self.cfg.name.clone(),
            };
            self.send(*to, Message::IndirectPing(ind), out);
        }
        // memberlist's TCP fallback: also ping the target over TCP; an ack that comes back
        // that way (fed in as a packet) saves it from suspicion when only UDP is broken.
        let deadline = p.end;
        out.push(Output::TcpPing {
            to: tcp_to,
            ping: self.make_ping(p.seq, &p.target),
            deadline,
        });
        p.indirect_sent = true;
        p.expected_nacks = peers.len();
        self.probe = Some(p);
    }

    /// Round-robin over a shuffled list of probeable nodes (memberlist
    /// `probe` + `resetNodes`), skipping ourselves and dead/left nodes.
    fn next_target(&mut self, rng: &mut impl FnMut() -> u64) -> Option<String> {
        for _ in 0..2 {
            while self.probe_index < self.probe_order.len() {
                let name = self.probe_order[self.probe_index].clone();
                self.probe_index += 1;
                if name == self.cfg.name {
                    continue;
                }
                if self
                    .nodes
                    .get(&name)
                    .is_some_and(|n| matches!(n.state, State::Alive | State::Suspect))
                {
                    return Some(name);
                }
            }
            let names: Vec<String> = self.nodes.keys().cloned().collect();
            let len = names.len();
            self.probe_order = pick(names, len, rng);
            self.probe_index = 0;
        }
        None
    }

    /// When the first push/pull that follows a join is due: once a broadcast queued at the
    /// join has had time to be sent its `retransmit_limit` times, one gossip round each.
    fn sync_after_join_at(&self) -> Option<Instant> {
        let AfterJoin::Settling(joined) = self.after_join else {
            return None;
        };
        let limit = retransmit_limit(self.cfg.retransmit_mult, self.num_nodes());
        Some(joined + self.cfg.gossip_interval * limit)
    }

    /// Up to `k` random other nodes not excluded by `exclude` (memberlist `kRandomNodes`):
    /// random draws from the table, at most 3 per node, or a shuffle when the table is small
    /// (fewer than 3k nodes) so that the search is exhaustive.
    fn random_nodes(
        &self,
        k: usize,
        rng: &mut impl FnMut() -> u64,
        exclude: impl Fn(&str, &Node) -> bool,
    ) -> Vec<SocketAddr> {
        let n = self.names.len();
        let mut out: Vec<SocketAddr> = Vec::with_capacity(k);
        let mut chosen: Vec<usize> = Vec::with_capacity(k);
        // Considers the i-th name; true once `k` are chosen.
        let mut consider = |i: usize| {
            let name = self.names[i].as_str();
            if name != self.cfg.name && !chosen.contains(&i) {
                if let Some(node) = self.nodes.get(name).filter(|node| !exclude(name, node)) {
                    out.push(node.addr);
                    chosen.push(i);
                }
            }
            chosen.len() >= k
        };
        if k == 0 {
            return out;
        }
        if n < k * 3 {
            let order: Vec<usize> = (0..n).collect();
            for i in pick(order, n, rng) {
                if consider(i) {
                    break;
                }
            }
        } else {
            for _ in 0..3 * n {
                if consider((rng() % n as u64) as usize) {
                    break;
                }
            }
        }
        out
    }

    fn gossip(&mut self, now: Instant, rng: &mut impl FnMut() -> u64, out: &mut Vec<Output>) {
        if self.queue.is_empty() {
            return; // nothing to say: spare the walk over the node table
        }
        let dead_time = self.cfg.gossip_to_the_dead_time;
        let peers = self.random_nodes(self.cfg.gossip_nodes, rng, |_, n| match n.state {
            State::Alive | State::Suspect => false,
            State::Dead => now.saturating_duration_since(n.state_change) >= dead_time,
            State::Left => true,
        });
        let budget = self
            .cfg
            .packet_budget
            .saturating_sub(self.cfg.packet_overhead + COMPOUND_HEADER_OVERHEAD);
        let limit = retransmit_limit(self.cfg.retransmit_mult, self.num_nodes());
        for to in peers {
            let mut msgs = self.queue.take(COMPOUND_PART_OVERHEAD, budget, limit);
            if msgs.is_empty() {
                return;
            }
            let msg = if msgs.len() == 1 {
                msgs.pop().unwrap_or(Message::Compound(Vec::new()))
            } else {
                Message::Compound(msgs)
            };
            out.push(Output::SendPacket { to, msg });
        }
    }
}
