//! Helpers shared by the integration tests: run the real `lockimpact` binary
//! (which starts its own disposable PostgreSQL), write small scenarios into a
//! temporary directory, and read the JSON report.

#![allow(dead_code)] // `it` and `env` each use a subset

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The repository root (scenarios, workloads).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lockimpact"));
    c.current_dir(repo());
    c
}

/// Overrides that shrink a shipped scenario to a few seconds.
pub const SMALL: &[&str] = &[
    "--set",
    "vars.rows=100000",
    "--set",
    "phases.warmup=1s",
    "--set",
    "phases.baseline=2s",
    "--set",
    "phases.cooldown=1s",
];

pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The `--json` report, when one was written.
    pub report: Option<Value>,
}

impl Outcome {
    pub fn report(&self) -> &Value {
        self.report.as_ref().unwrap_or_else(|| panic!("no JSON report; exit {}\nstderr:\n{}", self.code, self.stderr))
    }
}

/// `lockimpact run ARGS --json <tmp>`.
pub fn run(args: &[&str]) -> Outcome {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("report.json");
    let out = bin().arg("run").args(args).arg("--json").arg(&json).output().expect("run lockimpact");
    let report = std::fs::read_to_string(&json).ok().map(|t| serde_json::from_str(&t).expect("the JSON report parses"));
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report,
    }
}

/// Replaces `from` with `to` in the file at `path` (a scenario made bad).
pub fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} lacks {from:?}", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

/// `lockimpact run SCENARIO`, which must exit 2 saying `says` on stderr.
pub fn assert_refused(scenario: &Path, says: &str) -> Outcome {
    let o = run(&[scenario.to_str().unwrap()]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains(says), "{says:?} not in: {}", o.stderr);
    o
}

/// Writes a tiny scenario on the orders dataset (10 000 rows, short phases)
/// with the given migration, into `dir`; `extra` is appended to the TOML.
pub fn tiny_scenario(dir: &Path, migration_sql: &str, extra: &str) -> PathBuf {
    let seed = repo().join("workloads/orders/seed.sql");
    orders_scenario(dir, "tiny", &format!("seed = \"{}\"", seed.display()), migration_sql, extra)
}

/// A small scenario on the orders workload: `snapshot` is the body of its
/// `[snapshot]` section.
fn orders_scenario(dir: &Path, name: &str, snapshot: &str, migration_sql: &str, extra: &str) -> PathBuf {
    std::fs::write(dir.join("migration.sql"), migration_sql).unwrap();
    let toml = format!(
        r#"name = "{name}"
[vars]
rows = 10000
customers = 1000
[snapshot]
{snapshot}
[workload]
file = "{workload}"
rate = 100
connections = 4
[phases]
warmup = "200ms"
baseline = "1s"
cooldown = "500ms"
[migration]
file = "migration.sql"
{extra}
"#,
        workload = repo().join("workloads/orders/workload.toml").display(),
    );
    let path = dir.join("scenario.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// Starts `lockimpact run SCENARIO ARGS` with a long baseline (TMPDIR set to
/// `tmpdir`) and returns it once the baseline has begun, with its progress
/// lines so far; the rest of its stderr is drained.
pub fn run_in_baseline(scenario: &Path, args: &[&str], tmpdir: &Path) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = bin()
        .args(["run", scenario.to_str().unwrap(), "--set", "phases.baseline=120s"])
        .args(args)
        .env("TMPDIR", tmpdir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("baseline") {
            break;
        }
    }
    assert!(seen.contains("baseline"), "the run never reached its baseline:\n{seen}");
    std::thread::spawn(move || lines.for_each(drop));
    (child, seen)
}

/// A scenario for the url backend, without [snapshot] (the database at the
/// URL is the dataset), running `migration_sql` under the orders workload.
pub fn url_scenario(dir: &Path, migration_sql: &str) -> PathBuf {
    let w = repo().join("workloads/orders/workload.toml");
    std::fs::write(dir.join("migration.sql"), migration_sql).unwrap();
    let path = dir.join("scenario.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"on-a-clone\"\n[vars]\nrows = 5000\ncustomers = 500\n[workload]\nfile = \"{}\"\nrate = 50\n\
             connections = 4\n[phases]\nwarmup = \"200ms\"\nbaseline = \"700ms\"\ncooldown = \"300ms\"\n\
             [migration]\nfile = \"migration.sql\"\n",
            w.display()
        ),
    )
    .unwrap();
    path
}

/// The orders dataset's seed script for `rows` orders and `customers` customers.
pub fn orders_seed(rows: u32, customers: u32) -> String {
    std::fs::read_to_string(repo().join("workloads/orders/seed.sql"))
        .unwrap()
        .replace("{{rows}}", &rows.to_string())
        .replace("{{customers}}", &customers.to_string())
}

/// The `server: directory D, postmaster pid P` progress line.
pub fn server_location(stderr: &str) -> (PathBuf, i32) {
    let line = stderr.lines().find_map(|l| l.strip_prefix("lockimpact: server: directory ")).expect("a server line");
    let (dir, pid) = line.split_once(", postmaster pid ").expect("dir and pid");
    (PathBuf::from(dir), pid.trim().parse().unwrap())
}

/// Waits up to 15 s for `pid` to exit; true when it did.
pub fn wait_gone(pid: i32) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        if !process_alive(pid) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

pub fn process_alive(pid: i32) -> bool {
    // /proc/PID exists for a live process (and a zombie, which the postmaster,
    // pg_ctl's child, never is for us).
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The test image the docker-backend tests run on (built by
/// scripts/build-test-image; no registry needed).
pub const TEST_IMAGE: &str = "lockimpact-test/postgres:15";

/// Builds the test image when it is missing (serialised with flock: test
/// processes run in parallel).
pub fn ensure_test_image() {
    let present =
        Command::new("docker").args(["image", "inspect", TEST_IMAGE]).output().is_ok_and(|o| o.status.success());
    if !present {
        let status = Command::new("flock")
            .args(["/tmp/build-test-image.lock", "bash"])
            .arg(repo().join("scripts/build-test-image"))
            .status()
            .expect("run scripts/build-test-image");
        assert!(status.success(), "scripts/build-test-image failed");
    }
}

/// Containers this tool started from the lockimpact process `pid` (by label).
pub fn containers_of(pid: u32) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-a", "-q", "--filter", &format!("label=lockimpact.pid={pid}")])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// Every Docker volume name.
pub fn volumes() -> Vec<String> {
    let out = Command::new("docker").args(["volume", "ls", "-q"]).output().expect("docker volume ls");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// A scenario on the orders workload whose dataset is the pg_dump `dump`.
pub fn dump_scenario(dir: &Path, dump: &Path, migration_sql: &str, extra: &str) -> PathBuf {
    let snapshot = format!("dump = \"{}\"\njobs = 2", dump.display());
    orders_scenario(dir, "from-dump", &snapshot, migration_sql, &format!("transaction = \"step\"\n{extra}"))
}

/// A small orders scenario whose dataset is generated from the statistics
/// file `stats` at `scale` (`[snapshot] synthetic`).
pub fn synthetic_scenario(dir: &Path, stats: &Path, scale: f64, migration_sql: &str) -> PathBuf {
    let snapshot = format!("synthetic = \"{}\"\nscale = {scale}", stats.display());
    orders_scenario(dir, "synthetic", &snapshot, migration_sql, "")
}

/// A generated dataset for pg_dump: the orders dataset (10 000 orders, a
/// foreign key, an index, a bigserial sequence) plus a table with its own
/// sequence and a foreign key, a trigram index (pg_trgm), a view, a table
/// partitioned by range (2 000 rows in two partitions), and an owner and a
/// grant of a role that the clone will not have.
pub const DUMP_EXTRAS: &str = "
CREATE TABLE audit_log (id bigint NOT NULL, at date NOT NULL, note text) PARTITION BY RANGE (at);
CREATE TABLE audit_log_2025 PARTITION OF audit_log FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE audit_log_2026 PARTITION OF audit_log FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO audit_log SELECT g, date '2025-01-01' + (g % 700), 'n' || g FROM generate_series(1, 2000) g;
CREATE EXTENSION pg_trgm;
CREATE SEQUENCE invoice_no START 1000;
CREATE TABLE invoices (
    id bigint PRIMARY KEY DEFAULT nextval('invoice_no'),
    order_id bigint NOT NULL REFERENCES orders (id),
    amount_cents integer NOT NULL
);
INSERT INTO invoices (order_id, amount_cents) SELECT id, total_cents FROM orders WHERE id % 10 = 0;
CREATE INDEX invoices_order_idx ON invoices (order_id);
CREATE INDEX customers_name_trgm ON customers USING gin (name gin_trgm_ops);
CREATE VIEW paid_orders AS SELECT * FROM orders WHERE status = 'paid';
CREATE ROLE lockimpact_dump_owner;
ALTER TABLE invoices OWNER TO lockimpact_dump_owner;
GRANT SELECT ON paid_orders TO lockimpact_dump_owner;
";

/// A migration that needs what the dump restored: the sequence and foreign
/// key of `invoices`, and the view.
pub const DUMP_MIGRATION: &str = "INSERT INTO invoices (order_id, amount_cents) VALUES (10, 1);\n\
ALTER VIEW paid_orders RENAME TO paid_orders_v2;\n";

/// Builds the dataset on a disposable local server and writes it with pg_dump
/// in each of `formats` (`c`, `d`, `t`, `p`) to `dir/dump.<format>`.
pub fn make_dumps(dir: &Path, formats: &[&str]) -> Vec<PathBuf> {
    use lockimpact::clone::ClonePlan;
    use lockimpact::clone::{self, restore::Tools};
    let seed = std::fs::read_to_string(repo().join("workloads/orders/seed.sql"))
        .unwrap()
        .replace("{{rows}}", "10000")
        .replace("{{customers}}", "1000");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let plan = ClonePlan::local();
        let server = clone::start(&plan, &|_| {}).expect("a local server for the source dataset");
        let (admin, conn) = server.config("postgres").connect(tokio_postgres::NoTls).await.unwrap();
        let task = tokio::spawn(conn);
        admin.batch_execute("CREATE DATABASE source").await.unwrap();
        drop(admin);
        let _ = task.await;
        let (db, conn) = server.config("source").connect(tokio_postgres::NoTls).await.unwrap();
        let task = tokio::spawn(conn);
        db.batch_execute(&seed).await.unwrap();
        db.batch_execute(DUMP_EXTRAS).await.unwrap();
        drop(db);
        let _ = task.await;
        let Some(Tools::Local { bin_dir, socket_dir, port, .. }) = server.tools() else { panic!("a local server") };
        formats
            .iter()
            .map(|f| {
                let out = dir.join(format!("dump.{f}"));
                let status = Command::new(bin_dir.join("pg_dump"))
                    .arg("-h")
                    .arg(&socket_dir)
                    .args(["-p", &port.to_string(), "-U", "postgres", "-d", "source", &format!("-F{f}"), "-f"])
                    .arg(&out)
                    .status()
                    .unwrap();
                assert!(status.success(), "pg_dump -F{f}");
                out
            })
            .collect()
    })
}

/// A local source server (as a production stand-in) with the given server
/// settings, e.g. `shared_preload_libraries`; stopped when dropped.
pub fn source_server(settings: &[(&str, &str)]) -> lockimpact::clone::Server {
    let plan = lockimpact::clone::ClonePlan {
        settings: settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..lockimpact::clone::ClonePlan::local()
    };
    lockimpact::clone::start(&plan, &|_| {}).expect("a local source server")
}

/// A libpq URL of `db` on a local server, with `password` in it (trust
/// authentication ignores it; tests check it is never printed).
pub fn source_url(server: &lockimpact::clone::Server, db: &str, password: &str) -> String {
    let Some(lockimpact::clone::restore::Tools::Local { socket_dir, port, .. }) = server.tools() else {
        panic!("local")
    };
    format!("postgresql://postgres:{password}@/{db}?host={}&port={port}", socket_dir.display())
}

/// Connects to `db` on `server`; the connection task runs on the current runtime.
pub async fn client(server: &lockimpact::clone::Server, db: &str) -> tokio_postgres::Client {
    let (c, conn) = server.config(db).connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    c
}

/// Per-class operation counts of a report (baseline + during + after).
pub fn class_counts(report: &Value) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    for (class, phases) in report["latency"].as_object().expect("latency") {
        let n = ["baseline", "during", "after"].iter().map(|p| phases[*p]["count"].as_u64().unwrap_or(0)).sum();
        out.insert(class.clone(), n);
    }
    out
}

/// Shares of the total, per key.
pub fn shares(counts: &std::collections::BTreeMap<String, f64>) -> std::collections::BTreeMap<String, f64> {
    let total: f64 = counts.values().sum();
    counts.iter().map(|(k, v)| (k.clone(), v / total)).collect()
}

/// Runs a client tool of `server`'s own version (pgbench, pg_dump, psql) with
/// the connection arguments for `db` first; panics with its output on failure.
pub fn server_tool(server: &lockimpact::clone::Server, tool: &str, db: &str, args: &[&str]) -> String {
    let Some(lockimpact::clone::restore::Tools::Local { bin_dir, socket_dir, port, .. }) = server.tools() else {
        panic!("local")
    };
    let out = Command::new(bin_dir.join(tool))
        .arg("-h")
        .arg(&socket_dir)
        .args(["-p", &port.to_string(), "-U", "postgres"])
        .args(args)
        .arg(db)
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{tool} {args:?} failed:\n{text}");
    text
}

/// (name, transaction, steps) of each group (migration file) of a JSON report.
pub fn groups(r: &Value) -> Vec<(String, String, u64)> {
    r["migration"]["groups"]
        .as_array()
        .unwrap_or_else(|| panic!("no groups in {r}"))
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().into(),
                g["transaction"].as_str().unwrap().into(),
                g["steps"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// One row of `groups`.
pub fn group(name: &str, transaction: &str, steps: u64) -> (String, String, u64) {
    (name.to_string(), transaction.to_string(), steps)
}

/// Longer than any of these runs takes; reaching it means the run hangs.
pub const HANG: Duration = Duration::from_secs(150);

/// Waits for `child` up to `limit`; a child still running then is killed (by
/// its pid) and `None` returned: the run hung.
pub fn wait_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A lockimpact run in progress, its stderr read line by line.
pub struct Running {
    pub child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStderr>>,
    seen: String,
}

impl Running {
    pub fn start(args: &[&str]) -> Running {
        let mut child = bin().args(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        Running { child, lines, seen: String::new() }
    }

    /// Reads progress lines until one contains `marker`.
    pub fn until(&mut self, marker: &str) -> &str {
        for line in self.lines.by_ref() {
            let line = line.unwrap();
            self.seen.push_str(&line);
            self.seen.push('\n');
            if line.contains(marker) {
                return &self.seen;
            }
        }
        panic!("never saw {marker:?}:\n{}", self.seen)
    }

    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for the end (at most `HANG`: a run still going then is killed,
    /// its code is `None` and stderr says so, so that the caller cleans up
    /// before it asserts); returns the exit code and all of stderr.
    pub fn end(mut self) -> (Option<i32>, String) {
        let reader = std::thread::spawn(move || {
            let mut rest = String::new();
            for line in self.lines.map_while(Result::ok) {
                rest.push_str(&line);
                rest.push('\n');
            }
            rest
        });
        let status = wait_within(&mut self.child, HANG);
        let rest = reader.join().unwrap();
        let mut stderr = format!("{}{rest}", self.seen);
        if status.is_none() {
            stderr.push_str(&format!("(the run hung: still running after {} s, killed)\n", HANG.as_secs()));
        }
        (status.and_then(|s| s.code()), stderr)
    }
}

pub fn report(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("no report at {}: {e}", path.display()));
    serde_json::from_str(&text).expect("the report parses")
}

/// A `target = "replica"` class reading `orders` on the standby.
pub const STANDBY_READ: &str = "[[class]]\nname = \"standby_read\"\nweight = 1\ntarget = \"replica\"\n\
sql = \"SELECT count(*) FROM orders WHERE customer_id = $1\"\n\
params = [{ type = \"int\", min = 1, max = 1000 }]\n";

/// A primary class reading `customers` (which a migration on `orders` does not lock).
pub const CUSTOMER_READ: &str = "[[class]]\nname = \"customer_by_id\"\nweight = 1\n\
sql = \"SELECT name FROM customers WHERE id = $1\"\n\
params = [{ type = \"int\", min = 1, max = 1000 }]\n";

/// Points `scenario`'s workload (the orders one) at a `standby.toml` beside
/// it holding `classes`.
pub fn use_workload(scenario: &Path, classes: &str) {
    std::fs::write(scenario.with_file_name("standby.toml"), classes).unwrap();
    let workload = repo().join("workloads/orders/workload.toml").display().to_string();
    let text = std::fs::read_to_string(scenario).unwrap();
    assert!(text.contains(&workload), "{text}");
    std::fs::write(scenario, text.replace(&workload, "standby.toml")).unwrap();
}
