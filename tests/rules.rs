//! The shipped Prometheus rules and Alertmanager example, checked by the real tools:
//! `promtool` (Debian package `prometheus`) and `amtool` (`prometheus-alertmanager`).
//! These tests fail, never skip, when a tool is missing.

use std::path::Path;
use std::process::Command;

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");

/// Runs a tool and returns its output, failing with what to install when it is missing.
fn run(tool: &str, package: &str, args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(tool).args(args).current_dir(dir).output().unwrap_or_else(|e| {
        panic!(
            "{tool} is needed for this test ({e}); install it with `apt-get install {package}` (./scripts/test does)"
        )
    });
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn prometheus_dir() -> std::path::PathBuf {
    Path::new(DEPLOY).join("prometheus")
}

#[test]
fn promtool_checks_both_rule_files() {
    let (ok, out) = run("promtool", "prometheus", &["check", "rules", "rules.yaml", "alerts.yaml"], &prometheus_dir());
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS: 4 rules found") && out.contains("SUCCESS: 9 rules found"), "{out}");
}

#[test]
fn promtool_unit_tests_of_every_alert_pass() {
    let dir = prometheus_dir();
    let mut files: Vec<String> = std::fs::read_dir(dir.join("tests"))
        .unwrap()
        .map(|e| format!("tests/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|f| f.ends_with(".yaml"))
        .collect();
    files.sort();
    let mut args = vec!["test", "rules"];
    args.extend(files.iter().map(String::as_str));
    let (ok, out) = run("promtool", "prometheus", &args, &dir);
    assert!(ok, "{out}");

    // Every alert has a case where it fires and one where it does not.
    let alerts = std::fs::read_to_string(dir.join("alerts.yaml")).unwrap();
    let tests: String = files.iter().map(|f| std::fs::read_to_string(dir.join(f)).unwrap()).collect();
    let names: Vec<&str> = alerts.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).collect();
    assert_eq!(names.len(), 9);
    for name in names {
        let cases: Vec<&str> =
            tests.split("alertname: ").skip(1).filter(|c| c.starts_with(&format!("{name}\n"))).collect();
        assert!(cases.iter().any(|c| c.contains("exp_alerts: []")), "{name} has no not-firing case");
        assert!(cases.iter().any(|c| c.contains("exp_labels:")), "{name} has no firing case");
    }
}

#[test]
fn every_alert_follows_the_conventions() {
    let alerts = std::fs::read_to_string(prometheus_dir().join("alerts.yaml")).unwrap();
    let runbook = std::fs::read_to_string(Path::new(DEPLOY).join("../docs/runbook.md")).unwrap();
    for block in alerts.split("- alert: ").skip(1) {
        let name = block.lines().next().unwrap().trim();
        assert!(name.starts_with("IdAuth") && !name.contains('_'), "{name}: CamelCase with the shared prefix");
        assert!(
            ["severity: critical", "severity: warning", "severity: info"].iter().any(|s| block.contains(s)),
            "{name}: severity"
        );
        for key in ["summary:", "description:", "runbook_url:"] {
            assert!(block.contains(key), "{name}: {key}");
        }
        let anchor = name.to_lowercase();
        assert!(block.contains(&format!("docs/runbook.md#{anchor}")), "{name}: runbook_url points into the runbook");
        assert!(runbook.contains(&format!("\n## {name}\n")), "{name}: the runbook has a section");
    }
}

#[test]
fn promtool_accepts_the_example_prometheus_config() {
    let (ok, out) = run("promtool", "prometheus", &["check", "config", "prometheus.yml"], &prometheus_dir());
    assert!(ok, "{out}");
    let text = std::fs::read_to_string(prometheus_dir().join("prometheus.yml")).unwrap();
    assert!(text.contains("job_name: idauth-exporter") && text.contains("scrape_interval: 60s"), "{text}");
    assert!(
        text.contains(&format!(":{}", idauth_exporter::config::DEFAULT_PORT)),
        "the example scrapes the default port"
    );
}

#[test]
fn amtool_accepts_the_example_alertmanager_config() {
    let dir = Path::new(DEPLOY).join("alertmanager");
    let (ok, out) = run("amtool", "prometheus-alertmanager", &["check-config", "alertmanager.yml"], &dir);
    assert!(ok, "{out}");
    assert!(out.contains("2 receivers") && out.contains("3 inhibit rules"), "{out}");
}

#[test]
fn critical_alerts_page_and_warnings_go_to_chat() {
    let dir = Path::new(DEPLOY).join("alertmanager");
    let route = |labels: &[&str]| {
        let mut args = vec!["config", "routes", "test", "--config.file=alertmanager.yml"];
        args.extend(labels);
        let (ok, out) = run("amtool", "prometheus-alertmanager", &args, &dir);
        assert!(ok, "{out}");
        // The receivers come first; amtool may add a warning line after them.
        out.lines().next().unwrap_or_default().trim().to_owned()
    };
    assert_eq!(route(&["alertname=IdAuthorityOffline", "severity=critical", "country=NG", "id_type=BVN"]), "pager");
    assert_eq!(route(&["alertname=IdAuthExporterDown", "severity=critical"]), "pager");
    assert_eq!(route(&["alertname=IdAuthorityDegraded", "severity=warning", "country=NG", "id_type=BVN"]), "chat");
    assert_eq!(route(&["alertname=IdAuthorityFlapping", "severity=info"]), "chat");
}
