//! The disposable server leaves nothing behind after a run, and `--keep`
//! really keeps it, with working instructions (signals: `pg::reliability`).

use crate::common::*;

const MIGRATION: &str = "ALTER TABLE orders ADD COLUMN note text;\n";

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
