//! `idauth-exporter check`: poll now and print a table, for a person deciding whether to
//! re-submit jobs that failed with result code 1015.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::model::PollError;
use crate::model::{AuthorityState, Observation, Target};
use crate::model::{fmt_ago as ago, fmt_percent as percent};
use crate::smileid;

/// Exit code when every pair is online.
pub const ALL_ONLINE: u8 = 0;
/// Exit code when a pair is not online.
pub const NOT_ALL_ONLINE: u8 = 1;
/// Exit code when something could not be checked.
pub const ERROR: u8 = 2;

/// Why `check` could not poll at all.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The outcome of polling each pair once.
#[derive(Debug)]
pub struct Report {
    /// Each pair and what its poll returned.
    pub rows: Vec<(Target, Result<Observation, PollError>)>,
}

/// Polls every configured pair (or only `only`, configured or not) once, now.
pub async fn run(config: &Config, only: Option<Target>) -> Result<Report, CheckError> {
    let api = smileid::client_for(&config.smile_id, smileid::build_transport(&config.poll)?);
    let targets = match only {
        Some(t) => vec![t],
        None => config.targets.clone(),
    };
    let permits = Arc::new(Semaphore::new(config.poll.concurrency));
    let polls = targets.into_iter().map(|t| {
        let (api, permits) = (api.clone(), permits.clone());
        async move {
            let _permit = permits.acquire().await.expect("never closed");
            let result = api.id_status(&t).await;
            (t, result)
        }
    });
    Ok(Report { rows: join_all(polls).await })
}

impl Report {
    /// 0 when all are online, 1 when any poll succeeded with another state, 2 when any poll failed.
    pub fn exit_code(&self) -> u8 {
        if self.rows.iter().any(|(_, r)| r.is_err()) {
            ERROR
        } else if self.rows.iter().all(|(_, r)| matches!(r, Ok(o) if o.state == AuthorityState::Online)) {
            ALL_ONLINE
        } else {
            NOT_ALL_ONLINE
        }
    }

    /// A table: pair, state, 10m, 1h, last checked, age.
    pub fn render(&self, now: DateTime<Utc>) -> String {
        let header = ["PAIR", "STATE", "10M", "1H", "LAST CHECKED", "AGE"].map(str::to_owned);
        let mut lines = vec![header.to_vec()];
        for (t, r) in &self.rows {
            lines.push(match r {
                Ok(o) => vec![
                    t.to_string(),
                    o.state.to_string(),
                    percent(o.rate_10m),
                    percent(o.rate_1h),
                    o.last_checked.map_or("-".to_owned(), |at| at.format("%Y-%m-%d %H:%M:%SZ").to_string()),
                    o.last_checked.map_or("-".to_owned(), |at| ago(now, at)),
                ],
                Err(e) => vec![t.to_string(), format!("poll failed ({}): {e}", e.reason())],
            });
        }
        let widths: Vec<usize> = (0..6)
            .map(|i| {
                lines
                    .iter()
                    .filter(|l| l.len() > 1)
                    .filter_map(|l| l.get(i))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for l in &lines {
            let mut line = String::new();
            for (i, cell) in l.iter().enumerate() {
                if i + 1 == l.len() || l.len() == 2 && i == 1 {
                    line.push_str(cell);
                } else {
                    let _ = write!(line, "{cell:<w$}  ", w = widths[i]);
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(c: &str, i: &str) -> Target {
        Target::new(c.parse().unwrap(), i.parse().unwrap())
    }

    fn o(state: AuthorityState) -> Observation {
        Observation {
            state,
            unrecognized_status: None,
            rate_10m: crate::model::parse_rate("95.5%"),
            rate_1h: None,
            last_checked: Some(Utc::now() - chrono::TimeDelta::minutes(3)),
        }
    }

    #[test]
    fn exit_codes_follow_the_worst_row() {
        let online = Report { rows: vec![(t("NG", "BVN"), Ok(o(AuthorityState::Online)))] };
        assert_eq!(online.exit_code(), ALL_ONLINE);
        let degraded = Report {
            rows: vec![
                (t("NG", "BVN"), Ok(o(AuthorityState::Online))),
                (t("KE", "KRA_PIN"), Ok(o(AuthorityState::Interruption))),
            ],
        };
        assert_eq!(degraded.exit_code(), NOT_ALL_ONLINE);
        let failed = Report {
            rows: vec![
                (t("NG", "BVN"), Ok(o(AuthorityState::Offline))),
                (t("KE", "KRA_PIN"), Err(PollError::NoData("x".into()))),
            ],
        };
        assert_eq!(failed.exit_code(), ERROR);
    }

    #[test]
    fn the_table_reads_well() {
        let r = Report {
            rows: vec![
                (t("NG", "BVN"), Ok(o(AuthorityState::Online))),
                (t("KE", "NATIONAL_ID"), Err(PollError::Http { status: 503, message: "busy".into() })),
            ],
        };
        let s = r.render(Utc::now());
        let lines: Vec<&str> = s.lines().collect();
        assert!(lines[0].starts_with("PAIR            STATE"), "{s}");
        assert!(lines[1].contains("NG/BVN") && lines[1].contains("online") && lines[1].contains("95.5%"), "{s}");
        assert!(lines[1].ends_with("3m ago"), "{s}");
        assert!(lines[2].contains("poll failed (http_5xx): HTTP 503: busy"), "{s}");
    }
}
