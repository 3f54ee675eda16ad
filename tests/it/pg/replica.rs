//! Streaming standbys of the local clone (`[replica]`): the reported replay
//! lag agrees with the test's own reading of the same servers, and the
//! standbys are gone after the run (finished or SIGTERM). Bad `[replica]`
//! values are refused naming the key, before anything starts.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;

/// A backfill in batches of 500 rows, each committed (many small steps of
/// lag instead of one jump), then an ALTER. Step 1 is the backfill.
const MIGRATION: &str = "\
-- lockimpact: transaction step
CREATE SEQUENCE backfill_batch;
-- lockimpact: backfill \"backfill by id\" pause=0ms
WITH batch AS (SELECT nextval('backfill_batch') AS k)
UPDATE orders SET total_cents = total_cents + 1 FROM batch
WHERE orders.id > (batch.k - 1) * 500 AND orders.id <= batch.k * 500;
ALTER TABLE orders ADD COLUMN billing_country text;
";

/// The sampler interval of these runs, and the test's own poll period.
const INTERVAL: Duration = Duration::from_millis(20);

/// One standby whose replay is held back by `recovery_min_apply_delay` (so
/// the lag is large and changes smoothly enough to compare two samplers of it).
const DELAYED: &str = "count = 1\nrecovery_min_apply_delay = \"300ms\"";

/// A small orders scenario whose `[replica]` section is `replica`.
fn scenario(dir: &Path, replica: &str) -> PathBuf {
    let ms = INTERVAL.as_millis();
    let extra = format!("[sampler]\ninterval = \"{ms}ms\"\n[replica]\ninterval = \"{ms}ms\"\n{replica}\n");
    let path = tiny_scenario(dir, MIGRATION, &extra);
    // 50 000 rows (the backfill puts the standby megabytes behind) and a 1 s cooldown.
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace("rows = 10000\n", "rows = 50000\n").replace("cooldown = \"500ms\"", "cooldown = \"1s\"");
    assert!(text.contains("rows = 50000") && text.contains("cooldown = \"1s\""), "{text}");
    std::fs::write(&path, text).unwrap();
    path
}

/// After `what`: the postmasters `pids` have exited, the server's directory
/// is gone and TMPDIR is empty.
fn assert_nothing_left(pids: [i32; 2], server_dir: &Path, tmp: &Path, what: &str) {
    for pid in pids {
        assert!(wait_gone(pid), "postmaster {pid} still running after {what}");
    }
    assert!(!server_dir.exists(), "{} left behind", server_dir.display());
    assert_eq!(std::fs::read_dir(tmp).unwrap().count(), 0, "TMPDIR not empty");
}

/// The primary's and the first standby's ports, from the `clone:` progress line.
pub(super) fn ports(line: &str) -> Option<(u16, u16)> {
    let rest = line.split_once("clone: local server binaries in ")?.1;
    let primary = rest.split_once(", port ")?.1.split(',').next()?.trim().parse().ok()?;
    let standby = rest.split_once("on port(s) ")?.1.split(',').next()?.trim().parse().ok()?;
    Some((primary, standby))
}

/// A run in progress with its own TMPDIR, its progress lines read on a thread.
struct Run {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: String,
}

impl Run {
    fn start(scenario: &Path, tmpdir: &Path, json: &Path) -> Run {
        let mut child = bin()
            .args(["run", scenario.to_str().unwrap(), "--backend", "local", "--json", json.to_str().unwrap()])
            .env("TMPDIR", tmpdir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Run { child, lines, seen: String::new() }
    }

    /// Reads progress lines until one contains `marker`; returns it.
    fn until(&mut self, marker: &str) -> String {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(120)) {
            self.seen.push_str(&line);
            self.seen.push('\n');
            if line.contains(marker) {
                return line;
            }
        }
        let _ = self.child.kill();
        panic!("never saw {marker:?}:\n{}", self.seen)
    }

    /// Waits for the end; the exit code and all of stderr.
    fn end(mut self) -> (Option<i32>, String) {
        let status = wait_within(&mut self.child, Duration::from_secs(120));
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        (status.and_then(|s| s.code()), self.seen)
    }
}

/// The standby's postmaster pid, from its data directory.
fn standby_pid(server_dir: &Path) -> i32 {
    let text = std::fs::read_to_string(server_dir.join("standby-1/data/postmaster.pid")).unwrap();
    text.lines().next().unwrap().trim().parse().unwrap()
}

/// What the test itself reads while the run goes on, every `INTERVAL`: the
/// primary's current LSN, then the standby's lag behind it (the tool's order).
#[derive(Default)]
struct Reading {
    /// (since the baseline began, lag bytes).
    lags: Vec<(Duration, u64)>,
}

async fn poll_lag(socket: PathBuf, (primary, standby): (u16, u16), stop: Arc<AtomicBool>, out: Arc<Mutex<Reading>>) {
    let connect = |port: u16| {
        let mut c = tokio_postgres::Config::new();
        c.host_path(&socket).port(port).user("postgres").dbname("postgres");
        async move {
            let (client, conn) = c.connect(tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            client
        }
    };
    let (p, s) = (connect(primary).await, connect(standby).await);
    let began = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let next = Instant::now() + INTERVAL;
        let Ok(row) = p.query_one("SELECT pg_current_wal_lsn()::text", &[]).await else { break };
        let lsn: String = row.get(0);
        let Ok(row) = s
            .query_one("SELECT greatest(pg_wal_lsn_diff($1::text::pg_lsn, pg_last_wal_replay_lsn()), 0)::int8", &[&lsn])
            .await
        else {
            break;
        };
        out.lock().unwrap().lags.push((began.elapsed(), row.get::<_, i64>(0) as u64));
        tokio::time::sleep_until(next.into()).await;
    }
}

/// The reported largest lag equals the largest lag the test read itself
/// within one sample interval's worth of lag change. Both sample the same
/// quantity (the primary's LSN, then the standby's replay LSN) every 20 ms,
/// at instants that differ: each catches the true peak within the largest
/// change of the lag over one interval, so their maxima differ by at most
/// that. The test measures that change itself: the largest difference
/// between two of its consecutive readings (≥ 20 ms apart, so the bound is
/// generous, never assumed). The standby's `recovery_min_apply_delay` (300
/// ms) holds replay back so the backfill's lag is megabytes, not a blip;
/// the peak is put on the backfill, which wrote most of the WAL behind.
#[test]
fn reported_lag_agrees_with_an_independent_reading_and_standbys_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let mut run = Run::start(&scenario(dir.path(), DELAYED), tmp.path(), &json);
    let server = run.until("server: directory ");
    let (server_dir, primary_pid) = server_location(&server);
    let ports = ports(&run.until("clone: local server binaries")).expect("a clone line with the standby's port");
    let standby = standby_pid(&server_dir);
    run.until("lockimpact: baseline");
    let (stop, reading) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Reading::default())));
    let poller = {
        let (socket, stop, reading) = (server_dir.clone(), stop.clone(), reading.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(poll_lag(socket, ports, stop, reading));
        })
    };
    run.until("after the migration");
    stop.store(true, Ordering::Relaxed);
    poller.join().unwrap();
    let (code, stderr) = run.end();
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}:\n{stderr}");

    let report = report(&json);
    let s = &report["replicas"]["standbys"][0];
    let reported = s["max_lag_bytes"].as_u64().expect("max_lag_bytes");
    let lags = &reading.lock().unwrap().lags;
    let own = lags.iter().map(|(_, l)| *l).max().unwrap();
    let step_change = lags.windows(2).map(|w| w[1].1.abs_diff(w[0].1)).max().unwrap();
    eprintln!(
        "reported max lag {reported} B at {} ms (step {}, most of it step {}'s WAL), own reading {own} B over {} \
         polls, largest change between two readings {step_change} B",
        s["max_lag_at_ms"],
        s["max_lag_step"],
        s["max_lag_wal_step"],
        lags.len()
    );
    assert!(own > 1_000_000, "the backfill should put the standby megabytes behind; read {own} B");
    assert!(reported.abs_diff(own) <= step_change, "reported {reported} B vs read {own} B, tolerance {step_change} B");
    // The peak may come just after the backfill, while the standby still
    // replays it (seen in CI: step 3 was running): it is the backfill's WAL.
    assert_eq!(s["max_lag_wal_step"], 1, "the largest lag is mostly the backfill's WAL: {s}");
    let running = s["max_lag_step"].as_u64();
    assert!(matches!(running, Some(1 | 2)) || s["max_lag_phase"] == "after", "peak while: {s}");
    assert!(s["samples"].as_u64().unwrap() > 50, "{s}");
    assert!(s["max_replay_lag_ms"].as_f64().unwrap() >= 250.0, "apply delay 300 ms: {s}");

    assert_nothing_left([standby, primary_pid], &server_dir, tmp.path(), "the run");
}

/// SIGTERM in the baseline: the partial report, and neither the primary nor
/// its standby nor any file left.
#[test]
fn sigterm_removes_the_standbys_too() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let mut run = Run::start(&scenario(dir.path(), DELAYED), tmp.path(), &json);
    let (server_dir, primary_pid) = server_location(&run.until("server: directory "));
    run.until("clone: local server binaries");
    let standby = standby_pid(&server_dir);
    run.until("lockimpact: baseline");
    unsafe { libc::kill(run.child.id() as i32, libc::SIGTERM) };
    let (code, stderr) = run.end();
    assert!(code.is_some(), "the run hung:\n{stderr}");
    assert_nothing_left([standby, primary_pid], &server_dir, tmp.path(), "SIGTERM");
}

/// Refused before anything starts (exit 2), naming the key.
#[test]
fn bad_replica_settings_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&str], &str)] = &[
        ("count = 9", &[], "replica.count = 9"),
        ("count = \"two\"", &[], "replica.count"),
        ("count = 1\nmax_standby_streaming_delay = 5", &[], "replica.max_standby_streaming_delay"),
        ("count = 1\nmax_standby_streaming_delay = \"soon\"", &[], "replica.max_standby_streaming_delay"),
        ("count = 1\nrecovery_min_apply_delay = \"-1s\"", &[], "recovery_min_apply_delay"),
        ("count = 1\nfeedback = true", &[], "feedback"),
        ("count = 1", &["--replicas", "7"], "--replicas = 7"),
        ("count = 1", &["--url", "postgresql://localhost/x", "--allow-existing-server"], "url backend"),
        (
            "recovery_min_apply_delay = \"1s\"",
            &[],
            "replica.recovery_min_apply_delay is set, but the clone gets no standby",
        ),
    ];
    for (replica, args, expected) in cases {
        let path = scenario(dir.path(), replica);
        let out = bin().arg("run").arg(&path).args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{replica} {args:?}: {stderr}");
        assert!(stderr.contains(expected), "{replica} {args:?}: expected {expected:?} in:\n{stderr}");
    }
}

/// An ALTER that keeps its AccessExclusiveLock for 2 s (one transaction):
/// the standby replays the lock when the ALTER's WAL arrives and holds it
/// until the commit's.
const HELD_ALTER: &str = "ALTER TABLE orders ADD COLUMN billing_country text;\nSELECT pg_sleep(2);\n";

/// Connects to the run database on the standby (its socket in `server_dir`).
async fn standby_client(server_dir: &Path, port: u16) -> tokio_postgres::Client {
    let mut c = tokio_postgres::Config::new();
    c.host_path(server_dir).port(port).user("postgres").dbname("lockimpact_run");
    let (client, conn) = c.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// Starts a run of `HELD_ALTER` with `[replica]` = `replica` and `extra`
/// TOML; once its baseline began, runs `on_standby` (on the standby's run
/// database, in a thread) until the run ends; returns the report and what
/// `on_standby` returned.
fn with_standby_reader<T: Send + 'static>(
    replica: &str,
    extra: &str,
    on_standby: impl FnOnce(PathBuf, u16) -> T + Send + 'static,
) -> (serde_json::Value, T, Option<i32>) {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let path = scenario(dir.path(), &format!("{replica}\n{extra}"));
    std::fs::write(dir.path().join("migration.sql"), HELD_ALTER).unwrap();
    let mut run = Run::start(&path, tmp.path(), &json);
    let (server_dir, _) = server_location(&run.until("server: directory "));
    let (_, port) = ports(&run.until("clone: local server binaries")).expect("the standby's port");
    run.until("lockimpact: baseline");
    let reader = std::thread::spawn(move || on_standby(server_dir, port));
    let (code, stderr) = run.end();
    let out = reader.join().unwrap();
    assert!(code.is_some(), "the run hung:\n{stderr}");
    (report(&json), out, code)
}

/// With `max_standby_streaming_delay = -1` a standby read of `orders` waits
/// while the replayed AccessExclusiveLock is held: the report counts the
/// blocked standby session, and its longest wait agrees with how long the
/// test's own read took (within two sample intervals and the read itself);
/// `budget.max_standby_blocked = "500ms"` fails the verdict with that wait.
#[test]
fn a_replayed_lock_blocks_a_standby_read() {
    let budget = "[budget]\nmax_standby_blocked = \"500ms\"\n";
    let (report, longest_read, code) =
        with_standby_reader("count = 1\nmax_standby_streaming_delay = -1", budget, |dir, port| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let c = standby_client(&dir, port).await;
                let mut longest = Duration::ZERO;
                let deadline = Instant::now() + Duration::from_secs(8);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    if c.query_one("SELECT count(*) FROM orders", &[]).await.is_err() {
                        break;
                    }
                    longest = longest.max(t.elapsed());
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                longest
            })
        });
    let s = &report["replicas"]["standbys"][0];
    eprintln!("standby: {s}\nthe test's longest read on the standby: {longest_read:?}");
    assert!(longest_read > Duration::from_millis(1000), "the read should wait for the replayed lock: {longest_read:?}");
    assert!(s["blocked_sessions"].as_u64().unwrap() >= 1, "{s}");
    let reported = Duration::from_secs_f64(s["longest_blocked_ms"].as_f64().unwrap() / 1000.0);
    let slack = INTERVAL * 2 + Duration::from_millis(200);
    assert!(
        reported <= longest_read && longest_read <= reported + slack,
        "reported longest wait {reported:?}, the read took {longest_read:?}"
    );
    assert_eq!(s["cancels"], 0, "replay waits forever: nothing cancelled: {s}");
    assert_eq!(code, Some(1), "the wait exceeds max_standby_blocked");
    let violations = report["verdict"]["violations"].as_array().unwrap();
    let v = violations.iter().find(|v| v["budget"] == "max_standby_blocked").expect("a max_standby_blocked violation");
    assert_eq!(v["actual"], s["longest_blocked_ms"], "{v}");
}

/// With a short `max_standby_streaming_delay`, replay cancels a standby
/// query that holds a lock the replayed AccessExclusiveLock conflicts with:
/// the test's query fails with SQLSTATE 40001, the report counts the
/// conflict, and `budget.max_standby_cancels = 0` fails the verdict.
/// `hot_standby_feedback` keeps the workload's row cleanup from cancelling
/// the query first (a snapshot conflict, seen without it), so the conflict
/// counted is the lock's.
#[test]
fn a_short_streaming_delay_cancels_a_standby_query() {
    let (report, sqlstate, code) = with_standby_reader(
        "count = 1\nmax_standby_streaming_delay = \"100ms\"\nhot_standby_feedback = true",
        "[budget]\nmax_standby_cancels = 0\n",
        |dir, port| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let c = standby_client(&dir, port).await;
                let sql = "BEGIN; SELECT count(*) FROM orders; SELECT pg_sleep(15); COMMIT";
                c.batch_execute(sql).await.err().and_then(|e| e.code().map(|c| c.code().to_string()))
            })
        },
    );
    let s = &report["replicas"]["standbys"][0];
    eprintln!("standby: {s}\nthe test's query ended with {sqlstate:?}");
    assert_eq!(sqlstate.as_deref(), Some("40001"), "the standby query is cancelled by the conflict");
    assert!(s["cancels"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["conflicts"]["lock"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(code, Some(1), "the budget of 0 cancels fails the verdict");
    let violations = report["verdict"]["violations"].as_array().unwrap();
    assert!(violations.iter().any(|v| v["budget"] == "max_standby_cancels"), "{violations:?}");
}

/// A workload class with `target = "replica"` reads `orders` on the
/// standby while the primary's ALTER holds its AccessExclusiveLock (replay
/// waits forever, `max_standby_streaming_delay = -1`): its reads wait for
/// the replayed lock, which the report shows both as blocked standby
/// sessions and in the class's own latency during the migration. The
/// primary's class reads `customers`, which the ALTER does not lock: the
/// workload's connections are shared by both classes, and primary reads
/// blocked on `orders` would hold the standby reads back in the queue.
#[test]
fn a_replica_class_runs_on_the_standby_and_waits_for_a_replayed_lock() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let path = scenario(dir.path(), "count = 1\nmax_standby_streaming_delay = -1");
    use_workload(&path, &format!("{STANDBY_READ}{CUSTOMER_READ}"));
    std::fs::write(dir.path().join("migration.sql"), HELD_ALTER).unwrap();
    let (code, stderr) = Run::start(&path, tmp.path(), &json).end();
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}:\n{stderr}");
    let report = report(&json);
    let s = &report["replicas"]["standbys"][0];
    let class = &report["latency"]["standby_read"];
    eprintln!("standby: {s}\nstandby_read latency: {class}");
    assert!(class["baseline"]["count"].as_u64().unwrap() > 0, "the class ran: {class}");
    assert!(s["blocked_sessions"].as_u64().unwrap() >= 1, "{s}");
    let longest = s["longest_blocked_ms"].as_f64().unwrap();
    assert!(longest > 1000.0, "the replayed lock is held about 2 s: {s}");
    assert!(class["during"]["max_ms"].as_f64().unwrap() >= longest, "{class}");
    assert!(class["baseline"]["max_ms"].as_f64().unwrap() < 500.0, "{class}");
}

/// A pgbench script class with `target = "replica"` runs its statements on
/// the standby: its reads of `orders` wait for the replayed lock of the
/// held ALTER, seen as blocked standby sessions and in the script's latency
/// during the migration.
#[test]
fn a_replica_script_class_runs_on_the_standby_and_waits_for_a_replayed_lock() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let path = scenario(dir.path(), "count = 1\nmax_standby_streaming_delay = -1");
    let script = "[[class]]\nname = \"standby_script\"\nweight = 1\ntarget = \"replica\"\nscript_text = '''\n\
\\set cid random(1, 1000)\nSELECT count(*) FROM orders WHERE customer_id = :cid;\nSELECT 1;\n'''\n";
    use_workload(&path, &format!("{script}{CUSTOMER_READ}"));
    std::fs::write(dir.path().join("migration.sql"), HELD_ALTER).unwrap();
    let (code, stderr) = Run::start(&path, tmp.path(), &json).end();
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}:\n{stderr}");
    let report = report(&json);
    let s = &report["replicas"]["standbys"][0];
    let class = &report["latency"]["standby_script"];
    eprintln!("standby: {s}\nstandby_script latency: {class}");
    assert!(class["baseline"]["count"].as_u64().unwrap() > 0, "the script ran: {class}");
    assert_eq!(class["baseline"]["errors"].as_u64().unwrap_or(0), 0, "{class}");
    assert!(s["blocked_sessions"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["longest_blocked_ms"].as_f64().unwrap() > 1000.0, "the replayed lock is held about 2 s: {s}");
    assert!(class["during"]["max_ms"].as_f64().unwrap() > 1000.0, "{class}");
    assert!(class["baseline"]["max_ms"].as_f64().unwrap() < 500.0, "{class}");
}

/// A `hold` class with `target = "replica"` keeps a transaction open on the
/// standby after reading `orders` (a long report on a read replica): with a
/// short `max_standby_streaming_delay`, replay of the ALTER's lock ends it,
/// so the standby counts a lock conflict, the class fails during the
/// migration (its session is cancelled or terminated), and
/// `budget.max_standby_cancels = 0` fails the verdict.
#[test]
fn a_replica_hold_class_is_cancelled_by_a_replayed_lock() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let replica = "count = 1\nmax_standby_streaming_delay = \"100ms\"\nhot_standby_feedback = true";
    let path = scenario(dir.path(), replica);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("[replica]", "[budget]\nmax_standby_cancels = 0\n[replica]")).unwrap();
    let hold = "[[class]]\nname = \"standby_report\"\nrate = 3\nhold = \"1500ms\"\ntarget = \"replica\"\n\
sql = \"SELECT count(*) FROM orders WHERE id <= 1000\"\n";
    use_workload(&path, &format!("{hold}{CUSTOMER_READ}"));
    std::fs::write(dir.path().join("migration.sql"), HELD_ALTER).unwrap();
    let (code, stderr) = Run::start(&path, tmp.path(), &json).end();
    let report = report(&json);
    let s = &report["replicas"]["standbys"][0];
    eprintln!("standby: {s}\nerrors: {}", report["workload"]["error_detail"]);
    assert_eq!(code, Some(1), "the cancel exceeds max_standby_cancels = 0:\n{stderr}");
    assert!(report["latency"]["standby_report"]["baseline"]["count"].as_u64().unwrap() > 0, "the class ran");
    assert!(s["conflicts"]["lock"].as_u64().unwrap() >= 1, "{s}");
    let errors = report["workload"]["error_detail"].as_array().unwrap();
    assert!(errors.iter().any(|e| e["class"] == "standby_report"), "the held transaction was ended: {errors:?}");
    let violations = report["verdict"]["violations"].as_array().unwrap();
    assert!(violations.iter().any(|v| v["budget"] == "max_standby_cancels"), "{violations:?}");
}

/// `kill -9` of a run leaves its primary and standby running; `lockimpact
/// clean` stops both (the standby first) and removes their directory.
#[test]
fn clean_stops_a_killed_runs_standby() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let mut run = Run::start(&scenario(dir.path(), DELAYED), tmp.path(), &json);
    let (server_dir, primary_pid) = server_location(&run.until("server: directory "));
    run.until("clone: local server binaries");
    let standby = standby_pid(&server_dir);
    run.until("lockimpact: baseline");
    unsafe { libc::kill(run.child.id() as i32, libc::SIGKILL) };
    let _ = run.child.wait();
    let survived = process_alive(standby) && process_alive(primary_pid);
    let out = bin().arg("clean").env("TMPDIR", tmp.path()).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let gone = wait_gone(standby) && wait_gone(primary_pid);
    assert!(survived, "kill -9 should leave both servers running");
    assert!(out.status.success(), "{text}");
    assert!(gone, "a postmaster survived clean:\n{text}");
    assert!(!server_dir.exists(), "{} left behind:\n{text}", server_dir.display());
}

/// `synchronous = true`: the primary names the standby in
/// `synchronous_standby_names` and `pg_stat_replication` shows it `sync`
/// while the run goes on; the run completes (commits are acknowledged), and
/// the standby, not slowed on purpose, keeps within
/// `budget.max_sync_commit_added = "1s"`.
#[test]
fn a_synchronous_standby_is_sync_on_the_primary() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let path = scenario(dir.path(), "count = 1\nsynchronous = true");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("[replica]", "[budget]\nmax_sync_commit_added = \"1s\"\n[replica]")).unwrap();
    let mut run = Run::start(&path, tmp.path(), &json);
    let (server_dir, _) = server_location(&run.until("server: directory "));
    let (primary, _) = ports(&run.until("clone: local server binaries")).expect("ports");
    run.until("lockimpact: baseline");
    let psql = lockimpact::clone::local::find_binaries(None, None).unwrap().dir.join("psql");
    let state = std::process::Command::new(psql)
        .args(["-X", "-At", "-h"])
        .arg(&server_dir)
        .args(["-p", &primary.to_string(), "-U", "postgres", "-d", "postgres", "-c"])
        .arg("SELECT application_name || ' ' || sync_state FROM pg_stat_replication")
        .output()
        .unwrap();
    let (code, stderr) = run.end();
    let state = String::from_utf8_lossy(&state.stdout).trim().to_string();
    assert_eq!(state, "lockimpact_standby_1 sync", "{stderr}");
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}:\n{stderr}");
    let report = report(&json);
    assert!(report["replicas"]["standbys"][0]["samples"].as_u64().unwrap() > 50, "{}", report["replicas"]);
    let sync = &report["replicas"]["standbys"][0]["sync_commit"];
    eprintln!("max_added_ms: {}", sync["max_added_ms"]);
    assert!(sync["max_added_ms"].as_f64().unwrap() < 1000.0, "{sync}");
    let limits = report["budget"]["limits"].as_array().unwrap();
    assert!(limits.iter().any(|l| l["budget"] == "max_sync_commit_added" && l["limit"] == 1000.0), "{limits:?}");
    let violations = report["verdict"]["violations"].as_array().unwrap();
    assert!(!violations.iter().any(|v| v["budget"] == "max_sync_commit_added"), "{violations:?}");
}

/// The shipped billing_country migrations compared on the same data and
/// load with one standby (`lockimpact compare --replicas 1`, 100 000 rows):
/// the one-shot backfill (one UPDATE of every row, in the migration's one
/// transaction) puts the standby further behind than the phased one
/// (batches of 20 000 rows, each committed, 50 ms apart). Each peak is in
/// its backfill step; the comparison carries both peaks in its totals,
/// its summary and the HTML's lag charts. No replay delay is set: on the
/// machine measured (docs/replicas.md) the one-shot's peak was 2.5 to 8.2
/// times the phased one's.
#[test]
fn the_one_shot_billing_country_backfill_lags_the_standby_more_than_the_phased_one() {
    let dir = tempfile::tempdir().unwrap();
    let (json, html) = (dir.path().join("c.json"), dir.path().join("c.html"));
    let out = bin()
        .args([
            "compare",
            "scenarios/orders-billing-country-oneshot.toml",
            "scenarios/orders-billing-country-phased.toml",
        ])
        .args(["--replicas", "1", "--backend", "local", "--set", "vars.rows=100000", "--set", "phases.baseline=2s"])
        .args(["--json", json.to_str().unwrap(), "--out", html.to_str().unwrap(), "-q"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "exit {:?}:\n{stderr}", out.status.code());
    let c = report(&json);
    let standby = |i: usize| c["candidates"][i]["report"]["replicas"]["standbys"][0].clone();
    let peak = |i: usize| standby(i)["max_lag_bytes"].as_u64().expect("max_lag_bytes");
    // The step the peak fell in, or the phase when the standby was still
    // catching up after the migration's last step (seen on a loaded machine).
    let at = |i: usize| match standby(i)["max_lag_step"].as_u64() {
        Some(step) => c["candidates"][i]["report"]["steps"][step as usize]["name"].as_str().unwrap().to_string(),
        None => format!("phase {}", standby(i)["max_lag_phase"]),
    };
    let steps = |i: usize| -> Vec<String> {
        let steps = c["candidates"][i]["report"]["steps"].as_array().unwrap();
        steps.iter().map(|s| s["name"].as_str().unwrap().to_string()).collect()
    };
    eprintln!("peak lag: one-shot {} B in {:?}, phased {} B in {:?}", peak(0), at(0), peak(1), at(1));
    assert!(peak(0) > peak(1), "one-shot {} B vs phased {} B", peak(0), peak(1));
    // In the backfill step, a later one, or the after phase: not before the backfill.
    for (i, backfill) in [(0, "UPDATE orders SET billing_country"), (1, "backfill by id")] {
        let names = steps(i);
        let from = names.iter().position(|n| n.starts_with(backfill)).expect("the backfill step");
        let later = names[from..].contains(&at(i)) || at(i) == "phase \"after\"";
        assert!(later, "candidate {i}: peak in {:?}, before the backfill ({names:?})", at(i));
    }
    for i in 0..2 {
        assert_eq!(c["candidates"][i]["totals"]["replicas"]["max_lag_bytes"].as_u64(), Some(peak(i)));
    }
    assert!(c["summary"].as_str().unwrap().contains("On the standbys, B lagged at most"), "{}", c["summary"]);
    let html = std::fs::read_to_string(&html).unwrap();
    assert_eq!(
        html.matches("<title>Replay lag of standby lockimpact_standby_1").count(),
        2,
        "a lag chart per candidate"
    );
}
