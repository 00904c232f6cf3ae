use proconsul_state::{ApplyResult, Command, KvOp, KvVerb, Proposal, Store, WatchSet};
use proconsul_types::{
    DeregisterRequest, HealthCheck, NodeService, RegisterRequest, SessionEntry, TxnKvOp,
};

/// A store plus the next Raft index; every `apply` uses a fresh index.
pub struct H {
    pub store: Store,
    pub idx: u64,
    pub now_ms: u64,
}

impl H {
    pub fn new() -> Self {
        H {
            store: Store::new(),
            idx: 0,
            now_ms: 1_700_000_000_000,
        }
    }

    pub fn apply(&mut self, cmd: impl Into<Command>) -> ApplyResult {
        self.idx += 1;
        self.store
            .apply(self.idx, &Proposal::new(self.now_ms, cmd.into()))
    }

    /// Apply and insist it succeeded.
    pub fn ok(&mut self, cmd: impl Into<Command>) -> u64 {
        let r = self.apply(cmd);
        assert!(!r.is_err(), "apply failed: {r:?}");
        self.idx
    }

    pub fn node(&mut self, name: &str, addr: &str) -> u64 {
        self.ok(reg_node(name, addr))
    }

    pub fn service(&mut self, node: &str, id: &str, name: &str, tags: &[&str]) -> u64 {
        let mut r = reg_node(node, "10.0.0.1");
        r_service(&mut r, id, name, tags, 80);
        self.ok(Command::register(r))
    }

    pub fn check(&mut self, node: &str, id: &str, status: &str, service_id: &str) -> u64 {
        let mut req = reg_node(node, "10.0.0.1");
        req.check = Some(check(node, id, status, service_id));
        self.ok(Command::register(req))
    }

    pub fn set(&mut self, key: &str, val: &str) -> u64 {
        let r = self.apply(kv(KvVerb::Set, key, Some(val)));
        assert_eq!(r, ApplyResult::Bool(true));
        self.idx
    }

    pub fn session(
        &mut self,
        id: &str,
        node: &str,
        behavior: &str,
        lock_delay_ns: u64,
    ) -> ApplyResult {
        self.apply(Command::session_create(SessionEntry {
            id: id.into(),
            node: node.into(),
            behavior: behavior.into(),
            lock_delay: lock_delay_ns,
            ..Default::default()
        }))
    }
}

pub fn ws() -> WatchSet {
    WatchSet::new()
}

pub fn reg_node(name: &str, addr: &str) -> RegisterRequest {
    RegisterRequest {
        node: name.into(),
        address: addr.into(),
        ..Default::default()
    }
}

pub fn r_service(req: &mut RegisterRequest, id: &str, name: &str, tags: &[&str], port: u16) {
    req.service = Some(NodeService {
        id: id.into(),
        service: name.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        port,
        ..Default::default()
    });
}

pub fn check(node: &str, id: &str, status: &str, service_id: &str) -> HealthCheck {
    HealthCheck {
        node: node.into(),
        check_id: id.into(),
        name: id.into(),
        status: status.into(),
        service_id: service_id.into(),
        ..Default::default()
    }
}

pub fn dereg(node: &str, service_id: &str, check_id: &str) -> Command {
    Command::deregister(DeregisterRequest {
        node: node.into(),
        service_id: service_id.into(),
        check_id: check_id.into(),
        ..Default::default()
    })
}

pub fn kv(verb: KvVerb, key: &str, val: Option<&str>) -> Command {
    Command::Kv(KvOp {
        verb,
        key: key.into(),
        value: val.map(|v| v.as_bytes().to_vec()),
        ..Default::default()
    })
}

pub fn kv_full(
    verb: KvVerb,
    key: &str,
    val: Option<&str>,
    index: u64,
    session: Option<&str>,
) -> Command {
    Command::Kv(KvOp {
        verb,
        key: key.into(),
        value: val.map(|v| v.as_bytes().to_vec()),
        flags: 0,
        index,
        session: session.map(str::to_owned),
    })
}

pub fn top(verb: &str, key: &str, val: Option<&str>, index: u64, session: &str) -> TxnKvOp {
    TxnKvOp {
        verb: verb.into(),
        key: key.into(),
        value: val.map(|v| v.as_bytes().to_vec()),
        flags: 0,
        index,
        session: session.into(),
    }
}

pub fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}
