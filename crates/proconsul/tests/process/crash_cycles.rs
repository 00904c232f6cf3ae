//! Crash cycles (#20): three servers as processes (127.0.0.181–183, default ports) under
//! concurrent KV writes of unique keys and CAS increments of two counters, while one server
//! at a time — every tenth cycle all three — is killed with SIGKILL and started again on the
//! same data directory. At the end every acknowledged write is readable (`?consistent`), no
//! key appears that nobody wrote, every counter equals its acknowledged increments plus at
//! most the increments whose answer was lost, no consistent read ever saw a counter below
//! an increment acknowledged before the read began, all three servers hold the same data,
//! and no server ever failed to start (its log is shown when one does).
//!
//! `PROCONSUL_CRASH_CYCLES` sets the number of cycles (10 by default, the CI run);
//! `bench/crash-cycles.sh` runs 100 and prints the figures.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use rand::Rng;

use common::cluster::{agreed_leader, http, server};
use common::Proc;

const IPS: [&str; 3] = ["127.0.0.181", "127.0.0.182", "127.0.0.183"];
const NAMES: [&str; 3] = ["s1", "s2", "s3"];
const COUNTERS: usize = 2;
/// Threads incrementing each counter (they contend: CAS conflicts are part of the test).
const INCREMENTERS_PER_COUNTER: usize = 2;
const WRITERS: usize = 2;
/// How long the cluster may take to agree on a leader again after a cycle.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);

/// The last lines of a server's log, for failure messages.
fn log_tail(dir: &Path, name: &str) -> String {
    let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let from = lines.len().saturating_sub(40);
    format!(
        "--- {name}.log (last {} lines) ---\n{}",
        lines.len() - from,
        lines[from..].join("\n")
    )
}

fn all_logs(dir: &Path) -> String {
    NAMES
        .iter()
        .map(|n| log_tail(dir, n))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Start server `i`; fails the test (with its log) if the process exits during start-up.
fn start_server(dir: &Path, i: usize) -> Proc {
    server(dir, NAMES[i], IPS[i], IPS[0])
}

/// Panics with the server's log if it has exited.
fn check_alive(dir: &Path, i: usize, p: &mut Proc) {
    if let Ok(Some(status)) = p.0.try_wait() {
        panic!(
            "server {} exited ({status}) — it failed to start or crashed\n{}",
            NAMES[i],
            log_tail(dir, NAMES[i])
        );
    }
}

/// Wait until every server names the same leader, checking that none has exited.
fn wait_recovered(dir: &Path, servers: &mut [Proc], what: &str) -> Duration {
    let start = Instant::now();
    loop {
        for (i, p) in servers.iter_mut().enumerate() {
            check_alive(dir, i, p);
        }
        if agreed_leader(&IPS).is_some() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < RECOVERY_DEADLINE,
            "no agreed leader {RECOVERY_DEADLINE:?} after {what}\n{}",
            all_logs(dir)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `(value, ModifyIndex)` of a counter from a `?consistent` read on `ip`: `Ok(None)` when the
/// key does not exist, `Err` when there was no good answer.
fn read_counter(ip: &str, key: &str) -> Result<Option<(u64, u64)>, String> {
    let (status, body) =
        http(ip, "GET", &format!("/v1/kv/{key}?consistent"), "").ok_or("no answer")?;
    match status {
        404 => Ok(None),
        200 => {
            let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
            let e = &v[0];
            let raw = base64::engine::general_purpose::STANDARD
                .decode(e["Value"].as_str().unwrap_or(""))
                .map_err(|e| e.to_string())?;
            let n = String::from_utf8_lossy(&raw)
                .parse::<u64>()
                .map_err(|e| format!("counter {key} holds {raw:?}: {e}"))?;
            Ok(Some((
                n,
                e["ModifyIndex"].as_u64().ok_or("no ModifyIndex")?,
            )))
        }
        s => Err(format!("{s} {body}")),
    }
}

static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

#[derive(Default)]
struct CounterStats {
    acked: AtomicU64,
    /// Increments whose answer was lost (no answer, or an error): applied or not.
    indeterminate: AtomicU64,
    /// The highest value an acknowledged increment wrote.
    acked_max: AtomicU64,
    conflicts: AtomicU64,
}

#[derive(Default)]
struct WriteLog {
    /// key → value, for every write answered `true`.
    acked: BTreeMap<String, String>,
    /// Every key a write was sent for.
    attempted: BTreeSet<String>,
}

fn counter_key(c: usize) -> String {
    format!("cc/c/{c}")
}

/// One incrementer: read the counter (`?consistent`), check it is not below what was
/// acknowledged before the read began, CAS it to one more.
fn increment_loop(c: usize, t: usize, stop: &AtomicBool, stats: &CounterStats) -> Vec<String> {
    let key = counter_key(c);
    let mut violations = Vec::new();
    let mut rng = rand::rng();
    let mut seen = 0u64;
    while !stop.load(Ordering::Acquire) {
        let ip = IPS[rng.random_range(0..IPS.len())];
        let floor = stats.acked_max.load(Ordering::Acquire);
        let (value, index) = match read_counter(ip, &key) {
            Ok(Some(r)) => r,
            Ok(None) => {
                violations.push(format!("counter {key} missing (read on {ip})"));
                break;
            }
            Err(_) => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        if value < floor || value < seen {
            violations.push(format!(
                "counter {key} went backwards: read {value} (ModifyIndex {index}) on {ip} \
                 (thread {t}) after {floor} was acknowledged and {seen} seen, at {:?}",
                EPOCH.get().map(|e| e.elapsed())
            ));
        }
        seen = seen.max(value);
        let next = value + 1;
        match http(
            ip,
            "PUT",
            &format!("/v1/kv/{key}?cas={index}"),
            &next.to_string(),
        ) {
            Some((200, b)) if b.trim() == "true" => {
                stats.acked.fetch_add(1, Ordering::AcqRel);
                stats.acked_max.fetch_max(next, Ordering::AcqRel);
                seen = seen.max(next);
            }
            Some((200, b)) if b.trim() == "false" => {
                stats.conflicts.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                stats.indeterminate.fetch_add(1, Ordering::AcqRel);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    violations
}

/// One writer: unique keys `cc/w/<w>/<seq>`, each acknowledged write recorded.
fn write_loop(w: usize, stop: &AtomicBool, log: &Mutex<WriteLog>) {
    let mut rng = rand::rng();
    let mut seq = 0u64;
    while !stop.load(Ordering::Acquire) {
        seq += 1;
        let key = format!("cc/w/{w}/{seq:08}");
        let value = format!("v-{w}-{seq}");
        log.lock().unwrap().attempted.insert(key.clone());
        let ip = IPS[rng.random_range(0..IPS.len())];
        match http(ip, "PUT", &format!("/v1/kv/{key}"), &value) {
            Some((200, b)) if b.trim() == "true" => {
                log.lock().unwrap().acked.insert(key, value);
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Every key and value under `prefix` from one read on `ip` (`?consistent` or `?stale`).
fn read_prefix(ip: &str, prefix: &str, mode: &str) -> Option<BTreeMap<String, String>> {
    let (s, body) = http(ip, "GET", &format!("/v1/kv/{prefix}?recurse&{mode}"), "")?;
    match s {
        404 => Some(BTreeMap::new()),
        200 => {
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            Some(
                v.as_array()?
                    .iter()
                    .map(|e| {
                        let raw = base64::engine::general_purpose::STANDARD
                            .decode(e["Value"].as_str().unwrap_or(""))
                            .unwrap_or_default();
                        (
                            e["Key"].as_str().unwrap_or("").to_string(),
                            String::from_utf8_lossy(&raw).into_owned(),
                        )
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

#[test]
fn kill_and_restart_under_writes() {
    let cycles: usize = std::env::var("PROCONSUL_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let started = *EPOCH.get_or_init(Instant::now);
    let mut servers: Vec<Proc> = (0..3).map(|i| start_server(dir, i)).collect();
    wait_recovered(dir, &mut servers, "the first start");
    for c in 0..COUNTERS {
        common::wait_for("the counter created", Duration::from_secs(30), || {
            http(
                IPS[0],
                "PUT",
                &format!("/v1/kv/{}?cas=0", counter_key(c)),
                "0",
            )
            .is_some_and(|(s, _)| s == 200)
        });
    }

    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(Mutex::new(WriteLog::default()));
    let stats: Arc<Vec<CounterStats>> =
        Arc::new((0..COUNTERS).map(|_| CounterStats::default()).collect());
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (stop, writes) = (stop.clone(), writes.clone());
        writers.push(std::thread::spawn(move || write_loop(w, &stop, &writes)));
    }
    let mut incrementers = Vec::new();
    for c in 0..COUNTERS {
        for t in 0..INCREMENTERS_PER_COUNTER {
            let (stop, stats) = (stop.clone(), stats.clone());
            incrementers.push(std::thread::spawn(move || {
                increment_loop(c, t, &stop, &stats[c])
            }));
        }
    }

    // The faults.
    let mut rng = rand::rng();
    let mut recoveries = Vec::new();
    let mut all_killed = 0;
    for cycle in 1..=cycles {
        std::thread::sleep(Duration::from_millis(rng.random_range(300..1500)));
        let victims: Vec<usize> = if cycle % 10 == 0 {
            all_killed += 1;
            vec![0, 1, 2]
        } else {
            vec![rng.random_range(0..3)]
        };
        eprintln!("cycle {cycle} at {:?}: kill {victims:?}", started.elapsed());
        for &i in &victims {
            // SIGKILL, as `kill -9`: no shutdown path runs.
            let _ = servers[i].0.kill();
            let _ = servers[i].0.wait();
        }
        for &i in &victims {
            servers[i] = start_server(dir, i);
        }
        let took = wait_recovered(dir, &mut servers, &format!("cycle {cycle} ({victims:?})"));
        eprintln!(
            "cycle {cycle}: recovered in {took:?}, leader {:?}",
            agreed_leader(&IPS)
        );
        recoveries.push(took);
    }
    // Some more load on the healthy cluster, then stop the clients.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Release);
    for w in writers {
        w.join().unwrap();
    }
    let mut violations: Vec<String> = Vec::new();
    for t in incrementers {
        violations.extend(t.join().unwrap());
    }

    // Every acknowledged write is there, nothing appears that was never sent.
    wait_recovered(dir, &mut servers, "the last cycle");
    let writes = writes.lock().unwrap();
    let mut stored = None;
    common::wait_for("a consistent read of every key", RECOVERY_DEADLINE, || {
        stored = read_prefix(IPS[0], "cc/w/", "consistent");
        stored.is_some()
    });
    let stored = stored.unwrap();
    for (k, v) in &writes.acked {
        assert_eq!(
            stored.get(k),
            Some(v),
            "acknowledged write {k} lost or changed\n{}",
            all_logs(dir)
        );
    }
    for k in stored.keys() {
        assert!(
            writes.attempted.contains(k),
            "{k} is stored but was never written"
        );
    }
    // Counters: acknowledged ≤ final ≤ acknowledged + lost answers.
    let mut finals = Vec::new();
    for (c, s) in stats.iter().enumerate() {
        let mut fin = None;
        common::wait_for("a consistent read of a counter", RECOVERY_DEADLINE, || {
            fin = read_counter(IPS[0], &counter_key(c)).ok().flatten();
            fin.is_some()
        });
        let (value, _) = fin.unwrap();
        let acked = s.acked.load(Ordering::Acquire);
        let lost = s.indeterminate.load(Ordering::Acquire);
        assert!(
            acked <= value && value <= acked + lost,
            "counter {c} is {value}: {acked} increments acknowledged, {lost} unanswered"
        );
        finals.push((value, acked, lost, s.conflicts.load(Ordering::Acquire)));
    }
    // Every server holds the same data once it has caught up.
    for ip in IPS {
        common::wait_for(
            &format!("{ip} to hold the same keys"),
            RECOVERY_DEADLINE,
            || read_prefix(ip, "cc/", "stale").is_some_and(|m| m.len() == stored.len() + COUNTERS),
        );
        let theirs = read_prefix(ip, "cc/w/", "stale").unwrap();
        assert_eq!(theirs, stored, "{ip} diverges");
    }

    let max_recovery = recoveries.iter().max().copied().unwrap_or_default();
    let mean_recovery = recoveries.iter().sum::<Duration>() / recoveries.len().max(1) as u32;
    println!(
        "crash cycles: {cycles} cycles ({all_killed} with all three servers killed) in {:.1} s; \
         {} writes acknowledged of {} sent, all readable; counters (final, acknowledged, \
         unanswered, CAS conflicts): {finals:?}; recovery to an agreed leader: mean {:.2} s, \
         max {:.2} s",
        started.elapsed().as_secs_f64(),
        writes.acked.len(),
        writes.attempted.len(),
        mean_recovery.as_secs_f64(),
        max_recovery.as_secs_f64(),
    );
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}
