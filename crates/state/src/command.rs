//! The Raft log's entries: proconsul's own structs, versioned, never API shapes.
//!
//! Entries are persisted in the Raft log and replayed on every server, possibly by a newer
//! binary, so the encoding is a contract: variant and field names are stable serde tags.
//! Never rename or repurpose a tag; add a new variant for new meaning. Everything
//! time-dependent travels inside the entry (`at_ms`), decided once by the proposer, so every
//! replica computes the same state.
//!
//! The payloads are the store's own records ([`crate::records`], the snapshot format) and
//! small structs defined here, so a change to an API struct in `proconsul-types` (a renamed
//! JSON field, a new option) never changes what is in the log. Values are bytes (msgpack
//! `bin`), never base64. API requests become entries at the edge: [`Command::register`],
//! [`Command::deregister`], [`Command::txn`], [`Command::session_create`].
//!
//! On disk and on the wire an entry is `{"v": 2, "at_ms": …, "command": …}`
//! ([`Proposal::encode`]). Entries without `v` were written by builds before the typed log
//! (version 1, API structs inside) and are converted when read ([`crate::legacy`]); an entry
//! of an unknown version, or one that does not decode, is an error the server must stop on.

use serde::{Deserialize, Serialize};

use proconsul_types::{
    DeregisterRequest, RegisterRequest, SessionEntry, TxnError, TxnKvOp, TxnResult,
};

use crate::error::StateError;
use crate::records::{CheckRec, NodeRec, ServiceRec, SessionRec};

/// The log entry format this build writes.
pub const LOG_ENTRY_VERSION: u8 = 2;

/// One committed log entry's payload.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Proposal {
    /// Unix milliseconds chosen by the proposer (lock-delay deadlines are computed from it).
    pub at_ms: u64,
    pub command: Command,
}

/// The persisted form of a [`Proposal`]: the version first.
#[derive(Serialize)]
struct Versioned<'a> {
    v: u8,
    at_ms: u64,
    command: &'a Command,
}

#[derive(Deserialize)]
struct VersionedOwned {
    v: u8,
    at_ms: u64,
    command: Command,
}

/// Only the version of an encoded entry (absent in version 1).
#[derive(Deserialize)]
struct VersionProbe {
    #[serde(default)]
    v: u8,
}

/// Why an encoded log entry could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot decode raft log entry (version {version}): {source}")]
    Malformed {
        version: u8,
        #[source]
        source: rmp_serde::decode::Error,
    },
    #[error(
        "raft log entry version {0} is newer than this build understands ({LOG_ENTRY_VERSION})"
    )]
    UnknownVersion(u8),
}

impl Proposal {
    pub fn new(at_ms: u64, command: Command) -> Self {
        Proposal { at_ms, command }
    }

    /// The bytes written to the log and sent to followers (msgpack map form).
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(&Versioned {
            v: LOG_ENTRY_VERSION,
            at_ms: self.at_ms,
            command: &self.command,
        })
        .expect("a log entry always encodes")
    }

    /// Read an entry of any version this build knows.
    pub fn decode(bytes: &[u8]) -> Result<Proposal, DecodeError> {
        let malformed = |version| move |source| DecodeError::Malformed { version, source };
        let VersionProbe { v } = rmp_serde::from_slice(bytes).map_err(malformed(0))?;
        match v {
            0 | 1 => crate::legacy::decode_v1(bytes).map_err(malformed(1)),
            LOG_ENTRY_VERSION => {
                let e: VersionedOwned = rmp_serde::from_slice(bytes).map_err(malformed(v))?;
                debug_assert_eq!(e.v, LOG_ENTRY_VERSION);
                Ok(Proposal {
                    at_ms: e.at_ms,
                    command: e.command,
                })
            }
            other => Err(DecodeError::UnknownVersion(other)),
        }
    }
}

/// A state change. Externally tagged with explicit, stable names.
///
/// `Register` is much larger than the rest; it is left unboxed because a command is built once
/// and moved into the log, so the size costs nothing measurable and the variants stay plain.
#[allow(clippy::large_enum_variant)]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Command {
    /// Upsert a node and optionally one service and its checks (Consul `EnsureRegistration`).
    #[serde(rename = "register")]
    Register(Registration),
    /// Remove a whole node, or one service (+ its checks), or one check.
    #[serde(rename = "deregister")]
    Deregister(Deregistration),
    /// One KV operation (`PUT`/`DELETE /v1/kv/...`).
    #[serde(rename = "kv")]
    Kv(KvOp),
    /// An all-or-nothing KV transaction (`PUT /v1/txn`).
    #[serde(rename = "txn")]
    Txn(Vec<TxnOp>),
    /// An all-or-nothing transaction with catalog and session operations too. (KV-only
    /// transactions are still proposed as `Txn`, which servers of every version read.)
    #[serde(rename = "txn_steps")]
    TxnSteps(Vec<TxnStep>),
    /// Create a session whose ID the proposer already chose.
    #[serde(rename = "session_create")]
    SessionCreate(NewSession),
    /// Destroy a session, releasing or deleting its locks per its behavior.
    #[serde(rename = "session_destroy")]
    SessionDestroy { id: String },
    /// Forget KV tombstones with index `<= up_to_index`.
    #[serde(rename = "tombstone_reap")]
    TombstoneReap { up_to_index: u64 },
    /// Upsert LAN coordinates (Consul's `CoordinateBatchUpdate`). Updates for nodes the
    /// catalog does not hold, and invalid ones, are skipped: coordinates are cleaned up with
    /// their node, so one for an unknown node would never go away.
    #[serde(rename = "coordinate_batch_update")]
    CoordinateBatchUpdate(Vec<CoordinateUpdate>),
    /// Replace the whole state with a snapshot (`PUT /v1/snapshot`); `state` is a
    /// [`Store::dump`](crate::Store::dump). Applied at its log index, so indexes stay monotonic.
    #[serde(rename = "restore")]
    Restore {
        #[serde(with = "serde_bytes", default)]
        state: Option<Vec<u8>>,
    },
    /// A change to the ACL tables.
    #[serde(rename = "acl")]
    Acl(crate::acl::AclCommand),
    /// Store autopilot's configuration; with `cas`, only if the stored `ModifyIndex` equals it.
    #[serde(rename = "autopilot_set_config")]
    AutopilotSetConfig {
        config: crate::AutopilotConfig,
        #[serde(default)]
        cas: Option<u64>,
    },
    /// A change to the prepared-query table (IDs chosen by the proposer).
    #[serde(rename = "prepared_query")]
    PreparedQuery(crate::PreparedQueryCommand),
}

impl Command {
    /// A catalog registration (`Catalog.Register`, anti-entropy, the leader's reconcile).
    pub fn register(req: RegisterRequest) -> Command {
        Command::Register(Registration::from_api(&req))
    }

    /// A catalog deregistration.
    pub fn deregister(req: DeregisterRequest) -> Command {
        Command::Deregister(Deregistration {
            node: req.node,
            service_id: req.service_id,
            check_id: req.check_id,
        })
    }

    /// A KV transaction.
    pub fn txn(ops: Vec<TxnKvOp>) -> Command {
        Command::Txn(ops.into_iter().map(TxnOp::from_api).collect())
    }

    /// A session whose ID the proposer has chosen.
    pub fn session_create(s: SessionEntry) -> Command {
        Command::SessionCreate(NewSession(SessionRec::from_api(&s)))
    }
}

/// One operation of a [`Command::TxnSteps`] transaction (its records are the store's own).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(transparent)]
pub struct TxnStep(pub(crate) Step);

#[allow(clippy::large_enum_variant)]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub(crate) enum Step {
    #[serde(rename = "kv")]
    Kv(TxnOp),
    /// `cas` and `delete-cas` compare `node.modify_index`.
    #[serde(rename = "node")]
    Node { verb: CatalogVerb, node: NodeRec },
    /// A service on the node `node`; `cas`/`delete-cas` compare `service.modify_index`.
    #[serde(rename = "service")]
    Service {
        verb: CatalogVerb,
        node: String,
        service: ServiceRec,
    },
    #[serde(rename = "check")]
    Check { verb: CatalogVerb, check: CheckRec },
    /// Destroy a session (the only session verb, `delete`).
    #[serde(rename = "session_delete")]
    SessionDelete { id: String },
}

/// The verb of a node, service or check step (Consul's `api.NodeOp`, `ServiceOp`, `CheckOp`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum CatalogVerb {
    #[serde(rename = "set")]
    Set,
    #[serde(rename = "cas")]
    Cas,
    #[serde(rename = "get")]
    Get,
    #[serde(rename = "delete")]
    Delete,
    #[serde(rename = "delete-cas")]
    DeleteCas,
    /// Refused at apply with Consul's message, so a proposal never fails to decode.
    #[serde(untagged)]
    Unknown(String),
}

impl CatalogVerb {
    pub fn parse(verb: &str) -> CatalogVerb {
        match verb {
            "set" => CatalogVerb::Set,
            "cas" => CatalogVerb::Cas,
            "get" => CatalogVerb::Get,
            "delete" => CatalogVerb::Delete,
            "delete-cas" => CatalogVerb::DeleteCas,
            other => CatalogVerb::Unknown(other.to_string()),
        }
    }
}

impl TxnStep {
    /// A transaction operation as the API gives it; `None` when it holds no operation.
    pub fn from_api(op: proconsul_types::TxnOp) -> Option<TxnStep> {
        Step::from_api(op).map(TxnStep)
    }

    /// Is this a KV operation (which the older `Command::Txn` can carry)?
    pub fn is_kv(&self) -> bool {
        matches!(self.0, Step::Kv(_))
    }
}

impl Step {
    fn from_api(op: proconsul_types::TxnOp) -> Option<Step> {
        if let Some(kv) = op.kv {
            return Some(Step::Kv(TxnOp::from_api(kv)));
        }
        if let Some(n) = op.node {
            return Some(Step::Node {
                verb: CatalogVerb::parse(&n.verb),
                node: NodeRec::from_api(&n.node),
            });
        }
        if let Some(s) = op.service {
            let mut service = ServiceRec::from_api(&s.node, &s.service);
            service.modify_index = s.service.modify_index;
            return Some(Step::Service {
                verb: CatalogVerb::parse(&s.verb),
                node: s.node,
                service,
            });
        }
        if let Some(c) = op.check {
            let mut check = CheckRec::from_api(&c.check);
            check.modify_index = c.check.modify_index;
            return Some(Step::Check {
                verb: CatalogVerb::parse(&c.verb),
                check,
            });
        }
        op.session.map(|s| Step::SessionDelete { id: s.session.id })
    }
}

impl From<RegisterRequest> for Command {
    fn from(req: RegisterRequest) -> Command {
        Command::register(req)
    }
}

impl From<DeregisterRequest> for Command {
    fn from(req: DeregisterRequest) -> Command {
        Command::deregister(req)
    }
}

/// A node, and optionally one service and checks on it, as [`Command::Register`] carries them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Registration {
    pub(crate) node: NodeRec,
    /// Leave an existing node entry as it is (Consul's `SkipNodeUpdate`).
    #[serde(default)]
    pub(crate) skip_node_update: bool,
    #[serde(default)]
    pub(crate) service: Option<ServiceRec>,
    #[serde(default)]
    pub(crate) checks: Vec<CheckRec>,
}

impl Registration {
    pub(crate) fn from_api(req: &RegisterRequest) -> Registration {
        Registration {
            node: NodeRec::from_register(req),
            skip_node_update: req.skip_node_update,
            service: req
                .service
                .as_ref()
                .map(|svc| ServiceRec::from_api(&req.node, svc)),
            checks: req
                .check
                .iter()
                .chain(req.checks.iter())
                .map(CheckRec::from_api)
                .collect(),
        }
    }
}

/// What [`Command::Deregister`] removes: the node, or one service or check on it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Deregistration {
    pub node: String,
    /// Non-empty: remove this service (and its checks) only.
    #[serde(default)]
    pub service_id: String,
    /// Non-empty (and no service): remove this check only.
    #[serde(default)]
    pub check_id: String,
}

/// A session to create ([`Command::SessionCreate`]).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(transparent)]
pub struct NewSession(pub(crate) SessionRec);

/// One operation of a KV transaction.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnOp {
    pub verb: TxnVerb,
    pub key: String,
    #[serde(with = "serde_bytes", default)]
    pub value: Option<Vec<u8>>,
    #[serde(default)]
    pub flags: u64,
    /// The index `cas`, `delete-cas` and `check-index` compare with.
    #[serde(default)]
    pub index: u64,
    /// The session `lock`, `unlock` and `check-session` name (empty: none).
    #[serde(default)]
    pub session: String,
}

impl TxnOp {
    pub fn from_api(op: TxnKvOp) -> TxnOp {
        TxnOp {
            verb: TxnVerb::parse(&op.verb),
            key: op.key,
            value: op.value,
            flags: op.flags,
            index: op.index,
            session: op.session,
        }
    }
}

/// The verb of a [`TxnOp`] (Consul's `api.KVOp`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub enum TxnVerb {
    #[default]
    #[serde(rename = "set")]
    Set,
    #[serde(rename = "cas")]
    Cas,
    #[serde(rename = "lock")]
    Lock,
    #[serde(rename = "unlock")]
    Unlock,
    #[serde(rename = "get")]
    Get,
    #[serde(rename = "get-tree")]
    GetTree,
    #[serde(rename = "check-session")]
    CheckSession,
    #[serde(rename = "check-index")]
    CheckIndex,
    #[serde(rename = "check-not-exists")]
    CheckNotExists,
    #[serde(rename = "delete")]
    Delete,
    #[serde(rename = "delete-cas")]
    DeleteCas,
    #[serde(rename = "delete-tree")]
    DeleteTree,
    /// A verb Consul does not know: the transaction fails with `unknown KV verb` when applied,
    /// as Consul's does.
    #[serde(rename = "unknown")]
    Unknown(String),
}

impl TxnVerb {
    /// Consul's verb names (the serde tags above, so the two cannot disagree).
    pub fn parse(verb: &str) -> TxnVerb {
        use serde::de::IntoDeserializer;
        let name: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
            verb.into_deserializer();
        match TxnVerb::deserialize(name) {
            Ok(TxnVerb::Unknown(_)) | Err(_) => TxnVerb::Unknown(verb.to_string()),
            Ok(known) => known,
        }
    }
}

/// One node's coordinate in one network segment (`""` is the default segment); lengths in
/// seconds. Also the stored row.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CoordinateUpdate {
    pub node: String,
    #[serde(default)]
    pub segment: String,
    pub vec: Vec<f64>,
    pub error: f64,
    pub adjustment: f64,
    pub height: f64,
}

impl CoordinateUpdate {
    /// No NaN or infinity (serf's `IsValid`).
    pub fn is_valid(&self) -> bool {
        self.vec.iter().all(|x| x.is_finite())
            && self.error.is_finite()
            && self.adjustment.is_finite()
            && self.height.is_finite()
    }
}

/// One KV operation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct KvOp {
    pub verb: KvVerb,
    pub key: String,
    #[serde(with = "serde_bytes", default)]
    pub value: Option<Vec<u8>>,
    #[serde(default)]
    pub flags: u64,
    /// The expected `ModifyIndex` for `Cas`/`DeleteCas` (0 = "must not exist" for `Cas`).
    #[serde(default)]
    pub index: u64,
    #[serde(default)]
    pub session: Option<String>,
}

/// The verb of a [`KvOp`].
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KvVerb {
    #[default]
    #[serde(rename = "set")]
    Set,
    #[serde(rename = "cas")]
    Cas,
    #[serde(rename = "lock")]
    Lock,
    #[serde(rename = "unlock")]
    Unlock,
    #[serde(rename = "delete")]
    Delete,
    #[serde(rename = "delete_cas")]
    DeleteCas,
    #[serde(rename = "delete_tree")]
    DeleteTree,
}

/// What applying an entry produced, returned to the proposer.
#[derive(Clone, Debug, PartialEq)]
pub enum ApplyResult {
    /// Register/deregister/session/reap succeeded.
    Ok,
    /// A KV operation: `false` when a CAS index mismatched or a lock is held by someone else.
    Bool(bool),
    /// A transaction: its results, or the errors that rolled it back.
    Txn(Result<Vec<TxnResult>, Vec<TxnError>>),
    /// The command was rejected; nothing changed.
    Err(StateError),
}

impl ApplyResult {
    /// Did the command fail (and so change nothing)?
    pub fn is_err(&self) -> bool {
        matches!(self, ApplyResult::Err(_) | ApplyResult::Txn(Err(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proconsul_types::{HealthCheck, NodeService};
    use serde::Serialize;

    fn every_kind() -> Vec<Command> {
        vec![
            Command::register(RegisterRequest {
                node: "n1".into(),
                address: "10.0.0.1".into(),
                service: Some(NodeService {
                    service: "web".into(),
                    port: 80,
                    ..Default::default()
                }),
                checks: vec![HealthCheck {
                    check_id: "c".into(),
                    status: "passing".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            Command::deregister(DeregisterRequest {
                node: "n1".into(),
                service_id: "web".into(),
                ..Default::default()
            }),
            Command::Kv(KvOp {
                verb: KvVerb::Set,
                key: "k".into(),
                value: Some(vec![0, 1, 255]),
                ..Default::default()
            }),
            Command::txn(vec![
                TxnKvOp {
                    verb: "set".into(),
                    key: "a".into(),
                    value: Some(b"x".to_vec()),
                    ..Default::default()
                },
                TxnKvOp {
                    verb: "frobnicate".into(),
                    ..Default::default()
                },
            ]),
            Command::session_create(SessionEntry {
                id: "s".into(),
                node: "n1".into(),
                ..Default::default()
            }),
            Command::SessionDestroy { id: "s".into() },
            Command::TombstoneReap { up_to_index: 9 },
            Command::Restore {
                state: Some(vec![1, 2]),
            },
            Command::Acl(crate::acl::AclCommand::TokenDelete {
                accessor_ids: vec!["a".into()],
            }),
            Command::Acl(crate::acl::AclCommand::PolicySet(
                crate::acl::AclPolicyRec {
                    id: "p".into(),
                    name: "n".into(),
                    description: String::new(),
                    rules: "operator = \"read\"".into(),
                    datacenters: vec!["dc1".into()],
                    hash: vec![0, 255],
                    create_index: 0,
                    modify_index: 0,
                },
            )),
            Command::PreparedQuery(crate::PreparedQueryCommand::Set(crate::PreparedQueryRec {
                id: "q".into(),
                name: "web".into(),
                service: "web".into(),
                failover_datacenters: vec!["dc2".into()],
                ..Default::default()
            })),
            Command::PreparedQuery(crate::PreparedQueryCommand::Delete { id: "q".into() }),
        ]
    }

    #[test]
    fn every_kind_round_trips_as_version_2() {
        for command in every_kind() {
            let p = Proposal::new(123, command);
            let bytes = p.encode();
            assert_eq!(Proposal::decode(&bytes).unwrap(), p);
        }
    }

    #[test]
    fn values_are_msgpack_bin_not_base64_or_arrays() {
        let p = Proposal::new(
            0,
            Command::txn(vec![TxnKvOp {
                verb: "set".into(),
                key: "a".into(),
                value: Some(b"\x00\x01\x02".to_vec()),
                ..Default::default()
            }]),
        );
        let bytes = p.encode();
        // bin8 marker, length 3, the bytes themselves.
        assert!(
            bytes.windows(5).any(|w| w == [0xc4, 3, 0, 1, 2]),
            "{bytes:x?}"
        );
    }

    /// The version 1 shape: API structs inside, no `v`.
    #[derive(Serialize)]
    struct ProposalV1 {
        at_ms: u64,
        command: CommandV1,
    }

    #[allow(clippy::large_enum_variant)]
    #[derive(Serialize)]
    enum CommandV1 {
        #[serde(rename = "register")]
        Register(RegisterRequest),
        #[serde(rename = "txn")]
        Txn(Vec<TxnKvOp>),
    }

    #[test]
    fn version_1_entries_become_todays_commands() {
        let req = RegisterRequest {
            node: "n1".into(),
            address: "10.0.0.1".into(),
            ..Default::default()
        };
        let v1 = rmp_serde::to_vec_named(&ProposalV1 {
            at_ms: 7,
            command: CommandV1::Register(req.clone()),
        })
        .unwrap();
        assert_eq!(
            Proposal::decode(&v1).unwrap(),
            Proposal::new(7, Command::register(req))
        );
        let op = TxnKvOp {
            verb: "cas".into(),
            key: "k".into(),
            value: Some(b"v".to_vec()),
            index: 4,
            ..Default::default()
        };
        let v1 = rmp_serde::to_vec_named(&ProposalV1 {
            at_ms: 8,
            command: CommandV1::Txn(vec![op.clone()]),
        })
        .unwrap();
        let decoded = Proposal::decode(&v1).unwrap();
        assert_eq!(decoded, Proposal::new(8, Command::txn(vec![op])));
        let Command::Txn(ops) = decoded.command else {
            panic!("not a txn")
        };
        assert_eq!(ops[0].verb, TxnVerb::Cas);
        assert_eq!(ops[0].value.as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn txn_verbs_parse_by_consul_name() {
        assert_eq!(TxnVerb::parse("set"), TxnVerb::Set);
        assert_eq!(TxnVerb::parse("get-tree"), TxnVerb::GetTree);
        assert_eq!(TxnVerb::parse("check-not-exists"), TxnVerb::CheckNotExists);
        assert_eq!(TxnVerb::parse("delete-cas"), TxnVerb::DeleteCas);
        assert_eq!(
            TxnVerb::parse("unknown"),
            TxnVerb::Unknown("unknown".into())
        );
        assert_eq!(TxnVerb::parse("SET"), TxnVerb::Unknown("SET".into()));
    }

    #[test]
    fn unknown_versions_and_garbage_are_errors() {
        #[derive(Serialize)]
        struct Future {
            v: u8,
            at_ms: u64,
        }
        let bytes = rmp_serde::to_vec_named(&Future { v: 3, at_ms: 0 }).unwrap();
        assert!(matches!(
            Proposal::decode(&bytes),
            Err(DecodeError::UnknownVersion(3))
        ));
        assert!(Proposal::decode(b"\xc1garbage").is_err());
        assert!(Proposal::decode(&[]).is_err());
    }

    #[test]
    fn catalog_transactions_round_trip_through_the_log() {
        let op = |json: &str| -> proconsul_types::TxnOp { serde_json::from_str(json).unwrap() };
        let steps: Vec<TxnStep> = [
            op(r#"{"Node": {"Verb": "cas", "Node": {"Node": "n", "ModifyIndex": 7}}}"#),
            op(r#"{"Service": {"Verb": "set", "Node": "n", "Service": {"ID": "s", "Service": "s"}}}"#),
            op(r#"{"Check": {"Verb": "frob", "Check": {"Node": "n", "CheckID": "c"}}}"#),
            op(r#"{"Session": {"Verb": "delete", "Session": {"ID": "abc"}}}"#),
            op(r#"{"KV": {"Verb": "get", "Key": "k"}}"#),
        ]
        .into_iter()
        .filter_map(TxnStep::from_api)
        .collect();
        assert_eq!(steps.len(), 5);
        let p = Proposal {
            at_ms: 1,
            command: Command::TxnSteps(steps),
        };
        let back = Proposal::decode(&p.encode()).unwrap();
        assert_eq!(back, p);
        let Command::TxnSteps(steps) = back.command else {
            panic!()
        };
        assert!(
            matches!(&steps[0].0, Step::Node { verb: CatalogVerb::Cas, node } if node.modify_index == 7)
        );
        assert!(
            matches!(&steps[2].0, Step::Check { verb: CatalogVerb::Unknown(v), .. } if v == "frob")
        );
        assert!(steps[4].is_kv());
    }
}
