//! `/v1/snapshot`: `GET` streams a snapshot archive of the servers' state (the leader's unless
//! `?stale`), `PUT` restores one (checksums verified first).

use axum::body::Body;
use axum::extract::RawQuery;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};

use super::{read_body, St};
use crate::params::Params;
use crate::reply::{self, Reply};
use crate::Backend;
use proconsul_archive::MAX_ARCHIVE;
use proconsul_types::SnapshotSave;

pub async fn save<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        st.call(SnapshotSave {
            stale: p.has("stale"),
            datacenter: p.get("dc").unwrap_or("").to_string(),
        })
        .await
        .map(|(meta, snap)| {
            let archive = proconsul_archive::write(snap.index, snap.term, &snap.state, now_ms());
            let mut r = axum::http::Response::new(Body::from(archive));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-gzip"),
            );
            reply::add_meta(&mut r, &meta);
            r
        }),
    )
}

/// Wall-clock milliseconds: the archive's creation time in its metadata.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub async fn restore<B: Backend>(st: St<B>, headers: HeaderMap, body: Body) -> Reply {
    reply::or_error(
        async {
            // Restoring replaces everything, ACLs included: management only, checked before
            // the archive is read.
            crate::caller::need(&st.caller_rights().await?, proconsul_acl::Check::Snapshot)?;
            let archive = read_body(&headers, body, MAX_ARCHIVE).await?;
            st.snapshot_restore(archive.to_vec()).await?;
            Ok(reply::text(StatusCode::OK, ""))
        }
        .await,
    )
}
