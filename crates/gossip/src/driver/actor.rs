//! The actor: the one task that owns the [`Serf`] state machine, the UDP socket and the
//! protocol timer.
//!
//! It feeds the state machine UDP packets (decoded by the wire layer), commands from the
//! [`Pool`] handle and the TCP side, and deadlines; it performs the outputs (send a packet,
//! start a push/pull or TCP ping, answer a key query, deliver an event) and publishes
//! members, coordinates and stats for readers. It never parses bytes and never blocks on
//! readers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::files::save_keyring;
use super::tcp::tcp_ping;
use super::{nonce, Cmd, Coordinates, Pool, PoolStats, UDP_BUFFER};
use crate::serf::keyring;
use crate::serf::membership::{MemberStatus, Serf, SerfEvent, SerfInput, SerfOutput};
use crate::serf::messages as serf_messages;
use crate::serf::snapshot;
use crate::wire::codec::SendOptions;
use crate::wire::messages::Message;

pub(super) struct Actor {
    pub(super) serf: Serf,
    pub(super) udp: Arc<UdpSocket>,
    pub(super) rx: mpsc::Receiver<Cmd>,
    pub(super) pool: Pool,
    pub(super) rng: rand::rngs::StdRng,
    pub(super) last_clocks: (u64, u64, u64),
    /// Our queries in flight: id → where their responses go.
    pub(super) queries:
        std::collections::HashMap<u32, mpsc::UnboundedSender<serf_messages::QueryResponse>>,
    /// The coordinate version last published.
    pub(super) coord_version: u64,
    /// `consul.memberlist.health.score` has not been set yet (it is set on change).
    pub(super) first_stats: bool,
}

impl Actor {
    pub(super) async fn run(mut self) {
        let mut buf = vec![0u8; UDP_BUFFER];
        let shutdown = self.pool.inner.shutdown.clone();
        let mut clock_tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            let deadline = tokio::time::Instant::from_std(self.serf.next_deadline());
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = self.udp.recv_from(&mut buf) => {
                    let Ok((n, from)) = r else { continue };
                    let decoded = self.pool.inner.wire.read().unwrap().decode_packet(&buf[..n]);
                    match decoded {
                        Ok(msg) => {
                            let now = Instant::now();
                            self.step(SerfInput::Packet { from, msg, now }).await;
                        }
                        Err(e) => tracing::debug!(target: "agent", pool = self.pool.inner.pool, %from, error = %e, "memberlist: dropped packet"),
                    }
                }
                c = self.rx.recv() => {
                    let Some(c) = c else { break };
                    if !self.command(c).await { break; }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    self.step(SerfInput::Tick(Instant::now())).await;
                }
                _ = clock_tick.tick() => self.save_clocks(),
            }
        }
        self.save_clocks();
    }

    fn save_clocks(&mut self) {
        let c = self.serf.clocks();
        if c != self.last_clocks {
            self.last_clocks = c;
            if let Some(s) = &self.pool.inner.snapshot {
                s.append(&snapshot::Record::clocks(c));
            }
        }
    }

    async fn command(&mut self, c: Cmd) -> bool {
        let now = Instant::now();
        match c {
            Cmd::Merge(pp) => self.step(SerfInput::PushPull(pp, now)).await,
            Cmd::LocalState(join, tx) => {
                let _ = tx.send(self.serf.local_state(join));
            }
            Cmd::Joined => self.step(SerfInput::Joined(now)).await,
            Cmd::UserEvent {
                name,
                payload,
                coalesce,
            } => {
                self.step(SerfInput::UserEvent {
                    name,
                    payload,
                    coalesce,
                })
                .await
            }
            Cmd::ForceLeave { name, prune, reply } => {
                let known = self.serf.members().iter().any(|m| m.name == name);
                if known {
                    self.step(SerfInput::ForceLeave { name, prune, now }).await;
                }
                let _ = reply.send(known);
            }
            Cmd::SetTags(t) => self.step(SerfInput::SetTags(t, now)).await,
            Cmd::LeaveIntent => self.step(SerfInput::LeaveIntent(now)).await,
            Cmd::Leave => self.step(SerfInput::Leave(now)).await,
            Cmd::Pending(tx) => {
                let peers = self
                    .serf
                    .members()
                    .iter()
                    .filter(|m| m.name != self.serf.name() && m.status == MemberStatus::Alive)
                    .count();
                let _ = tx.send((self.serf.swim().pending_broadcasts(), peers));
            }
            Cmd::Query {
                name,
                payload,
                timeout,
                responses,
                id,
            } => {
                let qid: u32 = self.rng.random();
                self.queries.insert(qid, responses);
                let _ = id.send(qid);
                let reply_to = self.pool.inner.advertise;
                self.step(SerfInput::Query {
                    name,
                    payload,
                    id: qid,
                    reply_to,
                    timeout,
                })
                .await;
            }
            Cmd::QueryDone(id) => {
                self.queries.remove(&id);
            }
            Cmd::TcpAck(from, ack) => {
                let msg = Message::Ack(ack);
                self.step(SerfInput::Packet { from, msg, now }).await
            }
            Cmd::Stop => return false,
        }
        true
    }

    /// Execute a keyring query on our keyring, save a changed keyring, and answer it (Serf's
    /// `serfQueries`).
    async fn answer_key_query(&mut self, q: serf_messages::Query, reply_to: SocketAddr) {
        let answer = {
            let mut wire = self.pool.inner.wire.write().unwrap();
            let mut answer = keyring::execute(&q.name, &q.payload, wire.keyring.as_mut());
            if answer.result && keyring::changes_keyring(&q.name) {
                tracing::info!(target: "agent", pool = self.pool.inner.pool, "serf: Received {} query", q.name.trim_start_matches("_serf_"));
                if let (Some(f), Some(kr)) = (&self.pool.inner.keyring_file, &wire.keyring) {
                    if let Err(e) = save_keyring(f, kr) {
                        answer.result = false;
                        answer.message = e.to_string();
                    }
                }
            }
            answer
        };
        let resp = keyring::response_to(&q, self.serf.name(), &answer);
        let msg = serf_messages::SerfMessage::QueryResponse(resp);
        self.send_packet(reply_to, &Message::User(msg.encode()))
            .await;
    }

    async fn step(&mut self, input: SerfInput) {
        let started = std::time::Instant::now();
        let outs = self.serf.handle(input, &mut || self.rng.random());
        let mut changed = false;
        for o in outs {
            match o {
                SerfOutput::Send { to, msg } => self.send_packet(to, &msg).await,
                SerfOutput::PushPull { to, join } => {
                    let p = self.pool.clone();
                    self.pool.inner.tasks.spawn(async move {
                        if let Err(e) = p.push_pull(to, join).await {
                            tracing::debug!(target: "agent", pool = p.inner.pool, %to, error = %e, "memberlist: push/pull failed");
                        }
                    });
                }
                SerfOutput::TcpPing { to, ping, deadline } => {
                    let p = self.pool.clone();
                    self.pool.inner.tasks.spawn(async move {
                        let deadline = tokio::time::Instant::from_std(deadline);
                        let seq = ping.seq_no;
                        match tokio::time::timeout_at(deadline, tcp_ping(to, ping, &p)).await {
                            Ok(Ok(ack)) if ack.seq_no == seq => {
                                tracing::warn!(target: "agent", pool = p.inner.pool, %to, "memberlist: was able to connect over TCP but UDP probes failed, network may be misconfigured");
                                let _ = p.send(Cmd::TcpAck(to, ack)).await;
                            }
                            _ => {}
                        }
                    });
                }
                SerfOutput::KeyQuery { query, reply_to } => {
                    Box::pin(self.answer_key_query(query, reply_to)).await
                }
                SerfOutput::QueryResponse(r) => {
                    if let Some(tx) = self.queries.get(&r.id) {
                        let _ = tx.send(r);
                    }
                }
                SerfOutput::Event(ev) => {
                    changed = true;
                    self.log_event(&ev);
                    let _ = self.pool.inner.events.send(ev);
                }
            }
        }
        self.record_rounds(started);
        if changed {
            *self.pool.inner.members.write().unwrap() = self.serf.members();
        }
        if self.serf.coordinate_version() != self.coord_version {
            self.coord_version = self.serf.coordinate_version();
            *self.pool.inner.coordinates.write().unwrap() = Coordinates {
                own: self.serf.coordinate().cloned(),
                cache: self.serf.cached_coordinates().clone(),
            };
        }
        let (member_time, event_time, query_time) = self.serf.clocks();
        let health_score = self.serf.swim().awareness();
        let mut stats = self.pool.inner.stats.lock().unwrap();
        if stats.health_score != health_score || self.first_stats {
            self.first_stats = false;
            metrics::gauge!("consul.memberlist.health.score", "network" => self.pool.inner.pool)
                .set(health_score as f64);
        }
        *stats = PoolStats {
            member_time,
            event_time,
            query_time,
            health_score,
            pending_broadcasts: self.serf.swim().pending_broadcasts(),
            coordinate_resets: self.serf.coordinate_resets(),
        };
    }

    /// memberlist's round timers: `probeNode` per finished probe (ping to ack, or to the
    /// probe's end when it failed) and `gossip` for a step that ran a gossip round, timed from
    /// the step's start until its packets were sent.
    fn record_rounds(&mut self, started: std::time::Instant) {
        let rounds = self.serf.take_rounds();
        let network = self.pool.inner.pool;
        if rounds.gossip > 0 {
            metrics::histogram!("consul.memberlist.gossip", "network" => network)
                .record(started.elapsed().as_secs_f64() * 1000.0);
        }
        for d in rounds.probes {
            metrics::histogram!("consul.memberlist.probeNode", "network" => network)
                .record(d.as_secs_f64() * 1000.0);
        }
    }

    fn log_event(&self, ev: &SerfEvent) {
        let pool = self.pool.inner.pool;
        // Consul's serf metrics, labelled with the pool ("lan"/"wan") as Consul labels them.
        let count = |name: &'static str| metrics::counter!(name, "network" => pool).increment(1);
        match ev {
            SerfEvent::Join(_) => count("consul.serf.member.join"),
            SerfEvent::Leave(_) => count("consul.serf.member.left"),
            SerfEvent::Failed(_) => count("consul.serf.member.failed"),
            SerfEvent::Update(_) => count("consul.serf.member.update"),
            SerfEvent::Reap(_) => {}
            // (Serf also counts `serf.events.<name>`; a metric per user-chosen name would let
            // callers grow the registry without bound, so only the total is kept.)
            SerfEvent::User { .. } => count("consul.serf.events"),
        }
        match ev {
            SerfEvent::Join(m) => {
                tracing::info!(target: "agent", pool, "serf: EventMemberJoin: {} {}", m.name, m.addr.ip());
            }
            SerfEvent::Leave(m) => {
                tracing::info!(target: "agent", pool, "serf: EventMemberLeave: {} {}", m.name, m.addr.ip());
            }
            SerfEvent::Failed(m) => {
                tracing::info!(target: "agent", pool, "serf: EventMemberFailed: {} {}", m.name, m.addr.ip());
            }
            SerfEvent::Update(m) => {
                tracing::info!(target: "agent", pool, "serf: EventMemberUpdate: {}", m.name)
            }
            SerfEvent::Reap(m) => {
                tracing::info!(target: "agent", pool, "serf: EventMemberReap: {}", m.name)
            }
            SerfEvent::User { name, ltime, .. } => {
                tracing::debug!(target: "agent", pool, "serf: EventUser: {name} (ltime {ltime})")
            }
        }
        if let (Some(s), Some(r)) = (&self.pool.inner.snapshot, snapshot::Record::for_event(ev)) {
            s.append(&[r]);
        }
    }

    async fn send_packet(&mut self, to: SocketAddr, msg: &Message) {
        let Ok(bytes) = msg.encode_packet() else {
            return;
        };
        let n = nonce(&mut self.rng);
        let framed =
            self.pool
                .inner
                .wire
                .read()
                .unwrap()
                .encode_packet(&bytes, SendOptions::default(), n);
        match framed {
            Ok(b) => {
                if let Err(e) = self.udp.send_to(&b, to).await {
                    tracing::debug!(target: "agent", %to, error = %e, "memberlist: failed to send packet");
                }
            }
            Err(e) => {
                tracing::warn!(target: "agent", error = %e, "memberlist: failed to encode packet")
            }
        }
    }
}
