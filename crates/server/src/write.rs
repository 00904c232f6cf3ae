//! Writes: validate and complete a request (Consul's pre-apply), propose it, decode the result.
//!
//! Everything non-deterministic happens here, never in apply: the wall-clock time carried in the
//! entry, new session IDs, the lock-delay check for `acquire`, session TTL bounds.

use std::time::Duration;

use std::sync::OnceLock;

use proconsul_state::{ApplyResult, Command, KvOp, KvVerb, Proposal, TxnStep};
use proconsul_types::{
    duration, KvWriteVerb, RegisterRequest, RpcError, SessionCreate, SessionEntry, TxnResponse,
    WriteRequest, WriteResponse, BEHAVIOR_DELETE, BEHAVIOR_RELEASE,
};

use crate::session_ttl::parse_ttl;
use crate::{raft_error, Server};

/// Longest session TTL Consul allows.
const SESSION_TTL_MAX: Duration = Duration::from_secs(86_400);
/// Longest lock delay Consul allows.
const MAX_LOCK_DELAY: Duration = Duration::from_secs(60);
/// Consul's default lock delay.
const DEFAULT_LOCK_DELAY: Duration = Duration::from_secs(15);

impl Server {
    /// Commit a write here, without forwarding (a follower answers an error); returns the
    /// Raft index it was committed at and its answer.
    pub(crate) async fn write_here(
        &self,
        req: WriteRequest,
        datacenter: &str,
    ) -> Result<(u64, WriteResponse), RpcError> {
        // Consul's endpoint timers (`consul.kvs.apply`, `consul.catalog.register`, …), in ms.
        let timer = match &req {
            WriteRequest::Register(_) => Some("consul.catalog.register"),
            WriteRequest::Deregister(_) => Some("consul.catalog.deregister"),
            WriteRequest::Kv { .. } => Some("consul.kvs.apply"),
            WriteRequest::Txn(_) => Some("consul.txn.apply"),
            WriteRequest::SessionCreate(_) | WriteRequest::SessionDestroy { .. } => {
                Some("consul.session.apply")
            }
            _ => None,
        };
        let start = std::time::Instant::now();
        let r = self.write_unmeasured(req, datacenter).await;
        if let Some(name) = timer {
            record_ms(name, start.elapsed().as_secs_f64() * 1000.0);
        }
        r
    }

    async fn write_unmeasured(
        &self,
        req: WriteRequest,
        datacenter: &str,
    ) -> Result<(u64, WriteResponse), RpcError> {
        if !datacenter.is_empty() && datacenter != self.inner.opts.datacenter {
            return Err(RpcError::Internal("No path to datacenter".into()));
        }
        match req {
            WriteRequest::Register(r) => {
                let r = validate_register(*r)?;
                let (idx, _) = self.propose_ok(Command::register(r)).await?;
                Ok((idx, WriteResponse::Ok))
            }
            WriteRequest::Deregister(r) => {
                if r.node.is_empty() {
                    return Err(RpcError::Internal("Must provide node".into()));
                }
                let (idx, _) = self.propose_ok(Command::deregister(r)).await?;
                Ok((idx, WriteResponse::Ok))
            }
            WriteRequest::Kv {
                verb,
                key,
                value,
                flags,
                index,
                session,
            } => {
                let verb = match verb {
                    KvWriteVerb::Set => KvVerb::Set,
                    KvWriteVerb::Cas => KvVerb::Cas,
                    KvWriteVerb::Lock => KvVerb::Lock,
                    KvWriteVerb::Unlock => KvVerb::Unlock,
                    KvWriteVerb::Delete => KvVerb::Delete,
                    KvWriteVerb::DeleteCas => KvVerb::DeleteCas,
                    KvWriteVerb::DeleteTree => KvVerb::DeleteTree,
                };
                if verb == KvVerb::Lock {
                    // kvsPreApply: an acquire inside a key's lock-delay window fails at once.
                    if let Some(until) = self.inner.store.lock_delay_until(&key) {
                        if until > self.inner.clock.now_ms() {
                            return Ok((self.inner.store.last_index(), WriteResponse::Bool(false)));
                        }
                    }
                }
                let op = KvOp {
                    verb,
                    key,
                    value,
                    flags,
                    index,
                    session,
                };
                let (idx, applied) = self.propose_ok(Command::Kv(op)).await?;
                let ok = matches!(applied, ApplyResult::Bool(true) | ApplyResult::Ok);
                Ok((idx, WriteResponse::Bool(ok)))
            }
            WriteRequest::Txn(ops) => {
                // KV-only transactions keep the older entry every server reads.
                let command = if ops.iter().all(|op| op.kv.is_some()) {
                    Command::txn(ops.into_iter().filter_map(|op| op.kv).collect())
                } else {
                    Command::TxnSteps(ops.into_iter().filter_map(TxnStep::from_api).collect())
                };
                let (idx, applied) = self.propose(command).await?;
                let resp = match applied {
                    ApplyResult::Txn(Ok(results)) => TxnResponse {
                        results: Some(results),
                        errors: None,
                    },
                    ApplyResult::Txn(Err(errors)) => TxnResponse {
                        results: None,
                        errors: Some(errors),
                    },
                    ApplyResult::Err(e) => return Err(RpcError::Internal(e.to_string())),
                    _ => return Err(RpcError::Internal("unexpected txn result".into())),
                };
                Ok((idx, WriteResponse::Txn(resp)))
            }
            WriteRequest::SessionCreate(c) => {
                let entry = self.complete_session(c)?;
                let id = entry.id.clone();
                let ttl = entry.ttl.clone();
                let (idx, _) = self.propose_ok(Command::session_create(entry)).await?;
                if let Some(ttl) = parse_ttl(&ttl) {
                    self.inner.sessions.reset(&id, ttl);
                }
                Ok((idx, WriteResponse::SessionId(id)))
            }
            WriteRequest::SessionDestroy { id } => {
                if id.is_empty() {
                    return Err(RpcError::Internal("Session ID must be provided".into()));
                }
                let (idx, _) = self
                    .propose_ok(Command::SessionDestroy { id: id.clone() })
                    .await?;
                self.inner.sessions.clear(&id);
                Ok((idx, WriteResponse::Ok))
            }
            WriteRequest::SnapshotRestore(state) => {
                let (idx, _) = self
                    .propose_ok(Command::Restore { state: Some(state) })
                    .await?;
                // Session TTL timers follow the restored sessions.
                crate::leader::init_session_timers(self);
                Ok((idx, WriteResponse::Ok))
            }
            WriteRequest::CoordinateUpdate(req) => {
                self.queue_coordinate(req)?;
                Ok((self.inner.store.last_index(), WriteResponse::Ok))
            }
            WriteRequest::AutopilotSetConfig { config, cas } => {
                let config = crate::autopilot::from_api(&config)?;
                let (idx, applied) = self
                    .propose_ok(Command::AutopilotSetConfig { config, cas })
                    .await?;
                Ok((
                    idx,
                    WriteResponse::Bool(matches!(applied, ApplyResult::Bool(true))),
                ))
            }
            WriteRequest::SessionRenew { id } => {
                // Renewal is leader-local in Consul too: it resets the TTL timer, not the log.
                if !self.is_leader() {
                    return Err(raft_error(proconsul_raft::RaftError::ForwardToLeader {
                        leader: self.leader(),
                    }));
                }
                let view = self.inner.store.view();
                let mut ws = proconsul_state::WatchSet::new();
                let (idx, found) = view.session(&mut ws, &id);
                if let Some(s) = &found {
                    if let Some(ttl) = parse_ttl(&s.ttl) {
                        self.inner.sessions.reset(&id, ttl);
                    }
                }
                Ok((idx, WriteResponse::Session(found)))
            }
        }
    }

    /// Propose a command; a rejected command becomes Consul's 500 with the store's text.
    pub(crate) async fn propose_ok(&self, cmd: Command) -> Result<(u64, ApplyResult), RpcError> {
        let (idx, applied) = self.propose(cmd).await?;
        match applied {
            ApplyResult::Err(e) => Err(RpcError::Internal(e.to_string())),
            other => Ok((idx, other)),
        }
    }

    /// Propose and wait for commit + apply; the entry and its result stay typed.
    pub(crate) async fn propose(&self, cmd: Command) -> Result<(u64, ApplyResult), RpcError> {
        let entry = Proposal {
            at_ms: self.inner.clock.now_ms(),
            command: cmd,
        };
        static APPLIES: OnceLock<metrics::Counter> = OnceLock::new();
        APPLIES
            .get_or_init(|| metrics::counter!("consul.raft.apply"))
            .increment(1);
        let start = std::time::Instant::now();
        let r = self.inner.raft.propose(entry).await.map_err(raft_error);
        metrics::histogram!("consul.raft.commitTime")
            .record(start.elapsed().as_secs_f64() * 1000.0);
        r
    }

    /// Consul's Session.Apply checks, and the choices apply must not make (ID, defaults).
    fn complete_session(&self, c: SessionCreate) -> Result<SessionEntry, RpcError> {
        let ttl_min = self.inner.opts.session_ttl_min;
        if !c.ttl.is_empty() {
            let ttl = duration::parse(&c.ttl)
                .map_err(|e| RpcError::Internal(format!("Session TTL '{}' invalid: {e}", c.ttl)))?;
            if !ttl.is_zero() && (ttl < ttl_min || ttl > SESSION_TTL_MAX) {
                return Err(RpcError::Internal(format!(
                    "Invalid Session TTL '{}', must be between [{}={}]",
                    ttl.as_nanos(),
                    duration::format(ttl_min),
                    duration::format(SESSION_TTL_MAX)
                )));
            }
        }
        let behavior = match c.behavior.as_str() {
            "" => BEHAVIOR_RELEASE.to_string(),
            BEHAVIOR_RELEASE | BEHAVIOR_DELETE => c.behavior.clone(),
            other => {
                return Err(RpcError::Internal(format!(
                    "Invalid Behavior setting '{other}'"
                )))
            }
        };
        let lock_delay = c
            .lock_delay_ns
            .map(Duration::from_nanos)
            .unwrap_or(DEFAULT_LOCK_DELAY);
        if lock_delay > MAX_LOCK_DELAY {
            return Err(RpcError::Internal(format!(
                "Lock delay must be <= {}",
                duration::format(MAX_LOCK_DELAY)
            )));
        }
        let node = if c.node.is_empty() {
            self.inner.opts.node_name.clone()
        } else {
            c.node
        };
        let node_checks = c
            .node_checks
            .unwrap_or_else(|| vec![proconsul_types::health::SERF_CHECK_ID.to_string()]);
        Ok(SessionEntry {
            id: uuid::Uuid::new_v4().to_string(),
            name: c.name,
            node,
            lock_delay: lock_delay.as_nanos() as u64,
            behavior,
            ttl: c.ttl,
            node_checks,
            service_checks: c
                .service_checks
                .into_iter()
                .map(|id| proconsul_types::ServiceCheckRef {
                    id,
                    namespace: String::new(),
                })
                .collect(),
            create_index: 0,
            modify_index: 0,
        })
    }
}

/// Consul's Catalog.Register checks and fix-ups.
fn validate_register(mut r: RegisterRequest) -> Result<RegisterRequest, RpcError> {
    if r.node.is_empty() {
        return Err(RpcError::Internal("Must provide node".into()));
    }
    if r.address.is_empty() && !r.skip_node_update {
        return Err(RpcError::Internal(
            "Must provide address if SkipNodeUpdate is not set".into(),
        ));
    }
    if let Some(svc) = r.service.as_mut() {
        if svc.id.is_empty() && !svc.service.is_empty() {
            svc.id = svc.service.clone();
        }
        if !svc.id.is_empty() && svc.service.is_empty() {
            return Err(RpcError::Internal(
                "Must provide service name with ID".into(),
            ));
        }
    }
    if let Some(c) = r.check.take() {
        r.checks.push(c);
    }
    for c in &mut r.checks {
        if c.node.is_empty() {
            c.node = r.node.clone();
        }
        if c.check_id.is_empty() && !c.name.is_empty() {
            c.check_id = c.name.clone();
        }
        if c.status.is_empty() {
            c.status = proconsul_types::health::CRITICAL.to_string();
        }
        if c.node != r.node {
            return Err(RpcError::Internal(format!(
                "Check node name '{}' does not match node name '{}'",
                c.node, r.node
            )));
        }
    }
    Ok(r)
}

/// Record `ms` in the histogram named `name`. Each thread keeps its own handles: recording
/// touches no registry lock and no shared reference count (writes run on every request
/// thread).
fn record_ms(name: &'static str, ms: f64) {
    use std::cell::RefCell;
    thread_local! {
        static HANDLES: RefCell<Vec<(&'static str, metrics::Histogram)>> =
            const { RefCell::new(Vec::new()) };
    }
    HANDLES.with(|h| {
        let mut h = h.borrow_mut();
        if let Some((_, hist)) = h.iter().find(|(n, _)| *n == name) {
            hist.record(ms);
            return;
        }
        let hist = metrics::histogram!(name);
        hist.record(ms);
        h.push((name, hist));
    });
}
