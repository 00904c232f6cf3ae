//! `acl bootstrap|policy|token|role|set-agent-token|…`, `login` and `logout`: Consul's ACL
//! commands over the `/v1/acl/*` API.
//!
//! What scripts read is kept as Consul prints it (`command/acl/*/formatter.go`): the
//! `AccessorID:`/`SecretID:` blocks with their column padding, `   <id> - <name>` link lines,
//! Go's `time.Time` layout for `Create Time`, `-format=json` as four-space-indented JSON, and
//! the `Failed to …: <error>` / `Error … : <error>` texts with exit code 1. IDs may be given as
//! unique prefixes, resolved through the list endpoints as Consul does.
//!
//! This module only talks HTTP through `proconsul_api`; it never decides ACL questions itself.

use std::io::Read;

use base64::Engine;
use proconsul_api::{AclTemplatedPolicyResponse, Client};
use proconsul_types::{
    AclAuthMethod, AclBindingRule, AclLink, AclNodeIdentity, AclPolicy, AclRole,
    AclServiceIdentity, AclTemplateVariables, AclTemplatedPolicy, AclToken,
};

use super::{client, parse_flags};
use crate::flags::{self, Flag, Parsed, CLIENT_FLAGS, SERVER_FLAGS};
use crate::ui;

/// The anonymous token's accessor, which `-accessor-id anonymous` names.
const ANONYMOUS_TOKEN_ID: &str = "00000000-0000-0000-0000-000000000002";
/// The builtin `global-management` policy, which `-id global-management` names.
const GLOBAL_MANAGEMENT_ID: &str = "00000000-0000-0000-0000-000000000001";

// ---------------------------------------------------------------------------------------------
// Shared pieces: output format, flag groups, data sources, ID prefixes, identities.
// ---------------------------------------------------------------------------------------------

/// `-format`: Consul's pretty layout or indented JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Pretty,
    Json,
}

/// The `-format` value, checked before anything is sent (Consul checks it after the call; a
/// typo should not leave a half-done change behind).
fn format_of(p: &Parsed) -> anyhow::Result<Format> {
    match p.str("format").unwrap_or("pretty") {
        "pretty" => Ok(Format::Pretty),
        "json" => Ok(Format::Json),
        other => Err(ui::fail(format!("Unknown format: {other}"))),
    }
}

/// Print `v` as `-format` asks: `pretty(v)` or Go's `json.MarshalIndent(v, "", "    ")`.
fn show<T: serde::Serialize + ?Sized>(format: Format, v: &T, pretty: impl FnOnce(&T) -> String) {
    let out = match format {
        Format::Pretty => pretty(v),
        Format::Json => ui::go_json(&v, Some("    ")),
    };
    if !out.is_empty() {
        ui::out(&out);
    }
}

const FORMAT: Flag = Flag::string("format", "Output format {pretty|json}");

fn meta_flag(what: &'static str) -> Flag {
    Flag::boolean(
        "meta",
        match what {
            "token" => {
                "Indicates that token metadata such as the content hash and raft indices should \
                 be shown for each entry"
            }
            "role" => {
                "Indicates that role metadata such as the content hash and raft indices should \
                 be shown for each entry"
            }
            "auth method" => {
                "Indicates that auth method metadata such as the raft indices should be shown \
                 for each entry"
            }
            "binding rule" => {
                "Indicates that binding rule metadata such as the raft indices should be shown \
                 for each entry"
            }
            _ => {
                "Indicates that policy metadata such as the content hash and raft indices \
                 should be shown for each entry"
            }
        },
    )
}

/// A command's own flags followed by the HTTP ones every ACL command takes.
fn spec(own: &[Flag]) -> Vec<Flag> {
    flags::with(own, &[CLIENT_FLAGS, SERVER_FLAGS])
}

/// Consul's `helpers.LoadDataSource`: `@file` reads a file, `-` reads stdin, anything else is
/// the value itself.
fn load_data_source(data: &str) -> Result<String, String> {
    if let Some(path) = data.strip_prefix('@') {
        return std::fs::read_to_string(path)
            .map_err(|e| format!("Failed to read file: {}", ui::go_io_error("open", path, &e)));
    }
    if data == "-" {
        let mut buf = String::new();
        std::io::stdin()
            .read_to_string(&mut buf)
            .map_err(|e| format!("Failed to read stdin: {e}"))?;
        return Ok(buf);
    }
    Ok(data.to_string())
}

/// The one ID among `ids` that starts with `partial`.
fn unique_prefix(kind: &str, partial: &str, ids: Vec<String>) -> Result<String, String> {
    let mut found: Option<String> = None;
    for id in ids.into_iter().filter(|id| id.starts_with(partial)) {
        if found.is_some() {
            return Err(format!("Partial {kind} ID is not unique"));
        }
        found = Some(id);
    }
    found.ok_or_else(|| format!("No such {kind} ID with prefix: {partial}"))
}

/// A full UUID is taken as given; anything shorter is a prefix of exactly one listed ID.
fn is_full_id(id: &str) -> bool {
    id.len() == 36
}

fn token_accessor(c: &Client, partial: &str) -> Result<String, String> {
    if partial == "anonymous" {
        return Ok(ANONYMOUS_TOKEN_ID.into());
    }
    if is_full_id(partial) {
        return Ok(partial.into());
    }
    let list = c.acl_token_list(&[]).map_err(|e| e.to_string())?;
    unique_prefix(
        "token",
        partial,
        list.into_iter().map(|t| t.accessor_id).collect(),
    )
}

fn policy_id(c: &Client, partial: &str) -> Result<String, String> {
    if partial == "global-management" {
        return Ok(GLOBAL_MANAGEMENT_ID.into());
    }
    if is_full_id(partial) {
        return Ok(partial.into());
    }
    let list = c.acl_policy_list().map_err(|e| e.to_string())?;
    unique_prefix("policy", partial, list.into_iter().map(|p| p.id).collect())
}

fn policy_id_by_name(c: &Client, name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("No name specified".into());
    }
    match c.acl_policy_read_by_name(name) {
        Ok(Some(p)) => Ok(p.id),
        Ok(None) => Err(format!("No such policy with name {name}")),
        Err(e) => Err(format!("Failed to find policy with name {name}: {e}")),
    }
}

fn role_id(c: &Client, partial: &str) -> Result<String, String> {
    if is_full_id(partial) {
        return Ok(partial.into());
    }
    let list = c.acl_role_list().map_err(|e| e.to_string())?;
    unique_prefix("role", partial, list.into_iter().map(|r| r.id).collect())
}

fn role_id_by_name(c: &Client, name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("No name specified".into());
    }
    let list = c.acl_role_list().map_err(|e| e.to_string())?;
    list.into_iter()
        .find(|r| r.name == name)
        .map(|r| r.id)
        .ok_or_else(|| format!("No such role with name {name}"))
}

/// `-service-identity NAME` or `NAME:DC1,DC2`.
fn service_identities(raw: &[String]) -> Result<Vec<AclServiceIdentity>, String> {
    raw.iter()
        .map(|s| {
            let parts: Vec<&str> = s.split(':').collect();
            match parts.as_slice() {
                [name] => Ok(AclServiceIdentity {
                    service_name: name.to_string(),
                    datacenters: Vec::new(),
                }),
                [name, dcs] => Ok(AclServiceIdentity {
                    service_name: name.to_string(),
                    datacenters: dcs.split(',').map(str::to_string).collect(),
                }),
                _ => Err(format!("Malformed -service-identity argument: {s:?}")),
            }
        })
        .collect()
}

/// `-node-identity NAME:DC`.
fn node_identities(raw: &[String]) -> Result<Vec<AclNodeIdentity>, String> {
    raw.iter()
        .map(|s| match s.split(':').collect::<Vec<_>>().as_slice() {
            [name, dc] => Ok(AclNodeIdentity {
                node_name: name.to_string(),
                datacenter: dc.to_string(),
            }),
            _ => Err(format!("Malformed -node-identity argument: {s:?}")),
        })
        .collect()
}

/// `-templated-policy NAME` with its `-var name:VALUE` variables.
fn templated_policy(name: &str, vars: &[String]) -> Result<AclTemplatedPolicy, String> {
    let mut variables = AclTemplateVariables::default();
    for v in vars {
        match v.split_once(':') {
            Some(("name", value)) => variables.name = value.to_string(),
            Some((key, _)) => {
                return Err(format!("Unknown templated policy variable {key:?}"));
            }
            None => {
                return Err(format!(
                    "Malformed -var argument: {v:?}, expecting VariableName:Value"
                ))
            }
        }
    }
    Ok(AclTemplatedPolicy {
        template_name: name.to_string(),
        template_variables: (!variables.name.is_empty()).then_some(variables),
        datacenters: Vec::new(),
    })
}

/// A Go duration flag's value in nanoseconds (0 when absent), with Go's `flag` error.
fn duration_flag(p: &Parsed, name: &str, help: fn() -> String) -> anyhow::Result<i64> {
    let Some(v) = p.str(name) else {
        return Ok(0);
    };
    proconsul_types::duration::parse_nanos(v).map_err(|_| {
        ui::fail(format!(
            "invalid value {v:?} for flag -{name}: parse error\n{}",
            help()
        ))
    })
}

// ---------------------------------------------------------------------------------------------
// Formatters (Consul's pretty layouts).
// ---------------------------------------------------------------------------------------------

/// Go's `time.Time.String()` of an RFC 3339 timestamp: `2026-11-25 09:10:08.727 +0000 UTC`
/// (trailing zeros of the fraction dropped). Empty is Go's zero time.
fn go_time(rfc: &str) -> String {
    if rfc.is_empty() {
        return "0001-01-01 00:00:00 +0000 UTC".into();
    }
    let Some((date, rest)) = rfc.split_once(['T', 't']) else {
        return rfc.to_string();
    };
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(zone_at);
    let clock = match clock.split_once('.') {
        Some((hms, frac)) => match frac.trim_end_matches('0') {
            "" => hms.to_string(),
            f => format!("{hms}.{f}"),
        },
        None => clock.to_string(),
    };
    let zone = match zone {
        "" | "Z" | "z" => "+0000 UTC".to_string(),
        z => {
            let z = z.replace(':', "");
            format!("{z} {z}")
        }
    };
    format!("{date} {clock} {zone}")
}

/// Go's `%x` of the hash bytes (the API carries them base64-encoded).
fn hash_hex(b64: &str) -> String {
    match base64::engine::general_purpose::STANDARD.decode(b64) {
        Ok(bytes) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        Err(_) => b64.to_string(),
    }
}

fn links(out: &mut String, title: &str, indent: &str, links: &[AclLink]) {
    if !links.is_empty() {
        out.push_str(&format!("{indent}{title}:\n"));
        for l in links {
            out.push_str(&format!("{indent}   {} - {}\n", l.id, l.name));
        }
    }
}

fn identities(
    out: &mut String,
    indent: &str,
    services: &[AclServiceIdentity],
    nodes: &[AclNodeIdentity],
    templated: &[AclTemplatedPolicy],
) {
    if !services.is_empty() {
        out.push_str(&format!("{indent}Service Identities:\n"));
        for s in services {
            let dcs = if s.datacenters.is_empty() {
                "all".to_string()
            } else {
                s.datacenters.join(", ")
            };
            out.push_str(&format!(
                "{indent}   {} (Datacenters: {dcs})\n",
                s.service_name
            ));
        }
    }
    if !nodes.is_empty() {
        out.push_str(&format!("{indent}Node Identities:\n"));
        for n in nodes {
            out.push_str(&format!(
                "{indent}   {} (Datacenter: {})\n",
                n.node_name, n.datacenter
            ));
        }
    }
    if !templated.is_empty() {
        out.push_str(&format!("{indent}Templated Policies:\n"));
        for t in templated {
            out.push_str(&format!("{indent}   {}\n", t.template_name));
            if let Some(v) = t.template_variables.as_ref().filter(|v| !v.name.is_empty()) {
                out.push_str(&format!("{indent}      Name: {}\n", v.name));
            }
            let dcs = if t.datacenters.is_empty() {
                "all".to_string()
            } else {
                t.datacenters.join(", ")
            };
            out.push_str(&format!("{indent}      Datacenters: {dcs}\n"));
        }
    }
}

/// Consul's `FormatToken` (and, for lists, `formatTokenListEntry`: the same lines).
fn format_token(t: &AclToken, meta: bool) -> String {
    let mut s = String::new();
    s.push_str(&format!("AccessorID:       {}\n", t.accessor_id));
    s.push_str(&format!("SecretID:         {}\n", t.secret_id));
    s.push_str(&format!("Description:      {}\n", t.description));
    s.push_str(&format!("Local:            {}\n", t.local));
    if !t.auth_method.is_empty() {
        s.push_str(&format!(
            "Auth Method:      {} (Namespace: )\n",
            t.auth_method
        ));
    }
    s.push_str(&format!("Create Time:      {}\n", go_time(&t.create_time)));
    if !t.expiration_time.is_empty() {
        s.push_str(&format!(
            "Expiration Time:  {}\n",
            go_time(&t.expiration_time)
        ));
    }
    if meta {
        s.push_str(&format!("Hash:             {}\n", hash_hex(&t.hash)));
        s.push_str(&format!("Create Index:     {}\n", t.create_index));
        s.push_str(&format!("Modify Index:     {}\n", t.modify_index));
    }
    links(&mut s, "Policies", "", &t.policies);
    links(&mut s, "Roles", "", &t.roles);
    identities(
        &mut s,
        "",
        &t.service_identities,
        &t.node_identities,
        &t.templated_policies,
    );
    s
}

/// Consul's `FormatTokenList`: the entries, a blank line between them.
fn format_token_list(list: &[AclToken], meta: bool) -> String {
    list.iter()
        .map(|t| format_token(t, meta))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Consul's `FormatPolicy`: the rules end the output as they are.
fn format_policy(p: &AclPolicy, meta: bool) -> String {
    let mut s = String::new();
    s.push_str(&format!("ID:           {}\n", p.id));
    s.push_str(&format!("Name:         {}\n", p.name));
    s.push_str(&format!("Description:  {}\n", p.description));
    s.push_str(&format!("Datacenters:  {}\n", p.datacenters.join(", ")));
    if meta {
        s.push_str(&format!("Hash:         {}\n", hash_hex(&p.hash)));
        s.push_str(&format!("Create Index: {}\n", p.create_index));
        s.push_str(&format!("Modify Index: {}\n", p.modify_index));
    }
    s.push_str("Rules:\n");
    s.push_str(p.rules.as_deref().unwrap_or(""));
    s
}

/// Consul's `FormatPolicyList`: a `<name>:` block per policy.
fn format_policy_list(list: &[AclPolicy], meta: bool) -> String {
    let mut s = String::new();
    for p in list {
        s.push_str(&format!("{}:\n", p.name));
        s.push_str(&format!("   ID:           {}\n", p.id));
        s.push_str(&format!("   Description:  {}\n", p.description));
        s.push_str(&format!("   Datacenters:  {}\n", p.datacenters.join(", ")));
        if meta {
            s.push_str(&format!("   Hash:         {}\n", hash_hex(&p.hash)));
            s.push_str(&format!("   Create Index: {}\n", p.create_index));
            s.push_str(&format!("   Modify Index: {}\n", p.modify_index));
        }
    }
    s
}

/// Consul's `FormatRole`.
fn format_role(r: &AclRole, meta: bool) -> String {
    let mut s = String::new();
    s.push_str(&format!("ID:           {}\n", r.id));
    s.push_str(&format!("Name:         {}\n", r.name));
    s.push_str(&format!("Description:  {}\n", r.description));
    if meta {
        s.push_str(&format!("Hash:         {}\n", hash_hex(&r.hash)));
        s.push_str(&format!("Create Index: {}\n", r.create_index));
        s.push_str(&format!("Modify Index: {}\n", r.modify_index));
    }
    links(&mut s, "Policies", "", &r.policies);
    identities(
        &mut s,
        "",
        &r.service_identities,
        &r.node_identities,
        &r.templated_policies,
    );
    s
}

/// Consul's `FormatRoleList`: a `<name>:` block per role, everything indented by three.
fn format_role_list(list: &[AclRole], meta: bool) -> String {
    let mut s = String::new();
    for r in list {
        s.push_str(&format!("{}:\n", r.name));
        s.push_str(&format!("   ID:           {}\n", r.id));
        s.push_str(&format!("   Description:  {}\n", r.description));
        if meta {
            s.push_str(&format!("   Hash:         {}\n", hash_hex(&r.hash)));
            s.push_str(&format!("   Create Index: {}\n", r.create_index));
            s.push_str(&format!("   Modify Index: {}\n", r.modify_index));
        }
        links(&mut s, "Policies", "   ", &r.policies);
        identities(
            &mut s,
            "   ",
            &r.service_identities,
            &r.node_identities,
            &r.templated_policies,
        );
    }
    s
}

// ---------------------------------------------------------------------------------------------
// acl (parent)
// ---------------------------------------------------------------------------------------------

pub fn help() -> String {
    "Usage: proconsul acl <subcommand> [options] [args]

  This command has subcommands for interacting with Consul's ACLs.
  Here are some simple examples, and more detailed examples are available
  in the subcommands or the documentation.

  Bootstrap ACLs:

      $ proconsul acl bootstrap

  List all ACL tokens:

      $ proconsul acl token list

  Create a new ACL policy:

      $ proconsul acl policy create -name \"new-policy\" \\
                                    -description \"This is an example policy\" \\
                                    -valid-datacenter \"dc1\" \\
                                    -valid-datacenter \"dc2\" \\
                                    -rules @rules.hcl

  Set the default agent token:

      $ proconsul acl set-agent-token default 0bc6bc46-f25e-4262-b2d9-ffbe1d96be6f

  For more examples, ask for subcommand help or view the documentation."
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// acl bootstrap
// ---------------------------------------------------------------------------------------------

fn bootstrap_flags() -> Vec<Flag> {
    spec(&[FORMAT])
}

pub fn bootstrap_help() -> String {
    flags::usage(
        "
Usage: proconsul acl bootstrap [options]

  The bootstrap command will request Consul to generate a new token with
  unlimited privileges to use for management purposes and output its details.
  This can only be done once and afterwards bootstrapping will be disabled. If
  all tokens are lost and you need to bootstrap again you can follow the
  bootstrap reset procedure.
",
        &bootstrap_flags(),
    )
}

pub fn bootstrap(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&bootstrap_flags(), args, bootstrap_help)?;
    match p.args.len() {
        0 => {}
        // Consul can take the new token's secret as an argument; the servers here always
        // generate it, so refuse rather than hand back a different secret than was asked for.
        1 => {
            return Err(ui::fail(
                "Failed ACL bootstrapping: choosing the bootstrap token's secret is not supported",
            ))
        }
        _ => return Err(ui::fail("This command takes up to one argument")),
    }
    let format = format_of(&p)?;
    let c = client(&p)?;
    let t = c
        .acl_bootstrap()
        .map_err(|e| ui::fail(format!("Failed ACL bootstrapping: {e}")))?;
    show(format, &t, |t| format_token(t, false));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// acl policy
// ---------------------------------------------------------------------------------------------

pub fn policy_help() -> String {
    "Usage: proconsul acl policy <subcommand> [options] [args]

  This command has subcommands for managing Consul's ACL policies.
  Here are some simple examples, and more detailed examples are available
  in the subcommands or the documentation.

  Create a new ACL policy:

      $ proconsul acl policy create -name \"new-policy\" \\
                                    -description \"This is an example policy\" \\
                                    -valid-datacenter \"dc1\" \\
                                    -valid-datacenter \"dc2\" \\
                                    -rules @rules.hcl

  List all policies:

      $ proconsul acl policy list

  Update a policy:

      $ proconsul acl policy update -name \"other-policy\" -valid-datacenter \"dc1\"

  Read a policy:

      $ proconsul acl policy read -id 0479e93e-091c-4475-9b06-79a004765c24

  Delete a policy:

      $ proconsul acl policy delete -name \"my-policy\"

  For more examples, ask for subcommand help or view the documentation."
        .to_string()
}

const VALID_DC: Flag = Flag::string(
    "valid-datacenter",
    "Datacenter that the policy should be valid within. This flag may be specified multiple \
     times",
);
const RULES: Flag = Flag::string(
    "rules",
    "The policy rules. May be prefixed with '@' to indicate that the value is a file path to \
     load the rules from. '-' may also be given to indicate that the rules are available on \
     stdin",
);

fn policy_create_flags() -> Vec<Flag> {
    spec(&[
        meta_flag("policy"),
        Flag::string("name", "The new policy's name. This flag is required."),
        Flag::string("description", "A description of the policy"),
        VALID_DC,
        RULES,
        FORMAT,
    ])
}

pub fn policy_create_help() -> String {
    flags::usage(
        "
Usage: proconsul acl policy create -name NAME [options]

    The -rules option values allows loading the value from stdin, a file
    or the raw value. To use stdin pass '-' as the value. To load the value
    from a file prefix the value with an '@'. Any other values will be used
    directly.

    Create a new policy:

        $ proconsul acl policy create -name \"new-policy\" \\
                                      -description \"This is an example policy\" \\
                                      -valid-datacenter \"dc1\" \\
                                      -valid-datacenter \"dc2\" \\
                                      -rules @rules.hcl
",
        &policy_create_flags(),
    )
}

pub fn policy_create(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&policy_create_flags(), args, policy_create_help)?;
    let name = p.str("name").unwrap_or_default();
    if name.is_empty() {
        return Err(ui::fail(format!(
            "Missing require '-name' flag\n{}",
            policy_create_help()
        )));
    }
    let format = format_of(&p)?;
    let c = client(&p)?;
    let rules = load_data_source(p.str("rules").unwrap_or_default())
        .map_err(|e| ui::fail(format!("Error loading rules: {e}")))?;
    let policy = AclPolicy {
        name: name.to_string(),
        description: p.str("description").unwrap_or_default().to_string(),
        datacenters: p.all("valid-datacenter"),
        rules: Some(rules),
        ..AclPolicy::default()
    };
    let created = c
        .acl_policy_create(&policy)
        .map_err(|e| ui::fail(format!("Failed to create new policy: {e}")))?;
    show(format, &created, |v| format_policy(v, p.bool("meta")));
    Ok(())
}

fn policy_list_flags() -> Vec<Flag> {
    spec(&[meta_flag("policy"), FORMAT])
}

pub fn policy_list_help() -> String {
    flags::usage(
        "
Usage: proconsul acl policy list [options]

    Lists all the ACL policies.

    Example:

        $ proconsul acl policy list
",
        &policy_list_flags(),
    )
}

pub fn policy_list(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&policy_list_flags(), args, policy_list_help)?;
    let format = format_of(&p)?;
    let c = client(&p)?;
    let list = c
        .acl_policy_list()
        .map_err(|e| ui::fail(format!("Failed to retrieve the policy list: {e}")))?;
    show(format, &list, |v| format_policy_list(v, p.bool("meta")));
    Ok(())
}

fn policy_read_flags() -> Vec<Flag> {
    spec(&[
        meta_flag("policy"),
        Flag::string(
            "id",
            "The ID of the policy to read. It may be specified as a unique ID prefix but will \
             error if the prefix matches multiple policy IDs",
        ),
        Flag::string("name", "The name of the policy to read."),
        FORMAT,
    ])
}

pub fn policy_read_help() -> String {
    flags::usage(
        "
Usage: proconsul acl policy read [options] POLICY

    This command will retrieve and print out the details
    of a single policy.

    Read:

        $ proconsul acl policy read -id fdabbcb5-9de5-4b1a-961f-77214ae88cba

    Read by name:

        $ proconsul acl policy read -name my-policy
",
        &policy_read_flags(),
    )
}

pub fn policy_read(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&policy_read_flags(), args, policy_read_help)?;
    let (id, name) = (
        p.str("id").unwrap_or_default(),
        p.str("name").unwrap_or_default(),
    );
    if id.is_empty() && name.is_empty() {
        return Err(ui::fail("Must specify either the -id or -name parameters"));
    }
    let format = format_of(&p)?;
    let c = client(&p)?;
    let (found, what) = if !id.is_empty() {
        let id =
            policy_id(&c, id).map_err(|e| ui::fail(format!("Error determining policy ID: {e}")))?;
        (c.acl_policy_read(&id), format!("id:{id}"))
    } else {
        (c.acl_policy_read_by_name(name), format!("name:{name}"))
    };
    let policy = found
        .map_err(|e| ui::fail(format!("Error reading policy {what:?}: {e}")))?
        .ok_or_else(|| {
            ui::fail(format!(
                "Error policy not found: {}",
                if name.is_empty() { id } else { name }
            ))
        })?;
    show(format, &policy, |v| format_policy(v, p.bool("meta")));
    Ok(())
}

fn policy_update_flags() -> Vec<Flag> {
    spec(&[
        meta_flag("policy"),
        Flag::string(
            "id",
            "The ID of the policy to update. It may be specified as a unique ID prefix but will \
             error if the prefix matches multiple policy IDs",
        ),
        Flag::string("name", "The policies name."),
        Flag::string("description", "A description of the policy"),
        VALID_DC,
        RULES,
        Flag::boolean(
            "no-merge",
            "Do not merge the current policy information with what is provided to the command. \
             Instead overwrite all fields with the exception of the policy ID which is \
             immutable.",
        ),
        FORMAT,
    ])
}

pub fn policy_update_help() -> String {
    flags::usage(
        "
Usage: proconsul acl policy update [options]

  Updates a policy. By default it will merge the policy information with its
  current state so that you do not have to provide all parameters. This
  behavior can be disabled by passing -no-merge.

  Rename the policy:

          $ proconsul acl policy update -id abcd -name \"better-name\"

  Override all policy attributes:

          # this will remove any datacenter scope if provided and will remove
          # the description
          $ proconsul acl policy update -id abcd -name \"better-name\" -rules @rules.hcl
",
        &policy_update_flags(),
    )
}

pub fn policy_update(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&policy_update_flags(), args, policy_update_help)?;
    let (id, name) = (
        p.str("id").unwrap_or_default(),
        p.str("name").unwrap_or_default(),
    );
    if id.is_empty() && name.is_empty() {
        return Err(ui::fail("Must specify either the -id or -name parameters"));
    }
    let format = format_of(&p)?;
    let c = client(&p)?;
    let id = if !id.is_empty() {
        policy_id(&c, id)
    } else {
        policy_id_by_name(&c, name)
    }
    .map_err(|e| ui::fail(format!("Error determining policy ID: {e}")))?;
    let rules = load_data_source(p.str("rules").unwrap_or_default())
        .map_err(|e| ui::fail(format!("Error loading data source: {e}")))?;
    let datacenters = p.all("valid-datacenter");
    let updated = if p.bool("no-merge") {
        AclPolicy {
            id: id.clone(),
            name: name.to_string(),
            description: p.str("description").unwrap_or_default().to_string(),
            datacenters,
            rules: Some(rules),
            ..AclPolicy::default()
        }
    } else {
        let current = c
            .acl_policy_read(&id)
            .map_err(|e| ui::fail(format!("Error reading policy {id:?}: {e}")))?
            .ok_or_else(|| {
                ui::fail(format!(
                    "Error reading policy {id:?}: Requested policy does not exist: ACL not found"
                ))
            })?;
        AclPolicy {
            id: id.clone(),
            name: p.str("name").map_or(current.name, str::to_string),
            description: p
                .str("description")
                .map_or(current.description, str::to_string),
            datacenters: if datacenters.is_empty() {
                current.datacenters
            } else {
                datacenters
            },
            rules: if p.str("rules").is_some() {
                Some(rules)
            } else {
                current.rules
            },
            ..AclPolicy::default()
        }
    };
    let out = c
        .acl_policy_update(&updated)
        .map_err(|e| ui::fail(format!("Error updating policy {id:?}: {e}")))?;
    show(format, &out, |v| format_policy(v, p.bool("meta")));
    Ok(())
}

fn policy_delete_flags() -> Vec<Flag> {
    spec(&[
        Flag::string(
            "id",
            "The ID of the policy to delete. It may be specified as a unique ID prefix but will \
             error if the prefix matches multiple policy IDs",
        ),
        Flag::string("name", "The name of the policy to delete."),
    ])
}

pub fn policy_delete_help() -> String {
    flags::usage(
        "
Usage: proconsul acl policy delete [options] -id POLICY

    Deletes an ACL policy by providing either the ID or a unique ID prefix.

    Delete by prefix:

        $ proconsul acl policy delete -id b6b85

    Delete by full ID:

        $ proconsul acl policy delete -id b6b856da-5193-4e78-845a-7d61ca8371ba
",
        &policy_delete_flags(),
    )
}

pub fn policy_delete(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&policy_delete_flags(), args, policy_delete_help)?;
    let (id, name) = (
        p.str("id").unwrap_or_default(),
        p.str("name").unwrap_or_default(),
    );
    if id.is_empty() && name.is_empty() {
        return Err(ui::fail("Must specify either the -id or -name parameters"));
    }
    let c = client(&p)?;
    let id = if !id.is_empty() {
        policy_id(&c, id)
    } else {
        policy_id_by_name(&c, name)
    }
    .map_err(|e| ui::fail(format!("Error determining policy ID: {e}")))?;
    c.acl_policy_delete(&id)
        .map_err(|e| ui::fail(format!("Error deleting policy {id:?}: {e}")))?;
    ui::out(&format!("Policy {id:?} deleted successfully"));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// acl token
// ---------------------------------------------------------------------------------------------

pub fn token_help() -> String {
    "Usage: proconsul acl token <subcommand> [options] [args]

  This command has subcommands for managing Consul's ACL tokens.
  Here are some simple examples, and more detailed examples are available
  in the subcommands or the documentation.

  Create a new ACL token:

      $ proconsul acl token create -description \"This is an example token\" \\
                                   -policy-id 06acc965
  List all tokens:

      $ proconsul acl token list

  Update a token:

      $ proconsul acl token update -accessor-id 986193 -description \"WonderToken\"

  Read a token with an accessor ID:

      $ proconsul acl token read -accessor-id 986193

  Delete a token:

      $ proconsul acl token delete -accessor-id 986193

  For more examples, ask for subcommand help or view the documentation."
        .to_string()
}

const ACCESSOR_DEPRECATED: Flag = Flag::string("id", "DEPRECATED. Use -accessor-id instead.");

/// `-accessor-id`, or the deprecated `-id` with Consul's warning; `missing` when neither.
fn accessor_arg(p: &Parsed, missing: &str, warning: &str) -> anyhow::Result<String> {
    match (p.str("accessor-id"), p.str("id")) {
        (Some(a), _) if !a.is_empty() => Ok(a.to_string()),
        (_, Some(id)) if !id.is_empty() => {
            ui::err(warning);
            Ok(id.to_string())
        }
        _ => Err(ui::fail(missing.to_string())),
    }
}

const TOKEN_LINK_FLAGS: &[Flag] = &[
    Flag::string(
        "policy-id",
        "ID of a policy to use for this token. May be specified multiple times",
    ),
    Flag::string(
        "policy-name",
        "Name of a policy to use for this token. May be specified multiple times",
    ),
    Flag::string(
        "role-id",
        "ID of a role to use for this token. May be specified multiple times",
    ),
    Flag::string(
        "role-name",
        "Name of a role to use for this token. May be specified multiple times",
    ),
    Flag::string(
        "service-identity",
        "Name of a service identity to use for this token. May be specified multiple times. \
         Format is the SERVICENAME or SERVICENAME:DATACENTER1,DATACENTER2,...",
    ),
    Flag::string(
        "node-identity",
        "Name of a node identity to use for this token. May be specified multiple times. \
         Format is NODENAME:DATACENTER",
    ),
    Flag::string(
        "templated-policy",
        "The templated policy name. Use -var flag to specify variables when required.",
    ),
    Flag::string(
        "var",
        "Templated policy variables. Must be used in combination with -templated-policy flag \
         to specify required variables. Format is VariableName:Value",
    ),
];

fn token_create_flags() -> Vec<Flag> {
    let mut own = vec![
        Flag::string(
            "accessor",
            "Create the token with this Accessor ID. It must be a UUID. If not specified one \
             will be auto-generated",
        ),
        Flag::string(
            "secret",
            "Create the token with this Secret ID. It must be a UUID. If not specified one will \
             be auto-generated",
        ),
        meta_flag("token"),
        Flag::boolean("local", "Create this as a datacenter local token"),
        Flag::string("description", "A description of the token"),
        Flag::new(
            "expires-ttl",
            flags::Kind::Str,
            "duration",
            "Duration of time this token should be valid for",
        ),
        FORMAT,
    ];
    own.extend_from_slice(TOKEN_LINK_FLAGS);
    spec(&own)
}

pub fn token_create_help() -> String {
    flags::usage(
        "
Usage: proconsul acl token create [options]

  When creating a new token policies may be linked using either the -policy-id
  or the -policy-name options. When specifying policies by IDs you may use a
  unique prefix of the UUID as a shortcut for specifying the entire UUID.

  Create a new token:

          $ proconsul acl token create -description \"Replication token\" \\
                                       -policy-id b52fc3de-5 \\
                                       -policy-name \"acl-replication\" \\
                                       -role-id c630d4ef-6 \\
                                       -role-name \"db-updater\" \\
                                       -service-identity \"web\" \\
                                       -service-identity \"db:east,west\"
",
        &token_create_flags(),
    )
}

/// Policy links from `-policy-name` (the servers resolve names) and `-policy-id` (prefixes
/// resolved here).
fn policy_links(c: &Client, names: &[String], ids: &[String]) -> anyhow::Result<Vec<AclLink>> {
    let mut out: Vec<AclLink> = names
        .iter()
        .map(|n| AclLink {
            id: String::new(),
            name: n.clone(),
        })
        .collect();
    for id in ids {
        let full = policy_id(c, id)
            .map_err(|e| ui::fail(format!("Error resolving policy ID {id}: {e}")))?;
        out.push(AclLink {
            id: full,
            name: String::new(),
        });
    }
    Ok(out)
}

/// Role links, as [`policy_links`].
fn role_links(c: &Client, names: &[String], ids: &[String]) -> anyhow::Result<Vec<AclLink>> {
    let mut out: Vec<AclLink> = names
        .iter()
        .map(|n| AclLink {
            id: String::new(),
            name: n.clone(),
        })
        .collect();
    for id in ids {
        let full =
            role_id(c, id).map_err(|e| ui::fail(format!("Error resolving role ID {id}: {e}")))?;
        out.push(AclLink {
            id: full,
            name: String::new(),
        });
    }
    Ok(out)
}

pub fn token_create(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&token_create_flags(), args, token_create_help)?;
    let grants = [
        "policy-name",
        "policy-id",
        "role-name",
        "role-id",
        "service-identity",
        "node-identity",
        "templated-policy",
    ];
    if grants.iter().all(|g| p.all(g).is_empty()) {
        return Err(ui::fail(
            "Cannot create a token without specifying -policy-name, -policy-id, -role-name, \
             -role-id, -service-identity, -node-identity, or -templated-policy at least once",
        ));
    }
    let ttl = duration_flag(&p, "expires-ttl", token_create_help)?;
    let format = format_of(&p)?;
    let c = client(&p)?;
    let mut token = AclToken {
        accessor_id: p.str("accessor").unwrap_or_default().to_string(),
        secret_id: p.str("secret").unwrap_or_default().to_string(),
        description: p.str("description").unwrap_or_default().to_string(),
        local: p.bool("local"),
        ..AclToken::default()
    };
    if ttl > 0 {
        token.expiration_ttl = proconsul_types::duration::format_nanos(ttl);
    }
    token.service_identities = service_identities(&p.all("service-identity")).map_err(ui::fail)?;
    token.node_identities = node_identities(&p.all("node-identity")).map_err(ui::fail)?;
    if let Some(name) = p.str("templated-policy") {
        token.templated_policies = vec![templated_policy(name, &p.all("var")).map_err(ui::fail)?];
    }
    token.policies = policy_links(&c, &p.all("policy-name"), &p.all("policy-id"))?;
    token.roles = role_links(&c, &p.all("role-name"), &p.all("role-id"))?;
    let created = c
        .acl_token_create(&token)
        .map_err(|e| ui::fail(format!("Failed to create new token: {e}")))?;
    show(format, &created, |t| format_token(t, p.bool("meta")));
    Ok(())
}

fn token_list_flags() -> Vec<Flag> {
    spec(&[meta_flag("token"), FORMAT])
}

pub fn token_list_help() -> String {
    flags::usage(
        "
Usage: proconsul acl token list [options]

  List all the ACL tokens

          $ proconsul acl token list
",
        &token_list_flags(),
    )
}

pub fn token_list(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&token_list_flags(), args, token_list_help)?;
    let format = format_of(&p)?;
    let c = client(&p)?;
    let list = c
        .acl_token_list(&[])
        .map_err(|e| ui::fail(format!("Failed to retrieve the token list: {e}")))?;
    show(format, &list, |v| format_token_list(v, p.bool("meta")));
    Ok(())
}

fn token_read_spec(with_deprecated: bool) -> Vec<Flag> {
    let mut own = vec![
        meta_flag("token"),
        Flag::boolean(
            "self",
            "Indicates that the current HTTP token should be read by secret ID instead of \
             expecting a -accessor-id option",
        ),
        Flag::string(
            "accessor-id",
            "The Accessor ID of the token to read. It may be specified as a unique ID prefix \
             but will error if the prefix matches multiple token Accessor IDs",
        ),
        FORMAT,
    ];
    if with_deprecated {
        own.push(ACCESSOR_DEPRECATED);
    }
    spec(&own)
}

pub fn token_read_help() -> String {
    flags::usage(
        "
Usage: proconsul acl token read [options] -accessor-id TOKENID

  This command will retrieve and print out the details of
  a single token.

  Using a partial ID:

          $ proconsul acl token read -accessor-id 4be56c77-82

  Using the full ID:

          $ proconsul acl token read -accessor-id 4be56c77-8244-4c7d-b08c-667b8c71baed
",
        &token_read_spec(false),
    )
}

pub fn token_read(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&token_read_spec(true), args, token_read_help)?;
    let format = format_of(&p)?;
    let c = client(&p)?;
    let t = if p.bool("self") {
        c.acl_token_read_self()
            .map_err(|e| ui::fail(format!("Error reading token: {e}")))?
    } else {
        let given = accessor_arg(
            &p,
            "Must specify the -accessor-id parameter",
            "Use the -accessor-id parameter to specify token by Accessor ID",
        )?;
        let id = token_accessor(&c, &given)
            .map_err(|e| ui::fail(format!("Error determining token ID: {e}")))?;
        c.acl_token_read(&id)
            .map_err(|e| ui::fail(format!("Error reading token {id:?}: {e}")))?
    };
    show(format, &t, |t| format_token(t, p.bool("meta")));
    Ok(())
}

fn token_update_spec(with_deprecated: bool) -> Vec<Flag> {
    let mut own = vec![
        meta_flag("token"),
        Flag::string(
            "accessor-id",
            "The Accessor ID of the token to update. It may be specified as a unique ID prefix \
             but will error if the prefix matches multiple token Accessor IDs",
        ),
        Flag::string("description", "A description of the token"),
        Flag::string(
            "policy-id",
            "ID of a policy to use for this token. Overwrites existing policies. May be \
             specified multiple times",
        ),
        Flag::string(
            "append-policy-id",
            "ID of a policy to use for this token. The token retains existing policies. May be \
             specified multiple times",
        ),
        Flag::string(
            "policy-name",
            "Name of a policy to use for this token. Overwrites existing policies. May be \
             specified multiple times",
        ),
        Flag::string(
            "append-policy-name",
            "Name of a policy to add to this token. The token retains existing policies. May \
             be specified multiple times",
        ),
        Flag::string(
            "role-id",
            "ID of a role to use for this token. Overwrites existing roles. May be specified \
             multiple times",
        ),
        Flag::string(
            "role-name",
            "Name of a role to use for this token. Overwrites existing roles. May be specified \
             multiple times",
        ),
        Flag::string(
            "append-role-id",
            "ID of a role to add to this token. The token retains existing roles. May be \
             specified multiple times",
        ),
        Flag::string(
            "append-role-name",
            "Name of a role to add to this token. The token retains existing roles. May be \
             specified multiple times",
        ),
        Flag::string(
            "service-identity",
            "Name of a service identity to use for this token. May be specified multiple times. \
             Format is the SERVICENAME or SERVICENAME:DATACENTER1,DATACENTER2,...",
        ),
        Flag::string(
            "append-service-identity",
            "Name of a service identity to use for this token. This token retains existing \
             service identities. May be specified multiple times. Format is the SERVICENAME or \
             SERVICENAME:DATACENTER1,DATACENTER2,...",
        ),
        Flag::string(
            "node-identity",
            "Name of a node identity to use for this token. May be specified multiple times. \
             Format is NODENAME:DATACENTER",
        ),
        Flag::string(
            "append-node-identity",
            "Name of a node identity to use for this token. This token retains existing node \
             identities. May be specified multiple times. Format is NODENAME:DATACENTER",
        ),
        FORMAT,
    ];
    if with_deprecated {
        own.extend_from_slice(&[
            ACCESSOR_DEPRECATED,
            Flag::boolean(
                "merge-policies",
                "DEPRECATED. Use -append-policy-id or -append-policy-name instead.",
            ),
            Flag::boolean(
                "merge-roles",
                "DEPRECATED. Use -append-role-id or -append-role-name instead.",
            ),
            Flag::boolean(
                "merge-service-identities",
                "DEPRECATED. Use -append-service-identity instead.",
            ),
            Flag::boolean(
                "merge-node-identities",
                "DEPRECATED. Use -append-node-identity instead.",
            ),
        ]);
    }
    spec(&own)
}

pub fn token_update_help() -> String {
    flags::usage(
        "
Usage: proconsul acl token update [options]

    This command will update a token. Some parts such as marking the token local
    cannot be changed.

    Update a token description and take the policies from the existing token:

        $ proconsul acl token update -accessor-id abcd -description \"replication\"

    Update all editable fields of the token:

        $ proconsul acl token update -accessor-id abcd \\
                                     -description \"replication\" \\
                                     -policy-name \"token-replication\" \\
                                     -role-name \"db-updater\"
",
        &token_update_spec(false),
    )
}

/// Add `new` links to `current`, skipping those already there (by ID, else by name).
fn merge_links(current: &mut Vec<AclLink>, new: Vec<AclLink>) {
    for l in new {
        let present = current.iter().any(|c| {
            (!l.id.is_empty() && c.id == l.id) || (!l.name.is_empty() && c.name == l.name)
        });
        if !present {
            current.push(l);
        }
    }
}

/// What `-X` (replace) and `-append-X` (add) of one kind of grant ask for.
enum Change<T> {
    Keep,
    Replace(Vec<T>),
    Append(Vec<T>),
}

fn change_of<T>(replace: Vec<T>, append: Vec<T>, merge_flag: bool) -> Change<T> {
    if !append.is_empty() {
        Change::Append(append)
    } else if replace.is_empty() {
        Change::Keep
    } else if merge_flag {
        Change::Append(replace)
    } else {
        Change::Replace(replace)
    }
}

pub fn token_update(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&token_update_spec(true), args, token_update_help)?;
    let given = accessor_arg(
        &p,
        "Cannot update a token without specifying the -accessor-id parameter",
        "Use the -accessor-id parameter to specify token by Accessor ID",
    )?;
    let conflict = |kind: &str, flag: &str, plural: &str| {
        ui::fail(format!(
            "Cannot combine the use of {flag} flag with append-{kind}. To set or overwrite \
             existing {plural}, use -{kind}. To append to existing {plural}, use -append-{kind}."
        ))
    };
    for (set, append, kind, plural) in [
        (
            "service-identity",
            "append-service-identity",
            "service-identity",
            "service identities",
        ),
        (
            "node-identity",
            "append-node-identity",
            "node-identity",
            "node identities",
        ),
    ] {
        if !p.all(set).is_empty() && !p.all(append).is_empty() {
            return Err(conflict(kind, set, plural));
        }
    }
    let has = |names: &[&str]| names.iter().any(|n| !p.all(n).is_empty());
    if has(&["policy-id", "policy-name"]) && has(&["append-policy-id", "append-policy-name"]) {
        return Err(ui::fail(
            "Cannot combine the use of policy-id/policy-name flags with append- variants. To set \
             or overwrite existing policies, use -policy-id or -policy-name. To append to \
             existing policies, use -append-policy-id or -append-policy-name.",
        ));
    }
    if has(&["role-id", "role-name"]) && has(&["append-role-id", "append-role-name"]) {
        return Err(ui::fail(
            "Cannot combine the use of role-id/role-name flags with append- variants. To set or \
             overwrite existing roles, use -role-id or -role-name. To append to existing roles, \
             use -append-role-id or -append-role-name.",
        ));
    }
    let format = format_of(&p)?;
    let c = client(&p)?;
    let id = token_accessor(&c, &given)
        .map_err(|e| ui::fail(format!("Error determining token ID: {e}")))?;
    let mut t = c
        .acl_token_read(&id)
        .map_err(|e| ui::fail(format!("Error when retrieving current token: {e}")))?;
    if let Some(d) = p.str("description").filter(|d| !d.is_empty()) {
        // An empty -description leaves the description alone, as in Consul.
        t.description = d.to_string();
    }

    let policies = change_of(
        policy_links(&c, &p.all("policy-name"), &p.all("policy-id"))?,
        policy_links(&c, &p.all("append-policy-name"), &p.all("append-policy-id"))?,
        p.bool("merge-policies"),
    );
    let roles = change_of(
        role_links(&c, &p.all("role-name"), &p.all("role-id"))?,
        role_links(&c, &p.all("append-role-name"), &p.all("append-role-id"))?,
        p.bool("merge-roles"),
    );
    let services = change_of(
        service_identities(&p.all("service-identity")).map_err(ui::fail)?,
        service_identities(&p.all("append-service-identity")).map_err(ui::fail)?,
        p.bool("merge-service-identities"),
    );
    let nodes = change_of(
        node_identities(&p.all("node-identity")).map_err(ui::fail)?,
        node_identities(&p.all("append-node-identity")).map_err(ui::fail)?,
        p.bool("merge-node-identities"),
    );
    for (flag, what) in [
        (
            "merge-policies",
            "`append-policy-name` or `append-policy-id`",
        ),
        ("merge-roles", "`append-role-name` or `append-role-id`"),
    ] {
        if p.bool(flag) {
            ui::err(&format!(
                "{flag} is deprecated and will be removed in a future Consul version. Use {what} \
                 instead."
            ));
        }
    }

    match policies {
        Change::Keep => {}
        Change::Replace(v) => t.policies = v,
        Change::Append(v) => merge_links(&mut t.policies, v),
    }
    match roles {
        Change::Keep => {}
        Change::Replace(v) => t.roles = v,
        Change::Append(v) => merge_links(&mut t.roles, v),
    }
    // Consul replaces the identities even when no identity flag is given, which silently
    // drops them from a token whose description is being changed; they are kept here
    // unless -service-identity/-node-identity asks for a new set.
    match services {
        Change::Keep => {}
        Change::Replace(v) => t.service_identities = v,
        Change::Append(v) => {
            for s in v {
                match t
                    .service_identities
                    .iter_mut()
                    .find(|c| c.service_name == s.service_name)
                {
                    Some(existing) => *existing = s,
                    None => t.service_identities.push(s),
                }
            }
        }
    }
    match nodes {
        Change::Keep => {}
        Change::Replace(v) => t.node_identities = v,
        Change::Append(v) => {
            for n in v {
                if !t.node_identities.contains(&n) {
                    t.node_identities.push(n);
                }
            }
        }
    }

    let out = c
        .acl_token_update(&t)
        .map_err(|e| ui::fail(format!("Failed to update token {id}: {e}")))?;
    show(format, &out, |t| format_token(t, p.bool("meta")));
    Ok(())
}

fn token_clone_spec(with_deprecated: bool) -> Vec<Flag> {
    let mut own = vec![
        Flag::string(
            "accessor-id",
            "The Accessor ID of the token to clone. It may be specified as a unique ID prefix \
             but will error if the prefix matches multiple token Accessor IDs. The special \
             value of 'anonymous' may be provided instead of the anonymous tokens accessor ID",
        ),
        Flag::string("description", "A description of the new cloned token"),
        FORMAT,
    ];
    if with_deprecated {
        own.push(ACCESSOR_DEPRECATED);
    }
    spec(&own)
}

pub fn token_clone_help() -> String {
    flags::usage(
        "
Usage: proconsul acl token clone [options]

    This command will clone a token. When cloning an alternate description may be given
    for use with the new token.

    Example:

        $ proconsul acl token clone -accessor-id abcd -description \"replication\"
",
        &token_clone_spec(false),
    )
}

pub fn token_clone(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&token_clone_spec(true), args, token_clone_help)?;
    let given = accessor_arg(
        &p,
        "Cannot update a token without specifying the -accessor-id parameter",
        "The -id parameter is deprecated. Use the -accessor-id parameter instead.",
    )?;
    let format = format_of(&p)?;
    let c = client(&p)?;
    let id = token_accessor(&c, &given)
        .map_err(|e| ui::fail(format!("Error determining token Accessor ID: {e}")))?;
    let t = c
        .acl_token_clone(&id, p.str("description").unwrap_or_default())
        .map_err(|e| ui::fail(format!("Error cloning token: {e}")))?;
    show(format, &t, |t| format_token(t, false));
    Ok(())
}

fn token_delete_spec(with_deprecated: bool) -> Vec<Flag> {
    let mut own = vec![Flag::string(
        "accessor-id",
        "The Accessor ID of the token to delete. It may be specified as a unique ID prefix but \
         will error if the prefix matches multiple token Accessor IDs",
    )];
    if with_deprecated {
        own.push(ACCESSOR_DEPRECATED);
    }
    spec(&own)
}

pub fn token_delete_help() -> String {
    flags::usage(
        "
Usage: proconsul acl token delete [options] -accessor-id TOKEN

  Deletes an ACL token by providing either the ID or a unique ID prefix.

      Delete by prefix:

          $ proconsul acl token delete -accessor-id b6b85

      Delete by full ID:

          $ proconsul acl token delete -accessor-id b6b856da-5193-4e78-845a-7d61ca8371ba
",
        &token_delete_spec(false),
    )
}

pub fn token_delete(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&token_delete_spec(true), args, token_delete_help)?;
    let given = accessor_arg(
        &p,
        "Must specify the -accessor-id parameter",
        "Use the -accessor-id parameter to specify token by Accessor ID.",
    )?;
    let c = client(&p)?;
    let id = token_accessor(&c, &given)
        .map_err(|e| ui::fail(format!("Error determining token ID: {e}")))?;
    c.acl_token_delete(&id)
        .map_err(|e| ui::fail(format!("Error deleting token {id:?}: {e}")))?;
    ui::out(&format!("Token {id:?} deleted successfully"));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// acl role
// ---------------------------------------------------------------------------------------------

pub fn role_help() -> String {
    "Usage: proconsul acl role <subcommand> [options] [args]

  This command has subcommands for managing Consul's ACL roles.
  Here are some simple examples, and more detailed examples are available
  in the subcommands or the documentation.

  Create a new ACL role:

      $ proconsul acl role create -name \"new-role\" \\
                                  -description \"This is an example role\" \\
                                  -policy-id 06acc965
  List all roles:

      $ proconsul acl role list

  Update a role:

      $ proconsul acl role update -name \"other-role\" -datacenter \"dc1\"

  Read a role:

      $ proconsul acl role read -id 0479e93e-091c-4475-9b06-79a004765c24

  Delete a role:

      $ proconsul acl role delete -name \"my-role\"

  For more examples, ask for subcommand help or view the documentation."
        .to_string()
}

const ROLE_GRANT_FLAGS: &[Flag] = &[
    Flag::string(
        "policy-id",
        "ID of a policy to use for this role. May be specified multiple times",
    ),
    Flag::string(
        "policy-name",
        "Name of a policy to use for this role. May be specified multiple times",
    ),
    Flag::string(
        "service-identity",
        "Name of a service identity to use for this role. May be specified multiple times. \
         Format is the SERVICENAME or SERVICENAME:DATACENTER1,DATACENTER2,...",
    ),
    Flag::string(
        "node-identity",
        "Name of a node identity to use for this role. May be specified multiple times. Format \
         is NODENAME:DATACENTER",
    ),
];

fn role_create_flags() -> Vec<Flag> {
    let mut own = vec![
        meta_flag("role"),
        Flag::string("name", "The new role's name. This flag is required."),
        Flag::string("description", "A description of the role"),
        FORMAT,
    ];
    own.extend_from_slice(ROLE_GRANT_FLAGS);
    spec(&own)
}

pub fn role_create_help() -> String {
    flags::usage(
        "
Usage: proconsul acl role create -name NAME [options]

    Create a new role:

        $ proconsul acl role create -name \"new-role\" \\
                                    -description \"This is an example role\" \\
                                    -policy-id b52fc3de-5 \\
                                    -policy-name \"acl-replication\" \\
                                    -service-identity \"web\" \\
                                    -service-identity \"db:east,west\"
",
        &role_create_flags(),
    )
}

pub fn role_create(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&role_create_flags(), args, role_create_help)?;
    let name = p.str("name").unwrap_or_default();
    if name.is_empty() {
        return Err(ui::fail(format!(
            "Missing require '-name' flag\n{}",
            role_create_help()
        )));
    }
    if [
        "policy-name",
        "policy-id",
        "service-identity",
        "node-identity",
    ]
    .iter()
    .all(|g| p.all(g).is_empty())
    {
        return Err(ui::fail(
            "Cannot create a role without specifying -policy-name, -policy-id, \
             -service-identity, or -node-identity at least once",
        ));
    }
    let format = format_of(&p)?;
    let c = client(&p)?;
    let role = AclRole {
        name: name.to_string(),
        description: p.str("description").unwrap_or_default().to_string(),
        policies: policy_links(&c, &p.all("policy-name"), &p.all("policy-id"))?,
        service_identities: service_identities(&p.all("service-identity")).map_err(ui::fail)?,
        node_identities: node_identities(&p.all("node-identity")).map_err(ui::fail)?,
        ..AclRole::default()
    };
    let created = c
        .acl_role_create(&role)
        .map_err(|e| ui::fail(format!("Failed to create new role: {e}")))?;
    show(format, &created, |r| format_role(r, p.bool("meta")));
    Ok(())
}

fn role_list_flags() -> Vec<Flag> {
    spec(&[meta_flag("role"), FORMAT])
}

pub fn role_list_help() -> String {
    flags::usage(
        "
Usage: proconsul acl role list [options]

    Lists all the ACL roles.

    Example:

        $ proconsul acl role list
",
        &role_list_flags(),
    )
}

pub fn role_list(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&role_list_flags(), args, role_list_help)?;
    let format = format_of(&p)?;
    let c = client(&p)?;
    let list = c
        .acl_role_list()
        .map_err(|e| ui::fail(format!("Failed to retrieve the role list: {e}")))?;
    show(format, &list, |v| format_role_list(v, p.bool("meta")));
    Ok(())
}

fn role_read_flags() -> Vec<Flag> {
    spec(&[
        meta_flag("role"),
        Flag::string(
            "id",
            "The ID of the role to read. It may be specified as a unique ID prefix but will \
             error if the prefix matches multiple policy IDs",
        ),
        Flag::string("name", "The name of the role to read."),
        FORMAT,
    ])
}

pub fn role_read_help() -> String {
    flags::usage(
        "
Usage: proconsul acl role read [options] ROLE

    This command will retrieve and print out the details
    of a single role.

    Read:

        $ proconsul acl role read -id fdabbcb5-9de5-4b1a-961f-77214ae88cba

    Read by name:

        $ proconsul acl role read -name my-policy
",
        &role_read_flags(),
    )
}

pub fn role_read(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&role_read_flags(), args, role_read_help)?;
    let (id, name) = (
        p.str("id").unwrap_or_default(),
        p.str("name").unwrap_or_default(),
    );
    if id.is_empty() && name.is_empty() {
        return Err(ui::fail("Must specify either the -id or -name parameters"));
    }
    let format = format_of(&p)?;
    let c = client(&p)?;
    let role = if !id.is_empty() {
        let id =
            role_id(&c, id).map_err(|e| ui::fail(format!("Error determining role ID: {e}")))?;
        c.acl_role_read(&id)
            .map_err(|e| ui::fail(format!("Error reading role {id:?}: {e}")))?
            .ok_or_else(|| ui::fail(format!("Role not found with ID {id:?}")))?
    } else {
        c.acl_role_read_by_name(name)
            .map_err(|e| ui::fail(format!("Error reading role {name:?}: {e}")))?
            .ok_or_else(|| ui::fail(format!("Role not found with name {name:?}")))?
    };
    show(format, &role, |r| format_role(r, p.bool("meta")));
    Ok(())
}

fn role_update_flags() -> Vec<Flag> {
    let mut own = vec![
        meta_flag("role"),
        Flag::string(
            "id",
            "The ID of the role to update. It may be specified as a unique ID prefix but will \
             error if the prefix matches multiple role IDs",
        ),
        Flag::string("name", "The role name."),
        Flag::string("description", "A description of the role"),
        Flag::boolean(
            "no-merge",
            "Do not merge the current role information with what is provided to the command. \
             Instead overwrite all fields with the exception of the role ID which is immutable.",
        ),
        FORMAT,
    ];
    own.extend_from_slice(ROLE_GRANT_FLAGS);
    spec(&own)
}

pub fn role_update_help() -> String {
    flags::usage(
        "
Usage: proconsul acl role update [options]

  Updates a role. By default it will merge the role information with its
  current state so that you do not have to provide all parameters. This
  behavior can be disabled by passing -no-merge.

  Rename the role:

          $ proconsul acl role update -id abcd -name \"better-name\"

  Update all editable fields of the role:

          $ proconsul acl role update -id abcd \\
                                      -name \"better-name\" \\
                                      -description \"replication\" \\
                                      -policy-name \"token-replication\" \\
                                      -service-identity \"web\"
",
        &role_update_flags(),
    )
}

pub fn role_update(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&role_update_flags(), args, role_update_help)?;
    let given = p.str("id").unwrap_or_default();
    if given.is_empty() {
        return Err(ui::fail(
            "Cannot update a role without specifying the -id parameter",
        ));
    }
    let format = format_of(&p)?;
    let c = client(&p)?;
    let id = role_id(&c, given).map_err(|e| ui::fail(format!("Error determining role ID: {e}")))?;
    let services = service_identities(&p.all("service-identity")).map_err(ui::fail)?;
    let nodes = node_identities(&p.all("node-identity")).map_err(ui::fail)?;
    let current = c
        .acl_role_read(&id)
        .map_err(|e| ui::fail(format!("Error when retrieving current role: {e}")))?
        .ok_or_else(|| ui::fail(format!("Role not found with ID {id:?}")))?;
    let policies = policy_links(&c, &p.all("policy-name"), &p.all("policy-id"))?;
    let role = if p.bool("no-merge") {
        AclRole {
            id: id.clone(),
            name: p.str("name").unwrap_or_default().to_string(),
            description: p.str("description").unwrap_or_default().to_string(),
            policies,
            service_identities: services,
            node_identities: nodes,
            ..AclRole::default()
        }
    } else {
        let mut r = current;
        if let Some(n) = p.str("name").filter(|n| !n.is_empty()) {
            r.name = n.to_string();
        }
        if let Some(d) = p.str("description").filter(|d| !d.is_empty()) {
            r.description = d.to_string();
        }
        merge_links(&mut r.policies, policies);
        for s in services {
            match r
                .service_identities
                .iter_mut()
                .find(|c| c.service_name == s.service_name)
            {
                Some(existing) => *existing = s,
                None => r.service_identities.push(s),
            }
        }
        for n in nodes {
            if !r.node_identities.contains(&n) {
                r.node_identities.push(n);
            }
        }
        r
    };
    let out = c
        .acl_role_update(&role)
        .map_err(|e| ui::fail(format!("Error updating role {id:?}: {e}")))?;
    show(format, &out, |r| format_role(r, p.bool("meta")));
    Ok(())
}

fn role_delete_flags() -> Vec<Flag> {
    spec(&[
        Flag::string(
            "id",
            "The ID of the role to delete. It may be specified as a unique ID prefix but will \
             error if the prefix matches multiple role IDs",
        ),
        Flag::string("name", "The name of the role to delete."),
    ])
}

pub fn role_delete_help() -> String {
    flags::usage(
        "
Usage: proconsul acl role delete [options] -id ROLE

    Deletes an ACL role by providing the ID or a unique ID prefix.

    Delete by prefix:

        $ proconsul acl role delete -id b6b85

    Delete by full ID:

        $ proconsul acl role delete -id b6b856da-5193-4e78-845a-7d61ca8371ba
",
        &role_delete_flags(),
    )
}

pub fn role_delete(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&role_delete_flags(), args, role_delete_help)?;
    let (id, name) = (
        p.str("id").unwrap_or_default(),
        p.str("name").unwrap_or_default(),
    );
    if id.is_empty() && name.is_empty() {
        return Err(ui::fail("Must specify the -id or -name parameters"));
    }
    let c = client(&p)?;
    let id = if !id.is_empty() {
        role_id(&c, id)
    } else {
        role_id_by_name(&c, name)
    }
    .map_err(|e| ui::fail(format!("Error determining role ID: {e}")))?;
    c.acl_role_delete(&id)
        .map_err(|e| ui::fail(format!("Error deleting role {id:?}: {e}")))?;
    ui::out(&format!("Role {id:?} deleted successfully"));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// acl auth-method
// ---------------------------------------------------------------------------------------------

/// Consul's `FormatAuthMethod`: the config last, as two-space-indented JSON.
fn format_auth_method(m: &AclAuthMethod, meta: bool) -> String {
    let mut s = String::new();
    s.push_str(&format!("Name:          {}\n", m.name));
    s.push_str(&format!("Type:          {}\n", m.kind));
    if !m.display_name.is_empty() {
        s.push_str(&format!("DisplayName:   {}\n", m.display_name));
    }
    s.push_str(&format!("Description:   {}\n", m.description));
    if !m.max_token_ttl.is_empty() && m.max_token_ttl != "0s" {
        s.push_str(&format!("MaxTokenTTL:   {}\n", m.max_token_ttl));
    }
    if !m.token_locality.is_empty() {
        s.push_str(&format!("TokenLocality: {}\n", m.token_locality));
    }
    if meta {
        s.push_str(&format!("Create Index:  {}\n", m.create_index));
        s.push_str(&format!("Modify Index:  {}\n", m.modify_index));
    }
    s.push_str("Config:\n");
    s.push_str(&ui::go_json(&m.config, Some("  ")));
    s
}

/// Consul's `FormatAuthMethodList`: a `<name>:` block per method.
fn format_auth_method_list(list: &[AclAuthMethod], meta: bool) -> String {
    let mut s = String::new();
    for m in list {
        s.push_str(&format!("{}:\n", m.name));
        s.push_str(&format!("   Type:         {}\n", m.kind));
        if !m.display_name.is_empty() {
            s.push_str(&format!("   DisplayName:  {}\n", m.display_name));
        }
        s.push_str(&format!("   Description:  {}\n", m.description));
        if meta {
            s.push_str(&format!("   Create Index: {}\n", m.create_index));
            s.push_str(&format!("   Modify Index: {}\n", m.modify_index));
        }
    }
    s
}

pub fn auth_method_help() -> String {
    "Usage: proconsul acl auth-method <subcommand> [options] [args]

  This command has subcommands for managing Consul's ACL auth methods.
  Here are some simple examples, and more detailed examples are available
  in the subcommands or the documentation.

  Create a new auth method:

    $ proconsul acl auth-method create -type \"jwt\" \\
                            -name \"my-jwt\" \\
                            -description \"This is an example JWT method\" \\
                            -config @jwt-config.json

  List all auth methods:

    $ proconsul acl auth-method list

  Update all editable fields of the auth method:

    $ proconsul acl auth-method update -name \"my-jwt\" \\
                            -description \"new description\" \\
                            -config @new-jwt-config.json

  Read an auth method:

    $ proconsul acl auth-method read -name my-jwt

  Delete an auth method:

    $ proconsul acl auth-method delete -name my-jwt

  For more examples, ask for subcommand help or view the documentation."
        .to_string()
}

const AUTH_METHOD_FIELD_FLAGS: &[Flag] = &[
    Flag::string(
        "display-name",
        "An optional name to use instead of the name when displaying this auth method in a UI.",
    ),
    Flag::string("description", "A description of the auth method."),
    Flag::new(
        "max-token-ttl",
        flags::Kind::Str,
        "duration",
        "Duration of time all tokens created by this auth method should be valid for",
    ),
    Flag::string(
        "token-locality",
        "Defines the kind of token that this auth method should produce. This can be either \
         'local' or 'global'. If empty the value of 'local' is assumed.",
    ),
    Flag::string(
        "config",
        "The configuration for the auth method. Must be JSON. May be prefixed with '@' to \
         indicate that the value is a file path to load the config from. '-' may also be given \
         to indicate that the config is available on stdin",
    ),
    Flag::string(
        "kubernetes-host",
        "Address of the Kubernetes API server. This flag is required for type=kubernetes.",
    ),
    Flag::string(
        "kubernetes-ca-cert",
        "PEM encoded CA cert for use by the TLS client used to talk with the Kubernetes API. \
         May be prefixed with '@' to indicate that the value is a file path to load the cert \
         from. This flag is required for type=kubernetes.",
    ),
    Flag::string(
        "kubernetes-service-account-jwt",
        "A Kubernetes service account JWT used to access the TokenReview API to validate other \
         JWTs during login. This flag is required for type=kubernetes.",
    ),
    FORMAT,
];

const K8S_FLAGS: [&str; 3] = [
    "kubernetes-host",
    "kubernetes-ca-cert",
    "kubernetes-service-account-jwt",
];

/// `-config` as a JSON object, refused together with the Kubernetes shortcuts.
fn auth_method_config(
    p: &Parsed,
    parse_error: &str,
) -> anyhow::Result<Option<serde_json::Map<String, serde_json::Value>>> {
    let Some(raw) = p.str("config").filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    if K8S_FLAGS
        .iter()
        .any(|f| p.str(f).is_some_and(|v| !v.is_empty()))
    {
        return Err(ui::fail(
            "Cannot use command line arguments with '-config' flags",
        ));
    }
    let data = load_data_source(raw)
        .map_err(|e| ui::fail(format!("Error loading configuration file: {e}")))?;
    serde_json::from_str(&data)
        .map(Some)
        .map_err(|e| ui::fail(format!("{parse_error}: {e}")))
}

/// The Kubernetes shortcuts, all required, as the config they stand for.
fn k8s_config(p: &Parsed) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    for f in K8S_FLAGS {
        if p.str(f).unwrap_or_default().is_empty() {
            return Err(ui::fail(format!("Missing required '-{f}' flag")));
        }
    }
    let ca = load_data_source(p.str("kubernetes-ca-cert").unwrap_or_default())
        .map_err(|e| ui::fail(format!("Invalid '-kubernetes-ca-cert' value: {e}")))?;
    if ca.is_empty() {
        return Err(ui::fail("Kubernetes CA Cert is empty"));
    }
    let mut m = serde_json::Map::new();
    m.insert(
        "Host".into(),
        p.str("kubernetes-host").unwrap_or_default().into(),
    );
    m.insert("CACert".into(), ca.into());
    m.insert(
        "ServiceAccountJWT".into(),
        p.str("kubernetes-service-account-jwt")
            .unwrap_or_default()
            .into(),
    );
    Ok(m)
}

fn auth_method_create_flags() -> Vec<Flag> {
    let mut own = vec![
        meta_flag("auth method"),
        Flag::string("type", "The new auth method's type. This flag is required."),
        Flag::string("name", "The new auth method's name. This flag is required."),
    ];
    own.extend_from_slice(AUTH_METHOD_FIELD_FLAGS);
    spec(&own)
}

pub fn auth_method_create_help() -> String {
    flags::usage(
        "
Usage: proconsul acl auth-method create -name NAME -type TYPE [options]

  Create a new auth method:

    $ proconsul acl auth-method create -type \"kubernetes\" \\
                            -name \"my-k8s\" \\
                            -description \"This is an example kube method\" \\
                            -kubernetes-host \"https://apiserver.example.com:8443\" \\
                            -kubernetes-ca-cert @/path/to/kube.ca.crt \\
                            -kubernetes-service-account-jwt \"JWT_CONTENTS\"
",
        &auth_method_create_flags(),
    )
}

pub fn auth_method_create(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&auth_method_create_flags(), args, auth_method_create_help)?;
    let kind = p.str("type").unwrap_or_default();
    let name = p.str("name").unwrap_or_default();
    for (value, flag) in [(kind, "type"), (name, "name")] {
        if value.is_empty() {
            return Err(ui::fail(format!(
                "Missing required '-{flag}' flag\n{}",
                auth_method_create_help()
            )));
        }
    }
    let ttl = duration_flag(&p, "max-token-ttl", auth_method_create_help)?;
    let format = format_of(&p)?;
    let c = client(&p)?;
    let mut method = AclAuthMethod {
        name: name.to_string(),
        kind: kind.to_string(),
        display_name: p.str("display-name").unwrap_or_default().to_string(),
        description: p.str("description").unwrap_or_default().to_string(),
        token_locality: p.str("token-locality").unwrap_or_default().to_string(),
        config: auth_method_config(&p, "Error parsing JSON configuration file")?,
        ..AclAuthMethod::default()
    };
    if ttl > 0 {
        method.max_token_ttl = proconsul_types::duration::format_nanos(ttl);
    }
    if kind == "kubernetes" {
        method.config = Some(k8s_config(&p)?);
    }
    let created = c
        .acl_auth_method_create(&method)
        .map_err(|e| ui::fail(format!("Failed to create new auth method: {e}")))?;
    show(format, &created, |m| format_auth_method(m, p.bool("meta")));
    Ok(())
}

fn auth_method_list_flags() -> Vec<Flag> {
    spec(&[meta_flag("auth method"), FORMAT])
}

pub fn auth_method_list_help() -> String {
    flags::usage(
        "
Usage: proconsul acl auth-method list [options]

  List all auth methods:

    $ proconsul acl auth-method list
",
        &auth_method_list_flags(),
    )
}

pub fn auth_method_list(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&auth_method_list_flags(), args, auth_method_list_help)?;
    let format = format_of(&p)?;
    let c = client(&p)?;
    let list = c
        .acl_auth_method_list()
        .map_err(|e| ui::fail(format!("Failed to retrieve the auth method list: {e}")))?;
    show(format, &list, |v| {
        format_auth_method_list(v, p.bool("meta"))
    });
    Ok(())
}

fn auth_method_read_flags() -> Vec<Flag> {
    spec(&[
        meta_flag("auth method"),
        Flag::string("name", "The name of the auth method to read."),
        FORMAT,
    ])
}

pub fn auth_method_read_help() -> String {
    flags::usage(
        "
Usage: proconsul acl auth-method read -name NAME [options]

  Read an auth method:

    $ proconsul acl auth-method read -name my-auth-method
",
        &auth_method_read_flags(),
    )
}

pub fn auth_method_read(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&auth_method_read_flags(), args, auth_method_read_help)?;
    let name = p.str("name").unwrap_or_default();
    if name.is_empty() {
        return Err(ui::fail("Must specify the -name parameter"));
    }
    let format = format_of(&p)?;
    let c = client(&p)?;
    let method = c
        .acl_auth_method_read(name)
        .map_err(|e| ui::fail(format!("Error reading auth method {name:?}: {e}")))?
        .ok_or_else(|| ui::fail(format!("Auth method not found with name {name:?}")))?;
    show(format, &method, |m| format_auth_method(m, p.bool("meta")));
    Ok(())
}

fn auth_method_update_flags() -> Vec<Flag> {
    let mut own = vec![
        meta_flag("auth method"),
        Flag::string("name", "The auth method name."),
        Flag::boolean(
            "no-merge",
            "Do not merge the current auth method information with what is provided to the \
             command. Instead overwrite all fields with the exception of the name which is \
             immutable.",
        ),
    ];
    own.extend_from_slice(AUTH_METHOD_FIELD_FLAGS);
    spec(&own)
}

pub fn auth_method_update_help() -> String {
    flags::usage(
        "
Usage: proconsul acl auth-method update -name NAME [options]

  Updates an auth method. By default it will merge the auth method
  information with its current state so that you do not have to provide all
  parameters. This behavior can be disabled by passing -no-merge.

  Update all editable fields of the auth method:

    $ proconsul acl auth-method update -name \"my-k8s\" \\
                            -description \"new description\" \\
                            -kubernetes-host \"https://new-apiserver.example.com:8443\" \\
                            -kubernetes-ca-cert @/path/to/new-kube.ca.crt \\
                            -kubernetes-service-account-jwt \"NEW_JWT_CONTENTS\"
",
        &auth_method_update_flags(),
    )
}

pub fn auth_method_update(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&auth_method_update_flags(), args, auth_method_update_help)?;
    let name = p.str("name").unwrap_or_default();
    if name.is_empty() {
        return Err(ui::fail(
            "Cannot update an auth method without specifying the -name parameter",
        ));
    }
    let ttl = duration_flag(&p, "max-token-ttl", auth_method_update_help)?;
    let format = format_of(&p)?;
    let c = client(&p)?;
    let current = c
        .acl_auth_method_read(name)
        .map_err(|e| ui::fail(format!("Error when retrieving current auth method: {e}")))?
        .ok_or_else(|| ui::fail(format!("Auth method not found with name {name:?}")))?;
    let config = auth_method_config(&p, "Error parsing JSON for auth method config")?;
    let given = |f: &str| p.str(f).filter(|v| !v.is_empty()).map(str::to_string);
    let method = if p.bool("no-merge") {
        let mut m = AclAuthMethod {
            name: current.name,
            kind: current.kind.clone(),
            display_name: given("display-name").unwrap_or_default(),
            description: given("description").unwrap_or_default(),
            token_locality: given("token-locality").unwrap_or_default(),
            config,
            ..AclAuthMethod::default()
        };
        if ttl > 0 {
            m.max_token_ttl = proconsul_types::duration::format_nanos(ttl);
        }
        if current.kind == "kubernetes" {
            m.config = Some(k8s_config(&p)?);
        }
        m
    } else {
        let mut m = current;
        if let Some(d) = given("description") {
            m.description = d;
        }
        if let Some(d) = given("display-name") {
            m.display_name = d;
        }
        if ttl > 0 {
            m.max_token_ttl = proconsul_types::duration::format_nanos(ttl);
        }
        if let Some(l) = given("token-locality") {
            m.token_locality = l;
        }
        if config.is_some() {
            // Replaced as a whole, never merged key by key (as Consul does).
            m.config = config;
        }
        if m.kind == "kubernetes" {
            let cfg = m.config.get_or_insert_with(Default::default);
            for (flag, key) in [
                ("kubernetes-host", "Host"),
                ("kubernetes-service-account-jwt", "ServiceAccountJWT"),
            ] {
                if let Some(v) = given(flag) {
                    cfg.insert(key.into(), v.into());
                }
            }
            if let Some(raw) = given("kubernetes-ca-cert") {
                let ca = load_data_source(&raw)
                    .map_err(|e| ui::fail(format!("Invalid '-kubernetes-ca-cert' value: {e}")))?;
                if ca.is_empty() {
                    return Err(ui::fail("Kubernetes CA Cert is empty"));
                }
                cfg.insert("CACert".into(), ca.into());
            }
        }
        m
    };
    let out = c
        .acl_auth_method_update(&method)
        .map_err(|e| ui::fail(format!("Error updating auth method {name:?}: {e}")))?;
    show(format, &out, |m| format_auth_method(m, p.bool("meta")));
    Ok(())
}

fn auth_method_delete_flags() -> Vec<Flag> {
    spec(&[Flag::string(
        "name",
        "The name of the auth method to delete.",
    )])
}

pub fn auth_method_delete_help() -> String {
    flags::usage(
        "
Usage: proconsul acl auth-method delete -name NAME [options]

  Delete an auth method:

    $ proconsul acl auth-method delete -name \"my-auth-method\"
",
        &auth_method_delete_flags(),
    )
}

pub fn auth_method_delete(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&auth_method_delete_flags(), args, auth_method_delete_help)?;
    let name = p.str("name").unwrap_or_default();
    if name.is_empty() {
        return Err(ui::fail("Must specify the -name parameter"));
    }
    let c = client(&p)?;
    c.acl_auth_method_delete(name)
        .map_err(|e| ui::fail(format!("Error deleting auth method {name:?}: {e}")))?;
    ui::out(&format!("Auth method {name:?} deleted successfully"));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// acl binding-rule
// ---------------------------------------------------------------------------------------------

/// Consul's `FormatBindingRule`.
fn format_binding_rule(r: &AclBindingRule, meta: bool) -> String {
    let mut s = String::new();
    s.push_str(&format!("ID:           {}\n", r.id));
    s.push_str(&format!("AuthMethod:   {}\n", r.auth_method));
    s.push_str(&format!("Description:  {}\n", r.description));
    s.push_str(&format!("BindType:     {}\n", r.bind_type));
    s.push_str(&format!("BindName:     {}\n", r.bind_name));
    s.push_str(&format!("Selector:     {}\n", r.selector));
    if meta {
        s.push_str(&format!("Create Index: {}\n", r.create_index));
        s.push_str(&format!("Modify Index: {}\n", r.modify_index));
    }
    s
}

/// Consul's `FormatBindingRuleList`: an `<id>:` block per rule.
fn format_binding_rule_list(list: &[AclBindingRule], meta: bool) -> String {
    let mut s = String::new();
    for r in list {
        s.push_str(&format!("{}:\n", r.id));
        s.push_str(&format!("   AuthMethod:   {}\n", r.auth_method));
        s.push_str(&format!("   Description:  {}\n", r.description));
        s.push_str(&format!("   BindType:     {}\n", r.bind_type));
        s.push_str(&format!("   BindName:     {}\n", r.bind_name));
        s.push_str(&format!("   Selector:     {}\n", r.selector));
        if meta {
            s.push_str(&format!("   Create Index: {}\n", r.create_index));
            s.push_str(&format!("   Modify Index: {}\n", r.modify_index));
        }
    }
    s
}

fn binding_rule_id(c: &Client, partial: &str) -> Result<String, String> {
    if is_full_id(partial) {
        return Ok(partial.into());
    }
    let list = c.acl_binding_rule_list("").map_err(|e| e.to_string())?;
    unique_prefix("rule", partial, list.into_iter().map(|r| r.id).collect()).map_err(|e| {
        // Consul words this one in lower case and wraps ACL's not-found error.
        match e.strip_prefix("No such") {
            Some(rest) => format!("no such{rest}: ACL not found"),
            None => e,
        }
    })
}

pub fn binding_rule_help() -> String {
    "Usage: proconsul acl binding-rule <subcommand> [options] [args]

  This command has subcommands for managing Consul's ACL binding rules.
  Here are some simple examples, and more detailed examples are available
  in the subcommands or the documentation.

  Create a new binding rule:

    $ proconsul acl binding-rule create \\
          -method=minikube \\
          -bind-type=service \\
          -bind-name='k8s-${serviceaccount.name}' \\
          -selector='serviceaccount.namespace==default and serviceaccount.name==web'

  List all binding rules:

    $ proconsul acl binding-rule list

  Update a binding rule:

    $ proconsul acl binding-rule update -id=43cb72df-9c6f-4315-ac8a-01a9d98155ef \\
          -bind-name='k8s-${serviceaccount.name}'

  Read a binding rule:

    $ proconsul acl binding-rule read -id fdabbcb5-9de5-4b1a-961f-77214ae88cba

  Delete a binding rule:

    $ proconsul acl binding-rule delete -id b6b856da-5193-4e78-845a-7d61ca8371ba

  For more examples, ask for subcommand help or view the documentation."
        .to_string()
}

const BINDING_RULE_FIELD_FLAGS: &[Flag] = &[
    Flag::string("description", "A description of the binding rule."),
    Flag::string(
        "selector",
        "Selector is an expression that matches against verified identity attributes returned \
         from the auth method during login.",
    ),
    Flag::string(
        "bind-type",
        "Type of binding to perform (\"service\" or \"role\"). The default value is \
         \"service\" when creating.",
    ),
    Flag::string(
        "bind-name",
        "Name to bind on match. Can use ${var} interpolation. This flag is required.",
    ),
    FORMAT,
];

fn binding_rule_create_flags() -> Vec<Flag> {
    let mut own = vec![
        meta_flag("binding rule"),
        Flag::string(
            "method",
            "The auth method's name for which this binding rule applies. This flag is required.",
        ),
    ];
    own.extend_from_slice(BINDING_RULE_FIELD_FLAGS);
    spec(&own)
}

pub fn binding_rule_create_help() -> String {
    flags::usage(
        "
Usage: proconsul acl binding-rule create [options]

  Create a new binding rule:

    $ proconsul acl binding-rule create \\
          -method=minikube \\
          -bind-type=service \\
          -bind-name='k8s-${serviceaccount.name}' \\
          -selector='serviceaccount.namespace==default and serviceaccount.name==web'
",
        &binding_rule_create_flags(),
    )
}

pub fn binding_rule_create(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&binding_rule_create_flags(), args, binding_rule_create_help)?;
    let method = p.str("method").unwrap_or_default();
    let bind_type = p.str("bind-type").unwrap_or("service");
    let bind_name = p.str("bind-name").unwrap_or_default();
    for (value, flag) in [
        (method, "method"),
        (bind_type, "bind-type"),
        (bind_name, "bind-name"),
    ] {
        if value.is_empty() {
            return Err(ui::fail(format!(
                "Missing required '-{flag}' flag\n{}",
                binding_rule_create_help()
            )));
        }
    }
    let format = format_of(&p)?;
    let c = client(&p)?;
    let rule = AclBindingRule {
        description: p.str("description").unwrap_or_default().to_string(),
        auth_method: method.to_string(),
        selector: p.str("selector").unwrap_or_default().to_string(),
        bind_type: bind_type.to_string(),
        bind_name: bind_name.to_string(),
        ..AclBindingRule::default()
    };
    let created = c
        .acl_binding_rule_create(&rule)
        .map_err(|e| ui::fail(format!("Failed to create new binding rule: {e}")))?;
    show(format, &created, |r| format_binding_rule(r, p.bool("meta")));
    Ok(())
}

fn binding_rule_list_flags() -> Vec<Flag> {
    spec(&[
        meta_flag("binding rule"),
        Flag::string(
            "method",
            "Only show rules linked to the auth method with the given name.",
        ),
        FORMAT,
    ])
}

pub fn binding_rule_list_help() -> String {
    flags::usage(
        "
Usage: proconsul acl binding-rule list [options]

  Lists all the ACL binding rules.

  Show all:

    $ proconsul acl binding-rule list

  Show all for a specific auth method:

    $ proconsul acl binding-rule list -method=\"my-method\"
",
        &binding_rule_list_flags(),
    )
}

pub fn binding_rule_list(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&binding_rule_list_flags(), args, binding_rule_list_help)?;
    let format = format_of(&p)?;
    let c = client(&p)?;
    let list = c
        .acl_binding_rule_list(p.str("method").unwrap_or_default())
        .map_err(|e| ui::fail(format!("Failed to retrieve the binding rule list: {e}")))?;
    show(format, &list, |v| {
        format_binding_rule_list(v, p.bool("meta"))
    });
    Ok(())
}

fn binding_rule_read_flags() -> Vec<Flag> {
    spec(&[
        meta_flag("binding rule"),
        Flag::string(
            "id",
            "The ID of the binding rule to read. It may be specified as a unique ID prefix but \
             will error if the prefix matches multiple binding rule IDs",
        ),
        FORMAT,
    ])
}

pub fn binding_rule_read_help() -> String {
    flags::usage(
        "
Usage: proconsul acl binding-rule read -id ID [options]

  This command will retrieve and print out the details of a single binding
  rule.

  Read:

    $ proconsul acl binding-rule read -id fdabbcb5-9de5-4b1a-961f-77214ae88cba
",
        &binding_rule_read_flags(),
    )
}

pub fn binding_rule_read(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&binding_rule_read_flags(), args, binding_rule_read_help)?;
    let given = p.str("id").unwrap_or_default();
    if given.is_empty() {
        return Err(ui::fail("Must specify the -id parameter"));
    }
    let format = format_of(&p)?;
    let c = client(&p)?;
    let id = binding_rule_id(&c, given)
        .map_err(|e| ui::fail(format!("Error determining binding rule ID: {e}")))?;
    let rule = c
        .acl_binding_rule_read(&id)
        .map_err(|e| ui::fail(format!("Error reading binding rule {id:?}: {e}")))?
        .ok_or_else(|| ui::fail(format!("Binding rule not found with ID {id:?}")))?;
    show(format, &rule, |r| format_binding_rule(r, p.bool("meta")));
    Ok(())
}

fn binding_rule_update_flags() -> Vec<Flag> {
    let mut own = vec![
        meta_flag("binding rule"),
        Flag::string(
            "id",
            "The ID of the binding rule to update. It may be specified as a unique ID prefix but \
             will error if the prefix matches multiple binding rule IDs",
        ),
        Flag::boolean(
            "no-merge",
            "Do not merge the current binding rule information with what is provided to the \
             command. Instead overwrite all fields with the exception of the binding rule ID \
             which is immutable.",
        ),
    ];
    own.extend_from_slice(BINDING_RULE_FIELD_FLAGS);
    spec(&own)
}

pub fn binding_rule_update_help() -> String {
    flags::usage(
        "
Usage: proconsul acl binding-rule update -id ID [options]

  Updates a binding rule. By default it will merge the binding rule
  information with its current state so that you do not have to provide all
  parameters. This behavior can be disabled by passing -no-merge.

  Update all editable fields of the binding rule:

    $ proconsul acl binding-rule update \\
          -id=43cb72df-9c6f-4315-ac8a-01a9d98155ef \\
          -description=\"new description\" \\
          -bind-type=role \\
          -bind-name='k8s-${serviceaccount.name}' \\
          -selector='serviceaccount.namespace==default and serviceaccount.name==web'
",
        &binding_rule_update_flags(),
    )
}

pub fn binding_rule_update(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&binding_rule_update_flags(), args, binding_rule_update_help)?;
    let given = p.str("id").unwrap_or_default();
    if given.is_empty() {
        return Err(ui::fail(
            "Cannot update a binding rule without specifying the -id parameter",
        ));
    }
    let format = format_of(&p)?;
    let c = client(&p)?;
    let id = binding_rule_id(&c, given)
        .map_err(|e| ui::fail(format!("Error determining binding rule ID: {e}")))?;
    let current = c
        .acl_binding_rule_read(&id)
        .map_err(|e| ui::fail(format!("Error when retrieving current binding rule: {e}")))?
        .ok_or_else(|| ui::fail(format!("Binding rule not found with ID {id:?}")))?;
    let rule = if p.bool("no-merge") {
        let bind_type = p.str("bind-type").unwrap_or("service");
        let bind_name = p.str("bind-name").unwrap_or_default();
        for (value, flag) in [(bind_type, "bind-type"), (bind_name, "bind-name")] {
            if value.is_empty() {
                return Err(ui::fail(format!(
                    "Missing required '-{flag}' flag\n{}",
                    binding_rule_update_help()
                )));
            }
        }
        AclBindingRule {
            id: id.clone(),
            auth_method: current.auth_method,
            description: p.str("description").unwrap_or_default().to_string(),
            bind_type: bind_type.to_string(),
            bind_name: bind_name.to_string(),
            selector: p.str("selector").unwrap_or_default().to_string(),
            ..AclBindingRule::default()
        }
    } else {
        // Only what was given changes (Consul resets -bind-type to its default "service"
        // here when the flag is absent; a merge should not change what was not asked for).
        let mut r = current;
        for (flag, field) in [
            ("description", &mut r.description),
            ("bind-type", &mut r.bind_type),
            ("bind-name", &mut r.bind_name),
        ] {
            if let Some(v) = p.str(flag).filter(|v| !v.is_empty()) {
                *field = v.to_string();
            }
        }
        if let Some(sel) = p.str("selector") {
            r.selector = sel.to_string(); // an empty selector is valid
        }
        r
    };
    let out = c
        .acl_binding_rule_update(&rule)
        .map_err(|e| ui::fail(format!("Error updating binding rule {id:?}: {e}")))?;
    show(format, &out, |r| format_binding_rule(r, p.bool("meta")));
    Ok(())
}

fn binding_rule_delete_flags() -> Vec<Flag> {
    spec(&[Flag::string(
        "id",
        "The ID of the binding rule to delete. It may be specified as a unique ID prefix but \
         will error if the prefix matches multiple binding rule IDs",
    )])
}

pub fn binding_rule_delete_help() -> String {
    flags::usage(
        "
Usage: proconsul acl binding-rule delete -id ID [options]

  Deletes an ACL binding rule by providing the ID or a unique ID prefix.

  Delete by prefix:

    $ proconsul acl binding-rule delete -id b6b85

  Delete by full ID:

    $ proconsul acl binding-rule delete -id b6b856da-5193-4e78-845a-7d61ca8371ba
",
        &binding_rule_delete_flags(),
    )
}

pub fn binding_rule_delete(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&binding_rule_delete_flags(), args, binding_rule_delete_help)?;
    let given = p.str("id").unwrap_or_default();
    if given.is_empty() {
        return Err(ui::fail("Must specify the -id parameter"));
    }
    let c = client(&p)?;
    let id = binding_rule_id(&c, given)
        .map_err(|e| ui::fail(format!("Error determining binding rule ID: {e}")))?;
    c.acl_binding_rule_delete(&id)
        .map_err(|e| ui::fail(format!("Error deleting binding rule {id:?}: {e}")))?;
    ui::out(&format!("Binding rule {id:?} deleted successfully"));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// acl templated-policy
// ---------------------------------------------------------------------------------------------

/// Consul's `FormatTemplatedPolicy`: name, description, the variables the builtin templates
/// take with an example, and with `-meta` the schema and raw template.
fn format_templated_policy(t: &AclTemplatedPolicyResponse, meta: bool) -> String {
    let mut s = String::new();
    s.push_str(&format!("Name:            {}\n", t.template_name));
    s.push_str(&format!("Description:     {}\n", t.description));
    s.push_str("Input variables:");
    let name_var = match t.template_name.as_str() {
        "builtin/service" => Some(("The name of the service", "api")),
        "builtin/node" => Some(("The node name", "node-1")),
        "builtin/api-gateway" => Some(("The api gateway service name", "api-gateway")),
        _ => None,
    };
    match name_var {
        Some((what, example)) => {
            s.push_str(&format!("\n\tName: String - Required - {what}.\n"));
            s.push_str("Example usage:\n");
            s.push_str(&format!(
                "\tproconsul acl token create -templated-policy {} -var name:{example}\n",
                t.template_name
            ));
        }
        None if t.template_name.starts_with("builtin/") => {
            s.push_str(" None\nExample usage:\n");
            s.push_str(&format!(
                "\tproconsul acl token create -templated-policy {}\n",
                t.template_name
            ));
        }
        None => s.push_str("   None\n"),
    }
    if meta {
        if !t.schema.is_empty() {
            s.push_str(&format!("Schema:\n{}\n\n", t.schema));
        }
        s.push_str(&format!("Raw Template:\n{}\n", t.template));
    }
    s
}

pub fn templated_policy_help() -> String {
    "Usage: proconsul acl templated-policy <subcommand> [options] [args]

  This command has subcommands for managing Consul ACL templated policies.
  Here are some simple examples, and more detailed examples are available
  in the subcommands or the documentation.

  List all templated policies:

      $ proconsul acl templated-policy list

  Read a templated policy with name:

      $ proconsul acl templated-policy read -name \"builtin/service\"

  Preview a policy rendered by the templated policy:

      $ proconsul acl templated-policy preview -name \"builtin/service\" -var \"name:api\"

  For more examples, ask for subcommand help or view the documentation."
        .to_string()
}

fn templated_policy_list_flags() -> Vec<Flag> {
    spec(&[FORMAT])
}

pub fn templated_policy_list_help() -> String {
    flags::usage(
        "
Usage: proconsul acl templated-policy list [options]

    Lists all the ACL templated policies.

    Example:

        $ proconsul acl templated-policy list
",
        &templated_policy_list_flags(),
    )
}

pub fn templated_policy_list(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(
        &templated_policy_list_flags(),
        args,
        templated_policy_list_help,
    )?;
    let format = format_of(&p)?;
    let c = client(&p)?;
    let all = c.acl_templated_policy_list().map_err(|e| {
        ui::fail(format!(
            "Failed to retrieve the templated policies list: {e}"
        ))
    })?;
    show(format, &all, |m| {
        // Sorted by name (the map's order); one per line.
        m.values()
            .map(|t| format!("{}\n", t.template_name))
            .collect()
    });
    Ok(())
}

fn templated_policy_read_flags() -> Vec<Flag> {
    spec(&[
        Flag::string("name", "The name of the templated policy to read."),
        Flag::boolean(
            "meta",
            "Indicates that templated policy metadata such as the schema and template code \
             should be shown for each entry.",
        ),
        FORMAT,
    ])
}

pub fn templated_policy_read_help() -> String {
    flags::usage(
        "
Usage: proconsul acl templated-policy read [options] TEMPLATED_POLICY

  This command will retrieve and print out the details of a single templated policy.

  Example:

      $ proconsul acl templated-policy read -name templated-policy-name
",
        &templated_policy_read_flags(),
    )
}

pub fn templated_policy_read(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(
        &templated_policy_read_flags(),
        args,
        templated_policy_read_help,
    )?;
    let name = p.str("name").unwrap_or_default();
    if name.is_empty() {
        return Err(ui::fail("Must specify the -name parameter"));
    }
    let format = format_of(&p)?;
    let c = client(&p)?;
    let t = c
        .acl_templated_policy_read(name)
        .map_err(|e| ui::fail(format!("Error reading templated policy {name:?}: {e}")))?;
    show(format, &t, |t| format_templated_policy(t, p.bool("meta")));
    Ok(())
}

fn templated_policy_preview_flags() -> Vec<Flag> {
    spec(&[
        Flag::string(
            "name",
            "The templated policy name. Use -var flag to specify variables when required.",
        ),
        Flag::string(
            "var",
            "Templated policy variables. Must be used in combination with -name flag to specify \
             required variables. May be specified multiple times with different variables. \
             Format is VariableName:Value",
        ),
        FORMAT,
    ])
}

pub fn templated_policy_preview_help() -> String {
    flags::usage(
        "
Usage: proconsul acl templated-policy preview [options]

    Preview the policy rendered by the ACL templated policy.

    Example:

        $ proconsul acl templated-policy preview -name \"builtin/service\" -var \"name:api\"
",
        &templated_policy_preview_flags(),
    )
}

pub fn templated_policy_preview(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(
        &templated_policy_preview_flags(),
        args,
        templated_policy_preview_help,
    )?;
    let name = p.str("name").unwrap_or_default();
    if name.is_empty() {
        return Err(ui::fail(
            "Cannot preview a templated policy without specifying -name or -file",
        ));
    }
    let t = templated_policy(name, &p.all("var")).map_err(ui::fail)?;
    let format = format_of(&p)?;
    let c = client(&p)?;
    let var = t
        .template_variables
        .as_ref()
        .map(|v| v.name.as_str())
        .unwrap_or_default();
    let policy = c.acl_templated_policy_preview(name, var).map_err(|e| {
        ui::fail(format!(
            "Failed to generate the templated policy preview: {e}"
        ))
    })?;
    show(format, &policy, |v| format_policy(v, false));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// acl set-agent-token
// ---------------------------------------------------------------------------------------------

fn set_agent_token_flags() -> Vec<Flag> {
    spec(&[])
}

pub fn set_agent_token_help() -> String {
    flags::usage(
        "
Usage: proconsul acl set-agent-token [options] TYPE TOKEN

  This command will set the corresponding token for the agent to use. If token
  persistence is not enabled, then tokens uploaded this way are not persisted
  and if the agent reloads then the tokens will need to be set again.

  Token Types:

    default                           The default token is the token that the agent will use for
                                      both internal agent operations and operations initiated by
                                      the HTTP and DNS interfaces when no specific token is provided.
                                      If not set the agent will use the anonymous token.

    agent                             The token that the agent will use for internal agent operations.
                                      If not given then the default token is used for these operations.

    recovery                          This sets the token that can be used to access the Agent APIs in
                                      the event that the ACL datacenter cannot be reached.

    replication                       This is the token that the agent will use for replication
                                      operations. This token will need to be configured with read access
                                      to whatever data is being replicated.

    dns                               This is the token that the agent uses to answer DNS queries.

    config_file_service_registration  This is the token that the agent uses to register services
                                      and checks defined in config files. This token needs to
                                      be configured with permission for the service or checks
                                      being registered. If not set, the default token is used.
                                      If a service or check definition contains a 'token'
                                      field, then that token is used instead.

  Example:

    $ proconsul acl set-agent-token default c4d0f8df-3aba-4ab6-a7a0-35b760dc29a1
",
        &set_agent_token_flags(),
    )
}

pub fn set_agent_token(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&set_agent_token_flags(), args, set_agent_token_help)?;
    let (kind, token) = match p.args.as_slice() {
        [] => return Err(ui::fail("Error! Missing TYPE and TOKEN arguments")),
        [one] => {
            return Err(ui::fail(match one.as_str() {
                "default" | "agent" | "recovery" | "replication" => "Error! Missing TOKEN argument",
                _ => "Error! MISSING TYPE argument",
            }))
        }
        [kind, token] => {
            let token = load_data_source(token).map_err(|e| ui::fail(format!("Error! {e}")))?;
            (kind.as_str(), token)
        }
        more => {
            return Err(ui::fail(format!(
                "Error! Too many arguments: expected 2 got {}",
                more.len()
            )))
        }
    };
    let c = client(&p)?;
    let path_kind = match kind {
        "default" | "agent" | "replication" | "dns" | "config_file_service_registration" => kind,
        "recovery" => "agent_recovery",
        _ => return Err(ui::fail("Unknown token type")),
    };
    c.agent_set_token(path_kind, &token)
        .map_err(|e| ui::fail(format!("Failed to set ACL token {kind:?}: {e}")))?;
    ui::out(&format!("ACL token {kind:?} set successfully"));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// login / logout
// ---------------------------------------------------------------------------------------------

fn login_flags() -> Vec<Flag> {
    spec(&[
        Flag::string("method", "Name of the auth method to login to."),
        Flag::string(
            "type",
            "Type of the auth method to login to. This field is optional and defaults to no \
             type.",
        ),
        Flag::string(
            "bearer-token-file",
            "Path to a file containing a secret bearer token to use with this auth method.",
        ),
        Flag::string(
            "token-sink-file",
            "The most recent token's SecretID is kept up to date in this file.",
        ),
        Flag::new(
            "meta",
            flags::Kind::Str,
            "value",
            "Metadata to set on the token, formatted as key=value. This flag may be specified \
             multiple times to set multiple meta fields.",
        ),
    ])
}

pub fn login_help() -> String {
    flags::usage(
        "
Usage: proconsul login [options]

  The login command will exchange the provided third party credentials with the
  requested auth method for a newly minted Consul ACL token. The companion
  command 'proconsul logout' should be used to destroy any tokens created this way
  to avoid a resource leak.
",
        &login_flags(),
    )
}

pub fn login(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&login_flags(), args, login_help)?;
    if !p.args.is_empty() {
        return Err(ui::fail("Should have no non-flag arguments."));
    }
    let method = p.str("method").unwrap_or_default();
    if method.is_empty() {
        return Err(ui::fail("Missing required '-method' flag"));
    }
    let sink = p.str("token-sink-file").unwrap_or_default();
    if sink.is_empty() {
        return Err(ui::fail("Missing required '-token-sink-file' flag"));
    }
    let bearer_file = p.str("bearer-token-file").unwrap_or_default();
    if bearer_file.is_empty() {
        return Err(ui::fail("Missing required '-bearer-token-file' flag"));
    }
    let mut meta = std::collections::BTreeMap::new();
    for kv in p.all("meta") {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        meta.insert(k.to_string(), v.to_string());
    }
    let bearer = std::fs::read_to_string(bearer_file)
        .map_err(|e| ui::fail(ui::go_io_error("open", bearer_file, &e)))?;
    let bearer = bearer.trim();
    if bearer.is_empty() {
        return Err(ui::fail(format!("No bearer token found in {bearer_file}")));
    }
    // A login never carries a token of its own, whatever the flags or environment say.
    let mut cfg = super::api_config(&p);
    cfg.token = None;
    cfg.token_file = None;
    let c = super::client_from(cfg)?;
    let t = c
        .acl_login(&proconsul_types::AclLoginParams {
            auth_method: method.to_string(),
            bearer_token: bearer.to_string(),
            meta,
        })
        .map_err(|e| ui::fail(format!("Error logging in: {e}")))?;
    write_sink(sink, &t.secret_id)
        .map_err(|e| ui::fail(format!("Error writing token to file sink: {e}")))?;
    Ok(())
}

/// Write the secret next to `path` with mode 0600, then rename it into place.
fn write_sink(path: &str, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = format!("{path}.tmp{}", std::process::id());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(secret.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn logout_flags() -> Vec<Flag> {
    spec(&[])
}

pub fn logout_help() -> String {
    flags::usage(
        "
Usage: proconsul logout [options]

  The logout command will destroy the provided token if it was created from
  'proconsul login'.
",
        &logout_flags(),
    )
}

pub fn logout(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&logout_flags(), args, logout_help)?;
    if !p.args.is_empty() {
        return Err(ui::fail("Should have no non-flag arguments."));
    }
    let c = client(&p)?;
    c.acl_logout()
        .map_err(|e| ui::fail(format!("Error destroying token: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(id: &str, name: &str) -> AclLink {
        AclLink {
            id: id.into(),
            name: name.into(),
        }
    }

    #[test]
    fn go_time_layout() {
        assert_eq!(
            go_time("2026-11-25T09:10:08.727000000Z"),
            "2026-11-25 09:10:08.727 +0000 UTC"
        );
        assert_eq!(
            go_time("2026-11-25T09:10:08.000000000Z"),
            "2026-11-25 09:10:08 +0000 UTC"
        );
        assert_eq!(
            go_time("2026-11-25T10:10:08+01:00"),
            "2026-11-25 10:10:08 +0100 +0100"
        );
        assert_eq!(go_time(""), "0001-01-01 00:00:00 +0000 UTC");
    }

    #[test]
    fn token_layout_like_consul() {
        let t = AclToken {
            accessor_id: "fbd2447f-7479-4329-ad13-b021d74f86ba".into(),
            secret_id: "257ade69-748c-4022-bafd-76d27d9143f8".into(),
            description: "test token".into(),
            create_time: "2020-05-22T18:52:31Z".into(),
            policies: vec![link("beb04680-815b-4d7c-9e33-3d707c24672c", "hobbiton")],
            service_identities: vec![AclServiceIdentity {
                service_name: "gardener".into(),
                datacenters: vec!["middleearth-northwest".into()],
            }],
            node_identities: vec![AclNodeIdentity {
                node_name: "bagend".into(),
                datacenter: "middleearth-northwest".into(),
            }],
            hash: "AQL/".into(),
            create_index: 5,
            modify_index: 10,
            ..AclToken::default()
        };
        assert_eq!(
            format_token(&t, true),
            "AccessorID:       fbd2447f-7479-4329-ad13-b021d74f86ba\n\
             SecretID:         257ade69-748c-4022-bafd-76d27d9143f8\n\
             Description:      test token\n\
             Local:            false\n\
             Create Time:      2020-05-22 18:52:31 +0000 UTC\n\
             Hash:             0102ff\n\
             Create Index:     5\n\
             Modify Index:     10\n\
             Policies:\n   beb04680-815b-4d7c-9e33-3d707c24672c - hobbiton\n\
             Service Identities:\n   gardener (Datacenters: middleearth-northwest)\n\
             Node Identities:\n   bagend (Datacenter: middleearth-northwest)\n"
        );
        let two = format_token_list(&[t.clone(), t], false);
        assert!(two.contains("bagend (Datacenter: middleearth-northwest)\n\nAccessorID:"));
    }

    #[test]
    fn policy_layouts_like_consul() {
        let p = AclPolicy {
            id: "id1".into(),
            name: "web".into(),
            description: "d".into(),
            datacenters: vec!["dc1".into(), "dc2".into()],
            rules: Some("key_prefix \"\" { policy = \"read\" }".into()),
            ..AclPolicy::default()
        };
        assert_eq!(
            format_policy(&p, false),
            "ID:           id1\nName:         web\nDescription:  d\nDatacenters:  dc1, dc2\n\
             Rules:\nkey_prefix \"\" { policy = \"read\" }"
        );
        assert_eq!(
            format_policy_list(&[p], false),
            "web:\n   ID:           id1\n   Description:  d\n   Datacenters:  dc1, dc2\n"
        );
    }

    #[test]
    fn role_list_indents_its_links() {
        let r = AclRole {
            id: "r1".into(),
            name: "ops".into(),
            policies: vec![link("p1", "web")],
            ..AclRole::default()
        };
        assert_eq!(
            format_role_list(&[r], false),
            "ops:\n   ID:           r1\n   Description:  \n   Policies:\n      p1 - web\n"
        );
    }

    #[test]
    fn prefixes_resolve_to_one_id() {
        let ids = || vec!["abc-1".to_string(), "abd-2".to_string()];
        assert_eq!(unique_prefix("policy", "abc", ids()).unwrap(), "abc-1");
        assert_eq!(
            unique_prefix("policy", "ab", ids()).unwrap_err(),
            "Partial policy ID is not unique"
        );
        assert_eq!(
            unique_prefix("token", "x", ids()).unwrap_err(),
            "No such token ID with prefix: x"
        );
    }

    #[test]
    fn identities_parse_like_consul() {
        let s = service_identities(&["web".into(), "db:east,west".into()]).unwrap();
        assert_eq!(s[1].datacenters, vec!["east", "west"]);
        assert!(s[0].datacenters.is_empty());
        assert_eq!(
            service_identities(&["a:b:c".into()]).unwrap_err(),
            "Malformed -service-identity argument: \"a:b:c\""
        );
        assert_eq!(
            node_identities(&["n1".into()]).unwrap_err(),
            "Malformed -node-identity argument: \"n1\""
        );
        let t = templated_policy("builtin/service", &["name:api".into()]).unwrap();
        assert_eq!(t.template_variables.unwrap().name, "api");
    }

    #[test]
    fn auth_method_and_binding_rule_layouts() {
        let mut config = serde_json::Map::new();
        config.insert("Host".into(), "https://k8s:8443".into());
        let m = AclAuthMethod {
            name: "minikube".into(),
            kind: "kubernetes".into(),
            max_token_ttl: "10m0s".into(),
            config: Some(config),
            ..AclAuthMethod::default()
        };
        assert_eq!(
            format_auth_method(&m, false),
            "Name:          minikube\nType:          kubernetes\nDescription:   \n\
             MaxTokenTTL:   10m0s\nConfig:\n{\n  \"Host\": \"https://k8s:8443\"\n}"
        );
        let r = AclBindingRule {
            id: "b1".into(),
            auth_method: "minikube".into(),
            bind_type: "service".into(),
            bind_name: "web".into(),
            ..AclBindingRule::default()
        };
        assert_eq!(
            format_binding_rule_list(&[r], false),
            "b1:\n   AuthMethod:   minikube\n   Description:  \n   BindType:     service\n\
             \x20  BindName:     web\n   Selector:     \n"
        );
    }

    #[test]
    fn merged_links_skip_duplicates() {
        let mut cur = vec![link("p1", "web")];
        merge_links(&mut cur, vec![link("", "web"), link("p2", "")]);
        assert_eq!(cur, vec![link("p1", "web"), link("p2", "")]);
    }
}
