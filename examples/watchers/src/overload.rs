//! bench/overload.sh's load tool: do idle connections, slow readers and a flood from one client
//! slow down the clients that are doing ordinary work?
//!
//! usage: overload [--addr 127.0.0.1:18541] [--pid AGENT_PID] [--active 8] [--secs 10]
//!                 [--idle 10000] [--slow 200] [--flood 5000] [--flood-nice 4]
//!                 [--flood-addr ADDR]
//!
//! The *active clients* are `--active` keep-alive connections from 127.0.0.1, each reading one
//! KV key in a closed loop for `--secs`; their requests per second and latency percentiles are
//! measured alone (baseline), then beside each of:
//! - **idle**: `--idle` keep-alive connections, each having made one request and then silent,
//!   as pooled clients hold them (from 127.0.1.x, 200 per address: the agent's default
//!   `http_max_conns_per_client`);
//! - **slow readers**: `--slow` connections (from 127.0.2.x) each asking for a 512 KB value and
//!   reading its answer at 10 KB/s through a 4 KB receive buffer;
//! - **flood**: one client (127.0.3.1) that opens `--flood` connections as fast as it can and
//!   sends requests back to back on each one it is given.
//!
//! Each load is taken down before the next. Prints figures only.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;

mod load;
use load::{percentile, read_response, request, rss_kib, Error};

struct Args {
    addr: SocketAddr,
    pid: Option<u32>,
    active: usize,
    secs: u64,
    idle: usize,
    slow: usize,
    flood: usize,
    flood_nice: i32,
    /// Another agent on this machine: the flood runs against it too, as a second phase, to
    /// show what the flood costs the active clients through the shared cores alone.
    flood_addr: Option<SocketAddr>,
}

fn parse_args() -> Result<Args, Error> {
    let mut a = Args {
        addr: "127.0.0.1:18541".parse()?,
        pid: None,
        active: 8,
        secs: 10,
        idle: 10_000,
        slow: 200,
        flood: 5_000,
        flood_nice: 4,
        flood_addr: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => a.addr = v.parse()?,
            "--pid" => a.pid = Some(v.parse()?),
            "--active" => a.active = v.parse()?,
            "--secs" => a.secs = v.parse()?,
            "--idle" => a.idle = v.parse()?,
            "--slow" => a.slow = v.parse()?,
            "--flood" => a.flood = v.parse()?,
            "--flood-nice" => a.flood_nice = v.parse()?,
            "--flood-addr" => a.flood_addr = Some(v.parse()?),
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(a)
}

const GET_HOT: &[u8] = b"GET /v1/kv/bench/hot HTTP/1.1\r\nHost: bench\r\n\r\n";
const GET_BIG: &[u8] = b"GET /v1/kv/bench/big?raw HTTP/1.1\r\nHost: bench\r\n\r\n";

/// A connection to `addr` from `source` (port chosen by the kernel), with a receive buffer of
/// `rcvbuf` bytes when given.
async fn connect_from(
    addr: SocketAddr,
    source: Ipv4Addr,
    rcvbuf: Option<u32>,
) -> std::io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    if let Some(n) = rcvbuf {
        sock.set_recv_buffer_size(n)?;
    }
    sock.bind(SocketAddr::new(source.into(), 0))?;
    let s = sock.connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// The `i`-th address of a block `127.0.<block>.x`, `per` connections to an address.
fn source(block: u8, i: usize, per: usize) -> Ipv4Addr {
    let n = i / per;
    Ipv4Addr::new(127, block, (n / 250) as u8, (n % 250 + 1) as u8)
}

/// What the active clients did over one phase.
struct Figures {
    requests: usize,
    errors: usize,
    latencies: Vec<Duration>,
    secs: f64,
}

impl Figures {
    fn line(&mut self, phase: &str, extra: &str) {
        self.latencies.sort();
        println!(
            "{phase:<14} {:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  p99.9 {:>7.2} ms  errors {}{extra}",
            self.requests as f64 / self.secs,
            ms(percentile(&self.latencies, 0.50)),
            ms(percentile(&self.latencies, 0.99)),
            ms(percentile(&self.latencies, 0.999)),
            self.errors,
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Run the active clients for `secs`.
async fn active_clients(a: &Args) -> Figures {
    let mut set = JoinSet::new();
    let until = Instant::now() + Duration::from_secs(a.secs);
    for _ in 0..a.active {
        let addr = a.addr;
        set.spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            let mut errors = 0;
            let Ok(mut s) = connect_from(addr, Ipv4Addr::LOCALHOST, None).await else {
                return (lat, 1);
            };
            while Instant::now() < until {
                let t = Instant::now();
                let ok = async {
                    s.write_all(GET_HOT).await?;
                    let r = read_response(&mut s).await?;
                    Ok::<_, Error>(r.status == 200)
                }
                .await;
                match ok {
                    Ok(true) => lat.push(t.elapsed()),
                    Ok(false) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        match connect_from(addr, Ipv4Addr::LOCALHOST, None).await {
                            Ok(n) => s = n,
                            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                        }
                    }
                }
            }
            (lat, errors)
        });
    }
    let start = Instant::now();
    let mut f = Figures {
        requests: 0,
        errors: 0,
        latencies: Vec::new(),
        secs: 0.0,
    };
    while let Some(r) = set.join_next().await {
        let (lat, errors) = r.expect("client task");
        f.requests += lat.len();
        f.errors += errors;
        f.latencies.extend(lat);
    }
    f.secs = start.elapsed().as_secs_f64();
    f
}

fn rss_mib(pid: Option<u32>) -> f64 {
    pid.and_then(rss_kib).unwrap_or(0) as f64 / 1024.0
}

/// Open `n` idle keep-alive connections (each makes one request first); returns them.
async fn open_idle(a: &Args) -> Vec<TcpStream> {
    let mut set = JoinSet::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    for i in 0..a.idle {
        let (addr, gate) = (a.addr, gate.clone());
        set.spawn(async move {
            let _p = gate.acquire_owned().await.ok()?;
            let mut s = connect_from(addr, source(1, i, 200), None).await.ok()?;
            s.write_all(GET_HOT).await.ok()?;
            (read_response(&mut s).await.ok()?.status == 200).then_some(s)
        });
    }
    let mut conns = Vec::with_capacity(a.idle);
    while let Some(r) = set.join_next().await {
        if let Ok(Some(s)) = r {
            conns.push(s);
        }
    }
    conns
}

/// Start `n` slow readers; they read until `stop`. Returns how many got their answer started.
fn start_slow_readers(a: &Args, stop: Arc<AtomicBool>, started: Arc<AtomicU64>) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for i in 0..a.slow {
        let (addr, stop, started) = (a.addr, stop.clone(), started.clone());
        set.spawn(async move {
            let Ok(mut s) = connect_from(addr, source(2, i, 100), Some(4096)).await else {
                return;
            };
            if s.write_all(GET_BIG).await.is_err() {
                return;
            }
            let mut buf = [0u8; 1024];
            let mut first = true;
            while !stop.load(Ordering::Relaxed) {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if std::mem::take(&mut first) {
                            started.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    set
}

/// The flood: connections opened back to back from one address, each sending requests back to
/// back for as long as the agent keeps it. Counts connections that got an answer, connections
/// closed before one, and answers.
struct Flood {
    admitted: AtomicU64,
    refused: AtomicU64,
    answered: AtomicU64,
}

/// Run the flood on its own thread and runtime until `stop`, so its tasks do not share this
/// tool's scheduler with the active clients (that would measure the tool, not the agent).
///
/// The thread also lowers its CPU priority by `--flood-nice` (default 4) below this tool's:
/// on a machine shared with the agent, a flood generator at equal priority takes the CPU the
/// active clients need to send their next request, and the figures would show the load tool
/// starving itself rather than what the agent does. On a real network the flooding client has
/// its own CPU; here the agent still sees a flood far beyond what it can answer.
fn start_flood(
    a: &Args,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    flood: Arc<Flood>,
) -> std::thread::JoinHandle<()> {
    let (total, nice) = (a.flood, a.flood_nice);
    std::thread::spawn(move || {
        lower_thread_priority(nice);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("flood runtime");
        rt.block_on(flood_loop(addr, total, stop, flood));
    })
}

/// One flood phase: the flood against `target`, alone, then beside the active clients.
async fn flood_phase(a: &Args, target: SocketAddr, label: &str) {
    let stop = Arc::new(AtomicBool::new(false));
    let flood = Arc::new(Flood {
        admitted: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        answered: AtomicU64::new(0),
    });
    let thread = start_flood(a, target, stop.clone(), flood.clone());
    // Until its connections are all opened (admitted or refused), then one more second.
    let opened = || flood.admitted.load(Ordering::Relaxed) + flood.refused.load(Ordering::Relaxed);
    let t = Instant::now();
    while opened() < a.flood as u64 && t.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    // First the flood alone: what it takes of the agent when no one else asks.
    let t = Instant::now();
    let answered_before = flood.answered.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(a.secs)).await;
    let alone = (flood.answered.load(Ordering::Relaxed) - answered_before) as f64
        / t.elapsed().as_secs_f64();
    let answered_before = flood.answered.load(Ordering::Relaxed);
    let mut f = active_clients(a).await;
    let answered = flood.answered.load(Ordering::Relaxed) - answered_before;
    let extra = format!(
        "  | flood: {} connections admitted, {} refused, {:.0} req/s answered ({alone:.0} alone)",
        flood.admitted.load(Ordering::Relaxed),
        flood.refused.load(Ordering::Relaxed),
        answered as f64 / f.secs
    );
    f.line(label, &extra);
    stop.store(true, Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Raise this thread's nice value by `by` (Linux: a thread's own priority).
fn lower_thread_priority(by: i32) {
    if by == 0 {
        return;
    }
    // SAFETY: plain syscalls on the calling thread, no pointers.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        if libc::setpriority(libc::PRIO_PROCESS, tid, (now + by).min(19)) != 0 {
            eprintln!(
                "flood: could not lower its priority: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

async fn flood_loop(addr: SocketAddr, total: usize, stop: Arc<AtomicBool>, flood: Arc<Flood>) {
    let src = Ipv4Addr::new(127, 0, 3, 1);
    // At most 512 of its connections open at once (admitted ones hold theirs): the flood is
    // limited by how fast the agent answers or refuses, not by this tool's descriptors.
    let gate = Arc::new(tokio::sync::Semaphore::new(512));
    let mut conns = JoinSet::new();
    for _ in 0..total {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let Ok(permit) = gate.clone().acquire_owned().await else {
            break;
        };
        let (stop, flood) = (stop.clone(), flood.clone());
        conns.spawn(async move {
            let _permit = permit;
            let Ok(mut s) = connect_from(addr, src, None).await else {
                flood.refused.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let mut first = true;
            while !stop.load(Ordering::Relaxed) {
                let ok = async {
                    s.write_all(GET_HOT).await?;
                    read_response(&mut s).await
                }
                .await;
                match ok {
                    // Refused over the per-client limit, with Consul's 429.
                    Ok(r) if r.status == 429 => {
                        if first {
                            flood.refused.fetch_add(1, Ordering::Relaxed);
                        }
                        break;
                    }
                    Ok(_) => {
                        if std::mem::take(&mut first) {
                            flood.admitted.fetch_add(1, Ordering::Relaxed);
                        }
                        flood.answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        if first {
                            flood.refused.fetch_add(1, Ordering::Relaxed);
                        }
                        break;
                    }
                }
            }
        });
    }
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    conns.abort_all();
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let a = parse_args()?;
    let mut ctl = TcpStream::connect(a.addr).await?;
    ctl.set_nodelay(true)?;
    request(&mut ctl, "PUT", "/v1/kv/bench/hot", b"a small value").await?;
    let big = vec![b'x'; 512 * 1024];
    request(&mut ctl, "PUT", "/v1/kv/bench/big", &big).await?;
    drop(big);

    println!(
        "{} active clients from 127.0.0.1, {} s per phase; agent RSS {:.1} MiB",
        a.active,
        a.secs,
        rss_mib(a.pid)
    );
    active_clients(&a).await.line("baseline", "");

    if a.idle > 0 {
        let before = rss_mib(a.pid);
        let t = Instant::now();
        let idle = open_idle(&a).await;
        let opened = idle.len();
        let rss = rss_mib(a.pid);
        let extra = format!(
            "  | {opened} idle open in {:.1} s, RSS {before:.1} -> {rss:.1} MiB ({:.1} KB each)",
            t.elapsed().as_secs_f64(),
            (rss - before) * 1024.0 / opened.max(1) as f64
        );
        active_clients(&a).await.line("+ idle", &extra);
        drop(idle);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    if a.slow > 0 {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicU64::new(0));
        let before = rss_mib(a.pid);
        let mut readers = start_slow_readers(&a, stop.clone(), started.clone());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut f = active_clients(&a).await;
        let rss = rss_mib(a.pid);
        let extra = format!(
            "  | {} slow readers answering, RSS {before:.1} -> {rss:.1} MiB",
            started.load(Ordering::Relaxed)
        );
        f.line("+ slow", &extra);
        stop.store(true, Ordering::Relaxed);
        readers.abort_all();
        while readers.join_next().await.is_some() {}
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    if a.flood > 0 {
        flood_phase(&a, a.addr, "+ flood").await;
        if let Some(elsewhere) = a.flood_addr {
            // The same flood at another agent on this machine: what it costs the active
            // clients through the shared cores alone, without touching their agent.
            flood_phase(&a, elsewhere, "+ flood elsewhere").await;
        }
    }
    Ok(())
}
