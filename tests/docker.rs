//! The docker backend, against the locally built test image
//! (scripts/build-test-image) passed with `--image`, the same code path as a
//! user's official image. Skipped, with the reason printed, only when no
//! Docker engine answers.
//!
//! - the same scenario on `local` and `docker` gives the same step outcomes
//!   and lock modes;
//! - `-Fc` and `-Fd` dumps restore with `-j 2` inside the container, a plain
//!   dump with psql, and a rehearsal runs on each;
//! - server settings reach the server; `--keep` leaves a container that
//!   answers at the printed address;
//! - after success, failure or SIGTERM no container, volume or temp file is
//!   left behind.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::*;
use serde_json::Value;

const DOCKER: &[&str] = &["--backend", "docker", "--image", TEST_IMAGE];

/// Two steps with different locks: a plain index (ShareLock) and a column.
const MIGRATION: &str = "-- lockimpact: transaction step\n\
CREATE INDEX orders_status_idx ON orders (status);\n\
ALTER TABLE orders ADD COLUMN note text;\n";

/// (outcome, [(relation, mode)]) of every step.
fn steps(r: &Value) -> Vec<(String, Vec<(String, String)>)> {
    r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let mut locks: Vec<(String, String)> = s["locks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| (l["relation"].as_str().unwrap().to_string(), l["mode"].as_str().unwrap().to_string()))
                .collect();
            locks.sort();
            (s["outcome"].as_str().unwrap().to_string(), locks)
        })
        .collect()
}

/// `lockimpact run` with TMPDIR set to a fresh directory, which must be
/// empty afterwards; returns the outcome and the lockimpact process id.
fn run_checked_clean(args: &[&str]) -> (Outcome, u32) {
    let tmp = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let json = tmp.path().join("report.json");
    let volumes_before = volumes();
    let child = bin()
        .arg("run")
        .args(args)
        .arg("--json")
        .arg(&json)
        .env("TMPDIR", scratch.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let report = std::fs::read_to_string(&json).ok().map(|t| serde_json::from_str(&t).unwrap());
    let o = Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report,
    };
    assert_eq!(containers_of(pid), Vec::<String>::new(), "containers left behind:\n{}", o.stderr);
    let new_volumes: Vec<String> = volumes().into_iter().filter(|v| !volumes_before.contains(v)).collect();
    assert!(new_volumes.is_empty(), "volumes left behind: {new_volumes:?}");
    let left: Vec<_> = std::fs::read_dir(scratch.path()).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "temp files left behind: {left:?}");
    (o, pid)
}

#[test]
fn local_and_docker_give_the_same_steps_and_locks() {
    if !docker_ready("local_and_docker_give_the_same_steps_and_locks") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), MIGRATION, "[clone.settings]\nmax_connections = 40\n");
    let local = run(&[scenario.to_str().unwrap(), "--backend", "local"]);
    assert_eq!(local.code, 0, "{}", local.stderr);
    let mut args = vec![scenario.to_str().unwrap()];
    args.extend_from_slice(DOCKER);
    let (docker, _) = run_checked_clean(&args);
    assert_eq!(docker.code, 0, "{}", docker.stderr);
    assert!(docker.stderr.contains("backend: docker"), "{}", docker.stderr);
    assert!(docker.report()["clone"]["backend"].as_str().unwrap().contains(TEST_IMAGE));
    let (l, d) = (steps(local.report()), steps(docker.report()));
    assert_eq!(l.len(), 2);
    assert_eq!(l, d, "local and docker disagree");
    assert!(d[0].1.contains(&("orders".into(), "ShareLock".into())), "{d:?}");
    assert!(d[1].1.contains(&("orders".into(), "AccessExclusiveLock".into())), "{d:?}");
}

#[test]
fn dumps_restore_in_the_container_with_two_jobs() {
    if !docker_ready("dumps_restore_in_the_container_with_two_jobs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dumps = make_dumps(dir.path(), &["c", "d", "p"]);
    for (dump, format) in dumps.iter().zip(["custom", "directory", "plain SQL"]) {
        let scenario = dump_scenario(dir.path(), dump, DUMP_MIGRATION, "");
        let mut args = vec![scenario.to_str().unwrap()];
        args.extend_from_slice(DOCKER);
        let (o, _) = run_checked_clean(&args);
        assert_eq!(o.code, 0, "{format}: {}", o.stderr);
        let r = o.report();
        assert_eq!(r["dataset"]["dump"]["format"], format);
        assert!(r["dataset"]["restore_ms"].as_f64().unwrap() > 0.0);
        for s in r["steps"].as_array().unwrap() {
            assert_eq!(s["outcome"], "ok", "{format}: {s}");
        }
        if format != "plain SQL" {
            assert!(o.stderr.contains("with pg_restore 15 with 2 jobs"), "{}", o.stderr);
        } else {
            assert!(o.stderr.contains("lockimpact_dump_owner"), "{}", o.stderr);
        }
    }
}

#[test]
fn a_failed_migration_leaves_nothing_behind() {
    if !docker_ready("a_failed_migration_leaves_nothing_behind") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), "ALTER TABLE no_such_table ADD COLUMN x int;\n", "");
    let mut args = vec![scenario.to_str().unwrap()];
    args.extend_from_slice(DOCKER);
    let (o, _) = run_checked_clean(&args);
    assert_eq!(o.code, 1, "{}", o.stderr);
    // A bad image fails before anything runs, and leaves nothing either.
    let (o, _) =
        run_checked_clean(&[scenario.to_str().unwrap(), "--backend", "docker", "--image", "lockimpact-test/none:0"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("lockimpact-test/none:0"), "{}", o.stderr);
}

#[test]
fn sigterm_removes_the_container() {
    if !docker_ready("sigterm_removes_the_container") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN note text;\n", "");
    let mut child = bin()
        .args(["run", scenario.to_str().unwrap(), "--set", "phases.baseline=30s"])
        .args(DOCKER)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("baseline") {
            break;
        }
    }
    assert_eq!(containers_of(pid).len(), 1, "one container while running");
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(child.wait().unwrap().code(), Some(130), "{}", rest.join("\n"));
    assert_eq!(containers_of(pid), Vec::<String>::new(), "container left behind");
}

#[test]
fn sigterm_during_start_up_removes_the_container() {
    if !docker_ready("sigterm_during_start_up_removes_the_container") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN note text;\n", "");
    let mut child = bin()
        .args(["run", scenario.to_str().unwrap()])
        .args(DOCKER)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("backend: docker") {
            break;
        }
    }
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(child.wait().unwrap().code(), Some(130), "{}", rest.join("\n"));
    assert_eq!(containers_of(pid), Vec::<String>::new(), "container left behind");
}

#[test]
fn keep_leaves_a_container_with_the_scenario_settings() {
    if !docker_ready("keep_leaves_a_container_with_the_scenario_settings") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(
        dir.path(),
        "ALTER TABLE orders ADD COLUMN note text;\n",
        "[clone.settings]\nmax_connections = 37\n",
    );
    let mut args = vec![scenario.to_str().unwrap(), "--keep"];
    args.extend_from_slice(DOCKER);
    let o = run(&args);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let connect = o.stderr.lines().find_map(|l| l.trim().strip_prefix("connect: ")).expect("a connect line");
    let stop = o.stderr.lines().find_map(|l| l.trim().strip_prefix("stop:    ")).expect("a stop line");
    let psql = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{connect} -At -c 'SHOW max_connections' -c 'SELECT count(*) > 0 FROM orders'"))
        .output()
        .unwrap();
    let stopped = std::process::Command::new("sh").arg("-c").arg(stop).output().unwrap();
    assert!(stopped.status.success(), "{stop}: {}", String::from_utf8_lossy(&stopped.stderr));
    assert_eq!(String::from_utf8_lossy(&psql.stdout).trim(), "37\nt", "{}", String::from_utf8_lossy(&psql.stderr));
    let bound = o.stderr.lines().find(|l| l.contains("server: container")).unwrap_or("");
    assert!(bound.contains("port 127.0.0.1:"), "{bound}");
}
