//! The scale scenarios of issue #20 ("Scale of gossip") on the [`Sim`], and memberlist's
//! predictions to hold them against.
//!
//! * [`converged_pool`]: N members that all know each other, with no broadcast left to send.
//! * [`run_scale`]: in such a pool, (a) one new member joins one node — when do 50 %, 99 % and
//!   100 % of the members know it alive; (b) one member crashes — when is it first suspected,
//!   first declared dead, dead everywhere; (c) over the whole window, live members accused
//!   (suspected) and declared dead.
//! * [`mass_join`]: N fresh members join one after another, each through a random earlier one
//!   (what `examples/convergence.rs` does on real sockets) — when does everyone list everyone.
//!
//! Predictions ([`Prediction`]): the join spread from the epidemic model behind Serf's
//! convergence simulator (serf.io/docs/internals/simulator): after `r` gossip rounds the
//! informed fraction is `1 / (1 + (N+1)·e^(−c·N·r))` with `c·N = fanout·(1 − loss)/2`.
//! Failure detection from memberlist's timers: the victim is first probed after about one
//! probe interval (N−1 members each probe one of N−1 others per interval), the failed probe
//! ends one probe interval after it started (then: suspect); the suspicion lasts
//! `suspicion_mult · max(1, log10 N) · probe_interval` once `suspicion_mult − 2` others have
//! confirmed it (Lifeguard's minimum) and at most `suspicion_max_timeout_mult` times that
//! without confirmations; then the dead message spreads like any broadcast.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{sim_addr, sim_name, NetConfig, NetStats, Rng, Sim};
use crate::memberlist::{suspicion_timeout, Input, SwimConfig};
use crate::serf::messages::encode_tags;
use crate::wire::codec::WireConfig;
use crate::wire::messages::{node_state, PushNodeState, PushPull};

/// What memberlist's model predicts for a pool of `n` (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Pool size.
    pub n: usize,
    /// A broadcast reaches 50 % of the members.
    pub spread_50: Duration,
    /// … 99 %.
    pub spread_99: Duration,
    /// … 99.99 %.
    pub spread_9999: Duration,
    /// … every member (fewer than half a member left uninformed, in expectation).
    pub spread_all: Duration,
    /// First suspicion of a crashed member (expected): first probe + the probe's length.
    pub first_suspect: Duration,
    /// Lifeguard's minimum suspicion timeout (`suspicion_mult · max(1, log10 N) · probe`).
    pub suspicion_min: Duration,
    /// Its maximum (no confirmations): `suspicion_max_timeout_mult ·` the minimum.
    pub suspicion_max: Duration,
    /// Crash to dead everywhere, confirmations arriving in time: first suspicion + minimum
    /// timeout + the spread of the dead message to every member.
    pub all_dead: Duration,
}

/// Rounds after which the model's informed fraction reaches `fraction`.
fn rounds_to(n: usize, fanout: usize, loss: f64, fraction: f64) -> f64 {
    let n = n as f64;
    let rate = fanout as f64 * (1.0 - loss) * 0.5;
    ((n + 1.0) / (1.0 / fraction - 1.0)).ln() / rate
}

impl Prediction {
    /// The prediction for `n` members with `cfg`'s timing and `loss` UDP loss.
    pub fn new(n: usize, cfg: &SwimConfig, loss: f64) -> Prediction {
        let spread = |f: f64| {
            let r = rounds_to(n, cfg.gossip_nodes, loss, f).max(0.0);
            cfg.gossip_interval.mul_f64(r)
        };
        let all = 1.0 - 0.5 / n.max(1) as f64;
        let min = suspicion_timeout(cfg.suspicion_mult, n, cfg.probe_interval);
        let first_suspect = cfg.probe_interval * 2;
        let spread_all = spread(all);
        Prediction {
            n,
            spread_50: spread(0.5),
            spread_99: spread(0.99),
            spread_9999: spread(0.9999),
            spread_all,
            first_suspect,
            suspicion_min: min,
            suspicion_max: min * cfg.suspicion_max_timeout_mult,
            all_dead: first_suspect + min + spread_all,
        }
    }
}

/// memberlist's `DefaultLANConfig` for simulated node `i`, with Consul-like tags as its meta
/// (so packets carry what a Consul pool's do) and the driver's room for label and encryption.
pub fn lan_config(i: usize) -> SwimConfig {
    let mut cfg = SwimConfig::lan(sim_name(i), sim_addr(i));
    let mut tags = BTreeMap::new();
    for (k, v) in [
        ("role", "node"),
        ("dc", "dc1"),
        ("segment", ""),
        ("vsn", "2"),
        ("vsn_min", "2"),
        ("vsn_max", "3"),
        ("build", "1.20.0:0000000"),
    ] {
        tags.insert(k.to_string(), v.to_string());
    }
    tags.insert("id".into(), format!("00000000-0000-4000-8000-{i:012}"));
    cfg.meta = encode_tags(&tags);
    cfg.packet_overhead = WireConfig::default().packet_overhead();
    cfg
}

/// `n` members that all know each other alive (each was handed everyone's state, as after a
/// push/pull with an all-knowing peer), run until no member has a broadcast left to send. They
/// start at random moments within one probe interval, so that their timers are not in step.
/// `tweak` adjusts every member's configuration.
pub fn converged_pool(n: usize, net: NetConfig, seed: u64, tweak: &dyn Fn(&mut SwimConfig)) -> Sim {
    let mut sim = Sim::new(net, seed);
    let cfgs: Vec<SwimConfig> = (0..n)
        .map(|i| {
            let mut c = lan_config(i);
            tweak(&mut c);
            c
        })
        .collect();
    let everyone: Vec<PushNodeState> = cfgs
        .iter()
        .map(|c| {
            let (addr, port) = match c.addr.ip() {
                std::net::IpAddr::V4(ip) => (ip.octets().to_vec(), c.addr.port()),
                std::net::IpAddr::V6(ip) => (ip.octets().to_vec(), c.addr.port()),
            };
            PushNodeState {
                name: c.name.clone(),
                addr,
                port,
                meta: c.meta.clone(),
                incarnation: 1,
                state: node_state::ALIVE,
                vsn: c.vsn.clone(),
            }
        })
        .collect();
    let mut rng = Rng::new(seed ^ 0x00c0_ffee);
    let spread = cfgs.first().map_or(Duration::ZERO, |c| c.probe_interval);
    let mut starts: Vec<Duration> = (0..n)
        .map(|_| Duration::from_nanos(rng.below(spread.as_nanos().max(1) as u64)))
        .collect();
    starts.sort();
    let t0 = sim.now();
    for (c, start) in cfgs.into_iter().zip(starts) {
        sim.run_until(t0 + start, |_| false);
        let i = sim.add_node(c);
        let pp = PushPull {
            join: false,
            nodes: everyone.clone(),
            user_state: Vec::new(),
        };
        let now = sim.now();
        sim.input(i, Input::PushPull(pp, now));
    }
    // Let the alive broadcasts this queued run out.
    for _ in 0..600 {
        sim.run_for(Duration::from_secs(1));
        if (0..n).all(|i| sim.swim(i).pending_broadcasts() == 0) {
            break;
        }
    }
    sim
}

/// Percentile times of a spread: when `ceil(f · N)` of the N members had it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spread {
    /// Half of the members.
    pub p50: Option<Duration>,
    /// 99 %.
    pub p99: Option<Duration>,
    /// 99.99 % (every member for N < 10,000).
    pub p9999: Option<Duration>,
    /// Every member.
    pub all: Option<Duration>,
}

impl Spread {
    /// From when each of N members had it (`None`: never).
    pub fn from_times(mut times: Vec<Option<Duration>>) -> Spread {
        let n = times.len();
        times.sort_by_key(|t| t.unwrap_or(Duration::MAX));
        let at = |f: f64| {
            let k = ((f * n as f64).ceil() as usize).clamp(1, n.max(1));
            times.get(k - 1).copied().flatten()
        };
        Spread {
            p50: at(0.5),
            p99: at(0.99),
            p9999: at(0.9999),
            all: at(1.0),
        }
    }
}

/// Failure detection of one crashed member, from the crash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detection {
    /// Some member suspects it.
    pub first_suspect: Option<Duration>,
    /// Some member declares it dead.
    pub first_dead: Option<Duration>,
    /// Every live member has it dead.
    pub all_dead: Option<Duration>,
}

/// Live members wrongly accused or declared dead over a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FalsePositives {
    /// Length of the window.
    pub window: Duration,
    /// Accusations: a member suspecting a live one (one per accuser, subject and incarnation).
    pub suspicions: usize,
    /// Distinct live members accused at least once.
    pub suspected: usize,
    /// Failed events about live members (one per observer and subject).
    pub dead: usize,
    /// Distinct live members declared dead by someone.
    pub declared_dead: usize,
    /// Incarnation bumps of live members (refutations; nothing else bumps them here).
    pub refutations: u64,
}

/// One run of the scale scenarios (see [`run_scale`]).
#[derive(Debug, Clone)]
pub struct ScaleRun {
    /// Members in the converged pool (the joiner not counted).
    pub n: usize,
    /// Seed.
    pub seed: u64,
    /// (a) the joiner known alive by the N members, from the join.
    pub join: Spread,
    /// (b) the crashed member, from the crash.
    pub failure: Detection,
    /// (c) false positives from the join to the end of the window.
    pub false_positives: FalsePositives,
    /// Network counters over the whole run (convergence included).
    pub stats: NetStats,
}

/// Knobs of [`run_scale`].
#[derive(Clone)]
pub struct ScaleOptions {
    /// The network.
    pub net: NetConfig,
    /// Applied to every member's configuration (the joiner's too).
    pub tweak: fn(&mut SwimConfig),
    /// The false-positive window, from the join (at least as long as (a) and (b) take).
    pub window: Duration,
    /// Give up on the join spread after this long.
    pub join_limit: Duration,
    /// Give up on failure detection after this long.
    pub failure_limit: Duration,
}

impl ScaleOptions {
    /// LAN network and timing, a 5-minute window.
    pub fn lan() -> ScaleOptions {
        ScaleOptions {
            net: NetConfig::lan(),
            tweak: |_| {},
            window: Duration::from_secs(300),
            join_limit: Duration::from_secs(60),
            failure_limit: Duration::from_secs(180),
        }
    }
}

/// In (a copy of) `pool`, a [`converged_pool`] of `n` built with `opts`: (a) a new member
/// joins one random member; 10 s later (b) a random other member crashes; (c) false positives
/// counted from the join until the window ends. `seed` drives everything after the copy.
pub fn run_scale(pool: &Sim, seed: u64, opts: &ScaleOptions) -> ScaleRun {
    let tweak = opts.tweak;
    let n = pool.len();
    let mut sim = pool.clone();
    sim.reseed(seed);
    sim.set_net(opts.net);
    let mut pick = Rng::new(seed ^ 0x5ca1_ab1e);
    let t_start = sim.now();
    sim.clear_false_positives();
    let inc0: Vec<u32> = (0..n).map(|i| sim.swim(i).incarnation()).collect();

    // (a) join
    let mut cfg = lan_config(n);
    tweak(&mut cfg);
    let joiner = sim.add_node(cfg);
    let seed_node = pick.below(n as u64) as usize;
    sim.watch(joiner);
    let t0 = sim.elapsed();
    let now = sim.now();
    sim.input(joiner, Input::Join(vec![sim_addr(seed_node)], now));
    let limit = sim.now() + opts.join_limit;
    sim.run_until(limit, |s| (0..n).all(|i| s.seen()[i].alive.is_some()));
    let join = Spread::from_times(
        (0..n)
            .map(|i| sim.seen()[i].alive.map(|t| t - t0))
            .collect(),
    );
    sim.run_for(Duration::from_secs(10));

    // (b) crash
    let victim = loop {
        let v = pick.below(n as u64) as usize;
        if v != seed_node {
            break v;
        }
    };
    sim.watch(victim);
    sim.crash(victim);
    let t1 = sim.elapsed();
    let live: Vec<usize> = (0..=n).filter(|&i| i != victim).collect();
    let limit = sim.now() + opts.failure_limit;
    sim.run_until(limit, |s| live.iter().all(|&i| s.seen()[i].dead.is_some()));
    let since = |t: Option<Duration>| t.map(|t| t - t1);
    let first = |f: fn(&super::Seen) -> Option<Duration>| {
        live.iter().filter_map(|&i| f(&sim.seen()[i])).min()
    };
    let failure = Detection {
        first_suspect: since(first(|s| s.suspect)),
        first_dead: since(first(|s| s.dead)),
        all_dead: if live.iter().all(|&i| sim.seen()[i].dead.is_some()) {
            since(live.iter().filter_map(|&i| sim.seen()[i].dead).max())
        } else {
            None
        },
    };

    // (c) the rest of the window
    let end = t_start + opts.window;
    if sim.now() < end {
        sim.run_until(end, |_| false);
    }
    let distinct = |v: &[super::FalsePositive]| {
        v.iter()
            .map(|f| f.about)
            .collect::<std::collections::HashSet<_>>()
            .len()
    };
    let refutations = (0..n)
        .filter(|&i| i != victim)
        .map(|i| u64::from(sim.swim(i).incarnation() - inc0[i]))
        .sum::<u64>()
        + u64::from(sim.swim(joiner).incarnation() - 1);
    let false_positives = FalsePositives {
        window: sim.now() - t_start,
        suspicions: sim.false_suspects().len(),
        suspected: distinct(sim.false_suspects()),
        dead: sim.false_deads().len(),
        declared_dead: distinct(sim.false_deads()),
        refutations,
    };
    ScaleRun {
        n,
        seed,
        join,
        failure,
        false_positives,
        stats: sim.stats(),
    }
}

/// A mass join of `n` fresh members (see the module docs): the time from the first join until
/// every member lists all `n` alive, `None` if not within `limit`.
pub fn mass_join(
    n: usize,
    net: NetConfig,
    seed: u64,
    tweak: &dyn Fn(&mut SwimConfig),
    limit: Duration,
) -> (Option<Duration>, NetStats) {
    let mut sim = Sim::new(net, seed);
    let mut pick = Rng::new(seed ^ 0x0005_eed5);
    for i in 0..n {
        let mut c = lan_config(i);
        tweak(&mut c);
        sim.add_node(c);
    }
    sim.count_alive(true);
    let t0 = sim.elapsed();
    let give_up = sim.now() + limit;
    for i in 1..n {
        let seed_node = pick.below(i as u64) as usize;
        let now = sim.now();
        sim.input(i, Input::Join(vec![sim_addr(seed_node)], now));
        // Like the example, the next join starts when this one's exchange is done.
        let name = sim.name(seed_node).to_string();
        let until = sim.now() + Duration::from_secs(10);
        sim.run_until(until, |s| s.swim(i).state_of(&name).is_some());
    }
    let done = sim.run_until(give_up, |s| s.all_know_everyone());
    let took = done.then(|| sim.elapsed() - t0);
    (took, sim.stats())
}
