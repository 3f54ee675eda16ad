//! `run --scales`: the reports of one scenario rehearsed at several row
//! counts → each step's duration, lock hold, blocked time and WAL fitted
//! against the rows (`report::fit`) and predicted at production's row
//! count, and the budgets a step passes at the largest scale but would
//! exceed there.

use std::collections::BTreeMap;

use crate::fmt::{fmt_count, fmt_ms};
use crate::report::fit::{self, LEVEL};
use crate::report::model::{
    BudgetRisk, Extrapolation, Figure, FigureFit, PredictSource, Report, StepExtrapolation, StepReport,
};
use crate::run_record::{Outcome, StepType};

/// The extrapolation of `runs` (rows, report; ascending rows, the last one
/// the report it is attached to) to `predict_rows`.
pub fn extrapolate(runs: &[(u64, &Report)], predict_rows: u64, source: PredictSource) -> Extrapolation {
    let mut notes = Vec::new();
    let mut steps = Vec::new();
    if let Some((_, last)) = runs.last() {
        for (i, s) in last.steps.iter().enumerate() {
            if s.kind == StepType::Pause || s.rollback {
                continue;
            }
            match step_series(runs, i) {
                Ok(series) => steps.push(fit_step(i, s, &series, predict_rows, &mut notes)),
                Err(why) => notes.push(format!("step {} ({}) is not extrapolated: {why}", i + 1, s.name)),
            }
        }
    }
    let risks = runs.last().map(|(rows, last)| risks(last, *rows, &steps, predict_rows)).unwrap_or_default();
    Extrapolation {
        scales: runs.iter().map(|r| r.0).collect(),
        predict_rows,
        predict_source: source,
        level: LEVEL,
        steps,
        risks,
        notes,
        scaled_vars: Vec::new(),
    }
}

/// Step `i` as each scale measured it; an error when a scale did not run it to its end.
fn step_series<'a>(runs: &[(u64, &'a Report)], i: usize) -> Result<Vec<(u64, &'a StepReport)>, String> {
    let name = &runs.last().expect("runs").1.steps[i].name;
    runs.iter()
        .map(|(rows, r)| match r.steps.get(i) {
            Some(s) if &s.name == name && s.outcome == Outcome::Ok => Ok((*rows, s)),
            Some(s) if &s.name == name => Err(format!("it ended {} at {} rows", s.outcome.as_str(), fmt_count(*rows))),
            _ => Err(format!("the rehearsal at {} rows has no such step", fmt_count(*rows))),
        })
        .collect()
}

/// A step's figure, when it was measured.
fn figure(s: &StepReport, f: Figure) -> Option<f64> {
    match f {
        Figure::DurationMs => Some(s.duration_ms),
        Figure::LockHoldMs => Some(if s.locks.is_empty() { 0.0 } else { super::hints::held_ms(s) }),
        Figure::BlockedMs => Some(s.blocked_ms),
        Figure::WalBytes => s.wal_bytes.map(|b| b as f64),
    }
}

fn fit_step(
    i: usize,
    s: &StepReport,
    series: &[(u64, &StepReport)],
    predict_rows: u64,
    notes: &mut Vec<String>,
) -> StepExtrapolation {
    let mut figures = BTreeMap::new();
    for f in Figure::ALL {
        let Some(measured) = series.iter().map(|(_, s)| figure(s, f)).collect::<Option<Vec<f64>>>() else {
            notes.push(format!("step {} ({}): {} was not measured at every scale", i + 1, s.name, f.as_str()));
            continue;
        };
        let points: Vec<(f64, f64)> = series.iter().zip(&measured).map(|((n, _), y)| (*n as f64, *y)).collect();
        let Some(fitted) = fit::fit(&points) else {
            notes.push(format!("step {}: too few scales to fit (three, of two sizes or more)", i + 1));
            break;
        };
        let p = fitted.predict(predict_rows as f64);
        figures.insert(
            f,
            FigureFit {
                measured,
                model: fitted.model,
                a: fitted.a,
                b: fitted.b,
                r2: fitted.r2,
                residuals: fitted.residuals,
                predicted: p.value,
                low: p.low,
                high: p.high,
            },
        );
    }
    StepExtrapolation { step: i, name: s.name.clone(), figures }
}

/// The step budgets (`max_step`, `max_blocked`, `max_blocked_wait`) each
/// step passes at `rows` and may exceed at `predict_rows`. `max_blocked`
/// bounds the whole run: a step predicted over it alone is a risk; steps
/// that exceed it only together are not flagged. A session queued
/// behind a step waits up to its lock hold, so `max_blocked_wait` is judged
/// by the predicted lock hold of a step that blocked a session.
fn risks(last: &Report, rows: u64, steps: &[StepExtrapolation], predict_rows: u64) -> Vec<BudgetRisk> {
    let limits = last.budget.as_ref().map(|b| b.limits.as_slice()).unwrap_or_default();
    let mut out = Vec::new();
    for e in steps {
        let s = &last.steps[e.step];
        let checks = [
            ("max_step", "took", Figure::DurationMs, Some(s.duration_ms)),
            ("max_blocked", "blocked sessions for", Figure::BlockedMs, Some(s.blocked_ms)),
            ("max_blocked_wait", "made a session wait", Figure::LockHoldMs, s.longest_blocked_ms),
        ];
        for (budget, what, f, measured) in checks {
            let (Some(limit), Some(measured), Some(fit)) =
                (limits.iter().find(|l| l.budget == budget).map(|l| l.limit), measured, e.figures.get(&f))
            else {
                continue;
            };
            if measured > limit || fit.high <= limit {
                continue;
            }
            let likely = fit.predicted > limit;
            let message = format!(
                "step {} ({}) {what} {} at {} rows, within {budget} {}; its {} is predicted at {} ({}–{}) at {} rows: \
                 it {} exceed the budget",
                e.step + 1,
                e.name,
                fmt_ms(measured),
                fmt_count(rows),
                fmt_ms(limit),
                f.as_str(),
                fmt_ms(fit.predicted),
                fmt_ms(fit.low),
                fmt_ms(fit.high),
                fmt_count(predict_rows),
                if likely { "would" } else { "may" },
            );
            out.push(BudgetRisk {
                step: e.step,
                budget: budget.into(),
                limit,
                measured,
                predicted: fit.predicted,
                high: fit.high,
                likely,
                message,
            });
        }
    }
    out
}
