//! `dig` (bind9-dnsutils) parses our SRV answers. Skipped when `dig` is not installed.

use crate::common;

use common::*;

/// Run dig off the runtime's threads, so the server keeps answering.
async fn run(dig: &std::path::Path, args: Vec<String>) -> (bool, String) {
    let dig = dig.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(dig)
            .args(args)
            .output()
            .expect("run dig");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    })
    .await
    .unwrap()
}

fn dig_path() -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("dig"))
            .find(|p| p.is_file())
    })
}

#[tokio::test]
async fn dig_parses_srv_answer() {
    let Some(dig) = dig_path() else {
        eprintln!("dig not found on PATH; skipping");
        return;
    };
    let s = start().await;
    for transport in ["+notcp", "+tcp"] {
        let args = [
            "@127.0.0.1",
            "-p",
            &s.addr.port().to_string(),
            "web.service.consul",
            "SRV",
            transport,
            "+time=5",
            "+tries=1",
        ];
        let (ok, text) = run(&dig, args.iter().map(|a| a.to_string()).collect()).await;
        assert!(ok, "{text}");
        assert!(text.contains("status: NOERROR"), "{text}");
        assert!(text.contains("flags: qr aa rd;"), "{text}");
        // Two glue records plus the OPT echoed for dig's EDNS query.
        assert!(text.contains("EDNS: version: 0"), "{text}");
        assert!(
            text.contains("ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 3"),
            "{text}"
        );
        assert!(
            text.contains("IN\tSRV\t1 10 80 web1.node.dc1.consul."),
            "{text}"
        );
        assert!(
            text.contains("web2.node.dc1.consul.\t0\tIN\tA\t10.0.0.2"),
            "{text}"
        );
    }
    let args = [
        "@127.0.0.1",
        "-p",
        &s.addr.port().to_string(),
        "missing.service.consul",
        "A",
    ];
    let (_, text) = run(&dig, args.iter().map(|a| a.to_string()).collect()).await;
    assert!(text.contains("status: NXDOMAIN"), "{text}");
    assert!(
        text.contains("IN\tSOA\tns.consul. hostmaster.consul."),
        "{text}"
    );
}
