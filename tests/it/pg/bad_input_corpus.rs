//! The bad-input corpus: every directory below `tests/bad_input/` that holds
//! an `expected.txt` is one case of broken input (a scenario, workload,
//! migration, template or `--set`; later recorded logs under `logs/`). Each
//! runs through the real binary and must exit with code 2, print every
//! expected substring on stderr, and never panic.
//!
//! A case directory holds:
//! - `scenario.toml` and the files it points to (shared valid files are in
//!   `tests/bad_input/shared/`);
//! - `expected.txt`: substrings stderr must contain, one per line (blank lines
//!   and lines starting with `#` are skipped); `{case}` stands for the case
//!   directory as the binary sees it (`tests/bad_input/<group>/<case>`), so a
//!   line names the file and the line or key, e.g.
//!   `{case}/migration.sql:2: unknown directive`;
//! - `args.txt` (optional): the command line, one argument per line, `{case}`
//!   replaced as above; default `run {case}/scenario.toml`;
//! - `starts-server` (optional, empty): the case fails only on the clone (a
//!   workload query on a missing table), so it may start a disposable server.
//!   Without it, no server may start.

use std::path::{Path, PathBuf};

use crate::common::*;

/// The corpus root, relative to the repository root (the binary's working directory).
const ROOT: &str = "tests/bad_input";

/// Every case directory below `dir`, sorted, as paths relative to the repository root.
fn cases(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(repo().join(dir)).unwrap().map(|e| dir.join(e.unwrap().file_name())).collect();
    entries.sort();
    for e in entries {
        if repo().join(&e).join("expected.txt").is_file() {
            out.push(e);
        } else if repo().join(&e).is_dir() {
            cases(&e, out);
        }
    }
}

fn lines(path: &Path, case: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.replace("{case}", case))
        .collect()
}

/// Runs one case; returns what is wrong with its outcome, if anything.
fn check(case: &Path) -> Option<String> {
    let name = case.display().to_string();
    let dir = repo().join(case);
    let args = if dir.join("args.txt").is_file() {
        lines(&dir.join("args.txt"), &name)
    } else {
        vec!["run".to_string(), format!("{name}/scenario.toml")]
    };
    let expected = lines(&dir.join("expected.txt"), &name);
    if expected.is_empty() {
        return Some(format!("{name}: expected.txt lists no substring"));
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = bin();
    cmd.args(&args);
    // Rehearsals also get a report file, which must not be written.
    if matches!(args.first().map(String::as_str), Some("run" | "compare")) {
        cmd.arg("--json").arg(tmp.path().join("report.json"));
    }
    let out = cmd.env("RUST_BACKTRACE", "0").env_remove("PG_BIN").output().expect("run lockimpact");
    let code = out.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut problems = Vec::new();
    if code != 2 {
        problems.push(format!("exit code {code}, not 2"));
    }
    for panic in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        if stderr.contains(panic) {
            problems.push(format!("stderr shows a panic ({panic:?})"));
        }
    }
    for want in &expected {
        if !stderr.contains(want.as_str()) {
            problems.push(format!("stderr lacks {want:?}"));
        }
    }
    if !dir.join("starts-server").exists() && stderr.contains("lockimpact: server:") {
        problems.push("a server was started before the input was checked".into());
    }
    if tmp.path().join("report.json").exists() {
        problems.push("a report was written".into());
    }
    if problems.is_empty() {
        None
    } else {
        Some(format!("{name} ({}):\n  {}\n  stderr:\n{stderr}", args.join(" "), problems.join("\n  ")))
    }
}

#[test]
fn every_bad_input_case_exits_2_with_a_clear_message() {
    let mut all = Vec::new();
    cases(Path::new(ROOT), &mut all);
    assert!(all.len() >= 80, "only {} cases found under {ROOT}", all.len());
    // Two at a time: the machine is small, and most cases take milliseconds.
    let (a, b): (Vec<_>, Vec<_>) = all.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let run = |part: Vec<(usize, &PathBuf)>| part.into_iter().filter_map(|(_, c)| check(c)).collect::<Vec<_>>();
    let failures: Vec<String> = std::thread::scope(|s| {
        let hb = s.spawn(|| run(b));
        let mut f = run(a);
        f.extend(hb.join().unwrap());
        f
    });
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), all.len(), failures.join("\n\n"));
}

/// The corpus covers each kind of bad input the README promises a clear message for.
#[test]
fn the_corpus_covers_every_kind_of_bad_input() {
    let mut all = Vec::new();
    cases(Path::new(ROOT), &mut all);
    let names: Vec<String> = all.iter().map(|c| c.display().to_string()).collect();
    for want in [
        "scenario/syntax-error",
        "scenario/unknown-key",
        "scenario/wrong-type",
        "scenario/missing-file",
        "scenario/rate-zero",
        "scenario/negative-duration",
        "scenario/huge-duration",
        "scenario/non-utf8",
        "scenario/empty-file",
        "set/unknown-key",
        "workload/sql-syntax-error",
        "workload/missing-table",
        "workload/non-utf8",
        "workload/empty-file",
        "migration/syntax-error",
        "migration/unknown-directive",
        "migration/bad-option-value",
        "migration/concurrently-in-transaction",
        "migration/non-utf8",
        "migration/empty-file",
        "template/workload-unknown-var",
        "template/workload-unclosed",
        "migration-dir/unknown-format",
        "migration-dir/goose-concurrently-in-transaction",
        "migration-dir/from-unknown-version",
    ] {
        assert!(names.iter().any(|n| n.ends_with(want)), "no case {want} under {ROOT}");
    }
}
