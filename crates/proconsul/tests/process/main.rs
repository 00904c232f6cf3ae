//! The process tier (DESIGN §5): the built `proconsul` binary, started as agents and driven over
//! its sockets and CLI the way an operator would — single agents on free ports, clusters on
//! their own 127.0.0.x addresses with default ports, a partition built with `ip netns`, and the
//! seed's walk-through (`tests/acceptance/walkthrough.sh`). One binary for the tier; each file
//! is a module, so a test is named `module::test`:
//! `cargo test -p proconsul --test process -- cluster::`.
//!
//! Tests run side by side (two at a time on two cores), so each keeps to addresses and ports no
//! other test uses: free ports on 127.0.0.1, or a 127.0.0.x range of its own.

mod common;

mod acl_cli;
mod acl_client;
mod agent;
mod autopilot;
mod browser;
mod cli;
mod cluster;
mod commands;
mod coordinate;
mod crash_cycles;
mod debug;
mod disk_faults;
mod exec_watches;
mod federation;
mod gossip;
mod leader;
mod legacy_data;
mod linearize;
mod partition;
mod recovery;
mod request_path;
mod tls_cli;
mod tls_cluster;
mod transfer_leader;
mod walkthrough;
