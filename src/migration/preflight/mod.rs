//! Preflight data checks: before the workload starts, each statement that
//! can fail on the data (`detect`) gets its violating rows counted on a
//! copy of the dataset, with up to five examples: NULLs for `SET NOT NULL`
//! and a new primary key, rows a `CHECK` rejects, duplicates for `UNIQUE`,
//! `PRIMARY KEY` and `CREATE UNIQUE INDEX`, orphans for a foreign key,
//! values that do not convert for `ALTER COLUMN … TYPE`. A check sees the
//! data as the step would: when earlier steps come before it, they run
//! first, on a separate copy of the template in one transaction that is
//! rolled back (on the fresh copy itself when nothing comes before). The
//! checks themselves only read (the type check creates a temporary function
//! in that transaction). Their own cost is recorded.

pub mod detect;
mod queries;

use std::time::Instant;

use tokio_postgres::Client;

use super::{Migration, OnError, Step, StepKind, runner};
use crate::clone::Server;
use crate::clone::template::{self, connect};
use crate::error::{Error, Result, describe_pg};
use crate::run_record::{CheckRecord, PreflightRecord};
use detect::{Found, detect};
use queries::Query;

/// The copy of the template the checks run on when earlier steps must run first.
pub const PREFLIGHT_DB: &str = "lockimpact_preflight";

/// Examples shown per check.
pub const EXAMPLES: usize = 5;

/// Where a statement stands: (step index, statement index within the step).
type At = (usize, usize);

/// The statements of `m` with the checks they need, in order.
fn planned(m: &Migration) -> Vec<(At, usize, Vec<Found>)> {
    let mut out = Vec::new();
    for (i, step) in m.steps.iter().enumerate() {
        if let StepKind::Sql(statements) = &step.kind {
            for (k, s) in statements.iter().enumerate() {
                let found = detect(&s.sql);
                if !found.is_empty() {
                    out.push(((i, k), s.number, found));
                }
            }
        }
    }
    out
}

/// Runs the checks of `m` (after `before`, the migrations applied before the
/// baseline, on a separate copy). `None` when no statement needs one.
pub async fn run(
    server: &Server,
    run_db: &str,
    m: &Migration,
    before: &Migration,
    say: &(dyn Fn(&str) + Sync),
) -> Result<Option<PreflightRecord>> {
    let planned = planned(m);
    let Some(&(last, ..)) = planned.last() else { return Ok(None) };
    let started = Instant::now();
    let earlier_sql = m.steps.iter().enumerate().any(|(i, s)| (0..s.statements().len()).any(|k| (i, k) < last));
    let existing = server.existing_database().is_some();
    let (db, place, copy) = match (earlier_sql, existing) {
        (false, _) => (run_db, "on the run's fresh copy, before the workload; rolled back", false),
        (true, true) => {
            (run_db, "on the existing database, rolled back (no separate copy: later checks skipped)", false)
        }
        (true, false) => (PREFLIGHT_DB, "on a separate copy of the dataset, earlier steps applied; rolled back", true),
    };
    say(&format!("preflight: {} statements can fail on the data; checking {place}", planned.len()));
    if copy {
        template::fresh_copy(server, PREFLIGHT_DB).await?;
    }
    let result = async {
        let client = connect(server, db, "preflight").await?;
        if copy {
            super::history::apply(&client, before).await?;
        }
        check_all(&client, m, &planned, copy).await
    }
    .await;
    if copy {
        drop_copy(server).await;
    }
    let checks = result?;
    for c in checks.iter().filter(|c| c.violations.is_some_and(|n| n > 0)) {
        let n = crate::fmt::fmt_count(c.violations.unwrap_or(0));
        say(&format!("preflight: step {} will fail: {n} rows violate it ({})", c.step + 1, c.what));
    }
    Ok(Some(PreflightRecord { checks, duration: started.elapsed(), place: place.to_string() }))
}

async fn drop_copy(server: &Server) {
    if let Ok(admin) = connect(server, "postgres", "admin").await {
        let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {PREFLIGHT_DB} WITH (FORCE)")).await;
    }
}

/// In one transaction, rolled back: each statement's checks, then (when
/// `run_earlier` and a later statement has checks) the statement itself.
async fn check_all(
    client: &Client,
    m: &Migration,
    planned: &[(At, usize, Vec<Found>)],
    run_earlier: bool,
) -> Result<Vec<CheckRecord>> {
    let last = planned.last().map(|p| p.0).unwrap_or_default();
    client.batch_execute("BEGIN").await.map_err(|e| Error::db(format!("preflight: {}", describe_pg(&e))))?;
    let mut out = Vec::new();
    let mut stop: Option<String> = None;
    let mut n = 0;
    'steps: for (i, step) in m.steps.iter().enumerate() {
        for (k, s) in step.statements().into_iter().enumerate() {
            if let Some((_, number, found)) = planned.iter().find(|p| p.0 == (i, k)) {
                for f in found {
                    n += 1;
                    out.extend(match &stop {
                        Some(why) => vec![queries::skipped(i, *number, f, why)],
                        None => check(client, i, *number, f, n).await,
                    });
                }
            }
            if (i, k) >= last {
                break 'steps;
            }
            if stop.is_none() {
                stop = if run_earlier {
                    let failed = run_statement(client, step, &s.sql).await.err();
                    // With on_error = continue the run goes on after a failed step, and so do the checks.
                    failed
                        .filter(|_| step.on_error == OnError::Abort)
                        .map(|e| format!("step {} fails first ({e})", i + 1))
                } else {
                    Some("it needs the earlier steps applied, and the url backend has no separate copy".into())
                };
            }
        }
    }
    let _ = client.batch_execute("ROLLBACK").await;
    Ok(out)
}

/// Runs an earlier statement of `step` (a backfill's until it affects no
/// row, at most its `max_batches`) under a savepoint. Statements that cannot
/// run in a transaction change no data: an index build runs without
/// CONCURRENTLY, the rest is passed over.
async fn run_statement(client: &Client, step: &Step, sql: &str) -> Result<()> {
    let Some(sql) = queries::in_transaction(sql) else { return Ok(()) };
    let limit = match step.kind {
        StepKind::Backfill { max_batches, .. } => max_batches.unwrap_or(runner::DEFAULT_MAX_BATCHES),
        _ => 1,
    };
    client.batch_execute("SAVEPOINT lockimpact_preflight").await.map_err(|e| Error::db(describe_pg(&e)))?;
    let mut result = Ok(());
    for _ in 0..limit {
        match runner::rows_of(client, &sql).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                result = Err(Error::db(describe_pg(&e)));
                break;
            }
        }
    }
    let end = if result.is_ok() {
        "RELEASE SAVEPOINT lockimpact_preflight"
    } else {
        "ROLLBACK TO SAVEPOINT lockimpact_preflight"
    };
    let _ = client.batch_execute(end).await;
    result
}

/// The records of one found check (several for a primary key by index).
async fn check(client: &Client, step: usize, statement: usize, f: &Found, n: usize) -> Vec<CheckRecord> {
    let queries = match queries::resolve(client, f, n).await {
        Ok(q) => q,
        Err(why) => return vec![queries::skipped(step, statement, f, &why.message)],
    };
    let mut out = Vec::new();
    for q in queries {
        let started = Instant::now();
        let result = count(client, &q).await;
        let mut rec = q.record(step, statement);
        rec.duration = started.elapsed();
        match result {
            Ok((violations, examples)) => {
                rec.violations = Some(violations);
                rec.examples = examples;
            }
            Err(why) => rec.skipped = Some(why.message),
        }
        out.push(rec);
    }
    out
}

/// (violating rows, examples) under a savepoint: a failing check leaves the transaction usable.
async fn count(client: &Client, q: &Query) -> Result<(u64, Vec<String>)> {
    client.batch_execute("SAVEPOINT lockimpact_check").await.map_err(|e| Error::db(describe_pg(&e)))?;
    let result = async {
        if let Some(setup) = &q.setup {
            client.batch_execute(setup).await?;
        }
        let n: i64 = client.query_one(q.count.as_str(), &[]).await?.get(0);
        let examples = if n > 0 {
            client
                .query(q.examples.as_str(), &[])
                .await?
                .iter()
                .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default())
                .collect()
        } else {
            Vec::new()
        };
        Ok::<_, tokio_postgres::Error>((n.max(0) as u64, examples))
    }
    .await;
    let end =
        if result.is_ok() { "RELEASE SAVEPOINT lockimpact_check" } else { "ROLLBACK TO SAVEPOINT lockimpact_check" };
    let _ = client.batch_execute(end).await;
    result.map_err(|e| Error::db(describe_pg(&e)))
}
