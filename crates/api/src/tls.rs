//! HTTPS to an agent: the CA, client certificate and server name settings of Consul's Go client
//! (`api.TLSConfig`, filled from `-ca-file`/`CONSUL_CACERT` and friends), turned into a rustls
//! client that ureq runs its requests over.
//!
//! Why a connector of our own rather than ureq's rustls feature: `-tls-server-name` must set the
//! name the server's certificate is checked against (and the SNI), independently of the host the
//! request goes to, and ureq's TLS settings have no such knob. The connector is the small piece
//! of ureq's (unversioned) transport API that wraps the TCP stream; the lock file pins ureq, so
//! that API cannot move under us unnoticed. Crypto is ring only, like every other TLS user in the
//! workspace.
//!
//! Failures read like Go's (`tls: failed to verify certificate: x509: certificate signed by
//! unknown authority`), because the CLI prints them after Consul's own prefixes.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct,
    RootCertStore, SignatureScheme, StreamOwned,
};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport,
    TransportAdapter,
};

use crate::Error;

/// TLS settings of a client, as Consul's `api.TLSConfig`. All optional: with none of them an
/// `https://` address is checked against the system's roots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// `-tls-server-name`/`CONSUL_TLS_SERVER_NAME`: the name the agent's certificate must be
    /// valid for, and the SNI sent (a `:port` suffix is ignored). Default: the address's host.
    pub server_name: Option<String>,
    /// `-ca-file`/`CONSUL_CACERT`: PEM file of the CA certificates to trust. Wins over `ca_path`.
    pub ca_file: Option<PathBuf>,
    /// `-ca-path`/`CONSUL_CAPATH`: a directory whose every file (recursively) holds PEM CA
    /// certificates, as go-rootcerts reads it.
    pub ca_path: Option<PathBuf>,
    /// `-client-cert`/`CONSUL_CLIENT_CERT`: PEM certificate chain presented to the agent (for
    /// `verify_incoming`); needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// `-client-key`/`CONSUL_CLIENT_KEY`: the client certificate's private key.
    pub key_file: Option<PathBuf>,
    /// `CONSUL_HTTP_SSL_VERIFY=false`: accept any server certificate (the handshake's
    /// signatures are still checked, as Go's `InsecureSkipVerify` does).
    pub insecure_skip_verify: bool,
}

impl TlsConfig {
    /// Does any setting name a file? Consul loads (and so rejects) them even for a plain-http
    /// address.
    pub(crate) fn names_files(&self) -> bool {
        self.ca_file.is_some()
            || self.ca_path.is_some()
            || self.cert_file.is_some()
            || self.key_file.is_some()
    }
}

/// A loaded TLS setup: the rustls client config and the name to verify. Cheap to clone; it is
/// the connector every `https://` request of a client goes through.
#[derive(Clone)]
pub(crate) struct Tls {
    config: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<CryptoProvider> {
    // ring, as the rest of the workspace (the deprecation only says ring has no post-quantum
    // key exchange).
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Tls {
    /// Read the CA, client certificate and key named by `settings`; errors carry Consul's
    /// texts (`Error loading CA File: ...`).
    pub(crate) fn load(settings: &TlsConfig) -> Result<Tls, Error> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(e.to_string()))?;
        let builder = if settings.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
        } else {
            builder.with_root_certificates(roots(settings)?)
        };
        let config = match (&settings.cert_file, &settings.key_file) {
            (Some(cert), Some(key)) => {
                let (chain, key) = client_cert(cert, key)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| Error::Config(key_pair_error(&e)))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(Error::Config(
                    "both client cert and client key must be provided".into(),
                ))
            }
        };
        let server_name = match settings.server_name.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(name) => Some(
                ServerName::try_from(strip_port(name).to_string())
                    .map_err(|_| Error::Config(format!("invalid TLS server name {name:?}")))?,
            ),
        };
        Ok(Tls {
            config: Arc::new(config),
            server_name,
        })
    }
}

/// `host:port` → `host` (also `[::1]:8501` → `::1`), as Consul's `SetupTLSConfig` does.
fn strip_port(name: &str) -> &str {
    let has_port = name.rfind(':').map(|i| i as isize) > name.rfind(']').map(|i| i as isize);
    let host = if has_port {
        &name[..name.rfind(':').unwrap_or(name.len())]
    } else {
        name
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The trusted roots: the CA file, else every file under the CA path, else the system's.
fn roots(settings: &TlsConfig) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    if let Some(file) = &settings.ca_file {
        let pem = std::fs::read(file).map_err(|e| {
            Error::Config(format!(
                "Error loading CA File: {}",
                go_io_error("open", file, &e)
            ))
        })?;
        if add_pem(&mut roots, &pem) == 0 {
            return Err(Error::Config(format!(
                "Error loading CA File: Couldn't parse PEM in: {}",
                file.display()
            )));
        }
    } else if let Some(dir) = &settings.ca_path {
        add_ca_path(&mut roots, dir)?;
    } else {
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
    }
    Ok(roots)
}

/// Add the PEM certificates in `pem`; how many were usable (Go's `AppendCertsFromPEM` is true
/// when at least one was).
fn add_pem(roots: &mut RootCertStore, pem: &[u8]) -> usize {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect();
    roots.add_parsable_certificates(certs).0
}

/// go-rootcerts' `LoadCAPath`: walk `path` (lexical order, symlinks not followed into
/// directories); every regular file must hold at least one PEM certificate.
fn add_ca_path(roots: &mut RootCertStore, path: &Path) -> Result<(), Error> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| Error::Config(go_io_error("lstat", path, &e)))?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| Error::Config(go_io_error("open", path, &e)))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            add_ca_path(roots, &entry)?;
        }
        return Ok(());
    }
    let pem = std::fs::read(path).map_err(|e| {
        Error::Config(format!(
            "Error loading file from CAPath: {}",
            go_io_error("open", path, &e)
        ))
    })?;
    if add_pem(roots, &pem) == 0 {
        return Err(Error::Config(format!(
            "Error loading CA Path: Couldn't parse PEM in: {}",
            path.display()
        )));
    }
    Ok(())
}

/// Go's `tls.LoadX509KeyPair`: the certificate chain and the key, with its error texts.
fn client_cert(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
    let cert_pem = std::fs::read(cert).map_err(|e| Error::Config(go_io_error("open", cert, &e)))?;
    let key_pem = std::fs::read(key).map_err(|e| Error::Config(go_io_error("open", key, &e)))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(Error::Config(
            "tls: failed to find any PEM data in certificate input".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        Error::Config(match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "tls: failed to find any PEM data in key input".into()
            }
            _ => "tls: failed to parse private key".into(),
        })
    })?;
    Ok((chain, key))
}

fn key_pair_error(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InconsistentKeys(_) => "tls: private key does not match public key".into(),
        _ => "tls: failed to parse private key".into(),
    }
}

/// An `io::Error` as Go's `os.PathError` prints it (`open /x: no such file or directory`).
fn go_io_error(op: &str, path: &Path, e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    let what = match e.kind() {
        NotFound => "no such file or directory".to_string(),
        PermissionDenied => "permission denied".to_string(),
        IsADirectory => "is a directory".to_string(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_lowercase(),
                None => s,
            }
        }
    };
    format!("{op} {}: {what}", path.display())
}

/// `CONSUL_HTTP_SSL_VERIFY=false`: every server certificate is accepted, but the handshake
/// must still be signed by the key of the certificate the server showed.
#[derive(Debug)]
struct AnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
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

impl<In: Transport> Connector<In> for Tls {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let name = match &self.server_name {
            Some(n) => n.clone(),
            None => {
                let host = details.uri.host().unwrap_or_default();
                let host = host.trim_start_matches('[').trim_end_matches(']');
                ServerName::try_from(host.to_string())
                    .map_err(|_| ureq::Error::Tls("invalid server name"))?
            }
        };
        let mut conn = ClientConnection::new(self.config.clone(), name)
            .map_err(|e| ureq::Error::Io(std::io::Error::other(e)))?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock)?;
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Either::B(TlsTransport {
            buffers,
            stream: StreamOwned { conn, sock },
        })))
    }
}

/// A TLS stream over ureq's TCP transport.
pub(crate) struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport").finish_non_exhaustive()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

/// A TLS failure the way Go's `crypto/tls` reports it, for the `Get "https://...": ...` line.
pub(crate) fn describe_tls_error(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => {
            format!(
                "tls: failed to verify certificate: {}",
                describe_certificate_error(c)
            )
        }
        rustls::Error::AlertReceived(a) => format!("remote error: tls: {}", alert_text(*a)),
        other => format!("tls: {other}"),
    }
}

/// A certificate check's failure in Go's `crypto/x509` words (`x509: certificate signed by
/// unknown authority`); used for the CLI's connections and by `tls cert create`'s own check.
pub fn describe_certificate_error(e: &CertificateError) -> String {
    match e {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => {
            "x509: certificate signed by unknown authority".into()
        }
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => {
            "x509: certificate has expired or is not yet valid".into()
        }
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => not_valid_for(expected, presented),
        CertificateError::NotValidForName => {
            "x509: certificate is not valid for the requested name".into()
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "x509: certificate specifies an incompatible key usage".into()
        }
        CertificateError::Other(o) if o.to_string().contains("NameConstraintViolation") => {
            "x509: a root or intermediate certificate is not authorized to sign for this name"
                .into()
        }
        other => format!("x509: {other:?}"),
    }
}

/// Go's `HostnameError`: the names of the expected kind (IP or DNS) the certificate holds.
fn not_valid_for(expected: &ServerName<'_>, presented: &[String]) -> String {
    let (want, is_ip) = match expected {
        ServerName::IpAddress(ip) => (std::net::IpAddr::from(*ip).to_string(), true),
        other => (other.to_str().into_owned(), false),
    };
    // webpki lists the names as `DnsName("a")` / `IpAddress(1.2.3.4)`.
    let names: Vec<&str> = presented
        .iter()
        .filter_map(|p| match is_ip {
            true => p.strip_prefix("IpAddress("),
            false => p.strip_prefix("DnsName(\""),
        })
        .map(|p| p.trim_end_matches(')').trim_end_matches('"'))
        .collect();
    if names.is_empty() && is_ip {
        return format!(
            "x509: cannot validate certificate for {want} because it doesn't contain any IP SANs"
        );
    }
    format!(
        "x509: certificate is valid for {}, not {want}",
        names.join(", ")
    )
}

/// Go's names of TLS alerts.
fn alert_text(a: AlertDescription) -> String {
    use AlertDescription::*;
    match a {
        BadCertificate => "bad certificate".into(),
        UnsupportedCertificate => "unsupported certificate".into(),
        CertificateRevoked => "revoked certificate".into(),
        CertificateExpired => "expired certificate".into(),
        CertificateUnknown => "unknown certificate".into(),
        UnknownCA => "unknown certificate authority".into(),
        CertificateRequired => "certificate required".into(),
        HandshakeFailure => "handshake failure".into(),
        AccessDenied => "access denied".into(),
        DecodeError => "error decoding message".into(),
        DecryptError => "error decrypting message".into(),
        ProtocolVersion => "protocol version not supported".into(),
        IllegalParameter => "illegal parameter".into(),
        InternalError => "internal error".into(),
        UnrecognisedName => "unrecognized name".into(),
        NoApplicationProtocol => "no application protocol".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_name_port_is_dropped() {
        assert_eq!(strip_port("server.dc1.consul:8501"), "server.dc1.consul");
        assert_eq!(strip_port("server.dc1.consul"), "server.dc1.consul");
        assert_eq!(strip_port("[::1]:8501"), "::1");
        assert_eq!(strip_port("[::1]"), "::1");
        assert_eq!(strip_port("127.0.0.1:8501"), "127.0.0.1");
    }

    #[test]
    fn file_errors_read_like_consuls() {
        let missing = PathBuf::from("/nonexistent/ca.pem");
        let e = Tls::load(&TlsConfig {
            ca_file: Some(missing.clone()),
            ..TlsConfig::default()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Error loading CA File: open /nonexistent/ca.pem: no such file or directory"
        );
        let dir = std::env::temp_dir().join(format!("proconsul-api-tls-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let junk = dir.join("sub").join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let e = Tls::load(&TlsConfig {
            ca_file: Some(junk.clone()),
            ..TlsConfig::default()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "Error loading CA File: Couldn't parse PEM in: {}",
                junk.display()
            )
        );
        // A CA path is walked into subdirectories; a file without a certificate fails it.
        let e = Tls::load(&TlsConfig {
            ca_path: Some(dir.clone()),
            ..TlsConfig::default()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "Error loading CA Path: Couldn't parse PEM in: {}",
                junk.display()
            )
        );
        let e = Tls::load(&TlsConfig {
            cert_file: Some(junk.clone()),
            ..TlsConfig::default()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "both client cert and client key must be provided"
        );
        let e = Tls::load(&TlsConfig {
            cert_file: Some(junk.clone()),
            key_file: Some(junk.clone()),
            insecure_skip_verify: true,
            ..TlsConfig::default()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "tls: failed to find any PEM data in certificate input"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn certificate_errors_read_like_go() {
        assert_eq!(
            describe_tls_error(&rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            )),
            "tls: failed to verify certificate: x509: certificate signed by unknown authority"
        );
        assert_eq!(
            describe_tls_error(&rustls::Error::AlertReceived(
                AlertDescription::CertificateRequired
            )),
            "remote error: tls: certificate required"
        );
        let e = CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("server.dc2.consul").unwrap(),
            presented: vec![
                "DnsName(\"server.dc1.consul\")".into(),
                "DnsName(\"localhost\")".into(),
                "IpAddress(127.0.0.1)".into(),
            ],
        };
        assert_eq!(
            describe_certificate_error(&e),
            "x509: certificate is valid for server.dc1.consul, localhost, not server.dc2.consul"
        );
    }
}
