//! The hypervisor's modules import each other without a circle: a module
//! can be read, tested and replaced knowing only what it imports.
//!
//! Each top-level module of `src/` (a folder counts as one, `arch` too) is a
//! node; `crate::<module>` in its non-test code, outside comments, is an edge
//! (a folder's `tests.rs` is test code).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// The `crate::` modules `text` imports, leaving out comments and the
/// `#[cfg(test)]` modules at the end of a file.
fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        let test_module = lines
            .peek()
            .is_some_and(|l| l.trim_start().starts_with("mod "));
        if t.starts_with("#[cfg(") && t.contains("test") && test_module {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        let code = t.split("//").next().unwrap_or("");
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

fn collect(dir: &Path, node: Option<&str>, graph: &mut BTreeMap<String, BTreeSet<String>>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let name = node.map_or(stem.clone(), str::to_string);
        if path.is_dir() {
            collect(&path, Some(&name), graph);
        } else if path.extension().is_some_and(|e| e == "rs")
            && !(node.is_none() && (stem == "lib" || stem == "main"))
            && stem != "tests"
        {
            let deps = imports(&fs::read_to_string(&path).unwrap());
            let set = graph.entry(name.clone()).or_default();
            set.extend(deps.into_iter().filter(|d| *d != name));
        }
    }
}

/// A circle through `graph`, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == n) {
            let mut cycle = path[at..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for d in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

/// Edges of a known circle, exempted until it is cut: delete an entry
/// once its edge is gone (the test fails while an entry names an edge that
/// no longer exists). None is left.
const KNOWN_EDGES: &[(&str, &str)] = &[];

#[test]
fn core_imports_have_no_circle() {
    let mut graph = BTreeMap::new();
    collect(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        None,
        &mut graph,
    );
    assert!(graph.contains_key("vcpu") && graph["vcpu"].contains("trace_buffer"));
    for (from, to) in KNOWN_EDGES {
        let deps = graph.get_mut(*from).unwrap();
        assert!(
            deps.remove(*to),
            "{from} no longer imports {to}: drop it from KNOWN_EDGES"
        );
    }
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import circle: {}", cycle.join(" -> "));
    }
    for (module, deps) in &graph {
        assert!(
            module == "arch" || !deps.contains("arch"),
            "the portable core imports arch: {module}"
        );
    }
}

#[test]
fn a_circle_is_found() {
    let mut graph = BTreeMap::new();
    let edge = |a: &str, b: &str| (a.to_string(), BTreeSet::from([b.to_string()]));
    graph.extend([edge("a", "b"), edge("b", "c"), edge("c", "a")]);
    assert_eq!(find_cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
    graph.insert("c".into(), BTreeSet::new());
    assert_eq!(find_cycle(&graph), None);
}
