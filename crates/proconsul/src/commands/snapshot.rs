//! `snapshot save|restore|inspect`: point-in-time archives of the servers' state (a gzip'd tar
//! with `meta.json`, `state.bin` and `SHA256SUMS`, verified before use).

use super::{client, parse_flags};
use crate::flags::{self, CLIENT_FLAGS, SERVER_FLAGS};
use crate::ui;

pub fn help() -> String {
    "Usage: proconsul snapshot <subcommand> [options] [args]

  This command has subcommands for saving, restoring, and inspecting the state
  of the Consul servers for disaster recovery. These are atomic, point-in-time
  snapshots which include key/value entries, service catalog, sessions and
  more.

  Create a snapshot:

      $ proconsul snapshot save backup.snap

  Restore a snapshot:

      $ proconsul snapshot restore backup.snap

  Inspect a snapshot:

      $ proconsul snapshot inspect backup.snap"
        .to_string()
}

fn one_file(p: &flags::Parsed, help: fn() -> String) -> anyhow::Result<String> {
    match p.args.as_slice() {
        [f] => Ok(f.clone()),
        [] => {
            ui::err("Missing FILE argument");
            ui::err(&help());
            Err(ui::exit_silently(1))
        }
        _ => Err(ui::fail(format!(
            "Too many arguments (expected 1, got {})",
            p.args.len()
        ))),
    }
}

fn save_flags() -> Vec<flags::Flag> {
    flags::with(&[], &[CLIENT_FLAGS, SERVER_FLAGS])
}

pub fn save_help() -> String {
    flags::usage(
        "
Usage: proconsul snapshot save [options] FILE

  Retrieves an atomic, point-in-time snapshot of the state of the Consul servers
  which includes key/value entries, service catalog, sessions and more.

  If ACLs are enabled, a management token must be supplied in order to perform
  snapshot operations.
",
        &save_flags(),
    )
}

pub fn save(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&save_flags(), args, save_help)?;
    let file = one_file(&p, save_help)?;
    let c = client(&p)?;
    let archive = c
        .snapshot_save(p.bool("stale"))
        .map_err(|e| ui::fail(format!("Error saving snapshot: {e}")))?;
    let (meta, _) = proconsul_archive::read(&archive)
        .map_err(|e| ui::fail(format!("Error verifying snapshot file: {e}")))?;
    let tmp = format!("{file}.part");
    std::fs::write(&tmp, &archive)
        .and_then(|_| std::fs::rename(&tmp, &file))
        .map_err(|e| ui::fail(format!("Error writing snapshot file: {e}")))?;
    ui::out(&format!(
        "Saved and verified snapshot to index {}",
        meta.index
    ));
    Ok(())
}

pub fn restore_help() -> String {
    flags::usage(
        "
Usage: proconsul snapshot restore [options] FILE

  Restores an atomic, point-in-time snapshot of the state of the Consul servers
  which includes key/value entries, service catalog, sessions and more.

  This is useful for disaster recovery. Note that this replaces the whole state
  of the datacenter; writes since the snapshot are lost.
",
        CLIENT_FLAGS,
    )
}

pub fn restore(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(CLIENT_FLAGS, args, restore_help)?;
    let file = one_file(&p, restore_help)?;
    let archive =
        std::fs::read(&file).map_err(|e| ui::fail(format!("Error opening snapshot file: {e}")))?;
    let c = client(&p)?;
    c.snapshot_restore(&archive)
        .map_err(|e| ui::fail(format!("Error restoring snapshot: {e}")))?;
    ui::out("Restored snapshot");
    Ok(())
}

const INSPECT_FLAGS: &[flags::Flag] = &[
    flags::Flag::boolean(
        "kvdetails",
        "Provides a detailed KV space usage breakdown for any KV data that's been stored.",
    ),
    flags::Flag::new(
        "kvdepth",
        flags::Kind::Int,
        "int",
        "Can only be used with -kvdetails. The key prefix depth used to breakdown KV store \
         data. Defaults to 2.",
    ),
    flags::Flag::string(
        "kvfilter",
        "Can only be used with -kvdetails. Limits KV key breakdown using this prefix filter.",
    ),
    flags::Flag::string("format", "Output format {pretty|json}"),
];

pub fn inspect_help() -> String {
    flags::usage(
        "
Usage: proconsul snapshot inspect [options] FILE

  Displays information about a snapshot file on disk.

  To inspect the file \"backup.snap\":

    $ proconsul snapshot inspect backup.snap
",
        INSPECT_FLAGS,
    )
}

/// One row of a breakdown (Consul's `typeStats`).
#[derive(serde::Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
struct TypeStats {
    name: String,
    sum: u64,
    count: u64,
}

/// What `-format json` prints (Consul's `OutputFormat`).
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Inspection {
    meta: proconsul_archive::SnapshotMeta,
    stats: Vec<TypeStats>,
    #[serde(rename = "StatsKV")]
    stats_kv: Option<Vec<TypeStats>>,
    total_size: u64,
    #[serde(rename = "TotalSizeKV")]
    total_size_kv: u64,
}

/// Largest first, names in order among equals (Consul's `sortTypeStats`).
fn sort_stats(v: &mut [TypeStats]) {
    v.sort_by(|a, b| b.sum.cmp(&a.sum).then_with(|| a.name.cmp(&b.name)));
}

/// `-kvdetails`: entries grouped by their first `depth` key segments (fewer for shorter keys),
/// only keys under `filter`. `None` when no key was counted, as Consul leaves the table out.
fn kv_breakdown(kvs: &[(String, u64)], depth: i64, filter: &str) -> Option<(Vec<TypeStats>, u64)> {
    let mut by: std::collections::BTreeMap<String, TypeStats> = Default::default();
    let mut total = 0;
    for (key, size) in kvs {
        if !key.starts_with(filter) {
            continue;
        }
        let parts: Vec<&str> = key.split('/').collect();
        let depth = usize::try_from(depth).unwrap_or(0).min(parts.len());
        let prefix = parts[..depth].join("/");
        let row = by.entry(prefix.clone()).or_insert(TypeStats {
            name: prefix,
            sum: 0,
            count: 0,
        });
        row.sum += size;
        row.count += 1;
        total += size;
    }
    if by.is_empty() {
        return None;
    }
    let mut rows: Vec<TypeStats> = by.into_values().collect();
    sort_stats(&mut rows);
    Some((rows, total))
}

/// Consul's `ByteSize`: `0`, `512B`, `1.5KB`, `2KB` (one decimal, `.0` dropped).
fn byte_size(n: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "TB"),
        (1 << 30, "GB"),
        (1 << 20, "MB"),
        (1 << 10, "KB"),
    ];
    if n == 0 {
        return "0".into();
    }
    let (div, unit) = UNITS
        .iter()
        .find(|(d, _)| n >= *d)
        .copied()
        .unwrap_or((1, "B"));
    let v = format!("{:.1}", n as f64 / div as f64);
    format!("{}{unit}", v.strip_suffix(".0").unwrap_or(&v))
}

/// Consul's pretty layout: Go's tabwriter (padding 6) over the metadata, the record types
/// and, with `-kvdetails`, the key prefixes, each table aligned on its own.
fn pretty(i: &Inspection) -> String {
    let cells = |row: &[&str]| {
        row.iter()
            .map(|c| c.as_bytes().to_vec())
            .collect::<Vec<_>>()
    };
    let table = |head: &str, rows: &[TypeStats], total: u64| {
        let mut out = vec![
            cells(&[head, "Count", "Size"]),
            cells(&[" ----", "----", "----"]),
        ];
        for r in rows {
            out.push(cells(&[
                &format!(" {}", r.name),
                &r.count.to_string(),
                &byte_size(r.sum),
            ]));
        }
        out.push(cells(&[" ----", "----", "----"]));
        out.push(cells(&[" Total", "", &byte_size(total)]));
        String::from_utf8_lossy(&ui::tabwrite(&out, 6)).into_owned()
    };
    let m = &i.meta;
    let meta = [
        cells(&[" ID", &m.id]),
        cells(&[" Size", &m.size.to_string()]),
        cells(&[" Index", &m.index.to_string()]),
        cells(&[" Term", &m.term.to_string()]),
        cells(&[" Version", &m.version.to_string()]),
    ];
    let mut out = String::from_utf8_lossy(&ui::tabwrite(&meta, 6)).into_owned();
    out.push_str("\n\n");
    out.push_str(&table(" Type", &i.stats, i.total_size));
    if let Some(kv) = &i.stats_kv {
        out.push_str("\n\n");
        out.push_str(&table(" Key Name", kv, i.total_size_kv));
    }
    out
}

pub fn inspect(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(INSPECT_FLAGS, args, inspect_help)?;
    let file = one_file(&p, inspect_help)?;
    let format = p.str("format").unwrap_or("pretty");
    let archive =
        std::fs::read(&file).map_err(|e| ui::fail(format!("Error opening snapshot file: {e}")))?;
    let (meta, state) = proconsul_archive::read(&archive)
        .map_err(|e| ui::fail(format!("Error verifying snapshot: {e}")))?;
    let dump = proconsul_state::dump_stats(&state)
        .map_err(|e| ui::fail(format!("Error extracting snapshot data: {e}")))?;
    let mut stats: Vec<TypeStats> = dump
        .kinds
        .iter()
        .map(|k| TypeStats {
            name: k.name.to_string(),
            sum: k.size,
            count: k.count,
        })
        .collect();
    sort_stats(&mut stats);
    let kv = if p.bool("kvdetails") {
        kv_breakdown(
            &dump.kvs,
            p.i64("kvdepth").unwrap_or(2),
            p.str("kvfilter").unwrap_or(""),
        )
    } else {
        None
    };
    let (stats_kv, total_size_kv) = match kv {
        Some((rows, total)) => (Some(rows), total),
        None => (None, 0),
    };
    let i = Inspection {
        meta,
        stats,
        stats_kv,
        total_size: dump.total,
        total_size_kv,
    };
    match format {
        "pretty" => ui::out(&pretty(&i)),
        "json" => ui::out(&ui::go_json(&i, Some("   "))),
        other => {
            return Err(ui::fail(format!(
                "Error outputting enhanced snapshot data: Unknown format: {other}"
            )))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_as_consul_prints_them() {
        assert_eq!(byte_size(0), "0");
        assert_eq!(byte_size(285), "285B");
        assert_eq!(byte_size(2048), "2KB");
        assert_eq!(byte_size(12_595), "12.3KB");
        assert_eq!(byte_size(3 << 20), "3MB");
    }

    #[test]
    fn kv_prefixes_by_depth_and_filter() {
        let kvs: Vec<(String, u64)> = [("a/b/c", 10), ("a/b/d", 5), ("a/x", 7), ("z", 1)]
            .iter()
            .map(|(k, s)| (k.to_string(), *s))
            .collect();
        let (rows, total) = kv_breakdown(&kvs, 2, "").unwrap();
        let names: Vec<(&str, u64, u64)> = rows
            .iter()
            .map(|r| (r.name.as_str(), r.count, r.sum))
            .collect();
        assert_eq!(names, [("a/b", 2, 15), ("a/x", 1, 7), ("z", 1, 1)]);
        assert_eq!(total, 23);
        let (rows, total) = kv_breakdown(&kvs, 1, "a/b").unwrap();
        assert_eq!((rows[0].name.as_str(), rows[0].count, total), ("a", 2, 15));
        assert!(kv_breakdown(&kvs, 2, "nothing").is_none());
    }

    #[test]
    fn pretty_layout() {
        let i = Inspection {
            meta: proconsul_archive::SnapshotMeta {
                id: "2-12-1".into(),
                size: 100,
                index: 12,
                term: 2,
                version: 1,
            },
            stats: vec![TypeStats {
                name: "KVS".into(),
                sum: 300,
                count: 3,
            }],
            stats_kv: Some(vec![TypeStats {
                name: "app/a".into(),
                sum: 300,
                count: 3,
            }]),
            total_size: 400,
            total_size_kv: 300,
        };
        assert_eq!(
            pretty(&i),
            " ID           2-12-1
 Size         100
 Index        12
 Term         2
 Version      1

 Type       Count      Size
 ----       ----       ----
 KVS        3          300B
 ----       ----       ----
 Total                 400B

 Key Name      Count      Size
 ----          ----       ----
 app/a         3          300B
 ----          ----       ----
 Total                    300B"
        );
    }
}
