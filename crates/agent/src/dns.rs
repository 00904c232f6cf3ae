//! The agent's side of the DNS interface: `proconsul_dns::DnsBackend` over the same read path as
//! the HTTP API (stale reads, like Consul's default `allow_stale`), and the mapping from
//! `RuntimeConfig` to the DNS server's settings.

use std::net::{IpAddr, SocketAddr};

use proconsul_config::RuntimeConfig;
use proconsul_dns::{DnsBackend, DnsBackendError, DnsServerConfig, ReverseMatch, SoaSettings};
use proconsul_types::{
    CheckServiceNode, Consistency, Node, QueryOptions, ReadRequest, ReadResponse, RpcError,
};

use crate::Agent;

/// Build the DNS server's settings from the agent's config.
pub fn server_config(c: &RuntimeConfig) -> DnsServerConfig {
    let d = &c.dns;
    DnsServerConfig {
        bind: c.dns_addrs.clone(),
        domain: c.domain.clone(),
        alt_domain: c.alt_domain.clone(),
        node_ttl: d.node_ttl,
        service_ttl: d.service_ttl.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        only_passing: d.only_passing,
        udp_answer_limit: d.udp_answer_limit as usize,
        a_record_limit: d.a_record_limit as usize,
        enable_truncate: d.enable_truncate,
        soa: SoaSettings {
            refresh: d.soa.refresh,
            retry: d.soa.retry,
            expire: d.soa.expire,
            min_ttl: d.soa.min_ttl,
        },
        recursors: d
            .recursors
            .iter()
            .filter_map(|r| recursor_addr(r))
            .collect(),
        recursor_timeout: d.recursor_timeout,
        ..DnsServerConfig::default()
    }
}

/// `ip` or `ip:port` (port 53 by default).
fn recursor_addr(r: &str) -> Option<SocketAddr> {
    r.parse::<SocketAddr>()
        .ok()
        .or_else(|| r.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
}

fn stale() -> QueryOptions {
    QueryOptions {
        consistency: Consistency::Stale,
        ..Default::default()
    }
}

fn unavailable(e: RpcError) -> DnsBackendError {
    DnsBackendError::Unavailable(e.to_string())
}

impl Agent {
    fn check_dc(&self, dc: &str) -> Result<(), DnsBackendError> {
        if dc.is_empty() || dc.eq_ignore_ascii_case(&self.inner.datacenter) {
            Ok(())
        } else {
            Err(DnsBackendError::UnknownDatacenter(dc.to_string()))
        }
    }

    async fn all_nodes(&self) -> Result<Vec<Node>, DnsBackendError> {
        let req = ReadRequest::CatalogNodes {
            node_meta: Vec::new(),
        };
        match self.rpc_read(req, stale()).await.map_err(unavailable)?.1 {
            ReadResponse::Nodes(n) => Ok(n),
            _ => Err(DnsBackendError::Unavailable(
                "unexpected read response".into(),
            )),
        }
    }
}

impl DnsBackend for Agent {
    async fn service_nodes(
        &self,
        datacenter: &str,
        service: &str,
        tag: Option<&str>,
    ) -> Result<Vec<CheckServiceNode>, DnsBackendError> {
        self.check_dc(datacenter)?;
        let req = ReadRequest::HealthServiceNodes {
            service: service.to_string(),
            tags: tag.map(|t| vec![t.to_string()]).unwrap_or_default(),
            passing: false,
            node_meta: Vec::new(),
        };
        match self.rpc_read(req, stale()).await.map_err(unavailable)?.1 {
            ReadResponse::CheckServiceNodes(rows) => Ok(rows),
            _ => Err(DnsBackendError::Unavailable(
                "unexpected read response".into(),
            )),
        }
    }

    async fn node(&self, datacenter: &str, name: &str) -> Result<Option<Node>, DnsBackendError> {
        self.check_dc(datacenter)?;
        let req = ReadRequest::CatalogNodeServices {
            node: name.to_string(),
        };
        match self.rpc_read(req, stale()).await.map_err(unavailable)?.1 {
            ReadResponse::NodeServices(found) => Ok(found.map(|(mut n, _)| {
                n.datacenter = self.inner.datacenter.clone();
                n
            })),
            _ => Err(DnsBackendError::Unavailable(
                "unexpected read response".into(),
            )),
        }
    }

    async fn reverse(&self, ip: IpAddr) -> Result<Option<ReverseMatch>, DnsBackendError> {
        let dc = self.inner.datacenter.clone();
        let want = ip.to_string();
        if let Some(n) = self
            .all_nodes()
            .await?
            .into_iter()
            .find(|n| n.address == want)
        {
            return Ok(Some(ReverseMatch::Node {
                node: n.node,
                datacenter: dc,
            }));
        }
        let req = ReadRequest::CatalogServices {
            node_meta: Vec::new(),
        };
        let ReadResponse::Services(names) =
            self.rpc_read(req, stale()).await.map_err(unavailable)?.1
        else {
            return Ok(None);
        };
        for name in names.keys() {
            let req = ReadRequest::CatalogServiceNodes {
                service: name.clone(),
                tags: Vec::new(),
                node_meta: Vec::new(),
            };
            if let ReadResponse::ServiceNodes(rows) =
                self.rpc_read(req, stale()).await.map_err(unavailable)?.1
            {
                if rows.iter().any(|r| r.service_address == want) {
                    return Ok(Some(ReverseMatch::Service {
                        service: name.clone(),
                        datacenter: dc,
                    }));
                }
            }
        }
        Ok(None)
    }

    fn datacenter(&self) -> String {
        self.inner.datacenter.clone()
    }

    fn generation(&self) -> Option<u64> {
        // A server answers from its own store, so its answers can be cached until it changes;
        // a client agent's come from a server and are not.
        self.inner.server.as_ref().map(|s| s.store().generation())
    }

    fn servers(&self) -> Vec<(String, IpAddr)> {
        // Until the gossip pool lists the other servers, this agent names itself when it is one.
        let c = self.config();
        if c.server {
            vec![(self.inner.node_name.clone(), c.advertise_addr)]
        } else {
            Vec::new()
        }
    }
}
