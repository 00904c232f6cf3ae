//! Session TTL timers: leader-local deadlines, as in Consul (`session_ttl.go`).
//!
//! A TTL session is invalidated when it has not been renewed for twice its TTL. The deadlines
//! are not replicated: a new leader gives every TTL session a full TTL from the moment it
//! takes over ([`SessionTtls::reset_all`]). Writes (create, renew, destroy) set or clear a
//! deadline here; the leader's term task ([`crate::leader`]) sleeps until the earliest one and
//! proposes the destroy. This module only keeps time; it never proposes anything itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use proconsul_types::duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Consul multiplies a session's TTL by 2 before invalidating it.
const SESSION_TTL_MULTIPLIER: u32 = 2;

/// The deadlines of TTL sessions, and a wake-up for whoever waits on the earliest.
#[derive(Default)]
pub(crate) struct SessionTtls {
    deadlines: Mutex<HashMap<String, Instant>>,
    /// Notified when a deadline is set, so a sleeper can move its wake-up earlier.
    changed: Notify,
}

impl SessionTtls {
    /// Give session `id` a full TTL from now.
    pub(crate) fn reset(&self, id: &str, ttl: Duration) {
        let deadline = Instant::now() + ttl * SESSION_TTL_MULTIPLIER;
        self.lock().insert(id.to_string(), deadline);
        self.changed.notify_one();
    }

    /// Session `id` is gone: forget its deadline.
    pub(crate) fn clear(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Replace every deadline: each `(id, ttl)` gets a full TTL from now (a new leader, a
    /// restored snapshot).
    pub(crate) fn reset_all(&self, sessions: impl IntoIterator<Item = (String, Duration)>) {
        let now = Instant::now();
        let mut d = self.lock();
        d.clear();
        for (id, ttl) in sessions {
            d.insert(id, now + ttl * SESSION_TTL_MULTIPLIER);
        }
        drop(d);
        self.changed.notify_one();
    }

    /// Forget every deadline (leadership lost).
    pub(crate) fn clear_all(&self) {
        self.lock().clear();
    }

    /// Remove and return the sessions whose deadline has passed at `now`.
    pub(crate) fn take_expired(&self, now: Instant) -> Vec<String> {
        let mut d = self.lock();
        let gone: Vec<String> = d
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for id in &gone {
            d.remove(id);
        }
        gone
    }

    /// Wait until the earliest deadline (or until one is set, which may be earlier).
    pub(crate) async fn next_expiry(&self) {
        let changed = self.changed.notified();
        let earliest = self.lock().values().min().copied();
        match earliest {
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = changed => {}
                }
            }
            None => changed.await,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.deadlines.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A session TTL worth a timer (non-empty, non-zero).
pub(crate) fn parse_ttl(ttl: &str) -> Option<Duration> {
    if ttl.is_empty() {
        return None;
    }
    duration::parse(ttl).ok().filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_session_expires_after_twice_its_ttl() {
        let t = SessionTtls::default();
        t.reset("a", Duration::from_secs(10));
        let start = Instant::now();
        let gone = loop {
            t.next_expiry().await;
            let gone = t.take_expired(Instant::now());
            if !gone.is_empty() {
                break gone;
            }
        };
        assert_eq!(start.elapsed(), Duration::from_secs(20));
        assert_eq!(gone, vec!["a".to_string()]);
        assert!(t.take_expired(Instant::now()).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_moves_the_deadline() {
        let t = SessionTtls::default();
        t.reset("a", Duration::from_secs(10));
        tokio::time::sleep(Duration::from_secs(15)).await;
        t.reset("a", Duration::from_secs(10));
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(
            t.take_expired(Instant::now()).is_empty(),
            "renewed at 15 s: due at 35 s"
        );
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(t.take_expired(Instant::now()), vec!["a".to_string()]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sleeper_wakes_for_an_earlier_deadline_set_later() {
        let t = std::sync::Arc::new(SessionTtls::default());
        t.reset("long", Duration::from_secs(3600));
        let sleeper = {
            let t = t.clone();
            tokio::spawn(async move {
                loop {
                    t.next_expiry().await;
                    let gone = t.take_expired(Instant::now());
                    if !gone.is_empty() {
                        return (Instant::now(), gone);
                    }
                }
            })
        };
        tokio::task::yield_now().await;
        let start = Instant::now();
        t.reset("short", Duration::from_secs(5));
        let (at, gone) = sleeper.await.unwrap();
        assert_eq!(gone, vec!["short".to_string()]);
        assert_eq!(at - start, Duration::from_secs(10));
    }

    #[test]
    fn cleared_and_reset_all() {
        let t = SessionTtls::default();
        t.reset("a", Duration::from_secs(1));
        t.clear("a");
        t.reset_all([("b".to_string(), Duration::ZERO)]);
        assert_eq!(t.take_expired(Instant::now()), vec!["b".to_string()]);
        assert_eq!(parse_ttl("0s"), None);
        assert_eq!(parse_ttl(""), None);
        assert_eq!(parse_ttl("15s"), Some(Duration::from_secs(15)));
    }
}
