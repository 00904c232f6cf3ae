//! `limits.request_limits`: a server's global limit on the reads and writes it serves per
//! second (Consul's `agent/consul/rate`). Checked in [`crate::Server::call`]'s routing, the one
//! place every request passes: a read where it arrives (another server may have room, so the
//! caller gets 429 and Consul's "try … against a different server"), a write where it is
//! served, on the leader (only the leader can take it, so 503 and "try again later").
//! `permissive` counts and logs what would have been refused and serves it.
//!
//! Each limit is a token bucket holding one second's worth (at least one request), refilled
//! continuously; the clock is tokio's, so tests can pause it.

use std::sync::Mutex;

use proconsul_types::{RequestLimitMode, RequestLimits, RpcError, ServerRequest};
use tokio::time::Instant;

/// Consul's text for a read refused here (HTTP 429).
pub const READ_REFUSED: &str = "rate limit exceeded, try again later or against a different server";
/// Consul's text for a write refused on the leader (HTTP 503).
pub const WRITE_REFUSED: &str =
    "rate limit exceeded for operation that can only be performed by the leader, try again later";

/// A token bucket: `rate` tokens a second, holding at most `burst`, full at the start.
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// `None` for an infinite (or invalid) rate: no limit.
    pub fn new(rate: f64, burst: f64) -> Option<TokenBucket> {
        (rate.is_finite() && rate >= 0.0).then(|| {
            let burst = burst.max(1.0);
            TokenBucket {
                rate,
                burst,
                state: Mutex::new((burst, Instant::now())),
            }
        })
    }

    /// Take one token if there is one.
    pub fn take(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let (tokens, at) = *s;
        let tokens =
            (tokens + now.saturating_duration_since(at).as_secs_f64() * self.rate).min(self.burst);
        if tokens >= 1.0 {
            *s = (tokens - 1.0, now);
            true
        } else {
            *s = (tokens, now);
            false
        }
    }
}

/// The server's read and write buckets.
pub(crate) struct RequestLimiter {
    limits: RequestLimits,
    mode: RequestLimitMode,
    reads: Option<TokenBucket>,
    writes: Option<TokenBucket>,
}

impl RequestLimiter {
    pub(crate) fn new(limits: &RequestLimits) -> RequestLimiter {
        RequestLimiter {
            limits: *limits,
            mode: limits.mode,
            // One second's worth of requests may come at once.
            reads: TokenBucket::new(limits.read_rate, limits.read_rate),
            writes: TokenBucket::new(limits.write_rate, limits.write_rate),
        }
    }

    /// The limits it enforces.
    pub(crate) fn limits(&self) -> &RequestLimits {
        &self.limits
    }

    /// May `req` go on? `serves_write_here`: this server serves writes (it leads, or the
    /// request was forwarded to it as leader); `forwarded`: another server already admitted it.
    pub(crate) fn admit(
        &self,
        req: &ServerRequest,
        forwarded: bool,
        serves_write_here: bool,
    ) -> Result<(), RpcError> {
        if self.mode == RequestLimitMode::Disabled || exempt(req) {
            return Ok(());
        }
        let write = !req.is_idempotent();
        let (bucket, kind) = match (write, forwarded) {
            (true, _) if serves_write_here => (&self.writes, "global/write"),
            (false, false) => (&self.reads, "global/read"),
            // A write on its way to the leader, or a read another server admitted.
            _ => return Ok(()),
        };
        let Some(bucket) = bucket else {
            return Ok(());
        };
        if bucket.take() {
            return Ok(());
        }
        let mode = match self.mode {
            RequestLimitMode::Enforcing => "enforcing",
            _ => "permissive",
        };
        metrics::counter!("consul.rpc.rate_limit.exceeded", "limit_type" => kind, "op" => req.name(), "mode" => mode)
            .increment(1);
        if self.mode == RequestLimitMode::Permissive {
            tracing::debug!(target: "agent", op = req.name(), limit = kind, "RPC exceeded allowed rate limit (permissive: served)");
            return Ok(());
        }
        tracing::debug!(target: "agent", op = req.name(), limit = kind, "RPC exceeded allowed rate limit");
        Err(if write {
            RpcError::Unavailable(WRITE_REFUSED.into())
        } else {
            RpcError::TooManyRequests(READ_REFUSED.into())
        })
    }
}

/// What servers ask each other to keep the cluster going is never limited.
fn exempt(req: &ServerRequest) -> bool {
    matches!(
        req,
        ServerRequest::StatusLeader(_)
            | ServerRequest::StatusPeers(_)
            | ServerRequest::StatusRaftStats(_)
            | ServerRequest::RaftElect(_)
            | ServerRequest::AclReplicate(_)
            | ServerRequest::AclResolveIdentity(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proconsul_types::{CatalogNodes, KvWriteVerb, Read, StatusLeader, Write, WriteRequest};

    fn read() -> ServerRequest {
        ServerRequest::Read(Read {
            req: CatalogNodes::default().into(),
            opts: Default::default(),
        })
    }

    fn write() -> ServerRequest {
        ServerRequest::Write(Write {
            req: WriteRequest::Kv {
                verb: KvWriteVerb::Set,
                key: "k".into(),
                value: Some(b"v".to_vec()),
                flags: 0,
                index: 0,
                session: None,
            },
            datacenter: String::new(),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn enforcing_refuses_beyond_the_rate_and_refills() {
        let l = RequestLimiter::new(&RequestLimits {
            mode: RequestLimitMode::Enforcing,
            read_rate: 2.0,
            write_rate: 1.0,
        });
        assert!(l.admit(&read(), false, true).is_ok());
        assert!(l.admit(&read(), false, true).is_ok());
        let e = l.admit(&read(), false, true).unwrap_err();
        assert_eq!((e.status(), e.to_string()), (429, READ_REFUSED.to_string()));
        // A read another server admitted, and the cluster's own calls, pass.
        assert!(l.admit(&read(), true, true).is_ok());
        assert!(l
            .admit(
                &ServerRequest::StatusLeader(StatusLeader::default()),
                false,
                true
            )
            .is_ok());
        // Writes: counted on the leader only.
        assert!(l.admit(&write(), false, true).is_ok());
        assert!(
            l.admit(&write(), false, false).is_ok(),
            "on its way to the leader"
        );
        let e = l.admit(&write(), true, true).unwrap_err();
        assert_eq!(
            (e.status(), e.to_string()),
            (503, WRITE_REFUSED.to_string())
        );
        tokio::time::advance(std::time::Duration::from_millis(500)).await;
        assert!(l.admit(&read(), false, true).is_ok(), "refilled at 2/s");
        assert!(l.admit(&read(), false, true).is_err());
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        assert!(l.admit(&write(), false, true).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn permissive_and_disabled_serve_everything() {
        for mode in [RequestLimitMode::Permissive, RequestLimitMode::Disabled] {
            let l = RequestLimiter::new(&RequestLimits {
                mode,
                read_rate: 0.0,
                write_rate: 0.0,
            });
            for _ in 0..5 {
                assert!(l.admit(&read(), false, true).is_ok());
                assert!(l.admit(&write(), false, true).is_ok());
            }
        }
        // Unset rates: no limit even when enforcing.
        let l = RequestLimiter::new(&RequestLimits {
            mode: RequestLimitMode::Enforcing,
            ..Default::default()
        });
        for _ in 0..100 {
            assert!(l.admit(&read(), false, true).is_ok());
        }
    }
}
