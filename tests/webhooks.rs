//! Webhooks, end to end in-process: a fake provider whose answer the test changes, an
//! exporter telling time by a clock the test moves, and receivers built on wiremock. A
//! change of state reaches each receiver signed, once, under the id the history stores it
//! by; a receiver that is down gets it after the exporter restarts; a slow receiver holds
//! up neither the polls nor another webhook; a redirect is not followed.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use common::hooks::*;
use common::*;
use idauth_exporter::app::App;
use idauth_exporter::config;
use idauth_exporter::history::events::Change;
use idauth_exporter::model::{AuthorityState, Clock, ManualClock, Target};
use idauth_exporter::notify::sign;
use idauth_exporter::secret::WebhookSecret;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn requests(server: &MockServer, n: usize) -> Vec<wiremock::Request> {
    eventually(&format!("{n} webhook request(s)"), PATIENCE, || async {
        let got = server.received_requests().await.unwrap_or_default();
        (got.len() >= n).then_some(got)
    })
    .await
}

fn header(r: &wiremock::Request, name: &str) -> String {
    r.headers.get(name).unwrap_or_else(|| panic!("no {name} header")).to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_delivered_once_signed_under_the_id_it_is_stored_by() {
    let fake = FakeV2::new(&[("NG", "BVN", status_body("online", "99%", "99%", &at(0)))]);
    let server = provider(fake.clone()).await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST")).and(path("/hooks")).respond_with(ResponseTemplate::new(204)).mount(&receiver).await;
    let secret = secret_file();
    let clock = Arc::new(ManualClock::new(t0() + TimeDelta::seconds(61)));
    let hooks = [
        ("kyc", format!("{}/hooks", receiver.uri()), ""),
        ("only-online", format!("{}/online", receiver.uri()), "      states: [online]\n"),
    ];
    let ex = start_with_clock(&webhook_yaml(&server.uri(), secret.path(), &hooks), clock.clone()).await;
    ex.ready().await;
    // The first state learnt is no change; nothing is sent.
    poll_as(&ex, &fake, &clock, "online", 10).await;
    poll_as(&ex, &fake, &clock, "offline", 20).await;
    let got = requests(&receiver, 1).await;
    let r = &got[0];
    assert_eq!(r.url.path(), "/hooks", "only-online does not want a change to offline");
    let target = Target::new("NG".parse().unwrap(), "BVN".parse().unwrap());
    let since: DateTime<Utc> = at(20).parse().unwrap();
    let id = header(r, "webhook-id");
    assert_eq!(id, Change::id_for(&target, AuthorityState::Offline, since));
    let ts: i64 = header(r, "webhook-timestamp").parse().unwrap();
    assert_eq!(ts, clock.now().timestamp(), "signed at the exporter's clock's time");
    let secret = WebhookSecret::parse(WEBHOOK_SECRET).unwrap();
    assert_eq!(header(r, "webhook-signature"), sign::signature(&secret, &id, ts, &r.body));
    assert_eq!(header(r, "content-type"), "application/json");
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["type"], "authority.state_changed");
    assert_eq!(body["data"]["from"], "online");
    assert_eq!(body["data"]["to"], "offline");
    assert_eq!(body["data"]["since"], at(20));
    assert_eq!(body["data"]["rate_10m"], 0.1);
    assert_eq!(body["data"]["rate_1h"], 0.6);

    let m = eventually("the delivery to be counted", PATIENCE, || async {
        let m = ex.metrics().await;
        (m.get(r#"idauth_webhook_deliveries_total{result="success",webhook="kyc"}"#) == Some(1.0)).then_some(m)
    })
    .await;
    assert_eq!(m.get(r#"idauth_webhook_pending{webhook="kyc"}"#), Some(0.0));
    assert_eq!(m.get(r#"idauth_webhook_oldest_pending_age_seconds{webhook="kyc"}"#), Some(0.0));
    assert!(!m.text.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));

    // Back online: both webhooks hear of it; the offline change is not sent again.
    poll_as(&ex, &fake, &clock, "online", 30).await;
    let got = requests(&receiver, 3).await;
    let mut paths: Vec<&str> = got[1..].iter().map(|r| r.url.path()).collect();
    paths.sort();
    assert_eq!(paths, ["/hooks", "/online"]);
    assert_eq!(got.iter().filter(|r| header(r, "webhook-id") == id).count(), 1, "delivered once");
    ex.stop().await;
}

/// An exporter with its history (and so its outbox) in `storage`.
async fn start_stored(config_path: &std::path::Path, storage: &std::path::Path, clock: Arc<dyn Clock>) -> Exporter {
    let loaded = config::load(config_path).unwrap_or_else(|e| panic!("{e}"));
    let app = App::with_clock(Some(config_path), loaded, clock).unwrap();
    app.replay_after_start(app.open_history(Some(storage), Duration::from_secs(30 * 86400)));
    let shutdown = CancellationToken::new();
    let (addr, handle) = app.start("127.0.0.1:0", shutdown.clone()).await.unwrap();
    Exporter {
        addr,
        app,
        shutdown,
        handle,
        dir: tempfile::tempdir().unwrap(),
        config_path: config_path.to_path_buf(),
        http: http(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_the_receiver_missed_is_delivered_after_a_restart() {
    let fake = FakeV2::new(&[("NG", "BVN", status_body("online", "99%", "99%", &at(0)))]);
    let server = provider(fake.clone()).await;
    // The receiver's port, with nothing listening on it yet: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api_key"), format!("{KEY}\n")).unwrap();
    let secret = secret_file();
    let config_path = dir.path().join("config.yaml");
    let hooks = [("kyc", format!("http://127.0.0.1:{port}/hooks"), "")];
    std::fs::write(&config_path, webhook_yaml(&server.uri(), secret.path(), &hooks)).unwrap();
    let storage = dir.path().join("data");
    let clock = Arc::new(ManualClock::new(t0() + TimeDelta::seconds(61)));

    let ex = start_stored(&config_path, &storage, clock.clone()).await;
    ex.ready().await;
    poll_as(&ex, &fake, &clock, "offline", 10).await;
    let m = eventually("a failed attempt", PATIENCE, || async {
        let m = ex.metrics().await;
        (m.get(r#"idauth_webhook_deliveries_total{result="unreachable",webhook="kyc"}"#) >= Some(1.0)).then_some(m)
    })
    .await;
    assert_eq!(m.get(r#"idauth_webhook_pending{webhook="kyc"}"#), Some(1.0));
    let events = ex.app.store().history().unwrap().changes(idauth_exporter::history::events::Query {
        after: None,
        before: None,
        limit: 10,
    });
    let id = events.unwrap().changes[0].id.clone();
    ex.stop().await;

    // The receiver comes up while the exporter is down; the exporter comes back an hour on.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let receiver = MockServer::builder().listener(listener).start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&receiver).await;
    clock.advance(Duration::from_secs(3600));
    let ex = start_stored(&config_path, &storage, clock.clone()).await;
    let got = requests(&receiver, 1).await;
    assert_eq!(header(&got[0], "webhook-id"), id);
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!((body["data"]["from"].as_str(), body["data"]["to"].as_str()), (Some("online"), Some("offline")));
    eventually("the outbox to empty", PATIENCE, || async {
        let m = ex.metrics().await;
        (m.get(r#"idauth_webhook_pending{webhook="kyc"}"#) == Some(0.0)).then_some(())
    })
    .await;
    ex.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_delays_neither_polls_nor_other_webhooks_and_redirects_are_not_followed() {
    let fake = FakeV2::new(&[("NG", "BVN", status_body("online", "99%", "99%", &at(0)))]);
    let server = provider(fake.clone()).await;
    let slow = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3600)))
        .mount(&slow)
        .await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&elsewhere).await;
    let redirecting = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(307).insert_header("location", format!("{}/stolen", elsewhere.uri())))
        .mount(&redirecting)
        .await;
    let fast = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(202)).mount(&fast).await;
    let secret = secret_file();
    let clock = Arc::new(ManualClock::new(t0() + TimeDelta::seconds(61)));
    let hooks = [
        ("slow", slow.uri(), "      timeout: 60s\n"),
        ("redirecting", redirecting.uri(), ""),
        ("fast", fast.uri(), ""),
    ];
    let ex = start_with_clock(&webhook_yaml(&server.uri(), secret.path(), &hooks), clock.clone()).await;
    ex.ready().await;
    poll_as(&ex, &fake, &clock, "offline", 10).await;
    requests(&slow, 1).await;
    // The slow receiver holds its request; the fast one has its event, and polls go on.
    requests(&fast, 1).await;
    poll_as(&ex, &fake, &clock, "online", 20).await;
    requests(&fast, 2).await;
    let m = eventually("the redirect to be counted as rejected", PATIENCE, || async {
        let m = ex.metrics().await;
        (m.get(r#"idauth_webhook_deliveries_total{result="rejected",webhook="redirecting"}"#) >= Some(1.0)).then_some(m)
    })
    .await;
    assert_eq!(m.get(r#"idauth_webhook_deliveries_total{result="success",webhook="slow"}"#), Some(0.0));
    assert_eq!(m.get(r#"idauth_webhook_pending{webhook="slow"}"#), Some(2.0));
    assert_eq!(m.get(r#"idauth_webhook_pending{webhook="fast"}"#), Some(0.0));
    assert!(elsewhere.received_requests().await.unwrap().is_empty(), "the redirect was not followed");
    assert_eq!(slow.received_requests().await.unwrap().len(), 1, "one request at a time per webhook");
    ex.stop().await;
}
