//! `/v1/agent/*`: the local agent's view and controls.

use std::collections::BTreeMap;
use std::time::Instant;

use proconsul_types::{AgentMember, AgentService, HealthCheck, ServiceDefinition};

use crate::{encode, Client, QueryOptions, Result};

fn enable_query(enable: bool, reason: &str) -> Vec<(&'static str, String)> {
    let mut q = vec![("enable", enable.to_string())];
    if !reason.is_empty() {
        q.push(("reason", reason.to_string()));
    }
    q
}

impl Client {
    /// `/v1/agent/self` as untyped JSON (its shape is large and version-dependent).
    pub fn agent_self(&self) -> Result<serde_json::Value> {
        Ok(self
            .get_json::<serde_json::Value>("/v1/agent/self", &[], &QueryOptions::default())?
            .0)
    }

    /// Members of the LAN pool, or of the WAN pool with `wan` (servers only).
    pub fn agent_members(&self, wan: bool) -> Result<Vec<AgentMember>> {
        let q: Vec<(&str, String)> = if wan {
            vec![("wan", "1".to_string())]
        } else {
            Vec::new()
        };
        Ok(self
            .get_json::<Vec<AgentMember>>("/v1/agent/members", &q, &QueryOptions::default())?
            .0)
    }

    /// `/v1/agent/host`: the host's OS, CPU, memory and disk, as untyped JSON (gopsutil's
    /// shapes).
    pub fn agent_host(&self) -> Result<serde_json::Value> {
        Ok(self
            .get_json::<serde_json::Value>("/v1/agent/host", &[], &QueryOptions::default())?
            .0)
    }

    /// `/v1/agent/monitor?loglevel=`: the agent's log lines at `level` and above, each to
    /// `on_line` as it is logged, until `on_line` returns `false` or `until` passes.
    pub fn agent_monitor(
        &self,
        level: &str,
        until: Option<Instant>,
        on_line: impl FnMut(&str) -> bool,
    ) -> Result<()> {
        self.stream_lines_until(
            "/v1/agent/monitor",
            &[("loglevel", level.to_string())],
            until,
            on_line,
        )
    }

    /// `/v1/agent/metrics/stream`: each 10 s interval's metrics summary (one JSON object per
    /// line, as `/v1/agent/metrics` shows one) as the interval ends, until `on_summary`
    /// returns `false` or `until` passes.
    pub fn agent_metrics_stream(
        &self,
        until: Option<Instant>,
        on_summary: impl FnMut(&str) -> bool,
    ) -> Result<()> {
        self.stream_lines_until("/v1/agent/metrics/stream", &[], until, on_summary)
    }

    /// Ask the agent to leave the cluster gracefully and shut down.
    pub fn agent_leave(&self) -> Result<()> {
        self.put("/v1/agent/leave", &[], b"").map(drop)
    }

    /// Ask the agent to reload its configuration files.
    pub fn agent_reload(&self) -> Result<()> {
        self.put("/v1/agent/reload", &[], b"").map(drop)
    }

    /// Force a failed member into the left state (`prune`: forget it at once).
    pub fn agent_force_leave(&self, node: &str, prune: bool, wan: bool) -> Result<()> {
        let mut q: Vec<(&str, String)> = Vec::new();
        if prune {
            q.push(("prune", "1".into()));
        }
        if wan {
            q.push(("wan", "1".into()));
        }
        let path = format!("/v1/agent/force-leave/{}", encode::path(node));
        self.put(&path, &q, b"").map(drop)
    }

    /// Ask the agent to join the member at `addr` (LAN, or WAN with `wan`).
    pub fn agent_join(&self, addr: &str, wan: bool) -> Result<()> {
        let q: Vec<(&str, String)> = if wan {
            vec![("wan", "1".to_string())]
        } else {
            Vec::new()
        };
        let path = format!("/v1/agent/join/{}", encode::path(addr));
        self.put(&path, &q, b"").map(drop)
    }

    /// The agent's node name (`Config.NodeName` of `/v1/agent/self`); also how the CLI checks
    /// that an agent answers before starting long-running work.
    pub fn agent_node_name(&self) -> Result<String> {
        let v = self.agent_self()?;
        Ok(v["Config"]["NodeName"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Services registered with this agent, keyed by ID.
    pub fn agent_services(&self) -> Result<BTreeMap<String, AgentService>> {
        Ok(self
            .get_json("/v1/agent/services", &[], &QueryOptions::default())?
            .0)
    }

    /// Checks registered with this agent, keyed by check ID.
    pub fn agent_checks(&self) -> Result<BTreeMap<String, HealthCheck>> {
        Ok(self
            .get_json("/v1/agent/checks", &[], &QueryOptions::default())?
            .0)
    }

    /// Register (or replace) a service on this agent.
    pub fn agent_service_register(&self, def: &ServiceDefinition) -> Result<()> {
        let body = serde_json::to_vec(def)?;
        self.put("/v1/agent/service/register", &[], &body).map(drop)
    }

    /// Deregister the service with ID `id` from this agent.
    pub fn agent_service_deregister(&self, id: &str) -> Result<()> {
        let path = format!("/v1/agent/service/deregister/{}", encode::path(id));
        self.put(&path, &[], b"").map(drop)
    }

    /// Put the whole node in or out of maintenance mode.
    pub fn agent_node_maintenance(&self, enable: bool, reason: &str) -> Result<()> {
        self.put("/v1/agent/maintenance", &enable_query(enable, reason), b"")
            .map(drop)
    }

    /// Put one service instance in or out of maintenance mode.
    pub fn agent_service_maintenance(&self, id: &str, enable: bool, reason: &str) -> Result<()> {
        let path = format!("/v1/agent/service/maintenance/{}", encode::path(id));
        self.put(&path, &enable_query(enable, reason), b"")
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use crate::testserver::{serve_once, Canned};
    use crate::{Client, Config};

    fn client(addr: String) -> Client {
        Client::new(Config {
            address: addr,
            ..Config::default()
        })
        .unwrap()
    }

    #[test]
    fn members_decode() {
        let (addr, req) = serve_once(Canned::ok(
            r#"[{"Name":"n1","Addr":"10.0.0.1","Port":8301,"Tags":{"role":"consul"},"Status":1,
                "ProtocolMin":1,"ProtocolMax":5,"ProtocolCur":2,"DelegateMin":2,"DelegateMax":5,"DelegateCur":4}]"#,
        ));
        let m = client(addr).agent_members(true).unwrap();
        assert_eq!(m[0].name, "n1");
        assert_eq!(m[0].tags["role"], "consul");
        assert!(req
            .join()
            .unwrap()
            .starts_with("GET /v1/agent/members?wan=1 HTTP/1.1"));
    }

    /// A stream that never ends is given up at the deadline, without an error, after the
    /// lines that came.
    #[test]
    fn metrics_stream_stops_at_the_deadline() {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            s.write_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                  c\r\n{\"Gauges\":1}\r\n1\r\n\n\r\n",
            )
            .unwrap();
            // Hold the connection open past the client's deadline.
            std::thread::sleep(std::time::Duration::from_millis(1200));
            req
        });
        let start = std::time::Instant::now();
        let mut lines = Vec::new();
        client(addr)
            .agent_metrics_stream(Some(start + std::time::Duration::from_millis(500)), |l| {
                lines.push(l.to_string());
                true
            })
            .unwrap();
        assert!(start.elapsed() < std::time::Duration::from_millis(1500));
        assert_eq!(lines, vec![r#"{"Gauges":1}"#.to_string()]);
        assert!(server
            .join()
            .unwrap()
            .starts_with("GET /v1/agent/metrics/stream HTTP/1.1"));
    }

    #[test]
    fn join_is_a_put() {
        let (addr, req) = serve_once(Canned::ok(""));
        client(addr).agent_join("10.0.0.2:8301", false).unwrap();
        assert!(req
            .join()
            .unwrap()
            .starts_with("PUT /v1/agent/join/10.0.0.2:8301 HTTP/1.1"));
    }

    #[test]
    fn maintenance_query() {
        let (addr, req) = serve_once(Canned::ok(""));
        client(addr)
            .agent_service_maintenance("web 1", true, "patching now")
            .unwrap();
        assert!(req.join().unwrap().starts_with(
            "PUT /v1/agent/service/maintenance/web%201?enable=true&reason=patching+now HTTP/1.1"
        ));
        let (addr, req) = serve_once(Canned::ok(""));
        client(addr).agent_node_maintenance(false, "").unwrap();
        assert!(req
            .join()
            .unwrap()
            .starts_with("PUT /v1/agent/maintenance?enable=false HTTP/1.1"));
    }
}
