//! The DNS crate's interop tier (DESIGN §5): a real peer, `dig` (bind9-dnsutils), parses our
//! answers. The server and fake catalog are the in-process tier's (`tests/common`).

#[path = "../common/mod.rs"]
mod common;

mod dig;
