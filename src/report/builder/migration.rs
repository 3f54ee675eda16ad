//! The migration's part of the report: its transaction mode, groups
//! (migration files), how the pending ones were chosen, a captured command,
//! the preflight checks, and what the report must warn about them.

use std::time::Duration;

use super::{ms, round3};
use crate::fmt::fmt_count;
use crate::report::model::*;
use crate::run_record::{CheckRecord, MigrationRecord, PreflightRecord, RunRecord, Selection};

/// The migration as a whole; `duration` is how long it ran.
pub(super) fn summary(rec: &RunRecord, steps: &[StepReport], duration: Duration) -> MigrationSummary {
    let m = &rec.migration;
    MigrationSummary {
        transaction: transaction_name(m),
        committed: m.committed,
        duration_ms: ms(duration),
        source: m.source.clone(),
        groups: groups(m, steps),
        selection: m.selection.as_ref().map(|s| selection(s, m.groups.len())),
        command: m.command.as_ref().map(|c| CommandReport {
            command: c.command.clone(),
            exit_code: c.exit_code,
            duration_ms: ms(c.duration),
            wal_bytes: c.wal_bytes,
            rewritten: c.rewritten.clone(),
            sessions: c.sessions,
            output_tail: c.output_tail.clone(),
        }),
    }
}

/// `file`, `step`, `none`; `mixed` when the groups differ; `one for all` (Drizzle).
fn transaction_name(m: &MigrationRecord) -> String {
    let name = if m.one_transaction {
        "one for all"
    } else {
        match (m.transaction, m.groups.is_empty()) {
            (Some(t), _) => t.as_str(),
            (None, true) => "",
            (None, false) => "mixed",
        }
    };
    name.to_string()
}

fn groups(m: &MigrationRecord, steps: &[StepReport]) -> Vec<GroupReport> {
    m.groups
        .iter()
        .map(|g| GroupReport {
            name: g.name.clone(),
            file: g.file.clone(),
            version: g.version.clone(),
            transaction: g.transaction.as_str().to_string(),
            first_step: g.steps.start,
            steps: g.steps.len(),
            committed: g.committed,
            has_down: g.has_down,
            captured: g.captured,
            duration_ms: round3(steps.get(g.steps.clone()).map_or(0.0, |s| s.iter().map(|s| s.duration_ms).sum())),
        })
        .collect()
}

fn selection(s: &Selection, rehearsed: usize) -> SelectionReport {
    SelectionReport {
        format: s.format.clone(),
        history_table: s.history_table.clone(),
        from: s.from.clone(),
        found: s.found,
        rehearsed,
        applied: s.applied.clone(),
        applied_before_baseline: s.applied_before_baseline.clone(),
        setup_ms: ms(s.setup_time),
    }
}

/// What the report must say about how the migration was chosen and checked.
pub(super) fn migration_warnings(m: &MigrationRecord) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(s) = &m.selection {
        out.extend(s.notes.iter().cloned());
        if !s.applied_before_baseline.is_empty() {
            out.push(format!(
                "{} pending migrations before {} were applied before the baseline, unmeasured: {}",
                s.applied_before_baseline.len(),
                s.from.as_deref().unwrap_or("--from"),
                s.applied_before_baseline.join(", ")
            ));
        }
    }
    if let Some(p) = &m.preflight {
        out.extend(p.checks.iter().filter(|c| c.violations.is_some_and(|n| n > 0)).map(check_message));
    }
    out
}

/// "step 4 will fail: 1,203 rows have billing_country NULL" (and what it says otherwise).
fn check_message(c: &CheckRecord) -> String {
    let step = c.step + 1;
    match (c.violations, &c.skipped) {
        (Some(0), _) => format!("step {step}: no row has {}", c.what),
        (Some(1), _) => format!("step {step} will fail: 1 row has {}", c.what),
        (Some(n), _) => format!("step {step} will fail: {} rows have {}", fmt_count(n), c.what),
        (None, Some(why)) => format!("step {step}: {} not checked: {why}", c.what),
        (None, None) => format!("step {step}: {} not checked", c.what),
    }
}

pub(super) fn preflight(p: &PreflightRecord) -> Preflight {
    Preflight {
        duration_ms: ms(p.duration),
        place: p.place.clone(),
        checks: p
            .checks
            .iter()
            .map(|c| CheckReport {
                step: c.step,
                statement: c.statement,
                kind: c.kind,
                relation: c.relation.clone(),
                columns: c.columns.clone(),
                detail: c.detail.clone(),
                violations: c.violations,
                examples: c.examples.clone(),
                message: check_message(c),
                duration_ms: ms(c.duration),
                skipped: c.skipped.clone(),
            })
            .collect(),
    }
}
