//! Services and checks registered through the API survive a restart: each is a JSON file under
//! `<data-dir>/services/` or `<data-dir>/checks/`, named by the hex of its ID, written atomically
//! (temp file + rename). Config-file definitions are not persisted: the files are their source.
//! The ACL token a service or check was registered with is kept beside it (`<hex>.token`,
//! mode 0600), as Consul keeps it in its persisted file, so anti-entropy still writes it with
//! that token after a restart.
//! `-dev` has no data dir and persists nothing.

use std::path::{Path, PathBuf};

use proconsul_types::{CheckDefinition, ServiceDefinition};
use serde::{de::DeserializeOwned, Serialize};

/// The two directories of persisted definitions.
#[derive(Debug, Clone)]
pub struct Persisted {
    services: PathBuf,
    checks: PathBuf,
}

fn file_name(id: &str) -> String {
    let hex: String = id.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.json")
}

fn write_atomic(dir: &Path, id: &str, value: &impl Serialize) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(file_name(id));
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value)?)?;
    std::fs::rename(&tmp, &path)
}

fn remove(dir: &Path, id: &str) {
    let _ = std::fs::remove_file(dir.join(file_name(id)));
    let _ = std::fs::remove_file(dir.join(file_name(id)).with_extension("token"));
}

/// Write (or, for an empty token, remove) the token of `id`, readable by the agent only.
fn write_token(dir: &Path, id: &str, token: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(file_name(id)).with_extension("token");
    if token.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("token.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(token.as_bytes())?;
    std::fs::rename(&tmp, &path)
}

/// Every `<hex id>.token` in `dir`: (id, token).
fn load_tokens(dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "token"))
        .filter_map(|p| {
            let stem = p.file_stem()?.to_str()?;
            let bytes: Option<Vec<u8>> = (0..stem.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(stem.get(i..i + 2)?, 16).ok())
                .collect();
            let id = String::from_utf8(bytes?).ok()?;
            let token = std::fs::read_to_string(&p).ok()?;
            Some((id, token))
        })
        .collect()
}

/// Every readable definition in `dir`; unreadable files are reported and skipped.
fn load_all<T: DeserializeOwned>(dir: &Path) -> Vec<T> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| match std::fs::read(&p).map_err(|e| e.to_string()).and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string())) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(target: "agent", file = %p.display(), error = %e, "skipping unreadable persisted definition");
                None
            }
        })
        .collect()
}

impl Persisted {
    pub fn new(data_dir: &Path) -> Self {
        Persisted {
            services: data_dir.join("services"),
            checks: data_dir.join("checks"),
        }
    }

    /// Save a service (without its checks: those are saved one by one).
    pub fn save_service(&self, id: &str, def: &ServiceDefinition) {
        let def = ServiceDefinition {
            check: None,
            checks: Vec::new(),
            ..def.clone()
        };
        if let Err(e) = write_atomic(&self.services, id, &def) {
            tracing::warn!(target: "agent", service = %id, error = %e, "failed to persist service");
        }
    }

    pub fn save_check(&self, def: &CheckDefinition) {
        if let Err(e) = write_atomic(&self.checks, def.given_id(), def) {
            tracing::warn!(target: "agent", check = %def.given_id(), error = %e, "failed to persist check");
        }
    }

    pub fn remove_service(&self, id: &str, check_ids: &[String]) {
        remove(&self.services, id);
        for c in check_ids {
            remove(&self.checks, c);
        }
    }

    pub fn remove_check(&self, id: &str) {
        remove(&self.checks, id);
    }

    /// Keep the token a service (`service: true`) or check was registered with.
    pub fn save_token(&self, service: bool, id: &str, token: &str) {
        let dir = if service {
            &self.services
        } else {
            &self.checks
        };
        if let Err(e) = write_token(dir, id, token) {
            tracing::warn!(target: "agent", id, error = %e, "failed to persist the registration's ACL token");
        }
    }

    /// The tokens kept for services and checks: (service?, id, token).
    pub fn tokens(&self) -> Vec<(bool, String, String)> {
        let services = load_tokens(&self.services)
            .into_iter()
            .map(|(i, t)| (true, i, t));
        let checks = load_tokens(&self.checks)
            .into_iter()
            .map(|(i, t)| (false, i, t));
        services.chain(checks).collect()
    }

    pub fn services(&self) -> Vec<ServiceDefinition> {
        load_all(&self.services)
    }

    pub fn checks(&self) -> Vec<CheckDefinition> {
        load_all(&self.checks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let p = Persisted::new(dir.path());
        let svc = ServiceDefinition {
            id: "web/1".into(),
            name: "web".into(),
            port: 80,
            check: Some(CheckDefinition::default()),
            ..Default::default()
        };
        p.save_service("web/1", &svc);
        let chk = CheckDefinition {
            id: "c1".into(),
            name: "c".into(),
            ttl: "10s".into(),
            ..Default::default()
        };
        p.save_check(&chk);
        let loaded = p.services();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].name, "web");
        assert!(loaded[0].check.is_none());
        assert_eq!(p.checks(), vec![chk]);
        p.remove_service("web/1", &["c1".into()]);
        assert!(p.services().is_empty() && p.checks().is_empty());
    }

    #[test]
    fn registration_tokens_are_kept_private_and_removed_with_their_service() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = Persisted::new(dir.path());
        p.save_service(
            "web/1",
            &ServiceDefinition {
                name: "web".into(),
                ..Default::default()
            },
        );
        p.save_token(true, "web/1", "secret-1");
        p.save_token(false, "c1", "secret-2");
        let mut tokens = p.tokens();
        tokens.sort();
        assert_eq!(
            tokens,
            vec![
                (false, "c1".into(), "secret-2".into()),
                (true, "web/1".into(), "secret-1".into())
            ]
        );
        let file = dir
            .path()
            .join("services")
            .join(file_name("web/1"))
            .with_extension("token");
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // The services' own listing is not confused by token files.
        assert_eq!(p.services().len(), 1);
        p.remove_service("web/1", &[]);
        p.save_token(false, "c1", "");
        assert!(p.tokens().is_empty());
    }
}
