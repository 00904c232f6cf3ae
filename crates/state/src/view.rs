//! Point-in-time read views.
//!
//! A [`View`] holds one immutable root, so every read through it is consistent with every other
//! and with the index it reports, however many writes land meanwhile. Each read registers the
//! narrowest notifier covering what it looked at into the caller's [`WatchSet`] (a KV key, a KV
//! prefix, a service name, a node name, or a table), tagged with the view's index. The domain
//! reads themselves live next to their writes (`catalog`, `kv`, `session`).

use std::sync::Arc;

use proconsul_types::{TxnError, TxnKvOp, TxnResult};

use crate::records::fold;
use crate::store::{Inner, State, Table, Tx};
use crate::watch::{Notifier, WatchSet};

/// A consistent, O(1) snapshot of the store for reading.
#[derive(Clone)]
pub struct View {
    root: Arc<State>,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View")
            .field("index", &self.root.index)
            .finish()
    }
}

/// See [`View::counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts {
    pub nodes: usize,
    pub services: usize,
    pub service_instances: usize,
    pub kv_entries: usize,
    pub sessions: usize,
}

impl View {
    pub(crate) fn new(root: Arc<State>, inner: Arc<Inner>) -> Self {
        View { root, inner }
    }

    pub(crate) fn state(&self) -> &State {
        &self.root
    }

    /// How much the store holds — nodes, service names, service instances, KV entries,
    /// sessions — counted without copying anything (the `consul.state.*` gauges).
    pub fn counts(&self) -> StateCounts {
        let s = self.state();
        StateCounts {
            nodes: s.nodes.len(),
            services: s.services_by_name.len(),
            service_instances: s.services.len(),
            kv_entries: s.kvs.len(),
            sessions: s.sessions.len(),
        }
    }

    /// Index of the last entry applied when the view was taken.
    pub fn index(&self) -> u64 {
        self.root.index
    }

    /// The max index of one table (Consul's index table row).
    pub fn table_index(&self, table: Table) -> u64 {
        self.root.table_index(table)
    }

    /// Run read-only transaction operations (`get`, `get-tree`, `check-*`) against this view,
    /// like Consul's `TxnRO`: no Raft round needed. Write verbs act on a throwaway copy.
    pub fn txn_read(&self, ops: &[TxnKvOp]) -> Result<Vec<TxnResult>, Vec<TxnError>> {
        let ops: Vec<crate::TxnOp> = ops.iter().cloned().map(crate::TxnOp::from_api).collect();
        Tx::new((*self.root).clone(), 0, 0).txn(&ops)
    }

    fn add(&self, ws: &mut WatchSet, n: Arc<Notifier>) {
        ws.add(n, self.root.index, (&self.inner.hub.epoch, self.root.epoch));
    }

    pub(crate) fn watch_table(&self, ws: &mut WatchSet, t: Table) {
        self.add(ws, self.inner.hub.table(t));
    }
    pub(crate) fn watch_kv_key(&self, ws: &mut WatchSet, key: &str) {
        self.add(ws, self.inner.hub.kv_key(key));
    }
    pub(crate) fn watch_kv_prefix(&self, ws: &mut WatchSet, prefix: &str) {
        self.add(ws, self.inner.hub.kv_prefix(prefix));
    }
    /// `folded` must already be case-folded.
    pub(crate) fn watch_service(&self, ws: &mut WatchSet, folded: &str) {
        self.add(ws, self.inner.hub.service(folded));
    }
    pub(crate) fn watch_node(&self, ws: &mut WatchSet, node: &str) {
        self.add(ws, self.inner.hub.node(&fold(node)));
    }
    pub(crate) fn watch_node_checks(&self, ws: &mut WatchSet, node: &str) {
        self.add(ws, self.inner.hub.node_checks(&fold(node)));
    }
}
