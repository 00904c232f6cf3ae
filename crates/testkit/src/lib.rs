//! proconsul-testkit (placeholder)
