//! Made-up history for benchmarks and demos (`idauth-exporter history fill`): what polling
//! a pair every 10 minutes would have recorded, with the odd outage, interruption and
//! failed poll, the same for the same pair every time.

use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Point;
use crate::model::{AuthorityState, Target};

/// The provider's window, and the poll period of the default schedule.
const STEP: TimeDelta = TimeDelta::minutes(10);

/// The points of `target` from `from` to `to`: a poll a minute after each 10-minute
/// window, the window's time as `last_checked`. About one day in three has an outage of
/// up to two hours, interruptions come and go, and one poll in 200 fails.
pub fn points(target: &Target, from: DateTime<Utc>, to: DateTime<Utc>) -> impl Iterator<Item = Point> + use<> {
    let seed = target
        .to_string()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let mut rng = StdRng::seed_from_u64(seed);
    let first = DateTime::from_timestamp(from.timestamp().div_euclid(600) * 600, 0).unwrap_or(from);
    let mut window = first;
    // Windows left in the current outage or interruption.
    let (mut offline, mut degraded) = (0u32, 0u32);
    std::iter::from_fn(move || {
        loop {
            let poll = window + TimeDelta::seconds(61);
            if poll >= to {
                return None;
            }
            let at = window;
            window += STEP;
            if offline == 0 && degraded == 0 {
                if rng.random_ratio(1, 432) {
                    offline = rng.random_range(1..=12);
                } else if rng.random_ratio(1, 144) {
                    degraded = rng.random_range(1..=4);
                }
            }
            let (state, rate) = if offline > 0 {
                offline -= 1;
                (AuthorityState::Offline, f64::from(rng.random_range(0..=40u32)) / 100.0)
            } else if degraded > 0 {
                degraded -= 1;
                (AuthorityState::Interruption, f64::from(rng.random_range(60..=90u32)) / 100.0)
            } else {
                (AuthorityState::Online, f64::from(rng.random_range(950..=1000u32)) / 1000.0)
            };
            if poll < from {
                continue;
            }
            if rng.random_ratio(1, 200) {
                return Some(Point::failed(poll));
            }
            return Some(Point {
                time: poll,
                ok: true,
                state,
                rate_10m: Some(rate),
                rate_1h: Some(((rate * 2.0 + 0.97) / 3.0 * 1000.0).round() / 1000.0),
                last_checked: Some(at),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_is_ten_minute_polls_with_some_outages_the_same_every_time() {
        let t = Target::new("NG".parse().unwrap(), "BVN".parse().unwrap());
        let to = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        let from = to - TimeDelta::days(30);
        let month: Vec<Point> = points(&t, from, to).collect();
        assert_eq!(month.len(), 30 * 144);
        assert!(month.windows(2).all(|w| w[1].time - w[0].time == STEP));
        assert!(month.iter().all(|p| p.time >= from && p.time < to));
        let count = |s| month.iter().filter(|p| p.ok && p.state == s).count();
        assert!(count(AuthorityState::Offline) > 0 && count(AuthorityState::Interruption) > 0, "some trouble");
        assert!(count(AuthorityState::Online) > month.len() * 9 / 10, "mostly online");
        assert!(month.iter().any(|p| !p.ok));
        assert_eq!(month, points(&t, from, to).collect::<Vec<_>>(), "the same every time");
        let other = Target::new("KE".parse().unwrap(), "NATIONAL_ID".parse().unwrap());
        assert_ne!(month, points(&other, from, to).collect::<Vec<_>>(), "each pair its own");
    }
}
