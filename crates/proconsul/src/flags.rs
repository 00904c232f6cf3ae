//! Command-line flags the way Go's `flag` package reads them, because Consul's CLI is built on
//! it and scripts depend on its quirks: one or two leading dashes, `-name=value` or
//! `-name value` (never for booleans), parsing stops at the first non-flag argument or `--`,
//! and the error texts (`flag provided but not defined: -x`).
//!
//! General-purpose parsers (clap) cannot express "stop at the first positional" together with
//! single-dash long names without rewriting argv, so every command, `agent` included, uses this
//! small parser; it also yields the flag tables that the help output is generated from.

/// What a flag holds; decides whether it takes a value and how the value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Takes no value (`-x`), or an explicit `-x=false`.
    Bool,
    Str,
    /// Unsigned integer (Go `uint64`).
    Uint,
    /// Signed integer (Go `int`).
    Int,
}

/// One declared flag.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    pub name: &'static str,
    pub kind: Kind,
    /// Placeholder shown in help (`-http-addr=<address>`); empty for booleans.
    pub example: &'static str,
    pub usage: &'static str,
    /// Listed under "HTTP API Options" in help rather than "Command Options".
    pub http: bool,
}

impl Flag {
    pub const fn new(
        name: &'static str,
        kind: Kind,
        example: &'static str,
        usage: &'static str,
    ) -> Flag {
        Flag {
            name,
            kind,
            example,
            usage,
            http: false,
        }
    }

    pub const fn boolean(name: &'static str, usage: &'static str) -> Flag {
        Flag::new(name, Kind::Bool, "", usage)
    }

    pub const fn string(name: &'static str, usage: &'static str) -> Flag {
        Flag::new(name, Kind::Str, "string", usage)
    }
}

/// Flags that were set, in order, and the remaining positional arguments.
#[derive(Debug, Default)]
pub struct Parsed {
    set: Vec<(&'static str, String)>,
    pub args: Vec<String>,
}

impl Parsed {
    fn last(&self, name: &str) -> Option<&str> {
        self.set
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean flag's value (false when absent).
    pub fn bool(&self, name: &str) -> bool {
        self.last(name).and_then(parse_bool).unwrap_or(false)
    }

    /// A string flag's last value.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.last(name)
    }

    /// An unsigned flag's last value (already validated while parsing).
    pub fn u64(&self, name: &str) -> Option<u64> {
        self.last(name).and_then(|v| parse_uint(v).ok())
    }

    /// A signed flag's last value (already validated while parsing).
    pub fn i64(&self, name: &str) -> Option<i64> {
        self.last(name).and_then(|v| parse_int(v).ok())
    }

    /// Every value of a repeatable flag, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.all_of(&[name])
    }

    /// Every value of any of `names` (aliases such as `-join`/`-retry-join`), in order.
    pub fn all_of(&self, names: &[&str]) -> Vec<String> {
        self.set
            .iter()
            .filter(|(n, _)| names.contains(n))
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// Why parsing stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    /// `-h`/`-help` given without being declared.
    Help,
    /// Go's message, e.g. `flag provided but not defined: -x`.
    Invalid(String),
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)`: decimal, `0x` hex, `0o`/leading-0 octal, `0b` binary.
fn parse_uint(s: &str) -> Result<u64, ()> {
    let s = s.replace('_', "");
    let (digits, radix) = if let Some(r) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (r.to_string(), 16)
    } else if let Some(r) = s.strip_prefix("0b").or_else(|| s.strip_prefix("0B")) {
        (r.to_string(), 2)
    } else if let Some(r) = s.strip_prefix("0o").or_else(|| s.strip_prefix("0O")) {
        (r.to_string(), 8)
    } else if s.len() > 1 && s.starts_with('0') {
        (s[1..].to_string(), 8)
    } else {
        (s.clone(), 10)
    };
    if digits.is_empty() || digits.starts_with('+') {
        return Err(());
    }
    u64::from_str_radix(&digits, radix).map_err(|_| ())
}

fn parse_int(s: &str) -> Result<i64, ()> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = parse_uint(rest)?;
    if neg {
        if v <= i64::MAX as u64 + 1 {
            Ok((v as i64).wrapping_neg())
        } else {
            Err(())
        }
    } else {
        i64::try_from(v).map_err(|_| ())
    }
}

/// Parse `args` against `flags` with Go's rules.
pub fn parse(flags: &[Flag], args: &[String]) -> Result<Parsed, ParseError> {
    let mut out = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let s = &args[i];
        if s.len() < 2 || !s.starts_with('-') {
            break;
        }
        let dashes = if s.as_bytes()[1] == b'-' {
            if s.len() == 2 {
                i += 1; // "--" ends the flags and is consumed
                break;
            }
            2
        } else {
            1
        };
        let mut name = &s[dashes..];
        if name.is_empty() || name.starts_with('-') || name.starts_with('=') {
            return Err(ParseError::Invalid(format!("bad flag syntax: {s}")));
        }
        i += 1;
        let mut value = None;
        if let Some(eq) = name[1..].find('=') {
            value = Some(name[eq + 2..].to_string());
            name = &name[..eq + 1];
        }
        let Some(flag) = flags.iter().find(|f| f.name == name) else {
            if name == "help" || name == "h" {
                return Err(ParseError::Help);
            }
            return Err(ParseError::Invalid(format!(
                "flag provided but not defined: -{name}"
            )));
        };
        let value = match flag.kind {
            Kind::Bool => {
                let v = value.unwrap_or_else(|| "true".to_string());
                if parse_bool(&v).is_none() {
                    return Err(ParseError::Invalid(format!(
                        "invalid boolean value {v:?} for -{name}: parse error"
                    )));
                }
                v
            }
            _ => {
                let v = match value {
                    Some(v) => v,
                    None if i < args.len() => {
                        i += 1;
                        args[i - 1].clone()
                    }
                    None => {
                        return Err(ParseError::Invalid(format!(
                            "flag needs an argument: -{name}"
                        )))
                    }
                };
                let ok = match flag.kind {
                    Kind::Uint => parse_uint(&v).is_ok(),
                    Kind::Int => parse_int(&v).is_ok(),
                    _ => true,
                };
                if !ok {
                    return Err(ParseError::Invalid(format!(
                        "invalid value {v:?} for flag -{name}: parse error"
                    )));
                }
                v
            }
        };
        out.set.push((flag.name, value));
    }
    out.args = args[i..].to_vec();
    Ok(out)
}

/// The common HTTP flags every API command takes (Consul's `ClientFlags`).
pub const CLIENT_FLAGS: &[Flag] = &[
    Flag {
        name: "http-addr",
        kind: Kind::Str,
        example: "address",
        usage: "The `address` and port of the Consul HTTP agent. The value can be an IP \
                address or DNS address, but it must also include the port. This can also be \
                specified via the CONSUL_HTTP_ADDR environment variable. The default value is \
                http://127.0.0.1:8500. The scheme can also be set to HTTPS by setting the \
                environment variable CONSUL_HTTP_SSL=true.",
        http: true,
    },
    Flag {
        name: "token",
        kind: Kind::Str,
        example: "value",
        usage: "ACL token to use in the request. This can also be specified via the \
                CONSUL_HTTP_TOKEN environment variable. If unspecified, the query will default \
                to the token of the Consul agent at the HTTP address.",
        http: true,
    },
    Flag {
        name: "token-file",
        kind: Kind::Str,
        example: "value",
        usage: "File containing the ACL token to use in the request instead of one specified \
                via the -token argument or CONSUL_HTTP_TOKEN environment variable. This can \
                also be specified via the CONSUL_HTTP_TOKEN_FILE environment variable.",
        http: true,
    },
    Flag {
        name: "ca-file",
        kind: Kind::Str,
        example: "value",
        usage: "Path to a CA file to use for TLS when communicating with Consul. This can also \
                be specified via the CONSUL_CACERT environment variable.",
        http: true,
    },
    Flag {
        name: "ca-path",
        kind: Kind::Str,
        example: "value",
        usage: "Path to a directory of CA certificates to use for TLS when communicating with \
                Consul. This can also be specified via the CONSUL_CAPATH environment variable.",
        http: true,
    },
    Flag {
        name: "client-cert",
        kind: Kind::Str,
        example: "value",
        usage: "Path to a client cert file to use for TLS when 'verify_incoming' is enabled. \
                This can also be specified via the CONSUL_CLIENT_CERT environment variable.",
        http: true,
    },
    Flag {
        name: "client-key",
        kind: Kind::Str,
        example: "value",
        usage: "Path to a client key file to use for TLS when 'verify_incoming' is enabled. \
                This can also be specified via the CONSUL_CLIENT_KEY environment variable.",
        http: true,
    },
    Flag {
        name: "tls-server-name",
        kind: Kind::Str,
        example: "value",
        usage: "The server name to use as the SNI host when connecting via TLS. This can also \
                be specified via the CONSUL_TLS_SERVER_NAME environment variable.",
        http: true,
    },
];

/// The read flags of commands that query servers (Consul's `ServerFlags`).
pub const SERVER_FLAGS: &[Flag] = &[
    Flag {
        name: "datacenter",
        kind: Kind::Str,
        example: "value",
        usage: "Name of the datacenter to query. If unspecified, this will default to the \
                datacenter of the queried agent.",
        http: true,
    },
    Flag {
        name: "stale",
        kind: Kind::Bool,
        example: "",
        usage: "Permit any Consul server (non-leader) to respond to this request. This allows \
                for lower latency and higher throughput, but can result in stale data. This \
                option has no effect on non-read operations. The default value is false.",
        http: true,
    },
];

/// `own` followed by the given shared groups.
pub fn with(own: &[Flag], groups: &[&[Flag]]) -> Vec<Flag> {
    let mut v = own.to_vec();
    for g in groups {
        v.extend_from_slice(g);
    }
    v
}

/// Help text in Consul's layout: the command's text, then "HTTP API Options" and "Command
/// Options" with each flag's usage wrapped at 72 columns and indented by 5.
pub fn usage(text: &str, flags: &[Flag]) -> String {
    let mut out = text.trim().to_string();
    out.push_str("\n\n");
    let mut sorted: Vec<&Flag> = flags.iter().collect();
    sorted.sort_by_key(|f| f.name);
    for (title, http) in [("HTTP API Options", true), ("Command Options", false)] {
        let group: Vec<&&Flag> = sorted.iter().filter(|f| f.http == http).collect();
        if group.is_empty() {
            continue;
        }
        out.push_str(title);
        out.push_str("\n\n");
        for f in group {
            if f.example.is_empty() {
                out.push_str(&format!("  -{}\n", f.name));
            } else {
                out.push_str(&format!("  -{}=<{}>\n", f.name, f.example));
            }
            out.push_str(&wrap(&f.usage.replace('`', ""), 72 - 5, 5));
            out.push_str("\n\n");
        }
    }
    out.trim_end_matches('\n').to_string()
}

fn wrap(text: &str, width: usize, pad: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    let indent = " ".repeat(pad);
    lines
        .iter()
        .map(|l| format!("{indent}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: &[Flag] = &[
        Flag::boolean("detailed", ""),
        Flag::string("separator", ""),
        Flag::new("flags", Kind::Uint, "uint", ""),
        Flag::new("port", Kind::Int, "int", ""),
    ];

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn go_flag_forms() {
        let p = parse(
            FLAGS,
            &args(&[
                "-detailed",
                "--separator",
                ":",
                "-flags=0x10",
                "key",
                "-port=1",
            ]),
        )
        .unwrap();
        assert!(p.bool("detailed"));
        assert_eq!(p.str("separator"), Some(":"));
        assert_eq!(p.u64("flags"), Some(16));
        // parsing stops at the first positional
        assert_eq!(p.args, args(&["key", "-port=1"]));
    }

    #[test]
    fn double_dash_and_lone_dash_end_flags() {
        let p = parse(FLAGS, &args(&["--", "-detailed"])).unwrap();
        assert!(!p.bool("detailed"));
        assert_eq!(p.args, args(&["-detailed"]));
        let p = parse(FLAGS, &args(&["-", "x"])).unwrap();
        assert_eq!(p.args, args(&["-", "x"]));
    }

    #[test]
    fn booleans_take_no_separate_value() {
        let p = parse(FLAGS, &args(&["-detailed", "false"])).unwrap();
        assert!(p.bool("detailed"));
        assert_eq!(p.args, args(&["false"]));
        let p = parse(FLAGS, &args(&["-detailed=false"])).unwrap();
        assert!(!p.bool("detailed"));
    }

    #[test]
    fn negative_numbers_as_values() {
        let p = parse(FLAGS, &args(&["-port", "-1"])).unwrap();
        assert_eq!(p.i64("port"), Some(-1));
    }

    #[test]
    fn go_error_texts() {
        let e = |v: &[&str]| parse(FLAGS, &args(v)).unwrap_err();
        assert_eq!(
            e(&["-nope"]),
            ParseError::Invalid("flag provided but not defined: -nope".into())
        );
        assert_eq!(
            e(&["-separator"]),
            ParseError::Invalid("flag needs an argument: -separator".into())
        );
        assert_eq!(
            e(&["-flags=x"]),
            ParseError::Invalid("invalid value \"x\" for flag -flags: parse error".into())
        );
        assert_eq!(
            e(&["-detailed=maybe"]),
            ParseError::Invalid(
                "invalid boolean value \"maybe\" for -detailed: parse error".into()
            )
        );
        assert_eq!(
            e(&["---x"]),
            ParseError::Invalid("bad flag syntax: ---x".into())
        );
        assert_eq!(e(&["-help"]), ParseError::Help);
    }

    #[test]
    fn usage_groups_and_wraps() {
        let u = usage(
            "\nUsage: x\n",
            &with(&[Flag::boolean("wan", "Join WAN.")], &[CLIENT_FLAGS]),
        );
        // Sorted by name, as Go's flag package lists them: the TLS flags come first.
        assert!(u.starts_with(
            "Usage: x\n\nHTTP API Options\n\n  -ca-file=<value>\n     Path to a CA file"
        ));
        assert!(u.contains("\n  -http-addr=<address>\n     The address and port"));
        assert!(u.ends_with("Command Options\n\n  -wan\n     Join WAN."));
        assert!(u.lines().all(|l| l.len() <= 72), "{u}");
    }
}
