//! Reliability: nothing is left behind and nothing measured is lost. Signals
//! in every phase of a run, a second Ctrl-C, the postmaster killed mid-step,
//! a step that deadlocks with the workload, a panic while a server runs, a
//! server that never becomes ready. Real PostgreSQL servers throughout.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::common::*;
use serde_json::Value;

struct Ended {
    code: Option<i32>,
    stderr: String,
    report: Option<Value>,
}

/// Runs `lockimpact run SCENARIO ARGS --json`, and when a progress line
/// contains `marker`, sends it `signals` (50 ms apart) — or calls `act` with
/// the postmaster pid. Checks that the postmaster and its directory are gone.
fn run_until(scenario: &Path, args: &[&str], marker: &str, act: impl FnOnce(i32, i32)) -> Ended {
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("report.json");
    let mut child = bin()
        .arg("run")
        .arg(scenario)
        .args(args)
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(marker) {
            break;
        }
    }
    assert!(seen.contains(marker), "never saw {marker:?}:\n{seen}");
    let (server_dir, pid) = server_location(&seen);
    act(child.id() as i32, pid);
    for line in lines.map_while(Result::ok) {
        seen.push_str(&line);
        seen.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(wait_gone(pid), "postmaster {pid} still running\n{seen}");
    assert!(!server_dir.exists(), "{} left behind\n{seen}", server_dir.display());
    assert!(!seen.contains("panicked"), "{seen}");
    let report = std::fs::read_to_string(&json).ok().map(|t| serde_json::from_str(&t).expect("the JSON parses"));
    Ended { code: status.code(), stderr: seen, report }
}

fn signal(sig: i32, times: usize) -> impl FnOnce(i32, i32) {
    move |child, _| {
        for i in 0..times {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(50));
            }
            unsafe { libc::kill(child, sig) };
        }
    }
}

/// A scenario whose migration pauses long enough to be interrupted in a step.
fn scenario(dir: &Path) -> std::path::PathBuf {
    let sql = "-- lockimpact: pause 3s \"app deploy\"\nALTER TABLE orders ADD COLUMN note text;\n";
    tiny_scenario(dir, sql, "")
}

fn assert_incomplete(e: &Ended, reason: &str) {
    let r = e.report.as_ref().unwrap_or_else(|| panic!("no report written\n{}", e.stderr));
    assert_eq!(r["complete"], false, "{}", e.stderr);
    assert!(r["incomplete_reason"].as_str().unwrap().contains(reason), "{}", r["incomplete_reason"]);
    assert_eq!(r["verdict"]["pass"], false);
    assert!(r["verdict"]["violations"].as_array().unwrap().iter().any(|v| v["budget"] == "run_completes"));
}

#[test]
fn signal_while_provisioning_and_seeding_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path());
    // The server is being set up: nothing measured yet, so no report.
    let e = run_until(&s, &[], "server: directory", signal(libc::SIGTERM, 1));
    assert_eq!(e.code, Some(130), "{}", e.stderr);
    // The seed script is running (a bigger dataset so it takes a while).
    let e = run_until(&s, &["--set", "vars.rows=400000"], "seeding the template", signal(libc::SIGINT, 1));
    assert_eq!(e.code, Some(130), "{}", e.stderr);
}

#[test]
fn signal_in_warmup_and_baseline_keeps_a_partial_report() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path());
    let e = run_until(&s, &["--set", "phases.warmup=5s"], "warmup", signal(libc::SIGTERM, 1));
    assert_eq!(e.code, Some(130), "{}", e.stderr);
    assert_incomplete(&e, "interrupted");
    let e = run_until(&s, &["--set", "phases.baseline=5s"], "baseline", signal(libc::SIGINT, 1));
    assert_eq!(e.code, Some(130), "{}", e.stderr);
    assert_incomplete(&e, "interrupted");
    assert!(e.report.as_ref().unwrap()["phases"]["warmup_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn signal_during_a_step_records_it_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path());
    let e = run_until(&s, &[], "step 1/2", signal(libc::SIGTERM, 1));
    assert_eq!(e.code, Some(130), "{}", e.stderr);
    assert_incomplete(&e, "interrupted");
    let steps = e.report.as_ref().unwrap()["steps"].as_array().unwrap().clone();
    assert_eq!(steps[0]["outcome"], "interrupted");
    assert_eq!(steps[1]["outcome"], "skipped");
}

#[test]
fn signal_in_cooldown_keeps_the_migration_results() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN note text;\n", "");
    let e = run_until(&s, &["--set", "phases.cooldown=5s"], "after the migration", signal(libc::SIGTERM, 1));
    assert_eq!(e.code, Some(130), "{}", e.stderr);
    assert_incomplete(&e, "interrupted");
    let r = e.report.as_ref().unwrap();
    assert_eq!(r["steps"][0]["outcome"], "ok");
    assert_eq!(r["migration"]["committed"], true);
}

#[test]
fn a_second_ctrl_c_still_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path());
    let e = run_until(&s, &["--set", "phases.baseline=5s"], "baseline", signal(libc::SIGINT, 2));
    assert_eq!(e.code, Some(130), "{}", e.stderr);
    assert!(e.stderr.contains("still cleaning up"), "{}", e.stderr);
    assert_incomplete(&e, "interrupted");
}

#[test]
fn postmaster_killed_mid_step_still_writes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let sql = "-- lockimpact: transaction step\nSELECT pg_sleep(5);\nALTER TABLE orders ADD COLUMN note text;\n";
    let s = tiny_scenario(dir.path(), sql, "");
    let e = run_until(&s, &[], "step 1/2", |_, postmaster| {
        std::thread::sleep(Duration::from_millis(300));
        unsafe { libc::kill(postmaster, libc::SIGKILL) };
    });
    assert_eq!(e.code, Some(2), "{}", e.stderr);
    assert_incomplete(&e, "server stopped answering");
    let r = e.report.as_ref().unwrap();
    assert_ne!(r["steps"][0]["outcome"], "ok", "{}", e.stderr);
    assert_eq!(r["steps"][1]["outcome"], "skipped");
    assert!(r["latency"]["order_by_id"]["baseline"]["count"].as_u64().unwrap() > 0, "baseline numbers are kept");
}

/// `grab(a, b, pause)` locks row a, sleeps, then locks row b: the workload
/// grabs 1 then 2, the migration 2 then 1, and the migration (with a short
/// deadlock_timeout) is the one PostgreSQL aborts. With `on_error=continue`,
/// the next step still runs.
#[test]
fn a_step_that_deadlocks_with_the_workload_is_recorded_and_the_policy_applied() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("seed.sql"),
        "CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL DEFAULT 0);\n\
         INSERT INTO t (id) VALUES (1), (2);\n\
         CREATE FUNCTION grab(a int, b int, pause float8) RETURNS void LANGUAGE plpgsql AS $$\n\
         BEGIN\n  UPDATE t SET v = v + 1 WHERE id = a;\n  PERFORM pg_sleep(pause);\n\
           UPDATE t SET v = v + 1 WHERE id = b;\nEND $$;\n",
    )
    .unwrap();
    std::fs::write(
        d.join("workload.toml"),
        "[[class]]\nname = \"grab_1_2\"\nweight = 1\nsql = \"SELECT grab(1, 2, 0.2)\"\n",
    )
    .unwrap();
    std::fs::write(
        d.join("migration.sql"),
        "-- lockimpact: transaction step\n\
         -- lockimpact: step \"grab 2 then 1\" on_error=continue\n\
         SET deadlock_timeout = '10ms';\nSELECT grab(2, 1, 0.6);\n\
         -- lockimpact: end\n\
         ALTER TABLE t ADD COLUMN note text;\n",
    )
    .unwrap();
    std::fs::write(
        d.join("scenario.toml"),
        "name = \"deadlock\"\n[clone.settings]\ndeadlock_timeout = \"5s\"\n[snapshot]\nseed = \"seed.sql\"\n\
         [workload]\nfile = \"workload.toml\"\nrate = 20\nconnections = 4\n\
         [phases]\nwarmup = \"300ms\"\nbaseline = \"700ms\"\ncooldown = \"500ms\"\n\
         [migration]\nfile = \"migration.sql\"\n",
    )
    .unwrap();
    let o = run(&[d.join("scenario.toml").to_str().unwrap()]);
    let r = o.report();
    let steps = r["steps"].as_array().unwrap();
    assert_eq!(steps[0]["outcome"], "deadlock", "{}", o.stdout);
    assert_eq!(steps[0]["sqlstate"], "40P01");
    assert_eq!(steps[1]["outcome"], "ok", "on_error=continue runs the next step\n{}", o.stdout);
    assert_eq!(r["migration"]["committed"], false);
    assert_eq!(r["complete"], true);
    assert_eq!(o.code, 1, "{}", o.stderr);
}

/// A panic while a server runs: unwinding drops the guard, which stops the
/// server and removes its directory.
#[test]
fn a_panic_drops_the_server_guard() {
    use lockimpact::clone::local::LocalServer;
    let plan = lockimpact::clone::ClonePlan::local();
    let seen = std::sync::Mutex::new(None);
    let result = std::panic::catch_unwind(|| {
        let server = LocalServer::start(&plan).expect("a local server");
        *seen.lock().unwrap() = Some((server.dir().unwrap().to_path_buf(), server.pid()));
        panic!("boom while the server runs");
    });
    assert!(result.is_err());
    let (dir, pid) = seen.lock().unwrap().take().unwrap();
    assert!(wait_gone(pid), "postmaster {pid} still running");
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn a_server_that_never_becomes_ready_is_explained_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny_scenario(
        dir.path(),
        "ALTER TABLE orders ADD COLUMN a int;",
        "[clone.settings]\nshared_buffers = \"64TB\"\n",
    );
    let o = run(&[s.to_str().unwrap()]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("the server did not start"), "{}", o.stderr);
    assert!(o.stderr.contains("server log:"), "{}", o.stderr);
    assert!(o.stderr.contains("shared memory") || o.stderr.contains("FATAL"), "{}", o.stderr);
    assert!(o.report.is_none());
}

#[test]
fn settings_the_tool_manages_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (setting, value) in [("port", "5999"), ("listen_addresses", "\"*\""), ("unix_socket_directories", "\"/tmp\"")] {
        let s = tiny_scenario(
            dir.path(),
            "ALTER TABLE orders ADD COLUMN a int;",
            &format!("[clone.settings]\n{setting} = {value}\n"),
        );
        let o = run(&[s.to_str().unwrap()]);
        assert_eq!(o.code, 2, "{setting}: {}", o.stderr);
        assert!(o.stderr.contains(&format!("clone.settings.{setting}")), "{}", o.stderr);
    }
}
