//! Every point of the history as CSV or JSON, for the SLA reports users build: the
//! `history export` command writes it from the store file, and a running exporter (which
//! holds the file) serves the same at `/api/v1/history?format=csv`.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::Point;
use crate::model::{Target, timestamp};

/// An export's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One header line, then a line a point.
    Csv,
    /// One JSON array of objects.
    Json,
}

impl Format {
    /// `csv` or `json`.
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// The Content-Type of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8; header=present",
            Format::Json => "application/json",
        }
    }
}

/// The CSV columns: the pair, the poll's time and outcome, and what the provider said.
pub const CSV_HEADER: &str = "country,id_type,time,ok,state,rate_10m,rate_1h,last_checked\n";

/// Writes points one at a time, with the header or the array's brackets around them.
#[derive(Debug)]
pub struct Writer {
    format: Format,
    rows: usize,
}

impl Writer {
    /// A writer; [`Writer::start`] writes what goes before the first point.
    pub fn new(format: Format) -> Writer {
        Writer { format, rows: 0 }
    }

    /// The header (CSV) or the opening bracket (JSON).
    pub fn start(&self, out: &mut String) {
        match self.format {
            Format::Csv => out.push_str(CSV_HEADER),
            Format::Json => out.push('['),
        }
    }

    /// One point of `target`.
    pub fn point(&mut self, out: &mut String, target: &Target, p: &Point) {
        let time = |t: Option<DateTime<Utc>>| t.map(|t| timestamp::format(&t));
        match self.format {
            Format::Csv => {
                let rate = |r: Option<f64>| r.map_or(String::new(), |r| r.to_string());
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{},{}",
                    target.country,
                    target.id_type,
                    timestamp::format(&p.time),
                    p.ok,
                    p.state,
                    rate(p.rate_10m),
                    rate(p.rate_1h),
                    time(p.last_checked).unwrap_or_default()
                );
            }
            Format::Json => {
                out.push_str(if self.rows == 0 { "\n" } else { ",\n" });
                let row = serde_json::json!({
                    "country": target.country,
                    "id_type": target.id_type,
                    "time": timestamp::format(&p.time),
                    "ok": p.ok,
                    "state": p.state,
                    "rate_10m": p.rate_10m,
                    "rate_1h": p.rate_1h,
                    "last_checked": time(p.last_checked),
                });
                out.push_str(&row.to_string());
            }
        }
        self.rows += 1;
    }

    /// What goes after the last point.
    pub fn finish(&self, out: &mut String) {
        if self.format == Format::Json {
            out.push_str(if self.rows == 0 { "]\n" } else { "\n]\n" });
        }
    }

    /// Points written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AuthorityState;

    #[test]
    fn both_formats_write_every_field_exactly() {
        let t = Target::new("NG".parse().unwrap(), "BVN".parse().unwrap());
        let at = DateTime::from_timestamp_millis(1_767_225_660_250).unwrap();
        let points = [
            Point {
                time: at,
                ok: true,
                state: AuthorityState::Offline,
                rate_10m: Some(0.04),
                rate_1h: Some(0.315),
                last_checked: Some(at - chrono::TimeDelta::seconds(60)),
            },
            Point::failed(at + chrono::TimeDelta::minutes(10)),
        ];
        let mut out = String::new();
        let mut w = Writer::new(Format::Csv);
        w.start(&mut out);
        points.iter().for_each(|p| w.point(&mut out, &t, p));
        w.finish(&mut out);
        assert_eq!(
            out,
            "country,id_type,time,ok,state,rate_10m,rate_1h,last_checked\n\
             NG,BVN,2026-01-01T00:01:00.250Z,true,offline,0.04,0.315,2026-01-01T00:00:00.250Z\n\
             NG,BVN,2026-01-01T00:11:00.250Z,false,unknown,,,\n"
        );
        let mut out = String::new();
        let mut w = Writer::new(Format::Json);
        w.start(&mut out);
        points.iter().for_each(|p| w.point(&mut out, &t, p));
        w.finish(&mut out);
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back[0]["rate_1h"], 0.315);
        assert_eq!(back[0]["last_checked"], "2026-01-01T00:00:00.250Z");
        assert_eq!(back[1]["state"], "unknown");
        assert_eq!(w.rows(), 2);
        let mut empty = String::new();
        let w = Writer::new(Format::Json);
        w.start(&mut empty);
        w.finish(&mut empty);
        assert_eq!(serde_json::from_str::<serde_json::Value>(&empty).unwrap(), serde_json::json!([]));
    }
}
