//! `kv get`, `kv put`, `kv delete`: Consul's texts, checks and exit codes, byte for byte where
//! scripts read them (`Error! No key exists at: x`, `Success! Data written to: x`).

use std::io::Read;

use base64::Engine;
use proconsul_api::{KvEntry, KvWrite};

use super::{client, parse_flags, query_options};
use crate::flags::{self, Flag, Kind, CLIENT_FLAGS, SERVER_FLAGS};
use crate::ui;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub fn help() -> String {
    "Usage: proconsul kv <subcommand> [options] [args]

  This command has subcommands for interacting with Consul's key-value
  store. Here are some simple examples, and more detailed examples are
  available in the subcommands or the documentation.

  Create or update the key named \"redis/config/connections\" with the value \"5\":

      $ proconsul kv put redis/config/connections 5

  Read this value back:

      $ proconsul kv get redis/config/connections

  Or get detailed key information:

      $ proconsul kv get -detailed redis/config/connections

  Finally, delete the key:

      $ proconsul kv delete redis/config/connections

  For more examples, ask for subcommand help or view the documentation."
        .to_string()
}

// ---------------------------------------------------------------- get

const GET_FLAGS: &[Flag] = &[
    Flag::boolean(
        "base64",
        "Base64 encode the value. The default value is false.",
    ),
    Flag::boolean(
        "detailed",
        "Provide additional metadata about the key in addition to the value such as the \
         ModifyIndex and any flags that may have been set on the key. The default value is false.",
    ),
    Flag::boolean(
        "keys",
        "List keys which start with the given prefix, but not their values. This is \
         especially useful if you only need the key names themselves. This option is commonly \
         combined with the -separator option. The default value is false.",
    ),
    Flag::boolean(
        "recurse",
        "Recursively look at all keys prefixed with the given path. The default value is false.",
    ),
    Flag::string(
        "separator",
        "String to use as a separator between keys. The default value is \"/\", but this \
         option is only taken into account when paired with the -keys flag.",
    ),
];

fn get_flags() -> Vec<Flag> {
    flags::with(GET_FLAGS, &[CLIENT_FLAGS, SERVER_FLAGS])
}

pub fn get_help() -> String {
    flags::usage(
        r#"
Usage: proconsul kv get [options] [KEY_OR_PREFIX]

  Retrieves the value from Consul's key-value store at the given key name. If no
  key exists with that name, an error is returned. If a key exists with that
  name but has no data, nothing is returned. If the name or prefix is omitted,
  it defaults to "" which is the root of the key-value store.

  To retrieve the value for the key named "foo" in the key-value store:

      $ proconsul kv get foo

  This will return the original, raw value stored in Consul. To view detailed
  information about the key, specify the "-detailed" flag. This will output all
  known metadata about the key including ModifyIndex and any user-supplied
  flags:

      $ proconsul kv get -detailed foo

  To treat the path as a prefix and list all keys which start with the given
  prefix, specify the "-recurse" flag:

      $ proconsul kv get -recurse foo

  This will return all key-value pairs. To just list the keys which start with
  the specified prefix, use the "-keys" option instead:

      $ proconsul kv get -keys foo

  For a full list of options and examples, please see the Consul documentation.
"#,
        &get_flags(),
    )
}

/// The value as `kv get` prints it: raw, or base64 with `-base64`.
fn value_bytes(e: &KvEntry, base64: bool) -> Vec<u8> {
    let v = e.value.as_deref().unwrap_or_default();
    if base64 {
        B64.encode(v).into_bytes()
    } else {
        v.to_vec()
    }
}

/// The `-detailed` block: Go's tabwriter (padding 6) over the entry's fields, no final newline.
pub fn pretty_entry(e: &KvEntry, base64: bool) -> Vec<u8> {
    let cell = |s: &str| s.as_bytes().to_vec();
    let session = e
        .session
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or("-");
    let rows = vec![
        vec![cell("CreateIndex"), cell(&e.create_index.to_string())],
        vec![cell("Flags"), cell(&e.flags.to_string())],
        vec![cell("Key"), cell(&e.key)],
        vec![cell("LockIndex"), cell(&e.lock_index.to_string())],
        vec![cell("ModifyIndex"), cell(&e.modify_index.to_string())],
        vec![cell("Session"), cell(session)],
        vec![cell("Value"), value_bytes(e, base64)],
    ];
    ui::tabwrite(&rows, 6)
}

/// The one optional KEY argument of `kv get`/`kv delete`, without a leading `/` (Consul strips it).
fn single_key(args: &[String]) -> anyhow::Result<String> {
    let key = match args.len() {
        0 => String::new(),
        1 => args[0].clone(),
        n => {
            return Err(ui::fail(format!(
                "Too many arguments (expected 1, got {n})"
            )))
        }
    };
    Ok(key.strip_prefix('/').map(str::to_string).unwrap_or(key))
}

pub fn get(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&get_flags(), args, get_help)?;
    let key = single_key(&p.args)?;
    let (keys, recurse, detailed, b64) = (
        p.bool("keys"),
        p.bool("recurse"),
        p.bool("detailed"),
        p.bool("base64"),
    );
    if key.is_empty() && !(recurse || keys) {
        return Err(ui::fail("Error! Missing KEY argument"));
    }
    let c = client(&p)?;
    let opts = query_options(&p);
    let query_err = |e: proconsul_api::Error| ui::fail(format!("Error querying Consul agent: {e}"));

    if keys {
        let sep = p.str("separator").unwrap_or("/");
        let (keys, _) = c.kv_keys(&key, sep, &opts).map_err(query_err)?;
        for k in keys {
            ui::out(&k);
        }
        return Ok(());
    }
    if recurse {
        let (entries, _) = c.kv_list(&key, &opts).map_err(query_err)?;
        for (i, e) in entries.iter().enumerate() {
            if detailed {
                ui::out_bytes(&pretty_entry(e, b64));
                if i + 1 < entries.len() {
                    ui::out("");
                }
            } else {
                let mut line = e.key.as_bytes().to_vec();
                line.push(b':');
                line.extend(value_bytes(e, b64));
                ui::out_bytes(&line);
            }
        }
        return Ok(());
    }
    let (entry, _) = c.kv_get(&key, &opts).map_err(query_err)?;
    let Some(e) = entry else {
        return Err(ui::fail(format!("Error! No key exists at: {key}")));
    };
    if detailed {
        ui::out_bytes(&pretty_entry(&e, b64));
    } else {
        // Consul prints the raw value; `-base64` only affects -detailed and -recurse.
        ui::out_bytes(e.value.as_deref().unwrap_or_default());
    }
    Ok(())
}

// ---------------------------------------------------------------- put

const PUT_FLAGS: &[Flag] = &[
    Flag::boolean(
        "acquire",
        "Obtain a lock on the key. If the key does not exist, this operation will create the \
         key and obtain the lock. The session must already exist and be specified via the \
         -session flag. The default value is false.",
    ),
    Flag::boolean(
        "base64",
        "Treat the data as base 64 encoded. The default value is false.",
    ),
    Flag::boolean(
        "cas",
        "Perform a Check-And-Set operation. Specifying this value also requires the \
         -modify-index flag to be set. The default value is false.",
    ),
    Flag::new(
        "flags",
        Kind::Uint,
        "uint",
        "Unsigned integer value to assign to this key-value pair. This value is not read by \
         Consul, so clients can use this value however makes sense for their use case. The \
         default value is 0 (no flags).",
    ),
    Flag::new(
        "modify-index",
        Kind::Uint,
        "uint",
        "Unsigned integer representing the ModifyIndex of the key. This is used in \
         combination with the -cas flag.",
    ),
    Flag::boolean(
        "release",
        "Forfeit the lock on the key at the given path. This requires the -session flag to be \
         set. The key must be held by the session in order to be unlocked. The default value \
         is false.",
    ),
    Flag::string(
        "session",
        "User-defined identifer for this session as a string. This is commonly used with the \
         -acquire and -release operations to build robust locking, but it can be set on any \
         key. The default value is empty (no session).",
    ),
];

fn put_flags() -> Vec<Flag> {
    flags::with(PUT_FLAGS, &[CLIENT_FLAGS, SERVER_FLAGS])
}

pub fn put_help() -> String {
    flags::usage(
        r#"
Usage: proconsul kv put [options] KEY [DATA]

  Writes the data to the given path in the key-value store. The data can be of
  any type.

      $ proconsul kv put config/redis/maxconns 5

  The data can also be consumed from a file on disk by prefixing with the "@"
  symbol. For example:

      $ proconsul kv put config/program/license @license.lic

  Or it can be read from stdin using the "-" symbol:

      $ echo "abcd1234" | proconsul kv put config/program/license -

  The DATA argument itself is optional. If omitted, this will create an empty
  key-value pair at the specified path:

      $ proconsul kv put webapp/beta/active

  If the -base64 flag is specified, the data will be treated as base 64
  encoded.

  To perform a Check-And-Set operation, specify the -cas flag with the
  appropriate -modify-index flag corresponding to the key you want to perform
  the CAS operation on:

      $ proconsul kv put -cas -modify-index=844 config/redis/maxconns 5

  Additional flags and more advanced use cases are detailed below.
"#,
        &put_flags(),
    )
}

/// KEY and DATA from the positional arguments: DATA may be `@file`, `-` for stdin, or literal.
pub fn data_from_args(args: &[String], stdin: &mut dyn Read) -> Result<(String, Vec<u8>), String> {
    match args.len() {
        0 => return Err("Missing KEY argument".into()),
        1 => return Ok((args[0].clone(), Vec::new())),
        2 => {}
        n => return Err(format!("Too many arguments (expected 1 or 2, got {n})")),
    }
    let (key, data) = (args[0].clone(), &args[1]);
    if let Some(path) = data.strip_prefix('@') {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("Failed to read file: {}", ui::go_io_error("open", path, &e)))?;
        return Ok((key, bytes));
    }
    if data == "-" {
        let mut buf = Vec::new();
        stdin
            .read_to_end(&mut buf)
            .map_err(|e| format!("Failed to read stdin: {e}"))?;
        return Ok((key, buf));
    }
    Ok((key, data.as_bytes().to_vec()))
}

pub fn put(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&put_flags(), args, put_help)?;
    let (key, mut data) = data_from_args(&p.args, &mut std::io::stdin())
        .map_err(|e| ui::fail(format!("Error! {e}")))?;
    if p.bool("base64") {
        // Consul reports the decode error but carries on with whatever decoded; we stop, so
        // a typo never writes garbage.
        data = B64
            .decode(&data)
            .map_err(|e| ui::fail(format!("Error! Cannot base 64 decode data: {e}")))?;
    }
    let session = p.str("session").unwrap_or_default().to_string();
    let (acquire, release, cas) = (p.bool("acquire"), p.bool("release"), p.bool("cas"));
    let modify_index = p.u64("modify-index").unwrap_or(0);
    if (acquire || release) && session.is_empty() {
        return Err(ui::fail(
            "Error! Missing -session (required with -acquire and -release)",
        ));
    }
    if cas && modify_index == 0 {
        return Err(ui::fail("Must specify -modify-index with -cas!"));
    }
    let c = client(&p)?;
    let mut write = KvWrite {
        flags: p.u64("flags").unwrap_or(0),
        ..KvWrite::default()
    };
    if cas {
        write.cas = Some(modify_index);
        let ok = c
            .kv_put(&key, &data, &write)
            .map_err(|e| ui::fail(format!("Error! Did not write to {key}: {e}")))?;
        if !ok {
            return Err(ui::fail(format!(
                "Error! Did not write to {key}: CAS failed"
            )));
        }
        ui::out(&format!("Success! Data written to: {key}"));
    } else if acquire {
        write.acquire = Some(session);
        let ok = c
            .kv_put(&key, &data, &write)
            .map_err(|e| ui::fail(format!("Error! Failed writing data: {e}")))?;
        if !ok {
            return Err(ui::fail("Error! Did not acquire lock"));
        }
        ui::out(&format!("Success! Lock acquired on: {key}"));
    } else if release {
        write.release = Some(session);
        // Consul prints the key here, not the error; kept for identical output.
        let ok = c
            .kv_put(&key, &data, &write)
            .map_err(|_| ui::fail(format!("Error! Failed writing data: {key}")))?;
        if !ok {
            return Err(ui::fail("Error! Did not release lock"));
        }
        ui::out(&format!("Success! Lock released on: {key}"));
    } else {
        c.kv_put(&key, &data, &write)
            .map_err(|e| ui::fail(format!("Error! Failed writing data: {e}")))?;
        ui::out(&format!("Success! Data written to: {key}"));
    }
    Ok(())
}

// ---------------------------------------------------------------- delete

const DELETE_FLAGS: &[Flag] = &[
    Flag::boolean(
        "cas",
        "Perform a Check-And-Set operation. Specifying this value also requires the \
         -modify-index flag to be set. The default value is false.",
    ),
    Flag::new(
        "modify-index",
        Kind::Uint,
        "uint",
        "Unsigned integer representing the ModifyIndex of the key. This is used in \
         combination with the -cas flag.",
    ),
    Flag::boolean(
        "recurse",
        "Recursively delete all keys with the path. The default value is false.",
    ),
];

fn delete_flags() -> Vec<Flag> {
    flags::with(DELETE_FLAGS, &[CLIENT_FLAGS, SERVER_FLAGS])
}

pub fn delete_help() -> String {
    flags::usage(
        r#"
Usage: proconsul kv delete [options] KEY_OR_PREFIX

  Removes the value from Consul's key-value store at the given path. If no
  key exists at the path, no action is taken.

  To delete the value for the key named "foo" in the key-value store:

      $ proconsul kv delete foo

  To delete all keys which start with "foo", specify the -recurse option:

      $ proconsul kv delete -recurse foo

  This will delete the keys named "foo", "food", and "foo/bar/zip" if they
  existed.
"#,
        &delete_flags(),
    )
}

pub fn delete(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&delete_flags(), args, delete_help)?;
    let key = single_key(&p.args)?;
    let (cas, recurse) = (p.bool("cas"), p.bool("recurse"));
    let modify_index = p.u64("modify-index").unwrap_or(0);
    if key.is_empty() && !recurse {
        return Err(ui::fail("Error! Missing KEY argument"));
    }
    if cas && modify_index == 0 {
        return Err(ui::fail(
            "Cannot delete a key that does not exist. Provide a -modify-index greater than than 0.",
        ));
    }
    if modify_index != 0 && !cas {
        return Err(ui::fail("Cannot specify -modify-index without -cas!"));
    }
    if recurse && cas {
        return Err(ui::fail("Cannot specify both -cas and -recurse!"));
    }
    let c = client(&p)?;
    if recurse {
        c.kv_delete(&key, true, None)
            .map_err(|e| ui::fail(format!("Error! Did not delete prefix {key}: {e}")))?;
        ui::out(&format!("Success! Deleted keys with prefix: {key}"));
    } else if cas {
        let ok = c
            .kv_delete(&key, false, Some(modify_index))
            .map_err(|e| ui::fail(format!("Error! Did not delete key {key}: {e}")))?;
        if !ok {
            return Err(ui::fail(format!(
                "Error! Did not delete key {key}: CAS failed"
            )));
        }
        ui::out(&format!("Success! Deleted key: {key}"));
    } else {
        c.kv_delete(&key, false, None)
            .map_err(|e| ui::fail(format!("Error deleting key {key}: {e}")))?;
        ui::out(&format!("Success! Deleted key: {key}"));
    }
    Ok(())
}

// ---------------------------------------------------------------- export / import

/// One entry of `kv export`/`kv import` (Consul's `impexp.Entry`): the value is base64.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportEntry {
    pub key: String,
    #[serde(default)]
    pub flags: u64,
    #[serde(default)]
    pub value: String,
}

pub fn export_help() -> String {
    flags::usage(
        r#"
Usage: proconsul kv export [KEY_OR_PREFIX]

  Retrieves key-value pairs for the given prefix from Consul's key-value store,
  and writes a JSON representation to stdout. This can be used with the command
  "proconsul kv import" to move entire trees between Consul clusters.

      $ proconsul kv export vault

  For a full list of options and examples, please see the Consul documentation.
"#,
        &flags::with(&[], &[CLIENT_FLAGS, SERVER_FLAGS]),
    )
}

/// The export document: Go's `json.MarshalIndent(entries, "", "\t")`.
pub fn render_export(entries: &[KvEntry]) -> String {
    let out: Vec<ExportEntry> = entries
        .iter()
        .map(|e| ExportEntry {
            key: e.key.clone(),
            flags: e.flags,
            value: B64.encode(e.value.as_deref().unwrap_or_default()),
        })
        .collect();
    ui::go_json(&out, Some("\t"))
}

pub fn export(args: &[String]) -> anyhow::Result<()> {
    let spec = flags::with(&[], &[CLIENT_FLAGS, SERVER_FLAGS]);
    let p = parse_flags(&spec, args, export_help)?;
    let key = match p.args.len() {
        0 => "",
        1 => p.args[0].as_str(),
        n => {
            return Err(ui::fail(format!(
                "Too many arguments (expected 1, got {n})"
            )))
        }
    };
    let key = key.strip_prefix('/').unwrap_or(key);
    let c = client(&p)?;
    let (entries, _) = c
        .kv_list(key, &query_options(&p))
        .map_err(|e| ui::fail(format!("Error querying Consul agent: {e}")))?;
    ui::out(&render_export(&entries));
    Ok(())
}

const IMPORT_FLAGS: &[Flag] = &[Flag::string(
    "prefix",
    "Key prefix for imported data. The default value is empty meaning root of the key-value \
     store.",
)];

fn import_flags() -> Vec<Flag> {
    flags::with(IMPORT_FLAGS, &[CLIENT_FLAGS, SERVER_FLAGS])
}

pub fn import_help() -> String {
    flags::usage(
        r#"
Usage: proconsul kv import [DATA]

  Imports key-value pairs to the key-value store from the JSON representation
  generated by the "proconsul kv export" command.

  The data can be read from a file by prefixing the filename with the "@"
  symbol. For example:

      $ proconsul kv import @filename.json

  Or it can be read from stdin using the "-" symbol:

      $ cat filename.json | proconsul kv import -

  Alternatively the data may be provided as the final parameter to the command,
  though care must be taken with regards to shell escaping.

  For a full list of options and examples, please see the Consul documentation.
"#,
        &import_flags(),
    )
}

/// The DATA argument of `kv import`: `@file`, `-` for stdin, or the JSON itself.
pub fn import_data(args: &[String], stdin: &mut dyn Read) -> Result<Vec<u8>, String> {
    let data = match args {
        [] => return Err("Missing DATA argument".into()),
        [d] => d,
        _ => {
            return Err(format!(
                "Too many arguments (expected 1, got {})",
                args.len()
            ))
        }
    };
    if data.is_empty() {
        return Err("Empty DATA argument".into());
    }
    if let Some(path) = data.strip_prefix('@') {
        return std::fs::read(path)
            .map_err(|e| format!("Failed to read file: {}", ui::go_io_error("open", path, &e)));
    }
    if data == "-" {
        let mut buf = Vec::new();
        stdin
            .read_to_end(&mut buf)
            .map_err(|e| format!("Failed to read stdin: {e}"))?;
        return Ok(buf);
    }
    Ok(data.as_bytes().to_vec())
}

/// Where an imported key lands under `-prefix` (a trailing `/` of the key is kept).
pub fn prefixed_key(prefix: &str, key: &str) -> String {
    let prefix = prefix.trim_matches('/');
    let key = key.trim_start_matches('/');
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}/{key}")
    }
}

pub fn import(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&import_flags(), args, import_help)?;
    let data =
        import_data(&p.args, &mut std::io::stdin()).map_err(|e| ui::fail(format!("Error! {e}")))?;
    let c = client(&p)?;
    let entries: Vec<ExportEntry> = serde_json::from_slice(&data)
        .map_err(|e| ui::fail(format!("Cannot unmarshal data: {e}")))?;
    let prefix = p.str("prefix").unwrap_or_default();
    for entry in entries {
        let value = B64.decode(entry.value.as_bytes()).map_err(|e| {
            ui::fail(format!(
                "Error base 64 decoding value for key {}: {e}",
                entry.key
            ))
        })?;
        let key = prefixed_key(prefix, &entry.key);
        let write = KvWrite {
            flags: entry.flags,
            ..KvWrite::default()
        };
        c.kv_put(&key, &value, &write)
            .map_err(|e| ui::fail(format!("Error! Failed writing data for key {key}: {e}")))?;
        ui::out(&format!("Imported: {key}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detailed_block_matches_consul() {
        let e = KvEntry {
            key: "redis/config/connections".into(),
            value: Some(b"5".to_vec()),
            create_index: 207,
            modify_index: 207,
            ..KvEntry::default()
        };
        assert_eq!(
            String::from_utf8(pretty_entry(&e, false)).unwrap(),
            "CreateIndex      207\n\
             Flags            0\n\
             Key              redis/config/connections\n\
             LockIndex        0\n\
             ModifyIndex      207\n\
             Session          -\n\
             Value            5"
        );
        assert!(String::from_utf8(pretty_entry(&e, true))
            .unwrap()
            .ends_with("Value            NQ=="));
    }

    #[test]
    fn export_format_matches_consul() {
        let e = KvEntry {
            key: "a/b".into(),
            flags: 42,
            value: Some(b"hi".to_vec()),
            ..KvEntry::default()
        };
        assert_eq!(
            render_export(&[e]),
            "[\n\t{\n\t\t\"key\": \"a/b\",\n\t\t\"flags\": 42,\n\t\t\"value\": \"aGk=\"\n\t}\n]"
        );
        assert_eq!(render_export(&[]), "[]");
        assert_eq!(prefixed_key("", "a/"), "a/");
        assert_eq!(prefixed_key("x/", "a/b"), "x/a/b");
        let mut none: &[u8] = b"";
        assert_eq!(
            import_data(&[], &mut none).unwrap_err(),
            "Missing DATA argument"
        );
        assert_eq!(
            import_data(&["".to_string()], &mut none).unwrap_err(),
            "Empty DATA argument"
        );
    }

    #[test]
    fn put_data_sources() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut stdin: &[u8] = b"from stdin";
        assert_eq!(
            data_from_args(&a(&["k", "-"]), &mut stdin).unwrap(),
            ("k".to_string(), b"from stdin".to_vec())
        );
        let mut none: &[u8] = b"";
        assert_eq!(data_from_args(&a(&["k"]), &mut none).unwrap().1, b"");
        assert_eq!(
            data_from_args(&a(&["k", "-x"]), &mut none).unwrap().1,
            b"-x"
        );
        assert_eq!(
            data_from_args(&a(&["k", "@/nonexistent/x"]), &mut none).unwrap_err(),
            "Failed to read file: open /nonexistent/x: no such file or directory"
        );
        assert_eq!(
            data_from_args(&a(&["k", "v", "w"]), &mut none).unwrap_err(),
            "Too many arguments (expected 1 or 2, got 3)"
        );
    }
}
