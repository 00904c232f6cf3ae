//! The agent's gossip pools: Serf LAN for every agent, Serf WAN for servers.
//!
//! This module turns the runtime config into pool options (Consul's tag set, the keyring
//! file, timing profiles), joins (`retry_join`), exposes the LAN members to the server's
//! leader loop as a [`MemberSource`], and carries Consul's user events: an event is a Serf
//! user event named `consul:event:<name>` whose payload is Consul's msgpack `UserEvent`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proconsul_config::RuntimeConfig;
use proconsul_gossip::codec::WireConfig;
use proconsul_gossip::membership::{Member, MemberStatus as SerfStatus, SerfConfig};
use proconsul_gossip::msgpack::{Fields, Writer};
use proconsul_gossip::net::{MergeCheck, Pool, PoolOptions};
use proconsul_gossip::security::{self, Keyring};
use proconsul_gossip::swim::SwimConfig;
use proconsul_server::{LanMember, MemberSource, MemberStatus, WanSource};
use proconsul_types::{member_status, AgentMember, UserEvent};
use tokio_util::sync::CancellationToken;

/// Serf user events carrying Consul events are named with this prefix.
pub(crate) const USER_EVENT_PREFIX: &str = "consul:event:";
/// Version of Consul's event encoding we write.
const USER_EVENT_VERSION: u32 = 1;

/// The LAN pool and, on servers, the WAN pool.
#[derive(Clone)]
pub(crate) struct Gossip {
    pub lan: Pool,
    pub wan: Option<Pool>,
}

/// Consul's LAN tags for this agent.
pub(crate) fn lan_tags(cfg: &RuntimeConfig, node_id: &str) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    tags.insert(
        "role".into(),
        if cfg.server { "consul" } else { "node" }.to_string(),
    );
    tags.insert("dc".into(), cfg.datacenter.clone());
    tags.insert("segment".into(), String::new());
    tags.insert("id".into(), node_id.to_string());
    tags.insert("vsn".into(), "2".into());
    tags.insert("vsn_min".into(), "2".into());
    tags.insert("vsn_max".into(), "3".into());
    tags.insert(
        "build".into(),
        format!(
            "{}:proconsul-{}",
            proconsul_types::CONSUL_COMPAT_VERSION,
            proconsul_types::PROCONSUL_VERSION
        ),
    );
    if cfg.server {
        tags.insert("port".into(), cfg.server_port.to_string());
        if cfg.bootstrap || cfg.dev_mode {
            tags.insert("bootstrap".into(), "1".into());
        } else if cfg.bootstrap_expect > 0 {
            tags.insert("expect".into(), cfg.bootstrap_expect.to_string());
        }
    }
    tags
}

/// Consul's LAN merge delegate: refuse members of another datacenter, and a member whose node
/// ID is already held by a different member (or by us).
fn lan_merge_check(dc: &str, my_name: &str, my_id: &str) -> MergeCheck {
    let (dc, my_name, my_id) = (dc.to_string(), my_name.to_string(), my_id.to_string());
    MergeCheck(Arc::new(move |name, tags, members| {
        if !matches!(
            tags.get("role").map(String::as_str),
            Some("consul" | "node")
        ) {
            return Ok(()); // not a Consul agent (a plain Serf member)
        }
        if let Some(theirs) = tags.get("dc") {
            if *theirs != dc {
                return Err(format!(
                    "Member '{name}' part of wrong datacenter '{theirs}'"
                ));
            }
        }
        let Some(id) = tags.get("id").filter(|i| !i.is_empty()) else {
            return Ok(());
        };
        if *id == my_id && name != my_name {
            return Err(format!(
                "Member '{name}' has conflicting node ID '{id}' with member '{my_name}'"
            ));
        }
        for m in members {
            if m.name != name && m.tags.get("id") == Some(id) && m.status != SerfStatus::Left {
                return Err(format!(
                    "Member '{name}' has conflicting node ID '{id}' with member '{}'",
                    m.name
                ));
            }
        }
        Ok(())
    }))
}

/// The keyring: `<data-dir>/serf/local.keyring` when it exists (Consul keeps installed
/// keys there), else the `encrypt` key, which is then written to that file.
fn load_keyring(cfg: &RuntimeConfig, file: Option<&Path>) -> Result<Option<Keyring>, String> {
    if let Some(f) = file {
        if let Ok(text) = std::fs::read_to_string(f) {
            let keys: Vec<String> = serde_json::from_str(&text)
                .map_err(|e| format!("invalid keyring file {}: {e}", f.display()))?;
            let mut decoded = Vec::new();
            for k in &keys {
                decoded.push(security::decode_key_base64(k).map_err(|e| e.to_string())?);
            }
            if decoded.is_empty() {
                return Ok(None);
            }
            if cfg.encrypt_key.is_some() {
                tracing::warn!(target: "agent", file = %f.display(), "loaded the keyring from file; ignoring the encrypt key in the configuration");
            }
            let primary = decoded.remove(0);
            return Keyring::new(primary, decoded)
                .map(Some)
                .map_err(|e| e.to_string());
        }
    }
    let Some(k) = &cfg.encrypt_key else {
        return Ok(None);
    };
    let kr = Keyring::from_base64(k).map_err(|e| e.to_string())?;
    if let Some(f) = file {
        save_keyring(f, &kr);
    }
    Ok(Some(kr))
}

/// Write the keyring file (primary key first).
pub(crate) fn save_keyring(f: &Path, kr: &Keyring) {
    if let Err(e) = proconsul_gossip::net::save_keyring(f, kr) {
        tracing::warn!(target: "agent", error = %e, "could not write the keyring file");
    }
}

fn serf_dir(cfg: &RuntimeConfig) -> Option<PathBuf> {
    if cfg.dev_mode {
        return None;
    }
    cfg.data_dir.as_ref().map(|d| d.join("serf"))
}

/// The LAN keyring file, when the agent has a data directory.
pub(crate) fn keyring_file(cfg: &RuntimeConfig, wan: bool) -> Option<PathBuf> {
    serf_dir(cfg).map(|d| {
        d.join(if wan {
            "remote.keyring"
        } else {
            "local.keyring"
        })
    })
}

fn wire(cfg: &RuntimeConfig, keyring: Option<Keyring>) -> WireConfig {
    WireConfig {
        keyring,
        verify_incoming: cfg.encrypt_verify_incoming,
        verify_outgoing: cfg.encrypt_verify_outgoing,
        ..WireConfig::default()
    }
}

impl Gossip {
    /// Start the pools (binding their sockets) before anything joins.
    pub(crate) async fn start(
        cfg: &RuntimeConfig,
        node_name: &str,
        node_id: &str,
        shutdown: &CancellationToken,
    ) -> Result<Gossip, String> {
        // The WAN pool first (servers): its port goes into the LAN tags, so that the other
        // servers of this datacenter can flood-join it (`wan_join_port`).
        let wan = match (cfg.server, cfg.serf_wan_bind()) {
            (true, Some(bind)) => {
                let name = format!("{node_name}.{}", cfg.datacenter);
                let advertise = SocketAddr::new(cfg.advertise_addr_wan, bind.port());
                let mut tags = lan_tags(cfg, node_id);
                tags.remove("segment");
                let wan_keys = match load_keyring(cfg, keyring_file(cfg, true).as_deref())? {
                    Some(k) => Some(k),
                    None => load_keyring(cfg, keyring_file(cfg, false).as_deref())?,
                };
                let mut serf = SerfConfig::new(SwimConfig::wan(name, advertise), tags);
                serf.disable_coordinates = cfg.disable_coordinates;
                Some(
                    Pool::start(
                        PoolOptions {
                            serf,
                            bind,
                            wire: wire(cfg, wan_keys),
                            snapshot: serf_dir(cfg).map(|d| d.join("remote.snapshot")),
                            rejoin_after_leave: cfg.rejoin_after_leave,
                            pool: "wan",
                            merge_check: None,
                            keyring_file: keyring_file(cfg, true),
                        },
                        shutdown.clone(),
                    )
                    .await
                    .map_err(|e| format!("failed to start the WAN gossip pool on {bind}: {e}"))?,
                )
            }
            _ => None,
        };
        let bind = cfg.serf_lan_bind();
        let advertise = SocketAddr::new(cfg.advertise_addr, cfg.serf_lan_port);
        let mut tags = lan_tags(cfg, node_id);
        if let Some(w) = &wan {
            tags.insert("wan_join_port".into(), w.local_addr().port().to_string());
        }
        let mut serf = SerfConfig::new(SwimConfig::lan(node_name, advertise), tags);
        serf.reconnect_timeout = cfg.reconnect_timeout;
        serf.disable_coordinates = cfg.disable_coordinates;
        let lan_keys = load_keyring(cfg, keyring_file(cfg, false).as_deref())?;
        let lan = Pool::start(
            PoolOptions {
                serf,
                bind,
                wire: wire(cfg, lan_keys.clone()),
                snapshot: serf_dir(cfg).map(|d| d.join("local.snapshot")),
                rejoin_after_leave: cfg.rejoin_after_leave,
                pool: "lan",
                merge_check: Some(lan_merge_check(&cfg.datacenter, node_name, node_id)),
                keyring_file: keyring_file(cfg, false),
            },
            shutdown.clone(),
        )
        .await
        .map_err(|e| format!("failed to start the LAN gossip pool on {bind}: {e}"))?;
        Ok(Gossip { lan, wan })
    }

    /// The pool for `wan`, if this agent has it.
    pub(crate) fn pool(&self, wan: bool) -> Option<&Pool> {
        if wan {
            self.wan.as_ref()
        } else {
            Some(&self.lan)
        }
    }

    /// Serf's `Stats` for one pool, as `info` prints them (string values, Consul's keys).
    pub(crate) fn stats(pool: &Pool) -> serde_json::Value {
        let members = pool.members();
        let count = |s: SerfStatus| members.iter().filter(|m| m.status == s).count().to_string();
        let st = pool.stats();
        serde_json::json!({
            "coordinate_resets": st.coordinate_resets.to_string(),
            "encrypted": pool.keyring().is_some().to_string(),
            "event_queue": "0",
            "event_time": st.event_time.to_string(),
            "failed": count(SerfStatus::Failed),
            "health_score": st.health_score.to_string(),
            "intent_queue": "0",
            "left": count(SerfStatus::Left),
            "member_time": st.member_time.to_string(),
            "members": members.len().to_string(),
            "query_queue": "0",
            "query_time": st.query_time.to_string(),
        })
    }

    /// Leave both pools gracefully.
    pub(crate) async fn leave(&self) {
        if let Some(w) = &self.wan {
            w.leave().await;
        }
        self.lan.leave().await;
    }

    /// Stop both pools without leaving.
    pub(crate) async fn shutdown(&self) {
        if let Some(w) = &self.wan {
            w.shutdown().await;
        }
        self.lan.shutdown().await;
    }
}

/// A Serf member as `/v1/agent/members` shows it.
pub(crate) fn agent_member(m: &Member) -> AgentMember {
    AgentMember {
        name: m.name.clone(),
        addr: m.addr.ip().to_string(),
        port: m.addr.port(),
        tags: m.tags.clone(),
        status: match m.status {
            SerfStatus::Alive => member_status::ALIVE,
            SerfStatus::Leaving => member_status::LEAVING,
            SerfStatus::Left => member_status::LEFT,
            SerfStatus::Failed => member_status::FAILED,
        },
        protocol_min: m.vsn[0],
        protocol_max: m.vsn[1],
        protocol_cur: m.vsn[2],
        delegate_min: m.vsn[3],
        delegate_max: m.vsn[4],
        delegate_cur: m.vsn[5],
    }
}

/// The LAN pool as the leader's member source: Consul agents of our datacenter only (a
/// plain Serf agent sharing the pool is not a catalog node).
pub(crate) struct LanMembers {
    pub pool: Pool,
    pub datacenter: String,
}

impl MemberSource for LanMembers {
    fn members(&self) -> Vec<LanMember> {
        self.pool
            .members()
            .into_iter()
            .filter(|m| {
                m.tags.get("dc") == Some(&self.datacenter)
                    && matches!(
                        m.tags.get("role").map(String::as_str),
                        Some("consul" | "node")
                    )
            })
            .map(|m| LanMember {
                id: m.tags.get("id").cloned().unwrap_or_default(),
                addr: m.addr.ip().to_string(),
                status: match m.status {
                    SerfStatus::Alive | SerfStatus::Leaving => MemberStatus::Alive,
                    SerfStatus::Failed => MemberStatus::Failed,
                    SerfStatus::Left => MemberStatus::Left,
                },
                server_port: match m.tags.get("role").map(String::as_str) {
                    Some("consul") => m.tags.get("port").and_then(|p| p.parse().ok()),
                    _ => None,
                },
                expect: m.tags.get("expect").and_then(|e| e.parse().ok()),
                meta: BTreeMap::new(),
                name: m.name,
            })
            .collect()
    }
}

/// The WAN pool as the server's router sees it ([`WanSource`]): alive servers per datacenter,
/// ordered by the round-trip time this server's WAN coordinate estimates.
pub(crate) struct WanServers {
    pub pool: Pool,
}

impl WanServers {
    /// Alive servers: (datacenter, RPC address, estimated RTT).
    fn servers_by_dc(&self) -> Vec<(String, String, Option<std::time::Duration>)> {
        let own = self.pool.coordinate();
        let coords = self.pool.cached_coordinates();
        self.pool
            .members()
            .into_iter()
            .filter(|m| {
                m.status == SerfStatus::Alive
                    && m.tags.get("role").map(String::as_str) == Some("consul")
            })
            .filter_map(|m| {
                let dc = m.tags.get("dc")?.clone();
                let port: u16 = m.tags.get("port")?.parse().ok()?;
                let rtt = match (&own, coords.get(&m.name)) {
                    (Some(a), Some(b)) => a.distance_to(b),
                    _ => None,
                };
                Some((dc, SocketAddr::new(m.addr.ip(), port).to_string(), rtt))
            })
            .collect()
    }
}

/// Nearest first; an unknown distance after every known one.
fn by_rtt(a: &Option<std::time::Duration>, b: &Option<std::time::Duration>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

impl WanSource for WanServers {
    fn servers(&self, datacenter: &str) -> Vec<String> {
        let mut s: Vec<(Option<std::time::Duration>, String)> = self
            .servers_by_dc()
            .into_iter()
            .filter(|(dc, _, _)| dc == datacenter)
            .map(|(_, addr, rtt)| (rtt, addr))
            .collect();
        s.sort_by(|a, b| by_rtt(&a.0, &b.0).then_with(|| a.1.cmp(&b.1)));
        s.into_iter().map(|(_, a)| a).collect()
    }

    /// Consul's `GetDatacentersByDistance`: by the median RTT to each datacenter's servers.
    fn datacenters(&self) -> Vec<String> {
        let mut rtts: BTreeMap<String, Vec<Option<std::time::Duration>>> = BTreeMap::new();
        for (dc, _, rtt) in self.servers_by_dc() {
            rtts.entry(dc).or_default().push(rtt);
        }
        let mut dcs: Vec<(Option<std::time::Duration>, String)> = rtts
            .into_iter()
            .map(|(dc, mut r)| {
                r.sort_by(by_rtt);
                (r[r.len() / 2], dc)
            })
            .collect();
        dcs.sort_by(|a, b| by_rtt(&a.0, &b.0).then_with(|| a.1.cmp(&b.1)));
        dcs.into_iter().map(|(_, dc)| dc).collect()
    }
}

/// Where a server broadcasts user events fired for its datacenter from another one: the LAN
/// pool, as a local `event fire` would.
pub(crate) struct LanEvents {
    pub pool: Pool,
}

impl proconsul_server::EventSink for LanEvents {
    fn fire(&self, event: UserEvent) -> proconsul_server::BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            validate_user_event(&event)?;
            let name = format!("{USER_EVENT_PREFIX}{}", event.name);
            self.pool
                .user_event(name, encode_user_event(&event), false)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Consul's msgpack encoding of a user event (`ID`, `n`, `p`, `nf`, `sf`, `tf`, `v`; the
/// optional ones only when set).
pub(crate) fn encode_user_event(ev: &UserEvent) -> Vec<u8> {
    let payload = ev.payload.as_deref().unwrap_or_default();
    let filters: Vec<(&str, &String)> = [
        ("nf", &ev.node_filter),
        ("sf", &ev.service_filter),
        ("tf", &ev.tag_filter),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect();
    let mut w = Writer::with_prefix(&[]);
    w.map_len(3 + u32::from(!payload.is_empty()) + filters.len() as u32);
    w.str("ID").str(&ev.id).str("n").str(&ev.name);
    if !payload.is_empty() {
        w.str("p").bytes(payload);
    }
    for (k, v) in filters {
        w.str(k).str(v);
    }
    w.str("v").uint(u64::from(ev.version));
    w.finish()
}

/// Decode Consul's msgpack user event.
pub(crate) fn decode_user_event(buf: &[u8]) -> Option<UserEvent> {
    let f = Fields::decode(buf).ok()?;
    let s = |k: &str| {
        if f.has(k) {
            f.string(k).unwrap_or_default()
        } else {
            String::new()
        }
    };
    let payload = if f.has("p") {
        f.bytes("p").ok().filter(|p| !p.is_empty())
    } else {
        None
    };
    Some(UserEvent {
        id: s("ID"),
        name: s("n"),
        payload,
        node_filter: s("nf"),
        service_filter: s("sf"),
        tag_filter: s("tf"),
        version: if f.has("v") {
            f.uint("v").unwrap_or(0) as u32
        } else {
            0
        },
        ltime: 0,
    })
}

/// Validate a user event's filters (Consul's `validateUserEventParams`).
pub(crate) fn validate_user_event(ev: &UserEvent) -> Result<(), String> {
    if ev.name.is_empty() {
        return Err("User event missing name".into());
    }
    if !ev.tag_filter.is_empty() && ev.service_filter.is_empty() {
        return Err("Cannot provide tag filter without service filter".into());
    }
    for (what, f) in [
        ("node", &ev.node_filter),
        ("service", &ev.service_filter),
        ("tag", &ev.tag_filter),
    ] {
        if !f.is_empty() {
            regex_lite::Regex::new(f).map_err(|e| format!("Invalid {what} filter: {e}"))?;
        }
    }
    Ok(())
}

/// A fresh event ready to fire: ID and version set.
pub(crate) fn prepare_user_event(mut ev: UserEvent) -> UserEvent {
    ev.id = uuid::Uuid::new_v4().to_string();
    ev.version = USER_EVENT_VERSION;
    ev.ltime = 0;
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_event_round_trips_in_consul_encoding() {
        let ev = prepare_user_event(UserEvent {
            name: "deploy".into(),
            payload: Some(b"v42".to_vec()),
            node_filter: "web.*".into(),
            ..Default::default()
        });
        let back = decode_user_event(&encode_user_event(&ev)).unwrap();
        assert_eq!(back, ev);
        let bare = prepare_user_event(UserEvent {
            name: "x".into(),
            ..Default::default()
        });
        assert_eq!(decode_user_event(&encode_user_event(&bare)).unwrap(), bare);
        assert!(validate_user_event(&UserEvent {
            name: "x".into(),
            tag_filter: "a".into(),
            ..Default::default()
        })
        .is_err());
    }
}
