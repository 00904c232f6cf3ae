//! Sessions (Consul `state/session.go`, `session_ce.go`).
//!
//! A session belongs to a node and may be tied to health checks; it is destroyed when its node
//! is deregistered, when a tied check turns critical or is removed, or explicitly. Destroying it
//! releases (`release`) or deletes (`delete`) the keys it holds and sets a lock-delay deadline on
//! each: `at_ms` of the entry plus the session's `LockDelay` (capped at 60 s). TTL timers are the
//! leader's business; the store only keeps the TTL string.

use proconsul_types::{health, SessionEntry, BEHAVIOR_DELETE, BEHAVIOR_RELEASE};

use crate::command::NewSession;
use crate::error::StateError;
use crate::key::PairRef;
use crate::records::{fold, SessionRec};
use crate::store::{multi_insert, multi_remove, Table, Tx, MAX_LOCK_DELAY_NS};
use crate::view::View;
use crate::watch::WatchSet;

impl Tx {
    /// Consul `sessionCreateTxn`.
    pub(crate) fn session_create(&mut self, entry: &NewSession) -> Result<(), StateError> {
        let mut sess = entry.0.clone();
        if sess.id.is_empty() {
            return Err(StateError::MissingSessionId);
        }
        match sess.behavior.as_str() {
            "" => sess.behavior = BEHAVIOR_RELEASE.to_owned(),
            BEHAVIOR_RELEASE | BEHAVIOR_DELETE => {}
            other => return Err(StateError::InvalidSessionBehavior(other.to_owned())),
        }
        sess.create_index = self.idx;
        sess.modify_index = self.idx;
        let node_key = fold(&sess.node);
        if !self.s.nodes.contains_key(&*node_key) {
            return Err(StateError::MissingNode);
        }
        for check in sess.check_ids() {
            let Some(c) = self.s.checks.get(&PairRef(&node_key, &fold(check))) else {
                return Err(StateError::MissingCheck(check.to_owned()));
            };
            if &*c.status == health::CRITICAL {
                return Err(StateError::CheckCritical(check.to_owned()));
            }
        }
        // Re-creating an ID (never done by the endpoint) must not leave stale mappings.
        if self.s.sessions.contains_key(&sess.id) {
            self.unlink_session(&sess.id.clone());
        }
        for check in sess.check_ids() {
            multi_insert(
                &mut self.s.session_checks,
                (node_key.clone(), fold(check)),
                sess.id.clone(),
            );
        }
        multi_insert(&mut self.s.sessions_by_node, node_key, sess.id.clone());
        self.s.sessions.insert(sess.id.clone(), sess);
        self.bump_table(Table::Sessions);
        Ok(())
    }

    /// Explicit destroy (`PUT /v1/session/destroy`); unknown IDs are a no-op.
    pub(crate) fn session_destroy(&mut self, id: &str) -> Result<(), StateError> {
        self.delete_session(id)
    }

    /// Remove a session record and its node/check mappings.
    fn unlink_session(&mut self, id: &str) -> Option<SessionRec> {
        let sess = self.s.sessions.remove(id)?;
        let node_key = fold(&sess.node);
        for check in sess.check_ids() {
            multi_remove(
                &mut self.s.session_checks,
                &(node_key.clone(), fold(check)),
                &sess.id,
            );
        }
        multi_remove(&mut self.s.sessions_by_node, &node_key, &sess.id);
        Some(sess)
    }

    /// Consul `deleteSessionTxn`: drop the session, then release or delete its locks.
    pub(crate) fn delete_session(&mut self, id: &str) -> Result<(), StateError> {
        let Some(sess) = self.unlink_session(id) else {
            return Ok(());
        };
        self.bump_table(Table::Sessions);
        self.prepared_queries_of_session_delete(id);

        let delay_ms = sess.lock_delay.min(MAX_LOCK_DELAY_NS) / 1_000_000;
        let keys: Vec<String> = self
            .s
            .kvs_by_session
            .get(id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        match sess.behavior.as_str() {
            BEHAVIOR_DELETE => {
                for k in &keys {
                    self.kv_delete(k);
                }
            }
            BEHAVIOR_RELEASE => {
                for k in &keys {
                    if let Some(mut e) = self.s.kvs.get(k).cloned() {
                        e.session = None;
                        self.kv_set(k, e, true);
                    }
                }
            }
            other => {
                return Err(StateError::Message(format!(
                    "unknown session behavior {other:?}"
                )))
            }
        }
        if delay_ms > 0 {
            let until = self.at_ms.saturating_add(delay_ms);
            self.lock_delays
                .extend(keys.into_iter().map(|k| (k, until)));
        }
        Ok(())
    }
}

impl View {
    /// One session. Index: the sessions table.
    pub fn session(&self, ws: &mut WatchSet, id: &str) -> (u64, Option<SessionEntry>) {
        self.watch_table(ws, Table::Sessions);
        let s = self.state();
        (
            s.table_index(Table::Sessions),
            s.sessions.get(id).map(SessionRec::to_api),
        )
    }

    /// All sessions, ordered by ID. Index: the sessions table.
    pub fn sessions(&self, ws: &mut WatchSet) -> (u64, Vec<SessionEntry>) {
        self.watch_table(ws, Table::Sessions);
        let s = self.state();
        (
            s.table_index(Table::Sessions),
            s.sessions.values().map(SessionRec::to_api).collect(),
        )
    }

    /// Sessions of a node, ordered by ID. Index: the sessions table.
    pub fn node_sessions(&self, ws: &mut WatchSet, node: &str) -> (u64, Vec<SessionEntry>) {
        self.watch_table(ws, Table::Sessions);
        let s = self.state();
        let rows = s
            .sessions_by_node
            .get(&fold(node))
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| s.sessions.get(id))
                    .map(SessionRec::to_api)
                    .collect()
            })
            .unwrap_or_default();
        (s.table_index(Table::Sessions), rows)
    }
}
