//! The report's `replicas` object from a built record (no server): the
//! largest lag and where (the step running, and the step that wrote most of
//! the WAL behind), per-step maxima over the steps' time windows,
//! samples before the baseline left out, blocked standby sessions counted as
//! waits from their first poll to their last, conflicts as a difference, and
//! the replica budgets as violations (`max_standby_blocked`: the longest
//! standby wait), the lag series the HTML chart draws (downsampled, peak
//! kept), and `compare`'s totals, ranking and summary by replica numbers.

use std::time::Duration;

use lockimpact::files::dur::Dur;
use lockimpact::report::compare;
use lockimpact::report::model::LAG_SERIES_POINTS;
use lockimpact::report::output::Format;
use lockimpact::report::render::{Doc, render};
use lockimpact::run_record::replica::{Conflicts, LagSample, ReplicasRecord, StandbyRecord};
use lockimpact::run_record::{BudgetSection, RunRecord};

use super::record_builder::RunBuilder;

fn sample(at_ms: u64, lag: u64, replay_ms: Option<u64>, blocked: &[i32]) -> LagSample {
    LagSample {
        at: Duration::from_millis(at_ms),
        lag_bytes: lag,
        write_lag: None,
        flush_lag: None,
        replay_lag: replay_ms.map(Duration::from_millis),
        blocked_pids: blocked.to_vec(),
        ..Default::default()
    }
}

fn record(budget: BudgetSection) -> lockimpact::run_record::RunRecord {
    with_standby(RunBuilder::new().step("add column", 3000, 1000).step("backfill", 4000, 2000).budget(budget).build())
}

/// `rec` with one standby sampled as in `record`.
fn with_standby(mut rec: RunRecord) -> RunRecord {
    let samples = vec![
        sample(100, 9_000_000, Some(900), &[]), // warmup: left out
        sample(1500, 1_000, Some(1), &[]),
        sample(3100, 2_000, Some(2), &[7]),
        sample(3200, 3_000, Some(3), &[7, 8]),
        sample(3300, 2_500, Some(3), &[8]),
        sample(4500, 5_000_000, Some(400), &[]),
        sample(5900, 4_000_000, Some(600), &[]),
    ];
    let before = Conflicts { lock: 2, snapshot: 1, ..Default::default() };
    let after = Conflicts { lock: 5, snapshot: 1, ..Default::default() };
    rec.replicas = Some(ReplicasRecord {
        interval: Duration::from_millis(100),
        standbys: vec![StandbyRecord {
            name: "lockimpact_standby_1".into(),
            samples,
            conflicts_before: before,
            conflicts_after: after,
            ..Default::default()
        }],
    });
    rec
}

#[test]
fn replica_report_from_a_built_record() {
    let report = lockimpact::report::build(&record(BudgetSection::default()));
    let s = &report.replicas.as_ref().expect("replicas").standbys[0];
    assert_eq!(s.samples, 6, "the warmup's sample is left out");
    assert_eq!((s.max_lag_bytes, s.max_lag_at_ms, s.max_lag_step), (5_000_000, Some(4500.0), Some(1)));
    assert_eq!(s.baseline_max_lag_bytes, 1_000);
    assert_eq!(s.max_replay_lag_ms, Some(600.0));
    let steps: Vec<(u64, u64)> = s.steps.iter().map(|x| (x.max_lag_bytes, x.blocked_sessions)).collect();
    assert_eq!(steps, vec![(3_000, 2), (5_000_000, 0)]);
    assert_eq!((s.blocked_sessions, s.max_blocked_at_once, s.longest_blocked_ms), (2, 2, 100.0));
    assert_eq!((s.conflicts.lock, s.conflicts.snapshot, s.cancels), (3, 0, 3));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["replicas"]["standbys"][0]["max_lag_bytes"], 5_000_000);
}

#[test]
fn replica_budgets_are_violations() {
    let budget = BudgetSection {
        max_replica_lag: Some(Dur(Duration::from_millis(500))),
        max_replica_lag_bytes: Some(1_000_000),
        max_standby_cancels: Some(0),
        ..Default::default()
    };
    let report = lockimpact::report::build(&record(budget));
    let v: Vec<(&str, f64, Option<usize>)> =
        report.verdict.violations.iter().map(|v| (v.budget.as_str(), v.actual, v.step)).collect();
    assert!(v.contains(&("max_replica_lag", 600.0, Some(1))), "{v:?}");
    assert!(v.contains(&("max_replica_lag_bytes", 5_000_000.0, Some(1))), "{v:?}");
    assert!(v.contains(&("max_standby_cancels", 3.0, None)), "{v:?}");
    assert!(!report.verdict.pass);
    // Without standbys a record has no `replicas`, and the JSON no field.
    let plain = lockimpact::report::build(&RunBuilder::new().build());
    assert!(serde_json::to_value(&plain).unwrap().get("replicas").is_none());
}

/// A lag that outlasts the step that caused it: the peak comes while step 3
/// runs, and most of the WAL the standby is behind on is what the backfill
/// (step 2) wrote. `max_lag_wal_step` names the backfill, the terminal says
/// so, and the lag budget's violation points at it. Without the steps' WAL
/// ranges, only the step that was running is known.
#[test]
fn a_lag_that_outlasts_its_step_is_put_on_the_step_that_wrote_most_of_it() {
    let budget = BudgetSection { max_replica_lag_bytes: Some(1_000_000), ..Default::default() };
    let build = |wal: bool| {
        let mut rec = RunBuilder::new()
            .step("add column", 3000, 1000)
            .step("backfill", 4000, 2000)
            .step("set not null", 6000, 500)
            .budget(budget.clone())
            .build();
        if wal {
            for (s, (from, n)) in
                rec.migration.steps.iter_mut().zip([(1_000, 100), (2_000, 8_000_000), (8_002_000, 50)])
            {
                (s.wal_start, s.wal_bytes) = (Some(from), Some(n));
            }
        }
        let at = |ms: u64, lag: u64, replay: u64| LagSample {
            at: Duration::from_millis(ms),
            lag_bytes: lag,
            replay_lsn: Some(replay),
            ..Default::default()
        };
        // At 6.1 s the standby has not replayed even step 1's WAL, but most
        // of what it is behind on is the backfill's.
        let samples = vec![at(1500, 0, 900), at(4500, 3_000_000, 2_000_500), at(6100, 8_001_000, 500)];
        rec.replicas = Some(ReplicasRecord {
            interval: Duration::from_millis(100),
            standbys: vec![StandbyRecord { name: "lockimpact_standby_1".into(), samples, ..Default::default() }],
        });
        lockimpact::report::build(&rec)
    };
    let report = build(true);
    let s = &report.replicas.as_ref().unwrap().standbys[0];
    assert_eq!((s.max_lag_bytes, s.max_lag_step, s.max_lag_wal_step), (8_001_000, Some(2), Some(1)));
    let v = report.verdict.violations.iter().find(|v| v.budget == "max_replica_lag_bytes").expect("a violation");
    assert_eq!(v.step, Some(1), "{v:?}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["replicas"]["standbys"][0]["max_lag_wal_step"], 1);
    let mut text = Vec::new();
    render(Doc::Run(&report), Format::Text, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("step 3, behind on step 2's WAL"), "{text}");

    let report = build(false);
    let s = &report.replicas.as_ref().unwrap().standbys[0];
    assert_eq!((s.max_lag_step, s.max_lag_wal_step), (Some(2), None));
    let v = report.verdict.violations.iter().find(|v| v.budget == "max_replica_lag_bytes").expect("a violation");
    assert_eq!(v.step, Some(2), "{v:?}");
}

fn ms(n: u64) -> Dur {
    Dur(Duration::from_millis(n))
}

/// Two standby sessions each wait 100 ms (first to last poll) during step 1:
/// a 50 ms budget is exceeded there, a 100 ms one is not.
#[test]
fn max_standby_blocked_judges_the_longest_standby_wait() {
    let report =
        lockimpact::report::build(&record(BudgetSection { max_standby_blocked: Some(ms(50)), ..Default::default() }));
    let v = report.verdict.violations.iter().find(|v| v.budget == "max_standby_blocked").expect("a violation");
    assert_eq!((v.limit, v.actual, v.step), (50.0, 100.0, Some(0)), "{v:?}");
    assert_eq!(
        v.message,
        "a session on standby lockimpact_standby_1 waited 100.0 ms on a lock replayed from the primary (budget 50.0 ms)"
    );
    assert!(
        v.remedy.as_deref().unwrap().starts_with("step 1 (add column) held a lock that the standbys replayed"),
        "{v:?}"
    );
    let limits: Vec<(&str, f64)> =
        report.budget.as_ref().unwrap().limits.iter().map(|l| (l.budget.as_str(), l.limit)).collect();
    assert_eq!(limits, vec![("max_standby_blocked", 50.0)]);
    let mut text = Vec::new();
    render(Doc::Run(&report), Format::Text, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("no standby session waits on a replayed lock longer than 50.0 ms"), "{text}");
    assert!(text.contains("waited 100.0 ms on a lock replayed from the primary"), "{text}");

    let within =
        lockimpact::report::build(&record(BudgetSection { max_standby_blocked: Some(ms(100)), ..Default::default() }));
    assert!(within.verdict.pass, "{:?}", within.verdict);
}

/// `lag_series`: every sample from the baseline on while there are few;
/// with many, at most `LAG_SERIES_POINTS` in time order, the peak kept at its time.
#[test]
fn lag_series_keeps_every_sample_or_the_peak_of_each_run() {
    let report = lockimpact::report::build(&record(BudgetSection::default()));
    let s = &report.replicas.as_ref().unwrap().standbys[0];
    let expected: Vec<(f64, u64)> = vec![
        (1500.0, 1_000),
        (3100.0, 2_000),
        (3200.0, 3_000),
        (3300.0, 2_500),
        (4500.0, 5_000_000),
        (5900.0, 4_000_000),
    ];
    assert_eq!(s.lag_series, expected);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["replicas"]["standbys"][0]["lag_series"][4], serde_json::json!([4500.0, 5_000_000]));

    let mut rec = record(BudgetSection::default());
    let standby = &mut rec.replicas.as_mut().unwrap().standbys[0];
    // 10 ms polls from the baseline for 50 s; one peak at 33 333 ms.
    standby.samples = (100..5100).map(|i| sample(i * 10, if i == 3333 { 9_999_999 } else { i }, None, &[])).collect();
    let report = lockimpact::report::build(&rec);
    let series = &report.replicas.as_ref().unwrap().standbys[0].lag_series;
    assert!(series.len() <= LAG_SERIES_POINTS && series.len() > LAG_SERIES_POINTS / 2, "{} points", series.len());
    assert!(series.windows(2).all(|w| w[0].0 < w[1].0), "in time order");
    assert!(series.contains(&(33_330.0, 9_999_999)), "the peak is kept");
    assert_eq!(series.iter().map(|p| p.1).max(), Some(report.replicas.as_ref().unwrap().standbys[0].max_lag_bytes));
}

/// The HTML report draws a replay-lag chart per standby (steps shaded) and
/// the replicas tables; a report without standbys has neither.
#[test]
fn html_draws_a_lag_chart_per_standby() {
    let mut rec = record(BudgetSection::default());
    let second = rec.replicas.as_ref().unwrap().standbys[0].clone();
    rec.replicas.as_mut().unwrap().standbys.push(StandbyRecord { name: "lockimpact_standby_2".into(), ..second });
    let html = |r: &lockimpact::report::Report| {
        let mut out = Vec::new();
        render(Doc::Run(r), Format::Html, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    let with = html(&lockimpact::report::build(&rec));
    let without = html(&lockimpact::report::build(&RunBuilder::new().step("add column", 3000, 1000).build()));
    assert_eq!(with.matches("<svg").count(), without.matches("<svg").count() + 2, "one chart per standby");
    for name in ["lockimpact_standby_1", "lockimpact_standby_2"] {
        let title = format!("Replay lag of standby {name} behind the primary");
        let chart = with.split("<svg").find(|c| c.contains(&title)).expect("the standby's chart");
        let chart = &chart[..chart.find("</svg>").unwrap()];
        assert_eq!(chart.matches("class=\"band\"").count(), 2, "both steps shaded");
        assert!(chart.contains("class=\"series\" d=\"M"), "a drawn series");
        assert!(chart.contains(">5.0 MB<") || chart.contains(">6.0 MB<"), "byte ticks: {chart}");
    }
    assert!(
        with.contains("Replicas (2 streaming standby(s)") && with.contains("<th class=\"num\">max replay_lag</th>")
    );
    assert!(!without.contains("Replay lag of standby") && !without.contains("Replicas ("));
}

/// A candidate with `peak` bytes of lag, `cancels` cancelled standby
/// queries, and a workload session blocked `blocked_ms` by the migration.
fn candidate(
    name: &str,
    peak: u64,
    cancels: i64,
    blocked_ms: u64,
    budget: BudgetSection,
) -> lockimpact::report::Report {
    let mut b = RunBuilder::new().step("backfill", 3000, 2000).budget(budget);
    if blocked_ms > 0 {
        b = b.blocked(1, 3100, 3100 + blocked_ms);
    }
    let mut rec = with_standby(b.build());
    rec.scenario_name = name.into();
    let s = &mut rec.replicas.as_mut().unwrap().standbys[0];
    s.samples = vec![sample(1500, 1_000, None, &[]), sample(4000, peak, Some(10), &[])];
    s.conflicts_after = Conflicts { lock: cancels, ..Default::default() };
    s.conflicts_before = Conflicts::default();
    lockimpact::report::build(&rec)
}

/// Both block the workload alike (not at all): fewer cancels, then the
/// smaller peak lag ranks first, and the summary says so.
#[test]
fn compare_ranks_by_replica_numbers_when_the_workload_was_blocked_alike() {
    let none = BudgetSection::default;
    let c = compare::build(
        vec![candidate("oneshot", 9_000_000, 0, 0, none()), candidate("phased", 1_000_000, 0, 0, none())],
        Vec::new(),
    );
    assert_eq!(c.ranking, vec![1, 0]);
    assert_eq!(c.recommended, Some(1));
    let r = c.candidates[0].totals.replicas.as_ref().expect("replica totals");
    assert_eq!((r.max_lag_bytes, r.cancels, r.max_replay_lag_ms), (9_000_000, 0, Some(10.0)));
    assert_eq!(
        c.summary,
        "B (phased) is safer: B and A blocked the workload alike (blocked no session), and B did less to the \
         standbys. On the standbys, B lagged at most 1.0 MB behind; A lagged at most 9.0 MB behind."
    );
    // Cancelled standby queries count before the lag.
    let c = compare::build(
        vec![candidate("oneshot", 9_000_000, 0, 0, none()), candidate("phased", 1_000_000, 2, 0, none())],
        Vec::new(),
    );
    assert_eq!(c.ranking, vec![0, 1]);
    assert!(c.summary.contains("B lagged at most 1.0 MB behind, 2 standby queries cancelled"), "{}", c.summary);
    // The text rendering shows the replica rows side by side.
    let mut text = Vec::new();
    render(Doc::Compare(&c), Format::Text, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    for row in ["standby max lag", "standby queries cancelled", "longest standby wait"] {
        assert!(text.contains(row), "{row} in:\n{text}");
    }
}

/// A candidate that exceeded a replica budget ranks after one that kept
/// within its own, before the time each blocked the workload counts; the
/// workload's blocking still decides otherwise; without standbys on both
/// sides the replica numbers do not count.
#[test]
fn compare_ranks_a_candidate_over_its_replica_budget_last() {
    let lag = || BudgetSection { max_replica_lag_bytes: Some(5_000_000), ..Default::default() };
    let c = compare::build(
        vec![candidate("oneshot", 9_000_000, 0, 0, lag()), candidate("phased", 1_000_000, 0, 300, lag())],
        Vec::new(),
    );
    assert_eq!(c.ranking, vec![1, 0], "A blocked nothing but exceeded max_replica_lag_bytes");
    assert_eq!(c.candidates[0].totals.replicas.as_ref().unwrap().exceeded, vec!["max_replica_lag_bytes"]);
    assert!(
        c.summary.starts_with(
            "B (phased) is safer: A (oneshot) exceeded its replica budget (max_replica_lag_bytes) where B kept within it"
        ),
        "{}",
        c.summary
    );
    // Within budget, the workload's blocking comes before the lag.
    let none = BudgetSection::default;
    let c = compare::build(
        vec![candidate("oneshot", 9_000_000, 0, 0, none()), candidate("phased", 1_000_000, 0, 300, none())],
        Vec::new(),
    );
    assert_eq!(c.ranking, vec![0, 1]);
    assert!(
        c.summary.starts_with("A (oneshot) is safer: it blocked no session where B (phased) blocked 1"),
        "{}",
        c.summary
    );
    // One candidate without standbys: no replica criteria, no standby summary.
    let plain = lockimpact::report::build(&RunBuilder::new().step("backfill", 3000, 2000).build());
    let c = compare::build(vec![candidate("oneshot", 9_000_000, 3, 0, lag()), plain], Vec::new());
    assert_eq!(c.ranking, vec![0, 1]);
    assert!(!c.summary.contains("standbys"), "{}", c.summary);
    assert!(c.candidates[1].totals.replicas.is_none());
    let json = serde_json::to_value(&c).unwrap();
    assert!(json["candidates"][1]["totals"].get("replicas").is_none());
    assert_eq!(json["candidates"][0]["totals"]["replicas"]["max_lag_bytes"], 9_000_000);
}

/// The commit latency a synchronous standby adds and a logical subscriber's
/// errors are lines under the replicas tables, in every format.
#[test]
fn every_format_tells_the_sync_commit_latency_and_the_subscribers_errors() {
    use lockimpact::report::model::{CommitLatency, LogicalReport, Phase, SyncCommitPhase, SyncCommitReport};
    let mut report = lockimpact::report::build(&record(BudgetSection::default()));
    let standbys = &mut report.replicas.as_mut().unwrap().standbys;
    let latency = |w: f64, l: f64| CommitLatency {
        waiting_probes: 10,
        local_probes: 10,
        waiting_p50_ms: Some(w),
        local_p50_ms: Some(l),
        waiting_max_ms: Some(w * 2.0),
        added_ms: Some(w - l),
        max_waiting_sessions: 3,
    };
    standbys[0].sync_commit = Some(SyncCommitReport {
        level: "remote_apply".into(),
        failed_probes: 0,
        max_added_ms: Some(298.0),
        max_added_step: Some(1),
        max_added_phase: None,
        phases: vec![SyncCommitPhase { phase: Phase::Baseline, latency: latency(302.0, 4.0) }],
        steps: Vec::new(),
    });
    let mut sub = standbys[0].clone();
    sub.name = "lockimpact_sub".into();
    sub.sync_commit = None;
    sub.logical = Some(LogicalReport {
        slot: "lockimpact_sub".into(),
        database: "lockimpact_sub".into(),
        apply_errors: Some(1),
        sync_errors: Some(0),
        first_error_at_ms: Some(5000.0),
        first_error_step: None,
        first_error_phase: Some(Phase::After),
        published_tables: vec!["orders".into()],
        publication_note: None,
        first_error_message: Some(
            "logical replication target relation \"public.orders\" is missing replicated column: \"note\"".into(),
        ),
    });
    standbys.push(sub);
    for format in [Format::Text, Format::Markdown, Format::Html] {
        let mut out = Vec::new();
        render(Doc::Run(&report), format, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("synchronous standby lockimpact_standby_1 (synchronous_commit = remote_apply)")
                && text.contains("baseline: median 302.0 ms against 4.0 ms without waiting (+298.0 ms)")
                && text.contains("most added: 298.0 ms in step 2 (backfill)"),
            "{format:?}:\n{text}"
        );
        assert!(
            text.contains("logical subscriber lockimpact_sub (slot lockimpact_sub): 1 apply and 0 sync error(s), the first seen in the after phase")
                && text.contains("publication of orders")
                && text.contains(if format == Format::Html { "is missing replicated column: &quot;note&quot;" } else { "is missing replicated column: \"note\"" }),
            "{format:?}:\n{text}"
        );
    }
}

/// `rec`'s standby made synchronous, its commit probes waiting `waiting_ms`
/// (local ones 2 ms) in step 2 (4.0 to 6.0 s) and 5 ms before; and a
/// logical subscriber whose apply errors reach `errors` in step 2.
fn with_sync_and_subscriber(mut rec: RunRecord, waiting_ms: u64, errors: u64) -> RunRecord {
    use lockimpact::run_record::replica::{CommitProbe, LogicalRecord, SyncCommitRecord};
    let probe = |at: u64, waits: bool, took: u64| CommitProbe {
        at: Duration::from_millis(at),
        waits,
        took: Duration::from_millis(took),
    };
    let mut probes = Vec::new();
    for t in (1500..6000).step_by(100) {
        let in_step = t >= 4000;
        probes.push(probe(
            t,
            t % 200 == 0,
            if t % 200 != 0 {
                2
            } else if in_step {
                waiting_ms
            } else {
                5
            },
        ));
    }
    let reps = rec.replicas.as_mut().unwrap();
    reps.standbys[0].sync_commit = Some(SyncCommitRecord { level: "on".into(), probes, ..Default::default() });
    let logical = LogicalRecord {
        slot: "lockimpact_sub".into(),
        database: "lockimpact_sub".into(),
        errors: vec![(Duration::from_millis(1500), 0, 0), (Duration::from_millis(4500), errors, 0)],
        ..Default::default()
    };
    let sub = StandbyRecord { name: "lockimpact_sub".into(), logical: Some(logical), ..Default::default() };
    reps.standbys.push(sub);
    rec
}

/// `max_sync_commit_added` judges the largest `added_ms` (its step named),
/// `max_subscriber_errors` the subscriber's errors (the step of the first):
/// each fails when exceeded and passes when not, and every format shows the
/// budget and the violation.
#[test]
fn sync_commit_and_subscriber_budgets_are_judged() {
    let budget =
        BudgetSection { max_sync_commit_added: Some(ms(50)), max_subscriber_errors: Some(0), ..Default::default() };
    let report = lockimpact::report::build(&with_sync_and_subscriber(record(budget.clone()), 300, 2));
    let v: Vec<(&str, f64, f64, Option<usize>)> =
        report.verdict.violations.iter().map(|v| (v.budget.as_str(), v.limit, v.actual, v.step)).collect();
    assert!(v.contains(&("max_sync_commit_added", 50.0, 298.0, Some(1))), "{v:?}");
    assert!(v.contains(&("max_subscriber_errors", 0.0, 2.0, Some(1))), "{v:?}");
    for format in [Format::Text, Format::Markdown, Format::Html, Format::Json] {
        let mut out = Vec::new();
        render(Doc::Run(&report), format, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for expected in [
            "the synchronous standby lockimpact_standby_1 added 298.0 ms to the median commit in step 2",
            "the logical subscriber lockimpact_sub counted 2 error(s) (budget 0)",
        ] {
            assert!(text.contains(expected), "{format:?}: {expected:?} in:\n{text}");
        }
        if format != Format::Json {
            for expected in [
                "the synchronous standby adds at most 50.0 ms to the median commit",
                "at most 0 errors of the logical subscriber",
            ] {
                assert!(text.contains(expected), "{format:?}: {expected:?} in:\n{text}");
            }
        }
    }
    let within = lockimpact::report::build(&with_sync_and_subscriber(record(budget), 40, 0));
    assert!(within.verdict.pass, "{:?}", within.verdict);
}
