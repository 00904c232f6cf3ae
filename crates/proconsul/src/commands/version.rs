//! `version`: Consul's layout with proconsul's name and version first, then the Consul version
//! it is compatible with. `-format=json` keeps Consul's fields (`Version` is the compatible
//! Consul version, since tools parse it) and adds `Proconsul`.

use proconsul_types::{CONSUL_COMPAT_VERSION, PROCONSUL_VERSION};
use serde::Serialize;

use super::parse_flags;
use crate::flags::{self, Flag};
use crate::ui;

const FLAGS: &[Flag] = &[Flag::string("format", "Output format {pretty|json}")];

/// Set at build time by release scripts; empty in development builds (the line is omitted).
const REVISION: &str = match option_env!("PROCONSUL_GIT_COMMIT") {
    Some(r) => r,
    None => "",
};
/// Consul's placeholder build date for development builds.
const BUILD_DATE: &str = match option_env!("PROCONSUL_BUILD_DATE") {
    Some(d) => d,
    None => "1970-01-01T00:00:01Z",
};
/// Consul's RPC protocol numbers (default, min, max), reported for compatibility.
const RPC: (u8, u8, u8) = (2, 2, 3);

pub fn help() -> String {
    flags::usage("\nUsage: proconsul version [options]\n", FLAGS)
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Info {
    version: &'static str,
    proconsul: &'static str,
    revision: &'static str,
    prerelease: &'static str,
    build_date: &'static str,
    #[serde(rename = "RPC")]
    rpc: Rpc,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Rpc {
    default: u8,
    min: u8,
    max: u8,
}

/// The `pretty` output.
pub fn pretty() -> String {
    let mut s =
        format!("Proconsul v{PROCONSUL_VERSION}\nConsul-compatible: v{CONSUL_COMPAT_VERSION}\n");
    if !REVISION.is_empty() {
        s.push_str(&format!("Revision {REVISION}\n"));
    }
    s.push_str(&format!("Build Date {BUILD_DATE}\n"));
    let (default, min, max) = RPC;
    let supplement = if default < max {
        format!(" (agent will automatically use protocol >{default} when speaking to compatible agents)")
    } else {
        String::new()
    };
    s.push_str(&format!(
        "Protocol {default} spoken by default, understands {min} to {max}{supplement}\n"
    ));
    s
}

fn json() -> String {
    let (default, min, max) = RPC;
    let info = Info {
        version: CONSUL_COMPAT_VERSION,
        proconsul: PROCONSUL_VERSION,
        revision: REVISION,
        prerelease: "",
        build_date: BUILD_DATE,
        rpc: Rpc { default, min, max },
    };
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"   ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    info.serialize(&mut ser).expect("static data serialises");
    String::from_utf8(buf).expect("JSON is UTF-8")
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(FLAGS, args, help)?;
    match p.str("format").unwrap_or("pretty") {
        // Consul's pretty output ends with a newline and Ui.Output adds another.
        "pretty" => ui::out(&pretty()),
        "json" => ui::out(&json()),
        other => return Err(ui::fail(format!("Unknown format: {other}"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn pretty_shape() {
        let s = super::pretty();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines[0],
            format!("Proconsul v{}", proconsul_types::PROCONSUL_VERSION)
        );
        assert_eq!(lines[1], "Consul-compatible: v1.22.0");
        assert!(lines.contains(&"Build Date 1970-01-01T00:00:01Z"));
        assert_eq!(
            *lines.last().unwrap(),
            "Protocol 2 spoken by default, understands 2 to 3 (agent will automatically use protocol >2 when speaking to compatible agents)"
        );
    }

    #[test]
    fn json_has_consul_fields() {
        let v: serde_json::Value = serde_json::from_str(&super::json()).unwrap();
        assert_eq!(v["Version"], "1.22.0");
        assert_eq!(v["RPC"]["Max"], 3);
    }
}
