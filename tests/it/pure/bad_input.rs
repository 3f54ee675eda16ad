//! Bad input fails before anything starts: exit code 2 and a message naming
//! the file and the line or key. No server is started for any of these.

use std::path::Path;

use crate::common::*;

/// Runs with a valid tiny scenario whose files were then broken by `edit`;
/// returns stderr after checking the exit code and that no server started.
fn fails(edit: impl FnOnce(&Path), args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    tiny_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN note text;\n", "");
    edit(dir.path());
    let scenario = dir.path().join("scenario.toml");
    let mut all = vec![scenario.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = run(&all);
    assert_eq!(o.code, 2, "stdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
    assert!(!o.stderr.contains("lockimpact: server:"), "a server was started:\n{}", o.stderr);
    assert!(o.report.is_none());
    o.stderr
}

fn replace(dir: &Path, file: &str, from: &str, to: &str) {
    let p = dir.join(file);
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "{from:?} not in {file}");
    std::fs::write(&p, text.replace(from, to)).unwrap();
}

#[test]
fn missing_scenario_file() {
    let o = run(&["no/such/scenario.toml"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("no/such/scenario.toml: cannot read the scenario file"), "{}", o.stderr);
}

#[test]
fn scenario_syntax_error_names_the_line() {
    let err = fails(|d| replace(d, "scenario.toml", "rate = 100", "rate = = 100"), &[]);
    assert!(err.contains("scenario.toml: line 9"), "{err}");
}

#[test]
fn unknown_scenario_key_is_named() {
    let err = fails(|d| replace(d, "scenario.toml", "rate = 100", "rate = 100\nconection = 3"), &[]);
    assert!(err.contains("scenario.toml") && err.contains("conection"), "{err}");
}

#[test]
fn wrong_type_is_named() {
    let err = fails(|d| replace(d, "scenario.toml", "connections = 4", "connections = \"four\""), &[]);
    assert!(err.contains("scenario.toml: line 10") && err.contains("four"), "{err}");
}

#[test]
fn zero_rate_is_refused() {
    let err = fails(|_| {}, &["--set", "workload.rate=0"]);
    assert!(err.contains("workload.rate"), "{err}");
}

#[test]
fn negative_duration_is_refused() {
    let err = fails(|d| replace(d, "scenario.toml", "baseline = \"1s\"", "baseline = \"-1s\""), &[]);
    assert!(err.contains("scenario.toml: line 13") && err.contains("negative"), "{err}");
}

#[test]
fn set_with_unknown_key_is_named() {
    let err = fails(|_| {}, &["--set", "phases.basline=2s"]);
    assert!(err.contains("basline"), "{err}");
}

#[test]
fn replica_budgets_without_a_standby_are_refused_naming_the_key() {
    for (key, value) in [
        ("max_replica_lag", "1s"),
        ("max_replica_lag_bytes", "1000"),
        ("max_standby_cancels", "0"),
        ("max_standby_blocked", "500ms"),
    ] {
        let err = fails(|_| {}, &["--set", &format!("budget.{key}={value}")]);
        let expected = format!("budget.{key} judges the clone's standbys, but it gets none");
        assert!(err.contains(&expected), "{key}: {err}");
    }
    let err = fails(|_| {}, &["--set", "budget.max_sync_commit_added=50ms", "--replicas", "1"]);
    assert!(err.contains("budget.max_sync_commit_added judges the commit latency a synchronous standby adds"), "{err}");
    let err = fails(|_| {}, &["--set", "budget.max_subscriber_errors=0", "--replicas", "1"]);
    assert!(err.contains("budget.max_subscriber_errors judges the logical subscriber"), "{err}");
    let err = fails(|_| {}, &["--set", "budget.max_standby_blocked=soon", "--replicas", "1"]);
    assert!(err.contains("max_standby_blocked"), "{err}");
    let err = fails(|_| {}, &["--set", "replica.interval=20s", "--replicas", "1"]);
    assert!(err.contains("replica.interval = 20s: poll from every 1ms to every 10s"), "{err}");
}

#[test]
fn missing_migration_file_is_named() {
    let err = fails(|d| std::fs::remove_file(d.join("migration.sql")).unwrap(), &[]);
    assert!(err.contains("migration.sql: cannot read the migration"), "{err}");
}

#[test]
fn migration_syntax_error_names_line_and_statement() {
    let err = fails(
        |d| {
            std::fs::write(
                d.join("migration.sql"),
                "ALTER TABLE orders ADD COLUMN a int;\n\nALTER TABEL orders ADD b int;\n",
            )
            .unwrap()
        },
        &[],
    );
    assert!(err.contains("migration.sql:3: statement 2"), "{err}");
}

#[test]
fn unknown_directive_is_named() {
    let err = fails(
        |d| {
            std::fs::write(d.join("migration.sql"), "-- lockimpact: stpe \"x\"\nALTER TABLE orders ADD COLUMN a int;\n")
                .unwrap()
        },
        &[],
    );
    assert!(err.contains("migration.sql:1: unknown directive \"stpe\""), "{err}");
}

#[test]
fn concurrently_inside_a_transaction_is_refused() {
    let err = fails(
        |d| {
            std::fs::write(
                d.join("migration.sql"),
                "-- lockimpact: transaction file\nCREATE INDEX CONCURRENTLY i ON orders (status);\n",
            )
            .unwrap()
        },
        &[],
    );
    assert!(err.contains("migration.sql") && err.contains("CONCURRENTLY"), "{err}");
}

/// Runs the tiny scenario with its workload replaced by `workload` (w.toml).
fn with_workload(workload: &str) -> String {
    fails(
        |d| {
            std::fs::write(d.join("w.toml"), workload).unwrap();
            let text = std::fs::read_to_string(d.join("scenario.toml")).unwrap();
            let text: String =
                text.lines()
                    .map(|l| {
                        if l.starts_with("file = ") && l.ends_with("workload.toml\"") { "file = \"w.toml\"" } else { l }
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
            std::fs::write(d.join("scenario.toml"), text).unwrap();
        },
        &[],
    )
}

#[test]
fn workload_bad_param_range_is_named() {
    let err = with_workload(
        "[[class]]\nname = \"q\"\nweight = 1\nsql = \"SELECT $1::int\"\nparams = [{ type = \"int\", min = 5, max = 1 }]\n",
    );
    assert!(err.contains("w.toml") && err.contains("min"), "{err}");
}

#[test]
fn workload_sql_syntax_error_is_named() {
    let err = with_workload("[[class]]\nname = \"q\"\nweight = 1\nsql = \"SELEC 1\"\n");
    assert!(err.contains("w.toml") && err.contains("\"q\""), "{err}");
}

#[test]
fn workload_unknown_key_names_the_line() {
    let err = with_workload("[[class]]\nname = \"q\"\nweight = 1\nsql = \"SELECT 1\"\nwieght = 2\n");
    assert!(err.contains("w.toml") && err.contains("line 5") && err.contains("wieght"), "{err}");
}

#[test]
fn peak_rate_needs_a_recorded_workload() {
    let err = fails(|_| {}, &["--set", "workload.rate=peak"]);
    assert!(err.contains("workload.rate = \"peak\" needs peak_rate") && err.contains("workload.toml"), "{err}");
    let err = fails(|_| {}, &["--set", "workload.rate=fast"]);
    assert!(err.contains("workload.rate = \"fast\" is not a rate"), "{err}");
    let err = fails(|_| {}, &["--set", "workload.rate_multiplier=-1"]);
    assert!(err.contains("rate_multiplier must be greater than 0"), "{err}");
}

#[test]
fn replay_and_script_mistakes_are_named() {
    let err = fails(|d| replace(d, "scenario.toml", "rate = 100", "rate = 100\nreplay = \"s.jsonl\""), &[]);
    assert!(err.contains("file = \"workload.toml\"") && err.contains("replay"), "{err}");
    let err = fails(|_| {}, &["--set", "workload.speed=2"]);
    assert!(err.contains("workload.speed") && err.contains("replay only"), "{err}");
    let err = fails(
        |d| {
            replace(d, "scenario.toml", "rate = 100", "rate = 100\nextra = [\"extra.toml\"]");
            std::fs::write(
                d.join("extra.toml"),
                "[[class]]\nname = \"s\"\nweight = 1\nsql = \"SELECT 1\"\nscript = \"builtin:tpcb-like\"\n",
            )
            .unwrap();
        },
        &[],
    );
    assert!(err.contains("extra.toml: class \"s\": set exactly one of sql"), "{err}");
    let err = fails(
        |d| {
            replace(d, "scenario.toml", "rate = 100", "rate = 100\nextra = [\"extra.toml\"]");
            std::fs::write(d.join("extra.toml"), "[[class]]\nname = \"s\"\nweight = 1\nscript = \"builtin:nope\"\n")
                .unwrap();
        },
        &[],
    );
    assert!(err.contains("not a pgbench built-in"), "{err}");
    let err = fails(
        |d| {
            replace(d, "scenario.toml", "rate = 100", "rate = 100\nextra = [\"extra.toml\"]");
            std::fs::write(
                d.join("extra.toml"),
                "[[class]]\nname = \"s\"\nweight = 1\nsql = \"SELECT $1\"\nparams = [{ type = \"todo\", note = \"fill me\" }]\n",
            )
            .unwrap();
        },
        &[],
    );
    assert!(err.contains("extra.toml: class \"s\": params[0] ($1): a placeholder") && err.contains("fill me"), "{err}");
}
