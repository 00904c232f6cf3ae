//! One multiplexed connection: callers send requests tagged with fresh ids and wait for the
//! answer with that id; a reader task routes answers. When the connection dies, every waiting
//! caller gets `Closed` and the client reports itself dead so a pool can replace it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::frame::{read_frame, write_frame, Frame, FrameKind, MAX_FRAME};
use crate::tls::Outgoing;
use crate::WireError;

type Writer = Box<dyn AsyncWrite + Send + Unpin>;
type Reader = Box<dyn AsyncRead + Send + Unpin>;

/// Most calls waiting on one connection at once.
const MAX_IN_FLIGHT: usize = 1024;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Vec<u8>, WireError>>>>>;

/// A connection to one server. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Client {
    writer: Arc<tokio::sync::Mutex<Writer>>,
    pending: Pending,
    next_id: Arc<AtomicU64>,
    dead: Arc<AtomicBool>,
    reader: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for Client {
    fn drop(&mut self) {
        // The last clone stops the reader task.
        if Arc::strong_count(&self.reader) == 1 {
            self.reader.abort();
        }
    }
}

impl Client {
    /// Connect within `timeout` (over TLS when `tls` is given) and open with the handshake
    /// `hello`; the server's refusal is [`WireError::Rejected`].
    pub async fn connect_hello(
        addr: &str,
        timeout: Duration,
        tls: Option<&Outgoing>,
        hello: Vec<u8>,
    ) -> Result<Client, WireError> {
        let c = Self::connect_tls(addr, timeout, tls).await?;
        match c.call(crate::HELLO, hello, timeout).await {
            Ok(_) => Ok(c),
            Err(WireError::Remote(m)) => Err(WireError::Rejected(m)),
            Err(e) => Err(e),
        }
    }

    /// Connect within `timeout`, in plaintext and without a handshake.
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Client, WireError> {
        Self::connect_tls(addr, timeout, None).await
    }

    /// Connect within `timeout`, over TLS when `tls` is given, without a handshake. A failed
    /// TLS handshake (an untrusted or misnamed certificate, a refused client certificate) is
    /// [`WireError::Rejected`]: trying again will not help.
    pub async fn connect_tls(
        addr: &str,
        timeout: Duration,
        tls: Option<&Outgoing>,
    ) -> Result<Client, WireError> {
        let dial = async {
            let stream = TcpStream::connect(addr)
                .await
                .map_err(|e| WireError::Connect {
                    addr: addr.to_string(),
                    message: e.to_string(),
                })?;
            let _ = stream.set_nodelay(true);
            let Some(tls) = tls else {
                let (r, w) = stream.into_split();
                return Ok((Box::new(r) as Reader, Box::new(w) as Writer));
            };
            let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
            let stream = connector
                .connect(tls.server_name.clone(), stream)
                .await
                .map_err(|e| WireError::Rejected(format!("TLS handshake with {addr}: {e}")))?;
            let (r, w) = tokio::io::split(stream);
            Ok((Box::new(r) as Reader, Box::new(w) as Writer))
        };
        let (read, write) = tokio::time::timeout(timeout, dial)
            .await
            .map_err(|_| WireError::Timeout)??;
        Ok(Self::over(read, write))
    }

    /// A client over an established byte stream.
    fn over(mut read: Reader, write: Writer) -> Client {
        let pending: Pending = Arc::default();
        let dead = Arc::new(AtomicBool::new(false));
        let (p, d) = (pending.clone(), dead.clone());
        let reader = tokio::spawn(async move {
            let mut refused = None;
            while let Ok(Some(f)) = read_frame(&mut read, MAX_FRAME).await {
                if f.id == 0 && f.kind == FrameKind::Error {
                    // The server refused the connection itself (see `server::refuse`).
                    refused = Some(String::from_utf8_lossy(&f.body).into_owned());
                    break;
                }
                let waiter = p.lock().unwrap().remove(&f.id);
                if let Some(tx) = waiter {
                    let _ = tx.send(match f.kind {
                        FrameKind::Response => Ok(f.body),
                        FrameKind::Error => Err(WireError::Remote(
                            String::from_utf8_lossy(&f.body).into_owned(),
                        )),
                        FrameKind::Request => {
                            Err(WireError::Protocol("request frame from a server".into()))
                        }
                    });
                }
            }
            d.store(true, Ordering::SeqCst);
            for (_, tx) in p.lock().unwrap().drain() {
                let _ = tx.send(Err(match &refused {
                    Some(why) => WireError::Rejected(why.clone()),
                    None => WireError::Closed,
                }));
            }
        });
        Client {
            writer: Arc::new(tokio::sync::Mutex::new(write)),
            pending,
            next_id: Arc::new(AtomicU64::new(1)),
            dead,
            reader: Arc::new(reader),
        }
    }

    /// Has the connection failed (so a pool should open a new one)?
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    /// Send `body` to `method` and wait at most `timeout` for the answer.
    pub async fn call(
        &self,
        method: u8,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, WireError> {
        if self.is_dead() {
            return Err(WireError::Closed);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut p = self.pending.lock().unwrap();
            if p.len() >= MAX_IN_FLIGHT {
                return Err(WireError::Busy);
            }
            p.insert(id, tx);
        }
        let frame = Frame {
            kind: FrameKind::Request,
            id,
            method,
            body,
        };
        let sent = {
            let mut w = self.writer.lock().await;
            write_frame(&mut *w, &frame).await
        };
        if let Err(e) = sent {
            self.pending.lock().unwrap().remove(&id);
            return Err(e);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(WireError::Closed),
            Err(_) => {
                self.pending.lock().unwrap().remove(&id);
                Err(WireError::Timeout)
            }
        }
    }
}
