//! Gossip UDP packets through the wire pipeline and into a fresh Serf member, as the driver
//! does: the first byte picks the receiver's wire settings (plain; encrypted with a fixed
//! key; labelled; labelled and encrypted; encrypted with `verify_incoming` off), the rest is
//! the datagram (CRC, compression and compound wrappers are decoded inside). Never a panic;
//! every message decoded re-encodes to bytes that decode to the same message.
#![no_main]

use std::net::SocketAddr;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use proconsul_fuzz::gossip::{serf, wire_config};
use proconsul_gossip::serf::SerfInput;
use proconsul_gossip::wire::messages::Message;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, packet)) = data.split_first() else {
        return;
    };
    let wire = wire_config(mode);
    let Ok(msg) = wire.decode_packet(packet) else {
        return;
    };
    for m in msg.clone().flatten() {
        if matches!(m, Message::PushPull(_)) {
            continue; // stream-only, and refused in a packet by the decoder above
        }
        if let Ok(bytes) = m.encode_packet() {
            let back = Message::decode_packet(&bytes).expect("a re-encoded message decodes");
            assert_eq!(back.flatten(), vec![m], "re-encoding changed the message");
        }
    }
    let now = Instant::now();
    let from: SocketAddr = "10.0.0.9:8301".parse().unwrap();
    let mut n = 0u64;
    let _ = serf(now).handle(SerfInput::Packet { from, msg, now }, &mut || {
        n += 1;
        n
    });
});
