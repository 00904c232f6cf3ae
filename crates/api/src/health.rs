//! `/v1/health/*`: service instances with their checks, and checks by service or state.

use proconsul_types::{CheckServiceNode, HealthCheck};

use crate::{encode, Client, QueryMeta, QueryOptions, Result};

impl Client {
    /// Instances of `service` carrying every tag in `tags`, only passing ones with `passing`.
    pub fn health_service(
        &self,
        service: &str,
        tags: &[String],
        passing: bool,
        opts: &QueryOptions,
    ) -> Result<(Vec<CheckServiceNode>, QueryMeta)> {
        let mut q: Vec<(&str, String)> = tags.iter().map(|t| ("tag", t.clone())).collect();
        if passing {
            q.push(("passing", "1".to_string()));
        }
        let path = format!("/v1/health/service/{}", encode::path(service));
        self.get_json(&path, &q, opts)
    }

    /// Checks of every instance of `service`.
    pub fn health_checks(
        &self,
        service: &str,
        opts: &QueryOptions,
    ) -> Result<(Vec<HealthCheck>, QueryMeta)> {
        let path = format!("/v1/health/checks/{}", encode::path(service));
        self.get_json(&path, &[], opts)
    }

    /// Checks in `state` (`any`, `passing`, `warning`, `critical`), optionally only those of
    /// services carrying every tag in `tags`.
    pub fn health_state(
        &self,
        state: &str,
        tags: &[String],
        opts: &QueryOptions,
    ) -> Result<(Vec<HealthCheck>, QueryMeta)> {
        let q: Vec<(&str, String)> = tags.iter().map(|t| ("tag", t.clone())).collect();
        let path = format!("/v1/health/state/{}", encode::path(state));
        self.get_json(&path, &q, opts)
    }
}

#[cfg(test)]
mod tests {
    use crate::testserver::{serve_once, Canned};
    use crate::{Client, Config, QueryOptions};

    #[test]
    fn service_with_tags_and_passing() {
        let (addr, req) = serve_once(Canned::ok(
            r#"[{"Node":{"Node":"n1"},"Service":{"ID":"web","Service":"web"},"Checks":[]}]"#,
        ));
        let c = Client::new(Config {
            address: addr,
            ..Config::default()
        })
        .unwrap();
        let (rows, _) = c
            .health_service("web", &["v1".into()], true, &QueryOptions::default())
            .unwrap();
        assert_eq!(rows[0].node.node, "n1");
        assert!(req
            .join()
            .unwrap()
            .starts_with("GET /v1/health/service/web?tag=v1&passing=1 HTTP/1.1"));
    }
}
