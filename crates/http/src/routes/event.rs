//! `/v1/event/*`: fire a user event, list recent ones.

use axum::body::Body;
use axum::extract::{Path, RawQuery};
use axum::http::HeaderMap;

use super::{read_body, St};
use crate::params::Params;
use crate::reply::{self, Reply};
use crate::Backend;
use proconsul_types::UserEvent;

/// Serf's limit on a user event's payload (name + payload must fit a gossip message).
const MAX_EVENT_PAYLOAD: usize = 512;

pub async fn fire<B: Backend>(
    st: St<B>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    reply::or_error(
        async {
            let p = Params::parse(q.as_deref());
            // Another datacenter's events are fired by its servers (through ours, over the
            // WAN); an unknown datacenter is Consul's `No path to datacenter`.
            let dc = p.get("dc").unwrap_or("");
            let dc = if dc == st.datacenter() { "" } else { dc };
            let rights = st.caller_rights().await?;
            if !crate::caller::allows(&rights, proconsul_acl::Check::EventWrite(&name)) {
                // Consul's event endpoint answers the bare text.
                return Err(proconsul_types::RpcError::PermissionDenied(
                    "Permission denied".into(),
                ));
            }
            let payload = read_body(&headers, body, MAX_EVENT_PAYLOAD).await?;
            let ev = UserEvent {
                name,
                payload: if payload.is_empty() {
                    None
                } else {
                    Some(payload.to_vec())
                },
                node_filter: p.get("node").unwrap_or("").to_string(),
                service_filter: p.get("service").unwrap_or("").to_string(),
                tag_filter: p.get("tag").unwrap_or("").to_string(),
                ..Default::default()
            };
            let ev = st.event_fire(ev, dc).await?;
            Ok(reply::json(&ev, p.pretty()))
        }
        .await,
    )
}

/// Consul's `EventList`. Event IDs are random, so the index is derived from the last event's
/// ID ([`uuid_index`]) and is not monotonic: a blocking call (`?index=`) waits while the index
/// *equals* the one given, for a new event or the wait (plus up to 1/16 jitter).
pub async fn list<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    let opts = match p.query_options() {
        Ok(o) => o,
        Err(e) => return reply::error(&e),
    };
    let name = p.get("name").unwrap_or("");
    let rights = match st.caller_rights().await {
        Ok(r) => r,
        Err(e) => return reply::error(&e),
    };
    let mut changes = st.event_watch();
    let deadline = opts.max_wait.map(crate::params::blocking_deadline);
    loop {
        changes.borrow_and_update();
        let mut events: Vec<UserEvent> = st
            .event_list()
            .into_iter()
            .filter(|e| name.is_empty() || e.name == name)
            .collect();
        let before = events.len();
        events.retain(|e| crate::caller::allows(&rights, proconsul_acl::Check::EventRead(&e.name)));
        let cut = events.len() != before;
        // No events: 1, not 0, so a watcher does not spin (Consul's words).
        let index = events.last().map_or(1, |e| uuid_index(&e.id));
        if let (Some(d), true) = (deadline, index == opts.min_index) {
            tokio::select! {
                r = changes.changed() => if r.is_ok() { continue },
                _ = tokio::time::sleep_until(d) => {}
            }
        }
        let mut r = reply::with_index(reply::json(&events, p.pretty()), index);
        if cut && rights.as_ref().is_some_and(|r| r.has_token) {
            r.headers_mut().insert(
                "X-Consul-Results-Filtered-By-ACLs",
                axum::http::HeaderValue::from_static("true"),
            );
        }
        return r;
    }
}

/// Consul's `uuidToUint64`: the first 16 hex digits of a UUID XOR the last 16.
fn uuid_index(id: &str) -> u64 {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return 1;
    }
    let low = u64::from_str_radix(&hex[..16], 16).unwrap_or(0);
    let high = u64::from_str_radix(&hex[16..], 16).unwrap_or(0);
    low ^ high
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_of_an_event_id_is_consuls() {
        // lower = first 8+4+4 hex digits, upper = the last 4+12: 0x0000000100020003 ^ 0x0004000000000005.
        assert_eq!(
            uuid_index("00000001-0002-0003-0004-000000000005"),
            0x0000_0001_0002_0003 ^ 0x0004_0000_0000_0005
        );
        assert_eq!(uuid_index("not-a-uuid"), 1);
    }
}
