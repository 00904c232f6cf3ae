//! Checking a parsed filter against a schema, and evaluating it over JSON.

use regex_lite::Regex;
use serde_json::Value;

use crate::parse::{Ast, Op};
use crate::schemas::{Kind, Schema};

/// A checked expression, ready to run.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Match(Match),
}

/// How to walk from an element to the selected value.
#[derive(Debug, Clone)]
enum Step {
    /// A struct field; `each` when the field is a list of structs that the rest of the path
    /// walks into (any element may match).
    Field { name: String, each: bool },
    /// A key of a map.
    Key(String),
}

/// The value compared against, coerced to the selected field's kind.
#[derive(Debug, Clone)]
enum Operand {
    None,
    Str(String),
    Bool(bool),
    Int(i64),
    Regex(Regex),
}

#[derive(Debug, Clone)]
pub(crate) struct Match {
    steps: Vec<Step>,
    kind: Kind,
    op: Op,
    operand: Operand,
}

pub(crate) fn compile(ast: Ast, schema: &'static Schema) -> Result<Expr, String> {
    Ok(match ast {
        Ast::Or(a, b) => Expr::Or(
            Box::new(compile(*a, schema)?),
            Box::new(compile(*b, schema)?),
        ),
        Ast::And(a, b) => Expr::And(
            Box::new(compile(*a, schema)?),
            Box::new(compile(*b, schema)?),
        ),
        Ast::Not(a) => Expr::Not(Box::new(compile(*a, schema)?)),
        Ast::Match {
            selector,
            op,
            value,
        } => Expr::Match(compile_match(&selector, op, value, schema)?),
    })
}

fn compile_match(
    selector: &[String],
    op: Op,
    value: Option<String>,
    schema: &'static Schema,
) -> Result<Match, String> {
    let full = selector.join(".");
    let mut steps: Vec<Step> = Vec::new();
    let mut kind = Kind::Struct(schema);
    for (i, seg) in selector.iter().enumerate() {
        let invalid = || format!("Selector {:?} is not valid", selector[..=i].join("."));
        kind = match kind {
            Kind::Struct(fields) | Kind::StructList(fields) => {
                if let (Kind::StructList(_), Some(Step::Field { each, .. })) =
                    (kind, steps.last_mut())
                {
                    *each = true;
                }
                let field = fields.iter().find(|f| f.name == seg).ok_or_else(invalid)?;
                steps.push(Step::Field {
                    name: seg.clone(),
                    each: false,
                });
                field.kind
            }
            Kind::StrMap => {
                steps.push(Step::Key(seg.clone()));
                Kind::Str
            }
            Kind::StructMap(fields) => {
                steps.push(Step::Key(seg.clone()));
                Kind::Struct(fields)
            }
            Kind::Str | Kind::Bool | Kind::Int | Kind::StrList => return Err(invalid()),
        };
    }
    use Op::*;
    let allowed = match kind {
        Kind::Str => matches!(op, Equal | NotEqual | In | NotIn | Matches | NotMatches),
        Kind::Bool | Kind::Int => matches!(op, Equal | NotEqual),
        Kind::StrList | Kind::StrMap | Kind::StructMap(_) => {
            matches!(op, In | NotIn | IsEmpty | IsNotEmpty)
        }
        Kind::StructList(_) => matches!(op, IsEmpty | IsNotEmpty),
        Kind::Struct(_) => false,
    };
    if !allowed {
        return Err(format!(
            "Invalid match operator {:?} for selector {full:?}",
            op.name()
        ));
    }
    let operand = match (value, kind, op) {
        (None, _, _) => Operand::None,
        (Some(v), _, Matches | NotMatches) => Operand::Regex(
            Regex::new(&v)
                .map_err(|e| format!("Failed to compile regular expression {v:?}: {e}"))?,
        ),
        (Some(v), Kind::Bool, _) => Operand::Bool(parse_bool(&v).ok_or_else(|| {
            format!(
                "Failed to coerce value {v:?} for selector {full:?}: strconv.ParseBool: parsing {v:?}: invalid syntax"
            )
        })?),
        (Some(v), Kind::Int, _) => Operand::Int(parse_int(&v).ok_or_else(|| {
            format!(
                "Failed to coerce value {v:?} for selector {full:?}: strconv.ParseInt: parsing {v:?}: invalid syntax"
            )
        })?),
        (Some(v), _, _) => Operand::Str(v),
    };
    Ok(Match {
        steps,
        kind,
        op,
        operand,
    })
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`: a sign, then decimal, `0x`, `0o`/`0`, or `0b`.
fn parse_int(s: &str) -> Option<i64> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let digits = digits.replace('_', "");
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(b) = lower.strip_prefix("0x") {
        (16, b.to_string())
    } else if let Some(b) = lower.strip_prefix("0o") {
        (8, b.to_string())
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower)
    };
    let n = i64::from_str_radix(&body, radix).ok()?;
    Some(if neg { -n } else { n })
}

impl Expr {
    pub(crate) fn eval(&self, item: &Value) -> bool {
        match self {
            Expr::Or(a, b) => a.eval(item) || b.eval(item),
            Expr::And(a, b) => a.eval(item) && b.eval(item),
            Expr::Not(a) => !a.eval(item),
            Expr::Match(m) => m.eval(item, &m.steps),
        }
    }
}

static NULL: Value = Value::Null;

impl Match {
    fn eval(&self, v: &Value, steps: &[Step]) -> bool {
        let Some((step, rest)) = steps.split_first() else {
            return self.leaf(v);
        };
        match step {
            Step::Field { name, each } => {
                // An absent field (a nil pointer in Go) reads as its zero value.
                let child = v.get(name).unwrap_or(&NULL);
                if *each {
                    child
                        .as_array()
                        .is_some_and(|items| items.iter().any(|i| self.eval(i, rest)))
                } else {
                    self.eval(child, rest)
                }
            }
            Step::Key(key) => match v.get(key) {
                Some(child) => self.eval(child, rest),
                // go-bexpr: a missing map key fails the positive operators.
                None => matches!(
                    self.op,
                    Op::NotEqual | Op::NotIn | Op::NotMatches | Op::IsEmpty
                ),
            },
        }
    }

    fn leaf(&self, v: &Value) -> bool {
        let positive = match self.op {
            Op::Equal | Op::NotEqual => match (&self.operand, self.kind) {
                (Operand::Bool(b), _) => v.as_bool().unwrap_or(false) == *b,
                (Operand::Int(n), _) => {
                    v.as_i64() == Some(*n)
                        || (v.is_null() && *n == 0)
                        || v.as_f64() == Some(*n as f64)
                }
                (Operand::Str(s), _) => v.as_str().unwrap_or("") == s,
                _ => false,
            },
            Op::In | Op::NotIn => {
                let Operand::Str(s) = &self.operand else {
                    return false;
                };
                match v {
                    Value::String(text) => text.contains(s.as_str()),
                    Value::Array(items) => items.iter().any(|i| i.as_str() == Some(s)),
                    Value::Object(map) => map.contains_key(s),
                    _ => false,
                }
            }
            Op::Matches | Op::NotMatches => match &self.operand {
                Operand::Regex(re) => re.is_match(v.as_str().unwrap_or("")),
                _ => false,
            },
            Op::IsEmpty | Op::IsNotEmpty => match v {
                Value::Array(items) => items.is_empty(),
                Value::Object(map) => map.is_empty(),
                Value::Null => true,
                _ => false,
            },
        };
        match self.op {
            Op::NotEqual | Op::NotIn | Op::NotMatches | Op::IsNotEmpty => !positive,
            _ => positive,
        }
    }
}
