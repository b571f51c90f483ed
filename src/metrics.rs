//! The metric contract: process-wide metrics in a registry, and the per-pair series
//! written at scrape time from one pass over the [`Store`].
//!
//! Everything that describes a pair (its state, "since", rates, poll counters) is the
//! store's: this module keeps no per-pair record of its own. It renders what
//! [`Store::for_each_now`] gives at the moment of the scrape, so staleness is judged then,
//! not at the last poll. The per-pair families (about 20 series a pair) are encoded
//! directly, with no per-series metric objects: a scrape costs the text it writes. Metrics
//! that are not per pair (the process, the heartbeat, reloads, and the collectors other
//! modules own: connections, history, discovery) go in the plain registry.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus::core::Collector;
use prometheus::{Gauge, GaugeVec, Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

use crate::model::{AuthorityState, FailureReason, Target};
use crate::store::{PairNow, Store};

/// The Content-Type of the classic text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric the exporter serves.
pub struct Metrics {
    registry: Registry,
    poll_duration: Histogram,
    cycle_last_run: Gauge,
    targets: IntGauge,
    reload_ok: Gauge,
    reload_time: Gauge,
    reloads: IntCounterVec,
    tls_expiry: GaugeVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// What a scrape shows of one pair, taken from the store, before writing it family by family.
struct Row {
    target: Target,
    state: AuthorityState,
    since: Option<f64>,
    rate_10m: Option<f64>,
    rate_1h: Option<f64>,
    last_checked: Option<f64>,
    poll_success: Option<bool>,
    last_success: Option<f64>,
    polls: u64,
    unrecognized: u64,
    failures: [u64; FailureReason::ALL.len()],
}

impl Row {
    fn new(p: PairNow) -> Row {
        let fresh = p.fresh_observation();
        Row {
            state: p.state,
            since: p.since.map(unix),
            rate_10m: fresh.and_then(|o| o.rate_10m).map(crate::model::Rate::as_f64),
            rate_1h: fresh.and_then(|o| o.rate_1h).map(crate::model::Rate::as_f64),
            last_checked: p.observation.as_ref().and_then(|o| o.last_checked).map(unix),
            poll_success: p.last_poll.as_ref().map(|r| r.success),
            last_success: p.last_success.map(unix),
            polls: p.counts.polls,
            unrecognized: p.counts.unrecognized,
            failures: p.counts.failures,
            target: p.target,
        }
    }
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
        help: cached!(
            "When the provider last checked the ID authority (its last_checked, never later than the poll that brought it), in Unix seconds."
        ),
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
        help: "When the pair's current state (idauth_state) began: the provider's last_checked of the first check of this run of the state (the poll time where the provider gave none), the same on every replica that saw the run begin and across restarts; for unknown, when the data went stale. In Unix seconds.",
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
    /// A registry with every metric registered; `revision` labels the build info, and the
    /// heartbeat starts at `started`.
    pub fn new(revision: &str, started: DateTime<Utc>) -> Metrics {
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
        cycle_last_run.set(unix(started));
        let targets = IntGauge::new("idauth_targets", "Watched (country, id_type) pairs: configured and discovered.")
            .expect("valid metric");
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
                "A metric with a constant '1' value labeled by version, revision, branch and Rust version of idauth-exporter.",
            ),
            &["version", "revision", "branch", "rustversion"],
        )
        .expect("valid metric");
        build_info
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                revision,
                env!("IDAUTH_BRANCH"),
                env!("IDAUTH_RUST_VERSION"),
            ])
            .set(1.0);

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
            Box::new(tls_expiry.clone()),
        ];
        for c in collectors {
            registry.register(c).expect("metric names are unique");
        }
        // process_* as Go exporters serve them: CPU, memory, file descriptors, start time.
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("metric names are unique");
        Metrics { registry, poll_duration, cycle_last_run, targets, reload_ok, reload_time, reloads, tls_expiry }
    }

    /// Shows the served certificate's expiry, or none without TLS.
    pub fn set_tls_certificate_expiry(&self, certificate: Option<(String, std::time::SystemTime)>) {
        self.tls_expiry.reset();
        if let Some((file, at)) = certificate {
            self.tls_expiry.with_label_values(&[file.as_str()]).set(unix(DateTime::<Utc>::from(at)));
        }
    }

    /// Serves `collectors` (the series other modules own: the store's, history's,
    /// connections', discovery's) from now on; one already served is left as it is, so a
    /// reload that enables discovery again changes nothing.
    pub fn register(&self, collectors: Vec<Box<dyn Collector>>) {
        for c in collectors {
            if let Err(e) = self.registry.register(c)
                && !matches!(e, prometheus::Error::AlreadyReg)
            {
                tracing::error!(error = %e, "cannot register a metric");
            }
        }
    }

    /// Times one finished poll (its outcome is counted by the store).
    pub fn record_poll_duration(&self, took: Duration) {
        self.poll_duration.observe(took.as_secs_f64());
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
    pub fn render(&self, store: &Store, now: DateTime<Utc>) -> String {
        let mut exposition = self.exposition(store, now);
        let mut out = String::new();
        while exposition.write_next(&mut out) {}
        out
    }

    /// The exposition as of `now`, to be written a piece at a time: the per-pair state is
    /// read from the store now, and the text is written as the client takes it, so a
    /// scrape never holds the whole text, nor any lock while a slow client reads.
    pub fn exposition(&self, store: &Store, now: DateTime<Utc>) -> Exposition {
        let mut rows = Vec::new();
        store.for_each_now(now, |p| rows.push(Row::new(p)));
        self.targets.set(rows.len() as i64);
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
        Exposition { parts, next: 0, at: 0, rows }
    }
}

/// About how much text [`Exposition::write_next`] writes at a time: 40 pairs fit in one
/// piece; 10,000 pairs (14 MB) go out in about a hundred.
pub const CHUNK: usize = 128 * 1024;

/// One scrape's text, written a piece at a time by [`Exposition::write_next`]. It owns
/// what the scrape read (the per-pair rows), so it holds no lock while a slow client reads.
pub struct Exposition {
    parts: Vec<Part>,
    /// The part being written, and the item of it for a per-pair family.
    next: usize,
    at: usize,
    rows: Vec<Row>,
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
                    write_pair_family(out, family, &self.rows, &mut self.at, limit)
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

fn encode_registered(mf: &prometheus::proto::MetricFamily, out: &mut String) {
    if let Err(e) = TextEncoder::new().encode_utf8(std::slice::from_ref(mf), out) {
        tracing::error!(error = %e, family = mf.name(), "cannot encode metrics");
    }
}

/// Writes one per-pair family from row `*at` on, until `out` reaches `limit`; returns
/// whether the family is done, else leaves `*at` at the next row. A family with no sample
/// writes nothing at all, as the registry does.
fn write_pair_family(out: &mut String, family: &Family, rows: &[Row], at: &mut usize, limit: usize) -> bool {
    let Family { name, help, series } = *family;
    let kind =
        if matches!(series, Series::Polls | Series::Failures | Series::Unrecognized) { "counter" } else { "gauge" };
    let value: fn(&Row) -> Option<f64> = match series {
        Series::Rate10m => |r| r.rate_10m,
        Series::Rate1h => |r| r.rate_1h,
        Series::LastChecked => |r| r.last_checked,
        Series::PollSuccess => |r| r.poll_success.map(|ok| if ok { 1.0 } else { 0.0 }),
        Series::LastPollSuccess => |r| r.last_success,
        Series::StateSince => |r| r.since,
        Series::Polls => |r| Some(r.polls as f64),
        Series::Unrecognized => |r| Some(r.unrecognized as f64),
        // Every row shows a state, and every served pair its failure counters.
        Series::State | Series::Failures => |_| Some(0.0),
    };
    if *at == 0 {
        if !rows.iter().any(|r| value(r).is_some()) {
            return true;
        }
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    }
    while *at < rows.len() {
        let r = &rows[*at];
        *at += 1;
        match series {
            Series::State => {
                for st in AuthorityState::ALL {
                    sample(out, name, &r.target, Some(("state", st.as_str())), if st == r.state { 1.0 } else { 0.0 });
                }
            }
            Series::Failures => {
                for (reason, n) in FailureReason::ALL.iter().zip(&r.failures) {
                    sample(out, name, &r.target, Some(("reason", reason.as_str())), *n as f64);
                }
            }
            _ => {
                if let Some(v) = value(r) {
                    sample(out, name, &r.target, None, v);
                }
            }
        }
        if out.len() >= limit && *at < rows.len() {
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

fn unix(at: DateTime<Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Observation, PollError};

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
    /// stale pair without rates and with the time it went stale, the never-polled pair
    /// with its counters at zero and no since.
    #[test]
    fn a_known_store_encodes_to_the_expected_text() {
        let (ng, ke, gh) = (target("NG", "BVN"), target("KE", "NATIONAL_ID"), target("GH", "GHANA_CARD"));
        let pairs = [ng.clone(), ke.clone(), gh.clone()];
        let store = Store::new(&pairs);
        let t0 = at("2026-01-01T00:00:00Z");
        let metrics = Metrics::new("test", t0);
        let seen = Observation {
            state: AuthorityState::Online,
            unrecognized_status: None,
            rate_10m: crate::model::Rate::from_f64(0.99),
            rate_1h: crate::model::Rate::from_f64(0.875),
            last_checked: Some(at("2025-12-31T23:59:30.5Z")),
        };
        store.record_success(&ng, seen.clone(), t0);
        // KE: good data two hours old (the last of it unrecognised), then timeouts: shown
        // unknown, without rates, since the data went stale 30 minutes after it came.
        let old = t0 - chrono::TimeDelta::hours(2);
        let offline = Observation {
            state: AuthorityState::Offline,
            last_checked: Some(old - chrono::TimeDelta::seconds(30)),
            ..seen.clone()
        };
        store.record_success(&ke, offline, old);
        let odd = Observation {
            state: AuthorityState::Unknown,
            unrecognized_status: Some("maybe".into()),
            last_checked: Some(old + chrono::TimeDelta::seconds(570)),
            ..seen.clone()
        };
        store.record_success(&ke, odd, old + chrono::TimeDelta::minutes(10));
        let timeout = PollError::Timeout(Duration::from_secs(10));
        store.record_failure(&ke, &timeout, t0 - chrono::TimeDelta::minutes(10));
        store.record_failure(&ke, &timeout, t0);
        metrics.record_poll_duration(Duration::from_millis(120));

        let text = metrics.render(&store, t0);
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
# HELP idauth_last_checked_timestamp_seconds When the provider last checked the ID authority (its last_checked, never later than the poll that brought it), in Unix seconds. Cached from the background poll of Smile ID's id_status endpoint.
# TYPE idauth_last_checked_timestamp_seconds gauge
idauth_last_checked_timestamp_seconds{{country=\"NG\",id_type=\"BVN\"}} 1767225570.5
idauth_last_checked_timestamp_seconds{{country=\"KE\",id_type=\"NATIONAL_ID\"}} 1767218970
# HELP idauth_last_poll_success_timestamp_seconds When a poll of this pair last succeeded, in Unix seconds.
# TYPE idauth_last_poll_success_timestamp_seconds gauge
idauth_last_poll_success_timestamp_seconds{{country=\"NG\",id_type=\"BVN\"}} 1767225600
idauth_last_poll_success_timestamp_seconds{{country=\"KE\",id_type=\"NATIONAL_ID\"}} 1767219000
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
idauth_polls_total{{country=\"KE\",id_type=\"NATIONAL_ID\"}} 4
idauth_polls_total{{country=\"GH\",id_type=\"GHANA_CARD\"}} 0
# HELP idauth_state State of the ID authority (online, interruption, offline, unknown); exactly one state is 1 per pair. Unknown when no fresh data. Cached from the background poll of Smile ID's id_status endpoint.
# TYPE idauth_state gauge
{}{}{}\
# HELP idauth_state_since_timestamp_seconds When the pair's current state (idauth_state) began: the provider's last_checked of the first check of this run of the state (the poll time where the provider gave none), the same on every replica that saw the run begin and across restarts; for unknown, when the data went stale. In Unix seconds.
# TYPE idauth_state_since_timestamp_seconds gauge
idauth_state_since_timestamp_seconds{{country=\"NG\",id_type=\"BVN\"}} 1767225570.5
idauth_state_since_timestamp_seconds{{country=\"KE\",id_type=\"NATIONAL_ID\"}} 1767220800
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

        // The state-since time holds while the state does, and moves when it changes: once
        // stale, to when the data went stale.
        let later = t0 + chrono::TimeDelta::minutes(1);
        let text = metrics.render(&store, later);
        assert!(text.contains("idauth_state_since_timestamp_seconds{country=\"NG\",id_type=\"BVN\"} 1767225570.5\n"));
        let stale = t0 + chrono::TimeDelta::hours(1);
        let text = metrics.render(&store, stale);
        assert!(text.contains("idauth_state_since_timestamp_seconds{country=\"NG\",id_type=\"BVN\"} 1767227400\n"));
        assert!(text.contains("idauth_state{country=\"NG\",id_type=\"BVN\",state=\"unknown\"} 1\n"));
    }

    /// Each family appears once, families in name order (the registry's and the per-pair
    /// ones merged), and the process metrics are served.
    #[test]
    fn families_are_whole_sorted_and_include_the_process() {
        let pairs = [target("NG", "BVN"), target("ZA", "NATIONAL_ID")];
        let metrics = Metrics::new("test", Utc::now());
        let text = metrics.render(&Store::new(&pairs), Utc::now());
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
        let metrics = Metrics::new("test", Utc::now());
        let store = Store::new(&[a.clone(), b.clone()]);
        let e = PollError::Http { status: 503, message: String::new() };
        store.record_failure(&a, &e, Utc::now());
        store.record_failure(&b, &e, Utc::now());
        store.set_targets(&[c.clone(), a.clone()]);
        store.record_failure(&b, &e, Utc::now());
        let text = metrics.render(&store, Utc::now());
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
        let now = at("2026-01-01T00:00:00Z");
        let metrics = Metrics::new("test", now);
        let store = Store::new(&pairs);
        let e = PollError::Http { status: 503, message: String::new() };
        store.record_failure(&pairs[2999], &e, now);
        let whole = metrics.render(&store, now);

        let mut exposition = metrics.exposition(&store, now);
        let mut pieces = Vec::new();
        let mut more = true;
        while more {
            let mut piece = String::new();
            more = exposition.write_next(&mut piece);
            if pieces.len() == 1 {
                // A reload to other pairs, and a poll, while the scrape is being written.
                store.set_targets(&pairs[..1]);
                store.record_failure(&pairs[0], &e, now);
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
        // The scrape wrote what the store held when it began: nothing of the reload or
        // the poll made meanwhile.
        assert_eq!(a, b);
        assert!(joined.contains("idauth_polls_total{country=\"NG\",id_type=\"B02999\"} 1\n"));
        assert_eq!(pair_lines(&joined).matches("# TYPE ").count(), pair_lines(&whole).matches("# TYPE ").count());
        // The next scrape serves the reloaded pairs only.
        let after = metrics.render(&store, now);
        assert!(after.contains("B00000") && !after.contains("B00001"));
    }
}
