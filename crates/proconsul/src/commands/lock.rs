//! `lock [-n=N] prefix child...`: run a child process while holding Consul's lock (`-n=1`) or a
//! slot of Consul's semaphore (`-n>1`) at `prefix`, with the same KV layout and flags as
//! Consul's Go client, so proconsul and Consul contenders can share a prefix.
//!
//! - **Lock**: a TTL session (15 s, renewed every TTL/2) acquires `<prefix>/.lock` with
//!   `?acquire=` and flags `0x2ddccbc058a50c18`. Contenders block on the key's index; a refused
//!   acquire with no holder means a lock-delay is running, retried every 5 s.
//! - **Semaphore**: each contender holds `<prefix>/<session>` (session behavior `delete`), and
//!   `<prefix>/.lock` holds `{"Limit":N,"Holders":{session:true}}`, updated with CAS; holders
//!   whose contender key is gone are pruned. Flags `0xe0f69a2baa414de0`.
//!
//! The child starts only once the lock is held. A monitor blocks on the lock and reports its
//! loss (tolerating `-monitor-retry` transient errors, 1 s apart); the child then gets SIGTERM
//! and, 5 s later, SIGKILL. On every exit path the lock is released, the session destroyed and
//! an unused lock key removed. Exit codes: 0, 1 on errors, 2 with `-child-exit-code` when the
//! child failed.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use proconsul_api::{Client, KvEntry, KvWrite, QueryOptions, SessionRequest};
use serde::{Deserialize, Serialize};

use super::{client, parse_flags};
use crate::flags::{self, Flag, Kind, CLIENT_FLAGS, SERVER_FLAGS};
use crate::process;
use crate::ui;

/// Flags marking a key as a lock (Consul's `LockFlagValue`).
pub const LOCK_FLAG: u64 = 0x2ddc_cbc0_58a5_0c18;
/// Flags marking a key as part of a semaphore (Consul's `SemaphoreFlagValue`).
pub const SEMAPHORE_FLAG: u64 = 0xe0f6_9a2b_aa41_4de0;
/// The coordination key inside the prefix (Consul's `DefaultSemaphoreKey`).
const LOCK_KEY: &str = ".lock";
const SESSION_TTL: Duration = Duration::from_secs(15);
/// How long one blocking read waits while contending.
const WAIT_TIME: Duration = Duration::from_secs(15);
/// Pause after an acquire refused by a lock-delay.
const RETRY_TIME: Duration = Duration::from_secs(5);
/// Time between SIGTERM and SIGKILL for a child that lost its lock.
const KILL_GRACE: Duration = Duration::from_secs(5);
const MONITOR_RETRY_TIME: Duration = Duration::from_secs(1);

const FLAGS: &[Flag] = &[
    Flag::boolean(
        "child-exit-code",
        "Exit 2 if the child process exited with an error if this is true, otherwise this \
         doesn't propagate an error from the child. The default value is false.",
    ),
    Flag::new(
        "monitor-retry",
        Kind::Int,
        "int",
        "Number of times to retry if Consul returns a 500 error while monitoring the lock. \
         This allows riding out brief periods of unavailability without causing leader \
         elections, but increases the amount of time required to detect a lost lock in some \
         cases. The default value is 3, with a 1s wait between retries. Set this value to 0 to \
         disable retires.",
    ),
    Flag::new(
        "n",
        Kind::Int,
        "int",
        "Optional limit on the number of concurrent lock holders. The underlying \
         implementation switches from a lock to a semaphore when the value is greater than 1. \
         The default value is 1.",
    ),
    Flag::string(
        "name",
        "Optional name to associate with the lock session. It not provided, one is generated \
         based on the provided child command.",
    ),
    Flag::boolean("pass-stdin", "Pass stdin to the child process."),
    Flag::boolean(
        "shell",
        "Use a shell to run the command (can set a custom shell via the SHELL environment \
         variable).",
    ),
    Flag::new(
        "timeout",
        Kind::Str,
        "duration",
        "Maximum amount of time to wait to acquire the lock, specified as a duration like \
         \"1s\" or \"3h\". The default value is 0.",
    ),
    Flag::new(
        "try",
        Kind::Str,
        "duration",
        "DEPRECATED. Use -timeout instead.",
    ),
    Flag::boolean("verbose", "Enable verbose (debugging) output."),
];

fn all_flags() -> Vec<Flag> {
    flags::with(FLAGS, &[CLIENT_FLAGS, SERVER_FLAGS])
}

pub fn help() -> String {
    flags::usage(
        "
Usage: proconsul lock [options] prefix child...

  Acquires a lock or semaphore at a given path, and invokes a child process
  when successful. The child process can assume the lock is held while it
  executes. If the lock is lost or communication is disrupted the child
  process will be sent a SIGTERM signal and given time to gracefully exit.
  After the grace period expires the process will be hard terminated.

  For Consul agents on Windows, the child process is always hard terminated
  with a SIGKILL, since Windows has no POSIX compatible notion for SIGTERM.

  When -n=1, only a single lock holder or leader exists providing mutual
  exclusion. Setting a higher value switches to a semaphore allowing multiple
  holders to coordinate.

  The prefix provided must have write privileges.
",
        &all_flags(),
    )
}

/// Go's `path.Join(prefix, name)` for the keys used here.
fn join(prefix: &str, name: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

/// Worth retrying while monitoring (the Go client's `IsRetryableError`): no answer, or a 500.
fn retryable(e: &proconsul_api::Error) -> bool {
    e.is_transport() || e.status() == Some(500)
}

/// Why the cleanup of a lock key did not happen.
#[derive(Debug, PartialEq, Eq)]
pub enum CleanupError {
    /// Someone else holds or waits on it (not an error for the command).
    InUse,
    Other(String),
}

/// The value of a semaphore's `.lock` key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SemaphoreLock {
    pub limit: i64,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub holders: BTreeMap<String, bool>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, bool>, D::Error> {
    Ok(Option::deserialize(d)?.unwrap_or_default())
}

impl SemaphoreLock {
    /// Decode a `.lock` entry; a missing entry or value is an empty lock with our limit.
    pub fn decode(entry: Option<&KvEntry>, limit: i64) -> Result<SemaphoreLock, String> {
        match entry.and_then(|e| e.value.as_deref()) {
            None => Ok(SemaphoreLock {
                limit,
                holders: BTreeMap::new(),
            }),
            Some(v) => serde_json::from_slice(v).map_err(|e| format!("lock decoding failed: {e}")),
        }
    }

    /// Drop holders whose session no longer holds any key under the prefix.
    pub fn prune(&mut self, pairs: &[KvEntry]) {
        let alive: Vec<&str> = pairs
            .iter()
            .filter_map(|p| p.session.as_deref())
            .filter(|s| !s.is_empty())
            .collect();
        self.holders.retain(|h, _| alive.contains(&h.as_str()));
    }
}

/// A lock or a semaphore at a prefix.
#[derive(Debug, Clone)]
pub enum Locker {
    Lock { key: String },
    Semaphore { prefix: String, limit: i64 },
}

fn session_of(e: &KvEntry) -> &str {
    e.session.as_deref().unwrap_or_default()
}

impl Locker {
    fn session_behavior(&self) -> &'static str {
        match self {
            Locker::Lock { .. } => "",
            Locker::Semaphore { .. } => "delete",
        }
    }

    /// Contend until held (`Ok(true)`), until `timeout` ran out (`Ok(false)`), or an error.
    pub fn acquire(
        &self,
        c: &Client,
        session: &str,
        timeout: Option<Duration>,
    ) -> Result<bool, String> {
        if let Locker::Semaphore { prefix, .. } = self {
            let made = c
                .kv_put(
                    &join(prefix, session),
                    b"",
                    &KvWrite {
                        flags: SEMAPHORE_FLAG,
                        acquire: Some(session.to_string()),
                        ..KvWrite::default()
                    },
                )
                .map_err(|e| format!("failed to make contender entry: {e}"))?;
            if !made {
                return Err("failed to make contender entry: <nil>".into());
            }
        }
        let start = Instant::now();
        let mut attempts = 0;
        let mut wait_index = 0;
        loop {
            let mut wait = timeout.unwrap_or(WAIT_TIME);
            if let Some(limit) = timeout {
                if attempts > 0 {
                    let elapsed = start.elapsed();
                    if elapsed > limit {
                        return Ok(false);
                    }
                    wait = limit - elapsed;
                }
            }
            attempts += 1;
            let opts = QueryOptions {
                wait_index,
                wait_time: Some(wait),
                ..QueryOptions::default()
            };
            match self {
                Locker::Lock { key } => {
                    let (pair, meta) = c
                        .kv_get(key, &opts)
                        .map_err(|e| format!("failed to read lock: {e}"))?;
                    if let Some(p) = &pair {
                        if p.flags != LOCK_FLAG {
                            return Err("Existing key does not match lock use".into());
                        }
                        if session_of(p) == session {
                            return Ok(true);
                        }
                        if !session_of(p).is_empty() {
                            wait_index = meta.last_index;
                            continue;
                        }
                    }
                    let locked = c
                        .kv_put(
                            key,
                            b"",
                            &KvWrite {
                                flags: LOCK_FLAG,
                                acquire: Some(session.to_string()),
                                ..KvWrite::default()
                            },
                        )
                        .map_err(|e| format!("failed to acquire lock: {e}"))?;
                    if locked {
                        return Ok(true);
                    }
                    // Refused: either someone was faster (block on them) or a lock-delay is
                    // running (wait it out).
                    let (pair, meta) = c
                        .kv_get(key, &QueryOptions::default())
                        .map_err(|e| format!("failed to read lock: {e}"))?;
                    if pair.as_ref().is_some_and(|p| !session_of(p).is_empty()) {
                        wait_index = meta.last_index;
                    } else {
                        wait_index = 0;
                        std::thread::sleep(RETRY_TIME);
                    }
                }
                Locker::Semaphore { prefix, limit } => {
                    let (pairs, meta) = c
                        .kv_list(prefix, &opts)
                        .map_err(|e| format!("failed to read prefix: {e}"))?;
                    let lock_key = join(prefix, LOCK_KEY);
                    let lock_pair = pairs.iter().find(|p| p.key == lock_key);
                    if lock_pair.is_some_and(|p| p.flags != SEMAPHORE_FLAG) {
                        return Err("Existing key does not match semaphore use".into());
                    }
                    let mut lock = SemaphoreLock::decode(lock_pair, *limit)?;
                    if lock.limit != *limit {
                        return Err(format!(
                            "semaphore limit conflict (lock: {}, local: {limit})",
                            lock.limit
                        ));
                    }
                    lock.prune(&pairs);
                    if lock.holders.len() as i64 >= lock.limit {
                        wait_index = meta.last_index;
                        continue;
                    }
                    lock.holders.insert(session.to_string(), true);
                    let ok = c
                        .kv_put(
                            &lock_key,
                            &serde_json::to_vec(&lock).unwrap_or_default(),
                            &KvWrite {
                                flags: SEMAPHORE_FLAG,
                                cas: Some(lock_pair.map(|p| p.modify_index).unwrap_or(0)),
                                ..KvWrite::default()
                            },
                        )
                        .map_err(|e| format!("failed to update lock: {e}"))?;
                    if ok {
                        return Ok(true);
                    }
                    // Lost a race with another contender: read again at once.
                    wait_index = 0;
                }
            }
        }
    }

    /// Is `session` still the holder, according to one (blocking) read? Returns the index to
    /// block on next.
    fn still_held(
        &self,
        c: &Client,
        session: &str,
        wait_index: u64,
    ) -> proconsul_api::Result<(bool, u64)> {
        let opts = QueryOptions {
            consistent: true,
            wait_index,
            ..QueryOptions::default()
        };
        match self {
            Locker::Lock { key } => {
                let (pair, meta) = c.kv_get(key, &opts)?;
                let held = pair.is_some_and(|p| session_of(&p) == session);
                Ok((held, meta.last_index))
            }
            Locker::Semaphore { prefix, limit } => {
                let (pairs, meta) = c.kv_list(prefix, &opts)?;
                let lock_key = join(prefix, LOCK_KEY);
                let held =
                    match SemaphoreLock::decode(pairs.iter().find(|p| p.key == lock_key), *limit) {
                        Ok(mut lock) => {
                            lock.prune(&pairs);
                            lock.holders.contains_key(session)
                        }
                        Err(_) => false,
                    };
                Ok((held, meta.last_index))
            }
        }
    }

    /// Block until the lock is lost; up to `retries` transient errors in a row are ridden out.
    pub fn monitor(&self, c: &Client, session: &str, retries: u32) {
        let mut wait_index = 0;
        let mut left = retries;
        loop {
            match self.still_held(c, session, wait_index) {
                Ok((true, index)) => {
                    wait_index = index;
                    left = retries;
                }
                Ok((false, _)) => return,
                Err(e) if left > 0 && retryable(&e) => {
                    std::thread::sleep(MONITOR_RETRY_TIME);
                    left -= 1;
                    wait_index = 0;
                }
                Err(_) => return,
            }
        }
    }

    /// Give up the lock or our semaphore slot.
    pub fn release(&self, c: &Client, session: &str) -> Result<(), String> {
        match self {
            Locker::Lock { key } => {
                c.kv_put(
                    key,
                    b"",
                    &KvWrite {
                        flags: LOCK_FLAG,
                        release: Some(session.to_string()),
                        ..KvWrite::default()
                    },
                )
                .map_err(|e| format!("failed to release lock: {e}"))?;
                Ok(())
            }
            Locker::Semaphore { prefix, limit } => {
                let lock_key = join(prefix, LOCK_KEY);
                loop {
                    let (pair, _) = c
                        .kv_get(&lock_key, &QueryOptions::default())
                        .map_err(|e| e.to_string())?;
                    let mut lock = SemaphoreLock::decode(pair.as_ref(), *limit)?;
                    if lock.holders.remove(session).is_none() {
                        break;
                    }
                    let ok = c
                        .kv_put(
                            &lock_key,
                            &serde_json::to_vec(&lock).unwrap_or_default(),
                            &KvWrite {
                                flags: SEMAPHORE_FLAG,
                                cas: Some(pair.map(|p| p.modify_index).unwrap_or(0)),
                                ..KvWrite::default()
                            },
                        )
                        .map_err(|e| format!("failed to update lock: {e}"))?;
                    if ok {
                        break;
                    }
                }
                c.kv_delete(&join(prefix, session), false, None)
                    .map_err(|e| e.to_string())?;
                Ok(())
            }
        }
    }

    /// Remove the lock key if nobody uses it.
    pub fn cleanup(&self, c: &Client) -> Result<(), CleanupError> {
        let (pair, pairs) = match self {
            Locker::Lock { key } => {
                let (pair, _) = c
                    .kv_get(key, &QueryOptions::default())
                    .map_err(|e| CleanupError::Other(format!("failed to read lock: {e}")))?;
                let Some(pair) = pair else { return Ok(()) };
                if pair.flags != LOCK_FLAG {
                    return Err(CleanupError::Other(
                        "Existing key does not match lock use".into(),
                    ));
                }
                if !session_of(&pair).is_empty() {
                    return Err(CleanupError::InUse);
                }
                (pair, Vec::new())
            }
            Locker::Semaphore { prefix, limit } => {
                let (pairs, _) = c
                    .kv_list(prefix, &QueryOptions::default())
                    .map_err(|e| CleanupError::Other(format!("failed to read prefix: {e}")))?;
                let lock_key = join(prefix, LOCK_KEY);
                let Some(pair) = pairs.iter().find(|p| p.key == lock_key).cloned() else {
                    return Ok(());
                };
                if pair.flags != SEMAPHORE_FLAG {
                    return Err(CleanupError::Other(
                        "Existing key does not match semaphore use".into(),
                    ));
                }
                let mut lock =
                    SemaphoreLock::decode(Some(&pair), *limit).map_err(CleanupError::Other)?;
                lock.prune(&pairs);
                if !lock.holders.is_empty() {
                    return Err(CleanupError::InUse);
                }
                (pair, pairs)
            }
        };
        drop(pairs);
        let removed = c
            .kv_delete(&pair.key, false, Some(pair.modify_index))
            .map_err(|e| CleanupError::Other(format!("failed to remove lock: {e}")))?;
        if removed {
            Ok(())
        } else {
            Err(CleanupError::InUse)
        }
    }
}

/// A TTL session kept alive by a renewal thread until [`Session::close`].
struct Session {
    id: String,
    stop: Option<Sender<()>>,
    renewer: Option<JoinHandle<()>>,
}

impl Session {
    fn create(c: &Client, name: &str, behavior: &str) -> Result<Session, String> {
        let id = c
            .session_create(&SessionRequest {
                name: name.to_string(),
                ttl: proconsul_types::duration::format(SESSION_TTL),
                behavior: behavior.to_string(),
                ..SessionRequest::default()
            })
            .map_err(|e| format!("failed to create session: {e}"))?;
        let (stop, stopped) = mpsc::channel::<()>();
        let (rc, rid) = (c.clone(), id.clone());
        let renewer = std::thread::spawn(move || renew(&rc, &rid, &stopped));
        Ok(Session {
            id,
            stop: Some(stop),
            renewer: Some(renewer),
        })
    }

    /// Stop renewing and destroy the session (its locks are released by the agent).
    fn close(mut self, c: &Client) {
        drop(self.stop.take());
        if let Some(h) = self.renewer.take() {
            let _ = h.join();
        }
        let _ = c.session_destroy(&self.id);
    }
}

/// Renew every TTL/2; after an error retry each second until a whole TTL passed without a
/// renewal (then the session is gone anyway). Returns when told to stop or the session vanished.
fn renew(c: &Client, id: &str, stop: &Receiver<()>) {
    let mut ttl = SESSION_TTL;
    let mut wait = ttl / 2;
    let mut last_ok = Instant::now();
    loop {
        match stop.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        match c.session_renew(id) {
            Ok(Some(entry)) => {
                if let Ok(t) = proconsul_types::duration::parse(&entry.ttl) {
                    if !t.is_zero() {
                        ttl = t;
                    }
                }
                last_ok = Instant::now();
                wait = ttl / 2;
            }
            Ok(None) => return,
            Err(_) => {
                if last_ok.elapsed() > ttl {
                    return;
                }
                wait = Duration::from_secs(1);
            }
        }
    }
}

/// What the main loop waits for.
enum Event {
    Shutdown,
    Acquired(Result<bool, String>),
    Lost,
    /// The child ended; `true` when it failed (or could not start).
    ChildExited(bool),
}

/// Parse a Go duration flag, with the flag package's error text.
fn duration_flag(v: &str, name: &str) -> anyhow::Result<i64> {
    proconsul_types::duration::parse_nanos(v).map_err(|_| {
        ui::fail(format!(
            "invalid value {v:?} for flag -{name}: parse error\n{}",
            help()
        ))
    })
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&all_flags(), args, help)?;
    let verbose = p.bool("verbose");
    let info = |s: &str| {
        if verbose {
            ui::out(s);
        }
    };
    let limit = p.i64("n").unwrap_or(1);
    if limit <= 0 {
        return Err(ui::fail("Lock holder limit must be positive"));
    }
    if p.args.len() < 2 {
        return Err(ui::fail("Key prefix and child command must be specified"));
    }
    let prefix = p.args[0].trim_start_matches('/').to_string();
    let child_args = p.args[1..].to_vec();
    let mut timeout_ns = 0;
    for name in ["try", "timeout"] {
        if let Some(v) = p.str(name) {
            timeout_ns = duration_flag(v, name)?;
        }
    }
    if timeout_ns < 0 {
        return Err(ui::fail("Timeout must be positive"));
    }
    let timeout = (timeout_ns > 0).then(|| Duration::from_nanos(timeout_ns as u64));
    let name = match p.str("name").filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None => format!("Consul lock for '{}' at '{prefix}'", child_args.join(" ")),
    };
    let retries = p.i64("monitor-retry").unwrap_or(3);
    if retries < 0 {
        return Err(ui::fail("Number for 'monitor-retry' must be >= 0"));
    }
    let retries = u32::try_from(retries).unwrap_or(u32::MAX);
    let shell = p.str("shell").map(|_| p.bool("shell")).unwrap_or(true);

    let c = client(&p)?;
    c.agent_node_name()
        .map_err(|e| ui::fail(format!("Error querying Consul agent: {e}")))?;

    let locker = if limit == 1 {
        let key = join(&prefix, LOCK_KEY);
        info(&format!("Setting up lock at path: {key}"));
        Locker::Lock { key }
    } else {
        info(&format!(
            "Setting up semaphore (limit {limit}) at prefix: {prefix}"
        ));
        if prefix.is_empty() {
            return Err(ui::fail("Lock setup failed: missing prefix"));
        }
        Locker::Semaphore { prefix, limit }
    };

    let (tx, rx) = mpsc::channel::<Event>();
    {
        let tx = tx.clone();
        process::on_shutdown(move || {
            let _ = tx.send(Event::Shutdown);
        });
    }

    info("Attempting lock acquisition");
    let session = Session::create(&c, &name, locker.session_behavior())
        .map_err(|e| ui::fail(format!("Lock acquisition failed: {e}")))?;
    {
        let (tx, c, locker, sid) = (tx.clone(), c.clone(), locker.clone(), session.id.clone());
        std::thread::spawn(move || {
            let _ = tx.send(Event::Acquired(locker.acquire(&c, &sid, timeout)));
        });
    }
    match rx.recv() {
        Ok(Event::Acquired(Ok(true))) => {}
        Ok(Event::Acquired(Err(e))) => {
            session.close(&c);
            return Err(ui::fail(format!("Lock acquisition failed: {e}")));
        }
        _ => {
            session.close(&c);
            return Err(ui::fail(
                "Shutdown triggered or timeout during lock acquisition",
            ));
        }
    }

    let mut child_code = 0;
    let shutdown_pending = matches!(rx.try_recv(), Ok(Event::Shutdown));
    if shutdown_pending {
        ui::err("Shutdown triggered during lock acquisition");
    } else {
        {
            let (tx, c, locker, sid) = (tx.clone(), c.clone(), locker.clone(), session.id.clone());
            std::thread::spawn(move || {
                locker.monitor(&c, &sid, retries);
                let _ = tx.send(Event::Lost);
            });
        }
        let pid = start_child(&child_args, shell, p.bool("pass-stdin"), &tx, &info);
        loop {
            match rx.recv() {
                Ok(Event::Shutdown) => info("Shutdown triggered, killing child"),
                Ok(Event::Lost) => info("Lock lost, killing child"),
                Ok(Event::ChildExited(failed)) => {
                    if failed {
                        child_code = 2;
                    }
                    info("Child terminated, releasing lock");
                    break;
                }
                Ok(Event::Acquired(_)) => continue,
                Err(_) => {}
            }
            if let Some(pid) = pid {
                kill_child(pid, &rx, &info);
            }
            break;
        }
    }

    let released = locker.release(&c, &session.id);
    session.close(&c);
    if let Err(e) = released {
        return Err(ui::fail(format!("Lock release failed: {e}")));
    }
    match locker.cleanup(&c) {
        Ok(()) => info("Cleanup succeeded"),
        Err(CleanupError::InUse) => info("Cleanup aborted, lock in use"),
        Err(CleanupError::Other(e)) => {
            return Err(ui::fail(format!("Lock cleanup failed: {e}")));
        }
    }
    if p.bool("child-exit-code") && child_code != 0 {
        return Err(ui::exit_silently(child_code));
    }
    Ok(())
}

/// Start the child with `CONSUL_LOCK_HELD=true`; a thread reports its end. Returns its pid, or
/// `None` if it could not start (reported as a failed child).
fn start_child(
    args: &[String],
    shell: bool,
    pass_stdin: bool,
    tx: &Sender<Event>,
    info: &dyn Fn(&str),
) -> Option<u32> {
    info("Starting handler");
    let cmd = match process::command(args, shell) {
        Ok(mut cmd) => {
            cmd.env("CONSUL_LOCK_HELD", "true");
            cmd
        }
        Err(e) => {
            ui::err(&format!("Error executing handler: {e}"));
            let _ = tx.send(Event::ChildExited(true));
            return None;
        }
    };
    let stdin = if pass_stdin {
        info("Stdin passed to handler process");
        Stdio::inherit()
    } else {
        Stdio::null()
    };
    let mut child = match process::spawn(cmd, stdin) {
        Ok(c) => c,
        Err(e) => {
            ui::err(&format!("Error starting handler: {e}"));
            let _ = tx.send(Event::ChildExited(true));
            return None;
        }
    };
    let pid = child.id();
    let tx = tx.clone();
    std::thread::spawn(move || {
        let failed = match child.wait() {
            Ok(status) => match process::failure(status) {
                Some(f) => {
                    ui::err(&format!("Error running handler: {f}"));
                    true
                }
                None => false,
            },
            Err(e) => {
                ui::err(&format!("Error running handler: {e}"));
                true
            }
        };
        let _ = tx.send(Event::ChildExited(failed));
    });
    Some(pid)
}

/// SIGTERM, then SIGKILL if the child is still running after the grace period.
fn kill_child(pid: u32, rx: &Receiver<Event>, info: &dyn Fn(&str)) {
    info(&format!("Terminating child pid {pid}"));
    if let Err(e) = process::signal(pid, libc::SIGTERM) {
        ui::err(&format!("Failed to terminate {pid}: {e}"));
        return;
    }
    let deadline = Instant::now() + KILL_GRACE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Event::ChildExited(_)) => {
                info("Child terminated");
                return;
            }
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    info(&format!(
        "Child did not exit after grace period of {}",
        proconsul_types::duration::format(KILL_GRACE)
    ));
    info(&format!("Killing child pid {pid}"));
    if let Err(e) = process::signal(pid, libc::SIGKILL) {
        ui::err(&format!("Failed to kill {pid}: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_join_like_go_path() {
        assert_eq!(join("service/web/", LOCK_KEY), "service/web/.lock");
        assert_eq!(join("a", "sess"), "a/sess");
    }

    #[test]
    fn semaphore_lock_value_and_pruning() {
        let lock = SemaphoreLock::decode(None, 3).unwrap();
        assert_eq!((lock.limit, lock.holders.len()), (3, 0));
        let entry = KvEntry {
            key: "p/.lock".into(),
            value: Some(br#"{"Limit":2,"Holders":{"s1":true,"s2":true}}"#.to_vec()),
            ..KvEntry::default()
        };
        let mut lock = SemaphoreLock::decode(Some(&entry), 2).unwrap();
        let alive = KvEntry {
            key: "p/s1".into(),
            session: Some("s1".into()),
            ..KvEntry::default()
        };
        lock.prune(&[entry.clone(), alive]);
        assert_eq!(lock.holders.keys().collect::<Vec<_>>(), vec!["s1"]);
        assert_eq!(
            serde_json::to_string(&lock).unwrap(),
            r#"{"Limit":2,"Holders":{"s1":true}}"#
        );
        let null = KvEntry {
            value: Some(br#"{"Limit":2,"Holders":null}"#.to_vec()),
            ..KvEntry::default()
        };
        assert!(SemaphoreLock::decode(Some(&null), 2)
            .unwrap()
            .holders
            .is_empty());
    }
}
