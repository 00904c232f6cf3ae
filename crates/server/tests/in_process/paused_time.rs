//! Time-driven server logic on paused tokio time: a one-server in-memory Raft cluster in the
//! test process, whose clock (`at_ms`, lock-delay deadlines, session TTL timers) moves only
//! when the test's time does — so a 15 s lock-delay and a 20 s TTL take milliseconds.

use std::time::Duration;

use proconsul_server::Server;
use proconsul_types::{
    KvWriteVerb, Query, Read, SessionCreate, SessionList, Write, WriteRequest, WriteResponse,
};

use crate::solo::start;

async fn write(s: &Server, req: WriteRequest) -> WriteResponse {
    s.call_typed(
        Write {
            req,
            datacenter: String::new(),
        },
        "",
    )
    .await
    .unwrap()
    .1
}

async fn session(s: &Server, ttl: &str, lock_delay: Duration) -> String {
    let req = WriteRequest::SessionCreate(SessionCreate {
        ttl: ttl.into(),
        lock_delay_ns: Some(lock_delay.as_nanos() as u64),
        ..Default::default()
    });
    match write(s, req).await {
        WriteResponse::SessionId(id) => id,
        other => panic!("{other:?}"),
    }
}

async fn acquire(s: &Server, key: &str, session: &str) -> bool {
    let req = WriteRequest::Kv {
        verb: KvWriteVerb::Lock,
        key: key.into(),
        value: Some(b"held".to_vec()),
        flags: 0,
        index: 0,
        session: Some(session.into()),
    };
    match write(s, req).await {
        WriteResponse::Bool(b) => b,
        other => panic!("{other:?}"),
    }
}

async fn sessions(s: &Server) -> usize {
    let (_, resp) = s
        .call_typed(
            Read {
                req: SessionList {}.into(),
                opts: Default::default(),
            },
            "",
        )
        .await
        .unwrap();
    SessionList::from_response(resp).unwrap().len()
}

#[tokio::test(start_paused = true)]
async fn a_released_lock_waits_out_the_lock_delay() {
    let s = start().await;
    let holder = session(&s, "", Duration::from_secs(15)).await;
    assert!(acquire(&s, "app/lock", &holder).await);
    write(&s, WriteRequest::SessionDestroy { id: holder }).await;

    let waiter = session(&s, "", Duration::from_secs(15)).await;
    let start = tokio::time::Instant::now();
    assert!(
        !acquire(&s, "app/lock", &waiter).await,
        "inside the lock-delay"
    );
    tokio::time::sleep(Duration::from_secs(14)).await;
    assert!(
        !acquire(&s, "app/lock", &waiter).await,
        "14 s: still inside"
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(
        acquire(&s, "app/lock", &waiter).await,
        "after 15 s the lock is free"
    );
    assert!(start.elapsed() >= Duration::from_secs(15));
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_ttl_session_is_invalidated_after_twice_its_ttl_unless_renewed() {
    let s = start().await;
    let kept = session(&s, "10s", Duration::ZERO).await;
    let _lapsing = session(&s, "10s", Duration::ZERO).await;
    assert_eq!(sessions(&s).await, 2);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(15)).await;
        match write(&s, WriteRequest::SessionRenew { id: kept.clone() }).await {
            WriteResponse::Session(Some(_)) => {}
            other => panic!("renewal: {other:?}"),
        }
    }
    // 45 s in: the renewed session lives, the other expired at 20 s (Consul's 2 × TTL).
    assert_eq!(sessions(&s).await, 1);
    s.shutdown().await;
}
