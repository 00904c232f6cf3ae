//! Query-string parsing the way Consul reads it.
//!
//! Consul's flags are value-less (`?recurse`, `?stale`, `?pretty`): presence means true. Blocking
//! parameters use Go durations (`wait=1m30s`). Parse errors answer 400 with Consul's texts.

use std::time::Duration;

use proconsul_types::{
    duration, Consistency, QueryOptions, RpcError, DEFAULT_BLOCKING_WAIT, MAX_BLOCKING_WAIT,
};

/// Decoded query parameters in order; a parameter without `=` has value `""`.
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: Option<&str>) -> Params {
        match raw {
            None => Params(Vec::new()),
            Some(q) => Params(
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect(),
            ),
        }
    }

    /// Is the parameter present (with any value)?
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// First value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeatable parameter (`?tag=a&tag=b`).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean flag: present without value, or with a true value (Go's ParseBool spellings).
    pub fn flag(&self, name: &str) -> Result<bool, RpcError> {
        match self.get(name) {
            None => Ok(false),
            Some("") => Ok(true),
            Some(v) => match v {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
                "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
                _ => Err(RpcError::BadRequest(format!(
                    "Invalid value for ?{name}: {v}"
                ))),
            },
        }
    }

    /// An unsigned integer parameter; `what` names it in the error.
    pub fn u64(&self, name: &str, what: &str) -> Result<Option<u64>, RpcError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .parse::<u64>()
                .map(Some)
                .map_err(|_| RpcError::BadRequest(format!("Invalid {what}"))),
        }
    }

    /// `?node-meta=key:value` filters.
    pub fn node_meta(&self) -> Result<Vec<(String, String)>, RpcError> {
        self.all("node-meta")
            .into_iter()
            .map(|kv| match kv.split_once(':') {
                Some((k, v)) => Ok((k.to_string(), v.to_string())),
                None => Ok((kv, String::new())),
            })
            .collect()
    }

    /// `?filter=`, parsed and checked against the selectors of the type the endpoint returns
    /// (`None` when absent or empty). A bad expression is a 400 with go-bexpr's message.
    pub fn filter(
        &self,
        schema: &'static proconsul_filter::Schema,
    ) -> Result<Option<proconsul_filter::Filter>, RpcError> {
        match self.get("filter") {
            None | Some("") => Ok(None),
            Some(text) => proconsul_filter::Filter::new(text, schema)
                .map(Some)
                .map_err(|e| RpcError::BadRequest(e.to_string())),
        }
    }

    /// `?peer=`: results imported from that cluster peer. proconsul has no peerings, so every
    /// instance is local (`PeerName` ""): a named peer selects nothing.
    pub fn peer(&self) -> &str {
        self.get("peer").unwrap_or("")
    }

    /// `?wait=`: how long a blocking call may wait, Consul's default and cap applied.
    pub fn wait(&self) -> Result<Duration, RpcError> {
        match self.get("wait") {
            None => Ok(clamp_wait(None)),
            Some(w) => duration::parse(w)
                .map(|d| clamp_wait(Some(d)))
                .map_err(|_| RpcError::BadRequest("Invalid wait time".into())),
        }
    }

    /// `?pretty`
    pub fn pretty(&self) -> bool {
        self.has("pretty")
    }

    /// The options every read takes: `dc`, `stale`/`consistent`, `index`, `wait`.
    pub fn query_options(&self) -> Result<QueryOptions, RpcError> {
        let stale = self.has("stale");
        let consistent = self.has("consistent");
        if stale && consistent {
            return Err(RpcError::BadRequest(
                "Cannot specify ?stale with ?consistent, conflicting semantics.".into(),
            ));
        }
        let consistency = if stale {
            Consistency::Stale
        } else if consistent {
            Consistency::Consistent
        } else {
            Consistency::Default
        };
        let wait = self.wait()?;
        let min_index = self.u64("index", "index")?.unwrap_or(0);
        let max_wait = (min_index > 0).then_some(wait);
        Ok(QueryOptions {
            datacenter: self.get("dc").unwrap_or("").to_string(),
            consistency,
            min_index,
            max_wait,
        })
    }
}

/// A blocking query's wait: 5 minutes by default, 10 at most, like Consul.
fn clamp_wait(wait: Option<Duration>) -> Duration {
    match wait {
        None => DEFAULT_BLOCKING_WAIT,
        Some(w) if w.is_zero() => DEFAULT_BLOCKING_WAIT,
        Some(w) => w.min(MAX_BLOCKING_WAIT),
    }
}

/// When a blocking call the agent serves itself gives up: after `wait` plus up to 1/16 of it
/// (Consul's jitter, so callers that started together do not wake together). Server reads
/// apply the same rule in `proconsul_server`'s read path.
pub(crate) fn blocking_deadline(wait: Duration) -> tokio::time::Instant {
    use rand::Rng;
    let jitter = (wait.as_millis() as u64 / 16).max(1);
    tokio::time::Instant::now() + wait + Duration::from_millis(rand::rng().random_range(0..jitter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valueless_flags_and_repeats() {
        let p = Params::parse(Some("recurse&tag=a&tag=b%2Fc&pretty="));
        assert!(p.has("recurse"));
        assert!(p.pretty());
        assert_eq!(p.all("tag"), vec!["a", "b/c"]);
        assert!(!p.has("keys"));
        assert!(p.flag("recurse").unwrap());
        assert!(!Params::parse(Some("passing=false"))
            .flag("passing")
            .unwrap());
    }

    #[test]
    fn query_options_rules() {
        let e = Params::parse(Some("stale&consistent"))
            .query_options()
            .unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains("conflicting semantics"));
        let e = Params::parse(Some("index=abc"))
            .query_options()
            .unwrap_err();
        assert_eq!(e.to_string(), "Invalid index");
        let e = Params::parse(Some("index=1&wait=5x"))
            .query_options()
            .unwrap_err();
        assert_eq!(e.to_string(), "Invalid wait time");
        let q = Params::parse(Some("index=7&wait=5s&dc=dc2"))
            .query_options()
            .unwrap();
        assert_eq!(q.min_index, 7);
        assert_eq!(q.max_wait, Some(Duration::from_secs(5)));
        assert_eq!(q.datacenter, "dc2");
        let q = Params::parse(Some("index=7&wait=1h"))
            .query_options()
            .unwrap();
        assert_eq!(q.max_wait, Some(MAX_BLOCKING_WAIT));
        let q = Params::parse(Some("index=7")).query_options().unwrap();
        assert_eq!(q.max_wait, Some(DEFAULT_BLOCKING_WAIT));
        let q = Params::parse(Some("stale")).query_options().unwrap();
        assert_eq!(q.consistency, Consistency::Stale);
    }
}
