//! Serf's member snapshot format (`<data-dir>/serf/local.snapshot`, hashicorp/serf
//! `snapshot.go`), which lets an agent rejoin the members it knew after a restart.
//!
//! The file is an append-only text log, one [`Record`] per line: `alive: <name> <addr>`,
//! `not-alive: <name>`, `clock: <n>`, `event-clock: <n>`, `query-clock: <n>` and `leave`.
//! Replaying it ([`parse_snapshot`]) gives the [`Previous`] run: who was alive, the three
//! Lamport clocks, and whether we left gracefully. At start the log is compacted
//! ([`compact`]) and then only appended to.
//!
//! This module owns the text and nothing else: it never opens, writes or syncs the file
//! and decides nothing about when to write (the driver's `SnapshotFile` does that).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use super::membership::{Member, MemberStatus, SerfEvent};
use super::messages::LamportTime;

/// What a snapshot file remembers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Previous {
    /// Members alive when we last ran, with their addresses.
    pub alive: Vec<(String, SocketAddr)>,
    /// Lamport clocks.
    pub clock: u64,
    /// Event clock.
    pub event_clock: u64,
    /// Query clock.
    pub query_clock: u64,
    /// Whether we left gracefully last time.
    pub left: bool,
}

/// One line of the snapshot log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// `alive: <name> <addr>`: a member joined (or was alive at compaction).
    Alive {
        /// Member name (may contain spaces; the address is after the last one).
        name: String,
        /// Its gossip address.
        addr: SocketAddr,
    },
    /// `not-alive: <name>`: a member left or failed.
    NotAlive(String),
    /// `clock: <n>`: the member Lamport clock.
    Clock(LamportTime),
    /// `event-clock: <n>`: the user event Lamport clock.
    EventClock(LamportTime),
    /// `query-clock: <n>`: the query Lamport clock.
    QueryClock(LamportTime),
    /// `leave`: we left gracefully.
    Leave,
}

const ALIVE: &str = "alive: ";
const NOT_ALIVE: &str = "not-alive: ";
const CLOCK: &str = "clock: ";
const EVENT_CLOCK: &str = "event-clock: ";
const QUERY_CLOCK: &str = "query-clock: ";
const LEAVE: &str = "leave";

impl fmt::Display for Record {
    /// The line, without its newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Record::Alive { name, addr } => write!(f, "{ALIVE}{name} {addr}"),
            Record::NotAlive(name) => write!(f, "{NOT_ALIVE}{name}"),
            Record::Clock(n) => write!(f, "{CLOCK}{n}"),
            Record::EventClock(n) => write!(f, "{EVENT_CLOCK}{n}"),
            Record::QueryClock(n) => write!(f, "{QUERY_CLOCK}{n}"),
            Record::Leave => f.write_str(LEAVE),
        }
    }
}

impl Record {
    /// Parse one line (surrounding whitespace ignored); `None` for anything malformed or
    /// unknown, which replay skips.
    pub fn parse(line: &str) -> Option<Record> {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix(ALIVE) {
            let (name, addr) = rest.rsplit_once(' ')?;
            return Some(Record::Alive {
                name: name.to_string(),
                addr: addr.parse().ok()?,
            });
        }
        if let Some(name) = line.strip_prefix(NOT_ALIVE) {
            return Some(Record::NotAlive(name.to_string()));
        }
        if let Some(n) = line.strip_prefix(CLOCK) {
            return n.parse().ok().map(Record::Clock);
        }
        if let Some(n) = line.strip_prefix(EVENT_CLOCK) {
            return n.parse().ok().map(Record::EventClock);
        }
        if let Some(n) = line.strip_prefix(QUERY_CLOCK) {
            return n.parse().ok().map(Record::QueryClock);
        }
        (line == LEAVE).then_some(Record::Leave)
    }

    /// The three clock records, as written every time the clocks moved.
    pub fn clocks((clock, event, query): (LamportTime, LamportTime, LamportTime)) -> [Record; 3] {
        [
            Record::Clock(clock),
            Record::EventClock(event),
            Record::QueryClock(query),
        ]
    }

    /// What Serf's snapshotter logs for a member event: joins as alive, leaves and
    /// failures as not-alive; nothing for updates, reaps and user events.
    pub fn for_event(ev: &SerfEvent) -> Option<Record> {
        match ev {
            SerfEvent::Join(m) => Some(Record::Alive {
                name: m.name.clone(),
                addr: m.addr,
            }),
            SerfEvent::Leave(m) | SerfEvent::Failed(m) => Some(Record::NotAlive(m.name.clone())),
            SerfEvent::Update(_) | SerfEvent::Reap(_) | SerfEvent::User { .. } => None,
        }
    }
}

/// Records as file text: one line each, every line ending with a newline.
pub fn encode(records: &[Record]) -> String {
    records.iter().map(|r| format!("{r}\n")).collect()
}

/// Replay snapshot text. Later lines win; `leave` is cleared by any later `alive` line
/// (even one whose address does not parse).
pub fn parse_snapshot(text: &str) -> Previous {
    let mut alive: BTreeMap<String, SocketAddr> = BTreeMap::new();
    let mut p = Previous::default();
    for line in text.lines() {
        match Record::parse(line) {
            Some(Record::Alive { name, addr }) => {
                alive.insert(name, addr);
                p.left = false;
            }
            None if line.trim().starts_with(ALIVE) => p.left = false,
            Some(Record::NotAlive(name)) => {
                alive.remove(&name);
            }
            Some(Record::Clock(n)) => p.clock = n,
            Some(Record::EventClock(n)) => p.event_clock = n,
            Some(Record::QueryClock(n)) => p.query_clock = n,
            Some(Record::Leave) => p.left = true,
            None => {}
        }
    }
    p.alive = alive.into_iter().collect();
    p
}

/// The compacted log written at start: the previous run's alive members (kept until we
/// hear from them again), then the members alive now other than `us`, then the clocks.
pub fn compact(
    prev: &Previous,
    members: &[Member],
    us: &str,
    clocks: (LamportTime, LamportTime, LamportTime),
) -> String {
    let mut records: Vec<Record> = prev
        .alive
        .iter()
        .map(|(name, addr)| Record::Alive {
            name: name.clone(),
            addr: *addr,
        })
        .collect();
    records.extend(
        members
            .iter()
            .filter(|m| m.status == MemberStatus::Alive && m.name != us)
            .map(|m| Record::Alive {
                name: m.name.clone(),
                addr: m.addr,
            }),
    );
    records.extend(Record::clocks(clocks));
    encode(&records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn member(name: &str, a: &str, status: MemberStatus) -> Member {
        Member {
            name: name.into(),
            addr: addr(a),
            tags: BTreeMap::new(),
            status,
            vsn: [0; 6],
            status_ltime: 0,
            changed: Instant::now(),
        }
    }

    #[test]
    fn snapshot_replay_follows_alive_not_alive_and_leave() {
        let p = parse_snapshot(
            "alive: a 127.0.0.1:8301\nalive: b 127.0.0.2:8301\nnot-alive: a\nclock: 7\nevent-clock: 3\nleave\n",
        );
        assert_eq!(p.alive, vec![("b".to_string(), addr("127.0.0.2:8301"))]);
        assert_eq!((p.clock, p.event_clock, p.query_clock), (7, 3, 0));
        assert!(p.left);
    }

    #[test]
    fn every_record_round_trips_through_its_line() {
        let records = [
            Record::Alive {
                name: "node one".into(),
                addr: addr("10.0.0.1:8301"),
            },
            Record::Alive {
                name: "v6".into(),
                addr: addr("[::1]:8302"),
            },
            Record::NotAlive("gone node".into()),
            Record::Clock(u64::MAX),
            Record::EventClock(0),
            Record::QueryClock(42),
            Record::Leave,
        ];
        for r in &records {
            assert_eq!(Record::parse(&r.to_string()).as_ref(), Some(r), "{r}");
            assert!(!r.to_string().contains('\n'));
        }
        let text = encode(&records);
        assert_eq!(text.lines().count(), records.len());
        assert!(text.ends_with('\n'));
        let back: Vec<Record> = text.lines().filter_map(Record::parse).collect();
        assert_eq!(back, records);
    }

    #[test]
    fn lines_are_serfs() {
        let r = Record::Alive {
            name: "a".into(),
            addr: addr("127.0.0.1:8301"),
        };
        assert_eq!(r.to_string(), "alive: a 127.0.0.1:8301");
        assert_eq!(Record::NotAlive("a".into()).to_string(), "not-alive: a");
        assert_eq!(
            encode(&Record::clocks((1, 2, 3))),
            "clock: 1\nevent-clock: 2\nquery-clock: 3\n"
        );
        assert_eq!(encode(&[Record::Leave]), "leave\n");
    }

    #[test]
    fn replay_of_a_written_log_gives_the_state_back() {
        let mut log = encode(&[
            Record::Alive {
                name: "a".into(),
                addr: addr("127.0.0.1:8301"),
            },
            Record::Alive {
                name: "b".into(),
                addr: addr("127.0.0.2:8301"),
            },
        ]);
        log += &encode(&Record::clocks((5, 6, 7)));
        log += &encode(&[Record::NotAlive("a".into()), Record::Leave]);
        log += &encode(&Record::clocks((9, 6, 7)));
        let p = parse_snapshot(&log);
        assert_eq!(
            p,
            Previous {
                alive: vec![("b".into(), addr("127.0.0.2:8301"))],
                clock: 9,
                event_clock: 6,
                query_clock: 7,
                left: true,
            }
        );
        // A later join clears the leave.
        log += &encode(&[Record::Alive {
            name: "c".into(),
            addr: addr("127.0.0.3:8301"),
        }]);
        assert!(!parse_snapshot(&log).left);
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let p = parse_snapshot(
            "clock: 4\nclock: x\nalive: nospace\nalive: a not-an-addr\nbogus\n\n  query-clock: 2  \n",
        );
        assert_eq!(
            p,
            Previous {
                clock: 4,
                query_clock: 2,
                ..Previous::default()
            }
        );
        // An unreadable alive line still clears an earlier leave, as it always has.
        assert!(!parse_snapshot("leave\nalive: a not-an-addr\n").left);
        assert!(Record::parse("leave now").is_none());
    }

    #[test]
    fn compaction_keeps_previous_members_then_current_then_clocks() {
        let prev = Previous {
            alive: vec![("old".into(), addr("127.0.0.9:8301"))],
            clock: 1,
            ..Previous::default()
        };
        let members = [
            member("me", "127.0.0.1:8301", MemberStatus::Alive),
            member("b", "127.0.0.2:8301", MemberStatus::Alive),
            member("c", "127.0.0.3:8301", MemberStatus::Failed),
            member("d", "127.0.0.4:8301", MemberStatus::Left),
        ];
        let text = compact(&prev, &members, "me", (10, 11, 12));
        assert_eq!(
            text,
            "alive: old 127.0.0.9:8301\nalive: b 127.0.0.2:8301\n\
             clock: 10\nevent-clock: 11\nquery-clock: 12\n"
        );
        let p = parse_snapshot(&text);
        assert_eq!(p.alive.len(), 2);
        assert_eq!(
            (p.clock, p.event_clock, p.query_clock, p.left),
            (10, 11, 12, false)
        );
    }

    #[test]
    fn member_events_map_to_records() {
        let m = member("a", "127.0.0.1:8301", MemberStatus::Alive);
        assert_eq!(
            Record::for_event(&SerfEvent::Join(m.clone())),
            Some(Record::Alive {
                name: "a".into(),
                addr: addr("127.0.0.1:8301")
            })
        );
        for ev in [SerfEvent::Leave(m.clone()), SerfEvent::Failed(m.clone())] {
            assert_eq!(Record::for_event(&ev), Some(Record::NotAlive("a".into())));
        }
        assert_eq!(Record::for_event(&SerfEvent::Update(m.clone())), None);
        assert_eq!(Record::for_event(&SerfEvent::Reap(m)), None);
    }
}
