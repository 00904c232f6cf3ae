//! `/v1/catalog/*`: datacenters, nodes and services as the servers know them.

use std::collections::BTreeMap;

use proconsul_types::{Node, ServiceNode};

use crate::{encode, Client, QueryMeta, QueryOptions, Result};

impl Client {
    /// Known datacenters, nearest first.
    pub fn catalog_datacenters(&self) -> Result<Vec<String>> {
        Ok(self
            .get_json::<Vec<String>>("/v1/catalog/datacenters", &[], &QueryOptions::default())?
            .0)
    }

    /// Every node of the datacenter.
    pub fn catalog_nodes(&self, opts: &QueryOptions) -> Result<(Vec<Node>, QueryMeta)> {
        self.get_json("/v1/catalog/nodes", &[], opts)
    }

    /// Service names with the union of their tags.
    pub fn catalog_services(
        &self,
        opts: &QueryOptions,
    ) -> Result<(BTreeMap<String, Vec<String>>, QueryMeta)> {
        self.get_json("/v1/catalog/services", &[], opts)
    }

    /// Instances of service `name`, optionally only those carrying `tag`.
    pub fn catalog_service(
        &self,
        name: &str,
        tag: Option<&str>,
        opts: &QueryOptions,
    ) -> Result<(Vec<ServiceNode>, QueryMeta)> {
        let q: Vec<(&str, String)> = tag
            .map(|t| vec![("tag", t.to_string())])
            .unwrap_or_default();
        let path = format!("/v1/catalog/service/{}", encode::path(name));
        self.get_json(&path, &q, opts)
    }
}

#[cfg(test)]
mod tests {
    use crate::testserver::{serve_once, Canned};
    use crate::{Client, Config, QueryOptions};

    fn client(addr: String) -> Client {
        Client::new(Config {
            address: addr,
            ..Config::default()
        })
        .unwrap()
    }

    #[test]
    fn services_map_and_null_nodes() {
        let (addr, _) = serve_once(Canned::ok(r#"{"consul":[],"web":["v1","v2"]}"#));
        let (s, _) = client(addr)
            .catalog_services(&QueryOptions::default())
            .unwrap();
        assert_eq!(s["web"], vec!["v1", "v2"]);

        let (addr, _) = serve_once(Canned::ok("null"));
        let (n, _) = client(addr)
            .catalog_nodes(&QueryOptions::default())
            .unwrap();
        assert!(n.is_empty());
    }

    #[test]
    fn service_with_tag() {
        let (addr, req) = serve_once(Canned::ok(
            r#"[{"Node":"n1","Address":"10.0.0.1","ServiceName":"web","ServicePort":80}]"#,
        ));
        let (s, _) = client(addr)
            .catalog_service("web", Some("v1"), &QueryOptions::default())
            .unwrap();
        assert_eq!((s[0].node.as_str(), s[0].service_port), ("n1", 80));
        assert!(req
            .join()
            .unwrap()
            .starts_with("GET /v1/catalog/service/web?tag=v1 HTTP/1.1"));
    }
}
