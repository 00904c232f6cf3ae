//! The agent's side of the DNS interface: `proconsul_dns::DnsBackend` over the same read path as
//! the HTTP API (stale reads, like Consul's default `allow_stale`), and the mapping from
//! `RuntimeConfig` to the DNS server's settings.

use std::net::{IpAddr, SocketAddr};

use proconsul_config::RuntimeConfig;
use proconsul_dns::{DnsBackend, DnsBackendError, DnsServerConfig, ReverseMatch, SoaSettings};
use proconsul_types::{
    CatalogNodeServices, CatalogNodes, CatalogServiceNodes, CatalogServices, CheckServiceNode,
    Consistency, HealthServiceNodes, Node, Query, QueryOptions, RpcError,
};

use crate::Agent;

/// Build the DNS server's settings from the agent's config.
pub fn server_config(c: &RuntimeConfig) -> DnsServerConfig {
    let d = &c.dns;
    DnsServerConfig {
        bind: c.dns_addrs.clone(),
        node_name: c.node_name.clone(),
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
    /// The datacenter a DNS name asks for, as a `?dc=` value: empty for this one; another
    /// must be known to the servers' WAN pool (else NXDOMAIN, as Consul's `No path to
    /// datacenter`).
    async fn check_dc(&self, dc: &str) -> Result<String, DnsBackendError> {
        if dc.is_empty() || dc.eq_ignore_ascii_case(&self.inner.datacenter) {
            return Ok(String::new());
        }
        let known = proconsul_http::Backend::datacenters(self)
            .await
            .map_err(unavailable)?;
        known
            .into_iter()
            .find(|d| d.eq_ignore_ascii_case(dc))
            .ok_or_else(|| DnsBackendError::UnknownDatacenter(dc.to_string()))
    }

    /// `dns_config.allow_stale` and `max_stale` in milliseconds.
    fn dns_staleness(&self) -> (bool, u64) {
        self.inner.config.dns_staleness()
    }

    /// A catalog read for DNS, Consul's way: stale (any server answers) when `allow_stale`,
    /// asked again of the leader when the answering server's last contact with it is older than
    /// `max_stale`; from the leader only otherwise.
    async fn dns_read<Q: Query + Clone>(&self, req: Q) -> Result<Q::Out, DnsBackendError> {
        self.dns_read_in(String::new(), req).await
    }

    /// [`Agent::dns_read`] of `datacenter` (empty: this one).
    async fn dns_read_in<Q: Query + Clone>(
        &self,
        datacenter: String,
        req: Q,
    ) -> Result<Q::Out, DnsBackendError> {
        let (allow_stale, max_stale_ms) = self.dns_staleness();
        // DNS answers only what the `dns` (else `default`) token may read.
        let token = self.inner.tokens.dns();
        let in_dc = |mut o: QueryOptions| {
            o.datacenter = datacenter.clone();
            o
        };
        if !allow_stale {
            let r = self
                .query_as(req, in_dc(QueryOptions::default()), &token)
                .await;
            return Ok(r.map_err(unavailable)?.1);
        }
        let (meta, resp) = self
            .query_as(req.clone(), in_dc(stale()), &token)
            .await
            .map_err(unavailable)?;
        // Consul counts answers from a server that has not heard from the leader for 5 s.
        if meta.last_contact_ms > 5_000 {
            metrics::counter!("consul.dns.stale_queries").increment(1);
        }
        if meta.last_contact_ms <= max_stale_ms {
            return Ok(resp);
        }
        tracing::debug!(
            last_contact_ms = meta.last_contact_ms,
            "dns: stale answer too old (max_stale), asking the leader"
        );
        let r = self
            .query_as(req, in_dc(QueryOptions::default()), &token)
            .await;
        Ok(r.map_err(unavailable)?.1)
    }

    /// Rows of datacenter `dc` with their WAN addresses when `translate_wan_addrs` is on and
    /// `dc` is another datacenter (empty means this one).
    fn translate<T: proconsul_types::translate::WanAddresses>(&self, dc: &str, rows: &mut [T]) {
        if self.config().translate_wan_addrs
            && !dc.is_empty()
            && !dc.eq_ignore_ascii_case(&self.inner.datacenter)
        {
            rows.iter_mut().for_each(|r| r.use_wan_addresses());
        }
    }

    async fn all_nodes(&self) -> Result<Vec<Node>, DnsBackendError> {
        self.dns_read(CatalogNodes::default()).await
    }
}

impl DnsBackend for Agent {
    async fn service_nodes(
        &self,
        datacenter: &str,
        service: &str,
        tag: Option<&str>,
    ) -> Result<Vec<CheckServiceNode>, DnsBackendError> {
        let dc = self.check_dc(datacenter).await?;
        let req = HealthServiceNodes {
            service: service.to_string(),
            tags: tag.map(|t| vec![t.to_string()]).unwrap_or_default(),
            ..Default::default()
        };
        let mut rows = self.dns_read_in(dc.clone(), req).await?;
        self.translate(&dc, &mut rows);
        Ok(rows)
    }

    async fn prepared_query(
        &self,
        datacenter: &str,
        name: &str,
    ) -> Result<Option<proconsul_types::PreparedQueryExecuteResponse>, DnsBackendError> {
        let dc = self.check_dc(datacenter).await?;
        let req = proconsul_types::PreparedQueryExecute {
            id_or_name: name.to_string(),
            agent_node: self.node_name().to_string(),
            datacenter: dc,
            ..Default::default()
        };
        match self.call_as(req, &self.inner.tokens.dns()).await {
            Ok((_, mut found)) => {
                let served_by = found.datacenter.clone();
                self.translate(&served_by, &mut found.nodes);
                Ok(Some(found))
            }
            // Consul answers NXDOMAIN for an unknown query.
            Err(RpcError::NotFound(_)) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn node(&self, datacenter: &str, name: &str) -> Result<Option<Node>, DnsBackendError> {
        let dc = self.check_dc(datacenter).await?;
        let req = CatalogNodeServices {
            node: name.to_string(),
        };
        let found = self.dns_read_in(dc.clone(), req).await?;
        Ok(found.map(|(mut n, _)| {
            self.translate(&dc, std::slice::from_mut(&mut n));
            n.datacenter = if dc.is_empty() {
                self.inner.datacenter.clone()
            } else {
                dc
            };
            n
        }))
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
        let names = self.dns_read(CatalogServices::default()).await?;
        for name in names.keys() {
            let req = CatalogServiceNodes {
                service: name.clone(),
                ..Default::default()
            };
            let rows = self.dns_read(req).await?;
            if rows.iter().any(|r| r.service_address == want) {
                return Ok(Some(ReverseMatch::Service {
                    service: name.clone(),
                    datacenter: dc,
                }));
            }
        }
        Ok(None)
    }

    fn datacenter(&self) -> String {
        self.inner.datacenter.clone()
    }

    fn generation(&self) -> Option<u64> {
        // A server that reads its own store (the leader, or a follower allowed stale reads whose
        // leader contact is recent enough) can re-serve answers until the store changes. A
        // client agent's answers come from a server, and a follower past max_stale asks the
        // leader: neither is cached.
        let server = self.inner.server.as_ref()?;
        let (allow_stale, max_stale_ms) = self.dns_staleness();
        let local = server.is_leader() || (allow_stale && server.last_contact_ms() <= max_stale_ms);
        // A new `dns` token may see other things: answers cached under the old one go stale.
        let tokens = self.inner.tokens.epoch() << 40;
        local.then(|| server.store().generation().wrapping_add(tokens))
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
