//! Autopilot's configuration: one record, written through Raft so every server applies the same
//! settings (Consul's `autopilot-config` table).
//!
//! Durations are stored as nanoseconds, parsed and validated by the proposer; apply only
//! compares indexes. A check-and-set against a configuration that was never written compares
//! with index 0, so the leader's first write (and `?cas=0`) succeeds exactly once.

use serde::{Deserialize, Serialize};

use crate::command::ApplyResult;
use crate::store::Tx;
use crate::view::View;

/// The stored autopilot configuration.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AutopilotConfig {
    pub cleanup_dead_servers: bool,
    pub last_contact_threshold_ns: u64,
    pub max_trailing_logs: u64,
    pub min_quorum: u64,
    pub server_stabilization_time_ns: u64,
    #[serde(default)]
    pub redundancy_zone_tag: String,
    #[serde(default)]
    pub disable_upgrade_migration: bool,
    #[serde(default)]
    pub upgrade_version_tag: String,
    /// Set by apply.
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
}

impl Default for AutopilotConfig {
    /// Consul's defaults.
    fn default() -> Self {
        AutopilotConfig {
            cleanup_dead_servers: true,
            last_contact_threshold_ns: 200_000_000,
            max_trailing_logs: 250,
            min_quorum: 0,
            server_stabilization_time_ns: 10_000_000_000,
            redundancy_zone_tag: String::new(),
            disable_upgrade_migration: false,
            upgrade_version_tag: String::new(),
            create_index: 0,
            modify_index: 0,
        }
    }
}

impl Tx {
    /// Store `config`; with `cas`, only if the stored configuration's `ModifyIndex` equals it
    /// (0 when none was ever stored). `Bool(false)` when the check fails.
    pub(crate) fn autopilot_set(
        &mut self,
        config: &AutopilotConfig,
        cas: Option<u64>,
    ) -> ApplyResult {
        let existing = self.s.autopilot.as_ref();
        if let Some(cidx) = cas {
            if existing.map(|e| e.modify_index).unwrap_or(0) != cidx {
                return ApplyResult::Bool(false);
            }
        }
        let mut c = config.clone();
        c.create_index = existing.map(|e| e.create_index).unwrap_or(self.idx);
        c.modify_index = self.idx;
        self.s.autopilot = Some(c);
        self.bump("autopilot-config");
        ApplyResult::Bool(true)
    }
}

impl View {
    /// The stored configuration, if the leader (or an operator) ever wrote one.
    pub fn autopilot_config(&self) -> Option<AutopilotConfig> {
        self.state().autopilot.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ApplyResult, Command, Proposal, Store};

    fn set(store: &Store, idx: u64, c: &AutopilotConfig, cas: Option<u64>) -> ApplyResult {
        let cmd = Command::AutopilotSetConfig {
            config: c.clone(),
            cas,
        };
        store.apply(idx, &Proposal::new(0, cmd))
    }

    #[test]
    fn set_cas_and_snapshot() {
        let store = Store::new();
        assert_eq!(store.view().autopilot_config(), None);
        let mut c = AutopilotConfig::default();
        // CAS against a configuration never written compares with 0.
        assert_eq!(set(&store, 5, &c, Some(3)), ApplyResult::Bool(false));
        assert_eq!(store.view().autopilot_config(), None);
        assert_eq!(set(&store, 6, &c, Some(0)), ApplyResult::Bool(true));
        let got = store.view().autopilot_config().unwrap();
        assert_eq!((got.create_index, got.modify_index), (6, 6));

        c.cleanup_dead_servers = false;
        assert_eq!(set(&store, 7, &c, Some(5)), ApplyResult::Bool(false));
        assert!(
            store
                .view()
                .autopilot_config()
                .unwrap()
                .cleanup_dead_servers
        );
        assert_eq!(set(&store, 8, &c, Some(6)), ApplyResult::Bool(true));
        c.min_quorum = 3;
        assert_eq!(set(&store, 9, &c, None), ApplyResult::Bool(true));
        let got = store.view().autopilot_config().unwrap();
        assert!(!got.cleanup_dead_servers);
        assert_eq!(
            (got.min_quorum, got.create_index, got.modify_index),
            (3, 6, 9)
        );

        // Snapshots carry it.
        let other = Store::new();
        other.restore(&store.dump()).unwrap();
        assert_eq!(other.view().autopilot_config(), Some(got));
    }
}
