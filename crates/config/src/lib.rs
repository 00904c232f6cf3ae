//! proconsul-config (placeholder)
