//! `/v1/catalog/*`: register/deregister and the catalog reads.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, RawQuery};
use axum::http::HeaderMap;

use super::{decode, read_body, St, MAX_BODY};
use crate::params::Params;
use crate::reply::{self, Reply};
use crate::Backend;
use proconsul_filter::schemas;
use proconsul_types::{
    CatalogNodeServices, CatalogNodes, CatalogServiceNodes, CatalogServices, DeregisterRequest,
    Node, NodeService, NodeServiceList, NodeServices, QueryMeta, QueryOptions, RegisterRequest,
    RpcError, ServiceNode, WriteRequest,
};

pub async fn register<B: Backend>(
    st: St<B>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    reply::or_error(
        async {
            let p = Params::parse(q.as_deref());
            let body = read_body(&headers, body, MAX_BODY).await?;
            let req: RegisterRequest = decode(&body)?;
            let dc = if req.datacenter.is_empty() {
                p.get("dc").unwrap_or("").to_string()
            } else {
                req.datacenter.clone()
            };
            let (idx, _) = st.write(WriteRequest::Register(Box::new(req)), dc).await?;
            Ok(reply::with_index(reply::json(&true, p.pretty()), idx))
        }
        .await,
    )
}

pub async fn deregister<B: Backend>(
    st: St<B>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    reply::or_error(
        async {
            let p = Params::parse(q.as_deref());
            let body = read_body(&headers, body, MAX_BODY).await?;
            let req: DeregisterRequest = decode(&body)?;
            if req.node.is_empty() {
                return Err(RpcError::BadRequest("Must provide node".into()));
            }
            let dc = if req.datacenter.is_empty() {
                p.get("dc").unwrap_or("").to_string()
            } else {
                req.datacenter.clone()
            };
            let (idx, _) = st.write(WriteRequest::Deregister(req), dc).await?;
            Ok(reply::with_index(reply::json(&true, p.pretty()), idx))
        }
        .await,
    )
}

pub async fn datacenters<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    let p = Params::parse(q.as_deref());
    reply::or_error(st.datacenters().await.map(|d| reply::json(&d, p.pretty())))
}

pub async fn nodes<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(
        async {
            let p = Params::parse(q.as_deref());
            let opts = p.query_options()?;
            let filter = p.filter(schemas::NODE)?;
            let dc = dc_of(&**st, &opts.datacenter);
            let (meta, mut nodes) = st
                .query(
                    CatalogNodes {
                        node_meta: p.node_meta()?,
                    },
                    opts.clone(),
                )
                .await?;
            crate::near::sort(&**st, p.get("near").unwrap_or(""), &opts, &mut nodes, |n| {
                &n.node
            })
            .await?;
            for n in &mut nodes {
                n.datacenter = dc.clone();
            }
            reply::translate(&**st, &dc, &mut nodes);
            if let Some(f) = filter {
                f.retain(&mut nodes);
            }
            let mut r = reply::json_meta(&nodes, &meta, p.pretty());
            reply::add_translate_header(&mut r, st.translate_wan_addrs());
            Ok(r)
        }
        .await,
    )
}

pub async fn services<B: Backend>(st: St<B>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(
        async {
            let p = Params::parse(q.as_deref());
            let opts = p.query_options()?;
            let filter = p.filter(schemas::SERVICE_NODE)?;
            let node_meta = p.node_meta()?;
            let (meta, mut s) = st
                .query(
                    CatalogServices {
                        node_meta: node_meta.clone(),
                    },
                    opts.clone(),
                )
                .await?;
            if let Some(f) = filter {
                // As Consul: the filter sees each instance (`ServiceNode`); a service is listed
                // when an instance passes, with the tags of the instances that pass.
                let now = QueryOptions {
                    min_index: 0,
                    max_wait: None,
                    ..opts
                };
                let mut kept = BTreeMap::new();
                for name in s.into_keys() {
                    let req = CatalogServiceNodes {
                        service: name.clone(),
                        node_meta: node_meta.clone(),
                        ..Default::default()
                    };
                    let (_, mut rows) = st.query(req, now.clone()).await?;
                    f.retain(&mut rows);
                    if rows.is_empty() {
                        continue;
                    }
                    let mut tags: Vec<String> =
                        rows.into_iter().flat_map(|r| r.service_tags).collect();
                    tags.sort();
                    tags.dedup();
                    kept.insert(name, tags);
                }
                s = kept;
            }
            Ok(reply::json_meta::<BTreeMap<String, Vec<String>>>(
                &s,
                &meta,
                p.pretty(),
            ))
        }
        .await,
    )
}

pub fn service<B: Backend>(
    st: St<B>,
    Path(name): Path<String>,
    q: RawQuery,
    headers: HeaderMap,
) -> impl std::future::Future<Output = Reply> + Send {
    service_rows(st, name, q, headers, false)
}

/// `/v1/catalog/connect/:service`: the proxies for a service and its Connect-native instances.
pub fn connect<B: Backend>(
    st: St<B>,
    Path(name): Path<String>,
    q: RawQuery,
    headers: HeaderMap,
) -> impl std::future::Future<Output = Reply> + Send {
    service_rows(st, name, q, headers, true)
}

/// A request's `Cache-Control`, read before its query starts (a blocking query keeps what is
/// alive across its wait).
pub(crate) fn cache_control(headers: HeaderMap) -> crate::cache::CacheControl {
    headers
        .get(axum::http::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(crate::cache::CacheControl::parse)
        .unwrap_or_default()
}

/// A read, from the agent's cache when the request says `?cached` (`cached` holds its
/// `Cache-Control`).
async fn read_maybe_cached<B, Q>(
    st: &St<B>,
    cached: Option<crate::cache::CacheControl>,
    q: Q,
    opts: QueryOptions,
) -> Result<(QueryMeta, Q::Out, Option<crate::cache::CacheResult>), RpcError>
where
    B: Backend,
    Q: proconsul_types::Query + Clone + serde::Serialize + Sync,
    Q::Out: Clone + Sync,
{
    let Some(cc) = cached else {
        let (meta, out) = st.query(q, opts).await?;
        return Ok((meta, out, None));
    };
    // Boxed: the cache's future is large, and every blocking query that does not ask for the
    // cache would carry its room while it waits.
    let (meta, out, c) = Box::pin(crate::cache::query(&st.0, q, opts, cc)).await?;
    Ok((meta, out, Some(c)))
}

fn service_rows<B: Backend>(
    st: St<B>,
    name: String,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    connect: bool,
) -> impl std::future::Future<Output = Reply> + Send {
    // Everything read from the request before the read starts: the future holds the query
    // and its options only, however long it waits.
    let asked = (|| {
        let p = Params::parse(q.as_deref());
        let req = CatalogServiceNodes {
            service: name,
            tags: p.all("tag"),
            node_meta: p.node_meta()?,
            connect,
        };
        Ok((req, RowsAsk::parse(&p, headers, schemas::SERVICE_NODE)?))
    })();
    reply::or_error_later(
        asked.map(|(req, ask)| instance_rows(st, ask, req, |r| &r.node, fill_service_node)),
    )
}

/// What a read of a service's instances asks beside its query, taken from the query string
/// and headers before the read.
pub(crate) struct RowsAsk {
    opts: QueryOptions,
    filter: Option<proconsul_filter::Filter>,
    /// `?near=`, or empty.
    near: String,
    /// `?peer=` asked for another cluster's instances (none here).
    peer: bool,
    pretty: bool,
    /// `?cached`, with the request's `Cache-Control`.
    cached: Option<crate::cache::CacheControl>,
}

impl RowsAsk {
    pub(crate) fn parse(
        p: &Params,
        headers: HeaderMap,
        schema: &'static proconsul_filter::Schema,
    ) -> Result<RowsAsk, RpcError> {
        let cc = cache_control(headers);
        Ok(RowsAsk {
            opts: p.query_options()?,
            filter: p.filter(schema)?,
            near: p.get("near").unwrap_or("").to_string(),
            peer: !p.peer().is_empty(),
            pretty: p.pretty(),
            cached: p.has("cached").then_some(cc),
        })
    }
}

/// The reply of a read of a service's instances (`/v1/catalog/service`, `/v1/health/service`
/// and their `connect` twins): from the agent's cache with `?cached`, sorted by `?near=`,
/// the serving datacenter filled in, then `?filter=` and `?peer=` applied.
///
/// Not an `async fn`: its arguments are taken apart before the future is made, so that the
/// future, which a blocking query holds for its whole wait, keeps each of them once.
pub(crate) fn instance_rows<B, Q, T>(
    st: St<B>,
    ask: RowsAsk,
    req: Q,
    node_of: impl Fn(&T) -> &str + Send,
    set_datacenter: impl Fn(&mut T, &str) + Send,
) -> impl std::future::Future<Output = Result<Reply, RpcError>> + Send
where
    B: Backend,
    Q: proconsul_types::Query<Out = Vec<T>> + Clone + serde::Serialize + Sync,
    T: serde::Serialize + Clone + Send + Sync + proconsul_types::translate::WanAddresses + 'static,
{
    let RowsAsk {
        opts,
        filter,
        near,
        peer,
        pretty,
        cached,
    } = ask;
    let dc = dc_of(&**st, &opts.datacenter);
    // Options kept past the read only when `?near=` needs them for its own.
    let near_opts = (!near.is_empty()).then(|| opts.clone());
    async move {
        let (meta, mut rows, cached) = read_maybe_cached(&st, cached, req, opts).await?;
        if let Some(opts) = near_opts {
            crate::near::sort(&**st, &near, &opts, &mut rows, node_of).await?;
        }
        for r in &mut rows {
            set_datacenter(r, &dc);
        }
        reply::translate(&**st, &dc, &mut rows);
        if let Some(f) = filter {
            f.retain(&mut rows);
        }
        if peer {
            rows.clear();
        }
        let mut r = reply::json_meta(&rows, &meta, pretty);
        reply::add_translate_header(&mut r, st.translate_wan_addrs());
        if let Some(c) = cached {
            reply::add_cache(&mut r, c);
        }
        Ok(r)
    }
}

pub async fn node<B: Backend>(st: St<B>, Path(name): Path<String>, RawQuery(q): RawQuery) -> Reply {
    reply::or_error(
        node_reply(&**st, name, q, |node, services| NodeServices {
            node,
            services: services.into_iter().map(|s| (s.id.clone(), s)).collect(),
        })
        .await,
    )
}

pub async fn node_services<B: Backend>(
    st: St<B>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    reply::or_error(
        node_reply(&**st, name, q, |node, services| NodeServiceList {
            node,
            services,
        })
        .await,
    )
}

/// A node and its services, shaped by `shape`; `null` when the node is unknown.
async fn node_reply<B: Backend, T: serde::Serialize + proconsul_types::translate::WanAddresses>(
    b: &B,
    name: String,
    q: Option<String>,
    shape: impl FnOnce(Node, Vec<NodeService>) -> T,
) -> Result<Reply, RpcError> {
    let p = Params::parse(q.as_deref());
    let opts = p.query_options()?;
    // Consul filters the node's services, not the node.
    let filter = p.filter(schemas::SERVICE)?;
    let dc = dc_of(b, &opts.datacenter);
    let (meta, found) = b.query(CatalogNodeServices { node: name }, opts).await?;
    let mut out: Vec<T> = found
        .map(|(mut node, mut services)| {
            node.datacenter = dc.clone();
            if let Some(f) = filter {
                f.retain(&mut services);
            }
            shape(node, services)
        })
        .into_iter()
        .collect();
    reply::translate(b, &dc, &mut out);
    let mut r = reply::json_meta(&out.pop(), &meta, p.pretty());
    reply::add_translate_header(&mut r, b.translate_wan_addrs());
    Ok(r)
}

/// The datacenter a read was served from: the one asked for, else the agent's.
pub(crate) fn dc_of<B: Backend>(b: &B, asked: &str) -> String {
    if asked.is_empty() {
        b.datacenter()
    } else {
        asked.to_string()
    }
}

/// Consul fills `Datacenter` and, for an instance without its own address, leaves
/// `ServiceAddress` as registered (empty); the row's `Datacenter` is the serving DC.
fn fill_service_node(r: &mut ServiceNode, dc: &str) {
    r.datacenter = dc.to_string();
}
