//! The verdict: the report against its budget (pass or fail), and whether
//! the run is evidence at all (inconclusive).

use super::errors::new_error_line;
use super::ms;
use crate::fmt::{fmt_count, fmt_ms};
use crate::report::model::*;
use crate::run_record::Outcome;
use crate::run_record::budget::{BudgetSection, NewErrors};

/// Each threshold of `b` by its budget key (durations in ms).
pub(super) fn limits(b: &BudgetSection) -> Vec<BudgetLimit> {
    let dur = |key: &str, d: Option<crate::files::dur::Dur>| d.map(|d| (key.to_string(), ms(d.0)));
    let count = |key: &str, n: Option<u64>| n.map(|n| (key.to_string(), n as f64));
    let mut out: Vec<(String, f64)> = [
        dur("max_blocked", b.max_blocked),
        dur("max_blocked_wait", b.max_blocked_wait),
        count("max_blocked_sessions", b.max_blocked_sessions.map(u64::from)),
        dur("max_p99_during", b.max_p99_during),
        dur("max_step", b.max_step),
        count("max_errors", b.max_errors),
    ]
    .into_iter()
    .flatten()
    .collect();
    out.extend(b.max_p99_during_class.iter().map(|(c, d)| (format!("max_p99_during_class.{c}"), ms(d.0))));
    out.extend(super::replica::limits(b));
    out.into_iter().map(|(budget, limit)| BudgetLimit { budget, limit }).collect()
}

/// Share of its target the during phase must complete to be evidence; one
/// operation is spared for the phase's edges (an operation due at the last
/// instant of the baseline may start in it, and one due at its end after).
const DURING_MIN_SHARE: f64 = 0.9;

/// Why the run is no evidence, one entry per reason (empty when it is).
pub fn inconclusive(r: &Report) -> Vec<Inconclusive> {
    let mut out = Vec::new();
    out.extend(r.workload.during.as_ref().and_then(|d| workload_during(r, d)));
    out.extend(sampler_blind(r));
    out
}

/// The lock sampler could not see part of a step (its session ended until it
/// reconnected): who the migration blocked then is unknown.
fn sampler_blind(r: &Report) -> Option<Inconclusive> {
    let steps: Vec<usize> = r.sampler.gaps.iter().flat_map(|g| g.steps.iter().copied()).collect();
    let (first, last) = (steps.iter().min()?, steps.iter().max()?);
    let which =
        if first == last { format!("step {}", first + 1) } else { format!("steps {}–{}", first + 1, last + 1) };
    Some(Inconclusive {
        reason: "sampler_blind".into(),
        expected: None,
        actual: None,
        message: format!(
            "the lock sampler's session ended during {which} and saw nothing until it reconnected: \
             who the migration blocked then is unknown (see sampler.gaps)"
        ),
    })
}

/// The workload during the migration: nothing finished, or less than
/// `DURING_MIN_SHARE` of what the schedule asked for. A schedule that
/// expects less than one operation (a migration shorter than the
/// time between two at the workload's mean rate) is left to a warning:
/// whether one ran is chance.
fn workload_during(r: &Report, d: &DuringWorkload) -> Option<Inconclusive> {
    let short = d.target.is_some_and(|t| (d.completed as f64) < DURING_MIN_SHARE * t - 1.0);
    let by_chance = d.expected.is_some_and(|e| e < 1.0);
    if (d.completed > 0 || by_chance) && !short {
        return None;
    }
    let took = fmt_ms(r.migration.duration_ms);
    let asked = match d.target {
        Some(t) => format!("{} of the {} operations its schedule asked for", fmt_count(d.completed), fmt_target(t)),
        None => format!("{} operations", fmt_count(d.completed)),
    };
    let why = if d.target == Some(0.0) {
        "the replay's recording has no statement in that time: record a busier window, or lower workload.speed"
            .to_string()
    } else if r.workload.unfinished > 0 {
        format!(
            "{} operations were still queued or running when the run ended: the workload's statements did not finish, or the client could not keep up (lower workload.rate, check its SQL)",
            fmt_count(r.workload.unfinished)
        )
    } else if !r.workload.kept_schedule {
        "the client could not keep the schedule: lower workload.rate or run on a bigger machine".to_string()
    } else {
        "the workload fell behind its schedule while the migration ran".to_string()
    };
    Some(Inconclusive {
        reason: "workload_during".into(),
        expected: d.target,
        actual: Some(d.completed as f64),
        message: format!(
            "the workload completed {asked} while the migration ran ({took}), so the run shows little of what \
             the migration does to traffic; {why}"
        ),
    })
}

/// A target count: whole, or with one decimal below 10.
fn fmt_target(t: f64) -> String {
    if t < 10.0 && t.fract() != 0.0 { format!("{t:.1}") } else { fmt_count(t.round() as u64) }
}

/// Checks the report against the scenario's budget.
pub fn verdict(r: &Report, b: &BudgetSection) -> Verdict {
    let mut v = threshold_violations(r, b);
    v.extend(new_error_violation(r, b));
    v.extend(super::replica::violations(r, b));
    v.extend(completion_violations(r));
    v.extend(verify_violations(r));
    for x in &mut v {
        x.remedy = super::remedy::remedy(r, x);
    }
    let inconclusive = inconclusive(r);
    let status = match (v.is_empty(), inconclusive.is_empty()) {
        (false, _) => VerdictStatus::Fail,
        (true, false) => VerdictStatus::Inconclusive,
        (true, true) => VerdictStatus::Pass,
    };
    Verdict { pass: status == VerdictStatus::Pass, violations: v, status: Some(status), inconclusive }
}

/// The numeric thresholds of `b` that the report exceeds, each with the
/// step that exceeded it most.
fn threshold_violations(r: &Report, b: &BudgetSection) -> Vec<Violation> {
    let mut v = Vec::new();
    let mut check = |budget: &str, limit: f64, actual: f64, what: String, step: Option<usize>| {
        if actual > limit {
            v.push(Violation { step, ..Violation::new(budget, limit, actual, what) });
        }
    };
    if let Some(d) = b.max_blocked {
        let what = format!(
            "sessions were blocked by the migration for {} summed over the sessions (budget {})",
            fmt_ms(r.blocked.total_ms),
            fmt_ms(ms(d.0))
        );
        check("max_blocked", ms(d.0), r.blocked.total_ms, what, most(r, |s| s.blocked_ms));
    }
    if let Some(d) = b.max_blocked_wait {
        let what =
            format!("a session waited {} on the migration (budget {})", fmt_ms(r.blocked.longest_ms), fmt_ms(ms(d.0)));
        let step = most(r, |s| s.longest_blocked_ms.unwrap_or(0.0));
        check("max_blocked_wait", ms(d.0), r.blocked.longest_ms, what, step);
    }
    if let Some(n) = b.max_blocked_sessions {
        let what = format!("{} sessions were blocked by the migration at once (budget {n})", r.blocked.max_concurrent);
        let step = most(r, |s| s.blocked_sessions as f64 + s.blocked_ms / 1e9);
        check("max_blocked_sessions", n as f64, r.blocked.max_concurrent as f64, what, step);
    }
    for (class, phases) in &r.latency {
        let limits = [
            ("max_p99_during", b.max_p99_during),
            ("max_p99_during_class", b.max_p99_during_class.get(class).copied()),
        ];
        for (key, limit) in limits {
            let (Some(d), Some(l)) = (limit, phases.get(&Phase::During)) else { continue };
            let what =
                format!("p99 of {class} during the migration was {} (budget {})", fmt_ms(l.p99_ms), fmt_ms(ms(d.0)));
            // The step that blocked the workload most, else the one the class was slowest in.
            let step =
                most(r, |s| s.blocked_ms).or_else(|| most(r, |s| s.latency.get(class).map_or(0.0, |l| l.p99_ms)));
            check(key, ms(d.0), l.p99_ms, what, step);
        }
    }
    if let (Some(d), Some(i)) = (b.max_step, r.longest_step) {
        let s = &r.steps[i];
        let what = format!("step {} ({}) took {} (budget {})", i + 1, s.name, fmt_ms(s.duration_ms), fmt_ms(ms(d.0)));
        check("max_step", ms(d.0), s.duration_ms, what, Some(i));
    }
    if let Some(n) = b.max_errors {
        let what = format!("the workload saw {} errors (budget {n})", r.workload.errors);
        check("max_errors", n as f64, r.workload.errors as f64, what, r.new_errors.first().and_then(|e| e.step));
    }
    v
}

/// The step with the largest `f` (the first of equals), when one is above zero.
fn most(r: &Report, f: impl Fn(&StepReport) -> f64) -> Option<usize> {
    let (i, s) = r.steps.iter().enumerate().rev().max_by(|a, b| f(a.1).total_cmp(&f(b.1)))?;
    (f(s) > 0.0).then_some(i)
}

/// New error classes, unless the budget allows them.
fn new_error_violation(r: &Report, b: &BudgetSection) -> Option<Violation> {
    (b.new_errors == NewErrors::NotAllowed && !r.new_errors.is_empty()).then(|| {
        let lines: Vec<String> = r.new_errors.iter().map(|e| new_error_line(r, e)).collect();
        let step = r.new_errors.first().and_then(|e| e.step);
        Violation { step, ..Violation::new("new_errors", 0.0, r.new_errors.len() as f64, lines.join("; ")) }
    })
}

/// Under every budget a step's verify passes.
fn verify_violations(r: &Report) -> impl Iterator<Item = Violation> + '_ {
    r.steps.iter().enumerate().filter_map(|(i, s)| {
        let e = s.verify.as_ref()?.error.as_ref()?;
        let what = format!("the verify of step {} ({}) failed: {e}", i + 1, s.name);
        Some(Violation { step: Some(i), ..Violation::new("verify", 0.0, 1.0, what) })
    })
}

/// Under every budget the run and the migration complete.
fn completion_violations(r: &Report) -> Vec<Violation> {
    let mut v = Vec::new();
    if let Some(reason) = &r.incomplete_reason {
        v.push(Violation::new("run_completes", 1.0, 0.0, format!("the run is incomplete: {reason}")));
    }
    if !r.migration.committed {
        let failed = r.steps.iter().enumerate().find(|(_, s)| !matches!(s.outcome, Outcome::Ok | Outcome::Skipped));
        let what = match failed {
            Some((i, s)) => {
                format!("the migration did not complete: step {} ({}) ended with {}", i + 1, s.name, s.outcome.as_str())
            }
            None => match r.migration.command.as_ref().and_then(|c| c.exit_code.filter(|&c| c != 0)) {
                Some(code) => format!("the migration did not complete: the migration command exited with code {code}"),
                None => "the migration did not complete".to_string(),
            },
        };
        let step = failed.map(|(i, _)| i);
        v.push(Violation { step, ..Violation::new("migration_completes", 1.0, 0.0, what) });
    }
    v
}
