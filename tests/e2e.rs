//! End to end with the real Debian `prometheus` and `prometheus-alertmanager` binaries on
//! loopback ports, as an SRE runs the exporter in production: TWO replicas (processes of
//! the built binary) poll one simulated provider, Prometheus scrapes both under one job and
//! evaluates the mixin's rules, and Alertmanager, with the shipped routing and inhibitions
//! and a test webhook in place of the pager and chat, notifies.
//!
//! The rules are rendered from deploy/mixin with a `_config` for a faster clock: one
//! provider window (and poll period) lasts `PERIOD` real seconds instead of 10 minutes;
//! promtool's unit tests cover the shipped settings. In the scenario exactly one pair (NG
//! BVN) goes offline for several polls and recovers. Mid-outage one replica is killed and
//! restarted, then both are (the outage is long enough for both, or the test fails). The
//! receiver must get exactly one page for that pair, with a description, no resolution
//! while it is down, and exactly one resolution after it is back. Every dashboard query
//! returns data. Each replica shows one "since" for the outage in its metric, both JSON
//! APIs and its status page, the same on both replicas and through their restarts: the
//! provider's time of the first offline window.
//!
//! Fails, never skips, when the binaries are missing.

mod common;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::TimeZone;
use common::*;
use idauth_exporter::config::Environment;
use idauth_exporter::model::AuthorityState;
use idauth_exporter::secret::Secret;
use idauth_exporter::simulator::{Account, Scenario, Simulator, SystemClock};
use idauth_exporter::web::http as server;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// One provider window, and the exporters' poll period, in real seconds.
const PERIOD: i64 = 10;
/// Simulated time: a 10-minute window every `PERIOD` real seconds.
const SPEED: f64 = 600.0 / PERIOD as f64;
/// The exporters poll one second after each window ends, as the default schedule does a
/// minute after each 10-minute window.
const SCHEDULE: &str = "1/10 * * * * *";
/// How many windows NG BVN is offline: 8 leave time, after a page that may come up to 30 s
/// after the second offline poll, to restart one replica and then both before the recovery.
const OUTAGE_WINDOWS: i64 = 8;
/// The mixin's `_config` for this clock.
const FAST_CONFIG: &str = "{pollPeriodSeconds: 10, maxDataAgeSeconds: 30, lookbackSeconds: 3, memorySeconds: 600, \
     exporterDownForSeconds: 5, unknownForSeconds: 10, providerStaleSeconds: 60}";
const JOB: &str = "idauth-exporter";

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Kills a child process (SIGKILL, as a crash) when dropped, so a failing test leaves
/// nothing running.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn binary(names: &[&'static str], package: &str) -> &'static str {
    for name in names {
        if Command::new(name).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok() {
            return name;
        }
    }
    panic!("{} is needed for this test; install it with `apt-get install {package}` (./scripts/test does)", names[0]);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The current time, in seconds since the epoch.
fn epoch() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

/// How Prometheus's `humanizeTimestamp` prints `secs`.
fn humanized(secs: i64) -> String {
    chrono::Utc.timestamp_opt(secs, 0).unwrap().format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string()
}

/// Waits until `check` holds, polling it; fails with `what` after `timeout`.
async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let began = Instant::now();
    while !check().await {
        assert!(began.elapsed() < timeout, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sleeps until the epoch time `t`.
async fn sleep_until(t: f64) {
    let left = t - epoch();
    if left > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(left)).await;
    }
}

/// The scenario: NG BVN online, then offline for `OUTAGE_WINDOWS` windows from window
/// `first_offline`, then online again; three more pairs online throughout.
fn scenario(first_offline: i64) -> String {
    let before = 1000 * 60;
    let total_sim_secs: i64 = before + OUTAGE_WINDOWS * 600 + 5000 * 60;
    // Window w is at (600 w + offset) in the pair's timeline: put `first_offline` at the
    // start of the offline segment.
    let offset = (before - 600 * first_offline).rem_euclid(total_sim_secs);
    format!(
        "pairs:
  - country: NG
    id_types: [BVN]
    offset: {offset}s
    timeline:
      - {{for: 1000m, success_rate: 0.99}}
      - {{for: {outage}m, success_rate: 0.05}}
      - {{for: 5000m, success_rate: 0.99}}
  - country: NG
    id_types: [NIN_V2]
    timeline: [{{for: 1h, success_rate: 0.99}}]
  - country: KE
    id_types: [NATIONAL_ID]
    timeline: [{{for: 1h, success_rate: 0.98}}]
  - country: GH
    id_types: [GHANA_CARD]
    timeline: [{{for: 1h, success_rate: 0.97}}]
",
        outage = OUTAGE_WINDOWS * 10
    )
}

/// Renders the mixin's recording rules and alerts with `FAST_CONFIG` into `dir` (as
/// rules.yaml and alerts.yaml); returns how many rules they hold. Every group is evaluated
/// at the global 1 s interval (the availability group's 5m would not evaluate in time).
fn render_mixin(dir: &Path) -> usize {
    let jsonnet = binary(&["jsonnet"], "jsonnet");
    let expr = format!(
        "local m = (import 'mixin.libsonnet') + {{_config+:: {FAST_CONFIG}}}; \
         {{rules: m.prometheusRules, alerts: m.prometheusAlerts}}"
    );
    let out =
        Command::new(jsonnet).arg("-J").arg(format!("{ROOT}/deploy/mixin")).arg("-e").arg(&expr).output().unwrap();
    assert!(out.status.success(), "jsonnet cannot render the mixin: {}", String::from_utf8_lossy(&out.stderr));
    let mut doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut rules = 0;
    for (part, file) in [("rules", "rules.yaml"), ("alerts", "alerts.yaml")] {
        for group in doc[part]["groups"].as_array_mut().unwrap() {
            group.as_object_mut().unwrap().remove("interval");
            rules += group["rules"].as_array().unwrap().len();
        }
        std::fs::write(dir.join(file), doc[part].to_string()).unwrap();
    }
    rules
}

/// Sets group_wait and group_interval to 1 s on `route` and every route below it that
/// sets them.
fn fast_routes(route: &mut Value, root: bool) {
    for key in ["group_wait", "group_interval"] {
        if root || route.get(key).is_some() {
            route[key] = json!("1s");
        }
    }
    if let Some(routes) = route.get_mut("routes").and_then(Value::as_array_mut) {
        routes.iter_mut().for_each(|r| fast_routes(r, false));
    }
}

/// The shipped Alertmanager configuration with every receiver replaced by our webhook.
fn test_alertmanager_config(hook: &str) -> String {
    let dir = format!("{ROOT}/deploy/alertmanager");
    let yaml = std::fs::read_to_string(format!("{dir}/alertmanager.yml")).unwrap();
    let mut doc: Value = serde_saphyr::from_str(&yaml).unwrap();
    for receiver in doc["receivers"].as_array_mut().unwrap() {
        let name = receiver["name"].as_str().unwrap().to_owned();
        *receiver =
            json!({"name": name, "webhook_configs": [{"url": format!("{hook}/{name}"), "send_resolved": true}]});
    }
    // Template paths are relative to the shipped file's folder: keep them loading.
    if let Some(templates) = doc.get_mut("templates").and_then(Value::as_array_mut) {
        for t in templates {
            let path = t.as_str().unwrap();
            if !path.starts_with('/') {
                *t = json!(format!("{dir}/{path}"));
            }
        }
    }
    fast_routes(&mut doc["route"], true);
    doc.to_string()
}

/// One alert of one notification the webhook received.
#[derive(Clone, Debug)]
struct Delivery {
    receiver: String,
    status: String,
    labels: Value,
    annotations: Value,
    /// When the webhook received it (seconds since the epoch).
    at: f64,
}

impl Delivery {
    fn label(&self, k: &str) -> &str {
        self.labels[k].as_str().unwrap_or("")
    }

    fn is(&self, status: &str, alertname: &str, country: &str, id_type: &str) -> bool {
        self.status == status
            && self.label("alertname") == alertname
            && self.label("country") == country
            && self.label("id_type") == id_type
    }
}

#[derive(Clone, Default)]
struct Hook(Arc<Mutex<Vec<(String, Value, f64)>>>);

impl Hook {
    /// Every alert of every notification delivered, in order.
    fn deliveries(&self) -> Vec<Delivery> {
        let mut out = Vec::new();
        for (receiver, n, at) in self.0.lock().unwrap().iter() {
            // The exporter's own webhooks come to the same server: not Alertmanager's.
            if receiver == EVENTS {
                continue;
            }
            for a in n["alerts"].as_array().unwrap() {
                out.push(Delivery {
                    receiver: receiver.clone(),
                    status: a["status"].as_str().unwrap().to_owned(),
                    labels: a["labels"].clone(),
                    annotations: a["annotations"].clone(),
                    at: *at,
                });
            }
        }
        out
    }

    /// How many notifications of `status` delivered IdAuthorityOffline for NG BVN.
    fn offline(&self, status: &str) -> Vec<Delivery> {
        self.deliveries().into_iter().filter(|d| d.is(status, "IdAuthorityOffline", "NG", "BVN")).collect()
    }

    /// Short lines for assertion messages.
    fn summary(&self) -> Vec<String> {
        self.deliveries()
            .iter()
            .map(|d| {
                format!(
                    "{:.1} {} {} {} {} {} {}",
                    d.at,
                    d.receiver,
                    d.status,
                    d.label("alertname"),
                    d.label("country"),
                    d.label("id_type"),
                    d.label("instance")
                )
            })
            .collect()
    }
}

/// The path under which the hook server takes the exporter's webhooks.
const EVENTS: &str = "events";
/// Their secret.
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn start_hook(hook: Hook, stop: CancellationToken) -> String {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handler: server::Handler = Arc::new(move |req| {
        let hook = hook.clone();
        Box::pin(async move {
            let receiver = req.uri().path().trim_start_matches('/').to_owned();
            let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let (id, ts, signature) = (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"));
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            if let Ok(mut v) = serde_json::from_slice::<Value>(&body) {
                if receiver == EVENTS {
                    // Kept with its id and whether its signature is right.
                    let secret = idauth_exporter::secret::WebhookSecret::parse(WEBHOOK_SECRET).unwrap();
                    let signed = ts
                        .parse()
                        .is_ok_and(|ts| idauth_exporter::notify::sign::signature(&secret, &id, ts, &body) == signature);
                    v["webhook_id"] = json!(id);
                    v["signed"] = json!(signed);
                }
                hook.0.lock().unwrap().push((receiver, v, epoch()));
            }
            server::text(hyper::StatusCode::OK, "text/plain", "ok")
        })
    });
    tokio::spawn(server::serve(listener, handler, stop));
    url
}

/// An instant query against the test's Prometheus.
async fn query(http: &reqwest::Client, prom: &str, q: &str) -> Value {
    let resp = http.get(format!("{prom}/api/v1/query")).query(&[("query", q)]).send().await.unwrap();
    resp.json().await.unwrap()
}

/// The series an instant query returns (none when it fails).
async fn series(http: &reqwest::Client, prom: &str, q: &str) -> Vec<Value> {
    query(http, prom, q).await["data"]["result"].as_array().cloned().unwrap_or_default()
}

async fn wait_ready(http: &reqwest::Client, url: &str, what: &str) {
    for _ in 0..150 {
        if http.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{what} did not become ready at {url}");
}

/// One replica of the exporter: a process of the built binary on a fixed port.
struct Replica {
    port: u16,
    config: PathBuf,
    proc: Option<Proc>,
}

impl Replica {
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts a fresh process on the replica's port, with the replica's own history store
    /// (as each pod of a StatefulSet keeps its volume): replicas never share one, and the
    /// checkout's default `data/` is left alone.
    fn start(&mut self) {
        assert!(self.proc.is_none(), "{} is already running", self.addr());
        let storage = self.config.with_file_name(format!("history-{}", self.port));
        let child = Command::new(env!("CARGO_BIN_EXE_idauth-exporter"))
            .arg(format!("--config.file={}", self.config.display()))
            .arg(format!("--web.listen-address={}", self.addr()))
            .arg(format!("--storage.path={}", storage.display()))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        self.proc = Some(Proc(child));
    }

    /// Waits until its first poll cycle has finished.
    async fn ready(&mut self, http: &reqwest::Client) {
        let url = format!("http://{}/-/ready", self.addr());
        let began = Instant::now();
        loop {
            if http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            let exited = self.proc.as_mut().unwrap().0.try_wait().unwrap();
            assert!(exited.is_none(), "the replica on {} exited: {exited:?}", self.addr());
            assert!(began.elapsed() < Duration::from_secs(30), "the replica on {} never became ready", self.addr());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills it (SIGKILL, as a crash or an evicted pod) and checks it no longer serves.
    async fn kill(&mut self, http: &reqwest::Client) {
        drop(self.proc.take().expect("running"));
        let served = http.get(format!("http://{}/metrics", self.addr())).send().await;
        assert!(served.is_err(), "a killed replica still serves on {}", self.addr());
    }
}

/// Every target expression of the dashboards, with every variable substituted.
fn dashboard_queries() -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let (Some(Value::String(expr)), true) = (m.get("expr"), m.contains_key("refId")) {
                    out.push(expr.clone());
                }
                m.values().for_each(|v| walk(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(format!("{ROOT}/grafana/dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for file in files {
        let dash: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        walk(&dash["panels"], &mut out);
    }
    assert!(!out.is_empty(), "no dashboard queries found");
    out.iter().map(|e| substitute_variables(e)).collect()
}

/// Grafana's `$var` and `${var}` (or `${var:format}`): the job is ours, the built-in
/// intervals fit 1 s scrapes, and any other variable (cluster, instance, country...) is
/// `.*`, which every such variable's "All" amounts to.
fn substitute_variables(expr: &str) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = match after.strip_prefix('{') {
            Some(braced) => {
                let end = braced.find('}').unwrap_or_else(|| panic!("unclosed ${{ in {expr}"));
                (braced[..end].split(':').next().unwrap(), end + 2)
            }
            None => {
                let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        out.push_str(match name {
            "" => "$",
            "job" => JOB,
            "__rate_interval" => "30s",
            "__interval" => "5s",
            "__interval_ms" => "5000",
            "__range" => "1m",
            "__range_s" => "60",
            "__range_ms" => "60000",
            _ => ".*",
        });
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// Runs every dashboard query; each must succeed, and those that return data are recorded.
async fn check_dashboard(http: &reqwest::Client, prom: &str, queries: &[String], with_data: &mut [bool]) {
    for (q, seen) in queries.iter().zip(with_data.iter_mut()) {
        let resp = query(http, prom, q).await;
        assert_eq!(resp["status"], "success", "{q}: {resp}");
        *seen |= resp["data"]["result"].as_array().is_some_and(|r| !r.is_empty());
    }
}

/// Starts Prometheus in `dir` with `config`, scraping and evaluating every second.
async fn start_prometheus(http: &reqwest::Client, dir: &Path, config: &Value) -> (Proc, String) {
    let prometheus = binary(&["prometheus"], "prometheus");
    std::fs::write(dir.join("prometheus.yml"), config.to_string()).unwrap();
    let port = free_port();
    let proc = Proc(
        Command::new(prometheus)
            .current_dir(dir)
            .arg("--config.file=prometheus.yml")
            .arg(format!("--storage.tsdb.path={}", dir.join("prom-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Alerts sent to Alertmanager are valid for 4 resend delays: 20 s, so a slow rule
            // evaluation on a loaded machine cannot let them expire (and resolve). New and
            // resolved alerts are sent at once whatever the delay.
            .arg("--rules.alert.resend-delay=5s")
            .arg("--web.enable-lifecycle")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(http, &format!("{url}/-/ready"), "prometheus").await;
    (proc, url)
}

/// Waits until Prometheus has scraped each of `replicas` after its (re)start and seen it
/// report NG BVN offline.
async fn wait_observed_offline(http: &reqwest::Client, prom: &str, replicas: &[&Replica]) {
    for r in replicas {
        let q = format!(
            "idauth_state{{job=\"{JOB}\", instance=\"{}\", country=\"NG\", id_type=\"BVN\", state=\"offline\"}} == 1",
            r.addr()
        );
        wait_for(&format!("prometheus sees {} report NG BVN offline", r.addr()), Duration::from_secs(30), || {
            let q = q.clone();
            async move { !series(http, prom, &q).await.is_empty() }
        })
        .await;
    }
}

/// NG BVN as one replica shows it, the same in all four places: `/metrics`,
/// `/api/v1/status`, `/api/v1/history` and the status page (`/` and `/ui/status`).
#[derive(Clone, Debug, PartialEq)]
struct Shown {
    /// The state shown.
    state: String,
    /// Since when, in Unix milliseconds (as /metrics and both JSON APIs give it).
    since_ms: i64,
    /// When the replica's latest poll of the pair ended (from /api/v1/status), in seconds
    /// since the epoch.
    last_poll: f64,
}

impl Shown {
    /// The since, to the second (as the page shows it).
    fn since(&self) -> i64 {
        self.since_ms.div_euclid(1000)
    }
}

/// The body of a successful GET of `path` on replica `r`.
async fn get_text(http: &reqwest::Client, r: &Replica, path: &str) -> Result<String, String> {
    let url = format!("http://{}{path}", r.addr());
    let resp = http.get(&url).send().await.map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| format!("GET {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("GET {url}: {status}: {body}"));
    }
    Ok(body)
}

/// An RFC 3339 time of the JSON APIs (UTC, to the millisecond: `2026-12-06T01:48:10.902Z`)
/// in Unix milliseconds.
fn json_millis(where_: &str, v: &Value) -> Result<i64, String> {
    let s = v.as_str().ok_or_else(|| format!("{where_}: no time: {v}"))?;
    let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|e| format!("{where_}: {s:?}: {e}"))?;
    if s.len() != 24 || !s.ends_with('Z') {
        return Err(format!("{where_}: {s:?} is not RFC 3339 in UTC to the millisecond"));
    }
    Ok(t.timestamp_millis())
}

/// NG BVN's state and since on the status page `html`: the `data-state` and the
/// `<time datetime>` (UTC, whole seconds) of its `<li class="pair ...">`, since in Unix seconds.
fn page_since(where_: &str, html: &str) -> Result<(String, i64), String> {
    let key = "data-country=\"NG\" data-id-type=\"BVN\"";
    let at = html.find(key).ok_or_else(|| format!("{where_}: no NG BVN row"))?;
    let start = html[..at].rfind("<li class=\"pair ").ok_or_else(|| format!("{where_}: NG BVN is not in a <li>"))?;
    let row = &html[start..];
    let row = &row[..row.find("</li>").ok_or_else(|| format!("{where_}: NG BVN's <li> is not closed"))?];
    let attr = |name: &str, from: &str| -> Option<String> {
        let i = from.find(name)? + name.len();
        Some(from[i..i + from[i..].find('"')?].to_owned())
    };
    let state = attr("data-state=\"", row).ok_or_else(|| format!("{where_}: no data-state: {row}"))?;
    let span = row.find("<span class=\"since\">").ok_or_else(|| format!("{where_}: no since: {row}"))?;
    let s = attr("<time datetime=\"", &row[span..]).ok_or_else(|| format!("{where_}: no <time> in since: {row}"))?;
    let t = chrono::DateTime::parse_from_rfc3339(&s).map_err(|e| format!("{where_}: {s:?}: {e}"))?;
    if s.len() != 20 || !s.ends_with('Z') {
        return Err(format!("{where_}: {s:?} is not RFC 3339 in UTC to the second"));
    }
    Ok((state, t.timestamp()))
}

/// Reads NG BVN's state and since from every place replica `r` shows them; an error says
/// where they disagree (or what could not be read).
async fn read_shown(http: &reqwest::Client, r: &Replica) -> Result<Shown, String> {
    let metrics = Metrics::parse(&get_text(http, r, "/metrics").await?);
    let metric_state = metrics.state("NG", "BVN");
    let metric_since = metrics
        .pair("idauth_state_since_timestamp_seconds", "NG", "BVN", "")
        .ok_or_else(|| "/metrics: no idauth_state_since_timestamp_seconds for NG BVN".to_owned())?;
    let metric_ms = (metric_since * 1000.0).round() as i64;

    let status: Value = serde_json::from_str(&get_text(http, r, "/api/v1/status").await?).map_err(|e| e.to_string())?;
    let target = status["targets"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["country"] == "NG" && t["id_type"] == "BVN"))
        .ok_or_else(|| format!("/api/v1/status: no NG BVN: {status}"))?;
    let status_state = target["state"].as_str().unwrap_or("").to_owned();
    let status_ms = json_millis("/api/v1/status since", &target["since"])?;
    let last_poll = json_millis("/api/v1/status last_poll.at", &target["last_poll"]["at"])? as f64 / 1000.0;

    let history: Value =
        serde_json::from_str(&get_text(http, r, "/api/v1/history?country=NG&id_type=BVN&range=1h").await?)
            .map_err(|e| e.to_string())?;
    let history_state = history["state"].as_str().unwrap_or("").to_owned();
    let history_ms = json_millis("/api/v1/history since", &history["since"])?;

    let (page_state, page_secs) = page_since("/", &get_text(http, r, "/").await?)?;
    let (fragment_state, fragment_secs) = page_since("/ui/status", &get_text(http, r, "/ui/status").await?)?;

    let states = [&metric_state, &status_state, &history_state, &page_state, &fragment_state];
    let millis = [metric_ms, status_ms, history_ms];
    let seconds = [metric_ms.div_euclid(1000), page_secs, fragment_secs];
    if states.iter().any(|s| *s != states[0])
        || millis.iter().any(|m| *m != millis[0])
        || seconds.iter().any(|s| *s != seconds[0])
    {
        return Err(format!(
            "{} shows NG BVN differently: state (metrics, status, history, page, fragment) {states:?}; \
             since in ms (metrics, status, history) {millis:?}; since in s (metrics, page, fragment) {seconds:?}",
            r.addr()
        ));
    }
    Ok(Shown { state: metric_state, since_ms: metric_ms, last_poll })
}

/// Waits until replica `r` shows NG BVN as `state` everywhere, with one since everywhere,
/// and its latest poll of the pair ended after `polled_after` (seconds since the epoch);
/// returns what it shows. Fails, with what it last showed, after `timeout`.
/// Waits until every replica shows NG BVN in `state` after a poll of the window at
/// `check` (Unix seconds), and asserts that each shows, everywhere, since that window: the
/// provider's time, not when the replica polled it (first at `polled` seconds).
async fn since_everywhere(
    http: &reqwest::Client,
    replicas: &[Replica],
    state: &str,
    check: i64,
    polled: f64,
) -> Vec<Shown> {
    let mut all = Vec::new();
    for r in replicas {
        let shown = wait_shown(http, r, state, check as f64, Duration::from_secs(15)).await;
        assert_eq!(
            shown.since_ms,
            check * 1000,
            "{} shows NG BVN {state} since {} ms, not since the provider's time of the window, {check} s (first polled at \
             {polled:.1})",
            r.addr(),
            shown.since_ms
        );
        all.push(shown);
    }
    all
}

async fn wait_shown(http: &reqwest::Client, r: &Replica, state: &str, polled_after: f64, timeout: Duration) -> Shown {
    let began = Instant::now();
    loop {
        let last = read_shown(http, r).await;
        match &last {
            Ok(s) if s.state == state && s.last_poll > polled_after => return s.clone(),
            _ => {}
        }
        assert!(
            began.elapsed() < timeout,
            "{} does not show NG BVN {state} everywhere, with one since, after a poll ended after {polled_after:.1}, \
             within {timeout:?}: {last:?}",
            r.addr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_page_once_through_restarts_and_resolve_once() {
    let test_began = epoch();
    let http = &http();
    let stop = CancellationToken::new();
    let dir = tempfile::tempdir().unwrap();
    let rule_count = render_mixin(dir.path());

    // Alertmanager with the shipped routing, delivering to our webhook.
    let hook = &Hook::default();
    let hook_url = start_hook(hook.clone(), stop.clone()).await;
    let (_am, am_url) = start_alertmanager(dir.path(), &hook_url).await;
    let am_target = am_url.trim_start_matches("http://").to_owned();

    // Two replicas of the exporter, on ports chosen now, and Prometheus scraping both every
    // second as one job (the rules go in later).
    let mut replicas: Vec<Replica> =
        (0..2).map(|_| Replica { port: free_port(), config: dir.path().join("exporter.yaml"), proc: None }).collect();
    let mut prom_config = json!({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am_target]}]}]},
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": replicas.iter().map(Replica::addr).collect::<Vec<_>>()}]}],
    });
    let (_prom, prom) = start_prometheus(http, dir.path(), &prom_config).await;
    let prom = prom.as_str();

    // The simulated provider. NG BVN's first offline window ends at least 8 s from now, and
    // is first polled a second later: time for the replicas to start and the rules to load
    // first (about 5 s; the page needs them by the second offline poll). A replica that were
    // late would still see that window, which is reported until the next one ends.
    let w_off = ((epoch() + 8.0) / PERIOD as f64).ceil() as i64 - 1;
    // The provider's time of the first offline check, and when the replicas poll it.
    let first_offline_check = PERIOD * (w_off + 1);
    let first_offline_poll = first_offline_check as f64 + 1.0;
    let second_offline_poll = first_offline_poll + PERIOD as f64;
    // The first online check after the outage, polled at `recovery_poll`.
    let recovery_check = PERIOD * (w_off + OUTAGE_WINDOWS + 1);
    let recovery_poll = recovery_check as f64 + 1.0;
    let account = Account { partner_id: "085".into(), api_key: Secret::new(KEY), environment: Environment::Production };
    let sim = Simulator::new(Scenario::parse(&scenario(w_off), "e2e").unwrap(), account, SPEED, Arc::new(SystemClock));
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim_url = format!("http://{}", sim_listener.local_addr().unwrap());
    tokio::spawn(server::serve(sim_listener, sim.handler(), stop.clone()));

    let pairs: &[(&str, &[&str])] = &[("NG", &["BVN", "NIN_V2"]), ("KE", &["NATIONAL_ID"]), ("GH", &["GHANA_CARD"])];
    std::fs::write(dir.path().join("api_key"), format!("{KEY}\n")).unwrap();
    std::fs::write(dir.path().join("webhook_secret"), format!("{WEBHOOK_SECRET}\n")).unwrap();
    // Both replicas also tell a KYC backend (the hook server) of NG BVN's changes.
    let notify = format!(
        "notify:\n  webhooks:\n    - name: kyc\n      url: {hook_url}/{EVENTS}\n      secret_file: {}\n      \
         countries: [NG]\n      id_types: [BVN]\n",
        dir.path().join("webhook_secret").display()
    );
    let yaml = config_yaml(&sim_url, "v2", pairs, "  retries: 0\n  max_data_age: 30s\n")
        .replace(NEVER, SCHEDULE)
        .replace("api_key_file: api_key", &format!("api_key_file: {}", dir.path().join("api_key").display()))
        + &notify;
    std::fs::write(dir.path().join("exporter.yaml"), yaml).unwrap();
    for r in &mut replicas {
        r.start();
    }
    for r in &mut replicas {
        r.ready(http).await;
    }

    // The rules go in once both replicas are being scraped: with `for:` this short, the
    // second or two before Prometheus's first scrape would otherwise fire
    // IdAuthExporterDown, which a real `for: 10m` never sees.
    let up = &format!("sum(up{{job=\"{JOB}\"}})");
    wait_for("prometheus scrapes both replicas", Duration::from_secs(30), || async move {
        series(http, prom, up).await.first().is_some_and(|s| s["value"][1] == "2")
    })
    .await;
    prom_config["rule_files"] = json!(["rules.yaml", "alerts.yaml"]);
    std::fs::write(dir.path().join("prometheus.yml"), prom_config.to_string()).unwrap();
    let reload = http.post(format!("{prom}/-/reload")).send().await.unwrap();
    assert!(reload.status().is_success(), "prometheus reload: {}", reload.text().await.unwrap());
    let rules: Value = http.get(format!("{prom}/api/v1/rules")).send().await.unwrap().json().await.unwrap();
    let loaded: usize =
        rules["data"]["groups"].as_array().unwrap().iter().map(|g| g["rules"].as_array().unwrap().len()).sum();
    assert_eq!(loaded, rule_count, "every rule of the mixin is loaded: {rules}");
    eprintln!(
        "rules loaded {:.1} s after start, {:.1} s before the first offline poll",
        epoch() - test_began,
        first_offline_poll - epoch()
    );

    // The page: after the second consecutive offline poll, not the first.
    let queries = dashboard_queries();
    let mut with_data = vec![false; queries.len()];
    wait_for(
        "IdAuthorityOffline for NG BVN is delivered",
        Duration::from_secs_f64(second_offline_poll - epoch() + 30.0),
        || async move { !hook.offline("firing").is_empty() },
    )
    .await;
    let page = hook.offline("firing").remove(0);
    assert!(
        page.at >= second_offline_poll,
        "paged at {:.1}, before the second offline poll at {second_offline_poll:.1}: {:?}",
        page.at,
        hook.summary()
    );
    let page_latency = page.at - second_offline_poll;
    eprintln!("paged {page_latency:.1} s after the second offline poll");

    // One alert for the pair, not one per replica, and nothing that names a replica.
    assert_eq!(page.receiver, "pager");
    let keys: Vec<&String> = page.labels.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["alertname", "country", "id_type", "job", "severity"], "{}", page.labels);
    assert_eq!(page.label("severity"), "critical");
    assert_eq!(page.label("job"), JOB);
    let ann = &page.annotations;
    assert_eq!(ann["summary"], "ID authority offline: NG BVN");
    let description = ann["description"].as_str().unwrap_or("");
    let since = format!("Offline since {}", humanized(first_offline_check));
    assert!(
        description.contains("behind BVN checks in NG as offline")
            && description.contains("Last 10-minute window: 5% success")
            && description.contains(&since),
        "the description should name NG BVN and say `{since}`: {description:?}"
    );
    assert!(ann["runbook_url"].as_str().unwrap().ends_with("docs/runbook.md#idauthorityoffline"), "{ann}");
    check_dashboard(http, prom, &queries, &mut with_data).await;

    // Once both replicas have observed the outage, each shows one since for it in every
    // place (metric, status API, history API, status page), and both show the same one: the
    // provider's time of the first offline window, not when either polled it.
    let offline_since = since_everywhere(http, &replicas, "offline", first_offline_check, first_offline_poll).await;
    let since_before = offline_since[0].since_ms;
    eprintln!(
        "both replicas show NG BVN offline since {} ({since_before} ms) everywhere; first offline poll at \
         {first_offline_poll:.1}",
        humanized(offline_since[0].since()),
    );

    // Kill one replica mid-outage; restart it (a fresh process on the same port) after
    // longer than IdAuthExporterReplicaDown's `for:`.
    assert!(
        epoch() + 20.0 < recovery_poll,
        "the page came too late ({page_latency:.1} s after the second offline poll) to restart a replica before the \
         recovery poll at {recovery_poll:.1}: the machine is too slow for this timeline (OUTAGE_WINDOWS)"
    );
    let one_down = &format!("up{{job=\"{JOB}\", instance=\"{}\"}} == 0", replicas[0].addr());
    let killed = epoch();
    replicas[0].kill(http).await;
    wait_for("prometheus sees the killed replica down", Duration::from_secs(15), || async move {
        !series(http, prom, one_down).await.is_empty()
    })
    .await;
    check_dashboard(http, prom, &queries, &mut with_data).await;
    sleep_until(killed + 8.0).await;
    let restarted = epoch();
    replicas[0].start();
    replicas[0].ready(http).await;
    wait_observed_offline(http, prom, &[&replicas[0]]).await;
    // Once it has polled again, the restarted replica shows the since it showed before
    // (kept in its history store), everywhere; the other replica's is unchanged.
    let shown = wait_shown(http, &replicas[0], "offline", restarted, Duration::from_secs(15)).await;
    assert_eq!(
        shown.since_ms,
        since_before,
        "{} restarted mid-outage shows NG BVN offline since {} ms, not since {since_before} ms as before",
        replicas[0].addr(),
        shown.since_ms
    );
    let other = wait_shown(http, &replicas[1], "offline", first_offline_check as f64, Duration::from_secs(15)).await;
    assert_eq!(
        other.since_ms,
        since_before,
        "{} changed its since while the other replica restarted",
        replicas[1].addr()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!("replica {} killed at {killed:.1}, back at {:.1}", replicas[0].addr(), epoch());
    assert_eq!(hook.offline("firing").len(), 1, "a replica's restart paged again: {:?}", hook.summary());
    assert!(hook.offline("resolved").is_empty(), "a replica's restart resolved the page: {:?}", hook.summary());

    // Stop both for longer than a poll period: nobody watches, and the page stays open.
    // OUTAGE_WINDOWS leaves time for it whenever the page came in time; a machine too slow
    // for that fails here rather than skip it.
    assert!(
        epoch() + 22.0 < recovery_poll,
        "no time left to stop both replicas for a poll period and restart them before the recovery poll at \
         {recovery_poll:.1} (now {:.1}; paged {page_latency:.1} s after the second offline poll, the first restart \
         took {:.1} s): the machine is too slow for this timeline (OUTAGE_WINDOWS)",
        epoch(),
        epoch() - killed
    );
    let killed = epoch();
    for r in &mut replicas {
        r.kill(http).await;
    }
    sleep_until(killed + PERIOD as f64).await;
    let restarted = epoch();
    for r in &mut replicas {
        r.start();
    }
    for r in &mut replicas {
        r.ready(http).await;
    }
    wait_observed_offline(http, prom, &[&replicas[0], &replicas[1]]).await;
    // Both polled again after a poll period nobody watched: the same since, everywhere.
    for r in &replicas {
        let shown = wait_shown(http, r, "offline", restarted, Duration::from_secs(15)).await;
        assert_eq!(
            shown.since_ms,
            since_before,
            "{} shows NG BVN offline since {} ms after both replicas restarted, not since {since_before} ms as before",
            r.addr(),
            shown.since_ms
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!("both replicas killed at {killed:.1}, back at {:.1}", epoch());
    assert_eq!(hook.offline("firing").len(), 1, "restarting both replicas paged again: {:?}", hook.summary());
    assert!(hook.offline("resolved").is_empty(), "restarting both replicas resolved the page: {:?}", hook.summary());
    assert!(epoch() < recovery_poll, "the restarts took until the recovery: the test proved nothing about them");

    // The recovery: exactly one resolution, after the first online poll.
    wait_for(
        "IdAuthorityOffline for NG BVN is resolved",
        Duration::from_secs_f64(recovery_poll - epoch() + 30.0),
        || async move { !hook.offline("resolved").is_empty() },
    )
    .await;
    let resolution = hook.offline("resolved").remove(0);
    assert!(
        resolution.at >= recovery_poll,
        "resolved at {:.1}, before the recovery was polled at {recovery_poll:.1}: {:?}",
        resolution.at,
        hook.summary()
    );
    // Both replicas polled the recovery: online since the provider's time of the first
    // online window, on both, everywhere.
    since_everywhere(http, &replicas, "online", recovery_check, recovery_poll).await;
    // A little longer, to catch anything that would come late.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let deliveries = hook.deliveries();
    assert_eq!(hook.offline("firing").len(), 1, "{:?}", hook.summary());
    assert_eq!(hook.offline("resolved").len(), 1, "{:?}", hook.summary());

    // Prometheus kept the alert firing without a gap from the page to the recovery.
    let range = http
        .get(format!("{prom}/api/v1/query_range"))
        .query(&[
            ("query", "ALERTS{alertname=\"IdAuthorityOffline\", alertstate=\"firing\"}".to_owned()),
            ("start", format!("{:.0}", page.at.ceil())),
            ("end", format!("{:.0}", recovery_poll.floor())),
            ("step", "1".to_owned()),
        ])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let result = range["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "one firing alert all along: {range}");
    let points = result[0]["values"].as_array().unwrap().len() as f64;
    let steps = recovery_poll.floor() - page.at.ceil() + 1.0;
    assert_eq!(points, steps, "IdAuthorityOffline stopped firing for a while: {range}");

    // Nothing else fired for any pair, at any time, even where Alertmanager would have
    // inhibited it; of the exporter alerts, only those the kills explain.
    let window = format!("{}s", (epoch() - test_began).ceil() as i64 + 10);
    let q = format!("count by (alertname, alertstate, country, id_type, instance) (count_over_time(ALERTS[{window}]))");
    let fired = query(http, prom, &q).await;
    assert_eq!(fired["status"], "success", "{q}: {fired}");
    let fired = fired["data"]["result"].as_array().cloned().unwrap_or_default();
    // Not an empty answer that would check nothing: the page's alert is there.
    assert!(
        fired.iter().any(|r| {
            let m = &r["metric"];
            m["alertname"] == "IdAuthorityOffline"
                && m["alertstate"] == "firing"
                && m["country"] == "NG"
                && m["id_type"] == "BVN"
        }),
        "{q} does not hold the firing IdAuthorityOffline for NG BVN: {fired:?}"
    );
    let is_replica = |instance: &str| replicas.iter().any(|r| r.addr() == instance);
    for r in fired {
        let m = &r["metric"];
        let l = |k: &str| m[k].as_str().unwrap_or("").to_owned();
        let ok = match (l("alertname").as_str(), l("alertstate").as_str()) {
            ("IdAuthorityOffline", "firing") => (l("country"), l("id_type")) == ("NG".into(), "BVN".into()),
            // Each restarted process reports unknown until its first poll has finished.
            ("IdAuthorityStatusUnknown", "pending") => true,
            // Replica A was killed alone; when both were, either may be seen down while
            // the other is already back.
            ("IdAuthExporterReplicaDown", _) => is_replica(&l("instance")),
            ("IdAuthExporterDown", _) => true,
            _ => false,
        };
        if !ok {
            let failures = series(http, prom, "sum by (instance, reason) (idauth_poll_failures_total) > 0").await;
            panic!("an unexpected alert: {m}; failed polls by replica and reason: {failures:?}");
        }
    }
    for d in &deliveries {
        let ok = match d.label("alertname") {
            "IdAuthorityOffline" => d.is(&d.status, "IdAuthorityOffline", "NG", "BVN") && d.receiver == "pager",
            "IdAuthExporterReplicaDown" => is_replica(d.label("instance")) && d.receiver == "chat",
            "IdAuthExporterDown" => d.receiver == "pager",
            _ => false,
        };
        assert!(ok, "an unexpected delivery {d:?}: {:?}", hook.summary());
    }

    // The KYC backend heard of the outage and of the recovery, signed, from both replicas
    // under one id per change (the id of the change itself, whichever replica sent it), and
    // of nothing else: a receiver deduplicating by id acts once on each.
    let events: Vec<Value> =
        hook.0.lock().unwrap().iter().filter(|(r, _, _)| r == EVENTS).map(|(_, v, _)| v.clone()).collect();
    let target = idauth_exporter::model::Target::new("NG".parse().unwrap(), "BVN".parse().unwrap());
    let at = |secs: i64| chrono::DateTime::from_timestamp(secs, 0).unwrap();
    let expected =
        [(AuthorityState::Offline, first_offline_check, "online"), (AuthorityState::Online, recovery_check, "offline")];
    for (to, since, from) in expected {
        let id = idauth_exporter::history::events::Change::id_for(&target, to, at(since));
        let got: Vec<&Value> = events.iter().filter(|e| e["webhook_id"] == id.as_str()).collect();
        assert!(
            got.len() >= 2,
            "NG BVN to {to} ({id}) reached the receiver {} times, not from both replicas: {events:#?}",
            got.len()
        );
        for e in got {
            assert_eq!(e["signed"], true, "{e}");
            assert_eq!((e["data"]["from"].as_str(), e["data"]["to"].as_str()), (Some(from), Some(to.as_str())), "{e}");
        }
    }
    let ids: std::collections::BTreeSet<&str> = events.iter().filter_map(|e| e["webhook_id"].as_str()).collect();
    assert_eq!(ids.len(), 2, "one id per change, and no other change: {events:#?}");

    let empty: Vec<&String> = queries.iter().zip(&with_data).filter(|(_, d)| !**d).map(|(q, _)| q).collect();
    assert!(empty.is_empty(), "dashboard queries that never returned data: {empty:#?}");

    stop.cancel();
    eprintln!("deliveries (time, receiver, status, alert, country, id_type, instance): {:#?}", hook.summary());
    eprintln!(
        "paged {page_latency:.1} s after the second offline poll; resolved {:.1} s after the recovery poll; \
         {} deliveries; {:.0} s in all",
        resolution.at - recovery_poll,
        deliveries.len(),
        epoch() - test_began
    );
}

/// Starts Alertmanager with the shipped configuration, delivering to a webhook.
async fn start_alertmanager(dir: &Path, hook_url: &str) -> (Proc, String) {
    let alertmanager = binary(&["prometheus-alertmanager", "alertmanager"], "prometheus-alertmanager");
    let port = free_port();
    std::fs::write(dir.join("alertmanager.yml"), test_alertmanager_config(hook_url)).unwrap();
    let proc = Proc(
        Command::new(alertmanager)
            .arg(format!("--config.file={}", dir.join("alertmanager.yml").display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&http(), &format!("{url}/-/ready"), "alertmanager").await;
    (proc, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_inhibitions_silence_what_they_should() {
    let stop = CancellationToken::new();
    let dir = tempfile::tempdir().unwrap();
    let hook = Hook::default();
    let hook_url = start_hook(hook.clone(), stop.clone()).await;
    let (_am, am) = start_alertmanager(dir.path(), &hook_url).await;

    // Alerts as the mixin makes them: authority and job-level alerts carry the group labels
    // (cluster, job) and no instance; replica alerts carry an instance.
    let alert = |name: &str, severity: &str, labels: &[(&str, &str)]| {
        let mut l = json!({"alertname": name, "severity": severity, "cluster": "eu", "job": JOB});
        for (k, v) in labels {
            l[*k] = json!(v);
        }
        json!({"labels": l, "annotations": {"summary": name}})
    };
    let pair = |name: &str, severity: &str, job: &str, country: &str, id_type: &str| {
        alert(name, severity, &[("job", job), ("country", country), ("id_type", id_type)])
    };
    let alerts = json!([
        // No replica of the job is up: the alerts that say so in other words are silenced...
        alert("IdAuthExporterDown", "critical", &[]),
        pair("IdAuthorityStatusUnknown", "warning", JOB, "GH", "GHANA_CARD"),
        pair("IdAuthorityDataStale", "warning", JOB, "GH", "GHANA_CARD"),
        alert("IdAuthExporterStalled", "critical", &[]),
        alert("IdAuthExporterReplicaDown", "warning", &[("instance", "exp-a:9877")]),
        alert("IdAuthExporterPollsFailing", "warning", &[("instance", "exp-a:9877")]),
        // ...but not an open page (it stays open as last observed)...
        pair("IdAuthorityOffline", "critical", JOB, "NG", "BVN"),
        // ...nor the same job's alerts in another cluster.
        alert(
            "IdAuthorityStatusUnknown",
            "warning",
            &[("cluster", "us"), ("country", "GH"), ("id_type", "GHANA_CARD")]
        ),
        // One replica of another job down inhibits nothing: its other replica's pages and
        // warnings get through.
        alert("IdAuthExporterReplicaDown", "warning", &[("job", "idauth-b"), ("instance", "exp-b:9877")]),
        pair("IdAuthorityOffline", "critical", "idauth-b", "KE", "NATIONAL_ID"),
        // An offline authority is not also notified as degraded or flapping...
        pair("IdAuthorityOffline", "critical", "idauth-b", "NG", "BVN"),
        pair("IdAuthorityDegraded", "warning", "idauth-b", "NG", "BVN"),
        pair("IdAuthorityFlapping", "warning", "idauth-b", "NG", "BVN"),
        // ...but another authority, or the same one in another cluster, is.
        pair("IdAuthorityDegraded", "warning", "idauth-b", "ZA", "NATIONAL_ID"),
        alert("IdAuthorityDegraded", "warning", &[("cluster", "us"), ("country", "NG"), ("id_type", "BVN")]),
        // Refused credentials: every status is unknown and every poll fails for that reason.
        alert("IdAuthExporterUnauthorized", "critical", &[("job", "idauth-c")]),
        pair("IdAuthorityStatusUnknown", "warning", "idauth-c", "KE", "NATIONAL_ID"),
        alert("IdAuthExporterPollsFailing", "warning", &[("job", "idauth-c"), ("instance", "exp-c:9877")]),
    ]);
    let resp = http().post(format!("{am}/api/v2/alerts")).json(&alerts).send().await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());

    let expected = [
        ("chat", "IdAuthExporterReplicaDown", "eu", "idauth-b", "", ""),
        ("chat", "IdAuthorityDegraded", "eu", "idauth-b", "ZA", "NATIONAL_ID"),
        ("chat", "IdAuthorityDegraded", "us", JOB, "NG", "BVN"),
        ("chat", "IdAuthorityStatusUnknown", "us", JOB, "GH", "GHANA_CARD"),
        ("pager", "IdAuthExporterDown", "eu", JOB, "", ""),
        ("pager", "IdAuthExporterUnauthorized", "eu", "idauth-c", "", ""),
        ("pager", "IdAuthorityOffline", "eu", JOB, "NG", "BVN"),
        ("pager", "IdAuthorityOffline", "eu", "idauth-b", "KE", "NATIONAL_ID"),
        ("pager", "IdAuthorityOffline", "eu", "idauth-b", "NG", "BVN"),
    ];
    type Row = (String, String, String, String, String, String);
    let delivered = |h: &Hook| {
        let mut d: Vec<Row> = h
            .deliveries()
            .iter()
            .map(|d| {
                let l = |k: &str| d.label(k).to_owned();
                (d.receiver.clone(), l("alertname"), l("cluster"), l("job"), l("country"), l("id_type"))
            })
            .collect();
        d.sort();
        d.dedup();
        d
    };
    let began = Instant::now();
    while delivered(&hook).len() < expected.len() && began.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Time for anything that should not come to come anyway.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = delivered(&hook);
    let mut want: Vec<Row> = expected
        .iter()
        .map(|(r, a, c, j, co, i)| {
            (r.to_string(), a.to_string(), c.to_string(), j.to_string(), co.to_string(), i.to_string())
        })
        .collect();
    want.sort();
    assert_eq!(got, want);
    stop.cancel();
}
