//! The parser entry points the fuzz targets (`fuzz/fuzz_targets/*.rs`) and
//! the regression test (`tests/it/pure/fuzz_regressions.rs`) share: each takes raw
//! bytes, feeds them to the same public library functions `lockimpact run`
//! uses, and returns whether they were accepted. Any outcome but a panic (or
//! an abort) is fine: bad input must come back as an `Error`.

#![allow(dead_code)] // each user calls a subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use lockimpact::cli::RunOptions;
use lockimpact::migration::{self, Defaults};
use lockimpact::scenario::{self, values::render_template};
use lockimpact::workload::file::parse as parse_workload;
use lockimpact::workload::params::{Param, Rng};

/// A harness: raw input in, whether the parsers accepted it out.
pub type Harness = fn(&[u8]) -> bool;

/// The fuzz targets, by the name of their folder under `tests/fuzz_regressions/`.
pub const TARGETS: &[(&str, Harness)] =
    &[("workload", workload), ("migration", migration), ("scenario", scenario), ("log", log)];

/// A recorded server log, read as csvlog and as a stderr log: its statements
/// are extracted (extended-protocol `parameters:` details included), their
/// parameters inlined, and each is normalized by fingerprint, as
/// `lockimpact record log` does.
pub fn log(data: &[u8]) -> bool {
    use lockimpact::pg::log::{csv_entries, inline, statements, stderr_entries};
    use lockimpact::recorder::log::normalize_with_literals;
    let text = String::from_utf8_lossy(data);
    let mut found = 0;
    for entries in [csv_entries(&text), stderr_entries(&text).0] {
        for s in statements(&entries) {
            found += 1;
            let _ = inline(&s.sql, &s.params);
            let _ = normalize_with_literals(&s.sql);
        }
    }
    found > 0
}

/// A workload file: `{{var}}` templates rendered with a few variables, then
/// parsed and validated; each generator of an accepted file draws a value.
pub fn workload(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else { return false };
    let vars = BTreeMap::from([
        ("rows".to_string(), "1000".to_string()),
        ("customers".to_string(), "50".to_string()),
        ("country".to_string(), "US".to_string()),
    ]);
    let path = Path::new("fuzz/workload.toml");
    let Ok(rendered) = render_template(text, &vars, "fuzz/workload.toml") else { return false };
    let Ok(classes) = parse_workload(&rendered, path) else { return false };
    for (n, class) in classes.iter().enumerate() {
        for p in &class.params {
            // Sample values are read from the clone before a run; none here.
            if !matches!(p, Param::Sample { .. }) {
                p.draw(&mut Rng::for_op(1, n as u64));
            }
        }
    }
    true
}

/// A migration file: split with pg_query, directives read, steps validated
/// against the transaction mode.
pub fn migration(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else { return false };
    let defaults = Defaults {
        transaction: None,
        lock_timeout: Duration::ZERO,
        statement_timeout: Duration::ZERO,
        retries: 0,
        retry_backoff: Duration::from_millis(500),
        on_error: migration::OnError::Abort,
    };
    migration::parse(text, Path::new("fuzz/migration.sql"), &defaults).is_ok()
}

/// The line that separates a scenario input's TOML from its `--set` lines.
pub const SET_MARKER: &str = "#--set";

/// A scenario file plus `--set` overrides: the input is the scenario TOML,
/// optionally followed by a line `#--set` and one `DOTTED.KEY=VALUE` per
/// line. The scenario is loaded from a directory that also holds a valid
/// `seed.sql`, `workload.toml` (with `{{rows}}`) and `migration.sql`, so
/// everything `scenario::load` checks is reached. Inputs with a `/` or `\`
/// are skipped: a fuzzed path must not reach files outside that directory
/// (`/dev/zero` would never end).
pub fn scenario(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else { return false };
    if text.contains(['/', '\\']) {
        return false;
    }
    let (toml, sets) = match text.split_once(&format!("\n{SET_MARKER}\n")) {
        Some((toml, sets)) => (toml, sets.lines().map(str::to_string).collect()),
        None => (text, Vec::new()),
    };
    let path = scenario_dir().join("scenario.toml");
    std::fs::write(&path, toml).expect("write the fuzzed scenario");
    let opts = RunOptions { set: sets, ..Default::default() };
    scenario::load(Some(&path), &opts).is_ok()
}

static SCENARIO_DIR: OnceLock<PathBuf> = OnceLock::new();

/// A directory (one per process) with the files a fuzzed scenario refers to.
fn scenario_dir() -> &'static PathBuf {
    SCENARIO_DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("lockimpact-fuzz-scenario-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the fuzz scenario directory");
        let files = [
            ("seed.sql", "CREATE TABLE orders (id bigint PRIMARY KEY, status text);\n-- {{rows}} rows\n"),
            (
                "workload.toml",
                "[[class]]\nname = \"by_id\"\nweight = 1\nsql = \"SELECT status FROM orders WHERE id = $1\"\n\
                 params = [{ type = \"int\", min = 1, max = {{rows}} }]\n",
            ),
            (
                "extra.toml",
                "[[class]]\nname = \"report\"\nrate = 0.5\nhold = \"1s\"\nsql = \"SELECT count(*) FROM orders\"\n",
            ),
            (
                "migration.sql",
                "-- lockimpact: step \"add\" lock_timeout=1s\nALTER TABLE orders ADD COLUMN note text;\n",
            ),
        ];
        for (name, text) in files {
            std::fs::write(dir.join(name), text).expect("write a fuzz scenario file");
        }
        dir
    })
}

/// Removes the scenario directory (the regression test calls it when done).
pub fn cleanup() {
    if let Some(dir) = SCENARIO_DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}
