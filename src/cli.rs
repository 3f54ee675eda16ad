//! Command-line definition (clap derive). Raw user input only: nothing here is
//! validated beyond its shape; `scenario::load` turns it into a `Plan`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "lockimpact",
    version,
    about = "Rehearse a PostgreSQL schema migration under a recorded workload and measure its impact",
    long_about = "Rehearse a PostgreSQL schema migration on a disposable clone while a read/write \
workload runs at its target rate; report the locks each step takes, the sessions it blocks, \
the latency it causes and the longest step.\n\nExit codes: 0 ok, 1 budget exceeded, 2 bad input \
or environment, 130 interrupted."
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
    /// Take a rehearsal snapshot of a database with pg_dump (custom format,
    /// no owners, no privileges), read-only against the source.
    Snapshot(SnapshotArgs),
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The source database, as a libpq URL or connection string, e.g.
    /// postgresql://user@host:5432/app. A password in it is never printed;
    /// prefer PGPASSWORD or ~/.pgpass.
    #[arg(long, value_name = "URL")]
    pub from: String,

    /// The dump file to write (pg_dump custom format; restore it with
    /// `snapshot.dump = "FILE"` in a scenario).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// Dump the schema only (no rows), e.g. to fill it later with synthetic data.
    #[arg(long)]
    pub schema_only: bool,

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

    /// Override a scenario value, e.g. `--set vars.rows=100000` or
    /// `--set phases.baseline=2s`. Repeatable.
    #[arg(long = "set", value_name = "DOTTED.KEY=VALUE")]
    pub set: Vec<String>,

    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Which clone backend to use (overrides `clone.backend`): `auto` picks
    /// one that gives the scenario's major version and says why.
    #[arg(long, value_name = "auto|local|docker")]
    pub backend: Option<String>,

    /// The container image of the docker backend (overrides `clone.image`),
    /// e.g. `postgis/postgis:15-3.4`; default `postgres:<clone.pg_version>`.
    #[arg(long, value_name = "NAME:TAG")]
    pub image: Option<String>,

    /// Directory holding the PostgreSQL server binaries (initdb, pg_ctl).
    #[arg(long, value_name = "DIR", env = "PG_BIN")]
    pub pg_bin: Option<PathBuf>,

    /// Leave the disposable server running after the run and print how to
    /// connect to it and how to stop it.
    #[arg(long)]
    pub keep: bool,

    /// Print only the report (no progress lines on stderr).
    #[arg(long, short)]
    pub quiet: bool,
}
