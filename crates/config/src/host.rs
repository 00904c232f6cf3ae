//! What the config needs to know about the machine: its host name and an address to advertise.
//!
//! Behind a small trait so tests (and several agents in one process) get fixed answers. The
//! system implementation uses only std: the host name from procfs, and the address the kernel
//! would use to reach the outside world (a connected UDP socket sends nothing).

use std::net::{IpAddr, Ipv4Addr, UdpSocket};

/// Facts about the host the config derives defaults from.
pub trait HostInfo {
    /// The machine's host name, if it can be read.
    fn hostname(&self) -> Option<String>;
    /// A non-loopback IPv4 address of this machine to advertise when binding to 0.0.0.0.
    fn advertise_ipv4(&self) -> Option<Ipv4Addr>;
}

/// The real machine.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemHost;

impl HostInfo for SystemHost {
    fn hostname(&self) -> Option<String> {
        ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .map(|s| s.trim().to_string())
            .find(|s| !s.is_empty())
    }

    fn advertise_ipv4(&self) -> Option<Ipv4Addr> {
        // Routing decides the source address; 192.0.2.1 (TEST-NET-1) is never contacted.
        let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
        sock.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
        match sock.local_addr().ok()?.ip() {
            IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Some(ip),
            _ => None,
        }
    }
}
