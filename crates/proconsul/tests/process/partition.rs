//! A network partition between real server processes, built with `ip netns`
//! ([`common::netns`]: three namespaces, one server each, on a bridge in a fourth).
//!
//! The scenario: elect a leader, write; cut the leader's cable (its veth in the hub goes down);
//! the old leader must stop acting as leader (no known leader, `?consistent` reads and writes
//! refused, never a 200 with stale data) while the other two elect a new leader and keep taking
//! writes; after healing, the old leader follows the new one and every acknowledged write is
//! readable everywhere.
//!
//! Needs root and `ip` (iproute2); without them it prints `skipping: ...` and passes. Every
//! namespace (and with it every veth and the bridge) is deleted and every agent killed when the
//! test ends, panic or not.

use crate::common;

use std::time::{Duration, Instant};

use common::netns::{addr, http, leader, server, skip_reason, Net};
use common::{wait_for, Proc};

fn put(ns: &str, key: &str, value: &str) -> bool {
    http(ns, "PUT", &format!("/v1/kv/{key}"), value)
        .is_some_and(|r| r.status == 200 && r.text().trim() == "true")
}

/// Write until acknowledged (a PUT is idempotent): retried through an election for up to 20 s.
fn put_acked(ns: &str, key: &str, value: &str) {
    wait_for(
        &format!("write {key} acknowledged"),
        Duration::from_secs(20),
        || put(ns, key, value),
    );
}

#[test]
fn partitioned_leader_steps_down_and_rejoins_without_losing_writes() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let net = match Net::create("part", 3) {
        Ok(net) => net,
        Err(e) => {
            eprintln!("skipping: cannot build the test network: {e}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    // Declared after `net`, so the agents die before their namespaces are deleted.
    let _servers: Vec<Proc> = (0..3).map(|i| server(&net, dir.path(), i)).collect();
    let ns = |i: usize| net.nodes[i].as_str();
    let started = Instant::now();

    wait_for(
        "one leader known everywhere",
        Duration::from_secs(30),
        || {
            let l: Vec<Option<String>> = (0..3).map(|i| leader(ns(i))).collect();
            l[0].as_ref().is_some_and(|x| !x.is_empty()) && l.iter().all(|x| x == &l[0])
        },
    );
    wait_for("three voters", Duration::from_secs(10), || {
        http(ns(0), "GET", "/v1/status/peers", "")
            .is_some_and(|r| r.text().matches(":8300").count() == 3)
    });
    let mut acked: Vec<(String, String)> = Vec::new();
    for i in 0..20 {
        let (k, v) = (format!("before/{i}"), format!("b{i}"));
        put_acked(ns(i % 3), &k, &v);
        acked.push((k, v));
    }
    let old_leader = leader(ns(0)).unwrap();
    let li = (0..3)
        .find(|i| old_leader == format!("{}:8300", addr(*i)))
        .unwrap_or_else(|| panic!("leader {old_leader} is none of ours"));
    let majority: Vec<usize> = (0..3).filter(|i| *i != li).collect();
    eprintln!(
        "leader s{li} ({old_leader}) after {:.1}s; cutting it off",
        started.elapsed().as_secs_f64()
    );

    net.cut(li, true);
    let cut_at = Instant::now();
    std::thread::scope(|s| {
        // The minority: the old leader stops acting as leader.
        let minority = s.spawn(|| {
            let old = ns(li);
            wait_for(
                "the old leader to know no leader",
                Duration::from_secs(10),
                || leader(old).as_deref() == Some(""),
            );
            eprintln!(
                "old leader reports no leader {:.1}s after the cut",
                cut_at.elapsed().as_secs_f64()
            );
            let r = http(old, "GET", "/v1/kv/before/0?stale", "").unwrap();
            assert_eq!(
                (r.status, r.text().contains("\"Key\":\"before/0\"")),
                (200, true),
                "{r:?}"
            );
            assert_eq!(r.header("X-Consul-KnownLeader"), Some("false"), "{r:?}");
            assert_ne!(r.header("X-Consul-LastContact"), Some("0"), "{r:?}");
            // Never a 200 for a consistent or default read or a write: each waits Consul's
            // 7 s rpc_hold_timeout for a leader, then fails (asked side by side).
            std::thread::scope(|s| {
                for (method, path) in [
                    ("GET", "/v1/kv/before/0?consistent"),
                    ("GET", "/v1/kv/before/0"),
                    ("PUT", "/v1/kv/minority"),
                ] {
                    s.spawn(move || {
                        let r = http(old, method, path, "x").unwrap();
                        assert_eq!(
                            (r.status, r.text().trim()),
                            (500, "No cluster leader"),
                            "{method} {path}: {r:?}"
                        );
                    });
                }
            });
        });
        // The majority elects a new leader and keeps taking writes.
        let (a, b) = (ns(majority[0]), ns(majority[1]));
        wait_for(
            "a new leader on the majority side",
            Duration::from_secs(15),
            || {
                let (la, lb) = (leader(a), leader(b));
                la.as_ref()
                    .is_some_and(|l| !l.is_empty() && *l != old_leader)
                    && la == lb
            },
        );
        eprintln!(
            "majority elected {} {:.1}s after the cut",
            leader(a).unwrap(),
            cut_at.elapsed().as_secs_f64()
        );
        for i in 0..20 {
            let (k, v) = (format!("during/{i}"), format!("d{i}"));
            put_acked(ns(majority[i % 2]), &k, &v);
            acked.push((k, v));
        }
        let r = http(a, "GET", "/v1/kv/during/19?consistent", "").unwrap();
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.header("X-Consul-KnownLeader"), Some("true"), "{r:?}");
        minority.join().unwrap();
    });
    assert_eq!(leader(ns(li)).as_deref(), Some(""), "still cut off");

    net.cut(li, false);
    let healed_at = Instant::now();
    let new_leader = leader(ns(majority[0])).unwrap();
    wait_for(
        "the old leader to follow the new one",
        Duration::from_secs(20),
        || leader(ns(li)).as_ref() == Some(&new_leader),
    );
    wait_for(
        "the old leader to catch up",
        Duration::from_secs(20),
        || {
            http(ns(li), "GET", "/v1/kv/during/19?stale&raw", "")
                .is_some_and(|r| r.status == 200 && r.text() == "d19")
        },
    );
    eprintln!(
        "old leader follows {new_leader} and caught up {:.1}s after healing",
        healed_at.elapsed().as_secs_f64()
    );
    let r = http(ns(li), "GET", "/v1/kv/during/0?stale", "").unwrap();
    assert_eq!(r.header("X-Consul-KnownLeader"), Some("true"), "{r:?}");
    // No acknowledged write is lost: each reads back on the old leader (its own state) and
    // through it from the leader.
    for (k, v) in &acked {
        for mode in ["stale", "consistent"] {
            let r = http(ns(li), "GET", &format!("/v1/kv/{k}?raw&{mode}"), "");
            assert!(
                r.as_ref()
                    .is_some_and(|r| r.status == 200 && r.text() == *v),
                "{k} ({mode}): {r:?}"
            );
        }
    }
    // The write refused on the minority side never happened.
    let r = http(ns(li), "GET", "/v1/kv/minority?consistent", "").unwrap();
    assert_eq!(r.status, 404, "{r:?}");
    // The cluster as a whole takes writes again, through the old leader too.
    put_acked(ns(li), "after", "a");
    eprintln!("total {:.1}s", started.elapsed().as_secs_f64());
}
