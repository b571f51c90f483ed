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

#[test]
fn authority_rules_aggregate_away_replicas_by_default() {
    let mixin = jsonnet("local m = import 'mixin.libsonnet'; { alerts: m.prometheusAlerts, rules: m.prometheusRules }");
    let all: Vec<&Value> = rules(&mixin["alerts"]).into_iter().chain(rules(&mixin["rules"])).collect();
    assert!(all.len() > 10);
    for rule in all {
        let expr = rule["expr"].as_str().unwrap();
        let name = rule.get("alert").or(rule.get("record")).unwrap().as_str().unwrap();
        assert!(!expr.contains("by (instance") && !expr.contains("pod"), "{name} groups by a replica's label: {expr}");
        if name.starts_with("IdAuthority") || name.starts_with("country_id_type") {
            // Either it reads per-authority recording rules only, or it aggregates to the
            // authority itself.
            let raw = expr.match_indices("idauth_").any(|(i, _)| !expr[..i].ends_with(':'));
            assert!(!raw || expr.contains("by (job, country, id_type"), "{name} does not aggregate replicas: {expr}");
        }
    }
}

#[test]
fn a_users_config_reaches_every_rule_and_the_prometheus_rule() {
    let custom = jsonnet(
        "local m = (import 'mixin.libsonnet') + { _config+:: {
           selector: 'job=\"kyc-watch\"',
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
    let expr = offline["expr"].as_str().unwrap();
    assert!(expr.contains("on (cluster, job, country, id_type, state)"), "{expr}");
    // Three polls of 300 s: the first and the newest check 600 s apart, less half a period.
    assert!(expr.trim_end().ends_with(">= 450"), "{expr}");
    assert_eq!(offline["annotations"]["runbook_url"], "https://wiki.example.com/idauth#idauthorityoffline");
    assert!(
        offline["annotations"]["description"].as_str().unwrap().contains("cluster=%q,job=%q,country=%q,id_type=%q")
    );
    for rule in alerts.iter().chain(rules(&custom["rules"]).iter()) {
        let expr = rule["expr"].as_str().unwrap();
        assert!(!expr.contains("idauth-exporter"), "the default selector is left in {expr}");
    }
    let stalled = alerts.iter().find(|a| a["alert"] == "IdAuthExporterStalled").unwrap();
    assert!(stalled["expr"].as_str().unwrap().ends_with("> 900"), "two periods of 300 s and 5 minutes: {stalled}");
    assert_eq!(custom["config"]["prometheusRuleLabels"]["release"], "kube-prometheus-stack");

    let rendered: Value =
        jsonnet("local r = import 'render.jsonnet'; { rule: r['deploy/kubernetes/prometheusrule.yaml'] }");
    assert!(rendered["rule"].as_str().unwrap().contains("kind: \"PrometheusRule\""));
}

#[test]
fn the_confirmation_policy_is_a_setting() {
    let threshold = |polls: u32| -> String {
        let v = jsonnet(&format!(
            "local m = (import 'mixin.libsonnet') + {{ _config+:: {{ offlineConfirmationPolls: {polls} }} }};
             [r for g in m.prometheusAlerts.groups for r in g.rules if r.alert == 'IdAuthorityOffline'][0].expr"
        ));
        v.as_str().unwrap().trim_end().rsplit(' ').next().unwrap().to_owned()
    };
    assert_eq!(threshold(1), "0", "one poll pages on the first offline check");
    assert_eq!(threshold(2), "300", "two polls: checks 600 s apart, less half a period");
    assert_eq!(threshold(4), "1500");
}
