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
        assert_eq!(panel["datasource"]["type"], "prometheus", "{}: datasource", title(panel));
        assert!(
            panel["description"].as_str().is_some_and(|s| !s.is_empty()) || ty == "row",
            "{}: every panel says what it shows",
            title(panel)
        );
        if ty != "row" {
            assert!(!targets(panel).is_empty(), "{}: no targets", title(panel));
        }
        for target in targets(panel) {
            assert_eq!(target["datasource"]["uid"], DATASOURCE_UID, "{}: datasource of {target}", title(panel));
            assert_eq!(target["datasource"]["type"], "prometheus", "{}: datasource of {target}", title(panel));
            let expr = target["expr"].as_str().unwrap_or("");
            assert!(!expr.trim().is_empty(), "{}: a target without a query: {target}", title(panel));
        }
        // Colour is never the only signal: every value mapping has a text.
        for mapping in mappings(panel) {
            for (value, shown) in mapping["options"].as_object().into_iter().flatten() {
                assert!(
                    shown["text"].as_str().is_some_and(|t| !t.is_empty()),
                    "{}: the value mapping of {value:?} has no text",
                    title(panel)
                );
            }
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
    for name in ["cluster", "job", "instance", "country", "id_type"] {
        let v = variable(&d, name);
        assert_eq!(v["type"], "query", "variable {name}");
        assert_eq!(v["multi"], true, "variable {name} is multi-value");
        assert_eq!(v["includeAll"], true, "variable {name} has All");
        // `.*` also matches a series without the label: the queries work without a
        // cluster label, and ALERTS of the exporter (no country label) are kept.
        assert_eq!(v["allValue"], ".*", "variable {name}: All matches every value");
        assert_eq!(v["datasource"]["uid"], DATASOURCE_UID, "variable {name}");
        assert_eq!(v["current"]["value"][0], "$__all", "variable {name} defaults to All");
    }
}

/// Every value mapping of a panel: its defaults' and its overrides'.
fn mappings(panel: &Value) -> Vec<&Value> {
    let config = &panel["fieldConfig"];
    let mut out: Vec<&Value> = config["defaults"]["mappings"].as_array().into_iter().flatten().collect();
    for o in config["overrides"].as_array().into_iter().flatten() {
        for p in o["properties"].as_array().into_iter().flatten() {
            if p["id"] == "mappings" {
                out.extend(p["value"].as_array().into_iter().flatten());
            }
        }
    }
    out
}

fn panel<'a>(dashboard: &'a Value, title: &str) -> &'a Value {
    panels(dashboard).into_iter().find(|p| p["title"] == title).unwrap_or_else(|| panic!("no panel titled {title:?}"))
}

/// The names a PromQL expression mentions (metrics, functions, labels, keywords).
fn identifiers(expr: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let mut quoted = false;
    for (i, ch) in expr.char_indices() {
        if ch == '"' {
            quoted = !quoted;
        }
        let word = !quoted && (ch.is_ascii_alphanumeric() || ch == '_' || ch == ':');
        match (word, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(&expr[s..i]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(&expr[s..]);
    }
    out
}

/// The label lists of the `by (...)`/`without (...)` clauses of an expression.
fn grouping_clauses(expr: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for keyword in ["by", "without"] {
        let mut rest = expr;
        while let Some(at) = rest.find(keyword) {
            let before = rest[..at].chars().last();
            let after = &rest[at + keyword.len()..];
            rest = after;
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let trimmed = after.trim_start();
            if let Some(list) = trimmed.strip_prefix('(') {
                let list = &list[..list.find(')').unwrap_or(list.len())];
                out.push((keyword.to_owned(), list.split(',').map(|l| l.trim().to_owned()).collect()));
            }
        }
    }
    out
}

/// The exporter's series about an authority: one per replica. The dashboard reads them
/// only aggregated across replicas (or through the recording rules, which do that).
const PER_REPLICA_AUTHORITY_METRICS: &[&str] = &[
    "idauth_state",
    "idauth_state_since_timestamp_seconds",
    "idauth_success_rate_10m",
    "idauth_success_rate_1h",
    "idauth_last_checked_timestamp_seconds",
    "idauth_poll_success",
    "idauth_last_poll_success_timestamp_seconds",
];

/// The labels that differ between replicas of the exporter.
const REPLICA_LABELS: &[&str] = &["instance", "pod", "endpoint", "service", "container"];

#[test]
fn authority_queries_aggregate_across_replicas() {
    let d = dashboard();
    let mut replica_row = false;
    let mut authority_queries = 0;
    for panel in dashboard_panels_in_order(&d) {
        if panel["type"] == "row" {
            replica_row = panel["title"].as_str().is_some_and(|t| t.contains("replica"));
            continue;
        }
        for target in targets(panel) {
            let expr = target["expr"].as_str().unwrap();
            let names = identifiers(expr);
            let raw = names.iter().find(|n| PER_REPLICA_AUTHORITY_METRICS.contains(n));
            let rule = names.iter().any(|n| n.starts_with("country_id_type:"));
            if let Some(raw) = raw {
                let clauses = grouping_clauses(expr);
                assert!(
                    clauses
                        .iter()
                        .any(|(k, labels)| k == "by" && !labels.iter().any(|l| REPLICA_LABELS.contains(&l.as_str()))),
                    "{}: {raw} is one series per replica: aggregate it by authority (or use a recording rule): {expr}",
                    title(panel)
                );
            }
            if raw.is_some() || rule {
                authority_queries += 1;
                for (keyword, labels) in grouping_clauses(expr) {
                    assert!(
                        keyword == "by" && !labels.iter().any(|l| REPLICA_LABELS.contains(&l.as_str())),
                        "{}: an authority query keeps a replica's labels ({keyword} ({})): {expr}",
                        title(panel),
                        labels.join(", ")
                    );
                }
                let legend = target["legendFormat"].as_str().unwrap_or("");
                assert!(
                    !legend.contains("instance"),
                    "{}: an authority's legend names a replica: {legend}",
                    title(panel)
                );
            }
            if !replica_row {
                // Above the replica row, nothing is per replica.
                assert!(
                    !grouping_clauses(expr).iter().any(|(k, l)| k == "by" && l.iter().any(|l| l == "instance"))
                        || names.contains(&"ALERTS"),
                    "{}: a per-replica query above the replica row: {expr}",
                    title(panel)
                );
            }
        }
    }
    assert!(authority_queries >= 10, "only {authority_queries} queries about authorities");
}

/// Top-level panels sorted by position, with nested (collapsed) panels after their row.
fn dashboard_panels_in_order(dashboard: &Value) -> Vec<&Value> {
    let mut top: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().collect();
    top.sort_by_key(|p| (p["gridPos"]["y"].as_u64(), p["gridPos"]["x"].as_u64()));
    let mut out = Vec::new();
    for p in top {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

fn base_colour(thresholds: &Value) -> &str {
    let steps = thresholds["steps"].as_array().expect("threshold steps");
    assert!(steps[0]["value"].is_null(), "the first threshold step is the base: {thresholds}");
    steps[0]["color"].as_str().unwrap()
}

fn colour_at(thresholds: &Value, value: f64) -> &str {
    let mut colour = base_colour(thresholds);
    for step in thresholds["steps"].as_array().unwrap().iter().skip(1) {
        if step["value"].as_f64().is_some_and(|v| value >= v) {
            colour = step["color"].as_str().unwrap();
        }
    }
    colour
}

#[test]
fn state_tiles_are_coloured_by_value() {
    let d = dashboard();
    for (name, code, alarm) in [("Offline", 2, "red"), ("Interruption", 1, "orange"), ("Unknown", 3, "")] {
        let tile = panel(&d, name);
        assert_eq!(tile["type"], "stat");
        let expr = targets(tile)[0]["expr"].as_str().unwrap();
        assert!(
            expr.contains("country_id_type:idauth_state:code") && expr.contains(&format!("== {code}")),
            "{name}: counts the authorities in that state: {expr}"
        );
        assert!(expr.contains("or vector(0)"), "{name}: shows 0, not \"No data\", when none is in that state: {expr}");
        let defaults = &tile["fieldConfig"]["defaults"];
        assert_eq!(defaults["color"]["mode"], "thresholds", "{name}: coloured by value");
        let thresholds = &defaults["thresholds"];
        let zero = colour_at(thresholds, 0.0);
        assert!(!["red", "orange", "dark-red", "semi-dark-red"].contains(&zero), "{name}: 0 is shown {zero}, an alarm");
        let one = colour_at(thresholds, 1.0);
        assert_ne!(one, zero, "{name}: 1 is not coloured apart from 0");
        if !alarm.is_empty() {
            assert_eq!(one, alarm, "{name}: 1 or more is {alarm}");
        }
    }
}

#[test]
fn state_table_lists_the_worst_first() {
    let d = dashboard();
    let table = panel(&d, "Current state");
    assert_eq!(table["type"], "table");
    assert_eq!(table["options"]["sortBy"][0]["displayName"], "State", "sorted by state");
    assert_eq!(table["options"]["sortBy"][0]["desc"], true, "the greatest State value first");

    // The State column's values, from its mapping: offline > unknown > interruption > online.
    let state = table["fieldConfig"]["overrides"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["matcher"]["options"] == "State")
        .expect("an override for the State column");
    let mapping =
        state["properties"].as_array().unwrap().iter().find(|p| p["id"] == "mappings").expect("State mappings");
    let options = mapping["value"][0]["options"].as_object().unwrap();
    let value_of = |text: &str| -> f64 {
        let (value, _) =
            options.iter().find(|(_, v)| v["text"] == text).unwrap_or_else(|| panic!("no {text:?} mapping"));
        value.parse().unwrap()
    };
    let order = ["offline", "unknown", "interruption", "online"];
    for pair in order.windows(2) {
        assert!(value_of(pair[0]) > value_of(pair[1]), "{} sorts before {}", pair[0], pair[1]);
    }

    // The column is computed from the state code: offline (2) -> 3, unknown (3) -> 2.
    let expr = targets(table)[0]["expr"].as_str().unwrap();
    assert!(expr.contains("country_id_type:idauth_state:code"), "the State column: {expr}");
    assert!(expr.contains("== 2) + 1") && expr.contains("== 3) - 1"), "the State column ranks the worst first: {expr}");

    // "Since" as a time (milliseconds for Grafana) and as a duration.
    let columns: Vec<&str> = table["transformations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "organize")
        .expect("an organize transformation")["options"]["renameByName"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_str)
        .collect();
    for column in ["State", "Since", "For", "Success 10m", "Success 1h"] {
        assert!(columns.contains(&column), "the state table has a {column:?} column: {columns:?}");
    }
    let unit_of = |column: &str| {
        table["fieldConfig"]["overrides"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["matcher"]["options"] == column)
            .and_then(|o| o["properties"].as_array().unwrap().iter().find(|p| p["id"] == "unit"))
            .map(|p| p["value"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no unit for {column}"))
    };
    assert!(unit_of("Since").starts_with("dateTime"), "Since is a time");
    assert!(unit_of("For").starts_with("dt") || unit_of("For") == "s", "For is a duration");
    assert_eq!(unit_of("Success 10m"), "percentunit");
    assert!(
        targets(table).iter().any(|t| t["expr"].as_str().unwrap().starts_with("1000 * ")
            && t["expr"].as_str().unwrap().contains("idauth_state_since")),
        "Since is in milliseconds, as Grafana's time units want"
    );
}

#[test]
fn firing_alerts_link_to_their_runbooks() {
    let d = dashboard();
    let table = panels(&d)
        .into_iter()
        .find(|p| p["type"] == "table" && targets(p).iter().any(|t| t["expr"].as_str().unwrap().contains("ALERTS{")))
        .expect("a table of the firing alerts");
    let expr = targets(table)[0]["expr"].as_str().unwrap();
    assert!(expr.contains(r#"alertstate="firing""#) && expr.contains(r#"alertname=~"IdAuth.*""#), "{expr}");
    for alert in ["IdAuthorityOffline", "IdAuthExporterDown"] {
        assert!(
            expr.contains(r#""runbook_url", "https://"#) && expr.contains(&format!(r#""alertname", "{alert}")"#)),
            "the runbook of {alert} is set on its row: {expr}"
        );
    }
    let links: Vec<&Value> = table["fieldConfig"]["overrides"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| o["properties"].as_array().unwrap())
        .filter(|p| p["id"] == "links")
        .flat_map(|p| p["value"].as_array().unwrap())
        .collect();
    assert!(!links.is_empty(), "the alerts table has data links");
    for link in links {
        assert!(link["url"].as_str().is_some_and(|u| u.starts_with("${__")), "a link to the row's runbook: {link}");
    }
}

#[test]
fn units_are_readable() {
    let d = dashboard();
    for panel in panels(&d) {
        let unit = panel["fieldConfig"]["defaults"]["unit"].as_str().unwrap_or("");
        let exprs: Vec<&str> = targets(panel).iter().map(|t| t["expr"].as_str().unwrap()).collect();
        if exprs.iter().any(|e| e.contains("rate(idauth_poll"))
            && !exprs.iter().any(|e| e.contains("histogram_quantile"))
        {
            assert!(
                unit.contains("/h") || unit.contains("/min") || unit == "opm" || unit == "percentunit",
                "{}: polls per hour or per minute, not {unit:?}",
                title(panel)
            );
        }
        if exprs.iter().any(|e| e.contains("success_rate") || e.contains("availability") || e.contains(":ratio"))
            && panel["type"] != "table"
        {
            assert_eq!(unit, "percentunit", "{}: a ratio", title(panel));
        }
        if exprs.iter().any(|e| e.starts_with("time() - ") || e.contains("duration_seconds"))
            && panel["type"] != "table"
        {
            assert!(unit == "s" || unit.starts_with("dt"), "{}: a duration in seconds, not {unit:?}", title(panel));
        }
    }
}

/// `$name` and `${name...}` in a string.
fn variables_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let (name, braced) = match rest.strip_prefix('{') {
            Some(inner) => (inner, true),
            None => (rest, false),
        };
        let end = name.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(name.len());
        if end > 0 && (braced || !name[..end].chars().all(|c| c.is_ascii_digit())) {
            out.push(name[..end].to_owned());
        }
    }
    out
}

#[test]
fn every_variable_used_is_defined() {
    let d = dashboard();
    let defined: HashSet<String> =
        d["templating"]["list"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap().to_owned()).collect();
    fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::String(s) => out.push(s),
            Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
            Value::Object(m) => m.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    strings(&d["panels"], &mut all);
    strings(&d["templating"], &mut all);
    let mut used = HashSet::new();
    for s in all {
        for name in variables_in(s) {
            if name.starts_with("__") {
                continue; // Grafana's own: $__rate_interval, $__range, ${__data...}, ${__value...}, $__all
            }
            assert!(defined.contains(&name), "${name} is used but not defined (in {s:?})");
            used.insert(name);
        }
    }
    for name in ["datasource", "cluster", "job", "instance", "country", "id_type"] {
        assert!(used.contains(name), "the variable {name} is missing or no query uses it");
    }
}

/// The dashboard's queries with Grafana's variables replaced by what Prometheus would see.
fn queries(dashboard: &Value) -> Vec<(String, String)> {
    const SUBSTITUTIONS: &[(&str, &str)] = &[
        ("$cluster", ".*"),
        ("$job", ".*"),
        ("$instance", ".*"),
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
