//! End to end with the real Debian `prometheus` and `prometheus-alertmanager` binaries on
//! loopback ports: the simulator plays a scenario in which exactly one pair (NG BVN) goes
//! offline and recovers; the exporter polls it; Prometheus scrapes the exporter and
//! evaluates the shipped rules (with `for:` and look-back windows shortened for speed;
//! promtool's unit tests cover the real ones); Alertmanager, with the shipped routing and
//! a test webhook in place of the pager and chat, must deliver IdAuthorityOffline for that
//! pair and only that pair, then its resolution. Every dashboard query returns data.
//!
//! Fails, never skips, when the binaries are missing.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use idauth_exporter::config::Environment;
use idauth_exporter::secret::Secret;
use idauth_exporter::server;
use idauth_exporter::simulator::{Account, Scenario, Simulator, SystemClock};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Simulated time: a 10-minute window every real second.
const SPEED: f64 = 600.0;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Kills a child process when dropped, so a failing test leaves nothing running.
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

/// The scenario: NG BVN healthy 20 s, offline 25 s, then healthy; three more pairs healthy.
/// The offset puts the start of BVN's timeline at the current window.
fn scenario() -> String {
    let total_sim_secs: i64 = (200 + 250 + 5000) * 60;
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    let window = (now * SPEED / 600.0).floor() as i64;
    let offset = (-(window * 600)).rem_euclid(total_sim_secs);
    format!(
        "pairs:
  - country: NG
    id_types: [BVN]
    offset: {offset}s
    timeline:
      - {{for: 200m, success_rate: 0.99}}
      - {{for: 250m, success_rate: 0.05}}
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
"
    )
}

/// Shortens `for:` (a minute becomes half a second) and the look-back windows of the
/// alert expressions, which assume 60 s scrapes, for 1 s scrapes.
fn fast_rules(yaml: &str) -> String {
    let mut doc: Value = serde_saphyr::from_str(yaml).unwrap();
    for group in doc["groups"].as_array_mut().unwrap() {
        for rule in group["rules"].as_array_mut().unwrap() {
            if let Some(f) = rule.get("for").and_then(Value::as_str) {
                let minutes: u64 = f.trim_end_matches('m').parse().expect("for: in minutes");
                rule["for"] = json!(format!("{}s", minutes.div_ceil(2)));
            }
            if rule.get("alert").is_some() {
                let expr = rule["expr"].as_str().unwrap().replace("[3m]", "[3s]").replace("[20m]", "[10s]");
                rule["expr"] = json!(expr);
            }
        }
    }
    doc.to_string()
}

/// The shipped Alertmanager configuration with every receiver replaced by our webhook.
fn test_alertmanager_config(hook: &str) -> String {
    let yaml = std::fs::read_to_string(format!("{ROOT}/deploy/alertmanager/alertmanager.yml")).unwrap();
    let mut doc: Value = serde_saphyr::from_str(&yaml).unwrap();
    for receiver in doc["receivers"].as_array_mut().unwrap() {
        let name = receiver["name"].as_str().unwrap().to_owned();
        *receiver =
            json!({"name": name, "webhook_configs": [{"url": format!("{hook}/{name}"), "send_resolved": true}]});
    }
    doc["route"]["group_wait"] = json!("1s");
    doc["route"]["group_interval"] = json!("1s");
    doc.to_string()
}

#[derive(Clone, Default)]
struct Hook(Arc<Mutex<Vec<(String, Value)>>>);

impl Hook {
    fn notifications(&self) -> Vec<(String, Value)> {
        self.0.lock().unwrap().clone()
    }

    /// Every (receiver, status, alertname, country, id_type) delivered.
    fn deliveries(&self) -> Vec<(String, String, String, String, String)> {
        let mut out = Vec::new();
        for (receiver, n) in self.notifications() {
            for a in n["alerts"].as_array().unwrap() {
                let l = |k: &str| a["labels"][k].as_str().unwrap_or("").to_owned();
                out.push((
                    receiver.clone(),
                    a["status"].as_str().unwrap().to_owned(),
                    l("alertname"),
                    l("country"),
                    l("id_type"),
                ));
            }
        }
        out
    }
}

async fn start_hook(hook: Hook, stop: CancellationToken) -> String {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handler: server::Handler = Arc::new(move |req| {
        let hook = hook.clone();
        Box::pin(async move {
            let receiver = req.uri().path().trim_start_matches('/').to_owned();
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                hook.0.lock().unwrap().push((receiver, v));
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

async fn wait_ready(http: &reqwest::Client, url: &str, what: &str) {
    for _ in 0..150 {
        if http.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{what} did not become ready at {url}");
}

/// Every target expression of the dashboard, with its variables substituted.
fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(format!("{ROOT}/grafana/dashboards/idauth-overview.json")).unwrap();
    let dash: Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
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
    walk(&dash["panels"], &mut out);
    out.into_iter()
        .map(|e| {
            e.replace("${job}", "idauth-exporter")
                .replace("$job", "idauth-exporter")
                .replace("${country}", ".*")
                .replace("$country", ".*")
                .replace("${id_type}", ".*")
                .replace("$id_type", ".*")
                .replace("$__rate_interval", "30s")
                .replace("$__range", "1m")
                .replace("$__interval", "5s")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_authority_goes_offline_pages_once_and_resolves() {
    let prometheus = binary(&["prometheus"], "prometheus");
    let http = http();
    let stop = CancellationToken::new();
    let dir = tempfile::tempdir().unwrap();

    // The simulated provider and the exporter polling it every second.
    let account = Account { partner_id: "085".into(), api_key: Secret::new(KEY), environment: Environment::Production };
    let sim = Simulator::new(Scenario::parse(&scenario(), "e2e").unwrap(), account, SPEED, Arc::new(SystemClock));
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim_url = format!("http://{}", sim_listener.local_addr().unwrap());
    tokio::spawn(server::serve(sim_listener, sim.handler(), stop.clone()));
    let pairs: &[(&str, &[&str])] = &[("NG", &["BVN", "NIN_V2"]), ("KE", &["NATIONAL_ID"]), ("GH", &["GHANA_CARD"])];
    let yaml = config_yaml(&sim_url, "v2", pairs, "  retries: 0\n  max_data_age: 5s\n")
        .replace(NEVER, "* * * * * *")
        .replace("timeout: 2s", "timeout: 1s");
    let exporter = start(&yaml).await;

    // Alertmanager with the shipped routing, delivering to our webhook.
    let hook = Hook::default();
    let hook_url = start_hook(hook.clone(), stop.clone()).await;
    let (_am, am_url) = start_alertmanager(dir.path(), &hook_url).await;
    let am_target = am_url.trim_start_matches("http://").to_owned();

    // Prometheus scraping the exporter every second with the shipped rules.
    for f in ["rules.yaml", "alerts.yaml"] {
        let shipped = std::fs::read_to_string(format!("{ROOT}/deploy/prometheus/{f}")).unwrap();
        std::fs::write(dir.path().join(f), fast_rules(&shipped)).unwrap();
    }
    let prom_port = free_port();
    let mut prom_config = json!({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am_target]}]}]},
        "scrape_configs": [{"job_name": "idauth-exporter", "static_configs": [{"targets": [exporter.addr.to_string()]}]}],
    });
    std::fs::write(dir.path().join("prometheus.yml"), prom_config.to_string()).unwrap();
    let _prom = Proc(
        Command::new(prometheus)
            .current_dir(dir.path())
            .arg("--config.file=prometheus.yml")
            .arg(format!("--storage.tsdb.path={}", dir.path().join("prom-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .arg("--rules.alert.resend-delay=1s")
            .arg("--web.enable-lifecycle")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let prom = format!("http://127.0.0.1:{prom_port}");
    wait_ready(&http, &format!("{prom}/-/ready"), "prometheus").await;

    // The rules go in once the exporter is being scraped: with `for:` this short, the
    // second or two before Prometheus's first scrape would otherwise fire
    // IdAuthExporterDown (absent), which a real `for: 10m` never sees.
    for i in 0.. {
        let r = query(&http, &prom, "up").await;
        if r["data"]["result"].as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        assert!(i < 100, "prometheus never scraped the exporter: {r}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    prom_config["rule_files"] = json!(["rules.yaml", "alerts.yaml"]);
    std::fs::write(dir.path().join("prometheus.yml"), prom_config.to_string()).unwrap();
    let reload = http.post(format!("{prom}/-/reload")).send().await.unwrap();
    assert!(reload.status().is_success(), "prometheus reload: {}", reload.text().await.unwrap());
    let rules: Value = http.get(format!("{prom}/api/v1/rules")).send().await.unwrap().json().await.unwrap();
    let loaded: usize =
        rules["data"]["groups"].as_array().unwrap().iter().map(|g| g["rules"].as_array().unwrap().len()).sum();
    assert_eq!(loaded, 13, "every shipped rule is loaded: {rules}");

    // Wait for the page, check the dashboard's queries while the outage is on, then wait
    // for the resolution.
    let began = Instant::now();
    let firing = |h: &Hook| h.deliveries().iter().any(|d| d.1 == "firing" && d.2 == "IdAuthorityOffline");
    let resolved = |h: &Hook| h.deliveries().iter().any(|d| d.1 == "resolved" && d.2 == "IdAuthorityOffline");
    while !firing(&hook) {
        assert!(
            began.elapsed() < Duration::from_secs(90),
            "no IdAuthorityOffline within 90 s: {:?}",
            hook.deliveries()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let fired_after = began.elapsed();

    for q in dashboard_queries() {
        let resp: Value = query(&http, &prom, &q).await;
        assert_eq!(resp["status"], "success", "{q}: {resp}");
        let result = resp["data"]["result"].as_array().unwrap();
        assert!(!result.is_empty(), "the dashboard query returned no data: {q}");
    }

    while !resolved(&hook) {
        assert!(began.elapsed() < Duration::from_secs(150), "no resolution within 150 s: {:?}", hook.deliveries());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A little longer, to catch anything that would fire late.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Nothing else fired or was pending at any time, even where Alertmanager would have
    // inhibited it.
    let window = format!("{}s", began.elapsed().as_secs() + 10);
    let q = format!("count by (alertname, alertstate, country, id_type) (count_over_time(ALERTS[{window}]))");
    let resp: Value = query(&http, &prom, &q).await;
    let mut seen: Vec<String> = resp["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let m = &r["metric"];
            format!("{} {} {} {}", m["alertname"], m["alertstate"], m["country"], m["id_type"]).replace('"', "")
        })
        .collect();
    seen.sort();
    assert_eq!(seen, ["IdAuthorityOffline firing NG BVN", "IdAuthorityOffline pending NG BVN"], "{resp}");
    stop.cancel();
    let exporter_addr = exporter.addr.to_string();
    exporter.stop().await;

    // Only that alert, only that pair, paged through the pager receiver; then resolved.
    let deliveries = hook.deliveries();
    for d in &deliveries {
        assert_eq!(
            (d.0.as_str(), d.2.as_str(), d.3.as_str(), d.4.as_str()),
            ("pager", "IdAuthorityOffline", "NG", "BVN"),
            "an unexpected delivery: {deliveries:?}"
        );
    }
    let notifications = hook.notifications();
    let alert = notifications
        .iter()
        .flat_map(|(_, n)| n["alerts"].as_array().unwrap().iter())
        .find(|a| a["status"] == "firing")
        .unwrap();
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["labels"]["job"], "idauth-exporter");
    assert_eq!(alert["labels"]["instance"], exporter_addr);
    let ann = &alert["annotations"];
    assert_eq!(ann["summary"], "ID authority offline: NG BVN");
    let description = ann["description"].as_str().unwrap();
    assert!(
        description.contains("behind BVN checks in NG as offline")
            && description.contains("Last 10-minute window: 5% success")
            && description.contains("Offline since 20"),
        "{description}"
    );
    assert!(ann["runbook_url"].as_str().unwrap().ends_with("docs/runbook.md#idauthorityoffline"));
    eprintln!("IdAuthorityOffline delivered {fired_after:?} after start; resolved after {:?}", began.elapsed());
}

/// Starts Alertmanager with the shipped configuration, delivering to a webhook.
async fn start_alertmanager(dir: &std::path::Path, hook_url: &str) -> (Proc, String) {
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

    let alert = |name: &str, severity: &str, labels: &[(&str, &str)]| {
        let mut l = json!({"alertname": name, "severity": severity, "job": "idauth-exporter", "instance": "exp:9877"});
        for (k, v) in labels {
            l[*k] = json!(v);
        }
        json!({"labels": l, "annotations": {"summary": name}})
    };
    let other_job = |name: &str, severity: &str, country: &str, id_type: &str| {
        alert(name, severity, &[("job", "idauth-exporter-eu"), ("country", country), ("id_type", id_type)])
    };
    let alerts = json!([
        // The exporter is down: what it watches is meaningless, and is silenced...
        alert("IdAuthExporterDown", "critical", &[]),
        alert("IdAuthorityStatusUnknown", "warning", &[("country", "GH"), ("id_type", "GHANA_CARD")]),
        alert("IdAuthExporterStalled", "critical", &[]),
        // ...but not another job's alerts.
        other_job("IdAuthorityOffline", "critical", "KE", "NATIONAL_ID"),
        // An offline authority is not also notified as degraded or flapping.
        other_job("IdAuthorityOffline", "critical", "NG", "BVN"),
        other_job("IdAuthorityDegraded", "warning", "NG", "BVN"),
        other_job("IdAuthorityFlapping", "warning", "NG", "BVN"),
        // A degraded authority alone is notified, to chat.
        other_job("IdAuthorityDegraded", "warning", "ZA", "NATIONAL_ID"),
    ]);
    let resp = http().post(format!("{am}/api/v2/alerts")).json(&alerts).send().await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());

    let expected = [
        ("chat", "IdAuthorityDegraded", "ZA", "NATIONAL_ID"),
        ("pager", "IdAuthExporterDown", "", ""),
        ("pager", "IdAuthorityOffline", "KE", "NATIONAL_ID"),
        ("pager", "IdAuthorityOffline", "NG", "BVN"),
    ];
    let delivered = |h: &Hook| {
        let mut d: Vec<(String, String, String, String)> =
            h.deliveries().into_iter().map(|(r, _, a, c, i)| (r, a, c, i)).collect();
        d.sort();
        d.dedup();
        d
    };
    let began = Instant::now();
    while delivered(&hook).len() < expected.len() && began.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Time for anything that should not come to come anyway.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = delivered(&hook);
    let want: Vec<(String, String, String, String)> =
        expected.iter().map(|(r, a, c, i)| (r.to_string(), a.to_string(), c.to_string(), i.to_string())).collect();
    assert_eq!(got, want);
    stop.cancel();
}
