//! `proconsul`: Consul's command line. `agent` runs an agent; every other command is a client
//! of a running agent's HTTP API (via `proconsul-api`).
//!
//! Dispatch follows mitchellh/cli, which Consul uses, so scripts see the same behaviour:
//! `-h`/`-help`/`--help` anywhere before `--` prints the (sub)command's help on stdout and
//! exits 0; `-v`/`--version` before the command prints the version; no or an unknown command
//! prints the command list and exits 127; a parent command alone (`kv`) prints its help on
//! stderr and exits 1. Errors reach this file as `anyhow` values and become exit codes here.

mod commands;
mod config_watches;
mod flags;
mod malloc;
mod process;
mod regex;
mod ui;

use commands::{Command, Run, COMMANDS};

/// How the first arguments resolved, per mitchellh/cli's `processArgs`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Invocation {
    /// Full command name (`kv get`), empty if none was given.
    command: String,
    /// Arguments after the command name.
    args: Vec<String>,
    help: bool,
    version: bool,
    /// Flags given before the command (an error unless they are help/version).
    top_flags: Vec<String>,
}

fn resolve(argv: &[String], known: &[&str]) -> Invocation {
    let mut inv = Invocation::default();
    let mut i = 0;
    while i < argv.len() {
        let arg = &argv[i];
        if arg == "--" {
            break;
        }
        if arg == "-h" || arg == "-help" || arg == "--help" {
            inv.help = true;
            i += 1;
            continue;
        }
        if inv.command.is_empty() {
            if arg == "-v" || arg == "-version" || arg == "--version" {
                inv.version = true;
                i += 1;
                continue;
            }
            if arg.starts_with('-') {
                inv.top_flags.push(arg.clone());
            } else if !arg.is_empty() {
                // Longest registered name that the following words spell out.
                let mut name = arg.clone();
                let mut words = 1;
                for n in 2..=argv.len() - i {
                    let candidate = argv[i..i + n].join(" ");
                    if known.contains(&candidate.as_str()) {
                        name = candidate;
                        words = n;
                    }
                }
                inv.command = name;
                inv.args = argv[i + words..].to_vec();
                hoist_subcommand(&mut inv, known);
                i += words;
                continue;
            }
        }
        i += 1;
    }
    inv
}

/// `kv -http-addr=X put k v`: a parent command, `-flag=value` flags, then one of its
/// subcommands. Consul's CLI would print the parent's help; scripts (and our acceptance
/// walk-through) put the common flags there, so run the subcommand with the flags moved after
/// it. Only `=`-form flags are moved, so a flag's separate value is never taken for a command.
fn hoist_subcommand(inv: &mut Invocation, known: &[&str]) {
    let flags = inv
        .args
        .iter()
        .take_while(|a| a.starts_with('-') && a.contains('=') && a.as_str() != "--")
        .count();
    if flags == 0 {
        return;
    }
    let Some(word) = inv.args.get(flags) else {
        return;
    };
    let candidate = format!("{} {word}", inv.command);
    if known.contains(&candidate.as_str()) {
        let mut args: Vec<String> = inv.args[..flags].to_vec();
        args.extend_from_slice(&inv.args[flags + 1..]);
        inv.command = candidate;
        inv.args = args;
    }
}

/// The command list (`BasicHelpFunc`): top-level commands, names padded to the longest.
fn top_help() -> String {
    let top: Vec<&Command> = COMMANDS.iter().filter(|c| !c.name.contains(' ')).collect();
    let width = top.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut s = String::from(
        "Usage: proconsul [--version] [--help] <command> [<args>]\n\nAvailable commands are:\n",
    );
    for c in top {
        s.push_str(&format!("    {:<width$}    {}\n", c.name, c.synopsis));
    }
    s
}

/// A command's help, with its subcommands listed for parents (mitchellh/cli's template).
fn command_help(cmd: &Command) -> String {
    let mut s = (cmd.help)();
    let prefix = format!("{} ", cmd.name);
    let subs: Vec<&Command> = COMMANDS
        .iter()
        .filter(|c| c.name.starts_with(&prefix) && !c.name[prefix.len()..].contains(' '))
        .collect();
    if !subs.is_empty() {
        let width = subs
            .iter()
            .map(|c| c.name.len() - prefix.len())
            .max()
            .unwrap_or(0);
        s.push_str("\n\nSubcommands:");
        for c in subs {
            s.push_str(&format!(
                "\n    {:<width$}    {}",
                &c.name[prefix.len()..],
                c.synopsis
            ));
        }
    }
    s
}

fn run(argv: &[String]) -> i32 {
    let known: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
    let inv = resolve(argv, &known);
    if inv.version && inv.command.is_empty() {
        return finish(commands::version::run(&[]));
    }
    if inv.help && inv.command.is_empty() {
        ui::out(&top_help());
        return 0;
    }
    if !inv.top_flags.is_empty() {
        ui::err(
            "Invalid flags before the subcommand. If these flags are for\n\
             the subcommand, please put them after the subcommand.\n",
        );
        ui::err(&top_help());
        return 1;
    }
    let Some(cmd) = commands::find(&inv.command) else {
        ui::out(&top_help());
        return 127;
    };
    if inv.help {
        ui::out(&command_help(cmd));
        return 0;
    }
    match cmd.run {
        Run::Exec(f) => finish(f(&inv.args)),
        Run::Parent => {
            ui::err(&command_help(cmd));
            1
        }
    }
}

/// Map a command's outcome to an exit code, printing its error message.
fn finish(result: anyhow::Result<()>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => match e.downcast_ref::<ui::Exit>() {
            Some(exit) => {
                if !exit.message.is_empty() {
                    ui::err(&exit.message);
                }
                exit.code
            }
            None => {
                ui::err(&format!("{e:#}"));
                1
            }
        },
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(run(&argv));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn known() -> Vec<&'static str> {
        COMMANDS.iter().map(|c| c.name).collect()
    }

    #[test]
    fn nested_commands_resolve_to_the_longest_name() {
        let inv = resolve(&a(&["kv", "get", "-recurse", "foo"]), &known());
        assert_eq!(inv.command, "kv get");
        assert_eq!(inv.args, a(&["-recurse", "foo"]));
        let inv = resolve(&a(&["kv", "nope"]), &known());
        assert_eq!(
            (inv.command.as_str(), inv.args.clone()),
            ("kv", a(&["nope"]))
        );
        // a value that happens to be a command name is not taken as one
        let inv = resolve(&a(&["kv", "put", "version"]), &known());
        assert_eq!(
            (inv.command.as_str(), inv.args.clone()),
            ("kv put", a(&["version"]))
        );
    }

    #[test]
    fn flags_between_parent_and_subcommand() {
        let inv = resolve(
            &a(&["kv", "-http-addr=http://x:1", "put", "k", "v"]),
            &known(),
        );
        assert_eq!(
            (inv.command.as_str(), inv.args.clone()),
            ("kv put", a(&["-http-addr=http://x:1", "k", "v"]))
        );
        // a flag with a separate value is left alone (the parent prints its help)
        let inv = resolve(&a(&["kv", "-http-addr", "put", "k"]), &known());
        assert_eq!(inv.command.as_str(), "kv");
    }

    #[test]
    fn help_and_version_flags() {
        assert!(resolve(&a(&["-h"]), &known()).help);
        let inv = resolve(&a(&["kv", "get", "foo", "-help"]), &known());
        assert!(inv.help && inv.command == "kv get");
        assert!(!resolve(&a(&["kv", "put", "k", "--", "-h"]), &known()).help);
        assert!(resolve(&a(&["--version"]), &known()).version);
        assert!(!resolve(&a(&["kv", "get", "-v"]), &known()).version);
        assert_eq!(
            resolve(&a(&["-x", "members"]), &known()).top_flags,
            a(&["-x"])
        );
    }

    #[test]
    fn command_list_is_aligned() {
        let h = top_help();
        assert!(h.contains("\n    agent          Runs a Consul agent\n"));
        assert!(h.contains("\n    force-leave    Forces a member"));
        assert!(!h.contains("kv get"));
    }

    #[test]
    fn parent_help_lists_subcommands() {
        let h = command_help(commands::find("kv").unwrap());
        assert!(h.ends_with(
            "Subcommands:\n    delete    Removes data from the KV store\n    export    Exports a tree from the KV store as JSON\n    get       Retrieves or lists data from the KV store\n    import    Imports a tree stored as JSON to the KV store\n    put       Sets or updates data in the KV store"
        ));
    }
}
