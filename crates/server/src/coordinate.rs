//! `Coordinate.Update`: agents' LAN coordinates, written to Raft in batches.
//!
//! Every agent sends its coordinate every 15 s or so; a Raft entry per update would make
//! coordinates the busiest writer of a large datacenter for data nobody needs to the second.
//! So, like Consul, the leader only remembers the latest update of each node (and segment) and
//! a flush task proposes what accumulated every `update_period`, in entries of at most
//! `batch_size` updates and at most `max_batches` entries per period; the rest is dropped (the
//! nodes send again soon). An update is acknowledged once queued, before it is committed.
//! Updates queued on a server that is not the leader when the flush runs are dropped too: they
//! are forwarded to the leader in the first place, so that only happens around elections.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use proconsul_state::{Command, CoordinateUpdate};
use proconsul_types::{CoordinateUpdateRequest, RpcError, COORDINATE_DIMENSIONS};

use crate::Server;

/// Batching of coordinate writes (Consul's `consul.coordinate.*` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoordinateOptions {
    /// How often pending updates are written (Consul: 5 s).
    pub update_period: Duration,
    /// Updates per Raft entry (Consul: 128).
    pub batch_size: usize,
    /// Entries per period; more pending updates than `batch_size * max_batches` are dropped
    /// (Consul: 5).
    pub max_batches: usize,
}

impl Default for CoordinateOptions {
    fn default() -> Self {
        CoordinateOptions {
            update_period: Duration::from_secs(5),
            batch_size: 128,
            max_batches: 5,
        }
    }
}

impl CoordinateOptions {
    fn limit(&self) -> usize {
        self.batch_size.max(1) * self.max_batches.max(1)
    }
}

/// The latest pending update per (node, segment), bounded by [`CoordinateOptions`].
#[derive(Default)]
pub(crate) struct PendingCoordinates {
    updates: Mutex<HashMap<(String, String), CoordinateUpdate>>,
}

impl PendingCoordinates {
    fn take(&self) -> HashMap<(String, String), CoordinateUpdate> {
        std::mem::take(&mut *self.updates.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Server {
    /// Validate an update (Consul's checks and error texts) and queue it for the next flush.
    pub(crate) fn queue_coordinate(&self, req: CoordinateUpdateRequest) -> Result<(), RpcError> {
        let coord = match req.coord {
            Some(c) if c.is_valid() => c,
            _ => return Err(RpcError::Internal("invalid coordinate".into())),
        };
        if coord.vec.len() != COORDINATE_DIMENSIONS {
            return Err(RpcError::Internal("incompatible coordinate".into()));
        }
        let update = CoordinateUpdate {
            node: req.node.clone(),
            segment: req.segment.clone(),
            vec: coord.vec,
            error: coord.error,
            adjustment: coord.adjustment,
            height: coord.height,
        };
        let limit = self.inner.opts.coordinate.limit();
        let mut pending = self
            .inner
            .coordinates
            .updates
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let key = (req.node, req.segment);
        if pending.len() >= limit && !pending.contains_key(&key) {
            // Consul discards what exceeds a period's budget when it flushes; refusing it
            // here keeps the map bounded between flushes as well.
            tracing::debug!(target: "agent.server.coordinate", node = %key.0, "coordinate update discarded: too many pending");
            return Ok(());
        }
        pending.insert(key, update);
        Ok(())
    }
}

/// Write pending updates every `update_period`; a duty of the leader's term task, which
/// cancels it when leadership ends. Updates queued on a follower are dropped at its first
/// flush as leader if they are stale by then — like Consul, coordinates are best effort.
pub(crate) async fn flush_loop(server: &Server) {
    let opts = server.inner.opts.coordinate;
    let period = opts.update_period.max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(period).await;
        let pending = server.inner.coordinates.take();
        if pending.is_empty() {
            continue;
        }
        let mut updates: Vec<CoordinateUpdate> = pending.into_values().collect();
        updates.sort_by(|a, b| (&a.node, &a.segment).cmp(&(&b.node, &b.segment)));
        if updates.len() > opts.limit() {
            tracing::warn!(target: "agent.server.coordinate", discarded = updates.len() - opts.limit(), "Discarded coordinate updates");
            updates.truncate(opts.limit());
        }
        for chunk in updates.chunks(opts.batch_size.max(1)) {
            if let Err(e) = server
                .propose(Command::CoordinateBatchUpdate(chunk.to_vec()))
                .await
            {
                tracing::warn!(target: "agent.server.coordinate", error = %e, "Batch update failed");
                break;
            }
        }
    }
}
