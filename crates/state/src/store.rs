//! The store: an immutable root of persistent maps, swapped atomically by the single writer.
//!
//! `apply` clones the root (O(1) with `imbl`), runs the command against the clone inside a
//! [`Tx`], and publishes the clone only if the command succeeded, so a rejected command changes
//! nothing. Readers take the current root (one `Arc` clone under a read lock held for a pointer
//! copy) and never wait for a writer. After publishing, the writer notifies exactly the watchers
//! the command touched (see [`crate::watch`]).
//!
//! This module must stay pure: no clock, no randomness, no I/O. Time arrives in the proposal
//! (`at_ms`); the Raft index arrives with every write and becomes every `ModifyIndex`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use equivalent::Comparable;
use imbl::{OrdMap, OrdSet};
use serde::{Deserialize, Serialize};

use crate::command::{ApplyResult, Command, Proposal};
use crate::error::StateError;
use crate::key::{Key, KeyPair, KeyTriple, PairRef, TripleRef};
use crate::records::{CheckRec, KvRec, NodeRec, ServiceRec, SessionRec};
use crate::view::View;
use crate::watch::{Changes, Hub};

/// The tables whose max index the store tracks (Consul's `index` table rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Table {
    Nodes = 0,
    Services = 1,
    Checks = 2,
    Kvs = 3,
    Tombstones = 4,
    Sessions = 5,
    Coordinates = 6,
    AclTokens = 7,
    AclPolicies = 8,
    AclRoles = 9,
    AclAuthMethods = 10,
    AclBindingRules = 11,
    PreparedQueries = 12,
}

impl Table {
    pub const ALL: [Table; 13] = [
        Table::Nodes,
        Table::Services,
        Table::Checks,
        Table::Kvs,
        Table::Tombstones,
        Table::Sessions,
        Table::Coordinates,
        Table::AclTokens,
        Table::AclPolicies,
        Table::AclRoles,
        Table::AclAuthMethods,
        Table::AclBindingRules,
        Table::PreparedQueries,
    ];

    /// The ACL tables.
    pub const ACL: [Table; 5] = [
        Table::AclTokens,
        Table::AclPolicies,
        Table::AclRoles,
        Table::AclAuthMethods,
        Table::AclBindingRules,
    ];

    /// The index-table key, as Consul names it.
    pub fn name(self) -> &'static str {
        match self {
            Table::Nodes => "nodes",
            Table::Services => "services",
            Table::Checks => "checks",
            Table::Kvs => "kvs",
            Table::Tombstones => "tombstones",
            Table::Sessions => "sessions",
            Table::Coordinates => "coordinates",
            Table::AclTokens => "acl-tokens",
            Table::AclPolicies => "acl-policies",
            Table::AclRoles => "acl-roles",
            Table::AclAuthMethods => "acl-auth-methods",
            Table::AclBindingRules => "acl-binding-rules",
            Table::PreparedQueries => "prepared-queries",
        }
    }
}

/// Index-table key of one service name (Consul's `serviceIndexName`), case-folded.
pub(crate) fn service_index_key(folded: &str) -> String {
    format!("service.{folded}")
}
/// Index-table key of one node (Consul's `nodeIndexName`), case-folded.
pub(crate) fn node_index_key(folded: &str) -> String {
    format!("node.{folded}")
}
pub(crate) const SERVICE_EXTINCTION: &str = "service_last_extinction";
pub(crate) const NODE_EXTINCTION: &str = "node_last_extinction";

pub(crate) type Pair = (String, String);

/// One immutable version of everything. Primary tables are keyed by case-folded names where
/// Consul's indexes fold case; secondary indexes are rebuilt on restore, never snapshotted.
/// The catalog's tables share their keys ([`crate::key`]).
///
/// Catalog records sit behind an `Arc`: a persistent map's node holds 16 entries inline and is
/// copied whole when a write touches it while an older version (a reader, a frozen snapshot)
/// still shares it, and allocated whole even when half full. Inline, a record is several
/// hundred bytes and each copy clones every string of 16 records; behind an `Arc` an entry is
/// its key and a pointer.
#[derive(Clone, Default)]
pub(crate) struct State {
    /// Raft index of the last entry applied to this version.
    pub index: u64,
    /// Restore generation (see `watch`).
    pub epoch: u64,
    pub nodes: OrdMap<Key, Arc<NodeRec>>,
    /// folded node ID → folded node name
    pub node_ids: OrdMap<String, Key>,
    /// (folded node, folded service ID)
    pub services: OrdMap<KeyPair, Arc<ServiceRec>>,
    /// folded service name → instances
    pub services_by_name: OrdMap<String, OrdSet<KeyPair>>,
    /// (folded node, folded check ID)
    pub checks: OrdMap<KeyPair, Arc<CheckRec>>,
    /// (folded node, folded service ID, folded check ID): each instance's checks, as one flat
    /// ordered set. A set per instance cost a whole B-tree node each (~3.5 KB for one check).
    pub checks_by_service: OrdSet<KeyTriple>,
    pub kvs: OrdMap<String, KvRec>,
    /// session ID → keys it holds
    pub kvs_by_session: OrdMap<String, OrdSet<String>>,
    /// key (or deleted prefix) → index of its deletion
    pub tombstones: OrdMap<String, u64>,
    pub sessions: OrdMap<String, SessionRec>,
    /// folded node → session IDs
    pub sessions_by_node: OrdMap<String, OrdSet<String>>,
    /// (folded node, folded check ID) → session IDs tied to that check
    pub session_checks: OrdMap<Pair, OrdSet<String>>,
    /// (folded node, folded segment) → LAN coordinate
    pub coordinates: OrdMap<Pair, crate::command::CoordinateUpdate>,
    /// Consul's index table: table names, `service.<name>`, `node.<name>`, extinction indexes.
    pub indexes: OrdMap<String, u64>,
    /// Autopilot's configuration, once written.
    pub autopilot: Option<crate::AutopilotConfig>,
    /// Tokens, policies, roles, auth methods, binding rules.
    pub acl: crate::acl::AclTables,
    /// query ID → prepared query
    pub prepared_queries: OrdMap<String, crate::PreparedQueryRec>,
    /// folded query name → query ID
    pub prepared_query_names: OrdMap<String, String>,
}

impl State {
    pub fn index_of(&self, key: &str) -> Option<u64> {
        self.indexes.get(key).copied()
    }

    pub fn table_index(&self, t: Table) -> u64 {
        self.index_of(t.name()).unwrap_or(0)
    }

    pub fn max_index(&self, tables: &[Table]) -> u64 {
        tables
            .iter()
            .map(|t| self.table_index(*t))
            .max()
            .unwrap_or(0)
    }

    /// Keys of every service instance on a node.
    pub fn services_of_node(&self, node: &str) -> Vec<KeyPair> {
        range_pairs(&self.services, node)
    }

    /// Keys of every check on a node.
    pub fn checks_of_node(&self, node: &str) -> Vec<KeyPair> {
        range_pairs(&self.checks, node)
    }

    /// Keys (folded node, folded check ID) of the checks of the instance (folded `node`,
    /// folded service `id`).
    pub fn checks_of_service(&self, node: &str, id: &str) -> Vec<KeyPair> {
        self.checks_by_service
            .range(TripleRef(node, id, "")..)
            .take_while(|(n, s, _)| **n == *node && **s == *id)
            .map(|(n, _, c)| (n.clone(), c.clone()))
            .collect()
    }

    /// The key of node `folded`: the nodes table's own when the node exists.
    pub fn node_key(&self, folded: &str) -> Key {
        match self.nodes.get_key_value(folded) {
            Some((k, _)) => k.clone(),
            None => folded.into(),
        }
    }

    /// The key of instance (folded `node`, folded `id`): the services table's own when it
    /// exists, else one made with [`State::node_key`].
    pub fn service_key(&self, node: &str, id: &str) -> KeyPair {
        match self.services.get_key_value(&PairRef(node, id)) {
            Some((k, _)) => k.clone(),
            None => (self.node_key(node), id.into()),
        }
    }

    /// The key of check (folded `node`, folded `id`), shared as [`State::service_key`].
    pub fn check_key(&self, node: &str, id: &str) -> KeyPair {
        match self.checks.get_key_value(&PairRef(node, id)) {
            Some((k, _)) => k.clone(),
            None => (self.node_key(node), id.into()),
        }
    }
}

fn range_pairs<V: Clone>(map: &OrdMap<KeyPair, V>, first: &str) -> Vec<KeyPair> {
    map.range(PairRef(first, "")..)
        .take_while(|(k, _)| *k.0 == *first)
        .map(|(k, _)| k.clone())
        .collect()
}

/// Add `v` to the set stored under `k`.
pub(crate) fn multi_insert<K: Ord + Clone, V: Ord + Clone>(
    m: &mut OrdMap<K, OrdSet<V>>,
    k: K,
    v: V,
) {
    m.entry(k).or_default().insert(v);
}

/// Remove `v` from the set stored under `k`, dropping the set when it empties.
pub(crate) fn multi_remove<K: Ord + Clone, V: Ord + Clone, Q: Comparable<V> + ?Sized>(
    m: &mut OrdMap<K, OrdSet<V>>,
    k: &K,
    v: &Q,
) {
    if let Some(set) = m.get_mut(k) {
        set.remove(v);
        if set.is_empty() {
            m.remove(k);
        }
    }
}

/// A write in progress: a private copy of the root plus what it touched.
pub(crate) struct Tx {
    pub s: State,
    pub idx: u64,
    pub at_ms: u64,
    pub changes: Changes,
    /// (key, unix ms) lock-delay deadlines set by session invalidation.
    pub lock_delays: Vec<(String, u64)>,
}

impl Tx {
    pub fn new(s: State, idx: u64, at_ms: u64) -> Self {
        Tx {
            s,
            idx,
            at_ms,
            changes: Changes::default(),
            lock_delays: Vec::new(),
        }
    }

    /// Raise an index-table row to this write's index.
    pub fn bump(&mut self, key: &str) {
        let cur = self.s.index_of(key).unwrap_or(0);
        if self.idx > cur || !self.s.indexes.contains_key(key) {
            self.s.indexes.insert(key.to_owned(), self.idx.max(cur));
        }
    }

    pub fn bump_table(&mut self, t: Table) {
        self.bump(t.name());
        self.changes.tables.insert(t);
    }

    pub fn bump_service(&mut self, folded_name: &str) {
        self.bump(&service_index_key(folded_name));
        self.changes.services.insert(folded_name.to_owned());
    }

    pub fn bump_node(&mut self, folded_node: &str) {
        self.bump(&node_index_key(folded_node));
        self.changes.nodes.insert(folded_node.to_owned());
    }

    /// Run one command against this transaction's copy.
    pub fn run(&mut self, cmd: &Command) -> ApplyResult {
        fn unit(r: Result<(), StateError>) -> ApplyResult {
            match r {
                Ok(()) => ApplyResult::Ok,
                Err(e) => ApplyResult::Err(e),
            }
        }
        match cmd {
            Command::Register(req) => unit(self.ensure_registration(req)),
            Command::Deregister(req) => unit(self.deregister(req)),
            Command::Kv(op) => match self.kv_apply(op) {
                Ok(b) => ApplyResult::Bool(b),
                Err(e) => ApplyResult::Err(e),
            },
            Command::Txn(ops) => ApplyResult::Txn(self.txn(ops)),
            Command::TxnSteps(steps) => ApplyResult::Txn(self.txn_steps(steps)),
            Command::SessionCreate(sess) => unit(self.session_create(sess)),
            Command::SessionDestroy { id } => unit(self.session_destroy(id)),
            Command::CoordinateBatchUpdate(updates) => {
                self.coordinate_batch_update(updates);
                ApplyResult::Ok
            }
            Command::AutopilotSetConfig { config, cas } => self.autopilot_set(config, *cas),
            Command::Acl(c) => unit(self.acl_apply(c)),
            Command::PreparedQuery(c) => unit(self.prepared_query_apply(c)),
            Command::TombstoneReap { up_to_index } => {
                self.tombstone_reap(*up_to_index);
                ApplyResult::Ok
            }
            // Whole-state replacement happens in `Store::apply`, never inside a transaction.
            Command::Restore { .. } => ApplyResult::Err(StateError::Message(
                "a restore cannot run inside a transaction".into(),
            )),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) struct Inner {
    root: RwLock<Arc<State>>,
    /// Serialises apply / note_index / restore (there is one writer, this makes it a rule).
    writer: Mutex<()>,
    /// key → unix ms until which `acquire` must fail. In memory only, like Consul's `Delay`.
    lock_delays: Mutex<HashMap<String, u64>>,
    /// Bumped after every publish of a new root: a cheap "has anything changed" for caches.
    generation: AtomicU64,
    pub hub: Hub,
}

impl Inner {
    pub fn root(&self) -> Arc<State> {
        self.root
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn publish(&self, s: State) {
        let index = s.index;
        *self.root.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(s);
        self.hub.last_index.store(index, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

/// A point-in-time copy of the store (see [`Store::freeze`]).
#[derive(Clone)]
pub struct Frozen(Arc<State>);

impl Frozen {
    /// Deterministic snapshot bytes of every table, as of the freeze.
    pub fn dump(&self) -> Vec<u8> {
        crate::snapshot::encode(&self.0)
    }

    /// Index of the last entry applied before the freeze.
    pub fn index(&self) -> u64 {
        self.0.index
    }
}

/// The state store. A cheap `Clone` handle; `Send + Sync`.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("last_index", &self.last_index())
            .finish()
    }
}

/// Consul caps lock-delay at 60 s (`structs.MaxLockDelay`).
pub(crate) const MAX_LOCK_DELAY_NS: u64 = 60_000_000_000;

impl Store {
    pub fn new() -> Store {
        Store {
            inner: Arc::new(Inner {
                root: RwLock::new(Arc::new(State::default())),
                writer: Mutex::new(()),
                lock_delays: Mutex::new(HashMap::new()),
                generation: AtomicU64::new(0),
                hub: Hub::new(),
            }),
        }
    }

    /// Apply one committed log entry. Single writer (the Raft state machine); deterministic.
    pub fn apply(&self, index: u64, proposal: &Proposal) -> ApplyResult {
        if let crate::Command::Restore { state } = &proposal.command {
            return self.restore_at(index, state.as_deref().unwrap_or_default());
        }
        let _w = lock(&self.inner.writer);
        let base = self.inner.root();
        debug_assert!(
            index >= base.index,
            "apply index {index} behind {}",
            base.index
        );
        let mut tx = Tx::new((*base).clone(), index, proposal.at_ms);
        let result = tx.run(&proposal.command);
        if result.is_err() {
            // Rejected: the log entry is consumed, the data is untouched.
            let mut s = (*base).clone();
            s.index = index;
            self.inner.publish(s);
            return result;
        }
        let Tx {
            mut s,
            changes,
            lock_delays,
            at_ms,
            ..
        } = tx;
        s.index = index;
        self.inner.publish(s);
        if !lock_delays.is_empty() {
            let mut delays = lock(&self.inner.lock_delays);
            delays.retain(|_, until| *until > at_ms);
            delays.extend(lock_delays);
        }
        self.inner.hub.publish(&changes, index);
        result
    }

    /// An O(1) point-in-time read view.
    pub fn view(&self) -> View {
        View::new(self.inner.root(), self.inner.clone())
    }

    /// Index of the last applied entry.
    /// Changes (grows) every time a new state is published: by a command, an index-only
    /// entry or a restore. Read it *before* reading the state, and a cache entry tagged with it
    /// can only be older than the data it holds, never newer.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::SeqCst)
    }

    pub fn last_index(&self) -> u64 {
        self.inner.hub.last_index.load(Ordering::SeqCst)
    }

    /// Raft applied a non-command entry (blank/membership): advance `last_index` only.
    pub fn note_index(&self, index: u64) {
        let _w = lock(&self.inner.writer);
        let base = self.inner.root();
        if index <= base.index {
            return;
        }
        let mut s = (*base).clone();
        s.index = index;
        self.inner.publish(s);
    }

    /// Deterministic snapshot bytes of every table.
    pub fn dump(&self) -> Vec<u8> {
        crate::snapshot::encode(&self.inner.root())
    }

    /// The state as it is now, in O(1): it shares every table with the store until they
    /// change, so holding it costs only what has changed since. [`Frozen::dump`] gives the
    /// bytes [`Store::dump`] gives now.
    pub fn freeze(&self) -> Frozen {
        Frozen(self.inner.root())
    }

    /// A restore that arrived through the log at `index`: the snapshot's data, with every
    /// table index raised to `index` so blocking queries on newer indexes still wake. A
    /// snapshot that does not decode changes nothing.
    fn restore_at(&self, index: u64, bytes: &[u8]) -> ApplyResult {
        let mut s = match crate::snapshot::decode(bytes) {
            Ok(s) => s,
            Err(e) => {
                self.note_index(index);
                return ApplyResult::Err(e);
            }
        };
        let _w = lock(&self.inner.writer);
        s.epoch = self.inner.root().epoch + 1;
        s.index = s.index.max(index);
        let at = s.index;
        self.inner.publish(s);
        lock(&self.inner.lock_delays).clear();
        self.inner.hub.restored(at);
        ApplyResult::Ok
    }

    /// Replace everything with a snapshot, then wake every watcher.
    pub fn restore(&self, bytes: &[u8]) -> Result<(), StateError> {
        let mut s = crate::snapshot::decode(bytes)?;
        let _w = lock(&self.inner.writer);
        s.epoch = self.inner.root().epoch + 1;
        let index = s.index;
        self.inner.publish(s);
        lock(&self.inner.lock_delays).clear();
        self.inner.hub.restored(index);
        Ok(())
    }

    /// Unix ms until which `acquire` of `key` must fail (set when a session holding it was
    /// invalidated). The caller compares with its clock; expired entries may still be reported.
    pub fn lock_delay_until(&self, key: &str) -> Option<u64> {
        lock(&self.inner.lock_delays).get(key).copied()
    }
}
