//! Failed operations are evidence: an operation that waited behind the
//! migration's lock and then failed counts in latency like one that
//! succeeded, and a query class the migration makes fail with a new SQLSTATE
//! is a finding of the report and a budget violation. Real servers; the
//! pgbench comparison runs pgbench itself against the same server during the
//! same ALTER.

use std::process::{Command, Stdio};

use crate::common::*;
use serde_json::Value;

/// A type change under prepared statements, its lock held for 0.8 s: every
/// `order_by_id` (which reads `total_cents`) that waited fails with 0A000.
const RETYPE: &str = "-- lockimpact: transaction step\n-- lockimpact: step \"retype\"\n\
    ALTER TABLE orders ALTER COLUMN total_cents TYPE bigint;\nSELECT pg_sleep(0.8);\n-- lockimpact: end\n";

fn during(r: &Value, class: &str) -> Value {
    r["latency"][class]["during"].clone()
}

#[test]
fn failed_operations_count_in_latency_and_new_errors_fail_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), RETYPE, "");
    let md = dir.path().join("report.md");
    let html = dir.path().join("report.html");
    let o = run(&[
        scenario.to_str().unwrap(),
        "--max-p99-during",
        "300ms",
        "--out",
        &format!("markdown:{}", md.display()),
        "--out",
        &format!("html:{}", html.display()),
    ]);
    let r = o.report();
    let d = during(r, "order_by_id");
    eprintln!("order_by_id during: {d}\nnew_errors: {}", r["new_errors"]);
    // The waits behind the 0.8 s lock are there, although those operations failed.
    assert!(d["errors"].as_u64().unwrap() > 0, "{d}");
    assert!(d["count"].as_u64().unwrap() >= d["errors"].as_u64().unwrap(), "{d}");
    assert!(d["max_ms"].as_f64().unwrap() >= 600.0, "{d}\n{}", o.stdout);
    assert!(d["p99_ms"].as_f64().unwrap() >= 300.0, "{d}");
    let during_all = &r["latency_percentiles"]["during"];
    assert!(during_all.as_array().is_some_and(|p| !p.is_empty()), "{}", r["latency_percentiles"]);
    // The new error class: named with its step, class, SQLSTATE, count and message.
    let new = r["new_errors"].as_array().unwrap();
    let e = new
        .iter()
        .find(|e| e["class"] == "order_by_id" && e["sqlstate"] == "0A000")
        .unwrap_or_else(|| panic!("no 0A000 finding: {new:?}"));
    assert_eq!(e["step"], 0, "{e}");
    assert!(e["count"].as_u64().unwrap() > 0, "{e}");
    assert!(e["message"].as_str().unwrap().contains("cached plan must not change result type"), "{e}");
    assert!(e["meaning"].as_str().unwrap().contains("JDBC"), "{e}");
    // The budget: p99 during and the new error class both fail it.
    let budgets: Vec<&str> =
        r["verdict"]["violations"].as_array().unwrap().iter().map(|v| v["budget"].as_str().unwrap()).collect();
    assert!(budgets.contains(&"max_p99_during") && budgets.contains(&"new_errors"), "{budgets:?}");
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    // Every format says it.
    let md = std::fs::read_to_string(&md).unwrap();
    let html = std::fs::read_to_string(&html).unwrap();
    for (name, text) in [("text", &o.stdout), ("markdown", &md), ("html", &html)] {
        assert!(
            text.contains("step 1 (retype) made order_by_id fail with 0A000") && text.contains("JDBC"),
            "{name}:\n{text}"
        );
    }
}

#[test]
fn allowed_new_errors_are_reported_not_judged() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), RETYPE, "[budget]\nnew_errors = \"allowed\"\n");
    let o = run(&[scenario.to_str().unwrap()]);
    let r = o.report();
    assert!(r["new_errors"].as_array().is_some_and(|e| !e.is_empty()), "{}", r["new_errors"]);
    assert_eq!(r["verdict"]["pass"], true, "{}", r["verdict"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
}

/// pgbench itself (`-l`, rate-limited so its latency counts from the
/// scheduled start too) runs against the same server while lockimpact's
/// migration holds the ALTER's lock: both see the same longest wait.
#[test]
fn during_max_agrees_with_pgbench_within_ten_percent() {
    let dir = tempfile::tempdir().unwrap();
    let server = source_server(&[]);
    server_tool(&server, "pgbench", "postgres", &["-i", "-s", "1", "-q"]);
    server_tool(&server, "psql", "postgres", &["-c", "ALTER DATABASE postgres SET lockimpact.rehearsal = on"]);
    std::fs::write(
        dir.path().join("migration.sql"),
        "-- lockimpact: transaction step\n-- lockimpact: step \"abalance\"\n\
         ALTER TABLE pgbench_accounts ALTER COLUMN abalance TYPE bigint;\nSELECT pg_sleep(1.5);\n-- lockimpact: end\n",
    )
    .unwrap();
    let scenario = dir.path().join("scenario.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"abalance\"\n[workload]\nfile = \"{}\"\nrate = 100\nconnections = 8\n\
             [phases]\nwarmup = \"500ms\"\nbaseline = \"2s\"\ncooldown = \"1s\"\n[migration]\nfile = \"migration.sql\"\n",
            repo().join("workloads/pgbench/workload.toml").display()
        ),
    )
    .unwrap();
    let Some(lockimpact::clone::restore::Tools::Local { bin_dir, socket_dir, port, .. }) = server.tools() else {
        panic!("a local server")
    };
    // pgbench for longer than the whole run, at a fixed rate, simple protocol
    // (it does not fail on the type change; it waits and goes on).
    let pgbench = Command::new(bin_dir.join("pgbench"))
        .current_dir(dir.path())
        .arg("-h")
        .arg(&socket_dir)
        .args(["-p", &port.to_string(), "-U", "postgres", "-n", "-b", "select-only", "-M", "simple"])
        .args(["-c", "4", "-R", "100", "-T", "12", "-l", "--log-prefix", "pgb", "postgres"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pgbench");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let url = source_url(&server, "postgres", "unused");
    let o = run(&[scenario.to_str().unwrap(), "--url", &url, "--allow-existing-server"]);
    let out = pgbench.wait_with_output().unwrap();
    assert!(out.status.success(), "pgbench: {}", String::from_utf8_lossy(&out.stderr));
    let r = o.report();
    let ours = r["latency_percentiles"]["during"]
        .as_array()
        .and_then(|p| p.iter().find(|x| x["percentile"] == 100.0))
        .and_then(|x| x["ms"].as_f64())
        .unwrap_or_else(|| panic!("no during max: {}\n{}", r["latency_percentiles"], o.stderr));
    // pgbench -l: client_id transaction_no time_us script_no epoch epoch_us [lag_us]
    let mut theirs = 0u64;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("pgb.") {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let us: u64 = line.split_whitespace().nth(2).and_then(|t| t.parse().ok()).unwrap_or(0);
                theirs = theirs.max(us);
            }
        }
    }
    let theirs = theirs as f64 / 1000.0;
    eprintln!("during max: lockimpact {ours} ms, pgbench {theirs} ms");
    assert!(theirs > 1000.0, "pgbench never waited on the ALTER: {theirs} ms");
    assert!((ours - theirs).abs() <= 0.10 * theirs, "lockimpact {ours} ms vs pgbench {theirs} ms\n{}", o.stdout);
    let new = r["new_errors"].as_array().unwrap();
    assert!(new.iter().any(|e| e["sqlstate"] == "0A000"), "{new:?}");
}

/// Operations that never finish within the run (queued behind two sessions
/// stuck in `pg_sleep(1000)`, or those two themselves) count in latency
/// with the time they had waited when the run ended.
#[test]
fn unfinished_operations_count_with_their_wait() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.toml");
    std::fs::write(&w, "[[class]]\nname = \"stuck\"\nweight = 1\nsql = \"SELECT pg_sleep(1000)\"\n").unwrap();
    let scenario = tiny_scenario(dir.path(), "SELECT 1;\n", "");
    let text = std::fs::read_to_string(&scenario).unwrap();
    let text = text
        .replace(&repo().join("workloads/orders/workload.toml").display().to_string(), w.to_str().unwrap())
        .replace("rate = 100\nconnections = 4", "rate = 20\nconnections = 2");
    std::fs::write(&scenario, text).unwrap();
    let o = run(&[scenario.to_str().unwrap()]);
    let r = o.report();
    let unfinished = r["workload"]["unfinished"].as_u64().unwrap();
    let counted: u64 =
        ["baseline", "during", "after"].iter().map(|p| r["latency"]["stuck"][*p]["count"].as_u64().unwrap_or(0)).sum();
    eprintln!("unfinished {unfinished}, counted {counted}, latency {}", r["latency"]["stuck"]);
    assert!(unfinished >= 10, "{}", r["workload"]);
    // All but those of the warmup (20 ops/s over 200 ms, not a measured phase).
    assert!(counted + 6 >= unfinished, "{counted} of {unfinished} unfinished operations count in latency");
    // The earliest of them had waited the whole run.
    let baseline = &r["latency"]["stuck"]["baseline"];
    assert!(baseline["max_ms"].as_f64().unwrap() >= 1000.0, "{baseline}");
}
