//! `idauth-exporter demo`: the simulator, the exporter and a webhook receiver in one process,
//! no account needed.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use rand::Rng;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::{App, AppError};
use crate::config::{
    ApiFlavor, Config, DiscoveryConfig, Environment, Loaded, PollConfig, Schedule, SmileIdConfig, WebConfig,
    WebhookConfig,
};
use crate::history::{History, Point};
use crate::model::{Observation, Rate};
use crate::notify::sign;
use crate::secret::{Secret, WebhookSecret};
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
    /// Where the demo's webhook receiver serves (it takes webhooks on [`RECEIVER_PATH`]).
    pub receiver: SocketAddr,
    /// What the receiver has taken.
    pub received: Arc<Received>,
    /// The exporter.
    pub app: Arc<App>,
    /// Ends when the three servers have stopped.
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

/// The built-in scenario plus [`ARRIVING`], listed from [`ARRIVAL`] on and online like
/// the steady pairs: it shows up as what it is, a new pair, not as another outage.
pub fn scenario() -> Scenario {
    let mut scenario = Scenario::builtin();
    let steady = scenario.pairs.last().expect("the built-in scenario has pairs");
    let mut late = steady.clone();
    late.target =
        crate::model::Target::new(ARRIVING.0.parse().expect("a country"), ARRIVING.1.parse().expect("an ID type"));
    late.listed_from = ARRIVAL.as_secs() as i64;
    late.listed_until = None;
    scenario.pairs.push(late);
    scenario
}

/// How long before the demo's start its seeded history ends: longer than a run of one
/// state lasts without a poll, so the live polls begin runs of their own and every
/// "since" is the demo's start or later; the gap shows as unknown, the exporter not running.
pub const SEED_GAP: Duration = Duration::from_secs(15 * 60);

/// Starts the simulator and the webhook receiver (each on a free loopback port) and the
/// exporter polling the one and notifying the other.
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

    // The webhook receiver, on a port of its own, with a secret made up for this run.
    let secret = WebhookSecret::parse(&format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(rand::rng().random::<[u8; 32]>())
    ))
    .expect("32 random bytes make a webhook secret");
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(bind_err)?;
    let receiver = listener.local_addr().map_err(bind_err)?;
    let received = Arc::new(Received::default());
    let receiver_task =
        tokio::spawn(server::serve(listener, receiver_handler(secret.clone(), received.clone()), shutdown.clone()));

    let mut config = exporter_config(&format!("http://{simulator}"), &account, SPEED, listen);
    config.notify.webhooks = vec![WebhookConfig {
        name: RECEIVER_WEBHOOK.to_owned(),
        url: reqwest::Url::parse(&format!("http://{receiver}{RECEIVER_PATH}")).expect("a valid URL"),
        secret,
        countries: Vec::new(),
        id_types: Vec::new(),
        states: Vec::new(),
        timeout: crate::config::DEFAULT_WEBHOOK_TIMEOUT,
    }];
    let app = App::new(None, Loaded { config, warnings: Vec::new() })?;
    // The status page shows days of history from the first second: the past is the
    // scenario played at real speed, one poll per 10-minute window, in memory only, up to
    // SEED_GAP before now.
    let history = app.open_history(None, crate::history::DEFAULT_RETENTION);
    let until = chrono::Utc::now() - chrono::TimeDelta::from_std(SEED_GAP).unwrap_or_default();
    seed_history(&history, &scenario, until, crate::history::DEFAULT_RETENTION);
    app.use_history(history);
    // A window passes every 10 seconds: the page follows without a finger on F5.
    app.refresh_landing_page_every((600.0 / SPEED).ceil().max(5.0) as u64);
    let (exporter, exporter_task) = app.start(listen, shutdown).await?;
    let handle = tokio::spawn(async move {
        let _ = exporter_task.await;
        let _ = sim_task.await;
        let _ = receiver_task.await;
    });
    Ok(Demo { exporter, simulator, receiver, received, app, handle })
}

/// The name of the demo's webhook, in the exporter's logs and metrics.
pub const RECEIVER_WEBHOOK: &str = "demo-receiver";
/// Where the demo's receiver takes webhooks.
pub const RECEIVER_PATH: &str = "/hooks";
/// How far a `webhook-timestamp` may be from now, as the Standard Webhooks libraries allow.
const TIMESTAMP_TOLERANCE: i64 = 5 * 60;
/// The largest body the receiver reads (an event is about 300 bytes).
const RECEIVER_BODY_LIMIT: usize = 64 * 1024;
/// The events the receiver remembers (and deduplicates against): the demo runs for hours.
const RECEIVER_MEMORY: usize = 1000;

/// One event the demo's receiver took, its signature verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedEvent {
    /// `webhook-id`.
    pub id: String,
    /// `data.country`.
    pub country: String,
    /// `data.id_type`.
    pub id_type: String,
    /// `data.from`.
    pub from: String,
    /// `data.to`.
    pub to: String,
}

/// What the demo's receiver has taken: the verified events, each id once, as a receiver
/// deduplicating by `webhook-id` acts on them (the last [`RECEIVER_MEMORY`]), and the
/// requests it refused.
#[derive(Debug, Default)]
pub struct Received {
    events: Mutex<VecDeque<ReceivedEvent>>,
    rejected: AtomicU64,
}

impl Received {
    /// The verified events, one per `webhook-id`, in order of arrival.
    pub fn events(&self) -> Vec<ReceivedEvent> {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }

    /// Requests refused: 401 (no signature, a wrong one, a stale timestamp) or 400 (a body
    /// that cannot be read).
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Records `event`; false when its id was seen before.
    fn take(&self, event: ReceivedEvent) -> bool {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        if events.iter().any(|e| e.id == event.id) {
            return false;
        }
        if events.len() == RECEIVER_MEMORY {
            events.pop_front();
        }
        events.push_back(event);
        true
    }
}

/// The demo's webhook receiver: what a KYC backend would run, in a few lines. It checks
/// each request as the Standard Webhooks libraries do (the signature over
/// `id.timestamp.body` with `secret`, the timestamp within five minutes), logs one line
/// per event and answers 204; a request that does not verify gets 401.
pub fn receiver_handler(secret: WebhookSecret, received: Arc<Received>) -> server::Handler {
    let secret = Arc::new(secret);
    Arc::new(move |req| {
        let (secret, received) = (secret.clone(), received.clone());
        Box::pin(async move { receive(&secret, &received, req).await })
    })
}

async fn receive(secret: &WebhookSecret, received: &Received, req: Request<Incoming>) -> Response<server::Body> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    if req.uri().path() != RECEIVER_PATH {
        return server::text(StatusCode::NOT_FOUND, PLAIN, "Not Found\n");
    }
    if req.method() != Method::POST {
        return server::not_allowed("POST");
    }
    let (parts, body) = req.into_parts();
    let Ok(body) = Limited::new(body, RECEIVER_BODY_LIMIT).collect().await.map(|b| b.to_bytes()) else {
        received.rejected.fetch_add(1, Ordering::Relaxed);
        return server::text(StatusCode::BAD_REQUEST, PLAIN, "unreadable or too large a body\n");
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let (id, signatures) = (header("webhook-id"), header("webhook-signature"));
    let refuse = |why: &str| {
        received.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(webhook_id = id, "demo receiver: request refused with 401: {why}");
        server::text(StatusCode::UNAUTHORIZED, PLAIN, format!("{why}\n"))
    };
    let Ok(timestamp) = header("webhook-timestamp").parse::<i64>() else {
        return refuse("no webhook-timestamp");
    };
    if id.is_empty() || signatures.is_empty() {
        return refuse("no webhook-id or webhook-signature");
    }
    if (chrono::Utc::now().timestamp() - timestamp).abs() > TIMESTAMP_TOLERANCE {
        return refuse("webhook-timestamp more than 5 minutes from now");
    }
    // The header may carry several signatures (during a change of secret): one must match.
    let expected = sign::signature(secret, id, timestamp, &body);
    let verified = signatures.split(' ').fold(false, |ok, s| ok | bool::from(s.as_bytes().ct_eq(expected.as_bytes())));
    if !verified {
        return refuse("the signature does not verify");
    }
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let field = |name: &str| event["data"][name].as_str().unwrap_or("?").to_owned();
    let event = ReceivedEvent {
        id: id.to_owned(),
        country: field("country"),
        id_type: field("id_type"),
        from: field("from"),
        to: field("to"),
    };
    let line = format!(
        "{} {} changed {} -> {} (webhook-id {}, signature verified",
        event.country, event.id_type, event.from, event.to, event.id
    );
    if received.take(event) {
        tracing::info!("demo receiver: {line})");
    } else {
        tracing::info!("demo receiver: {line}; already handled, ignored)");
    }
    server::text(StatusCode::NO_CONTENT, PLAIN, "")
}

/// Fills `history` with what polling `scenario` (at real speed) every 10 minutes over the
/// `span` before `now` would have recorded, for the pairs listed from the start (one that
/// joins later has no past).
pub fn seed_history(history: &History, scenario: &Scenario, now: chrono::DateTime<chrono::Utc>, span: Duration) {
    let step = chrono::TimeDelta::minutes(10);
    let start = now - chrono::TimeDelta::from_std(span).unwrap_or(chrono::TimeDelta::days(30));
    for pair in scenario.pairs.iter().filter(|p| p.listed_from <= 0) {
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
    println!("{}", banner(&shown, demo.simulator, demo.receiver));
    let _ = demo.handle.await;
    Ok(())
}

/// What the demo prints at its start: where to look (the exporter at `shown`), when each
/// change happens, and where its webhooks go.
pub fn banner(shown: &str, simulator: SocketAddr, receiver: SocketAddr) -> String {
    format!(
        "idauth-exporter demo: {} simulated ID authorities, simulated time {SPEED}x (a 10-minute window every {}s)\n\
         \n  landing page  http://{shown}/\n  metrics       http://{shown}/metrics\n  status (JSON) http://{shown}/api/v1/status\n  simulator     http://{simulator}\n  webhooks      http://{receiver}{RECEIVER_PATH} (the demo's receiver)\n\
         \n{}{}\
         The status page's past is seeded: the scenario played at real speed, ending a quarter of an\n\
         hour before now (the grey gap: no exporter was running), so every \"since\" is from now on.\n\
         \nEach change is also POSTed as a signed webhook (Standard Webhooks) to the demo's receiver, which\n\
         checks the signature and logs it below (\"demo receiver: GH GHANA_CARD changed online -> ...\").\n\
         To send them to your own receiver, run the exporter with a configuration file that lists it\n\
         under notify.webhooks (README: \"Telling the KYC backend: webhooks\"). Ctrl-C stops.",
        Scenario::builtin().pairs.len(),
        600.0 / SPEED,
        timeline_banner(&Scenario::builtin(), SPEED),
        arrival_banner(),
    )
}

/// What the banner says of the pair that joins later.
pub fn arrival_banner() -> String {
    format!(
        "The pairs come from the simulator's catalogue (discovery): {} {} joins it {} from now ({} simulated\n\
         minutes), online; discovery adds it and it is polled at once, with no history before.\n",
        ARRIVING.0,
        ARRIVING.1,
        crate::config::fmt_duration(Duration::from_secs_f64(ARRIVAL.as_secs_f64() / SPEED)).replace(' ', ""),
        ARRIVAL.as_secs() / 60,
    )
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

    /// The README's demo section quotes the banner's account of what happens, which is made
    /// from the scenario: the three agree, or this fails saying what the demo prints now.
    #[test]
    fn the_readme_quotes_what_the_banner_says() {
        let readme = include_str!("../README.md");
        let block = format!("{}{}", timeline_banner(&Scenario::builtin(), SPEED), arrival_banner());
        let said = "The status page's past is seeded";
        let banner = banner("127.0.0.1:9877", "127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap());
        assert!(banner.contains(&block) && banner.contains(said), "{banner}");
        for line in block.lines().chain(banner.lines().filter(|l| l.starts_with(said))) {
            assert!(readme.contains(line), "README.md lacks the banner's line {line:?}; the demo prints:\n{block}");
        }
    }

    #[test]
    fn the_banner_says_where_the_webhooks_go() {
        let (sim, receiver) = ("127.0.0.1:9878".parse().unwrap(), "127.0.0.1:40001".parse().unwrap());
        let banner = banner("127.0.0.1:9877", sim, receiver);
        assert!(banner.contains("  webhooks      http://127.0.0.1:40001/hooks (the demo's receiver)\n"), "{banner}");
        assert!(banner.contains("under notify.webhooks"), "how to send them elsewhere: {banner}");
        assert!(banner.contains("  landing page  http://127.0.0.1:9877/\n"), "{banner}");
        assert!(banner.ends_with("Ctrl-C stops."), "{banner}");
    }

    fn client() -> reqwest::Client {
        crate::tls::install_crypto_provider();
        reqwest::Client::new()
    }

    /// Posts `body` to the receiver at `addr` with the headers a webhook carries, signed
    /// with `secret` at `ts`.
    async fn post(addr: SocketAddr, secret: &WebhookSecret, id: &str, ts: i64, body: &str) -> u16 {
        client()
            .post(format!("http://{addr}{RECEIVER_PATH}"))
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sign::signature(secret, id, ts, body.as_bytes()))
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    #[tokio::test]
    async fn the_receiver_takes_signed_events_once_and_refuses_the_rest() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let other = WebhookSecret::parse(&format!("whsec_{}", "A".repeat(32))).unwrap();
        let received = Arc::new(Received::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let task =
            tokio::spawn(server::serve(listener, receiver_handler(secret.clone(), received.clone()), stop.clone()));
        let body = r#"{"type":"authority.state_changed","data":{"country":"NG","id_type":"BVN","from":"online","to":"offline"}}"#;
        let now = chrono::Utc::now().timestamp();
        assert_eq!(post(addr, &secret, "msg_1", now, body).await, 204);
        assert_eq!(post(addr, &secret, "msg_1", now + 1, body).await, 204, "a repeat is acknowledged");
        assert_eq!(post(addr, &other, "msg_2", now, body).await, 401, "another secret");
        assert_eq!(post(addr, &secret, "msg_3", now - 301, body).await, 401, "a stale timestamp");
        let tampered = client()
            .post(format!("http://{addr}{RECEIVER_PATH}"))
            .header("webhook-id", "msg_4")
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", sign::signature(&secret, "msg_4", now, body.as_bytes()))
            .body(body.replace("offline", "online"))
            .send()
            .await
            .unwrap();
        assert_eq!(tampered.status(), 401, "a body changed after signing");
        let unsigned = client().post(format!("http://{addr}{RECEIVER_PATH}")).body(body).send().await;
        assert_eq!(unsigned.unwrap().status(), 401);
        assert_eq!(
            received.events(),
            [ReceivedEvent {
                id: "msg_1".into(),
                country: "NG".into(),
                id_type: "BVN".into(),
                from: "online".into(),
                to: "offline".into()
            }],
            "each id once"
        );
        assert_eq!(received.rejected(), 4);
        stop.cancel();
        let _ = task.await;
    }

    /// What the README and the banner say of the demo's start is what it shows: every
    /// "since" is the demo's first poll or later (the seeded history ends a quarter of an
    /// hour before), NG NIN_V2 is offline from the first poll, and the pair that joins later
    /// has no past and is online like the steady ones.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_demo_starts_as_the_readme_says() {
        let stop = CancellationToken::new();
        let started = chrono::Utc::now();
        let demo = start("127.0.0.1:0", stop.clone()).await.unwrap();
        let store = demo.app.store().clone();
        let began = std::time::Instant::now();
        // Polled: discovery has listed the pairs, and each has had its first poll.
        let polled = |store: &crate::store::Store| {
            let pairs = store.now(chrono::Utc::now());
            !pairs.is_empty() && pairs.iter().all(|p| p.last_poll.is_some())
        };
        while !polled(&store) && began.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(polled(&store), "the demo's first polls never ended");
        let now = chrono::Utc::now();
        let first_window = started - chrono::TimeDelta::seconds((600.0 / SPEED) as i64 + 1);
        for p in store.now(now).iter().filter(|p| p.fresh) {
            let since = p.since.expect("a polled pair has a since");
            assert!(since >= first_window, "{} {} since {since}, before the demo's start {started}", p.target, p.state);
        }
        let target = |c: &str, t: &str| crate::model::Target::new(c.parse().unwrap(), t.parse().unwrap());
        let nin = store.pair_now(&target("NG", "NIN_V2"), now).expect("NG NIN_V2 is watched");
        assert_eq!(nin.state, crate::model::AuthorityState::Offline);
        let late = target(ARRIVING.0, ARRIVING.1);
        let history = store.history().unwrap();
        let seeded = history.points(&late, chrono::DateTime::<chrono::Utc>::MIN_UTC, now).unwrap();
        assert!(seeded.is_empty(), "{late} has a past before it joined: {} points", seeded.len());
        let pair = scenario().pairs.into_iter().find(|p| p.target == late).unwrap();
        assert!(pair.timeline.iter().all(|(_, r)| *r >= 0.91), "{late} is online: {:?}", pair.timeline);
        stop.cancel();
        let _ = demo.handle.await;
    }

    /// A newcomer sees a webhook event in the demo's log soon after starting it: GH
    /// GHANA_CARD changes every 10 s.
    #[tokio::test]
    async fn the_demos_receiver_gets_verified_events_within_seconds() {
        let stop = CancellationToken::new();
        let began = std::time::Instant::now();
        let demo = start("127.0.0.1:0", stop.clone()).await.unwrap();
        while demo.received.events().is_empty() && began.elapsed() < Duration::from_secs(40) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let took = began.elapsed();
        let events = demo.received.events();
        let url = format!("http://{}/metrics", demo.exporter);
        let metrics = client().get(url).send().await.unwrap().text().await.unwrap();
        let series: Vec<&str> = metrics.lines().filter(|l| l.starts_with("idauth_webhook")).collect();
        assert!(!events.is_empty(), "no webhook event within {took:?}: {series:#?}");
        assert!(took < Duration::from_secs(25), "the first event came after {took:?}");
        assert_eq!(demo.received.rejected(), 0, "every request verified");
        let e = &events[0];
        assert!(e.id.starts_with("msg_") && e.id.len() == 36, "{e:?}");
        assert_ne!(e.from, e.to, "{e:?}");
        let delivered = metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix(r#"idauth_webhook_deliveries_total{result="success",webhook="demo-receiver"} "#)
            })
            .and_then(|v| v.parse::<f64>().ok());
        assert!(delivered.is_some_and(|n| n >= 1.0), "the exporter counts the delivery: {series:#?}");
        stop.cancel();
        let _ = demo.handle.await;
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
