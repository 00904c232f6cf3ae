//! Writes the seed corpora under `fuzz/seeds/<target>/` (committed; run again after a format
//! changes): `cargo run --release --manifest-path fuzz/Cargo.toml --example seeds`.
//!
//! Gossip seeds are HashiCorp serf's own bytes (`../shared/golden/serf/`); everything else is
//! made by proconsul's real encoders (log entries, snapshots, archives, RPC frames, DNS
//! queries) or copied from the tests' fixtures. Each seed file is named by its content's hash.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use proconsul_fuzz::gossip::wire_config;
use proconsul_gossip::wire::framing;
use proconsul_rpc::frame::{write_frame, Frame, FrameKind};
use proconsul_server::remote::{method, Call, Hello};
use proconsul_state::{Command, KvOp, KvVerb, Proposal, Store};
use proconsul_types::json::from_slice_ci;
use proconsul_types::{
    RegisterRequest, ServerCall, SessionEntry, StatusLeader, TxnKvOp, Write, WriteRequest,
};
use serde::Serialize;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn put(target: &str, bytes: &[u8]) {
    let dir = root().join("seeds").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    std::fs::write(dir.join(format!("{:016x}", h.finish())), bytes).unwrap();
}

fn with_mode(mode: u8, bytes: &[u8]) -> Vec<u8> {
    let mut v = vec![mode];
    v.extend_from_slice(bytes);
    v
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// `hex` fields of a golden JSON-lines file, with the line's `proto` (if any).
fn golden(file: &str) -> Vec<(String, Vec<u8>)> {
    let path = root().join("../../shared/golden/serf").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let proto = v["proto"].as_str().unwrap_or("tcp").to_string();
            (proto, hex(v["hex"].as_str().unwrap()))
        })
        .collect()
}

fn gossip() {
    for (file, mode) in [("plain", 0u8), ("encrypted", 1)] {
        for (proto, bytes) in golden(&format!("{file}.udp-tcp-packets.jsonl")) {
            if proto == "udp" && wire_config(mode).decode_packet(&bytes).is_ok() {
                put("gossip_packet", &with_mode(mode, &bytes));
            }
        }
        for (_, bytes) in golden(&format!("{file}.tcp-streams.jsonl")) {
            put("gossip_stream", &with_mode(mode, &bytes));
        }
    }
    // Labelled: a few plain packets and a stream behind the `dc1` label header (mode 2).
    for (proto, bytes) in golden("plain.udp-tcp-packets.jsonl").into_iter().take(8) {
        if proto == "udp" {
            put(
                "gossip_packet",
                &with_mode(2, &framing::add_label(b"dc1", &bytes).unwrap()),
            );
        }
    }
    if let Some((_, s)) = golden("plain.tcp-streams.jsonl").into_iter().next() {
        put(
            "gossip_stream",
            &with_mode(2, &framing::add_label(b"dc1", &s).unwrap()),
        );
    }
}

fn proposals() -> Vec<Proposal> {
    let reg: RegisterRequest = from_slice_ci(
        br#"{"Node":"n1","Address":"10.0.0.1","NodeMeta":{"rack":"r1"},
             "Service":{"ID":"web1","Service":"web","Tags":["v1"],"Port":8080},
             "Checks":[{"CheckID":"web-alive","Name":"web","Status":"passing","ServiceID":"web1"}]}"#,
    )
    .unwrap();
    let txn: Vec<TxnKvOp> = vec![
        from_slice_ci(br#"{"Verb":"set","Key":"t/a","Value":"aGk="}"#).unwrap(),
        from_slice_ci(br#"{"Verb":"cas","Key":"t/b","Value":"eA==","Index":0}"#).unwrap(),
        from_slice_ci(br#"{"Verb":"get","Key":"t/a"}"#).unwrap(),
    ];
    let session = SessionEntry {
        id: "11111111-2222-3333-4444-555555555555".into(),
        name: "lock".into(),
        node: "n1".into(),
        ..Default::default()
    };
    let kv = |verb, key: &str, value: Option<&[u8]>| {
        Command::Kv(KvOp {
            verb,
            key: key.into(),
            value: value.map(|v| v.to_vec()),
            session: (verb == KvVerb::Lock).then(|| session.id.clone()),
            ..Default::default()
        })
    };
    [
        Command::register(reg),
        kv(KvVerb::Set, "app/config", Some(b"v1")),
        kv(KvVerb::Cas, "app/x", Some(b"1")),
        kv(KvVerb::DeleteTree, "app/", None),
        Command::txn(txn),
        Command::session_create(session.clone()),
        kv(KvVerb::Lock, "app/leader", Some(b"me")),
        Command::SessionDestroy { id: session.id },
        Command::TombstoneReap { up_to_index: 3 },
    ]
    .into_iter()
    .enumerate()
    .map(|(i, c)| Proposal::new(1_700_000_000_000 + i as u64, c))
    .collect()
}

/// A version 1 entry (before the typed log): API structs inside, no `v`.
fn legacy_v1() -> Vec<Vec<u8>> {
    #[derive(Serialize)]
    struct V1<C> {
        at_ms: u64,
        command: C,
    }
    let reg: RegisterRequest = from_slice_ci(
        br#"{"Node":"n2","Address":"10.0.0.2","Service":{"Service":"db","Port":5432}}"#,
    )
    .unwrap();
    let mut out = vec![rmp_serde::to_vec_named(&V1 {
        at_ms: 1,
        command: serde_json::json!({ "register": reg }),
    })
    .unwrap()];
    out.push(
        rmp_serde::to_vec_named(&V1 {
            at_ms: 2,
            command: serde_json::json!({ "tombstone_reap": { "up_to_index": 7 } }),
        })
        .unwrap(),
    );
    out
}

fn state() -> Vec<u8> {
    let store = Store::new();
    for (i, p) in proposals().iter().enumerate() {
        store.apply(i as u64 + 1, p);
    }
    store.dump()
}

fn raft_and_state() {
    let ps = proposals();
    for p in &ps {
        put("raft_log_entry", &p.encode());
    }
    for b in legacy_v1() {
        put("raft_log_entry", &b);
    }
    for (i, p) in ps.iter().take(3).enumerate() {
        put(
            "raft_log_entry",
            &proconsul_raft::fuzzing::encode_log_entry(i as u64 + 1, p.clone()),
        );
    }
    let st = state();
    put("state_snapshot", &st);
    put("state_snapshot", &Store::new().dump());
    let dir = std::env::temp_dir().join(format!("proconsul-seeds-{}", std::process::id()));
    put(
        "state_snapshot",
        &proconsul_raft::fuzzing::write_snapshot_file(&dir, &st).unwrap(),
    );
    let _ = std::fs::remove_dir_all(&dir);

    let archive = proconsul_archive::write(9, 2, &st, 1_700_000_000_000);
    put("snapshot_archive", &with_mode(0, &archive));
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&archive[..])
        .read_to_end(&mut tar)
        .unwrap();
    // The tar without its trailing zero blocks, gzip'd by the target (mode 1).
    let end = tar.len() - tar.iter().rev().take_while(|b| **b == 0).count();
    put(
        "snapshot_archive",
        &with_mode(1, &tar[..end.div_ceil(512) * 512]),
    );
}

fn rpc() {
    let frame = |id, method, body: Vec<u8>| {
        let mut out = Vec::new();
        let f = Frame {
            kind: FrameKind::Request,
            id,
            method,
            body,
        };
        futures_lite_block_on(write_frame(&mut out, &f)).unwrap();
        out
    };
    let hello = rmp_serde::to_vec_named(&Hello {
        datacenter: "dc1".into(),
    })
    .unwrap();
    let call = |req, forwarded| {
        rmp_serde::to_vec_named(&Call {
            req,
            forwarded,
            token: "root".into(),
        })
        .unwrap()
    };
    let leader = StatusLeader::default().into_request();
    let kv = Write {
        req: WriteRequest::Kv {
            verb: proconsul_types::KvWriteVerb::Set,
            key: "a".into(),
            value: Some(b"b".to_vec()),
            flags: 0,
            index: 0,
            session: None,
        },
        datacenter: String::new(),
    }
    .into_request();
    let mut conn = frame(1, proconsul_rpc::HELLO, hello.clone());
    conn.extend(frame(2, method::CALL, call(leader, false)));
    conn.extend(frame(3, method::CALL, call(kv, true)));
    put("rpc_frame", &conn);
    let mut raft = frame(1, proconsul_rpc::HELLO, hello);
    raft.extend(frame(
        2,
        0,
        proconsul_raft::fuzzing::encode_append_entries(proposals()),
    ));
    put("rpc_frame", &raft);
}

/// The RPC frame writer is async over an in-memory Vec: it never waits.
fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn dns() {
    let q = |name: &str, t: RecordType, edns: bool| {
        let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        if edns {
            let mut e = Edns::new();
            e.set_max_payload(4096);
            m.set_edns(e);
        }
        put("dns_message", &m.to_vec().unwrap());
    };
    q("web.service.consul.", RecordType::A, false);
    q("web.service.consul.", RecordType::AAAA, true);
    q("_web._tcp.service.consul.", RecordType::SRV, true);
    q("v1.web.service.dc1.consul.", RecordType::SRV, false);
    q("primary.web.service.alt.test.", RecordType::A, false);
    q("api.service.consul.", RecordType::A, false);
    q("n1.node.consul.", RecordType::A, false);
    q("n2.node.dc1.consul.", RecordType::AAAA, false);
    q("n1.node.consul.", RecordType::TXT, false);
    q("n1.node.consul.", RecordType::ANY, true);
    q("0a000001.addr.dc1.consul.", RecordType::A, false);
    q("1.0.0.10.in-addr.arpa.", RecordType::PTR, false);
    q("consul.", RecordType::NS, false);
    q("consul.", RecordType::SOA, false);
    q("web.service.dc9.consul.", RecordType::A, false);
    q("web.service.down.consul.", RecordType::A, false);
    q("web.query.consul.", RecordType::A, false);
    q("example.com.", RecordType::A, false);
}

fn http() {
    let reqs: &[&str] = &[
        "GET /v1/status/leader\n",
        "GET /v1/catalog/nodes?dc=dc1&near=_agent&node-meta=rack:r1&filter=Node%20%3D%3D%20%22n1%22\n",
        "GET /v1/catalog/service/web?tag=v1&index=5&wait=30s&stale\n",
        "GET /v1/health/service/web?passing&near=n1&filter=Service.Tags%20contains%20%22v1%22&cached&consistent\n",
        "GET /v1/health/state/critical?index=7&wait=1m\n",
        "GET /v1/kv/app/?recurse&separator=/&keys&index=3\n",
        "PUT /v1/kv/app/config?cas=0&flags=42&acquire=11111111-2222-3333-4444-555555555555\nvalue",
        "DELETE /v1/kv/app?recurse&cas=3\n",
        "PUT /v1/txn\n[{\"KV\":{\"Verb\":\"set\",\"Key\":\"a\",\"Value\":\"aGk=\"}},{\"KV\":{\"Verb\":\"get\",\"Key\":\"a\"}}]",
        "PUT /v1/catalog/register\n{\"Node\":\"n1\",\"Address\":\"10.0.0.1\",\"Service\":{\"Service\":\"web\",\"Port\":80},\"Check\":{\"Name\":\"c\",\"Status\":\"passing\"}}",
        "PUT /v1/catalog/deregister\n{\"Node\":\"n1\",\"ServiceID\":\"web\"}",
        "PUT /v1/agent/service/register?replace-existing-checks\n{\"Name\":\"web\",\"Port\":80,\"Tags\":[\"a\"],\"Check\":{\"HTTP\":\"http://x/\",\"Interval\":\"10s\"},\"Weights\":{\"Passing\":3}}",
        "PUT /v1/agent/check/register\n{\"Name\":\"ttl\",\"TTL\":\"15s\",\"DeregisterCriticalServiceAfter\":\"90m\"}",
        "PUT /v1/agent/check/pass/service:web1?note=ok\n",
        "PUT /v1/agent/check/update/service:web1\n{\"Status\":\"warning\",\"Output\":\"x\"}",
        "PUT /v1/agent/service/maintenance/web1?enable=true&reason=r\n",
        "GET /v1/agent/services?filter=Service%20%3D%3D%20web&index=1&wait=2s\n",
        "GET /v1/agent/metrics?format=prometheus\n",
        "PUT /v1/agent/token/default\n{\"Token\":\"abc\"}",
        "PUT /v1/session/create\n{\"Name\":\"s\",\"TTL\":\"30s\",\"LockDelay\":\"15s\",\"Behavior\":\"delete\",\"Checks\":[\"serfHealth\"]}",
        "PUT /v1/session/renew/11111111-2222-3333-4444-555555555555\n",
        "PUT /v1/event/fire/deploy?node=n1&service=web&tag=v1\nv42",
        "GET /v1/event/list?name=deploy&index=2\n",
        "PUT /v1/coordinate/update\n{\"Node\":\"n1\",\"Coord\":{\"Vec\":[0,0,0,0,0,0,0,0],\"Error\":1.5,\"Adjustment\":0,\"Height\":0.0001}}",
        "PUT /v1/query\n{\"Name\":\"q\",\"Service\":{\"Service\":\"web\",\"Failover\":{\"NearestN\":2}},\"DNS\":{\"TTL\":\"10s\"}}",
        "GET /v1/query/q/execute?near=_agent&limit=2\n",
        "PUT /v1/acl/policy\n{\"Name\":\"p\",\"Rules\":\"key_prefix \\\"\\\" { policy = \\\"read\\\" }\"}",
        "PUT /v1/acl/token\n{\"Description\":\"t\",\"Policies\":[{\"Name\":\"p\"}],\"ExpirationTTL\":\"1h\"}",
        "PUT /v1/acl/role\n{\"Name\":\"r\",\"ServiceIdentities\":[{\"ServiceName\":\"web\"}]}",
        "PUT /v1/acl/auth-method\n{\"Name\":\"m\",\"Type\":\"jwt\",\"Config\":{\"JWTValidationPubKeys\":[]}}",
        "PUT /v1/acl/binding-rule\n{\"AuthMethod\":\"m\",\"BindType\":\"service\",\"BindName\":\"${value.name}\",\"Selector\":\"value.name==web\"}",
        "POST /v1/acl/login\n{\"AuthMethod\":\"m\",\"BearerToken\":\"x.y.z\"}",
        "PUT /v1/operator/autopilot/configuration?cas=4\n{\"CleanupDeadServers\":true,\"LastContactThreshold\":\"200ms\",\"MaxTrailingLogs\":250}",
        "POST /v1/operator/keyring\n{\"Key\":\"MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=\"}",
        "DELETE /v1/operator/raft/peer?address=10.0.0.2:8300\n",
        "GET /v1/snapshot?stale\n",
        "GET /v1/coordinate/nodes?segment=&index=4\n",
        "GET /v1/catalog/nodes?pretty&index=abc\nH:X-Consul-Token: root\nAccept-Encoding: gzip\n\n",
        "GET /v1/internal/ui/services?dc=dc1\n",
        "GET /ui/\n",
    ];
    for r in reqs {
        put("http_request", r.as_bytes());
    }
}

fn config() {
    let fixtures = root().join("../crates/config/tests/fixtures");
    put(
        "config_file",
        &with_mode(
            0,
            &std::fs::read(fixtures.join("consul-all-keys.json")).unwrap(),
        ),
    );
    put(
        "config_file",
        &with_mode(
            1,
            &std::fs::read(fixtures.join("consul-all-keys.hcl")).unwrap(),
        ),
    );
    put(
        "config_file",
        &with_mode(0, br#"{"datacenter":"dc2","ports":{"dns":-1},"services":[{"name":"web","port":80,"checks":[{"ttl":"10s"}]}],"acl":{"enabled":true,"tokens":{"default":"x"}}}"#),
    );
    put(
        "config_file",
        &with_mode(1, b"node_name = \"a\"\nretry_join = [\"10.0.0.1\"]\nlimits { http_max_conns_per_client = 100 }\ntelemetry { prometheus_retention_time = \"1m\" }\n"),
    );
}

fn older_targets() {
    for f in [
        "Service.Service == web and \"v1\" in Service.Tags",
        "Node.Meta.rack != r1 or Checks.Status matches \"^pass\"",
        "not (Port > 80) and ID is not empty",
        "Service.TaggedAddresses.lan.Port == 1",
    ] {
        put("filter_expression", f.as_bytes());
    }
    for j in [
        r#"{"Name":"web","Port":80,"Check":{"TTL":"10s"},"Meta":{"a":"b"}}"#,
        r#"{"node":"n1","address":"x","service":{"service":"s","weights":{"passing":1}}}"#,
        r#"[{"KV":{"Verb":"set","Key":"k","Value":null}},{"Node":{"Verb":"get","Node":{"Node":"n"}}}]"#,
    ] {
        put("request_json", j.as_bytes());
    }
    let hcl =
        std::fs::read(root().join("../crates/config/tests/fixtures/consul-all-keys.hcl")).unwrap();
    put("hcl_config", &hcl);
    put(
        "hcl_config",
        b"a = 1\nb \"x\" { c = [1, \"two\", true] d = <<EOT\nhere\nEOT\n}\n",
    );
    for r in [
        "key_prefix \"app/\" { policy = \"write\" }\nkey \"app/secret\" { policy = \"deny\" }\nservice_prefix \"\" { policy = \"read\" }",
        r#"{"node": {"n1": {"policy": "write"}}, "session_prefix": {"": {"policy": "read"}}, "operator": "read"}"#,
    ] {
        put("acl_rules", r.as_bytes());
    }
}

fn main() {
    let _ = std::fs::remove_dir_all(root().join("seeds"));
    gossip();
    raft_and_state();
    rpc();
    dns();
    http();
    config();
    older_targets();
}
