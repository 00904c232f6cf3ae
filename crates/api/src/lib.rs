//! A small blocking client for the Consul HTTP API, as spoken by proconsul agents.
//!
//! The CLI (`proconsul kv get`, `members`, ...) talks to agents through this crate, so it
//! mirrors the behaviour of HashiCorp's Go client (`github.com/hashicorp/consul/api`) where a
//! user can see it: the same query parameters, `X-Consul-Token` for the ACL token, the same
//! `CONSUL_HTTP_*`/`CONSUL_CACERT`/... environment, HTTPS with a CA and client certificate
//! ([`TlsConfig`]), and errors that print like the Go client's
//! (`Unexpected response code: 500 (No cluster leader)`), because scripts grep for those texts.
//!
//! Consul's client-side coordination recipes come with it: [`Lock`] (`api/lock.go`) and
//! [`Semaphore`] (`api/semaphore.go`), which `proconsul lock` runs.
//!
//! It is deliberately blocking (ureq): a CLI run makes a handful of requests and exits, and a
//! blocking client can be used from tests without a runtime. It never talks to agents over RPC.

mod acl;
mod agent;
mod catalog;
mod client;
mod config;
mod coordinate;
mod encode;
mod error;
mod event;
mod health;
mod kv;
pub mod lock;
mod operator;
pub mod semaphore;
mod session;
mod status;
mod tls;
mod unix;

#[cfg(test)]
mod testserver;

pub use acl::AclTemplatedPolicyResponse;
pub use client::{Client, QueryMeta, QueryOptions};
pub use config::{Config, DEFAULT_ADDRESS};
pub use error::Error;
pub use event::event_id_to_index;
pub use kv::KvWrite;
pub use lock::{Lock, LockError, LockOptions, Lost, Stop};
pub use semaphore::{Semaphore, SemaphoreError, SemaphoreOptions};
pub use session::SessionRequest;
pub use tls::{describe_certificate_error, TlsConfig};

/// Re-exported API shapes, so callers need not depend on `proconsul-types` for the common ones.
pub use proconsul_types::{
    AgentMember, AgentService, CheckServiceNode, HealthCheck, KvEntry, Node, ServiceDefinition,
    ServiceNode, SessionEntry, UserEvent,
};

/// Result of every client call.
pub type Result<T, E = Error> = std::result::Result<T, E>;
