//! The agent's side of ACLs: the tokens it holds (`acl.tokens`, changed at run time through
//! `/v1/agent/token/:kind`) and the rights of callers of the endpoints it serves itself.
//!
//! With `acl.enable_token_persistence`, tokens set through the API are kept in
//! `<data_dir>/acl-tokens.json` (mode 0600) and win over the config's at the next start, as
//! Consul's do.
//!
//! Rights are what a server says the caller's token grants (`ACL.ResolveIdentity`), compiled
//! here and kept for the shortest of `acl.token_ttl`, `policy_ttl` and `role_ttl`. When no server answers, `acl.down_policy` decides:
//! `extend-cache`/`async-cache` keep using what was resolved before (however old), `allow`
//! and `deny` answer for every token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use proconsul_acl::{Authorizer, DefaultPolicy, Policy};
use proconsul_http::Rights;
use proconsul_types::{AclAgentTokens, AclConfig, AclIdentity, AclResolveIdentity, RpcError};

use crate::Agent;

/// Resolved rights kept at most; the cache starts over when full.
const RIGHTS_MAX: usize = 4096;

pub(crate) struct AgentAcl {
    config: AclConfig,
    /// Where tokens set through the API are kept (`enable_token_persistence`).
    persist_to: Option<std::path::PathBuf>,
    tokens: RwLock<AclAgentTokens>,
    rights: Mutex<HashMap<String, (Instant, Arc<Rights>)>>,
    /// Bumped whenever a token changes (DNS answers cached under the old ones are stale).
    epoch: std::sync::atomic::AtomicU64,
    /// The token each service and check was registered with through the API: anti-entropy
    /// writes them with it, as Consul's agent does (service ID / check ID → secret).
    registered_with: Mutex<(HashMap<String, String>, HashMap<String, String>)>,
}

impl AgentAcl {
    pub fn new(config: AclConfig, data_dir: Option<&std::path::Path>) -> AgentAcl {
        let persist_to = data_dir
            .filter(|_| config.enable_token_persistence)
            .map(|d| d.join(PERSISTED_FILE));
        let mut tokens = config.tokens.clone();
        if let Some(saved) = persist_to.as_deref().and_then(load_persisted) {
            saved.apply_to(&mut tokens);
        }
        AgentAcl {
            tokens: RwLock::new(tokens),
            persist_to,
            config,
            rights: Mutex::default(),
            epoch: Default::default(),
            registered_with: Mutex::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    fn tokens(&self) -> std::sync::RwLockReadGuard<'_, AclAgentTokens> {
        self.tokens.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The token of the agent's own requests: `agent`, else `default`.
    pub fn agent(&self) -> String {
        let t = self.tokens();
        if t.agent.is_empty() {
            t.default.clone()
        } else {
            t.agent.clone()
        }
    }

    /// The token of a request that brought none: `default`.
    pub fn default_token(&self) -> String {
        self.tokens().default.clone()
    }

    /// The token DNS answers with: `dns`, else `default`.
    pub fn dns(&self) -> String {
        let t = self.tokens();
        if t.dns.is_empty() {
            t.default.clone()
        } else {
            t.dns.clone()
        }
    }

    /// `/v1/agent/token/:kind`: replace one of the agent's tokens. `false` for an unknown kind.
    pub fn set(&self, kind: &str, token: String) -> bool {
        let mut t = self.tokens.write().unwrap_or_else(|e| e.into_inner());
        let slot = match kind {
            "default" | "acl_token" => &mut t.default,
            "agent" | "acl_agent_token" => &mut t.agent,
            "agent_recovery" | "agent_master" | "acl_agent_master_token" => &mut t.agent_recovery,
            "replication" | "acl_replication_token" => &mut t.replication,
            "dns" => &mut t.dns,
            "config_file_service_registration" => &mut t.config_file_service_registration,
            _ => return false,
        };
        *slot = token;
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Some(path) = &self.persist_to {
            if let Err(e) = save_persisted(path, &t) {
                tracing::warn!(target: "agent.acl", error = %e, "failed to persist the agent's ACL tokens");
            }
        }
        true
    }

    /// Remember the token a service (`service: true`) or check was registered with; an
    /// empty token forgets it.
    pub fn remember(&self, service: bool, id: &str, token: &str) {
        let mut m = self.registered_with.lock().unwrap();
        let map = if service { &mut m.0 } else { &mut m.1 };
        if token.is_empty() {
            map.remove(id);
        } else {
            map.insert(id.to_string(), token.to_string());
        }
    }

    /// The token anti-entropy writes a service with: its own, else (config-file services)
    /// `config_file_service_registration`, else the agent's.
    pub fn service_token(&self, id: &str, from_config: bool) -> String {
        if let Some(t) = self.registered_with.lock().unwrap().0.get(id) {
            return t.clone();
        }
        let own = self.tokens().config_file_service_registration.clone();
        if from_config && !own.is_empty() {
            own
        } else {
            self.agent()
        }
    }

    /// The token anti-entropy writes a check with: its own, else its service's, else the
    /// agent's.
    pub fn check_token(&self, id: &str, service_id: &str, from_config: bool) -> String {
        if let Some(t) = self.registered_with.lock().unwrap().1.get(id) {
            return t.clone();
        }
        if service_id.is_empty() {
            let own = self.tokens().config_file_service_registration.clone();
            return if from_config && !own.is_empty() {
                own
            } else {
                self.agent()
            };
        }
        self.service_token(service_id, from_config)
    }

    /// How many times the agent's tokens have changed.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn default_policy(&self) -> DefaultPolicy {
        if self.config.default_allow {
            DefaultPolicy::Allow
        } else {
            DefaultPolicy::Deny
        }
    }

    /// Rights from what a server resolved.
    fn compile(&self, id: AclIdentity, has_token: bool) -> Result<Rights, RpcError> {
        let authz = if id.management {
            Authorizer::manage_all()
        } else {
            let policies: Vec<Policy> = id
                .rules
                .iter()
                .map(|r| Policy::parse_lenient(r))
                .collect::<Result<_, _>>()
                .map_err(|e| RpcError::Internal(format!("ACL policy does not parse: {e}")))?;
            Authorizer::new(policies.iter(), self.default_policy())
                .with_key_list_policy(self.config.enable_key_list_policy)
        };
        Ok(Rights {
            accessor_id: id.accessor_id,
            authz,
            has_token,
        })
    }
}

/// `<data_dir>/acl-tokens.json`, Consul's name and keys.
const PERSISTED_FILE: &str = "acl-tokens.json";

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Persisted {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    agent: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    agent_recovery: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    default: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    replication: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    config_file_service_registration: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    dns: String,
}

impl Persisted {
    fn apply_to(self, t: &mut AclAgentTokens) {
        for (saved, slot) in [
            (self.agent, &mut t.agent),
            (self.agent_recovery, &mut t.agent_recovery),
            (self.default, &mut t.default),
            (self.replication, &mut t.replication),
            (
                self.config_file_service_registration,
                &mut t.config_file_service_registration,
            ),
            (self.dns, &mut t.dns),
        ] {
            if !saved.is_empty() {
                *slot = saved;
            }
        }
    }
}

fn load_persisted(path: &std::path::Path) -> Option<Persisted> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(target: "agent.acl", error = %e, path = %path.display(), "ignoring unreadable persisted ACL tokens");
            None
        }
    }
}

/// Write the tokens beside the data, readable by the agent's user only (temp file + rename).
fn save_persisted(path: &std::path::Path, t: &AclAgentTokens) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let p = Persisted {
        agent: t.agent.clone(),
        agent_recovery: t.agent_recovery.clone(),
        default: t.default.clone(),
        replication: t.replication.clone(),
        config_file_service_registration: t.config_file_service_registration.clone(),
        dns: t.dns.clone(),
    };
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&serde_json::to_vec(&p).expect("tokens encode"))?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

impl Agent {
    /// The token a request of the HTTP API is served with: its own, else the agent's
    /// `default` token (then the servers read an empty one as anonymous).
    pub(crate) fn request_token(&self) -> String {
        match proconsul_http::caller_token() {
            Some(t) if !t.is_empty() => t.to_string(),
            _ => self.inner.tokens.default_token(),
        }
    }

    /// What `token` may do on this agent; `None` when ACLs are off.
    pub(crate) async fn rights_of(&self, token: &str) -> Result<Option<Arc<Rights>>, RpcError> {
        let acl = &self.inner.tokens;
        if !acl.enabled() {
            return Ok(None);
        }
        // The recovery token works on this agent even when no server does.
        let recovery = acl.tokens().agent_recovery.clone();
        if !recovery.is_empty() && token == recovery {
            return Ok(Some(Arc::new(Rights {
                accessor_id: "agent-recovery-token".into(),
                authz: Authorizer::manage_all(),
                has_token: true,
            })));
        }
        let cached = acl.rights.lock().unwrap().get(token).cloned();
        if let Some((at, rights)) = &cached {
            if at.elapsed() < acl.config.rights_ttl() {
                return Ok(Some(rights.clone()));
            }
        }
        match self.call_as(AclResolveIdentity {}, token).await {
            Ok(id) => {
                let rights = Arc::new(acl.compile(id, !token.is_empty())?);
                let mut cache = acl.rights.lock().unwrap();
                if cache.len() >= RIGHTS_MAX {
                    cache.clear();
                }
                cache.insert(token.to_string(), (Instant::now(), rights.clone()));
                Ok(Some(rights))
            }
            Err(e) if e.is_retryable() => match acl.config.down_policy.as_str() {
                "extend-cache" | "async-cache" if cached.is_some() => Ok(cached.map(|(_, r)| r)),
                "allow" => Ok(Some(Arc::new(Rights {
                    accessor_id: String::new(),
                    authz: Authorizer::for_default_policy(DefaultPolicy::Allow),
                    has_token: !token.is_empty(),
                }))),
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_set_through_the_api_persist_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = AclConfig {
            enabled: true,
            enable_token_persistence: true,
            ..AclConfig::default()
        };
        config.tokens.agent = "from-config".into();
        let acl = AgentAcl::new(config.clone(), Some(dir.path()));
        assert_eq!(acl.agent(), "from-config");
        assert!(acl.set("agent", "from-api".into()));
        assert!(acl.set("dns", "dns-secret".into()));
        assert!(!acl.set("nonsense", "x".into()));
        let file = dir.path().join(PERSISTED_FILE);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // The next start prefers what the API set.
        let again = AgentAcl::new(config.clone(), Some(dir.path()));
        assert_eq!(
            (again.agent(), again.dns()),
            ("from-api".into(), "dns-secret".into())
        );
        // Without persistence nothing is read or written.
        config.enable_token_persistence = false;
        let plain = AgentAcl::new(config, Some(dir.path()));
        assert_eq!(plain.agent(), "from-config");
    }
}
