//! The metric contract: ordinary metrics in a registry, the per-pair series written
//! straight from the [`Store`] at scrape time.
//!
//! Event metrics (poll counters, durations) are recorded as polls finish; everything that
//! describes current state is read from the store on each scrape, so staleness is judged
//! at the moment of the scrape, not at the moment of the last poll. The per-pair families
//! (about 20 series a pair) are encoded directly from one pass over the store, with no
//! per-series metric objects: a scrape costs the text it writes. Metrics that are not per
//! pair (the process, the heartbeat, reloads, connections...) go in the plain registry.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus::{Gauge, GaugeVec, Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

use crate::model::{AuthorityState, FailureReason, Observation, Target};
use crate::smileid::PollError;
use crate::store::{Store, TargetStatus};

/// The Content-Type of the classic text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric the exporter serves.
pub struct Metrics {
    registry: Registry,
    /// Replaced whole on reload, so a scrape in progress keeps the table it started with.
    pairs: RwLock<Arc<Entries>>,
    poll_duration: Histogram,
    cycle_last_run: Gauge,
    targets: IntGauge,
    reload_ok: Gauge,
    reload_time: Gauge,
    reloads: IntCounterVec,
    connections: ConnectionMetrics,
    tls_expiry: GaugeVec,
    history: HistoryMetrics,
    /// Serialises the start of scrapes (the shown-since bookkeeping reads and writes per
    /// pair) and keeps the last scrape's per-pair rows, so the next one reuses their memory.
    spare_rows: Arc<Mutex<Vec<Row>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// The served pairs, in configuration order, with their counters.
#[derive(Default)]
struct Entries {
    index: HashMap<Target, usize>,
    list: Vec<Arc<PairEntry>>,
}

impl Entries {
    fn position(&self, target: &Target) -> Option<usize> {
        self.index.get(target).copied()
    }
}

/// One served pair: its counters and the state it was last shown in.
struct PairEntry {
    target: Target,
    polls: AtomicU64,
    unrecognized: AtomicU64,
    failures: [AtomicU64; FailureReason::ALL.len()],
    /// The state shown at the last scrape, as an index into [`AuthorityState::ALL`]
    /// (`NOT_SHOWN` before the first), and since when (Unix milliseconds).
    shown: AtomicU8,
    shown_since_ms: AtomicI64,
}

const NOT_SHOWN: u8 = u8::MAX;

impl PairEntry {
    fn new(target: Target) -> PairEntry {
        PairEntry {
            target,
            polls: AtomicU64::new(0),
            unrecognized: AtomicU64::new(0),
            failures: Default::default(),
            shown: AtomicU8::new(NOT_SHOWN),
            shown_since_ms: AtomicI64::new(0),
        }
    }
}

/// What a scrape computed for one pair, before writing it family by family.
#[derive(Clone, Copy)]
struct Row {
    entry: usize,
    state: AuthorityState,
    since: f64,
    rate_10m: Option<f64>,
    rate_1h: Option<f64>,
    last_checked: Option<f64>,
    poll_success: Option<bool>,
    last_success: Option<f64>,
}

/// A per-pair family, encoded by [`write_pair_family`].
struct Family {
    name: &'static str,
    help: &'static str,
    series: Series,
}

/// Which per-pair series a family holds.
#[derive(Clone, Copy, PartialEq)]
enum Series {
    Rate10m,
    Rate1h,
    State,
    LastChecked,
    PollSuccess,
    LastPollSuccess,
    StateSince,
    Polls,
    Failures,
    Unrecognized,
}

macro_rules! cached {
    ($help:literal) => {
        concat!($help, " Cached from the background poll of Smile ID's id_status endpoint.")
    };
}

/// Every per-pair family, sorted by name as the registry sorts its own, so that the two
/// merge into one sorted exposition.
const PAIR_FAMILIES: [Family; 10] = [
    Family {
        name: "idauth_last_checked_timestamp_seconds",
        help: cached!("When the provider last checked the ID authority (its last_checked), in Unix seconds."),
        series: Series::LastChecked,
    },
    Family {
        name: "idauth_last_poll_success_timestamp_seconds",
        help: "When a poll of this pair last succeeded, in Unix seconds.",
        series: Series::LastPollSuccess,
    },
    Family {
        name: "idauth_poll_failures_total",
        help: "Failed polls of the provider for this pair, by reason.",
        series: Series::Failures,
    },
    Family {
        name: "idauth_poll_success",
        help: "Whether the exporter's last poll of this pair succeeded (1) or failed (0).",
        series: Series::PollSuccess,
    },
    Family { name: "idauth_polls_total", help: "Polls of the provider made for this pair.", series: Series::Polls },
    Family {
        name: "idauth_state",
        help: cached!(
            "State of the ID authority (online, interruption, offline, unknown); exactly one state is 1 per pair. Unknown when no fresh data."
        ),
        series: Series::State,
    },
    Family {
        name: "idauth_state_since_timestamp_seconds",
        help: "When the pair's shown state (idauth_state) last changed, as seen at scrape time, in Unix seconds.",
        series: Series::StateSince,
    },
    Family {
        name: "idauth_success_rate_10m",
        help: cached!(
            "Share (0-1) of checks of the ID authority that succeeded in the provider's last 10-minute window."
        ),
        series: Series::Rate10m,
    },
    Family {
        name: "idauth_success_rate_1h",
        help: cached!("Share (0-1) of checks of the ID authority that succeeded in the provider's last hour."),
        series: Series::Rate1h,
    },
    Family {
        name: "idauth_unrecognized_status_total",
        help: "Polls whose last_known_status the exporter did not recognise (shown as state unknown).",
        series: Series::Unrecognized,
    },
];

impl Metrics {
    /// A registry with every metric registered; `revision` labels the build info.
    pub fn new(revision: &str) -> Metrics {
        let poll_duration = Histogram::with_opts(
            HistogramOpts::new("idauth_poll_duration_seconds", "Duration of one provider request, retries included.")
                .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
        )
        .expect("valid metric");
        let cycle_last_run = Gauge::new(
            "idauth_poll_cycle_last_run_timestamp_seconds",
            "When the scheduler last started a poll cycle's polls (the start time until the first one), in Unix seconds: the scheduler's heartbeat.",
        )
        .expect("valid metric");
        // A scheduler that never completes a cycle must look stalled too, so the heartbeat
        // starts at the start time rather than at zero (which alerts could not tell apart).
        cycle_last_run.set(unix(Utc::now()));
        let targets = IntGauge::new("idauth_targets", "Configured (country, id_type) pairs.").expect("valid metric");
        let reload_ok = Gauge::new(
            "idauth_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
        )
        .expect("valid metric");
        let reloads = IntCounterVec::new(
            Opts::new("idauth_config_reloads_total", "Configuration reload attempts, by result (success, failure)."),
            &["result"],
        )
        .expect("valid metric");
        for result in ["success", "failure"] {
            reloads.with_label_values(&[result]);
        }
        let reload_time = Gauge::new(
            "idauth_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload.",
        )
        .expect("valid metric");
        let build_info = GaugeVec::new(
            Opts::new(
                "idauth_exporter_build_info",
                "A metric with a constant '1' value labeled by version and revision of idauth-exporter.",
            ),
            &["version", "revision"],
        )
        .expect("valid metric");
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION"), revision]).set(1.0);

        let connections = ConnectionMetrics::default();
        let tls_expiry = GaugeVec::new(
            Opts::new(
                "idauth_web_tls_certificate_expiry_timestamp_seconds",
                "When the certificate the web server serves (--web.config.file) expires (its notAfter), in Unix seconds.",
            ),
            &["cert_file"],
        )
        .expect("valid metric");

        let registry = Registry::new();
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(poll_duration.clone()),
            Box::new(cycle_last_run.clone()),
            Box::new(targets.clone()),
            Box::new(reload_ok.clone()),
            Box::new(reload_time.clone()),
            Box::new(reloads.clone()),
            Box::new(build_info),
            Box::new(connections.refused.clone()),
            Box::new(connections.open.clone()),
            Box::new(tls_expiry.clone()),
        ];
        for c in collectors {
            registry.register(c).expect("metric names are unique");
        }
        let history = HistoryMetrics::default();
        history.register(&registry);
        // process_* as Go exporters serve them: CPU, memory, file descriptors, start time.
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("metric names are unique");
        Metrics {
            registry,
            pairs: RwLock::new(Arc::default()),
            poll_duration,
            cycle_last_run,
            targets,
            reload_ok,
            reload_time,
            reloads,
            connections,
            tls_expiry,
            history,
            spare_rows: Arc::default(),
        }
    }

    /// Shows the served certificate's expiry, or none without TLS.
    pub fn set_tls_certificate_expiry(&self, certificate: Option<(String, std::time::SystemTime)>) {
        self.tls_expiry.reset();
        if let Some((file, at)) = certificate {
            self.tls_expiry.with_label_values(&[file.as_str()]).set(unix(DateTime::<Utc>::from(at)));
        }
    }

    /// The history store's metrics, registered here.
    pub fn history(&self) -> HistoryMetrics {
        self.history.clone()
    }

    /// The HTTP server's connection metrics, registered here.
    pub fn connections(&self) -> ConnectionMetrics {
        self.connections.clone()
    }

    /// Serves the pairs of `new`, in that order: their counters start at zero (so `rate()`
    /// and alerts see them from the first scrape), those of pairs no longer watched go, and
    /// counts of pairs in both are kept across a reload. Only these pairs are served.
    pub fn set_targets(&self, _old: &[Target], new: &[Target]) {
        let mut table = self.pairs.write().unwrap_or_else(|p| p.into_inner());
        let mut kept: HashMap<&Target, &Arc<PairEntry>> = table.list.iter().map(|e| (&e.target, e)).collect();
        let list: Vec<Arc<PairEntry>> = new
            .iter()
            .map(|t| kept.remove(t).cloned().unwrap_or_else(|| Arc::new(PairEntry::new(t.clone()))))
            .collect();
        let index = list.iter().enumerate().map(|(i, e)| (e.target.clone(), i)).collect();
        *table = Arc::new(Entries { index, list });
        self.targets.set(new.len() as i64);
    }

    /// Counts one finished poll; a pair no longer served is not counted.
    pub fn record_poll(&self, target: &Target, result: Result<&Observation, &PollError>, took: Duration) {
        self.poll_duration.observe(took.as_secs_f64());
        let table = self.pairs.read().unwrap_or_else(|p| p.into_inner());
        let Some(e) = table.position(target).map(|i| &table.list[i]) else { return };
        e.polls.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(o) if o.unrecognized_status.is_some() => {
                e.unrecognized.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(err) => {
                let i = FailureReason::ALL.iter().position(|r| *r == err.reason()).unwrap_or(0);
                e.failures[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Marks a finished poll cycle.
    pub fn record_cycle(&self, finished: DateTime<Utc>) {
        self.cycle_last_run.set(unix(finished));
    }

    /// Records the configuration loaded at start-up.
    pub fn record_load(&self, at: DateTime<Utc>) {
        self.reload_ok.set(1.0);
        self.reload_time.set(unix(at));
    }

    /// Records a configuration reload attempt.
    pub fn record_reload(&self, ok: bool, at: DateTime<Utc>) {
        self.reload_ok.set(if ok { 1.0 } else { 0.0 });
        self.reloads.with_label_values(&[if ok { "success" } else { "failure" }]).inc();
        if ok {
            self.reload_time.set(unix(at));
        }
    }

    /// Encodes every metric, the per-pair state as of `now` read from `store`, in one string.
    pub fn render(&self, store: &Store, now: DateTime<Utc>, max_age: Duration) -> String {
        let mut exposition = self.exposition(store, now, max_age);
        let mut out = String::new();
        while exposition.write_next(&mut out) {}
        out
    }

    /// The exposition as of `now`, to be written a piece at a time: what changes under a
    /// scrape (the per-pair state, the shown-since bookkeeping) is read now, and the text
    /// is written as the client takes it, so a scrape never holds the whole text.
    pub fn exposition(&self, store: &Store, now: DateTime<Utc>, max_age: Duration) -> Exposition {
        let entries = self.pairs.read().unwrap_or_else(|p| p.into_inner()).clone();
        let rows = {
            // Serialises the shown-since bookkeeping of concurrent scrapes.
            let mut spare = self.spare_rows.lock().unwrap_or_else(|p| p.into_inner());
            let mut rows = std::mem::take(&mut *spare);
            rows.clear();
            store.for_each(|t, s| {
                if let Some(entry) = entries.position(t) {
                    rows.push(row(entry, &entries.list[entry], s, now, max_age));
                }
            });
            rows
        };
        let mut parts = Vec::with_capacity(PAIR_FAMILIES.len() * 2 + 1);
        let families = self.registry.gather();
        let mut registry = families.iter().peekable();
        for (i, family) in PAIR_FAMILIES.iter().enumerate() {
            let mut text = String::new();
            while let Some(mf) = registry.next_if(|mf| mf.name() < family.name) {
                encode_registered(mf, &mut text);
            }
            if !text.is_empty() {
                parts.push(Part::Text(text));
            }
            parts.push(Part::Pairs(i));
        }
        let mut text = String::new();
        for mf in registry {
            encode_registered(mf, &mut text);
        }
        parts.push(Part::Text(text));
        Exposition { parts, next: 0, at: 0, rows, entries, spare: self.spare_rows.clone() }
    }
}

/// About how much text [`Exposition::write_next`] writes at a time: 40 pairs fit in one
/// piece; 10,000 pairs (14 MB) go out in about a hundred.
pub const CHUNK: usize = 128 * 1024;

/// One scrape's text, written a piece at a time by [`Exposition::write_next`]. It owns
/// what the scrape read (the per-pair rows and the served pairs), so it holds no lock
/// while a slow client reads.
pub struct Exposition {
    parts: Vec<Part>,
    /// The part being written, and the item of it for a per-pair family.
    next: usize,
    at: usize,
    rows: Vec<Row>,
    entries: Arc<Entries>,
    spare: Arc<Mutex<Vec<Row>>>,
}

impl std::fmt::Debug for Exposition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exposition").field("pairs", &self.rows.len()).field("next", &self.next).finish()
    }
}

/// A piece of an exposition: registry families already encoded, or a per-pair family.
enum Part {
    Text(String),
    Pairs(usize),
}

impl Exposition {
    /// Appends the next piece (about [`CHUNK`] bytes, more for a long registry family) to
    /// `out`; returns whether more is left to write.
    pub fn write_next(&mut self, out: &mut String) -> bool {
        let limit = out.len() + CHUNK;
        while let Some(part) = self.parts.get_mut(self.next) {
            if out.len() >= limit {
                return true;
            }
            let done = match part {
                Part::Text(text) => {
                    out.push_str(&std::mem::take(text));
                    true
                }
                Part::Pairs(family) => {
                    let family = &PAIR_FAMILIES[*family];
                    write_pair_family(out, family, &self.rows, &self.entries.list, &mut self.at, limit)
                }
            };
            if done {
                self.next += 1;
                self.at = 0;
            }
        }
        false
    }
}

impl Drop for Exposition {
    /// Gives the rows' memory back for the next scrape.
    fn drop(&mut self) {
        let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        if spare.capacity() < self.rows.capacity() {
            *spare = std::mem::take(&mut self.rows);
        }
    }
}

fn encode_registered(mf: &prometheus::proto::MetricFamily, out: &mut String) {
    if let Err(e) = TextEncoder::new().encode_utf8(std::slice::from_ref(mf), out) {
        tracing::error!(error = %e, family = mf.name(), "cannot encode metrics");
    }
}

/// Computes what a scrape shows of one pair, and updates when its shown state changed.
fn row(entry: usize, e: &PairEntry, s: &TargetStatus, now: DateTime<Utc>, max_age: Duration) -> Row {
    let state = s.current_state(now, max_age);
    let code = AuthorityState::ALL.iter().position(|a| *a == state).unwrap_or(0) as u8;
    let since_ms = if e.shown.swap(code, Ordering::Relaxed) == code {
        e.shown_since_ms.load(Ordering::Relaxed)
    } else {
        let ms = now.timestamp_millis();
        e.shown_since_ms.store(ms, Ordering::Relaxed);
        ms
    };
    let fresh = s.is_fresh(now, max_age);
    let o = s.observation.as_ref();
    Row {
        entry,
        state,
        since: since_ms as f64 / 1000.0,
        rate_10m: o.filter(|_| fresh).and_then(|o| o.rate_10m).map(crate::model::Rate::as_f64),
        rate_1h: o.filter(|_| fresh).and_then(|o| o.rate_1h).map(crate::model::Rate::as_f64),
        last_checked: o.and_then(|o| o.last_checked).map(unix),
        poll_success: s.last_poll.as_ref().map(|p| p.success),
        last_success: s.last_success.map(unix),
    }
}

/// Writes one per-pair family from item `*at` (a row, or a pair for counters) on, until
/// `out` reaches `limit`; returns whether the family is done, else leaves `*at` at the
/// next item. A family with no sample writes nothing at all, as the registry does.
fn write_pair_family(
    out: &mut String,
    family: &Family,
    rows: &[Row],
    entries: &[Arc<PairEntry>],
    at: &mut usize,
    limit: usize,
) -> bool {
    let Family { name, help, series } = *family;
    let kind =
        if matches!(series, Series::Polls | Series::Failures | Series::Unrecognized) { "counter" } else { "gauge" };
    let value: fn(&Row) -> Option<f64> = match series {
        Series::Rate10m => |r| r.rate_10m,
        Series::Rate1h => |r| r.rate_1h,
        Series::LastChecked => |r| r.last_checked,
        Series::PollSuccess => |r| r.poll_success.map(|ok| if ok { 1.0 } else { 0.0 }),
        Series::LastPollSuccess => |r| r.last_success,
        Series::StateSince => |r| Some(r.since),
        // Every row shows a state; counters cover every served pair, polled or not.
        Series::State | Series::Polls | Series::Failures | Series::Unrecognized => |_| Some(0.0),
    };
    let per_pair = matches!(series, Series::Polls | Series::Failures | Series::Unrecognized);
    let items = if per_pair { entries.len() } else { rows.len() };
    if *at == 0 {
        let any = if per_pair { !entries.is_empty() } else { rows.iter().any(|r| value(r).is_some()) };
        if !any {
            return true;
        }
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    }
    while *at < items {
        let i = *at;
        *at += 1;
        match series {
            Series::State => {
                let r = &rows[i];
                for st in AuthorityState::ALL {
                    let v = if st == r.state { 1.0 } else { 0.0 };
                    sample(out, name, &entries[r.entry].target, Some(("state", st.as_str())), v);
                }
            }
            Series::Failures => {
                let e = &entries[i];
                for (r, n) in FailureReason::ALL.iter().zip(&e.failures) {
                    sample(out, name, &e.target, Some(("reason", r.as_str())), n.load(Ordering::Relaxed) as f64);
                }
            }
            Series::Polls | Series::Unrecognized => {
                let e = &entries[i];
                let n = if series == Series::Polls { &e.polls } else { &e.unrecognized };
                sample(out, name, &e.target, None, n.load(Ordering::Relaxed) as f64);
            }
            _ => {
                let r = &rows[i];
                if let Some(v) = value(r) {
                    sample(out, name, &entries[r.entry].target, None, v);
                }
            }
        }
        if out.len() >= limit && *at < items {
            return false;
        }
    }
    true
}

/// One sample line: `name{country="..",id_type=".."[,extra=".."]} value`, the value
/// written as the prometheus crate writes it (Rust's shortest round-trip form).
fn sample(out: &mut String, name: &str, t: &Target, extra: Option<(&str, &str)>, value: f64) {
    out.push_str(name);
    out.push_str("{country=\"");
    escape_label(out, t.country.as_str());
    out.push_str("\",id_type=\"");
    escape_label(out, t.id_type.as_str());
    if let Some((label, v)) = extra {
        out.push_str("\",");
        out.push_str(label);
        out.push_str("=\"");
        escape_label(out, v);
    }
    let _ = writeln!(out, "\"}} {value}");
}

/// Label values as the text format wants them; parsed codes never need it, but the
/// writer must not depend on that.
fn escape_label(out: &mut String, v: &str) {
    if !v.contains(['\\', '"', '\n']) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The HTTP server's connections: those refused or dropped to stay under the cap, and
/// those open. Clones share the same series; a default one is registered nowhere.
#[derive(Clone, Debug)]
pub struct ConnectionMetrics {
    refused: IntCounterVec,
    open: IntGauge,
}

impl ConnectionMetrics {
    /// The `reason` label values: `limit` (a new connection closed at once: every slot has a
    /// request in flight), `evicted` (an idle connection closed to make room for a new one),
    /// `accept_error` (accepting failed, for example out of file descriptors).
    pub const REASONS: [&'static str; 3] = ["limit", "evicted", "accept_error"];

    /// Counts one connection refused or dropped for `reason`, one of [`Self::REASONS`].
    pub fn refused(&self, reason: &str) {
        self.refused.with_label_values(&[reason]).inc();
    }

    /// How many connections were refused or dropped for `reason`.
    pub fn refused_total(&self, reason: &str) -> u64 {
        self.refused.with_label_values(&[reason]).get()
    }

    /// Sets the number of open connections.
    pub fn set_open(&self, n: usize) {
        self.open.set(n as i64);
    }

    /// The number of open connections.
    pub fn open(&self) -> i64 {
        self.open.get()
    }
}

impl Default for ConnectionMetrics {
    fn default() -> Self {
        let refused = IntCounterVec::new(
            Opts::new(
                "idauth_http_connections_refused_total",
                "HTTP connections closed by the exporter to stay under --web.max-connections, by reason: \
                 limit (new connection refused, every slot busy), evicted (idle connection closed to make room), \
                 accept_error (accepting failed, e.g. out of file descriptors).",
            ),
            &["reason"],
        )
        .expect("valid metric");
        for reason in Self::REASONS {
            refused.with_label_values(&[reason]);
        }
        let open = IntGauge::new("idauth_http_connections_open", "HTTP connections open now.").expect("valid metric");
        ConnectionMetrics { refused, open }
    }
}

/// The history store's health (`--storage.path`): errors by operation, and whether poll
/// results reach the disk (0: kept in memory only). Clones share the same series.
#[derive(Clone, Debug)]
pub struct HistoryMetrics {
    errors: IntCounterVec,
    persisting: IntGauge,
}

impl HistoryMetrics {
    /// The `operation` label values.
    pub const OPERATIONS: [&'static str; 4] = ["open", "read", "write", "retention"];

    /// Counts one failed `operation`, one of [`Self::OPERATIONS`].
    pub fn error(&self, operation: &str) {
        self.errors.with_label_values(&[operation]).inc();
    }

    /// How many `operation`s failed.
    pub fn errors_total(&self, operation: &str) -> u64 {
        self.errors.with_label_values(&[operation]).get()
    }

    /// Sets whether results reach the disk.
    pub fn set_persisting(&self, yes: bool) {
        self.persisting.set(i64::from(yes));
    }

    /// Whether results reach the disk.
    pub fn persisting(&self) -> bool {
        self.persisting.get() == 1
    }

    fn register(&self, registry: &Registry) {
        for c in
            [Box::new(self.errors.clone()) as Box<dyn prometheus::core::Collector>, Box::new(self.persisting.clone())]
        {
            registry.register(c).expect("metric names are unique");
        }
    }
}

impl Default for HistoryMetrics {
    fn default() -> Self {
        let errors = IntCounterVec::new(
            Opts::new(
                "idauth_history_storage_errors_total",
                "Failures of the history store (--storage.path), by operation: open, read, write, retention. \
                 History is then kept in memory only until the store works again.",
            ),
            &["operation"],
        )
        .expect("valid metric");
        for op in Self::OPERATIONS {
            errors.with_label_values(&[op]);
        }
        let persisting = IntGauge::new(
            "idauth_history_storage_persisting",
            "Whether poll results are being written to the history store (1) or kept in memory only (0).",
        )
        .expect("valid metric");
        HistoryMetrics { errors, persisting }
    }
}

fn unix(at: DateTime<Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

/// Discovery's metrics: how many pairs the catalogue gave and whether reading it works.
/// Clones share the same series; they are served once [`Metrics::register_discovery`] ran.
#[derive(Clone, Debug)]
pub struct DiscoveryMetrics {
    targets: IntGauge,
    last_success: Gauge,
    refreshes: IntCounterVec,
}

impl Default for DiscoveryMetrics {
    fn default() -> Self {
        let targets = IntGauge::new(
            "idauth_discovery_targets",
            "(country, id_type) pairs watched because the provider's catalogue lists them (after discovery.countries and exclude).",
        )
        .expect("valid metric");
        let last_success = Gauge::new(
            "idauth_discovery_last_success_timestamp_seconds",
            "When the provider's catalogue was last read successfully, in Unix seconds (the start time until the first success).",
        )
        .expect("valid metric");
        // Like the heartbeat: a discovery that never succeeds must age from the start, not from 1970.
        last_success.set(unix(Utc::now()));
        let refreshes = IntCounterVec::new(
            Opts::new(
                "idauth_discovery_refreshes_total",
                "Reads of the provider's catalogue, by result (success, failure).",
            ),
            &["result"],
        )
        .expect("valid metric");
        for result in ["success", "failure"] {
            refreshes.with_label_values(&[result]);
        }
        DiscoveryMetrics { targets, last_success, refreshes }
    }
}

impl DiscoveryMetrics {
    /// Counts one read of the catalogue.
    pub fn record_refresh(&self, ok: bool, at: DateTime<Utc>) {
        self.refreshes.with_label_values(&[if ok { "success" } else { "failure" }]).inc();
        if ok {
            self.last_success.set(unix(at));
        }
    }

    /// Sets the number of pairs watched through discovery.
    pub fn set_targets(&self, n: usize) {
        self.targets.set(n as i64);
    }

    /// Reads of the catalogue that ended with `result` (`success` or `failure`).
    pub fn refreshes(&self, result: &str) -> u64 {
        self.refreshes.with_label_values(&[result]).get()
    }
}

impl Metrics {
    /// Serves `discovery`'s series from now on; registering the same series again changes nothing.
    pub fn register_discovery(&self, discovery: &DiscoveryMetrics) {
        let collectors: [Box<dyn prometheus::core::Collector>; 3] = [
            Box::new(discovery.targets.clone()),
            Box::new(discovery.last_success.clone()),
            Box::new(discovery.refreshes.clone()),
        ];
        for c in collectors {
            // AlreadyReg: a reload that enables discovery again.
            let _ = self.registry.register(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(c: &str, t: &str) -> Target {
        Target::new(c.parse().unwrap(), t.parse().unwrap())
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// The lines of the per-pair families, HELP and TYPE included.
    fn pair_lines(text: &str) -> String {
        let names: Vec<&str> = PAIR_FAMILIES.iter().map(|f| f.name).collect();
        text.lines()
            .filter(|l| {
                let l = l.strip_prefix("# HELP ").or_else(|| l.strip_prefix("# TYPE ")).unwrap_or(l);
                names.contains(&l.split(['{', ' ']).next().unwrap())
            })
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// A known store gives exactly this text: every family, label and value format, the
    /// stale pair without rates, the never-polled pair with its counters at zero.
    #[test]
    fn a_known_store_encodes_to_the_expected_text() {
        let (ng, ke, gh) = (target("NG", "BVN"), target("KE", "NATIONAL_ID"), target("GH", "GHANA_CARD"));
        let pairs = [ng.clone(), ke.clone(), gh.clone()];
        let store = Store::new(&pairs);
        let metrics = Metrics::new("test");
        metrics.set_targets(&[], &pairs);
        let t0 = at("2026-01-01T00:00:00Z");
        let seen = Observation {
            state: AuthorityState::Online,
            unrecognized_status: None,
            rate_10m: crate::model::Rate::from_f64(0.99),
            rate_1h: crate::model::Rate::from_f64(0.875),
            last_checked: Some(at("2025-12-31T23:59:30.5Z")),
        };
        store.record_success(&ng, seen.clone(), t0);
        metrics.record_poll(&ng, Ok(&seen), Duration::from_millis(120));
        // KE: good data two hours old, then a timeout: shown unknown, without rates.
        let old = t0 - chrono::TimeDelta::hours(2);
        store.record_success(&ke, Observation { state: AuthorityState::Offline, ..seen.clone() }, old);
        let timeout = PollError::Timeout(Duration::from_secs(10));
        store.record_failure(&ke, &timeout, t0);
        metrics.record_poll(&ke, Err(&timeout), Duration::from_secs(10));
        metrics.record_poll(&ke, Err(&timeout), Duration::from_secs(10));
        let odd = Observation { state: AuthorityState::Unknown, unrecognized_status: Some("maybe".into()), ..seen };
        metrics.record_poll(&ke, Ok(&odd), Duration::from_secs(1));

        let text = metrics.render(&store, t0, Duration::from_secs(1800));
        let reasons = |c: &str, t: &str, timeouts: u32| -> String {
            FailureReason::ALL
                .iter()
                .map(|r| {
                    let n = if *r == FailureReason::Timeout { timeouts } else { 0 };
                    format!(
                        "idauth_poll_failures_total{{country=\"{c}\",id_type=\"{t}\",reason=\"{}\"}} {n}\n",
                        r.as_str()
                    )
                })
                .collect()
        };
        let state = |c: &str, t: &str, on: &str| -> String {
            ["online", "interruption", "offline", "unknown"]
                .iter()
                .map(|s| {
                    format!("idauth_state{{country=\"{c}\",id_type=\"{t}\",state=\"{s}\"}} {}\n", u8::from(*s == on))
                })
                .collect()
        };
        let expected = format!(
            "\
# HELP idauth_last_checked_timestamp_seconds When the provider last checked the ID authority (its last_checked), in Unix seconds. Cached from the background poll of Smile ID's id_status endpoint.
# TYPE idauth_last_checked_timestamp_seconds gauge
idauth_last_checked_timestamp_seconds{{country=\"NG\",id_type=\"BVN\"}} 1767225570.5
idauth_last_checked_timestamp_seconds{{country=\"KE\",id_type=\"NATIONAL_ID\"}} 1767225570.5
# HELP idauth_last_poll_success_timestamp_seconds When a poll of this pair last succeeded, in Unix seconds.
# TYPE idauth_last_poll_success_timestamp_seconds gauge
idauth_last_poll_success_timestamp_seconds{{country=\"NG\",id_type=\"BVN\"}} 1767225600
idauth_last_poll_success_timestamp_seconds{{country=\"KE\",id_type=\"NATIONAL_ID\"}} 1767218400
# HELP idauth_poll_failures_total Failed polls of the provider for this pair, by reason.
# TYPE idauth_poll_failures_total counter
{}{}{}\
# HELP idauth_poll_success Whether the exporter's last poll of this pair succeeded (1) or failed (0).
# TYPE idauth_poll_success gauge
idauth_poll_success{{country=\"NG\",id_type=\"BVN\"}} 1
idauth_poll_success{{country=\"KE\",id_type=\"NATIONAL_ID\"}} 0
# HELP idauth_polls_total Polls of the provider made for this pair.
# TYPE idauth_polls_total counter
idauth_polls_total{{country=\"NG\",id_type=\"BVN\"}} 1
idauth_polls_total{{country=\"KE\",id_type=\"NATIONAL_ID\"}} 3
idauth_polls_total{{country=\"GH\",id_type=\"GHANA_CARD\"}} 0
# HELP idauth_state State of the ID authority (online, interruption, offline, unknown); exactly one state is 1 per pair. Unknown when no fresh data. Cached from the background poll of Smile ID's id_status endpoint.
# TYPE idauth_state gauge
{}{}{}\
# HELP idauth_state_since_timestamp_seconds When the pair's shown state (idauth_state) last changed, as seen at scrape time, in Unix seconds.
# TYPE idauth_state_since_timestamp_seconds gauge
idauth_state_since_timestamp_seconds{{country=\"NG\",id_type=\"BVN\"}} 1767225600
idauth_state_since_timestamp_seconds{{country=\"KE\",id_type=\"NATIONAL_ID\"}} 1767225600
idauth_state_since_timestamp_seconds{{country=\"GH\",id_type=\"GHANA_CARD\"}} 1767225600
# HELP idauth_success_rate_10m Share (0-1) of checks of the ID authority that succeeded in the provider's last 10-minute window. Cached from the background poll of Smile ID's id_status endpoint.
# TYPE idauth_success_rate_10m gauge
idauth_success_rate_10m{{country=\"NG\",id_type=\"BVN\"}} 0.99
# HELP idauth_success_rate_1h Share (0-1) of checks of the ID authority that succeeded in the provider's last hour. Cached from the background poll of Smile ID's id_status endpoint.
# TYPE idauth_success_rate_1h gauge
idauth_success_rate_1h{{country=\"NG\",id_type=\"BVN\"}} 0.875
# HELP idauth_unrecognized_status_total Polls whose last_known_status the exporter did not recognise (shown as state unknown).
# TYPE idauth_unrecognized_status_total counter
idauth_unrecognized_status_total{{country=\"NG\",id_type=\"BVN\"}} 0
idauth_unrecognized_status_total{{country=\"KE\",id_type=\"NATIONAL_ID\"}} 1
idauth_unrecognized_status_total{{country=\"GH\",id_type=\"GHANA_CARD\"}} 0
",
            reasons("NG", "BVN", 0),
            reasons("KE", "NATIONAL_ID", 2),
            reasons("GH", "GHANA_CARD", 0),
            state("NG", "BVN", "online"),
            state("KE", "NATIONAL_ID", "unknown"),
            state("GH", "GHANA_CARD", "unknown"),
        );
        assert_eq!(pair_lines(&text), expected);

        // The state-since time holds while the state does, and moves when it changes.
        let later = t0 + chrono::TimeDelta::minutes(1);
        let text = metrics.render(&store, later, Duration::from_secs(1800));
        assert!(text.contains("idauth_state_since_timestamp_seconds{country=\"NG\",id_type=\"BVN\"} 1767225600\n"));
        let stale = t0 + chrono::TimeDelta::hours(1);
        let text = metrics.render(&store, stale, Duration::from_secs(1800));
        assert!(text.contains("idauth_state_since_timestamp_seconds{country=\"NG\",id_type=\"BVN\"} 1767229200\n"));
        assert!(text.contains("idauth_state{country=\"NG\",id_type=\"BVN\",state=\"unknown\"} 1\n"));
    }

    /// Each family appears once, families in name order (the registry's and the per-pair
    /// ones merged), and the process metrics are served.
    #[test]
    fn families_are_whole_sorted_and_include_the_process() {
        let pairs = [target("NG", "BVN"), target("ZA", "NATIONAL_ID")];
        let metrics = Metrics::new("test");
        metrics.set_targets(&[], &pairs);
        let text = metrics.render(&Store::new(&pairs), Utc::now(), Duration::from_secs(60));
        let names: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        #[cfg(target_os = "linux")]
        for name in [
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_max_fds",
            "process_virtual_memory_bytes",
            "process_resident_memory_bytes",
            "process_start_time_seconds",
        ] {
            let value = text
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("{name} missing:\n{text}"));
            let value: f64 = value.parse().unwrap();
            assert!(value >= 0.0 && (name == "process_cpu_seconds_total" || value > 0.0), "{name} {value}");
        }
    }

    /// A reload keeps the counts of the pairs that stay, starts the new ones at zero and
    /// drops the ones that went; a poll of a dropped pair that ends later is not counted.
    #[test]
    fn reload_keeps_counts_of_pairs_that_stay() {
        let (a, b, c) = (target("NG", "BVN"), target("KE", "KRA_PIN"), target("GH", "VOTER_ID"));
        let metrics = Metrics::new("test");
        metrics.set_targets(&[], &[a.clone(), b.clone()]);
        let e = PollError::Http { status: 503, message: String::new() };
        metrics.record_poll(&a, Err(&e), Duration::ZERO);
        metrics.record_poll(&b, Err(&e), Duration::ZERO);
        metrics.set_targets(&[a.clone(), b.clone()], &[c.clone(), a.clone()]);
        metrics.record_poll(&b, Err(&e), Duration::ZERO);
        let text = metrics.render(&Store::new(&[c, a]), Utc::now(), Duration::from_secs(60));
        assert!(text.contains("idauth_poll_failures_total{country=\"NG\",id_type=\"BVN\",reason=\"http_5xx\"} 1\n"));
        assert!(text.contains("idauth_polls_total{country=\"GH\",id_type=\"VOTER_ID\"} 0\n"));
        assert!(!text.contains("KRA_PIN"), "{text}");
        assert!(text.contains("idauth_targets 2\n"));
    }

    /// Many pairs: the text goes out in pieces of about [`CHUNK`] bytes, which join into
    /// the text of one piece; a reload during a scrape changes nothing of that scrape.
    #[test]
    fn a_long_exposition_goes_in_pieces_that_join_into_the_whole() {
        let pairs: Vec<Target> = (0..3000).map(|i| target("NG", &format!("B{i:05}"))).collect();
        let metrics = Metrics::new("test");
        metrics.set_targets(&[], &pairs);
        let store = Store::new(&pairs);
        let now = at("2026-01-01T00:00:00Z");
        let e = PollError::Http { status: 503, message: String::new() };
        metrics.record_poll(&pairs[2999], Err(&e), Duration::ZERO);
        let whole = metrics.render(&store, now, Duration::from_secs(60));

        let mut exposition = metrics.exposition(&store, now, Duration::from_secs(60));
        let mut pieces = Vec::new();
        let mut more = true;
        while more {
            let mut piece = String::new();
            more = exposition.write_next(&mut piece);
            if pieces.len() == 1 {
                // A reload to other pairs, and a poll, while the scrape is being written.
                metrics.set_targets(&pairs, &pairs[..1]);
                metrics.record_poll(&pairs[0], Err(&e), Duration::ZERO);
            }
            pieces.push(piece);
        }
        assert!(pieces.len() > 10, "{} pieces", pieces.len());
        for p in &pieces {
            // A piece stops at the first whole line past CHUNK.
            assert!(p.len() < CHUNK + 1024, "{}", p.len());
            assert!(p.is_empty() || p.ends_with('\n'));
        }
        let joined = pieces.concat();
        let pair_only = |t: &str| t.lines().filter(|l| l.contains("id_type=\"")).collect::<Vec<_>>().join("\n");
        let (a, b) = (pair_only(&joined), pair_only(&whole));
        // The poll made during the scrape may or may not be in it (its pair's counter may
        // already have been written); nothing else differs.
        let differs: Vec<(&str, &str)> = a.lines().zip(b.lines()).filter(|(x, y)| x != y).collect();
        assert_eq!(a.lines().count(), b.lines().count());
        assert!(differs.iter().all(|(x, _)| x.starts_with("idauth_poll") && x.contains("\"B00000\"")), "{differs:?}");
        assert!(joined.contains("idauth_polls_total{country=\"NG\",id_type=\"B02999\"} 1\n"));
        assert_eq!(pair_lines(&joined).matches("# TYPE ").count(), pair_lines(&whole).matches("# TYPE ").count());
        // The next scrape serves the reloaded pairs only.
        let after = metrics.render(&store, now, Duration::from_secs(60));
        assert!(after.contains("B00000") && !after.contains("B00001"));
    }
}
