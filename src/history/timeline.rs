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

    #[test]
    fn since_is_the_start_of_the_current_run_across_a_short_restart_only() {
        let points = [
            ok(t(0, 0), Online, 1.0),
            ok(t(0, 10), Online, 1.0),
            ok(t(0, 20), Offline, 0.1),
            ok(t(0, 30), Offline, 0.1),
        ];
        assert_eq!(since(&points, t(0, 35), VALID, Offline), Some(t(0, 20)));
        assert_eq!(since(&points[..2], t(0, 12), VALID, Online), Some(t(0, 0)));
        // A restart within the validity keeps the run; after a gap the run starts again.
        let short = [ok(t(0, 0), Online, 1.0), ok(t(0, 10), Online, 1.0), ok(t(0, 24), Online, 1.0)];
        assert_eq!(since(&short, t(0, 25), VALID, Online), Some(t(0, 0)));
        let long = [ok(t(0, 0), Online, 1.0), ok(t(1, 0), Online, 1.0)];
        assert_eq!(since(&long, t(1, 5), VALID, Online), Some(t(1, 0)));
        // Stale now: the history's unknown began when the last state ran out.
        assert_eq!(since(&long, t(1, 40), VALID, Unknown), Some(t(1, 15)));
        assert_eq!(since(&long, t(1, 5), VALID, Offline), None, "the live state disagrees");
        assert_eq!(since(&[], t(1, 5), VALID, Unknown), None);
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
