//! The status views of the landing page and `/api/v1/status`, and the small formatters
//! that `check` shares: pure functions over a store snapshot and the time.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::fmt_duration;
use crate::model::{AuthorityState, Rate, Target};
use crate::server::html_escape;
use crate::store::{CycleRecord, TargetStatus};

/// `/api/v1/status`: every pair with its shown state, freshness and last poll.
/// `since[i]` is when the state of `snapshot[i]` began.
pub fn status_json(
    snapshot: &[(Target, TargetStatus)],
    since: &[Option<DateTime<Utc>>],
    last_cycle: Option<&CycleRecord>,
    ready: bool,
    now: DateTime<Utc>,
    max_age: Duration,
) -> String {
    let targets: Vec<_> = snapshot
        .iter()
        .enumerate()
        .map(|(n, (t, s))| {
            serde_json::json!({
                "country": t.country,
                "id_type": t.id_type,
                "state": s.current_state(now, max_age),
                "since": since.get(n).copied().flatten(),
                "fresh": s.is_fresh(now, max_age),
                "observation": s.observation,
                "last_success": s.last_success,
                "last_poll": s.last_poll,
            })
        })
        .collect();
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "ready": ready,
        "max_data_age_seconds": max_age.as_secs(),
        "last_cycle": last_cycle,
        "targets": targets,
    })
    .to_string()
}

/// The landing page's status: counts by state, then a table of every pair (HTML).
pub fn landing_status(snapshot: &[(Target, TargetStatus)], now: DateTime<Utc>, max_age: Duration) -> String {
    // Counts by state first: how much is down is what a person opening this page is after.
    let mut counts = [0usize; 4];
    for (_, s) in snapshot {
        counts[AuthorityState::ALL.iter().position(|a| *a == s.current_state(now, max_age)).unwrap_or(3)] += 1;
    }
    let mut html = String::from("<p class=\"summary\">");
    for (state, n) in AuthorityState::ALL.iter().zip(counts) {
        let _ = write!(html, "<span class=\"{state}\">{n} {state}</span> ");
    }
    html.push_str("</p>\n<table>\n<thead><tr><th>Country</th><th>ID type</th><th>State</th><th>10m</th><th>1h</th><th>Last checked</th><th>Last poll</th></tr></thead>\n<tbody>\n");
    for (t, s) in snapshot {
        let state = s.current_state(now, max_age);
        let fresh = s.is_fresh(now, max_age);
        let obs = s.observation.as_ref().filter(|_| fresh);
        let poll = match &s.last_poll {
            None => "not yet".to_owned(),
            Some(p) if p.success => format!("ok {}", ago(now, p.at)),
            Some(p) => format!("failed ({}) {}", p.reason.map_or("?", |r| r.as_str()), ago(now, p.at)),
        };
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td class=\"{state}\">{state}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html_escape(t.country.as_str()),
            html_escape(t.id_type.as_str()),
            percent(obs.and_then(|o| o.rate_10m)),
            percent(obs.and_then(|o| o.rate_1h)),
            s.observation.as_ref().and_then(|o| o.last_checked).map_or("-".to_owned(), |at| ago(now, at)),
            html_escape(&poll),
        );
    }
    html.push_str("</tbody>\n</table>\n");
    html
}

/// `12m ago`, or `in 3s` for a clock ahead of ours.
pub fn ago(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let secs = (now - at).num_seconds();
    let d = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 { format!("{} ago", fmt_duration(d)) } else { format!("in {}", fmt_duration(d)) }
}

/// A rate as the percentage the provider wrote, `-` when unknown.
pub fn percent(r: Option<Rate>) -> String {
    r.map_or("-".to_owned(), Rate::percent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ago_and_percent_read_well() {
        let now = Utc::now();
        assert_eq!(ago(now, now - chrono::TimeDelta::minutes(12)), "12m ago");
        assert_eq!(ago(now, now + chrono::TimeDelta::seconds(3)), "in 3s");
        assert_eq!(percent(crate::model::parse_rate("95.5%")), "95.5%");
        assert_eq!(percent(crate::model::parse_rate("97.45%")), "97.45%");
        assert_eq!(percent(None), "-");
    }
}
