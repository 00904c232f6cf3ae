//! The gauges the agent sets every interval (Consul's `consul.runtime.*`, `consul.state.*`,
//! `consul.server.isLeader`, `consul.version`), from what the process and the local server
//! already know; counters and timers are recorded where things happen; with
//! `telemetry.enable_host_metrics` also the host's (`consul.host.*`). And the push sinks:
//! statsd and DogStatsD (`telemetry.statsd_address`, `dogstatsd_addr`), flushed every second
//! over UDP, and statsite (`statsite_address`), the same lines over one TCP connection.

use std::time::Duration;

use crate::Agent;

/// How often the gauges are refreshed (go-metrics' interval).
const EVERY: Duration = Duration::from_secs(10);

impl Agent {
    pub(crate) async fn gauges_loop(&self) {
        let mut host = self
            .config()
            .telemetry_host_metrics
            .then(crate::host::HostMetrics::default);
        loop {
            self.set_gauges();
            if let Some(h) = &mut host {
                h.emit(self.config().data_dir.as_deref());
            }
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

/// How often the statsd sinks are flushed.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

impl Agent {
    /// Send what changed to the configured statsd/dogstatsd servers every second (UDP: a lost
    /// or refused datagram is not retried, as go-metrics' sinks do not).
    pub(crate) async fn statsd_loop(&self) {
        use proconsul_telemetry::statsd::{packets, Flavor, Sent};
        let cfg = self.config();
        let mut sinks: Vec<(std::net::SocketAddr, Flavor, Sent)> = Vec::new();
        if let Some(a) = cfg.telemetry_statsd {
            sinks.push((a, Flavor::Statsd, Sent::default()));
        }
        if let Some(a) = cfg.telemetry_dogstatsd {
            let tags = cfg.telemetry_dogstatsd_tags.clone();
            sinks.push((a, Flavor::Dogstatsd { tags }, Sent::default()));
        }
        if sinks.is_empty() {
            return;
        }
        let bind: std::net::SocketAddr = if sinks[0].0.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = match tokio::net::UdpSocket::bind(bind).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(target: "agent", error = %e, "telemetry: cannot open a UDP socket for statsd");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => return,
                _ = tokio::time::sleep(FLUSH_EVERY) => {}
            }
            for (addr, flavor, sent) in &mut sinks {
                let lines = self.inner.telemetry.statsd_lines(sent, flavor);
                for p in packets(&lines) {
                    let _ = socket.send_to(&p, *addr).await;
                }
            }
        }
    }
}

impl Agent {
    /// Send what changed to the statsite server every second over one TCP connection (go-metrics'
    /// `StatsiteSink`: statsd's line format, newline-terminated). Until a connection opens,
    /// changes accumulate and go out with the first flush on it; a connection that breaks is
    /// re-opened at the next flush.
    pub(crate) async fn statsite_loop(&self) {
        use proconsul_telemetry::statsd::{Flavor, Sent};
        use tokio::io::AsyncWriteExt;
        let Some(addr) = self.config().telemetry_statsite else {
            return;
        };
        let mut sent = Sent::default();
        let mut conn: Option<tokio::net::TcpStream> = None;
        loop {
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => return,
                _ = tokio::time::sleep(FLUSH_EVERY) => {}
            }
            if conn.is_none() {
                match tokio::time::timeout(FLUSH_EVERY, tokio::net::TcpStream::connect(addr)).await
                {
                    Ok(Ok(c)) => conn = Some(c),
                    Ok(Err(e)) => {
                        tracing::debug!(target: "agent", %addr, error = %e, "telemetry: cannot connect to statsite");
                        continue;
                    }
                    Err(_) => continue,
                }
            }
            let lines = self
                .inner
                .telemetry
                .statsd_lines(&mut sent, &Flavor::Statsd);
            if lines.is_empty() {
                continue;
            }
            let mut buf = lines.join("\n");
            buf.push('\n');
            if let Some(c) = &mut conn {
                if let Err(e) = c.write_all(buf.as_bytes()).await {
                    tracing::debug!(target: "agent", %addr, error = %e, "telemetry: statsite connection lost");
                    // The lines of this flush are lost, as go-metrics' sink loses them.
                    conn = None;
                }
            }
        }
    }
}

/// The process's resident set in bytes (`/proc/self/statm`).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
