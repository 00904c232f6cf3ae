//! proconsul-api (placeholder)
