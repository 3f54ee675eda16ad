//! Copy-on-write resets on the docker backend (`clone::docker_cow`): with
//! TMPDIR on a loop-mounted XFS made with `reflink=1`, the container's data
//! directory is a bind-mounted directory there, and each fresh copy (the run
//! and each `--fail-at` stop point) is a container of its own on a reflink
//! copy of the stopped template's directory; with TMPDIR on ext4 the data
//! stays in a volume and the copy is the template database's, and the report
//! says why; `compare --parallel` runs two docker candidates at once, each in
//! a container on its own copy. Nothing is left on the file system or in the
//! engine.
//!
//! Needs a Docker engine and root with loop devices and xfsprogs; without
//! them each test is *ignored* after a SKIPPED line saying why, and fails
//! instead with `CI`, `LOCKIMPACT_REQUIRE_DOCKER` or
//! `LOCKIMPACT_REQUIRE_REFLINK` set.

use std::path::Path;
use std::process::Output;

use crate::common::*;
use crate::reflink::{LoopFs, assert_nothing_left};
use crate::{gated, required};
use libtest_mimic::Trial;
use serde_json::Value;

const TESTS: &[(&str, fn())] = &[
    (
        "a_run_and_its_stop_point_get_reflink_copies_in_containers",
        a_run_and_its_stop_point_get_reflink_copies_in_containers,
    ),
    (
        "on_ext4_the_docker_backend_copies_the_template_and_says_why",
        on_ext4_the_docker_backend_copies_the_template_and_says_why,
    ),
    (
        "parallel_docker_candidates_run_at_once_on_reflink_copies",
        parallel_docker_candidates_run_at_once_on_reflink_copies,
    ),
];

pub fn trials() -> Vec<Trial> {
    let missing = crate::reflink::what_is_missing().or_else(|| crate::docker::engine().err());
    let required = required("LOCKIMPACT_REQUIRE_DOCKER") || required("LOCKIMPACT_REQUIRE_REFLINK");
    if let Some(why) = &missing
        && !required
    {
        eprintln!(
            "SKIPPED: the docker_cow tests need a Docker engine and loop file systems: {why}\n\
             (set CI=1, LOCKIMPACT_REQUIRE_DOCKER=1 or LOCKIMPACT_REQUIRE_REFLINK=1 to make that a failure)"
        );
    }
    let available = missing.map_or(Ok(()), |why| Err(format!("CI requires the docker_cow tests to run: {why}")));
    let tests = TESTS.iter().map(|&(name, test)| {
        let run = move || {
            ensure_test_image();
            test();
        };
        (name, Box::new(run) as Box<dyn FnOnce() + Send>)
    });
    gated("docker_cow", tests, available, required)
}

/// `lockimpact ARGS --json report.json` in `dir` with TMPDIR on `fs` (and 4
/// cores counted, for `--parallel`); its output, its JSON, and the
/// containers it left.
fn lockimpact_on(fs: &LoopFs, dir: &Path, args: &[&str]) -> (Output, Value, Vec<String>) {
    let json = dir.join("report.json");
    let child = bin()
        .args(args)
        .args(["--backend", "docker", "--image", TEST_IMAGE, "--json"])
        .arg(&json)
        .current_dir(dir)
        .env("TMPDIR", fs.mount())
        .env("LOCKIMPACT_CORES", "4")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("no report ({e}):\n{stderr}"));
    (out, serde_json::from_str(&report).unwrap(), containers_of(pid))
}

/// `lockimpact run` of a tiny docker scenario with TMPDIR on `fs`.
fn run_on(fs: &LoopFs, args: &[&str]) -> (Output, Value, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN note text;\n", "");
    let mut all = vec!["run", scenario.to_str().unwrap()];
    all.extend_from_slice(args);
    lockimpact_on(fs, dir.path(), &all)
}

fn a_run_and_its_stop_point_get_reflink_copies_in_containers() {
    let fs = LoopFs::new("xfs", &["-q", "-m", "reflink=1"], 1024);
    let (out, report, left) = run_on(&fs, &["--fail-at", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    assert_eq!(report["dataset"]["copy_method"], "reflink", "{}", report["dataset"]);
    assert!(report["dataset"]["copy_why"].as_str().unwrap().contains("xfs"), "{}", report["dataset"]);
    // The forward run and the stop point: two reflink copies, each in a container of its own.
    assert_eq!(stderr.matches("fresh copy: reflink").count(), 2, "{stderr}");
    assert_eq!(report["stop_points"].as_array().map(Vec::len), Some(1), "{}", report["stop_points"]);
    assert_eq!(left, Vec::<String>::new(), "containers left behind:\n{stderr}");
    assert_nothing_left(&fs);
    drop(fs);
}

fn on_ext4_the_docker_backend_copies_the_template_and_says_why() {
    let fs = LoopFs::new("ext4", &["-q", "-F"], 512);
    let (out, report, left) = run_on(&fs, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    assert_eq!(report["dataset"]["copy_method"], "template_copy", "{}", report["dataset"]);
    let why = report["dataset"]["copy_why"].as_str().unwrap();
    assert!(why.contains("volume of the engine") && why.contains("no reflinks on ext2/ext3/ext4"), "{why}");
    assert_eq!(left, Vec::<String>::new(), "containers left behind:\n{stderr}");
    assert_nothing_left(&fs);
    drop(fs);
}

fn parallel_docker_candidates_run_at_once_on_reflink_copies() {
    let fs = LoopFs::new("xfs", &["-q", "-m", "reflink=1"], 1024);
    let dir = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN note text;\n", "");
    let b = dir.path().join("b.sql");
    std::fs::write(&b, "CREATE INDEX orders_status_idx ON orders (status);\n").unwrap();
    let sc = scenario.to_str().unwrap();
    let args = ["compare", sc, "--migration", "migration.sql", "--migration", "b.sql", "--parallel"];
    let (out, c, left) = lockimpact_on(&fs, dir.path(), &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    assert_eq!(c["concurrent"], true, "{stderr}");
    // At once: B's baseline began before A's migration did.
    let at = |line: &str| stderr.find(line).unwrap_or_else(|| panic!("no {line:?} in:\n{stderr}"));
    assert!(at("lockimpact [B]: baseline") < at("lockimpact [A]: step 1/"), "{stderr}");
    let methods: Vec<&str> = c["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["report"]["dataset"]["copy_method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["reflink", "reflink"], "{stderr}");
    assert_eq!(left, Vec::<String>::new(), "containers left behind:\n{stderr}");
    assert_nothing_left(&fs);
    drop(fs);
}
