//! ACL rules: parsing never panics, and a policy that parses answers every check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proconsul_acl::{Authorizer, DefaultPolicy, Policy};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = Policy::parse(text) {
        let a = Authorizer::new([&p], DefaultPolicy::Deny);
        for name in ["", "a", "app/", "app/x", "web"] {
            let _ = a.key_read(name) && a.key_write(name) && a.key_write_prefix(name);
            let _ = a.service_read(name) || a.node_write(name) || a.session_read(name);
        }
    }
});
