//! In-process Raft clusters over `MemRouter`: bootstrap, replication, failover, restart from
//! disk, snapshot install for new and lagging nodes. Every wait polls a condition with a deadline.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proconsul_raft::{MemRouter, RaftError, RaftNode, RaftOptions, StateMachine};
use proconsul_state::{ApplyResult, Command, KvOp, KvVerb, Proposal};
use tokio::time::Instant;

/// A KV set of `key=value`, as a log entry.
fn set(kv: impl AsRef<[u8]>) -> Proposal {
    let s = String::from_utf8(kv.as_ref().to_vec()).unwrap();
    let (k, v) = s.split_once('=').unwrap();
    Proposal::new(
        0,
        Command::Kv(KvOp {
            verb: KvVerb::Set,
            key: k.to_string(),
            value: Some(v.as_bytes().to_vec()),
            ..Default::default()
        }),
    )
}

/// Toy KV over the KV set entries; the result says whether a value was replaced.
#[derive(Default)]
struct Kv {
    map: Mutex<BTreeMap<String, String>>,
    restores: AtomicU64,
    last_index: AtomicU64,
}

impl Kv {
    fn get(&self, k: &str) -> Option<String> {
        self.map.lock().unwrap().get(k).cloned()
    }
    fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }
}

impl StateMachine for Kv {
    fn apply(&self, index: u64, entry: &Proposal) -> ApplyResult {
        let Command::Kv(op) = &entry.command else {
            panic!("unexpected entry {entry:?}")
        };
        let v = String::from_utf8(op.value.clone().unwrap_or_default()).unwrap();
        self.last_index.store(index, Ordering::SeqCst);
        let prev = self.map.lock().unwrap().insert(op.key.clone(), v);
        ApplyResult::Bool(prev.is_some())
    }
    fn note_index(&self, index: u64) {
        self.last_index.store(index, Ordering::SeqCst);
    }
    fn snapshot(&self) -> Vec<u8> {
        rmp_serde::to_vec(&*self.map.lock().unwrap()).unwrap()
    }
    fn restore(&self, data: &[u8]) -> Result<(), String> {
        *self.map.lock().unwrap() = rmp_serde::from_slice(data).map_err(|e| e.to_string())?;
        self.restores.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

const DEADLINE: Duration = Duration::from_secs(15);

async fn wait_until<F: FnMut() -> bool>(what: &str, mut cond: F) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn opts(id: u64, dir: Option<PathBuf>) -> RaftOptions {
    let mut o = RaftOptions::new(id, addr(id), dir);
    o.heartbeat_ms = 50;
    o.election_min_ms = 300;
    o.election_max_ms = 600;
    o
}

fn addr(id: u64) -> String {
    format!("127.0.0.{id}:8300")
}

struct TestNode {
    node: RaftNode,
    kv: Arc<Kv>,
}

async fn start(router: &MemRouter, o: RaftOptions) -> TestNode {
    let a = o.addr.clone();
    let end = Instant::now() + DEADLINE;
    loop {
        let kv = Arc::new(Kv::default());
        match RaftNode::start(o.clone(), kv.clone(), router.transport(&a)).await {
            Ok(node) => {
                router.register(&a, node.clone());
                return TestNode { node, kv };
            }
            // Restarted in the same process right after a shutdown, the node's previous
            // instance may still be closing its log database in the background.
            Err(e) if e.to_string().contains("already open") && Instant::now() < end => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("start {a}: {e}"),
        }
    }
}

/// The leader all running `nodes` agree on.
async fn agreed_leader(nodes: &[&TestNode]) -> u64 {
    let mut found = 0;
    wait_until("an agreed leader", || {
        let leaders: Vec<_> = nodes.iter().map(|n| n.node.leader().map(|l| l.0)).collect();
        match leaders[0] {
            Some(l)
                if leaders.iter().all(|x| *x == Some(l))
                    && nodes.iter().any(|n| n.node.is_leader()) =>
            {
                found = l;
                true
            }
            _ => false,
        }
    })
    .await;
    found
}

/// Propose on whichever node leads, retrying while leadership settles.
async fn propose(nodes: &[&TestNode], payload: &str) -> (u64, ApplyResult) {
    let end = Instant::now() + DEADLINE;
    loop {
        let leader = nodes.iter().find(|n| n.node.is_leader());
        if let Some(l) = leader {
            match l.node.propose(set(payload)).await {
                Ok(r) => return r,
                Err(e) if e.is_retryable() => {}
                Err(e) => panic!("propose {payload}: {e}"),
            }
        }
        assert!(Instant::now() < end, "timed out proposing {payload}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn timed<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_in_memory() {
    let router = MemRouter::new();
    let n = start(&router, opts(1, None)).await;
    assert!(!n.node.is_initialized().await);
    n.node.bootstrap(vec![(1, addr(1))]).await.unwrap();
    assert!(n.node.is_initialized().await);

    let t0 = Instant::now();
    wait_until("leadership", || n.node.is_leader()).await;
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "took {:?} to lead",
        t0.elapsed()
    );
    assert_eq!(n.node.leader(), Some((1, addr(1))));
    assert_eq!(n.node.voters(), vec![(1, addr(1))]);
    assert_eq!(n.node.last_contact_ms(), 0);

    let (i1, r1) = n.node.propose(set("a=1")).await.unwrap();
    let (i2, r2) = n.node.propose(set("a=2")).await.unwrap();
    let (i3, r3) = n.node.propose(set("b=3")).await.unwrap();
    assert!(i1 < i2 && i2 < i3, "{i1} {i2} {i3}");
    // Each answer belongs to its own entry: only the second replaced a value.
    assert_eq!(
        (r1, r2, r3),
        (
            ApplyResult::Bool(false),
            ApplyResult::Bool(true),
            ApplyResult::Bool(false)
        )
    );
    assert_eq!(n.kv.get("a").as_deref(), Some("2"));
    assert!(n.node.applied_index() >= i3);
    n.node.ensure_linearizable().await.unwrap();

    // Bootstrapping again is a harmless no-op.
    n.node.bootstrap(vec![(1, addr(1))]).await.unwrap();

    let m = n.node.metrics();
    assert_eq!(m.state, "Leader");
    assert_eq!(m.leader_id, Some(1));
    assert!(m.last_log_index >= i3 && m.applied_index >= i3);
    wait_until("commit index in metrics", || {
        n.node.metrics().commit_index >= i3
    })
    .await;
    assert_eq!(m.num_voters, 1);

    n.node.shutdown().await;
    assert_eq!(n.node.propose(set("c=1")).await, Err(RaftError::Shutdown));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_restart_restores_state_and_does_not_rebootstrap() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(1, Some(dir.path().join("raft")));
    o.snapshot_logs_since_last = 10;
    o.trailing_logs = 2;

    let last_index;
    {
        let router = MemRouter::new();
        let n = start(&router, o.clone()).await;
        n.node.bootstrap(vec![(1, addr(1))]).await.unwrap();
        wait_until("leadership", || n.node.is_leader()).await;
        let mut idx = 0;
        for i in 0..25 {
            idx = n.node.propose(set(format!("k{i}=v{i}"))).await.unwrap().0;
        }
        last_index = idx;
        wait_until("a snapshot", || n.node.metrics().last_snapshot_index >= 10).await;
        n.node.shutdown().await;
        router.unregister(&addr(1));
    }
    assert!(dir.path().join("raft/snapshots/current.snap").exists());

    let router = MemRouter::new();
    let n = start(&router, o.clone()).await;
    // Restored from the snapshot before any election, then the log tail is replayed.
    assert_eq!(n.kv.restores.load(Ordering::SeqCst), 1);
    assert!(n.node.is_initialized().await);
    n.node
        .bootstrap(vec![(1, addr(1)), (2, addr(2))])
        .await
        .unwrap(); // no-op
    wait_until("leadership after restart", || n.node.is_leader()).await;
    assert_eq!(n.node.voters(), vec![(1, addr(1))], "must not re-bootstrap");
    wait_until("replay of the log tail", || n.kv.len() == 25).await;
    assert_eq!(n.kv.get("k24").as_deref(), Some("v24"));
    assert_eq!(n.kv.get("k0").as_deref(), Some("v0"));
    let (idx, replaced) = n.node.propose(set("k0=again")).await.unwrap();
    assert!(idx > last_index);
    assert_eq!(replaced, ApplyResult::Bool(true));
    n.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_replicate_and_fail_over() {
    let router = MemRouter::new();
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(start(&router, opts(id, None)).await);
    }
    let all: Vec<(u64, String)> = (1..=3).map(|id| (id, addr(id))).collect();
    nodes[0].node.bootstrap(all.clone()).await.unwrap();

    let refs: Vec<&TestNode> = nodes.iter().collect();
    let leader = agreed_leader(&refs).await;
    let mut last = 0;
    for i in 0..5 {
        last = propose(&refs, &format!("k{i}=v{i}")).await.0;
    }
    wait_until("replication to all", || {
        nodes
            .iter()
            .all(|n| n.kv.len() == 5 && n.node.applied_index() >= last)
    })
    .await;

    // A follower refuses writes and names the leader.
    let follower = nodes.iter().find(|n| !n.node.is_leader()).unwrap();
    match follower.node.propose(set("x=1")).await {
        Err(RaftError::ForwardToLeader {
            leader: Some((id, a)),
        }) => assert_eq!((id, a), (leader, addr(leader))),
        other => panic!("expected ForwardToLeader, got {other:?}"),
    }
    wait_until("follower contact", || {
        follower.node.last_contact_ms() < 1000
    })
    .await;
    assert!(matches!(
        follower.node.ensure_linearizable().await,
        Err(RaftError::ForwardToLeader { .. })
    ));

    // Stop the leader: the other two elect a new one and keep the committed entries.
    let old = nodes
        .iter()
        .position(|n| n.node.metrics().node_id == leader)
        .unwrap();
    nodes[old].node.shutdown().await;
    router.unregister(&addr(leader));
    let rest: Vec<&TestNode> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != old)
        .map(|(_, n)| n)
        .collect();
    let new_leader = agreed_leader(&rest).await;
    assert_ne!(new_leader, leader);
    let (idx, replaced) = propose(&rest, "k0=new").await;
    assert!(idx > last);
    assert_eq!(replaced, ApplyResult::Bool(true), "the new leader holds k0");
    wait_until("survivors converge", || {
        rest.iter()
            .all(|n| n.kv.get("k0").as_deref() == Some("new") && n.kv.len() == 5)
    })
    .await;
    for n in &rest {
        assert_eq!(n.kv.get("k4").as_deref(), Some("v4"));
        n.node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_and_lagging_nodes_catch_up_by_snapshot() {
    // Durable nodes: the leader sends its snapshot from disk; installs are written to disk.
    let tmp = tempfile::tempdir().unwrap();
    let router = MemRouter::new();
    let small = |id| {
        let mut o = opts(id, Some(tmp.path().join(format!("n{id}"))));
        o.snapshot_logs_since_last = 10;
        o.trailing_logs = 0;
        o
    };
    let n1 = start(&router, small(1)).await;
    let n2 = start(&router, small(2)).await;
    n1.node
        .bootstrap(vec![(1, addr(1)), (2, addr(2))])
        .await
        .unwrap();
    let refs = [&n1, &n2];
    agreed_leader(&refs).await;

    // n2 falls behind while it is cut off... (a 2-voter cluster cannot commit without it, so
    // add a third voter first).
    let n3 = start(&router, small(3)).await;
    let leader = if n1.node.is_leader() { &n1 } else { &n2 };
    timed("add n3", leader.node.add_voter(3, addr(3)))
        .await
        .unwrap();
    let all = [&n1, &n2, &n3];
    wait_until("three voters", || {
        all.iter().all(|n| n.node.voters().len() == 3)
    })
    .await;

    // Cut off a follower, write enough for snapshots + log purge, then heal it.
    let lagging = all.iter().find(|n| !n.node.is_leader()).unwrap();
    let lag_addr = addr(lagging.node.metrics().node_id);
    router.isolate(&lag_addr, true);
    let live: Vec<&TestNode> = all
        .iter()
        .copied()
        .filter(|n| !std::ptr::eq(*n, *lagging))
        .collect();
    let mut last = 0;
    for i in 0..30 {
        last = propose(&live, &format!("k{i}=v{i}")).await.0;
    }
    let leader = live.iter().find(|n| n.node.is_leader()).unwrap();
    timed("snapshot", leader.node.trigger_snapshot())
        .await
        .unwrap();
    wait_until("leader snapshot", || {
        leader.node.metrics().last_snapshot_index >= last
    })
    .await;
    router.isolate(&lag_addr, false);
    wait_until("lagging node catches up", || {
        lagging.kv.len() == 30 && lagging.node.applied_index() >= last
    })
    .await;
    assert!(
        lagging.kv.restores.load(Ordering::SeqCst) >= 1,
        "expected a snapshot install"
    );

    // A brand-new server joins and is brought up by snapshot too.
    let n4 = start(&router, small(4)).await;
    let leader = all.iter().find(|n| n.node.is_leader()).unwrap();
    timed("add n4", leader.node.add_voter(4, addr(4)))
        .await
        .unwrap();
    wait_until("n4 catches up", || n4.kv.len() == 30).await;
    assert!(
        n4.kv.restores.load(Ordering::SeqCst) >= 1,
        "expected a snapshot install"
    );
    assert_eq!(leader.node.voters().len(), 4);
    // Adding again is a no-op; removing shrinks the membership.
    leader.node.add_voter(4, addr(4)).await.unwrap();
    timed("remove n4", leader.node.remove_voter(4))
        .await
        .unwrap();
    wait_until("n4 removed", || {
        leader.node.voters().iter().all(|(id, _)| *id != 4)
    })
    .await;

    for n in [&n1, &n2, &n3, &n4] {
        n.node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proposals_get_distinct_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let router = MemRouter::new();
    let n = start(&router, opts(1, Some(dir.path().to_path_buf()))).await;
    n.node.bootstrap(vec![(1, addr(1))]).await.unwrap();
    wait_until("leadership", || n.node.is_leader()).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64 {
        let node = n.node.clone();
        tasks.spawn(async move { node.propose(set(format!("c{i}=x"))).await.unwrap().0 });
    }
    let mut idx: Vec<u64> = timed("proposals", tasks.join_all()).await;
    idx.sort_unstable();
    idx.dedup();
    assert_eq!(idx.len(), 64);
    assert_eq!(n.kv.len(), 64);
    n.node.shutdown().await;
}

/// Group commit: concurrent proposals on a durable node share fsyncs, yet each keeps its own
/// log index and is applied exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proposals_on_durable_node_share_fsyncs() {
    const N: usize = 256;
    let dir = tempfile::tempdir().unwrap();
    let router = MemRouter::new();
    let n = start(&router, opts(1, Some(dir.path().to_path_buf()))).await;
    n.node.bootstrap(vec![(1, addr(1))]).await.unwrap();
    wait_until("leadership", || n.node.is_leader()).await;
    // Let the leader's blank entry settle before counting.
    n.node.propose(set("warm=up")).await.unwrap();
    let syncs_before = n.node.log_sync_count();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        let node = n.node.clone();
        tasks.spawn(async move { node.propose(set(format!("g{i}=x"))).await.unwrap().0 });
    }
    let mut idx: Vec<u64> = timed("proposals", tasks.join_all()).await;
    let syncs = n.node.log_sync_count() - syncs_before;
    idx.sort_unstable();
    idx.dedup();
    assert_eq!(idx.len(), N);
    assert_eq!(n.kv.len(), N + 1);
    assert!(syncs > 0, "durable log never synced");
    assert!(
        syncs < N as u64,
        "{syncs} fsync batches for {N} proposals: no group commit"
    );
    eprintln!("{N} proposals in {syncs} fsync batches");
    n.node.shutdown().await;

    // Everything acknowledged is on disk: a restart replays all of it.
    let n = start(&router, opts(1, Some(dir.path().to_path_buf()))).await;
    wait_until("replay", || n.kv.len() == N + 1).await;
    n.node.shutdown().await;
}

/// Group commit on a durable three-server cluster: concurrent proposals all commit with
/// distinct indexes, every server applies all of them, and a restarted server replays them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_cluster_commits_concurrent_proposals() {
    const N: usize = 128;
    let tmp = tempfile::tempdir().unwrap();
    let dir = |id: u64| tmp.path().join(format!("n{id}"));
    let router = MemRouter::new();
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(start(&router, opts(id, Some(dir(id)))).await);
    }
    let all: Vec<(u64, String)> = (1..=3).map(|id| (id, addr(id))).collect();
    nodes[0].node.bootstrap(all).await.unwrap();
    let refs: Vec<&TestNode> = nodes.iter().collect();
    let leader_id = agreed_leader(&refs).await;
    let leader = nodes[leader_id as usize - 1].node.clone();

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        let node = leader.clone();
        tasks.spawn(async move { node.propose(set(format!("d{i}=x"))).await.unwrap().0 });
    }
    let mut idx: Vec<u64> = timed("proposals", tasks.join_all()).await;
    idx.sort_unstable();
    idx.dedup();
    assert_eq!(idx.len(), N);
    let last = *idx.last().unwrap();
    wait_until("every server applied everything", || {
        nodes
            .iter()
            .all(|n| n.kv.len() == N && n.node.applied_index() >= last)
    })
    .await;

    // A follower restarted from disk has every entry.
    let f = nodes.iter().position(|n| !n.node.is_leader()).unwrap();
    let fid = f as u64 + 1;
    nodes[f].node.shutdown().await;
    router.unregister(&addr(fid));
    nodes[f] = start(&router, opts(fid, Some(dir(fid)))).await;
    wait_until("restarted follower caught up", || nodes[f].kv.len() == N).await;
    for n in &nodes {
        n.node.shutdown().await;
    }
}

/// A leader restarted from disk does not resume leading its old term (openraft would restore it
/// as leader at once, with a commit index only as new as it last wrote, see `set_node_id`): it
/// starts as a follower, a leader is elected in a newer term, and that leader has every entry
/// acknowledged before the restart applied before it answers a linearizable read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_leader_does_not_resume_its_old_term() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = |id: u64| tmp.path().join(format!("n{id}"));
    let router = MemRouter::new();
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(start(&router, opts(id, Some(dir(id)))).await);
    }
    let all: Vec<(u64, String)> = (1..=3).map(|id| (id, addr(id))).collect();
    nodes[0].node.bootstrap(all).await.unwrap();
    let refs: Vec<&TestNode> = nodes.iter().collect();
    let lid = agreed_leader(&refs).await;
    let l = lid as usize - 1;
    let term = nodes[l].node.leading_term().unwrap();
    let mut last = 0;
    for i in 0..20 {
        last = nodes[l]
            .node
            .propose(set(format!("r{i}=x")))
            .await
            .unwrap()
            .0;
    }

    nodes[l].node.shutdown().await;
    router.unregister(&addr(lid));
    nodes[l] = start(&router, opts(lid, Some(dir(lid)))).await;
    let refs: Vec<&TestNode> = nodes.iter().collect();
    let now = agreed_leader(&refs).await;
    let leader = &nodes[now as usize - 1];
    let new_term = leader.node.leading_term().unwrap();
    assert!(
        new_term > term,
        "node {now} leads term {new_term}, the term node {lid} led before its restart"
    );
    leader.node.ensure_linearizable().await.unwrap();
    assert!(leader.node.applied_index() >= last);
    assert_eq!(leader.kv.len(), 20);
    for n in &nodes {
        n.node.shutdown().await;
    }
}

/// A leader cut off from the quorum stops acting as leader once its lease (the minimum election
/// timeout) runs out: no known leader, writes and linearizable reads refused, a write caught
/// waiting for its commit fails with `LeadershipLost`. The majority elects a new leader; after
/// healing, the old leader follows it and every acknowledged write is everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_leader_loses_its_lease_and_rejoins_as_follower() {
    let router = MemRouter::new();
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(start(&router, opts(id, None)).await);
    }
    let all: Vec<(u64, String)> = (1..=3).map(|id| (id, addr(id))).collect();
    nodes[0].node.bootstrap(all).await.unwrap();
    let refs: Vec<&TestNode> = nodes.iter().collect();
    let leader = agreed_leader(&refs).await;
    for i in 0..5 {
        propose(&refs, &format!("k{i}=v{i}")).await;
    }
    let old = nodes
        .iter()
        .find(|n| n.node.metrics().node_id == leader)
        .unwrap();
    // With a quorum answering, the lease holds across many heartbeats.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(old.node.is_leader());
    assert_eq!(old.node.last_contact_ms(), 0);

    router.isolate(&addr(leader), true);
    // A write proposed now cannot commit; it fails when the lease runs out.
    let stuck = timed(
        "a write across the partition",
        old.node.propose(set("lost=1")),
    )
    .await;
    assert_eq!(stuck, Err(RaftError::LeadershipLost));
    assert!(!old.node.is_leader());
    assert_eq!(old.node.leader(), None);
    assert_eq!(old.node.propose(set("x=1")).await, Err(RaftError::NoLeader));
    assert_eq!(
        old.node.ensure_linearizable().await,
        Err(RaftError::NoLeader)
    );
    let m = old.node.metrics();
    assert_eq!((m.state, m.leader_id), ("Follower", None));
    assert!(
        old.node.last_contact_ms() >= 300,
        "{}",
        old.node.last_contact_ms()
    );

    // The majority elects a new leader and takes writes.
    let rest: Vec<&TestNode> = nodes
        .iter()
        .filter(|n| n.node.metrics().node_id != leader)
        .collect();
    let new_leader = agreed_leader(&rest).await;
    assert_ne!(new_leader, leader);
    let mut acked = Vec::new();
    for i in 0..5 {
        let kv = format!("p{i}=during");
        propose(&rest, &kv).await;
        acked.push(kv);
    }
    // The old leader still knows no leader while cut off.
    assert_eq!(old.node.leader(), None);

    router.isolate(&addr(leader), false);
    wait_until("the old leader to follow the new one", || {
        old.node.leader().map(|l| l.0) == Some(new_leader) && !old.node.is_leader()
    })
    .await;
    let (last, _) = propose(&refs, "after=heal").await;
    wait_until("every node to hold every acknowledged write", || {
        nodes.iter().all(|n| {
            n.node.applied_index() >= last
                && (0..5).all(|i| n.kv.get(&format!("k{i}")).is_some())
                && acked.iter().all(|kv| {
                    let (k, v) = kv.split_once('=').unwrap();
                    n.kv.get(k).as_deref() == Some(v)
                })
        })
    })
    .await;
    assert_eq!(old.node.metrics().state, "Follower");
    for n in &nodes {
        n.node.shutdown().await;
    }
}

/// Outage recovery (`peers.json`): of five durable servers three are lost for good; the two
/// survivors cannot elect. Stopped, each gets the same new membership written into its log,
/// and restarted: they elect one of themselves, keep every committed entry, take writes, and the
/// membership is the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survivors_recover_with_a_new_membership() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = |id: u64| tmp.path().join(format!("n{id}"));
    let router = MemRouter::new();
    let mut nodes = Vec::new();
    for id in 1..=5 {
        nodes.push(start(&router, opts(id, Some(dir(id)))).await);
    }
    let all: Vec<(u64, String)> = (1..=5).map(|id| (id, addr(id))).collect();
    nodes[0].node.bootstrap(all).await.unwrap();
    let refs: Vec<&TestNode> = nodes.iter().collect();
    agreed_leader(&refs).await;
    for i in 0..20 {
        propose(&refs, &format!("k{i}=v{i}")).await;
    }
    wait_until("replicated", || nodes.iter().all(|n| n.kv.len() == 20)).await;

    // Three servers are gone; the two left have no quorum.
    for (i, n) in nodes.iter().enumerate() {
        n.node.shutdown().await;
        router.unregister(&addr(i as u64 + 1));
    }
    let mut survivors = Vec::new();
    for id in 1..=2 {
        survivors.push(start(&router, opts(id, Some(dir(id)))).await);
    }
    // Waiting is the point here: for longer than an election timeout, nobody may win.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        survivors.iter().all(|n| !n.node.is_leader()),
        "no quorum, no leader"
    );
    for (i, n) in survivors.iter().enumerate() {
        n.node.shutdown().await;
        router.unregister(&addr(i as u64 + 1));
    }

    // The same new membership on both, then a restart.
    let voters: BTreeMap<u64, String> = (1..=2).map(|id| (id, addr(id))).collect();
    for id in 1..=2 {
        let end = Instant::now() + DEADLINE;
        let index = loop {
            match proconsul_raft::recover_membership(&dir(id), id, voters.clone(), BTreeMap::new())
            {
                Ok(index) => break index,
                // The node shut down a moment ago may still be closing its log database.
                Err(e) if e.to_string().contains("already open") && Instant::now() < end => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("recover_membership: {e}"),
            }
        };
        assert!(index > 20, "appended after the log: {index}");
    }
    let mut survivors = Vec::new();
    for id in 1..=2 {
        survivors.push(start(&router, opts(id, Some(dir(id)))).await);
    }
    let refs: Vec<&TestNode> = survivors.iter().collect();
    agreed_leader(&refs).await;
    propose(&refs, "after=recovery").await;
    wait_until("both applied everything", || {
        survivors.iter().all(|n| n.kv.len() == 21)
    })
    .await;
    for n in &survivors {
        assert_eq!(n.kv.get("k19").as_deref(), Some("v19"));
        assert_eq!(
            n.node
                .voters()
                .into_iter()
                .map(|(id, _)| id)
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
    }
    for n in &survivors {
        n.node.shutdown().await;
    }
}
