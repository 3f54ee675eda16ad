//! The most likely remedy of an exceeded budget: the hint of the step that
//! exceeded it most (see `hints`), or, when that step has none, where to look.

use crate::fmt::short;
use crate::report::model::{Report, Violation};

/// One line for `v`, when it names a step.
pub fn remedy(r: &Report, v: &Violation) -> Option<String> {
    let i = v.step?;
    let s = r.steps.get(i)?;
    let step = format!("step {} ({})", i + 1, short(&s.name, 40));
    if let Some(h) = s.hints.first() {
        return Some(format!("{step}: use {}", h.kind.change()));
    }
    let what = match v.budget.as_str() {
        "max_blocked" | "max_blocked_wait" | "max_blocked_sessions" | "max_p99_during" | "max_p99_during_class" => {
            let held =
                s.locks.iter().rev().max_by_key(|l| l.mode).map(|l| format!(" held {} on {} and", l.mode, l.relation));
            format!(
                "{step}{} blocked the workload most: make it hold its locks for less time (split it)",
                held.unwrap_or_default()
            )
        }
        "max_step" => format!("{step} took longest: batch it, or run it apart from the deploy"),
        "max_errors" | "new_errors" => {
            format!("{step} breaks the running application: deploy code that works with both schemas first")
        }
        "migration_completes" => format!("{step} failed: fix it (or the data it fails on) and rehearse again"),
        "max_replica_lag" | "max_replica_lag_bytes" => {
            format!("{step} wrote WAL faster than the standby replayed it: batch it, with a pause between batches")
        }
        "max_standby_blocked" => format!(
            "{step} held a lock that the standbys replayed, and their reads waited for it: split it so that no slow \
             statement runs in the transaction that holds the lock"
        ),
        "max_sync_commit_added" => format!(
            "{step} wrote WAL that every commit then waited for the synchronous standby to confirm: batch it, with \
             a pause between batches"
        ),
        "max_subscriber_errors" => format!(
            "{step} changed a published table in a way the subscriber cannot apply: run the same DDL on the \
             subscriber first (logical replication carries rows, not DDL)"
        ),
        _ => return None,
    };
    Some(what)
}
