//! proconsul-rpc (placeholder)
