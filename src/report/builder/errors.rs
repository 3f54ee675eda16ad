//! New error classes: a query class failing with a SQLSTATE while the
//! migration ran (or after it) that it did not fail with in the baseline,
//! and what each means for the running application.

use std::collections::BTreeMap;

use crate::fmt::fmt_count;
use crate::report::model::*;
use crate::run_record::RunRecord;
use crate::timeline::Slot;

/// The order in time of the slots after the baseline: steps, then between
/// steps (a commit), then after.
fn time_order(s: Slot) -> (u8, usize) {
    match s {
        Slot::Step(i) => (0, i),
        Slot::Between => (1, 0),
        _ => (2, 0),
    }
}

/// Each (class, SQLSTATE) that failed while the migration ran or after it
/// and never in the baseline, at the slot where it first appeared.
pub fn new_errors(rec: &RunRecord) -> Vec<NewError> {
    let w = &rec.workload;
    let in_baseline = |c: usize, code: &str| w.slot_errors.contains_key(&(Slot::Baseline.index(), c, code.to_string()));
    let mut found: BTreeMap<(usize, String), (Slot, u64, String)> = BTreeMap::new();
    for ((s, c, code), (n, msg)) in &w.slot_errors {
        let slot = Slot::from_index(*s);
        if !(slot.is_during() || slot == Slot::After) || in_baseline(*c, code) {
            continue;
        }
        let e = found.entry((*c, code.clone())).or_insert((slot, 0, msg.clone()));
        e.1 += n;
        if time_order(slot) < time_order(e.0) {
            (e.0, e.2) = (slot, msg.clone());
        }
    }
    let mut out: Vec<NewError> = found
        .into_iter()
        .map(|((c, code), (slot, count, message))| NewError {
            step: if let Slot::Step(i) = slot { Some(i) } else { None },
            phase: match slot {
                Slot::Step(_) => Onset::Step,
                Slot::Between => Onset::Between,
                _ => Onset::After,
            },
            class: w.classes.get(c).cloned().unwrap_or_default(),
            meaning: error_meaning(&code),
            sqlstate: code,
            count,
            message,
        })
        .collect();
    out.sort_by_key(|e| (e.step.is_none(), e.step, e.phase.name(), e.class.clone()));
    out
}

/// What a SQLSTATE that a migration causes means for the running application.
pub fn error_meaning(code: &str) -> String {
    match code {
        "0A000" => "the migration changed a result type under server-side prepared statements: drivers that \
             prepare (JDBC, pgx, asyncpg, Rails) fail with \"cached plan must not change result type\" until \
             they prepare the statement again (a reconnect, or a deploy); keep the old column and type until the \
             application no longer reads it, or have the driver re-prepare"
            .into(),
        "42703" => "a column the running application uses was renamed or dropped: its queries fail until the new \
             code is deployed; add the new column first, deploy, and drop the old one later (expand and contract)"
            .into(),
        "42P01" => "a table the running application uses was renamed or dropped: its queries fail until the new \
             code is deployed; keep the old name (a view) until no code uses it"
            .into(),
        "23502" => "NOT NULL was set while the running application still inserts NULL: its writes fail; deploy \
             code that always sets the column (or add a default) before SET NOT NULL"
            .into(),
        "57014" => "the application's statements hit their statement_timeout waiting behind the migration: in \
             production these requests fail; shorten the migration's lock (lock_timeout and retries, a phased form)"
            .into(),
        "40P01" => "the application's transactions deadlocked with the migration: in production one of them is \
             rolled back; take the migration's locks in the order the application does, or one table at a time"
            .into(),
        _ => format!(
            "the migration makes this query fail with SQLSTATE {code}: the running application would see these \
             errors until it is changed"
        ),
    }
}

/// One new error class in a sentence, for the verdict and the renderers.
pub fn new_error_line(r: &Report, e: &NewError) -> String {
    let at = match e.step.and_then(|i| r.steps.get(i).map(|s| (i, s))) {
        Some((i, s)) => format!("step {} ({})", i + 1, s.name),
        None if e.phase == Onset::Between => "the migration outside a step (BEGIN, COMMIT)".to_string(),
        None => "after the migration".to_string(),
    };
    format!(
        "{at} made {} fail with {} ({} times, first: {})",
        e.class,
        e.sqlstate,
        fmt_count(e.count),
        e.message.lines().next().unwrap_or_default()
    )
}
