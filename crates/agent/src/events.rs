//! User events this agent received and will list (`/v1/event/list`): the newest
//! [`EVENT_RING`], oldest first, as Consul keeps them.

use std::collections::VecDeque;
use std::sync::Mutex;

use proconsul_types::UserEvent;

/// How many user events `/v1/event/list` remembers (Consul's `userEventBufferSize`).
pub(crate) const EVENT_RING: usize = 256;

#[derive(Default)]
pub(crate) struct UserEvents {
    ring: Mutex<VecDeque<UserEvent>>,
}

impl UserEvents {
    pub(crate) fn record(&self, ev: UserEvent) {
        let mut ring = self.ring.lock().unwrap();
        if ring.len() == EVENT_RING {
            ring.pop_front();
        }
        ring.push_back(ev);
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
