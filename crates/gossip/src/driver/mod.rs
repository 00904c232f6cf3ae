//! The tokio driver: sockets, timers and the member snapshot file around the sans-I/O
//! [`Serf`] core. This is the only module of the crate that does I/O.
//!
//! One actor task owns the [`Serf`] state machine, the UDP socket and the timer; it is fed
//! by UDP datagrams, a bounded command channel and its own deadline. TCP (push/pull state
//! exchange, memberlist's TCP ping fallback, reliable user messages) is served by one accept
//! task with a bounded number of connections, each with a deadline and a size cap; results
//! go back to the actor as commands. Readers never wait on the actor: the member list is
//! published in a shared snapshot after every change.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{broadcast, mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;

pub use crate::error::PoolError;
use crate::serf::coordinate::Coordinate;
use crate::serf::keyring::{self, KeyTally};
pub use crate::serf::keyring::{KeyOp, KeyResponse};
use crate::serf::membership::default_query_timeout;
pub use crate::serf::membership::USER_EVENT_SIZE_LIMIT;
use crate::serf::membership::{
    Member, MemberStatus, Serf, SerfConfig, SerfEvent, SerfInput, SerfOutput,
};
pub use crate::serf::merge::{MergeCheck, MergeFn};
use crate::serf::messages as serf_messages;
use crate::serf::snapshot;
pub use crate::serf::snapshot::{parse_snapshot, Previous};
use crate::wire::codec::{SendOptions, WireConfig};
use crate::wire::framing;
use crate::wire::messages::{self, AckResp, Message};
use crate::wire::security::{self, Keyring, NONCE_SIZE};
use crate::Error;

/// Largest stream message we accept (push/pull of a very large pool fits easily).
pub const MAX_STREAM_MESSAGE: usize = 8 << 20;
/// Concurrent inbound TCP connections.
const MAX_TCP_CONNS: usize = 128;
/// Deadline of one TCP exchange (memberlist's `TCPTimeout`).
const TCP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest UDP datagram read.
const UDP_BUFFER: usize = 65_536;
/// How long a leave waits for its broadcasts to go out, per phase.
const LEAVE_DRAIN: Duration = Duration::from_secs(3);

/// How to start a [`Pool`].
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// The Serf/memberlist settings; `serf.swim.addr` is the advertised address (a port of
    /// 0 is replaced by the bound port).
    pub serf: SerfConfig,
    /// Where UDP and TCP listen (port 0 picks one free for both).
    pub bind: SocketAddr,
    /// Label, keyring and verification settings.
    pub wire: WireConfig,
    /// Member snapshot file (`<data-dir>/serf/local.snapshot`), for rejoining after a restart.
    pub snapshot: Option<PathBuf>,
    /// Rejoin the snapshot's members even after a graceful leave (`-rejoin`).
    pub rejoin_after_leave: bool,
    /// Name for logs ("lan" or "wan").
    pub pool: &'static str,
    /// Consulted before merging a remote state (Serf's merge delegate): an error refuses the
    /// whole exchange, so a join fails with it.
    pub merge_check: Option<MergeCheck>,
    /// Where keyring changes made by key queries are saved (JSON list of base64 keys,
    /// primary first).
    pub keyring_file: Option<PathBuf>,
}

/// Write a keyring file: a JSON list of base64 keys, primary first (Serf's format).
pub fn save_keyring(path: &std::path::Path, kr: &Keyring) -> std::io::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(path, keyring::keyring_file_contents(kr))
}

enum Cmd {
    Merge(messages::PushPull),
    LocalState(bool, oneshot::Sender<messages::PushPull>),
    Joined,
    UserEvent {
        name: String,
        payload: Vec<u8>,
        coalesce: bool,
    },
    ForceLeave {
        name: String,
        prune: bool,
        reply: oneshot::Sender<bool>,
    },
    SetTags(BTreeMap<String, String>),
    LeaveIntent,
    Leave,
    Pending(oneshot::Sender<(usize, usize)>),
    Query {
        name: String,
        payload: Vec<u8>,
        timeout: Duration,
        responses: mpsc::UnboundedSender<serf_messages::QueryResponse>,
        id: oneshot::Sender<u32>,
    },
    QueryDone(u32),
    /// An ack that came back over TCP (fallback ping).
    TcpAck(SocketAddr, AckResp),
    Stop,
}

struct Shared {
    cmd: mpsc::Sender<Cmd>,
    members: RwLock<Vec<Member>>,
    coordinates: RwLock<Coordinates>,
    events: broadcast::Sender<SerfEvent>,
    local_addr: SocketAddr,
    advertise: SocketAddr,
    name: String,
    wire: Arc<RwLock<WireConfig>>,
    pool: &'static str,
    shutdown: CancellationToken,
    tasks: tokio_util::task::TaskTracker,
    left: std::sync::atomic::AtomicBool,
    snapshot: Option<Arc<SnapshotFile>>,
    merge_check: Option<MergeCheck>,
    stats: Mutex<PoolStats>,
    keyring_file: Option<PathBuf>,
    gossip_interval: Duration,
}

/// Figures for `info` / `/v1/agent/self` (Serf's `Stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Member Lamport clock.
    pub member_time: u64,
    /// Event Lamport clock.
    pub event_time: u64,
    /// Query Lamport clock.
    pub query_time: u64,
    /// Lifeguard awareness (0 = healthy).
    pub health_score: i64,
    /// Broadcasts waiting to be sent.
    pub pending_broadcasts: usize,
    /// Times our coordinate was reset after becoming invalid.
    pub coordinate_resets: u64,
}

/// Our coordinate and the peers' as of the last protocol step (published like the members).
#[derive(Debug, Clone, Default)]
struct Coordinates {
    own: Option<Coordinate>,
    cache: BTreeMap<String, Coordinate>,
}

/// A running gossip pool. Cheap to clone.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Shared>,
}

/// Bind TCP and UDP on the same port (a free one when `bind` has port 0).
async fn bind_both(bind: SocketAddr) -> std::io::Result<(TcpListener, UdpSocket)> {
    if bind.port() != 0 {
        let tcp = TcpListener::bind(bind).await?;
        let udp = UdpSocket::bind(bind).await?;
        return Ok((tcp, udp));
    }
    let mut last = None;
    for _ in 0..20 {
        let tcp = TcpListener::bind(bind).await?;
        let port = tcp.local_addr()?.port();
        match UdpSocket::bind(SocketAddr::new(bind.ip(), port)).await {
            Ok(udp) => return Ok((tcp, udp)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port for TCP and UDP")))
}

fn nonce(rng: &mut impl Rng) -> [u8; NONCE_SIZE] {
    let mut n = [0u8; NONCE_SIZE];
    rng.fill(&mut n);
    n
}

impl Pool {
    /// Bind the sockets, start the actor and the TCP listener; rejoins the snapshot's
    /// members in the background.
    pub async fn start(
        mut opts: PoolOptions,
        shutdown: CancellationToken,
    ) -> std::io::Result<Pool> {
        let (tcp, udp) = bind_both(opts.bind).await?;
        let local_addr = tcp.local_addr()?;
        if opts.serf.swim.addr.port() == 0 {
            opts.serf.swim.addr.set_port(local_addr.port());
        }
        if opts.serf.swim.addr.ip().is_unspecified() {
            opts.serf.swim.addr.set_ip(local_addr.ip());
        }
        let wire = opts.wire.clone();
        // Room for the label and encryption around each packet.
        opts.serf.swim.packet_overhead = wire.packet_overhead();
        let advertise = opts.serf.swim.addr;
        let name = opts.serf.swim.name.clone();
        let now = Instant::now();
        let mut serf = Serf::new(opts.serf.clone(), now);
        let snapshot = opts
            .snapshot
            .as_ref()
            .map(|p| Arc::new(SnapshotFile::new(p.clone())));
        let mut rejoin = Vec::new();
        if let Some(s) = &snapshot {
            match s.load() {
                Ok(prev) => {
                    serf.restore_clocks(prev.clock, prev.event_clock, prev.query_clock);
                    if !prev.left || opts.rejoin_after_leave {
                        rejoin = prev
                            .alive
                            .into_iter()
                            .filter(|(n, _)| *n != name)
                            .map(|(_, a)| a)
                            .collect();
                    } else {
                        tracing::info!(target: "agent", pool = opts.pool, "ignoring previous members after a graceful leave (set -rejoin to rejoin them)");
                    }
                }
                Err(e) => {
                    tracing::warn!(target: "agent", pool = opts.pool, error = %e, "could not read the serf snapshot")
                }
            }
            s.start_fresh(&serf);
        }
        let (tx, rx) = mpsc::channel(1024);
        let (events, _) = broadcast::channel(1024);
        let inner = Arc::new(Shared {
            cmd: tx,
            members: RwLock::new(serf.members()),
            coordinates: RwLock::new(Coordinates {
                own: serf.coordinate().cloned(),
                cache: serf.cached_coordinates().clone(),
            }),
            events,
            local_addr,
            advertise,
            name,
            wire: Arc::new(RwLock::new(wire)),
            pool: opts.pool,
            shutdown: shutdown.child_token(),
            tasks: tokio_util::task::TaskTracker::new(),
            left: std::sync::atomic::AtomicBool::new(false),
            snapshot,
            merge_check: opts.merge_check.clone(),
            stats: Mutex::new(PoolStats::default()),
            keyring_file: opts.keyring_file.clone(),
            gossip_interval: opts.serf.swim.gossip_interval,
        });
        let pool = Pool { inner };
        let actor = Actor {
            serf,
            udp: Arc::new(udp),
            rx,
            pool: pool.clone(),
            rng: rand::rngs::StdRng::from_os_rng(),
            last_clocks: (0, 0, 0),
            queries: std::collections::HashMap::new(),
            coord_version: 0,
        };
        pool.inner.tasks.spawn(actor.run());
        let p = pool.clone();
        pool.inner
            .tasks
            .spawn(async move { p.accept_loop(tcp).await });
        if !rejoin.is_empty() {
            let p = pool.clone();
            pool.inner.tasks.spawn(async move {
                let addrs: Vec<String> = rejoin.iter().map(|a| a.to_string()).collect();
                match p.join(&addrs, 0).await {
                    Ok(n) => tracing::info!(target: "agent", pool = p.inner.pool, joined = n, "rejoined previously known members"),
                    Err(e) => tracing::warn!(target: "agent", pool = p.inner.pool, error = %e, "could not rejoin previously known members"),
                }
            });
        }
        Ok(pool)
    }

    /// The address UDP and TCP are bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The address we advertise to the pool.
    pub fn advertise_addr(&self) -> SocketAddr {
        self.inner.advertise
    }

    /// Our member name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Every known member (ourselves included), sorted by name.
    pub fn members(&self) -> Vec<Member> {
        self.inner.members.read().unwrap().clone()
    }

    /// Our network coordinate (None when coordinates are disabled).
    pub fn coordinate(&self) -> Option<Coordinate> {
        self.inner.coordinates.read().unwrap().own.clone()
    }

    /// The coordinate `name` last sent us in an ack (ours for our own name, once we measured
    /// anything) — Serf's `GetCachedCoordinate`.
    pub fn cached_coordinate(&self, name: &str) -> Option<Coordinate> {
        self.inner
            .coordinates
            .read()
            .unwrap()
            .cache
            .get(name)
            .cloned()
    }

    /// Every cached coordinate by member name.
    pub fn cached_coordinates(&self) -> BTreeMap<String, Coordinate> {
        self.inner.coordinates.read().unwrap().cache.clone()
    }

    /// Clocks and health, as of the last protocol step.
    pub fn stats(&self) -> PoolStats {
        *self.inner.stats.lock().unwrap()
    }

    /// Membership and user events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SerfEvent> {
        self.inner.events.subscribe()
    }

    /// The keyring, if encryption is configured.
    pub fn keyring(&self) -> Option<Keyring> {
        self.inner.wire.read().unwrap().keyring.clone()
    }

    /// Replace the keyring (install/use/remove a key); packets use it at once.
    pub fn set_keyring(&self, k: Keyring) {
        self.inner.wire.write().unwrap().keyring = Some(k);
    }

    async fn send(&self, c: Cmd) -> Result<(), PoolError> {
        self.inner
            .cmd
            .send(c)
            .await
            .map_err(|_| PoolError::ShutDown)
    }

    /// Join the pool through `addrs` (`host`, `ip`, `ip:port`; `default_port` when none is
    /// given, or our own port for 0). Returns how many were contacted.
    pub async fn join(&self, addrs: &[String], default_port: u16) -> Result<usize, PoolError> {
        let port = if default_port == 0 {
            self.inner.local_addr.port()
        } else {
            default_port
        };
        let mut set = tokio::task::JoinSet::new();
        let mut errors = Vec::new();
        for a in addrs {
            let resolved = match resolve(a, port).await {
                Ok(r) => r,
                Err(e) => {
                    errors.push(format!("{a}: {e}"));
                    continue;
                }
            };
            for to in resolved {
                let p = self.clone();
                set.spawn(async move { (to, p.push_pull(to, true).await) });
            }
        }
        let mut n = 0;
        while let Some(r) = set.join_next().await {
            match r {
                Ok((_, Ok(()))) => n += 1,
                Ok((to, Err(e))) => errors.push(format!("{to}: {e}")),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if n == 0 {
            return Err(if errors.is_empty() {
                PoolError::NothingToJoin
            } else {
                PoolError::Join(errors)
            });
        }
        self.send(Cmd::Joined).await?;
        Ok(n)
    }

    /// One push/pull exchange with `to`, merged into our state.
    async fn push_pull(&self, to: SocketAddr, join: bool) -> Result<(), PoolError> {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::LocalState(join, tx)).await?;
        let local = rx.await.map_err(|_| PoolError::ShutDown)?;
        let wire = self.inner.wire.read().unwrap().clone();
        let remote = tokio::time::timeout(TCP_TIMEOUT, exchange(to, local, &wire))
            .await
            .map_err(|_| PoolError::Timeout)??;
        self.check_merge(&remote)?;
        self.send(Cmd::Merge(remote)).await
    }

    /// Run the merge check over a remote state.
    fn check_merge(&self, pp: &messages::PushPull) -> Result<(), PoolError> {
        match &self.inner.merge_check {
            Some(check) => Ok(check.check(pp, &self.members())?),
            None => Ok(()),
        }
    }

    /// Fire a user event. Like Serf, name plus payload may not exceed
    /// [`USER_EVENT_SIZE_LIMIT`] bytes.
    pub async fn user_event(
        &self,
        name: String,
        payload: Vec<u8>,
        coalesce: bool,
    ) -> Result<(), PoolError> {
        let size = name.len() + payload.len();
        if size > USER_EVENT_SIZE_LIMIT {
            return Err(PoolError::UserEventTooLarge);
        }
        self.send(Cmd::UserEvent {
            name,
            payload,
            coalesce,
        })
        .await
    }

    /// Mark a failed member as left (`force-leave`); `prune` forgets it at once. False when
    /// no such member exists.
    pub async fn force_leave(&self, name: &str, prune: bool) -> Result<bool, PoolError> {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::ForceLeave {
            name: name.to_string(),
            prune,
            reply: tx,
        })
        .await?;
        rx.await.map_err(|_| PoolError::ShutDown)
    }

    /// Run a keyring operation on every member (Serf's key manager): a query that each
    /// member answers with its result (and, for `List`, its keys). Waits until every alive
    /// member answered or the query timeout passed.
    pub async fn key_operation(&self, op: KeyOp, key: &str) -> Result<KeyResponse, PoolError> {
        let payload = keyring::encode_key_request(op, key).map_err(PoolError::InvalidKey)?;
        let alive = self
            .members()
            .iter()
            .filter(|m| m.status == MemberStatus::Alive)
            .count();
        let timeout = default_query_timeout(self.inner.gossip_interval, alive);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (idtx, idrx) = oneshot::channel();
        self.send(Cmd::Query {
            name: op.query_name().to_string(),
            payload,
            timeout,
            responses: tx,
            id: idtx,
        })
        .await?;
        let id = idrx.await.map_err(|_| PoolError::ShutDown)?;
        let mut tally = KeyTally::new(alive);
        let deadline = tokio::time::Instant::now() + timeout;
        while !tally.is_complete() {
            let r = tokio::select! {
                r = rx.recv() => r,
                _ = tokio::time::sleep_until(deadline) => None,
            };
            let Some(r) = r else { break };
            tally.add(r);
        }
        let _ = self.send(Cmd::QueryDone(id)).await;
        Ok(tally.finish())
    }

    /// Replace our tags (broadcast with a new incarnation).
    pub async fn set_tags(&self, tags: BTreeMap<String, String>) -> Result<(), PoolError> {
        self.send(Cmd::SetTags(tags)).await
    }

    async fn wait_drained(&self) {
        let deadline = tokio::time::Instant::now() + LEAVE_DRAIN;
        while tokio::time::Instant::now() < deadline {
            let (tx, rx) = oneshot::channel();
            if self.send(Cmd::Pending(tx)).await.is_err() {
                return;
            }
            match rx.await {
                Ok((pending, peers)) if pending > 0 && peers > 0 => {}
                _ => return,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Leave gracefully: announce the intent, then memberlist's dead-from-self, waiting for
    /// each to spread; then stop. Idempotent.
    pub async fn leave(&self) {
        if self
            .inner
            .left
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        if self.send(Cmd::LeaveIntent).await.is_err() {
            return;
        }
        self.wait_drained().await;
        if self.send(Cmd::Leave).await.is_err() {
            return;
        }
        self.wait_drained().await;
        if let Some(s) = &self.inner.snapshot {
            s.append(&[snapshot::Record::Leave]);
        }
        self.shutdown().await;
    }

    /// Stop without leaving (others will see us fail).
    pub async fn shutdown(&self) {
        let _ = self.inner.cmd.try_send(Cmd::Stop);
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    async fn accept_loop(self, tcp: TcpListener) {
        let limit = Arc::new(Semaphore::new(MAX_TCP_CONNS));
        loop {
            let (stream, from) = tokio::select! {
                _ = self.inner.shutdown.cancelled() => return,
                r = tcp.accept() => match r {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(target: "agent", error = %e, "gossip accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                tracing::warn!(target: "agent", pool = self.inner.pool, %from, "too many gossip TCP connections; dropping one");
                continue;
            };
            let p = self.clone();
            self.inner.tasks.spawn(async move {
                let _permit = permit;
                let r = tokio::select! {
                    r = tokio::time::timeout(TCP_TIMEOUT, p.serve_stream(stream)) => r,
                    _ = p.inner.shutdown.cancelled() => return,
                };
                match r {
                    Ok(Err(e)) => tracing::warn!(target: "agent", pool = p.inner.pool, %from, error = %e, "memberlist: failed to handle stream"),
                    Err(_) => tracing::debug!(target: "agent", %from, "gossip stream timed out"),
                    Ok(Ok(())) => {}
                }
            });
        }
    }

    async fn serve_stream(&self, mut stream: TcpStream) -> Result<(), PoolError> {
        let wire = self.inner.wire.read().unwrap().clone();
        let mut buf = Vec::new();
        read_label(&mut stream, &mut buf, &wire).await?;
        let msg = read_message(&mut stream, &mut buf, &wire).await?;
        for m in msg.flatten() {
            match m {
                Message::PushPull(remote) => {
                    let (tx, rx) = oneshot::channel();
                    self.send(Cmd::LocalState(remote.join, tx)).await?;
                    let local = rx.await.map_err(|_| PoolError::ShutDown)?;
                    write_message(&mut stream, &Message::PushPull(local), &wire, true).await?;
                    self.check_merge(&remote)?;
                    self.send(Cmd::Merge(remote)).await?;
                }
                Message::Ping(p) => {
                    if !p.node.is_empty() && p.node != self.inner.name {
                        return Err(PoolError::UnexpectedPing(p.node));
                    }
                    let ack = Message::Ack(AckResp {
                        seq_no: p.seq_no,
                        payload: Vec::new(),
                    });
                    write_message(&mut stream, &ack, &wire, false).await?;
                }
                Message::User(_) => {
                    // Reliable user messages carry Serf messages; nothing we act on.
                }
                other => return Err(PoolError::UnexpectedMessage(other.message_type())),
            }
        }
        Ok(())
    }
}

/// Read the optional label header at the start of a connection and check it.
async fn read_label(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    wire: &WireConfig,
) -> Result<(), PoolError> {
    let need = loop {
        if let Some(n) = framing::label_header_len(buf) {
            break n;
        }
        let more = buf.len() + 1;
        fill(stream, buf, more).await?;
    };
    fill(stream, buf, need).await?;
    let rest_len = wire.accept_stream(&buf[..need])?.len();
    debug_assert_eq!(rest_len, 0);
    buf.drain(..need);
    Ok(())
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, n: usize) -> Result<(), PoolError> {
    let mut chunk = [0u8; 16 * 1024];
    while buf.len() < n {
        let k = stream.read(&mut chunk).await?;
        if k == 0 {
            return Err(PoolError::Eof);
        }
        buf.extend_from_slice(&chunk[..k]);
    }
    Ok(())
}

/// Read one stream message, reading more while it is incomplete (bounded).
async fn read_message(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    wire: &WireConfig,
) -> Result<Message, PoolError> {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        if !buf.is_empty() {
            match wire.decode_stream(buf) {
                Ok((m, used)) => {
                    buf.drain(..used);
                    if let Message::Err(e) = &m {
                        return Err(PoolError::Remote(e.error.clone()));
                    }
                    return Ok(m);
                }
                Err(Error::Truncated(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let announced = security::announced_stream_len(buf).unwrap_or(0);
        if buf.len() >= MAX_STREAM_MESSAGE || announced > MAX_STREAM_MESSAGE {
            return Err(PoolError::TooLarge);
        }
        let k = stream.read(&mut chunk).await?;
        if k == 0 {
            return Err(PoolError::Eof);
        }
        buf.extend_from_slice(&chunk[..k]);
    }
}

async fn write_message(
    stream: &mut TcpStream,
    m: &Message,
    wire: &WireConfig,
    compress: bool,
) -> Result<(), PoolError> {
    let n = nonce(&mut rand::rng());
    let bytes = wire.encode_stream(m, compress, n)?;
    stream.write_all(&bytes).await?;
    Ok(stream.flush().await?)
}

/// memberlist's TCP fallback probe: send a ping as a stream message, read the ack.
async fn tcp_ping(to: SocketAddr, ping: messages::Ping, pool: &Pool) -> Result<AckResp, PoolError> {
    let wire = pool.inner.wire.read().unwrap().clone();
    let mut stream = TcpStream::connect(to).await?;
    let mut out = wire.stream_prelude()?;
    let n = nonce(&mut rand::rng());
    out.extend(wire.encode_stream(&Message::Ping(ping), false, n)?);
    stream.write_all(&out).await?;
    let mut buf = Vec::new();
    let msg = read_message(&mut stream, &mut buf, &wire).await?;
    msg.flatten()
        .into_iter()
        .find_map(|m| match m {
            Message::Ack(a) => Some(a),
            _ => None,
        })
        .ok_or(PoolError::NoAck)
}

/// Outbound push/pull: connect, send our state, read theirs.
async fn exchange(
    to: SocketAddr,
    local: messages::PushPull,
    wire: &WireConfig,
) -> Result<messages::PushPull, PoolError> {
    let mut stream = TcpStream::connect(to).await?;
    let mut out = wire.stream_prelude()?;
    let n = nonce(&mut rand::rng());
    out.extend(wire.encode_stream(&Message::PushPull(local), true, n)?);
    stream.write_all(&out).await?;
    let mut buf = Vec::new();
    let msg = read_message(&mut stream, &mut buf, wire).await?;
    msg.flatten()
        .into_iter()
        .find_map(|m| match m {
            Message::PushPull(pp) => Some(pp),
            _ => None,
        })
        .ok_or(PoolError::NoRemoteState)
}

/// `host`, `ip`, `ip:port`, `[v6]:port`, `host:port` → socket addresses.
pub async fn resolve(s: &str, default_port: u16) -> Result<Vec<SocketAddr>, PoolError> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(vec![a]);
    }
    if let Ok(ip) = s.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, default_port)]);
    }
    let target = if s.contains(':') {
        s.to_string()
    } else {
        format!("{s}:{default_port}")
    };
    let v: Vec<SocketAddr> = tokio::net::lookup_host(target).await?.collect();
    if v.is_empty() {
        return Err(PoolError::NoAddresses);
    }
    Ok(v)
}

struct Actor {
    serf: Serf,
    udp: Arc<UdpSocket>,
    rx: mpsc::Receiver<Cmd>,
    pool: Pool,
    rng: rand::rngs::StdRng,
    last_clocks: (u64, u64, u64),
    /// Our queries in flight: id → where their responses go.
    queries: std::collections::HashMap<u32, mpsc::UnboundedSender<serf_messages::QueryResponse>>,
    /// The coordinate version last published.
    coord_version: u64,
}

impl Actor {
    async fn run(mut self) {
        let mut buf = vec![0u8; UDP_BUFFER];
        let shutdown = self.pool.inner.shutdown.clone();
        let mut clock_tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            let deadline = tokio::time::Instant::from_std(self.serf.next_deadline());
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = self.udp.recv_from(&mut buf) => {
                    let Ok((n, from)) = r else { continue };
                    let decoded = self.pool.inner.wire.read().unwrap().decode_packet(&buf[..n]);
                    match decoded {
                        Ok(msg) => {
                            let now = Instant::now();
                            self.step(SerfInput::Packet { from, msg, now }).await;
                        }
                        Err(e) => tracing::debug!(target: "agent", pool = self.pool.inner.pool, %from, error = %e, "memberlist: dropped packet"),
                    }
                }
                c = self.rx.recv() => {
                    let Some(c) = c else { break };
                    if !self.command(c).await { break; }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    self.step(SerfInput::Tick(Instant::now())).await;
                }
                _ = clock_tick.tick() => self.save_clocks(),
            }
        }
        self.save_clocks();
    }

    fn save_clocks(&mut self) {
        let c = self.serf.clocks();
        if c != self.last_clocks {
            self.last_clocks = c;
            if let Some(s) = &self.pool.inner.snapshot {
                s.append(&snapshot::Record::clocks(c));
            }
        }
    }

    async fn command(&mut self, c: Cmd) -> bool {
        let now = Instant::now();
        match c {
            Cmd::Merge(pp) => self.step(SerfInput::PushPull(pp, now)).await,
            Cmd::LocalState(join, tx) => {
                let _ = tx.send(self.serf.local_state(join));
            }
            Cmd::Joined => self.step(SerfInput::Joined(now)).await,
            Cmd::UserEvent {
                name,
                payload,
                coalesce,
            } => {
                self.step(SerfInput::UserEvent {
                    name,
                    payload,
                    coalesce,
                })
                .await
            }
            Cmd::ForceLeave { name, prune, reply } => {
                let known = self.serf.members().iter().any(|m| m.name == name);
                if known {
                    self.step(SerfInput::ForceLeave { name, prune, now }).await;
                }
                let _ = reply.send(known);
            }
            Cmd::SetTags(t) => self.step(SerfInput::SetTags(t, now)).await,
            Cmd::LeaveIntent => self.step(SerfInput::LeaveIntent(now)).await,
            Cmd::Leave => self.step(SerfInput::Leave(now)).await,
            Cmd::Pending(tx) => {
                let peers = self
                    .serf
                    .members()
                    .iter()
                    .filter(|m| m.name != self.serf.name() && m.status == MemberStatus::Alive)
                    .count();
                let _ = tx.send((self.serf.swim().pending_broadcasts(), peers));
            }
            Cmd::Query {
                name,
                payload,
                timeout,
                responses,
                id,
            } => {
                let qid: u32 = self.rng.random();
                self.queries.insert(qid, responses);
                let _ = id.send(qid);
                let reply_to = self.pool.inner.advertise;
                self.step(SerfInput::Query {
                    name,
                    payload,
                    id: qid,
                    reply_to,
                    timeout,
                })
                .await;
            }
            Cmd::QueryDone(id) => {
                self.queries.remove(&id);
            }
            Cmd::TcpAck(from, ack) => {
                let msg = Message::Ack(ack);
                self.step(SerfInput::Packet { from, msg, now }).await
            }
            Cmd::Stop => return false,
        }
        true
    }

    /// Execute a keyring query on our keyring, save a changed keyring, and answer it (Serf's
    /// `serfQueries`).
    async fn answer_key_query(&mut self, q: serf_messages::Query, reply_to: SocketAddr) {
        let answer = {
            let mut wire = self.pool.inner.wire.write().unwrap();
            let mut answer = keyring::execute(&q.name, &q.payload, wire.keyring.as_mut());
            if answer.result && keyring::changes_keyring(&q.name) {
                tracing::info!(target: "agent", pool = self.pool.inner.pool, "serf: Received {} query", q.name.trim_start_matches("_serf_"));
                if let (Some(f), Some(kr)) = (&self.pool.inner.keyring_file, &wire.keyring) {
                    if let Err(e) = save_keyring(f, kr) {
                        answer.result = false;
                        answer.message = e.to_string();
                    }
                }
            }
            answer
        };
        let resp = keyring::response_to(&q, self.serf.name(), &answer);
        let msg = serf_messages::SerfMessage::QueryResponse(resp);
        self.send_packet(reply_to, &Message::User(msg.encode()))
            .await;
    }

    async fn step(&mut self, input: SerfInput) {
        let outs = self.serf.handle(input, &mut || self.rng.random());
        let mut changed = false;
        for o in outs {
            match o {
                SerfOutput::Send { to, msg } => self.send_packet(to, &msg).await,
                SerfOutput::PushPull { to, join } => {
                    let p = self.pool.clone();
                    self.pool.inner.tasks.spawn(async move {
                        if let Err(e) = p.push_pull(to, join).await {
                            tracing::debug!(target: "agent", pool = p.inner.pool, %to, error = %e, "memberlist: push/pull failed");
                        }
                    });
                }
                SerfOutput::TcpPing { to, ping, deadline } => {
                    let p = self.pool.clone();
                    self.pool.inner.tasks.spawn(async move {
                        let deadline = tokio::time::Instant::from_std(deadline);
                        let seq = ping.seq_no;
                        match tokio::time::timeout_at(deadline, tcp_ping(to, ping, &p)).await {
                            Ok(Ok(ack)) if ack.seq_no == seq => {
                                tracing::warn!(target: "agent", pool = p.inner.pool, %to, "memberlist: was able to connect over TCP but UDP probes failed, network may be misconfigured");
                                let _ = p.send(Cmd::TcpAck(to, ack)).await;
                            }
                            _ => {}
                        }
                    });
                }
                SerfOutput::KeyQuery { query, reply_to } => {
                    Box::pin(self.answer_key_query(query, reply_to)).await
                }
                SerfOutput::QueryResponse(r) => {
                    if let Some(tx) = self.queries.get(&r.id) {
                        let _ = tx.send(r);
                    }
                }
                SerfOutput::Event(ev) => {
                    changed = true;
                    self.log_event(&ev);
                    let _ = self.pool.inner.events.send(ev);
                }
            }
        }
        if changed {
            *self.pool.inner.members.write().unwrap() = self.serf.members();
        }
        if self.serf.coordinate_version() != self.coord_version {
            self.coord_version = self.serf.coordinate_version();
            *self.pool.inner.coordinates.write().unwrap() = Coordinates {
                own: self.serf.coordinate().cloned(),
                cache: self.serf.cached_coordinates().clone(),
            };
        }
        let (member_time, event_time, query_time) = self.serf.clocks();
        *self.pool.inner.stats.lock().unwrap() = PoolStats {
            member_time,
            event_time,
            query_time,
            health_score: self.serf.swim().awareness(),
            pending_broadcasts: self.serf.swim().pending_broadcasts(),
            coordinate_resets: self.serf.coordinate_resets(),
        };
    }

    fn log_event(&self, ev: &SerfEvent) {
        let pool = self.pool.inner.pool;
        match ev {
            SerfEvent::Join(m) => {
                tracing::info!(target: "agent", pool, "serf: EventMemberJoin: {} {}", m.name, m.addr.ip());
            }
            SerfEvent::Leave(m) => {
                tracing::info!(target: "agent", pool, "serf: EventMemberLeave: {} {}", m.name, m.addr.ip());
            }
            SerfEvent::Failed(m) => {
                tracing::info!(target: "agent", pool, "serf: EventMemberFailed: {} {}", m.name, m.addr.ip());
            }
            SerfEvent::Update(m) => {
                tracing::info!(target: "agent", pool, "serf: EventMemberUpdate: {}", m.name)
            }
            SerfEvent::Reap(m) => {
                tracing::info!(target: "agent", pool, "serf: EventMemberReap: {}", m.name)
            }
            SerfEvent::User { name, ltime, .. } => {
                tracing::debug!(target: "agent", pool, "serf: EventUser: {name} (ltime {ltime})")
            }
        }
        if let (Some(s), Some(r)) = (&self.pool.inner.snapshot, snapshot::Record::for_event(ev)) {
            s.append(&[r]);
        }
    }

    async fn send_packet(&mut self, to: SocketAddr, msg: &Message) {
        let Ok(bytes) = msg.encode_packet() else {
            return;
        };
        let n = nonce(&mut self.rng);
        let framed =
            self.pool
                .inner
                .wire
                .read()
                .unwrap()
                .encode_packet(&bytes, SendOptions::default(), n);
        match framed {
            Ok(b) => {
                if let Err(e) = self.udp.send_to(&b, to).await {
                    tracing::debug!(target: "agent", %to, error = %e, "memberlist: failed to send packet");
                }
            }
            Err(e) => {
                tracing::warn!(target: "agent", error = %e, "memberlist: failed to encode packet")
            }
        }
    }
}

/// Serf's member snapshot file: the log of [`snapshot::Record`]s, compacted at start and
/// appended to as members come and go. The format is [`crate::serf::snapshot`]'s; this only
/// reads, writes and appends.
pub struct SnapshotFile {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
}

impl SnapshotFile {
    /// A snapshot at `path` (created on first write).
    pub fn new(path: PathBuf) -> Self {
        SnapshotFile {
            path,
            file: Mutex::new(None),
        }
    }

    /// Replay the file.
    pub fn load(&self) -> std::io::Result<Previous> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Previous::default()),
            Err(e) => return Err(e),
        };
        Ok(parse_snapshot(&text))
    }

    /// Rewrite the file with the current state (compaction) and keep it open for appends.
    fn start_fresh(&self, serf: &Serf) {
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = self.path.with_extension("tmp");
        let prev = self.load().unwrap_or_default();
        let text = snapshot::compact(&prev, &serf.members(), serf.name(), serf.clocks());
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, &self.path);
        }
        *self.file.lock().unwrap() = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.path)
            .ok();
    }

    fn append(&self, records: &[snapshot::Record]) {
        use std::io::Write;
        if let Some(f) = self.file.lock().unwrap().as_mut() {
            let _ = f.write_all(snapshot::encode(records).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolve_forms() {
        assert_eq!(
            resolve("127.0.0.5", 8301).await.unwrap(),
            vec!["127.0.0.5:8301".parse().unwrap()]
        );
        assert_eq!(
            resolve("127.0.0.5:9", 8301).await.unwrap(),
            vec!["127.0.0.5:9".parse().unwrap()]
        );
        assert_eq!(
            resolve("[::1]", 8301).await.unwrap(),
            vec!["[::1]:8301".parse().unwrap()]
        );
        assert!(resolve("no-such-host.invalid", 1).await.is_err());
    }
}
