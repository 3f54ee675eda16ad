//! The shape of src/, read from the code itself (no server):
//!
//! - imports run one way between the top-level modules (folders): the graph
//!   of `crate::…` paths from one module to another has no cycle, so a
//!   reader can follow the data flow (ARCHITECTURE.md) without circling;
//! - no function is longer than a screen (100 lines, signature to closing
//!   brace, comments included).
//!
//! Both parse every file with syn; a failure names the files and lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

const MAX_FUNCTION_LINES: usize = 100;

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level module a file of src/ belongs to (`None` for the crate
/// root, lib.rs and main.rs, which may import everything).
fn module_of(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    match first.as_str() {
        "lib.rs" | "main.rs" => None,
        f => Some(f.trim_end_matches(".rs").to_string()),
    }
}

fn parse(file: &Path) -> syn::File {
    let text = std::fs::read_to_string(file).unwrap();
    syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// The top-level modules a file names through `crate::…` paths, with the line of each.
#[derive(Default)]
struct CratePaths(Vec<(String, usize)>);

impl CratePaths {
    fn add(&mut self, first: &syn::Ident, second: Option<&syn::Ident>) {
        if first == "crate"
            && let Some(m) = second
        {
            self.0.push((m.to_string(), m.span().start().line));
        }
    }
}

impl<'a> Visit<'a> for CratePaths {
    fn visit_path(&mut self, p: &'a syn::Path) {
        let mut segs = p.segments.iter();
        if let Some(first) = segs.next() {
            self.add(&first.ident, segs.next().map(|s| &s.ident));
        }
        syn::visit::visit_path(self, p);
    }
    fn visit_use_path(&mut self, u: &'a syn::UsePath) {
        let second = match &*u.tree {
            syn::UseTree::Path(p) => vec![&p.ident],
            syn::UseTree::Name(n) => vec![&n.ident],
            syn::UseTree::Rename(r) => vec![&r.ident],
            syn::UseTree::Group(g) => g
                .items
                .iter()
                .filter_map(|t| match t {
                    syn::UseTree::Path(p) => Some(&p.ident),
                    syn::UseTree::Name(n) => Some(&n.ident),
                    syn::UseTree::Rename(r) => Some(&r.ident),
                    _ => None,
                })
                .collect(),
            syn::UseTree::Glob(_) => vec![],
        };
        for s in second {
            self.add(&u.ident, Some(s));
        }
        syn::visit::visit_use_path(self, u);
    }
}

/// module → module it imports → where (file:line), for every import across modules.
fn import_graph() -> BTreeMap<String, BTreeMap<String, String>> {
    let modules: BTreeSet<String> = rust_files(&src()).iter().filter_map(|f| module_of(f)).collect();
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in rust_files(&src()) {
        let Some(from) = module_of(&file) else { continue };
        let mut paths = CratePaths::default();
        paths.visit_file(&parse(&file));
        for (to, line) in paths.0 {
            if to != from && modules.contains(&to) {
                let rel = file.strip_prefix(src()).unwrap().display().to_string();
                graph.entry(from.clone()).or_default().entry(to).or_insert(format!("src/{rel}:{line}"));
            }
        }
    }
    graph
}

/// A cycle through `start`, if there is one (depth-first search).
fn cycle_from(graph: &BTreeMap<String, BTreeMap<String, String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeMap<String, String>>,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        let at = path.last().unwrap().clone();
        for next in graph.get(&at).into_iter().flat_map(|m| m.keys()) {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    walk(graph, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn imports_between_modules_run_one_way() {
    let graph = import_graph();
    assert!(graph.contains_key("report") && graph["report"].contains_key("run_record"), "the graph was not read");
    for module in graph.keys() {
        if let Some(cycle) = cycle_from(&graph, module) {
            let steps: Vec<String> =
                cycle.windows(2).map(|w| format!("{} → {} ({})", w[0], w[1], graph[&w[0]][&w[1]])).collect();
            panic!(
                "imports between modules form a cycle:\n  {}\nmove what both sides need into a leaf module \
                 (see ARCHITECTURE.md) or import it the other way",
                steps.join("\n  ")
            );
        }
    }
}

/// Every function (free, in an impl or a trait, nested) with its first and last line.
#[derive(Default)]
struct Functions(Vec<(String, usize, usize)>);

impl Functions {
    fn add(&mut self, sig: &syn::Signature, body: &syn::Block) {
        let start = syn::spanned::Spanned::span(sig).start().line;
        self.0.push((sig.ident.to_string(), start, body.brace_token.span.close().end().line));
    }
}

impl<'a> Visit<'a> for Functions {
    fn visit_item_fn(&mut self, f: &'a syn::ItemFn) {
        self.add(&f.sig, &f.block);
        syn::visit::visit_item_fn(self, f);
    }
    fn visit_impl_item_fn(&mut self, f: &'a syn::ImplItemFn) {
        self.add(&f.sig, &f.block);
        syn::visit::visit_impl_item_fn(self, f);
    }
}

#[test]
fn functions_fit_on_a_screen() {
    let mut long = Vec::new();
    let mut counted = 0;
    for file in rust_files(&src()) {
        let mut fns = Functions::default();
        fns.visit_file(&parse(&file));
        counted += fns.0.len();
        for (name, start, end) in fns.0 {
            let lines = end - start + 1;
            if lines > MAX_FUNCTION_LINES {
                long.push(format!(
                    "src/{}:{start} fn {name}: {lines} lines",
                    file.strip_prefix(src()).unwrap().display()
                ));
            }
        }
    }
    assert!(counted > 500, "only {counted} functions found: the files were not read");
    assert!(
        long.is_empty(),
        "functions longer than {MAX_FUNCTION_LINES} lines (split them along their seams):\n  {}",
        long.join("\n  ")
    );
}
