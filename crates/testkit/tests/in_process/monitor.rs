//! `/v1/agent/monitor` streams the agent's log lines. The test installs the process-wide log
//! subscriber (at debug level), so it runs in a process of its own (`support::in_own_process`).

use std::time::Duration;

use proconsul_testkit::TestAgent;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::in_own_process;

#[test]
fn monitor_streams_log_lines_at_the_asked_level() {
    if !in_own_process(
        module_path!(),
        "monitor_streams_log_lines_at_the_asked_level",
        &[],
        &[],
    ) {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}

async fn run() {
    let tap = proconsul_agent::logging::init("debug", false, None).expect("no log file to open");
    let a = TestAgent::dev().await;
    a.agent.attach_log_tap(tap);

    assert_eq!(a.get("/v1/agent/monitor?loglevel=chatty").await.status, 400);

    let mut s = tokio::net::TcpStream::connect(a.http).await.unwrap();
    s.write_all(b"GET /v1/agent/monitor?loglevel=info HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // something that logs at INFO, and something at DEBUG that must be filtered out
    assert_eq!(a.put("/v1/agent/reload", b"").await.status, 200);
    let mut seen = String::new();
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "stream closed: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            if seen.contains("configuration reloaded") {
                return;
            }
        }
    })
    .await;
    assert!(got.is_ok(), "no reload line in: {seen}");
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(
        seen.contains("[INFO]  agent: configuration reloaded"),
        "{seen}"
    );
    assert!(
        !seen.contains("[DEBUG]"),
        "debug lines leaked at loglevel=info: {seen}"
    );
    a.stop().await;
}
