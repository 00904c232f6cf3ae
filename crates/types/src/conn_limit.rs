//! Open connections counted per client IP, for `limits.http_max_conns_per_client` and
//! `limits.rpc_max_conns_per_client`: one client cannot take every socket of an agent.
//!
//! Plain std (a mutex over a map), shared by the HTTP and RPC listeners: a listener asks
//! [`PerClientLimit::admit`] for a slot before it reads anything from a new connection and keeps
//! the [`ClientSlot`] with the connection; dropping it frees the slot. A listener may keep a
//! state shared by all of one client's connections (`T`: the HTTP listener's scheduler of the
//! client's requests); it lives while the client has a connection open. The limit can change
//! while connections are open (a config reload, as Consul's `SetConfig`): connections already
//! open stay, and new ones are counted against the new limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// At most `max` open connections per remote IP (0 = no limit), and one `T` per client.
#[derive(Debug, Default)]
pub struct PerClientLimit<T = ()> {
    max: AtomicU32,
    open: Mutex<HashMap<IpAddr, (u32, Arc<T>)>>,
}

/// One admitted connection's place in its client's count; released when dropped.
#[derive(Debug)]
pub struct ClientSlot<T: Default = ()> {
    ip: IpAddr,
    shared: Arc<T>,
    limit: Arc<PerClientLimit<T>>,
}

impl<T: Default> ClientSlot<T> {
    /// The state shared by every open connection of this client.
    pub fn shared(&self) -> &Arc<T> {
        &self.shared
    }
}

impl<T: Default> PerClientLimit<T> {
    pub fn new(max: u32) -> Arc<Self> {
        Arc::new(PerClientLimit {
            max: AtomicU32::new(max),
            open: Mutex::default(),
        })
    }

    /// The limit per client (0 = none).
    pub fn max(&self) -> u32 {
        self.max.load(Ordering::Relaxed)
    }

    /// A new limit per client for the connections that come from now on.
    pub fn set_max(&self, max: u32) {
        self.max.store(max, Ordering::Relaxed);
    }

    /// A slot for one more connection from `ip`, or `None` when it already has `max` open.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot<T>> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (n, shared) = open.entry(ip).or_default();
        let max = self.max();
        if max > 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            ip,
            shared: shared.clone(),
            limit: self.clone(),
        })
    }

    /// Connections open from `ip` now.
    pub fn open_from(&self, ip: IpAddr) -> u32 {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&ip).map_or(0, |(n, _)| *n)
    }
}

impl<T: Default> Drop for ClientSlot<T> {
    fn drop(&mut self) {
        let mut open = self.limit.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((n, _)) = open.get_mut(&self.ip) {
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
        let limit = PerClientLimit::<()>::new(2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let s1 = limit.admit(a).unwrap();
        let _s2 = limit.admit(a).unwrap();
        assert!(limit.admit(a).is_none(), "a third from one IP is refused");
        let _other = limit.admit(b).expect("another IP has its own count");
        drop(s1);
        assert_eq!(limit.open_from(a), 1);
        let _s3 = limit.admit(a).expect("a freed slot is given again");
        limit.set_max(3);
        let _s4 = limit.admit(a).expect("a raised limit admits more at once");
        assert!(limit.admit(a).is_none());
        limit.set_max(1);
        assert!(
            limit.admit(b).is_none(),
            "a lowered one refuses new connections"
        );
        assert_eq!(limit.open_from(a), 3, "and keeps those already open");
    }

    #[test]
    fn one_shared_state_per_client_while_it_has_a_connection() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let limit = PerClientLimit::<AtomicU32>::new(0);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let first = limit.admit(ip).unwrap();
        let second = limit.admit(ip).unwrap();
        assert!(Arc::ptr_eq(first.shared(), second.shared()));
        first.shared().store(7, Ordering::Relaxed);
        drop((first, second));
        let again = limit.admit(ip).unwrap();
        assert_eq!(
            again.shared().load(Ordering::Relaxed),
            0,
            "a new client's state is new"
        );
    }

    #[test]
    fn zero_is_no_limit() {
        let limit = PerClientLimit::<()>::new(0);
        let ip: IpAddr = "::1".parse().unwrap();
        let slots: Vec<_> = (0..1000).map(|_| limit.admit(ip).unwrap()).collect();
        assert_eq!(limit.open_from(ip), 1000);
        drop(slots);
        assert_eq!(limit.open_from(ip), 0);
        assert!(limit.open.lock().unwrap().is_empty());
    }
}
