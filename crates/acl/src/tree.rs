//! The lookup structure for named rules: Consul's radix tree, as an ordered map.
//!
//! Consul (`acl/policy_authorizer.go`) stores, per resource, one radix-tree leaf per name, each
//! with an optional exact rule and an optional prefix rule. The walks it does on that tree are
//! reproduced here on a `BTreeMap` (same answers, simpler code):
//!
//! - `getPolicy` (every named check): walk the leaves whose names are prefixes of the segment,
//!   shortest first; an exact rule on the segment itself ends the walk and wins; otherwise the
//!   last (longest) prefix rule seen wins. So: **exact beats prefix, the longest prefix wins, and
//!   `""` is a prefix of everything**. Merging has already left at most one level per leaf side.
//! - `WalkPrefix` (KV tree deletes): every leaf whose name starts with the given prefix.
//! - `anyAllowed` / `allAllowed` (`ServiceWriteAny`, `NodeReadAll`, `ServiceReadAll`, intention
//!   checks on `*`): scans of every leaf, see the methods.

use std::collections::BTreeMap;

use crate::access::{AccessLevel, EnforcementDecision, Required};

/// The rules on one name: `<resource> "<name>"` and `<resource>_prefix "<name>"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Leaf {
    pub exact: Option<AccessLevel>,
    pub prefix: Option<AccessLevel>,
}

/// Whether a rule applies to one name or to every name starting with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MatchKind {
    Exact,
    Prefix,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct RuleTree {
    leaves: BTreeMap<String, Leaf>,
    /// The lengths of the names that carry a prefix rule, longest first: a lookup tries only
    /// those cuts of the segment (every request is checked, so this is the hot path).
    prefix_lens: Vec<usize>,
}

impl RuleTree {
    /// Set the rule of one kind on `name`; a later insert of the same kind replaces the earlier
    /// one (Consul's `insertPolicyIntoRadix`; merged policies have one rule per kind and name).
    pub fn insert(&mut self, name: &str, kind: MatchKind, level: AccessLevel) {
        let leaf = self.leaves.entry(name.to_string()).or_default();
        match kind {
            MatchKind::Exact => leaf.exact = Some(level),
            MatchKind::Prefix => {
                leaf.prefix = Some(level);
                if let Err(at) = self.prefix_lens.binary_search_by(|l| name.len().cmp(l)) {
                    self.prefix_lens.insert(at, name.len());
                }
            }
        }
    }

    /// The rule that governs `segment` (Consul's `getPolicy`): its exact rule if any, else the
    /// prefix rule with the longest name that `segment` starts with.
    pub fn lookup(&self, segment: &str) -> Option<AccessLevel> {
        if let Some(level) = self.leaves.get(segment).and_then(|leaf| leaf.exact) {
            return Some(level);
        }
        self.longest_prefix_rule(segment)
    }

    /// The prefix rule with the longest name that `segment` starts with (`""` included).
    /// Names are whole strings, so only char boundaries can end a matching name.
    pub fn longest_prefix_rule(&self, segment: &str) -> Option<AccessLevel> {
        self.prefix_lens
            .iter()
            .filter(|&&end| end <= segment.len() && segment.is_char_boundary(end))
            .find_map(|&end| {
                self.leaves
                    .get(&segment[..end])
                    .and_then(|leaf| leaf.prefix)
            })
    }

    /// Every leaf whose name starts with `prefix`, `prefix` itself included (radix `WalkPrefix`).
    pub fn leaves_under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a Leaf> + 'a {
        self.leaves
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(name, _)| name.starts_with(prefix))
            .map(|(_, leaf)| leaf)
    }

    /// The `""` prefix rule, which covers every name.
    fn catch_all(&self) -> Option<AccessLevel> {
        self.leaves.get("").and_then(|leaf| leaf.prefix)
    }

    /// Is `required` granted on *some* name? (Consul's `anyAllowed`.) `Allow` as soon as any
    /// rule, exact or prefix, grants it; otherwise the `""` prefix rule's answer (`Deny` when it
    /// exists), or `Default` when there is no catch-all rule.
    pub fn any_allowed(&self, required: Required) -> EnforcementDecision {
        let granted_somewhere = self.leaves.values().any(|leaf| {
            [leaf.prefix, leaf.exact]
                .into_iter()
                .flatten()
                .any(|level| level.grants(required) == EnforcementDecision::Allow)
        });
        if granted_somewhere {
            return EnforcementDecision::Allow;
        }
        match self.catch_all() {
            Some(level) => level.grants(required),
            None => EnforcementDecision::Default,
        }
    }

    /// Is `required` granted on *every* name? (Consul's `allAllowed`.) `Deny` as soon as any
    /// rule, exact or prefix, does not grant it; otherwise `Allow` if the `""` prefix rule grants
    /// it, and `Default` when there is no catch-all rule (the default policy then decides for
    /// the names no rule covers).
    pub fn all_allowed(&self, required: Required) -> EnforcementDecision {
        let refused_somewhere = self.leaves.values().any(|leaf| {
            [leaf.prefix, leaf.exact]
                .into_iter()
                .flatten()
                .any(|level| level.grants(required) == EnforcementDecision::Deny)
        });
        if refused_somewhere {
            return EnforcementDecision::Deny;
        }
        match self.catch_all() {
            Some(level) => level.grants(required),
            None => EnforcementDecision::Default,
        }
    }
}
