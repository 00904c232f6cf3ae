//! Child processes and signals for the commands that run other programs (`watch` handlers,
//! `lock` children), with Consul's conventions: `-shell` runs the words joined by spaces under
//! `$SHELL -c` (default `/bin/sh`), otherwise the first word is executed directly; SIGINT and
//! SIGTERM to the CLI are turned into one "shutdown" notification.

use std::process::{Child, Command, ExitStatus, Stdio};

/// Build the command for `args`: through the shell with `shell`, else executed directly.
pub fn command(args: &[String], shell: bool) -> Result<Command, String> {
    if shell {
        let sh = std::env::var("SHELL")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "/bin/sh".to_string());
        let mut c = Command::new(sh);
        c.arg("-c").arg(args.join(" "));
        Ok(c)
    } else {
        let (first, rest) = args
            .split_first()
            .ok_or_else(|| "need an executable to run".to_string())?;
        let mut c = Command::new(first);
        c.args(rest);
        Ok(c)
    }
}

/// Start `cmd` with the CLI's stdout and stderr, and stdin as given.
pub fn spawn(mut cmd: Command, stdin: Stdio) -> std::io::Result<Child> {
    cmd.stdin(stdin)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
}

/// Go's `exec.ExitError` text for a failed child (`exit status 2`, `signal: terminated`), or
/// `None` when it succeeded.
pub fn failure(status: ExitStatus) -> Option<String> {
    use std::os::unix::process::ExitStatusExt;
    if status.success() {
        return None;
    }
    Some(match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(libc::SIGTERM)) => "signal: terminated".to_string(),
        (None, Some(libc::SIGKILL)) => "signal: killed".to_string(),
        (None, Some(libc::SIGINT)) => "signal: interrupt".to_string(),
        (None, Some(sig)) => format!("signal: {sig}"),
        (None, None) => "exit status unknown".to_string(),
    })
}

/// Send `sig` to process `pid`.
pub fn signal(pid: u32, sig: libc::c_int) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::kill(pid, sig) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Call `f` once, from a background thread, when the CLI receives SIGINT or SIGTERM (Consul's
/// `MakeShutdownCh`). The handlers stay installed, so later signals are ignored rather than
/// killing the process half-way through its cleanup.
pub fn on_shutdown(f: impl FnOnce() + Send + 'static) {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    {
        Ok(rt) => rt,
        Err(_) => return,
    };
    // Install the handlers before returning, so a signal right after this call is seen.
    let streams = rt.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    });
    let Ok((mut int, mut term)) = streams else {
        return;
    };
    std::thread::spawn(move || {
        rt.block_on(async {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        });
        f();
        // Keep the handlers (and so the runtime) alive for the rest of the process.
        rt.block_on(async {
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_and_direct_commands() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let out = command(&a(&["echo", "a", "b"]), false)
            .unwrap()
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"a b\n");
        assert_eq!(
            command(&[], false).unwrap_err(),
            "need an executable to run"
        );
        let status = command(&a(&["exit", "3"]), true).unwrap().status().unwrap();
        assert_eq!(failure(status).unwrap(), "exit status 3");
    }
}
