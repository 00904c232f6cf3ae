//! `services register|deregister`: services on the local agent, from flags or from config
//! files (read exactly as the agent reads its `-config-file`s, so HCL and JSON both work).

use std::collections::BTreeMap;
use std::path::PathBuf;

use proconsul_config::{AgentFlags, SystemHost};
use proconsul_types::ServiceDefinition;

use super::{client, parse_flags};
use crate::flags::{self, Flag, Kind, Parsed, CLIENT_FLAGS, SERVER_FLAGS};
use crate::ui;

pub fn help() -> String {
    "Usage: proconsul services <subcommand> [options] [args]

  This command has subcommands for interacting with services. The subcommands
  default to working with services registered with the local agent. Please see
  the \"proconsul catalog\" command for interacting with the entire catalog.

  For more examples, ask for subcommand help or view the documentation."
        .to_string()
}

/// The `service`/`services` definitions of config files, via the agent's own config loader in
/// dev mode (Consul's `ServicesFromFiles`), so validation errors name the file and key.
pub fn services_from_files(files: &[String]) -> Result<Vec<ServiceDefinition>, String> {
    let flags = AgentFlags {
        dev: true,
        config_files: files.iter().map(PathBuf::from).collect(),
        ..AgentFlags::default()
    };
    proconsul_config::load_with(&flags, &SystemHost)
        .map(|rc| rc.services)
        .map_err(|e| e.to_string())
}

// ---------------------------------------------------------------- register

const REGISTER_FLAGS: &[Flag] = &[
    Flag::string(
        "address",
        "Address of the service to register for arg-based registration.",
    ),
    Flag::string(
        "id",
        "ID of the service to register for arg-based registration. If this isn't set, it \
         will default to the -name value.",
    ),
    Flag::string("kind", "The services 'kind'"),
    Flag::new(
        "meta",
        Kind::Str,
        "value",
        "Metadata to set on the service, formatted as key=value. This flag may be specified \
         multiple times to set multiple meta fields.",
    ),
    Flag::string(
        "name",
        "Name of the service to register for arg-based registration.",
    ),
    Flag::new(
        "port",
        Kind::Int,
        "int",
        "Port of the service to register for arg-based registration.",
    ),
    Flag::string(
        "socket",
        "Path to the Unix domain socket to register for arg-based registration (conflicts \
         with address and port).",
    ),
    Flag::new(
        "tag",
        Kind::Str,
        "value",
        "Tag to add to the service. This flag can be specified multiple times to set \
         multiple tags.",
    ),
    Flag::new(
        "tagged-address",
        Kind::Str,
        "value",
        "Tagged address to set on the service, formatted as key=value. This flag may be \
         specified multiple times to set multiple addresses.",
    ),
];

fn register_flags() -> Vec<Flag> {
    flags::with(REGISTER_FLAGS, &[CLIENT_FLAGS, SERVER_FLAGS])
}

pub fn register_help() -> String {
    flags::usage(
        r#"
Usage: proconsul services register [options] [FILE...]

  Register one or more services using the local agent API. Services can
  be registered from standard Consul configuration files (HCL or JSON) or
  using flags. The service is registered and the command returns. The caller
  must remember to call "proconsul services deregister" or a similar API to
  deregister the service when complete.

      $ proconsul services register web.json

  Additional flags and more advanced use cases are detailed below.
"#,
        &register_flags(),
    )
}

/// A repeatable `key=value` flag as a map (Consul's `FlagMapValue`).
fn flag_map(p: &Parsed, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for kv in p.all(name) {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(ui::fail(format!(
                "invalid value \"{kv}\" for flag -{name}: Missing \"=\" value in argument: {kv}\n{}",
                register_help()
            )));
        };
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// Fill what a file left empty from the flags (Consul's `CombineArgs`).
pub fn combine(file: &mut ServiceDefinition, flags: &ServiceDefinition) {
    if file.id.is_empty() {
        file.id = flags.id.clone();
    }
    if file.name.is_empty() {
        file.name = flags.name.clone();
    }
    if file.address.is_empty() {
        file.address = flags.address.clone();
    }
    if file.port == 0 {
        file.port = flags.port;
    }
    if file.kind.is_empty() {
        file.kind = flags.kind.clone();
    }
    file.meta
        .extend(flags.meta.iter().map(|(k, v)| (k.clone(), v.clone())));
    file.tagged_addresses.extend(
        flags
            .tagged_addresses
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    file.tags.extend(flags.tags.iter().cloned());
}

/// `addr` or `addr:port` as a tagged address.
fn service_address(v: &str) -> proconsul_types::ServiceAddress {
    let split = v
        .rsplit_once(':')
        .filter(|(host, _)| !host.is_empty() && (!host.contains(':') || host.ends_with(']')))
        .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)));
    match split {
        Some((host, port)) => proconsul_types::ServiceAddress {
            address: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
        },
        None => proconsul_types::ServiceAddress {
            address: v.to_string(),
            port: 0,
        },
    }
}

pub fn register(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&register_flags(), args, register_help)?;
    let port = p.i64("port").unwrap_or(0);
    let port = u16::try_from(port)
        .map_err(|_| ui::fail(format!("Invalid port: {port} is not in 0-65535")))?;
    let from_flags = ServiceDefinition {
        kind: p.str("kind").unwrap_or_default().to_string(),
        id: p.str("id").unwrap_or_default().to_string(),
        name: p.str("name").unwrap_or_default().to_string(),
        address: p.str("address").unwrap_or_default().to_string(),
        port,
        tags: p.all("tag"),
        meta: flag_map(&p, "meta")?,
        // `-tagged-address lan=10.0.0.1:8080`: an address with an optional port.
        tagged_addresses: flag_map(&p, "tagged-address")?
            .into_iter()
            .map(|(k, v)| (k, service_address(&v)))
            .collect(),
        ..ServiceDefinition::default()
    };
    if p.str("socket").is_some_and(|s| !s.is_empty()) {
        return Err(ui::fail(
            "Error: -socket: Unix domain socket services are not supported by proconsul",
        ));
    }
    if p.args.is_empty() && from_flags.name.is_empty() {
        return Err(ui::fail(
            "Service registration requires at least one argument or flags.",
        ));
    } else if !p.args.is_empty() && !from_flags.name.is_empty() {
        return Err(ui::fail(
            "Service registration requires arguments or -id, not both.",
        ));
    }
    let mut services = Vec::new();
    if !p.args.is_empty() {
        services = services_from_files(&p.args).map_err(|e| ui::fail(format!("Error: {e}")))?;
        for s in &mut services {
            combine(s, &from_flags);
        }
    }
    let c = client(&p)?;
    if services.is_empty() {
        services.push(from_flags);
    }
    for svc in &services {
        c.agent_service_register(svc)
            .map_err(|e| ui::fail(format!("Error registering service {:?}: {e}", svc.name)))?;
        ui::out(&format!("Registered service: {}", svc.name));
    }
    Ok(())
}

// ---------------------------------------------------------------- deregister

const DEREGISTER_FLAGS: &[Flag] = &[Flag::string(
    "id",
    "ID to delete. This must not be set if arguments are given.",
)];

fn deregister_flags() -> Vec<Flag> {
    flags::with(DEREGISTER_FLAGS, &[CLIENT_FLAGS, SERVER_FLAGS])
}

pub fn deregister_help() -> String {
    flags::usage(
        r#"
Usage: proconsul services deregister [options] [FILE...]

  Deregister one or more services that were previously registered with
  the local agent.

      $ proconsul services deregister web.json db.json

  The -id flag may be used to deregister a single service by ID:

      $ proconsul services deregister -id=web

  Services are deregistered from the local agent catalog. This command must
  be run against the same agent where the service was registered.
"#,
        &deregister_flags(),
    )
}

pub fn deregister(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&deregister_flags(), args, deregister_help)?;
    let id = p.str("id").unwrap_or_default();
    if p.args.is_empty() && id.is_empty() {
        return Err(ui::fail(
            "Service deregistration requires at least one argument or -id.",
        ));
    } else if !p.args.is_empty() && !id.is_empty() {
        return Err(ui::fail(
            "Service deregistration requires arguments or -id, not both.",
        ));
    }
    let services = if p.args.is_empty() {
        vec![ServiceDefinition {
            id: id.to_string(),
            ..ServiceDefinition::default()
        }]
    } else {
        services_from_files(&p.args).map_err(|e| ui::fail(format!("Error: {e}")))?
    };
    let c = client(&p)?;
    for svc in &services {
        let id = if svc.id.is_empty() {
            &svc.name
        } else {
            &svc.id
        };
        if id.is_empty() {
            continue;
        }
        // Consul's message says "registering" here too; kept for identical output.
        c.agent_service_deregister(id)
            .map_err(|e| ui::fail(format!("Error registering service {:?}: {e}", svc.name)))?;
        ui::out(&format!("Deregistered service: {id}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_fill_what_files_leave_empty() {
        let mut file = ServiceDefinition {
            name: "web".into(),
            port: 80,
            tags: vec!["a".into()],
            ..ServiceDefinition::default()
        };
        let flags = ServiceDefinition {
            id: "web-1".into(),
            name: "ignored".into(),
            port: 81,
            tags: vec!["b".into()],
            meta: [("k".to_string(), "v".to_string())].into(),
            ..ServiceDefinition::default()
        };
        combine(&mut file, &flags);
        assert_eq!(
            (file.id.as_str(), file.name.as_str(), file.port),
            ("web-1", "web", 80)
        );
        assert_eq!(file.tags, vec!["a", "b"]);
        assert_eq!(file.meta["k"], "v");
    }

    #[test]
    fn services_from_json_and_hcl_files() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("web.json");
        std::fs::write(
            &json,
            r#"{"service": {"name": "web", "port": 80, "tags": ["v1"]}}"#,
        )
        .unwrap();
        let hcl = dir.path().join("db.hcl");
        std::fs::write(&hcl, "service {\n  name = \"db\"\n  port = 5432\n}\n").unwrap();
        let s =
            services_from_files(&[json.display().to_string(), hcl.display().to_string()]).unwrap();
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["web", "db"]);
        assert_eq!(s[0].tags, vec!["v1"]);

        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, r#"{"service": {"name": "x", "bogus": 1}}"#).unwrap();
        let e = services_from_files(&[bad.display().to_string()]).unwrap_err();
        assert!(e.contains("bad.json") && e.contains("bogus"), "{e}");
    }
}
