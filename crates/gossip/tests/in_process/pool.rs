//! The tokio driver over real sockets on 127.0.0.x: join, failure detection, graceful
//! leave, user events, encryption (same key joins, wrong key is refused without any
//! membership change), the snapshot rejoin.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use proconsul_gossip::driver::{Pool, PoolOptions};
use proconsul_gossip::memberlist::SwimConfig;
use proconsul_gossip::serf::{MemberStatus, SerfConfig, SerfEvent};
use proconsul_gossip::wire::Keyring;
use proconsul_gossip::wire::WireConfig;
use tokio_util::sync::CancellationToken;

fn opts(name: &str, ip: &str, key: Option<&str>) -> PoolOptions {
    let bind: SocketAddr = format!("{ip}:0").parse().unwrap();
    let mut tags = BTreeMap::new();
    tags.insert("role".to_string(), "node".to_string());
    let mut swim = SwimConfig::lan(name, bind);
    // Faster than LAN so the test is quick; same algorithm.
    swim.probe_interval = Duration::from_millis(200);
    swim.probe_timeout = Duration::from_millis(100);
    swim.gossip_interval = Duration::from_millis(50);
    let wire = WireConfig {
        keyring: key.map(|k| Keyring::from_base64(k).unwrap()),
        ..WireConfig::default()
    };
    PoolOptions {
        serf: SerfConfig::new(swim, tags),
        bind,
        wire,
        snapshot: None,
        rejoin_after_leave: false,
        pool: "lan",
        merge_check: None,
        keyring_file: None,
    }
}

async fn start(name: &str, ip: &str, key: Option<&str>) -> Pool {
    Pool::start(opts(name, ip, key), CancellationToken::new())
        .await
        .expect("pool starts")
}

fn status(p: &Pool, name: &str) -> Option<MemberStatus> {
    p.members()
        .into_iter()
        .find(|m| m.name == name)
        .map(|m| m.status)
}

async fn wait(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + within;
    while !f() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_fail_leave_and_events() {
    let a = start("a", "127.0.0.71", None).await;
    let b = start("b", "127.0.0.72", None).await;
    let c = start("c", "127.0.0.73", None).await;
    let seed = vec![a.local_addr().to_string()];
    assert_eq!(b.join(&seed, 0).await.unwrap(), 1);
    assert_eq!(c.join(&seed, 0).await.unwrap(), 1);
    for p in [&a, &b, &c] {
        wait("all alive", Duration::from_secs(5), || {
            ["a", "b", "c"]
                .iter()
                .all(|n| status(p, n) == Some(MemberStatus::Alive))
        })
        .await;
    }
    assert_eq!(
        a.members()
            .iter()
            .find(|m| m.name == "b")
            .unwrap()
            .tags
            .get("role")
            .map(String::as_str),
        Some("node")
    );

    // A user event fired on c reaches a (once).
    let mut ev = a.subscribe();
    c.user_event("deploy".into(), b"v42".to_vec(), false)
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(SerfEvent::User { name, payload, .. }) = ev.recv().await {
                return (name, payload);
            }
        }
    })
    .await
    .expect("event arrives");
    assert_eq!(got, ("deploy".to_string(), b"v42".to_vec()));

    // c leaves gracefully: left, not failed.
    c.leave().await;
    wait("c left", Duration::from_secs(5), || {
        status(&a, "c") == Some(MemberStatus::Left)
    })
    .await;

    // b stops without leaving: failed.
    b.shutdown().await;
    wait("b failed", Duration::from_secs(10), || {
        status(&a, "b") == Some(MemberStatus::Failed)
    })
    .await;
    // force-leave turns failed into left.
    assert!(a.force_leave("b", false).await.unwrap());
    assert_eq!(status(&a, "b"), Some(MemberStatus::Left));
    assert!(!a.force_leave("nobody", false).await.unwrap());
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_same_key_joins_wrong_key_is_refused() {
    const K1: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=";
    const K2: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=";
    let a = start("a", "127.0.0.74", Some(K1)).await;
    let b = start("b", "127.0.0.75", Some(K1)).await;
    let x = start("x", "127.0.0.76", Some(K2)).await;
    let p = start("p", "127.0.0.77", None).await;
    let seed = vec![a.local_addr().to_string()];
    b.join(&seed, 0).await.unwrap();
    wait("a sees b", Duration::from_secs(5), || {
        status(&a, "b") == Some(MemberStatus::Alive)
    })
    .await;
    assert!(x.join(&seed, 0).await.is_err(), "wrong key joined");
    assert!(p.join(&seed, 0).await.is_err(), "plaintext joined");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status(&a, "x"), None);
    assert_eq!(status(&a, "p"), None);
    assert_eq!(a.members().len(), 2);
    for q in [a, b, x, p] {
        q.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_rejoins_from_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let a = start("a", "127.0.0.78", None).await;
    let mut o = opts("b", "127.0.0.79", None);
    o.snapshot = Some(dir.path().join("serf/local.snapshot"));
    let b = Pool::start(o.clone(), CancellationToken::new())
        .await
        .unwrap();
    b.join(&[a.local_addr().to_string()], 0).await.unwrap();
    wait("a sees b", Duration::from_secs(5), || {
        status(&b, "a") == Some(MemberStatus::Alive)
    })
    .await;
    b.shutdown().await;
    // Restarted without any join: the snapshot brings it back.
    let b = Pool::start(o, CancellationToken::new()).await.unwrap();
    wait("b rejoined", Duration::from_secs(5), || {
        status(&b, "a") == Some(MemberStatus::Alive)
    })
    .await;
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_packets_change_nothing() {
    use proconsul_gossip::wire::messages::{Alive, Message};
    use rand::{Rng, SeedableRng};
    const K1: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=";
    const K2: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=";
    let a = start("a", "127.0.0.90", Some(K1)).await;
    let before = a.members();
    let sock = tokio::net::UdpSocket::bind("127.0.0.91:0").await.unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    // A valid alive message for an intruder, encrypted with the wrong key, then mangled.
    let alive = Message::Alive(Alive {
        incarnation: 1,
        node: "intruder".into(),
        addr: vec![127, 0, 0, 91],
        port: 7946,
        meta: vec![],
        vsn: vec![1, 5, 2, 2, 5, 4],
    })
    .encode_packet()
    .unwrap();
    let wrong = WireConfig {
        keyring: Some(Keyring::from_base64(K2).unwrap()),
        ..WireConfig::default()
    };
    let plain = WireConfig::default();
    let enc = wrong
        .encode_packet(&alive, Default::default(), [3; 12])
        .unwrap();
    let mut packets = vec![alive.clone(), enc.clone(), vec![], vec![0xF4, 200]];
    for _ in 0..2000 {
        let n = rng.random_range(0..1500);
        let mut p: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        if rng.random_bool(0.3) && !p.is_empty() {
            p[0] = rng.random_range(0..14); // plausible message type
        }
        packets.push(p);
    }
    for cut in 0..enc.len() {
        packets.push(enc[..cut].to_vec());
    }
    for cut in 0..alive.len() {
        packets.push(
            plain
                .encode_packet(&alive[..cut], Default::default(), [0; 12])
                .unwrap(),
        );
    }
    for p in &packets {
        sock.send_to(p, a.local_addr()).await.unwrap();
    }
    // Oversize stream: an announced 4 GiB encrypted message is refused, not buffered.
    let mut s = tokio::net::TcpStream::connect(a.local_addr())
        .await
        .unwrap();
    use tokio::io::AsyncWriteExt;
    s.write_all(&[10, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(a.members(), before);
    // Still serving: a good peer joins.
    let b = start("b", "127.0.0.92", Some(K1)).await;
    b.join(&[a.local_addr().to_string()], 0).await.unwrap();
    wait("a sees b", Duration::from_secs(5), || {
        status(&a, "b") == Some(MemberStatus::Alive)
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyring_rotation_across_the_pool() {
    use proconsul_gossip::driver::KeyOp;
    const K1: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=";
    const K2: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=";
    let dir = tempfile::tempdir().unwrap();
    let mut pools = Vec::new();
    for (i, ip) in ["127.0.0.93", "127.0.0.94", "127.0.0.95"]
        .iter()
        .enumerate()
    {
        let mut o = opts(&format!("k{i}"), ip, Some(K1));
        o.keyring_file = Some(dir.path().join(format!("k{i}.keyring")));
        pools.push(Pool::start(o, CancellationToken::new()).await.unwrap());
    }
    let seed = vec![pools[0].local_addr().to_string()];
    for p in &pools[1..] {
        p.join(&seed, 0).await.unwrap();
    }
    wait("three alive", Duration::from_secs(5), || {
        pools.iter().all(|p| {
            p.members()
                .iter()
                .filter(|m| m.status == MemberStatus::Alive)
                .count()
                == 3
        })
    })
    .await;
    let r = pools[1].key_operation(KeyOp::Install, K2).await.unwrap();
    assert_eq!((r.num_nodes, r.num_resp, r.num_err), (3, 3, 0), "{r:?}");
    let r = pools[2].key_operation(KeyOp::List, "").await.unwrap();
    assert_eq!(r.keys.get(K1), Some(&3), "{r:?}");
    assert_eq!(r.keys.get(K2), Some(&3), "{r:?}");
    assert_eq!(r.primary_keys.get(K1), Some(&3), "{r:?}");
    let r = pools[0].key_operation(KeyOp::Use, K2).await.unwrap();
    assert_eq!(r.num_err, 0, "{r:?}");
    // Removing the primary is refused by every member, with the reason.
    let r = pools[0].key_operation(KeyOp::Remove, K2).await.unwrap();
    assert_eq!(r.num_err, 3, "{r:?}");
    assert!(r.messages.values().all(|m| m.contains("primary")), "{r:?}");
    let r = pools[0].key_operation(KeyOp::Remove, K1).await.unwrap();
    assert_eq!(r.num_err, 0, "{r:?}");
    let saved = std::fs::read_to_string(dir.path().join("k2.keyring")).unwrap();
    assert_eq!(saved, format!("[\"{K2}\"]"));
    // Only the new key now: a member with the old one cannot join.
    let old = start("old", "127.0.0.96", Some(K1)).await;
    assert!(old.join(&seed, 0).await.is_err());
    let new = start("new", "127.0.0.97", Some(K2)).await;
    new.join(&seed, 0).await.unwrap();
    assert!(pools[0]
        .key_operation(KeyOp::Install, "not-base64")
        .await
        .is_err());
    for p in pools.into_iter().chain([old, new]) {
        p.shutdown().await;
    }
}
