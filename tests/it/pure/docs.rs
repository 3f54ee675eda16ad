//! The documentation stays true and readable: every relative link in
//! README.md, ARCHITECTURE.md, BENCHMARKS.md and docs/*.md reaches a file
//! (and its `#anchor` a heading there, by GitHub's slug rules); the README
//! stays a user's guide a newcomer finishes (at most 350 lines); and every
//! example output tagged `<!-- example: tests/golden/FILE -->` still has the
//! shape of the renderers' golden output of a real run, with numbers of the
//! same order of magnitude. When the renderers change and the golden files
//! are regenerated, the examples fail here, naming the block and the line to
//! refresh.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::common::repo;

/// The README's length limit: past it, user material sinks under reference
/// material again (issue 17: 1,340 lines that no newcomer finished).
const README_MAX_LINES: usize = 350;

/// How far a number in an example may be from the golden output's (either way).
const MAGNITUDE: f64 = 10.0;

/// The Markdown files whose links and examples are checked.
fn documents() -> Vec<PathBuf> {
    let root = repo();
    let mut files: Vec<PathBuf> =
        ["README.md", "ARCHITECTURE.md", "BENCHMARKS.md"].iter().map(|f| root.join(f)).filter(|p| p.exists()).collect();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

fn rel(path: &Path) -> String {
    path.strip_prefix(repo()).unwrap_or(path).display().to_string()
}

/// The lines of a Markdown text outside fenced code blocks, with their numbers (1-based).
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

/// A heading's anchor as GitHub makes it: lower case, punctuation dropped
/// (letters, digits, `-` and `_` kept), spaces become `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every anchor of a Markdown file: its headings' slugs, a repeated one
/// numbered `-1`, `-2`, … as GitHub does.
fn anchors(text: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (_, line) in prose_lines(text) {
        let Some(heading) = line.strip_prefix('#') else { continue };
        let heading = heading.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let base = slug(heading);
        let n = seen.entry(base.clone()).or_insert(0);
        out.push(if *n == 0 { base.clone() } else { format!("{base}-{n}") });
        *n += 1;
    }
    out
}

/// The targets of inline links `[text](target)` in a line, code spans skipped.
fn link_targets(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '`' => in_code = !in_code,
            ']' if !in_code && chars.get(i + 1) == Some(&'(') => {
                let rest: String = chars[i + 2..].iter().collect();
                if let Some(end) = rest.find(')') {
                    out.push(rest[..end].trim().to_string());
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Why a relative link does not resolve, if it does not.
fn broken(from: &Path, target: &str) -> Option<String> {
    if target.contains("://") || target.starts_with("mailto:") {
        return None;
    }
    let (path, anchor) = match target.split_once('#') {
        Some((p, a)) => (p, Some(a)),
        None => (target, None),
    };
    let file = if path.is_empty() { from.to_path_buf() } else { from.parent().unwrap().join(path) };
    if !file.exists() {
        return Some(format!("{} does not exist", file.display()));
    }
    let anchor = anchor?;
    if file.extension().is_none_or(|e| e != "md") {
        return None;
    }
    let text = std::fs::read_to_string(&file).unwrap();
    let known = anchors(&text);
    (!known.iter().any(|a| a == anchor)).then(|| format!("no heading in {} has the anchor #{anchor}", rel(&file)))
}

#[test]
fn every_relative_link_resolves_to_a_file_and_heading() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for (n, line) in prose_lines(&text) {
            for target in link_targets(line) {
                checked += 1;
                if let Some(why) = broken(&doc, &target) {
                    problems.push(format!("{}:{n}: ({target}): {why}", rel(&doc)));
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} links found: the link scanner is broken");
    assert!(problems.is_empty(), "broken links:\n{}", problems.join("\n"));
}

/// What moved out of the README stays one click away from it.
#[test]
fn the_readme_links_every_document_in_docs() {
    let text = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let linked: Vec<String> = prose_lines(&text).iter().flat_map(|(_, l)| link_targets(l)).collect();
    let unlinked: Vec<String> = documents()
        .iter()
        .map(|d| rel(d))
        .filter(|d| d.starts_with("docs/") || d == "ARCHITECTURE.md" || d == "BENCHMARKS.md")
        .filter(|d| !linked.iter().any(|t| t.split('#').next() == Some(d.as_str())))
        .collect();
    assert!(unlinked.is_empty(), "README.md links none of: {}", unlinked.join(", "));
}

#[test]
fn the_readme_is_short_enough_to_finish() {
    let text = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let lines = text.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, over {README_MAX_LINES}: it is the user's guide a newcomer reads to the end \
         (issue 17); move reference or developer material to docs/ and link it"
    );
}

/// A line reduced to its shape: each number (with its unit, if any) becomes
/// `#`, runs of spaces one space. Returns the shape and the numbers in a
/// base unit (ms for durations, bytes for sizes).
fn skeleton(line: &str) -> (String, Vec<f64>) {
    let chars: Vec<char> = line.chars().collect();
    let (mut shape, mut numbers) = (String::new(), Vec::new());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let starts_number = c.is_ascii_digit() && (i == 0 || !chars[i - 1].is_alphanumeric());
        if starts_number {
            let mut text = String::new();
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || (matches!(chars[i], '.' | ',')
                        && !(chars[i] == '.' && text.contains('.'))
                        && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())))
            {
                if chars[i] != ',' {
                    text.push(chars[i]);
                }
                i += 1;
            }
            let (scale, len) = unit(&chars[i..]);
            i += len;
            numbers.push(text.parse::<f64>().unwrap() * scale);
            shape.push('#');
            continue;
        }
        if c.is_whitespace() {
            if !shape.ends_with(' ') {
                shape.push(' ');
            }
        } else {
            shape.push(c);
        }
        i += 1;
    }
    (shape.trim().to_string(), numbers)
}

/// The unit after a number (` ms`, `s`, ` kB`, …) as a factor to the base
/// unit, and how many characters it spans; `(1, 0)` when there is none.
fn unit(rest: &[char]) -> (f64, usize) {
    let space = usize::from(rest.first() == Some(&' '));
    let word: String = rest[space..].iter().take_while(|c| c.is_alphabetic()).collect();
    let scale = match word.as_str() {
        "µs" | "us" => 0.001,
        "ms" | "B" => 1.0,
        "s" => 1000.0,
        "min" => 60_000.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => return (1.0, 0),
    };
    (scale, space + word.chars().count())
}

/// An example block: where it is, its golden source, its lines.
struct Example {
    at: String,
    source: String,
    lines: Vec<String>,
}

/// Every fenced block right after an `<!-- example: PATH -->` comment.
fn examples(doc: &Path) -> Vec<Example> {
    let text = std::fs::read_to_string(doc).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(source) = line.trim().strip_prefix("<!-- example:").and_then(|s| s.strip_suffix("-->")) else {
            continue;
        };
        let fence = i + 1;
        assert!(
            lines.get(fence).is_some_and(|l| l.trim_start().starts_with("```")),
            "{}:{}: an example comment must be right before a fenced block",
            rel(doc),
            i + 1
        );
        let body: Vec<String> = lines[fence + 1..]
            .iter()
            .take_while(|l| !l.trim_start().starts_with("```"))
            .map(|l| l.to_string())
            .collect();
        out.push(Example { at: format!("{}:{}", rel(doc), fence + 1), source: source.trim().to_string(), lines: body });
    }
    out
}

/// Where the example's lines stop matching the golden output, if they do:
/// each line (`…` elides) must match, in order, a golden line of the same
/// shape whose numbers are within a factor of ten.
fn mismatch(example: &Example, golden: &str) -> Option<String> {
    let golden: Vec<(String, Vec<f64>)> = golden.lines().map(skeleton).collect();
    let mut from = 0;
    for (k, line) in example.lines.iter().enumerate() {
        if matches!(line.trim(), "…" | "...") {
            continue;
        }
        let (shape, numbers) = skeleton(line);
        let same_shape = golden[from..].iter().position(|(s, _)| *s == shape);
        let Some(offset) = same_shape else {
            return Some(format!(
                "line {} of the block has no line of that shape in {} (after the lines matched so far):\n  {line}\n  \
                 shape: {shape}",
                k + 1,
                example.source
            ));
        };
        let (_, expected) = &golden[from + offset];
        for (got, want) in numbers.iter().zip(expected) {
            let (lo, hi) = if got < want { (*got, *want) } else { (*want, *got) };
            if hi > MAGNITUDE * lo.max(1.0) {
                return Some(format!(
                    "line {} of the block: {got} where {} has {want} (ms and bytes; more than {MAGNITUDE}× apart):\n  {line}",
                    k + 1,
                    example.source
                ));
            }
        }
        from += offset + 1;
    }
    None
}

#[test]
fn example_outputs_match_the_golden_outputs_of_real_runs() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        for example in examples(&doc) {
            checked += 1;
            let path = repo().join(&example.source);
            let Ok(golden) = std::fs::read_to_string(&path) else {
                problems.push(format!("{}: the example's source {} does not exist", example.at, example.source));
                continue;
            };
            if let Some(why) = mismatch(&example, &golden) {
                problems.push(format!("{}: {why}", example.at));
            }
        }
    }
    assert!(checked >= 3, "only {checked} tagged examples: the README's three uses each show one");
    assert!(
        problems.is_empty(),
        "example outputs no longer look like the golden outputs (after a renderer change, refresh the examples \
         from a real run of the same scenario):\n{}",
        problems.join("\n\n")
    );
}

/// A block that looks like a report (its first line, or a verdict) must be
/// tagged, so that no example escapes the check above.
#[test]
fn every_report_example_is_tagged_with_its_source() {
    let mut untagged = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut fenced_at: Option<usize> = None;
        for (i, line) in lines.iter().enumerate() {
            if !line.trim_start().starts_with("```") {
                continue;
            }
            match fenced_at.take() {
                None => fenced_at = Some(i),
                Some(start) => {
                    let body = &lines[start + 1..i];
                    let report = body.iter().any(|l| {
                        l.starts_with("lockimpact rehearsal")
                            || l.starts_with("lockimpact comparison")
                            || l.starts_with("Verdict:")
                            || l.contains(") is safer: it blocked")
                            || l.trim_start().starts_with("#    step")
                    });
                    let tagged = start > 0
                        && (lines[start - 1].trim().starts_with("<!-- example:")
                            || lines[start - 1].trim().starts_with("<!-- example-unchecked:"));
                    if report && !tagged {
                        untagged.push(format!("{}:{}", rel(&doc), start + 1));
                    }
                }
            }
        }
    }
    assert!(
        untagged.is_empty(),
        "report output without an `<!-- example: tests/golden/FILE -->` line before it (or `<!-- example-unchecked: \
         why -->` for output no golden file covers):\n{}",
        untagged.join("\n")
    );
}

#[test]
fn the_checker_catches_a_drifted_example() {
    let golden = "lockimpact rehearsal: x\n  workload:  target 200.2 ops/s, 16 connections\nVerdict: PASS\n";
    let example = |lines: &[&str]| Example {
        at: "test".into(),
        source: "golden".into(),
        lines: lines.iter().map(|l| l.to_string()).collect(),
    };
    assert_eq!(mismatch(&example(&["lockimpact rehearsal: x", "…", "Verdict: PASS"]), golden), None);
    assert_eq!(mismatch(&example(&["  workload:  target 150 ops/s, 16 connections"]), golden), None);
    let far = mismatch(&example(&["  workload:  target 2500 ops/s, 16 connections"]), golden);
    assert!(far.is_some_and(|m| m.contains("more than 10")));
    let reordered = mismatch(&example(&["Verdict: PASS", "lockimpact rehearsal: x"]), golden);
    assert!(reordered.is_some_and(|m| m.contains("line 2")));
    assert_eq!(skeleton("  1 *  add  7.09 s   590.6 ms  1.5 MB").0, "# * add # # #");
    assert_eq!(skeleton("7.09 s").1, [7090.0]);
    assert_eq!(skeleton("lockimpact 0.1.0, 1,203 rows").1, [0.1, 0.0, 1203.0]);
    assert_eq!(
        slug("Rehearsing on an existing server (`url` backend)"),
        "rehearsing-on-an-existing-server-url-backend"
    );
}
