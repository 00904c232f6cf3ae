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
            let ev = st.event_fire(ev).await?;
            Ok(reply::json(&ev, p.pretty()))
        }
        .await,
    )
}

pub async fn list<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    let name = p.get("name").unwrap_or("");
    let events: Vec<UserEvent> = st
        .event_list()
        .into_iter()
        .filter(|e| name.is_empty() || e.name == name)
        .collect();
    reply::json(&events, p.pretty())
}
