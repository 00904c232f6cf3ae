use super::*;

fn key(name: &'static str, labels: &[(&'static str, &'static str)]) -> Key {
    let labels: Vec<metrics::Label> = labels
        .iter()
        .map(|(k, v)| metrics::Label::new(*k, *v))
        .collect();
    Key::from_parts(name, labels)
}

fn meta() -> Metadata<'static> {
    Metadata::new("t", metrics::Level::INFO, None)
}

#[test]
fn aggregates_and_shapes() {
    let t = Arc::new(Telemetry::new(Duration::from_secs(60), "consul"));
    let h = Handle(t.clone());
    let c = h.register_counter(&key("consul.kvs.apply", &[]), &meta());
    c.increment(1);
    c.increment(3);
    let s = h.register_histogram(
        &key("consul.api.http", &[("method", "GET"), ("path", "v1.kv")]),
        &meta(),
    );
    s.record(2.0);
    s.record(4.0);
    let g = h.register_gauge(&key("consul.server.isLeader", &[]), &meta());
    g.set(1.0);

    let v = t.display();
    assert!(v["Timestamp"].as_str().unwrap().ends_with(" +0000 UTC"));
    // Right after start only the current interval exists: it is shown.
    let counter = &v["Counters"][0];
    assert_eq!(counter["Name"], "consul.kvs.apply");
    assert_eq!(
        (counter["Count"].as_u64(), counter["Sum"].as_f64()),
        (Some(2), Some(4.0))
    );
    assert_eq!(
        (counter["Min"].as_f64(), counter["Max"].as_f64()),
        (Some(1.0), Some(3.0))
    );
    assert_eq!(counter["Mean"].as_f64(), Some(2.0));
    let sample = &v["Samples"][0];
    assert_eq!(sample["Labels"]["method"], "GET");
    assert!((sample["Stddev"].as_f64().unwrap() - 2f64.sqrt()).abs() < 1e-9);
    assert_eq!(v["Gauges"][0]["Value"].as_f64(), Some(1.0));
    assert_eq!(v["Points"], serde_json::json!([]));

    let text = t.prometheus();
    assert!(
        text.contains("# TYPE consul_kvs_apply counter\nconsul_kvs_apply 4\n"),
        "{text}"
    );
    assert!(
        text.contains("consul_api_http_sum{method=\"GET\",path=\"v1.kv\"} 6\n"),
        "{text}"
    );
    assert!(
        text.contains("consul_api_http_count{method=\"GET\",path=\"v1.kv\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE consul_server_isLeader gauge\nconsul_server_isLeader 1\n"),
        "{text}"
    );
    // Every line is a comment or `name{labels} value`.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
    }
}

#[test]
fn a_prefix_replaces_consul() {
    let t = Arc::new(Telemetry::new(Duration::from_secs(60), "proconsul"));
    let h = Handle(t.clone());
    h.register_counter(&key("consul.kvs.apply", &[]), &meta())
        .increment(1);
    assert_eq!(t.display()["Counters"][0]["Name"], "proconsul.kvs.apply");
}

#[test]
fn go_time_format() {
    assert_eq!(format_time(0), "1970-01-01 00:00:00 +0000 UTC");
    assert_eq!(format_time(1_700_000_000), "2023-11-14 22:13:20 +0000 UTC");
}

#[test]
fn summary_of_one_interval() {
    let t = Arc::new(Telemetry::new(Duration::from_secs(60), "consul"));
    let h = Handle(t.clone());
    let c = h.register_counter(&key("consul.rpc.request", &[]), &meta());
    let now = SystemTime::now();
    c.increment(2);
    let (start, end) = interval_start(now);
    assert_eq!(start % INTERVAL.as_secs(), 0);
    assert_eq!(
        end.duration_since(UNIX_EPOCH).unwrap().as_secs(),
        start + INTERVAL.as_secs()
    );
    // The counter landed in the interval under way (or, at a boundary, in the next one).
    let v = t.summary_of(start);
    let next = t.summary_of(start + INTERVAL.as_secs());
    let count = |v: &serde_json::Value| {
        v["Counters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["Name"] == "consul.rpc.request")
            .map(|c| c["Count"].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(count(&v) + count(&next), 1);
    assert_eq!(v["Timestamp"], format_time(start));
    // An interval long gone has no counters, only gauges.
    assert_eq!(count(&t.summary_of(start - 3600)), 0);
}

#[test]
fn prefix_filter_keeps_by_the_longest_rule() {
    use crate::PrefixFilter;
    let f = PrefixFilter {
        rules: vec![
            ("consul.raft".into(), false),
            ("consul.raft.apply".into(), true),
            ("consul.http".into(), false),
        ],
        keep_by_default: true,
    };
    assert!(f.keeps("consul.raft.apply"));
    assert!(!f.keeps("consul.raft.commitTime"));
    assert!(!f.keeps("consul.http.GET"));
    assert!(f.keeps("consul.kvs.apply"));
    let strict = PrefixFilter {
        rules: vec![("consul.kvs".into(), true)],
        keep_by_default: false,
    };
    assert!(strict.keeps("consul.kvs.apply"));
    assert!(!strict.keeps("consul.raft.apply"));
}

#[test]
fn filtered_metrics_are_not_kept() {
    use crate::PrefixFilter;
    let t = Arc::new(
        Telemetry::new(Duration::from_secs(60), "consul").with_filter(PrefixFilter {
            rules: vec![("consul.raft".into(), false)],
            keep_by_default: true,
        }),
    );
    let h = Handle(t.clone());
    h.register_counter(&key("consul.raft.apply", &[]), &meta())
        .increment(1);
    h.register_counter(&key("consul.kvs.apply", &[]), &meta())
        .increment(1);
    let v = t.display();
    let names: Vec<&str> = v["Counters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["consul.kvs.apply"]);
}

#[test]
fn statsd_lines_send_what_changed() {
    use crate::statsd::{packets, Flavor, Sent};
    let t = Arc::new(Telemetry::new(Duration::from_secs(60), "consul"));
    let h = Handle(t.clone());
    let c = h.register_counter(&key("consul.kvs.apply", &[]), &meta());
    let s = h.register_histogram(
        &key("consul.api.http", &[("method", "GET"), ("path", "v1:kv")]),
        &meta(),
    );
    let g = h.register_gauge(&key("consul.server.isLeader", &[]), &meta());
    c.increment(3);
    s.record(2.0);
    s.record(4.0);
    g.set(1.0);
    let mut sent = Sent::default();
    let mut lines = t.statsd_lines(&mut sent, &Flavor::Statsd);
    lines.sort();
    assert_eq!(
        lines,
        [
            "consul.api.http.GET.v1_kv:3|ms|@0.5",
            "consul.kvs.apply:3|c",
            "consul.server.isLeader:1|g"
        ]
    );
    // Nothing new: nothing sent; then only the change.
    assert!(t.statsd_lines(&mut sent, &Flavor::Statsd).is_empty());
    c.increment(2);
    assert_eq!(
        t.statsd_lines(&mut sent, &Flavor::Statsd),
        ["consul.kvs.apply:2|c"]
    );
    // Dogstatsd: labels and the configured tags as tags.
    s.record(6.0);
    let dog = Flavor::Dogstatsd {
        tags: vec!["env:test".into()],
    };
    assert_eq!(
        t.statsd_lines(&mut sent, &dog),
        ["consul.api.http:6|ms|#env:test,method:GET,path:v1_kv"]
    );
    // Packets stay under the datagram limit.
    let many: Vec<String> = (0..200).map(|i| format!("consul.m{i}:1|c")).collect();
    let p = packets(&many);
    assert!(p.len() > 1 && p.iter().all(|d| d.len() <= crate::statsd::MAX_PACKET));
    assert_eq!(
        p.iter()
            .map(|d| d.split(|b| *b == b'\n').count())
            .sum::<usize>(),
        200
    );
}
