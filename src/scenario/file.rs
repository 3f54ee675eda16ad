//! The scenario file format (`scenarios/*.toml`), exactly as written by the
//! user. Unknown keys are rejected; `scenario::load` validates the values and
//! resolves paths into a `Plan`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::files::dur::Dur;
pub use crate::run_record::budget::{BudgetSection, NewErrors};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Shown in reports; defaults to the file name.
    pub name: Option<String>,
    pub description: Option<String>,
    /// Template variables for the seed script and the workload file (`{{rows}}`).
    #[serde(default)]
    pub vars: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub clone: CloneSection,
    /// Absent with the `url` backend (the database at the URL is the dataset).
    #[serde(default)]
    pub snapshot: SnapshotSection,
    pub workload: WorkloadSection,
    #[serde(default)]
    pub phases: PhasesSection,
    pub migration: MigrationSection,
    #[serde(default)]
    pub sampler: SamplerSection,
    #[serde(default)]
    pub budget: BudgetSection,
    /// Physical streaming standbys of the clone (`scenario::replica` resolves it).
    #[serde(default)]
    pub replica: ReplicaSection,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CloneSection {
    /// The `url` backend's server and database (needs `--allow-existing-server`).
    pub url: Option<String>,
    /// `auto` (default), `local` or `docker`.
    pub backend: Option<String>,
    /// The container image of the `docker` backend (default `postgres:<pg_version>`).
    pub image: Option<String>,
    /// The production major version; the clone must match it when set.
    pub pg_version: Option<u32>,
    /// Server settings passed as `-c name=value` (max_connections, shared_buffers, …).
    #[serde(default)]
    pub settings: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSection {
    /// A SQL script (with `{{var}}` templates) that builds the dataset.
    pub seed: Option<String>,
    /// A pg_dump snapshot (custom, directory, tar or plain SQL) to restore instead.
    pub dump: Option<String>,
    /// Parallel pg_restore jobs for custom and directory dumps (default 2).
    pub jobs: Option<u32>,
    /// A statistics file (`lockimpact snapshot --stats-only`) to generate the dataset from.
    pub synthetic: Option<String>,
    /// Fraction of the statistics' row counts to generate (default 1.0).
    pub scale: Option<f64>,
    /// The generator's seed for `synthetic` (default: a fixed one, so every
    /// run generates the same rows).
    pub synthetic_seed: Option<u64>,
    /// Fraction of a dump's rows to keep, sampled consistently across
    /// foreign keys (default: all).
    pub sample: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSection {
    /// The workload file (TOML), relative to the scenario file.
    pub file: Option<String>,
    /// Or a session replay file (`lockimpact record log --replay`).
    pub replay: Option<String>,
    /// Replay speed: recorded offsets are divided by it (default 1.0).
    pub speed: Option<f64>,
    /// Size of the replay's connection pool (default: what the clone's
    /// max_connections leaves after the tool's own connections).
    pub pool: Option<u32>,
    /// More workload files whose classes are added (e.g. a long reader).
    #[serde(default)]
    pub extra: Vec<String>,
    /// Target rate of the weighted classes: ops/s, or `"recorded"` / `"peak"`
    /// (the rates a recorded workload file declares).
    pub rate: Option<toml::Value>,
    /// Multiplies the rate (default 1.0); alone, it multiplies the recorded rate.
    pub rate_multiplier: Option<f64>,
    /// Connections the workload runs on (one worker thread each).
    #[serde(default = "default_connections")]
    pub connections: u32,
    /// Random seed for the schedule and the parameters.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// `statement_timeout` of the workload sessions (as an application sets it).
    #[serde(default = "default_workload_timeout")]
    pub statement_timeout: Dur,
}

fn default_connections() -> u32 {
    16
}
fn default_seed() -> u64 {
    1
}
fn default_workload_timeout() -> Dur {
    Dur(std::time::Duration::from_secs(30))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhasesSection {
    /// Load before measuring starts (not reported).
    #[serde(default = "d2s")]
    pub warmup: Dur,
    /// Measured load before the migration starts.
    #[serde(default = "d5s")]
    pub baseline: Dur,
    /// Measured load after the migration ends.
    #[serde(default = "d5s")]
    pub cooldown: Dur,
}

impl Default for PhasesSection {
    fn default() -> Self {
        PhasesSection { warmup: d2s(), baseline: d5s(), cooldown: d5s() }
    }
}

fn d2s() -> Dur {
    Dur(std::time::Duration::from_secs(2))
}
fn d5s() -> Dur {
    Dur(std::time::Duration::from_secs(5))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationSection {
    /// The migration SQL file, relative to the scenario file (`-`: standard input).
    pub file: Option<String>,
    /// Or a migration tool's directory (Flyway, goose, …), relative to the scenario file.
    pub dir: Option<String>,
    /// The directory's format: `auto` (default) or a tool's name.
    pub format: Option<String>,
    /// Rehearse the directory's migrations from this version (or name) on.
    pub from: Option<String>,
    /// The tool's history table, when not its default (`schema.table`).
    pub history_table: Option<String>,
    /// Or a framework command run against the clone; its statements are
    /// captured from the clone's log.
    pub command: Option<String>,
    /// Count the rows a step will fail on before the run (default true).
    pub preflight: Option<bool>,
    /// `file` (one transaction), `step` (one per step) or `none` (autocommit).
    /// A `-- lockimpact: transaction …` directive in the file wins.
    pub transaction: Option<String>,
    /// Default `lock_timeout` of every step ("0" = none).
    pub lock_timeout: Option<Dur>,
    /// Default `statement_timeout` of every step ("0" = none).
    pub statement_timeout: Option<Dur>,
    /// Default number of retries of a step that hits its lock timeout.
    pub retries: Option<u32>,
    /// Pause before the first retry; doubles on each further retry.
    pub retry_backoff: Option<Dur>,
    /// After a step fails (retries used up): `abort` (default) skips the rest,
    /// `continue` goes on with the next step.
    pub on_error: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SamplerSection {
    /// How often the lock sampler polls (1ms–1s; default 10ms).
    pub interval: Option<Dur>,
}

/// `[replica]`: streaming standbys of the clone, and their recovery settings.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReplicaSection {
    /// How many standbys (default 0: none).
    pub count: Option<toml::Value>,
    /// `hot_standby_feedback` of the standbys (default false).
    pub hot_standby_feedback: Option<bool>,
    /// `max_standby_streaming_delay`: a duration, or -1 (wait forever).
    pub max_standby_streaming_delay: Option<toml::Value>,
    /// `recovery_min_apply_delay` of the standbys (default 0).
    pub recovery_min_apply_delay: Option<toml::Value>,
    /// The first standby is synchronous (`synchronous_standby_names`).
    pub synchronous: Option<bool>,
    /// A logical subscriber of the run database (default false).
    pub logical: Option<bool>,
    /// The standby `target = "replica"` classes run on, 1 to `count` (default 1).
    pub standby: Option<toml::Value>,
    /// How often the replica sampler polls (default 100ms).
    pub interval: Option<Dur>,
}
