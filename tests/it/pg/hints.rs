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
