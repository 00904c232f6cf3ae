//! Raw bytes on an HTTP connection (`proconsul_http`'s own HTTP/1.1 loop, `h1.rs`) in front of
//! the whole `/v1/*` router over an in-memory agent: request lines, headers, `Content-Length`
//! and chunked framing, `Expect: 100-continue`, pipelined requests, a stream that ends
//! anywhere. Never a panic; the connection always ends once the client's side has ended, and
//! what it wrote is a sequence of HTTP/1.1 answers.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use proconsul_fuzz::{http_router, runtime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

fuzz_target!(|data: &[u8]| {
    let router = http_router().clone();
    let input = data.to_vec();
    runtime().block_on(async move {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let conn = tokio::spawn(proconsul_http::serve_stream(
            server,
            router,
            CancellationToken::new(),
        ));
        // Write everything, then end the client's side; read all the server says meanwhile
        // (a pipe with room for 64 KiB could otherwise stall both ends).
        let (mut rd, mut wr) = tokio::io::split(&mut client);
        let write = async {
            let _ = wr.write_all(&input).await;
            let _ = wr.shutdown().await;
        };
        let mut out = Vec::new();
        let read = rd.read_to_end(&mut out);
        // Paused clock: a blocking query's wait (10 minutes at most) passes at once.
        let (_, read) = tokio::time::timeout(Duration::from_secs(86_400), async {
            tokio::join!(write, read)
        })
        .await
        .expect("the connection ended");
        let _ = read;
        conn.await.expect("the connection task did not panic");
        assert!(
            out.is_empty() || out.starts_with(b"HTTP/1.1 "),
            "not an HTTP answer: {:?}",
            String::from_utf8_lossy(&out[..out.len().min(200)])
        );
    });
});
