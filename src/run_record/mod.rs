//! `RunRecord`: everything one rehearsal measured, raw and in memory. The
//! workload, sampler and migration runner each fill their part; the report
//! builder is the only reader and the only place numbers are derived.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::pg::lockmode::{HeldLocks, LockMode};
use crate::timeline::{Mark, Slot};

pub mod budget;
pub mod replica;

pub use budget::BudgetSection;

pub type Hist = Histogram<u64>;

/// A latency histogram in microseconds, 3 significant digits, from 1µs.
/// It grows with the largest value recorded (auto-resize) instead of
/// allocating for an hour up front: about 50 KB for values up to 20 ms,
/// 188 KB for an hour, so a run of a thousand steps keeps a histogram per
/// step and class without running out of memory.
pub fn new_hist() -> Hist {
    let mut h = Histogram::new_with_bounds(1, 2, 3).expect("valid histogram bounds");
    h.auto(true);
    h
}

#[derive(Debug)]
pub struct RunRecord {
    pub scenario_name: String,
    pub scenario_path: String,
    pub clone_description: String,
    /// The backend without the server's details (no port).
    pub clone_kind: String,
    pub server_version: String,
    pub tables: Vec<TableInfo>,
    pub seed_time: Duration,
    pub copy_time: Duration,
    /// How the run's fresh copy was made, and why that way (`None`: by
    /// template copy inside the rehearsal, or an existing database).
    pub copy_method: Option<(CopyMethod, String)>,
    /// Time to restore `snapshot.dump`, when the dataset came from a dump.
    pub restore_time: Option<Duration>,
    /// Size of the template database, bytes.
    pub dataset_bytes: Option<i64>,
    /// `snapshot.dump`, when the dataset came from a dump.
    pub dump: Option<DumpSource>,
    /// `snapshot.synthetic`, when the dataset was generated from statistics.
    pub synthetic: Option<SyntheticSource>,
    /// Notes from building the dataset (e.g. skipped owners and grants).
    pub dataset_notes: Vec<String>,
    pub marks: Vec<Mark>,
    /// When the run ended (clock offset).
    pub end: Duration,
    pub workload: WorkloadRecord,
    pub migration: MigrationRecord,
    pub sampler: SamplerRecord,
    pub budget: BudgetSection,
    /// Why the run ended before its last phase, if it did.
    pub stop: Option<Stop>,
    /// What the replica sampler measured on the clone's standbys (`[replica]`).
    pub replicas: Option<replica::ReplicasRecord>,
}

/// Why a rehearsal ended early; what was measured until then is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Ctrl-C, SIGTERM or SIGHUP.
    Interrupted,
    /// The server stopped answering (it died, or its container went away).
    ServerLost,
    /// The server is there but frozen: the watchdog's new connection got no
    /// answer within its bound (a stopped postmaster, a paused container).
    Unresponsive,
    /// The migration's own session was terminated while the server kept
    /// answering (`pg_terminate_backend`, a session timeout).
    MigrationTerminated,
}

impl Stop {
    pub fn reason(self) -> String {
        match self {
            Stop::Interrupted => "interrupted (Ctrl-C, SIGTERM or SIGHUP)".into(),
            Stop::ServerLost => {
                "the server stopped answering (it crashed, was stopped, or its container went away)".into()
            }
            Stop::Unresponsive => {
                format!("the server froze: {}, so the watchdog ended the run", frozen())
            }
            Stop::MigrationTerminated => "the migration's own session was terminated (pg_terminate_backend, an \
                 administrator, or a session timeout) while the server kept running; the remaining steps did not run"
                .into(),
        }
    }
}

/// How long a probe may go unanswered before the server counts as frozen.
pub const UNRESPONSIVE_AFTER: Duration = Duration::from_secs(10);

/// What the watchdog saw, for messages.
pub fn frozen() -> String {
    format!(
        "a new connection got no answer within {} s (its postmaster stopped with SIGSTOP, its container paused, \
         or the machine overloaded)",
        UNRESPONSIVE_AFTER.as_secs()
    )
}

/// One table of the dataset, as the report shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TableInfo {
    pub name: String,
    pub rows: i64,
    pub bytes: i64,
}

/// How the migration's statements are wrapped in transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TxMode {
    /// The whole file in one transaction (as most migration frameworks run it).
    File,
    /// One transaction per step.
    Step,
    /// Autocommit: every statement commits on its own (required for CONCURRENTLY).
    None,
}

impl TxMode {
    pub fn parse(s: &str) -> Option<TxMode> {
        match s {
            "file" => Some(TxMode::File),
            "step" => Some(TxMode::Step),
            "none" => Some(TxMode::None),
            _ => None,
        }
    }

    /// The name used in directives and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            TxMode::File => "file",
            TxMode::Step => "step",
            TxMode::None => "none",
        }
    }
}

#[derive(Debug)]
pub struct WorkloadRecord {
    pub classes: Vec<String>,
    pub target_rate: f64,
    pub connections: u32,
    /// Per class, per slot index: latency of finished operations (µs), ok
    /// or error, from their intended start; operations still queued or
    /// running at the end count with the time they had waited.
    pub latency: Vec<Vec<Option<Hist>>>,
    /// (slot index, class index, SQLSTATE) → (count, first message):
    /// failures by the phase of their intended start (`errors` sums them).
    pub slot_errors: BTreeMap<(usize, usize, String), (u64, String)>,
    /// Measured operations of the schedule the client never started: the
    /// pacer's queue was full (the client was overloaded).
    pub dropped: u64,
    /// Operations the pacer emitted in measured phases.
    pub issued_measured: u64,
    /// Per slot index: operations that finished (ok or error), by the slot they started in.
    pub finished: Vec<u64>,
    /// A replay's schedule (`None` for a rate-based one: `target_rate` says it).
    pub replay_schedule: Option<ReplaySchedule>,
    /// Operations still queued or running when the run ended.
    pub unfinished: u64,
    /// How late the pacer emitted operations against their intended start (µs).
    pub schedule_lag: Hist,
    /// Per second since the clock started, by the second operations finished.
    pub seconds: Vec<SecondRecord>,
    /// The same by the second of their intended start.
    pub started: Vec<SecondRecord>,
    /// Per second: the most operations waiting at once (intended start
    /// passed, not finished), read every 100 ms.
    pub waiting: Vec<u64>,
    /// A session replay (paced by `workload.speed`), not a rate-based workload.
    pub replay: bool,
    /// A session replay's connection pool.
    pub pool: Option<PoolRecord>,
}

/// What a replay's recording asked for while the migration ran.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplaySchedule {
    /// Statements scheduled while the migration ran.
    pub during: u64,
    /// The recording's mean rate at the replay's speed (statements/s).
    pub mean_rate: f64,
}

/// A session replay's connection pool: its size and, per slot, how long
/// sessions waited for a connection (µs).
#[derive(Debug, Clone)]
pub struct PoolRecord {
    pub size: u32,
    pub wait: Vec<Option<Hist>>,
}

impl PoolRecord {
    pub fn new(size: u32, slots: usize) -> PoolRecord {
        PoolRecord { size, wait: vec![None; slots] }
    }

    pub fn record(&mut self, slot: crate::timeline::Slot, wait: Duration) {
        if let Some(h) = self.wait.get_mut(slot.index()) {
            let _ = h.get_or_insert_with(new_hist).record((wait.as_micros() as u64).max(1));
        }
    }
}

impl WorkloadRecord {
    /// Operations that finished (ok or error) in the measured phases.
    pub fn finished_measured(&self) -> u64 {
        self.finished.iter().skip(Slot::Baseline.index()).sum()
    }

    /// (class index, SQLSTATE) → (count, first message), over every phase.
    pub fn errors(&self) -> BTreeMap<(usize, String), (u64, String)> {
        let mut out = BTreeMap::new();
        for ((_, c, code), (n, msg)) in &self.slot_errors {
            out.entry((*c, code.clone())).or_insert((0, msg.clone())).0 += n;
        }
        out
    }
}

impl Default for WorkloadRecord {
    fn default() -> Self {
        WorkloadRecord {
            classes: Vec::new(),
            target_rate: 0.0,
            connections: 0,
            latency: Vec::new(),
            slot_errors: BTreeMap::new(),
            dropped: 0,
            issued_measured: 0,
            finished: Vec::new(),
            replay_schedule: None,
            unfinished: 0,
            schedule_lag: new_hist(),
            seconds: Vec::new(),
            started: Vec::new(),
            waiting: Vec::new(),
            replay: false,
            pool: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecondRecord {
    pub ops: u64,
    pub errors: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    /// Per class, in class order.
    pub classes: Vec<ClassSecond>,
}

/// One class's operations and latency in one second.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ClassSecond {
    pub ops: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    LockTimeout,
    StatementTimeout,
    Deadlock,
    SerializationFailure,
    Error,
    /// Not run because an earlier step failed.
    Skipped,
    /// The run was interrupted during this step.
    Interrupted,
}

impl Outcome {
    pub fn from_sqlstate(code: &str) -> Outcome {
        match code {
            "55P03" => Outcome::LockTimeout,
            "57014" => Outcome::StatementTimeout,
            "40P01" => Outcome::Deadlock,
            "40001" => Outcome::SerializationFailure,
            _ => Outcome::Error,
        }
    }
    /// Worth retrying: the same step may succeed a moment later.
    pub fn is_transient(self) -> bool {
        matches!(self, Outcome::LockTimeout | Outcome::Deadlock | Outcome::SerializationFailure)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::LockTimeout => "lock_timeout",
            Outcome::StatementTimeout => "statement_timeout",
            Outcome::Deadlock => "deadlock",
            Outcome::SerializationFailure => "serialization_failure",
            Outcome::Error => "error",
            Outcome::Skipped => "skipped",
            Outcome::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Default)]
pub struct MigrationRecord {
    pub file: String,
    /// `Source::describe` of where it came from.
    pub source: Option<String>,
    /// The mode of every group; `None` when they differ (or nothing ran).
    pub transaction: Option<TxMode>,
    /// All groups ran in one transaction (Drizzle).
    pub one_transaction: bool,
    pub pid: i32,
    /// The migration session's `deadlock_timeout`: how long a lock request
    /// waits before the server checks for a deadlock and cancels an
    /// autovacuum in its way. `None` when it could not be read.
    pub deadlock_timeout: Option<Duration>,
    pub committed: bool,
    pub steps: Vec<StepRecord>,
    /// The units applied whole (migration files), in order, over `steps`.
    pub groups: Vec<GroupRecord>,
    /// What was chosen to run and why (pending migrations, `--from`,
    /// earlier ones applied before the baseline, unmeasured).
    pub selection: Option<Selection>,
    /// Preflight data checks, run before the workload started.
    pub preflight: Option<PreflightRecord>,
    /// A framework command whose statements were captured (`migration.command`).
    pub command: Option<CommandRecord>,
    /// `--fail-at`: the run failed its migration on purpose, then rolled back.
    pub failure: Option<FailureRecord>,
}

/// How a run's fresh copy of the template was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMethod {
    /// A server of its own on a copy-on-write (reflink) copy of the stopped
    /// template server's data directory.
    Reflink,
    /// `CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY` on the template's server.
    TemplateCopy,
}

impl CopyMethod {
    /// `reflink` or `template_copy`, as reports name it.
    pub fn as_str(self) -> &'static str {
        match self {
            CopyMethod::Reflink => "reflink",
            CopyMethod::TemplateCopy => "template_copy",
        }
    }
}

/// Where in its step a stop point is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopAt {
    /// As the step begins: nothing of it has run.
    Start,
    /// Halfway: after half its statements (⌈n/2⌉) when it has several, after
    /// half the batches a backfill ran in the forward rehearsal; for one
    /// statement, once it has run half as long as it took there.
    #[default]
    Middle,
    /// Its statements all ran, before its transaction (if it has one) commits.
    End,
}

impl StopAt {
    pub fn as_str(self) -> &'static str {
        match self {
            StopAt::Start => "start",
            StopAt::Middle => "middle",
            StopAt::End => "end",
        }
    }

    pub fn parse(s: &str) -> Option<StopAt> {
        match s {
            "start" => Some(StopAt::Start),
            "middle" => Some(StopAt::Middle),
            "end" => Some(StopAt::End),
            _ => None,
        }
    }
}

/// How an object differs from before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaChange {
    Added { object: String, detail: String },
    Removed { object: String, detail: String },
    Changed { object: String, before: String, after: String },
}

impl SchemaChange {
    /// "added column orders.billing_country (text)".
    pub fn describe(&self) -> String {
        let with = |d: &str| if d.is_empty() { String::new() } else { format!(" ({d})") };
        match self {
            SchemaChange::Added { object, detail } => format!("added {object}{}", with(detail)),
            SchemaChange::Removed { object, detail } => format!("removed {object}{}", with(detail)),
            SchemaChange::Changed { object, before, after } => format!("changed {object}: {before} → {after}"),
        }
    }
}

/// A rehearsal that terminated its migration's session at a stop point
/// (`--fail-at`): what the failure left, and the rollback from there.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FailureRecord {
    /// The stop point, as `StopPoint::describe` says it.
    pub point: String,
    /// Its step (index into the steps) and position.
    pub step: usize,
    pub at: StopAt,
    /// Where the session was actually terminated; `None` when the migration
    /// ended before reaching the point (its steps say why).
    pub fired: Option<String>,
    /// The forward steps whose work was committed (indexes).
    pub completed: Vec<usize>,
    /// Rows written by statements whose work was committed.
    pub rows_kept: u64,
    /// Set when the interrupted step ran inside a transaction spanning
    /// several steps: which ones rolled back with it.
    pub rolled_back_as_one: Option<String>,
    /// How the schema differed from before the migration, after the failure.
    pub left: Vec<SchemaChange>,
    /// Rollback steps run (down sections of what completed, in reverse).
    pub undo_steps: usize,
    /// Every rollback step succeeded and committed.
    pub rollback_ok: bool,
    pub rollback_time: Duration,
    /// How the schema still differs from before, after the rollback.
    pub residue: Vec<SchemaChange>,
    /// Every completed step had a down part: a clean rollback leaves the
    /// schema as it was.
    pub undo_covers_all: bool,
    /// After the rollback, the verify of each completed step it left in place.
    pub verify_after: Vec<(usize, VerifyRecord)>,
    /// The state could not be read (the cause), or the rollback could not start.
    pub error: Option<String>,
}

/// A framework command run against the clone, as a whole; its statements are the steps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandRecord {
    pub command: String,
    /// `None` when it was killed (interrupted) or could not start.
    pub exit_code: Option<i32>,
    /// The last lines it printed (stdout and stderr).
    pub output_tail: String,
    pub duration: Duration,
    /// Server-wide WAL written while it ran, and the tables it rewrote
    /// (measured around the whole command: its statements ran on its own
    /// sessions, where lockimpact cannot look between them).
    pub wal_bytes: Option<u64>,
    pub rewritten: Vec<String>,
    /// Sessions it opened on the clone.
    pub sessions: usize,
}

/// One group of steps applied as a whole (a migration file).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRecord {
    pub name: String,
    pub file: String,
    pub version: Option<String>,
    pub transaction: TxMode,
    /// Indexes into the run's steps.
    pub steps: std::ops::Range<usize>,
    /// Every step succeeded and its transaction (if it had one) committed.
    pub committed: bool,
    /// Its down part was read (kept for a rollback; not run forward).
    pub has_down: bool,
    /// The command whose statements were captured from the log, for a `command` migration.
    pub captured: bool,
}

/// Which migrations of a directory were rehearsed, and why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// `flyway`, `goose`, …
    pub format: String,
    /// The history table read, when the snapshot has it.
    pub history_table: Option<String>,
    /// `--from` / `migration.from`.
    pub from: Option<String>,
    /// Migrations found in the directory.
    pub found: usize,
    /// Recorded as applied in the history table (not run).
    pub applied: Vec<String>,
    /// Pending but before `from`: applied before the baseline, unmeasured.
    pub applied_before_baseline: Vec<String>,
    /// How long applying those took.
    pub setup_time: Duration,
    /// What the user should know (no history table, a dirty version, …).
    pub notes: Vec<String>,
}

/// What a step runs, as the report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepType {
    /// SQL statements.
    Sql,
    /// A batched backfill (`-- lockimpact: backfill`).
    Backfill,
    /// A pause between steps (`-- lockimpact: pause`).
    Pause,
}

/// The statistics a dataset was generated from.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticSource {
    pub file: String,
    /// `snapshot.scale`: the fraction of the statistics' row counts generated.
    pub scale: f64,
    /// `snapshot.synthetic_seed`; `None`: the generator's fixed default.
    pub seed: Option<u64>,
}

/// The dump a dataset was restored from.
#[derive(Debug, Clone, PartialEq)]
pub struct DumpSource {
    pub file: String,
    /// `custom`, `directory`, `tar` or `plain SQL`.
    pub format: String,
    /// `snapshot.sample`: the fraction of its rows kept.
    pub sample: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct StepRecord {
    pub name: String,
    pub kind: StepType,
    pub line: usize,
    pub statements: usize,
    pub start: Duration,
    pub duration: Duration,
    pub outcome: Outcome,
    pub sqlstate: Option<String>,
    pub error: Option<String>,
    /// 1-based statement number in the file that failed.
    pub failed_statement: Option<usize>,
    pub retries: u32,
    pub batches: Option<u64>,
    pub rows: u64,
    pub wal_bytes: Option<u64>,
    /// The server's WAL insert position when the step began: with
    /// `wal_bytes`, the range of WAL written while it ran.
    pub wal_start: Option<u64>,
    pub rewritten: Vec<String>,
    /// Relation → lock mode, as read inside the step's transaction.
    pub locks: HeldLocks,
    /// Statements (numbers in the file) that ran outside any transaction block
    /// (CREATE INDEX CONCURRENTLY, VACUUM, …): their locks are only known
    /// from the sampler's polls.
    pub unwrapped: Vec<usize>,
    /// The step's statements as written (none for a pause or a captured step).
    pub sql: Option<String>,
    /// The lock_timeout it ran with (none when it had none).
    pub lock_timeout: Option<Duration>,
    /// Why no down step can undo it (it loses data), when it cannot.
    pub one_way: Option<String>,
    /// It undoes a forward step (`--rollback`).
    pub rollback: bool,
    /// Its verify statements, run after it succeeded.
    pub verify: Option<VerifyRecord>,
}

/// A step's verify statements, run after it (and left no trace: rolled back).
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyRecord {
    /// The error that failed it (with the line), when one did.
    pub error: Option<String>,
    pub duration: Duration,
}

impl StepRecord {
    /// A step not run yet (`skipped` until it is), starting at `start`.
    pub fn new(name: String, kind: StepType, line: usize, statements: usize, start: Duration) -> StepRecord {
        StepRecord {
            name,
            kind,
            line,
            statements,
            start,
            duration: Duration::ZERO,
            outcome: Outcome::Skipped,
            sqlstate: None,
            error: None,
            failed_statement: None,
            retries: 0,
            batches: None,
            rows: 0,
            wal_bytes: None,
            wal_start: None,
            rewritten: Vec::new(),
            locks: HeldLocks::default(),
            unwrapped: Vec::new(),
            sql: None,
            lock_timeout: None,
            one_way: None,
            rollback: false,
            verify: None,
        }
    }
}

/// Who a session of the rehearsal is, as the sampler names a waiting one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// One of the migration's backends.
    Migration,
    /// A workload session running a statement of this query class.
    Class(String),
    /// A workload session running something no class has.
    Workload,
}

impl Who {
    pub fn is_migration(&self) -> bool {
        *self == Who::Migration
    }
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Who::Migration => f.write_str("migration"),
            Who::Class(name) => f.write_str(name),
            Who::Workload => f.write_str("workload"),
        }
    }
}

/// A session the migration waited behind, as the sampler saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    pub pid: i32,
    pub kind: BlockerKind,
}

/// What a blocker of the migration was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockerKind {
    /// One of the rehearsal's own sessions.
    Rehearsal(Who),
    /// An autovacuum worker, by what it does (`VACUUM ANALYZE public.orders`,
    /// `VACUUM public.orders (to prevent wraparound)`).
    Autovacuum(String),
    /// Any other session.
    Other,
}

impl Blocker {
    /// What the autovacuum worker does, when it is one that a waiting lock
    /// request can cancel (after `deadlock_timeout`): not one to prevent
    /// wraparound, which is never cancelled.
    pub fn cancellable_autovacuum(&self) -> Option<&str> {
        match &self.kind {
            BlockerKind::Autovacuum(what) if !what.contains("to prevent wraparound") => Some(what),
            _ => None,
        }
    }
}

/// "class (pid N)": `migration (pid 7)`, `autovacuum VACUUM public.orders (pid 9)`.
impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            BlockerKind::Rehearsal(who) => write!(f, "{who}"),
            BlockerKind::Autovacuum(what) => write!(f, "autovacuum {what}"),
            BlockerKind::Other => f.write_str("another session"),
        }?;
        write!(f, " (pid {})", self.pid)
    }
}

/// One session waiting for a lock, from first to last sighting.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    pub pid: i32,
    pub who: Who,
    pub start: Duration,
    pub end: Duration,
    pub mode: LockMode,
    pub locktype: String,
    pub relation: Option<String>,
    pub blockers: Vec<i32>,
    /// For the migration's own waits: who its blockers are.
    pub blocker_classes: Vec<Blocker>,
    /// The migration backend is in its blocking chain.
    pub by_migration: bool,
}

#[derive(Debug, Default)]
pub struct SamplerRecord {
    pub interval: Duration,
    pub polls: u64,
    /// The sampler's own query time (µs).
    pub query_time: Option<Hist>,
    pub episodes: Vec<Episode>,
    /// Per slot index: relation → lock modes the migration held (sampled).
    pub migration_locks: BTreeMap<usize, HeldLocks>,
    /// Per second: most workload sessions waiting on a lock at once (any cause / by the migration).
    pub blocked_per_second: Vec<(u32, u32)>,
    /// When the migration was seen holding each relation lock (consecutive
    /// polls make one span): the locks of captured statements, which have no
    /// slot of their own.
    pub migration_lock_spans: Vec<LockSpan>,
    /// Times the sampler saw nothing: its session ended (terminated, timed
    /// out) and it polled again only on a new connection.
    pub gaps: Vec<Gap>,
}

/// A time the sampler could not poll (clock offsets).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gap {
    pub from: Duration,
    pub to: Duration,
}

/// A relation lock the migration was seen holding from one poll to another.
#[derive(Debug, Clone, PartialEq)]
pub struct LockSpan {
    pub relation: String,
    pub mode: LockMode,
    pub from: Duration,
    pub to: Duration,
}

/// The preflight data checks of a run: each check, and their own cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PreflightRecord {
    pub checks: Vec<CheckRecord>,
    /// Wall time of the whole preflight (copy, earlier steps, checks).
    pub duration: Duration,
    /// Where the checks ran, e.g. "a separate copy of the dataset, earlier steps applied and rolled back".
    pub place: String,
}

/// What a preflight check looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// `SET NOT NULL` (and the columns of a new primary key): NULLs.
    NotNull,
    /// `ADD CHECK` / `VALIDATE` of a check constraint: rows the expression rejects.
    Check,
    /// `ADD UNIQUE` / `PRIMARY KEY`, `CREATE UNIQUE INDEX`: duplicates.
    Unique,
    /// `ADD FOREIGN KEY` / `VALIDATE` of one: rows without a parent (orphans).
    ForeignKey,
    /// `ALTER COLUMN … TYPE`: values that do not convert.
    Cast,
}

/// One preflight check of one statement.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRecord {
    /// Index of the step (in the run's steps) and the statement's number in its file.
    pub step: usize,
    pub statement: usize,
    pub kind: CheckKind,
    pub relation: String,
    pub columns: Vec<String>,
    /// The constraint, expression or type checked, as SQL.
    pub detail: String,
    /// Rows that violate it; `None` when the check could not run (`skipped`).
    pub violations: Option<u64>,
    /// Up to five violating rows (their key and the offending value), as text.
    pub examples: Vec<String>,
    /// What the violating rows have, e.g. "billing_country NULL".
    pub what: String,
    pub duration: Duration,
    /// Why it did not run (the step is not reached, the table is missing, …).
    pub skipped: Option<String>,
}
