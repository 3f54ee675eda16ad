//! Helpers shared by the integration tests: run the real `lockimpact` binary
//! (which starts its own disposable PostgreSQL), write small scenarios into a
//! temporary directory, and read the JSON report.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;

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

/// Writes a tiny scenario on the orders dataset (10 000 rows, short phases)
/// with the given migration, into `dir`; `extra` is appended to the TOML.
pub fn tiny_scenario(dir: &Path, migration_sql: &str, extra: &str) -> PathBuf {
    let w = repo().join("workloads/orders");
    std::fs::write(dir.join("migration.sql"), migration_sql).unwrap();
    let toml = format!(
        r#"name = "tiny"
[vars]
rows = 10000
customers = 1000
[snapshot]
seed = "{seed}"
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
        seed = w.join("seed.sql").display(),
        workload = w.join("workload.toml").display(),
    );
    let path = dir.join("scenario.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// The `server: directory D, postmaster pid P` progress line.
pub fn server_location(stderr: &str) -> (PathBuf, i32) {
    let line = stderr.lines().find_map(|l| l.strip_prefix("lockimpact: server: directory ")).expect("a server line");
    let (dir, pid) = line.split_once(", postmaster pid ").expect("dir and pid");
    (PathBuf::from(dir), pid.trim().parse().unwrap())
}

pub fn process_alive(pid: i32) -> bool {
    // /proc/PID exists for a live process (and a zombie, which the postmaster,
    // pg_ctl's child, never is for us).
    Path::new(&format!("/proc/{pid}")).exists()
}
