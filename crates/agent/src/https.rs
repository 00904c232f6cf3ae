//! The HTTPS listener's TLS settings: certificate, key and client verification from
//! `tls.https` over `tls.defaults` (checked in `proconsul_config`), built into a rustls
//! server config (ring; TLS 1.2 and 1.3, or 1.3 alone).

use std::path::Path;
use std::sync::Arc;

use proconsul_config::HttpsTls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::AgentError;

fn bad(what: &str, path: &Path, e: impl std::fmt::Display) -> AgentError {
    AgentError::Config(format!(
        "tls: failed to load {what} {}: {e}",
        path.display()
    ))
}

/// Every certificate in `ca_file` and in the `.pem`/`.crt` files of `ca_path`.
fn ca_roots(t: &HttpsTls) -> Result<rustls::RootCertStore, AgentError> {
    let mut files: Vec<std::path::PathBuf> = t.ca_file.iter().cloned().collect();
    if let Some(dir) = &t.ca_path {
        let entries = std::fs::read_dir(dir).map_err(|e| bad("ca_path", dir, e))?;
        for e in entries.flatten() {
            let p = e.path();
            if matches!(p.extension().and_then(|x| x.to_str()), Some("pem" | "crt")) {
                files.push(p);
            }
        }
    }
    let mut roots = rustls::RootCertStore::empty();
    for f in files {
        for cert in CertificateDer::pem_file_iter(&f).map_err(|e| bad("CA", &f, e))? {
            let cert = cert.map_err(|e| bad("CA", &f, e))?;
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

/// The server config of the HTTPS listener.
pub(crate) fn server_config(t: &HttpsTls) -> Result<Arc<rustls::ServerConfig>, AgentError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&t.cert_file)
        .map_err(|e| bad("cert_file", &t.cert_file, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad("cert_file", &t.cert_file, e))?;
    if certs.is_empty() {
        return Err(bad("cert_file", &t.cert_file, "no certificate in it"));
    }
    let key =
        PrivateKeyDer::from_pem_file(&t.key_file).map_err(|e| bad("key_file", &t.key_file, e))?;
    // ring, as DESIGN chooses (aws-lc-rs needs cmake); rustls deprecates it for lacking a
    // post-quantum key exchange, which is the one thing this listener gives up.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if t.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12, &rustls::version::TLS13]
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| AgentError::Config(format!("tls: {e}")))?;
    let builder = if t.verify_incoming {
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(ca_roots(t)?),
            provider,
        )
        .build()
        .map_err(|e| AgentError::Config(format!("tls: client verification: {e}")))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| AgentError::Config(format!("tls: certificate and key do not match: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
