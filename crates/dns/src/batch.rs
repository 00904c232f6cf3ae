//! Batched UDP I/O on Linux: `recvmmsg` takes up to [`BATCH`] queries in one system call and
//! `sendmmsg` sends the cached answers to all of them in one more. Under load the per-query cost
//! is then mostly the kernel's packet work, not system-call entries; when idle a batch is one
//! packet and this is plain `recvmsg`/`sendmsg`.
//!
//! Both calls block: the socket is in blocking mode and served by its own thread (`udp.rs`), so
//! a receive sleeps in the kernel until the first datagram arrives (`MSG_WAITFORONE`) and then
//! takes whatever else is queued without waiting.
//!
//! The only `unsafe` in the DNS crate lives here: the two calls and the `mmsghdr` arrays they
//! fill, which this module owns and never lets escape.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use socket2::{SockAddr, Socket};

/// Queries taken per system call.
pub(crate) const BATCH: usize = 32;
/// Longest query accepted; a longer datagram is dropped (flagged `MSG_TRUNC`).
pub(crate) const MAX_QUERY: usize = 4096;

/// Receive buffers and their headers, reused for every batch.
pub(crate) struct RecvBatch {
    bufs: Vec<[u8; MAX_QUERY]>,
    addrs: Vec<libc::sockaddr_storage>,
    lens: Vec<usize>,
    peers: Vec<Option<SocketAddr>>,
    count: usize,
}

impl RecvBatch {
    pub(crate) fn new() -> Self {
        RecvBatch {
            bufs: vec![[0u8; MAX_QUERY]; BATCH],
            // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
            addrs: vec![unsafe { std::mem::zeroed() }; BATCH],
            lens: vec![0; BATCH],
            peers: vec![None; BATCH],
            count: 0,
        }
    }

    /// Sleep until a datagram arrives on the blocking `socket`, then take it and whatever else is
    /// queued. `Ok(0)` when the socket's read side was shut down.
    pub(crate) fn recv(&mut self, socket: &Socket) -> io::Result<usize> {
        let mut iovs: Vec<libc::iovec> = self
            .bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: MAX_QUERY,
            })
            .collect();
        // SAFETY: mmsghdr is plain old data; every pointer is set below before use.
        let mut hdrs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; BATCH];
        for (i, h) in hdrs.iter_mut().enumerate() {
            h.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &mut iovs[i];
            h.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: hdrs, iovs, bufs and addrs outlive the call and describe BATCH valid
        // entries; the kernel writes only within the lengths given.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for (i, h) in hdrs.iter().take(n).enumerate() {
            let truncated = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.lens[i] = if truncated {
                0
            } else {
                (h.msg_len as usize).min(MAX_QUERY)
            };
            self.peers[i] = to_socket_addr(&self.addrs[i]);
        }
        self.count = n;
        Ok(n)
    }

    /// The `i`th datagram of the last batch and its sender; `None` for one to drop.
    pub(crate) fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.count || self.lens[i] == 0 {
            return None;
        }
        Some((&self.bufs[i][..self.lens[i]], self.peers[i]?))
    }
}

/// The sender's address as the kernel wrote it (IPv4 or IPv6; anything else is dropped).
fn to_socket_addr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is big enough
            // for and aligned for.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Send every `(reply, peer)` on the blocking `socket` with as few `sendmmsg` calls as it
/// takes (one per [`BATCH`], waiting for room in the send buffer). A reply the kernel refuses
/// (e.g. an unreachable peer) is skipped.
pub(crate) fn send_all(socket: &Socket, replies: &[(Vec<u8>, SocketAddr)]) {
    let mut sent = 0;
    while sent < replies.len() {
        match send_now(socket, &replies[sent..]) {
            Ok(n) if n > 0 => sent += n,
            r => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, peer = %replies[sent].1, "dns: udp send failed");
                }
                sent += 1;
            }
        }
    }
}

fn send_now(socket: &Socket, replies: &[(Vec<u8>, SocketAddr)]) -> io::Result<usize> {
    let replies = &replies[..replies.len().min(BATCH)];
    let addrs: Vec<SockAddr> = replies.iter().map(|(_, p)| SockAddr::from(*p)).collect();
    let mut iovs: Vec<libc::iovec> = replies
        .iter()
        .map(|(r, _)| libc::iovec {
            iov_base: r.as_ptr() as *mut libc::c_void,
            iov_len: r.len(),
        })
        .collect();
    // SAFETY: mmsghdr is plain old data; every pointer is set below before use.
    let mut hdrs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; replies.len()];
    for (i, h) in hdrs.iter_mut().enumerate() {
        h.msg_hdr.msg_name = addrs[i].as_ptr() as *mut libc::c_void;
        h.msg_hdr.msg_namelen = addrs[i].len();
        h.msg_hdr.msg_iov = &mut iovs[i];
        h.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: hdrs, iovs, addrs and the reply buffers outlive the call; the kernel only reads.
    let n = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            hdrs.as_mut_ptr(),
            hdrs.len() as libc::c_uint,
            0,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}
