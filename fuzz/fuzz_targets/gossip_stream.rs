//! Gossip TCP streams (push/pull state exchanges and stream pings) as the driver reads them:
//! the first byte picks the wire settings (see `gossip_packet`), then the connection's label
//! header, then messages one after another, each push/pull merged into a fresh Serf member.
//! Never a panic, and every message consumes at least one byte.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use proconsul_fuzz::gossip::{serf, wire_config};
use proconsul_gossip::serf::SerfInput;
use proconsul_gossip::wire::framing;
use proconsul_gossip::wire::messages::Message;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, stream)) = data.split_first() else {
        return;
    };
    let wire = wire_config(mode);
    let Some(n) = framing::label_header_len(stream) else {
        return;
    };
    if n > stream.len() || wire.accept_stream(&stream[..n]).is_err() {
        return;
    }
    let mut rest = &stream[n..];
    let now = Instant::now();
    let mut member = serf(now);
    let mut k = 0u64;
    while !rest.is_empty() {
        let Ok((m, used)) = wire.decode_stream(rest) else {
            break;
        };
        assert!(
            used > 0 && used <= rest.len(),
            "a message consumed {used} bytes"
        );
        rest = &rest[used..];
        for m in m.flatten() {
            if let Message::PushPull(pp) = m {
                let _ = member.handle(SerfInput::PushPull(pp, now), &mut || {
                    k += 1;
                    k
                });
            }
        }
    }
});
