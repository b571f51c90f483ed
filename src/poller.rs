//! When and how each pair is polled: every pair's poll is its own task, at most
//! `concurrency` in flight, spread over `jitter`, bounded by the [`PollBudget`], never two
//! at once for one pair, and all of them tracked so shutdown can cancel them.
//!
//! A cycle does not wait for its slowest pair before the heartbeat: the heartbeat
//! (`idauth_poll_cycle_last_run_timestamp_seconds`) is set as soon as every pair's poll
//! has been started, or skipped because the pair's previous poll is still running.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::PollConfig;
use crate::metrics::Metrics;
use crate::model::PollError;
use crate::model::{Clock, Observation, PollBudget, SystemClock, Target};
use crate::smileid::IdStatusApi;
use crate::store::{CycleRecord, Store};

/// How the pairs are polled: the `poll:` settings the poller needs.
#[derive(Clone, Copy, Debug)]
pub struct PollSettings {
    /// Polls in flight at once.
    pub concurrency: usize,
    /// A cycle's polls are spread over this window.
    pub jitter: Duration,
    /// The longest one poll may take, retries and waits included.
    pub budget: Duration,
}

impl PollSettings {
    /// The settings of a `poll:` section.
    pub fn from_config(poll: &PollConfig) -> PollSettings {
        let budget = PollBudget::new(poll.schedule.period(), poll.jitter).get();
        PollSettings { concurrency: poll.concurrency, jitter: poll.jitter, budget }
    }
}

/// What a reload replaces (the watched pairs are the store's).
struct Setup {
    api: Arc<dyn IdStatusApi>,
    settings: PollSettings,
    permits: Arc<Semaphore>,
}

/// Polls the watched pairs through one client; lives as long as the daemon, and a reload
/// gives it a new client and pairs ([`Poller::reconfigure`]).
pub struct Poller {
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    setup: RwLock<Setup>,
    /// Pairs whose poll is running: a pair is never polled twice at once.
    in_flight: Mutex<HashSet<Target>>,
    tasks: TaskTracker,
    cancel: CancellationToken,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller").field("targets", &self.targets()).finish_non_exhaustive()
    }
}

/// Takes a pair out of the in-flight set when its poll ends, however it ends.
struct InFlight {
    poller: Arc<Poller>,
    target: Target,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.poller.in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.target);
    }
}

impl Poller {
    /// A poller of the pairs `store` watches, writing into it and `metrics`, reading the
    /// system clock.
    pub fn new(
        api: Arc<dyn IdStatusApi>,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
        settings: PollSettings,
    ) -> Arc<Poller> {
        Poller::with_clock(api, store, metrics, settings, Arc::new(SystemClock))
    }

    /// [`Poller::new`] with the time read from `clock`.
    pub fn with_clock(
        api: Arc<dyn IdStatusApi>,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
        settings: PollSettings,
        clock: Arc<dyn Clock>,
    ) -> Arc<Poller> {
        let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
        Arc::new(Poller {
            store,
            metrics,
            clock,
            setup: RwLock::new(Setup { api, settings, permits }),
            in_flight: Mutex::new(HashSet::new()),
            tasks: TaskTracker::new(),
            cancel: CancellationToken::new(),
        })
    }

    fn setup(&self) -> std::sync::RwLockReadGuard<'_, Setup> {
        self.setup.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The pairs this poller polls: those the store watches.
    pub fn targets(&self) -> Vec<Target> {
        self.store.targets()
    }

    /// Takes a new client, pairs and settings (a reload). The store drops the pairs that
    /// went, under the same lock that recording a result takes, so a poll of a removed pair
    /// that ends later cannot bring its series back. Polls in flight finish with the client
    /// they began with. Returns the pairs that were added.
    pub fn reconfigure(&self, api: Arc<dyn IdStatusApi>, targets: Vec<Target>, settings: PollSettings) -> Vec<Target> {
        let mut setup = self.setup.write().unwrap_or_else(|p| p.into_inner());
        let added = self.store.set_targets(&targets);
        if settings.concurrency != setup.settings.concurrency {
            setup.permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
        }
        *setup = Setup { api, settings, permits: setup.permits.clone() };
        added
    }

    /// Takes new pairs, keeping the client and settings (discovery found or dropped some);
    /// returns the pairs that were added.
    pub fn set_targets(&self, targets: Vec<Target>) -> Vec<Target> {
        self.store.set_targets(&targets)
    }

    /// Polls every pair once and waits for those polls. With `spread`, start times are spaced
    /// evenly over the jitter window so a fleet of pairs does not hit the provider in one
    /// burst; the first cycle after start-up goes without, so `/metrics` has data within
    /// seconds. The heartbeat is set once every poll is started, not when the slowest ends.
    pub async fn run_cycle(self: &Arc<Self>, spread: bool) -> CycleRecord {
        let started = self.clock.now();
        let clock = tokio::time::Instant::now();
        let targets = self.targets();
        let handles = self.dispatch(&targets, spread);
        self.metrics.record_cycle(self.clock.now());
        let mut results = Vec::with_capacity(handles.len());
        for h in handles {
            if let Ok(Some(ok)) = h.await {
                results.push(ok);
            }
        }
        let ok = results.iter().filter(|ok| **ok).count();
        let record =
            CycleRecord { started, finished: self.clock.now(), pairs: results.len(), ok, failed: results.len() - ok };
        self.store.record_cycle(record.clone());
        // What the cycle freed goes back now; what its pooled connections hold, once the
        // pool has closed them (it checks every POOL_IDLE).
        crate::allocator::release_free_memory();
        tokio::spawn(async {
            tokio::time::sleep(2 * crate::smileid::POOL_IDLE + Duration::from_secs(1)).await;
            crate::allocator::release_free_memory();
        });
        if targets.is_empty() {
            // Discovery has not listed any pair yet (or lists none): there was no cycle to
            // speak of, and `pairs=0 ok=0` would read as a failure. Discovery logs its own.
            tracing::debug!("poll cycle: no pairs to poll yet");
            return record;
        }
        tracing::info!(
            pairs = record.pairs,
            skipped = targets.len() - record.pairs,
            ok = record.ok,
            failed = record.failed,
            duration_ms = clock.elapsed().as_millis() as u64,
            "poll cycle finished"
        );
        record
    }

    /// Polls `targets` now (pairs a reload added), through the same permits and no-overlap
    /// guard as a cycle, without waiting for them.
    pub fn poll_now(self: &Arc<Self>, targets: &[Target]) {
        drop(self.dispatch(targets, false));
    }

    /// Starts one tracked task per pair not already being polled; each yields whether its
    /// poll succeeded, or `None` when shutdown cancelled it.
    fn dispatch(self: &Arc<Self>, targets: &[Target], spread: bool) -> Vec<tokio::task::JoinHandle<Option<bool>>> {
        let (jitter, permits) = {
            let setup = self.setup();
            (setup.settings.jitter, setup.permits.clone())
        };
        let n = targets.len().max(1) as u32;
        let mut handles = Vec::with_capacity(targets.len());
        for (i, target) in targets.iter().enumerate() {
            if !self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(target.clone()) {
                tracing::warn!(country = %target.country, id_type = %target.id_type,
                    "the previous poll of this pair is still running; skipping it this time");
                continue;
            }
            let guard = InFlight { poller: self.clone(), target: target.clone() };
            let delay = if spread { jitter * i as u32 / n } else { Duration::ZERO };
            let (poller, permits, cancel) = (self.clone(), permits.clone(), self.cancel.clone());
            handles.push(self.tasks.spawn(async move {
                let poll = async {
                    tokio::time::sleep(delay).await;
                    let _permit = permits.acquire().await.expect("the semaphore is never closed");
                    poller.poll_one(&guard.target).await.is_ok()
                };
                tokio::select! {
                    _ = cancel.cancelled() => None,
                    ok = poll => Some(ok),
                }
            }));
        }
        handles
    }

    /// Polls one target within the budget and records the outcome, unless a reload has
    /// removed the pair meanwhile.
    pub async fn poll_one(&self, target: &Target) -> Result<Observation, PollError> {
        let (api, budget) = {
            let setup = self.setup();
            (setup.api.clone(), setup.settings.budget)
        };
        let clock = tokio::time::Instant::now();
        let result = match tokio::time::timeout(budget, api.id_status(target)).await {
            Ok(r) => r,
            Err(_) => Err(PollError::Timeout(budget)),
        };
        let now = self.clock.now();
        self.metrics.record_poll_duration(clock.elapsed());
        // The store keeps nothing of a pair a reload removed meanwhile.
        match &result {
            Ok(o) => {
                if let Some(raw) = &o.unrecognized_status {
                    tracing::warn!(country = %target.country, id_type = %target.id_type, status = %raw,
                        "unrecognised last_known_status; showing state unknown");
                }
                tracing::debug!(country = %target.country, id_type = %target.id_type, state = %o.state, "polled");
                self.store.record_success(target, o.clone(), now);
            }
            Err(e) => {
                tracing::warn!(country = %target.country, id_type = %target.id_type, reason = %e.reason(),
                    error = %e, "poll failed");
                self.store.record_failure(target, e, now);
            }
        }
        result
    }

    /// Runs `work` as a task that shutdown waits for (and cancels, if it polls).
    pub fn spawn<F>(&self, work: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(work);
    }

    /// Cancels every poll in flight and waits until they have stopped.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::FutureExt;
    use futures_util::future::BoxFuture;

    use super::*;
    use crate::model::AuthorityState;

    /// Answers after 100 ms, recording the most requests in flight and when each began.
    #[derive(Default)]
    struct Slow {
        in_flight: AtomicUsize,
        most: AtomicUsize,
        starts: std::sync::Mutex<Vec<tokio::time::Instant>>,
    }

    impl IdStatusApi for Slow {
        fn id_status<'a>(&'a self, _: &'a Target) -> BoxFuture<'a, Result<Observation, PollError>> {
            async move {
                self.starts.lock().unwrap().push(tokio::time::Instant::now());
                let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                self.most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok(online())
            }
            .boxed()
        }
    }

    fn online() -> Observation {
        Observation {
            state: AuthorityState::Online,
            unrecognized_status: None,
            rate_10m: Some(crate::model::Rate::ONE),
            rate_1h: None,
            last_checked: None,
        }
    }

    fn settings(concurrency: usize, jitter: u64) -> PollSettings {
        PollSettings { concurrency, jitter: Duration::from_secs(jitter), budget: Duration::from_secs(60) }
    }

    /// Answers at once, except for one pair that never answers (like a provider whose
    /// `Retry-After: 3600` the old code waited out); counts the calls per pair.
    struct OneStuck {
        stuck: Target,
        calls: std::sync::Mutex<std::collections::HashMap<Target, usize>>,
    }

    impl IdStatusApi for OneStuck {
        fn id_status<'a>(&'a self, t: &'a Target) -> BoxFuture<'a, Result<Observation, PollError>> {
            async move {
                *self.calls.lock().unwrap().entry(t.clone()).or_default() += 1;
                if *t == self.stuck {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                Ok(online())
            }
            .boxed()
        }
    }

    fn heartbeat(metrics: &Metrics, store: &Store) -> f64 {
        let text = metrics.render(store, chrono::Utc::now());
        let line = text.lines().find(|l| l.starts_with("idauth_poll_cycle_last_run_timestamp_seconds ")).unwrap();
        line.rsplit_once(' ').unwrap().1.parse().unwrap()
    }

    /// A pair that does not answer never delays the others, the heartbeat or the next
    /// ticks; its poll ends at the budget, and it is not polled twice at once.
    #[tokio::test(start_paused = true)]
    async fn a_stuck_pair_delays_no_other_pair_nor_the_heartbeat() {
        let t = targets(3);
        let api = Arc::new(OneStuck { stuck: t[0].clone(), calls: Default::default() });
        let store = Arc::new(Store::new(&t));
        let metrics = Arc::new(Metrics::new("test", chrono::Utc::now()));
        let clock = Arc::new(crate::model::TokioClock::new());
        // Every 5 s; the budget is 5 s (no jitter), the stuck pair's poll ends there.
        let settings = PollSettings { concurrency: 2, jitter: Duration::ZERO, budget: Duration::from_secs(5) };
        let poller = Poller::with_clock(api.clone(), store.clone(), metrics.clone(), settings, clock.clone());
        let began = tokio::time::Instant::now();
        let mut beats = Vec::new();
        for tick in 0..6u64 {
            tokio::time::sleep_until(began + Duration::from_secs(5 * tick)).await;
            let p = poller.clone();
            tokio::spawn(async move { p.run_cycle(tick > 0).await });
            tokio::time::sleep(Duration::from_millis(10)).await;
            // Within 10 ms of each tick: the healthy pairs have been polled, the heartbeat is
            // set, and the stuck pair holds neither.
            beats.push(heartbeat(&metrics, &store));
            let snap = store.now(clock.now());
            for p in &snap[1..] {
                let at = p.last_poll.as_ref().expect("polled").at;
                assert!((clock.now() - at).num_milliseconds() <= 10, "{} not polled at tick {tick}", p.target);
            }
            assert!(store.is_ready() || tick == 0, "the stuck pair's poll has ended by tick {tick}");
        }
        for (i, b) in beats.iter().enumerate().skip(1) {
            assert!((b - beats[i - 1] - 5.0).abs() < 0.05, "heartbeat every 5 s: {beats:?}");
        }
        let calls = api.calls.lock().unwrap().clone();
        assert_eq!(calls[&t[1]], 6);
        assert_eq!(calls[&t[2]], 6);
        // The stuck pair was cut at the 5 s budget, as a timeout; its next poll began then.
        assert!((5..=6).contains(&calls[&t[0]]), "{calls:?}");
        let stuck = &store.now(clock.now())[0];
        assert_eq!(stuck.last_poll.as_ref().unwrap().reason, Some(crate::model::FailureReason::Timeout));
    }

    /// A pair whose poll is still running when the next tick comes is skipped, not doubled.
    #[tokio::test(start_paused = true)]
    async fn a_pair_still_being_polled_is_not_polled_again() {
        let t = targets(2);
        let api = Arc::new(OneStuck { stuck: t[0].clone(), calls: Default::default() });
        let store = Arc::new(Store::new(&t));
        let settings = PollSettings { concurrency: 4, jitter: Duration::ZERO, budget: Duration::from_secs(7200) };
        let poller = Poller::new(api.clone(), store, Arc::new(Metrics::new("test", chrono::Utc::now())), settings);
        for _ in 0..3 {
            let p = poller.clone();
            tokio::spawn(async move { p.run_cycle(false).await });
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let calls = api.calls.lock().unwrap().clone();
        assert_eq!((calls[&t[0]], calls[&t[1]]), (1, 3));
    }

    /// Shutdown cancels polls in flight rather than waiting for them.
    #[tokio::test(start_paused = true)]
    async fn shutdown_cancels_polls_in_flight() {
        let t = targets(1);
        let api = Arc::new(OneStuck { stuck: t[0].clone(), calls: Default::default() });
        let settings = PollSettings { concurrency: 1, jitter: Duration::ZERO, budget: Duration::from_secs(7200) };
        let poller =
            Poller::new(api, Arc::new(Store::new(&t)), Arc::new(Metrics::new("test", chrono::Utc::now())), settings);
        let p = poller.clone();
        let cycle = tokio::spawn(async move { p.run_cycle(false).await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        let began = tokio::time::Instant::now();
        poller.shutdown().await;
        assert!(began.elapsed() < Duration::from_secs(1), "{:?}", began.elapsed());
        assert_eq!(cycle.await.unwrap().pairs, 0);
    }

    /// The result of a pair that a reload removed while its poll ran is dropped: its
    /// series do not come back.
    #[tokio::test(start_paused = true)]
    async fn a_late_result_of_a_removed_pair_is_dropped() {
        let t = targets(2);
        let api = Arc::new(Slow::default());
        let store = Arc::new(Store::new(&t));
        let metrics = Arc::new(Metrics::new("test", chrono::Utc::now()));
        let poller = Poller::new(api.clone(), store.clone(), metrics.clone(), settings(4, 0));
        let p = poller.clone();
        let cycle = tokio::spawn(async move { p.run_cycle(false).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Halfway through the 100 ms answers, a reload drops the second pair.
        let added = poller.reconfigure(api, vec![t[0].clone()], settings(4, 0));
        assert!(added.is_empty());
        cycle.await.unwrap();
        let text = metrics.render(&store, chrono::Utc::now());
        assert!(text.contains(&format!("id_type=\"{}\"", t[0].id_type)), "{text}");
        assert!(!text.contains(&format!("id_type=\"{}\"", t[1].id_type)), "{text}");
        assert_eq!(store.now(chrono::Utc::now()).len(), 1);
    }

    /// Pairs a reload adds go through the poller's permits like any other poll.
    #[tokio::test(start_paused = true)]
    async fn pairs_added_by_a_reload_respect_the_concurrency() {
        let api = Arc::new(Slow::default());
        let store = Arc::new(Store::new(&[]));
        let poller =
            Poller::new(api.clone(), store.clone(), Arc::new(Metrics::new("test", chrono::Utc::now())), settings(2, 0));
        let added = poller.reconfigure(api.clone(), targets(8), settings(2, 0));
        assert_eq!(added.len(), 8);
        poller.poll_now(&added);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(api.most.load(Ordering::SeqCst), 2);
        assert!(store.is_ready());
    }

    fn targets(n: usize) -> Vec<Target> {
        let types = ["BVN", "NIN_V2", "NIN_SLIP", "V_NIN", "BANK_ACCOUNT", "PHONE_NUMBER", "VOTER_ID", "TIN"];
        types[..n].iter().map(|t| Target::new("NG".parse().unwrap(), t.parse().unwrap())).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_bounded() {
        let api = Arc::new(Slow::default());
        let t = targets(8);
        let store = Arc::new(Store::new(&t));
        let poller =
            Poller::new(api.clone(), store, Arc::new(Metrics::new("test", chrono::Utc::now())), settings(3, 0));
        let record = poller.run_cycle(false).await;
        assert_eq!((record.pairs, record.ok, record.failed), (8, 8, 0));
        assert_eq!(api.most.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_are_spread_over_the_jitter_window() {
        let api = Arc::new(Slow::default());
        let t = targets(4);
        let store = Arc::new(Store::new(&t));
        let poller =
            Poller::new(api.clone(), store, Arc::new(Metrics::new("test", chrono::Utc::now())), settings(4, 20));
        let began = tokio::time::Instant::now();
        poller.run_cycle(true).await;
        let offsets: Vec<u64> = api.starts.lock().unwrap().iter().map(|s| (*s - began).as_secs()).collect();
        assert_eq!(offsets, [0, 5, 10, 15]);
        // Without spreading (the start-up cycle) they all go at once.
        let api = Arc::new(Slow::default());
        let t = targets(4);
        let poller = Poller::new(
            api.clone(),
            Arc::new(Store::new(&t)),
            Arc::new(Metrics::new("test", chrono::Utc::now())),
            settings(4, 20),
        );
        let began = tokio::time::Instant::now();
        poller.run_cycle(false).await;
        assert!(api.starts.lock().unwrap().iter().all(|s| *s == began));
    }
}
