//! Deterministic tests: a simulated network of `Swim` instances with a fake
//! clock, zero-latency delivery and per-link packet loss, every packet taken
//! through the real wire encoder/decoder.

use super::*;
use std::collections::HashSet;
use std::time::Duration;

const STEP: Duration = Duration::from_millis(10);

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + i as u8)), 8301)
}

fn name(i: usize) -> String {
    format!("n{i}")
}

struct Sim {
    now: Instant,
    nodes: Vec<Swim>,
    down: HashSet<usize>,
    blocked: HashSet<(usize, usize)>,
    seed: u64,
    events: Vec<(usize, Instant, MemberEvent)>,
    /// TCP works between live nodes even where UDP is blocked.
    tcp: bool,
    /// (prober, probed node, rtt, ack payload) of every completed direct probe.
    pings: Vec<(usize, String, Duration, Vec<u8>)>,
}

impl Sim {
    fn new(n: usize) -> Sim {
        let now = Instant::now();
        let nodes = (0..n)
            .map(|i| Swim::new(SwimConfig::lan(name(i), addr(i)), now))
            .collect();
        Sim {
            now,
            nodes,
            down: HashSet::new(),
            blocked: HashSet::new(),
            seed: 0x9e37_79b9_7f4a_7c15,
            events: Vec::new(),
            tcp: false,
            pings: Vec::new(),
        }
    }

    fn idx(&self, a: SocketAddr) -> Option<usize> {
        self.nodes.iter().position(|n| n.config().addr == a)
    }

    fn input(&mut self, i: usize, input: Input) {
        let mut seed = self.seed;
        let outs = self.nodes[i].handle(input, &mut || xorshift(&mut seed));
        self.seed = seed;
        self.process(i, outs);
    }

    fn reachable(&self, a: usize, b: usize) -> bool {
        !self.down.contains(&a) && !self.down.contains(&b) && !self.blocked.contains(&(a, b))
    }

    fn process(&mut self, from: usize, outs: Vec<Output>) {
        for o in outs {
            match o {
                Output::SendPacket { to, msg } => {
                    let bytes = msg.encode_packet().expect("encode");
                    assert!(bytes.len() <= 1400, "packet over budget: {}", bytes.len());
                    let msg = Message::decode_packet(&bytes).expect("decode");
                    let Some(j) = self.idx(to) else { continue };
                    if self.reachable(from, j) {
                        let now = self.now;
                        self.input(
                            j,
                            Input::Packet {
                                from: addr(from),
                                msg,
                                now,
                            },
                        );
                    }
                }
                Output::TcpPing { to, ping, .. } => {
                    let Some(j) = self.idx(to) else { continue };
                    if self.tcp && !self.down.contains(&j) && !self.down.contains(&from) {
                        let now = self.now;
                        let ack = AckResp {
                            seq_no: ping.seq_no,
                            payload: Vec::new(),
                        };
                        self.input(
                            from,
                            Input::Packet {
                                from: addr(j),
                                msg: Message::Ack(ack),
                                now,
                            },
                        );
                    }
                }
                Output::PushPull { to, join } => {
                    let Some(j) = self.idx(to) else { continue };
                    if self.reachable(from, j) && self.reachable(j, from) {
                        let now = self.now;
                        let mine = PushPull {
                            join,
                            nodes: self.nodes[from].local_state(),
                            user_state: Vec::new(),
                        };
                        let theirs = PushPull {
                            join,
                            nodes: self.nodes[j].local_state(),
                            user_state: Vec::new(),
                        };
                        self.input(j, Input::PushPull(mine, now));
                        self.input(from, Input::PushPull(theirs, now));
                    }
                }
                Output::MemberEvent(e) => self.events.push((from, self.now, e)),
                Output::User { .. } => {}
                Output::PingComplete { node, rtt, payload } => {
                    self.pings.push((from, node, rtt, payload))
                }
            }
        }
    }

    fn step(&mut self) {
        self.now += STEP;
        for i in 0..self.nodes.len() {
            if !self.down.contains(&i) && self.nodes[i].next_deadline() <= self.now {
                let now = self.now;
                self.input(i, Input::Tick(now));
                // A deadline still due after a tick would make the driver spin.
                assert!(
                    self.nodes[i].next_deadline() > now,
                    "n{i}: deadline still due after a tick"
                );
            }
        }
    }

    fn run(&mut self, d: Duration) {
        let until = self.now + d;
        while self.now < until {
            self.step();
        }
    }

    /// Run until `cond` holds (or `limit` passes); returns the elapsed time.
    fn run_until(&mut self, limit: Duration, cond: impl Fn(&Sim) -> bool) -> Option<Duration> {
        let t0 = self.now;
        while self.now - t0 < limit {
            if cond(self) {
                return Some(self.now - t0);
            }
            self.step();
        }
        None
    }

    fn state(&self, viewer: usize, of: usize) -> Option<State> {
        self.nodes[viewer].member(&name(of)).map(|m| m.state)
    }

    fn join_all(&mut self) {
        for i in 1..self.nodes.len() {
            let now = self.now;
            self.input(i, Input::Join(vec![addr(0)], now));
        }
        let n = self.nodes.len();
        let t = self.run_until(Duration::from_secs(10), |s| {
            (0..n).all(|v| (0..n).all(|o| s.state(v, o) == Some(State::Alive)))
        });
        assert!(t.is_some(), "cluster did not converge");
    }
}

#[test]
fn nodes_joined_through_one_seed_see_each_other() {
    let mut sim = Sim::new(5);
    sim.join_all();
    for v in 0..5 {
        assert_eq!(sim.nodes[v].members().len(), 5);
    }
    // Every node got a Join event for each of the 4 others.
    for v in 0..5 {
        let joins = sim
            .events
            .iter()
            .filter(|(i, _, e)| *i == v && e.kind == EventKind::Join)
            .count();
        assert_eq!(joins, 4, "node {v}");
    }
    // Stays healthy: no suspicion over a long quiet period.
    sim.run(Duration::from_secs(30));
    for v in 0..5 {
        for o in 0..5 {
            assert_eq!(sim.state(v, o), Some(State::Alive));
        }
        assert_eq!(sim.nodes[v].awareness(), 0);
    }
    assert!(sim.events.iter().all(|(_, _, e)| e.kind == EventKind::Join));
}

#[test]
fn a_joiner_syncs_after_the_joins_broadcasts_had_their_time_and_ran_out() {
    let now = Instant::now();
    let mut cfg = SwimConfig::lan(name(0), addr(0));
    cfg.push_pull_interval = Duration::ZERO; // no periodic push/pull in the way
    let mut s = Swim::new(cfg.clone(), now);
    let mut seed = 5u64;
    let mut rng = || xorshift(&mut seed);
    let out = s.handle(Input::Join(vec![addr(1)], now), &mut rng);
    assert_eq!(
        out,
        vec![Output::PushPull {
            to: addr(1),
            join: true
        }]
    );
    let peer = Swim::new(SwimConfig::lan(name(1), addr(1)), now);
    let state = PushPull {
        join: true,
        nodes: peer.local_state(),
        user_state: Vec::new(),
    };
    s.handle(Input::PushPull(state, now), &mut rng);
    // Two members: retransmit limit 4 * ceil(log10 3) = 4 rounds of 200 ms.
    let due = now + Duration::from_millis(800);
    assert_eq!(s.next_deadline().min(due), s.next_deadline());
    let mut syncs = Vec::new();
    let mut t = now;
    while t < now + Duration::from_secs(10) {
        t = s.next_deadline().max(t + Duration::from_millis(1));
        for o in s.handle(Input::Tick(t), &mut rng) {
            if let Output::PushPull { to, join } = o {
                syncs.push((t, to, join));
            }
        }
    }
    // Once when the join's broadcasts had their time, once more when our queue ran dry.
    assert_eq!(syncs.len(), 2, "{syncs:?}");
    assert_eq!(syncs[0], (due, addr(1), false));
    assert_eq!((syncs[1].1, syncs[1].2), (addr(1), false));
    assert_eq!(s.pending_broadcasts(), 0);

    // The driver's form (it ran the join's push/pulls itself); with nobody alive to sync with
    // when it is due, nothing is sent and the timer does not stay due.
    let mut s = Swim::new(cfg, now);
    assert!(s.handle(Input::Joined(now), &mut rng).is_empty());
    let t = now + Duration::from_secs(2);
    let out = s.handle(Input::Tick(t), &mut rng);
    assert!(
        !out.iter().any(|o| matches!(o, Output::PushPull { .. })),
        "{out:?}"
    );
    assert!(s.next_deadline() > t);
}

#[test]
fn silent_node_becomes_suspect_then_dead_within_bound() {
    let mut sim = Sim::new(4);
    sim.join_all();
    sim.down.insert(3);
    // Each survivor probes the 3 others round-robin: n3 is probed within
    // 3 probe intervals, plus the 1 s probe itself.
    let to_suspect = sim
        .run_until(Duration::from_secs(10), |s| {
            (0..3).any(|v| s.state(v, 3) == Some(State::Suspect))
        })
        .expect("suspected");
    assert!(to_suspect <= Duration::from_secs(4), "{to_suspect:?}");
    // N=4: min = 4 * max(1, log10 4) * 1 s = 4 s, max = 6 * min = 24 s, k = 2.
    // All survivors suspect independently, so confirmations pull the timer
    // towards min; it can never be earlier than min.
    let to_dead = sim
        .run_until(Duration::from_secs(30), |s| {
            (0..3).all(|v| s.state(v, 3) == Some(State::Dead))
        })
        .expect("dead");
    eprintln!("suspect after {to_suspect:?}, dead after a further {to_dead:?}");
    assert!(to_dead >= Duration::from_secs(3), "{to_dead:?}"); // first suspicion started ≤ 1 step early
                                                               // Both other survivors' suspicions confirm it (k = 2), so it ends at min.
    assert!(to_dead <= Duration::from_secs(5), "{to_dead:?}");
    let failed: Vec<_> = sim
        .events
        .iter()
        .filter(|(_, _, e)| e.kind == EventKind::Failed)
        .collect();
    assert_eq!(failed.len(), 3);
    assert!(failed.iter().all(|(_, _, e)| e.name == "n3"));
    assert!(!sim
        .events
        .iter()
        .any(|(_, _, e)| e.kind == EventKind::Leave));
}

#[test]
fn confirmations_shorten_suspicion() {
    // Failure detection with full confirmation comes in well under the
    // unconfirmed 24 s upper bound.
    let mut sim = Sim::new(5);
    sim.join_all();
    sim.down.insert(4);
    let t0 = sim.now;
    sim.run_until(Duration::from_secs(40), |s| {
        (0..4).all(|v| s.state(v, 4) == Some(State::Dead))
    })
    .expect("dead");
    let first_fail = sim
        .events
        .iter()
        .find(|(_, _, e)| e.kind == EventKind::Failed)
        .map(|(_, t, _)| *t - t0)
        .unwrap();
    eprintln!("5 nodes: first failed event {first_fail:?} after kill");
    assert!(first_fail < Duration::from_secs(14), "{first_fail:?}");
}

#[test]
fn suspected_live_node_refutes_and_stays_alive() {
    let mut sim = Sim::new(3);
    sim.join_all();
    let inc = sim.nodes[1].incarnation();
    let now = sim.now;
    let accuse = Message::Suspect(Suspect {
        incarnation: inc,
        node: name(1),
        from: name(0),
    });
    sim.input(
        0,
        Input::Packet {
            from: addr(0),
            msg: accuse,
            now,
        },
    );
    assert_eq!(sim.state(0, 1), Some(State::Suspect));
    sim.run_until(Duration::from_secs(5), |s| s.nodes[1].incarnation() > inc)
        .expect("refuted");
    assert_eq!(sim.nodes[1].awareness(), 1, "refuting costs awareness");
    sim.run_until(Duration::from_secs(5), |s| {
        (0..3).all(|v| s.state(v, 1) == Some(State::Alive))
    })
    .expect("alive again");
    sim.run(Duration::from_secs(30));
    for v in 0..3 {
        let m = sim.nodes[v].member("n1").unwrap();
        assert_eq!(m.state, State::Alive);
        assert!(m.incarnation > inc);
    }
    assert!(!sim
        .events
        .iter()
        .any(|(_, _, e)| e.kind == EventKind::Failed));
    // Successful probes bring awareness back down.
    assert_eq!(sim.nodes[1].awareness(), 0);
}

#[test]
fn node_hearing_itself_dead_refutes() {
    let mut sim = Sim::new(3);
    sim.join_all();
    let inc = sim.nodes[2].incarnation();
    let now = sim.now;
    let dead = Message::Dead(Dead {
        incarnation: inc,
        node: name(2),
        from: name(0),
    });
    sim.input(
        2,
        Input::Packet {
            from: addr(0),
            msg: dead,
            now,
        },
    );
    assert!(sim.nodes[2].incarnation() > inc);
    assert_eq!(sim.state(2, 2), Some(State::Alive));
}

#[test]
fn leaving_node_is_seen_as_left_not_failed() {
    let mut sim = Sim::new(4);
    sim.join_all();
    let now = sim.now;
    sim.input(2, Input::Leave(now));
    assert_eq!(sim.state(2, 2), Some(State::Left));
    // The driver waits for the dead-from-self message to go out, then stops.
    sim.run_until(Duration::from_secs(5), |s| {
        s.nodes[2].pending_broadcasts() == 0
    })
    .expect("flushed");
    sim.down.insert(2);
    sim.run_until(Duration::from_secs(5), |s| {
        [0, 1, 3]
            .iter()
            .all(|&v| s.state(v, 2) == Some(State::Left))
    })
    .expect("left");
    sim.run(Duration::from_secs(20));
    for v in [0, 1, 3] {
        assert_eq!(sim.state(v, 2), Some(State::Left));
    }
    // Once past gossip_to_the_dead_time the node is forgotten (the Serf layer keeps it).
    sim.run(Duration::from_secs(15));
    for v in [0, 1, 3] {
        assert_eq!(sim.state(v, 2), None);
    }
    let about2: Vec<_> = sim
        .events
        .iter()
        .filter(|(i, _, e)| *i != 2 && e.name == "n2" && e.kind != EventKind::Join)
        .collect();
    assert_eq!(about2.len(), 3);
    assert!(about2.iter().all(|(_, _, e)| e.kind == EventKind::Leave));
}

#[test]
fn a_leaving_node_that_stays_up_has_no_stale_deadline() {
    // A leaving node stops probing; its probe time must not stay due (Sim::step asserts it).
    let mut sim = Sim::new(3);
    sim.join_all();
    let now = sim.now;
    sim.input(2, Input::Leave(now));
    sim.run(Duration::from_secs(5));
    assert_eq!(sim.state(0, 2), Some(State::Left));
}

#[test]
fn a_live_name_claimed_from_another_address_is_ignored() {
    let mut sim = Sim::new(2);
    sim.join_all();
    let now = sim.now;
    let (ip, port) = addr_bytes("127.0.9.9:7946".parse().unwrap());
    let impostor = Alive {
        incarnation: 100,
        node: name(1),
        addr: ip,
        port,
        meta: Vec::new(),
        vsn: Vec::new(),
    };
    sim.input(
        0,
        Input::Packet {
            from: "127.0.9.9:7946".parse().unwrap(),
            msg: Message::Alive(impostor),
            now,
        },
    );
    let m = sim.nodes[0].member(&name(1)).unwrap();
    assert_eq!(m.addr, addr(1));
    assert!(m.incarnation < 100);
}

#[test]
fn tcp_fallback_ping_keeps_a_node_alive_when_udp_is_blocked() {
    for tcp in [true, false] {
        let mut sim = Sim::new(2);
        sim.join_all();
        sim.tcp = tcp;
        sim.blocked.insert((0, 1));
        sim.blocked.insert((1, 0));
        sim.run(Duration::from_secs(30));
        let want = if tcp { State::Alive } else { State::Dead };
        assert_eq!(sim.state(0, 1), Some(want), "tcp = {tcp}");
    }
}

#[test]
fn indirect_probe_keeps_node_alive_across_a_broken_link() {
    let mut sim = Sim::new(4);
    sim.join_all();
    // n0 and n1 cannot talk directly; n2/n3 relay n0's indirect pings.
    sim.blocked.insert((0, 1));
    sim.blocked.insert((1, 0));
    sim.run(Duration::from_secs(30));
    for v in 0..4 {
        for o in 0..4 {
            assert_eq!(sim.state(v, o), Some(State::Alive), "{v} sees {o}");
        }
    }
    assert!(!sim
        .events
        .iter()
        .any(|(_, _, e)| e.kind == EventKind::Failed));
}

#[test]
fn isolated_node_raises_its_awareness() {
    let mut sim = Sim::new(4);
    sim.join_all();
    for o in 1..4 {
        sim.blocked.insert((0, o));
        sim.blocked.insert((o, 0));
    }
    sim.run(Duration::from_secs(3));
    // Failed probes with missing nacks count against n0 itself.
    assert!(
        sim.nodes[0].awareness() >= 2,
        "{}",
        sim.nodes[0].awareness()
    );
    for v in 1..4 {
        assert_eq!(sim.nodes[v].awareness(), 0);
    }
}

#[test]
fn nack_relayed_when_target_silent() {
    let now = Instant::now();
    let mut s = Swim::new(SwimConfig::lan("relay", addr(0)), now);
    let (taddr, tport) = addr_bytes(addr(2));
    let ind = IndirectPingReq {
        seq_no: 77,
        target: taddr,
        port: tport,
        node: "t".into(),
        nack: true,
        source_addr: vec![127, 0, 0, 11],
        source_port: 8301,
        source_node: "req".into(),
    };
    let mut seed = 1u64;
    let mut rng = || xorshift(&mut seed);
    let out = s.handle(
        Input::Packet {
            from: addr(1),
            msg: Message::IndirectPing(ind),
            now,
        },
        &mut rng,
    );
    let ping_seq = match &out[..] {
        [Output::SendPacket { to, msg }] if *to == addr(2) => match msg.clone().flatten().remove(0)
        {
            Message::Ping(p) => {
                assert_eq!(p.node, "t");
                p.seq_no
            }
            m => panic!("{m:?}"),
        },
        o => panic!("{o:?}"),
    };
    // An ack from the target is relayed with the requester's sequence number.
    let out = s.handle(
        Input::Packet {
            from: addr(2),
            msg: Message::Ack(AckResp {
                seq_no: ping_seq,
                payload: vec![],
            }),
            now,
        },
        &mut rng,
    );
    assert!(matches!(&out[0], Output::SendPacket { to, msg }
        if *to == addr(1) && msg.clone().flatten()[0] == Message::Ack(AckResp { seq_no: 77, payload: vec![] })));
    // A second request that gets no answer produces a nack after probe_timeout.
    let ind2 = IndirectPingReq {
        seq_no: 78,
        target: vec![127, 0, 0, 12],
        port: 8301,
        nack: true,
        ..Default::default()
    };
    s.handle(
        Input::Packet {
            from: addr(1),
            msg: Message::IndirectPing(ind2),
            now,
        },
        &mut rng,
    );
    let out = s.handle(Input::Tick(now + Duration::from_millis(500)), &mut rng);
    assert!(out.iter().any(|o| matches!(o, Output::SendPacket { to, msg }
        if *to == addr(1) && msg.clone().flatten().contains(&Message::Nack(NackResp { seq_no: 78 })))));
}

#[test]
fn ping_for_another_name_is_ignored_and_ack_goes_to_source() {
    let now = Instant::now();
    let mut s = Swim::new(SwimConfig::lan("me", addr(0)), now);
    let mut rng = || 4u64;
    let p = Ping {
        seq_no: 5,
        node: "other".into(),
        ..Default::default()
    };
    assert!(s
        .handle(
            Input::Packet {
                from: addr(1),
                msg: Message::Ping(p),
                now
            },
            &mut rng
        )
        .is_empty());
    let p = Ping {
        seq_no: 6,
        node: "me".into(),
        source_addr: vec![127, 0, 0, 99],
        source_port: 7946,
        source_node: "x".into(),
    };
    let out = s.handle(
        Input::Packet {
            from: addr(1),
            msg: Message::Ping(p),
            now,
        },
        &mut rng,
    );
    match &out[..] {
        [Output::SendPacket { to, msg }] => {
            assert_eq!(*to, "127.0.0.99:7946".parse().unwrap());
            // Our own queued alive rides along.
            let parts = msg.clone().flatten();
            assert_eq!(
                parts[0],
                Message::Ack(AckResp {
                    seq_no: 6,
                    payload: vec![]
                })
            );
            assert!(matches!(&parts[1], Message::Alive(a) if a.node == "me"));
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn broadcasts_stop_after_retransmit_limit() {
    let now = Instant::now();
    let mut cfg = SwimConfig::lan("me", addr(0));
    cfg.probe_interval = Duration::from_secs(3600); // no probes: gossip only
    cfg.push_pull_interval = Duration::ZERO;
    let mut s = Swim::new(cfg, now);
    let mut seed = 7u64;
    let mut rng = || xorshift(&mut seed);
    for i in 1..3 {
        let (a, port) = addr_bytes(addr(i));
        let alive = Alive {
            incarnation: 1,
            node: name(i),
            addr: a,
            port,
            meta: vec![],
            vsn: vec![1, 5, 2, 2, 5, 4],
        };
        s.handle(
            Input::Packet {
                from: addr(i),
                msg: Message::Alive(alive),
                now,
            },
            &mut rng,
        );
    }
    assert_eq!(s.pending_broadcasts(), 3);
    // N = 3: limit = 4 * ceil(log10(4)) = 4.
    let limit = retransmit_limit(4, 3);
    assert_eq!(limit, 4);
    let mut sent: HashMap<String, u32> = HashMap::new();
    let mut t = now;
    for _ in 0..50 {
        t += Duration::from_millis(200);
        for o in s.handle(Input::Tick(t), &mut rng) {
            if let Output::SendPacket { msg, .. } = o {
                for m in msg.flatten() {
                    if let Message::Alive(a) = m {
                        *sent.entry(a.node).or_default() += 1;
                    }
                }
            }
        }
    }
    assert_eq!(s.pending_broadcasts(), 0);
    assert_eq!(sent.len(), 3);
    assert!(sent.values().all(|&c| c == limit), "{sent:?}");
}

#[test]
fn newer_broadcast_about_a_node_replaces_older() {
    let mut q = BroadcastQueue::default();
    q.queue(
        "a",
        Message::Suspect(Suspect {
            incarnation: 1,
            node: "a".into(),
            from: "x".into(),
        }),
    );
    q.queue(
        "a",
        Message::Dead(Dead {
            incarnation: 1,
            node: "a".into(),
            from: "x".into(),
        }),
    );
    q.queue(
        "b",
        Message::Dead(Dead {
            incarnation: 1,
            node: "b".into(),
            from: "x".into(),
        }),
    );
    assert_eq!(q.len(), 2);
    let got = q.take(2, 1400, 1);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|m| matches!(m, Message::Dead(_))));
    assert!(q.is_empty());
    // Size limit is respected.
    q.queue(
        "c",
        Message::Dead(Dead {
            incarnation: 1,
            node: "c".into(),
            from: "x".into(),
        }),
    );
    assert!(q.take(2, 10, 1).is_empty());
    assert_eq!(q.len(), 1);
}

#[test]
fn lifeguard_formulas() {
    let s = Duration::from_secs(1);
    assert_eq!(suspicion_timeout(4, 1, s), Duration::from_secs(4));
    assert_eq!(suspicion_timeout(4, 10, s), Duration::from_secs(4));
    assert_eq!(suspicion_timeout(4, 100, s), Duration::from_secs(8));
    assert_eq!(suspicion_timeout(4, 1000, s), Duration::from_secs(12));
    let (min, max) = (Duration::from_secs(4), Duration::from_secs(24));
    assert_eq!(remaining_timeout(0, 2, min, max), max);
    assert_eq!(remaining_timeout(2, 2, min, max), min);
    let mid = remaining_timeout(1, 2, min, max);
    assert!(mid > min && mid < max, "{mid:?}");
    assert_eq!(remaining_timeout(0, 0, min, max), min);

    let mut a = Awareness::new(8);
    a.apply_delta(-1);
    assert_eq!(a.score(), 0);
    a.apply_delta(100);
    assert_eq!(a.score(), 7);
    assert_eq!(a.scale(Duration::from_secs(1)), Duration::from_secs(8));

    let t = Instant::now();
    let mut sp = Suspicion::new("a", 3, 2, min, max, t);
    assert!(!sp.confirm("a"), "the accuser is not a confirmation");
    assert!(sp.confirm("b"));
    assert!(!sp.confirm("b"));
    assert!(sp.confirm("c"));
    assert!(!sp.confirm("d"), "capped at k");
    assert_eq!(sp.confirmations(), 2);
    assert_eq!(sp.deadline(), t + min);
}

#[test]
fn push_pull_interval_scales_like_memberlists() {
    let i = Duration::from_secs(30);
    assert_eq!(push_pull_scale(i, 1), i);
    assert_eq!(push_pull_scale(i, 32), i);
    assert_eq!(push_pull_scale(i, 33), i * 2);
    assert_eq!(push_pull_scale(i, 50), i * 2);
    assert_eq!(push_pull_scale(i, 64), i * 2);
    assert_eq!(push_pull_scale(i, 65), i * 3);
    assert_eq!(push_pull_scale(i, 200), i * 4);
    assert_eq!(push_pull_scale(i, 1000), i * 6);
}

#[test]
fn periodic_push_pulls_are_staggered() {
    // Members started together sync at different moments: the first periodic push/pull comes
    // a random part of the interval after the interval.
    let now = Instant::now();
    let mut firsts = Vec::new();
    for seed in 1..=8u64 {
        let mut s = Swim::new(SwimConfig::lan("me", addr(0)), now);
        let mut x = seed;
        s.handle(Input::Tick(now + STEP), &mut || xorshift(&mut x));
        let first = s.next_push_pull - now;
        assert!(
            first >= Duration::from_secs(30) && first < Duration::from_secs(60),
            "{first:?}"
        );
        firsts.push(first);
    }
    firsts.sort();
    firsts.dedup();
    assert!(firsts.len() > 4, "{firsts:?}");
}

#[test]
fn presets_match_design() {
    let a = addr(0);
    let lan = SwimConfig::lan("x", a);
    assert_eq!(
        (lan.probe_interval, lan.probe_timeout),
        (Duration::from_secs(1), Duration::from_millis(500))
    );
    assert_eq!(
        (lan.gossip_interval, lan.gossip_nodes, lan.indirect_checks),
        (Duration::from_millis(200), 3, 3)
    );
    assert_eq!(
        (
            lan.suspicion_mult,
            lan.suspicion_max_timeout_mult,
            lan.awareness_max_multiplier
        ),
        (4, 6, 8)
    );
    let wan = SwimConfig::wan("x", a);
    assert_eq!(
        (wan.probe_interval, wan.probe_timeout),
        (Duration::from_secs(5), Duration::from_secs(3))
    );
    assert_eq!(
        (wan.gossip_interval, wan.gossip_nodes, wan.suspicion_mult),
        (Duration::from_millis(500), 4, 6)
    );
}

#[test]
fn restarted_node_rejoins_by_refuting_its_old_state() {
    let mut sim = Sim::new(3);
    sim.join_all();
    let now = sim.now;
    sim.input(2, Input::Leave(now));
    sim.run_until(Duration::from_secs(5), |s| {
        (0..2).all(|v| s.state(v, 2) == Some(State::Left))
    })
    .expect("left");
    let old = sim.nodes[0].member("n2").unwrap().incarnation;
    // Restart n2 from scratch (incarnation 1) and join via n0.
    sim.nodes[2] = Swim::new(SwimConfig::lan(name(2), addr(2)), sim.now);
    let now = sim.now;
    sim.input(2, Input::Join(vec![addr(0)], now));
    sim.run_until(Duration::from_secs(5), |s| {
        (0..3).all(|v| s.state(v, 2) == Some(State::Alive))
    })
    .expect("rejoined");
    assert!(sim.nodes[2].incarnation() > old);
    let rejoins = sim
        .events
        .iter()
        .filter(|(i, _, e)| *i < 2 && e.name == "n2" && e.kind == EventKind::Join)
        .count();
    assert_eq!(rejoins, 4, "initial join + rejoin, seen by n0 and n1");
}

#[test]
fn suspect_target_gets_the_accusation_with_the_ping() {
    let now = Instant::now();
    let mut cfg = SwimConfig::lan("me", addr(0));
    cfg.push_pull_interval = Duration::ZERO;
    let mut s = Swim::new(cfg, now);
    let mut rng = || 3u64;
    let (a, port) = addr_bytes(addr(1));
    let alive = Alive {
        incarnation: 3,
        node: "p".into(),
        addr: a,
        port,
        meta: vec![],
        vsn: vec![],
    };
    s.handle(
        Input::Packet {
            from: addr(1),
            msg: Message::Alive(alive),
            now,
        },
        &mut rng,
    );
    let sus = Suspect {
        incarnation: 3,
        node: "p".into(),
        from: "q".into(),
    };
    s.handle(
        Input::Packet {
            from: addr(1),
            msg: Message::Suspect(sus),
            now,
        },
        &mut rng,
    );
    let out = s.handle(Input::Tick(now + Duration::from_secs(1)), &mut rng);
    let to_p: Vec<Message> = out
        .into_iter()
        .filter_map(|o| match o {
            Output::SendPacket { to, msg } if to == addr(1) => Some(msg.flatten()),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(to_p
        .iter()
        .any(|m| matches!(m, Message::Ping(p) if p.node == "p")));
    assert!(to_p.contains(&Message::Suspect(Suspect {
        incarnation: 3,
        node: "p".into(),
        from: "me".into()
    })));
}

#[test]
fn meta_update_reaches_peers_as_update_event() {
    let mut sim = Sim::new(3);
    sim.join_all();
    let now = sim.now;
    sim.input(1, Input::UpdateMeta(b"role=consul".to_vec(), now));
    sim.run_until(Duration::from_secs(5), |s| {
        [0, 2]
            .iter()
            .all(|&v| s.nodes[v].member("n1").unwrap().meta == b"role=consul")
    })
    .expect("meta spread");
    let updates: Vec<_> = sim
        .events
        .iter()
        .filter(|(_, _, e)| e.kind == EventKind::Update)
        .collect();
    assert_eq!(updates.len(), 2);
    assert!(updates
        .iter()
        .all(|(_, _, e)| e.name == "n1" && e.meta == b"role=consul"));
    assert_eq!(
        sim.nodes[1].awareness(),
        0,
        "a voluntary update is not a refutation"
    );
}

#[test]
fn acks_carry_the_payload_and_only_direct_probes_complete_pings() {
    let mut sim = Sim::new(3);
    for i in 0..3 {
        sim.nodes[i].set_ack_payload(vec![1, i as u8]);
    }
    sim.join_all();
    sim.run(Duration::from_secs(5));
    for i in 0..3 {
        for j in (0..3).filter(|j| *j != i) {
            let got: Vec<_> = sim
                .pings
                .iter()
                .filter(|(from, node, ..)| *from == i && *node == name(j))
                .collect();
            assert!(!got.is_empty(), "{i} completed a probe of {j}");
            for (_, _, rtt, payload) in got {
                assert_eq!(payload, &vec![1, j as u8], "the ack carries {j}'s payload");
                assert!(*rtt < Duration::from_millis(500));
            }
        }
    }
    // Node 0 can no longer reach node 1 directly: its probes of 1 succeed through node 2,
    // and such detours say nothing about the RTT.
    sim.blocked.insert((0, 1));
    sim.blocked.insert((1, 0));
    sim.pings.clear();
    sim.run(Duration::from_secs(10));
    assert!(
        !sim.pings
            .iter()
            .any(|(from, node, ..)| *from == 0 && *node == name(1)),
        "indirect acks do not complete pings"
    );
    assert_eq!(sim.state(0, 1), Some(State::Alive));
    assert!(sim
        .pings
        .iter()
        .any(|(from, node, ..)| *from == 0 && *node == name(2)));
}

#[test]
fn rounds_report_gossip_rounds_and_finished_probes() {
    let mut sim = Sim::new(3);
    sim.join_all();
    for n in &mut sim.nodes {
        n.take_rounds();
    }
    // 1 s of healthy pool: n0 gossips every 200 ms and probes once; every probe is acked
    // within a step, so its duration is at most one step.
    sim.run(Duration::from_secs(1));
    let healthy = sim.nodes[0].take_rounds();
    assert!((4..=6).contains(&healthy.gossip), "{healthy:?}");
    assert!(!healthy.probes.is_empty(), "{healthy:?}");
    assert!(healthy.probes.iter().all(|d| *d <= STEP), "{healthy:?}");
    assert_eq!(sim.nodes[0].take_rounds(), Rounds::default());

    // A silent peer: n0's probe of it runs to its end (the probe interval), far longer than an
    // acked one.
    sim.down.insert(2);
    sim.run(Duration::from_secs(4));
    let failing = sim.nodes[0].take_rounds();
    assert!(
        failing
            .probes
            .iter()
            .any(|d| *d >= Duration::from_millis(900)),
        "{failing:?}"
    );
}
