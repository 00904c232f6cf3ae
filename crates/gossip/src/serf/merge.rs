//! Serf's merge delegate: the host's veto over members learned in a push/pull exchange.
//!
//! Consul uses it to refuse members of another datacenter and duplicate node IDs. Before a
//! remote state is merged, the check runs over each alive node in it (name and decoded
//! tags, plus our current members); one refusal refuses the whole exchange, so a join
//! through that peer fails with the reason.
//!
//! This module only decides; the driver runs it when an exchange completes and drops the
//! remote state on a refusal.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::membership::Member;
use super::messages::decode_tags;
use crate::wire::messages::{node_state, PushPull};

/// The check a [`MergeCheck`] runs: `(name, tags, our members)` → refuse with a reason.
pub type MergeFn =
    dyn Fn(&str, &BTreeMap<String, String>, &[Member]) -> Result<(), String> + Send + Sync;

/// Serf's merge delegate.
#[derive(Clone)]
pub struct MergeCheck(pub Arc<MergeFn>);

impl std::fmt::Debug for MergeCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MergeCheck")
    }
}

/// The reason a [`MergeCheck`] refused a remote state (shown as given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MergeRefused(pub String);

impl MergeCheck {
    /// Run the check over every alive node of a remote state; the first refusal wins.
    /// Unreadable tags count as none.
    pub fn check(&self, remote: &PushPull, ours: &[Member]) -> Result<(), MergeRefused> {
        for n in &remote.nodes {
            if n.state != node_state::ALIVE {
                continue;
            }
            let tags = decode_tags(&n.meta).unwrap_or_default();
            (self.0)(&n.name, &tags, ours).map_err(MergeRefused)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serf::messages::encode_tags;
    use crate::wire::messages::PushNodeState;

    fn node(name: &str, dc: &str, state: i64) -> PushNodeState {
        let mut tags = BTreeMap::new();
        tags.insert("dc".to_string(), dc.to_string());
        PushNodeState {
            name: name.into(),
            meta: encode_tags(&tags),
            state,
            ..PushNodeState::default()
        }
    }

    #[test]
    fn refuses_on_the_first_alive_node_the_delegate_rejects() {
        let check = MergeCheck(Arc::new(|name, tags, ours| {
            assert!(ours.is_empty());
            match tags.get("dc").map(String::as_str) {
                Some("dc1") => Ok(()),
                other => Err(format!(
                    "Member '{name}' part of wrong datacenter '{other:?}'"
                )),
            }
        }));
        let mut pp = PushPull {
            nodes: vec![
                node("a", "dc1", node_state::ALIVE),
                node("b", "dc2", node_state::DEAD),
            ],
            ..PushPull::default()
        };
        assert_eq!(check.check(&pp, &[]), Ok(()));
        pp.nodes.push(node("c", "dc2", node_state::ALIVE));
        let e = check.check(&pp, &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Member 'c' part of wrong datacenter 'Some(\"dc2\")'"
        );
    }
}
