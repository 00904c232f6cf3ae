//! `lock [-n=N] prefix child...`: run a child process while holding Consul's lock (`-n=1`) or a
//! slot of Consul's semaphore (`-n>1`) at `prefix`. The algorithms are the api crate's
//! ([`proconsul_api::lock`], [`proconsul_api::semaphore`], shaped like the Go client's), so
//! proconsul and Consul contenders can share a prefix; this command adds the flags, the child
//! and the output of Consul's `lock` command.
//!
//! The child starts only once the lock is held. The lock's loss (tolerating `-monitor-retry`
//! transient errors, 1 s apart) or a shutdown signal sends the child SIGTERM and, 5 s later,
//! SIGKILL. On every exit path the lock is released, the session destroyed and an unused lock
//! key removed. Exit codes: 0, 1 on errors, 2 with `-child-exit-code` when the child failed.

use std::process::Stdio;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use proconsul_api::lock::join_key;
use proconsul_api::semaphore::DEFAULT_SEMAPHORE_KEY;
use proconsul_api::{
    Lock, LockError, LockOptions, Lost, Semaphore, SemaphoreError, SemaphoreOptions, Stop,
};

use super::{client, parse_flags};
use crate::flags::{self, Flag, Kind, CLIENT_FLAGS, SERVER_FLAGS};
use crate::process;
use crate::ui;

/// TTL of the lock's session (Consul's `lockSessionTTL`).
const SESSION_TTL: &str = "15s";
/// Time between SIGTERM and SIGKILL for a child that lost its lock.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// Pause between retries while monitoring (Consul's `defaultMonitorRetryTime`).
const MONITOR_RETRY_TIME: Duration = Duration::from_secs(1);

const FLAGS: &[Flag] = &[
    Flag::boolean(
        "child-exit-code",
        "Exit 2 if the child process exited with an error if this is true, otherwise this \
         doesn't propagate an error from the child. The default value is false.",
    ),
    Flag::new(
        "monitor-retry",
        Kind::Int,
        "int",
        "Number of times to retry if Consul returns a 500 error while monitoring the lock. \
         This allows riding out brief periods of unavailability without causing leader \
         elections, but increases the amount of time required to detect a lost lock in some \
         cases. The default value is 3, with a 1s wait between retries. Set this value to 0 to \
         disable retires.",
    ),
    Flag::new(
        "n",
        Kind::Int,
        "int",
        "Optional limit on the number of concurrent lock holders. The underlying \
         implementation switches from a lock to a semaphore when the value is greater than 1. \
         The default value is 1.",
    ),
    Flag::string(
        "name",
        "Optional name to associate with the lock session. It not provided, one is generated \
         based on the provided child command.",
    ),
    Flag::boolean("pass-stdin", "Pass stdin to the child process."),
    Flag::boolean(
        "shell",
        "Use a shell to run the command (can set a custom shell via the SHELL environment \
         variable).",
    ),
    Flag::new(
        "timeout",
        Kind::Str,
        "duration",
        "Maximum amount of time to wait to acquire the lock, specified as a duration like \
         \"1s\" or \"3h\". The default value is 0.",
    ),
    Flag::new(
        "try",
        Kind::Str,
        "duration",
        "DEPRECATED. Use -timeout instead.",
    ),
    Flag::boolean("verbose", "Enable verbose (debugging) output."),
];

fn all_flags() -> Vec<Flag> {
    flags::with(FLAGS, &[CLIENT_FLAGS, SERVER_FLAGS])
}

pub fn help() -> String {
    flags::usage(
        "
Usage: proconsul lock [options] prefix child...

  Acquires a lock or semaphore at a given path, and invokes a child process
  when successful. The child process can assume the lock is held while it
  executes. If the lock is lost or communication is disrupted the child
  process will be sent a SIGTERM signal and given time to gracefully exit.
  After the grace period expires the process will be hard terminated.

  For Consul agents on Windows, the child process is always hard terminated
  with a SIGKILL, since Windows has no POSIX compatible notion for SIGTERM.

  When -n=1, only a single lock holder or leader exists providing mutual
  exclusion. Setting a higher value switches to a semaphore allowing multiple
  holders to coordinate.

  The prefix provided must have write privileges.
",
        &all_flags(),
    )
}

/// A lock or a semaphore at the prefix.
enum Locker {
    Lock(Lock),
    Semaphore(Semaphore),
}

impl Locker {
    fn acquire(&self, stop: &Stop) -> Result<Option<Lost>, String> {
        match self {
            Locker::Lock(l) => l.acquire(Some(stop)).map_err(|e| e.to_string()),
            Locker::Semaphore(s) => s.acquire(Some(stop)).map_err(|e| e.to_string()),
        }
    }

    fn release(&self) -> Result<(), String> {
        match self {
            Locker::Lock(l) => l.release().map_err(|e| e.to_string()),
            Locker::Semaphore(s) => s.release().map_err(|e| e.to_string()),
        }
    }

    /// Remove the lock key: `Ok(false)` when it is still in use (not an error here).
    fn destroy(&self) -> Result<bool, String> {
        match self {
            Locker::Lock(l) => match l.destroy() {
                Ok(()) => Ok(true),
                Err(LockError::InUse) => Ok(false),
                Err(e) => Err(e.to_string()),
            },
            Locker::Semaphore(s) => match s.destroy() {
                Ok(()) => Ok(true),
                Err(SemaphoreError::InUse) => Ok(false),
                Err(e) => Err(e.to_string()),
            },
        }
    }
}

/// What the main loop waits for once the lock is held.
enum Event {
    Shutdown,
    Lost,
    /// The child ended; `true` when it failed (or could not start).
    ChildExited(bool),
}

/// Parse a Go duration flag, with the flag package's error text.
fn duration_flag(v: &str, name: &str) -> anyhow::Result<i64> {
    proconsul_types::duration::parse_nanos(v).map_err(|_| {
        ui::fail(format!(
            "invalid value {v:?} for flag -{name}: parse error\n{}",
            help()
        ))
    })
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&all_flags(), args, help)?;
    let verbose = p.bool("verbose");
    let info = |s: &str| {
        if verbose {
            ui::out(s);
        }
    };
    let limit = p.i64("n").unwrap_or(1);
    if limit <= 0 {
        return Err(ui::fail("Lock holder limit must be positive"));
    }
    if p.args.len() < 2 {
        return Err(ui::fail("Key prefix and child command must be specified"));
    }
    let prefix = p.args[0].trim_start_matches('/').to_string();
    let child_args = p.args[1..].to_vec();
    let mut timeout_ns = 0;
    for name in ["try", "timeout"] {
        if let Some(v) = p.str(name) {
            timeout_ns = duration_flag(v, name)?;
        }
    }
    if timeout_ns < 0 {
        return Err(ui::fail("Timeout must be positive"));
    }
    let timeout = (timeout_ns > 0).then(|| Duration::from_nanos(timeout_ns as u64));
    let name = match p.str("name").filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None => format!("Consul lock for '{}' at '{prefix}'", child_args.join(" ")),
    };
    let retries = p.i64("monitor-retry").unwrap_or(3);
    if retries < 0 {
        return Err(ui::fail("Number for 'monitor-retry' must be >= 0"));
    }
    let retries = u32::try_from(retries).unwrap_or(u32::MAX);
    let shell = p.str("shell").map(|_| p.bool("shell")).unwrap_or(true);

    let c = client(&p)?;
    c.agent_node_name()
        .map_err(|e| ui::fail(format!("Error querying Consul agent: {e}")))?;

    let setup_failed = |e: String| ui::fail(format!("Lock setup failed: {e}"));
    let locker = if limit == 1 {
        let key = join_key(&prefix, DEFAULT_SEMAPHORE_KEY);
        info(&format!("Setting up lock at path: {key}"));
        let opts = LockOptions {
            key,
            session_name: name,
            session_ttl: SESSION_TTL.into(),
            monitor_retries: retries,
            monitor_retry_time: MONITOR_RETRY_TIME,
            lock_wait_time: timeout.unwrap_or_default(),
            lock_try_once: timeout.is_some(),
            ..LockOptions::default()
        };
        Locker::Lock(Lock::new(&c, opts).map_err(|e| setup_failed(e.to_string()))?)
    } else {
        info(&format!(
            "Setting up semaphore (limit {limit}) at prefix: {prefix}"
        ));
        let opts = SemaphoreOptions {
            prefix,
            limit,
            session_name: name,
            session_ttl: SESSION_TTL.into(),
            monitor_retries: retries,
            monitor_retry_time: MONITOR_RETRY_TIME,
            semaphore_wait_time: timeout.unwrap_or_default(),
            semaphore_try_once: timeout.is_some(),
            ..SemaphoreOptions::default()
        };
        Locker::Semaphore(Semaphore::new(&c, opts).map_err(|e| setup_failed(e.to_string()))?)
    };

    let stop = Stop::new();
    let (tx, rx) = mpsc::channel::<Event>();
    {
        let (tx, stop) = (tx.clone(), stop.clone());
        process::on_shutdown(move || {
            stop.stop();
            let _ = tx.send(Event::Shutdown);
        });
    }

    info("Attempting lock acquisition");
    let lost = match locker.acquire(&stop) {
        Ok(Some(lost)) => lost,
        Ok(None) => {
            return Err(ui::fail(
                "Shutdown triggered or timeout during lock acquisition",
            ))
        }
        Err(e) => return Err(ui::fail(format!("Lock acquisition failed: {e}"))),
    };

    let mut child_code = 0;
    let shutdown_pending = matches!(rx.try_recv(), Ok(Event::Shutdown));
    if shutdown_pending {
        ui::err("Shutdown triggered during lock acquisition");
    } else {
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                lost.wait();
                let _ = tx.send(Event::Lost);
            });
        }
        let pid = start_child(&child_args, shell, p.bool("pass-stdin"), &tx, &info);
        let child_ended = match rx.recv() {
            Ok(Event::Shutdown) => {
                info("Shutdown triggered, killing child");
                false
            }
            Ok(Event::Lost) => {
                info("Lock lost, killing child");
                false
            }
            Ok(Event::ChildExited(failed)) => {
                if failed {
                    child_code = 2;
                }
                info("Child terminated, releasing lock");
                true
            }
            Err(_) => false,
        };
        if let (false, Some(pid)) = (child_ended, pid) {
            kill_child(pid, &rx, &info);
        }
    }

    // Releasing also destroys the session.
    if let Err(e) = locker.release() {
        return Err(ui::fail(format!("Lock release failed: {e}")));
    }
    match locker.destroy() {
        Ok(true) => info("Cleanup succeeded"),
        Ok(false) => info("Cleanup aborted, lock in use"),
        Err(e) => {
            return Err(ui::fail(format!("Lock cleanup failed: {e}")));
        }
    }
    if p.bool("child-exit-code") && child_code != 0 {
        return Err(ui::exit_silently(child_code));
    }
    Ok(())
}

/// Start the child with `CONSUL_LOCK_HELD=true`; a thread reports its end. Returns its pid, or
/// `None` if it could not start (reported as a failed child).
fn start_child(
    args: &[String],
    shell: bool,
    pass_stdin: bool,
    tx: &Sender<Event>,
    info: &dyn Fn(&str),
) -> Option<u32> {
    info("Starting handler");
    let cmd = match process::command(args, shell) {
        Ok(mut cmd) => {
            cmd.env("CONSUL_LOCK_HELD", "true");
            cmd
        }
        Err(e) => {
            ui::err(&format!("Error executing handler: {e}"));
            let _ = tx.send(Event::ChildExited(true));
            return None;
        }
    };
    let stdin = if pass_stdin {
        info("Stdin passed to handler process");
        Stdio::inherit()
    } else {
        Stdio::null()
    };
    let mut child = match process::spawn(cmd, stdin) {
        Ok(c) => c,
        Err(e) => {
            ui::err(&format!("Error starting handler: {e}"));
            let _ = tx.send(Event::ChildExited(true));
            return None;
        }
    };
    let pid = child.id();
    let tx = tx.clone();
    std::thread::spawn(move || {
        let failed = match child.wait() {
            Ok(status) => match process::failure(status) {
                Some(f) => {
                    ui::err(&format!("Error running handler: {f}"));
                    true
                }
                None => false,
            },
            Err(e) => {
                ui::err(&format!("Error running handler: {e}"));
                true
            }
        };
        let _ = tx.send(Event::ChildExited(failed));
    });
    Some(pid)
}

/// SIGTERM, then SIGKILL if the child is still running after the grace period.
fn kill_child(pid: u32, rx: &Receiver<Event>, info: &dyn Fn(&str)) {
    info(&format!("Terminating child pid {pid}"));
    if let Err(e) = process::signal(pid, libc::SIGTERM) {
        ui::err(&format!("Failed to terminate {pid}: {e}"));
        return;
    }
    let deadline = Instant::now() + KILL_GRACE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Event::ChildExited(_)) => {
                info("Child terminated");
                return;
            }
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    info(&format!(
        "Child did not exit after grace period of {}",
        proconsul_types::duration::format(KILL_GRACE)
    ));
    info(&format!("Killing child pid {pid}"));
    if let Err(e) = process::signal(pid, libc::SIGKILL) {
        ui::err(&format!("Failed to kill {pid}: {e}"));
    }
}
