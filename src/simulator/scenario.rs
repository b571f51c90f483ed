//! Scenario files: per (country, id_type), a repeating timeline of success rates plus
//! optional noise and faults, and the provider's view computed from it at any time.
//!
//! The provider aggregates each authority over 10-minute windows. Simulated time runs
//! `speed` times faster than the clock: window `w` spans simulated seconds
//! `[600w, 600(w+1))`. At any moment the provider reports the last complete window
//! (`last_check_success_rate`, `last_checked` = its end), the mean of the last six
//! (`last_hour_success_rate`), and the state its thresholds give the window's rate.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::config::{ConfigError, HumanDuration, from_yaml, invalid};
use crate::model::{AuthorityState, Country, IdType, Target};

/// The provider's aggregation window, in simulated seconds.
pub const WINDOW_SECS: i64 = 600;
/// The longest a timeline segment or offset may be: a year of simulated time.
const LONGEST: Duration = Duration::from_secs(366 * 24 * 3600);

/// The scenario built into the binary: every documented pair, most healthy, a few
/// flapping, one going offline for a while every hour.
pub const DEFAULT: &str = include_str!("../../scenarios/default.yaml");

/// A parsed, validated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The simulated pairs, in file order.
    pub pairs: Vec<PairScenario>,
}

/// How one pair behaves.
#[derive(Clone, Debug)]
pub struct PairScenario {
    /// The pair.
    pub target: Target,
    /// Segments of (length in simulated seconds, success ratio), repeated forever.
    pub timeline: Vec<(i64, f64)>,
    /// Where in its timeline the pair is at simulated time zero, in simulated seconds.
    pub offset: i64,
    /// Each window's rate varies by up to this much either way.
    pub noise: f64,
    /// Misbehaviour of the endpoint itself.
    pub faults: Faults,
    /// The catalogue lists the pair from this many simulated seconds after the simulator
    /// started (`from:`)...
    pub listed_from: i64,
    /// ...until this many (`until:`), or for ever.
    pub listed_until: Option<i64>,
}

/// Misbehaviour of the id_status endpoint for one pair.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Extra delay before every answer (real time).
    pub latency: Duration,
    /// Share of requests answered HTTP 500.
    pub error_share: f64,
    /// Share of requests answered HTTP 429 with `Retry-After`.
    pub rate_limit_share: f64,
    /// The `Retry-After` of those 429s.
    pub retry_after: Duration,
    /// Share of requests answered 200 with a body that is not the documented JSON.
    pub malformed_share: f64,
    /// The provider has no data for the pair: every request gets "No data found".
    pub no_data: bool,
}

/// What the provider says about a pair at some moment.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderView {
    /// The last complete window's success rate, in percent with one decimal.
    pub rate_10m_percent: f64,
    /// Mean of the last six windows, in percent with one decimal.
    pub rate_1h_percent: f64,
    /// The state the thresholds give the last window.
    pub state: AuthorityState,
    /// The end of the last complete window, in real time.
    pub last_checked: DateTime<Utc>,
}

impl ProviderView {
    /// The documented five-field body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "last_checked": crate::signature::timestamp(self.last_checked),
            "last_check_status": if self.rate_10m_percent > 50.0 { "success" } else { "failure" },
            "last_hour_success_rate": percent_text(self.rate_1h_percent),
            "last_known_status": self.state.as_str(),
            "last_check_success_rate": percent_text(self.rate_10m_percent),
        })
    }
}

/// `97.5%`, `100%`: one decimal at most, as the provider writes them.
pub fn percent_text(p: f64) -> String {
    let s = format!("{p:.1}");
    format!("{}%", s.strip_suffix(".0").unwrap_or(&s))
}

fn round1(p: f64) -> f64 {
    (p * 10.0).round() / 10.0
}

/// splitmix64: a fixed, portable mix, so that noise is the same on every machine.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl PairScenario {
    fn seed(&self) -> u64 {
        // FNV-1a of the pair's name.
        let name = self.target.to_string();
        name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    }

    /// The success rate (percent, one decimal) of window `w`.
    pub fn window_percent(&self, w: i64) -> f64 {
        // Segments and offsets are at most a year each (checked when parsed), so these sums
        // stay far from overflow; the window index is reduced first for the same reason.
        let total: i64 = self.timeline.iter().map(|(len, _)| len).sum::<i64>().max(1);
        let w_in_cycle = w.rem_euclid(total);
        let mut pos = (w_in_cycle * WINDOW_SECS + self.offset).rem_euclid(total);
        let mut ratio = self.timeline[0].1;
        for (len, r) in &self.timeline {
            if pos < *len {
                ratio = *r;
                break;
            }
            pos -= len;
        }
        if self.noise > 0.0 {
            let u = (mix(self.seed() ^ (w as u64)) >> 11) as f64 / (1u64 << 53) as f64;
            ratio += self.noise * (2.0 * u - 1.0);
        }
        round1(ratio.clamp(0.0, 1.0) * 100.0)
    }

    /// What the provider reports at real time `now` when simulated time runs `speed` times faster.
    pub fn view_at(&self, now: DateTime<Utc>, speed: f64) -> ProviderView {
        let sim_secs = (now.timestamp_millis() as f64 / 1000.0 * speed).floor() as i64;
        let current = sim_secs.div_euclid(WINDOW_SECS);
        let last = current - 1;
        let rate_10m = self.window_percent(last);
        let hour: f64 = (0..6).map(|i| self.window_percent(last - i)).sum::<f64>() / 6.0;
        let end_ms = (current * WINDOW_SECS) as f64 * 1000.0 / speed;
        ProviderView {
            rate_10m_percent: rate_10m,
            rate_1h_percent: round1(hour),
            state: AuthorityState::from_success_ratio(rate_10m / 100.0),
            last_checked: Utc.timestamp_millis_opt(end_ms as i64).single().unwrap_or(now),
        }
    }
}

impl PairScenario {
    /// Whether the catalogue lists the pair `elapsed` simulated seconds after the start.
    pub fn listed_at(&self, elapsed: i64) -> bool {
        elapsed >= self.listed_from && self.listed_until.is_none_or(|u| elapsed < u)
    }
}

impl Scenario {
    /// The built-in scenario.
    pub fn builtin() -> Scenario {
        Scenario::parse(DEFAULT, "<built-in default scenario>").expect("the built-in scenario is valid")
    }

    /// Reads a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ConfigError> {
        let text = crate::config::read_file(path, crate::files::CONFIG_LIMIT)?;
        Scenario::parse(&text, &path.display().to_string())
    }

    /// Parses and validates scenario text; errors name `file`, the line and the key.
    pub fn parse(text: &str, file: &str) -> Result<Scenario, ConfigError> {
        let raw: RawScenario = from_yaml(text, file)?;
        if raw.pairs.value.is_empty() {
            return Err(invalid(
                file,
                &raw.pairs.referenced,
                "pairs: the list is empty; expected at least one pair".into(),
            ));
        }
        let mut seen = HashSet::new();
        let mut pairs = Vec::new();
        for p in raw.pairs.value {
            if p.timeline.value.is_empty() {
                return Err(invalid(
                    file,
                    &p.timeline.referenced,
                    "timeline: empty; expected segments such as {for: 40m, success_rate: 0.98}".into(),
                ));
            }
            let mut timeline = Vec::new();
            for seg in &p.timeline.value {
                let secs = seg.for_.value.0.as_secs() as i64;
                if secs <= 0 || seg.for_.value.0 > LONGEST {
                    return Err(invalid(
                        file,
                        &seg.for_.referenced,
                        "timeline.for: out of range; expected from 1s to a year".into(),
                    ));
                }
                if !(0.0..=1.0).contains(&seg.success_rate.value) {
                    return Err(invalid(
                        file,
                        &seg.success_rate.referenced,
                        format!(
                            "timeline.success_rate: {} is out of range; expected a ratio from 0 to 1",
                            seg.success_rate.value
                        ),
                    ));
                }
                timeline.push((secs, seg.success_rate.value));
            }
            let share = |s: &Option<Spanned<f64>>, key: &str| -> Result<f64, ConfigError> {
                match s {
                    Some(v) if !(0.0..=1.0).contains(&v.value) => Err(invalid(
                        file,
                        &v.referenced,
                        format!("{key}: {} is out of range; expected a share from 0 to 1", v.value),
                    )),
                    Some(v) => Ok(v.value),
                    None => Ok(0.0),
                }
            };
            let noise = share(&p.noise, "noise")?;
            let f = p.faults.unwrap_or_default();
            let faults = Faults {
                latency: f.latency.map_or(Duration::ZERO, |d| d.0),
                error_share: share(&f.error_share, "faults.error_share")?,
                rate_limit_share: share(&f.rate_limit_share, "faults.rate_limit_share")?,
                retry_after: f.retry_after.map_or(Duration::from_secs(1), |d| d.0),
                malformed_share: share(&f.malformed_share, "faults.malformed_share")?,
                no_data: f.no_data.unwrap_or(false),
            };
            if faults.error_share + faults.rate_limit_share + faults.malformed_share > 1.0 {
                let at = f.error_share.or(f.rate_limit_share).or(f.malformed_share).map(|s| s.referenced);
                return Err(invalid(
                    file,
                    &at.unwrap_or(p.country.referenced),
                    "faults: error_share + rate_limit_share + malformed_share is more than 1".into(),
                ));
            }
            let offset = match p.offset {
                Some(o) if o.value.0 > LONGEST => {
                    return Err(invalid(file, &o.referenced, "offset: out of range; expected at most a year".into()));
                }
                Some(o) => o.value.0.as_secs() as i64,
                None => 0,
            };
            let listed_from = match &p.from {
                Some(f) if f.value.0 > LONGEST => {
                    return Err(invalid(file, &f.referenced, "from: out of range; expected at most a year".into()));
                }
                Some(f) => f.value.0.as_secs() as i64,
                None => 0,
            };
            let listed_until = match &p.until {
                Some(u) if u.value.0 > LONGEST || u.value.0.as_secs() as i64 <= listed_from => {
                    return Err(invalid(
                        file,
                        &u.referenced,
                        "until: out of range; expected later than from and at most a year".into(),
                    ));
                }
                Some(u) => Some(u.value.0.as_secs() as i64),
                None => None,
            };
            for id in p.id_types.value {
                let target = Target::new(p.country.value, id.value);
                if !seen.insert(target.clone()) {
                    return Err(invalid(
                        file,
                        &id.referenced,
                        format!("pairs: {} {} is listed twice", target.country, target.id_type),
                    ));
                }
                pairs.push(PairScenario {
                    target,
                    timeline: timeline.clone(),
                    offset,
                    noise,
                    faults: faults.clone(),
                    listed_from,
                    listed_until,
                });
            }
        }
        Ok(Scenario { pairs })
    }

    /// The same scenario with every pair at its `offset` in the window the provider reports
    /// at `start` (the last one complete then), instead of wherever the clock happens to
    /// be: the demo tells its story from the beginning whenever it is started.
    pub fn starting_at(mut self, start: DateTime<Utc>, speed: f64) -> Scenario {
        let sim_secs = (start.timestamp_millis() as f64 / 1000.0 * speed).floor() as i64;
        let first = (sim_secs.div_euclid(WINDOW_SECS) - 1) * WINDOW_SECS;
        for p in &mut self.pairs {
            let total: i64 = p.timeline.iter().map(|(len, _)| len).sum::<i64>().max(1);
            p.offset = (p.offset - first).rem_euclid(total);
        }
        self
    }

    /// The scenario of one pair.
    pub fn pair(&self, target: &Target) -> Option<&PairScenario> {
        self.pairs.iter().find(|p| p.target == *target)
    }

    /// Every simulated pair.
    pub fn targets(&self) -> Vec<Target> {
        self.pairs.iter().map(|p| p.target.clone()).collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    pairs: Spanned<Vec<RawPair>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPair {
    country: Spanned<Country>,
    id_types: Spanned<Vec<Spanned<IdType>>>,
    timeline: Spanned<Vec<RawSegment>>,
    #[serde(default)]
    offset: Option<Spanned<HumanDuration>>,
    #[serde(default)]
    noise: Option<Spanned<f64>>,
    #[serde(default)]
    faults: Option<RawFaults>,
    /// Simulated time after the start from which the catalogue lists the pair.
    #[serde(default)]
    from: Option<Spanned<HumanDuration>>,
    /// Simulated time after the start from which the catalogue no longer lists it.
    #[serde(default)]
    until: Option<Spanned<HumanDuration>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSegment {
    #[serde(rename = "for")]
    for_: Spanned<HumanDuration>,
    success_rate: Spanned<f64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFaults {
    latency: Option<HumanDuration>,
    error_share: Option<Spanned<f64>>,
    rate_limit_share: Option<Spanned<f64>>,
    retry_after: Option<HumanDuration>,
    malformed_share: Option<Spanned<f64>>,
    no_data: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = "pairs:\n  - country: NG\n    id_types: [BVN]\n    timeline:\n      - {for: 40m, success_rate: 0.98}\n      - {for: 20m, success_rate: 0.2}\n";

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    #[test]
    fn windows_follow_the_timeline_and_the_hour_is_their_mean() {
        let s = Scenario::parse(ONE, "s.yaml").unwrap();
        let p = &s.pairs[0];
        // The timeline is an hour long: windows 0-3 healthy, 4-5 failing, repeating.
        let rates: Vec<f64> = (0..8).map(|w| p.window_percent(w)).collect();
        assert_eq!(rates, [98.0, 98.0, 98.0, 98.0, 20.0, 20.0, 98.0, 98.0]);
        // Real time 3h 25m at speed 1: window 20 is running, 19 is the last complete.
        let v = p.view_at(at(3 * 3600 + 25 * 60), 1.0);
        assert_eq!(v.rate_10m_percent, 98.0);
        assert_eq!(v.state, AuthorityState::Online);
        assert_eq!(v.last_checked, at(3 * 3600 + 20 * 60));
        // The last six windows, 14 to 19, hold four healthy ones and two failing ones.
        assert_eq!(v.rate_1h_percent, 72.0);
        let v = p.view_at(at(55 * 60), 1.0);
        assert_eq!((v.rate_10m_percent, v.state), (20.0, AuthorityState::Offline));
        // Windows -1 to 4: 20, 98, 98, 98, 98, 20.
        assert_eq!(v.rate_1h_percent, 72.0);
    }

    #[test]
    fn from_and_until_bound_the_catalogue_listing() {
        let text = ONE.replace("    timeline:", "    from: 30m\n    until: 2h\n    timeline:");
        let p = Scenario::parse(&text, "s.yaml").unwrap().pairs.remove(0);
        assert_eq!((p.listed_at(0), p.listed_at(1799), p.listed_at(1800)), (false, false, true));
        assert_eq!((p.listed_at(7199), p.listed_at(7200)), (true, false));
        assert!(Scenario::parse(ONE, "s.yaml").unwrap().pairs[0].listed_at(i64::MAX));
        let bad = ONE.replace("    timeline:", "    from: 2h\n    until: 1h\n    timeline:");
        let e = Scenario::parse(&bad, "s.yaml").unwrap_err().to_string();
        assert!(e.starts_with("s.yaml:5:") && e.contains("until"), "{e}");
    }

    #[test]
    fn speed_compresses_time() {
        let s = Scenario::parse(ONE, "s.yaml").unwrap();
        let p = &s.pairs[0];
        // At 60x a window lasts 10 real seconds and last_checked is in real time.
        let v = p.view_at(at(1_800_000_005), 60.0);
        assert_eq!(v.last_checked, at(1_800_000_000));
        assert_eq!(p.view_at(at(1_800_000_015), 60.0).last_checked, at(1_800_000_010));
    }

    #[test]
    fn noise_is_bounded_and_repeatable() {
        let text = ONE.replace("    timeline:", "    noise: 0.05\n    timeline:");
        let p = Scenario::parse(&text, "s.yaml").unwrap().pairs.remove(0);
        for w in 0..200 {
            let r = p.window_percent(w);
            let base = if w.rem_euclid(6) < 4 { 98.0 } else { 20.0 };
            assert!((r - base).abs() <= 5.0 + 1e-9 && r <= 100.0, "{w}: {r}");
            assert_eq!(r, p.window_percent(w));
        }
    }

    #[test]
    fn bodies_look_like_the_provider() {
        assert_eq!(percent_text(97.5), "97.5%");
        assert_eq!(percent_text(100.0), "100%");
        assert_eq!(percent_text(0.0), "0%");
        let s = Scenario::parse(ONE, "s.yaml").unwrap();
        let body = s.pairs[0].view_at(at(55 * 60), 1.0).body();
        assert_eq!(body["last_known_status"], "offline");
        assert_eq!(body["last_check_status"], "failure");
        assert_eq!(body["last_check_success_rate"], "20%");
        assert_eq!(body["last_checked"], "1970-01-01T00:50:00.000Z");
        let parsed = crate::smileid::parse_status_body(body.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.rate_10m.map(|r| r.to_string()).as_deref(), Some("0.2"));
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let bad = ONE.replace("success_rate: 0.2", "success_rate: 1.5");
        let e = Scenario::parse(&bad, "s.yaml").unwrap_err().to_string();
        assert!(e.starts_with("s.yaml:6:") && e.contains("timeline.success_rate"), "{e}");
        let bad = ONE.replace("for: 40m", "for: often");
        let e = Scenario::parse(&bad, "s.yaml").unwrap_err().to_string();
        assert!(e.starts_with("s.yaml:5:") && e.contains("not a duration"), "{e}");
        let bad = ONE.replace("    timeline:", "    colour: red\n    timeline:");
        let e = Scenario::parse(&bad, "s.yaml").unwrap_err().to_string();
        assert!(e.starts_with("s.yaml:4:") && e.contains("colour"), "{e}");
        let bad = format!("{ONE}    faults: {{error_share: 0.7, malformed_share: 0.7}}\n");
        let e = Scenario::parse(&bad, "s.yaml").unwrap_err().to_string();
        assert!(e.contains("more than 1"), "{e}");
        let bad = ONE.replace("[BVN]", "[BVN, BVN]");
        assert!(Scenario::parse(&bad, "s.yaml").unwrap_err().to_string().contains("twice"));
        assert!(Scenario::parse("pairs: []\n", "s.yaml").is_err());
    }

    #[test]
    fn shipped_scenarios_are_valid() {
        let builtin = Scenario::builtin();
        let documented: usize = crate::catalog::CURRENT.iter().map(|(_, t)| t.len()).sum();
        assert_eq!(builtin.pairs.len(), documented, "the default covers every documented pair");
        for f in ["nigeria-outage.yaml", "chaos.yaml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(f);
            Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn a_scenario_can_start_at_the_beginning_of_its_timelines() {
        // ONE: 40 minutes at 98%, then 20 at 20%. At 60x a window passes every 10 s.
        for into_window in 0..10 {
            let start = at(1_795_686_600 + into_window);
            let p = Scenario::parse(ONE, "s.yaml").unwrap().starting_at(start, 60.0).pairs.remove(0);
            let rate = |after: i64| p.view_at(start + chrono::TimeDelta::seconds(after), 60.0).rate_10m_percent;
            assert_eq!(rate(0), 98.0, "the first window reported is the timeline's first");
            assert_eq!(rate(45), 20.0, "40 simulated minutes in, about 40 s later");
            assert_eq!(rate(65), 98.0, "and again after the hour");
        }
        // Its own offset still counts: 40 minutes in is the outage.
        let late = ONE.replace("    timeline:", "    offset: 40m\n    timeline:");
        let start = at(1_795_686_605);
        let p = Scenario::parse(&late, "s.yaml").unwrap().starting_at(start, 60.0).pairs.remove(0);
        assert_eq!(p.view_at(start, 60.0).rate_10m_percent, 20.0);
    }

    #[test]
    fn extreme_durations_and_times_are_refused_or_survived() {
        let huge = ONE.replace("for: 40m", "for: 1000000000y");
        let e = Scenario::parse(&huge, "s.yaml").unwrap_err().to_string();
        assert!(e.contains("timeline.for: out of range"), "{e}");
        let far = ONE.replace("    timeline:", "    offset: 400d\n    timeline:");
        assert!(Scenario::parse(&far, "s.yaml").unwrap_err().to_string().contains("offset: out of range"));
        let p = Scenario::parse(ONE, "s.yaml").unwrap().pairs.remove(0);
        for w in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
            let r = p.window_percent(w);
            assert!((0.0..=100.0).contains(&r));
        }
        let v = p.view_at(Utc.timestamp_opt(4_000_000_000, 0).unwrap(), 1_000_000.0);
        assert!((0.0..=100.0).contains(&v.rate_10m_percent));
    }

    proptest::proptest! {
        #[test]
        fn no_text_panics_the_parser(s in "\\PC{0,200}") {
            let _ = Scenario::parse(&s, "fuzz.yaml");
        }
    }
}
