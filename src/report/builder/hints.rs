//! Safer forms for what a step was observed to do: each hint needs a
//! measurement of the run (a lock held while sessions waited, a rewrite, a
//! long row-locking UPDATE, a lock-queue stall), never the SQL text alone;
//! the SQL (parsed with PostgreSQL's parser) only says which statement it was.
//!
//! "Sessions waited" below means workload sessions blocked by the migration
//! (the migration in their blocking chain) during the step, on the
//! statement's table or on the migration's transaction (a row lock, no
//! relation). Pauses, skipped steps and captured steps (no SQL) get none.
//!
//! - `concurrently`: a plain `CREATE INDEX` whose step held a lock on the
//!   table that conflicts with `RowExclusiveLock` (ShareLock) while writing
//!   sessions (wanting `RowExclusiveLock` or stronger) waited.
//! - `not_valid_then_validate`: `ADD CONSTRAINT … CHECK | FOREIGN KEY`
//!   without `NOT VALID` whose step held a lock on the table that conflicts
//!   with `RowExclusiveLock` (AccessExclusiveLock, ShareRowExclusiveLock)
//!   while sessions waited.
//! - `lock_timeout_retries`: a step without a `lock_timeout` that itself
//!   waited for a lock at least `MIN_STALL_MS` while sessions queued behind it.
//! - `batched_backfill`: an `UPDATE` in a plain step (not a `backfill`) that
//!   changed at least `MANY_ROWS` rows while sessions waited.
//! - `check_before_not_null`: `ALTER COLUMN … SET NOT NULL` whose step held
//!   AccessExclusiveLock on the table for at least `MIN_SCAN_MS` beyond its
//!   own lock wait (long enough to be a scan) while sessions waited; not when
//!   the migration proved the column earlier with a validated `CHECK (col IS
//!   NOT NULL)`, which PostgreSQL uses instead of scanning.
//! - `new_column_backfill`: `ALTER COLUMN … TYPE` whose step rewrote the
//!   table (its relfilenode changed); the waits, if any, are told.
//! - `vacuum_first`: a step whose `lock_timeout` is shorter than the
//!   session's `deadlock_timeout` that itself waited for a lock behind an
//!   autovacuum worker (not one to prevent wraparound). The server cancels
//!   an autovacuum in a lock request's way only once the request has waited
//!   `deadlock_timeout`, which such a step never does: it times out and
//!   retries for as long as the autovacuum runs (after a backfill, seconds
//!   to minutes on a big table).

use std::collections::BTreeMap;
use std::time::Duration;

use pg_query::NodeEnum;
use pg_query::protobuf::{AlterTableType, ConstrType, NullTestType, RangeVar};

use super::blocked::{Episodes, overlap_ms};
use crate::fmt::{fmt_count, fmt_ms};
use crate::pg::lockmode::LockMode;
use crate::report::model::{Hint, HintKind, Report, StepReport};
use crate::run_record::{Blocker, Episode, Outcome, StepType};

/// The shortest own lock wait that counts as a lock-queue stall.
const MIN_STALL_MS: f64 = 100.0;
/// The fewest rows a one-shot UPDATE changes for a batched backfill to be
/// worth it (a backfill's batch is a few thousand rows).
const MANY_ROWS: u64 = 10_000;
/// The shortest time SET NOT NULL holds its lock (beyond waiting for it)
/// that counts as a scan of the table.
const MIN_SCAN_MS: f64 = 10.0;

/// Fills `hints` of every step of `r`; `deadlock_timeout` is the migration
/// session's.
pub fn annotate(r: &mut Report, eps: &Episodes, deadlock_timeout: Option<Duration>) {
    let statements = classify_steps(&r.steps);
    for (step, stmts) in r.steps.iter_mut().zip(statements) {
        if step.kind != StepType::Pause && step.outcome != Outcome::Skipped && step.sql.is_some() {
            step.hints = step_hints(step, &stmts, eps, deadlock_timeout);
        }
    }
}

/// The hints of one step, at most one of each kind, in the order of the rules.
fn step_hints(s: &StepReport, stmts: &[Stmt], eps: &Episodes, deadlock_timeout: Option<Duration>) -> Vec<Hint> {
    let mut hints: Vec<Hint> = Vec::new();
    for stmt in stmts {
        let hint = match stmt {
            Stmt::PlainIndex(t) => concurrently(s, t, eps),
            Stmt::ValidatingConstraint { table, kind } => not_valid_then_validate(s, table, kind, eps),
            Stmt::Update(t) => batched_backfill(s, t, eps),
            Stmt::SetNotNull { table, column, proven } => check_before_not_null(s, table, column, *proven, eps),
            Stmt::TypeChange { table, column } => new_column_backfill(s, table, column, eps),
        };
        hints.extend(hint);
    }
    hints.extend(lock_timeout_retries(s, eps));
    hints.extend(deadlock_timeout.and_then(|d| vacuum_first(s, eps, d)));
    hints.sort_by_key(|h| h.kind);
    hints.dedup_by_key(|h| h.kind);
    hints
}

/// A table as a statement names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Table {
    schema: String,
    name: String,
}

impl Table {
    fn of(r: &RangeVar) -> Table {
        Table { schema: r.schemaname.clone(), name: r.relname.clone() }
    }

    /// Whether `relation` (as `regclass::text` names it: quoted when needed,
    /// schema-qualified when off the search path) is this table.
    fn is(&self, relation: &str) -> bool {
        let plain = relation.replace('"', "");
        plain == self.name || plain.ends_with(&format!(".{}", self.name))
    }

    /// The strongest lock the step held on it.
    fn held(&self, s: &StepReport) -> Option<LockMode> {
        s.locks.iter().filter(|l| self.is(&l.relation)).map(|l| l.mode).max()
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.schema.is_empty() {
            true => f.write_str(&self.name),
            false => write!(f, "{}.{}", self.schema, self.name),
        }
    }
}

/// A statement a rule knows a safer form of.
#[derive(Debug, Clone, PartialEq)]
enum Stmt {
    /// CREATE INDEX without CONCURRENTLY.
    PlainIndex(Table),
    /// ADD CONSTRAINT … CHECK / FOREIGN KEY without NOT VALID.
    ValidatingConstraint {
        table: Table,
        kind: &'static str,
    },
    Update(Table),
    /// `proven`: a validated CHECK (col IS NOT NULL) of an earlier statement.
    SetNotNull {
        table: Table,
        column: String,
        proven: bool,
    },
    TypeChange {
        table: Table,
        column: String,
    },
}

/// CHECK (col IS NOT NULL) constraints the migration added: (table,
/// constraint name) → (column, validated).
type Proofs = BTreeMap<(Table, String), (String, bool)>;

/// Each step's statements the rules know, in order; a SET NOT NULL is
/// `proven` by the statements before it, in this step or earlier ones that ran.
fn classify_steps(steps: &[StepReport]) -> Vec<Vec<Stmt>> {
    let mut proofs = Proofs::new();
    let mut out = Vec::with_capacity(steps.len());
    for s in steps {
        let mut stmts = Vec::new();
        let parsed = s.sql.as_deref().and_then(|sql| pg_query::parse(sql, 0).ok());
        let nodes = parsed.iter().flat_map(|p| p.protobuf.stmts.iter());
        for node in nodes.filter_map(|r| r.stmt.as_ref()?.node.as_ref()) {
            classify(node, &mut proofs, &mut stmts);
        }
        if s.outcome != Outcome::Ok {
            proofs.clear(); // a failed step may have rolled them back
        }
        out.push(stmts);
    }
    out
}

fn classify(node: &NodeEnum, proofs: &mut Proofs, out: &mut Vec<Stmt>) {
    match node {
        NodeEnum::IndexStmt(s) if !s.concurrent => {
            out.extend(s.relation.as_ref().map(|r| Stmt::PlainIndex(Table::of(r))))
        }
        NodeEnum::UpdateStmt(s) => out.extend(s.relation.as_ref().map(|r| Stmt::Update(Table::of(r)))),
        NodeEnum::AlterTableStmt(s) => {
            let Some(table) = s.relation.as_ref().map(Table::of) else { return };
            for cmd in &s.cmds {
                if let Some(NodeEnum::AlterTableCmd(c)) = &cmd.node {
                    alter_cmd(&table, c, proofs, out);
                }
            }
        }
        _ => {}
    }
}

/// One command of an ALTER TABLE on `table`.
fn alter_cmd(table: &Table, c: &pg_query::protobuf::AlterTableCmd, proofs: &mut Proofs, out: &mut Vec<Stmt>) {
    let t = table.clone();
    match AlterTableType::try_from(c.subtype) {
        Ok(AlterTableType::AtSetNotNull) => {
            let proven = proofs.iter().any(|((pt, _), (col, valid))| *pt == t && *col == c.name && *valid);
            out.push(Stmt::SetNotNull { table: t, column: c.name.clone(), proven });
        }
        Ok(AlterTableType::AtAlterColumnType) => out.push(Stmt::TypeChange { table: t, column: c.name.clone() }),
        Ok(AlterTableType::AtValidateConstraint) => {
            if let Some(p) = proofs.get_mut(&(t, c.name.clone())) {
                p.1 = true;
            }
        }
        Ok(AlterTableType::AtAddConstraint) => {
            let Some(NodeEnum::Constraint(k)) = c.def.as_ref().and_then(|d| d.node.as_ref()) else { return };
            let kind = match ConstrType::try_from(k.contype) {
                Ok(ConstrType::ConstrCheck) => "CHECK",
                Ok(ConstrType::ConstrForeign) => "FOREIGN KEY",
                _ => return,
            };
            if let Some(column) = not_null_column(k.raw_expr.as_deref()) {
                proofs.insert((t.clone(), k.conname.clone()), (column, !k.skip_validation));
            }
            if !k.skip_validation {
                out.push(Stmt::ValidatingConstraint { table: t, kind });
            }
        }
        _ => {}
    }
}

/// The column of a `col IS NOT NULL` expression.
fn not_null_column(expr: Option<&pg_query::protobuf::Node>) -> Option<String> {
    let Some(NodeEnum::NullTest(n)) = expr?.node.as_ref() else { return None };
    if n.nulltesttype != NullTestType::IsNotNull as i32 {
        return None;
    }
    let Some(NodeEnum::ColumnRef(c)) = n.arg.as_deref()?.node.as_ref() else { return None };
    match c.fields.last()?.node.as_ref()? {
        NodeEnum::String(s) => Some(s.sval.clone()),
        _ => None,
    }
}

/// Workload sessions blocked by the migration during a step.
struct Waits {
    sessions: usize,
    total_ms: f64,
}

impl Waits {
    /// Those during `s` on `table` (or on no relation: a row lock of the
    /// migration's transaction) that `pred` keeps; `None` when there are none.
    fn of(s: &StepReport, table: &Table, eps: &Episodes, pred: impl Fn(&Episode) -> bool) -> Option<Waits> {
        Waits::matching(s, eps, |e| e.relation.as_deref().is_none_or(|r| table.is(r)) && pred(e))
    }

    /// Those during `s` that `keep` keeps, on any relation.
    fn matching(s: &StepReport, eps: &Episodes, keep: impl Fn(&Episode) -> bool) -> Option<Waits> {
        let (from, to) = window(s);
        let during: Vec<&Episode> =
            eps.by_migration().filter(|e| keep(e)).filter(|e| e.end > from && e.start < to).collect();
        let total_ms = overlap_ms(during.iter().copied(), from, to);
        let mut pids: Vec<i32> = during.iter().map(|e| e.pid).collect();
        pids.sort_unstable();
        pids.dedup();
        (total_ms > 0.0).then_some(Waits { sessions: pids.len(), total_ms })
    }

    /// "16 sessions waited on it, 1.50 s summed" (`what` qualifies the sessions).
    fn told(&self, what: &str) -> String {
        self.told_as(what, "waited on it")
    }

    /// "16 sessions `did`, 1.50 s summed".
    fn told_as(&self, what: &str, did: &str) -> String {
        let noun = if self.sessions == 1 { "session" } else { "sessions" };
        format!("{} {what}{noun} {did}, {} summed", fmt_count(self.sessions as u64), fmt_ms(self.total_ms))
    }
}

/// The step's time, `[start, end)` from the run's start.
fn window(s: &StepReport) -> (Duration, Duration) {
    let at = |ms: f64| Duration::from_secs_f64(ms.max(0.0) / 1000.0);
    (at(s.start_ms), at(s.start_ms + s.duration_ms))
}

/// How long the step held its locks: its duration less its own lock wait.
pub(super) fn held_ms(s: &StepReport) -> f64 {
    (s.duration_ms - s.lock_wait_ms).max(0.0)
}

fn concurrently(s: &StepReport, t: &Table, eps: &Episodes) -> Option<Hint> {
    let held = t.held(s).filter(|m| m.conflicts_with(LockMode::RowExclusive))?;
    let writers = Waits::of(s, t, eps, |e| e.mode >= LockMode::RowExclusive && e.mode.conflicts_with(held))?;
    Some(Hint {
        kind: HintKind::Concurrently,
        observed: format!(
            "CREATE INDEX held {held} on {t} for {} while {}",
            fmt_ms(held_ms(s)),
            writers.told("writing ")
        ),
        advice: "CREATE INDEX CONCURRENTLY builds the index under ShareUpdateExclusiveLock, which reads and writes do \
                 not conflict with (it cannot run in a transaction block: `-- lockimpact: transaction none`; if it \
                 fails it leaves an INVALID index to drop)"
            .into(),
    })
}

fn not_valid_then_validate(s: &StepReport, t: &Table, kind: &str, eps: &Episodes) -> Option<Hint> {
    let held = t.held(s).filter(|m| m.conflicts_with(LockMode::RowExclusive))?;
    let waits = Waits::of(s, t, eps, |_| true)?;
    Some(Hint {
        kind: HintKind::NotValidThenValidate,
        observed: format!(
            "ADD CONSTRAINT … {kind} checked every row under {held} on {t} for {} while {}",
            fmt_ms(held_ms(s)),
            waits.told("")
        ),
        advice: format!(
            "add the {kind} constraint NOT VALID (a brief lock, no scan), then ALTER TABLE {t} VALIDATE CONSTRAINT … \
             in its own transaction: it checks the rows under ShareUpdateExclusiveLock, which reads and writes do \
             not conflict with"
        ),
    })
}

fn batched_backfill(s: &StepReport, t: &Table, eps: &Episodes) -> Option<Hint> {
    if s.kind != StepType::Sql || s.rows < MANY_ROWS {
        return None;
    }
    let waits = Waits::of(s, t, eps, |_| true)?;
    let lock = t.held(s).map(|m| format!(" (the step held {m} on {t})")).unwrap_or_default();
    Some(Hint {
        kind: HintKind::BatchedBackfill,
        observed: format!(
            "one UPDATE changed {} rows of {t} in {}{lock} while {}",
            fmt_count(s.rows),
            fmt_ms(held_ms(s)),
            waits.told("")
        ),
        advice: "a batched backfill (`-- lockimpact: backfill`): a few thousand rows per batch, each batch in its own \
                 short transaction, so the row locks (and any lock taken earlier in the transaction) are held for one \
                 batch instead of the whole table"
            .into(),
    })
}

fn check_before_not_null(s: &StepReport, t: &Table, column: &str, proven: bool, eps: &Episodes) -> Option<Hint> {
    let held = t.held(s).filter(|m| *m == LockMode::AccessExclusive)?;
    if proven || held_ms(s) < MIN_SCAN_MS {
        return None;
    }
    let waits = Waits::of(s, t, eps, |_| true)?;
    Some(Hint {
        kind: HintKind::CheckBeforeNotNull,
        observed: format!(
            "SET NOT NULL on {column} held {held} on {t} for {} (a scan of every row) while {}",
            fmt_ms(held_ms(s)),
            waits.told("")
        ),
        advice: format!(
            "ADD CONSTRAINT … CHECK ({column} IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT (it scans under \
             ShareUpdateExclusiveLock, which reads and writes do not conflict with), then SET NOT NULL: PostgreSQL \
             12+ takes the validated CHECK as proof instead of scanning; the CHECK can be dropped after"
        ),
    })
}

fn new_column_backfill(s: &StepReport, t: &Table, column: &str, eps: &Episodes) -> Option<Hint> {
    if !s.rewritten.iter().any(|r| t.is(r)) {
        return None;
    }
    let held = t.held(s).map(|m| format!(" under {m}")).unwrap_or_default();
    let waits = Waits::of(s, t, eps, |_| true).map_or("no session waited on it".into(), |w| w.told(""));
    Some(Hint {
        kind: HintKind::NewColumnBackfill,
        observed: format!("ALTER COLUMN {column} TYPE rewrote {t}{held} in {} while {waits}", fmt_ms(held_ms(s))),
        advice: format!(
            "add a new column of the new type, keep it filled for new rows (a trigger or the application), backfill \
             it in batches (`-- lockimpact: backfill`), then swap it for {column} in one short transaction: no \
             rewrite under AccessExclusiveLock"
        ),
    })
}

fn lock_timeout_retries(s: &StepReport, eps: &Episodes) -> Option<Hint> {
    if s.lock_timeout_ms.is_some() {
        return None;
    }
    let (from, to) = window(s);
    let own: Vec<&Episode> = eps.migration.iter().filter(|e| e.end > from && e.start < to).collect();
    let waited = overlap_ms(own.iter().copied(), from, to);
    if waited < MIN_STALL_MS {
        return None;
    }
    // Workload sessions blocked by the migration while it was itself waiting: the queue behind it.
    let clip = |e: &Episode| (e.start.max(from), e.end.min(to));
    let queued_ms: f64 = own.iter().map(|m| overlap_ms(eps.by_migration(), clip(m).0, clip(m).1)).sum();
    let mut pids: Vec<i32> = (eps.by_migration())
        .filter(|e| own.iter().any(|m| e.end > clip(m).0 && e.start < clip(m).1))
        .map(|e| e.pid)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    if queued_ms <= 0.0 {
        return None;
    }
    let longest = own.iter().max_by_key(|e| e.end.saturating_sub(e.start))?;
    let on = longest.relation.as_deref().map(|r| format!(" on {r}")).unwrap_or_default();
    let behind = behind(&longest.blocker_classes);
    let queue = Waits { sessions: pids.len(), total_ms: queued_ms }.told_as("", "queued behind it");
    Some(Hint {
        kind: HintKind::LockTimeoutRetries,
        observed: format!(
            "the step had no lock_timeout and waited {} for {}{on}{behind} while {queue}",
            fmt_ms(waited),
            longest.mode
        ),
        advice: "a short lock_timeout with retries (`-- lockimpact: step \"…\" lock_timeout=200ms retries=20 \
                 retry_backoff=300ms`, or SET lock_timeout before the statement and retry on SQLSTATE 55P03): each \
                 attempt holds the queue for at most the timeout, then gives up until it slips in between"
            .into(),
    })
}

fn vacuum_first(s: &StepReport, eps: &Episodes, deadlock_timeout: Duration) -> Option<Hint> {
    let deadlock_ms = deadlock_timeout.as_secs_f64() * 1000.0;
    let timeout = s.lock_timeout_ms.filter(|&t| t < deadlock_ms)?;
    let (from, to) = window(s);
    // The step's own waits, each with the autovacuum it waited behind.
    let behind_vacuum: Vec<(&Episode, &Blocker)> = (eps.migration.iter())
        .filter(|e| e.end > from && e.start < to)
        .filter_map(|e| Some((e, e.blocker_classes.iter().find(|b| b.cancellable_autovacuum().is_some())?)))
        .collect();
    let &(first, vacuum) = behind_vacuum.first()?;
    let on = first.relation.as_deref().map(|r| format!(" on {r}")).unwrap_or_default();
    let table = first.relation.as_deref().unwrap_or("the table");
    let queue = Waits::matching(s, eps, |_| true)
        .map(|w| format!(", while {}", w.told_as("", "queued behind it")))
        .unwrap_or_default();
    Some(Hint {
        kind: HintKind::VacuumFirst,
        observed: format!(
            "the step waited {} for {}{on} behind {vacuum} in {} waits over {} attempts{queue}; its \
             lock_timeout ({}) is shorter than deadlock_timeout ({}), the wait after which the server cancels an \
             autovacuum in a lock's way, so it timed out and retried instead",
            fmt_ms(overlap_ms(behind_vacuum.iter().map(|(e, _)| *e), from, to)),
            first.mode,
            fmt_count(behind_vacuum.len() as u64),
            fmt_count(u64::from(s.retries) + 1),
            fmt_ms(timeout),
            fmt_ms(deadlock_ms),
        ),
        advice: format!(
            "VACUUM (ANALYZE) {table} in a step of its own just before this one, without a lock_timeout (after a \
             backfill: right after it): it waits for the autovacuum without blocking reads or writes, the server \
             cancels the autovacuum for it after deadlock_timeout, and it leaves the autovacuum nothing to do; or \
             give this step a lock_timeout longer than deadlock_timeout"
        ),
    })
}

/// " behind long_report (pid 7)": at most three blockers, then how many more.
fn behind(blockers: &[Blocker]) -> String {
    let named: Vec<String> = blockers.iter().take(3).map(|b| b.to_string()).collect();
    match blockers.len() {
        0 => String::new(),
        1..=3 => format!(" behind {}", named.join(", ")),
        n => format!(" behind {} and {} more", named.join(", "), n - 3),
    }
}
