//! `keygen`: print a new 32-byte gossip encryption key, base64-encoded (for `-encrypt`).

use super::parse_flags;
use crate::flags;
use crate::ui;

pub fn help() -> String {
    flags::usage(
        "
Usage: proconsul keygen

  Generates a new encryption key that can be used to configure the
  agent to encrypt traffic. The output of this command is already
  in the proper format that the agent expects.
",
        &[],
    )
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&[], args, help)?;
    if !p.args.is_empty() {
        ui::err(&help());
        return Err(ui::exit_silently(1));
    }
    use base64::Engine;
    use rand::Rng;
    let mut key = [0u8; 32];
    rand::rng().fill(&mut key);
    ui::out(&base64::engine::general_purpose::STANDARD.encode(key));
    Ok(())
}
