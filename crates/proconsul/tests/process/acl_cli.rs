//! The `acl` commands, `login` and `logout` against a real `-dev` agent with ACLs on and
//! `default_policy = "deny"`: HashiCorp's "secure Consul with ACLs" tutorial walked with the
//! CLI (a policy from a rules file, a token linked to it by name, KV allowed and denied with
//! that token), then the other objects (roles, clones, agent tokens) and the error paths with
//! their exit codes and texts.

use crate::common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::{cli_command, free_port, http_get, isolated_config_with, start, stderr, stdout};

const ROOT: &str = "3f1c2a6e-7d45-4b8e-9a10-5c2d8e7f6a01";

/// A `-dev` agent with ACLs on; ready once the management token reads itself.
struct AclAgent {
    http: u16,
    dir: tempfile::TempDir,
    _proc: common::Proc,
}

fn acl_agent() -> AclAgent {
    let dir = tempfile::tempdir().unwrap();
    let http = free_port();
    let acl = format!(
        r#""acl": {{"enabled": true, "default_policy": "deny", "tokens": {{"initial_management": "{ROOT}"}}}},"#
    );
    let cfg = isolated_config_with(dir.path(), http, &acl);
    let proc = start(
        &[
            "agent",
            "-dev",
            "-node=n1",
            &format!("-config-file={}", cfg.display()),
        ],
        &dir.path().join("log"),
    );
    common::wait_for("the management token", Duration::from_secs(30), || {
        http_get(http, &format!("/v1/acl/token/self?token={ROOT}")).is_some_and(|(c, _)| c == 200)
    });
    AclAgent {
        http,
        dir,
        _proc: proc,
    }
}

impl AclAgent {
    /// A CLI run with `CONSUL_HTTP_TOKEN=token` (none when empty).
    fn run_as(&self, token: &str, args: &[&str]) -> Output {
        let mut c = cli_command(self.http, args);
        if !token.is_empty() {
            c.env("CONSUL_HTTP_TOKEN", token);
        }
        c.output().unwrap()
    }

    /// A CLI run as the management token that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run_as(ROOT, args);
        assert!(
            o.status.success(),
            "{args:?} failed: {}{}",
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

/// The value of a `Field:   value` line of Consul's pretty output.
fn field(out: &str, name: &str) -> String {
    let prefix = format!("{name}:");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in {out:?}"))
        .trim()
        .to_string()
}

fn failed_with(o: &Output, code: i32, texts: &[&str]) {
    assert_eq!(o.status.code(), Some(code), "{}{}", stdout(o), stderr(o));
    for t in texts {
        assert!(stderr(o).contains(t), "{t:?} not in {:?}", stderr(o));
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn tutorial_policy_token_kv_and_cleanup() {
    let a = acl_agent();

    // A policy whose rules come from a file, as the tutorial writes them.
    let rules = "key_prefix \"app/\" {\n  policy = \"write\"\n}\n";
    write(&a.path("app-rules.hcl"), rules);
    let rules_arg = format!("@{}", a.path("app-rules.hcl").display());
    let out = a.ok(&[
        "acl",
        "policy",
        "create",
        "-name",
        "app-kv",
        "-description",
        "App KV",
        "-rules",
        &rules_arg,
    ]);
    let policy_id = field(&out, "ID");
    assert_eq!(policy_id.len(), 36, "{out}");
    assert!(
        out.starts_with(&format!(
            "ID:           {policy_id}\nName:         app-kv\nDescription:  App KV\nDatacenters:  \nRules:\n{rules}"
        )),
        "{out:?}"
    );
    // Listed under its name; read back by a prefix of its ID, and by name as JSON.
    let list = a.ok(&["acl", "policy", "list"]);
    assert!(
        list.contains(&format!("app-kv:\n   ID:           {policy_id}\n")),
        "{list}"
    );
    let read = a.ok(&["acl", "policy", "read", "-id", &policy_id[..8]]);
    assert_eq!(field(&read, "Name"), "app-kv");
    let json: serde_json::Value =
        serde_json::from_str(&a.ok(&["acl", "policy", "read", "-name", "app-kv", "-format=json"]))
            .unwrap();
    assert_eq!(json["ID"], policy_id.as_str());
    assert_eq!(json["Rules"], rules);

    // A token linked to the policy by name.
    let out = a.ok(&[
        "acl",
        "token",
        "create",
        "-description",
        "app token",
        "-policy-name",
        "app-kv",
    ]);
    let accessor = field(&out, "AccessorID");
    let secret = field(&out, "SecretID");
    assert_eq!(field(&out, "Description"), "app token");
    assert_eq!(field(&out, "Local"), "false");
    assert!(field(&out, "Create Time").ends_with("+0000 UTC"), "{out}");
    assert!(
        out.contains(&format!("Policies:\n   {policy_id} - app-kv\n")),
        "{out}"
    );

    // The token writes where its policy allows, and is refused elsewhere with the 403 text.
    let token_flag = format!("-token={secret}");
    let o = a.run_as("", &["kv", "put", &token_flag, "app/config", "on"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "Success! Data written to: app/config");
    let o = a.run_as("", &["kv", "put", &token_flag, "secret/config", "on"]);
    failed_with(
        &o,
        1,
        &["Unexpected response code: 403", "Permission denied"],
    );
    // Without a token the anonymous token is denied too.
    let o = a.run_as("", &["kv", "put", "app/config", "off"]);
    failed_with(&o, 1, &["403"]);

    // Listed, readable through a prefix, then deleted.
    let list = a.ok(&["acl", "token", "list"]);
    assert!(
        list.contains(&format!(
            "AccessorID:       {accessor}\nSecretID:         {secret}\n"
        )),
        "{list}"
    );
    assert!(
        list.contains("Description:      Anonymous Token\n"),
        "{list}"
    );
    let read = a.ok(&["acl", "token", "read", "-accessor-id", &accessor[..8]]);
    assert_eq!(field(&read, "SecretID"), secret);
    let out = a.ok(&["acl", "token", "delete", "-accessor-id", &accessor]);
    assert_eq!(
        out.trim(),
        format!("Token \"{accessor}\" deleted successfully")
    );
    let o = a.run_as(ROOT, &["acl", "token", "read", "-accessor-id", &accessor]);
    failed_with(
        &o,
        1,
        &[&format!(
            "Error reading token \"{accessor}\": Unexpected response code: 403"
        )],
    );
    let o = a.run_as("", &["kv", "put", &token_flag, "app/config", "again"]);
    failed_with(&o, 1, &["403"]);
    assert!(!a.ok(&["acl", "token", "list"]).contains(&accessor));

    // The policy goes by name; reading it afterwards fails.
    let out = a.ok(&["acl", "policy", "delete", "-name", "app-kv"]);
    assert_eq!(
        out.trim(),
        format!("Policy \"{policy_id}\" deleted successfully")
    );
    let o = a.run_as(ROOT, &["acl", "policy", "read", "-name", "app-kv"]);
    failed_with(&o, 1, &["Error policy not found: app-kv"]);

    // The cluster was bootstrapped by its initial management token: bootstrap is refused.
    let o = a.run_as("", &["acl", "bootstrap"]);
    failed_with(
        &o,
        1,
        &["Failed ACL bootstrapping: Unexpected response code: 403"],
    );
    assert!(stdout(&o).is_empty());
}

#[test]
fn roles_updates_clones_agent_tokens_and_errors() {
    let a = acl_agent();
    a.ok(&[
        "acl",
        "policy",
        "create",
        "-name",
        "web-read",
        "-rules",
        "service_prefix \"web\" { policy = \"read\" }",
    ]);
    a.ok(&[
        "acl",
        "policy",
        "create",
        "-name",
        "kv-read",
        "-rules",
        "key_prefix \"\" { policy = \"read\" }",
    ]);

    // Roles: create with a policy and a service identity, update (merged), list, read.
    let out = a.ok(&[
        "acl",
        "role",
        "create",
        "-name",
        "web-team",
        "-policy-name",
        "web-read",
        "-service-identity",
        "web:dc1,dc2",
    ]);
    let role_id = field(&out, "ID");
    assert!(
        out.contains("Service Identities:\n   web (Datacenters: dc1, dc2)\n"),
        "{out}"
    );
    let out = a.ok(&[
        "acl",
        "role",
        "update",
        "-id",
        &role_id[..8],
        "-description",
        "the web team",
        "-policy-name",
        "kv-read",
        "-node-identity",
        "n1:dc1",
    ]);
    assert_eq!(field(&out, "Description"), "the web team");
    assert!(
        out.contains(" - web-read\n") && out.contains(" - kv-read\n"),
        "{out}"
    );
    assert!(
        out.contains("Node Identities:\n   n1 (Datacenter: dc1)\n"),
        "{out}"
    );
    let list = a.ok(&["acl", "role", "list"]);
    assert!(
        list.starts_with(&format!("web-team:\n   ID:           {role_id}\n")),
        "{list}"
    );
    let read = a.ok(&["acl", "role", "read", "-name", "web-team", "-meta"]);
    assert!(read.contains("Create Index: "), "{read}");

    // A token through the role; JSON output; update appends a policy; clone copies.
    let json: serde_json::Value = serde_json::from_str(&a.ok(&[
        "acl",
        "token",
        "create",
        "-role-name",
        "web-team",
        "-description",
        "via role",
        "-format",
        "json",
    ]))
    .unwrap();
    let accessor = json["AccessorID"].as_str().unwrap().to_string();
    let secret = json["SecretID"].as_str().unwrap().to_string();
    assert_eq!(json["Roles"][0]["Name"], "web-team");
    let out = a.ok(&[
        "acl",
        "token",
        "update",
        "-accessor-id",
        &accessor,
        "-append-policy-name",
        "kv-read",
    ]);
    assert_eq!(field(&out, "Description"), "via role");
    assert!(
        out.contains("Roles:\n") && out.contains(" - kv-read\n"),
        "{out}"
    );
    let out = a.ok(&[
        "acl",
        "token",
        "clone",
        "-accessor-id",
        &accessor[..8],
        "-description",
        "copy",
    ]);
    assert_ne!(field(&out, "AccessorID"), accessor);
    assert_eq!(field(&out, "Description"), "copy");

    // The token reads itself through CONSUL_HTTP_TOKEN_FILE.
    write(&a.path("tok"), &format!("{secret}\n"));
    let mut c = cli_command(a.http, &["acl", "token", "read", "-self"]);
    c.env("CONSUL_HTTP_TOKEN_FILE", a.path("tok"));
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(field(&stdout(&o), "AccessorID"), accessor);
    // ... but may not manage ACLs.
    let o = a.run_as(&secret, &["acl", "policy", "list"]);
    failed_with(
        &o,
        1,
        &["Failed to retrieve the policy list: Unexpected response code: 403"],
    );

    // The agent's default token.
    let out = a.ok(&["acl", "set-agent-token", "default", ROOT]);
    assert_eq!(out.trim(), "ACL token \"default\" set successfully");
    let o = a.run_as(ROOT, &["acl", "set-agent-token", "bogus", ROOT]);
    failed_with(&o, 1, &["Unknown token type"]);
    let o = a.run_as(ROOT, &["acl", "set-agent-token", "default"]);
    failed_with(&o, 1, &["Error! Missing TOKEN argument"]);

    // Usage errors and unknown IDs.
    let o = a.run_as(ROOT, &["acl", "policy", "create", "-rules", "x"]);
    failed_with(
        &o,
        1,
        &[
            "Missing require '-name' flag",
            "Usage: proconsul acl policy create",
        ],
    );
    let o = a.run_as(ROOT, &["acl", "token", "create", "-description", "x"]);
    failed_with(
        &o,
        1,
        &["Cannot create a token without specifying -policy-name"],
    );
    let o = a.run_as(ROOT, &["acl", "token", "read", "-accessor-id", "ffffffff"]);
    failed_with(
        &o,
        1,
        &["Error determining token ID: No such token ID with prefix: ffffffff"],
    );
    let o = a.run_as(ROOT, &["acl", "policy", "list", "-format=yaml"]);
    failed_with(&o, 1, &["Unknown format: yaml"]);
    let o = a.run_as(ROOT, &["acl", "token", "list", "-nope"]);
    failed_with(&o, 1, &["flag provided but not defined: -nope"]);

    // Logout refuses a token that no login made; login needs its flags.
    let o = a.run_as(&secret, &["logout"]);
    failed_with(
        &o,
        1,
        &["Error destroying token: Unexpected response code: 403"],
    );
    let o = a.run_as("", &["login", "-method", "m"]);
    failed_with(&o, 1, &["Missing required '-token-sink-file' flag"]);

    // Role and token deletes by name and ID.
    let out = a.ok(&["acl", "role", "delete", "-name", "web-team"]);
    assert_eq!(
        out.trim(),
        format!("Role \"{role_id}\" deleted successfully")
    );
    let o = a.run_as(ROOT, &["acl", "role", "read", "-id", &role_id]);
    failed_with(&o, 1, &[&format!("Role not found with ID \"{role_id}\"")]);
    a.ok(&["acl", "token", "delete", "-accessor-id", &accessor]);
}

#[test]
fn auth_methods_binding_rules_and_templated_policies() {
    let a = acl_agent();

    // A Kubernetes auth method from the shortcut flags (the CA cert from a file).
    write(&a.path("ca.pem"), "-----BEGIN CERTIFICATE-----\n");
    let ca_arg = format!("@{}", a.path("ca.pem").display());
    let out = a.ok(&[
        "acl",
        "auth-method",
        "create",
        "-type",
        "kubernetes",
        "-name",
        "minikube",
        "-description",
        "dev cluster",
        "-kubernetes-host",
        "https://k8s.example:8443",
        "-kubernetes-ca-cert",
        &ca_arg,
        "-kubernetes-service-account-jwt",
        "sa-jwt",
    ]);
    assert!(
        out.starts_with(
            "Name:          minikube\nType:          kubernetes\nDescription:   dev cluster\nConfig:\n{\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("  \"Host\": \"https://k8s.example:8443\""),
        "{out}"
    );
    let out = a.ok(&[
        "acl",
        "auth-method",
        "update",
        "-name",
        "minikube",
        "-description",
        "renamed",
        "-max-token-ttl",
        "10m",
    ]);
    assert_eq!(field(&out, "Description"), "renamed");
    assert_eq!(field(&out, "MaxTokenTTL"), "10m0s");
    assert!(out.contains("\"ServiceAccountJWT\": \"sa-jwt\""), "{out}");
    let list = a.ok(&["acl", "auth-method", "list"]);
    assert!(
        list.contains("minikube:\n   Type:         kubernetes\n   Description:  renamed\n"),
        "{list}"
    );

    // Binding rules: bind-type defaults to service; updates merge; IDs by prefix.
    let out = a.ok(&[
        "acl",
        "binding-rule",
        "create",
        "-method",
        "minikube",
        "-description",
        "all services",
        "-bind-name",
        "svc-${serviceaccount.name}",
    ]);
    let rule_id = field(&out, "ID");
    assert_eq!(field(&out, "BindType"), "service");
    assert_eq!(field(&out, "AuthMethod"), "minikube");
    let out = a.ok(&[
        "acl",
        "binding-rule",
        "update",
        "-id",
        &rule_id[..8],
        "-bind-type",
        "role",
        "-bind-name",
        "admins",
    ]);
    assert_eq!(field(&out, "BindType"), "role");
    assert_eq!(field(&out, "Description"), "all services");
    let list = a.ok(&["acl", "binding-rule", "list", "-method", "minikube"]);
    assert!(
        list.starts_with(&format!("{rule_id}:\n   AuthMethod:   minikube\n")),
        "{list}"
    );
    let read = a.ok(&[
        "acl",
        "binding-rule",
        "read",
        "-id",
        &rule_id,
        "-format=json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&read).unwrap();
    assert_eq!(json["BindName"], "admins");
    let o = a.run_as(ROOT, &["acl", "binding-rule", "read", "-id", "zzz"]);
    failed_with(
        &o,
        1,
        &["Error determining binding rule ID: no such rule ID with prefix: zzz"],
    );

    // Login goes to the servers without a token and fails there; nothing is written.
    write(&a.path("bearer"), "not-a-jwt\n");
    let sink = a.path("sink");
    let o = a.run_as(
        ROOT,
        &[
            "login",
            "-method",
            "minikube",
            "-bearer-token-file",
            &a.path("bearer").display().to_string(),
            "-token-sink-file",
            &sink.display().to_string(),
        ],
    );
    failed_with(&o, 1, &["Error logging in: Unexpected response code"]);
    assert!(!sink.exists());

    let out = a.ok(&["acl", "binding-rule", "delete", "-id", &rule_id[..8]]);
    assert_eq!(
        out.trim(),
        format!("Binding rule \"{rule_id}\" deleted successfully")
    );
    let out = a.ok(&["acl", "auth-method", "delete", "-name", "minikube"]);
    assert_eq!(out.trim(), "Auth method \"minikube\" deleted successfully");
    let o = a.run_as(ROOT, &["acl", "auth-method", "read", "-name", "minikube"]);
    failed_with(&o, 1, &["Auth method not found with name \"minikube\""]);

    // Templated policies: listed, described, previewed, and used by a token.
    let list = a.ok(&["acl", "templated-policy", "list"]);
    assert!(
        list.contains("builtin/dns\n") && list.contains("builtin/service\n"),
        "{list}"
    );
    let out = a.ok(&[
        "acl",
        "templated-policy",
        "read",
        "-name",
        "builtin/service",
    ]);
    assert_eq!(field(&out, "Name"), "builtin/service");
    assert!(
        out.contains("Name: String - Required - The name of the service."),
        "{out}"
    );
    let out = a.ok(&[
        "acl",
        "templated-policy",
        "preview",
        "-name",
        "builtin/service",
        "-var",
        "name:api",
    ]);
    assert!(
        out.contains("Rules:\n") && out.contains("service \"api\""),
        "{out}"
    );
    let out = a.ok(&[
        "acl",
        "token",
        "create",
        "-templated-policy",
        "builtin/service",
        "-var",
        "name:api",
    ]);
    assert!(
        out.contains(
            "Templated Policies:\n   builtin/service\n      Name: api\n      Datacenters: all\n"
        ),
        "{out}"
    );
}
