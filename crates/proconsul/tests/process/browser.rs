//! The web UI in headless Chromium (DESIGN §5.9), driving a real `agent -dev` through
//! ChromeDriver's WebDriver API (`browser/webdriver.rs`): a service registered over the API
//! shows up in the open services page within 2 s, and a check that fails turns its row
//! critical; a key created in the UI is what `proconsul kv get` reads, and a concurrent edit
//! is caught by check-and-set instead of being lost; with ACLs on, the token box makes the
//! UI see what the token may see; served over HTTPS, it works as over HTTP.
//!
//! Set `PROCONSUL_UI_SCREENSHOTS=<dir>` to keep a PNG of each page (README's `docs/ui/`).

mod webdriver;

use crate::common;

use std::time::{Duration, Instant};

use common::{cli, free_port, http_request, isolated_config, isolated_config_with, start, stdout};
use serde_json::json;
use webdriver::{Driver, Session};

/// How long the UI may take to show a change (the issue's bound).
const LIVE: Duration = Duration::from_secs(2);
/// How long a page may take to load and render.
const LOAD: Duration = Duration::from_secs(10);

/// Keep a screenshot of the page as `<name>.png` when asked to; check it is a PNG either way.
fn shot(s: &Session, name: &str) {
    let png = s.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    if let Some(dir) = std::env::var_os("PROCONSUL_UI_SCREENSHOTS") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

fn put(http: u16, path: &str, body: &str) {
    let r = http_request("127.0.0.1", http, "PUT", path, body);
    assert!(matches!(r, Some((200, _))), "PUT {path}: {r:?}");
}

/// `document.querySelector(css)` exists (and, given, has `attr` = `value`).
const HAS: &str = "var e = document.querySelector(arguments[0]); \
                   return !!e && (arguments[1] === null || e.getAttribute(arguments[1]) === arguments[2]);";

/// The visible text of the page contains `arguments[0]`.
const SAYS: &str = "return document.body.innerText.indexOf(arguments[0]) >= 0;";

#[test]
fn services_appear_live_and_a_failing_check_turns_its_row_critical() {
    let dir = tempfile::tempdir().unwrap();
    let http = free_port();
    let cfg = isolated_config(dir.path(), http);
    let _agent = common::start_dev(&cfg, http, &dir.path().join("log"));
    let driver = Driver::start();
    let s = driver.session(1000, 660);

    // `/` leads to the UI, which opens on the datacenter's services.
    s.goto(&format!("http://127.0.0.1:{http}/"));
    s.wait(
        "the consul service listed",
        LOAD,
        HAS,
        json!(["tr[data-service=\"consul\"]", null, null]),
    );
    let path = s.js("return location.pathname;", json!([]));
    assert_eq!(path, "/ui/dc1/services");

    put(
        http,
        "/v1/agent/service/register",
        r#"{"Name": "db", "Port": 5432, "Tags": ["postgres"],
            "Check": {"CheckID": "db-ttl", "Name": "replication", "TTL": "10m", "Status": "warning"}}"#,
    );
    // Registered while the page is open: listed within 2 s, without a reload.
    let registered = Instant::now();
    put(
        http,
        "/v1/agent/service/register",
        r#"{"Name": "web", "ID": "web1", "Port": 8080, "Tags": ["v2", "edge"],
            "Check": {"CheckID": "web-ttl", "Name": "web health", "TTL": "10m", "Status": "passing"}}"#,
    );
    s.wait(
        "web listed as passing",
        LIVE,
        HAS,
        json!(["tr[data-service=\"web\"]", "data-status", "passing"]),
    );
    let shown = registered.elapsed();
    assert!(shown < LIVE, "web took {shown:?} to appear");

    // Its check fails: the row turns critical, again without a reload.
    let failed = Instant::now();
    put(
        http,
        "/v1/agent/check/update/web-ttl",
        r#"{"Status": "critical", "Output": "dial tcp 127.0.0.1:8080: connect: connection refused"}"#,
    );
    s.wait(
        "web's row critical",
        LIVE,
        HAS,
        json!(["tr[data-service=\"web\"]", "data-status", "critical"]),
    );
    assert!(failed.elapsed() < LIVE);
    s.wait(
        "db's row warning",
        LIVE,
        HAS,
        json!(["tr[data-service=\"db\"]", "data-status", "warning"]),
    );
    shot(&s, "services");

    // The filter box keeps only the matching rows (by name or tag).
    s.find("#services-filter").send_keys("postgres");
    s.wait(
        "only db listed",
        LOAD,
        "return document.querySelectorAll('tr[data-service]').length === 1 && \
                !!document.querySelector('tr[data-service=\"db\"]');",
        json!([]),
    );
    s.find("#services-filter").clear();

    // A service's instances, with their checks' output.
    s.find("tr[data-service=\"web\"] a").click();
    s.wait(
        "web1 with its failing check",
        LOAD,
        HAS,
        json!(["section[data-instance=\"web1\"]", "data-status", "critical"]),
    );
    s.wait(
        "the check's output",
        LOAD,
        SAYS,
        json!(["connect: connection refused"]),
    );
    shot(&s, "service");

    // Nodes, with their health and services, and one node.
    s.find("nav a[data-section=\"nodes\"]").click();
    s.wait(
        "n1 listed as critical",
        LOAD,
        HAS,
        json!(["tr[data-node=\"n1\"]", "data-status", "critical"]),
    );
    shot(&s, "nodes");
    s.find("tr[data-node=\"n1\"] a").click();
    s.wait("n1's checks", LOAD, SAYS, json!(["Serf Health Status"]));
    s.wait(
        "n1's services",
        LOAD,
        HAS,
        json!(["td a[href$=\"/web\"]", null, null]),
    );
    shot(&s, "node");

    // Readable on a narrow screen: the table becomes labelled cards.
    drop(s);
    let narrow = driver.session(420, 820);
    narrow.goto(&format!("http://127.0.0.1:{http}/ui/dc1/services"));
    narrow.wait(
        "the services on a narrow screen",
        LOAD,
        HAS,
        json!(["tr[data-service=\"web\"]", "data-status", "critical"]),
    );
    let card = narrow.js(
        "var td = document.querySelector('tr[data-service=\"web\"] td'); \
         return [getComputedStyle(td).display, getComputedStyle(td, '::before').content];",
        json!([]),
    );
    assert_eq!(
        card,
        json!(["grid", "\"Service\""]),
        "cells labelled by column"
    );
    shot(&narrow, "services-narrow");
}

#[test]
fn a_key_created_in_the_ui_is_what_kv_get_reads_and_edits_check_and_set() {
    let dir = tempfile::tempdir().unwrap();
    let http = free_port();
    let cfg = isolated_config(dir.path(), http);
    let _agent = common::start_dev(&cfg, http, &dir.path().join("log"));
    for (k, v) in [
        ("app/config/db", "postgres://db.service.consul:5432/app"),
        ("app/config/feature-flags", r#"{"new_ui": true}"#),
        ("app/version", "1.4.2"),
        ("global/maintenance", "false"),
    ] {
        put(http, &format!("/v1/kv/{k}"), v);
    }
    let driver = Driver::start();
    let s = driver.session(1000, 660);

    s.goto(&format!("http://127.0.0.1:{http}/ui/dc1/kv/app/"));
    s.wait(
        "the app folder",
        LOAD,
        HAS,
        json!(["li[data-key=\"app/config/\"]", null, null]),
    );
    shot(&s, "kv");

    // Create app/greeting in the UI; the CLI reads it.
    s.find("#kv-create").click();
    let name = s.find("#kv-name");
    name.send_keys("greeting");
    s.find("#kv-value").send_keys("hello from the UI");
    s.find("#kv-create-form button[type=submit]").click();
    s.wait(
        "the new key's page",
        LOAD,
        "return location.pathname === '/ui/dc1/kv/app/greeting/edit' && \
                document.getElementById('kv-value').value === 'hello from the UI';",
        json!([]),
    );
    let got = cli(http, &["kv", "get", "app/greeting"]);
    assert_eq!(stdout(&got), "hello from the UI\n", "{got:?}");
    // Creating it again does not overwrite it (?cas=0).
    s.goto(&format!("http://127.0.0.1:{http}/ui/dc1/kv/app/create"));
    s.find("#kv-name").send_keys("greeting");
    s.find("#kv-value").send_keys("clobbered");
    s.find("#kv-create-form button[type=submit]").click();
    s.wait("the refusal", LOAD, SAYS, json!(["exists already"]));
    assert_eq!(
        stdout(&cli(http, &["kv", "get", "app/greeting"])),
        "hello from the UI\n"
    );

    // Edit it while someone else changes it: the save is refused, both versions are shown,
    // and keeping ours is another check-and-set against what is there now.
    s.goto(&format!(
        "http://127.0.0.1:{http}/ui/dc1/kv/app/greeting/edit"
    ));
    s.wait(
        "the value loaded",
        LOAD,
        "return document.getElementById('kv-value').value === 'hello from the UI';",
        json!([]),
    );
    shot(&s, "kv-edit");
    let value = s.find("#kv-value");
    value.clear();
    value.send_keys("mine");
    let theirs = cli(http, &["kv", "put", "app/greeting", "theirs"]);
    assert!(theirs.status.success(), "{theirs:?}");
    s.wait(
        "the notice that it changed",
        LIVE,
        "return !document.getElementById('kv-notice').hidden;",
        json!([]),
    );
    s.find("#kv-save").click();
    s.wait(
        "the conflict",
        LOAD,
        "var t = document.getElementById('kv-theirs'); \
         return !document.getElementById('kv-conflict').hidden && !!t && t.textContent === 'theirs';",
        json!([]),
    );
    assert_eq!(
        stdout(&cli(http, &["kv", "get", "app/greeting"])),
        "theirs\n",
        "the concurrent edit was not lost"
    );
    shot(&s, "kv-conflict");
    s.find("#kv-overwrite").click();
    // "Saved" once the page holds the version it saved.
    s.wait("saved", LOAD, SAYS, json!(["Saved app/greeting"]));
    assert_eq!(stdout(&cli(http, &["kv", "get", "app/greeting"])), "mine\n");

    // Delete, also checked against the version shown.
    s.find("#kv-delete").click();
    s.find("#kv-delete-confirm").click();
    s.wait(
        "back in the folder",
        LOAD,
        "return location.pathname === '/ui/dc1/kv/app/';",
        json!([]),
    );
    let gone = cli(http, &["kv", "get", "app/greeting"]);
    assert_eq!(gone.status.code(), Some(1), "{gone:?}");
}

#[test]
fn the_token_box_lets_the_ui_see_what_the_token_may() {
    const ROOT: &str = "7b0e5c62-1f3d-4a8e-b6c9-2d4f1a3e5b70";
    let dir = tempfile::tempdir().unwrap();
    let http = free_port();
    let acl = format!(
        r#""acl": {{"enabled": true, "default_policy": "deny", "tokens": {{"initial_management": "{ROOT}", "agent": "{ROOT}"}}}},"#
    );
    let cfg = isolated_config_with(dir.path(), http, &acl);
    let _agent = start(
        &[
            "agent",
            "-dev",
            "-node=n1",
            &format!("-config-file={}", cfg.display()),
        ],
        &dir.path().join("log"),
    );
    common::wait_for("the management token", Duration::from_secs(30), || {
        common::http_get(http, &format!("/v1/acl/token/self?token={ROOT}"))
            .is_some_and(|(c, _)| c == 200)
    });
    put(
        http,
        &format!("/v1/agent/service/register?token={ROOT}"),
        r#"{"Name": "web", "Port": 8080}"#,
    );
    let driver = Driver::start();
    let s = driver.session(1000, 660);

    // Anonymous (default deny): nothing listed, the ACL pages refused.
    s.goto(&format!("http://127.0.0.1:{http}/ui/dc1/services"));
    s.wait(
        "an empty list",
        LOAD,
        SAYS,
        json!(["No services are registered."]),
    );
    assert_eq!(
        s.js(
            "return document.getElementById('token-form').hidden;",
            json!([])
        ),
        json!(false),
        "the token box is shown when ACLs are on"
    );
    s.find("nav a[data-section=\"acls\"]").click();
    s.wait("the refusal", LOAD, SAYS, json!(["may not read ACLs"]));

    // The management token, given in the box: the tokens are listed, the services too.
    s.find("#token-input").send_keys(ROOT);
    s.find("#token-form button[type=submit]").click();
    s.wait(
        "the tokens listed",
        LOAD,
        "return document.querySelectorAll('#acl-list tr[data-name]').length >= 2;",
        json!([]),
    );
    assert_eq!(
        s.js("return localStorage.getItem('proconsul:token');", json!([])),
        json!(ROOT)
    );
    shot(&s, "acl-tokens");
    s.find("nav a[data-section=\"services\"]").click();
    s.wait(
        "web listed",
        LOAD,
        HAS,
        json!(["tr[data-service=\"web\"]", null, null]),
    );
    // It stays across a reload (localStorage), and is forgotten on request.
    s.goto(&format!("http://127.0.0.1:{http}/ui/dc1/services"));
    s.wait(
        "web listed after a reload",
        LOAD,
        HAS,
        json!(["tr[data-service=\"web\"]", null, null]),
    );
    s.find("#token-clear").click();
    s.wait(
        "nothing listed without it",
        LOAD,
        SAYS,
        json!(["No services are registered."]),
    );
}

#[test]
fn the_ui_works_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for args in [
        &["tls", "ca", "create"][..],
        &["tls", "cert", "create", "-server"],
    ] {
        let o = std::process::Command::new(common::BIN)
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {o:?}");
    }
    let (http, https) = (free_port(), free_port());
    let file = |f: &str| d.join(f).display().to_string();
    let cfg = d.join("agent.json");
    std::fs::write(
        &cfg,
        json!({
            "ports": {
                "http": http, "https": https, "dns": -1, "grpc": -1,
                "server": free_port(), "serf_lan": free_port(), "serf_wan": free_port(),
            },
            "tls": {"defaults": {
                "ca_file": file("consul-agent-ca.pem"),
                "cert_file": file("dc1-server-consul-0.pem"),
                "key_file": file("dc1-server-consul-0-key.pem"),
            }},
        })
        .to_string(),
    )
    .unwrap();
    let _agent = common::start_dev(&cfg, http, &d.join("log"));
    let driver = Driver::start();
    // The test CA is not the browser's; what is tested is that every request the page makes
    // stays on the HTTPS origin (a plain-http one would be blocked as mixed content).
    let s = driver.session_with(1000, 660, &["--ignore-certificate-errors"]);
    s.goto(&format!("https://127.0.0.1:{https}/"));
    s.wait(
        "the services over HTTPS",
        LOAD,
        HAS,
        json!(["tr[data-service=\"consul\"]", null, null]),
    );
    assert_eq!(
        s.js("return location.protocol + location.pathname;", json!([])),
        json!("https:/ui/dc1/services")
    );
    // Live over TLS too: blocking queries through the HTTPS listener.
    let registered = Instant::now();
    put(
        http,
        "/v1/agent/service/register",
        r#"{"Name": "secure-web"}"#,
    );
    s.wait(
        "secure-web listed",
        LIVE,
        HAS,
        json!(["tr[data-service=\"secure-web\"]", null, null]),
    );
    assert!(registered.elapsed() < LIVE);
}
