//! The metric contract: one registry, refreshed from the [`Store`] at scrape time.
//!
//! Event metrics (poll counters, durations) are recorded as polls finish; everything that
//! describes current state is rebuilt from the store on each scrape, so staleness is judged
//! at the moment of the scrape, not at the moment of the last poll.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

use crate::model::{AuthorityState, FailureReason, Observation, Target};
use crate::smileid::PollError;
use crate::store::Store;

/// The Content-Type of the classic text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const CACHED: &str = "Cached from the background poll of Smile ID's id_status endpoint";

/// Every metric the exporter serves.
pub struct Metrics {
    registry: Registry,
    rate_10m: GaugeVec,
    rate_1h: GaugeVec,
    state: GaugeVec,
    last_checked: GaugeVec,
    poll_success: GaugeVec,
    last_poll_success: GaugeVec,
    polls: IntCounterVec,
    failures: IntCounterVec,
    unrecognized: IntCounterVec,
    poll_duration: Histogram,
    cycle_last_run: Gauge,
    targets: IntGauge,
    reload_ok: Gauge,
    reload_time: Gauge,
    reloads: IntCounterVec,
    state_since: GaugeVec,
    connections: ConnectionMetrics,
    tls_expiry: GaugeVec,
    history: HistoryMetrics,
    /// Serialises refresh-and-encode, so two scrapes never interleave a reset; holds each
    /// pair's state at the last scrape and since when it has been shown.
    scrape: Mutex<HashMap<Target, (AuthorityState, DateTime<Utc>)>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn pair_gauge(name: &str, help: &str) -> GaugeVec {
    GaugeVec::new(Opts::new(name, help), &["country", "id_type"]).expect("valid metric")
}

impl Metrics {
    /// A registry with every metric registered; `revision` labels the build info.
    pub fn new(revision: &str) -> Metrics {
        let rate_10m = pair_gauge(
            "idauth_success_rate_10m",
            &format!(
                "Share (0-1) of checks of the ID authority that succeeded in the provider's last 10-minute window. {CACHED}."
            ),
        );
        let rate_1h = pair_gauge(
            "idauth_success_rate_1h",
            &format!("Share (0-1) of checks of the ID authority that succeeded in the provider's last hour. {CACHED}."),
        );
        let state = GaugeVec::new(
            Opts::new(
                "idauth_state",
                format!("State of the ID authority (online, interruption, offline, unknown); exactly one state is 1 per pair. Unknown when no fresh data. {CACHED}."),
            ),
            &["country", "id_type", "state"],
        )
        .expect("valid metric");
        let last_checked = pair_gauge(
            "idauth_last_checked_timestamp_seconds",
            &format!("When the provider last checked the ID authority (its last_checked), in Unix seconds. {CACHED}."),
        );
        let poll_success = pair_gauge(
            "idauth_poll_success",
            "Whether the exporter's last poll of this pair succeeded (1) or failed (0).",
        );
        let last_poll_success = pair_gauge(
            "idauth_last_poll_success_timestamp_seconds",
            "When a poll of this pair last succeeded, in Unix seconds.",
        );
        let polls = IntCounterVec::new(
            Opts::new("idauth_polls_total", "Polls of the provider made for this pair."),
            &["country", "id_type"],
        )
        .expect("valid metric");
        let failures = IntCounterVec::new(
            Opts::new("idauth_poll_failures_total", "Failed polls of the provider for this pair, by reason."),
            &["country", "id_type", "reason"],
        )
        .expect("valid metric");
        let unrecognized = IntCounterVec::new(
            Opts::new(
                "idauth_unrecognized_status_total",
                "Polls whose last_known_status the exporter did not recognise (shown as state unknown).",
            ),
            &["country", "id_type"],
        )
        .expect("valid metric");
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
        let state_since = pair_gauge(
            "idauth_state_since_timestamp_seconds",
            "When the pair's shown state (idauth_state) last changed, as seen at scrape time, in Unix seconds.",
        );
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
            Box::new(rate_10m.clone()),
            Box::new(rate_1h.clone()),
            Box::new(state.clone()),
            Box::new(last_checked.clone()),
            Box::new(poll_success.clone()),
            Box::new(last_poll_success.clone()),
            Box::new(polls.clone()),
            Box::new(failures.clone()),
            Box::new(unrecognized.clone()),
            Box::new(poll_duration.clone()),
            Box::new(cycle_last_run.clone()),
            Box::new(state_since.clone()),
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
        Metrics {
            registry,
            rate_10m,
            rate_1h,
            state,
            last_checked,
            poll_success,
            last_poll_success,
            polls,
            failures,
            unrecognized,
            poll_duration,
            cycle_last_run,
            targets,
            reload_ok,
            reload_time,
            reloads,
            state_since,
            connections,
            tls_expiry,
            history,
            scrape: Mutex::new(HashMap::new()),
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

    /// Starts the counters of `new` pairs at zero (so `rate()` and alerts see them from the
    /// first scrape) and drops those of `old` pairs no longer watched; counts of pairs in
    /// both are kept across a reload.
    pub fn set_targets(&self, old: &[Target], new: &[Target]) {
        for t in old.iter().filter(|t| !new.contains(t)) {
            let (c, i) = (t.country.as_str(), t.id_type.as_str());
            let _ = self.polls.remove_label_values(&[c, i]);
            let _ = self.unrecognized.remove_label_values(&[c, i]);
            for r in FailureReason::ALL {
                let _ = self.failures.remove_label_values(&[c, i, r.as_str()]);
            }
        }
        for t in new {
            let (c, i) = (t.country.as_str(), t.id_type.as_str());
            self.polls.with_label_values(&[c, i]);
            self.unrecognized.with_label_values(&[c, i]);
            for r in FailureReason::ALL {
                self.failures.with_label_values(&[c, i, r.as_str()]);
            }
        }
        self.targets.set(new.len() as i64);
    }

    /// Counts one finished poll.
    pub fn record_poll(&self, target: &Target, result: Result<&Observation, &PollError>, took: Duration) {
        let (c, i) = (target.country.as_str(), target.id_type.as_str());
        self.polls.with_label_values(&[c, i]).inc();
        self.poll_duration.observe(took.as_secs_f64());
        match result {
            Ok(o) if o.unrecognized_status.is_some() => self.unrecognized.with_label_values(&[c, i]).inc(),
            Ok(_) => {}
            Err(e) => self.failures.with_label_values(&[c, i, e.reason().as_str()]).inc(),
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

    /// Rebuilds the state metrics from `store` as of `now` and encodes everything.
    pub fn render(&self, store: &Store, now: DateTime<Utc>, max_age: Duration) -> String {
        let mut seen = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        let snapshot = store.snapshot();
        seen.retain(|t, _| snapshot.iter().any(|(s, _)| s == t));
        for g in [
            &self.rate_10m,
            &self.rate_1h,
            &self.state,
            &self.last_checked,
            &self.poll_success,
            &self.last_poll_success,
            &self.state_since,
        ] {
            g.reset();
        }
        for (t, s) in snapshot {
            let (c, i) = (t.country.as_str(), t.id_type.as_str());
            let current = s.current_state(now, max_age);
            let since = match seen.get(&t) {
                Some((state, since)) if *state == current => *since,
                _ => now,
            };
            seen.insert(t.clone(), (current, since));
            self.state_since.with_label_values(&[c, i]).set(unix(since));
            for st in AuthorityState::ALL {
                self.state.with_label_values(&[c, i, st.as_str()]).set(if st == current { 1.0 } else { 0.0 });
            }
            if let Some(o) = &s.observation {
                if s.is_fresh(now, max_age) {
                    if let Some(r) = o.rate_10m {
                        self.rate_10m.with_label_values(&[c, i]).set(r.as_f64());
                    }
                    if let Some(r) = o.rate_1h {
                        self.rate_1h.with_label_values(&[c, i]).set(r.as_f64());
                    }
                }
                if let Some(at) = o.last_checked {
                    self.last_checked.with_label_values(&[c, i]).set(unix(at));
                }
            }
            if let Some(p) = &s.last_poll {
                self.poll_success.with_label_values(&[c, i]).set(if p.success { 1.0 } else { 0.0 });
            }
            if let Some(at) = s.last_success {
                self.last_poll_success.with_label_values(&[c, i]).set(unix(at));
            }
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
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
