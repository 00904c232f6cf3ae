//! Consul's metrics, kept in memory and shown as Consul shows them.
//!
//! Code records through the [`metrics`] facade (`metrics::counter!("consul.kvs.apply")`, with
//! Consul's names and labels); [`Telemetry`] is the facade's recorder. It keeps what go-metrics'
//! in-memory sink keeps — per 10-second interval, each counter's and sample's count, sum, min,
//! max, mean and standard deviation, and each gauge's last value, for the retention the
//! `telemetry` config gives — and renders:
//! - [`Telemetry::display`]: `/v1/agent/metrics` (`Timestamp`, `Gauges`, `Points`, `Counters`,
//!   `Samples`), the last complete interval as Consul shows it;
//! - [`Telemetry::summary_of`]: one interval in that shape, which `/v1/agent/metrics/stream`
//!   sends as each interval ends;
//! - [`Telemetry::prometheus`]: the text exposition format, cumulative since start (counters
//!   as counters, samples as summaries with `_sum` and `_count`, gauges as gauges), names with
//!   `.` and `-` turned into `_` as Consul's Prometheus sink does.
//!
//! Recording is a lock on one metric's cell; handles are looked up once per call site by the
//! facade's macros, so a hot path pays a short uncontended lock.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use serde::Serialize;

/// go-metrics' interval.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Which kind of metric a cell holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Sample,
}

/// Count, sum, min, max and the running variance of one interval (go-metrics' `AggregateSample`).
#[derive(Debug, Clone, Copy, Default)]
struct Agg {
    count: u64,
    sum: f64,
    sum_sq: f64,
    min: f64,
    max: f64,
}

impl Agg {
    fn add(&mut self, v: f64) {
        self.add_many(v, 1);
    }

    /// `n` samples of the same value at once.
    fn add_many(&mut self, v: f64, n: u64) {
        if n == 0 {
            return;
        }
        if self.count == 0 || v < self.min {
            self.min = v;
        }
        if self.count == 0 || v > self.max {
            self.max = v;
        }
        self.count += n;
        self.sum += v * n as f64;
        self.sum_sq += v * v * n as f64;
    }

    fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    /// Both intervals' values as one.
    fn merge(&mut self, o: &Agg) {
        if o.count == 0 {
            return;
        }
        if self.count == 0 || o.min < self.min {
            self.min = o.min;
        }
        if self.count == 0 || o.max > self.max {
            self.max = o.max;
        }
        self.count += o.count;
        self.sum += o.sum;
        self.sum_sq += o.sum_sq;
    }

    fn stddev(&self) -> f64 {
        if self.count < 2 {
            return 0.0;
        }
        let n = self.count as f64;
        let var = (self.sum_sq - self.sum * self.sum / n) / (n - 1.0);
        var.max(0.0).sqrt()
    }
}

/// One metric (a name and its labels): the current interval, the closed ones, and totals.
#[derive(Debug)]
struct Cell {
    kind: Kind,
    name: String,
    labels: Vec<(String, String)>,
    /// Counters and samples are recorded into one shard per thread (no two request threads
    /// contend on one lock) and merged when read; a gauge has one.
    shards: Vec<Shard>,
}

/// One shard, on cache lines of its own: two threads recording into neighbouring shards must
/// not share a line.
#[derive(Debug)]
#[repr(align(128))]
struct Shard(Mutex<CellState>);

/// Shards of a counter or sample.
const SHARDS: usize = 8;

/// This thread's shard (threads take the next one in turn).
fn shard_index() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    MINE.with(|m| *m)
}

#[derive(Debug, Default)]
struct CellState {
    /// Start (unix seconds, a multiple of the interval) of `current`.
    interval: u64,
    current: Agg,
    /// Closed intervals, oldest first: (start, aggregate).
    closed: VecDeque<(u64, Agg)>,
    /// Gauges: the last value set; counters/samples: totals since start.
    value: f64,
    total: Agg,
}

fn interval_of(now: SystemTime) -> u64 {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    secs - secs % INTERVAL.as_secs()
}

impl Cell {
    fn new(kind: Kind, name: String, labels: Vec<(String, String)>) -> Cell {
        let n = if kind == Kind::Gauge { 1 } else { SHARDS };
        Cell {
            kind,
            name,
            labels,
            shards: (0..n)
                .map(|_| Shard(Mutex::new(CellState::default())))
                .collect(),
        }
    }

    fn shards(&self) -> impl Iterator<Item = std::sync::MutexGuard<'_, CellState>> {
        self.shards
            .iter()
            .map(|m| m.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The interval starting at `start`, merged over the shards (`None`: nothing recorded).
    fn interval(&self, start: u64) -> Option<Agg> {
        let mut out: Option<Agg> = None;
        for s in self.shards() {
            let found = if s.interval == start {
                Some(s.current)
            } else {
                s.closed.iter().find(|(t, _)| *t == start).map(|(_, a)| *a)
            };
            if let Some(a) = found {
                out.get_or_insert_with(Agg::default).merge(&a);
            }
        }
        out
    }

    fn total(&self) -> Agg {
        let mut out = Agg::default();
        for s in self.shards() {
            out.merge(&s.total);
        }
        out
    }

    fn gauge_value(&self) -> f64 {
        self.shards().next().map_or(0.0, |s| s.value)
    }

    fn record(&self, retain: usize, f: impl FnOnce(&mut CellState)) {
        let now = interval_of(SystemTime::now());
        let shard = &self.shards[shard_index() % self.shards.len()];
        let mut s = shard.0.lock().unwrap_or_else(|e| e.into_inner());
        if s.interval != now {
            if s.interval != 0 && (s.current.count > 0 || self.kind == Kind::Gauge) {
                let (start, agg) = (s.interval, s.current);
                s.closed.push_back((start, agg));
                while s.closed.len() > retain {
                    s.closed.pop_front();
                }
            }
            s.interval = now;
            s.current = Agg::default();
        }
        f(&mut s);
    }
}

/// The registry behind the facade.
#[derive(Debug)]
pub struct Telemetry {
    /// By the facade's key (name and labels; hashed once by the facade): a recording looks
    /// its metric up under a read lock, allocating nothing.
    cells: RwLock<HashMap<Key, Arc<Cell>>>,
    /// Intervals kept (go-metrics' retain / interval).
    retain: usize,
    /// `telemetry.metrics_prefix` replaces the leading `consul`.
    prefix: String,
    /// `telemetry.prefix_filter` / `filter_default`: which metrics are kept at all.
    filter: PrefixFilter,
}

/// go-metrics' prefix filter: the longest rule that prefixes a metric's name decides
/// (`+` keeps, `-` drops); a name no rule prefixes is kept when `keep_by_default`. A dropped
/// metric's handle records nothing, so a filtered hot path costs nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixFilter {
    /// `(prefix, keep)`.
    pub rules: Vec<(String, bool)>,
    pub keep_by_default: bool,
}

impl Default for PrefixFilter {
    fn default() -> Self {
        PrefixFilter {
            rules: Vec::new(),
            keep_by_default: true,
        }
    }
}

impl PrefixFilter {
    pub fn keeps(&self, name: &str) -> bool {
        self.rules
            .iter()
            .filter(|(p, _)| name.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len())
            .map_or(self.keep_by_default, |(_, keep)| *keep)
    }
}

static GLOBAL: OnceLock<Arc<Telemetry>> = OnceLock::new();

impl Telemetry {
    /// A registry keeping `retention` of intervals (go-metrics default: 1 minute).
    pub fn new(retention: Duration, prefix: &str) -> Telemetry {
        let retain = (retention.as_secs() / INTERVAL.as_secs()).max(1) as usize;
        Telemetry {
            cells: RwLock::new(HashMap::new()),
            retain,
            prefix: prefix.to_string(),
            filter: PrefixFilter::default(),
        }
    }

    /// Keep only the metrics `filter` keeps.
    pub fn with_filter(mut self, filter: PrefixFilter) -> Telemetry {
        self.filter = filter;
        self
    }

    /// The name a metric is shown under: `telemetry.metrics_prefix` instead of `consul`.
    fn shown_name(&self, key: &Key) -> String {
        let name = key.name();
        if self.prefix != "consul" {
            if let Some(rest) = name.strip_prefix("consul.") {
                return format!("{}.{rest}", self.prefix);
            }
        }
        name.to_string()
    }

    /// Install as the process's recorder (once; later calls return the first one, whose
    /// settings stay: a process runs one agent, and tests share it).
    pub fn install(t: Telemetry) -> Arc<Telemetry> {
        GLOBAL
            .get_or_init(|| {
                let t = Arc::new(t);
                let _ = metrics::set_global_recorder(Handle(t.clone()));
                t
            })
            .clone()
    }

    fn cell(&self, kind: Kind, key: &Key) -> Arc<Cell> {
        if let Some(c) = self
            .cells
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
        {
            return c.clone();
        }
        let name = self.shown_name(key);
        let labels: Vec<(String, String)> = key
            .labels()
            .map(|l| (l.key().to_string(), l.value().to_string()))
            .collect();
        let mut cells = self.cells.write().unwrap_or_else(|e| e.into_inner());
        cells
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Cell::new(kind, name, labels)))
            .clone()
    }

    /// Every metric, ordered by name and labels (stable output).
    fn all(&self) -> Vec<Arc<Cell>> {
        let mut all: Vec<Arc<Cell>> = self
            .cells
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
        all
    }

    /// `/v1/agent/metrics`: the last complete interval (the current one before the first
    /// closes), in go-metrics' `MetricsSummary` shape.
    pub fn display(&self) -> serde_json::Value {
        let now = interval_of(SystemTime::now());
        let previous = now.saturating_sub(INTERVAL.as_secs());
        let cells = self.all();
        // go-metrics: the last finished interval, or the current one while it is the only one.
        let has_previous = cells.iter().any(|c| c.interval(previous).is_some());
        let target = if has_previous { previous } else { now };
        summarise(cells, target)
    }

    /// `/v1/agent/metrics/stream`: the interval that started at `start` (unix seconds, from
    /// [`interval_start`]), in the same shape as [`Telemetry::display`]. Asked for once the
    /// interval has ended, it is what go-metrics' `Stream` sends at that moment.
    pub fn summary_of(&self, start: u64) -> serde_json::Value {
        summarise(self.all(), start)
    }

    /// The Prometheus text exposition format, cumulative since start.
    pub fn prometheus(&self) -> String {
        let mut by_name: BTreeMap<String, Vec<Arc<Cell>>> = BTreeMap::new();
        for cell in self.all() {
            by_name.entry(prom_name(&cell.name)).or_default().push(cell);
        }
        let mut out = String::new();
        for (name, cells) in by_name {
            let kind = cells[0].kind;
            let ty = match kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Sample => "summary",
            };
            out.push_str(&format!("# HELP {name} {name}\n# TYPE {name} {ty}\n"));
            for cell in cells {
                let labels = prom_labels(&cell.labels);
                let total = cell.total();
                match kind {
                    Kind::Counter => out.push_str(&format!("{name}{labels} {}\n", num(total.sum))),
                    Kind::Gauge => {
                        out.push_str(&format!("{name}{labels} {}\n", num(cell.gauge_value())))
                    }
                    Kind::Sample => {
                        out.push_str(&format!("{name}_sum{labels} {}\n", num(total.sum)));
                        out.push_str(&format!("{name}_count{labels} {}\n", total.count));
                    }
                }
            }
        }
        out
    }
}

/// go-metrics' `MetricsSummary` of the interval starting at `target`: every gauge's last
/// value, and the counters and samples recorded in that interval.
fn summarise(cells: Vec<Arc<Cell>>, target: u64) -> serde_json::Value {
    let mut out = Summary {
        timestamp: format_time(target.max(1)),
        ..Summary::default()
    };
    for cell in cells {
        let agg = cell.interval(target);
        let labels: BTreeMap<String, String> = cell.labels.iter().cloned().collect();
        match cell.kind {
            // A gauge shows its last value whatever interval set it.
            Kind::Gauge => out.gauges.push(GaugeValue {
                name: cell.name.clone(),
                value: cell.gauge_value(),
                labels,
            }),
            Kind::Counter | Kind::Sample => {
                let Some(a) = agg.filter(|a| a.count > 0) else {
                    continue;
                };
                let v = SampledValue {
                    name: cell.name.clone(),
                    count: a.count,
                    rate: a.sum / INTERVAL.as_secs_f64(),
                    sum: a.sum,
                    min: a.min,
                    max: a.max,
                    mean: a.mean(),
                    stddev: a.stddev(),
                    labels,
                };
                if cell.kind == Kind::Counter {
                    out.counters.push(v);
                } else {
                    out.samples.push(v);
                }
            }
        }
    }
    serde_json::to_value(out).unwrap_or_default()
}

/// The start (unix seconds) of the interval under way at `now`, and when it ends.
pub fn interval_start(now: SystemTime) -> (u64, SystemTime) {
    let start = interval_of(now);
    (start, UNIX_EPOCH + Duration::from_secs(start) + INTERVAL)
}

/// Consul's Prometheus names: `consul.raft.apply` → `consul_raft_apply`.
fn prom_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn prom_labels(labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{}=\"{v}\"", prom_name(k))
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn num(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// go-metrics prints `time.Time.String()`: `2024-01-02 03:04:05 +0000 UTC`.
fn format_time(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000 UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[derive(Serialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Summary {
    timestamp: String,
    gauges: Vec<GaugeValue>,
    points: Vec<serde_json::Value>,
    counters: Vec<SampledValue>,
    samples: Vec<SampledValue>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GaugeValue {
    name: String,
    value: f64,
    labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SampledValue {
    name: String,
    count: u64,
    rate: f64,
    sum: f64,
    min: f64,
    max: f64,
    mean: f64,
    stddev: f64,
    labels: BTreeMap<String, String>,
}

/// The facade's view of the registry.
struct Handle(Arc<Telemetry>);

struct CellHandle {
    cell: Arc<Cell>,
    retain: usize,
}

impl metrics::CounterFn for CellHandle {
    fn increment(&self, value: u64) {
        self.cell.record(self.retain, |s| {
            s.current.add(value as f64);
            s.total.add(value as f64);
        });
    }
    fn absolute(&self, value: u64) {
        self.cell
            .record(self.retain, |s| s.total.sum = value as f64);
    }
}

impl metrics::GaugeFn for CellHandle {
    fn increment(&self, value: f64) {
        self.cell.record(self.retain, |s| {
            s.value += value;
            s.current.add(s.value);
        });
    }
    fn decrement(&self, value: f64) {
        self.cell.record(self.retain, |s| {
            s.value -= value;
            s.current.add(s.value);
        });
    }
    fn set(&self, value: f64) {
        self.cell.record(self.retain, |s| {
            s.value = value;
            s.current.add(value);
        });
    }
}

impl metrics::HistogramFn for CellHandle {
    fn record(&self, value: f64) {
        self.cell.record(self.retain, |s| {
            s.current.add(value);
            s.total.add(value);
        });
    }

    /// One lock and one clock read for the lot (the facade's default records one by one).
    fn record_many(&self, value: f64, count: usize) {
        self.cell.record(self.retain, |s| {
            s.current.add_many(value, count as u64);
            s.total.add_many(value, count as u64);
        });
    }
}

impl Recorder for Handle {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        if !self.0.filter.keeps(&self.0.shown_name(key)) {
            return Counter::noop();
        }
        Counter::from_arc(Arc::new(CellHandle {
            cell: self.0.cell(Kind::Counter, key),
            retain: self.0.retain,
        }))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        if !self.0.filter.keeps(&self.0.shown_name(key)) {
            return Gauge::noop();
        }
        Gauge::from_arc(Arc::new(CellHandle {
            cell: self.0.cell(Kind::Gauge, key),
            retain: self.0.retain,
        }))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        if !self.0.filter.keeps(&self.0.shown_name(key)) {
            return Histogram::noop();
        }
        Histogram::from_arc(Arc::new(CellHandle {
            cell: self.0.cell(Kind::Sample, key),
            retain: self.0.retain,
        }))
    }
}

#[cfg(test)]
mod tests;

/// Push sinks: go-metrics' statsd and dogstatsd sinks, fed from the registry.
///
/// Every flush sends what changed since the last one: a counter's increase (`|c`), a gauge's
/// value when it changed (`|g`), and a timer's samples as their mean with a sample rate of
/// one over their count (`|ms|@r`), so the server counts each sample (min and max within one
/// flush are not kept). Statsd names carry label values as extra name parts (go-metrics'
/// `flattenKeyLabels`); dogstatsd sends labels and `dogstatsd_tags` as `|#k:v` tags.
pub mod statsd {
    use super::{Arc, Cell, HashMap, Kind, Telemetry};

    /// Which protocol a sink speaks.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Flavor {
        Statsd,
        /// With the `dogstatsd_tags` added to every line.
        Dogstatsd {
            tags: Vec<String>,
        },
    }

    /// What the last flush sent, per metric (by cell; cells live as long as the registry).
    #[derive(Debug, Default)]
    pub struct Sent {
        totals: HashMap<usize, (u64, f64)>,
        gauges: HashMap<usize, f64>,
    }

    /// Largest datagram go-metrics' statsd sinks send.
    pub const MAX_PACKET: usize = 1432;

    fn clean(s: &str) -> String {
        s.replace([':', ' ', '|'], "_")
    }

    fn line(cell: &Cell, flavor: &Flavor, value: &str) -> String {
        match flavor {
            Flavor::Statsd => {
                let mut name = clean(&cell.name);
                for (_, v) in &cell.labels {
                    name.push('.');
                    name.push_str(&clean(v));
                }
                format!("{name}:{value}")
            }
            Flavor::Dogstatsd { tags } => {
                let mut all: Vec<String> = tags.clone();
                all.extend(
                    cell.labels
                        .iter()
                        .map(|(k, v)| format!("{}:{}", clean(k), clean(v))),
                );
                if all.is_empty() {
                    format!("{}:{value}", clean(&cell.name))
                } else {
                    format!("{}:{value}|#{}", clean(&cell.name), all.join(","))
                }
            }
        }
    }

    /// Insert the type (and rate) before any dogstatsd tags: `name:v|c|#t`.
    fn typed(l: String, ty: &str) -> String {
        match l.find("|#") {
            Some(i) => format!("{}|{ty}{}", &l[..i], &l[i..]),
            None => format!("{l}|{ty}"),
        }
    }

    impl Telemetry {
        /// The lines to send now, and remember them as sent.
        pub fn statsd_lines(&self, sent: &mut Sent, flavor: &Flavor) -> Vec<String> {
            let mut out = Vec::new();
            for cell in self.all() {
                let id = Arc::as_ptr(&cell) as usize;
                match cell.kind {
                    Kind::Gauge => {
                        let v = cell.gauge_value();
                        if sent.gauges.insert(id, v) != Some(v) {
                            out.push(typed(line(&cell, flavor, &super::num(v)), "g"));
                        }
                    }
                    Kind::Counter | Kind::Sample => {
                        let t = cell.total();
                        let (count, sum) =
                            sent.totals.insert(id, (t.count, t.sum)).unwrap_or((0, 0.0));
                        let n = t.count.saturating_sub(count);
                        if n == 0 {
                            continue;
                        }
                        let delta = t.sum - sum;
                        if cell.kind == Kind::Counter {
                            out.push(typed(line(&cell, flavor, &super::num(delta)), "c"));
                        } else {
                            let mean = super::num(delta / n as f64);
                            let ty = if n == 1 {
                                "ms".to_string()
                            } else {
                                format!("ms|@{}", super::num(1.0 / n as f64))
                            };
                            out.push(typed(line(&cell, flavor, &mean), &ty));
                        }
                    }
                }
            }
            out
        }
    }

    /// Pack lines into datagrams of at most [`MAX_PACKET`] bytes (a longer line goes alone).
    pub fn packets(lines: &[String]) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut cur: Vec<u8> = Vec::new();
        for l in lines {
            if !cur.is_empty() && cur.len() + 1 + l.len() > MAX_PACKET {
                out.push(std::mem::take(&mut cur));
            }
            if !cur.is_empty() {
                cur.push(b'\n');
            }
            cur.extend_from_slice(l.as_bytes());
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }
}
