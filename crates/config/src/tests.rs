//! End-to-end tests of `load`: files on disk, flags, defaults and validation together.

use super::*;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

struct FakeHost(Option<Ipv4Addr>);

impl HostInfo for FakeHost {
    fn hostname(&self) -> Option<String> {
        Some("testhost".into())
    }
    fn advertise_ipv4(&self) -> Option<Ipv4Addr> {
        self.0
    }
}

const HOST: FakeHost = FakeHost(Some(Ipv4Addr::new(10, 0, 0, 7)));

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p
}

fn with_files(files: Vec<PathBuf>) -> AgentFlags {
    AgentFlags {
        config_files: files,
        ..AgentFlags::default()
    }
}

fn err_text(flags: &AgentFlags) -> String {
    load_with(flags, &HOST).unwrap_err().to_string()
}

const FULL_JSON: &str = r#"{
  "node_name": "n1",
  "datacenter": "DC2",
  "data_dir": "/tmp/pc-data",
  "server": true,
  "bootstrap_expect": 3,
  "bind_addr": "10.1.2.3",
  "client_addr": "127.0.0.1 10.1.2.3",
  "ports": { "dns": 53, "grpc": 8502, "serf_wan": -1 },
  "addresses": { "http": "0.0.0.0" },
  "log_level": "warn",
  "node_meta": { "rack": "r1" },
  "retry_join": ["10.1.2.4", "10.1.2.5"],
  "retry_interval": "15s",
  "encrypt": "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=",
  "performance": { "raft_multiplier": 2 },
  "enable_local_script_checks": true,
  "session_ttl_min": "5s",
  "limits": { "kv_max_value_size": 1024 },
  "dns_config": { "only_passing": true, "node_ttl": "30s", "service_ttl": { "*": "5s" },
                  "soa": { "min_ttl": 60 } },
  "recursors": ["8.8.8.8"],
  "ui_config": { "enabled": true },
  "telemetry": { "prometheus_retention_time": "30s" },
  "disable_update_check": true,
  "service": {
    "name": "web", "tags": ["master"], "port": 9999,
    "check": { "http": "http://localhost:9999/health", "interval": "10s" }
  },
  "checks": [ { "name": "mem", "args": ["/bin/true"], "interval": "30s" } ]
}"#;

const FULL_HCL: &str = r#"
node_name = "n1"
datacenter = "DC2"
data_dir = "/tmp/pc-data"
server = true
bootstrap_expect = 3
bind_addr = "10.1.2.3"
client_addr = "127.0.0.1 10.1.2.3"
ports { dns = 53 grpc = 8502 serf_wan = -1 }
addresses { http = "0.0.0.0" }
log_level = "warn"
node_meta { rack = "r1" }
retry_join = ["10.1.2.4", "10.1.2.5"]
retry_interval = "15s"
encrypt = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
performance { raft_multiplier = 2 }
enable_local_script_checks = true
session_ttl_min = "5s"
limits { kv_max_value_size = 1024 }
dns_config {
  only_passing = true
  node_ttl = "30s"
  service_ttl { "*" = "5s" }
  soa { min_ttl = 60 }
}
recursors = ["8.8.8.8"]
ui_config { enabled = true }
telemetry { prometheus_retention_time = "30s" }
disable_update_check = true
service {
  name = "web" tags = ["master"] port = 9999
  check { http = "http://localhost:9999/health" interval = "10s" }
}
check { name = "mem" args = ["/bin/true"] interval = "30s" }
"#;

#[test]
fn json_and_hcl_give_the_same_config() {
    let dir = tempfile::tempdir().unwrap();
    let j = write(dir.path(), "a.json", FULL_JSON);
    let h = write(dir.path(), "a.hcl", FULL_HCL);
    let mut from_json = load_with(&with_files(vec![j.clone()]), &HOST).unwrap();
    let mut from_hcl = load_with(&with_files(vec![h.clone()]), &HOST).unwrap();
    assert_eq!(from_json.config_files, vec![j]);
    assert_eq!(from_hcl.config_files, vec![h]);
    from_json.config_files.clear();
    from_hcl.config_files.clear();
    assert_eq!(from_json, from_hcl);

    let c = from_json;
    assert_eq!(c.node_name, "n1");
    assert_eq!(c.datacenter, "dc2");
    assert_eq!(c.primary_datacenter, "dc2");
    assert_eq!(c.domain, "consul.");
    assert!(c.server && !c.bootstrap);
    assert_eq!(c.bootstrap_expect, 3);
    assert_eq!(c.advertise_addr, "10.1.2.3".parse::<IpAddr>().unwrap());
    assert_eq!(c.client_addrs.len(), 2);
    assert_eq!(
        c.http_addrs,
        vec!["0.0.0.0:8500".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(
        c.dns_addrs,
        vec![
            "127.0.0.1:53".parse::<SocketAddr>().unwrap(),
            "10.1.2.3:53".parse().unwrap()
        ]
    );
    assert_eq!(
        (c.server_port, c.serf_lan_port, c.serf_wan_port),
        (8300, 8301, None)
    );
    assert_eq!(c.grpc_port, Some(8502));
    assert_eq!(c.log_level, "WARN");
    assert_eq!(c.node_meta["rack"], "r1");
    assert_eq!(c.retry_join.len(), 2);
    assert_eq!(c.retry_interval, Duration::from_secs(15));
    assert_eq!(c.raft_multiplier, 2);
    assert_eq!(c.session_ttl_min, Duration::from_secs(5));
    assert_eq!(c.kv_max_value_size, 1024);
    assert_eq!(c.txn_max_req_len, 512 * 1024);
    assert!(c.dns.only_passing && c.dns.allow_stale);
    assert_eq!(c.dns.node_ttl, Duration::from_secs(30));
    assert_eq!(c.dns.service_ttl["*"], Duration::from_secs(5));
    assert_eq!((c.dns.soa.min_ttl, c.dns.soa.expire), (60, 86400));
    assert_eq!(c.dns.recursors, vec!["8.8.8.8".to_string()]);
    assert_eq!(c.telemetry_prometheus_retention, Duration::from_secs(30));
    assert!(c.ui && c.ui_content_path == "/ui/");
    assert!(
        !c.warnings.iter().any(|w| w.contains("ui")),
        "{:?}",
        c.warnings
    );
    assert!(!c.leave_on_terminate && c.skip_leave_on_interrupt);
    assert_eq!(c.services.len(), 1);
    assert_eq!(c.services[0].checks[0].interval, "10s");
    assert_eq!(c.checks[0].name, "mem");
}

#[test]
fn defaults_for_a_client() {
    let flags = AgentFlags {
        data_dir: Some("/tmp/pc".into()),
        ..AgentFlags::default()
    };
    let c = load_with(&flags, &HOST).unwrap();
    assert_eq!(c.node_name, "testhost");
    assert_eq!(c.datacenter, "dc1");
    assert_eq!(c.bind_addr, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(c.advertise_addr, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)));
    assert_eq!(
        c.http_addrs,
        vec!["127.0.0.1:8500".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(
        c.dns_addrs,
        vec!["127.0.0.1:8600".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(c.serf_wan_port, Some(8302));
    assert_eq!((c.grpc_port, c.https_port), (None, None));
    assert_eq!(c.log_level, "INFO");
    assert_eq!(c.raft_multiplier, 1);
    assert!(c.leave_on_terminate && !c.skip_leave_on_interrupt);
    assert!(c.disable_remote_exec);
    assert_eq!(c.session_ttl_min, Duration::from_secs(10));
    assert_eq!(c.dns, DnsConfig::default());
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);

    // no address to advertise: loopback, with a warning
    let c = load_with(&flags, &FakeHost(None)).unwrap();
    assert_eq!(c.advertise_addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(c.warnings.len(), 1);
}

#[test]
fn dev_defaults() {
    let c = load_with(
        &AgentFlags {
            dev: true,
            ..AgentFlags::default()
        },
        &HOST,
    )
    .unwrap();
    assert!(c.dev_mode && c.server && c.bootstrap);
    assert_eq!(c.data_dir, None);
    assert_eq!(c.bind_addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(c.advertise_addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(c.client_addrs, vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    assert_eq!(c.log_level, "DEBUG");
    assert_eq!(c.raft_multiplier, 1);
    assert_eq!(c.grpc_port, Some(8502));
    assert_eq!(c.node_name, "testhost");
    assert!(c.ui && c.ui_content_path == "/ui/", "-dev serves the UI");

    // dev with -bind 0.0.0.0 still advertises loopback
    let flags = AgentFlags {
        dev: true,
        bind_addr: Some("0.0.0.0".into()),
        ..AgentFlags::default()
    };
    let c = load_with(&flags, &HOST).unwrap();
    assert_eq!(c.advertise_addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
}

#[test]
fn ui_config_takes_effect() {
    let dir = tempfile::tempdir().unwrap();
    let data = Some(dir.path().to_path_buf());
    let load = |text: &str, ui_flag: bool| {
        let f = write(dir.path(), "ui.json", text);
        let flags = AgentFlags {
            ui: ui_flag,
            data_dir: data.clone(),
            ..with_files(vec![f])
        };
        load_with(&flags, &HOST)
    };
    // Off unless asked for; `-ui` turns it on.
    let c = load("{}", false).unwrap();
    assert!(!c.ui);
    assert_eq!(c.ui_content_path, "/ui/");
    assert!(load("{}", true).unwrap().ui);
    // The flag wins over a file, as every flag does.
    assert!(
        load(r#"{"ui_config": {"enabled": false}}"#, true)
            .unwrap()
            .ui
    );

    // The block, with the path normalised as Consul's UIPathBuilder does; `dir` and the
    // metrics keys have no effect (the UI is the embedded one).
    let c = load(
        r#"{"ui_config": {"enabled": true, "content_path": "consul/web", "dir": "/srv/ui",
            "metrics_provider": "prometheus"}}"#,
        false,
    )
    .unwrap();
    assert!(c.ui);
    assert_eq!(c.ui_content_path, "/consul/web/");
    for key in ["ui_config.dir", "ui_config.metrics_provider"] {
        let said = format!(
            "config key {key:?} is accepted for compatibility with Consul and has no effect in proconsul"
        );
        assert!(c.warnings.contains(&said), "{said}: {:?}", c.warnings);
    }

    // The legacy top-level keys are read where Consul reads them now, with its warnings.
    let c = load(r#"{"ui": true, "ui_content_path": "/dash/"}"#, false).unwrap();
    assert!(c.ui);
    assert_eq!(c.ui_content_path, "/dash/");
    for (old, new) in [
        ("ui", "ui_config.enabled"),
        ("ui_content_path", "ui_config.content_path"),
    ] {
        let said = format!("The '{old}' field is deprecated. Use the '{new}' field instead.");
        assert!(c.warnings.contains(&said), "{said}: {:?}", c.warnings);
    }
    // The block wins over a legacy key in the same file.
    let c = load(r#"{"ui": true, "ui_config": {"enabled": false}}"#, false).unwrap();
    assert!(!c.ui);

    // A path over the API, or one that would need quoting, is refused.
    for bad in ["/v1/ui", "a b", "x\"<"] {
        let text = serde_json::json!({ "ui_config": { "content_path": bad } }).to_string();
        let e = load(&text, false).unwrap_err().to_string();
        assert!(e.contains("ui_config.content_path"), "{bad}: {e}");
    }
}

#[test]
fn config_dir_is_read_in_lexical_order_and_later_files_win() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "b.hcl",
        "node_name = \"from-b\"\nretry_join = [\"b\"]\nnode_meta { k = \"b\" }\n",
    );
    write(
        dir.path(),
        "a.json",
        r#"{"node_name":"from-a","data_dir":"/tmp/x","retry_join":["a"],"node_meta":{"k":"a","j":"a"},
            "service":{"name":"s1"}}"#,
    );
    write(
        dir.path(),
        "c.json",
        r#"{"services":[{"name":"s2"},{"name":"s3"}]}"#,
    );
    write(dir.path(), "notes.txt", "not config");
    fs::create_dir(dir.path().join("sub.json")).unwrap();
    let flags = AgentFlags {
        config_dirs: vec![dir.path().into()],
        ..AgentFlags::default()
    };
    let c = load_with(&flags, &HOST).unwrap();
    let names: Vec<_> = c
        .config_files
        .iter()
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["a.json", "b.hcl", "c.json"]);
    assert_eq!(c.node_name, "from-b");
    assert_eq!(c.retry_join, ["a", "b"]);
    assert_eq!(
        (c.node_meta["k"].as_str(), c.node_meta["j"].as_str()),
        ("b", "a")
    );
    let svcs: Vec<_> = c.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(svcs, ["s1", "s2", "s3"]);
}

#[test]
fn flags_beat_files() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "a.json",
        r#"{"node_name":"file","data_dir":"/tmp/x","ports":{"http":1234,"dns":1235},"log_level":"info",
            "retry_join":["a"],"node_meta":{"k":"file"}}"#,
    );
    let flags = AgentFlags {
        config_files: vec![f],
        node_name: Some("flag".into()),
        http_port: Some(8501),
        log_level: Some("trace".into()),
        retry_join: vec!["b".into()],
        node_meta: vec!["k:flag".into(), "x:y:z".into()],
        client_addr: Some("0.0.0.0".into()),
        ..AgentFlags::default()
    };
    let c = load_with(&flags, &HOST).unwrap();
    assert_eq!(c.node_name, "flag");
    assert_eq!(
        c.http_addrs,
        vec!["0.0.0.0:8501".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(
        c.dns_addrs,
        vec!["0.0.0.0:1235".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(c.log_level, "TRACE");
    assert_eq!(c.retry_join, ["a", "b"]);
    assert_eq!(
        (c.node_meta["k"].as_str(), c.node_meta["x"].as_str()),
        ("flag", "y:z")
    );
}

#[test]
fn ports_minus_one_disable_http_and_dns() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "p.hcl",
        "data_dir = \"/tmp/x\"\nports { http = -1 dns = -1 }\n",
    );
    let c = load_with(&with_files(vec![f]), &HOST).unwrap();
    assert!(c.http_addrs.is_empty() && c.dns_addrs.is_empty());
    let f = write(
        dir.path(),
        "q.json",
        r#"{"data_dir":"/tmp/x","ports":{"server":-1}}"#,
    );
    assert_eq!(
        err_text(&with_files(vec![f])),
        "config: ports.server cannot be disabled"
    );
    let f = write(dir.path(), "r.json", r#"{"ports":{"http":70000}}"#);
    let e = err_text(&with_files(vec![f.clone()]));
    assert_eq!(
        e,
        format!(
            "config: failed to parse {}: ports.http: invalid port: 70000 (must be 1-65535, or -1 to disable)",
            f.display()
        )
    );
}

#[test]
fn errors_name_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "a.json", r#"{"data_dir":"/tmp/x","foo":1}"#);
    assert_eq!(
        err_text(&with_files(vec![f.clone()])),
        format!(
            "config: failed to parse {}: invalid config key foo",
            f.display()
        )
    );
    let f = write(
        dir.path(),
        "web.json",
        r#"{"service":{"name":"web","prot":80}}"#,
    );
    assert_eq!(
        err_text(&with_files(vec![f.clone()])),
        format!(
            "config: failed to parse {}: service: unknown field \"prot\"",
            f.display()
        )
    );
    let f = write(
        dir.path(),
        "g.hcl",
        "service {\n  name = \"web\"\n  check {\n    grpc = \"web.local/health\"\n    interval = \"10s\"\n  }\n}\n",
    );
    assert_eq!(
        err_text(&with_files(vec![f.clone()])),
        format!(
            "config: failed to parse {}: service \"web\": check: grpc: invalid gRPC target \"web.local/health\": expected host:port or host:port/service",
            f.display()
        )
    );
    let f = write(dir.path(), "d.hcl", "retry_interval = \"30\"\n");
    let e = err_text(&with_files(vec![f.clone()]));
    assert!(
        e.starts_with(&format!(
            "config: failed to parse {}: retry_interval: invalid duration: \"30\"",
            f.display()
        )),
        "{e}"
    );
    let f = write(dir.path(), "bad.hcl", "server = = true\n");
    let e = err_text(&with_files(vec![f.clone()]));
    assert!(
        e.starts_with(&format!("config: failed to parse {}: line 1", f.display())),
        "{e}"
    );
    let f = write(dir.path(), "conf", "{}");
    assert!(err_text(&with_files(vec![f.clone()])).contains("-config-format"));
    let flags = AgentFlags {
        config_files: vec![f],
        config_format: Some("json".into()),
        data_dir: Some("/tmp/x".into()),
        ..AgentFlags::default()
    };
    assert!(load_with(&flags, &HOST).is_ok());
    let missing = dir.path().join("missing.json");
    assert!(err_text(&with_files(vec![missing.clone()]))
        .starts_with(&format!("config: failed to read {}", missing.display())));
}

#[test]
fn consul_validation_messages() {
    let base = AgentFlags {
        data_dir: Some("/tmp/x".into()),
        ..AgentFlags::default()
    };
    let cases: Vec<(AgentFlags, &str)> = vec![
        (AgentFlags { data_dir: None, ..base.clone() }, "data_dir cannot be empty"),
        (
            AgentFlags { server: true, bootstrap: true, bootstrap_expect: Some(3), ..base.clone() },
            "'bootstrap_expect > 0' and 'bootstrap = true' are mutually exclusive",
        ),
        (
            AgentFlags { bootstrap_expect: Some(3), ..base.clone() },
            "'bootstrap_expect > 0' requires 'server = true'",
        ),
        (AgentFlags { bootstrap: true, ..base.clone() }, "'bootstrap = true' requires 'server = true'"),
        (
            AgentFlags { dev: true, bootstrap_expect: Some(3), ..base.clone() },
            "'bootstrap_expect > 0' not allowed in dev mode",
        ),
        (
            AgentFlags { datacenter: Some("dc 1".into()), ..base.clone() },
            "datacenter can only contain lowercase alphanumeric, - or _ characters. received: \"dc 1\"",
        ),
        (
            AgentFlags { node_meta: vec!["novalue".into()], ..base.clone() },
            "-node-meta: \"novalue\" must be in key:value format",
        ),
        (
            AgentFlags { advertise_addr: Some("0.0.0.0".into()), ..base.clone() },
            "Advertise address cannot be 0.0.0.0, :: or [::]",
        ),
        (AgentFlags { log_level: Some("loud".into()), ..base.clone() }, "invalid log level"),
        (AgentFlags { encrypt: Some("c2hvcnQ=".into()), ..base.clone() }, "encrypt has invalid key"),
        (AgentFlags { node_id: Some("xyz".into()), ..base.clone() }, "not a valid UUID"),
    ];
    for (flags, want) in cases {
        let e = err_text(&flags);
        assert!(e.contains(want), "{e:?} should contain {want:?}");
    }

    // -bootstrap-expect=1 means bootstrap mode, as in Consul
    let flags = AgentFlags {
        server: true,
        bootstrap_expect: Some(1),
        ..base.clone()
    };
    let c = load_with(&flags, &HOST).unwrap();
    assert!(c.bootstrap);
    assert_eq!(c.bootstrap_expect, 0);
    assert!(!c.warnings.is_empty());
}

#[test]
fn script_checks_need_to_be_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "s.json",
        r#"{"data_dir":"/tmp/x","service":{"name":"w","checks":[{"args":["true"],"interval":"5s"}]}}"#,
    );
    assert!(err_text(&with_files(vec![f.clone()])).contains("Scripts are disabled"));
    let flags = AgentFlags {
        enable_local_script_checks: true,
        ..with_files(vec![f])
    };
    assert!(load_with(&flags, &HOST).is_ok());
}

#[test]
fn the_walkthrough_service_file() {
    // the service definition from the seed write-up, as written there
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "web.json",
        r#"{
  "service": {
    "name": "web",
    "tags": ["master"],
    "address": "172.17.0.5",
    "port": 9999,
    "checks": [
      {
        "http": "http://localhost:9999/health",
        "interval": "10s"
      }
    ]
  }
}"#,
    );
    let flags = AgentFlags {
        server: true,
        bootstrap_expect: Some(1),
        data_dir: Some("/tmp/x".into()),
        node_name: Some("s1".into()),
        bind_addr: Some("172.17.0.3".into()),
        rejoin: true,
        config_dirs: vec![dir.path().into()],
        client_addr: Some("0.0.0.0".into()),
        ..AgentFlags::default()
    };
    let c = load_with(&flags, &HOST).unwrap();
    assert!(c.rejoin_after_leave);
    assert_eq!(c.services[0].address, "172.17.0.5");
    assert_eq!(c.services[0].tags, ["master"]);
    assert_eq!(c.services[0].checks[0].http, "http://localhost:9999/health");
    assert_eq!(c.rpc_advertise(), "172.17.0.3:8300".parse().unwrap());
}

#[test]
fn validate_files_collects_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.json", r#"{"service":{"name":"web"}}"#);
    let bad1 = write(dir.path(), "bad1.json", r#"{"nope":1}"#);
    let bad2 = write(dir.path(), "bad2.hcl", "service { port = 1 }\n");
    assert!(validate_files(std::slice::from_ref(&good)).is_ok());
    let errs = validate_files(&[good, bad1, bad2]).unwrap_err();
    assert_eq!(errs.len(), 2);
    assert!(
        errs[1].to_string().ends_with("service: missing name"),
        "{}",
        errs[1]
    );
    let errs = validate_files(&[dir.path().into()]).unwrap_err();
    assert_eq!(errs.len(), 2);
}

#[test]
fn watches_and_remote_exec_from_json_and_hcl_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.json",
        r#"{"data_dir": "/tmp/x", "disable_remote_exec": false,
            "watches": [{"type": "key", "key": "k", "args": ["/bin/h"]}]}"#,
    );
    let b = write(
        dir.path(),
        "b.hcl",
        r#"watches = [
  {
    type = "keyprefix"
    prefix = "app/"
    handler_type = "http"
    http_handler_config {
      path = "http://127.0.0.1:9/hook"
      method = "PUT"
      header = { "x-token" = ["t"] }
      timeout = "3s"
      tls_skip_verify = true
    }
  }
]
"#,
    );
    let c = load_with(&with_files(vec![a.clone(), b]), &HOST).unwrap();
    assert!(!c.disable_remote_exec);
    assert_eq!(c.watches.len(), 2, "lists from files append");
    assert_eq!(c.watches[0].plan, watch::Plan::Key("k".into()));
    assert_eq!(c.watches[1].plan, watch::Plan::KeyPrefix("app/".into()));
    let watch::WatchHandler::Http(h) = &c.watches[1].handler else {
        panic!("{:?}", c.watches[1].handler)
    };
    assert_eq!(h.method, "PUT");
    assert_eq!(h.header["x-token"], vec!["t".to_string()]);
    assert_eq!(h.timeout, Duration::from_secs(3));
    assert!(h.tls_skip_verify);

    let bad = write(
        dir.path(),
        "bad.json",
        r#"{"watches": [{"type": "key", "args": ["x"]}]}"#,
    );
    let e = err_text(&with_files(vec![a.clone(), bad.clone()]));
    assert!(
        e.contains("bad.json")
            && e.ends_with("watches[0]: Failed to parse watch: Must specify a single key to watch"),
        "{e}"
    );
    let no_http = write(dir.path(), "nohttp.json", r#"{"ports": {"http": -1}}"#);
    let e = err_text(&with_files(vec![a, no_http]));
    assert!(
        e.ends_with("watch plans require an HTTP or HTTPS endpoint"),
        "{e}"
    );
}

#[test]
fn coordinate_settings_from_json_and_hcl() {
    let dir = tempfile::tempdir().unwrap();
    let flags = |files: Vec<PathBuf>| AgentFlags {
        data_dir: Some("/tmp/pc".into()),
        ..with_files(files)
    };
    let c = load_with(&flags(vec![]), &HOST).unwrap();
    assert!(!c.disable_coordinates);
    assert_eq!(c.sync_coordinate_interval_min, Duration::from_secs(15));
    assert_eq!(c.sync_coordinate_rate_target, 64.0);
    assert_eq!(c.coordinate_update_period, Duration::from_secs(5));
    assert_eq!(
        (
            c.coordinate_update_batch_size,
            c.coordinate_update_max_batches
        ),
        (128, 5)
    );
    let json = write(
        dir.path(),
        "a.json",
        r#"{"disable_coordinates": true, "sync_coordinate_interval_min": "100ms",
            "sync_coordinate_rate_target": 10.5,
            "consul": {"coordinate": {"update_period": "50ms", "update_batch_size": 10,
                                      "update_max_batches": 2}}}"#,
    );
    let hcl = write(
        dir.path(),
        "b.hcl",
        r#"disable_coordinates = true
sync_coordinate_interval_min = "100ms"
sync_coordinate_rate_target = 10.5
consul {
  coordinate {
    update_period = "50ms"
    update_batch_size = 10
    update_max_batches = 2
  }
}"#,
    );
    for f in [json, hcl] {
        let c = load_with(&flags(vec![f]), &HOST).unwrap();
        assert!(c.disable_coordinates);
        assert_eq!(c.sync_coordinate_interval_min, Duration::from_millis(100));
        assert_eq!(c.sync_coordinate_rate_target, 10.5);
        assert_eq!(c.coordinate_update_period, Duration::from_millis(50));
        assert_eq!(
            (
                c.coordinate_update_batch_size,
                c.coordinate_update_max_batches
            ),
            (10, 2)
        );
    }
    let bad = write(
        dir.path(),
        "c.json",
        r#"{"consul": {"coordinate": {"update_batch_size": 0}}}"#,
    );
    assert!(err_text(&flags(vec![bad])).contains("consul.coordinate.update_batch_size"));
    let bad = write(dir.path(), "d.json", r#"{"consul": {"raft": {}}}"#);
    assert!(err_text(&flags(vec![bad])).contains("raft"));
}

/// Every key Consul's config files accept (from its `agent/config/config.go`), each set once.
const ALL_KEYS_JSON: &str = include_str!("../tests/fixtures/consul-all-keys.json");
/// The same in HCL: blocks, repeated blocks for lists, labelled blocks for named ones.
const ALL_KEYS_HCL: &str = include_str!("../tests/fixtures/consul-all-keys.hcl");

#[test]
fn every_consul_key_loads() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::create_dir(&data).unwrap();
    let load = |name: &str, text: &str| {
        let text = text.replace("DATA_DIR", data.to_str().unwrap());
        let f = write(dir.path(), name, &text);
        match load_with(&with_files(vec![f]), &HOST) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    };
    let c = load("all.json", ALL_KEYS_JSON);
    let from_hcl = load("all.hcl", ALL_KEYS_HCL);
    assert_eq!(from_hcl.warnings, c.warnings);
    assert_eq!(from_hcl.node_name, c.node_name);
    assert_eq!(c.node_name, "all-keys");
    // One warning per ignored key, Consul's wording for Enterprise keys and deprecations.
    for said in [
        "config key \"connect\" is accepted for compatibility with Consul and has no effect in proconsul",
        "\"segments\" is a Consul Enterprise configuration and will have no effect",
        // Deprecated, but in effect (moved into the `acl` block): Consul's warning alone.
        "The 'acl_token' field is deprecated. Use the 'acl.tokens.default' field instead.",
        // Deprecated, but in effect: Consul's warning alone.
        "The 'start_join' field is deprecated. Use the 'retry_join' field instead.",
    ] {
        assert!(c.warnings.iter().any(|w| w == said), "{said}: {:#?}", c.warnings);
    }
    let unique: std::collections::BTreeSet<_> = c.warnings.iter().collect();
    assert_eq!(unique.len(), c.warnings.len(), "{:#?}", c.warnings);
}

#[test]
fn empty_files_are_skipped_and_unmet_security_settings_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.json", "");
    let blank = write(dir.path(), "blank.hcl", "  \n");
    let flags = AgentFlags {
        config_files: vec![empty, blank],
        data_dir: Some(dir.path().into()),
        ..AgentFlags::default()
    };
    assert!(load_with(&flags, &HOST).is_ok());
    let acl = write(
        dir.path(),
        "acl.json",
        r#"{"acl_datacenter": "dc1", "acl_default_policy": "deny"}"#,
    );
    assert_eq!(
        err_text(&with_files(vec![acl.clone()])),
        format!(
            "config: failed to parse {}: acl_datacenter = true asks for legacy ACL enforcement \
             (use acl {{ enabled = true }}), which this proconsul does not provide yet; refusing \
             to start without it",
            acl.display()
        )
    );
}

#[test]
fn hcl_fragments_come_after_files_and_before_flags() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "a.json",
        r#"{"node_name": "from-file", "datacenter": "dcf"}"#,
    );
    let flags = AgentFlags {
        config_files: vec![f],
        hcl: vec![
            "node_name = \"from-hcl\"".into(),
            "log_level = \"warn\"".into(),
        ],
        datacenter: Some("dcflag".into()),
        data_dir: Some(dir.path().into()),
        ..AgentFlags::default()
    };
    let c = load_with(&flags, &HOST).unwrap();
    assert_eq!(c.node_name, "from-hcl");
    assert_eq!(c.datacenter, "dcflag");
    assert_eq!(c.log_level, "WARN");
    let flags = AgentFlags {
        hcl: vec!["nope = 1".into()],
        data_dir: Some(dir.path().into()),
        ..AgentFlags::default()
    };
    assert_eq!(
        err_text(&flags),
        "config: failed to parse -hcl: invalid config key nope"
    );
}

#[test]
fn the_http_api_may_listen_on_unix_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "u.hcl",
        r#"addresses { http = "127.0.0.1 unix:///tmp/pc-http.sock" }
           unix_sockets { mode = "0700", user = "1000" }"#,
    );
    let flags = AgentFlags {
        config_files: vec![f],
        data_dir: Some(dir.path().into()),
        ..AgentFlags::default()
    };
    let c = load_with(&flags, &HOST).unwrap();
    assert_eq!(c.http_unix, vec![PathBuf::from("/tmp/pc-http.sock")]);
    assert_eq!(c.http_addrs.len(), 1);
    assert_eq!(
        (c.unix_socket_mode, c.unix_socket_user),
        (Some(0o700), Some(1000))
    );
    assert!(
        c.warnings.iter().all(|w| !w.contains("unix_sockets")),
        "{:?}",
        c.warnings
    );
    // Only a socket: no TCP listener. DNS cannot be a socket.
    let with_dir = |f: PathBuf| AgentFlags {
        config_files: vec![f],
        data_dir: Some(dir.path().into()),
        ..AgentFlags::default()
    };
    let f = write(
        dir.path(),
        "v.json",
        r#"{"addresses": {"http": "unix:///tmp/x.sock"}}"#,
    );
    let c = load_with(&with_dir(f), &HOST).unwrap();
    assert!(c.http_addrs.is_empty() && c.http_unix.len() == 1);
    let f = write(
        dir.path(),
        "w.json",
        r#"{"addresses": {"dns": "unix:///tmp/x.sock"}}"#,
    );
    assert!(err_text(&with_dir(f)).contains("unix sockets are not supported"));
    let f = write(dir.path(), "m.json", r#"{"unix_sockets": {"mode": "rwx"}}"#);
    assert!(err_text(&with_dir(f)).contains("must be an octal mode"));
}

#[test]
fn acl_block_and_legacy_keys() {
    let dir = tempfile::tempdir().unwrap();
    let in_dir = |files| AgentFlags {
        config_files: files,
        data_dir: Some(dir.path().into()),
        ..AgentFlags::default()
    };
    let f = write(
        dir.path(),
        "acl.hcl",
        "acl {\n enabled = true\n default_policy = \"deny\"\n down_policy = \"deny\"\n token_ttl = \"45s\"\n tokens { initial_management = \"root\"\n agent = \"ag\" }\n}\n",
    );
    let c = load_with(&in_dir(vec![f]), &HOST).unwrap();
    assert!(c.acl.enabled);
    assert!(!c.acl.default_allow);
    assert_eq!(c.acl.down_policy, "deny");
    assert_eq!(c.acl.token_ttl, Duration::from_secs(45));
    assert_eq!(
        c.acl.rights_ttl(),
        Duration::from_secs(30),
        "policy_ttl's default"
    );
    assert_eq!(c.acl.tokens.initial_management, "root");
    assert_eq!(c.acl.tokens.agent, "ag");

    // The legacy top-level keys land in the block (a dropped deny would fail open).
    let legacy = write(
        dir.path(),
        "legacy.json",
        r#"{"acl": {"enabled": true}, "acl_default_policy": "deny", "acl_master_token": "m", "acl_token": "d"}"#,
    );
    let c = load_with(&in_dir(vec![legacy]), &HOST).unwrap();
    assert!(!c.acl.default_allow);
    assert_eq!(c.acl.tokens.initial_management, "m");
    assert_eq!(c.acl.tokens.default, "d");
    assert!(c
        .warnings
        .iter()
        .any(|w| w == "The 'acl_default_policy' field is deprecated. Use the 'acl.default_policy' field instead."));

    // Consul's deprecated names inside the block still work.
    let old = write(
        dir.path(),
        "old.json",
        r#"{"acl": {"enabled": true, "tokens": {"master": "m2", "agent_master": "r"}}}"#,
    );
    let c = load_with(&in_dir(vec![old]), &HOST).unwrap();
    assert_eq!(c.acl.tokens.initial_management, "m2");
    assert_eq!(c.acl.tokens.agent_recovery, "r");

    let bad = write(
        dir.path(),
        "bad.json",
        r#"{"acl": {"default_policy": "maybe"}}"#,
    );
    let e = load_with(&in_dir(vec![bad]), &HOST)
        .unwrap_err()
        .to_string();
    assert!(e.contains("must be either 'allow' or 'deny'"), "{e}");
    let bad = write(
        dir.path(),
        "bad2.json",
        r#"{"acl": {"down_policy": "later"}}"#,
    );
    let e = load_with(&in_dir(vec![bad]), &HOST)
        .unwrap_err()
        .to_string();
    assert!(e.contains("acl.down_policy"), "{e}");
}

#[test]
fn https_listener_settings() {
    let dir = tempfile::tempdir().unwrap();
    let in_dir = |files| AgentFlags {
        config_files: files,
        data_dir: Some(dir.path().into()),
        ..AgentFlags::default()
    };
    // A certificate and key (legacy top-level keys, lifted into tls.defaults) and the port.
    let f = write(
        dir.path(),
        "tls.json",
        r#"{"ports": {"https": 8501}, "cert_file": "/c.pem", "key_file": "/k.pem", "ca_file": "/ca.pem",
            "tls": {"https": {"verify_incoming": true, "tls_min_version": "TLSv1_3"}}}"#,
    );
    let c = load_with(&in_dir(vec![f]), &HOST).unwrap();
    assert_eq!(c.https_addrs, vec!["127.0.0.1:8501".parse().unwrap()]);
    let t = c.https_tls.unwrap();
    assert_eq!(t.cert_file, PathBuf::from("/c.pem"));
    assert!(t.verify_incoming && t.tls13_only);
    assert_eq!(t.ca_file, Some(PathBuf::from("/ca.pem")));
    assert!(c.warnings.iter().any(|w| w
        == "The 'cert_file' field is deprecated. Use the 'tls.defaults.cert_file' field instead."));
    // The defaults' certificate serves the RPC port too; nothing verifies there.
    let r = c.rpc_tls.unwrap();
    assert_eq!(r.cert_file, Some(PathBuf::from("/c.pem")));
    assert!(!r.verify_incoming && !r.verify_outgoing);

    // A port without a certificate, verification without a CA, an unknown version: refused.
    let f = write(dir.path(), "a.json", r#"{"ports": {"https": 8501}}"#);
    let e = load_with(&in_dir(vec![f]), &HOST).unwrap_err().to_string();
    assert!(
        e.contains("needs tls.https (or tls.defaults) cert_file and key_file"),
        "{e}"
    );
    let f = write(
        dir.path(),
        "b.json",
        r#"{"ports": {"https": 8501}, "tls": {"https": {"cert_file": "/c", "key_file": "/k", "verify_incoming": true}}}"#,
    );
    let e = load_with(&in_dir(vec![f]), &HOST).unwrap_err().to_string();
    assert!(
        e.contains("VerifyIncoming set but no CA certificates were provided"),
        "{e}"
    );
    let f = write(
        dir.path(),
        "c.json",
        r#"{"tls": {"https": {"tls_min_version": "SSLv3"}}}"#,
    );
    let e = load_with(&in_dir(vec![f]), &HOST).unwrap_err().to_string();
    assert!(e.contains("tls_min_version"), "{e}");
    // A certificate without its key (or the reverse) is refused, not ignored.
    let f = write(
        dir.path(),
        "e.json",
        r#"{"tls": {"internal_rpc": {"cert_file": "/c"}}}"#,
    );
    let e = load_with(&in_dir(vec![f]), &HOST).unwrap_err().to_string();
    assert!(e.contains("tls.internal_rpc.key_file"), "{e}");
    assert!(
        e.contains("cert_file and key_file must be given together"),
        "{e}"
    );
}

/// Load one config file `name` holding `body`, written in `dir` (also the data dir).
fn load_one_file(
    dir: &std::path::Path,
    name: &str,
    body: &str,
) -> Result<RuntimeConfig, ConfigError> {
    let f = write(dir, name, body);
    load_with(
        &AgentFlags {
            config_files: vec![f],
            data_dir: Some(dir.into()),
            ..AgentFlags::default()
        },
        &HOST,
    )
}

#[test]
fn rpc_tls_settings() {
    let dir = tempfile::tempdir().unwrap();
    let load = |name: &str, body: &str| load_one_file(dir.path(), name, body);
    // Nothing asked: plaintext.
    assert!(load("a.json", "{}").unwrap().rpc_tls.is_none());
    // The legacy keys land where Consul reads them; verify_server_hostname implies
    // verify_outgoing; the name is server.<dc>.<domain>.
    let c = load(
        "b.json",
        r#"{"server": true, "datacenter": "east", "domain": "corp.", "ca_file": "/ca", "cert_file": "/c",
            "key_file": "/k", "verify_incoming_rpc": true, "verify_server_hostname": true}"#,
    )
    .unwrap();
    let r = c.rpc_tls.unwrap();
    assert!(r.verify_incoming && r.verify_outgoing && r.verify_server_hostname);
    assert_eq!(r.server_name, "server.east.corp");
    assert_eq!(r.ca_file, Some(PathBuf::from("/ca")));
    assert!(c.warnings.iter().any(|w| w
        == "The 'verify_server_hostname' field is deprecated. Use the 'tls.internal_rpc.verify_server_hostname' field instead."));
    // internal_rpc overrides defaults.
    let c = load(
        "c.json",
        r#"{"tls": {"defaults": {"ca_file": "/ca", "cert_file": "/c", "key_file": "/k", "verify_outgoing": true},
                    "internal_rpc": {"verify_outgoing": false, "tls_min_version": "TLSv1_3"}}}"#,
    )
    .unwrap();
    let r = c.rpc_tls.unwrap();
    assert!(!r.verify_outgoing && r.tls13_only);
    // Cipher suites, by Consul's names, for TLS 1.2.
    let c = load(
        "g.json",
        r#"{"cert_file": "/c", "key_file": "/k",
            "tls_cipher_suites": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"}"#,
    )
    .unwrap();
    assert_eq!(
        c.rpc_tls.unwrap().cipher_suites,
        vec![
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
        ]
    );
    // Consul's refusals, and ours for a server that could not answer its own peers.
    for (body, want) in [
        (
            r#"{"tls": {"internal_rpc": {"verify_outgoing": true}}}"#,
            "VerifyOutgoing set but no CA certificates were provided",
        ),
        (
            r#"{"tls": {"defaults": {"verify_server_hostname": true}}}"#,
            "VerifyOutgoing set but no CA certificates were provided",
        ),
        (
            r#"{"tls": {"internal_rpc": {"verify_incoming": true, "cert_file": "/c", "key_file": "/k"}}}"#,
            "VerifyIncoming set but no CA certificates were provided",
        ),
        (
            r#"{"tls": {"internal_rpc": {"verify_incoming": true, "ca_file": "/ca"}}}"#,
            "VerifyIncoming requires either a Cert and Key pair",
        ),
        (
            r#"{"server": true, "tls": {"internal_rpc": {"verify_outgoing": true, "ca_file": "/ca"}}}"#,
            "a server that dials its peers over TLS needs cert_file and key_file",
        ),
        (
            r#"{"tls": {"internal_rpc": {"tls_min_version": "SSLv3"}}}"#,
            "tls.internal_rpc.tls_min_version",
        ),
        (
            r#"{"tls_cipher_suites": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_RC4"}"#,
            "no matching Consul Agent TLS cipher suite found for TLS_RSA_WITH_RC4",
        ),
        (
            r#"{"tls": {"https": {"tls_cipher_suites": "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"}}}"#,
            "is a CBC suite",
        ),
        (
            r#"{"tls": {"defaults": {"tls_min_version": "TLSv1_3", "tls_cipher_suites": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}}}"#,
            "only be configured when tls_min_version is TLSv1_2 or lower",
        ),
    ] {
        let e = load("d.json", body).unwrap_err().to_string();
        assert!(e.contains(want), "{body}: {e}");
    }
    // A client agent may verify servers without a certificate of its own.
    let c = load(
        "e.json",
        r#"{"tls": {"internal_rpc": {"verify_outgoing": true, "ca_file": "/ca"}}}"#,
    )
    .unwrap();
    assert!(c.rpc_tls.unwrap().cert_file.is_none());
    // Checks may use the agent's TLS settings.
    let c = load("f.json", r#"{"enable_agent_tls_for_checks": true}"#).unwrap();
    assert!(c.enable_agent_tls_for_checks);
}

#[test]
fn log_file_and_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let load = |name: &str, body: &str| load_one_file(dir.path(), name, body);
    assert!(load("a.json", r#"{"log_file": ""}"#)
        .unwrap()
        .log_file
        .is_none());
    let c = load("b.json", r#"{"log_file": "/var/log/consul/"}"#).unwrap();
    let l = c.log_file.unwrap();
    assert_eq!(
        (l.dir, l.name.as_str(), l.rotate_bytes, l.max_files),
        (PathBuf::from("/var/log/consul/"), "consul.log", 0, 0)
    );
    assert_eq!(l.rotate_duration, Duration::from_secs(24 * 3600));
    let c = load(
        "c.json",
        r#"{"log_file": "/tmp/agent", "log_rotate_bytes": 1024, "log_rotate_duration": "1h", "log_rotate_max_files": -1}"#,
    )
    .unwrap();
    let l = c.log_file.unwrap();
    assert_eq!(
        (l.dir, l.name.as_str(), l.rotate_bytes, l.max_files),
        (PathBuf::from("/tmp/"), "agent", 1024, -1)
    );
    assert_eq!(l.rotate_duration, Duration::from_secs(3600));
    let e = load("d.json", r#"{"log_file": "x", "log_rotate_bytes": -1}"#).unwrap_err();
    assert!(e.to_string().contains("log_rotate_bytes"), "{e}");
}

#[test]
fn telemetry_prefix_filter() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "t.json",
        r#"{"telemetry": {"prefix_filter": ["+consul.raft.apply", "-consul.raft", "consul.bad"], "filter_default": false}}"#,
    );
    let c = load_with(
        &AgentFlags {
            config_files: vec![f],
            data_dir: Some(dir.path().into()),
            ..AgentFlags::default()
        },
        &HOST,
    )
    .unwrap();
    assert_eq!(
        c.telemetry_filter,
        vec![
            ("consul.raft.apply".to_string(), true),
            ("consul.raft".to_string(), false)
        ]
    );
    assert!(!c.telemetry_filter_default);
    assert!(c
        .warnings
        .iter()
        .any(|w| w == "Filter rule must begin with either '+' or '-': \"consul.bad\""));
}

#[test]
fn rate_limits() {
    use proconsul_types::RequestLimitMode;
    let dir = tempfile::tempdir().unwrap();
    let load = |name: &str, body: &str| load_one_file(dir.path(), name, body);
    let c = load("none.json", "{}").unwrap();
    assert_eq!(c.request_limits.mode, RequestLimitMode::Disabled);
    assert!(c.request_limits.read_rate.is_infinite() && c.rpc_rate.is_infinite());
    assert_eq!(c.rpc_max_burst, 1000);
    assert_eq!(c.rpc_max_conns_per_client, 100);
    assert_eq!(
        c.rpc_handshake_timeout,
        Some(std::time::Duration::from_secs(5))
    );
    let c = load(
        "conns.json",
        r#"{"limits": {"rpc_max_conns_per_client": 3, "rpc_handshake_timeout": "250ms"}}"#,
    )
    .unwrap();
    assert_eq!(c.rpc_max_conns_per_client, 3);
    assert_eq!(
        c.rpc_handshake_timeout,
        Some(std::time::Duration::from_millis(250))
    );
    let c = load("off.json", r#"{"limits": {"rpc_handshake_timeout": "0s"}}"#).unwrap();
    assert_eq!(c.rpc_handshake_timeout, None, "0 is no limit");
    for bad in [
        r#"{"limits": {"rpc_max_conns_per_client": -1}}"#,
        r#"{"limits": {"rpc_handshake_timeout": "soon"}}"#,
    ] {
        let e = load("bad-conns.json", bad).unwrap_err().to_string();
        assert!(e.contains("limits.rpc_"), "{bad}: {e}");
    }
    let c = load(
        "l.hcl",
        "limits {\n rpc_rate = 50\n rpc_max_burst = 5\n request_limits {\n mode = \"enforcing\"\n read_rate = 100\n write_rate = -1\n }\n}\n",
    )
    .unwrap();
    assert_eq!(c.request_limits.mode, RequestLimitMode::Enforcing);
    assert_eq!(c.request_limits.read_rate, 100.0);
    assert!(
        c.request_limits.write_rate.is_infinite(),
        "negative: no limit"
    );
    assert_eq!((c.rpc_rate, c.rpc_max_burst), (50.0, 5));
    let e = load(
        "bad.json",
        r#"{"limits": {"request_limits": {"mode": "strict"}}}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("limits.request_limits.mode"), "{e}");
}

#[test]
fn telemetry_sinks() {
    let dir = tempfile::tempdir().unwrap();
    let load = |name: &str, body: &str| load_one_file(dir.path(), name, body);
    let c = load(
        "a.json",
        r#"{"telemetry": {"statsd_address": "127.0.0.1:8125", "dogstatsd_addr": "127.0.0.1:8126", "dogstatsd_tags": ["env:prod"]}}"#,
    )
    .unwrap();
    assert_eq!(c.telemetry_statsd, Some("127.0.0.1:8125".parse().unwrap()));
    assert_eq!(
        c.telemetry_dogstatsd,
        Some("127.0.0.1:8126".parse().unwrap())
    );
    assert_eq!(c.telemetry_dogstatsd_tags, vec!["env:prod".to_string()]);
    assert!(c.telemetry_statsite.is_none() && !c.telemetry_host_metrics);
    let c = load(
        "s.json",
        r#"{"telemetry": {"statsite_address": "127.0.0.1:8127", "enable_host_metrics": true}}"#,
    )
    .unwrap();
    assert_eq!(
        c.telemetry_statsite,
        Some("127.0.0.1:8127".parse().unwrap())
    );
    assert!(c.telemetry_host_metrics);
    let e = load("b.json", r#"{"telemetry": {"statsd_address": "no port"}}"#).unwrap_err();
    assert!(e.to_string().contains("telemetry.statsd_address"), "{e}");
    assert!(load("c.json", "{}").unwrap().telemetry_statsd.is_none());
}

#[test]
fn advertise_addr_wan_defaults_to_advertise_addr() {
    let dir = tempfile::tempdir().unwrap();
    let load = |name: &str, body: &str| load_one_file(dir.path(), name, body);
    let c = load("a.json", r#"{"advertise_addr": "10.0.0.5"}"#).unwrap();
    assert_eq!(c.advertise_addr_wan, "10.0.0.5".parse::<IpAddr>().unwrap());
    let c = load(
        "b.json",
        r#"{"advertise_addr": "10.0.0.5", "advertise_addr_wan": "203.0.113.7"}"#,
    )
    .unwrap();
    assert_eq!(
        c.advertise_addr_wan,
        "203.0.113.7".parse::<IpAddr>().unwrap()
    );
    let e = load("c.json", r#"{"advertise_addr_wan": "not-an-ip"}"#).unwrap_err();
    assert!(e.to_string().contains("advertise_addr_wan"), "{e}");
}

#[test]
fn ui_content_path_flag() {
    let dir = tempfile::tempdir().unwrap();
    let c = load_with(
        &AgentFlags {
            ui: true,
            ui_content_path: Some("consul".into()),
            data_dir: Some(dir.path().into()),
            ..AgentFlags::default()
        },
        &HOST,
    )
    .unwrap();
    assert!(c.ui);
    assert_eq!(c.ui_content_path, "/consul/");
}
