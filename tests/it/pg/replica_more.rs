//! More of `[replica]` against real servers: the commit latency a
//! synchronous standby adds on the primary (`replicas.standbys[].sync_commit`),
//! seen when the standby is made slow on purpose (its replay held back by
//! `recovery_min_apply_delay` under `synchronous_commit = remote_apply`, or its
//! WAL receiver stopped with SIGSTOP), and absent without `synchronous`.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::common::*;

use super::replica::ports;

/// A migration that writes little WAL: the probes, not the migration, are under test.
const ALTER: &str = "ALTER TABLE orders ADD COLUMN note text;\n";

/// A small orders scenario with `[replica]` = `replica`, `extra` TOML, and a
/// `baseline` long enough for the probes.
fn scenario(dir: &Path, replica: &str, extra: &str, baseline: &str) -> std::path::PathBuf {
    let extra = format!("[sampler]\ninterval = \"50ms\"\n{extra}\n[replica]\ninterval = \"50ms\"\n{replica}\n");
    let path = tiny_scenario(dir, ALTER, &extra);
    let text =
        std::fs::read_to_string(&path).unwrap().replace("baseline = \"1s\"", &format!("baseline = \"{baseline}\""));
    std::fs::write(&path, text).unwrap();
    path
}

fn run_args<'a>(scenario: &'a Path, json: &'a Path) -> [&'a str; 6] {
    ["run", scenario.to_str().unwrap(), "--backend", "local", "--json", json.to_str().unwrap()]
}

/// The commit probe's numbers for `phase`.
fn phase<'a>(sync: &'a Value, phase: &str) -> &'a Value {
    let phases = sync["phases"].as_array().expect("sync_commit.phases");
    phases.iter().find(|p| p["phase"] == phase).unwrap_or_else(|| panic!("no {phase} phase in {sync}"))
}

/// `synchronous_commit = remote_apply` with the standby's replay held back
/// 300 ms: every commit that waits for the standby takes at least 300 ms
/// (replay of a commit waits until 300 ms after its timestamp), one with
/// `synchronous_commit = local` does not. The report shows the level, the
/// two medians, and their difference as what the standby adds.
#[test]
fn a_synchronous_standby_with_delayed_apply_adds_the_delay_to_commits() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let path = scenario(
        dir.path(),
        "count = 1\nsynchronous = true\nrecovery_min_apply_delay = \"300ms\"",
        "[clone.settings]\nsynchronous_commit = \"remote_apply\"\n[budget]\nmax_sync_commit_added = \"50ms\"",
        "3s",
    );
    // The workload's writes wait 300 ms each too: the schedule falls behind
    // and the verdict may be inconclusive (exit 3); the probes are measured all the same.
    let (code, stderr) = Running::start(&run_args(&path, &json)).end();
    assert!(matches!(code, Some(0 | 1 | 3)), "exit {code:?}:\n{stderr}");
    let report = report(&json);
    let sync = &report["replicas"]["standbys"][0]["sync_commit"];
    eprintln!("sync_commit: {sync}");
    assert_eq!(sync["level"], "remote_apply", "{sync}");
    let b = phase(sync, "baseline");
    assert!(b["waiting_probes"].as_u64().unwrap() >= 2 && b["local_probes"].as_u64().unwrap() >= 2, "{b}");
    let (waiting, local) = (b["waiting_p50_ms"].as_f64().unwrap(), b["local_p50_ms"].as_f64().unwrap());
    assert!(waiting >= 290.0, "a waiting commit waits for the 300 ms apply delay: {b}");
    assert!(local < waiting, "{b}");
    assert_eq!(b["added_ms"].as_f64().unwrap(), waiting - local, "{b}");
    assert!(sync["max_added_ms"].as_f64().unwrap() >= b["added_ms"].as_f64().unwrap(), "{sync}");
    assert_eq!(sync["failed_probes"], 0, "{sync}");
    let violations = report["verdict"]["violations"].as_array().unwrap();
    let v = violations.iter().find(|v| v["budget"] == "max_sync_commit_added").expect("max_sync_commit_added exceeded");
    assert_eq!((&v["limit"], &v["actual"]), (&Value::from(50.0), &sync["max_added_ms"]), "{v}");
}

/// Resumes a stopped process when dropped (the test's assertions may panic).
struct Stopped(i32);

impl Stopped {
    fn stop(pid: i32) -> Stopped {
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0, "SIGSTOP {pid}");
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

/// The standby's WAL receiver pid (`pg_stat_wal_receiver` on the standby).
fn wal_receiver_pid(socket: &Path, port: u16) -> i32 {
    let psql = lockimpact::clone::local::find_binaries(None, None).unwrap().dir.join("psql");
    let out = std::process::Command::new(psql)
        .args(["-X", "-At", "-h"])
        .arg(socket)
        .args([
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            "SELECT pid FROM pg_stat_wal_receiver",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("no WAL receiver pid: {text:?} {}", String::from_utf8_lossy(&out.stderr)))
}

/// The synchronous standby's WAL receiver stopped (SIGSTOP) for 1.5 s in the
/// baseline: commits on the primary that wait for the standby (the
/// workload's writes and the probe's waiting commits) hang until it resumes.
/// The report shows a waiting commit of more than a second in the baseline
/// and the workload's sessions seen waiting on `SyncRep`, while the commits
/// with `synchronous_commit = local` stay fast.
#[test]
fn a_stopped_wal_receiver_shows_as_commit_latency_on_the_primary() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let path = scenario(dir.path(), "count = 1\nsynchronous = true", "", "5s");
    let mut run = Running::start(&run_args(&path, &json));
    let (server_dir, _) = server_location(run.until("server: directory "));
    let seen = run.until("clone: local server binaries").to_string();
    let (_, standby) = seen.lines().find_map(ports).expect("the standby's port");
    run.until("lockimpact: baseline");
    std::thread::sleep(Duration::from_millis(500));
    let stopped = Stopped::stop(wal_receiver_pid(&server_dir, standby));
    std::thread::sleep(Duration::from_millis(1500));
    drop(stopped);
    let (code, stderr) = run.end();
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}:\n{stderr}");
    let report = report(&json);
    let sync = &report["replicas"]["standbys"][0]["sync_commit"];
    eprintln!("sync_commit: {sync}");
    assert_eq!(sync["level"], "on", "{sync}");
    let b = phase(sync, "baseline");
    assert!(b["waiting_max_ms"].as_f64().unwrap() >= 1000.0, "a waiting commit hung while the receiver stopped: {b}");
    assert!(b["max_waiting_sessions"].as_u64().unwrap() >= 1, "the workload's writes waited on SyncRep: {b}");
    assert!(b["local_p50_ms"].as_f64().unwrap() < 1000.0, "{b}");
}

/// Without `synchronous`, nothing is probed and `sync_commit` is absent.
#[test]
fn without_a_synchronous_standby_no_commit_latency_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let path = scenario(dir.path(), "count = 1", "", "1s");
    let (code, stderr) = Running::start(&run_args(&path, &json)).end();
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}:\n{stderr}");
    let report = report(&json);
    let s = &report["replicas"]["standbys"][0];
    assert!(s["samples"].as_u64().unwrap() > 0, "{s}");
    assert!(s.get("sync_commit").is_none(), "{s}");
}

/// Logical replication carries rows, not DDL: the migration adds a column to
/// `orders` and writes to it, so the subscriber's copy of `orders` lacks a
/// column the changes carry and its apply worker fails (SQLSTATE 42703,
/// "is missing replicated column"). The report shows the errors, first seen
/// after the baseline, and the slot falling behind (its confirmed position
/// stops while the workload writes). No standby is needed for a subscriber.
#[test]
fn a_logical_subscriber_breaks_on_a_new_column_and_the_report_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let path = scenario(dir.path(), "logical = true", "[budget]\nmax_subscriber_errors = 0", "1s");
    let migration = "ALTER TABLE orders ADD COLUMN note text;\nUPDATE orders SET note = 'x' WHERE id <= 10;\n";
    std::fs::write(dir.path().join("migration.sql"), migration).unwrap();
    let text = std::fs::read_to_string(&path).unwrap().replace("cooldown = \"500ms\"", "cooldown = \"2s\"");
    std::fs::write(&path, text).unwrap();
    let (code, stderr) = Running::start(&run_args(&path, &json)).end();
    assert!(matches!(code, Some(0 | 1 | 3)), "exit {code:?}:\n{stderr}");
    let report = report(&json);
    let s = &report["replicas"]["standbys"][0];
    eprintln!("subscriber: {s}");
    assert_eq!(s["name"], "lockimpact_sub", "{s}");
    let l = &s["logical"];
    assert!(l["apply_errors"].as_u64().unwrap() >= 1, "the subscriber fails on the new column: {l}");
    assert_ne!(l["first_error_phase"], "baseline", "{l}");
    let message = l["first_error_message"].as_str().expect("the first error's message, from the server's log");
    assert!(message.contains("is missing replicated column") && message.contains("note"), "{message}");
    assert!(l["first_error_at_ms"].as_f64().unwrap() >= report["steps"][0]["start_ms"].as_f64().unwrap(), "{l}");
    assert!(s["max_lag_bytes"].as_u64().unwrap() > s["baseline_max_lag_bytes"].as_u64().unwrap(), "{s}");
    let violations = report["verdict"]["violations"].as_array().unwrap();
    let v = violations.iter().find(|v| v["budget"] == "max_subscriber_errors").expect("max_subscriber_errors exceeded");
    assert_eq!(v["limit"], 0.0, "{v}");
    assert!(v["actual"].as_f64().unwrap() >= 1.0, "{v}");
    assert!(v["message"].as_str().unwrap().contains("; the first: logical replication target relation"), "{v}");
    assert_ne!(code, Some(0), "the verdict fails");
}

/// A migration logical replication carries (an index: no row changes of a
/// new shape): no subscriber error, and the slot keeps up.
#[test]
fn a_logical_subscriber_follows_a_migration_without_new_columns() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let path = scenario(dir.path(), "logical = true\ncount = 1", "[budget]\nmax_subscriber_errors = 0", "1s");
    std::fs::write(dir.path().join("migration.sql"), "CREATE INDEX ON orders (status);\n").unwrap();
    let mut run = Running::start(&run_args(&path, &json));
    let (server_dir, _) = server_location(run.until("server: directory "));
    let (primary, _) = run.until("clone: local server binaries").lines().find_map(ports).expect("the primary's port");
    run.until("lockimpact: baseline");
    let published = psql(&server_dir, primary, "lockimpact_run", PUBLISHED);
    let (code, stderr) = run.end();
    assert_eq!(published, "orders", "only the table the migration changes is published:\n{stderr}");
    assert!(stderr.contains("logical subscriber: publishing orders"), "{stderr}");
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}:\n{stderr}");
    let report = report(&json);
    let standbys = report["replicas"]["standbys"].as_array().unwrap();
    assert_eq!(standbys.len(), 2, "the standby and the subscriber: {standbys:?}");
    let s = standbys.iter().find(|s| s["name"] == "lockimpact_sub").expect("the subscriber");
    eprintln!("subscriber: {s}");
    assert_eq!(s["logical"]["apply_errors"], 0, "{s}");
    assert!(s["logical"]["first_error_at_ms"].is_null(), "{s}");
    assert!(s["logical"].get("first_error_message").is_none(), "{s}");
    assert!(s["samples"].as_u64().unwrap() > 10, "{s}");
    assert_eq!(s["logical"]["published_tables"], serde_json::json!(["orders"]), "{s}");
    let violations = report["verdict"]["violations"].as_array().unwrap();
    assert!(!violations.iter().any(|v| v["budget"] == "max_subscriber_errors"), "{violations:?}");
}

/// The tables of the run database's publication, as `schema.table`, comma-separated.
const PUBLISHED: &str = "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_publication_tables \
                         WHERE pubname = 'lockimpact_pub'";

/// One value `sql` returns on database `db` of the server at `port` (its socket in `socket`).
fn psql(socket: &Path, port: u16, db: &str, sql: &str) -> String {
    let psql = lockimpact::clone::local::find_binaries(None, None).unwrap().dir.join("psql");
    let out = std::process::Command::new(psql)
        .args(["-X", "-At", "-h"])
        .arg(socket)
        .args(["-p", &port.to_string(), "-U", "postgres", "-d", db, "-c", sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A migration that changes no table existing before it runs (it creates
/// one): the publication is `FOR ALL TABLES` (the seed's `customers` and
/// `orders`), and the report says why.
#[test]
fn a_migration_naming_no_existing_table_publishes_all_tables() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let path = scenario(dir.path(), "logical = true\ncount = 1", "", "1s");
    std::fs::write(dir.path().join("migration.sql"), "CREATE TABLE audit (id bigint PRIMARY KEY);\n").unwrap();
    let mut run = Running::start(&run_args(&path, &json));
    let (server_dir, _) = server_location(run.until("server: directory "));
    let (primary, _) = run.until("clone: local server binaries").lines().find_map(ports).expect("the primary's port");
    run.until("lockimpact: baseline");
    let published = psql(&server_dir, primary, "lockimpact_run", PUBLISHED);
    let all = psql(&server_dir, primary, "lockimpact_run", "SELECT puballtables FROM pg_publication");
    let (code, stderr) = run.end();
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}:\n{stderr}");
    assert_eq!(all, "t", "{stderr}");
    assert!(
        published.split(',').any(|t| t == "orders") && published.split(',').any(|t| t == "customers"),
        "{published}"
    );
    let report = report(&json);
    let l = &report["replicas"]["standbys"].as_array().unwrap().iter().find(|s| s["name"] == "lockimpact_sub").unwrap()
        ["logical"];
    assert!(l.get("published_tables").is_none(), "{l}");
    let note = l["publication_note"].as_str().unwrap();
    assert_eq!(note, "none of the tables the migration changes exists before it runs (audit)", "{l}");
}

/// Bad `logical` and `standby` settings are refused before anything starts (exit 2), naming the key
/// (a value of the wrong type: its line and column).
#[test]
fn bad_logical_and_standby_settings_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &[&str], &str)] = &[
        ("logical = \"yes\"", "", &[], "expected a boolean"),
        ("logical = true", "[clone.settings]\nwal_level = \"replica\"", &[], "clone.settings.wal_level"),
        ("logical = true", "", &["--backend", "docker"], "the docker backend does not make"),
        ("logical = true\nsynchronous = true", "", &[], "replica.synchronous is set, but the clone gets no standby"),
        ("count = 2\nstandby = 3", "", &[], "replica.standby = 3"),
        ("count = 1\nstandby = 0", "", &[], "replica.standby = 0"),
        ("standby = 1", "", &[], "replica.standby is set, but the clone gets no standby"),
    ];
    for (replica, extra, args, expected) in cases {
        let path = scenario(dir.path(), replica, extra, "1s");
        let out = bin().arg("run").arg(&path).args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{replica} {args:?}: {stderr}");
        assert!(stderr.contains(expected), "{replica} {args:?}: expected {expected:?} in:\n{stderr}");
    }
}

/// `lockimpact bench --quick --only 6`: the replica sampler's row, on a
/// server with one standby, with both sides measured and the CPU its server
/// processes used (no figure is checked against a target: timing belongs to
/// the report).
#[test]
fn the_bench_row_of_the_replica_sampler_has_both_sides() {
    let out = tempfile::tempdir().unwrap();
    let run = bin().args(["bench", "--quick", "--only", "6", "--out"]).arg(out.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "stderr:\n{stderr}");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(out.path().join("bench.json")).unwrap()).unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["id"], "replica_sampler_throughput", "{row}");
    assert_eq!(row["section"], 6, "{row}");
    for side in ["a", "b"] {
        assert!(row[side]["value"].as_f64().is_some_and(|v| v > 0.0), "{row}");
    }
    let detail = row["detail"].as_str().unwrap();
    assert!(detail.contains("polls of the standby"), "{row}");
    // The sampler's server processes did some work in the polling seconds.
    let cpu = detail.split_once(" used ").and_then(|(_, r)| r.split_once(" ms of CPU")).map(|(v, _)| v);
    assert!(cpu.and_then(|v| v.parse::<f64>().ok()).is_some_and(|v| v > 0.0), "{row}");
    let md = std::fs::read_to_string(out.path().join("BENCHMARKS.md")).unwrap();
    assert!(md.contains("## 6. Replica sampler cost"), "{md}");
}

/// The standbys' ports, from the `clone:` progress line.
fn standby_ports(seen: &str) -> Vec<u16> {
    let line = seen.lines().find(|l| l.contains("on port(s) ")).expect("a clone line with the standbys' ports");
    line.split_once("on port(s) ").unwrap().1.split(',').filter_map(|p| p.trim().parse().ok()).collect()
}

/// Sessions on the run database of the server at `port` (its socket in `socket`).
fn run_db_sessions(socket: &Path, port: u16) -> u64 {
    let psql = lockimpact::clone::local::find_binaries(None, None).unwrap().dir.join("psql");
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = 'lockimpact_run'";
    let out = std::process::Command::new(psql)
        .args(["-X", "-At", "-h"])
        .arg(socket)
        .args(["-p", &port.to_string(), "-U", "postgres", "-d", "postgres", "-c", sql])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// `standby = 2` of two: the `target = "replica"` class's connections open on
/// the second standby's run database, none on the first's.
#[test]
fn replica_classes_run_on_the_chosen_standby() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let path = scenario(dir.path(), "count = 2\nstandby = 2", "", "3s");
    use_workload(&path, STANDBY_READ);
    let mut run = Running::start(&run_args(&path, &json));
    let (server_dir, _) = server_location(run.until("server: directory "));
    let ports = standby_ports(run.until("clone: local server binaries"));
    run.until("lockimpact: baseline");
    let sessions: Vec<u64> = ports.iter().map(|p| run_db_sessions(&server_dir, *p)).collect();
    let (code, stderr) = run.end();
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}:\n{stderr}");
    assert_eq!(ports.len(), 2, "{stderr}");
    assert_eq!(sessions[0], 0, "no workload connection on the first standby: {sessions:?}");
    assert!(sessions[1] >= 4, "the 4 workload connections on the second standby: {sessions:?}");
    let report = report(&json);
    assert!(report["latency"]["standby_read"]["baseline"]["count"].as_u64().unwrap() > 0, "the class ran");
}
