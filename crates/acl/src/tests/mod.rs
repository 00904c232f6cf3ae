//! Tests: parsing, per-resource decisions, precedence, merging, defaults, synthetic policies,
//! and a property test against a naive reference implementation.

mod defaults;
mod identities;
mod merge;
mod parse;
mod precedence;
mod property;
mod resources;

use crate::{Authorizer, DefaultPolicy, Policy, PolicyAuthorizer};

/// Parse rules that the test expects to be valid.
fn policy(rules: &str) -> Policy {
    Policy::parse(rules).unwrap_or_else(|e| panic!("rules should parse: {e}\n{rules}"))
}

/// The policies-only authorizer of one rules text.
fn decisions(rules: &str) -> PolicyAuthorizer {
    PolicyAuthorizer::new([&policy(rules)])
}

/// The full authorizer of one rules text.
fn authorizer(rules: &str, default: DefaultPolicy) -> Authorizer {
    Authorizer::new([&policy(rules)], default)
}
