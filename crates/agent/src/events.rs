//! User events this agent received and will list (`/v1/event/list`): the newest
//! [`EVENT_RING`], oldest first, as Consul keeps them, and a watch that ticks on each one
//! (what a blocking `/v1/event/list` waits on).

use std::collections::VecDeque;
use std::sync::Mutex;

use proconsul_types::UserEvent;

/// How many user events `/v1/event/list` remembers (Consul's `userEventBufferSize`).
pub(crate) const EVENT_RING: usize = 256;

pub(crate) struct UserEvents {
    ring: Mutex<VecDeque<UserEvent>>,
    /// Events recorded so far.
    recorded: tokio::sync::watch::Sender<u64>,
}

impl Default for UserEvents {
    fn default() -> Self {
        UserEvents {
            ring: Mutex::new(VecDeque::new()),
            recorded: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl UserEvents {
    pub(crate) fn record(&self, ev: UserEvent) {
        {
            let mut ring = self.ring.lock().unwrap();
            if ring.len() == EVENT_RING {
                ring.pop_front();
            }
            ring.push_back(ev);
        }
        self.recorded.send_modify(|n| *n += 1);
    }

    /// Ticks each time an event is recorded.
    pub(crate) fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.recorded.subscribe()
    }

    /// Every remembered event, oldest first.
    pub(crate) fn list(&self) -> Vec<UserEvent> {
        self.ring.lock().unwrap().iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_events_oldest_first() {
        let events = UserEvents::default();
        for i in 0..EVENT_RING + 3 {
            events.record(UserEvent {
                id: i.to_string(),
                ..Default::default()
            });
        }
        let list = events.list();
        assert_eq!(list.len(), EVENT_RING);
        assert_eq!(list[0].id, "3");
        assert_eq!(list[EVENT_RING - 1].id, (EVENT_RING + 2).to_string());
    }
}
