//! proconsul-raft (placeholder)
