//! Blocking-query plumbing: fine-grained notifiers and the [`WatchSet`] future.
//!
//! There is no global condvar. A write notifies only what it touched: the table notifiers
//! (nodes, services, checks, kvs, sessions), the notifier of each KV key and KV prefix someone is
//! watching, and the notifier of each service name, node name and node's check list. Per-key notifiers live in
//! registries of `Weak` handles, so 1,000 queries blocked on one key share one notifier and a
//! key nobody watches costs nothing.
//!
//! Race-freedom without holding locks across the read: each notifier records `changed_at`, the
//! Raft index of the last write that touched it, and a watch set remembers the index of the view
//! it was filled from. The set has fired once any of its notifiers has `changed_at > view index`.
//! A writer publishes the new root and `last_index` *before* it looks notifiers up, and a reader
//! creates a missing notifier with `changed_at = last_index` while holding the registry lock, so a
//! write racing with registration is never lost (at worst the new watcher wakes once spuriously).
//! Restore bumps an epoch and wakes every waiter: sets filled before it fire.
//!
//! Wakers are kept in a small slab per notifier; re-polling replaces the waker in its slot and
//! dropping the future frees it. Nothing here depends on an async runtime.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};

use crate::store::Table;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One thing that can change: a table, a KV key or prefix, a service name, a node name.
pub(crate) struct Notifier {
    changed_at: AtomicU64,
    waiters: Mutex<Waiters>,
}

#[derive(Default)]
struct Waiters {
    slots: Vec<Option<(u64, Waker)>>,
    free: Vec<usize>,
    next_id: u64,
}

/// A waiter's place in a notifier's slab; `id` guards against the slot having been reused.
#[derive(Clone, Copy, Debug)]
struct Slot {
    idx: usize,
    id: u64,
}

impl Notifier {
    fn new(changed_at: u64) -> Arc<Self> {
        Arc::new(Notifier {
            changed_at: AtomicU64::new(changed_at),
            waiters: Mutex::new(Waiters::default()),
        })
    }

    fn changed_since(&self, index: u64) -> bool {
        self.changed_at.load(Ordering::SeqCst) > index
    }

    /// A write at `index` touched this: record it, then wake every waiter.
    pub(crate) fn notify(&self, index: u64) {
        self.changed_at.fetch_max(index, Ordering::SeqCst);
        self.wake_all();
    }

    fn reset(&self, index: u64) {
        self.changed_at.store(index, Ordering::SeqCst);
        self.wake_all();
    }

    fn wake_all(&self) {
        let wakers: Vec<Waker> = {
            let mut w = lock(&self.waiters);
            let Waiters { slots, free, .. } = &mut *w;
            let mut out = Vec::new();
            for (i, slot) in slots.iter_mut().enumerate() {
                if let Some((_, waker)) = slot.take() {
                    out.push(waker);
                    free.push(i);
                }
            }
            out
        };
        for w in wakers {
            w.wake();
        }
    }

    fn register(&self, prev: Option<Slot>, waker: &Waker) -> Slot {
        let mut w = lock(&self.waiters);
        if let Some(p) = prev {
            if let Some(Some((id, old))) = w.slots.get_mut(p.idx) {
                if *id == p.id {
                    if !old.will_wake(waker) {
                        *old = waker.clone();
                    }
                    return p;
                }
            }
        }
        let id = w.next_id;
        w.next_id += 1;
        let entry = Some((id, waker.clone()));
        let idx = match w.free.pop() {
            Some(i) => {
                w.slots[i] = entry;
                i
            }
            None => {
                w.slots.push(entry);
                w.slots.len() - 1
            }
        };
        Slot { idx, id }
    }

    fn deregister(&self, slot: Slot) {
        let mut w = lock(&self.waiters);
        if let Some(entry) = w.slots.get_mut(slot.idx) {
            if matches!(entry, Some((id, _)) if *id == slot.id) {
                *entry = None;
                w.free.push(slot.idx);
            }
        }
    }

    #[cfg(test)]
    fn waiter_count(&self) -> usize {
        lock(&self.waiters)
            .slots
            .iter()
            .filter(|s| s.is_some())
            .count()
    }
}

/// Named notifiers held weakly; dead entries are pruned as the map grows.
#[derive(Default)]
struct Registry {
    map: BTreeMap<String, Weak<Notifier>>,
    live_after_prune: usize,
}

impl Registry {
    fn get_or_create(&mut self, key: &str, init: u64) -> Arc<Notifier> {
        if let Some(n) = self.map.get(key).and_then(Weak::upgrade) {
            return n;
        }
        let n = Notifier::new(init);
        self.map.insert(key.to_owned(), Arc::downgrade(&n));
        if self.map.len() > 2 * self.live_after_prune.max(64) {
            self.map.retain(|_, w| w.strong_count() > 0);
            self.live_after_prune = self.map.len();
        }
        n
    }

    fn get(&self, key: &str) -> Option<Arc<Notifier>> {
        self.map.get(key).and_then(Weak::upgrade)
    }

    /// Live notifiers whose key starts with `prefix`.
    fn with_prefix(&self, prefix: &str) -> Vec<Arc<Notifier>> {
        self.map
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter_map(|(_, w)| w.upgrade())
            .collect()
    }

    fn all(&self) -> Vec<Arc<Notifier>> {
        self.map.values().filter_map(Weak::upgrade).collect()
    }

    fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// What one committed write touched; turned into notifications after the new root is visible.
#[derive(Default, Debug)]
pub(crate) struct Changes {
    pub tables: BTreeSet<Table>,
    /// KV keys written or deleted.
    pub kv_keys: BTreeSet<String>,
    /// KV prefixes removed by delete-tree.
    pub kv_trees: BTreeSet<String>,
    /// Case-folded service names.
    pub services: BTreeSet<String>,
    /// Case-folded node names (the node record and its services).
    pub nodes: BTreeSet<String>,
    /// Case-folded node names whose checks changed.
    pub node_checks: BTreeSet<String>,
}

/// Every notifier of one store, plus what a reader needs to register race-free.
pub(crate) struct Hub {
    /// Index of the last applied entry; published before notifiers are looked up.
    pub last_index: AtomicU64,
    /// Bumped by every restore.
    pub epoch: Arc<AtomicU64>,
    tables: Vec<Arc<Notifier>>,
    kv_exact: Mutex<Registry>,
    kv_prefix: Mutex<Registry>,
    services: Mutex<Registry>,
    nodes: Mutex<Registry>,
    node_checks: Mutex<Registry>,
}

impl Hub {
    pub fn new() -> Self {
        Hub {
            last_index: AtomicU64::new(0),
            epoch: Arc::new(AtomicU64::new(0)),
            tables: Table::ALL.iter().map(|_| Notifier::new(0)).collect(),
            kv_exact: Mutex::default(),
            kv_prefix: Mutex::default(),
            services: Mutex::default(),
            nodes: Mutex::default(),
            node_checks: Mutex::default(),
        }
    }

    fn named(&self, reg: &Mutex<Registry>, key: &str) -> Arc<Notifier> {
        let mut r = lock(reg);
        // Read last_index under the registry lock: see the module docs.
        let init = self.last_index.load(Ordering::SeqCst);
        r.get_or_create(key, init)
    }

    pub fn table(&self, t: Table) -> Arc<Notifier> {
        self.tables[t as usize].clone()
    }
    pub fn kv_key(&self, key: &str) -> Arc<Notifier> {
        self.named(&self.kv_exact, key)
    }
    pub fn kv_prefix(&self, prefix: &str) -> Arc<Notifier> {
        self.named(&self.kv_prefix, prefix)
    }
    pub fn service(&self, folded_name: &str) -> Arc<Notifier> {
        self.named(&self.services, folded_name)
    }
    pub fn node(&self, folded_name: &str) -> Arc<Notifier> {
        self.named(&self.nodes, folded_name)
    }
    pub fn node_checks(&self, folded_name: &str) -> Arc<Notifier> {
        self.named(&self.node_checks, folded_name)
    }

    /// Notify everything `changes` touched. Call after the new root and `last_index` are visible.
    pub fn publish(&self, changes: &Changes, index: u64) {
        for t in &changes.tables {
            self.tables[*t as usize].notify(index);
        }
        if !changes.kv_keys.is_empty() || !changes.kv_trees.is_empty() {
            let mut hit: Vec<Arc<Notifier>> = Vec::new();
            {
                let exact = lock(&self.kv_exact);
                if !exact.is_empty() {
                    hit.extend(changes.kv_keys.iter().filter_map(|k| exact.get(k)));
                    for p in &changes.kv_trees {
                        hit.extend(exact.with_prefix(p));
                    }
                }
            }
            {
                let prefixes = lock(&self.kv_prefix);
                if !prefixes.is_empty() {
                    let mut seen: HashSet<&str> = HashSet::new();
                    for k in changes.kv_keys.iter().chain(changes.kv_trees.iter()) {
                        // every prefix of k, including "" and k itself
                        let cuts = k
                            .char_indices()
                            .map(|(i, _)| i)
                            .chain(std::iter::once(k.len()));
                        for cut in cuts {
                            let p = &k[..cut];
                            if seen.insert(p) {
                                hit.extend(prefixes.get(p));
                            }
                        }
                    }
                    for p in &changes.kv_trees {
                        hit.extend(prefixes.with_prefix(p));
                    }
                }
            }
            for n in hit {
                n.notify(index);
            }
        }
        for (reg, names) in [
            (&self.services, &changes.services),
            (&self.nodes, &changes.nodes),
            (&self.node_checks, &changes.node_checks),
        ] {
            if names.is_empty() {
                continue;
            }
            let hit: Vec<Arc<Notifier>> = {
                let r = lock(reg);
                names.iter().filter_map(|n| r.get(n)).collect()
            };
            for n in hit {
                n.notify(index);
            }
        }
    }

    /// Restore: a new epoch, every notifier reset to the restored index and every waiter woken.
    pub fn restored(&self, index: u64) {
        self.last_index.store(index, Ordering::SeqCst);
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let mut all: Vec<Arc<Notifier>> = self.tables.clone();
        for reg in [
            &self.kv_exact,
            &self.kv_prefix,
            &self.services,
            &self.nodes,
            &self.node_checks,
        ] {
            all.extend(lock(reg).all());
        }
        for n in all {
            n.reset(index);
        }
    }
}

/// What a read looked at, to wait for it to change (a blocking query).
///
/// Fill it by passing it to [`crate::View`] reads, then await [`WatchSet::changed`]. An empty set
/// never fires; callers bound the wait with their own timeout.
#[derive(Default)]
pub struct WatchSet {
    /// Lowest view index the set was filled from.
    view_index: Option<u64>,
    epoch: Option<(Arc<AtomicU64>, u64)>,
    notifiers: Vec<Arc<Notifier>>,
    seen: HashSet<usize>,
}

impl std::fmt::Debug for WatchSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchSet")
            .field("view_index", &self.view_index)
            .field("notifiers", &self.notifiers.len())
            .finish()
    }
}

impl WatchSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Nothing was watched (the set can never fire).
    pub fn is_empty(&self) -> bool {
        self.notifiers.is_empty()
    }

    /// Number of distinct notifiers watched.
    pub fn len(&self) -> usize {
        self.notifiers.len()
    }

    /// Has anything watched changed since the view(s) the set was filled from? Non-blocking.
    pub fn is_changed(&self) -> bool {
        let Some(view_index) = self.view_index else {
            return false;
        };
        if let Some((epoch, seen)) = &self.epoch {
            if epoch.load(Ordering::SeqCst) != *seen {
                return true;
            }
        }
        self.notifiers.iter().any(|n| n.changed_since(view_index))
    }

    /// Resolves once anything watched changed after the view the set was filled from.
    pub fn changed(&self) -> impl Future<Output = ()> + Send + '_ {
        Changed {
            ws: self,
            slots: vec![None; self.notifiers.len()],
        }
    }

    pub(crate) fn add(&mut self, n: Arc<Notifier>, view_index: u64, epoch: (&Arc<AtomicU64>, u64)) {
        self.view_index = Some(self.view_index.map_or(view_index, |v| v.min(view_index)));
        match &self.epoch {
            // Filled from views of different epochs: the older one already fired.
            Some((_, seen)) if *seen <= epoch.1 => {}
            _ => self.epoch = Some((epoch.0.clone(), epoch.1)),
        }
        if self.seen.insert(Arc::as_ptr(&n) as usize) {
            self.notifiers.push(n);
        }
    }
}

struct Changed<'a> {
    ws: &'a WatchSet,
    slots: Vec<Option<Slot>>,
}

impl Future for Changed<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.ws.is_changed() {
            return Poll::Ready(());
        }
        for (n, slot) in this.ws.notifiers.iter().zip(this.slots.iter_mut()) {
            *slot = Some(n.register(*slot, cx.waker()));
        }
        // Re-check after registering: a notify between the first check and registration has
        // already stored changed_at, so it is seen here.
        if this.ws.is_changed() {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for Changed<'_> {
    fn drop(&mut self) {
        for (n, slot) in self.ws.notifiers.iter().zip(self.slots.iter()) {
            if let Some(s) = slot {
                n.deregister(*s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;

    struct Counter(AtomicU64);
    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn slab_reuses_slots_and_guards_against_aba() {
        let n = Notifier::new(0);
        let c = Arc::new(Counter(AtomicU64::new(0)));
        let w = Waker::from(c.clone());
        let a = n.register(None, &w);
        let a2 = n.register(Some(a), &w);
        assert_eq!((a.idx, a.id), (a2.idx, a2.id), "re-poll keeps the slot");
        assert_eq!(n.waiter_count(), 1);
        n.notify(5);
        assert_eq!(c.0.load(Ordering::SeqCst), 1);
        assert_eq!(n.waiter_count(), 0);
        // slot reused by someone else; the stale handle must not remove it
        let b = n.register(None, &w);
        assert_eq!(b.idx, a.idx);
        n.deregister(a);
        assert_eq!(n.waiter_count(), 1);
        n.deregister(b);
        assert_eq!(n.waiter_count(), 0);
    }

    #[test]
    fn many_watchers_of_one_key_share_one_notifier() {
        let hub = Hub::new();
        let held: Vec<Arc<Notifier>> = (0..1000).map(|_| hub.kv_key("hot")).collect();
        assert!(held.iter().all(|n| Arc::ptr_eq(n, &held[0])));
        assert_eq!(lock(&hub.kv_exact).map.len(), 1);
    }

    #[test]
    fn handles_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<crate::Store>();
        assert_send_sync::<crate::View>();
        assert_send_sync::<WatchSet>();
        fn assert_send<T: Send>(_: &T) {}
        let ws = WatchSet::new();
        assert_send(&ws.changed());
    }

    #[test]
    fn registry_prunes_dead_entries() {
        let mut r = Registry::default();
        for i in 0..1000 {
            let _dropped = r.get_or_create(&format!("k{i}"), 0);
        }
        assert!(
            r.map.len() <= 200,
            "registry kept {} dead entries",
            r.map.len()
        );
        let a = r.get_or_create("same", 0);
        let b = r.get_or_create("same", 0);
        assert!(Arc::ptr_eq(&a, &b));
    }
}
