//! Manual outage recovery with `<data-dir>/raft/peers.json` (Consul's procedure).
//!
//! When a datacenter has lost its quorum for good, the operator stops the surviving servers,
//! writes the same `peers.json` — a JSON array of `{"id", "address", "non_voter"}` naming the
//! survivors — into each one's `raft/` directory and starts them again. At start, before Raft
//! runs, the file replaces the server's Raft membership and is deleted.
//!
//! Like Consul, the first start on a data directory writes `peers.info` (what the file is for)
//! and deletes any `peers.json` found then: a leftover file from an old recovery is never
//! ingested by a server that did not know about it. See `docs/outage-recovery.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use crate::{raft_id_from_node_id, ServerError};

/// Largest `peers.json` read (a few hundred servers' worth).
const MAX_PEERS_FILE: u64 = 1 << 20;

const PEERS_INFO: &str = "\
As of proconsul's first start on this data directory, peers.json is no longer
read at every start: it is used once, for manual recovery after an outage.

peers.json, when present in this directory at start, replaces this server's
Raft configuration and is then deleted. It is a JSON array naming every server
that should remain, the same file on every remaining server:

[
  { \"id\": \"<node ID>\", \"address\": \"<ip>:8300\", \"non_voter\": false }
]

\"id\" is the server's node ID (the node-id file in its data directory) and
\"address\" its server RPC address. Only do this when the servers left out have
failed and will not come back with their old data: entries that were not yet
committed are committed by the recovery. See docs/outage-recovery.md.
";

/// One server in `peers.json` (hashicorp/raft's `ReadConfigJSON` shape).
#[derive(Debug, Deserialize)]
struct Peer {
    #[serde(default)]
    id: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    non_voter: bool,
}

/// The new membership: voters and learners, Raft id → RPC address.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Membership {
    pub voters: BTreeMap<u64, String>,
    pub learners: BTreeMap<u64, String>,
}

/// Parse and check `peers.json` (hashicorp/raft's `checkConfiguration` rules).
pub(crate) fn parse(bytes: &[u8]) -> Result<Membership, String> {
    let peers: Vec<Peer> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let mut voters = BTreeMap::new();
    let mut learners = BTreeMap::new();
    let mut ids = BTreeSet::new();
    let mut addresses = BTreeSet::new();
    for p in &peers {
        if p.id.trim().is_empty() {
            return Err(format!("empty ID in configuration: {:?}", p.address));
        }
        if p.address.trim().is_empty() {
            return Err(format!("empty address in configuration: {:?}", p.id));
        }
        if p.address.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "address {:?} of {:?} is not an ip:port",
                p.address, p.id
            ));
        }
        let raft_id = raft_id_from_node_id(&p.id);
        if !ids.insert(raft_id) {
            return Err(format!("found duplicate ID in configuration: {:?}", p.id));
        }
        if !addresses.insert(p.address.clone()) {
            return Err(format!(
                "found duplicate address in configuration: {:?}",
                p.address
            ));
        }
        let set = if p.non_voter {
            &mut learners
        } else {
            &mut voters
        };
        set.insert(raft_id, p.address.clone());
    }
    if voters.is_empty() {
        return Err("need at least one voter in configuration".into());
    }
    Ok(Membership { voters, learners })
}

/// Before Raft starts: write `peers.info` on a data directory's first start (deleting any
/// `peers.json` then), or apply and delete a `peers.json` an operator placed in `dir`.
pub(crate) fn apply_peers_json(dir: &Path, node_id: u64) -> Result<(), ServerError> {
    let io = |what: &str, e: std::io::Error| ServerError::Recovery(format!("{what}: {e}"));
    std::fs::create_dir_all(dir).map_err(|e| io("creating the raft directory", e))?;
    let peers = dir.join("peers.json");
    let info = dir.join("peers.info");
    if !info.exists() {
        std::fs::write(&info, PEERS_INFO).map_err(|e| io("failed to write peers.info file", e))?;
        if peers.exists() {
            std::fs::remove_file(&peers).map_err(|e| {
                io(
                    "failed to delete peers.json, please delete manually (see peers.info for details)",
                    e,
                )
            })?;
            tracing::info!(target: "agent.server", "deleted peers.json file (see peers.info for details)");
        }
        return Ok(());
    }
    if !peers.exists() {
        return Ok(());
    }
    tracing::info!(target: "agent.server", "found peers.json file, recovering Raft configuration...");
    let parse_err =
        |m: String| ServerError::Recovery(format!("recovery failed to parse peers.json: {m}"));
    let len = std::fs::metadata(&peers)
        .map_err(|e| parse_err(e.to_string()))?
        .len();
    if len > MAX_PEERS_FILE {
        return Err(parse_err(format!(
            "file of {len} bytes exceeds the {MAX_PEERS_FILE}-byte limit"
        )));
    }
    let bytes = std::fs::read(&peers).map_err(|e| parse_err(e.to_string()))?;
    let m = parse(&bytes).map_err(parse_err)?;
    let index = proconsul_raft::recover_membership(dir, node_id, m.voters, m.learners)
        .map_err(|e| ServerError::Recovery(format!("recovery failed: {e}")))?;
    tracing::info!(target: "agent.server", index, "raft configuration replaced from peers.json");
    std::fs::remove_file(&peers).map_err(|e| {
        io(
            "recovery failed to delete peers.json, please delete manually (see peers.info for details)",
            e,
        )
    })?;
    tracing::info!(target: "agent.server", "deleted peers.json file after successful recovery");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "adf4238a-882b-9ddc-4a9d-5b6758e4159e";
    const B: &str = "8b6dda82-3103-11e7-93ae-92361f002671";

    #[test]
    fn parses_consul_peers_json() {
        let m = parse(
            format!(
                r#"[{{"id":"{A}","address":"10.1.0.1:8300","non_voter":false}},
                    {{"id":"{B}","address":"10.1.0.2:8300","non_voter":true}}]"#
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            m.voters,
            BTreeMap::from([(raft_id_from_node_id(A), "10.1.0.1:8300".to_string())])
        );
        assert_eq!(
            m.learners,
            BTreeMap::from([(raft_id_from_node_id(B), "10.1.0.2:8300".to_string())])
        );
    }

    #[test]
    fn rejects_bad_configurations() {
        let cases = [
            ("{}", "invalid type"),
            ("[]", "need at least one voter"),
            (r#"[{"address":"10.1.0.1:8300"}]"#, "empty ID"),
            (&format!(r#"[{{"id":"{A}"}}]"#), "empty address"),
            (
                &format!(r#"[{{"id":"{A}","address":"somewhere"}}]"#),
                "not an ip:port",
            ),
            (
                &format!(
                    r#"[{{"id":"{A}","address":"10.1.0.1:8300"}},{{"id":"{A}","address":"10.1.0.2:8300"}}]"#
                ),
                "duplicate ID",
            ),
            (
                &format!(
                    r#"[{{"id":"{A}","address":"10.1.0.1:8300"}},{{"id":"{B}","address":"10.1.0.1:8300"}}]"#
                ),
                "duplicate address",
            ),
            (
                &format!(r#"[{{"id":"{A}","address":"10.1.0.1:8300","non_voter":true}}]"#),
                "need at least one voter",
            ),
        ];
        for (input, want) in cases {
            let e = parse(input.as_bytes()).unwrap_err();
            assert!(e.contains(want), "{input}: {e}");
        }
    }

    #[test]
    fn first_start_writes_info_and_drops_a_stale_file() {
        let dir = tempfile::tempdir().unwrap();
        let raft = dir.path().join("raft");
        std::fs::create_dir_all(&raft).unwrap();
        std::fs::write(raft.join("peers.json"), "[]").unwrap();
        apply_peers_json(&raft, 1).unwrap();
        assert!(raft.join("peers.info").exists());
        assert!(!raft.join("peers.json").exists());
        // Later starts read it; a bad one stops the start and stays for the operator to fix.
        std::fs::write(raft.join("peers.json"), "[]").unwrap();
        let e = apply_peers_json(&raft, 1).unwrap_err().to_string();
        assert!(
            e.starts_with("recovery failed to parse peers.json: need at least one voter"),
            "{e}"
        );
        assert!(raft.join("peers.json").exists());
    }
}
