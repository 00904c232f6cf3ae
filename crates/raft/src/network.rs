//! Raft networking: a bytes-in/bytes-out transport trait, openraft's network over it, and an
//! in-process router for tests.
//!
//! The RPC crate only moves opaque frames (`RpcKind` + body) to an address and returns the
//! reply body; all openraft message encoding (msgpack, struct-map form) happens here, on both
//! ends ([`crate::RaftNode::handle_rpc`] is the receiving side). That keeps openraft's types out
//! of the RPC crate and lets tests swap the socket for [`MemRouter`].
//!
//! The reply body carries openraft's own `Result`, so a remote Raft error (e.g. a higher vote)
//! reaches openraft intact; a [`TransportError`] means the frame never got an answer.
//!
//! With a durable log, AppendEntries goes out at once but a successful reply is handed to
//! openraft only once the leader's own copy of what it acknowledges is durable (see the
//! `log_store` module docs: the leader's early acknowledgement of its own appends must never
//! make a commit quorum).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{
    Infallible, InstallSnapshotError, NetworkError, RPCError, RaftError as OrRaftError,
    RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{AnyError, BasicNode, RPCTypes};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::log_store::DurableGate;
use crate::node::RaftNode;
use crate::trace::{self, Step, Tracer};
use crate::types::{decode, encode, TypeConfig};

/// Which Raft RPC a frame carries. The numeric values are stable (use them as a frame tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RpcKind {
    AppendEntries = 0,
    Vote = 1,
    InstallSnapshot = 2,
}

impl RpcKind {
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::AppendEntries),
            1 => Some(Self::Vote),
            2 => Some(Self::InstallSnapshot),
            _ => None,
        }
    }

    fn rpc_type(self) -> RPCTypes {
        match self {
            Self::AppendEntries => RPCTypes::AppendEntries,
            Self::Vote => RPCTypes::Vote,
            Self::InstallSnapshot => RPCTypes::InstallSnapshot,
        }
    }
}

/// Why a frame got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The peer cannot be reached (connection refused, no route): openraft backs off.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The transport gave up waiting.
    #[error("timed out")]
    Timeout,
    /// The peer answered with an error instead of a Raft reply (e.g. it is shutting down).
    #[error("remote error: {0}")]
    Remote(String),
    /// Anything else (connection reset mid-call, framing error): retried promptly.
    #[error("network: {0}")]
    Network(String),
}

/// A boxed, `Send` future as returned by [`RaftTransport::call`].
pub type TransportFuture =
    Pin<Box<dyn Future<Output = Result<Vec<u8>, TransportError>> + Send + 'static>>;

/// Sends one Raft RPC frame to `addr` (the peer's server RPC address) and returns the reply
/// body. Implemented by the RPC crate over its framed TCP connections, and by [`MemRouter`].
///
/// `target` is the peer's Raft node id (for logging/metrics; routing is by `addr`). The receiver
/// must hand `(kind, body)` to [`RaftNode::handle_rpc`] and send back its `Ok` bytes; an `Err`
/// from `handle_rpc` should come back as [`TransportError::Remote`]. Implementations need not
/// enforce timeouts: this crate wraps each call in openraft's deadline.
pub trait RaftTransport: Send + Sync + 'static {
    fn call(&self, target: u64, addr: &str, kind: RpcKind, body: Vec<u8>) -> TransportFuture;
}

/// openraft's network factory over a [`RaftTransport`].
pub(crate) struct NetFactory {
    pub(crate) id: u64,
    pub(crate) transport: Arc<dyn RaftTransport>,
    /// With a durable log: a follower's ack reaches openraft only once what it acknowledges
    /// is durable here too.
    pub(crate) gate: Option<DurableGate>,
    pub(crate) trace: Tracer,
}

impl RaftNetworkFactory<TypeConfig> for NetFactory {
    type Network = NetClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> NetClient {
        NetClient {
            id: self.id,
            target,
            node: node.clone(),
            transport: self.transport.clone(),
            gate: self.gate.clone(),
            trace: self.trace.clone(),
        }
    }
}

/// One peer connection as openraft sees it.
pub(crate) struct NetClient {
    id: u64,
    target: u64,
    node: BasicNode,
    transport: Arc<dyn RaftTransport>,
    gate: Option<DurableGate>,
    trace: Tracer,
}

type RpcResult<T, E> = Result<T, RPCError<u64, BasicNode, OrRaftError<u64, E>>>;

impl NetClient {
    /// Send one frame and return the raw reply, mapping transport failures to openraft's
    /// retry classes (unreachable → back off, timeout, other → retry).
    async fn call_raw<E: std::error::Error>(
        &self,
        kind: RpcKind,
        req: &impl Serialize,
        option: &RPCOption,
    ) -> RpcResult<Vec<u8>, E> {
        let body = encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let ttl = option.hard_ttl();
        let fut = self
            .transport
            .call(self.target, &self.node.addr, kind, body);
        match tokio::time::timeout(ttl, fut).await {
            Ok(Ok(b)) => Ok(b),
            Ok(Err(TransportError::Unreachable(m))) => {
                Err(RPCError::Unreachable(Unreachable::new(&AnyError::error(m))))
            }
            Ok(Err(TransportError::Timeout)) | Err(_) => Err(RPCError::Timeout(Timeout {
                action: kind.rpc_type(),
                id: self.id,
                target: self.target,
                timeout: ttl,
            })),
            Ok(Err(e)) => Err(RPCError::Network(NetworkError::new(&e))),
        }
    }

    /// Decode a reply: openraft's own `Result`, so remote Raft errors arrive intact.
    fn decode_reply<T, E>(&self, bytes: &[u8]) -> RpcResult<T, E>
    where
        T: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let res: Result<T, OrRaftError<u64, E>> =
            decode(bytes).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        res.map_err(|e| {
            RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                e,
            ))
        })
    }
}

impl RaftNetwork<TypeConfig> for NetClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>, Infallible> {
        let deadline = tokio::time::Instant::now() + option.hard_ttl();
        // Everything a successful reply says the follower holds (the request's last entry,
        // or the entry it follows for a heartbeat).
        let held = rpc
            .entries
            .last()
            .map(|e| e.log_id.index)
            .max(rpc.prev_log_id.map(|l| l.index));
        let traced = self.trace.as_ref().map(|_| match rpc.entries.last() {
            Some(e) => (Step::ShipSent, Step::AckRecv, e.log_id.index),
            None => (
                Step::HeartbeatSent,
                Step::HeartbeatAck,
                rpc.leader_commit.map_or(0, |c| c.index),
            ),
        });
        if let Some((sent, _, index)) = traced {
            trace::record(&self.trace, sent, index, self.target);
        }
        let bytes = self.call_raw(RpcKind::AppendEntries, &rpc, &option).await?;
        if let Some((_, acked, index)) = traced {
            trace::record(&self.trace, acked, index, self.target);
        }
        let resp: AppendEntriesResponse<u64> = self.decode_reply(&bytes)?;
        // The entries went out while the leader's own fsync of them may still be running (its
        // appends are acknowledged to openraft early: group commit, see `log_store`). openraft
        // counts the leader towards a commit quorum from that early acknowledgement, so a
        // follower's ack is handed over only once the leader's copy of everything it covers
        // is durable here: every quorum openraft sees is then made of copies on disk, and the
        // two fsyncs overlap instead of running one after the other.
        let matched = match &resp {
            AppendEntriesResponse::Success => held,
            AppendEntriesResponse::PartialSuccess(m) => m.map(|l| l.index),
            AppendEntriesResponse::Conflict | AppendEntriesResponse::HigherVote(_) => None,
        };
        if let (Some(gate), Some(matched)) = (&self.gate, matched) {
            match tokio::time::timeout_at(deadline, gate.wait(matched)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(RPCError::Unreachable(Unreachable::new(&AnyError::error(e))))
                }
                Err(_) => {
                    return Err(RPCError::Timeout(Timeout {
                        action: RPCTypes::AppendEntries,
                        id: self.id,
                        target: self.target,
                        timeout: option.hard_ttl(),
                    }))
                }
            }
            if let Some((Step::ShipSent, _, index)) = traced {
                trace::record(&self.trace, Step::AckDone, index, self.target);
            }
        }
        Ok(resp)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        let bytes = self
            .call_raw(RpcKind::InstallSnapshot, &rpc, &option)
            .await?;
        self.decode_reply(&bytes)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>, Infallible> {
        let bytes = self.call_raw(RpcKind::Vote, &rpc, &option).await?;
        self.decode_reply(&bytes)
    }

    fn backoff(&self) -> openraft::network::Backoff {
        // Retry an unreachable peer every 200ms rather than openraft's 500ms: local clusters heal faster.
        openraft::network::Backoff::new(std::iter::repeat(Duration::from_millis(200)))
    }
}

/// An in-process transport: addresses map to [`RaftNode`] handles in the same process.
///
/// Each node gets its own [`MemRouter::transport`] (bound to its address) so the router can cut
/// links in both directions with [`MemRouter::isolate`].
#[derive(Clone, Default)]
pub struct MemRouter {
    inner: Arc<Mutex<RouterState>>,
}

#[derive(Default)]
struct RouterState {
    nodes: HashMap<String, RaftNode>,
    isolated: BTreeSet<String>,
}

impl MemRouter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A transport for the node at `from` (its own address).
    pub fn transport(&self, from: &str) -> Arc<dyn RaftTransport> {
        Arc::new(MemTransport {
            router: self.clone(),
            from: from.to_string(),
        })
    }

    /// Make `node` reachable at `addr` (replacing any previous node there).
    pub fn register(&self, addr: &str, node: RaftNode) {
        self.state().nodes.insert(addr.to_string(), node);
    }

    /// Remove the node at `addr`; calls to it become unreachable.
    pub fn unregister(&self, addr: &str) -> Option<RaftNode> {
        self.state().nodes.remove(addr)
    }

    /// Cut (`true`) or restore (`false`) every link to and from `addr`.
    pub fn isolate(&self, addr: &str, isolated: bool) {
        let mut st = self.state();
        if isolated {
            st.isolated.insert(addr.to_string());
        } else {
            st.isolated.remove(addr);
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, RouterState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct MemTransport {
    router: MemRouter,
    from: String,
}

impl RaftTransport for MemTransport {
    fn call(&self, _target: u64, addr: &str, kind: RpcKind, body: Vec<u8>) -> TransportFuture {
        // Look the peer up now; the guard is dropped before the future runs.
        let node = {
            let st = self.router.state();
            if st.isolated.contains(&self.from) || st.isolated.contains(addr) {
                None
            } else {
                st.nodes.get(addr).cloned()
            }
        };
        let addr = addr.to_string();
        Box::pin(async move {
            let node = node.ok_or(TransportError::Unreachable(addr))?;
            node.handle_rpc(kind, &body)
                .await
                .map_err(|e| TransportError::Remote(e.to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::entry::RaftEntry;
    use openraft::{CommittedLeaderId, LogId, Vote};
    use std::task::Poll;

    /// Answers every frame at once with `reply`, counting the frames.
    struct Answer {
        frames: Arc<Mutex<usize>>,
        reply: Vec<u8>,
    }

    impl RaftTransport for Answer {
        fn call(&self, _: u64, _: &str, _: RpcKind, _: Vec<u8>) -> TransportFuture {
            *self.frames.lock().unwrap() += 1;
            let reply = self.reply.clone();
            Box::pin(async move { Ok(reply) })
        }
    }

    async fn client(
        reply: AppendEntriesResponse<u64>,
        gate: DurableGate,
    ) -> (NetClient, Arc<Mutex<usize>>) {
        let frames = Arc::new(Mutex::new(0));
        let reply = encode(&Ok::<_, OrRaftError<u64, Infallible>>(reply)).unwrap();
        let transport = Arc::new(Answer {
            frames: frames.clone(),
            reply,
        });
        let mut factory = NetFactory {
            id: 1,
            transport,
            gate: Some(gate),
            trace: None,
        };
        let node = BasicNode {
            addr: "peer".into(),
        };
        (factory.new_client(2, &node).await, frames)
    }

    fn entries_up_to(last: u64) -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: Vote::new_committed(1, 1),
            prev_log_id: None,
            leader_commit: None,
            entries: (1..=last)
                .map(|i| {
                    crate::types::Entry::new_blank(LogId::new(CommittedLeaderId::new(1, 1), i))
                })
                .collect(),
        }
    }

    /// Poll `f` until it can make no more progress by itself; its output if it finished.
    async fn settle<F: Future + Unpin>(f: &mut F) -> Option<F::Output> {
        for _ in 0..100 {
            let polled = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *f).poll(cx))).await;
            if let Poll::Ready(v) = polled {
                return Some(v);
            }
            tokio::task::yield_now().await;
        }
        None
    }

    #[tokio::test]
    async fn entries_ship_at_once_but_an_ack_waits_for_the_leaders_own_fsync() {
        let (gate, durable) = DurableGate::manual();
        let (mut c, frames) = client(AppendEntriesResponse::Success, gate).await;
        let option = RPCOption::new(Duration::from_secs(60));
        let mut call = std::pin::pin!(c.append_entries(entries_up_to(2), option));
        assert!(settle(&mut call).await.is_none(), "ack handed over early");
        assert_eq!(*frames.lock().unwrap(), 1, "entries not shipped yet");
        durable(1);
        assert!(settle(&mut call).await.is_none(), "ack covers entry 2 too");
        durable(2);
        let resp = settle(&mut call).await.expect("ack once durable");
        assert!(matches!(resp, Ok(AppendEntriesResponse::Success)));
    }

    #[tokio::test]
    async fn a_rejection_is_handed_over_at_once() {
        let rejections = || {
            [
                AppendEntriesResponse::Conflict,
                AppendEntriesResponse::HigherVote(Vote::new(5, 3)),
            ]
        };
        for (reply, want) in rejections().into_iter().zip(rejections()) {
            let (gate, _durable) = DurableGate::manual();
            let (mut c, _) = client(reply, gate).await;
            let option = RPCOption::new(Duration::from_secs(60));
            let mut call = std::pin::pin!(c.append_entries(entries_up_to(2), option));
            let resp = settle(&mut call).await.expect("no wait for a rejection");
            assert_eq!(resp.unwrap(), want);
        }
    }

    #[test]
    fn rpc_kind_tags_are_stable() {
        for k in [
            RpcKind::AppendEntries,
            RpcKind::Vote,
            RpcKind::InstallSnapshot,
        ] {
            assert_eq!(RpcKind::from_u8(k.as_u8()), Some(k));
        }
        assert_eq!(RpcKind::from_u8(9), None);
    }
}
