//! Entry points for the fuzz targets (`fuzz/`), not an API: the decoders of the bytes this
//! crate takes from peers and from disk, run exactly as the node runs them, so a fuzz target
//! reaches them without a running node.

use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::EntryPayload;
use proconsul_state::Proposal;

use crate::network::RpcKind;
use crate::types::{decode, TypeConfig};

/// Decode a Raft RPC body as [`crate::RaftNode::handle_rpc`] does before handing it to
/// openraft; for AppendEntries, the proposals it carries (what a follower would apply).
pub fn decode_rpc_request(kind: RpcKind, body: &[u8]) -> Result<Vec<Proposal>, String> {
    let bad = |e: rmp_serde::decode::Error| format!("bad {kind:?} request: {e}");
    match kind {
        RpcKind::AppendEntries => {
            let req: AppendEntriesRequest<TypeConfig> = decode(body).map_err(bad)?;
            Ok(req
                .entries
                .into_iter()
                .filter_map(|e| match e.payload {
                    EntryPayload::Normal(r) => Some((*r.0).clone()),
                    _ => None,
                })
                .collect())
        }
        RpcKind::Vote => decode::<VoteRequest<u64>>(body)
            .map(|_| Vec::new())
            .map_err(bad),
        RpcKind::InstallSnapshot => decode::<InstallSnapshotRequest<TypeConfig>>(body)
            .map(|_| Vec::new())
            .map_err(bad),
    }
}

/// Decode one record of the redb log as the log store reads it; its proposal, if it has one.
pub fn decode_log_entry(bytes: &[u8]) -> Result<Option<Proposal>, String> {
    let e = crate::log_store::decode_entry(0, bytes).map_err(|e| e.to_string())?;
    Ok(match e.payload {
        EntryPayload::Normal(r) => Some((*r.0).clone()),
        _ => None,
    })
}

/// Read a snapshot file (`snapshots/current.snap`) as a node does on boot: the state bytes it
/// holds, which the node then restores into its state machine.
pub fn decode_snapshot_file(bytes: &[u8]) -> Result<Vec<u8>, String> {
    crate::state_machine::parse_snapshot_file(std::path::Path::new("current.snap"), bytes)
        .map(|env| env.data.0)
        .map_err(|e| e.to_string())
}

/// Seed inputs for the targets above, made by the real encoders: a redb log record holding
/// `proposal` at `index`.
pub fn encode_log_entry(index: u64, proposal: Proposal) -> Vec<u8> {
    crate::types::encode(&entry(index, proposal)).expect("a log entry always encodes")
}

/// A seed AppendEntries body carrying `proposals` (indexes from 1, term 1).
pub fn encode_append_entries(proposals: Vec<Proposal>) -> Vec<u8> {
    let req = AppendEntriesRequest::<TypeConfig> {
        vote: openraft::Vote::new_committed(1, 1),
        prev_log_id: None,
        leader_commit: None,
        entries: proposals
            .into_iter()
            .enumerate()
            .map(|(i, p)| entry(i as u64 + 1, p))
            .collect(),
    };
    crate::types::encode(&req).expect("a request always encodes")
}

/// A seed snapshot file holding `data`, written by the node's own writer into `dir`; its bytes.
pub fn write_snapshot_file(dir: &std::path::Path, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let meta = openraft::SnapshotMeta {
        last_log_id: Some(openraft::LogId::new(
            openraft::CommittedLeaderId::new(1, 1),
            1,
        )),
        last_membership: Default::default(),
        snapshot_id: "1-1-0".to_string(),
    };
    crate::state_machine::write_snapshot_file(dir, &meta, data)?;
    std::fs::read(dir.join("current.snap"))
}

fn entry(index: u64, proposal: Proposal) -> crate::types::Entry {
    openraft::Entry {
        log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(crate::types::Request(std::sync::Arc::new(proposal))),
    }
}
