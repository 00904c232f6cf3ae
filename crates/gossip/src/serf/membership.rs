//! Sans-I/O Serf layer (hashicorp/serf `serf.go` semantics) on top of the SWIM core.
//!
//! [`Serf`] wraps a [`Swim`] and adds what Consul reads from its gossip pools: member tags
//! (carried in memberlist node meta), the Serf member statuses (alive / leaving / left /
//! failed), Lamport clocks for intents, user events and queries, join and leave intents,
//! reaping of left and failed members, periodic reconnect attempts to failed ones, and the
//! user state exchanged in push/pull. Like the SWIM core it never reads a clock or draws
//! randomness itself: the driver feeds [`SerfInput`]s and performs the [`SerfOutput`]s.
//!
//! Network coordinates ride on probes, as in Serf's ping delegate: every ack we send carries
//! our Vivaldi coordinate, and each answered direct probe of ours moves it by the measured RTT
//! and caches the peer's coordinate (forgotten when the peer is reaped). See
//! [`super::coordinate`].
//!
//! Queries are only relayed and acknowledged (with `_serf_ping` answered): proconsul has no
//! query handlers yet, and answering internal queries wrongly would be worse than silence.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::coordinate::{Coordinate, Vivaldi, VivaldiConfig};
use super::keyring::KEY_QUERIES;
use super::messages::{
    self, decode_tags, encode_tags, LamportClock, LamportTime, SerfMessage, UserEventEntry,
    UserEvents, QUERY_FLAG_ACK,
};
use crate::memberlist::{self, EventKind, Input, Output, Swim, SwimConfig};
use crate::wire::{self, messages::Message};

/// Serf member status; the numbers are what Consul's `/v1/agent/members` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberStatus {
    /// Answering probes.
    Alive = 1,
    /// Announced its leave; still answering.
    Leaving = 2,
    /// Left gracefully.
    Left = 3,
    /// Stopped answering.
    Failed = 4,
}

impl MemberStatus {
    /// The word `serf members` / `consul members` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Alive => "alive",
            MemberStatus::Leaving => "leaving",
            MemberStatus::Left => "left",
            MemberStatus::Failed => "failed",
        }
    }
}

/// One member of the pool as Serf sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Node name.
    pub name: String,
    /// Gossip address.
    pub addr: SocketAddr,
    /// Tags decoded from the node meta.
    pub tags: BTreeMap<String, String>,
    /// Status.
    pub status: MemberStatus,
    /// Protocol versions `[pmin, pmax, pcur, dmin, dmax, dcur]` (zeros when unknown).
    pub vsn: [u8; 6],
    /// Lamport time of the last intent applied to the status.
    pub status_ltime: LamportTime,
    /// When the status last changed (for reaping).
    pub changed: Instant,
}

/// What happened in the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerfEvent {
    /// A member joined (or came back).
    Join(Member),
    /// A member left gracefully.
    Leave(Member),
    /// A member failed.
    Failed(Member),
    /// A member's tags or address changed.
    Update(Member),
    /// A left or failed member was forgotten.
    Reap(Member),
    /// A user event arrived (or was fired here).
    User {
        /// Event clock time.
        ltime: LamportTime,
        /// Name.
        name: String,
        /// Payload.
        payload: Vec<u8>,
        /// Coalescable.
        coalesce: bool,
    },
}

/// Inputs to [`Serf::handle`].
#[derive(Debug, Clone)]
pub enum SerfInput {
    /// Time passes.
    Tick(Instant),
    /// A decoded UDP packet.
    Packet {
        /// Sender.
        from: SocketAddr,
        /// Message.
        msg: Message,
        /// Receive time.
        now: Instant,
    },
    /// A push/pull exchange finished; merge the remote state.
    PushPull(wire::messages::PushPull, Instant),
    /// We joined through at least one seed: announce a join intent.
    Joined(Instant),
    /// Leave gracefully: leave intent, then memberlist's dead-from-self.
    LeaveIntent(Instant),
    /// Second step of a leave, after the intent had time to spread.
    Leave(Instant),
    /// Replace our tags.
    SetTags(BTreeMap<String, String>, Instant),
    /// Fire a user event.
    UserEvent {
        /// Name.
        name: String,
        /// Payload.
        payload: Vec<u8>,
        /// Coalescable.
        coalesce: bool,
    },
    /// Start a query (`id` random, responses to `reply_to`).
    Query {
        /// Name.
        name: String,
        /// Payload.
        payload: Vec<u8>,
        /// Query id.
        id: u32,
        /// Our address for responses.
        reply_to: SocketAddr,
        /// How long the querier waits.
        timeout: Duration,
    },
    /// Force a failed member to left (`force-leave`), optionally forgetting it at once.
    ForceLeave {
        /// Member name.
        name: String,
        /// Forget it now instead of after the tombstone timeout.
        prune: bool,
        /// Now.
        now: Instant,
    },
}

/// Effects for the driver.
#[derive(Debug, Clone, PartialEq)]
pub enum SerfOutput {
    /// Send a UDP packet.
    Send {
        /// Destination.
        to: SocketAddr,
        /// Message.
        msg: Message,
    },
    /// Run a TCP push/pull (`join` = part of a join or reconnect attempt).
    PushPull {
        /// Peer.
        to: SocketAddr,
        /// Join flag.
        join: bool,
    },
    /// Something happened.
    Event(SerfEvent),
    /// memberlist's TCP fallback ping (see [`memberlist::Output::TcpPing`]).
    TcpPing {
        /// Target.
        to: SocketAddr,
        /// The ping.
        ping: wire::messages::Ping,
        /// Give up after this.
        deadline: Instant,
    },
    /// A keyring query (`_serf_install-key`, ...) to execute and answer at `reply_to`.
    KeyQuery {
        /// The query.
        query: messages::Query,
        /// Where the response goes.
        reply_to: SocketAddr,
    },
    /// A response to a query (ours, presumably).
    QueryResponse(messages::QueryResponse),
}

/// Serf's default `UserEventSizeLimit`: the most bytes a user event's name plus payload
/// may have.
pub const USER_EVENT_SIZE_LIMIT: usize = 512;

/// Serf's `DefaultQueryTimeout`: how long a query waits for answers from a pool of
/// `members`, `gossip_interval × 16 × ceil(log10(members + 1))` (at least one step).
pub fn default_query_timeout(gossip_interval: Duration, members: usize) -> Duration {
    let scale = ((members as f64) + 1.0).log10().ceil().max(1.0) as u32;
    gossip_interval * 16 * scale
}

/// Serf settings (hashicorp/serf `Config` names; Consul's values as defaults).
#[derive(Debug, Clone)]
pub struct SerfConfig {
    /// The memberlist layer.
    pub swim: SwimConfig,
    /// Our tags.
    pub tags: BTreeMap<String, String>,
    /// Failed members are reaped after this long (Consul: 72 h).
    pub reconnect_timeout: Duration,
    /// Left members are reaped after this long (Serf: 24 h).
    pub tombstone_timeout: Duration,
    /// How often reaping runs.
    pub reap_interval: Duration,
    /// How often we try to reconnect to a failed member.
    pub reconnect_interval: Duration,
    /// User events remembered for de-duplication (Serf: 512).
    pub event_buffer: usize,
    /// Serf's `DisableCoordinates`: send no coordinate in acks and compute none.
    pub disable_coordinates: bool,
    /// The Vivaldi tuning (Serf's defaults).
    pub vivaldi: VivaldiConfig,
}

impl SerfConfig {
    /// Serf/Consul defaults around `swim`.
    pub fn new(swim: SwimConfig, tags: BTreeMap<String, String>) -> Self {
        SerfConfig {
            swim,
            tags,
            reconnect_timeout: Duration::from_secs(72 * 3600),
            tombstone_timeout: Duration::from_secs(24 * 3600),
            reap_interval: Duration::from_secs(15),
            reconnect_interval: Duration::from_secs(30),
            event_buffer: 512,
            disable_coordinates: false,
            vivaldi: VivaldiConfig::default(),
        }
    }
}

/// Serf's user-event de-duplication buffer: events by Lamport time, bounded.
#[derive(Debug, Default)]
struct EventBuffer {
    by_time: BTreeMap<LamportTime, Vec<UserEventEntry>>,
}

impl EventBuffer {
    /// Record an event; false when it was already seen.
    fn insert(&mut self, ltime: LamportTime, name: &str, payload: &[u8], cap: usize) -> bool {
        let slot = self.by_time.entry(ltime).or_default();
        if slot
            .iter()
            .any(|e| e.name == name && e.payload.as_slice() == payload)
        {
            return false;
        }
        slot.push(UserEventEntry {
            name: name.to_string(),
            payload: payload.to_vec(),
        });
        while self.by_time.len() > cap {
            self.by_time.pop_first();
        }
        true
    }
}

/// The Serf state machine. See the module docs.
#[derive(Debug)]
pub struct Serf {
    cfg: SerfConfig,
    swim: Swim,
    clock: LamportClock,
    event_clock: LamportClock,
    query_clock: LamportClock,
    /// Events older than this are ignored (set on join from the remote's event clock).
    event_min_time: LamportTime,
    members: BTreeMap<String, Member>,
    events: EventBuffer,
    queries_seen: VecDeque<(LamportTime, u32)>,
    leaving: bool,
    next_reap: Instant,
    next_reconnect: Instant,
    /// Our coordinate (None when coordinates are disabled).
    vivaldi: Option<Vivaldi>,
    /// The last coordinate each peer sent us in an ack, and ours (Serf's `coordCache`).
    coord_cache: BTreeMap<String, Coordinate>,
    /// Bumped whenever our coordinate or the cache changes.
    coord_version: u64,
}

fn vsn6(v: &[u8]) -> [u8; 6] {
    let mut out = [0u8; 6];
    for (o, b) in out.iter_mut().zip(v) {
        *o = *b;
    }
    out
}

impl Serf {
    /// A fresh pool of one.
    pub fn new(mut cfg: SerfConfig, now: Instant) -> Self {
        cfg.swim.meta = encode_tags(&cfg.tags);
        let mut swim = Swim::new(cfg.swim.clone(), now);
        let vivaldi = (!cfg.disable_coordinates).then(|| Vivaldi::new(cfg.vivaldi.clone()));
        if let Some(v) = &vivaldi {
            swim.set_ack_payload(messages::encode_ping_payload(v.coordinate()));
        }
        let me = Member {
            name: cfg.swim.name.clone(),
            addr: cfg.swim.addr,
            tags: cfg.tags.clone(),
            status: MemberStatus::Alive,
            vsn: vsn6(&cfg.swim.vsn),
            status_ltime: 0,
            changed: now,
        };
        let mut members = BTreeMap::new();
        members.insert(me.name.clone(), me);
        // Like Serf, our own (origin) coordinate is in the cache from the start, so a lone
        // node still reports one.
        let mut coord_cache = BTreeMap::new();
        if let Some(v) = &vivaldi {
            coord_cache.insert(cfg.swim.name.clone(), v.coordinate().clone());
        }
        Serf {
            next_reap: now + cfg.reap_interval,
            next_reconnect: now + cfg.reconnect_interval,
            cfg,
            swim,
            clock: LamportClock::default(),
            event_clock: LamportClock::default(),
            query_clock: LamportClock::default(),
            event_min_time: 0,
            members,
            events: EventBuffer::default(),
            queries_seen: VecDeque::new(),
            leaving: false,
            coord_cache,
            vivaldi,
            coord_version: 0,
        }
    }

    /// Our network coordinate (Serf's `GetCoordinate`); None when coordinates are disabled.
    pub fn coordinate(&self) -> Option<&Coordinate> {
        self.vivaldi.as_ref().map(Vivaldi::coordinate)
    }

    /// The coordinate a member last sent us, or ours for our own name (Serf's
    /// `GetCachedCoordinate`).
    pub fn cached_coordinate(&self, name: &str) -> Option<&Coordinate> {
        self.coord_cache.get(name)
    }

    /// Every cached coordinate by member name.
    pub fn cached_coordinates(&self) -> &BTreeMap<String, Coordinate> {
        &self.coord_cache
    }

    /// Changes whenever [`Serf::coordinate`] or the cache changes.
    pub fn coordinate_version(&self) -> u64 {
        self.coord_version
    }

    /// How often our coordinate had to be reset (Serf's `coordinate_resets` stat).
    pub fn coordinate_resets(&self) -> u64 {
        self.vivaldi.as_ref().map_or(0, Vivaldi::resets)
    }

    /// A direct probe of `node` was answered after `rtt` with `payload` (Serf's
    /// `NotifyPingComplete`). Payloads that are not a coordinate we can use (another version,
    /// undecodable, other dimensions, NaN, an RTT over 10 s) are ignored.
    fn ping_complete(
        &mut self,
        node: &str,
        rtt: Duration,
        payload: &[u8],
        rng: &mut impl FnMut() -> u64,
    ) {
        let Some(v) = self.vivaldi.as_mut() else {
            return;
        };
        if payload.is_empty() {
            return;
        }
        let other = match messages::decode_ping_payload(payload) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(target: "agent", node, error = %e, "serf: bad coordinate in ack");
                return;
            }
        };
        match v.update(node, &other, rtt, rng) {
            Ok(mine) => {
                let mine = mine.clone();
                self.swim
                    .set_ack_payload(messages::encode_ping_payload(&mine));
                self.coord_cache.insert(node.to_string(), other);
                self.coord_cache.insert(self.cfg.swim.name.clone(), mine);
                self.coord_version += 1;
            }
            Err(e) => {
                tracing::trace!(target: "agent", node, error = %e, "serf: rejected coordinate");
            }
        }
    }

    /// A member was forgotten: so are its coordinate and latency samples.
    fn forget_coordinate(&mut self, name: &str) {
        if let Some(v) = self.vivaldi.as_mut() {
            v.forget_node(name);
        }
        if self.coord_cache.remove(name).is_some() {
            self.coord_version += 1;
        }
    }

    /// Our node name.
    pub fn name(&self) -> &str {
        &self.cfg.swim.name
    }

    /// Our tags.
    pub fn tags(&self) -> &BTreeMap<String, String> {
        &self.cfg.tags
    }

    /// Every member we know, ourselves included, by name.
    pub fn members(&self) -> Vec<Member> {
        self.members.values().cloned().collect()
    }

    /// The membership core (for stats).
    pub fn swim(&self) -> &Swim {
        &self.swim
    }

    /// The core's protocol rounds since the last call (for the round timers).
    pub fn take_rounds(&mut self) -> crate::memberlist::Rounds {
        self.swim.take_rounds()
    }

    /// Current Lamport clocks: (member, event, query).
    pub fn clocks(&self) -> (LamportTime, LamportTime, LamportTime) {
        (
            self.clock.time(),
            self.event_clock.time(),
            self.query_clock.time(),
        )
    }

    /// Restore clocks from a snapshot (they only move forward).
    pub fn restore_clocks(&mut self, member: LamportTime, event: LamportTime, query: LamportTime) {
        self.clock.witness(member);
        self.event_clock.witness(event);
        self.query_clock.witness(query);
        // Events fired before the restart were already handled.
        self.event_min_time = self.event_min_time.max(event);
    }

    /// When the next [`SerfInput::Tick`] has work to do.
    pub fn next_deadline(&self) -> Instant {
        self.swim
            .next_deadline()
            .min(self.next_reap)
            .min(self.next_reconnect)
    }

    /// The push/pull message we send: memberlist node states plus Serf's user state.
    pub fn local_state(&self, join: bool) -> wire::messages::PushPull {
        let mut status_ltimes = BTreeMap::new();
        let mut left_members = Vec::new();
        for m in self.members.values() {
            status_ltimes.insert(m.name.clone(), m.status_ltime);
            if m.status == MemberStatus::Left {
                left_members.push(m.name.clone());
            }
        }
        let events = self
            .events
            .by_time
            .iter()
            .map(|(t, evs)| {
                Some(UserEvents {
                    ltime: *t,
                    events: evs.clone(),
                })
            })
            .collect();
        let user = SerfMessage::PushPull(messages::PushPull {
            ltime: self.clock.time(),
            status_ltimes,
            left_members,
            event_ltime: self.event_clock.time(),
            events,
            query_ltime: self.query_clock.time(),
        });
        wire::messages::PushPull {
            nodes: self.swim.local_state(),
            user_state: user.encode(),
            join,
        }
    }

    /// Feed one input; returns the effects in order.
    pub fn handle(&mut self, input: SerfInput, rng: &mut impl FnMut() -> u64) -> Vec<SerfOutput> {
        let mut out = Vec::new();
        match input {
            SerfInput::Tick(now) => {
                let o = self.swim.handle(Input::Tick(now), rng);
                self.absorb(o, now, rng, &mut out);
                if now >= self.next_reap {
                    self.next_reap = now + self.cfg.reap_interval;
                    self.reap(now, &mut out);
                }
                if now >= self.next_reconnect {
                    self.next_reconnect = now + self.cfg.reconnect_interval;
                    self.reconnect(rng, &mut out);
                }
            }
            SerfInput::Packet { from, msg, now } => {
                let o = self.swim.handle(Input::Packet { from, msg, now }, rng);
                self.absorb(o, now, rng, &mut out);
            }
            SerfInput::PushPull(pp, now) => {
                let user = pp.user_state.clone();
                let join = pp.join;
                let o = self.swim.handle(Input::PushPull(pp, now), rng);
                self.absorb(o, now, rng, &mut out);
                if let Ok(SerfMessage::PushPull(spp)) = SerfMessage::decode(&user) {
                    self.merge_user_state(spp, join, now, &mut out);
                }
            }
            SerfInput::Joined(now) => {
                let o = self.swim.handle(Input::Joined(now), rng);
                self.absorb(o, now, rng, &mut out);
                let ltime = self.clock.increment();
                if let Some(me) = self.members.get_mut(&self.cfg.swim.name) {
                    me.status_ltime = ltime;
                }
                self.broadcast_join(ltime);
            }
            SerfInput::LeaveIntent(now) => {
                self.leaving = true;
                let ltime = self.clock.increment();
                let name = self.cfg.swim.name.clone();
                if let Some(me) = self.members.get_mut(&name) {
                    me.status = MemberStatus::Leaving;
                    me.status_ltime = ltime;
                    me.changed = now;
                }
                self.broadcast(
                    &format!("leave:{name}"),
                    SerfMessage::Leave(messages::Leave {
                        ltime,
                        node: name.clone(),
                        prune: Some(false),
                    }),
                );
            }
            SerfInput::Leave(now) => {
                self.leaving = true;
                let o = self.swim.handle(Input::Leave(now), rng);
                self.absorb(o, now, rng, &mut out);
                let name = self.cfg.swim.name.clone();
                if let Some(me) = self.members.get_mut(&name) {
                    me.status = MemberStatus::Left;
                    me.changed = now;
                }
            }
            SerfInput::SetTags(tags, now) => {
                self.cfg.tags = tags.clone();
                let name = self.cfg.swim.name.clone();
                if let Some(me) = self.members.get_mut(&name) {
                    me.tags = tags.clone();
                }
                let o = self
                    .swim
                    .handle(Input::UpdateMeta(encode_tags(&tags), now), rng);
                self.absorb(o, now, rng, &mut out);
            }
            SerfInput::UserEvent {
                name,
                payload,
                coalesce,
            } => {
                let ltime = self.event_clock.increment();
                let ev = messages::UserEvent {
                    ltime,
                    name,
                    payload,
                    cc: coalesce,
                };
                self.handle_user_event(ev, &mut out);
            }
            SerfInput::Query {
                name,
                payload,
                id,
                reply_to,
                timeout,
            } => self.start_query(name, payload, id, reply_to, timeout, &mut out),
            SerfInput::ForceLeave { name, prune, now } => {
                let ltime = self.clock.increment();
                let msg = messages::Leave {
                    ltime,
                    node: name,
                    prune: Some(prune),
                };
                self.handle_leave_intent(msg, now, &mut out);
            }
        }
        out
    }

    fn broadcast(&mut self, key: &str, msg: SerfMessage) {
        let payload = msg.encode();
        self.swim.handle(
            Input::UserBroadcast {
                key: key.to_string(),
                payload,
            },
            &mut || 0,
        );
    }

    fn broadcast_join(&mut self, ltime: LamportTime) {
        let name = self.cfg.swim.name.clone();
        self.broadcast(
            &format!("join:{name}"),
            SerfMessage::Join(messages::Join { ltime, node: name }),
        );
    }

    /// Turn SWIM outputs into Serf outputs, applying member events and Serf messages.
    fn absorb(
        &mut self,
        outputs: Vec<Output>,
        now: Instant,
        rng: &mut impl FnMut() -> u64,
        out: &mut Vec<SerfOutput>,
    ) {
        for o in outputs {
            match o {
                Output::SendPacket { to, msg } => out.push(SerfOutput::Send { to, msg }),
                Output::PushPull { to, join } => out.push(SerfOutput::PushPull { to, join }),
                Output::TcpPing { to, ping, deadline } => {
                    out.push(SerfOutput::TcpPing { to, ping, deadline })
                }
                Output::MemberEvent(ev) => self.member_event(ev, now, out),
                Output::User { from, payload } => self.user_message(from, &payload, now, out),
                Output::PingComplete { node, rtt, payload } => {
                    self.ping_complete(&node, rtt, &payload, rng)
                }
            }
        }
    }

    fn member_event(
        &mut self,
        ev: memberlist::MemberEvent,
        now: Instant,
        out: &mut Vec<SerfOutput>,
    ) {
        let tags = decode_tags(&ev.meta).unwrap_or_default();
        match ev.kind {
            EventKind::Join | EventKind::Update => {
                let m = self.members.entry(ev.name.clone()).or_insert(Member {
                    name: ev.name.clone(),
                    addr: ev.addr,
                    tags: BTreeMap::new(),
                    status: MemberStatus::Alive,
                    vsn: [0; 6],
                    status_ltime: 0,
                    changed: now,
                });
                m.addr = ev.addr;
                m.tags = tags;
                m.vsn = vsn6(&ev.vsn);
                if ev.kind == EventKind::Join {
                    if m.status != MemberStatus::Alive {
                        m.changed = now;
                    }
                    m.status = MemberStatus::Alive;
                    out.push(SerfOutput::Event(SerfEvent::Join(m.clone())));
                } else {
                    out.push(SerfOutput::Event(SerfEvent::Update(m.clone())));
                }
            }
            EventKind::Leave | EventKind::Failed => {
                let Some(m) = self.members.get_mut(&ev.name) else {
                    return;
                };
                let left = ev.kind == EventKind::Leave || m.status == MemberStatus::Leaving;
                m.status = if left {
                    MemberStatus::Left
                } else {
                    MemberStatus::Failed
                };
                m.changed = now;
                let m = m.clone();
                out.push(SerfOutput::Event(if left {
                    SerfEvent::Leave(m)
                } else {
                    SerfEvent::Failed(m)
                }));
            }
        }
    }

    fn user_message(
        &mut self,
        from: SocketAddr,
        payload: &[u8],
        now: Instant,
        out: &mut Vec<SerfOutput>,
    ) {
        let Ok(msg) = SerfMessage::decode(payload) else {
            return;
        };
        match msg {
            SerfMessage::Leave(l) => self.handle_leave_intent(l, now, out),
            SerfMessage::Join(j) => self.handle_join_intent(j),
            SerfMessage::UserEvent(e) => self.handle_user_event(e, out),
            SerfMessage::Query(q) => self.handle_query(q, from, out),
            SerfMessage::QueryResponse(r) => out.push(SerfOutput::QueryResponse(r)),
            _ => {}
        }
    }

    fn handle_leave_intent(&mut self, l: messages::Leave, now: Instant, out: &mut Vec<SerfOutput>) {
        self.clock.witness(l.ltime);
        let me = self.cfg.swim.name.clone();
        let Some(m) = self.members.get_mut(&l.node) else {
            return;
        };
        if l.ltime <= m.status_ltime {
            return;
        }
        if l.node == me && !self.leaving {
            // Someone says we are leaving and we are not: refute with a join intent.
            let ltime = self.clock.increment();
            if let Some(m) = self.members.get_mut(&me) {
                m.status_ltime = ltime;
            }
            self.broadcast_join(ltime);
            return;
        }
        m.status_ltime = l.ltime;
        let prune = l.prune.unwrap_or(false);
        match m.status {
            MemberStatus::Alive => {
                m.status = MemberStatus::Leaving;
                m.changed = now;
            }
            MemberStatus::Failed => {
                m.status = MemberStatus::Left;
                m.changed = now;
                out.push(SerfOutput::Event(SerfEvent::Leave(m.clone())));
            }
            MemberStatus::Leaving | MemberStatus::Left => {}
        }
        if prune && matches!(m.status, MemberStatus::Left) {
            if let Some(m) = self.members.remove(&l.node) {
                self.forget_coordinate(&m.name);
                out.push(SerfOutput::Event(SerfEvent::Reap(m)));
            }
        }
        let key = format!("leave:{}", l.node);
        self.broadcast(&key, SerfMessage::Leave(l));
    }

    fn handle_join_intent(&mut self, j: messages::Join) {
        self.clock.witness(j.ltime);
        let Some(m) = self.members.get_mut(&j.node) else {
            return;
        };
        if j.ltime <= m.status_ltime {
            return;
        }
        m.status_ltime = j.ltime;
        if m.status == MemberStatus::Leaving {
            m.status = MemberStatus::Alive;
        }
        let key = format!("join:{}", j.node);
        self.broadcast(&key, SerfMessage::Join(j));
    }

    fn handle_user_event(&mut self, e: messages::UserEvent, out: &mut Vec<SerfOutput>) {
        self.event_clock.witness(e.ltime);
        if e.ltime < self.event_min_time {
            return;
        }
        let cap = self.cfg.event_buffer as u64;
        if self.event_clock.time() > cap && e.ltime < self.event_clock.time() - cap {
            return; // too old to de-duplicate
        }
        if !self
            .events
            .insert(e.ltime, &e.name, &e.payload, self.cfg.event_buffer)
        {
            return;
        }
        out.push(SerfOutput::Event(SerfEvent::User {
            ltime: e.ltime,
            name: e.name.clone(),
            payload: e.payload.clone(),
            coalesce: e.cc,
        }));
        let key = format!(
            "event:{}:{}:{:x}",
            e.ltime,
            e.name,
            crc32fast::hash(&e.payload)
        );
        self.broadcast(&key, SerfMessage::UserEvent(e));
    }

    fn handle_query(&mut self, q: messages::Query, from: SocketAddr, out: &mut Vec<SerfOutput>) {
        self.query_clock.witness(q.ltime);
        if self.queries_seen.contains(&(q.ltime, q.id)) {
            return;
        }
        self.queries_seen.push_back((q.ltime, q.id));
        if self.queries_seen.len() > 512 {
            self.queries_seen.pop_front();
        }
        let to = memberlist::parse_addr(&q.addr, q.port).unwrap_or(from);
        let me = self.cfg.swim.name.clone();
        if q.flags & QUERY_FLAG_ACK != 0 {
            let ack = SerfMessage::QueryResponse(messages::QueryResponse {
                ltime: q.ltime,
                id: q.id,
                from: me.clone(),
                flags: QUERY_FLAG_ACK,
                payload: Vec::new(),
            });
            out.push(SerfOutput::Send {
                to,
                msg: Message::User(ack.encode()),
            });
        }
        // `_serf_ping` needs nothing but the ack; key queries act on the keyring, which the
        // driver owns.
        if KEY_QUERIES.contains(&q.name.as_str()) {
            out.push(SerfOutput::KeyQuery {
                query: q.clone(),
                reply_to: to,
            });
        }
        if q.flags & messages::QUERY_FLAG_NO_BROADCAST == 0 {
            let key = format!("query:{}:{}", q.ltime, q.id);
            self.broadcast(&key, SerfMessage::Query(q));
        }
    }

    /// Start a query of our own: handled here too, then broadcast (Serf's `Query`).
    fn start_query(
        &mut self,
        name: String,
        payload: Vec<u8>,
        id: u32,
        reply_to: SocketAddr,
        timeout: Duration,
        out: &mut Vec<SerfOutput>,
    ) {
        let ltime = self.query_clock.increment();
        let (addr, port) = match reply_to.ip() {
            std::net::IpAddr::V4(ip) => (ip.octets().to_vec(), reply_to.port()),
            std::net::IpAddr::V6(ip) => (ip.octets().to_vec(), reply_to.port()),
        };
        let q = messages::Query {
            ltime,
            id,
            addr,
            port,
            source_node: Some(self.cfg.swim.name.clone()),
            filters: Vec::new(),
            flags: 0,
            relay_factor: 0,
            timeout: timeout.as_nanos().min(i64::MAX as u128) as i64,
            name,
            payload,
        };
        self.handle_query(q, reply_to, out);
    }

    fn merge_user_state(
        &mut self,
        pp: messages::PushPull,
        join: bool,
        now: Instant,
        out: &mut Vec<SerfOutput>,
    ) {
        if pp.ltime > 0 {
            self.clock.witness(pp.ltime - 1);
        }
        if pp.event_ltime > 0 {
            self.event_clock.witness(pp.event_ltime - 1);
        }
        if pp.query_ltime > 0 {
            self.query_clock.witness(pp.query_ltime - 1);
        }
        let left: HashSet<&String> = pp.left_members.iter().collect();
        for (name, ltime) in &pp.status_ltimes {
            if left.contains(name) {
                let l = messages::Leave {
                    ltime: *ltime,
                    node: name.clone(),
                    prune: Some(false),
                };
                self.handle_leave_intent(l, now, out);
            } else {
                self.handle_join_intent(messages::Join {
                    ltime: *ltime,
                    node: name.clone(),
                });
            }
        }
        if join {
            // A joiner does not replay the pool's old events (Serf's eventMinTime).
            self.event_min_time = self.event_min_time.max(pp.event_ltime + 1);
        }
        for evs in pp.events.into_iter().flatten() {
            for e in evs.events {
                self.handle_user_event(
                    messages::UserEvent {
                        ltime: evs.ltime,
                        name: e.name,
                        payload: e.payload,
                        cc: false,
                    },
                    out,
                );
            }
        }
    }

    fn reap(&mut self, now: Instant, out: &mut Vec<SerfOutput>) {
        let me = self.cfg.swim.name.clone();
        let (rt, tt) = (self.cfg.reconnect_timeout, self.cfg.tombstone_timeout);
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.name != me)
            .filter(|m| match m.status {
                MemberStatus::Failed => now.saturating_duration_since(m.changed) >= rt,
                MemberStatus::Left => now.saturating_duration_since(m.changed) >= tt,
                _ => false,
            })
            .map(|m| m.name.clone())
            .collect();
        for name in gone {
            if let Some(m) = self.members.remove(&name) {
                self.forget_coordinate(&m.name);
                out.push(SerfOutput::Event(SerfEvent::Reap(m)));
            }
        }
    }

    fn reconnect(&mut self, rng: &mut impl FnMut() -> u64, out: &mut Vec<SerfOutput>) {
        if self.leaving {
            return;
        }
        let failed: Vec<SocketAddr> = self
            .members
            .values()
            .filter(|m| m.status == MemberStatus::Failed)
            .map(|m| m.addr)
            .collect();
        if failed.is_empty() {
            return;
        }
        let to = failed[(rng() % failed.len() as u64) as usize];
        out.push(SerfOutput::PushPull { to, join: true });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serf(name: &str, port: u16, now: Instant) -> Serf {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut tags = BTreeMap::new();
        tags.insert("role".to_string(), "node".to_string());
        Serf::new(SerfConfig::new(SwimConfig::lan(name, addr), tags), now)
    }

    fn rng() -> impl FnMut() -> u64 {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    /// Exchange push/pull both ways, as a join does.
    fn join(a: &mut Serf, b: &mut Serf, now: Instant) -> Vec<SerfOutput> {
        let mut r = rng();
        let sa = a.local_state(true);
        let sb = b.local_state(false);
        let mut out = b.handle(SerfInput::PushPull(sa, now), &mut r);
        out.extend(a.handle(SerfInput::PushPull(sb, now), &mut r));
        out
    }

    #[test]
    fn a_joined_member_syncs_once_more_after_its_join() {
        let now = Instant::now();
        let mut a = serf("a", 7001, now);
        let mut b = serf("b", 7002, now);
        join(&mut a, &mut b, now);
        let mut r = rng();
        a.handle(SerfInput::Joined(now), &mut r);
        // Two members: 4 gossip rounds after the join (retransmit limit 4 * ceil(log10 3)).
        let early = a.handle(SerfInput::Tick(now + Duration::from_millis(600)), &mut r);
        assert!(!early
            .iter()
            .any(|o| matches!(o, SerfOutput::PushPull { .. })));
        let out = a.handle(SerfInput::Tick(now + Duration::from_millis(800)), &mut r);
        let b_addr: SocketAddr = "127.0.0.1:7002".parse().unwrap();
        assert!(
            out.contains(&SerfOutput::PushPull {
                to: b_addr,
                join: false
            }),
            "{out:?}"
        );
    }

    #[test]
    fn push_pull_carries_tags_and_member_status() {
        let now = Instant::now();
        let mut a = serf("a", 1, now);
        let mut b = serf("b", 2, now);
        let out = join(&mut a, &mut b, now);
        assert!(out
            .iter()
            .any(|o| matches!(o, SerfOutput::Event(SerfEvent::Join(m)) if m.name == "a")));
        let bs = b.members();
        let ma = bs.iter().find(|m| m.name == "a").unwrap();
        assert_eq!(ma.status, MemberStatus::Alive);
        assert_eq!(ma.tags.get("role").map(String::as_str), Some("node"));
        assert_eq!(a.members().len(), 2);
    }

    #[test]
    fn leave_intent_then_dead_is_left_and_failed_otherwise() {
        let now = Instant::now();
        let mut a = serf("a", 1, now);
        let mut b = serf("b", 2, now);
        let mut c = serf("c", 3, now);
        join(&mut a, &mut b, now);
        join(&mut a, &mut c, now);
        let mut r = rng();
        // b says it leaves: a sees leaving, then left after memberlist's dead-from-self.
        let intent = messages::Leave {
            ltime: 10,
            node: "b".into(),
            prune: Some(false),
        };
        let msg = Message::User(SerfMessage::Leave(intent).encode());
        let from: SocketAddr = "127.0.0.1:2".parse().unwrap();
        a.handle(SerfInput::Packet { from, msg, now }, &mut r);
        let st = |s: &Serf, n: &str| {
            s.members()
                .into_iter()
                .find(|m| m.name == n)
                .unwrap()
                .status
        };
        assert_eq!(st(&a, "b"), MemberStatus::Leaving);
        let inc = b.swim().incarnation();
        let dead = Message::Dead(wire::messages::Dead {
            incarnation: inc,
            node: "b".into(),
            from: "b".into(),
        });
        a.handle(
            SerfInput::Packet {
                from,
                msg: dead,
                now,
            },
            &mut r,
        );
        assert_eq!(st(&a, "b"), MemberStatus::Left);
        // c is declared dead by someone else: failed.
        let dead = Message::Dead(wire::messages::Dead {
            incarnation: c.swim().incarnation(),
            node: "c".into(),
            from: "b".into(),
        });
        let out = a.handle(
            SerfInput::Packet {
                from,
                msg: dead,
                now,
            },
            &mut r,
        );
        assert_eq!(st(&a, "c"), MemberStatus::Failed);
        assert!(out
            .iter()
            .any(|o| matches!(o, SerfOutput::Event(SerfEvent::Failed(m)) if m.name == "c")));
        // force-leave turns failed into left; prune forgets it.
        let out = a.handle(
            SerfInput::ForceLeave {
                name: "c".into(),
                prune: true,
                now,
            },
            &mut r,
        );
        assert!(out
            .iter()
            .any(|o| matches!(o, SerfOutput::Event(SerfEvent::Reap(m)) if m.name == "c")));
        assert!(a.members().iter().all(|m| m.name != "c"));
    }

    #[test]
    fn user_events_are_delivered_once_and_rebroadcast() {
        let now = Instant::now();
        let mut a = serf("a", 1, now);
        let mut r = rng();
        let ev = messages::UserEvent {
            ltime: 3,
            name: "deploy".into(),
            payload: b"v42".to_vec(),
            cc: false,
        };
        let from: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let msg = Message::User(SerfMessage::UserEvent(ev).encode());
        let before = a.swim().pending_broadcasts();
        let out = a.handle(
            SerfInput::Packet {
                from,
                msg: msg.clone(),
                now,
            },
            &mut r,
        );
        let users = |o: &[SerfOutput]| {
            o.iter()
                .filter(|o| matches!(o, SerfOutput::Event(SerfEvent::User { .. })))
                .count()
        };
        assert_eq!(users(&out), 1);
        assert_eq!(a.swim().pending_broadcasts(), before + 1);
        let out = a.handle(SerfInput::Packet { from, msg, now }, &mut r);
        assert_eq!(users(&out), 0, "duplicate delivered");
        assert!(a.clocks().1 > 3, "event clock witnessed");
    }

    #[test]
    fn failed_members_are_reaped_after_reconnect_timeout_and_retried_before() {
        let now = Instant::now();
        let mut a = serf("a", 1, now);
        let mut b = serf("b", 2, now);
        join(&mut a, &mut b, now);
        let mut r = rng();
        let from: SocketAddr = "127.0.0.1:3".parse().unwrap();
        let dead = Message::Dead(wire::messages::Dead {
            incarnation: b.swim().incarnation(),
            node: "b".into(),
            from: "x".into(),
        });
        a.handle(
            SerfInput::Packet {
                from,
                msg: dead,
                now,
            },
            &mut r,
        );
        let t = now + a.cfg.reconnect_interval;
        let out = a.handle(SerfInput::Tick(t), &mut r);
        assert!(out
            .iter()
            .any(|o| matches!(o, SerfOutput::PushPull { join: true, .. })));
        let t = now + a.cfg.reconnect_timeout + a.cfg.reap_interval;
        let out = a.handle(SerfInput::Tick(t), &mut r);
        assert!(out
            .iter()
            .any(|o| matches!(o, SerfOutput::Event(SerfEvent::Reap(m)) if m.name == "b")));
    }
}
