//! Scale of gossip, measured the way memberlist's own model measures it (issue #20): in a
//! converged pool of N members on the in-memory simulator (`proconsul_gossip::sim`, LAN timing,
//! 0.5–5 ms one-way latency, 1 % UDP loss), (a) the spread of one member's join, (b) the
//! detection of one member's crash, (c) live members wrongly suspected or declared dead over the
//! window, each next to memberlist's prediction. Run by `bench/gossip-scale.sh`.
//!
//!     cargo run --release -p proconsul-gossip --features sim --example gossip_scale -- \
//!         [--seeds K] [--loss P] [--no-tcp-ping] [--window SECS] [--mass-join] [N ...]

use std::time::{Duration, Instant};

use proconsul_gossip::memberlist::SwimConfig;
use proconsul_gossip::sim::scenarios::{
    converged_pool, mass_join, run_scale, Prediction, ScaleOptions, ScaleRun, Spread,
};
use proconsul_gossip::sim::NetConfig;

struct Args {
    ns: Vec<usize>,
    seeds: u64,
    net: NetConfig,
    window: Duration,
    mass_join: bool,
}

fn args() -> Args {
    let mut a = Args {
        ns: Vec::new(),
        seeds: 3,
        net: NetConfig::lan(),
        window: Duration::from_secs(300),
        mass_join: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        let mut val = || it.next().expect("a value after the flag");
        match x.as_str() {
            "--seeds" => a.seeds = val().parse().expect("--seeds K"),
            "--loss" => a.net.loss = val().parse().expect("--loss P (0..1)"),
            "--no-tcp-ping" => a.net.tcp_ping = false,
            "--window" => a.window = Duration::from_secs(val().parse().expect("--window SECS")),
            "--mass-join" => a.mass_join = true,
            n => a.ns.push(n.parse().expect("N, a pool size")),
        }
    }
    if a.ns.is_empty() {
        a.ns = vec![50, 200, 1000];
    }
    a
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("never".into(), |d| format!("{:.2}", d.as_secs_f64()))
}

/// "median [min–max]" over the seeds, in seconds.
fn spread_of(v: &[Option<Duration>]) -> String {
    let mut got: Vec<Duration> = v.iter().flatten().copied().collect();
    got.sort();
    let missing = v.len() - got.len();
    let mut s = match got.len() {
        0 => "never".to_string(),
        1 => secs(got.first().copied()),
        _ => format!(
            "{} [{}–{}]",
            secs(Some(got[got.len() / 2])),
            secs(got.first().copied()),
            secs(got.last().copied())
        ),
    };
    if missing > 0 {
        s.push_str(&format!(" ({missing} never)"));
    }
    s
}

fn p(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

fn main() {
    let a = args();
    let cfg = SwimConfig::lan("x", "10.0.0.1:7946".parse().unwrap());
    println!(
        "memberlist LAN timing: probe {:?}/{:?}, gossip {:?} to {}, suspicion x{} (max x{}), \
         retransmit x{}, push/pull {:?}",
        cfg.probe_interval,
        cfg.probe_timeout,
        cfg.gossip_interval,
        cfg.gossip_nodes,
        cfg.suspicion_mult,
        cfg.suspicion_max_timeout_mult,
        cfg.retransmit_mult,
        cfg.push_pull_interval
    );
    println!(
        "network: one-way latency {:?}–{:?}, UDP loss {:.1} %, TCP fallback ping {}; {} seed(s) \
         per N; figures are median [min–max] over seeds, in seconds",
        a.net.latency.0,
        a.net.latency.1,
        a.net.loss * 100.0,
        if a.net.tcp_ping { "on" } else { "off" },
        a.seeds
    );
    if a.mass_join {
        println!("\nmass join: N fresh members join one after another, each through a random earlier one; until every member lists all N alive");
        println!("{:>6} | {:>24} | wall", "N", "converged after (s)");
        for &n in &a.ns {
            let t = Instant::now();
            let took: Vec<Option<Duration>> = (1..=a.seeds)
                .map(|seed| mass_join(n, a.net, seed, &|_| {}, Duration::from_secs(120)).0)
                .collect();
            println!(
                "{n:>6} | {:>24} | {:.1}s",
                spread_of(&took),
                t.elapsed().as_secs_f64()
            );
        }
        return;
    }
    let opts = ScaleOptions {
        net: a.net,
        window: a.window,
        ..ScaleOptions::lan()
    };
    let mut runs: Vec<(usize, Vec<ScaleRun>, Duration)> = Vec::new();
    for &n in &a.ns {
        let t = Instant::now();
        // One converged pool per N (the costly part: every member's broadcasts about all the
        // others must run out first), each seed continuing its own copy.
        let pool = converged_pool(n, opts.net, 0, &opts.tweak);
        let rs = (1..=a.seeds)
            .map(|seed| run_scale(&pool, seed, &opts))
            .collect();
        runs.push((n, rs, t.elapsed()));
    }

    println!("\n(a) join spread: from the join until 50 % / 99 % / all of the N members know the joiner alive");
    println!(
        "{:>6} | {:>22} {:>6} | {:>22} {:>6} | {:>22} {:>6} {:>8}",
        "N", "50 %", "model", "99 %", "model", "all (= 99.99 %)", "model", "99.99 %"
    );
    for (n, rs, _) in &runs {
        let pr = Prediction::new(*n, &cfg, a.net.loss);
        let col = |f: fn(&Spread) -> Option<Duration>| {
            spread_of(&rs.iter().map(|r| f(&r.join)).collect::<Vec<_>>())
        };
        println!(
            "{n:>6} | {:>22} {:>6} | {:>22} {:>6} | {:>22} {:>6} {:>8}",
            col(|s| s.p50),
            p(pr.spread_50),
            col(|s| s.p99),
            p(pr.spread_99),
            col(|s| s.all),
            p(pr.spread_all),
            p(pr.spread_9999)
        );
    }

    println!("\n(b) failure detection: from the crash until the first suspicion, the first dead declaration, every live member has it dead");
    println!(
        "{:>6} | {:>22} {:>6} | {:>22} {:>13} | {:>22} {:>6} | {:>13}",
        "N",
        "first suspect",
        "model",
        "first dead",
        "susp. min",
        "all dead",
        "model",
        "Lifeguard max"
    );
    for (n, rs, _) in &runs {
        let pr = Prediction::new(*n, &cfg, a.net.loss);
        let col =
            |f: fn(&ScaleRun) -> Option<Duration>| spread_of(&rs.iter().map(f).collect::<Vec<_>>());
        println!(
            "{n:>6} | {:>22} {:>6} | {:>22} {:>13} | {:>22} {:>6} | {:>13}",
            col(|r| r.failure.first_suspect),
            p(pr.first_suspect),
            col(|r| r.failure.first_dead),
            format!("+{}", p(pr.suspicion_min)),
            col(|r| r.failure.all_dead),
            p(pr.all_dead),
            format!("+{}", p(pr.suspicion_max)),
        );
    }

    println!(
        "\n(c) false positives over {:?} from the join, live members only (summed over seeds)",
        a.window
    );
    println!(
        "{:>6} | {:>11} | {:>17} | {:>13} | {:>17} | {:>11} | {:>12} {:>9} | wall",
        "N",
        "accusations",
        "members suspected",
        "dead events",
        "members declared",
        "refutations",
        "UDP packets",
        "lost"
    );
    for (n, rs, wall) in &runs {
        let sum = |f: fn(&ScaleRun) -> u64| rs.iter().map(f).sum::<u64>();
        println!(
            "{n:>6} | {:>11} | {:>17} | {:>13} | {:>17} | {:>11} | {:>12} {:>9} | {:.1}s",
            sum(|r| r.false_positives.suspicions as u64),
            sum(|r| r.false_positives.suspected as u64),
            sum(|r| r.false_positives.dead as u64),
            sum(|r| r.false_positives.declared_dead as u64),
            sum(|r| r.false_positives.refutations),
            sum(|r| r.stats.udp_sent),
            sum(|r| r.stats.udp_lost),
            wall.as_secs_f64()
        );
        let over: u64 = sum(|r| r.stats.over_budget);
        if over > 0 {
            println!("       !! {over} packets over the UDP budget");
        }
    }
}
