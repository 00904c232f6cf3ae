use proconsul_state::{
    ApplyResult, Command, PreparedQueryCommand, PreparedQueryRec, StateError, Store, Table,
};

use crate::common::*;

fn query(id: &str, name: &str, service: &str) -> PreparedQueryRec {
    PreparedQueryRec {
        id: id.into(),
        name: name.into(),
        service: service.into(),
        ..Default::default()
    }
}

fn set(q: PreparedQueryRec) -> Command {
    Command::PreparedQuery(PreparedQueryCommand::Set(q))
}

fn err_text(r: ApplyResult) -> String {
    match r {
        ApplyResult::Err(e) => e.to_string(),
        other => panic!("expected an error, got {other:?}"),
    }
}

const ID1: &str = "11111111-0000-0000-0000-000000000001";
const ID2: &str = "11111111-0000-0000-0000-000000000002";

#[test]
fn set_get_list_update_delete_with_indexes() {
    let mut h = H::new();
    let i1 = h.ok(set(query(ID1, "web", "web")));
    let v = h.store.view();
    let (idx, got) = v.prepared_query(&mut ws(), ID1);
    let got = got.unwrap();
    assert_eq!(idx, i1);
    assert_eq!((got.create_index, got.modify_index), (i1, i1));
    assert_eq!(got.service.service, "web");

    let mut q = query(ID1, "web", "web-v2");
    q.only_passing = true;
    let i2 = h.ok(set(q));
    let got = h.store.view().prepared_query(&mut ws(), ID1).1.unwrap();
    assert_eq!((got.create_index, got.modify_index), (i1, i2));
    assert!(got.service.only_passing);

    h.ok(set(query(ID2, "", "db")));
    let (_, all) = h.store.view().prepared_queries(&mut ws());
    assert_eq!(
        all.iter().map(|q| q.id.as_str()).collect::<Vec<_>>(),
        [ID1, ID2]
    );

    // Resolved by ID, or by name whatever its case.
    let v = h.store.view();
    assert_eq!(v.prepared_query_resolve(ID2).1.unwrap().id, ID2);
    assert_eq!(v.prepared_query_resolve("WEB").1.unwrap().id, ID1);
    assert!(v.prepared_query_resolve("nope").1.is_none());

    let i3 = h.ok(Command::PreparedQuery(PreparedQueryCommand::Delete {
        id: ID1.into(),
    }));
    let v = h.store.view();
    assert!(v.prepared_query(&mut ws(), ID1).1.is_none());
    assert!(v.prepared_query_resolve("web").1.is_none());
    assert_eq!(v.table_index(Table::PreparedQueries), i3);
    // The name is free again.
    h.ok(set(query(ID2, "web", "db")));
}

#[test]
fn names_are_unique_and_never_another_query_id() {
    let mut h = H::new();
    h.ok(set(query(ID1, "web", "web")));
    assert_eq!(
        err_text(h.apply(set(query(ID2, "Web", "redis")))),
        "name 'Web' aliases an existing query name"
    );
    assert_eq!(
        err_text(h.apply(set(query(ID2, ID1, "redis")))),
        format!("name '{ID1}' aliases an existing query ID")
    );
    assert!(h.store.view().prepared_query(&mut ws(), ID2).1.is_none());
    // Renaming itself is fine.
    h.ok(set(query(ID1, "WEB", "web")));
}

#[test]
fn a_session_must_exist_and_takes_its_queries_with_it() {
    let mut h = H::new();
    let mut q = query(ID1, "", "web");
    q.session = "s1".into();
    assert_eq!(
        h.apply(set(q.clone())),
        ApplyResult::Err(StateError::InvalidSession("s1".into()))
    );
    h.node("n1", "10.0.0.1");
    assert!(!h.session("s1", "n1", "", 0).is_err());
    h.ok(set(q));
    h.ok(set(query(ID2, "kept", "db")));
    h.ok(Command::SessionDestroy { id: "s1".into() });
    let (_, all) = h.store.view().prepared_queries(&mut ws());
    assert_eq!(all.iter().map(|q| q.id.as_str()).collect::<Vec<_>>(), [ID2]);
}

#[test]
fn snapshots_carry_queries_and_their_names() {
    let mut h = H::new();
    let mut q = query(ID1, "web", "web");
    q.failover_datacenters = vec!["dc2".into(), "dc3".into()];
    q.tags = vec!["v1".into(), "!canary".into()];
    h.ok(set(q));
    let fresh = Store::new();
    fresh.restore(&h.store.dump()).unwrap();
    assert_eq!(fresh.dump(), h.store.dump());
    let got = fresh.view().prepared_query_resolve("web").1.unwrap();
    assert_eq!(got.service.failover.datacenters, ["dc2", "dc3"]);
    assert_eq!(got.service.tags, ["v1", "!canary"]);
}

#[test]
fn templates_resolve_by_longest_name_prefix() {
    let mut h = H::new();
    let template = |id: &str, name: &str| PreparedQueryRec {
        template_type: "name_prefix_match".into(),
        ..query(id, name, "${name.suffix}")
    };
    h.ok(set(template(ID1, "")));
    assert_eq!(
        err_text(h.apply(set(template(ID2, "")))),
        "a query template with an empty name already exists"
    );
    h.ok(set(template(ID2, "geo-")));
    h.ok(set(query(
        "11111111-0000-0000-0000-000000000003",
        "geo-exact",
        "x",
    )));
    let v = h.store.view();
    let id_of = |name: &str| v.prepared_query_resolve(name).1.unwrap().id;
    assert_eq!(id_of("geo-db"), ID2);
    assert_eq!(id_of("GEO-db"), ID2);
    assert_eq!(id_of("anything"), ID1);
    assert_eq!(id_of("geo-exact"), "11111111-0000-0000-0000-000000000003");
}
