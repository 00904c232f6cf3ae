//! `/v1/query/*`: prepared queries — create, list, read, update, delete, execute, explain.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;

use super::{decode_or_default, read_body, St, MAX_BODY};
use crate::params::Params;
use crate::reply::{self, Reply};
use crate::Backend;
use proconsul_types::{
    PreparedQuery, PreparedQueryApply, PreparedQueryCreated, PreparedQueryExecute,
    PreparedQueryExplain, PreparedQueryGet, PreparedQueryList, PreparedQueryOp, RpcError,
};

/// The `/v1/query` paths.
pub(super) fn routes<B: Backend>() -> Router<Arc<B>> {
    Router::new()
        .route("/v1/query", get(list::<B>).post(create::<B>))
        .route(
            "/v1/query/{id}",
            get(read::<B>).put(update::<B>).delete(delete::<B>),
        )
        .route("/v1/query/{id}/execute", get(execute::<B>))
        .route("/v1/query/{id}/explain", get(explain::<B>))
}

fn dc(p: &Params) -> String {
    p.get("dc").unwrap_or("").to_string()
}

async fn apply<B: Backend>(
    st: &St<B>,
    op: PreparedQueryOp,
    query: PreparedQuery,
    p: &Params,
) -> Result<String, RpcError> {
    st.call(PreparedQueryApply {
        op,
        query,
        datacenter: dc(p),
    })
    .await
}

pub async fn create<B: Backend>(
    st: St<B>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        async {
            let body = read_body(&headers, body, MAX_BODY).await?;
            let query: PreparedQuery = decode_or_default(&body)?;
            let id = apply(&st, PreparedQueryOp::Create, query, &p).await?;
            Ok(reply::json(&PreparedQueryCreated { id }, p.pretty()))
        }
        .await,
    )
}

pub async fn list<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        async {
            let opts = p.query_options()?;
            let (meta, v) = st.call(PreparedQueryList { opts }).await?;
            Ok(reply::json_meta(&v, &meta, p.pretty()))
        }
        .await,
    )
}

pub async fn read<B: Backend>(st: St<B>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        async {
            let opts = p.query_options()?;
            let (meta, v) = st.call(PreparedQueryGet { id, opts }).await?;
            Ok(reply::json_meta(&v, &meta, p.pretty()))
        }
        .await,
    )
}

pub async fn update<B: Backend>(
    st: St<B>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        async {
            let body = read_body(&headers, body, MAX_BODY).await?;
            let mut query: PreparedQuery = decode_or_default(&body)?;
            // The path names the query, whatever the body says.
            query.id = id;
            apply(&st, PreparedQueryOp::Update, query, &p).await?;
            Ok(reply::text(StatusCode::OK, ""))
        }
        .await,
    )
}

pub async fn delete<B: Backend>(st: St<B>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    let query = PreparedQuery {
        id,
        ..Default::default()
    };
    reply::or_error(
        apply(&st, PreparedQueryOp::Delete, query, &p)
            .await
            .map(|_| reply::text(StatusCode::OK, "")),
    )
}

pub async fn execute<B: Backend>(
    st: St<B>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        async {
            let limit = p.u64("limit", "limit")?.unwrap_or(0) as usize;
            let (meta, resp) = st
                .call(PreparedQueryExecute {
                    id_or_name: id,
                    near: p.get("near").unwrap_or("").to_string(),
                    agent_node: st.node_name(),
                    limit,
                    datacenter: dc(&p),
                })
                .await?;
            let mut resp = resp;
            let served_by = resp.datacenter.clone();
            reply::translate(&**st, &served_by, &mut resp.nodes);
            let mut r = reply::json_meta(&resp, &meta, p.pretty());
            reply::add_translate_header(&mut r, st.translate_wan_addrs());
            Ok(r)
        }
        .await,
    )
}

pub async fn explain<B: Backend>(
    st: St<B>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(
        st.call(PreparedQueryExplain {
            id_or_name: id,
            datacenter: dc(&p),
        })
        .await
        .map(|(meta, resp)| reply::json_meta(&resp, &meta, p.pretty())),
    )
}
