//! `-dev`'s in-memory Raft log is compacted: snapshots every `DEV_SNAPSHOT_THRESHOLD` entries
//! and drops what is behind them, so memory does not grow with every write ever made.

use std::time::{Duration, Instant};

use proconsul_server::{DEV_SNAPSHOT_THRESHOLD, DEV_TRAILING_LOGS};
use proconsul_types::{KvWriteVerb, Write, WriteRequest};

/// `-dev` with a durable server's snapshot settings (`solo::start`): it must not keep that
/// many entries in memory.
#[tokio::test]
async fn the_dev_log_is_snapshotted_and_purged() {
    let s = crate::solo::start().await;
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
