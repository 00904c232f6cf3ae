//! The search and the witness (see the crate doc for the method).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use crate::{Model, Op};

/// How much work a check may do before it gives up on a part of the history.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Model steps per part (per key).
    pub max_steps: u64,
    /// Re-checks spent on shrinking one anomaly's witness.
    pub max_shrink_checks: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_steps: 200_000_000,
            max_shrink_checks: 2_000,
        }
    }
}

/// The verdict on one part of a history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Linearizable,
    NotLinearizable,
    /// The step limit ran out first.
    GaveUp,
}

/// A part (key) of the history that no order explains.
#[derive(Clone, Debug)]
pub struct Anomaly<K> {
    pub key: K,
    /// Indices (into the checked history) of the answered ops that cannot be ordered, even
    /// if every other op of the key might or might not have taken effect after its call.
    pub witness: Vec<usize>,
    /// Indices of the ops the witness was checked with as "may have taken effect": ops that
    /// were indeterminate, or weakened to it while shrinking, called before the witness ended.
    pub uncertain: Vec<usize>,
    /// The witness, one op a line, in call order.
    pub description: String,
}

/// What [`check`] found.
#[derive(Clone, Debug)]
pub struct Report<K> {
    /// Parts (keys) checked.
    pub parts: usize,
    /// Ops checked (indeterminate read-only ops are dropped first: they tell nothing).
    pub ops: usize,
    /// Model steps the search took, over all parts (the shrinking of witnesses not counted).
    pub steps: u64,
    pub anomalies: Vec<Anomaly<K>>,
    /// Parts the search gave up on (step limit).
    pub gave_up: Vec<K>,
}

impl<K> Report<K> {
    /// Every part checked and found linearizable.
    pub fn is_linearizable(&self) -> bool {
        self.anomalies.is_empty() && self.gave_up.is_empty()
    }
}

/// [`check_with`] under the default [`Limits`].
pub fn check<M: Model>(model: &M, history: &[Op<M::Input, M::Output>]) -> Report<M::Key> {
    check_with(model, history, &Limits::default())
}

/// Check `history` against `model`, one part per key.
pub fn check_with<M: Model>(
    model: &M,
    history: &[Op<M::Input, M::Output>],
    limits: &Limits,
) -> Report<M::Key> {
    let mut parts: BTreeMap<M::Key, Part<'_, M>> = BTreeMap::new();
    let mut ops = 0;
    for (idx, op) in history.iter().enumerate() {
        if op.ret.is_none() && model.is_read_only(&op.input) {
            continue;
        }
        ops += 1;
        parts.entry(model.key(&op.input)).or_default().push(POp {
            idx,
            call: op.call,
            input: &op.input,
            ret: op.ret.as_ref().map(|(t, o)| (*t, o)),
        });
    }
    let mut report = Report {
        parts: parts.len(),
        ops,
        steps: 0,
        anomalies: Vec::new(),
        gave_up: Vec::new(),
    };
    for (key, part) in parts {
        let s = search(model, &part, limits.max_steps);
        report.steps += s.steps;
        match s.outcome {
            Outcome::Linearizable => {}
            Outcome::GaveUp => report.gave_up.push(key),
            Outcome::NotLinearizable => {
                // Shrinking may spend, in all, a few times what the search took.
                let budget = limits.max_steps.min(8 * s.steps + 1_000_000);
                let shrunk = shrink(model, part, s.stuck_at, budget, limits);
                report.anomalies.push(anomaly::<M>(key, history, &shrunk));
            }
        }
    }
    report
}

/// The ops of one key.
type Part<'a, M> = Vec<POp<'a, <M as Model>::Input, <M as Model>::Output>>;

/// An op of one part: borrowed from the history, with its index there.
struct POp<'a, I, O> {
    idx: usize,
    call: u64,
    input: &'a I,
    ret: Option<(u64, &'a O)>,
}

impl<I, O> Clone for POp<'_, I, O> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<I, O> Copy for POp<'_, I, O> {}

/// A fixed-size set of small integers.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    fn is_subset_of(&self, other: &Bits) -> bool {
        self.0.iter().zip(&other.0).all(|(a, b)| a & !b == 0)
    }
}

struct Search {
    outcome: Outcome,
    steps: u64,
    /// The latest return at which the search had to backtrack.
    stuck_at: Option<u64>,
}

const NIL: usize = usize::MAX;

/// Where the search is looking for the next op to linearize.
#[derive(Clone, Copy)]
enum Scan {
    /// At this node of the list of answered ops' events.
    Answered(usize),
    /// At this position of the indeterminate ops (in call order), for ones called by `until`,
    /// the time of the first return still in the list.
    Open { pos: usize, until: u64 },
}

/// Wing & Gong's search over one part, memoized on (answered ops linearized, state) with
/// dominance on the indeterminate ops linearized.
///
/// Indeterminate blind writes ([`Model::is_blind_write`]) are tried last: only when no other
/// op fits before the next return. So the search first explores orders that use none of them,
/// and a later configuration that differs only by having used some is pruned as dominated.
/// Tried first — their calls are the oldest pending — they would make the search exponential
/// in their number, since a blind write always fits. They lose nothing by waiting: their
/// effect is the same wherever they go. Other indeterminate ops (a CAS, an acquire) fit only
/// in some states, so they are tried in call order with the answered ops, where those states
/// are.
fn search<M: Model>(model: &M, ops: &[POp<'_, M::Input, M::Output>], max_steps: u64) -> Search {
    let n = ops.len();
    // Answered and indeterminate ops are numbered apart: they are remembered apart.
    let mut slot = vec![0; n];
    let mut answered = 0;
    // Indeterminate ops: the blind writes (tried last, in call order) and the others.
    let mut open_ops: Vec<usize> = Vec::new();
    let mut others = 0;
    for (i, op) in ops.iter().enumerate() {
        if op.ret.is_some() {
            slot[i] = answered;
            answered += 1;
        } else if model.is_blind_write(op.input) {
            open_ops.push(i);
        } else {
            others += 1;
        }
    }
    open_ops.sort_by_key(|&i| (ops[i].call, i));
    for (k, &i) in open_ops.iter().enumerate() {
        slot[i] = k;
    }
    let blind = open_ops.len();
    // For each blind write, the earlier ones that leave the same state (whatever the state
    // before: they are blind).
    let class: Vec<Vec<usize>> = {
        let init = model.init();
        let after: Vec<M::State> = open_ops
            .iter()
            .map(|&i| model.step(&init, ops[i].input).1)
            .collect();
        let mut first: HashMap<&M::State, Vec<usize>> = HashMap::new();
        let mut class = Vec::with_capacity(blind);
        for (pos, a) in after.iter().enumerate() {
            let members = first.entry(a).or_default();
            class.push(members.clone());
            if members.len() < 4 {
                members.push(pos);
            }
        }
        class
    };
    for (i, op) in ops.iter().enumerate() {
        if op.ret.is_none() && !model.is_blind_write(op.input) {
            slot[i] = blind + others - 1;
            others -= 1;
        }
    }
    // The events in time order (an indeterminate op other than a blind write has a call and no
    // return); at equal times calls first (the ops overlap).
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        match op.ret {
            Some((t, _)) => {
                events.push((op.call, false, i));
                events.push((t, true, i));
            }
            None if !model.is_blind_write(op.input) => events.push((op.call, false, i)),
            None => {}
        }
    }
    events.sort_unstable();
    // A doubly linked list over the events: node 0 is the head, node k + 1 is events[k].
    let e = events.len();
    let mut next: Vec<usize> = (1..=e + 1).collect();
    next[e] = NIL;
    let mut prev: Vec<usize> = (0..=e).map(|k| k.wrapping_sub(1)).collect();
    let mut call_node = vec![NIL; n];
    let mut ret_node = vec![NIL; n];
    for (k, &(_, is_ret, i)) in events.iter().enumerate() {
        if is_ret {
            ret_node[i] = k + 1;
        } else {
            call_node[i] = k + 1;
        }
    }
    let unlink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, node: usize| {
        next[prev[node]] = next[node];
        if next[node] != NIL {
            prev[next[node]] = prev[node];
        }
    };
    let relink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, node: usize| {
        next[prev[node]] = node;
        if next[node] != NIL {
            prev[next[node]] = node;
        }
    };

    let mut done = Bits::new(answered);
    let mut taken = Bits::new(n - answered);
    let mut left = answered;
    let mut state = model.init();
    // What was linearized, the state before it, and for an indeterminate op where its scan was.
    let mut stack: Vec<(usize, M::State, Scan, u64)> = Vec::new();
    let mut seen: HashMap<(Bits, M::State), Vec<Bits>> = HashMap::new();
    let mut steps = 0u64;
    let mut stuck_at = None;
    let mut scan = Scan::Answered(next[0]);
    // Each configuration visited gets a new number (its state is fixed by it); an
    // indeterminate op that did not fit in a configuration is not tried there again. Lost ops
    // stay pending to the end, so without this every return to the head of the list would try
    // each of them again.
    let mut epoch = 0u64;
    let mut epochs = 0u64;
    let mut misfit = vec![u64::MAX; n];
    loop {
        if left == 0 {
            return Search {
                outcome: Outcome::Linearizable,
                steps,
                stuck_at,
            };
        }
        let i = match scan {
            Scan::Answered(cur) if cur == NIL || events[cur - 1].1 => {
                // A return with its op not linearized: only indeterminate ops called before
                // it are left to try here.
                let until = if cur == NIL {
                    u64::MAX
                } else {
                    events[cur - 1].0
                };
                scan = Scan::Open { pos: 0, until };
                continue;
            }
            Scan::Answered(cur) => events[cur - 1].2,
            Scan::Open { pos, until } => {
                if pos < open_ops.len() && ops[open_ops[pos]].call <= until {
                    // Of two that leave the same state, both callable now and forever, trying
                    // the first is enough: they can swap places in any order using the other.
                    let same_as_earlier = || class[pos].iter().any(|&q| !taken.get(q));
                    if taken.get(pos) || same_as_earlier() {
                        scan = Scan::Open {
                            pos: pos + 1,
                            until,
                        };
                        continue;
                    }
                    open_ops[pos]
                } else {
                    // Nothing fits before that return: undo the last choice.
                    if until != u64::MAX {
                        stuck_at = stuck_at.max(Some(until));
                    }
                    let Some((i, before, resume, at)) = stack.pop() else {
                        return Search {
                            outcome: Outcome::NotLinearizable,
                            steps,
                            stuck_at,
                        };
                    };
                    state = before;
                    epoch = at;
                    match resume {
                        Scan::Answered(_) => {
                            if ops[i].ret.is_some() {
                                done.clear(slot[i]);
                                left += 1;
                                relink(&mut next, &mut prev, ret_node[i]);
                            } else {
                                taken.clear(slot[i]);
                            }
                            relink(&mut next, &mut prev, call_node[i]);
                            scan = Scan::Answered(next[call_node[i]]);
                        }
                        Scan::Open { pos, until } => {
                            taken.clear(slot[i]);
                            scan = Scan::Open {
                                pos: pos + 1,
                                until,
                            };
                        }
                    }
                    continue;
                }
            }
        };
        if ops[i].ret.is_none() && misfit[i] == epoch {
            scan = match scan {
                Scan::Answered(cur) => Scan::Answered(next[cur]),
                Scan::Open { pos, until } => Scan::Open {
                    pos: pos + 1,
                    until,
                },
            };
            continue;
        }
        steps += 1;
        if steps > max_steps {
            return Search {
                outcome: Outcome::GaveUp,
                steps,
                stuck_at,
            };
        }
        let op = &ops[i];
        if model.is_blind_write(op.input)
            && stack
                .last()
                .is_some_and(|(j, _, _, _)| is_open_blind(model, &ops[*j]))
        {
            // An indeterminate blind write just before a blind write is pointless.
            scan = match scan {
                Scan::Answered(cur) => Scan::Answered(next[cur]),
                Scan::Open { pos, until } => Scan::Open {
                    pos: pos + 1,
                    until,
                },
            };
            continue;
        }
        let (out, after) = model.step(&state, op.input);
        // An indeterminate op that would change nothing is the same as one that never ran.
        let fits = match op.ret {
            Some((_, seen_out)) => out == *seen_out,
            None => after != state,
        };
        let answered_op = op.ret.is_some();
        if fits {
            if answered_op {
                done.set(slot[i]);
            } else {
                taken.set(slot[i]);
            }
            if first_visit(&mut seen, &done, &after, &taken) {
                stack.push((i, std::mem::replace(&mut state, after), scan, epoch));
                epochs += 1;
                epoch = epochs;
                if call_node[i] != NIL {
                    unlink(&mut next, &mut prev, call_node[i]);
                }
                if answered_op {
                    left -= 1;
                    unlink(&mut next, &mut prev, ret_node[i]);
                }
                scan = Scan::Answered(next[0]);
                continue;
            }
            if answered_op {
                done.clear(slot[i]);
            } else {
                taken.clear(slot[i]);
            }
        }
        if !answered_op {
            misfit[i] = epoch;
        }
        scan = match scan {
            Scan::Answered(cur) => Scan::Answered(next[cur]),
            Scan::Open { pos, until } => Scan::Open {
                pos: pos + 1,
                until,
            },
        };
    }
}

fn is_open_blind<M: Model>(model: &M, op: &POp<'_, M::Input, M::Output>) -> bool {
    op.ret.is_none() && model.is_blind_write(op.input)
}

/// Remember a configuration; false if it, or one that dominates it (same answered ops and
/// state, a subset of its indeterminate ops taken), was explored already.
fn first_visit<S: Clone + Eq + std::hash::Hash>(
    seen: &mut HashMap<(Bits, S), Vec<Bits>>,
    done: &Bits,
    state: &S,
    taken: &Bits,
) -> bool {
    let list = seen.entry((done.clone(), state.clone())).or_default();
    if list.iter().any(|s| s.is_subset_of(taken)) {
        return false;
    }
    list.retain(|s| !taken.is_subset_of(s));
    list.push(taken.clone());
    true
}

/// Weaken an op: a read is dropped, anything else loses its answer.
fn weaken<'a, M: Model>(
    model: &M,
    op: POp<'a, M::Input, M::Output>,
) -> Option<POp<'a, M::Input, M::Output>> {
    if model.is_read_only(op.input) {
        None
    } else {
        Some(POp { ret: None, ..op })
    }
}

/// Cut the rejected part at the latest point the search reached, then weaken answered ops,
/// halves first, while the rest stays non-linearizable. Weakening only allows more orders, so
/// what stays rejected is still a proof against the original history.
fn shrink<'a, M: Model>(
    model: &M,
    part: Vec<POp<'a, M::Input, M::Output>>,
    stuck_at: Option<u64>,
    budget: u64,
    limits: &Limits,
) -> Vec<POp<'a, M::Input, M::Output>> {
    let mut checks = 0;
    let left = std::cell::Cell::new(budget);
    let rejected = |ops: &[POp<'a, M::Input, M::Output>], checks: &mut usize| {
        *checks += 1;
        let s = search(model, ops, left.get());
        left.set(left.get().saturating_sub(s.steps));
        s.outcome == Outcome::NotLinearizable
    };
    let mut cur = part;
    if let Some(t) = stuck_at {
        let cut: Vec<_> = cur
            .iter()
            .filter(|op| op.call <= t)
            .filter_map(|op| match op.ret {
                Some((r, _)) if r > t => weaken(model, *op),
                _ => Some(*op),
            })
            .collect();
        if cut.len() < cur.len() && rejected(&cut, &mut checks) {
            cur = cut;
        }
    }
    let answered = |ops: &[POp<'_, M::Input, M::Output>]| -> Vec<usize> {
        ops.iter()
            .filter(|op| op.ret.is_some())
            .map(|op| op.idx)
            .collect()
    };
    let mut chunk = (answered(&cur).len() / 2).max(1);
    loop {
        let candidates = answered(&cur);
        for group in candidates.rchunks(chunk) {
            if checks >= limits.max_shrink_checks || left.get() == 0 {
                return cur;
            }
            let trial: Vec<_> = cur
                .iter()
                .filter_map(|op| {
                    if op.ret.is_some() && group.contains(&op.idx) {
                        weaken(model, *op)
                    } else {
                        Some(*op)
                    }
                })
                .collect();
            if rejected(&trial, &mut checks) {
                cur = trial;
            }
        }
        if chunk == 1 {
            return cur;
        }
        chunk /= 2;
    }
}

fn anomaly<M: Model>(
    key: M::Key,
    history: &[Op<M::Input, M::Output>],
    shrunk: &[POp<'_, M::Input, M::Output>],
) -> Anomaly<M::Key> {
    let mut witness: Vec<usize> = shrunk
        .iter()
        .filter(|op| op.ret.is_some())
        .map(|op| op.idx)
        .collect();
    witness.sort_by_key(|&i| (history[i].call, i));
    let end = witness
        .iter()
        .filter_map(|&i| history[i].ret.as_ref().map(|(t, _)| *t))
        .max()
        .unwrap_or(u64::MAX);
    let mut uncertain: Vec<usize> = shrunk
        .iter()
        .filter(|op| op.ret.is_none() && op.call <= end)
        .map(|op| op.idx)
        .collect();
    uncertain.sort_by_key(|&i| (history[i].call, i));
    let mut description = format!("key {key:?}: no order explains these answers:\n");
    // Shrinking is bounded: a long witness is shown by its end, where the search got stuck.
    let skip = witness.len().saturating_sub(40);
    if skip > 0 {
        let _ = writeln!(description, "  … {skip} earlier ops, then:");
    }
    for &i in &witness[skip..] {
        let _ = writeln!(description, "  {}", show(&history[i]));
    }
    if !uncertain.is_empty() {
        let _ = writeln!(
            description,
            "  even if any of these {} (answers set aside) took effect at any time after its call, or never:",
            uncertain.len()
        );
        for &i in uncertain.iter().take(20) {
            let _ = writeln!(description, "    {}", show(&history[i]));
        }
        if uncertain.len() > 20 {
            let _ = writeln!(description, "    … and {} more", uncertain.len() - 20);
        }
    }
    Anomaly {
        key,
        witness,
        uncertain,
        description,
    }
}

/// One op as a witness line.
pub(crate) fn show<I: std::fmt::Debug, O: std::fmt::Debug>(op: &Op<I, O>) -> String {
    match &op.ret {
        Some((t, out)) => format!(
            "client {} [{} .. {}] {:?} -> {:?}",
            op.client, op.call, t, op.input, out
        ),
        None => format!(
            "client {} [{} .. ?] {:?} -> (no answer)",
            op.client, op.call, op.input
        ),
    }
}
