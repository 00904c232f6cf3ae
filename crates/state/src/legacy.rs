//! Reading log entries written before the typed log (version 1).
//!
//! Version 1 entries were `{"at_ms": …, "command": …}` with API structs of
//! `proconsul-types` inside (`RegisterRequest`, `DeregisterRequest`, `TxnKvOp` with base64
//! values, `SessionEntry`). They still sit in the logs of servers upgraded from such a build,
//! so they are decoded here, with those API structs, and converted to today's [`Command`]. This
//! module is frozen: nothing writes version 1, and it changes only if an API struct it names
//! changes shape (the legacy-data fixture test catches that).

use serde::Deserialize;

use proconsul_types::{DeregisterRequest, RegisterRequest, SessionEntry, TxnKvOp};

use crate::command::{Command, CoordinateUpdate, KvOp, Proposal};

#[derive(Deserialize)]
struct ProposalV1 {
    at_ms: u64,
    command: CommandV1,
}

#[allow(clippy::large_enum_variant)]
#[derive(Deserialize)]
enum CommandV1 {
    #[serde(rename = "register")]
    Register(RegisterRequest),
    #[serde(rename = "deregister")]
    Deregister(DeregisterRequest),
    #[serde(rename = "kv")]
    Kv(KvOp),
    #[serde(rename = "txn")]
    Txn(Vec<TxnKvOp>),
    #[serde(rename = "session_create")]
    SessionCreate(SessionEntry),
    #[serde(rename = "session_destroy")]
    SessionDestroy { id: String },
    #[serde(rename = "tombstone_reap")]
    TombstoneReap { up_to_index: u64 },
    #[serde(rename = "coordinate_batch_update")]
    CoordinateBatchUpdate(Vec<CoordinateUpdate>),
    #[serde(rename = "restore")]
    Restore {
        #[serde(with = "serde_bytes", default)]
        state: Option<Vec<u8>>,
    },
    #[serde(rename = "autopilot_set_config")]
    AutopilotSetConfig {
        config: crate::AutopilotConfig,
        #[serde(default)]
        cas: Option<u64>,
    },
}

/// Decode a version 1 entry into today's form.
pub(crate) fn decode_v1(bytes: &[u8]) -> Result<Proposal, rmp_serde::decode::Error> {
    let p: ProposalV1 = rmp_serde::from_slice(bytes)?;
    let command = match p.command {
        CommandV1::Register(r) => Command::register(r),
        CommandV1::Deregister(d) => Command::deregister(d),
        CommandV1::Kv(op) => Command::Kv(op),
        CommandV1::Txn(ops) => Command::txn(ops),
        CommandV1::SessionCreate(s) => Command::session_create(s),
        CommandV1::SessionDestroy { id } => Command::SessionDestroy { id },
        CommandV1::TombstoneReap { up_to_index } => Command::TombstoneReap { up_to_index },
        CommandV1::CoordinateBatchUpdate(u) => Command::CoordinateBatchUpdate(u),
        CommandV1::Restore { state } => Command::Restore { state },
        CommandV1::AutopilotSetConfig { config, cas } => {
            Command::AutopilotSetConfig { config, cas }
        }
    };
    Ok(Proposal {
        at_ms: p.at_ms,
        command,
    })
}
