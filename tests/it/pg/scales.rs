//! `run --scales`: a tiny scenario rehearsed at three sizes on real
//! servers, each step's figures fitted and predicted at a far larger row
//! count, with a var grown in proportion (`--scale-vars`); bad `--scales`
//! values refused before anything starts, naming the flag. The fit itself is unit-tested on constructed series
//! (`report::fit`).

use serde_json::Value;

use crate::common::{run, tiny_scenario};

const MIGRATION: &str = "UPDATE orders SET total_cents = total_cents + 1;\n\
                         CREATE INDEX orders_country_created_idx ON orders (shipping_country, created_at);\n";

fn figure<'a>(step: &'a Value, name: &str) -> &'a Value {
    &step["figures"][name]
}

/// Three sizes of the tiny orders scenario: the report is the largest
/// one's, with an extrapolation per step (measured at each size, a model,
/// its R² and residuals, a prediction inside its interval), the UPDATE's WAL
/// fitted linearly, and a step that passes `max_step` at 8,000 rows flagged
/// exactly when its predicted duration at a billion rows may exceed it.
#[test]
fn three_scales_fit_each_step_and_predict_it_at_production_size() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny_scenario(dir.path(), MIGRATION, "[budget]\nmax_step = \"2s\"\n");
    let o =
        run(&[s.to_str().unwrap(), "--scales", "2k,25%,8000", "--predict-rows", "1000M", "--scale-vars", "customers"]);
    let r = o.report();
    assert!(o.code == 0 || o.code == 1, "exit {}\n{}", o.code, o.stderr);
    let e = &r["extrapolation"];
    assert_eq!(e["scales"], serde_json::json!([2000, 2500, 8000]), "{e}");
    assert_eq!(e["predict_rows"], 1_000_000_000u64);
    assert_eq!(e["predict_source"], "flag");
    assert_eq!(e["level"], 0.9);
    assert!(r["dataset"]["tables"].to_string().contains("8000"), "the largest scale's report");
    // customers (1 000 at the scenario's 10 000 rows) grew with the rows.
    assert_eq!(e["scaled_vars"], serde_json::json!(["customers"]));
    let customers = r["dataset"]["tables"].as_array().unwrap().iter().find(|t| t["name"] == "customers").unwrap();
    assert_eq!(customers["rows"], 800, "{customers}");
    let steps = e["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{e}");
    for st in steps {
        for name in ["duration_ms", "lock_hold_ms", "blocked_ms", "wal_bytes"] {
            let f = figure(st, name);
            assert_eq!(f["measured"].as_array().map(Vec::len), Some(3), "{name}: {st}");
            assert_eq!(f["residuals"].as_array().map(Vec::len), Some(3), "{name}: {st}");
            assert!(["linear", "n_log_n", "constant"].contains(&f["model"].as_str().unwrap()), "{f}");
            let (low, p, high) =
                (f["low"].as_f64().unwrap(), f["predicted"].as_f64().unwrap(), f["high"].as_f64().unwrap());
            assert!(0.0 <= low && low <= p && p <= high, "{name}: {f}");
        }
    }
    // Rows are the x axis: the UPDATE's WAL grows with them.
    let wal = figure(&steps[0], "wal_bytes")["measured"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect::<Vec<_>>();
    assert!(wal[2] > wal[0], "{wal:?}");
    // The WAL fit is linear and predicts a billion rows' WAL from it.
    let w = figure(&steps[0], "wal_bytes");
    assert_eq!(w["model"], "linear", "{w}");
    assert!(w["predicted"].as_f64().unwrap() > wal[2] * 1000.0, "{w}");
    // Each step that passes max_step at 8 000 rows is flagged exactly when
    // its predicted duration's interval reaches over the budget ("likely"
    // when the prediction itself does). Which steps those are depends on the
    // machine's load: at these sizes a step's time can be a wait of its own
    // (an UPDATE behind a workload's row lock: 26, 212, 53 ms once).
    let risks = e["risks"].as_array().unwrap();
    for (i, st) in steps.iter().enumerate() {
        let d = figure(st, "duration_ms");
        let measured = r["steps"][i]["duration_ms"].as_f64().unwrap();
        let (p, high) = (d["predicted"].as_f64().unwrap(), d["high"].as_f64().unwrap());
        let risk = risks.iter().find(|k| k["budget"] == "max_step" && k["step"] == i);
        match risk {
            Some(k) => {
                assert!(measured <= 2000.0 && high > 2000.0, "step {i} flagged: {k}\n{d}");
                assert_eq!(k["likely"], p > 2000.0, "step {i}: {k}\n{d}");
            }
            None => assert!(measured > 2000.0 || high <= 2000.0, "step {i} not flagged: {d}\n{e}"),
        }
    }
    assert!(o.stdout.contains("Extrapolation to 1,000,000,000 rows"), "{}", o.stdout);
    assert!(o.stderr.contains("scale 3/3: vars.rows = 8000, vars.customers = 800"), "{}", o.stderr);
    assert!(o.stdout.contains("8,000 rows, customers in proportion;"), "{}", o.stdout);
}

/// Bad `--scales` and `--predict-rows` values exit 2 before a server
/// starts, naming the flag and what it takes.
#[test]
fn bad_scales_are_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny_scenario(dir.path(), MIGRATION, "");
    let sc = s.to_str().unwrap();
    for (args, says) in [
        (vec!["--scales", "1%,ten,3%"], "is not a row count"),
        (vec!["--scales", "100k,300k"], "at least three sizes"),
        (vec!["--scales", "0%,1%,2%"], "not a percentage above 0"),
        (vec!["--scales", "1k,1k,1k"], "at least two different row counts"),
        (vec!["--scales", "1k,2k,3k", "--predict-rows", "5x"], "--predict-rows"),
        (vec!["--predict-rows", "5M"], "--scales"),
        (vec!["--scales", "1k,2k,3k", "--keep"], "--keep is not supported"),
        (vec!["--scales", "1k,2k,3k", "--fail-at", "1"], "--fail-at cannot be combined"),
        (vec!["--scales", "1k,2k,3k", "--scale-vars", "products"], "has no [vars] \"products\""),
        (vec!["--scales", "1k,2k,3k", "--scale-vars", "rows"], "rows is what --scales sets"),
        (vec!["--scale-vars", "customers"], "--scales"),
    ] {
        let mut a = vec![sc];
        a.extend(args.iter().copied());
        let o = run(&a);
        assert_eq!(o.code, 2, "{args:?}: {}", o.stderr);
        let flag = ["--scales", "--predict-rows", "--scale-vars"].iter().any(|f| o.stderr.contains(f));
        assert!(flag, "{args:?}: {}", o.stderr);
        assert!(o.stderr.contains(says), "{args:?}: {}", o.stderr);
        assert!(!o.stderr.contains("seeding"), "refused before a server started: {}", o.stderr);
    }
}
