//! Servers the HTTPS and gRPC check tests probe: an HTTPS (or plain HTTP) web service and a
//! gRPC health server (plain or TLS), each stoppable and restartable on the same port. The TLS
//! certificate is `fixtures/server.pem` (for `localhost` and `127.0.0.1`, signed by the test CA in
//! `fixtures/ca.pem`, which no system trusts). And [`in_own_process`], for tests that change
//! what is process-wide.

mod own_process;

pub use own_process::in_own_process;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

pub const CA_PEM: &[u8] = include_bytes!("../fixtures/ca.pem");
const SERVER_PEM: &[u8] = include_bytes!("../fixtures/server.pem");
const SERVER_KEY: &[u8] = include_bytes!("../fixtures/server.key");

/// A TLS acceptor with the fixture certificate, offering `alpn`.
#[allow(deprecated)] // ring's provider: see the agent's checks/tls.rs
pub fn acceptor(alpn: &[&[u8]]) -> TlsAcceptor {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(SERVER_PEM)
        .collect::<Result<_, _>>()
        .expect("fixture certificate");
    let key = PrivateKeyDer::from_pem_slice(SERVER_KEY).expect("fixture key");
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsAcceptor::from(Arc::new(config))
}

/// An HTTPS acceptor with the RPC test server certificate (`fixtures/rpc-server.pem`) that
/// requires a client certificate signed by the RPC test CA (mutual TLS).
#[allow(deprecated)]
fn mutual_acceptor() -> TlsAcceptor {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/in_process/fixtures/");
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(format!("{dir}rpc-server.pem"))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_file(format!("{dir}rpc-server.key")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(format!("{dir}rpc-ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

/// What a server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Http,
    Https,
    /// HTTPS requiring a client certificate of the RPC test CA.
    HttpsMutual,
    Grpc,
    GrpcTls,
}

/// A running server; `stop` closes the listener (connections are refused), `start_again`
/// listens on the same address.
pub struct Server {
    pub addr: SocketAddr,
    kind: Kind,
    stop: CancellationToken,
}

impl Server {
    pub async fn start(kind: Kind) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(l, kind)
    }

    fn serve(l: TcpListener, kind: Kind) -> Server {
        let addr = l.local_addr().unwrap();
        let stop = CancellationToken::new();
        tokio::spawn(accept_loop(l, kind, stop.clone()));
        Server { addr, kind, stop }
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }

    pub async fn start_again(&mut self) {
        let l = TcpListener::bind(self.addr).await.unwrap();
        *self = Self::serve(l, self.kind);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn accept_loop(l: TcpListener, kind: Kind, stop: CancellationToken) {
    let tls = match kind {
        Kind::Https => Some(acceptor(&[b"http/1.1"])),
        Kind::HttpsMutual => Some(mutual_acceptor()),
        Kind::GrpcTls => Some(acceptor(&[b"h2"])),
        _ => None,
    };
    loop {
        let (s, _) = tokio::select! {
            _ = stop.cancelled() => return,
            r = l.accept() => match r { Ok(x) => x, Err(_) => return },
        };
        let tls = tls.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let conn = async move {
                match tls {
                    Some(acc) => {
                        let Ok(s) = acc.accept(s).await else { return };
                        serve_conn(s, kind).await
                    }
                    None => serve_conn(s, kind).await,
                }
            };
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = conn => {}
            }
        });
    }
}

async fn serve_conn<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(s: S, kind: Kind) {
    match kind {
        Kind::Http | Kind::Https | Kind::HttpsMutual => serve_http(s).await,
        Kind::Grpc | Kind::GrpcTls => serve_grpc(s).await,
    }
}

/// `/health` answers 200 `ok`; `/old` redirects to `/health`; `/loop` redirects to itself;
/// anything else is 404.
async fn serve_http<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let req = String::from_utf8_lossy(&buf);
    let path = req.split_whitespace().nth(1).unwrap_or("/");
    let reply: &[u8] = match path {
        "/health" => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
        "/old" => b"HTTP/1.1 301 Moved Permanently\r\nLocation: /health\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "/loop" => b"HTTP/1.1 302 Found\r\nLocation: loop\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope",
    };
    let _ = s.write_all(reply).await;
    let _ = s.shutdown().await;
}

/// The service named in a framed `HealthCheckRequest` (test-sized: one-byte lengths).
fn requested_service(body: &[u8]) -> Option<String> {
    let msg = body.get(5..)?;
    match msg {
        [] => Some(String::new()),
        [0x0a, n, rest @ ..] if rest.len() == *n as usize => {
            Some(String::from_utf8_lossy(rest).into_owned())
        }
        _ => None,
    }
}

/// A gRPC health server: SERVING for "" and "web", NOT_SERVING for "down", NOT_FOUND otherwise.
async fn serve_grpc<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(s: S) {
    let Ok(mut conn) = h2::server::handshake(s).await else {
        return;
    };
    while let Some(Ok((req, mut respond))) = conn.accept().await {
        tokio::spawn(async move {
            let (parts, mut body) = req.into_parts();
            let mut data = Vec::new();
            while let Some(Ok(chunk)) = body.data().await {
                let _ = body.flow_control().release_capacity(chunk.len());
                data.extend_from_slice(&chunk);
                if data.len() > 4096 {
                    break;
                }
            }
            let head = http::Response::builder()
                .status(200)
                .header("content-type", "application/grpc")
                .body(())
                .unwrap();
            let serving = match (parts.uri.path(), requested_service(&data).as_deref()) {
                ("/grpc.health.v1.Health/Check", Some("" | "web")) => Some(1u8),
                ("/grpc.health.v1.Health/Check", Some("down")) => Some(2u8),
                _ => None,
            };
            let Ok(mut send) = respond.send_response(head, false) else {
                return;
            };
            let mut trailers = http::HeaderMap::new();
            match serving {
                Some(status) => {
                    let _ = send.send_data(Bytes::from(vec![0, 0, 0, 0, 2, 0x08, status]), false);
                    trailers.insert("grpc-status", "0".parse().unwrap());
                }
                None => {
                    trailers.insert("grpc-status", "5".parse().unwrap());
                    trailers.insert("grpc-message", "unknown%20service".parse().unwrap());
                }
            }
            let _ = send.send_trailers(trailers);
        });
    }
}
