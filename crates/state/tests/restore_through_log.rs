//! `Command::Restore`: a snapshot applied through the log replaces the state at that log
//! index (indexes stay monotonic); an undecodable one changes nothing.

use proconsul_state::{Command, KvOp, KvVerb, Proposal, Store};

fn put(store: &Store, index: u64, key: &str) {
    let op = KvOp {
        verb: KvVerb::Set,
        key: key.into(),
        value: Some(b"v".to_vec()),
        ..Default::default()
    };
    assert!(!store
        .apply(index, &Proposal::new(0, Command::Kv(op)))
        .is_err());
}

#[test]
fn restore_replaces_state_at_the_log_index() {
    let store = Store::new();
    put(&store, 1, "a");
    let saved = store.dump();
    put(&store, 2, "b");
    let r = store.apply(
        3,
        &Proposal::new(0, Command::Restore { state: Some(saved) }),
    );
    assert!(!r.is_err());
    let view = store.view();
    let mut ws = proconsul_state::WatchSet::new();
    assert!(view.kv_get(&mut ws, "a").1.is_some());
    assert!(view.kv_get(&mut ws, "b").1.is_none());
    assert_eq!(store.last_index(), 3);

    let bad = store.apply(
        4,
        &Proposal::new(
            0,
            Command::Restore {
                state: Some(b"garbage".to_vec()),
            },
        ),
    );
    assert!(bad.is_err());
    assert!(store.view().kv_get(&mut ws, "a").1.is_some());
    assert_eq!(store.last_index(), 4);
}
