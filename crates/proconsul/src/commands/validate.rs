//! `validate FILE_OR_DIRECTORY...`: read config files as the agent would, without starting it.
//! `Configuration is valid!` and exit 0, or every problem (each naming its file and key) on
//! stderr and exit 1.

use std::path::PathBuf;

use super::parse_flags;
use crate::flags::{self, Flag};
use crate::ui;

const FLAGS: &[Flag] = &[Flag::boolean(
    "quiet",
    "When given, a successful run will produce no output.",
)];

pub fn help() -> String {
    flags::usage(
        r#"
Usage: proconsul validate [options] FILE_OR_DIRECTORY...

  Performs a basic sanity test on Consul configuration files. For each file
  or directory given, the validate command will attempt to parse the
  contents just as the "proconsul agent" command would, and catch any errors.
  This is useful to do a test of the configuration only, without actually
  starting the agent.

  Returns 0 if the configuration is valid, or 1 if there are problems.
"#,
        FLAGS,
    )
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(FLAGS, args, help)?;
    if p.args.is_empty() {
        return Err(ui::fail(
            "Must specify at least one config file or directory",
        ));
    }
    let paths: Vec<PathBuf> = p.args.iter().map(PathBuf::from).collect();
    if let Err(errors) = proconsul_config::validate_files(&paths) {
        let lines: Vec<String> = errors
            .iter()
            .map(|e| format!("Config validation failed: {e}"))
            .collect();
        return Err(ui::fail(lines.join("\n")));
    }
    if !p.bool("quiet") {
        ui::out("Configuration is valid!");
    }
    Ok(())
}
