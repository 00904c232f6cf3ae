//! `-dev`'s in-memory Raft log is compacted: snapshots every `DEV_SNAPSHOT_THRESHOLD` entries
//! and drops what is behind them, so memory does not grow with every write ever made.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proconsul_raft::MemRouter;
use proconsul_server::remote::SharedPool;
use proconsul_server::{
    LanMember, MemberSource, MemberStatus, Server, ServerOptions, DEV_SNAPSHOT_THRESHOLD,
    DEV_TRAILING_LOGS,
};
use proconsul_types::{KvWriteVerb, StatusLeader, Write, WriteRequest};

const NODE: &str = "dev";
const NODE_ID: &str = "1f0e0d0c-0b0a-0908-0706-050403020100";
const ADDR: &str = "127.0.0.1:8300";

struct Alone;

impl MemberSource for Alone {
    fn members(&self) -> Vec<LanMember> {
        vec![LanMember {
            name: NODE.into(),
            id: NODE_ID.into(),
            addr: "127.0.0.1".into(),
            status: MemberStatus::Alive,
            meta: Default::default(),
            server_port: Some(8300),
            expect: None,
        }]
    }
}

#[tokio::test]
async fn the_dev_log_is_snapshotted_and_purged() {
    let router = MemRouter::new();
    let s = Server::start(ServerOptions {
        node_name: NODE.into(),
        node_id: NODE_ID.into(),
        datacenter: "dc1".into(),
        rpc_addr: ADDR.parse().unwrap(),
        raft_dir: None,
        bootstrap: true,
        bootstrap_expect: 0,
        raft_multiplier: 1,
        // A durable server's values; `-dev` must not keep this many entries in memory.
        raft_snapshot_threshold: 16_384,
        raft_trailing_logs: 10_240,
        session_ttl_min: Duration::from_secs(10),
        tombstone_ttl: Duration::from_secs(900),
        members: Arc::new(Alone),
        transport: router.transport(ADDR),
        pool: SharedPool::new("dc1"),
        coordinate: Default::default(),
        acl: Default::default(),
        request_limits: Default::default(),
        wan: None,
        events: None,
    })
    .await
    .unwrap();
    while s
        .call_typed(StatusLeader::default(), "")
        .await
        .unwrap()
        .is_empty()
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let writes = 2 * DEV_SNAPSHOT_THRESHOLD + 100;
    for i in 0..writes {
        let req = WriteRequest::Kv {
            verb: KvWriteVerb::Set,
            key: format!("k/{i}"),
            value: Some(b"v".to_vec()),
            flags: 0,
            index: 0,
            session: None,
        };
        let w = Write {
            req,
            datacenter: String::new(),
        };
        s.call_typed(w, "").await.unwrap();
    }

    // Snapshots are built off the apply path: wait for the second one and its purge.
    let deadline = Instant::now() + Duration::from_secs(20);
    let m = loop {
        let m = s.raft_metrics();
        if m.last_snapshot_index > DEV_SNAPSHOT_THRESHOLD && m.last_purged_index > 0 {
            break m;
        }
        assert!(Instant::now() < deadline, "no compaction: {m:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let kept = m.last_log_index - m.last_purged_index;
    assert!(
        kept <= DEV_SNAPSHOT_THRESHOLD + DEV_TRAILING_LOGS + 100,
        "{kept} entries kept in memory: {m:?}"
    );
    s.shutdown().await;
}
