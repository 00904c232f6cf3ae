//! A distributed semaphore under a KV prefix, the Go client's `api/semaphore.go`: up to
//! `limit` holders at once, with the same keys and flags as Consul's, so proconsul and Consul
//! contenders can share a prefix.
//!
//! Each contender holds `<prefix>/<session>` with its own session (behavior `delete`, so the
//! entry vanishes with the session). The coordination key `<prefix>/.lock` holds
//! [`SemaphoreLock`], `{"Limit":N,"Holders":{session:true}}`, changed only with check-and-set;
//! holders whose contender entry is gone are pruned before counting. Keys carry
//! [`SEMAPHORE_FLAG_VALUE`]. Sessions, the [`Stop`] and [`Lost`] signals and the monitor work
//! as for [`crate::lock::Lock`].

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::lock::{
    join_key, monitor, parse_ttl, session_of, until_stopped, Lost, RenewedSession, Stop,
    DEFAULT_MONITOR_RETRY_TIME,
};
use crate::{Client, Error, KvEntry, KvWrite, QueryOptions};

/// Session name when none is given.
pub const DEFAULT_SEMAPHORE_SESSION_NAME: &str = "Consul API Semaphore";
/// Session TTL when none is given (a Go duration).
pub const DEFAULT_SEMAPHORE_SESSION_TTL: &str = "15s";
/// How long one blocking read waits while contending.
pub const DEFAULT_SEMAPHORE_WAIT_TIME: Duration = Duration::from_secs(15);
/// The coordination key inside the prefix; `lock` uses it as its key too, so a lock and a
/// semaphore at one prefix conflict visibly.
pub const DEFAULT_SEMAPHORE_KEY: &str = ".lock";
/// Flags marking a key as part of a semaphore (Consul's `SemaphoreFlagValue`).
pub const SEMAPHORE_FLAG_VALUE: u64 = 0xe0f6_9a2b_aa41_4de0;

/// How a [`Semaphore`] behaves; empty and zero fields get the defaults above.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SemaphoreOptions {
    /// The prefix; must be set and writable.
    pub prefix: String,
    /// Holders allowed at once; must be positive and agreed by every contender.
    pub limit: i64,
    /// Value of this contender's entry.
    pub value: Vec<u8>,
    /// An existing session (behavior `delete`) to contend with; empty: one is created.
    pub session: String,
    /// Name of the created session.
    pub session_name: String,
    /// TTL of the created session, a Go duration.
    pub session_ttl: String,
    /// Transient errors (no answer, or a 500) in a row the monitor rides out.
    pub monitor_retries: u32,
    /// Pause between those retries.
    pub monitor_retry_time: Duration,
    /// Wait of one blocking read; with `semaphore_try_once`, the whole acquisition's limit.
    pub semaphore_wait_time: Duration,
    /// Give up (`Ok(None)`) once `semaphore_wait_time` has passed.
    pub semaphore_try_once: bool,
}

/// Why a semaphore operation failed. The texts are the Go client's (and, for a failed
/// removal, the `lock` command's).
#[derive(Debug, thiserror::Error)]
pub enum SemaphoreError {
    #[error("missing prefix")]
    MissingPrefix,
    #[error("semaphore limit must be positive")]
    InvalidLimit,
    #[error("invalid SessionTTL: {0}")]
    InvalidSessionTtl(String),
    #[error("Semaphore already held")]
    Held,
    #[error("Semaphore not held")]
    NotHeld,
    /// Holders remain, so [`Semaphore::destroy`] left the lock key.
    #[error("Semaphore in use")]
    InUse,
    /// The `.lock` key exists with other flags: it is not a semaphore's (a lock's, or data).
    #[error("Existing key does not match semaphore use")]
    Conflict,
    /// The agent refused this contender's entry (its session is gone).
    #[error("failed to make contender entry: <nil>")]
    ContenderRefused,
    #[error("semaphore limit conflict (lock: {lock}, local: {local})")]
    LimitConflict { lock: i64, local: i64 },
    /// The `.lock` value is not a [`SemaphoreLock`].
    #[error("lock decoding failed: {0}")]
    Decode(#[source] serde_json::Error),
    /// A call to the agent failed; `step` says which (`failed to read prefix`).
    #[error("{step}: {source}")]
    Request {
        step: &'static str,
        #[source]
        source: Error,
    },
    /// A call to the agent failed while releasing (reported as is, like Go's).
    #[error(transparent)]
    Client(Error),
}

fn failed(step: &'static str) -> impl FnOnce(Error) -> SemaphoreError {
    move |source| SemaphoreError::Request { step, source }
}

/// The value of the `.lock` key: the agreed limit and the current holders' sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SemaphoreLock {
    pub limit: i64,
    /// Session IDs mapped to `true` (a set, as Go's client writes it).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub holders: BTreeMap<String, bool>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, bool>, D::Error> {
    Ok(Option::deserialize(d)?.unwrap_or_default())
}

impl SemaphoreLock {
    /// Decode a `.lock` entry; a missing entry or value is an empty lock with our `limit`.
    pub fn decode(entry: Option<&KvEntry>, limit: i64) -> Result<SemaphoreLock, SemaphoreError> {
        match entry.and_then(|e| e.value.as_deref()) {
            None => Ok(SemaphoreLock {
                limit,
                holders: BTreeMap::new(),
            }),
            Some(v) => serde_json::from_slice(v).map_err(SemaphoreError::Decode),
        }
    }

    /// The JSON written to the key.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Drop holders whose session no longer holds any key under the prefix.
    pub fn prune(&mut self, pairs: &[KvEntry]) {
        let alive: Vec<&str> = pairs
            .iter()
            .map(session_of)
            .filter(|s| !s.is_empty())
            .collect();
        self.holders.retain(|h, _| alive.contains(&h.as_str()));
    }
}

#[derive(Default)]
struct Held {
    held: bool,
    session: String,
    renewed: Option<RenewedSession>,
}

/// A semaphore under a prefix; see the module docs.
pub struct Semaphore {
    client: Client,
    opts: SemaphoreOptions,
    state: Mutex<Held>,
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semaphore")
            .field("opts", &self.opts)
            .finish()
    }
}

impl Client {
    /// A [`Semaphore`] at `prefix` for `limit` holders (Go's `SemaphorePrefix`).
    pub fn semaphore_prefix(&self, prefix: &str, limit: i64) -> Result<Semaphore, SemaphoreError> {
        Semaphore::new(
            self,
            SemaphoreOptions {
                prefix: prefix.to_string(),
                limit,
                ..SemaphoreOptions::default()
            },
        )
    }

    /// A [`Semaphore`] with `opts` (Go's `SemaphoreOpts`).
    pub fn semaphore_opts(&self, opts: SemaphoreOptions) -> Result<Semaphore, SemaphoreError> {
        Semaphore::new(self, opts)
    }
}

impl Semaphore {
    /// Check `opts` and fill in the defaults.
    pub fn new(client: &Client, mut opts: SemaphoreOptions) -> Result<Semaphore, SemaphoreError> {
        if opts.prefix.is_empty() {
            return Err(SemaphoreError::MissingPrefix);
        }
        if opts.limit <= 0 {
            return Err(SemaphoreError::InvalidLimit);
        }
        if opts.session_name.is_empty() {
            opts.session_name = DEFAULT_SEMAPHORE_SESSION_NAME.into();
        }
        if opts.session_ttl.is_empty() {
            opts.session_ttl = DEFAULT_SEMAPHORE_SESSION_TTL.into();
        } else {
            parse_ttl(&opts.session_ttl).map_err(SemaphoreError::InvalidSessionTtl)?;
        }
        if opts.monitor_retry_time.is_zero() {
            opts.monitor_retry_time = DEFAULT_MONITOR_RETRY_TIME;
        }
        if opts.semaphore_wait_time.is_zero() {
            opts.semaphore_wait_time = DEFAULT_SEMAPHORE_WAIT_TIME;
        }
        Ok(Semaphore {
            client: client.clone(),
            opts,
            state: Mutex::default(),
        })
    }

    /// The options in effect (defaults filled in).
    pub fn options(&self) -> &SemaphoreOptions {
        &self.opts
    }

    /// `<prefix>/.lock`.
    pub fn lock_key(&self) -> String {
        join_key(&self.opts.prefix, DEFAULT_SEMAPHORE_KEY)
    }

    /// `<prefix>/<session>`: a contender's entry.
    pub fn contender_key(&self, session: &str) -> String {
        join_key(&self.opts.prefix, session)
    }

    fn state(&self) -> MutexGuard<'_, Held> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Contend until a slot is held: then `Ok(Some(lost))`, where `lost` fires when the slot is
    /// lost again. `Ok(None)` when `stop` fired or, with `semaphore_try_once`, the wait ran
    /// out; the session created for the attempt is destroyed then, and on errors.
    pub fn acquire(&self, stop: Option<&Stop>) -> Result<Option<Lost>, SemaphoreError> {
        let mut state = self.state();
        if state.held {
            return Err(SemaphoreError::Held);
        }
        let renewed = if self.opts.session.is_empty() {
            let s = RenewedSession::create(
                &self.client,
                &self.opts.session_name,
                &self.opts.session_ttl,
                "delete",
            )
            .map_err(failed("failed to create session"))?;
            Some(s)
        } else {
            None
        };
        let session = renewed
            .as_ref()
            .map_or_else(|| self.opts.session.clone(), |s| s.id().to_string());
        let contender = Contender {
            client: self.client.clone(),
            opts: self.opts.clone(),
            lock_key: self.lock_key(),
            entry_key: self.contender_key(&session),
            session: session.clone(),
        };
        let outcome = until_stopped(stop, move || contender.contend());
        if let Some(Ok(true)) = outcome {
            let (tx, lost) = Lost::pair();
            let (c, prefix, lock_key, limit, sid) = (
                self.client.clone(),
                self.opts.prefix.clone(),
                self.lock_key(),
                self.opts.limit,
                session.clone(),
            );
            monitor(
                self.opts.monitor_retries,
                self.opts.monitor_retry_time,
                tx,
                move |q| {
                    let (pairs, meta) = c.kv_list(&prefix, q)?;
                    let lock = pairs.iter().find(|p| p.key == lock_key);
                    let held = match SemaphoreLock::decode(lock, limit) {
                        Ok(mut lock) => {
                            lock.prune(&pairs);
                            lock.holders.contains_key(&sid)
                        }
                        Err(_) => false,
                    };
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

    /// Give our slot up (leave the holders, delete our contender entry), then end the
    /// session [`Semaphore::acquire`] created.
    pub fn release(&self) -> Result<(), SemaphoreError> {
        let mut state = self.state();
        if !state.held {
            return Err(SemaphoreError::NotHeld);
        }
        let Held {
            session, renewed, ..
        } = std::mem::take(&mut *state);
        let released = self.leave(&session);
        if let Some(s) = renewed {
            s.close();
        }
        released
    }

    fn leave(&self, session: &str) -> Result<(), SemaphoreError> {
        let lock_key = self.lock_key();
        loop {
            let (pair, _) = self
                .client
                .kv_get(&lock_key, &QueryOptions::default())
                .map_err(SemaphoreError::Client)?;
            let mut lock = SemaphoreLock::decode(pair.as_ref(), self.opts.limit)?;
            if lock.holders.remove(session).is_none() {
                break;
            }
            let swapped = self
                .client
                .kv_put(
                    &lock_key,
                    &lock.encode(),
                    &KvWrite {
                        flags: SEMAPHORE_FLAG_VALUE,
                        cas: Some(pair.map(|p| p.modify_index).unwrap_or(0)),
                        ..KvWrite::default()
                    },
                )
                .map_err(failed("failed to update lock"))?;
            if swapped {
                break;
            }
        }
        self.client
            .kv_delete(&self.contender_key(session), false, None)
            .map_err(SemaphoreError::Client)?;
        Ok(())
    }

    /// Remove the `.lock` key if no live holder remains ([`SemaphoreError::InUse`] if one
    /// does). Not needed for correctness; it tidies up after the last user.
    pub fn destroy(&self) -> Result<(), SemaphoreError> {
        if self.state().held {
            return Err(SemaphoreError::Held);
        }
        let (pairs, _) = self
            .client
            .kv_list(&self.opts.prefix, &QueryOptions::default())
            .map_err(failed("failed to read prefix"))?;
        let lock_key = self.lock_key();
        let Some(pair) = pairs.iter().find(|p| p.key == lock_key) else {
            return Ok(());
        };
        if pair.flags != SEMAPHORE_FLAG_VALUE {
            return Err(SemaphoreError::Conflict);
        }
        let mut lock = SemaphoreLock::decode(Some(pair), self.opts.limit)?;
        lock.prune(&pairs);
        if !lock.holders.is_empty() {
            return Err(SemaphoreError::InUse);
        }
        // proconsul's `lock` command has always said "lock" here (Go: "semaphore").
        let removed = self
            .client
            .kv_delete(&pair.key, false, Some(pair.modify_index))
            .map_err(failed("failed to remove lock"))?;
        if removed {
            Ok(())
        } else {
            Err(SemaphoreError::InUse)
        }
    }
}

/// What the acquisition loop needs, moved onto its thread.
struct Contender {
    client: Client,
    opts: SemaphoreOptions,
    lock_key: String,
    entry_key: String,
    session: String,
}

impl Contender {
    /// Make our contender entry, then take a slot: `Ok(true)` once held, `Ok(false)` when a
    /// one-shot wait ran out.
    fn contend(&self) -> Result<bool, SemaphoreError> {
        let (c, opts) = (&self.client, &self.opts);
        let made = c
            .kv_put(
                &self.entry_key,
                &opts.value,
                &KvWrite {
                    flags: SEMAPHORE_FLAG_VALUE,
                    acquire: Some(self.session.clone()),
                    ..KvWrite::default()
                },
            )
            .map_err(failed("failed to make contender entry"))?;
        if !made {
            return Err(SemaphoreError::ContenderRefused);
        }
        let start = Instant::now();
        let mut attempts = 0;
        let mut wait_index = 0;
        loop {
            let mut wait = opts.semaphore_wait_time;
            if opts.semaphore_try_once && attempts > 0 {
                let elapsed = start.elapsed();
                if elapsed > opts.semaphore_wait_time {
                    return Ok(false);
                }
                wait = opts.semaphore_wait_time - elapsed;
            }
            attempts += 1;
            let q = QueryOptions {
                wait_index,
                wait_time: Some(wait),
                ..QueryOptions::default()
            };
            let (pairs, meta) = c
                .kv_list(&opts.prefix, &q)
                .map_err(failed("failed to read prefix"))?;
            let lock_pair = pairs.iter().find(|p| p.key == self.lock_key);
            if lock_pair.is_some_and(|p| p.flags != SEMAPHORE_FLAG_VALUE) {
                return Err(SemaphoreError::Conflict);
            }
            let mut lock = SemaphoreLock::decode(lock_pair, opts.limit)?;
            if lock.limit != opts.limit {
                return Err(SemaphoreError::LimitConflict {
                    lock: lock.limit,
                    local: opts.limit,
                });
            }
            lock.prune(&pairs);
            if lock.holders.len() as i64 >= lock.limit {
                wait_index = meta.last_index;
                continue;
            }
            lock.holders.insert(self.session.clone(), true);
            let swapped = c
                .kv_put(
                    &self.lock_key,
                    &lock.encode(),
                    &KvWrite {
                        flags: SEMAPHORE_FLAG_VALUE,
                        cas: Some(lock_pair.map(|p| p.modify_index).unwrap_or(0)),
                        ..KvWrite::default()
                    },
                )
                .map_err(failed("failed to update lock"))?;
            if swapped {
                return Ok(true);
            }
            // Lost a race with another contender: read again at once.
            wait_index = 0;
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
    fn lock_file_json_and_pruning() {
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
        assert_eq!(lock.encode(), br#"{"Limit":2,"Holders":{"s1":true}}"#);
        let null = KvEntry {
            value: Some(br#"{"Limit":2,"Holders":null}"#.to_vec()),
            ..KvEntry::default()
        };
        assert!(SemaphoreLock::decode(Some(&null), 2)
            .unwrap()
            .holders
            .is_empty());
        let bad = KvEntry {
            value: Some(b"nope".to_vec()),
            ..KvEntry::default()
        };
        let e = SemaphoreLock::decode(Some(&bad), 2).unwrap_err();
        assert!(e.to_string().starts_with("lock decoding failed: "), "{e}");
    }

    #[test]
    fn keys_and_option_defaults() {
        let s = client().semaphore_prefix("service/web/", 2).unwrap();
        assert_eq!(s.lock_key(), "service/web/.lock");
        assert_eq!(s.contender_key("abc"), "service/web/abc");
        let o = s.options();
        assert_eq!(o.session_name, "Consul API Semaphore");
        assert_eq!(o.session_ttl, "15s");
        assert_eq!(o.semaphore_wait_time, Duration::from_secs(15));
        assert_eq!(o.monitor_retry_time, Duration::from_secs(2));
        assert_eq!((o.monitor_retries, o.semaphore_try_once), (0, false));
        let err = |prefix: &str, limit| {
            client()
                .semaphore_prefix(prefix, limit)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(err("", 2), "missing prefix");
        assert_eq!(err("p", 0), "semaphore limit must be positive");
        let e = client()
            .semaphore_opts(SemaphoreOptions {
                prefix: "p".into(),
                limit: 1,
                session_ttl: "x".into(),
                ..SemaphoreOptions::default()
            })
            .unwrap_err();
        assert!(matches!(e, SemaphoreError::InvalidSessionTtl(_)));
    }

    #[test]
    fn release_and_destroy_check_the_held_state() {
        let s = client().semaphore_prefix("p", 2).unwrap();
        assert_eq!(s.release().unwrap_err().to_string(), "Semaphore not held");
        let e = s.destroy().unwrap_err().to_string();
        assert!(e.starts_with("failed to read prefix: "), "{e}");
    }

    #[test]
    fn error_texts_match_the_go_client() {
        assert_eq!(
            SemaphoreError::LimitConflict { lock: 3, local: 2 }.to_string(),
            "semaphore limit conflict (lock: 3, local: 2)"
        );
        assert_eq!(
            SemaphoreError::ContenderRefused.to_string(),
            "failed to make contender entry: <nil>"
        );
        assert_eq!(
            SemaphoreError::Conflict.to_string(),
            "Existing key does not match semaphore use"
        );
    }
}
