//! Agent config files through the agent's own loader (`proconsul_config::load_with`: read,
//! decode with Consul's key rules, merge over `-dev`'s layer, validate into a
//! `RuntimeConfig`). The first byte picks the format (even: JSON, odd: HCL); the rest is the
//! file. Never a panic.
#![no_main]

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use proconsul_config::{AgentFlags, HostInfo};

struct Host;
impl HostInfo for Host {
    fn hostname(&self) -> Option<String> {
        Some("fuzzhost".into())
    }
    fn advertise_ipv4(&self) -> Option<Ipv4Addr> {
        Some(Ipv4Addr::new(10, 0, 0, 7))
    }
}

/// Where each input is written: in memory (`/dev/shm`) where there is one, since a disk busy
/// with other work would make every execution wait on it.
fn dir() -> &'static PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let base = if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        };
        let d = base.join(format!("proconsul-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("a temp dir");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, text)) = data.split_first() else {
        return;
    };
    let path = dir().join(if mode & 1 == 0 {
        "agent.json"
    } else {
        "agent.hcl"
    });
    std::fs::write(&path, text).expect("write the config file");
    let flags = AgentFlags {
        dev: true,
        config_files: vec![path],
        ..Default::default()
    };
    let _ = proconsul_config::load_with(&flags, &Host);
});
