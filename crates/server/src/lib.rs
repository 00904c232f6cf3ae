//! proconsul-server (placeholder)
