//! The DNS crate's in-process tier (DESIGN §5): a live `DnsServer` on 127.0.0.1:0 over a fake
//! catalog, queried with hickory-proto, and the handler fed hostile bytes. One binary; each file
//! is a module (`dns::…`, `fuzz::…`). The `dig` test is the interop tier: `tests/interop`.

#[path = "../common/mod.rs"]
mod common;

mod dns;
mod fuzz;
