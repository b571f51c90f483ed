//! The Grafana dashboard (grafana/dashboards/idauth-overview.json) and its provisioning
//! files: the dashboard's structure, and every PromQL query in it parsed by
//! `promtool check rules` (Debian's `prometheus` package). The promtool test fails, never
//! skips, when promtool is missing.

use std::collections::HashSet;
use std::process::Command;

use serde_json::Value;

const DASHBOARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/grafana/dashboards/idauth-overview.json");
const DATASOURCES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/grafana/provisioning/datasources/prometheus.yaml");
const PROVIDERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/grafana/provisioning/dashboards/idauth.yaml");

/// Grafana's built-in panel types.
const PANEL_TYPES: &[&str] = &[
    "stat",
    "state-timeline",
    "table",
    "timeseries",
    "bargauge",
    "gauge",
    "row",
    "text",
    "barchart",
    "heatmap",
    "piechart",
    "status-history",
    "logs",
    "nodeGraph",
    "histogram",
    "news",
    "dashlist",
    "alertlist",
    "annolist",
    "canvas",
    "geomap",
    "trend",
    "xychart",
    "flamegraph",
    "traces",
    "datagrid",
];

const DATASOURCE_UID: &str = "${datasource}";

fn dashboard() -> Value {
    let text = std::fs::read_to_string(DASHBOARD).unwrap_or_else(|e| panic!("reading {DASHBOARD}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD} is not valid JSON: {e}"))
}

/// Every panel, those nested in (collapsed) rows included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in list.as_array().expect("`panels` is an array") {
            out.push(panel);
            if let Some(nested) = panel.get("panels") {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

fn title(panel: &Value) -> String {
    format!("panel {} ({:?})", panel["id"], panel["title"].as_str().unwrap_or(""))
}

fn targets(panel: &Value) -> &[Value] {
    panel.get("targets").and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn variable<'a>(dashboard: &'a Value, name: &str) -> &'a Value {
    dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list is an array")
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no template variable {name:?}"))
}

#[derive(Debug, Clone, Copy)]
struct Rect {
    x: u64,
    y: u64,
    w: u64,
    h: u64,
}

impl Rect {
    fn of(panel: &Value) -> Rect {
        let pos = &panel["gridPos"];
        let get = |k: &str| pos[k].as_u64().unwrap_or_else(|| panic!("{}: gridPos.{k} is missing", title(panel)));
        Rect { x: get("x"), y: get("y"), w: get("w"), h: get("h") }
    }

    fn overlaps(&self, other: &Rect) -> bool {
        self.x < other.x + other.w
            && other.x < self.x + self.w
            && self.y < other.y + other.h
            && other.y < self.y + self.h
    }
}

#[test]
fn dashboard_structure() {
    let d = dashboard();
    assert_eq!(d["uid"], "idauth-overview");
    assert_eq!(d["title"], "ID authorities (Smile ID)");
    assert_eq!(d["schemaVersion"], 39);
    assert_eq!(d["refresh"], "1m");
    assert_eq!(d["time"]["from"], "now-6h");
    assert!(d["tags"].as_array().is_some_and(|t| !t.is_empty()), "the dashboard has tags");

    let all = panels(&d);
    assert!(!all.is_empty(), "the dashboard has panels");

    let mut ids = HashSet::new();
    for panel in &all {
        let ty = panel["type"].as_str().unwrap_or_else(|| panic!("{}: no type", title(panel)));
        assert!(PANEL_TYPES.contains(&ty), "{}: {ty:?} is not a built-in Grafana panel type", title(panel));
        let id = panel["id"].as_u64().unwrap_or_else(|| panic!("{}: no numeric id", title(panel)));
        assert!(ids.insert(id), "panel id {id} is used twice");
        let rect = Rect::of(panel);
        assert!(rect.w > 0 && rect.h > 0, "{}: empty gridPos {rect:?}", title(panel));
        assert!(rect.x + rect.w <= 24, "{}: gridPos {rect:?} is wider than 24 columns", title(panel));
        assert_eq!(panel["datasource"]["uid"], DATASOURCE_UID, "{}: datasource", title(panel));
        if ty != "row" {
            assert!(!targets(panel).is_empty(), "{}: no targets", title(panel));
        }
        for target in targets(panel) {
            assert_eq!(target["datasource"]["uid"], DATASOURCE_UID, "{}: datasource of {target}", title(panel));
            assert_eq!(target["datasource"]["type"], "prometheus", "{}: datasource of {target}", title(panel));
            let expr = target["expr"].as_str().unwrap_or("");
            assert!(!expr.trim().is_empty(), "{}: a target without a query: {target}", title(panel));
        }
    }

    let laid_out: Vec<_> = all.iter().filter(|p| p["type"] != "row").map(|p| (title(p), Rect::of(p))).collect();
    for (i, (a, ra)) in laid_out.iter().enumerate() {
        for (b, rb) in &laid_out[i + 1..] {
            assert!(!ra.overlaps(rb), "{a} {ra:?} overlaps {b} {rb:?}");
        }
    }

    let ds = variable(&d, "datasource");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    let job = variable(&d, "job");
    assert_eq!(job["datasource"]["uid"], DATASOURCE_UID);
    for name in ["country", "id_type"] {
        let v = variable(&d, name);
        assert_eq!(v["type"], "query", "variable {name}");
        assert_eq!(v["multi"], true, "variable {name} is multi-value");
        assert_eq!(v["includeAll"], true, "variable {name} has All");
        assert_eq!(v["allValue"], ".*", "variable {name}: All matches every value");
        assert_eq!(v["datasource"]["uid"], DATASOURCE_UID, "variable {name}");
    }
}

/// The dashboard's queries with Grafana's variables replaced by what Prometheus would see.
fn queries(dashboard: &Value) -> Vec<(String, String)> {
    const SUBSTITUTIONS: &[(&str, &str)] = &[
        ("$job", ".*"),
        ("$country", ".*"),
        ("$id_type", ".*"),
        ("$__rate_interval", "5m"),
        ("$__range", "6h"),
        ("$__interval", "1m"),
    ];
    let mut out = Vec::new();
    for panel in panels(dashboard) {
        for target in targets(panel) {
            let mut expr = target["expr"].as_str().unwrap_or("").to_owned();
            for (var, value) in SUBSTITUTIONS {
                expr = expr.replace(&format!("${{{}}}", &var[1..]), value).replace(var, value);
            }
            assert!(!expr.contains('$'), "{}: a variable left unreplaced in {expr:?}", title(panel));
            out.push((format!("{} target {}", title(panel), target["refId"]), expr));
        }
    }
    out
}

#[test]
fn promtool_parses_every_query() {
    let queries = queries(&dashboard());
    assert!(queries.len() >= 10, "only {} queries found", queries.len());

    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, expr)) in queries.iter().enumerate() {
        let quoted = serde_json::to_string(expr).unwrap();
        rules.push_str(&format!("      - record: dashboard:query_{i}:check\n        expr: {quoted}\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard-queries.yaml");
    std::fs::write(&file, &rules).unwrap();

    let out = match Command::new("promtool").arg("check").arg("rules").arg(&file).output() {
        Ok(out) => out,
        Err(e) => panic!(
            "promtool is needed for this test ({e}); install Debian's `prometheus` package \
             (`apt-get install prometheus`; ./scripts/test installs it)"
        ),
    };
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let listing: String =
        queries.iter().enumerate().map(|(i, (what, expr))| format!("query_{i}: {what}: {expr}\n")).collect();
    assert!(out.status.success(), "promtool check rules failed:\n{report}\nqueries:\n{listing}");
    assert!(
        report.contains(&format!("{} rules found", queries.len())),
        "promtool did not check every query:\n{report}\nqueries:\n{listing}"
    );
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}"))
}

#[test]
fn provisioning_files() {
    let text = std::fs::read_to_string(DATASOURCES).unwrap_or_else(|e| panic!("reading {DATASOURCES}: {e}"));
    assert!(text.contains("uid: prometheus"), "{DATASOURCES} provisions the uid the dashboard defaults to");
    let sources = yaml(DATASOURCES);
    assert_eq!(sources["apiVersion"], 1);
    let source = &sources["datasources"][0];
    assert_eq!(source["name"], "Prometheus");
    assert_eq!(source["type"], "prometheus");
    assert_eq!(source["uid"], "prometheus");
    assert_eq!(source["url"], "http://prometheus:9090");
    assert_eq!(source["isDefault"], true);
    let d = dashboard();
    assert_eq!(variable(&d, "datasource")["current"]["value"], "prometheus", "the dashboard's default data source");

    let text = std::fs::read_to_string(PROVIDERS).unwrap_or_else(|e| panic!("reading {PROVIDERS}: {e}"));
    assert!(text.contains("path: /var/lib/grafana/dashboards"), "{PROVIDERS} reads where dashboards are mounted");
    let providers = yaml(PROVIDERS);
    assert_eq!(providers["apiVersion"], 1);
    let provider = &providers["providers"][0];
    assert_eq!(provider["name"], "idauth");
    assert_eq!(provider["folder"], "ID authorities");
    assert_eq!(provider["type"], "file");
    assert_eq!(provider["allowUiUpdates"], false);
    assert_eq!(provider["options"]["path"], "/var/lib/grafana/dashboards");
    assert_eq!(provider["options"]["foldersFromFilesStructure"], false);
}
