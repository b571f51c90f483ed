//! `idauth-exporter demo`: the simulator and the exporter in one process, no account needed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rand::Rng;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::{App, AppError};
use crate::config::{
    ApiFlavor, Config, DiscoveryConfig, Environment, Loaded, PollConfig, Schedule, SmileIdConfig, WebConfig,
};
use crate::history::{History, Point};
use crate::model::{Observation, Rate};
use crate::secret::Secret;
use crate::simulator::{Account, Scenario, Simulator, SystemClock};
use crate::web::http as server;

/// Simulated time runs this much faster: a 10-minute window every 10 seconds, an hour a minute.
pub const SPEED: f64 = 60.0;
/// The demo serves on loopback unless told otherwise: it is for the person at this machine.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9877";

/// A running demo.
#[derive(Debug)]
pub struct Demo {
    /// Where the exporter serves.
    pub exporter: SocketAddr,
    /// Where the simulator serves.
    pub simulator: SocketAddr,
    /// The exporter.
    pub app: Arc<App>,
    /// Ends when both servers have stopped.
    pub handle: JoinHandle<()>,
}

/// The exporter configuration matching a simulator at `base_url` running at `speed`; the
/// pairs come from the simulator's catalogue.
pub fn exporter_config(base_url: &str, account: &Account, speed: f64, listen: &str) -> Config {
    // Poll a second after each simulated window closes, and call data stale after three.
    let secs = (600.0 / speed).round().max(1.0) as u64;
    let schedule = match secs {
        1 => "* * * * * *".to_owned(),
        2..=59 => format!("1/{secs} * * * * *"),
        _ => format!("1 */{} * * * *", (secs / 60).clamp(1, 59)),
    };
    let period = Schedule::parse(&schedule).expect("a valid schedule").period();
    Config {
        smile_id: SmileIdConfig {
            partner_id: account.partner_id.clone(),
            api_key: account.api_key.clone(),
            environment: account.environment,
            api: ApiFlavor::V2,
            base_url: Some(base_url.to_owned()),
        },
        poll: PollConfig {
            schedule: Schedule::parse(&schedule).expect("a valid schedule"),
            timeout: period.min(Duration::from_secs(5)),
            retries: 1,
            concurrency: 8,
            jitter: Duration::ZERO,
            max_data_age: period * 3 + Duration::from_secs(1),
        },
        // Nothing listed by hand: the demo watches what the simulator's catalogue lists,
        // re-read every three simulated windows so that a pair's arrival shows within seconds.
        targets: Vec::new(),
        web: WebConfig { listen_address: listen.to_owned() },
        discovery: DiscoveryConfig { enabled: true, refresh: period * 3, ..Default::default() },
        notify: Default::default(),
    }
}

/// The pair that joins the demo's catalogue after [`ARRIVAL`] of simulated time, to show
/// discovery at work.
pub const ARRIVING: (&str, &str) = ("NG", "BVN_MFA");
/// When [`ARRIVING`] joins the catalogue, in simulated time after the start.
pub const ARRIVAL: Duration = Duration::from_secs(30 * 60);

/// The built-in scenario plus [`ARRIVING`], listed from [`ARRIVAL`] on.
pub fn scenario() -> Scenario {
    let mut scenario = Scenario::builtin();
    let mut late = scenario.pairs[0].clone();
    late.target =
        crate::model::Target::new(ARRIVING.0.parse().expect("a country"), ARRIVING.1.parse().expect("an ID type"));
    late.listed_from = ARRIVAL.as_secs() as i64;
    late.listed_until = None;
    scenario.pairs.push(late);
    scenario
}

/// Starts the simulator (on a free loopback port) and the exporter polling it.
pub async fn start(listen: &str, shutdown: CancellationToken) -> Result<Demo, AppError> {
    let key: [u8; 24] = rand::rng().random();
    let account = Account {
        partner_id: "085".to_owned(),
        api_key: Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)),
        environment: Environment::Production,
    };
    // From its beginning: the outage is on the page from the first poll, whenever one starts.
    let scenario = scenario().starting_at(chrono::Utc::now(), SPEED);
    let sim = Simulator::new(scenario.clone(), account.clone(), SPEED, Arc::new(SystemClock));
    let bind_err = |source| AppError::Bind { address: "127.0.0.1:0".to_owned(), source };
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(bind_err)?;
    let simulator = listener.local_addr().map_err(bind_err)?;
    let sim_task = tokio::spawn(server::serve(listener, sim.handler(), shutdown.clone()));

    let config = exporter_config(&format!("http://{simulator}"), &account, SPEED, listen);
    let app = App::new(None, Loaded { config, warnings: Vec::new() })?;
    // The status page shows days of history from the first second: the past is the
    // scenario played at real speed, one poll per 10-minute window, in memory only.
    let history = app.open_history(None, crate::history::DEFAULT_RETENTION);
    seed_history(&history, &scenario, chrono::Utc::now(), crate::history::DEFAULT_RETENTION);
    app.use_history(history);
    // A window passes every 10 seconds: the page follows without a finger on F5.
    app.refresh_landing_page_every((600.0 / SPEED).ceil().max(5.0) as u64);
    let (exporter, exporter_task) = app.start(listen, shutdown).await?;
    let handle = tokio::spawn(async move {
        let _ = exporter_task.await;
        let _ = sim_task.await;
    });
    Ok(Demo { exporter, simulator, app, handle })
}

/// Fills `history` with what polling `scenario` (at real speed) every 10 minutes over the
/// `span` before `now` would have recorded.
pub fn seed_history(history: &History, scenario: &Scenario, now: chrono::DateTime<chrono::Utc>, span: Duration) {
    let step = chrono::TimeDelta::minutes(10);
    let start = now - chrono::TimeDelta::from_std(span).unwrap_or(chrono::TimeDelta::days(30));
    for pair in &scenario.pairs {
        let mut at = start;
        while at < now {
            let v = pair.view_at(at, 1.0);
            let o = Observation {
                state: v.state,
                unrecognized_status: None,
                rate_10m: Rate::from_f64(v.rate_10m_percent / 100.0),
                rate_1h: Rate::from_f64(v.rate_1h_percent / 100.0),
                last_checked: Some(v.last_checked),
            };
            history.append(&pair.target, Point::observed(at, &o));
            at += step;
        }
    }
}

/// Runs the demo until `shutdown` is cancelled, telling the person where to look.
pub async fn run(listen: Option<&str>, shutdown: CancellationToken) -> Result<(), AppError> {
    let listen = match listen {
        Some(a) => crate::config::normalize_listen_address(a).unwrap_or_else(|| a.to_owned()),
        None => DEFAULT_LISTEN.to_owned(),
    };
    let demo = start(&listen, shutdown).await?;
    let shown = if demo.exporter.ip().is_unspecified() {
        format!("localhost:{}", demo.exporter.port())
    } else {
        demo.exporter.to_string()
    };
    println!(
        "idauth-exporter demo: {} simulated ID authorities, simulated time {SPEED}x (a 10-minute window every {}s)\n\
         \n  landing page  http://{shown}/\n  metrics       http://{shown}/metrics\n  status (JSON) http://{shown}/api/v1/status\n  simulator     http://{}\n\
         \n{}The pairs come from the simulator's catalogue (discovery): {} {} joins it after {} simulated\n\
         minutes and is polled at once. Ctrl-C stops.",
        Scenario::builtin().pairs.len(),
        600.0 / SPEED,
        demo.simulator,
        timeline_banner(&Scenario::builtin(), SPEED),
        ARRIVING.0,
        ARRIVING.1,
        ARRIVAL.as_secs() / 60,
    );
    let _ = demo.handle.await;
    Ok(())
}

/// When each pair changes state, in real time from the demo's start (one line a pair that
/// changes), from the scenario itself so that the two never disagree.
pub fn timeline_banner(scenario: &Scenario, speed: f64) -> String {
    let real = |sim_secs: i64| {
        let d = Duration::from_secs_f64(sim_secs as f64 / speed);
        crate::config::fmt_duration(d).replace(' ', "")
    };
    let mut lines = Vec::new();
    let mut steady = Vec::new();
    for p in &scenario.pairs {
        // Walk one cycle from where the pair starts, merging segments of the same state.
        let total: i64 = p.timeline.iter().map(|(len, _)| len).sum::<i64>().max(1);
        let mut spans: Vec<(crate::model::AuthorityState, i64)> = Vec::new();
        let (mut t, mut pos) = (0, p.offset.rem_euclid(total));
        while t < total {
            let mut seg_start = 0;
            for (len, ratio) in &p.timeline {
                if pos < seg_start + len {
                    let left = (seg_start + len - pos).min(total - t);
                    let state = crate::model::AuthorityState::from_success_ratio(*ratio);
                    if spans.last().is_none_or(|(s, _)| *s != state) {
                        spans.push((state, t));
                    }
                    t += left;
                    pos = (pos + left) % total;
                    break;
                }
                seg_start += len;
            }
        }
        if spans.len() > 1 {
            let events: Vec<String> = spans
                .iter()
                .map(
                    |(state, at)| {
                        if *at == 0 { format!("{state} at once") } else { format!("{state} at {}", real(*at)) }
                    },
                )
                .collect();
            let name = format!("{} {}", p.target.country, p.target.id_type);
            lines.push(format!("  {name:<16} {}; the same every {}\n", events.join(", "), real(total)));
        } else {
            steady.extend(spans.first().map(|(state, _)| *state));
        }
    }
    let rest = match steady.first() {
        Some(first) if steady.iter().all(|s| s == first) => {
            format!("  the other {} pairs stay {first}\n", steady.len())
        }
        Some(_) => format!("  the other {} pairs do not change\n", steady.len()),
        None => String::new(),
    };
    format!(
        "What happens, from now (one simulated minute a second; the page and /metrics show each\n\
         change within 10 s of the time given):\n{}{rest}\n",
        lines.concat()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_follows_the_speed() {
        let account = Account { partner_id: "1".into(), api_key: Secret::new("k"), environment: Environment::Sandbox };
        let c = exporter_config("http://x", &account, 60.0, "127.0.0.1:0");
        assert_eq!(c.poll.schedule.as_str(), "1/10 * * * * *");
        assert_eq!(c.poll.schedule.period(), Duration::from_secs(10));
        assert!(c.poll.max_data_age > c.poll.schedule.period());
        assert!(c.poll.timeout <= c.poll.schedule.period());
        assert!(c.targets.is_empty() && c.discovery.enabled, "the demo discovers its pairs");
        assert!(c.discovery.refresh <= c.poll.schedule.period() * 3);
        let real_time = exporter_config("http://x", &account, 1.0, "127.0.0.1:0");
        assert_eq!(real_time.poll.schedule.as_str(), "1 */10 * * * *");
    }

    #[test]
    fn the_banner_says_when_each_change_happens() {
        let banner = timeline_banner(&Scenario::builtin(), SPEED);
        for line in [
            "  NG NIN_V2        offline at once, online at 1m30s; the same every 2m\n",
            "  GH GHANA_CARD    online at once, interruption at 10s; the same every 20s\n",
            "  KE KRA_PIN       online at once, interruption at 20s; the same every 30s\n",
            "  ZA PHONE_NUMBER  online at once, interruption at 40s, online at 50s; the same every 1m\n",
        ] {
            assert!(banner.contains(line), "{line:?} in\n{banner}");
        }
        assert_eq!(banner.matches(" at once").count(), 4, "{banner}");
        let steady = Scenario::builtin().pairs.len() - 4;
        assert!(banner.contains(&format!("the other {steady} pairs stay online\n")), "{banner}");
    }

    #[test]
    fn noise_never_moves_a_window_into_another_state() {
        // Otherwise the banner's times would not be what the page shows.
        use crate::model::AuthorityState;
        for p in Scenario::builtin().pairs {
            for (_, r) in &p.timeline {
                let state = AuthorityState::from_success_ratio(*r);
                for edge in [(r - p.noise - 0.001).max(0.0), (r + p.noise + 0.001).min(1.0)] {
                    assert_eq!(AuthorityState::from_success_ratio(edge), state, "{} at {r}", p.target);
                }
            }
        }
    }
}
