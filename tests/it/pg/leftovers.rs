//! Leftovers of a killed run (local backend; the container case is in
//! tests/env/docker.rs): `kill -9` of lockimpact leaves its server running and its
//! directory in TMPDIR; a later `run` mentions it; `lockimpact clean` stops
//! that server and removes the directory, and leaves alone the server of a
//! run that still runs and a clone kept with `--keep` (until `--kept`).
//! Every run here uses a TMPDIR of its own.

use std::path::{Path, PathBuf};
use std::process::Child;

use crate::common::*;

const MIGRATION: &str = "ALTER TABLE orders ADD COLUMN note text;\n";

/// A local run in its baseline, with its server directory and postmaster pid.
fn local_in_baseline(scenario: &Path, tmpdir: &Path) -> (Child, PathBuf, i32) {
    let (child, seen) = run_in_baseline(scenario, &["--backend", "local"], tmpdir);
    let (dir, postmaster) = server_location(&seen);
    (child, dir, postmaster)
}

fn clean(tmpdir: &Path, args: &[&str]) -> (bool, String) {
    let out = bin().arg("clean").args(args).env("TMPDIR", tmpdir).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn clean_removes_a_killed_runs_server_and_nothing_of_a_live_run() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), MIGRATION, "");
    let (mut killed, killed_dir, killed_pm) = local_in_baseline(&scenario, scratch.path());
    let (mut live, live_dir, live_pm) = local_in_baseline(&scenario, scratch.path());
    let killed_pid = killed.id();
    unsafe { libc::kill(killed_pid as i32, libc::SIGKILL) };
    let _ = killed.wait();
    let survived = process_alive(killed_pm) && killed_dir.exists();
    // A run that stops right after its start (no server binaries there) still mentions it.
    let mention = bin()
        .args(["run", scenario.to_str().unwrap(), "--backend", "local", "--pg-bin", "/nonexistent"])
        .env("TMPDIR", scratch.path())
        .output()
        .unwrap();
    let mention = String::from_utf8_lossy(&mention.stderr).into_owned();
    let (dry_ok, dry) = clean(scratch.path(), &["--dry-run"]);
    let after_dry = killed_dir.exists() && process_alive(killed_pm);
    let (ok, out) = clean(scratch.path(), &[]);
    let killed_gone = wait_gone(killed_pm) && !killed_dir.exists();
    let live_intact = process_alive(live_pm) && live_dir.exists();
    unsafe { libc::kill(live.id() as i32, libc::SIGTERM) };
    let live_code = live.wait().unwrap().code();
    assert!(survived, "kill -9 should leave the server behind (postmaster {killed_pm}, {})", killed_dir.display());
    assert!(
        mention.contains("leftover(s) of killed lockimpact runs")
            && mention.contains(&killed_dir.display().to_string())
            && !mention.contains(&live_dir.display().to_string()),
        "{mention}"
    );
    assert!(dry_ok && dry.contains("would remove server directory") && after_dry, "{dry}");
    assert!(ok, "{out}");
    assert!(out.contains(&format!("removed server directory {}", killed_dir.display())), "{out}");
    assert!(out.contains(&format!("postmaster pid {killed_pm}, was stopped")), "{out}");
    assert!(killed_gone, "the killed run's server or directory is still there:\n{out}");
    assert!(live_intact, "clean touched the live run's server:\n{out}");
    assert!(out.contains(&format!("in use server directory {}", live_dir.display())), "{out}");
    assert_eq!(live_code, Some(130));
    assert!(wait_gone(live_pm) && !live_dir.exists(), "the live run did not clean up after SIGTERM");
}

#[test]
fn a_kept_clone_is_removed_only_with_kept() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), MIGRATION, "");
    let o = bin()
        .args(["run", scenario.to_str().unwrap(), "--backend", "local", "--keep"])
        .env("TMPDIR", scratch.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let (server_dir, pm) = server_location(&stderr);
    let (ok, out) = clean(scratch.path(), &[]);
    let kept = process_alive(pm) && server_dir.exists();
    let (ok_kept, out_kept) = clean(scratch.path(), &["--kept"]);
    let gone = wait_gone(pm) && !server_dir.exists();
    assert!(ok && out.contains(&format!("kept server directory {}", server_dir.display())), "{out}");
    assert!(kept, "clean removed a kept clone:\n{out}");
    assert!(ok_kept && out_kept.contains("removed server directory"), "{out_kept}");
    assert!(gone, "clean --kept left the kept clone:\n{out_kept}");
}
