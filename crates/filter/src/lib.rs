//! Consul's `?filter=` expressions: go-bexpr's grammar (the version Consul pins), checked
//! against the selectors of the type an endpoint returns, and run over the response.
//!
//! ```text
//! Service.Tags contains "primary" and not (Node.Meta.zone == "eu" or Checks.Status != passing)
//! ```
//!
//! [`Filter::new`] parses the expression and checks every selector and operator against a
//! [`Schema`] (Consul's field names and kinds per endpoint, in [`schemas`]), so a bad filter is
//! refused before any blocking wait, with go-bexpr's messages (`Selector "Foo" is not valid`,
//! `1:4 (3): no match found, …`). [`Filter::matches`] then evaluates it against one element of
//! the response as JSON: the API shapes already carry Consul's field names, so one evaluator
//! serves every endpoint.
//!
//! Semantics are go-bexpr's: `in`/`contains` is a substring test on strings, membership on
//! lists, a key test on maps; a selector through a list of structs (`Checks.Status`) matches
//! when any element does; a missing map key makes `==`, `in`, `is not empty` and `matches`
//! false and their negations true.

mod eval;
mod parse;
pub mod schemas;

pub use schemas::{Field, Kind, Schema};

use serde::Serialize;
use serde_json::Value;

/// A filter that failed to parse or to check; the text is what Consul's clients see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError(pub String);

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Failed to create boolean expression evaluator: {}",
            self.0
        )
    }
}
impl std::error::Error for FilterError {}

/// A parsed and checked filter expression.
#[derive(Debug, Clone)]
pub struct Filter {
    expr: eval::Expr,
}

impl Filter {
    /// Parse `text` and check it against `schema`.
    pub fn new(text: &str, schema: &'static Schema) -> Result<Filter, FilterError> {
        let ast = parse::parse(text).map_err(FilterError)?;
        let expr = eval::compile(ast, schema).map_err(FilterError)?;
        Ok(Filter { expr })
    }

    /// Does `item` (one element of the response, as JSON) pass?
    pub fn matches_value(&self, item: &Value) -> bool {
        self.expr.eval(item)
    }

    /// Does `item` pass? (Serialised to JSON to be read by Consul's field names.)
    pub fn matches<T: Serialize>(&self, item: &T) -> bool {
        serde_json::to_value(item).is_ok_and(|v| self.matches_value(&v))
    }

    /// Keep the elements of `items` that pass, in order.
    pub fn retain<T: Serialize>(&self, items: &mut Vec<T>) {
        items.retain(|i| self.matches(i));
    }

    /// Keep the entries of a map whose value passes (keys are not visible to the filter).
    pub fn retain_values<K: Ord, T: Serialize>(&self, map: &mut std::collections::BTreeMap<K, T>) {
        map.retain(|_, v| self.matches(v));
    }
}

#[cfg(test)]
mod tests;
