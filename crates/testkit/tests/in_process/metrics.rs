//! `/v1/agent/metrics`: go-metrics' in-memory summary, and Prometheus text when
//! `telemetry.prometheus_retention_time` is set. The registry is process-wide (the metrics
//! facade's), so what one test reads may include other agents' figures: tests look for theirs.

use proconsul_testkit::TestAgent;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_in_go_metrics_shape_and_prometheus_text() {
    let a = TestAgent::start_with(proconsul_testkit::dev_flags(), |cfg| {
        cfg.telemetry_prometheus_retention = std::time::Duration::from_secs(60);
    })
    .await;
    a.wait_registered().await;
    // The summary shows the last complete 10 s interval (the current one until one has
    // closed, and the registry is the process's, shared with other tests): write and read
    // until the interval shown holds them.
    let shows = |v: &serde_json::Value, kind: &str, name: &str| {
        v[kind]
            .as_array()
            .is_some_and(|l| l.iter().any(|m| m["Name"] == name))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(25);
    let v = loop {
        assert_eq!(a.put("/v1/kv/m", b"1").await.status, 200);
        a.get("/v1/kv/m").await;
        let v = a.get_json("/v1/agent/metrics").await;
        if shows(&v, "Samples", "consul.kvs.apply") && shows(&v, "Counters", "consul.raft.apply") {
            break v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no KV write shown: {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    for k in ["Timestamp", "Gauges", "Points", "Counters", "Samples"] {
        assert!(v.get(k).is_some(), "{k} in {v}");
    }
    let names = |k: &str| -> Vec<String> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        names("Samples").contains(&"consul.kvs.apply".to_string()),
        "{v}"
    );
    assert!(
        names("Samples").contains(&"consul.api.http".to_string()),
        "{v}"
    );
    assert!(
        names("Counters").contains(&"consul.raft.apply".to_string()),
        "{v}"
    );
    assert!(
        names("Gauges").contains(&"consul.server.isLeader".to_string()),
        "{v}"
    );
    let http = v["Samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Name"] == "consul.api.http" && m["Labels"]["path"] == "v1_kv_")
        .unwrap_or_else(|| panic!("{v}"));
    // The PUT and the GET may fall in different 10 s intervals.
    assert!(http["Count"].as_u64().unwrap() >= 1);
    for k in ["Rate", "Sum", "Min", "Max", "Mean", "Stddev"] {
        assert!(http[k].is_number(), "{k}");
    }

    let r = a.get("/v1/agent/metrics?format=prometheus").await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("Content-Type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = r.text();
    assert!(text.contains("# TYPE consul_kvs_apply summary\n"), "{text}");
    assert!(text.contains("\nconsul_server_isLeader "), "{text}");
    // The whole exposition parses: comments, or `name{labels} value`.
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        let name = series.split('{').next().unwrap();
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "{line}"
            );
        }
    }
    a.stop().await;
}

/// Raft, gossip and autopilot figures under Consul's names: the state machine's apply timer,
/// the election that made this server leader, the memberlist health score, the leader's
/// autopilot gauges (recorded once it has led a second). What happens once
/// at start is read from the Prometheus text, which is cumulative (the summary shows one 10 s
/// interval, which may be a later one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_and_autopilot_metrics() {
    let a = TestAgent::start_with(proconsul_testkit::dev_flags(), |cfg| {
        cfg.telemetry_prometheus_retention = std::time::Duration::from_secs(60);
    })
    .await;
    a.wait_registered().await;
    assert_eq!(a.put("/v1/kv/raft-metrics", b"1").await.status, 200);
    let gauge = |v: &serde_json::Value, name: &str| -> Option<f64> {
        v["Gauges"]
            .as_array()?
            .iter()
            .find(|g| g["Name"] == name)
            .and_then(|g| g["Value"].as_f64())
    };
    proconsul_testkit::wait_until(
        std::time::Duration::from_secs(15),
        "autopilot gauges",
        || async {
            let v = a.get_json("/v1/agent/metrics").await;
            gauge(&v, "consul.autopilot.healthy") == Some(1.0)
                && gauge(&v, "consul.autopilot.failure_tolerance").is_some()
                && gauge(&v, "consul.memberlist.health.score").is_some()
        },
    )
    .await;
    let series = [
        "consul_raft_fsm_apply_count ",
        "consul_raft_state_candidate ",
        "consul_memberlist_health_score{network=\"lan\"} ",
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = a.get("/v1/agent/metrics?format=prometheus").await.text();
        let missing: Vec<&&str> = series.iter().filter(|s| !text.contains(**s)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{missing:?} in {text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_format_needs_a_retention_time() {
    let a = TestAgent::dev().await;
    let r = a.get("/v1/agent/metrics?format=prometheus").await;
    assert_eq!((r.status, r.body.len()), (200, 0));
    assert_eq!(
        r.header("X-Consul-Reason"),
        Some("Prometheus is not enabled since its retention time is not positive")
    );
    a.stop().await;
}

/// `/v1/agent/metrics/stream` sends each interval's summary as it ends, one JSON object per
/// line, in `/v1/agent/metrics`' shape. Intervals are go-metrics' 10 s, so the test reads the
/// first one (at most 10 s away) and checks what was recorded in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_stream_sends_each_interval_as_it_ends() {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let a = TestAgent::dev().await;
    a.wait_registered().await;
    // Start well inside an interval, so the write below lands in the one the stream sends.
    let into = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 10_000
    };
    if into() > 8_000 {
        tokio::time::sleep(Duration::from_millis(10_100 - into() as u64)).await;
    }
    let mut s = tokio::net::TcpStream::connect(a.http).await.unwrap();
    s.write_all(b"GET /v1/agent/metrics/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(a.put("/v1/kv/streamed", b"1").await.status, 200);
    let mut seen = String::new();
    let got = tokio::time::timeout(Duration::from_secs(15), async {
        let mut buf = [0u8; 16384];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "stream closed: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            // A whole object has arrived once a line starting with `{` is complete.
            if let Some(body) = seen.split("\r\n\r\n").nth(1) {
                if body.lines().any(|l| l.starts_with('{') && l.ends_with('}')) {
                    return;
                }
            }
        }
    })
    .await;
    assert!(got.is_ok(), "no summary within 15 s: {seen}");
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(
        seen.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{seen}"
    );
    let body = seen.split("\r\n\r\n").nth(1).unwrap();
    let line = body
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("{body}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    for k in ["Timestamp", "Gauges", "Points", "Counters", "Samples"] {
        assert!(v.get(k).is_some(), "{k} in {v}");
    }
    // The interval's start: a multiple of 10 s.
    let ts = v["Timestamp"].as_str().unwrap();
    assert!(ts.ends_with("0 +0000 UTC"), "{ts}");
    let kv_apply = v["Samples"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["Name"] == "consul.kvs.apply");
    assert!(kv_apply, "the write's apply timer in {v}");
    drop(s);
    // The agent is unaffected by the reader going away.
    assert_eq!(a.get("/v1/agent/self").await.status, 200);
    a.stop().await;
}

/// `telemetry.statsd_address` / `dogstatsd_addr`: every second the agent sends what changed
/// over UDP, in statsd lines (label values as name parts) and DogStatsD lines (labels and
/// `dogstatsd_tags` as tags).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statsd_and_dogstatsd_sinks_receive_metrics() {
    let statsd = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let dog = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (s_addr, d_addr) = (statsd.local_addr().unwrap(), dog.local_addr().unwrap());
    let a = TestAgent::start_with(proconsul_testkit::dev_flags(), move |cfg| {
        cfg.telemetry_statsd = Some(s_addr);
        cfg.telemetry_dogstatsd = Some(d_addr);
        cfg.telemetry_dogstatsd_tags = vec!["env:test".into()];
    })
    .await;
    a.wait_registered().await;
    // Other tests in this process are timed too (the recorder is process-wide): wait for the
    // line that starts with `want` and holds `also`, whatever comes before it.
    let read_until = |sock: tokio::net::UdpSocket, want: &'static str, also: &'static str| async move {
        let mut seen = String::new();
        let mut buf = vec![0u8; 65536];
        let got = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                let n = sock.recv(&mut buf).await.unwrap();
                assert!(n <= proconsul_telemetry::statsd::MAX_PACKET);
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                seen.push('\n');
                if seen
                    .lines()
                    .any(|l| l.starts_with(want) && l.contains(also))
                {
                    return;
                }
            }
        })
        .await;
        assert!(got.is_ok(), "no line starting {want:?} in {seen}");
        seen
    };
    // Requests made now are timed by consul.api.http, labelled by method and path.
    for _ in 0..3 {
        a.get("/v1/status/leader").await;
    }
    let lines = read_until(statsd, "consul.api.http.GET.v1_status_leader:", "").await;
    let l = lines
        .lines()
        .find(|l| l.starts_with("consul.api.http.GET.v1_status_leader:"))
        .unwrap();
    assert!(l.contains("|ms"), "{l}");
    let lines = read_until(
        dog,
        "consul.api.http:",
        "|#env:test,method:GET,path:v1_status_leader",
    )
    .await;
    assert!(
        lines.lines().any(|l| l.starts_with("consul.api.http:")
            && l.contains("|ms")
            && l.contains("|#env:test,method:GET,path:v1_status_leader")),
        "{lines}"
    );
    a.stop().await;
}

/// `telemetry.statsite_address`: the same lines as statsd, newline-terminated, over one TCP
/// connection; with `enable_host_metrics` they include the host's gauges. The agent's gossip
/// rounds are timed (`consul.memberlist.gossip`, labelled by pool).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statsite_sink_receives_host_and_gossip_metrics_over_tcp() {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let a = TestAgent::start_with(proconsul_testkit::dev_flags(), move |cfg| {
        cfg.telemetry_statsite = Some(addr);
        cfg.telemetry_host_metrics = true;
    })
    .await;
    let (mut conn, _) = tokio::time::timeout(std::time::Duration::from_secs(10), listener.accept())
        .await
        .expect("the agent connects within a flush or two")
        .unwrap();
    let mut seen = String::new();
    let mut buf = vec![0u8; 65536];
    let wanted = [
        "consul.host.memory.total:",
        "consul.host.memory.used_percent:",
        "consul.host.uptime:",
        "consul.memberlist.gossip.lan:",
    ];
    let got = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        loop {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "the agent closed the connection");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            if wanted
                .iter()
                .all(|w| seen.lines().any(|l| l.starts_with(w)))
            {
                return;
            }
        }
    })
    .await;
    assert!(got.is_ok(), "not all of {wanted:?} in {seen}");
    let total = seen
        .lines()
        .find(|l| l.starts_with("consul.host.memory.total:"))
        .unwrap();
    assert!(total.ends_with("|g"), "{total}");
    let bytes: f64 = total
        .trim_start_matches("consul.host.memory.total:")
        .trim_end_matches("|g")
        .parse()
        .unwrap();
    assert!(bytes > 1e8, "{total}");
    let gossip = seen
        .lines()
        .find(|l| l.starts_with("consul.memberlist.gossip.lan:"))
        .unwrap();
    assert!(gossip.contains("|ms"), "{gossip}");
    a.stop().await;
}

/// The metrics issue #18 names, as Prometheus series of a server with a client agent joined
/// and used: gossip (a member joined, rounds and probes timed), RPC on both sides (the
/// client's `consul.client.rpc`, the server's `consul.rpc.request`), Raft, the state store and
/// the runtime. The text is cumulative, so what happened once is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_named_metrics_are_exported_by_a_server_serving_a_client() {
    use proconsul_config::AgentFlags;
    use std::time::Duration;
    let s = TestAgent::start_with(
        AgentFlags {
            node_name: Some("m-s1".into()),
            ..proconsul_testkit::dev_flags()
        },
        |cfg| cfg.telemetry_prometheus_retention = Duration::from_secs(60),
    )
    .await;
    let c = TestAgent::start_with(
        AgentFlags {
            node_name: Some("m-c1".into()),
            bind_addr: Some("127.0.0.1".into()),
            log_level: Some("warn".into()),
            ..Default::default()
        },
        |_| {},
    )
    .await;
    let r = c
        .put(&format!("/v1/agent/join/{}", s.agent.serf_lan_addr()), b"")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The client reaches the server over RPC once it knows it from gossip.
    proconsul_testkit::wait_until(
        Duration::from_secs(10),
        "a write through the client",
        || async { c.put("/v1/kv/metrics/through-client", b"1").await.status == 200 },
    )
    .await;
    assert_eq!(c.get("/v1/kv/metrics/through-client").await.status, 200);
    assert_eq!(s.put("/v1/session/create", b"{}").await.status, 200);

    let named = [
        "consul_raft_apply",
        "consul_raft_commitTime",
        "consul_raft_leader_lastContact",
        "consul_raft_state_leader",
        "consul_raft_state_candidate",
        "consul_raft_fsm_apply",
        "consul_kvs_apply",
        "consul_session_apply",
        "consul_rpc_request",
        "consul_client_rpc",
        "consul_api_http",
        "consul_serf_member_join",
        "consul_memberlist_gossip",
        "consul_memberlist_probeNode",
        "consul_memberlist_health_score",
        "consul_autopilot_healthy",
        "consul_autopilot_failure_tolerance",
        "consul_leader_reconcile",
        "consul_session_ttl_active",
        "consul_state_nodes",
        "consul_state_services",
        "consul_state_service_instances",
        "consul_state_kv_entries",
        "consul_server_isLeader",
        "consul_version",
        "consul_runtime_alloc_bytes",
    ];
    // Gossip probes, autopilot and the 10 s gauges come on their own schedule: poll.
    let mut missing: Vec<&str> = named.to_vec();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !missing.is_empty() {
        let text = s.get("/v1/agent/metrics?format=prometheus").await.text();
        missing.retain(|n| {
            !text.lines().any(|l| {
                !l.starts_with('#')
                    && (l.starts_with(&format!("{n} "))
                        || l.starts_with(&format!("{n}{{"))
                        || l.starts_with(&format!("{n}_count")))
            })
        });
        assert!(
            std::time::Instant::now() < deadline,
            "not exported: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    c.stop().await;
    s.stop().await;
}
