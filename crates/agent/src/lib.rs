//! The agent: the composition root.
//!
//! [`Agent::start`] turns a validated `RuntimeConfig` into running parts — the server (when
//! `-server`/`-dev`), the HTTP listeners, the local state of services and checks, anti-entropy
//! and TTL timers — all owned by one cancellation token and task tracker, with no globals, so
//! tests can run several agents in one process. [`run`] is what `proconsul agent` calls: load
//! config, log like Consul, start, wait for a signal or `leave`, shut down.

mod acl;
mod backend;
mod checks;
mod coordinate;
mod dns;
mod events;
mod expiry;
mod gauges;
mod gossip;
mod host;
mod tls;
/// How an agent with these `tls.internal_rpc` settings serves and dials the RPC port (for
/// tests and tools that dial servers as an agent would).
pub use tls::rpc_settings as rpc_tls_settings;
mod live_config;
mod local;
pub mod logging;
mod node_id;
mod persist;
mod remote_exec;
mod self_info;
mod sync;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proconsul_config::{AgentFlags, RuntimeConfig};
use proconsul_server::{Server, ServerOptions};
use proconsul_types::{
    member_status, AgentMember, CheckDefinition, Query, QueryMeta, QueryOptions, Read, RpcError,
    ServerCall, ServiceDefinition, UserEvent, Write, WriteRequest, WriteResponse,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use local::LocalState;

/// Something run beside the agent that follows its configuration: told the config once the HTTP
/// API is up and again after every successful reload, and told when the agent stops. The binary
/// runs the config's `watches` this way (they query this agent over HTTP, as Consul's do), so
/// this crate needs no HTTP client. Calls must return quickly.
pub trait ConfigObserver: Send + Sync + 'static {
    fn configured(&self, cfg: &RuntimeConfig, http_addrs: &[SocketAddr]);
    fn stopped(&self);
}

/// Errors starting an agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Config(String),
    #[error("failed to start the server: {0}")]
    Server(#[from] proconsul_server::ServerError),
    #[error("failed to listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A running agent. Cheap to clone.
#[derive(Clone)]
pub struct Agent {
    inner: Arc<AgentInner>,
}

struct AgentInner {
    /// The running config and what follows it (see [`live_config`]).
    config: live_config::LiveConfig,
    /// `limits.rpc_rate`/`rpc_max_burst`: the RPCs a client agent sends its servers (`None`:
    /// no limit, and always on servers, as Consul limits only its client agents). A reload
    /// that changes them puts a new bucket in.
    rpc_limiter: std::sync::RwLock<Option<Arc<proconsul_server::rate_limit::TokenBucket>>>,
    /// `limits.http_max_conns_per_client`, counted across the HTTP and HTTPS listeners.
    http_conn_limit: Arc<proconsul_http::HttpConnLimit>,
    /// `limits.rpc_max_conns_per_client` on a server's RPC port.
    rpc_conn_limit: Option<Arc<proconsul_types::conn_limit::PerClientLimit>>,
    /// The flags the agent was started with, re-applied on reload.
    flags: AgentFlags,
    node_name: String,
    node_id: String,
    /// Fixed for the agent's life (a reload cannot move it); read on every request, so kept
    /// here rather than cloned out of the config.
    datacenter: String,
    server: Option<Server>,
    /// Connections to servers (Raft, forwarding, a client agent's calls).
    pool: proconsul_server::remote::SharedPool,
    /// Serf LAN (and WAN on servers).
    gossip: gossip::Gossip,
    local: LocalState,
    /// Where API-registered services and checks are kept across restarts (None in `-dev`).
    persisted: Option<persist::Persisted>,
    anti_entropy: sync::AntiEntropy,
    events: events::UserEvents,
    remote_exec: remote_exec::RemoteExecs,
    /// The process's metrics registry (installed once per process).
    telemetry: Arc<proconsul_telemetry::Telemetry>,
    /// The agent's ACL tokens and its callers' resolved rights.
    tokens: acl::AgentAcl,
    /// The certificates in force (HTTPS, server RPC, checks); rebuilt by a reload.
    tls: tls::AgentTls,
    /// Where the HTTPS listeners are bound.
    https_addrs: Vec<SocketAddr>,
    /// `?cached` reads, kept fresh by blocking queries (see `proconsul_http::cache`).
    query_cache: proconsul_http::QueryCache,
    /// The process's log stream, when the binary installed one (for `/v1/agent/monitor`).
    log_tap: Mutex<Option<logging::LogTap>>,
    /// Where the DNS interface answers (UDP; TCP is on the same ports).
    dns_addrs: Mutex<Vec<SocketAddr>>,
    /// Cancelled to stop the agent (leave, signal, test teardown).
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Agent {
    /// Start every part of the agent. Returns once the HTTP listeners are bound.
    pub async fn start(mut config: RuntimeConfig, flags: AgentFlags) -> Result<Agent, AgentError> {
        if let Some(dir) = &config.data_dir {
            std::fs::create_dir_all(dir)?;
        }
        // The metrics recorder first: parts that start below (Raft replaying its log) keep the
        // handles they take at their first recording.
        let telemetry = proconsul_telemetry::Telemetry::install(
            proconsul_telemetry::Telemetry::new(
                // go-metrics keeps a minute of intervals unless Prometheus needs more.
                config
                    .telemetry_prometheus_retention
                    .max(std::time::Duration::from_secs(60)),
                &config.telemetry_prefix,
            )
            .with_filter(proconsul_telemetry::PrefixFilter {
                rules: config.telemetry_filter.clone(),
                keep_by_default: config.telemetry_filter_default,
            }),
        );
        let node_id =
            node_id::load_or_create(config.node_id.as_deref(), config.data_dir.as_deref())?;
        let node_name = config.node_name.clone();
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();

        // Servers answer RPC (Raft, forwarded reads and writes) on the server port; bind it
        // first so a port of 0 is known before it is advertised in gossip tags and Raft.
        let rpc_listener = if config.server {
            let addr = config.rpc_bind();
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| AgentError::Listen { addr, source })?;
            config.server_port = l.local_addr()?.port();
            Some(l)
        } else {
            None
        };
        // Every certificate is loaded before anything listens, so a bad one stops the start.
        let agent_tls = tls::AgentTls::new(&config)?;
        let pool = proconsul_server::remote::SharedPool::with_tls(
            &config.datacenter,
            agent_tls.rpc.clone(),
        );
        let gossip = gossip::Gossip::start(&config, &node_name, &node_id, &shutdown)
            .await
            .map_err(AgentError::Config)?;
        let mut rpc_conn_limit = None;
        let server = if config.server {
            let members = Arc::new(gossip::LanMembers {
                pool: gossip.lan.clone(),
                datacenter: config.datacenter.clone(),
            });
            let opts = ServerOptions {
                node_name: node_name.clone(),
                node_id: node_id.clone(),
                datacenter: config.datacenter.clone(),
                rpc_addr: SocketAddr::new(config.advertise_addr, config.server_port),
                raft_dir: if config.dev_mode {
                    None
                } else {
                    config.data_dir.as_ref().map(|d| d.join("raft"))
                },
                bootstrap: config.dev_mode || config.bootstrap || config.bootstrap_expect == 1,
                bootstrap_expect: config.bootstrap_expect,
                raft_multiplier: config.raft_multiplier,
                raft_snapshot_threshold: config.raft_snapshot_threshold,
                raft_trailing_logs: config.raft_trailing_logs,
                session_ttl_min: config.session_ttl_min,
                tombstone_ttl: Duration::from_secs(15 * 60),
                members,
                transport: Arc::new(pool.clone()),
                pool: pool.clone(),
                coordinate: proconsul_server::CoordinateOptions {
                    update_period: config.coordinate_update_period,
                    batch_size: config.coordinate_update_batch_size,
                    max_batches: config.coordinate_update_max_batches,
                },
                acl: config.acl.clone(),
                request_limits: config.request_limits,
                events: Some(Arc::new(gossip::LanEvents {
                    pool: gossip.lan.clone(),
                })),
                wan: gossip.wan.as_ref().map(|pool| {
                    Arc::new(gossip::WanServers { pool: pool.clone() })
                        as Arc<dyn proconsul_server::WanSource>
                }),
            };
            let server = Server::start(opts).await?;
            if let Some(l) = rpc_listener {
                let handler = Arc::new(proconsul_server::remote::RpcHandler(server.clone()));
                let limits = proconsul_rpc::ConnLimits::new(
                    config.rpc_max_conns_per_client,
                    config.rpc_handshake_timeout,
                );
                rpc_conn_limit = Some(limits.per_client.clone());
                tasks.spawn(proconsul_rpc::serve(
                    l,
                    handler,
                    agent_tls.rpc.clone(),
                    limits,
                    shutdown.clone(),
                ));
            }
            Some(server)
        } else {
            None
        };

        // Bind the HTTP and HTTPS listeners before declaring the agent started.
        let (listeners, http_addrs) = bind_all(&config.http_addrs).await?;
        let https = agent_tls.https.clone();
        let (https_listeners, https_addrs) = bind_all(&config.https_addrs).await?;

        let services = std::mem::take(&mut config.services);
        let checks = std::mem::take(&mut config.checks);
        let agent = Agent {
            inner: Arc::new(AgentInner {
                rpc_limiter: std::sync::RwLock::new(rpc_bucket(&config)),
                http_conn_limit: proconsul_http::conn_limit(config.http_max_conns_per_client),
                rpc_conn_limit,
                config: live_config::LiveConfig::new(config.clone(), http_addrs),
                flags,
                node_name,
                node_id,
                datacenter: config.datacenter.clone(),
                server,
                pool,
                gossip,
                local: LocalState::default(),
                persisted: match (&config.data_dir, config.dev_mode) {
                    (Some(d), false) => Some(persist::Persisted::new(d)),
                    _ => None,
                },
                anti_entropy: sync::AntiEntropy::default(),
                events: events::UserEvents::default(),
                remote_exec: remote_exec::RemoteExecs::default(),
                query_cache: proconsul_http::QueryCache::new(shutdown.child_token()),
                tls: agent_tls,
                tokens: acl::AgentAcl::new(
                    config.acl.clone(),
                    config.data_dir.as_deref().filter(|_| !config.dev_mode),
                ),
                telemetry,
                https_addrs,
                log_tap: Mutex::new(None),
                dns_addrs: Mutex::new(Vec::new()),
                shutdown,
                tasks,
            }),
        };
        agent.load_config_definitions(&services, &checks)?;
        drop((services, checks));
        agent.load_persisted();
        agent.start_check_runners();

        let router = proconsul_http::router(Arc::new(agent.clone()));
        for l in listeners {
            let (r, s) = (router.clone(), agent.inner.shutdown.clone());
            let limit = agent.inner.http_conn_limit.clone();
            agent.inner.tasks.spawn(async move {
                if let Err(e) = proconsul_http::serve(l, r, limit, s).await {
                    tracing::error!(target: "agent", error = %e, "HTTP server failed");
                }
            });
        }
        if let Some(tls) = https {
            for l in https_listeners {
                let (r, s, tls) = (router.clone(), agent.inner.shutdown.clone(), tls.clone());
                let limit = agent.inner.http_conn_limit.clone();
                agent.inner.tasks.spawn(async move {
                    if let Err(e) = proconsul_http::serve_tls(l, r, tls, limit, s).await {
                        tracing::error!(target: "agent", error = %e, "HTTPS server failed");
                    }
                });
            }
        }
        for path in &config.http_unix {
            let l = bind_unix(path, &config).map_err(|source| {
                AgentError::Io(std::io::Error::new(
                    source.kind(),
                    format!("failed to listen on unix://{}: {source}", path.display()),
                ))
            })?;
            let (r, s, path) = (router.clone(), agent.inner.shutdown.clone(), path.clone());
            agent.inner.tasks.spawn(async move {
                if let Err(e) = proconsul_http::serve_unix(l, r, s).await {
                    tracing::error!(target: "agent", error = %e, "HTTP server failed");
                }
                let _ = std::fs::remove_file(&path);
            });
        }
        let a = agent.clone();
        agent
            .inner
            .tasks
            .spawn(async move { a.anti_entropy_loop().await });
        let a = agent.clone();
        agent
            .inner
            .tasks
            .spawn(async move { a.gauges_loop().await });
        let a = agent.clone();
        agent
            .inner
            .tasks
            .spawn(async move { a.statsd_loop().await });
        let a = agent.clone();
        agent
            .inner
            .tasks
            .spawn(async move { a.statsite_loop().await });
        if !config.dns_addrs.is_empty() {
            let dns = proconsul_dns::DnsServer::start(
                dns::server_config(&config),
                Arc::new(agent.clone()),
                agent.inner.shutdown.clone(),
            )
            .await
            .map_err(|e| AgentError::Config(format!("DNS: {e}")))?;
            *agent.inner.dns_addrs.lock().unwrap() = dns.udp_addrs().to_vec();
            agent.inner.tasks.spawn(dns.wait());
        }
        let a = agent.clone();
        agent.inner.tasks.spawn(async move { a.ttl_loop().await });
        if !config.disable_coordinates {
            let a = agent.clone();
            agent
                .inner
                .tasks
                .spawn(async move { a.coordinate_loop().await });
        }
        let a = agent.clone();
        agent
            .inner
            .tasks
            .spawn(async move { a.gossip_event_loop().await });
        agent.start_retry_join(&config);
        agent.start_wan_flood();
        Ok(agent)
    }

    /// Register the services and checks the config files define.
    fn load_config_definitions(
        &self,
        services: &[ServiceDefinition],
        checks: &[CheckDefinition],
    ) -> Result<(), AgentError> {
        for s in services {
            self.inner
                .local
                .add_service(&self.inner.node_name, s, true, true)
                .map_err(|e| AgentError::Config(format!("service {:?}: {e}", s.name)))?;
        }
        for c in checks {
            self.inner
                .local
                .add_check(&self.inner.node_name, c, true)
                .map_err(|e| AgentError::Config(format!("check {:?}: {e}", c.name)))?;
        }
        Ok(())
    }

    /// Re-register what the API registered before the last restart.
    fn load_persisted(&self) {
        let Some(p) = &self.inner.persisted else {
            return;
        };
        let node = &self.inner.node_name;
        let scripts_ok = self.config().enable_script_checks;
        for (service, id, token) in p.tokens() {
            self.inner.tokens.remember(service, &id, &token);
        }
        for s in p.services() {
            if !scripts_ok
                && s.checks
                    .iter()
                    .chain(s.check.iter())
                    .any(|c| c.kind() == "script")
            {
                tracing::warn!(target: "agent", service = %s.name, "skipping persisted service with a script check: enable_script_checks is off");
                continue;
            }
            if let Err(e) = self.inner.local.add_service(node, &s, false, false) {
                tracing::warn!(target: "agent", service = %s.name, error = %e, "skipping persisted service");
            }
        }
        for c in p.checks() {
            if !scripts_ok && c.kind() == "script" {
                tracing::warn!(target: "agent", check = %c.given_id(), "skipping persisted script check: enable_script_checks is off");
                continue;
            }
            if let Err(e) = self.inner.local.add_check(node, &c, false) {
                tracing::warn!(target: "agent", check = %c.given_id(), error = %e, "skipping persisted check");
            }
        }
    }

    /// Tell `o` the current config now and after every reload (the HTTP API is already up).
    pub fn observe_config(&self, o: Arc<dyn ConfigObserver>) {
        self.inner.config.observe(o);
    }

    /// Let `/v1/agent/monitor` stream this process's logs.
    pub fn attach_log_tap(&self, tap: logging::LogTap) {
        *self.inner.log_tap.lock().unwrap() = Some(tap);
    }

    /// The addresses the DNS interface answers on (useful with port 0 in tests).
    pub fn dns_addrs(&self) -> Vec<SocketAddr> {
        self.inner.dns_addrs.lock().unwrap().clone()
    }

    /// Where the Serf LAN pool listens (UDP and TCP; useful with port 0 in tests).
    pub fn serf_lan_addr(&self) -> SocketAddr {
        self.inner.gossip.lan.local_addr()
    }

    /// Where the Serf WAN pool listens (servers only).
    pub fn serf_wan_addr(&self) -> Option<SocketAddr> {
        self.inner.gossip.wan.as_ref().map(|w| w.local_addr())
    }

    /// The addresses the HTTP API listens on (useful with port 0 in tests).
    /// Where the HTTPS listeners are bound (empty without `ports.https`).
    pub fn https_addrs(&self) -> &[SocketAddr] {
        &self.inner.https_addrs
    }

    pub fn http_addrs(&self) -> &[SocketAddr] {
        self.inner.config.http_addrs()
    }

    pub fn node_name(&self) -> &str {
        &self.inner.node_name
    }

    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// The server part, when this agent is a server.
    pub fn server(&self) -> Option<&Server> {
        self.inner.server.as_ref()
    }

    /// Cancelled when the agent is told to stop (leave, signal).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// Stop everything and wait for every task.
    pub async fn shutdown(&self) {
        self.inner.config.stop_observers();
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        self.inner.gossip.shutdown().await;
        if let Some(s) = &self.inner.server {
            s.shutdown().await;
        }
    }

    fn config(&self) -> Arc<RuntimeConfig> {
        self.inner.config.get()
    }

    /// Serve a request on a server: this agent's own, or (client agents) one it knows from
    /// gossip, trying another when one does not answer. The one way the agent reaches the
    /// datacenter's state; it ends when the agent stops, so a blocking query cannot delay
    /// shutdown.
    ///
    /// The agent's own calls (anti-entropy, coordinates, remote exec, DNS) carry its
    /// `acl.tokens.agent` token (else `default`); [`Agent::call_as`] carries another.
    pub async fn call<R: ServerCall>(&self, req: R) -> Result<R::Reply, RpcError> {
        let token = self.inner.tokens.agent();
        self.call_as(req, &token).await
    }

    /// [`Agent::call`] with the rights of ACL `token`.
    ///
    /// The request is boxed before the future starts: held by value, it and the typed request
    /// it came from would sit in every open blocking query's future (see
    /// `proconsul_server::Server::call`).
    pub fn call_as<'a, R: ServerCall>(
        &'a self,
        req: R,
        token: &'a str,
    ) -> impl std::future::Future<Output = Result<R::Reply, RpcError>> + Send + 'a {
        let req = Box::new(req.into_request());
        self.call_boxed_as::<R>(req, token)
    }

    async fn call_boxed_as<R: ServerCall>(
        &self,
        req: Box<proconsul_types::ServerRequest>,
        token: &str,
    ) -> Result<R::Reply, RpcError> {
        let work = async {
            match &self.inner.server {
                Some(s) => s.call_boxed(req, token, false).await,
                None => {
                    let limiter = self
                        .inner
                        .rpc_limiter
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone();
                    if limiter.is_some_and(|l| !l.take()) {
                        // Consul's `structs.ErrRPCRateExceeded`, answered 429.
                        return Err(RpcError::TooManyRequests("RPC rate limit exceeded".into()));
                    }
                    // Boxed: the RPC client's future is large, and a server's blocking
                    // queries would carry its room too.
                    Box::pin(self.on_some_server(|pool, addr| {
                        let req = (*req).clone();
                        async move { pool.request(&addr, req, token, false).await }
                    }))
                    .await
                }
            }
        };
        let reply = tokio::select! {
            r = work => r?,
            _ = self.inner.shutdown.cancelled() => {
                return Err(RpcError::Unavailable("agent is shutting down".into()))
            }
        };
        R::from_reply(reply)
    }

    /// A read and its typed answer (see [`Agent::call`]).
    pub(crate) async fn query<Q: Query>(
        &self,
        q: Q,
        opts: QueryOptions,
    ) -> Result<(QueryMeta, Q::Out), RpcError> {
        let token = self.inner.tokens.agent();
        self.query_as(q, opts, &token).await
    }

    /// [`Agent::query`] with the rights of ACL `token`.
    pub(crate) async fn query_as<Q: Query>(
        &self,
        q: Q,
        opts: QueryOptions,
        token: &str,
    ) -> Result<(QueryMeta, Q::Out), RpcError> {
        let (meta, resp) = self
            .call_as(
                Read {
                    req: q.into(),
                    opts,
                },
                token,
            )
            .await?;
        Ok((meta, Q::from_response(resp)?))
    }

    /// A write to this agent's datacenter (see [`Agent::call`]).
    pub(crate) async fn rpc_write(
        &self,
        req: WriteRequest,
    ) -> Result<(u64, WriteResponse), RpcError> {
        self.call(Write {
            req,
            datacenter: String::new(),
        })
        .await
    }

    /// A write with the rights of `token` (anti-entropy's per-service tokens).
    pub(crate) async fn rpc_write_as(
        &self,
        req: WriteRequest,
        token: &str,
    ) -> Result<(u64, WriteResponse), RpcError> {
        self.call_as(
            Write {
                req,
                datacenter: String::new(),
            },
            token,
        )
        .await
    }

    /// The servers of our datacenter a client agent can call, from the LAN pool, shuffled
    /// (Consul's client agents also spread their calls over the servers they know).
    pub(crate) fn known_servers(&self) -> Vec<String> {
        use proconsul_gossip::membership::MemberStatus as S;
        use rand::seq::SliceRandom;
        let mut v: Vec<String> = self
            .inner
            .gossip
            .lan
            .members()
            .into_iter()
            .filter(|m| m.status == S::Alive)
            .filter(|m| m.tags.get("role").map(String::as_str) == Some("consul"))
            .filter(|m| m.tags.get("dc") == Some(&self.inner.datacenter))
            .filter_map(|m| {
                let port: u16 = m.tags.get("port")?.parse().ok()?;
                Some(SocketAddr::new(m.addr.ip(), port).to_string())
            })
            .collect();
        v.shuffle(&mut rand::rng());
        v
    }

    /// Run a call on one server after another until one answers (client agents).
    pub(crate) async fn on_some_server<T, F, Fut>(&self, f: F) -> Result<T, RpcError>
    where
        F: Fn(proconsul_server::remote::SharedPool, String) -> Fut,
        Fut: std::future::Future<Output = Result<Result<T, RpcError>, proconsul_rpc::WireError>>,
    {
        let servers = self.known_servers();
        if servers.is_empty() {
            return Err(RpcError::Internal("No known Consul servers".into()));
        }
        let mut last = String::new();
        for addr in servers {
            match f(self.inner.pool.clone(), addr.clone()).await {
                Ok(answer) => return answer,
                Err(e) => {
                    tracing::debug!(target: "agent", server = %addr, error = %e, "RPC to server failed; trying another");
                    last = e.to_string();
                }
            }
        }
        Err(RpcError::Internal(format!("rpc error making call: {last}")))
    }

    /// This agent as `/v1/agent/members` shows it.
    fn self_member(&self) -> AgentMember {
        let lan = &self.inner.gossip.lan;
        lan.members()
            .iter()
            .find(|m| m.name == lan.name())
            .map(gossip::agent_member)
            .unwrap_or_else(|| AgentMember {
                name: self.inner.node_name.clone(),
                addr: lan.advertise_addr().ip().to_string(),
                port: lan.advertise_addr().port(),
                tags: gossip::lan_tags(&self.config(), &self.inner.node_id),
                status: member_status::ALIVE,
                ..Default::default()
            })
    }

    /// Leave gracefully: a server first leaves the Raft configuration (while it still answers
    /// Raft), then every agent leaves its gossip pools.
    pub(crate) async fn leave_cluster(&self) {
        if let Some(s) = &self.inner.server {
            s.leave_raft(Duration::from_secs(5)).await;
        }
        self.inner.gossip.leave().await;
    }

    /// Members of the LAN (or WAN) pool as `/v1/agent/members` shows them.
    fn pool_members(&self, wan: bool) -> Vec<AgentMember> {
        self.inner
            .gossip
            .pool(wan)
            .map(|p| p.members().iter().map(gossip::agent_member).collect())
            .unwrap_or_default()
    }

    /// Join the LAN (or WAN) pool through `addrs`.
    async fn join_pool(&self, addrs: &[String], wan: bool) -> Result<usize, String> {
        let Some(pool) = self.inner.gossip.pool(wan) else {
            return Err("WAN join requires a server agent".into());
        };
        let port = if wan { 8302 } else { 8301 };
        pool.join(addrs, port).await.map_err(|e| e.to_string())
    }

    /// `retry_join` (and `start_join`, which Consul folded into it), and on servers
    /// `retry_join_wan`: keep trying in the background every `retry_interval(_wan)`; give up
    /// (and stop the agent) after `retry_max(_wan)`.
    fn start_retry_join(&self, cfg: &RuntimeConfig) {
        let mut addrs = cfg.start_join.clone();
        addrs.extend(cfg.retry_join.iter().cloned());
        self.retry_join_pool(addrs, false, cfg.retry_interval, cfg.retry_max);
        if cfg.server {
            self.retry_join_pool(
                cfg.retry_join_wan.clone(),
                true,
                cfg.retry_interval_wan,
                cfg.retry_max_wan,
            );
        }
    }

    /// Consul's flood join: a server joins every server of its datacenter that it sees in the
    /// LAN pool to the WAN pool as well (at the `wan_join_port` it advertises), so one WAN
    /// join federates the whole datacenter.
    fn start_wan_flood(&self) {
        let Some(wan) = self.inner.gossip.wan.clone() else {
            return;
        };
        let lan = self.inner.gossip.lan.clone();
        let dc = self.inner.datacenter.clone();
        let shutdown = self.inner.shutdown.clone();
        self.inner.tasks.spawn(async move {
            use proconsul_gossip::membership::MemberStatus as S;
            loop {
                let known: std::collections::HashSet<String> = wan
                    .members()
                    .into_iter()
                    .filter(|m| m.status != S::Left)
                    .map(|m| m.name)
                    .collect();
                let missing: Vec<String> = lan
                    .members()
                    .into_iter()
                    .filter(|m| {
                        m.status == S::Alive
                            && m.tags.get("role").map(String::as_str) == Some("consul")
                            && m.tags.get("dc") == Some(&dc)
                            && !known.contains(&format!("{}.{dc}", m.name))
                    })
                    .filter_map(|m| {
                        let port: u16 = m.tags.get("wan_join_port")?.parse().ok()?;
                        Some(SocketAddr::new(m.addr.ip(), port).to_string())
                    })
                    .collect();
                if !missing.is_empty() {
                    match wan.join(&missing, 8302).await {
                        Ok(n) => tracing::debug!(target: "agent", joined = n, "flood-joined servers of this datacenter to the WAN pool"),
                        Err(e) => tracing::debug!(target: "agent", error = %e, "WAN flood join failed; will retry"),
                    }
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
        });
    }

    fn retry_join_pool(&self, addrs: Vec<String>, wan: bool, interval: Duration, max: u32) {
        if addrs.is_empty() {
            return;
        }
        let cluster = if wan { "WAN" } else { "LAN" };
        let a = self.clone();
        self.inner.tasks.spawn(async move {
            let mut attempt = 0u32;
            loop {
                tracing::info!(target: "agent", cluster, "Joining cluster...");
                match a.join_pool(&addrs, wan).await {
                    Ok(n) => {
                        tracing::info!(target: "agent", cluster, num_agents = n, "Join cluster completed. Synced with initial agents");
                        return;
                    }
                    Err(e) => {
                        attempt += 1;
                        if max > 0 && attempt >= max {
                            tracing::error!(target: "agent", cluster, error = %e, "Could not join cluster, exiting");
                            a.inner.shutdown.cancel();
                            return;
                        }
                        tracing::warn!(target: "agent", cluster, retry_interval = ?interval, error = %e, "Join cluster failed, will retry");
                    }
                }
                tokio::select! {
                    _ = a.inner.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        });
    }

    /// Consul user events arriving over LAN gossip: decode, filter, remember.
    async fn gossip_event_loop(&self) {
        use proconsul_gossip::membership::SerfEvent;
        let mut rx = self.inner.gossip.lan.subscribe();
        loop {
            let ev = tokio::select! {
                _ = self.inner.shutdown.cancelled() => return,
                r = rx.recv() => match r {
                    Ok(ev) => ev,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(target: "agent", missed = n, "gossip events dropped");
                        continue;
                    }
                    Err(_) => return,
                },
            };
            let SerfEvent::User {
                name,
                payload,
                ltime,
                ..
            } = ev
            else {
                continue;
            };
            let Some(raw) = name.strip_prefix(gossip::USER_EVENT_PREFIX) else {
                tracing::debug!(target: "agent", event = %name, "ignoring a user event not sent by a Consul agent");
                continue;
            };
            let Some(mut ev) = gossip::decode_user_event(&payload) else {
                tracing::error!(target: "agent", event = %raw, "Failed to decode event");
                continue;
            };
            ev.ltime = ltime;
            if !self.should_process_event(&ev) {
                continue;
            }
            // Consul's internal event: handled here, not listed by /v1/event/list.
            if ev.name == remote_exec::EVENT_NAME {
                self.ingest_remote_exec(ev);
                continue;
            }
            {
                tracing::debug!(target: "agent", name = %ev.name, id = %ev.id, "new event");
                self.inner.events.record(ev);
            }
        }
    }

    /// Consul's `shouldProcessUserEvent`: node, service and tag filters.
    fn should_process_event(&self, ev: &UserEvent) -> bool {
        let re = |f: &str| regex_lite::Regex::new(f).ok();
        if !ev.node_filter.is_empty() {
            match re(&ev.node_filter) {
                Some(r) if r.is_match(&self.inner.node_name) => {}
                _ => return false,
            }
        }
        if !ev.service_filter.is_empty() {
            let Some(svc) = re(&ev.service_filter) else {
                return false;
            };
            let tag = if ev.tag_filter.is_empty() {
                None
            } else {
                match re(&ev.tag_filter) {
                    Some(t) => Some(t),
                    None => return false,
                }
            };
            let services = self.inner.local.agent_services(&self.inner.datacenter);
            return services.values().any(|s| {
                svc.is_match(&s.service)
                    && tag
                        .as_ref()
                        .is_none_or(|t| s.tags.iter().any(|x| t.is_match(x)))
            });
        }
        true
    }

    /// The `limits` a reload changes, as Consul's `ReloadConfig`: connections per client on
    /// HTTP and RPC (new connections count against the new limit), the client agent's RPC
    /// rate, a server's request limits. `rpc_handshake_timeout` stays as it started.
    fn reload_limits(&self, new: &RuntimeConfig) {
        let old = self.inner.config.get();
        self.inner
            .http_conn_limit
            .set_max(new.http_max_conns_per_client);
        if let Some(l) = &self.inner.rpc_conn_limit {
            l.set_max(new.rpc_max_conns_per_client);
        }
        if (old.rpc_rate, old.rpc_max_burst) != (new.rpc_rate, new.rpc_max_burst) {
            *self
                .inner
                .rpc_limiter
                .write()
                .unwrap_or_else(|e| e.into_inner()) = rpc_bucket(new);
        }
        if let Some(s) = &self.inner.server {
            s.reload_request_limits(&new.request_limits);
        }
    }

    /// Re-read config files and apply service/check changes.
    async fn reload(&self) -> Result<(), RpcError> {
        let new = proconsul_config::load(&self.inner.flags)
            .map_err(|e| RpcError::Internal(format!("Failed to reload configs: {e}")))?;
        // Certificates first: if one does not load, nothing of the reload applies.
        self.inner
            .tls
            .reload(&new)
            .map_err(|e| RpcError::Internal(format!("Failed to reload configs: {e}")))?;
        // Validate every definition before touching the running state.
        let scratch = LocalState::default();
        for s in &new.services {
            scratch
                .add_service(&self.inner.node_name, s, true, true)
                .map_err(|e| {
                    RpcError::Internal(format!(
                        "Failed to reload configs: service {:?}: {e}",
                        s.name
                    ))
                })?;
        }
        self.inner.local.remove_config_sourced();
        for s in &new.services {
            self.inner
                .local
                .add_service(&self.inner.node_name, s, true, true)?;
        }
        for c in &new.checks {
            self.inner.local.add_check(&self.inner.node_name, c, true)?;
        }
        self.reload_limits(&new);
        self.inner.config.replace(new);
        self.start_check_runners();
        tracing::info!(target: "agent", "configuration reloaded");
        self.sync_changes().await;
        Ok(())
    }
}

/// A client agent's bucket for `limits.rpc_rate`/`rpc_max_burst` (none on a server, or for an
/// infinite rate).
fn rpc_bucket(config: &RuntimeConfig) -> Option<Arc<proconsul_server::rate_limit::TokenBucket>> {
    if config.server {
        return None;
    }
    proconsul_server::rate_limit::TokenBucket::new(config.rpc_rate, f64::from(config.rpc_max_burst))
        .map(Arc::new)
}

/// Bind a TCP listener on each address; the listeners and the addresses they got (a port of 0
/// is the kernel's choice).
async fn bind_all(
    addrs: &[SocketAddr],
) -> Result<(Vec<tokio::net::TcpListener>, Vec<SocketAddr>), AgentError> {
    let mut listeners = Vec::new();
    for addr in addrs {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| AgentError::Listen {
                addr: *addr,
                source,
            })?;
        listeners.push(l);
    }
    let bound = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    Ok((listeners, bound))
}

/// Bind the HTTP API's unix socket: a stale socket file from an earlier run is replaced (any
/// other kind of file is left alone and the bind fails), then `unix_sockets`' mode, owner and
/// group are applied.
fn bind_unix(
    path: &std::path::Path,
    cfg: &RuntimeConfig,
) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            std::fs::remove_file(path)?;
        }
    }
    let l = tokio::net::UnixListener::bind(path)?;
    if let Some(mode) = cfg.unix_socket_mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    if cfg.unix_socket_user.is_some() || cfg.unix_socket_group.is_some() {
        std::os::unix::fs::chown(path, cfg.unix_socket_user, cfg.unix_socket_group)?;
    }
    Ok(l)
}

/// `proconsul agent`: load config, start, run until a signal or `leave`; returns the exit code.
pub fn run(flags: AgentFlags) -> i32 {
    run_with(flags, Vec::new())
}

/// [`run`] with observers that follow the agent's configuration (see [`ConfigObserver`]).
pub fn run_with(flags: AgentFlags, observers: Vec<Arc<dyn ConfigObserver>>) -> i32 {
    let config = match proconsul_config::load(&flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("==> {e}");
            return 1;
        }
    };
    // Sockets' readiness is looked at every 8 task polls instead of tokio's 61: while tasks
    // keep waking one another (one client's connections taking turns, `http/src/fair.rs`), a
    // connection whose request just arrived would otherwise wait behind 60 of them.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .event_interval(8)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("==> failed to start the runtime: {e}");
            return 1;
        }
    };
    rt.block_on(run_async(config, flags, observers))
}

async fn run_async(
    config: RuntimeConfig,
    flags: AgentFlags,
    observers: Vec<Arc<dyn ConfigObserver>>,
) -> i32 {
    let tap = match logging::init(&config.log_level, config.log_json, config.log_file.as_ref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("==> {e}");
            return 1;
        }
    };
    println!("==> Starting Proconsul agent...");
    let agent = match Agent::start(config, flags).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("==> Error starting agent: {e}");
            return 1;
        }
    };
    // The agent's own (shared) copy, without the service/check definitions it has loaded.
    let config = agent.config();
    agent.attach_log_tap(tap);
    print_banner(&agent, &config);
    for w in &config.warnings {
        tracing::warn!(target: "agent", "{w}");
    }
    if let Some(p) = &config.pid_file {
        if let Err(e) = std::fs::write(p, std::process::id().to_string()) {
            tracing::warn!(target: "agent", error = %e, "could not write pid file");
        }
    }
    tracing::info!(target: "agent", "started state syncer");
    for a in agent.dns_addrs() {
        tracing::info!(target: "agent", address = %a, network = "udp+tcp", "started DNS server");
    }
    if config.http_addrs.is_empty() {
        tracing::info!(target: "agent", "HTTP API disabled");
    }
    for a in agent.http_addrs() {
        tracing::info!(target: "agent", address = %a, network = "tcp", "started HTTP server");
    }
    for o in observers {
        agent.observe_config(o);
    }
    let token = agent.shutdown_token();
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let term_recv = async {
            match term.as_mut() {
                Some(t) => t.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(unix)]
        let hup_recv = async {
            match hup.as_mut() {
                Some(t) => t.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = token.cancelled() => {
                tracing::info!(target: "agent", "graceful leave complete");
                break;
            }
            _ = tokio::signal::ctrl_c() => {
                tracing::info!(target: "agent", "caught signal: interrupt");
                if !config.skip_leave_on_interrupt {
                    tracing::info!(target: "agent", "gracefully leaving the cluster");
                    agent.leave_cluster().await;
                }
                break;
            }
            _ = term_recv => {
                tracing::info!(target: "agent", "caught signal: terminated");
                if config.leave_on_terminate {
                    tracing::info!(target: "agent", "gracefully leaving the cluster");
                    agent.leave_cluster().await;
                }
                break;
            }
            _ = hup_recv => {
                tracing::info!(target: "agent", "caught signal: hangup; reloading configuration");
                if let Err(e) = agent.reload().await {
                    tracing::error!(target: "agent", error = %e, "reload failed");
                }
            }
        }
    }
    tracing::info!(target: "agent", "shutting down");
    agent.shutdown().await;
    tracing::info!(target: "agent", "shutdown complete");
    0
}

fn print_banner(agent: &Agent, c: &RuntimeConfig) {
    let port = |p: Option<u16>| p.map(|p| p.to_string()).unwrap_or_else(|| "-1".into());
    let http = c
        .http_addrs
        .first()
        .map(|a| a.port().to_string())
        .unwrap_or_else(|| "-1".into());
    let dns = c
        .dns_addrs
        .first()
        .map(|a| a.port().to_string())
        .unwrap_or_else(|| "-1".into());
    let clients: Vec<String> = c.client_addrs.iter().map(|a| a.to_string()).collect();
    println!(
        "              Version: '{}' (Consul-compatible: '{}')",
        proconsul_types::PROCONSUL_VERSION,
        proconsul_types::CONSUL_COMPAT_VERSION
    );
    println!("              Node ID: '{}'", agent.node_id());
    println!("            Node name: '{}'", agent.node_name());
    println!(
        "           Datacenter: '{}' (Segment: '{}')",
        c.datacenter,
        if c.server { "<all>" } else { "" }
    );
    println!(
        "               Server: {} (Bootstrap: {})",
        c.server,
        c.bootstrap || c.dev_mode
    );
    println!(
        "          Client Addr: [{}] (HTTP: {}, HTTPS: {}, gRPC: {}, DNS: {})",
        clients.join(" "),
        http,
        port(c.https_port),
        port(c.grpc_port),
        dns
    );
    println!(
        "         Cluster Addr: {} (LAN: {}, WAN: {})",
        c.advertise_addr,
        c.serf_lan_port,
        port(c.serf_wan_port)
    );
    println!("    Gossip Encryption: {}", c.encrypt_key.is_some());
    println!();
    println!("==> Log data will now stream in as it occurs:");
    println!();
}

#[cfg(test)]
mod future_size {
    use super::Agent;

    /// The size of the future `f` returns, without running it.
    fn size_of_future<A, B, C, F: std::future::Future>(_: impl FnOnce(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every open blocking query holds `Agent::call_as`'s future for as long as it waits, and
    /// its room is copied into the request's boxed future: 2,400 bytes more before the client
    /// agent's RPC path was boxed, 432 more before the request was (`bench/blocking.sh`).
    #[test]
    fn inline_future_of_a_read_stays_small() {
        let n = size_of_future(
            |a: &'static Agent, r: proconsul_types::Read, t: &'static str| a.call_as(r, t),
        );
        eprintln!("Agent::call_as's future is {n} bytes");
        assert!(n <= 1536, "Agent::call_as's future is {n} bytes");
    }
}
