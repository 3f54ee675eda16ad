//! One entry per migration step: what it did (outcome, rows, rewrite, WAL),
//! the locks it held, who it blocked and for how long, and the workload's
//! latency while it ran.

use super::blocked::{Episodes, max_overlap, overlap_ms};
use super::{latency, ms, slot_errors};
use crate::pg::lockmode::HeldLocks;
use crate::report::model::{Latency, LockHeld, StepReport};
use crate::run_record::{Outcome, RunRecord, StepRecord, StepType};
use crate::timeline::Slot;

pub fn steps(rec: &RunRecord, eps: &Episodes) -> Vec<StepReport> {
    rec.migration.steps.iter().enumerate().map(|(i, s)| step(rec, eps, i, s)).collect()
}

/// The longest step that ran, pauses excluded.
pub fn longest(steps: &[StepReport]) -> Option<usize> {
    steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind != StepType::Pause && s.outcome != Outcome::Skipped)
        .max_by(|a, b| a.1.duration_ms.total_cmp(&b.1.duration_ms))
        .map(|(i, _)| i)
}

fn step(rec: &RunRecord, eps: &Episodes, i: usize, s: &StepRecord) -> StepReport {
    let (from, to) = (s.start, s.start + s.duration);
    let ran = s.outcome != Outcome::Skipped;
    let w = &rec.workload;
    let latency = w
        .classes
        .iter()
        .enumerate()
        .filter_map(|(c, name)| {
            let l = latency(w.latency[c].get(Slot::Step(i).index())?.as_ref()?);
            Some((name.clone(), Latency { errors: slot_errors(w, c, |s| s == Slot::Step(i)), ..l }))
        })
        .collect();
    StepReport {
        name: s.name.clone(),
        kind: s.kind,
        line: s.line,
        start_ms: ms(s.start),
        duration_ms: ms(s.duration),
        outcome: s.outcome,
        sqlstate: s.sqlstate.clone(),
        error: s.error.clone(),
        failed_statement: s.failed_statement,
        retries: s.retries,
        batches: s.batches,
        rows: s.rows,
        locks: locks(rec, i, s),
        rewrote: !s.rewritten.is_empty(),
        rewritten: s.rewritten.clone(),
        wal_bytes: s.wal_bytes,
        blocked_ms: if ran { overlap_ms(eps.by_migration(), from, to) } else { 0.0 },
        blocked_sessions: if ran { max_overlap(eps.by_migration(), from, to) } else { 0 },
        lock_wait_ms: if ran { overlap_ms(eps.migration.iter(), from, to) } else { 0.0 },
        longest_blocked_ms: eps
            .by_migration()
            .filter(|e| ran && e.start >= from && e.start < to)
            .map(|e| e.end.saturating_sub(e.start))
            .max()
            .map(ms),
        latency,
        group: rec.migration.groups.iter().position(|g| g.steps.contains(&i)),
        sql: s.sql.clone(),
        one_way: s.one_way.clone(),
        rollback: s.rollback,
        verify: s.verify.as_ref().map(super::verify_report),
        lock_timeout_ms: s.lock_timeout.map(ms),
        hints: Vec::new(),
    }
}

/// The strongest mode per relation: read inside the step's transaction, and
/// sampled by the sampler's polls (a lock only sampled is marked so).
fn locks(rec: &RunRecord, i: usize, s: &StepRecord) -> Vec<LockHeld> {
    let (from, to) = (s.start, s.start + s.duration);
    let captured = rec.migration.groups.iter().any(|g| g.captured && g.steps.contains(&i));
    let sampled: HeldLocks = if captured {
        // No slot of its own: the locks the sampler saw during its time.
        let spans = rec.sampler.migration_lock_spans.iter();
        spans.filter(|l| l.from <= to && l.to >= from).map(|l| (l.relation.clone(), l.mode)).collect()
    } else {
        rec.sampler.migration_locks.get(&Slot::Step(i).index()).cloned().unwrap_or_default()
    };
    let mut all = s.locks.clone();
    all.merge(&sampled);
    all.iter()
        .map(|(relation, mode)| LockHeld {
            sampled: s.locks.get(relation).is_none(),
            relation: relation.to_string(),
            mode,
        })
        .collect()
}
