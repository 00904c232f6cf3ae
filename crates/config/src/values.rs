//! Parsers for single config values (durations, ports, addresses, levels, keys).
//!
//! Each takes the key name so its error can say which key is wrong, in Consul's wording where
//! Consul has one. The same functions run twice: once per file (so the error can name the file)
//! and once while building the runtime config (to get the typed value).

use base64::Engine;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// A Go duration, or `None` when unset.
pub(crate) fn duration(key: &str, v: Option<&str>) -> Result<Option<Duration>, String> {
    match v {
        None => Ok(None),
        Some(s) => proconsul_types::duration::parse(s)
            .map(Some)
            .map_err(|e| format!("{key}: invalid duration: {s:?}: {e}")),
    }
}

/// A port: `Some(port)`, or `None` when disabled (-1; Consul also treats 0 as disabled).
pub(crate) fn port(key: &str, v: i64) -> Result<Option<u16>, String> {
    match v {
        -1 | 0 => Ok(None),
        1..=65535 => Ok(Some(v as u16)),
        _ => Err(format!(
            "{key}: invalid port: {v} (must be 1-65535, or -1 to disable)"
        )),
    }
}

/// One IP address (`[::]` accepted like Consul).
pub(crate) fn one_ip(key: &str, s: &str) -> Result<IpAddr, String> {
    let t = s.trim();
    if t.contains("{{") {
        return Err(format!(
            "{key}: go-sockaddr templates are not supported yet, give an IP address: {s:?}"
        ));
    }
    let t = t
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(t);
    let ips = ip_list(key, t)?;
    match ips.as_slice() {
        [ip] => Ok(*ip),
        [] => Err(format!("{key}: no address given")),
        _ => Err(format!("{key}: multiple addresses found: {t}")),
    }
}

/// A space-separated list of IP addresses (`client_addr`, `addresses.*`).
pub(crate) fn ip_list(key: &str, s: &str) -> Result<Vec<IpAddr>, String> {
    if s.contains("{{") {
        return Err(format!(
            "{key}: go-sockaddr templates are not supported yet, give IP addresses: {s:?}"
        ));
    }
    s.split_whitespace()
        .map(|a| {
            if a.starts_with("unix://") {
                return Err(format!("{key}: unix sockets are not supported: {a}"));
            }
            let a = if a == "[::]" { "::" } else { a };
            a.parse::<IpAddr>()
                .map_err(|_| format!("{key}: invalid ip address: {a}"))
        })
        .collect()
}

/// `performance.raft_multiplier`, 1..=10.
pub(crate) fn raft_multiplier(n: i64) -> Result<u32, String> {
    if (1..=10).contains(&n) {
        Ok(n as u32)
    } else {
        Err(format!(
            "performance.raft_multiplier cannot be {n}. Must be between 1 and 10"
        ))
    }
}

/// A log level, upper-cased (`ERR` is Consul's spelling of `ERROR`; both accepted).
pub(crate) fn log_level(s: &str) -> Result<String, String> {
    let up = s.trim().to_ascii_uppercase();
    match up.as_str() {
        "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERR" | "ERROR" => Ok(up),
        _ => Err(format!(
            "log_level: invalid log level {s:?}; valid levels are TRACE, DEBUG, INFO, WARN, ERR"
        )),
    }
}

/// A gossip key: base64 of 16, 24 or 32 bytes.
pub(crate) fn encrypt_key(s: &str) -> Result<(), String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| format!("encrypt has invalid key: {e}"))?;
    match bytes.len() {
        16 | 24 | 32 => Ok(()),
        n => Err(format!(
            "encrypt has invalid key: key size must be 16, 24 or 32 bytes, got {n}"
        )),
    }
}

/// A DNS recursor: `ip` or `ip:port`, not the unspecified address.
pub(crate) fn recursor(s: &str) -> Result<(), String> {
    let ip = match s.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => match s.parse::<SocketAddr>() {
            Ok(sa) => sa.ip(),
            Err(_) => return Err(format!("recursors: invalid address {s:?}")),
        },
    };
    if ip.is_unspecified() {
        return Err("DNS recursor address cannot be 0.0.0.0, :: or [::]".to_string());
    }
    Ok(())
}

/// A node ID: a UUID in its 8-4-4-4-12 hex form; returned lower-cased.
pub(crate) fn node_id(s: &str) -> Result<String, String> {
    let t = s.trim().to_ascii_lowercase();
    let groups: Vec<&str> = t.split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    let hex = groups
        .iter()
        .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()));
    if lens == [8, 4, 4, 4, 12] && hex {
        Ok(t)
    } else {
        Err(format!("node_id: {s:?} is not a valid UUID"))
    }
}

/// `datacenter` and `primary_datacenter`: `^[a-z0-9_-]+$` after lower-casing.
pub(crate) fn basic_name(key: &str, v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err(format!("{key} cannot be empty"));
    }
    if !v
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
    {
        return Err(format!(
            "{key} can only contain lowercase alphanumeric, - or _ characters. received: {v:?}"
        ));
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
        assert!(port("ports.http", 70000)
            .unwrap_err()
            .contains("ports.http"));
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
        assert_eq!(
            duration("retry_interval", Some("10x")).unwrap_err(),
            "retry_interval: invalid duration: \"10x\": time: unknown unit \"x\" in duration \"10x\""
        );
    }
}
