//! Other datacenters: what the WAN pool says about them, and requests sent there.
//!
//! Servers of every datacenter meet in the WAN gossip pool (Consul's WAN federation). A
//! request naming another datacenter (`?dc=`) is sent by a server of this one to a server of
//! that one ([`Server::forward_to_datacenter`]), which serves it as its own — reads, writes
//! and blocking queries alike — and the answer comes back unchanged. Servers are tried
//! nearest first; a server that cannot be reached is skipped for the next.
//!
//! On the receiving side a connection from another datacenter is accepted for exactly that:
//! calls that name the receiving datacenter and were not forwarded inside the caller's own.
//! Raft and in-datacenter forwarding stay refused to it (`remote.rs`).

use proconsul_types::{RpcError, ServerReply, ServerRequest};

use crate::Server;

/// The WAN pool as a server sees it.
pub trait WanSource: Send + Sync + 'static {
    /// Alive servers of `datacenter` (RPC addresses), nearest first.
    fn servers(&self, datacenter: &str) -> Vec<String>;
    /// Every datacenter with a server in the pool, this one included, nearest first (by
    /// median round-trip time, then name).
    fn datacenters(&self) -> Vec<String>;
}

/// Where a server broadcasts user events fired for its datacenter (the agent's LAN pool).
pub trait EventSink: Send + Sync + 'static {
    fn fire(&self, event: proconsul_types::UserEvent) -> BoxFuture<'_, Result<(), String>>;
}

/// A boxed future (what [`EventSink::fire`] returns).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// How many servers of the other datacenter a request tries before giving up.
const TRIES: usize = 3;

impl Server {
    /// Broadcast `event` in this datacenter (a user event fired from another one).
    pub(crate) async fn fire_event(
        &self,
        event: proconsul_types::UserEvent,
    ) -> Result<(), RpcError> {
        match &self.inner.opts.events {
            Some(sink) => sink.fire(event).await.map_err(RpcError::Internal),
            None => Err(RpcError::Internal(
                "this server cannot fire user events".into(),
            )),
        }
    }

    /// Known datacenters, nearest first; just this one without a WAN pool.
    pub fn datacenters(&self) -> Vec<String> {
        match &self.inner.opts.wan {
            Some(w) => {
                let mut dcs = w.datacenters();
                if !dcs.iter().any(|d| d == self.datacenter()) {
                    dcs.insert(0, self.datacenter().to_string());
                }
                dcs
            }
            None => vec![self.datacenter().to_string()],
        }
    }

    /// Send `req` to a server of `datacenter` with the caller's `token`; Consul's `No path
    /// to datacenter` when none is known or none answers.
    pub(crate) async fn forward_to_datacenter(
        &self,
        datacenter: &str,
        req: ServerRequest,
        token: &str,
    ) -> Result<ServerReply, RpcError> {
        let no_path = || RpcError::Internal("No path to datacenter".into());
        let Some(wan) = &self.inner.opts.wan else {
            return Err(no_path());
        };
        let servers = wan.servers(datacenter);
        if servers.is_empty() {
            return Err(no_path());
        }
        let mut last = None;
        for addr in servers.iter().take(TRIES) {
            match self
                .inner
                .opts
                .pool
                .request_in(datacenter, addr, req.clone(), token)
                .await
            {
                Ok(answer) => return answer,
                Err(e) if e.is_retryable() => {
                    tracing::debug!(target: "agent.server", datacenter, server = %addr, error = %e, "server of another datacenter did not answer; trying the next");
                    last = Some(e);
                }
                Err(e) => return Err(RpcError::Internal(e.to_string())),
            }
        }
        tracing::warn!(target: "agent.server", datacenter, error = ?last, "no server of the datacenter answered");
        Err(no_path())
    }
}
