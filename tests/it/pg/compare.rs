//! `lockimpact compare` end to end: two candidates rehearsed on fresh copies
//! of the same template under the same workload, on a real disposable
//! PostgreSQL; the safer one must rank first on time blocked.

use crate::common::*;
use serde_json::Value;

/// `lockimpact compare ARGS --out <tmp>/c.json`.
fn compare(args: &[&str]) -> (i32, String, String, Option<Value>) {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("c.json");
    let out = bin()
        .arg("compare")
        .args(args)
        .arg("--out")
        .arg(&json)
        .args(["--set", "phases.warmup=1s", "--set", "phases.baseline=2s", "--set", "phases.cooldown=1s"])
        .output()
        .expect("run lockimpact");
    let report = std::fs::read_to_string(&json).ok().map(|t| serde_json::from_str(&t).expect("the JSON parses"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        report,
    )
}

fn blocked_ms(c: &Value, i: usize) -> f64 {
    c["candidates"][i]["totals"]["blocked_ms"].as_f64().unwrap()
}

#[test]
fn phased_backfill_ranks_before_the_one_shot_update() {
    let (code, stdout, stderr, c) = compare(&[
        "scenarios/orders-billing-country-oneshot.toml",
        "scenarios/orders-billing-country-phased.toml",
        "--set",
        "vars.rows=100000",
    ]);
    let c = c.unwrap_or_else(|| panic!("no comparison; exit {code}\n{stderr}"));
    assert_eq!(c["schema_version"], 1);
    assert_eq!(c["kind"], "comparison");
    assert_eq!(c["candidates"][0]["label"], "A");
    assert_eq!(c["candidates"][0]["report"]["scenario"]["name"], "orders-billing-country-oneshot");
    assert_eq!(c["ranking"], serde_json::json!([1, 0]), "{stdout}");
    assert!(blocked_ms(&c, 1) < blocked_ms(&c, 0), "{stdout}");
    assert!(c["summary"].as_str().unwrap().starts_with("B (orders-billing-country-phased) is safer"), "{stdout}");
    // Both ran the same schedule on the same data.
    for i in 0..2 {
        let r = &c["candidates"][i]["report"];
        assert_eq!(r["dataset"]["tables"][0]["rows"], 100000);
        assert_eq!(r["workload"]["target_rate"], c["candidates"][0]["report"]["workload"]["target_rate"]);
    }
    // The one-shot exceeds its budget: exit code 1, and the text says who.
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.contains("Ranking (safest first): B, A"), "{stdout}");
    assert!(stdout.contains("A: max_blocked:"), "{stdout}");
    // What a terminal shows last says the exit code is an answer, not a crash.
    assert_eq!(
        stderr.lines().last(),
        Some(
            "exit code 1: a candidate failed: it exceeded its budget or its migration failed (see the verdict \
             above); this is lockimpact's answer, not a crash"
        ),
        "{stderr}"
    );
    assert!(!c.to_string().contains("exit code 1"), "the JSON holds no exit line");
}

#[test]
fn concurrent_index_ranks_before_plain_index_with_two_migration_files() {
    let (code, stdout, stderr, c) = compare(&[
        "scenarios/orders-index-plain.toml",
        "--migration",
        "scenarios/migrations/index-plain.sql",
        "--migration",
        "scenarios/migrations/index-concurrently.sql",
        "--set",
        "vars.rows=300000",
    ]);
    let c = c.unwrap_or_else(|| panic!("no comparison; exit {code}\n{stderr}"));
    let files: Vec<&str> =
        (0..2).map(|i| c["candidates"][i]["report"]["scenario"]["migration_file"].as_str().unwrap()).collect();
    assert!(files[0].ends_with("index-plain.sql") && files[1].ends_with("index-concurrently.sql"), "{files:?}");
    assert_eq!(c["ranking"], serde_json::json!([1, 0]), "{stdout}");
    assert_eq!(c["candidates"][1]["totals"]["blocked_sessions"], 0, "{stdout}");
    assert!(blocked_ms(&c, 0) > 0.0, "{stdout}");
    assert!(c["summary"].as_str().unwrap().contains("blocked no session"), "{stdout}");
    // The second candidate reused the first one's server and template.
    assert_eq!(stderr.matches("seeding the template").count(), 1, "{stderr}");
}

#[test]
fn different_workloads_are_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let a = tiny_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN a int;", "");
    let b = dir.path().join("b.toml");
    std::fs::write(&b, std::fs::read_to_string(&a).unwrap().replace("rate = 100", "rate = 150")).unwrap();
    let out = bin().arg("compare").arg(&a).arg(&b).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("workload.rate differs: 100 in A, 150 in B"), "{stderr}");
    assert!(stderr.contains("--allow-different"), "{stderr}");
    assert!(!stderr.contains("seeding"), "{stderr}");
}

#[test]
fn compare_needs_exactly_two_candidates() {
    let out = bin().args(["compare", "scenarios/orders-index-plain.toml"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("compare needs two candidates"), "{stderr}");
}

/// `--parallel` counts cores from LOCKIMPACT_CORES when set: a value that is
/// no number of cores is refused before anything starts.
#[test]
fn parallel_refuses_a_core_count_that_is_no_number() {
    let dir = tempfile::tempdir().unwrap();
    let a = tiny_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN a int;", "");
    let out = bin().env("LOCKIMPACT_CORES", "many").arg("compare").arg(&a).arg(&a).arg("--parallel").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("LOCKIMPACT_CORES=many: give a number of cores"), "{stderr}");
    assert!(!stderr.contains("seeding"), "{stderr}");
}
