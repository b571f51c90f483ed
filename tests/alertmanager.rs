//! The example Alertmanager configuration (deploy/alertmanager), checked by the real tools
//! of the Debian package `prometheus-alertmanager`: `amtool` for the configuration, the
//! routes and the notification templates, and the `alertmanager` binary itself for the
//! inhibitions. These tests fail, never skip, when a tool is missing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/alertmanager");

fn missing(tool: &str, e: std::io::Error) -> ! {
    panic!(
        "{tool} is needed for this test ({e}); install prometheus-alertmanager (`apt-get install prometheus-alertmanager`; ./scripts/test does)"
    )
}

/// Runs amtool and returns (success, stdout + stderr).
fn amtool(args: &[&str]) -> (bool, String) {
    let out = Command::new("amtool").args(args).current_dir(DIR).output().unwrap_or_else(|e| missing("amtool", e));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn config() -> Value {
    let yaml = std::fs::read_to_string(Path::new(DIR).join("alertmanager.yml")).unwrap();
    serde_saphyr::from_str(&yaml).unwrap()
}

#[test]
fn amtool_accepts_the_configuration_and_its_templates() {
    let (ok, out) = amtool(&["check-config", "alertmanager.yml"]);
    assert!(ok, "{out}");
    assert!(out.contains("2 receivers") && out.contains("3 inhibit rules") && out.contains("1 templates"), "{out}");
    // The template glob finds the shipped template file.
    assert_eq!(config()["templates"], json!(["templates/*.tmpl"]));
    assert!(Path::new(DIR).join("templates/idauth.tmpl").is_file());
}

/// The labels that tell one deployment from another, which every grouping and inhibition
/// compares (the mixin's rules keep them on every alert).
const DEPLOYMENT: [&str; 5] = ["cluster", "env", "region", "namespace", "job"];

fn route(receiver: &str) -> Value {
    config()["route"]["routes"].as_array().unwrap().iter().find(|r| r["receiver"] == receiver).unwrap().clone()
}

#[test]
fn pages_are_grouped_per_country_and_chat_is_batched() {
    let labels =
        |v: &Value| -> Vec<String> { v.as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_owned()).collect() };
    let mut deployment: Vec<String> = DEPLOYMENT.iter().map(|l| l.to_string()).collect();
    // Pages: one incident per country and deployment, whatever the alert or ID type.
    let pager = labels(&route("pager")["group_by"]);
    let mut want = deployment.clone();
    want.push("country".into());
    assert_eq!(pager, want);
    // Chat: one message per alert name and deployment, batched over group_wait.
    let chat = route("chat");
    deployment.insert(0, "alertname".into());
    assert_eq!(labels(&chat["group_by"]), deployment);
    assert_eq!(labels(&config()["route"]["group_by"]), deployment);
    assert_eq!(chat["group_wait"], "1m");
    assert_eq!(chat["group_interval"], "5m");
    for rule in config()["inhibit_rules"].as_array().unwrap() {
        let equal = labels(&rule["equal"]);
        assert_eq!(equal[..5], DEPLOYMENT.map(String::from), "{rule}");
    }
}

#[test]
fn critical_alerts_page_and_warnings_go_to_chat() {
    let route = |labels: &[&str]| {
        let mut args = vec!["config", "routes", "test", "--config.file=alertmanager.yml"];
        args.extend(labels);
        let (ok, out) = amtool(&args);
        assert!(ok, "{out}");
        // The receivers come first; amtool may add a warning line after them.
        out.lines().next().unwrap_or_default().trim().to_owned()
    };
    for critical in [
        "IdAuthorityOffline",
        "IdAuthExporterDown",
        "IdAuthExporterStalled",
        "IdAuthExporterUnauthorized",
        "IdAuthExporterBlind",
    ] {
        let alertname = format!("alertname={critical}");
        let labels = [alertname.as_str(), "severity=critical", "job=idauth-exporter", "country=NG", "id_type=BVN"];
        assert_eq!(route(&labels), "pager", "{critical}");
        assert_eq!(route(&[alertname.as_str(), "severity=critical", "cluster=eu", "job=idauth-exporter"]), "pager");
    }
    for warning in [
        "IdAuthorityDegraded",
        "IdAuthorityFlapping",
        "IdAuthorityStatusUnknown",
        "IdAuthorityDataStale",
        "IdAuthExporterReplicaDown",
        "IdAuthExporterReplicaStalled",
        "IdAuthExporterPollsFailing",
        "IdAuthWebhookFailing",
        "IdAuthWebhookReplicaFailing",
        "IdAuthWebhookEventsLost",
    ] {
        let alertname = format!("alertname={warning}");
        assert_eq!(route(&[alertname.as_str(), "severity=warning", "job=idauth-exporter"]), "chat", "{warning}");
    }
    assert_eq!(route(&["alertname=Anything", "severity=info"]), "chat");
    assert_eq!(route(&["alertname=IdAuthorityNoLongerWatched", "severity=info", "job=idauth-exporter"]), "chat");
}

#[test]
fn receivers_use_the_templates_that_read_each_alert() {
    // Every notification text comes from the shipped templates, never from the group's
    // common annotations alone (blank when two alerts' descriptions differ).
    let yaml = std::fs::read_to_string(Path::new(DIR).join("alertmanager.yml")).unwrap();
    let receivers = &yaml[yaml.find("\nreceivers:").expect("a receivers section")..];
    assert!(!receivers.contains("CommonAnnotations"), "{receivers}");
    for field in [
        r#"description: '{{ template "idauth.title" . }}'"#,
        r#"alerts: '{{ template "idauth.text" . }}'"#,
        r#"title: '{{ template "idauth.title" . }}'"#,
        r#"text: '{{ template "idauth.text" . }}'"#,
    ] {
        assert!(receivers.contains(field), "{field} missing from:\n{receivers}");
    }
    let tmpl = std::fs::read_to_string(Path::new(DIR).join("templates/idauth.tmpl")).unwrap();
    assert!(tmpl.contains("{{ range .Alerts.Firing -}}") && tmpl.contains("{{ range .Alerts.Resolved }}"));
    // A resolved alert whose pair is no longer watched is told apart from a recovery.
    assert!(tmpl.contains(".Annotations.unwatched"));
}

fn alert(status: &str, labels: Value, annotations: Value, starts: &str, ends: &str) -> Value {
    json!({"status": status, "labels": labels, "annotations": annotations, "startsAt": starts, "endsAt": ends,
           "generatorURL": "http://prometheus:9090/graph", "fingerprint": ""})
}

/// Renders `text` with the shipped templates and the given notification data.
fn render(data: &Value, text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.json");
    std::fs::write(&path, data.to_string()).unwrap();
    let (ok, out) = amtool(&[
        "template",
        "render",
        "--template.glob=templates/*.tmpl",
        &format!("--template.data={}", path.display()),
        &format!("--template.text={text}"),
    ]);
    assert!(ok, "{out}");
    out
}

#[test]
fn a_notification_of_two_alerts_with_different_descriptions_shows_both() {
    let labels = |instance: &str| {
        json!({"alertname": "IdAuthorityOffline", "severity": "critical", "job": "idauth-exporter",
               "country": "NG", "id_type": "BVN", "instance": instance})
    };
    let annotations = |description: &str| {
        json!({"summary": "ID authority offline: NG BVN", "description": description,
               "runbook_url": "https://example.com/runbook.md#idauthorityoffline"})
    };
    let zero = "0001-01-01T00:00:00Z";
    let data = json!({
        "receiver": "pager",
        "status": "firing",
        "alerts": [
            alert("firing", labels("a:9877"), annotations("Offline since 10:00, seen by replica a."), "2026-01-01T10:00:00Z", zero),
            alert("firing", labels("b:9877"), annotations("Offline since 10:01, seen by replica b."), "2026-01-01T10:01:00Z", zero),
            // A resolved alert without any annotation still shows what it was.
            alert("resolved", json!({"alertname": "IdAuthorityOffline", "severity": "critical", "country": "NG", "id_type": "NIN_V2"}),
                  json!({}), "2026-01-01T09:00:00Z", "2026-01-01T09:30:00Z"),
        ],
        "groupLabels": {"job": "idauth-exporter", "country": "NG"},
        "commonLabels": {"alertname": "IdAuthorityOffline", "severity": "critical", "job": "idauth-exporter", "country": "NG"},
        // What Alertmanager computes here: the descriptions differ, so nothing is common.
        "commonAnnotations": {"summary": "ID authority offline: NG BVN", "runbook_url": "https://example.com/runbook.md#idauthorityoffline"},
        "externalURL": "http://alertmanager:9093",
    });

    let title = render(&data, r#"{{ template "idauth.title" . }}"#);
    assert_eq!(title.trim(), "[FIRING:2] ID authority offline: NG BVN");

    let text = render(&data, r#"{{ template "idauth.text" . }}"#);
    for wanted in [
        "Offline since 10:00, seen by replica a.",
        "Offline since 10:01, seen by replica b.",
        "instance=a:9877",
        "instance=b:9877",
        "Runbook: https://example.com/runbook.md#idauthorityoffline",
        "Since: 2026-01-01 10:00:00 UTC",
        "Resolved:",
        "(this alert has no description)",
        "id_type=NIN_V2",
    ] {
        assert!(text.contains(wanted), "{wanted:?} missing from:\n{text}");
    }
    assert!(text.find("replica a").unwrap() < text.find("Resolved:").unwrap(), "{text}");

    // With no common summary, the title names the group instead of going blank.
    let mut bare = data.clone();
    bare["commonAnnotations"] = json!({});
    let title = render(&bare, r#"{{ template "idauth.title" . }}"#);
    assert_eq!(title.trim(), "[FIRING:2] IdAuthorityOffline NG (idauth-exporter)");
}

fn offline_alert(status: &str, id_type: &str, unwatched: &str) -> Value {
    let labels = json!({"alertname": "IdAuthorityOffline", "severity": "critical", "job": "idauth-exporter",
                        "cluster": "eu", "country": "NG", "id_type": id_type});
    let annotations = json!({"summary": format!("ID authority offline: NG {id_type}"),
                             "description": format!("Smile ID reports {id_type} in NG as offline."),
                             "runbook_url": "https://example.com/runbook.md#idauthorityoffline",
                             "unwatched": unwatched});
    let ends = if status == "resolved" { "2026-01-01T11:00:00Z" } else { "0001-01-01T00:00:00Z" };
    alert(status, labels, annotations, "2026-01-01T10:00:00Z", ends)
}

fn notification(status: &str, alerts: Vec<Value>) -> Value {
    json!({
        "receiver": "pager", "status": status, "alerts": alerts,
        "groupLabels": {"cluster": "eu", "job": "idauth-exporter", "country": "NG"},
        "commonLabels": {"alertname": "IdAuthorityOffline", "severity": "critical", "cluster": "eu",
                         "job": "idauth-exporter", "country": "NG"},
        "commonAnnotations": {"runbook_url": "https://example.com/runbook.md#idauthorityoffline", "unwatched": ""},
        "externalURL": "http://alertmanager:9093",
    })
}

#[test]
fn one_page_for_a_country_lists_every_authority_with_its_description() {
    let types = ["BVN", "NIN_V2", "NIN_SLIP", "PHONE_NUMBER", "BANK_ACCOUNT", "DRIVERS_LICENSE"];
    let data = notification("firing", types.iter().map(|t| offline_alert("firing", t, "")).collect());
    let title = render(&data, r#"{{ template "idauth.title" . }}"#);
    assert_eq!(title.trim(), "[FIRING:6] IdAuthorityOffline NG eu (idauth-exporter)");
    let text = render(&data, r#"{{ template "idauth.text" . }}"#);
    for t in types {
        assert!(text.contains(&format!("Smile ID reports {t} in NG as offline.")), "{t} missing from:\n{text}");
        assert!(text.contains(&format!("id_type={t} ")), "{t} missing from:\n{text}");
    }
    assert!(!text.contains("Resolved:") && !text.contains("No longer watched"), "{text}");
}

#[test]
fn an_alert_that_ended_because_its_pair_is_no_longer_watched_is_not_called_recovered() {
    let why = "No replica of idauth-exporter serves this pair any more: removed from the configuration.";
    // NG BVN was removed from the configuration while offline; NG NIN_V2 recovered.
    let data = notification("resolved", vec![offline_alert("resolved", "BVN", why)]);
    let title = render(&data, r#"{{ template "idauth.title" . }}"#);
    assert_eq!(title.trim(), "[NO LONGER WATCHED] IdAuthorityOffline NG eu (idauth-exporter)");
    let text = render(&data, r#"{{ template "idauth.text" . }}"#);
    assert!(text.contains("No longer watched (ended without a recovery") && text.contains(why), "{text}");
    assert!(text.contains("ended, no longer watched: 2026-01-01 11:00:00 UTC"), "{text}");
    assert!(!text.contains("Resolved:") && !text.contains("; resolved:"), "{text}");

    let data = notification("resolved", vec![offline_alert("resolved", "NIN_V2", "")]);
    assert_eq!(
        render(&data, r#"{{ template "idauth.title" . }}"#).trim(),
        "[RESOLVED] IdAuthorityOffline NG eu (idauth-exporter)"
    );
    let text = render(&data, r#"{{ template "idauth.text" . }}"#);
    assert!(text.contains("Resolved:") && text.contains("; resolved: 2026-01-01 11:00:00 UTC"), "{text}");
    assert!(!text.contains("No longer watched"), "{text}");

    let data =
        notification("resolved", vec![offline_alert("resolved", "BVN", why), offline_alert("resolved", "NIN_V2", "")]);
    let title = render(&data, r#"{{ template "idauth.title" . }}"#);
    assert_eq!(title.trim(), "[RESOLVED, SOME NO LONGER WATCHED] IdAuthorityOffline NG eu (idauth-exporter)");
    let text = render(&data, r#"{{ template "idauth.text" . }}"#);
    let (resolved, ended) = (text.find("Resolved:").unwrap(), text.find("No longer watched").unwrap());
    let (bvn, nin) = (text.find("NG BVN").unwrap(), text.find("NG NIN_V2").unwrap());
    assert!(resolved < nin && nin < ended && ended < bvn, "{text}");
}

// ---------------------------------------------------------------- inhibitions

/// An Alertmanager process, stopped when dropped.
struct Alertmanager {
    child: Child,
    url: String,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The body of a GET answered with 200, or None.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).ok()?;
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    let ok = response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200");
    ok.then(|| response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default())
}

fn http_get_ok(port: u16, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200")
}

/// Starts Alertmanager on the shipped routes, inhibitions and templates, with receivers
/// that notify nobody (delivery is the end-to-end test's business).
fn start_alertmanager() -> Alertmanager {
    let dir = tempfile::tempdir().unwrap();
    let mut conf = config();
    for receiver in conf["receivers"].as_array_mut().unwrap() {
        *receiver = json!({"name": receiver["name"]});
    }
    conf["templates"] = json!([format!("{DIR}/templates/*.tmpl")]);
    let path: PathBuf = dir.path().join("alertmanager.yml");
    std::fs::write(&path, conf.to_string()).unwrap();
    let port = free_port();
    let mut last_err = None;
    let mut child = None;
    for binary in ["prometheus-alertmanager", "alertmanager"] {
        match Command::new(binary)
            .arg(format!("--config.file={}", path.display()))
            .arg(format!("--storage.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .spawn()
        {
            Ok(c) => {
                child = Some(c);
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let Some(child) = child else { missing("prometheus-alertmanager", last_err.unwrap()) };
    let mut am = Alertmanager { child, url: format!("http://127.0.0.1:{port}"), port, _dir: dir };
    // A real process: poll its readiness, up to a deadline a loaded machine cannot reach.
    let began = Instant::now();
    while !http_get_ok(port, "/-/ready") {
        if let Some(status) = am.child.try_wait().unwrap() {
            panic!("alertmanager exited before it was ready: {status}");
        }
        assert!(began.elapsed() < Duration::from_secs(30), "alertmanager was not ready after {:?}", began.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    am
}

/// (labels, whether the shipped inhibitions must mute the alert).
fn cases() -> Vec<(Vec<(&'static str, &'static str)>, bool)> {
    let a = |name: &'static str, severity: &'static str, rest: &[(&'static str, &'static str)]| {
        let mut l = vec![("alertname", name), ("severity", severity)];
        l.extend_from_slice(rest);
        l
    };
    // cluster eu, job idauth-exporter: no replica is up.
    let down = [("cluster", "eu"), ("job", "idauth-exporter")];
    let d = |name, severity, more: &[(&'static str, &'static str)]| {
        let mut l = down.to_vec();
        l.extend_from_slice(more);
        a(name, severity, &l)
    };
    // cluster us, job idauth-exporter: one replica is down, another watches.
    let us = |name, severity, more: &[(&'static str, &'static str)]| {
        let mut l = vec![("cluster", "us"), ("job", "idauth-exporter")];
        l.extend_from_slice(more);
        a(name, severity, &l)
    };
    // No cluster label, job idauth-exporter-ke: Smile ID refuses the credentials.
    let ke = |name, severity, more: &[(&'static str, &'static str)]| {
        let mut l = vec![("job", "idauth-exporter-ke")];
        l.extend_from_slice(more);
        a(name, severity, &l)
    };
    let ap = |name, severity, more: &[(&'static str, &'static str)]| {
        let mut l = vec![("cluster", "ap"), ("job", "idauth-exporter")];
        l.extend_from_slice(more);
        a(name, severity, &l)
    };
    let sa = |name, severity, env: &'static str, more: &[(&'static str, &'static str)]| {
        let mut l = vec![("cluster", "sa"), ("env", env), ("job", "idauth-exporter")];
        l.extend_from_slice(more);
        a(name, severity, &l)
    };
    let ng_bvn = [("country", "NG"), ("id_type", "BVN")];
    vec![
        // Nobody watches cluster eu: one page, for the exporter...
        (d("IdAuthExporterDown", "critical", &[]), false),
        (d("IdAuthorityStatusUnknown", "warning", &ng_bvn), true),
        (d("IdAuthorityDataStale", "warning", &[("country", "NG"), ("id_type", "NIN_V2")]), true),
        (d("IdAuthExporterStalled", "critical", &[]), true),
        (d("IdAuthExporterReplicaDown", "warning", &[("instance", "10.0.0.1:9877")]), true),
        (d("IdAuthExporterReplicaStalled", "warning", &[("instance", "10.0.0.2:9877")]), true),
        (d("IdAuthExporterPollsFailing", "warning", &[("instance", "10.0.0.2:9877")]), true),
        (d("IdAuthExporterUnauthorized", "critical", &[]), true),
        (d("IdAuthExporterBlind", "critical", &[]), true),
        // ...but an open offline page stays open.
        (d("IdAuthorityOffline", "critical", &[("country", "KE"), ("id_type", "NATIONAL_ID")]), false),
        // Cluster us has the same job name and is watched: nothing of it is muted.
        (us("IdAuthorityStatusUnknown", "warning", &ng_bvn), false),
        // One replica down mutes no other replica's alerts.
        (us("IdAuthExporterReplicaDown", "warning", &[("instance", "10.1.0.1:9877")]), false),
        (us("IdAuthExporterPollsFailing", "warning", &[("instance", "10.1.0.2:9877")]), false),
        (us("IdAuthorityOffline", "critical", &ng_bvn), false),
        // An offline authority is not also notified as degraded or flapping...
        (us("IdAuthorityDegraded", "warning", &ng_bvn), true),
        (us("IdAuthorityFlapping", "warning", &ng_bvn), true),
        // ...but another authority, or the same one in another cluster, is.
        (us("IdAuthorityDegraded", "warning", &[("country", "NG"), ("id_type", "NIN_V2")]), false),
        (d("IdAuthorityDegraded", "warning", &ng_bvn), false),
        // Credentials refused: unknown states and failing polls are that, and nothing else.
        (ke("IdAuthExporterUnauthorized", "critical", &[]), false),
        (ke("IdAuthorityStatusUnknown", "warning", &[("country", "KE"), ("id_type", "NATIONAL_ID")]), true),
        (ke("IdAuthExporterPollsFailing", "warning", &[("instance", "10.2.0.1:9877")]), true),
        (ke("IdAuthorityDataStale", "warning", &[("country", "KE"), ("id_type", "NATIONAL_ID")]), true),
        // Cluster ap is blind (no poll succeeds: the provider unreachable, or crash loops):
        // its page alone, not one warning per unknown pair or failing replica...
        (ap("IdAuthExporterBlind", "critical", &[]), false),
        (ap("IdAuthorityStatusUnknown", "warning", &ng_bvn), true),
        (ap("IdAuthorityDataStale", "warning", &[("country", "GH"), ("id_type", "GHANA_CARD")]), true),
        (ap("IdAuthExporterPollsFailing", "warning", &[("instance", "10.3.0.1:9877")]), true),
        (ap("IdAuthExporterReplicaStalled", "warning", &[("instance", "10.3.0.2:9877")]), true),
        // ...but its open pages, a replica down and a pair no longer watched still speak.
        (ap("IdAuthorityOffline", "critical", &[("country", "ZA"), ("id_type", "NATIONAL_ID")]), false),
        (ap("IdAuthExporterReplicaDown", "warning", &[("instance", "10.3.0.3:9877")]), false),
        (ap("IdAuthorityNoLongerWatched", "info", &[("country", "UG"), ("id_type", "NIN")]), false),
        // Cluster sa, env prod: the scheduler is stuck, so stale data is not the provider's
        // fault; the same cluster's env staging is another deployment, and keeps its alert.
        (sa("IdAuthExporterStalled", "critical", "prod", &[]), false),
        (sa("IdAuthorityDataStale", "warning", "prod", &ng_bvn), true),
        (sa("IdAuthorityDataStale", "warning", "staging", &ng_bvn), false),
        // The same alerts without a source: nothing muted (other job names).
        (
            a(
                "IdAuthorityStatusUnknown",
                "warning",
                &[("job", "idauth-exporter"), ("country", "GH"), ("id_type", "GHANA_CARD")],
            ),
            false,
        ),
        (a("IdAuthExporterPollsFailing", "warning", &[("job", "idauth-exporter"), ("instance", "x:9877")]), false),
    ]
}

fn key(labels: &[(&str, &str)]) -> String {
    let mut l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    l.sort();
    l.join(",")
}

#[test]
fn the_inhibitions_mute_only_what_they_are_about() {
    let am = start_alertmanager();
    let url = format!("--alertmanager.url={}", am.url);
    let cases = cases();
    for (labels, _) in &cases {
        let mut args = vec!["alert".to_owned(), "add".to_owned(), url.clone(), "--annotation=summary=test".to_owned()];
        args.extend(labels.iter().map(|(k, v)| format!("{k}={v}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out) = amtool(&args);
        assert!(ok, "{out}");
    }
    let expected: Vec<(String, bool)> = cases.iter().map(|(l, muted)| (key(l), *muted)).collect();
    // The inhibitor takes the alerts in asynchronously: wait until what it reports settles
    // on the expectation (polled, up to 30 s), and show the difference if it never does.
    let began = Instant::now();
    loop {
        let (ok, out) = amtool(&["alert", "query", "--active", "--inhibited", "--output=json", &url]);
        assert!(ok, "{out}");
        let alerts: Vec<Value> = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        let mut got: Vec<(String, bool)> = alerts
            .iter()
            .map(|a| {
                let labels: Vec<(&str, &str)> =
                    a["labels"].as_object().unwrap().iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap())).collect();
                let muted = !a["status"]["inhibitedBy"].as_array().unwrap().is_empty();
                (key(&labels), muted)
            })
            .collect();
        got.sort();
        let mut want = expected.clone();
        want.sort();
        if got == want {
            break;
        }
        if began.elapsed() > Duration::from_secs(30) {
            let wrong: Vec<String> = want
                .iter()
                .filter(|w| !got.contains(w))
                .map(|(k, muted)| format!("{k}: expected {}", if *muted { "inhibited" } else { "not inhibited" }))
                .collect();
            panic!("the inhibitions disagree:\n{}", wrong.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------- grouping

/// Adds one alert to a running Alertmanager with amtool.
fn add_alert(url: &str, labels: &[(&str, &str)], description: &str) {
    let mut args = vec![
        "alert".to_owned(),
        "add".to_owned(),
        url.to_owned(),
        "--annotation=summary=test".to_owned(),
        format!("--annotation=description={description}"),
    ];
    args.extend(labels.iter().map(|(k, v)| format!("{k}={v}")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = amtool(&args);
    assert!(ok, "{out}");
}

#[test]
fn storms_make_one_page_per_country_and_one_chat_message_per_alert() {
    let am = start_alertmanager();
    let url = format!("--alertmanager.url={}", am.url);
    let job = ("job", "idauth-exporter");
    // Six NG ID types offline at once in cluster eu, KE NATIONAL_ID too; NG BVN in us.
    let ng = ["BVN", "NIN_V2", "NIN_SLIP", "PHONE_NUMBER", "BANK_ACCOUNT", "DRIVERS_LICENSE"];
    for t in ng {
        let labels = [
            ("alertname", "IdAuthorityOffline"),
            ("severity", "critical"),
            ("cluster", "eu"),
            job,
            ("country", "NG"),
            ("id_type", t),
        ];
        add_alert(&url, &labels, &format!("{t} offline"));
    }
    let ke = [
        ("alertname", "IdAuthorityOffline"),
        ("severity", "critical"),
        ("cluster", "eu"),
        job,
        ("country", "KE"),
        ("id_type", "NATIONAL_ID"),
    ];
    add_alert(&url, &ke, "KE offline");
    let us = [
        ("alertname", "IdAuthorityOffline"),
        ("severity", "critical"),
        ("cluster", "us"),
        job,
        ("country", "NG"),
        ("id_type", "BVN"),
    ];
    add_alert(&url, &us, "NG BVN offline in us");
    // Nobody watching in cluster ap: a page without a country.
    add_alert(&url, &[("alertname", "IdAuthExporterBlind"), ("severity", "critical"), ("cluster", "ap"), job], "blind");
    // Twenty pairs discovered at once with no provider data, and the replica whose polls fail.
    let pairs: Vec<(String, String)> = (0..20).map(|i| (format!("X{}", i / 4), format!("TYPE_{}", i % 4))).collect();
    for (c, t) in &pairs {
        let labels = [
            ("alertname", "IdAuthorityStatusUnknown"),
            ("severity", "warning"),
            ("cluster", "eu"),
            job,
            ("country", c.as_str()),
            ("id_type", t.as_str()),
        ];
        add_alert(&url, &labels, &format!("{c} {t} unknown"));
    }
    let failing = [
        ("alertname", "IdAuthExporterPollsFailing"),
        ("severity", "warning"),
        ("cluster", "eu"),
        job,
        ("instance", "10.0.0.1:9877"),
    ];
    add_alert(&url, &failing, "polls fail");

    // (receiver, group labels, number of alerts), as Alertmanager groups them.
    let expected: Vec<(String, String, usize)> = vec![
        ("chat", "alertname=IdAuthExporterPollsFailing,cluster=eu,job=idauth-exporter", 1),
        ("chat", "alertname=IdAuthorityStatusUnknown,cluster=eu,job=idauth-exporter", 20),
        ("pager", "cluster=ap,job=idauth-exporter", 1),
        ("pager", "cluster=eu,country=KE,job=idauth-exporter", 1),
        ("pager", "cluster=eu,country=NG,job=idauth-exporter", 6),
        ("pager", "cluster=us,country=NG,job=idauth-exporter", 1),
    ]
    .into_iter()
    .map(|(r, l, n)| (r.to_owned(), l.to_owned(), n))
    .collect();
    let began = Instant::now();
    loop {
        let body = http_get(am.port, "/api/v2/alerts/groups").expect("GET /api/v2/alerts/groups");
        let groups: Vec<Value> = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        let mut got: Vec<(String, String, usize)> = groups
            .iter()
            .map(|g| {
                let labels = g["labels"].as_object().unwrap();
                let mut l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap())).collect();
                l.sort();
                (g["receiver"]["name"].as_str().unwrap().to_owned(), l.join(","), g["alerts"].as_array().unwrap().len())
            })
            .collect();
        got.sort();
        if got == expected {
            break;
        }
        assert!(began.elapsed() < Duration::from_secs(30), "the groups disagree:\n got {got:#?}\nwant {expected:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
