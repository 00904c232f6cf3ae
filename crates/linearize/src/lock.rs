//! Consul's session lock on a KV key: `PUT ?acquire=<session>`, `PUT ?release=<session>`, and
//! reads of the key's `Session`.
//!
//! An acquire succeeds when the key is free or already held by the same session (Consul's
//! re-entrant acquire); a release succeeds only for the holder and frees the key. The holder is
//! unique. Sessions here are ones that nothing invalidates behind the clients' backs (no health
//! checks, no TTL), so the only changes are the clients' own.

use crate::Model;

/// A session, as a number (the recorder maps session IDs to numbers).
pub type Session = u64;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LockInput {
    Acquire {
        key: String,
        session: Session,
    },
    Release {
        key: String,
        session: Session,
    },
    /// `GET /v1/kv/<key>`: who holds it (`None` for a free or absent key).
    Read {
        key: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockOutput {
    /// The `true`/`false` an acquire or release answers.
    Done(bool),
    Holder(Option<Session>),
}

/// One lock per key, initially free.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lock;

impl Model for Lock {
    type State = Option<Session>;
    type Input = LockInput;
    type Output = LockOutput;
    type Key = String;

    fn init(&self) -> Option<Session> {
        None
    }

    fn key(&self, input: &LockInput) -> String {
        match input {
            LockInput::Acquire { key, .. }
            | LockInput::Release { key, .. }
            | LockInput::Read { key } => key.clone(),
        }
    }

    fn step(&self, holder: &Option<Session>, input: &LockInput) -> (LockOutput, Option<Session>) {
        match input {
            LockInput::Read { .. } => (LockOutput::Holder(*holder), *holder),
            LockInput::Acquire { session, .. } => match holder {
                None => (LockOutput::Done(true), Some(*session)),
                Some(h) => (LockOutput::Done(h == session), *holder),
            },
            LockInput::Release { session, .. } if *holder == Some(*session) => {
                (LockOutput::Done(true), None)
            }
            LockInput::Release { .. } => (LockOutput::Done(false), *holder),
        }
    }

    fn is_read_only(&self, input: &LockInput) -> bool {
        matches!(input, LockInput::Read { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{check, Op};

    fn acq(s: Session) -> LockInput {
        LockInput::Acquire {
            key: "l".into(),
            session: s,
        }
    }
    fn rel(s: Session) -> LockInput {
        LockInput::Release {
            key: "l".into(),
            session: s,
        }
    }
    fn read() -> LockInput {
        LockInput::Read { key: "l".into() }
    }
    const YES: LockOutput = LockOutput::Done(true);
    const NO: LockOutput = LockOutput::Done(false);

    fn ok(h: &[Op<LockInput, LockOutput>]) -> bool {
        let rep = check(&Lock, h);
        for a in &rep.anomalies {
            eprintln!("{}", a.description);
        }
        rep.is_linearizable()
    }

    #[test]
    fn a_lock_passed_from_hand_to_hand_is_accepted() {
        let h = vec![
            Op::done(0, 0, 10, acq(1), YES),
            Op::done(1, 5, 15, acq(2), NO),
            Op::done(0, 20, 30, acq(1), YES),
            Op::done(2, 22, 24, read(), LockOutput::Holder(Some(1))),
            Op::done(0, 40, 50, rel(1), YES),
            Op::done(1, 45, 60, acq(2), YES),
            Op::done(0, 70, 80, rel(1), NO),
            Op::done(2, 90, 95, read(), LockOutput::Holder(Some(2))),
        ];
        assert!(ok(&h));
    }

    #[test]
    fn a_lock_held_by_two_is_rejected() {
        let h = vec![
            Op::done(0, 0, 10, acq(1), YES),
            Op::done(2, 12, 14, read(), LockOutput::Holder(Some(1))),
            Op::done(1, 20, 30, acq(2), YES),
        ];
        let rep = check(&Lock, &h);
        assert_eq!(rep.anomalies.len(), 1);
        assert_eq!(rep.anomalies[0].witness, vec![0, 2]);
        // A release by one who does not hold it.
        assert!(!ok(&[
            Op::done(0, 0, 10, acq(1), YES),
            Op::done(1, 20, 30, rel(2), YES),
        ]));
        // A read that names a holder after the release completed.
        assert!(!ok(&[
            Op::done(0, 0, 10, acq(1), YES),
            Op::done(0, 20, 30, rel(1), YES),
            Op::done(1, 40, 50, read(), LockOutput::Holder(Some(1))),
        ]));
    }

    #[test]
    fn a_lost_release_may_have_freed_the_lock() {
        let h = vec![
            Op::done(0, 0, 10, acq(1), YES),
            Op::indeterminate(0, 20, rel(1)),
            Op::done(1, 40, 50, acq(2), YES),
        ];
        assert!(ok(&h));
        // A lost acquire may have taken the lock, so another's acquire may fail.
        let h = vec![
            Op::indeterminate(0, 0, acq(1)),
            Op::done(1, 40, 50, acq(2), NO),
        ];
        assert!(ok(&h));
        // But without it, a free lock refuses nobody.
        assert!(!ok(&[Op::done(1, 40, 50, acq(2), NO)]));
    }
}
