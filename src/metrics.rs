//! Metrics: a small process-wide registry of counters, gauges and histograms, rendered by
//! `GET /metrics` in the Prometheus text exposition format (version 0.0.4).
//!
//! Every metric family is declared once in [`FAMILIES`] (name, type, help, label names); code
//! anywhere records into it by name:
//!
//! ```
//! use provider_desk::metrics;
//! metrics::counter("rate_limit_refusals_total", &[("scope", "login")]).inc();
//! metrics::gauge("outbox_backlog", &[]).set(12);
//! metrics::histogram("store_call_duration_seconds", &[("adapter", "sqlite"), ("outcome", "ok")])
//!     .observe(std::time::Duration::from_micros(250));
//! ```
//!
//! A handle is cheap to clone and to keep: a hot path may look it up once and hold it. Labels are
//! given as `(name, value)` pairs in the order the declaration lists them. A family accepts at
//! most [`MAX_SERIES_PER_FAMILY`] label combinations; past that, new combinations are counted in
//! one series whose every label value is `_other`, so client-chosen values (an operation name)
//! cannot grow memory without bound.
//!
//! To add a metric: add a line to [`FAMILIES`] and the README's table, then record into it. A name
//! that is not declared still works (with a generic help text), but debug builds panic on it, so
//! a test notices.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The most label combinations one family keeps apart.
pub const MAX_SERIES_PER_FAMILY: usize = 1000;
/// The label value that stands for every combination past [`MAX_SERIES_PER_FAMILY`].
pub const OVERFLOW_LABEL_VALUE: &str = "_other";

/// What kind of metric a family is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A declared metric family.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub labels: &'static [&'static str],
    /// Histogram bucket upper bounds, in seconds (empty for counters and gauges).
    pub buckets: &'static [f64],
}

/// Request-sized latencies: 1 ms to 10 s.
pub const REQUEST_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Backend-call latencies: 100 µs to 5 s.
pub const CALL_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

const fn family(name: &'static str, kind: Kind, help: &'static str, labels: &'static [&'static str]) -> Family {
    Family { name, kind, help, labels, buckets: &[] }
}

const fn histogram_family(
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    buckets: &'static [f64],
) -> Family {
    Family { name, kind: Kind::Histogram, help, labels, buckets }
}

/// Every metric the server exposes, in the order `/metrics` shows them. The README's Monitoring
/// section lists the same.
pub const FAMILIES: &[Family] = &[
    family(
        "http_requests_total",
        Kind::Counter,
        "HTTP requests answered, by method, route (the router's path pattern) and status code.",
        &["method", "route", "status"],
    ),
    histogram_family(
        "http_request_duration_seconds",
        "Time from receiving an HTTP request to sending its response head.",
        &["method", "route", "status"],
        REQUEST_BUCKETS,
    ),
    family("http_requests_in_flight", Kind::Gauge, "HTTP requests being handled now.", &[]),
    family(
        "graphql_operations_total",
        Kind::Counter,
        "GraphQL queries and mutations run (POST /graphql and the REST endpoints), by operation name and \
         outcome: ok, or the first error's code.",
        &["operation", "outcome"],
    ),
    histogram_family(
        "graphql_operation_duration_seconds",
        "Time to parse, validate and run a GraphQL query or mutation.",
        &["operation"],
        REQUEST_BUCKETS,
    ),
    family("graphql_subscriptions_active", Kind::Gauge, "GraphQL subscriptions running now.", &[]),
    family("websocket_connections", Kind::Gauge, "Open WebSocket connections on /graphql/ws.", &[]),
    histogram_family(
        "store_call_duration_seconds",
        "Time of one call to the main store (a SQLite read or write transaction, a MongoDB operation).",
        &["adapter", "outcome"],
        CALL_BUCKETS,
    ),
    histogram_family(
        "redis_call_duration_seconds",
        "Time of one Redis call: a token-store command (tokens) or an event-bus publish (publish).",
        &["purpose", "outcome"],
        CALL_BUCKETS,
    ),
    family(
        "realtime_events_published_total",
        Kind::Counter,
        "Events handed to this process's subscribers, by kind and origin (local: written here; remote: \
         from another process over Redis).",
        &["kind", "origin"],
    ),
    family(
        "realtime_subscriber_lags_total",
        Kind::Counter,
        "Times a live subscriber fell behind the live stream (buffer overrun or a missed cursor) and \
         switched to reading the event log.",
        &[],
    ),
    family(
        "realtime_subscriber_catch_ups_total",
        Kind::Counter,
        "Times a subscriber reading the event log (after lagging, or replaying from a cursor) caught up and \
         went live again.",
        &[],
    ),
    family("realtime_subscribers_behind", Kind::Gauge, "Subscribers reading the event log now, not yet live.", &[]),
    family("outbox_backlog", Kind::Gauge, "Integration messages waiting in the outbox (read at the scrape).", &[]),
    family("outbox_dead_letters", Kind::Gauge, "Integration messages the outbox gave up on (read at the scrape).", &[]),
    family(
        "rate_limit_refusals_total",
        Kind::Counter,
        "Requests refused by a limit, by scope (ip, webhook, provider, login, subscriptions, ban, deny_list).",
        &["scope"],
    ),
    family(
        "bad_requests_total",
        Kind::Counter,
        "Malformed requests no working client sends, by reason (body_too_large, malformed_body, \
         json_too_deep, graphql_limits, forged_token); they count toward a ban.",
        &["reason"],
    ),
    family(
        "ip_bans_total",
        Kind::Counter,
        "Client addresses banned for a while for hitting limits or sending malformed requests again and again.",
        &[],
    ),
    family("process_start_time_seconds", Kind::Gauge, "When the process started, in seconds since the epoch.", &[]),
    family(
        "provider_desk_build_info",
        Kind::Gauge,
        "Always 1; the version label names the running build.",
        &["version"],
    ),
];

/// A monotonically increasing count.
#[derive(Clone, Debug)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn inc(&self) {
        self.inc_by(1);
    }

    pub fn inc_by(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Clone, Debug)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn dec(&self) {
        self.add(-1);
    }

    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn set(&self, value: i64) {
        self.0.store(value, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Adds one now and takes it away when the guard is dropped.
    pub fn track(&self) -> GaugeGuard {
        self.inc();
        GaugeGuard(self.clone())
    }
}

/// Holds one unit of a gauge; see [`Gauge::track`].
#[derive(Debug)]
pub struct GaugeGuard(Gauge);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[derive(Debug)]
struct HistogramCore {
    bounds: &'static [f64],
    /// One count per bound, plus one for everything above the last (`+Inf`); not cumulative.
    counts: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
}

/// A distribution of durations.
#[derive(Clone, Debug)]
pub struct Histogram(Arc<HistogramCore>);

impl Histogram {
    pub fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let index = self.0.bounds.iter().position(|bound| seconds <= *bound).unwrap_or(self.0.bounds.len());
        self.0.counts[index].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.0.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// How many observations there have been.
    pub fn count(&self) -> u64 {
        self.0.counts.iter().map(|count| count.load(Ordering::Relaxed)).sum()
    }
}

#[derive(Debug, Clone)]
enum Series {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

#[derive(Debug)]
struct FamilyState {
    kind: Kind,
    help: &'static str,
    label_names: Vec<String>,
    buckets: &'static [f64],
    series: BTreeMap<Vec<String>, Series>,
}

/// A set of metric families. The process has one, [`global`]; tests may make their own.
#[derive(Debug, Default)]
pub struct Registry {
    families: Mutex<HashMap<String, FamilyState>>,
}

impl Registry {
    /// A registry with the families of [`FAMILIES`]; those without labels start at zero, so they
    /// show from the first scrape.
    pub fn with_declared_families() -> Registry {
        let registry = Registry::default();
        for family in FAMILIES {
            if family.labels.is_empty() {
                registry.series(family.name, family.kind, &[]);
            }
        }
        registry
    }

    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Counter {
        match self.series(name, Kind::Counter, labels) {
            Series::Counter(counter) => counter,
            _ => unreachable!("series() answers the kind it was asked for"),
        }
    }

    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Gauge {
        match self.series(name, Kind::Gauge, labels) {
            Series::Gauge(gauge) => gauge,
            _ => unreachable!("series() answers the kind it was asked for"),
        }
    }

    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Histogram {
        match self.series(name, Kind::Histogram, labels) {
            Series::Histogram(histogram) => histogram,
            _ => unreachable!("series() answers the kind it was asked for"),
        }
    }

    fn series(&self, name: &str, kind: Kind, labels: &[(&str, &str)]) -> Series {
        let declared = FAMILIES.iter().find(|family| family.name == name);
        debug_assert!(declared.is_some(), "metric {name} is not declared in metrics::FAMILIES");
        debug_assert!(declared.is_none_or(|family| family.kind == kind), "metric {name} is not a {}", kind.as_str());
        debug_assert!(
            declared.is_none_or(|family| family.labels.iter().copied().eq(labels.iter().map(|(label, _)| *label))),
            "metric {name} takes the labels {:?}",
            declared.map(|family| family.labels)
        );
        let mut families = self.families.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let state = families.entry(name.to_owned()).or_insert_with(|| FamilyState {
            kind,
            help: declared.map_or("(not documented)", |family| family.help),
            label_names: labels.iter().map(|(label, _)| (*label).to_owned()).collect(),
            buckets: declared.map_or(REQUEST_BUCKETS, |family| family.buckets),
            series: BTreeMap::new(),
        });
        // A name used as two kinds (a bug the debug assertions catch) gets a separate series kept
        // out of the exposition rather than a panic in production.
        if state.kind != kind {
            return new_series(kind, REQUEST_BUCKETS);
        }
        let mut values: Vec<String> = labels.iter().map(|(_, value)| (*value).to_owned()).collect();
        if !state.series.contains_key(&values) && state.series.len() >= MAX_SERIES_PER_FAMILY {
            values = vec![OVERFLOW_LABEL_VALUE.to_owned(); values.len()];
        }
        let buckets = state.buckets;
        state.series.entry(values).or_insert_with(|| new_series(kind, buckets)).clone()
    }

    /// The whole registry in the Prometheus text format.
    pub fn render(&self) -> String {
        let families = self.families.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut names: Vec<&str> = FAMILIES.iter().map(|family| family.name).collect();
        let mut undeclared: Vec<&str> =
            families.keys().map(String::as_str).filter(|name| !names.contains(name)).collect();
        undeclared.sort_unstable();
        names.extend(undeclared);
        let mut out = String::with_capacity(16 * 1024);
        for name in names {
            let (help, kind, state) = match families.get(name) {
                Some(state) => (state.help, state.kind, Some(state)),
                None => match FAMILIES.iter().find(|family| family.name == name) {
                    Some(family) => (family.help, family.kind, None),
                    None => continue,
                },
            };
            let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
            let _ = writeln!(out, "# TYPE {name} {}", kind.as_str());
            let Some(state) = state else { continue };
            for (values, series) in &state.series {
                let labels: Vec<(&str, &str)> =
                    state.label_names.iter().map(String::as_str).zip(values.iter().map(String::as_str)).collect();
                match series {
                    Series::Counter(counter) => sample(&mut out, name, &labels, None, &counter.get().to_string()),
                    Series::Gauge(gauge) => sample(&mut out, name, &labels, None, &gauge.get().to_string()),
                    Series::Histogram(histogram) => render_histogram(&mut out, name, &labels, histogram),
                }
            }
        }
        out
    }
}

fn new_series(kind: Kind, buckets: &'static [f64]) -> Series {
    match kind {
        Kind::Counter => Series::Counter(Counter(Arc::new(AtomicU64::new(0)))),
        Kind::Gauge => Series::Gauge(Gauge(Arc::new(AtomicI64::new(0)))),
        Kind::Histogram => Series::Histogram(Histogram(Arc::new(HistogramCore {
            bounds: buckets,
            counts: (0..=buckets.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }))),
    }
}

fn render_histogram(out: &mut String, name: &str, labels: &[(&str, &str)], histogram: &Histogram) {
    let core = &histogram.0;
    let bucket = format!("{name}_bucket");
    let mut cumulative = 0u64;
    for (index, count) in core.counts.iter().enumerate() {
        cumulative += count.load(Ordering::Relaxed);
        let bound = core.bounds.get(index).map_or_else(|| "+Inf".to_owned(), |bound| format!("{bound}"));
        sample(out, &bucket, labels, Some(&bound), &cumulative.to_string());
    }
    let sum = core.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
    sample(out, &format!("{name}_sum"), labels, None, &format!("{sum}"));
    sample(out, &format!("{name}_count"), labels, None, &cumulative.to_string());
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], le: Option<&str>, value: &str) {
    out.push_str(name);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        let all = labels.iter().copied().chain(le.map(|le| ("le", le)));
        for (index, (label, value)) in all.enumerate() {
            if index > 0 {
                out.push(',');
            }
            let _ = write!(out, "{label}=\"{}\"", escape_label_value(value));
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(value);
    out.push('\n');
}

/// Label values escape backslash, double quote and line feed.
fn escape_label_value(value: &str) -> String {
    value.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

/// Help text escapes backslash and line feed.
fn escape_help(text: &str) -> String {
    text.replace('\\', r"\\").replace('\n', r"\n")
}

/// The process's registry.
pub fn global() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let registry = Registry::with_declared_families();
        let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        registry.gauge("process_start_time_seconds", &[]).set(started.as_secs() as i64);
        registry.gauge("provider_desk_build_info", &[("version", env!("CARGO_PKG_VERSION"))]).set(1);
        registry
    })
}

/// A counter of the process's registry.
pub fn counter(name: &str, labels: &[(&str, &str)]) -> Counter {
    global().counter(name, labels)
}

/// A gauge of the process's registry.
pub fn gauge(name: &str, labels: &[(&str, &str)]) -> Gauge {
    global().gauge(name, labels)
}

/// A histogram of the process's registry.
pub fn histogram(name: &str, labels: &[(&str, &str)]) -> Histogram {
    global().histogram(name, labels)
}

/// The process's metrics in the Prometheus text format.
pub fn render() -> String {
    global().render()
}

/// `ok` or `error`, the outcome label of backend calls.
pub fn outcome<T, E>(result: &Result<T, E>) -> &'static str {
    if result.is_ok() {
        "ok"
    } else {
        "error"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gauges_and_histograms_render_in_the_text_format() {
        let registry = Registry::with_declared_families();
        registry.counter("http_requests_total", &[("method", "GET"), ("route", "/a\"b"), ("status", "200")]).inc_by(3);
        registry.gauge("websocket_connections", &[]).set(2);
        let histogram = registry.histogram("redis_call_duration_seconds", &[("purpose", "tokens"), ("outcome", "ok")]);
        histogram.observe(Duration::from_micros(50));
        histogram.observe(Duration::from_millis(3));
        histogram.observe(Duration::from_secs(60));
        let text = registry.render();
        assert!(text.contains("# TYPE http_requests_total counter\n"), "{text}");
        assert!(text.contains("http_requests_total{method=\"GET\",route=\"/a\\\"b\",status=\"200\"} 3\n"), "{text}");
        assert!(text.contains("websocket_connections 2\n"), "{text}");
        let labels = "purpose=\"tokens\",outcome=\"ok\"";
        assert!(text.contains(&format!("redis_call_duration_seconds_bucket{{{labels},le=\"0.0001\"}} 1\n")), "{text}");
        assert!(text.contains(&format!("redis_call_duration_seconds_bucket{{{labels},le=\"0.005\"}} 2\n")), "{text}");
        assert!(text.contains(&format!("redis_call_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 3\n")), "{text}");
        assert!(text.contains(&format!("redis_call_duration_seconds_count{{{labels}}} 3\n")), "{text}");
        assert!(text.contains(&format!("redis_call_duration_seconds_sum{{{labels}}} 60.00305\n")), "{text}");
        assert!(text.contains("# TYPE rate_limit_refusals_total counter\n"), "families with labels are described");
        assert!(!text.contains("\nrate_limit_refusals_total{"), "and show no sample until recorded: {text}");
    }

    #[test]
    fn a_family_keeps_a_bounded_number_of_series() {
        let registry = Registry::default();
        for n in 0..MAX_SERIES_PER_FAMILY + 50 {
            registry.counter("graphql_operations_total", &[("operation", &format!("Op{n}")), ("outcome", "ok")]).inc();
        }
        let text = registry.render();
        let series = text.lines().filter(|line| line.starts_with("graphql_operations_total{")).count();
        assert_eq!(series, MAX_SERIES_PER_FAMILY + 1);
        assert!(text.contains("graphql_operations_total{operation=\"_other\",outcome=\"_other\"} 50\n"), "{text}");
    }
}
