//! Golden tests of the renderers: a fixed report (tests/fixtures/report.json,
//! taken from a real run) rendered to the terminal and to JSON must match
//! tests/golden/report.txt and the fixture itself, byte for byte. After an intended change to a
//! renderer, regenerate them with `UPDATE_GOLDEN=1 cargo test --test golden`
//! and review the diff.

use std::path::PathBuf;

use lockimpact::report::{Report, render};

const FIXTURE: &str = "tests/fixtures/report.json";

fn fixture() -> Report {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("the fixture matches the report model")
}

fn check(name: &str, rendered: Vec<u8>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name);
    let rendered = String::from_utf8(rendered).unwrap();
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
    let mut out = Vec::new();
    render::terminal::render(&fixture(), &mut out).unwrap();
    check("tests/golden/report.txt", out);
}

/// The JSON renderer writes back exactly the fixture it read: no field of the
/// public contract is lost, renamed or reformatted.
#[test]
fn json_report_round_trips() {
    let mut out = Vec::new();
    render::json::render(&fixture(), &mut out).unwrap();
    check(FIXTURE, out);
}
