//! The report model: the JSON contract (`schema_version` 1). Built once by
//! `builder`; every renderer formats it and computes nothing. Changes are
//! additive only: new fields may appear, existing ones keep name and meaning.
//! Durations are milliseconds (`*_ms`), offsets are from the start of warmup.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::pg::lockmode::LockMode;
use crate::run_record::{Outcome, StepType, TableInfo};

pub const SCHEMA_VERSION: u32 = 1;

/// A phase of the run, as the report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Warmup,
    Baseline,
    /// From the migration's first step to its end.
    During,
    After,
}

impl Phase {
    /// The phases latency is reported for, in the order of time.
    pub const MEASURED: [Phase; 3] = [Phase::Baseline, Phase::During, Phase::After];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Warmup => "warmup",
            Phase::Baseline => "baseline",
            Phase::During => "during",
            Phase::After => "after",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// By name: maps keyed by phase serialize their keys in the order the JSON
/// contract has always had (`after`, `baseline`, `during`).
impl Ord for Phase {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name().cmp(other.name())
    }
}

impl PartialOrd for Phase {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Where a new error class first appeared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Onset {
    /// In a step (`NewError::step` says which).
    Step,
    /// The migration running outside a step (BEGIN, COMMIT).
    Between,
    /// After the migration (the cooldown).
    After,
}

impl Onset {
    pub fn name(self) -> &'static str {
        match self {
            Onset::Step => "step",
            Onset::Between => "between",
            Onset::After => "after",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub schema_version: u32,
    pub tool: String,
    pub scenario: ScenarioInfo,
    pub clone: CloneInfo,
    pub dataset: DatasetInfo,
    pub phases: PhaseTimes,
    pub workload: WorkloadSummary,
    pub migration: MigrationSummary,
    pub steps: Vec<StepReport>,
    /// Index into `steps` of the longest SQL step (pauses excluded).
    pub longest_step: Option<usize>,
    pub blocked: BlockedSummary,
    /// class → phase (`baseline`, `during`, `after`) → latency.
    pub latency: BTreeMap<String, BTreeMap<Phase, Latency>>,
    /// phase → the latency distribution of all classes together, at fixed
    /// percentiles (50 … 99.99, 100), for percentile plots.
    #[serde(default)]
    pub latency_percentiles: BTreeMap<Phase, Vec<Percentile>>,
    /// One entry per second since warmup started.
    pub timeline: Vec<Second>,
    pub sampler: SamplerInfo,
    pub verdict: Verdict,
    pub warnings: Vec<String>,
    /// False when the run ended before its last phase (interrupted, server
    /// lost): the numbers cover what was measured until then.
    #[serde(default = "yes")]
    pub complete: bool,
    /// Why the run is incomplete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete_reason: Option<String>,
    /// Errors the migration caused: a query class failing with a SQLSTATE
    /// it did not fail with in the baseline, where it first appeared.
    #[serde(default)]
    pub new_errors: Vec<NewError>,
    /// Preflight data checks of the steps that can fail on data, run before
    /// the workload started (absent when no step has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preflight: Option<Preflight>,
    /// The budget the verdict checked and where it came from (absent in
    /// reports written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetReport>,
    /// What the clone's streaming standbys saw (`[replica]`); absent without standbys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<ReplicasReport>,
    /// `--fail-at`: for each stop point, a rehearsal on a fresh copy that
    /// terminated the migration's session there, then rolled back what had
    /// completed (absent without `--fail-at`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_points: Vec<StopPointReport>,
    /// `run --scales`: the rehearsal repeated at several row counts, each
    /// step's figures fitted against the rows and predicted at production's
    /// (absent without `--scales`). This report is the largest scale's run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extrapolation: Option<Extrapolation>,
}

/// `run --scales`: what each scale measured, the fit per step and figure,
/// the prediction at `predict_rows`, and the budgets a step passes now but
/// would exceed there.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Extrapolation {
    /// The rows (`vars.rows`) of each rehearsal, ascending; the last is this report's.
    pub scales: Vec<u64>,
    /// The row count predicted at.
    pub predict_rows: u64,
    /// Where `predict_rows` came from: `flag` (`--predict-rows`), `scenario`
    /// (its `vars.rows`) or `statistics` (a generated dataset's largest table
    /// in its statistics file).
    pub predict_source: PredictSource,
    /// The coverage of each prediction's `low`..`high` interval (0.9).
    pub level: f64,
    pub steps: Vec<StepExtrapolation>,
    /// Budgets a step passes at the largest scale and is predicted to exceed.
    pub risks: Vec<BudgetRisk>,
    /// Steps or figures left out of the fit, and why.
    pub notes: Vec<String>,
    /// `[vars]` set in proportion to `vars.rows` at each scale (`--scale-vars`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scaled_vars: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PredictSource {
    Flag,
    Scenario,
    /// The statistics file's row count of a generated dataset's largest table.
    Statistics,
    /// A dump's largest table in full: its rows in the largest sample over
    /// that sample's fraction.
    Dump,
}

/// One step's figures, fitted and predicted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepExtrapolation {
    /// Index into `steps`.
    pub step: usize,
    pub name: String,
    /// Figure → its fit (figures not measured at every scale are absent).
    pub figures: BTreeMap<Figure, FigureFit>,
}

/// A step's figure that is fitted against the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Figure {
    /// The step's duration.
    DurationMs,
    /// How long it held its locks: its duration less its own lock wait (0 without locks).
    LockHoldMs,
    /// Time workload sessions spent blocked by it.
    BlockedMs,
    /// Server-wide WAL written during it.
    WalBytes,
}

impl Figure {
    pub const ALL: [Figure; 4] = [Figure::DurationMs, Figure::LockHoldMs, Figure::BlockedMs, Figure::WalBytes];

    pub fn as_str(self) -> &'static str {
        match self {
            Figure::DurationMs => "duration",
            Figure::LockHoldMs => "lock hold",
            Figure::BlockedMs => "blocked",
            Figure::WalBytes => "WAL",
        }
    }
}

/// A figure's fit over the scales and its prediction.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FigureFit {
    /// Measured at each scale, in the order of `scales`.
    pub measured: Vec<f64>,
    pub model: crate::report::fit::Model,
    /// The fitted curve: `a + b·x` with x = n, n·ln n (or none: `constant`).
    pub a: f64,
    pub b: f64,
    pub r2: f64,
    /// Measured − fitted at each scale.
    pub residuals: Vec<f64>,
    pub predicted: f64,
    pub low: f64,
    pub high: f64,
}

/// A budget a step passes at the largest scale and would exceed at `predict_rows`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BudgetRisk {
    /// Index into `steps`.
    pub step: usize,
    /// `max_step`, `max_blocked` or `max_blocked_wait`.
    pub budget: String,
    pub limit: f64,
    /// At the largest scale.
    pub measured: f64,
    pub predicted: f64,
    pub high: f64,
    /// True when the prediction itself exceeds the limit; false when only
    /// the interval's upper end does.
    pub likely: bool,
    pub message: String,
}

/// One stop point of `--fail-at`: what the failure left, and the rollback from it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StopPointReport {
    /// Index into `steps` of the step it failed in, and where in it.
    pub step: usize,
    pub name: String,
    pub at: crate::run_record::StopAt,
    /// In words: "step 2 (backfill …) at its middle, 1200 ms in".
    pub point: String,
    /// Where the session was terminated (absent when the migration ended
    /// before reaching the point: see `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired: Option<String>,
    /// Indexes into `steps` of the steps whose work was committed.
    pub completed_steps: Vec<usize>,
    /// Rows written by statements whose work was committed.
    pub rows_kept: u64,
    /// Set when the interrupted step's transaction spanned several steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_as_one: Option<String>,
    /// How the schema differed from before the migration after the failure
    /// ("added column orders.billing_country (text)", "… (not validated)").
    pub left: Vec<String>,
    pub rollback: RollbackReport,
    /// Errors the workload saw that it did not see in the baseline (the
    /// running application against the half-migrated schema).
    pub new_errors: Vec<NewError>,
    /// The budget checked on this rehearsal (the injected failure itself
    /// excepted), and the rollback's own checks.
    pub violations: Vec<Violation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A step's verify statements: whether they passed, and their error.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VerifyReport {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: f64,
}

/// The rollback from a stop point: the down steps of what had completed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RollbackReport {
    /// Every down step succeeded and committed.
    pub ok: bool,
    /// `ok`, and the schema is as before the migration.
    pub clean: bool,
    pub duration_ms: f64,
    /// The down steps, measured like forward steps (locks, blocked sessions).
    pub steps: Vec<StepReport>,
    /// Longest wait of a workload session on a down step, and most sessions
    /// blocked at once by one.
    pub longest_blocked_ms: f64,
    pub blocked_sessions: u32,
    /// How the schema still differs from before, after the rollback.
    pub residue: Vec<String>,
    /// After the rollback, the verify of each completed step it left in
    /// place (index into `steps`, and its result).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verify: Vec<(usize, VerifyReport)>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScenarioInfo {
    pub name: String,
    pub file: String,
    pub migration_file: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CloneInfo {
    /// The backend and where the disposable server ran (its port).
    pub backend: String,
    pub server_version: String,
    /// The backend without the disposable server's details (port,
    /// container, connection), as Markdown shows it. Absent in reports
    /// written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DatasetInfo {
    pub tables: Vec<TableInfo>,
    pub seed_ms: f64,
    /// How the run's fresh copy was made: `reflink` (a server of its own on
    /// a copy-on-write copy of the stopped template's data directory) or
    /// `template_copy` (`CREATE DATABASE … TEMPLATE`), and why; absent for
    /// an existing database and in reports written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_why: Option<String>,
    pub copy_ms: f64,
    /// Time to restore `snapshot.dump` (absent when a seed script built the dataset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_ms: Option<f64>,
    /// Size of the template database in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<i64>,
    /// The pg_dump snapshot restored, when `snapshot.dump` was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump: Option<DumpInfo>,
    /// The statistics file the rows were generated from, when `snapshot.synthetic` was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<SyntheticInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SyntheticInfo {
    pub stats_file: String,
    /// `snapshot.scale`: the fraction of the statistics' row counts generated.
    pub scale: f64,
    /// `snapshot.synthetic_seed`, when the scenario set one; absent: the
    /// generator's fixed default seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DumpInfo {
    pub file: String,
    /// `custom`, `directory`, `tar` or `plain SQL`.
    pub format: String,
    /// `snapshot.sample`: the fraction of its rows kept (absent: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PhaseTimes {
    pub warmup_ms: f64,
    pub baseline_ms: f64,
    pub migration_ms: f64,
    pub after_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkloadSummary {
    /// ops/s the schedule asked for (weighted classes plus own-rate classes).
    pub target_rate: f64,
    /// ops/s that finished (ok or error) from baseline to the end.
    pub achieved_rate: f64,
    /// ops/s the pacer issued from baseline to the end.
    pub issued_rate: f64,
    pub connections: u32,
    /// Operations that failed, all classes (see `error_detail`).
    pub errors: u64,
    pub error_detail: Vec<ErrorCount>,
    /// Operations still queued or running when the run ended (they count in
    /// latency with the time they had waited).
    pub unfinished: u64,
    /// Operations of the schedule never started because the client was
    /// overloaded (its queue full); counted in `issued_rate`, not in latency.
    #[serde(default)]
    pub dropped: u64,
    /// How late the pacer issued operations against the schedule.
    pub schedule_lag_p50_ms: f64,
    pub schedule_lag_p99_ms: f64,
    /// False when the client could not keep the schedule (see `warnings`).
    pub kept_schedule: bool,
    /// A session replay's connection pool (absent for a rate-based workload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolSummary>,
    /// The workload while the migration ran: what its schedule asked for and
    /// what finished (absent in reports written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub during: Option<DuringWorkload>,
}

/// Operations of the workload that started while the migration ran.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DuringWorkload {
    /// Operations the schedule asked for in that time: the rate times the
    /// migration's duration, or the statements a replay's recording has there.
    /// Absent for a closed loop (no schedule).
    pub target: Option<f64>,
    /// Operations its mean rate expects in that time (for a replay, whose
    /// recording may be uneven, the recording's mean rate; absent for a closed loop).
    pub expected: Option<f64>,
    /// Operations started then that finished, ok or error.
    pub completed: u64,
}

/// A session replay's connection pool: its size, and per phase (`baseline`,
/// `during`, `after`) how long sessions waited for a connection (the wait
/// also counts in their first statement's latency).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PoolSummary {
    pub size: u32,
    pub wait: BTreeMap<Phase, Latency>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorCount {
    pub class: String,
    pub sqlstate: String,
    pub count: u64,
    pub message: String,
}

/// A query class that started failing with a SQLSTATE while the migration
/// ran (or after it) and did not fail with it in the baseline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NewError {
    /// Index into `steps` of the step it first appeared in; `None` when
    /// it first appeared between steps (a commit) or after the migration.
    pub step: Option<usize>,
    /// `step`, `between` (the migration running outside a step: BEGIN,
    /// COMMIT) or `after` (the cooldown).
    pub phase: Onset,
    pub class: String,
    pub sqlstate: String,
    /// Failures of the class with this SQLSTATE from that point to the end.
    pub count: u64,
    /// The first failure's message.
    pub message: String,
    /// What it means for the application.
    pub meaning: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MigrationSummary {
    /// `file`, `step` or `none`; `mixed` when its groups differ, `one for
    /// all` when every group ran in one transaction (Drizzle).
    pub transaction: String,
    /// Every step succeeded (and, in `file` mode, the transaction committed).
    pub committed: bool,
    pub duration_ms: f64,
    /// Where the migration came from: the file, `stdin`, `DIR (format)`, `command: …`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The units applied whole (migration files), in order; every step belongs to one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupReport>,
    /// For a migration directory: which migrations were rehearsed and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<SelectionReport>,
    /// For `migration.command`: the command as a whole (its statements are the steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandReport>,
}

/// A framework command whose statements were captured from the clone's log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommandReport {
    pub command: String,
    /// Absent when it was stopped (interrupted) or could not start.
    pub exit_code: Option<i32>,
    pub duration_ms: f64,
    /// Server-wide WAL written while it ran (captured steps have none of their own).
    pub wal_bytes: Option<u64>,
    /// Tables it rewrote (captured steps have none of their own).
    pub rewritten: Vec<String>,
    /// Sessions it opened on the clone.
    pub sessions: usize,
    /// The last lines it printed.
    pub output_tail: String,
}

/// One group of steps applied as a whole: a migration file (a Liquibase
/// changeset, a BEGIN … COMMIT block, a transaction of a captured command).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GroupReport {
    pub name: String,
    pub file: String,
    /// As the tool's history table records it.
    pub version: Option<String>,
    /// `file` (one transaction), `step` or `none` (autocommit).
    pub transaction: String,
    /// Index into `steps` of its first step, and how many it has.
    pub first_step: usize,
    pub steps: usize,
    /// Every step succeeded and its transaction (if any) committed.
    pub committed: bool,
    /// Its down part was read (run by `--rollback` only).
    pub has_down: bool,
    /// Its statements were captured from the clone's log (`migration.command`).
    pub captured: bool,
    /// Sum of its steps' durations.
    pub duration_ms: f64,
}

/// Which migrations of a directory were rehearsed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SelectionReport {
    /// `flyway`, `goose`, …
    pub format: String,
    /// The history table read, when the snapshot has it.
    pub history_table: Option<String>,
    /// `--from` / `migration.from`.
    pub from: Option<String>,
    /// Migrations in the directory.
    pub found: usize,
    /// Rehearsed (the groups of `migration.groups`).
    pub rehearsed: usize,
    /// Recorded as applied in the history table: not run.
    pub applied: Vec<String>,
    /// Pending before `from`: applied before the baseline, unmeasured.
    pub applied_before_baseline: Vec<String>,
    /// How long applying those took.
    pub setup_ms: f64,
}

/// The preflight data checks and their own cost.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Preflight {
    /// Wall time of all checks (with the copy and earlier steps they needed).
    pub duration_ms: f64,
    /// Where they ran.
    pub place: String,
    pub checks: Vec<CheckReport>,
}

/// One preflight check.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckReport {
    /// Index into `steps`, and the statement's number in its file.
    pub step: usize,
    pub statement: usize,
    /// `not_null`, `check`, `unique`, `foreign_key` or `cast`.
    pub kind: crate::run_record::CheckKind,
    pub relation: String,
    pub columns: Vec<String>,
    /// The constraint, expression or target type checked.
    pub detail: String,
    /// Rows that violate it (absent when the check was skipped).
    pub violations: Option<u64>,
    /// Up to five violating rows (key and offending value).
    pub examples: Vec<String>,
    /// The finding in one sentence, e.g. "step 4 will fail: 1,203 rows have billing_country NULL".
    pub message: String,
    pub duration_ms: f64,
    /// Why it did not run.
    pub skipped: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepReport {
    pub name: String,
    /// `sql`, `backfill` or `pause`.
    pub kind: StepType,
    /// Line of the step in the migration file.
    pub line: usize,
    pub start_ms: f64,
    pub duration_ms: f64,
    pub outcome: Outcome,
    pub sqlstate: Option<String>,
    pub error: Option<String>,
    /// 1-based statement number in the file that failed.
    pub failed_statement: Option<usize>,
    pub retries: u32,
    pub batches: Option<u64>,
    pub rows: u64,
    /// Strongest mode held per relation (user relations only).
    pub locks: Vec<LockHeld>,
    pub rewrote: bool,
    pub rewritten: Vec<String>,
    /// Server-wide WAL written during the step (includes the workload's).
    pub wal_bytes: Option<u64>,
    /// Time workload sessions spent blocked by the migration during this step.
    pub blocked_ms: f64,
    /// Most workload sessions blocked by the migration at once during this step.
    pub blocked_sessions: u32,
    /// Time the migration itself waited for locks during this step.
    pub lock_wait_ms: f64,
    /// The longest wait of a workload session on the migration that began
    /// during this step, whole (absent when none began then, and in reports
    /// written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longest_blocked_ms: Option<f64>,
    /// class → latency of operations started during this step.
    pub latency: BTreeMap<String, Latency>,
    /// Index into `migration.groups` of the group (migration file) it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<usize>,
    /// The step's SQL as written in the migration file, its statements in
    /// order (a backfill: its batch statement). Absent for a pause, a
    /// captured command's step, and in reports written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// Why no down step can undo it (it loses data: drops a table or
    /// column, deletes rows, overwrites values that existed before the
    /// migration, may narrow a type); its fallback is a restore or a forward
    /// fix. Absent when it is reversible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_way: Option<String>,
    /// It undoes forward steps: a down step run by `--rollback`, after the
    /// forward ones and measured like them. Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback: bool,
    /// Its `-- lockimpact: verify` statements (sqitch `verify/`), run after
    /// it succeeded; absent when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyReport>,
    /// The `lock_timeout` the step ran with (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_timeout_ms: Option<f64>,
    /// Safer forms of what this step was observed to do (never from the SQL
    /// text alone); empty when the run saw nothing a known form avoids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<Hint>,
}

/// A known safer form of a step, for what the run observed it do.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Hint {
    pub kind: HintKind,
    /// What the run measured that calls for it, e.g. "held ShareLock on
    /// orders for 2.1 s while 12 writing sessions waited".
    pub observed: String,
    /// The safer form and what it changes.
    pub advice: String,
}

/// The safer forms a hint can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HintKind {
    /// A plain CREATE INDEX blocked writers: CREATE INDEX CONCURRENTLY.
    Concurrently,
    /// A validating constraint under AccessExclusiveLock: NOT VALID, then VALIDATE.
    NotValidThenValidate,
    /// The migration queued behind a lock while sessions queued behind it:
    /// lock_timeout with retries.
    LockTimeoutRetries,
    /// A one-shot UPDATE held its row locks long: a batched backfill.
    BatchedBackfill,
    /// SET NOT NULL scanned the table under AccessExclusiveLock: a validated CHECK first.
    CheckBeforeNotNull,
    /// A type change rewrote the table: a new column and a backfill.
    NewColumnBackfill,
    /// A short lock_timeout kept timing out behind autovacuum: VACUUM first.
    VacuumFirst,
}

impl HintKind {
    /// The change in a few words, as a remedy line names it.
    pub fn change(self) -> &'static str {
        match self {
            HintKind::Concurrently => "CREATE INDEX CONCURRENTLY",
            HintKind::NotValidThenValidate => "add the constraint NOT VALID, then VALIDATE CONSTRAINT",
            HintKind::LockTimeoutRetries => "a short lock_timeout with retries",
            HintKind::BatchedBackfill => "a batched backfill (-- lockimpact: backfill)",
            HintKind::CheckBeforeNotNull => "a CHECK (col IS NOT NULL) NOT VALID, VALIDATE, then SET NOT NULL",
            HintKind::NewColumnBackfill => "a new column, a batched backfill, then a swap",
            HintKind::VacuumFirst => "a VACUUM (ANALYZE) of the table in a step of its own before it",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct LockHeld {
    pub relation: String,
    pub mode: LockMode,
    /// Seen by the sampler's polls, not read inside the step's transaction:
    /// a statement that runs outside any transaction block (CREATE INDEX
    /// CONCURRENTLY, VACUUM, …) or a captured command. A lock held between two
    /// polls can be missing. Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sampled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct BlockedSummary {
    /// Distinct workload sessions blocked by the migration.
    pub by_migration_sessions: u32,
    /// Blocked episodes attributed to the migration.
    pub by_migration_episodes: u32,
    /// Most workload sessions blocked by the migration at once.
    pub max_concurrent: u32,
    /// Sum of the attributed episodes' durations.
    pub total_ms: f64,
    pub longest_ms: f64,
    /// Episodes of workload sessions blocked by something else.
    pub other_episodes: u32,
    /// The longest episodes first (at most 50).
    pub episodes: Vec<EpisodeReport>,
    /// The migration's own lock waits, in order, with who it waited behind.
    pub migration_waits: Vec<EpisodeReport>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EpisodeReport {
    pub pid: i32,
    pub class: String,
    pub start_ms: f64,
    pub duration_ms: f64,
    pub mode: LockMode,
    pub locktype: String,
    pub relation: Option<String>,
    pub blockers: Vec<i32>,
    /// Who the blockers are, "class (pid N)"; filled for `migration_waits`.
    pub blocker_classes: Vec<String>,
    pub by_migration: bool,
    /// Index of the step it started in.
    pub step: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Latency {
    /// Operations finished, ok or error (every latency counts both).
    pub count: u64,
    /// Of those, the ones that failed.
    #[serde(default)]
    pub errors: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Second {
    pub t: u64,
    pub ops: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Most workload sessions waiting on a lock at once in this second.
    pub blocked: u32,
    pub blocked_by_migration: u32,
    /// `warmup`, `baseline`, `during` or `after`.
    pub phase: Phase,
    /// class → operations and latency of that class in this second.
    #[serde(default)]
    pub classes: BTreeMap<String, ClassSecond>,
    /// The operations whose intended start fell in this second, whatever
    /// second they finished in: a stall shows where it began (`ops`, `p50_ms`,
    /// `p99_ms` and `classes` count operations by the second they finished).
    /// Absent in reports written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<Started>,
    /// Most operations waiting at once in this second: their intended start
    /// had passed and they had not finished (read every 100 ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<u64>,
}

/// Operations by the second of their intended start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Started {
    pub ops: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// class → its operations and latency (classes with none are left out).
    pub classes: BTreeMap<String, ClassSecond>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ClassSecond {
    pub ops: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Percentile {
    /// 50, 90, 99, 99.9, …; 100 is the maximum.
    pub percentile: f64,
    pub ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SamplerInfo {
    pub interval_ms: f64,
    pub polls: u64,
    pub query_p50_ms: f64,
    pub query_p99_ms: f64,
    /// Times the sampler saw nothing (its session ended and it reconnected):
    /// blocked sessions and sampled locks are missing there. Absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<SamplerGap>,
    /// A gap overlaps a step that ran: the run cannot show what the migration
    /// did to the workload, so it is no evidence. Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blind_during_migration: bool,
}

/// A time the lock sampler could not poll, from the run's start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SamplerGap {
    pub from_ms: f64,
    pub to_ms: f64,
    /// Indexes into `steps` of the steps it overlaps.
    pub steps: Vec<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    /// True only when `status` is `pass`.
    pub pass: bool,
    pub violations: Vec<Violation>,
    /// `pass`, `fail` (a budget was exceeded) or `inconclusive` (no budget
    /// was exceeded, but the run is no evidence: see `inconclusive`). Absent
    /// in reports written before it existed; `Verdict::status` reads those.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<VerdictStatus>,
    /// Why the run is no evidence, one entry per reason (also listed when a
    /// budget was exceeded: the failure stands, the rest is unproven).
    #[serde(default)]
    pub inconclusive: Vec<Inconclusive>,
}

/// The outcome of a rehearsal's verdict; the exit code follows it (0, 1, 3).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum VerdictStatus {
    Pass,
    Fail,
    Inconclusive,
}

impl VerdictStatus {
    /// `PASS`, `FAIL`, `INCONCLUSIVE`, as every renderer prints it.
    pub fn label(self) -> &'static str {
        match self {
            VerdictStatus::Pass => "PASS",
            VerdictStatus::Fail => "FAIL",
            VerdictStatus::Inconclusive => "INCONCLUSIVE",
        }
    }
}

impl Verdict {
    /// The status; for a report written before `status` existed, from `pass`.
    pub fn status(&self) -> VerdictStatus {
        self.status.unwrap_or(if self.pass { VerdictStatus::Pass } else { VerdictStatus::Fail })
    }
}

/// One reason a run is no evidence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Inconclusive {
    /// A stable key, e.g. `workload_during`.
    pub reason: String,
    /// What was expected and what was measured, when the reason is a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<f64>,
    /// The reason for a reader, with what to change.
    pub message: String,
}

/// The thresholds the verdict checked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BudgetReport {
    /// `scenario` (its `[budget]` or the budget flags) or `default` (it set none).
    pub source: BudgetSource,
    /// Each threshold: its budget key and limit (milliseconds for durations).
    pub limits: Vec<BudgetLimit>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BudgetSource {
    Scenario,
    Default,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BudgetLimit {
    /// The budget key, e.g. `max_blocked_wait`, or `max_p99_during_class.CLASS`.
    pub budget: String,
    pub limit: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Violation {
    /// The budget key, e.g. `max_blocked`.
    pub budget: String,
    pub limit: f64,
    pub actual: f64,
    pub message: String,
    /// Index into `steps` of the step that exceeded it most, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// Its most likely remedy: that step's first hint, or what to look at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

impl Violation {
    /// A violation not attributed to a step yet (the builder does that).
    pub fn new(budget: impl Into<String>, limit: f64, actual: f64, message: String) -> Violation {
        Violation { budget: budget.into(), limit, actual, message, step: None, remedy: None }
    }
}

impl CheckReport {
    /// The kind as the renderers name it.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            crate::run_record::CheckKind::NotNull => "not null",
            crate::run_record::CheckKind::Check => "check",
            crate::run_record::CheckKind::Unique => "unique",
            crate::run_record::CheckKind::ForeignKey => "foreign key",
            crate::run_record::CheckKind::Cast => "type change",
        }
    }
}

/// The clone's streaming standbys during the measured run (baseline on):
/// replication lag, standby sessions blocked by a replayed lock, and
/// queries cancelled by recovery conflicts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReplicasReport {
    /// How often each standby was polled.
    pub interval_ms: f64,
    pub standbys: Vec<StandbyReport>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StandbyReport {
    /// Its `application_name` on the primary.
    pub name: String,
    /// Polls from the baseline on.
    pub samples: u64,
    /// Polls that failed (the standby or the primary did not answer).
    #[serde(default)]
    pub failed_polls: u64,
    /// The largest replay lag in bytes (primary's current LSN − the standby's replay LSN), and when.
    pub max_lag_bytes: u64,
    pub max_lag_at_ms: Option<f64>,
    /// Where the largest lag was seen: a step's index, or `phase` for outside the steps.
    pub max_lag_step: Option<usize>,
    pub max_lag_phase: Option<Phase>,
    /// The step that wrote most of the WAL the standby was behind on at its
    /// largest lag (between its replay position and the primary's LSN): the
    /// step that caused the lag, where `max_lag_step` is the one running.
    /// `None` for no lag, or a lag of WAL written outside every step.
    #[serde(default)]
    pub max_lag_wal_step: Option<usize>,
    /// The largest lag in bytes during the baseline (before the migration).
    pub baseline_max_lag_bytes: u64,
    /// The largest `write_lag`, `flush_lag`, `replay_lag` the primary reported.
    pub max_write_lag_ms: Option<f64>,
    pub max_flush_lag_ms: Option<f64>,
    pub max_replay_lag_ms: Option<f64>,
    /// Per migration step (its time window): the largest lag seen.
    pub steps: Vec<StandbyStep>,
    /// Standby sessions that waited on a lock held by the startup process
    /// (a lock replayed from the primary): how many, the most at once, the longest.
    pub blocked_sessions: u64,
    pub max_blocked_at_once: u64,
    pub longest_blocked_ms: f64,
    /// Recovery conflicts on the run database during the run
    /// (`pg_stat_database_conflicts`): each a query cancelled with SQLSTATE 40001 or a session ended.
    pub conflicts: ConflictCounts,
    pub cancels: u64,
    /// The replay lag in bytes over time, `[t_ms, bytes]` from the baseline
    /// on: at most `LAG_SERIES_POINTS` points, each the largest sample of its
    /// time slice (so the peak is kept). Absent in reports written before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lag_series: Vec<(f64, u64)>,
    /// The synchronous standby (`[replica] synchronous = true`): the commit
    /// latency it adds on the primary; absent for the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_commit: Option<SyncCommitReport>,
    /// A logical subscriber (`[replica] logical = true`) rather than a
    /// standby: its lag fields are its slot's; absent for standbys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logical: Option<LogicalReport>,
}

/// A logical subscriber's slot and errors. Logical replication carries
/// rows, not DDL: a migration's new column written to breaks it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogicalReport {
    /// Its slot on the primary and its database.
    pub slot: String,
    pub database: String,
    /// `apply_error_count`, `sync_error_count` of `pg_stat_subscription_stats`
    /// at the last poll (the subscription is made for the run); null before PostgreSQL 15.
    pub apply_errors: Option<u64>,
    pub sync_errors: Option<u64>,
    /// The first poll that saw an error, and in which step (index into `steps`) or else which phase.
    pub first_error_at_ms: Option<f64>,
    pub first_error_step: Option<usize>,
    pub first_error_phase: Option<Phase>,
    /// The tables its publication covers (the migration's that existed
    /// before it ran); absent: all tables, and `publication_note` says why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published_tables: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publication_note: Option<String>,
    /// The first error message of its workers, from the server's log (the
    /// local backend); absent when there was none or the log cannot be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error_message: Option<String>,
}

/// The commit latency a synchronous standby adds on the primary, from the
/// replica sampler's commit probe (baseline on): per phase and per step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SyncCommitReport {
    /// The `synchronous_commit` level of the waiting probes (the primary's setting).
    pub level: String,
    /// Probes that failed.
    pub failed_probes: u64,
    /// The largest `added_ms` of any phase or step, and where (a step's index, else the phase).
    pub max_added_ms: Option<f64>,
    pub max_added_step: Option<usize>,
    pub max_added_phase: Option<Phase>,
    /// Baseline, during, after (the phases with probes).
    pub phases: Vec<SyncCommitPhase>,
    pub steps: Vec<SyncCommitStep>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SyncCommitPhase {
    pub phase: Phase,
    #[serde(flatten)]
    pub latency: CommitLatency,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SyncCommitStep {
    /// Index into `steps`.
    pub step: usize,
    pub name: String,
    #[serde(flatten)]
    pub latency: CommitLatency,
}

/// Timed commits in one window: those that waited for the standby and those
/// that did not (`synchronous_commit = local`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct CommitLatency {
    pub waiting_probes: u64,
    pub local_probes: u64,
    /// Median commit time of each kind, and the slowest waiting commit.
    pub waiting_p50_ms: Option<f64>,
    pub local_p50_ms: Option<f64>,
    pub waiting_max_ms: Option<f64>,
    /// `waiting_p50_ms − local_p50_ms` (at least 0): what the standby adds to a commit.
    pub added_ms: Option<f64>,
    /// The most primary sessions seen waiting for the standby at once
    /// (`wait_event = 'SyncRep'`, the probe left out).
    pub max_waiting_sessions: u64,
}

/// The most points of a standby's `lag_series`.
pub const LAG_SERIES_POINTS: usize = 600;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StandbyStep {
    /// Index into `steps`.
    pub step: usize,
    pub name: String,
    pub max_lag_bytes: u64,
    pub max_replay_lag_ms: Option<f64>,
    /// Standby sessions blocked by a replayed lock while the step ran.
    pub blocked_sessions: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct ConflictCounts {
    pub lock: u64,
    pub snapshot: u64,
    pub bufferpin: u64,
    pub deadlock: u64,
    pub tablespace: u64,
}
