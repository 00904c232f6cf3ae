//! Agent configuration, the way Consul reads it: defaults → config files → command-line flags,
//! merged and validated into one [`RuntimeConfig`].
//!
//! Two layers (see `user` and `runtime`): per-source user structs with `Option` fields that
//! reject unknown keys, and the runtime struct the agent uses, with every default applied. Files
//! are JSON or HCL (Consul's HCL1 dialect), named by `-config-file` or found in `-config-dir`
//! (`*.json` and `*.hcl`, lexical order). This crate does no networking and starts nothing; the
//! only things it asks of the machine are the host name and an address to advertise, both behind
//! [`HostInfo`] so tests and in-process clusters can choose them.

pub mod flags;

mod consul_keys;
mod definitions;
mod error;
mod hcl;
mod host;
mod runtime;
mod user;
mod values;
pub mod watch;

pub use error::{
    ConfigError, DefinitionError, FieldError, HclError, HttpHandlerError, InvalidConfig,
    ParseError, PlanError, ValueError, WatchError,
};
pub use flags::AgentFlags;
pub use host::{HostInfo, SystemHost};
pub use runtime::{DnsConfig, HttpsTls, LogFileConfig, RpcTls, RuntimeConfig, SoaConfig};

/// Consul's HCL1 dialect as JSON (blocks become lists of objects, as HCL1 decodes them): the
/// config files' reader, for other HCL Consul reads (ACL policy rules).
pub fn parse_hcl(text: &str) -> Result<serde_json::Value, HclError> {
    hcl::parse(text)
}

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use user::{Format, Layer, Merge, Ports, UserConfig};

/// Build the agent's configuration from `flags` and the files they name.
pub fn load(flags: &AgentFlags) -> Result<RuntimeConfig, ConfigError> {
    load_with(flags, &SystemHost)
}

/// [`load`] with the host facts given (tests, in-process clusters).
pub fn load_with(flags: &AgentFlags, host: &dyn HostInfo) -> Result<RuntimeConfig, ConfigError> {
    let fallback = flags
        .config_format
        .as_deref()
        .map(Format::from_flag)
        .transpose()?;
    let mut merged = Layer::default();
    if flags.dev {
        merged.merge(runtime::dev_layer());
    }
    let mut files = Vec::new();
    for path in flags.config_files.iter().chain(&flags.config_dirs) {
        for file in expand(path)? {
            let format = Format::of(&file, fallback)?;
            merged.merge(user::read_file(&file, format)?);
            files.push(file);
        }
    }
    for fragment in &flags.hcl {
        let layer =
            user::parse_str(fragment, Format::Hcl).map_err(|source| ConfigError::Parse {
                path: PathBuf::from("-hcl"),
                source,
            })?;
        merged.merge(layer);
    }
    merged.merge(flags_layer(flags)?);
    runtime::build(
        merged,
        runtime::BuildOpts {
            dev: flags.dev,
            require_data_dir: true,
            host,
            config_files: files,
        },
    )
    .map_err(ConfigError::Invalid)
}

/// Check config files and directories the way the agent would read them (`proconsul validate`):
/// every file is parsed and checked, then the merged result is validated. A data directory is
/// not required, since the files checked are often fragments (service definitions).
pub fn validate_files(paths: &[PathBuf]) -> Result<(), Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut merged = Layer::default();
    let mut files = Vec::new();
    for path in paths {
        let listed = match expand(path) {
            Ok(l) => l,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        for file in listed {
            match Format::of(&file, None).and_then(|f| user::read_file(&file, f)) {
                Ok(layer) => merged.merge(layer),
                Err(e) => errors.push(e),
            }
            files.push(file);
        }
    }
    if errors.is_empty() {
        let opts = runtime::BuildOpts {
            dev: false,
            require_data_dir: false,
            host: &SystemHost,
            config_files: files,
        };
        if let Err(e) = runtime::build(merged, opts) {
            errors.push(ConfigError::Invalid(e));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// A file stays itself; a directory becomes its `*.json` and `*.hcl` files in lexical order
/// (not recursive, other files ignored), like Consul's `-config-dir`.
fn expand(path: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).map_err(read_err)? {
        let p = entry.map_err(read_err)?.path();
        let ext = p.extension().and_then(|e| e.to_str());
        if matches!(ext, Some("json") | Some("hcl")) && p.is_file() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// The flags as the last user layer, so they override files (lists append, like Consul).
fn flags_layer(f: &AgentFlags) -> Result<Layer, ConfigError> {
    let port = |v: Option<i32>| v.map(i64::from);
    let mut node_meta = BTreeMap::new();
    for kv in &f.node_meta {
        match kv.split_once(':') {
            Some((k, v)) if !k.trim().is_empty() => {
                node_meta.insert(k.trim().to_string(), v.trim().to_string());
            }
            _ => return Err(ConfigError::NodeMeta(kv.clone())),
        }
    }
    let ports = Ports {
        http: port(f.http_port),
        dns: port(f.dns_port),
        server: port(f.server_port),
        serf_lan: port(f.serf_lan_port),
        serf_wan: port(f.serf_wan_port),
        grpc: port(f.grpc_port),
        ..Ports::default()
    };
    let yes = |b: bool| b.then_some(true);
    let u = UserConfig {
        server: yes(f.server),
        bootstrap: yes(f.bootstrap),
        bootstrap_expect: f.bootstrap_expect.map(i64::from),
        data_dir: f.data_dir.clone(),
        node_name: f.node_name.clone(),
        node_id: f.node_id.clone(),
        bind_addr: f.bind_addr.clone(),
        client_addr: f.client_addr.clone(),
        advertise_addr: f.advertise_addr.clone(),
        advertise_addr_wan: f.advertise_addr_wan.clone(),
        datacenter: f.datacenter.clone(),
        domain: f.domain.clone(),
        ports: (ports != Ports::default()).then_some(ports),
        log_level: f.log_level.clone(),
        log_json: yes(f.log_json),
        log_file: f.log_file.clone(),
        log_rotate_bytes: f.log_rotate_bytes,
        log_rotate_duration: f.log_rotate_duration.clone(),
        log_rotate_max_files: f.log_rotate_max_files,
        node_meta: (!node_meta.is_empty()).then_some(node_meta),
        rejoin_after_leave: yes(f.rejoin),
        retry_join: (!f.retry_join.is_empty()).then(|| f.retry_join.clone()),
        retry_join_wan: (!f.retry_join_wan.is_empty()).then(|| f.retry_join_wan.clone()),
        retry_interval_wan: f.retry_interval_wan.clone(),
        retry_max_wan: f.retry_max_wan.map(i64::from),
        retry_interval: f.retry_interval.clone(),
        retry_max: f.retry_max.map(i64::from),
        encrypt: f.encrypt.clone(),
        ui_config: (f.ui || f.ui_content_path.is_some()).then(|| user::UiUser {
            enabled: f.ui.then_some(true),
            content_path: f.ui_content_path.clone(),
        }),
        enable_script_checks: yes(f.enable_script_checks),
        enable_local_script_checks: yes(f.enable_local_script_checks),
        disable_host_node_id: yes(f.disable_host_node_id),
        pid_file: f.pid_file.clone(),
        ..UserConfig::default()
    };
    user::check_user(&u).map_err(ConfigError::Flag)?;
    Ok(Layer {
        user: u,
        ..Layer::default()
    })
}

#[cfg(test)]
mod tests;
