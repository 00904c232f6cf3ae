//! proconsul-agent (placeholder)
