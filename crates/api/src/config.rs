//! Where the client connects and as whom: explicit settings or Consul's environment variables.

use std::path::PathBuf;

use crate::{Error, TlsConfig};

/// The agent address used when nothing else is given (Consul's default).
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8500";

/// Client settings. Build one by hand, or start from [`Config::from_env`] and override fields
/// with command-line flags (flags win, as in Consul).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `host:port`, `http://host:port` or `https://host:port`, optionally followed by a path
    /// prefix (an agent behind a reverse proxy: `https://gw:443/consul`).
    pub address: String,
    /// `CONSUL_HTTP_SSL=true`: speak https. As in Consul's client, an explicit `http://` in the
    /// address does not turn it off again; `https://` turns it on by itself.
    pub https: bool,
    /// ACL token sent as `X-Consul-Token`.
    pub token: Option<String>,
    /// File holding the ACL token; when it names a non-empty file it takes precedence over
    /// `token` (the Go client's rule).
    pub token_file: Option<PathBuf>,
    /// Datacenter added as `?dc=` to every request that does not name its own.
    pub datacenter: Option<String>,
    /// CA, client certificate and server name for https.
    pub tls: TlsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            address: DEFAULT_ADDRESS.to_string(),
            https: false,
            token: None,
            token_file: None,
            datacenter: None,
            tls: TlsConfig::default(),
        }
    }
}

/// Where requests go: the scheme, `host:port` and a path prefix (empty or `/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub https: bool,
    pub hostport: String,
    pub prefix: String,
    /// `unix:///path`: requests go over this socket (the URL's host is `localhost`).
    pub unix: Option<PathBuf>,
}

impl Endpoint {
    /// `scheme://host:port/prefix`, no trailing slash.
    pub fn url(&self) -> String {
        if self.unix.is_some() {
            return "http://localhost".to_string();
        }
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{}", self.hostport, self.prefix)
    }
}

/// Go's `strconv.ParseBool`.
fn go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

impl Config {
    /// Defaults overridden by Consul's variables: `CONSUL_HTTP_ADDR`, `CONSUL_HTTP_TOKEN`,
    /// `CONSUL_HTTP_TOKEN_FILE`, `CONSUL_HTTP_SSL`, `CONSUL_HTTP_SSL_VERIFY`, `CONSUL_CACERT`,
    /// `CONSUL_CAPATH`, `CONSUL_CLIENT_CERT`, `CONSUL_CLIENT_KEY` and `CONSUL_TLS_SERVER_NAME`
    /// (empty variables count as unset).
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
        // Consul's client reads an unparsable value as false (after a warning): for
        // CONSUL_HTTP_SSL that means plain http, for CONSUL_HTTP_SSL_VERIFY no verification.
        if let Some(v) = get("CONSUL_HTTP_SSL") {
            cfg.https = go_bool(&v) == Some(true);
        }
        if let Some(v) = get("CONSUL_HTTP_SSL_VERIFY") {
            cfg.tls.insecure_skip_verify = go_bool(&v) != Some(true);
        }
        cfg.tls.server_name = get("CONSUL_TLS_SERVER_NAME");
        cfg.tls.ca_file = get("CONSUL_CACERT").map(PathBuf::from);
        cfg.tls.ca_path = get("CONSUL_CAPATH").map(PathBuf::from);
        cfg.tls.cert_file = get("CONSUL_CLIENT_CERT").map(PathBuf::from);
        cfg.tls.key_file = get("CONSUL_CLIENT_KEY").map(PathBuf::from);
        cfg
    }

    /// The base URL (`http://host:port` or `https://host:port`, then any path prefix; no
    /// trailing slash) requests are sent to.
    pub fn base_url(&self) -> Result<String, Error> {
        Ok(self.endpoint()?.url())
    }

    /// Split the address as Consul's `NewClient` does: a scheme (`http`, `https`, or `unix`
    /// with a socket path), `host:port`, and a path prefix after it.
    pub(crate) fn endpoint(&self) -> Result<Endpoint, Error> {
        let addr = self.address.trim();
        let (https, rest) = match addr.split_once("://") {
            None => (self.https, addr),
            Some(("http", rest)) => (self.https, rest),
            Some(("https", rest)) => (true, rest),
            Some(("unix", path)) => {
                if path.is_empty() {
                    return Err(Error::Config(format!(
                        "invalid HTTP address {:?}",
                        self.address
                    )));
                }
                return Ok(Endpoint {
                    https: false,
                    hostport: path.to_string(),
                    prefix: String::new(),
                    unix: Some(PathBuf::from(path)),
                });
            }
            Some((scheme, _)) => {
                return Err(Error::Config(format!("Unknown protocol scheme: {scheme}")))
            }
        };
        let rest = rest.trim_end_matches('/');
        let (hostport, prefix) = match rest.split_once('/') {
            Some((h, p)) if addr.contains("://") => (h, format!("/{p}")),
            Some(_) => ("", String::new()),
            None => (rest, String::new()),
        };
        if hostport.is_empty() {
            return Err(Error::Config(format!(
                "invalid HTTP address {:?}",
                self.address
            )));
        }
        Ok(Endpoint {
            https,
            hostport: hostport.to_string(),
            prefix,
            unix: None,
        })
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
    fn schemes_as_consuls_client_reads_them() {
        let url = |address: &str, https: bool| {
            Config {
                address: address.into(),
                https,
                ..Config::default()
            }
            .base_url()
        };
        assert_eq!(url("https://x:8501", false).unwrap(), "https://x:8501");
        assert_eq!(url("x:8501", true).unwrap(), "https://x:8501");
        // CONSUL_HTTP_SSL is not undone by an explicit http:// (Consul: "never revert").
        assert_eq!(url("http://x:8501", true).unwrap(), "https://x:8501");
        assert_eq!(
            url("https://gw:443/consul/", false).unwrap(),
            "https://gw:443/consul"
        );
        assert_eq!(
            url("ftp://x:1", false).unwrap_err().to_string(),
            "Unknown protocol scheme: ftp"
        );
        assert_eq!(url("unix:///tmp/s", false).unwrap(), "http://localhost");
        assert!(matches!(url("unix://", false), Err(Error::Config(_))));
        assert!(matches!(url("x:1/path", false), Err(Error::Config(_))));
        assert!(matches!(url("https://", false), Err(Error::Config(_))));
    }

    #[test]
    fn tls_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            Config::from_lookup(move |k| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            })
        };
        let c = env(&[
            ("CONSUL_HTTP_ADDR", "127.0.0.1:8501"),
            ("CONSUL_HTTP_SSL", "true"),
            ("CONSUL_CACERT", "/ca.pem"),
            ("CONSUL_CAPATH", "/cas"),
            ("CONSUL_CLIENT_CERT", "/cli.pem"),
            ("CONSUL_CLIENT_KEY", "/cli-key.pem"),
            ("CONSUL_TLS_SERVER_NAME", "server.dc1.consul"),
        ]);
        assert_eq!(c.base_url().unwrap(), "https://127.0.0.1:8501");
        assert_eq!(
            c.tls,
            TlsConfig {
                server_name: Some("server.dc1.consul".into()),
                ca_file: Some("/ca.pem".into()),
                ca_path: Some("/cas".into()),
                cert_file: Some("/cli.pem".into()),
                key_file: Some("/cli-key.pem".into()),
                insecure_skip_verify: false,
            }
        );
        assert!(
            env(&[("CONSUL_HTTP_SSL_VERIFY", "false")])
                .tls
                .insecure_skip_verify
        );
        assert!(
            !env(&[("CONSUL_HTTP_SSL_VERIFY", "1")])
                .tls
                .insecure_skip_verify
        );
        // Unparsable values are false, as Go's ParseBool error leaves them.
        assert!(
            env(&[("CONSUL_HTTP_SSL_VERIFY", "yes")])
                .tls
                .insecure_skip_verify
        );
        assert!(!env(&[("CONSUL_HTTP_SSL", "yes")]).https);
        assert!(!env(&[("CONSUL_HTTP_SSL", "0")]).https);
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
