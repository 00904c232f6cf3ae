//! One DNS message in, at most one out: decode, dispatch on the query name, build records from
//! the backend, set codes, fit to the transport, encode.
//!
//! Transport-agnostic and free of sockets (except forwarding to recursors), so the fuzz tests and
//! benchmarks call [`Handler::handle`] directly. It must never panic on any input: undecodable packets with a
//! readable header get FORMERR, shorter ones are dropped, and responses are never answered.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use rand::seq::SliceRandom;
use rand::Rng;

use crate::answer::{self, Records, ServiceCtx};
use crate::cache::{self, AnswerCache, Lifetime};
use crate::limits::{self, MAX_TCP_SIZE, MAX_UDP_ANSWER_LIMIT, MAX_UDP_SIZE};
use crate::name::{self, Domain, Query, Target};
use crate::recursor;
use crate::{DnsBackend, DnsBackendError, DnsError, DnsServerConfig, ReverseMatch};

/// The transport a query came over; it sets the response size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Answers DNS messages from a [`DnsBackend`]. Cheap to clone (shared state behind an `Arc`).
pub struct Handler<B> {
    inner: Arc<Inner<B>>,
}

impl<B> Clone for Handler<B> {
    fn clone(&self) -> Self {
        Handler {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<B> {
    config: DnsServerConfig,
    domain: Domain,
    alt_domain: Option<Domain>,
    backend: Arc<B>,
    cache: AnswerCache,
    timers: QueryTimers,
}

/// Consul's `consul.dns.domain_query` and `consul.dns.ptr_query` timers (milliseconds,
/// labelled with the node), taken once so a query pays no registry lookup.
struct QueryTimers {
    domain: metrics::Histogram,
    ptr: metrics::Histogram,
}

impl QueryTimers {
    fn new(node: &str) -> Self {
        QueryTimers {
            domain: metrics::histogram!("consul.dns.domain_query", "node" => node.to_string()),
            ptr: metrics::histogram!("consul.dns.ptr_query", "node" => node.to_string()),
        }
    }
}

/// Whether `packet` asks a reverse name (`…in-addr.arpa.` or `…ip6.arpa.`): Consul times
/// those as `ptr_query`. Reads only the question's labels; anything malformed is "no".
pub(crate) fn is_reverse(packet: &[u8]) -> bool {
    let mut at = 12;
    let mut last_two: [&[u8]; 2] = [&[], &[]];
    for _ in 0..128 {
        let Some(&len) = packet.get(at) else {
            return false;
        };
        if len == 0 {
            break;
        }
        if len & 0xC0 != 0 {
            return false;
        }
        let Some(label) = packet.get(at + 1..at + 1 + len as usize) else {
            return false;
        };
        last_two = [last_two[1], label];
        at += 1 + len as usize;
    }
    last_two[1].eq_ignore_ascii_case(b"arpa")
        && (last_two[0].eq_ignore_ascii_case(b"in-addr")
            || last_two[0].eq_ignore_ascii_case(b"ip6"))
}

/// How a lookup ended, before it becomes a response code and sections.
enum Outcome {
    Found(Records),
    /// Found, in several orderings of the same records (a shuffled answer; see `cache`).
    Shuffled(Vec<Records>),
    /// With the SOA as authority: NXDOMAIN.
    NameError,
    /// The name exists but has no records of the type asked: NOERROR + SOA (RFC 2308 NODATA).
    NoData,
    ServFail,
}

impl From<DnsBackendError> for Outcome {
    fn from(e: DnsBackendError) -> Self {
        if e.is_name_error() {
            Outcome::NameError
        } else {
            tracing::warn!(error = %e, "dns: backend lookup failed");
            Outcome::ServFail
        }
    }
}

impl<B: DnsBackend> Handler<B> {
    /// Validate the domains and build a handler.
    pub fn new(config: DnsServerConfig, backend: Arc<B>) -> Result<Self, DnsError> {
        let domain = Domain::parse(&config.domain)
            .ok_or_else(|| DnsError::InvalidDomain(config.domain.clone()))?;
        let alt_domain = match &config.alt_domain {
            Some(a) => Some(Domain::parse(a).ok_or_else(|| DnsError::InvalidDomain(a.clone()))?),
            None => None,
        };
        let config_node = config.node_name.clone();
        Ok(Handler {
            inner: Arc::new(Inner {
                config,
                domain,
                alt_domain,
                backend,
                cache: AnswerCache::default(),
                timers: QueryTimers::new(&config_node),
            }),
        })
    }

    /// Answer one wire-format message. `None` means send nothing (not a query, or too mangled
    /// to address a reply to).
    pub async fn handle(&self, packet: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let start = std::time::Instant::now();
        let reply = self.answer(packet, transport).await;
        self.record(packet, start.elapsed(), 1);
        reply
    }

    /// Record `n` queries like `packet` that took `each` apiece.
    fn record(&self, packet: &[u8], each: std::time::Duration, n: usize) {
        if is_reverse(packet) {
            self.record_batch(each, 0, n)
        } else {
            self.record_batch(each, n, 0)
        }
    }

    /// Record a batch of cached answers, timed as a whole and shared out (two clock reads
    /// per batch, not per query): `domain` forward and `ptr` reverse queries, `each` apiece.
    pub(crate) fn record_batch(&self, each: std::time::Duration, domain: usize, ptr: usize) {
        let ms = each.as_secs_f64() * 1000.0;
        let t = &self.inner.timers;
        if domain > 0 {
            t.domain.record_many(ms, domain);
        }
        if ptr > 0 {
            t.ptr.record_many(ms, ptr);
        }
    }

    async fn answer(&self, packet: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let generation = self.inner.backend.generation();
        if let Some(hit) = generation.and_then(|g| self.inner.cache.get(transport, packet, g)) {
            return Some(hit);
        }
        let req = match Message::from_vec(packet) {
            Ok(m) => m,
            Err(_) => return format_error(packet),
        };
        if req.metadata.message_type != MessageType::Query {
            return None;
        }
        let (responses, lifetime) = match self.inner.answer(&req, generation.is_some()).await {
            Some(found) => found,
            // Not ours: ask the recursors, and answer SERVFAIL if none of them does.
            None => {
                let cfg = &self.inner.config;
                let forwarded = recursor::forward(
                    packet,
                    transport,
                    &cfg.recursors,
                    cfg.recursor_strategy,
                    cfg.recursor_timeout,
                )
                .await;
                if forwarded.is_some() {
                    return forwarded;
                }
                (
                    vec![self.inner.reply_to(&req, ResponseCode::ServFail)],
                    Lifetime::None,
                )
            }
        };
        let mut encoded: Vec<Vec<u8>> = responses
            .into_iter()
            .filter_map(|resp| self.inner.finish(&req, resp, transport))
            .collect();
        if let Some(g) = generation {
            self.inner
                .cache
                .put(transport, packet, g, lifetime, &encoded);
        }
        match encoded.len() {
            0 => None,
            1 => encoded.pop(),
            n => Some(encoded.swap_remove(rand::rng().random_range(0..n))),
        }
    }

    /// Cheap answers only: the cached response to `packet`, or `None` when it has to be built
    /// by [`Handler::handle`]. Lets a socket loop answer hits without spawning a task.
    pub fn cached(&self, packet: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let g = self.inner.backend.generation()?;
        self.inner.cache.get(transport, packet, g)
    }
}

/// FORMERR for a packet whose header we can read; nothing for shorter ones or responses.
fn format_error(packet: &[u8]) -> Option<Vec<u8>> {
    if packet.len() < 12 || packet[2] & 0x80 != 0 {
        return None;
    }
    let id = u16::from_be_bytes([packet[0], packet[1]]);
    let op = OpCode::from_u8((packet[2] >> 3) & 0x0f);
    let mut m = Message::error_msg(id, op, ResponseCode::FormErr);
    m.metadata.recursion_desired = packet[2] & 0x01 != 0;
    m.to_vec().ok()
}

impl<B: DnsBackend> Inner<B> {
    /// Fit `resp` to the transport (512 bytes, the EDNS size or 64 KiB; `udp_answer_limit`
    /// answers without EDNS) and encode it; SERVFAIL if it cannot be encoded.
    fn finish(&self, req: &Message, mut resp: Message, transport: Transport) -> Option<Vec<u8>> {
        let max = match (transport, &req.edns) {
            (Transport::Tcp, _) => MAX_TCP_SIZE,
            (Transport::Udp, Some(e)) => usize::from(e.max_payload()).clamp(512, MAX_UDP_SIZE),
            (Transport::Udp, None) => 512,
        };
        let cap = (transport == Transport::Udp && req.edns.is_none())
            .then(|| self.config.udp_answer_limit.clamp(1, MAX_UDP_ANSWER_LIMIT));
        if limits::fit(&mut resp, max, cap) {
            tracing::debug!(
                answers = resp.answers.len(),
                ?transport,
                "dns: response truncated"
            );
            resp.metadata.truncation = self.config.enable_truncate;
        }
        match limits::encode(&resp) {
            Some(bytes) => Some(bytes),
            None => {
                tracing::warn!("dns: encoding response failed");
                let mut fail = Message::error_msg(
                    req.metadata.id,
                    req.metadata.op_code,
                    ResponseCode::ServFail,
                );
                fail.queries = req.queries.clone();
                fail.to_vec().ok()
            }
        }
    }

    /// An empty response to `req` (ID, flags, question, OPT when the query had one).
    fn reply_to(&self, req: &Message, code: ResponseCode) -> Message {
        let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
        resp.metadata.recursion_desired = req.metadata.recursion_desired;
        resp.metadata.checking_disabled = req.metadata.checking_disabled;
        resp.metadata.recursion_available = !self.config.recursors.is_empty();
        resp.metadata.response_code = code;
        if let Some(e) = &req.edns {
            let mut out = Edns::new();
            out.set_max_payload(e.max_payload().max(512));
            resp.set_edns(out);
        }
        if let [q] = req.queries.as_slice() {
            resp.add_query(q.clone());
        }
        resp
    }

    /// The local answer (in one or more orderings) and how long it may be cached, or `None`
    /// when the query should go to the recursors. `cached`: the caller will cache the result,
    /// so a shuffled answer is built in several orderings instead of one.
    async fn answer(&self, req: &Message, cached: bool) -> Option<(Vec<Message>, Lifetime)> {
        let one = |m: Message| Some((vec![m], Lifetime::None));
        let recursors = !self.config.recursors.is_empty();
        if req.metadata.op_code != OpCode::Query {
            return one(self.reply_to(req, ResponseCode::NotImp));
        }
        let [q] = req.queries.as_slice() else {
            return one(self.reply_to(req, ResponseCode::FormErr));
        };
        let mut resp = self.reply_to(req, ResponseCode::NoError);
        if !matches!(q.query_class(), DNSClass::IN | DNSClass::ANY) {
            resp.metadata.response_code = ResponseCode::Refused;
            return one(resp);
        }
        let qname = q.name();
        let qtype = q.query_type();
        let labels = name::labels(qname.iter());
        let target = name::classify(
            &labels,
            &self.domain,
            self.alt_domain.as_ref(),
            qtype == RecordType::SRV,
        );
        // Another datacenter's answers change with its catalog, which the cache's generation
        // (this datacenter's index) does not follow: they are kept for the second only.
        let remote = match &target {
            Target::Zone {
                query:
                    Query::Service {
                        datacenter: Some(dc),
                        ..
                    }
                    | Query::Node {
                        datacenter: Some(dc),
                        ..
                    },
                ..
            } => !dc.eq_ignore_ascii_case(&self.backend.datacenter()),
            // A query may fail over to another datacenter at any moment.
            Target::Zone {
                query: Query::Prepared { .. },
                ..
            } => true,
            _ => false,
        };
        let (outcome, domain) = match target {
            Target::Foreign if recursors => return None,
            // Without recursors we answer for our own domains only.
            Target::Foreign => {
                resp.metadata.response_code = ResponseCode::Refused;
                return one(resp);
            }
            Target::Reverse(ip) => match self.reverse(qname, qtype, ip).await {
                // Addresses we do not know are the recursors' business, as in Consul.
                Outcome::NameError if recursors => return None,
                outcome => {
                    resp.metadata.authoritative = true;
                    (outcome, &self.domain.text)
                }
            },
            Target::Zone { query, alt } => {
                let domain = match (&self.alt_domain, alt) {
                    (Some(a), true) => &a.text,
                    _ => &self.domain.text,
                };
                resp.metadata.authoritative = true;
                match qtype {
                    RecordType::AXFR | RecordType::IXFR => {
                        resp.metadata.response_code = ResponseCode::NotImp;
                        return one(resp);
                    }
                    // Like Consul: SOA and NS are answered for any name in the zone. Not
                    // cached: the servers come from gossip, not the catalog.
                    RecordType::SOA => {
                        resp.answers.extend(self.soa(domain));
                        let ns = self.nameservers(domain);
                        resp.authorities = ns.answers;
                        resp.additionals = ns.additionals;
                        return one(resp);
                    }
                    RecordType::NS => {
                        let ns = self.nameservers(domain);
                        resp.answers = ns.answers;
                        resp.additionals = ns.additionals;
                        return one(resp);
                    }
                    _ => (
                        self.lookup(qname, qtype, query, domain, cached).await,
                        domain,
                    ),
                }
            }
        };
        let variants = match outcome {
            Outcome::Found(r) if !r.answers.is_empty() => vec![r],
            Outcome::Shuffled(v) if v.iter().all(|r| !r.answers.is_empty()) => v,
            Outcome::Found(_) | Outcome::Shuffled(_) | Outcome::NoData => {
                resp.authorities.extend(self.soa(domain));
                return Some((vec![resp], Lifetime::ThisSecond));
            }
            Outcome::NameError => {
                resp.metadata.response_code = ResponseCode::NXDomain;
                resp.authorities.extend(self.soa(domain));
                return Some((vec![resp], Lifetime::ThisSecond));
            }
            Outcome::ServFail => {
                resp.metadata.response_code = ResponseCode::ServFail;
                return one(resp);
            }
        };
        let responses = variants
            .into_iter()
            .map(|r| {
                let mut m = resp.clone();
                m.answers = r.answers;
                m.additionals = r.additionals;
                m
            })
            .collect();
        let lifetime = if remote {
            Lifetime::ThisSecond
        } else {
            Lifetime::Generation
        };
        Some((responses, lifetime))
    }

    fn soa(&self, domain: &str) -> Option<hickory_proto::rr::Record> {
        // Like Consul, the serial is the current time: answers are computed, never transferred.
        let serial = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        answer::soa(domain, &self.config.soa, serial)
    }

    fn nameservers(&self, domain: &str) -> Records {
        let mut servers = self.backend.servers();
        servers.shuffle(&mut rand::rng());
        answer::nameservers(
            &servers,
            &self.backend.datacenter(),
            domain,
            answer::secs(self.config.node_ttl),
        )
    }

    async fn lookup(
        &self,
        qname: &Name,
        qtype: RecordType,
        query: Query,
        domain: &str,
        cached: bool,
    ) -> Outcome {
        match query {
            Query::Apex => Outcome::NoData,
            Query::Invalid => Outcome::NameError,
            Query::Addr { ip } => {
                let ttl = answer::secs(self.config.node_ttl);
                match answer::addr_record(qname, ip, ttl, qtype) {
                    Some(r) if qtype != RecordType::SRV => Outcome::Found(Records {
                        answers: vec![r],
                        additionals: Vec::new(),
                    }),
                    _ => Outcome::NoData,
                }
            }
            Query::Node { datacenter, node } => {
                // Other types are NODATA, but only once the node is known to exist, so a
                // typo is NXDOMAIN.
                let dc = datacenter.unwrap_or_default();
                match self.backend.node(&dc, &node).await {
                    Err(e) => e.into(),
                    Ok(None) => Outcome::NameError,
                    Ok(Some(n)) => {
                        if !matches!(
                            qtype,
                            RecordType::A | RecordType::AAAA | RecordType::ANY | RecordType::TXT
                        ) {
                            return Outcome::NoData;
                        }
                        Outcome::Found(answer::node_records(
                            qname,
                            qtype,
                            &n,
                            answer::secs(self.config.node_ttl),
                            self.config.node_meta_txt,
                        ))
                    }
                }
            }
            Query::Service {
                datacenter,
                service,
                tag,
            } => {
                let dc_arg = datacenter.as_deref().unwrap_or("");
                let instances = match self
                    .backend
                    .service_nodes(dc_arg, &service, tag.as_deref())
                    .await
                {
                    Ok(v) => v,
                    Err(e) => return e.into(),
                };
                let healthy: Vec<_> = instances
                    .into_iter()
                    .filter(|i| answer::is_healthy(i, self.config.only_passing))
                    .collect();
                if healthy.is_empty() {
                    return Outcome::NameError;
                }
                let dc = datacenter.unwrap_or_else(|| self.backend.datacenter());
                let ttl = answer::service_ttl(&self.config.service_ttl, &service);
                self.service_answer(qname, qtype, &dc, domain, ttl, healthy, cached)
            }
            Query::Prepared { datacenter, name } => {
                let dc_arg = datacenter.as_deref().unwrap_or("");
                let found = match self.backend.prepared_query(dc_arg, &name).await {
                    Ok(Some(found)) => found,
                    Ok(None) => return Outcome::NameError,
                    Err(e) => return e.into(),
                };
                if found.nodes.is_empty() {
                    return Outcome::NameError;
                }
                // The query's own TTL, else the service's.
                let ttl = proconsul_types::duration::parse(&found.dns.ttl)
                    .map(answer::secs)
                    .unwrap_or_else(|_| {
                        answer::service_ttl(&self.config.service_ttl, &found.service)
                    });
                self.service_answer(
                    qname,
                    qtype,
                    &found.datacenter,
                    domain,
                    ttl,
                    found.nodes,
                    cached,
                )
            }
        }
    }

    /// SRV or address answers for a service's healthy instances, in shuffled orderings.
    #[allow(clippy::too_many_arguments)]
    fn service_answer(
        &self,
        qname: &Name,
        qtype: RecordType,
        datacenter: &str,
        domain: &str,
        ttl: u32,
        healthy: Vec<proconsul_types::CheckServiceNode>,
        cached: bool,
    ) -> Outcome {
        let ctx = ServiceCtx {
            qname,
            qtype,
            datacenter,
            domain,
            ttl,
            a_record_limit: self.config.a_record_limit,
        };
        let build = match qtype {
            RecordType::SRV => answer::service_srv,
            RecordType::A | RecordType::AAAA | RecordType::ANY | RecordType::CNAME => {
                answer::service_addrs
            }
            _ => return Outcome::NoData,
        };
        // Answers are shuffled per query: build the orderings to pick from.
        let variants = cache::orderings(healthy.len(), cached)
            .into_iter()
            .map(|order| {
                let ordered: Vec<_> = order.iter().map(|&i| &healthy[i]).collect();
                build(&ctx, &ordered)
            })
            .collect();
        Outcome::Shuffled(variants)
    }

    async fn reverse(&self, qname: &Name, qtype: RecordType, ip: Option<IpAddr>) -> Outcome {
        let Some(ip) = ip else {
            return Outcome::NameError;
        };
        let found = match self.backend.reverse(ip).await {
            Ok(Some(m)) => m,
            Ok(None) => return Outcome::NameError,
            Err(e) => return e.into(),
        };
        if !matches!(qtype, RecordType::PTR | RecordType::ANY) {
            return Outcome::NoData;
        }
        let domain = &self.domain.text;
        let target = match &found {
            ReverseMatch::Node { node, datacenter } => {
                answer::fqdn(&[node, "node", datacenter, domain])
            }
            ReverseMatch::Service {
                service,
                datacenter,
            } => answer::fqdn(&[service, "service", datacenter, domain]),
        };
        match target {
            Some(t) => Outcome::Found(Records {
                answers: vec![answer::ptr(qname, t)],
                additionals: Vec::new(),
            }),
            None => Outcome::NameError,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_reverse;

    fn query(labels: &[&str]) -> Vec<u8> {
        let mut p = vec![0u8; 12];
        for l in labels {
            p.push(l.len() as u8);
            p.extend_from_slice(l.as_bytes());
        }
        p.extend_from_slice(&[0, 0, 12, 0, 1]);
        p
    }

    #[test]
    fn reverse_names() {
        assert!(is_reverse(&query(&[
            "1", "0", "0", "127", "in-addr", "arpa"
        ])));
        assert!(is_reverse(&query(&["b", "ip6", "ARPA"])));
        assert!(!is_reverse(&query(&["web", "service", "consul"])));
        assert!(!is_reverse(&query(&["arpa"])));
        assert!(!is_reverse(&[0u8; 5]));
        // a compression pointer or a label running past the end: not reverse, no panic
        assert!(!is_reverse(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xC0, 12]));
        assert!(!is_reverse(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, b'a']));
    }
}
