//! `/v1/coordinate/*`: network coordinates (what `rtt` computes distances from).

use proconsul_types::{CoordinateEntry, CoordinateUpdateRequest, DatacenterCoordinates};

use crate::{encode, Client, QueryMeta, QueryOptions, Result};

impl Client {
    /// WAN coordinates of the servers of every known datacenter.
    pub fn coordinate_datacenters(&self) -> Result<Vec<DatacenterCoordinates>> {
        Ok(self
            .get_json("/v1/coordinate/datacenters", &[], &QueryOptions::default())?
            .0)
    }

    /// LAN coordinates of every node of the datacenter.
    pub fn coordinate_nodes(
        &self,
        opts: &QueryOptions,
    ) -> Result<(Vec<CoordinateEntry>, QueryMeta)> {
        self.get_json("/v1/coordinate/nodes", &[], opts)
    }

    /// LAN coordinates of one node (an error with status 404 when it has none).
    pub fn coordinate_node(
        &self,
        node: &str,
        opts: &QueryOptions,
    ) -> Result<(Vec<CoordinateEntry>, QueryMeta)> {
        let path = format!("/v1/coordinate/node/{}", encode::path(node));
        self.get_json(&path, &[], opts)
    }

    /// Set a node's LAN coordinate.
    pub fn coordinate_update(&self, req: &CoordinateUpdateRequest) -> Result<()> {
        let body = serde_json::to_vec(req)?;
        self.put("/v1/coordinate/update", &[], &body).map(drop)
    }
}
