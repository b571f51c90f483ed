//! What a list of poll results means over time: the shown state's timeline, "since",
//! uptime and the 10-minute cells of the status page. Pure functions, so the arithmetic
//! is tested against hand-computed histories.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::Point;
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
    let mut u = Uptime::default();
    for s in segments(points, from, to, valid) {
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

/// When the state shown at `now` began: the start of the last segment, when it is in
/// `shown`; otherwise (the live state disagrees with the history, say the store shows
/// unknown before the history does) none.
pub fn since(points: &[Point], now: DateTime<Utc>, valid: TimeDelta, shown: AuthorityState) -> Option<DateTime<Utc>> {
    let first = points.first()?.time.min(now);
    let segs = segments(points, first, now + TimeDelta::milliseconds(1), valid);
    let last = segs.last().filter(|s| s.state == shown)?;
    Some(last.start)
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

/// `n` cells of 10 minutes, the last one holding `now`.
pub fn cells(points: &[Point], now: DateTime<Utc>, n: usize, valid: TimeDelta) -> Vec<Cell> {
    let step = CELL.num_seconds();
    let last_start = DateTime::<Utc>::from_timestamp(now.timestamp().div_euclid(step) * step, 0).unwrap_or(now);
    let first = last_start - CELL * (n.saturating_sub(1) as i32);
    let end = last_start + CELL;
    let mut cells: Vec<Cell> = (0..n)
        .map(|i| Cell {
            start: first + CELL * i as i32,
            state: AuthorityState::Unknown,
            min_rate_10m: None,
            min_rate_1h: None,
        })
        .collect();
    let index = |t: DateTime<Utc>| ((t - first).num_seconds().div_euclid(step)) as usize;
    for s in segments(points, first, end.min(now.max(first)), valid) {
        if s.state == AuthorityState::Unknown {
            continue;
        }
        let (a, b) = (index(s.start), index(s.end - TimeDelta::milliseconds(1)));
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
