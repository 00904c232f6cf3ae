//! The agent's query cache: `?cached` on the endpoints Consul caches (`/v1/catalog/service/:s`,
//! `/v1/health/service/:s`, `/v1/catalog/connect/:s`, `/v1/health/connect/:s`).
//!
//! A cached read is answered from the agent's copy of the result (`X-Cache: HIT`, `Age` in
//! seconds) instead of a server. Like Consul's background-refresh cache types, every entry is
//! kept fresh by a task that runs a blocking query against the servers and stores each new
//! result, so a hit is as recent as the last change the servers reported. The first read of a
//! key fetches it (`X-Cache: MISS`) and starts that task; the task stops when the entry has not
//! been read for [`IDLE_TTL`], when the cache evicts it (at most [`MAX_ENTRIES`]), or when the
//! agent stops. A blocking `?cached` read (`?index=`) waits on the entry for a newer index.
//!
//! Request `Cache-Control` is honoured as Consul does: `max-age=N` refetches an entry older
//! than N seconds, `must-revalidate` always refetches, `stale-if-error=N` serves an entry up
//! to N seconds old when the refetch fails.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proconsul_types::{Query, QueryMeta, QueryOptions, RpcError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::Backend;

/// Entries kept at most; the least recently read goes first.
pub const MAX_ENTRIES: usize = 4096;
/// An entry not read for this long stops refreshing and is dropped (Consul: 72 h).
pub const IDLE_TTL: Duration = Duration::from_secs(72 * 3600);
/// How long each refresh blocks on the servers.
const REFRESH_WAIT: Duration = Duration::from_secs(300);
/// Pause after a failed refresh before the next.
const REFRESH_RETRY: Duration = Duration::from_secs(1);

type Value = Arc<dyn Any + Send + Sync>;

struct Slot {
    meta: QueryMeta,
    value: Value,
    fetched: Instant,
}

struct Entry {
    slot: Mutex<Slot>,
    /// A blocking refresh is waiting on the servers and the last one succeeded: the value is
    /// current (any change would have ended the wait), so its age is 0.
    current: std::sync::atomic::AtomicBool,
    last_read: Mutex<Instant>,
    /// Ticks when a refresh stores a new result.
    updated: tokio::sync::watch::Sender<u64>,
    stop: CancellationToken,
}

/// The agent's cache of `?cached` reads.
pub struct QueryCache {
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    shutdown: CancellationToken,
}

/// `Cache-Control` of a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheControl {
    pub max_age: Option<Duration>,
    pub stale_if_error: Option<Duration>,
    pub must_revalidate: bool,
}

impl CacheControl {
    /// Read a `Cache-Control` header value (unknown directives are ignored).
    pub fn parse(value: &str) -> CacheControl {
        let mut cc = CacheControl::default();
        for d in value.split(',').map(str::trim) {
            let (k, v) = d.split_once('=').unwrap_or((d, ""));
            let secs = || v.trim().parse::<u64>().ok().map(Duration::from_secs);
            match k.trim().to_ascii_lowercase().as_str() {
                "max-age" => cc.max_age = secs(),
                "stale-if-error" => cc.stale_if_error = secs(),
                "must-revalidate" => cc.must_revalidate = true,
                _ => {}
            }
        }
        cc
    }
}

/// How a cached read was answered: `hit` with the entry's age, or fetched (`MISS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheResult {
    pub hit: bool,
    pub age: Duration,
}

impl QueryCache {
    /// A cache whose refresh tasks stop when `shutdown` fires.
    pub fn new(shutdown: CancellationToken) -> QueryCache {
        QueryCache {
            entries: Mutex::new(HashMap::new()),
            shutdown,
        }
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(&self, key: String, entry: Arc<Entry>) {
        let mut entries = self.entries.lock().unwrap();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| *e.last_read.lock().unwrap())
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest.and_then(|k| entries.remove(&k)) {
                k.stop.cancel();
            }
        }
        if let Some(old) = entries.insert(key, entry) {
            old.stop.cancel();
        }
    }

    fn remove(&self, key: &str, entry: &Arc<Entry>) {
        let mut entries = self.entries.lock().unwrap();
        if entries.get(key).is_some_and(|e| Arc::ptr_eq(e, entry)) {
            entries.remove(key);
        }
    }
}

/// Serve `q` from `b`'s cache (see the module docs).
pub async fn query<B, Q>(
    b: &Arc<B>,
    q: Q,
    opts: QueryOptions,
    cc: CacheControl,
) -> Result<(QueryMeta, Q::Out, CacheResult), RpcError>
where
    B: Backend,
    Q: Query + Clone + serde::Serialize + Sync,
    Q::Out: Clone + Sync,
{
    let cache = b.query_cache();
    let key = format!(
        "{}|{}|{:?}|{}",
        Q::NAME,
        opts.datacenter,
        opts.consistency,
        serde_json::to_string(&q).unwrap_or_default()
    );
    let entry = cache.entries.lock().unwrap().get(&key).cloned();
    if let Some(entry) = entry {
        *entry.last_read.lock().unwrap() = Instant::now();
        let fresh_enough =
            |age: Duration| !cc.must_revalidate && cc.max_age.is_none_or(|max| age <= max);
        let (meta, age) = {
            let s = entry.slot.lock().unwrap();
            (s.meta, entry.age(&s))
        };
        if fresh_enough(age) {
            // A blocking read waits for a refresh past its index.
            if opts.min_index > 0 && meta.index <= opts.min_index {
                let wait = opts.max_wait.unwrap_or(REFRESH_WAIT);
                let mut updated = entry.updated.subscribe();
                let _ = tokio::time::timeout(wait, async {
                    loop {
                        if entry.slot.lock().unwrap().meta.index > opts.min_index {
                            break;
                        }
                        if updated.changed().await.is_err() {
                            break;
                        }
                    }
                })
                .await;
            }
            let s = entry.slot.lock().unwrap();
            let out = s.value.downcast_ref::<Q::Out>().cloned();
            if let Some(out) = out {
                return Ok((
                    s.meta,
                    out,
                    CacheResult {
                        hit: true,
                        age: entry.age(&s),
                    },
                ));
            }
        } else if let Some(limit) = cc.stale_if_error {
            // Refetch; on failure, the stale entry if it is young enough.
            let now = QueryOptions {
                min_index: 0,
                max_wait: None,
                ..opts.clone()
            };
            match b.query(q.clone(), now).await {
                Ok((meta, out)) => {
                    store(&entry, meta, &out);
                    return Ok((
                        meta,
                        out,
                        CacheResult {
                            hit: false,
                            age: Duration::ZERO,
                        },
                    ));
                }
                Err(e) => {
                    let s = entry.slot.lock().unwrap();
                    if s.fetched.elapsed() <= limit {
                        if let Some(out) = s.value.downcast_ref::<Q::Out>().cloned() {
                            return Ok((
                                s.meta,
                                out,
                                CacheResult {
                                    hit: true,
                                    age: s.fetched.elapsed(),
                                },
                            ));
                        }
                    }
                    return Err(e);
                }
            }
        }
    }
    // A miss: fetch now, keep it, and keep it fresh.
    let now = QueryOptions {
        min_index: 0,
        max_wait: None,
        ..opts.clone()
    };
    let (meta, out) = b.query(q.clone(), now).await?;
    let entry = Arc::new(Entry {
        slot: Mutex::new(Slot {
            meta,
            value: Arc::new(out.clone()),
            fetched: Instant::now(),
        }),
        // The refresh starts at once with a blocking query at this index: current until it
        // fails.
        current: std::sync::atomic::AtomicBool::new(true),
        last_read: Mutex::new(Instant::now()),
        updated: tokio::sync::watch::Sender::new(0),
        stop: cache.shutdown.child_token(),
    });
    cache.insert(key.clone(), entry.clone());
    tokio::spawn(refresh(Arc::clone(b), key, entry, q, opts));
    Ok((
        meta,
        out,
        CacheResult {
            hit: false,
            age: Duration::ZERO,
        },
    ))
}

impl Entry {
    fn age(&self, s: &Slot) -> Duration {
        if self.current.load(std::sync::atomic::Ordering::Relaxed) {
            Duration::ZERO
        } else {
            s.fetched.elapsed()
        }
    }
}

fn store<T: Send + Sync + 'static + Clone>(entry: &Entry, meta: QueryMeta, out: &T) {
    *entry.slot.lock().unwrap() = Slot {
        meta,
        value: Arc::new(out.clone()),
        fetched: Instant::now(),
    };
    entry.updated.send_modify(|n| *n += 1);
}

/// Keep an entry fresh with blocking queries until it idles out or is stopped.
async fn refresh<B, Q>(b: Arc<B>, key: String, entry: Arc<Entry>, q: Q, opts: QueryOptions)
where
    B: Backend,
    Q: Query + Clone + Sync,
    Q::Out: Clone + Sync,
{
    loop {
        if entry.last_read.lock().unwrap().elapsed() > IDLE_TTL {
            break;
        }
        let index = entry.slot.lock().unwrap().meta.index;
        let blocking = QueryOptions {
            min_index: index.max(1),
            max_wait: Some(REFRESH_WAIT),
            ..opts.clone()
        };
        let r = tokio::select! {
            _ = entry.stop.cancelled() => break,
            r = b.query(q.clone(), blocking) => r,
        };
        use std::sync::atomic::Ordering::Relaxed;
        match r {
            Ok((meta, out)) => {
                if meta.index != index {
                    store(&entry, meta, &out);
                } else {
                    // Nothing new: the result is as fresh as now.
                    entry.slot.lock().unwrap().fetched = Instant::now();
                }
                entry.current.store(true, Relaxed);
            }
            Err(e) => {
                entry.current.store(false, Relaxed);
                tracing::debug!(target: "agent", key = %key, error = %e, "cache refresh failed");
                tokio::select! {
                    _ = entry.stop.cancelled() => break,
                    _ = tokio::time::sleep(REFRESH_RETRY) => {}
                }
            }
        }
    }
    b.query_cache().remove(&key, &entry);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_directives() {
        let cc = CacheControl::parse("max-age=30, stale-if-error=600");
        assert_eq!(cc.max_age, Some(Duration::from_secs(30)));
        assert_eq!(cc.stale_if_error, Some(Duration::from_secs(600)));
        assert!(!cc.must_revalidate);
        assert!(CacheControl::parse("Must-Revalidate").must_revalidate);
        assert_eq!(CacheControl::parse("no-store"), CacheControl::default());
    }
}
