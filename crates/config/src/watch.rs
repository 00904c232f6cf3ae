//! Watch specifications: what `watch -type=...` takes on the command line and what a config
//! file's `watches` list holds, validated with Consul's rules and messages (`api/watch`).
//!
//! This module only parses and checks; it runs nothing. The binary runs the plans (its watch
//! loop serves both the `watch` command and the agent's configured watches), so the rules for
//! "which parameters does a `service` watch take" live here once.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

pub use crate::error::{FieldError, HttpHandlerError, PlanError, WatchError};

/// Consul's default timeout of an HTTP watch handler.
pub const DEFAULT_HTTP_HANDLER_TIMEOUT: Duration = Duration::from_secs(10);
/// Most watches one agent runs (each is a thread with a blocking query).
pub const MAX_WATCHES: usize = 256;

/// What is watched, with its parameters (Consul's watch types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Key(String),
    KeyPrefix(String),
    Services,
    Nodes,
    Service {
        service: String,
        tags: Vec<String>,
        passing: bool,
    },
    Checks {
        service: String,
        state: String,
        tags: Vec<String>,
    },
    Event(String),
}

/// A watch's parameters in Consul's names, before the per-type rules are applied.
#[derive(Debug, Default, Clone)]
pub struct Params {
    pub watch_type: String,
    pub key: String,
    pub prefix: String,
    pub service: String,
    pub tags: Vec<String>,
    pub passing: Option<bool>,
    pub state: String,
    pub name: String,
    pub stale: bool,
}

impl Params {
    /// Validate like Consul's `watch.Parse`: required parameters per type, and every given
    /// parameter must be used by the type (`Invalid parameters: [key]`).
    pub fn plan(&self) -> Result<Plan, PlanError> {
        let mut given: Vec<&str> = Vec::new();
        for (name, set) in [
            ("key", !self.key.is_empty()),
            ("prefix", !self.prefix.is_empty()),
            ("service", !self.service.is_empty()),
            ("tag", !self.tags.is_empty()),
            ("stale", self.stale),
            ("state", !self.state.is_empty()),
            ("name", !self.name.is_empty()),
            ("passingonly", self.passing.is_some()),
        ] {
            if set {
                given.push(name);
            }
        }
        let tags = self.tags.clone();
        let (plan, used): (Plan, &[&str]) = match self.watch_type.as_str() {
            "key" => {
                if self.key.is_empty() {
                    return Err(PlanError::MissingKey);
                }
                (Plan::Key(self.key.clone()), &["stale", "key"])
            }
            "keyprefix" => {
                if self.prefix.is_empty() {
                    return Err(PlanError::MissingPrefix);
                }
                (Plan::KeyPrefix(self.prefix.clone()), &["stale", "prefix"])
            }
            "services" => (Plan::Services, &["stale"]),
            "nodes" => (Plan::Nodes, &["stale"]),
            "service" => {
                if self.service.is_empty() {
                    return Err(PlanError::MissingService);
                }
                (
                    Plan::Service {
                        service: self.service.clone(),
                        tags,
                        passing: self.passing.unwrap_or(false),
                    },
                    &["stale", "service", "tag", "passingonly"],
                )
            }
            "checks" => {
                if !self.service.is_empty() && !self.state.is_empty() {
                    return Err(PlanError::ServiceAndState);
                }
                let state = if self.service.is_empty() && self.state.is_empty() {
                    "any".to_string()
                } else {
                    self.state.clone()
                };
                (
                    Plan::Checks {
                        service: self.service.clone(),
                        state,
                        tags,
                    },
                    &["stale", "service", "state", "tag"],
                )
            }
            "event" => (Plan::Event(self.name.clone()), &["name"]),
            other => return Err(PlanError::UnsupportedType(other.into())),
        };
        let bad: Vec<String> = given
            .into_iter()
            .filter(|g| !used.contains(g))
            .map(String::from)
            .collect();
        if !bad.is_empty() {
            return Err(PlanError::InvalidParameters(bad));
        }
        Ok(plan)
    }
}

/// `http_handler_config` of a watch with `handler_type = "http"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpHandlerConfig {
    pub path: String,
    /// Default `POST`.
    pub method: String,
    pub header: BTreeMap<String, Vec<String>>,
    /// Default 10 s.
    pub timeout: Duration,
    pub tls_skip_verify: bool,
}

/// What runs when a configured watch fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchHandler {
    /// `args`: run directly, the data as JSON on stdin.
    Args(Vec<String>),
    /// `handler` (deprecated): one string run through the shell.
    Shell(String),
    /// `handler_type = "http"`.
    Http(HttpHandlerConfig),
}

/// One entry of the config's `watches`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchDefinition {
    /// The `type` as written (for logs).
    pub watch_type: String,
    pub plan: Plan,
    pub stale: bool,
    pub datacenter: String,
    pub token: String,
    pub handler: WatchHandler,
}

/// Decode a config file's `watches` (a list of objects, or one object).
pub(crate) fn watches(v: Value) -> Result<Vec<WatchDefinition>, crate::error::ParseError> {
    use crate::error::ParseError;
    let items = match v {
        Value::Array(items) => items,
        other => vec![other],
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(m) = item else {
                return Err(ParseError::WatchNotObject { index: i });
            };
            watch(m).map_err(|source| ParseError::Watch { index: i, source })
        })
        .collect()
}

fn take_string(m: &mut Map<String, Value>, name: &str) -> Result<String, FieldError> {
    match m.remove(name) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(FieldError::NotString(name.into())),
    }
}

fn take_bool(m: &mut Map<String, Value>, name: &str) -> Result<Option<bool>, FieldError> {
    match m.remove(name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(_) => Err(FieldError::NotBool(name.into())),
    }
}

fn string_list<E>(v: Value, err: impl Fn() -> E) -> Result<Vec<String>, E> {
    match v {
        Value::String(s) => Ok(vec![s]),
        Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => Ok(s),
                _ => Err(err()),
            })
            .collect(),
        _ => Err(err()),
    }
}

/// HCL decodes a nested block into a list of objects; fold it back into one object.
fn one_object(v: Value) -> Option<Map<String, Value>> {
    match v {
        Value::Object(m) => Some(m),
        Value::Array(items) if items.iter().all(Value::is_object) => {
            let mut merged = Map::new();
            for i in items {
                if let Value::Object(m) = i {
                    merged.extend(m);
                }
            }
            Some(merged)
        }
        _ => None,
    }
}

fn http_handler_config(v: Value) -> Result<HttpHandlerConfig, HttpHandlerError> {
    let mut m = one_object(v).ok_or(HttpHandlerError::NotObject)?;
    let path = take_string(&mut m, "path")?;
    let mut method = take_string(&mut m, "method")?;
    let timeout_raw = take_string(&mut m, "timeout")?;
    let tls_skip_verify = take_bool(&mut m, "tls_skip_verify")?.unwrap_or(false);
    let mut header = BTreeMap::new();
    if let Some(h) = m.remove("header") {
        let h = one_object(h).ok_or(HttpHandlerError::Header)?;
        for (k, v) in h {
            let vals = string_list(v, || HttpHandlerError::HeaderValues(k.clone()))?;
            header.insert(k, vals);
        }
    }
    if let Some(k) = m.keys().next() {
        return Err(HttpHandlerError::UnknownKey(k.clone()));
    }
    if path.is_empty() {
        return Err(HttpHandlerError::MissingPath);
    }
    if method.is_empty() {
        method = "POST".into();
    }
    let timeout = if timeout_raw.is_empty() {
        DEFAULT_HTTP_HANDLER_TIMEOUT
    } else {
        proconsul_types::duration::parse(&timeout_raw).map_err(HttpHandlerError::Timeout)?
    };
    Ok(HttpHandlerConfig {
        path,
        method,
        header,
        timeout,
        tls_skip_verify,
    })
}

/// One watch object, checked in the order Consul's `ParseExempt` + `makeWatchPlan` check it.
fn watch(mut m: Map<String, Value>) -> Result<WatchDefinition, WatchError> {
    let datacenter = take_string(&mut m, "datacenter")?;
    let token = take_string(&mut m, "token")?;
    let watch_type = take_string(&mut m, "type")?;
    if watch_type.is_empty() {
        return Err(WatchError::MissingType);
    }
    if watch_type.starts_with("connect_") {
        return Err(WatchError::ConnectType(watch_type));
    }
    let handler_type = match take_string(&mut m, "handler_type")?.as_str() {
        "" | "script" => "script",
        "http" => "http",
        other => return Err(WatchError::HandlerType(other.into())),
    };
    let http = if handler_type == "http" {
        let Some(v) = m.remove("http_handler_config") else {
            return Err(WatchError::MissingHttpHandlerConfig);
        };
        Some(http_handler_config(v)?)
    } else {
        None
    };
    let tags = match m.remove("tag") {
        None => Vec::new(),
        Some(v) => string_list(v, || WatchError::Tags)?,
    };
    let params = Params {
        key: take_string(&mut m, "key")?,
        prefix: take_string(&mut m, "prefix")?,
        service: take_string(&mut m, "service")?,
        tags,
        passing: take_bool(&mut m, "passingonly")?,
        state: take_string(&mut m, "state")?,
        name: take_string(&mut m, "name")?,
        stale: take_bool(&mut m, "stale")?.unwrap_or(false),
        watch_type: watch_type.clone(),
    };
    let plan = params.plan()?;
    let handler = m.remove("handler");
    let args = m.remove("args");
    if !m.is_empty() {
        let bad = m.keys().cloned().collect();
        return Err(PlanError::InvalidParameters(bad).into());
    }
    let handler = match (handler, args, http) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
            return Err(WatchError::SeveralHandlers)
        }
        (Some(Value::String(s)), None, None) => WatchHandler::Shell(s),
        (Some(_), None, None) => return Err(WatchError::HandlerNotString),
        (None, Some(a), None) => {
            let args = string_list(a, || WatchError::Args)?;
            if args.is_empty() {
                return Err(WatchError::NoHandler);
            }
            WatchHandler::Args(args)
        }
        (None, None, Some(h)) => WatchHandler::Http(h),
        (None, None, None) => return Err(WatchError::NoHandler),
    };
    Ok(WatchDefinition {
        watch_type,
        plan,
        stale: params.stale,
        datacenter,
        token,
        handler,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(t: &str) -> Params {
        Params {
            watch_type: t.into(),
            ..Params::default()
        }
    }

    #[test]
    fn parameters_are_checked_like_consul() {
        assert_eq!(
            params("key").plan().unwrap_err().to_string(),
            "Must specify a single key to watch"
        );
        assert_eq!(
            params("nope").plan().unwrap_err().to_string(),
            "Unsupported watch type: nope"
        );
        let p = Params {
            key: "k".into(),
            prefix: "x".into(),
            ..params("key")
        };
        assert_eq!(
            p.plan().unwrap_err().to_string(),
            "Invalid parameters: [prefix]"
        );
        let p = Params {
            stale: true,
            ..params("event")
        };
        assert_eq!(
            p.plan().unwrap_err().to_string(),
            "Invalid parameters: [stale]"
        );
        assert_eq!(
            params("checks").plan().unwrap(),
            Plan::Checks {
                service: String::new(),
                state: "any".into(),
                tags: vec![]
            }
        );
        let p = Params {
            service: "web".into(),
            state: "passing".into(),
            ..params("checks")
        };
        assert_eq!(p.plan().unwrap_err(), PlanError::ServiceAndState);
        assert_eq!(
            p.plan().unwrap_err().to_string(),
            "Cannot specify service and state"
        );
    }

    fn one(v: Value) -> Result<WatchDefinition, crate::error::ParseError> {
        watches(json!([v])).map(|mut w| w.remove(0))
    }

    #[test]
    fn config_watches_follow_consuls_rules() {
        let w = one(json!({"type": "key", "key": "a/b", "args": ["/bin/h", "x"]})).unwrap();
        assert_eq!(w.plan, Plan::Key("a/b".into()));
        assert_eq!(
            w.handler,
            WatchHandler::Args(vec!["/bin/h".into(), "x".into()])
        );
        let w = one(
            json!({"type": "service", "service": "web", "tag": ["a", "b"],
            "passingonly": true, "handler": "cat"}),
        )
        .unwrap();
        assert_eq!(
            w.plan,
            Plan::Service {
                service: "web".into(),
                tags: vec!["a".into(), "b".into()],
                passing: true
            }
        );
        assert_eq!(w.handler, WatchHandler::Shell("cat".into()));
        let w = one(json!({"type": "nodes", "handler_type": "http",
            "http_handler_config": {"path": "http://x/y", "header": {"a": ["1"]}, "timeout": "2s"}}))
        .unwrap();
        let WatchHandler::Http(h) = w.handler else {
            panic!()
        };
        assert_eq!(
            (h.method.as_str(), h.timeout, h.header["a"].clone()),
            ("POST", Duration::from_secs(2), vec!["1".to_string()])
        );

        let err = |v: Value| one(v).unwrap_err().to_string();
        assert_eq!(
            err(json!({"type": "nope", "args": ["x"]})),
            "watches[0]: Failed to parse watch: Unsupported watch type: nope"
        );
        assert_eq!(
            err(json!({"type": "key", "args": ["x"]})),
            "watches[0]: Failed to parse watch: Must specify a single key to watch"
        );
        assert_eq!(
            err(json!({"type": "key", "key": "k"})),
            "watches[0]: Failed to parse watch: Must define a watch handler"
        );
        assert_eq!(
            err(json!({"type": "key", "key": "k", "handler": "a", "args": ["b"]})),
            "watches[0]: Failed to parse watch: Only one watch handler allowed"
        );
        assert_eq!(
            err(json!({"type": "key", "key": "k", "args": ["b"], "bogus": 1})),
            "watches[0]: Failed to parse watch: Invalid parameters: [bogus]"
        );
        assert_eq!(
            err(json!({"type": "key", "key": "k", "handler_type": "http"})),
            "watches[0]: Failed to parse watch: Handler type 'http' requires 'http_handler_config' to be set"
        );
        assert_eq!(
            err(json!({"type": "key", "key": "k", "handler_type": "x"})),
            "watches[0]: Failed to parse watch: Handler type 'x' not recognized"
        );
        assert_eq!(
            err(json!({"type": "key", "key": 3, "args": ["b"]})),
            "watches[0]: Failed to parse watch: Expecting key to be a string"
        );
        assert!(
            err(json!({"type": "key", "key": "k", "handler_type": "http",
            "http_handler_config": {"method": "PUT"}}))
            .ends_with("Failed to parse 'http_handler_config': Requires 'path' to be set")
        );
        assert_eq!(
            err(json!({"type": "key", "key": "k", "handler_type": "http",
            "http_handler_config": {"path": "/x", "timeout": "soon"}})),
            "watches[0]: Failed to parse watch: Failed to parse 'http_handler_config': \
             Failed to parse timeout: time: invalid duration \"soon\""
        );
        assert_eq!(
            err(json!({"type": "key", "key": "k", "handler_type": "http",
            "http_handler_config": {"path": 1}})),
            "watches[0]: Failed to parse watch: Failed to parse 'http_handler_config': \
             Expecting path to be a string"
        );
        assert_eq!(err(json!(3)), "watches[0]: expected an object");
        assert_eq!(
            err(json!({"type": "connect_roots", "args": ["b"]})),
            "watches[0]: Failed to parse watch: Watch type connect_roots is not allowed in agent config"
        );
    }
}
