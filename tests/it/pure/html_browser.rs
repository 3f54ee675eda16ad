//! The HTML reports open in headless Chromium (Debian's `chromium`, which
//! `bash scripts/setup --tests` installs) without errors, and the charts are drawn:
//! the rendered DOM holds the three SVG charts per rehearsal with non-empty
//! series paths, and a screenshot is written.

use std::path::{Path, PathBuf};
use std::process::Command;

use lockimpact::report::Report;
use lockimpact::report::compare::Comparison;
use lockimpact::report::output::Format;
use lockimpact::report::render::{Doc, render};

fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("chromium is not installed; `bash scripts/setup --tests` installs it (apt-get install chromium)")
}

fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn browse(page: &Path, dir: &Path) -> (String, String) {
    let base = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr"];
    let shot = dir.join("shot.png");
    let out = Command::new(chromium())
        .args(base)
        .args(["--window-size=1280,2000", &format!("--screenshot={}", shot.display())])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "screenshot of {} bytes", png.len());
    let out = Command::new(chromium())
        .args(base)
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(out.status.success());
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn check(doc: Doc, charts: usize) {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let mut f = std::fs::File::create(&page).unwrap();
    render(doc, Format::Html, &mut f).unwrap();
    drop(f);
    let (dom, log) = browse(&page, dir.path());
    // No page errors in the browser's console log.
    for bad in ["Uncaught", "CONSOLE(", "Failed to load"] {
        assert!(!log.contains(bad), "{bad} in the browser log:\n{log}");
    }
    assert_eq!(dom.matches("<svg").count(), charts, "SVG charts in the DOM");
    // Every chart draws at least one series with points in it.
    for svg in dom.split("<svg").skip(1) {
        let svg = &svg[..svg.find("</svg>").expect("closed svg")];
        let drawn = svg.split("class=\"series\" d=\"M").count() - 1;
        assert!(drawn >= 1, "a chart without a drawn series: {}", &svg[..svg.len().min(300)]);
    }
    // Steps are shaded on the time charts.
    assert!(dom.contains("class=\"band\""));
}

#[test]
fn run_report_opens_and_draws_its_charts() {
    check(Doc::Run(&fixture::<Report>("tests/fixtures/report.json")), 3);
}

#[test]
fn comparison_opens_and_draws_both_candidates_charts() {
    check(Doc::Compare(&fixture::<Comparison>("tests/fixtures/comparison.json")), 6);
}
