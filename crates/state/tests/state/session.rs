use proconsul_state::{ApplyResult, Command, KvVerb, StateError};

use crate::common::*;

#[test]
fn create_validates_node_and_checks() {
    let mut h = H::new();
    assert_eq!(
        h.session("s1", "n1", "", 0),
        ApplyResult::Err(StateError::MissingNode)
    );
    h.node("n1", "10.0.0.1");
    h.check("n1", "serfHealth", "passing", "");
    h.check("n1", "bad", "critical", "");

    let mk = |id: &str, checks: &[&str]| {
        Command::session_create(proconsul_types::SessionEntry {
            id: id.into(),
            node: "n1".into(),
            node_checks: strs(checks),
            ..Default::default()
        })
    };
    let r = h.apply(mk("s1", &["nope"]));
    assert_eq!(r, ApplyResult::Err(StateError::MissingCheck("nope".into())));
    if let ApplyResult::Err(e) = r {
        assert_eq!(e.to_string(), "Missing check 'nope' registration");
    }
    let r = h.apply(mk("s1", &["bad"]));
    if let ApplyResult::Err(e) = &r {
        assert_eq!(e.to_string(), "Check 'bad' is in critical state");
    } else {
        panic!("{r:?}");
    }
    assert_eq!(
        h.session("s1", "n1", "bogus", 0),
        ApplyResult::Err(StateError::InvalidSessionBehavior("bogus".into()))
    );
    assert_eq!(
        h.session("", "n1", "", 0),
        ApplyResult::Err(StateError::MissingSessionId)
    );

    let i = h.ok(mk("s1", &["serfHealth"]));
    let (idx, s) = h.store.view().session(&mut ws(), "s1");
    let s = s.unwrap();
    assert_eq!(idx, i);
    assert_eq!(
        (s.create_index, s.modify_index, s.behavior.as_str()),
        (i, i, "release")
    );
    assert_eq!(s.node_checks, strs(&["serfHealth"]));
}

#[test]
fn list_and_node_sessions() {
    let mut h = H::new();
    h.node("n1", "10.0.0.1");
    h.node("n2", "10.0.0.2");
    h.session("b", "n1", "", 0);
    h.session("a", "n2", "", 0);
    h.session("c", "n1", "delete", 0);
    let v = h.store.view();
    let ids: Vec<_> = v.sessions(&mut ws()).1.into_iter().map(|s| s.id).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    let ids: Vec<_> = v
        .node_sessions(&mut ws(), "N1")
        .1
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["b", "c"]);
}

#[test]
fn destroy_release_keeps_values_and_sets_lock_delay() {
    let mut h = H::new();
    h.node("n1", "10.0.0.1");
    h.session("s1", "n1", "release", 15_000_000_000);
    h.apply(kv_full(KvVerb::Lock, "lock/a", Some("va"), 0, Some("s1")));
    h.apply(kv_full(KvVerb::Lock, "lock/b", Some("vb"), 0, Some("s1")));
    h.set("free", "x");
    h.now_ms = 5_000;
    let i = h.ok(Command::SessionDestroy { id: "s1".into() });
    let v = h.store.view();
    let a = v.kv_get(&mut ws(), "lock/a").1.unwrap();
    assert_eq!(
        (a.session, a.value.as_deref(), a.modify_index, a.lock_index),
        (None, Some(&b"va"[..]), i, 1)
    );
    assert!(v.session(&mut ws(), "s1").1.is_none());
    assert_eq!(h.store.lock_delay_until("lock/a"), Some(5_000 + 15_000));
    assert_eq!(h.store.lock_delay_until("lock/b"), Some(20_000));
    assert_eq!(h.store.lock_delay_until("free"), None);
    // destroying an unknown session is a no-op
    h.ok(Command::SessionDestroy { id: "s1".into() });
}

#[test]
fn destroy_delete_removes_keys_and_caps_delay() {
    let mut h = H::new();
    h.node("n1", "10.0.0.1");
    h.session("s1", "n1", "delete", 600_000_000_000);
    h.apply(kv_full(KvVerb::Lock, "k", Some("v"), 0, Some("s1")));
    h.now_ms = 1_000;
    h.ok(Command::SessionDestroy { id: "s1".into() });
    assert!(h.store.view().kv_get(&mut ws(), "k").1.is_none());
    assert_eq!(h.store.lock_delay_until("k"), Some(61_000), "capped at 60s");
}

#[test]
fn zero_lock_delay_sets_nothing() {
    let mut h = H::new();
    h.node("n1", "10.0.0.1");
    h.session("s1", "n1", "", 0);
    h.apply(kv_full(KvVerb::Lock, "k", Some("v"), 0, Some("s1")));
    h.ok(Command::SessionDestroy { id: "s1".into() });
    assert_eq!(h.store.lock_delay_until("k"), None);
}

#[test]
fn critical_check_invalidates_sessions() {
    let mut h = H::new();
    h.node("n1", "10.0.0.1");
    h.check("n1", "serfHealth", "passing", "");
    h.check("n1", "other", "passing", "");
    h.ok(Command::session_create(proconsul_types::SessionEntry {
        id: "s1".into(),
        node: "n1".into(),
        node_checks: strs(&["serfHealth"]),
        ..Default::default()
    }));
    h.session("s2", "n1", "", 0); // tied to no check
    h.apply(kv_full(KvVerb::Lock, "leader", Some("me"), 0, Some("s1")));

    h.check("n1", "other", "critical", "");
    assert!(
        h.store.view().session(&mut ws(), "s1").1.is_some(),
        "untied check does nothing"
    );
    h.check("n1", "serfHealth", "warning", "");
    assert!(h.store.view().session(&mut ws(), "s1").1.is_some());
    h.check("n1", "serfHealth", "critical", "");
    let v = h.store.view();
    assert!(v.session(&mut ws(), "s1").1.is_none());
    assert!(v.session(&mut ws(), "s2").1.is_some());
    assert_eq!(v.kv_get(&mut ws(), "leader").1.unwrap().session, None);
}

#[test]
fn removing_a_tied_check_invalidates_sessions() {
    let mut h = H::new();
    h.service("n1", "web", "web", &[]);
    h.check("n1", "web-c", "passing", "web");
    h.ok(Command::session_create(proconsul_types::SessionEntry {
        id: "s1".into(),
        node: "n1".into(),
        service_checks: vec![proconsul_types::ServiceCheckRef {
            id: "web-c".into(),
            namespace: String::new(),
        }],
        ..Default::default()
    }));
    h.ok(dereg("n1", "web", ""));
    assert!(h.store.view().session(&mut ws(), "s1").1.is_none());
}
