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
//! - `cli`: clap definitions, raw input only.
//! - `scenario`: scenario file format, `--set`, templates → `Plan`.
//! - `clone`: disposable servers (RAII guards: `local`, `docker`), the template
//!   database, restoring a pg_dump snapshot into it.
//! - `snapshot`: `lockimpact snapshot`, a read-only pg_dump of a source database.
//! - `workload`: workload file, parameter generators, open-loop pacer, worker pool.
//! - `migration`: splitting with pg_query, directives, the step runner.
//! - `sampler`: the lock sampler and blocked episodes; typed lock modes.
//! - `timeline`: which phase is current; phase marks.
//! - `rehearsal`: runs one rehearsal and returns its `RunRecord`.
//! - `report`: the JSON contract, its builder and renderers.

pub mod cli;
pub mod clone;
pub mod error;
pub mod migration;
pub mod record;
pub mod rehearsal;
pub mod report;
pub mod sampler;
pub mod scenario;
pub mod snapshot;
pub mod timeline;
pub mod workload;

use std::io::Write;

use tokio_util::sync::CancellationToken;

use cli::{Cli, Command, RunArgs};
use error::{Error, Result};

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
            Command::Snapshot(args) => snapshot::snapshot(&args),
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
    let plan = scenario::load(args)?;
    if let Some(path) = &args.json {
        // Fail now, not after a long rehearsal.
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        if !dir.is_dir() {
            return Err(Error::input(format!("--json {}: directory {} does not exist", path.display(), dir.display())));
        }
    }
    let quiet = args.quiet;
    let say = move |msg: &str| {
        if !quiet {
            eprintln!("lockimpact: {msg}");
        }
    };
    let mut server = clone::start_cancellable(&plan.clone, &say, Some(cancel))?;
    if cancel.is_cancelled() {
        return Err(Error::interrupted());
    }
    let record = tokio::select! {
        r = rehearsal::rehearse(&plan, &server, &say, cancel) => r,
        _ = cancel.cancelled() => Err(Error::interrupted()),
    };
    let record = match record {
        Ok(r) => r,
        Err(e) if e.kind == error::Kind::Database => {
            return Err(e.detail(format!("last lines of the server log:\n{}", server.log_tail())));
        }
        Err(e) => return Err(e),
    };
    if plan.clone.keep {
        say(&server.keep(rehearsal::RUN_DB));
    }
    drop(server);
    let report = report::build(&record);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    report::render::terminal::render(&report, &mut out)
        .map_err(|e| Error::env(format!("cannot write the report: {e}")))?;
    out.flush().ok();
    if let Some(path) = &args.json {
        let mut f = std::fs::File::create(path)
            .map_err(|e| Error::env(format!("{}: cannot create the JSON report: {e}", path.display())))?;
        report::render::json::render(&report, &mut f)
            .map_err(|e| Error::env(format!("{}: cannot write the JSON report: {e}", path.display())))?;
    }
    Ok(if report.verdict.pass { 0 } else { EXIT_BUDGET })
}
