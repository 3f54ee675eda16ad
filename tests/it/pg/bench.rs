//! `lockimpact bench --quick`: the suite runs on a tiny configuration and
//! writes BENCHMARKS.md and bench.json with every row and both sides of each.
//! No figure is checked against a target: timing belongs to the report.

use crate::common;

use serde_json::Value;

#[test]
fn the_quick_suite_writes_every_row_with_both_sides() {
    let out = tempfile::tempdir().unwrap();
    let run = common::bin().args(["bench", "--quick", "--out"]).arg(out.path()).output().expect("run lockimpact bench");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "stderr:\n{stderr}");

    let json: Value = serde_json::from_str(&std::fs::read_to_string(out.path().join("bench.json")).unwrap()).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["quick"], true);
    assert!(json["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(json["machine"]["server"].as_str().unwrap().contains("PostgreSQL"));
    assert!(json["load_before"].as_array().unwrap().len() == 3 && json["load_after"].as_array().unwrap().len() == 3);
    let rows = json["rows"].as_array().unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    for want in [
        "closed_loop_throughput",
        "open_loop_rate_25",
        "open_loop_lag_25",
        "open_loop_rate_50",
        "open_loop_lag_50",
        "open_loop_rate_80",
        "open_loop_lag_80",
        "sampler_throughput",
        "sampler_query_time",
        "sampler_episode",
        "clone_reset",
        "e2e_wall_time",
        "e2e_peak_rss",
        "e2e_rss_growth",
        "e2e_rss_10min",
        "synthetic_orders_load",
        "synthetic_orders_generation",
    ] {
        assert!(ids.contains(&want), "row {want} missing: {ids:?}");
    }
    for r in rows {
        for side in ["a", "b"] {
            let v = r[side]["value"].as_f64();
            assert!(v.is_some_and(|v| v.is_finite() && v >= 0.0), "row {}: side {side}: {}", r["id"], r[side]);
            assert!(!r[side]["label"].as_str().unwrap().is_empty());
        }
        assert!(r["ratio"].as_f64().is_some_and(f64::is_finite), "row {}: ratio {}", r["id"], r["ratio"]);
    }
    let closed = &rows[ids.iter().position(|i| *i == "closed_loop_throughput").unwrap()];
    assert_eq!(closed["a"]["label"], "replayer");
    assert_eq!(closed["b"]["label"], "pgbench");
    assert!(closed["a"]["value"].as_f64().unwrap() > 0.0 && closed["b"]["value"].as_f64().unwrap() > 0.0);

    let md = std::fs::read_to_string(out.path().join("BENCHMARKS.md")).unwrap();
    for heading in [
        "## 1. Closed-loop throughput",
        "## 2. Open-loop accuracy",
        "## 3. Sampler cost and resolution",
        "## 4. Clone reset",
        "## 5. End to end",
        "## 7. Synthetic data generation",
        "Row 8, prediction accuracy: not measured",
        "load average",
        "--quick run",
    ] {
        assert!(md.contains(heading), "BENCHMARKS.md lacks {heading:?}:\n{md}");
    }
    assert!(md.contains("replayer:") && md.contains("pgbench:"), "{md}");
}

/// `bench --quick --only 7,8 --predict-5m`: the synthetic generator's rows
/// with both sides, and one prediction row per extrapolated step of each
/// shipped backfill and index scenario (phased and one-shot, plain and
/// concurrent), each with its predicted and measured duration (tiny sizes;
/// the figures are not checked: timing belongs to the report).
/// `--predict-only` refuses a name that matches no scenario.
#[test]
fn the_synthetic_and_prediction_rows_are_produced() {
    let out = tempfile::tempdir().unwrap();
    let run = common::bin()
        .args(["bench", "--quick", "--only", "7,8", "--predict-5m", "--out"])
        .arg(out.path())
        .output()
        .expect("run lockimpact bench");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "stderr:\n{stderr}");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(out.path().join("bench.json")).unwrap()).unwrap();
    let rows = json["rows"].as_array().unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    for want in ["synthetic_orders_load", "synthetic_orders_generation"] {
        let r = &rows[ids.iter().position(|i| *i == want).unwrap_or_else(|| panic!("{want} missing: {ids:?}"))];
        assert_eq!(r["section"], 7, "{r}");
        assert!(r["a"]["value"].as_f64().unwrap() > 0.0 && r["b"]["value"].as_f64().unwrap() > 0.0, "{r}");
        assert_eq!(r["target"], "≥ 1 M rows/s", "{r}");
    }
    let scenarios = [
        "orders_billing_country_phased",
        "orders_billing_country_oneshot",
        "orders_index_plain",
        "orders_index_concurrently",
    ];
    for scenario in scenarios {
        let steps: Vec<&Value> = rows
            .iter()
            .filter(|r| r["id"].as_str().unwrap().starts_with(&format!("predict_{scenario}_step")))
            .collect();
        assert!(!steps.is_empty(), "no prediction row for {scenario}: {ids:?}");
        for r in steps {
            assert_eq!(r["section"], 8, "{r}");
            assert_eq!(r["target"], "0.75–1.33", "{r}");
            assert!(r["met"].is_boolean(), "{r}");
            assert!(r["b"]["value"].as_f64().unwrap() > 0.0, "measured duration: {r}");
            assert!(r["a"]["label"].as_str().unwrap().contains("2k,4k,8k"), "{r}");
            assert!(r["detail"].as_str().unwrap().contains("fit"), "{r}");
        }
    }
    let md = std::fs::read_to_string(out.path().join("BENCHMARKS.md")).unwrap();
    assert!(md.contains("## 7. Synthetic data generation") && md.contains("## 8. Prediction accuracy"), "{md}");

    // --predict-only names scenarios; one that matches none is refused, listing them.
    let bad = common::bin()
        .args(["bench", "--quick", "--only", "8", "--predict-5m", "--predict-only", "plain,nope", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("--predict-only nope: no row 8 scenario is named so"), "{stderr}");
    assert!(stderr.contains("scenarios/orders-index-concurrently.toml"), "{stderr}");
}
