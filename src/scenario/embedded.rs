//! The default scenario compiled into the binary, so `lockimpact run` with no
//! argument rehearses something real on a fresh machine: the classic lock
//! queue (a fast `ALTER TABLE` stuck behind an old transaction, and every
//! query stuck behind the `ALTER`).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Shown in place of the temporary directory in paths and messages.
pub const LABEL: &str = "<embedded>";

/// The scenario `lockimpact run` rehearses when given no file, relative to the bundle.
pub const DEFAULT: &str = "scenarios/orders-lock-queue.toml";

/// The files the default scenario refers to, by their path in the repository.
const FILES: &[(&str, &str)] = &[
    (DEFAULT, include_str!("../../scenarios/orders-lock-queue.toml")),
    ("scenarios/migrations/lock-queue.sql", include_str!("../../scenarios/migrations/lock-queue.sql")),
    ("workloads/orders/seed.sql", include_str!("../../workloads/orders/seed.sql")),
    ("workloads/orders/workload.toml", include_str!("../../workloads/orders/workload.toml")),
    ("workloads/orders/long-reader.toml", include_str!("../../workloads/orders/long-reader.toml")),
];

/// Writes the bundle to a temporary directory (removed when dropped) and
/// returns it with the path of the default scenario inside it.
pub fn materialize() -> Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::Builder::new()
        .prefix("lockimpact-default-")
        .tempdir()
        .map_err(|e| Error::env(format!("cannot create a temporary directory for the default scenario: {e}")))?;
    for (rel, text) in FILES {
        let path = dir.path().join(rel);
        let write =
            std::fs::create_dir_all(path.parent().unwrap_or(dir.path())).and_then(|_| std::fs::write(&path, text));
        write.map_err(|e| Error::env(format!("cannot write {}: {e}", path.display())))?;
    }
    let scenario = dir.path().join(DEFAULT);
    Ok((dir, scenario))
}

/// Replaces the temporary directory with `<embedded>` in a path.
pub fn relabel(path: &Path, dir: &Path) -> PathBuf {
    match path.strip_prefix(dir) {
        Ok(rel) => Path::new(LABEL).join(rel),
        Err(_) => path.to_path_buf(),
    }
}
