//! One test of this binary in a process of its own, for the few tests that change what is
//! process-wide: the environment (read once, e.g. `SSL_CERT_FILE`), the global log subscriber.
//! The child is this same test binary asked for exactly that test, so the tier keeps one binary.

use std::ffi::OsStr;
use std::process::Command;

/// Set in the child to the test's name: there, the test runs its body.
const CHILD: &str = "PROCONSUL_TEST_OWN_PROCESS";

/// Called first in test `test` of module `module` (pass `module_path!()`). In the test's own
/// process returns `true`: run the body. Otherwise runs the test in a child with `env` set and
/// `unset` removed, fails if the child's run fails, and returns `false`.
pub fn in_own_process(module: &str, test: &str, env: &[(&str, &OsStr)], unset: &[&str]) -> bool {
    // libtest names a test by its path without the crate's name
    let path = module.split_once("::").map_or("", |(_, m)| m);
    let name = format!("{path}::{test}");
    if std::env::var_os(CHILD).is_some_and(|v| v == name.as_str()) {
        return true;
    }
    let mut child = Command::new(std::env::current_exe().expect("the test binary's path"));
    child
        .args([&name, "--exact", "--test-threads=1"])
        .env(CHILD, &name);
    for (k, v) in env {
        child.env(k, v);
    }
    for k in unset {
        child.env_remove(k);
    }
    let out = child.output().expect("run the test binary");
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    // Shown indented, so a runner summing `test result:` lines counts this test once.
    let shown: String = text.lines().map(|l| format!("  | {l}\n")).collect();
    assert!(
        out.status.success() && text.contains("test result: ok. 1 passed"),
        "{name} in its own process: {}\n{shown}",
        out.status
    );
    false
}
