//! bench/blocking.sh's load tool: open N blocking queries against one agent, each on its own
//! keep-alive connection as clients hold them, report the agent's RSS per open query, then change
//! a few of the watched keys (or checks) one at a time and time the wake-ups of the queries that
//! watch them, and count the queries that woke although nothing they watch changed.
//!
//! usage: watchers [--addr 127.0.0.1:18540] [--pid AGENT_PID] [--n 5000,20000,100000]
//!                 [--targets 1000] [--mode kv|health|mixed] [--changes 20] [--wait 10m]
//!
//! `--n` takes checkpoints: queries are opened up to each one in turn and the agent's RSS is
//! printed at each. Connections come from 127.0.0.2, .3, … (10,000 per source address), so
//! 100,000 of them do not exhaust one address's ephemeral ports; raise `ulimit -n` for both
//! this tool and the agent, and the agent's `limits.http_max_conns_per_client`.
//!
//! Targets: `kv` watches keys `bench/watch/<t>` (`GET /v1/kv/…?index=&wait=`); `health` watches
//! services `bench-w-<t>`, one per node `bench-w-<t>` with one check (`GET /v1/health/service/…`),
//! changed by re-registering the check with the other status; `mixed` alternates the two.
//! Prints figures only.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;

mod load;
use load::{percentile, read_response, request, rss_kib, threads, Error};

/// Connections per source address: a third of the ephemeral range, so the ports a previous run
/// left in TIME_WAIT do not run a second one out.
const PER_SOURCE: usize = 10_000;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Kv,
    Health,
}

struct Args {
    addr: SocketAddr,
    pid: Option<u32>,
    checkpoints: Vec<usize>,
    targets: usize,
    mode: String,
    changes: usize,
    wait: String,
    parallel: usize,
}

fn parse_args() -> Result<Args, Error> {
    let mut a = Args {
        addr: "127.0.0.1:18540".parse()?,
        pid: None,
        checkpoints: vec![5000],
        targets: 1000,
        mode: "kv".into(),
        changes: 20,
        wait: "10m".into(),
        parallel: 256,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => a.addr = v.parse()?,
            "--pid" => a.pid = Some(v.parse()?),
            "--n" => {
                a.checkpoints = v
                    .split(',')
                    .map(|s| s.trim().parse())
                    .collect::<Result<_, _>>()?
            }
            "--targets" => a.targets = v.parse()?,
            "--mode" => a.mode = v,
            "--changes" => a.changes = v.parse()?,
            "--wait" => a.wait = v,
            "--parallel" => a.parallel = v.parse()?,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    if !matches!(a.mode.as_str(), "kv" | "health" | "mixed") {
        return Err("--mode is kv, health or mixed".into());
    }
    a.checkpoints.sort_unstable();
    Ok(a)
}

impl Args {
    fn kind(&self, t: usize) -> Kind {
        match self.mode.as_str() {
            "kv" => Kind::Kv,
            "health" => Kind::Health,
            _ if t.is_multiple_of(2) => Kind::Kv,
            _ => Kind::Health,
        }
    }
}

fn watch_path(kind: Kind, t: usize) -> String {
    match kind {
        Kind::Kv => format!("/v1/kv/bench/watch/{t}"),
        Kind::Health => format!("/v1/health/service/bench-w-{t}"),
    }
}

/// Write target `t` (its `round`-th change): a new value, or the check's other status.
async fn change(s: &mut TcpStream, kind: Kind, t: usize, round: usize) -> Result<(), Error> {
    match kind {
        Kind::Kv => {
            let body = format!("value {round}");
            request(s, "PUT", &watch_path(kind, t), body.as_bytes()).await?;
        }
        Kind::Health => {
            let status = if round.is_multiple_of(2) {
                "passing"
            } else {
                "critical"
            };
            let body = format!(
                r#"{{"Node":"bench-w-{t}","Address":"10.{}.{}.{}","Service":{{"ID":"bench-w-{t}","Service":"bench-w-{t}","Port":8080,"Tags":["v1"]}},"Check":{{"CheckID":"bench-w-{t}","Name":"alive","Status":"{status}","ServiceID":"bench-w-{t}"}}}}"#,
                (t >> 16) & 255,
                (t >> 8) & 255,
                t & 255
            );
            request(s, "PUT", "/v1/catalog/register", body.as_bytes()).await?;
        }
    }
    Ok(())
}

/// What the watchers saw: (target, when its query answered).
type Wakes = Arc<Mutex<Vec<(usize, Instant)>>>;

struct Watcher {
    target: usize,
    source: Ipv4Addr,
    request: Vec<u8>,
}

async fn open(
    w: Watcher,
    addr: SocketAddr,
    opened: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    wakes: Wakes,
    gate: Arc<Semaphore>,
) {
    let permit = gate.acquire_owned().await.expect("semaphore open");
    let conn = async {
        let sock = TcpSocket::new_v4()?;
        sock.bind(SocketAddr::new(w.source.into(), 0))?;
        let mut s = sock.connect(addr).await?;
        s.write_all(&w.request).await?;
        Ok::<_, Error>(s)
    }
    .await;
    drop(permit);
    let mut s = match conn {
        Ok(s) => {
            opened.fetch_add(1, Ordering::SeqCst);
            s
        }
        Err(e) => {
            if failed.fetch_add(1, Ordering::SeqCst) < 3 {
                eprintln!("watcher: {e}");
            }
            return;
        }
    };
    drop(w.request);
    if read_response(&mut s).await.is_ok() {
        wakes.lock().unwrap().push((w.target, Instant::now()));
    }
    // Keep the connection until the tool exits, as a client between two queries would.
    std::future::pending::<()>().await;
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let a = parse_args()?;
    let mut ctl = TcpStream::connect(a.addr).await?;
    ctl.set_nodelay(true)?;

    // Set the targets up and learn each one's index.
    let t0 = Instant::now();
    let mut index = Vec::with_capacity(a.targets);
    for t in 0..a.targets {
        let kind = a.kind(t);
        change(&mut ctl, kind, t, 0).await?;
        let r = request(&mut ctl, "GET", &watch_path(kind, t), b"").await?;
        index.push(r.index);
    }
    println!(
        "mode {}: {} targets set up in {:.1}s",
        a.mode,
        a.targets,
        t0.elapsed().as_secs_f64()
    );
    let rss0 = a.pid.and_then(rss_kib);
    if let (Some(r), Some(pid)) = (rss0, a.pid) {
        println!(
            "agent RSS before the queries: {:.1} MiB ({} threads)",
            r as f64 / 1024.0,
            threads(pid).unwrap_or(0)
        );
    }

    let opened = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let wakes: Wakes = Arc::default();
    let gate = Arc::new(Semaphore::new(a.parallel));
    let mut watchers_of = vec![0usize; a.targets];
    let mut next = 0usize;
    for &cp in &a.checkpoints {
        let t1 = Instant::now();
        while next < cp {
            let target = next % a.targets;
            watchers_of[target] += 1;
            let source = Ipv4Addr::new(127, 0, 0, 2 + (next / PER_SOURCE) as u8);
            let req = format!(
                "GET {}?index={}&wait={} HTTP/1.1\r\nHost: bench\r\n\r\n",
                watch_path(a.kind(target), target),
                index[target],
                a.wait
            );
            tokio::spawn(open(
                Watcher {
                    target,
                    source,
                    request: req.into_bytes(),
                },
                a.addr,
                opened.clone(),
                failed.clone(),
                wakes.clone(),
                gate.clone(),
            ));
            next += 1;
        }
        while opened.load(Ordering::SeqCst) + failed.load(Ordering::SeqCst) < cp {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let took = t1.elapsed();
        // Let the agent read the requests and park them; wait until its RSS stops growing.
        let mut last = 0;
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(1000)).await;
            let Some(now) = a.pid.and_then(rss_kib) else {
                break;
            };
            if now.abs_diff(last) * 200 < now {
                break;
            }
            last = now;
        }
        let early = wakes.lock().unwrap().len();
        print!(
            "{cp} queries open ({} failed, {early} answered early) in {:.1}s",
            failed.load(Ordering::SeqCst),
            took.as_secs_f64()
        );
        match (rss0, a.pid.and_then(rss_kib)) {
            (Some(r0), Some(r)) => println!(
                ": agent RSS {:.1} MiB, +{:.1} MiB, {:.2} KB per query",
                r as f64 / 1024.0,
                (r - r0.min(r)) as f64 / 1024.0,
                (r - r0.min(r)) as f64 * 1024.0 / 1000.0 / cp as f64
            ),
            _ => println!(),
        }
    }

    // Change targets one at a time, spread over the range; time their watchers' answers.
    let early = wakes.lock().unwrap().len();
    let mut lat = Vec::new();
    let mut changed = vec![false; a.targets];
    let mut missing = 0;
    for c in 0..a.changes {
        let t = (c * a.targets / a.changes.max(1) + c) % a.targets;
        if changed[t] {
            continue;
        }
        changed[t] = true;
        let before = wakes.lock().unwrap().len();
        let start = Instant::now();
        change(&mut ctl, a.kind(t), t, 1).await?;
        let deadline = start + Duration::from_secs(5);
        loop {
            let got = wakes.lock().unwrap()[before..]
                .iter()
                .filter(|(x, _)| *x == t)
                .count();
            if got >= watchers_of[t] || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let mine: Vec<Duration> = wakes.lock().unwrap()[before..]
            .iter()
            .filter(|(x, _)| *x == t)
            .map(|(_, at)| at.saturating_duration_since(start))
            .collect();
        missing += watchers_of[t].saturating_sub(mine.len());
        lat.extend(mine);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let unrelated = wakes.lock().unwrap()[early..]
        .iter()
        .filter(|(x, _)| !changed[*x])
        .count();
    lat.sort_unstable();
    let n_changed = changed.iter().filter(|c| **c).count();
    println!(
        "{n_changed} targets changed one at a time: {} queries woke (expected {}, {missing} missing); \
         wake-up after the write was sent p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
         queries of unchanged targets woken: {unrelated}",
        lat.len(),
        lat.len() + missing,
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    if let Some(r) = a.pid.and_then(rss_kib) {
        println!("agent RSS at the end: {:.1} MiB", r as f64 / 1024.0);
    }
    Ok(())
}
