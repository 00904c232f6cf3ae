//! The in-process tier: everything that needs no outside program, in one test binary.
//!
//! * [`golden`] — HashiCorp serf's captured traffic decodes, re-encodes byte for byte.
//! * [`pool`] — the tokio driver over real sockets on 127.0.0.x.
//!
//! The interop tier (`tests/interop`) runs against HashiCorp's `serf` binary.

mod golden;
mod pool;
