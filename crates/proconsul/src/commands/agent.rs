//! `agent`: parse Consul's agent flags into [`AgentFlags`] and hand them to the agent.
//!
//! Parsing is a pure function ([`parse_agent_flags`]) so it is tested without starting
//! anything; merging with config files and validation belong to `proconsul-config`.

use std::path::PathBuf;

use proconsul_config::flags::AgentFlags;

use super::parse_flags;
use crate::flags::{self, Flag, Kind, Parsed};
use crate::ui;

const FLAGS: &[Flag] = &[
    Flag::string("advertise", "Sets the advertise address to use."),
    Flag::string(
        "advertise-wan",
        "Sets address to advertise on WAN instead of -advertise address.",
    ),
    Flag::string("bind", "Sets the bind address for cluster communication."),
    Flag::boolean("bootstrap", "Sets server to bootstrap mode."),
    Flag::new(
        "bootstrap-expect",
        Kind::Uint,
        "int",
        "Sets server to expect bootstrap mode.",
    ),
    Flag::string(
        "client",
        "Sets the address to bind for client access. This includes RPC, DNS, HTTP, HTTPS and \
         gRPC (if configured).",
    ),
    Flag::string(
        "config-dir",
        "Path to a directory to read configuration files from. This will read every file \
         ending in '.json' as configuration in this directory in alphabetical order. Can be \
         specified multiple times.",
    ),
    Flag::string(
        "config-file",
        "Path to a file in JSON or HCL format with a matching file extension. Can be \
         specified multiple times.",
    ),
    Flag::string(
        "config-format",
        "Config files are in this format irrespective of their extension. Must be 'hcl' or \
         'json'",
    ),
    Flag::string("data-dir", "Path to a data directory to store agent state."),
    Flag::string("datacenter", "Datacenter of the agent."),
    Flag::boolean("dev", "Starts the agent in development mode."),
    Flag::boolean(
        "disable-host-node-id",
        "Setting this to true will prevent Consul from using information from the host to \
         generate a node ID, and will cause Consul to generate a random node ID instead.",
    ),
    Flag::new("dns-port", Kind::Int, "int", "DNS port to use."),
    Flag::string("domain", "Domain to use for DNS interface."),
    Flag::boolean(
        "enable-local-script-checks",
        "Enables health check scripts from configuration file.",
    ),
    Flag::boolean("enable-script-checks", "Enables health check scripts."),
    Flag::string("encrypt", "Provides the gossip encryption key."),
    Flag::new(
        "grpc-port",
        Kind::Int,
        "int",
        "Sets the gRPC API port to listen on.",
    ),
    Flag::string(
        "hcl",
        "hcl config fragment. Can be specified multiple times.",
    ),
    Flag::new(
        "http-port",
        Kind::Int,
        "int",
        "Sets the HTTP API port to listen on.",
    ),
    Flag::string(
        "join",
        "Address of an agent to join at start time. Can be specified multiple times.",
    ),
    Flag::string(
        "join-wan",
        "Address of an agent to join -wan at start time. Can be specified multiple times.",
    ),
    Flag::string("log-file", "Path to the file the logs get written to"),
    Flag::boolean("log-json", "Output logs in JSON format."),
    Flag::string("log-level", "Log level of the agent."),
    Flag::new(
        "log-rotate-bytes",
        Kind::Int,
        "int",
        "Maximum number of bytes that should be written to a log file",
    ),
    Flag::string(
        "log-rotate-duration",
        "Time after which log rotation needs to be performed",
    ),
    Flag::new(
        "log-rotate-max-files",
        Kind::Int,
        "int",
        "Maximum number of log file archives to keep",
    ),
    Flag::string("node", "Name of this node. Must be unique in the cluster."),
    Flag::string(
        "node-id",
        "A unique ID for this node across space and time. Defaults to a randomly-generated \
         ID that persists in the data-dir.",
    ),
    Flag::new(
        "node-meta",
        Kind::Str,
        "key:value",
        "An arbitrary metadata key/value pair for this node, of the format `key:value`. Can \
         be specified multiple times.",
    ),
    Flag::string("pid-file", "Path to file to store agent PID."),
    Flag::boolean(
        "rejoin",
        "Ignores a previous leave and attempts to rejoin the cluster.",
    ),
    Flag::string("retry-interval", "Time to wait between join attempts."),
    Flag::string(
        "retry-interval-wan",
        "Time to wait between join -wan attempts.",
    ),
    Flag::string(
        "retry-join",
        "Address of an agent to join at start time with retries enabled. Can be specified \
         multiple times.",
    ),
    Flag::string(
        "retry-join-wan",
        "Address of an agent to join -wan at start time with retries enabled. Can be \
         specified multiple times.",
    ),
    Flag::new(
        "retry-max",
        Kind::Uint,
        "int",
        "Maximum number of join attempts. Defaults to 0, which will retry indefinitely.",
    ),
    Flag::new(
        "retry-max-wan",
        Kind::Uint,
        "int",
        "Maximum number of join -wan attempts. Defaults to 0, which will retry indefinitely.",
    ),
    Flag::new(
        "serf-lan-port",
        Kind::Int,
        "int",
        "Sets the Serf LAN port to listen on.",
    ),
    Flag::new(
        "serf-wan-port",
        Kind::Int,
        "int",
        "Sets the Serf WAN port to listen on.",
    ),
    Flag::boolean("server", "Switches agent to server mode."),
    Flag::new(
        "server-port",
        Kind::Int,
        "int",
        "Sets the server port to listen on.",
    ),
    Flag::boolean("ui", "Enables the built-in static web UI server."),
    Flag::string(
        "ui-content-path",
        "Sets the external UI path to a string. Defaults to: /ui/",
    ),
];

pub fn help() -> String {
    flags::usage(
        "
Usage: proconsul agent [options]

  Starts the Consul agent and runs until an interrupt is received. The
  agent represents a single node in a cluster.
",
        FLAGS,
    )
}

fn int(p: &Parsed, name: &str) -> Result<Option<i32>, String> {
    p.i64(name)
        .map(|v| {
            i32::try_from(v)
                .map_err(|_| format!("invalid value \"{v}\" for flag -{name}: value out of range"))
        })
        .transpose()
}

fn uint(p: &Parsed, name: &str) -> Result<Option<u32>, String> {
    p.u64(name)
        .map(|v| {
            u32::try_from(v)
                .map_err(|_| format!("invalid value \"{v}\" for flag -{name}: value out of range"))
        })
        .transpose()
}

/// Parse `proconsul agent` arguments (Go flag syntax) into [`AgentFlags`]. Repeatable flags
/// (`-config-file`, `-config-dir`, `-node-meta`, `-join`, `-retry-join`) keep every value in
/// order. The error is Go's message (`flag provided but not defined: -x`).
pub fn parse_agent_flags(args: &[String]) -> Result<AgentFlags, String> {
    let p = match flags::parse(FLAGS, args) {
        Ok(p) => p,
        Err(flags::ParseError::Help) => return Err("flag: help requested".into()),
        Err(flags::ParseError::Invalid(m)) => return Err(m),
    };
    if !p.args.is_empty() {
        return Err(format!(
            "Unexpected extra arguments: [{}]",
            p.args.join(" ")
        ));
    }
    let s = |n: &str| p.str(n).map(str::to_string);
    let path = |n: &str| p.str(n).map(PathBuf::from);
    let paths = |n: &str| p.all(n).into_iter().map(PathBuf::from).collect();
    // -join and -retry-join both feed the retry list, in command-line order.
    let retry_join = p.all_of(&["join", "retry-join"]);
    let retry_join_wan = p.all_of(&["join-wan", "retry-join-wan"]);
    Ok(AgentFlags {
        dev: p.bool("dev"),
        server: p.bool("server"),
        bootstrap: p.bool("bootstrap"),
        bootstrap_expect: uint(&p, "bootstrap-expect")?,
        data_dir: path("data-dir"),
        node_name: s("node"),
        node_id: s("node-id"),
        bind_addr: s("bind"),
        client_addr: s("client"),
        advertise_addr: s("advertise"),
        advertise_addr_wan: s("advertise-wan"),
        datacenter: s("datacenter"),
        domain: s("domain"),
        config_files: paths("config-file"),
        config_dirs: paths("config-dir"),
        config_format: s("config-format"),
        hcl: p.all("hcl"),
        http_port: int(&p, "http-port")?,
        dns_port: int(&p, "dns-port")?,
        server_port: int(&p, "server-port")?,
        serf_lan_port: int(&p, "serf-lan-port")?,
        serf_wan_port: int(&p, "serf-wan-port")?,
        grpc_port: int(&p, "grpc-port")?,
        log_level: s("log-level"),
        log_json: p.bool("log-json"),
        log_file: s("log-file"),
        log_rotate_bytes: p.i64("log-rotate-bytes"),
        log_rotate_duration: s("log-rotate-duration"),
        log_rotate_max_files: p.i64("log-rotate-max-files"),
        node_meta: p.all("node-meta"),
        rejoin: p.bool("rejoin"),
        retry_join,
        retry_join_wan,
        retry_interval_wan: s("retry-interval-wan"),
        retry_max_wan: uint(&p, "retry-max-wan")?,
        retry_interval: s("retry-interval"),
        retry_max: uint(&p, "retry-max")?,
        encrypt: s("encrypt"),
        ui: p.bool("ui"),
        ui_content_path: s("ui-content-path"),
        enable_script_checks: p.bool("enable-script-checks"),
        enable_local_script_checks: p.bool("enable-local-script-checks"),
        disable_host_node_id: p.bool("disable-host-node-id"),
        pid_file: path("pid-file"),
    })
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    // Reuse the shared parser first so a bad flag prints help like every other command.
    parse_flags(FLAGS, args, help)?;
    let flags =
        parse_agent_flags(args).map_err(|e| ui::fail(format!("error parsing flags: {e}")))?;
    crate::malloc::tune_for_agent();
    let watches: std::sync::Arc<dyn proconsul_agent::ConfigObserver> =
        std::sync::Arc::new(crate::config_watches::ConfigWatches::default());
    std::process::exit(proconsul_agent::run_with(flags, vec![watches]));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_flag_lands_in_its_field() {
        let f = parse_agent_flags(&a(&[
            "-server",
            "-bootstrap-expect=3",
            "-data-dir",
            "/tmp/d",
            "-node=n1",
            "-node-id=0b6f6f0c-1",
            "-bind=10.0.0.1",
            "-client",
            "0.0.0.0 ::",
            "-advertise=10.0.0.9",
            "-datacenter=dc2",
            "-domain=example.",
            "-config-file=a.json",
            "-config-file=b.hcl",
            "-config-dir=/etc/c",
            "-config-format=hcl",
            "-http-port=-1",
            "-dns-port=8601",
            "-server-port=8300",
            "-serf-lan-port=8301",
            "-serf-wan-port=8302",
            "-grpc-port=8502",
            "-log-level=debug",
            "-log-json",
            "-node-meta=rack:r1",
            "-node-meta=zone:z",
            "-rejoin",
            "-retry-join=10.0.0.2",
            "-join=10.0.0.3",
            "-retry-interval=5s",
            "-retry-max=4",
            "-encrypt=key==",
            "-ui",
            "-enable-script-checks",
            "-enable-local-script-checks",
            "-disable-host-node-id",
            "-hcl=log_json = true",
            "-pid-file=/run/p.pid",
            "-log-file=/var/log/consul/",
            "-log-rotate-bytes=1024",
            "-log-rotate-duration=1h",
            "-log-rotate-max-files=3",
            "-join-wan=10.1.0.1",
            "-advertise-wan=192.0.2.9",
            "-ui-content-path=/consul/",
            "-retry-join-wan=10.1.0.2",
            "-retry-interval-wan=7s",
            "-retry-max-wan=2",
        ]))
        .unwrap();
        assert_eq!(
            f,
            AgentFlags {
                dev: false,
                server: true,
                bootstrap: false,
                bootstrap_expect: Some(3),
                data_dir: Some("/tmp/d".into()),
                node_name: Some("n1".into()),
                node_id: Some("0b6f6f0c-1".into()),
                bind_addr: Some("10.0.0.1".into()),
                client_addr: Some("0.0.0.0 ::".into()),
                advertise_addr: Some("10.0.0.9".into()),
                datacenter: Some("dc2".into()),
                domain: Some("example.".into()),
                config_files: vec!["a.json".into(), "b.hcl".into()],
                config_dirs: vec!["/etc/c".into()],
                config_format: Some("hcl".into()),
                hcl: vec!["log_json = true".into()],
                http_port: Some(-1),
                dns_port: Some(8601),
                server_port: Some(8300),
                serf_lan_port: Some(8301),
                serf_wan_port: Some(8302),
                grpc_port: Some(8502),
                log_level: Some("debug".into()),
                log_json: true,
                node_meta: vec!["rack:r1".into(), "zone:z".into()],
                rejoin: true,
                retry_join: vec!["10.0.0.2".into(), "10.0.0.3".into()],
                retry_interval: Some("5s".into()),
                retry_max: Some(4),
                encrypt: Some("key==".into()),
                ui: true,
                enable_script_checks: true,
                enable_local_script_checks: true,
                disable_host_node_id: true,
                pid_file: Some("/run/p.pid".into()),
                log_file: Some("/var/log/consul/".into()),
                log_rotate_bytes: Some(1024),
                log_rotate_duration: Some("1h".into()),
                log_rotate_max_files: Some(3),
                retry_join_wan: vec!["10.1.0.1".into(), "10.1.0.2".into()],
                retry_interval_wan: Some("7s".into()),
                retry_max_wan: Some(2),
                advertise_addr_wan: Some("192.0.2.9".into()),
                ui_content_path: Some("/consul/".into()),
            }
        );
    }

    #[test]
    fn dev_alone_and_defaults() {
        let f = parse_agent_flags(&a(&["-dev"])).unwrap();
        assert_eq!(
            f,
            AgentFlags {
                dev: true,
                ..AgentFlags::default()
            }
        );
        assert_eq!(parse_agent_flags(&[]).unwrap(), AgentFlags::default());
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_agent_flags(&a(&["-bogus"])).unwrap_err(),
            "flag provided but not defined: -bogus"
        );
        assert_eq!(
            parse_agent_flags(&a(&["-http-port=x"])).unwrap_err(),
            "invalid value \"x\" for flag -http-port: parse error"
        );
        assert!(parse_agent_flags(&a(&["-dev", "extra"]))
            .unwrap_err()
            .contains("Unexpected extra arguments"));
    }
}
