//! `/v1/status/*`: who leads, who votes.

use crate::{Client, QueryOptions, Result};

impl Client {
    /// The leader's RPC address (`10.0.0.1:8300`), or an empty string when there is none.
    pub fn status_leader(&self) -> Result<String> {
        Ok(self
            .get_json::<String>("/v1/status/leader", &[], &QueryOptions::default())?
            .0)
    }

    /// The Raft peers' RPC addresses.
    pub fn status_peers(&self) -> Result<Vec<String>> {
        Ok(self
            .get_json::<Vec<String>>("/v1/status/peers", &[], &QueryOptions::default())?
            .0)
    }
}

#[cfg(test)]
mod tests {
    use crate::testserver::{serve_once, Canned};
    use crate::{Client, Config};

    #[test]
    fn leader_is_a_json_string() {
        let (addr, _) = serve_once(Canned::ok("\"10.0.0.1:8300\""));
        let c = Client::new(Config {
            address: addr,
            ..Config::default()
        })
        .unwrap();
        assert_eq!(c.status_leader().unwrap(), "10.0.0.1:8300");
    }
}
