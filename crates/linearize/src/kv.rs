//! Consul's KV entry as a register: read, write, and check-and-set by `ModifyIndex`.
//!
//! Values are opaque numbers, and a recorder writes each one once. That lets a `?cas=` be
//! checked without knowing the indexes writes will get: a write's `ModifyIndex` is the Raft
//! index of its entry, unique to it, so the index a client read alongside value `v` names the
//! write of `v`, and `?cas=<that index>` succeeds exactly when the key still holds `v`.
//! `?cas=0` (create only) succeeds when the key does not exist.
//!
//! [`Register::for_history`] also tells the model which values no op ever looks for (no
//! answered read returned them, no CAS expects them): a key holding any one of them behaves
//! exactly as holding any other, so the model holds them all as one. That makes writes whose
//! answer was lost and whose value nobody saw — the usual kind under faults — interchangeable,
//! and the search tries one of them where it would try each.

use std::collections::HashSet;

use crate::{Model, Op};

/// A value written (unique per write in a recorded history).
pub type Value = u64;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvInput {
    /// `GET /v1/kv/<key>` (a `404` reads `None`).
    Read { key: String },
    /// `PUT /v1/kv/<key>`.
    Write { key: String, value: Value },
    /// `PUT /v1/kv/<key>?cas=<index>`: `expect` is the value read with that index, `None` for
    /// `?cas=0`.
    Cas {
        key: String,
        expect: Option<Value>,
        value: Value,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOutput {
    Read(Option<Value>),
    /// The `true`/`false` a `PUT` answers (a plain write always `true`).
    Written(bool),
}

/// One register per key, initially absent.
#[derive(Clone, Debug, Default)]
pub struct Register {
    unseen: HashSet<Value>,
}

/// What a key holds when it holds a value nobody looks for.
const UNSEEN: Value = Value::MAX;

impl Register {
    /// The model for checking `history`, knowing which values nobody looks for.
    pub fn for_history(history: &[Op<KvInput, KvOutput>]) -> Register {
        let mut written = HashSet::new();
        let mut sought = HashSet::new();
        for op in history {
            match &op.input {
                KvInput::Read { .. } => {
                    if let Some((_, KvOutput::Read(Some(v)))) = &op.ret {
                        sought.insert(*v);
                    }
                }
                KvInput::Write { value, .. } => {
                    written.insert(*value);
                }
                KvInput::Cas { expect, value, .. } => {
                    written.insert(*value);
                    sought.extend(*expect);
                }
            }
        }
        assert!(
            !written.contains(&UNSEEN) && !sought.contains(&UNSEEN),
            "value {UNSEEN} is reserved"
        );
        Register {
            unseen: written.difference(&sought).copied().collect(),
        }
    }

    fn held(&self, v: Value) -> Option<Value> {
        Some(if self.unseen.contains(&v) { UNSEEN } else { v })
    }
}

impl Model for Register {
    type State = Option<Value>;
    type Input = KvInput;
    type Output = KvOutput;
    type Key = String;

    fn init(&self) -> Option<Value> {
        None
    }

    fn key(&self, input: &KvInput) -> String {
        match input {
            KvInput::Read { key } | KvInput::Write { key, .. } | KvInput::Cas { key, .. } => {
                key.clone()
            }
        }
    }

    fn step(&self, state: &Option<Value>, input: &KvInput) -> (KvOutput, Option<Value>) {
        match input {
            KvInput::Read { .. } => (KvOutput::Read(*state), *state),
            KvInput::Write { value, .. } => (KvOutput::Written(true), self.held(*value)),
            KvInput::Cas { expect, value, .. } if expect == state => {
                (KvOutput::Written(true), self.held(*value))
            }
            KvInput::Cas { .. } => (KvOutput::Written(false), *state),
        }
    }

    fn is_read_only(&self, input: &KvInput) -> bool {
        matches!(input, KvInput::Read { .. })
    }

    fn is_blind_write(&self, input: &KvInput) -> bool {
        matches!(input, KvInput::Write { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check;

    fn r(key: &str) -> KvInput {
        KvInput::Read { key: key.into() }
    }
    fn w(key: &str, value: Value) -> KvInput {
        KvInput::Write {
            key: key.into(),
            value,
        }
    }
    fn cas(key: &str, expect: Option<Value>, value: Value) -> KvInput {
        KvInput::Cas {
            key: key.into(),
            expect,
            value,
        }
    }
    fn got(v: Option<Value>) -> KvOutput {
        KvOutput::Read(v)
    }
    const OK: KvOutput = KvOutput::Written(true);
    const NO: KvOutput = KvOutput::Written(false);

    fn ok(h: &[Op<KvInput, KvOutput>]) -> bool {
        // Both ways: with and without the unseen values merged.
        let plain = check(&Register::default(), h).is_linearizable();
        let rep = check(&Register::for_history(h), h);
        assert_eq!(plain, rep.is_linearizable());
        assert!(rep.gave_up.is_empty());
        for a in &rep.anomalies {
            eprintln!("{}", a.description);
        }
        rep.anomalies.is_empty()
    }

    #[test]
    fn sequential_and_overlapping_histories_are_accepted() {
        let h = vec![
            Op::done(0, 0, 10, w("a", 1), OK),
            Op::done(1, 20, 30, r("a"), got(Some(1))),
            Op::done(0, 40, 50, cas("a", Some(1), 2), OK),
            Op::done(1, 60, 70, cas("a", Some(1), 3), NO),
            Op::done(2, 80, 90, r("a"), got(Some(2))),
        ];
        assert!(ok(&h));
        // A read overlapping a write may see either value; two reads overlapping it may see
        // old then new, but not new then old once the first returned before the second began.
        let h = vec![
            Op::done(0, 0, 10, w("a", 1), OK),
            Op::done(0, 20, 100, w("a", 2), OK),
            Op::done(1, 30, 40, r("a"), got(Some(1))),
            Op::done(1, 50, 60, r("a"), got(Some(2))),
            Op::done(2, 25, 95, r("a"), got(Some(1))),
        ];
        assert!(ok(&h));
        let mut bad = h.clone();
        bad[2] = Op::done(1, 30, 40, r("a"), got(Some(2)));
        bad[3] = Op::done(1, 50, 60, r("a"), got(Some(1)));
        assert!(!ok(&bad));
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_rejected_with_its_witness() {
        let h = vec![
            Op::done(0, 0, 10, w("a", 1), OK),
            Op::done(1, 5, 8, r("b"), got(None)),
            Op::done(0, 20, 30, w("a", 2), OK),
            Op::done(1, 40, 50, r("a"), got(Some(1))),
            Op::done(2, 60, 70, r("a"), got(Some(2))),
        ];
        let rep = check(&Register::for_history(&h), &h);
        assert_eq!(rep.parts, 2);
        assert_eq!(rep.anomalies.len(), 1, "{rep:?}");
        let a = &rep.anomalies[0];
        assert_eq!(a.key, "a");
        // The write of 1, the later write of 2, and the read of 1 after both: nothing else.
        assert_eq!(a.witness, vec![0, 2, 3], "{}", a.description);
        assert!(a
            .description
            .contains("Read { key: \"a\" } -> Read(Some(1))"));
    }

    #[test]
    fn two_successful_cas_from_the_same_index_are_rejected() {
        let h = vec![
            Op::done(0, 0, 10, w("c", 1), OK),
            Op::done(1, 20, 30, cas("c", Some(1), 2), OK),
            Op::done(2, 25, 35, cas("c", Some(1), 3), OK),
        ];
        let rep = check(&Register::for_history(&h), &h);
        assert_eq!(rep.anomalies.len(), 1);
        assert_eq!(rep.anomalies[0].witness, vec![1, 2]);
        // Two creates (`?cas=0`) cannot both succeed either.
        let h = vec![
            Op::done(1, 20, 30, cas("c", None, 2), OK),
            Op::done(2, 40, 50, cas("c", None, 3), OK),
        ];
        assert!(!ok(&h));
    }

    #[test]
    fn values_never_written_or_lost_writes_are_rejected() {
        assert!(!ok(&[Op::done(0, 0, 10, r("a"), got(Some(7)))]));
        // A 404 after a completed write.
        assert!(!ok(&[
            Op::done(0, 0, 10, w("a", 1), OK),
            Op::done(0, 20, 30, r("a"), got(None)),
        ]));
        // A failed CAS on the value the key certainly held.
        assert!(!ok(&[
            Op::done(0, 0, 10, w("a", 1), OK),
            Op::done(0, 20, 30, cas("a", Some(1), 2), NO),
        ]));
    }

    #[test]
    fn indeterminate_ops_may_take_effect_late_or_never() {
        // Never: a write whose answer was lost need not have happened.
        let h = vec![
            Op::done(0, 0, 10, w("a", 1), OK),
            Op::indeterminate(1, 12, w("a", 2)),
            Op::done(0, 20, 30, r("a"), got(Some(1))),
        ];
        assert!(ok(&h));
        // Late: long after its caller gave up, it shows up.
        let mut late = h.clone();
        late.push(Op::done(2, 1_000, 1_010, r("a"), got(Some(2))));
        assert!(ok(&late));
        // …and then it has happened: the key cannot go back to 1.
        late.push(Op::done(2, 1_020, 1_030, r("a"), got(Some(1))));
        assert!(!ok(&late));
        // Not before its call.
        let h = vec![
            Op::done(0, 0, 10, r("a"), got(Some(2))),
            Op::indeterminate(1, 12, w("a", 2)),
        ];
        assert!(!ok(&h));
        // It explains a failed CAS.
        let h = vec![
            Op::done(0, 0, 10, w("a", 1), OK),
            Op::indeterminate(1, 12, cas("a", Some(1), 5)),
            Op::done(0, 20, 30, cas("a", Some(1), 2), NO),
        ];
        assert!(ok(&h));
        // At most once.
        let h = vec![
            Op::done(0, 0, 10, w("a", 1), OK),
            Op::indeterminate(1, 12, w("a", 2)),
            Op::done(0, 20, 30, r("a"), got(Some(2))),
            Op::done(0, 40, 50, w("a", 3), OK),
            Op::done(0, 60, 70, r("a"), got(Some(2))),
        ];
        assert!(!ok(&h));
        // Indeterminate reads are dropped before the search.
        let h = vec![
            Op::done(0, 0, 10, w("a", 1), OK),
            Op::indeterminate(1, 12, r("a")),
        ];
        assert_eq!(check(&Register::for_history(&h), &h).ops, 1);
    }

    #[test]
    fn keys_are_checked_apart() {
        let h = vec![
            Op::done(0, 0, 10, w("a", 1), OK),
            Op::done(1, 0, 10, w("b", 2), OK),
            Op::done(0, 20, 30, r("b"), got(Some(2))),
            Op::done(1, 20, 30, r("a"), got(Some(1))),
        ];
        let rep = check(&Register::for_history(&h), &h);
        assert!(rep.is_linearizable());
        assert_eq!(rep.parts, 2);
    }
}
