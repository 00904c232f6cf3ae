//! The catalog's keys: case-folded node names and service and check IDs, each one allocation
//! shared by every table and index that names the same node, instance or check.
//!
//! An instance is named by the services table, the service-name index, its checks' keys and
//! the checks-by-service index; as `String`s that was nine folded copies per instance, each 24
//! bytes inline in a B-tree leaf plus its own allocation. A [`Key`] is 16 bytes inline, and a
//! table that names something another table already holds clones that table's key (see
//! `State::node_key`, `State::service_key`), and so does a record whose own name or ID spells
//! the same as its key ([`share`]). Lookups borrow: [`PairRef`] and [`TripleRef`]
//! compare with the owned tuples (imbl's maps take any `equivalent::Comparable` key), so a
//! read never allocates a key.

use std::cmp::Ordering;
use std::sync::Arc;

use equivalent::{Comparable, Equivalent};

/// A case-folded name or ID.
pub(crate) type Key = Arc<str>;
/// (folded node, folded service or check ID)
pub(crate) type KeyPair = (Key, Key);
/// (folded node, folded service ID, folded check ID)
pub(crate) type KeyTriple = (Key, Key, Key);

/// `field` holding `key`'s allocation when it spells the same: a record's node name or ID as
/// registered, which is usually already lower case.
pub(crate) fn share(field: &mut Arc<str>, key: &Key) {
    if **field == **key {
        field.clone_from(key);
    }
}

/// A borrowed [`KeyPair`], for lookups and ranges.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PairRef<'a>(pub &'a str, pub &'a str);

impl Equivalent<KeyPair> for PairRef<'_> {
    fn equivalent(&self, k: &KeyPair) -> bool {
        self.0 == &*k.0 && self.1 == &*k.1
    }
}

impl Comparable<KeyPair> for PairRef<'_> {
    fn compare(&self, k: &KeyPair) -> Ordering {
        (self.0, self.1).cmp(&(&*k.0, &*k.1))
    }
}

/// A borrowed [`KeyTriple`], for ranges.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TripleRef<'a>(pub &'a str, pub &'a str, pub &'a str);

impl Equivalent<KeyTriple> for TripleRef<'_> {
    fn equivalent(&self, k: &KeyTriple) -> bool {
        self.0 == &*k.0 && self.1 == &*k.1 && self.2 == &*k.2
    }
}

impl Comparable<KeyTriple> for TripleRef<'_> {
    fn compare(&self, k: &KeyTriple) -> Ordering {
        (self.0, self.1, self.2).cmp(&(&*k.0, &*k.1, &*k.2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_keys_order_as_the_owned_ones() {
        let owned: KeyPair = ("node-1".into(), "web-1".into());
        for (a, b) in [
            ("node-1", "web-1"),
            ("node-1", ""),
            ("node-10", ""),
            ("node-", "x"),
        ] {
            let want = (a, b).cmp(&("node-1", "web-1"));
            assert_eq!(PairRef(a, b).compare(&owned), want);
            assert_eq!(PairRef(a, b).equivalent(&owned), want == Ordering::Equal);
        }
        let owned: KeyTriple = ("n".into(), "s".into(), "c".into());
        assert_eq!(TripleRef("n", "s", "").compare(&owned), Ordering::Less);
        assert!(TripleRef("n", "s", "c").equivalent(&owned));
    }
}
