//! Open connections counted per client IP, for `limits.http_max_conns_per_client` and
//! `limits.rpc_max_conns_per_client`: one client cannot take every socket of an agent.
//!
//! Plain std (a mutex over a map), shared by the HTTP and RPC listeners: a listener asks
//! [`PerClientLimit::admit`] for a slot before it reads anything from a new connection and keeps
//! the [`ClientSlot`] with the connection; dropping it frees the slot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// At most `max` open connections per remote IP (0 = no limit).
#[derive(Debug, Default)]
pub struct PerClientLimit {
    max: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One admitted connection's place in its client's count; released when dropped.
#[derive(Debug)]
pub struct ClientSlot {
    ip: IpAddr,
    limit: Arc<PerClientLimit>,
}

impl PerClientLimit {
    pub fn new(max: u32) -> Arc<Self> {
        Arc::new(PerClientLimit {
            max,
            open: Mutex::default(),
        })
    }

    /// The limit per client (0 = none).
    pub fn max(&self) -> u32 {
        self.max
    }

    /// A slot for one more connection from `ip`, or `None` when it already has `max` open.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if self.max > 0 && *n >= self.max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            ip,
            limit: self.clone(),
        })
    }

    /// Connections open from `ip` now.
    pub fn open_from(&self, ip: IpAddr) -> u32 {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.limit.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_ip_and_frees_on_drop() {
        let limit = PerClientLimit::new(2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let s1 = limit.admit(a).unwrap();
        let _s2 = limit.admit(a).unwrap();
        assert!(limit.admit(a).is_none(), "a third from one IP is refused");
        let _other = limit.admit(b).expect("another IP has its own count");
        drop(s1);
        assert_eq!(limit.open_from(a), 1);
        assert!(limit.admit(a).is_some(), "a freed slot is given again");
    }

    #[test]
    fn zero_is_no_limit() {
        let limit = PerClientLimit::new(0);
        let ip: IpAddr = "::1".parse().unwrap();
        let slots: Vec<_> = (0..1000).map(|_| limit.admit(ip).unwrap()).collect();
        assert_eq!(limit.open_from(ip), 1000);
        drop(slots);
        assert_eq!(limit.open_from(ip), 0);
        assert!(limit.open.lock().unwrap().is_empty());
    }
}
