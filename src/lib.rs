//! `lockimpact` rehearses a PostgreSQL schema migration on a disposable clone
//! while a recorded read/write workload runs at its target rate, and reports
//! what the migration did to live traffic: locks, blocked sessions, latency
//! per phase, and the longest step.
//!
//! # Layout
//!
//! The modules follow the data flow:
//!
//! ```text
//! cli ─► scenario (file → validated Plan) ─► clone (local or docker server, template db
//!                                               from a seed script or a pg_dump restore, fresh copy)
//!                                               │
//!          workload (pacer + workers) · sampler (pg_locks) · migration (steps) · timeline (phase clock)
//!                                               │
//!                               record (RunRecord, raw) ─► report (model, builder, render)
//! ```
//!
//! - `pg`: PostgreSQL vocabulary, importing nothing of the tool: connection
//!   settings as libpq reads them (and redacted), TLS per `sslmode`, SQL that
//!   reaches beyond its database.
//! - `cli`: clap definitions, raw input only.
//! - `scenario`: scenario file format, `--set`, templates → `Plan`.
//! - `clone`: disposable servers (RAII guards: `local`, `docker`), an existing
//!   one behind explicit opt-in (`url`), what SQL each lets run (`guard`), the
//!   template database, restoring a pg_dump snapshot into it.
//! - `snapshot`: `lockimpact snapshot`, a read-only pg_dump of a source database.
//! - `recorder`: `lockimpact record`, a workload from pg_stat_statements or
//!   PostgreSQL logs (not `record`, the raw measurements of a rehearsal).
//! - `workload`: workload file, parameter generators, open-loop pacer, workers
//!   (one thread and one `wire` connection each), session replay.
//! - `migration`: splitting with pg_query, directives, groups (migration
//!   files), the step runner; migration tools' directories, their history
//!   tables, a captured framework command, preflight data checks.
//! - `sampler`: the lock sampler and blocked episodes; typed lock modes.
//! - `timeline`: which phase is current; phase marks.
//! - `rehearsal`: runs one rehearsal and returns its `RunRecord`.
//! - `report`: the JSON contract, its builder, renderers (text, JSON,
//!   Markdown, HTML) and where outputs go.
//! - `clean`: `lockimpact clean`, the leftovers of killed runs.
//! - `compare`: two reports → a `Comparison` (ranking, one-line verdict).
//! - `status`: progress lines and the live status line on a terminal.
//! - `bench`: `lockimpact bench`, the harness measured against pgbench and
//!   pg_restore on this machine (BENCHMARKS.md).

pub mod bench;
pub mod clean;
pub mod cli;
pub mod clone;
pub mod compare;
pub mod error;
pub mod migration;
pub mod pg;
pub mod record;
pub mod recorder;
pub mod rehearsal;
pub mod report;
pub mod sampler;
pub mod scenario;
pub mod snapshot;
pub mod status;
pub mod timeline;
pub mod workload;

use tokio_util::sync::CancellationToken;

use cli::{Cli, Command, CompareArgs, RunArgs};
use error::{Error, Result};
use report::output::Outputs;
use report::render::Doc;
use status::Progress;

/// Exit code when the verdict fails (a budget is exceeded).
pub const EXIT_BUDGET: i32 = 1;

/// Runs the command and returns the process exit code. Everything it started
/// is stopped and removed before it returns.
pub fn main_entry(cli: Cli) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 2;
        }
    };
    let result = runtime.block_on(async {
        let cancel = CancellationToken::new();
        tokio::spawn(watch_signals(cancel.clone()));
        match cli.command {
            Command::Run(args) => run(&args, &cancel).await,
            Command::Compare(args) => compare(&args, &cancel).await,
            Command::Snapshot(args) => snapshot::snapshot(&args),
            Command::Record(args) => recorder::record(&args).await,
            Command::Bench(args) => bench::bench(&args, &cancel).await,
            Command::Clean(args) => clean::clean(&args).await,
        }
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// Cancels on Ctrl-C or SIGTERM; the run unwinds and its guards clean up.
async fn watch_signals(cancel: CancellationToken) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        if cancel.is_cancelled() {
            eprintln!("still cleaning up; the clone is being removed");
        } else {
            eprintln!("interrupted: stopping the rehearsal and removing the clone");
        }
        cancel.cancel();
    }
}

/// `lockimpact run`: returns 0, or `EXIT_BUDGET` when the verdict fails.
pub async fn run(args: &RunArgs, cancel: &CancellationToken) -> Result<i32> {
    let mut opts = args.opts.clone();
    opts.migration = args.migration.clone();
    let plan = scenario::load(args.scenario.as_deref(), &opts)?;
    let outputs = Outputs::parse(&args.opts)?;
    let progress = Progress::new(args.opts.quiet);
    clean::mention(&progress).await;
    let mut server = start_server(&plan, &progress, cancel).await?;
    clone::guard::check(&plan, server.backend(), server.existing_database().as_deref())?;
    let dataset = guarded(&server, cancel, rehearsal::prepare(&plan, &server, &progress)).await?;
    let record = with_log(&server, rehearsal::rehearse(&plan, &server, &dataset, &progress, cancel)).await?;
    if plan.clone.keep {
        // Printed even with --quiet: a server left running is never silent.
        eprintln!("lockimpact: {}", server.keep(rehearsal::RUN_DB));
    }
    drop(server);
    let report = report::build(&record);
    outputs.write(Doc::Run(&report))?;
    Ok(exit_code(&progress, [record.stop], report.verdict.pass))
}

/// 130 when interrupted, 2 when the server was lost (the partial report is
/// written either way), else 0 or `EXIT_BUDGET` by the verdict.
fn exit_code(progress: &Progress, stops: impl IntoIterator<Item = Option<record::Stop>>, pass: bool) -> i32 {
    let stops: Vec<record::Stop> = stops.into_iter().flatten().collect();
    if let Some(stop) = stops.first() {
        progress
            .say(&format!("the run is incomplete: {}; the report covers what was measured until then", stop.reason()));
    }
    if stops.contains(&record::Stop::Interrupted) {
        Error::interrupted().exit_code()
    } else if !stops.is_empty() {
        Error::db("").exit_code()
    } else if pass {
        0
    } else {
        EXIT_BUDGET
    }
}

/// `lockimpact compare`: rehearses each candidate on a fresh copy of the same
/// template, one after the other; returns 0, or `EXIT_BUDGET` when any
/// candidate exceeds its budget.
pub async fn compare(args: &CompareArgs, cancel: &CancellationToken) -> Result<i32> {
    let plans = compare_plans(args)?;
    if plans.iter().any(|p| p.clone.backend == scenario::Backend::Url) {
        return Err(Error::input(
            "compare needs a fresh copy of the data for each candidate, and the url backend has only the one \
             database; use the local or docker backend",
        ));
    }
    let differences = compare::differences(&plans[0], &plans[1], args.allow_different)?;
    let outputs = Outputs::parse(&args.opts)?;
    let progress = Progress::new(args.opts.quiet);
    clean::mention(&progress).await;
    let mut reports = Vec::new();
    let mut stops = Vec::new();
    let mut current: Option<(clone::Server, clone::template::Dataset)> = None;
    for (i, plan) in plans.iter().enumerate() {
        let reuse = i > 0 && compare::same_clone(&plans[0], plan);
        if !reuse {
            drop(current.take()); // stops the previous server first
            let server = start_server(plan, &progress, cancel).await?;
            // Every candidate still to run, before any runs: a refusal loses no report.
            for later in &plans[i..] {
                clone::guard::check(later, server.backend(), None)?;
            }
            let dataset = guarded(&server, cancel, rehearsal::prepare(plan, &server, &progress)).await?;
            current = Some((server, dataset));
        }
        let (server, dataset) = current.as_ref().expect("a server");
        progress.say(&format!("candidate {}: {} ({})", compare::label(i), plan.name, plan.migration_path.display()));
        let record = with_log(server, rehearsal::rehearse(plan, server, dataset, &progress, cancel)).await?;
        reports.push(report::build(&record));
        stops.push(record.stop);
        if record.stop.is_some() {
            break; // keep what was measured; start no further candidate
        }
    }
    if let Some((mut server, _)) = current
        && args.opts.keep
    {
        eprintln!("lockimpact: {}", server.keep(rehearsal::RUN_DB));
    }
    let comparison = compare::build(reports, differences);
    outputs.write(Doc::Compare(&comparison))?;
    Ok(exit_code(&progress, stops, comparison.pass))
}

/// The candidates of `compare`: two scenarios, or one scenario with two `--migration`s.
fn compare_plans(args: &CompareArgs) -> Result<Vec<scenario::Plan>> {
    match (args.scenarios.as_slice(), args.migrations.as_slice()) {
        ([a, b], []) => Ok(vec![scenario::load(Some(a), &args.opts)?, scenario::load(Some(b), &args.opts)?]),
        ([_], [a, b]) if a.as_os_str() == "-" && b.as_os_str() == "-" => {
            Err(Error::input("standard input can be read once: give `--migration -` for one candidate only"))
        }
        ([s], [_, _]) => args
            .migrations
            .iter()
            .map(|m| {
                let mut opts = args.opts.clone();
                opts.migration = Some(if m.as_os_str() == "-" {
                    m.clone()
                } else {
                    std::path::absolute(m).map_err(|e| Error::input(format!("--migration {}: {e}", m.display())))?
                });
                scenario::load(Some(s), &opts)
            })
            .collect(),
        (_, []) => Err(Error::input(
            "compare needs two candidates: two scenario files (A.toml B.toml), or one scenario with \
             --migration a.sql --migration b.sql",
        )),
        ([_], m) => {
            Err(Error::input(format!("compare takes exactly two --migration files (A, then B), not {}", m.len())))
        }
        (_, _) => {
            Err(Error::input("use either two scenario files or one scenario with two --migration files, not both"))
        }
    }
}

/// Starts the clone a plan asks for; Ctrl-C during a slow start (an image
/// pull) stops it.
async fn start_server(plan: &scenario::Plan, progress: &Progress, cancel: &CancellationToken) -> Result<clone::Server> {
    let dump = plan.dump.as_ref().map(|d| d.path.as_path());
    let server = clone::start_cancellable(&plan.clone, dump, &|m: &str| progress.say(m), Some(cancel)).await?;
    if cancel.is_cancelled() {
        return Err(Error::interrupted());
    }
    Ok(server)
}

/// Runs `work` against `server` unless interrupted (it is dropped then); a
/// database error gets the server's log tail attached.
async fn guarded<T>(
    server: &clone::Server,
    cancel: &CancellationToken,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    with_log(server, async {
        tokio::select! {
            r = work => r,
            _ = cancel.cancelled() => Err(Error::interrupted()),
        }
    })
    .await
}

/// Runs `work` to its end (it handles interruption itself); a database error
/// gets the server's log tail attached.
async fn with_log<T>(server: &clone::Server, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    work.await.map_err(|e| match e.kind {
        error::Kind::Database => e.detail(format!("last lines of the server log:\n{}", server.log_tail())),
        _ => e,
    })
}
