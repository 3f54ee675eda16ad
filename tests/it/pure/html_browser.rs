//! The HTML reports open in headless Chromium (Debian's `chromium`, which
//! `bash scripts/setup --tests` installs) without errors, and the charts are drawn:
//! the rendered DOM holds the three SVG charts per rehearsal (and a replay-lag
//! chart per standby) with non-empty series paths, and a screenshot is written.

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

/// The fixture with one standby whose lag rises during the migration's steps.
fn with_standby() -> Report {
    let mut r = fixture::<Report>("tests/fixtures/report.json");
    let (from, to) = (r.steps[0].start_ms, r.steps.last().map(|s| s.start_ms + s.duration_ms).unwrap());
    let series: Vec<serde_json::Value> = (0..r.timeline.len() * 10)
        .map(|i| {
            let t = i as f64 * 100.0;
            serde_json::json!([t, if (from..=to).contains(&t) { 4_000_000 } else { 20_000 }])
        })
        .collect();
    let standby = serde_json::json!({
        "name": "lockimpact_standby_1", "samples": series.len(), "max_lag_bytes": 4_000_000,
        "max_lag_at_ms": from, "max_lag_step": 0, "max_lag_phase": null, "baseline_max_lag_bytes": 20_000,
        "max_write_lag_ms": null, "max_flush_lag_ms": null, "max_replay_lag_ms": 120.0, "steps": [],
        "blocked_sessions": 0, "max_blocked_at_once": 0, "longest_blocked_ms": 0.0,
        "conflicts": {"lock": 0, "snapshot": 0, "bufferpin": 0, "deadlock": 0, "tablespace": 0}, "cancels": 0,
        "lag_series": series,
    });
    r.replicas =
        Some(serde_json::from_value(serde_json::json!({"interval_ms": 100.0, "standbys": [standby]})).unwrap());
    r
}

#[test]
fn run_report_with_a_standby_draws_its_lag_chart() {
    check(Doc::Run(&with_standby()), 4);
}

/// The rendered boxes of the step labels (`text.bl`) of each chart, read by
/// a script the test adds to its own copy of the page: per chart, the
/// chart's box and each label's text and box (left, top, right, bottom).
type Boxes = Vec<(Vec<f64>, Vec<(String, Vec<f64>)>)>;

fn label_boxes(doc: Doc) -> Boxes {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let mut html = Vec::new();
    render(doc, Format::Html, &mut html).unwrap();
    let probe = r#"<script>
const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
const charts = [...document.querySelectorAll('svg.chart')].map(svg =>
  [box(svg), [...svg.querySelectorAll('text.bl')].map(t => [t.textContent, box(t)])]);
const pre = document.createElement('pre'); pre.id = 'boxes'; pre.textContent = JSON.stringify(charts);
document.body.appendChild(pre);
</script></body>"#;
    let html = String::from_utf8(html).unwrap().replace("</body>", probe);
    std::fs::write(&page, html).unwrap();
    let (dom, _) = browse(&page, dir.path());
    let json = dom.split("<pre id=\"boxes\">").nth(1).and_then(|s| s.split("</pre>").next()).expect("the probe ran");
    serde_json::from_str(&json.replace("&quot;", "\"").replace("&amp;", "&")).expect("boxes as JSON")
}

fn overlap(a: &[f64], b: &[f64]) -> bool {
    a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]
}

/// No two step labels of a chart overlap, and each lies inside its chart,
/// as Chromium draws them.
fn assert_labels_apart(doc: Doc) -> usize {
    let charts = label_boxes(doc);
    let mut labels = 0;
    for (chart, boxes) in &charts {
        for (i, (text, b)) in boxes.iter().enumerate() {
            assert!(b[0] >= chart[0] && b[2] <= chart[2], "label {text:?} {b:?} outside its chart {chart:?}");
            for (other, c) in &boxes[i + 1..] {
                assert!(!overlap(b, c), "step labels {text:?} {b:?} and {other:?} {c:?} overlap");
            }
        }
        labels += boxes.len();
    }
    labels
}

#[test]
fn step_labels_do_not_overlap_when_steps_start_in_the_same_second() {
    // Candidate A's first three steps start within 10 ms of each other.
    let labels = assert_labels_apart(Doc::Compare(&fixture::<Comparison>("tests/fixtures/comparison.json")));
    assert!(labels > 0, "no step label drawn");
}

#[test]
fn step_labels_do_not_overlap_with_many_steps_at_the_end() {
    // Thirty short steps packed into the run's last second, past the plot's right edge.
    let mut r = fixture::<Report>("tests/fixtures/report.json");
    let end = r.timeline.len() as f64 * 1000.0;
    let step = r.steps[0].clone();
    r.steps = (0..30)
        .map(|i| lockimpact::report::model::StepReport {
            name: format!("step number {i} with a long name"),
            start_ms: end - 900.0 + i as f64 * 30.0,
            duration_ms: 20.0,
            ..step.clone()
        })
        .collect();
    r.longest_step = Some(0);
    assert!(assert_labels_apart(Doc::Run(&r)) > 0, "no step label drawn");
}
