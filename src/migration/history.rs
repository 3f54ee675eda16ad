//! Which migrations of a directory a rehearsal runs. On the fresh copy, the
//! tool's history table (when the snapshot has it) says which are applied;
//! the pending ones are rehearsed. With `--from VERSION`, pending ones
//! before it are applied first, before the baseline and unmeasured (the
//! report lists them), and the rehearsal starts at VERSION. Without a
//! history table every migration is pending, and with `--from` the earlier
//! ones are taken to be in the snapshot already. Nothing is written to the
//! history table.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::dirs::Applied;
use super::{Migration, Source, TxMode};
use crate::error::{Error, Result, describe_pg};
use crate::run_record::Selection;

/// What a rehearsal runs, and what is applied before it.
#[derive(Debug)]
pub struct Chosen {
    /// Rehearsed and measured.
    pub run: Migration,
    /// Applied before the baseline, unmeasured.
    pub before: Migration,
    pub selection: Option<Selection>,
}

/// Chooses the groups to rehearse on the database `client` is connected to
/// (a directory's pending migrations; all of any other migration).
pub async fn choose(m: &Migration, client: &Client) -> Result<Chosen> {
    let Source::Dir { path, format, from, history_table, project } = &m.source else {
        return Ok(Chosen { run: m.clone(), before: m.subset(&[]), selection: None });
    };
    let table: Option<String> = client
        .query_one("SELECT to_regclass($1)::text", &[history_table])
        .await
        .map_err(|e| Error::db(format!("cannot look for the history table {history_table}: {}", describe_pg(&e))))?
        .get(0);
    let applied = match &table {
        None => None,
        Some(t) => {
            let sql = format.history_sql().replace("{table}", t);
            let rows = client.query(sql.as_str(), &[]).await.map_err(|e| {
                Error::input(format!(
                    "{t} exists in the snapshot but cannot be read as {}'s history table ({}); if it belongs to \
                     another tool, name the right one with migration.history_table",
                    format.name(),
                    describe_pg(&e)
                ))
            })?;
            let rows: Vec<Vec<String>> = rows
                .iter()
                .map(|r| (0..r.len()).map(|i| r.get::<_, Option<String>>(i).unwrap_or_default()).collect())
                .collect();
            Some(format.applied(&m.groups, &rows, project.as_deref()))
        }
    };
    let from_index =
        from.as_ref().and_then(|v| m.groups.iter().position(|g| g.version.as_ref() == Some(v) || &g.name == v));
    let mut selection = Selection {
        format: format.name().to_string(),
        history_table: table.clone(),
        from: from.clone(),
        found: m.groups.len(),
        notes: m.notes.clone(),
        ..Default::default()
    };
    let (run, before) = split(m, applied, from_index, &mut selection, history_table);
    if run.is_empty() {
        return Err(Error::input(format!(
            "{}: nothing to rehearse: {}",
            path.display(),
            match (&table, from) {
                (Some(t), None) => format!("{t} records every migration as applied; rehearse one with --from VERSION"),
                (Some(t), Some(v)) => format!("{t} records every migration from {v} on as applied"),
                (None, _) => "no migration from --from on".to_string(),
            }
        )));
    }
    Ok(Chosen { run: m.subset(&run), before: m.subset(&before), selection: Some(selection) })
}

/// (rehearsed, applied before the baseline) group indexes, and the notes.
fn split(
    m: &Migration,
    applied: Option<Applied>,
    from: Option<usize>,
    sel: &mut Selection,
    history_table: &str,
) -> (Vec<usize>, Vec<usize>) {
    let n = m.groups.len();
    let from = from.unwrap_or(0);
    let (mut run, mut before) = (Vec::new(), Vec::new());
    match applied {
        Some(a) => {
            sel.notes.extend(a.notes);
            for i in 0..n {
                match (a.applied[i], i < from) {
                    (true, _) => sel.applied.push(m.groups[i].name.clone()),
                    (false, true) => before.push(i),
                    (false, false) => run.push(i),
                }
            }
        }
        None => {
            run.extend(from..n);
            sel.notes.push(match sel.from.as_deref() {
                None => format!("the snapshot has no {history_table}: every migration of the directory is rehearsed"),
                Some(v) => format!(
                    "the snapshot has no {history_table}: the {from} migrations before {v} are taken to be in the \
                     snapshot already"
                ),
            });
        }
    }
    sel.applied_before_baseline = before.iter().map(|&i| m.groups[i].name.clone()).collect();
    (run, before)
}

/// Applies `m` as its tool would, unmeasured (the migrations before
/// `--from` that the snapshot lacks); returns how long it took.
pub async fn apply(client: &Client, m: &Migration) -> Result<Duration> {
    let started = Instant::now();
    for g in &m.groups {
        let fail = |e: tokio_postgres::Error| {
            Error::input(format!(
                "{} (pending before --from, applied before the baseline) failed: {}",
                g.name,
                describe_pg(&e)
            ))
        };
        let tx = g.transaction == TxMode::File || m.one_transaction;
        if tx {
            client.batch_execute("BEGIN").await.map_err(fail)?;
        }
        for step in &m.steps[g.steps.clone()] {
            super::runner::apply_step(client, step).await.map_err(fail)?;
        }
        if tx {
            client.batch_execute("COMMIT").await.map_err(fail)?;
        }
    }
    Ok(started.elapsed())
}
