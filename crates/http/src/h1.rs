//! One HTTP/1.1 connection, served without hyper.
//!
//! Why: hyper 1.x gives every connection an 8 KiB buffer for response heads when it starts and
//! an 8 KiB read buffer at its first read, and keeps both for the connection's life (its fixed
//! `INIT_BUFFER_SIZE`). A parked blocking query is a connection waiting on its answer, so those
//! two buffers were most of what each of them cost (13.6 KB per KV query in
//! `bench/blocking.sh`; heaptrack named them). Here a connection holds no buffer while it waits:
//! bytes are read through a buffer on the stack into one sized to what came, a request head is
//! parsed with `httparse` (hyper's own parser) and then owned by the request (header values
//! share one allocation of the head's size), and a response head lives only while it is
//! written.
//!
//! What it speaks is what Consul's Go server speaks on its plain port: HTTP/1.0 and 1.1,
//! keep-alive, pipelined requests, request bodies by `Content-Length` or chunked (fed to the
//! handler as it reads them, so a snapshot restore streams), `Expect: 100-continue`, responses
//! of known length or chunked (a `monitor` stream), HEAD. A client that hangs up while its
//! request waits (a blocking query) is noticed and its request dropped, as Go's server cancels
//! the request's context. Bounds: a request head up to 1 MiB (Go's `DefaultMaxHeaderBytes`) and
//! [`MAX_HEADERS`] headers, else 431; broken framing gets 400 and the connection closes; a
//! request body is read no faster than the handler takes it.

use std::io::{self, Write as _};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll, Waker};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Uri};
use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body as _, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_util::sync::CancellationToken;

/// The largest request head (request line and headers), as Go's `http.DefaultMaxHeaderBytes`.
const MAX_HEAD: usize = 1 << 20;
/// The most headers a request may carry.
pub(crate) const MAX_HEADERS: usize = 128;
/// How much is read from the socket at a time (through the stack, never held).
const READ_CHUNK: usize = 8 * 1024;
/// Bytes of pipelined requests taken in while a request is in progress; beyond that the
/// connection is not read until its answer is out (a client that hangs up then is noticed at
/// the next write).
const PIPELINE_CAP: usize = 64 * 1024;
/// The longest chunk-size line (size and extensions) of a chunked body, and the most trailer
/// bytes.
const MAX_CHUNK_LINE: usize = 4 * 1024;
const MAX_TRAILERS: usize = 64 * 1024;
/// How long, and how many bytes, a connection closing with unread input takes in first.
const LINGER: std::time::Duration = std::time::Duration::from_millis(500);
const LINGER_BYTES: usize = 1 << 20;
/// The most of a body its handler left unread that is read off to keep the connection (Go's
/// `maxPostHandlerReadBytes`).
const MAX_DRAIN: usize = 256 * 1024;
/// The interim answer to `Expect: 100-continue`.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
/// A response body of at most this size is written with its head in one write.
const COALESCE: usize = 16 * 1024;

/// Serve requests on `io` with `router` until the client closes, a request asks to close, or
/// `shutdown` fires (then the request in progress is answered first). Every request carries
/// `info` as its `ConnectInfo`.
pub(crate) fn serve_conn<I, C>(
    io: I,
    info: C,
    router: axum::Router,
    shutdown: CancellationToken,
) -> impl std::future::Future<Output = ()>
where
    I: AsyncRead + AsyncWrite + Unpin,
    C: Clone + Send + Sync + 'static,
{
    // The stream goes into the connection before the future is made, so the future holds it
    // once (an `async fn` would keep its argument's room beside the connection's).
    let mut conn = Conn {
        io,
        buf: BytesMut::new(),
    };
    async move {
        if let Err(e) = conn.serve(info, router, &shutdown).await {
            tracing::trace!(target: "agent.http", error = %e, "connection ended");
        }
    }
}

struct Conn<I> {
    io: I,
    /// Bytes read and not yet taken: a head in part, a body's next bytes, pipelined requests.
    /// Empty (no allocation) between requests when nothing more came.
    buf: BytesMut,
}

/// A request head's framing of its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
}

/// A head that cannot be served: the status it gets before the connection closes.
#[derive(Debug)]
struct Refusal(u16, &'static str);

struct Head {
    request: Request<()>,
    framing: Option<Framing>,
    keep_alive: bool,
    expect_continue: bool,
}

impl Head {
    /// The request the router gets (its body fed by the returned [`BodyFeed`], its
    /// `ConnectInfo` `info`), whether to keep the connection alive after it, whether it is a
    /// HEAD and whether it came over HTTP/1.0.
    fn into_request<C: Clone + Send + Sync + 'static>(
        self,
        info: &C,
    ) -> (Request<Body>, BodyFeed, bool, bool, bool) {
        let is_head = self.request.method() == Method::HEAD;
        let http10 = self.request.version() == axum::http::Version::HTTP_10;
        let mut body = BodyFeed::new(self.framing);
        // As Go's server: `100 Continue` goes out when the handler first asks for the body.
        body.continue_first = self.expect_continue && !http10;
        let (mut parts, ()) = self.request.into_parts();
        parts
            .extensions
            .insert(axum::extract::ConnectInfo(info.clone()));
        let request = Request::from_parts(parts, body.take_body());
        (request, body, self.keep_alive, is_head, http10)
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> Conn<I> {
    async fn serve<C: Clone + Send + Sync + 'static>(
        &mut self,
        info: C,
        router: axum::Router,
        shutdown: &CancellationToken,
    ) -> io::Result<()> {
        loop {
            let Some(head) = self.next_head(shutdown).await? else {
                return Ok(());
            };
            // Everything taken apart in plain functions: a local of this async function that
            // is alive across two of its waits keeps a room of its own in the future, and this
            // future is what every parked blocking query holds.
            let (request, mut body, mut keep_alive, is_head, http10) = head.into_request(&info);
            // In a block of its own: the handler's future takes no room beside the writes.
            let response = {
                let mut call = std::pin::pin!(tower::Service::call(&mut router.clone(), request));
                match self.run(call.as_mut(), &mut body).await? {
                    Some(r) => r,
                    None => return Ok(()), // the client hung up
                }
            };
            keep_alive &= !shutdown.is_cancelled();
            let response = if keep_alive && !body.finished() {
                // What the handler left of the body is read off first (bounded); if it cannot
                // be, the connection ends after the answer: what follows is unknown. The
                // answer and the timer are boxed meanwhile: held inline across this wait,
                // they would take room in every connection's future.
                let held = Box::new(response);
                Box::pin(self.drain(&mut body)).await;
                keep_alive = body.finished();
                *held
            } else {
                response
            };
            // The head is laid out before the first write, so the response's headers are not
            // kept across it.
            let (plan, response) = Plan::new(response, is_head, http10, keep_alive);
            keep_alive = plan.keep_alive;
            self.write_response(plan, response).await?;
            if !keep_alive {
                if body.finished() {
                    // Ends this side properly: over TLS, `close_notify` first.
                    let _ = self.io.shutdown().await;
                } else {
                    self.linger().await;
                }
                return Ok(());
            }
            if self.buf.is_empty() {
                self.buf = BytesMut::new(); // a body's last piece may have left capacity
            }
        }
    }

    /// [`BodyFeed::poll_discard`], for at most [`LINGER`].
    async fn drain(&mut self, body: &mut BodyFeed) {
        let mut discarded = 0;
        let discard = std::future::poll_fn(|cx| body.poll_discard(cx, self, &mut discarded));
        let _ = tokio::time::timeout(LINGER, discard).await;
    }

    /// The next request's head: `None` when the connection is to close (the client closed,
    /// the agent stops, or the head could not be read and was refused).
    async fn next_head(&mut self, shutdown: &CancellationToken) -> io::Result<Option<Head>> {
        match tokio::select! {
            h = self.read_head() => h?,
            _ = shutdown.cancelled() => return Ok(None),
        } {
            None => Ok(None),
            Some(Ok(head)) => Ok(Some(head)),
            Some(Err(Refusal(status, reason))) => {
                self.refuse(status, reason).await?;
                Ok(None)
            }
        }
    }

    /// Read until a whole request head is in: `None` if the client closed before its first
    /// byte.
    async fn read_head(&mut self) -> io::Result<Option<Result<Head, Refusal>>> {
        loop {
            if !self.buf.is_empty() {
                match parse_head(&mut self.buf) {
                    Ok(Some(head)) => {
                        if self.buf.is_empty() {
                            // Let go of the read buffer: the head now owns its bytes, and
                            // a request that waits holds nothing more.
                            self.buf = BytesMut::new();
                        }
                        return Ok(Some(Ok(head)));
                    }
                    Ok(None) if self.buf.len() >= MAX_HEAD => {
                        return Ok(Some(Err(Refusal(431, "Request Header Fields Too Large"))))
                    }
                    Ok(None) => {}
                    Err(refusal) => return Ok(Some(Err(refusal))),
                }
            }
            if self.read_some(usize::MAX).await? == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// One read from the socket, appended to `buf` (at most `max` bytes, more than 0): its
    /// length, 0 at the end of the stream.
    async fn read_some(&mut self, max: usize) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_read_some(cx, max)).await
    }

    /// [`Conn::read_some`]'s step. The bytes pass through the stack, so a read that waits holds
    /// no buffer.
    fn poll_read_some(&mut self, cx: &mut Context<'_>, max: usize) -> Poll<io::Result<usize>> {
        let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut rb = ReadBuf::uninit(&mut chunk[..max.min(READ_CHUNK)]);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut rb))?;
        self.buf.extend_from_slice(rb.filled());
        Poll::Ready(Ok(rb.filled().len()))
    }

    /// Run the handler to its response while feeding it the request's body, or, with no body
    /// to read, watching for the client to hang up (`None`: it did; the handler is dropped).
    ///
    /// Written as one poll function rather than a `select!` of futures: this is the state a
    /// parked blocking query keeps for its whole wait, and it holds no more than the handler's
    /// future and a flag.
    async fn run<F>(
        &mut self,
        mut call: Pin<&mut F>,
        body: &mut BodyFeed,
    ) -> io::Result<Option<Response<Body>>>
    where
        F: std::future::Future<Output = Result<Response<Body>, std::convert::Infallible>>,
    {
        let mut watching = true;
        std::future::poll_fn(|cx| {
            if let Poll::Ready(r) = call.as_mut().poll(cx) {
                return Poll::Ready(Ok(Some(r.unwrap_or_else(|e| match e {}))));
            }
            loop {
                if body.active() {
                    match ready!(body.poll_feed(cx, self)) {
                        Ok(()) => {}
                        // The handler reads the error from its body and answers; the
                        // connection closes after that.
                        Err(e) => body.fail(e),
                    }
                } else if watching && self.buf.len() < PIPELINE_CAP {
                    // A pipelined request, or the end of the stream.
                    match ready!(self.poll_read_some(cx, PIPELINE_CAP - self.buf.len())) {
                        Ok(0) | Err(_) => return Poll::Ready(Ok(None)),
                        Ok(_) => watching = self.buf.len() < PIPELINE_CAP,
                    }
                } else {
                    return Poll::Pending;
                }
            }
        })
        .await
    }

    /// Write a response: its head (laid out in `plan`), then its body as a whole or in chunks.
    async fn write_response(&mut self, plan: Plan, mut body: Body) -> io::Result<()> {
        let Plan {
            head: out,
            no_body,
            chunked,
            length,
            ..
        } = plan;
        if no_body {
            self.io.write_all(&out).await?;
            return self.io.flush().await;
        }
        let mut written: u64 = 0;
        let mut head = Some(out);
        loop {
            let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
            let data = match frame {
                None => break,
                Some(Err(e)) => {
                    // Nothing more can be said on this connection: close it mid-body.
                    return Err(io::Error::other(e));
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(d) if d.is_empty() => continue,
                    Ok(d) => d,
                    Err(_trailers) => continue,
                },
            };
            written += data.len() as u64;
            if length.is_some_and(|n| written > n) {
                return Err(io::Error::other("response body longer than its length"));
            }
            if chunked {
                let mut out = head.take().unwrap_or_default();
                write!(out, "{:x}\r\n", data.len())?;
                if data.len() <= COALESCE {
                    out.extend_from_slice(&data);
                    out.extend_from_slice(b"\r\n");
                    self.io.write_all(&out).await?;
                } else {
                    self.io.write_all(&out).await?;
                    self.io.write_all(&data).await?;
                    self.io.write_all(b"\r\n").await?;
                }
                // A stream's pieces go out as they come (a log line of `monitor`).
                self.io.flush().await?;
            } else if let Some(mut out) = head.take() {
                if data.len() <= COALESCE {
                    out.extend_from_slice(&data);
                    self.io.write_all(&out).await?;
                } else {
                    self.io.write_all(&out).await?;
                    self.io.write_all(&data).await?;
                }
            } else {
                self.io.write_all(&data).await?;
            }
        }
        if let Some(out) = head.take() {
            self.io.write_all(&out).await?;
        }
        if chunked {
            self.io.write_all(b"0\r\n\r\n").await?;
        }
        if length.is_some_and(|n| written != n) {
            return Err(io::Error::other("response body shorter than its length"));
        }
        self.io.flush().await
    }

    /// Answer a request that cannot be read (`status`) and close.
    async fn refuse(&mut self, status: u16, reason: &str) -> io::Result<()> {
        let text = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{status} {reason}",
            status.to_string().len() + 1 + reason.len()
        );
        self.io.write_all(text.as_bytes()).await?;
        self.io.flush().await?;
        self.linger().await;
        Ok(())
    }

    /// Close after an answer while the client may still be sending what was not read (a body
    /// the handler refused, the rest of a refused head): end this side first and take what
    /// comes for a moment. Closing a socket with unread bytes sends a reset, and a reset can
    /// throw away the answer before the client reads it. As Go's server, at most
    /// [`LINGER`], and at most [`LINGER_BYTES`].
    async fn linger(&mut self) {
        if self.io.shutdown().await.is_err() {
            return;
        }
        let drain = async {
            let mut taken = 0;
            while taken < LINGER_BYTES {
                self.buf.clear();
                match self.read_some(READ_CHUNK).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => taken += n,
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
        self.buf = BytesMut::new();
    }
}

/// A response's head, laid out, and how its body is framed.
struct Plan {
    head: Vec<u8>,
    no_body: bool,
    chunked: bool,
    length: Option<u64>,
    keep_alive: bool,
}

impl Plan {
    fn new(
        response: Response<Body>,
        is_head: bool,
        http10: bool,
        mut keep_alive: bool,
    ) -> (Plan, Body) {
        let (parts, body) = response.into_parts();
        let status = parts.status;
        let no_body = is_head
            || status.is_informational()
            || status == axum::http::StatusCode::NO_CONTENT
            || status == axum::http::StatusCode::NOT_MODIFIED;
        let length = match parts.headers.get(header::CONTENT_LENGTH) {
            Some(v) => v.to_str().ok().and_then(|s| s.parse::<u64>().ok()),
            None => body.size_hint().exact(),
        };
        // Chunked for a stream over HTTP/1.1; over HTTP/1.0 the end of the connection ends it.
        let chunked = !no_body && length.is_none() && !http10;
        if !no_body && length.is_none() && http10 {
            keep_alive = false;
        }
        if parts
            .headers
            .get(header::CONNECTION)
            .is_some_and(|v| has_token(v.as_bytes(), b"close"))
        {
            keep_alive = false;
        }

        // Room for the head and, when it goes in the same write, the body.
        let inline_body = match length {
            Some(n) if !no_body && n as usize <= COALESCE => n as usize,
            _ => 0,
        };
        let mut out = Vec::with_capacity(256 + inline_body);
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &parts.headers {
            if name == header::CONNECTION || name == header::TRANSFER_ENCODING {
                continue;
            }
            if name == header::CONTENT_LENGTH && status.is_informational() {
                continue;
            }
            push_header(&mut out, name.as_str().as_bytes(), value.as_bytes());
        }
        if !parts.headers.contains_key(header::CONTENT_LENGTH) && !status.is_informational() {
            match length {
                Some(n) if !(is_head && n == 0) => {
                    let _ = write!(out, "content-length: {n}\r\n");
                }
                _ => {}
            }
        }
        if chunked {
            push_header(&mut out, b"transfer-encoding", b"chunked");
        }
        if !keep_alive {
            push_header(&mut out, b"connection", b"close");
        } else if http10 {
            push_header(&mut out, b"connection", b"keep-alive");
        }
        if !parts.headers.contains_key(header::DATE) {
            date::with_now(|d| push_header(&mut out, b"date", d));
        }
        out.extend_from_slice(b"\r\n");
        let plan = Plan {
            head: out,
            no_body,
            chunked,
            length,
            keep_alive,
        };
        (plan, body)
    }
}

fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Does a comma-separated header value hold `token` (ASCII case-insensitive)?
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Parse a request head from the front of `buf`: `Ok(None)` while it is incomplete; once whole
/// it is taken off `buf`.
fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, Refusal> {
    const BAD: Refusal = Refusal(400, "Bad Request");
    // Not filled in first: 128 empty headers are 4 KiB of stores for every request.
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal(431, "Request Header Fields Too Large"))
        }
        Err(_) => return Err(BAD),
    };
    if len > MAX_HEAD {
        return Err(Refusal(431, "Request Header Fields Too Large"));
    }
    // Where each part lies in the head, so that the head can be frozen and shared.
    let base = buf.as_ptr() as usize;
    let span = |s: &[u8]| (s.as_ptr() as usize - base, s.len());
    let method = Method::from_bytes(req.method.ok_or(BAD)?.as_bytes()).map_err(|_| BAD)?;
    let path = span(req.path.ok_or(BAD)?.as_bytes());
    let version = match req.version {
        Some(0) => axum::http::Version::HTTP_10,
        Some(1) => axum::http::Version::HTTP_11,
        _ => return Err(BAD),
    };
    let mut names = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| BAD)?;
        names.push((name, span(h.value)));
    }
    let head = buf.split_to(len).freeze();
    let mut headers = HeaderMap::with_capacity(names.len());
    for (name, (at, n)) in names {
        let value = HeaderValue::from_maybe_shared(head.slice(at..at + n)).map_err(|_| BAD)?;
        headers.append(name, value);
    }
    let uri = Uri::from_maybe_shared(head.slice(path.0..path.0 + path.1)).map_err(|_| BAD)?;

    let framing = framing(&headers)?;
    let connection = headers.get(header::CONNECTION).map(|v| v.as_bytes());
    let keep_alive = match version {
        axum::http::Version::HTTP_10 => connection.is_some_and(|v| has_token(v, b"keep-alive")),
        _ => !connection.is_some_and(|v| has_token(v, b"close")),
    };
    let expect_continue = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Ok(Some(Head {
        request,
        framing,
        keep_alive,
        expect_continue,
    }))
}

/// How a request's body is framed (RFC 9112 §6.3): chunked when its last transfer coding is,
/// else by its one `Content-Length`; both at once is refused (a request smuggling shape).
fn framing(headers: &HeaderMap) -> Result<Option<Framing>, Refusal> {
    const BAD: Refusal = Refusal(400, "Bad Request");
    let te: Vec<&HeaderValue> = headers.get_all(header::TRANSFER_ENCODING).iter().collect();
    let cl: Vec<&HeaderValue> = headers.get_all(header::CONTENT_LENGTH).iter().collect();
    if !te.is_empty() {
        if !cl.is_empty() {
            return Err(BAD);
        }
        let last = te
            .last()
            .and_then(|v| v.as_bytes().rsplit(|&b| b == b',').next())
            .map(|t| t.trim_ascii());
        if !last.is_some_and(|t| t.eq_ignore_ascii_case(b"chunked")) {
            return Err(Refusal(501, "Not Implemented"));
        }
        return Ok(Some(Framing::Chunked));
    }
    let mut length = None;
    for v in cl {
        for part in v.as_bytes().split(|&b| b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) || part.len() > 19 {
                return Err(BAD);
            }
            let n: u64 = std::str::from_utf8(part)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(BAD)?;
            if length.is_some_and(|l| l != n) {
                return Err(BAD);
            }
            length = Some(n);
        }
    }
    Ok(match length {
        None | Some(0) => None,
        Some(n) => Some(Framing::Length(n)),
    })
}

/// The request body's feeder: takes the body's bytes off the connection and hands them to the
/// handler one piece at a time, as the handler asks for them.
struct BodyFeed {
    state: FeedState,
    /// `100 Continue` is owed before the body is read: bytes of it written so far, if owed.
    continue_first: bool,
    continue_sent: usize,
    /// Shared with the handler's body while there is more to hand on.
    handoff: Option<Arc<Mutex<Handoff>>>,
    body: Option<Body>,
}

/// The one-piece meeting point of the connection (which puts) and the handler's body (which
/// takes).
#[derive(Default)]
struct Handoff {
    piece: Option<io::Result<Bytes>>,
    /// Nothing comes after `piece`: the body's end, or its failure.
    ended: bool,
    /// The handler let go of the body: read no more of it.
    dropped: bool,
    /// Waiting for a piece.
    reader: Option<Waker>,
    /// Waiting for room.
    feeder: Option<Waker>,
}

fn lock(h: &Mutex<Handoff>) -> std::sync::MutexGuard<'_, Handoff> {
    h.lock().unwrap_or_else(|e| e.into_inner())
}

enum FeedState {
    /// No body, or all of it fed.
    Done,
    Length(u64),
    Chunked(ChunkedState),
    /// Reading it failed; the connection closes after the answer.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkedState {
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk's data: bytes left.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// The trailer section, after the last chunk: bytes seen so far.
    Trailers(usize),
}

impl BodyFeed {
    fn new(framing: Option<Framing>) -> Self {
        let Some(framing) = framing else {
            return BodyFeed {
                state: FeedState::Done,
                continue_first: false,
                continue_sent: 0,
                handoff: None,
                body: Some(Body::empty()),
            };
        };
        let handoff = Arc::new(Mutex::new(Handoff::default()));
        let (state, size) = match framing {
            Framing::Length(n) => (FeedState::Length(n), Some(n)),
            Framing::Chunked => (FeedState::Chunked(ChunkedState::Size), None),
        };
        BodyFeed {
            state,
            continue_first: false,
            continue_sent: 0,
            body: Some(Body::new(IncomingBody {
                handoff: handoff.clone(),
                left: size,
            })),
            handoff: Some(handoff),
        }
    }

    fn take_body(&mut self) -> Body {
        self.body.take().unwrap_or_default()
    }

    fn active(&self) -> bool {
        self.handoff.is_some() && matches!(self.state, FeedState::Length(_) | FeedState::Chunked(_))
    }

    /// All of the body was read off the connection (so the next request starts after it).
    fn finished(&self) -> bool {
        matches!(self.state, FeedState::Done)
    }

    /// Reading the body failed: the handler gets `e` as its last piece.
    fn fail(&mut self, e: io::Error) {
        self.state = FeedState::Failed;
        if let Some(handoff) = self.handoff.take() {
            let mut h = lock(&handoff);
            h.piece = Some(Err(e));
            h.ended = true;
            if let Some(w) = h.reader.take() {
                w.wake();
            }
        }
    }

    /// Take the body's next piece off the connection (reading it if it has not come) and hand
    /// it on once the handler has taken the one before.
    fn poll_feed<I: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        conn: &mut Conn<I>,
    ) -> Poll<io::Result<()>> {
        let Some(handoff) = self.handoff.clone() else {
            self.state = FeedState::Done;
            return Poll::Ready(Ok(()));
        };
        {
            // Room first: nothing is taken off the connection that cannot be handed on.
            let mut h = lock(&handoff);
            if h.dropped {
                // The rest is the handler's to ignore: [`BodyFeed::poll_discard`] may read it
                // off once the answer is in.
                self.handoff = None;
                return Poll::Ready(Ok(()));
            }
            if h.piece.is_some() {
                h.feeder = Some(cx.waker().clone());
                return Poll::Pending;
            }
        }
        while self.continue_first {
            let rest = &CONTINUE[self.continue_sent..];
            if rest.is_empty() {
                ready!(Pin::new(&mut conn.io).poll_flush(cx))?;
                self.continue_first = false;
                break;
            }
            match ready!(Pin::new(&mut conn.io).poll_write(cx, rest))? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                n => self.continue_sent += n,
            }
        }
        loop {
            if let Some(piece) = self.take_piece(&mut conn.buf)? {
                let mut h = lock(&handoff);
                if !piece.is_empty() {
                    h.piece = Some(Ok(piece));
                }
                if self.finished() {
                    h.ended = true;
                    self.handoff = None;
                }
                if let Some(w) = h.reader.take() {
                    w.wake();
                }
                return Poll::Ready(Ok(()));
            }
            let want = match self.state {
                FeedState::Length(n) => n.min(READ_CHUNK as u64) as usize,
                _ => READ_CHUNK,
            };
            if ready!(conn.poll_read_some(cx, want))? == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the request body ended early",
                )));
            }
        }
    }

    /// Read off and drop what the handler left of the body, as Go's server does before it
    /// answers (up to [`MAX_DRAIN`] bytes), so the connection can serve the next request:
    /// `true` once the body's end is read. Never when `100 Continue` was not sent (the client
    /// holds the body back; the connection closes instead).
    fn poll_discard<I: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        conn: &mut Conn<I>,
        discarded: &mut usize,
    ) -> Poll<bool> {
        if self.continue_first {
            return Poll::Ready(false);
        }
        loop {
            if self.finished() {
                return Poll::Ready(true);
            }
            if matches!(self.state, FeedState::Failed) || *discarded > MAX_DRAIN {
                return Poll::Ready(false);
            }
            match self.take_piece(&mut conn.buf) {
                Err(_) => return Poll::Ready(false),
                Ok(Some(piece)) => *discarded += piece.len(),
                Ok(None) => match ready!(conn.poll_read_some(cx, READ_CHUNK)) {
                    Ok(0) | Err(_) => return Poll::Ready(false),
                    Ok(_) => {}
                },
            }
        }
    }

    /// The next piece of the body from `buf`: `None` if more bytes must be read first.
    fn take_piece(&mut self, buf: &mut BytesMut) -> io::Result<Option<Bytes>> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        loop {
            match &mut self.state {
                FeedState::Done | FeedState::Failed => return Ok(Some(Bytes::new())),
                FeedState::Length(left) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = (*left).min(buf.len() as u64) as usize;
                    *left -= n as u64;
                    if *left == 0 {
                        self.state = FeedState::Done;
                    }
                    return Ok(Some(buf.split_to(n).freeze()));
                }
                FeedState::Chunked(ChunkedState::Size) => {
                    let Some(end) = find_crlf(buf) else {
                        if buf.len() > MAX_CHUNK_LINE {
                            return Err(bad("chunk size line too long"));
                        }
                        return Ok(None);
                    };
                    let line = &buf[..end];
                    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
                    let size =
                        parse_hex(digits.trim_ascii()).ok_or_else(|| bad("bad chunk size"))?;
                    buf.advance(end + 2);
                    self.state = FeedState::Chunked(if size == 0 {
                        ChunkedState::Trailers(0)
                    } else {
                        ChunkedState::Data(size)
                    });
                }
                FeedState::Chunked(ChunkedState::Data(left)) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = (*left).min(buf.len() as u64) as usize;
                    *left -= n as u64;
                    if *left == 0 {
                        self.state = FeedState::Chunked(ChunkedState::DataEnd);
                    }
                    return Ok(Some(buf.split_to(n).freeze()));
                }
                FeedState::Chunked(ChunkedState::DataEnd) => {
                    if buf.len() < 2 {
                        return Ok(None);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(bad("chunk data not followed by CRLF"));
                    }
                    buf.advance(2);
                    self.state = FeedState::Chunked(ChunkedState::Size);
                }
                FeedState::Chunked(ChunkedState::Trailers(seen)) => {
                    let Some(end) = find_crlf(buf) else {
                        if *seen + buf.len() > MAX_TRAILERS {
                            return Err(bad("trailers too long"));
                        }
                        return Ok(None);
                    };
                    // Trailer fields are read and dropped; an empty line ends the body.
                    buf.advance(end + 2);
                    if end == 0 {
                        self.state = FeedState::Done;
                        return Ok(Some(Bytes::new()));
                    }
                    *seen += end + 2;
                    if *seen > MAX_TRAILERS {
                        return Err(bad("trailers too long"));
                    }
                }
            }
        }
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

fn parse_hex(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        let v = (d as char).to_digit(16)?;
        Some((n << 4) | u64::from(v))
    })
}

/// A request body as the handler reads it: the pieces the connection hands on.
struct IncomingBody {
    handoff: Arc<Mutex<Handoff>>,
    /// Bytes still to come, when the request said how many.
    left: Option<u64>,
}

impl http_body::Body for IncomingBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.left == Some(0) {
            return Poll::Ready(None);
        }
        let mut h = lock(&self.handoff);
        let Some(piece) = h.piece.take() else {
            if h.ended {
                return Poll::Ready(None);
            }
            h.reader = Some(cx.waker().clone());
            return Poll::Pending;
        };
        if let Some(w) = h.feeder.take() {
            w.wake();
        }
        drop(h);
        Poll::Ready(Some(piece.map(|data| {
            if let Some(left) = &mut self.left {
                *left = left.saturating_sub(data.len() as u64);
            }
            Frame::data(data)
        })))
    }

    fn is_end_stream(&self) -> bool {
        self.left == Some(0)
    }

    fn size_hint(&self) -> SizeHint {
        match self.left {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

impl Drop for IncomingBody {
    fn drop(&mut self) {
        let mut h = lock(&self.handoff);
        h.dropped = true;
        if let Some(w) = h.feeder.take() {
            w.wake();
        }
    }
}

/// The `Date` header's text, formatted once a second per thread.
mod date {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};

    thread_local! {
        static NOW: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
    }

    pub(super) fn with_now(f: impl FnOnce(&[u8])) {
        let now = SystemTime::now();
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        NOW.with(|cell| {
            let mut cached = cell.borrow_mut();
            if cached.0 != secs || cached.1.is_empty() {
                *cached = (secs, httpdate::fmt_http_date(now));
            }
            f(cached.1.as_bytes());
        });
    }
}

#[cfg(test)]
mod tests;
