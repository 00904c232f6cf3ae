//! ACL replication: a secondary datacenter's leader copies the primary's ACL state.
//!
//! With `primary_datacenter` naming another datacenter, the leader of this one asks the
//! primary (over the WAN, with the `replication` token, which needs `acl:read`) for its
//! policies, roles and — with `enable_token_replication` — global tokens ([`batch`]), every
//! [`EVERY`], and makes the local tables match through Raft: what is new or changed is set
//! with the primary's IDs and secrets, what the primary no longer has is deleted. Local
//! tokens (`Local: true`) are this datacenter's own and are left alone. Tokens then resolve
//! from the local tables, so a secondary keeps enforcing what it replicated while the primary
//! is unreachable. Progress is reported by `/v1/acl/replication` ([`Progress`]).

use std::collections::BTreeMap;
use std::time::Duration;

use proconsul_state::{AclCommand, AclPolicyRec, AclRoleRec, AclTokenRec, WatchSet};
use proconsul_types::{AclReplicate, AclReplicationBatch, AclReplicationStatus, RpcError};
use serde::{Deserialize, Serialize};

use crate::Server;

/// How often a secondary's leader replicates.
const EVERY: Duration = Duration::from_secs(2);

/// The records a batch carries.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Records {
    policies: Vec<AclPolicyRec>,
    roles: Vec<AclRoleRec>,
    /// `None`: tokens were not asked for.
    tokens: Option<Vec<AclTokenRec>>,
}

/// Replication as `/v1/acl/replication` reports it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress {
    pub running: bool,
    pub index: u64,
    pub last_success_ms: Option<u64>,
    pub last_error_ms: Option<u64>,
    pub last_error: String,
}

/// The primary's side: its ACL tables as records, global tokens only.
pub(crate) fn batch(server: &Server, tokens: bool) -> Result<AclReplicationBatch, RpcError> {
    let view = server.inner.store.view();
    let ws = &mut WatchSet::new();
    let (_, policies) = view.acl_policies(ws);
    let (_, roles) = view.acl_roles(ws);
    let tokens = tokens.then(|| {
        let (_, t) = view.acl_tokens(ws);
        t.into_iter().filter(|t| !t.local).collect()
    });
    let records = Records {
        policies,
        roles,
        tokens,
    };
    Ok(AclReplicationBatch {
        index: view.acl_index(),
        records: rmp_serde::to_vec_named(&records)
            .map_err(|e| RpcError::Internal(format!("encoding ACL records: {e}")))?,
    })
}

impl Server {
    /// `/v1/acl/replication` as this server sees it.
    pub fn acl_replication_status(&self) -> AclReplicationStatus {
        let cfg = self.acl_config();
        let p = self.inner.acl_replication.lock().unwrap().clone();
        let time = |ms: Option<u64>| {
            ms.map_or("0001-01-01T00:00:00Z".to_string(), |ms| {
                proconsul_types::time::rfc3339(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
                )
            })
        };
        let enabled = cfg.enabled && !cfg.primary_datacenter.is_empty();
        AclReplicationStatus {
            enabled,
            running: enabled && p.running,
            source_datacenter: cfg.primary_datacenter.clone(),
            replication_type: if !enabled {
                String::new()
            } else if cfg.enable_token_replication {
                "tokens".into()
            } else {
                "policies".into()
            },
            replicated_index: p.index,
            replicated_role_index: p.index,
            replicated_token_index: if cfg.enable_token_replication {
                p.index
            } else {
                0
            },
            last_success: time(p.last_success_ms),
            last_error: time(p.last_error_ms),
            last_error_message: p.last_error,
        }
    }
}

/// The leader's loop (for its term): replicate while this datacenter is a secondary.
pub(crate) async fn run(server: &Server) {
    let cfg = server.acl_config().clone();
    if !cfg.enabled || cfg.primary_datacenter.is_empty() {
        return;
    }
    server.inner.acl_replication.lock().unwrap().running = true;
    let _stop = scopeguard(server);
    loop {
        let now = server.inner.clock.now_ms();
        match once(server, &cfg).await {
            Ok(index) => {
                let mut p = server.inner.acl_replication.lock().unwrap();
                p.index = index;
                p.last_success_ms = Some(now);
            }
            Err(e) => {
                tracing::warn!(target: "agent.server", primary = %cfg.primary_datacenter, error = %e, "ACL replication failed");
                let mut p = server.inner.acl_replication.lock().unwrap();
                p.last_error_ms = Some(now);
                p.last_error = e.to_string();
            }
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// Marks replication as stopped when the term's loop ends (cancelled with the term).
fn scopeguard(server: &Server) -> impl Drop + '_ {
    struct Stop<'a>(&'a Server);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.inner.acl_replication.lock().unwrap().running = false;
        }
    }
    Stop(server)
}

/// One round: fetch the primary's state, apply the differences; the primary's index.
async fn once(server: &Server, cfg: &proconsul_types::AclConfig) -> Result<u64, RpcError> {
    let req = AclReplicate {
        datacenter: cfg.primary_datacenter.clone(),
        tokens: cfg.enable_token_replication,
    };
    let reply = server
        .call(
            proconsul_types::ServerCall::into_request(req),
            &cfg.tokens.replication,
            false,
        )
        .await?;
    let batch = <AclReplicate as proconsul_types::ServerCall>::from_reply(reply)?;
    let records: Records = rmp_serde::from_slice(&batch.records)
        .map_err(|e| RpcError::Internal(format!("decoding the primary's ACL records: {e}")))?;
    for cmd in differences(server, records) {
        server.propose_acl(cmd).await?;
    }
    Ok(batch.index)
}

/// What differs in content (not in local Raft indexes).
fn same_policy(a: &AclPolicyRec, b: &AclPolicyRec) -> bool {
    (&a.name, &a.description, &a.rules, &a.datacenters, &a.hash)
        == (&b.name, &b.description, &b.rules, &b.datacenters, &b.hash)
}

fn same_role(a: &AclRoleRec, b: &AclRoleRec) -> bool {
    (&a.name, &a.description, &a.grants, &a.hash) == (&b.name, &b.description, &b.grants, &b.hash)
}

fn same_token(a: &AclTokenRec, b: &AclTokenRec) -> bool {
    let strip = |t: &AclTokenRec| {
        let mut t = t.clone();
        t.create_index = 0;
        t.modify_index = 0;
        t
    };
    strip(a) == strip(b)
}

/// The commands that make the local tables match `primary`: deletions first (a renamed
/// policy must free its old name before another takes it), then sets.
fn differences(server: &Server, primary: Records) -> Vec<AclCommand> {
    let view = server.inner.store.view();
    let ws = &mut WatchSet::new();
    let mut out = Vec::new();
    let mut sets = Vec::new();

    let (_, local) = view.acl_policies(ws);
    let local: BTreeMap<String, AclPolicyRec> =
        local.into_iter().map(|p| (p.id.clone(), p)).collect();
    let theirs: BTreeMap<&str, &AclPolicyRec> = primary
        .policies
        .iter()
        .map(|p| (p.id.as_str(), p))
        .collect();
    for id in local.keys().filter(|id| !theirs.contains_key(id.as_str())) {
        out.push(AclCommand::PolicyDelete { id: id.clone() });
    }
    for p in &primary.policies {
        if !local.get(&p.id).is_some_and(|l| same_policy(l, p)) {
            sets.push(AclCommand::PolicySet(p.clone()));
        }
    }

    let (_, local) = view.acl_roles(ws);
    let local: BTreeMap<String, AclRoleRec> =
        local.into_iter().map(|r| (r.id.clone(), r)).collect();
    let theirs: BTreeMap<&str, &AclRoleRec> =
        primary.roles.iter().map(|r| (r.id.as_str(), r)).collect();
    for id in local.keys().filter(|id| !theirs.contains_key(id.as_str())) {
        out.push(AclCommand::RoleDelete { id: id.clone() });
    }
    for r in &primary.roles {
        if !local.get(&r.id).is_some_and(|l| same_role(l, r)) {
            sets.push(AclCommand::RoleSet(r.clone()));
        }
    }

    if let Some(tokens) = &primary.tokens {
        let (_, local) = view.acl_tokens(ws);
        let local: BTreeMap<String, AclTokenRec> = local
            .into_iter()
            .filter(|t| !t.local)
            .map(|t| (t.accessor_id.clone(), t))
            .collect();
        let theirs: BTreeMap<&str, &AclTokenRec> =
            tokens.iter().map(|t| (t.accessor_id.as_str(), t)).collect();
        let gone: Vec<String> = local
            .keys()
            .filter(|id| !theirs.contains_key(id.as_str()))
            .cloned()
            .collect();
        if !gone.is_empty() {
            out.push(AclCommand::TokenDelete { accessor_ids: gone });
        }
        for t in tokens {
            if !local.get(&t.accessor_id).is_some_and(|l| same_token(l, t)) {
                sets.push(AclCommand::TokenSet(t.clone()));
            }
        }
    }
    out.extend(sets);
    out
}
