//! Operator endpoints: `/v1/operator/raft/*` (peers, leadership transfer), `/v1/operator/keyring`,
//! `/v1/operator/autopilot/*`, and `/v1/snapshot` (save and restore).

impl crate::Client {
    /// `/v1/operator/raft/configuration`.
    pub fn operator_raft_configuration(
        &self,
        stale: bool,
    ) -> crate::Result<proconsul_types::RaftConfiguration> {
        let opts = crate::QueryOptions {
            stale,
            ..Default::default()
        };
        self.get_json("/v1/operator/raft/configuration", &[], &opts)
            .map(|(c, _)| c)
    }

    /// `DELETE /v1/operator/raft/peer` by `id` (a node ID) or `address` (`ip:port`).
    pub fn operator_raft_remove_peer(&self, id: &str, address: &str) -> crate::Result<()> {
        let q: Vec<(&str, String)> = if id.is_empty() {
            vec![("address", address.to_string())]
        } else {
            vec![("id", id.to_string())]
        };
        self.delete("/v1/operator/raft/peer", &q).map(drop)
    }

    /// `POST /v1/operator/raft/transfer-leader`, to the server with node ID `id` (any other
    /// voter if empty); returns Consul's `Success`.
    pub fn operator_raft_transfer_leader(&self, id: &str) -> crate::Result<bool> {
        let q: Vec<(&str, String)> = if id.is_empty() {
            Vec::new()
        } else {
            vec![("id", id.to_string())]
        };
        let reply = self
            .request(
                crate::client::Method::Post,
                "/v1/operator/raft/transfer-leader",
                &q,
                Some(&[]),
            )?
            .require_ok()?;
        let v: serde_json::Value = serde_json::from_slice(&reply.body)?;
        Ok(v["Success"].as_bool().unwrap_or(false))
    }
}

impl crate::Client {
    /// `GET /v1/operator/keyring`: the installed keys, one answer per gossip pool.
    pub fn operator_keyring_list(&self) -> crate::Result<Vec<proconsul_types::KeyringResponse>> {
        self.get_json("/v1/operator/keyring", &[], &crate::QueryOptions::default())
            .map(|(r, _)| r)
    }

    /// `POST` (install), `PUT` (use) or `DELETE` (remove) `/v1/operator/keyring`.
    pub fn operator_keyring_change(&self, op: &str, key: &str) -> crate::Result<()> {
        let body = serde_json::to_vec(&proconsul_types::KeyringRequest {
            key: key.to_string(),
        })?;
        let method = match op {
            "install" => crate::client::Method::Post,
            "use" => crate::client::Method::Put,
            _ => crate::client::Method::Delete,
        };
        self.request(method, "/v1/operator/keyring", &[], Some(&body))?
            .require_ok()
            .map(drop)
    }
}

impl crate::Client {
    /// `GET /v1/snapshot`: a snapshot archive (the leader's state unless `stale`).
    pub fn snapshot_save(&self, stale: bool) -> crate::Result<Vec<u8>> {
        let opts = crate::QueryOptions {
            stale,
            ..Default::default()
        };
        Ok(self.get("/v1/snapshot", &[], &opts)?.require_ok()?.body)
    }

    /// `PUT /v1/snapshot`: restore an archive on the servers.
    pub fn snapshot_restore(&self, archive: &[u8]) -> crate::Result<()> {
        self.put("/v1/snapshot", &[], archive).map(drop)
    }
}

impl crate::Client {
    /// `/v1/operator/autopilot/configuration`.
    pub fn operator_autopilot_configuration(
        &self,
    ) -> crate::Result<proconsul_types::AutopilotConfiguration> {
        self.get_json(
            "/v1/operator/autopilot/configuration",
            &[],
            &crate::QueryOptions::default(),
        )
        .map(|(c, _)| c)
    }

    /// `PUT /v1/operator/autopilot/configuration?cas=<conf.ModifyIndex>`: whether the
    /// check-and-set won.
    pub fn operator_autopilot_cas_configuration(
        &self,
        conf: &proconsul_types::AutopilotConfiguration,
    ) -> crate::Result<bool> {
        let body = serde_json::to_vec(conf)?;
        let out = self.put(
            "/v1/operator/autopilot/configuration",
            &[("cas", conf.modify_index.to_string())],
            &body,
        )?;
        Ok(String::from_utf8_lossy(&out).trim() == "true")
    }

    /// `/v1/operator/autopilot/state`.
    pub fn operator_autopilot_state(&self) -> crate::Result<proconsul_types::AutopilotState> {
        self.get_json(
            "/v1/operator/autopilot/state",
            &[],
            &crate::QueryOptions::default(),
        )
        .map(|(c, _)| c)
    }
}

/// `/v1/operator/usage`'s body: counts per datacenter.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct UsageResponse {
    usage: std::collections::BTreeMap<String, proconsul_types::Usage>,
}

impl crate::Client {
    /// `/v1/operator/usage`: service, instance and node counts per datacenter — every
    /// datacenter's with `global` (Consul's `?global`), else the agent's own.
    pub fn operator_usage(
        &self,
        global: bool,
        stale: bool,
    ) -> crate::Result<std::collections::BTreeMap<String, proconsul_types::Usage>> {
        let q: Vec<(&str, String)> = if global {
            vec![("global", String::new())]
        } else {
            Vec::new()
        };
        let opts = crate::QueryOptions::stale(stale);
        self.get_json::<UsageResponse>("/v1/operator/usage", &q, &opts)
            .map(|(r, _)| r.usage)
    }
}
