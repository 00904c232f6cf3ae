//! proconsul-http (placeholder)
