//! Records the compiler version for `proconsul info` (`runtime.version`, where Consul reports
//! its Go version).

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(1).map(|v| format!("rust{v}")))
        .unwrap_or_else(|| "rust".to_string());
    println!("cargo:rustc-env=PROCONSUL_RUSTC_VERSION={version}");
    println!("cargo:rerun-if-changed=build.rs");
}
