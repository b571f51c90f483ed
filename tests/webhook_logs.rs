//! The webhooks' secret, and a token in a webhook's URL, never reach the logs: a hostile
//! receiver echoes the secret back, another is unreachable at a URL carrying tokens. Alone
//! in its file: a log capture sees every line only when no other test in the process has
//! met the same log statements first (tracing caches who listens to each).

mod common;

use std::sync::Arc;

use chrono::TimeDelta;
use common::hooks::*;
use common::*;
use idauth_exporter::model::ManualClock;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// On the test's one thread, so that every log line of the exporter reaches the capture.
#[tokio::test(flavor = "current_thread")]
async fn neither_the_secret_nor_a_token_in_the_url_reaches_the_logs() {
    use idauth_exporter::telemetry::{self, LogFormat, LogLevel};
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(telemetry::subscriber(LogLevel::Debug, LogFormat::Logfmt, capture.clone()));
    let fake = FakeV2::new(&[("NG", "BVN", status_body("online", "99%", "99%", &at(0)))]);
    let server = provider(fake.clone()).await;
    // A hostile receiver echoes the secret back; another is unreachable at a URL with a token.
    let hostile = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_string(format!("bad secret {WEBHOOK_SECRET}")))
        .mount(&hostile)
        .await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let secret = secret_file();
    let clock = Arc::new(ManualClock::new(t0() + TimeDelta::seconds(61)));
    let hooks = [
        ("hostile", format!("{}/h", hostile.uri()), ""),
        ("tokened", format!("http://127.0.0.1:{port}/h/path-token-7f3a?token=query-token-9c2e"), ""),
    ];
    let ex = start_with_clock(&webhook_yaml(&server.uri(), secret.path(), &hooks), clock.clone()).await;
    ex.ready().await;
    poll_as(&ex, &fake, &clock, "offline", 10).await;
    eventually("both deliveries to fail", PATIENCE, || async {
        let m = ex.metrics().await;
        let rejected = m.get(r#"idauth_webhook_deliveries_total{result="rejected",webhook="hostile"}"#);
        let unreachable = m.get(r#"idauth_webhook_deliveries_total{result="unreachable",webhook="tokened"}"#);
        (rejected >= Some(1.0) && unreachable >= Some(1.0)).then_some(())
    })
    .await;
    ex.stop().await;
    let logs = capture.text();
    assert!(logs.contains("webhook delivery failed") && logs.contains("webhook=tokened"), "{logs}");
    for hidden in ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "path-token-7f3a", "query-token-9c2e"] {
        assert!(!logs.contains(hidden), "{hidden} in the logs:\n{logs}");
    }
}
