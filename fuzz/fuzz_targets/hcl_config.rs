//! Consul's HCL dialect (config files, `-hcl`, ACL rules): the parser never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = proconsul_config::parse_hcl(text);
    }
});
