//! Heap bytes per registered service instance, measured inside the process with a counting
//! allocator (no RSS, no allocator slack): the state store's tables and indexes, the log
//! entries that carried the registrations, and the snapshot of the result.
//!
//! It registers the same shape as `bench/instances.py` (3 instances per node, one check each,
//! node meta, tags, service meta) straight into a [`Store`], so a change to the store's records
//! or indexes shows here without building the agent. `bench/instances.sh` measures the whole
//! agent's RSS.
//!
//!     cargo run --release -p proconsul-state --example instance_memory [INSTANCES]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use proconsul_state::{Command, Proposal, Store};
use proconsul_types::RegisterRequest;

/// Counts live heap bytes (requested sizes).
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const PER_NODE: usize = 3;

/// The registration `bench/instances.py` sends for instance `i`.
fn request(i: usize) -> RegisterRequest {
    let n = i / PER_NODE;
    let body = serde_json::json!({
        "Node": format!("node-{n}"),
        "Address": format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255),
        "NodeMeta": {"rack": format!("r{}", n % 20)},
        "Service": {
            "ID": format!("web-{i}"),
            "Service": format!("web-{}", i % 1000),
            "Port": 8000 + i % PER_NODE,
            "Tags": ["v1", "primary"],
            "Meta": {"version": "1.2.3"},
        },
        "Check": {
            "CheckID": format!("service:web-{i}"),
            "Name": "http",
            "Status": "passing",
            "ServiceID": format!("web-{i}"),
            "Output": "HTTP GET http://localhost/health: 200 OK",
        },
    });
    serde_json::from_value(body).expect("a valid registration")
}

fn per_instance(bytes: isize, n: usize) -> isize {
    bytes / n as isize
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("INSTANCES is a number"))
        .unwrap_or(30_000);
    let proposals: Vec<Arc<Proposal>> = (0..n)
        .map(|i| Arc::new(Proposal::new(0, Command::register(request(i)))))
        .collect();

    // The log entries alone: what an in-memory Raft log holds until it is compacted.
    let before = live();
    let log: Vec<Arc<Proposal>> = proposals.iter().map(|p| Arc::new((**p).clone())).collect();
    let log_bytes = live() - before;
    drop(log);
    drop(proposals);

    // The store alone. Each entry is dropped once applied, as a compacted log forgets it, so
    // whatever a record shares with its entry is counted here.
    let before = live();
    let store = Store::new();
    for i in 0..n {
        let p = Proposal::new(0, Command::register(request(i)));
        assert!(!store.apply(i as u64 + 1, &p).is_err(), "registration {i}");
    }
    let store_bytes = live() - before;

    let before = live();
    let dump = store.dump();
    let dump_bytes = live() - before;
    assert_eq!(dump_bytes, dump.capacity() as isize);

    println!(
        "{n} instances on {} nodes, one check each",
        n.div_ceil(PER_NODE)
    );
    println!(
        "state store (records and indexes): {} bytes per instance",
        per_instance(store_bytes, n)
    );
    println!(
        "log entries (one registration each): {} bytes per instance",
        per_instance(log_bytes, n)
    );
    println!(
        "snapshot (encoded): {} bytes per instance",
        per_instance(dump.len() as isize, n)
    );
}
