//! The HTTP surface: health, readiness, landing page, status API, reload, shutdown, and
//! the API key never showing anywhere.

mod common;

use std::time::{Duration, Instant};

use common::*;
use idauth_exporter::telemetry::{self, LogFormat, LogLevel};
use serde_json::json;
use wiremock::matchers::{body_partial_json, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CHECKED: &str = "2026-11-26T09:50:04.596Z";

async fn healthy_provider() -> MockServer {
    let server = MockServer::start().await;
    let fake = FakeV2::new(&[
        ("NG", "BVN", status_body("online", "98%", "97%", CHECKED)),
        ("KE", "NATIONAL_ID", status_body("offline", "3%", "20%", CHECKED)),
        ("GH", "GHANA_CARD", status_body("interruption", "70%", "80%", CHECKED)),
    ]);
    Mock::given(method("POST")).respond_with(fake).mount(&server).await;
    server
}

/// A provider that answers every status request `online`, but only once the returned
/// sender says `true`: until then each request waits. Returns its URL too.
async fn gated_provider() -> (String, tokio::sync::watch::Sender<bool>) {
    use idauth_exporter::web::http as server;
    let (open, gate) = tokio::sync::watch::channel(false);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let body = status_body("online", "99%", "99%", CHECKED).to_string();
    let handler: server::Handler = std::sync::Arc::new(move |_req| {
        let (mut gate, body) = (gate.clone(), body.clone());
        Box::pin(async move {
            let _ = gate.wait_for(|open| *open).await;
            server::text(hyper::StatusCode::OK, "application/json", body)
        })
    });
    tokio::spawn(server::serve(listener, handler, tokio_util::sync::CancellationToken::new()));
    (url, open)
}

#[tokio::test]
async fn ready_only_after_the_first_cycle_and_healthy_throughout() {
    // The first cycle cannot end before the test lets the provider answer: no guess at how
    // long "not yet" lasts on a busy machine.
    let (url, answer) = gated_provider().await;
    let ex = start(&config_yaml(&url, "v2", &[("NG", &["BVN"])], "").replace("timeout: 2s", "timeout: 60s")).await;
    assert_eq!(ex.get("/-/healthy").await.status(), 200);
    assert_eq!(ex.get("/-/ready").await.status(), 503);
    let m = ex.metrics().await;
    assert_eq!(m.state("NG", "BVN"), "unknown", "no data yet is unknown");
    answer.send(true).unwrap();
    ex.ready().await;
    assert_eq!(ex.get("/-/healthy").await.status(), 200);
    assert_eq!(ex.metrics().await.state("NG", "BVN"), "online", "ready with the answer the provider gave");
    ex.stop().await;
}

#[tokio::test]
async fn landing_page_status_api_and_wrong_requests() {
    let server = healthy_provider().await;
    let ex = start(&config_yaml(&server.uri(), "v2", &[("NG", &["BVN"]), ("KE", &["NATIONAL_ID"])], "")).await;
    ex.ready().await;

    let page = ex.get("/").await;
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let page = page.text().await.unwrap();
    assert!(page.contains("href=\"/metrics\""), "{page}");
    assert!(!page.contains("http-equiv=\"refresh\""), "only the demo's page reloads itself");
    // The status page: the offline authority first with its since, 144 cells each, zero
    // counts quiet, under a CSP that allows same-origin files only.
    let first = page.find("data-country=\"KE\" data-id-type=\"NATIONAL_ID\" data-state=\"offline\"").expect(&page);
    assert!(first < page.find("data-country=\"NG\"").unwrap(), "offline first");
    assert!(page[first..].contains("<span class=\"since\">since <time datetime="), "{page}");
    // A stretch of n cells in one state is one element of class nN (n1 without).
    let cells: usize = page
        .split("<span class=\"cell s-")
        .skip(1)
        .map(|rest| {
            let classes = &rest[..rest.find('"').unwrap()];
            classes.split(' ').find_map(|c| c.strip_prefix('n')?.parse().ok()).unwrap_or(1)
        })
        .sum();
    assert_eq!(cells, 2 * 144 + 4, "144 cells each, 4 in the legend");
    assert!(page.contains("<span class=\"zero\"><span class=\"icon\" aria-hidden=\"true\">?</span> 0 unknown</span>"));
    assert!(
        page.contains(
            "<span class=\"n s-offline\"><span class=\"icon\" aria-hidden=\"true\">✕</span> 1 offline</span>"
        )
    );
    let head = ex.get("/").await;
    let csp = head.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(!page.contains("<script>") && !page.contains("style=\""), "no inline code for the CSP to refuse");
    assert!(ex.text("/ui/status.js").await.contains("/ui/status"));
    assert!(ex.text("/ui/status").await.starts_with("<p class=\"summary\">"));

    let history = ex.get("/api/v1/history?country=KE&id_type=NATIONAL_ID&range=1h").await;
    assert_eq!(history.status(), 200);
    let history: serde_json::Value = history.json().await.unwrap();
    assert_eq!(history["state"], "offline");
    assert_eq!(history["points"][0]["state"], "offline");
    assert_eq!(history["points"][0]["rate_10m"], 0.03);
    assert!(history["uptime"]["24h"]["offline_seconds"].is_i64() && history["uptime"]["30d"].is_object());
    assert_eq!(ex.get("/api/v1/history?country=KE").await.status(), 400);
    assert_eq!(ex.get("/api/v1/history?country=KE&id_type=BVN&range=24h").await.status(), 404);
    assert_eq!(ex.get("/api/v1/history?country=NG&id_type=BVN&range=forever").await.status(), 400);

    let status: serde_json::Value = ex.get("/api/v1/status").await.json().await.unwrap();
    assert_eq!(status["ready"], true);
    let targets = status["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[0]["country"], "NG");
    assert_eq!(targets[0]["state"], "online");
    assert!(targets[0]["since"].is_string(), "{}", targets[0]);
    assert_eq!(targets[0]["observation"]["rate_10m"], 0.98);
    assert_eq!(targets[1]["last_poll"]["success"], true);
    assert_eq!(status["last_cycle"]["ok"], 2);

    // Gzipped for scrapers that accept it, as Prometheus does.
    let plain = ex.text("/metrics").await;
    let gz = ex.http.get(ex.url("/metrics")).header("Accept-Encoding", "gzip").send().await.unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let bytes = gz.bytes().await.unwrap();
    assert_eq!(stable_lines(&gunzip(&bytes)), stable_lines(&plain));
    assert!(bytes.len() * 3 < plain.len(), "{} -> {}", plain.len(), bytes.len());
    for refusal in ["gzip;q=0, identity", "gzip;q=0.0", "gzip;q=0.00", "gzip;q=0.", "gzip ; q=0.000", "gzip;q=0, *"] {
        let refused = ex.http.get(ex.url("/metrics")).header("Accept-Encoding", refusal).send().await.unwrap();
        assert!(refused.headers().get("content-encoding").is_none(), "{refusal}");
    }
    // The status page and the fragment its script fetches every refresh: gzipped too (their
    // bars are one element per stretch of a state, so they repeat less than /metrics).
    for path in ["/", "/ui/status"] {
        let plain = ex.text(path).await;
        let gz = ex.http.get(ex.url(path)).header("Accept-Encoding", "gzip").send().await.unwrap();
        assert_eq!(gz.headers()["content-encoding"], "gzip", "{path}");
        let bytes = gz.bytes().await.unwrap();
        let unzipped = gunzip(&bytes);
        // The same page but for the clock ("updated 10:00:01", "for 3 s") between the two.
        let digitless = |t: &str| t.replace(|c: char| c.is_ascii_digit(), "");
        assert_eq!(digitless(&unzipped), digitless(&plain), "{path}");
        assert!(bytes.len() * 2 < plain.len(), "{path}: {} -> {}", plain.len(), bytes.len());
    }

    assert_eq!(ex.get("/nope").await.status(), 404);
    let post = ex.http.post(ex.url("/metrics")).send().await.unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
    assert_eq!(ex.get("/-/reload").await.status(), 405);
    ex.stop().await;
}

#[tokio::test]
async fn reload_applies_a_good_file_and_keeps_running_on_a_bad_one() {
    let server = healthy_provider().await;
    let ex = start(&config_yaml(&server.uri(), "v2", &[("NG", &["BVN"])], "")).await;
    ex.ready().await;
    assert_eq!(ex.metrics().await.get("idauth_targets"), Some(1.0));

    // Add a pair: it is polled at once, and the old pair keeps its counts.
    let two = config_yaml(&server.uri(), "v2", &[("NG", &["BVN"]), ("GH", &["GHANA_CARD"])], "");
    std::fs::write(&ex.config_path, two).unwrap();
    let resp = ex.http.post(ex.url("/-/reload")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    // The new pair is polled at once, in the background: wait for its poll to land.
    let m = eventually("the added pair to be polled", PATIENCE, || async {
        Some(ex.metrics().await).filter(|m| m.pair("idauth_poll_success", "GH", "GHANA_CARD", "").is_some())
    })
    .await;
    assert_eq!(m.get("idauth_targets"), Some(2.0));
    assert_eq!(m.state("GH", "GHANA_CARD"), "interruption");
    assert_eq!(m.pair("idauth_polls_total", "NG", "BVN", ""), Some(1.0));
    assert_eq!(m.get("idauth_config_last_reload_successful"), Some(1.0));

    // A broken file: an error naming the line, and the running configuration stays.
    let broken = config_yaml(&server.uri(), "v2", &[("NG", &["BVN"])], "  concurrency: 0\n");
    std::fs::write(&ex.config_path, broken).unwrap();
    let resp = ex.http.put(ex.url("/-/reload")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    let body = resp.text().await.unwrap();
    assert!(body.contains("config.yaml:") && body.contains("poll.concurrency"), "{body}");
    let m = ex.metrics().await;
    assert_eq!(m.get("idauth_config_last_reload_successful"), Some(0.0));
    assert_eq!(m.get("idauth_config_reloads_total{result=\"failure\"}"), Some(1.0));
    assert_eq!(m.get("idauth_config_reloads_total{result=\"success\"}"), Some(1.0));
    assert_eq!(m.get("idauth_targets"), Some(2.0));
    assert_eq!(m.state("GH", "GHANA_CARD"), "interruption");

    // Removing a pair drops its series.
    std::fs::write(&ex.config_path, config_yaml(&server.uri(), "v2", &[("GH", &["GHANA_CARD"])], "")).unwrap();
    assert_eq!(ex.http.post(ex.url("/-/reload")).send().await.unwrap().status(), 200);
    let m = ex.metrics().await;
    assert!(!m.text.contains("id_type=\"BVN\""), "{}", m.text);
    assert_eq!(m.get("idauth_config_last_reload_successful"), Some(1.0));
    ex.stop().await;
}

#[tokio::test]
async fn shutdown_is_prompt_even_with_a_poll_in_flight() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    let yaml = config_yaml(&server.uri(), "v2", &[("NG", &["BVN"])], "").replace("timeout: 2s", "timeout: 30s");
    let yaml = yaml.replace(NEVER, "0 0 * * * *");
    let ex = start(&yaml).await;
    // The poll is in flight once the provider has its request (it answers 30 s later).
    eventually("the first poll to reach the provider", PATIENCE, || async {
        (!server.received_requests().await.unwrap().is_empty()).then_some(())
    })
    .await;
    let began = Instant::now();
    ex.stop().await;
    assert!(began.elapsed() < Duration::from_secs(3), "took {:?}", began.elapsed());
}

async fn key_never_shows(api: &str, format: LogFormat) {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(telemetry::subscriber(LogLevel::Debug, format, capture.clone()));

    // A provider that echoes the key back in every error it can.
    let server = MockServer::start().await;
    let echo = json!({"error": format!("bad key {KEY}"), "code": "2205", "message": format!("key {KEY} refused")});
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"id_type": "BVN"})))
        .respond_with(ResponseTemplate::new(401).set_body_json(&echo))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"id_type": "NIN_V2"})))
        .respond_with(ResponseTemplate::new(500).set_body_string(format!("<html>{KEY}</html>")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"id_type": "V_NIN"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(status_body(KEY, KEY, KEY, KEY)))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::path("/v3/token"))
        .respond_with(ResponseTemplate::new(403).set_body_json(&echo))
        .mount(&server)
        .await;
    let yaml = config_yaml(&server.uri(), api, &[("NG", &["BVN", "NIN_V2", "V_NIN"])], "  retries: 1\n");
    let ex = start(&yaml).await;
    ex.ready().await;
    let surfaces = [ex.text("/metrics").await, ex.text("/api/v1/status").await, ex.text("/").await];
    std::fs::write(&ex.config_path, "smile_id: [").unwrap();
    let reload = ex.http.post(ex.url("/-/reload")).send().await.unwrap().text().await.unwrap();
    // The key pasted where a variable name belongs: refused without being echoed.
    std::fs::write(&ex.config_path, yaml.replace("api_key_file: api_key", &format!("api_key_env: {KEY}"))).unwrap();
    let pasted = ex.http.post(ex.url("/-/reload")).send().await.unwrap().text().await.unwrap();
    assert!(pasted.contains("looks like a key, not a variable name"), "{pasted}");
    let debug = [format!("{:?}", ex.app), format!("{:?}", ex.app.config())];
    ex.stop().await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("poll failed"), "the capture works: {logs}");
    assert!(surfaces[0].contains("idauth_poll_failures_total"));
    for (what, text) in [
        ("logs", &logs),
        ("metrics", &surfaces[0]),
        ("status", &surfaces[1]),
        ("landing", &surfaces[2]),
        ("reload", &reload),
        ("reload of a key pasted as api_key_env", &pasted),
    ] {
        assert!(!text.contains(KEY), "the key shows in the {what}:\n{text}");
    }
    assert!(debug[1].contains("Secret(<redacted>)"), "{}", debug[1]);
    for d in debug {
        assert!(!d.contains(KEY), "{d}");
    }
}

#[tokio::test]
async fn the_key_never_shows_v2_logfmt() {
    key_never_shows("v2", LogFormat::Logfmt).await;
}

#[tokio::test]
async fn the_key_never_shows_v3_json() {
    key_never_shows("v3", LogFormat::Json).await;
}

mod connections {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::process::{Command, Stdio};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use hyper::{Response, StatusCode};
    use idauth_exporter::web::http::ConnectionMetrics;
    use idauth_exporter::web::http::{self as server, Handler, ServerOptions};
    use tokio_util::sync::CancellationToken;

    use super::common::*;
    use super::healthy_provider;

    const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    /// Reads until the server closes the connection; how long that took, or `None` if it
    /// stayed open for `patience`.
    fn closed_within(mut stream: TcpStream, patience: Duration) -> Option<Duration> {
        let began = Instant::now();
        stream.set_read_timeout(Some(patience)).unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return Some(began.elapsed()),
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(began.elapsed()),
                Err(_) => return None,
            }
        }
    }

    /// Holds every `/slow` request until [`Slow::release`], and counts those held.
    #[derive(Clone)]
    struct Slow {
        gate: Arc<tokio::sync::watch::Sender<bool>>,
        held: Arc<AtomicUsize>,
    }

    impl Slow {
        fn release(&self) {
            self.gate.send_replace(true);
        }

        fn held(&self) -> usize {
            self.held.load(Ordering::SeqCst)
        }
    }

    /// `ok` at once, or for `/slow` once `slow` is released.
    fn handler(slow: Slow) -> Handler {
        Arc::new(move |req| {
            let slow = slow.clone();
            Box::pin(async move {
                if req.uri().path() == "/slow" {
                    let mut gate = slow.gate.subscribe();
                    slow.held.fetch_add(1, Ordering::SeqCst);
                    let _ = gate.wait_for(|released| *released).await;
                }
                server::text(StatusCode::OK, "text/plain", "ok\n") as Response<server::Body>
            })
        })
    }

    async fn serve(options: ServerOptions) -> (std::net::SocketAddr, CancellationToken, Slow) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let slow = Slow { gate: Arc::new(tokio::sync::watch::channel(false).0), held: Arc::default() };
        let handler = handler(slow.clone());
        tokio::spawn(server::serve_with_options(listener, handler, Arc::new(|| None), options, shutdown.clone()));
        (addr, shutdown, slow)
    }

    fn get(addr: std::net::SocketAddr, path: &str) -> TcpStream {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        s
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_connections_are_closed_after_the_timeouts() {
        let options = ServerOptions {
            header_read_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_millis(700),
            ..Default::default()
        };
        // Real time: these are hyper's own timers on real sockets, which paused tokio time
        // would fire early (it jumps ahead whenever the runtime waits on a socket).
        let (addr, shutdown, _) = serve(options).await;
        let patience = Duration::from_secs(5);
        tokio::task::spawn_blocking(move || {
            // Nothing at all: closed once the first request is overdue.
            let took =
                closed_within(TcpStream::connect(addr).unwrap(), patience).expect("a silent connection stays open");
            assert!(took >= Duration::from_millis(250), "{took:?}");
            // Only the HTTP/2 preface: the same.
            let mut h2 = TcpStream::connect(addr).unwrap();
            h2.write_all(H2_PREFACE).unwrap();
            let took = closed_within(h2, patience).expect("a preface-only HTTP/2 connection stays open");
            assert!(took >= Duration::from_millis(250), "{took:?}");
            // Half a request line: HTTP/1's header-read timeout.
            let mut partial = TcpStream::connect(addr).unwrap();
            partial.write_all(b"GET /metrics HTT").unwrap();
            closed_within(partial, patience).expect("a slowloris connection stays open");
            // Keep-alive after an answered request: closed when the next request is overdue
            // (for HTTP/1, hyper's header-read timeout runs while it waits for one).
            let mut kept = get(addr, "/");
            let mut buf = [0u8; 1024];
            let n = kept.read(&mut buf).unwrap();
            assert!(String::from_utf8_lossy(&buf[..n]).contains("ok"));
            let took = closed_within(kept, patience).expect("an idle keep-alive connection stays open");
            assert!(took >= Duration::from_millis(250), "closed after {took:?}, before the timeout");
        })
        .await
        .unwrap();
        shutdown.cancel();
    }

    /// Reads one whole answer from `s` (headers and a short body), returning its text.
    fn answer(s: &mut TcpStream) -> String {
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut text = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&text).contains("ok\n") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "closed before a whole answer: {}", String::from_utf8_lossy(&text));
            text.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&text).into_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_the_cap_connections_take_turns_and_no_request_is_cut() {
        let metrics = ConnectionMetrics::default();
        let options = ServerOptions {
            max_connections: 2,
            evict_idle_after: Duration::from_millis(300),
            evict_silent_after: Duration::from_millis(100),
            metrics: metrics.clone(),
            ..Default::default()
        };
        let (addr, shutdown, slow) = serve(options).await;
        let counted = metrics.clone();
        tokio::task::spawn_blocking(move || {
            // Two requests in flight (held until released) fill the cap: a third connection
            // is neither served nor closed; it waits for a slot.
            let mut busy = [get(addr, "/slow"), get(addr, "/slow")];
            eventually_blocking("both /slow requests in flight", PATIENCE, || (slow.held() == 2).then_some(()));
            assert_eq!(counted.open(), 2);
            let mut third = get(addr, "/");
            assert!(
                closed_within(third.try_clone().unwrap(), Duration::from_millis(300)).is_none(),
                "a connection beyond the cap is closed rather than kept waiting"
            );
            // Released: both answer whole; one of the answers closes its connection, cleanly,
            // to let the third in, which is then served.
            slow.release();
            let answers = busy.each_mut().map(answer);
            let closing = answers.iter().filter(|a| a.to_ascii_lowercase().contains("connection: close")).count();
            assert_eq!(closing, 1, "{answers:?}");
            assert!(answer(&mut third).contains("ok"), "the waiting connection is served");
            assert_eq!(counted.refused_total("limit"), 1);
            assert_eq!(counted.refused_total("evicted"), 0);
            // A connection that never sends a request is the first to go for a new one.
            let kept =
                busy.into_iter().zip(&answers).find(|(_, a)| !a.to_ascii_lowercase().contains("close")).unwrap().0;
            let mut kept = [kept, third];
            eventually_blocking("the rotated connection to close", PATIENCE, || (counted.open() == 2).then_some(()));
            // Kept-alive connections idle for evict_idle_after make room for a new one.
            let mut fresh = get(addr, "/");
            assert!(answer(&mut fresh).contains("ok"), "a new connection is served");
            assert_eq!(counted.refused_total("evicted"), 1);
            let evicted = kept
                .iter_mut()
                .filter(|s| closed_within(s.try_clone().unwrap(), Duration::from_millis(500)).is_some())
                .count();
            assert_eq!(evicted, 1, "exactly the idlest connection is closed");
            // A connection silent since it was accepted goes first, once silent a while.
            let silent = TcpStream::connect(addr).unwrap();
            eventually_blocking("the silent connection to be served", PATIENCE, || {
                (counted.refused_total("evicted") == 2).then_some(())
            });
            std::thread::sleep(Duration::from_millis(150));
            let mut another = get(addr, "/");
            assert!(answer(&mut another).contains("ok"));
            assert!(closed_within(silent, Duration::from_secs(2)).is_some(), "the silent connection went first");
        })
        .await
        .unwrap();
        shutdown.cancel();
    }

    /// Returns once the child's `/-/healthy` answers; fails at once if the child exits.
    async fn wait_healthy(url: &str, child: &mut std::process::Child) {
        eventually("the exporter to come up", PATIENCE, || {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the exporter exited before it came up: {status}");
            }
            async {
                match http().get(url).send().await {
                    Ok(r) if r.status() == 200 => Some(()),
                    _ => None,
                }
            }
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn eleven_hundred_idle_connections_under_a_256_file_limit_do_not_stop_a_scrape() {
        let provider = healthy_provider().await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("api_key"), KEY).unwrap();
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, config_yaml(&provider.uri(), "v2", &[("NG", &["BVN"])], "")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        // `ulimit -n` in the shell sets the hard limit too: the exporter cannot raise it.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 256 && exec \"$0\" \"$@\"")
            .arg(std::env::var("IDAUTH_TEST_BINARY").unwrap_or(env!("CARGO_BIN_EXE_idauth-exporter").to_owned()))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://{addr}");
        wait_healthy(&format!("{base}/-/healthy"), &mut child).await;

        let idle = tokio::task::spawn_blocking(move || {
            (0..1100)
                .map(|i| {
                    let mut s = TcpStream::connect(addr).unwrap();
                    if i % 10 == 0 {
                        s.write_all(H2_PREFACE).unwrap();
                    }
                    s
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap();
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        let began = Instant::now();
        let scrape = client.get(format!("{base}/metrics")).send().await;
        let took = began.elapsed();
        let result = match scrape {
            Ok(r) if r.status() == 200 => Ok(Metrics::parse(&r.text().await.unwrap())),
            other => Err(format!("{other:?}")),
        };
        let _ = child.kill();
        let _ = child.wait();
        drop(idle);
        let m = result.unwrap_or_else(|e| panic!("the scrape failed after {took:?} with 1,100 idle connections: {e}"));
        eprintln!("scrape with 1,100 idle connections open: {took:?}");
        let evicted = m.get("idauth_http_connections_refused_total{reason=\"evicted\"}").unwrap_or(0.0);
        assert!(evicted > 500.0, "idle connections were evicted to make room: {evicted}");
        assert!(
            m.get("idauth_http_connections_open").unwrap_or(0.0) <= 192.0,
            "{:?}",
            m.get("idauth_http_connections_open")
        );
    }
}

/// Hundreds of pairs: `/metrics` is longer than one piece, so it is streamed (chunked, no
/// Content-Length) rather than built whole; plain and gzipped, it is the whole text.
#[tokio::test]
async fn a_long_exposition_is_streamed_whole_plain_and_gzipped() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(503)).mount(&server).await;
    let types: Vec<String> = (0..400).map(|i| format!("B{i:05}")).collect();
    let types: Vec<&str> = types.iter().map(String::as_str).collect();
    let ex = start(&config_yaml(&server.uri(), "v2", &[("NG", &types)], "  retries: 0\n  concurrency: 32\n")).await;
    ex.ready().await;

    let plain = ex.get("/metrics").await;
    assert_eq!(plain.headers()["transfer-encoding"], "chunked");
    assert!(plain.headers().get("content-length").is_none());
    let plain = plain.text().await.unwrap();
    assert!(plain.len() > 2 * idauth_exporter::metrics::CHUNK, "{} bytes", plain.len());
    let m = Metrics::parse(&plain);
    for t in ["B00000", "B00399"] {
        assert_eq!(m.state("NG", t), "unknown");
        assert_eq!(m.get(&format!("idauth_polls_total{{country=\"NG\",id_type=\"{t}\"}}")), Some(1.0));
    }
    assert_eq!(plain.matches("# TYPE idauth_state gauge\n").count(), 1);
    assert!(plain.contains("\nidauth_targets 400\n") && plain.contains("\nprocess_start_time_seconds "));

    let gz = ex.http.get(ex.url("/metrics")).header("Accept-Encoding", "gzip").send().await.unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert_eq!(gz.headers()["transfer-encoding"], "chunked");
    let bytes = gz.bytes().await.unwrap();
    assert_eq!(stable_lines(&gunzip(&bytes)), stable_lines(&plain));
    assert!(bytes.len() * 8 < plain.len(), "{} -> {}", plain.len(), bytes.len());
    ex.stop().await;
}

fn gunzip(bytes: &[u8]) -> String {
    let mut unzipped = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(bytes), &mut unzipped).unwrap();
    unzipped
}

/// The metrics text without what moves between two scrapes: the poll durations and the
/// process's own figures (CPU, memory).
fn stable_lines(text: &str) -> String {
    text.lines().filter(|l| !l.starts_with("idauth_poll_duration") && !l.starts_with("process_")).collect()
}
