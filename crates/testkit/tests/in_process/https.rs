//! The HTTPS listener (`ports.https` with `tls.https`/`tls.defaults` certificate and key):
//! the API over TLS beside plain HTTP, and `verify_incoming` requiring a client certificate
//! signed by the CA.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use proconsul_testkit::{dev_flags, TestAgent};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/in_process/fixtures"
    ))
    .join(name)
}

/// A TLS connector trusting the test CA, with the test client certificate when asked.
fn connector(client_cert: bool) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(fixture("https-ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if client_cert {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(fixture("https-client.pem"))
                .unwrap()
                .map(|c| c.unwrap())
                .collect();
        let key = PrivateKeyDer::from_pem_file(fixture("https-client.key")).unwrap();
        builder.with_client_auth_cert(certs, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// `GET path` over TLS trusting the test CA, with a client certificate when given; the
/// status, or the error that stopped it.
async fn https_get(
    addr: std::net::SocketAddr,
    path: &str,
    client_cert: bool,
) -> Result<(u16, String), String> {
    let connector = connector(client_cert);
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    tls.read_to_end(&mut raw).await.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {text:?}"))?;
    Ok((status, text))
}

fn with_https(c: &mut proconsul_config::RuntimeConfig, verify_incoming: bool) {
    c.https_addrs = vec!["127.0.0.1:0".parse().unwrap()];
    c.https_tls = Some(proconsul_config::HttpsTls {
        cert_file: fixture("https-server.pem"),
        key_file: fixture("https-server.key"),
        ca_file: Some(fixture("https-ca.pem")),
        ca_path: None,
        verify_incoming,
        tls13_only: false,
        cipher_suites: Vec::new(),
    });
}

/// Whether a TLS 1.2 handshake offering only `suite` succeeds.
#[allow(deprecated)]
async fn tls12_handshake_with(addr: std::net::SocketAddr, suite: rustls::CipherSuite) -> bool {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(fixture("https-ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.retain(|s| s.suite() == suite);
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_cipher_suites_limit_what_tls12_offers() {
    use rustls::CipherSuite as C;
    let t = TestAgent::start_with(dev_flags(), |c| {
        with_https(c, false);
        if let Some(h) = c.https_tls.as_mut() {
            h.cipher_suites = vec!["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".into()];
        }
    })
    .await;
    let addr = t.agent.https_addrs()[0];
    assert!(tls12_handshake_with(addr, C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384).await);
    assert!(!tls12_handshake_with(addr, C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256).await);
    // TLS 1.3 is unaffected.
    let (status, _) = https_get(addr, "/v1/status/leader", false).await.unwrap();
    assert_eq!(status, 200);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_over_https_beside_http() {
    let t = TestAgent::start_with(dev_flags(), |c| with_https(c, false)).await;
    let addr = t.agent.https_addrs()[0];
    let (status, text) = https_get(addr, "/v1/status/leader", false).await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("\r\n\r\n\"127.0.0.1:"),
        "a leader address: {text}"
    );
    // Writes and reads over TLS reach the same state as over HTTP.
    assert_eq!(t.put("/v1/kv/over-http", b"1").await.text(), "true");
    let (status, text) = https_get(addr, "/v1/kv/over-http?raw", false)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(text.ends_with("\r\n\r\n1"), "{text}");
    // Plain HTTP on the TLS port gets no answer.
    let r = proconsul_testkit::request(addr, "GET", "/v1/status/leader", b"").await;
    assert_ne!(r.status, 200);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_incoming_requires_a_client_certificate_from_the_ca() {
    let t = TestAgent::start_with(dev_flags(), |c| with_https(c, true)).await;
    let addr = t.agent.https_addrs()[0];
    let refused = https_get(addr, "/v1/status/leader", false).await;
    assert!(
        refused.is_err(),
        "answered without a client certificate: {refused:?}"
    );
    let (status, _) = https_get(addr, "/v1/status/leader", true).await.unwrap();
    assert_eq!(status, 200);
    t.stop().await;
}

/// A keep-alive connection over TLS from `source`: one `GET path` answered, the connection
/// kept open. `None` when no answer came within two seconds or the connection failed.
async fn https_keep_alive_get(
    addr: std::net::SocketAddr,
    source: &str,
    path: &str,
) -> Option<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let connector = connector(false);
    let name = ServerName::try_from("localhost").unwrap();
    let mut buf = [0u8; 4096];
    let (tls, n) = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        let tcp = sock.connect(addr).await.ok()?;
        let mut tls = connector.connect(name, tcp).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        tls.write_all(req.as_bytes()).await.ok()?;
        let n = tls.read(&mut buf).await.ok()?;
        Some((tls, n))
    })
    .await
    .ok()??;
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    Some(tls)
}

/// Over TLS too, a request tells its client's scheduler when it is done: a client's
/// keep-alive connections give their places back after each answer, so its ninth connection
/// is served while another client is busy (a connection used to keep its place for good once
/// it had been answered, and the ninth waited for ever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_a_clients_connections_give_their_places_back() {
    let t = TestAgent::start_with(dev_flags(), |c| with_https(c, false)).await;
    let addr = t.agent.https_addrs()[0];
    t.put("/v1/kv/watched", b"1").await;
    let index = t.get("/v1/kv/watched").await.index();
    // Another client is busy: a blocking query of its own, parked.
    let blocking = format!("/v1/kv/watched?index={index}&wait=30s");
    let other =
        tokio::spawn(async move { https_keep_alive_get(addr, "127.0.0.2", &blocking).await });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut held = Vec::new();
    // Three times a client's places (the http crate's `RUNNING_PER_CLIENT`, 8).
    for i in 0..24 {
        let conn = https_keep_alive_get(addr, "127.0.0.3", "/v1/status/leader").await;
        held.push(conn.unwrap_or_else(|| panic!("connection {} was not answered", i + 1)));
    }
    other.abort();
    t.stop().await;
}
