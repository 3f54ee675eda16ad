//! Snapshots (insta) of the report builder on built run records: the whole
//! report of a small run, the verdict (pass, fail, inconclusive), and the
//! blocked-time arithmetic (episodes summed over sessions, overlapping,
//! crossing steps, a session's crossing episodes). No server. The expected
//! numbers are worked out by hand in each test's comment; after an intended
//! change, review the diff with `cargo insta review` (or rerun with
//! `INSTA_UPDATE=always`). With `CI` set, insta writes nothing and a
//! mismatch fails.

use lockimpact::files::dur::Dur;
use lockimpact::report::{Report, build};
use lockimpact::run_record::{BudgetSection, Outcome, Stop};
use lockimpact::timeline::Slot;
use serde_json::{Value, json};

use super::record_builder::RunBuilder;

/// The report of `run`, with the tool's version left out (it changes with every release).
fn report(run: RunBuilder) -> Report {
    let mut r = build(&run.build());
    r.tool = "lockimpact (version)".into();
    r
}

/// What the blocked-time arithmetic produced: the summary's totals and, per
/// step, its blocked time, most sessions at once and the migration's own wait.
fn blocked(r: &Report) -> Value {
    let b = &r.blocked;
    json!({
        "sessions": b.by_migration_sessions,
        "episodes": b.by_migration_episodes,
        "max_concurrent": b.max_concurrent,
        "total_ms": b.total_ms,
        "longest_ms": b.longest_ms,
        "other_episodes": b.other_episodes,
        "steps": r.steps.iter().map(|s| json!({
            "name": s.name,
            "blocked_ms": s.blocked_ms,
            "blocked_sessions": s.blocked_sessions,
            "lock_wait_ms": s.lock_wait_ms,
        })).collect::<Vec<_>>(),
    })
}

fn budget_ms(limit: u64) -> Dur {
    Dur(std::time::Duration::from_millis(limit))
}

/// One step (3.0–3.5 s), one session blocked by it for 200 ms, a few
/// latencies and one new error: every section of the model, small enough to
/// read. Phases: warmup 1000, baseline 2000, migration 500, after 1000 ms.
/// The 200 ms operation reads 200.063 ms: the histogram keeps 3 significant
/// digits, and a percentile is the highest value of its bucket.
#[test]
fn report_of_a_small_run() {
    let run = RunBuilder::new()
        .step("add column", 3000, 500)
        .blocked(11, 3100, 3300)
        .latencies(Slot::Baseline, &[1, 1, 2])
        .latencies(Slot::Step(0), &[1, 200])
        .latencies(Slot::After, &[1])
        .errors(Slot::Step(0), "42703", 2, "column \"note\" does not exist");
    insta::assert_json_snapshot!(report(run));
}

/// Two sessions blocked at once in one step (3.0–4.0 s): 3.0–3.5 and
/// 3.2–3.8 s. Total 500 + 600 = 1100 ms, longest 600, two at once.
#[test]
fn blocked_time_sums_overlapping_sessions() {
    let run = RunBuilder::new().step("lock", 3000, 1000).blocked(1, 3000, 3500).blocked(2, 3200, 3800);
    insta::assert_json_snapshot!(blocked(&report(run)));
}

/// One session's episodes crossing (the sampler dated the first end after
/// the next start): 3.0–3.6 and 3.4–3.9 s count as 3.0–3.4 and 3.4–3.9,
/// 400 + 500 = 900 ms, one session, never two at once.
#[test]
fn blocked_time_counts_a_session_once_at_a_time() {
    let run = RunBuilder::new().step("lock", 3000, 1000).blocked(1, 3000, 3600).blocked(1, 3400, 3900);
    insta::assert_json_snapshot!(blocked(&report(run)));
}

/// An episode 3.2–3.8 s across two steps (3.0–3.5, 3.5–4.0): 300 ms in
/// each, 600 in total; a third step skipped counts nothing. A session
/// blocked by another session (3.0–3.9) is not the migration's; the
/// migration's own wait (3.5–3.6) is its step's lock wait, 100 ms.
#[test]
fn blocked_time_is_split_at_step_boundaries() {
    let run = RunBuilder::new()
        .step("first", 3000, 500)
        .step_ending("second", 3500, 500, Outcome::LockTimeout, Some("55P03"))
        .skipped_step("third")
        .blocked(1, 3200, 3800)
        .blocked_by_other(2, 3000, 3900)
        .migration_waited(3500, 3600);
    insta::assert_json_snapshot!(blocked(&report(run)));
}

/// The verdict of several runs, each a variation of one step (3.0–3.5 s).
#[test]
fn verdicts() {
    let quiet = || RunBuilder::new().step("add column", 3000, 500);
    let cases = [
        // The default budget (a wait of at most 1 s) holds: pass.
        ("pass_with_the_default_budget", quiet().blocked(1, 3000, 3400)),
        // A 1.5 s wait exceeds the default budget's 1 s: fail.
        ("fail_on_the_default_budget", quiet().blocked(1, 3000, 4500).migration_ended_at(4500)),
        // The scenario's budget replaces the default: 2 sessions at once (budget 1) and 700 ms (budget 500).
        (
            "fail_on_the_scenario_budget",
            quiet().blocked(1, 3000, 3400).blocked(2, 3100, 3400).budget(BudgetSection {
                max_blocked: Some(budget_ms(500)),
                max_blocked_sessions: Some(1),
                ..BudgetSection::default()
            }),
        ),
        // Nothing finished while the migration ran: inconclusive.
        ("inconclusive_without_workload_during", quiet().completed_during(0)),
        // A failed step fails the verdict whatever else is true; the run is also inconclusive.
        (
            "fail_outranks_inconclusive",
            RunBuilder::new().step_ending("add column", 3000, 500, Outcome::Error, Some("42P01")).completed_during(0),
        ),
        // An interrupted run is incomplete: fail.
        ("fail_when_interrupted", quiet().stopped(Stop::Interrupted)),
    ];
    for (name, run) in cases {
        let r = report(run);
        insta::assert_json_snapshot!(format!("verdict_{name}"), json!({ "verdict": r.verdict, "budget": r.budget }));
    }
}
