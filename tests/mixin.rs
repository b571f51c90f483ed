//! The monitoring mixin (deploy/mixin, jsonnet) is the source of the shipped alerts,
//! recording rules, PrometheusRule and dashboard: the rendered files must not drift from
//! it, and a user's `_config` must reach every rule. Needs `jsonnet` (Debian package
//! `jsonnet`) and fails, never skips, when it is missing.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Evaluates a jsonnet snippet with deploy/mixin on the library path.
fn jsonnet(code: &str) -> Value {
    let out = Command::new("jsonnet")
        .args(["-J", "deploy/mixin", "-e", code])
        .current_dir(ROOT)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "jsonnet is needed for this test ({e}); install it with `apt-get install jsonnet` (./scripts/test does)"
            )
        });
    assert!(out.status.success(), "jsonnet: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every rule of a rendered rule set, flattened.
fn rules(set: &Value) -> Vec<&Value> {
    set["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap()).collect()
}

#[test]
fn rendered_files_match_the_mixin() {
    let out = Command::new("python3")
        .args([Path::new(ROOT).join("scripts/sync-deploy").to_str().unwrap(), "--check"])
        .output()
        .expect("python3 runs scripts/sync-deploy");
    assert!(
        out.status.success(),
        "the rendered files drifted from deploy/mixin: run scripts/sync-deploy\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The rule (alert or recording rule) of that name.
fn rule<'a>(set: &'a Value, name: &str) -> &'a Value {
    rules(set)
        .into_iter()
        .find(|r| r.get("alert").or(r.get("record")).and_then(Value::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no rule {name}"))
}

#[test]
fn rules_aggregate_away_replicas_and_keep_every_other_label() {
    let mixin = jsonnet("local m = import 'mixin.libsonnet'; { alerts: m.prometheusAlerts, rules: m.prometheusRules }");
    let all: Vec<&Value> = rules(&mixin["alerts"]).into_iter().chain(rules(&mixin["rules"])).collect();
    assert!(all.len() > 10);
    for rule in all {
        let expr = rule["expr"].as_str().unwrap();
        let name = rule.get("alert").or(rule.get("record")).unwrap().as_str().unwrap();
        // `by (...)` keeps only the labels it names: a user's cluster, env or region
        // label would be lost, and two clusters merged into one alert.
        assert!(!expr.contains(" by ("), "{name} aggregates by named labels: {expr}");
        if name.starts_with("IdAuthority") || name.starts_with("country_id_type") || name.starts_with("job:") {
            // Either it reads recording rules only, or it aggregates the replicas away.
            let raw = expr.match_indices("idauth_").any(|(i, _)| !expr[..i].ends_with(':')) || expr.contains("up{");
            assert!(
                !raw || expr.contains("without (instance, pod, node, container, endpoint, service"),
                "{name} does not aggregate replicas: {expr}"
            );
        }
    }
}

#[test]
fn a_users_config_reaches_every_rule_and_the_prometheus_rule() {
    let custom = jsonnet(
        "local m = (import 'mixin.libsonnet') + { _config+:: {
           selector: 'job=\"kyc-watch\"',
           replicaLabels+: ['pod_ip'],
           groupLabels: ['cluster', 'job'],
           offlineConfirmationPolls: 3,
           pollPeriodSeconds: 300,
           prometheusRuleLabels+: { release: 'kube-prometheus-stack' },
           runbookURLPattern: 'https://wiki.example.com/idauth#%s',
         } };
         { alerts: m.prometheusAlerts, rules: m.prometheusRules, config: m._config }",
    );
    let alerts = rules(&custom["alerts"]);
    let offline = alerts.iter().find(|a| a["alert"] == "IdAuthorityOffline").unwrap();
    // Three polls of 300 s: the first and the newest check 600 s apart, less half a period.
    let incident = rule(&custom["rules"], "country_id_type:idauth_offline_incident_start:timestamp_seconds");
    assert!(incident["expr"].as_str().unwrap().contains(">= 450"), "{incident}");
    assert_eq!(offline["annotations"]["runbook_url"], "https://wiki.example.com/idauth#idauthorityoffline");
    // The descriptions query the alert's own series by every label it has (cluster and
    // whatever else the user's series carry), not by a fixed list.
    let description = offline["annotations"]["description"].as_str().unwrap();
    assert!(
        description.contains("range $k, $v := $labels") && description.contains("printf `{__name__="),
        "{description}"
    );
    for rule in alerts.iter().chain(rules(&custom["rules"]).iter()) {
        let expr = rule["expr"].as_str().unwrap();
        assert!(!expr.contains("idauth-exporter"), "the default selector is left in {expr}");
        if expr.contains("without (instance") {
            assert!(expr.contains("without (instance, pod, node, container, endpoint, service, pod_ip"), "{expr}");
        }
    }
    let stalled = alerts.iter().find(|a| a["alert"] == "IdAuthExporterStalled").unwrap();
    assert!(stalled["expr"].as_str().unwrap().ends_with("> 900"), "two periods of 300 s and 5 minutes: {stalled}");
    assert_eq!(custom["config"]["prometheusRuleLabels"]["release"], "kube-prometheus-stack");

    let rendered: Value =
        jsonnet("local r = import 'render.jsonnet'; { rule: r['deploy/kubernetes/prometheusrule.yaml'] }");
    assert!(rendered["rule"].as_str().unwrap().contains("kind: \"PrometheusRule\""));
}

#[test]
fn the_confirmation_and_recovery_policies_are_settings() {
    let threshold = |setting: &str, polls: u32, record: &str, before: &str| -> String {
        let v = jsonnet(&format!(
            "local m = (import 'mixin.libsonnet') + {{ _config+:: {{ {setting}: {polls} }} }};
             [r for g in m.prometheusRules.groups for r in g.rules if std.objectHas(r, 'record') && r.record == '{record}'][0].expr"
        ));
        let expr = v.as_str().unwrap();
        let at = expr.find(before).unwrap_or_else(|| panic!("{before} not in {expr}")) + before.len();
        expr[at..].split_whitespace().next().unwrap().to_owned()
    };
    let offline = |polls| {
        threshold(
            "offlineConfirmationPolls",
            polls,
            "country_id_type:idauth_offline_incident_start:timestamp_seconds",
            ">= ",
        )
    };
    assert_eq!(offline(1), "0", "one poll pages on the first offline check");
    assert_eq!(offline(2), "300", "two polls: checks 600 s apart, less half a period");
    assert_eq!(offline(4), "1500");
    let recovery = |polls| {
        threshold(
            "recoveryConfirmationPolls",
            polls,
            "country_id_type:idauth_offline_recovered:timestamp_seconds",
            "- ",
        )
    };
    assert_eq!(recovery(1), "300", "one poll resolves on the first online check");
    assert_eq!(recovery(2), "900", "two polls: the second online check, 1200 s after the last offline one");
}

#[test]
fn the_webhook_alerts_read_every_replica_and_their_thresholds_are_settings() {
    let custom = jsonnet(
        "local m = (import 'mixin.libsonnet') + { _config+:: {
           replicaLabels+: ['pod_ip'],
           webhookFailingAfterSeconds: 7200,
           webhookReplicaFailingForSeconds: 300,
           webhookLostWindowSeconds: 3600,
         } };
         { alerts: m.prometheusAlerts }",
    );
    let alerts = &custom["alerts"];
    let replicas = "without (instance, pod, node, container, endpoint, service, pod_ip)";
    // A receiver has a change once any replica delivered it: the receiver-side alert fires
    // only when every replica has waited (the minimum), ...
    let failing = rule(alerts, "IdAuthWebhookFailing");
    let expr = failing["expr"].as_str().unwrap();
    assert!(expr.starts_with(&format!("min {replicas} (")) && expr.ends_with("> 7200"), "{expr}");
    // ... and one replica waiting alone is named by another alert, after its own for:.
    let replica = rule(alerts, "IdAuthWebhookReplicaFailing");
    let expr = replica["expr"].as_str().unwrap();
    assert!(expr.contains("> 7200") && expr.contains("<= 7200") && expr.contains(&format!("min {replicas}")), "{expr}");
    assert_eq!(replica["for"], "5m");
    // Lost: every replica gave up within the window; a webhook removed on purpose is not a loss.
    let lost = rule(alerts, "IdAuthWebhookEventsLost");
    let expr = lost["expr"].as_str().unwrap();
    assert!(expr.starts_with(&format!("min {replicas} (")) && expr.contains("[1h]"), "{expr}");
    assert!(expr.contains(r#"reason=~"expired|overflow""#) && !expr.contains("removed"), "{expr}");
    for alert in [failing, replica, lost] {
        assert_eq!(alert["labels"]["severity"], "warning", "{alert}");
        let summary = alert["annotations"]["summary"].as_str().unwrap();
        assert!(summary.contains("{{ $labels.webhook }}"), "the summary names the webhook: {summary}");
    }
}
