//! The one place state lives: per target, the latest observation and the last poll's outcome.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::history::{History, Point};
use crate::model::{AuthorityState, FailureReason, Observation, Target};
use crate::smileid::PollError;

/// What we know of one target.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TargetStatus {
    /// The last observation a poll brought back, however old.
    pub observation: Option<Observation>,
    /// When a poll of this target last succeeded.
    pub last_success: Option<DateTime<Utc>>,
    /// The outcome of the latest poll.
    pub last_poll: Option<PollRecord>,
}

/// One poll's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct PollRecord {
    /// When it finished.
    pub at: DateTime<Utc>,
    /// Whether it brought back an observation.
    pub success: bool,
    /// Why not, as a bounded label value.
    #[serde(serialize_with = "reason_str")]
    pub reason: Option<FailureReason>,
    /// Why not, in words (never holding a secret).
    pub error: Option<String>,
}

fn reason_str<S: serde::Serializer>(r: &Option<FailureReason>, s: S) -> Result<S::Ok, S::Error> {
    match r {
        Some(r) => s.serialize_str(r.as_str()),
        None => s.serialize_none(),
    }
}

impl TargetStatus {
    /// Whether the last observation is recent enough to be shown as current.
    pub fn is_fresh(&self, now: DateTime<Utc>, max_age: Duration) -> bool {
        self.last_success.is_some_and(|t| (now - t).to_std().map_or(true, |age| age <= max_age))
    }

    /// The state to show: the observed one while fresh, `Unknown` otherwise.
    pub fn current_state(&self, now: DateTime<Utc>, max_age: Duration) -> AuthorityState {
        match &self.observation {
            Some(o) if self.is_fresh(now, max_age) => o.state,
            _ => AuthorityState::Unknown,
        }
    }
}

/// A finished poll cycle.
#[derive(Clone, Debug, Serialize)]
pub struct CycleRecord {
    /// When it started.
    pub started: DateTime<Utc>,
    /// When it finished.
    pub finished: DateTime<Utc>,
    /// Pairs polled.
    pub pairs: usize,
    /// Polls that succeeded.
    pub ok: usize,
    /// Polls that failed.
    pub failed: usize,
}

/// Thread-safe state of every target, shared by the poller (writer) and the server (reader).
#[derive(Debug, Default)]
pub struct Store {
    inner: RwLock<Inner>,
    /// Where every poll result is also appended, once attached.
    history: OnceLock<Arc<History>>,
}

#[derive(Debug, Default)]
struct Inner {
    targets: BTreeMap<Target, TargetStatus>,
    order: Vec<Target>,
    last_cycle: Option<CycleRecord>,
}

impl Store {
    /// A store watching `targets`.
    pub fn new(targets: &[Target]) -> Store {
        let store = Store::default();
        store.set_targets(targets);
        store
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A panic elsewhere must not take the exporter down: the data is still sound.
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the watched set, keeping what is known of targets that stay.
    pub fn set_targets(&self, targets: &[Target]) {
        let mut inner = self.write();
        let mut kept: BTreeMap<Target, TargetStatus> = BTreeMap::new();
        for t in targets {
            let status = inner.targets.remove(t).unwrap_or_default();
            kept.insert(t.clone(), status);
        }
        inner.targets = kept;
        inner.order = targets.to_vec();
    }

    /// Appends every poll result recorded from now on to `history`, and takes each
    /// watched pair's last observation from it (the state before a restart): shown while
    /// fresh, and the pair still counts as not yet polled for readiness.
    pub fn attach_history(&self, history: Arc<History>) {
        {
            let mut inner = self.write();
            for (t, s) in inner.targets.iter_mut() {
                if s.observation.is_none()
                    && let Some(p) = history.last_observed(t)
                {
                    s.observation = p.observation();
                    s.last_success = Some(p.time);
                }
            }
        }
        let _ = self.history.set(history);
    }

    /// The attached history.
    pub fn history(&self) -> Option<&Arc<History>> {
        self.history.get()
    }

    /// Records a successful poll.
    pub fn record_success(&self, target: &Target, observation: Observation, at: DateTime<Utc>) {
        let mut inner = self.write();
        if let Some(h) = self.history.get()
            && inner.targets.contains_key(target)
        {
            h.append(target, Point::observed(at, &observation));
        }
        if let Some(s) = inner.targets.get_mut(target) {
            s.observation = Some(observation);
            s.last_success = Some(at);
            s.last_poll = Some(PollRecord { at, success: true, reason: None, error: None });
        }
    }

    /// Records a failed poll; what was known before is kept.
    pub fn record_failure(&self, target: &Target, error: &PollError, at: DateTime<Utc>) {
        let mut inner = self.write();
        if let Some(h) = self.history.get()
            && inner.targets.contains_key(target)
        {
            h.append(target, Point::failed(at));
        }
        if let Some(s) = inner.targets.get_mut(target) {
            s.last_poll =
                Some(PollRecord { at, success: false, reason: Some(error.reason()), error: Some(error.to_string()) });
        }
    }

    /// Records a finished cycle.
    pub fn record_cycle(&self, cycle: CycleRecord) {
        self.write().last_cycle = Some(cycle);
    }

    /// The last finished cycle.
    pub fn last_cycle(&self) -> Option<CycleRecord> {
        self.read().last_cycle.clone()
    }

    /// Whether every watched pair has had a poll end, successful or not.
    pub fn every_pair_polled(&self) -> bool {
        self.read().targets.values().all(|s| s.last_poll.is_some())
    }

    /// Every watched target and its status, in configuration order.
    pub fn snapshot(&self) -> Vec<(Target, TargetStatus)> {
        let inner = self.read();
        inner.order.iter().filter_map(|t| inner.targets.get(t).map(|s| (t.clone(), s.clone()))).collect()
    }

    /// Calls `f` on every watched target and its status, in configuration order, under the
    /// read lock and without copying them (the scrape path).
    pub fn for_each(&self, mut f: impl FnMut(&Target, &TargetStatus)) {
        let inner = self.read();
        for t in &inner.order {
            if let Some(s) = inner.targets.get(t) {
                f(t, s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(c: &str, t: &str) -> Target {
        Target::new(c.parse().unwrap(), t.parse().unwrap())
    }

    fn online() -> Observation {
        Observation {
            state: AuthorityState::Online,
            unrecognized_status: None,
            rate_10m: Some(crate::model::Rate::ONE),
            rate_1h: crate::model::parse_rate("99%"),
            last_checked: None,
        }
    }

    #[test]
    fn failure_keeps_what_was_known_until_it_is_stale() {
        let t = target("NG", "BVN");
        let store = Store::new(std::slice::from_ref(&t));
        let t0 = Utc::now();
        let max = Duration::from_secs(1800);
        assert_eq!(store.snapshot()[0].1.current_state(t0, max), AuthorityState::Unknown);

        store.record_success(&t, online(), t0);
        let later = t0 + chrono::TimeDelta::minutes(10);
        store.record_failure(&t, &PollError::Timeout(Duration::from_secs(10)), later);
        let (_, s) = &store.snapshot()[0];
        assert_eq!(s.current_state(later, max), AuthorityState::Online);
        assert!(!s.last_poll.as_ref().unwrap().success);
        assert_eq!(s.last_poll.as_ref().unwrap().reason, Some(FailureReason::Timeout));

        let stale = t0 + chrono::TimeDelta::minutes(31);
        assert!(!s.is_fresh(stale, max));
        assert_eq!(s.current_state(stale, max), AuthorityState::Unknown);
        assert_eq!(s.observation.as_ref().unwrap().rate_10m, Some(crate::model::Rate::ONE));
    }

    #[test]
    fn set_targets_keeps_survivors_and_drops_the_rest() {
        let (a, b, c) = (target("NG", "BVN"), target("KE", "NATIONAL_ID"), target("GH", "GHANA_CARD"));
        let store = Store::new(&[a.clone(), b.clone()]);
        store.record_success(&a, online(), Utc::now());
        store.set_targets(&[c.clone(), a.clone()]);
        let snap = store.snapshot();
        assert_eq!(snap.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>(), vec![c, a]);
        assert!(snap[1].1.observation.is_some());
        assert!(snap[0].1.observation.is_none());
    }
}
