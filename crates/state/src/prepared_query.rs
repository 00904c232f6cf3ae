//! Prepared queries (Consul's `prepared-queries` table): stored by ID, with a unique,
//! case-insensitive name.
//!
//! The proposer chooses IDs and validates the query's shape; apply checks only what needs the
//! table: a name unique among queries and never another query's ID (queries are run by ID
//! *or* name, so a name equal to someone else's ID would hijack it), and a session that
//! exists. A query bound to a session is deleted with it (`delete_session` calls
//! [`Tx::prepared_queries_of_session_delete`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use proconsul_types as api;

use crate::error::StateError;
use crate::records::fold;
use crate::store::{Table, Tx};
use crate::view::View;
use crate::watch::WatchSet;

/// A stored prepared query.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct PreparedQueryRec {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub session: String,
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub template_type: String,
    #[serde(default)]
    pub template_regexp: String,
    #[serde(default)]
    pub template_remove_empty_tags: bool,
    pub service: String,
    #[serde(default)]
    pub failover_nearest_n: i64,
    #[serde(default)]
    pub failover_datacenters: Vec<String>,
    #[serde(default)]
    pub ignore_check_ids: Vec<String>,
    #[serde(default)]
    pub only_passing: bool,
    #[serde(default)]
    pub near: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub node_meta: BTreeMap<String, String>,
    #[serde(default)]
    pub service_meta: BTreeMap<String, String>,
    #[serde(default)]
    pub dns_ttl: String,
    /// Set by apply.
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
    /// `Failover.Targets`, by datacenter (peers are refused before they are stored). Last, so
    /// records written before it decode.
    #[serde(default)]
    pub failover_target_datacenters: Vec<String>,
}

impl PreparedQueryRec {
    pub fn from_api(q: &api::PreparedQuery) -> Self {
        PreparedQueryRec {
            id: q.id.clone(),
            name: q.name.clone(),
            session: q.session.clone(),
            token: q.token.clone(),
            template_type: q.template.kind.clone(),
            template_regexp: q.template.regexp.clone(),
            template_remove_empty_tags: q.template.remove_empty_tags,
            service: q.service.service.clone(),
            failover_nearest_n: q.service.failover.nearest_n,
            failover_datacenters: q.service.failover.datacenters.clone(),
            ignore_check_ids: q.service.ignore_check_ids.clone(),
            only_passing: q.service.only_passing,
            near: q.service.near.clone(),
            tags: q.service.tags.clone(),
            node_meta: q.service.node_meta.clone(),
            service_meta: q.service.service_meta.clone(),
            dns_ttl: q.dns.ttl.clone(),
            create_index: 0,
            modify_index: 0,
            failover_target_datacenters: q
                .service
                .failover
                .targets
                .iter()
                .map(|t| t.datacenter.clone())
                .collect(),
        }
    }

    pub fn to_api(&self) -> api::PreparedQuery {
        api::PreparedQuery {
            id: self.id.clone(),
            name: self.name.clone(),
            session: self.session.clone(),
            token: self.token.clone(),
            template: api::QueryTemplateOptions {
                kind: self.template_type.clone(),
                regexp: self.template_regexp.clone(),
                remove_empty_tags: self.template_remove_empty_tags,
            },
            service: api::ServiceQuery {
                service: self.service.clone(),
                failover: api::QueryFailoverOptions {
                    nearest_n: self.failover_nearest_n,
                    datacenters: self.failover_datacenters.clone(),
                    targets: self
                        .failover_target_datacenters
                        .iter()
                        .map(|dc| api::QueryFailoverTarget {
                            datacenter: dc.clone(),
                            ..Default::default()
                        })
                        .collect(),
                },
                ignore_check_ids: self.ignore_check_ids.clone(),
                only_passing: self.only_passing,
                near: self.near.clone(),
                tags: self.tags.clone(),
                node_meta: self.node_meta.clone(),
                service_meta: self.service_meta.clone(),
            },
            dns: api::QueryDnsOptions {
                ttl: self.dns_ttl.clone(),
            },
            create_index: self.create_index,
            modify_index: self.modify_index,
        }
    }
}

/// A change to the prepared-query table ([`crate::Command::PreparedQuery`]). `Set` is left
/// unboxed for the reason `Command::Register` is: built once, moved into the log.
#[allow(clippy::large_enum_variant)]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum PreparedQueryCommand {
    /// Create or replace the query with this ID (the proposer chose it).
    #[serde(rename = "set")]
    Set(PreparedQueryRec),
    /// Delete the query with this ID; an unknown ID is a no-op.
    #[serde(rename = "delete")]
    Delete { id: String },
}

impl Tx {
    pub(crate) fn prepared_query_apply(
        &mut self,
        cmd: &PreparedQueryCommand,
    ) -> Result<(), StateError> {
        match cmd {
            PreparedQueryCommand::Set(q) => self.prepared_query_set(q),
            PreparedQueryCommand::Delete { id } => {
                self.prepared_query_delete(id);
                Ok(())
            }
        }
    }

    /// Consul's `preparedQuerySetTxn`, its checks and texts.
    fn prepared_query_set(&mut self, q: &PreparedQueryRec) -> Result<(), StateError> {
        if q.id.is_empty() {
            return Err(StateError::Message("Missing query ID".into()));
        }
        let existing = self.s.prepared_queries.get(&q.id).cloned();
        let mut q = q.clone();
        q.create_index = existing.as_ref().map_or(self.idx, |e| e.create_index);
        q.modify_index = self.idx;
        if !q.name.is_empty() {
            if let Some(other) = self.s.prepared_query_names.get(&fold(&q.name)) {
                if *other != q.id {
                    return Err(StateError::Message(format!(
                        "name '{}' aliases an existing query name",
                        q.name
                    )));
                }
            }
            if self.s.prepared_queries.contains_key(&q.name.to_lowercase())
                && q.name.to_lowercase() != q.id
            {
                return Err(StateError::Message(format!(
                    "name '{}' aliases an existing query ID",
                    q.name
                )));
            }
        }
        if q.name.is_empty() && !q.template_type.is_empty() {
            let other = self
                .s
                .prepared_queries
                .values()
                .any(|o| o.id != q.id && o.name.is_empty() && !o.template_type.is_empty());
            if other {
                return Err(StateError::Message(
                    "a query template with an empty name already exists".into(),
                ));
            }
        }
        if !q.session.is_empty() && !self.s.sessions.contains_key(&q.session) {
            return Err(StateError::InvalidSession(q.session.clone()));
        }
        if let Some(old) = &existing {
            if !old.name.is_empty() {
                self.s.prepared_query_names.remove(&fold(&old.name));
            }
        }
        if !q.name.is_empty() {
            self.s
                .prepared_query_names
                .insert(fold(&q.name), q.id.clone());
        }
        self.s.prepared_queries.insert(q.id.clone(), q);
        self.bump_table(Table::PreparedQueries);
        Ok(())
    }

    fn prepared_query_delete(&mut self, id: &str) {
        let Some(old) = self.s.prepared_queries.remove(id) else {
            return;
        };
        if !old.name.is_empty() {
            self.s.prepared_query_names.remove(&fold(&old.name));
        }
        self.bump_table(Table::PreparedQueries);
    }

    /// Delete every query bound to session `id` (the session is being destroyed). Queries
    /// are few, so a scan is cheaper to keep right than another index.
    pub(crate) fn prepared_queries_of_session_delete(&mut self, id: &str) {
        let bound: Vec<String> = self
            .s
            .prepared_queries
            .values()
            .filter(|q| q.session == id)
            .map(|q| q.id.clone())
            .collect();
        for q in bound {
            self.prepared_query_delete(&q);
        }
    }
}

impl View {
    /// One query by ID. Index: the prepared-queries table.
    pub fn prepared_query(&self, ws: &mut WatchSet, id: &str) -> (u64, Option<api::PreparedQuery>) {
        self.watch_table(ws, Table::PreparedQueries);
        let s = self.state();
        (
            s.table_index(Table::PreparedQueries),
            s.prepared_queries.get(id).map(PreparedQueryRec::to_api),
        )
    }

    /// Every query, ordered by ID.
    pub fn prepared_queries(&self, ws: &mut WatchSet) -> (u64, Vec<api::PreparedQuery>) {
        self.watch_table(ws, Table::PreparedQueries);
        let s = self.state();
        (
            s.table_index(Table::PreparedQueries),
            s.prepared_queries
                .values()
                .map(PreparedQueryRec::to_api)
                .collect(),
        )
    }

    /// Consul's `PreparedQueryResolve`, templates unrendered: by ID first, then by name
    /// (case-insensitively), then the template whose name is the longest prefix of it (an
    /// empty-named template matches every name). The caller renders a template.
    pub fn prepared_query_resolve(&self, id_or_name: &str) -> (u64, Option<api::PreparedQuery>) {
        let s = self.state();
        let folded = fold(id_or_name);
        let found = s
            .prepared_queries
            .get(id_or_name)
            .or_else(|| {
                s.prepared_query_names
                    .get(&folded)
                    .and_then(|id| s.prepared_queries.get(id))
            })
            .or_else(|| {
                // Templates are few: a scan, like the session cleanup.
                s.prepared_queries
                    .values()
                    .filter(|q| !q.template_type.is_empty() && folded.starts_with(&fold(&q.name)))
                    .max_by_key(|q| q.name.len())
            });
        (
            s.table_index(Table::PreparedQueries),
            found.map(PreparedQueryRec::to_api),
        )
    }
}
