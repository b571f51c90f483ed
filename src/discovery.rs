//! Refreshes what to watch from the provider's catalogue (`discovery:` in the file).
//!
//! Never fatal and never lossy: the last good catalogue stays in force (in memory) while
//! reading fails, failures are logged and counted and retried with back-off, and a pair
//! that leaves the catalogue is dropped only once it has been missing from
//! [`MISSES_TO_DROP`] successful reads in a row, so a provider blip deletes no series.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use prometheus::{Gauge, IntCounterVec, IntGauge, Opts};

use crate::config::DiscoveryConfig;
use crate::model::{Clock, SystemClock, Target};
use crate::smileid::catalogue::{CatalogueApi, CatalogueError};

/// Successful reads in a row that must miss a pair before it is dropped.
pub const MISSES_TO_DROP: u32 = 2;
/// The first wait after a failed read; doubled after each further failure, up to the refresh.
pub const FIRST_RETRY: Duration = Duration::from_secs(30);

/// What a read of the catalogue changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// Pairs the catalogue lists now (before `countries` and `exclude`).
    pub listed: usize,
    /// Pairs dropped after missing from [`MISSES_TO_DROP`] reads in a row.
    pub dropped: Vec<Target>,
}

struct State {
    /// Every pair of the last good catalogues, with the reads in a row that missed it.
    known: BTreeMap<Target, u32>,
    /// Consecutive failed reads.
    failures: u32,
}

/// The discovered pairs, kept up to date by [`Discovery::run`].
pub struct Discovery {
    api: RwLock<Arc<dyn CatalogueApi>>,
    config: RwLock<DiscoveryConfig>,
    state: Mutex<State>,
    metrics: DiscoveryMetrics,
    clock: Arc<dyn Clock>,
    wake: Notify,
    /// The pairs watched through discovery, filters applied, in order.
    found: watch::Sender<Vec<Target>>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery").field("found", &self.found.borrow().len()).finish_non_exhaustive()
    }
}

impl Discovery {
    /// Discovery through `api` as `config` says, counting into `metrics`; nothing is read
    /// until [`Discovery::run`] or [`Discovery::refresh`].
    pub fn new(api: Arc<dyn CatalogueApi>, config: DiscoveryConfig, metrics: DiscoveryMetrics) -> Arc<Discovery> {
        Discovery::with_clock(api, config, metrics, Arc::new(SystemClock))
    }

    /// [`Discovery::new`] with the time of successes read from `clock`.
    pub fn with_clock(
        api: Arc<dyn CatalogueApi>,
        config: DiscoveryConfig,
        metrics: DiscoveryMetrics,
        clock: Arc<dyn Clock>,
    ) -> Arc<Discovery> {
        Arc::new(Discovery {
            api: RwLock::new(api),
            config: RwLock::new(config),
            state: Mutex::new(State { known: BTreeMap::new(), failures: 0 }),
            metrics,
            clock,
            wake: Notify::new(),
            found: watch::Sender::new(Vec::new()),
        })
    }

    /// The metrics it counts into.
    pub fn metrics(&self) -> &DiscoveryMetrics {
        &self.metrics
    }

    fn config(&self) -> DiscoveryConfig {
        self.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The pairs watched through discovery now: the last good catalogue, filtered.
    pub fn found(&self) -> Vec<Target> {
        self.found.borrow().clone()
    }

    /// Tells of every change of [`Discovery::found`].
    pub fn subscribe(&self) -> watch::Receiver<Vec<Target>> {
        self.found.subscribe()
    }

    /// Takes a reloaded configuration: the filters apply at once to the catalogue in
    /// memory, and the catalogue is read again as soon as the running loop can.
    pub fn reconfigure(&self, api: Arc<dyn CatalogueApi>, config: DiscoveryConfig) {
        *self.api.write().unwrap_or_else(|p| p.into_inner()) = api;
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
        self.publish();
        self.wake.notify_one();
    }

    /// Recomputes the filtered pairs; subscribers hear only of a real change.
    fn publish(&self) {
        let config = self.config();
        let found: Vec<Target> = if config.enabled {
            let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.known.keys().filter(|t| config.admits(t)).cloned().collect()
        } else {
            Vec::new()
        };
        self.metrics.set_targets(found.len());
        self.found.send_if_modified(|old| {
            let changed = *old != found;
            *old = found;
            changed
        });
    }

    /// Reads the catalogue once and applies it; on failure nothing known is lost.
    pub async fn refresh(&self) -> Result<Refreshed, CatalogueError> {
        let api = self.api.read().unwrap_or_else(|p| p.into_inner()).clone();
        let countries = self.config().countries;
        let result = api.pairs(&countries).await;
        let outcome = match result {
            Ok(listed) => {
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                state.failures = 0;
                let mut dropped = Vec::new();
                state.known.retain(|t, misses| {
                    if listed.contains(t) {
                        *misses = 0;
                        return true;
                    }
                    *misses += 1;
                    let keep = *misses < MISSES_TO_DROP;
                    if !keep {
                        dropped.push(t.clone());
                    }
                    keep
                });
                for t in &listed {
                    state.known.entry(t.clone()).or_insert(0);
                }
                Ok(Refreshed { listed: listed.len(), dropped })
            }
            Err(e) => {
                self.state.lock().unwrap_or_else(|p| p.into_inner()).failures += 1;
                Err(e)
            }
        };
        self.metrics.record_refresh(outcome.is_ok(), self.clock.now());
        match &outcome {
            Ok(r) => {
                self.publish();
                tracing::info!(
                    listed = r.listed,
                    watched = self.found.borrow().len(),
                    dropped = r.dropped.len(),
                    "read the provider's catalogue"
                );
                for t in &r.dropped {
                    tracing::info!(country = %t.country, id_type = %t.id_type,
                        "dropping a pair missing from the catalogue for {MISSES_TO_DROP} reads in a row");
                }
            }
            Err(e) => tracing::warn!(error = %e, watched = self.found.borrow().len(),
                "cannot read the provider's catalogue; keeping the pairs it last listed"),
        }
        outcome
    }

    /// How long to wait before the next read: the refresh period, or after `failures`
    /// failed reads in a row [`FIRST_RETRY`] doubled each time, never longer than the period.
    pub fn next_wait(refresh: Duration, failures: u32) -> Duration {
        if failures == 0 {
            return refresh;
        }
        FIRST_RETRY.saturating_mul(1 << (failures - 1).min(16)).min(refresh)
    }

    /// Reads the catalogue now and then every `refresh` (sooner after a failure, and at
    /// once after [`Discovery::reconfigure`]) until `cancel`. Idle while disabled.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            let step = async {
                let config = self.config();
                if !config.enabled {
                    return self.wake.notified().await;
                }
                let _ = self.refresh().await;
                let failures = self.state.lock().unwrap_or_else(|p| p.into_inner()).failures;
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(Discovery::next_wait(config.refresh, failures)) => {}
                }
            };
            // A read in flight is cancelled too: shutdown does not wait for the provider.
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = step => {}
            }
        }
    }
}

/// What `config check` tells of discovery: what would be watched, or why the catalogue
/// could not be read.
#[derive(Debug)]
pub struct Preview {
    /// The catalogue's URL (the first one, for v3).
    pub url: String,
    /// The pairs discovery would watch (filters applied), or why none are known.
    pub found: Result<Vec<Target>, CatalogueError>,
    /// Every pair that would be watched: the explicit targets and those found.
    pub watched: Vec<Target>,
}

/// Reads the catalogue once, as the daemon would at start-up.
pub async fn preview(config: &crate::config::Config) -> Result<Preview, reqwest::Error> {
    let catalogue =
        crate::smileid::catalogue::catalogue_for(&config.smile_id, crate::smileid::build_transport(&config.poll)?);
    let d = &config.discovery;
    let found =
        catalogue.pairs(&d.countries).await.map(|all| all.into_iter().filter(|t| d.admits(t)).collect::<Vec<_>>());
    let watched = watched(&config.targets, found.as_deref().unwrap_or_default());
    Ok(Preview { url: catalogue.url(), found, watched })
}

impl Preview {
    /// Lines for `config check`, indented like its other lines.
    pub fn render(&self, explicit: usize) -> String {
        let list = |l: &[Target]| l.iter().map(Target::to_string).collect::<Vec<_>>().join(", ");
        match &self.found {
            Ok(found) => format!(
                "  discovery: the catalogue at {} lists {} pairs to watch\n  would watch {} pairs: {}\n",
                self.url,
                found.len(),
                self.watched.len(),
                list(&self.watched)
            ),
            Err(e) => format!(
                "  discovery: cannot read the catalogue at {}: {e}\n  would watch only the {explicit} explicit targets until it can (retrying with back-off)\n",
                self.url
            ),
        }
    }
}

/// What to watch: the explicit `targets` in file order, then the discovered pairs not among them.
pub fn watched(explicit: &[Target], found: &[Target]) -> Vec<Target> {
    let mut all = explicit.to_vec();
    all.extend(found.iter().filter(|t| !explicit.contains(t)).cloned());
    all
}

/// Discovery's metrics: how many pairs the catalogue gave and whether reading it works.
/// Clones share the same series; they are served once registered with the
/// metrics ([`DiscoveryMetrics::collectors`]).
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
        last_success.set(chrono::Utc::now().timestamp_millis() as f64 / 1000.0);
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
    pub fn record_refresh(&self, ok: bool, at: chrono::DateTime<chrono::Utc>) {
        self.refreshes.with_label_values(&[if ok { "success" } else { "failure" }]).inc();
        if ok {
            self.last_success.set(at.timestamp_millis() as f64 / 1000.0);
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

impl DiscoveryMetrics {
    /// Its series, for the registry that serves them.
    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![Box::new(self.targets.clone()), Box::new(self.last_success.clone()), Box::new(self.refreshes.clone())]
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;
    use futures_util::future::BoxFuture;

    use super::*;
    use crate::model::Country;
    use crate::model::PollError;

    /// A catalogue whose next answers the test sets.
    #[derive(Default)]
    struct Scripted {
        answer: Mutex<Option<Result<Vec<Target>, CatalogueError>>>,
        reads: std::sync::atomic::AtomicUsize,
    }

    impl Scripted {
        fn set(&self, answer: Result<Vec<Target>, CatalogueError>) {
            *self.answer.lock().unwrap() = Some(answer);
        }
        fn reads(&self) -> usize {
            self.reads.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    impl CatalogueApi for Scripted {
        fn pairs<'a>(&'a self, _: &'a [Country]) -> BoxFuture<'a, Result<Vec<Target>, CatalogueError>> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let answer = self.answer.lock().unwrap().clone().expect("an answer is set");
            async move { answer }.boxed()
        }
    }

    fn t(s: &str) -> Target {
        let (c, i) = s.split_once('/').unwrap();
        Target::new(c.parse().unwrap(), i.parse().unwrap())
    }

    fn ts(list: &[&str]) -> Vec<Target> {
        list.iter().map(|s| t(s)).collect()
    }

    fn enabled() -> DiscoveryConfig {
        DiscoveryConfig { enabled: true, refresh: Duration::from_secs(3600), ..Default::default() }
    }

    fn names(list: &[Target]) -> Vec<String> {
        list.iter().map(Target::to_string).collect()
    }

    /// A pair missing from one read stays; missing from two in a row, it goes; back in
    /// between, its count starts again.
    #[tokio::test]
    async fn a_pair_is_dropped_only_after_two_reads_in_a_row_miss_it() {
        let api = Arc::new(Scripted::default());
        let d = Discovery::new(api.clone(), enabled(), DiscoveryMetrics::default());
        api.set(Ok(ts(&["NG/BVN", "NG/NIN_V2"])));
        d.refresh().await.unwrap();
        assert_eq!(names(&d.found()), ["NG/BVN", "NG/NIN_V2"]);
        api.set(Ok(ts(&["NG/BVN"])));
        assert_eq!(d.refresh().await.unwrap().dropped, vec![]);
        assert_eq!(d.found().len(), 2, "one miss keeps it");
        api.set(Ok(ts(&["NG/BVN", "NG/NIN_V2"])));
        d.refresh().await.unwrap();
        api.set(Ok(ts(&["NG/BVN"])));
        d.refresh().await.unwrap();
        assert_eq!(d.found().len(), 2, "the count started again when it came back");
        assert_eq!(d.refresh().await.unwrap().dropped, ts(&["NG/NIN_V2"]));
        assert_eq!(names(&d.found()), ["NG/BVN"]);
    }

    /// Every kind of failure keeps what was found, counts a failure, and does not count
    /// as a miss.
    #[tokio::test]
    async fn failures_keep_the_last_good_catalogue_and_are_counted() {
        let api = Arc::new(Scripted::default());
        let metrics = DiscoveryMetrics::default();
        let d = Discovery::new(api.clone(), enabled(), metrics.clone());
        api.set(Ok(ts(&["KE/KRA_PIN", "NG/BVN"])));
        d.refresh().await.unwrap();
        let failures = [
            CatalogueError::Request(PollError::Http { status: 503, message: "busy".into() }),
            CatalogueError::Request(PollError::Timeout(Duration::from_secs(10))),
            CatalogueError::Shape("not JSON".into()),
            CatalogueError::Empty,
        ];
        for e in failures {
            api.set(Err(e));
            assert!(d.refresh().await.is_err());
            assert_eq!(names(&d.found()), ["KE/KRA_PIN", "NG/BVN"]);
        }
        assert_eq!((metrics.refreshes("success"), metrics.refreshes("failure")), (1, 4));
        // The failures were no misses: one read without NG/BVN keeps it.
        api.set(Ok(ts(&["KE/KRA_PIN"])));
        d.refresh().await.unwrap();
        assert_eq!(d.found().len(), 2);
    }

    #[tokio::test]
    async fn countries_and_exclude_filter_and_a_reload_refilters_at_once() {
        let api = Arc::new(Scripted::default());
        let mut config = enabled();
        config.countries = vec!["NG".parse().unwrap(), "KE".parse().unwrap()];
        config.exclude = vec![crate::config::Exclusion {
            country: "NG".parse().unwrap(),
            id_types: vec!["PHONE_NUMBER".parse().unwrap()],
        }];
        let d = Discovery::new(api.clone(), config, DiscoveryMetrics::default());
        api.set(Ok(ts(&["GH/GHANA_CARD", "KE/KRA_PIN", "NG/BVN", "NG/PHONE_NUMBER"])));
        d.refresh().await.unwrap();
        assert_eq!(names(&d.found()), ["KE/KRA_PIN", "NG/BVN"]);
        let rx = d.subscribe();
        d.reconfigure(api.clone(), enabled());
        assert!(rx.has_changed().unwrap());
        assert_eq!(d.found().len(), 4);
        d.reconfigure(api, DiscoveryConfig::default());
        assert!(d.found().is_empty(), "disabled: nothing discovered is watched");
    }

    /// The loop reads at once, retries a failure after 30 s, 60 s, ... (never beyond the
    /// period), reads every period once it works, and at once when reconfigured.
    #[tokio::test(start_paused = true)]
    async fn the_loop_backs_off_after_failures_and_reads_again_on_reload() {
        let api = Arc::new(Scripted::default());
        api.set(Err(CatalogueError::Empty));
        let d = Discovery::new(api.clone(), enabled(), DiscoveryMetrics::default());
        let cancel = CancellationToken::new();
        let task = tokio::spawn(d.clone().run(cancel.clone()));
        let step = |s| tokio::time::sleep(Duration::from_secs(s));
        step(1).await;
        assert_eq!(api.reads(), 1);
        step(30).await;
        assert_eq!(api.reads(), 2);
        step(59).await;
        assert_eq!(api.reads(), 2, "the second wait is 60 s");
        step(1).await;
        assert_eq!(api.reads(), 3);
        api.set(Ok(ts(&["NG/BVN"])));
        step(120).await;
        assert_eq!(api.reads(), 4);
        assert_eq!(d.found().len(), 1);
        // The read that worked was at 210 s; the next is an hour later.
        step(3598).await;
        assert_eq!(api.reads(), 4, "then once an hour");
        d.reconfigure(api.clone(), enabled());
        step(1).await;
        assert_eq!(api.reads(), 5, "a reload reads again at once");
        cancel.cancel();
        task.await.unwrap();
        assert_eq!(Discovery::next_wait(Duration::from_secs(600), 10), Duration::from_secs(600));
    }

    #[test]
    fn explicit_targets_come_first_and_once() {
        let all = watched(&ts(&["ZM/TPIN", "NG/BVN"]), &ts(&["KE/KRA_PIN", "NG/BVN"]));
        assert_eq!(names(&all), ["ZM/TPIN", "NG/BVN", "KE/KRA_PIN"]);
    }
}
