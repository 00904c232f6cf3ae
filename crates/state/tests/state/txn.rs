use proconsul_state::{ApplyResult, Command};
use proconsul_types::{TxnError, TxnResult};

use crate::common::*;

fn txn(h: &mut H, ops: Vec<proconsul_types::TxnKvOp>) -> Result<Vec<TxnResult>, Vec<TxnError>> {
    match h.apply(Command::txn(ops)) {
        ApplyResult::Txn(r) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn successful_txn_results() {
    let mut h = H::new();
    h.set("existing", "e");
    h.set("tree/a", "1");
    h.set("tree/b", "2");
    let ex = h.store.view().kv_get(&mut ws(), "existing").1.unwrap();
    let next = h.idx + 1;
    let r = txn(
        &mut h,
        vec![
            top("set", "k", Some("v"), 0, ""),
            top("get", "k", None, 0, ""),
            top("cas", "existing", Some("e2"), ex.modify_index, ""),
            top("check-index", "existing", None, next, ""),
            top("check-not-exists", "nope", None, 0, ""),
            top("get-tree", "tree/", None, 0, ""),
            top("delete", "tree/a", None, 0, ""),
            top("check-session", "k", None, 0, ""),
        ],
    )
    .unwrap();
    let i = h.idx;
    let kv: Vec<_> = r.into_iter().map(|r| r.kv.unwrap()).collect();
    let shape: Vec<_> = kv
        .iter()
        .map(|e| (e.key.as_str(), e.value.is_some()))
        .collect();
    assert_eq!(
        shape,
        [
            ("k", false),
            ("k", true),
            ("existing", false),
            ("existing", false),
            ("tree/a", true),
            ("tree/b", true),
            ("k", false),
        ]
    );
    assert_eq!((kv[0].create_index, kv[0].modify_index), (i, i));
    assert_eq!(
        kv[1].value.as_deref(),
        Some(&b"v"[..]),
        "reads see earlier writes"
    );
    let v = h.store.view();
    assert!(v.kv_get(&mut ws(), "tree/a").1.is_none());
    assert_eq!(
        v.kv_get(&mut ws(), "existing").1.unwrap().value.as_deref(),
        Some(&b"e2"[..])
    );
}

#[test]
fn failed_txn_rolls_back_and_reports_every_error() {
    let mut h = H::new();
    h.set("k", "v");
    let before = h.store.dump();
    let errs = txn(
        &mut h,
        vec![
            top("set", "new", Some("x"), 0, ""),
            top("get", "missing", None, 0, ""),
            top("check-index", "k", None, 3, ""),
            top("cas", "k", Some("y"), 99, ""),
            top("delete-cas", "k", None, 99, ""),
            top("check-not-exists", "k", None, 0, ""),
            top("lock", "k", Some("y"), 0, "ghost"),
            top("unlock", "k", Some("y"), 0, "someone"),
            top("check-session", "k", None, 0, "s"),
            top("frob", "k", None, 0, ""),
            top("check-index", "missing", None, 1, ""),
            top("lock", "k", None, 0, ""),
        ],
    )
    .unwrap_err();
    let got: Vec<(usize, String)> = errs.into_iter().map(|e| (e.op_index, e.what)).collect();
    let want: Vec<(usize, &str)> = vec![
        (1, r#"key "missing" doesn't exist"#),
        (
            2,
            r#"failed index check for key "k", current modify index 1 != 3"#,
        ),
        (3, r#"failed to set key "k", index is stale"#),
        (4, r#"failed to delete key "k", index is stale"#),
        (5, r#"key "k" exists"#),
        (6, r#"invalid session "ghost""#),
        (
            7,
            r#"failed to unlock key "k", lock isn't held, or is held by another session"#,
        ),
        (
            8,
            r#"failed session check for key "k", current session "" != "s""#,
        ),
        (9, r#"unknown KV verb "frob""#),
        (10, r#"failed to check index, key "missing" doesn't exist"#),
        (11, "missing session"),
    ];
    let got_ref: Vec<(usize, &str)> = got.iter().map(|(i, s)| (*i, s.as_str())).collect();
    assert_eq!(got_ref, want);
    assert!(
        h.store.view().kv_get(&mut ws(), "new").1.is_none(),
        "the set was rolled back"
    );
    // only the view index moved
    let mut after = H::new();
    after.set("k", "v");
    assert_eq!(before, after.store.dump());
}

#[test]
fn txn_lock_conflict_text() {
    let mut h = H::new();
    h.node("n1", "10.0.0.1");
    h.session("s1", "n1", "", 0);
    h.session("s2", "n1", "", 0);
    let r = txn(&mut h, vec![top("lock", "l", Some("v"), 0, "s1")]).unwrap();
    let e = r[0].kv.as_ref().unwrap();
    assert_eq!(
        (e.lock_index, e.session.as_deref(), e.value.as_ref()),
        (1, Some("s1"), None)
    );
    let errs = txn(&mut h, vec![top("lock", "l", Some("v"), 0, "s2")]).unwrap_err();
    assert_eq!(
        errs[0].what,
        r#"failed to lock key "l", lock is already held"#
    );
    let r = txn(
        &mut h,
        vec![
            top("unlock", "l", Some("v"), 0, "s1"),
            top("delete-tree", "", None, 0, ""),
        ],
    )
    .unwrap();
    assert_eq!(r.len(), 1);
    assert!(h.store.view().kv_list(&mut ws(), "").1.is_empty());
}

#[test]
fn read_only_txn_on_a_view() {
    let mut h = H::new();
    h.set("a", "1");
    let v = h.store.view();
    let r = v.txn_read(&[top("get", "a", None, 0, "")]).unwrap();
    assert_eq!(r[0].kv.as_ref().unwrap().value.as_deref(), Some(&b"1"[..]));
    assert!(v.txn_read(&[top("get", "b", None, 0, "")]).is_err());
    // a write verb only touches a throwaway copy
    v.txn_read(&[top("set", "b", Some("x"), 0, "")]).unwrap();
    assert!(h.store.view().kv_get(&mut ws(), "b").1.is_none());
}
