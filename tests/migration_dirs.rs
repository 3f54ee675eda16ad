//! Migration directories (issue 21): a fixture directory per format under
//! `tests/fixtures/migration-dirs/`, written for these tests with every
//! marker its tool knows. The pure tier reads each and checks groups, steps,
//! transaction modes and down parts; the server tier rehearses each end to
//! end on a real PostgreSQL whose snapshot has the tool's history table (the
//! first migration recorded as applied), and checks the pending choice.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use lockimpact::migration::dirs::{self, Format};
use lockimpact::migration::{Defaults, Migration, OnError, TxMode};

fn fixture(format: &str) -> PathBuf {
    common::repo().join("tests/fixtures/migration-dirs").join(format)
}

fn defaults() -> Defaults {
    Defaults {
        transaction: None,
        lock_timeout: Duration::ZERO,
        statement_timeout: Duration::ZERO,
        retries: 0,
        retry_backoff: Duration::from_millis(500),
        on_error: OnError::Abort,
    }
}

fn load(format: &str, named: bool) -> Migration {
    let f = Format::parse(format).unwrap();
    let dir = fixture(match format {
        "prisma" => "prisma/migrations",
        other => other,
    });
    dirs::load(&dir, named.then_some(f), None, None, &defaults()).unwrap_or_else(|e| panic!("{format}: {e}"))
}

/// (group name, transaction, statements per step, has down) of each group.
fn shape(m: &Migration) -> Vec<(String, TxMode, Vec<usize>, bool)> {
    m.groups
        .iter()
        .map(|g| {
            let steps = m.steps[g.steps.clone()].iter().map(|s| s.statements().len()).collect();
            (g.name.clone(), g.transaction, steps, g.down.is_some())
        })
        .collect()
}

fn row(name: &str, tx: TxMode, steps: &[usize], down: bool) -> (String, TxMode, Vec<usize>, bool) {
    (name.to_string(), tx, steps.to_vec(), down)
}

use TxMode::{File, None as Auto};

#[test]
fn every_format_is_detected() {
    for f in Format::ALL {
        if f == Format::GolangMigrate {
            continue; // golang-migrate and sqlx share a naming scheme: detection asks to name it
        }
        let m = load(f.name(), false);
        match &m.source {
            lockimpact::migration::Source::Dir { format, .. } => assert_eq!(*format, f, "{}", f.name()),
            other => panic!("{other:?}"),
        }
    }
    let e = dirs::load(&fixture("golang-migrate"), None, None, None, &defaults()).unwrap_err();
    assert!(e.message.contains("migration.format = \"golang-migrate\" or \"sqlx\""), "{}", e.message);
}

#[test]
fn flyway_versions_undo_conf_and_repeatable() {
    let m = load("flyway", true);
    assert_eq!(
        shape(&m),
        [
            row("V1__add_note.sql", File, &[1], true),
            row("V2__index_status.sql", Auto, &[1], false),
            row("V3__note_default.sql", File, &[1, 1], false),
            row("R__order_totals.sql", File, &[1], false),
        ]
    );
    assert_eq!(m.groups[3].version, None);
    assert!(m.groups[3].checksum.is_some());
    assert_eq!(m.groups[0].down.as_ref().unwrap().transaction, File);
}

#[test]
fn golang_migrate_one_string_and_own_transaction() {
    let m = load("golang-migrate", true);
    assert_eq!(
        shape(&m),
        [
            row("000001_add_note.up.sql", Auto, &[1], true),
            row("000002_index_status.up.sql", Auto, &[1], true),
            row("000003_note_default.up.sql", File, &[1, 1], true),
        ]
    );
}

#[test]
fn goose_annotations() {
    let m = load("goose", true);
    assert_eq!(
        shape(&m),
        [
            row("00001_add_note.sql", File, &[1], true),
            row("00002_index_status.sql", Auto, &[1], true),
            row("00003_note_trigger.sql", File, &[1, 1], true),
        ]
    );
    let function = &m.steps[m.groups[2].steps.start].statements()[0].sql;
    assert!(function.starts_with("CREATE FUNCTION") && function.ends_with("$$;"), "{function}");
    assert_eq!(m.groups[2].down.as_ref().unwrap().steps.len(), 2);
}

#[test]
fn dbmate_markers() {
    let m = load("dbmate", true);
    assert_eq!(
        shape(&m),
        [
            row("20240101000000_add_note.sql", File, &[1], true),
            row("20240102000000_index_status.sql", Auto, &[1], true),
            row("20240103000000_note_default.sql", File, &[1, 1], true),
        ]
    );
    assert_eq!(m.groups[1].down.as_ref().unwrap().transaction, Auto);
}

#[test]
fn sqitch_plan_scripts_and_rework() {
    let m = load("sqitch", true);
    assert_eq!(
        shape(&m),
        [
            row("deploy/add_note.sql", File, &[1], true),
            row("deploy/index_status.sql", Auto, &[1], true),
            row("deploy/note_default@v1.1.sql", File, &[1], true),
            row("deploy/note_default.sql", File, &[1, 1], true),
        ]
    );
    assert!(m.groups.iter().take(2).all(|g| g.verify.is_some()));
    assert_eq!(m.groups[3].version.as_deref(), Some("note_default"));
    match &m.source {
        lockimpact::migration::Source::Dir { project, .. } => assert_eq!(project.as_deref(), Some("orders")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn liquibase_changesets() {
    let m = load("liquibase", true);
    assert_eq!(
        shape(&m),
        [
            row("changelog.sql jane:add-note", File, &[1], true),
            row("changelog.sql jane:index-status", Auto, &[1], true),
            row("changelog.sql joe:note-function", File, &[1], true),
            row("changelog.sql joe:note-default", File, &[1, 1], true),
        ]
    );
    assert_eq!(m.groups[3].version.as_deref(), Some("joe:note-default"));
}

#[test]
fn prisma_drizzle_sqlx_diesel() {
    assert_eq!(
        shape(&load("prisma", true)),
        [
            row("20240101000000_add_note/migration.sql", Auto, &[1], false),
            row("20240102000000_index_status/migration.sql", Auto, &[1], false),
            row("20240103000000_note_default/migration.sql", File, &[1, 1], false),
        ]
    );
    let drizzle = load("drizzle", true);
    assert!(drizzle.one_transaction);
    assert_eq!(
        shape(&drizzle),
        [
            row("0000_add_note.sql", File, &[1], false),
            row("0001_note_default.sql", File, &[1, 1], false),
            row("0002_index_status.sql", File, &[1], false),
        ]
    );
    assert_eq!(drizzle.groups[1].version.as_deref(), Some("1704153600000"));
    assert_eq!(
        shape(&load("sqlx", true)),
        [
            row("1_add_note.up.sql", File, &[1], true),
            row("2_index_status.up.sql", Auto, &[1], true),
            row("3_note_default.sql", File, &[1, 1], false),
        ]
    );
    let diesel = load("diesel", true);
    assert_eq!(
        shape(&diesel),
        [
            row("2024-01-01-000000_add_note/up.sql", File, &[1], true),
            row("2024-01-02-000000_index_status/up.sql", Auto, &[1], true),
            row("2024-01-03-000000_note_default/up.sql", File, &[1, 1], true),
        ]
    );
    assert_eq!(diesel.groups[0].version.as_deref(), Some("20240101000000"));
}

// ---- server tier: each fixture rehearsed on a real PostgreSQL ----

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
