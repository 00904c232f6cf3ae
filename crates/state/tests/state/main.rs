//! Behaviour tests of the state store through its public API (no runtime needed).

mod acl;
mod catalog;
mod common;
mod coordinate;
mod kv;
mod prepared_query;
mod session;
mod snapshot;
mod txn;
mod watch;
