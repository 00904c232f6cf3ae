//! Session shapes (`/v1/session/*`).

use serde::{Deserialize, Serialize};

use crate::Index;

/// What happens to a session's locks when it is invalidated.
pub const BEHAVIOR_RELEASE: &str = "release";
pub const BEHAVIOR_DELETE: &str = "delete";

/// A session as `/v1/session/info/:id` returns it. `LockDelay` is in nanoseconds, `TTL` a Go
/// duration string (or empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SessionEntry {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub node: String,
    pub lock_delay: u64,
    pub behavior: String,
    #[serde(rename = "TTL")]
    pub ttl: String,
    pub node_checks: Vec<String>,
    pub service_checks: Vec<ServiceCheckRef>,
    pub create_index: Index,
    pub modify_index: Index,
}

/// A service check a session is tied to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceCheckRef {
    #[serde(rename = "ID")]
    pub id: String,
    pub namespace: String,
}

/// Answer of `PUT /v1/session/create`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCreated {
    #[serde(rename = "ID")]
    pub id: String,
}
