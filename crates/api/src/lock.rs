//! A distributed lock on one KV key, the Go client's `api/lock.go`: the same key flags, session
//! and contention rules, so proconsul and Consul contenders can share a key.
//!
//! [`Lock::acquire`] creates a TTL session (unless one is given), renews it every TTL/2, and
//! takes the key with `?acquire=` and flags [`LOCK_FLAG_VALUE`]. While someone else holds the
//! key it blocks on the key's index; a refused acquire with no holder means a lock-delay is
//! running, retried every [`DEFAULT_LOCK_RETRY_TIME`]. Once held, a monitor blocks on the key
//! and reports its loss through [`Lost`], riding out `monitor_retries` transient errors.
//! [`Lock::release`] gives the key up and ends the session; [`Lock::destroy`] removes an
//! unused key.
//!
//! The pieces shared with [`crate::semaphore`] live here too: the [`Stop`] signal that aborts
//! an acquisition, the [`Lost`] signal, and the renewed session.

use std::any::Any;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{Client, Error, KvWrite, QueryOptions, SessionRequest};

/// Session name when none is given.
pub const DEFAULT_LOCK_SESSION_NAME: &str = "Consul API Lock";
/// Session TTL when none is given (a Go duration).
pub const DEFAULT_LOCK_SESSION_TTL: &str = "15s";
/// How long one blocking read waits while contending.
pub const DEFAULT_LOCK_WAIT_TIME: Duration = Duration::from_secs(15);
/// Pause after an acquire refused by a lock-delay.
pub const DEFAULT_LOCK_RETRY_TIME: Duration = Duration::from_secs(5);
/// Pause between retries while monitoring a held lock.
pub const DEFAULT_MONITOR_RETRY_TIME: Duration = Duration::from_secs(2);
/// Flags marking a key as a lock (Consul's `LockFlagValue`).
pub const LOCK_FLAG_VALUE: u64 = 0x2ddc_cbc0_58a5_0c18;

/// Go's `path.Join(prefix, name)` for the keys of locks and semaphores.
pub fn join_key(prefix: &str, name: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

/// How a [`Lock`] behaves; empty and zero fields get the defaults above.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockOptions {
    /// The key to lock; must be set and writable.
    pub key: String,
    /// Value written with the lock.
    pub value: Vec<u8>,
    /// An existing session to lock with; empty: one is created, renewed and destroyed.
    pub session: String,
    /// Name of the created session.
    pub session_name: String,
    /// TTL of the created session, a Go duration.
    pub session_ttl: String,
    /// Transient errors (no answer, or a 500) in a row the monitor rides out.
    pub monitor_retries: u32,
    /// Pause between those retries.
    pub monitor_retry_time: Duration,
    /// Wait of one blocking read; with `lock_try_once`, the whole acquisition's limit.
    pub lock_wait_time: Duration,
    /// Give up (`Ok(None)`) once `lock_wait_time` has passed.
    pub lock_try_once: bool,
}

/// Why a lock operation failed. The texts are the Go client's.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("missing key")]
    MissingKey,
    #[error("invalid SessionTTL: {0}")]
    InvalidSessionTtl(String),
    #[error("Lock already held")]
    Held,
    #[error("Lock not held")]
    NotHeld,
    /// Someone holds the key, so [`Lock::destroy`] left it.
    #[error("Lock in use")]
    InUse,
    /// The key exists with other flags: it is not a lock (a semaphore, or plain data).
    #[error("Existing key does not match lock use")]
    Conflict,
    /// A call to the agent failed; `step` says which (`failed to read lock`).
    #[error("{step}: {source}")]
    Request {
        step: &'static str,
        #[source]
        source: Error,
    },
}

fn failed(step: &'static str) -> impl FnOnce(Error) -> LockError {
    move |source| LockError::Request { step, source }
}

/// Aborts a running [`Lock::acquire`] or [`crate::semaphore::Semaphore::acquire`] (Go's
/// `stopCh`): once [`Stop::stop`] is called, an acquisition returns `Ok(None)` at once, even in
/// the middle of a blocking read, and its session is destroyed. Clones share the signal.
#[derive(Clone, Default)]
pub struct Stop(Arc<Mutex<StopState>>);

type Waker = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct StopState {
    stopped: bool,
    next: u64,
    wakers: Vec<(u64, Waker)>,
}

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stop")
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

impl Stop {
    pub fn new() -> Stop {
        Stop::default()
    }

    fn state(&self) -> MutexGuard<'_, StopState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fire the signal; it stays fired.
    pub fn stop(&self) {
        let wakers = {
            let mut s = self.state();
            s.stopped = true;
            std::mem::take(&mut s.wakers)
        };
        for (_, wake) in wakers {
            wake();
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.state().stopped
    }

    /// Call `wake` when the signal fires; `None` (and `wake` dropped) if it already has.
    fn on_stop(&self, wake: Waker) -> Option<u64> {
        let mut s = self.state();
        if s.stopped {
            return None;
        }
        s.next += 1;
        let id = s.next;
        s.wakers.push((id, wake));
        Some(id)
    }

    fn forget(&self, id: u64) {
        self.state().wakers.retain(|(i, _)| *i != id);
    }
}

/// Run `work` on its own thread and wait for it, unless `stop` fires first (`None`; the thread
/// is left to finish on its own and its result dropped).
pub(crate) fn until_stopped<T: Send + 'static>(
    stop: Option<&Stop>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    type Outcome<T> = Option<Result<T, Box<dyn Any + Send>>>;
    let (tx, rx) = mpsc::channel::<Outcome<T>>();
    let registered = match stop {
        None => None,
        Some(s) => {
            let tx = tx.clone();
            let id = s.on_stop(Box::new(move || {
                let _ = tx.send(None);
            }))?;
            Some((s, id))
        }
    };
    std::thread::spawn(move || {
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        let _ = tx.send(Some(out));
    });
    let outcome = rx.recv().ok().flatten();
    if let Some((s, id)) = registered {
        s.forget(id);
    }
    match outcome {
        Some(Ok(v)) => Some(v),
        Some(Err(panic)) => std::panic::resume_unwind(panic),
        None => None,
    }
}

/// Fires when a held lock or semaphore slot is lost (Go's lock channel being closed): the key
/// changed hands, the session ended, or the agent could not be asked.
#[derive(Debug)]
pub struct Lost(Receiver<()>);

impl Lost {
    /// The signal and the sender the monitor holds until the loss.
    pub(crate) fn pair() -> (Sender<()>, Lost) {
        let (tx, rx) = mpsc::channel();
        (tx, Lost(rx))
    }

    /// Block until the loss.
    pub fn wait(&self) {
        while self.0.recv().is_ok() {}
    }

    /// Block until the loss or `timeout`; `true` if lost.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok(()) => continue,
                Err(RecvTimeoutError::Timeout) => return false,
                Err(RecvTimeoutError::Disconnected) => return true,
            }
        }
    }

    pub fn is_lost(&self) -> bool {
        matches!(self.0.try_recv(), Err(TryRecvError::Disconnected))
    }
}

/// Check a session TTL option, returning it parsed.
pub(crate) fn parse_ttl(ttl: &str) -> Result<Duration, String> {
    proconsul_types::duration::parse(ttl).map_err(|e| e.to_string())
}

/// A session kept alive by a renewal thread until [`RenewedSession::close`] (Go's
/// `RenewPeriodic` with its done channel).
pub(crate) struct RenewedSession {
    client: Client,
    id: String,
    stop: Option<Sender<()>>,
    renewer: Option<JoinHandle<()>>,
}

impl RenewedSession {
    pub(crate) fn create(
        client: &Client,
        name: &str,
        ttl: &str,
        behavior: &str,
    ) -> Result<RenewedSession, Error> {
        let id = client.session_create(&SessionRequest {
            name: name.to_string(),
            ttl: ttl.to_string(),
            behavior: behavior.to_string(),
            ..SessionRequest::default()
        })?;
        let ttl = parse_ttl(ttl).unwrap_or(Duration::from_secs(15));
        let (stop, stopped) = mpsc::channel::<()>();
        let (c, rid) = (client.clone(), id.clone());
        let renewer = std::thread::spawn(move || renew(&c, &rid, ttl, &stopped));
        Ok(RenewedSession {
            client: client.clone(),
            id,
            stop: Some(stop),
            renewer: Some(renewer),
        })
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Stop renewing and destroy the session (the agent releases or deletes its keys).
    pub(crate) fn close(mut self) {
        drop(self.stop.take());
        if let Some(h) = self.renewer.take() {
            let _ = h.join();
        }
        let _ = self.client.session_destroy(&self.id);
    }
}

/// Renew every TTL/2; after an error retry each second until a whole TTL passed without a
/// renewal (then the session is gone anyway). Returns when told to stop or the session vanished.
fn renew(c: &Client, id: &str, mut ttl: Duration, stop: &Receiver<()>) {
    let mut wait = ttl / 2;
    let mut last_ok = Instant::now();
    loop {
        match stop.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        match c.session_renew(id) {
            Ok(Some(entry)) => {
                if let Ok(t) = parse_ttl(&entry.ttl) {
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

/// Watch with blocking reads whether `held` still says yes; drop `alive` when it does not, or
/// when more than `retries` retryable errors came in a row (or any other error).
pub(crate) fn monitor(
    retries: u32,
    retry_time: Duration,
    alive: Sender<()>,
    mut held: impl FnMut(&QueryOptions) -> Result<(bool, u64), Error> + Send + 'static,
) {
    std::thread::spawn(move || {
        let mut wait_index = 0;
        let mut left = retries;
        loop {
            let opts = QueryOptions {
                consistent: true,
                wait_index,
                ..QueryOptions::default()
            };
            match held(&opts) {
                Ok((true, index)) => {
                    wait_index = index;
                    left = retries;
                }
                Ok((false, _)) => break,
                Err(e) if left > 0 && e.is_retryable() => {
                    std::thread::sleep(retry_time);
                    left -= 1;
                    wait_index = 0;
                }
                Err(_) => break,
            }
        }
        drop(alive);
    });
}

#[derive(Default)]
struct Held {
    held: bool,
    session: String,
    renewed: Option<RenewedSession>,
}

/// A lock on one key; see the module docs.
pub struct Lock {
    client: Client,
    opts: LockOptions,
    state: Mutex<Held>,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock").field("opts", &self.opts).finish()
    }
}

impl Client {
    /// A [`Lock`] on `key` with default options (Go's `LockKey`).
    pub fn lock_key(&self, key: &str) -> Result<Lock, LockError> {
        Lock::new(
            self,
            LockOptions {
                key: key.to_string(),
                ..LockOptions::default()
            },
        )
    }

    /// A [`Lock`] with `opts` (Go's `LockOpts`).
    pub fn lock_opts(&self, opts: LockOptions) -> Result<Lock, LockError> {
        Lock::new(self, opts)
    }
}

impl Lock {
    /// Check `opts` and fill in the defaults.
    pub fn new(client: &Client, mut opts: LockOptions) -> Result<Lock, LockError> {
        if opts.key.is_empty() {
            return Err(LockError::MissingKey);
        }
        if opts.session_name.is_empty() {
            opts.session_name = DEFAULT_LOCK_SESSION_NAME.into();
        }
        if opts.session_ttl.is_empty() {
            opts.session_ttl = DEFAULT_LOCK_SESSION_TTL.into();
        } else {
            parse_ttl(&opts.session_ttl).map_err(LockError::InvalidSessionTtl)?;
        }
        if opts.monitor_retry_time.is_zero() {
            opts.monitor_retry_time = DEFAULT_MONITOR_RETRY_TIME;
        }
        if opts.lock_wait_time.is_zero() {
            opts.lock_wait_time = DEFAULT_LOCK_WAIT_TIME;
        }
        Ok(Lock {
            client: client.clone(),
            opts,
            state: Mutex::default(),
        })
    }

    /// The options in effect (defaults filled in).
    pub fn options(&self) -> &LockOptions {
        &self.opts
    }

    fn state(&self) -> MutexGuard<'_, Held> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Contend until the lock is held: then `Ok(Some(lost))`, where `lost` fires when it is
    /// lost again. `Ok(None)` when `stop` fired or, with `lock_try_once`, the wait ran out; the
    /// session created for the attempt is destroyed then, and on errors.
    pub fn acquire(&self, stop: Option<&Stop>) -> Result<Option<Lost>, LockError> {
        let mut state = self.state();
        if state.held {
            return Err(LockError::Held);
        }
        let renewed = if self.opts.session.is_empty() {
            let s = RenewedSession::create(
                &self.client,
                &self.opts.session_name,
                &self.opts.session_ttl,
                "",
            )
            .map_err(failed("failed to create session"))?;
            Some(s)
        } else {
            None
        };
        let session = renewed
            .as_ref()
            .map_or_else(|| self.opts.session.clone(), |s| s.id().to_string());
        let (c, opts, sid) = (self.client.clone(), self.opts.clone(), session.clone());
        let outcome = until_stopped(stop, move || contend(&c, &opts, &sid));
        if let Some(Ok(true)) = outcome {
            let (tx, lost) = Lost::pair();
            let (c, key, sid) = (self.client.clone(), self.opts.key.clone(), session.clone());
            monitor(
                self.opts.monitor_retries,
                self.opts.monitor_retry_time,
                tx,
                move |q| {
                    let (pair, meta) = c.kv_get(&key, q)?;
                    let held = pair.is_some_and(|p| p.session.as_deref() == Some(sid.as_str()));
                    Ok((held, meta.last_index))
                },
            );
            *state = Held {
                held: true,
                session,
                renewed,
            };
            return Ok(Some(lost));
        }
        if let Some(s) = renewed {
            s.close();
        }
        match outcome {
            Some(Err(e)) => Err(e),
            _ => Ok(None),
        }
    }

    /// Give the lock up, then end the session [`Lock::acquire`] created.
    pub fn release(&self) -> Result<(), LockError> {
        let mut state = self.state();
        if !state.held {
            return Err(LockError::NotHeld);
        }
        let Held {
            session, renewed, ..
        } = std::mem::take(&mut *state);
        let released = self
            .client
            .kv_put(
                &self.opts.key,
                &self.opts.value,
                &KvWrite {
                    flags: LOCK_FLAG_VALUE,
                    release: Some(session),
                    ..KvWrite::default()
                },
            )
            .map_err(failed("failed to release lock"));
        if let Some(s) = renewed {
            s.close();
        }
        released.map(drop)
    }

    /// Remove the lock key if nobody holds it ([`LockError::InUse`] if someone does). Not
    /// needed for correctness; it tidies up after the last user.
    pub fn destroy(&self) -> Result<(), LockError> {
        if self.state().held {
            return Err(LockError::Held);
        }
        let (pair, _) = self
            .client
            .kv_get(&self.opts.key, &QueryOptions::default())
            .map_err(failed("failed to read lock"))?;
        let Some(pair) = pair else { return Ok(()) };
        if pair.flags != LOCK_FLAG_VALUE {
            return Err(LockError::Conflict);
        }
        if !session_of(&pair).is_empty() {
            return Err(LockError::InUse);
        }
        let removed = self
            .client
            .kv_delete(&pair.key, false, Some(pair.modify_index))
            .map_err(failed("failed to remove lock"))?;
        if removed {
            Ok(())
        } else {
            Err(LockError::InUse)
        }
    }
}

pub(crate) fn session_of(e: &crate::KvEntry) -> &str {
    e.session.as_deref().unwrap_or_default()
}

/// The acquisition loop (with `session`): `Ok(true)` once held, `Ok(false)` when a one-shot
/// wait ran out.
fn contend(c: &Client, opts: &LockOptions, session: &str) -> Result<bool, LockError> {
    let key = &opts.key;
    let start = Instant::now();
    let mut attempts = 0;
    let mut wait_index = 0;
    loop {
        let mut wait = opts.lock_wait_time;
        if opts.lock_try_once && attempts > 0 {
            let elapsed = start.elapsed();
            if elapsed > opts.lock_wait_time {
                return Ok(false);
            }
            wait = opts.lock_wait_time - elapsed;
        }
        attempts += 1;
        let q = QueryOptions {
            wait_index,
            wait_time: Some(wait),
            ..QueryOptions::default()
        };
        let (pair, meta) = c.kv_get(key, &q).map_err(failed("failed to read lock"))?;
        if let Some(p) = &pair {
            if p.flags != LOCK_FLAG_VALUE {
                return Err(LockError::Conflict);
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
                &opts.value,
                &KvWrite {
                    flags: LOCK_FLAG_VALUE,
                    acquire: Some(session.to_string()),
                    ..KvWrite::default()
                },
            )
            .map_err(failed("failed to acquire lock"))?;
        if locked {
            return Ok(true);
        }
        // Refused: either someone was faster (block on them) or a lock-delay is running (wait
        // it out).
        let (pair, meta) = c
            .kv_get(key, &QueryOptions::default())
            .map_err(failed("failed to read lock"))?;
        if pair.as_ref().is_some_and(|p| !session_of(p).is_empty()) {
            wait_index = meta.last_index;
        } else {
            wait_index = 0;
            std::thread::sleep(DEFAULT_LOCK_RETRY_TIME);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn client() -> Client {
        Client::new(Config {
            address: "127.0.0.1:1".into(),
            ..Config::default()
        })
        .unwrap()
    }

    #[test]
    fn keys_join_like_go_path() {
        assert_eq!(join_key("service/web/", ".lock"), "service/web/.lock");
        assert_eq!(join_key("a", "sess"), "a/sess");
        assert_eq!(join_key("", ".lock"), ".lock");
    }

    #[test]
    fn options_get_go_defaults() {
        let l = client().lock_key("k/.lock").unwrap();
        let o = l.options();
        assert_eq!(o.session_name, "Consul API Lock");
        assert_eq!(o.session_ttl, "15s");
        assert_eq!(o.lock_wait_time, Duration::from_secs(15));
        assert_eq!(o.monitor_retry_time, Duration::from_secs(2));
        assert_eq!((o.monitor_retries, o.lock_try_once), (0, false));
        assert!(matches!(client().lock_key(""), Err(LockError::MissingKey)));
        let e = client()
            .lock_opts(LockOptions {
                key: "k".into(),
                session_ttl: "15".into(),
                ..LockOptions::default()
            })
            .unwrap_err();
        assert!(e.to_string().starts_with("invalid SessionTTL: "), "{e}");
    }

    #[test]
    fn release_and_destroy_check_the_held_state() {
        let l = client().lock_key("k").unwrap();
        assert_eq!(l.release().unwrap_err().to_string(), "Lock not held");
        // Unreachable agent: the read fails with the Go client's prefix.
        let e = l.destroy().unwrap_err().to_string();
        assert!(e.starts_with("failed to read lock: "), "{e}");
    }

    #[test]
    fn stop_aborts_a_blocked_acquisition() {
        let stop = Stop::new();
        let s2 = stop.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            s2.stop();
        });
        let started = Instant::now();
        let out = until_stopped(Some(&stop), || std::thread::sleep(Duration::from_secs(30)));
        assert!(out.is_none());
        assert!(started.elapsed() < Duration::from_secs(5));
        t.join().unwrap();
        // Already stopped: nothing runs.
        assert!(until_stopped(Some(&stop), || 1).is_none());
        assert_eq!(until_stopped(None, || 2), Some(2));
        assert!(stop.0.lock().unwrap().wakers.is_empty());
    }

    #[test]
    fn lost_fires_when_the_monitor_lets_go() {
        let (tx, lost) = Lost::pair();
        assert!(!lost.is_lost());
        assert!(!lost.wait_timeout(Duration::from_millis(10)));
        drop(tx);
        assert!(lost.wait_timeout(Duration::from_secs(1)));
        assert!(lost.is_lost());
        lost.wait();
    }
}
