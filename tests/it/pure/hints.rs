//! The safer-form hints of the report builder on built run records: each
//! rule fires on what the run observed (a lock held while sessions waited, a
//! lock-queue stall, many rows updated, a rewrite) and stays silent on the
//! same SQL when the observation is missing: never from the SQL text alone.
//! No server.

use lockimpact::pg::lockmode::LockMode;
use lockimpact::report::build;
use lockimpact::report::model::{HintKind, Report};
use std::time::Duration;

use lockimpact::run_record::{Blocker, BlockerKind, RunRecord, StepRecord, StepType, Who};

use super::record_builder::RunBuilder;

/// The record of `run` with step `i` running `sql` and holding `lock` on
/// orders, and every workload wait wanting `wanted`.
fn record(run: RunBuilder, steps: &[(&str, Option<LockMode>)], wanted: LockMode) -> RunRecord {
    let mut rec = run.build();
    for (s, (sql, lock)) in rec.migration.steps.iter_mut().zip(steps) {
        s.sql = Some(sql.to_string());
        if let Some(mode) = lock {
            s.locks.hold("orders", *mode);
        }
    }
    for e in rec.sampler.episodes.iter_mut().filter(|e| !e.who.is_migration()) {
        e.mode = wanted;
    }
    rec
}

/// The hint kinds of each step.
fn kinds(r: &Report) -> Vec<Vec<HintKind>> {
    r.steps.iter().map(|s| s.hints.iter().map(|h| h.kind).collect()).collect()
}

/// The report of one step (3.0–3.5 s) running `sql` with `lock` on orders,
/// sessions 1 and 2 waiting on it for `wanted` when `waited`; `edit` changes the step.
fn report_of(sql: &str, lock: LockMode, wanted: LockMode, waited: bool, edit: impl FnOnce(&mut StepRecord)) -> Report {
    let mut run = RunBuilder::new().step("step", 3000, 500);
    if waited {
        run = run.blocked(1, 3100, 3450).blocked(2, 3200, 3500);
    }
    let mut rec = record(run, &[(sql, Some(lock))], wanted);
    edit(&mut rec.migration.steps[0]);
    build(&rec)
}

fn hints_of(
    sql: &str,
    lock: LockMode,
    wanted: LockMode,
    waited: bool,
    edit: impl FnOnce(&mut StepRecord),
) -> Vec<HintKind> {
    kinds(&report_of(sql, lock, wanted, waited, edit)).remove(0)
}

const PLAIN_INDEX: &str = "CREATE INDEX orders_country_idx ON orders (shipping_country);";

#[test]
fn a_plain_index_that_blocked_writers_gets_concurrently() {
    let r = report_of(PLAIN_INDEX, LockMode::Share, LockMode::RowExclusive, true, |_| ());
    let h = &r.steps[0].hints;
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0].kind, HintKind::Concurrently);
    // Sessions 1 (3.10–3.45) and 2 (3.20–3.50): 350 + 300 ms.
    assert_eq!(
        h[0].observed,
        "CREATE INDEX held ShareLock on orders for 500.0 ms while 2 writing sessions waited on it, 650.0 ms summed"
    );
    assert!(h[0].advice.starts_with("CREATE INDEX CONCURRENTLY"), "{}", h[0].advice);
    // In the JSON contract.
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["steps"][0]["hints"][0]["kind"], "concurrently");
}

#[test]
fn a_plain_index_without_blocked_writers_gets_no_hint() {
    // The same SQL and lock, nobody waited.
    assert_eq!(hints_of(PLAIN_INDEX, LockMode::Share, LockMode::RowExclusive, false, |_| ()), vec![]);
    // Only readers waited (they do not conflict with ShareLock: something else held them).
    assert_eq!(hints_of(PLAIN_INDEX, LockMode::Share, LockMode::AccessShare, true, |_| ()), vec![]);
    // No lock on the table was seen.
    let mut rec = record(
        RunBuilder::new().step("step", 3000, 500).blocked(1, 3100, 3400),
        &[(PLAIN_INDEX, None)],
        LockMode::RowExclusive,
    );
    rec.migration.steps[0].locks.hold("customers", LockMode::Share);
    assert_eq!(kinds(&build(&rec)), vec![vec![]]);
    // CONCURRENTLY is the safer form already.
    let concurrent = "CREATE INDEX CONCURRENTLY orders_country_idx ON orders (shipping_country);";
    assert_eq!(hints_of(concurrent, LockMode::ShareUpdateExclusive, LockMode::RowExclusive, true, |_| ()), vec![]);
}

#[test]
fn a_validating_constraint_that_blocked_sessions_gets_not_valid_then_validate() {
    let check = "ALTER TABLE orders ADD CONSTRAINT total_positive CHECK (total_cents >= 0);";
    let r = report_of(check, LockMode::AccessExclusive, LockMode::AccessShare, true, |_| ());
    let h = &r.steps[0].hints;
    assert_eq!(kinds(&r), vec![vec![HintKind::NotValidThenValidate]]);
    assert!(
        h[0].observed.starts_with("ADD CONSTRAINT … CHECK checked every row under AccessExclusiveLock on orders"),
        "{}",
        h[0].observed
    );
    assert!(h[0].advice.contains("NOT VALID") && h[0].advice.contains("VALIDATE CONSTRAINT"), "{}", h[0].advice);
    let fk =
        "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);";
    assert_eq!(
        hints_of(fk, LockMode::ShareRowExclusive, LockMode::RowExclusive, true, |_| ()),
        vec![HintKind::NotValidThenValidate]
    );
    // Not observed: nobody waited.
    assert_eq!(hints_of(check, LockMode::AccessExclusive, LockMode::AccessShare, false, |_| ()), vec![]);
    assert_eq!(hints_of(fk, LockMode::ShareRowExclusive, LockMode::RowExclusive, false, |_| ()), vec![]);
    // NOT VALID is the safer form's first half.
    let not_valid = "ALTER TABLE orders ADD CONSTRAINT total_positive CHECK (total_cents >= 0) NOT VALID;";
    assert_eq!(hints_of(not_valid, LockMode::AccessExclusive, LockMode::AccessShare, true, |_| ()), vec![]);
}

const ADD_COLUMN: &str = "ALTER TABLE orders ADD COLUMN note text;";

/// The migration waited 3.0–3.4 s for its lock; sessions 1 and 2 queued
/// behind it from 3.1 and 3.2 s to 3.45 s when `queued`.
fn lock_queue(queued: bool, migration_wait_until: u64, edit: impl FnOnce(&mut StepRecord)) -> Report {
    let mut run = RunBuilder::new().step("add column", 3000, 500).migration_waited(3000, migration_wait_until);
    if queued {
        run = run.blocked(1, 3100, 3450).blocked(2, 3200, 3450);
    }
    let mut rec = record(run, &[(ADD_COLUMN, Some(LockMode::AccessExclusive))], LockMode::AccessShare);
    rec.sampler.episodes.iter_mut().filter(|e| e.who.is_migration()).for_each(|e| {
        e.blocker_classes = vec![Blocker { pid: 7, kind: BlockerKind::Rehearsal(Who::Class("long_report".into())) }]
    });
    edit(&mut rec.migration.steps[0]);
    build(&rec)
}

#[test]
fn a_lock_queue_stall_without_lock_timeout_gets_lock_timeout_retries() {
    let r = lock_queue(true, 3400, |_| ());
    assert_eq!(kinds(&r), vec![vec![HintKind::LockTimeoutRetries]]);
    // Queued while the migration waited (to 3.4 s): 300 + 200 ms.
    assert_eq!(
        r.steps[0].hints[0].observed,
        "the step had no lock_timeout and waited 400.0 ms for AccessExclusiveLock on orders behind long_report (pid 7) \
         while 2 sessions queued behind it, 500.0 ms summed"
    );
    assert!(r.steps[0].hints[0].advice.contains("lock_timeout"));
}

#[test]
fn no_lock_timeout_hint_without_a_stall_or_with_a_lock_timeout() {
    // The same step, but nobody queued behind it.
    assert_eq!(kinds(&lock_queue(false, 3400, |_| ())), vec![vec![]]);
    // It waited only 50 ms (under 100 ms: no stall).
    assert_eq!(kinds(&lock_queue(true, 3050, |_| ())), vec![vec![]]);
    // It ran with a lock_timeout: the safer form already.
    let with_timeout = lock_queue(true, 3400, |s| s.lock_timeout = Some(std::time::Duration::from_millis(200)));
    assert_eq!(kinds(&with_timeout), vec![vec![]]);
}

const ADD_CHECK: &str = "ALTER TABLE orders ADD CONSTRAINT c CHECK (note IS NOT NULL) NOT VALID;";

/// A step (3.0–5.0 s) with `lock_timeout` whose two attempts waited
/// 3.0–3.5 and 4.0–4.5 s behind `blocker`, session 1 queued behind the
/// first, on a session whose `deadlock_timeout` is `deadlock`.
fn behind(blocker: BlockerKind, lock_timeout_ms: u64, deadlock: Option<u64>) -> Report {
    let run = (RunBuilder::new().step("add check", 3000, 2000))
        .migration_waited(3000, 3500)
        .migration_waited(4000, 4500)
        .blocked(1, 3100, 3500);
    let mut rec = record(run, &[(ADD_CHECK, Some(LockMode::AccessExclusive))], LockMode::RowExclusive);
    for e in rec.sampler.episodes.iter_mut().filter(|e| e.who.is_migration()) {
        e.blocker_classes = vec![Blocker { pid: 9, kind: blocker.clone() }];
    }
    rec.migration.steps[0].lock_timeout = Some(Duration::from_millis(lock_timeout_ms));
    rec.migration.steps[0].retries = 1;
    rec.migration.deadlock_timeout = deadlock.map(Duration::from_millis);
    build(&rec)
}

#[test]
fn a_short_lock_timeout_that_kept_timing_out_behind_autovacuum_gets_vacuum_first() {
    let autovacuum = BlockerKind::Autovacuum("VACUUM ANALYZE public.orders".into());
    let r = behind(autovacuum.clone(), 500, Some(1000));
    assert_eq!(kinds(&r), vec![vec![HintKind::VacuumFirst]]);
    assert_eq!(
        r.steps[0].hints[0].observed,
        "the step waited 1.00 s for AccessExclusiveLock on orders behind autovacuum VACUUM ANALYZE public.orders \
         (pid 9) in 2 waits over 2 attempts, while 1 session queued behind it, 400.0 ms summed; its \
         lock_timeout (500.0 ms) is shorter than deadlock_timeout (1.00 s), the wait after which the server cancels \
         an autovacuum in a lock's way, so it timed out and retried instead"
    );
    assert!(r.steps[0].hints[0].advice.starts_with("VACUUM (ANALYZE) orders in a step of its own"));
    // A lock_timeout as long as deadlock_timeout lets the server cancel the autovacuum.
    assert_eq!(kinds(&behind(autovacuum.clone(), 1000, Some(1000))), vec![vec![]]);
    // deadlock_timeout unknown: no claim about it.
    assert_eq!(kinds(&behind(autovacuum, 500, None)), vec![vec![]]);
}

#[test]
fn no_vacuum_first_hint_behind_a_wraparound_autovacuum_or_another_session() {
    // An autovacuum to prevent wraparound is never cancelled: VACUUM first would wait as long.
    let wraparound = BlockerKind::Autovacuum("VACUUM public.orders (to prevent wraparound)".into());
    assert_eq!(kinds(&behind(wraparound, 500, Some(1000))), vec![vec![]]);
    let reader = BlockerKind::Rehearsal(Who::Class("long_report".into()));
    assert_eq!(kinds(&behind(reader, 500, Some(1000))), vec![vec![]]);
    assert_eq!(kinds(&behind(BlockerKind::Other, 500, Some(1000))), vec![vec![]]);
}

const UPDATE_ALL: &str = "UPDATE orders SET billing_country = shipping_country;";

#[test]
fn a_one_shot_update_of_many_rows_that_blocked_sessions_gets_batched_backfill() {
    let r = report_of(UPDATE_ALL, LockMode::AccessExclusive, LockMode::RowExclusive, true, |s| s.rows = 100_000);
    assert_eq!(kinds(&r), vec![vec![HintKind::BatchedBackfill]]);
    assert_eq!(
        r.steps[0].hints[0].observed,
        "one UPDATE changed 100,000 rows of orders in 500.0 ms (the step held AccessExclusiveLock on orders) while 2 \
         sessions waited on it, 650.0 ms summed"
    );
}

#[test]
fn no_batched_backfill_hint_without_waits_for_few_rows_or_for_a_backfill() {
    let many = |s: &mut StepRecord| s.rows = 100_000;
    assert_eq!(hints_of(UPDATE_ALL, LockMode::AccessExclusive, LockMode::RowExclusive, false, many), vec![]);
    assert_eq!(hints_of(UPDATE_ALL, LockMode::RowExclusive, LockMode::RowExclusive, true, |s| s.rows = 5_000), vec![]);
    let backfill = |s: &mut StepRecord| {
        s.rows = 100_000;
        s.kind = StepType::Backfill;
    };
    assert_eq!(hints_of(UPDATE_ALL, LockMode::RowExclusive, LockMode::RowExclusive, true, backfill), vec![]);
}

const SET_NOT_NULL: &str = "ALTER TABLE orders ALTER COLUMN billing_country SET NOT NULL;";

#[test]
fn set_not_null_that_scanned_while_sessions_waited_gets_check_before_not_null() {
    let r = report_of(SET_NOT_NULL, LockMode::AccessExclusive, LockMode::AccessShare, true, |_| ());
    assert_eq!(kinds(&r), vec![vec![HintKind::CheckBeforeNotNull]]);
    let h = &r.steps[0].hints[0];
    assert!(
        h.observed.starts_with("SET NOT NULL on billing_country held AccessExclusiveLock on orders for 500.0 ms"),
        "{}",
        h.observed
    );
    assert!(h.advice.starts_with("ADD CONSTRAINT … CHECK (billing_country IS NOT NULL) NOT VALID"), "{}", h.advice);
}

#[test]
fn no_check_before_not_null_hint_without_waits_a_scan_or_after_a_validated_check() {
    // Nobody waited.
    assert_eq!(hints_of(SET_NOT_NULL, LockMode::AccessExclusive, LockMode::AccessShare, false, |_| ()), vec![]);
    // 5 ms under the lock: no scan worth the name.
    let quick = RunBuilder::new().step("set not null", 3000, 5).blocked(1, 3000, 3005);
    assert_eq!(
        kinds(&build(&record(quick, &[(SET_NOT_NULL, Some(LockMode::AccessExclusive))], LockMode::AccessShare))),
        vec![vec![]]
    );
    // The phased form: a CHECK added NOT VALID, validated, then SET NOT NULL
    // (which PostgreSQL proves from the CHECK), even with sessions waiting.
    let add = "ALTER TABLE orders ADD CONSTRAINT bc_not_null CHECK (billing_country IS NOT NULL) NOT VALID;";
    let validate = "ALTER TABLE orders VALIDATE CONSTRAINT bc_not_null;";
    let phased = |steps: &[(&str, Option<LockMode>)]| {
        let mut run = RunBuilder::new();
        for (i, _) in steps.iter().enumerate() {
            run = run.step(&format!("step {i}"), 3000 + 100 * i as u64, 100);
        }
        let n = steps.len() as u64;
        let run = run.blocked(1, 3000 + 100 * (n - 1), 3000 + 100 * n);
        kinds(&build(&record(run, steps, LockMode::AccessShare))).pop().unwrap()
    };
    let ael = Some(LockMode::AccessExclusive);
    let sue = Some(LockMode::ShareUpdateExclusive);
    assert_eq!(phased(&[(add, ael), (validate, sue), (SET_NOT_NULL, ael)]), vec![]);
    // Proven in the same step, before it.
    assert_eq!(phased(&[(&format!("{add}\n{validate}\n{SET_NOT_NULL}"), ael)]), vec![]);
    // A CHECK never validated proves nothing: the scan happens.
    assert_eq!(phased(&[(add, ael), (SET_NOT_NULL, ael)]), vec![HintKind::CheckBeforeNotNull]);
}

const BIGINT: &str = "ALTER TABLE pgbench_accounts ALTER COLUMN bid TYPE bigint;";

#[test]
fn a_type_change_that_rewrote_gets_new_column_backfill() {
    let run = RunBuilder::new().step("widen", 3000, 500).blocked(1, 3100, 3400);
    let mut rec = record(run, &[(BIGINT, None)], LockMode::AccessShare);
    let s = &mut rec.migration.steps[0];
    s.locks.hold("pgbench_accounts", LockMode::AccessExclusive);
    s.rewritten = vec!["pgbench_accounts".into()];
    for e in &mut rec.sampler.episodes {
        e.relation = Some("pgbench_accounts".into());
    }
    let r = build(&rec);
    assert_eq!(kinds(&r), vec![vec![HintKind::NewColumnBackfill]]);
    assert_eq!(
        r.steps[0].hints[0].observed,
        "ALTER COLUMN bid TYPE rewrote pgbench_accounts under AccessExclusiveLock in 500.0 ms while 1 session waited \
         on it, 300.0 ms summed"
    );
    // Not rewritten (a binary-compatible change, e.g. varchar(10) → text): no hint, waits or not.
    rec.migration.steps[0].rewritten.clear();
    assert_eq!(kinds(&build(&rec)), vec![vec![]]);
}

#[test]
fn pauses_skipped_and_sql_less_steps_get_no_hint() {
    let run = RunBuilder::new().step("index", 3000, 500).skipped_step("index again").blocked(1, 3100, 3400);
    let mut rec = record(
        run,
        &[(PLAIN_INDEX, Some(LockMode::Share)), (PLAIN_INDEX, Some(LockMode::Share))],
        LockMode::RowExclusive,
    );
    assert_eq!(kinds(&build(&rec)), vec![vec![HintKind::Concurrently], vec![]]);
    // A captured step has no SQL of its own.
    rec.migration.steps[0].sql = None;
    assert_eq!(kinds(&build(&rec)), vec![vec![], vec![]]);
    // A pause.
    rec.migration.steps[0].sql = Some(PLAIN_INDEX.into());
    rec.migration.steps[0].kind = StepType::Pause;
    assert_eq!(kinds(&build(&rec)), vec![vec![], vec![]]);
}

#[test]
fn a_lock_queue_hint_names_at_most_three_blockers() {
    let mut run = RunBuilder::new().step("add column", 3000, 500).migration_waited(3000, 3400).blocked(1, 3100, 3450);
    run = run.blocked(2, 3200, 3450);
    let mut rec = record(run, &[(ADD_COLUMN, Some(LockMode::AccessExclusive))], LockMode::AccessShare);
    let blockers: Vec<Blocker> =
        (1..=5).map(|pid| Blocker { pid, kind: BlockerKind::Rehearsal(Who::Class("update_status".into())) }).collect();
    rec.sampler.episodes.iter_mut().filter(|e| e.who.is_migration()).for_each(|e| e.blocker_classes = blockers.clone());
    let r = build(&rec);
    let observed = &r.steps[0].hints[0].observed;
    assert!(
        observed
            .contains("behind update_status (pid 1), update_status (pid 2), update_status (pid 3) and 2 more while"),
        "{observed}"
    );
}
