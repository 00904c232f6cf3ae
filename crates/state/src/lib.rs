//! proconsul-state (placeholder)
