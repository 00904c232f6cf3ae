use proconsul_state::{ApplyResult, Command, KvOp, KvVerb, StateError, Table};

use crate::common::*;

fn get(h: &H, key: &str) -> Option<proconsul_types::KvEntry> {
    h.store.view().kv_get(&mut ws(), key).1
}

#[test]
fn set_get_flags_and_noop() {
    let mut h = H::new();
    let i1 = h.set("a", "1");
    let e = get(&h, "a").unwrap();
    assert_eq!(e.value.as_deref(), Some(&b"1"[..]));
    assert_eq!((e.create_index, e.modify_index, e.lock_index), (i1, i1, 0));

    let i2 = h.ok(Command::Kv(KvOp {
        verb: KvVerb::Set,
        key: "a".into(),
        value: Some(b"2".to_vec()),
        flags: 42,
        ..Default::default()
    }));
    let e = get(&h, "a").unwrap();
    assert_eq!((e.flags, e.create_index, e.modify_index), (42, i1, i2));

    // identical write: true, but nothing moves
    assert_eq!(
        h.apply(Command::Kv(KvOp {
            verb: KvVerb::Set,
            key: "a".into(),
            value: Some(b"2".to_vec()),
            flags: 42,
            ..Default::default()
        })),
        ApplyResult::Bool(true)
    );
    assert_eq!(get(&h, "a").unwrap().modify_index, i2);
    assert_eq!(h.store.view().table_index(Table::Kvs), i2);

    // a nil value stays nil
    h.apply(kv(KvVerb::Set, "nil", None));
    assert_eq!(get(&h, "nil").unwrap().value, None);
    let (idx, e) = h.store.view().kv_get(&mut ws(), "missing");
    assert!(e.is_none());
    assert_eq!(idx, h.idx, "get reports the kvs table index");
}

#[test]
fn cas_semantics() {
    let mut h = H::new();
    assert_eq!(
        h.apply(kv_full(KvVerb::Cas, "k", Some("v"), 0, None)),
        ApplyResult::Bool(true)
    );
    let i = h.idx;
    assert_eq!(
        h.apply(kv_full(KvVerb::Cas, "k", Some("x"), 0, None)),
        ApplyResult::Bool(false),
        "0 = only if absent"
    );
    assert_eq!(
        h.apply(kv_full(KvVerb::Cas, "k", Some("x"), i + 100, None)),
        ApplyResult::Bool(false)
    );
    assert_eq!(
        h.apply(kv_full(KvVerb::Cas, "nope", Some("x"), 5, None)),
        ApplyResult::Bool(false)
    );
    assert_eq!(
        h.apply(kv_full(KvVerb::Cas, "k", Some("x"), i, None)),
        ApplyResult::Bool(true)
    );
    assert_eq!(get(&h, "k").unwrap().value.as_deref(), Some(&b"x"[..]));
    assert!(get(&h, "nope").is_none());
}

#[test]
fn lock_and_unlock() {
    let mut h = H::new();
    h.node("n1", "10.0.0.1");
    assert_eq!(h.session("s1", "n1", "", 0), ApplyResult::Ok);
    assert_eq!(h.session("s2", "n1", "", 0), ApplyResult::Ok);

    // unknown session: Consul's error text
    let r = h.apply(kv_full(KvVerb::Lock, "l", Some("v"), 0, Some("ghost")));
    assert_eq!(
        r,
        ApplyResult::Err(StateError::InvalidSession("ghost".into()))
    );
    if let ApplyResult::Err(e) = r {
        assert_eq!(e.to_string(), "invalid session \"ghost\"");
    }
    assert_eq!(
        h.apply(kv_full(KvVerb::Lock, "l", Some("v"), 0, None)),
        ApplyResult::Err(StateError::MissingSession)
    );

    assert_eq!(
        h.apply(kv_full(KvVerb::Lock, "l", Some("v"), 0, Some("s1"))),
        ApplyResult::Bool(true)
    );
    let e = get(&h, "l").unwrap();
    assert_eq!((e.lock_index, e.session.as_deref()), (1, Some("s1")));

    // re-acquire by the holder keeps LockIndex
    assert_eq!(
        h.apply(kv_full(KvVerb::Lock, "l", Some("v2"), 0, Some("s1"))),
        ApplyResult::Bool(true)
    );
    let e = get(&h, "l").unwrap();
    assert_eq!((e.lock_index, e.value.as_deref()), (1, Some(&b"v2"[..])));

    // someone else: false, nothing changes
    assert_eq!(
        h.apply(kv_full(KvVerb::Lock, "l", Some("x"), 0, Some("s2"))),
        ApplyResult::Bool(false)
    );
    assert_eq!(
        h.apply(kv_full(KvVerb::Unlock, "l", Some("x"), 0, Some("s2"))),
        ApplyResult::Bool(false)
    );
    assert_eq!(get(&h, "l").unwrap().session.as_deref(), Some("s1"));

    // plain set keeps the holder but, as in Consul's kvsSetTxn, takes the request's LockIndex (0)
    h.set("l", "plain");
    let e = get(&h, "l").unwrap();
    assert_eq!((e.session.as_deref(), e.lock_index), (Some("s1"), 0));
    assert_eq!(
        h.apply(kv_full(KvVerb::Lock, "l", Some("v"), 0, Some("s1"))),
        ApplyResult::Bool(true)
    );

    assert_eq!(
        h.apply(kv_full(KvVerb::Unlock, "l", Some("rel"), 0, Some("s1"))),
        ApplyResult::Bool(true)
    );
    let e = get(&h, "l").unwrap();
    assert_eq!((e.session, e.value.as_deref()), (None, Some(&b"rel"[..])));
    assert_eq!(
        h.apply(kv_full(KvVerb::Unlock, "missing", None, 0, Some("s1"))),
        ApplyResult::Bool(false)
    );

    // a fresh acquisition increments LockIndex
    assert_eq!(
        h.apply(kv_full(KvVerb::Lock, "l", Some("v"), 0, Some("s2"))),
        ApplyResult::Bool(true)
    );
    let e = get(&h, "l").unwrap();
    assert_eq!((e.lock_index, e.session.as_deref()), (1, Some("s2")));
    h.apply(kv_full(KvVerb::Unlock, "l", None, 0, Some("s2")));
    h.apply(kv_full(KvVerb::Lock, "l", None, 0, Some("s1")));
    assert_eq!(
        get(&h, "l").unwrap().lock_index,
        2,
        "each new holder increments LockIndex"
    );
}

#[test]
fn deletes_and_tombstones() {
    let mut h = H::new();
    h.set("app/a", "1");
    h.set("app/b", "2");
    h.set("app/c/d", "3");
    h.set("other", "x");
    let i_list = h.store.view().kv_list(&mut ws(), "app/").0;
    assert_eq!(i_list, 3);

    let i_del = h.ok(kv(KvVerb::Delete, "app/c/d", None));
    let (idx, rows) = h.store.view().kv_list(&mut ws(), "app/");
    assert_eq!(rows.len(), 2);
    assert_eq!(
        idx, i_del,
        "the tombstone keeps the prefix index from going backwards"
    );

    // delete of a missing key is a no-op returning true
    assert_eq!(
        h.apply(kv(KvVerb::Delete, "nope", None)),
        ApplyResult::Bool(true)
    );
    assert_eq!(h.store.view().table_index(Table::Kvs), i_del);

    let a = get(&h, "app/a").unwrap();
    assert_eq!(
        h.apply(kv_full(
            KvVerb::DeleteCas,
            "app/a",
            None,
            a.modify_index + 1,
            None
        )),
        ApplyResult::Bool(false)
    );
    assert!(get(&h, "app/a").is_some());
    assert_eq!(
        h.apply(kv_full(
            KvVerb::DeleteCas,
            "app/a",
            None,
            a.modify_index,
            None
        )),
        ApplyResult::Bool(true)
    );
    assert!(get(&h, "app/a").is_none());

    let i_tree = h.ok(kv(KvVerb::DeleteTree, "app/", None));
    let v = h.store.view();
    let (idx, rows) = v.kv_list(&mut ws(), "app/");
    assert!(rows.is_empty());
    assert_eq!(idx, i_tree);
    assert!(
        v.kv_get(&mut ws(), "other").1.is_some(),
        "delete-tree is prefix-bounded"
    );

    // reap: tombstones go; the listing index falls back to the table index
    h.ok(Command::TombstoneReap {
        up_to_index: i_tree,
    });
    let v = h.store.view();
    assert_eq!(
        v.kv_list(&mut ws(), "app/").0,
        v.table_index(Table::Kvs)
            .max(v.table_index(Table::Tombstones))
    );
}

#[test]
fn reap_is_bounded_by_index() {
    let mut h = H::new();
    h.set("a", "1");
    h.set("b", "1");
    let i_a = h.ok(kv(KvVerb::Delete, "a", None));
    let i_b = h.ok(kv(KvVerb::Delete, "b", None));
    h.ok(Command::TombstoneReap { up_to_index: i_a });
    let v = h.store.view();
    assert_eq!(v.kv_list(&mut ws(), "a").0, v.table_index(Table::Kvs));
    assert_eq!(v.kv_list(&mut ws(), "b").0, i_b);
}

#[test]
fn list_and_keys_with_separator() {
    let mut h = H::new();
    for k in ["web/a", "web/b/c", "web/b/d", "web/e/", "webx", "z"] {
        h.set(k, "v");
    }
    let v = h.store.view();
    let (_, rows) = v.kv_list(&mut ws(), "web/");
    assert_eq!(rows.len(), 4);
    let (_, keys) = v.kv_keys(&mut ws(), "web/", Some("/"));
    assert_eq!(keys, strs(&["web/a", "web/b/", "web/e/"]));
    let (_, keys) = v.kv_keys(&mut ws(), "", Some("/"));
    assert_eq!(keys, strs(&["web/", "webx", "z"]));
    let (idx, keys) = v.kv_keys(&mut ws(), "web", None);
    assert_eq!(keys.len(), 5);
    assert_eq!(idx, 5, "highest ModifyIndex under the prefix");
    let (idx, rows) = v.kv_list(&mut ws(), "");
    assert_eq!(rows.len(), 6);
    assert_eq!(idx, 6);
    let (idx, rows) = v.kv_list(&mut ws(), "nothing/");
    assert!(rows.is_empty());
    assert_eq!(idx, 6, "empty prefix result reports the table index");
}
