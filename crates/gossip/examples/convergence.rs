//! Convergence of an N-member pool with memberlist's LAN timing, in one process on
//! 127.0.0.x addresses: every member joins one random earlier member, and we time how long
//! until every member lists all N alive; then one member stops without leaving and we time
//! until every other member lists it failed. Run by `bench/gossip.sh`.
//!
//!     cargo run --release -p proconsul-gossip --example convergence -- [N]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proconsul_gossip::driver::{Pool, PoolOptions};
use proconsul_gossip::memberlist::SwimConfig;
use proconsul_gossip::serf::{MemberStatus, SerfConfig};
use proconsul_gossip::wire::WireConfig;
use rand::Rng;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let mut pools = Vec::new();
    for i in 0..n {
        let bind: SocketAddr = format!("127.0.1.{}:7946", i + 1).parse().unwrap();
        let mut tags = BTreeMap::new();
        tags.insert("role".to_string(), "node".to_string());
        let opts = PoolOptions {
            serf: SerfConfig::new(SwimConfig::lan(format!("n{i}"), bind), tags),
            bind,
            wire: WireConfig::default(),
            snapshot: None,
            rejoin_after_leave: false,
            pool: "lan",
            merge_check: None,
            keyring_file: None,
        };
        pools.push(Pool::start(opts, CancellationToken::new()).await.unwrap());
    }
    let t0 = Instant::now();
    for i in 1..n {
        let seed = rand::rng().random_range(0..i);
        let addr = pools[seed].local_addr().to_string();
        pools[i].join(&[addr], 0).await.unwrap();
    }
    let joined = t0.elapsed();
    let alive = |p: &Pool| {
        p.members()
            .iter()
            .filter(|m| m.status == MemberStatus::Alive)
            .count()
    };
    loop {
        if pools.iter().all(|p| alive(p) == n) {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "no convergence");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let converged = t0.elapsed();
    println!(
        "{n} members: joins issued in {:.2}s, every member lists all {n} alive after {:.2}s",
        joined.as_secs_f64(),
        converged.as_secs_f64()
    );
    let victim = pools.pop().unwrap();
    let name = victim.name().to_string();
    victim.shutdown().await;
    let t1 = Instant::now();
    loop {
        let done = pools.iter().all(|p| {
            p.members()
                .iter()
                .any(|m| m.name == name && m.status == MemberStatus::Failed)
        });
        if done {
            break;
        }
        assert!(
            t1.elapsed() < Duration::from_secs(120),
            "failure not detected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "one member stopped without leaving: all {} others list it failed after {:.2}s",
        n - 1,
        t1.elapsed().as_secs_f64()
    );
    for p in pools {
        p.shutdown().await;
    }
}
