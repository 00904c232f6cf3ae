//! The server RPC port and other datacenters: a caller's connection opens with a handshake
//! naming its datacenter. A server of `dc1` serves a caller from `dc2` only what WAN
//! federation needs — requests that name `dc1` — and refuses it Raft, calls forwarded inside
//! its own datacenter and anything not for `dc1`, with an error that says so. Callers of its
//! own datacenter are served, and a malformed Raft body is an error, not a crash.

use std::time::Duration;

use proconsul_raft::{RaftTransport, RpcKind};
use proconsul_server::remote::SharedPool;
use proconsul_testkit::TestAgent;
use proconsul_types::{KvWriteVerb, Write, WriteRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_datacenters_callers_are_refused() {
    let a = TestAgent::dev().await;
    let server = a.agent.server().expect("a server");
    let addr = server.rpc_addr().to_string();
    let refused = "refusing RPC from another datacenter: this server is in datacenter \"dc1\" and serves other datacenters only requests for \"dc1\"";

    // Its own datacenter: served.
    let ours = SharedPool::new("dc1");
    let status = ours.status(&addr).await.expect("status from dc1");
    assert_eq!(status.leader, addr);

    // A server of dc2 (a pool with dc2's handshake, as its agent builds one).
    let theirs = SharedPool::new("dc2");
    let e = theirs.status(&addr).await.unwrap_err();
    assert_eq!(e.to_string(), refused);
    assert!(!e.is_retryable(), "{e:?}");
    // Raft: a vote request never reaches Raft.
    let e = RaftTransport::call(&theirs, 1, &addr, RpcKind::Vote, vec![0x80])
        .await
        .unwrap_err();
    assert!(e.to_string().contains(refused), "{e}");
    // A forwarded write.
    let put = WriteRequest::Kv {
        verb: KvWriteVerb::Set,
        key: "from-dc2".into(),
        value: Some(b"x".to_vec()),
        flags: 0,
        index: 0,
        session: None,
    };
    let e = theirs
        .call_typed(
            &addr,
            Write {
                req: put.clone(),
                datacenter: "dc2".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), refused);
    let r = a.get("/v1/kv/from-dc2").await;
    assert_eq!(r.status, 404, "nothing was written");
    // Marked as forwarded by a server of dc1: refused too, even naming dc1.
    let e = theirs
        .request(
            &addr,
            proconsul_types::ServerCall::into_request(Write {
                req: put.clone(),
                datacenter: "dc1".into(),
            }),
            "",
            true,
        )
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), refused);
    // A `?dc=dc1` request from dc2 (what its servers forward over the WAN): served.
    let (index, _) = theirs
        .call_typed(
            &addr,
            Write {
                req: put.clone(),
                datacenter: "dc1".into(),
            },
        )
        .await
        .expect("transport")
        .expect("a request for dc1 is served");
    assert!(index > 0);
    let r = a.get("/v1/kv/from-dc2").await;
    assert_eq!(r.status, 200, "written through federation");

    // Malformed Raft bodies from a legitimate caller are errors, and the server lives on.
    let e = RaftTransport::call(&ours, 1, &addr, RpcKind::AppendEntries, vec![0xc1, 0xff])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("bad AppendEntries request"), "{e}");
    let (index, _) = ours
        .call_typed(
            &addr,
            Write {
                req: put,
                datacenter: "dc1".into(),
            },
        )
        .await
        .expect("transport")
        .expect("write");
    assert!(index > 0);
    tokio::time::timeout(Duration::from_secs(5), a.stop())
        .await
        .unwrap();
}
