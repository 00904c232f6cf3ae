//! Consul-style log lines: `2026-01-02T03:04:05.678Z [INFO]  agent: message: key=value`, or JSON
//! with `-log-json`, on stdout and, with `log_file`, in a file rotated by size and age as
//! Consul's `logging.LogFile` does. Only `run` (the binary's entry) installs this; libraries
//! only emit events.

use std::fmt;
use std::sync::{Arc, Mutex};

use proconsul_config::LogFileConfig;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// The hclog-like line format Consul prints.
struct ConsulFormat;

impl<S, N> FormatEvent<S, N> for ConsulFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let level = match *meta.level() {
            Level::TRACE => "[TRACE] ",
            Level::DEBUG => "[DEBUG] ",
            Level::INFO => "[INFO]  ",
            Level::WARN => "[WARN]  ",
            Level::ERROR => "[ERROR] ",
        };
        write!(
            w,
            "{} {}{}: ",
            timestamp(),
            level,
            short_target(meta.target())
        )?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Our crates log under Consul-like names (`agent`, `agent.server`); others keep their module.
fn short_target(t: &str) -> &str {
    t.strip_prefix("proconsul_").unwrap_or(t)
}

/// UTC time as `YYYY-MM-DDTHH:MM:SS.mmmZ`, without a date crate.
fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let ms = now.subsec_millis();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // civil-from-days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

/// Map Consul's level names to a filter: our crates at `level`, noisy dependencies at warn.
fn filter(level: &str) -> EnvFilter {
    let lvl = match level.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "warn" => "warn",
        "err" | "error" => "error",
        _ => "info",
    };
    let deps = if lvl == "trace" { "info" } else { "warn" };
    EnvFilter::new(format!(
        "{deps},proconsul={lvl},proconsul_agent={lvl},agent={lvl},openraft={deps}"
    ))
}

/// Install the process-wide subscriber, printing to stdout (and `file`) and teeing every line
/// into the returned [`LogTap`] (what `/v1/agent/monitor` streams). Call once per process.
/// Fails when the log file cannot be opened (Consul: `Failed to setup logging: …`).
pub fn init(level: &str, json: bool, file: Option<&LogFileConfig>) -> Result<LogTap, LogError> {
    let file = match file {
        Some(c) => Some(Arc::new(Mutex::new(LogFile::open(c).map_err(LogError)?))),
        None => None,
    };
    let tap = LogTap {
        lines: tokio::sync::broadcast::channel(1024).0,
        file,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(level))
        .with_writer(tap.clone())
        .with_ansi(false);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.event_format(ConsulFormat).try_init()
    };
    Ok(tap)
}

/// The log file could not be opened; prints as Consul's start-up error.
#[derive(Debug, thiserror::Error)]
#[error("Failed to setup logging: {0}")]
pub struct LogError(#[source] pub std::io::Error);

/// A broadcast of formatted log lines. Slow monitors lag and lose lines; the agent never waits.
#[derive(Clone)]
pub struct LogTap {
    lines: tokio::sync::broadcast::Sender<Arc<str>>,
    file: Option<Arc<Mutex<LogFile>>>,
}

impl LogTap {
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<str>> {
        self.lines.subscribe()
    }
}

/// Each formatted event arrives as one write: print it, write it to the log file, and pass it
/// on when someone listens.
pub struct TapWriter(LogTap);

impl std::io::Write for TapWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.lines.receiver_count() > 0 {
            let _ = self
                .0
                .lines
                .send(Arc::from(String::from_utf8_lossy(buf).as_ref()));
        }
        if let Some(f) = &self.0.file {
            // A full disk must not stop the agent: the line still reaches stdout.
            let _ = f.lock().unwrap_or_else(|e| e.into_inner()).write(buf);
        }
        std::io::stdout().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogTap {
    type Writer = TapWriter;
    fn make_writer(&'a self) -> TapWriter {
        TapWriter(self.clone())
    }
}

/// The log file: `dir/name`, renamed to `<stem>-<unix nanos><ext>` when it reaches
/// `rotate_bytes` or `rotate_duration` (checked before each write, as Consul does), with at
/// most `max_files` rotated files kept (0: all, negative: none).
pub(crate) struct LogFile {
    cfg: LogFileConfig,
    file: std::fs::File,
    created: std::time::Instant,
    written: u64,
}

impl LogFile {
    /// Prune what an earlier run left beyond `max_files`, then start a fresh current file.
    fn open(cfg: &LogFileConfig) -> std::io::Result<LogFile> {
        prune(cfg)?;
        Ok(LogFile {
            file: create(cfg)?,
            cfg: cfg.clone(),
            created: std::time::Instant::now(),
            written: 0,
        })
    }

    fn write(&mut self, buf: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let too_big = self.cfg.rotate_bytes > 0 && self.written >= self.cfg.rotate_bytes;
        if too_big || self.created.elapsed() >= self.cfg.rotate_duration {
            self.rotate()?;
        }
        self.written += buf.len() as u64;
        self.file.write_all(buf)
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let (stem, ext) = stem_ext(&self.cfg.name);
        std::fs::rename(
            self.cfg.dir.join(&self.cfg.name),
            self.cfg.dir.join(format!("{stem}-{nanos}{ext}")),
        )?;
        prune(&self.cfg)?;
        self.file = create(&self.cfg)?;
        self.created = std::time::Instant::now();
        self.written = 0;
        Ok(())
    }
}

/// `consul.log` → (`consul`, `.log`); a name without an extension gets `.log` for its
/// rotated files, as Consul names them.
fn stem_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ".log"),
    }
}

fn create(cfg: &LogFileConfig) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = cfg.dir.join(&cfg.name);
    std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o640)
        .open(&path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("open {}: {e}", path.display())))
}

/// Remove the oldest rotated files beyond `max_files`.
fn prune(cfg: &LogFileConfig) -> std::io::Result<()> {
    if cfg.max_files == 0 {
        return Ok(());
    }
    let (stem, ext) = stem_ext(&cfg.name);
    let prefix = format!("{stem}-");
    let stamp =
        |n: &str| -> Option<u128> { n.strip_prefix(&prefix)?.strip_suffix(ext)?.parse().ok() };
    let mut rotated: Vec<(u128, String)> = match std::fs::read_dir(&cfg.dir) {
        Ok(d) => d
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| Some((stamp(&n)?, n)))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    // Oldest first, by the time in the name (numerically, whatever its length).
    rotated.sort();
    let keep = usize::try_from(cfg.max_files).unwrap_or(0);
    let excess = rotated.len().saturating_sub(keep);
    for (_, n) in &rotated[..excess] {
        std::fs::remove_file(cfg.dir.join(n))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn files(dir: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn log_file_rotates_by_size_and_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        // Left by an earlier run: pruned at start beyond max_files.
        for ts in ["100", "200", "300"] {
            std::fs::write(dir.path().join(format!("agent-{ts}.log")), "old").unwrap();
        }
        std::fs::write(dir.path().join("agent-notes.log"), "not ours").unwrap();
        let cfg = LogFileConfig {
            dir: dir.path().into(),
            name: "agent.log".into(),
            rotate_bytes: 10,
            rotate_duration: Duration::from_secs(3600),
            max_files: 2,
        };
        let mut f = LogFile::open(&cfg).unwrap();
        assert_eq!(
            files(dir.path()),
            [
                "agent-200.log",
                "agent-300.log",
                "agent-notes.log",
                "agent.log"
            ]
        );
        f.write(b"0123456789").unwrap(); // reaches the limit; the next write rotates
        f.write(b"second\n").unwrap();
        let names = files(dir.path());
        assert_eq!(names.len(), 4, "{names:?}");
        assert!(!names.contains(&"agent-200.log".to_string()), "{names:?}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("agent.log")).unwrap(),
            "second\n"
        );
        let rotated = names
            .iter()
            .find(|n| n.len() > 20 && n.starts_with("agent-"))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(rotated)).unwrap(),
            "0123456789"
        );
        // max_files = -1: no rotated file is kept.
        let cfg = LogFileConfig {
            max_files: -1,
            ..cfg
        };
        let mut f = LogFile::open(&cfg).unwrap();
        f.write(b"0123456789").unwrap();
        f.write(b"x").unwrap();
        assert_eq!(files(dir.path()), ["agent-notes.log", "agent.log"]);
    }

    #[test]
    fn names_without_an_extension_rotate_to_dot_log() {
        assert_eq!(stem_ext("consul.log"), ("consul", ".log"));
        assert_eq!(stem_ext("consul"), ("consul", ".log"));
        assert_eq!(stem_ext(".hidden"), (".hidden", ".log"));
    }

    #[test]
    fn timestamp_shape() {
        let t = super::timestamp();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T');
    }
}
