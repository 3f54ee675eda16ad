//! Golden tests of the renderers: fixed reports taken from real runs
//! (tests/fixtures/report.json, a `run`; tests/fixtures/comparison.json, a
//! `compare`) rendered as text, Markdown, HTML and JSON must match the files
//! in tests/golden/ (and the JSON the fixture itself), byte for byte. After
//! an intended change to a renderer, regenerate them with
//! `UPDATE_GOLDEN=1 cargo test --test it golden` and review the diff.

use std::path::PathBuf;

use lockimpact::report::Report;
use lockimpact::report::compare::Comparison;
use lockimpact::report::output::Format;
use lockimpact::report::render::{Doc, render};

const REPORT: &str = "tests/fixtures/report.json";
const COMPARISON: &str = "tests/fixtures/comparison.json";

fn read<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("the fixture matches the model")
}

fn check(name: &str, doc: Doc, format: Format) {
    let mut out = Vec::new();
    render(doc, format, &mut out).unwrap();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name);
    let rendered = String::from_utf8(out).unwrap();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        rendered == expected,
        "{name} differs from {}; run with UPDATE_GOLDEN=1 to accept:\n{rendered}",
        path.display()
    );
}

#[test]
fn terminal_report() {
    check("tests/golden/report.txt", Doc::Run(&read::<Report>(REPORT)), Format::Text);
}

#[test]
fn markdown_report() {
    check("tests/golden/report.md", Doc::Run(&read::<Report>(REPORT)), Format::Markdown);
}

#[test]
fn html_report() {
    check("tests/golden/report.html", Doc::Run(&read::<Report>(REPORT)), Format::Html);
}

/// The JSON renderer writes back exactly the fixture it read: no field of the
/// public contract is lost, renamed or reformatted.
#[test]
fn json_report_round_trips() {
    check(REPORT, Doc::Run(&read::<Report>(REPORT)), Format::Json);
}

#[test]
fn terminal_comparison() {
    check("tests/golden/comparison.txt", Doc::Compare(&read::<Comparison>(COMPARISON)), Format::Text);
}

#[test]
fn markdown_comparison() {
    check("tests/golden/comparison.md", Doc::Compare(&read::<Comparison>(COMPARISON)), Format::Markdown);
}

#[test]
fn html_comparison() {
    check("tests/golden/comparison.html", Doc::Compare(&read::<Comparison>(COMPARISON)), Format::Html);
}

#[test]
fn json_comparison_round_trips() {
    check(COMPARISON, Doc::Compare(&read::<Comparison>(COMPARISON)), Format::Json);
}

/// The comparison's ranking and totals are derived from its candidates'
/// reports: rebuilding it from them gives the same numbers.
#[test]
fn comparison_is_rebuilt_from_its_reports() {
    let c: Comparison = read(COMPARISON);
    let rebuilt = lockimpact::report::compare::build(
        c.candidates.iter().map(|x| x.report.clone()).collect(),
        c.differences.clone(),
    );
    assert_eq!(rebuilt, c);
    // The phased backfill blocks far less than the one-shot UPDATE.
    assert_eq!(c.ranking, vec![1, 0]);
    assert!(c.summary.starts_with("B (orders-billing-country-phased) is safer"), "{}", c.summary);
}
