use proconsul_state::{Command, CoordinateUpdate, Store, Table};

use crate::common::*;

fn coord(node: &str, x: f64) -> CoordinateUpdate {
    CoordinateUpdate {
        node: node.into(),
        segment: String::new(),
        vec: vec![x, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        error: 0.5,
        adjustment: 0.0,
        height: 10.0e-6,
    }
}

#[test]
fn batch_update_keeps_known_valid_nodes_only() {
    let mut h = H::new();
    h.node("n1", "10.0.0.1");
    h.node("N2", "10.0.0.2");
    let mut bad = coord("n1", f64::NAN);
    bad.segment = "alpha".into();
    let idx = h.ok(Command::CoordinateBatchUpdate(vec![
        coord("n1", 0.001),
        coord("n2", 0.002),
        coord("ghost", 0.003),
        bad,
    ]));
    let v = h.store.view();
    let (i, all) = v.coordinates(&mut ws());
    assert_eq!(i, idx);
    let names: Vec<&str> = all.iter().map(|c| c.node.as_str()).collect();
    assert_eq!(
        names,
        ["n1", "N2"],
        "unknown node and NaN skipped; catalog spelling kept"
    );
    assert_eq!(all[0].coord.vec[0], 0.001);
    let (_, one) = v.node_coordinates(&mut ws(), "N1");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].segment, "");
    assert!(v.node_coordinates(&mut ws(), "ghost").1.is_empty());

    // The latest update of a node replaces the previous one.
    h.ok(Command::CoordinateBatchUpdate(vec![coord("n1", 0.005)]));
    let (_, all) = h.store.view().coordinates(&mut ws());
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].coord.vec[0], 0.005);
}

#[test]
fn coordinates_leave_with_their_node_and_wake_watchers() {
    let mut h = H::new();
    h.node("n1", "10.0.0.1");
    h.node("n2", "10.0.0.2");
    h.ok(Command::CoordinateBatchUpdate(vec![
        coord("n1", 0.001),
        coord("n2", 0.002),
    ]));
    let mut w = ws();
    h.store.view().coordinates(&mut w);
    let mut catalog = ws();
    h.store.view().nodes(&mut catalog);
    h.ok(Command::CoordinateBatchUpdate(vec![coord("n1", 0.004)]));
    assert!(
        w.is_changed(),
        "a coordinate write wakes coordinate queries"
    );
    assert!(!catalog.is_changed(), "but not catalog queries");

    let mut w = ws();
    h.store.view().coordinates(&mut w);
    let idx = h.ok(dereg("n1", "", ""));
    assert!(w.is_changed());
    let v = h.store.view();
    let (i, all) = v.coordinates(&mut ws());
    assert_eq!(
        i, idx,
        "deleting the node's coordinates moves the table index"
    );
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].node, "n2");
    assert_eq!(v.table_index(Table::Coordinates), idx);
}

#[test]
fn coordinates_survive_snapshot_and_restore() {
    let mut h = H::new();
    h.node("n1", "10.0.0.1");
    h.ok(Command::CoordinateBatchUpdate(vec![coord("n1", 0.001)]));
    let bytes = h.store.dump();
    let fresh = Store::new();
    fresh.restore(&bytes).unwrap();
    assert_eq!(fresh.dump(), bytes);
    assert_eq!(
        fresh.view().coordinates(&mut ws()),
        h.store.view().coordinates(&mut ws())
    );
}
