//! Prepared queries as the API shows them (`/v1/query`), Consul's `structs.PreparedQuery`, and
//! the calls that create, read, run and explain them.
//!
//! These are API shapes only: the store keeps its own record (`proconsul_state`'s
//! `PreparedQueryRec`), so a field renamed here never changes the Raft log.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::CheckServiceNode;

/// A prepared query (Consul's `PreparedQuery`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PreparedQuery {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    /// A session the query lives as long as (deleted with it).
    pub session: String,
    /// The token the query runs with (empty: the caller's).
    pub token: String,
    pub template: QueryTemplateOptions,
    pub service: ServiceQuery,
    #[serde(rename = "DNS")]
    pub dns: QueryDnsOptions,
    pub create_index: u64,
    pub modify_index: u64,
}

/// `Template` (stored; templates are not rendered yet).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueryTemplateOptions {
    #[serde(rename = "Type")]
    pub kind: String,
    pub regexp: String,
    pub remove_empty_tags: bool,
}

/// `Service`: what the query looks up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceQuery {
    pub service: String,
    pub failover: QueryFailoverOptions,
    #[serde(rename = "IgnoreCheckIDs")]
    pub ignore_check_ids: Vec<String>,
    pub only_passing: bool,
    pub near: String,
    /// Required tags; `!tag` excludes instances with the tag.
    pub tags: Vec<String>,
    pub node_meta: BTreeMap<String, String>,
    pub service_meta: BTreeMap<String, String>,
}

/// `Failover`: where to look when the local datacenter has no healthy instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueryFailoverOptions {
    /// The N nearest other datacenters, by round-trip time (negative is refused).
    pub nearest_n: i64,
    /// Then these, in order.
    pub datacenters: Vec<String>,
    /// Instead of both: these, in order (a datacenter each; cluster peers are refused).
    pub targets: Vec<QueryFailoverTarget>,
}

/// One entry of `Failover.Targets`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueryFailoverTarget {
    /// A cluster peer (none exist here: refused when set).
    pub peer: String,
    pub datacenter: String,
    /// Enterprise's admin partition and namespace; only empty or `default` is accepted.
    pub partition: String,
    pub namespace: String,
}

/// `DNS`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueryDnsOptions {
    #[serde(rename = "TTL")]
    pub ttl: String,
}

/// What `/v1/query/:id/execute` answers (Consul's `PreparedQueryExecuteResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PreparedQueryExecuteResponse {
    pub service: String,
    pub nodes: Vec<CheckServiceNode>,
    #[serde(rename = "DNS")]
    pub dns: QueryDnsOptions,
    /// Where the nodes come from.
    pub datacenter: String,
    /// How many other datacenters were tried.
    pub failovers: u64,
}

/// `/v1/query/:id/explain` (Consul's `PreparedQueryExplainResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PreparedQueryExplainResponse {
    pub query: PreparedQuery,
}

/// `{"ID": ...}`, the answer to a create.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedQueryCreated {
    #[serde(rename = "ID")]
    pub id: String,
}

/// What a `PreparedQuery.Apply` does (Consul's `PreparedQueryOp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PreparedQueryOp {
    #[serde(rename = "create")]
    Create,
    #[serde(rename = "update")]
    Update,
    #[serde(rename = "delete")]
    Delete,
}

/// `PreparedQuery.Apply`: create (the server chooses the ID), update or delete; answers the ID.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreparedQueryApply {
    pub op: PreparedQueryOp,
    pub query: PreparedQuery,
    #[serde(default)]
    pub datacenter: String,
}

/// `PreparedQuery.Get`: one query by ID (404 `Query not found` when unknown); a blocking
/// query with `opts.min_index`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PreparedQueryGet {
    pub id: String,
    #[serde(default)]
    pub opts: crate::QueryOptions,
}

/// `PreparedQuery.List`: every query the token may read; a blocking query with
/// `opts.min_index`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PreparedQueryList {
    #[serde(default)]
    pub opts: crate::QueryOptions,
}

/// `PreparedQuery.Execute` (and, with `explain`, `PreparedQuery.Explain`'s lookup): a query
/// by ID or name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PreparedQueryExecute {
    pub id_or_name: String,
    /// `?near=`: sort by distance from this node (`_agent`: the asking agent's node).
    #[serde(default)]
    pub near: String,
    /// The asking agent's node (what `_agent` means).
    #[serde(default)]
    pub agent_node: String,
    /// `?limit=`: at most this many nodes (0: all).
    #[serde(default)]
    pub limit: usize,
    #[serde(default)]
    pub datacenter: String,
}

/// `PreparedQuery.Explain`: the query `id_or_name` resolves to.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PreparedQueryExplain {
    pub id_or_name: String,
    #[serde(default)]
    pub datacenter: String,
}
