//! Key/value store, locks and the tombstone graveyard (Consul `state/kvs.go`, `graveyard.go`).
//!
//! Every delete leaves a tombstone (`key → deletion index`; a delete-tree leaves one for its
//! prefix) so that the index a list or get returns under a prefix never goes backwards after a
//! delete; blocking queries depend on that. The leader reaps old tombstones with
//! `TombstoneReap`. Locks are a session name on the entry; acquiring is refused (`false`) when
//! another session holds it. Lock-delay is *not* checked here: the proposer checks
//! [`crate::Store::lock_delay_until`] before proposing, like Consul's `kvsPreApply`.

use proconsul_types::KvEntry;

use crate::command::{KvOp, KvVerb};
use crate::error::StateError;
use crate::records::KvRec;
use crate::store::{multi_insert, multi_remove, State, Table, Tx};
use crate::view::View;
use crate::watch::WatchSet;

impl Tx {
    /// Apply one KV command. `Ok(false)`: a CAS or lock precondition failed; nothing changed.
    pub(crate) fn kv_apply(&mut self, op: &KvOp) -> Result<bool, StateError> {
        let entry = KvRec {
            flags: op.flags,
            value: op.value.clone(),
            session: op.session.clone().filter(|s| !s.is_empty()),
            ..KvRec::default()
        };
        match op.verb {
            KvVerb::Set => {
                self.kv_set(&op.key, entry, false);
                Ok(true)
            }
            KvVerb::Cas => Ok(self.kv_set_cas(&op.key, entry, op.index).is_some()),
            KvVerb::Lock => self.kv_lock(&op.key, entry).map(|r| r.is_some()),
            KvVerb::Unlock => self.kv_unlock(&op.key, entry).map(|r| r.is_some()),
            KvVerb::Delete => {
                self.kv_delete(&op.key);
                Ok(true)
            }
            KvVerb::DeleteCas => Ok(self.kv_delete_cas(&op.key, op.index)),
            KvVerb::DeleteTree => {
                self.kv_delete_tree(&op.key);
                Ok(true)
            }
        }
    }

    /// Consul `kvsSetTxn`. Fills the entry's indexes (and session unless `update_session`),
    /// writes nothing if the entry would not change, and returns the resulting entry without
    /// its value (all a transaction result needs; values are never copied twice).
    pub(crate) fn kv_set(&mut self, key: &str, mut entry: KvRec, update_session: bool) -> KvRec {
        let existing = self.s.kvs.get(key);
        entry.create_index = existing.map_or(self.idx, |e| e.create_index);
        if !update_session {
            entry.session = existing.and_then(|e| e.session.clone());
        }
        let old_session = existing.and_then(|e| e.session.clone());
        if let Some(e) = existing {
            if e.same(&entry) {
                entry.modify_index = e.modify_index;
                entry.value = None;
                return entry;
            }
        }
        entry.modify_index = self.idx;
        if let Some(old) = &old_session {
            multi_remove(&mut self.s.kvs_by_session, old, &key.to_owned());
        }
        if let Some(new) = &entry.session {
            multi_insert(&mut self.s.kvs_by_session, new.clone(), key.to_owned());
        }
        let meta = KvRec {
            value: None,
            session: entry.session.clone(),
            ..entry
        };
        self.s.kvs.insert(key.to_owned(), entry);
        self.bump_table(Table::Kvs);
        self.changes.kv_keys.insert(key.to_owned());
        meta
    }

    /// Consul `kvsSetCASTxn`: `cas == 0` creates only if absent, else `cas` must be the
    /// current `ModifyIndex`. `None`: the index did not match, nothing written.
    pub(crate) fn kv_set_cas(&mut self, key: &str, entry: KvRec, cas: u64) -> Option<KvRec> {
        let ok = match self.s.kvs.get(key) {
            None => cas == 0,
            Some(e) => cas != 0 && cas == e.modify_index,
        };
        ok.then(|| self.kv_set(key, entry, false))
    }

    /// Consul `kvsLockTxn`. `Ok(None)`: another session holds the lock.
    pub(crate) fn kv_lock(
        &mut self,
        key: &str,
        mut entry: KvRec,
    ) -> Result<Option<KvRec>, StateError> {
        let Some(session) = entry.session.clone() else {
            return Err(StateError::MissingSession);
        };
        if !self.s.sessions.contains_key(&session) {
            return Err(StateError::InvalidSession(session));
        }
        match self.s.kvs.get(key) {
            Some(e) if e.session.as_deref() == Some(session.as_str()) => {
                entry.create_index = e.create_index;
                entry.lock_index = e.lock_index;
            }
            Some(e) if e.session.is_some() => return Ok(None),
            Some(e) => {
                entry.create_index = e.create_index;
                entry.lock_index = e.lock_index + 1;
            }
            None => {
                entry.create_index = self.idx;
                entry.lock_index = 1;
            }
        }
        entry.modify_index = self.idx;
        Ok(Some(self.kv_set(key, entry, true)))
    }

    /// Consul `kvsUnlockTxn`: only the holder releases; the value is written too.
    /// `Ok(None)`: missing key, or not held by this session.
    pub(crate) fn kv_unlock(
        &mut self,
        key: &str,
        mut entry: KvRec,
    ) -> Result<Option<KvRec>, StateError> {
        let Some(session) = entry.session.clone() else {
            return Err(StateError::MissingSession);
        };
        let Some(e) = self.s.kvs.get(key) else {
            return Ok(None);
        };
        if e.session.as_deref() != Some(session.as_str()) {
            return Ok(None);
        }
        entry.session = None;
        entry.lock_index = e.lock_index;
        entry.create_index = e.create_index;
        entry.modify_index = self.idx;
        Ok(Some(self.kv_set(key, entry, true)))
    }

    fn tombstone(&mut self, key: &str) {
        self.s.tombstones.insert(key.to_owned(), self.idx);
        self.bump_table(Table::Tombstones);
    }

    fn kv_remove(&mut self, key: &str) {
        if let Some(e) = self.s.kvs.remove(key) {
            if let Some(sess) = &e.session {
                multi_remove(&mut self.s.kvs_by_session, sess, &key.to_owned());
            }
        }
    }

    /// Consul `kvsDeleteTxn`: delete and leave a tombstone.
    pub(crate) fn kv_delete(&mut self, key: &str) {
        if !self.s.kvs.contains_key(key) {
            return;
        }
        self.tombstone(key);
        self.kv_remove(key);
        self.bump_table(Table::Kvs);
        self.changes.kv_keys.insert(key.to_owned());
    }

    /// Consul `kvsDeleteCASTxn`. `true` if deleted, or if the key is already absent.
    pub(crate) fn kv_delete_cas(&mut self, key: &str, cas: u64) -> bool {
        match self.s.kvs.get(key) {
            None => true,
            Some(e) if e.modify_index != cas => false,
            Some(_) => {
                self.kv_delete(key);
                true
            }
        }
    }

    /// Consul `kvsDeleteTreeTxn`: one tombstone for the prefix (none for the whole tree).
    pub(crate) fn kv_delete_tree(&mut self, prefix: &str) {
        let keys = self.s.kv_keys_under(prefix);
        if keys.is_empty() {
            return;
        }
        for k in &keys {
            self.kv_remove(k);
        }
        if !prefix.is_empty() {
            self.tombstone(prefix);
        }
        self.bump_table(Table::Kvs);
        self.changes.kv_trees.insert(prefix.to_owned());
    }

    /// Drop tombstones with index `<= up_to`. Consul bumps no index for this.
    pub(crate) fn tombstone_reap(&mut self, up_to: u64) {
        let reaped: Vec<String> = self
            .s
            .tombstones
            .iter()
            .filter(|(_, idx)| **idx <= up_to)
            .map(|(k, _)| k.clone())
            .collect();
        for k in reaped {
            self.s.tombstones.remove(&k);
        }
    }
}

impl State {
    pub(crate) fn kv_keys_under(&self, prefix: &str) -> Vec<String> {
        self.kv_under(prefix).map(|(k, _)| k.clone()).collect()
    }

    pub(crate) fn kv_under<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a KvRec)> + 'a {
        self.kvs
            .range(prefix.to_owned()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
    }

    /// Consul `kvsMaxIndex`: the kvs and tombstones tables.
    pub(crate) fn kvs_max_index(&self) -> u64 {
        self.max_index(&[Table::Kvs, Table::Tombstones])
    }

    /// Highest tombstone index under a prefix (Consul `Graveyard.GetMaxIndexTxn`).
    fn graveyard_max(&self, prefix: &str) -> u64 {
        self.tombstones
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, i)| *i)
            .max()
            .unwrap_or(0)
    }

    /// The index Consul's `kvsListTxn` reports for a prefix whose entries peak at `lindex`.
    pub(crate) fn kv_list_index(&self, prefix: &str, lindex: u64) -> u64 {
        let table = self.kvs_max_index();
        let lindex = if prefix.is_empty() {
            table
        } else {
            lindex.max(self.graveyard_max(prefix))
        };
        if lindex != 0 {
            lindex
        } else {
            table
        }
    }

    pub(crate) fn kv_list(&self, prefix: &str) -> (u64, Vec<KvEntry>) {
        let mut lindex = 0;
        let rows: Vec<KvEntry> = self
            .kv_under(prefix)
            .map(|(k, e)| {
                lindex = lindex.max(e.modify_index);
                e.to_api(k, true)
            })
            .collect();
        (self.kv_list_index(prefix, lindex), rows)
    }
}

impl View {
    /// One key. Index: the kvs table (with tombstones), as Consul's `kvsGetTxn`.
    pub fn kv_get(&self, ws: &mut WatchSet, key: &str) -> (u64, Option<KvEntry>) {
        self.watch_kv_key(ws, key);
        let s = self.state();
        (
            s.kvs_max_index(),
            s.kvs.get(key).map(|e| e.to_api(key, true)),
        )
    }

    /// Every entry under a prefix. Index: the highest entry or tombstone under the prefix, else
    /// the table index (Consul's `kvsListTxn`).
    pub fn kv_list(&self, ws: &mut WatchSet, prefix: &str) -> (u64, Vec<KvEntry>) {
        self.watch_kv_prefix(ws, prefix);
        self.state().kv_list(prefix)
    }

    /// Keys under a prefix, rolled up at the first `separator` after the prefix (Consul's
    /// `KVSListKeys`). Same index rule as [`View::kv_list`].
    pub fn kv_keys(
        &self,
        ws: &mut WatchSet,
        prefix: &str,
        separator: Option<&str>,
    ) -> (u64, Vec<String>) {
        self.watch_kv_prefix(ws, prefix);
        let s = self.state();
        let sep = separator.filter(|s| !s.is_empty());
        let mut lindex = 0;
        let mut keys: Vec<String> = Vec::new();
        for (k, e) in s.kv_under(prefix) {
            lindex = lindex.max(e.modify_index);
            let Some(sep) = sep else {
                keys.push(k.clone());
                continue;
            };
            let after = &k[prefix.len()..];
            match after.find(sep) {
                Some(i) => {
                    let rolled = &k[..prefix.len() + i + sep.len()];
                    if keys.last().map(String::as_str) != Some(rolled) {
                        keys.push(rolled.to_owned());
                    }
                }
                None => keys.push(k.clone()),
            }
        }
        (s.kv_list_index(prefix, lindex), keys)
    }
}
