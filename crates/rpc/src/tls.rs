//! TLS on the RPC port, as Consul's `tls.internal_rpc` asks for it.
//!
//! One port carries both plaintext and TLS: the server looks at a connection's first byte (a
//! TLS handshake record starts with `0x16`; a proconsul frame starts with the high byte of its
//! length, always `0x00` under [`crate::MAX_FRAME`]), so servers can turn TLS on one at a time.
//! With `verify_incoming` ([`Incoming::required`]) a plaintext caller is refused before any of
//! its bytes are read as a request, and a TLS caller must present a certificate signed by the
//! CA. With `verify_server_hostname` as well ([`Incoming::server_identity`]), only callers whose
//! certificate is valid for `server.<datacenter>.<domain>` may make server-only calls (Raft,
//! forwarded requests): a client agent's certificate cannot make it a Raft peer (Consul's
//! `AuthorizeServerConn`, the CVE-2018-19653 class).
//!
//! The settings are replaced as a whole on reload ([`SharedTls::set`]); connections already
//! open keep the settings they were made with, new ones take the new.

use std::sync::{Arc, RwLock};

use rustls::pki_types::{CertificateDer, ServerName};

/// How this server accepts TLS callers.
pub struct Incoming {
    pub config: Arc<rustls::ServerConfig>,
    /// `verify_incoming`: plaintext is refused and the config requires a client certificate.
    pub required: bool,
    /// `verify_incoming` and `verify_server_hostname`: the name a caller's certificate must be
    /// valid for to make server-only calls.
    pub server_identity: Option<ServerName<'static>>,
}

/// How this agent dials servers (`verify_outgoing`): the client config (CA roots, its own
/// certificate, hostname checking or not) and the name sent as SNI and checked — its own
/// datacenter's servers' (`server.<dc>.<domain>`), or another's for a call across datacenters.
pub struct Outgoing {
    pub config: Arc<rustls::ClientConfig>,
    pub server_name: ServerName<'static>,
    /// The domain of server names (`consul`), for [`Outgoing::name_in`].
    pub domain: String,
}

impl Outgoing {
    /// The name servers of `datacenter` present: `server.<datacenter>.<domain>`.
    pub fn name_in(&self, datacenter: &str) -> Option<ServerName<'static>> {
        ServerName::try_from(format!("server.{datacenter}.{}", self.domain)).ok()
    }
}

/// The RPC port's TLS settings at one moment. The default is plaintext both ways.
#[derive(Clone, Default)]
pub struct TlsSettings {
    pub incoming: Option<Arc<Incoming>>,
    pub outgoing: Option<Arc<Outgoing>>,
}

/// Settings shared by the listener and the dialers, replaced on reload.
#[derive(Clone, Default)]
pub struct SharedTls(Arc<RwLock<TlsSettings>>);

impl SharedTls {
    pub fn new(settings: TlsSettings) -> Self {
        SharedTls(Arc::new(RwLock::new(settings)))
    }

    pub fn get(&self) -> TlsSettings {
        self.0.read().unwrap().clone()
    }

    pub fn set(&self, settings: TlsSettings) {
        *self.0.write().unwrap() = settings;
    }
}

/// Who is on the other end of a connection, as far as the transport can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub addr: std::net::SocketAddr,
    /// The connection is TLS.
    pub tls: bool,
    /// The caller may make server-only calls: either no server identity is demanded, or its
    /// verified certificate is valid for the server name.
    pub server_authorized: bool,
    /// What the handler's [`crate::Handler::hello`] said about the caller (0 before or
    /// without a handshake).
    pub hello: u32,
}

/// The first byte of a TLS handshake record.
pub(crate) const TLS_HANDSHAKE: u8 = 0x16;

/// Whether a verified client certificate chain's leaf is valid for `name`.
pub(crate) fn cert_valid_for(certs: Option<&[CertificateDer<'_>]>, name: &ServerName<'_>) -> bool {
    let Some(leaf) = certs.and_then(|c| c.first()) else {
        return false;
    };
    match webpki::EndEntityCert::try_from(leaf) {
        Ok(cert) => cert.verify_is_valid_for_subject_name(name).is_ok(),
        Err(_) => false,
    }
}
