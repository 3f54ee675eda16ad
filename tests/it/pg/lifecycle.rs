//! Safe next to real servers (issue 14, the lifecycle points), on real
//! PostgreSQL servers and a real Docker engine:
//!
//! - no session of the tool outlives a run on an existing server (url
//!   backend): statements still running are cancelled, sessions confirmed gone;
//! - an interrupted `transaction = "file"` step is cancelled, then rolled back;
//! - a frozen server (its processes stopped with SIGSTOP, its container
//!   paused) ends the run with a report, and Ctrl-C still works then;
//! - SIGHUP is handled like SIGTERM; a FIFO or a device as an input is refused;
//! - outputs: an input as output, a directory, a symlink loop, an unwritable
//!   directory are refused up front; a failed write keeps the previous report;
//!   a closed stdout loses no file;
//! - compare: a candidate that changes the server leaves the next a fresh one;
//! - messages: a terminated migration session, `--keep` of a dead server.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;
use lockimpact::clone::ClonePlan;
use lockimpact::clone::{self, Server};

// ---------------------------------------------------------------------------
// An existing server (the url backend).

const PASSWORD: &str = "pw-lifecycle";

/// A local server standing in for an existing one, with a `clonedb` that
/// opted in to rehearsals; stopped when dropped.
struct Existing {
    server: Server,
    rt: tokio::runtime::Runtime,
    url: String,
}

impl Existing {
    fn start() -> Existing {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let server = clone::start(&ClonePlan::local(), &|_| {}).expect("a local server");
        let seed = std::fs::read_to_string(repo().join("workloads/orders/seed.sql"))
            .unwrap()
            .replace("{{rows}}", "5000")
            .replace("{{customers}}", "500");
        let e = Existing { url: source_url(&server, "clonedb", PASSWORD), server, rt };
        e.sql("postgres", "CREATE DATABASE clonedb");
        e.sql("postgres", "ALTER DATABASE clonedb SET lockimpact.rehearsal = on");
        e.sql("clonedb", &seed);
        e
    }

    fn sql(&self, db: &str, text: &str) {
        self.rt.block_on(async {
            let c = client(&self.server, db).await;
            c.batch_execute(text).await.unwrap_or_else(|e| panic!("{text}: {e}"));
        })
    }

    fn count(&self, query: &str) -> i64 {
        self.rt.block_on(async { client(&self.server, "clonedb").await.query_one(query, &[]).await.unwrap().get(0) })
    }

    /// The tool's sessions still on the server, as "application_name state query".
    fn tool_sessions(&self) -> Vec<String> {
        self.rt.block_on(async {
            let c = client(&self.server, "postgres").await;
            let rows = c
                .query(
                    "SELECT application_name || ' ' || coalesce(state, '') || ' ' || left(query, 60) \
                     FROM pg_stat_activity WHERE application_name LIKE 'lockimpact-%'",
                    &[],
                )
                .await
                .unwrap();
            rows.iter().map(|r| r.get(0)).collect()
        })
    }

    /// A scenario on `clonedb` with this migration and workload file.
    fn scenario(&self, dir: &Path, migration: &str, workload: &str) -> PathBuf {
        std::fs::write(dir.join("migration.sql"), migration).unwrap();
        std::fs::write(dir.join("workload.toml"), workload).unwrap();
        let path = dir.join("scenario.toml");
        std::fs::write(
            &path,
            "name = \"existing\"\n[workload]\nfile = \"workload.toml\"\nrate = 40\nconnections = 4\n\
             [phases]\nwarmup = \"200ms\"\nbaseline = \"800ms\"\ncooldown = \"300ms\"\n\
             [migration]\nfile = \"migration.sql\"\n",
        )
        .unwrap();
        path
    }
}

const READS: &str = "[[class]]\nname = \"by_id\"\nweight = 1\nsql = \"SELECT * FROM orders WHERE id = $1\"\n\
                     params = [{ type = \"int\", min = 1, max = 5000 }]\n";

/// Point 2: workload sessions still running `pg_sleep(1000)` after a normal
/// run are cancelled, and no session of the tool stays on the server.
#[test]
fn no_session_outlives_a_run_on_an_existing_server() {
    let e = Existing::start();
    let dir = tempfile::tempdir().unwrap();
    let sleeper = "[[class]]\nname = \"sleeper\"\nweight = 1\nsql = \"SELECT pg_sleep(1000)\"\n";
    let s = e.scenario(dir.path(), "ALTER TABLE orders ADD COLUMN rehearsed int;\n", sleeper);
    let json = dir.path().join("r.json");
    let args = ["run", s.to_str().unwrap(), "--url", &e.url, "--allow-existing-server", "--json"];
    let mut run = Running::start(&[&args[..], &[json.to_str().unwrap()]].concat());
    run.until("warmup");
    let (code, stderr) = run.end();
    // No operation of this workload ever finishes: when the schedule expected
    // one during the migration (it took 25 ms or more at 40 ops/s), the
    // verdict is inconclusive (exit code 3); a faster one is not judged on it.
    let status = report(&json)["verdict"]["status"].as_str().unwrap().to_string();
    assert!(
        (code, status.as_str()) == (Some(0), "pass") || (code, status.as_str()) == (Some(3), "inconclusive"),
        "exit {code:?}, verdict {status}: {stderr}"
    );
    assert!(stderr.contains("sessions: cancelled the running statement of workload connection"), "{stderr}");
    assert!(stderr.contains("of lockimpact's sessions on the server have ended"), "{stderr}");
    assert_eq!(e.tool_sessions(), Vec::<String>::new(), "{stderr}");
    assert_eq!(report(&json)["steps"][0]["outcome"], "ok");
}

/// Points 2 and 6: Ctrl-C during a long statement of a `transaction = "file"`
/// migration cancels the statement, then rolls back: the column it added is
/// gone, its AccessExclusiveLock released, no session left.
#[test]
fn an_interrupted_file_transaction_is_cancelled_then_rolled_back() {
    let e = Existing::start();
    let dir = tempfile::tempdir().unwrap();
    let migration = "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE;\n\
                     ALTER TABLE orders ADD COLUMN rehearsal_note text;\n\
                     SELECT pg_sleep(600);\n";
    let s = e.scenario(dir.path(), migration, READS);
    let json = dir.path().join("r.json");
    let args = ["run", s.to_str().unwrap(), "--url", &e.url, "--allow-existing-server", "--json"];
    let mut run = Running::start(&[&args[..], &[json.to_str().unwrap()]].concat());
    run.until("step 3/3");
    std::thread::sleep(Duration::from_millis(1500));
    run.signal(libc::SIGINT);
    let (code, stderr) = run.end();
    assert_eq!(code, Some(130), "{stderr}");
    let r = report(&json);
    assert_eq!(r["steps"][2]["outcome"], "interrupted", "{stderr}");
    assert_eq!(r["migration"]["committed"], false);
    assert_eq!(
        e.count("SELECT count(*) FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'rehearsal_note'"),
        0,
        "the file's transaction was not rolled back\n{stderr}"
    );
    assert_eq!(e.count("SELECT count(*) FROM pg_locks WHERE relation = 'orders'::regclass"), 0, "{stderr}");
    assert_eq!(e.tool_sessions(), Vec::<String>::new(), "{stderr}");
}

/// Point 7: a failed write (the file size limit of the process, as a full
/// disk would) leaves the previous report whole, and no temporary file.
#[test]
fn a_failed_report_write_keeps_the_previous_report() {
    let e = Existing::start();
    let dir = tempfile::tempdir().unwrap();
    let s = e.scenario(dir.path(), "ALTER TABLE orders ADD COLUMN rehearsed int;\n", READS);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let json = out.join("r.json");
    std::fs::write(&json, "{\"previous\": true}\n").unwrap();
    let mut cmd = bin();
    cmd.args(["run", s.to_str().unwrap(), "--url", &e.url, "--allow-existing-server", "--json"]).arg(&json);
    unsafe {
        cmd.pre_exec(|| {
            // Writing past 2 KiB fails with EFBIG (SIGXFSZ ignored), as writing on a full disk fails.
            let limit = libc::rlimit { rlim_cur: 2048, rlim_max: 2048 };
            libc::setrlimit(libc::RLIMIT_FSIZE, &limit);
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("r.json: cannot write the report"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&json).unwrap(), "{\"previous\": true}\n", "{stderr}");
    let files: Vec<_> = std::fs::read_dir(&out).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(files, vec![std::ffi::OsString::from("r.json")], "temporary files left behind");
}

// ---------------------------------------------------------------------------
// Frozen servers.

/// The postmaster and its children (backends and auxiliary processes).
fn server_processes(postmaster: i32) -> Vec<i32> {
    let mut all = lockimpact::clone::local::children(postmaster);
    all.push(postmaster);
    all
}

/// Freezes the whole server, as `docker pause` freezes a container: every
/// one of its processes stopped with SIGSTOP.
fn freeze(postmaster: i32) {
    for pid in server_processes(postmaster) {
        unsafe { libc::kill(pid, libc::SIGSTOP) };
    }
}

/// Kills a server the run under test failed to remove (so that a failing
/// test leaves nothing behind), and removes its directory.
fn remove_server(dir: &Path, postmaster: i32) {
    if process_alive(postmaster) {
        for pid in server_processes(postmaster) {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::kill(pid, libc::SIGCONT);
            }
        }
        wait_gone(postmaster);
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A scenario whose first step waits long enough to freeze the server in it.
fn long_step_scenario(dir: &Path) -> PathBuf {
    tiny_scenario(dir, "-- lockimpact: pause 60s \"deploy\"\nALTER TABLE orders ADD COLUMN note text;\n", "")
}

/// Runs a long step, stops the server's processes in it (`only_postmaster`:
/// the postmaster alone, else every process, as `docker pause` does to a
/// container), and checks that the watchdog ended the run with a report and
/// that the server was removed.
fn frozen_run(only_postmaster: bool) {
    let dir = tempfile::tempdir().unwrap();
    let s = long_step_scenario(dir.path());
    let json = dir.path().join("r.json");
    let mut run = Running::start(&["run", s.to_str().unwrap(), "--json", json.to_str().unwrap()]);
    let (server_dir, postmaster) = server_location(run.until("step 1/2"));
    std::thread::sleep(Duration::from_millis(500));
    match only_postmaster {
        true => unsafe {
            libc::kill(postmaster, libc::SIGSTOP);
        },
        false => freeze(postmaster),
    }
    let (code, stderr) = run.end();
    let gone = wait_gone(postmaster);
    remove_server(&server_dir, postmaster);
    assert_eq!(code, Some(2), "{stderr}");
    let r = report(&json);
    assert_eq!(r["complete"], false);
    assert!(r["incomplete_reason"].as_str().unwrap().contains("the server froze"), "{}", r["incomplete_reason"]);
    assert_eq!(r["steps"][0]["outcome"], "interrupted", "{stderr}");
    assert!(r["latency"]["order_by_id"]["baseline"]["count"].as_u64().unwrap() > 0, "baseline numbers are kept");
    assert!(gone, "the frozen server was not stopped\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Point 6: every process of the server stopped (SIGSTOP) during a step.
#[test]
fn a_frozen_local_server_ends_the_run_with_a_report() {
    frozen_run(false);
}

/// Point 6: the postmaster alone stopped (SIGSTOP): no new connection is
/// answered any more; the watchdog ends the run all the same.
#[test]
fn a_stopped_postmaster_ends_the_run_with_a_report() {
    frozen_run(true);
}

/// Point 6: Ctrl-C is not ignored while the server is frozen.
#[test]
fn ctrl_c_ends_a_run_whose_server_is_frozen() {
    let dir = tempfile::tempdir().unwrap();
    let s = long_step_scenario(dir.path());
    let json = dir.path().join("r.json");
    let mut run = Running::start(&["run", s.to_str().unwrap(), "--json", json.to_str().unwrap()]);
    let (server_dir, postmaster) = server_location(run.until("step 1/2"));
    freeze(postmaster);
    std::thread::sleep(Duration::from_millis(1000));
    run.signal(libc::SIGINT);
    let (code, stderr) = run.end();
    let gone = wait_gone(postmaster);
    remove_server(&server_dir, postmaster);
    assert_eq!(code, Some(130), "{stderr}");
    let r = report(&json);
    assert!(r["incomplete_reason"].as_str().unwrap().starts_with("interrupted"), "{}", r["incomplete_reason"]);
    assert!(gone, "the frozen server was not stopped\n{stderr}");
}

// ---------------------------------------------------------------------------
// Signals and inputs.

/// Point 6: SIGHUP (a closed terminal) is handled like SIGTERM: the report is
/// written, the server and its files are removed.
#[test]
fn sighup_stops_the_run_like_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let s = long_step_scenario(dir.path());
    let json = dir.path().join("r.json");
    let mut run = Running::start(&["run", s.to_str().unwrap(), "--json", json.to_str().unwrap()]);
    let (server_dir, postmaster) = server_location(run.until("step 1/2"));
    run.signal(libc::SIGHUP);
    let (code, stderr) = run.end();
    let gone = wait_gone(postmaster);
    let dir_left = server_dir.exists();
    remove_server(&server_dir, postmaster);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(gone, "postmaster {postmaster} left running\n{stderr}");
    assert!(!dir_left, "{} left behind", server_dir.display());
    let r = report(&json);
    assert_eq!(r["steps"][0]["outcome"], "interrupted");
    assert!(r["incomplete_reason"].as_str().unwrap().contains("SIGHUP"), "{}", r["incomplete_reason"]);
}

/// Point 6: a FIFO, `/dev/zero` and a file over the size limit as inputs are
/// refused at once (a FIFO would block, /dev/zero never ends).
#[test]
fn a_fifo_a_device_or_a_huge_file_as_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN a int;\n", "");
    let fifo = dir.path().join("fifo.sql");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let huge = dir.path().join("huge.sql");
    std::fs::File::create(&huge).unwrap().set_len(300 << 20).unwrap();
    let fifo_set = format!("migration.file={:?}", fifo.display().to_string());
    let huge_set = format!("migration.file={:?}", huge.display().to_string());
    for (set, expect) in [
        (fifo_set.as_str(), "the migration file is a FIFO (named pipe)"),
        ("snapshot.seed=\"/dev/zero\"", "/dev/zero: the seed script is a character device"),
        (huge_set.as_str(), "more than the 256 MiB lockimpact reads"),
    ] {
        let mut child = bin()
            .args(["run", s.to_str().unwrap(), "--set", set])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_within(&mut child, Duration::from_secs(30));
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert!(status.is_some(), "{set}: still reading after 30 s\n{stderr}");
        assert_eq!(status.unwrap().code(), Some(2), "{set}: {stderr}");
        assert!(stderr.contains(expect), "{set}: {stderr}");
        assert!(!stderr.contains("seeding"), "{set}: {stderr}");
    }
}

// ---------------------------------------------------------------------------
// Outputs.

/// Point 7: an output that is an input of the run (directly, or through a
/// symlink) is refused before anything starts, and the input is untouched.
#[test]
fn an_output_that_is_an_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN a int;\n", "");
    let migration = dir.path().join("migration.sql");
    let link = dir.path().join("report.md");
    std::os::unix::fs::symlink(&s, &link).unwrap();
    let before = (std::fs::read(&s).unwrap(), std::fs::read(&migration).unwrap());
    let other = dir.path().join("b.toml");
    std::fs::copy(&s, &other).unwrap();
    for args in [
        vec!["run".to_string(), s.display().to_string(), "--out".into(), format!("markdown:{}", s.display())],
        vec!["run".into(), s.display().to_string(), "--out".into(), format!("text:{}", migration.display())],
        vec!["run".into(), s.display().to_string(), "--out".into(), link.display().to_string()],
        vec![
            "compare".into(),
            s.display().to_string(),
            other.display().to_string(),
            "--json".into(),
            other.display().to_string(),
        ],
    ] {
        let o = bin().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("an input of this run"), "{args:?}: {stderr}");
        assert!(!stderr.contains("seeding"), "{args:?}: {stderr}");
    }
    assert_eq!((std::fs::read(&s).unwrap(), std::fs::read(&migration).unwrap()), before);
    // `record log` does not write over one of its logs either.
    let log = dir.path().join("postgres.log");
    std::fs::write(&log, "2026-01-01 00:00:00.000 UTC [1:1:0] app@db LOG:  statement: SELECT 1\n").unwrap();
    let o = bin().args(["record", "log"]).arg(&log).arg("--out").arg(&log).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is the log file"), "{stderr}");
    assert!(std::fs::read_to_string(&log).unwrap().contains("statement: SELECT 1"));
}

/// Point 7: a directory, a symlink loop, a dangling symlink, a directory that
/// takes no file, or one file given twice is refused before the rehearsal.
#[test]
fn bad_destinations_are_refused_before_the_rehearsal() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN a int;\n", "");
    let d = dir.path();
    std::fs::create_dir(d.join("report.json")).unwrap();
    std::os::unix::fs::symlink(d.join("loop-b.md"), d.join("loop-a.md")).unwrap();
    std::os::unix::fs::symlink(d.join("loop-a.md"), d.join("loop-b.md")).unwrap();
    std::os::unix::fs::symlink(d.join("nowhere/x.md"), d.join("dangling.md")).unwrap();
    let p = |name: &str| d.join(name).display().to_string();
    for (args, expect) in [
        (vec!["--out".to_string(), p("report.json")], "is a directory"),
        (vec!["--out".into(), p("loop-a.md")], "is a symlink loop"),
        (vec!["--out".into(), p("dangling.md")], "which does not exist"),
        // /proc takes no new file, whoever asks (root included).
        (vec!["--out".into(), "/proc/1/report.md".into()], "cannot write in directory /proc/1"),
        (vec!["--out".into(), p("r.md"), "--out".into(), format!("text:{}", p("./r.md"))], "given twice"),
    ] {
        let o = bin().arg("run").arg(&s).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
        assert!(!stderr.contains("seeding"), "{args:?}: {stderr}");
    }
}

/// Point 7: a reader that closed stdout (`| head -1`) loses no `--out` file.
#[test]
fn a_closed_stdout_loses_no_report_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN a int;\n", "");
    let (md, json) = (dir.path().join("r.md"), dir.path().join("r.json"));
    let mut child = bin()
        .arg("run")
        .arg(&s)
        .arg("--out")
        .arg(&md)
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // nobody reads stdout: writing there fails with EPIPE
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(std::fs::read_to_string(&md).unwrap().contains("lockimpact rehearsal"), "{stderr}");
    assert_eq!(report(&json)["steps"][0]["outcome"], "ok");
}

// ---------------------------------------------------------------------------
// compare isolation.

/// Point 10: candidate A changes a server setting (ALTER SYSTEM and a reload)
/// and drops the template; B runs on a fresh server, sees the default
/// setting, and A's report is kept in the comparison.
#[test]
fn a_candidate_that_changes_the_server_leaves_the_next_a_fresh_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny_scenario(dir.path(), "SELECT 1;\n", "");
    let a = dir.path().join("a.sql");
    std::fs::write(
        &a,
        "-- lockimpact: transaction none\nALTER SYSTEM SET work_mem = '77MB';\nSELECT pg_reload_conf();\n\
         DROP DATABASE lockimpact_template;\n",
    )
    .unwrap();
    let b = dir.path().join("b.sql");
    std::fs::write(
        &b,
        "DO $$ BEGIN IF current_setting('work_mem') <> '4MB' THEN \
         RAISE EXCEPTION 'work_mem is %, set by candidate A', current_setting('work_mem'); END IF; END $$;\n\
         ALTER TABLE orders ADD COLUMN note text;\n",
    )
    .unwrap();
    let json = dir.path().join("c.json");
    let o = bin()
        .arg("compare")
        .arg(&s)
        .arg("--migration")
        .arg(&a)
        .arg("--migration")
        .arg(&b)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    let c = report(&json);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("candidate A changed the server"), "{stderr}");
    assert!(stderr.contains("the template database lockimpact_template was dropped"), "{stderr}");
    assert!(stderr.contains("setting work_mem changed"), "{stderr}");
    assert!(stderr.contains("candidate B runs on a fresh server"), "{stderr}");
    assert_eq!(stderr.matches("seeding the template").count(), 2, "{stderr}");
    let noted = c["differences"].as_array().unwrap().iter().any(|d| d.as_str().unwrap().contains("changed the server"));
    assert!(noted, "{}", c["differences"]);
    let steps = |i: usize| c["candidates"][i]["report"]["steps"].as_array().unwrap().clone();
    assert!(steps(0).iter().all(|s| s["outcome"] == "ok"), "{:?}", steps(0));
    assert!(steps(1).iter().all(|s| s["outcome"] == "ok"), "B saw A's changes: {:?}", steps(1));
}

// ---------------------------------------------------------------------------
// Messages.

/// Point 12: the migration's own session terminated while the server runs
/// on is named as such, not as the server having stopped answering.
#[test]
fn a_terminated_migration_session_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny_scenario(
        dir.path(),
        "SELECT pg_terminate_backend(pg_backend_pid());\nALTER TABLE orders ADD COLUMN a int;\n",
        "",
    );
    let o = run(&[s.to_str().unwrap()]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    let reason = o.report()["incomplete_reason"].as_str().unwrap().to_string();
    assert!(reason.contains("the migration's own session was terminated"), "{reason}");
    assert!(!o.stderr.contains("the server stopped answering"), "{}", o.stderr);
    assert_eq!(o.report()["steps"][0]["sqlstate"], "57P01");
}

/// Point 12: with `--keep`, a server that died is not said to keep running.
#[test]
fn keep_does_not_call_a_dead_server_running() {
    let dir = tempfile::tempdir().unwrap();
    let sql = "-- lockimpact: transaction step\nSELECT pg_sleep(5);\nALTER TABLE orders ADD COLUMN note text;\n";
    let s = tiny_scenario(dir.path(), sql, "");
    let mut run = Running::start(&["run", s.to_str().unwrap(), "--keep"]);
    let (server_dir, postmaster) = server_location(run.until("step 1/2"));
    std::thread::sleep(Duration::from_millis(300));
    unsafe { libc::kill(postmaster, libc::SIGKILL) };
    let (code, stderr) = run.end();
    wait_gone(postmaster);
    let _ = std::fs::remove_dir_all(&server_dir);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(!stderr.contains("keeps running"), "{stderr}");
    assert!(stderr.contains("--keep: the server is not running"), "{stderr}");
}

/// Point 2, the panic path: a `Sessions` dropped by a panic cancels the
/// statement its session still runs and confirms the session gone.
#[test]
fn a_panic_still_closes_the_sessions() {
    use lockimpact::clone::sessions::Sessions;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = clone::start(&ClonePlan::local(), &|_| {}).expect("a local server");
    let (sessions, pid) = rt.block_on(async {
        let sessions = Sessions::new(server.target("postgres"));
        let (c, pid) = sessions.connect(&server, "postgres", "migration").await.unwrap();
        tokio::spawn(async move {
            let _ = c.simple_query("SELECT pg_sleep(600)").await;
        });
        (sessions, pid)
    });
    let active = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active'";
    let count = |q: &str| -> i64 {
        rt.block_on(async { client(&server, "postgres").await.query_one(q, &[&pid]).await.unwrap().get(0) })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(active) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(count(active), 1, "the statement runs");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _held = sessions;
        panic!("boom while a statement runs");
    }));
    assert!(result.is_err());
    assert_eq!(count("SELECT count(*) FROM pg_stat_activity WHERE pid = $1"), 0, "the session outlived the panic");
}
