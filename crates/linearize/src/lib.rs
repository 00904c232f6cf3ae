//! A linearizability checker for histories recorded by concurrent clients.
//!
//! A history is a list of [`Op`]s: what a client asked (`input`), when it asked (`call`), and —
//! if an answer came — when it came and what it said (`ret`). An op whose answer was lost (a
//! timeout, a reset connection, a server error on a write) is *indeterminate*: it may have taken
//! effect at any instant after its call, or never. The history is linearizable if there is one
//! order of the ops such that
//! - every op with an answer appears once, every indeterminate op at most once,
//! - an op that returned before another was called comes first (real time), and
//! - running the ops in that order on the sequential [`Model`] gives every answer that was seen.
//!
//! The search is Wing and Gong's, with Lowe's memoization (as Porcupine does it): walk the
//! call/return events in time order, linearize a pending op when the model accepts its answer,
//! backtrack at a return whose op is not linearized yet, and never explore the same
//! (set of linearized ops, model state) twice. Indeterminate ops have no return event, so they
//! never force a backtrack and never need to be linearized; a configuration that linearized a
//! superset of another's indeterminate ops, with the same answered ops and state, is dominated
//! by it (it has fewer options left) and is pruned too. Ops on different keys are independent
//! for the models here, so a history is split by [`Model::key`] and each part is checked alone
//! (linearizability is compositional).
//!
//! A rejected part comes with a small witness ([`Anomaly::witness`]): the history is cut at the
//! latest point the search reached, then answered ops are weakened (a read dropped, a write made
//! indeterminate) for as long as the rest stays non-linearizable. What remains are answered ops
//! that no order can explain even if every other op might or might not have taken effect.
//!
//! Pure: no I/O, no clock, no randomness. The models ([`kv`], [`lock`]) are Consul's KV register
//! (read, write, check-and-set by `ModifyIndex`) and its session lock (`?acquire=`/`?release=`).

mod check;
pub mod kv;
pub mod lock;

#[cfg(test)]
mod brute;

use std::fmt::Debug;
use std::hash::Hash;

pub use check::{check, check_with, Anomaly, Limits, Outcome, Report};

/// One operation of a history. Times are in any unit from one monotonic clock (nanoseconds
/// since the recording started, say); only their order matters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op<I, O> {
    /// Who issued it (shown in witnesses; a client has one op outstanding at a time).
    pub client: u32,
    /// When the request was about to be sent.
    pub call: u64,
    pub input: I,
    /// When the answer arrived and what it said; `None` for an indeterminate op.
    pub ret: Option<(u64, O)>,
}

impl<I, O> Op<I, O> {
    /// An op that got an answer.
    pub fn done(client: u32, call: u64, ret: u64, input: I, output: O) -> Self {
        debug_assert!(call <= ret, "an op returns after its call");
        Op {
            client,
            call,
            input,
            ret: Some((ret, output)),
        }
    }

    /// An op whose answer was lost.
    pub fn indeterminate(client: u32, call: u64, input: I) -> Self {
        Op {
            client,
            call,
            input,
            ret: None,
        }
    }

    pub fn is_indeterminate(&self) -> bool {
        self.ret.is_none()
    }
}

/// A deterministic sequential specification: what an op answers and how it changes the state
/// of the one object (key) it acts on.
pub trait Model {
    type State: Clone + Eq + Hash + Debug;
    type Input: Clone + Debug;
    type Output: Clone + PartialEq + Debug;
    /// Ops with different keys act on independent objects.
    type Key: Clone + Ord + Debug;

    /// The state of an object before any op.
    fn init(&self) -> Self::State;
    fn key(&self, input: &Self::Input) -> Self::Key;
    /// The answer `input` gets in `state`, and the state after it.
    fn step(&self, state: &Self::State, input: &Self::Input) -> (Self::Output, Self::State);
    /// Whether an op whose answer was lost could be dropped from the history without losing
    /// what it tells: true for a read (it changes nothing, so "it happened" adds nothing).
    fn is_read_only(&self, _input: &Self::Input) -> bool {
        false
    }
    /// Whether the op's effect is the same in every state (a plain write): the search tries
    /// such an op, when its answer was lost, only where nothing else fits.
    fn is_blind_write(&self, _input: &Self::Input) -> bool {
        false
    }
}
