//! `debug`: watch an agent for a while and leave a bundle an operator can send for help, laid
//! out as Consul's: `agent.json` (`/v1/agent/self`), `host.json` (`/v1/agent/host`),
//! `members.json` (`/v1/agent/members?wan=1`), `metrics.json` (the metrics stream for the
//! duration: one JSON summary per 10 s interval), `consul.log` (`/v1/agent/monitor` at TRACE
//! for the duration), `index.json`, `listpeers.json` (`operator raft list-peers`' table — text,
//! under Consul's name), then a `.tar.gz` of the directory, which is removed once archived.
//!
//! `pprof` is accepted as a target but proconsul agents have no Go runtime profiles: the
//! command says so and captures nothing for it. The streams are blocking reads with a
//! deadline (the API client's), one thread each, beside the interval loop on this thread.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proconsul_api::Client;
use serde::Serialize;

use super::client;
use crate::flags::{self, Flag, Kind, ParseError, CLIENT_FLAGS};
use crate::ui;

/// Consul's defaults and floors (`command/debug/debug.go`).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_DURATION: Duration = Duration::from_secs(300);
const MIN_INTERVAL: Duration = Duration::from_secs(5);
const MIN_DURATION: Duration = Duration::from_secs(10);
/// Added to the duration so the last interval is captured in time.
const GRACE: Duration = Duration::from_secs(2);
const ARCHIVE_EXT: &str = ".tar.gz";
/// The bundle's layout version (`index.json`'s `Version`).
const PROTOCOL_VERSION: u32 = 1;

const METRICS: &str = "metrics";
const LOGS: &str = "logs";
const PPROF: &str = "pprof";
const HOST: &str = "host";
const AGENT: &str = "agent";
const MEMBERS: &str = "members";
/// The old name of `members`.
const CLUSTER: &str = "cluster";

/// What is captured when no `-capture` is given, in Consul's order.
const DEFAULT_TARGETS: &[&str] = &[METRICS, LOGS, PPROF, HOST, AGENT, MEMBERS];

const FLAGS: &[Flag] = &[
    Flag::new(
        "capture",
        Kind::Str,
        "string",
        "One or more types of information to capture. This can be used to capture a subset of \
         information, and defaults to capturing everything available. Possible information for \
         capture: metrics, logs, pprof, host, agent, members. This can be repeated multiple \
         times.",
    ),
    Flag::new(
        "interval",
        Kind::Str,
        "duration",
        "The interval in which to capture dynamic information such as telemetry, and \
         profiling. Defaults to 30s.",
    ),
    Flag::new(
        "duration",
        Kind::Str,
        "duration",
        "The total time to record information. Defaults to 5m0s.",
    ),
    Flag::boolean(
        "archive",
        "Boolean value for if the files should be archived and compressed. Setting this to \
         false will skip the archive step and leave the directory of information on the \
         current path.",
    ),
    Flag::string(
        "output",
        "The path to the compressed archive that will be created with the information after \
         collection.",
    ),
];

fn all_flags() -> Vec<Flag> {
    flags::with(FLAGS, &[CLIENT_FLAGS])
}

pub fn help() -> String {
    flags::usage(
        "
Usage: proconsul debug [options]

  Monitors a Consul agent for the specified period of time, recording
  information about the agent, cluster, and environment to an archive
  written to the specified path.

  If ACLs are enabled, an 'operator:read' token must be supplied in order
  to perform this operation.

  To create a debug archive in the current directory for the default
  duration and interval, capturing all information available:

      $ proconsul debug

  The command stores captured data at the configured output path
  through the duration, and will archive the data at the same
  path if interrupted.

  Flags can be used to customize the duration and interval of the
  operation. Duration is the total time to capture data for from the target
  agent and interval controls how often dynamic data such as metrics
  are scraped.

      $ proconsul debug -interval=20s -duration=1m

  The capture flag can be specified multiple times to limit information
  retrieved.

      $ proconsul debug -capture metrics -capture agent

  By default, the archive containing the debugging information is
  saved to the current directory as a .tar.gz file. The
  output path can be specified, as well as an option to disable
  archiving, leaving the directory intact.

      $ proconsul debug -output=/foo/bar/my-debugging -archive=false

  Note: Information collected by this command has the potential
  to be highly sensitive. Sensitive material such as ACL tokens and
  other commonly secret material are redacted automatically, but we
  strongly recommend review of the data within the archive prior to
  transmitting it.
",
        &all_flags(),
    )
}

// Consul's command wraps its UI in a prefixed one: output and errors start with `==> `,
// information with four spaces, warnings as they are.
fn say(s: &str) {
    ui::out(&format!("==> {s}"));
}

fn info(s: &str) {
    ui::out(&format!("    {s}"));
}

fn error(s: &str) {
    ui::err(&format!("==> {s}"));
}

fn warn(s: &str) {
    ui::err(s);
}

/// `index.json` at the bundle's root.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Index {
    version: u32,
    agent_version: String,
    interval: String,
    duration: String,
    targets: Vec<String>,
}

/// A Go duration flag, with Go's `flag` error.
fn duration_flag(p: &flags::Parsed, name: &str, default: Duration) -> Result<Duration, String> {
    match p.str(name) {
        None => Ok(default),
        Some(v) => proconsul_types::duration::parse_nanos(v)
            .map(|n| Duration::from_nanos(n.max(0) as u64))
            .map_err(|_| format!("invalid value {v:?} for flag -{name}: parse error")),
    }
}

/// Go's `time.Now().Format("2006-01-02T15-04-05Z0700")` (local time; colons would make tar
/// think of a remote host).
fn file_time(now: SystemTime) -> String {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let offset = local_offset(secs);
    let t = time::OffsetDateTime::from_unix_timestamp(secs + offset)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let zone = if offset == 0 {
        "Z".to_string()
    } else {
        let a = offset.abs();
        format!(
            "{}{:02}{:02}",
            if offset < 0 { '-' } else { '+' },
            a / 3600,
            a % 3600 / 60
        )
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}-{:02}-{:02}{zone}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Seconds east of UTC of the local zone at `secs` (0 when the zone cannot be read).
fn local_offset(secs: i64) -> i64 {
    let t: libc::time_t = secs as libc::time_t;
    // SAFETY: localtime_r writes only into the zeroed struct we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    if r.is_null() {
        0
    } else {
        tm.tm_gmtoff as i64
    }
}

/// Go's `time.Now().UTC().String()`: `2024-01-02 03:04:05.123456789 +0000 UTC`, the fraction
/// without trailing zeros.
fn go_utc(now: SystemTime) -> String {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let t = time::OffsetDateTime::from_unix_timestamp(d.as_secs() as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let mut frac = format!("{:09}", d.subsec_nanos());
    while frac.ends_with('0') {
        frac.pop();
    }
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}{frac} +0000 UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Consul's `writeJSONFile`: `json.MarshalIndent(v, "", "\t")`, mode 0644.
fn write_json<T: Serialize>(path: &Path, v: &T) -> std::io::Result<()> {
    fs::write(path, ui::go_json(v, Some("\t")))
}

struct Run {
    client: Client,
    output: PathBuf,
    interval: Duration,
    duration: Duration,
    capture: Vec<String>,
}

impl Run {
    /// Is `target` captured? (`cluster` is the old name of `members`.)
    fn captures(&self, target: &str) -> bool {
        self.capture
            .iter()
            .any(|t| t == target || (target == MEMBERS && t == CLUSTER))
    }

    fn file(&self, name: &str) -> PathBuf {
        self.output.join(name)
    }

    /// `agent.json`, `host.json`, `members.json`: every failure is reported, none stops the run.
    fn capture_static(&self) -> Vec<String> {
        let mut errs = Vec::new();
        let mut keep = |r: Result<(), String>| {
            if let Err(e) = r {
                errs.push(e);
            }
        };
        if self.captures(HOST) {
            keep(self.save_json("host.json", self.client.agent_host()));
        }
        if self.captures(AGENT) {
            keep(self.save_json("agent.json", self.client.agent_self()));
        }
        if self.captures(MEMBERS) {
            keep(self.save_json("members.json", self.client.agent_members(true)));
        }
        errs
    }

    fn save_json<T: Serialize + Default>(
        &self,
        name: &str,
        got: proconsul_api::Result<T>,
    ) -> Result<(), String> {
        // Like Consul, the file is written even when the read failed (holding `null`).
        let (v, e) = match got {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(e.to_string())),
        };
        write_json(&self.file(name), &v).map_err(|e| e.to_string())?;
        e.map_or(Ok(()), Err)
    }

    /// `listpeers.json`: `operator raft list-peers`' table as Consul's debug writes it.
    fn capture_raft(&self) -> Result<(), String> {
        let config = self
            .client
            .operator_raft_configuration(false)
            .map_err(|e| format!("Failed to retrieve raft configuration: {e}"))?;
        let leader_index = config
            .servers
            .iter()
            .find(|s| s.leader)
            .map_or(0, |s| s.last_index);
        let mut rows = vec![[
            "Node",
            "ID",
            "Address",
            "State",
            "Voter",
            "RaftProtocol",
            "Commit Index",
            "Trails Leader By",
        ]
        .map(String::from)
        .to_vec()];
        for s in &config.servers {
            let behind = leader_index.saturating_sub(s.last_index);
            rows.push(vec![
                s.node.clone(),
                s.id.clone(),
                s.address.clone(),
                if s.leader { "leader" } else { "follower" }.to_string(),
                s.voter.to_string(),
                if s.protocol_version.is_empty() {
                    "<=1".to_string()
                } else {
                    s.protocol_version.clone()
                },
                s.last_index.to_string(),
                match (s.leader, behind) {
                    (true, _) => "-".to_string(),
                    (false, 1) => "1 commit".to_string(),
                    (false, n) => format!("{n} commits"),
                },
            ]);
        }
        fs::write(self.file("listpeers.json"), ui::columnize(&rows))
            .map_err(|e| format!("failed to create listpeers file: {e}"))
    }

    /// The `.tar.gz` of the output directory, written beside it under a temporary name and
    /// renamed into place; then the directory is removed.
    fn archive(&self) -> Result<(), String> {
        let path = PathBuf::from(format!("{}{ARCHIVE_EXT}", self.output.display()));
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = dir.join(format!(
            "{}.tmp{}",
            path.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let written = self.write_archive(&tmp);
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, &path).map_err(|e| e.to_string())?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        fs::remove_dir_all(&self.output)
            .map_err(|e| format!("failed to remove archived directory: {e}"))
    }

    fn write_archive(&self, tmp: &Path) -> Result<(), String> {
        let f = fs::File::create(tmp)
            .map_err(|e| format!("failed to create compressed temp archive: {e}"))?;
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        let mut tar = proconsul_archive::tar::TarWriter::new(gz);
        let base = self
            .output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "debug".to_string());
        let walk = |e: std::io::Error| format!("failed to walk output path for archive: {e}");
        let mut stack = vec![(self.output.clone(), base)];
        while let Some((path, name)) = stack.pop() {
            let meta = fs::metadata(&path).map_err(walk)?;
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode();
            if meta.is_dir() {
                tar.dir(&name, mode, mtime).map_err(walk)?;
                let mut children: Vec<_> = fs::read_dir(&path)
                    .map_err(walk)?
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                // filepath.Walk's lexical order (popped from the end, so pushed reversed).
                children.sort();
                for c in children.into_iter().rev() {
                    stack.push((path.join(&c), format!("{name}/{c}")));
                }
            } else if meta.is_file() {
                let mut f = fs::File::open(&path)
                    .map_err(|e| format!("failed to open target files for archive: {e}"))?;
                tar.file(&name, mode, mtime, meta.len(), &mut f)
                    .map_err(|e| format!("failed to copy files for archive: {e}"))?;
            }
        }
        let gz = tar.finish().map_err(|e| e.to_string())?;
        let f = gz.finish().map_err(|e| e.to_string())?;
        f.sync_all().map_err(|e| e.to_string())
    }
}

/// `consul.log`: the agent's log lines at TRACE until `until`.
fn capture_logs(client: &Client, path: &Path, until: Instant) -> Result<(), String> {
    let mut f = fs::File::create(path).map_err(|e| e.to_string())?;
    let mut failed = None;
    let r = client.agent_monitor("TRACE", Some(until), |line| {
        match f.write_all(format!("{line}\n").as_bytes()) {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e.to_string());
                false
            }
        }
    });
    r.map_err(|e| e.to_string())?;
    failed.map_or(Ok(()), Err)
}

/// `metrics.json`: the stream as the agent sends it, one summary per interval.
fn capture_metrics(client: &Client, path: &Path, until: Instant) -> Result<(), String> {
    let mut f =
        fs::File::create(path).map_err(|e| format!("failed to create metrics file: {e}"))?;
    let mut failed = None;
    let r = client.agent_metrics_stream(Some(until), |line| {
        match f.write_all(format!("{line}\n").as_bytes()) {
            Ok(()) => true,
            Err(e) => {
                failed = Some(format!("failed to copy metrics to file: {e}"));
                false
            }
        }
    });
    r.map_err(|e| e.to_string())?;
    failed.map_or(Ok(()), Err)
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let spec = all_flags();
    let p = match flags::parse(&spec, args) {
        Ok(p) => p,
        Err(ParseError::Help) => return Err(ui::fail(help())),
        Err(ParseError::Invalid(msg)) => {
            ui::err(&format!("{msg}\n{}", help()));
            error(&format!("Error parsing flags: {msg}"));
            return Err(ui::exit_silently(1));
        }
    };
    let parse_error = |msg: String| {
        ui::err(&format!("{msg}\n{}", help()));
        error(&format!("Error parsing flags: {msg}"));
        ui::exit_silently(1)
    };
    let interval = duration_flag(&p, "interval", DEFAULT_INTERVAL).map_err(parse_error)?;
    let duration = duration_flag(&p, "duration", DEFAULT_DURATION).map_err(parse_error)?;
    if !p.args.is_empty() {
        error("debug: Too many arguments provided, expected 0");
        return Err(ui::exit_silently(1));
    }
    let archive = p.str("archive").is_none() || p.bool("archive");
    let output = p
        .str("output")
        .map(str::to_string)
        .unwrap_or_else(|| format!("consul-debug-{}", file_time(SystemTime::now())));
    let client = client(&p)?;
    let mut run = Run {
        client,
        output: PathBuf::from(&output),
        interval,
        duration,
        capture: p.all("capture"),
    };
    let version = match prepare(&mut run) {
        Ok(v) => v,
        Err(e) => {
            error(&format!("Capture validation failed: {e}"));
            return Err(ui::exit_silently(1));
        }
    };
    let archive_name = if archive {
        format!("{output}{ARCHIVE_EXT}")
    } else {
        output.clone()
    };
    say("Starting debugger and capturing static information...");
    info(&format!(" Agent Version: '{version}'"));
    info(&format!(
        "      Interval: '{}'",
        proconsul_types::duration::format(run.interval)
    ));
    info(&format!(
        "      Duration: '{}'",
        proconsul_types::duration::format(run.duration)
    ));
    info(&format!("        Output: '{archive_name}'"));
    info(&format!("       Capture: '{}'", run.capture.join(", ")));

    run.duration += GRACE;
    let errs = run.capture_static();
    if !errs.is_empty() {
        warn(&format!("Static capture failed: {}", multi_error(&errs)));
    }

    if run.captures(METRICS) || run.captures(LOGS) {
        if let Err(e) = capture_dynamic(&run) {
            error(&format!("Error encountered during collection: {e}"));
        }
    }

    let index = Index {
        version: PROTOCOL_VERSION,
        agent_version: version,
        interval: proconsul_types::duration::format(run.interval),
        duration: proconsul_types::duration::format(run.duration),
        targets: run.capture.clone(),
    };
    if let Err(e) = write_json(&run.file("index.json"), &index) {
        error(&format!("Error creating index document: {e}"));
        return Err(ui::exit_silently(1));
    }
    if let Err(e) = run.capture_raft() {
        warn(&format!("Raft list peers capture failed: {e}"));
    }
    if archive {
        if let Err(e) = run.archive() {
            warn(&format!("Archive creation failed: {e}"));
            return Err(ui::exit_silently(1));
        }
    }
    info(&format!("Saved debug archive: {archive_name}"));
    Ok(())
}

/// go-multierror's text.
fn multi_error(errs: &[String]) -> String {
    let points: Vec<String> = errs.iter().map(|e| format!("\t* {e}")).collect();
    format!(
        "{} error{} occurred:\n{}\n\n",
        errs.len(),
        if errs.len() == 1 { "" } else { "s" },
        points.join("\n")
    )
}

/// Consul's `prepare`: the timing floors, the agent's version, the targets, a fresh output
/// directory.
fn prepare(run: &mut Run) -> Result<String, String> {
    let go = proconsul_types::duration::format;
    if run.duration < MIN_DURATION {
        return Err(format!("duration must be longer than {}", go(MIN_DURATION)));
    }
    if run.interval < MIN_INTERVAL {
        // Consul names the duration's floor here, not the interval's; its text is kept.
        return Err(format!("interval must be longer than {}", go(MIN_DURATION)));
    }
    if run.duration < run.interval {
        return Err(format!(
            "duration ({}) must be longer than interval ({})",
            go(run.duration),
            go(run.interval)
        ));
    }
    let me = run.client.agent_self().map_err(|e| {
        format!("error querying target agent: {e}. verify connectivity and agent address")
    })?;
    let version = me["Config"]["Version"]
        .as_str()
        .ok_or("agent response did not contain version key")?
        .to_string();
    if run.capture.is_empty() {
        run.capture = DEFAULT_TARGETS.iter().map(|t| t.to_string()).collect();
    }
    let enable_debug = me["DebugConfig"]["EnableDebug"]
        .as_bool()
        .ok_or("agent response did not contain EnableDebug key")?;
    let acls = me["DebugConfig"]["ACLsEnabled"].as_bool().unwrap_or(false);
    if run.capture.iter().any(|t| t == PPROF) {
        run.capture.retain(|t| t != PPROF);
        if enable_debug || acls {
            warn("[WARN] Unable to capture pprof: proconsul agents have no Go runtime profiles.");
        } else {
            warn(
                "[WARN] Unable to capture pprof. Set enable_debug to true on target agent to \
                 enable profiling.",
            );
        }
    }
    if let Some(t) = run
        .capture
        .iter()
        .find(|t| !DEFAULT_TARGETS.contains(&t.as_str()) && t.as_str() != CLUSTER)
    {
        return Err(format!("target not found: {t}"));
    }
    if run.output.exists() {
        return Err(format!(
            "output directory already exists: {}",
            run.output.display()
        ));
    }
    fs::create_dir_all(&run.output)
        .map_err(|e| format!("could not create output directory: {e}"))?;
    Ok(version)
}

/// The interval loop on this thread, the log and metrics streams on their own, all for the
/// duration. SIGINT/SIGTERM end the loop early: the bundle is then written with what the
/// streams have written so far (their threads are left to end with the process), as Consul
/// does.
fn capture_dynamic(run: &Run) -> Result<(), String> {
    let start = Instant::now();
    let until = start + run.duration;
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    crate::process::on_shutdown(move || {
        let _ = stop_tx.send(());
    });
    let stream =
        |target: &str, file: &str, f: fn(&Client, &Path, Instant) -> Result<(), String>| {
            run.captures(target).then(|| {
                let (client, path) = (run.client.clone(), run.file(file));
                std::thread::spawn(move || f(&client, &path, until))
            })
        };
    let logs = stream(LOGS, "consul.log", capture_logs);
    let metrics = stream(METRICS, "metrics.json", capture_metrics);
    let mut count = 0u32;
    say(&format!(
        "Beginning capture interval {} ({count})",
        go_utc(SystemTime::now())
    ));
    say(&format!(
        "Capture successful {} ({count})",
        go_utc(SystemTime::now())
    ));
    let mut next = start + run.interval;
    loop {
        let now = Instant::now();
        if now >= until {
            break;
        }
        let wake = next.min(until);
        match stop_rx.recv_timeout(wake.saturating_duration_since(now)) {
            Ok(()) => return Err("stopping collection due to shutdown signal".to_string()),
            // No signal handler could be installed: just wait out the time.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(wake.saturating_duration_since(Instant::now()))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if Instant::now() >= next && next < until {
            count += 1;
            say(&format!(
                "Capture successful {} ({count})",
                go_utc(SystemTime::now())
            ));
            next += run.interval;
        }
    }
    let mut errs = Vec::new();
    for h in [logs, metrics].into_iter().flatten() {
        match h.join() {
            Ok(Err(e)) => errs.push(e),
            Err(_) => errs.push("capture thread panicked".to_string()),
            Ok(Ok(())) => {}
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_go_prints_them() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 120_000_000);
        assert_eq!(go_utc(t), "2023-11-14 22:13:20.12 +0000 UTC");
        assert_eq!(
            go_utc(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            "2023-11-14 22:13:20 +0000 UTC"
        );
        let f = file_time(t);
        assert!(f.len() >= "2023-11-14T22-13-20Z".len(), "{f}");
        assert!(!f.contains(':'), "{f}");
    }

    #[test]
    fn multi_error_text() {
        assert_eq!(multi_error(&["a".into()]), "1 error occurred:\n\t* a\n\n");
    }
}
