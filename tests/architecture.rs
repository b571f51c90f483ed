//! The module layout keeps the data flow one way: no cycle between the crate's top-level
//! modules, and the simulator (a fake provider that also ships alone in the demo) uses
//! nothing of the exporter's runtime. Read from the sources, so a new `use` that closes a
//! cycle fails here with the cycle named.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// Every module of the crate (`store`, `web::http`, ...) and the modules its non-test code
/// names through `crate::` paths, each path resolved to the longest module it names.
fn modules() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    collect(Path::new(SRC), &mut files);
    let mut sources = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(SRC).unwrap().to_string_lossy().replace('\\', "/");
        let module = rel.trim_end_matches(".rs").trim_end_matches("/mod").replace('/', "::");
        if matches!(module.as_str(), "lib" | "main") || module.ends_with("::tests") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // Unit tests may reach anywhere: only the code before them counts.
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap().to_owned();
        sources.insert(module, code);
    }
    let known: BTreeSet<String> = sources.keys().cloned().collect();
    sources
        .iter()
        .map(|(module, code)| {
            let deps = named_paths(code)
                .into_iter()
                .filter_map(|path| {
                    let parts: Vec<&str> = path.split("::").collect();
                    (1..=parts.len()).rev().map(|n| parts[..n].join("::")).find(|m| known.contains(m))
                })
                .filter(|m| m != module)
                .collect();
            (module.clone(), deps)
        })
        .collect()
}

/// The same graph between top-level modules (`web::http` and `web::pages` are `web`).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let top = |m: &str| m.split("::").next().unwrap().to_owned();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, deps) in modules() {
        let entry = graph.entry(top(&module)).or_default();
        entry.extend(deps.iter().map(|d| top(d)).filter(|d| *d != top(&module)));
    }
    graph
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module paths named as `crate::a::b::Item` (in `use` lines, grouped `use crate::{a,
/// b::c}` and inline paths), comments left out: `a::b::Item`, `b::c`.
fn named_paths(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let code: String = code.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let path =
        |s: &str| -> String { s.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect() };
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let p = path(item.trim());
                if !p.is_empty() {
                    found.insert(p.trim_end_matches(':').to_owned());
                }
            }
        } else {
            let p = path(rest);
            // `crate::web::{self, Site}`: the path before the group.
            let p = p.trim_end_matches(':').to_owned();
            if !p.is_empty() {
                found.insert(p);
            }
        }
    }
    found
}

/// Every module reachable from `from`.
fn reachable(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_owned()];
    while let Some(m) = stack.pop() {
        for dep in graph.get(&m).into_iter().flatten() {
            if seen.insert(dep.clone()) {
                stack.push(dep.clone());
            }
        }
    }
    seen
}

/// A shortest path of imports from `from` to `to` (through at least one import).
fn path(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> Vec<String> {
    let mut prev: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from.to_owned()]);
    while let Some(m) = queue.pop_front() {
        for dep in graph.get(&m).into_iter().flatten() {
            if prev.contains_key(dep) {
                continue;
            }
            prev.insert(dep.clone(), m.clone());
            if dep == to {
                let mut p = vec![to.to_owned(), m.clone()];
                while p.last().unwrap() != from {
                    let back = prev[p.last().unwrap()].clone();
                    p.push(back);
                }
                p.reverse();
                return p;
            }
            queue.push_back(dep.clone());
        }
    }
    Vec::new()
}

#[test]
fn the_modules_import_each_other_without_a_cycle() {
    let graph = graph();
    assert!(graph.len() > 15, "the source tree was not read: {graph:?}");
    let cycles: Vec<String> =
        graph.keys().filter(|m| reachable(&graph, m).contains(*m)).map(|m| path(&graph, m, m).join(" -> ")).collect();
    assert!(cycles.is_empty(), "module cycles (each shown from one of its modules):\n{}", cycles.join("\n"));
}

#[test]
fn the_simulator_uses_nothing_of_the_exporter_runtime() {
    let modules = modules();
    let runtime = ["app", "metrics", "store", "history", "poller", "scheduler", "discovery", "smileid", "check", "web"];
    let mut used = reachable(&modules, "simulator");
    used.extend(reachable(&modules, "simulator::scenario"));
    assert!(used.contains("web::http"), "the simulator serves through the shared HTTP module: {used:?}");
    let wrong: Vec<String> = used
        .iter()
        .filter(|m| runtime.contains(&m.split("::").next().unwrap()) && *m != "web::http")
        .map(|m| path(&modules, "simulator", m).join(" -> "))
        .collect();
    assert!(wrong.is_empty(), "the simulator reaches the exporter's runtime:\n{}", wrong.join("\n"));
    let http = &modules["web::http"];
    assert!(http.is_empty(), "web::http is a leaf, shared with the simulator; it imports {http:?}");
}

/// The checker itself: it must see a cycle when there is one, or it proves nothing.
#[test]
fn the_checker_finds_a_planted_cycle_and_grouped_imports() {
    let names = named_paths(
        "use crate::{model::Target, store::Store};\nlet x = crate::web::http::bind; // crate::app\nuse crate::web::{self, Site};",
    );
    assert_eq!(
        names,
        BTreeSet::from(["model::Target".into(), "store::Store".into(), "web::http::bind".into(), "web".into()])
    );
    let graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::from([
        ("a".into(), BTreeSet::from(["b".into()])),
        ("b".into(), BTreeSet::from(["c".into()])),
        ("c".into(), BTreeSet::from(["a".into()])),
        ("d".into(), BTreeSet::from(["a".into()])),
    ]);
    assert!(reachable(&graph, "a").contains("a"));
    assert!(!reachable(&graph, "d").contains("d"));
    assert_eq!(path(&graph, "a", "a"), ["a", "b", "c", "a"]);
}
