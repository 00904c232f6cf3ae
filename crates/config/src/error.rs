//! The errors of this crate: [`ConfigError`] for a whole load, and the typed errors it carries.
//!
//! Every [`ConfigError`] message starts with `config:` and names what the operator must fix:
//! the file and the key for file problems, the flag for flag problems, Consul's own wording for
//! semantic checks (`data_dir cannot be empty`), so people can search for it. The inner errors
//! print without that prefix: [`ValueError`] (one value), [`HclError`] (HCL syntax),
//! [`DefinitionError`] (a service or check block), [`WatchError`] and [`PlanError`] (a watch),
//! [`ParseError`] (one file) and [`InvalidConfig`] (the merged configuration).

use std::net::SocketAddr;
use std::path::PathBuf;

use proconsul_types::duration::DurationError;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file or directory could not be read.
    #[error("config: failed to read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file's name says neither JSON nor HCL and no `-config-format` was given.
    #[error("config: cannot tell the format of {}: name it *.json or *.hcl, or pass -config-format=json|hcl", path.display())]
    Format { path: PathBuf },
    /// A file could not be parsed or holds a bad key or value; the error names the key.
    #[error("config: failed to parse {}: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: ParseError,
    },
    /// `-config-format` is neither `json` nor `hcl`.
    #[error("config: -config-format: invalid format {0:?}, must be json or hcl")]
    ConfigFormat(String),
    /// A `-node-meta` flag without `key:value`.
    #[error("config: -node-meta: {0:?} must be in key:value format")]
    NodeMeta(String),
    /// A command-line flag has a bad value.
    #[error("config: command line: {0}")]
    Flag(#[source] ValueError),
    /// The merged configuration is not valid (Consul's wording where it has one).
    #[error("config: {0}")]
    Invalid(#[from] InvalidConfig),
}

impl ConfigError {
    /// The file the error is about, if it is about one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            ConfigError::Read { path, .. }
            | ConfigError::Format { path }
            | ConfigError::Parse { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// One value is wrong; the message names its key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    #[error("{key}: invalid duration: {value:?}: {source}")]
    Duration {
        key: String,
        value: String,
        #[source]
        source: DurationError,
    },
    #[error("{key}: invalid port: {value} (must be 1-65535, or -1 to disable)")]
    Port { key: String, value: i64 },
    #[error("{key}: go-sockaddr templates are not supported yet, give an IP address: {value:?}")]
    AddressTemplate { key: String, value: String },
    #[error("{key}: go-sockaddr templates are not supported yet, give IP addresses: {value:?}")]
    AddressesTemplate { key: String, value: String },
    #[error("{key}: no address given")]
    NoAddress { key: String },
    #[error("{key}: multiple addresses found: {value}")]
    MultipleAddresses { key: String, value: String },
    #[error("{key}: unix sockets are not supported: {value}")]
    UnixSocket { key: String, value: String },
    #[error("{key}: invalid ip address: {value}")]
    Ip { key: String, value: String },
    #[error("{key}: {value:?} {why}")]
    Invalid {
        key: String,
        value: String,
        why: String,
    },
    #[error("performance.raft_multiplier cannot be {0}. Must be between 1 and 10")]
    RaftMultiplier(i64),
    #[error("raft_protocol version {0} is not supported by this version of proconsul")]
    RaftProtocol(i64),
    #[error("log_level: invalid log level {0:?}; valid levels are TRACE, DEBUG, INFO, WARN, ERR")]
    LogLevel(String),
    /// `encrypt` is not base64; the text is the decoder's.
    #[error("encrypt has invalid key: {0}")]
    EncryptKey(String),
    #[error("encrypt has invalid key: key size must be 16, 24 or 32 bytes, got {0}")]
    EncryptKeySize(usize),
    #[error("recursors: invalid address {0:?}")]
    Recursor(String),
    #[error("DNS recursor address cannot be 0.0.0.0, :: or [::]")]
    RecursorUnspecified,
    #[error("node_id: {0:?} is not a valid UUID")]
    NodeId(String),
    #[error("{0} cannot be empty")]
    Empty(String),
    #[error(
        "{key} can only contain lowercase alphanumeric, - or _ characters. received: {value:?}"
    )]
    Name { key: String, value: String },
    /// A count that must be zero or more (and fit 32 bits).
    #[error("{key} cannot be {value}. Must be greater than or equal to zero")]
    Negative { key: String, value: i64 },
    #[error("{key}: must be between {min} and {max}, got {value}")]
    Range {
        key: String,
        min: i64,
        max: i64,
        value: i64,
    },
    #[error("{key}: must be a positive number, got {value}")]
    NotPositive { key: String, value: f64 },
}

/// HCL syntax error at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct HclError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A `service`/`check` block is wrong; `ctx` names it (`service "web": check "api"`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DefinitionError {
    #[error("{ctx}: unknown field \"{key}\"")]
    UnknownField { ctx: String, key: String },
    #[error("{ctx}: expected an object, got {kind}")]
    NotObject { ctx: String, kind: &'static str },
    /// The block does not decode; `message` is the decoder's (shortened).
    #[error("{ctx}: {message}")]
    Decode { ctx: String, message: String },
    #[error("{ctx}: missing name")]
    MissingName { ctx: String },
    #[error(
        "{ctx}: exactly one of http, tcp, grpc, ttl, args or alias_service/alias_node must be set"
    )]
    CheckKind { ctx: String },
    #[error("{ctx}: interval must be > 0 for script, http, tcp and grpc checks")]
    Interval { ctx: String },
    #[error("{ctx}: status must be passing, warning or critical, not {status:?}")]
    Status { ctx: String, status: String },
    #[error("{ctx}: http: invalid URL {url:?}: expected http:// or https:// and a host")]
    HttpUrl { ctx: String, url: String },
    #[error("{ctx}: grpc: {message}")]
    Grpc { ctx: String, message: String },
    #[error(transparent)]
    Value(#[from] ValueError),
}

/// Consul's `watch.Parse` rules for a watch's parameters (the `watch` command prints these).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("Must specify a single key to watch")]
    MissingKey,
    #[error("Must specify a single prefix to watch")]
    MissingPrefix,
    #[error("Must specify a single service to watch")]
    MissingService,
    #[error("Cannot specify service and state")]
    ServiceAndState,
    #[error("Unsupported watch type: {0}")]
    UnsupportedType(String),
    /// Parameters the watch type does not take.
    #[error("Invalid parameters: [{}]", .0.join(" "))]
    InvalidParameters(Vec<String>),
}

/// A field of a watch has the wrong JSON type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("Expecting {0} to be a string")]
    NotString(String),
    #[error("Expecting {0} to be a boolean")]
    NotBool(String),
}

/// A watch's `http_handler_config` is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpHandlerError {
    #[error("expected an object")]
    NotObject,
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("header must be a map of lists")]
    Header,
    #[error("header {0:?} must be a list of strings")]
    HeaderValues(String),
    #[error("invalid key {0:?}")]
    UnknownKey(String),
    #[error("Requires 'path' to be set")]
    MissingPath,
    #[error("Failed to parse timeout: {0}")]
    Timeout(#[source] DurationError),
}

/// One entry of a config file's `watches` is wrong (Consul's messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("Watch type must be specified")]
    MissingType,
    #[error("Watch type {0} is not allowed in agent config")]
    ConnectType(String),
    #[error("Handler type '{0}' not recognized")]
    HandlerType(String),
    #[error("Handler type 'http' requires 'http_handler_config' to be set")]
    MissingHttpHandlerConfig,
    #[error("Failed to parse 'http_handler_config': {0}")]
    HttpHandler(#[from] HttpHandlerError),
    #[error("Expecting tag to be a string or []string")]
    Tags,
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("Only one watch handler allowed")]
    SeveralHandlers,
    #[error("Watch handler must be a string")]
    HandlerNotString,
    #[error("Watch args must be a list of strings")]
    Args,
    #[error("Must define a watch handler")]
    NoHandler,
}

/// One config file (or text) could not be decoded; the message names the key, the caller the
/// file.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{0}")]
    Json(#[source] serde_json::Error),
    #[error(transparent)]
    Hcl(#[from] HclError),
    #[error("the top level must be an object")]
    NotObject,
    /// Consul's wording: the key's full path (`acl.tokenz`, `segments[0].nme`).
    #[error("invalid config key {0}")]
    UnknownField(String),
    /// A setting asks for enforcement this build does not have (fail closed).
    #[error("{key} = true asks for {what}, which this proconsul does not provide yet; refusing to start without it")]
    Unmet { key: String, what: String },
    /// A key's value does not decode; `message` is the decoder's (shortened).
    #[error("{key}: {message}")]
    Field { key: String, message: String },
    /// The decoder's message when no single key is at fault.
    #[error("{0}")]
    Decode(String),
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    #[error("watches[{index}]: expected an object")]
    WatchNotObject { index: usize },
    #[error("watches[{index}]: Failed to parse watch: {source}")]
    Watch {
        index: usize,
        #[source]
        source: WatchError,
    },
    #[error(transparent)]
    Value(#[from] ValueError),
}

/// The merged configuration breaks a rule (Consul's wording where it has one).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidConfig {
    #[error(transparent)]
    Value(#[from] ValueError),
    #[error("data_dir {0:?} is not a directory")]
    DataDirNotDirectory(String),
    #[error("'bootstrap = true' requires 'server = true'")]
    BootstrapNeedsServer,
    #[error("'bootstrap_expect > 0' requires 'server = true'")]
    BootstrapExpectNeedsServer,
    #[error("'bootstrap_expect > 0' not allowed in dev mode")]
    BootstrapExpectInDev,
    #[error("'bootstrap_expect > 0' and 'bootstrap = true' are mutually exclusive")]
    BootstrapAndExpect,
    #[error("Advertise address cannot be 0.0.0.0, :: or [::]")]
    AdvertiseUnspecified,
    #[error("{0} cannot be disabled")]
    PortRequired(String),
    #[error("HTTP address {0} already configured for DNS")]
    HttpAddressIsDns(SocketAddr),
    #[error("watch plans require an HTTP or HTTPS endpoint")]
    WatchesNeedHttp,
    #[error("watches: at most {max} watches are supported, got {got}")]
    TooManyWatches { max: usize, got: usize },
    #[error("reconnect_timeout must be >= 8m")]
    ReconnectTimeout,
    #[error("Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true")]
    ScriptsDisabled,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_wording() {
        let flag = ConfigError::Flag(ValueError::Negative {
            key: "retry_max".into(),
            value: -1,
        });
        assert_eq!(
            flag.to_string(),
            "config: command line: retry_max cannot be -1. Must be greater than or equal to zero"
        );
        assert_eq!(
            ConfigError::ConfigFormat("yaml".into()).to_string(),
            "config: -config-format: invalid format \"yaml\", must be json or hcl"
        );
        assert_eq!(
            ConfigError::from(InvalidConfig::TooManyWatches { max: 256, got: 300 }).to_string(),
            "config: watches: at most 256 watches are supported, got 300"
        );
        assert_eq!(
            InvalidConfig::DataDirNotDirectory("/etc/hosts".into()).to_string(),
            "data_dir \"/etc/hosts\" is not a directory"
        );
        assert_eq!(
            InvalidConfig::HttpAddressIsDns("127.0.0.1:8600".parse().unwrap()).to_string(),
            "HTTP address 127.0.0.1:8600 already configured for DNS"
        );
        let parse = ConfigError::Parse {
            path: "/c/a.hcl".into(),
            source: ParseError::Hcl(HclError {
                line: 2,
                column: 3,
                message: "unterminated string".into(),
            }),
        };
        assert_eq!(
            parse.to_string(),
            "config: failed to parse /c/a.hcl: line 2, column 3: unterminated string"
        );
        assert_eq!(parse.path(), Some(std::path::Path::new("/c/a.hcl")));
        assert_eq!(
            PlanError::InvalidParameters(vec!["key".into(), "stale".into()]).to_string(),
            "Invalid parameters: [key stale]"
        );
    }
}
