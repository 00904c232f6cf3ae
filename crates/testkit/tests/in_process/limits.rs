//! Overload limits: a server's `limits.request_limits` (reads refused with 429 where they
//! arrive, writes with 503 on the leader, Consul's texts; `permissive` serves and counts) and
//! a client agent's `limits.rpc_rate`/`rpc_max_burst` (429 `RPC rate limit exceeded`). A
//! refused request changes nothing. A server's RPC port bounds connections per client IP
//! (`rpc_max_conns_per_client`) and the time to the first byte (`rpc_handshake_timeout`). A
//! reload applies new limits, as Consul's does.

use proconsul_config::AgentFlags;
use proconsul_testkit::{dev_flags, wait_until, TestAgent};
use proconsul_types::{RequestLimitMode, RequestLimits};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforcing_request_limits_refuse_with_consuls_statuses() {
    let a = TestAgent::start_with(dev_flags(), |c| {
        c.request_limits = RequestLimits {
            mode: RequestLimitMode::Enforcing,
            read_rate: 2.0,
            write_rate: 1.0,
        };
    })
    .await;
    // Far more reads than 2 a second: some are refused, with Consul's text.
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let r = a.get("/v1/catalog/nodes").await;
        if r.status == 429 {
            assert_eq!(
                r.text(),
                "rate limit exceeded, try again later or against a different server"
            );
        }
        statuses.push(r.status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );

    // Writes: refused on the leader with 503; a refused write is not applied.
    let mut last_written = None;
    let mut refused = 0;
    for i in 0..10 {
        let r = a.put("/v1/kv/limited", format!("v{i}").as_bytes()).await;
        match r.status {
            200 => last_written = Some(format!("v{i}")),
            503 => {
                assert_eq!(
                    r.text(),
                    "rate limit exceeded for operation that can only be performed by the leader, try again later"
                );
                refused += 1;
            }
            other => panic!("write answered {other}: {}", r.text()),
        }
    }
    assert!(refused > 0);
    let last_written = last_written.expect("the first write fits the burst");
    // Reads refill at 2/s: wait for one to pass, then the value is the last acknowledged.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let value = loop {
        let r = a.get("/v1/kv/limited?raw").await;
        if r.status == 200 {
            break r.text();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no read within the limit"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(value, last_written);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissive_request_limits_serve_and_count() {
    let a = TestAgent::start_with(dev_flags(), |c| {
        c.telemetry_prometheus_retention = Duration::from_secs(60);
        c.request_limits = RequestLimits {
            mode: RequestLimitMode::Permissive,
            read_rate: 0.0,
            write_rate: 0.0,
        };
    })
    .await;
    for _ in 0..5 {
        assert_eq!(a.get("/v1/catalog/nodes").await.status, 200);
        assert_eq!(a.put("/v1/kv/p", b"1").await.status, 200);
    }
    let text = a.get("/v1/agent/metrics?format=prometheus").await.text();
    assert!(
        text.lines()
            .any(|l| l.starts_with("consul_rpc_rate_limit_exceeded{")
                && l.contains("limit_type=\"global/read\"")
                && l.contains("mode=\"permissive\"")),
        "{text}"
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_agents_rpc_rate_refuses_with_429() {
    let s = TestAgent::start_with(
        AgentFlags {
            node_name: Some("l-s1".into()),
            ..dev_flags()
        },
        |_| {},
    )
    .await;
    let c = TestAgent::start_with(
        AgentFlags {
            node_name: Some("l-c1".into()),
            bind_addr: Some("127.0.0.1".into()),
            log_level: Some("warn".into()),
            ..Default::default()
        },
        |cfg| {
            cfg.rpc_rate = 1.0;
            cfg.rpc_max_burst = 3;
        },
    )
    .await;
    let r = c
        .put(&format!("/v1/agent/join/{}", s.agent.serf_lan_addr()), b"")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_until(
        Duration::from_secs(10),
        "the client reaches a server",
        || async { c.get("/v1/catalog/nodes").await.status == 200 },
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let r = c.get("/v1/catalog/nodes").await;
        if r.status == 429 {
            assert_eq!(r.text(), "RPC rate limit exceeded");
        }
        statuses.push(r.status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    // The server's own clients are not limited by it.
    for _ in 0..10 {
        assert_eq!(s.get("/v1/catalog/nodes").await.status, 200);
    }
    c.stop().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rpc_port_bounds_connections_per_client_and_the_handshake_time() {
    use tokio::io::AsyncReadExt;
    let a = TestAgent::start_with(dev_flags(), |c| {
        c.rpc_max_conns_per_client = 2;
        c.rpc_handshake_timeout = Some(Duration::from_millis(300));
    })
    .await;
    let addr = a.agent.server().unwrap().rpc_addr();
    let closed_within = |mut s: tokio::net::TcpStream, t: Duration| async move {
        let mut buf = [0u8; 1];
        matches!(
            tokio::time::timeout(t, s.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    };
    // Two silent connections are held (until the handshake timeout); a third is closed at once.
    let one = tokio::net::TcpStream::connect(addr).await.unwrap();
    let two = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let three = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_within(three, Duration::from_millis(150)).await,
        "a third connection from one IP is closed before the handshake timeout"
    );
    // The two silent ones are closed by the handshake timeout.
    assert!(closed_within(one, Duration::from_secs(3)).await);
    assert!(closed_within(two, Duration::from_secs(3)).await);
    // Their slots are free again: the agent's own RPC clients still get through.
    let pool = proconsul_server::remote::SharedPool::new("dc1");
    wait_until(
        Duration::from_secs(5),
        "a status call is served",
        || async { pool.status(&addr.to_string()).await.is_ok() },
    )
    .await;
    a.stop().await;
}

/// A reload applies new `limits` as Consul's does: connections per client on HTTP and RPC
/// (those open stay; new ones count against the new limit) and a server's request limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_applies_new_limits() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let conf = tempfile::tempdir().unwrap();
    let write_limits = |http: u32, rpc: u32, read_rate: &str| {
        std::fs::write(
            conf.path().join("limits.hcl"),
            format!(
                "limits {{\n  http_max_conns_per_client = {http}\n  rpc_max_conns_per_client = {rpc}\n  \
                 request_limits {{\n    mode = \"enforcing\"\n    read_rate = {read_rate}\n  }}\n}}\n"
            ),
        )
        .unwrap();
    };
    write_limits(3, 2, "1000000");
    let mut flags = dev_flags();
    flags.config_dirs.push(conf.path().to_path_buf());
    let a = TestAgent::start_with(flags, |_| {}).await;
    let rpc = a.agent.server().unwrap().rpc_addr();
    let connect_from = |source: &'static str, to: std::net::SocketAddr| async move {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("{source}:0").parse().unwrap()).unwrap();
        sock.connect(to).await.unwrap()
    };
    // Answered (`true`), or closed without an answer (`false`).
    let answered = |mut s: tokio::net::TcpStream| async move {
        let _ = s
            .write_all(b"GET /v1/agent/self HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        let mut buf = [0u8; 12];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("answered or closed at once")
            .unwrap_or(0);
        n > 0 && buf.starts_with(b"HTTP/1.1 200")
    };
    let closed_at_once = |mut s: tokio::net::TcpStream| async move {
        let mut buf = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    };

    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.0.2", a.http).await);
    }
    let mut held_rpc = vec![
        connect_from("127.0.0.2", rpc).await,
        connect_from("127.0.0.2", rpc).await,
    ];
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!answered(connect_from("127.0.0.2", a.http).await).await);
    assert!(closed_at_once(connect_from("127.0.0.2", rpc).await).await);
    for _ in 0..20 {
        assert_eq!(a.get("/v1/catalog/nodes").await.status, 200);
    }

    write_limits(5, 3, "1");
    assert_eq!(a.put("/v1/agent/reload", b"").await.status, 200);
    // One more HTTP connection is admitted beside the three still open, and one more RPC one.
    assert!(answered(connect_from("127.0.0.2", a.http).await).await);
    held_rpc.push(connect_from("127.0.0.2", rpc).await);
    assert!(!closed_at_once(held_rpc.pop().unwrap()).await);
    // Reads are now limited to one a second.
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(a.get("/v1/catalog/nodes").await.status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    drop((held, held_rpc));
    a.stop().await;
}
