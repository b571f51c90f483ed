//! One poll cycle: every target once, at most `concurrency` in flight, spread over `jitter`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::future::join_all;
use tokio::sync::Semaphore;

use crate::metrics::Metrics;
use crate::model::{Observation, Target};
use crate::smileid::{IdStatusApi, PollError};
use crate::store::{CycleRecord, Store};

/// Polls a fixed set of targets through one client.
pub struct Poller {
    api: Arc<dyn IdStatusApi>,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    targets: Vec<Target>,
    concurrency: usize,
    jitter: Duration,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller").field("targets", &self.targets).finish_non_exhaustive()
    }
}

impl Poller {
    /// A poller writing into `store` and `metrics`.
    pub fn new(
        api: Arc<dyn IdStatusApi>,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
        targets: Vec<Target>,
        concurrency: usize,
        jitter: Duration,
    ) -> Poller {
        Poller { api, store, metrics, targets, concurrency: concurrency.max(1), jitter }
    }

    /// The targets this poller polls.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// Polls every target once. With `spread`, start times are spaced evenly over the jitter
    /// window so a fleet of targets does not hit the provider in one burst; the first cycle
    /// after start-up goes without, so `/metrics` has data within seconds.
    pub async fn run_cycle(&self, spread: bool) -> CycleRecord {
        let started = Utc::now();
        let clock = Instant::now();
        let permits = Semaphore::new(self.concurrency);
        let n = self.targets.len().max(1) as u32;
        let polls = self.targets.iter().enumerate().map(|(i, target)| {
            let delay = if spread { self.jitter * i as u32 / n } else { Duration::ZERO };
            let permits = &permits;
            async move {
                tokio::time::sleep(delay).await;
                let _permit = permits.acquire().await.expect("the semaphore is never closed");
                self.poll_one(target).await.is_ok()
            }
        });
        let results = join_all(polls).await;
        let ok = results.iter().filter(|ok| **ok).count();
        let record =
            CycleRecord { started, finished: Utc::now(), pairs: results.len(), ok, failed: results.len() - ok };
        self.store.record_cycle(record.clone());
        self.metrics.record_cycle(record.finished);
        tracing::info!(
            pairs = record.pairs,
            ok = record.ok,
            failed = record.failed,
            duration_ms = clock.elapsed().as_millis() as u64,
            "poll cycle finished"
        );
        record
    }

    /// Polls one target and records the outcome.
    pub async fn poll_one(&self, target: &Target) -> Result<Observation, PollError> {
        let clock = Instant::now();
        let result = self.api.id_status(target).await;
        let took = clock.elapsed();
        let now = Utc::now();
        self.metrics.record_poll(target, result.as_ref(), took);
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
                Ok(Observation {
                    state: AuthorityState::Online,
                    unrecognized_status: None,
                    rate_10m: Some(1.0),
                    rate_1h: None,
                    last_checked: None,
                })
            }
            .boxed()
        }
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
        let poller = Poller::new(api.clone(), store, Arc::new(Metrics::new("test")), t, 3, Duration::ZERO);
        let record = poller.run_cycle(false).await;
        assert_eq!((record.pairs, record.ok, record.failed), (8, 8, 0));
        assert_eq!(api.most.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_are_spread_over_the_jitter_window() {
        let api = Arc::new(Slow::default());
        let t = targets(4);
        let store = Arc::new(Store::new(&t));
        let poller = Poller::new(api.clone(), store, Arc::new(Metrics::new("test")), t, 4, Duration::from_secs(20));
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
            Arc::new(Metrics::new("test")),
            t,
            4,
            Duration::from_secs(20),
        );
        let began = tokio::time::Instant::now();
        poller.run_cycle(false).await;
        assert!(api.starts.lock().unwrap().iter().all(|s| *s == began));
    }
}
