//! A cluster whose RPC port is TLS all the way, with certificates made by `proconsul tls`:
//! three servers and a client agent with `verify_incoming`, `verify_outgoing` and
//! `verify_server_hostname` form a cluster, elect, replicate and fail over; a plaintext RPC
//! caller is refused before its request is read; a would-be server holding a client agent's
//! certificate never joins Raft; a server's certificate replaced on disk is served to new
//! connections after `reload`.

use crate::common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::cluster::{agreed_leader, http, leader};
use common::{start, wait_for, Proc, BIN};

const IPS: [&str; 3] = ["127.0.0.101", "127.0.0.102", "127.0.0.103"];
const CLIENT: &str = "127.0.0.104";
const ROGUE: &str = "127.0.0.105";

/// Run `proconsul tls …` in `dir`.
fn tls(dir: &Path, args: &[&str]) {
    let out = Command::new(BIN)
        .arg("tls")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tls {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A config file giving the agent `cert` (`dir/<cert>.pem` and `-key.pem`) and every check on.
fn config(dir: &Path, name: &str, cert: &str) -> std::path::PathBuf {
    let p = dir.join(format!("{name}.json"));
    let file = |f: String| dir.join(f).display().to_string();
    std::fs::write(
        &p,
        serde_json::json!({
            "tls": {
                "defaults": {
                    "ca_file": file("consul-agent-ca.pem".into()),
                    "cert_file": file(format!("{cert}.pem")),
                    "key_file": file(format!("{cert}-key.pem")),
                    "verify_incoming": true,
                    "verify_outgoing": true,
                },
                "internal_rpc": {"verify_server_hostname": true},
            }
        })
        .to_string(),
    )
    .unwrap();
    p
}

fn agent(dir: &Path, name: &str, ip: &str, server: bool, cert: &str) -> Proc {
    let cfg = config(dir, name, cert);
    let mut args = vec![
        "agent".to_string(),
        format!("-node={name}"),
        format!("-bind={ip}"),
        format!("-client={ip}"),
        format!("-data-dir={}", dir.join(name).display()),
        format!("-retry-join={}", IPS[0]),
        "-retry-interval=1s".into(),
        format!("-config-file={}", cfg.display()),
    ];
    if server {
        args.insert(1, "-server".into());
        args.insert(2, "-bootstrap-expect=3".into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    start(&args, &dir.join(format!("{name}.log")))
}

/// The serial number of the certificate the RPC port at `ip` serves to a new connection.
fn served_serial(dir: &Path, ip: &str) -> Option<String> {
    let s = Command::new("openssl")
        .args(["s_client", "-connect", &format!("{ip}:8300")])
        .args(["-servername", "server.dc1.consul"])
        .arg("-cert")
        .arg(dir.join("dc1-cli-consul-0.pem"))
        .arg("-key")
        .arg(dir.join("dc1-cli-consul-0-key.pem"))
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    let pem = String::from_utf8_lossy(&s.stdout).into_owned();
    let start = pem.find("-----BEGIN CERTIFICATE-----")?;
    let end = pem.find("-----END CERTIFICATE-----")? + "-----END CERTIFICATE-----".len();
    file_serial_of(&pem[start..end])
}

fn file_serial_of(pem: &str) -> Option<String> {
    let mut c = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    c.stdin.take()?.write_all(pem.as_bytes()).ok()?;
    let out = c.wait_with_output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn a_cluster_over_verified_tls() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tls(d, &["ca", "create"]);
    for _ in 0..3 {
        tls(d, &["cert", "create", "-server", "-dc", "dc1"]);
    }
    tls(d, &["cert", "create", "-client", "-dc", "dc1"]);
    tls(d, &["cert", "create", "-cli", "-dc", "dc1"]);

    let mut servers: Vec<Option<Proc>> = (0..3)
        .map(|i| {
            Some(agent(
                d,
                &format!("s{}", i + 1),
                IPS[i],
                true,
                &format!("dc1-server-consul-{i}"),
            ))
        })
        .collect();
    let _client = agent(d, "c1", CLIENT, false, "dc1-client-consul-0");
    wait_for("an agreed leader over TLS", Duration::from_secs(60), || {
        agreed_leader(&IPS).is_some()
    });
    wait_for(
        "the client to reach a server",
        Duration::from_secs(30),
        || leader(CLIENT).is_some(),
    );

    // Writes through the client agent (client → server → leader, all TLS) replicate.
    let (c, b) = http(CLIENT, "PUT", "/v1/kv/tls/a", "1").unwrap();
    assert_eq!((c, b.trim()), (200, "true"));
    wait_for("the write on every server", Duration::from_secs(20), || {
        IPS.iter().all(|ip| {
            http(ip, "GET", "/v1/kv/tls/a?stale&raw", "").is_some_and(|(c, b)| c == 200 && b == "1")
        })
    });

    // A plaintext caller: refused with the reason, before its request is read.
    let mut s = std::net::TcpStream::connect(format!("{}:8300", IPS[0])).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(&[0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xFF]);
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(
        String::from_utf8_lossy(&got)
            .contains("Non-TLS connection attempted with VerifyIncoming set"),
        "{got:?}"
    );

    // A would-be server with a client agent's certificate (signed by the same CA): the
    // servers will not treat it as one, so it never gets the data.
    let _rogue = agent(d, "rogue", ROGUE, true, "dc1-client-consul-0");
    std::thread::sleep(Duration::from_secs(8));
    let (_, conf) = http(IPS[0], "GET", "/v1/operator/raft/configuration?stale", "").unwrap();
    let voters: serde_json::Value = serde_json::from_str(&conf).unwrap();
    let rogue_voter = voters["Servers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["Node"] == "rogue" && s["Voter"] == true);
    assert!(!rogue_voter, "{conf}");
    let rogue_kv = http(ROGUE, "GET", "/v1/kv/tls/a?stale&raw", "");
    assert!(
        !rogue_kv
            .as_ref()
            .is_some_and(|(c, b)| *c == 200 && b == "1"),
        "the rogue server got the data: {rogue_kv:?}"
    );

    // Failover: kill the leader; the others elect and keep taking writes over TLS.
    let old = leader(IPS[0]).unwrap();
    let i = IPS
        .iter()
        .position(|ip| old.starts_with(&format!("{ip}:")))
        .unwrap();
    drop(servers[i].take());
    let rest: Vec<&str> = IPS.iter().copied().filter(|ip| *ip != IPS[i]).collect();
    wait_for("a new leader", Duration::from_secs(30), || {
        agreed_leader(&rest).is_some_and(|l| l != old)
    });
    wait_for("a write after failover", Duration::from_secs(30), || {
        http(CLIENT, "PUT", "/v1/kv/tls/b", "2")
            .is_some_and(|(c, b)| c == 200 && b.trim() == "true")
    });

    // Rotation: a new certificate for a live server replaces the old files; after `reload`
    // new connections are served the new one.
    let live = rest[0];
    let n = IPS.iter().position(|ip| *ip == live).unwrap();
    let before = served_serial(d, live).expect("a certificate served");
    tls(d, &["cert", "create", "-server", "-dc", "dc1"]);
    for suffix in [".pem", "-key.pem"] {
        std::fs::copy(
            d.join(format!("dc1-server-consul-3{suffix}")),
            d.join(format!("dc1-server-consul-{n}{suffix}")),
        )
        .unwrap();
    }
    let new = file_serial_of(&std::fs::read_to_string(d.join("dc1-server-consul-3.pem")).unwrap())
        .unwrap();
    assert_ne!(before, new);
    assert_eq!(before, served_serial(d, live).unwrap(), "not before reload");
    let out = common::cluster::cli(live, &["reload"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(served_serial(d, live).unwrap(), new);
    // ...and the cluster still works over it.
    wait_for("a write after rotation", Duration::from_secs(30), || {
        http(live, "PUT", "/v1/kv/tls/c", "3").is_some_and(|(c, b)| c == 200 && b.trim() == "true")
    });
}
