use std::sync::atomic::{AtomicUsize, Ordering};

use futures::executor::block_on;
use futures::FutureExt;
use proconsul_state::{Command, KvVerb, Store, WatchSet};

use crate::common::*;

fn fires(ws: &WatchSet) -> bool {
    ws.is_changed() && ws.changed().now_or_never().is_some()
}

fn quiet(ws: &WatchSet) -> bool {
    !ws.is_changed() && ws.changed().now_or_never().is_none()
}

#[test]
fn kv_get_watch_is_key_precise() {
    let mut h = H::new();
    h.set("a", "1");
    let mut w = ws();
    h.store.view().kv_get(&mut w, "a");
    assert!(!w.is_empty());
    h.set("b", "1");
    h.set("ab", "1");
    h.set("a/child", "1");
    assert!(
        quiet(&w),
        "unrelated keys (even ones it prefixes) do not wake a get"
    );
    h.set("a", "2");
    assert!(fires(&w));
}

#[test]
fn noop_write_does_not_wake() {
    let mut h = H::new();
    h.set("a", "1");
    let mut w = ws();
    h.store.view().kv_get(&mut w, "a");
    h.set("a", "1");
    assert!(quiet(&w));
}

#[test]
fn kv_list_watch_fires_on_children_only() {
    let mut h = H::new();
    let mut w = ws();
    h.store.view().kv_list(&mut w, "app/");
    h.set("other", "1");
    h.set("app", "1");
    assert!(quiet(&w));
    h.set("app/x", "1");
    assert!(fires(&w));

    let mut w = ws();
    h.store.view().kv_keys(&mut w, "app/", Some("/"));
    h.ok(kv(KvVerb::Delete, "app/x", None));
    assert!(fires(&w), "deletes wake prefix watchers");
}

#[test]
fn delete_tree_wakes_children_and_parents() {
    let mut h = H::new();
    h.set("app/a/1", "1");
    h.set("app/b", "1");
    h.set("zzz", "1");
    let v = h.store.view();
    let (mut child_get, mut child_list, mut parent_list, mut empty_sub, mut other) =
        (ws(), ws(), ws(), ws(), ws());
    v.kv_get(&mut child_get, "app/a/1");
    v.kv_list(&mut child_list, "app/a/");
    v.kv_list(&mut parent_list, "");
    v.kv_list(&mut empty_sub, "app/nothing-here/");
    v.kv_get(&mut other, "zzz");
    h.ok(kv(KvVerb::DeleteTree, "app/", None));
    assert!(fires(&child_get));
    assert!(fires(&child_list));
    assert!(fires(&parent_list));
    assert!(
        fires(&empty_sub),
        "every registered prefix under the deleted tree"
    );
    assert!(quiet(&other));
}

#[test]
fn thousand_waiters_on_one_key_wake_from_one_write() {
    let mut h = H::new();
    h.set("hot", "0");
    let sets: Vec<WatchSet> = (0..1000)
        .map(|_| {
            let mut w = ws();
            h.store.view().kv_get(&mut w, "hot");
            w
        })
        .collect();
    let woke = AtomicUsize::new(0);
    let store = h.store.clone();
    std::thread::scope(|s| {
        let sets = &sets;
        let woke = &woke;
        let waiter = s.spawn(move || {
            block_on(futures::future::join_all(sets.iter().map(|w| async move {
                w.changed().await;
                woke.fetch_add(1, Ordering::SeqCst);
            })))
        });
        h.idx += 1;
        store.apply(
            h.idx,
            &proconsul_state::Proposal::new(0, kv(KvVerb::Set, "hot", Some("1"))),
        );
        waiter.join().unwrap();
    });
    assert_eq!(woke.load(Ordering::SeqCst), 1000);
}

#[test]
fn catalog_watches() {
    let mut h = H::new();
    h.service("n1", "web1", "web", &[]);
    h.service("n1", "db1", "db", &[]);
    let v = h.store.view();
    let (mut web, mut web_health, mut db, mut node, mut nodes, mut missing) =
        (ws(), ws(), ws(), ws(), ws(), ws());
    v.service_nodes(&mut web, "web", &[]);
    v.check_service_nodes(&mut web_health, "WEB", &[]);
    v.service_nodes(&mut db, "db", &[]);
    v.node_services(&mut node, "n1");
    v.nodes(&mut nodes);
    v.service_nodes(&mut missing, "api", &[]);

    h.check("n1", "db-c", "passing", "db1");
    assert!(quiet(&web) && quiet(&web_health) && quiet(&missing));
    assert!(fires(&db));

    let mut node_checks = ws();
    h.store.view().node_checks(&mut node_checks, "n1");
    h.check("n1", "serfHealth", "passing", "");
    assert!(
        fires(&web_health),
        "node-level checks affect every service on the node"
    );
    assert!(fires(&node_checks));
    assert!(quiet(&node), "check changes do not wake node_services");

    h.service("n2", "api", "api", &[]);
    assert!(
        fires(&missing),
        "a watch on a missing service fires when it appears"
    );
    assert!(fires(&nodes));
    assert!(quiet(&node), "another node's changes do not wake this node");
    h.service("n1", "web2", "web", &[]);
    assert!(fires(&web) && fires(&node));
}

#[test]
fn session_watch() {
    let mut h = H::new();
    h.node("n1", "10.0.0.1");
    let mut w = ws();
    h.store.view().sessions(&mut w);
    h.set("k", "v");
    assert!(quiet(&w));
    h.session("s1", "n1", "", 0);
    assert!(fires(&w));
}

#[test]
fn empty_set_never_fires() {
    let w = WatchSet::new();
    assert!(w.is_empty());
    assert!(quiet(&w));
}

#[test]
fn write_between_view_and_registration_is_not_lost() {
    let mut h = H::new();
    let v = h.store.view(); // taken before the write
    h.set("late", "1"); // nobody watches "late" yet
    let mut w = ws();
    v.kv_get(&mut w, "late"); // registered after the write, with the old view
    assert!(fires(&w));
}

#[test]
fn blocked_future_wakes_on_later_write() {
    let mut h = H::new();
    h.node("n1", "10.0.0.1");
    let mut w = ws();
    h.store.view().node_services(&mut w, "n1");
    let store: Store = h.store.clone();
    std::thread::scope(|s| {
        let w = &w;
        let t = s.spawn(move || block_on(w.changed()));
        let mut r = reg_node("n1", "10.0.0.1");
        r_service(&mut r, "web", "web", &[], 80);
        h.idx += 1;
        store.apply(h.idx, &proconsul_state::Proposal::new(0, r.into()));
        t.join().unwrap();
    });
    // a dropped, re-polled future leaves no waiter behind and the set stays fired
    assert!(fires(&w));
    let _ = Command::TombstoneReap { up_to_index: 0 };
}
