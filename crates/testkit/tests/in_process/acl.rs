//! ACLs end to end over HTTP: bootstrap state, policies and tokens, scoped access, and a deny
//! table that walks every route of the API with a token lacking the rule it needs (403, or
//! the item filtered out of a list) and with one holding it (not refused). A route missing
//! from the table fails the test: its permission has to be decided.

use std::collections::BTreeSet;
use std::time::Duration;

use proconsul_testkit::http::request_with;
use proconsul_testkit::{dev_flags, wait_until, Response, TestAgent};

const ROOT: &str = "11111111-2222-3333-4444-555555555555";

async fn acl_agent() -> TestAgent {
    acl_agent_with(|_| {}).await
}

/// A `-dev` agent with ACLs on (deny by default, `ROOT` the initial management token), then
/// `tweak`ed, once the management token resolves.
async fn acl_agent_with(tweak: impl FnOnce(&mut proconsul_config::RuntimeConfig)) -> TestAgent {
    let t = TestAgent::start_with(dev_flags(), |c| {
        c.acl.enabled = true;
        c.acl.default_allow = false;
        c.acl.tokens.initial_management = ROOT.into();
        tweak(c);
    })
    .await;
    wait_until(
        Duration::from_secs(10),
        "initial management token",
        || async {
            call(&t, ROOT, "GET", "/v1/acl/token/self", b"")
                .await
                .status
                == 200
        },
    )
    .await;
    t
}

async fn call(t: &TestAgent, token: &str, method: &str, path: &str, body: &[u8]) -> Response {
    let headers: Vec<(&str, &str)> = if token.is_empty() {
        vec![]
    } else {
        vec![("X-Consul-Token", token)]
    };
    request_with(t.http, method, path, &headers, body).await
}

/// A policy holding `rules` and a token linked to it; returns the token's secret.
async fn token_with(t: &TestAgent, name: &str, rules: &str) -> String {
    let body = serde_json::json!({ "Name": name, "Rules": rules });
    let r = call(
        t,
        ROOT,
        "PUT",
        "/v1/acl/policy",
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "policy {name}: {}", r.text());
    let id = r.json()["ID"].as_str().unwrap().to_string();
    let body = serde_json::json!({ "Description": name, "Policies": [{ "ID": id }] });
    let r = call(t, ROOT, "PUT", "/v1/acl/token", body.to_string().as_bytes()).await;
    assert_eq!(r.status, 200, "token {name}: {}", r.text());
    r.json()["SecretID"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_policies_tokens_and_scoped_kv() {
    let t = acl_agent().await;
    // The initial management token bootstrapped the ACL system.
    let r = call(&t, "", "PUT", "/v1/acl/bootstrap", b"").await;
    assert_eq!(r.status, 403);
    assert!(
        r.text()
            .starts_with("Permission denied: ACL bootstrap no longer allowed (reset index: "),
        "{}",
        r.text()
    );
    let r = call(&t, ROOT, "GET", "/v1/acl/token/self", b"").await;
    assert_eq!(r.header("X-Consul-Default-ACL-Policy"), Some("deny"));
    let me = r.json();
    assert_eq!(me["Description"], "Initial Management Token");
    assert_eq!(me["Policies"][0]["Name"], "global-management");
    // One datacenter: replication is off and needs no permission.
    let r = call(&t, "", "GET", "/v1/acl/replication", b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rep = r.json();
    assert_eq!(
        (rep["Enabled"].clone(), rep["SourceDatacenter"].clone()),
        (false.into(), "".into())
    );
    assert_eq!(rep["LastSuccess"], "0001-01-01T00:00:00Z");
    // Both builtin tokens are listed, secrets shown to a management token.
    let list = call(&t, ROOT, "GET", "/v1/acl/tokens", b"").await.json();
    let secrets: BTreeSet<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["SecretID"].as_str().unwrap())
        .collect();
    assert!(
        secrets.contains(ROOT) && secrets.contains("anonymous"),
        "{list}"
    );

    let app = token_with(&t, "app-read", r#"key_prefix "app/" { policy = "read" }"#).await;
    assert_eq!(
        call(&t, ROOT, "PUT", "/v1/kv/app/a", b"1").await.text(),
        "true"
    );
    assert_eq!(
        call(&t, ROOT, "PUT", "/v1/kv/other/b", b"2").await.text(),
        "true"
    );

    assert_eq!(
        call(&t, &app, "GET", "/v1/kv/app/a?raw", b"").await.text(),
        "1"
    );
    let r = call(&t, &app, "PUT", "/v1/kv/app/a", b"x").await;
    assert_eq!(r.status, 403);
    assert!(
        r.text()
            .ends_with("lacks permission 'key:write' on \"app/a\""),
        "{}",
        r.text()
    );
    assert_eq!(
        call(&t, &app, "GET", "/v1/kv/other/b", b"").await.status,
        403
    );
    // A list is cut to what the token reads, and says so.
    let r = call(&t, &app, "GET", "/v1/kv/?recurse", b"").await;
    assert_eq!(r.status, 200);
    let listed = r.json();
    let keys: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["app/a"]);
    assert_eq!(r.header("X-Consul-Results-Filtered-By-ACLs"), Some("true"));
    // Nothing changed by the refused write.
    assert_eq!(
        call(&t, ROOT, "GET", "/v1/kv/app/a?raw", b"").await.text(),
        "1"
    );

    // No token is the anonymous token, which the default policy (deny) governs.
    let r = call(&t, "", "GET", "/v1/kv/app/a", b"").await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.text(),
        "Permission denied: anonymous token lacks permission 'key:read' on \"app/a\". The anonymous token is used implicitly when a request does not specify a token."
    );
    // An unknown secret is no one.
    let r = call(&t, "no-such-secret", "GET", "/v1/kv/app/a", b"").await;
    assert_eq!((r.status, r.text()), (403, "ACL not found".to_string()));

    // A policy edit takes effect at once (resolved tokens follow the ACL tables' index).
    let pid = call(&t, ROOT, "GET", "/v1/acl/policy/name/app-read", b"")
        .await
        .json()["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let body = serde_json::json!({ "Name": "app-read", "Rules": r#"key_prefix "app/" { policy = "write" }"# });
    let r = call(
        &t,
        ROOT,
        "PUT",
        &format!("/v1/acl/policy/{pid}"),
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        call(&t, &app, "PUT", "/v1/kv/app/a", b"y").await.text(),
        "true"
    );

    // The anonymous token may be given rules; a list cut for a caller without a token does
    // not say so (Consul's rule).
    let body = format!(r#"{{"Policies":[{{"ID":"{pid}"}}]}}"#);
    let r = call(
        &t,
        ROOT,
        "PUT",
        "/v1/acl/token/00000000-0000-0000-0000-000000000002",
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = call(&t, "", "GET", "/v1/kv/?recurse", b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().as_array().unwrap().len(), 1, "{}", r.text());
    assert_eq!(r.header("X-Consul-Results-Filtered-By-ACLs"), None);

    // Deleting the token revokes it.
    let accessor = call(&t, &app, "GET", "/v1/acl/token/self", b"")
        .await
        .json()["AccessorID"]
        .as_str()
        .unwrap()
        .to_string();
    let r = call(
        &t,
        ROOT,
        "DELETE",
        &format!("/v1/acl/token/{accessor}"),
        b"",
    )
    .await;
    assert_eq!(r.text(), "true");
    assert_eq!(
        call(&t, &app, "GET", "/v1/kv/app/a", b"").await.text(),
        "ACL not found"
    );
    let r = call(
        &t,
        ROOT,
        "DELETE",
        &format!("/v1/acl/token/{accessor}"),
        b"",
    )
    .await;
    assert_eq!(
        (r.status, r.text()),
        (404, "Cannot find token to delete".to_string())
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_endpoints_answer_401_when_acls_are_off() {
    let t = TestAgent::dev().await;
    for (m, p) in [
        ("GET", "/v1/acl/tokens"),
        ("PUT", "/v1/acl/bootstrap"),
        ("GET", "/v1/acl/replication"),
        ("GET", "/v1/acl/policies"),
        ("GET", "/v1/acl/templated-policies"),
        ("PUT", "/v1/agent/token/default"),
    ] {
        let r = call(&t, "", m, p, b"{}").await;
        assert_eq!(
            (r.status, r.text()),
            (401, "ACL support disabled".to_string()),
            "{m} {p}"
        );
    }
    // Everything else is open, as before.
    assert_eq!(call(&t, "", "PUT", "/v1/kv/x", b"1").await.text(), "true");
    t.stop().await;
}

/// What a route does for a token without the rule it needs.
#[derive(Clone, Copy)]
enum Without {
    /// 403.
    Denied,
    /// 200, without `marker` in the body (with the rule: with it).
    Filtered(Option<&'static str>),
    /// Needs no rule at all.
    Open,
    /// A transaction: rolled back, 409 with the refusal in `Errors`.
    RolledBack,
}

struct Entry {
    method: &'static str,
    /// The route as registered (`/v1/kv/{*key}`).
    route: &'static str,
    /// The request made (placeholders `{node}`, `{session}`, `{session2}`, `{accessor}`,
    /// `{policy}`, `{role}`, `{rule}`, `{query}` filled in).
    path: &'static str,
    body: &'static str,
    /// The rules that let it through.
    rules: &'static str,
    without: Without,
    /// Skip the request with the rule (it would stop the agent or never end).
    only_denial: bool,
}

const fn e(
    method: &'static str,
    route: &'static str,
    path: &'static str,
    body: &'static str,
    rules: &'static str,
    without: Without,
) -> Entry {
    Entry {
        method,
        route,
        path,
        body,
        rules,
        without,
        only_denial: false,
    }
}

const fn deny_only(method: &'static str, route: &'static str, rules: &'static str) -> Entry {
    Entry {
        method,
        route,
        path: route,
        body: "",
        rules,
        without: Without::Denied,
        only_denial: true,
    }
}

use Without::{Denied as D, Filtered as F, Open as O, RolledBack as R};

const NODE_W: &str = r#"node "{node}" { policy = "write" }"#;
const NODE_R: &str = r#"node "{node}" { policy = "read" }"#;
const OP_R: &str = r#"operator = "read""#;
const OP_W: &str = r#"operator = "write""#;
const ACL_R: &str = r#"acl = "read""#;
const ACL_W: &str = r#"acl = "write""#;
const AGENT_R: &str = r#"agent "{node}" { policy = "read" }"#;
const AGENT_W: &str = r#"agent "{node}" { policy = "write" }"#;
const SESSION_W: &str = r#"session "{node}" { policy = "write" }"#;
const SESSION_R: &str = r#"session "{node}" { policy = "read" }"#;
const PQ_R: &str = r#"query_prefix "pq" { policy = "read" }"#;
const PQ_W: &str = r#"query_prefix "pq" { policy = "write" }"#;
const DB_READ: &str = r#"service "db" { policy = "read" } node "ext1" { policy = "read" }"#;

fn table() -> Vec<Entry> {
    vec![
        // Open.
        e("GET", "/v1/status/leader", "/v1/status/leader", "", "", O),
        e("GET", "/v1/status/peers", "/v1/status/peers", "", "", O),
        e("GET", "/v1/agent/version", "/v1/agent/version", "", "", O),
        e(
            "GET",
            "/v1/catalog/datacenters",
            "/v1/catalog/datacenters",
            "",
            "",
            O,
        ),
        e(
            "GET",
            "/v1/coordinate/datacenters",
            "/v1/coordinate/datacenters",
            "",
            "",
            O,
        ),
        e("GET", "/v1/acl/token/self", "/v1/acl/token/self", "", "", O),
        // KV and transactions.
        e(
            "GET",
            "/v1/kv/{*key}",
            "/v1/kv/app/k",
            "",
            r#"key "app/k" { policy = "read" }"#,
            D,
        ),
        e(
            "PUT",
            "/v1/kv/{*key}",
            "/v1/kv/app/k",
            "v2",
            r#"key "app/k" { policy = "write" }"#,
            D,
        ),
        e(
            "DELETE",
            "/v1/kv/{*key}",
            "/v1/kv/app/gone",
            "",
            r#"key "app/gone" { policy = "write" }"#,
            D,
        ),
        e(
            "GET",
            "/v1/kv",
            "/v1/kv?recurse",
            "",
            r#"key_prefix "app/" { policy = "read" }"#,
            F(Some("app/k")),
        ),
        e(
            "GET",
            "/v1/kv/",
            "/v1/kv/?keys",
            "",
            r#"key_prefix "app/" { policy = "read" }"#,
            F(Some("app/k")),
        ),
        // A put without a key is a 400 before any permission matters.
        e("PUT", "/v1/kv", "/v1/kv", "x", "", O),
        e("PUT", "/v1/kv/", "/v1/kv/", "x", "", O),
        e(
            "DELETE",
            "/v1/kv",
            "/v1/kv?recurse",
            "",
            r#"key_prefix "" { policy = "write" }"#,
            D,
        ),
        e(
            "DELETE",
            "/v1/kv/",
            "/v1/kv/?recurse",
            "",
            r#"key_prefix "" { policy = "write" }"#,
            D,
        ),
        e(
            "PUT",
            "/v1/txn",
            "/v1/txn",
            r#"[{"KV":{"Verb":"set","Key":"app/t","Value":"eA=="}}]"#,
            r#"key "app/t" { policy = "write" }"#,
            R,
        ),
        // Catalog.
        e(
            "PUT",
            "/v1/catalog/register",
            "/v1/catalog/register",
            r#"{"Node":"ext2","Address":"10.0.0.2"}"#,
            r#"node "ext2" { policy = "write" }"#,
            D,
        ),
        e(
            "PUT",
            "/v1/catalog/deregister",
            "/v1/catalog/deregister",
            r#"{"Node":"ext3"}"#,
            r#"node "ext3" { policy = "write" }"#,
            D,
        ),
        e(
            "GET",
            "/v1/catalog/nodes",
            "/v1/catalog/nodes",
            "",
            r#"node "ext1" { policy = "read" }"#,
            F(Some("ext1")),
        ),
        e(
            "GET",
            "/v1/catalog/services",
            "/v1/catalog/services",
            "",
            r#"service "db" { policy = "read" }"#,
            F(Some("db")),
        ),
        e(
            "GET",
            "/v1/catalog/service/{name}",
            "/v1/catalog/service/db",
            "",
            DB_READ,
            F(Some("ext1")),
        ),
        e(
            "GET",
            "/v1/catalog/connect/{name}",
            "/v1/catalog/connect/db",
            "",
            DB_READ,
            F(None),
        ),
        e(
            "GET",
            "/v1/catalog/node/{name}",
            "/v1/catalog/node/ext1",
            "",
            r#"node "ext1" { policy = "read" }"#,
            F(Some("ext1")),
        ),
        e(
            "GET",
            "/v1/catalog/node-services/{name}",
            "/v1/catalog/node-services/ext1",
            "",
            r#"node "ext1" { policy = "read" }"#,
            F(Some("ext1")),
        ),
        // Health.
        e(
            "GET",
            "/v1/health/node/{node}",
            "/v1/health/node/ext1",
            "",
            DB_READ,
            F(Some("db-chk")),
        ),
        e(
            "GET",
            "/v1/health/checks/{service}",
            "/v1/health/checks/db",
            "",
            DB_READ,
            F(Some("db-chk")),
        ),
        e(
            "GET",
            "/v1/health/service/{service}",
            "/v1/health/service/db",
            "",
            DB_READ,
            F(Some("ext1")),
        ),
        e(
            "GET",
            "/v1/health/connect/{service}",
            "/v1/health/connect/db",
            "",
            DB_READ,
            F(None),
        ),
        e(
            "GET",
            "/v1/health/state/{state}",
            "/v1/health/state/any",
            "",
            DB_READ,
            F(Some("db-chk")),
        ),
        // The web UI's reads: filtered as the catalog's.
        e(
            "GET",
            "/v1/internal/ui/services",
            "/v1/internal/ui/services",
            "",
            DB_READ,
            F(Some("\"db\"")),
        ),
        e(
            "GET",
            "/v1/internal/ui/nodes",
            "/v1/internal/ui/nodes",
            "",
            DB_READ,
            F(Some("db-chk")),
        ),
        e(
            "GET",
            "/v1/internal/ui/node/{node}",
            "/v1/internal/ui/node/ext1",
            "",
            DB_READ,
            F(Some("db-chk")),
        ),
        e(
            "GET",
            "/v1/internal/ui/exported-services",
            "/v1/internal/ui/exported-services?peer=p1",
            "",
            "",
            O,
        ),
        // Coordinates.
        e(
            "GET",
            "/v1/coordinate/nodes",
            "/v1/coordinate/nodes",
            "",
            NODE_R,
            F(None),
        ),
        e(
            "GET",
            "/v1/coordinate/node/{node}",
            "/v1/coordinate/node/{node}",
            "",
            NODE_R,
            D,
        ),
        e(
            "PUT",
            "/v1/coordinate/update",
            "/v1/coordinate/update",
            r#"{"Node":"{node}","Coord":{"Vec":[0,0,0,0,0,0,0,0],"Error":1.5,"Adjustment":0,"Height":0.00001}}"#,
            NODE_W,
            D,
        ),
        // Sessions.
        e(
            "PUT",
            "/v1/session/create",
            "/v1/session/create",
            "{}",
            SESSION_W,
            D,
        ),
        e(
            "PUT",
            "/v1/session/destroy/{id}",
            "/v1/session/destroy/{session2}",
            "",
            SESSION_W,
            D,
        ),
        e(
            "PUT",
            "/v1/session/renew/{id}",
            "/v1/session/renew/{session}",
            "",
            SESSION_W,
            D,
        ),
        e(
            "GET",
            "/v1/session/info/{id}",
            "/v1/session/info/{session}",
            "",
            SESSION_R,
            F(Some("{session}")),
        ),
        e(
            "GET",
            "/v1/session/node/{node}",
            "/v1/session/node/{node}",
            "",
            SESSION_R,
            F(Some("{session}")),
        ),
        e(
            "GET",
            "/v1/session/list",
            "/v1/session/list",
            "",
            SESSION_R,
            F(Some("{session}")),
        ),
        // Prepared queries: `{query}` is a query named `pq-…` for the service `db`.
        e(
            "POST",
            "/v1/query",
            "/v1/query",
            r#"{"Name":"created","Service":{"Service":"db"}}"#,
            r#"query "created" { policy = "write" }"#,
            D,
        ),
        e(
            "GET",
            "/v1/query",
            "/v1/query",
            "",
            PQ_R,
            F(Some("{query}")),
        ),
        e("GET", "/v1/query/{id}", "/v1/query/{query}", "", PQ_R, D),
        e(
            "PUT",
            "/v1/query/{id}",
            "/v1/query/{query}",
            r#"{"Name":"pq-renamed-{session}","Service":{"Service":"db"}}"#,
            PQ_W,
            D,
        ),
        e("DELETE", "/v1/query/{id}", "/v1/query/{query}", "", PQ_W, D),
        // Anyone may run a query; its nodes are what the token may read.
        e(
            "GET",
            "/v1/query/{id}/execute",
            "/v1/query/{query}/execute",
            "",
            DB_READ,
            F(Some("ext1")),
        ),
        e(
            "GET",
            "/v1/query/{id}/explain",
            "/v1/query/{query}/explain",
            "",
            PQ_R,
            D,
        ),
        // Events.
        e(
            "PUT",
            "/v1/event/fire/{name}",
            "/v1/event/fire/deploy",
            "",
            r#"event "deploy" { policy = "write" }"#,
            D,
        ),
        e(
            "GET",
            "/v1/event/list",
            "/v1/event/list",
            "",
            r#"event "deploy" { policy = "read" }"#,
            F(Some("deploy")),
        ),
        // Operator and snapshots.
        e(
            "GET",
            "/v1/operator/raft/configuration",
            "/v1/operator/raft/configuration",
            "",
            OP_R,
            D,
        ),
        e(
            "DELETE",
            "/v1/operator/raft/peer",
            "/v1/operator/raft/peer?address=10.9.9.9:8300",
            "",
            OP_W,
            D,
        ),
        e(
            "POST",
            "/v1/operator/raft/transfer-leader",
            "/v1/operator/raft/transfer-leader",
            "",
            OP_W,
            D,
        ),
        e(
            "GET",
            "/v1/operator/autopilot/configuration",
            "/v1/operator/autopilot/configuration",
            "",
            OP_R,
            D,
        ),
        e(
            "PUT",
            "/v1/operator/autopilot/configuration",
            "/v1/operator/autopilot/configuration",
            r#"{"CleanupDeadServers":true}"#,
            OP_W,
            D,
        ),
        e(
            "GET",
            "/v1/operator/autopilot/health",
            "/v1/operator/autopilot/health",
            "",
            OP_R,
            D,
        ),
        e(
            "GET",
            "/v1/operator/autopilot/state",
            "/v1/operator/autopilot/state",
            "",
            OP_R,
            D,
        ),
        e(
            "GET",
            "/v1/operator/keyring",
            "/v1/operator/keyring",
            "",
            r#"keyring = "read""#,
            D,
        ),
        e(
            "POST",
            "/v1/operator/keyring",
            "/v1/operator/keyring",
            r#"{"Key":"pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="}"#,
            r#"keyring = "write""#,
            D,
        ),
        e(
            "GET",
            "/v1/operator/usage",
            "/v1/operator/usage",
            "",
            OP_R,
            D,
        ),
        e("GET", "/v1/snapshot", "/v1/snapshot", "", ACL_W, D),
        e(
            "PUT",
            "/v1/snapshot",
            "/v1/snapshot",
            "not an archive",
            ACL_W,
            D,
        ),
        // The agent.
        e("GET", "/v1/agent/self", "/v1/agent/self", "", AGENT_R, D),
        e(
            "GET",
            "/v1/agent/metrics",
            "/v1/agent/metrics",
            "",
            AGENT_R,
            D,
        ),
        // A stream: with the rule it would never end.
        deny_only("GET", "/v1/agent/metrics/stream", AGENT_R),
        e(
            "GET",
            "/v1/agent/monitor",
            "/v1/agent/monitor?loglevel=nonsense",
            "",
            AGENT_R,
            D,
        ),
        e("GET", "/v1/agent/host", "/v1/agent/host", "", OP_R, D),
        e(
            "GET",
            "/v1/agent/members",
            "/v1/agent/members",
            "",
            NODE_R,
            F(Some("{node}")),
        ),
        e(
            "GET",
            "/v1/agent/services",
            "/v1/agent/services",
            "",
            r#"service "web" { policy = "read" }"#,
            F(Some("web1")),
        ),
        e(
            "GET",
            "/v1/agent/service/{id}",
            "/v1/agent/service/web1",
            "",
            r#"service "web" { policy = "read" }"#,
            D,
        ),
        e(
            "GET",
            "/v1/agent/checks",
            "/v1/agent/checks",
            "",
            NODE_R,
            F(Some("nodechk")),
        ),
        e(
            "PUT",
            "/v1/agent/service/register",
            "/v1/agent/service/register",
            r#"{"Name":"api"}"#,
            r#"service "api" { policy = "write" }"#,
            D,
        ),
        e(
            "PUT",
            "/v1/agent/service/deregister/{id}",
            "/v1/agent/service/deregister/api2",
            "",
            r#"service "api2" { policy = "write" }"#,
            D,
        ),
        e(
            "PUT",
            "/v1/agent/service/maintenance/{id}",
            "/v1/agent/service/maintenance/web1?enable=false",
            "",
            r#"service "web" { policy = "write" }"#,
            D,
        ),
        e(
            "PUT",
            "/v1/agent/check/register",
            "/v1/agent/check/register",
            r#"{"Name":"c2","TTL":"30s"}"#,
            NODE_W,
            D,
        ),
        e(
            "PUT",
            "/v1/agent/check/deregister/{id}",
            "/v1/agent/check/deregister/nodechk2",
            "",
            NODE_W,
            D,
        ),
        e(
            "PUT",
            "/v1/agent/check/pass/{id}",
            "/v1/agent/check/pass/nodechk",
            "",
            NODE_W,
            D,
        ),
        e(
            "PUT",
            "/v1/agent/check/warn/{id}",
            "/v1/agent/check/warn/nodechk",
            "",
            NODE_W,
            D,
        ),
        e(
            "PUT",
            "/v1/agent/check/fail/{id}",
            "/v1/agent/check/fail/nodechk",
            "",
            NODE_W,
            D,
        ),
        e(
            "PUT",
            "/v1/agent/check/update/{id}",
            "/v1/agent/check/update/nodechk",
            r#"{"Status":"passing"}"#,
            NODE_W,
            D,
        ),
        e(
            "PUT",
            "/v1/agent/join/{addr}",
            "/v1/agent/join/127.0.0.1:1",
            "",
            AGENT_W,
            D,
        ),
        deny_only("PUT", "/v1/agent/leave", AGENT_W),
        deny_only("PUT", "/v1/agent/reload", AGENT_W),
        e(
            "PUT",
            "/v1/agent/force-leave/{node}",
            "/v1/agent/force-leave/nobody",
            "",
            OP_W,
            D,
        ),
        e(
            "PUT",
            "/v1/agent/maintenance",
            "/v1/agent/maintenance?enable=false",
            "",
            NODE_W,
            D,
        ),
        e(
            "GET",
            "/v1/agent/health/service/id/{id}",
            "/v1/agent/health/service/id/web1",
            "",
            r#"service "web" { policy = "read" }"#,
            D,
        ),
        e(
            "GET",
            "/v1/agent/health/service/name/{name}",
            "/v1/agent/health/service/name/web",
            "",
            r#"service "web" { policy = "read" }"#,
            D,
        ),
        e(
            "PUT",
            "/v1/agent/token/{kind}",
            "/v1/agent/token/replication",
            r#"{"Token":"r"}"#,
            AGENT_W,
            D,
        ),
        // ACLs themselves.
        e("PUT", "/v1/acl/bootstrap", "/v1/acl/bootstrap", "", "", O),
        e(
            "GET",
            "/v1/acl/replication",
            "/v1/acl/replication",
            "",
            "",
            O,
        ),
        e("GET", "/v1/acl/tokens", "/v1/acl/tokens", "", ACL_R, D),
        e("PUT", "/v1/acl/token", "/v1/acl/token", "{}", ACL_W, D),
        e(
            "GET",
            "/v1/acl/token/{id}",
            "/v1/acl/token/{accessor}",
            "",
            ACL_R,
            D,
        ),
        e(
            "PUT",
            "/v1/acl/token/{id}",
            "/v1/acl/token/{accessor}",
            r#"{"Description":"changed"}"#,
            ACL_W,
            D,
        ),
        e(
            "PUT",
            "/v1/acl/token/{id}/clone",
            "/v1/acl/token/{accessor}/clone",
            "{}",
            ACL_W,
            D,
        ),
        e(
            "DELETE",
            "/v1/acl/token/{id}",
            "/v1/acl/token/{accessor}",
            "",
            ACL_W,
            D,
        ),
        e("GET", "/v1/acl/policies", "/v1/acl/policies", "", ACL_R, D),
        e(
            "PUT",
            "/v1/acl/policy",
            "/v1/acl/policy",
            r#"{"Name":"p-new"}"#,
            ACL_W,
            D,
        ),
        e(
            "GET",
            "/v1/acl/policy/{id}",
            "/v1/acl/policy/{policy}",
            "",
            ACL_R,
            D,
        ),
        e(
            "GET",
            "/v1/acl/policy/name/{name}",
            "/v1/acl/policy/name/spare",
            "",
            ACL_R,
            D,
        ),
        e(
            "PUT",
            "/v1/acl/policy/{id}",
            "/v1/acl/policy/{policy}",
            r#"{"Name":"spare","Description":"d"}"#,
            ACL_W,
            D,
        ),
        e(
            "DELETE",
            "/v1/acl/policy/{id}",
            "/v1/acl/policy/{policy}",
            "",
            ACL_W,
            D,
        ),
        e("GET", "/v1/acl/roles", "/v1/acl/roles", "", ACL_R, D),
        e(
            "PUT",
            "/v1/acl/role",
            "/v1/acl/role",
            r#"{"Name":"r-new"}"#,
            ACL_W,
            D,
        ),
        e(
            "GET",
            "/v1/acl/role/{id}",
            "/v1/acl/role/{role}",
            "",
            ACL_R,
            D,
        ),
        e(
            "GET",
            "/v1/acl/role/name/{name}",
            "/v1/acl/role/name/spare-role",
            "",
            ACL_R,
            D,
        ),
        e(
            "PUT",
            "/v1/acl/role/{id}",
            "/v1/acl/role/{role}",
            r#"{"Name":"spare-role","Description":"d"}"#,
            ACL_W,
            D,
        ),
        e(
            "DELETE",
            "/v1/acl/role/{id}",
            "/v1/acl/role/{role}",
            "",
            ACL_W,
            D,
        ),
        e(
            "GET",
            "/v1/acl/auth-methods",
            "/v1/acl/auth-methods",
            "",
            ACL_R,
            D,
        ),
        e(
            "PUT",
            "/v1/acl/auth-method",
            "/v1/acl/auth-method",
            r#"{"Name":"m-new","Type":"kubernetes"}"#,
            ACL_W,
            D,
        ),
        e(
            "GET",
            "/v1/acl/auth-method/{name}",
            "/v1/acl/auth-method/spare-method",
            "",
            ACL_R,
            D,
        ),
        e(
            "PUT",
            "/v1/acl/auth-method/{name}",
            "/v1/acl/auth-method/spare-method",
            r#"{"Type":"kubernetes","Description":"d"}"#,
            ACL_W,
            D,
        ),
        e(
            "DELETE",
            "/v1/acl/auth-method/{name}",
            "/v1/acl/auth-method/spare-method",
            "",
            ACL_W,
            D,
        ),
        e(
            "GET",
            "/v1/acl/binding-rules",
            "/v1/acl/binding-rules",
            "",
            ACL_R,
            D,
        ),
        e(
            "PUT",
            "/v1/acl/binding-rule",
            "/v1/acl/binding-rule",
            r#"{"AuthMethod":"keep-method","BindType":"service","BindName":"x"}"#,
            ACL_W,
            D,
        ),
        e(
            "GET",
            "/v1/acl/binding-rule/{id}",
            "/v1/acl/binding-rule/{rule}",
            "",
            ACL_R,
            D,
        ),
        e(
            "PUT",
            "/v1/acl/binding-rule/{id}",
            "/v1/acl/binding-rule/{rule}",
            r#"{"AuthMethod":"keep-method","BindType":"service","BindName":"y"}"#,
            ACL_W,
            D,
        ),
        e(
            "DELETE",
            "/v1/acl/binding-rule/{id}",
            "/v1/acl/binding-rule/{rule}",
            "",
            ACL_W,
            D,
        ),
        e(
            "GET",
            "/v1/acl/templated-policies",
            "/v1/acl/templated-policies",
            "",
            ACL_R,
            D,
        ),
        e(
            "GET",
            "/v1/acl/templated-policy/name/{*name}",
            "/v1/acl/templated-policy/name/builtin/service",
            "",
            ACL_R,
            D,
        ),
        e(
            "POST",
            "/v1/acl/templated-policy/preview/{*name}",
            "/v1/acl/templated-policy/preview/builtin/service",
            r#"{"Name":"web"}"#,
            ACL_R,
            D,
        ),
        e(
            "POST",
            "/v1/acl/login",
            "/v1/acl/login",
            r#"{"AuthMethod":"keep-method","BearerToken":"x"}"#,
            "",
            O,
        ),
        e("POST", "/v1/acl/logout", "/v1/acl/logout", "", "", O),
    ]
}

/// Every path the router registers, read from the route modules' source.
fn registered_routes() -> BTreeSet<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../http/src/routes");
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for piece in text.split('"').skip(1).step_by(2) {
            if piece.starts_with("/v1/") {
                out.insert(piece.to_string());
            }
        }
    }
    out
}

#[test]
fn every_route_has_a_deny_table_entry() {
    let covered: BTreeSet<String> = table().iter().map(|e| e.route.to_string()).collect();
    let missing: Vec<_> = registered_routes().difference(&covered).cloned().collect();
    assert!(
        missing.is_empty(),
        "routes without an entry in the ACL deny table (decide their permission): {missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_a_token_without_its_rule() {
    let t = acl_agent().await;
    let node = t.agent.node_name();
    // What the entries read and change.
    let setup: &[(&str, &str, String)] = &[
        ("PUT", "/v1/kv/app/k", "v".into()),
        ("PUT", "/v1/kv/app/gone", "v".into()),
        ("PUT", "/v1/catalog/register", r#"{"Node":"ext1","Address":"10.0.0.1","Service":{"Service":"db","ID":"db1"},"Check":{"CheckID":"db-chk","Name":"db-chk","ServiceID":"db1","Status":"passing"}}"#.into()),
        ("PUT", "/v1/agent/service/register", r#"{"Name":"web","ID":"web1"}"#.into()),
        ("PUT", "/v1/agent/service/register", r#"{"Name":"api2"}"#.into()),
        ("PUT", "/v1/agent/check/register", r#"{"Name":"nodechk","TTL":"30s"}"#.into()),
        ("PUT", "/v1/agent/check/register", r#"{"Name":"nodechk2","TTL":"30s"}"#.into()),
        ("PUT", "/v1/event/fire/deploy", String::new()),
        ("PUT", "/v1/acl/auth-method", r#"{"Name":"keep-method","Type":"kubernetes"}"#.into()),
    ];
    for (m, p, b) in setup {
        let r = call(&t, ROOT, m, p, b.as_bytes()).await;
        assert_eq!(r.status, 200, "setup {m} {p}: {}", r.text());
    }
    let session = |t: &TestAgent| {
        let t = t.http;
        async move {
            let r = request_with(
                t,
                "PUT",
                "/v1/session/create",
                &[("X-Consul-Token", ROOT)],
                b"{}",
            )
            .await;
            assert_eq!(r.status, 200, "{}", r.text());
            r.json()["ID"].as_str().unwrap().to_string()
        }
    };
    let nothing = token_with(&t, "nothing", r#"key "unrelated" { policy = "read" }"#).await;

    for (i, entry) in table().iter().enumerate() {
        // Fresh objects per entry, since the allowed request may change or delete them.
        let s1 = session(&t).await;
        let s2 = session(&t).await;
        let accessor = call(&t, ROOT, "PUT", "/v1/acl/token", b"{}").await.json()["AccessorID"]
            .as_str()
            .unwrap()
            .to_string();
        let policy = existing_or_new(
            &t,
            "/v1/acl/policy/name/spare",
            "/v1/acl/policy",
            r#"{"Name":"spare"}"#,
        )
        .await;
        let role = existing_or_new(
            &t,
            "/v1/acl/role/name/spare-role",
            "/v1/acl/role",
            r#"{"Name":"spare-role"}"#,
        )
        .await;
        let _ = call(
            &t,
            ROOT,
            "PUT",
            "/v1/acl/auth-method",
            br#"{"Name":"spare-method","Type":"kubernetes"}"#,
        )
        .await;
        let rule = call(
            &t,
            ROOT,
            "PUT",
            "/v1/acl/binding-rule",
            br#"{"AuthMethod":"keep-method","BindType":"service","BindName":"z"}"#,
        )
        .await
        .json()["ID"]
            .as_str()
            .unwrap()
            .to_string();
        let query = call(
            &t,
            ROOT,
            "POST",
            "/v1/query",
            format!(r#"{{"Name":"pq-{i}","Service":{{"Service":"db"}}}}"#).as_bytes(),
        )
        .await
        .json()["ID"]
            .as_str()
            .unwrap()
            .to_string();
        let fill = |s: &str| {
            s.replace("{node}", node)
                .replace("{query}", &query)
                .replace("{session2}", &s2)
                .replace("{session}", &s1)
                .replace("{accessor}", &accessor)
                .replace("{policy}", &policy)
                .replace("{role}", &role)
                .replace("{rule}", &rule)
        };
        let path = fill(entry.path);
        let body = fill(entry.body);
        let what = format!("{} {}", entry.method, path);

        let without = call(&t, &nothing, entry.method, &path, body.as_bytes()).await;
        match entry.without {
            Without::Denied => assert_eq!(
                without.status,
                403,
                "{what} without its rule: {}",
                without.text()
            ),
            Without::Filtered(marker) => {
                // A KV listing left empty is a 404, as without ACLs.
                assert!(
                    without.status == 200 || without.status == 404,
                    "{what} without its rule: {} {}",
                    without.status,
                    without.text()
                );
                if let Some(m) = marker {
                    assert!(
                        !without.text().contains(&fill(m)),
                        "{what} showed {m} without its rule: {}",
                        without.text()
                    );
                }
            }
            Without::RolledBack => {
                assert_eq!(
                    without.status,
                    409,
                    "{what} without its rule: {}",
                    without.text()
                );
                let errors = &without.json()["Errors"];
                assert_eq!(errors[0]["OpIndex"], 0, "{errors}");
                assert!(
                    errors[0]["What"]
                        .as_str()
                        .unwrap()
                        .contains("lacks permission 'key:write'"),
                    "{errors}"
                );
            }
            Without::Open => assert!(
                without.status != 401 && !without.text().contains("lacks permission"),
                "{what} needs no rule: {} {}",
                without.status,
                without.text()
            ),
        }
        if entry.only_denial || matches!(entry.without, Without::Open) {
            continue;
        }
        let token = token_with(&t, &format!("entry-{i}"), &fill(entry.rules)).await;
        let with = call(&t, &token, entry.method, &path, body.as_bytes()).await;
        assert!(
            with.status != 403 && with.status != 401,
            "{what} refused with its rule {}: {} {}",
            fill(entry.rules),
            with.status,
            with.text()
        );
        if let Without::Filtered(Some(m)) = entry.without {
            assert!(
                with.text().contains(&fill(m)),
                "{what} hid {m} from a token with its rule: {}",
                with.text()
            );
        }
    }
    t.stop().await;
}

/// The ID of the object `by_name` finds, or of one created by `PUT create body`.
async fn existing_or_new(t: &TestAgent, by_name: &str, create: &str, body: &str) -> String {
    let found = call(t, ROOT, "GET", by_name, b"").await;
    let r = if found.status == 200 {
        found
    } else {
        call(t, ROOT, "PUT", create, body.as_bytes()).await
    };
    assert_eq!(r.status, 200, "{by_name}: {}", r.text());
    r.json()["ID"].as_str().unwrap().to_string()
}

const JWT_KEY: &str = include_str!("fixtures/jwt-test-key.pem");
const JWT_PUB: &str = include_str!("fixtures/jwt-test-key.pub.pem");

fn jwt(claims: serde_json::Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(JWT_KEY.as_bytes()).unwrap();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .unwrap()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `acl login` with a JWT signed by a test key: the token's service identity registers that
/// service and nothing else; `acl logout` deletes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_login_binds_a_service_identity() {
    let t = TestAgent::start_with(dev_flags(), |c| {
        c.acl.enabled = true;
        c.acl.default_allow = false;
        c.acl.tokens.initial_management = ROOT.into();
        c.acl.tokens.agent = ROOT.into();
    })
    .await;
    wait_until(Duration::from_secs(10), "management token", || async {
        call(&t, ROOT, "GET", "/v1/acl/token/self", b"")
            .await
            .status
            == 200
    })
    .await;
    let method = serde_json::json!({
        "Name": "jwt",
        "Type": "jwt",
        "Config": {
            "JWTValidationPubKeys": [JWT_PUB],
            "BoundIssuer": "test-issuer",
            "BoundAudiences": ["proconsul"],
            "ClaimMappings": { "service": "service" },
            "ListClaimMappings": { "groups": "groups" },
        },
    });
    let r = call(
        &t,
        ROOT,
        "PUT",
        "/v1/acl/auth-method",
        method.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rule = serde_json::json!({
        "AuthMethod": "jwt",
        "BindType": "service",
        "BindName": "${value.service}",
        "Selector": "\"deployers\" in list.groups",
    });
    let r = call(
        &t,
        ROOT,
        "PUT",
        "/v1/acl/binding-rule",
        rule.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let bad = serde_json::json!({ "AuthMethod": "jwt", "BindType": "service", "BindName": "x", "Selector": "value.service ==" });
    let r = call(
        &t,
        ROOT,
        "PUT",
        "/v1/acl/binding-rule",
        bad.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("Selector is invalid"), "{}", r.text());

    let claims = |service: &str, iss: &str, groups: &[&str]| {
        serde_json::json!({
            "iss": iss, "aud": "proconsul", "exp": now_secs() + 600,
            "service": service, "groups": groups,
        })
    };
    let login = |bearer: String| {
        let body = serde_json::json!({ "AuthMethod": "jwt", "BearerToken": bearer }).to_string();
        let addr = t.http;
        async move { request_with(addr, "POST", "/v1/acl/login", &[], body.as_bytes()).await }
    };
    // Wrong issuer, forged signature, unknown method: no token.
    let r = login(jwt(claims("web", "someone-else", &["deployers"]))).await;
    assert_eq!(r.status, 500, "{}", r.text());
    // Claims signed for "web", presented as "db": the signature no longer matches.
    let signed = jwt(claims("web", "test-issuer", &["deployers"]));
    let other = jwt(claims("db", "test-issuer", &["deployers"]));
    let parts: Vec<&str> = signed.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        other.split('.').nth(1).unwrap(),
        parts[2]
    );
    let r = login(forged).await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("InvalidSignature"), "{}", r.text());
    let body = br#"{"AuthMethod":"nope","BearerToken":"x"}"#;
    let r = request_with(t.http, "POST", "/v1/acl/login", &[], body).await;
    assert_eq!(
        (r.status, r.text()),
        (403, "ACL not found: auth method \"nope\" not found".into())
    );
    // No binding rule selects this identity.
    let r = login(jwt(claims("web", "test-issuer", &["readers"]))).await;
    assert_eq!((r.status, r.text()), (403, "Permission denied".into()));

    let r = login(jwt(claims("web", "test-issuer", &["deployers"]))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let tok = r.json();
    assert_eq!(tok["AuthMethod"], "jwt");
    assert_eq!(tok["Local"], true);
    assert_eq!(tok["ServiceIdentities"][0]["ServiceName"], "web");
    assert_eq!(tok["Description"], "token created via login");
    let secret = tok["SecretID"].as_str().unwrap().to_string();

    let r = call(
        &t,
        &secret,
        "PUT",
        "/v1/agent/service/register",
        br#"{"Name":"web","Port":80}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = call(
        &t,
        &secret,
        "PUT",
        "/v1/agent/service/register",
        br#"{"Name":"db","Port":81}"#,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text()
            .contains("lacks permission 'service:write' on \"db\""),
        "{}",
        r.text()
    );

    // Logout deletes the token; management tokens cannot log out.
    let r = call(&t, ROOT, "POST", "/v1/acl/logout", b"").await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = call(&t, &secret, "POST", "/v1/acl/logout", b"").await;
    assert_eq!((r.status, r.text()), (200, "true".into()));
    let r = call(&t, &secret, "GET", "/v1/acl/token/self", b"").await;
    assert_eq!(r.status, 403);
    t.stop().await;
}

/// Bootstrap once; after losing every management token, an operator writes the reset index
/// to `<data_dir>/acl-bootstrap-reset` and may bootstrap again (Consul's recovery).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_then_reset_through_the_data_dir() {
    let data = tempfile::tempdir().unwrap();
    let flags = proconsul_config::AgentFlags {
        server: true,
        bootstrap: true,
        data_dir: Some(data.path().to_path_buf()),
        bind_addr: Some("127.0.0.1".into()),
        log_level: Some("warn".into()),
        ..Default::default()
    };
    let t = TestAgent::start_with(flags, |c| {
        c.acl.enabled = true;
        c.acl.default_allow = false;
    })
    .await;
    // The leader takes office first; until then bootstrap is refused as any write is.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let first = loop {
        let r = call(&t, "", "PUT", "/v1/acl/bootstrap", b"").await;
        if r.status == 200 || std::time::Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(first.status, 200, "{}", first.text());
    let token = first.json();
    assert_eq!(token["Description"], "Bootstrap Token (Global Management)");
    assert_eq!(token["ID"], token["SecretID"]);
    let r = call(&t, "", "PUT", "/v1/acl/bootstrap", b"").await;
    assert_eq!(r.status, 403);
    let text = r.text();
    let index: u64 = text
        .trim_end_matches(')')
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{text}"));
    let reset = data.path().join("acl-bootstrap-reset");
    std::fs::write(&reset, format!("{}", index + 1)).unwrap();
    let r = call(&t, "", "PUT", "/v1/acl/bootstrap", b"").await;
    assert_eq!(r.status, 500);
    assert!(
        r.text().starts_with("Invalid bootstrap reset index"),
        "{}",
        r.text()
    );
    std::fs::write(&reset, format!("{index}\n")).unwrap();
    let r = call(&t, "", "PUT", "/v1/acl/bootstrap", b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_ne!(r.json()["SecretID"], token["SecretID"]);
    assert!(!reset.exists(), "the reset file is used once");
    t.stop().await;
}

/// Anti-entropy writes a service with the token it was registered with, so an agent token
/// that may only write its node does not keep services out of the catalog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_sync_with_the_token_they_were_registered_with() {
    let t = acl_agent().await;
    let node = t.agent.node_name().to_string();
    let agent = token_with(
        &t,
        "agent",
        &format!(r#"node "{node}" {{ policy = "write" }} service_prefix "" {{ policy = "read" }}"#),
    )
    .await;
    let body = format!(r#"{{"Token":"{agent}"}}"#);
    let r = call(&t, ROOT, "PUT", "/v1/agent/token/agent", body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let web = token_with(&t, "web", r#"service "web" { policy = "write" }"#).await;
    let r = call(
        &t,
        &web,
        "PUT",
        "/v1/agent/service/register",
        br#"{"Name":"web","Port":80,"Check":{"TTL":"60s"}}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_until(
        Duration::from_secs(10),
        "web and its check in the catalog",
        || async {
            let r = call(&t, ROOT, "GET", "/v1/health/checks/web", b"").await;
            r.status == 200 && r.text().contains("service:web")
        },
    )
    .await;
    t.stop().await;
}

/// `acl.policy_ttl`: an agent re-resolves a token's rights once the policies it resolved
/// with them are that old, even when `token_ttl` is longer, so a policy change reaches the
/// agent's own endpoints within `policy_ttl`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_policy_reaches_the_agent_within_policy_ttl() {
    let t = acl_agent_with(|c| {
        c.acl.token_ttl = Duration::from_secs(3600);
        c.acl.policy_ttl = Duration::from_secs(1);
    })
    .await;
    let secret = token_with(&t, "reader", r#"agent_prefix "" { policy = "read" }"#).await;
    // Resolved and cached by the agent.
    assert_eq!(
        call(&t, &secret, "GET", "/v1/agent/self", b"").await.status,
        200
    );
    let policy = call(&t, ROOT, "GET", "/v1/acl/policy/name/reader", b"")
        .await
        .json();
    let id = policy["ID"].as_str().unwrap();
    let body =
        serde_json::json!({ "Name": "reader", "Rules": r#"agent_prefix "" { policy = "deny" }"# });
    let r = call(
        &t,
        ROOT,
        "PUT",
        &format!("/v1/acl/policy/{id}"),
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_until(
        Duration::from_secs(5),
        "the denied policy on the agent",
        || async { call(&t, &secret, "GET", "/v1/agent/self", b"").await.status == 403 },
    )
    .await;
    t.stop().await;
}
