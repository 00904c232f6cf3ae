//! DNS messages through the real handler (`proconsul_dns::Handler`) over a fixed in-memory
//! catalog, as UDP and as TCP, by a handler that builds every answer afresh (a client agent)
//! and by one that caches them (a server agent: the second identical query is served from the
//! pre-encoded answer with its ID patched in). Never a panic, and every answer is a DNS
//! response that decodes and carries the query's ID.
#![no_main]

use std::sync::{Arc, OnceLock};

use hickory_proto::op::{Message, MessageType};
use libfuzzer_sys::fuzz_target;
use proconsul_dns::{DnsServerConfig, Handler, Transport};
use proconsul_fuzz::{runtime, FakeDns};

fn handlers() -> &'static [Handler<FakeDns>; 2] {
    static H: OnceLock<[Handler<FakeDns>; 2]> = OnceLock::new();
    H.get_or_init(|| {
        let cfg = DnsServerConfig {
            alt_domain: Some("alt.test.".into()),
            a_record_limit: 2,
            udp_answer_limit: 2,
            ..Default::default()
        };
        let with = |generation| {
            let mut backend = FakeDns::default();
            backend.generation = generation;
            Handler::new(cfg.clone(), Arc::new(backend)).expect("valid domains")
        };
        [with(None), with(Some(1))]
    })
}

fn check(query: &[u8], reply: &[u8]) {
    let m = Message::from_vec(reply).expect("the handler's answer decodes");
    assert_eq!(
        &reply[..2],
        &query[..2],
        "the answer carries the query's ID"
    );
    assert_eq!(m.metadata.message_type, MessageType::Response);
}

fuzz_target!(|data: &[u8]| {
    let [fresh, cached] = handlers();
    runtime().block_on(async {
        for t in [Transport::Udp, Transport::Tcp] {
            if let Some(reply) = fresh.handle(data, t).await {
                check(data, &reply);
            }
            for _ in 0..2 {
                if let Some(reply) = cached.handle(data, t).await {
                    check(data, &reply);
                }
            }
        }
    });
});
