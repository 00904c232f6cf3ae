//! `/v1/session/*`: the sessions that locks and semaphores hang on.

use proconsul_types::{SessionCreated, SessionEntry};
use serde::Serialize;

use crate::client::Method;
use crate::{encode, Client, QueryOptions, Result};

/// Body of `PUT /v1/session/create`; empty fields are left to the agent's defaults
/// (lock-delay 15 s, behavior `release`, no TTL).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SessionRequest {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// A Go duration (`15s`); empty for a session without TTL.
    #[serde(rename = "TTL", skip_serializing_if = "String::is_empty")]
    pub ttl: String,
    /// `release` or `delete`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub behavior: String,
    /// A Go duration (`15s`); empty for the agent's default.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub lock_delay: String,
    /// The node the session is tied to; empty for the agent's own node.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// Health checks the session is tied to; `None` for the default (`serfHealth`), `Some`
    /// of an empty list for none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<String>>,
}

impl Client {
    /// Create a session; returns its ID.
    pub fn session_create(&self, req: &SessionRequest) -> Result<String> {
        let body = serde_json::to_vec(req)?;
        let reply = self
            .request(Method::Put, "/v1/session/create", &[], Some(&body))?
            .require_ok()?;
        let created: SessionCreated = reply.json()?;
        Ok(created.id)
    }

    /// Renew a TTL session. `None` when the session no longer exists (the agent answers 404).
    pub fn session_renew(&self, id: &str) -> Result<Option<SessionEntry>> {
        let path = format!("/v1/session/renew/{}", encode::path(id));
        let reply = self.request(Method::Put, &path, &[], Some(b""))?;
        if reply.status == 404 {
            return Ok(None);
        }
        let entries: Vec<SessionEntry> = reply.require_ok()?.json()?;
        Ok(entries.into_iter().next())
    }

    /// Destroy a session, releasing (or deleting) the keys it holds.
    pub fn session_destroy(&self, id: &str) -> Result<()> {
        let path = format!("/v1/session/destroy/{}", encode::path(id));
        self.put(&path, &[], b"").map(drop)
    }

    /// One session, or `None` if it does not exist.
    pub fn session_info(&self, id: &str, opts: &QueryOptions) -> Result<Option<SessionEntry>> {
        let path = format!("/v1/session/info/{}", encode::path(id));
        let (entries, _): (Vec<SessionEntry>, _) = self.get_json(&path, &[], opts)?;
        Ok(entries.into_iter().next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testserver::{serve_once, Canned};
    use crate::Config;

    fn client(addr: &str) -> Client {
        Client::new(Config {
            address: addr.to_string(),
            ..Config::default()
        })
        .unwrap()
    }

    #[test]
    fn create_sends_only_given_fields() {
        let (addr, req) = serve_once(Canned::ok(r#"{"ID":"abc"}"#));
        let id = client(&addr)
            .session_create(&SessionRequest {
                name: "lock".into(),
                ttl: "15s".into(),
                ..SessionRequest::default()
            })
            .unwrap();
        assert_eq!(id, "abc");
        let req = req.join().unwrap();
        assert!(req.starts_with("PUT /v1/session/create HTTP/1.1"), "{req}");
        assert!(req.ends_with(r#"{"Name":"lock","TTL":"15s"}"#), "{req}");
    }

    #[test]
    fn renew_of_a_gone_session_is_none() {
        let (addr, _) = serve_once(Canned::status(404, "Session id 'x' not found"));
        assert!(client(&addr).session_renew("x").unwrap().is_none());
        let (addr, _) = serve_once(Canned::ok(r#"[{"ID":"x","TTL":"20s"}]"#));
        assert_eq!(
            client(&addr).session_renew("x").unwrap().unwrap().ttl,
            "20s"
        );
    }
}
