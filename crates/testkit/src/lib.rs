//! Test helpers: agents in-process on port 0 with temp dirs, the tests' one HTTP/1.1 client
//! ([`http`]), and `wait_until` (poll a condition with a deadline — never a bare sleep as the
//! assertion).

pub mod http;

use std::net::SocketAddr;
use std::time::Duration;

use proconsul_agent::Agent;
use proconsul_config::{AgentFlags, RuntimeConfig};

pub use http::{request, request_blocking, Response};

/// An agent started for a test; shut it down with [`TestAgent::stop`] (dropping it cancels it).
pub struct TestAgent {
    pub agent: Agent,
    pub http: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        self.agent.shutdown_token().cancel();
    }
}

/// Flags of `agent -dev` for tests.
pub fn dev_flags() -> AgentFlags {
    AgentFlags {
        dev: true,
        log_level: Some("warn".into()),
        ..Default::default()
    }
}

impl TestAgent {
    /// `agent -dev` on 127.0.0.1 with the HTTP API on a free port, waiting for leadership.
    pub async fn dev() -> TestAgent {
        Self::start_with(dev_flags(), |_| {}).await
    }

    /// Start with `flags`, then let `tweak` adjust the runtime config (ports, limits...).
    pub async fn start_with(
        flags: AgentFlags,
        tweak: impl FnOnce(&mut RuntimeConfig),
    ) -> TestAgent {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut flags = flags;
        if !flags.dev && flags.data_dir.is_none() {
            flags.data_dir = Some(dir.path().to_path_buf());
        }
        let mut cfg = proconsul_config::load(&flags).expect("config");
        cfg.http_addrs = vec!["127.0.0.1:0".parse().unwrap()];
        cfg.dns_addrs = Vec::new();
        cfg.serf_lan_port = 0;
        cfg.server_port = 0;
        cfg.serf_wan_port = Some(0);
        if cfg.data_dir.is_none() && !cfg.dev_mode {
            cfg.data_dir = Some(dir.path().to_path_buf());
        }
        tweak(&mut cfg);
        let agent = Agent::start(cfg, flags).await.expect("agent starts");
        let http = agent.http_addrs()[0];
        let t = TestAgent {
            agent,
            http,
            _dir: dir,
        };
        if let Some(s) = t.agent.server() {
            assert!(
                s.wait_for_leader(Duration::from_secs(10)).await,
                "no leader within 10s"
            );
        }
        t
    }

    pub async fn get(&self, path: &str) -> Response {
        request(self.http, "GET", path, &[]).await
    }
    /// `GET path` and its body as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.get(path).await.json()
    }
    pub async fn put(&self, path: &str, body: &[u8]) -> Response {
        request(self.http, "PUT", path, body).await
    }
    pub async fn delete(&self, path: &str) -> Response {
        request(self.http, "DELETE", path, &[]).await
    }

    /// Wait until the leader has registered this agent's node with its `serfHealth` check.
    pub async fn wait_registered(&self) {
        let path = format!("/v1/health/node/{}", self.agent.node_name());
        wait_until(
            Duration::from_secs(10),
            "node registered with serfHealth",
            || async {
                self.get(&path).await.json().as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["CheckID"] == proconsul_types::health::SERF_CHECK_ID)
                })
            },
        )
        .await;
    }

    /// Stop the agent and wait for all its tasks.
    pub async fn stop(self) {
        self.agent.shutdown().await;
    }

    /// Join server `other` (of datacenter `other_dc`) to this server's WAN pool, and wait
    /// until this agent answers `?dc=<other_dc>`.
    pub async fn federate_with(&self, other: &TestAgent, other_dc: &str) {
        let wan = other
            .agent
            .serf_wan_addr()
            .expect("servers have a WAN pool");
        let r = self.put(&format!("/v1/agent/join/{wan}?wan"), b"").await;
        assert_eq!(r.status, 200, "WAN join: {}", r.text());
        let path = format!("/v1/catalog/nodes?dc={other_dc}");
        wait_until(
            Duration::from_secs(10),
            &format!("{other_dc} reachable"),
            || async { self.get(&path).await.status == 200 },
        )
        .await;
    }
}

/// Poll `cond` every 20 ms until it holds or `within` passes; panics with `what` on timeout.
pub async fn wait_until<F, Fut>(within: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if cond().await {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {within:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
