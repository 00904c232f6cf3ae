//! KV transactions (Consul `state/txn.go`, KV verbs only).
//!
//! Every operation runs against the same private copy of the root in order; errors are
//! collected with the failing operation's position, and if there is any error the whole copy is
//! discarded (the store publishes nothing). Results are returned for the verbs Consul returns
//! them for: `get` and `get-tree` with values, set-like and check verbs without values, none for
//! deletes and `check-not-exists`. Error texts are Consul's.

use proconsul_types::{KvEntry, TxnError, TxnResult};

use crate::command::{TxnOp, TxnVerb};

use crate::records::KvRec;
use crate::store::Tx;

fn result(e: KvEntry) -> TxnResult {
    TxnResult { kv: Some(e) }
}

impl Tx {
    /// Run a transaction: all results, or every error (and the caller discards the copy).
    pub(crate) fn txn(&mut self, ops: &[TxnOp]) -> Result<Vec<TxnResult>, Vec<TxnError>> {
        let mut results = Vec::with_capacity(ops.len());
        let mut errors = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match self.txn_kv(op) {
                Ok(r) => results.extend(r),
                Err(what) => errors.push(TxnError { op_index: i, what }),
            }
        }
        if errors.is_empty() {
            Ok(results)
        } else {
            Err(errors)
        }
    }

    /// Consul `txnKVS`.
    fn txn_kv(&mut self, op: &TxnOp) -> Result<Vec<TxnResult>, String> {
        let key = op.key.as_str();
        let entry = KvRec {
            flags: op.flags,
            value: op.value.clone(),
            session: (!op.session.is_empty()).then(|| op.session.clone()),
            ..KvRec::default()
        };
        // For set-like verbs the result is the written entry without its value.
        let written = |e: &KvRec| Ok(vec![result(e.to_api(key, false))]);
        match &op.verb {
            TxnVerb::Set => {
                let meta = self.kv_set(key, entry, false);
                written(&meta)
            }
            TxnVerb::Delete => {
                self.kv_delete(key);
                Ok(vec![])
            }
            TxnVerb::DeleteCas => {
                if self.kv_delete_cas(key, op.index) {
                    Ok(vec![])
                } else {
                    Err(format!("failed to delete key {key:?}, index is stale"))
                }
            }
            TxnVerb::DeleteTree => {
                self.kv_delete_tree(key);
                Ok(vec![])
            }
            TxnVerb::Cas => match self.kv_set_cas(key, entry, op.index) {
                Some(meta) => written(&meta),
                None => Err(format!("failed to set key {key:?}, index is stale")),
            },
            TxnVerb::Lock => match self.kv_lock(key, entry) {
                Ok(Some(meta)) => written(&meta),
                Ok(None) => Err(format!("failed to lock key {key:?}, lock is already held")),
                Err(e) => Err(e.to_string()),
            },
            TxnVerb::Unlock => match self.kv_unlock(key, entry) {
                Ok(Some(meta)) => written(&meta),
                Ok(None) => Err(format!(
                    "failed to unlock key {key:?}, lock isn't held, or is held by another session"
                )),
                Err(e) => Err(e.to_string()),
            },
            TxnVerb::Get => match self.s.kvs.get(key) {
                Some(e) => Ok(vec![result(e.to_api(key, true))]),
                None => Err(format!("key {key:?} doesn't exist")),
            },
            TxnVerb::GetTree => {
                let (_, rows) = self.s.kv_list(key);
                Ok(rows.into_iter().map(result).collect())
            }
            TxnVerb::CheckSession => match self.s.kvs.get(key) {
                None => Err(format!(
                    "failed to check session, key {key:?} doesn't exist"
                )),
                Some(e) if e.session.as_deref().unwrap_or("") != op.session => Err(format!(
                    "failed session check for key {key:?}, current session {:?} != {:?}",
                    e.session.as_deref().unwrap_or(""),
                    op.session
                )),
                Some(e) => written(e),
            },
            TxnVerb::CheckIndex => match self.s.kvs.get(key) {
                None => Err(format!("failed to check index, key {key:?} doesn't exist")),
                Some(e) if e.modify_index != op.index => Err(format!(
                    "failed index check for key {key:?}, current modify index {} != {}",
                    e.modify_index, op.index
                )),
                Some(e) => written(e),
            },
            TxnVerb::CheckNotExists => {
                if self.s.kvs.contains_key(key) {
                    Err(format!("key {key:?} exists"))
                } else {
                    Ok(vec![])
                }
            }
            TxnVerb::Unknown(other) => Err(format!("unknown KV verb {other:?}")),
        }
    }
}
