use proconsul_state::{ApplyResult, Command, StateError, Table};
use proconsul_types::{RegisterRequest, ServiceNode};

use crate::common::*;

#[test]
fn register_node_sets_and_keeps_indexes() {
    let mut h = H::new();
    let i1 = h.node("n1", "10.0.0.1");
    let (idx, n) = h.store.view().node(&mut ws(), "n1");
    let n = n.unwrap();
    assert_eq!((idx, n.create_index, n.modify_index), (i1, i1, i1));
    assert_eq!(n.address, "10.0.0.1");
    assert_eq!(n.datacenter, "", "the store does not know the DC");

    // identical re-registration: nothing changes, not even the table index
    h.node("n1", "10.0.0.1");
    let v = h.store.view();
    assert_eq!(v.node(&mut ws(), "n1").1.unwrap().modify_index, i1);
    assert_eq!(v.table_index(Table::Nodes), i1);
    assert_eq!(v.index(), h.idx, "the view index still advances");

    // a change bumps ModifyIndex and keeps CreateIndex
    let i3 = h.node("n1", "10.0.0.2");
    let n = h.store.view().node(&mut ws(), "N1").1.unwrap();
    assert_eq!(
        (n.create_index, n.modify_index, n.address.as_str()),
        (i1, i3, "10.0.0.2")
    );
}

#[test]
fn nodes_sorted_and_case_insensitive() {
    let mut h = H::new();
    h.node("zeta", "1.1.1.1");
    h.node("alpha", "1.1.1.2");
    h.node("Mid", "1.1.1.3");
    let (idx, nodes) = h.store.view().nodes(&mut ws());
    assert_eq!(idx, 3);
    let names: Vec<_> = nodes.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(names, ["alpha", "Mid", "zeta"]);
}

#[test]
fn register_service_and_noop_update() {
    let mut h = H::new();
    let i1 = h.service("n1", "web1", "web", &["v1"]);
    let i2 = h.service("n1", "web1", "web", &["v1"]);
    let (_, rows) = h.store.view().service_nodes(&mut ws(), "web", &[]);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].create_index, rows[0].modify_index),
        (i1, i1),
        "no-op at {i2}"
    );
    assert_eq!(h.store.view().table_index(Table::Services), i1);

    let mut r = reg_node("n1", "10.0.0.1");
    r_service(&mut r, "web1", "web", &["v1"], 8080);
    let i3 = h.ok(r);
    let (idx, rows) = h.store.view().service_nodes(&mut ws(), "web", &[]);
    assert_eq!(
        (
            rows[0].create_index,
            rows[0].modify_index,
            rows[0].service_port
        ),
        (i1, i3, 8080)
    );
    assert_eq!(idx, i3);
    assert_eq!(rows[0].address, "10.0.0.1");
    assert_eq!(rows[0].node, "n1");
}

#[test]
fn service_id_defaults_to_name() {
    let mut h = H::new();
    h.service("n1", "", "redis", &[]);
    let (_, rows) = h.store.view().service_nodes(&mut ws(), "redis", &[]);
    assert_eq!(rows[0].service_id, "redis");
}

#[test]
fn service_nodes_tags_and_order() {
    let mut h = H::new();
    h.service("n2", "web-b", "web", &["Primary", "v1"]);
    h.service("n1", "web-z", "web", &["v1"]);
    h.service("n1", "web-a", "web", &["primary"]);
    h.service("n1", "db", "db", &["primary"]);
    let v = h.store.view();
    let ids = |rows: Vec<ServiceNode>| -> Vec<String> {
        rows.into_iter()
            .map(|r| format!("{}/{}", r.node, r.service_id))
            .collect()
    };
    assert_eq!(
        ids(v.service_nodes(&mut ws(), "web", &[]).1),
        ["n1/web-a", "n1/web-z", "n2/web-b"]
    );
    assert_eq!(
        ids(v.service_nodes(&mut ws(), "WEB", &strs(&["PRIMARY"])).1),
        ["n1/web-a", "n2/web-b"]
    );
    assert_eq!(
        ids(v
            .service_nodes(&mut ws(), "web", &strs(&["primary", "v1"]))
            .1),
        ["n2/web-b"]
    );
    assert!(v.service_nodes(&mut ws(), "nope", &[]).1.is_empty());

    let (_, services) = v.services(&mut ws());
    assert_eq!(services["web"], strs(&["Primary", "primary", "v1"]));
    assert_eq!(services["db"], strs(&["primary"]));
    assert_eq!(services.len(), 2);
}

#[test]
fn per_service_index_and_extinction() {
    let mut h = H::new();
    let i_web = h.service("n1", "web", "web", &[]);
    let i_db = h.service("n1", "db", "db", &[]);
    let v = h.store.view();
    assert_eq!(
        v.service_nodes(&mut ws(), "web", &[]).0,
        i_web,
        "db registration does not move web"
    );
    assert_eq!(v.service_nodes(&mut ws(), "db", &[]).0, i_db);
    // a missing service with no extinction yet: max of services/nodes tables
    assert_eq!(v.service_nodes(&mut ws(), "missing", &[]).0, i_db);

    let i_gone = h.ok(dereg("n1", "web", ""));
    let v = h.store.view();
    let (idx, rows) = v.service_nodes(&mut ws(), "web", &[]);
    assert!(rows.is_empty());
    assert_eq!(idx, i_gone, "service_last_extinction");
    assert_eq!(v.service_nodes(&mut ws(), "missing", &[]).0, i_gone);
    assert_eq!(v.service_nodes(&mut ws(), "db", &[]).0, i_db);
}

#[test]
fn node_change_bumps_its_service_indexes() {
    let mut h = H::new();
    h.service("n1", "web", "web", &[]);
    let i = h.node("n1", "10.9.9.9");
    let (idx, rows) = h.store.view().service_nodes(&mut ws(), "web", &[]);
    assert_eq!(idx, i);
    assert_eq!(rows[0].address, "10.9.9.9");
}

#[test]
fn checks_fill_service_fields_and_default_critical() {
    let mut h = H::new();
    h.service("n1", "web1", "web", &["a", "b"]);
    let i = h.check("n1", "web-check", "", "web1");
    let (idx, checks) = h.store.view().node_checks(&mut ws(), "n1");
    assert_eq!(idx, i);
    let c = &checks[0];
    assert_eq!(c.status, "critical");
    assert_eq!(c.service_name, "web");
    assert_eq!(c.service_tags, strs(&["a", "b"]));
    assert_eq!((c.create_index, c.modify_index), (i, i));

    // unchanged check: no bump
    h.check("n1", "web-check", "critical", "web1");
    assert_eq!(h.store.view().table_index(Table::Checks), i);
    let i2 = h.check("n1", "web-check", "passing", "web1");
    let c = h.store.view().node_checks(&mut ws(), "n1").1.remove(0);
    assert_eq!(
        (c.create_index, c.modify_index, c.status.as_str()),
        (i, i2, "passing")
    );
    // the service index moved with its check
    assert_eq!(
        h.store.view().check_service_nodes(&mut ws(), "web", &[]).0,
        i2
    );
}

#[test]
fn check_for_missing_service_rolls_back_whole_registration() {
    let mut h = H::new();
    let mut req = reg_node("n1", "10.0.0.1");
    req.check = Some(check("n1", "c1", "passing", "nope"));
    let r = h.apply(Command::register(req));
    let ApplyResult::Err(e) = r else {
        panic!("{r:?}")
    };
    assert_eq!(e.root(), &StateError::MissingService);
    assert_eq!(
        e.to_string(),
        "failed inserting check on node \"n1\": Missing service registration"
    );
    let v = h.store.view();
    assert!(
        v.node(&mut ws(), "n1").1.is_none(),
        "node insert was rolled back"
    );
    assert_eq!(v.index(), 1);
    assert_eq!(h.store.last_index(), 1);
}

#[test]
fn check_node_mismatch_is_rejected() {
    let mut h = H::new();
    let mut req = reg_node("n1", "10.0.0.1");
    req.checks = vec![check("other", "c1", "passing", "")];
    let ApplyResult::Err(e) = h.apply(Command::register(req)) else {
        panic!()
    };
    assert_eq!(
        e.to_string(),
        "check node \"other\" does not match node \"n1\""
    );
}

#[test]
fn register_requires_node_name() {
    let mut h = H::new();
    let r = h.apply(Command::register(RegisterRequest::default()));
    assert_eq!(r, ApplyResult::Err(StateError::MissingNodeName));
}

#[test]
fn skip_node_update_keeps_node() {
    let mut h = H::new();
    let i1 = h.node("n1", "10.0.0.1");
    let mut req = reg_node("n1", "10.0.0.99");
    req.skip_node_update = true;
    h.ok(Command::register(req));
    let n = h.store.view().node(&mut ws(), "n1").1.unwrap();
    assert_eq!((n.address.as_str(), n.modify_index), ("10.0.0.1", i1));
}

#[test]
fn deregister_service_check_and_node() {
    let mut h = H::new();
    h.service("n1", "web1", "web", &[]);
    h.service("n1", "db1", "db", &[]);
    h.check("n1", "web-c", "passing", "web1");
    h.check("n1", "db-c", "passing", "db1");
    h.check("n1", "serfHealth", "passing", "");
    assert_eq!(h.store.view().node_checks(&mut ws(), "n1").1.len(), 3);

    h.ok(dereg("n1", "web1", ""));
    let v = h.store.view();
    let checks: Vec<String> = v
        .node_checks(&mut ws(), "n1")
        .1
        .into_iter()
        .map(|c| c.check_id)
        .collect();
    assert_eq!(
        checks,
        ["db-c", "serfHealth"],
        "service checks go with the service"
    );
    assert!(v.service_nodes(&mut ws(), "web", &[]).1.is_empty());

    h.ok(dereg("n1", "", "db-c"));
    assert_eq!(h.store.view().node_checks(&mut ws(), "n1").1.len(), 1);
    // one check by ID, case-insensitively like the node_checks listing
    let v = h.store.view();
    assert_eq!(
        v.node_check("N1", "SERFHEALTH").map(|c| c.check_id),
        Some("serfHealth".to_string())
    );
    assert!(v.node_check("n1", "db-c").is_none());
    assert!(v.node_check("n2", "serfHealth").is_none());
    // unknown things are a no-op
    h.ok(dereg("n1", "", "nope"));
    h.ok(dereg("ghost", "", ""));

    assert_eq!(h.session("s1", "n1", "", 0), ApplyResult::Ok);
    let i = h.ok(dereg("n1", "", ""));
    let v = h.store.view();
    assert!(v.node(&mut ws(), "n1").1.is_none());
    assert!(v.node_checks(&mut ws(), "n1").1.is_empty());
    assert!(v.service_nodes(&mut ws(), "db", &[]).1.is_empty());
    assert!(
        v.session(&mut ws(), "s1").1.is_none(),
        "node's sessions are destroyed"
    );
    let (idx, ns) = v.node_services(&mut ws(), "n1");
    assert!(ns.is_none());
    assert_eq!(idx, i, "node_last_extinction");
}

#[test]
fn node_services_by_name_and_id_prefix() {
    let mut h = H::new();
    let mut req = reg_node("n1", "10.0.0.1");
    req.id = "a1b2c3d4-0000-0000-0000-000000000000".into();
    h.ok(Command::register(req.clone()));
    let mut with = |id: &str| {
        let mut r = req.clone();
        r_service(&mut r, id, id, &[], 80);
        h.ok(r)
    };
    let i = with("web");
    with("api");
    let v = h.store.view();
    let (idx, ns) = v.node_services(&mut ws(), "n1");
    let (node, services) = ns.unwrap();
    assert_eq!(node.node, "n1");
    let ids: Vec<_> = services.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["api", "web"]);
    assert_eq!(idx, i + 1);
    let (_, by_id) = v.node_services(&mut ws(), "a1b2c3");
    assert_eq!(by_id.unwrap().0.node, "n1");
    assert!(v.node_services(&mut ws(), "zz").1.is_none());
}

#[test]
fn node_id_move_renames_node() {
    let mut h = H::new();
    let mut req = reg_node("old", "10.0.0.1");
    req.id = "11111111-2222-3333-4444-555555555555".into();
    let i1 = h.ok(Command::register(req.clone()));
    req.node = "new".into();
    h.ok(Command::register(req));
    let v = h.store.view();
    assert!(v.node(&mut ws(), "old").1.is_none());
    let n = v.node(&mut ws(), "new").1.unwrap();
    assert_eq!(n.create_index, i1);
}

#[test]
fn healthy_node_name_is_reserved_by_its_id() {
    let mut h = H::new();
    let mut req = reg_node("n1", "10.0.0.1");
    req.id = "11111111-2222-3333-4444-555555555555".into();
    req.check = Some(check("n1", "serfHealth", "passing", ""));
    h.ok(Command::register(req.clone()));
    req.id = "99999999-2222-3333-4444-555555555555".into();
    req.check = None;
    let ApplyResult::Err(e) = h.apply(Command::register(req)) else {
        panic!()
    };
    assert!(
        e.to_string()
            .contains("Node name n1 is reserved by node 11111111"),
        "{e}"
    );
}

#[test]
fn health_rows_and_checks_in_state() {
    let mut h = H::new();
    h.service("n1", "web1", "web", &["v1"]);
    h.service("n2", "web2", "web", &["v2"]);
    h.check("n1", "serfHealth", "passing", "");
    h.check("n1", "web1-http", "warning", "web1");
    h.check("n2", "serfHealth", "critical", "");
    let v = h.store.view();
    let (idx, rows) = v.check_service_nodes(&mut ws(), "web", &[]);
    assert_eq!(idx, h.idx);
    assert_eq!(rows.len(), 2);
    let ids: Vec<_> = rows[0].checks.iter().map(|c| c.check_id.as_str()).collect();
    assert_eq!(ids, ["serfHealth", "web1-http"]);
    assert_eq!(rows[1].checks.len(), 1);
    assert_eq!(rows[1].node.node, "n2");
    let (_, tagged) = v.check_service_nodes(&mut ws(), "web", &strs(&["v2"]));
    assert_eq!(tagged.len(), 1);

    assert_eq!(v.checks_in_state(&mut ws(), "critical").1.len(), 1);
    assert_eq!(v.checks_in_state(&mut ws(), "passing").1.len(), 1);
    assert_eq!(v.checks_in_state(&mut ws(), "warning").1.len(), 1);
    assert_eq!(v.checks_in_state(&mut ws(), "any").1.len(), 3);
    let (idx, sc) = v.service_checks(&mut ws(), "web");
    assert_eq!(idx, v.table_index(Table::Checks));
    assert_eq!(sc.len(), 1);
    assert_eq!(sc[0].check_id, "web1-http");
}

#[test]
fn node_level_check_change_bumps_service_index() {
    let mut h = H::new();
    h.service("n1", "web1", "web", &[]);
    let i = h.check("n1", "serfHealth", "passing", "");
    assert_eq!(
        h.store.view().check_service_nodes(&mut ws(), "web", &[]).0,
        i
    );
    let i = h.ok(dereg("n1", "", "serfHealth"));
    assert_eq!(
        h.store.view().check_service_nodes(&mut ws(), "web", &[]).0,
        i
    );
}
