//! TLS for HTTPS and gRPC checks (rustls with the ring provider).
//!
//! Server certificates are verified against the system's trust store, read once per process
//! through `rustls-native-certs` (so `SSL_CERT_FILE`/`SSL_CERT_DIR` work as they do for Go's
//! `crypto/x509`, which Consul uses). `tls_server_name` replaces the name sent as SNI and checked
//! against the certificate; `tls_skip_verify` accepts any certificate chain but still checks the
//! handshake signatures, so the peer must hold the private key of the certificate it shows.
//!
//! The trust store cache is the one process-wide value here: it is read-only, the same for every
//! agent in the process, and loading it per probe would re-read ~150 files every interval.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A check's TLS settings (`tls_skip_verify`, `tls_server_name`), and the agent's own under
/// `enable_agent_tls_for_checks` (its CA instead of the system's, its certificate offered).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    pub skip_verify: bool,
    pub server_name: String,
    pub agent: Option<Arc<crate::tls::CheckTls>>,
}

/// The ring provider. rustls 0.23.48 deprecates it for lacking post-quantum key exchange; the
/// alternative (aws-lc-rs) needs cmake and minutes of C build, and check probes are not where
/// harvest-now-decrypt-later matters, so ring stays (DESIGN: keep the tree lean).
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system trust store, loaded on first use. Unreadable entries are skipped (as Go does);
/// an empty store simply makes every verified handshake fail with "unknown authority".
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let loaded = rustls_native_certs::load_native_certs();
            for e in &loaded.errors {
                tracing::warn!(error = %e, "checks: could not read a system CA certificate");
            }
            let mut roots = RootCertStore::empty();
            let (_added, _ignored) = roots.add_parsable_certificates(loaded.certs);
            Arc::new(roots)
        })
        .clone()
}

/// Accepts any certificate chain (`tls_skip_verify`) but verifies the handshake signatures
/// with the provider's algorithms.
#[derive(Debug)]
struct AcceptAnyChain(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyChain {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A client config for one check: `roots` (the agent's CA under `enable_agent_tls_for_checks`,
/// else the system's, unless given) or no verification, offering `alpn` (`h2` for gRPC,
/// `http/1.1` for HTTPS checks) and the agent's certificate when it has one.
pub(crate) fn client_config(
    opts: &TlsOptions,
    roots: Option<Arc<RootCertStore>>,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?;
    let agent = opts.agent.as_deref();
    let builder = if opts.skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyChain(provider)))
    } else {
        let roots = roots
            .or_else(|| agent.map(|a| a.roots()))
            .unwrap_or_else(system_roots);
        builder.with_root_certificates(roots)
    };
    let mut config = match agent.and_then(|a| a.client_cert()) {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| format!("tls: the agent's certificate and key do not match: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The name to verify (and send as SNI): `tls_server_name`, else the host being dialled
/// (IPv6 brackets removed).
pub(crate) fn server_name(opts: &TlsOptions, host: &str) -> Result<ServerName<'static>, String> {
    let name = if opts.server_name.is_empty() {
        host.trim_start_matches('[').trim_end_matches(']')
    } else {
        opts.server_name.as_str()
    };
    ServerName::try_from(name.to_string()).map_err(|_| format!("tls: invalid server name {name:?}"))
}

/// Run the TLS handshake over a connected stream.
pub(crate) async fn handshake(
    tcp: TcpStream,
    host: &str,
    opts: &TlsOptions,
    alpn: &[&[u8]],
) -> Result<TlsStream<TcpStream>, String> {
    let config = client_config(opts, None, alpn)?;
    let name = server_name(opts, host)?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| describe(&e))
}

/// Go-like text for a failed handshake (`tls: failed to verify certificate: x509: ...`).
fn describe(e: &std::io::Error) -> String {
    use rustls::CertificateError as C;
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return format!("tls: {e}");
    };
    match tls {
        rustls::Error::InvalidCertificate(c) => {
            let why = match c {
                C::UnknownIssuer => "x509: certificate signed by unknown authority".to_string(),
                C::Expired
                | C::ExpiredContext { .. }
                | C::NotValidYet
                | C::NotValidYetContext { .. } => {
                    format!("x509: certificate has expired or is not yet valid: {c}")
                }
                other => format!("x509: {other}"),
            };
            format!("tls: failed to verify certificate: {why}")
        }
        other => format!("tls: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        let plain = TlsOptions::default();
        assert!(matches!(
            server_name(&plain, "127.0.0.1").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name(&plain, "[::1]").unwrap(),
            ServerName::IpAddress(_)
        ));
        let over = TlsOptions {
            server_name: "web.service.consul".into(),
            ..Default::default()
        };
        assert_eq!(
            server_name(&over, "127.0.0.1").unwrap().to_str(),
            "web.service.consul"
        );
        assert!(server_name(&plain, "bad name!").is_err());
    }

    #[test]
    fn configs_build_with_ring() {
        let roots = Arc::new(RootCertStore::empty());
        let c = client_config(&TlsOptions::default(), Some(roots), &[b"h2"]).unwrap();
        assert_eq!(c.alpn_protocols, vec![b"h2".to_vec()]);
        let skip = TlsOptions {
            skip_verify: true,
            ..Default::default()
        };
        assert!(client_config(&skip, None, &[]).is_ok());
    }
}
