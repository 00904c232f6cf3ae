//! Network coordinates with the real binary: a `-dev` server and a client agent on
//! 127.0.6.x gossip, each sends its coordinate to the catalog, `/v1/coordinate/nodes` lists
//! both, and `rtt` prints a plausible estimate — LAN between the two and to the agent itself,
//! WAN for the server — with Consul's errors and exit codes. Coordinate pacing is shortened
//! through Consul's (internal) config keys.

use crate::common;

use std::time::Duration;

use common::{cli, free_port, isolated_config_with, start, stderr, stdout, wait_for};

const FAST: &str = r#""sync_coordinate_interval_min": "200ms",
    "consul": {"coordinate": {"update_period": "200ms"}},"#;

/// The estimate in milliseconds from `rtt`'s output line.
fn estimate_ms(line: &str) -> f64 {
    line.split("rtt: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no estimate in {line:?}"))
}

#[test]
fn coordinates_and_rtt_between_gossiping_agents() {
    let dir = tempfile::tempdir().unwrap();
    let (sdir, cdir) = (dir.path().join("s"), dir.path().join("c"));
    std::fs::create_dir_all(&sdir).unwrap();
    std::fs::create_dir_all(&cdir).unwrap();
    let (hs, hc) = (free_port(), free_port());
    let scfg = isolated_config_with(&sdir, hs, FAST);
    let ccfg = isolated_config_with(&cdir, hc, FAST);
    let _s = start(
        &[
            "agent",
            "-dev",
            "-node=rs1",
            "-bind=127.0.6.1",
            "-client=127.0.0.1",
            &format!("-config-file={}", scfg.display()),
        ],
        &dir.path().join("s.log"),
    );
    common::wait_leader_any(hs);
    let data = dir.path().join("c-data");
    let _c = start(
        &[
            "agent",
            "-node=rc1",
            "-bind=127.0.6.2",
            "-client=127.0.0.1",
            &format!("-data-dir={}", data.display()),
            &format!("-config-file={}", ccfg.display()),
        ],
        &dir.path().join("c.log"),
    );
    wait_for("client HTTP", Duration::from_secs(10), || {
        common::http_get(hc, "/v1/agent/self").is_some()
    });
    let saddr = common::own_member_addr(hs);
    let o = cli(hc, &["join", &saddr]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // Both nodes listed with coordinates that measured something (off the origin).
    wait_for("both coordinates measured", Duration::from_secs(30), || {
        let Some((200, body)) = common::http_get(hc, "/v1/coordinate/nodes") else {
            return false;
        };
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        ["rs1", "rc1"].iter().all(|n| {
            v.as_array().is_some_and(|a| {
                a.iter().any(|e| {
                    e["Node"] == *n
                        && e["Coord"]["Vec"]
                            .as_array()
                            .is_some_and(|v| v.len() == 8 && v.iter().any(|x| x != 0.0))
                })
            })
        })
    });

    // LAN estimate between the two, from either agent.
    for port in [hs, hc] {
        let o = cli(port, &["rtt", "rs1", "rc1"]);
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(
            out.starts_with("Estimated rs1 <-> rc1 rtt: ")
                && out.ends_with(" ms (using LAN coordinates)\n"),
            "{out}"
        );
        let ms = estimate_ms(&out);
        assert!(ms > 0.0 && ms < 100.0, "a loopback RTT: {out}");
    }
    // One name: the other end is the agent asked.
    let out = stdout(&cli(hc, &["rtt", "rs1"]));
    assert!(out.starts_with("Estimated rs1 <-> rc1 rtt: "), "{out}");

    // Unknown nodes, WAN names and argument counts fail like Consul's.
    let o = cli(hc, &["rtt", "nobody", "rc1"]);
    assert_eq!(
        (o.status.code(), stderr(&o)),
        (
            Some(1),
            "Could not find a coordinate for node \"nobody\"\n".into()
        )
    );
    let o = cli(hc, &["rtt", "rs1", "nobody"]);
    assert_eq!(
        stderr(&o),
        "Could not find a coordinate for node \"nobody\"\n"
    );
    let o = cli(hc, &["rtt", "a", "b", "c"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("One or two node names must be specified\n"));

    // WAN: the server knows its own WAN coordinate; the second name defaults to itself.
    let o = cli(hs, &["rtt", "-wan", "rs1.dc1"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        out.starts_with("Estimated rs1.dc1 <-> rs1.dc1 rtt: ")
            && out.ends_with(" ms (using WAN coordinates)\n"),
        "{out}"
    );
    let o = cli(hs, &["rtt", "-wan", "rs1.dc2", "rs1.dc1"]);
    assert_eq!(
        (o.status.code(), stderr(&o)),
        (
            Some(1),
            "Could not find a coordinate for node \"rs1.dc2\"\n".into()
        )
    );
}
