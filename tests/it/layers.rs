//! The source keeps its four layers: `core` uses nothing above it, `adapters` only
//! `core`, `operations` only the two below, `cli` anything; and no two modules use
//! each other, directly or round a longer loop. Read from the `crate::` paths in
//! `src/` (test modules left out), so a new upward `use` fails here with its file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const LAYERS: [&str; 4] = ["core", "adapters", "operations", "cli"];

/// A module as `layer::name`, e.g. `operations::verify` for every file under
/// `src/operations/verify/`.
type Module = (String, String);

fn rank(layer: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == layer)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file belongs to: its first two path components under `src/`.
fn module_of(src: &Path, file: &Path) -> Option<Module> {
    let relative = file.strip_prefix(src).ok()?;
    let mut parts = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string());
    let layer = parts.next()?;
    rank(&layer)?;
    let name = parts.next()?;
    Some((layer, name))
}

/// The code of a file without its `#[cfg(test)]` modules (tests may reach anywhere).
fn without_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod ") {
        Some(at) => &text[..at],
        None => text,
    }
}

/// Every `crate::layer::module` a piece of code names, including the ones inside
/// `use crate::layer::{a, b::c}` groups.
fn named_modules(code: &str) -> BTreeSet<Module> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let layer: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if rank(&layer).is_none() {
            continue;
        }
        let after = rest[layer.len()..].strip_prefix("::").unwrap_or("");
        if let Some(group) = after.strip_prefix('{') {
            for item in top_level_items(group) {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != "self" {
                    found.insert((layer.clone(), name));
                }
            }
        } else {
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert((layer, name));
            }
        }
    }
    found
}

/// The comma-separated items of a `{...}` group (its opening brace already
/// consumed), split only at its own level: `plan::{A, B}, yaml}` gives
/// `plan::{A, B}` and `yaml`.
fn top_level_items(group: &str) -> Vec<&str> {
    let (mut depth, mut start, mut items) = (0usize, 0usize, Vec::new());
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&group[start..]);
    items
}

/// Module -> the modules it names, and for each edge a file that makes it.
fn graph() -> BTreeMap<Module, BTreeMap<Module, PathBuf>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut edges: BTreeMap<Module, BTreeMap<Module, PathBuf>> = BTreeMap::new();
    for file in files {
        let Some(from) = module_of(&src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for to in named_modules(without_tests(&text)) {
            // A top-level item of a layer's `mod.rs` (e.g. `operations::ProfileChoice`)
            // belongs to the layer itself, which every module of it may use.
            let is_module = src.join(&to.0).join(format!("{}.rs", to.1)).exists()
                || src.join(&to.0).join(&to.1).is_dir();
            if to != from && is_module {
                edges
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| file.clone());
            }
        }
    }
    edges
}

#[test]
fn no_layer_uses_a_layer_above_it() {
    let mut upward = Vec::new();
    for (from, tos) in graph() {
        for (to, file) in tos {
            if rank(&to.0) > rank(&from.0) {
                upward.push(format!(
                    "{}::{} uses {}::{} ({})",
                    from.0,
                    from.1,
                    to.0,
                    to.1,
                    file.display()
                ));
            }
        }
    }
    assert!(upward.is_empty(), "upward uses:\n{}", upward.join("\n"));
}

#[test]
fn no_two_modules_use_each_other() {
    let edges = graph();
    // Tarjan's strongly connected components: any component of two or more
    // modules is a loop.
    struct State<'a> {
        edges: &'a BTreeMap<Module, BTreeMap<Module, PathBuf>>,
        index: BTreeMap<Module, usize>,
        low: BTreeMap<Module, usize>,
        stack: Vec<Module>,
        loops: Vec<Vec<Module>>,
    }
    fn visit(state: &mut State<'_>, module: &Module) {
        let n = state.index.len();
        state.index.insert(module.clone(), n);
        state.low.insert(module.clone(), n);
        state.stack.push(module.clone());
        let next: Vec<Module> = state
            .edges
            .get(module)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for to in next {
            if !state.index.contains_key(&to) {
                visit(state, &to);
                let low = state.low[module].min(state.low[&to]);
                state.low.insert(module.clone(), low);
            } else if state.stack.contains(&to) {
                let low = state.low[module].min(state.index[&to]);
                state.low.insert(module.clone(), low);
            }
        }
        if state.low[module] == state.index[module] {
            let mut component = Vec::new();
            while let Some(top) = state.stack.pop() {
                let done = &top == module;
                component.push(top);
                if done {
                    break;
                }
            }
            if component.len() > 1 {
                state.loops.push(component);
            }
        }
    }
    let mut state = State {
        edges: &edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        loops: Vec::new(),
    };
    let modules: Vec<Module> = edges.keys().cloned().collect();
    for module in &modules {
        if !state.index.contains_key(module) {
            visit(&mut state, module);
        }
    }
    let described: Vec<String> = state
        .loops
        .iter()
        .map(|component| {
            let names: Vec<String> = component
                .iter()
                .map(|(layer, name)| format!("{layer}::{name}"))
                .collect();
            names.join(" <-> ")
        })
        .collect();
    assert!(
        described.is_empty(),
        "modules that use each other:\n{}",
        described.join("\n")
    );
}

#[test]
fn the_reader_finds_grouped_and_plain_paths() {
    let code = "use crate::core::{plan::{A, B}, yaml};\nuse crate::adapters::docker::Docker;\nlet x = crate::operations::up::run_up;";
    let found = named_modules(code);
    let expected: BTreeSet<Module> = [
        ("core", "plan"),
        ("core", "yaml"),
        ("adapters", "docker"),
        ("operations", "up"),
    ]
    .into_iter()
    .map(|(l, n)| (l.to_string(), n.to_string()))
    .collect();
    assert_eq!(found, expected);
}

/// Whether `code` names the crate `name` itself (`bollard::…`, `use kube::…`), as
/// opposed to a devcluster module of the same name (`crate::adapters::kube::…`).
fn names_crate(code: &str, name: &str) -> bool {
    let pattern = format!("{name}::");
    code.match_indices(&pattern).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
    })
}

#[test]
fn only_adapters_name_docker_or_kubernetes_client_types() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let in_adapters = file.starts_with(src.join("adapters"));
        let text = std::fs::read_to_string(&file).unwrap();
        for name in ["bollard", "kube", "k8s_openapi"] {
            if !in_adapters && names_crate(without_tests(&text), name) {
                found.push(format!("{} names `{name}`", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
    assert!(names_crate("use kube::Api;", "kube"));
    assert!(!names_crate("use crate::adapters::kube::probe;", "kube"));
}
