use proconsul_state::{
    AclAuthMethodRec, AclBindingRuleRec, AclCommand, AclGrants, AclLink, AclPolicyRec, AclTokenRec,
    ApplyResult, Command, Store, Table, WatchSet,
};

use crate::common::*;

fn token(accessor: &str, secret: &str) -> AclTokenRec {
    AclTokenRec {
        accessor_id: accessor.into(),
        secret_id: secret.into(),
        description: String::new(),
        grants: AclGrants::default(),
        local: false,
        auth_method: String::new(),
        expiration_time_ms: None,
        expiration_ttl_ns: 0,
        create_time_ms: 1,
        hash: vec![1, 2],
        create_index: 0,
        modify_index: 0,
    }
}

fn policy(id: &str, name: &str) -> AclPolicyRec {
    AclPolicyRec {
        id: id.into(),
        name: name.into(),
        description: String::new(),
        rules: r#"key_prefix "" { policy = "read" }"#.into(),
        datacenters: vec![],
        hash: vec![],
        create_index: 0,
        modify_index: 0,
    }
}

fn acl(c: AclCommand) -> Command {
    Command::Acl(c)
}

#[test]
fn tokens_by_accessor_and_secret_with_indexes() {
    let mut h = H::new();
    let i = h.ok(acl(AclCommand::TokenSet(token("a1", "s1"))));
    let v = h.store.view();
    let mut ws = WatchSet::new();
    let (idx, t) = v.acl_token_by_secret(&mut ws, "s1");
    assert_eq!(idx, i);
    let t = t.unwrap();
    assert_eq!((t.create_index, t.modify_index), (i, i));
    // Another token may not take the secret.
    let r = h.apply(acl(AclCommand::TokenSet(token("a2", "s1"))));
    assert!(matches!(r, ApplyResult::Err(_)), "{r:?}");
    // Updating keeps the create index; a new secret frees the old one.
    let j = h.ok(acl(AclCommand::TokenSet(token("a1", "s1b"))));
    let v = h.store.view();
    let t = v.acl_token(&mut ws, "a1").1.unwrap();
    assert_eq!((t.create_index, t.modify_index), (i, j));
    assert!(v.acl_token_by_secret(&mut ws, "s1").1.is_none());
    h.ok(acl(AclCommand::TokenDelete {
        accessor_ids: vec!["a1".into(), "absent".into()],
    }));
    assert!(h.store.view().acl_tokens(&mut ws).1.is_empty());
    assert_eq!(h.store.view().table_index(Table::AclTokens), h.idx);
}

#[test]
fn policy_names_are_unique_and_renames_free_them() {
    let mut h = H::new();
    h.ok(acl(AclCommand::PolicySet(policy("p1", "ops"))));
    let r = h.apply(acl(AclCommand::PolicySet(policy("p2", "ops"))));
    match r {
        ApplyResult::Err(e) => assert_eq!(
            e.to_string(),
            "Invalid Policy: A Policy with Name \"ops\" already exists"
        ),
        other => panic!("{other:?}"),
    }
    h.ok(acl(AclCommand::PolicySet(policy("p1", "ops-renamed"))));
    h.ok(acl(AclCommand::PolicySet(policy("p2", "ops"))));
    let v = h.store.view();
    let mut ws = WatchSet::new();
    assert_eq!(v.acl_policy_by_name(&mut ws, "ops").1.unwrap().id, "p2");
    assert_eq!(
        v.acl_policy_by_name(&mut ws, "ops-renamed").1.unwrap().id,
        "p1"
    );
}

#[test]
fn bootstrap_once_then_only_with_the_reset_index() {
    let mut h = H::new();
    assert_eq!(h.store.view().acl_bootstrap_index(), None);
    let at = h.ok(acl(AclCommand::Bootstrap {
        token: token("root", "rs"),
        reset_index: 0,
    }));
    assert_eq!(h.store.view().acl_bootstrap_index(), Some(at));
    let again = h.apply(acl(AclCommand::Bootstrap {
        token: token("root2", "rs2"),
        reset_index: 0,
    }));
    assert!(matches!(again, ApplyResult::Err(_)));
    let wrong = h.apply(acl(AclCommand::Bootstrap {
        token: token("root2", "rs2"),
        reset_index: at + 7,
    }));
    assert!(matches!(wrong, ApplyResult::Err(_)));
    h.ok(acl(AclCommand::Bootstrap {
        token: token("root2", "rs2"),
        reset_index: at,
    }));
}

#[test]
fn deleting_an_auth_method_takes_its_rules_and_tokens() {
    let mut h = H::new();
    h.ok(acl(AclCommand::AuthMethodSet(AclAuthMethodRec {
        name: "k8s".into(),
        kind: "kubernetes".into(),
        display_name: String::new(),
        description: String::new(),
        max_token_ttl_ns: 0,
        token_locality: String::new(),
        config: Default::default(),
        create_index: 0,
        modify_index: 0,
    })));
    h.ok(acl(AclCommand::BindingRuleSet(AclBindingRuleRec {
        id: "r1".into(),
        description: String::new(),
        auth_method: "k8s".into(),
        selector: String::new(),
        bind_type: "service".into(),
        bind_name: "web".into(),
        bind_vars: None,
        create_index: 0,
        modify_index: 0,
    })));
    let mut login = token("l1", "ls");
    login.auth_method = "k8s".into();
    h.ok(acl(AclCommand::TokenSet(login)));
    h.ok(acl(AclCommand::TokenSet(token("keep", "ks"))));
    h.ok(acl(AclCommand::AuthMethodDelete { name: "k8s".into() }));
    let v = h.store.view();
    let mut ws = WatchSet::new();
    assert!(v.acl_binding_rules(&mut ws).1.is_empty());
    let left: Vec<String> = v
        .acl_tokens(&mut ws)
        .1
        .into_iter()
        .map(|t| t.accessor_id)
        .collect();
    assert_eq!(left, vec!["keep".to_string()]);
    // A binding rule needs its method.
    let r = h.apply(acl(AclCommand::BindingRuleSet(AclBindingRuleRec {
        id: "r2".into(),
        description: String::new(),
        auth_method: "k8s".into(),
        selector: String::new(),
        bind_type: "service".into(),
        bind_name: "web".into(),
        bind_vars: None,
        create_index: 0,
        modify_index: 0,
    })));
    assert!(matches!(r, ApplyResult::Err(_)));
}

#[test]
fn acl_tables_survive_a_snapshot() {
    let mut h = H::new();
    h.ok(acl(AclCommand::PolicySet(policy("p1", "ops"))));
    let mut t = token("a1", "s1");
    t.grants.policies.push(AclLink {
        id: "p1".into(),
        name: "ops".into(),
    });
    h.ok(acl(AclCommand::Bootstrap {
        token: t,
        reset_index: 0,
    }));
    let bytes = h.store.dump();
    let fresh = Store::new();
    fresh.restore(&bytes).unwrap();
    assert_eq!(fresh.dump(), bytes);
    let v = fresh.view();
    let mut ws = WatchSet::new();
    let tok = v.acl_token_by_secret(&mut ws, "s1").1.unwrap();
    assert_eq!(tok.grants.policies[0].id, "p1");
    assert_eq!(v.acl_policy_by_name(&mut ws, "ops").1.unwrap().id, "p1");
    assert_eq!(
        v.acl_bootstrap_index(),
        h.store.view().acl_bootstrap_index()
    );
    assert_eq!(v.acl_index(), h.store.view().acl_index());
}
