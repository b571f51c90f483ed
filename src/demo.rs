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
use crate::config::{ApiFlavor, Config, Environment, Loaded, PollConfig, Schedule, SmileIdConfig, WebConfig};
use crate::history::{History, Point};
use crate::model::Observation;
use crate::secret::Secret;
use crate::server;
use crate::simulator::{Account, Scenario, Simulator, SystemClock};

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

/// The exporter configuration matching a simulator at `base_url` running `scenario` at `speed`.
pub fn exporter_config(base_url: &str, account: &Account, scenario: &Scenario, speed: f64, listen: &str) -> Config {
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
        targets: {
            let mut targets = scenario.targets();
            targets.sort();
            targets
        },
        web: WebConfig { listen_address: listen.to_owned() },
    }
}

/// Starts the simulator (on a free loopback port) and the exporter polling it.
pub async fn start(listen: &str, shutdown: CancellationToken) -> Result<Demo, AppError> {
    let key: [u8; 24] = rand::rng().random();
    let account = Account {
        partner_id: "085".to_owned(),
        api_key: Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)),
        environment: Environment::Production,
    };
    let scenario = Scenario::builtin();
    let sim = Simulator::new(scenario.clone(), account.clone(), SPEED, Arc::new(SystemClock));
    let bind_err = |source| AppError::Bind { address: "127.0.0.1:0".to_owned(), source };
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(bind_err)?;
    let simulator = listener.local_addr().map_err(bind_err)?;
    let sim_task = tokio::spawn(server::serve(listener, sim.handler(), shutdown.clone()));

    let config = exporter_config(&format!("http://{simulator}"), &account, &scenario, SPEED, listen);
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
                rate_10m: Some(v.rate_10m_percent / 100.0),
                rate_1h: Some(v.rate_1h_percent / 100.0),
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
         \nNG NIN_V2 goes offline for 20 simulated minutes of every hour (20 seconds of every minute);\n\
         GH GHANA_CARD and KE KRA_PIN flap. Ctrl-C stops.",
        demo.app.config().targets.len(),
        600.0 / SPEED,
        demo.simulator,
    );
    let _ = demo.handle.await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_follows_the_speed() {
        let account = Account { partner_id: "1".into(), api_key: Secret::new("k"), environment: Environment::Sandbox };
        let s = Scenario::builtin();
        let c = exporter_config("http://x", &account, &s, 60.0, "127.0.0.1:0");
        assert_eq!(c.poll.schedule.as_str(), "1/10 * * * * *");
        assert_eq!(c.poll.schedule.period(), Duration::from_secs(10));
        assert!(c.poll.max_data_age > c.poll.schedule.period());
        assert!(c.poll.timeout <= c.poll.schedule.period());
        assert_eq!(c.targets.len(), s.pairs.len());
        let real_time = exporter_config("http://x", &account, &s, 1.0, "127.0.0.1:0");
        assert_eq!(real_time.poll.schedule.as_str(), "1 */10 * * * *");
    }
}
