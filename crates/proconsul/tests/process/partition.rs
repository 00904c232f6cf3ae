//! A network partition between real server processes, built with `ip netns`.
//!
//! Three network namespaces, one server each, plug into a bridge that lives in a fourth
//! namespace (the hub); nothing is added to the test's own namespace, and the cluster's
//! addresses (10.231.0.0/24) exist only inside these namespaces, so no packet can leave the
//! machine. Each agent serves HTTP on 127.0.0.1 inside its namespace; the test reaches it from
//! a thread that has joined that namespace (`setns`), so it can still talk to a server whose
//! cluster link is cut.
//!
//! The scenario: elect a leader, write; cut the leader's cable (its veth in the hub goes down);
//! the old leader must stop acting as leader (no known leader, `?consistent` reads and writes
//! refused, never a 200 with stale data) while the other two elect a new leader and keep taking
//! writes; after healing, the old leader follows the new one and every acknowledged write is
//! readable everywhere.
//!
//! Needs root and `ip` (iproute2); without them it prints `skipping: ...` and passes. Every
//! namespace (and with it every veth and the bridge) is deleted and every agent killed when the
//! test ends, panic or not. Names carry the test's pid so parallel runs do not clash.

use crate::common;

use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{wait_for, Proc, BIN};
use proconsul_testkit::{request_blocking, Response};

const SUBNET: &str = "10.231.0";

/// The namespaces and links of the test network. Dropping it deletes them all.
struct Net {
    hub: String,
    nodes: Vec<String>,
    created: Vec<String>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Net {
    /// `n` namespaces on one bridge; node `i` gets `10.231.0.(11+i)/24` on its `eth0`.
    fn create(n: usize) -> Result<Net, String> {
        let pid = std::process::id();
        let mut net = Net {
            hub: format!("pcpart{pid}hub"),
            nodes: (0..n).map(|i| format!("pcpart{pid}n{i}")).collect(),
            created: Vec::new(),
        };
        for ns in std::iter::once(net.hub.clone()).chain(net.nodes.clone()) {
            ip(&["netns", "add", &ns])?;
            net.created.push(ns.clone());
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        let hub = net.hub.clone();
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for (i, ns) in net.nodes.iter().enumerate() {
            let port = format!("v{i}");
            ip(&[
                "-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                ns,
            ])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &port, "up"])?;
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{}/24", addr(i)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", ns, "link", "set", "eth0", "up"])?;
        }
        Ok(net)
    }

    /// Cut (or restore) node `i`'s cable: its port on the bridge goes down (or up).
    fn cut(&self, i: usize, cut: bool) {
        let state = if cut { "down" } else { "up" };
        ip(&["-n", &self.hub, "link", "set", &format!("v{i}"), state]).unwrap();
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.created.drain(..) {
            if let Err(e) = ip(&["netns", "del", &ns]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

fn addr(i: usize) -> String {
    format!("{SUBNET}.{}", 11 + i)
}

/// Run `f` on a thread that has joined network namespace `ns`.
fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::scope(|s| {
        s.spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: setns only changes this (short-lived, scoped) thread's network namespace;
            // the file descriptor is valid for the call.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap()
    })
}

/// One HTTP request to the agent at 127.0.0.1:8500 inside `ns`; `None` without a complete
/// answer.
fn http(ns: &str, method: &str, path: &str, body: &str) -> Option<Response> {
    in_netns(ns, || {
        let r = request_blocking(("127.0.0.1", 8500), method, path, body.as_bytes());
        (r.status != 0).then_some(r)
    })
}

/// The leader `ns`'s agent names (`ip:port`), `Some("")` when it knows none.
fn leader(ns: &str) -> Option<String> {
    let r = http(ns, "GET", "/v1/status/leader", "")?;
    (r.status == 200).then(|| r.text().trim().trim_matches('"').to_string())
}

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

fn server(net: &Net, dir: &Path, i: usize) -> Proc {
    let name = format!("s{i}");
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let data = dir.join(&name);
    Proc(
        Command::new("ip")
            .args(["netns", "exec", &net.nodes[i], BIN])
            .args([
                "agent",
                "-server",
                "-bootstrap-expect=3",
                &format!("-node={name}"),
                &format!("-bind={}", addr(i)),
                "-client=127.0.0.1",
                &format!("-data-dir={}", data.display()),
                &format!("-retry-join={}", addr(0)),
                "-retry-interval=1s",
            ])
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap(),
    )
}

fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("network namespaces need root".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("`ip` (iproute2) is not installed".into()),
    }
}

#[test]
fn partitioned_leader_steps_down_and_rejoins_without_losing_writes() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let net = match Net::create(3) {
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
