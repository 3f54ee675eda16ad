//! Command-line definition (clap derive). Each value is parsed once, here,
//! into its type (a format, a backend, a duration, a count); nothing is
//! checked beyond its own shape: `scenario::load` turns the flags into a
//! `Plan` and `report::output::Outputs` resolves the output flags.

use crate::migration::failpoint::FailAt;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::clone::plan::Backend;
use crate::error::Error;
use crate::files::dur::Dur;

#[derive(Debug, Parser)]
#[command(
    name = "lockimpact",
    version,
    about = "Rehearse a PostgreSQL schema migration under a recorded workload and measure its impact",
    long_about = "Rehearse a PostgreSQL schema migration on a disposable clone while a read/write \
workload runs at its target rate; report the locks each step takes, the sessions it blocks, \
the latency it causes and the longest step.\n\nExit codes: 0 ok, 1 budget exceeded, 2 bad input \
or environment, 3 inconclusive (the run is no evidence: e.g. the workload did not run during the \
migration), 130 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Rehearse one migration: start a disposable server, load the dataset, run
    /// the workload, apply the migration step by step, print the report.
    Run(RunArgs),
    /// Rehearse two candidate migrations on fresh copies of the same data under
    /// the same workload, one after the other, and compare them side by side.
    Compare(CompareArgs),
    /// Take a rehearsal snapshot of a database with pg_dump (custom format,
    /// no owners, no privileges), read-only against the source.
    Snapshot(SnapshotArgs),
    /// Record what a database runs into a workload: from pg_stat_statements,
    /// or from PostgreSQL logs. Read-only against the source.
    Record(RecordArgs),
    /// Benchmark the harness itself on this machine against the standard
    /// tools (pgbench, pg_restore), on a local server it starts, and write
    /// BENCHMARKS.md and bench.json.
    Bench(BenchArgs),
    /// List and remove what killed runs left behind (kill -9): local servers
    /// in TMPDIR and containers labelled lockimpact=1 whose run is gone.
    /// Resources of runs that still run, and clones kept with --keep, are
    /// left alone.
    Clean(CleanArgs),
}

#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Also remove clones kept with --keep (whose run has ended).
    #[arg(long)]
    pub kept: bool,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    #[command(subcommand)]
    pub command: RecordCommand,
}

#[derive(Debug, Subcommand)]
pub enum RecordCommand {
    /// Read pg_stat_statements two or more times and write a rate-based
    /// workload file of the busiest statements.
    StatStatements(StatStatementsArgs),
    /// Read PostgreSQL logs (csvlog, or stderr with log_line_prefix =
    /// '%m [%c:%l:%v] %u@%d ') written with log_min_duration_statement = 0 or
    /// log_statement = 'all'; write a session replay and/or a workload file.
    Log(RecordLogArgs),
}

#[derive(Debug, Args)]
pub struct RecordLogArgs {
    /// Log files, in time order.
    #[arg(required = true, value_name = "FILES")]
    pub files: Vec<PathBuf>,
    /// Write a session replay (JSON lines): each session's statements in
    /// order with their offsets and transactions (`workload.replay`).
    #[arg(long, value_name = "FILE.jsonl")]
    pub replay: Option<PathBuf>,
    /// Write a rate-based workload file, statements grouped by fingerprint.
    #[arg(long, value_name = "FILE.toml")]
    pub out: Option<PathBuf>,
    /// Only statements of this database.
    #[arg(long, value_name = "NAME")]
    pub database: Option<String>,
    /// Only statements that started at or after this time, as the log writes
    /// it (`2026-11-24 21:53:05`, in the log's time zone).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only statements that started before this time (as `--since`).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only sessions of this user (repeatable).
    #[arg(long, value_name = "NAME")]
    pub user: Vec<String>,
    /// Only sessions with this application_name (repeatable; csvlog, or a
    /// stderr log_line_prefix without it has none).
    #[arg(long, value_name = "NAME")]
    pub application_name: Vec<String>,
    /// Keep the sessions of psql, pg_dump, pg_dumpall, pg_restore and
    /// lockimpact itself (left out by default: their catalog queries, COPY
    /// and LOCK TABLE are not the application's traffic).
    #[arg(long)]
    pub include_tools: bool,
    /// Log format: auto (by extension and content), csvlog or stderr.
    #[arg(long, value_name = "auto|csvlog|stderr", default_value = "auto", value_parser = log_format_arg)]
    pub format: LogFormat,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct StatStatementsArgs {
    /// The source database (libpq URL or connection string), read as libpq
    /// reads it (PGPASSWORD, ~/.pgpass, PGSERVICE, sslmode, …). A password in
    /// it is never printed; prefer PGPASSWORD or ~/.pgpass.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// Time between two reads of the view.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub interval: String,
    /// How many reads (at least 2); the peak rate is the busiest interval.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub samples: u32,
    /// Keep the busiest statements that together make this share of calls.
    #[arg(long, value_name = "SHARE", default_value_t = 0.95)]
    pub coverage: f64,
    /// The workload file to write, e.g. workloads/NAME/workload.toml.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A tiny configuration (seconds, tiny datasets) that only checks the
    /// suite runs; its figures mean nothing.
    #[arg(long)]
    pub quick: bool,

    /// Directory to write BENCHMARKS.md and bench.json into (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,

    /// Directory holding the PostgreSQL server binaries (initdb, pg_ctl, pgbench).
    #[arg(long, value_name = "DIR", env = "PG_BIN")]
    pub pg_bin: Option<PathBuf>,

    /// Rows of the clone-reset dataset (default: about 1 GB, 9 500 000 rows;
    /// 20 000 with --quick).
    #[arg(long, value_name = "N")]
    pub reset_rows: Option<u64>,

    /// Where row 4's copy-on-write rows put their local server (default:
    /// TMPDIR): a directory on a file system with reflinks (XFS made with
    /// `mkfs.xfs -m reflink=1`, btrfs). Elsewhere those rows are not measured
    /// and a note says why.
    #[arg(long, value_name = "PATH", env = "LOCKIMPACT_BENCH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Row 4 also compares the reflink reset with the template copy on a
    /// dataset of about 10 GB (building it takes several minutes).
    #[arg(long)]
    pub reset_10gb: bool,

    /// Row 8: predict each step of the shipped backfill and index scenarios
    /// (phased and one-shot backfill, plain and concurrent index) at 5M rows
    /// from `run --scales 100k,300k,1M`, and measure a 5M run to compare
    /// (tens of minutes).
    #[arg(long = "predict-5m")]
    pub predict_5m: bool,

    /// With --predict-5m: only the scenarios whose file name contains one of
    /// these, e.g. `--predict-only oneshot,concurrently` (phased, oneshot,
    /// plain, concurrently).
    #[arg(long = "predict-only", value_name = "NAMES", value_delimiter = ',', requires = "predict_5m")]
    pub predict_only: Vec<String>,

    /// Alternations of each side-by-side throughput measurement (default 5; 1 with --quick).
    #[arg(long, value_name = "N")]
    pub rounds: Option<u32>,

    /// Run only these rows, e.g. `--only 1` or `--only 1,3` (1 closed loop,
    /// 2 open loop, 3 sampler, 4 clone reset, 5 end to end, 6 replica
    /// sampler, 7 synthetic generation, 8 prediction accuracy). Row 5 needs
    /// the saturation rate of row 1; without row 1 it is measured by one
    /// short closed-loop run that is not reported.
    #[arg(long, value_name = "ROWS", value_delimiter = ',', value_parser = clap::value_parser!(u8).range(1..=8))]
    pub only: Vec<u8>,

    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The source database, as a libpq URL or connection string, e.g.
    /// postgresql://user@host:5432/app, read as libpq reads it (PGPASSWORD,
    /// ~/.pgpass, PGSERVICE, sslmode, …). pg_dump gets it through its
    /// environment: the password is never printed nor on its command line.
    #[arg(long, value_name = "URL")]
    pub from: String,

    /// The dump file to write (pg_dump custom format; restore it with
    /// `snapshot.dump = "FILE"` in a scenario).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// Dump the schema only (no rows), e.g. to fill it later with synthetic data.
    #[arg(long)]
    pub schema_only: bool,

    /// Write no dump: write to --out (JSON) the schema and the planner's
    /// statistics (row counts, sizes, per column null fraction, distinct
    /// values, most common values, histogram bounds, correlation, width;
    /// keys and constraints), read without reading any row. See
    /// docs/production-size.md.
    #[arg(long, conflicts_with_all = ["schema_only", "row_counts"])]
    pub stats_only: bool,

    /// With --stats-only: replace the values the statistics quote (most
    /// common values, histogram bounds: real data) by generated ones of the
    /// same width and shape, in the same order.
    #[arg(long, requires = "stats_only")]
    pub redact_values: bool,

    /// Also write each table's estimated rows and size (JSON) to this file,
    /// read from the statistics, without scanning the tables.
    #[arg(long, value_name = "FILE")]
    pub row_counts: Option<PathBuf>,

    /// Directory holding pg_dump and psql (default: the newest found).
    #[arg(long, value_name = "DIR", env = "PG_BIN")]
    pub pg_bin: Option<PathBuf>,

    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario file (TOML), e.g. scenarios/orders-index-plain.toml.
    /// Without it, the built-in default runs: scenarios/orders-lock-queue.toml
    /// (a fast ALTER TABLE queued behind an old transaction).
    pub scenario: Option<PathBuf>,

    /// The migration to rehearse instead of the scenario's: a `.sql` file, a
    /// migration tool's directory (Flyway, goose, …; see
    /// docs/migration-directories.md), or `-` to read SQL from standard
    /// input (Django `sqlmigrate`, Alembic `upgrade --sql`).
    #[arg(long, value_name = "FILE|DIR|-")]
    pub migration: Option<PathBuf>,

    /// Rehearse a failure: after the forward run, for each stop point a
    /// rehearsal on a fresh copy terminates the migration's session there,
    /// records what it left (objects, rows, constraints not valid), then
    /// runs the down steps of what completed, in reverse, under the same
    /// workload. `all` (every step), a step number or a step name, with
    /// `:start`, `:middle` (the default) or `:end`.
    #[arg(long, value_name = "all|STEP[:start|middle|end]", value_parser = FailAt::parse)]
    pub fail_at: Option<FailAt>,

    /// Rehearse at each of these sizes (at least three) under the same
    /// load, by setting the scenario's `vars.rows` (a generated dataset's
    /// `snapshot.scale`: the size is its largest table's rows), fit each
    /// step's figures against the rows and predict them at `--predict-rows`:
    /// row counts (`100k,300k,1M`) or percentages of the scenario's
    /// (`1%,3%,10%`). See docs/production-size.md.
    #[arg(long, value_name = "SIZE,SIZE,SIZE…", value_parser = scales_arg)]
    pub scales: Option<Scales>,

    /// With `--scales`: the row count to predict at (default: the
    /// scenario's `vars.rows`, or a generated dataset's largest table's rows
    /// in its statistics file), e.g. `5M` or `50000000`.
    #[arg(long, value_name = "ROWS", value_parser = rows_arg, requires = "scales")]
    pub predict_rows: Option<u64>,

    /// With `--scales` over a seed script: other `[vars]` that grow with
    /// the rows (e.g. `customers`), each set at every size to its value
    /// times the size over `vars.rows` (at least 1); the others stay as set.
    #[arg(long, value_name = "VAR,VAR…", value_delimiter = ',', requires = "scales")]
    pub scale_vars: Vec<String>,

    #[command(flatten)]
    pub opts: RunOptions,
}

/// One size of `--scales`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Size {
    Rows(u64),
    /// A percentage of the scenario's `vars.rows`.
    Percent(f64),
}

impl Size {
    /// The row count, given the scenario's `vars.rows`.
    pub fn rows(self, base: u64) -> u64 {
        match self {
            Size::Rows(n) => n,
            Size::Percent(p) => (base as f64 * p / 100.0).round() as u64,
        }
    }
}

/// `--scales`: the sizes to rehearse at, as given.
#[derive(Debug, Clone, PartialEq)]
pub struct Scales(pub Vec<Size>);

/// `--scales 100k,300k,1M` or `1%,3%,10%`.
fn scales_arg(text: &str) -> Result<Scales, Error> {
    let sizes = text
        .split(',')
        .map(|item| match item.trim().strip_suffix('%') {
            Some(p) => match p.trim().parse::<f64>() {
                Ok(p) if p > 0.0 && p.is_finite() => Ok(Size::Percent(p)),
                _ => Err(Error::input(format!("--scales: {item:?} is not a percentage above 0 (e.g. 3%)"))),
            },
            None => rows_arg(item).map(Size::Rows).map_err(|e| Error::input(format!("--scales: {}", e.message))),
        })
        .collect::<Result<Vec<Size>, Error>>()?;
    if sizes.len() < 3 {
        return Err(Error::input(format!(
            "--scales needs at least three sizes to fit a curve and its interval, got {}: e.g. 100k,300k,1M or 1%,3%,10%",
            sizes.len()
        )));
    }
    Ok(Scales(sizes))
}

/// A row count: digits (`_` allowed) with an optional `k` (thousand) or `M`
/// (million) suffix, e.g. `250000`, `300k`, `2.5M`.
pub(crate) fn rows_arg(text: &str) -> Result<u64, Error> {
    let t = text.trim().replace('_', "");
    let (digits, unit) = match t.strip_suffix(['k', 'K']) {
        Some(d) => (d, 1e3),
        None => t.strip_suffix('M').map_or((t.as_str(), 1.0), |d| (d, 1e6)),
    };
    match digits.parse::<f64>() {
        Ok(n) if n.is_finite() && n * unit >= 1.0 && (n * unit).fract() == 0.0 => Ok((n * unit) as u64),
        _ => Err(Error::input(format!(
            "{text:?} is not a row count: a whole number of 1 or more, with k (thousand) or M (million) if you \
             like, e.g. 300k or 2.5M"
        ))),
    }
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Two scenario files (candidate A, candidate B); or one scenario with
    /// `--migration` given twice.
    #[arg(required = true, num_args = 1..=2, value_name = "SCENARIO")]
    pub scenarios: Vec<PathBuf>,

    /// A candidate migration run on the one scenario (give it twice: A,
    /// then B): a file, a migration directory, or `-` (standard input) for
    /// one of them. Paths are relative to the current directory.
    #[arg(long = "migration", value_name = "FILE|DIR|-")]
    pub migrations: Vec<PathBuf>,

    /// Compare even when the two scenarios differ in snapshot or workload.
    #[arg(long)]
    pub allow_different: bool,

    /// Rehearse the candidates at the same time, each on its own
    /// copy-on-write copy of the template with a server of its own (their
    /// loads then share the machine, and the comparison says so). Needs
    /// TMPDIR on a file system with reflinks (XFS made with reflink=1,
    /// btrfs; the docker backend as root next to a local engine), no
    /// standbys or subscriber, the same dataset and server settings, and 2
    /// cores per candidate (`LOCKIMPACT_CORES` overrides the count); without
    /// them the candidates run one after the other, with a note saying why.
    #[arg(long)]
    pub parallel: bool,

    #[command(flatten)]
    pub opts: RunOptions,
}

/// Options shared by `run` and `compare`.
#[derive(Debug, Args, Default, Clone)]
pub struct RunOptions {
    /// Override a scenario value, e.g. `--set vars.rows=100000` or
    /// `--set phases.baseline=2s`. Repeatable.
    #[arg(long = "set", value_name = "DOTTED.KEY=VALUE")]
    pub set: Vec<String>,

    /// Format of the report printed on standard output.
    #[arg(long, value_name = "text|json|markdown|html", default_value = "text", value_parser = format_arg)]
    pub format: Format,

    /// Also write the report to FILE, in the format its extension names
    /// (.txt, .json, .md, .html), or as FORMAT:FILE. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub out: Vec<String>,

    /// Also write the report as JSON to this file (same as `--out json:FILE`).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    #[command(flatten)]
    pub budget: BudgetArgs,

    /// Which clone backend to use (overrides `clone.backend`): `auto` picks
    /// one that gives the scenario's major version and says why; `url` runs on
    /// an existing server (see --url).
    #[arg(long, value_name = "auto|local|docker|url", value_parser = backend_arg)]
    pub backend: Option<Backend>,

    /// The container image of the docker backend (overrides `clone.image`),
    /// e.g. `postgis/postgis:15-3.4`; default `postgres:<clone.pg_version>`.
    #[arg(long, value_name = "NAME:TAG")]
    pub image: Option<String>,

    /// Rehearse on the database at this URL of an existing server (a clone of
    /// production, never production) instead of a disposable one; implies
    /// `--backend url`. Needs --allow-existing-server. Read as libpq reads
    /// it: PGPASSWORD, ~/.pgpass, PGSERVICE and the other PG* variables fill
    /// what it leaves out; sslmode and sslrootcert give TLS.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// Allow the `url` backend to run the migration on an existing server. It
    /// still refuses a server with streaming replicas attached, a standby, or a
    /// database without `lockimpact.rehearsal = on`.
    #[arg(long)]
    pub allow_existing_server: bool,

    /// Let the migration, workload and seed script run programs and read or
    /// write files on the server's host (COPY … PROGRAM, COPY to or from a
    /// file, pg_read_file(), untrusted languages). Refused without it on the
    /// local backend (the server runs on this machine) and the url backend;
    /// the docker backend's container is their sandbox.
    #[arg(long)]
    pub allow_host_access: bool,

    /// Let SQL on the url backend change the whole server, beyond the
    /// rehearsal's database: ALTER SYSTEM, CREATE/ALTER/DROP DATABASE of
    /// another database, roles, tablespaces, pg_reload_conf().
    #[arg(long)]
    pub allow_server_wide: bool,

    /// Directory holding the PostgreSQL server binaries (initdb, pg_ctl).
    #[arg(long, value_name = "DIR", env = "PG_BIN")]
    pub pg_bin: Option<PathBuf>,

    /// Leave the disposable server running after the run and print how to
    /// connect to it and how to stop it.
    #[arg(long)]
    pub keep: bool,

    /// Give the clone N physical streaming standbys (overrides
    /// `replica.count`; local or docker backend), and measure replication lag and
    /// standby conflicts during the run.
    #[arg(long, value_name = "N")]
    pub replicas: Option<u32>,

    /// After the forward steps, run the migration's down steps under the same
    /// workload, measured like forward steps: `-- lockimpact: down` sections,
    /// or a migration tool's down files (goose Down, dbmate migrate:down,
    /// golang-migrate .down.sql, Flyway U…, sqitch revert/).
    #[arg(long)]
    pub rollback: bool,

    /// Rehearse a migration directory from this version (or name) on;
    /// pending ones before it are applied first, unmeasured (sets `migration.from`).
    #[arg(long, value_name = "VERSION")]
    pub from: Option<String>,

    /// Print only the report (no progress lines and no live status on stderr).
    #[arg(long, short)]
    pub quiet: bool,

    /// The migration that replaces the scenario's (`run --migration`, each
    /// candidate of `compare --migration`): a file, a directory or `-`.
    #[arg(skip)]
    pub migration: Option<PathBuf>,
}

/// Budget thresholds on the command line, parsed into their types here;
/// `scenario::load` sets each over the same key of the scenario's `[budget]`
/// (exceeding any gives exit code 1).
#[derive(Debug, Args, Default, Clone)]
pub struct BudgetArgs {
    /// Most time workload sessions may be blocked by the migration, in total (e.g. 1s).
    #[arg(long, value_name = "DURATION", value_parser = Dur::parse)]
    pub max_blocked: Option<Dur>,

    /// Longest single wait of a session on the migration (e.g. 500ms).
    #[arg(long, value_name = "DURATION", value_parser = Dur::parse)]
    pub max_blocked_wait: Option<Dur>,

    /// Most sessions blocked by the migration at once.
    #[arg(long, value_name = "N", value_parser = |v: &str| count::<u32>(v, "max_blocked_sessions"))]
    pub max_blocked_sessions: Option<u32>,

    /// p99 latency during the migration: `500ms` for every class, or
    /// `CLASS=200ms` for one class. Repeatable.
    #[arg(long, value_name = "[CLASS=]DURATION", value_parser = P99Limit::parse)]
    pub max_p99_during: Vec<P99Limit>,

    /// Longest migration step (e.g. 10s).
    #[arg(long, value_name = "DURATION", value_parser = Dur::parse)]
    pub max_step: Option<Dur>,

    /// Most workload errors.
    #[arg(long, value_name = "N", value_parser = |v: &str| count::<u64>(v, "max_errors"))]
    pub max_errors: Option<u64>,
}

/// One `--max-p99-during`: a p99 limit for one query class, or for every
/// class when `class` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct P99Limit {
    pub class: Option<String>,
    pub limit: Dur,
}

impl P99Limit {
    /// `500ms` (every class) or `CLASS=200ms` (one class).
    fn parse(value: &str) -> Result<P99Limit, Error> {
        match value.split_once('=') {
            None => Ok(P99Limit { class: None, limit: Dur::parse(value)? }),
            Some((class, limit)) => {
                let class = class.trim();
                if class.is_empty() {
                    return Err(Error::input(format!(
                        "{value:?} names no class; write CLASS=DURATION, e.g. reads=200ms"
                    )));
                }
                Ok(P99Limit { class: Some(class.to_string()), limit: Dur::parse(limit)? })
            }
        }
    }
}

/// A count flag (`budget.KEY`): a whole number, 0 or more.
fn count<N: std::str::FromStr>(value: &str, key: &str) -> Result<N, Error> {
    value
        .trim()
        .parse()
        .map_err(|_| Error::input(format!("budget.{key} must be a whole number (0 or more), not {value:?}")))
}

/// `--format FORMAT`: a report format by its name or alias.
fn format_arg(name: &str) -> Result<Format, Error> {
    Format::parse(name)
        .ok_or_else(|| Error::input(format!("--format {name:?} is not known; use text, json, markdown or html")))
}

/// `--backend NAME`.
fn backend_arg(name: &str) -> Result<Backend, Error> {
    Backend::parse(name)
        .ok_or_else(|| Error::input(format!("--backend = {name:?} is not known; use {}", Backend::CHOICES)))
}

/// A report format: what `--format` prints on stdout, what `--out` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    #[default]
    #[value(alias = "txt")]
    Text,
    Json,
    #[value(alias = "md")]
    Markdown,
    #[value(alias = "htm")]
    Html,
}

impl Format {
    /// A format by its name or alias (`md`, …), as `--format`, the `FORMAT:`
    /// of `--out` and a file's extension name it.
    pub fn parse(name: &str) -> Option<Format> {
        <Format as ValueEnum>::from_str(name, false).ok()
    }
}

/// How `record log` reads a log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// csvlog when the file ends in `.csv` or reads as CSV, else stderr.
    Auto,
    #[value(alias = "csv")]
    Csvlog,
    Stderr,
}

/// `record log --format NAME`.
fn log_format_arg(name: &str) -> Result<LogFormat, Error> {
    <LogFormat as ValueEnum>::from_str(name, false)
        .map_err(|_| Error::input(format!("--format {name:?}: use auto, csvlog or stderr")))
}
