//! `promtool check metrics` (from Debian's `prometheus` package) finds no problem in what
//! the exporter serves. This test fails, never skips, when promtool is missing.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn promtool_finds_no_problem_in_metrics() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_partial_json(serde_json::json!({"id_type": "BVN"})))
        .respond_with(FakeV2::new(&[("NG", "BVN", status_body("online", "99%", "98%", "2026-11-26T09:50:04.596Z"))]))
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(503)).mount(&server).await;
    let ex = start(&config_yaml(&server.uri(), "v2", &[("NG", &["BVN", "NIN_V2"])], "  retries: 0\n")).await;
    ex.ready().await;
    let text = ex.text("/metrics").await;
    ex.stop().await;
    assert!(text.contains("idauth_state{") && text.contains("idauth_poll_failures_total{"));
    check_metrics(&text);

    // Hundreds of pairs: the text is streamed in pieces, which must join into valid text.
    let types: Vec<String> = (0..400).map(|i| format!("B{i:05}")).collect();
    let types: Vec<&str> = types.iter().map(String::as_str).collect();
    let ex = start(&config_yaml(&server.uri(), "v2", &[("NG", &types)], "  retries: 0\n  concurrency: 32\n")).await;
    ex.ready().await;
    let text = ex.text("/metrics").await;
    ex.stop().await;
    assert!(text.len() > 2 * idauth_exporter::metrics::CHUNK, "{} bytes", text.len());
    check_metrics(&text);
}

fn check_metrics(text: &str) {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!(
            "promtool is needed for this test ({e}); install it with `apt-get install prometheus` (the README's test command does)"
        ),
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && report.trim().is_empty(), "promtool check metrics:\n{report}\n{text}");
}
