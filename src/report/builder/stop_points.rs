//! `--fail-at`: each stop point's rehearsal summarized for the main report
//! (what the failure left, the rollback from it, the budget on that run
//! with the injected failure itself excepted), and their violations added
//! to the main verdict.

use super::{build, ms};
use crate::fmt::fmt_ms;
use crate::report::model::*;
use crate::run_record::RunRecord;

/// The stop point of a failing rehearsal's record (`None` for a run
/// without `--fail-at`).
pub fn stop_point(rec: &RunRecord) -> Option<StopPointReport> {
    let f = rec.migration.failure.as_ref()?;
    let r = build(rec);
    let undo: Vec<StepReport> = r.steps.iter().filter(|s| s.rollback).cloned().collect();
    let describe = |c: &[crate::run_record::SchemaChange]| c.iter().map(|c| c.describe()).collect::<Vec<_>>();
    let residue = describe(&f.residue);
    let rollback = RollbackReport {
        ok: f.rollback_ok && f.error.is_none(),
        clean: f.rollback_ok && f.error.is_none() && residue.is_empty(),
        duration_ms: ms(f.rollback_time),
        longest_blocked_ms: undo.iter().filter_map(|s| s.longest_blocked_ms).fold(0.0, f64::max),
        blocked_sessions: undo.iter().map(|s| s.blocked_sessions).max().unwrap_or(0),
        steps: undo,
        residue,
        verify: f.verify_after.iter().map(|(i, v)| (*i, super::verify_report(v))).collect(),
    };
    let forward = r.steps.iter().filter(|s| !s.rollback).count();
    // The forward part up to the failure is judged by the forward run; what
    // is new here is the failure's state (errors once it was left) and the rollback.
    let new_errors: Vec<NewError> =
        r.new_errors.into_iter().filter(|e| e.phase != Onset::Step || e.step.is_none_or(|i| i >= forward)).collect();
    let at = format!("stop point {}", f.point);
    let mut violations = rollback_budget(r.budget.as_ref(), &rollback, &at);
    if !new_errors.is_empty() {
        let classes: Vec<String> = new_errors.iter().map(|e| format!("{} {}", e.class, e.sqlstate)).collect();
        let what = format!("{at}: the workload failed with new errors after the failure: {}", classes.join(", "));
        violations.push(Violation::new("new_errors", 0.0, new_errors.len() as f64, what));
    }
    for (i, v) in &rollback.verify {
        if let Some(e) = &v.error {
            let what = format!("{at}: after the rollback, the verify of step {} failed: {e}", i + 1);
            violations.push(Violation { step: Some(*i), ..Violation::new("verify", 0.0, 1.0, what) });
        }
    }
    if !rollback.ok {
        let why = f.error.clone().unwrap_or_else(|| {
            let failed = rollback.steps.iter().find(|s| s.error.is_some());
            failed.map_or("a down step did not complete".into(), |s| {
                format!("{}: {}", s.name, s.error.clone().unwrap_or_default())
            })
        });
        violations.push(Violation::new("rollback_completes", 1.0, 0.0, format!("{at}: the rollback failed: {why}")));
    } else if !rollback.clean && f.undo_covers_all {
        let what = format!("{at}: after the rollback the schema still differs: {}", rollback.residue.join("; "));
        violations.push(Violation::new("rollback_restores", 0.0, rollback.residue.len() as f64, what));
    }
    Some(StopPointReport {
        step: f.step,
        name: rec.migration.steps.get(f.step).map(|s| s.name.clone()).unwrap_or_default(),
        at: f.at,
        point: f.point.clone(),
        fired: f.fired.clone(),
        completed_steps: f.completed.clone(),
        rows_kept: f.rows_kept,
        rolled_back_as_one: f.rolled_back_as_one.clone(),
        left: describe(&f.left),
        rollback,
        new_errors,
        violations,
        error: f.error.clone(),
    })
}

/// The budget's blocking and step limits, checked on the down steps.
fn rollback_budget(budget: Option<&BudgetReport>, b: &RollbackReport, at: &str) -> Vec<Violation> {
    let limit = |key: &str| budget.and_then(|x| x.limits.iter().find(|l| l.budget == key)).map(|l| l.limit);
    let total: f64 = b.steps.iter().map(|s| s.blocked_ms).sum();
    let longest = b.steps.iter().map(|s| s.duration_ms).fold(0.0, f64::max);
    let checks = [
        ("max_blocked", total, format!("the rollback blocked sessions for {}", fmt_ms(total))),
        (
            "max_blocked_wait",
            b.longest_blocked_ms,
            format!("a session waited {} on the rollback", fmt_ms(b.longest_blocked_ms)),
        ),
        (
            "max_blocked_sessions",
            b.blocked_sessions as f64,
            format!("the rollback blocked {} sessions at once", b.blocked_sessions),
        ),
        ("max_step", longest, format!("a down step took {}", fmt_ms(longest))),
    ];
    checks
        .into_iter()
        .filter_map(|(key, actual, what)| {
            let l = limit(key)?;
            (actual > l).then(|| Violation::new(key, l, actual, format!("{at}: {what} (budget {})", fmt_limit(key, l))))
        })
        .collect()
}

/// A limit as the budget states it: a duration, or a count.
fn fmt_limit(key: &str, l: f64) -> String {
    if key == "max_blocked_sessions" { format!("{l}") } else { fmt_ms(l) }
}

/// Adds the stop points to `report` and their violations to its verdict.
pub fn attach_stop_points(report: &mut Report, points: Vec<StopPointReport>) {
    let extra: Vec<Violation> = points.iter().flat_map(|p| p.violations.iter().cloned()).collect();
    if !extra.is_empty() {
        report.verdict.violations.extend(extra);
        report.verdict.pass = false;
        report.verdict.status = Some(VerdictStatus::Fail);
    }
    report.stop_points = points;
}
