//! `/v1/agent/*`: the local agent's view and controls.

use proconsul_types::AgentMember;

use crate::{encode, Client, QueryOptions, Result};

impl Client {
    /// `/v1/agent/self` as untyped JSON (its shape is large and version-dependent).
    pub fn agent_self(&self) -> Result<serde_json::Value> {
        Ok(self
            .get_json::<serde_json::Value>("/v1/agent/self", &[], &QueryOptions::default())?
            .0)
    }

    /// Members of the LAN pool, or of the WAN pool with `wan` (servers only).
    pub fn agent_members(&self, wan: bool) -> Result<Vec<AgentMember>> {
        let q: Vec<(&str, String)> = if wan {
            vec![("wan", "1".to_string())]
        } else {
            Vec::new()
        };
        Ok(self
            .get_json::<Vec<AgentMember>>("/v1/agent/members", &q, &QueryOptions::default())?
            .0)
    }

    /// Ask the agent to leave the cluster gracefully and shut down.
    pub fn agent_leave(&self) -> Result<()> {
        self.put("/v1/agent/leave", &[], b"").map(drop)
    }

    /// Ask the agent to reload its configuration files.
    pub fn agent_reload(&self) -> Result<()> {
        self.put("/v1/agent/reload", &[], b"").map(drop)
    }

    /// Ask the agent to join the member at `addr` (LAN, or WAN with `wan`).
    pub fn agent_join(&self, addr: &str, wan: bool) -> Result<()> {
        let q: Vec<(&str, String)> = if wan {
            vec![("wan", "1".to_string())]
        } else {
            Vec::new()
        };
        let path = format!("/v1/agent/join/{}", encode::path(addr));
        self.put(&path, &q, b"").map(drop)
    }
}

#[cfg(test)]
mod tests {
    use crate::testserver::{serve_once, Canned};
    use crate::{Client, Config};

    fn client(addr: String) -> Client {
        Client::new(Config {
            address: addr,
            ..Config::default()
        })
        .unwrap()
    }

    #[test]
    fn members_decode() {
        let (addr, req) = serve_once(Canned::ok(
            r#"[{"Name":"n1","Addr":"10.0.0.1","Port":8301,"Tags":{"role":"consul"},"Status":1,
                "ProtocolMin":1,"ProtocolMax":5,"ProtocolCur":2,"DelegateMin":2,"DelegateMax":5,"DelegateCur":4}]"#,
        ));
        let m = client(addr).agent_members(true).unwrap();
        assert_eq!(m[0].name, "n1");
        assert_eq!(m[0].tags["role"], "consul");
        assert!(req
            .join()
            .unwrap()
            .starts_with("GET /v1/agent/members?wan=1 HTTP/1.1"));
    }

    #[test]
    fn join_is_a_put() {
        let (addr, req) = serve_once(Canned::ok(""));
        client(addr).agent_join("10.0.0.2:8301", false).unwrap();
        assert!(req
            .join()
            .unwrap()
            .starts_with("PUT /v1/agent/join/10.0.0.2:8301 HTTP/1.1"));
    }
}
