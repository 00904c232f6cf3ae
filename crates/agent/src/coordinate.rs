//! Network coordinates on the agent side: sending our LAN coordinate to the servers, and the
//! WAN coordinates of servers by datacenter.
//!
//! Gossip computes the coordinates ([`proconsul_gossip::coordinate`]); the catalog only learns
//! them because every agent, servers and `-dev` included, periodically writes its own through
//! the normal write path (`Coordinate.Update`, batched on the leader). The period grows with
//! the pool so the datacenter as a whole stays near `sync_coordinate_rate_target` updates per
//! second (Consul's `sendCoordinate`), with random stagger so agents do not align.

use std::time::Duration;

use proconsul_gossip::coordinate::Coordinate;
use proconsul_types::{
    Coord, CoordinateEntry, CoordinateUpdateRequest, DatacenterCoordinates, RpcError, WriteRequest,
};

use crate::Agent;

/// The WAN area every datacenter is in (Consul Enterprise adds network areas).
const WAN_AREA: &str = "WAN";

pub(crate) fn to_api(c: &Coordinate) -> Coord {
    Coord {
        vec: c.vec.clone(),
        error: c.error,
        adjustment: c.adjustment,
        height: c.height,
    }
}

/// Consul's `lib.RateScaledInterval`: `n / rate` seconds, at least `min`.
pub(crate) fn rate_scaled_interval(rate: f64, min: Duration, n: usize) -> Duration {
    if !(rate.is_finite() && rate > 0.0) {
        return min;
    }
    let secs = n as f64 / rate;
    min.max(Duration::from_secs_f64(secs.min(86_400.0)))
}

impl Agent {
    /// Send our LAN coordinate every interval until the agent stops (Consul's
    /// `sendCoordinate`); a failed send is logged and retried at the next interval.
    pub(crate) async fn coordinate_loop(&self) {
        loop {
            let cfg = self.config();
            let n = self.inner.gossip.lan.members().len();
            let intv = rate_scaled_interval(
                cfg.sync_coordinate_rate_target,
                cfg.sync_coordinate_interval_min,
                n,
            );
            let stagger =
                Duration::from_nanos(rand::random::<u64>() % (intv.as_nanos().max(1) as u64));
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => return,
                _ = tokio::time::sleep(intv + stagger) => {}
            }
            if let Err(e) = self.send_coordinate().await {
                tracing::warn!(target: "agent", error = %e, "Coordinate update error");
            }
        }
    }

    /// One `Coordinate.Update` with our current LAN coordinate (what the loop does every
    /// interval; public so tests can send one without waiting).
    pub async fn send_coordinate(&self) -> Result<(), RpcError> {
        let Some(c) = self.inner.gossip.lan.coordinate() else {
            return Ok(());
        };
        let req = CoordinateUpdateRequest {
            datacenter: self.inner.datacenter.clone(),
            node: self.inner.node_name.clone(),
            segment: String::new(),
            coord: Some(to_api(&c)),
        };
        let dc = self.inner.datacenter.clone();
        self.call(proconsul_types::Write {
            req: WriteRequest::CoordinateUpdate(req),
            datacenter: dc,
        })
        .await
        .map(|_| ())
    }

    /// `/v1/coordinate/datacenters`: the servers of every datacenter in our WAN pool with the
    /// coordinates it has for them (names without the `.dc` suffix), datacenters by name.
    /// A client agent has no WAN pool; it answers its own datacenter with no coordinates
    /// (Consul would ask a server).
    pub(crate) fn wan_coordinates(&self) -> Vec<DatacenterCoordinates> {
        let Some(wan) = self.inner.gossip.wan.as_ref() else {
            return vec![DatacenterCoordinates {
                datacenter: self.inner.datacenter.clone(),
                area_id: WAN_AREA.into(),
                coordinates: Vec::new(),
            }];
        };
        use proconsul_gossip::membership::MemberStatus as S;
        let cached = wan.cached_coordinates();
        let mut by_dc: std::collections::BTreeMap<String, Vec<CoordinateEntry>> =
            std::collections::BTreeMap::new();
        by_dc.entry(self.inner.datacenter.clone()).or_default();
        for m in wan.members() {
            if m.tags.get("role").map(String::as_str) != Some("consul")
                || matches!(m.status, S::Left | S::Failed)
            {
                continue;
            }
            let Some(dc) = m.tags.get("dc") else { continue };
            let list = by_dc.entry(dc.clone()).or_default();
            if let Some(c) = cached.get(&m.name) {
                let node = m
                    .name
                    .strip_suffix(&format!(".{dc}"))
                    .unwrap_or(&m.name)
                    .to_string();
                list.push(CoordinateEntry {
                    node,
                    segment: String::new(),
                    coord: to_api(c),
                });
            }
        }
        by_dc
            .into_iter()
            .map(|(datacenter, mut coordinates)| {
                coordinates.sort_by(|a, b| a.node.cmp(&b.node));
                DatacenterCoordinates {
                    datacenter,
                    area_id: WAN_AREA.into(),
                    coordinates,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_scales_with_the_pool_above_the_minimum() {
        let min = Duration::from_secs(15);
        assert_eq!(rate_scaled_interval(64.0, min, 3), min);
        assert_eq!(
            rate_scaled_interval(64.0, min, 6400),
            Duration::from_secs(100)
        );
        assert_eq!(rate_scaled_interval(0.0, min, 6400), min);
    }
}
