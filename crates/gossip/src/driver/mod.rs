//! The driver: tokio sockets, timers and files around the sans-I/O [`Serf`] core — the only
//! layer of the crate that does I/O.
//!
//! A [`Pool`] is a cheap handle. One actor task (`actor` module) owns the [`Serf`]
//! state machine, the UDP socket and the timer; it is fed by UDP datagrams, a bounded command
//! channel and its own deadline. TCP (push/pull state exchange, memberlist's TCP ping
//! fallback, reliable user messages) is served by one accept task with a bounded number of
//! connections, each with a deadline and a size cap (`tcp` module); results go back to the
//! actor as commands. The member snapshot and keyring files are written by the `files`
//! module. Readers never wait on the actor: members, coordinates and stats are published
//! after every step.
//!
//! Owns: sockets, tasks, clocks, randomness (nonces, query ids), files. Must never: parse or
//! build protocol bytes itself (the [`wire`](crate::wire) layer frames and decodes, the
//! [`serf`](crate::serf) layer builds key query answers and snapshot records), or make
//! protocol decisions the state machines should make.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub use crate::error::PoolError;
use crate::serf::coordinate::Coordinate;
use crate::serf::keyring::{self, KeyTally};
pub use crate::serf::keyring::{KeyOp, KeyResponse};
use crate::serf::membership::default_query_timeout;
pub use crate::serf::membership::USER_EVENT_SIZE_LIMIT;
use crate::serf::membership::{Member, MemberStatus, Serf, SerfConfig, SerfEvent};
pub use crate::serf::merge::{MergeCheck, MergeFn};
use crate::serf::messages as serf_messages;
use crate::serf::snapshot;
pub use crate::serf::snapshot::{parse_snapshot, Previous};
use crate::wire::codec::WireConfig;
use crate::wire::messages::{self, AckResp};
use crate::wire::security::{Keyring, NONCE_SIZE};

mod actor;
mod files;
mod tcp;

use actor::Actor;
pub use files::{save_keyring, SnapshotFile};
use tcp::exchange;
pub use tcp::resolve;

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
            first_stats: true,
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
}
