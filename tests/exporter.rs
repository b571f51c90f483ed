//! The exporter end to end against a scripted fake provider: what `/metrics` says after
//! each kind of provider answer.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CHECKED: &str = "2026-11-26T09:50:04.596Z";
const CHECKED_UNIX: f64 = 1_795_686_604.596;

/// A fake v2 provider and an exporter on it that has finished its first cycle.
async fn ready_v2(fake: FakeV2, targets: &[(&str, &[&str])], poll: &str) -> (MockServer, Exporter) {
    let server = v2_server(fake).await;
    let ex = start(&config_yaml(&server.uri(), "v2", targets, poll)).await;
    ex.ready().await;
    (server, ex)
}

async fn v2_server(fake: FakeV2) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/api/v2/partner/id_status")).respond_with(fake).mount(&server).await;
    server
}

#[tokio::test]
async fn v2_pairs_yield_exactly_the_provider_values() {
    let fake = FakeV2::new(&[
        ("NG", "BVN", status_body("online", "98%", "97.5%", CHECKED)),
        ("NG", "NIN_V2", status_body("offline", "0%", "16%", CHECKED)),
        ("KE", "NATIONAL_ID", status_body("interruption", "75%", "N/A", CHECKED)),
    ]);
    let server = v2_server(fake).await;
    let yaml = config_yaml(&server.uri(), "v2", &[("NG", &["BVN", "NIN_V2"]), ("KE", &["NATIONAL_ID"])], "");
    let ex = start(&yaml).await;
    ex.ready().await;

    let resp = ex.get("/metrics").await;
    assert_eq!(resp.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let m = Metrics::parse(&resp.text().await.unwrap());

    assert_eq!(m.state("NG", "BVN"), "online");
    assert_eq!(m.state("NG", "NIN_V2"), "offline");
    assert_eq!(m.state("KE", "NATIONAL_ID"), "interruption");
    assert_eq!(m.pair("idauth_success_rate_10m", "NG", "BVN", ""), Some(0.98));
    assert_eq!(m.pair("idauth_success_rate_1h", "NG", "BVN", ""), Some(0.975));
    assert_eq!(m.pair("idauth_success_rate_10m", "NG", "NIN_V2", ""), Some(0.0));
    assert_eq!(m.pair("idauth_success_rate_1h", "NG", "NIN_V2", ""), Some(0.16));
    assert_eq!(m.pair("idauth_success_rate_10m", "KE", "NATIONAL_ID", ""), Some(0.75));
    // "N/A" is no rate at all, not a zero.
    assert_eq!(m.pair("idauth_success_rate_1h", "KE", "NATIONAL_ID", ""), None);
    for (c, t) in [("NG", "BVN"), ("NG", "NIN_V2"), ("KE", "NATIONAL_ID")] {
        assert_eq!(m.pair("idauth_last_checked_timestamp_seconds", c, t, ""), Some(CHECKED_UNIX));
        assert_eq!(m.pair("idauth_poll_success", c, t, ""), Some(1.0));
        assert_eq!(m.pair("idauth_polls_total", c, t, ""), Some(1.0));
        assert!(m.pair("idauth_last_poll_success_timestamp_seconds", c, t, "").unwrap() > 1.7e9);
        for r in [
            "timeout",
            "connect",
            "unauthorized",
            "rate_limited",
            "http_4xx",
            "http_5xx",
            "invalid_response",
            "no_data",
        ] {
            assert_eq!(m.failures(c, t, r), 0.0, "{c} {t} {r}");
        }
    }
    assert_eq!(m.get("idauth_targets"), Some(3.0));
    assert_eq!(m.get("idauth_poll_duration_seconds_count"), Some(3.0));
    assert!(m.get("idauth_poll_cycle_last_run_timestamp_seconds").unwrap() > 1.7e9);
    assert_eq!(m.get("idauth_config_last_reload_successful"), Some(1.0));
    assert!(m.text.contains("idauth_exporter_build_info{branch="), "{}", m.text);
    assert!(m.text.contains(&format!(",version=\"{}\"}} 1\n", env!("CARGO_PKG_VERSION"))), "{}", m.text);
    assert!(m.text.contains("# HELP idauth_success_rate_10m") && m.text.contains("Cached from the background poll"));
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    ex.stop().await;
}

#[tokio::test]
async fn a_wrong_signature_is_reported_as_unauthorized_not_offline() {
    let mut fake = FakeV2::new(&[("NG", "BVN", status_body("offline", "0%", "0%", CHECKED))]);
    fake.key = "a-different-key".to_owned();
    let (server, ex) = ready_v2(fake, &[("NG", &["BVN"])], "  retries: 2\n").await;
    let m = ex.metrics().await;
    m.assert_failed("NG", "BVN", "unauthorized", 1.0);
    assert_eq!(m.pair("idauth_poll_success", "NG", "BVN", ""), Some(0.0));
    assert_eq!(m.pair("idauth_success_rate_10m", "NG", "BVN", ""), None);
    assert_eq!(m.pair("idauth_last_poll_success_timestamp_seconds", "NG", "BVN", ""), None);
    // Unauthorized is not transient: one request, no retries.
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    ex.stop().await;
}

#[tokio::test]
async fn v2_sends_the_documented_request() {
    let fake = FakeV2::new(&[("GH", "GHANA_CARD", status_body("online", "100%", "100%", CHECKED))]);
    let (server, ex) = ready_v2(fake, &[("GH", &["GHANA_CARD"])], "").await;
    let reqs = server.received_requests().await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(body["partner_id"], "085");
    assert_eq!(body["country"], "GH");
    assert_eq!(body["id_type"], "GHANA_CARD");
    assert_eq!(body["environment"], "production");
    assert_eq!(reqs[0].headers["content-type"], "application/json");
    let ua = reqs[0].headers["user-agent"].to_str().unwrap();
    assert!(ua.starts_with("idauth-exporter/"), "{ua}");
    ex.stop().await;
}

fn jwt(name: &str, exp_in: i64) -> String {
    use base64::Engine;
    let b64 = |s: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let exp = chrono::Utc::now().timestamp() + exp_in;
    format!("{}.{}.{}", b64(r#"{"alg":"HS256"}"#.into()), b64(format!(r#"{{"exp":{exp},"sub":"{name}"}}"#)), name)
}

async fn mount_v3_status(server: &MockServer, token: &str, country: &str, id_type: &str, body: serde_json::Value) {
    Mock::given(method("GET"))
        .and(path("/v3/services/id_status"))
        .and(query_param("country", country))
        .and(query_param("id_type", id_type))
        .and(header("SmileID-Token", token))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(server)
        .await;
}

#[tokio::test]
async fn v3_fetches_one_token_and_reads_every_pair() {
    let server = MockServer::start().await;
    let token = jwt("t1", 900);
    Mock::given(method("POST"))
        .and(path("/v3/token"))
        .and(header("smileid-partner-id", "85"))
        .and(header("smileid-api-key", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"token": token})))
        .expect(1)
        .mount(&server)
        .await;
    mount_v3_status(&server, &token, "NG", "BVN", status_body("online", "93%", "95%", CHECKED)).await;
    mount_v3_status(&server, &token, "ZA", "NATIONAL_ID", status_body("offline", "12%", "40%", CHECKED)).await;
    let ex = start(&config_yaml(&server.uri(), "v3", &[("NG", &["BVN"]), ("ZA", &["NATIONAL_ID"])], "")).await;
    ex.ready().await;
    let m = ex.metrics().await;
    assert_eq!(m.state("NG", "BVN"), "online");
    assert_eq!(m.state("ZA", "NATIONAL_ID"), "offline");
    assert_eq!(m.pair("idauth_success_rate_10m", "ZA", "NATIONAL_ID", ""), Some(0.12));
    assert_eq!(m.pair("idauth_success_rate_1h", "NG", "BVN", ""), Some(0.95));
    ex.stop().await;
    server.verify().await;
}

#[tokio::test]
async fn v3_fetches_a_new_token_once_on_401() {
    let server = MockServer::start().await;
    let (old, new) = (jwt("old", 900), jwt("new", 900));
    Mock::given(method("POST"))
        .and(path("/v3/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"token": old})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v3/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"token": new})))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v3/services/id_status"))
        .and(header("SmileID-Token", old.as_str()))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "Invalid token", "status": "Unauthorized"})),
        )
        .mount(&server)
        .await;
    mount_v3_status(&server, &new, "NG", "BVN", status_body("interruption", "60%", "80%", CHECKED)).await;
    let ex = start(&config_yaml(&server.uri(), "v3", &[("NG", &["BVN"])], "")).await;
    ex.ready().await;
    let m = ex.metrics().await;
    assert_eq!(m.state("NG", "BVN"), "interruption");
    assert_eq!(m.failures("NG", "BVN", "unauthorized"), 0.0);
    let reqs = server.received_requests().await.unwrap();
    let tokens = reqs.iter().filter(|r| r.url.path() == "/v3/token").count();
    assert_eq!(tokens, 2, "one token, then one refresh");
    ex.stop().await;
}

#[tokio::test]
async fn v3_a_refused_key_is_unauthorized() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/token"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"status": "Unauthorized", "message": "Invalid credentials"})),
        )
        .mount(&server)
        .await;
    let ex = start(&config_yaml(&server.uri(), "v3", &[("NG", &["BVN"])], "")).await;
    ex.ready().await;
    let m = ex.metrics().await;
    m.assert_failed("NG", "BVN", "unauthorized", 1.0);
    ex.stop().await;
}

#[tokio::test]
async fn transient_5xx_is_retried_until_it_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("<html>busy</html>"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(FakeV2::new(&[("NG", "BVN", status_body("online", "99%", "99%", CHECKED))]))
        .with_priority(2)
        .mount(&server)
        .await;
    let ex = start(&config_yaml(&server.uri(), "v2", &[("NG", &["BVN"])], "  retries: 2\n")).await;
    ex.ready().await;
    let m = ex.metrics().await;
    assert_eq!(m.state("NG", "BVN"), "online");
    assert_eq!(m.pair("idauth_polls_total", "NG", "BVN", ""), Some(1.0));
    assert_eq!(m.failures("NG", "BVN", "http_5xx"), 0.0);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    ex.stop().await;
}

#[tokio::test]
async fn retries_give_up_and_count_the_reason() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"error": "System error", "code": "2201"})))
        .mount(&server)
        .await;
    let ex = start(&config_yaml(&server.uri(), "v2", &[("NG", &["BVN"])], "  retries: 1\n")).await;
    ex.ready().await;
    let m = ex.metrics().await;
    m.assert_failed("NG", "BVN", "http_5xx", 1.0);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    ex.stop().await;
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "2")
                .set_body_json(json!({"error": "Too many requests", "code": "2222"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(FakeV2::new(&[("NG", "BVN", status_body("online", "99%", "99%", CHECKED))]))
        .with_priority(2)
        .mount(&server)
        .await;
    let began = Instant::now();
    let ex = start(&config_yaml(&server.uri(), "v2", &[("NG", &["BVN"])], "  retries: 1\n")).await;
    ex.ready().await;
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2);
    assert!(began.elapsed() >= Duration::from_secs(2), "waited {:?}", began.elapsed());
    let m = ex.metrics().await;
    assert_eq!(m.state("NG", "BVN"), "online");
    assert_eq!(m.failures("NG", "BVN", "rate_limited"), 0.0);
    ex.stop().await;
}

#[tokio::test]
async fn rate_limited_without_retries_left_is_counted() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .mount(&server)
        .await;
    let ex = start(&config_yaml(&server.uri(), "v2", &[("NG", &["BVN"])], "  retries: 0\n")).await;
    ex.ready().await;
    assert_eq!(ex.metrics().await.failures("NG", "BVN", "rate_limited"), 1.0);
    ex.stop().await;
}

#[tokio::test]
async fn a_slow_answer_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(online_after(Duration::from_secs(8))).mount(&server).await;
    let yaml =
        config_yaml(&server.uri(), "v2", &[("NG", &["BVN"])], "  retries: 0\n").replace("timeout: 2s", "timeout: 1s");
    let began = Instant::now();
    let ex = start(&yaml).await;
    ex.ready().await;
    // Cut at the 1 s timeout, long before the 8 s answer (with room for a loaded machine).
    assert!(began.elapsed() < Duration::from_secs(6), "{:?}", began.elapsed());
    let m = ex.metrics().await;
    m.assert_failed("NG", "BVN", "timeout", 1.0);
    ex.stop().await;
}

/// A raw TCP server: for each connection it reads the request, then hands the socket,
/// the connection's number (from 0), and the head and body of an `online` answer to
/// `answer`, which writes what the test wants. Returns its URL and the connection count.
async fn raw_server<F, Fut>(answer: F) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>)
where
    F: Fn(tokio::net::TcpStream, usize, String, String) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let answer = std::sync::Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let body = status_body("online", "99%", "99%", CHECKED).to_string();
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                answer(sock, n, head, body).await;
            });
        }
    });
    (format!("http://{addr}"), count)
}

/// A server that sends headers at once, then the body a byte a second.
async fn dribbling_server() -> String {
    use tokio::io::AsyncWriteExt;
    let (url, _) = raw_server(|mut sock, _, head, body| async move {
        if sock.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for b in body.bytes() {
            if sock.write_all(&[b]).await.is_err() {
                return;
            }
            // The provider's pace, not a wait of the test's: the exporter's 1 s timeout
            // (a real socket's, on real time) cuts it long before the body is done.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await;
    url
}

#[tokio::test]
async fn a_slow_body_times_out() {
    let url = dribbling_server().await;
    let yaml = config_yaml(&url, "v2", &[("NG", &["BVN"])], "  retries: 0\n").replace("timeout: 2s", "timeout: 1s");
    let ex = start(&yaml).await;
    ex.ready().await;
    assert_eq!(ex.metrics().await.failures("NG", "BVN", "timeout"), 1.0);
    ex.stop().await;
}

#[tokio::test]
async fn unusable_answers_are_invalid_responses() {
    let server = MockServer::start().await;
    let cases: [(&str, ResponseTemplate); 5] = [
        ("BVN", ResponseTemplate::new(200).set_body_string("{\"last_known_status\": \"onl")),
        ("NIN_V2", ResponseTemplate::new(200).set_body_raw("<html><body>Gateway</body></html>", "text/html")),
        ("BANK_ACCOUNT", ResponseTemplate::new(200).set_body_string("")),
        (
            "PHONE_NUMBER",
            ResponseTemplate::new(200).set_body_string(format!("{{\"pad\":\"{}\"}}", "x".repeat(100 * 1024))),
        ),
        ("VOTER_ID", ResponseTemplate::new(302).insert_header("Location", "/api/v2/partner/id_status")),
    ];
    for (id_type, resp) in cases {
        Mock::given(method("POST"))
            .and(wiremock::matchers::body_partial_json(json!({"id_type": id_type})))
            .respond_with(resp)
            .mount(&server)
            .await;
    }
    let types = ["BVN", "NIN_V2", "BANK_ACCOUNT", "PHONE_NUMBER", "VOTER_ID"];
    let ex = start(&config_yaml(&server.uri(), "v2", &[("NG", &types)], "  retries: 0\n")).await;
    ex.ready().await;
    let m = ex.metrics().await;
    for t in types {
        m.assert_failed("NG", t, "invalid_response", 1.0);
    }
    // The redirect was not followed.
    assert_eq!(server.received_requests().await.unwrap().len(), 5);
    ex.stop().await;
}

#[tokio::test]
async fn an_unknown_status_is_unknown_and_counted() {
    let fake = FakeV2::new(&[("NG", "BVN", status_body("maintenance", "100%", "98%", CHECKED))]);
    let (_server, ex) = ready_v2(fake, &[("NG", &["BVN"])], "").await;
    let m = ex.metrics().await;
    assert_eq!(m.state("NG", "BVN"), "unknown");
    assert_eq!(m.pair("idauth_poll_success", "NG", "BVN", ""), Some(1.0));
    assert_eq!(m.pair("idauth_unrecognized_status_total", "NG", "BVN", ""), Some(1.0));
    assert_eq!(m.pair("idauth_success_rate_10m", "NG", "BVN", ""), Some(1.0));
    ex.stop().await;
}

#[tokio::test]
async fn no_data_is_its_own_reason() {
    let server = v2_server(FakeV2::new(&[])).await;
    let ex = start(&config_yaml(&server.uri(), "v2", &[("ZM", &["TPIN"])], "")).await;
    ex.ready().await;
    let m = ex.metrics().await;
    m.assert_failed("ZM", "TPIN", "no_data", 1.0);
    ex.stop().await;
}

#[tokio::test]
async fn a_dead_provider_is_a_connect_failure() {
    let ex = start(&config_yaml("http://127.0.0.1:1", "v2", &[("NG", &["BVN"])], "  retries: 0\n")).await;
    ex.ready().await;
    assert_eq!(ex.metrics().await.failures("NG", "BVN", "connect"), 1.0);
    ex.stop().await;
}

#[tokio::test]
async fn stale_data_turns_unknown_and_its_rates_disappear() {
    use idauth_exporter::model::ManualClock;
    let fake = FakeV2::new(&[("NG", "BVN", status_body("offline", "10%", "30%", CHECKED))]);
    let server = v2_server(fake.clone()).await;
    // The exporter tells time by a clock that moves only when the test moves it: the data
    // ages by exactly as much as the test says, however busy the machine. (Data is stale
    // after 2 h, which an hourly schedule allows; the cycles are run here by hand.)
    let t0: chrono::DateTime<chrono::Utc> = "2026-11-26T10:00:00Z".parse().unwrap();
    let clock = std::sync::Arc::new(ManualClock::new(t0));
    let yaml = config_yaml(&server.uri(), "v2", &[("NG", &["BVN"])], "  retries: 0\n  max_data_age: 2h\n")
        .replace(NEVER, "0 0 * * * *");
    let ex = start_with_clock(&yaml, clock.clone()).await;
    ex.ready().await;
    let m = ex.metrics().await;
    assert_eq!(m.state("NG", "BVN"), "offline");
    assert_eq!(m.pair("idauth_success_rate_10m", "NG", "BVN", ""), Some(0.1));
    let last_success = m.pair("idauth_last_poll_success_timestamp_seconds", "NG", "BVN", "").unwrap();
    assert_eq!(last_success, t0.timestamp() as f64, "polled at the exporter's clock's time");
    let offline_since = m.pair("idauth_state_since_timestamp_seconds", "NG", "BVN", "").unwrap();

    // The provider starts failing: what we knew stays shown until it is too old.
    server.reset().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(502)).mount(&server).await;
    clock.advance(Duration::from_secs(60));
    ex.app.run_cycle(false).await;
    let m = ex.metrics().await;
    assert_eq!(m.state("NG", "BVN"), "offline", "never shown as anything but what was known");
    assert!(m.failures("NG", "BVN", "http_5xx") >= 1.0);
    // Exactly max_data_age old: still current. Staleness is read at scrape time.
    clock.set(t0 + chrono::TimeDelta::hours(2));
    assert_eq!(ex.metrics().await.state("NG", "BVN"), "offline", "at max_data_age the data is still current");
    clock.advance(Duration::from_secs(1));
    let m = ex.metrics().await;
    assert_eq!(m.state("NG", "BVN"), "unknown", "stale after max_data_age");
    assert_eq!(m.pair("idauth_success_rate_10m", "NG", "BVN", ""), None);
    assert_eq!(m.pair("idauth_success_rate_1h", "NG", "BVN", ""), None);
    // The timestamps keep telling how old the last good data is.
    assert_eq!(m.pair("idauth_last_poll_success_timestamp_seconds", "NG", "BVN", ""), Some(last_success));
    assert_eq!(m.pair("idauth_last_checked_timestamp_seconds", "NG", "BVN", ""), Some(CHECKED_UNIX));
    assert_eq!(m.pair("idauth_poll_success", "NG", "BVN", ""), Some(0.0));
    // The state changed, so its since-when moved on: to when the data went stale.
    let unknown_since = m.pair("idauth_state_since_timestamp_seconds", "NG", "BVN", "").unwrap();
    assert_eq!(unknown_since, (t0 + chrono::TimeDelta::hours(2)).timestamp() as f64, "offline since {offline_since}");
    assert!(unknown_since > offline_since);
    ex.stop().await;
}

// Whether a tick skips a pair whose poll is still running is proven on a paused clock in
// src/poller.rs (`a_pair_still_being_polled_is_not_polled_again`); it no longer leans on a
// 900 ms answer against a 1 s timeout and a real one-second schedule.

/// A server whose first `resets` connections get the headers and half the body, then a
/// TCP reset (SO_LINGER 0 and drop); later ones get the whole answer.
async fn resetting_server(resets: usize) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    raw_server(move |mut sock, n, head, body| async move {
        if n < resets {
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(&body.as_bytes()[..body.len() / 2]).await;
            let _ = sock.flush().await;
            // Lets the half body leave before the reset (a linger-0 close drops unsent data);
            // should it not, the reset comes before the body and is a connect failure all the same.
            tokio::time::sleep(Duration::from_millis(50)).await;
            sock.set_zero_linger().unwrap();
            drop(sock);
        } else {
            let _ = sock.write_all(format!("{head}{body}").as_bytes()).await;
            let _ = sock.read(&mut [0u8; 4096]).await;
        }
    })
    .await
}

#[tokio::test]
async fn a_reset_mid_body_is_a_connect_failure() {
    let (url, _) = resetting_server(usize::MAX).await;
    let ex = start(&config_yaml(&url, "v2", &[("NG", &["BVN"])], "  retries: 0\n")).await;
    ex.ready().await;
    let m = ex.metrics().await;
    m.assert_failed("NG", "BVN", "connect", 1.0);
    assert_eq!(m.failures("NG", "BVN", "invalid_response"), 0.0);
    ex.stop().await;
}

#[tokio::test]
async fn a_reset_mid_body_is_retried() {
    let (url, connections) = resetting_server(1).await;
    let ex = start(&config_yaml(&url, "v2", &[("NG", &["BVN"])], "  retries: 1\n")).await;
    ex.ready().await;
    let m = ex.metrics().await;
    assert_eq!(m.state("NG", "BVN"), "online");
    assert_eq!(m.failures("NG", "BVN", "connect"), 0.0);
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 2);
    ex.stop().await;
}

/// One pair answers 429 `Retry-After: 3600` (with retries left) beside healthy pairs: it
/// ends as rate_limited at once instead of waiting, the healthy pairs are polled, the
/// exporter is ready and the heartbeat is fresh. (The paused-clock version of "a stuck pair
/// delays no other pair, tick after tick" is in src/poller.rs.)
#[tokio::test]
async fn a_long_retry_after_ends_the_poll_at_once_and_holds_no_other_pair() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_partial_json(json!({"id_type": "BVN"})))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "3600")
                .set_body_json(json!({"error": "Too many requests", "code": "2222"})),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    let healthy = FakeV2::new(&[
        ("NG", "NIN_V2", status_body("online", "99%", "99%", CHECKED)),
        ("KE", "NATIONAL_ID", status_body("online", "98%", "99%", CHECKED)),
    ]);
    Mock::given(method("POST")).respond_with(healthy).with_priority(2).mount(&server).await;
    let began = Instant::now();
    let ex = start(&config_yaml(
        &server.uri(),
        "v2",
        &[("NG", &["BVN", "NIN_V2"]), ("KE", &["NATIONAL_ID"])],
        "  retries: 2\n",
    ))
    .await;
    ex.ready().await;
    // The old code waited a minute per retry before anything was ready.
    assert!(began.elapsed() < Duration::from_secs(20), "ready after {:?}", began.elapsed());
    assert_eq!(ex.get("/-/ready").await.status(), 200);
    let m = ex.metrics().await;
    m.assert_failed("NG", "BVN", "rate_limited", 1.0);
    assert_eq!(m.state("NG", "NIN_V2"), "online");
    assert_eq!(m.state("KE", "NATIONAL_ID"), "online");
    let heartbeat = m.get("idauth_poll_cycle_last_run_timestamp_seconds").unwrap();
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    assert!(now - heartbeat < 20.0, "heartbeat {heartbeat} at {now}");
    // One request for the rate-limited pair: a wait of an hour is not waited.
    let bvn = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains("\"BVN\""))
        .count();
    assert_eq!(bvn, 1);
    let status = ex.text("/api/v1/status").await;
    assert!(status.contains("beyond this poll's budget"), "{status}");
    ex.stop().await;
}

#[tokio::test]
async fn a_timeout_that_cannot_fit_the_poll_budget_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api_key"), KEY).unwrap();
    let path = dir.path().join("config.yaml");
    // Every 10 s, 2 s of jitter: 8 s for a poll; 3 attempts of 3 s do not fit, 2 do.
    let yaml = config_yaml("http://127.0.0.1:1", "v2", &[("NG", &["BVN"])], "  retries: 2\n")
        .replace(NEVER, "*/10 * * * * *")
        .replace("timeout: 2s", "timeout: 3s")
        .replace("jitter: 0s", "jitter: 2s");
    std::fs::write(&path, &yaml).unwrap();
    let e = idauth_exporter::config::load(&path).unwrap_err().to_string();
    assert!(e.contains("poll budget of 8s") && e.contains("9s"), "{e}");
    std::fs::write(&path, yaml.replace("retries: 2", "retries: 1")).unwrap();
    idauth_exporter::config::load(&path).unwrap();
}

/// A token is used until a minute before its `exp`, then fetched again; on a settable
/// clock, with no waiting. (A 401 fetching a new token is `v3_fetches_a_new_token_once_on_401`.)
#[tokio::test]
async fn v3_token_is_cached_until_a_minute_before_exp() {
    use idauth_exporter::model::{ManualClock, Target};
    use idauth_exporter::smileid::{IdStatusApi, V3Client, build_transport};
    use std::sync::Arc;
    let t0 = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let token = |exp_in: i64| {
        use base64::Engine;
        let b64 = |s: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let exp = t0.timestamp() + exp_in;
        format!("{}.{}.sig", b64(r#"{"alg":"HS256"}"#.into()), b64(format!(r#"{{"exp":{exp}}}"#)))
    };
    // The first token expires 15 minutes after t0; the next one, 30 minutes after.
    let server = MockServer::start().await;
    for (priority, exp_in) in [(1u8, 900), (2, 1800)] {
        Mock::given(method("POST"))
            .and(path("/v3/token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"token": token(exp_in)})))
            .up_to_n_times(if priority == 1 { 1 } else { 10 })
            .with_priority(priority)
            .mount(&server)
            .await;
        mount_v3_status(&server, &token(exp_in), "NG", "BVN", status_body("online", "93%", "95%", CHECKED)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api_key"), KEY).unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, config_yaml(&server.uri(), "v3", &[("NG", &["BVN"])], "")).unwrap();
    let config = idauth_exporter::config::load(&path).unwrap().config;
    let clock = Arc::new(ManualClock::new(t0));
    let client = V3Client::new(&config.smile_id, build_transport(&config.poll).unwrap()).with_clock(clock.clone());
    let target = Target::new("NG".parse().unwrap(), "BVN".parse().unwrap());
    let tokens = || async {
        let reqs = server.received_requests().await.unwrap();
        reqs.iter().filter(|r| r.url.path() == "/v3/token").count()
    };
    client.id_status(&target).await.unwrap();
    assert_eq!(tokens().await, 1);
    clock.advance(Duration::from_secs(839)); // 61 s before exp: still good
    client.id_status(&target).await.unwrap();
    assert_eq!(tokens().await, 1);
    clock.advance(Duration::from_secs(2)); // 59 s before exp: replaced
    client.id_status(&target).await.unwrap();
    assert_eq!(tokens().await, 2);
    client.id_status(&target).await.unwrap();
    assert_eq!(tokens().await, 2);
}

/// A reload that changes the schedule moves the job: its next tick follows the new one.
#[tokio::test]
async fn a_reload_that_changes_the_schedule_reschedules() {
    let fake = FakeV2::new(&[("NG", "BVN", status_body("online", "99%", "99%", CHECKED))]);
    let (server, ex) = ready_v2(fake, &[("NG", &["BVN"])], "").await;
    let next = ex.app.next_tick().await.expect("scheduled");
    assert!(next - chrono::Utc::now() > chrono::TimeDelta::days(1), "{next}");
    let yaml = std::fs::read_to_string(&ex.config_path)
        .unwrap()
        .replace(NEVER, "*/2 * * * * *")
        .replace("jitter: 0s", "jitter: 0s\n  retries: 0");
    std::fs::write(&ex.config_path, yaml).unwrap();
    ex.app.reload().await.unwrap();
    let next = ex.app.next_tick().await.expect("scheduled");
    assert!(next - chrono::Utc::now() <= chrono::TimeDelta::seconds(2), "{next}");
    // And it fires: more polls come (one every 2 s). The scheduler runs on the wall clock,
    // not the exporter's injected one, so this waits for a real tick, on the condition.
    let before = server.received_requests().await.unwrap().len();
    eventually("the new schedule to fire", PATIENCE, || async {
        (server.received_requests().await.unwrap().len() > before).then_some(())
    })
    .await;
    ex.stop().await;
}

/// SIGHUP to the running binary reloads its configuration.
#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads_the_configuration() {
    let server = v2_server(FakeV2::new(&[
        ("NG", "BVN", status_body("online", "99%", "99%", CHECKED)),
        ("KE", "NATIONAL_ID", status_body("offline", "10%", "20%", CHECKED)),
    ]))
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api_key"), KEY).unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, config_yaml(&server.uri(), "v2", &[("NG", &["BVN"])], "")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    /// Kills the child however the test ends.
    struct Child(std::process::Child);
    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_idauth-exporter"))
            .arg(format!("--config.file={}", path.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--storage.path={}", dir.path().join("data").display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = http();
    let metrics = || async {
        let r = http.get(format!("http://127.0.0.1:{port}/metrics")).send().await.ok()?;
        Some(Metrics::parse(&r.text().await.ok()?))
    };
    // A real process: wait on what its /metrics says, as long as a loaded machine needs.
    let wait_for = async |what: &str, f: fn(&Metrics) -> bool| {
        eventually(what, PATIENCE, || async { metrics().await.filter(f) }).await
    };
    wait_for("first poll", |m| m.pair("idauth_poll_success", "NG", "BVN", "") == Some(1.0)).await;
    std::fs::write(&path, config_yaml(&server.uri(), "v2", &[("NG", &["BVN"]), ("KE", &["NATIONAL_ID"])], "")).unwrap();
    let pid = child.0.id().to_string();
    assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let m = wait_for("reload", |m| m.get("idauth_config_reloads_total{result=\"success\"}") == Some(1.0)).await;
    assert_eq!(m.get("idauth_targets"), Some(2.0));
    wait_for("new pair polled", |m| m.pair("idauth_poll_success", "KE", "NATIONAL_ID", "") == Some(1.0)).await;
    drop(child);
}
