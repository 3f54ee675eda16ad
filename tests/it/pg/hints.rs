//! The safer-form hints on real runs of the shipped pairs: the bad
//! candidate's step carries the hint that names the change its good
//! counterpart makes, and the good candidate has no hint of that kind. One
//! `compare` per pair (both candidates on one server, the same data and
//! load), shrunk to the fewest rows that still show the effect.

use crate::common::*;
use serde_json::Value;

/// Short phases: the migration starts 3 s in (the long report of the
/// lock-queue pair is then still running).
const PHASES: &[&str] = &["--set", "phases.warmup=1s", "--set", "phases.baseline=2s", "--set", "phases.cooldown=1s"];

/// `lockimpact compare A B --set vars.rows=ROWS --out <tmp>/c.json`: the comparison.
fn compare(a: &str, b: &str, rows: u32) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("c.json");
    let out = bin()
        .args(["compare", a, b, "--set", &format!("vars.rows={rows}")])
        .args(PHASES)
        .arg("--out")
        .arg(&json)
        .output()
        .expect("run lockimpact");
    let text = std::fs::read_to_string(&json).unwrap_or_else(|_| {
        panic!("no comparison; exit {:?}\n{}", out.status.code(), String::from_utf8_lossy(&out.stderr))
    });
    serde_json::from_str(&text).expect("the JSON parses")
}

/// Candidate `i`'s report.
fn report(c: &Value, i: usize) -> &Value {
    &c["candidates"][i]["report"]
}

/// The step whose SQL starts with `sql` (the steps, for the message, when none does).
fn step<'a>(r: &'a Value, sql: &str) -> &'a Value {
    let steps = r["steps"].as_array().unwrap();
    steps
        .iter()
        .find(|s| s["sql"].as_str().is_some_and(|t| t.trim_start().starts_with(sql)))
        .unwrap_or_else(|| panic!("no step runs {sql:?}: {}", serde_json::to_string_pretty(steps).unwrap()))
}

/// The hint of `kind` on `step`, when it has one.
fn hint<'a>(step: &'a Value, kind: &str) -> Option<&'a Value> {
    step["hints"].as_array()?.iter().find(|h| h["kind"] == kind)
}

/// Every hint kind of a report, over all its steps.
fn kinds(r: &Value) -> Vec<String> {
    let steps = r["steps"].as_array().unwrap();
    let hints = steps.iter().flat_map(|s| s["hints"].as_array().cloned().unwrap_or_default());
    hints.map(|h| h["kind"].as_str().unwrap().to_string()).collect()
}

/// Asserts `step` has a hint of `kind` whose observation has `words`.
fn assert_hint(step: &Value, kind: &str, words: &[&str]) {
    let pretty = || serde_json::to_string_pretty(step).unwrap();
    let h = hint(step, kind).unwrap_or_else(|| panic!("no {kind} hint on the step:\n{}", pretty()));
    let observed = h["observed"].as_str().unwrap();
    for w in words {
        assert!(observed.contains(w), "{kind}: {observed:?} lacks {w:?}");
    }
    assert!(!h["advice"].as_str().unwrap().is_empty());
}

#[test]
fn a_plain_index_gets_concurrently_and_the_concurrent_one_does_not() {
    let c = compare("scenarios/orders-index-plain.toml", "scenarios/orders-index-concurrently.toml", 100_000);
    let plain = step(report(&c, 0), "CREATE INDEX orders_country_created_idx");
    assert_hint(plain, "concurrently", &["ShareLock on orders", "writing sessions waited"]);
    let concurrent = report(&c, 1);
    assert!(!kinds(concurrent).contains(&"concurrently".into()), "{:?}", kinds(concurrent));
}

#[test]
fn the_one_shot_fill_gets_batched_backfill_and_check_before_not_null_and_the_phased_one_neither() {
    let c = compare(
        "scenarios/orders-billing-country-oneshot.toml",
        "scenarios/orders-billing-country-phased.toml",
        100_000,
    );
    let oneshot = report(&c, 0);
    assert_hint(step(oneshot, "UPDATE orders"), "batched_backfill", &["rows of orders", "sessions waited"]);
    let set_not_null = step(oneshot, "ALTER TABLE orders ALTER COLUMN billing_country SET NOT NULL");
    assert_hint(set_not_null, "check_before_not_null", &["AccessExclusiveLock on orders", "waited"]);
    let phased = kinds(report(&c, 1));
    assert!(!phased.iter().any(|k| k == "batched_backfill" || k == "check_before_not_null"), "{phased:?}");
}

#[test]
fn the_lock_queue_gets_lock_timeout_retries_and_the_one_with_a_timeout_does_not() {
    let c = compare("scenarios/orders-lock-queue.toml", "scenarios/orders-lock-queue-timeout.toml", 10_000);
    let alter = step(report(&c, 0), "ALTER TABLE orders ADD COLUMN note");
    assert_hint(alter, "lock_timeout_retries", &["no lock_timeout", "behind long_report", "queued behind it"]);
    let with_timeout = report(&c, 1);
    assert!(!kinds(with_timeout).contains(&"lock_timeout_retries".into()), "{:?}", kinds(with_timeout));
}

#[test]
fn widening_pgbench_bid_rewrites_and_gets_new_column_backfill() {
    let mut args = vec!["scenarios/pgbench-accounts-bid-bigint.toml", "--set", "vars.scale=1"];
    args.extend_from_slice(PHASES);
    let out = run(&args);
    let widen = step(out.report(), "ALTER TABLE pgbench_accounts ALTER COLUMN bid TYPE bigint");
    assert_eq!(widen["rewrote"], true, "{widen}");
    assert_hint(widen, "new_column_backfill", &["ALTER COLUMN bid TYPE rewrote pgbench_accounts"]);
}

/// An autovacuum of orders that crawls (cost limit 1, 100 ms a page: tens
/// of seconds on 10 000 rows) and is due at once (5 000 dead rows; the
/// UPDATE leaves 10 000), then a step that waits until it runs. The pause
/// lets the session report the UPDATE's dead rows (a backend flushes its
/// statistics at most once a second, when idle).
const CRAWLING_AUTOVACUUM: &str = "\
-- lockimpact: transaction step
ALTER TABLE orders SET (autovacuum_vacuum_threshold = 5000, autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_cost_delay = 100, autovacuum_vacuum_cost_limit = 1);
UPDATE orders SET status = status;
-- lockimpact: pause 1200ms \"report the dead rows\"
DO $$ BEGIN
  FOR i IN 1..400 LOOP
    PERFORM pg_stat_clear_snapshot();
    IF EXISTS (SELECT 1 FROM pg_stat_activity WHERE query LIKE 'autovacuum: VACUUM%orders%') THEN RETURN; END IF;
    PERFORM pg_sleep(0.05);
  END LOOP;
  RAISE EXCEPTION 'no autovacuum of orders started within 20 s';
END $$;
";

/// The step that times out behind it: lock_timeout 100 ms, shorter than deadlock_timeout (1 s).
const ADD_CHECK: &str = "\
-- lockimpact: step \"add CHECK NOT VALID\" lock_timeout=100ms retries=3 retry_backoff=100ms
ALTER TABLE orders ADD CONSTRAINT orders_id_positive CHECK (id > 0) NOT VALID;
";

/// A tiny scenario of `migration` whose server starts an autovacuum every second.
fn under_autovacuum(dir: &std::path::Path, migration: &str) -> Outcome {
    let sc = tiny_scenario(dir, migration, "[clone.settings]\nautovacuum_naptime = \"1s\"\n");
    run(&[sc.to_str().unwrap()])
}

#[test]
fn a_short_lock_timeout_behind_autovacuum_gets_vacuum_first_and_a_vacuum_step_first_clears_the_way() {
    let (bad_dir, good_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let bad = under_autovacuum(bad_dir.path(), &format!("{CRAWLING_AUTOVACUUM}{ADD_CHECK}"));
    let check = step(bad.report(), "ALTER TABLE orders ADD CONSTRAINT orders_id_positive");
    assert_eq!(check["outcome"], "lock_timeout", "every attempt timed out behind the autovacuum: {check}");
    assert_hint(check, "vacuum_first", &["behind autovacuum VACUUM", "public.orders", "shorter than deadlock_timeout"]);

    // The safer form: VACUUM in a step of its own (outside a transaction
    // block, no lock_timeout) waits deadlock_timeout, the server cancels
    // the autovacuum, and the step after it gets its lock at once.
    let vacuum = "-- lockimpact: step \"vacuum first\"\nVACUUM (ANALYZE) orders;\n";
    let good = under_autovacuum(good_dir.path(), &format!("{CRAWLING_AUTOVACUUM}{vacuum}{ADD_CHECK}"));
    let r = good.report();
    let vacuumed = step(r, "VACUUM (ANALYZE) orders");
    assert_eq!(vacuumed["outcome"], "ok", "{vacuumed}");
    assert!(vacuumed["duration_ms"].as_f64().unwrap() >= 900.0, "it waited deadlock_timeout first: {vacuumed}");
    let check = step(r, "ALTER TABLE orders ADD CONSTRAINT orders_id_positive");
    assert_eq!((&check["outcome"], &check["retries"]), (&Value::from("ok"), &Value::from(0)), "{check}");
    assert!(!kinds(r).contains(&"vacuum_first".into()), "{:?}", kinds(r));
    assert_eq!(good.code, 0, "{}", good.stdout);
}
