//! The in-process tier (DESIGN §5): agents started inside this test process by
//! `proconsul-testkit` — port 0, temp dirs, `wait_until` — and driven over HTTP, DNS, gossip and
//! the server RPC port. One binary for the whole tier, because every test binary links the whole
//! agent (minutes of release link time each on two cores); each file is a module, so a test is
//! named `module::test`: `cargo test -p proconsul-testkit --test in_process -- http_kv::`.
//!
//! Tests that change what is process-wide (the environment, the log subscriber) run in a
//! process of their own: `support::in_own_process`.

mod support;

mod acl;
mod agent_local;
mod checks;
mod checks_tls_grpc;
mod checks_tls_trusted;
mod connect_catalog;
mod dns;
mod filter;
mod go_client;
mod gossip;
mod http_catalog;
mod http_coordinate;
mod http_kv;
mod https;
mod limits;
mod metrics;
mod monitor;
mod query;
mod rpc_datacenter;
mod rpc_tls;
mod translate_wan;
mod ui;
