//! The agent's running configuration, and what follows it.
//!
//! Read everywhere, replaced only by a reload: callers take an `Arc` of the whole config, and
//! the few values read on every request (KV size limit, DNS staleness) are kept as atomics so a
//! hot path never takes the lock. Observers (the binary's `watches`) are told the config at
//! start and after each reload, and told when the agent stops.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use proconsul_config::RuntimeConfig;

use crate::ConfigObserver;

pub(crate) struct LiveConfig {
    /// Its `services` and `checks` are empty — once loaded, the definitions live only in the
    /// agent's local state, so a config declaring thousands of checks is not held twice.
    current: RwLock<Arc<RuntimeConfig>>,
    /// `limits.kv_max_value_size`; read on every KV write.
    kv_max_value_size: AtomicU64,
    /// `dns_config.allow_stale` and `max_stale` (ms); read per DNS query.
    dns_allow_stale: AtomicBool,
    dns_max_stale_ms: AtomicU64,
    observers: Mutex<Vec<Arc<dyn ConfigObserver>>>,
    /// Where the HTTP API listens; fixed for the agent's life, told to observers.
    http_addrs: Vec<SocketAddr>,
}

impl LiveConfig {
    pub(crate) fn new(mut config: RuntimeConfig, http_addrs: Vec<SocketAddr>) -> LiveConfig {
        config.services.clear();
        config.checks.clear();
        LiveConfig {
            kv_max_value_size: AtomicU64::new(config.kv_max_value_size),
            dns_allow_stale: AtomicBool::new(config.dns.allow_stale),
            dns_max_stale_ms: AtomicU64::new(millis(config.dns.max_stale)),
            current: RwLock::new(Arc::new(config)),
            observers: Mutex::new(Vec::new()),
            http_addrs,
        }
    }

    pub(crate) fn get(&self) -> Arc<RuntimeConfig> {
        self.current.read().unwrap().clone()
    }

    pub(crate) fn http_addrs(&self) -> &[SocketAddr] {
        &self.http_addrs
    }

    pub(crate) fn kv_max_value_size(&self) -> u64 {
        self.kv_max_value_size.load(Ordering::Relaxed)
    }

    /// `(allow_stale, max_stale_ms)` of `dns_config`.
    pub(crate) fn dns_staleness(&self) -> (bool, u64) {
        (
            self.dns_allow_stale.load(Ordering::Relaxed),
            self.dns_max_stale_ms.load(Ordering::Relaxed),
        )
    }

    /// Make `new` the running config (its definitions already loaded) and tell the observers.
    pub(crate) fn replace(&self, new: RuntimeConfig) {
        self.install(new);
        let cfg = self.get();
        let observers = self.observers.lock().unwrap().clone();
        for o in observers {
            o.configured(&cfg, &self.http_addrs);
        }
    }

    fn install(&self, mut new: RuntimeConfig) {
        new.services.clear();
        new.checks.clear();
        self.kv_max_value_size
            .store(new.kv_max_value_size, Ordering::Relaxed);
        self.dns_allow_stale
            .store(new.dns.allow_stale, Ordering::Relaxed);
        self.dns_max_stale_ms
            .store(millis(new.dns.max_stale), Ordering::Relaxed);
        *self.current.write().unwrap() = Arc::new(new);
    }

    /// Tell `o` the current config now and after every reload.
    pub(crate) fn observe(&self, o: Arc<dyn ConfigObserver>) {
        o.configured(&self.get(), &self.http_addrs);
        self.observers.lock().unwrap().push(o);
    }

    /// Tell every observer the agent stopped; they are not told anything after.
    pub(crate) fn stop_observers(&self) {
        let observers = std::mem::take(&mut *self.observers.lock().unwrap());
        for o in observers {
            o.stopped();
        }
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
