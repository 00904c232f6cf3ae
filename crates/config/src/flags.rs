//! Command-line flags of `proconsul agent`, as the binary's parser hands them over.
//!
//! Every field is optional or empty by default, so flags only override what files and defaults
//! set (defaults → config files in order → flags). The binary fills this with its Go-style flag
//! parser (`proconsul agent`, `crates/proconsul/src/commands/agent.rs`); this crate turns it,
//! plus the config files it names, into a validated [`crate::RuntimeConfig`].

use std::path::PathBuf;

/// Flags of `proconsul agent` (Consul's names, single dash on the command line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentFlags {
    /// `-dev`: in-memory single server, elects itself at once.
    pub dev: bool,
    /// `-server`
    pub server: bool,
    /// `-bootstrap`
    pub bootstrap: bool,
    /// `-bootstrap-expect=N`
    pub bootstrap_expect: Option<u32>,
    /// `-data-dir`
    pub data_dir: Option<PathBuf>,
    /// `-node`
    pub node_name: Option<String>,
    /// `-node-id`
    pub node_id: Option<String>,
    /// `-bind`
    pub bind_addr: Option<String>,
    /// `-client` (space-separated list allowed, like Consul)
    pub client_addr: Option<String>,
    /// `-advertise`
    pub advertise_addr: Option<String>,
    /// `-datacenter`
    pub datacenter: Option<String>,
    /// `-domain`
    pub domain: Option<String>,
    /// `-config-file` (repeatable, in order)
    pub config_files: Vec<PathBuf>,
    /// `-config-dir` (repeatable; `*.json` and `*.hcl` in lexical order)
    pub config_dirs: Vec<PathBuf>,
    /// `-config-format=json|hcl`: format of files whose extension says neither
    pub config_format: Option<String>,
    /// `-hcl`: config fragments in HCL, read after the files (and before the other flags).
    pub hcl: Vec<String>,
    /// `-http-port`
    pub http_port: Option<i32>,
    /// `-dns-port`
    pub dns_port: Option<i32>,
    /// `-server-port`
    pub server_port: Option<i32>,
    /// `-serf-lan-port`
    pub serf_lan_port: Option<i32>,
    /// `-serf-wan-port`
    pub serf_wan_port: Option<i32>,
    /// `-grpc-port`
    pub grpc_port: Option<i32>,
    /// `-log-level`
    pub log_level: Option<String>,
    /// `-log-json`
    pub log_json: bool,
    /// `-log-file`
    pub log_file: Option<String>,
    /// `-log-rotate-bytes`
    pub log_rotate_bytes: Option<i64>,
    /// `-log-rotate-duration`
    pub log_rotate_duration: Option<String>,
    /// `-log-rotate-max-files`
    pub log_rotate_max_files: Option<i64>,
    /// `-node-meta=key:value` (repeatable)
    pub node_meta: Vec<String>,
    /// `-rejoin`
    pub rejoin: bool,
    /// `-join` / `-retry-join` (repeatable)
    pub retry_join: Vec<String>,
    /// `-retry-interval`
    pub retry_interval: Option<String>,
    /// `-advertise-wan`
    pub advertise_addr_wan: Option<String>,
    /// `-join-wan` / `-retry-join-wan` (repeatable)
    pub retry_join_wan: Vec<String>,
    /// `-retry-interval-wan`
    pub retry_interval_wan: Option<String>,
    /// `-retry-max-wan`
    pub retry_max_wan: Option<u32>,
    /// `-retry-max`
    pub retry_max: Option<u32>,
    /// `-encrypt`
    pub encrypt: Option<String>,
    /// `-ui`: serve the web UI (`ui_config.enabled`)
    pub ui: bool,
    /// `-ui-content-path` (`ui_config.content_path`)
    pub ui_content_path: Option<String>,
    /// `-enable-script-checks`
    pub enable_script_checks: bool,
    /// `-enable-local-script-checks`
    pub enable_local_script_checks: bool,
    /// `-disable-host-node-id`
    pub disable_host_node_id: bool,
    /// `-pid-file`
    pub pid_file: Option<PathBuf>,
}
