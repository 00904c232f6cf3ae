//! `?filter=` on every endpoint Consul filters, with that endpoint's selectors; a bad
//! expression is refused with go-bexpr's message before anything is read.

use std::time::Duration;

use proconsul_testkit::TestAgent;
use serde_json::json;

/// Percent-encode a filter for a query string.
fn q(filter: &str) -> String {
    form_urlencoded::byte_serialize(filter.as_bytes()).collect()
}

async fn setup(a: &TestAgent) {
    for body in [
        json!({"Name": "web", "ID": "web-1", "Port": 80, "Tags": ["primary", "v1"],
               "Meta": {"env": "prod"}, "Check": {"TTL": "30s", "Status": "passing"}}),
        json!({"Name": "web", "ID": "web-2", "Port": 81, "Tags": ["v2"],
               "Meta": {"env": "dev"}, "Check": {"TTL": "30s"}}),
        json!({"Name": "db", "ID": "db-1", "Port": 5432, "Tags": ["primary"]}),
    ] {
        let r = a
            .put("/v1/agent/service/register", body.to_string().as_bytes())
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = a
        .put(
            "/v1/catalog/register",
            br#"{"Node":"ext","Address":"10.1.2.3","NodeMeta":{"rack":"r1"},
                 "Service":{"Service":"cache","Port":6379,"Tags":["v2"]}}"#,
        )
        .await;
    assert_eq!(r.status, 200);
    // Anti-entropy has written the agent's services to the catalog.
    proconsul_testkit::wait_until(
        Duration::from_secs(10),
        "services in the catalog",
        || async {
            a.get_json("/v1/catalog/service/web")
                .await
                .as_array()
                .map(Vec::len)
                == Some(2)
                && a.get_json("/v1/health/checks/web")
                    .await
                    .as_array()
                    .map(Vec::len)
                    == Some(2)
        },
    )
    .await;
}

fn ids(v: &serde_json::Value, field: &str) -> Vec<String> {
    let mut out: Vec<String> = match v {
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| {
                field
                    .split('.')
                    .fold(i, |v, k| &v[k])
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect(),
        serde_json::Value::Object(m) => m.keys().cloned().collect(),
        _ => panic!("{v}"),
    };
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_filters_with_its_selectors() {
    let a = TestAgent::dev().await;
    setup(&a).await;
    let get = |path: String| {
        let a = &a;
        async move { a.get_json(&path).await }
    };

    let v = get(format!(
        "/v1/agent/services?filter={}",
        q(r#"Meta.env == "prod" or Port == 5432"#)
    ))
    .await;
    assert_eq!(ids(&v, ""), ["db-1", "web-1"]);
    let v = get(format!(
        "/v1/agent/checks?filter={}",
        q("Status == passing")
    ))
    .await;
    assert_eq!(ids(&v, ""), ["service:web-1"]);
    let v = get(format!(
        "/v1/agent/members?filter={}",
        q("Tags.role == consul")
    ))
    .await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    let v = get(format!(
        "/v1/agent/members?filter={}",
        q("Tags.role == node")
    ))
    .await;
    assert_eq!(v, json!([]));

    let v = get(format!("/v1/catalog/nodes?filter={}", q("Meta.rack == r1"))).await;
    assert_eq!(ids(&v, "Node"), ["ext"]);
    let v = get(format!(
        "/v1/catalog/services?filter={}",
        q("v2 in ServiceTags")
    ))
    .await;
    assert_eq!(
        v,
        json!({"cache": ["v2"], "web": ["v2"]}),
        "tags of passing instances only"
    );
    let v = get(format!(
        "/v1/catalog/service/web?filter={}",
        q("ServicePort == 81")
    ))
    .await;
    assert_eq!(ids(&v, "ServiceID"), ["web-2"]);
    let node = a.get_json("/v1/agent/self").await["Config"]["NodeName"]
        .as_str()
        .unwrap()
        .to_string();
    let v = get(format!(
        "/v1/catalog/node/{node}?filter={}",
        q("primary in Tags")
    ))
    .await;
    assert_eq!(ids(&v["Services"], ""), ["db-1", "web-1"]);
    let v = get(format!(
        "/v1/catalog/node-services/{node}?filter={}",
        q("Service == db")
    ))
    .await;
    assert_eq!(ids(&v["Services"], "ID"), ["db-1"]);

    let v = get(format!(
        "/v1/health/node/{node}?filter={}",
        q("CheckID == serfHealth")
    ))
    .await;
    assert_eq!(ids(&v, "CheckID"), ["serfHealth"]);
    let v = get(format!(
        "/v1/health/checks/web?filter={}",
        q(r#"ServiceID != "web-1""#)
    ))
    .await;
    assert_eq!(ids(&v, "ServiceID"), ["web-2"]);
    let v = get(format!(
        "/v1/health/state/any?filter={}",
        q("ServiceName == web and Status == critical")
    ))
    .await;
    assert_eq!(ids(&v, "ServiceID"), ["web-2"]);
    let v = get(format!(
        "/v1/health/service/web?filter={}",
        q("not Checks.Status != passing and Service.Meta.env matches `^pr`")
    ))
    .await;
    assert_eq!(ids(&v, "Service.ID"), ["web-1"]);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_filters_are_refused_with_the_parsers_message() {
    let a = TestAgent::dev().await;
    for (path, filter, message) in [
        (
            "/v1/catalog/nodes",
            "foo",
            r#"Failed to create boolean expression evaluator: 1:4 (3): no match found, expected: "!=", ".", "==", "[", [ \t\r\n] or [a-zA-Z0-9_]"#,
        ),
        (
            "/v1/health/service/web",
            "Service.Nope == 1",
            r#"Failed to create boolean expression evaluator: Selector "Service.Nope" is not valid"#,
        ),
        (
            "/v1/agent/services",
            "Tags == x",
            r#"Failed to create boolean expression evaluator: Invalid match operator "Equal" for selector "Tags""#,
        ),
        (
            "/v1/catalog/service/web?index=1&wait=10s",
            "Address == 10.10.10.10",
            r#"Failed to create boolean expression evaluator: 1:17 (16): rule "number": Invalid number literal"#,
        ),
    ] {
        let sep = if path.contains('?') { '&' } else { '?' };
        let r = a.get(&format!("{path}{sep}filter={}", q(filter))).await;
        assert_eq!((r.status, r.text().as_str()), (400, message), "{path}");
    }
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_name_selects_nothing_without_peerings() {
    let a = TestAgent::dev().await;
    setup(&a).await;
    assert_eq!(
        a.get_json("/v1/catalog/service/web")
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        a.get_json("/v1/catalog/service/web?peer=other").await,
        json!([])
    );
    assert_eq!(
        a.get_json("/v1/health/service/web?peer=other").await,
        json!([])
    );
    a.stop().await;
}
