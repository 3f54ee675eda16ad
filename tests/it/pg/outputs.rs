//! Output formats, budget flags and the live status line of `lockimpact run`,
//! against a real disposable PostgreSQL.

use crate::common::*;

#[test]
fn formats_files_and_budget_flags() {
    let dir = tempfile::tempdir().unwrap();
    // A pause keeps the migration running for a second so queries run "during".
    let sql = "-- lockimpact: pause 1s \"app deploy\"\nALTER TABLE orders ADD COLUMN a int;\n";
    let scenario = tiny_scenario(dir.path(), sql, "");
    let html = dir.path().join("r.html");
    let text = dir.path().join("r.out");
    let json = dir.path().join("r.json");
    let out = bin()
        .arg("run")
        .arg(&scenario)
        .args(["--format", "markdown", "--out"])
        .arg(&html)
        .arg("--out")
        .arg(format!("text:{}", text.display()))
        .arg("--json")
        .arg(&json)
        .args(["--max-p99-during", "order_by_id=0.001ms", "--max-errors", "1000"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The per-class budget flag is exceeded (no query answers in 1 µs): exit 1.
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("### lockimpact rehearsal: `tiny` (FAIL)"), "{stdout}");
    assert!(stdout.contains("<details><summary>"), "{stdout}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let violations = r["verdict"]["violations"].as_array().unwrap();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0]["budget"], "max_p99_during_class");
    assert!(violations[0]["message"].as_str().unwrap().starts_with("p99 of order_by_id"), "{violations:?}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.matches("<svg").count() == 3, "{page}");
    assert!(std::fs::read_to_string(&text).unwrap().contains("Verdict: FAIL"));
    // Not a terminal: no live status line in the progress output.
    assert!(!stderr.contains("\x1b[2K"), "{stderr}");
}

#[test]
fn bad_output_and_budget_flags_fail_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN a int;", "");
    for (args, expect) in [
        (vec!["--out", "report.pdf"], "--out report.pdf: cannot tell the format"),
        (vec!["--format", "yaml"], "--format \"yaml\" is not known"),
        (vec!["--out", "/no/such/dir/r.md"], "directory /no/such/dir does not exist"),
        (vec!["--max-p99-during", "nope=1s"], "budget.max_p99_during_class.nope: no query class \"nope\""),
        (vec!["--max-blocked=-1s"], "durations cannot be negative"),
        (vec!["--max-errors", "many"], "max_errors"),
    ] {
        let out = bin().arg("run").arg(&scenario).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
        assert!(!stderr.contains("seeding"), "{args:?} started a rehearsal: {stderr}");
    }
}

/// On a terminal, a live line shows phase, ops/s, p99 and sessions blocked;
/// `script` gives the run a pseudo-terminal.
#[test]
fn live_status_line_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN a int;", "");
    let cmd = format!("{} run {} --set phases.baseline=2s", env!("CARGO_BIN_EXE_lockimpact"), scenario.display());
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(repo())
        .output()
        .expect("script (util-linux) runs");
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(tty.contains("\x1b[2K[   "), "{tty}");
    assert!(tty.contains("baseline | "), "{tty}");
    assert!(tty.contains(" ops/s | p99 "), "{tty}");
    assert!(tty.contains("blocked now "), "{tty}");

    // --quiet: nothing but the report.
    let quiet = std::process::Command::new("script")
        .args(["-qec", &format!("{cmd} --quiet"), "/dev/null"])
        .current_dir(repo())
        .output()
        .unwrap();
    let tty = String::from_utf8_lossy(&quiet.stdout);
    assert!(!tty.contains("ops/s |") && !tty.contains("lockimpact: "), "{tty}");
    assert!(tty.contains("Verdict:"), "{tty}");
}
