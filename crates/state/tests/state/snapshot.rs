use futures::executor::block_on;
use proconsul_state::{Command, KvVerb, Proposal, StateError, Store, Table};

use crate::common::*;

fn populated() -> H {
    let mut h = H::new();
    let mut req = reg_node("n1", "10.0.0.1");
    req.id = "11111111-2222-3333-4444-555555555555".into();
    req.node_meta.insert("rack".into(), "r1".into());
    h.ok(Command::register(req));
    h.service("n1", "web1", "web", &["v1", "primary"]);
    h.service("n2", "db", "db", &[]);
    h.check("n1", "serfHealth", "passing", "");
    h.check("n1", "web1-http", "warning", "web1");
    h.session("s1", "n1", "", 1_000_000_000);
    h.set("app/a", "1");
    h.set("app/b", "2");
    h.apply(kv_full(KvVerb::Lock, "app/lock", Some("me"), 0, Some("s1")));
    h.ok(kv(KvVerb::Delete, "app/b", None));
    h.ok(dereg("n2", "db", ""));
    h
}

#[test]
fn a_frozen_store_dumps_the_state_of_its_freeze() {
    let mut h = populated();
    let before = h.store.dump();
    let frozen = h.store.freeze();
    assert_eq!(frozen.index(), h.store.last_index());
    h.service("n1", "web2", "web", &["v2"]);
    h.set("app/c", "3");
    h.ok(dereg("n1", "", ""));
    assert_ne!(h.store.dump(), before);
    assert_eq!(
        frozen.dump(),
        before,
        "later writes do not reach a frozen copy"
    );
}

#[test]
fn dump_restore_dump_is_identical() {
    let h = populated();
    let bytes = h.store.dump();
    assert_eq!(bytes, h.store.dump(), "dump is deterministic");
    assert_eq!(bytes, populated().store.dump(), "same log, same bytes");

    let fresh = Store::new();
    fresh.restore(&bytes).unwrap();
    assert_eq!(fresh.dump(), bytes);
    assert_eq!(fresh.last_index(), h.store.last_index());

    let (a, b) = (h.store.view(), fresh.view());
    assert_eq!(a.index(), b.index());
    for t in Table::ALL {
        assert_eq!(a.table_index(t), b.table_index(t), "{t:?}");
    }
    assert_eq!(a.nodes(&mut ws()), b.nodes(&mut ws()));
    assert_eq!(a.services(&mut ws()), b.services(&mut ws()));
    assert_eq!(
        a.check_service_nodes(&mut ws(), "web", &[]),
        b.check_service_nodes(&mut ws(), "web", &[])
    );
    assert_eq!(
        a.service_nodes(&mut ws(), "db", &[]),
        b.service_nodes(&mut ws(), "db", &[])
    );
    assert_eq!(
        a.node_services(&mut ws(), "1111"),
        b.node_services(&mut ws(), "1111")
    );
    assert_eq!(a.kv_list(&mut ws(), "app/"), b.kv_list(&mut ws(), "app/"));
    assert_eq!(a.sessions(&mut ws()), b.sessions(&mut ws()));
    assert_eq!(
        a.service_checks(&mut ws(), "web"),
        b.service_checks(&mut ws(), "web")
    );

    // secondary indexes were rebuilt: session destroy still finds its locks
    let r = fresh.apply(
        h.idx + 1,
        &Proposal::new(0, Command::SessionDestroy { id: "s1".into() }),
    );
    assert!(!r.is_err());
    assert_eq!(
        fresh
            .view()
            .kv_get(&mut ws(), "app/lock")
            .1
            .unwrap()
            .session,
        None
    );
}

#[test]
fn restore_replaces_everything_and_clears_lock_delays() {
    let mut h = populated();
    let snap = h.store.dump();
    h.now_ms = 0;
    h.ok(Command::SessionDestroy { id: "s1".into() });
    assert!(h.store.lock_delay_until("app/lock").is_some());
    h.set("later", "x");
    h.store.restore(&snap).unwrap();
    assert!(h.store.view().kv_get(&mut ws(), "later").1.is_none());
    assert!(h.store.view().session(&mut ws(), "s1").1.is_some());
    assert_eq!(
        h.store.lock_delay_until("app/lock"),
        None,
        "lock delays are not snapshotted"
    );
}

#[test]
fn restore_wakes_every_watcher() {
    let h = populated();
    let snap = h.store.dump();
    let target = Store::new();
    let v = target.view();
    let mut a = ws();
    v.kv_get(&mut a, "app/a");
    let mut b = ws();
    v.nodes(&mut b);
    let mut c = ws();
    v.service_nodes(&mut c, "web", &[]);
    assert!(!a.is_changed() && !b.is_changed() && !c.is_changed());
    std::thread::scope(|s| {
        let waiter =
            s.spawn(|| block_on(async { futures::join!(a.changed(), b.changed(), c.changed()) }));
        target.restore(&snap).unwrap();
        waiter.join().unwrap();
    });
    // a set filled after the restore does not fire spuriously
    let mut d = ws();
    target.view().kv_get(&mut d, "app/a");
    assert!(!d.is_changed());
}

#[test]
fn bad_snapshot_is_rejected_and_changes_nothing() {
    let h = populated();
    let before = h.store.dump();
    let e = h.store.restore(b"not msgpack").unwrap_err();
    assert!(matches!(e, StateError::Snapshot(_)));
    assert_eq!(h.store.dump(), before);
}

#[test]
fn proposals_round_trip_through_msgpack_and_json() {
    let p = Proposal::new(
        7,
        Command::Kv(proconsul_state::KvOp {
            verb: KvVerb::Lock,
            key: "k".into(),
            value: Some(vec![0, 255, 10]),
            flags: 3,
            index: 9,
            session: Some("s".into()),
        }),
    );
    let bytes = rmp_serde_roundtrip(&p);
    assert_eq!(bytes, p);
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.contains("\"kv\""), "{json}");
    assert_eq!(serde_json::from_str::<Proposal>(&json).unwrap(), p);
    let reg = Proposal::new(1, reg_node("n", "1.2.3.4").into());
    assert_eq!(rmp_serde_roundtrip(&reg), reg);
}

fn rmp_serde_roundtrip(p: &Proposal) -> Proposal {
    let b = rmp_serde::to_vec_named(p).unwrap();
    rmp_serde::from_slice(&b).unwrap()
}

/// `snapshot inspect`'s figures: records by Consul's kind names, each KV entry's key and size.
#[test]
fn dump_stats_by_kind_and_key() {
    let h = populated();
    let bytes = h.store.dump();
    let stats = proconsul_state::dump_stats(&bytes).unwrap();
    assert_eq!(stats.total, bytes.len() as u64);
    let kind = |n: &str| stats.kinds.iter().find(|k| k.name == n).cloned();
    // Nodes n1 and n2 (only n2's service was deregistered), web1, two checks.
    assert_eq!(kind("Register").map(|k| k.count), Some(5));
    assert_eq!(kind("KVS").map(|k| k.count), Some(2));
    assert_eq!(kind("Session").map(|k| k.count), Some(1));
    assert_eq!(kind("Tombstone").map(|k| k.count), Some(1));
    assert!(kind("Autopilot").is_none(), "empty kinds are left out");
    let keys: Vec<&str> = stats.kvs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["app/a", "app/lock"]);
    let kv_sum: u64 = stats.kvs.iter().map(|(_, s)| s).sum();
    assert_eq!(Some(kv_sum), kind("KVS").map(|k| k.size));
    assert!(kind("Register").unwrap().size > 0);
    assert!(proconsul_state::dump_stats(b"junk").is_err());
}
