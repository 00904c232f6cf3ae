//! Server RPC connections: frames read from the bytes as the server's connection loop reads
//! them (`proconsul_rpc::frame::read_frame` with the server's limit), and each request body
//! decoded as the server does by method: the handshake (`Hello`), a `Call` (every
//! `ServerRequest`), and Raft's AppendEntries / Vote / InstallSnapshot, whose entries are then
//! applied to a fresh state store as a follower would. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proconsul_fuzz::runtime;
use proconsul_raft::RpcKind;
use proconsul_rpc::frame::{read_frame, FrameKind, MAX_FRAME};
use proconsul_server::remote::{method, Call, Hello};

fuzz_target!(|data: &[u8]| {
    let frames = runtime().block_on(async {
        let mut r = data;
        let mut frames = Vec::new();
        while let Ok(Some(f)) = read_frame(&mut r, MAX_FRAME).await {
            frames.push(f);
        }
        frames
    });
    for f in frames {
        if f.kind != FrameKind::Request {
            continue; // the server closes the connection
        }
        match f.method {
            proconsul_rpc::HELLO => {
                let _ = rmp_serde::from_slice::<Hello>(&f.body);
            }
            method::CALL => {
                if let Ok(c) = rmp_serde::from_slice::<Call>(&f.body) {
                    let _ = c.req.datacenter();
                }
            }
            m => {
                if let Some(kind) = RpcKind::from_u8(m) {
                    if let Ok(entries) = proconsul_raft::fuzzing::decode_rpc_request(kind, &f.body)
                    {
                        let store = proconsul_state::Store::new();
                        for (i, p) in entries.iter().enumerate() {
                            let _ = store.apply(i as u64 + 1, p);
                        }
                    }
                }
            }
        }
    }
});
