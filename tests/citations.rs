//! The repository's documentation stays true to itself and to the code.
//!
//! Every file of the repository (the tree without `.git`, build output and
//! what the `.gitignore` files name) is read, and the test fails when:
//!
//! - a cited `docs/NAME.md` does not exist;
//! - a cited heading (the path, a space, then the heading in double quotes,
//!   on one line) is not a heading of that document;
//! - a cited entry (the path, a space, then `#N`, `#S3`, ... separated by
//!   `, `) is not the first cell of a table row of that document;
//! - a relative Markdown link points at nothing, or outside the repository,
//!   or at a heading anchor that does not exist;
//! - the uppercase design or attack documents of the early days are cited
//!   at all (they are not in the repository);
//! - `docs/configuration.md` and the configuration loader disagree: a key the
//!   loader's structures accept is not documented, a documented key is not
//!   accepted, a documented default is not the default, or the full example
//!   does not load with `Config::from_toml` or leaves a key out.
//!
//! The tests at the bottom feed the checkers broken input and see it caught.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use relayguard_core::Config;

/// The old uppercase names, spelled so that this file does not cite them.
const OLD_NAMES: [&str; 2] = [concat!("DESIGN", ".md"), concat!("ATTACKS", ".md")];

/// Repository-relative path (with `/`) to text.
type Files = BTreeMap<String, String>;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

// ------------------------------------------------------------ the files

/// The ignore entries of one `.gitignore`, relative to the repository root:
/// anchored paths, and names that match at any depth below its folder.
/// Glob patterns are not understood and ignored (the walk then reads more).
fn gitignore(dir: &str, text: &str, anchored: &mut BTreeSet<String>, names: &mut Vec<(String, String)>) {
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') || line.contains(['*', '?', '['])
        {
            continue;
        }
        let entry = line.trim_end_matches('/');
        let join = |p: &str| {
            if dir.is_empty() {
                p.to_string()
            } else {
                format!("{dir}/{p}")
            }
        };
        if let Some(p) = entry.strip_prefix('/') {
            anchored.insert(join(p));
        } else if entry.contains('/') {
            anchored.insert(join(entry));
        } else {
            names.push((dir.to_string(), entry.to_string()));
        }
    }
}

fn walk(
    dir: &Path,
    rel: &str,
    anchored: &mut BTreeSet<String>,
    names: &mut Vec<(String, String)>,
    out: &mut Files,
) {
    if let Ok(text) = std::fs::read_to_string(dir.join(".gitignore")) {
        gitignore(rel, &text, anchored, names);
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let named = names
            .iter()
            .any(|(d, n)| *n == name && (d.is_empty() || path.starts_with(&format!("{d}/"))));
        if name == ".git" || name == "target" || anchored.contains(&path) || named {
            continue;
        }
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            walk(&e.path(), &path, anchored, names, out);
        } else if kind.is_file() {
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            out.insert(path, String::from_utf8_lossy(&bytes).into_owned());
        }
    }
}

fn repository() -> Files {
    let mut out = Files::new();
    walk(root(), "", &mut BTreeSet::new(), &mut Vec::new(), &mut out);
    out
}

// ------------------------------------------------------------ documents

/// What can be cited in one Markdown document.
#[derive(Debug, Default)]
struct DocIndex {
    /// Heading texts, backticks removed.
    headings: BTreeSet<String>,
    /// First cells of table rows that look like entry numbers (`6`, `S3`).
    entries: BTreeSet<String>,
}

fn is_entry_id(s: &str) -> bool {
    let digits = s.trim_start_matches(|c: char| c.is_ascii_uppercase());
    s.len() - digits.len() <= 1 && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The lines of a Markdown text outside fenced code blocks, numbered from 1.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

fn heading_text(line: &str) -> Option<String> {
    let rest = line.trim_start_matches('#');
    if rest.len() == line.len() || !rest.starts_with(' ') || line.len() - rest.len() > 6 {
        return None;
    }
    Some(rest.trim().replace('`', ""))
}

/// The cells of a table row, trimmed; `None` for other lines.
fn table_cells(line: &str) -> Option<Vec<&str>> {
    let inner = line.trim().strip_prefix('|')?.strip_suffix('|')?;
    Some(inner.split('|').map(str::trim).collect())
}

fn doc_index(text: &str) -> DocIndex {
    let mut d = DocIndex::default();
    for (_, line) in prose_lines(text) {
        if let Some(h) = heading_text(line) {
            d.headings.insert(h);
        } else if let Some(cells) = table_cells(line) {
            if is_entry_id(cells[0]) {
                d.entries.insert(cells[0].to_string());
            }
        }
    }
    d
}

/// GitHub's anchor for a heading.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn docs(files: &Files) -> BTreeMap<String, DocIndex> {
    files
        .iter()
        .filter(|(p, _)| p.ends_with(".md"))
        .map(|(p, t)| (p.clone(), doc_index(t)))
        .collect()
}

// ------------------------------------------------------------ citations

/// The `docs/NAME.md` paths a line cites, each with the text after it.
fn cited_paths(line: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = line[from..].find("docs/").map(|i| from + i) {
        from = i + 5;
        let before = line[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-') {
            continue;
        }
        let name_len = line[i + 5..]
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '/')))
            .unwrap_or(line.len() - i - 5);
        let end = i + 5 + name_len;
        if name_len == 0 || !line[end..].starts_with(".md") {
            continue;
        }
        let after = &line[end + 3..];
        if after.chars().next().is_some_and(|c| c.is_alphanumeric()) {
            continue;
        }
        out.push((&line[i..end + 3], after));
        from = end + 3;
    }
    out
}

/// Problems with the citations of one file.
fn citation_problems(
    file: &str,
    text: &str,
    files: &Files,
    index: &BTreeMap<String, DocIndex>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = format!("{file}:{}", n + 1);
        for old in OLD_NAMES {
            if line.contains(old) {
                problems.push(format!(
                    "{at}: cites {old}, which is not in the repository (docs/ has its successor)"
                ));
            }
        }
        for (path, after) in cited_paths(line) {
            if !files.contains_key(path) {
                problems.push(format!("{at}: cites {path}, which does not exist"));
                continue;
            }
            let doc = &index[path];
            if let Some(rest) = after.strip_prefix(" \"") {
                match rest.find('"') {
                    None => problems.push(format!(
                        "{at}: a heading of {path} is cited without its closing quote on the same line"
                    )),
                    Some(end) => {
                        let h = &rest[..end];
                        if !doc.headings.contains(h) {
                            problems.push(format!("{at}: {path} has no heading \"{h}\""));
                        }
                    }
                }
            } else if let Some(mut rest) = after.strip_prefix(" #") {
                loop {
                    let len = rest
                        .find(|c: char| !c.is_ascii_alphanumeric())
                        .unwrap_or(rest.len());
                    let id = &rest[..len];
                    if !is_entry_id(id) {
                        problems.push(format!("{at}: \"#{id}\" after {path} is not an entry number"));
                    } else if !doc.entries.contains(id) {
                        problems.push(format!("{at}: {path} has no entry #{id}"));
                    }
                    match rest[len..].strip_prefix(", #") {
                        Some(r) => rest = r,
                        None => break,
                    }
                }
            } else if let Some(rest) = after.strip_prefix('#') {
                let anchor: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                if !doc.headings.iter().any(|h| slug(h) == anchor) {
                    problems.push(format!("{at}: {path} has no heading with the anchor #{anchor}"));
                }
            }
        }
    }
    problems
}

/// `a/b/../c` → `a/c`; `None` when it leaves the repository.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Problems with the relative links of one Markdown file.
fn link_problems(file: &str, text: &str, files: &Files, index: &BTreeMap<String, DocIndex>) -> Vec<String> {
    let mut problems = Vec::new();
    let dir = file.rsplit_once('/').map_or("", |(d, _)| d);
    for (n, line) in prose_lines(text) {
        let at = format!("{file}:{n}");
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = rest[..end].trim();
            rest = &rest[end..];
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let resolved = if path.is_empty() {
                Some(file.to_string())
            } else {
                normalize(&format!("{dir}/{path}"))
            };
            let Some(resolved) = resolved else {
                problems.push(format!("{at}: the link {target} points outside the repository"));
                continue;
            };
            let exists =
                files.contains_key(&resolved) || files.keys().any(|f| f.starts_with(&format!("{resolved}/")));
            if !exists {
                problems.push(format!("{at}: the link {target} points at nothing ({resolved})"));
            } else if !anchor.is_empty() {
                match index.get(&resolved) {
                    Some(d) if d.headings.iter().any(|h| slug(h) == anchor) => {}
                    _ => problems.push(format!("{at}: the link {target}: no heading with that anchor")),
                }
            }
        }
    }
    problems
}

// ------------------------------------------------------------ configuration keys

/// What the loader's structures accept, read from the text of
/// `core/src/config.rs`: every `pub` field of every `pub struct`, followed
/// from `Config` down. Serde attributes that would change the names make
/// the scan refuse, so that it cannot silently read the structures wrong.
#[derive(Debug, Default)]
struct Accepted {
    /// Dotted keys: `hostname`, `limits.max_errors`, `auth.users`,
    /// `auth.users[].name`.
    keys: BTreeSet<String>,
    /// Top-level fields that are TOML tables: `domains`, ..., `routes`.
    sections: BTreeSet<String>,
    /// Keys whose value is a map with free keys (`routes`).
    maps: BTreeSet<String>,
}

fn scan_structs(text: &str, problems: &mut Vec<String>) -> BTreeMap<String, Vec<(String, String)>> {
    let mut structs = BTreeMap::new();
    let mut current: Option<(String, Vec<(String, String)>)> = None;
    let mut attrs: Vec<String> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some((name, fields)) = &mut current {
            if line.starts_with('}') {
                structs.insert(name.clone(), std::mem::take(fields));
                current = None;
            } else if t.starts_with("#[") {
                attrs.push(t.to_string());
            } else if let Some(field) = t.strip_prefix("pub ") {
                let skip = attrs.iter().any(|a| a.contains("serde(skip"));
                if attrs
                    .iter()
                    .any(|a| a.contains("rename") || a.contains("flatten") || a.contains("alias"))
                {
                    problems.push(format!(
                        "config.rs: field {t:?} has a serde attribute this scan cannot follow"
                    ));
                }
                if let Some((f, ty)) = field.split_once(':') {
                    if !skip {
                        fields.push((f.trim().to_string(), ty.trim().trim_end_matches(',').to_string()));
                    }
                }
                attrs.clear();
            } else if !t.starts_with("//") {
                attrs.clear();
            }
            continue;
        }
        if t.starts_with("#[") {
            attrs.push(t.to_string());
        } else if let Some(rest) = t.strip_prefix("pub struct ") {
            if attrs.iter().any(|a| a.contains("rename_all")) {
                problems.push(format!("config.rs: struct {rest:?} renames its fields"));
            }
            if let Some(name) = rest.strip_suffix('{') {
                current = Some((name.trim().to_string(), Vec::new()));
            }
            attrs.clear();
        } else if !t.starts_with("//") {
            attrs.clear();
        }
    }
    structs
}

fn accepted(config_rs: &str, problems: &mut Vec<String>) -> Accepted {
    let structs = scan_structs(config_rs, problems);
    let mut a = Accepted::default();
    if !structs.contains_key("Config") {
        problems.push("config.rs: no `pub struct Config {` found".into());
        return a;
    }
    fn follow(structs: &BTreeMap<String, Vec<(String, String)>>, name: &str, prefix: &str, a: &mut Accepted) {
        for (field, ty) in &structs[name] {
            let key = format!("{prefix}{field}");
            let inner = ty
                .strip_prefix("Option<")
                .and_then(|t| t.strip_suffix('>'))
                .unwrap_or(ty);
            let element = inner.strip_prefix("Vec<").and_then(|t| t.strip_suffix('>'));
            if structs.contains_key(inner) {
                if prefix.is_empty() {
                    a.sections.insert(key.clone());
                }
                follow(structs, inner, &format!("{key}."), a);
            } else if let Some(el) = element.filter(|el| structs.contains_key(*el)) {
                a.keys.insert(key.clone());
                follow(structs, el, &format!("{key}[]."), a);
            } else if inner.contains("Map<") {
                if prefix.is_empty() {
                    a.sections.insert(key.clone());
                }
                a.maps.insert(key);
            } else {
                a.keys.insert(key);
            }
        }
    }
    follow(&structs, "Config", "", &mut a);
    a
}

/// The keys `docs/configuration.md` documents, with their default cells,
/// and the section headings it has.
fn documented(md: &str, problems: &mut Vec<String>) -> (BTreeMap<String, String>, BTreeSet<String>) {
    let mut keys = BTreeMap::new();
    let mut sections = BTreeSet::new();
    let mut prefix: Option<String> = None;
    for (n, line) in prose_lines(md) {
        if let Some(h) = heading_text(line) {
            prefix = match h.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                Some(s) => {
                    sections.insert(s.to_string());
                    Some(format!("{s}."))
                }
                None if h == "Top-level keys" => Some(String::new()),
                None => None,
            };
            continue;
        }
        let (Some(prefix), Some(cells)) = (&prefix, table_cells(line)) else {
            continue;
        };
        if cells[0] == "key" || cells[0].starts_with("---") {
            continue;
        }
        let key = cells[0].strip_prefix('`').and_then(|k| k.strip_suffix('`'));
        match key {
            Some(k) if !k.contains('`') && cells.len() >= 2 => {
                keys.insert(format!("{prefix}{k}"), cells[1].to_string());
            }
            _ => problems.push(format!(
                "docs/configuration.md:{n}: a row of a key table without a `key` and a default"
            )),
        }
    }
    (keys, sections)
}

/// The first ```toml block under the heading `heading`.
fn toml_block<'a>(md: &'a str, heading: &str) -> Option<&'a str> {
    let start = md.find(&format!("## {heading}\n"))?;
    let open = start + md[start..].find("```toml\n")? + "```toml\n".len();
    let close = open + md[open..].find("```")?;
    Some(&md[open..close])
}

/// Every key of a TOML text, dotted the way [`Accepted::keys`] is.
fn toml_keys(table: &toml::Table, prefix: &str, maps: &BTreeSet<String>, out: &mut BTreeSet<String>) {
    for (k, v) in table {
        let key = format!("{prefix}{k}");
        if maps.contains(&key) {
            out.insert(key);
            continue;
        }
        match v {
            toml::Value::Table(t) => toml_keys(t, &format!("{key}."), maps, out),
            toml::Value::Array(items) if !items.is_empty() && items.iter().all(|i| i.is_table()) => {
                out.insert(key.clone());
                for i in items {
                    if let toml::Value::Table(t) = i {
                        toml_keys(t, &format!("{key}[]."), maps, out);
                    }
                }
            }
            _ => {
                out.insert(key);
            }
        }
    }
}

fn config_problems(config_rs: &str, md: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let accepted = accepted(config_rs, &mut problems);
    if accepted.keys.len() < 10 {
        problems.push(format!(
            "config.rs: the scan found only {} keys; has the file changed shape?",
            accepted.keys.len()
        ));
    }
    let (doc_keys, doc_sections) = documented(md, &mut problems);
    for k in accepted.keys.iter().filter(|k| !doc_keys.contains_key(*k)) {
        problems.push(format!(
            "docs/configuration.md: the loader accepts `{k}`, which is not documented"
        ));
    }
    for k in doc_keys.keys().filter(|k| !accepted.keys.contains(*k)) {
        problems.push(format!(
            "docs/configuration.md: documents `{k}`, which the loader does not accept"
        ));
    }
    for s in accepted.sections.iter().filter(|s| !doc_sections.contains(*s)) {
        problems.push(format!(
            "docs/configuration.md: no heading [{s}] for the loader's section `{s}`"
        ));
    }
    for s in doc_sections.iter().filter(|s| !accepted.sections.contains(*s)) {
        problems.push(format!(
            "docs/configuration.md: heading [{s}], which is no section of the loader"
        ));
    }
    // Each documented default, written as TOML, must give the default Config.
    for (key, default) in &doc_keys {
        if key.contains("[]") {
            continue;
        }
        if default.starts_with('*') && default.ends_with('*') {
            continue; // *absent*, *required*: not a TOML value
        }
        let Some(value) = default.strip_prefix('`').and_then(|d| d.strip_suffix('`')) else {
            problems.push(format!(
                "docs/configuration.md: the default of `{key}` is neither `a TOML value` nor *a word*"
            ));
            continue;
        };
        let text = match key.split_once('.') {
            Some((section, k)) => format!("[{section}]\n{k} = {value}\n"),
            None => format!("{key} = {value}\n"),
        };
        match Config::parse_toml(&text) {
            Ok(c) if c == Config::default() => {}
            Ok(_) => problems.push(format!(
                "docs/configuration.md: `{key}` does not default to {value}"
            )),
            Err(e) => problems.push(format!("docs/configuration.md: the default of `{key}`: {e}")),
        }
    }
    // The full example loads, and holds every key.
    match toml_block(md, "A full example") {
        None => problems.push("docs/configuration.md: no ```toml block under \"## A full example\"".into()),
        Some(example) => {
            if let Err(e) = Config::from_toml(example) {
                problems.push(format!(
                    "docs/configuration.md: the full example does not load: {e}"
                ));
            }
            match example.parse::<toml::Table>() {
                Err(e) => problems.push(format!("docs/configuration.md: the full example: {e}")),
                Ok(t) => {
                    let mut keys = BTreeSet::new();
                    toml_keys(&t, "", &accepted.maps, &mut keys);
                    let all: BTreeSet<String> = accepted.keys.union(&accepted.maps).cloned().collect();
                    for k in all.difference(&keys) {
                        problems.push(format!(
                            "docs/configuration.md: the full example leaves out `{k}`"
                        ));
                    }
                    for k in keys.difference(&all) {
                        problems.push(format!(
                            "docs/configuration.md: the full example has `{k}`, unknown"
                        ));
                    }
                }
            }
        }
    }
    // Every other TOML snippet of the page loads too.
    let mut rest = md;
    while let Some(i) = rest.find("```toml\n") {
        let open = i + "```toml\n".len();
        let Some(len) = rest[open..].find("```") else {
            break;
        };
        if let Err(e) = Config::from_toml(&rest[open..open + len]) {
            problems.push(format!(
                "docs/configuration.md: a TOML snippet does not load: {e}"
            ));
        }
        rest = &rest[open + len + 3..];
    }
    problems
}

// ------------------------------------------------------------ the tests

#[test]
fn every_citation_points_at_something_that_exists() {
    let files = repository();
    assert!(files.len() > 100, "the walk found only {} files", files.len());
    for doc in [
        "docs/design.md",
        "docs/attacks.md",
        "docs/configuration.md",
        "docs/simulation.md",
    ] {
        assert!(files.contains_key(doc), "{doc} is missing");
    }
    let index = docs(&files);
    let mut problems = Vec::new();
    let mut cited = 0;
    for (path, text) in &files {
        cited += text.lines().map(|l| cited_paths(l).len()).sum::<usize>();
        problems.extend(citation_problems(path, text, &files, &index));
        if path.ends_with(".md") {
            problems.extend(link_problems(path, text, &files, &index));
        }
    }
    // The corpus alone cites the catalogue about seventy times.
    assert!(
        cited > 70,
        "only {cited} citations of docs/ found: is the scan broken?"
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_configuration_page_matches_the_loader() {
    let read = |p: &str| std::fs::read_to_string(root().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let problems = config_problems(&read("core/src/config.rs"), &read("docs/configuration.md"));
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// `docs/NAME.md`, built so that this file does not cite it.
fn p(name: &str) -> String {
    format!("docs/{name}.md")
}

/// A small repository with one of each kind of broken citation.
fn fake_repository() -> Files {
    let mut files = Files::new();
    files.insert(
        p("attacks"),
        "# Catalogue\n\n| # | form |\n|---|---|\n| 1 | a |\n| S2 | b |\n".into(),
    );
    files.insert(p("design"), "# Design\n\n## The one property\n\ntext\n".into());
    let good = format!(
        "{} #1, #S2\n{} \"The one property\"\nsee [the design]({}#the-one-property)\n",
        p("attacks"),
        p("design"),
        p("design")
    );
    files.insert("good.md".into(), good);
    let bad = [
        format!("@source nmap test 99; {} #99", p("attacks")),
        format!("// see {} \"No such section\"", p("design")),
        format!("// see {} \"The one", p("design")),
        format!("// see {}", p("nothing")),
        format!("@source {} #1, #7", p("attacks")),
        format!("@source {} row 3", OLD_NAMES[1]),
        format!("[gone]({}#no-such-anchor) [out](../../elsewhere.md)", p("design")),
    ];
    files.insert("bad.md".into(), bad.join("\n"));
    files
}

#[test]
fn broken_citations_are_caught() {
    let files = fake_repository();
    let index = docs(&files);
    let check = |f: &str| {
        let mut p = citation_problems(f, &files[f], &files, &index);
        p.extend(link_problems(f, &files[f], &files, &index));
        p
    };
    assert_eq!(check("good.md"), Vec::<String>::new());
    let problems = check("bad.md");
    let (attacks, design) = (p("attacks"), p("design"));
    let expect = [
        format!("bad.md:1: {attacks} has no entry #99"),
        format!("bad.md:2: {design} has no heading \"No such section\""),
        format!("bad.md:3: a heading of {design} is cited without its closing quote"),
        format!("bad.md:4: cites {}, which does not exist", p("nothing")),
        format!("bad.md:5: {attacks} has no entry #7"),
        "bad.md:6: cites ATTACKS".to_string(),
        format!("bad.md:7: {design} has no heading with the anchor #no-such-anchor"),
        format!("bad.md:7: the link {design}#no-such-anchor: no heading with that anchor"),
        "bad.md:7: the link ../../elsewhere.md points outside the repository".to_string(),
    ];
    for e in &expect {
        assert!(
            problems.iter().any(|p| p.starts_with(e)),
            "not caught: {e}\n{problems:#?}"
        );
    }
    assert_eq!(problems.len(), expect.len(), "{problems:#?}");
}

#[test]
fn configuration_mismatches_are_caught() {
    let read = |p: &str| std::fs::read_to_string(root().join(p)).unwrap();
    let config_rs = read("core/src/config.rs");
    let md = read("docs/configuration.md");
    // An undocumented key, a documented key that does not exist, a wrong default.
    let row = |k: &str| format!("| `{k}` |");
    assert!(md.contains(&row("max_errors")) && md.contains("| `max_errors` | `20` |"));
    let broken = md
        .replace(&row("data_timeout_secs"), &row("data_timeout_seconds"))
        .replace("| `max_errors` | `20` |", "| `max_errors` | `10` |");
    let problems = config_problems(&config_rs, &broken);
    for e in [
        "the loader accepts `limits.data_timeout_secs`, which is not documented",
        "documents `limits.data_timeout_seconds`, which the loader does not accept",
        "`limits.max_errors` does not default to 10",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(e)),
            "not caught: {e}\n{problems:#?}"
        );
    }
    // A full example with a key the loader refuses, and one key left out.
    let broken = md.replacen("max_recipients = 100\n", "max_recipient = 100\n", 1);
    let problems = config_problems(&config_rs, &broken);
    for e in [
        "the full example does not load",
        "the full example leaves out `limits.max_recipients`",
        "the full example has `limits.max_recipient`, unknown",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(e)),
            "not caught: {e}\n{problems:#?}"
        );
    }
    // A field added to the loader and not documented.
    let grown = config_rs.replacen(
        "    pub data_timeout_secs: u64,\n",
        "    pub data_timeout_secs: u64,\n    pub idle_timeout_secs: u64,\n",
        1,
    );
    assert_ne!(grown, config_rs, "the field to grow from is gone");
    let problems = config_problems(&grown, &md);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("accepts `limits.idle_timeout_secs`, which is not documented")),
        "{problems:#?}"
    );
}
