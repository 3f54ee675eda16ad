//! Migrations that are not a lockimpact `.sql` file (issue 21): SQL that
//! Django's `sqlmigrate` and Alembic's `upgrade --sql` print, read from
//! standard input (`--migration -`), and `migration.command`, a framework
//! run against the clone whose statements are captured from the clone's own
//! log (here a small script that sends DDL through psql). Every test runs
//! the real binary on a real PostgreSQL it starts.

use crate::common;

use std::io::Write;
use std::process::Stdio;

/// `lockimpact run SCENARIO --migration - --json …` with `sql` on standard input.
fn run_stdin(scenario: &std::path::Path, sql: &str) -> common::Outcome {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("report.json");
    let mut child = common::bin()
        .args(["run", scenario.to_str().unwrap(), "--migration", "-", "--json"])
        .arg(&json)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(sql.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = std::fs::read_to_string(&json).ok().map(|t| serde_json::from_str(&t).unwrap());
    common::Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report,
    }
}

/// What `python manage.py sqlmigrate orders 0002` prints for an atomic migration.
const DJANGO: &str = r#"BEGIN;
--
-- Add field note to order
--
ALTER TABLE "orders" ADD COLUMN "note" text NULL;
--
-- Create index orders_status_idx on field(s) status of model order
--
CREATE INDEX "orders_status_idx" ON "orders" ("status");
COMMIT;
"#;

#[test]
fn django_sqlmigrate_from_stdin_is_one_transaction() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = common::tiny_scenario(tmp.path(), "SELECT 1;\n", "");
    let out = run_stdin(&scenario, DJANGO);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let r = out.report();
    assert_eq!(r["scenario"]["migration_file"], "stdin");
    assert_eq!(r["migration"]["transaction"], "file");
    assert_eq!(common::groups(r), [common::group("stdin", "file", 2)]);
    let steps = r["steps"].as_array().unwrap();
    assert_eq!(steps[0]["name"], r#"ALTER TABLE "orders" ADD COLUMN "note" text NULL"#);
    // One transaction: the index step still holds the ALTER's lock.
    assert!(steps[1]["locks"].to_string().contains("AccessExclusiveLock"), "{}", steps[1]);
}

/// What `alembic upgrade base:ae1027a6acf --sql` prints with
/// `transaction_per_migration = True`.
const ALEMBIC: &str = r#"BEGIN;

CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL, 
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

-- Running upgrade  -> 1975ea83b712

ALTER TABLE orders ADD COLUMN note TEXT;

INSERT INTO alembic_version (version_num) VALUES ('1975ea83b712') RETURNING alembic_version.version_num;

COMMIT;

BEGIN;

-- Running upgrade 1975ea83b712 -> ae1027a6acf

ALTER TABLE orders ALTER COLUMN note SET DEFAULT '';

UPDATE alembic_version SET version_num='ae1027a6acf' WHERE alembic_version.version_num = '1975ea83b712';

COMMIT;

"#;

#[test]
fn alembic_offline_sql_from_stdin_is_one_group_per_transaction() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = common::tiny_scenario(tmp.path(), "SELECT 1;\n", "");
    let out = run_stdin(&scenario, ALEMBIC);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let r = out.report();
    assert_eq!(
        common::groups(r),
        [common::group("stdin [lines 3-12]", "file", 3), common::group("stdin [lines 20-22]", "file", 2)]
    );
    assert!(r["steps"].as_array().unwrap().iter().all(|s| s["outcome"] == "ok"));
    assert!(out.stdout.contains("Migration files of stdin"), "{}", out.stdout);
}

/// A stand-in for `bin/rails db:migrate`: DDL sent through psql with the
/// connection from the environment, in two sessions; the second fails.
const MIGRATE_SH: &str = r#"#!/bin/sh
set -e
test -n "$DATABASE_URL"
psql -X -v ON_ERROR_STOP=1 -q <<'SQL'
BEGIN;
ALTER TABLE orders ADD COLUMN note text;
LOCK TABLE orders IN SHARE MODE;
SELECT pg_sleep(0.5);
COMMIT;
CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status);
SQL
echo "migrated 2 of 3"
psql "$DATABASE_URL" -X -v ON_ERROR_STOP=1 -q -c 'ALTER TABLE no_such_table ADD COLUMN x int'
"#;

#[test]
fn command_statements_are_captured_from_the_clone_log() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("migrate.sh"), MIGRATE_SH).unwrap();
    let scenario = common::tiny_scenario(tmp.path(), "SELECT 1;\n", "");
    let text =
        std::fs::read_to_string(&scenario).unwrap().replace("file = \"migration.sql\"", "command = \"sh migrate.sh\"");
    std::fs::write(&scenario, text).unwrap();
    let out = common::run(&[scenario.to_str().unwrap()]);
    let r = out.report();
    // The last statement fails, so the migration does not complete: exit 1.
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        common::groups(r),
        [
            common::group("transaction 1", "file", 3),
            common::group("autocommit statements 1", "none", 1),
            common::group("autocommit statements 2", "none", 1)
        ]
    );
    let steps = r["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "ALTER TABLE orders ADD COLUMN note text",
            "LOCK TABLE orders IN SHARE MODE",
            "SELECT pg_sleep(0.5)",
            "CREATE INDEX CONCURRENTLY orders_status_idx ON orders (stat…",
            "ALTER TABLE no_such_table ADD COLUMN x int",
        ]
    );
    // Timing from the log: the sleep lasted its 500 ms.
    let sleep = steps[2]["duration_ms"].as_f64().unwrap();
    assert!((500.0..2000.0).contains(&sleep), "{sleep}");
    // Locks as the sampler saw them during the sleep (the ALTER's is still held),
    // and the workload sessions it blocked.
    assert!(
        steps[2]["locks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["relation"] == "orders" && l["mode"] == "AccessExclusiveLock"),
        "{}",
        steps[2]
    );
    assert!(steps[2]["blocked_ms"].as_f64().unwrap() > 0.0, "{}", steps[2]);
    assert!(r["blocked"]["by_migration_sessions"].as_u64().unwrap() >= 1);
    // The failed statement: outcome and SQLSTATE from the log.
    assert_eq!(steps[4]["outcome"], "error");
    assert_eq!(steps[4]["sqlstate"], "42P01");
    assert!(steps[4]["error"].as_str().unwrap().contains("no_such_table"));
    let cmd = &r["migration"]["command"];
    assert_eq!(cmd["exit_code"], 1);
    assert_eq!(cmd["sessions"], 2);
    assert!(cmd["output_tail"].as_str().unwrap().contains("migrated 2 of 3"), "{cmd}");
    assert!(cmd["wal_bytes"].as_u64().unwrap() > 0);
    assert_eq!(r["migration"]["committed"], false);
    assert!(out.stderr.contains("5 statements captured from the clone's log"), "{}", out.stderr);
}
