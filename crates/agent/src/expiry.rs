//! Check expiry on the agent: TTL checks that were not updated in time turn critical, and
//! services critical for longer than their `deregister_critical_service_after` are removed
//! (Consul's `reapServicesInternal`). One task does both, so the check set is walked by one
//! reader at a time; the deadlines themselves live with the checks in [`crate::LocalState`],
//! which answers "did anything expire?" without a scan until the earliest deadline passes.
//!
//! A change found here is synced to the catalog at once (not at the next anti-entropy pass),
//! as Consul's check runner does when a TTL expires.

use std::time::Duration;

use crate::Agent;

impl Agent {
    /// TTL expiry every 100 ms (a scan only once a deadline has passed); the critical-service
    /// reaper, which walks every check, once a second (Consul's runs every 30 s).
    pub(crate) async fn ttl_loop(&self) {
        let mut tick: u32 = 0;
        loop {
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            let now = tokio::time::Instant::now();
            let mut changed = self.inner.local.expire_ttls(now);
            tick = tick.wrapping_add(1);
            let reaped = if tick.is_multiple_of(10) {
                self.inner.local.reap_critical(now)
            } else {
                Vec::new()
            };
            for id in reaped {
                tracing::info!(target: "agent", service = %id, "removed service: critical longer than deregister_critical_service_after");
                if let Some(p) = &self.inner.persisted {
                    p.remove_service(&id, &[]);
                }
                changed = true;
            }
            if changed {
                self.sync_changes().await;
            }
        }
    }
}
