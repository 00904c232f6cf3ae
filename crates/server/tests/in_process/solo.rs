//! One `-dev`-like server alone in an in-memory Raft cluster and gossip pool, started and
//! led, for the tests of this tier.

use std::sync::Arc;
use std::time::Duration;

use proconsul_raft::MemRouter;
use proconsul_server::remote::SharedPool;
use proconsul_server::{LanMember, MemberSource, MemberStatus, Server, ServerOptions};
use proconsul_types::StatusLeader;

const NODE: &str = "solo";
const NODE_ID: &str = "0f0e0d0c-0b0a-0908-0706-050403020100";
const ADDR: &str = "127.0.0.1:8300";

/// This server alone in its gossip pool.
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

/// Start it (with no Raft directory, as `-dev`) and wait until it leads. The snapshot settings
/// are a durable server's defaults: what `-dev` does with them is its own.
pub async fn start() -> Server {
    let router = MemRouter::new();
    let server = Server::start(ServerOptions {
        node_name: NODE.into(),
        node_id: NODE_ID.into(),
        datacenter: "dc1".into(),
        rpc_addr: ADDR.parse().unwrap(),
        raft_dir: None,
        bootstrap: true,
        bootstrap_expect: 0,
        raft_multiplier: 1,
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
    // Established leadership is reported only after the node is reconciled.
    while server
        .call_typed(StatusLeader::default(), "")
        .await
        .unwrap()
        .is_empty()
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server
}
