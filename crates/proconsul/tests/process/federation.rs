//! Two datacenters federated over the WAN pool: three servers and a client in dc1, a server
//! and a client in dc2, each agent on its own loopback address with Consul's default ports.
//! A dc1 client agent reads and writes dc2 with `?dc=dc2` (blocking queries included), fires
//! user events there, lists both datacenters, and resolves `web.service.dc2.consul`; with dc2's server down, dc1 keeps
//! answering its own requests and `?dc=dc2` fails with Consul's text until it is back.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::cluster::{agreed_leader, http, leader};
use common::{start, wait_for, Proc};

const DC1: [&str; 3] = ["127.0.0.111", "127.0.0.112", "127.0.0.113"];
const DC1_CLIENT: &str = "127.0.0.114";
const DC2_SERVER: &str = "127.0.0.121";
const DC2_CLIENT: &str = "127.0.0.122";

fn agent(dir: &Path, name: &str, ip: &str, extra: &[&str]) -> Proc {
    let mut args = vec![
        "agent".to_string(),
        format!("-node={name}"),
        format!("-bind={ip}"),
        format!("-client={ip}"),
        format!("-data-dir={}", dir.join(name).display()),
        "-retry-interval=1s".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    start(&args, &dir.join(format!("{name}.log")))
}

fn dc2_server(dir: &Path) -> Proc {
    agent(
        dir,
        "t1",
        DC2_SERVER,
        &[
            "-server",
            "-bootstrap-expect=1",
            "-datacenter=dc2",
            &format!("-retry-join-wan={}", DC1[0]),
            "-retry-interval-wan=1s",
        ],
    )
}

fn dig(ip: &str, name: &str) -> String {
    let out = Command::new("dig")
        .args([
            &format!("@{ip}"),
            "-p",
            "8600",
            "+short",
            "+time=2",
            "+tries=1",
        ])
        .arg(name)
        .output()
        .expect("dig is installed (apt-get install -y bind9-dnsutils)");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn two_datacenters_answer_for_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let join1 = format!("-retry-join={}", DC1[0]);
    let _dc1: Vec<Proc> = DC1
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            agent(
                d,
                &format!("s{}", i + 1),
                ip,
                &["-server", "-bootstrap-expect=3", &join1],
            )
        })
        .collect();
    let _c1 = agent(d, "c1", DC1_CLIENT, &[&join1]);
    let mut t1 = Some(dc2_server(d));
    let _c2 = agent(
        d,
        "c2",
        DC2_CLIENT,
        &[
            "-datacenter=dc2",
            &format!("-retry-join={DC2_SERVER}"),
            "-hcl=disable_remote_exec = false",
        ],
    );
    wait_for("a dc1 leader", Duration::from_secs(60), || {
        agreed_leader(&DC1).is_some()
    });
    wait_for(
        "clients that know their leaders",
        Duration::from_secs(30),
        || leader(DC1_CLIENT).is_some() && leader(DC2_CLIENT).is_some(),
    );

    // Both datacenters, known through the WAN pool, from either side: dc2's server joined
    // one dc1 server over the WAN; the others follow by flood join.
    wait_for(
        "dc2 known to every dc1 server",
        Duration::from_secs(30),
        || {
            DC1.iter().chain([&DC1_CLIENT]).all(|ip| {
                http(ip, "GET", "/v1/catalog/datacenters", "").is_some_and(|(c, b)| {
                    c == 200 && b.contains("\"dc1\"") && b.contains("\"dc2\"")
                })
            })
        },
    );
    let (_, b) = http(DC2_CLIENT, "GET", "/v1/catalog/datacenters", "").unwrap();
    assert!(b.contains("\"dc1\"") && b.contains("\"dc2\""), "{b}");

    // A write to dc2 from a dc1 client agent lands in dc2 only.
    let (c, b) = http(DC1_CLIENT, "PUT", "/v1/kv/fed?dc=dc2", "from-dc1").unwrap();
    assert_eq!((c, b.trim()), (200, "true"));
    let (c, b) = http(DC2_CLIENT, "GET", "/v1/kv/fed?raw", "").unwrap();
    assert_eq!((c, b.as_str()), (200, "from-dc1"));
    let (c, _) = http(DC1_CLIENT, "GET", "/v1/kv/fed", "").unwrap();
    assert_eq!(c, 404, "dc1 has no such key");
    let (c, b) = http(DC1_CLIENT, "GET", "/v1/kv/fed?dc=dc2&raw", "").unwrap();
    assert_eq!((c, b.as_str()), (200, "from-dc1"));

    // A blocking query on dc2 from dc1 wakes on dc2's write.
    let (_, b) = http(DC1_CLIENT, "GET", "/v1/kv/fed?dc=dc2", "").unwrap();
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    let index = v[0]["ModifyIndex"].as_u64().unwrap();
    let waiter = std::thread::spawn(move || {
        http(
            DC1_CLIENT,
            "GET",
            &format!("/v1/kv/fed?dc=dc2&raw&index={index}&wait=20s"),
            "",
        )
    });
    std::thread::sleep(Duration::from_millis(500));
    let (c, _) = http(DC2_CLIENT, "PUT", "/v1/kv/fed", "changed-in-dc2").unwrap();
    assert_eq!(c, 200);
    let (c, b) = waiter.join().unwrap().unwrap();
    assert_eq!((c, b.as_str()), (200, "changed-in-dc2"));

    // A user event fired from dc1 for dc2 is broadcast in dc2 (by a dc2 server), not dc1;
    // the same through the CLI's -datacenter.
    let (c, b) = http(DC1_CLIENT, "PUT", "/v1/event/fire/deploy?dc=dc2", "v1").unwrap();
    assert_eq!(c, 200, "{b}");
    let out = common::cluster::cli(DC1_CLIENT, &["event", "-datacenter=dc2", "-name=deploy2"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    wait_for("both events in dc2", Duration::from_secs(20), || {
        http(DC2_CLIENT, "GET", "/v1/event/list", "")
            .is_some_and(|(_, b)| b.contains("\"deploy\"") && b.contains("\"deploy2\""))
    });
    let (_, b) = http(DC1_CLIENT, "GET", "/v1/event/list", "").unwrap();
    assert!(!b.contains("deploy"), "dc1 got dc2's event: {b}");
    let (c, b) = http(DC1_CLIENT, "PUT", "/v1/event/fire/x?dc=dc9", "").unwrap();
    assert_eq!((c, b.as_str()), (500, "No path to datacenter"));

    // `exec -datacenter=dc2` from dc1 runs on dc2's agents that allow it (c2), through a
    // session on a dc2 server's node and dc2's KV.
    let out = Command::new(common::BIN)
        .args(["exec", &format!("-http-addr={DC1_CLIENT}:8500")])
        .args(["-datacenter=dc2", "-wait=2s", "echo", "fed-exec"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let text = common::stdout(&out);
    assert!(text.contains("    c2: fed-exec\n"), "{text}");
    assert!(
        text.ends_with("1 / 1 node(s) completed / acknowledged\n"),
        "{text}"
    );

    // Usage of one other datacenter, and of all.
    let (c, b) = http(DC1_CLIENT, "GET", "/v1/operator/usage?dc=dc2", "").unwrap();
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert!(
        c == 200 && v["Usage"]["dc2"].is_object() && v["Usage"]["dc1"].is_null(),
        "{b}"
    );
    let (_, b) = http(DC1_CLIENT, "GET", "/v1/operator/usage?global", "").unwrap();
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert!(
        v["Usage"]["dc1"].is_object() && v["Usage"]["dc2"].is_object(),
        "{b}"
    );

    // DNS on a dc1 agent answers for dc2's services.
    let (c, b) = http(
        DC2_CLIENT,
        "PUT",
        "/v1/agent/service/register",
        r#"{"Name":"web","Port":8080,"Check":{"TTL":"60s","Status":"passing"}}"#,
    )
    .unwrap();
    assert_eq!(c, 200, "{b}");
    wait_for(
        "web.service.dc2.consul from dc1",
        Duration::from_secs(20),
        || dig(DC1_CLIENT, "web.service.dc2.consul") == DC2_CLIENT,
    );
    assert_eq!(dig(DC1_CLIENT, "web.service.dc3.consul"), "", "no dc3");

    // dc2's only server down: dc1 serves its own, and ?dc=dc2 fails with Consul's text.
    drop(t1.take());
    wait_for("?dc=dc2 to fail", Duration::from_secs(30), || {
        http(DC1_CLIENT, "GET", "/v1/kv/fed?dc=dc2", "")
            .is_some_and(|(c, b)| c == 500 && b.contains("No path to datacenter"))
    });
    let (c, b) = http(DC1_CLIENT, "PUT", "/v1/kv/local", "still").unwrap();
    assert_eq!((c, b.trim()), (200, "true"));
    // Back (same data): answered again.
    t1 = Some(dc2_server(d));
    wait_for("?dc=dc2 again", Duration::from_secs(60), || {
        http(DC1_CLIENT, "GET", "/v1/kv/fed?dc=dc2&raw", "")
            .is_some_and(|(c, b)| c == 200 && b == "changed-in-dc2")
    });
    drop(t1);
}

/// ACL replication: dc2 names dc1 its `primary_datacenter`; its leader copies dc1's policies
/// and global tokens. A token made in dc1 is then enforced in dc2 (what its policy allows, and
/// nothing else), `/v1/acl/replication` says so, a policy written through dc2 is written in
/// dc1, and dc2 keeps enforcing with dc1 down.
#[test]
fn acl_policies_and_tokens_replicate_to_a_secondary() {
    const ROOT: &str = "11111111-2222-3333-4444-555555555555";
    const P: &str = "127.0.0.131";
    const S: &str = "127.0.0.132";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let acl = |name: &str, extra: &str| {
        let f = d.join(format!("{name}.json"));
        std::fs::write(
            &f,
            format!(
                r#"{{"acl": {{"enabled": true, "default_policy": "deny", {extra}
                    "tokens": {{"initial_management": "{ROOT}", "agent": "{ROOT}", "replication": "{ROOT}"}}}}}}"#
            ),
        )
        .unwrap();
        format!("-config-file={}", f.display())
    };
    let primary_cfg = acl("p", "");
    let mut primary = Some(agent(
        d,
        "p1",
        P,
        &["-server", "-bootstrap-expect=1", &primary_cfg],
    ));
    let secondary_cfg = acl("s", r#""enable_token_replication": true,"#);
    let _secondary = agent(
        d,
        "q1",
        S,
        &[
            "-server",
            "-bootstrap-expect=1",
            "-datacenter=dc2",
            "-hcl=primary_datacenter = \"dc1\"",
            &format!("-retry-join-wan={P}"),
            "-retry-interval-wan=1s",
            &secondary_cfg,
        ],
    );
    let with = |path: &str, token: &str| {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{path}{sep}token={token}")
    };
    wait_for("dc1's management token", Duration::from_secs(30), || {
        http(P, "GET", &with("/v1/acl/token/self", ROOT), "").is_some_and(|(c, _)| c == 200)
    });
    let (c, b) = http(
        P,
        "PUT",
        &with("/v1/acl/policy", ROOT),
        r#"{"Name":"app","Rules":"key_prefix \"app/\" { policy = \"write\" }"}"#,
    )
    .unwrap();
    assert_eq!(c, 200, "{b}");
    let (c, b) = http(
        P,
        "PUT",
        &with("/v1/acl/token", ROOT),
        r#"{"Policies":[{"Name":"app"}]}"#,
    )
    .unwrap();
    assert_eq!(c, 200, "{b}");
    let app: serde_json::Value = serde_json::from_str(&b).unwrap();
    let app = app["SecretID"].as_str().unwrap().to_string();

    // Replicated: dc2 knows the policy and enforces the token by it.
    wait_for("the policy in dc2", Duration::from_secs(60), || {
        http(S, "GET", &with("/v1/acl/policy/name/app", ROOT), "")
            .is_some_and(|(c, b)| c == 200 && b.contains("app/"))
    });
    wait_for("the token allowed in dc2", Duration::from_secs(30), || {
        http(S, "PUT", &with("/v1/kv/app/x", &app), "1")
            .is_some_and(|(c, b)| c == 200 && b.trim() == "true")
    });
    let (c, _) = http(S, "PUT", &with("/v1/kv/other/x", &app), "1").unwrap();
    assert_eq!(c, 403, "outside its policy");
    let (c, b) = http(S, "GET", &with("/v1/acl/replication", ROOT), "").unwrap();
    let r: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(c, 200, "{b}");
    assert_eq!(r["Enabled"], true, "{b}");
    assert_eq!(r["SourceDatacenter"], "dc1", "{b}");
    assert_eq!(r["ReplicationType"], "tokens", "{b}");
    assert!(r["ReplicatedIndex"].as_u64().unwrap() > 0, "{b}");

    // A policy written in dc2 is written in dc1 (the primary holds ACL state) and comes
    // back to dc2 by replication.
    let (c, b) = http(
        S,
        "PUT",
        &with("/v1/acl/policy", ROOT),
        r#"{"Name":"made-in-dc2","Rules":"key_prefix \"dc2/\" { policy = \"read\" }"}"#,
    )
    .unwrap();
    assert_eq!(c, 200, "{b}");
    let (c, _) = http(P, "GET", &with("/v1/acl/policy/name/made-in-dc2", ROOT), "").unwrap();
    assert_eq!(c, 200, "written in the primary");
    wait_for("the policy back in dc2", Duration::from_secs(20), || {
        http(S, "GET", &with("/v1/acl/policy/name/made-in-dc2", ROOT), "")
            .is_some_and(|(c, _)| c == 200)
    });

    // The primary gone: dc2 enforces what it replicated.
    drop(primary.take());
    wait_for("dc1 gone", Duration::from_secs(10), || {
        http(P, "GET", "/v1/status/leader", "").is_none()
    });
    let (c, b) = http(S, "PUT", &with("/v1/kv/app/y", &app), "2").unwrap();
    assert_eq!((c, b.trim()), (200, "true"));
    let (c, _) = http(S, "PUT", &with("/v1/kv/other/y", &app), "2").unwrap();
    assert_eq!(c, 403);
}

/// A prepared query with `NearestN: 1`, asked of dc1: answered from dc1 while its `web`
/// instance passes, from dc2 once it is critical (`Failovers` 1, and in DNS), from dc1 again
/// when it recovers.
#[test]
fn prepared_query_fails_over_to_the_nearest_datacenter() {
    const A: &str = "127.0.0.141";
    const B: &str = "127.0.0.142";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let _a = agent(d, "pa", A, &["-server", "-bootstrap-expect=1"]);
    let _b = agent(
        d,
        "pb",
        B,
        &[
            "-server",
            "-bootstrap-expect=1",
            "-datacenter=dc2",
            &format!("-retry-join-wan={A}"),
            "-retry-interval-wan=1s",
        ],
    );
    wait_for("leaders in both", Duration::from_secs(30), || {
        leader(A).is_some() && leader(B).is_some()
    });
    wait_for("dc2 reachable from dc1", Duration::from_secs(30), || {
        http(A, "GET", "/v1/catalog/nodes?dc=dc2", "").is_some_and(|(c, _)| c == 200)
    });
    let register = |ip: &str, node: &str, addr: &str, status: &str| {
        let body = format!(
            r#"{{"Node":"{node}","Address":"{addr}","Service":{{"Service":"web","ID":"web","Port":80}},"Check":{{"CheckID":"web-chk","Name":"web-chk","ServiceID":"web","Status":"{status}"}}}}"#
        );
        let (c, b) = http(ip, "PUT", "/v1/catalog/register", &body).unwrap();
        assert_eq!(c, 200, "{b}");
    };
    register(A, "w1", "10.0.1.1", "passing");
    register(B, "w2", "10.0.2.1", "passing");
    let (c, b) = http(
        A,
        "POST",
        "/v1/query",
        r#"{"Name":"web","Service":{"Service":"web","Failover":{"NearestN":1}}}"#,
    )
    .unwrap();
    assert_eq!(c, 200, "{b}");
    let execute = || {
        let (c, b) = http(A, "GET", "/v1/query/web/execute", "").unwrap();
        assert_eq!(c, 200, "{b}");
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        (
            v["Datacenter"].as_str().unwrap_or("").to_string(),
            v["Failovers"].as_u64().unwrap_or(99),
            v["Nodes"][0]["Node"]["Node"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        )
    };
    assert_eq!(execute(), ("dc1".into(), 0, "w1".into()));
    // DNS answers for a query are kept for a second at most.
    wait_for("web.query.consul in dc1", Duration::from_secs(5), || {
        dig(A, "web.query.consul") == "10.0.1.1"
    });

    register(A, "w1", "10.0.1.1", "critical");
    assert_eq!(execute(), ("dc2".into(), 1, "w2".into()));
    wait_for("web.query.consul from dc2", Duration::from_secs(5), || {
        dig(A, "web.query.consul") == "10.0.2.1"
    });

    register(A, "w1", "10.0.1.1", "passing");
    assert_eq!(execute(), ("dc1".into(), 0, "w1".into()));
}
