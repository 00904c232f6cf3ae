//! `proconsul tls ca create` / `tls cert create` and the CLI over HTTPS, as an operator runs
//! them: files with Consul's names and modes, Consul's refusals, certificates read back by an
//! independent parser (openssl) and checked by rustls for the names they must (and must not)
//! serve, then an agent whose HTTPS port requires client certificates, reached with curl and
//! with the CLI's `-ca-file`/`-client-cert`/`-client-key`/`-tls-server-name` and `CONSUL_*`
//! variables.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use common::{free_port, start_dev, stderr, stdout, Proc, BIN};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// Run `proconsul args…` in `dir` with no CONSUL_* variables of the caller's.
fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("CONSUL_") {
            c.env_remove(k);
        }
    }
    c.envs(env.iter().copied());
    c.output().unwrap()
}

/// Run a command that must succeed; its stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let o = run_in(dir, args, &[]);
    assert!(o.status.success(), "{args:?}: {}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

/// Run a command that must fail with exit 1; its stderr.
fn fails(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let o = run_in(dir, args, env);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{args:?}: {}{}",
        stdout(&o),
        stderr(&o)
    );
    stderr(&o)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// `openssl x509 -text` of a certificate file.
fn openssl_text(p: &Path) -> String {
    let o = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(p)
        .output()
        .expect("openssl (scripts/test installs it)");
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

/// Does the certificate in `cert` chain to the CA in `ca` and hold `name`, as a TLS server?
fn verifies(ca: &Path, cert: &Path, name: &str) -> Result<(), rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let v = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .unwrap();
    let leaf = CertificateDer::from_pem_file(cert).unwrap();
    use rustls::client::danger::ServerCertVerifier;
    v.verify_server_cert(
        &leaf,
        &[],
        &ServerName::try_from(name.to_string()).unwrap(),
        &[],
        UnixTime::now(),
    )
    .map(|_| ())
}

#[test]
fn ca_and_certificates_with_consuls_names_modes_and_refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    assert_eq!(
        ok(d, &["tls", "ca", "create"]),
        "==> Saved consul-agent-ca.pem\n==> Saved consul-agent-ca-key.pem\n"
    );
    assert_eq!(mode(&d.join("consul-agent-ca-key.pem")), 0o600);
    assert_eq!(mode(&d.join("consul-agent-ca.pem")) & 0o600, 0o600);
    let ca_before = std::fs::read(d.join("consul-agent-ca.pem")).unwrap();
    assert_eq!(
        fails(d, &["tls", "ca", "create"], &[]),
        "consul-agent-ca.pem already exists.\n"
    );
    assert_eq!(
        std::fs::read(d.join("consul-agent-ca.pem")).unwrap(),
        ca_before
    );

    let out = ok(d, &["tls", "cert", "create", "-server"]);
    assert!(
        out.starts_with("==> WARNING: Server Certificates grants authority to become a\n"),
        "{out}"
    );
    assert!(out.ends_with(
        "==> Using consul-agent-ca.pem and consul-agent-ca-key.pem\n\
         ==> Saved dc1-server-consul-0.pem\n\
         ==> Saved dc1-server-consul-0-key.pem\n"
    ));
    // The next free index, never an overwrite.
    assert!(ok(d, &["tls", "cert", "create", "-server"]).contains("dc1-server-consul-1.pem"));
    assert_eq!(
        ok(d, &["tls", "cert", "create", "-client"]),
        "==> Using consul-agent-ca.pem and consul-agent-ca-key.pem\n\
         ==> Saved dc1-client-consul-0.pem\n\
         ==> Saved dc1-client-consul-0-key.pem\n"
    );
    ok(d, &["tls", "cert", "create", "-cli", "-dc=dc2"]);
    for f in [
        "dc1-server-consul-0-key.pem",
        "dc1-server-consul-1-key.pem",
        "dc1-client-consul-0-key.pem",
        "dc2-cli-consul-0-key.pem",
    ] {
        assert_eq!(mode(&d.join(f)), 0o600, "{f}");
    }

    assert_eq!(
        fails(d, &["tls", "cert", "create"], &[]),
        "Please provide either -server, -client, or -cli\n"
    );
    assert_eq!(
        fails(d, &["tls", "cert", "create", "-server", "-cli"], &[]),
        "Please provide either -server, -client, or -cli\n"
    );
    assert_eq!(
        fails(d, &["tls", "cert", "create", "-client", "-node=n1"], &[]),
        "-node requires -server\n"
    );
    assert_eq!(
        fails(d, &["tls", "cert", "create", "-server", "-ca="], &[]),
        "Please provide the ca\n"
    );
    assert_eq!(
        fails(
            d,
            &["tls", "cert", "create", "-client", "-domain=nomad"],
            &[]
        ),
        "Error reading CA: open nomad-agent-ca.pem: no such file or directory\n"
    );
    // A key that is not the CA's.
    let other = tempfile::tempdir().unwrap();
    ok(other.path(), &["tls", "ca", "create"]);
    let foreign_key = other.path().join("consul-agent-ca-key.pem");
    let e = fails(
        d,
        &[
            "tls",
            "cert",
            "create",
            "-client",
            &format!("-key={}", foreign_key.display()),
        ],
        &[],
    );
    assert!(e.contains("doesn't match parent's PublicKey"), "{e}");
    assert!(!d.join("dc1-client-consul-1.pem").exists());
}

#[test]
fn certificates_hold_consuls_names_and_usages() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["tls", "ca", "create", "-days=30"]);
    ok(
        d,
        &[
            "tls",
            "cert",
            "create",
            "-server",
            "-node=n1",
            "-additional-dnsname=consul.example",
            "-additional-ipaddress=10.1.2.3",
            "-days=10",
        ],
    );
    ok(d, &["tls", "cert", "create", "-client"]);
    ok(d, &["tls", "cert", "create", "-cli"]);
    let ca = d.join("consul-agent-ca.pem");
    let server = d.join("dc1-server-consul-0.pem");
    let client = d.join("dc1-client-consul-0.pem");
    let cli = d.join("dc1-cli-consul-0.pem");

    let ca_text = openssl_text(&ca);
    assert!(ca_text.contains("CA:TRUE"), "{ca_text}");
    assert!(ca_text.contains("O = HashiCorp Inc., CN = Consul Agent CA "));
    assert!(ca_text.contains("Certificate Sign, CRL Sign"));
    let text = openssl_text(&server);
    assert!(text.contains("Subject: CN = server.dc1.consul"), "{text}");
    assert!(
        text.contains(
            "DNS:consul.example, DNS:n1.server.dc1.consul, DNS:server.dc1.consul, \
             DNS:localhost, IP Address:10.1.2.3, IP Address:127.0.0.1"
        ),
        "{text}"
    );
    assert!(text.contains("TLS Web Server Authentication, TLS Web Client Authentication"));
    assert!(text.contains("Digital Signature, Key Encipherment"));
    assert!(text.contains("CA:FALSE"));
    // Ten days: still valid in nine, expired in eleven (openssl's own clock arithmetic).
    let valid_for = |secs: u64| {
        Command::new("openssl")
            .args(["x509", "-noout", "-checkend", &secs.to_string(), "-in"])
            .arg(&server)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(valid_for(9 * 86_400));
    assert!(!valid_for(11 * 86_400));
    let text = openssl_text(&client);
    assert!(text.contains("DNS:client.dc1.consul, DNS:localhost, IP Address:127.0.0.1"));
    assert!(text.contains("TLS Web Client Authentication, TLS Web Server Authentication"));
    let text = openssl_text(&cli);
    assert!(
        text.contains("DNS:cli.dc1.consul, DNS:localhost\n"),
        "{text}"
    );
    assert!(!text.contains("Extended Key Usage"), "{text}");

    // The names each certificate serves, checked as a TLS client checks them.
    verifies(&ca, &server, "server.dc1.consul").unwrap();
    verifies(&ca, &server, "n1.server.dc1.consul").unwrap();
    verifies(&ca, &server, "127.0.0.1").unwrap();
    verifies(&ca, &client, "client.dc1.consul").unwrap();
    assert!(verifies(&ca, &client, "server.dc1.consul").is_err());
    assert!(verifies(&ca, &cli, "server.dc1.consul").is_err());
    // Another CA's certificate does not chain to this one.
    let other = tempfile::tempdir().unwrap();
    ok(other.path(), &["tls", "ca", "create"]);
    ok(other.path(), &["tls", "cert", "create", "-server"]);
    let foreign = other.path().join("dc1-server-consul-0.pem");
    assert!(verifies(&ca, &foreign, "server.dc1.consul").is_err());
}

#[test]
fn a_name_constrained_ca_refuses_names_outside_it() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(
        d,
        &[
            "tls",
            "ca",
            "create",
            "-name-constraint",
            "-domain=corp",
            "-additional-name-constraint=ui.example",
        ],
    );
    assert!(openssl_text(&d.join("corp-agent-ca.pem")).contains("Permitted:"));
    ok(
        d,
        &[
            "tls",
            "cert",
            "create",
            "-server",
            "-domain=corp",
            "-additional-dnsname=ui.example",
        ],
    );
    let e = fails(
        d,
        &[
            "tls",
            "cert",
            "create",
            "-server",
            "-domain=corp",
            "-additional-dnsname=elsewhere.example",
        ],
        &[],
    );
    assert!(e.contains("not authorized to sign for this name"), "{e}");
    assert!(!d.join("dc1-server-corp-1.pem").exists());
}

/// Certificates from `tls ca create` / `tls cert create` and an agent serving HTTPS with them,
/// requiring client certificates.
struct HttpsAgent {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    https: u16,
    _agent: Proc,
}

impl HttpsAgent {
    fn start() -> HttpsAgent {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        ok(&d, &["tls", "ca", "create"]);
        ok(&d, &["tls", "cert", "create", "-server"]);
        ok(&d, &["tls", "cert", "create", "-cli"]);
        let (http, https) = (free_port(), free_port());
        let file = |f: &str| d.join(f).display().to_string();
        let cfg = d.join("agent.json");
        std::fs::write(
            &cfg,
            serde_json::json!({
                "ports": {
                    "http": http, "https": https, "dns": -1, "grpc": -1,
                    "server": free_port(), "serf_lan": free_port(), "serf_wan": free_port(),
                },
                "tls": {
                    "defaults": {
                        "ca_file": file("consul-agent-ca.pem"),
                        "cert_file": file("dc1-server-consul-0.pem"),
                        "key_file": file("dc1-server-consul-0-key.pem"),
                    },
                    "https": {"verify_incoming": true},
                },
            })
            .to_string(),
        )
        .unwrap();
        let agent = start_dev(&cfg, http, &d.join("agent.log"));
        HttpsAgent {
            _dir: dir,
            dir: d,
            https,
            _agent: agent,
        }
    }

    fn file(&self, f: &str) -> String {
        self.dir.join(f).display().to_string()
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.https)
    }

    /// The CLI flags of a full mutual-TLS connection.
    fn tls_flags(&self) -> Vec<String> {
        vec![
            format!("-http-addr={}", self.url()),
            format!("-ca-file={}", self.file("consul-agent-ca.pem")),
            format!("-client-cert={}", self.file("dc1-cli-consul-0.pem")),
            format!("-client-key={}", self.file("dc1-cli-consul-0-key.pem")),
        ]
    }

    /// `args` (command words first) with `flags` put right after the command words.
    fn cli(&self, args: &[&str], flags: &[String], env: &[(&str, &str)]) -> Output {
        let words = command_words(args);
        let mut all: Vec<&str> = args[..words].to_vec();
        all.extend(flags.iter().map(String::as_str));
        all.extend_from_slice(&args[words..]);
        run_in(&self.dir, &all, env)
    }

    fn curl(&self, with_client_cert: bool) -> Output {
        let mut c = Command::new("curl");
        c.args(["-sS", "--max-time", "10", "--cacert"])
            .arg(self.file("consul-agent-ca.pem"));
        if with_client_cert {
            c.arg("--cert")
                .arg(self.file("dc1-cli-consul-0.pem"))
                .arg("--key")
                .arg(self.file("dc1-cli-consul-0-key.pem"));
        }
        c.arg(format!("{}/v1/status/leader", self.url()))
            .output()
            .expect("curl (scripts/test installs it)")
    }
}

/// How many leading words of `args` name the command (`kv put` → 2).
fn command_words(args: &[&str]) -> usize {
    match args.first() {
        Some(&"kv") => 2,
        _ => 1,
    }
}

#[test]
fn an_https_agent_with_client_certificates_through_curl_and_the_cli() {
    let a = HttpsAgent::start();

    // curl: the cli certificate opens the door, no certificate does not.
    let o = a.curl(true);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("\"127.0.0.1:"), "{}", stdout(&o));
    assert!(!a.curl(false).status.success());

    // The CLI with the flags.
    let full = a.tls_flags();
    let o = a.cli(&["members"], &full, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("n1 "), "{}", stdout(&o));
    let o = a.cli(&["kv", "put", "tls/key", "over-https"], &full, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = a.cli(&["kv", "get", "tls/key"], &full, &[]);
    assert_eq!(stdout(&o), "over-https\n", "{}", stderr(&o));

    // The same through the environment, scheme from CONSUL_HTTP_SSL.
    let env = [
        ("CONSUL_HTTP_ADDR", format!("localhost:{}", a.https)),
        ("CONSUL_HTTP_SSL", "true".into()),
        ("CONSUL_CACERT", a.file("consul-agent-ca.pem")),
        ("CONSUL_CLIENT_CERT", a.file("dc1-cli-consul-0.pem")),
        ("CONSUL_CLIENT_KEY", a.file("dc1-cli-consul-0-key.pem")),
    ];
    let env_ref = |extra: &[(&'static str, String)]| -> Vec<(String, String)> {
        env.iter()
            .chain(extra.iter())
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    };
    let with = |args: &[&str], extra: &[(&'static str, String)]| {
        let pairs = env_ref(extra);
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        run_in(&a.dir, args, &pairs)
    };
    let o = with(&["kv", "get", "tls/key"], &[]);
    assert_eq!(stdout(&o), "over-https\n", "{}", stderr(&o));
    // A directory of CAs instead of the file.
    let cas = a.dir.join("cas");
    std::fs::create_dir(&cas).unwrap();
    std::fs::copy(a.dir.join("consul-agent-ca.pem"), cas.join("ca.crt")).unwrap();
    let o = with(
        &["kv", "get", "tls/key"],
        &[
            ("CONSUL_CACERT", String::new()),
            ("CONSUL_CAPATH", cas.display().to_string()),
        ],
    );
    assert_eq!(stdout(&o), "over-https\n", "{}", stderr(&o));

    // The server name: the certificate's names pass, others fail before a request is sent.
    let o = with(
        &["kv", "get", "tls/key"],
        &[
            ("CONSUL_HTTP_ADDR", format!("127.0.0.1:{}", a.https)),
            ("CONSUL_TLS_SERVER_NAME", "server.dc1.consul".into()),
        ],
    );
    assert_eq!(stdout(&o), "over-https\n", "{}", stderr(&o));
    let mut named = full.clone();
    named.push("-tls-server-name=server.dc2.consul".into());
    let e = stderr(&a.cli(&["members"], &named, &[]));
    assert!(
        e.contains("tls: failed to verify certificate: x509: certificate is valid for")
            && e.contains("not server.dc2.consul"),
        "{e}"
    );

    // Without the CA: a certificate error, exit 1; with CONSUL_HTTP_SSL_VERIFY=false it works.
    let no_ca: Vec<String> = full
        .iter()
        .filter(|f| !f.starts_with("-ca-file"))
        .cloned()
        .collect();
    let o = a.cli(&["members"], &no_ca, &[]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.starts_with("Error retrieving members: Get \"https://127.0.0.1:")
            && e.ends_with(
                "tls: failed to verify certificate: x509: certificate signed by unknown \
                 authority\n"
            ),
        "{e}"
    );
    let o = a.cli(&["members"], &no_ca, &[("CONSUL_HTTP_SSL_VERIFY", "false")]);
    assert!(o.status.success(), "{}", stderr(&o));

    // Without a client certificate the agent refuses the connection.
    let no_cert: Vec<String> = full
        .iter()
        .filter(|f| !f.starts_with("-client-"))
        .cloned()
        .collect();
    let o = a.cli(&["members"], &no_cert, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("remote error: tls: certificate required"),
        "{}",
        stderr(&o)
    );

    // A CA file that holds no certificate: Consul's error, exit 1, nothing sent.
    let mut bad_ca = no_ca.clone();
    bad_ca.push(format!("-ca-file={}", a.file("agent.json")));
    let o = a.cli(&["members"], &bad_ca, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "Error connecting to Consul agent: Error loading CA File: Couldn't parse PEM in: {}\n",
            a.file("agent.json")
        )
    );
}
