//! The layout rule, checked: no import cycles between source files.
//!
//! Every `crate::…`, `super::…`, `self::…` path in `src/` (in `use`
//! statements, braces expanded, and inline in code), and every path through
//! a child module a file declares, is an edge from that file to the file of
//! the longest module prefix it names. A `mod.rs` that re-exports its
//! children is a file like any other, so a child that reaches back into its
//! parent (`super::Thing` re-exported from a sibling) closes a cycle here,
//! as the architecture forbids. Any cycle fails the test, naming its files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path (`["systems", "redis", "links"]`) → its file.
type Modules = BTreeMap<Vec<String>, PathBuf>;

fn modules(src: &Path) -> Modules {
    fn walk(dir: &Path, prefix: &[String], out: &mut Modules) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                let mut inner = prefix.to_vec();
                inner.push(name);
                walk(&path, &inner, out);
            } else if let Some(stem) = name.strip_suffix(".rs") {
                let mut module = prefix.to_vec();
                match stem {
                    "mod" | "lib" => {}
                    "main" if prefix.is_empty() => continue, // the binary: a crate of its own
                    other => module.push(other.to_string()),
                }
                out.insert(module, path);
            }
        }
    }
    let mut out = Modules::new();
    walk(src, &[], &mut out);
    out
}

/// The text with comments, string and char literals blanked out.
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            i += end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            i += end;
            out.push(' ');
        } else if rest.starts_with("r#\"") || rest.starts_with("r\"") {
            let hashes = rest[1..].chars().take_while(|c| *c == '#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 2 + hashes;
            let end = rest[body..].find(&close).map_or(rest.len(), |e| body + e + close.len());
            i += end;
            out.push_str("\"\"");
        } else if rest.starts_with('"') {
            let mut j = 1;
            while j < rest.len() {
                match rest.as_bytes()[j] {
                    b'\\' => j += 2,
                    b'"' => break,
                    _ => j += 1,
                }
            }
            i += (j + 1).min(rest.len());
            out.push_str("\"\"");
        } else if rest.starts_with("'\\")
            || (rest.len() >= 3 && rest.as_bytes()[0] == b'\'' && rest[1..].chars().nth(1) == Some('\''))
        {
            // A char literal ('x', '\n', '\''); a lifetime ('a) is left alone.
            let end = rest[2..].find('\'').map_or(rest.len(), |e| e + 3);
            i += end;
            out.push_str("' '");
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The code without `#[cfg(test)]` items: tests may reach anywhere (an
/// inline `mod tests` would also read `super::` as the file's parent).
fn without_tests(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let end = match (item.find(';'), item.find('{')) {
            (Some(semi), Some(open)) if semi < open => semi + 1,
            (_, Some(open)) => {
                let mut depth = 0;
                let mut end = item.len();
                for (i, c) in item[open..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = open + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (Some(semi), None) => semi + 1,
            (None, None) => item.len(),
        };
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// Expand a use tree (`a::{b, c::{d, e}}`) into paths.
fn expand(tree: &str) -> Vec<Vec<String>> {
    fn parse(s: &str, prefix: &[String], out: &mut Vec<Vec<String>>) {
        let s = s.trim();
        if let Some(open) = s.find('{') {
            let head: Vec<String> =
                s[..open].split("::").map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect();
            let inner = &s[open + 1..s.rfind('}').unwrap_or(s.len())];
            let mut depth = 0;
            let mut start = 0;
            let mut base = prefix.to_vec();
            base.extend(head);
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        parse(&inner[start..i], &base, out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            parse(&inner[start..], &base, out);
        } else {
            let s = s.split(" as ").next().unwrap().trim();
            if s.is_empty() {
                return;
            }
            let mut path = prefix.to_vec();
            path.extend(s.split("::").map(str::trim).map(String::from));
            if path.last().is_some_and(|l| l == "self" || l == "*") {
                path.pop();
            }
            out.push(path);
        }
    }
    let mut out = Vec::new();
    parse(tree, &[], &mut out);
    out
}

/// Paths written inline: `crate::a::b`, `super::x`, `child::y`.
fn inline_paths(code: &str) -> Vec<Vec<String>> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = code.char_indices().collect();
    let mut k = 0;
    while k < chars.len() {
        let (i, c) = chars[k];
        let starts = is_ident(c) && (k == 0 || !(is_ident(chars[k - 1].1) || chars[k - 1].1 == ':'));
        if !starts {
            k += 1;
            continue;
        }
        let mut path = Vec::new();
        let mut j = i;
        loop {
            let end = code[j..].find(|c: char| !is_ident(c)).map_or(code.len(), |e| j + e);
            path.push(code[j..end].to_string());
            if code[end..].starts_with("::") && code[end + 2..].starts_with(|c: char| is_ident(c)) {
                j = end + 2;
            } else {
                j = end;
                break;
            }
        }
        if path.len() > 1 {
            out.push(path);
        }
        while k < chars.len() && chars[k].0 < j {
            k += 1;
        }
    }
    out
}

/// The module a path names from inside `here`, if it is one of the crate's.
fn resolve(path: &[String], here: &[String], children: &BTreeSet<String>) -> Option<Vec<String>> {
    let mut full: Vec<String> = match path.first().map(String::as_str) {
        Some("crate") => Vec::new(),
        Some("self") => here.to_vec(),
        Some("super") => here.to_vec(),
        Some(first) if children.contains(first) => here.to_vec(),
        _ => return None,
    };
    let mut rest = path;
    if rest[0] == "crate" || rest[0] == "self" {
        rest = &rest[1..];
    }
    while rest.first().is_some_and(|s| s == "super") {
        full.pop()?;
        rest = &rest[1..];
    }
    full.extend(rest.iter().cloned());
    Some(full)
}

/// `file → files it uses`, for every file in `src/`.
fn graph(src: &Path) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let modules = modules(src);
    let mut edges = BTreeMap::new();
    for (here, file) in &modules {
        let code = without_tests(&code_only(&std::fs::read_to_string(file).unwrap()));
        let children: BTreeSet<String> = modules
            .keys()
            .filter(|m| m.len() == here.len() + 1 && m.starts_with(here))
            .map(|m| m.last().unwrap().clone())
            .collect();
        let mut paths = Vec::new();
        for statement in code.split(';') {
            let s = statement.trim_start();
            let s = s.strip_prefix("pub(crate) ").or_else(|| s.strip_prefix("pub ")).unwrap_or(s);
            if let Some(tree) = s.strip_prefix("use ") {
                paths.extend(expand(tree));
            }
        }
        paths.extend(inline_paths(&code));
        let mut used = BTreeSet::new();
        for path in paths {
            let Some(mut target) = resolve(&path, here, &children) else { continue };
            while !target.is_empty() && !modules.contains_key(&target) {
                target.pop();
            }
            if let Some(to) = modules.get(&target) {
                if to != file {
                    used.insert(to.clone());
                }
            }
        }
        edges.insert(file.clone(), used);
    }
    edges
}

/// Strongly connected components with more than one file (Tarjan).
fn cycles(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<Vec<PathBuf>> {
    struct State<'a> {
        edges: &'a BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        index: BTreeMap<&'a PathBuf, usize>,
        low: BTreeMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        on_stack: BTreeSet<&'a PathBuf>,
        found: Vec<Vec<PathBuf>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a PathBuf) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.found
}

/// One concrete loop through a component, to show where it closes.
fn a_loop(component: &[PathBuf], edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<PathBuf> {
    let inside: BTreeSet<&PathBuf> = component.iter().collect();
    let start = &component[0];
    // Breadth-first from start back to start, staying inside the component.
    let mut came_from: BTreeMap<&PathBuf, &PathBuf> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for w in edges[v].iter().filter(|w| inside.contains(w)) {
            if w == start {
                let mut path = vec![start.clone(), v.clone()];
                let mut at = v;
                while at != start {
                    at = came_from[at];
                    path.push(at.clone());
                }
                path.reverse();
                return path;
            }
            if !came_from.contains_key(w) && w != start {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    component.to_vec()
}

#[test]
fn no_import_cycles_between_source_files() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = graph(&src);
    assert!(edges.len() > 50, "the scan found only {} files", edges.len());
    let found = cycles(&edges);
    let shown: Vec<String> = found
        .iter()
        .map(|c| {
            let names = |files: &[PathBuf]| {
                files.iter().map(|f| f.strip_prefix(&src).unwrap().display().to_string()).collect::<Vec<_>>()
            };
            format!("  {}\n    e.g. {}", names(c).join(", "), names(&a_loop(c, &edges)).join(" → "))
        })
        .collect();
    assert!(found.is_empty(), "import cycles between source files:\n{}", shown.join("\n"));
}

/// The scanner itself: it must see the edges that make a cycle.
#[test]
fn the_scanner_sees_use_trees_and_inline_paths() {
    let paths = expand("super::{fleet::Fleet, detail::{self, X as Y}, links}");
    let want: Vec<Vec<String>> =
        [&["super", "fleet", "Fleet"][..], &["super", "detail"], &["super", "detail", "X"], &["super", "links"]]
            .iter()
            .map(|p| p.iter().map(|s| s.to_string()).collect())
            .collect();
    assert_eq!(paths, want);
    let code = code_only("let a = crate::model::quoted(x); // crate::gate::x\nlet s = \"super::no\"; links::derive(m)");
    let inline = inline_paths(&code);
    assert!(inline.contains(&vec!["crate".into(), "model".into(), "quoted".into()]), "{inline:?}");
    assert!(inline.contains(&vec!["links".into(), "derive".into()]), "{inline:?}");
    assert!(!inline.iter().any(|p| p[0] == "super" || p.contains(&"gate".to_string())), "{inline:?}");
    let code = without_tests("use a::b;\n#[cfg(test)]\nmod tests { use super::*; fn f() { g() } }\nuse c::d;");
    assert_eq!(code.split_whitespace().collect::<Vec<_>>(), ["use", "a::b;", "use", "c::d;"]);
    let children = BTreeSet::from(["links".to_string()]);
    let here = vec!["systems".to_string(), "redis".to_string()];
    assert_eq!(
        resolve(&["super".into(), "Memory".into()], &here, &children),
        Some(vec!["systems".into(), "Memory".into()])
    );
    assert_eq!(resolve(&["links".into(), "derive".into()], &here, &children).unwrap().len(), 4);
    assert_eq!(resolve(&["std".into(), "fmt".into()], &here, &children), None);
    let mut edges = BTreeMap::new();
    let (a, b, c) = (PathBuf::from("a.rs"), PathBuf::from("b.rs"), PathBuf::from("c.rs"));
    edges.insert(a.clone(), BTreeSet::from([b.clone()]));
    edges.insert(b.clone(), BTreeSet::from([c.clone()]));
    edges.insert(c.clone(), BTreeSet::from([a.clone()]));
    assert_eq!(cycles(&edges), vec![vec![a.clone(), b.clone(), c.clone()]]);
    assert_eq!(a_loop(&[a.clone(), b.clone(), c.clone()], &edges), vec![a.clone(), b, c, a]);
}
