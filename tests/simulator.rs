//! The exporter against the built-in simulator, in-process, for both API flavours: the
//! metrics equal the scenario's values at given simulated times, faults are counted under
//! the right reason, and the simulator answers as the provider documents.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use common::*;
use idauth_exporter::config::Environment;
use idauth_exporter::model::{Rate, Target};
use idauth_exporter::secret::Secret;
use idauth_exporter::signature;
use idauth_exporter::simulator::{Account, ManualClock, Scenario, Simulator};
use idauth_exporter::web::http as server;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const SCENARIO: &str = r#"
pairs:
  - country: NG
    id_types: [BVN]
    timeline:
      - {for: 40m, success_rate: 0.98}
      - {for: 20m, success_rate: 0.2}
  - country: KE
    id_types: [NATIONAL_ID]
    timeline:
      - {for: 30m, success_rate: 0.99}
      - {for: 30m, success_rate: 0.75}
    noise: 0.02
  - country: GH
    id_types: [GHANA_CARD]
    timeline: [{for: 1h, success_rate: 0.97}]
    faults: {error_share: 1}
  - country: ZA
    id_types: [NATIONAL_ID]
    timeline: [{for: 1h, success_rate: 0.97}]
    faults: {rate_limit_share: 1, retry_after: 1s}
  - country: NG
    id_types: [NIN_V2]
    timeline: [{for: 1h, success_rate: 0.97}]
    faults: {malformed_share: 1}
  - country: ZM
    id_types: [TPIN]
    timeline: [{for: 1h, success_rate: 0.97}]
    faults: {no_data: true}
"#;

fn account() -> Account {
    Account { partner_id: "085".into(), api_key: Secret::new(KEY), environment: Environment::Production }
}

/// The start of an hour of simulated (= real, at speed 1) time.
fn hour() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 14, 0, 0).unwrap()
}

struct Sim {
    url: String,
    clock: Arc<ManualClock>,
    sim: Arc<Simulator>,
    stop: CancellationToken,
}

async fn simulator(scenario: &str) -> Sim {
    let clock = Arc::new(ManualClock::new(hour()));
    let scenario = Scenario::parse(scenario, "test.yaml").unwrap();
    let sim = Simulator::new(scenario, account(), 1.0, clock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(server::serve(listener, sim.handler(), stop.clone()));
    Sim { url, clock, sim, stop }
}

fn t(c: &str, i: &str) -> Target {
    Target::new(c.parse().unwrap(), i.parse().unwrap())
}

/// The metrics say exactly what the simulator's scenario says for `target` now.
fn assert_matches(m: &Metrics, sim: &Simulator, target: &Target) {
    let (c, i) = (target.country.as_str(), target.id_type.as_str());
    let v = sim.view(target).unwrap();
    assert_eq!(m.state(c, i), v.state.as_str(), "{target}");
    // The exporter serves the provider's decimal exactly: 74.9% is 0.749, not 74.9 / 100.
    let exact = |percent: f64| Rate::from_f64(percent / 100.0).map(Rate::as_f64);
    assert_eq!(m.pair("idauth_success_rate_10m", c, i, ""), exact(v.rate_10m_percent), "{target}");
    assert_eq!(m.pair("idauth_success_rate_1h", c, i, ""), exact(v.rate_1h_percent), "{target}");
    assert_eq!(
        m.pair("idauth_last_checked_timestamp_seconds", c, i, ""),
        Some(v.last_checked.timestamp_millis() as f64 / 1000.0),
        "{target}"
    );
}

async fn exporter_against_the_simulator(api: &str) {
    let s = simulator(SCENARIO).await;
    let pairs: &[(&str, &[&str])] = &[
        ("NG", &["BVN", "NIN_V2"]),
        ("KE", &["NATIONAL_ID"]),
        ("GH", &["GHANA_CARD"]),
        ("ZA", &["NATIONAL_ID"]),
        ("ZM", &["TPIN"]),
    ];
    // The exporter and the simulator tell time by the same clock, moved by the test.
    let ex = start_with_clock(&config_yaml(&s.url, api, pairs, "  retries: 0\n"), s.clock.clone()).await;
    ex.ready().await;
    let (bvn, ke) = (t("NG", "BVN"), t("KE", "NATIONAL_ID"));

    // 14:25: both healthy; the hour's mean includes the previous hour's bad windows.
    s.clock.set(hour() + chrono::TimeDelta::minutes(25));
    assert!(ex.app.run_cycle(false).await);
    let m = ex.metrics().await;
    assert_matches(&m, &s.sim, &bvn);
    assert_matches(&m, &s.sim, &ke);
    assert_eq!(m.state("NG", "BVN"), "online");
    assert_eq!(m.pair("idauth_success_rate_10m", "NG", "BVN", ""), Some(0.98));

    // 14:55: the 14:40 window, BVN's first bad one, is complete: offline. KE is degraded.
    s.clock.set(hour() + chrono::TimeDelta::minutes(55));
    assert!(ex.app.run_cycle(false).await);
    let m = ex.metrics().await;
    assert_matches(&m, &s.sim, &bvn);
    assert_matches(&m, &s.sim, &ke);
    assert_eq!(m.state("NG", "BVN"), "offline");
    assert_eq!(m.pair("idauth_success_rate_10m", "NG", "BVN", ""), Some(0.2));
    assert_eq!(m.state("KE", "NATIONAL_ID"), "interruption");

    // 15:15: the 15:00 window was good again: BVN is back.
    s.clock.set(hour() + chrono::TimeDelta::minutes(75));
    assert!(ex.app.run_cycle(false).await);
    let m = ex.metrics().await;
    assert_matches(&m, &s.sim, &bvn);
    assert_eq!(m.state("NG", "BVN"), "online");
    assert_eq!(m.pair("idauth_success_rate_1h", "NG", "BVN", ""), Some(0.72));

    // The pairs with faults: three cycles so far, each one failing the same way.
    for (c, i, reason) in [
        ("GH", "GHANA_CARD", "http_5xx"),
        ("ZA", "NATIONAL_ID", "rate_limited"),
        ("NG", "NIN_V2", "invalid_response"),
        ("ZM", "TPIN", "no_data"),
    ] {
        m.assert_failed(c, i, reason, 4.0);
        assert_eq!(m.pair("idauth_poll_success", c, i, ""), Some(0.0));
    }
    ex.stop().await;
    s.stop.cancel();
}

#[tokio::test]
async fn v2_exporter_follows_the_scenario() {
    exporter_against_the_simulator("v2").await;
}

#[tokio::test]
async fn v3_exporter_follows_the_scenario() {
    exporter_against_the_simulator("v3").await;
}

#[tokio::test]
async fn the_demo_serves_every_documented_pair_and_they_change() {
    let stop = CancellationToken::new();
    let demo = idauth_exporter::demo::start("127.0.0.1:0", stop.clone()).await.unwrap();
    let http = http();
    let metrics = |http: reqwest::Client| async move {
        Metrics::parse(
            &http.get(format!("http://{}/metrics", demo.exporter)).send().await.unwrap().text().await.unwrap(),
        )
    };
    // The demo runs on the wall clock (demo::start takes no clock), at 60 simulated seconds
    // a second: GH GHANA_CARD and KE KRA_PIN change every 10 to 20 s of real time. Wait on
    // the change itself, up to 35 s.
    let mut first = None;
    let mut changed = false;
    let began = std::time::Instant::now();
    while began.elapsed() < Duration::from_secs(35) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let m = metrics(http.clone()).await;
        // The demo discovers its pairs: wait until the catalogue's are all watched and polled.
        let builtin = Scenario::builtin().targets();
        if m.get("idauth_discovery_targets") != Some(builtin.len() as f64)
            || builtin
                .iter()
                .any(|t| m.pair("idauth_poll_success", t.country.as_str(), t.id_type.as_str(), "").is_none())
        {
            continue;
        }
        let states: Vec<String> = builtin.iter().map(|t| m.state(t.country.as_str(), t.id_type.as_str())).collect();
        match &first {
            None => {
                assert!(states.iter().all(|s| s != "unknown"), "every pair has data: {states:?}");
                assert_eq!(m.get("idauth_targets"), Some(states.len() as f64));
                first = Some(states);
            }
            Some(f) if *f != states => {
                changed = true;
                break;
            }
            Some(_) => {}
        }
    }
    let page = http.get(format!("http://{}/", demo.exporter)).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("<main id=\"status\" data-refresh=\"10\"") && page.contains("<script src=\"/ui/status.js\""),
        "the demo's page follows by itself, every simulated window"
    );
    stop.cancel();
    assert!(first.is_some(), "the demo produced data");
    assert!(changed, "some authority changed state within 35 seconds");
    let _ = demo.handle.await;
}

// The simulator's own answers, as a client that is not ours sees them.

async fn post_v2(url: &str, body: &Value) -> (u16, Value) {
    let resp = http().post(format!("{url}/api/v2/partner/id_status")).json(body).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

fn signed_body(key: &str, partner: &str, country: &str, id_type: &str) -> Value {
    let ts = signature::timestamp(Utc::now());
    json!({
        "partner_id": partner, "timestamp": ts, "signature": signature::sign(&Secret::new(key), partner, &ts),
        "country": country, "id_type": id_type, "environment": "production",
    })
}

#[tokio::test]
async fn v2_answers_as_the_provider_documents() {
    let s = simulator(SCENARIO).await;
    s.clock.set(hour() + chrono::TimeDelta::minutes(55));
    let (status, body) = post_v2(&s.url, &signed_body(KEY, "085", "NG", "BVN")).await;
    assert_eq!(status, 200);
    assert_eq!(body, s.sim.view(&t("NG", "BVN")).unwrap().body());
    assert_eq!(body["last_known_status"], "offline");

    let unauthorized = json!({"error": "You are not authorized to do that.", "code": "2205"});
    assert_eq!(post_v2(&s.url, &signed_body("wrong-key", "085", "NG", "BVN")).await, (401, unauthorized.clone()));
    assert_eq!(post_v2(&s.url, &signed_body(KEY, "85", "NG", "BVN")).await.1["code"], "2205", "leading zeros matter");
    let mut sandbox = signed_body(KEY, "085", "NG", "BVN");
    sandbox["environment"] = json!("sandbox");
    assert_eq!(post_v2(&s.url, &sandbox).await, (401, unauthorized.clone()));
    let mut bad_ts = signed_body(KEY, "085", "NG", "BVN");
    bad_ts["timestamp"] = json!("yesterday");
    assert_eq!(post_v2(&s.url, &bad_ts).await.1["code"], "2205");
    let mut missing = signed_body(KEY, "085", "NG", "BVN");
    missing.as_object_mut().unwrap().remove("country");
    assert_eq!(
        post_v2(&s.url, &missing).await,
        (400, json!({"error": "Missing required parameter: country", "code": "2213"}))
    );
    let mut wrong_type = signed_body(KEY, "085", "NG", "BVN");
    wrong_type["country"] = json!(7);
    assert_eq!(post_v2(&s.url, &wrong_type).await.1["code"], "2204");

    let http = http();
    let url = format!("{}/api/v2/partner/id_status", s.url);
    let garbage = http.post(&url).body("{not json").send().await.unwrap();
    assert_eq!(garbage.status(), 400);
    assert_eq!(garbage.json::<Value>().await.unwrap()["code"], "2203");
    let huge = http.post(&url).body(vec![b'x'; 1 << 20]).send().await.unwrap();
    assert_eq!(huge.status(), 413);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 405);

    let (status, body) = post_v2(&s.url, &signed_body(KEY, "085", "NG", "V_NIN")).await;
    assert_eq!(status, 400, "documented but not simulated: no data");
    assert!(body["error"].as_str().unwrap().starts_with("No data found. Check that NG and V_NIN"));
    s.stop.cancel();
}

#[tokio::test]
async fn v3_answers_as_the_provider_documents() {
    let s = simulator(SCENARIO).await;
    let http = http();
    let token_url = format!("{}/v3/token", s.url);
    let token = |partner: &'static str, key: &'static str| {
        http.post(&token_url).header("smileid-partner-id", partner).header("smileid-api-key", key).send()
    };
    assert_eq!(token("85", "wrong").await.unwrap().status(), 401);
    assert_eq!(token("085", KEY).await.unwrap().status(), 401, "v3 wants no leading zeros");
    let with_json =
        http.post(&token_url).header("smileid-partner-id", "85").header("smileid-api-key", KEY).json(&json!({})).send();
    assert_eq!(with_json.await.unwrap().status(), 415);
    let body: Value = token("85", KEY).await.unwrap().json().await.unwrap();
    let jwt = body["token"].as_str().unwrap().to_owned();
    let claims: Value = {
        use base64::Engine;
        let part = jwt.split('.').nth(1).unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    };
    assert_eq!(claims["exp"].as_i64().unwrap() - hour().timestamp(), 900);

    let status = |q: &'static str, tok: Option<String>| {
        let mut req = http.get(format!("{}/v3/services/id_status{q}", s.url));
        if let Some(tok) = tok {
            req = req.header("SmileID-Token", tok);
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let invalid = json!({"message": "Invalid token", "status": "Unauthorized"});
    assert_eq!(status("?country=NG&id_type=BVN", None).await, (401, invalid.clone()));
    assert_eq!(status("?country=NG&id_type=BVN", Some(format!("{jwt}x"))).await, (401, invalid.clone()));
    let ok = status("?country=NG&id_type=BVN", Some(jwt.clone())).await;
    assert_eq!(ok, (200, s.sim.view(&t("NG", "BVN")).unwrap().body()));
    let bad = |m: &str| json!({"message": m, "status": "Bad Request"});
    assert_eq!(status("?id_type=BVN", Some(jwt.clone())).await, (400, bad("\"country\" is required")));
    assert_eq!(status("?country=XX&id_type=BVN", Some(jwt.clone())).await, (400, bad("Invalid country")));
    assert_eq!(
        status("?country=KE&id_type=BVN", Some(jwt.clone())).await,
        (400, bad("Invalid id_type for the given country"))
    );
    assert_eq!(
        status("?country=NG&id_type=V_NIN", Some(jwt.clone())).await,
        (400, bad("No data found. Check that NG and V_NIN are valid inputs"))
    );
    // Tokens expire.
    s.clock.set(hour() + chrono::TimeDelta::minutes(16));
    assert_eq!(status("?country=NG&id_type=BVN", Some(jwt)).await, (401, invalid));
    s.stop.cancel();
}

#[tokio::test]
async fn v1_services_lists_the_simulated_pairs_in_the_provider_shape() {
    let s = simulator(SCENARIO).await;
    let body: Value = http().get(format!("{}/v1/services", s.url)).send().await.unwrap().json().await.unwrap();
    assert!(body["bank_codes"].is_array());
    assert_eq!(body["id_types"]["NG"]["BVN"], json!(["country", "id_type", "id_number", "user_id", "job_id"]));
    assert!(body["id_types"]["NG"]["NIN_V2"].is_array());
    assert!(body["id_types"]["NG"].get("V_NIN").is_none());
    assert_eq!(body["hosted_web"]["basic_kyc"]["KE"]["name"], "Kenya");
    assert!(body["hosted_web"]["basic_kyc"]["ZM"]["id_types"]["TPIN"]["required_fields"].is_array());
    // The same shape as a captured body: every country maps types to field lists.
    let captured: Value = serde_json::from_str(include_str!("fixtures/provider/v1-services-android.json")).unwrap();
    for doc in [&body, &captured] {
        for (_, types) in doc["id_types"].as_object().unwrap() {
            for (_, fields) in types.as_object().unwrap() {
                assert!(fields.as_array().unwrap().iter().all(Value::is_string));
            }
        }
    }
    s.stop.cancel();
}

#[tokio::test]
async fn the_simulator_survives_garbage() {
    use rand::Rng;
    let s = simulator(SCENARIO).await;
    let http = http();
    let paths = [
        "/api/v2/partner/id_status",
        "/v3/token",
        "/v3/services/id_status?country=NG&id_type=BVN",
        "/v1/services",
        "/x",
    ];
    for i in 0..300 {
        let len = rand::rng().random_range(0..2000);
        let body: Vec<u8> = (0..len).map(|_| rand::rng().random()).collect();
        let path = paths[i % paths.len()];
        let method =
            [reqwest::Method::POST, reqwest::Method::GET, reqwest::Method::PUT, reqwest::Method::DELETE][i % 4].clone();
        let resp = http.request(method, format!("{}{path}", s.url)).body(body).send().await.unwrap();
        assert!(resp.status().as_u16() < 500, "{path}: {}", resp.status());
    }
    // Still answering properly afterwards.
    assert_eq!(post_v2(&s.url, &signed_body(KEY, "085", "NG", "BVN")).await.0, 200);
    s.stop.cancel();
}

#[tokio::test]
async fn a_bad_scenario_file_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, SCENARIO.replace("success_rate: 0.75", "success_rate: high")).unwrap();
    let e = Scenario::load(&path).unwrap_err().to_string();
    let line = SCENARIO.lines().position(|l| l.contains("0.75")).unwrap() + 1;
    assert!(e.starts_with(&format!("{}:{line}:", path.display())), "{e}");
    assert!(e.contains("success_rate"), "{e}");
    assert!(e.contains("pairs[1].timeline[1].success_rate"), "{e}");
}

#[test]
fn an_endless_scenario_file_is_refused_at_the_cap() {
    let e = Scenario::load(std::path::Path::new("/dev/zero")).unwrap_err().to_string();
    assert!(e.starts_with("/dev/zero: the file is larger than 4 MiB"), "{e}");
}

// Discovery: the exporter watches what the simulator's catalogue lists.

/// A configuration with discovery on (refresh 1h: the tests read the catalogue themselves),
/// the extra `discovery:` lines, and the `tail` (targets, say).
fn discovery_yaml(url: &str, api: &str, discovery: &str, tail: &str) -> String {
    format!(
        "smile_id:\n  partner_id: \"085\"\n  api_key_file: api_key\n  api: {api}\n  base_url: {url}\n\
         poll:\n  schedule: \"{NEVER}\"\n  timeout: 1s\n  retries: 0\n  jitter: 0s\n\
         discovery:\n  enabled: true\n  refresh: 1h\n{discovery}{tail}"
    )
}

/// Waits until `ok` holds of the exporter's metrics (polls and reads in the background).
async fn until(ex: &Exporter, what: &str, ok: impl Fn(&Metrics) -> bool) -> Metrics {
    eventually(what, PATIENCE, || async { Some(ex.metrics().await).filter(&ok) }).await
}

fn watched(ex: &Exporter) -> Vec<String> {
    let mut v: Vec<String> = ex.app.config().targets.iter().map(Target::to_string).collect();
    v.extend(ex.app.discovered().iter().map(Target::to_string));
    v.sort();
    v.dedup();
    v
}

fn polls(m: &Metrics, t: &Target) -> f64 {
    m.pair("idauth_polls_total", t.country.as_str(), t.id_type.as_str(), "").unwrap_or(0.0)
}

/// With no targets at all, every simulated pair is watched and polled at once, for both
/// flavours (v3 asks its per-country endpoint for the documented countries).
async fn discovery_alone_watches_every_simulated_pair(api: &str) {
    let s = simulator(SCENARIO).await;
    let ex = start_with_clock(&discovery_yaml(&s.url, api, "", ""), s.clock.clone()).await;
    let all = s.sim.scenario().targets();
    let m = until(&ex, "every pair polled", |m| all.iter().all(|t| polls(m, t) >= 1.0)).await;
    assert_eq!(m.get("idauth_targets"), Some(all.len() as f64));
    assert_eq!(m.get("idauth_discovery_targets"), Some(all.len() as f64));
    assert_eq!(m.get("idauth_discovery_refreshes_total{result=\"success\"}"), Some(1.0));
    assert!(m.get("idauth_discovery_last_success_timestamp_seconds").unwrap() > 1e9);
    assert_eq!(m.state("NG", "BVN"), s.sim.view(&t("NG", "BVN")).unwrap().state.as_str());
    ex.stop().await;
    s.stop.cancel();
}

#[tokio::test]
async fn v2_discovery_alone_watches_every_simulated_pair() {
    discovery_alone_watches_every_simulated_pair("v2").await;
}

#[tokio::test]
async fn v3_discovery_alone_watches_every_simulated_pair() {
    discovery_alone_watches_every_simulated_pair("v3").await;
}

/// `countries` and `exclude` filter the catalogue; explicit targets are watched whatever
/// it says, listed or not.
#[tokio::test]
async fn countries_and_exclude_filter_and_explicit_targets_stay() {
    let s = simulator(SCENARIO).await;
    let filters = "  countries: [NG, KE]\n  exclude:\n    - country: NG\n      id_types: [NIN_V2]\n";
    let targets = "targets:\n  - country: ZM\n    id_types: [TPIN]\n  - country: GH\n    id_types: [PASSPORT]\n";
    let ex = start_with_clock(&discovery_yaml(&s.url, "v2", filters, targets), s.clock.clone()).await;
    until(&ex, "the catalogue read", |m| m.get("idauth_discovery_targets") == Some(2.0)).await;
    assert_eq!(watched(&ex), ["GH/PASSPORT", "KE/NATIONAL_ID", "NG/BVN", "ZM/TPIN"]);
    let m = ex.metrics().await;
    assert_eq!(m.get("idauth_targets"), Some(4.0));
    assert!(m.pair("idauth_polls_total", "NG", "NIN_V2", "").is_none(), "excluded");
    assert!(m.pair("idauth_polls_total", "GH", "GHANA_CARD", "").is_none(), "not in countries");
    ex.stop().await;
    s.stop.cancel();
}

const CHANGING: &str = r#"
pairs:
  - country: NG
    id_types: [BVN]
    timeline: [{for: 1h, success_rate: 0.98}]
  - country: KE
    id_types: [NATIONAL_ID]
    from: 30m
    timeline: [{for: 1h, success_rate: 0.97}]
  - country: GH
    id_types: [GHANA_CARD]
    until: 30m
    timeline: [{for: 1h, success_rate: 0.96}]
"#;

/// A pair the catalogue adds is watched after one read and polled at once; a pair it
/// removes stays through one read and goes after the second, series and all.
#[tokio::test]
async fn an_added_pair_is_polled_after_one_read_and_a_removed_one_goes_after_two() {
    let s = simulator(CHANGING).await;
    let ex = start_with_clock(&discovery_yaml(&s.url, "v2", "", ""), s.clock.clone()).await;
    until(&ex, "the start-up read", |m| m.get("idauth_discovery_targets") == Some(2.0)).await;
    assert_eq!(watched(&ex), ["GH/GHANA_CARD", "NG/BVN"]);

    s.clock.set(hour() + chrono::TimeDelta::minutes(31));
    ex.app.refresh_discovery().await.unwrap();
    assert_eq!(watched(&ex), ["GH/GHANA_CARD", "KE/NATIONAL_ID", "NG/BVN"], "added; GH missed once, kept");
    let ke = t("KE", "NATIONAL_ID");
    let m = until(&ex, "the new pair polled", |m| polls(m, &ke) >= 1.0).await;
    assert_eq!(m.state("KE", "NATIONAL_ID"), "online");
    assert_eq!(m.state("GH", "GHANA_CARD"), "online", "still shown after one miss");

    let dropped = ex.app.refresh_discovery().await.unwrap().dropped;
    assert_eq!(dropped, vec![t("GH", "GHANA_CARD")]);
    assert_eq!(watched(&ex), ["KE/NATIONAL_ID", "NG/BVN"]);
    let m = ex.metrics().await;
    assert!(!m.text.contains("GHANA_CARD"), "its series are gone");
    assert_eq!((m.get("idauth_targets"), m.get("idauth_discovery_targets")), (Some(2.0), Some(2.0)));
    ex.stop().await;
    s.stop.cancel();
}

/// A reload reads the catalogue again (not waiting for the refresh), and its filters apply.
#[tokio::test]
async fn reload_re_reads_the_catalogue() {
    let s = simulator(CHANGING).await;
    let ex = start_with_clock(&discovery_yaml(&s.url, "v2", "", ""), s.clock.clone()).await;
    until(&ex, "the start-up read", |m| m.get("idauth_discovery_targets") == Some(2.0)).await;
    s.clock.set(hour() + chrono::TimeDelta::minutes(31));
    let excluded = discovery_yaml(&s.url, "v2", "  exclude:\n    - country: NG\n", "");
    std::fs::write(&ex.config_path, excluded).unwrap();
    ex.app.reload().await.unwrap();
    let m = until(&ex, "the re-read", |m| {
        m.get("idauth_discovery_refreshes_total{result=\"success\"}") == Some(2.0)
            && polls(m, &t("KE", "NATIONAL_ID")) >= 1.0
    })
    .await;
    assert_eq!(watched(&ex), ["GH/GHANA_CARD", "KE/NATIONAL_ID"], "NG excluded, KE added, GH missed once");
    assert!(m.pair("idauth_polls_total", "NG", "BVN", "").is_none());
    ex.stop().await;
    s.stop.cancel();
}

/// Every way the catalogue can fail keeps the pairs of the last good read and counts a
/// failure: 5xx, a timeout, garbage, a body of the wrong shape, an empty catalogue.
#[tokio::test]
async fn catalogue_failures_keep_the_previous_targets_and_are_counted() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let good = include_str!("fixtures/provider/v1-services-android.json");
    Mock::given(method("GET"))
        .and(path("/v1/services"))
        .respond_with(ResponseTemplate::new(200).set_body_string(good))
        .mount(&server)
        .await;
    let ex = start(&discovery_yaml(&server.uri(), "v2", "", "")).await;
    until(&ex, "the start-up read", |m| m.get("idauth_discovery_targets") == Some(7.0)).await;
    let before = watched(&ex);
    assert_eq!(before.len(), 7, "{before:?}");
    let failures = [
        ResponseTemplate::new(503).set_body_string("Service Unavailable"),
        ResponseTemplate::new(200).set_body_string(good).set_delay(Duration::from_secs(3)),
        ResponseTemplate::new(200).set_body_string("<html><body>maintenance</body></html>"),
        ResponseTemplate::new(200).set_body_json(json!({"services": ["basic_kyc"]})),
        ResponseTemplate::new(200).set_body_json(json!({"bank_codes": [], "id_types": {}, "hosted_web": {}})),
    ];
    for (n, failure) in failures.into_iter().enumerate() {
        server.reset().await;
        Mock::given(method("GET")).and(path("/v1/services")).respond_with(failure).mount(&server).await;
        let e = ex.app.refresh_discovery().await.unwrap_err();
        assert_eq!(watched(&ex), before, "failure {n} ({e}) kept the pairs");
        let m = ex.metrics().await;
        assert_eq!(m.get("idauth_discovery_refreshes_total{result=\"failure\"}"), Some(n as f64 + 1.0), "{e}");
        assert_eq!(m.get("idauth_discovery_targets"), Some(7.0));
    }
    ex.stop().await;
}

/// `api: v3` discovers through `GET /v3/services/supported_id_types?country=CC`, one
/// request per configured country, and never asks `/v1/services`.
#[tokio::test]
async fn v3_discovers_through_the_v3_endpoint() {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let ng = json!({"id_types": [
        {"country": "NG", "type": "BVN", "label": "Bank Verification Number", "regex": "^[0-9]{11}$", "required_fields": ["id_number"]},
        {"country": "NG", "type": "NIN_V2", "label": "NIN", "regex": "^[0-9]{11}$", "required_fields": ["id_number"]},
    ]});
    Mock::given(method("GET"))
        .and(path("/v3/services/supported_id_types"))
        .and(query_param("country", "NG"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ng))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v3/services/supported_id_types"))
        .and(query_param("country", "KE"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id_types": [{"country": "KE", "type": "KRA_PIN"}]})),
        )
        .mount(&server)
        .await;
    let ex = start(&discovery_yaml(&server.uri(), "v3", "  countries: [NG, KE]\n", "")).await;
    until(&ex, "the start-up read", |m| m.get("idauth_discovery_targets") == Some(3.0)).await;
    assert_eq!(watched(&ex), ["KE/KRA_PIN", "NG/BVN", "NG/NIN_V2"]);
    let asked: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() != "/v3/token" && r.url.path() != "/v3/services/id_status")
        .map(|r| format!("{} {}", r.url.path(), r.url.query().unwrap_or("")))
        .collect();
    assert_eq!(
        asked,
        ["/v3/services/supported_id_types country=NG", "/v3/services/supported_id_types country=KE"],
        "only the v3 catalogue, once per country"
    );
    ex.stop().await;
}

/// The simulator's v3 catalogue: the listed pairs of one country, the provider's errors.
#[tokio::test]
async fn v3_supported_id_types_lists_the_country_in_the_provider_shape() {
    let s = simulator(CHANGING).await;
    let get = |q: &'static str| {
        let url = format!("{}/v3/services/supported_id_types{q}", s.url);
        async move {
            let r = http().get(url).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = get("?country=NG").await;
    assert_eq!(status, 200);
    assert_eq!(body["id_types"][0]["type"], "BVN");
    assert_eq!(body["id_types"][0]["country"], "NG");
    assert!(body["id_types"][0]["required_fields"].is_array());
    assert_eq!(get("?country=KE").await.1, json!({"id_types": []}), "KE is listed only from 30m");
    s.clock.set(hour() + chrono::TimeDelta::minutes(30));
    assert_eq!(get("?country=KE").await.1["id_types"][0]["type"], "NATIONAL_ID");
    assert_eq!(get("?country=GH").await.1, json!({"id_types": []}), "GH is gone at 30m");
    assert_eq!(get("").await, (400, json!({"message": "\"country\" is required", "status": "Bad Request"})));
    assert_eq!(get("?country=XX").await.0, 400);
    s.stop.cancel();
}

/// Decimals of a number as written: `97.4%` has 1, `0.974` 3, `1` none.
fn decimals(text: &str) -> usize {
    let n = text.trim_end_matches('%');
    n.split_once('.').map_or(0, |(_, f)| f.len())
}

/// The value text of `name` for one pair in a Prometheus exposition, as written.
fn exposed<'a>(metrics: &'a str, name: &str, t: &Target) -> Option<&'a str> {
    let (country, id_type) = (format!("country=\"{}\"", t.country), format!("id_type=\"{}\"", t.id_type));
    metrics
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(&country) && l.contains(&id_type))
        .and_then(|l| l.rsplit(' ').next())
}

/// Every rate the demo serves is the provider's, digit for digit: "97.4%" is 0.974 in
/// /metrics and the status API and 97.4% on the page, never 0.9740000000000001, and no
/// rate has more decimals than the provider sent.
#[tokio::test]
async fn the_demo_serves_every_rate_exactly_as_the_provider_wrote_it() {
    let stop = CancellationToken::new();
    let demo = idauth_exporter::demo::start("127.0.0.1:0", stop.clone()).await.unwrap();
    let config = demo.app.config();
    let key = config.smile_id.api_key.expose().to_owned();
    let http = http();
    let get = |path: &'static str| {
        let http = http.clone();
        async move { http.get(format!("http://{}{path}", demo.exporter)).send().await.unwrap().text().await.unwrap() }
    };
    let sim_url = format!("http://{}", demo.simulator);
    // Until every pair has data and one consistent set of reads (the demo runs on the wall
    // clock and moves on every 10 s), up to 30 s.
    let mut checked = 0;
    let began = std::time::Instant::now();
    'attempt: while began.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let before: Value = serde_json::from_str(&get("/api/v1/status").await).unwrap();
        let targets = before["targets"].as_array().unwrap().clone();
        if targets.is_empty() || targets.iter().any(|t| t["observation"].is_null()) {
            continue;
        }
        let (metrics, page) = (get("/metrics").await, get("/").await);
        let after: Value = serde_json::from_str(&get("/api/v1/status").await).unwrap();
        let observations =
            |v: &Value| v["targets"].as_array().unwrap().iter().map(|t| t["observation"].clone()).collect::<Vec<_>>();
        if observations(&before) != observations(&after) {
            continue; // a poll landed in between
        }
        let mut rows = Vec::new();
        for t in &targets {
            let target = Target::new(
                t["country"].as_str().unwrap().parse().unwrap(),
                t["id_type"].as_str().unwrap().parse().unwrap(),
            );
            let (status, provider) =
                post_v2(&sim_url, &signed_body(&key, "085", target.country.as_str(), target.id_type.as_str())).await;
            assert_eq!(status, 200, "{provider}");
            let at = |v: &Value| v.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok());
            if at(&provider["last_checked"]) != at(&t["observation"]["last_checked"]) {
                continue 'attempt; // the provider has moved on to the next window
            }
            rows.push((target, provider, t["observation"].clone()));
        }
        for (target, provider, observation) in &rows {
            for (field, metric, sent) in [
                ("rate_10m", "idauth_success_rate_10m", &provider["last_check_success_rate"]),
                ("rate_1h", "idauth_success_rate_1h", &provider["last_hour_success_rate"]),
            ] {
                let sent = sent.as_str().unwrap();
                let exact = idauth_exporter::model::parse_rate(sent).unwrap();
                let what = format!("{target} {field}: the provider sent {sent}");
                let served = exposed(&metrics, metric, target).unwrap_or_else(|| panic!("{what}; not in /metrics"));
                assert_eq!(served, exact.to_string(), "{what}; /metrics says {served}");
                assert!(decimals(served) <= decimals(sent) + 2, "{what}; /metrics says {served}");
                let json = observation[field].to_string();
                let json = json.strip_suffix(".0").unwrap_or(&json);
                assert_eq!(json, exact.to_string(), "{what}; the status API says {json}");
                assert!(decimals(json) <= decimals(sent) + 2, "{what}; the status API says {json}");
                assert!(page.contains(&format!(">{sent}<")), "{what}; not on the page");
            }
        }
        // Whatever the page's layout, no rate on it is more precise than the provider's
        // (uptimes, which are ours, may be).
        for rates in page.split("class=\"rates\">").skip(1).map(|r| r.split("</span>").next().unwrap()) {
            for word in rates.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '%')) {
                if word.ends_with('%') && word.len() > 1 {
                    assert!(decimals(word) <= 1, "the page shows a rate of {word}");
                }
            }
        }
        checked = rows.len();
        break;
    }
    stop.cancel();
    let _ = demo.handle.await;
    assert_eq!(checked, Scenario::builtin().pairs.len(), "every pair's rates were compared with the provider's");
}
