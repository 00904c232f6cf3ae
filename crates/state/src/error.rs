//! Errors the state store reports when it refuses a command.
//!
//! The `Display` text of every variant is Consul's own error text (clients such as Patroni match
//! on it, and the HTTP layer returns it verbatim), so never reword these messages.

/// Why a command was rejected. A rejected command changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// A service, check or session refers to a node that is not registered.
    #[error("Missing node registration")]
    MissingNode,
    /// A check refers to a service that is not registered on its node.
    #[error("Missing service registration")]
    MissingService,
    /// A session lists a check that is not registered on its node.
    #[error("Missing check '{0}' registration")]
    MissingCheck(String),
    /// A session lists a check that is currently critical.
    #[error("Check '{0}' is in critical state")]
    CheckCritical(String),
    /// A lock/unlock named no session.
    #[error("missing session")]
    MissingSession,
    /// A lock named a session that does not exist.
    #[error("invalid session {0:?}")]
    InvalidSession(String),
    /// A session was proposed without an ID (the proposer must choose one).
    #[error("Missing session ID")]
    MissingSessionId,
    /// A session behavior other than `release` or `delete`.
    #[error("Invalid session behavior: {0}")]
    InvalidSessionBehavior(String),
    /// A registration without a node name.
    #[error("Must provide node")]
    MissingNodeName,
    /// A preformatted Consul message that has no structure worth keeping (node rename clashes,
    /// check/node mismatches).
    #[error("{0}")]
    Message(String),
    /// Consul's wrapping of an inner error, e.g. `failed inserting check on node "n1": ...`.
    #[error("{context}: {source}")]
    Wrapped {
        context: String,
        source: Box<StateError>,
    },
    /// Snapshot bytes that could not be decoded (restore leaves the store untouched).
    #[error("failed to decode snapshot: {0}")]
    Snapshot(String),
}

impl StateError {
    pub(crate) fn wrap(self, context: impl Into<String>) -> StateError {
        StateError::Wrapped {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// The innermost error, without Consul's context prefixes.
    pub fn root(&self) -> &StateError {
        match self {
            StateError::Wrapped { source, .. } => source.root(),
            other => other,
        }
    }
}
