//! Parsers for single config values (durations, ports, addresses, levels, keys).
//!
//! Each takes the key name so its error can say which key is wrong, in Consul's wording where
//! Consul has one. The same functions run twice: once per file (so the error can name the file)
//! and once while building the runtime config (to get the typed value).

use base64::Engine;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::error::ValueError;

/// A Go duration, or `None` when unset.
pub(crate) fn duration(key: &str, v: Option<&str>) -> Result<Option<Duration>, ValueError> {
    match v {
        None => Ok(None),
        Some(s) => proconsul_types::duration::parse(s)
            .map(Some)
            .map_err(|source| ValueError::Duration {
                key: key.into(),
                value: s.into(),
                source,
            }),
    }
}

/// A port: `Some(port)`, or `None` when disabled (-1; Consul also treats 0 as disabled).
pub(crate) fn port(key: &str, v: i64) -> Result<Option<u16>, ValueError> {
    match v {
        -1 | 0 => Ok(None),
        1..=65535 => Ok(Some(v as u16)),
        _ => Err(ValueError::Port {
            key: key.into(),
            value: v,
        }),
    }
}

/// One IP address (`[::]` accepted like Consul).
pub(crate) fn one_ip(key: &str, s: &str) -> Result<IpAddr, ValueError> {
    let t = s.trim();
    if t.contains("{{") {
        return Err(ValueError::AddressTemplate {
            key: key.into(),
            value: s.into(),
        });
    }
    let t = t
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(t);
    let ips = ip_list(key, t)?;
    match ips.as_slice() {
        [ip] => Ok(*ip),
        [] => Err(ValueError::NoAddress { key: key.into() }),
        _ => Err(ValueError::MultipleAddresses {
            key: key.into(),
            value: t.into(),
        }),
    }
}

/// A space-separated list of IP addresses (`client_addr`, `addresses.*`).
pub(crate) fn ip_list(key: &str, s: &str) -> Result<Vec<IpAddr>, ValueError> {
    if s.contains("{{") {
        return Err(ValueError::AddressesTemplate {
            key: key.into(),
            value: s.into(),
        });
    }
    s.split_whitespace()
        .map(|a| {
            if a.starts_with("unix://") {
                return Err(ValueError::UnixSocket {
                    key: key.into(),
                    value: a.into(),
                });
            }
            let a = if a == "[::]" { "::" } else { a };
            a.parse::<IpAddr>().map_err(|_| ValueError::Ip {
                key: key.into(),
                value: a.into(),
            })
        })
        .collect()
}

/// `performance.raft_multiplier`, 1..=10.
pub(crate) fn raft_multiplier(n: i64) -> Result<u32, ValueError> {
    if (1..=10).contains(&n) {
        Ok(n as u32)
    } else {
        Err(ValueError::RaftMultiplier(n))
    }
}

/// A log level, upper-cased (`ERR` is Consul's spelling of `ERROR`; both accepted).
pub(crate) fn log_level(s: &str) -> Result<String, ValueError> {
    let up = s.trim().to_ascii_uppercase();
    match up.as_str() {
        "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERR" | "ERROR" => Ok(up),
        _ => Err(ValueError::LogLevel(s.into())),
    }
}

/// A gossip key: base64 of 16, 24 or 32 bytes.
pub(crate) fn encrypt_key(s: &str) -> Result<(), ValueError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| ValueError::EncryptKey(e.to_string()))?;
    match bytes.len() {
        16 | 24 | 32 => Ok(()),
        n => Err(ValueError::EncryptKeySize(n)),
    }
}

/// A DNS recursor: `ip` or `ip:port`, not the unspecified address.
pub(crate) fn recursor(s: &str) -> Result<(), ValueError> {
    let ip = match s.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => match s.parse::<SocketAddr>() {
            Ok(sa) => sa.ip(),
            Err(_) => return Err(ValueError::Recursor(s.into())),
        },
    };
    if ip.is_unspecified() {
        return Err(ValueError::RecursorUnspecified);
    }
    Ok(())
}

/// A node ID: a UUID in its 8-4-4-4-12 hex form; returned lower-cased.
pub(crate) fn node_id(s: &str) -> Result<String, ValueError> {
    let t = s.trim().to_ascii_lowercase();
    let groups: Vec<&str> = t.split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    let hex = groups
        .iter()
        .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()));
    if lens == [8, 4, 4, 4, 12] && hex {
        Ok(t)
    } else {
        Err(ValueError::NodeId(s.into()))
    }
}

/// `datacenter` and `primary_datacenter`: `^[a-z0-9_-]+$` after lower-casing.
/// `ui_config.content_path` as Consul's `UIPathBuilder` reads it: trimmed of slashes and
/// put between two (`ui` → `/ui/`), `/ui/` when empty. A path under `/v1/` would hide API
/// endpoints, and characters that need quoting in a URL or in HTML are refused.
pub(crate) fn ui_content_path(v: Option<&str>) -> Result<String, ValueError> {
    let trimmed = v.unwrap_or("").trim_matches('/');
    if v.is_none_or(str::is_empty) {
        return Ok("/ui/".into());
    }
    let path = if trimmed.is_empty() {
        "/".to_string()
    } else {
        format!("/{trimmed}/")
    };
    let invalid = |why: &str| ValueError::Invalid {
        key: "ui_config.content_path".into(),
        value: v.unwrap_or("").into(),
        why: why.into(),
    };
    if path.starts_with("/v1/") {
        return Err(invalid("is under /v1/, where the HTTP API lives"));
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || "/-._~".contains(c);
    if !path.chars().all(plain) {
        return Err(invalid(
            "may hold only letters, digits, '/', '-', '.', '_' and '~'",
        ));
    }
    Ok(path)
}

pub(crate) fn basic_name(key: &str, v: &str) -> Result<(), ValueError> {
    if v.is_empty() {
        return Err(ValueError::Empty(key.into()));
    }
    if !v
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
    {
        return Err(ValueError::Name {
            key: key.into(),
            value: v.into(),
        });
    }
    Ok(())
}

/// A DNS domain with its trailing dot.
pub(crate) fn fqdn(s: &str) -> String {
    let t = s.trim();
    if t.ends_with('.') {
        t.to_string()
    } else {
        format!("{t}.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(port("ports.http", -1).unwrap(), None);
        assert_eq!(port("ports.http", 8500).unwrap(), Some(8500));
        assert_eq!(
            port("ports.http", 70000).unwrap_err().to_string(),
            "ports.http: invalid port: 70000 (must be 1-65535, or -1 to disable)"
        );
        assert_eq!(ip_list("c", "127.0.0.1 ::1").unwrap().len(), 2);
        assert_eq!(
            one_ip("b", "[::]").unwrap(),
            "::".parse::<IpAddr>().unwrap()
        );
        assert!(one_ip("b", "{{ GetPrivateIP }}").is_err());
        assert_eq!(log_level("warn").unwrap(), "WARN");
        assert!(log_level("loud").is_err());
        assert!(encrypt_key("pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=").is_ok());
        assert!(encrypt_key("c2hvcnQ=").is_err());
        assert!(recursor("8.8.8.8:53").is_ok());
        assert!(recursor("0.0.0.0").is_err());
        assert!(node_id("ADF4238A-882B-9DDC-4A9D-5B6758E4159E").is_ok());
        assert!(node_id("nope").is_err());
        assert!(basic_name("datacenter", "dc-1_a").is_ok());
        assert!(basic_name("datacenter", "dc 1").is_err());
        assert_eq!(fqdn("consul"), "consul.");
        let text = |e: ValueError| e.to_string();
        assert_eq!(
            text(log_level("loud").unwrap_err()),
            "log_level: invalid log level \"loud\"; valid levels are TRACE, DEBUG, INFO, WARN, ERR"
        );
        assert_eq!(
            text(encrypt_key("c2hvcnQ=").unwrap_err()),
            "encrypt has invalid key: key size must be 16, 24 or 32 bytes, got 5"
        );
        assert_eq!(
            text(recursor("0.0.0.0").unwrap_err()),
            "DNS recursor address cannot be 0.0.0.0, :: or [::]"
        );
        assert_eq!(
            text(recursor("x").unwrap_err()),
            "recursors: invalid address \"x\""
        );
        assert_eq!(
            text(basic_name("datacenter", "dc 1").unwrap_err()),
            "datacenter can only contain lowercase alphanumeric, - or _ characters. received: \"dc 1\""
        );
        assert_eq!(
            text(basic_name("datacenter", "").unwrap_err()),
            "datacenter cannot be empty"
        );
        assert_eq!(
            text(one_ip("bind_addr", "10.0.0.1 10.0.0.2").unwrap_err()),
            "bind_addr: multiple addresses found: 10.0.0.1 10.0.0.2"
        );
        assert_eq!(
            text(ip_list("client_addr", "unix:///x").unwrap_err()),
            "client_addr: unix sockets are not supported: unix:///x"
        );
        assert_eq!(
            text(raft_multiplier(11).unwrap_err()),
            "performance.raft_multiplier cannot be 11. Must be between 1 and 10"
        );
        assert_eq!(
            text(node_id("nope").unwrap_err()),
            "node_id: \"nope\" is not a valid UUID"
        );
        assert_eq!(
            duration("retry_interval", Some("10x"))
                .unwrap_err()
                .to_string(),
            "retry_interval: invalid duration: \"10x\": time: unknown unit \"x\" in duration \"10x\""
        );
    }
}
