//! The status page at `/` and `/api/v1/history`: per authority its state, since when,
//! a bar of the last 24 hours and its uptime, worst first. Pure functions over a store
//! snapshot, the history and the time; the script and style are served as same-origin
//! files so that the Content-Security-Policy allows no inline code at all.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::history::timeline::{self, Cell, Uptime};
use crate::history::{History, Point};
use crate::model::{AuthorityState, Rate, Target};
use crate::server::html_escape;
use crate::store::TargetStatus;
use crate::views::percent;

/// The page's script: refreshes the status part in place.
pub const SCRIPT: &str = include_str!("status.js");
/// The page's style.
pub const STYLE: &str = include_str!("status.css");
/// The page's icon (a status dot), so that browsers do not ask for a missing favicon.ico.
pub const ICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\"><circle cx=\"8\" cy=\"8\" r=\"7\" fill=\"#1a7f37\"/></svg>";
/// Nothing but same-origin script, style and fetches; no inline code, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/// Cells in the bar: 24 hours of 10 minutes.
pub const CELLS: usize = 144;
/// The uptime ranges shown and served.
pub const UPTIME_RANGES: [(&str, TimeDelta); 3] =
    [("24h", TimeDelta::hours(24)), ("7d", TimeDelta::days(7)), ("30d", TimeDelta::days(30))];

/// Everything the page shows of one authority.
#[derive(Clone, Debug)]
pub struct PairView {
    /// The pair.
    pub target: Target,
    /// The state shown now.
    pub state: AuthorityState,
    /// Since when.
    pub since: Option<DateTime<Utc>>,
    /// The latest rates, while fresh.
    pub rates: (Option<Rate>, Option<Rate>),
    /// The last 24 hours.
    pub cells: Vec<Cell>,
    /// Uptime over [`UPTIME_RANGES`].
    pub uptime: Vec<Uptime>,
}

/// Not-online first: offline, unknown, interruption, then online.
pub fn rank(s: AuthorityState) -> u8 {
    match s {
        AuthorityState::Offline => 0,
        AuthorityState::Unknown => 1,
        AuthorityState::Interruption => 2,
        AuthorityState::Online => 3,
    }
}

/// Since when `target` has been in `shown`: from the history, or (for a state the history
/// does not show yet, such as unknown after the data went stale) when the data went stale.
pub fn since(
    history: &History,
    target: &Target,
    shown: AuthorityState,
    now: DateTime<Utc>,
    max_age: Duration,
) -> Option<DateTime<Utc>> {
    let valid = timeline::valid_for(max_age);
    let points = history.points(target, now - history.retention());
    timeline::since(&points, now, valid, shown).or_else(|| {
        let stale = TimeDelta::from_std(max_age).ok()?;
        (shown == AuthorityState::Unknown).then(|| history.last_observed(target).map(|p| p.time + stale)).flatten()
    })
}

/// The view of every pair, worst first, then by country and ID type.
pub fn pair_views(
    snapshot: &[(Target, TargetStatus)],
    history: &History,
    now: DateTime<Utc>,
    max_age: Duration,
) -> Vec<PairView> {
    let valid = timeline::valid_for(max_age);
    let mut views: Vec<PairView> = snapshot
        .iter()
        .map(|(t, s)| {
            let state = s.current_state(now, max_age);
            let points = history.points(t, now - UPTIME_RANGES[2].1);
            let obs = s.observation.as_ref().filter(|_| s.is_fresh(now, max_age));
            PairView {
                target: t.clone(),
                state,
                since: since(history, t, state, now, max_age),
                rates: (obs.and_then(|o| o.rate_10m), obs.and_then(|o| o.rate_1h)),
                cells: timeline::cells(&points, now, CELLS, valid),
                uptime: UPTIME_RANGES.iter().map(|(_, r)| timeline::uptime(&points, now - *r, now, valid)).collect(),
            }
        })
        .collect();
    views.sort_by(|a, b| rank(a.state).cmp(&rank(b.state)).then_with(|| a.target.cmp(&b.target)));
    views
}

/// `2 h 10 min`, `3 d 4 h`, `45 s`: two units at most.
pub fn for_duration(d: TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, mins) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

fn label(s: AuthorityState) -> (&'static str, &'static str) {
    // A shape and a word with every colour, so that colour is never the only signal.
    match s {
        AuthorityState::Online => ("✓", "Online"),
        AuthorityState::Interruption => ("!", "Interruption"),
        AuthorityState::Offline => ("✕", "Offline"),
        AuthorityState::Unknown => ("?", "Unknown"),
    }
}

fn clock(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if at.date_naive() == now.date_naive() {
        at.format("%H:%M UTC").to_string()
    } else {
        at.format("%d %b %H:%M UTC").to_string()
    }
}

fn uptime_text(u: &Uptime) -> String {
    u.ratio.map_or("no data".to_owned(), |r| {
        let p = r * 100.0;
        if (99.995..100.0).contains(&p) { "99.99%".to_owned() } else { format!("{p:.2}%") }
    })
}

/// The live part of the page (summary and one row per pair), refreshed in place by the script.
pub fn status_fragment(views: &[PairView], now: DateTime<Utc>) -> String {
    let mut html = String::new();
    let count = |s| views.iter().filter(|v| v.state == s).count();
    let _ = write!(html, "<p class=\"summary\">{} authorities: ", views.len());
    for s in [AuthorityState::Offline, AuthorityState::Unknown, AuthorityState::Interruption, AuthorityState::Online] {
        let n = count(s);
        // Zero is good news for the bad states: shown quietly, never in alarm colours.
        let class = if n == 0 { "zero".to_owned() } else { format!("n s-{s}") };
        let (icon, word) = label(s);
        let _ = write!(
            html,
            "<span class=\"{class}\"><span class=\"icon\" aria-hidden=\"true\">{icon}</span> {n} {}</span> ",
            word.to_lowercase()
        );
    }
    let _ = writeln!(html, "<span class=\"updated\">updated {}</span></p>", now.format("%H:%M:%S UTC"));
    html.push_str("<ol class=\"pairs\">\n");
    for v in views {
        let (icon, word) = label(v.state);
        let since = match v.since {
            Some(at) => format!(
                "since <time datetime=\"{}\">{}</time> <span class=\"for\">(for {})</span>",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                clock(at, now),
                for_duration(now - at)
            ),
            None => "no data yet".to_owned(),
        };
        let _ = write!(
            html,
            "<li class=\"pair s-{state}\" data-country=\"{c}\" data-id-type=\"{i}\" data-state=\"{state}\">\
             <div class=\"head\"><span class=\"state\"><span class=\"icon\" aria-hidden=\"true\">{icon}</span> {word}</span> \
             <span class=\"name\">{c} <span class=\"id\">{i}</span></span> <span class=\"since\">{since}</span></div>\n\
             <div class=\"bar\" role=\"img\" aria-label=\"{c} {i}, last 24 hours: {summary}\">",
            state = v.state,
            c = html_escape(v.target.country.as_str()),
            i = html_escape(v.target.id_type.as_str()),
            summary = html_escape(&bar_summary(&v.cells)),
        );
        for cell in &v.cells {
            let end = cell.start + timeline::CELL;
            let rates = match (cell.min_rate_10m, cell.min_rate_1h) {
                (None, None) => String::new(),
                (a, b) => format!(
                    ", lowest rates 10 min {} / 1 h {}",
                    percent(a.and_then(Rate::from_f64)),
                    percent(b.and_then(Rate::from_f64))
                ),
            };
            let _ = write!(
                html,
                "<span class=\"cell s-{s}\" title=\"{} – {}: {}{rates}\"></span>",
                cell.start.format("%d %b %H:%M"),
                end.format("%H:%M UTC"),
                label(cell.state).1,
                s = cell.state,
            );
        }
        html.push_str("</div>\n<div class=\"meta\"><span class=\"uptime\">Uptime");
        for ((name, _), u) in UPTIME_RANGES.iter().zip(&v.uptime) {
            let _ = write!(
                html,
                " <span>{}&nbsp;<b>{}</b></span>",
                name.replace('h', "&nbsp;h").replace('d', "&nbsp;d"),
                uptime_text(u)
            );
        }
        let _ = writeln!(
            html,
            "</span> <span class=\"rates\">Success 10&nbsp;min <b>{}</b> · 1&nbsp;h <b>{}</b></span></div></li>",
            percent(v.rates.0),
            percent(v.rates.1)
        );
    }
    html.push_str("</ol>\n");
    html
}

fn bar_summary(cells: &[Cell]) -> String {
    let mut parts = Vec::new();
    for s in [AuthorityState::Offline, AuthorityState::Interruption, AuthorityState::Unknown] {
        let n = cells.iter().filter(|c| c.state == s).count();
        if n > 0 {
            parts.push(format!("{} {}", for_duration(timeline::CELL * n as i32), s));
        }
    }
    if parts.is_empty() { "online throughout".to_owned() } else { parts.join(", ") }
}

/// The whole page; `refresh_seconds` is how often the script refreshes the status part.
pub fn page(fragment: &str, refresh_seconds: u64) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>ID authority status · idauth-exporter</title>
<link rel="icon" href="/ui/icon.svg" type="image/svg+xml"><link rel="stylesheet" href="/ui/status.css"><script src="/ui/status.js" defer></script></head>
<body>
<header><h1>ID authority status</h1>
<nav><a href="/metrics">Metrics</a> · <a href="/api/v1/status">Status (JSON)</a> · <a href="/api/v1/history?country=NG&amp;id_type=BVN&amp;range=24h">History (JSON)</a> · <a href="/-/healthy">Health</a> · <a href="/-/ready">Readiness</a></nav></header>
<main id="status" data-refresh="{refresh_seconds}" aria-live="polite">
{fragment}</main>
<footer><p>Government ID authorities behind Smile ID, as polled by idauth-exporter {version}. Worst first; each bar is the last 24 hours in 10-minute cells (hover or tap for the time and rates). Uptime is the share of the time with data that the authority was online.</p>
<p class="legend"><span class="cell s-online"></span> ✓ online <span class="cell s-interruption"></span> ! interruption <span class="cell s-offline"></span> ✕ offline <span class="cell s-unknown"></span> ? unknown / no data</p></footer>
</body>
</html>
"#,
        version = env!("CARGO_PKG_VERSION"),
    )
}

/// Why a history request was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HistoryQueryError {
    /// A parameter is missing or malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The pair is not watched (404).
    #[error("{0} is not a watched pair")]
    NotWatched(String),
}

/// `/api/v1/history?country=NG&id_type=BVN&range=24h`: the points of one pair over the
/// range (default 24h, at most the retention), its state and since, and its uptime over
/// 24h, 7d and 30d.
pub fn history_json(
    query: &str,
    snapshot: &[(Target, TargetStatus)],
    history: &History,
    now: DateTime<Utc>,
    max_age: Duration,
) -> Result<String, HistoryQueryError> {
    let bad = |m: &str| HistoryQueryError::BadRequest(m.to_owned());
    let (mut country, mut id_type, mut range) = (None, None, "24h");
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("country", v) => country = Some(v),
            ("id_type", v) => id_type = Some(v),
            ("range", v) => range = v,
            _ => {}
        }
    }
    let (Some(c), Some(i)) = (country, id_type) else {
        return Err(bad("country and id_type are required, e.g. ?country=NG&id_type=BVN&range=24h"));
    };
    let target = Target::new(
        c.to_ascii_uppercase().parse().map_err(|e: crate::model::DomainError| bad(&e.to_string()))?,
        i.to_ascii_uppercase().parse().map_err(|e: crate::model::DomainError| bad(&e.to_string()))?,
    );
    let span = crate::history::parse_range(range)
        .ok_or_else(|| bad("range must be a duration from 1m to 366d, such as 24h, 7d or 30d"))?
        .min(history.retention());
    let Some((_, status)) = snapshot.iter().find(|(t, _)| *t == target) else {
        return Err(HistoryQueryError::NotWatched(target.to_string()));
    };
    let valid = timeline::valid_for(max_age);
    let from = now - span;
    let points: Vec<Point> = history.points(&target, from).into_iter().filter(|p| p.time >= from).collect();
    let all = history.points(&target, now - UPTIME_RANGES[2].1);
    let state = status.current_state(now, max_age);
    let uptime: serde_json::Map<String, serde_json::Value> = UPTIME_RANGES
        .iter()
        .map(|(name, r)| {
            ((*name).to_owned(), serde_json::to_value(timeline::uptime(&all, now - *r, now, valid)).unwrap_or_default())
        })
        .collect();
    Ok(serde_json::json!({
        "country": target.country,
        "id_type": target.id_type,
        "range": range,
        "from": from,
        "to": now,
        "state": state,
        "since": since(history, &target, state, now, max_age),
        "uptime": uptime,
        "points": points,
    })
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(for_duration(TimeDelta::minutes(130)), "2 h 10 min");
        assert_eq!(for_duration(TimeDelta::seconds(45)), "45 s");
        assert_eq!(for_duration(TimeDelta::minutes(60)), "1 h");
        assert_eq!(for_duration(TimeDelta::hours(76)), "3 d 4 h");
        assert_eq!(for_duration(TimeDelta::days(2)), "2 d");
    }

    #[test]
    fn not_online_comes_first_offline_then_unknown_then_interruption() {
        let mut states =
            [AuthorityState::Online, AuthorityState::Interruption, AuthorityState::Unknown, AuthorityState::Offline];
        states.sort_by_key(|s| rank(*s));
        assert_eq!(
            states,
            [AuthorityState::Offline, AuthorityState::Unknown, AuthorityState::Interruption, AuthorityState::Online]
        );
    }
}
