//! Every step's locks, exactly, in every transaction mode (issue 13 points 3
//! and 7), and a sampler whose session dies (issue 14 point 9): real
//! disposable servers started by the runs themselves.

use crate::common::*;
use serde_json::Value;

/// (relation, mode, sampled) of step `i`.
fn step_locks(r: &Value, i: usize) -> Vec<(String, String, bool)> {
    r["steps"][i]["locks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["relation"].as_str().unwrap().to_string(),
                l["mode"].as_str().unwrap().to_string(),
                l["sampled"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// A short step in `transaction none` still reports the lock it took: it ran
/// in a transaction of its own whose locks were read before the commit.
#[test]
fn a_short_step_in_transaction_none_reports_its_lock() {
    let dir = tempfile::tempdir().unwrap();
    let sql = "CREATE UNIQUE INDEX orders_id_u ON orders (id);\n\
               ALTER TABLE orders ADD CONSTRAINT orders_id_key UNIQUE USING INDEX orders_id_u;\n\
               VACUUM orders;\n";
    let scenario = tiny_scenario(dir.path(), sql, "transaction = \"none\"");
    let o = run(&[scenario.to_str().unwrap()]);
    let r = o.report();
    assert_eq!(r["migration"]["transaction"], "none", "{}", o.stderr);
    assert!(r["steps"].as_array().unwrap().iter().all(|s| s["outcome"] == "ok"), "{}", o.stdout);
    let constraint = step_locks(r, 1);
    assert!(
        constraint.contains(&("orders".into(), "AccessExclusiveLock".into(), false)),
        "ADD CONSTRAINT … USING INDEX in transaction none: {constraint:?}"
    );
    assert!(
        step_locks(r, 0).iter().any(|(rel, mode, _)| rel == "orders" && mode == "ShareLock"),
        "{:?}",
        step_locks(r, 0)
    );
    // VACUUM cannot run in a transaction block: whatever was seen of it was sampled.
    assert!(step_locks(r, 2).iter().all(|(_, _, sampled)| *sampled), "{:?}", step_locks(r, 2));
    assert!(o.stdout.contains("orders AccessExclusiveLock"), "{}", o.stdout);
}

/// A rewrite's transient heap is named after its table, not "dropped
/// relation 16408", and toast tables fold under their table.
#[test]
fn a_rewrite_names_its_transient_heap_and_folds_toast() {
    let dir = tempfile::tempdir().unwrap();
    let sql = "ALTER TABLE orders ALTER COLUMN total_cents TYPE bigint;\n";
    let scenario = tiny_scenario(dir.path(), sql, "transaction = \"step\"");
    let o = run(&[scenario.to_str().unwrap()]);
    let r = o.report();
    let locks = step_locks(r, 0);
    assert!(locks.iter().all(|(rel, _, _)| !rel.starts_with("dropped relation")), "{locks:?}");
    assert!(locks.iter().all(|(rel, _, _)| !rel.starts_with("pg_toast")), "{locks:?}");
    assert!(locks.contains(&("orders".into(), "AccessExclusiveLock".into(), false)), "{locks:?}");
    assert!(locks.iter().any(|(rel, _, _)| rel == "orders (transient heap)"), "{locks:?}");
    assert_eq!(r["steps"][0]["rewritten"], serde_json::json!(["orders"]));
}

/// The sampler's session terminated while the migration holds a lock: the
/// sampler reconnects, the blocked sessions are still measured, and the report
/// marks the gap and that it fell during the migration.
#[test]
fn a_terminated_sampler_reconnects_and_marks_its_gap() {
    let dir = tempfile::tempdir().unwrap();
    let sql = "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE;\n\
               SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'lockimpact-sampler';\n\
               SELECT pg_sleep(2);\n";
    let scenario = tiny_scenario(dir.path(), &format!("-- lockimpact: step \"hold\"\n{sql}"), "transaction = \"step\"");
    let o = run(&[scenario.to_str().unwrap()]);
    let r = o.report();
    assert_eq!(r["complete"], true, "the run went on: {}\n{}", r["incomplete_reason"], o.stderr);
    assert_eq!(r["steps"][0]["outcome"], "ok", "{}", o.stdout);
    let gaps = r["sampler"]["gaps"].as_array().unwrap_or_else(|| panic!("no sampler.gaps: {}", r["sampler"]));
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0]["steps"], serde_json::json!([0]));
    assert_eq!(r["sampler"]["blind_during_migration"], true);
    // After reconnecting it still saw the sessions waiting since before (their waitstart).
    let step_ms = r["steps"][0]["duration_ms"].as_f64().unwrap();
    let longest = r["blocked"]["longest_ms"].as_f64().unwrap();
    assert!(longest >= step_ms / 2.0, "longest blocked {longest} ms of a {step_ms} ms lock");
    assert!(
        r["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("lock sampler")),
        "{}",
        r["warnings"]
    );
}

/// A batched backfill in `transaction step` commits each batch: the locks
/// of its batches are kept, not replaced by what is held after the last commit.
#[test]
fn a_backfill_in_transaction_step_reports_its_batches_locks() {
    let dir = tempfile::tempdir().unwrap();
    let sql = "ALTER TABLE orders ADD COLUMN note text;\n\
               -- lockimpact: backfill \"fill\" max_batches=100\n\
               UPDATE orders SET note = 'x' WHERE id IN (SELECT id FROM orders WHERE note IS NULL LIMIT 2000);\n";
    let scenario = tiny_scenario(dir.path(), sql, "transaction = \"step\"");
    let o = run(&[scenario.to_str().unwrap()]);
    let r = o.report();
    assert_eq!(r["steps"][1]["kind"], "backfill", "{}", o.stdout);
    assert_eq!(r["steps"][1]["outcome"], "ok", "{}", o.stdout);
    let locks = step_locks(r, 1);
    assert!(locks.contains(&("orders".into(), "RowExclusiveLock".into(), false)), "{locks:?}");
}
