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

pub async fn service<B: Backend>(
    st: St<B>,
    Path(name): Path<String>,
    q: RawQuery,
    headers: HeaderMap,
) -> Reply {
    service_rows(st, name, q, headers, false).await
}

/// `/v1/catalog/connect/:service`: the proxies for a service and its Connect-native instances.
pub async fn connect<B: Backend>(
    st: St<B>,
    Path(name): Path<String>,
    q: RawQuery,
    headers: HeaderMap,
) -> Reply {
    service_rows(st, name, q, headers, true).await
}

/// A request's `Cache-Control`, read before its query starts: a blocking query that kept its
/// headers would keep hyper's 8 KiB read buffer they point into, and hyper would take another
/// to watch the connection while it waits.
pub(crate) fn cache_control(headers: HeaderMap) -> crate::cache::CacheControl {
    headers
        .get(axum::http::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(crate::cache::CacheControl::parse)
        .unwrap_or_default()
}

/// A read, from the agent's cache when the request says `?cached`.
pub(crate) async fn read_maybe_cached<B, Q>(
    st: &St<B>,
    p: &Params,
    cc: crate::cache::CacheControl,
    q: Q,
    opts: &QueryOptions,
) -> Result<(QueryMeta, Q::Out, Option<crate::cache::CacheResult>), RpcError>
where
    B: Backend,
    Q: proconsul_types::Query + Clone + serde::Serialize + Sync,
    Q::Out: Clone + Sync,
{
    if !p.has("cached") {
        let (meta, out) = st.query(q, opts.clone()).await?;
        return Ok((meta, out, None));
    }
    // Boxed: the cache's future is large, and every blocking query that does not ask for the
    // cache would carry its room while it waits.
    let (meta, out, c) = Box::pin(crate::cache::query(&st.0, q, opts.clone(), cc)).await?;
    Ok((meta, out, Some(c)))
}

async fn service_rows<B: Backend>(
    st: St<B>,
    name: String,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    connect: bool,
) -> Reply {
    let cc = cache_control(headers);
    let p = Params::parse(q.as_deref());
    reply::or_error(
        async {
            let req = CatalogServiceNodes {
                service: name,
                tags: p.all("tag"),
                node_meta: p.node_meta()?,
                connect,
            };
            instance_rows(
                &st,
                &p,
                cc,
                req,
                schemas::SERVICE_NODE,
                |r| &r.node,
                fill_service_node,
            )
            .await
        }
        .await,
    )
}

/// The reply of a read of a service's instances (`/v1/catalog/service`, `/v1/health/service`
/// and their `connect` twins): from the agent's cache with `?cached`, sorted by `?near=`,
/// the serving datacenter filled in, then `?filter=` and `?peer=` applied.
pub(crate) async fn instance_rows<B, Q, T>(
    st: &St<B>,
    p: &Params,
    cc: crate::cache::CacheControl,
    req: Q,
    schema: &'static proconsul_filter::Schema,
    node_of: impl Fn(&T) -> &str,
    set_datacenter: impl Fn(&mut T, &str),
) -> Result<Reply, RpcError>
where
    B: Backend,
    Q: proconsul_types::Query<Out = Vec<T>> + Clone + serde::Serialize + Sync,
    T: serde::Serialize + Clone + Send + Sync + proconsul_types::translate::WanAddresses + 'static,
{
    let opts = p.query_options()?;
    let filter = p.filter(schema)?;
    let dc = dc_of(&***st, &opts.datacenter);
    let (meta, mut rows, cached) = read_maybe_cached(st, p, cc, req, &opts).await?;
    crate::near::sort(
        &***st,
        p.get("near").unwrap_or(""),
        &opts,
        &mut rows,
        node_of,
    )
    .await?;
    for r in &mut rows {
        set_datacenter(r, &dc);
    }
    reply::translate(&***st, &dc, &mut rows);
    if let Some(f) = filter {
        f.retain(&mut rows);
    }
    if !p.peer().is_empty() {
        rows.clear();
    }
    let mut r = reply::json_meta(&rows, &meta, p.pretty());
    reply::add_translate_header(&mut r, st.translate_wan_addrs());
    if let Some(c) = cached {
        reply::add_cache(&mut r, c);
    }
    Ok(r)
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
