//! Migration directories (issue 21), server part: each fixture of
//! `tests/fixtures/migration-dirs/` rehearsed end to end on a real PostgreSQL
//! whose snapshot has the tool's history table (the first migration recorded
//! as applied), checking the pending choice. `pure::migration_dirs` reads
//! the same fixtures without a server.

use std::path::PathBuf;

use crate::common;
use crate::pure::migration_dirs::fixture;

/// What every snapshot of these tests holds besides the orders dataset: the
/// first migration of each fixture, already applied.
const FIRST_MIGRATION: &str = "ALTER TABLE orders ADD COLUMN note text;\n";

/// A scenario on the orders dataset (10 000 rows) whose snapshot also runs
/// `extra_seed` (a history table), rehearsing `dir` as `format`.
fn dir_scenario(tmp: &std::path::Path, dir: &std::path::Path, format: &str, extra_seed: &str) -> PathBuf {
    let seed = std::fs::read_to_string(common::repo().join("workloads/orders/seed.sql")).unwrap();
    std::fs::write(tmp.join("seed.sql"), format!("{seed}\n{extra_seed}")).unwrap();
    let toml = format!(
        r#"name = "{format}-dir"
[vars]
rows = 10000
customers = 1000
[snapshot]
seed = "seed.sql"
[workload]
file = "{workload}"
rate = 50
connections = 4
[phases]
warmup = "200ms"
baseline = "1s"
cooldown = "300ms"
[migration]
dir = "{dir}"
format = "{format}"
"#,
        workload = common::repo().join("workloads/orders/workload.toml").display(),
        dir = dir.display(),
    );
    let path = tmp.join("scenario.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// Rehearses `format`'s fixture on a snapshot whose history table
/// (`history`, SQL) records the first migration as applied; checks that the
/// pending ones ran, in the right transaction modes, and the first did not.
fn rehearse_pending(format: &str, history: &str, table: &str, first: &str, expect: &[(String, String, u64)]) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture(if format == "prisma" { "prisma/migrations" } else { format });
    let scenario = dir_scenario(tmp.path(), &dir, format, &format!("{FIRST_MIGRATION}{history}"));
    let out = common::run(&[scenario.to_str().unwrap()]);
    let r = out.report();
    assert_eq!(out.code, 0, "{format}: exit {}\n{}\n{}", out.code, out.stdout, out.stderr);
    assert_eq!(common::groups(r), expect, "{format}\n{}", out.stdout);
    let sel = &r["migration"]["selection"];
    assert_eq!(sel["format"], format);
    assert_eq!(sel["history_table"], table, "{format}");
    assert_eq!(sel["applied"], serde_json::json!([first]), "{format}");
    assert_eq!(r["migration"]["committed"], true, "{format}: {}", out.stdout);
    let steps = r["steps"].as_array().unwrap();
    assert_eq!(steps.len() as u64, expect.iter().map(|e| e.2).sum::<u64>(), "{format}");
    assert!(steps.iter().all(|s| s["outcome"] == "ok"), "{format}: {}", out.stdout);
    assert!(out.stdout.contains("Migration files of"), "{format}: {}", out.stdout);
}

const FLYWAY_HISTORY: &str = "CREATE TABLE flyway_schema_history (installed_rank int PRIMARY KEY, version varchar(50), \
        description varchar(200) NOT NULL, type varchar(20) NOT NULL, script varchar(1000) NOT NULL, checksum int, \
        installed_by varchar(100) NOT NULL, installed_on timestamp NOT NULL DEFAULT now(), execution_time int NOT NULL, \
        success boolean NOT NULL);\n\
        INSERT INTO flyway_schema_history VALUES (1, '1', 'add note', 'SQL', 'V1__add_note.sql', 1, 'ci', now(), 3, true);\n";

#[test]
fn flyway_rehearses_pending_after_flyway_schema_history() {
    rehearse_pending(
        "flyway",
        FLYWAY_HISTORY,
        "flyway_schema_history",
        "V1__add_note.sql",
        &[
            common::group("V2__index_status.sql", "none", 1),
            common::group("V3__note_default.sql", "file", 2),
            common::group("R__order_totals.sql", "file", 1),
        ],
    );
}

#[test]
fn golang_migrate_rehearses_pending_after_schema_migrations() {
    let history = "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);\n\
        INSERT INTO schema_migrations VALUES (1, false);\n";
    rehearse_pending(
        "golang-migrate",
        history,
        "schema_migrations",
        "000001_add_note.up.sql",
        &[
            common::group("000002_index_status.up.sql", "none", 1),
            common::group("000003_note_default.up.sql", "file", 2),
        ],
    );
}

#[test]
fn goose_rehearses_pending_after_goose_db_version() {
    let history = "CREATE TABLE goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL, \
        is_applied boolean NOT NULL, tstamp timestamp DEFAULT now());\n\
        INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), (1, true), (2, true), (2, false);\n";
    rehearse_pending(
        "goose",
        history,
        "goose_db_version",
        "00001_add_note.sql",
        &[common::group("00002_index_status.sql", "none", 1), common::group("00003_note_trigger.sql", "file", 2)],
    );
}

#[test]
fn dbmate_rehearses_pending_after_schema_migrations() {
    let history = "CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY);\n\
        INSERT INTO schema_migrations VALUES ('20240101000000');\n";
    rehearse_pending(
        "dbmate",
        history,
        "schema_migrations",
        "20240101000000_add_note.sql",
        &[
            common::group("20240102000000_index_status.sql", "none", 1),
            common::group("20240103000000_note_default.sql", "file", 2),
        ],
    );
}

#[test]
fn sqitch_rehearses_pending_after_sqitch_changes() {
    let history = "CREATE SCHEMA sqitch;\n\
        CREATE TABLE sqitch.changes (change_id text PRIMARY KEY, script_hash text, change text NOT NULL, \
        project text NOT NULL, note text NOT NULL DEFAULT '', committed_at timestamptz NOT NULL DEFAULT now());\n\
        INSERT INTO sqitch.changes (change_id, change, project) VALUES ('a1', 'add_note', 'orders'), \
        ('b2', 'index_status', 'another_project');\n";
    rehearse_pending(
        "sqitch",
        history,
        "sqitch.changes",
        "deploy/add_note.sql",
        &[
            common::group("deploy/index_status.sql", "none", 1),
            common::group("deploy/note_default@v1.1.sql", "file", 1),
            common::group("deploy/note_default.sql", "file", 2),
        ],
    );
}

#[test]
fn liquibase_rehearses_pending_after_databasechangelog() {
    let history = "CREATE TABLE databasechangelog (id varchar(255) NOT NULL, author varchar(255) NOT NULL, \
        filename varchar(255) NOT NULL, dateexecuted timestamp NOT NULL, orderexecuted int NOT NULL, \
        exectype varchar(10) NOT NULL, md5sum varchar(35));\n\
        INSERT INTO databasechangelog VALUES ('add-note', 'jane', 'changelog.sql', now(), 1, 'EXECUTED', '9:x');\n";
    rehearse_pending(
        "liquibase",
        history,
        "databasechangelog",
        "changelog.sql jane:add-note",
        &[
            common::group("changelog.sql jane:index-status", "none", 1),
            common::group("changelog.sql joe:note-function", "file", 1),
            common::group("changelog.sql joe:note-default", "file", 2),
        ],
    );
}

#[test]
fn prisma_rehearses_pending_after_prisma_migrations() {
    let history = "CREATE TABLE _prisma_migrations (id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL, \
        finished_at timestamptz, migration_name varchar(255) NOT NULL, logs text, rolled_back_at timestamptz, \
        started_at timestamptz NOT NULL DEFAULT now(), applied_steps_count int NOT NULL DEFAULT 0);\n\
        INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name) VALUES \
        ('1', 'c', now(), '20240101000000_add_note');\n\
        INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, rolled_back_at) VALUES \
        ('2', 'c', now(), '20240102000000_index_status', now());\n";
    rehearse_pending(
        "prisma",
        history,
        "_prisma_migrations",
        "20240101000000_add_note/migration.sql",
        &[
            common::group("20240102000000_index_status/migration.sql", "none", 1),
            common::group("20240103000000_note_default/migration.sql", "file", 2),
        ],
    );
}

#[test]
fn drizzle_rehearses_pending_after_drizzle_migrations() {
    let history = "CREATE SCHEMA drizzle;\n\
        CREATE TABLE drizzle.__drizzle_migrations (id serial PRIMARY KEY, hash text NOT NULL, created_at bigint);\n\
        INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES ('h0', 1704067200000);\n";
    rehearse_pending(
        "drizzle",
        history,
        "drizzle.__drizzle_migrations",
        "0000_add_note.sql",
        &[common::group("0001_note_default.sql", "file", 2), common::group("0002_index_status.sql", "file", 1)],
    );
}

#[test]
fn sqlx_rehearses_pending_after_sqlx_migrations() {
    let history = "CREATE TABLE _sqlx_migrations (version bigint PRIMARY KEY, description text NOT NULL, \
        installed_on timestamptz NOT NULL DEFAULT now(), success boolean NOT NULL, checksum bytea NOT NULL, \
        execution_time bigint NOT NULL);\n\
        INSERT INTO _sqlx_migrations VALUES (1, 'add note', now(), true, '\\x00', 1), (2, 'index status', now(), false, '\\x00', 1);\n";
    rehearse_pending(
        "sqlx",
        history,
        "_sqlx_migrations",
        "1_add_note.up.sql",
        &[common::group("2_index_status.up.sql", "none", 1), common::group("3_note_default.sql", "file", 2)],
    );
}

#[test]
fn diesel_rehearses_pending_after_diesel_schema_migrations() {
    let history = "CREATE TABLE __diesel_schema_migrations (version varchar(50) PRIMARY KEY NOT NULL, \
        run_on timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP);\n\
        INSERT INTO __diesel_schema_migrations (version) VALUES ('20240101000000');\n";
    rehearse_pending(
        "diesel",
        history,
        "__diesel_schema_migrations",
        "2024-01-01-000000_add_note/up.sql",
        &[
            common::group("2024-01-02-000000_index_status/up.sql", "none", 1),
            common::group("2024-01-03-000000_note_default/up.sql", "file", 2),
        ],
    );
}

#[test]
fn from_applies_earlier_pending_migrations_before_the_baseline() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario =
        dir_scenario(tmp.path(), &fixture("flyway"), "flyway", &format!("{FIRST_MIGRATION}{FLYWAY_HISTORY}"));
    let out = common::run(&[scenario.to_str().unwrap(), "--from", "3"]);
    let r = out.report();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        common::groups(r),
        [common::group("V3__note_default.sql", "file", 2), common::group("R__order_totals.sql", "file", 1)]
    );
    let sel = &r["migration"]["selection"];
    assert_eq!(sel["from"], "3");
    assert_eq!(sel["applied"], serde_json::json!(["V1__add_note.sql"]));
    assert_eq!(sel["applied_before_baseline"], serde_json::json!(["V2__index_status.sql"]));
    assert!(sel["setup_ms"].as_f64().unwrap() > 0.0);
    let warnings = r["warnings"].to_string();
    assert!(warnings.contains("applied before the baseline, unmeasured: V2__index_status.sql"), "{warnings}");
    // The index V2 builds exists when V3 runs: its UPDATE maintained it.
    let update =
        r["steps"].as_array().unwrap().iter().find(|s| s["name"].as_str().unwrap().starts_with("UPDATE")).unwrap();
    assert!(update["locks"].to_string().contains("orders_status_idx"), "{update}");
    assert!(out.stdout.contains("applied before the baseline, unmeasured"), "{}", out.stdout);
    assert!(out.stderr.contains("applying 1 before the baseline, unmeasured: V2__index_status.sql"), "{}", out.stderr);
}

#[test]
fn without_a_history_table_every_migration_is_rehearsed() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = dir_scenario(tmp.path(), &fixture("goose"), "goose", "");
    let out = common::run(&[scenario.to_str().unwrap()]);
    let r = out.report();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        common::groups(r),
        [
            common::group("00001_add_note.sql", "file", 1),
            common::group("00002_index_status.sql", "none", 1),
            common::group("00003_note_trigger.sql", "file", 2)
        ]
    );
    assert_eq!(r["migration"]["transaction"], "mixed");
    assert!(r["migration"]["groups"].as_array().unwrap().iter().all(|g| g["has_down"] == true));
    assert_eq!(r["migration"]["selection"]["history_table"], serde_json::Value::Null);
    assert!(
        r["warnings"].to_string().contains("the snapshot has no goose_db_version: every migration"),
        "{}",
        r["warnings"]
    );
    // Each step points at its group.
    let groups: Vec<u64> = r["steps"].as_array().unwrap().iter().map(|s| s["group"].as_u64().unwrap()).collect();
    assert_eq!(groups, [0, 1, 2, 2]);
}
