//! `tls ca create` and `tls cert create`: Consul's built-in helpers for a private CA and the
//! agent certificates it signs (`command/tls/...`, `tlsutil/generate.go`), so the tutorial's
//! `consul tls ...` lines work unchanged and their files load into Consul as well as into us.
//!
//! What Consul writes, we write: ECDSA P-256 keys as SEC 1 `EC PRIVATE KEY` PEM (mode 0600),
//! 128-bit random serials, the CA's subject with HashiCorp's address and `Consul Agent CA
//! <serial>`, 32-byte SHA-256 key identifiers, the same SANs, key usages and extended key
//! usages per kind, the same file names (`<domain>-agent-ca.pem`, `<dc>-server-<domain>-<n>.pem`)
//! and the same refusals and `==> Saved ...` lines. A new certificate is checked against its CA
//! for its own name before it is written, as Consul's `tlsutil.Verify` does.
//!
//! Signing uses rcgen (ring). rcgen signs for an issuer it is given as parameters, so the CA
//! certificate on disk is read back into them (subject and key identifier, `der.rs`); the new
//! certificate's issuer is then compared byte for byte with the CA's subject, so a CA whose
//! subject cannot be reproduced fails loudly instead of yielding a certificate nothing trusts.

mod der;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    NameConstraints, PublicKeyData, SanType, SerialNumber,
};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

use super::parse_flags;
use crate::flags::{self, Flag, Kind};
use crate::ui;

pub fn help() -> String {
    "Usage: proconsul tls <subcommand> <subcommand> [options]

  This command has subcommands for interacting with Consul TLS.

  Here are some simple examples, and more detailed examples are available
  in the subcommands or the documentation.

  Create a CA

    $ proconsul tls ca create

  Create a server certificate

    $ proconsul tls cert create -server

  Create a client certificate

    $ proconsul tls cert create -client

  For more examples, ask for subcommand help or view the documentation."
        .to_string()
}

pub fn ca_help() -> String {
    "Usage: proconsul tls ca <subcommand> [options]

  This command has subcommands for interacting with Certificate Authorities.

  Here are some simple examples, and more detailed examples are available
  in the subcommands or the documentation.

  Create a CA

    $ proconsul tls ca create
    ==> saved consul-agent-ca.pem
    ==> saved consul-agent-ca-key.pem

  For more examples, ask for subcommand help or view the documentation."
        .to_string()
}

pub fn cert_help() -> String {
    "Usage: proconsul tls cert <subcommand> [options]

  This command has subcommands for interacting with certificates

  Here are some simple examples, and more detailed examples are available
  in the subcommands or the documentation.

  Create a certificate

    $ proconsul tls cert create -server
    ==> saved dc1-server-consul.pem
    ==> saved dc1-server-consul-key.pem

  Create a certificate with your own CA:

    $ proconsul tls cert create -server -ca my-ca.pem -key my-ca-key.pem
    ==> saved dc1-server-consul.pem
    ==> saved dc1-server-consul-key.pem

  For more examples, ask for subcommand help or view the documentation."
        .to_string()
}

const CA_CREATE_FLAGS: &[Flag] = &[
    Flag::new(
        "additional-name-constraint",
        Kind::Str,
        "value",
        "Add name constraints for the CA. Results in rejecting certificates for other DNS than \
         specified. Can be used multiple times. Only used in combination with -name-constraint.",
    ),
    Flag::string(
        "cluster-id",
        "ID of the Consul cluster. Sets the CA's URI with the SPIFFEID composed of the cluster \
         ID and domain (specified by -domain or 'consul' by default).",
    ),
    Flag::string(
        "common-name",
        "Common Name of CA. Defaults to Consul Agent CA.",
    ),
    Flag::new(
        "days",
        Kind::Int,
        "int",
        "Number of days the CA is valid for. Defaults to 1825 days (approximately 5 years).",
    ),
    Flag::string(
        "domain",
        "The DNS domain of the Consul cluster that agents are configured with. Defaults to \
         consul. Only used when -name-constraint is set. Additional domains can be passed with \
         -additional-name-constraint.",
    ),
    Flag::boolean(
        "name-constraint",
        "Enables X.509 name constraints for the CA. If used, the CA only signs certificates for \
         localhost and the domains specified by -domain and -additional-name-constraint. If \
         Consul's UI is served over HTTPS in your deployment, add its DNS name with \
         -additional-constraint. Defaults to false.",
    ),
];

pub fn ca_create_help() -> String {
    flags::usage(
        "
Usage: proconsul tls ca create [options]

  Create a new consul CA:

  $ proconsul tls ca create
  ==> saved consul-agent-ca.pem
  ==> saved consul-agent-ca-key.pem
",
        CA_CREATE_FLAGS,
    )
}

const CERT_CREATE_FLAGS: &[Flag] = &[
    Flag::new(
        "additional-dnsname",
        Kind::Str,
        "value",
        "Provide an additional dnsname for Subject Alternative Names. localhost is always \
         included. This flag may be provided multiple times.",
    ),
    Flag::new(
        "additional-ipaddress",
        Kind::Str,
        "value",
        "Provide an additional ipaddress for Subject Alternative Names. 127.0.0.1 is always \
         included. This flag may be provided multiple times.",
    ),
    Flag::string(
        "ca",
        "Provide path to the ca. Defaults to #DOMAIN#-agent-ca.pem.",
    ),
    Flag::boolean("cli", "Generate cli certificate."),
    Flag::boolean("client", "Generate client certificate."),
    Flag::new(
        "days",
        Kind::Int,
        "int",
        "Provide number of days the certificate is valid for from now on. Defaults to 1 year.",
    ),
    Flag::string(
        "dc",
        "Provide the datacenter. Matters only for -server certificates. Defaults to dc1.",
    ),
    Flag::string(
        "domain",
        "Provide the domain. Matters only for -server certificates.",
    ),
    Flag::string(
        "key",
        "Provide path to the key. Defaults to #DOMAIN#-agent-ca-key.pem.",
    ),
    Flag::string(
        "node",
        "When generating a server cert and this is set an additional dns name is included of \
         the form <node>.server.<datacenter>.<domain>.",
    ),
    Flag::boolean("server", "Generate server certificate."),
];

pub fn cert_create_help() -> String {
    flags::usage(
        "
Usage: proconsul tls cert create [options]

  Create a new certificate

  $ proconsul tls cert create -server
  ==> WARNING: Server Certificates grants authority to become a
      server and access all state in the cluster including root keys
      and all ACL tokens. Do not distribute them to production hosts
      that are not server nodes. Store them as securely as CA keys.
  ==> Using consul-agent-ca.pem and consul-agent-ca-key.pem
  ==> Saved dc1-server-consul-0.pem
  ==> Saved dc1-server-consul-0-key.pem
  $ proconsul tls cert create -client
  ==> Using consul-agent-ca.pem and consul-agent-ca-key.pem
  ==> Saved dc1-client-consul-0.pem
  ==> Saved dc1-client-consul-0-key.pem
",
        CERT_CREATE_FLAGS,
    )
}

/// Consul's note before writing a server certificate (`Ui.Info`: stdout).
const SERVER_WARNING: &str = "==> WARNING: Server Certificates grants authority to become a
    server and access all state in the cluster including root keys
    and all ACL tokens. Do not distribute them to production hosts
    that are not server nodes. Store them as securely as CA keys.";

pub fn ca_create(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(CA_CREATE_FLAGS, args, ca_create_help)?;
    let domain = p.str("domain").unwrap_or("consul");
    let cert_file = format!("{domain}-agent-ca.pem");
    let key_file = format!("{domain}-agent-ca-key.pem");
    for f in [&cert_file, &key_file] {
        if exists(f) {
            return Err(ui::fail(format!("{f} already exists.")));
        }
    }
    let permitted = if p.bool("name-constraint") {
        let mut c = p.all("additional-name-constraint");
        c.extend([domain.to_string(), "localhost".to_string()]);
        c
    } else {
        Vec::new()
    };
    let ca = generate_ca(&CaOpts {
        common_name: p.str("common-name").filter(|n| !n.is_empty()),
        days: p.i64("days").unwrap_or(1825),
        domain,
        permitted,
        cluster_id: p.str("cluster-id").filter(|c| !c.is_empty()),
    })
    .map_err(ui::fail)?;
    write_atomic(&cert_file, ca.cert_pem.as_bytes(), 0o666).map_err(ui::fail)?;
    ui::out(&format!("==> Saved {cert_file}"));
    write_atomic(&key_file, ca.key_pem.as_bytes(), 0o600).map_err(ui::fail)?;
    ui::out(&format!("==> Saved {key_file}"));
    Ok(())
}

/// Which certificate `tls cert create` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CertKind {
    Server,
    Client,
    Cli,
}

pub fn cert_create(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(CERT_CREATE_FLAGS, args, cert_create_help)?;
    let ca = p.str("ca").unwrap_or("#DOMAIN#-agent-ca.pem");
    let key = p.str("key").unwrap_or("#DOMAIN#-agent-ca-key.pem");
    if ca.is_empty() {
        return Err(ui::fail("Please provide the ca"));
    }
    if key.is_empty() {
        return Err(ui::fail("Please provide the key"));
    }
    let kind = match (p.bool("server"), p.bool("client"), p.bool("cli")) {
        (true, false, false) => CertKind::Server,
        (false, true, false) => CertKind::Client,
        (false, false, true) => CertKind::Cli,
        _ => return Err(ui::fail("Please provide either -server, -client, or -cli")),
    };
    let node = p.str("node").unwrap_or("");
    if !node.is_empty() && kind != CertKind::Server {
        return Err(ui::fail("-node requires -server"));
    }
    let dc = p.str("dc").unwrap_or("dc1");
    let domain = p.str("domain").unwrap_or("consul");
    let extra_dns: Vec<String> = p
        .all("additional-dnsname")
        .iter()
        .filter(|d| !d.is_empty())
        .map(|d| d.trim().to_string())
        .collect();
    let mut extra_ips = Vec::new();
    for ip in p
        .all("additional-ipaddress")
        .iter()
        .filter(|i| !i.is_empty())
    {
        extra_ips.push(ip.trim().parse::<IpAddr>().map_err(|_| {
            ui::fail(format!(
                "invalid IP address {:?} in -additional-ipaddress",
                ip.trim()
            ))
        })?);
    }
    let leaf = LeafOpts::new(kind, dc, domain, node, extra_dns, extra_ips);

    let Some((cert_file, key_file)) = free_file_names(&leaf.file_prefix) else {
        return Err(ui::fail(
            "Could not find a filename that doesn't already exist",
        ));
    };
    let ca_file = ca.replacen("#DOMAIN#", domain, 1);
    let ca_key_file = key.replacen("#DOMAIN#", domain, 1);
    let ca_pem = std::fs::read(&ca_file).map_err(|e| {
        ui::fail(format!(
            "Error reading CA: {}",
            ui::go_io_error("open", &ca_file, &e)
        ))
    })?;
    let ca_key_pem = std::fs::read(&ca_key_file).map_err(|e| {
        ui::fail(format!(
            "Error reading CA key: {}",
            ui::go_io_error("open", &ca_key_file, &e)
        ))
    })?;
    if kind == CertKind::Server {
        ui::out(SERVER_WARNING);
    }
    ui::out(&format!("==> Using {ca_file} and {ca_key_file}"));

    let signer = parse_signer(&ca_key_pem).map_err(ui::fail)?;
    let cert =
        generate_cert(&ca_pem, signer, &leaf, p.i64("days").unwrap_or(365)).map_err(ui::fail)?;
    verify(&ca_pem, &cert.cert_der, &leaf.name).map_err(ui::fail)?;

    write_atomic(&cert_file, cert.cert_pem.as_bytes(), 0o666).map_err(ui::fail)?;
    ui::out(&format!("==> Saved {cert_file}"));
    write_atomic(&key_file, cert.key_pem.as_bytes(), 0o600).map_err(ui::fail)?;
    ui::out(&format!("==> Saved {key_file}"));
    Ok(())
}

/// Consul's `tls.FileDoesNotExist`, negated: anything but "not found" counts as existing.
fn exists(path: &str) -> bool {
    !matches!(std::fs::metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// The first `<prefix>-<n>.pem` / `<prefix>-<n>-key.pem` pair where neither file exists
/// (n up to 10000, as Consul).
fn free_file_names(prefix: &str) -> Option<(String, String)> {
    (0..=10_000).find_map(|i| {
        let cert = format!("{prefix}-{i}.pem");
        let key = format!("{prefix}-{i}-key.pem");
        (!exists(&cert) && !exists(&key)).then_some((cert, key))
    })
}

/// Write `data` to a temporary file beside `path`, sync it, then rename it into place (Consul's
/// `file.WriteAtomicWithPerms`); `mode` is filtered by the umask like any created file.
fn write_atomic(path: &str, data: &[u8], mode: u32) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = format!("{path}-{:016x}.tmp", rand::random::<u64>());
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        ui::go_io_error("open", path, &e)
    })
}

/// The settings of a new CA (Consul's `tlsutil.CAOpts`).
struct CaOpts<'a> {
    common_name: Option<&'a str>,
    days: i64,
    domain: &'a str,
    /// DNS name constraints; empty for none.
    permitted: Vec<String>,
    cluster_id: Option<&'a str>,
}

/// A certificate and its private key, PEM-encoded (and the certificate's DER).
#[derive(Debug)]
struct Generated {
    cert_der: Vec<u8>,
    cert_pem: String,
    key_pem: String,
}

/// Consul's `tlsutil.GenerateCA`: a self-signed P-256 CA.
fn generate_ca(o: &CaOpts) -> Result<Generated, String> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| format!("error generating private key: {e}"))?;
    let serial: u128 = rand::random();
    let name = match o.common_name {
        Some(n) => n.to_string(),
        None => format!("Consul Agent CA {serial}"),
    };
    let days = if o.days == 0 { 365 } else { o.days };
    let mut params = CertificateParams::default();
    params.serial_number = Some(serial_number(serial));
    params.distinguished_name = ca_subject(&name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_id(&key));
    params.use_authority_key_identifier_extension = true;
    (params.not_before, params.not_after) = validity(days)?;
    if !o.permitted.is_empty() {
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: o
                .permitted
                .iter()
                .map(|d| GeneralSubtree::DnsName(d.clone()))
                .collect(),
            excluded_subtrees: Vec::new(),
        });
    }
    if let Some(id) = o.cluster_id {
        let uri = format!("spiffe://{id}.{}", o.domain);
        params.subject_alt_names = vec![SanType::URI(
            uri.as_str()
                .try_into()
                .map_err(|_| format!("invalid cluster ID {id:?}"))?,
        )];
    }
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("error generating CA certificate: {e}"))?;
    let sec1 = der::pkcs8_to_sec1(key.serialized_der()).map_err(|e| e.to_string())?;
    Ok(Generated {
        cert_der: cert.der().to_vec(),
        cert_pem: pem("CERTIFICATE", cert.der()),
        key_pem: pem("EC PRIVATE KEY", &sec1),
    })
}

/// What goes into a server, client or cli certificate (the body of Consul's
/// `tls cert create`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct LeafOpts {
    /// The subject's common name and the name the certificate is checked for.
    name: String,
    dns: Vec<String>,
    ips: Vec<IpAddr>,
    eku: Vec<ExtendedKeyUsagePurpose>,
    file_prefix: String,
}

impl LeafOpts {
    fn new(
        kind: CertKind,
        dc: &str,
        domain: &str,
        node: &str,
        mut dns: Vec<String>,
        mut ips: Vec<IpAddr>,
    ) -> LeafOpts {
        let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
        use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
        let (name, eku, what) = match kind {
            CertKind::Server => {
                let name = format!("server.{dc}.{domain}");
                if !node.is_empty() {
                    dns.push(format!("{node}.server.{dc}.{domain}"));
                }
                dns.extend([name.clone(), "localhost".into()]);
                ips.push(localhost);
                (name, vec![ServerAuth, ClientAuth], "server")
            }
            CertKind::Client => {
                let name = format!("client.{dc}.{domain}");
                dns.extend([name.clone(), "localhost".into()]);
                ips.push(localhost);
                (name, vec![ClientAuth, ServerAuth], "client")
            }
            CertKind::Cli => {
                // As Consul: the cli certificate's DNS names replace any additional ones (its
                // additional IPs stay), and it has no extended key usage at all.
                let name = format!("cli.{dc}.{domain}");
                dns = vec![name.clone(), "localhost".into()];
                (name, Vec::new(), "cli")
            }
        };
        LeafOpts {
            name,
            dns,
            ips,
            eku,
            file_prefix: format!("{dc}-{what}-{domain}"),
        }
    }
}

/// Consul's `tlsutil.GenerateCert`: a new P-256 key and its certificate, signed by the CA in
/// `ca_pem` with `signer`.
fn generate_cert(
    ca_pem: &[u8],
    signer: KeyPair,
    leaf: &LeafOpts,
    days: i64,
) -> Result<Generated, String> {
    let ca_der = first_certificate(ca_pem).map_err(|e| format!("failed to parse CA: {e}"))?;
    let ca = der::CertParts::parse(&ca_der)
        .map_err(|e| format!("failed to parse CA: x509: malformed certificate: {e}"))?;
    if ca.spki.raw != signer.subject_public_key_info().as_slice() {
        return Err(
            "failed to create certificate: x509: provided PrivateKey doesn't match \
                    parent's PublicKey"
                .into(),
        );
    }
    let ca_key_id = ca
        .subject_key_id()
        .map_err(|e| format!("failed to parse CA: {e}"))?;
    let mut issuer_params = CertificateParams::default();
    issuer_params.distinguished_name = subject_of(&ca.subject)
        .map_err(|e| format!("failed to parse CA: cannot reuse its subject: {e}"))?;
    issuer_params.key_identifier_method =
        KeyIdMethod::PreSpecified(ca_key_id.clone().unwrap_or_default());
    let issuer = Issuer::new(issuer_params, signer);

    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| format!("failed to generate private key: {e}"))?;
    let mut params = CertificateParams::default();
    params.serial_number = Some(serial_number(rand::random()));
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, go_string(&leaf.name));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = leaf.eku.clone();
    (params.not_before, params.not_after) = validity(days)?;
    for d in &leaf.dns {
        let name = d
            .as_str()
            .try_into()
            .map_err(|_| format!("failed to create certificate: invalid DNS name {d:?}"))?;
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    params
        .subject_alt_names
        .extend(leaf.ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_id(&key));
    // Go names the CA's key only when the CA certificate carries an identifier.
    params.use_authority_key_identifier_extension = ca_key_id.is_some();
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| format!("failed to create certificate: {e}"))?;
    let issued = der::CertParts::parse(cert.der()).map_err(|e| e.to_string())?;
    if issued.issuer.raw != ca.subject.raw {
        return Err(
            "failed to create certificate: the CA's subject could not be reproduced as the \
             certificate's issuer"
                .into(),
        );
    }
    let sec1 = der::pkcs8_to_sec1(key.serialized_der()).map_err(|e| e.to_string())?;
    Ok(Generated {
        cert_der: cert.der().to_vec(),
        cert_pem: pem("CERTIFICATE", cert.der()),
        key_pem: pem("EC PRIVATE KEY", &sec1),
    })
}

/// Consul's `tlsutil.Verify`: the certificate chains to a certificate of `ca_pem` and is valid
/// for `name` (as a TLS server: an extended key usage, if present, must allow it).
fn verify(ca_pem: &[u8], cert_der: &[u8], name: &str) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    let mut rest = ca_pem;
    while let Some((label, der, after)) = pem_block(rest) {
        if label == "CERTIFICATE" {
            let _ = roots.add(CertificateDer::from(der));
        }
        rest = after;
    }
    if roots.is_empty() {
        return Err("failed to parse root certificate".into());
    }
    #[allow(deprecated)] // ring has no post-quantum key exchange; no handshake here anyway
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| e.to_string())?;
    let server_name = ServerName::try_from(name.to_string())
        .map_err(|_| format!("x509: certificate is not valid for {name}"))?;
    use rustls::client::danger::ServerCertVerifier;
    verifier
        .verify_server_cert(
            &CertificateDer::from(cert_der),
            &[],
            &server_name,
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
        .map_err(|e| match e {
            rustls::Error::InvalidCertificate(c) => proconsul_api::describe_certificate_error(&c),
            other => other.to_string(),
        })
}

/// Consul's `tlsutil.ParseSigner`: the first PEM block's private key — SEC 1 (`EC PRIVATE
/// KEY`, what Consul writes), PKCS #1 (`RSA PRIVATE KEY`) or PKCS #8 (`PRIVATE KEY`).
fn parse_signer(pem_bytes: &[u8]) -> Result<KeyPair, String> {
    let (label, der, _) = pem_block(pem_bytes).ok_or("no PEM-encoded data found")?;
    let pkcs8 = match label.as_str() {
        "EC PRIVATE KEY" => der::sec1_to_pkcs8(&der).map_err(|e| format!("x509: {e}"))?,
        "RSA PRIVATE KEY" => der::pkcs1_to_pkcs8(&der),
        "PRIVATE KEY" => der,
        other => return Err(format!("unknown PEM block type for signing key: {other}")),
    };
    KeyPair::try_from(pkcs8.as_slice())
        .map_err(|e| format!("x509: failed to parse private key: {e}"))
}

/// The DER of the first PEM block, which must be a certificate (Consul's `parseCert`).
fn first_certificate(pem_bytes: &[u8]) -> Result<Vec<u8>, String> {
    match pem_block(pem_bytes) {
        None => Err("no PEM-encoded data found".into()),
        Some((label, _, _)) if label != "CERTIFICATE" => {
            Err("first PEM-block should be CERTIFICATE type".into())
        }
        Some((_, der, _)) => Ok(der),
    }
}

/// The first PEM block in `input`: its label, its decoded bytes and what follows it. Blocks
/// whose body is not base64 are skipped, as Go's `pem.Decode` does.
fn pem_block(mut input: &[u8]) -> Option<(String, Vec<u8>, &[u8])> {
    use base64::Engine;
    const BEGIN: &[u8] = b"-----BEGIN ";
    loop {
        let start = find(input, BEGIN)?;
        let after_begin = &input[start + BEGIN.len()..];
        let label_end = find(after_begin, b"-----")?;
        let label = String::from_utf8_lossy(&after_begin[..label_end]).into_owned();
        let body = &after_begin[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = find(body, end_marker.as_bytes()) else {
            input = body;
            continue;
        };
        let text: Vec<u8> = body[..end]
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let rest = &body[end + end_marker.len()..];
        match base64::engine::general_purpose::STANDARD.decode(&text) {
            Ok(der) => return Some((label, der, rest)),
            Err(_) => input = rest,
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// PEM as Go's `pem.Encode` writes it: 64 base64 characters a line.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Consul's key identifier: the SHA-256 of the DER public key, all 32 bytes (not RFC 7093's
/// 20).
fn key_id(key: &KeyPair) -> Vec<u8> {
    Sha256::digest(key.subject_public_key_info()).to_vec()
}

/// A positive 128-bit serial number, minimal big-endian bytes.
fn serial_number(serial: u128) -> SerialNumber {
    let bytes = serial.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(15);
    SerialNumber::from_slice(&bytes[skip..])
}

/// From now to `days` days from now.
fn validity(days: i64) -> Result<(time::OffsetDateTime, time::OffsetDateTime), String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs() as i64;
    let at = |secs: i64| {
        time::OffsetDateTime::from_unix_timestamp(secs)
            .map_err(|_| format!("invalid validity period of {days} days"))
    };
    Ok((
        at(now)?,
        at(now.saturating_add(days.saturating_mul(86_400)))?,
    ))
}

/// A string as Go's asn1 encodes it in a name: PrintableString when it can be, else UTF-8.
fn go_string(s: &str) -> DnValue {
    match rcgen::string::PrintableString::try_from(s) {
        Ok(p) => DnValue::PrintableString(p),
        Err(_) => DnValue::Utf8String(s.to_string()),
    }
}

/// The CA's subject as Consul's `GenerateCA` writes it (HashiCorp's San Francisco address),
/// in Go's order: C, ST, L, street, postal code, O, CN.
fn ca_subject(common_name: &str) -> DistinguishedName {
    const STREET_ADDRESS: &[u64] = &[2, 5, 4, 9];
    const POSTAL_CODE: &[u64] = &[2, 5, 4, 17];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, go_string("US"));
    dn.push(DnType::StateOrProvinceName, go_string("CA"));
    dn.push(DnType::LocalityName, go_string("San Francisco"));
    dn.push(
        DnType::CustomDnType(STREET_ADDRESS.to_vec()),
        go_string("101 Second Street"),
    );
    dn.push(
        DnType::CustomDnType(POSTAL_CODE.to_vec()),
        go_string("94105"),
    );
    dn.push(DnType::OrganizationName, go_string("HashiCorp Inc."));
    dn.push(DnType::CommonName, go_string(common_name));
    dn
}

/// A certificate's subject (an RDN sequence) as rcgen parameters, keeping each value's string
/// type so it encodes to the same bytes. Names rcgen cannot hold (an attribute repeated, or
/// several in one RDN) are refused.
fn subject_of(subject: &der::Tlv) -> Result<DistinguishedName, String> {
    use rcgen::string::{BmpString, Ia5String, PrintableString, TeletexString, UniversalString};
    let mut dn = DistinguishedName::new();
    let mut rdns = subject.reader();
    while !rdns.is_empty() {
        let set = rdns.expect(der::SET).map_err(|e| e.to_string())?;
        let mut atvs = set.reader();
        let mut atv = atvs
            .expect(der::SEQUENCE)
            .map_err(|e| e.to_string())?
            .reader();
        if !atvs.is_empty() {
            return Err("a multi-valued RDN".into());
        }
        let oid = der::oid_arcs(atv.expect(der::OID).map_err(|e| e.to_string())?.value)
            .map_err(|e| e.to_string())?;
        let v = atv.read().map_err(|e| e.to_string())?;
        let ty = DnType::from_oid(&oid);
        if dn.get(&ty).is_some() {
            return Err(format!("attribute {oid:?} appears twice"));
        }
        let text = || String::from_utf8(v.value.to_vec()).map_err(|e| e.to_string());
        let bad = |e: rcgen::Error| e.to_string();
        let value = match v.tag {
            0x13 => DnValue::PrintableString(PrintableString::try_from(text()?).map_err(bad)?),
            0x0c => DnValue::Utf8String(text()?),
            0x16 => DnValue::Ia5String(Ia5String::try_from(text()?).map_err(bad)?),
            0x14 => DnValue::TeletexString(TeletexString::try_from(text()?).map_err(bad)?),
            0x1e => DnValue::BmpString(BmpString::from_utf16be(v.value.to_vec()).map_err(bad)?),
            0x1c => DnValue::UniversalString(
                UniversalString::from_utf32be(v.value.to_vec()).map_err(bad)?,
            ),
            tag => return Err(format!("unsupported string type 0x{tag:02x}")),
        };
        dn.push(ty, value);
    }
    Ok(dn)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SANs of a certificate: DNS names and IPs, in order.
    fn sans(parts: &der::CertParts) -> (Vec<String>, Vec<IpAddr>) {
        let (mut dns, mut ips) = (Vec::new(), Vec::new());
        let Some(v) = parts.extension(&[2, 5, 29, 17]) else {
            return (dns, ips);
        };
        let mut r = der::Reader::new(v).expect(der::SEQUENCE).unwrap().reader();
        while !r.is_empty() {
            let t = r.read().unwrap();
            match t.tag {
                0x82 => dns.push(String::from_utf8(t.value.to_vec()).unwrap()),
                0x87 => ips.push(match t.value.len() {
                    4 => IpAddr::from(<[u8; 4]>::try_from(t.value).unwrap()),
                    _ => IpAddr::from(<[u8; 16]>::try_from(t.value).unwrap()),
                }),
                _ => {}
            }
        }
        (dns, ips)
    }

    /// The extended key usage OIDs, in order; `None` without the extension.
    fn ekus(parts: &der::CertParts) -> Option<Vec<Vec<u64>>> {
        let v = parts.extension(&[2, 5, 29, 37])?;
        let mut r = der::Reader::new(v).expect(der::SEQUENCE).unwrap().reader();
        let mut out = Vec::new();
        while !r.is_empty() {
            out.push(der::oid_arcs(r.expect(der::OID).unwrap().value).unwrap());
        }
        Some(out)
    }

    /// The key usage bits as the BIT STRING's first byte (digitalSignature = 0x80).
    fn key_usage(parts: &der::CertParts) -> Vec<u8> {
        let v = parts.extension(&[2, 5, 29, 15]).unwrap();
        der::Reader::new(v).expect(der::BIT_STRING).unwrap().value[1..].to_vec()
    }

    fn critical(parts: &der::CertParts, id: &[u64]) -> bool {
        parts.extensions.iter().any(|(c, i, _)| *c && i == id)
    }

    const SERVER_AUTH: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 1];
    const CLIENT_AUTH: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 2];

    fn ca(opts: CaOpts) -> (Generated, KeyPair) {
        let ca = generate_ca(&opts).unwrap();
        let key = parse_signer(ca.key_pem.as_bytes()).unwrap();
        (ca, key)
    }

    fn default_ca() -> (Generated, KeyPair) {
        ca(CaOpts {
            common_name: None,
            days: 1825,
            domain: "consul",
            permitted: Vec::new(),
            cluster_id: None,
        })
    }

    #[test]
    fn the_ca_is_consuls() {
        let (ca, _) = default_ca();
        assert!(ca.key_pem.starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
        let parts = der::CertParts::parse(&ca.cert_der).unwrap();
        // Self-signed, with Consul's subject and a serial in its name.
        assert_eq!(parts.issuer.raw, parts.subject.raw);
        let dn = subject_of(&parts.subject).unwrap();
        let cn = match dn.get(&DnType::CommonName).unwrap() {
            DnValue::PrintableString(s) => s.as_str().to_string(),
            other => panic!("{other:?}"),
        };
        assert!(cn.starts_with("Consul Agent CA "), "{cn}");
        assert!(
            cn["Consul Agent CA ".len()..].parse::<u128>().is_ok(),
            "{cn}"
        );
        assert!(matches!(
            dn.get(&DnType::OrganizationName),
            Some(DnValue::PrintableString(s)) if s.as_str() == "HashiCorp Inc."
        ));
        // CA:TRUE, critical; certSign|cRLSign|digitalSignature; SKI == AKI, 32 bytes.
        assert!(critical(&parts, &[2, 5, 29, 19]));
        assert_eq!(key_usage(&parts), vec![0x86]);
        let ski = parts.subject_key_id().unwrap().unwrap();
        assert_eq!(ski.len(), 32);
        let aki = parts.extension(&[2, 5, 29, 35]).unwrap();
        assert!(aki.ends_with(&ski));
        assert!(
            parts.extension(&[2, 5, 29, 30]).is_none(),
            "no name constraints"
        );
    }

    #[test]
    fn name_constraints_and_cluster_id() {
        let (ca, key) = ca(CaOpts {
            common_name: Some("my CA"),
            days: 365,
            domain: "foo",
            permitted: vec!["bar".into(), "foo".into(), "localhost".into()],
            cluster_id: Some("uuid"),
        });
        let parts = der::CertParts::parse(&ca.cert_der).unwrap();
        assert!(critical(&parts, &[2, 5, 29, 30]));
        let nc = parts.extension(&[2, 5, 29, 30]).unwrap();
        for name in ["bar", "foo", "localhost"] {
            assert!(find(nc, name.as_bytes()).is_some(), "{name}");
        }
        assert!(find(&ca.cert_der, b"spiffe://uuid.foo").is_some());
        // A name outside the constraints is refused by the check before writing.
        let leaf = LeafOpts::new(
            CertKind::Server,
            "dc1",
            "foo",
            "",
            vec!["outside.example".into()],
            vec![],
        );
        let cert = generate_cert(ca.cert_pem.as_bytes(), key, &leaf, 365).unwrap();
        let e = verify(ca.cert_pem.as_bytes(), &cert.cert_der, &leaf.name).unwrap_err();
        assert!(e.contains("not authorized to sign for this name"), "{e}");
    }

    #[test]
    fn server_client_and_cli_certificates() {
        let (ca, _) = default_ca();
        let cases = [
            (
                LeafOpts::new(CertKind::Server, "dc1", "consul", "mysrv", vec![], vec![]),
                vec!["mysrv.server.dc1.consul", "server.dc1.consul", "localhost"],
                vec![IpAddr::from([127, 0, 0, 1])],
                Some(vec![SERVER_AUTH.to_vec(), CLIENT_AUTH.to_vec()]),
            ),
            (
                LeafOpts::new(
                    CertKind::Client,
                    "dc2",
                    "nomad",
                    "",
                    vec!["extra.example".into()],
                    vec!["10.0.0.1".parse().unwrap()],
                ),
                vec!["extra.example", "client.dc2.nomad", "localhost"],
                vec![IpAddr::from([10, 0, 0, 1]), IpAddr::from([127, 0, 0, 1])],
                Some(vec![CLIENT_AUTH.to_vec(), SERVER_AUTH.to_vec()]),
            ),
            (
                LeafOpts::new(
                    CertKind::Cli,
                    "dc1",
                    "consul",
                    "",
                    vec!["dropped.example".into()],
                    vec![],
                ),
                vec!["cli.dc1.consul", "localhost"],
                vec![],
                None,
            ),
        ];
        for (leaf, want_dns, want_ips, want_eku) in cases {
            let key = parse_signer(ca.key_pem.as_bytes()).unwrap();
            let cert = generate_cert(ca.cert_pem.as_bytes(), key, &leaf, 365).unwrap();
            verify(ca.cert_pem.as_bytes(), &cert.cert_der, &leaf.name).unwrap();
            let parts = der::CertParts::parse(&cert.cert_der).unwrap();
            let (dns, ips) = sans(&parts);
            assert_eq!(dns, want_dns, "{}", leaf.name);
            assert_eq!(ips, want_ips, "{}", leaf.name);
            assert_eq!(ekus(&parts), want_eku, "{}", leaf.name);
            // digitalSignature | keyEncipherment, critical; CA:FALSE; AKI is the CA's SKI.
            assert_eq!(key_usage(&parts), vec![0xa0]);
            assert!(critical(&parts, &[2, 5, 29, 19]));
            let ca_parts = der::CertParts::parse(&ca.cert_der).unwrap();
            let ca_ski = ca_parts.subject_key_id().unwrap().unwrap();
            assert!(parts.extension(&[2, 5, 29, 35]).unwrap().ends_with(&ca_ski));
            assert_eq!(parts.subject_key_id().unwrap().unwrap().len(), 32);
            assert!(cert.key_pem.starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
        }
    }

    #[test]
    fn a_key_that_is_not_the_cas_is_refused() {
        let (ca, _) = default_ca();
        let (_, other_key) = default_ca();
        let leaf = LeafOpts::new(CertKind::Server, "dc1", "consul", "", vec![], vec![]);
        let e = generate_cert(ca.cert_pem.as_bytes(), other_key, &leaf, 365).unwrap_err();
        assert_eq!(
            e,
            "failed to create certificate: x509: provided PrivateKey doesn't match parent's \
             PublicKey"
        );
    }

    #[test]
    fn signer_formats() {
        assert_eq!(
            parse_signer(b"nothing here").unwrap_err(),
            "no PEM-encoded data found"
        );
        assert_eq!(
            parse_signer(pem("PUBLIC KEY", b"x").as_bytes()).unwrap_err(),
            "unknown PEM block type for signing key: PUBLIC KEY"
        );
        // PKCS #8 as well as SEC 1.
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let pkcs8 = pem("PRIVATE KEY", key.serialized_der());
        let back = parse_signer(pkcs8.as_bytes()).unwrap();
        assert_eq!(back.public_key_raw(), key.public_key_raw());
        let sec1 = pem(
            "EC PRIVATE KEY",
            &der::pkcs8_to_sec1(key.serialized_der()).unwrap(),
        );
        let back = parse_signer(sec1.as_bytes()).unwrap();
        assert_eq!(back.public_key_raw(), key.public_key_raw());
        assert_eq!(
            first_certificate(sec1.as_bytes()).unwrap_err(),
            "first PEM-block should be CERTIFICATE type"
        );
    }

    #[test]
    fn the_validity_period_is_the_days_asked_for() {
        let (before, after) = validity(365).unwrap();
        assert_eq!((after - before).whole_days(), 365);
    }
}
