//! The server crate's in-process tier: servers on in-memory Raft inside the test process.

mod dev_log;
mod paused_time;
mod solo;
