//! TLS on the server RPC port (`tls.internal_rpc`): with `verify_incoming` a plaintext caller
//! is refused before any request is read and a TLS caller needs a certificate of the CA; with
//! `verify_server_hostname` only a caller whose certificate names `server.<dc>.<domain>` may
//! make server-only calls (Raft, forwarded requests), and a dialer refuses a "server" whose
//! certificate does not name one — a client agent's certificate cannot make a server. Callers
//! are built with the agent's own TLS code (`rpc_tls_settings`).

use std::path::PathBuf;

use proconsul_config::RpcTls;
use proconsul_raft::{RaftTransport, RpcKind};
use proconsul_rpc::SharedTls;
use proconsul_server::remote::SharedPool;
use proconsul_testkit::{dev_flags, TestAgent};
use proconsul_types::{KvWriteVerb, ServerCall, Write, WriteRequest};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/in_process/fixtures"
    ))
    .join(name)
}

/// Settings with `cert` (`rpc-<cert>.pem`/`.key`, or none) and the test CA.
fn settings(cert: Option<&str>, verify_incoming: bool, verify_hostname: bool) -> RpcTls {
    RpcTls {
        cert_file: cert.map(|c| fixture(&format!("rpc-{c}.pem"))),
        key_file: cert.map(|c| fixture(&format!("rpc-{c}.key"))),
        ca_file: Some(fixture("rpc-ca.pem")),
        ca_path: None,
        verify_incoming,
        verify_outgoing: true,
        verify_server_hostname: verify_hostname,
        tls13_only: false,
        cipher_suites: Vec::new(),
        server_name: "server.dc1.consul".into(),
        domain: "consul".into(),
    }
}

/// A pool dialing as an agent with `t` would (a client agent: it serves nothing).
fn pool(t: &RpcTls) -> SharedPool {
    let s = proconsul_agent::rpc_tls_settings(t, false).expect("settings load");
    SharedPool::with_tls("dc1", SharedTls::new(s))
}

async fn server_with(t: RpcTls) -> TestAgent {
    TestAgent::start_with(dev_flags(), move |c| c.rpc_tls = Some(t)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_incoming_and_server_hostname_on_the_rpc_port() {
    let a = server_with(settings(Some("server"), true, true)).await;
    let addr = a.agent.server().unwrap().rpc_addr().to_string();

    // Plaintext: refused with Consul's reason, not retried.
    let plain = SharedPool::new("dc1");
    let e = plain.status(&addr).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "Non-TLS connection attempted with VerifyIncoming set"
    );
    assert!(!e.is_retryable());

    // A client agent's certificate: ordinary calls are served...
    let client = pool(&settings(Some("client"), false, true));
    let status = client.status(&addr).await.expect("status over TLS");
    assert_eq!(status.leader, addr);
    // ...server-only ones are not: Raft, and a call marked as forwarded by a server.
    let e = RaftTransport::call(&client, 1, &addr, RpcKind::Vote, vec![0x80])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("AuthorizeServerConn"), "{e}");
    let put = WriteRequest::Kv {
        verb: KvWriteVerb::Set,
        key: "forged".into(),
        value: Some(b"x".to_vec()),
        flags: 0,
        index: 0,
        session: None,
    };
    let write = Write {
        req: put,
        datacenter: "dc1".into(),
    };
    let e = client
        .request(&addr, write.clone().into_request(), "", true)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("AuthorizeServerConn"), "{e}");
    assert_eq!(a.get("/v1/kv/forged").await.status, 404, "nothing written");
    // Not forwarded, the same write is served.
    let r = client
        .request(&addr, write.into_request(), "", false)
        .await
        .unwrap();
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(a.get("/v1/kv/forged").await.status, 200);

    // A server's certificate: Raft is reached (this malformed body is Raft's own error).
    let peer = pool(&settings(Some("server"), false, true));
    let e = RaftTransport::call(&peer, 1, &addr, RpcKind::AppendEntries, vec![0xc1])
        .await
        .unwrap_err();
    assert!(!e.to_string().contains("AuthorizeServerConn"), "{e}");

    // No certificate at all: the handshake is refused.
    let anonymous = pool(&settings(None, false, true));
    assert!(anonymous.status(&addr).await.is_err());
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialers_check_the_servers_certificate() {
    // A would-be server holding a client agent's certificate (signed by the right CA).
    let fake = server_with(settings(Some("client"), false, false)).await;
    let fake_addr = fake.agent.server().unwrap().rpc_addr().to_string();
    // verify_server_hostname: refused, it does not name server.dc1.consul.
    let strict = pool(&settings(Some("client"), false, true));
    let e = strict.status(&fake_addr).await.unwrap_err();
    assert!(
        e.to_string().contains("TLS handshake") && e.to_string().contains("name"),
        "{e}"
    );
    assert!(!e.is_retryable());
    // verify_outgoing alone checks only the chain (Consul's behaviour), so it is accepted.
    let chain_only = pool(&settings(Some("client"), false, false));
    assert!(chain_only.status(&fake_addr).await.is_ok());
    fake.stop().await;

    // A server certificate from a CA nobody trusts: refused even without hostname checks.
    let rogue = server_with(settings(Some("rogue-server"), false, false)).await;
    let rogue_addr = rogue.agent.server().unwrap().rpc_addr().to_string();
    let e = chain_only.status(&rogue_addr).await.unwrap_err();
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    // Without verify_incoming, plaintext callers are still served.
    assert!(SharedPool::new("dc1").status(&rogue_addr).await.is_ok());
    rogue.stop().await;
}

async fn outcome(a: &TestAgent, id: &str) -> (String, String) {
    let c = &a.get_json("/v1/agent/checks").await[id];
    (
        c["Status"].as_str().unwrap_or("").to_string(),
        c["Output"].as_str().unwrap_or("").to_string(),
    )
}

/// `enable_agent_tls_for_checks`: an HTTPS check (and a TCP check with `tcp_use_tls`) trusts
/// the agent's CA and presents its certificate, so it passes against an endpoint that demands
/// a client certificate of that CA; without the setting the same check fails (unknown CA, no
/// certificate to offer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_use_the_agents_certificate_when_asked() {
    use crate::support::{Kind, Server};
    use proconsul_testkit::wait_until;
    use std::time::Duration;

    let web = Server::start(Kind::HttpsMutual).await;
    let url = format!("https://127.0.0.1:{}/health", web.addr.port());
    let body = serde_json::json!({"Name": "mtls", "HTTP": url, "Interval": "1s"}).to_string();
    let tcp = web.addr.to_string();
    let tcp_body =
        serde_json::json!({"Name": "tcp-mtls", "TCP": tcp, "TCPUseTLS": true, "Interval": "1s"})
            .to_string();
    for (enabled, want) in [(true, "passing"), (false, "critical")] {
        let a = TestAgent::start_with(dev_flags(), move |c| {
            c.rpc_tls = Some(settings(Some("client"), false, false));
            c.enable_agent_tls_for_checks = enabled;
        })
        .await;
        for b in [&body, &tcp_body] {
            let r = a.put("/v1/agent/check/register", b.as_bytes()).await;
            assert_eq!(r.status, 200, "{}", r.text());
        }
        for id in ["mtls", "tcp-mtls"] {
            wait_until(Duration::from_secs(15), &format!("{id} {want}"), || async {
                let (s, o) = outcome(&a, id).await;
                s == want && !o.is_empty()
            })
            .await;
        }
        let (_, out) = outcome(&a, "mtls").await;
        let (_, tcp_out) = outcome(&a, "tcp-mtls").await;
        if enabled {
            assert_eq!(out, format!("HTTP GET {url}: 200 OK Output: ok"));
            assert_eq!(tcp_out, format!("TCP+TLS connect {tcp}: Success"));
        } else {
            assert!(out.contains("unknown authority"), "{out}");
            assert!(tcp_out.contains("unknown authority"), "{tcp_out}");
        }
        a.stop().await;
    }
}
