//! proconsul-dns (placeholder)
