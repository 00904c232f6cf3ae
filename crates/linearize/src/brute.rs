//! The definition, run literally: try every order of the ops. Only for small histories, to
//! test the search against.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::kv::{KvInput, KvOutput, Register};
use crate::lock::{Lock, LockInput, LockOutput};
use crate::{check, Model, Op};

/// Whether some order of the ops (every answered op once, every indeterminate one at most once,
/// real-time order kept) gives every answer seen.
pub fn linearizable<M: Model>(model: &M, h: &[Op<M::Input, M::Output>]) -> bool {
    fn go<M: Model>(
        model: &M,
        h: &[Op<M::Input, M::Output>],
        used: &mut Vec<bool>,
        states: &mut BTreeMap<M::Key, M::State>,
    ) -> bool {
        if h.iter()
            .zip(used.iter())
            .all(|(op, u)| *u || op.ret.is_none())
        {
            return true;
        }
        for i in 0..h.len() {
            if used[i] {
                continue;
            }
            // Every answered op that returned before this one's call must come first.
            let blocked = h
                .iter()
                .zip(used.iter())
                .any(|(q, u)| !*u && q.ret.as_ref().is_some_and(|(t, _)| *t < h[i].call));
            if blocked {
                continue;
            }
            let key = model.key(&h[i].input);
            let before = states.get(&key).cloned().unwrap_or_else(|| model.init());
            let (out, after) = model.step(&before, &h[i].input);
            if h[i].ret.as_ref().is_some_and(|(_, o)| *o != out) {
                continue;
            }
            used[i] = true;
            states.insert(key.clone(), after);
            if go(model, h, used, states) {
                return true;
            }
            used[i] = false;
            states.insert(key, before);
        }
        false
    }
    go(model, h, &mut vec![false; h.len()], &mut BTreeMap::new())
}

/// A small random history: clients issue ops one after another; each op takes effect at a
/// random instant inside its interval (an indeterminate one at any instant after its call, or
/// never), which gives the true answers; then, sometimes, one answer is changed.
fn random_history<M: Model>(
    rng: &mut StdRng,
    model: &M,
    mut gen_input: impl FnMut(&mut StdRng) -> M::Input,
    mut corrupt: impl FnMut(&mut StdRng, &M::Output) -> M::Output,
) -> Vec<Op<M::Input, M::Output>> {
    struct Planned<I> {
        client: u32,
        call: u64,
        ret: Option<u64>,
        effect: Option<u64>,
        input: I,
    }
    let clients = rng.random_range(1..=4u32);
    let total = rng.random_range(1..=7usize);
    let mut next_free = vec![0u64; clients as usize];
    let mut plan = Vec::new();
    for _ in 0..total {
        let client = rng.random_range(0..clients);
        let call = next_free[client as usize] + rng.random_range(0..20);
        let ret = call + rng.random_range(0..30);
        next_free[client as usize] = ret + 1;
        let lost = rng.random_bool(0.15);
        let effect = if lost {
            rng.random_bool(0.6)
                .then(|| call + rng.random_range(0..100))
        } else {
            Some(rng.random_range(call..=ret))
        };
        plan.push(Planned {
            client,
            call,
            ret: (!lost).then_some(ret),
            effect,
            input: gen_input(rng),
        });
    }
    let mut order: Vec<usize> = (0..plan.len())
        .filter(|&i| plan[i].effect.is_some())
        .collect();
    order.sort_by_key(|&i| (plan[i].effect, i));
    let mut states: BTreeMap<M::Key, M::State> = BTreeMap::new();
    let mut answers: Vec<Option<M::Output>> = vec![None; plan.len()];
    for i in order {
        let key = model.key(&plan[i].input);
        let st = states.get(&key).cloned().unwrap_or_else(|| model.init());
        let (out, after) = model.step(&st, &plan[i].input);
        states.insert(key, after);
        answers[i] = Some(out);
    }
    let mut h: Vec<Op<M::Input, M::Output>> = plan
        .into_iter()
        .zip(answers)
        .map(|(p, out)| match (p.ret, out) {
            (Some(t), Some(o)) => Op::done(p.client, p.call, t, p.input, o),
            _ => Op::indeterminate(p.client, p.call, p.input),
        })
        .collect();
    if rng.random_bool(0.4) {
        let answered: Vec<usize> = (0..h.len()).filter(|&i| h[i].ret.is_some()).collect();
        if !answered.is_empty() {
            let i = answered[rng.random_range(0..answered.len())];
            let (t, o) = h[i].ret.take().unwrap();
            h[i].ret = Some((t, corrupt(rng, &o)));
        }
    }
    h
}

/// The search agrees with the definition on random small histories, linearizable or not.
fn agree<M: Model>(
    seed: u64,
    cases: usize,
    model: impl Fn(&[Op<M::Input, M::Output>]) -> M,
    mut gen_input: impl FnMut(&mut StdRng, &mut u64) -> M::Input,
    mut corrupt: impl FnMut(&mut StdRng, &M::Output) -> M::Output,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut yes, mut no) = (0, 0);
    for case in 0..cases {
        let mut counter = 0u64;
        let h = random_history(
            &mut rng,
            &model(&[]),
            |r| gen_input(r, &mut counter),
            &mut corrupt,
        );
        let expected = linearizable(&model(&h), &h);
        let rep = check(&model(&h), &h);
        assert!(rep.gave_up.is_empty());
        assert_eq!(
            rep.is_linearizable(),
            expected,
            "case {case}: the search says {rep:?} for {h:#?}"
        );
        if expected {
            yes += 1;
        } else {
            no += 1;
            // The witness alone is still rejected: its answered ops, with the uncertain ones
            // as indeterminate and nothing else.
            for a in &rep.anomalies {
                let w: Vec<Op<M::Input, M::Output>> = a
                    .witness
                    .iter()
                    .map(|&i| h[i].clone())
                    .chain(a.uncertain.iter().map(|&i| Op {
                        ret: None,
                        ..h[i].clone()
                    }))
                    .collect();
                assert!(
                    !linearizable(&model(&h), &w),
                    "case {case}: witness {a:?} of {h:#?}"
                );
            }
        }
    }
    // Both kinds were exercised.
    assert!(
        yes > cases / 10 && no > cases / 10,
        "{yes} accepted, {no} rejected"
    );
}

#[test]
fn the_search_agrees_with_brute_force_on_registers() {
    let keys = ["a", "b"];
    agree(
        1,
        20_000,
        Register::for_history,
        |rng, counter| {
            let key = keys[rng.random_range(0..2)].to_string();
            match rng.random_range(0..3) {
                0 => KvInput::Read { key },
                1 => {
                    *counter += 1;
                    KvInput::Write {
                        key,
                        value: *counter,
                    }
                }
                _ => {
                    let expect = (*counter > 0 && rng.random_bool(0.8))
                        .then(|| rng.random_range(1..=*counter));
                    *counter += 1;
                    KvInput::Cas {
                        key,
                        expect,
                        value: *counter,
                    }
                }
            }
        },
        |rng, out| match out {
            KvOutput::Read(Some(v)) if rng.random_bool(0.5) => KvOutput::Read(Some(v + 1)),
            KvOutput::Read(Some(_)) => KvOutput::Read(None),
            KvOutput::Read(None) => KvOutput::Read(Some(rng.random_range(1..4))),
            KvOutput::Written(b) => KvOutput::Written(!b),
        },
    );
}

#[test]
fn the_search_agrees_with_brute_force_on_locks() {
    agree(
        2,
        20_000,
        |_| Lock,
        |rng, _| {
            let key = if rng.random_bool(0.8) { "l" } else { "m" }.to_string();
            let session = rng.random_range(1..=3);
            match rng.random_range(0..5) {
                0 => LockInput::Read { key },
                1 | 2 => LockInput::Acquire { key, session },
                _ => LockInput::Release { key, session },
            }
        },
        |rng, out| match out {
            LockOutput::Done(b) => LockOutput::Done(!b),
            LockOutput::Holder(Some(_)) if rng.random_bool(0.5) => LockOutput::Holder(None),
            LockOutput::Holder(h) => LockOutput::Holder(Some(h.unwrap_or(0) % 3 + 1)),
        },
    );
}

/// A long history on one key: `clients` issue `total` ops with much overlap, 1 % of them
/// lose their answer; each op takes effect inside its interval (a lost one anywhere after its
/// call, or never). Kinds: reads and writes, and CAS increments when `cas`.
fn long_history(seed: u64, total: usize, cas: bool) -> Vec<Op<KvInput, KvOutput>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let clients = 8u32;
    let mut free = vec![0u64; clients as usize];
    let mut plan = Vec::new();
    let mut value = 0;
    for _ in 0..total {
        let c = rng.random_range(0..clients);
        let call = free[c as usize] + rng.random_range(0..50);
        let ret = call + rng.random_range(1..400);
        free[c as usize] = ret + 1;
        value += 1;
        let input = match rng.random_range(0..if cas { 3 } else { 2 }) {
            0 => KvInput::Read { key: "k".into() },
            1 => KvInput::Write {
                key: "k".into(),
                value,
            },
            _ => KvInput::Cas {
                key: "k".into(),
                expect: Some(rng.random_range(value.saturating_sub(20)..value)),
                value,
            },
        };
        let lost = rng.random_bool(0.01);
        let effect = if lost {
            rng.random_bool(0.5)
                .then(|| call + rng.random_range(0..2_000))
        } else {
            Some(rng.random_range(call..=ret))
        };
        plan.push((c, call, (!lost).then_some(ret), effect, input));
    }
    let mut order: Vec<usize> = (0..plan.len()).filter(|&i| plan[i].3.is_some()).collect();
    order.sort_by_key(|&i| (plan[i].3, i));
    let mut state = None;
    let mut answers = vec![None; plan.len()];
    for i in order {
        let (out, after) = Register::default().step(&state, &plan[i].4);
        state = after;
        answers[i] = Some(out);
    }
    plan.into_iter()
        .zip(answers)
        .map(|((c, call, ret, _, input), out)| match (ret, out) {
            (Some(t), Some(o)) => Op::done(c, call, t, input, o),
            _ => Op::indeterminate(c, call, input),
        })
        .collect()
}

#[test]
fn a_long_concurrent_history_is_checked() {
    for cas in [false, true] {
        let h = long_history(3, 5_000, cas);
        let rep = check(&Register::for_history(&h), &h);
        assert!(rep.is_linearizable(), "{rep:?}");
        // Not an exponential search: each point tries the ops pending there (a lost op that
        // never took effect stays pending to the end), and backtracks a little.
        assert!(rep.steps < 1_000 * h.len() as u64, "{} steps", rep.steps);
    }
    // One stale read planted in the middle is found. (Its witness is the part of the history
    // up to the read, weakened as far as the shrinking budget allows: on long, busy histories
    // that is not minimal; the small planted tests in `kv` and `lock` check minimality.)
    let mut bad = long_history(3, 5_000, false);
    let i = (2_500..)
        .find(|&i| {
            matches!(bad[i].input, KvInput::Read { .. })
                && matches!(bad[i].ret, Some((_, KvOutput::Read(Some(_)))))
        })
        .unwrap();
    let Some((t, KvOutput::Read(Some(v)))) = bad[i].ret.clone() else {
        unreachable!()
    };
    bad[i].ret = Some((t, KvOutput::Read(Some(v.saturating_sub(40)))));
    let rep = check(&Register::for_history(&bad), &bad);
    assert_eq!(rep.anomalies.len(), 1, "{rep:?}");
    assert!(rep.anomalies[0].witness.contains(&i));
    assert!(rep.anomalies[0]
        .description
        .contains(&format!("Read(Some({}))", v.saturating_sub(40))));
}
