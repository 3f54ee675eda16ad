//! Migration directories (issue 21): a fixture directory per format under
//! `tests/fixtures/migration-dirs/`, written for these tests with every
//! marker its tool knows. This (pure) part reads each and checks groups,
//! steps, transaction modes and down parts; `pg::migration_dirs` rehearses
//! each end to end on a real PostgreSQL.

use crate::common;

use std::path::PathBuf;
use std::time::Duration;

use lockimpact::migration::dirs::{self, Format};
use lockimpact::migration::{Defaults, Migration, OnError, TxMode};

pub fn fixture(format: &str) -> PathBuf {
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

/// `--rollback` appends each file's down part after the forward steps, the
/// last file's first, as groups of their own in the mode its tool runs it in.
#[test]
fn a_rollback_runs_the_down_files_in_reverse() {
    let m = load("goose", true);
    let r = m.with_rollback();
    let first = r.rollback_from.expect("a rollback");
    assert_eq!(first, m.steps.len());
    let names: Vec<&str> = r.groups[m.groups.len()..].iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        names,
        ["rollback of 00003_note_trigger.sql", "rollback of 00002_index_status.sql", "rollback of 00001_add_note.sql"]
    );
    let downs: usize = m.groups.iter().map(|g| g.down.as_ref().unwrap().steps.len()).sum();
    assert_eq!(r.steps.len(), m.steps.len() + downs);
    assert_eq!(r.groups.last().unwrap().steps.end, r.steps.len());
    assert!(r.notes.len() == m.notes.len(), "every file has a down part: {:?}", r.notes);
}
