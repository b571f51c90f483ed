//! The shipped Prometheus rules (rendered from deploy/mixin), checked by the real tools:
//! `promtool` (Debian package `prometheus`). The Alertmanager example is checked in
//! tests/alertmanager.rs.
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

fn yaml(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The rules of every group of a rendered rule file.
fn rules(file: &str) -> Vec<serde_json::Value> {
    let doc = yaml(&prometheus_dir().join(file));
    doc["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap().clone()).collect()
}

fn test_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(prometheus_dir().join("tests"))
        .unwrap()
        .map(|e| format!("tests/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|f| f.ends_with(".yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn promtool_checks_both_rule_files() {
    let (ok, out) = run("promtool", "prometheus", &["check", "rules", "rules.yaml", "alerts.yaml"], &prometheus_dir());
    assert!(ok, "{out}");
    for file in ["rules.yaml", "alerts.yaml"] {
        let n = rules(file).len();
        assert!(n > 0, "{file} has no rules");
        assert!(out.contains(&format!("SUCCESS: {n} rules found")), "{file}: {n} rules expected\n{out}");
    }
}

#[test]
fn promtool_unit_tests_of_every_alert_pass() {
    let dir = prometheus_dir();
    let files = test_files();
    assert!(files.len() >= 4, "{files:?}");
    let mut args = vec!["test", "rules"];
    args.extend(files.iter().map(String::as_str));
    let (ok, out) = run("promtool", "prometheus", &args, &dir);
    assert!(ok, "{out}");

    // Every alert has a case where it fires and one where it does not.
    let cases: Vec<serde_json::Value> = files
        .iter()
        .flat_map(|f| yaml(&dir.join(f))["tests"].as_array().cloned().unwrap_or_default())
        .flat_map(|t| t["alert_rule_test"].as_array().cloned().unwrap_or_default())
        .collect();
    let names: Vec<String> =
        rules("alerts.yaml").iter().filter_map(|r| r["alert"].as_str().map(str::to_owned)).collect();
    assert!(names.len() >= 17, "{names:?}");
    for name in &names {
        let mine: Vec<&serde_json::Value> = cases.iter().filter(|c| c["alertname"] == name.as_str()).collect();
        let empty = |c: &&serde_json::Value| c["exp_alerts"].as_array().is_none_or(|a| a.is_empty());
        assert!(mine.iter().any(empty), "{name} has no not-firing case");
        let firing: Vec<_> = mine.iter().filter(|c| !empty(c)).collect();
        assert!(!firing.is_empty(), "{name} has no firing case");
        for case in firing {
            for alert in case["exp_alerts"].as_array().unwrap() {
                assert!(alert["exp_labels"].is_object(), "{name}: a firing case asserts labels");
                let ann = &alert["exp_annotations"];
                for key in ["summary", "description", "runbook_url"] {
                    assert!(ann[key].is_string(), "{name}: a firing case asserts the {key}");
                }
            }
        }
    }
}

#[test]
fn every_alert_follows_the_conventions() {
    let runbook = std::fs::read_to_string(Path::new(DEPLOY).join("../docs/runbook.md")).unwrap();
    for rule in rules("alerts.yaml") {
        let name = rule["alert"].as_str().expect("every rule of alerts.yaml is an alert");
        assert!(
            name.starts_with("IdAuth") && name.chars().all(|c| c.is_ascii_alphanumeric()),
            "{name}: CamelCase with the shared prefix"
        );
        let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
        assert!(["critical", "warning", "info"].contains(&severity), "{name}: severity {severity:?}");
        for key in ["summary", "description", "runbook_url"] {
            assert!(rule["annotations"][key].as_str().is_some_and(|s| !s.is_empty()), "{name}: {key}");
        }
        let anchor = name.to_lowercase();
        let url = rule["annotations"]["runbook_url"].as_str().unwrap();
        assert!(url.ends_with(&format!("docs/runbook.md#{anchor}")), "{name}: runbook_url points into the runbook");
        assert!(runbook.contains(&format!("\n## {name}\n")), "{name}: the runbook has a section");
    }
    // Recording rules follow level:metric:operations.
    for rule in rules("rules.yaml") {
        let record = rule["record"].as_str().expect("every rule of rules.yaml records");
        assert_eq!(record.split(':').count(), 3, "{record}: level:metric:operations");
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
fn the_unit_test_files_are_what_their_generator_writes() {
    let generator = prometheus_dir().join("tests/generator/generate");
    let (ok, out) = run(generator.to_str().unwrap(), "python3", &["--check"], &prometheus_dir());
    assert!(ok, "edit the scenarios in deploy/prometheus/tests/generator, then run its generate script:\n{out}");
}

#[test]
fn some_scenario_holds_a_storm_of_at_least_twenty_pairs() {
    // The rules must stay cheap and correct at scale: at least one promtool case holds 20
    // pairs or more (a storm), with series short enough for promtool's limits.
    let dir = prometheus_dir();
    let mut most = 0;
    for file in test_files() {
        for case in yaml(&dir.join(&file))["tests"].as_array().cloned().unwrap_or_default() {
            let mut pairs: Vec<String> = case["input_series"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|s| {
                    let series = s["series"].as_str()?;
                    let label = |name: &str| {
                        let at = series.find(&format!("{name}=\""))? + name.len() + 2;
                        Some(series[at..].split('"').next()?.to_owned())
                    };
                    Some(format!("{} {}", label("country")?, label("id_type")?))
                })
                .collect();
            pairs.sort();
            pairs.dedup();
            most = most.max(pairs.len());
        }
    }
    assert!(most >= 20, "the largest promtool case watches {most} pairs");
}
