//! The disposable server leaves nothing behind: not after a run, not after
//! Ctrl-C/SIGTERM; and `--keep` really keeps it, with working instructions.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

const MIGRATION: &str = "ALTER TABLE orders ADD COLUMN note text;\n";

fn wait_gone(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !process_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn a_finished_run_removes_server_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), MIGRATION, "");
    let o = run(&[scenario.to_str().unwrap()]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let (server_dir, pid) = server_location(&o.stderr);
    assert!(wait_gone(pid), "postmaster {pid} still running");
    assert!(!server_dir.exists(), "{} left behind", server_dir.display());
}

#[test]
fn sigterm_stops_the_run_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), MIGRATION, "");
    let mut child = bin()
        .args(["run", scenario.to_str().unwrap(), "--set", "phases.baseline=30s"])
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
        if line.contains("baseline") {
            break;
        }
    }
    let (server_dir, pid) = server_location(&seen);
    assert!(process_alive(pid));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{}", rest.join("\n"));
    assert!(wait_gone(pid), "postmaster {pid} still running");
    assert!(!server_dir.exists(), "{} left behind", server_dir.display());
}

#[test]
fn keep_leaves_a_server_that_answers_at_the_printed_address() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), MIGRATION, "");
    let o = run(&[scenario.to_str().unwrap(), "--keep"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let (server_dir, pid) = server_location(&o.stderr);
    let connect = o.stderr.lines().find_map(|l| l.trim().strip_prefix("connect: ")).expect("a connect line");
    let alive = process_alive(pid);
    let psql = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{connect} -At -c 'SELECT count(*) > 0 FROM orders'"))
        .output()
        .unwrap();
    // Stop the kept server by its pid (fast shutdown) and remove its files.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let gone = wait_gone(pid);
    std::fs::remove_dir_all(&server_dir).unwrap();
    assert!(alive, "the kept postmaster is not running");
    assert_eq!(String::from_utf8_lossy(&psql.stdout).trim(), "t", "{}", String::from_utf8_lossy(&psql.stderr));
    assert!(gone);
}
