//! Consul-style log lines: `2026-01-02T03:04:05.678Z [INFO]  agent: message: key=value`, or JSON
//! with `-log-json`. Only `run` (the binary's entry) installs this; libraries only emit events.

use std::fmt;
use std::sync::Arc;

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

/// Install the process-wide subscriber. Safe to call once per process.
/// Install the process-wide subscriber, printing to stdout and teeing every line into the
/// returned [`LogTap`] (what `/v1/agent/monitor` streams). Call once per process.
pub fn init(level: &str, json: bool) -> LogTap {
    let tap = LogTap(tokio::sync::broadcast::channel(1024).0);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(level))
        .with_writer(tap.clone())
        .with_ansi(false);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.event_format(ConsulFormat).try_init()
    };
    tap
}

/// A broadcast of formatted log lines. Slow monitors lag and lose lines; the agent never waits.
#[derive(Clone)]
pub struct LogTap(tokio::sync::broadcast::Sender<Arc<str>>);

impl LogTap {
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<str>> {
        self.0.subscribe()
    }
}

/// Each formatted event arrives as one write: print it, and pass it on when someone listens.
pub struct TapWriter(tokio::sync::broadcast::Sender<Arc<str>>);

impl std::io::Write for TapWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.receiver_count() > 0 {
            let _ = self
                .0
                .send(Arc::from(String::from_utf8_lossy(buf).as_ref()));
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
        TapWriter(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamp_shape() {
        let t = super::timestamp();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T');
    }
}
