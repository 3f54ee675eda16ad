//! Applies the migration step by step on its own connection, in the chosen
//! transaction mode, with each step's lock and statement timeouts and retries.
//! For every step it records duration, outcome, rows, WAL written, tables
//! rewritten and, inside a transaction, the relation locks it holds.
//!
//! When the run must stop (Ctrl-C, SIGTERM, SIGHUP, a lost or frozen server),
//! the running statement is cancelled first (a CancelRequest), then the
//! transaction is rolled back: nothing waits for a long statement to end,
//! and a statement that does not end even then (a frozen server) is left to
//! the sessions' cleanup rather than waited on.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, SimpleQueryMessage};
use tokio_util::sync::CancellationToken;

use super::failpoint::{Injector, Mark};
use super::split::Statement;
use super::{Migration, OnError, Step, StepKind, TxMode};
use crate::clone::sessions::cancel_token;
use crate::error::{Error, Kind, describe_pg, sqlstate};
use crate::pg::lockmode::{HeldLocks, LockMode};
use crate::run_record::{MigrationRecord, Outcome, StepRecord, StepType, VerifyRecord};
use crate::timeline::{Clock, Slot};

/// A backfill stops after this many batches unless `max_batches` says otherwise.
pub(super) const DEFAULT_MAX_BATCHES: u64 = 100_000;

/// Retry backoff doubles up to this (or the configured backoff, if larger).
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How long a cancelled statement may take to end before it is left to the
/// sessions' cleanup.
const CANCEL_GRACE: Duration = Duration::from_secs(3);

/// Relation locks (user relations only) held by this session right now:
/// oid, name (as `RELATION_NAME_SQL` says), mode.
fn held_locks_sql() -> String {
    format!(
        "SELECT l.relation::bigint, {}, l.mode FROM pg_locks l \
         WHERE l.pid = pg_backend_pid() AND l.granted AND l.locktype = 'relation' AND l.relation >= 16384",
        crate::pg::catalog::RELATION_NAME_SQL
    )
}

/// Every user relation's oid and name, as `RELATION_NAME_SQL` names them.
fn names_sql() -> String {
    format!(
        "SELECT l.relation::bigint, {} FROM (SELECT oid AS relation FROM pg_class WHERE oid >= 16384) l",
        crate::pg::catalog::RELATION_NAME_SQL
    )
}

/// relfilenode of every user table, to detect rewrites.
const FILENODES_SQL: &str = "SELECT c.oid::regclass::text, c.relfilenode::text FROM pg_class c \
     WHERE c.oid >= 16384 AND c.relkind IN ('r','m')";

struct Failure {
    outcome: Outcome,
    sqlstate: String,
    message: String,
    statement: Option<usize>,
}

impl Failure {
    fn from_pg(e: &tokio_postgres::Error, statement: Option<usize>) -> Failure {
        let code = sqlstate(e);
        Failure { outcome: Outcome::from_sqlstate(&code), sqlstate: code, message: describe_pg(e), statement }
    }
}

/// What became of work on the migration's connection.
enum Ended<T> {
    /// It ended by itself.
    Done(T),
    /// The run had to stop: its statement was cancelled; `Some` when it then
    /// ended within `CANCEL_GRACE`, `None` when it still runs.
    Stopped(Option<T>),
}

pub struct Runner<'a> {
    pub client: &'a Client,
    /// The connection's TLS, for its cancel requests.
    pub tls: &'a crate::pg::Tls,
    pub clock: Arc<Clock>,
    /// Fires when the run must stop (interrupted, the server lost or frozen).
    pub stop: CancellationToken,
    /// Why it stopped, for the interrupted step's message.
    pub why: &'a (dyn Fn() -> String + Sync),
    pub say: &'a (dyn Fn(&str) + Sync),
    /// Every user relation's name (oid → name) before the running step: a
    /// relation the step drops (a rewrite's old toast table, a dropped
    /// table) is named by it in the step's locks.
    pub names_before: std::sync::Mutex<BTreeMap<i64, String>>,
    /// `--fail-at`: ends the session at its stop point.
    pub fail: Option<&'a Injector>,
}

/// Where a run stands: `aborted` skips the remaining steps; `any_failed`
/// says a step failed (with `on_error = continue` the run goes on).
#[derive(Default)]
struct Progress {
    aborted: bool,
    any_failed: bool,
    /// A cancelled statement still runs on the connection.
    abandoned: bool,
}

impl Runner<'_> {
    /// Runs every group in order, each in its transaction mode (or all in one
    /// transaction when `one_transaction`), and records each step.
    pub async fn run(&self, m: &Migration, rec: &mut MigrationRecord) {
        rec.transaction = m.transaction();
        rec.one_transaction = m.one_transaction;
        self.clock.enter(Slot::Between);
        let mut p = Progress::default();
        if m.one_transaction {
            p.aborted = !self.begin(&mut p).await;
            p.any_failed = p.aborted;
        }
        let one_way = super::reversible::one_way(&m.steps);
        for g in &m.groups {
            self.group(m, g, &one_way, &mut p, rec).await;
        }
        rec.committed = if m.one_transaction {
            let ok = self.end(!p.aborted && !self.stop.is_cancelled(), rec, &mut p).await;
            !p.any_failed && ok
        } else {
            !p.any_failed
        };
        self.left_running(&p, rec);
        if m.one_transaction && !rec.committed {
            rec.groups.iter_mut().for_each(|g| g.committed = false);
        }
    }

    /// Runs the rollback groups of `m` (those from `m.rollback_from` on),
    /// each in its own transaction mode, after a failure ended the forward
    /// ones on another session; true when every one of them committed.
    pub async fn undo(&self, m: &Migration, rec: &mut MigrationRecord) -> bool {
        let Some(first) = m.rollback_from else { return true };
        self.clock.enter(Slot::Between);
        let mut p = Progress::default();
        let one_way = super::reversible::one_way(&m.steps);
        for g in m.groups.iter().filter(|g| g.steps.start >= first) {
            self.group(m, g, &one_way, &mut p, rec).await;
        }
        self.left_running(&p, rec);
        !p.any_failed && !p.abandoned
    }

    /// Runs the steps of group `g`, in its own transaction when it has one;
    /// `one_way` says which of `m`'s steps lose data.
    async fn group(
        &self,
        m: &Migration,
        g: &super::Group,
        one_way: &[Option<String>],
        p: &mut Progress,
        rec: &mut MigrationRecord,
    ) {
        let own_tx = !m.one_transaction && g.transaction == TxMode::File;
        let mode = if m.one_transaction { TxMode::File } else { g.transaction };
        let mut began = false;
        if own_tx && !p.aborted && !self.stop.is_cancelled() {
            began = self.begin(p).await;
            p.aborted |= !began;
            p.any_failed |= !began;
        }
        let first = rec.steps.len();
        for i in g.steps.clone() {
            let mut r = self.step(i, &m.steps[i], mode, m.steps.len(), p).await;
            r.one_way = one_way[i].clone();
            r.rollback = m.rollback_from.is_some_and(|from| i >= from);
            rec.steps.push(r);
        }
        let mut committed = began == own_tx && rec.steps[first..].iter().all(|s| s.outcome == Outcome::Ok);
        if began {
            let ok = self.end(!p.aborted && !self.stop.is_cancelled(), rec, p).await;
            if !ok && !p.aborted {
                p.aborted = true; // the COMMIT failed: the tool would stop here
                p.any_failed = true;
            }
            committed &= ok;
        }
        rec.groups.push(g.record(committed));
    }

    /// Says so when a cancelled statement still runs on the session.
    fn left_running(&self, p: &Progress, rec: &mut MigrationRecord) {
        if p.abandoned {
            (self.say)(
                "migration: the cancelled statement has not ended; its session (and transaction) is left to the \
                 cleanup, which terminates it",
            );
            rec.committed = false;
        }
    }

    /// Runs `work` on the migration's connection until it ends, or until the
    /// run must stop: then its statement is cancelled (a CancelRequest) and it
    /// gets `CANCEL_GRACE` to end. Once stopping, work only gets the grace.
    async fn until_stop<T>(&self, work: impl Future<Output = T>) -> Ended<T> {
        if self.stop.is_cancelled() {
            return Ended::Stopped(tokio::time::timeout(CANCEL_GRACE, work).await.ok());
        }
        tokio::pin!(work);
        tokio::select! {
            r = &mut work => Ended::Done(r),
            _ = self.stop.cancelled() => {
                let _ = cancel_token(self.tls, &self.client.cancel_token()).await;
                Ended::Stopped(tokio::time::timeout(CANCEL_GRACE, work).await.ok())
            }
        }
    }

    /// BEGIN, COMMIT or ROLLBACK of a transaction, under `until_stop`; sets
    /// `abandoned` when it does not end after its cancel.
    async fn control(&self, sql: &str, abandoned: &mut bool) -> crate::error::Result<()> {
        match self.until_stop(self.client.batch_execute(sql)).await {
            Ended::Done(r) | Ended::Stopped(Some(r)) => r.map_err(|e| Error::db(describe_pg(&e))),
            Ended::Stopped(None) => {
                *abandoned = true;
                Err(Error { kind: Kind::Interrupted, message: (self.why)() })
            }
        }
    }

    /// BEGIN; false (and says why) when it fails.
    async fn begin(&self, p: &mut Progress) -> bool {
        match self.control("BEGIN", &mut p.abandoned).await {
            Ok(()) => true,
            Err(e) => {
                (self.say)(&format!("migration: BEGIN failed: {e}"));
                false
            }
        }
    }

    /// COMMIT (or ROLLBACK when not `commit`), its time added to the last
    /// step that ran; true when it committed. Nothing is sent while a
    /// cancelled statement still runs on the connection (`abandoned`).
    async fn end(&self, commit: bool, rec: &mut MigrationRecord, p: &mut Progress) -> bool {
        if p.abandoned {
            return false;
        }
        let sql = if commit { "COMMIT" } else { "ROLLBACK" };
        let started = Instant::now();
        let res = self.control(sql, &mut p.abandoned).await;
        if let Some(last) = rec.steps.iter_mut().rev().find(|s| s.outcome != Outcome::Skipped) {
            last.duration += started.elapsed();
        }
        if let Err(e) = &res {
            (self.say)(&format!("migration: {sql} failed: {e}"));
        }
        commit && res.is_ok()
    }

    /// Sleeps for `d`; false when the run must stop first.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.stop.cancelled() => false,
        }
    }

    fn stopped(&self, statement: Option<usize>) -> Failure {
        Failure { outcome: Outcome::Interrupted, sqlstate: String::new(), message: (self.why)(), statement }
    }

    /// Runs step `i` (unless the run was aborted or must stop) and records it.
    async fn step(&self, i: usize, step: &Step, mode: TxMode, total: usize, p: &mut Progress) -> StepRecord {
        let kind = match step.kind {
            StepKind::Sql(_) => StepType::Sql,
            StepKind::Backfill { .. } => StepType::Backfill,
            StepKind::Pause(_) => StepType::Pause,
        };
        let start = self.clock.since_start(Instant::now());
        let mut r = StepRecord::new(step.name.clone(), kind, step.line, step.statements().len(), start);
        let sql: Vec<&str> = step.statements().iter().map(|s| s.sql.trim().trim_end_matches(';')).collect();
        r.sql = (!sql.is_empty()).then(|| format!("{};", sql.join(";\n")));
        r.lock_timeout = (!step.lock_timeout.is_zero()).then_some(step.lock_timeout);
        if p.aborted || self.stop.is_cancelled() {
            return r;
        }
        (self.say)(&format!("step {}/{total}: {}", i + 1, step.name));
        self.clock.enter(Slot::Step(i));
        let started = Instant::now();
        r.start = self.clock.since_start(started);
        self.mark(Mark::BeforeStep(i)).await;
        let result = match self.until_stop(self.run_step(i, step, mode, &mut r)).await {
            Ended::Done(res) => res,
            Ended::Stopped(ended) => {
                p.abandoned |= ended.is_none();
                Err(self.stopped(None))
            }
        };
        r.duration = started.elapsed();
        self.clock.enter(Slot::Between);
        match result {
            Ok(()) => {
                r.outcome = Outcome::Ok;
                r.verify = self.verify(step, mode).await;
            }
            Err(f) => {
                let go_on =
                    step.on_error == OnError::Continue && f.outcome != Outcome::Interrupted && !self.client.is_closed();
                (self.say)(&format!(
                    "step {} failed: {}{}",
                    i + 1,
                    f.message,
                    if go_on { " (on_error = continue: going on)" } else { "" }
                ));
                r.outcome = f.outcome;
                r.sqlstate = (!f.sqlstate.is_empty()).then_some(f.sqlstate);
                r.error = Some(f.message);
                r.failed_statement = f.statement;
                p.any_failed = true;
                p.aborted |= !go_on;
            }
        }
        r
    }

    /// Runs `step`'s verify statements (none: `None`) and leaves nothing
    /// behind: inside the open transaction (`file` mode) under a savepoint
    /// rolled back after, else in a transaction of their own, rolled back.
    /// A verify script's own BEGIN, COMMIT and ROLLBACK are left out.
    pub async fn verify(&self, step: &Step, mode: TxMode) -> Option<VerifyRecord> {
        if step.verify.is_empty() {
            return None;
        }
        let (open, close) = match mode {
            TxMode::File => ("SAVEPOINT lockimpact_verify", "ROLLBACK TO SAVEPOINT lockimpact_verify"),
            _ => ("BEGIN", "ROLLBACK"),
        };
        let started = Instant::now();
        let mut error = self.client.batch_execute(open).await.err().map(|e| describe_pg(&e));
        for s in step.verify.iter().filter(|s| !s.is_transaction_control) {
            if error.is_some() {
                break;
            }
            if let Err(e) = rows_of(self.client, &s.sql).await {
                error = Some(format!("line {}: {}", s.line, describe_pg(&e)));
            }
        }
        let _ = self.client.batch_execute(close).await;
        if let Some(e) = &error {
            (self.say)(&format!("  verify of {:?} failed: {e}", step.name));
        }
        Some(VerifyRecord { error, duration: started.elapsed() })
    }

    /// Tells the failure injector (`--fail-at`), if any, where the run is.
    async fn mark(&self, mark: Mark) {
        if let Some(f) = self.fail {
            f.reached(mark).await;
        }
    }

    async fn run_step(&self, i: usize, step: &Step, mode: TxMode, r: &mut StepRecord) -> Result<(), Failure> {
        if let StepKind::Pause(d) = step.kind {
            return if self.pause(d).await { Ok(()) } else { Err(self.stopped(None)) };
        }
        let before_nodes = self.filenodes().await;
        if let Ok(rows) = self.client.query(&names_sql(), &[]).await {
            *self.names_before.lock().expect("names") = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        }
        let wal_before = self.wal_lsn().await;
        r.wal_start = wal_before;
        let mut attempt = 0;
        loop {
            let res = self.attempt(i, step, mode, r).await;
            match res {
                Err(f) if f.outcome.is_transient() && attempt < step.retries && !self.stop.is_cancelled() => {
                    let backoff = step
                        .retry_backoff
                        .saturating_mul(1 << attempt.min(16))
                        .min(step.retry_backoff.max(MAX_BACKOFF));
                    attempt += 1;
                    r.retries = attempt;
                    (self.say)(&format!(
                        "  {}; retry {attempt}/{} in {} ms",
                        f.outcome.as_str().replace('_', " "),
                        step.retries,
                        backoff.as_millis()
                    ));
                    if !self.pause(backoff).await {
                        return Err(f);
                    }
                }
                other => {
                    if let (Some(a), Some(b)) = (wal_before, self.wal_lsn().await) {
                        r.wal_bytes = Some(b.saturating_sub(a));
                    }
                    if let (Some(before), Some(after)) = (before_nodes, self.filenodes().await) {
                        r.rewritten = rewritten(&before, &after);
                    }
                    return other;
                }
            }
        }
    }

    /// One attempt of step `i`, inside the transaction the mode asks for.
    async fn attempt(&self, i: usize, step: &Step, mode: TxMode, r: &mut StepRecord) -> Result<(), Failure> {
        let c = self.client;
        let exec = |sql: String| async move { c.batch_execute(&sql).await.map_err(|e| Failure::from_pg(&e, None)) };
        let mode = step.mode_in(mode);
        let own_tx = mode == TxMode::Step && !matches!(step.kind, StepKind::Backfill { .. });
        // A savepoint lets a failed step be retried or skipped without losing
        // the file's transaction.
        let savepoint = mode == TxMode::File && (step.retries > 0 || step.on_error == OnError::Continue);
        if own_tx {
            exec("BEGIN".into()).await?;
        }
        if savepoint {
            exec("SAVEPOINT lockimpact_step".into()).await?;
        }
        exec(format!(
            "SET lock_timeout = {}; SET statement_timeout = {}",
            step.lock_timeout.as_millis(),
            step.statement_timeout.as_millis()
        ))
        .await?;
        let body = self.body(i, step, mode, r).await;
        // Inside the step's (or the file's) transaction its locks are still
        // held; a backfill's batches and `none` statements added theirs as they committed.
        if body.is_ok() && (own_tx || mode == TxMode::File) {
            r.locks = self.held_locks().await;
        }
        if body.is_ok() {
            self.mark(Mark::AfterBody(i)).await;
        }
        match body {
            Ok(()) => {
                if own_tx {
                    exec("COMMIT".into()).await.map_err(|f| Failure { statement: None, ..f })?;
                }
                Ok(())
            }
            Err(f) => {
                if own_tx {
                    let _ = c.batch_execute("ROLLBACK").await;
                } else if savepoint {
                    let _ = c.batch_execute("ROLLBACK TO SAVEPOINT lockimpact_step").await;
                }
                Err(f)
            }
        }
    }

    async fn body(&self, i: usize, step: &Step, mode: TxMode, r: &mut StepRecord) -> Result<(), Failure> {
        match &step.kind {
            StepKind::Sql(statements) => {
                for (k, s) in statements.iter().enumerate() {
                    r.rows += if mode == TxMode::None { self.autocommit(s, r).await? } else { self.execute(s).await? };
                    self.mark(Mark::AfterStatement(i, k + 1)).await;
                }
                Ok(())
            }
            StepKind::Backfill { statement, pause, max_batches } => {
                let limit = max_batches.unwrap_or(DEFAULT_MAX_BATCHES);
                let mut batches = 0u64;
                loop {
                    if self.stop.is_cancelled() {
                        return Err(self.stopped(Some(statement.number)));
                    }
                    // In `step` mode every batch commits on its own: that is what batching is for.
                    let rows = match mode {
                        TxMode::Step => self.in_own_transaction(statement, r).await?,
                        TxMode::None => self.autocommit(statement, r).await?,
                        TxMode::File => self.execute(statement).await?,
                    };
                    batches += 1;
                    r.rows += rows;
                    r.batches = Some(batches);
                    if rows == 0 {
                        return Ok(());
                    }
                    self.mark(Mark::AfterStatement(i, batches as usize)).await;
                    if batches >= limit {
                        return Err(Failure {
                            outcome: Outcome::Error,
                            sqlstate: String::new(),
                            message: format!(
                                "backfill still affected rows after {limit} batches; raise max_batches or check that the statement converges to 0 rows"
                            ),
                            statement: Some(statement.number),
                        });
                    }
                    if !pause.is_zero() && !self.pause(*pause).await {
                        return Err(self.stopped(Some(statement.number)));
                    }
                }
            }
            StepKind::Pause(_) => Ok(()),
        }
    }

    /// Runs one statement as autocommit would (`none` mode), reading its
    /// locks before they are released: inside a transaction of its own when
    /// it may run in one (the same semantics as autocommit's implicit
    /// transaction), otherwise as written, its locks then left to the
    /// sampler (`unwrapped`). A statement the server refuses inside a block
    /// (25001, e.g. ALTER TYPE … ADD VALUE before PostgreSQL 12) runs as
    /// written too.
    async fn autocommit(&self, s: &Statement, r: &mut StepRecord) -> Result<u64, Failure> {
        let wrap = s.needs_autocommit.is_none() && !s.is_transaction_control && !super::split::requires_block(&s.sql);
        if wrap {
            match self.in_own_transaction(s, r).await {
                Err(f) if f.sqlstate == "25001" => {}
                other => return other,
            }
        }
        r.unwrapped.push(s.number);
        self.execute(s).await
    }

    /// Runs one statement in a transaction of its own and adds the locks it
    /// held before COMMIT to the step's.
    async fn in_own_transaction(&self, s: &Statement, r: &mut StepRecord) -> Result<u64, Failure> {
        self.client.batch_execute("BEGIN").await.map_err(|e| Failure::from_pg(&e, None))?;
        let res = self.execute(s).await;
        if res.is_err() {
            let _ = self.client.batch_execute("ROLLBACK").await;
            return res;
        }
        self.merge_locks(r).await;
        self.client.batch_execute("COMMIT").await.map_err(|e| Failure::from_pg(&e, Some(s.number)))?;
        res
    }

    /// Runs one statement; returns the rows it affected.
    async fn execute(&self, s: &Statement) -> Result<u64, Failure> {
        rows_of(self.client, &s.sql).await.map_err(|e| Failure::from_pg(&e, Some(s.number)))
    }

    /// The relation locks this session holds now. A predicate lock
    /// (`SIReadLock`, serializable transactions) is no table-level lock mode
    /// and blocks no one: it is left out.
    async fn held_locks(&self) -> HeldLocks {
        let Ok(rows) = self.client.query(&held_locks_sql(), &[]).await else { return HeldLocks::default() };
        let before = self.names_before.lock().expect("names").clone();
        let mut held = HeldLocks::default();
        for row in rows {
            let (oid, rel, mode): (i64, String, String) = (row.get(0), row.get(1), row.get(2));
            let Some(mode) = LockMode::parse(&mode) else { continue };
            let rel = match before.get(&oid) {
                Some(name) if rel.starts_with("dropped relation ") => name.clone(),
                _ => rel,
            };
            held.hold(&rel, mode);
        }
        held
    }

    /// Adds the locks held now to the step's (for backfill batches).
    async fn merge_locks(&self, r: &mut StepRecord) {
        r.locks.merge(&self.held_locks().await);
    }

    async fn filenodes(&self) -> Option<BTreeMap<String, String>> {
        filenodes(self.client).await
    }

    async fn wal_lsn(&self) -> Option<u64> {
        wal_lsn(self.client).await
    }
}

/// Runs `sql` (simple protocol); returns the rows it affected. The result
/// is streamed and each row discarded as it arrives: a step returning a
/// gigabyte is never held in memory (tokio-postgres reads the next message
/// only when this one is taken).
pub(super) async fn rows_of(client: &Client, sql: &str) -> Result<u64, tokio_postgres::Error> {
    use futures_util::StreamExt;
    let stream = client.simple_query_raw(sql).await?;
    let mut stream = std::pin::pin!(stream);
    let mut rows = 0;
    while let Some(m) = stream.next().await {
        if let SimpleQueryMessage::CommandComplete(n) = m? {
            rows += n;
        }
    }
    Ok(rows)
}

/// Runs the statements of `step` as a whole: a backfill's statement until it
/// affects no row (at most its `max_batches`), any other once each. Used
/// where a step is applied unmeasured (before the baseline, in a preflight).
pub(super) async fn apply_step(client: &Client, step: &Step) -> Result<(), tokio_postgres::Error> {
    match &step.kind {
        StepKind::Backfill { statement, max_batches, .. } => {
            for _ in 0..max_batches.unwrap_or(DEFAULT_MAX_BATCHES) {
                if rows_of(client, &statement.sql).await? == 0 {
                    break;
                }
            }
        }
        _ => {
            for s in step.statements() {
                rows_of(client, &s.sql).await?;
            }
        }
    }
    Ok(())
}

/// relfilenode of every user table, as `client` sees them.
pub(super) async fn filenodes(client: &Client) -> Option<BTreeMap<String, String>> {
    let rows = client.query(FILENODES_SQL, &[]).await.ok()?;
    Some(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The tables whose relfilenode changed between `before` and `after` (rewritten).
pub(super) fn rewritten(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    before
        .iter()
        .filter(|(rel, node)| after.get(*rel).is_some_and(|n| n != *node))
        .map(|(rel, _)| rel.clone())
        .collect()
}

/// The server's WAL insert position, in bytes.
pub(super) async fn wal_lsn(client: &Client) -> Option<u64> {
    let row = client.query_one("SELECT pg_current_wal_insert_lsn()::text", &[]).await.ok()?;
    crate::pg::lsn::parse(&row.get::<_, String>(0))
}
