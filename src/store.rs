//! The one place each pair's state lives: the watched pairs, and per pair its latest
//! observation, its last poll, its poll counters and its [`Timeline`] (the runs of its
//! state, "since", and its last day of points). Every reader (metrics, pages, the JSON
//! APIs) takes a [`PairNow`] computed here, so a pair's state and "since" are computed
//! once, the same way for all of them.
//!
//! Every poll result is also appended to the [`History`] (the durable record); at start
//! and for a pair added later, the timelines are replayed from it, so a restart changes
//! neither state nor "since".

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use prometheus::{IntCounterVec, Opts};
use serde::Serialize;

use crate::history::events::Change;
use crate::history::timeline::{self, Cell, Run, Segment, Timeline, Uptime};
use crate::history::{History, Point};
use crate::model::{AuthorityState, FailureReason, Observation, PollError, Target, timestamp, to_millis};

/// The default of `poll.max_data_age`.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(1800);
/// No provider check happened before this (2000-01-01T00:00:00Z).
const EARLIEST: DateTime<Utc> = DateTime::from_timestamp(946_684_800, 0).expect("a valid time");

/// One poll's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct PollRecord {
    /// When it finished.
    #[serde(with = "timestamp")]
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

/// A finished poll cycle.
#[derive(Clone, Debug, Serialize)]
pub struct CycleRecord {
    /// When it started.
    #[serde(with = "timestamp")]
    pub started: DateTime<Utc>,
    /// When it finished.
    #[serde(with = "timestamp")]
    pub finished: DateTime<Utc>,
    /// Pairs polled.
    pub pairs: usize,
    /// Polls that succeeded.
    pub ok: usize,
    /// Polls that failed.
    pub failed: usize,
}

/// A pair's poll counters, since this process started watching it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Polls that ended.
    pub polls: u64,
    /// Successful polls whose status the exporter did not recognise.
    pub unrecognized: u64,
    /// Failed polls, by [`FailureReason::ALL`] index.
    pub failures: [u64; FailureReason::ALL.len()],
}

/// What every reader shows of one pair at one moment, computed by [`Store`] once.
#[derive(Clone, Debug, Serialize)]
pub struct PairNow {
    /// The pair.
    #[serde(flatten)]
    pub target: Target,
    /// The state shown: the observed one while fresh, `unknown` otherwise.
    pub state: AuthorityState,
    /// When the shown state began: for an observed state, the provider's time of the first
    /// window of its run (the same on every replica and across restarts); for unknown after
    /// fresh data, when that data went stale; none before any data.
    #[serde(with = "timestamp::option")]
    pub since: Option<DateTime<Utc>>,
    /// Whether the last observation is recent enough to be shown as current.
    pub fresh: bool,
    /// The last observation a poll brought back, however old.
    pub observation: Option<Observation>,
    /// When a poll of this pair last succeeded.
    #[serde(with = "timestamp::option")]
    pub last_success: Option<DateTime<Utc>>,
    /// The latest poll's outcome.
    pub last_poll: Option<PollRecord>,
    /// Its counters.
    #[serde(skip)]
    pub counts: Counts,
}

impl PairNow {
    /// The latest observation, while fresh.
    pub fn fresh_observation(&self) -> Option<&Observation> {
        self.observation.as_ref().filter(|_| self.fresh)
    }
}

/// What the status page shows of one pair beyond [`PairNow`].
#[derive(Clone, Debug)]
pub struct PairHistory {
    /// The pair now.
    pub now: PairNow,
    /// The cells of the last day, the last one holding now.
    pub cells: Vec<Cell>,
    /// Uptime over each asked range, ending now.
    pub uptime: Vec<Uptime>,
    /// Changes of the observed state over the last 24 hours (a stretch of unknown between
    /// two runs of one state is not a change).
    pub changes_24h: usize,
}

/// A pair's record.
#[derive(Debug, Default)]
struct Pair {
    observation: Option<Observation>,
    last_success: Option<DateTime<Utc>>,
    last_poll: Option<PollRecord>,
    counts: Counts,
    timeline: Timeline,
}

/// Thread-safe state of every watched pair: the poller writes, every reader takes views.
#[derive(Debug)]
pub struct Store {
    inner: RwLock<Inner>,
    /// Where every poll result is also appended, once attached.
    history: OnceLock<Arc<History>>,
    /// `poll.max_data_age` in milliseconds: how long an observation is shown as current.
    max_age_ms: AtomicU64,
    /// Latched once every pair has had a poll end.
    ready: AtomicBool,
    /// `last_checked` values out of bounds, by bound (`future`, `past`).
    clamped: IntCounterVec,
}

#[derive(Debug, Default)]
struct Inner {
    pairs: BTreeMap<Target, Pair>,
    order: Vec<Target>,
    last_cycle: Option<CycleRecord>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            inner: RwLock::default(),
            history: OnceLock::new(),
            max_age_ms: AtomicU64::new(DEFAULT_MAX_AGE.as_millis() as u64),
            ready: AtomicBool::new(false),
            clamped: {
                let c = IntCounterVec::new(
                    Opts::new(
                        "idauth_provider_last_checked_clamped_total",
                        "Observations whose last_checked could not be true, taken as the poll time, by bound: future (later than the poll that brought it: a provider clock ahead of ours), past (before 2000: a zero or garbled time).",
                    ),
                    &["bound"],
                )
                .expect("valid metric");
                for bound in ["future", "past"] {
                    c.with_label_values(&[bound]);
                }
                c
            },
        }
    }
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

    /// The store's own series (served by the metrics registry).
    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![Box::new(self.clamped.clone())]
    }

    /// Sets `poll.max_data_age`: how long an observation is shown as current.
    pub fn set_max_age(&self, max_age: Duration) {
        self.max_age_ms.store(max_age.as_millis() as u64, Ordering::Relaxed);
    }

    /// `poll.max_data_age`.
    pub fn max_age(&self) -> Duration {
        Duration::from_millis(self.max_age_ms.load(Ordering::Relaxed))
    }

    /// How long one observation's state stands for in the timelines.
    fn valid(&self) -> TimeDelta {
        timeline::valid_for(self.max_age())
    }

    /// Replaces the watched set, keeping what is known of pairs that stay; a pair that is
    /// new here gets its timeline from the history. Returns the pairs added.
    pub fn set_targets(&self, targets: &[Target]) -> Vec<Target> {
        let added: Vec<Target> = {
            let inner = self.read();
            targets.iter().filter(|t| !inner.pairs.contains_key(*t)).cloned().collect()
        };
        // Read outside the lock: a month of one pair is one short range read.
        let valid = self.valid();
        let replayed: Vec<(Target, Pair)> = added
            .iter()
            .map(|t| {
                let mut pair = Pair::default();
                if let Some(h) = self.history.get() {
                    match h.points(t, DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC) {
                        Ok(points) => points.iter().for_each(|p| pair.replay(p, valid)),
                        Err(e) => tracing::debug!(pair = %t, error = %e, "no history replayed for a new pair"),
                    }
                }
                (t.clone(), pair)
            })
            .collect();
        let mut inner = self.write();
        let mut fresh: BTreeMap<Target, Pair> = replayed.into_iter().collect();
        let mut kept: BTreeMap<Target, Pair> = BTreeMap::new();
        for t in targets {
            kept.insert(t.clone(), inner.pairs.remove(t).or_else(|| fresh.remove(t)).unwrap_or_default());
        }
        inner.pairs = kept;
        inner.order = targets.to_vec();
        added
    }

    /// The watched pairs, in configuration order.
    pub fn targets(&self) -> Vec<Target> {
        self.read().order.clone()
    }

    /// Appends every poll result recorded from now on to `history`, and replays into each
    /// watched pair what the history holds within retention as of `now`: its last
    /// observation (shown while fresh; the pair still counts as not yet polled for
    /// readiness), its runs and "since", and its last day of points. The replay is built
    /// aside and put in place at the end, so scrapes and polls go on meanwhile (a month of
    /// 10,000 pairs takes tens of seconds); results recorded meanwhile follow it.
    pub fn attach_history(&self, history: Arc<History>, now: DateTime<Utc>) {
        let valid = self.valid();
        let _ = self.history.set(history.clone());
        let mut replayed: BTreeMap<Target, Pair> = self.targets().into_iter().map(|t| (t, Pair::default())).collect();
        history.replay(now, |t, p| {
            if let Some(pair) = replayed.get_mut(t) {
                pair.replay(&p, valid);
            }
        });
        {
            let mut inner = self.write();
            for (t, mut pair) in replayed {
                // A pair removed meanwhile stays removed.
                let Some(live) = inner.pairs.get_mut(&t) else { continue };
                for p in live.timeline.recent(DateTime::<Utc>::MIN_UTC) {
                    pair.replay(&p, valid);
                }
                pair.counts = live.counts;
                pair.last_poll = live.last_poll.take();
                pair.timeline.shrink_to_fit();
                *live = pair;
            }
        }
        // The replay's buffers go back to the system rather than staying with the allocator.
        crate::allocator::release_free_memory();
    }

    /// The attached history.
    pub fn history(&self) -> Option<&Arc<History>> {
        self.history.get()
    }

    /// Records a successful poll that finished at `at`.
    pub fn record_success(&self, target: &Target, mut observation: Observation, at: DateTime<Utc>) {
        let at = to_millis(at);
        // One impossible timestamp must not move "since", order the rules' observations, or
        // hide how old the provider's data is: a time after the poll is the poll's; one
        // before 2000 (a zero, a garbled field) is no time at all. An old but possible one is
        // kept, so that stale provider data stays visible as such.
        if let Some(checked) = observation.last_checked {
            let bound = if checked > at {
                Some(("future", "later than the poll that brought it"))
            } else if checked < EARLIEST {
                Some(("past", "before 2000"))
            } else {
                None
            };
            if let Some((bound, why)) = bound {
                self.clamped.with_label_values(&[bound]).inc();
                tracing::warn!(pair = %target, last_checked = %timestamp::format(&checked), poll = %timestamp::format(&at),
                    "the provider's last_checked is {why}; taking the poll time");
                observation.last_checked = Some(at);
            }
        }
        let point = Point::observed(at, &observation);
        let valid = self.valid();
        let mut inner = self.write();
        let Some(pair) = inner.pairs.get_mut(target) else { return };
        let before = pair.timeline.last_known();
        pair.timeline.observe(&point, valid);
        if let Some(h) = self.history.get() {
            match changed(before, pair.timeline.run()) {
                Some((from, run)) => {
                    let change = Change {
                        seq: 0,
                        id: Change::id_for(target, run.state, run.since),
                        target: target.clone(),
                        from,
                        to: run.state,
                        since: run.since,
                        detected: at,
                        rate_10m: point.rate_10m,
                        rate_1h: point.rate_1h,
                        last_checked: point.last_checked,
                    };
                    tracing::info!(pair = %target, from = from.as_str(), to = run.state.as_str(),
                        since = %timestamp::format(&run.since), "the authority's state changed");
                    h.append_change(target, point.clone(), change);
                }
                None => h.append(target, point.clone()),
            }
            pair.timeline.forget_before(at - h.retention());
        }
        pair.counts.polls += 1;
        pair.counts.unrecognized += u64::from(observation.unrecognized_status.is_some());
        pair.observation = Some(observation);
        pair.last_success = Some(at);
        pair.last_poll = Some(PollRecord { at, success: true, reason: None, error: None });
    }

    /// Records a failed poll; what was known before is kept.
    pub fn record_failure(&self, target: &Target, error: &PollError, at: DateTime<Utc>) {
        let at = to_millis(at);
        let point = Point::failed(at);
        let valid = self.valid();
        let mut inner = self.write();
        let Some(pair) = inner.pairs.get_mut(target) else { return };
        if let Some(h) = self.history.get() {
            h.append(target, point.clone());
        }
        pair.timeline.observe(&point, valid);
        pair.counts.polls += 1;
        let reason = error.reason();
        let i = FailureReason::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        pair.counts.failures[i] += 1;
        pair.last_poll = Some(PollRecord { at, success: false, reason: Some(reason), error: Some(error.to_string()) });
    }

    /// Records a finished cycle.
    pub fn record_cycle(&self, cycle: CycleRecord) {
        self.write().last_cycle = Some(cycle);
    }

    /// The last finished cycle.
    pub fn last_cycle(&self) -> Option<CycleRecord> {
        self.read().last_cycle.clone()
    }

    /// Ready once every watched pair has had a poll end, successful or not; once ready,
    /// always ready (a reload's new pairs are shown as unknown until polled).
    pub fn is_ready(&self) -> bool {
        if self.ready.load(Ordering::Acquire) {
            return true;
        }
        let ready = self.read().pairs.values().all(|p| p.last_poll.is_some());
        if ready {
            self.ready.store(true, Ordering::Release);
        }
        ready
    }

    /// Every watched pair as of `now`, in configuration order.
    pub fn now(&self, now: DateTime<Utc>) -> Vec<PairNow> {
        let (max_age, inner) = (self.max_age(), self.read());
        inner.order.iter().filter_map(|t| Some(inner.pairs.get(t)?.now(t, now, max_age))).collect()
    }

    /// Calls `f` on every watched pair as of `now`, in configuration order, under the read
    /// lock (the scrape path: nothing is collected).
    pub fn for_each_now(&self, now: DateTime<Utc>, mut f: impl FnMut(PairNow)) {
        let (max_age, inner) = (self.max_age(), self.read());
        for t in &inner.order {
            if let Some(p) = inner.pairs.get(t) {
                f(p.now(t, now, max_age));
            }
        }
    }

    /// One watched pair as of `now`.
    pub fn pair_now(&self, target: &Target, now: DateTime<Utc>) -> Option<PairNow> {
        let (max_age, inner) = (self.max_age(), self.read());
        Some(inner.pairs.get(target)?.now(target, now, max_age))
    }

    /// Every watched pair with its last `cells` cells and its uptime over `ranges`, as of
    /// `now` (the status page).
    pub fn histories(&self, now: DateTime<Utc>, cells: usize, ranges: &[TimeDelta]) -> Vec<PairHistory> {
        let (max_age, valid, inner) = (self.max_age(), self.valid(), self.read());
        inner
            .order
            .iter()
            .filter_map(|t| {
                let p = inner.pairs.get(t)?;
                let day = p.timeline.segments(now - TimeDelta::hours(24), now, valid);
                Some(PairHistory {
                    now: p.now(t, now, max_age),
                    cells: p.timeline.cells(now, cells, valid),
                    uptime: ranges
                        .iter()
                        .map(|r| timeline::uptime_of(&p.timeline.segments(now - *r, now, valid)))
                        .collect(),
                    changes_24h: changes(&day),
                })
            })
            .collect()
    }

    /// `target`'s shown-state segments over `[from, now)`.
    pub fn segments(&self, target: &Target, from: DateTime<Utc>, now: DateTime<Utc>) -> Option<Vec<Segment>> {
        let (valid, inner) = (self.valid(), self.read());
        Some(inner.pairs.get(target)?.timeline.segments(from, now, valid))
    }

    /// `target`'s points from `from` to `to` that the store holds whole (the last day), and
    /// from when it holds them.
    pub fn recent_points(
        &self,
        target: &Target,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Option<(Vec<Point>, Option<DateTime<Utc>>)> {
        let inner = self.read();
        let timeline = &inner.pairs.get(target)?.timeline;
        let points = timeline.recent(from).into_iter().take_while(|p| p.time < to).collect();
        Some((points, timeline.recent_since()))
    }
}

/// The change a poll made, if it began a run of a known state other than the last known
/// one: the state it changed from, and the new run. The first state ever learnt is not a
/// change (there is nothing it changed from).
fn changed(before: Option<AuthorityState>, run: Option<&Run>) -> Option<(AuthorityState, Run)> {
    let (from, run) = (before?, *run?);
    (run.state != AuthorityState::Unknown && run.state != from).then_some((from, run))
}

/// How many times the state changed between consecutive known segments.
fn changes(segments: &[Segment]) -> usize {
    let known: Vec<AuthorityState> =
        segments.iter().map(|s| s.state).filter(|s| *s != AuthorityState::Unknown).collect();
    known.windows(2).filter(|w| w[0] != w[1]).count()
}

impl Pair {
    /// Takes one point of the history (a restart, or a pair added again).
    fn replay(&mut self, p: &Point, valid: TimeDelta) {
        self.timeline.observe(p, valid);
        if p.ok && self.last_success.is_none_or(|t| t <= p.time) {
            self.observation = p.observation();
            self.last_success = Some(p.time);
        }
    }

    /// The pair as of `now`: the one definition of its shown state and "since".
    fn now(&self, target: &Target, now: DateTime<Utc>, max_age: Duration) -> PairNow {
        let fresh = self.last_success.is_some_and(|t| (now - t).to_std().map_or(true, |age| age <= max_age));
        let (state, since) = match (&self.observation, self.last_success) {
            (Some(o), Some(_)) if fresh => (o.state, self.timeline.run().map(|r| r.since)),
            (_, Some(t)) => (AuthorityState::Unknown, TimeDelta::from_std(max_age).ok().map(|age| t + age)),
            _ => (AuthorityState::Unknown, None),
        };
        PairNow {
            target: target.clone(),
            state,
            since,
            fresh,
            observation: self.observation.clone(),
            last_success: self.last_success,
            last_poll: self.last_poll.clone(),
            counts: self.counts,
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

    fn seen(state: AuthorityState, checked: DateTime<Utc>) -> Observation {
        Observation {
            state,
            unrecognized_status: None,
            rate_10m: Some(crate::model::Rate::ONE),
            rate_1h: crate::model::parse_rate("99%"),
            last_checked: Some(checked),
        }
    }

    #[test]
    fn failure_keeps_what_was_known_until_it_is_stale() {
        let t = target("NG", "BVN");
        let store = Store::new(std::slice::from_ref(&t));
        let t0 = at("2026-01-01T00:01:00Z");
        assert_eq!(store.now(t0)[0].state, AuthorityState::Unknown);
        assert_eq!(store.now(t0)[0].since, None, "no data, no since");

        store.record_success(&t, seen(AuthorityState::Online, at("2026-01-01T00:00:00Z")), t0);
        let later = t0 + TimeDelta::minutes(10);
        store.record_failure(&t, &PollError::Timeout(Duration::from_secs(10)), later);
        let s = &store.now(later)[0];
        assert_eq!((s.state, s.since), (AuthorityState::Online, Some(at("2026-01-01T00:00:00Z"))));
        assert!(!s.last_poll.as_ref().unwrap().success);
        assert_eq!(s.last_poll.as_ref().unwrap().reason, Some(FailureReason::Timeout));
        assert_eq!(s.counts.polls, 2);

        // Stale after max_data_age (30 min): unknown since the data went stale.
        let stale = t0 + TimeDelta::minutes(31);
        let s = &store.now(stale)[0];
        assert!(!s.fresh);
        assert_eq!((s.state, s.since), (AuthorityState::Unknown, Some(t0 + TimeDelta::minutes(30))));
        assert_eq!(s.observation.as_ref().unwrap().rate_10m, Some(crate::model::Rate::ONE));
    }

    /// "Since" is the provider's time of the run's first window: two stores fed the same
    /// windows at different poll times agree; a provider clock ahead of ours is clamped.
    #[test]
    fn since_is_the_providers_time_of_the_first_window_whatever_the_poll_time() {
        let t = target("NG", "NIN_V2");
        let (a, b) = (Store::new(std::slice::from_ref(&t)), Store::new(std::slice::from_ref(&t)));
        for (i, state) in [AuthorityState::Online, AuthorityState::Offline, AuthorityState::Offline].iter().enumerate()
        {
            let window = at("2026-01-01T00:00:00Z") + TimeDelta::minutes(10 * i as i64);
            a.record_success(&t, seen(*state, window), window + TimeDelta::seconds(61));
            b.record_success(&t, seen(*state, window), window + TimeDelta::seconds(175));
        }
        let now = at("2026-01-01T00:25:00Z");
        assert_eq!(a.now(now)[0].since, Some(at("2026-01-01T00:10:00Z")));
        assert_eq!(a.now(now)[0].since, b.now(now)[0].since);

        let c = Store::new(std::slice::from_ref(&t));
        let poll = at("2026-01-01T00:01:00.250Z");
        c.record_success(&t, seen(AuthorityState::Offline, at("2026-01-01T01:00:00Z")), poll);
        let s = &c.now(poll)[0];
        assert_eq!(s.since, Some(poll));
        assert_eq!(s.observation.as_ref().unwrap().last_checked, Some(poll));
        assert_eq!(c.clamped.with_label_values(&["future"]).get(), 1);
        // Dated 2100: the same. Dated 1970 (a zero): no time at all, the poll's. A day old:
        // kept, the provider's data is that old.
        let later = poll + TimeDelta::minutes(10);
        c.record_success(&t, seen(AuthorityState::Online, at("2100-01-01T00:00:00Z")), later);
        assert_eq!(c.now(later)[0].since, Some(later));
        let zero = later + TimeDelta::minutes(10);
        c.record_success(&t, seen(AuthorityState::Offline, DateTime::UNIX_EPOCH), zero);
        assert_eq!(c.now(zero)[0].observation.as_ref().unwrap().last_checked, Some(zero));
        assert_eq!(
            (c.clamped.with_label_values(&["future"]).get(), c.clamped.with_label_values(&["past"]).get()),
            (2, 1)
        );
        let old = zero + TimeDelta::minutes(10);
        c.record_success(&t, seen(AuthorityState::Offline, old - TimeDelta::days(1)), old);
        assert_eq!(c.now(old)[0].observation.as_ref().unwrap().last_checked, Some(old - TimeDelta::days(1)));
        assert_eq!(c.clamped.with_label_values(&["past"]).get(), 1);
    }

    #[test]
    fn set_targets_keeps_survivors_and_drops_the_rest() {
        let (a, b, c) = (target("NG", "BVN"), target("KE", "NATIONAL_ID"), target("GH", "GHANA_CARD"));
        let store = Store::new(&[a.clone(), b.clone()]);
        let now = Utc::now();
        store.record_success(&a, seen(AuthorityState::Online, now), now);
        assert_eq!(store.set_targets(&[c.clone(), a.clone()]), vec![c.clone()]);
        let snap = store.now(now);
        assert_eq!(snap.iter().map(|p| p.target.clone()).collect::<Vec<_>>(), vec![c, a]);
        assert!(snap[1].observation.is_some() && snap[1].counts.polls == 1);
        assert!(snap[0].observation.is_none() && snap[0].counts.polls == 0);
        // A poll of a pair no longer watched ends later: nothing of it is kept.
        store.record_failure(&b, &PollError::Timeout(Duration::from_secs(1)), now);
        assert!(store.pair_now(&b, now).is_none());
    }

    #[test]
    fn changes_count_transitions_between_known_states_only() {
        let seg = |m: i64, state| Segment {
            start: at("2026-01-01T00:00:00Z") + TimeDelta::minutes(m),
            end: at("2026-01-01T00:00:00Z") + TimeDelta::minutes(m + 10),
            state,
        };
        use AuthorityState::{Offline, Online, Unknown};
        assert_eq!(changes(&[seg(0, Online), seg(10, Unknown), seg(20, Online)]), 0);
        assert_eq!(changes(&[seg(0, Online), seg(10, Offline), seg(20, Unknown), seg(30, Online)]), 2);
    }
}
