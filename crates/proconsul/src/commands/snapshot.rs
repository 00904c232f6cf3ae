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

pub fn inspect_help() -> String {
    flags::usage(
        "
Usage: proconsul snapshot inspect [options] FILE

  Displays information about a snapshot file on disk.
",
        &[],
    )
}

pub fn inspect(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&[], args, inspect_help)?;
    let file = one_file(&p, inspect_help)?;
    let archive =
        std::fs::read(&file).map_err(|e| ui::fail(format!("Error opening snapshot file: {e}")))?;
    let (meta, _) = proconsul_archive::read(&archive)
        .map_err(|e| ui::fail(format!("Error verifying snapshot: {e}")))?;
    let rows = vec![
        vec![" ID".to_string(), meta.id],
        vec![" Size".into(), meta.size.to_string()],
        vec![" Index".into(), meta.index.to_string()],
        vec![" Term".into(), meta.term.to_string()],
        vec![" Version".into(), meta.version.to_string()],
    ];
    ui::out(&ui::columnize(&rows));
    Ok(())
}
