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
    let scenario = scenario();
    let sim = Simulator::new(scenario.clone(), account.clone(), SPEED, Arc::new(SystemClock));
    let bind_err = |source| AppError::Bind { address: "127.0.0.1:0".to_owned(), source };
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(bind_err)?;
    let simulator = listener.local_addr().map_err(bind_err)?;
    let sim_task = tokio::spawn(server::serve(listener, sim.handler(), shutdown.clone()));

    let config = exporter_config(&format!("http://{simulator}"), &account, SPEED, listen);
    let app = App::new(None, Loaded { config, warnings: Vec::new() })?;
    // A window passes every 10 seconds: the page follows without a finger on F5.
    app.refresh_landing_page_every((600.0 / SPEED).ceil().max(5.0) as u64);
    let (exporter, exporter_task) = app.start(listen, shutdown).await?;
    let handle = tokio::spawn(async move {
        let _ = exporter_task.await;
        let _ = sim_task.await;
    });
    Ok(Demo { exporter, simulator, app, handle })
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
         GH GHANA_CARD and KE KRA_PIN flap. The pairs come from the simulator's catalogue (discovery);\n\
         {} {} joins it after {} simulated minutes and is polled at once. Ctrl-C stops.",
        Scenario::builtin().pairs.len(),
        600.0 / SPEED,
        demo.simulator,
        ARRIVING.0,
        ARRIVING.1,
        ARRIVAL.as_secs() / 60,
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
}
