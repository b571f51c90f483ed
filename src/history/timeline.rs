//! What a list of poll results means over time: the shown state's timeline, "since",
//! uptime and the 10-minute cells of the status page. Pure functions over points, so the
//! arithmetic is tested against hand-computed histories, and [`Timeline`], the same
//! arithmetic kept up to date one point at a time, which is what the store holds for each
//! pair: its memory grows with the changes of state, not with the polls.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use std::collections::VecDeque;

use super::{Packed, Point, nanos};
use crate::model::AuthorityState;

/// One stretch of time in one shown state.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Segment {
    /// Its start.
    pub start: DateTime<Utc>,
    /// Its end (exclusive).
    pub end: DateTime<Utc>,
    /// The state shown during it.
    pub state: AuthorityState,
}

/// How long a successful poll's state stands for: `max_data_age`, as the live page and
/// metrics judge it, but at least the provider's own 10-minute window plus a minute,
/// since the rates describe that whole window (and the demo's history is seeded at that
/// spacing).
pub fn valid_for(max_data_age: Duration) -> TimeDelta {
    TimeDelta::from_std(max_data_age.max(Duration::from_secs(660))).unwrap_or(TimeDelta::MAX)
}

/// The shown state over `[from, to)`, as the live page would have shown it: each successful
/// poll's state holds until the next successful poll or until it is `valid_for` old, after
/// which the state is unknown (an outage of the exporter, a restart, failing polls).
/// `points` are in time order; failed polls do not change the shown state.
pub fn segments(points: &[Point], from: DateTime<Utc>, to: DateTime<Utc>, valid: TimeDelta) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    let mut push = |start: DateTime<Utc>, end: DateTime<Utc>, state| {
        let (start, end) = (start.max(from), end.min(to));
        if start >= end {
            return;
        }
        match out.last_mut() {
            Some(last) if last.state == state && last.end == start => last.end = end,
            _ => out.push(Segment { start, end, state }),
        }
    };
    let ok: Vec<&Point> = points.iter().filter(|p| p.ok).collect();
    let mut cursor = from;
    for (i, p) in ok.iter().enumerate() {
        let next = ok.get(i + 1).map_or(to, |n| n.time);
        let end = next.min(p.time + valid);
        if end <= from {
            continue;
        }
        if p.time > cursor {
            push(cursor, p.time, AuthorityState::Unknown);
        }
        push(p.time, end, p.state);
        cursor = cursor.max(end);
        if cursor >= to {
            break;
        }
    }
    push(cursor, to, AuthorityState::Unknown);
    out
}

/// Time spent in each state over a range, and the share of the known time online.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Uptime {
    /// Seconds online.
    pub online_seconds: i64,
    /// Seconds in interruption.
    pub interruption_seconds: i64,
    /// Seconds offline.
    pub offline_seconds: i64,
    /// Seconds unknown: no fresh data (exporter down, polls failing, before the first poll).
    pub unknown_seconds: i64,
    /// Online time over known time (online + interruption + offline), 0-1; none when
    /// nothing is known. Interruption counts as not up.
    pub ratio: Option<f64>,
}

/// The uptime over `[from, to)`.
pub fn uptime(points: &[Point], from: DateTime<Utc>, to: DateTime<Utc>, valid: TimeDelta) -> Uptime {
    uptime_of(&segments(points, from, to, valid))
}

/// The uptime of the time `segments` cover.
pub fn uptime_of(segments: &[Segment]) -> Uptime {
    let mut u = Uptime::default();
    for s in segments {
        let secs = (s.end - s.start).num_seconds();
        match s.state {
            AuthorityState::Online => u.online_seconds += secs,
            AuthorityState::Interruption => u.interruption_seconds += secs,
            AuthorityState::Offline => u.offline_seconds += secs,
            AuthorityState::Unknown => u.unknown_seconds += secs,
        }
    }
    let known = u.online_seconds + u.interruption_seconds + u.offline_seconds;
    u.ratio = (known > 0).then(|| u.online_seconds as f64 / known as f64);
    u
}

/// The provider's time of a successful poll's window: its `last_checked`, never later than
/// the poll that brought it (a provider clock ahead of ours cannot move "since" into the
/// future), or the poll time where the provider gave none.
pub fn provider_time(p: &Point) -> DateTime<Utc> {
    p.last_checked.map_or(p.time, |t| t.min(p.time))
}

/// When the current run of the observed state began, as of the last point: the provider
/// time of the first window of that run (see [`Timeline`]). A run ends when the state
/// changes or when nothing fresh was observed for longer than `valid`.
pub fn since(points: &[Point], valid: TimeDelta) -> Option<(AuthorityState, DateTime<Utc>)> {
    let mut timeline = Timeline::default();
    for p in points {
        timeline.observe(p, valid);
    }
    timeline.run().map(|r| (r.state, r.since))
}

/// The length of one status-page cell.
pub const CELL: TimeDelta = TimeDelta::minutes(10);

/// One cell of the status page's bar.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cell {
    /// The window's start.
    pub start: DateTime<Utc>,
    /// The worst state shown in it (offline, then interruption, then online); unknown when
    /// nothing was known.
    pub state: AuthorityState,
    /// The lowest 10-minute rate polled in it.
    pub min_rate_10m: Option<f64>,
    /// The lowest 1-hour rate polled in it.
    pub min_rate_1h: Option<f64>,
}

fn severity(s: AuthorityState) -> u8 {
    match s {
        AuthorityState::Unknown => 0,
        AuthorityState::Online => 1,
        AuthorityState::Interruption => 2,
        AuthorityState::Offline => 3,
    }
}

/// Where `n` cells of 10 minutes, the last one holding `now`, start and end.
pub fn cell_range(now: DateTime<Utc>, n: usize) -> (DateTime<Utc>, DateTime<Utc>) {
    let step = CELL.num_seconds();
    let last_start = DateTime::<Utc>::from_timestamp(now.timestamp().div_euclid(step) * step, 0).unwrap_or(now);
    (last_start - CELL * (n.saturating_sub(1) as i32), last_start + CELL)
}

/// `n` cells of 10 minutes, the last one holding `now`.
pub fn cells(points: &[Point], now: DateTime<Utc>, n: usize, valid: TimeDelta) -> Vec<Cell> {
    let (first, end) = cell_range(now, n);
    cells_of(&segments(points, first, end.min(now.max(first)), valid), points, now, n)
}

/// The cells of [`cells`] from the shown state's `segments` over them and the `points`
/// polled in them (for the lowest rates).
pub fn cells_of(segments: &[Segment], points: &[Point], now: DateTime<Utc>, n: usize) -> Vec<Cell> {
    let step = CELL.num_seconds();
    let (first, end) = cell_range(now, n);
    let mut cells: Vec<Cell> = (0..n)
        .map(|i| Cell {
            start: first + CELL * i as i32,
            state: AuthorityState::Unknown,
            min_rate_10m: None,
            min_rate_1h: None,
        })
        .collect();
    let index = |t: DateTime<Utc>| ((t - first).num_seconds().div_euclid(step)) as usize;
    for s in segments {
        if s.state == AuthorityState::Unknown || s.end <= first || s.start >= end {
            continue;
        }
        let (a, b) = (index(s.start.max(first)), index(s.end.min(end) - TimeDelta::milliseconds(1)));
        for c in cells.iter_mut().take(b.min(n - 1) + 1).skip(a) {
            if severity(s.state) > severity(c.state) {
                c.state = s.state;
            }
        }
    }
    let lower = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    for p in points.iter().filter(|p| p.ok && p.time >= first && p.time < end) {
        let c = &mut cells[index(p.time).min(n - 1)];
        c.min_rate_10m = lower(c.min_rate_10m, p.rate_10m);
        c.min_rate_1h = lower(c.min_rate_1h, p.rate_1h);
    }
    cells
}

/// The current run of a pair's observed state: the same state in every successful poll,
/// none of them further apart than the state stays valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// The state observed.
    pub state: AuthorityState,
    /// "Since": the provider time ([`provider_time`]) of the run's first window. Replicas
    /// that saw the run begin agree on it, and a restart replays it from the store.
    pub since: DateTime<Utc>,
    /// The poll that first observed it.
    pub start: DateTime<Utc>,
    /// The latest poll that observed it.
    pub last: DateTime<Utc>,
}

/// How far back a [`Timeline`] keeps whole points: the status page's 24 hours of cells,
/// and a cell more.
pub const RECENT: TimeDelta = TimeDelta::minutes(24 * 60 + 10);

/// A finished run, in poll time (Unix milliseconds): 24 bytes where a [`Segment`] takes 32.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: i64,
    end: i64,
    state: AuthorityState,
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// One pair's timeline, kept up to date one poll result at a time: the finished runs of
/// its observed state (as far back as retention), the current run, and the points of the
/// last [`RECENT`]. It answers what [`segments`], [`since`], [`uptime`] and [`cells`] answer
/// over the same points, without keeping them: a month of a steady pair is a few runs.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    spans: VecDeque<Span>,
    run: Option<Run>,
    recent: VecDeque<Packed>,
}

impl Timeline {
    /// Takes the next poll result (in time order); a failed poll changes no run.
    pub fn observe(&mut self, p: &Point, valid: TimeDelta) {
        // Out with what ages out first, so that a full queue takes the new point in the
        // room of an old one rather than growing.
        let packed = Packed::new(p);
        // The same poll twice (a replay that met a result recorded during it) counts once.
        let at = self.recent.partition_point(|x| x.time < packed.time);
        if self.recent.get(at).is_some_and(|x| x.time == packed.time) {
            return;
        }
        let newest = self.recent.back().map_or(packed.time, |n| n.time.max(packed.time));
        let cutoff = newest.saturating_sub(RECENT.num_nanoseconds().unwrap_or(i64::MAX));
        while self.recent.front().is_some_and(|x| x.time < cutoff) {
            self.recent.pop_front();
        }
        if packed.time >= cutoff {
            super::push_sorted(&mut self.recent, packed);
        }
        if !p.ok {
            return;
        }
        match &mut self.run {
            Some(r) if p.time < r.last => {}
            Some(r) if r.state == p.state && p.time - r.last <= valid => r.last = p.time,
            _ => {
                if let Some(r) = self.run.take() {
                    let end = (r.last + valid).min(p.time);
                    self.spans.push_back(Span { start: millis(r.start), end: millis(end), state: r.state });
                }
                self.run = Some(Run { state: p.state, since: provider_time(p), start: p.time, last: p.time });
            }
        }
    }

    /// Gives back the room its queues grew into (after a replay, which grows them a point
    /// at a time): from then on each new point takes the place of one that ages out.
    pub fn shrink_to_fit(&mut self) {
        self.recent.shrink_to_fit();
        self.spans.shrink_to_fit();
    }

    /// The current run, if any poll ever succeeded.
    pub fn run(&self) -> Option<&Run> {
        self.run.as_ref()
    }

    /// The state of the latest run that was not unknown: what a change is a change from
    /// (a stretch the provider called unknown between two runs of one state is no change).
    pub fn last_known(&self) -> Option<AuthorityState> {
        let known = |s: &AuthorityState| *s != AuthorityState::Unknown;
        self.run.map(|r| r.state).filter(known).or_else(|| self.spans.iter().rev().map(|s| s.state).find(known))
    }

    /// Forgets the runs that ended before `cutoff` (retention).
    pub fn forget_before(&mut self, cutoff: DateTime<Utc>) {
        let cutoff = millis(cutoff);
        while self.spans.front().is_some_and(|s| s.end < cutoff) {
            self.spans.pop_front();
        }
        if self.spans.len() * 4 < self.spans.capacity() {
            self.spans.shrink_to_fit();
        }
    }

    /// The shown state over `[from, to)`, as [`segments`] gives it for the same points.
    pub fn segments(&self, from: DateTime<Utc>, to: DateTime<Utc>, valid: TimeDelta) -> Vec<Segment> {
        let mut out: Vec<Segment> = Vec::new();
        // Adjacent stretches of one state are one segment, as in [`segments`]: a provider
        // that says "unknown" right after a gap without data is one unknown stretch.
        let mut add = |start: DateTime<Utc>, end: DateTime<Utc>, state| match out.last_mut() {
            Some(last) if last.state == state && last.end == start => last.end = end,
            _ => out.push(Segment { start, end, state }),
        };
        let mut cursor = from;
        let mut push = |start: DateTime<Utc>, end: DateTime<Utc>, state, cursor: &mut DateTime<Utc>| {
            let (start, end) = (start.max(*cursor), end.min(to));
            if start >= end {
                return;
            }
            if start > *cursor {
                add(*cursor, start, AuthorityState::Unknown);
            }
            add(start, end, state);
            *cursor = end;
        };
        let first = self.spans.partition_point(|s| s.end <= millis(from));
        for s in self.spans.range(first..) {
            if from_millis(s.start) >= to {
                break;
            }
            push(from_millis(s.start), from_millis(s.end), s.state, &mut cursor);
        }
        if let Some(r) = &self.run {
            push(r.start, r.last + valid, r.state, &mut cursor);
        }
        if cursor < to {
            add(cursor, to, AuthorityState::Unknown);
        }
        out
    }

    /// The points of the last [`RECENT`] from `from` on, in time order.
    pub fn recent(&self, from: DateTime<Utc>) -> Vec<Point> {
        let from = nanos(from);
        let start = self.recent.partition_point(|p| p.time < from);
        self.recent.range(start..).map(Packed::unpack).collect()
    }

    /// The time of the oldest point kept whole.
    pub fn recent_since(&self) -> Option<DateTime<Utc>> {
        self.recent.front().map(|p| DateTime::from_timestamp_nanos(p.time))
    }

    /// The status page's `n` cells up to `now`.
    pub fn cells(&self, now: DateTime<Utc>, n: usize, valid: TimeDelta) -> Vec<Cell> {
        let (first, end) = cell_range(now, n);
        let segments = self.segments(first, end.min(now.max(first)), valid);
        cells_of(&segments, &self.recent(first), now, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: TimeDelta = TimeDelta::minutes(15);

    fn t(h: i64, m: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + h * 3600 + m * 60, 0).unwrap()
    }

    fn ok(at: DateTime<Utc>, state: AuthorityState, rate: f64) -> Point {
        Point { time: at, ok: true, state, rate_10m: Some(rate), rate_1h: Some(rate), last_checked: None }
    }

    use AuthorityState::{Interruption, Offline, Online, Unknown};

    #[test]
    fn gaps_and_restarts_are_unknown_and_leave_the_ratio_alone() {
        // 00:00 online, 00:10 offline, 00:20 online; the exporter is down from 00:35 (the
        // last state is valid 15 min) until a restart at 01:00; 01:10 interruption.
        let points = [
            ok(t(0, 0), Online, 1.0),
            ok(t(0, 10), Offline, 0.2),
            ok(t(0, 20), Online, 1.0),
            ok(t(1, 0), Online, 1.0),
            ok(t(1, 10), Interruption, 0.8),
        ];
        let segs = segments(&points, t(0, 0), t(1, 20), VALID);
        let expected = [
            (t(0, 0), t(0, 10), Online),
            (t(0, 10), t(0, 20), Offline),
            (t(0, 20), t(0, 35), Online),
            (t(0, 35), t(1, 0), Unknown),
            (t(1, 0), t(1, 10), Online),
            (t(1, 10), t(1, 20), Interruption),
        ];
        assert_eq!(segs, expected.map(|(start, end, state)| Segment { start, end, state }));
        let u = uptime(&points, t(0, 0), t(1, 20), VALID);
        // Online 10 + 15 + 10 min; offline 10; interruption 10; unknown 25.
        assert_eq!(
            (u.online_seconds, u.offline_seconds, u.interruption_seconds, u.unknown_seconds),
            (2100, 600, 600, 1500)
        );
        assert_eq!(u.ratio, Some(2100.0 / 3300.0));
        // A window starting inside a segment counts only its part: 00:05-00:15 is 5 online, 5 offline.
        assert_eq!(uptime(&points, t(0, 5), t(0, 15), VALID).ratio, Some(0.5));
    }

    #[test]
    fn failed_polls_let_the_state_go_stale_and_unknown_is_not_down() {
        let failed = |at| Point { ok: false, ..ok(at, Unknown, 0.0) };
        let points = [
            ok(t(0, 0), Online, 1.0),
            failed(t(0, 5)),
            failed(t(0, 10)),
            failed(t(0, 20)),
            // The provider itself says something we do not know: unknown, not down.
            ok(t(0, 30), Unknown, 0.5),
        ];
        let u = uptime(&points, t(0, 0), t(0, 40), VALID);
        assert_eq!((u.online_seconds, u.unknown_seconds, u.offline_seconds), (900, 1500, 0));
        assert_eq!(u.ratio, Some(1.0));
        assert_eq!(uptime(&[], t(0, 0), t(1, 0), VALID), Uptime { unknown_seconds: 3600, ..Uptime::default() });
        assert_eq!(uptime(&points[1..4], t(0, 0), t(1, 0), VALID).ratio, None, "failed polls alone know nothing");
    }

    fn checked(at: DateTime<Utc>, state: AuthorityState, checked: DateTime<Utc>) -> Point {
        Point { last_checked: Some(checked), ..ok(at, state, 0.5) }
    }

    #[test]
    fn since_is_the_provider_time_of_the_first_window_of_the_current_run() {
        // Polled a minute after each window; the provider stamps the window.
        let points = [
            checked(t(0, 1), Online, t(0, 0)),
            checked(t(0, 11), Online, t(0, 10)),
            checked(t(0, 21), Offline, t(0, 20)),
            checked(t(0, 31), Offline, t(0, 30)),
        ];
        assert_eq!(since(&points, VALID), Some((Offline, t(0, 20))));
        assert_eq!(since(&points[..2], VALID), Some((Online, t(0, 0))));
        // No last_checked: the poll time. A last_checked after the poll: the poll time.
        assert_eq!(since(&[ok(t(0, 5), Online, 1.0)], VALID), Some((Online, t(0, 5))));
        assert_eq!(since(&[checked(t(0, 5), Online, t(2, 0))], VALID), Some((Online, t(0, 5))));
        // A restart within the validity keeps the run; after a longer gap a new run starts.
        let short = [ok(t(0, 0), Online, 1.0), ok(t(0, 10), Online, 1.0), ok(t(0, 24), Online, 1.0)];
        assert_eq!(since(&short, VALID), Some((Online, t(0, 0))));
        let long = [ok(t(0, 0), Online, 1.0), ok(t(1, 0), Online, 1.0)];
        assert_eq!(since(&long, VALID), Some((Online, t(1, 0))));
        // Failed polls end nothing by themselves; only time without fresh data does.
        let failed = |at| Point { ok: false, ..ok(at, Unknown, 0.0) };
        let through = [ok(t(0, 0), Online, 1.0), failed(t(0, 5)), ok(t(0, 10), Online, 1.0)];
        assert_eq!(since(&through, VALID), Some((Online, t(0, 0))));
        assert_eq!(since(&[failed(t(0, 5))], VALID), None);
        assert_eq!(since(&[], VALID), None);
    }

    /// The timeline kept one point at a time says what the functions over all the points
    /// say: the same segments over any range, the same run, the same cells.
    #[test]
    fn the_incremental_timeline_agrees_with_the_whole_history() {
        use proptest::prelude::*;
        let point = (1i64..40, 0usize..5, proptest::option::of(-3i64..3), 0u32..100)
            .prop_map(|(gap, kind, skew, rate)| (gap, kind, skew, f64::from(rate) / 100.0));
        proptest!(ProptestConfig::with_cases(300), |(steps in proptest::collection::vec(point, 0..60), from in 0i64..600, len in 1i64..900)| {
            let mut at = t(0, 0);
            let mut points = Vec::new();
            for (gap, kind, skew, rate) in steps {
                at += TimeDelta::minutes(gap);
                let p = match kind {
                    4 => Point { ok: false, ..ok(at, Unknown, 0.0) },
                    k => Point { last_checked: skew.map(|s| at + TimeDelta::minutes(s)), ..ok(at, AuthorityState::ALL[k], rate) },
                };
                points.push(p);
            }
            let mut timeline = Timeline::default();
            for p in &points {
                timeline.observe(p, VALID);
            }
            let (a, b) = (t(0, 0) + TimeDelta::minutes(from), t(0, 0) + TimeDelta::minutes(from + len));
            prop_assert_eq!(timeline.segments(a, b, VALID), segments(&points, a, b, VALID));
            prop_assert_eq!(timeline.run().map(|r| (r.state, r.since)), since(&points, VALID));
            prop_assert_eq!(uptime_of(&timeline.segments(a, b, VALID)), uptime(&points, a, b, VALID));
            let now = points.last().map_or(t(0, 0), |p| p.time) + TimeDelta::minutes(3);
            prop_assert_eq!(timeline.cells(now, 144, VALID), cells(&points, now, 144, VALID));
        });
    }

    #[test]
    fn cells_show_the_worst_state_and_lowest_rates_of_each_window() {
        let points = [ok(t(0, 40), Online, 0.99), ok(t(0, 45), Offline, 0.2), ok(t(0, 50), Online, 0.97)];
        let c = cells(&points, t(1, 5), 4, VALID);
        assert_eq!(c.iter().map(|c| c.start).collect::<Vec<_>>(), [t(0, 30), t(0, 40), t(0, 50), t(1, 0)]);
        assert_eq!(c.iter().map(|c| c.state).collect::<Vec<_>>(), [Unknown, Offline, Online, Online]);
        assert_eq!((c[1].min_rate_10m, c[2].min_rate_10m, c[3].min_rate_10m), (Some(0.2), Some(0.97), None));
        assert_eq!(cells(&[], t(1, 5), CELLS_OF_A_DAY, VALID).len(), 144);
    }

    const CELLS_OF_A_DAY: usize = 144;
}
