//! Where the client connects and as whom: explicit settings or Consul's environment variables.

use std::path::PathBuf;

use crate::Error;

/// The agent address used when nothing else is given (Consul's default).
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8500";

/// Client settings. Build one by hand, or start from [`Config::from_env`] and override fields
/// with command-line flags (flags win, as in Consul).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `host:port` or `http://host:port`.
    pub address: String,
    /// ACL token sent as `X-Consul-Token`.
    pub token: Option<String>,
    /// File holding the ACL token; when it names a non-empty file it takes precedence over
    /// `token` (the Go client's rule).
    pub token_file: Option<PathBuf>,
    /// Datacenter added as `?dc=` to every request that does not name its own.
    pub datacenter: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            address: DEFAULT_ADDRESS.to_string(),
            token: None,
            token_file: None,
            datacenter: None,
        }
    }
}

impl Config {
    /// Defaults overridden by `CONSUL_HTTP_ADDR`, `CONSUL_HTTP_TOKEN` and
    /// `CONSUL_HTTP_TOKEN_FILE` (empty variables count as unset).
    pub fn from_env() -> Config {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Config::from_env`] over any variable source, so it can be tested without touching the
    /// process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Config {
        let get = |name: &str| get(name).filter(|v| !v.is_empty());
        let mut cfg = Config::default();
        if let Some(addr) = get("CONSUL_HTTP_ADDR") {
            cfg.address = addr;
        }
        cfg.token = get("CONSUL_HTTP_TOKEN");
        cfg.token_file = get("CONSUL_HTTP_TOKEN_FILE").map(PathBuf::from);
        cfg
    }

    /// The base URL (`http://host:port`, no trailing slash) requests are sent to.
    pub fn base_url(&self) -> Result<String, Error> {
        let addr = self.address.trim().trim_end_matches('/');
        let hostport = if let Some(rest) = addr.strip_prefix("http://") {
            rest
        } else if addr.starts_with("https://") || addr.starts_with("unix://") {
            return Err(Error::Config(format!(
                "unsupported address scheme in {addr:?}: proconsul's client speaks plain http only"
            )));
        } else {
            addr
        };
        if hostport.is_empty() || hostport.contains('/') {
            return Err(Error::Config(format!(
                "invalid HTTP address {:?}",
                self.address
            )));
        }
        Ok(format!("http://{hostport}"))
    }

    /// The token to send: the token file's trimmed content if it is non-empty, else `token`.
    pub fn resolve_token(&self) -> Result<Option<String>, Error> {
        if let Some(path) = &self.token_file {
            let data = std::fs::read_to_string(path)
                .map_err(|e| Error::Config(format!("Error loading token file: {e}")))?;
            let t = data.trim();
            if !t.is_empty() {
                return Ok(Some(t.to_string()));
            }
        }
        Ok(self.token.clone().filter(|t| !t.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_address_with_or_without_scheme() {
        let c = Config::from_lookup(|k| (k == "CONSUL_HTTP_ADDR").then(|| "10.0.0.1:8501".into()));
        assert_eq!(c.base_url().unwrap(), "http://10.0.0.1:8501");
        let c = Config::from_lookup(|k| match k {
            "CONSUL_HTTP_ADDR" => Some("http://localhost:8500/".into()),
            "CONSUL_HTTP_TOKEN" => Some("secret".into()),
            _ => None,
        });
        assert_eq!(c.base_url().unwrap(), "http://localhost:8500");
        assert_eq!(c.resolve_token().unwrap().as_deref(), Some("secret"));
    }

    #[test]
    fn empty_env_means_default() {
        let c = Config::from_lookup(|_| Some(String::new()));
        assert_eq!(c, Config::default());
        assert_eq!(c.base_url().unwrap(), "http://127.0.0.1:8500");
    }

    #[test]
    fn https_is_refused_clearly() {
        let c = Config {
            address: "https://x:8501".into(),
            ..Config::default()
        };
        assert!(matches!(c.base_url(), Err(Error::Config(_))));
    }

    #[test]
    fn token_file_wins_when_non_empty() {
        let dir = std::env::temp_dir().join(format!("proconsul-api-tok-{}", std::process::id()));
        std::fs::write(&dir, "  filetoken\n").unwrap();
        let c = Config {
            token: Some("flag".into()),
            token_file: Some(dir.clone()),
            ..Config::default()
        };
        assert_eq!(c.resolve_token().unwrap().as_deref(), Some("filetoken"));
        std::fs::write(&dir, "\n").unwrap();
        assert_eq!(c.resolve_token().unwrap().as_deref(), Some("flag"));
        std::fs::remove_file(&dir).unwrap();
    }
}
