//! A deterministic simulator for the memberlist layer: many [`Swim`] cores in one process,
//! exchanging their [`Output`]s over an in-memory network on virtual time.
//!
//! Built for measuring gossip at scale the way memberlist's own model does (issue #20, "Scale
//! of gossip"; figures in `docs/gossip-scale.md`, produced by `bench/gossip-scale.sh`), and for
//! the seeded CI checks in this module's tests. Compiled only for this crate's tests and with
//! the `sim` feature, so the shipped binary does not carry it.
//!
//! The network ([`NetConfig`]):
//! * UDP: every packet goes through the real message codec (`Message::encode_packet` and
//!   `decode_packet`, compound and piggybacked broadcasts included); its size is checked
//!   against the packet budget; it is lost independently with probability `loss` and
//!   otherwise arrives after a one-way latency drawn uniformly from `latency` (so packets
//!   may overtake each other).
//! * TCP (push/pull, memberlist's fallback ping): reliable, with latency — a connection costs
//!   one round trip before the request travels, the answer travels back in one more one-way
//!   latency. A crashed node answers nothing. Push/pull states are handed over decoded (they
//!   are not size-bound, and their codec has its own golden tests).
//! * Time is virtual: an event queue ordered by (time, insertion order); nothing sleeps. Each
//!   node's timer is [`Swim::next_deadline`], fed as [`Input::Tick`].
//! * Randomness comes from one seeded generator, so a run is a function of its seed.
//!
//! Observation: the simulator records, for one watched subject, the first time each node saw
//! it alive, suspect and dead (exact, checked after every input); every accusation (a suspect
//! message a node sends about a live node with itself as the accuser) and every failed event
//! about a live node, for false positives; and network counters.
//!
//! Must never: change what the core decides (it only delivers, delays and drops), or read the
//! wall clock.

pub mod scenarios;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::memberlist::{EventKind, Input, Output, State, Swim, SwimConfig};
use crate::wire::messages::{AckResp, Message, Ping, PushPull};

/// The simulated network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetConfig {
    /// One-way latency of a packet (and of each leg of a TCP exchange), uniform in this range.
    pub latency: (Duration, Duration),
    /// Probability that a UDP packet is lost (independently per packet).
    pub loss: f64,
    /// Whether memberlist's TCP fallback ping gets through (it does on a LAN).
    pub tcp_ping: bool,
}

impl NetConfig {
    /// A LAN: one-way latency uniform in 0.5–5 ms, 1 % UDP loss, TCP working.
    pub fn lan() -> NetConfig {
        NetConfig {
            latency: (Duration::from_micros(500), Duration::from_millis(5)),
            loss: 0.01,
            tcp_ping: true,
        }
    }
}

/// splitmix64: small, fast, and stable across versions (a seed means the same run forever).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[0, n)` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Network counters since the simulation started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// UDP packets sent (lost ones included).
    pub udp_sent: u64,
    /// UDP packets lost.
    pub udp_lost: u64,
    /// UDP bytes sent (message encoding; the driver's label/encryption overhead excluded).
    pub udp_bytes: u64,
    /// Largest UDP packet sent.
    pub max_packet: usize,
    /// UDP packets over the packet budget (should stay 0).
    pub over_budget: u64,
    /// Push/pull exchanges started.
    pub push_pulls: u64,
    /// TCP fallback pings started.
    pub tcp_pings: u64,
    /// Ticks after which the core's next deadline had already passed (a driver would spin on
    /// them; should stay 0).
    pub stalled_ticks: u64,
}

/// When each node first saw the watched subject in a state (see [`Sim::watch`]), as time since
/// the simulation's start; `None` when it has not (yet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// First time it was alive in this node's table.
    pub alive: Option<Duration>,
    /// First time it was suspect.
    pub suspect: Option<Duration>,
    /// First time it was dead (failed).
    pub dead: Option<Duration>,
}

/// An accusation or failure about a member that was in fact up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FalsePositive {
    /// Time since the simulation's start.
    pub at: Duration,
    /// The node that accused or declared.
    pub by: usize,
    /// The live node it was about.
    pub about: usize,
}

#[derive(Clone)]
struct SimNode {
    swim: Swim,
    name: String,
    up: bool,
    /// The time of this node's pending tick event (older tick events are stale).
    tick_at: Option<Instant>,
}

#[derive(Debug, Clone)]
enum Event {
    Tick(usize),
    Udp {
        to: usize,
        from: SocketAddr,
        msg: Message,
    },
    /// A push/pull request reaches `to`.
    PushPullRequest {
        to: usize,
        from: usize,
        state: PushPull,
    },
    /// The answer to `to`'s push/pull.
    PushPullAnswer {
        to: usize,
        state: PushPull,
    },
    /// A TCP fallback ping reaches `to`.
    TcpPing {
        to: usize,
        from: usize,
        ping: Ping,
        deadline: Instant,
    },
    /// Its ack reaches the prober.
    TcpAck {
        to: usize,
        from: SocketAddr,
        ack: AckResp,
        deadline: Instant,
    },
}

#[derive(Clone)]
struct Scheduled {
    at: Instant,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// The simulator. See the module docs. A clone continues independently (give it its own
/// [`Sim::reseed`]).
#[derive(Clone)]
pub struct Sim {
    start: Instant,
    now: Instant,
    net: NetConfig,
    rng: Rng,
    nodes: Vec<SimNode>,
    by_addr: HashMap<SocketAddr, usize>,
    by_name: HashMap<String, usize>,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    stats: NetStats,
    watched: Option<usize>,
    seen: Vec<Seen>,
    accusations: HashSet<(usize, usize, u32)>,
    false_suspects: Vec<FalsePositive>,
    false_deads: Vec<FalsePositive>,
    /// Per node, members it has alive (kept from its member events once asked for).
    alive_counts: Option<Vec<usize>>,
}

/// The address of simulated node `i` (10.x.y.z:7946).
pub fn sim_addr(i: usize) -> SocketAddr {
    let i = u32::try_from(i).unwrap_or(u32::MAX) & 0x00ff_ffff;
    let ip = Ipv4Addr::from(0x0a00_0000 | i);
    SocketAddr::new(IpAddr::V4(ip), 7946)
}

/// The name of simulated node `i`.
pub fn sim_name(i: usize) -> String {
    format!("node-{i:04}")
}

impl Sim {
    /// An empty network.
    pub fn new(net: NetConfig, seed: u64) -> Sim {
        let start = Instant::now();
        Sim {
            start,
            now: start,
            net,
            rng: Rng::new(seed),
            nodes: Vec::new(),
            by_addr: HashMap::new(),
            by_name: HashMap::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            stats: NetStats::default(),
            watched: None,
            seen: Vec::new(),
            accusations: HashSet::new(),
            false_suspects: Vec::new(),
            false_deads: Vec::new(),
            alive_counts: None,
        }
    }

    /// Draw randomness from `seed` from now on.
    pub fn reseed(&mut self, seed: u64) {
        self.rng = Rng::new(seed);
    }

    /// Add a node (started now, knowing only itself); returns its index.
    pub fn add_node(&mut self, cfg: SwimConfig) -> usize {
        let i = self.nodes.len();
        self.by_addr.insert(cfg.addr, i);
        self.by_name.insert(cfg.name.clone(), i);
        let name = cfg.name.clone();
        let swim = Swim::new(cfg, self.now);
        self.nodes.push(SimNode {
            swim,
            name,
            up: true,
            tick_at: None,
        });
        self.seen.push(Seen::default());
        if let Some(c) = &mut self.alive_counts {
            c.push(0);
        }
        self.reschedule(i, false);
        i
    }

    /// Virtual time since the simulation started.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Number of nodes (crashed ones included).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `i`'s core.
    pub fn swim(&self, i: usize) -> &Swim {
        &self.nodes[i].swim
    }

    /// Node `i`'s name.
    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// Whether node `i` is running.
    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].up
    }

    /// Network counters.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// Change the network from now on.
    pub fn set_net(&mut self, net: NetConfig) {
        self.net = net;
    }

    /// The network.
    pub fn net(&self) -> NetConfig {
        self.net
    }

    /// Node `i` crashes: it stops ticking, and drops what reaches it.
    pub fn crash(&mut self, i: usize) {
        self.nodes[i].up = false;
        self.nodes[i].tick_at = None;
    }

    /// Record, from now on, when each node first sees node `subject` alive, suspect and dead
    /// (replaces an earlier watch; states already held now count as seen now).
    pub fn watch(&mut self, subject: usize) {
        self.watched = Some(subject);
        self.seen = vec![Seen::default(); self.nodes.len()];
        for i in 0..self.nodes.len() {
            self.observe(i);
        }
    }

    /// Per node, when it first saw the watched subject in each state.
    pub fn seen(&self) -> &[Seen] {
        &self.seen
    }

    /// Accusations (a node suspecting a live node, itself the accuser) since the last
    /// [`Sim::clear_false_positives`].
    pub fn false_suspects(&self) -> &[FalsePositive] {
        &self.false_suspects
    }

    /// Failed events about live nodes since the last [`Sim::clear_false_positives`].
    pub fn false_deads(&self) -> &[FalsePositive] {
        &self.false_deads
    }

    /// Forget the false positives seen so far.
    pub fn clear_false_positives(&mut self) {
        self.false_suspects.clear();
        self.false_deads.clear();
    }

    /// Keep count, per node, of the members it has alive (from its member events), starting
    /// from nodes that know only themselves: for [`Sim::all_know_everyone`].
    pub fn count_alive(&mut self, on: bool) {
        self.alive_counts = on.then(|| vec![0; self.nodes.len()]);
    }

    /// Every node has all others alive (needs [`Sim::count_alive`]; false without it).
    pub fn all_know_everyone(&self) -> bool {
        let n = self.nodes.len();
        self.alive_counts
            .as_ref()
            .is_some_and(|c| c.iter().all(|&k| k + 1 == n))
    }

    /// Feed node `i` an input now and perform its outputs.
    pub fn input(&mut self, i: usize, input: Input) {
        if !self.nodes[i].up {
            return;
        }
        let is_tick = matches!(input, Input::Tick(_));
        let rng = &mut self.rng;
        let outs = self.nodes[i].swim.handle(input, &mut || rng.next_u64());
        self.perform(i, outs);
        self.observe(i);
        self.reschedule(i, is_tick);
    }

    /// Run events until virtual time `d` from now has passed.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until, |_| false);
    }

    /// Run events until `cond` holds (checked after each event) or the virtual instant `until`;
    /// true if `cond` held.
    pub fn run_until(&mut self, until: Instant, mut cond: impl FnMut(&Sim) -> bool) -> bool {
        loop {
            if cond(self) {
                return true;
            }
            let due = self.queue.peek().is_some_and(|Reverse(s)| s.at <= until);
            if !due {
                self.now = self.now.max(until);
                return cond(self);
            }
            let Some(Reverse(s)) = self.queue.pop() else {
                return false;
            };
            self.now = self.now.max(s.at);
            self.dispatch(s.at, s.event);
        }
    }

    fn schedule(&mut self, at: Instant, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            event,
        }));
    }

    fn latency(&mut self) -> Duration {
        let (lo, hi) = self.net.latency;
        let span = hi.saturating_sub(lo).as_nanos() as u64;
        let extra = if span == 0 {
            0
        } else {
            self.rng.below(span + 1)
        };
        lo + Duration::from_nanos(extra)
    }

    fn reschedule(&mut self, i: usize, after_tick: bool) {
        if !self.nodes[i].up {
            return;
        }
        let mut at = self.nodes[i].swim.next_deadline().max(self.now);
        if after_tick && at <= self.now {
            // A tick that leaves work due now would make a driver spin: count it, and move on
            // rather than hang.
            self.stats.stalled_ticks += 1;
            at = self.now + Duration::from_micros(1);
        }
        if self.nodes[i].tick_at != Some(at) {
            self.nodes[i].tick_at = Some(at);
            self.schedule(at, Event::Tick(i));
        }
    }

    fn dispatch(&mut self, at: Instant, event: Event) {
        match event {
            Event::Tick(i) => {
                if self.nodes[i].up && self.nodes[i].tick_at == Some(at) {
                    self.nodes[i].tick_at = None;
                    self.input(i, Input::Tick(at));
                }
            }
            Event::Udp { to, from, msg } => {
                let now = self.now;
                self.input(to, Input::Packet { from, msg, now });
            }
            Event::PushPullRequest { to, from, state } => {
                if !self.nodes[to].up {
                    return; // connection refused: the initiator's exchange fails
                }
                // Like the driver's stream handler: answer with our state, then merge theirs.
                let answer = PushPull {
                    join: state.join,
                    nodes: self.nodes[to].swim.local_state(),
                    user_state: Vec::new(),
                };
                let now = self.now;
                self.input(to, Input::PushPull(state, now));
                let back = self.now + self.latency();
                self.schedule(
                    back,
                    Event::PushPullAnswer {
                        to: from,
                        state: answer,
                    },
                );
            }
            Event::PushPullAnswer { to, state } => {
                let now = self.now;
                self.input(to, Input::PushPull(state, now));
            }
            Event::TcpPing {
                to,
                from,
                ping,
                deadline,
            } => {
                let node = &self.nodes[to];
                if !node.up
                    || !self.net.tcp_ping
                    || !(ping.node.is_empty() || ping.node == node.name)
                {
                    return;
                }
                let ack = AckResp {
                    seq_no: ping.seq_no,
                    payload: Vec::new(),
                };
                let from_addr = node.swim.config().addr;
                let back = self.now + self.latency();
                self.schedule(
                    back,
                    Event::TcpAck {
                        to: from,
                        from: from_addr,
                        ack,
                        deadline,
                    },
                );
            }
            Event::TcpAck {
                to,
                from,
                ack,
                deadline,
            } => {
                // The driver's fallback task gives up at the probe's deadline.
                if self.now <= deadline {
                    let now = self.now;
                    let msg = Message::Ack(ack);
                    self.input(to, Input::Packet { from, msg, now });
                }
            }
        }
    }

    /// A TCP exchange's request arrives after a connection round trip and one more leg.
    fn tcp_request_delay(&mut self) -> Duration {
        self.latency() + self.latency() + self.latency()
    }

    fn perform(&mut self, from: usize, outs: Vec<Output>) {
        for o in outs {
            match o {
                Output::SendPacket { to, msg } => self.send_udp(from, to, msg),
                Output::PushPull { to, join } => {
                    self.stats.push_pulls += 1;
                    let Some(&j) = self.by_addr.get(&to) else {
                        continue;
                    };
                    let state = PushPull {
                        join,
                        nodes: self.nodes[from].swim.local_state(),
                        user_state: Vec::new(),
                    };
                    let at = self.now + self.tcp_request_delay();
                    self.schedule(at, Event::PushPullRequest { to: j, from, state });
                }
                Output::TcpPing { to, ping, deadline } => {
                    self.stats.tcp_pings += 1;
                    let Some(&j) = self.by_addr.get(&to) else {
                        continue;
                    };
                    let at = self.now + self.tcp_request_delay();
                    self.schedule(
                        at,
                        Event::TcpPing {
                            to: j,
                            from,
                            ping,
                            deadline,
                        },
                    );
                }
                Output::MemberEvent(e) => {
                    if let Some(c) = &mut self.alive_counts {
                        match e.kind {
                            EventKind::Join => c[from] += 1,
                            EventKind::Failed | EventKind::Leave => {
                                c[from] = c[from].saturating_sub(1)
                            }
                            EventKind::Update => {}
                        }
                    }
                    if e.kind == EventKind::Failed {
                        if let Some(&about) = self.by_name.get(&e.name) {
                            if self.nodes[about].up {
                                self.false_deads.push(FalsePositive {
                                    at: self.elapsed(),
                                    by: from,
                                    about,
                                });
                            }
                        }
                    }
                }
                Output::User { .. } | Output::PingComplete { .. } => {}
            }
        }
    }

    fn send_udp(&mut self, from: usize, to: SocketAddr, msg: Message) {
        let bytes = match msg.encode_packet() {
            Ok(b) => b,
            Err(e) => panic!("the core built a packet the codec cannot encode: {e}"),
        };
        let cfg = self.nodes[from].swim.config();
        let budget = cfg.packet_budget.saturating_sub(cfg.packet_overhead);
        self.stats.udp_sent += 1;
        self.stats.udp_bytes += bytes.len() as u64;
        self.stats.max_packet = self.stats.max_packet.max(bytes.len());
        if bytes.len() > budget {
            self.stats.over_budget += 1;
        }
        let msg = match Message::decode_packet(&bytes) {
            Ok(m) => m,
            Err(e) => panic!("the codec cannot decode what it encoded: {e}"),
        };
        self.note_accusations(from, &msg);
        if self.rng.unit() < self.net.loss {
            self.stats.udp_lost += 1;
            return;
        }
        let Some(&j) = self.by_addr.get(&to) else {
            return;
        };
        let from_addr = self.nodes[from].swim.config().addr;
        let at = self.now + self.latency();
        self.schedule(
            at,
            Event::Udp {
                to: j,
                from: from_addr,
                msg,
            },
        );
    }

    /// A suspect message naming its sender as the accuser, about a node that is up.
    fn note_accusations(&mut self, from: usize, msg: &Message) {
        let mut check = |m: &Message| {
            if let Message::Suspect(s) = m {
                if s.from != self.nodes[from].name {
                    return;
                }
                let Some(&about) = self.by_name.get(&s.node) else {
                    return;
                };
                if self.nodes[about].up && self.accusations.insert((from, about, s.incarnation)) {
                    self.false_suspects.push(FalsePositive {
                        at: self.now - self.start,
                        by: from,
                        about,
                    });
                }
            }
        };
        match msg {
            Message::Compound(parts) => parts.iter().for_each(&mut check),
            m => check(m),
        }
    }

    fn observe(&mut self, i: usize) {
        let Some(w) = self.watched else {
            return;
        };
        let Some(m) = self.nodes[i].swim.state_of(&self.nodes[w].name) else {
            return;
        };
        let at = self.now - self.start;
        let seen = &mut self.seen[i];
        let slot = match m {
            State::Alive => &mut seen.alive,
            State::Suspect => &mut seen.suspect,
            State::Dead | State::Left => &mut seen.dead,
        };
        slot.get_or_insert(at);
    }
}
