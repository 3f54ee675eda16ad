//! The workload's part of the report: rates, errors, the schedule kept or
//! not, a replay's pool, the operations met by the migration; and the
//! warnings a reader must see about them and about the sampler's gaps.

use std::time::Duration;

use super::latency::per_phase;
use super::{Bounds, latency, ms, round3, us_to_ms};
use crate::fmt::{fmt_count, fmt_ms};
use crate::report::model::*;
use crate::run_record::{Outcome, RunRecord, WorkloadRecord};
use crate::timeline::Slot;

pub fn summary(rec: &RunRecord, bounds: &Bounds) -> WorkloadSummary {
    let w = &rec.workload;
    // The measured window: from the baseline to the end.
    let window = rec.end.saturating_sub(bounds.baseline_at).as_secs_f64().max(1e-9);
    let by_code = w.errors();
    let issued_rate = w.issued_measured as f64 / window;
    let lag_p99 = us_to_ms(w.schedule_lag.value_at_quantile(0.99));
    WorkloadSummary {
        target_rate: w.target_rate,
        achieved_rate: round3(w.finished_measured() as f64 / window),
        issued_rate: round3(issued_rate),
        connections: w.connections,
        errors: by_code.values().map(|(n, _)| n).sum(),
        error_detail: by_code
            .iter()
            .map(|((c, code), (n, msg))| ErrorCount {
                class: w.classes[*c].clone(),
                sqlstate: code.clone(),
                count: *n,
                message: msg.clone(),
            })
            .collect(),
        unfinished: w.unfinished,
        dropped: w.dropped,
        schedule_lag_p50_ms: us_to_ms(w.schedule_lag.value_at_quantile(0.5)),
        schedule_lag_p99_ms: lag_p99,
        // Little lag, the rate issued, nothing dropped.
        kept_schedule: lag_p99 <= 10.0 && issued_rate >= 0.98 * w.target_rate && w.dropped == 0,
        pool: w.pool.as_ref().map(|p| PoolSummary {
            size: p.size,
            wait: per_phase(&p.wait)
                .into_iter()
                .map(|(phase, h)| (phase, h.as_ref().map(latency).unwrap_or_default()))
                .collect(),
        }),
        during: Some(during_workload(w, bounds.migration())),
    }
}

/// What the report must warn about the client and the workload, given its summary.
pub fn warnings(rec: &RunRecord, bounds: &Bounds, s: &WorkloadSummary) -> Vec<String> {
    let w = &rec.workload;
    let mut warnings = Vec::new();
    if !s.kept_schedule {
        warnings.push(format!(
            "the client could not keep the schedule (issued {:.0} of {:.0} ops/s, schedule lag p99 {} ms): \
             latency includes client overload; lower {} or run on a bigger machine",
            s.issued_rate,
            w.target_rate,
            s.schedule_lag_p99_ms,
            if w.replay { "workload.speed" } else { "workload.rate" }
        ));
    }
    if w.unfinished > 0 {
        warnings.push(format!(
            "{} operations were still queued or running when the run ended (they count in latency with the time \
             they had waited)",
            w.unfinished
        ));
    }
    if w.dropped > 0 {
        warnings.push(format!(
            "the client was overloaded: {} operations of the schedule were never started (its queue of {} was \
             full); lower workload.rate or run on a bigger machine",
            fmt_count(w.dropped),
            fmt_count(crate::workload::QUEUE_CAPACITY as u64)
        ));
    }
    warnings.extend(short_migration_warning(w, bounds.migration()));
    warnings
}

/// The sampler's gaps, each with the steps (that ran) it overlaps.
pub fn sampler_gaps(rec: &RunRecord) -> Vec<SamplerGap> {
    rec.sampler
        .gaps
        .iter()
        .map(|g| SamplerGap {
            from_ms: ms(g.from),
            to_ms: ms(g.to),
            steps: (rec.migration.steps.iter().enumerate())
                .filter(|(_, s)| s.outcome != Outcome::Skipped && g.from < s.start + s.duration && s.start < g.to)
                .map(|(i, _)| i)
                .collect(),
        })
        .collect()
}

pub fn gap_warning(g: &SamplerGap) -> String {
    let during = match g.steps.as_slice() {
        [] => String::new(),
        steps => format!(
            " during step {}: what the migration blocked then is missing, so this run is no evidence of its impact",
            steps.iter().map(|i| (i + 1).to_string()).collect::<Vec<_>>().join(", ")
        ),
    };
    format!(
        "the lock sampler's session ended and it saw nothing from {} to {} (it reconnected){during}; \
         blocked sessions and sampled locks of that time are not in this report",
        fmt_ms(g.from_ms),
        fmt_ms(g.to_ms)
    )
}

/// The operations that started while the migration ran: the schedule's
/// target over `duration` (a replay's own count; none for a closed loop),
/// what the mean rate expects, and how many finished, ok or error.
fn during_workload(w: &WorkloadRecord, duration: Duration) -> DuringWorkload {
    let secs = duration.as_secs_f64();
    let (target, expected) = match (w.replay_schedule, w.target_rate.is_finite()) {
        (Some(s), _) => (Some(s.during as f64), Some(round3(s.mean_rate * secs))),
        (None, true) => (Some(round3(w.target_rate * secs)), Some(round3(w.target_rate * secs))),
        (None, false) => (None, None),
    };
    let completed =
        w.finished.iter().enumerate().filter(|(i, _)| Slot::from_index(*i).is_during()).map(|(_, n)| n).sum();
    DuringWorkload { target, expected, completed }
}

/// A migration shorter than the time between two operations, that no
/// operation met: the run says little of what traffic meets.
fn short_migration_warning(w: &WorkloadRecord, duration: Duration) -> Option<String> {
    let d = during_workload(w, duration);
    let expected = d.expected.filter(|e| *e < 1.0 && d.completed == 0)?;
    Some(format!(
        "no workload operation started while the migration ran ({}; {expected:.2} were due at the workload's mean \
         rate): raise workload.rate (or workload.speed) to see how traffic meets it",
        fmt_ms(ms(duration)),
    ))
}
