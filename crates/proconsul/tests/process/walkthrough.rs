//! The seed's cluster walk-through (`tests/acceptance/walkthrough.sh`, the project's
//! acceptance script, copied from the shared steering files): three servers and a client on
//! 127.0.0.11–14 with default ports, join/leave/-rejoin, a `web` service with HTTP checks,
//! discovery over HTTP and DNS, leader failover. Needs curl, dig and python3 (`scripts/test`
//! installs them). It binds the default ports on those addresses, which no other test uses.

use std::process::Command;

#[test]
fn cluster_walkthrough() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/acceptance/walkthrough.sh"
    );
    let out = Command::new("bash")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_proconsul"))
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "walk-through failed:\n{stdout}");
    assert!(stdout.contains(", 0 failed"), "{stdout}");
}
