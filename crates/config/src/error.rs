//! The one error type of this crate.
//!
//! Every message starts with `config:` and names what the operator must fix: the file and the
//! key for file problems, the flag for flag problems, Consul's own wording for semantic checks
//! (`data_dir cannot be empty`), so people can search for it.

use std::path::PathBuf;

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
    /// A file could not be parsed or holds a bad key or value; `msg` names the key.
    #[error("config: failed to parse {}: {msg}", path.display())]
    Parse { path: PathBuf, msg: String },
    /// A command-line flag has a bad value.
    #[error("config: {0}")]
    Flag(String),
    /// The merged configuration is not valid (Consul's wording where it has one).
    #[error("config: {0}")]
    Invalid(String),
}

impl ConfigError {
    /// The file the error is about, if it is about one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            ConfigError::Read { path, .. }
            | ConfigError::Format { path }
            | ConfigError::Parse { path, .. } => Some(path),
            ConfigError::Flag(_) | ConfigError::Invalid(_) => None,
        }
    }
}
