//! The JSON (and CSV) API: `/api/v1/status` and `/api/v1/history`, over what the store
//! computed and, for points older than its last day, the history store.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::http::Chunks;
use super::pages::UPTIME_RANGES;
use crate::history::export::{Format, Writer};
use crate::history::timeline;
use crate::history::{History, Point, parse_range};
use crate::model::{DomainError, Target, timestamp};
use crate::store::{CycleRecord, PairNow, Store};

/// `/api/v1/status`: every pair with its shown state, since, freshness and last poll.
pub fn status_json(pairs: &[PairNow], last_cycle: Option<&CycleRecord>, ready: bool, max_age: Duration) -> String {
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "ready": ready,
        "max_data_age_seconds": max_age.as_secs(),
        "last_cycle": last_cycle,
        "targets": pairs,
    })
    .to_string()
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

/// A parsed `/api/v1/history` query.
#[derive(Debug, PartialEq)]
pub struct HistoryQuery {
    /// `country` and `id_type`; required without `format`.
    pub target: Option<Target>,
    /// The range as asked (`range=24h`, or from `from`/`to`), for the answer.
    pub range: String,
    /// Its start.
    pub from: DateTime<Utc>,
    /// Its end (exclusive).
    pub to: DateTime<Utc>,
    /// `format=csv|json`: every point, as `history export` writes them; none for the
    /// summary of one pair.
    pub format: Option<Format>,
}

fn parse_time(name: &str, v: &str) -> Result<DateTime<Utc>, HistoryQueryError> {
    DateTime::parse_from_rfc3339(v).map(|t| t.with_timezone(&Utc)).map_err(|_| {
        HistoryQueryError::BadRequest(format!("{name} must be an RFC 3339 time such as 2026-12-01T00:00:00Z"))
    })
}

impl HistoryQuery {
    /// Parses `query` as of `now`; the range is at most `retention`.
    pub fn parse(query: &str, now: DateTime<Utc>, retention: TimeDelta) -> Result<HistoryQuery, HistoryQueryError> {
        let bad = |m: &str| HistoryQueryError::BadRequest(m.to_owned());
        let (mut country, mut id_type, mut range, mut from, mut to, mut format) = (None, None, None, None, None, None);
        // Decoded as browsers and curl encode a query (`%3A`, `%2B`; `+` is a space).
        let decoded: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        for (key, v) in &decoded {
            let v = v.as_str();
            match key.as_str() {
                "country" => country = Some(v),
                "id_type" => id_type = Some(v),
                "range" => range = Some(v),
                "from" => from = Some(parse_time("from", v)?),
                "to" => to = Some(parse_time("to", v)?),
                "format" => {
                    format = Some(Format::parse(v).ok_or_else(|| bad("format must be csv or json"))?);
                }
                _ => {}
            }
        }
        let target = match (country, id_type) {
            (Some(c), Some(i)) => Some(Target::new(
                c.to_ascii_uppercase().parse().map_err(|e: DomainError| bad(&e.to_string()))?,
                i.to_ascii_uppercase().parse().map_err(|e: DomainError| bad(&e.to_string()))?,
            )),
            (None, None) if format.is_some() => None,
            _ => {
                return Err(bad(
                    "country and id_type are required, e.g. ?country=NG&id_type=BVN&range=24h (or ask for every pair with format=csv)",
                ));
            }
        };
        let to = to.unwrap_or(now).min(now);
        let (range, from) = match (range, from) {
            (Some(_), Some(_)) => return Err(bad("give range or from, not both")),
            (_, Some(from)) => (format!("{}s", (to - from).num_seconds().max(0)), from),
            (range, None) => {
                let range = range.unwrap_or("24h");
                let span = parse_range(range)
                    .ok_or_else(|| bad("range must be a duration from 1m to 366d, such as 24h, 7d or 30d"))?;
                (range.to_owned(), to - span)
            }
        };
        if from > to {
            return Err(bad("from must be before to"));
        }
        Ok(HistoryQuery { target, range, from: from.max(now - retention), to, format })
    }
}

/// `target`'s points from `from` to `to`: its last day from the store (which has them at
/// once), older ones from the history store.
pub fn points(store: &Store, history: &History, target: &Target, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Point> {
    let (recent, kept_since) = store.recent_points(target, from, to).unwrap_or_default();
    if kept_since.is_some_and(|s| s <= from) {
        return recent;
    }
    let older_to = kept_since.unwrap_or(to).min(to);
    let mut older = history.points(target, from, older_to).unwrap_or_else(|e| {
        tracing::warn!(pair = %target, error = %e, "history: cannot read older points; answering with the last day only");
        Vec::new()
    });
    older.extend(recent);
    older
}

/// `/api/v1/history` without `format`: one pair's state, since, uptime over 24h, 7d and
/// 30d, and its points over the range.
pub fn history_json(
    store: &Store,
    history: &History,
    q: &HistoryQuery,
    now: DateTime<Utc>,
) -> Result<String, HistoryQueryError> {
    let target =
        q.target.as_ref().ok_or_else(|| HistoryQueryError::BadRequest("country and id_type are required".into()))?;
    let pair = store.pair_now(target, now).ok_or_else(|| HistoryQueryError::NotWatched(target.to_string()))?;
    let uptime: serde_json::Map<String, serde_json::Value> = UPTIME_RANGES
        .iter()
        .map(|(name, r)| {
            let segments = store.segments(target, now - *r, now).unwrap_or_default();
            ((*name).to_owned(), serde_json::to_value(timeline::uptime_of(&segments)).unwrap_or_default())
        })
        .collect();
    Ok(serde_json::json!({
        "country": target.country,
        "id_type": target.id_type,
        "range": q.range,
        "from": timestamp::format(&q.from),
        "to": timestamp::format(&q.to),
        "state": pair.state,
        "since": pair.since.map(|t| timestamp::format(&t)),
        "uptime": uptime,
        "points": points(store, history, target, q.from, q.to),
    })
    .to_string())
}

/// `/api/v1/history?format=`: every point of the asked pairs, a pair at a time, so the
/// answer is streamed whatever the number of pairs and the range.
pub struct Export {
    store: Arc<Store>,
    history: Arc<History>,
    pairs: std::vec::IntoIter<Target>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    writer: Writer,
    started: bool,
}

impl Export {
    /// The export of `pairs` over the query's range.
    pub fn new(store: Arc<Store>, history: Arc<History>, pairs: Vec<Target>, q: &HistoryQuery) -> Export {
        Export {
            store,
            history,
            pairs: pairs.into_iter(),
            from: q.from,
            to: q.to,
            writer: Writer::new(q.format.unwrap_or(Format::Csv)),
            started: false,
        }
    }
}

impl Chunks for Export {
    fn write_next(&mut self, out: &mut String) -> bool {
        if !self.started {
            self.writer.start(out);
            self.started = true;
        }
        while out.len() < super::http::CHUNK_HINT {
            let Some(target) = self.pairs.next() else {
                self.writer.finish(out);
                return false;
            };
            for p in points(&self.store, &self.history, &target, self.from, self.to) {
                self.writer.point(out, &target, &p);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn history_queries_parse_with_their_defaults_and_bounds() {
        let now = at("2026-12-06T12:00:00Z");
        let month = TimeDelta::days(30);
        let q = HistoryQuery::parse("country=ng&id_type=bvn", now, month).unwrap();
        assert_eq!(q.target.unwrap().to_string(), "NG/BVN");
        assert_eq!((q.from, q.to, q.format), (now - TimeDelta::hours(24), now, None));
        let q = HistoryQuery::parse("format=csv&from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00%2B00:00", now, month)
            .unwrap();
        assert_eq!(
            (q.target, q.from, q.to, q.format),
            (None, at("2026-12-01T00:00:00Z"), at("2026-12-02T00:00:00Z"), Some(Format::Csv))
        );
        // Never beyond retention, never after now.
        let q = HistoryQuery::parse("country=NG&id_type=BVN&range=90d", now, month).unwrap();
        assert_eq!(q.from, now - month);
        for bad in [
            "",
            "country=NG",
            "format=xml",
            "country=NG&id_type=BVN&range=1s",
            "format=csv&from=yesterday",
            "format=csv&from=2026-12-06T13:00:00Z&to=2026-12-06T11:00:00Z",
            "format=csv&range=1h&from=2026-12-06T11:00:00Z",
        ] {
            assert!(matches!(HistoryQuery::parse(bad, now, month), Err(HistoryQueryError::BadRequest(_))), "{bad}");
        }
    }
}
