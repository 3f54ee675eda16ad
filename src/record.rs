//! `RunRecord`: everything one rehearsal measured, raw and in memory. The
//! workload, sampler and migration runner each fill their part; the report
//! builder is the only reader and the only place numbers are derived.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::clone::template::TableInfo;
use crate::migration::TxMode;
use crate::scenario::file::BudgetSection;
use crate::timeline::Mark;

pub type Hist = Histogram<u64>;

/// A latency histogram in microseconds, 1µs to 1h, 3 significant digits.
pub fn new_hist() -> Hist {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

#[derive(Debug)]
pub struct RunRecord {
    pub scenario_name: String,
    pub scenario_path: String,
    pub clone_description: String,
    pub server_version: String,
    pub tables: Vec<TableInfo>,
    pub seed_time: Duration,
    pub copy_time: Duration,
    /// Time to restore `snapshot.dump`, when the dataset came from a dump.
    pub restore_time: Option<Duration>,
    /// Size of the template database, bytes.
    pub dataset_bytes: Option<i64>,
    /// `snapshot.dump`: (file, format).
    pub dump: Option<(String, String)>,
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
}

/// Why a rehearsal ended early; what was measured until then is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// The server stopped answering (it died, or its container went away).
    ServerLost,
}

impl Stop {
    pub fn reason(self) -> &'static str {
        match self {
            Stop::Interrupted => "interrupted (Ctrl-C or SIGTERM)",
            Stop::ServerLost => "the server stopped answering (it crashed, was stopped, or its container went away)",
        }
    }
}

#[derive(Debug)]
pub struct WorkloadRecord {
    pub classes: Vec<String>,
    pub target_rate: f64,
    pub connections: u32,
    /// Per class, per slot index: latency of successful operations (µs).
    pub latency: Vec<Vec<Option<Hist>>>,
    /// (class index, SQLSTATE) → (count, first message).
    pub errors: BTreeMap<(usize, String), (u64, String)>,
    /// Operations the pacer emitted, and that finished (ok or error), in measured phases.
    pub issued_measured: u64,
    pub finished_measured: u64,
    /// Operations still queued or running when the run ended.
    pub unfinished: u64,
    /// How late the pacer emitted operations against their intended start (µs).
    pub schedule_lag: Hist,
    /// Per second since the clock started.
    pub seconds: Vec<SecondRecord>,
    /// A session replay (paced by `workload.speed`), not a rate-based workload.
    pub replay: bool,
    /// A session replay's connection pool.
    pub pool: Option<PoolRecord>,
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

impl Default for WorkloadRecord {
    fn default() -> Self {
        WorkloadRecord {
            classes: Vec::new(),
            target_rate: 0.0,
            connections: 0,
            latency: Vec::new(),
            errors: BTreeMap::new(),
            issued_measured: 0,
            finished_measured: 0,
            unfinished: 0,
            schedule_lag: new_hist(),
            seconds: Vec::new(),
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
    pub transaction: Option<TxMode>,
    pub pid: i32,
    pub committed: bool,
    pub steps: Vec<StepRecord>,
}

#[derive(Debug, Clone)]
pub struct StepRecord {
    pub name: String,
    pub kind: &'static str,
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
    pub rewritten: Vec<String>,
    /// Relation → lock mode, as read inside the step's transaction.
    pub locks: Vec<(String, String)>,
}

/// One session waiting for a lock, from first to last sighting.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    pub pid: i32,
    /// Query class, "migration", or "other".
    pub who: String,
    pub start: Duration,
    pub end: Duration,
    pub mode: String,
    pub locktype: String,
    pub relation: Option<String>,
    pub blockers: Vec<i32>,
    /// For the migration's own waits: who its blockers are, "class (pid N)".
    pub blocker_classes: Vec<String>,
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
    pub migration_locks: BTreeMap<usize, BTreeMap<String, String>>,
    /// Per second: most workload sessions waiting on a lock at once (any cause / by the migration).
    pub blocked_per_second: Vec<(u32, u32)>,
}
