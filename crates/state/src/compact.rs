//! Compact, shareable forms of record fields that are small lists: a string map (`Meta`, a
//! node's `TaggedAddresses`) and a list of tags.
//!
//! Both are immutable once built and held behind one `Arc`, so a record that repeats another's
//! list holds a pointer instead of a copy: every check of a service instance carries the
//! instance's tags (Consul's `HealthCheck.ServiceTags`), and the instances of one service usually
//! carry the same tags and meta (see `State::share_with_siblings`). Empty is `None` and allocates
//! nothing. Each encodes exactly as the plain type it replaces (a map in key order, a sequence),
//! so snapshots and log entries are unchanged.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A string map as a sorted slice rather than a `BTreeMap`, whose first entry allocates a
/// 540-byte node. Encoded as the `BTreeMap` it replaces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StrMap(Option<Arc<[Entry]>>);

/// One key and value of a [`StrMap`].
type Entry = (Box<str>, Box<str>);

impl StrMap {
    pub fn from_api(m: &BTreeMap<String, String>) -> Self {
        if m.is_empty() {
            return StrMap(None);
        }
        StrMap(Some(
            m.iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                .collect(),
        ))
    }

    pub fn to_api(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .flat_map(|s| s.iter())
            .map(|(k, v)| (&**k, &**v))
    }

    /// This map, holding `other`'s allocation if the two are equal.
    pub fn share(&mut self, other: &StrMap) {
        if *self == *other {
            self.0.clone_from(&other.0);
        }
    }

    /// Do the two hold one allocation?
    #[cfg(test)]
    pub fn shares(&self, other: &StrMap) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Serialize for StrMap {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for StrMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Through a BTreeMap: sorted, and a repeated key keeps its last value, as before.
        BTreeMap::<String, String>::deserialize(d).map(|m| StrMap::from_api(&m))
    }
}

/// A list of tags, in the order given. Encoded as the `Vec<String>` it replaces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tags(Option<Arc<[Box<str>]>>);

impl Tags {
    pub fn from_api(tags: &[String]) -> Self {
        if tags.is_empty() {
            return Tags(None);
        }
        Tags(Some(tags.iter().map(|t| t.as_str().into()).collect()))
    }

    pub fn to_api(&self) -> Vec<String> {
        self.iter().map(str::to_owned).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().flat_map(|s| s.iter()).map(|t| &**t)
    }

    /// This list, holding `other`'s allocation if the two are equal.
    pub fn share(&mut self, other: &Tags) {
        if *self == *other {
            self.0.clone_from(&other.0);
        }
    }

    /// Do the two hold one allocation?
    #[cfg(test)]
    pub fn shares(&self, other: &Tags) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Serialize for Tags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<String>::deserialize(d).map(|v| Tags::from_api(&v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_lists_allocate_nothing_and_encode_as_before() {
        assert_eq!(std::mem::size_of::<Tags>(), 16);
        assert_eq!(std::mem::size_of::<StrMap>(), 16);
        let tags = Tags::from_api(&[]);
        assert_eq!(tags, Tags(None));
        let empty: Vec<String> = Vec::new();
        assert_eq!(
            rmp_serde::to_vec_named(&tags).unwrap(),
            rmp_serde::to_vec_named(&empty).unwrap()
        );
        let map = StrMap::from_api(&BTreeMap::new());
        assert_eq!(map, StrMap(None));
        assert_eq!(
            rmp_serde::to_vec_named(&map).unwrap(),
            rmp_serde::to_vec_named(&BTreeMap::<String, String>::new()).unwrap()
        );
    }

    #[test]
    fn equal_lists_share_one_allocation() {
        let plain = vec!["v1".to_owned(), "primary".to_owned()];
        let a = Tags::from_api(&plain);
        let mut b = Tags::from_api(&plain);
        assert!(!b.shares(&a));
        b.share(&a);
        assert!(b.shares(&a));
        let mut c = Tags::from_api(&plain[..1]);
        c.share(&a);
        assert!(!c.shares(&a));
        assert_eq!(c.to_api(), vec!["v1".to_owned()]);
        assert_eq!(
            rmp_serde::to_vec_named(&b).unwrap(),
            rmp_serde::to_vec_named(&plain).unwrap()
        );
    }
}
