//! What the renderers promise beyond the golden files, on reports made from
//! the real-run fixtures: the Markdown comment names no detail of the
//! disposable server and stays under GitHub's limit whatever the migration's
//! size; a replay's idle classes fold into one line; count axes read whole
//! numbers; the annotated migration is in every format; a comparison says
//! whether its candidates ran at the same time.

use std::collections::BTreeMap;

use crate::common::repo;
use lockimpact::report::Report;
use lockimpact::report::compare::{self, Comparison};
use lockimpact::report::model::{Latency, Phase};
use lockimpact::report::output::Format;
use lockimpact::report::render::markdown::COMMENT_LIMIT;
use lockimpact::report::render::{Doc, render};

fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
    serde_json::from_str(&std::fs::read_to_string(repo().join(name)).unwrap()).unwrap()
}

fn report() -> Report {
    fixture("tests/fixtures/report.json")
}

fn rendered(doc: Doc, format: Format) -> String {
    let mut out = Vec::new();
    render(doc, format, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn markdown_names_no_port_of_the_disposable_server() {
    let mut r = report();
    r.clone.backend = "local server binaries in /usr/lib/postgresql/15/bin, port 41269".into();
    r.clone.kind = Some("local server binaries".into());
    let md = rendered(Doc::Run(&r), Format::Markdown);
    assert!(!md.contains("41269") && !md.contains(", port "), "{md}");
    assert!(md.contains("local server binaries"));
    // The terminal and HTML reports, read on the machine that ran it, keep it.
    assert!(rendered(Doc::Run(&r), Format::Text).contains("port 41269"));
}

/// A migration of 3,000 steps with long SQL: the comment is cut under the
/// limit, says what was cut, and its sections stay balanced.
#[test]
fn markdown_stays_under_the_comment_limit() {
    let mut r = report();
    let step = r.steps[0].clone();
    let sql = "UPDATE orders SET note = 'a fairly long value to fill the comment' WHERE id % 3000 = 1;\n".repeat(4);
    r.steps = (0..3000)
        .map(|i| lockimpact::report::model::StepReport {
            name: format!("step {i}"),
            sql: Some(sql.clone()),
            ..step.clone()
        })
        .collect();
    for doc in [Doc::Run(&r), Doc::Compare(&compare::build(vec![r.clone(), r.clone()], Vec::new()))] {
        let md = rendered(doc, Format::Markdown);
        let chars = md.chars().count();
        assert!(chars <= COMMENT_LIMIT, "{chars} characters");
        assert!(md.contains("Cut to stay under GitHub's 65536-character limit"), "no cut note");
        assert_eq!(md.matches("<details>").count(), md.matches("</details>").count());
        assert_eq!(md.matches("```").count() % 2, 0, "an unclosed code fence");
    }
    // A small report is not cut.
    assert!(!rendered(Doc::Run(&report()), Format::Markdown).contains("Cut to stay under"));
}

/// A replay with 81 classes, 3 of which ran: the idle ones take one line.
#[test]
fn classes_without_operations_fold_into_one_line() {
    let mut r = report();
    let idle: BTreeMap<Phase, Latency> = Phase::MEASURED.iter().map(|&p| (p, Latency::default())).collect();
    for i in 0..78 {
        r.latency.insert(format!("replayed_statement_{i:02}"), idle.clone());
    }
    let text = rendered(Doc::Run(&r), Format::Text);
    let table: Vec<&str> =
        text.split("Latency per query class").nth(1).unwrap().lines().skip(2).take_while(|l| !l.is_empty()).collect();
    let busy = report().latency.len() * Phase::MEASURED.len();
    assert_eq!(table.len(), busy + 1, "{}", table.join("\n"));
    assert!(table.last().unwrap().contains("78 classes without operations: replayed_statement_00"), "{table:?}");
}

/// The y-axis ticks of the count chart (operations waiting, sessions) are
/// whole numbers, each once.
#[test]
fn count_axes_read_whole_numbers() {
    let html = rendered(Doc::Run(&report()), Format::Html);
    let chart = html.split("<svg").nth(2).expect("the second chart counts");
    let ticks: Vec<&str> =
        chart.split("class=\"yt\"").skip(1).map(|t| t.split('>').nth(1).unwrap().split('<').next().unwrap()).collect();
    assert_eq!(ticks.len(), 5, "{ticks:?}");
    let values: Vec<u64> = ticks.iter().map(|t| t.parse().unwrap_or_else(|_| panic!("tick {t:?}"))).collect();
    assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");
}

/// Every format shows each step's SQL with what was measured beside it.
#[test]
fn every_format_annotates_the_migration() {
    let c: Comparison = fixture("tests/fixtures/comparison.json");
    for format in [Format::Text, Format::Markdown, Format::Html] {
        let out = rendered(Doc::Compare(&c), format);
        for cand in &c.candidates {
            for (i, s) in cand.report.steps.iter().enumerate() {
                let sql = s.sql.as_deref().expect("the fixture records each step's SQL");
                let first = sql.lines().next().unwrap().replace('\'', "&#39;").replace('>', "&gt;");
                let first = if format == Format::Html { first } else { sql.lines().next().unwrap().to_string() };
                assert!(out.contains(&first), "{format:?}: step {} SQL {first:?} missing", i + 1);
            }
        }
        assert!(out.contains("summed"), "{format:?}: blocked time not said to be summed");
    }
}

/// `--fail-at`'s stop points appear in every format, with what each left
/// and whether its rollback was clean; the JSON keeps them.
#[test]
fn every_format_shows_the_stop_points() {
    use lockimpact::report::model::{RollbackReport, StopPointReport};
    let mut r = report();
    let rollback = RollbackReport {
        ok: true,
        clean: false,
        duration_ms: 12.5,
        steps: vec![r.steps[0].clone()],
        longest_blocked_ms: 3.0,
        blocked_sessions: 2,
        residue: vec!["added index orders_note_idx".into()],
        verify: Vec::new(),
    };
    r.stop_points.push(StopPointReport {
        step: 0,
        name: r.steps[0].name.clone(),
        at: lockimpact::run_record::StopAt::End,
        point: "step 1 (add column note) at its end".into(),
        fired: Some("terminated after the statements of step 1, before its transaction committed".into()),
        completed_steps: Vec::new(),
        rows_kept: 0,
        rolled_back_as_one: None,
        left: vec!["added index orders_note_idx (INVALID)".into()],
        rollback,
        new_errors: Vec::new(),
        violations: Vec::new(),
        error: None,
    });
    for format in [Format::Text, Format::Markdown, Format::Html] {
        let out = rendered(Doc::Run(&r), format);
        assert!(out.contains("Stop points (--fail-at): 1 rehearsals"), "{format:?}: {out}");
        assert!(out.contains("left added index orders_note_idx (INVALID)"), "{format:?}");
        assert!(out.contains("still differs: added index orders_note_idx"), "{format:?}");
    }
    let json: serde_json::Value = serde_json::from_str(&rendered(Doc::Run(&r), Format::Json)).unwrap();
    assert_eq!(json["stop_points"][0]["at"], "end");
    assert_eq!(json["stop_points"][0]["rollback"]["clean"], false);
    assert!(serde_json::to_string(&report()).unwrap().find("stop_points").is_none(), "absent without --fail-at");
}

/// `compare --parallel`: every format says the candidates ran at the same
/// time and names each one's copy method; asked but not honoured, it says why.
#[test]
fn a_concurrent_comparison_says_so_in_every_format() {
    let mut r = report();
    r.dataset.copy_method = Some("reflink".into());
    let mut c = compare::build(vec![r.clone(), r], Vec::new());
    c.concurrent = true;
    let json: serde_json::Value = serde_json::from_str(&rendered(Doc::Compare(&c), Format::Json)).unwrap();
    assert_eq!(json["concurrent"], true);
    for format in [Format::Text, Format::Markdown, Format::Html] {
        let out = rendered(Doc::Compare(&c), format);
        assert!(out.contains("A and B ran at the same time (--parallel)"), "{format:?}:\n{out}");
        assert!(out.contains("fresh copy") && out.contains("reflink"), "{format:?}:\n{out}");
    }
    c.concurrent = false;
    c.sequential_why = Some("no reflinks on tmpfs".into());
    for format in [Format::Text, Format::Markdown, Format::Html] {
        let out = rendered(Doc::Compare(&c), format);
        assert!(out.contains("--parallel was asked, but the candidates ran one after the other: no reflinks on tmpfs"));
        assert!(!out.contains("ran at the same time"), "{format:?}");
    }
}

/// `run --scales`: three constructed reports of one step growing linearly
/// with the rows give a linear fit, a prediction at 5M rows, and a
/// `max_step` risk (500 ms at 1M rows, within 1 s; 2.5 s predicted); every
/// format shows the section and the warning, JSON carries the fields.
#[test]
fn every_format_shows_the_extrapolation_and_its_budget_risk() {
    use lockimpact::report::model::{BudgetLimit, BudgetReport, BudgetSource, Figure, PredictSource};
    let at = |rows: u64| {
        let mut r = report();
        r.steps.truncate(1);
        r.steps[0].kind = lockimpact::run_record::StepType::Sql;
        r.steps[0].outcome = lockimpact::run_record::Outcome::Ok;
        r.steps[0].duration_ms = rows as f64 / 2000.0;
        r.steps[0].lock_wait_ms = 0.0;
        r.steps[0].wal_bytes = Some(rows * 30);
        r.budget = Some(BudgetReport {
            source: BudgetSource::Scenario,
            limits: vec![BudgetLimit { budget: "max_step".into(), limit: 1000.0 }],
        });
        (rows, r)
    };
    let runs = [at(100_000), at(300_000), at(1_000_000)];
    let refs: Vec<(u64, &Report)> = runs.iter().map(|(n, r)| (*n, r)).collect();
    let e = lockimpact::report::builder::extrapolate(&refs, 5_000_000, PredictSource::Flag);
    let duration = &e.steps[0].figures[&Figure::DurationMs];
    assert_eq!(duration.model, lockimpact::report::fit::Model::Linear);
    assert!((duration.predicted - 2500.0).abs() < 1e-6, "{duration:?}");
    assert_eq!(e.risks.len(), 1, "{:?}", e.risks);
    assert!(e.risks[0].likely && e.risks[0].budget == "max_step");
    let mut r = runs[2].1.clone();
    r.extrapolation = Some(e);
    for format in [Format::Text, Format::Markdown, Format::Html] {
        let out = rendered(Doc::Run(&r), format);
        assert!(out.contains("Extrapolation to 5,000,000 rows"), "{format:?}: {out}");
        assert!(out.contains("it would exceed the budget"), "{format:?}");
        assert!(out.contains("a + b·n"), "{format:?}");
    }
    let json: serde_json::Value = serde_json::from_str(&rendered(Doc::Run(&r), Format::Json)).unwrap();
    assert_eq!(json["extrapolation"]["steps"][0]["figures"]["duration_ms"]["model"], "linear");
    assert_eq!(json["extrapolation"]["risks"][0]["budget"], "max_step");
    assert!(serde_json::to_string(&report()).unwrap().find("extrapolation").is_none(), "absent without --scales");
}
