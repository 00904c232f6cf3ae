//! `/v1/agent/self`: Consul's `Self` shape — `Config` (nine fields), `DebugConfig` (the running
//! configuration under Consul's `RuntimeConfig` field names, sanitised as Consul sanitises:
//! durations as Go text, listener addresses as `tcp://ip:port`, secrets as `hidden`),
//! `Coord` (this agent's LAN coordinate), `Member`, `Stats`, `Meta`.

use serde_json::{json, Value};

use proconsul_config::RuntimeConfig;
use proconsul_types::duration::format as go_duration;

use crate::Agent;

fn tcp(addr: std::net::SocketAddr) -> String {
    format!("tcp://{addr}")
}

/// Consul's `RuntimeConfig.Sanitized()`, for the fields proconsul has.
pub(crate) fn debug_config(a: &Agent, cfg: &RuntimeConfig) -> Value {
    let lan = a.serf_lan_addr();
    let serf_lan = std::net::SocketAddr::new(cfg.advertise_addr, lan.port());
    let serf_wan = a
        .serf_wan_addr()
        .map(|w| tcp(std::net::SocketAddr::new(cfg.advertise_addr_wan, w.port())));
    let rpc = std::net::SocketAddr::new(cfg.advertise_addr, cfg.server_port);
    let port = |p: Option<u16>| p.map_or(-1, i64::from);
    let mut out = json!({
        // `consul debug` reads it (with `EnableDebug`) before capturing anything.
        "ACLsEnabled": cfg.acl.enabled,
        "AdvertiseAddrLAN": cfg.advertise_addr.to_string(),
        "AdvertiseAddrWAN": cfg.advertise_addr_wan.to_string(),
        "BindAddr": cfg.bind_addr.to_string(),
        "Bootstrap": cfg.bootstrap,
        "BootstrapExpect": cfg.bootstrap_expect,
        "CheckUpdateInterval": go_duration(cfg.check_update_interval),
        "ClientAddrs": cfg.client_addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "ConfigFiles": cfg.config_files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "DNSAddrs": a.dns_addrs().into_iter().map(tcp).collect::<Vec<_>>(),
        "DNSAllowStale": cfg.dns.allow_stale,
        "DNSARecordLimit": cfg.dns.a_record_limit,
        "DNSDomain": cfg.domain,
        "DNSAltDomain": cfg.alt_domain.clone().unwrap_or_default(),
        "DNSEnableTruncate": cfg.dns.enable_truncate,
        "DNSMaxStale": go_duration(cfg.dns.max_stale),
        "DNSNodeTTL": go_duration(cfg.dns.node_ttl),
        "DNSOnlyPassing": cfg.dns.only_passing,
        "DNSPort": cfg.dns_addrs.first().map_or(-1, |a| i64::from(a.port())),
        "DNSRecursorTimeout": go_duration(cfg.dns.recursor_timeout),
        "DNSRecursors": cfg.dns.recursors,
        "DNSServiceTTL": cfg.dns.service_ttl.iter()
            .map(|(k, v)| (k.clone(), Value::String(go_duration(*v))))
            .collect::<serde_json::Map<_, _>>(),
        "DNSUDPAnswerLimit": cfg.dns.udp_answer_limit,
        "DataDir": cfg.data_dir.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        "Datacenter": cfg.datacenter,
        "DevMode": cfg.dev_mode,
        "DisableCoordinates": cfg.disable_coordinates,
        "DisableHostNodeID": cfg.disable_host_node_id,
        "DisableRemoteExec": cfg.disable_remote_exec,
        "EnableDebug": cfg.enable_debug,
        "EnableLocalScriptChecks": cfg.enable_local_script_checks,
        "EnableRemoteScriptChecks": cfg.enable_script_checks,
    });
    let rest = json!({
        "EncryptKey": if cfg.encrypt_key.is_some() { "hidden" } else { "" },
        "EncryptVerifyIncoming": cfg.encrypt_verify_incoming,
        "EncryptVerifyOutgoing": cfg.encrypt_verify_outgoing,
        "GRPCPort": port(cfg.grpc_port),
        "GRPCTLSPort": port(cfg.grpc_tls_port),
        "HTTPAddrs": a.http_addrs().iter().copied().map(tcp).collect::<Vec<_>>(),
        "HTTPPort": a.http_addrs().first().map_or(-1, |a| i64::from(a.port())),
        "HTTPSPort": port(cfg.https_port),
        "KVMaxValueSize": cfg.kv_max_value_size,
        "LeaveOnTerm": cfg.leave_on_terminate,
        "Logging": {"LogLevel": cfg.log_level, "LogJSON": cfg.log_json},
        "NodeID": a.node_id(),
        "NodeMeta": cfg.node_meta,
        "NodeName": a.node_name(),
        "PidFile": cfg.pid_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        "PrimaryDatacenter": cfg.primary_datacenter,
        "RaftProtocol": 3,
        "ReconnectTimeoutLAN": go_duration(cfg.reconnect_timeout),
        "RejoinAfterLeave": cfg.rejoin_after_leave,
        "RetryJoinIntervalLAN": go_duration(cfg.retry_interval),
        "RetryJoinLAN": cfg.retry_join,
        "RetryJoinMaxAttemptsLAN": cfg.retry_max,
        "RPCAdvertiseAddr": tcp(rpc),
        "RPCBindAddr": tcp(std::net::SocketAddr::new(cfg.bind_addr, cfg.server_port)),
        "SerfAdvertiseAddrLAN": tcp(serf_lan),
        "SerfAdvertiseAddrWAN": serf_wan,
        "SerfBindAddrLAN": tcp(lan),
        "SerfBindAddrWAN": a.serf_wan_addr().map(tcp),
        "SerfPortLAN": lan.port(),
        "SerfPortWAN": a.serf_wan_addr().map_or(-1, |w| i64::from(w.port())),
        "ServerMode": cfg.server,
        "ServerPort": cfg.server_port,
        "SessionTTLMin": go_duration(cfg.session_ttl_min),
        "SkipLeaveOnInt": cfg.skip_leave_on_interrupt,
        "StartJoinAddrsLAN": cfg.start_join,
        "TxnMaxReqLen": cfg.txn_max_req_len,
        "UIConfig": {"Enabled": cfg.ui},
        "Version": proconsul_types::CONSUL_COMPAT_VERSION,
        "VersionPrerelease": "",
        "Revision": "",
    });
    if let (Value::Object(o), Value::Object(r)) = (&mut out, rest) {
        o.extend(r);
    }
    out
}

/// This agent's LAN network coordinate, in the API's shape (`null` before the first ping).
pub(crate) fn coord(a: &Agent) -> Value {
    a.inner
        .gossip
        .lan
        .coordinate()
        .map(|c| serde_json::to_value(crate::coordinate::to_api(&c)).unwrap_or(Value::Null))
        .unwrap_or(Value::Null)
}
