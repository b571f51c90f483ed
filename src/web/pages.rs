//! The pages: the status page at `/` (per authority its state, since when, a bar of the
//! last 24 hours and its uptime, worst first) and the plain landing page. Pure functions
//! over what the store computed; the script and style are served as same-origin files so
//! that the Content-Security-Policy allows no inline code at all.

use std::fmt::Write as _;

use chrono::{DateTime, TimeDelta, Utc};

use super::http::html_escape;
use crate::history::timeline::{self, Cell, Uptime};
use crate::model::{AuthorityState, Rate, fmt_ago, fmt_percent as percent};
use crate::store::{PairHistory, PairNow};

/// The page's script: refreshes the status part in place.
pub const SCRIPT: &str = include_str!("status.js");
/// The page's style.
pub const STYLE: &str = include_str!("status.css");
/// The page's icon (a status dot), so that browsers do not ask for a missing favicon.ico.
pub const ICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\"><circle cx=\"8\" cy=\"8\" r=\"7\" fill=\"#1a7f37\"/></svg>";
/// Nothing but same-origin script, style and fetches; no inline code, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/// Changes of state in 24 hours from which an authority is marked as flapping.
pub const FLAPPING_CHANGES: usize = 4;
/// Cells in the bar: 24 hours of 10 minutes.
pub const CELLS: usize = 144;
/// The uptime ranges shown and served.
pub const UPTIME_RANGES: [(&str, TimeDelta); 3] =
    [("24h", TimeDelta::hours(24)), ("7d", TimeDelta::days(7)), ("30d", TimeDelta::days(30))];

/// Not-online first: offline, unknown, interruption, then online.
pub fn rank(s: AuthorityState) -> u8 {
    match s {
        AuthorityState::Offline => 0,
        AuthorityState::Unknown => 1,
        AuthorityState::Interruption => 2,
        AuthorityState::Online => 3,
    }
}

/// The pairs worst first, then by country and ID type.
pub fn worst_first(pairs: &mut [PairHistory]) {
    pairs.sort_by(|a, b| rank(a.now.state).cmp(&rank(b.now.state)).then_with(|| a.now.target.cmp(&b.now.target)));
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
pub fn status_fragment(views: &[PairHistory], now: DateTime<Utc>) -> String {
    let mut html = String::new();
    let count = |s| views.iter().filter(|v| v.now.state == s).count();
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
        let rates = v.now.fresh_observation().map_or((None, None), |o| (o.rate_10m, o.rate_1h));
        let (icon, word) = label(v.now.state);
        let since = match v.now.since {
            Some(at) => format!(
                "since <time datetime=\"{}\">{}</time> <span class=\"for\">(for {})</span>",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                clock(at, now),
                for_duration(now - at)
            ),
            None => "no data yet".to_owned(),
        };
        // "Online" beside a bar of many colours reads as a contradiction: say it moved.
        let flapping = if v.changes_24h >= FLAPPING_CHANGES {
            format!(" <span class=\"flapping\">flapping: {} changes in 24 h</span>", v.changes_24h)
        } else {
            String::new()
        };
        let _ = write!(
            html,
            "<li class=\"pair s-{state}\" id=\"{c}-{i}\" data-country=\"{c}\" data-id-type=\"{i}\" data-state=\"{state}\">\
             <div class=\"head\"><span class=\"state\"><span class=\"icon\" aria-hidden=\"true\">{icon}</span> {word}</span> \
             <span class=\"name\">{c} <span class=\"id\">{i}</span></span> <span class=\"since\">{since}</span>{flapping}</div>\n\
             <div class=\"bar\" role=\"img\" aria-label=\"{c} {i}, last 24 hours: {summary}\">",
            state = v.now.state,
            c = html_escape(v.now.target.country.as_str()),
            i = html_escape(v.now.target.id_type.as_str()),
            summary = html_escape(&bar_summary(&v.cells)),
        );
        // One element per run of cells in one state, as wide as its cells: at 1,000 pairs
        // a cell each made a 17 MB page of 144,000 elements.
        for run in v.cells.chunk_by(|a, b| a.state == b.state) {
            let (first, last) = (&run[0], &run[run.len() - 1]);
            let lowest = |rate: fn(&Cell) -> Option<f64>| run.iter().filter_map(rate).reduce(f64::min);
            let rates = match (lowest(|c| c.min_rate_10m), lowest(|c| c.min_rate_1h)) {
                (None, None) => String::new(),
                (a, b) => format!(
                    ", lowest rates 10 min {} / 1 h {}",
                    percent(a.and_then(Rate::from_f64)),
                    percent(b.and_then(Rate::from_f64))
                ),
            };
            let _ = write!(
                html,
                "<span class=\"cell s-{s} n{n}\" title=\"{} – {}: {}{rates}\"></span>",
                first.start.format("%d %b %H:%M"),
                (last.start + timeline::CELL).format("%H:%M UTC"),
                label(first.state).1,
                s = first.state,
                n = run.len(),
            );
        }
        html.push_str(
            "</div>\n<div class=\"axis\" aria-hidden=\"true\"><span>24 h ago</span><span>12 h</span><span>now</span></div>\n\
             <div class=\"meta\"><span class=\"uptime\">Uptime",
        );
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
            "</span> <span class=\"rates\">Success 10&nbsp;min <b>{}</b> · 1&nbsp;h <b>{}</b></span> \
             <a class=\"badge\" href=\"/badge/{c}/{i}.svg\" title=\"{c} {i} as a status badge (SVG), for a README or a wiki\">badge</a></div></li>",
            percent(rates.0),
            percent(rates.1),
            c = html_escape(v.now.target.country.as_str()),
            i = html_escape(v.now.target.id_type.as_str()),
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
<link rel="icon" href="/ui/icon.svg" type="image/svg+xml"><link rel="alternate" type="application/atom+xml" href="/feed.atom" title="ID authority changes (Atom)"><link rel="stylesheet" href="/ui/status.css"><script src="/ui/status.js" defer></script></head>
<body>
<header><h1>ID authority status</h1>
<nav><a href="/metrics">Metrics</a> · <a href="/api/v1/status">Status (JSON)</a> · <a href="/api/v1/history?country=NG&amp;id_type=BVN&amp;range=24h">History (JSON)</a> · <a href="/api/v1/events">Changes (JSON)</a> · <a href="/feed.atom" class="feed">Atom feed</a> · <a href="/-/healthy">Health</a> · <a href="/-/ready">Readiness</a></nav>
<p class="legend"><span class="cell s-online"></span> ✓ online <span class="cell s-interruption"></span> ! interruption <span class="cell s-offline"></span> ✕ offline <span class="cell s-unknown"></span> ? unknown / no data</p></header>
<main id="status" data-refresh="{refresh_seconds}" aria-live="polite">
{fragment}</main>
<footer><p>Government ID authorities behind Smile ID, as polled by idauth-exporter {version}. Worst first; each bar is the last 24 hours in 10-minute cells, the right end now (hover or tap a stretch for its times and lowest rates). Uptime is the share of the time with data that the authority was online. "Flapping" marks an authority whose state changed {flapping} times or more in the last 24 hours. Every change of state is in the <a href="/feed.atom">Atom feed</a> and <a href="/api/v1/events">/api/v1/events</a>; each authority's "badge" is an SVG of its state and 7-day uptime, for a README or a wiki.</p></footer>
</body>
</html>
"#,
        version = env!("CARGO_PKG_VERSION"),
        flapping = FLAPPING_CHANGES,
    )
}

/// The landing page's status without a history (no status page): counts by state, then a
/// table of every pair (HTML).
pub fn landing_status(pairs: &[PairNow], now: DateTime<Utc>) -> String {
    // Counts by state first: how much is down is what a person opening this page is after.
    let mut counts = [0usize; 4];
    for p in pairs {
        counts[AuthorityState::ALL.iter().position(|a| *a == p.state).unwrap_or(3)] += 1;
    }
    let mut html = String::from("<p class=\"summary\">");
    for (state, n) in AuthorityState::ALL.iter().zip(counts) {
        let _ = write!(html, "<span class=\"{state}\">{n} {state}</span> ");
    }
    html.push_str("</p>\n<table>\n<thead><tr><th>Country</th><th>ID type</th><th>State</th><th>10m</th><th>1h</th><th>Last checked</th><th>Last poll</th></tr></thead>\n<tbody>\n");
    for p in pairs {
        let state = p.state;
        let obs = p.fresh_observation();
        let poll = match &p.last_poll {
            None => "not yet".to_owned(),
            Some(r) if r.success => format!("ok {}", fmt_ago(now, r.at)),
            Some(r) => format!("failed ({}) {}", r.reason.map_or("?", |r| r.as_str()), fmt_ago(now, r.at)),
        };
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td class=\"{state}\">{state}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html_escape(p.target.country.as_str()),
            html_escape(p.target.id_type.as_str()),
            percent(obs.and_then(|o| o.rate_10m)),
            percent(obs.and_then(|o| o.rate_1h)),
            p.observation.as_ref().and_then(|o| o.last_checked).map_or("-".to_owned(), |at| fmt_ago(now, at)),
            html_escape(&poll),
        );
    }
    html.push_str("</tbody>\n</table>\n");
    html
}

/// The plain landing page around [`landing_status`]; it reloads itself every `refresh`
/// seconds when asked.
pub fn landing_page(status: &str, refresh: Option<u64>) -> String {
    let refresh = refresh.map_or(String::new(), |s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">"));
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>idauth-exporter</title>{refresh}
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}}
.summary span{{margin-right:1.2em;font-size:1.2em}}.online{{color:#1a7f37}}.interruption{{color:#9a6700}}.offline{{color:#cf222e;font-weight:bold}}.unknown{{color:#57606a}}</style></head>
<body>
<h1>idauth-exporter</h1>
<p>Availability of government ID authorities behind Smile ID, for Prometheus. Version {version}.</p>
<ul>
<li><a href="/metrics">Metrics</a></li>
<li><a href="/api/v1/status">Status (JSON)</a></li>
<li>Changes of state: <a href="/api/v1/events">/api/v1/events</a> (JSON; <code>?after=SEQ</code> resumes) and the <a href="/feed.atom">Atom feed</a></li>
<li>Badges: <code>/badge/COUNTRY/ID_TYPE.svg</code>, such as <code>/badge/NG/BVN.svg</code></li>
<li><a href="/-/healthy">Health</a> and <a href="/-/ready">readiness</a></li>
</ul>
{status}</body>
</html>
"#,
        version = env!("CARGO_PKG_VERSION"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ago_and_percent_read_well() {
        let now = Utc::now();
        assert_eq!(fmt_ago(now, now - TimeDelta::minutes(12)), "12m ago");
        assert_eq!(fmt_ago(now, now + TimeDelta::seconds(3)), "in 3s");
        assert_eq!(percent(crate::model::parse_rate("95.5%")), "95.5%");
        assert_eq!(percent(crate::model::parse_rate("97.45%")), "97.45%");
        assert_eq!(percent(None), "-");
    }

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
