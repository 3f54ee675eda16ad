//! `--fail-at`: each stop point rehearsed on a fresh copy, the migration's
//! session terminated there, what it left read from the catalog, and the
//! down steps of what completed run under the workload.

use serde_json::Value;

use crate::common::{repo, run, tiny_scenario};

/// Short phases and a dataset big enough for a backfill of three batches.
const SMALL: [&str; 8] = [
    "--set",
    "vars.rows=60000",
    "--set",
    "phases.warmup=500ms",
    "--set",
    "phases.baseline=1s",
    "--set",
    "phases.cooldown=500ms",
];

fn scenario(name: &str) -> String {
    repo().join("scenarios").join(name).display().to_string()
}

fn left(p: &Value) -> Vec<String> {
    p["left"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect()
}

/// The shipped phased migration, with its down sections, fails at the
/// middle of every step: each stop point says what was left and rolls
/// back cleanly from there.
#[test]
fn the_phased_migration_rolls_back_cleanly_from_every_stop_point() {
    let sc = scenario("orders-billing-country-phased.toml");
    let mut args = vec![sc.as_str(), "--fail-at", "all"];
    args.extend(SMALL);
    let o = run(&args);
    let r = o.report();
    let points = r["stop_points"].as_array().unwrap_or_else(|| panic!("no stop points: {}", o.stderr));
    assert_eq!(points.len(), 6, "{}", o.stdout);
    for (i, p) in points.iter().enumerate() {
        assert_eq!(p["step"], i, "{p}");
        assert_eq!(p["at"], "middle");
        assert!(p["fired"].as_str().is_some_and(|f| f.starts_with("terminated")), "{p}");
        let rb = &p["rollback"];
        assert_eq!(rb["ok"], true, "stop point {}: {p}", i + 1);
        assert_eq!(rb["clean"], true, "stop point {}: {p}", i + 1);
        // The middle of a step never completes it: the steps before it did.
        let completed: Vec<u64> =
            p["completed_steps"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        assert_eq!(completed, (0..i as u64).collect::<Vec<_>>(), "{p}");
        let undone = rb["steps"].as_array().unwrap();
        assert!(undone.iter().all(|s| s["rollback"] == true && s["outcome"] == "ok"), "{p}");
    }
    // Step 1 ran in its own transaction: terminated after two of its four
    // statements, it left nothing and there is nothing to undo.
    assert!(left(&points[0]).is_empty(), "{}", points[0]);
    assert_eq!(points[0]["rollback"]["steps"].as_array().unwrap().len(), 0);
    // In the middle of the backfill the first step's objects are there; the
    // rollback (its down section, dropping the column) runs under the
    // workload and takes an AccessExclusiveLock on orders.
    let mid_backfill = left(&points[1]);
    assert!(mid_backfill.iter().any(|l| l.starts_with("added column orders.billing_country")), "{mid_backfill:?}");
    let undo = &points[1]["rollback"]["steps"][0];
    assert_eq!(undo["name"], "undo: add nullable column + fill trigger");
    assert!(undo["locks"].to_string().contains("AccessExclusiveLock"), "{undo}");
    // Stopped in the VACUUM (outside a transaction block), it is terminated
    // while it runs; nothing of it to undo.
    assert!(points[2]["fired"].as_str().unwrap().ends_with("into step 3"), "{}", points[2]);
    // Stopped in the VALIDATE, the CHECK is left NOT VALID; stopped in the
    // last step, validated.
    let check = |p: &Value| left(p).into_iter().find(|l| l.contains("orders_billing_country_not_null")).unwrap();
    assert!(check(&points[4]).contains("NOT VALID"), "{}", points[4]);
    assert!(!check(&points[5]).contains("NOT VALID"), "{}", points[5]);
    let violations = r["verdict"]["violations"].to_string();
    assert!(!violations.contains("rollback_"), "{violations}");
    assert!(o.stdout.contains("Stop points (--fail-at): 6 rehearsals"), "{}", o.stdout);
}

/// The one-shot migration runs in one transaction: terminated in the middle
/// of its UPDATE, it rolls back as one and leaves nothing.
#[test]
fn a_one_shot_migration_interrupted_mid_update_rolls_back_as_one() {
    let sc = scenario("orders-billing-country-oneshot.toml");
    let mut args = vec![sc.as_str(), "--fail-at", "4:middle"];
    args.extend(SMALL);
    let o = run(&args);
    let r = o.report();
    let p = &r["stop_points"][0];
    assert!(p["point"].as_str().unwrap().starts_with("step 4 (UPDATE orders"), "{p}");
    assert!(p["fired"].as_str().is_some_and(|f| f.contains("step 4")), "{p}");
    let as_one = p["rolled_back_as_one"].as_str().unwrap_or_else(|| panic!("{p}"));
    assert!(as_one.starts_with("steps 1-5 ran in one transaction"), "{as_one}");
    assert!(left(p).is_empty(), "{p}");
    assert_eq!(p["rows_kept"], 0);
    assert_eq!(p["completed_steps"].as_array().unwrap().len(), 0);
    assert_eq!(p["rollback"]["clean"], true);
    assert!(o.stdout.contains("rolled back as one"), "{}", o.stdout);
}

/// A stop point that names no step is refused before anything starts.
#[test]
fn a_stop_point_that_names_no_step_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN note text;\n", "");
    let o = run(&[scenario.to_str().unwrap(), "--fail-at", "7"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("--fail-at 7: the migration has 1 steps"), "{}", o.stderr);
    let o = run(&[scenario.to_str().unwrap(), "--fail-at", "nope:end"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("no step is named \"nope\""), "{}", o.stderr);
}

/// Step 1 has a verify and no down; step 2 a down and a verify that fails.
const VERIFIED: &str = "-- lockimpact: transaction step\n\
    -- lockimpact: step \"add column\"\n\
    ALTER TABLE orders ADD COLUMN note text;\n\
    -- lockimpact: verify\n\
    SELECT note FROM orders WHERE false;\n\
    -- lockimpact: end\n\
    -- lockimpact: step \"add index\"\n\
    CREATE INDEX orders_note_idx ON orders (note);\n\
    -- lockimpact: verify\n\
    SELECT 1/count(*) FROM pg_indexes WHERE indexname = 'no_such_index';\n\
    -- lockimpact: down\n\
    DROP INDEX orders_note_idx;\n\
    -- lockimpact: end\n";

/// A verify runs after its step and fails the verdict when it errors; after
/// a rollback, the verify of a step left in place (no down) runs again.
#[test]
fn verify_sections_run_after_their_step_and_after_a_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), VERIFIED, "");
    let sc = scenario.to_str().unwrap();
    let o = run(&[sc, "--fail-at", "2:start"]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    let r = o.report();
    assert_eq!(r["steps"][0]["verify"]["ok"], true, "{}", r["steps"][0]);
    let failed = &r["steps"][1]["verify"];
    assert_eq!(failed["ok"], false, "{failed}");
    assert!(failed["error"].as_str().unwrap().contains("division by zero"), "{failed}");
    let v = r["verdict"]["violations"].as_array().unwrap();
    assert!(v.iter().any(|v| v["budget"] == "verify" && v["step"] == 1), "{v:?}");
    assert!(o.stdout.contains("--   verify FAILED: line 10"), "{}", o.stdout);
    // Stopped as step 2 began: step 1 completed and has no down, so it
    // stays, and its verify runs after the (empty) rollback.
    let p = &r["stop_points"][0];
    assert_eq!(p["completed_steps"], serde_json::json!([0]), "{p}");
    assert_eq!(p["rollback"]["verify"], serde_json::json!([[0, p["rollback"]["verify"][0][1]]]), "{p}");
    assert_eq!(p["rollback"]["verify"][0][1]["ok"], true, "{p}");
    assert_eq!(left(p), ["added column orders.note (text)"], "{p}");
}
