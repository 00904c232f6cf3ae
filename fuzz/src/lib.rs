//! What the fuzz targets share: one async runtime whose clock is paused (a blocking query's
//! wait or a timeout passes at once, so no input can stall a run on a timer), and in-memory
//! backends for the DNS and HTTP handlers with a few fixed catalog rows. Nothing here opens a
//! socket; the backends answer every lookup from constants.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use proconsul_dns::{DnsBackend, DnsBackendError, ReverseMatch};
use proconsul_types::{
    AgentMember, AgentService, CheckDefinition, CheckServiceNode, HealthCheck, Node, NodeService,
    RpcError, ServerCall, UserEvent, Weights,
};

/// The whole `/v1/*` router over a [`FakeAgent`], built once (on [`runtime`]).
pub fn http_router() -> &'static axum::Router {
    static R: OnceLock<axum::Router> = OnceLock::new();
    R.get_or_init(|| {
        let _guard = runtime().enter();
        proconsul_http::router(Arc::new(FakeAgent::default()))
    })
}

/// The targets' runtime: one thread, paused clock (time advances whenever it is idle).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime")
    })
}

fn node(name: &str, addr: &str) -> Node {
    Node {
        id: format!("00000000-0000-0000-0000-00000000000{}", name.len()),
        node: name.into(),
        address: addr.into(),
        datacenter: "dc1".into(),
        meta: [("rack".to_string(), "r1".to_string())].into(),
        ..Default::default()
    }
}

fn instance(
    n: &Node,
    id: &str,
    service: &str,
    addr: &str,
    tags: &[&str],
    status: &str,
) -> CheckServiceNode {
    CheckServiceNode {
        node: n.clone(),
        service: NodeService {
            id: id.into(),
            service: service.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            address: addr.into(),
            port: 8080,
            weights: Weights {
                passing: 10,
                warning: 1,
            },
            ..Default::default()
        },
        checks: vec![
            HealthCheck {
                node: n.node.clone(),
                check_id: "serfHealth".into(),
                status: "passing".into(),
                ..Default::default()
            },
            HealthCheck {
                node: n.node.clone(),
                check_id: format!("service:{id}"),
                status: status.into(),
                service_id: id.into(),
                service_name: service.into(),
                ..Default::default()
            },
        ],
    }
}

/// A fixed catalog for the DNS handler: nodes `n1` (IPv4) and `n2` (IPv6), service `web` on
/// both (one instance warning), service `db` with an empty address, and datacenter `dc1`.
/// With `generation` set the handler caches its answers (a server agent), else not.
pub struct FakeDns {
    nodes: Vec<Node>,
    instances: Vec<CheckServiceNode>,
    pub generation: Option<u64>,
}

impl Default for FakeDns {
    fn default() -> Self {
        let n1 = node("n1", "10.0.0.1");
        let n2 = node("n2", "fd00::2");
        let instances = vec![
            instance(&n1, "web1", "web", "", &["primary", "v1"], "passing"),
            instance(&n2, "web2", "web", "10.0.1.2", &["v1"], "warning"),
            instance(&n1, "db1", "db", "", &[], "critical"),
            instance(&n2, "api1", "api", "api.example.com", &["x"], "passing"),
        ];
        FakeDns {
            nodes: vec![n1, n2],
            instances,
            generation: None,
        }
    }
}

fn known_dc(dc: &str) -> Result<(), DnsBackendError> {
    match dc {
        "" | "dc1" => Ok(()),
        "down" => Err(DnsBackendError::Unavailable("no cluster leader".into())),
        other => Err(DnsBackendError::UnknownDatacenter(other.into())),
    }
}

impl DnsBackend for FakeDns {
    async fn service_nodes(
        &self,
        datacenter: &str,
        service: &str,
        tag: Option<&str>,
    ) -> Result<Vec<CheckServiceNode>, DnsBackendError> {
        known_dc(datacenter)?;
        Ok(self
            .instances
            .iter()
            .filter(|i| i.service.service.eq_ignore_ascii_case(service))
            .filter(|i| {
                tag.is_none_or(|t| i.service.tags.iter().any(|x| x.eq_ignore_ascii_case(t)))
            })
            .cloned()
            .collect())
    }

    async fn node(&self, datacenter: &str, name: &str) -> Result<Option<Node>, DnsBackendError> {
        known_dc(datacenter)?;
        Ok(self
            .nodes
            .iter()
            .find(|n| n.node.eq_ignore_ascii_case(name))
            .cloned())
    }

    async fn reverse(&self, ip: IpAddr) -> Result<Option<ReverseMatch>, DnsBackendError> {
        let s = ip.to_string();
        if let Some(n) = self.nodes.iter().find(|n| n.address == s) {
            return Ok(Some(ReverseMatch::Node {
                node: n.node.clone(),
                datacenter: n.datacenter.clone(),
            }));
        }
        Ok(self
            .instances
            .iter()
            .find(|i| i.service.address == s)
            .map(|i| ReverseMatch::Service {
                service: i.service.service.clone(),
                datacenter: "dc1".into(),
            }))
    }

    fn datacenter(&self) -> String {
        "dc1".into()
    }

    fn servers(&self) -> Vec<(String, IpAddr)> {
        vec![("n1".into(), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))]
    }

    fn generation(&self) -> Option<u64> {
        self.generation
    }
}

/// The agent for the HTTP router: ACLs off, every server call answered "No cluster leader"
/// (the routes parse their query parameters and bodies before calling), the agent's own
/// services, checks and members from constants, and agent actions accepted.
pub struct FakeAgent {
    telemetry: Arc<proconsul_telemetry::Telemetry>,
    cache: proconsul_http::QueryCache,
    shutdown: tokio_util::sync::CancellationToken,
    services_tx: tokio::sync::watch::Sender<u64>,
    events_tx: tokio::sync::watch::Sender<u64>,
}

impl Default for FakeAgent {
    fn default() -> Self {
        let shutdown = tokio_util::sync::CancellationToken::new();
        FakeAgent {
            telemetry: Arc::new(proconsul_telemetry::Telemetry::new(
                Duration::from_secs(60),
                "consul",
            )),
            cache: proconsul_http::QueryCache::new(shutdown.clone()),
            shutdown,
            services_tx: tokio::sync::watch::channel(1).0,
            events_tx: tokio::sync::watch::channel(1).0,
        }
    }
}

impl proconsul_http::Backend for FakeAgent {
    async fn call<R: ServerCall>(&self, _req: R) -> Result<R::Reply, RpcError> {
        Err(RpcError::NoLeader)
    }
    async fn caller_rights(&self) -> Result<Option<Arc<proconsul_http::Rights>>, RpcError> {
        Ok(None)
    }
    fn acl_enabled(&self) -> bool {
        false
    }
    fn acl_default_allow(&self) -> bool {
        true
    }
    fn set_agent_token(&self, kind: &str, _token: String) -> Result<(), RpcError> {
        match kind {
            "default" | "agent" | "agent_recovery" | "replication" => Ok(()),
            _ => Err(RpcError::NotFound(format!("Token {kind:?} is unknown"))),
        }
    }
    fn telemetry(&self) -> Arc<proconsul_telemetry::Telemetry> {
        self.telemetry.clone()
    }
    fn prometheus_enabled(&self) -> bool {
        true
    }
    fn query_cache(&self) -> &proconsul_http::QueryCache {
        &self.cache
    }
    fn datacenter(&self) -> String {
        "dc1".into()
    }
    async fn datacenters(&self) -> Result<Vec<String>, RpcError> {
        Ok(vec!["dc1".into()])
    }
    fn node_name(&self) -> String {
        "n1".into()
    }
    fn ui_content_path(&self) -> Option<String> {
        Some("/ui/".into())
    }
    fn kv_max_value_size(&self) -> u64 {
        512 * 1024
    }
    fn translate_wan_addrs(&self) -> bool {
        true
    }
    fn agent_self(&self) -> serde_json::Value {
        serde_json::json!({"Config": {"Datacenter": "dc1", "NodeName": "n1"}})
    }
    fn agent_host(&self) -> serde_json::Value {
        serde_json::json!({"Host": {"Hostname": "n1"}})
    }
    fn agent_members(&self, _wan: bool) -> Vec<AgentMember> {
        vec![AgentMember {
            name: "n1".into(),
            addr: "10.0.0.1".into(),
            port: 8301,
            status: 1,
            ..Default::default()
        }]
    }
    fn agent_services(&self) -> BTreeMap<String, AgentService> {
        let s = AgentService {
            id: "web1".into(),
            service: "web".into(),
            tags: vec!["v1".into()],
            port: 8080,
            ..Default::default()
        };
        [("web1".to_string(), s)].into()
    }
    fn agent_services_watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.services_tx.subscribe()
    }
    fn agent_checks(&self) -> BTreeMap<String, HealthCheck> {
        let c = HealthCheck {
            node: "n1".into(),
            check_id: "service:web1".into(),
            name: "web".into(),
            status: "passing".into(),
            service_id: "web1".into(),
            service_name: "web".into(),
            ..Default::default()
        };
        [("service:web1".to_string(), c)].into()
    }
    async fn agent_register_service(
        &self,
        _reg: proconsul_http::ServiceRegistration,
    ) -> Result<(), RpcError> {
        Ok(())
    }
    async fn agent_deregister_service(&self, _id: String) -> Result<(), RpcError> {
        Ok(())
    }
    async fn agent_register_check(&self, _def: CheckDefinition) -> Result<(), RpcError> {
        Ok(())
    }
    async fn agent_deregister_check(&self, _id: String) -> Result<(), RpcError> {
        Ok(())
    }
    async fn agent_update_ttl(&self, _id: String, _s: String, _o: String) -> Result<(), RpcError> {
        Ok(())
    }
    async fn agent_join(&self, _addr: String, _wan: bool) -> Result<(), RpcError> {
        Ok(())
    }
    async fn agent_leave(&self) -> Result<(), RpcError> {
        Ok(())
    }
    async fn agent_force_leave(&self, _n: String, _p: bool, _w: bool) -> Result<(), RpcError> {
        Ok(())
    }
    async fn agent_reload(&self) -> Result<(), RpcError> {
        Ok(())
    }
    async fn agent_node_maintenance(&self, _e: bool, _r: String) -> Result<(), RpcError> {
        Ok(())
    }
    async fn agent_service_maintenance(
        &self,
        _id: String,
        _e: bool,
        _r: String,
    ) -> Result<(), RpcError> {
        Ok(())
    }
    async fn operator_keyring(
        &self,
        _op: &str,
        _key: String,
    ) -> Result<Vec<proconsul_types::KeyringResponse>, RpcError> {
        Ok(Vec::new())
    }
    async fn snapshot_restore(&self, archive: Vec<u8>) -> Result<(), RpcError> {
        // What the agent does first with an uploaded archive: open it and check its sums.
        proconsul_archive::read(&archive)
            .map(|_| ())
            .map_err(RpcError::BadRequest)
    }
    async fn event_fire(&self, ev: UserEvent, _dc: &str) -> Result<UserEvent, RpcError> {
        Ok(ev)
    }
    fn shutdown_token(&self) -> tokio_util::sync::CancellationToken {
        self.shutdown.clone()
    }
    fn agent_monitor(&self) -> Option<tokio::sync::broadcast::Receiver<Arc<str>>> {
        None
    }
    fn event_list(&self) -> Vec<UserEvent> {
        Vec::new()
    }
    fn event_watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.events_tx.subscribe()
    }
    fn coordinates_disabled(&self) -> bool {
        false
    }
    async fn coordinate_datacenters(
        &self,
    ) -> Result<Vec<proconsul_types::DatacenterCoordinates>, RpcError> {
        Ok(Vec::new())
    }
}

/// The gossip targets' receivers.
pub mod gossip {
    use std::net::SocketAddr;
    use std::time::Instant;

    use proconsul_gossip::memberlist::SwimConfig;
    use proconsul_gossip::serf::{Serf, SerfConfig};
    use proconsul_gossip::wire::{Keyring, WireConfig};

    /// The key of the encrypted golden capture (`../shared/golden/serf/README.md`).
    pub const GOLDEN_KEY: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=";

    /// Wire settings by `mode % 5`: 0 plain, 1 encrypted, 2 labelled `dc1`, 3 labelled and
    /// encrypted, 4 encrypted with `verify_incoming` off (plaintext accepted too).
    pub fn wire_config(mode: u8) -> WireConfig {
        let keyring = || Some(Keyring::from_base64(GOLDEN_KEY).expect("the golden key"));
        match mode % 5 {
            0 => WireConfig::default(),
            1 => WireConfig {
                keyring: keyring(),
                ..Default::default()
            },
            2 => WireConfig {
                label: b"dc1".to_vec(),
                ..Default::default()
            },
            3 => WireConfig {
                label: b"dc1".to_vec(),
                keyring: keyring(),
                ..Default::default()
            },
            _ => WireConfig {
                keyring: keyring(),
                verify_incoming: false,
                ..Default::default()
            },
        }
    }

    /// A fresh Serf member `a` (LAN timing, tags as the golden capture's `a`).
    pub fn serf(now: Instant) -> Serf {
        let addr: SocketAddr = "127.0.0.61:8301".parse().expect("an address");
        let tags = [("role", "node"), ("dc", "dc1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Serf::new(SerfConfig::new(SwimConfig::lan("a", addr), tags), now)
    }
}
