//! Shared helpers: a fake Smile ID built on wiremock, and an exporter run in-process.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use idauth_exporter::app::App;
use idauth_exporter::config;
use idauth_exporter::model::{Clock, SystemClock};
use idauth_exporter::secret::Secret;
use idauth_exporter::signature;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wiremock::{Request, Respond, ResponseTemplate};

/// The key the fake provider holds for partner "085".
pub const KEY: &str = "sk_test_5f1d9c2be0a84c7f";
/// A schedule that does not fire while a test runs: only the start-up cycle polls.
pub const NEVER: &str = "0 0 0 1 1 *";

/// A provider body for the five documented fields.
pub fn status_body(status: &str, r10: &str, r1h: &str, last_checked: &str) -> Value {
    json!({
        "last_checked": last_checked,
        "last_check_status": "success",
        "last_hour_success_rate": r1h,
        "last_known_status": status,
        "last_check_success_rate": r10,
    })
}

/// An online answer that takes `delay` to come.
pub fn online_after(delay: std::time::Duration) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(status_body("online", "99%", "99%", "2026-11-26T09:50:04.596Z"))
        .set_delay(delay)
}

/// A fake v2 endpoint that verifies every request as the provider does.
#[derive(Clone)]
pub struct FakeV2 {
    pub key: String,
    pub partner_id: String,
    pub environment: String,
    pub bodies: Arc<Mutex<HashMap<(String, String), Value>>>,
}

impl FakeV2 {
    pub fn new(pairs: &[(&str, &str, Value)]) -> FakeV2 {
        let bodies = pairs.iter().map(|(c, t, v)| ((c.to_string(), t.to_string()), v.clone())).collect();
        FakeV2 {
            key: KEY.to_owned(),
            partner_id: "085".to_owned(),
            environment: "production".to_owned(),
            bodies: Arc::new(Mutex::new(bodies)),
        }
    }
}

fn v2_error(status: u16, error: &str, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"error": error, "code": code}))
}

impl Respond for FakeV2 {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&req.body) else {
            return v2_error(400, "Invalid JSON", "2203");
        };
        let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        let fields = ["partner_id", "timestamp", "signature", "country", "id_type", "environment"];
        if fields.iter().any(|f| field(f).is_none()) {
            return v2_error(400, "Missing parameter", "2213");
        }
        let ts = field("timestamp").unwrap();
        let ts_ok = chrono::DateTime::parse_from_rfc3339(&ts).is_ok() && ts.ends_with('Z') && ts.len() == 24;
        let partner = field("partner_id").unwrap();
        let signed = signature::verify(&Secret::new(self.key.clone()), &partner, &ts, &field("signature").unwrap());
        if !ts_ok || !signed || partner != self.partner_id || field("environment").unwrap() != self.environment {
            return v2_error(401, "You are not authorized to do that.", "2205");
        }
        let pair = (field("country").unwrap(), field("id_type").unwrap());
        match self.bodies.lock().unwrap().get(&pair) {
            Some(v) => ResponseTemplate::new(200).set_body_json(v),
            None => ResponseTemplate::new(400).set_body_json(json!({
                "message": format!("No data found. Check that {} and {} are valid inputs", pair.0, pair.1),
                "status": "Bad Request",
            })),
        }
    }
}

/// An exporter running in-process on 127.0.0.1:0.
pub struct Exporter {
    pub addr: std::net::SocketAddr,
    pub app: Arc<App>,
    pub shutdown: CancellationToken,
    pub handle: tokio::task::JoinHandle<()>,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub http: reqwest::Client,
}

/// A plain HTTP client for the tests (TLS set up as the exporter does).
pub fn http() -> reqwest::Client {
    idauth_exporter::tls::install_crypto_provider();
    reqwest::Client::new()
}

/// Writes `yaml` (with the API key in a file beside it) and starts an exporter on it.
pub async fn start(yaml: &str) -> Exporter {
    start_with_web(yaml, None).await
}

/// [`start`], with every time the exporter tells (polls, staleness, pages, metrics,
/// discovery) read from `clock`: a `ManualClock` lets a test move time instead of waiting.
pub async fn start_with_clock(yaml: &str, clock: Arc<dyn Clock>) -> Exporter {
    launch(yaml, None, clock).await
}

/// [`start`], with a `--web.config.file` of `web` text written beside the configuration
/// (as `web.yml`, with the test TLS files of tests/fixtures/tls copied beside it).
pub async fn start_with_web(yaml: &str, web: Option<&str>) -> Exporter {
    launch(yaml, web, Arc::new(SystemClock)).await
}

async fn launch(yaml: &str, web: Option<&str>, clock: Arc<dyn Clock>) -> Exporter {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api_key"), format!("{KEY}\n")).unwrap();
    let config_path = dir.path().join("config.yaml");
    std::fs::write(&config_path, yaml).unwrap();
    let loaded = config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
    let app = App::with_clock(Some(&config_path), loaded, clock).unwrap();
    if let Some(web) = web {
        for f in ["ca.pem", "server.pem", "server.key", "client.pem", "client.key", "expired.pem", "expired.key"] {
            std::fs::copy(format!("{}/tests/fixtures/tls/{f}", env!("CARGO_MANIFEST_DIR")), dir.path().join(f))
                .unwrap();
        }
        let web_path = dir.path().join("web.yml");
        std::fs::write(&web_path, web).unwrap();
        app.use_web_config(&web_path).unwrap_or_else(|e| panic!("{e}"));
    }
    let shutdown = CancellationToken::new();
    let (addr, handle) = app.start("127.0.0.1:0", shutdown.clone()).await.unwrap();
    Exporter { addr, app, shutdown, handle, dir, config_path, http: http() }
}

/// A configuration for `base_url` with the given flavour, pairs and extra `poll:` lines.
pub fn config_yaml(base_url: &str, api: &str, pairs: &[(&str, &[&str])], poll: &str) -> String {
    let mut targets = String::new();
    for (c, types) in pairs {
        targets.push_str(&format!("  - country: {c}\n    id_types: [{}]\n", types.join(", ")));
    }
    format!(
        "smile_id:\n  partner_id: \"085\"\n  api_key_file: api_key\n  api: {api}\n  base_url: {base_url}\n\
         poll:\n  schedule: \"{NEVER}\"\n  timeout: 2s\n  jitter: 0s\n{poll}targets:\n{targets}"
    )
}

impl Exporter {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    pub async fn text(&self, path: &str) -> String {
        self.get(path).await.text().await.unwrap()
    }

    /// Waits until the first cycle has finished.
    pub async fn ready(&self) {
        eventually("the exporter to become ready", PATIENCE, || async {
            (self.get("/-/ready").await.status() == 200).then_some(())
        })
        .await
    }

    pub async fn metrics(&self) -> Metrics {
        Metrics::parse(&self.text("/metrics").await)
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.handle).await.expect("stops in time").unwrap();
    }
}

/// How long a test waits for something that should take a moment: long enough for a
/// loaded machine, and only reached when the test is failing anyway.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Checks `check` every 20 ms until it gives a value, and returns it; panics naming `what`
/// once `deadline` of real (wall-clock, not tokio) time has passed without one, so a
/// loaded machine only makes the wait longer, never the test wrong.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let began = std::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if began.elapsed() > deadline {
            panic!("waited {:?} for {what}; it never happened", began.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// [`eventually`] for code that cannot await (a blocking thread).
pub fn eventually_blocking<T>(what: &str, deadline: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let began = std::time::Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        if began.elapsed() > deadline {
            panic!("waited {:?} for {what}; it never happened", began.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Parsed `/metrics`: series text (name and labels as printed) to value.
#[derive(Debug)]
pub struct Metrics {
    pub text: String,
    pub series: BTreeMap<String, f64>,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let series = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (k, v) = l.rsplit_once(' ').unwrap();
                (k.to_owned(), v.parse::<f64>().unwrap())
            })
            .collect();
        Metrics { text: text.to_owned(), series }
    }

    /// The value of `name` for a pair (plus extra labels, in alphabetical order).
    pub fn pair(&self, name: &str, country: &str, id_type: &str, extra: &str) -> Option<f64> {
        let key = format!("{name}{{country=\"{country}\",id_type=\"{id_type}\"{extra}}}");
        self.series.get(&key).copied()
    }

    pub fn state(&self, country: &str, id_type: &str) -> String {
        let ones: Vec<&str> = ["online", "interruption", "offline", "unknown"]
            .into_iter()
            .filter(|s| self.pair("idauth_state", country, id_type, &format!(",state=\"{s}\"")) == Some(1.0))
            .collect();
        assert_eq!(ones.len(), 1, "exactly one state per pair: {ones:?}\n{}", self.text);
        for s in ["online", "interruption", "offline", "unknown"] {
            assert!(self.pair("idauth_state", country, id_type, &format!(",state=\"{s}\"")).is_some(), "{s} missing");
        }
        ones[0].to_owned()
    }

    pub fn failures(&self, country: &str, id_type: &str, reason: &str) -> f64 {
        self.pair("idauth_poll_failures_total", country, id_type, &format!(",reason=\"{reason}\"")).unwrap()
    }

    /// The pair's polls failed `n` times for `reason`, and it is shown as unknown.
    pub fn assert_failed(&self, country: &str, id_type: &str, reason: &str, n: f64) {
        assert_eq!(self.failures(country, id_type, reason), n, "{country} {id_type} {reason}");
        assert_eq!(self.state(country, id_type), "unknown", "{country} {id_type}");
    }

    pub fn get(&self, key: &str) -> Option<f64> {
        self.series.get(key).copied()
    }
}

/// Collects log output in memory.
#[derive(Clone, Default)]
pub struct Capture(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

impl Capture {
    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Webhook tests: a clock origin, provider windows after it, and an exporter config.
pub mod hooks {
    use super::*;
    use chrono::{DateTime, TimeDelta, Utc};
    use idauth_exporter::model::ManualClock;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer};

    pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    pub fn t0() -> DateTime<Utc> {
        "2026-11-26T10:00:00Z".parse().unwrap()
    }

    pub fn at(minutes: i64) -> String {
        (t0() + TimeDelta::minutes(minutes)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    pub async fn provider(fake: FakeV2) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("POST")).and(path("/api/v2/partner/id_status")).respond_with(fake).mount(&server).await;
        server
    }

    /// A configuration polling `provider` for NG BVN, with `hooks` (name, url, extra lines).
    pub fn webhook_yaml(provider: &str, secret_file: &std::path::Path, hooks: &[(&str, String, &str)]) -> String {
        let mut y = config_yaml(provider, "v2", &[("NG", &["BVN"])], "  retries: 0\n  max_data_age: 2h\n")
            .replace(NEVER, "0 0 * * * *");
        y.push_str("notify:\n  webhooks:\n");
        for (name, url, extra) in hooks {
            y.push_str(&format!(
                "    - name: {name}\n      url: {url}\n      secret_file: {}\n{extra}",
                secret_file.display()
            ));
        }
        y
    }

    pub fn secret_file() -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), format!("{WEBHOOK_SECRET}\n")).unwrap();
        f
    }

    /// Polls once more with the provider saying `status` of the window `minutes` after t0.
    pub async fn poll_as(ex: &Exporter, fake: &FakeV2, clock: &ManualClock, status: &str, minutes: i64) {
        let body = status_body(status, if status == "online" { "99%" } else { "10%" }, "60%", &at(minutes));
        fake.bodies.lock().unwrap().insert(("NG".into(), "BVN".into()), body);
        clock.set(t0() + TimeDelta::minutes(minutes) + TimeDelta::seconds(61));
        ex.app.run_cycle(false).await;
    }
}
