//! Interoperability with HashiCorp's `serf` binary (Debian package `serf`, installed by
//! `.ci/run`): a mixed pool on 127.0.0.x where each side lists the other, detects the other's
//! kill -9 as failed, sees a graceful leave as left, and receives the other's user events;
//! with `-encrypt` the same key interoperates and a wrong key changes nothing.
//!
//! Both sides run memberlist's LAN timing, so the failure-detection times printed here
//! compare like with like (`cargo test -p proconsul-gossip --test interop -- --nocapture`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proconsul_gossip::driver::{Pool, PoolOptions};
use proconsul_gossip::memberlist::SwimConfig;
use proconsul_gossip::serf::{MemberStatus, SerfConfig, SerfEvent};
use proconsul_gossip::wire::Keyring;
use proconsul_gossip::wire::WireConfig;
use tokio_util::sync::CancellationToken;

const KEY: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=";
const OTHER_KEY: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=";

struct SerfAgent {
    child: Child,
    ip: &'static str,
}

impl Drop for SerfAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SerfAgent {
    fn start(name: &str, ip: &'static str, extra: &[&str], dir: &Path) -> SerfAgent {
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let mut cmd = Command::new("serf");
        cmd.args([
            "agent",
            &format!("-node={name}"),
            &format!("-bind={ip}:7946"),
            &format!("-rpc-addr={ip}:7373"),
            "-tag",
            "role=node",
        ])
        .args(extra)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null());
        let child = cmd
            .spawn()
            .expect("the `serf` binary (apt-get install -y serf)");
        let a = SerfAgent { child, ip };
        wait_blocking("serf RPC up", Duration::from_secs(10), || {
            a.members().is_some()
        });
        a
    }

    fn addr(&self) -> String {
        format!("{}:7946", self.ip)
    }

    fn rpc(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("serf")
            .arg(args[0])
            .arg(format!("-rpc-addr={}:7373", self.ip))
            .args(&args[1..])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// name → status as `serf members` reports it.
    fn members(&self) -> Option<BTreeMap<String, String>> {
        let out = self.rpc(&["members"])?;
        let mut m = BTreeMap::new();
        for line in out.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() >= 3 {
                m.insert(f[0].to_string(), f[2].to_string());
            }
        }
        Some(m)
    }

    fn status(&self, name: &str) -> Option<String> {
        self.members()?.get(name).cloned()
    }

    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_blocking(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn wait(what: &str, within: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    let end = start + within;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

async fn ours(name: &str, ip: &str, key: Option<&str>) -> Pool {
    let bind: SocketAddr = format!("{ip}:7946").parse().unwrap();
    let mut tags = BTreeMap::new();
    tags.insert("role".to_string(), "node".to_string());
    let wire = WireConfig {
        keyring: key.map(|k| Keyring::from_base64(k).unwrap()),
        ..WireConfig::default()
    };
    let opts = PoolOptions {
        serf: SerfConfig::new(SwimConfig::lan(name, bind), tags),
        bind,
        wire,
        snapshot: None,
        rejoin_after_leave: false,
        pool: "lan",
        merge_check: None,
        keyring_file: None,
    };
    Pool::start(opts, CancellationToken::new()).await.unwrap()
}

fn status(p: &Pool, name: &str) -> Option<MemberStatus> {
    p.members()
        .into_iter()
        .find(|m| m.name == name)
        .map(|m| m.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_pool_with_hashicorp_serf() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.txt");
    let handler = format!(
        "user=echo \"$SERF_USER_EVENT $(cat)\" >> {}",
        events.display()
    );
    let s1 = SerfAgent::start(
        "s1",
        "127.0.0.81",
        &["-event-handler", &handler],
        dir.path(),
    );
    let p1 = ours("p1", "127.0.0.82", None).await;
    p1.join(&[s1.addr()], 0).await.expect("we join serf");
    wait("p1 sees s1", Duration::from_secs(5), || {
        status(&p1, "s1") == Some(MemberStatus::Alive)
    })
    .await;
    wait_blocking("s1 sees p1", Duration::from_secs(5), || {
        s1.status("p1").as_deref() == Some("alive")
    });

    // A serf agent joins through us.
    let s2 = SerfAgent::start(
        "s2",
        "127.0.0.83",
        &["-join", &p1.local_addr().to_string()],
        dir.path(),
    );
    wait("p1 sees s2", Duration::from_secs(5), || {
        status(&p1, "s2") == Some(MemberStatus::Alive)
    })
    .await;
    wait_blocking("s1 sees s2", Duration::from_secs(5), || {
        s1.status("s2").as_deref() == Some("alive")
    });
    let p2 = ours("p2", "127.0.0.84", None).await;
    p2.join(&[p1.local_addr().to_string()], 0).await.unwrap();
    wait_blocking("serf sees p2", Duration::from_secs(5), || {
        s1.status("p2").as_deref() == Some("alive")
    });

    // User events both ways.
    p1.user_event("deploy".into(), b"v42".to_vec(), false)
        .await
        .unwrap();
    wait_blocking("serf ran the handler", Duration::from_secs(5), || {
        std::fs::read_to_string(&events).is_ok_and(|t| t.contains("deploy v42"))
    });
    let mut sub = p2.subscribe();
    s1.rpc(&["event", "hello", "world"]).expect("serf event");
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(SerfEvent::User { name, payload, .. }) = sub.recv().await {
                if name == "hello" {
                    return payload;
                }
            }
        }
    })
    .await
    .expect("serf's event reaches us");
    assert_eq!(got, b"world");

    // kill -9 of a serf agent: we detect it (LAN profile).
    s2.kill9();
    let ours_took = wait("p1 marks s2 failed", Duration::from_secs(20), || {
        status(&p1, "s2") == Some(MemberStatus::Failed)
    })
    .await;
    // Our agent stopping without a leave: serf detects it.
    p2.shutdown().await;
    let t = Instant::now();
    wait_blocking("s1 marks p2 failed", Duration::from_secs(20), || {
        s1.status("p2").as_deref() == Some("failed")
    });
    let serf_took = t.elapsed();
    eprintln!(
        "failure detection (3 members, LAN): proconsul {:.1}s, serf {:.1}s",
        ours_took.as_secs_f64(),
        serf_took.as_secs_f64()
    );

    // Graceful leaves both ways.
    let s3 = SerfAgent::start("s3", "127.0.0.85", &["-join", &s1.addr()], dir.path());
    wait("p1 sees s3", Duration::from_secs(5), || {
        status(&p1, "s3") == Some(MemberStatus::Alive)
    })
    .await;
    s3.rpc(&["leave"]).expect("serf leave");
    wait("p1 sees s3 left", Duration::from_secs(10), || {
        status(&p1, "s3") == Some(MemberStatus::Left)
    })
    .await;
    p1.leave().await;
    wait_blocking("s1 sees p1 left", Duration::from_secs(10), || {
        s1.status("p1").as_deref() == Some("left")
    });
    drop(s3);
    drop(s1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_pool_with_hashicorp_serf() {
    let dir = tempfile::tempdir().unwrap();
    let s = SerfAgent::start(
        "e1",
        "127.0.0.86",
        &[&format!("-encrypt={KEY}")],
        dir.path(),
    );
    let good = ours("g1", "127.0.0.87", Some(KEY)).await;
    good.join(&[s.addr()], 0).await.expect("same key joins");
    wait_blocking("serf sees g1", Duration::from_secs(5), || {
        s.status("g1").as_deref() == Some("alive")
    });
    let bad = ours("b1", "127.0.0.88", Some(OTHER_KEY)).await;
    assert!(bad.join(&[s.addr()], 0).await.is_err(), "wrong key joined");
    let plain = ours("n1", "127.0.0.89", None).await;
    assert!(
        plain.join(&[s.addr()], 0).await.is_err(),
        "plaintext joined"
    );
    std::thread::sleep(Duration::from_secs(1));
    let m = s.members().unwrap();
    assert_eq!(m.len(), 2, "membership changed: {m:?}");
    assert_eq!(bad.members().len(), 1);

    // Key rotation from our side reaches HashiCorp's serf, and serf answers our list query.
    use proconsul_gossip::driver::KeyOp;
    let r = good.key_operation(KeyOp::Install, OTHER_KEY).await.unwrap();
    assert_eq!((r.num_nodes, r.num_resp, r.num_err), (2, 2, 0), "{r:?}");
    let listed = s.rpc(&["keys", "-list"]).expect("serf keys -list");
    assert!(listed.contains(OTHER_KEY), "{listed}");
    let r = good.key_operation(KeyOp::List, "").await.unwrap();
    assert_eq!(r.keys.get(OTHER_KEY), Some(&2), "{r:?}");
    assert_eq!(r.keys.get(KEY), Some(&2), "{r:?}");
    for p in [good, bad, plain] {
        p.shutdown().await;
    }
}

/// Network coordinates both ways: serf's acks carry its coordinate to us and ours carry ours
/// to serf, so after a few probes each side has moved off the origin, knows the other's
/// coordinate, and `serf rtt` can estimate the RTT to our node from what we sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinates_with_hashicorp_serf() {
    let dir = tempfile::tempdir().unwrap();
    let s = SerfAgent::start("cs1", "127.0.5.81", &[], dir.path());
    let p = ours("cp1", "127.0.5.82", None).await;
    p.join(&[s.addr()], 0).await.expect("we join serf");

    let moved = |c: &proconsul_gossip::serf::coordinate::Coordinate| {
        c.vec.len() == 8 && c.vec.iter().any(|x| *x != 0.0) && c.error < 1.5
    };
    wait(
        "we cache serf's coordinate and move our own",
        Duration::from_secs(20),
        || {
            p.cached_coordinate("cs1").as_ref().is_some_and(moved)
                && p.coordinate().as_ref().is_some_and(moved)
        },
    )
    .await;
    let theirs = p.cached_coordinate("cs1").unwrap();
    let mine = p.coordinate().unwrap();
    assert_eq!(p.cached_coordinate("cp1"), Some(mine.clone()));
    let est = mine.distance_to(&theirs).unwrap();
    assert!(
        est > Duration::ZERO && est < Duration::from_millis(50),
        "a loopback RTT estimate: {est:?}"
    );

    // serf learns ours from our acks: `serf rtt` between the two works from its side.
    let mut out = String::new();
    wait_blocking("serf rtt cp1 cs1", Duration::from_secs(20), || {
        out = s.rpc(&["rtt", "cp1", "cs1"]).unwrap_or_default();
        out.contains("rtt:")
    });
    eprintln!(
        "serf: {} | proconsul: {:.3} ms",
        out.trim(),
        est.as_secs_f64() * 1e3
    );
    assert!(out.contains("cp1 <-> cs1"), "{out}");
    let ms: f64 = out
        .split("rtt:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("an RTT in {out:?}"));
    assert!(ms > 0.0 && ms < 50.0, "{out}");
    p.shutdown().await;
    drop(s);
}
