//! `lockimpact compare` on copy-on-write clone resets, with its temporary
//! directory on a loop-mounted XFS (`mkfs.xfs -m reflink=1`) or ext4 made by
//! the test (`reflink::LoopFs`):
//!
//! - one after the other, each candidate runs on a reflink copy of its own,
//!   its report says so, and what a candidate did to its server is not seen
//!   by the next (a role it created);
//! - `--parallel` runs both at once, each on its own reflink copy and
//!   server; the comparison says they ran concurrently; nothing is left;
//! - on ext4 `--parallel` runs them one after the other, and says why;
//! - Ctrl-C, and a candidate that fails, stop and remove every server.
//!
//! Gated as the reflink tests are (root, loop devices, xfsprogs).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use crate::common::*;
use crate::reflink::{LoopFs, assert_nothing_left, loop_fs_trials};
use libtest_mimic::Trial;
use serde_json::Value;

/// Every test of this file, by name.
const TESTS: &[(&str, fn())] = &[
    ("each_candidate_gets_a_reflink_copy_of_its_own", each_candidate_gets_a_reflink_copy_of_its_own),
    ("parallel_candidates_run_at_once_on_reflink_copies", parallel_candidates_run_at_once_on_reflink_copies),
    ("parallel_on_ext4_runs_one_after_the_other_and_says_why", parallel_on_ext4_runs_one_after_the_other_and_says_why),
    ("ctrl_c_stops_parallel_candidates_and_leaves_nothing", ctrl_c_stops_parallel_candidates_and_leaves_nothing),
    ("a_failing_parallel_candidate_stops_the_other", a_failing_parallel_candidate_stops_the_other),
];

pub fn trials() -> Vec<Trial> {
    loop_fs_trials("compare", TESTS)
}

const ROLE: &str = "CREATE ROLE lockimpact_env_candidate;\n";
const COLUMN: &str = "ALTER TABLE orders ADD COLUMN note text;\n";

/// A tiny scenario with candidate migrations `a.sql` and `b.sql` beside it.
fn candidates(dir: &Path, a: &str, b: &str) -> (PathBuf, PathBuf, PathBuf) {
    let scenario = tiny_scenario(dir, a, "");
    let (pa, pb) = (dir.join("a.sql"), dir.join("b.sql"));
    std::fs::write(&pa, a).unwrap();
    std::fs::write(&pb, b).unwrap();
    (scenario, pa, pb)
}

/// `lockimpact compare` of the two migrations with TMPDIR on `fs`, the
/// comparison written as JSON.
fn compare(fs: &LoopFs, dir: &Path, (a, b): (&str, &str), args: &[&str]) -> (Output, Option<Value>) {
    let (scenario, pa, pb) = candidates(dir, a, b);
    let json = dir.join("comparison.json");
    let out = bin()
        .env("TMPDIR", fs.mount())
        .env("LOCKIMPACT_CORES", "4")
        .arg("compare")
        .arg(&scenario)
        .arg("--migration")
        .arg(&pa)
        .arg("--migration")
        .arg(&pb)
        .arg("--json")
        .arg(&json)
        .args(args)
        .output()
        .unwrap();
    (out, read_json(&json))
}

fn read_json(path: &Path) -> Option<Value> {
    std::fs::read_to_string(path).ok().map(|t| serde_json::from_str(&t).unwrap())
}

fn copy_methods(c: &Value) -> Vec<&str> {
    let candidates = c["candidates"].as_array().unwrap();
    candidates.iter().map(|x| x["report"]["dataset"]["copy_method"].as_str().unwrap_or("none")).collect()
}

/// One after the other on XFS: a reflink copy each; B's copy does not have
/// the role A created (with the template copy, A would leave B a fresh server).
fn each_candidate_gets_a_reflink_copy_of_its_own() {
    let fs = LoopFs::new("xfs", &["-q", "-m", "reflink=1"], 1024);
    let dir = tempfile::tempdir().unwrap();
    let (out, c) = compare(&fs, dir.path(), (ROLE, ROLE), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let c = c.unwrap_or_else(|| panic!("no comparison:\n{stderr}"));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(copy_methods(&c), ["reflink", "reflink"], "{stderr}");
    assert_eq!(stderr.matches("fresh copy: reflink").count(), 2, "{stderr}");
    for x in c["candidates"].as_array().unwrap() {
        assert_eq!(x["totals"]["outcome"], "ok", "B sees A's role: {stderr}");
    }
    assert!(!stderr.contains("changed the server"), "{stderr}");
    assert!(c.get("concurrent").is_none() && c.get("sequential_why").is_none(), "{c}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("fresh copy"), "the side-by-side names the copy method");
    assert_nothing_left(&fs);
    drop(fs);
}

/// `--parallel` on XFS: both candidates at once, each on a reflink copy and
/// a server of its own; the comparison says they ran concurrently.
fn parallel_candidates_run_at_once_on_reflink_copies() {
    let fs = LoopFs::new("xfs", &["-q", "-m", "reflink=1"], 1024);
    let dir = tempfile::tempdir().unwrap();
    let (out, c) = compare(&fs, dir.path(), (COLUMN, ROLE), &["--parallel"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let c = c.unwrap_or_else(|| panic!("no comparison:\n{stderr}"));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(c["concurrent"], true, "{c}");
    assert_eq!(c["candidates"].as_array().unwrap().len(), 2);
    assert_eq!(copy_methods(&c), ["reflink", "reflink"], "{stderr}");
    for label in ["A", "B"] {
        assert!(stderr.contains(&format!("lockimpact [{label}]: fresh copy: reflink")), "{stderr}");
        assert!(stderr.contains(&format!("lockimpact [{label}]: baseline")), "{stderr}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("A and B ran at the same time (--parallel)"), "{stdout}");
    // Both ran their phases at once: each one's baseline began before the other's migration ended.
    assert!(!stderr.contains("one after the other"), "{stderr}");
    let at = |line: &str| stderr.find(line).unwrap_or_else(|| panic!("no {line:?} in:\n{stderr}"));
    assert!(at("lockimpact [B]: baseline") < at("lockimpact [A]: step 1/"), "{stderr}");
    assert!(at("lockimpact [A]: baseline") < at("lockimpact [B]: step 1/"), "{stderr}");
    assert_nothing_left(&fs);
    drop(fs);
}

/// `--parallel` on ext4: no reflinks, so the candidates run one after the
/// other on template copies, and the progress and the comparison say why.
fn parallel_on_ext4_runs_one_after_the_other_and_says_why() {
    let fs = LoopFs::new("ext4", &["-q", "-F"], 512);
    let dir = tempfile::tempdir().unwrap();
    let (out, c) = compare(&fs, dir.path(), (COLUMN, ROLE), &["--parallel"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let c = c.unwrap_or_else(|| panic!("no comparison:\n{stderr}"));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("--parallel: the candidates run one after the other"), "{stderr}");
    assert!(c.get("concurrent").is_none(), "{c}");
    let why = c["sequential_why"].as_str().unwrap();
    assert!(why.contains("no reflinks on ext2/ext3/ext4"), "{why}");
    assert_eq!(copy_methods(&c), ["template_copy", "template_copy"], "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("--parallel was asked, but"));
    assert_nothing_left(&fs);
    drop(fs);
}

/// Ctrl-C while both candidates run at once: both stop, the comparison of
/// what they measured is written, and every server is gone.
fn ctrl_c_stops_parallel_candidates_and_leaves_nothing() {
    let fs = LoopFs::new("xfs", &["-q", "-m", "reflink=1"], 1024);
    let dir = tempfile::tempdir().unwrap();
    let (scenario, pa, pb) = candidates(dir.path(), COLUMN, ROLE);
    let json = dir.path().join("comparison.json");
    let mut child = bin()
        .env("TMPDIR", fs.mount())
        .env("LOCKIMPACT_CORES", "4")
        .arg("compare")
        .arg(&scenario)
        .args([Path::new("--migration"), &pa, Path::new("--migration"), &pb, Path::new("--json"), &json])
        .args(["--parallel", "--set", "phases.baseline=120s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if ["[A]: baseline", "[B]: baseline"].iter().all(|l| seen.contains(l)) {
            break;
        }
    }
    assert!(seen.contains("[A]: baseline") && seen.contains("[B]: baseline"), "not both in baseline:\n{seen}");
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let rest: Vec<String> = lines.map_while(|l| l.ok()).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{}", rest.join("\n"));
    let c = read_json(&json).expect("the comparison of what was measured");
    assert_eq!(c["concurrent"], true);
    assert_eq!(c["candidates"].as_array().unwrap().len(), 2, "{c}");
    assert_nothing_left(&fs);
    drop(fs);
}

/// B's workload samples a column that does not exist: B fails as it starts,
/// which stops A; no comparison is written (A was stopped, not measured),
/// the error is B's, and every server is gone.
fn a_failing_parallel_candidate_stops_the_other() {
    let fs = LoopFs::new("xfs", &["-q", "-m", "reflink=1"], 1024);
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let sa = tiny_scenario(&a, COLUMN, "");
    let workload = std::fs::read_to_string(repo().join("workloads/orders/workload.toml")).unwrap();
    let broken = workload.replace("table = \"customers\", column = \"id\"", "table = \"customers\", column = \"nope\"");
    assert_ne!(broken, workload, "the workload's sample parameter moved");
    std::fs::write(b.join("workload.toml"), broken).unwrap();
    let sb = tiny_scenario(&b, ROLE, "");
    let toml = std::fs::read_to_string(&sb).unwrap();
    let toml = toml.replace(&repo().join("workloads/orders/workload.toml").display().to_string(), "workload.toml");
    std::fs::write(&sb, toml).unwrap();
    let json = dir.path().join("comparison.json");
    let out = bin()
        .env("TMPDIR", fs.mount())
        .env("LOCKIMPACT_CORES", "4")
        .arg("compare")
        .args([&sa, &sb])
        .args(["--allow-different", "--parallel", "--set", "phases.baseline=60s", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("error: candidate B: ") && stderr.contains("nope"),
        "the error names B and the column:\n{stderr}"
    );
    assert!(!stderr.contains("one after the other"), "they ran at once:\n{stderr}");
    assert!(!json.exists(), "a comparison was written of a candidate stopped by the other's failure");
    assert_nothing_left(&fs);
    drop(fs);
}
