//! Frames on the wire: `[len u32 BE][kind u8][id u64 BE][method u8][body]`, where `len` counts
//! everything after itself. A reader rejects a frame larger than its limit before allocating.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::WireError;

/// Largest frame either side accepts: Raft snapshot chunks are 1 MiB, KV values 512 KiB.
pub const MAX_FRAME: usize = 8 * 1024 * 1024;
const HEADER: usize = 1 + 8 + 1;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Request = 0,
    Response = 1,
    /// The handler failed; the body is the error text.
    Error = 2,
}

impl FrameKind {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(FrameKind::Request),
            1 => Some(FrameKind::Response),
            2 => Some(FrameKind::Error),
            _ => None,
        }
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: FrameKind,
    /// Matches a response to its request on a multiplexed connection.
    pub id: u64,
    /// Which endpoint a request is for (the caller's numbering).
    pub method: u8,
    pub body: Vec<u8>,
}

/// Write one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, f: &Frame) -> Result<(), WireError> {
    let len = HEADER + f.body.len();
    if len > MAX_FRAME {
        return Err(WireError::TooLarge(len));
    }
    let mut buf = Vec::with_capacity(4 + len);
    buf.extend_from_slice(&(len as u32).to_be_bytes());
    buf.push(f.kind as u8);
    buf.extend_from_slice(&f.id.to_be_bytes());
    buf.push(f.method);
    buf.extend_from_slice(&f.body);
    w.write_all(&buf).await.map_err(|_| WireError::Closed)?;
    w.flush().await.map_err(|_| WireError::Closed)
}

/// Read one frame; `Ok(None)` on a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    limit: usize,
) -> Result<Option<Frame>, WireError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(_) => return Err(WireError::Closed),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > limit {
        return Err(WireError::TooLarge(len));
    }
    if len < HEADER {
        return Err(WireError::Protocol(format!(
            "frame of {len} bytes is shorter than its header"
        )));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)
        .await
        .map_err(|_| WireError::Closed)?;
    let kind = FrameKind::from_u8(buf[0])
        .ok_or_else(|| WireError::Protocol(format!("unknown frame kind {}", buf[0])))?;
    let id = u64::from_be_bytes(buf[1..9].try_into().expect("8 bytes"));
    let method = buf[9];
    buf.drain(..HEADER);
    Ok(Some(Frame {
        kind,
        id,
        method,
        body: buf,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_limits() {
        let f = Frame {
            kind: FrameKind::Request,
            id: 42,
            method: 7,
            body: b"hello".to_vec(),
        };
        let mut buf = Vec::new();
        write_frame(&mut buf, &f).await.unwrap();
        assert_eq!(buf.len(), 4 + HEADER + 5);
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r, MAX_FRAME).await.unwrap(), Some(f));
        assert_eq!(read_frame(&mut r, MAX_FRAME).await.unwrap(), None);
        // a frame over the reader's limit is refused before its body is read
        let mut r = &buf[..];
        assert_eq!(
            read_frame(&mut r, 8).await,
            Err(WireError::TooLarge(HEADER + 5))
        );
        // truncated and malformed input
        let mut r = &buf[..buf.len() - 1];
        assert_eq!(read_frame(&mut r, MAX_FRAME).await, Err(WireError::Closed));
        let bad = [0u8, 0, 0, 2, 0, 0];
        assert!(matches!(
            read_frame(&mut &bad[..], MAX_FRAME).await,
            Err(WireError::Protocol(_))
        ));
        let mut unknown = buf.clone();
        unknown[4] = 9;
        assert!(matches!(
            read_frame(&mut &unknown[..], MAX_FRAME).await,
            Err(WireError::Protocol(_))
        ));
        let huge = Frame {
            kind: FrameKind::Request,
            id: 1,
            method: 0,
            body: vec![0; MAX_FRAME],
        };
        assert!(matches!(
            write_frame(&mut Vec::new(), &huge).await,
            Err(WireError::TooLarge(_))
        ));
    }
}
