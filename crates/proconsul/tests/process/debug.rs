//! `debug` against a real `agent -dev`: the bundle Consul's layout promises, every file of it
//! parsed, and the refusals; `snapshot inspect -kvdetails`; `operator usage instances`.
//! Consul's floors (10 s duration, 5 s interval) hold for tests too, so the capture takes 12 s.

use crate::common;

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{cli, cli_command, free_port, isolated_config_with, start_dev, stderr, stdout};

/// Every file of a gzip'd tar: (name, type flag, contents).
fn untar(path: &Path) -> Vec<(String, u8, Vec<u8>)> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut tar)
        .unwrap();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 512 <= tar.len() {
        let h = &tar[pos..pos + 512];
        if h.iter().all(|b| *b == 0) {
            break;
        }
        let field = |r: std::ops::Range<usize>| {
            let f = &h[r];
            let end = f.iter().position(|b| *b == 0).unwrap_or(f.len());
            String::from_utf8_lossy(&f[..end]).into_owned()
        };
        let (name, prefix) = (field(0..100), field(345..500));
        let name = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let size = usize::from_str_radix(field(124..136).trim(), 8).unwrap();
        let data = tar[pos + 512..pos + 512 + size].to_vec();
        out.push((name, h[156], data));
        pos += 512 + size.div_ceil(512) * 512;
    }
    out
}

#[test]
fn debug_writes_a_bundle_whose_files_parse() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Debug-level logging, so the agent has lines to stream while the capture runs.
    let cfg = isolated_config_with(dir.path(), port, r#""log_level": "debug","#);
    let _agent = start_dev(&cfg, port, &dir.path().join("log"));
    let out = dir.path().join("bundle");

    let started = Instant::now();
    let mut child = cli_command(
        port,
        &[
            "debug",
            "-duration=10s",
            "-interval=5s",
            &format!("-output={}", out.display()),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Something the log stream must carry: reloads log at INFO.
    while child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_secs(1));
        let _ = cli(port, &["reload"]);
        assert!(started.elapsed() < Duration::from_secs(40), "debug hangs");
    }
    let o = child.wait_with_output().unwrap();
    let elapsed = started.elapsed();
    let (so, se) = (stdout(&o), stderr(&o));
    assert!(o.status.success(), "{so}{se}");
    assert!(elapsed >= Duration::from_secs(12), "{elapsed:?}");
    let archive = format!("{}.tar.gz", out.display());
    let lines: Vec<&str> = so.lines().collect();
    assert_eq!(
        lines[0], "==> Starting debugger and capturing static information...",
        "{so}"
    );
    assert!(lines[1].starts_with("     Agent Version: '1."), "{so}");
    assert_eq!(lines[2], "          Interval: '5s'");
    assert_eq!(lines[3], "          Duration: '10s'");
    assert_eq!(lines[4], format!("            Output: '{archive}'"));
    assert_eq!(
        lines[5],
        "           Capture: 'metrics, logs, host, agent, members'"
    );
    assert!(
        lines[6].starts_with("==> Beginning capture interval "),
        "{so}"
    );
    assert!(so.contains("==> Capture successful "), "{so}");
    assert_eq!(
        lines.last().copied(),
        Some(format!("    Saved debug archive: {archive}").as_str())
    );
    // pprof is a default target; agents in -dev have enable_debug on, and proconsul has no Go
    // profiles to give.
    assert!(
        se.contains(
            "[WARN] Unable to capture pprof: proconsul agents have no Go runtime profiles."
        ),
        "{se}"
    );
    // The directory is gone once archived.
    assert!(!out.exists());

    let files = untar(Path::new(&archive));
    let names: Vec<&str> = files.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "bundle",
            "bundle/agent.json",
            "bundle/consul.log",
            "bundle/host.json",
            "bundle/index.json",
            "bundle/listpeers.json",
            "bundle/members.json",
            "bundle/metrics.json",
        ]
    );
    assert_eq!(files[0].1, b'5', "a directory entry first");
    let file = |n: &str| {
        files
            .iter()
            .find(|(name, _, _)| name == &format!("bundle/{n}"))
            .map(|(_, _, d)| String::from_utf8(d.clone()).unwrap())
            .unwrap()
    };
    let json = |n: &str| -> serde_json::Value {
        serde_json::from_str(&file(n)).unwrap_or_else(|e| panic!("{n}: {e}"))
    };
    assert_eq!(json("agent.json")["Config"]["NodeName"], "n1");
    assert!(json("host.json")["Memory"].is_object());
    assert!(json("members.json").is_array());
    let index = json("index.json");
    assert_eq!(index["Version"], 1);
    assert_eq!(index["Interval"], "5s");
    assert_eq!(index["Duration"], "12s");
    assert_eq!(
        index["Targets"],
        serde_json::json!(["metrics", "logs", "host", "agent", "members"])
    );
    assert!(index["AgentVersion"].as_str().unwrap().starts_with("1."));
    // Go's MarshalIndent with tabs.
    assert!(file("index.json").contains("\n\t\"Version\": 1,"));
    // metrics.json: a sequence of summaries, one per 10 s interval the capture spanned.
    let metrics = file("metrics.json");
    let summaries: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&metrics)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!summaries.is_empty(), "{metrics}");
    for s in &summaries {
        for k in ["Timestamp", "Gauges", "Points", "Counters", "Samples"] {
            assert!(s.get(k).is_some(), "{k} in {s}");
        }
    }
    let log = file("consul.log");
    assert!(log.contains("configuration reloaded"), "{log}");
    let peers = file("listpeers.json");
    assert!(peers.starts_with("Node"), "{peers}");
    assert!(peers.contains("leader"), "{peers}");
}

#[test]
fn debug_refuses_bad_timing_targets_and_an_existing_output() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = isolated_config_with(dir.path(), port, "");
    let _agent = start_dev(&cfg, port, &dir.path().join("log"));
    let out = dir.path().join("out");
    let o_flag = format!("-output={}", out.display());
    let refuse = |args: &[&str], text: &str| {
        let o = cli(port, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stdout(&o));
        assert!(
            stderr(&o).contains(text),
            "{args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
    };
    refuse(
        &["debug", "-duration=5s", &o_flag],
        "==> Capture validation failed: duration must be longer than 10s",
    );
    refuse(
        &["debug", "-interval=1s", &o_flag],
        "==> Capture validation failed: interval must be longer than 10s",
    );
    refuse(
        &["debug", "-duration=20s", "-interval=30s", &o_flag],
        "==> Capture validation failed: duration (20s) must be longer than interval (30s)",
    );
    refuse(
        &["debug", "-capture=agent", "-capture=nonsense", &o_flag],
        "==> Capture validation failed: target not found: nonsense",
    );
    refuse(
        &["debug", "extra"],
        "debug: Too many arguments provided, expected 0",
    );
    refuse(
        &["debug", "-interval=soon"],
        "invalid value \"soon\" for flag -interval: parse error",
    );
    std::fs::create_dir(&out).unwrap();
    refuse(
        &["debug", &o_flag],
        &format!(
            "==> Capture validation failed: output directory already exists: {}",
            out.display()
        ),
    );
    // Static targets only, no archive: the directory stays, nothing streams.
    let kept = dir.path().join("kept");
    let o = cli(
        port,
        &[
            "debug",
            "-capture=agent",
            "-capture=members",
            "-archive=false",
            &format!("-output={}", kept.display()),
        ],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let mut names: Vec<String> = std::fs::read_dir(&kept)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["agent.json", "index.json", "listpeers.json", "members.json"]
    );
    assert!(stdout(&o).ends_with(&format!("    Saved debug archive: {}\n", kept.display())));
}

#[test]
fn snapshot_inspect_kvdetails_and_usage_instances() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = isolated_config_with(dir.path(), port, "");
    let _agent = start_dev(&cfg, port, &dir.path().join("log"));
    let big = "x".repeat(2000);
    for (k, v) in [
        ("app/a/1", big.as_str()),
        ("app/a/2", big.as_str()),
        ("app/b/1", "1"),
        ("other/x", "2"),
        ("top", "3"),
    ] {
        let o = cli(port, &["kv", "put", k, v]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let snap = dir.path().join("s.snap");
    let o = cli(port, &["snapshot", "save", snap.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let inspect = |args: &[&str]| {
        let mut all = vec!["snapshot", "inspect"];
        all.extend_from_slice(args);
        all.push(snap.to_str().unwrap());
        let o = cli(port, &all);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let rows = |text: &str, from: &str| -> Vec<Vec<String>> {
        text.split(from)
            .nth(1)
            .unwrap_or_else(|| panic!("no {from:?} in {text}"))
            .lines()
            .skip(2)
            .take_while(|l| !l.trim_start().starts_with("----"))
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    };
    let plain = inspect(&[]);
    assert!(!plain.contains("Key Name"), "{plain}");
    let types = rows(&plain, " Type");
    assert!(
        types.iter().any(|r| r[0] == "KVS" && r[1] == "5"),
        "{plain}"
    );
    assert!(types.iter().any(|r| r[0] == "Register"), "{plain}");
    // Largest first: the Register and KVS sizes decide, so just check the order holds.
    let sized = |r: &Vec<String>| r[2].clone();
    assert!(!types.is_empty() && types.iter().all(|r| !sized(r).is_empty()));

    // Default depth 2: app/a (the two large values) first, then equals by name.
    let details = inspect(&["-kvdetails"]);
    let kv: Vec<(String, String)> = rows(&details, " Key Name")
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    assert_eq!(kv[0], ("app/a".to_string(), "2".to_string()), "{details}");
    let mut rest: Vec<&str> = kv[1..].iter().map(|(n, _)| n.as_str()).collect();
    rest.sort();
    assert_eq!(rest, ["app/b", "other/x", "top"], "{details}");
    assert!(details
        .trim_end()
        .lines()
        .last()
        .unwrap()
        .starts_with(" Total"));

    let one = inspect(&["-kvdetails", "-kvdepth=1", "-kvfilter=app/"]);
    let kv = rows(&one, " Key Name");
    assert_eq!(kv.len(), 1, "{one}");
    assert_eq!((kv[0][0].as_str(), kv[0][1].as_str()), ("app", "3"));
    assert!(!inspect(&["-kvdetails", "-kvfilter=nothing/"]).contains("Key Name"));

    let json: serde_json::Value =
        serde_json::from_str(&inspect(&["-kvdetails", "-format=json"])).unwrap();
    assert!(json["Meta"]["Index"].as_u64().unwrap() > 0);
    assert_eq!(json["StatsKV"][0]["Name"], "app/a");
    assert_eq!(json["StatsKV"][0]["Count"], 2);
    assert!(json["TotalSizeKV"].as_u64().unwrap() > 4000);
    assert!(json["Stats"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["Name"] == "KVS"));
    let o = cli(
        port,
        &[
            "snapshot",
            "inspect",
            "-format=yaml",
            snap.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("Unknown format: yaml"),
        "{}",
        stderr(&o)
    );

    // operator usage instances: two web instances are billable; the agent's own `consul`
    // service is not.
    for id in ["web1", "web2"] {
        let body = format!(r#"{{"ID":"{id}","Name":"web","Port":80}}"#);
        let r = common::http_request(
            "127.0.0.1",
            port,
            "PUT",
            "/v1/agent/service/register",
            &body,
        );
        assert_eq!(r.map(|r| r.0), Some(200));
    }
    common::wait_for("web in the catalog", Duration::from_secs(10), || {
        stdout(&cli(port, &["operator", "usage", "instances", "-billable"]))
            .starts_with("Billable Service Instances Total: 2\n")
    });
    let o = cli(port, &["operator", "usage", "instances"]);
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..5],
        [
            "Billable Service Instances Total: 2",
            "dc1 Billable Service Instances: 2",
            "",
            "Billable Services",
            "Services      Service instances",
        ],
        "{text}"
    );
    assert!(lines[5].ends_with("2"), "{text}");
    assert_eq!(lines[6..8], ["", "Connect Services"], "{text}");
    assert!(lines[8].starts_with("Type ") && lines[8].ends_with("Service instances"));
    let billable = stdout(&cli(port, &["operator", "usage", "instances", "-billable"]));
    assert!(!billable.contains("Connect Services"), "{billable}");
    let connect = stdout(&cli(port, &["operator", "usage", "instances", "-connect"]));
    assert!(connect.starts_with("Connect Services\nType "), "{connect}");
    let all = stdout(&cli(
        port,
        &[
            "operator",
            "usage",
            "instances",
            "-billable",
            "-all-datacenters",
        ],
    ));
    assert!(
        all.contains("\nDatacenter      Services      Service instances\ndc1 "),
        "{all}"
    );
    assert!(
        all.trim_end().lines().last().unwrap().starts_with("Total "),
        "{all}"
    );
    let o = cli(
        port,
        &["operator", "usage", "instances", "-billable", "-connect"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Cannot specify both -billable and -connect flags\n"
    );
}
