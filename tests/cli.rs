//! The binary as a person runs it: help, version, `config check` and `check`.

mod common;

use std::process::{Command, Output};

use common::*;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer};

const BIN: &str = env!("CARGO_BIN_EXE_idauth-exporter");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).env_remove("SMILE_ID_API_KEY").output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs the daemon on `config` and returns its log lines up to the first at which `enough`
/// holds of them (or its end), then kills it.
fn log_until(config: &std::path::Path, enough: impl Fn(&[String]) -> bool) -> Vec<String> {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(BIN)
        .args([&format!("--config.file={}", config.display()), "--web.listen-address=127.0.0.1:0"])
        .env_remove("SMILE_ID_API_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        log.push(line.unwrap());
        if enough(&log) {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    log
}

#[test]
fn help_and_version_read_well() {
    let help = run(&["--help"]);
    assert!(help.status.success());
    let text = stdout(&help);
    for flag in ["--config.file", "--web.listen-address", "--log.level", "--log.format", "check", "config"] {
        assert!(text.contains(flag), "{flag} missing from:\n{text}");
    }
    // Where the key comes from, and where the exporter listens unless told.
    assert!(text.contains("SMILE_ID_API_KEY") && text.contains("else :9877"), "{text}");
    let version = run(&["--version"]);
    assert!(version.status.success());
    let v = stdout(&version);
    assert!(v.starts_with(&format!("idauth-exporter {} (revision ", env!("CARGO_PKG_VERSION"))), "{v}");
    // As Prometheus' exporters: the branch, the build date, the toolchain and the platform.
    for line in [", branch ", "\n  build date:    20", "\n  rust version:  1.", "\n  platform:      linux/"] {
        assert!(v.contains(line), "{line:?} missing from:\n{v}");
    }
    let bad = run(&["--log.format=xml"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn config_check_passes_a_good_file_and_names_the_line_of_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api_key"), "k\n").unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, config_yaml("http://127.0.0.1:1", "v2", &[("NG", &["BVN", "NIN_V2"])], "")).unwrap();
    let o = run(&["config", "check", &format!("--config.file={}", good.display())]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("SUCCESS: 2 pairs"), "{}", stdout(&o));

    let bad = dir.path().join("bad.yaml");
    let text = config_yaml("http://127.0.0.1:1", "v2", &[("NG", &["BVN"]), ("XX", &["BVN"])], "");
    std::fs::write(&bad, &text).unwrap();
    let line = text.lines().position(|l| l.contains("XX")).unwrap() + 1;
    let o = run(&["config", "check", "--config.file", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains(&format!("bad.yaml:{line}:")) && out.contains("ISO 3166-1"), "{out}");

    let o = run(&["config", "check", "--config.file=/nonexistent.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("/nonexistent.yaml: cannot read"), "{}", stdout(&o));
}

#[test]
fn the_daemon_refuses_a_bad_file_with_a_clear_error() {
    let o = run(&["--config.file=/nonexistent.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("level=error") && err.contains("/nonexistent.yaml"), "{err}");
    // The cause is said once, not once per link of the error chain.
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

/// `/dev/zero` as the configuration or as the key file: a clear error at once, not
/// unbounded memory.
#[test]
fn endless_files_are_refused_fast() {
    let started = std::time::Instant::now();
    let o = run(&["config", "check", "--config.file=/dev/zero"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("FAILED: /dev/zero: the file is larger than 4 MiB"), "{}", stdout(&o));
    let o = run(&["--config.file=/dev/zero"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/dev/zero: the file is larger than 4 MiB"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    let yaml = config_yaml("http://127.0.0.1:1", "v2", &[("NG", &["BVN"])], "")
        .replace("api_key_file: api_key", "api_key_file: /dev/zero");
    std::fs::write(&path, &yaml).unwrap();
    let line = yaml.lines().position(|l| l.contains("/dev/zero")).unwrap() + 1;
    let o = run(&["config", "check", &format!("--config.file={}", path.display())]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("c.yaml:{line}:17: smile_id.api_key_file: /dev/zero is larger than 64 KiB")),
        "{out}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
}

async fn check_with(pairs: &[(&str, &str, serde_json::Value)], args: &[&str]) -> Output {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(FakeV2::new(pairs)).mount(&server).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api_key"), format!("{KEY}\n")).unwrap();
    let path = dir.path().join("c.yaml");
    let yaml = config_yaml(&server.uri(), "v2", &[("NG", &["BVN", "NIN_V2"])], "  retries: 0\n");
    std::fs::write(&path, yaml).unwrap();
    let mut all = vec!["check".to_owned(), format!("--config.file={}", path.display())];
    all.extend(args.iter().map(|s| s.to_string()));
    tokio::task::spawn_blocking(move || Command::new(BIN).args(&all).output().unwrap()).await.unwrap()
}

#[tokio::test]
async fn check_exits_0_when_all_are_online() {
    let checked = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let o = check_with(
        &[
            ("NG", "BVN", status_body("online", "99%", "98%", &checked)),
            ("NG", "NIN_V2", status_body("online", "92%", "95%", &checked)),
        ],
        &[],
    )
    .await;
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.starts_with("PAIR"), "{out}");
    // The provider's values as it wrote them, not re-rounded to one decimal.
    assert!(out.contains("NG/BVN") && out.contains(" 99% ") && out.contains(" 98% "), "{out}");
    assert!(out.contains("NG/NIN_V2") && out.contains(" 92% ") && !out.contains(".0%"), "{out}");
}

#[tokio::test]
async fn check_exits_1_when_one_is_not_online() {
    let o = check_with(
        &[
            ("NG", "BVN", status_body("online", "99%", "98%", "2026-11-26T09:50:04.596Z")),
            ("NG", "NIN_V2", status_body("offline", "2%", "20%", "2026-11-26T09:50:04.596Z")),
        ],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("offline"));
}

#[tokio::test]
async fn check_exits_2_when_a_poll_fails_and_can_check_one_pair() {
    // NIN_V2 has no data: the poll fails.
    let o = check_with(&[("NG", "BVN", status_body("online", "99%", "98%", "2026-11-26T09:50:04.596Z"))], &[]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stdout(&o).contains("poll failed (no_data)"), "{}", stdout(&o));

    // Only the healthy pair, named on the command line (lower case is fine).
    let o =
        check_with(&[("NG", "BVN", status_body("online", "99%", "98%", "2026-11-26T09:50:04.596Z"))], &["ng", "bvn"])
            .await;
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(!stdout(&o).contains("NIN_V2"));
}

/// `api_key_env: <the key>`: `config check` and the daemon refuse it without printing it.
#[test]
fn a_key_pasted_as_api_key_env_is_never_printed() {
    const PASTED: &str = "sk_live_4eC39HqLyjWDarjtT1zdp7dc";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    let yaml = config_yaml("http://127.0.0.1:1", "v2", &[("NG", &["BVN"])], "")
        .replace("api_key_file: api_key", &format!("api_key_env: {PASTED}"));
    std::fs::write(&path, &yaml).unwrap();
    let line = yaml.lines().position(|l| l.contains(PASTED)).unwrap() + 1;
    let config = format!("--config.file={}", path.display());
    for args in [vec!["config", "check", config.as_str()], vec![config.as_str()]] {
        let o = Command::new(BIN).args(&args).env(PASTED, "k").output().unwrap();
        assert_eq!(o.status.code(), Some(1));
        let all = format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
        assert!(all.contains(&format!("c.yaml:{line}:16: smile_id.api_key_env: this looks like a key")), "{all}");
        assert!(!all.contains("4eC39HqL"), "{all}");
    }
}

/// A generated list of pairs the reference table lacks gives one start-up warning with the
/// count and the first few, not a line per pair.
#[test]
fn unlisted_pairs_give_one_start_up_warning() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api_key"), "k\n").unwrap();
    let types: Vec<String> = (0..300).map(|i| format!("GENERATED_{i}")).collect();
    let types: Vec<&str> = types.iter().map(String::as_str).collect();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, config_yaml("http://127.0.0.1:1", "v2", &[("NG", &types)], "")).unwrap();
    let log = log_until(&config, |log| log.last().is_some_and(|l| l.contains("listening")));
    let warnings: Vec<&String> = log.iter().filter(|l| l.contains("documented list")).collect();
    assert_eq!(warnings.len(), 1, "{log:#?}");
    assert!(
        warnings[0].contains("300 pairs are not in Smile ID")
            && warnings[0].contains(
                "NG GENERATED_0, NG GENERATED_1, NG GENERATED_2, NG GENERATED_3, NG GENERATED_4 and 295 more"
            ),
        "{}",
        warnings[0]
    );
}

/// A provider serving the captured catalogue (seven Ghanaian pairs) after `delay`.
async fn catalogue(delay: std::time::Duration) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(wiremock::matchers::path("/v1/services"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_string(include_str!("fixtures/provider/v1-services-android.json"))
                .set_delay(delay),
        )
        .mount(&server)
        .await;
    server
}

#[tokio::test(flavor = "multi_thread")]
async fn config_check_shows_what_discovery_would_watch_or_why_it_cannot() {
    let server = catalogue(std::time::Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api_key"), "k\n").unwrap();
    let discover = "discovery:\n  enabled: true\n";
    let config = |url: &str| {
        let path = dir.path().join("c.yaml");
        let yaml = config_yaml(url, "v2", &[("NG", &["BVN"])], "");
        std::fs::write(&path, yaml.replace("targets:\n", &format!("{discover}targets:\n"))).unwrap();
        format!("--config.file={}", path.display())
    };

    let arg = config(&server.uri());
    let o = tokio::task::spawn_blocking(move || run(&["config", "check", &arg])).await.unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    // The captured catalogue lists seven Ghanaian pairs; with NG BVN, eight are watched.
    assert!(out.contains("lists 7 pairs to watch") && out.contains("would watch 8 pairs"), "{out}");
    assert!(out.contains("GH/GHANA_CARD") || out.contains("GH GHANA_CARD"), "{out}");

    // Nothing listens on port 1: not a configuration error, but said plainly.
    let arg = config("http://127.0.0.1:1");
    let o = tokio::task::spawn_blocking(move || run(&["config", "check", &arg])).await.unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("discovery: cannot read the catalogue at")
            && out.contains("would watch only the 1 explicit targets"),
        "{out}"
    );
}

/// A key pasted into the wrong field (a file name, the environment) is never echoed by
/// `config check`, whatever the parser or the file system says about it.
#[test]
fn a_key_pasted_into_the_wrong_field_is_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api_key"), "k\n").unwrap();
    for key in ["sk_live_8f3a9c2e1b7d4f6a0c5e9b2d", "1f0e7c3a-5b9d-4e2f-8a6c-0d3b7e9f1a24"] {
        let base = config_yaml("http://127.0.0.1:1", "v2", &[("NG", &["BVN"])], "");
        for (field, text) in [
            ("api_key_file", base.replace("api_key_file: api_key", &format!("api_key_file: {key}"))),
            ("environment", base.replace("  api: v2\n", &format!("  api: v2\n  environment: {key}\n"))),
            ("environment (quoted)", base.replace("  api: v2\n", &format!("  api: v2\n  environment: \"{key}\"\n"))),
        ] {
            assert!(text.contains(key), "{field}: the test's file holds the key");
            let path = dir.path().join("c.yaml");
            std::fs::write(&path, &text).unwrap();
            let o = run(&["config", "check", &format!("--config.file={}", path.display())]);
            let out = format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
            assert_eq!(o.status.code(), Some(1), "{field}: {out}");
            assert!(!out.contains(key), "{field}: the key is echoed:\n{out}");
            assert!(out.contains("not shown"), "{field}: {out}");
        }
    }
}

/// With discovery and no explicit pair, the start-up cycle has nothing to poll: it says
/// nothing, rather than `pairs=0 ok=0`; the pairs discovery finds are polled and logged.
#[tokio::test(flavor = "multi_thread")]
async fn no_empty_cycle_is_logged_before_discovery_has_listed_the_pairs() {
    let server = catalogue(std::time::Duration::from_millis(500)).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api_key"), "k\n").unwrap();
    let config = dir.path().join("c.yaml");
    let yaml =
        config_yaml(&server.uri(), "v2", &[], "").replace("targets:\n", "discovery:\n  enabled: true\ntargets: []\n");
    std::fs::write(&config, yaml).unwrap();
    let log = tokio::task::spawn_blocking(move || {
        log_until(&config, |log| log.iter().any(|l| l.contains("watched pairs changed by discovery")))
    })
    .await
    .unwrap();
    assert!(log.iter().any(|l| l.contains("watched pairs changed by discovery") && l.contains("added=7")), "{log:#?}");
    assert!(!log.iter().any(|l| l.contains("pairs=0")), "{log:#?}");
}

/// Every flag a command's help lists does something there: the demo makes its own
/// configuration and store, so it lists neither --config.file nor --storage.path; the
/// simulator has its own --listen.
#[test]
fn each_command_lists_only_the_flags_it_uses() {
    let help = |command: &[&str]| {
        let mut args = command.to_vec();
        args.push("--help");
        let o = run(&args);
        assert!(o.status.success(), "{command:?} --help");
        stdout(&o)
    };
    let demo = help(&["demo"]);
    for absent in ["--config.file", "--storage.path", "--web.config.file", "--web.max-connections"] {
        assert!(!demo.contains(absent), "demo --help lists {absent}:\n{demo}");
    }
    for present in ["--web.listen-address", "127.0.0.1:9877", "--log.level", "--log.format"] {
        assert!(demo.contains(present), "demo --help lacks {present}:\n{demo}");
    }
    let simulate = help(&["simulate"]);
    assert!(!simulate.contains("--config.file") && !simulate.contains("--web.listen-address"), "{simulate}");
    for command in [&["check"][..], &["config", "check"], &["history", "fill"]] {
        assert!(help(command).contains("--config.file"), "{command:?} --help lacks --config.file");
    }
    let export = help(&["history", "export"]);
    assert!(!export.contains("--config.file") && export.contains("--storage.path"), "{export}");
}

/// `config check` says where each webhook goes, without the query (it may carry a token)
/// or the secret.
#[test]
fn config_check_lists_the_webhooks_without_their_secrets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api_key"), "k\n").unwrap();
    std::fs::write(dir.path().join("secret"), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").unwrap();
    let config = dir.path().join("c.yaml");
    let yaml = config_yaml("http://127.0.0.1:1", "v2", &[("NG", &["BVN"])], "")
        + "notify:\n  webhooks:\n    - name: kyc\n      url: https://kyc.internal/h?token=q-7f3a\n      \
           secret_file: secret\n      countries: [NG]\n      states: [online]\n";
    std::fs::write(&config, yaml).unwrap();
    let o = run(&["config", "check", &format!("--config.file={}", config.display())]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("webhook kyc: https://kyc.internal/h (countries NG, id_types all, to online; timeout 10s)"),
        "{out}"
    );
    assert!(!out.contains("q-7f3a") && !out.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "{out}");
}
