//! A session replay on a bounded connection pool (deadpool-postgres), on a
//! real server with a small `max_connections`: thousands of short sessions
//! (an application that connects per request) run without "too many
//! clients", the wait for a connection is reported per phase, the default
//! pool size follows `max_connections`, and a connection is recycled with
//! `DISCARD ALL` between sessions (a temp table does not survive).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::common::*;
use serde_json::Value;

/// A replay file of `sessions` one-statement sessions over `duration_ms`,
/// arriving in bursts of `burst` at once; `sql(i)` is session i's statement.
fn replay_file(dir: &Path, sessions: usize, burst: usize, duration_ms: f64, sql: impl Fn(usize) -> String) -> PathBuf {
    let mut text = format!(
        "{{\"lockimpact_replay\":1,\"duration_ms\":{duration_ms},\"classes\":[{{\"name\":\"one\",\"sql\":{},\"count\":{sessions}}}]}}\n",
        serde_json::to_string(&sql(0)).unwrap()
    );
    for i in 0..sessions {
        let at = (i / burst * burst) as f64 * duration_ms / sessions as f64;
        let sql = serde_json::to_string(&sql(i)).unwrap();
        writeln!(
            text,
            "{{\"session\":\"s{i}\",\"statements\":[{{\"at_ms\":{at},\"sql\":{sql},\"class\":0,\"tx\":0}}]}}"
        )
        .unwrap();
    }
    let path = dir.join("sessions.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

/// A scenario replaying `replay` on the orders dataset; `extra` goes into
/// `[workload]`, `settings` into `[clone.settings]`.
fn scenario(dir: &Path, replay: &Path, extra: &str, settings: &str) -> PathBuf {
    std::fs::write(dir.join("migration.sql"), "ALTER TABLE orders ADD COLUMN note text;\n").unwrap();
    let toml = format!(
        "name = \"replay-pool\"\n[vars]\nrows = 10000\ncustomers = 1000\n[snapshot]\nseed = \"{}\"\n\
         [workload]\nreplay = \"{}\"\n{extra}\n[phases]\nwarmup = \"200ms\"\nbaseline = \"2s\"\ncooldown = \"500ms\"\n\
         [migration]\nfile = \"migration.sql\"\n[clone]\nbackend = \"local\"\n[clone.settings]\n{settings}\n",
        repo().join("workloads/orders/seed.sql").display(),
        replay.display()
    );
    let path = dir.join("scenario.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// Exit 0, or 3 with an inconclusive verdict: the pool is the measure here,
/// and a pool saturated behind the migration may not finish, before the run
/// ends, the statements due while it ran (the verdict then says so).
fn judged_or_inconclusive(code: i32, r: &Value, stdout: &str) {
    let status = r["verdict"]["status"].as_str().unwrap_or("");
    assert!((code, status) == (0, "pass") || (code, status) == (3, "inconclusive"), "exit {code}, {status}\n{stdout}");
}

fn errors(r: &Value) -> Vec<String> {
    r["workload"]["error_detail"].as_array().unwrap().iter().map(|e| e.to_string()).collect()
}

/// 2,000 one-statement sessions of 20 ms over 4 s, in bursts of 50 at once
/// (one connection each would need 50), on a server with max_connections =
/// 30 and a pool of 20.
#[test]
fn two_thousand_short_sessions_on_a_pool_of_twenty_never_exhaust_max_connections() {
    let dir = tempfile::tempdir().unwrap();
    let sql = |i: usize| format!("SELECT pg_sleep(0.02), count(*) FROM orders WHERE id = {}", i + 1);
    let replay = replay_file(dir.path(), 2000, 50, 4000.0, sql);
    let s = scenario(dir.path(), &replay, "pool = 20", "max_connections = 30");
    let o = run(&[s.to_str().unwrap(), "--set", "phases.baseline=4s", "--set", "phases.cooldown=1s"]);
    let r = o.report();
    judged_or_inconclusive(o.code, r, &o.stdout);
    assert!(!o.stderr.contains("too many clients") && !o.stdout.contains("too many clients"), "{}", o.stdout);
    assert_eq!(r["workload"]["errors"], 0, "{:?}", errors(r));
    let statements: u64 = class_counts(r).values().sum();
    assert!(statements >= 2000, "{statements} statements replayed in the measured phases");
    let pool = &r["workload"]["pool"];
    assert_eq!(pool["size"], 20, "{pool}");
    assert_eq!(r["workload"]["connections"], 20);
    let baseline = &pool["wait"]["baseline"];
    assert!(baseline["count"].as_u64().unwrap() > 0, "{pool}");
    // 50 sessions at once on 20 connections: the last ones wait two statements.
    assert!(baseline["max_ms"].as_f64().unwrap() >= 20.0, "{pool}");
    for phase in ["baseline", "during", "after"] {
        assert!(pool["wait"][phase]["count"].is_u64(), "{phase} missing: {pool}");
    }
    assert!(o.stdout.contains("pool:      20 connections; wait for a connection: baseline p99"), "{}", o.stdout);
}

/// Without workload.pool the pool takes what max_connections leaves, and
/// `DISCARD ALL` between sessions drops each session's temp table (without
/// it, the next session on that connection fails with 42P07).
#[test]
fn the_default_pool_fits_max_connections_and_sessions_start_clean() {
    let dir = tempfile::tempdir().unwrap();
    let replay = replay_file(dir.path(), 400, 1, 1000.0, |_| "CREATE TEMP TABLE session_scratch (x int)".to_string());
    let s = scenario(dir.path(), &replay, "", "max_connections = 12");
    let o = run(&[s.to_str().unwrap()]);
    let r = o.report();
    judged_or_inconclusive(o.code, r, &o.stdout);
    assert_eq!(r["workload"]["errors"], 0, "{:?}", errors(r));
    // 12, less the sampler's and the migration's connections and one spare.
    let size = r["workload"]["pool"]["size"].as_u64().unwrap();
    assert_eq!(size, 9, "{}", r["workload"]["pool"]);
}

#[test]
fn a_pool_size_without_a_replay_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN note text;\n", "");
    let o = run(&[s.to_str().unwrap(), "--set", "workload.pool=5"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("workload.pool = 5") && o.stderr.contains("workload.replay only"), "{}", o.stderr);
}

/// Replayed sessions blocked by the migration are named by their recorded
/// class (each statement carries its own values, not the class's example
/// ones), not as "workload".
#[test]
fn blocked_replayed_sessions_are_named_by_their_recorded_class() {
    let dir = tempfile::tempdir().unwrap();
    let sql = |i: usize| format!("SELECT count(*) FROM orders WHERE id = {}", i * 7 + 3);
    let replay = replay_file(dir.path(), 300, 1, 3000.0, sql);
    let s = scenario(dir.path(), &replay, "pool = 4", "");
    std::fs::write(
        dir.path().join("migration.sql"),
        "-- lockimpact: transaction step\n-- lockimpact: step \"hold\"\n\
         LOCK TABLE orders IN ACCESS EXCLUSIVE MODE;\nSELECT pg_sleep(1);\n",
    )
    .unwrap();
    let o = run(&[s.to_str().unwrap()]);
    let r = o.report();
    let classes: Vec<&str> =
        r["blocked"]["episodes"].as_array().unwrap().iter().map(|e| e["class"].as_str().unwrap()).collect();
    assert!(!classes.is_empty(), "nothing was blocked: {}", o.stdout);
    assert!(classes.iter().all(|c| *c == "one"), "{classes:?}");
}
