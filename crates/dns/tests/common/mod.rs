//! A fake in-memory catalog and a tiny hickory-proto client for the DNS tests.
#![allow(dead_code)]

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use proconsul_dns::{DnsBackend, DnsBackendError, DnsServer, DnsServerConfig, ReverseMatch};
use proconsul_types::{CheckServiceNode, HealthCheck, Node, NodeService, Weights};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub struct Fake {
    pub nodes: Mutex<Vec<Node>>,
    pub instances: Mutex<Vec<CheckServiceNode>>,
    pub servers: Vec<(String, IpAddr)>,
    pub fail: Mutex<bool>,
    /// Report no generation, so the handler builds every answer afresh (a client agent).
    pub uncached: bool,
}

fn known_dc(dc: &str) -> Result<(), DnsBackendError> {
    match dc {
        "" | "dc1" => Ok(()),
        other => Err(DnsBackendError::UnknownDatacenter(other.into())),
    }
}

impl Fake {
    fn check_fail(&self) -> Result<(), DnsBackendError> {
        if *self.fail.lock().unwrap() {
            return Err(DnsBackendError::Unavailable("no cluster leader".into()));
        }
        Ok(())
    }

    pub fn add_node(&self, name: &str, addr: &str, meta: &[(&str, &str)]) {
        self.nodes.lock().unwrap().push(Node {
            id: format!("id-{name}"),
            node: name.into(),
            address: addr.into(),
            datacenter: "dc1".into(),
            meta: meta
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        });
    }

    /// Register `service` on `node` (which must exist) with a node-level serfHealth check and
    /// one service check of `status`.
    #[allow(clippy::too_many_arguments)] // a test fixture reads best as one flat call
    pub fn add_instance(
        &self,
        node: &str,
        id: &str,
        service: &str,
        addr: &str,
        port: u16,
        tags: &[&str],
        status: &str,
    ) {
        let n = self
            .nodes
            .lock()
            .unwrap()
            .iter()
            .find(|n| n.node == node)
            .cloned()
            .expect("node");
        let checks = vec![
            HealthCheck {
                node: node.into(),
                check_id: "serfHealth".into(),
                status: "passing".into(),
                ..Default::default()
            },
            HealthCheck {
                node: node.into(),
                check_id: format!("service:{id}"),
                status: status.into(),
                service_id: id.into(),
                service_name: service.into(),
                ..Default::default()
            },
        ];
        self.instances.lock().unwrap().push(CheckServiceNode {
            node: n,
            service: NodeService {
                id: id.into(),
                service: service.into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                address: addr.into(),
                port,
                weights: Weights {
                    passing: 10,
                    warning: 1,
                },
                ..Default::default()
            },
            checks,
        });
    }

    /// Set the status of check `check_id` on every instance of `node` (serfHealth) or of
    /// service instance `id`.
    pub fn set_status(&self, id: &str, check_id: &str, status: &str) {
        for i in self.instances.lock().unwrap().iter_mut() {
            if i.service.id == id || i.node.node == id {
                for c in i.checks.iter_mut().filter(|c| c.check_id == check_id) {
                    c.status = status.into();
                }
            }
        }
    }
}

impl DnsBackend for Fake {
    async fn service_nodes(
        &self,
        datacenter: &str,
        service: &str,
        tag: Option<&str>,
    ) -> Result<Vec<CheckServiceNode>, DnsBackendError> {
        self.check_fail()?;
        known_dc(datacenter)?;
        Ok(self
            .instances
            .lock()
            .unwrap()
            .iter()
            .filter(|i| i.service.service.eq_ignore_ascii_case(service))
            .filter(|i| match tag {
                None => true,
                Some(t) => i.service.tags.iter().any(|x| x.eq_ignore_ascii_case(t)),
            })
            .cloned()
            .collect())
    }

    async fn node(&self, datacenter: &str, name: &str) -> Result<Option<Node>, DnsBackendError> {
        self.check_fail()?;
        known_dc(datacenter)?;
        Ok(self
            .nodes
            .lock()
            .unwrap()
            .iter()
            .find(|n| n.node.eq_ignore_ascii_case(name))
            .cloned())
    }

    async fn reverse(&self, ip: IpAddr) -> Result<Option<ReverseMatch>, DnsBackendError> {
        self.check_fail()?;
        let s = ip.to_string();
        if let Some(n) = self.nodes.lock().unwrap().iter().find(|n| n.address == s) {
            return Ok(Some(ReverseMatch::Node {
                node: n.node.clone(),
                datacenter: n.datacenter.clone(),
            }));
        }
        Ok(self
            .instances
            .lock()
            .unwrap()
            .iter()
            .find(|i| i.service.address == s)
            .map(|i| ReverseMatch::Service {
                service: i.service.service.clone(),
                datacenter: i.node.datacenter.clone(),
            }))
    }

    fn datacenter(&self) -> String {
        "dc1".into()
    }

    fn servers(&self) -> Vec<(String, IpAddr)> {
        self.servers.clone()
    }

    /// A digest of everything the lookups read, so tests that poke the fields directly still
    /// move the generation on (a stale cached answer would fail them).
    fn generation(&self) -> Option<u64> {
        if self.uncached {
            return None;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        format!(
            "{:?}{:?}{:?}",
            self.nodes.lock().unwrap(),
            self.instances.lock().unwrap(),
            self.fail.lock().unwrap()
        )
        .hash(&mut h);
        Some(h.finish())
    }
}

/// The standard catalog: web on two nodes (one critical instance elsewhere), db with its own
/// address, a node with meta and a node with a hostname address.
pub fn catalog() -> Fake {
    let f = Fake {
        servers: vec![("Server1".into(), "10.0.0.100".parse().unwrap())],
        ..Default::default()
    };
    f.add_node(
        "web1",
        "10.0.0.1",
        &[("rack", "r1"), ("rfc1035-raw", "v=spf1")],
    );
    f.add_node("web2", "10.0.0.2", &[]);
    f.add_node("web3", "10.0.0.3", &[]);
    f.add_node("db1", "10.0.0.10", &[]);
    f.add_node("ext", "db.example.com", &[]);
    f.add_node("v6", "2001:db8::6", &[]);
    f.add_instance(
        "web1",
        "web-1",
        "web",
        "",
        80,
        &["v1", "primary"],
        "passing",
    );
    f.add_instance("web2", "web-2", "web", "", 8080, &["v2"], "passing");
    f.add_instance("web3", "web-3", "web", "", 80, &["v1"], "critical");
    f.add_instance("db1", "db-1", "db", "192.168.1.5", 5432, &[], "passing");
    f.add_instance("ext", "rds-1", "rds", "", 5432, &[], "passing");
    f.add_instance("v6", "api-1", "api", "", 443, &[], "passing");
    f
}

pub struct Running {
    pub server: DnsServer,
    pub backend: Arc<Fake>,
    pub shutdown: CancellationToken,
    pub addr: SocketAddr,
}

pub async fn start_with(fake: Fake, tweak: impl FnOnce(&mut DnsServerConfig)) -> Running {
    let mut cfg = DnsServerConfig {
        bind: vec!["127.0.0.1:0".parse().unwrap()],
        ..Default::default()
    };
    tweak(&mut cfg);
    let backend = Arc::new(fake);
    let shutdown = CancellationToken::new();
    let server = DnsServer::start(cfg, backend.clone(), shutdown.clone())
        .await
        .expect("start");
    let addr = server.udp_addrs()[0];
    assert_eq!(server.tcp_addrs()[0], addr);
    Running {
        server,
        backend,
        shutdown,
        addr,
    }
}

pub async fn start() -> Running {
    start_with(catalog(), |_| {}).await
}

pub fn query(name: &str, rtype: RecordType, edns: Option<u16>) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m
}

const TIMEOUT: Duration = Duration::from_secs(5);

pub async fn udp_raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(bytes, addr).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(TIMEOUT, sock.recv_from(&mut buf))
        .await
        .expect("udp reply in time")
        .unwrap();
    buf.truncate(n);
    buf
}

pub async fn udp(addr: SocketAddr, q: &Message) -> Message {
    let reply = udp_raw(addr, &q.to_vec().unwrap()).await;
    let m = Message::from_vec(&reply).expect("decodable reply");
    assert_eq!(m.metadata.id, q.metadata.id);
    m
}

pub async fn tcp(addr: SocketAddr, q: &Message) -> Message {
    let mut s = TcpStream::connect(addr).await.unwrap();
    tcp_on(&mut s, q).await
}

pub async fn tcp_on(s: &mut TcpStream, q: &Message) -> Message {
    let body = q.to_vec().unwrap();
    let mut out = (body.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    s.write_all(&out).await.unwrap();
    let mut len = [0u8; 2];
    tokio::time::timeout(TIMEOUT, s.read_exact(&mut len))
        .await
        .expect("tcp reply in time")
        .unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).await.unwrap();
    let m = Message::from_vec(&buf).expect("decodable reply");
    assert_eq!(m.metadata.id, q.metadata.id);
    m
}
