//! `--web.config.file`: TLS, client certificates, basic authentication and headers on
//! every endpoint, reloaded with the configuration; the example file is one that
//! Prometheus' own `promtool check web-config` accepts.

mod common;

use std::process::Command;

use common::*;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer};

const TLS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");

async fn provider() -> MockServer {
    let server = MockServer::start().await;
    let fake = FakeV2::new(&[("NG", "BVN", status_body("online", "99%", "98%", "2026-11-26T09:50:04.596Z"))]);
    Mock::given(method("POST")).respond_with(fake).mount(&server).await;
    server
}

fn tls_client(identity: bool) -> reqwest::Client {
    idauth_exporter::tls::install_crypto_provider();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(format!("{TLS}/ca.pem")).unwrap()).unwrap();
    let mut builder = reqwest::Client::builder().tls_certs_only([ca]);
    if identity {
        let mut pem = std::fs::read(format!("{TLS}/client.pem")).unwrap();
        pem.extend(std::fs::read(format!("{TLS}/client.key")).unwrap());
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

fn web_yaml(password: &str, extra: &str) -> String {
    let hash = bcrypt::hash(password, 4).unwrap();
    format!(
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n{extra}\
         http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n\
         basic_auth_users:\n  prometheus: '{hash}'\n"
    )
}

#[tokio::test]
async fn tls_and_basic_auth_guard_every_endpoint() {
    let server = provider().await;
    let yaml = config_yaml(&server.uri(), "v2", &[("NG", &["BVN"])], "");
    let ex = start_with_web(&yaml, Some(&web_yaml("hunter2", ""))).await;
    let https = |path: &str| format!("https://127.0.0.1:{}{path}", ex.addr.port());
    let client = tls_client(false);

    for path in ["/metrics", "/-/healthy", "/-/ready", "/", "/api/v1/status"] {
        let resp = client.get(https(path)).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{path}");
        assert_eq!(resp.headers()["www-authenticate"], "Basic realm=\"idauth-exporter\"");
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
        let wrong = client.get(https(path)).basic_auth("prometheus", Some("hunter3")).send().await.unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
    }
    eventually("the exporter to become ready", PATIENCE, || async {
        let r = client.get(https("/-/ready")).basic_auth("prometheus", Some("hunter2")).send().await.unwrap();
        (r.status() == 200).then_some(())
    })
    .await;
    let resp = client.get(https("/metrics")).basic_auth("prometheus", Some("hunter2")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let m = Metrics::parse(&resp.text().await.unwrap());
    assert_eq!(m.state("NG", "BVN"), "online");
    let expiry =
        m.text.lines().find(|l| l.starts_with("idauth_web_tls_certificate_expiry_timestamp_seconds{cert_file="));
    let expiry: f64 =
        expiry.and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok()).expect("the expiry metric");
    assert!(expiry > 4.9e9, "the fixture is valid until 2126: {expiry}");

    // Plain HTTP gets no answer.
    assert!(ex.http.get(ex.url("/metrics")).send().await.is_err(), "plain HTTP must not be served");
    // A client that does not trust the certificate is refused.
    assert!(http().get(https("/metrics")).send().await.is_err());

    // A reload reads the web configuration again: a new password works at once.
    std::fs::write(ex.dir.path().join("web.yml"), web_yaml("correct-horse", "")).unwrap();
    let reload = client.post(https("/-/reload")).basic_auth("prometheus", Some("hunter2")).send().await.unwrap();
    assert_eq!(reload.status(), 200);
    let old = client.get(https("/metrics")).basic_auth("prometheus", Some("hunter2")).send().await.unwrap();
    assert_eq!(old.status(), 401);
    let new = client.get(https("/metrics")).basic_auth("prometheus", Some("correct-horse")).send().await.unwrap();
    assert_eq!(new.status(), 200);

    // A broken web configuration fails the reload and keeps the running one.
    std::fs::write(ex.dir.path().join("web.yml"), "basic_auth_users:\n  prometheus: plaintext\n").unwrap();
    let reload = client.post(https("/-/reload")).basic_auth("prometheus", Some("correct-horse")).send().await.unwrap();
    assert_eq!(reload.status(), 500);
    assert!(reload.text().await.unwrap().contains("web.yml:2:"));
    let still = client.get(https("/metrics")).basic_auth("prometheus", Some("correct-horse")).send().await.unwrap();
    assert_eq!(still.status(), 200);
    ex.stop().await;
}

#[tokio::test]
async fn client_certificates_are_required_when_configured() {
    let server = provider().await;
    let yaml = config_yaml(&server.uri(), "v2", &[("NG", &["BVN"])], "");
    let mtls = "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n";
    let ex = start_with_web(&yaml, Some(&web_yaml("pw", mtls))).await;
    let url = format!("https://127.0.0.1:{}/-/healthy", ex.addr.port());
    assert!(tls_client(false).get(&url).send().await.is_err(), "no client certificate, no connection");
    let resp = tls_client(true).get(&url).basic_auth("prometheus", Some("pw")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    ex.stop().await;
}

#[test]
fn the_example_web_config_is_valid_for_promtool_and_for_us() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/web-config.example.yml"), dir.path().join("web.yml"))
        .unwrap();
    for f in ["server.pem", "server.key", "ca.pem"] {
        std::fs::copy(format!("{TLS}/{f}"), dir.path().join(f)).unwrap();
    }
    let out = Command::new("promtool")
        .args(["check", "web-config", "web.yml"])
        .current_dir(dir.path())
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool is needed ({e}); install Debian's prometheus package (./scripts/test does)")
        });
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("SUCCESS"), "{text}");
    let web =
        idauth_exporter::web::auth::WebConfig::load(&dir.path().join("web.yml")).unwrap_or_else(|e| panic!("{e}"));
    assert!(web.tls().is_some());
}

#[test]
fn the_daemon_refuses_a_broken_web_config_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api_key"), "k\n").unwrap();
    let config = dir.path().join("c.yaml");
    std::fs::write(&config, config_yaml("http://127.0.0.1:1", "v2", &[("NG", &["BVN"])], "")).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, "tls_server_config:\n  cert_file: nope.pem\n  key_file: nope.key\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_idauth-exporter"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.config.file={}", web.display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("web.yml:2:") && err.contains("tls_server_config.cert_file"), "{err}");
}

#[test]
fn an_endless_web_config_file_is_a_clear_error_not_a_memory_blow_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api_key"), "k\n").unwrap();
    let config = dir.path().join("c.yaml");
    std::fs::write(&config, config_yaml("http://127.0.0.1:1", "v2", &[("NG", &["BVN"])], "")).unwrap();
    let began = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_idauth-exporter"))
        .arg(format!("--config.file={}", config.display()))
        .arg("--web.config.file=/dev/zero")
        .arg("--web.listen-address=127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/dev/zero") && err.contains("larger than"), "{err}");
    assert!(began.elapsed() < std::time::Duration::from_secs(10), "took {:?}", began.elapsed());
}

/// An exporter on plain HTTP whose one user, `prometheus`, has `password` at bcrypt cost 10.
async fn basic_auth_exporter(password: &str) -> (MockServer, Exporter) {
    let server = provider().await;
    let yaml = config_yaml(&server.uri(), "v2", &[("NG", &["BVN"])], "");
    let web = format!("basic_auth_users:\n  prometheus: '{}'\n", bcrypt::hash(password, 10).unwrap());
    let ex = start_with_web(&yaml, Some(&web)).await;
    (server, ex)
}

fn median(mut v: Vec<std::time::Duration>) -> std::time::Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test]
async fn an_unknown_user_costs_as_much_as_a_wrong_password() {
    let (_server, ex) = basic_auth_exporter("hunter2").await;
    let timed = async |user: &str, password: String| {
        let began = std::time::Instant::now();
        let resp = ex.http.get(ex.url("/-/healthy")).basic_auth(user, Some(password)).send().await.unwrap();
        assert_eq!(resp.status(), 401);
        began.elapsed()
    };
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    // Alternating, with a new password each time: nothing may come from a cache.
    for i in 0..7 {
        known.push(timed("prometheus", format!("wrong-{i}")).await);
        unknown.push(timed("nobody", format!("wrong-{i}")).await);
    }
    let (known, unknown) = (median(known), median(unknown));
    let ratio = unknown.as_secs_f64() / known.as_secs_f64();
    eprintln!("median 401: known user {known:?}, unknown user {unknown:?}, ratio {ratio:.2}");
    assert!((0.5..2.0).contains(&ratio), "known user {known:?}, unknown user {unknown:?}: the timing tells them apart");
    ex.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_guesses_stalls_neither_scrapes_nor_the_async_workers() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    let (_server, ex) = basic_auth_exporter("hunter2").await;
    let ex = Arc::new(ex);
    let scrape = async || {
        let began = Instant::now();
        let resp = ex.http.get(ex.url("/metrics")).basic_auth("prometheus", Some("hunter2")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
        began.elapsed()
    };
    scrape().await; // the credentials are verified once and cached
    let quiet = median(vec![scrape().await, scrape().await, scrape().await]);

    let stop = Arc::new(AtomicBool::new(false));
    let (denied, busy) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut guessers = Vec::new();
    for g in 0..16 {
        let (ex, stop, denied, busy) = (ex.clone(), stop.clone(), denied.clone(), busy.clone());
        guessers.push(tokio::spawn(async move {
            let user = if g % 2 == 0 { "prometheus".to_owned() } else { format!("intruder{g}") };
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let resp =
                    ex.http.get(ex.url("/metrics")).basic_auth(&user, Some(format!("guess{g}-{i}"))).send().await;
                match resp.map(|r| r.status().as_u16()) {
                    Ok(401) => denied.fetch_add(1, Ordering::Relaxed),
                    Ok(503) => busy.fetch_add(1, Ordering::Relaxed),
                    other => panic!("a guess got {other:?}"),
                };
            }
        }));
    }
    // The flood is under way once guesses are being refused.
    eventually("the first guesses to be refused", PATIENCE, || async {
        (denied.load(Ordering::Relaxed) > 0).then_some(())
    })
    .await;
    // What the poller and every scrape need: async workers free to run. A task that
    // sleeps 20 ms at a time notes how late it wakes (the sleep is the probe, not a wait).
    let ticker = tokio::spawn(async {
        let mut late = Vec::new();
        for _ in 0..100 {
            let began = Instant::now();
            tokio::time::sleep(Duration::from_millis(20)).await;
            late.push(began.elapsed().saturating_sub(Duration::from_millis(20)));
        }
        late
    });
    let mut flooded = Vec::new();
    for _ in 0..9 {
        flooded.push(scrape().await);
    }
    let mut late = ticker.await.unwrap();
    stop.store(true, Ordering::Relaxed);
    for g in guessers {
        g.await.unwrap();
    }
    late.sort();
    let (flooded, worst) = (median(flooded), late[late.len() * 9 / 10]);
    let (denied, busy) = (denied.load(Ordering::Relaxed), busy.load(Ordering::Relaxed));
    eprintln!(
        "valid scrape: {quiet:?} quiet, {flooded:?} under 16 guessers (median); async worker lateness p90 {worst:?}; guesses: {denied} denied, {busy} busy"
    );
    assert!(denied > 0, "the guesses were checked");
    assert!(flooded < Duration::from_millis(250), "a valid scrape took {flooded:?} (median) under the flood");
    assert!(worst < Duration::from_millis(100), "async workers woke {worst:?} late (p90) under the flood");
    Arc::into_inner(ex).unwrap().stop().await;
}

#[tokio::test]
async fn an_expired_certificate_is_served_with_a_warning_and_its_expiry_in_a_metric() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(idauth_exporter::telemetry::subscriber(
        idauth_exporter::telemetry::LogLevel::Info,
        idauth_exporter::telemetry::LogFormat::Logfmt,
        capture.clone(),
    ));
    let server = provider().await;
    let web = "tls_server_config:\n  cert_file: expired.pem\n  key_file: expired.key\n";
    let ex = start_with_web(&config_yaml(&server.uri(), "v2", &[("NG", &["BVN"])], ""), Some(web)).await;
    let logs = capture.text();
    assert!(logs.contains("the served TLS certificate has expired"), "{logs}");
    assert!(logs.contains("2020-02-01T00:00:00"), "the warning says when: {logs}");
    // Served all the same (a client that does not check dates still connects).
    let client = reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap();
    let metrics = client.get(format!("https://{}/metrics", ex.addr)).send().await.unwrap().text().await.unwrap();
    ex.stop().await;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("idauth_web_tls_certificate_expiry_timestamp_seconds{"))
        .unwrap_or_else(|| panic!("no expiry metric:\n{metrics}"));
    assert!(line.contains("expired.pem") && line.ends_with(" 1580515200"), "{line}");
}
