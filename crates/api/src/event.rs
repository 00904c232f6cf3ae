//! `/v1/event/*`: user events.

use proconsul_types::UserEvent;

use crate::{Client, QueryMeta, QueryOptions, Result};

impl Client {
    /// Fire a user event (`node`, `service`, `tag` are regexp filters); returns it with its ID.
    pub fn event_fire(
        &self,
        name: &str,
        payload: &[u8],
        node: &str,
        service: &str,
        tag: &str,
    ) -> Result<UserEvent> {
        let mut q: Vec<(&str, String)> = Vec::new();
        for (k, v) in [("node", node), ("service", service), ("tag", tag)] {
            if !v.is_empty() {
                q.push((k, v.to_string()));
            }
        }
        let path = format!("/v1/event/fire/{}", crate::encode::path(name));
        let body = self.put(&path, &q, payload)?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// Recent user events known to the agent, oldest first, optionally only those named `name`.
    pub fn event_list(
        &self,
        name: &str,
        opts: &QueryOptions,
    ) -> Result<(Vec<UserEvent>, QueryMeta)> {
        let q: Vec<(&str, String)> = if name.is_empty() {
            Vec::new()
        } else {
            vec![("name", name.to_string())]
        };
        self.get_json("/v1/event/list", &q, opts)
    }
}

/// The blocking index an event ID stands for (the Go client's `IDToIndex`): the UUID's two
/// 64-bit halves XORed. Returns 0 for an ID that is not a UUID.
pub fn event_id_to_index(id: &str) -> u64 {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return 0;
    }
    match (
        u64::from_str_radix(&hex[..16], 16),
        u64::from_str_radix(&hex[16..], 16),
    ) {
        (Ok(hi), Ok(lo)) => hi ^ lo,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_to_index_xors_the_halves() {
        assert_eq!(
            event_id_to_index("00000000-0000-0001-0000-000000000003"),
            1 ^ 3
        );
        assert_eq!(event_id_to_index("nope"), 0);
    }
}
