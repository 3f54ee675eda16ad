//! Fuzz regressions: every file under `tests/fuzz_regressions/<target>/` (the
//! minimized crash inputs `cargo fuzz` found, plus a few seeds) is fed to the
//! same harness function as the fuzz target of that name
//! (`tests/fuzz_harness/mod.rs`), which must return (accepting the input or
//! not) without panicking.

use crate::fuzz_harness;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Seeds (`seed-*`) must also be accepted: a harness that rejected every
/// input would fuzz nothing.
#[test]
fn every_saved_input_returns_without_a_panic() {
    let mut failures = Vec::new();
    let mut count = 0;
    for (target, harness) in fuzz_harness::TARGETS {
        let files = inputs(target);
        assert!(!files.is_empty(), "no inputs for the {target} target");
        for file in files {
            count += 1;
            let data = std::fs::read(&file).unwrap();
            match catch_unwind(AssertUnwindSafe(|| harness(&data))) {
                Ok(accepted) => {
                    if !accepted && file.file_name().unwrap().to_string_lossy().starts_with("seed-") {
                        failures.push(format!("{}: a seed the harness does not accept", file.display()));
                    }
                }
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    failures.push(format!("{}: panicked: {what}", file.display()));
                }
            }
        }
    }
    fuzz_harness::cleanup();
    assert!(failures.is_empty(), "{} of {count} inputs failed:\n{}", failures.len(), failures.join("\n"));
}
