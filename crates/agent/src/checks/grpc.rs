//! gRPC health checks: one `grpc.health.v1.Health/Check` call over HTTP/2.
//!
//! Layers, bottom up: protobuf (`HealthCheckRequest { string service = 1; }`,
//! `HealthCheckResponse { ServingStatus status = 1; }`, hand-encoded), gRPC message framing
//! (1-byte compressed flag, 4-byte big-endian length), and one HTTP/2 stream on the `h2`
//! crate (`content-type: application/grpc`, `te: trailers`, status in `grpc-status`). Every
//! size read from the network is bounded; nothing here panics on bad input. Errors read like
//! grpc-go's (`rpc error: code = Unavailable desc = ...`), which is what Consul shows.

use std::time::Duration;

use hyper::body::Bytes;
use hyper::header::{HeaderMap, HeaderValue};
use tokio::net::TcpStream;

use super::tls::{self, TlsOptions};
use super::AbortOnDrop;

/// The health service's method path.
pub const METHOD_PATH: &str = "/grpc.health.v1.Health/Check";
/// The largest response body (and message) read; a health response is a few bytes.
pub const MAX_RESPONSE: usize = 64 * 1024;
/// The largest header block accepted from the server.
const MAX_HEADER_LIST: u32 = 16 * 1024;

/// `HealthCheckResponse.ServingStatus` values.
pub const SERVING: i32 = 1;

/// The name of a serving status, as grpc-go prints it.
pub fn status_name(status: i32) -> String {
    match status {
        0 => "UNKNOWN".into(),
        1 => "SERVING".into(),
        2 => "NOT_SERVING".into(),
        3 => "SERVICE_UNKNOWN".into(),
        n => n.to_string(),
    }
}

/// Split a check's `grpc` value into the address to dial and the service to ask about.
pub use proconsul_types::split_grpc_target as split_target;

// ---- protobuf ----

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Read a varint at `*pos`; at most 10 bytes, no overflow past 64 bits.
fn get_varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let b = *buf
            .get(*pos)
            .ok_or_else(|| "truncated protobuf varint".to_string())?;
        *pos += 1;
        if i == 9 && b > 1 {
            return Err("protobuf varint overflows 64 bits".into());
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("protobuf varint longer than 10 bytes".into())
}

/// `HealthCheckRequest { service }` (proto3: an empty service is an empty message).
pub fn encode_request(service: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(service.len() + 6);
    if !service.is_empty() {
        out.push(0x0a); // field 1, wire type 2 (length-delimited)
        put_varint(&mut out, service.len() as u64);
        out.extend_from_slice(service.as_bytes());
    }
    out
}

/// `HealthCheckResponse.status`; unknown fields are skipped, a missing status is UNKNOWN (0).
pub fn decode_response(msg: &[u8]) -> Result<i32, String> {
    let mut pos = 0;
    let mut status = 0i32;
    while pos < msg.len() {
        let key = get_varint(msg, &mut pos)?;
        let (field, wire) = (key >> 3, key & 7);
        if field == 0 {
            return Err("protobuf field number 0".into());
        }
        match wire {
            0 => {
                let v = get_varint(msg, &mut pos)?;
                if field == 1 {
                    // enums are int32, negative values sign-extended to 64 bits
                    status = v as i64 as i32;
                }
            }
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                if msg.len() - pos < n {
                    return Err("truncated protobuf fixed-width field".into());
                }
                pos += n;
            }
            2 => {
                let n = get_varint(msg, &mut pos)?;
                if n > (msg.len() - pos) as u64 {
                    return Err("truncated protobuf length-delimited field".into());
                }
                pos += n as usize;
            }
            w => return Err(format!("unsupported protobuf wire type {w}")),
        }
        if field == 1 && wire != 0 {
            return Err(format!("HealthCheckResponse.status has wire type {wire}"));
        }
    }
    Ok(status)
}

// ---- gRPC message framing ----

/// Prefix a message with gRPC's 5-byte header (uncompressed).
pub fn frame(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + msg.len());
    out.push(0);
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(msg);
    out
}

/// The single message of a unary response body: exactly one uncompressed frame of at most
/// `max` bytes.
pub fn unframe(body: &[u8], max: usize) -> Result<&[u8], String> {
    if body.is_empty() {
        return Err("server sent no response message".into());
    }
    if body.len() < 5 {
        return Err("truncated gRPC message header".into());
    }
    match body[0] {
        0 => {}
        1 => return Err("compressed gRPC message, but no compression was negotiated".into()),
        f => return Err(format!("invalid gRPC message flag {f}")),
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    if len > max {
        return Err(format!(
            "gRPC message of {len} bytes exceeds the {max}-byte limit"
        ));
    }
    let rest = &body[5..];
    if rest.len() < len {
        return Err(format!(
            "truncated gRPC message: {} of {len} bytes",
            rest.len()
        ));
    }
    if rest.len() > len {
        return Err("more than one message in a unary gRPC response".into());
    }
    Ok(rest)
}

// ---- status codes ----

/// grpc-go's name for a status code.
fn code_name(code: u32) -> String {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    NAMES
        .get(code as usize)
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("Code({code})"))
}

fn rpc_error(code: &str, desc: impl std::fmt::Display) -> String {
    format!("rpc error: code = {code} desc = {desc}")
}

/// `grpc-message` is percent-encoded; decode it leniently (bad escapes stay as they are).
fn percent_decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' && i + 2 < s.len() {
            let hex = std::str::from_utf8(&s[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The call's outcome from `grpc-status`/`grpc-message`; `None` when there is no status.
fn call_status(headers: &HeaderMap) -> Option<Result<(), String>> {
    let code = headers.get("grpc-status")?;
    let code: u32 = match code.to_str().ok().and_then(|c| c.trim().parse().ok()) {
        Some(c) => c,
        None => {
            return Some(Err(rpc_error(
                "Internal",
                format!("malformed grpc-status {code:?}"),
            )))
        }
    };
    if code == 0 {
        return Some(Ok(()));
    }
    let msg = headers
        .get("grpc-message")
        .map(|m| percent_decode(m.as_bytes()))
        .unwrap_or_default();
    Some(Err(rpc_error(&code_name(code), msg)))
}

/// grpc-go's mapping of a non-200 HTTP status to a gRPC code.
fn http_status_code(status: u16) -> &'static str {
    match status {
        400 => "Internal",
        401 => "Unauthenticated",
        403 => "PermissionDenied",
        404 => "Unimplemented",
        429 | 502 | 503 | 504 => "Unavailable",
        _ => "Unknown",
    }
}

// ---- the call ----

/// Ask `addr` for the health of `service`; returns the serving status, or a grpc-go-like error.
/// `tls` is `Some` for `grpc_use_tls`. The caller bounds the time taken (`timeout` is only sent
/// to the server as `grpc-timeout`).
pub async fn check(
    addr: &str,
    service: &str,
    tls: Option<&TlsOptions>,
    timeout: Duration,
) -> Result<i32, String> {
    let unavailable = |e: String| {
        rpc_error(
            "Unavailable",
            format!("connection error: desc = \"transport: {e}\""),
        )
    };
    let tcp = TcpStream::connect(addr).await.map_err(|e| {
        unavailable(format!(
            "Error while dialing: dial tcp {addr}: connect: {e}"
        ))
    })?;
    let _ = tcp.set_nodelay(true);
    let mut builder = h2::client::Builder::new();
    builder
        .max_header_list_size(MAX_HEADER_LIST)
        .initial_window_size(MAX_RESPONSE as u32 + 5);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let (client, _driver) = match tls {
        Some(opts) => {
            let host = host_of(addr);
            let stream = tls::handshake(tcp, host, opts, &[b"h2"])
                .await
                .map_err(|e| unavailable(format!("authentication handshake failed: {e}")))?;
            let (client, conn) = builder
                .handshake::<_, Bytes>(stream)
                .await
                .map_err(|e| unavailable(e.to_string()))?;
            (
                client,
                AbortOnDrop(tokio::spawn(async move {
                    let _ = conn.await;
                })),
            )
        }
        None => {
            let (client, conn) = builder
                .handshake::<_, Bytes>(tcp)
                .await
                .map_err(|e| unavailable(e.to_string()))?;
            (
                client,
                AbortOnDrop(tokio::spawn(async move {
                    let _ = conn.await;
                })),
            )
        }
    };
    let mut client = client
        .ready()
        .await
        .map_err(|e| unavailable(e.to_string()))?;

    let millis = timeout.as_millis().clamp(1, 99_999_999);
    let request = hyper::Request::builder()
        .method("POST")
        .uri(format!("{scheme}://{addr}{METHOD_PATH}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("user-agent", "proconsul-grpc-health-check")
        .header("grpc-timeout", format!("{millis}m"))
        .body(())
        .map_err(|e| rpc_error("Internal", e))?;
    let (response, mut send) = client
        .send_request(request, false)
        .map_err(|e| unavailable(e.to_string()))?;
    send.send_data(Bytes::from(frame(&encode_request(service))), true)
        .map_err(|e| unavailable(e.to_string()))?;
    let response = response.await.map_err(|e| rpc_error("Unavailable", e))?;
    let (parts, mut body) = response.into_parts();
    if parts.status != hyper::StatusCode::OK {
        return Err(rpc_error(
            http_status_code(parts.status.as_u16()),
            format!(
                "unexpected HTTP status code received from server: {} ({})",
                parts.status.as_u16(),
                parts.status.canonical_reason().unwrap_or("")
            ),
        ));
    }
    let content_type = parts
        .headers
        .get("content-type")
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    if !content_type.starts_with(b"application/grpc") {
        return Err(rpc_error(
            "Internal",
            format!(
                "transport: received unexpected content-type {:?}",
                String::from_utf8_lossy(content_type)
            ),
        ));
    }
    // Trailers-only response: the status rides on the headers and there is no message.
    if let Some(outcome) = call_status(&parts.headers) {
        outcome?;
        return Err(rpc_error("Internal", "server sent no response message"));
    }
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| rpc_error("Unavailable", e))?;
        let _ = body.flow_control().release_capacity(chunk.len());
        if data.len() + chunk.len() > MAX_RESPONSE + 5 {
            return Err(rpc_error(
                "ResourceExhausted",
                format!("response larger than {MAX_RESPONSE} bytes"),
            ));
        }
        data.extend_from_slice(&chunk);
    }
    let trailers = body
        .trailers()
        .await
        .map_err(|e| rpc_error("Unavailable", e))?
        .unwrap_or_default();
    match call_status(&trailers) {
        Some(outcome) => outcome?,
        None => {
            return Err(rpc_error(
                "Internal",
                "server closed the stream without sending trailers",
            ))
        }
    }
    let msg = unframe(&data, MAX_RESPONSE).map_err(|e| rpc_error("Internal", e))?;
    decode_response(msg).map_err(|e| {
        rpc_error(
            "Internal",
            format!("grpc: failed to unmarshal the received message: {e}"),
        )
    })
}

/// The host part of `host:port` (`[::1]:80` → `[::1]`).
pub(crate) fn host_of(addr: &str) -> &str {
    match addr.rfind(':') {
        Some(i) if !addr[i..].contains(']') => &addr[..i],
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_encoding() {
        assert_eq!(encode_request(""), Vec::<u8>::new());
        assert_eq!(encode_request("web"), b"\x0a\x03web".to_vec());
        let long = "s".repeat(300);
        let enc = encode_request(&long);
        assert_eq!(&enc[..3], &[0x0a, 0xac, 0x02]); // 300 = 0b10_0101100
        assert_eq!(enc.len(), 303);
    }

    #[test]
    fn response_decoding() {
        assert_eq!(decode_response(&[]), Ok(0));
        assert_eq!(decode_response(&[0x08, 0x01]), Ok(SERVING));
        assert_eq!(decode_response(&[0x08, 0x02]), Ok(2));
        // unknown fields of every wire type are skipped; the last status wins
        let msg = [
            0x08, 0x02, // status NOT_SERVING
            0x10, 0x96, 0x01, // field 2 varint
            0x19, 1, 2, 3, 4, 5, 6, 7, 8, // field 3 fixed64
            0x22, 0x02, b'h', b'i', // field 4 bytes
            0x2d, 1, 2, 3, 4, // field 5 fixed32
            0x08, 0x01, // status SERVING
        ];
        assert_eq!(decode_response(&msg), Ok(SERVING));
        // negative enum values are sign-extended ten-byte varints
        let neg = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert_eq!(decode_response(&neg), Ok(-1));
    }

    #[test]
    fn bad_protobuf_is_an_error() {
        for bad in [
            &[0x08][..],                           // status without a value
            &[0x08, 0x80],                         // truncated varint
            &[0x22, 0x05, b'a'],                   // bytes longer than the message
            &[0x22, 0xff, 0xff, 0xff, 0xff, 0x0f], // huge length
            &[0x19, 1, 2],                         // truncated fixed64
            &[0x2d, 1],                            // truncated fixed32
            &[0x0b],                               // group start (wire type 3)
            &[0x00, 0x01],                         // field number 0
            &[0x0a, 0x00],                         // status as bytes
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ], // > 64 bits
            &[
                0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
            ],
        ] {
            assert!(decode_response(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn framing_round_trip_and_limits() {
        let framed = frame(&[0x08, 0x01]);
        assert_eq!(framed, vec![0, 0, 0, 0, 2, 0x08, 0x01]);
        assert_eq!(unframe(&framed, 16), Ok(&[0x08, 0x01][..]));
        assert_eq!(unframe(&frame(&[]), 16), Ok(&[][..]));
        // empty body, short header, truncated payload, oversized, compressed, trailing data
        assert!(unframe(&[], 16).is_err());
        assert!(unframe(&[0, 0, 0], 16).is_err());
        assert!(unframe(&[0, 0, 0, 0, 3, 0x08], 16)
            .unwrap_err()
            .contains("truncated"));
        assert!(unframe(&[0, 0xff, 0xff, 0xff, 0xff], 16)
            .unwrap_err()
            .contains("exceeds"));
        assert!(unframe(&[1, 0, 0, 0, 0], 16)
            .unwrap_err()
            .contains("compressed"));
        assert!(unframe(&[7, 0, 0, 0, 0], 16).is_err());
        let mut two = frame(&[0x08, 0x01]);
        two.extend(frame(&[0x08, 0x01]));
        assert!(unframe(&two, 16).is_err());
    }

    #[test]
    fn statuses_read_like_grpc_go() {
        let mut h = HeaderMap::new();
        assert!(call_status(&h).is_none());
        h.insert("grpc-status", HeaderValue::from_static("0"));
        assert_eq!(call_status(&h), Some(Ok(())));
        h.insert("grpc-status", HeaderValue::from_static("12"));
        h.insert(
            "grpc-message",
            HeaderValue::from_static("unknown service grpc.health.v1.Health%21"),
        );
        assert_eq!(
            call_status(&h),
            Some(Err(
                "rpc error: code = Unimplemented desc = unknown service grpc.health.v1.Health!"
                    .into()
            ))
        );
        h.insert("grpc-status", HeaderValue::from_static("x"));
        assert!(call_status(&h).unwrap().is_err());
        h.insert("grpc-status", HeaderValue::from_static("99"));
        assert!(call_status(&h).unwrap().unwrap_err().contains("Code(99)"));
        assert_eq!(percent_decode(b"a%2"), "a%2");
        assert_eq!(percent_decode(b"%zz%41"), "%zzA");
        assert_eq!(status_name(2), "NOT_SERVING");
        assert_eq!(host_of("[::1]:50051"), "[::1]");
        assert_eq!(host_of("web.local:50051"), "web.local");
    }
}
