//! The agent's TLS: the HTTPS listener, the server RPC port both ways, and checks under
//! `enable_agent_tls_for_checks` — each built from its `tls` section (checked in
//! `proconsul_config`) into rustls configs (ring; TLS 1.2 and 1.3, or 1.3 alone).
//!
//! [`AgentTls`] holds what is in force and is rebuilt as a whole by `reload`: new connections
//! take the new certificates, established ones keep theirs. A reload whose files do not load
//! changes nothing. Certificates that have expired or are not valid yet are logged when loaded.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use proconsul_config::{HttpsTls, RpcTls, RuntimeConfig};
use proconsul_rpc::{Incoming, Outgoing, SharedTls, TlsSettings};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::AgentError;

fn bad(what: &str, path: &Path, e: impl std::fmt::Display) -> AgentError {
    AgentError::Config(format!(
        "tls: failed to load {what} {}: {e}",
        path.display()
    ))
}

/// ring, as DESIGN chooses (aws-lc-rs needs cmake); rustls deprecates it for lacking a
/// post-quantum key exchange, which is the one thing these connections give up. With
/// `tls_cipher_suites`, TLS 1.2 offers only those (TLS 1.3's suites are fixed).
#[allow(deprecated)]
fn provider(cipher_suites: &[String]) -> Arc<CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    if !cipher_suites.is_empty() {
        p.cipher_suites.retain(|s| {
            s.version() == &rustls::version::TLS13
                || s.suite()
                    .as_str()
                    .is_some_and(|n| cipher_suites.iter().any(|c| c == n))
        });
    }
    Arc::new(p)
}

fn versions(tls13_only: bool) -> &'static [&'static rustls::SupportedProtocolVersion] {
    static TLS13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    static BOTH: [&rustls::SupportedProtocolVersion; 2] =
        [&rustls::version::TLS12, &rustls::version::TLS13];
    if tls13_only {
        &TLS13
    } else {
        &BOTH
    }
}

/// A certificate chain and its key, loaded.
struct KeyPair {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for KeyPair {
    fn clone(&self) -> Self {
        KeyPair {
            certs: self.certs.clone(),
            key: self.key.clone_key(),
        }
    }
}

fn key_pair(cert_file: &Path, key_file: &Path) -> Result<KeyPair, AgentError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| bad("cert_file", cert_file, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad("cert_file", cert_file, e))?;
    if certs.is_empty() {
        return Err(bad("cert_file", cert_file, "no certificate in it"));
    }
    log_validity(cert_file, &certs[0]);
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| bad("key_file", key_file, e))?;
    Ok(KeyPair { certs, key })
}

/// Every certificate in `ca_file`, or in the `.pem`/`.crt` files of `ca_path`.
fn ca_roots(ca_file: Option<&Path>, ca_path: Option<&Path>) -> Result<RootCertStore, AgentError> {
    let mut files: Vec<PathBuf> = ca_file.iter().map(|p| p.to_path_buf()).collect();
    if let (None, Some(dir)) = (ca_file, ca_path) {
        let entries = std::fs::read_dir(dir).map_err(|e| bad("ca_path", dir, e))?;
        for e in entries.flatten() {
            let p = e.path();
            if matches!(p.extension().and_then(|x| x.to_str()), Some("pem" | "crt")) {
                files.push(p);
            }
        }
    }
    let mut roots = RootCertStore::empty();
    for f in files {
        for cert in CertificateDer::pem_file_iter(&f).map_err(|e| bad("CA", &f, e))? {
            let cert = cert.map_err(|e| bad("CA", &f, e))?;
            log_validity(&f, &cert);
            roots.add(cert).map_err(|e| bad("CA", &f, e))?;
        }
    }
    if roots.is_empty() {
        return Err(AgentError::Config(
            "tls: the CA files hold no certificate".into(),
        ));
    }
    Ok(roots)
}

/// A server config: `pair` served; with `client_roots`, a client certificate signed by them
/// is required.
fn server_config(
    pair: KeyPair,
    client_roots: Option<RootCertStore>,
    tls13_only: bool,
    cipher_suites: &[String],
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ServerConfig>, AgentError> {
    let provider = provider(cipher_suites);
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions(tls13_only))
        .map_err(|e| AgentError::Config(format!("tls: {e}")))?;
    let builder = match client_roots {
        Some(roots) => {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| AgentError::Config(format!("tls: client verification: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(pair.certs, pair.key)
        .map_err(|e| AgentError::Config(format!("tls: certificate and key do not match: {e}")))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The server config of the HTTPS listener.
pub(crate) fn https_config(t: &HttpsTls) -> Result<Arc<rustls::ServerConfig>, AgentError> {
    let pair = key_pair(&t.cert_file, &t.key_file)?;
    let roots = if t.verify_incoming {
        Some(ca_roots(t.ca_file.as_deref(), t.ca_path.as_deref())?)
    } else {
        None
    };
    server_config(pair, roots, t.tls13_only, &t.cipher_suites, &[b"http/1.1"])
}

/// Verifies a server's chain against the CA but not the name it is valid for: Consul's
/// `verify_outgoing` without `verify_server_hostname`, where any certificate of the CA will
/// do (node names are not DNS names).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::CertificateError as C;
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                C::NotValidForName | C::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A client config trusting `roots` (checking the server's name or only its chain) and
/// presenting `pair` when the server asks for a certificate.
fn client_config(
    roots: RootCertStore,
    check_name: bool,
    pair: Option<KeyPair>,
    tls13_only: bool,
    cipher_suites: &[String],
) -> Result<rustls::ClientConfig, AgentError> {
    let provider = provider(cipher_suites);
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions(tls13_only))
        .map_err(|e| AgentError::Config(format!("tls: {e}")))?;
    let builder = if check_name {
        builder.with_root_certificates(roots)
    } else {
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| AgentError::Config(format!("tls: server verification: {e}")))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)))
    };
    match pair {
        Some(p) => builder
            .with_client_auth_cert(p.certs, p.key)
            .map_err(|e| AgentError::Config(format!("tls: certificate and key do not match: {e}"))),
        None => Ok(builder.with_no_client_auth()),
    }
}

fn rpc_name(t: &RpcTls) -> Result<ServerName<'static>, AgentError> {
    ServerName::try_from(t.server_name.clone()).map_err(|_| {
        AgentError::Config(format!(
            "tls: {:?} is not a valid server name (check datacenter and domain)",
            t.server_name
        ))
    })
}

/// The RPC port's settings: serve TLS when this server has a certificate (requiring client
/// certificates under `verify_incoming`), dial over TLS under `verify_outgoing`.
pub fn rpc_settings(t: &RpcTls, server: bool) -> Result<TlsSettings, AgentError> {
    let pair = match (&t.cert_file, &t.key_file) {
        (Some(c), Some(k)) => Some(key_pair(c, k)?),
        _ => None,
    };
    let roots = if t.ca_file.is_some() || t.ca_path.is_some() {
        Some(ca_roots(t.ca_file.as_deref(), t.ca_path.as_deref())?)
    } else {
        None
    };
    let name = rpc_name(t)?;
    let incoming = match (&pair, server) {
        (Some(pair), true) => {
            let client_roots = if t.verify_incoming {
                roots.clone()
            } else {
                None
            };
            Some(Arc::new(Incoming {
                config: server_config(
                    pair.clone(),
                    client_roots,
                    t.tls13_only,
                    &t.cipher_suites,
                    &[],
                )?,
                required: t.verify_incoming,
                server_identity: t.verify_server_hostname.then(|| name.clone()),
            }))
        }
        _ => None,
    };
    let outgoing = match (&roots, t.verify_outgoing) {
        (Some(roots), true) => Some(Arc::new(Outgoing {
            config: Arc::new(client_config(
                roots.clone(),
                t.verify_server_hostname,
                pair,
                t.tls13_only,
                &t.cipher_suites,
            )?),
            server_name: name,
            domain: t.domain.clone(),
        })),
        _ => None,
    };
    Ok(TlsSettings { incoming, outgoing })
}

/// What checks use under `enable_agent_tls_for_checks`: the RPC section's CA and certificate.
#[derive(Clone)]
pub struct CheckTls {
    roots: Arc<RootCertStore>,
    pair: Option<KeyPair>,
}

impl std::fmt::Debug for CheckTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckTls")
            .field("roots", &self.roots.len())
            .field("client_cert", &self.pair.is_some())
            .finish()
    }
}

impl CheckTls {
    /// The agent's CA, which the checked endpoint's certificate must chain to.
    pub(crate) fn roots(&self) -> Arc<RootCertStore> {
        self.roots.clone()
    }

    /// The agent's certificate and key, offered when the checked endpoint asks for one.
    pub(crate) fn client_cert(
        &self,
    ) -> Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        self.pair.clone().map(|p| (p.certs, p.key))
    }
}

/// Two settings are the same when they are the same load (a reload makes new ones).
impl PartialEq for CheckTls {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.roots, &other.roots)
    }
}

impl Eq for CheckTls {}

fn check_tls(c: &RuntimeConfig) -> Result<Option<Arc<CheckTls>>, AgentError> {
    let Some(t) = c.rpc_tls.as_ref().filter(|_| c.enable_agent_tls_for_checks) else {
        return Ok(None);
    };
    if t.ca_file.is_none() && t.ca_path.is_none() {
        return Ok(None);
    }
    let pair = match (&t.cert_file, &t.key_file) {
        (Some(c), Some(k)) => Some(key_pair(c, k)?),
        _ => None,
    };
    Ok(Some(Arc::new(CheckTls {
        roots: Arc::new(ca_roots(t.ca_file.as_deref(), t.ca_path.as_deref())?),
        pair,
    })))
}

/// Every TLS setting of one config, loaded.
struct Loaded {
    https: Option<Arc<rustls::ServerConfig>>,
    rpc: TlsSettings,
    checks: Option<Arc<CheckTls>>,
}

fn load(c: &RuntimeConfig) -> Result<Loaded, AgentError> {
    Ok(Loaded {
        https: c.https_tls.as_ref().map(https_config).transpose()?,
        rpc: match &c.rpc_tls {
            Some(t) => rpc_settings(t, c.server)?,
            None => TlsSettings::default(),
        },
        checks: check_tls(c)?,
    })
}

/// The TLS settings in force, shared with the listeners and dialers that use them.
pub(crate) struct AgentTls {
    /// The HTTPS listener's config (`None`: no HTTPS listener).
    pub https: Option<proconsul_http::ServerTls>,
    pub rpc: SharedTls,
    checks: RwLock<Option<Arc<CheckTls>>>,
}

impl AgentTls {
    /// Load every certificate `c` names; a file that does not load stops the start.
    pub(crate) fn new(c: &RuntimeConfig) -> Result<AgentTls, AgentError> {
        let l = load(c)?;
        Ok(AgentTls {
            https: l.https.map(|h| Arc::new(RwLock::new(h))),
            rpc: SharedTls::new(l.rpc),
            checks: RwLock::new(l.checks),
        })
    }

    /// Re-read every certificate of `c`: all of them or, on any error, none. The HTTPS listener
    /// cannot be added or removed by a reload (ports are not reloadable), only re-keyed.
    pub(crate) fn reload(&self, c: &RuntimeConfig) -> Result<(), AgentError> {
        let l = load(c)?;
        if let (Some(slot), Some(new)) = (&self.https, l.https) {
            *slot.write().unwrap() = new;
        }
        self.rpc.set(l.rpc);
        *self.checks.write().unwrap() = l.checks;
        Ok(())
    }

    pub(crate) fn checks(&self) -> Option<Arc<CheckTls>> {
        self.checks.read().unwrap().clone()
    }
}

/// Warn about a certificate that is expired or not valid yet (it will fail every handshake).
fn log_validity(path: &Path, cert: &CertificateDer<'_>) {
    let Some((not_before, not_after)) = der::validity(cert) else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if now > not_after {
        tracing::warn!(target: "agent.tls", path = %path.display(), not_after = %der::rfc3339(not_after), "certificate has expired");
    } else if now < not_before {
        tracing::warn!(target: "agent.tls", path = %path.display(), not_before = %der::rfc3339(not_before), "certificate is not valid yet");
    }
}

/// Just enough DER to read a certificate's validity period.
mod der {
    /// One TLV: `(tag, content, rest)`.
    fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, b) = b.split_first()?;
        let (&first, mut b) = b.split_first()?;
        let len = if first < 0x80 {
            first as usize
        } else {
            let n = (first & 0x7F) as usize;
            if n == 0 || n > 4 || b.len() < n {
                return None;
            }
            let mut len = 0usize;
            for &x in &b[..n] {
                len = (len << 8) | x as usize;
            }
            b = &b[n..];
            len
        };
        (b.len() >= len).then(|| (tag, &b[..len], &b[len..]))
    }

    const SEQUENCE: u8 = 0x30;

    /// `(notBefore, notAfter)` in Unix seconds.
    pub(super) fn validity(der: &[u8]) -> Option<(i64, i64)> {
        let (SEQUENCE, cert, _) = tlv(der)? else {
            return None;
        };
        let (SEQUENCE, tbs, _) = tlv(cert)? else {
            return None;
        };
        let mut rest = tbs;
        if rest.first() == Some(&0xA0) {
            rest = tlv(rest)?.2; // [0] version
        }
        for _ in 0..3 {
            rest = tlv(rest)?.2; // serial, signature algorithm, issuer
        }
        let (SEQUENCE, validity, _) = tlv(rest)? else {
            return None;
        };
        let (t1, v1, rest) = tlv(validity)?;
        let (t2, v2, _) = tlv(rest)?;
        Some((time(t1, v1)?, time(t2, v2)?))
    }

    /// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
    fn time(tag: u8, v: &[u8]) -> Option<i64> {
        let s = std::str::from_utf8(v).ok()?.strip_suffix('Z')?;
        let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
        let (year, at) = match (tag, s.len()) {
            (0x17, 12) => {
                let yy = num(0..2)?;
                (if yy < 50 { 2000 + yy } else { 1900 + yy }, 2)
            }
            (0x18, 14) => (num(0..4)?, 4),
            _ => return None,
        };
        let (mo, d) = (num(at..at + 2)?, num(at + 2..at + 4)?);
        let (h, mi, sec) = (
            num(at + 4..at + 6)?,
            num(at + 6..at + 8)?,
            num(at + 8..at + 10)?,
        );
        Some(days_from_civil(year, mo, d) * 86400 + h * 3600 + mi * 60 + sec)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146097 + doe - 719468
    }

    /// For log lines.
    pub(super) fn rfc3339(unix: i64) -> String {
        let days = unix.div_euclid(86400);
        let secs = unix.rem_euclid(86400);
        // civil_from_days
        let z = days + 719468;
        let era = z.div_euclid(146097);
        let doe = z - era * 146097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn dates() {
            assert_eq!(super::days_from_civil(1970, 1, 1), 0);
            assert_eq!(super::days_from_civil(2000, 3, 1), 11017);
            assert_eq!(super::rfc3339(951868800), "2000-03-01T00:00:00Z");
            assert_eq!(super::time(0x17, b"491231235959Z"), Some(2524607999));
            assert_eq!(
                super::time(0x18, b"21260101000000Z")
                    .map(super::rfc3339)
                    .as_deref(),
                Some("2126-01-01T00:00:00Z")
            );
            assert_eq!(super::time(0x17, b"4912312359Z"), None);
            assert_eq!(super::validity(&[0x30, 0x85, 0, 0, 0, 0, 0]), None);
            assert_eq!(super::validity(&[]), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testkit/tests/in_process/fixtures")
            .join(name)
    }

    #[test]
    fn validity_of_the_fixtures() {
        let cert = CertificateDer::from_pem_file(fixture("rpc-server.pem")).unwrap();
        let (nb, na) = der::validity(&cert).unwrap();
        // Made for 36500 days.
        assert!(
            na - nb > 36000 * 86400 && na - nb < 37000 * 86400,
            "{nb} {na}"
        );
        assert!(nb > 1_700_000_000, "{}", der::rfc3339(nb));
    }

    fn rpc(verify_incoming: bool, hostname: bool) -> RpcTls {
        RpcTls {
            cert_file: Some(fixture("rpc-server.pem")),
            key_file: Some(fixture("rpc-server.key")),
            ca_file: Some(fixture("rpc-ca.pem")),
            ca_path: None,
            verify_incoming,
            verify_outgoing: true,
            verify_server_hostname: hostname,
            tls13_only: false,
            cipher_suites: Vec::new(),
            server_name: "server.dc1.consul".into(),
            domain: "consul".into(),
        }
    }

    #[test]
    fn rpc_settings_follow_the_flags() {
        let s = rpc_settings(&rpc(true, true), true).unwrap();
        let i = s.incoming.unwrap();
        assert!(i.required);
        assert_eq!(
            i.server_identity.as_ref().unwrap().to_str(),
            "server.dc1.consul"
        );
        assert!(s.outgoing.is_some());
        // A client agent serves nothing.
        let s = rpc_settings(&rpc(true, true), false).unwrap();
        assert!(s.incoming.is_none() && s.outgoing.is_some());
        // Without verify_incoming nothing is demanded of callers.
        let s = rpc_settings(&rpc(false, true), true).unwrap();
        let i = s.incoming.unwrap();
        assert!(!i.required && i.server_identity.is_some());
        // A missing file is an error naming it.
        let mut t = rpc(true, true);
        t.ca_file = Some("/nonexistent/ca.pem".into());
        let e = rpc_settings(&t, true).err().unwrap().to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
