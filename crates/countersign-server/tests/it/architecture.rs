//! The shape of the code: in no crate of the workspace does a module import, directly or
//! through others, a module that imports it; no source file does several jobs; and the
//! server's data flows one way (the router depends on the handlers, the handlers on the
//! state and the errors, the middleware on neither).
//!
//! Cheap and dependency-free: each source file is a module (`src/a/b.rs` is `crate::a::b`);
//! comments, literals and `#[cfg(test)]` modules are blanked out; every `use` tree and
//! every path written out in full (`crate::…`, `super::…`, `self::…`, or starting with a
//! child module's name) is an edge to the deepest module it names. A name re-exported with
//! `pub use` counts as the module it comes from, so a facade that re-exports its children
//! is no circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The modules of a crate (one per source file) and which use which.
struct ModuleGraph {
    /// Each module's path (`crate::server::api`) and file (relative to the crate).
    files: BTreeMap<String, PathBuf>,
    /// For each module, the modules it uses and where it first does (`src/a.rs:12`).
    edges: BTreeMap<String, BTreeMap<String, String>>,
}

/// `src` with comments, string and character literals blanked out (line breaks kept, so
/// positions still name the same line).
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let blank = |c: u8| if c == b'\n' { b'\n' } else { b' ' };
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if rest.starts_with(b"/*") {
            let mut depth = 0usize;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if b[i] == b'"' || (i == 0 || !is_ident(b[i - 1])) && string_prefix(rest) {
            // A string: "…", b"…", r"…", r#"…"#, br#"…"#.
            let mut j = i;
            if b[j] == b'b' {
                out.push(b' ');
                j += 1;
            }
            if b[j] == b'r' {
                out.push(b' ');
                j += 1;
                let mut hashes = 0;
                while b[j] == b'#' {
                    hashes += 1;
                    out.push(b' ');
                    j += 1;
                }
                // b[j] is the opening quote.
                out.push(b' ');
                j += 1;
                loop {
                    if j >= b.len() {
                        break;
                    }
                    if b[j] == b'"'
                        && b[j + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|&&c| c == b'#')
                            .count()
                            == hashes
                    {
                        out.extend(std::iter::repeat_n(b' ', hashes + 1));
                        j += 1 + hashes;
                        break;
                    }
                    out.push(blank(b[j]));
                    j += 1;
                }
            } else {
                out.push(b' ');
                j += 1;
                while j < b.len() && b[j] != b'"' {
                    if b[j] == b'\\' && j + 1 < b.len() {
                        out.push(b' ');
                        j += 1;
                    }
                    out.push(blank(b[j]));
                    j += 1;
                }
                out.push(b' ');
                j += 1;
            }
            i = j;
        } else if b[i] == b'\'' {
            // A character literal ('a', '\n', '\u{1F600}'), or a lifetime ('a).
            let close = if b.get(i + 1) == Some(&b'\\') {
                b.get(i + 3..)
                    .and_then(|r| r.iter().position(|&c| c == b'\''))
                    .map(|p| i + 3 + p)
            } else {
                let ch_len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + ch_len) == Some(&b'\'')).then_some(i + 1 + ch_len)
            };
            match close {
                Some(end) => {
                    out.extend(std::iter::repeat_n(b' ', end + 1 - i));
                    i = end + 1;
                }
                None => {
                    out.push(b'\'');
                    i += 1;
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `rest` starts a byte or raw string: `b"`, `r"`, `r#"`, `br"`, `br#"` (and not a
/// raw identifier such as `r#type`, or a name such as `bridge`).
fn string_prefix(rest: &[u8]) -> bool {
    let rest = rest.strip_prefix(b"b").unwrap_or(rest);
    if rest.first() == Some(&b'"') {
        return true;
    }
    let Some(rest) = rest.strip_prefix(b"r") else {
        return false;
    };
    rest.iter().find(|&&c| c != b'#') == Some(&b'"')
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// `code` with every `#[cfg(test)]` module blanked out.
fn without_test_modules(code: &str) -> String {
    let mut out = code.as_bytes().to_vec();
    let mut from = 0;
    while let Some(at) = code[from..].find("#[cfg(test)]").map(|p| p + from) {
        from = at + 1;
        let after = &code[at + "#[cfg(test)]".len()..];
        let Some(brace) = after.find(['{', ';']) else {
            continue;
        };
        if after.as_bytes()[brace] == b';' || !after[..brace].split_whitespace().any(|w| w == "mod")
        {
            continue;
        }
        let start = at + "#[cfg(test)]".len() + brace;
        let mut depth = 0usize;
        for (k, c) in code[start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        for byte in &mut out[at..=start + k] {
                            if *byte != b'\n' {
                                *byte = b' ';
                            }
                        }
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The paths a `use` tree names: `a::{b, c::{d, self}}` is `a::b`, `a::c::d`, `a::c`.
fn use_paths(tree: &str) -> Vec<Vec<String>> {
    fn walk(prefix: &[String], tree: &str, out: &mut Vec<Vec<String>>) {
        let tree = tree.trim();
        if tree.is_empty() {
            return;
        }
        // Split at the first `{` that is not nested.
        if let Some(open) = tree.find('{') {
            let head: Vec<String> = segments(&tree[..open]);
            let mut path = prefix.to_vec();
            path.extend(head);
            let close = tree.rfind('}').filter(|&c| c > open).unwrap_or(tree.len());
            let inner = &tree[open + 1..close];
            let mut depth = 0usize;
            let mut start = 0;
            for (k, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        walk(&path, &inner[start..k], out);
                        start = k + 1;
                    }
                    _ => {}
                }
            }
            walk(&path, &inner[start..], out);
        } else {
            let tree = tree.split(" as ").next().unwrap_or(tree);
            let mut path = prefix.to_vec();
            path.extend(segments(tree));
            out.push(path);
        }
    }
    fn segments(text: &str) -> Vec<String> {
        text.split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
    let mut out = Vec::new();
    walk(&[], tree, &mut out);
    out
}

/// The 1-based line of byte `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

impl ModuleGraph {
    /// Read the library crate under `crate_dir` (`src/lib.rs` and the files it declares).
    fn read(crate_dir: &Path) -> Self {
        let src = crate_dir.join("src");
        let mut files = BTreeMap::new();
        let mut stack = vec![src.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let rel = path.strip_prefix(&src).unwrap();
                let mut parts: Vec<String> = rel
                    .iter()
                    .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
                    .collect();
                if parts == ["main"] || parts.first().is_some_and(|p| p == "bin") {
                    continue;
                }
                if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                    parts.pop();
                }
                let module = std::iter::once("crate".to_owned())
                    .chain(parts)
                    .collect::<Vec<_>>()
                    .join("::");
                files.insert(module, path.strip_prefix(crate_dir).unwrap().to_owned());
            }
        }
        let modules: BTreeSet<String> = files.keys().cloned().collect();
        // What each module re-exports (`pub use a::B;`): (module, name) → the module it comes from.
        let mut codes = BTreeMap::new();
        for (module, file) in &files {
            let text = std::fs::read_to_string(crate_dir.join(file)).unwrap();
            codes.insert(module.clone(), without_test_modules(&code_only(&text)));
        }
        let mut graph = Self {
            files,
            edges: BTreeMap::new(),
        };
        let mut reexports: BTreeMap<(String, String), String> = BTreeMap::new();
        for (module, code) in &codes {
            for (at, tree) in use_statements(code) {
                if !code[..at].trim_end().ends_with("pub") && !code[..at].trim_end().ends_with(')')
                {
                    continue;
                }
                for path in use_paths(&tree) {
                    let Some(name) = path.last() else { continue };
                    if let Some(target) =
                        resolve(&modules, &BTreeMap::new(), module, &path[..path.len() - 1])
                    {
                        reexports.insert((module.clone(), name.clone()), target);
                    }
                }
            }
        }
        for (module, code) in &codes {
            let file = graph.files[module].display().to_string();
            let mut found: Vec<(usize, Vec<String>)> = Vec::new();
            for (at, tree) in use_statements(code) {
                for path in use_paths(&tree) {
                    found.push((at, path));
                }
            }
            found.extend(inline_paths(code, &children(&modules, module)));
            for (at, path) in found {
                let Some(target) = resolve(&modules, &reexports, module, &path) else {
                    continue;
                };
                if &target == module {
                    continue;
                }
                graph
                    .edges
                    .entry(module.clone())
                    .or_default()
                    .entry(target)
                    .or_insert_with(|| format!("{file}:{}", line_of(code, at)));
            }
        }
        graph
    }

    /// Every circle of modules, each as the modules in order (the first repeated at the end).
    fn cycles(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut reported: BTreeSet<BTreeSet<String>> = BTreeSet::new();
        for start in self.edges.keys() {
            // Breadth-first from `start` back to `start`: the shortest circle through it.
            let mut previous: BTreeMap<String, String> = BTreeMap::new();
            let mut queue = std::collections::VecDeque::from([start.clone()]);
            let mut closed = None;
            while let Some(at) = queue.pop_front() {
                for next in self.edges.get(&at).into_iter().flat_map(BTreeMap::keys) {
                    if next == start {
                        closed = Some(at.clone());
                        break;
                    }
                    if !previous.contains_key(next) {
                        previous.insert(next.clone(), at.clone());
                        queue.push_back(next.clone());
                    }
                }
                if closed.is_some() {
                    break;
                }
            }
            let Some(mut at) = closed else { continue };
            let mut cycle = vec![start.clone(), at.clone()];
            while &at != start {
                at = previous[&at].clone();
                cycle.push(at.clone());
            }
            cycle.reverse();
            let members: BTreeSet<String> = cycle.iter().cloned().collect();
            if reported.insert(members) {
                out.push(cycle);
            }
        }
        out
    }
}

/// The children of `module` among `modules`, by their last name.
fn children(modules: &BTreeSet<String>, module: &str) -> Vec<String> {
    modules
        .iter()
        .filter_map(|m| m.strip_prefix(module)?.strip_prefix("::"))
        .filter(|rest| !rest.contains("::"))
        .map(str::to_owned)
        .collect()
}

/// Each `use` statement of `code`: where it starts and its tree.
fn use_statements(code: &str) -> Vec<(usize, String)> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("use").map(|p| p + from) {
        from = at + 3;
        let before_ok = at == 0 || !is_ident(b[at - 1]);
        let after_ok = b.get(at + 3).is_some_and(u8::is_ascii_whitespace);
        if !(before_ok && after_ok) {
            continue;
        }
        let Some(end) = code[at..].find(';') else {
            break;
        };
        out.push((at, code[at + 3..at + end].to_owned()));
        from = at + end;
    }
    out
}

/// Every path written in full in `code` (`crate::a::b`, `super::c`, `self::d`, or starting
/// with one of `children`), with where it is.
fn inline_paths(code: &str, children: &[String]) -> Vec<(usize, Vec<String>)> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let starts: Vec<String> = ["crate", "super", "self"]
        .into_iter()
        .map(str::to_owned)
        .chain(children.iter().cloned())
        .collect();
    for start in &starts {
        let needle = format!("{start}::");
        let mut from = 0;
        while let Some(at) = code[from..].find(&needle).map(|p| p + from) {
            from = at + needle.len();
            if at > 0 && (is_ident(b[at - 1]) || (at > 1 && &code[at - 2..at] == "::")) {
                continue;
            }
            let mut end = at;
            while end < b.len() && (is_ident(b[end]) || code[end..].starts_with("::")) {
                end += if code[end..].starts_with("::") { 2 } else { 1 };
            }
            if code[..end].ends_with("::") {
                // The head of a `use` group (`super::{a, b}`), read with its statement.
                continue;
            }
            let path = code[at..end]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            out.push((at, path));
        }
    }
    out
}

/// The module `path` (written in `module`) names or names an item of; `None` for another
/// crate's.
fn resolve(
    modules: &BTreeSet<String>,
    reexports: &BTreeMap<(String, String), String>,
    module: &str,
    path: &[String],
) -> Option<String> {
    let mut at: Vec<&str> = module.split("::").collect();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            at = vec!["crate"];
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().is_some_and(|s| s == "super") {
                at.pop();
                rest = &rest[1..];
            }
        }
        Some(first) if modules.contains(&format!("{module}::{first}")) => {}
        _ => return None,
    }
    let mut current = at.join("::");
    for segment in rest {
        let child = format!("{current}::{segment}");
        if modules.contains(&child) {
            current = child;
        } else if let Some(target) = reexports.get(&(current.clone(), segment.clone())) {
            current = target.clone();
            break;
        } else {
            break;
        }
    }
    Some(current)
}

/// The crates checked, by directory under `crates/`: every library of the workspace.
const CRATES: &[&str] = &[
    "countersign",
    "countersign-axum",
    "countersign-redis",
    "countersign-server",
    "countersign-sql",
];

/// The server's handlers: what the router routes to.
const HANDLERS: &[&str] = &[
    "crate::server::api",
    "crate::server::flask",
    "crate::server::forward",
    "crate::server::login",
    "crate::server::ops",
    "crate::server::pages",
    "crate::server::passkeys",
    "crate::server::users",
    "crate::server::wellknown",
];

/// The router.
const ROUTER: &str = "crate::server::router";

fn graph(name: &str) -> ModuleGraph {
    ModuleGraph::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name))
}

/// `module`'s edges to the modules `banned` picks.
fn uses<'g>(
    graph: &'g ModuleGraph,
    module: &str,
    banned: impl Fn(&str) -> bool,
) -> Vec<(&'g str, &'g str)> {
    graph
        .edges
        .get(module)
        .into_iter()
        .flatten()
        .filter(|(to, _)| banned(to))
        .map(|(to, at)| (to.as_str(), at.as_str()))
        .collect()
}

#[test]
fn no_import_circles() {
    let mut circled = Vec::new();
    for name in CRATES {
        let graph = graph(name);
        // A scan that misreads the code finds few modules, or few that use another (in
        // every crate here at least a third do).
        assert!(
            graph.files.len() >= 5 && graph.edges.len() * 3 >= graph.files.len(),
            "crates/{name}: the scan found too little ({} modules, {} using another): \
             tests/it/architecture.rs needs updating",
            graph.files.len(),
            graph.edges.len()
        );
        let cycles = graph.cycles();
        let shown: Vec<String> = cycles
            .iter()
            .map(|cycle| {
                let steps: Vec<String> = cycle
                    .windows(2)
                    .map(|pair| {
                        format!(
                            "{} -> {} ({})",
                            pair[0], pair[1], graph.edges[&pair[0]][&pair[1]]
                        )
                    })
                    .collect();
                steps.join("\n    ")
            })
            .collect();
        if !cycles.is_empty() {
            circled.push(format!("crates/{name}:\n  {}", shown.join("\n  ")));
        }
    }
    assert!(
        circled.is_empty(),
        "import circles; move what both sides need into a module of its own that neither \
         imports back (a type both use goes below both):\n{}",
        circled.join("\n")
    );
}

#[test]
fn the_server_flows_one_way() {
    let graph = graph("countersign-server");
    for module in [
        ROUTER,
        "crate::server::state",
        "crate::server::error",
        "crate::server::envelope",
    ] {
        assert!(
            graph.files.contains_key(module),
            "{module} is gone: update this test"
        );
    }
    let mut wrong = Vec::new();
    // The state and the errors know no handler and no router. (A handler's own state, such
    // as forward authentication's `forward::state`, is not a handler.)
    for module in ["crate::server::state", "crate::server::error"] {
        let handler_or_router = |to: &str| to == ROUTER || HANDLERS.contains(&to);
        wrong.extend(
            uses(&graph, module, handler_or_router)
                .into_iter()
                .map(|e| (module, e)),
        );
    }
    // The errors and the middleware use nothing of the server.
    for module in ["crate::server::error", "crate::server::envelope"] {
        let server = |to: &str| to == "crate::server" || to.starts_with("crate::server::");
        wrong.extend(
            uses(&graph, module, server)
                .into_iter()
                .map(|e| (module, e)),
        );
    }
    // Only the server's entry point (`server::run`) uses the router.
    for from in graph.edges.keys() {
        if from != "crate::server" && from != ROUTER {
            let router = |to: &str| to == ROUTER;
            wrong.extend(
                uses(&graph, from, router)
                    .into_iter()
                    .map(|e| (from.as_str(), e)),
            );
        }
    }
    assert!(
        wrong.is_empty(),
        "the server's modules must depend one way (router -> handlers -> state and errors; \
         middleware on none of them):\n{}",
        wrong
            .iter()
            .map(|(from, (to, at))| format!("  {from} uses {to} ({at})"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The most lines a source file may have before its tests: past it, a file holds more
/// than one topic.
const MAX_LINES: usize = 900;

#[test]
fn no_source_file_does_several_jobs() {
    for name in CRATES {
        let graph = graph(name);
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name);
        let long: Vec<String> = graph
            .files
            .values()
            .filter_map(|file| {
                let text = std::fs::read_to_string(crate_dir.join(file)).unwrap();
                let lines = text
                    .lines()
                    .take_while(|line| line.trim() != "#[cfg(test)]")
                    .count();
                (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", file.display()))
            })
            .collect();
        assert!(
            long.is_empty(),
            "crates/{name}: {long:?} have more than {MAX_LINES} lines before their tests: split \
             each by topic"
        );
    }
}

/// The scan itself: what it must see and what it must not.
#[test]
fn the_scan_reads_uses_and_skips_the_rest() {
    let code = code_only(
        "use super::a::{B, c::{self, D}};\n\
         // use crate::commented;\n\
         let s = \"crate::in_a_string\"; let r = r#\"super::raw\"#; let c = '\\'';\n\
         let x = countersign::flask::bridge::X; crate::e::f();\n\
         #[cfg(test)]\nmod tests { use crate::only_in_tests; }\n",
    );
    let code = without_test_modules(&code);
    let paths: Vec<Vec<String>> = use_statements(&code)
        .into_iter()
        .flat_map(|(_, tree)| use_paths(&tree))
        .collect();
    assert_eq!(
        paths,
        [
            vec!["super", "a", "B"],
            vec!["super", "a", "c", "self"],
            vec!["super", "a", "c", "D"],
        ]
    );
    let inline: Vec<Vec<String>> = inline_paths(&code, &[])
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(inline, [vec!["crate", "e", "f"]]);
}
