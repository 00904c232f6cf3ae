//! ACLs across the request path with real processes: a client agent forwards the caller's
//! token to the servers over RPC (which check it), resolves tokens through them for the
//! endpoints it serves itself, and — with `down_policy = "extend-cache"` — keeps answering
//! with the rights it resolved while no server can be reached.

use crate::common;

use std::time::Duration;

use common::{
    cli_command, free_port, http_get, http_request, isolated_config_with, start, wait_for,
};

const ROOT: &str = "11111111-2222-3333-4444-555555555555";

fn with_token(path: &str, token: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}token={token}")
}

#[test]
fn a_client_agent_carries_tokens_to_the_servers_and_caches_rights() {
    let dir = tempfile::tempdir().unwrap();
    let server_http = free_port();
    let server_dir = dir.path().join("server");
    std::fs::create_dir_all(&server_dir).unwrap();
    let acl = format!(
        r#""acl": {{"enabled": true, "default_policy": "deny", "tokens": {{"initial_management": "{ROOT}", "agent": "{ROOT}"}}}},"#
    );
    let cfg = isolated_config_with(&server_dir, server_http, &acl);
    // (`start_dev` waits for serfHealth anonymously, which `default_policy = deny` hides.)
    let mut server = start(
        &[
            "agent",
            "-dev",
            "-node=n1",
            &format!("-config-file={}", cfg.display()),
        ],
        &server_dir.join("log"),
    );
    wait_for("the management token", Duration::from_secs(20), || {
        http_get(server_http, &with_token("/v1/acl/token/self", ROOT))
            .is_some_and(|(c, _)| c == 200)
    });
    let members = cli_command(server_http, &["members", &format!("-token={ROOT}")])
        .output()
        .unwrap();
    let members = String::from_utf8_lossy(&members.stdout).into_owned();
    let lan = members
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no member row in {members:?}"))
        .to_string();

    let client_http = free_port();
    let client_dir = dir.path().join("client");
    std::fs::create_dir_all(&client_dir).unwrap();
    let acl = format!(
        r#""acl": {{"enabled": true, "default_policy": "deny", "down_policy": "extend-cache", "token_ttl": "1h", "tokens": {{"agent": "{ROOT}"}}}},"#
    );
    let cfg = isolated_config_with(&client_dir, client_http, &acl);
    let _client = start(
        &[
            "agent",
            "-node=c1",
            "-bind=127.0.0.1",
            &format!("-retry-join={lan}"),
            &format!("-data-dir={}", client_dir.join("data").display()),
            &format!("-config-file={}", cfg.display()),
        ],
        &client_dir.join("log"),
    );
    wait_for(
        "the client to know the leader",
        Duration::from_secs(30),
        || http_get(client_http, "/v1/status/leader").is_some_and(|(c, b)| c == 200 && b.len() > 2),
    );

    // A policy and token made through the client: the writes carry the management token.
    let (c, body) = http_request(
        "127.0.0.1",
        client_http,
        "PUT",
        &with_token("/v1/acl/policy", ROOT),
        r#"{"Name":"app","Rules":"key_prefix \"app/\" { policy = \"write\" }\nagent \"c1\" { policy = \"read\" }\nnode_prefix \"\" { policy = \"read\" }"}"#,
    )
    .unwrap();
    assert_eq!(c, 200, "{body}");
    let (c, body) = http_request(
        "127.0.0.1",
        client_http,
        "PUT",
        &with_token("/v1/acl/token", ROOT),
        r#"{"Policies":[{"Name":"app"}]}"#,
    )
    .unwrap();
    assert_eq!(c, 200, "{body}");
    let app: serde_json::Value = serde_json::from_str(&body).unwrap();
    let app = app["SecretID"].as_str().unwrap().to_string();

    // Server-checked: KV through the client.
    let put = |key: &str, token: &str| {
        http_request(
            "127.0.0.1",
            client_http,
            "PUT",
            &with_token(&format!("/v1/kv/{key}"), token),
            "v",
        )
        .unwrap()
    };
    assert_eq!(put("app/a", &app), (200, "true".to_string()));
    let (c, body) = put("other/a", &app);
    assert_eq!(c, 403, "{body}");
    assert!(
        body.contains("lacks permission 'key:write' on \"other/a\""),
        "{body}"
    );
    let (c, body) = put("app/a", "");
    assert_eq!(c, 403, "anonymous: {body}");

    // Agent-checked: the client resolves the token through a server.
    let (c, body) = http_get(client_http, &with_token("/v1/agent/self", &app)).unwrap();
    assert_eq!(c, 200, "{body}");
    let (c, _) = http_get(client_http, "/v1/agent/self").unwrap();
    assert_eq!(c, 403);
    let (c, body) = http_get(client_http, &with_token("/v1/agent/members", &app)).unwrap();
    assert_eq!(c, 200);
    assert!(body.contains("\"c1\""), "{body}");

    // Servers gone: the client keeps the rights it resolved (extend-cache), and knows no
    // token it never resolved.
    let _ = server.0.kill();
    let _ = server.0.wait();
    wait_for("the server to be gone", Duration::from_secs(10), || {
        http_get(server_http, "/v1/status/leader").is_none()
    });
    let (c, body) = http_get(client_http, &with_token("/v1/agent/self", &app)).unwrap();
    assert_eq!(c, 200, "cached rights while servers are down: {body}");
    let (c, _) = http_get(
        client_http,
        &with_token("/v1/agent/self", "22222222-2222-2222-2222-222222222222"),
    )
    .unwrap();
    assert_ne!(c, 200);
}

/// Three servers with ACLs: tokens and policies are Raft state, so a leader kill loses none.
#[test]
fn three_servers_keep_tokens_through_a_leader_kill() {
    use common::cluster::{http, leader};
    let dir = tempfile::tempdir().unwrap();
    let ips = ["127.0.0.81", "127.0.0.82", "127.0.0.83"];
    let cfg = dir.path().join("acl.json");
    std::fs::write(
        &cfg,
        format!(
            r#"{{"acl": {{"enabled": true, "default_policy": "deny", "tokens": {{"initial_management": "{ROOT}", "agent": "{ROOT}"}}}}}}"#
        ),
    )
    .unwrap();
    let mut servers: Vec<Option<common::Proc>> = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let name = format!("a{}", i + 1);
            Some(start(
                &[
                    "agent",
                    "-server",
                    "-bootstrap-expect=3",
                    &format!("-node={name}"),
                    &format!("-bind={ip}"),
                    &format!("-client={ip}"),
                    &format!("-data-dir={}", dir.path().join(&name).display()),
                    &format!("-retry-join={}", ips[0]),
                    "-retry-interval=1s",
                    &format!("-config-file={}", cfg.display()),
                ],
                &dir.path().join(format!("{name}.log")),
            ))
        })
        .collect();
    let as_root = |ip: &str, m: &str, p: &str, b: &str| http(ip, m, &with_token(p, ROOT), b);
    wait_for(
        "the management token on every server",
        Duration::from_secs(40),
        || {
            ips.iter().all(|ip| {
                as_root(ip, "GET", "/v1/acl/token/self", "").is_some_and(|(c, _)| c == 200)
            })
        },
    );
    let (c, body) = as_root(
        ips[0],
        "PUT",
        "/v1/acl/policy",
        r#"{"Name":"app","Rules":"key_prefix \"app/\" { policy = \"write\" }"}"#,
    )
    .unwrap();
    assert_eq!(c, 200, "{body}");
    let (c, body) = as_root(
        ips[1],
        "PUT",
        "/v1/acl/token",
        r#"{"Policies":[{"Name":"app"}]}"#,
    )
    .unwrap();
    assert_eq!(c, 200, "{body}");
    let app: serde_json::Value = serde_json::from_str(&body).unwrap();
    let app = app["SecretID"].as_str().unwrap().to_string();
    let put = |ip: &str, key: &str, token: &str| {
        http(ip, "PUT", &with_token(&format!("/v1/kv/{key}"), token), "v")
    };
    assert_eq!(put(ips[2], "app/a", &app), Some((200, "true".into())));

    let old = leader(ips[0]).expect("a leader");
    let gone = ips
        .iter()
        .position(|ip| old.starts_with(&format!("{ip}:")))
        .unwrap();
    drop(servers[gone].take());
    let alive: Vec<&str> = (0..3).filter(|i| *i != gone).map(|i| ips[i]).collect();
    wait_for("a new leader", Duration::from_secs(20), || {
        alive.iter().all(|ip| leader(ip).is_some_and(|l| l != old))
    });
    for ip in &alive {
        let (c, body) = http(
            ip,
            "GET",
            &with_token("/v1/kv/app/a?raw&consistent", &app),
            "",
        )
        .unwrap();
        assert_eq!((c, body.as_str()), (200, "v"), "{ip}");
        let (c, body) = put(ip, "other/x", &app).unwrap();
        assert_eq!(c, 403, "{ip}: {body}");
    }
    wait_for(
        "writes with the token under the new leader",
        Duration::from_secs(10),
        || put(alive[0], "app/b", &app) == Some((200, "true".into())),
    );
    let (c, _) = as_root(alive[1], "GET", "/v1/acl/tokens", "").unwrap();
    assert_eq!(c, 200);
}
