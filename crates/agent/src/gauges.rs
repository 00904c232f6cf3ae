//! The gauges the agent sets every interval (Consul's `consul.runtime.*`, `consul.state.*`,
//! `consul.server.isLeader`, `consul.version`), from what the process and the local server
//! already know; counters and timers are recorded where things happen.

use std::time::Duration;

use crate::Agent;

/// How often the gauges are refreshed (go-metrics' interval).
const EVERY: Duration = Duration::from_secs(10);

impl Agent {
    pub(crate) async fn gauges_loop(&self) {
        loop {
            self.set_gauges();
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => return,
                _ = tokio::time::sleep(EVERY) => {}
            }
        }
    }

    fn set_gauges(&self) {
        metrics::gauge!("consul.version", "version" => proconsul_types::CONSUL_COMPAT_VERSION)
            .set(1.0);
        if let Some(rss) = resident_bytes() {
            metrics::gauge!("consul.runtime.alloc_bytes").set(rss as f64);
        }
        metrics::gauge!("consul.runtime.num_goroutines").set(self.inner.tasks.len() as f64);
        metrics::gauge!("consul.serf.lan.members")
            .set(self.inner.gossip.lan.members().len() as f64);
        if let Some(server) = &self.inner.server {
            metrics::gauge!("consul.server.isLeader").set(f64::from(u8::from(server.is_leader())));
            let c = server.state_counts();
            metrics::gauge!("consul.state.nodes").set(c.nodes as f64);
            metrics::gauge!("consul.state.services").set(c.services as f64);
            metrics::gauge!("consul.state.service_instances").set(c.service_instances as f64);
            metrics::gauge!("consul.state.kv_entries").set(c.kv_entries as f64);
            metrics::gauge!("consul.session_ttl.active").set(c.sessions as f64);
        }
    }
}

/// The process's resident set in bytes (`/proc/self/statm`).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
