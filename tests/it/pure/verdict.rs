//! The verdict without a server: `compare` carries an inconclusive
//! candidate through, in its status and every format (`pg::verdict` judges
//! real runs; `pure::report_builder` snapshots the verdict of built records).

use crate::common::repo;
use lockimpact::report::Report;
use lockimpact::report::compare;
use lockimpact::report::model::{Inconclusive, VerdictStatus};
use lockimpact::report::output::Format;
use lockimpact::report::render::{Doc, render};

/// `compare` shows an inconclusive candidate as such, in its status and in
/// every format, and a failure outranks it.
#[test]
fn compare_carries_an_inconclusive_candidate() {
    let path = repo().join("tests/fixtures/report.json");
    let base: Report = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut unsure = base.clone();
    unsure.verdict.pass = false;
    unsure.verdict.status = Some(VerdictStatus::Inconclusive);
    unsure.verdict.inconclusive = vec![Inconclusive {
        reason: "workload_during".into(),
        expected: Some(40.0),
        actual: Some(0.0),
        message: "the workload completed 0 of the 40 operations".into(),
    }];
    let c = compare::build(vec![base.clone(), unsure.clone()], Vec::new());
    assert_eq!(c.status(), VerdictStatus::Inconclusive);
    assert!(!c.pass);
    for format in [Format::Text, Format::Markdown, Format::Html] {
        let mut out = Vec::new();
        render(Doc::Compare(&c), format, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("INCONCLUSIVE"), "{format:?}:\n{text}");
        assert!(text.contains("the workload completed 0 of the 40 operations"), "{format:?}:\n{text}");
    }
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["status"], "inconclusive");
    assert_eq!(json["candidates"][1]["totals"]["status"], "inconclusive");

    let mut failed = base;
    failed.verdict.pass = false;
    failed.verdict.status = Some(VerdictStatus::Fail);
    assert_eq!(compare::build(vec![failed, unsure], Vec::new()).status(), VerdictStatus::Fail);
}
