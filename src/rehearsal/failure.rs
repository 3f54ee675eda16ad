//! A rehearsal that fails on purpose (`--fail-at`): before the workload, the
//! schema is read and an injector armed on a session of its own; after the
//! injector terminated the migration's session at its stop point, a new
//! session reads what was left (objects, rows kept, constraints left not
//! valid, indexes left invalid), then runs the down steps of what completed,
//! in reverse, under the same workload and measured like forward steps, and
//! reads the schema again.

use std::sync::Arc;
use std::time::Instant;

use crate::clone::Server;
use crate::clone::sessions::Sessions;
use crate::error::Result;
use crate::migration::failpoint::{Injector, Mark, StopPoint};
use crate::migration::runner::Runner;
use crate::migration::schema_state::SchemaState;
use crate::migration::{Migration, StepKind, TxMode};
use crate::run_record::{FailureRecord, MigrationRecord, Outcome, StepType};

/// What a failing rehearsal holds from its start: the injector, and the
/// schema before the migration.
pub struct Failing {
    pub injector: Injector,
    before: SchemaState,
}

impl Failing {
    /// On the fresh copy, before the workload: reads the schema and arms an
    /// injector for `point` against the migration's session `pid`.
    pub async fn arm(
        point: &StopPoint,
        server: &Server,
        sessions: &Sessions,
        run_db: &str,
        migration: (&tokio_postgres::Client, i32),
    ) -> Result<Failing> {
        let before = SchemaState::read(migration.0).await?;
        let (control, _) = sessions.connect(server, run_db, "fail-at").await?;
        Ok(Failing { injector: Injector::new(point.clone(), control, migration.1), before })
    }
}

/// How the rollback after the failure runs: on a new session of the
/// migration, with the forward run's clock, stop and messages.
pub struct After<'a> {
    pub server: &'a Server,
    pub sessions: &'a Arc<Sessions>,
    pub run_db: &'a str,
    pub roles: &'a crate::workload::Roles,
    pub runner: Runner<'a>,
}

/// Once the forward steps ended: what the failure left, and the rollback
/// from there. `runner.client` is replaced by a new session.
pub async fn after(f: &Failing, m: &Migration, a: After<'_>, rec: &mut MigrationRecord) -> FailureRecord {
    let point = f.injector.point();
    let mut out = FailureRecord {
        point: point.describe(),
        step: point.step,
        at: point.at,
        fired: f.injector.fired().map(|m| fired(m, point.batches)),
        ..Default::default()
    };
    let say = a.runner.say;
    say(&format!(
        "fail-at: {}: {}",
        out.point,
        out.fired.as_deref().unwrap_or("the migration ended before reaching it")
    ));
    let completed = completed(m, rec);
    out.completed = (0..completed.len()).filter(|&i| completed[i]).collect();
    out.rows_kept = rows_kept(m, rec);
    out.rolled_back_as_one = as_one(m, rec, point.step);
    let client = match a.sessions.connect(a.server, a.run_db, "migration (rollback)").await {
        Ok((c, pid)) => {
            a.roles.add_migration(pid);
            c
        }
        Err(e) => {
            out.error = Some(format!("cannot open a session for the rollback: {e}"));
            return out;
        }
    };
    match SchemaState::read(&client).await {
        Ok(s) => out.left = s.changes(&f.before),
        Err(e) => out.error = Some(e.to_string()),
    }
    let undo = m.then_undo(&completed);
    out.undo_steps = undo.steps.len() - m.steps.len();
    out.undo_covers_all = undo.notes.len() == m.notes.len() && covered(m, &completed);
    say(&format!("fail-at: rolling back {} step(s) of what completed", out.undo_steps));
    let started = Instant::now();
    let runner = Runner { client: &client, fail: None, ..a.runner };
    out.rollback_ok = runner.undo(&undo, rec).await;
    out.rollback_time = started.elapsed();
    match SchemaState::read(&client).await {
        Ok(s) => out.residue = s.changes(&f.before),
        Err(e) => out.error = Some(e.to_string()),
    }
    for i in out.completed.iter().copied().filter(|&i| !undone(m, i)) {
        let mode = m.groups.iter().find(|g| g.steps.contains(&i)).map_or(TxMode::Step, |g| g.transaction);
        // Outside the forward run's transactions: its own, rolled back.
        let mode = if mode == TxMode::File { TxMode::Step } else { mode };
        out.verify_after.extend(runner.verify(&m.steps[i], mode).await.map(|v| (i, v)));
    }
    out
}

/// Whether a rollback undoes step `i`: its own down section, or its group's down file.
fn undone(m: &Migration, i: usize) -> bool {
    let Some(g) = m.groups.iter().find(|g| g.steps.contains(&i)) else { return false };
    let sections = m.steps[g.steps.clone()].iter().any(|s| !s.down.is_empty());
    if sections { !m.steps[i].down.is_empty() } else { g.down.is_some() }
}

/// Every completed step has a down part: its own section, or its group's down file.
fn covered(m: &Migration, completed: &[bool]) -> bool {
    (0..m.steps.len()).filter(|&i| completed[i] && !matches!(m.steps[i].kind, StepKind::Pause(_))).all(|i| undone(m, i))
}

/// Where the injector terminated the session, in words.
fn fired(mark: Mark, batches: bool) -> String {
    match mark {
        Mark::BeforeStep(i) => format!("terminated as step {} began", i + 1),
        Mark::AfterStatement(i, k) if batches => format!("terminated after batch {k} of step {} committed", i + 1),
        Mark::AfterStatement(i, k) => format!("terminated after statement {k} of step {}", i + 1),
        Mark::During(i, t) => format!("terminated {} ms into step {}", t.as_millis(), i + 1),
        Mark::AfterBody(i) => {
            format!("terminated after the statements of step {}, before its transaction committed", i + 1)
        }
    }
}

/// Whether each forward step's work is committed: a step that succeeded in
/// a transaction that committed (its own, its file's, or none).
fn completed(m: &Migration, rec: &MigrationRecord) -> Vec<bool> {
    (0..m.steps.len()).map(|i| rec.steps.get(i).is_some_and(|s| s.outcome == Outcome::Ok) && kept(m, rec, i)).collect()
}

/// Whether what step `i` wrote was committed (as far as it ran).
fn kept(m: &Migration, rec: &MigrationRecord, i: usize) -> bool {
    if m.one_transaction {
        return rec.committed;
    }
    let Some(g) = m.groups.iter().position(|g| g.steps.contains(&i)) else { return false };
    let s = &rec.steps[i];
    match m.steps[i].mode_in(m.groups[g].transaction) {
        TxMode::File => rec.groups.get(g).is_some_and(|g| g.committed),
        // A step's own transaction commits when it succeeds; a backfill's batches commit one by one.
        TxMode::Step => s.outcome == Outcome::Ok || s.kind == StepType::Backfill,
        TxMode::None => true,
    }
}

/// Rows written by the forward steps whose work was committed.
fn rows_kept(m: &Migration, rec: &MigrationRecord) -> u64 {
    (0..m.steps.len().min(rec.steps.len())).filter(|&i| kept(m, rec, i)).map(|i| rec.steps[i].rows).sum()
}

/// When step `i` ran inside a transaction spanning several steps that did
/// not commit: which steps rolled back with it, as one.
fn as_one(m: &Migration, rec: &MigrationRecord, i: usize) -> Option<String> {
    let range = if m.one_transaction {
        0..m.steps.len()
    } else {
        let g = m.groups.iter().find(|g| g.steps.contains(&i))?;
        if g.transaction != TxMode::File {
            return None;
        }
        g.steps.clone()
    };
    let ran = range.clone().filter(|&k| rec.steps.get(k).is_some_and(|s| s.outcome != Outcome::Skipped)).count();
    (!kept(m, rec, i) && ran > 1).then(|| {
        format!(
            "steps {}-{} ran in one transaction, which rolled back as one when the session ended ({ran} of them \
             had run)",
            range.start + 1,
            range.end
        )
    })
}
