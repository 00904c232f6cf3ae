//! Client errors. Their `Display` matches the Go client's wording, because the CLI prints them
//! verbatim after Consul's own prefixes (`Error querying Consul agent: ...`).

/// Everything a client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The agent answered with a non-200 status; `body` is its (plain-text) error message.
    #[error("Unexpected response code: {status} ({body})")]
    Status { status: u16, body: String },
    /// The request never got an answer (connection refused, reset, timeout, ...).
    /// Printed like Go's `url.Error`: `Get "http://127.0.0.1:8500/v1/kv/a": dial tcp ...`.
    #[error("{method} \"{url}\": {message}")]
    Transport {
        method: &'static str,
        url: String,
        message: String,
    },
    /// The agent answered 200 with a body that is not the expected JSON.
    #[error("{0}")]
    Decode(#[from] serde_json::Error),
    /// The client was configured with something unusable (address, token file).
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// The HTTP status, if the agent answered at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The agent's error text for a non-200 answer (`No cluster leader`, `Permission denied`).
    pub fn body(&self) -> Option<&str> {
        match self {
            Error::Status { body, .. } => Some(body),
            _ => None,
        }
    }

    /// Did the request fail before reaching an agent? Worth retrying elsewhere or later.
    pub fn is_transport(&self) -> bool {
        matches!(self, Error::Transport { .. })
    }

    /// Worth retrying (the Go client's `IsRetryableError`): no answer, or a 500.
    pub fn is_retryable(&self) -> bool {
        self.is_transport() || self.status() == Some(500)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_display_matches_go_client() {
        let e = Error::Status {
            status: 500,
            body: "No cluster leader".into(),
        };
        assert_eq!(
            e.to_string(),
            "Unexpected response code: 500 (No cluster leader)"
        );
        assert_eq!(e.status(), Some(500));
    }
}
