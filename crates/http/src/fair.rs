//! Fair shares between clients: at most [`RUNNING_PER_CLIENT`] connections of one client IP are
//! let into the runtime's run queue at a time to read and answer a request; its others wait in
//! that client's own queue until one of those is done.
//!
//! Why at the wake-up and not around the handler: a KV read is read, computed and answered
//! within one poll of its connection's task, so a bound on requests *in progress* never binds
//! (two workers run two polls at a time). What decides who gets the CPU is the run queue, and a
//! connection enters it when its socket turns readable. So a connection's socket wakes the
//! client's scheduler ([`ConnGate`] is the waker the socket is polled with), and the scheduler
//! wakes the connection's task only when the client has a free place. A client flooding the
//! agent over 200 connections then has 8 of them in the run queue, as a client with 8
//! connections does, and other clients' requests are not queued behind its hundreds.
//!
//! A connection keeps its place from the wake-up until it has answered and finds nothing more
//! to read. A request that will wait rather than compute (a blocking query, a write, which
//! waits for Raft's group commit) gives its place back when it starts, and its connection reads
//! on without one until its answer is ready. Consul has nothing like it; it changes no answer,
//! only the order of work, and a client alone is never held back: the bound applies only
//! while another client has a request running too ([`BUSY_CLIENTS`]), so one client's 64
//! parallel connections (a benchmark, a busy application) cost no extra wake-ups.
//!
//! The TCP listeners, plain (`crate::serve`) and TLS (`crate::tls::serve_tls`): the TLS stream
//! reads through the same gate. A unix socket has no client address to be fair between.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Wake, Waker};

/// Connections of one client IP in the run queue at a time: enough for one client's parallel
/// requests to keep both cores of a small server busy, few beside a flood's hundreds.
pub const RUNNING_PER_CLIENT: usize = 8;

/// Clients with a request running or waiting for a place, in this process. Below two there is
/// no one to be fair to.
static BUSY_CLIENTS: AtomicUsize = AtomicUsize::new(0);

/// One client's places and the connections waiting for one, shared by its connections.
#[derive(Debug, Default)]
pub struct ClientSched(Mutex<SchedState>);

#[derive(Debug, Default)]
struct SchedState {
    running: usize,
    waiting: VecDeque<Arc<ConnGate>>,
}

/// One connection's standing with its client's scheduler; also the waker its socket is polled
/// with.
#[derive(Debug)]
pub struct ConnGate {
    sched: Arc<ClientSched>,
    state: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    /// The connection task's waker, as of its last read.
    task: Option<Waker>,
    /// Holds one of its client's places.
    running: bool,
    /// In its client's queue.
    queued: bool,
    /// A request read and computing: keep the place through hyper's reads in its middle.
    computing: bool,
    /// A request that waits is in progress: read without a place.
    waiting: bool,
    /// The connection is gone: never give it a place.
    closed: bool,
}

impl ClientSched {
    fn lock(&self) -> MutexGuard<'_, SchedState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SchedState {
    /// A request of this client runs (or waits for a place).
    fn busy(&self) -> bool {
        self.running > 0
    }

    fn take_place(&mut self) {
        if !self.busy() {
            BUSY_CLIENTS.fetch_add(1, Ordering::Relaxed);
        }
        self.running += 1;
    }
}

impl ConnGate {
    pub fn new(sched: Arc<ClientSched>) -> Arc<Self> {
        Arc::new(ConnGate {
            sched,
            state: Mutex::default(),
        })
    }

    fn state(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Before a read: remember the task's waker; may the connection read now? It may when it
    /// holds a place or its request waits; else it takes a free place, or queues for one
    /// (`false`: the scheduler wakes it when its turn comes).
    pub(crate) fn may_read(self: &Arc<Self>, task: &Waker) -> bool {
        let mut sched = self.sched.lock();
        let mut st = self.state();
        if !st.task.as_ref().is_some_and(|w| w.will_wake(task)) {
            st.task = Some(task.clone());
        }
        if st.running || st.waiting {
            return true;
        }
        let alone = BUSY_CLIENTS.load(Ordering::Relaxed) <= usize::from(sched.busy());
        if sched.running < RUNNING_PER_CLIENT || alone {
            sched.take_place();
            st.running = true;
            return true;
        }
        if !st.queued {
            st.queued = true;
            sched.waiting.push_back(self.clone());
        }
        false
    }

    /// After a read: bytes of a request came (`got_bytes`), or nothing was there (`pending`).
    pub(crate) fn after_read(&self, got_bytes: bool, pending: bool) {
        let mut sched = self.sched.lock();
        let mut st = self.state();
        if got_bytes && !st.waiting {
            st.computing = true;
        } else if pending && !st.computing {
            self.give_back(&mut sched, &mut st);
        }
    }

    /// A request of this connection starts: it keeps the place while it computes, or gives it
    /// back when it `waits`. Everything goes back when the guard drops (the answer is ready).
    pub(crate) fn begin(self: &Arc<Self>, waits: bool) -> RequestInProgress {
        let mut sched = self.sched.lock();
        let mut st = self.state();
        if waits {
            st.computing = false;
            st.waiting = true;
            self.give_back(&mut sched, &mut st);
        } else {
            st.computing = true;
        }
        RequestInProgress(self.clone())
    }

    /// The connection closed: out of the queue (which would otherwise keep it and its
    /// client's scheduler alive through each other), its place given back.
    pub(crate) fn close(self: &Arc<Self>) {
        let mut sched = self.sched.lock();
        let mut st = self.state();
        st.closed = true;
        if std::mem::take(&mut st.queued) {
            sched.waiting.retain(|g| !Arc::ptr_eq(g, self));
        }
        self.give_back(&mut sched, &mut st);
    }

    /// Give this connection's place (if it has one) to the first live connection waiting.
    fn give_back(&self, sched: &mut SchedState, st: &mut GateState) {
        if !std::mem::take(&mut st.running) {
            return;
        }
        sched.running -= 1;
        while let Some(next) = sched.waiting.pop_front() {
            let mut n = next.state();
            n.queued = false;
            if n.closed {
                continue;
            }
            n.running = true;
            sched.running += 1;
            if let Some(w) = &n.task {
                w.wake_by_ref();
            }
            break;
        }
        if !sched.busy() {
            BUSY_CLIENTS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The socket turned readable: wake the task if the connection may read (it has a place, its
/// request waits, or a place is free); else it queues for one.
impl Wake for ConnGate {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let task = self.state().task.clone();
        if let Some(task) = task {
            if self.may_read(&task) {
                task.wake();
            }
        }
    }
}

/// A request in progress on a connection ([`ConnGate::begin`]).
#[derive(Debug)]
pub(crate) struct RequestInProgress(Arc<ConnGate>);

impl Drop for RequestInProgress {
    fn drop(&mut self) {
        let mut sched = self.0.sched.lock();
        let mut st = self.0.state();
        st.computing = false;
        st.waiting = false;
        // The answer is written without a place; the next read takes one again.
        self.0.give_back(&mut sched, &mut st);
    }
}
