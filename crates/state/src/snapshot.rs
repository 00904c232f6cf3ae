//! Snapshot encoding: deterministic msgpack of every table.
//!
//! Two stores that applied the same log must produce identical bytes, so tables are written in
//! key order (persistent ordered maps) with named fields (`rmp_serde` struct-map form), and no
//! hash map is ever iterated. Secondary indexes are not written; restore rebuilds them. Lock-delay
//! deadlines are not written either: like Consul, they live in memory only.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::command::CoordinateUpdate;
use crate::error::StateError;
use crate::key::{self, Key, PairRef};
use crate::records::{fold, CheckRec, KvRec, NodeRec, ServiceRec, SessionRec};
use crate::store::{multi_insert, State};

/// Bump when the layout changes incompatibly; `decode` refuses versions it does not know.
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Snapshot {
    format: u32,
    index: u64,
    nodes: Vec<NodeRec>,
    services: Vec<ServiceRec>,
    checks: Vec<CheckRec>,
    kvs: Vec<KvRow>,
    tombstones: Vec<IndexRow>,
    sessions: Vec<SessionRec>,
    indexes: Vec<IndexRow>,
    /// Added after format 1 went out; older snapshots simply have none.
    #[serde(default)]
    coordinates: Vec<CoordinateUpdate>,
    /// Absent in snapshots written before autopilot's configuration was stored.
    #[serde(default)]
    autopilot: Option<crate::AutopilotConfig>,
    /// Absent in snapshots written before ACLs were stored.
    #[serde(default)]
    acl: crate::acl::AclSnapshot,
    /// Absent in snapshots written before prepared queries were stored.
    #[serde(default)]
    prepared_queries: Vec<crate::PreparedQueryRec>,
}

#[derive(Serialize, Deserialize)]
struct KvRow {
    key: String,
    entry: KvRec,
}

#[derive(Serialize, Deserialize)]
struct IndexRow {
    key: String,
    index: u64,
}

pub(crate) fn encode(s: &State) -> Vec<u8> {
    let rows = |m: &imbl::OrdMap<String, u64>| {
        m.iter()
            .map(|(k, i)| IndexRow {
                key: k.clone(),
                index: *i,
            })
            .collect()
    };
    let snap = Snapshot {
        format: FORMAT,
        index: s.index,
        nodes: s.nodes.values().map(|r| NodeRec::clone(r)).collect(),
        services: s.services.values().map(|r| ServiceRec::clone(r)).collect(),
        checks: s.checks.values().map(|r| CheckRec::clone(r)).collect(),
        kvs: s
            .kvs
            .iter()
            .map(|(k, e)| KvRow {
                key: k.clone(),
                entry: e.clone(),
            })
            .collect(),
        tombstones: rows(&s.tombstones),
        sessions: s.sessions.values().cloned().collect(),
        indexes: rows(&s.indexes),
        coordinates: s.coordinates.values().cloned().collect(),
        autopilot: s.autopilot.clone(),
        acl: s.acl.to_snapshot(),
        prepared_queries: s.prepared_queries.values().cloned().collect(),
    };
    rmp_serde::to_vec_named(&snap).expect("encoding in-memory records to msgpack cannot fail")
}

pub(crate) fn decode(bytes: &[u8]) -> Result<State, StateError> {
    let snap: Snapshot =
        rmp_serde::from_slice(bytes).map_err(|e| StateError::Snapshot(e.to_string()))?;
    if snap.format != FORMAT {
        return Err(StateError::Snapshot(format!(
            "unsupported snapshot format {}",
            snap.format
        )));
    }
    let mut s = State {
        index: snap.index,
        autopilot: snap.autopilot,
        acl: crate::acl::AclTables::from_snapshot(snap.acl),
        ..State::default()
    };
    // Keys and lists shared between records and tables as `Tx::ensure_*` shares them.
    for n in snap.nodes {
        let key: Key = fold(&n.name).into();
        if !n.id.is_empty() {
            s.node_ids.insert(fold(&n.id), key.clone());
        }
        s.nodes.insert(key, Arc::new(n));
    }
    for mut svc in snap.services {
        let key = s.service_key(&fold(&svc.node), &fold(&svc.id));
        key::share(&mut svc.node, &key.0);
        key::share(&mut svc.id, &key.1);
        let name = fold(&svc.name);
        s.share_with_siblings(&name, &mut svc);
        multi_insert(&mut s.services_by_name, name, key.clone());
        s.services.insert(key, Arc::new(svc));
    }
    for mut c in snap.checks {
        let node = fold(&c.node);
        let key = s.check_key(&node, &fold(&c.check_id));
        key::share(&mut c.node, &key.0);
        key::share(&mut c.check_id, &key.1);
        if !c.service_id.is_empty() {
            let (node, service) = s.service_key(&node, &fold(&c.service_id));
            key::share(&mut c.service_id, &service);
            if let Some(svc) = s.services.get(&PairRef(&node, &service)) {
                key::share(&mut c.service_name, &svc.name);
                c.service_tags.share(&svc.tags);
            }
            s.checks_by_service.insert((node, service, key.1.clone()));
        }
        s.checks.insert(key, Arc::new(c));
    }
    for row in snap.kvs {
        if let Some(sess) = &row.entry.session {
            multi_insert(&mut s.kvs_by_session, sess.clone(), row.key.clone());
        }
        s.kvs.insert(row.key, row.entry);
    }
    for t in snap.tombstones {
        s.tombstones.insert(t.key, t.index);
    }
    for sess in snap.sessions {
        let node = fold(&sess.node);
        for check in sess.check_ids() {
            multi_insert(
                &mut s.session_checks,
                (node.clone(), fold(check)),
                sess.id.clone(),
            );
        }
        multi_insert(&mut s.sessions_by_node, node, sess.id.clone());
        s.sessions.insert(sess.id.clone(), sess);
    }
    for c in snap.coordinates {
        // Like Consul's restore, bad rows from the past are dropped rather than kept.
        if c.is_valid() {
            s.coordinates.insert((fold(&c.node), fold(&c.segment)), c);
        }
    }
    for i in snap.indexes {
        s.indexes.insert(i.key, i.index);
    }
    for q in snap.prepared_queries {
        if !q.name.is_empty() {
            s.prepared_query_names.insert(fold(&q.name), q.id.clone());
        }
        s.prepared_queries.insert(q.id.clone(), q);
    }
    s.acl.index = s.max_index(&crate::store::Table::ACL);
    Ok(s)
}

/// One kind of record in a dump: how many, and their encoded size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindStats {
    /// Consul's name for the record type (`Register`, `KVS`, `Session`, …).
    pub name: &'static str,
    pub count: u64,
    pub size: u64,
}

/// What `snapshot inspect` shows of a dump: its records by kind, and each KV entry's key with
/// its encoded size (for `-kvdetails`). Sizes are of proconsul's encoding, which is not
/// Consul's, so they compare with each other and not with a Consul snapshot's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpStats {
    pub kinds: Vec<KindStats>,
    pub kvs: Vec<(String, u64)>,
    /// The whole dump's size.
    pub total: u64,
}

pub(crate) fn sized<T: Serialize>(name: &'static str, rows: &[T]) -> KindStats {
    KindStats {
        name,
        count: rows.len() as u64,
        size: rows.iter().map(row_size).sum(),
    }
}

fn row_size<T: Serialize>(row: &T) -> u64 {
    rmp_serde::to_vec_named(row).map_or(0, |b| b.len() as u64)
}

/// Read a dump's statistics without building a store. Kinds with no records are left out.
pub fn dump_stats(bytes: &[u8]) -> Result<DumpStats, StateError> {
    let snap: Snapshot =
        rmp_serde::from_slice(bytes).map_err(|e| StateError::Snapshot(e.to_string()))?;
    if snap.format != FORMAT {
        return Err(StateError::Snapshot(format!(
            "unsupported snapshot format {}",
            snap.format
        )));
    }
    // Consul writes nodes, services and checks each as a `Register` record.
    let (n, s, c) = (
        sized("", &snap.nodes),
        sized("", &snap.services),
        sized("", &snap.checks),
    );
    let mut kinds = vec![
        KindStats {
            name: "Register",
            count: n.count + s.count + c.count,
            size: n.size + s.size + c.size,
        },
        sized("KVS", &snap.kvs),
        sized("Tombstone", &snap.tombstones),
        sized("Session", &snap.sessions),
        sized("Index", &snap.indexes),
        sized("CoordinateBatchUpdate", &snap.coordinates),
        sized("Autopilot", snap.autopilot.as_slice()),
        sized("PreparedQuery", &snap.prepared_queries),
    ];
    kinds.extend(snap.acl.stats());
    kinds.retain(|k| k.count > 0);
    let kvs = snap
        .kvs
        .iter()
        .map(|row| (row.key.clone(), row_size(row)))
        .collect();
    Ok(DumpStats {
        kinds,
        kvs,
        total: bytes.len() as u64,
    })
}
