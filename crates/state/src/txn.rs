//! Transactions (Consul `state/txn.go`): KV, node, service, check and session operations.
//!
//! Every operation runs against the same private copy of the root in order; errors are
//! collected with the failing operation's position, and if there is any error the whole copy is
//! discarded (the store publishes nothing). Results are returned for the verbs Consul returns
//! them for: KV `get` and `get-tree` with values, set-like and check verbs without values, none
//! for deletes and `check-not-exists`; the node, service or check after a `get`, `set` or `cas`.
//! Error texts are Consul's.

use proconsul_types::{health, KvEntry, TxnError, TxnResult};

use crate::command::{CatalogVerb, Step, TxnOp, TxnStep, TxnVerb};
use crate::key::PairRef;
use crate::records::{fold, CheckRec, KvRec, NodeRec, ServiceRec};
use crate::store::Tx;

fn result(e: KvEntry) -> TxnResult {
    TxnResult {
        kv: Some(e),
        ..TxnResult::default()
    }
}

/// Consul's compare-and-set rule: 0 means "only if absent", otherwise the entry must exist
/// with exactly that `ModifyIndex`.
fn cas_ok(existing: Option<u64>, index: u64) -> bool {
    match existing {
        None => index == 0,
        Some(current) => index != 0 && current == index,
    }
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

    /// Run a transaction of any operations (see [`Tx::txn`]).
    pub(crate) fn txn_steps(&mut self, steps: &[TxnStep]) -> Result<Vec<TxnResult>, Vec<TxnError>> {
        let mut results = Vec::with_capacity(steps.len());
        let mut errors = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let r = match &step.0 {
                Step::Kv(op) => self.txn_kv(op),
                Step::Node { verb, node } => self.txn_node(verb, node),
                Step::Service {
                    verb,
                    node,
                    service,
                } => self.txn_service(verb, node, service),
                Step::Check { verb, check } => self.txn_check(verb, check),
                Step::SessionDelete { id } => self
                    .session_destroy(id)
                    .map(|()| vec![])
                    .map_err(|e| e.to_string()),
            };
            match r {
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

    /// Consul `txnNode`.
    fn txn_node(&mut self, verb: &CatalogVerb, node: &NodeRec) -> Result<Vec<TxnResult>, String> {
        let name = node.name.clone();
        let key = fold(&name);
        self.txn_catalog(
            verb,
            "Node",
            &format!("node {name:?}"),
            node.modify_index,
            |tx| tx.s.nodes.get(&*key).map(|n| (n.modify_index, n.to_api())),
            |tx| tx.ensure_node(node.clone()),
            |tx| tx.delete_node(&name),
            |n| TxnResult {
                node: Some(n),
                ..TxnResult::default()
            },
        )
    }

    /// Consul `txnService`.
    fn txn_service(
        &mut self,
        verb: &CatalogVerb,
        node: &str,
        svc: &ServiceRec,
    ) -> Result<Vec<TxnResult>, String> {
        let id = svc.id.clone();
        let key = (fold(node), fold(&id));
        let mut svc = svc.clone();
        svc.node = node.into();
        self.txn_catalog(
            verb,
            "Service",
            &format!("service {id:?} on node {node:?}"),
            svc.modify_index,
            |tx| {
                tx.s.services
                    .get(&PairRef(&key.0, &key.1))
                    .map(|s| (s.modify_index, s.to_api()))
            },
            |tx| tx.ensure_service(svc.clone()),
            |tx| tx.delete_service(node, &id),
            |s| TxnResult {
                service: Some(s),
                ..TxnResult::default()
            },
        )
    }

    /// Consul `txnCheck`.
    fn txn_check(&mut self, verb: &CatalogVerb, hc: &CheckRec) -> Result<Vec<TxnResult>, String> {
        let (node, id) = (hc.node.clone(), hc.check_id.clone());
        let key = (fold(&node), fold(&id));
        let mut hc = hc.clone();
        // Consul: a check without a status starts critical.
        if hc.status.is_empty() {
            hc.status = health::CRITICAL.into();
        }
        self.txn_catalog(
            verb,
            "Check",
            &format!("check {id:?} on node {node:?}"),
            hc.modify_index,
            |tx| {
                tx.s.checks
                    .get(&PairRef(&key.0, &key.1))
                    .map(|c| (c.modify_index, c.to_api()))
            },
            |tx| tx.ensure_check(hc.clone()),
            |tx| tx.delete_check(&node, &id),
            |c| TxnResult {
                check: Some(c),
                ..TxnResult::default()
            },
        )
    }

    /// The five verbs of a node, service or check operation, Consul's way: `get`, `set` and
    /// `cas` answer the entry as it now is; `cas` and `delete-cas` compare `index` with the
    /// entry's `ModifyIndex` (0 for `cas`: only if absent). `what` names the entry in errors.
    #[allow(clippy::too_many_arguments)]
    fn txn_catalog<R>(
        &mut self,
        verb: &CatalogVerb,
        kind: &str,
        what: &str,
        index: u64,
        current: impl Fn(&Tx) -> Option<(u64, R)>,
        write: impl FnOnce(&mut Tx) -> Result<(), crate::StateError>,
        delete: impl FnOnce(&mut Tx) -> Result<(), crate::StateError>,
        result: impl Fn(R) -> TxnResult,
    ) -> Result<Vec<TxnResult>, String> {
        let found = |tx: &Tx| {
            current(tx)
                .map(|(_, r)| vec![result(r)])
                .ok_or_else(|| format!("{what} doesn't exist"))
        };
        let modify_index = |tx: &Tx| current(tx).map(|(i, _)| i);
        match verb {
            CatalogVerb::Get => found(self),
            CatalogVerb::Set => {
                write(self).map_err(|e| e.to_string())?;
                found(self)
            }
            CatalogVerb::Cas => {
                if !cas_ok(modify_index(self), index) {
                    return Err(format!("failed to set {what}, index is stale"));
                }
                write(self).map_err(|e| e.to_string())?;
                found(self)
            }
            CatalogVerb::Delete => {
                delete(self).map_err(|e| e.to_string())?;
                Ok(vec![])
            }
            CatalogVerb::DeleteCas => {
                if modify_index(self) != Some(index) {
                    return Err(format!("failed to delete {what}, index is stale"));
                }
                delete(self).map_err(|e| e.to_string())?;
                Ok(vec![])
            }
            CatalogVerb::Unknown(v) => Err(format!("unknown {kind} verb {v:?}")),
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
