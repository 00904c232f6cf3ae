//! Linearizability under faults (issue #20): concurrent clients record what they asked and
//! what they were answered, a nemesis breaks the cluster in turn, and `proconsul-linearize`
//! checks the histories at the end.
//!
//! Three servers, each in its own network namespace ([`common::netns`]). Register clients
//! (two per server) write unique values, do CAS increments (a `?consistent` read, then
//! `?cas=<ModifyIndex>`) and `?consistent` reads on a few keys; lock clients (one per server)
//! acquire and release a few keys with sessions that nothing else invalidates (no checks, no
//! TTL) and read who holds them. Every op is timed from the moment before its request to the
//! moment after its answer; an op without an answer (no connection, a timeout, a 5xx on a
//! write) is indeterminate. Meanwhile the nemesis, in turn: kills a server with SIGKILL and
//! restarts it, stops one with SIGSTOP and continues it, isolates the leader, isolates a
//! follower, and splits the cluster into two halves that only the middle node bridges — each
//! for a few seconds, then heals and waits for one agreed leader. At the end every history must
//! be linearizable: 0 anomalies.
//!
//! `PROCONSUL_LINEARIZE_SECS` sets how long faults run (default 60; `600` for the long check:
//! `PROCONSUL_LINEARIZE_SECS=600 cargo test --release -p proconsul --test process --
//! linearize::histories --nocapture`). The figures are printed at the end.
//!
//! `PROCONSUL_LINEARIZE_READS` picks the register clients' read mode: `consistent` (the
//! default), or `default` (the leader's lease) or `stale` (expected to fail) by hand.
//!
//! `stale_reads_of_a_cut_off_server_are_flagged` shows the checker catches what `?stale`
//! permits: a read served by a server cut off from the leader, after a newer write completed.

use crate::common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::netns::{addr, enter_netns, in_netns, leader, server, skip_reason, Net};
use common::{wait_for, Proc};
use proconsul_linearize::kv::{KvInput, KvOutput, Register};
use proconsul_linearize::lock::{Lock, LockInput, LockOutput};
use proconsul_linearize::{check, Op};
use proconsul_testkit::{request_blocking, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const REGISTERS: usize = 3;
const LOCKS: usize = 2;

/// Ops counted by how they ended.
#[derive(Default, Clone, Copy, Debug)]
struct Tally {
    ok: u64,
    /// Answered with an error that changed nothing (a read): left out of the history.
    failed: u64,
    indeterminate: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.ok += o.ok;
        self.failed += o.failed;
        self.indeterminate += o.indeterminate;
    }
}

/// One client's recorder: it talks to the agent at 127.0.0.1:8500 of the namespace its thread
/// is in, and writes down each op.
struct Client {
    id: u32,
    start: Instant,
    seq: u64,
    kv: Vec<Op<KvInput, KvOutput>>,
    locks: Vec<Op<LockInput, LockOutput>>,
    /// Every (value, ModifyIndex) a read saw: a value must always come with one index.
    indexes: Vec<(u64, u64)>,
    tally: Tally,
}

/// A `?consistent` (or `?stale`) read's answer: the value and its ModifyIndex, or absent.
type Read = Option<(u64, u64)>;

impl Client {
    fn new(id: u32, start: Instant) -> Client {
        Client {
            id,
            start,
            seq: 0,
            kv: Vec::new(),
            locks: Vec::new(),
            indexes: Vec::new(),
            tally: Tally::default(),
        }
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn request(&self, method: &str, path: &str, body: &str) -> Response {
        request_blocking(("127.0.0.1", 8500), method, path, body.as_bytes())
    }

    /// A value no other write uses.
    fn next_value(&mut self) -> u64 {
        self.seq += 1;
        ((self.id as u64 + 1) << 32) | self.seq
    }

    fn read(&mut self, key: &str, mode: &str) -> Option<Read> {
        // `default` is no parameter at all.
        let query = if mode == "default" { "" } else { mode };
        let call = self.now();
        let r = self.request("GET", &format!("/v1/kv/{key}?{query}"), "");
        let ret = self.now();
        let got = match r.status {
            404 => None,
            200 => {
                let entry = &r.json()[0];
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(entry["Value"].as_str().expect("a value"))
                    .expect("base64");
                let v: u64 = String::from_utf8(raw)
                    .unwrap()
                    .parse()
                    .expect("one of ours");
                let index = entry["ModifyIndex"].as_u64().expect("ModifyIndex");
                self.indexes.push((v, index));
                Some((v, index))
            }
            _ => {
                self.tally.failed += 1;
                return None;
            }
        };
        self.tally.ok += 1;
        let input = KvInput::Read { key: key.into() };
        let out = KvOutput::Read(got.map(|(v, _)| v));
        self.kv.push(Op::done(self.id, call, ret, input, out));
        Some(got)
    }

    /// `true`/`false` from a PUT with a 200; `None` for anything else (the write may or may
    /// not have happened: the request may have reached a leader that lost its lease after
    /// proposing it).
    fn put(&mut self, path: &str, body: &str) -> (u64, Option<bool>, u64) {
        let call = self.now();
        let r = self.request("PUT", path, body);
        let ret = self.now();
        let answer = (r.status == 200).then(|| r.text().trim() == "true");
        if answer.is_some() {
            self.tally.ok += 1;
        } else {
            self.tally.indeterminate += 1;
            // A server that is down answers at once: do not spin on it.
            if r.status == 0 {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        (call, answer, ret)
    }

    fn write(&mut self, key: &str) {
        let value = self.next_value();
        let (call, answer, ret) = self.put(&format!("/v1/kv/{key}"), &value.to_string());
        let input = KvInput::Write {
            key: key.into(),
            value,
        };
        self.kv.push(match answer {
            Some(b) => Op::done(self.id, call, ret, input, KvOutput::Written(b)),
            None => Op::indeterminate(self.id, call, input),
        });
    }

    /// Read, then replace what was read by a new value if nothing changed in between.
    fn cas_increment(&mut self, key: &str, mode: &str) {
        let Some(read) = self.read(key, mode) else {
            return;
        };
        let value = self.next_value();
        let index = read.map_or(0, |(_, i)| i);
        let (call, answer, ret) =
            self.put(&format!("/v1/kv/{key}?cas={index}"), &value.to_string());
        let input = KvInput::Cas {
            key: key.into(),
            expect: read.map(|(v, _)| v),
            value,
        };
        self.kv.push(match answer {
            Some(b) => Op::done(self.id, call, ret, input, KvOutput::Written(b)),
            None => Op::indeterminate(self.id, call, input),
        });
    }

    fn lock_op(&mut self, key: &str, session: &str, sid: u64, acquire: bool) {
        let verb = if acquire { "acquire" } else { "release" };
        let (call, answer, ret) = self.put(
            &format!("/v1/kv/{key}?{verb}={session}"),
            &self.id.to_string(),
        );
        let input = if acquire {
            LockInput::Acquire {
                key: key.into(),
                session: sid,
            }
        } else {
            LockInput::Release {
                key: key.into(),
                session: sid,
            }
        };
        self.locks.push(match answer {
            Some(b) => Op::done(self.id, call, ret, input, LockOutput::Done(b)),
            None => Op::indeterminate(self.id, call, input),
        });
    }

    fn lock_read(&mut self, key: &str, sessions: &Sessions) {
        let call = self.now();
        let r = self.request("GET", &format!("/v1/kv/{key}?consistent"), "");
        let ret = self.now();
        let holder = match r.status {
            404 => None,
            200 => r.json()[0]["Session"].as_str().map(|s| sessions.number(s)),
            _ => {
                self.tally.failed += 1;
                return;
            }
        };
        self.tally.ok += 1;
        let input = LockInput::Read { key: key.into() };
        self.locks.push(Op::done(
            self.id,
            call,
            ret,
            input,
            LockOutput::Holder(holder),
        ));
    }
}

/// Session IDs as numbers for the lock model.
#[derive(Default)]
struct Sessions(Mutex<HashMap<String, u64>>);

impl Sessions {
    fn number(&self, id: &str) -> u64 {
        let mut m = self.0.lock().unwrap();
        let n = m.len() as u64 + 1;
        *m.entry(id.to_string()).or_insert(n)
    }
}

/// Create a session no health check or TTL can invalidate, retrying through faults.
fn create_session(stop: &AtomicBool) -> Option<String> {
    let body = r#"{"Name":"linearize","LockDelay":"0s","NodeChecks":[]}"#;
    while !stop.load(Ordering::Relaxed) {
        let r = request_blocking(
            ("127.0.0.1", 8500),
            "PUT",
            "/v1/session/create",
            body.as_bytes(),
        );
        if r.status == 200 {
            return Some(r.json()["ID"].as_str().unwrap().to_string());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

fn register_client(id: u32, ns: &str, mode: &str, start: Instant, stop: &AtomicBool) -> Client {
    enter_netns(ns);
    let mut c = Client::new(id, start);
    let mut rng = StdRng::seed_from_u64(id as u64);
    while !stop.load(Ordering::Relaxed) {
        let key = format!("lz/r{}", rng.random_range(0..REGISTERS));
        match rng.random_range(0..10) {
            0..=3 => {
                c.read(&key, mode);
            }
            4..=5 => c.write(&key),
            _ => c.cas_increment(&key, mode),
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..5)));
    }
    c
}

fn lock_client(
    id: u32,
    ns: &str,
    start: Instant,
    stop: &AtomicBool,
    sessions: &Sessions,
) -> Client {
    enter_netns(ns);
    let mut c = Client::new(id, start);
    let Some(session) = create_session(stop) else {
        return c;
    };
    let sid = sessions.number(&session);
    let mut rng = StdRng::seed_from_u64(id as u64);
    while !stop.load(Ordering::Relaxed) {
        let key = format!("lz/l{}", rng.random_range(0..LOCKS));
        match rng.random_range(0..10) {
            0..=3 => c.lock_op(&key, &session, sid, true),
            4..=7 => c.lock_op(&key, &session, sid, false),
            _ => c.lock_read(&key, sessions),
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..5)));
    }
    c
}

/// The cluster under test: the network, the servers (`None` while killed), their data.
struct Cluster {
    // Declared first, so the agents die before their namespaces are deleted.
    servers: Vec<Option<Proc>>,
    dir: tempfile::TempDir,
    net: Net,
}

impl Cluster {
    fn start(net: Net) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let servers = (0..3).map(|i| Some(server(&net, dir.path(), i))).collect();
        Cluster { servers, dir, net }
    }

    fn ns(&self, i: usize) -> &str {
        &self.net.nodes[i]
    }

    /// The index of the leader all three agents name, once they agree.
    fn agreed_leader(&self, within: Duration) -> usize {
        let mut found = None;
        wait_for("one leader named by all three", within, || {
            let l: Vec<Option<String>> = (0..3).map(|i| leader(self.ns(i))).collect();
            found = l[0]
                .as_ref()
                .filter(|x| !x.is_empty() && l.iter().all(|y| y == &l[0]))
                .and_then(|x| (0..3).find(|i| *x == format!("{}:8300", addr(*i))));
            found.is_some()
        });
        found.unwrap()
    }

    fn pid(&self, i: usize) -> i32 {
        self.servers[i].as_ref().expect("running").0.id() as i32
    }

    /// Block (or unblock) every link between `side` and the other nodes.
    fn isolate(&self, side: usize, block: bool) {
        for other in (0..3).filter(|o| *o != side) {
            self.net.block(side, other, block);
        }
    }
}

/// One fault, held for `hold`, then healed. Returns what it did.
fn inject(c: &mut Cluster, k: usize, rng: &mut StdRng, hold: Duration) -> String {
    let li = c.agreed_leader(Duration::from_secs(90));
    let follower = (0..3)
        .filter(|i| *i != li)
        .nth(rng.random_range(0..2))
        .unwrap();
    match k % 5 {
        0 => {
            let victim = if k.is_multiple_of(2) { li } else { follower };
            if let Some(mut p) = c.servers[victim].take() {
                let _ = p.0.kill();
                let _ = p.0.wait();
            }
            std::thread::sleep(hold);
            c.servers[victim] = Some(server(&c.net, c.dir.path(), victim));
            format!("kill -9 s{victim} (leader s{li}), restart")
        }
        1 => {
            let victim = if k.is_multiple_of(2) { follower } else { li };
            // SAFETY: kill(2) on a child this test started and still owns.
            unsafe { libc::kill(c.pid(victim), libc::SIGSTOP) };
            std::thread::sleep(hold);
            unsafe { libc::kill(c.pid(victim), libc::SIGCONT) };
            format!("SIGSTOP/SIGCONT s{victim} (leader s{li})")
        }
        2 => {
            c.isolate(li, true);
            std::thread::sleep(hold);
            c.isolate(li, false);
            format!("isolate leader s{li}")
        }
        3 => {
            c.isolate(follower, true);
            std::thread::sleep(hold);
            c.isolate(follower, false);
            format!("isolate follower s{follower} (leader s{li})")
        }
        _ => {
            let middle = rng.random_range(0..3);
            let (a, b) = match middle {
                0 => (1, 2),
                1 => (0, 2),
                _ => (0, 1),
            };
            c.net.block(a, b, true);
            std::thread::sleep(hold);
            c.net.block(a, b, false);
            format!("bridge: s{a} | s{middle} | s{b} (leader s{li})")
        }
    }
}

fn read_mode_from_env() -> String {
    match std::env::var("PROCONSUL_LINEARIZE_READS").as_deref() {
        Ok("default") => "default".into(),
        Ok("stale") => "stale".into(),
        _ => "consistent".into(),
    }
}

fn secs_from_env() -> u64 {
    std::env::var("PROCONSUL_LINEARIZE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60)
}

/// A value must always come with the same ModifyIndex (a CAS's expectation rests on it).
fn index_conflicts(clients: &[Client]) -> Vec<String> {
    let mut seen: HashMap<u64, u64> = HashMap::new();
    let mut bad = Vec::new();
    for (v, i) in clients.iter().flat_map(|c| c.indexes.iter().copied()) {
        match seen.insert(v, i) {
            Some(old) if old != i => bad.push(format!("value {v} read at index {old} and {i}")),
            _ => {}
        }
    }
    bad
}

#[test]
fn histories_under_faults_are_linearizable() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let net = match Net::create("lin", 3) {
        Ok(net) => net,
        Err(e) => {
            eprintln!("skipping: cannot build the test network: {e}");
            return;
        }
    };
    let mut cluster = Cluster::start(net);
    cluster.agreed_leader(Duration::from_secs(60));
    wait_for("three voters", Duration::from_secs(30), || {
        common::netns::http(cluster.ns(0), "GET", "/v1/status/peers", "")
            .is_some_and(|r| r.text().matches(":8300").count() == 3)
    });
    let secs = secs_from_env();
    let mode = read_mode_from_env();
    let start = Instant::now();
    let stop = AtomicBool::new(false);
    let sessions = Sessions::default();
    let nodes: Vec<String> = cluster.net.nodes.clone();
    let mut rng = StdRng::seed_from_u64(20);
    let mut faults = Vec::new();

    let clients: Vec<Client> = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for id in 0..6u32 {
            let (ns, stop, mode) = (&nodes[id as usize % 3], &stop, mode.as_str());
            handles.push(s.spawn(move || register_client(id, ns, mode, start, stop)));
        }
        for id in 6..9u32 {
            let (ns, stop, sessions) = (&nodes[id as usize % 3], &stop, &sessions);
            handles.push(s.spawn(move || lock_client(id, ns, start, stop, sessions)));
        }
        // Let the clients run a little on a healthy cluster first.
        std::thread::sleep(Duration::from_secs(2));
        let mut k = 0;
        while start.elapsed() < Duration::from_secs(secs) {
            let hold = Duration::from_millis(rng.random_range(3_000..8_000));
            let what = inject(&mut cluster, k, &mut rng, hold);
            k += 1;
            eprintln!("{:>6.1}s fault {k}: {what}", start.elapsed().as_secs_f64());
            faults.push(what);
            cluster.agreed_leader(Duration::from_secs(90));
            std::thread::sleep(Duration::from_millis(rng.random_range(1_000..3_000)));
        }
        // Healed: a last stretch without faults, then stop.
        cluster.agreed_leader(Duration::from_secs(90));
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, Ordering::Relaxed);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ran = start.elapsed();

    let mut tally = Tally::default();
    for c in &clients {
        tally += c.tally;
    }
    let kv: Vec<_> = clients.iter().flat_map(|c| c.kv.iter().cloned()).collect();
    let locks: Vec<_> = clients
        .iter()
        .flat_map(|c| c.locks.iter().cloned())
        .collect();
    let t = Instant::now();
    let kv_report = check(&Register::for_history(&kv), &kv);
    let lock_report = check(&Lock, &locks);
    let checker = t.elapsed();
    let conflicts = index_conflicts(&clients);
    for a in &kv_report.anomalies {
        eprintln!("{}", a.description);
    }
    for a in &lock_report.anomalies {
        eprintln!("{}", a.description);
    }
    eprintln!(
        "linearize ({mode} reads): {:.0}s, {} faults; ops: {} ok, {} failed, {} indeterminate \
         (register {} ops on {} keys, lock {} ops on {} keys); anomalies: {} register, {} lock, \
         {} index conflicts; gave up on {:?} {:?}; checker {:.2}s ({} + {} steps)",
        ran.as_secs_f64(),
        faults.len(),
        tally.ok,
        tally.failed,
        tally.indeterminate,
        kv.len(),
        kv_report.parts,
        locks.len(),
        lock_report.parts,
        kv_report.anomalies.len(),
        lock_report.anomalies.len(),
        conflicts.len(),
        kv_report.gave_up,
        lock_report.gave_up,
        checker.as_secs_f64(),
        kv_report.steps,
        lock_report.steps,
    );
    assert!(conflicts.is_empty(), "{conflicts:?}");
    assert!(
        kv_report.is_linearizable(),
        "register histories: {kv_report:?}"
    );
    assert!(
        lock_report.is_linearizable(),
        "lock histories: {lock_report:?}"
    );
    // The run did something: faults, and successful ops of every kind.
    assert!(!faults.is_empty());
    let done = |h: &[Op<KvInput, KvOutput>], f: fn(&KvInput) -> bool| {
        h.iter().filter(|o| f(&o.input) && o.ret.is_some()).count()
    };
    assert!(done(&kv, |i| matches!(i, KvInput::Read { .. })) > 20);
    assert!(done(&kv, |i| matches!(i, KvInput::Write { .. })) > 20);
    assert!(done(&kv, |i| matches!(i, KvInput::Cas { .. })) > 20);
    let acquired = locks.iter().filter(|o| {
        matches!(o.input, LockInput::Acquire { .. })
            && matches!(o.ret, Some((_, LockOutput::Done(true))))
    });
    assert!(acquired.count() > 10);
}

/// `?stale` lets any server answer from its own state, so a server cut off from the leader
/// serves what it had: a read that started after a newer write was acknowledged returns the
/// older value. The same recorder and checker flag it; `?consistent` on that server is
/// refused instead.
#[test]
fn stale_reads_of_a_cut_off_server_are_flagged() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let net = match Net::create("stale", 3) {
        Ok(net) => net,
        Err(e) => {
            eprintln!("skipping: cannot build the test network: {e}");
            return;
        }
    };
    let cluster = Cluster::start(net);
    let li = cluster.agreed_leader(Duration::from_secs(60));
    let cut = (li + 1) % 3;
    let start = Instant::now();
    let writer = Arc::new(Mutex::new(Client::new(0, start)));
    let reader = Arc::new(Mutex::new(Client::new(1, start)));
    let write_acked = |ns: &str| {
        let w = writer.clone();
        wait_for("a write acknowledged", Duration::from_secs(30), || {
            in_netns(ns, || {
                let mut w = w.lock().unwrap();
                w.write("lz/stale");
                w.kv.last().unwrap().ret.is_some()
            })
        });
    };
    // The first value reaches every server.
    write_acked(cluster.ns(li));
    // (Polled by a client whose reads are not part of the history.)
    let mut poller = Client::new(2, start);
    wait_for(
        "the first value everywhere",
        Duration::from_secs(20),
        || {
            in_netns(cluster.ns(cut), || {
                matches!(poller.read("lz/stale", "stale"), Some(Some(_)))
            })
        },
    );
    // Cut one follower off; the majority takes a second value.
    cluster.isolate(cut, true);
    write_acked(cluster.ns(li));
    // The cut-off server still answers `?stale` — with the first value.
    in_netns(cluster.ns(cut), || {
        let mut r = reader.lock().unwrap();
        assert!(
            r.read("lz/stale", "stale").is_some(),
            "a ?stale read answers"
        );
    });
    let refused = in_netns(cluster.ns(cut), || {
        request_blocking(
            ("127.0.0.1", 8500),
            "GET",
            "/v1/kv/lz/stale?consistent",
            b"",
        )
    });
    assert_ne!(refused.status, 200, "{refused:?}");
    cluster.isolate(cut, false);

    let h: Vec<_> = [&writer, &reader]
        .iter()
        .flat_map(|c| c.lock().unwrap().kv.clone())
        .collect();
    let rep = check(&Register::for_history(&h), &h);
    assert_eq!(rep.anomalies.len(), 1, "{rep:?}");
    eprintln!(
        "the checker flags the ?stale read:\n{}",
        rep.anomalies[0].description
    );
    let last_read = h.len() - 1;
    assert!(rep.anomalies[0].witness.contains(&last_read), "{rep:?}");
}
