//! What the user reads when something is off (issue 13 point 7), each on the
//! real binary: a syntax error names its statement's line and number; an
//! unreachable `--url` keeps libpq's cause and names the server; a wrong
//! `--pg-bin` says the path is wrong; `--keep -q` still prints how to connect.

use crate::common::*;

/// A syntax error on line 5 (a statement that does not start with a
/// keyword) is reported at line 5, statement 5, not at line 1.
#[test]
fn a_syntax_error_names_its_statements_line_and_number() {
    let dir = tempfile::tempdir().unwrap();
    let sql = "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\nCREATE TABLE c (id int);\nSELECT 1;\nSELEC 2;\n";
    let scenario = tiny_scenario(dir.path(), sql, "");
    let o = run(&[scenario.to_str().unwrap()]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("migration.sql:5: statement 5: SQL syntax error"), "{}", o.stderr);
}

/// `--url` to a port nobody listens on: libpq's cause is kept, the server is
/// called the user's server (not "the clone"), and no log tail is promised.
#[test]
fn an_unreachable_url_keeps_the_cause_and_names_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = url_scenario(dir.path(), "SELECT 1;\n");
    let o = run(&[
        scenario.to_str().unwrap(),
        "--url",
        "postgresql://app:secret@127.0.0.1:1/appdb",
        "--allow-existing-server",
    ]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("Connection refused"), "{}", o.stderr);
    assert!(o.stderr.contains("existing server postgresql://app:****@127.0.0.1:1/appdb"), "{}", o.stderr);
    assert!(!o.stderr.contains("the clone"), "{}", o.stderr);
    assert!(!o.stderr.contains("server's log"), "{}", o.stderr);
    assert!(!o.stderr.contains("secret"), "{}", o.stderr);
}

/// `--pg-bin` naming a directory without server binaries: the path is wrong,
/// whatever else (Docker) is installed.
#[test]
fn a_wrong_pg_bin_says_the_path_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), "SELECT 1;\n", "");
    let missing = dir.path().join("nonexistent");
    let o = run(&[scenario.to_str().unwrap(), "--pg-bin", missing.to_str().unwrap()]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains(&format!("--pg-bin/PG_BIN {}", missing.display())), "{}", o.stderr);
    assert!(o.stderr.contains("Check the path"), "{}", o.stderr);
    assert!(!o.stderr.contains("install Docker"), "{}", o.stderr);
}

/// `--keep -q`: nothing else is printed, but the kept server's connection
/// line is.
#[test]
fn keep_with_quiet_still_prints_how_to_connect() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN note text;\n", "");
    let o = run(&[scenario.to_str().unwrap(), "--backend", "local", "--keep", "-q"]);
    let all = format!("{}{}", o.stdout, o.stderr);
    let pid: Option<i32> = all
        .split("postmaster pid ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok());
    let kept_dir = all.lines().find_map(|l| l.trim().strip_prefix("then remove ")).map(|d| d.trim().to_string());
    // Stop the kept server by its pid and remove its files before asserting.
    if let Some(pid) = pid {
        unsafe { libc::kill(pid, libc::SIGINT) };
        assert!(wait_gone(pid), "postmaster {pid} still running");
    }
    if let Some(d) = &kept_dir {
        let _ = std::fs::remove_dir_all(d);
    }
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(all.lines().any(|l| l.trim().starts_with("connect: psql ")), "no connect line with -q:\n{all}");
    assert!(pid.is_some() && kept_dir.is_some(), "{all}");
}
