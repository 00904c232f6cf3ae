//! The questions an authorizer answers: one variant per method of Consul's `Authorizer`
//! interface (`acl/authorizer.go`, CE subset).

use crate::error::EnforceError;

/// One authorization question. The `&str` is the segment the rules match against: a node name
/// for `agent`, `node` and `session`, a key for `key`, a service name for `service` and intentions
/// (the destination service), an event name, a prepared query name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Check<'a> {
    AclRead,
    AclWrite,
    /// Saving or restoring a snapshot: needs `acl = "write"`.
    Snapshot,
    AgentRead(&'a str),
    AgentWrite(&'a str),
    EventRead(&'a str),
    EventWrite(&'a str),
    /// Whether Connect traffic that no intention matches is allowed. No rule can say; it follows
    /// `acl.default_policy`.
    IntentionDefaultAllow,
    /// Intentions whose destination is the service; `*` asks whether *some* service's
    /// intentions can be read.
    IntentionRead(&'a str),
    /// `*` asks whether *every* service's intentions can be written.
    IntentionWrite(&'a str),
    KeyRead(&'a str),
    /// Listing keys under a prefix (only gated when `acl.enable_key_list_policy` is on).
    KeyList(&'a str),
    KeyWrite(&'a str),
    /// Writing (deleting) every key under a prefix, for recursive KV deletes. Two steps, as in
    /// Consul's `KeyWritePrefix`:
    ///
    /// 1. the longest **prefix** rule covering the prefix itself (exact rules are not consulted
    ///    here): if there is one and it is not `write` → `Deny`;
    /// 2. every rule, exact or prefix, whose name starts with the prefix (a key or subtree the
    ///    delete would reach): if any is not `write` → `Deny`.
    ///
    /// Otherwise `Allow` when step 1 found a `write` rule, `Default` when it found none.
    KeyWritePrefix(&'a str),
    KeyringRead,
    KeyringWrite,
    MeshRead,
    MeshWrite,
    PeeringRead,
    PeeringWrite,
    NodeRead(&'a str),
    NodeReadAll,
    NodeWrite(&'a str),
    OperatorRead,
    OperatorWrite,
    PreparedQueryRead(&'a str),
    PreparedQueryWrite(&'a str),
    ServiceRead(&'a str),
    ServiceReadAll,
    ServiceWrite(&'a str),
    ServiceWriteAny,
    SessionRead(&'a str),
    SessionWrite(&'a str),
}

impl<'a> Check<'a> {
    /// Consul's `acl.Enforce`: a resource name (`key`, `service`, ...) and an access (`read`,
    /// `write`, `list` and `write-prefix` for keys; any case) as the authorize API names them.
    pub fn from_consul(
        resource: &str,
        segment: &'a str,
        access: &str,
    ) -> Result<Check<'a>, EnforceError> {
        let access_lower = access.to_lowercase();
        let read = access_lower == "read";
        let write = access_lower == "write";
        let check = match resource {
            "acl" if read => Check::AclRead,
            "acl" if write => Check::AclWrite,
            "agent" if read => Check::AgentRead(segment),
            "agent" if write => Check::AgentWrite(segment),
            "event" if read => Check::EventRead(segment),
            "event" if write => Check::EventWrite(segment),
            "intention" if read => Check::IntentionRead(segment),
            "intention" if write => Check::IntentionWrite(segment),
            "key" if read => Check::KeyRead(segment),
            "key" if write => Check::KeyWrite(segment),
            "key" if access_lower == "list" => Check::KeyList(segment),
            "key" if access_lower == "write-prefix" => Check::KeyWritePrefix(segment),
            "keyring" if read => Check::KeyringRead,
            "keyring" if write => Check::KeyringWrite,
            "mesh" if read => Check::MeshRead,
            "mesh" if write => Check::MeshWrite,
            "node" if read => Check::NodeRead(segment),
            "node" if write => Check::NodeWrite(segment),
            "operator" if read => Check::OperatorRead,
            "operator" if write => Check::OperatorWrite,
            "peering" if read => Check::PeeringRead,
            "peering" if write => Check::PeeringWrite,
            "query" if read => Check::PreparedQueryRead(segment),
            "query" if write => Check::PreparedQueryWrite(segment),
            "service" if read => Check::ServiceRead(segment),
            "service" if write => Check::ServiceWrite(segment),
            "session" if read => Check::SessionRead(segment),
            "session" if write => Check::SessionWrite(segment),
            "acl" | "agent" | "event" | "intention" | "key" | "keyring" | "mesh" | "node"
            | "operator" | "peering" | "query" | "service" | "session" => {
                return Err(EnforceError::UnknownAccess {
                    resource: resource.to_string(),
                    access: access.to_string(),
                })
            }
            _ => return Err(EnforceError::UnknownResource(resource.to_string())),
        };
        Ok(check)
    }

    /// `(resource, access, name)` as Consul's errors name them.
    pub fn describe(self) -> (&'static str, &'static str, Option<&'a str>) {
        use Check::*;
        match self {
            AclRead => ("acl", "read", None),
            AclWrite | Snapshot => ("acl", "write", None),
            AgentRead(n) => ("agent", "read", Some(n)),
            AgentWrite(n) => ("agent", "write", Some(n)),
            EventRead(n) => ("event", "read", Some(n)),
            EventWrite(n) => ("event", "write", Some(n)),
            IntentionDefaultAllow => ("intention", "read", None),
            IntentionRead(n) => ("intention", "read", Some(n)),
            IntentionWrite(n) => ("intention", "write", Some(n)),
            KeyRead(n) => ("key", "read", Some(n)),
            KeyList(n) => ("key", "list", Some(n)),
            KeyWrite(n) | KeyWritePrefix(n) => ("key", "write", Some(n)),
            KeyringRead => ("keyring", "read", None),
            KeyringWrite => ("keyring", "write", None),
            MeshRead => ("mesh", "read", None),
            MeshWrite => ("mesh", "write", None),
            PeeringRead => ("peering", "read", None),
            PeeringWrite => ("peering", "write", None),
            NodeRead(n) => ("node", "read", Some(n)),
            NodeReadAll => ("node", "read", None),
            NodeWrite(n) => ("node", "write", Some(n)),
            OperatorRead => ("operator", "read", None),
            OperatorWrite => ("operator", "write", None),
            PreparedQueryRead(n) => ("query", "read", Some(n)),
            PreparedQueryWrite(n) => ("query", "write", Some(n)),
            ServiceRead(n) => ("service", "read", Some(n)),
            ServiceReadAll => ("service", "read", None),
            ServiceWrite(n) => ("service", "write", Some(n)),
            ServiceWriteAny => ("service", "write", None),
            SessionRead(n) => ("session", "read", Some(n)),
            SessionWrite(n) => ("session", "write", Some(n)),
        }
    }

    /// Consul's `acl.PermissionDeniedError` text for a token lacking this permission
    /// (`acl/errors.go`), with the anonymous token's own wording.
    pub fn permission_denied(self, accessor_id: &str) -> String {
        let anonymous = accessor_id == crate::ANONYMOUS_TOKEN_ACCESSOR_ID;
        let (resource, access, segment) = self.describe();
        let who = if anonymous {
            "anonymous token".to_string()
        } else {
            format!("token with AccessorID '{accessor_id}'")
        };
        let mut msg = format!("Permission denied: {who} lacks permission '{resource}:{access}'");
        if let Some(seg) = segment {
            msg.push_str(&format!(" on {seg:?}"));
        }
        if anonymous {
            msg.push_str(
                ". The anonymous token is used implicitly when a request does not specify a token.",
            );
        }
        msg
    }

    /// Checks that only management tokens pass when no rule decides: the static authorizers
    /// behind `acl.default_policy` answer these with "manage", not with "default allow".
    pub(crate) fn needs_management_by_default(self) -> bool {
        matches!(self, Check::AclRead | Check::AclWrite | Check::Snapshot)
    }
}

/// Generates the named methods (`key_read(key)`, `acl_write()`, ...) of an authorizer type from
/// its generic entry point, so the list of checks is written once for both authorizer types.
macro_rules! named_checks {
    ($ty:ty, $ret:ty, $entry:ident) => {
        impl $ty {
            /// `acl:read`: listing and reading ACL tokens, policies, roles.
            pub fn acl_read(&self) -> $ret {
                self.$entry(Check::AclRead)
            }
            /// `acl:write`: changing ACL tokens, policies, roles.
            pub fn acl_write(&self) -> $ret {
                self.$entry(Check::AclWrite)
            }
            /// Snapshot save/restore (requires `acl = "write"`).
            pub fn snapshot(&self) -> $ret {
                self.$entry(Check::Snapshot)
            }
            pub fn agent_read(&self, node: &str) -> $ret {
                self.$entry(Check::AgentRead(node))
            }
            pub fn agent_write(&self, node: &str) -> $ret {
                self.$entry(Check::AgentWrite(node))
            }
            pub fn event_read(&self, name: &str) -> $ret {
                self.$entry(Check::EventRead(name))
            }
            pub fn event_write(&self, name: &str) -> $ret {
                self.$entry(Check::EventWrite(name))
            }
            /// Whether Connect traffic no intention matches is allowed (follows the default policy).
            pub fn intention_default_allow(&self) -> $ret {
                self.$entry(Check::IntentionDefaultAllow)
            }
            /// Intentions with `destination` as destination service (`*`: any service's).
            pub fn intention_read(&self, destination: &str) -> $ret {
                self.$entry(Check::IntentionRead(destination))
            }
            /// Intentions with `destination` as destination service (`*`: every service's).
            pub fn intention_write(&self, destination: &str) -> $ret {
                self.$entry(Check::IntentionWrite(destination))
            }
            pub fn key_read(&self, key: &str) -> $ret {
                self.$entry(Check::KeyRead(key))
            }
            pub fn key_list(&self, prefix: &str) -> $ret {
                self.$entry(Check::KeyList(prefix))
            }
            pub fn key_write(&self, key: &str) -> $ret {
                self.$entry(Check::KeyWrite(key))
            }
            /// Deleting the whole tree under `prefix` (see [`Check::KeyWritePrefix`]).
            pub fn key_write_prefix(&self, prefix: &str) -> $ret {
                self.$entry(Check::KeyWritePrefix(prefix))
            }
            pub fn keyring_read(&self) -> $ret {
                self.$entry(Check::KeyringRead)
            }
            pub fn keyring_write(&self) -> $ret {
                self.$entry(Check::KeyringWrite)
            }
            /// `mesh:read`; without a `mesh` rule, the `operator` rule decides.
            pub fn mesh_read(&self) -> $ret {
                self.$entry(Check::MeshRead)
            }
            /// `mesh:write`; without a `mesh` rule, the `operator` rule decides.
            pub fn mesh_write(&self) -> $ret {
                self.$entry(Check::MeshWrite)
            }
            /// `peering:read`; without a `peering` rule, the `operator` rule decides.
            pub fn peering_read(&self) -> $ret {
                self.$entry(Check::PeeringRead)
            }
            /// `peering:write`; without a `peering` rule, the `operator` rule decides.
            pub fn peering_write(&self) -> $ret {
                self.$entry(Check::PeeringWrite)
            }
            pub fn node_read(&self, name: &str) -> $ret {
                self.$entry(Check::NodeRead(name))
            }
            /// Reading every node (no rule anywhere refuses `node:read`).
            pub fn node_read_all(&self) -> $ret {
                self.$entry(Check::NodeReadAll)
            }
            pub fn node_write(&self, name: &str) -> $ret {
                self.$entry(Check::NodeWrite(name))
            }
            pub fn operator_read(&self) -> $ret {
                self.$entry(Check::OperatorRead)
            }
            pub fn operator_write(&self) -> $ret {
                self.$entry(Check::OperatorWrite)
            }
            pub fn prepared_query_read(&self, name: &str) -> $ret {
                self.$entry(Check::PreparedQueryRead(name))
            }
            pub fn prepared_query_write(&self, name: &str) -> $ret {
                self.$entry(Check::PreparedQueryWrite(name))
            }
            pub fn service_read(&self, name: &str) -> $ret {
                self.$entry(Check::ServiceRead(name))
            }
            /// Reading every service (no rule anywhere refuses `service:read`).
            pub fn service_read_all(&self) -> $ret {
                self.$entry(Check::ServiceReadAll)
            }
            pub fn service_write(&self, name: &str) -> $ret {
                self.$entry(Check::ServiceWrite(name))
            }
            /// `service:write` on at least one service (some rule grants it).
            pub fn service_write_any(&self) -> $ret {
                self.$entry(Check::ServiceWriteAny)
            }
            pub fn session_read(&self, node: &str) -> $ret {
                self.$entry(Check::SessionRead(node))
            }
            pub fn session_write(&self, node: &str) -> $ret {
                self.$entry(Check::SessionWrite(node))
            }
        }
    };
}

pub(crate) use named_checks;
