//! `/v1/operator/raft/*`: the servers' Raft configuration.

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
}
