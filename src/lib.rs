//! `lockimpact` rehearses a PostgreSQL schema migration on a disposable clone
//! while a recorded read/write workload runs at its target rate, and reports
//! what the migration did to live traffic: locks, blocked sessions, latency
//! per phase, and the longest step.
//!
//! # Layout
//!
//! The modules follow the data flow, and imports run one way along it
//! (ARCHITECTURE.md has the layers; `tests/it/pure/architecture.rs` checks them):
//!
//! ```text
//! cli ─► scenario (file → validated Plan) ─► clone (local, docker or url server, template db
//!                                               from a seed script or a pg_dump restore, fresh copy)
//!                                               │
//!          workload (pacer + workers, roles) · sampler (pg_locks) · migration (steps) · timeline
//!                                               │
//!                          run_record (RunRecord, raw) ─► report (model, builder, compare, render)
//! ```
//!
//! Leaves, importing only one another: `error`, `files` (inputs, outputs,
//! text, durations), `fmt` (numbers for people), `pg` (PostgreSQL vocabulary:
//! connection settings, TLS, lock modes, the scanner, the server log, SQL that
//! reaches beyond its database), `sys` (every call into the C library, behind safe
//! functions: the only `unsafe`), `timeline` (the phase clock).
//!
//! Commands: `rehearsal` (one rehearsal → `RunRecord`; `rehearsal::compare`, the
//! `compare` command), `bench`, `recorder`
//! (`lockimpact record`), `snapshot`, `clean`; `status` prints progress.

pub mod bench;
pub mod clean;
pub mod cli;
pub mod clone;
pub mod error;
pub mod files;
pub mod fmt;
pub mod migration;
pub mod pg;
pub mod recorder;
pub mod rehearsal;
pub mod report;
pub mod run_record;
pub mod sampler;
pub mod scenario;
pub mod snapshot;
pub mod status;
pub mod sys;
pub mod timeline;
pub mod workload;

use tokio_util::sync::CancellationToken;

use cli::{Cli, Command, RunArgs};
use error::{Error, ExitCode, Result};
use report::output::Outputs;
use report::render::Doc;
use status::Progress;

/// Runs the command and returns the process exit code. Everything it started
/// is stopped and removed before it returns.
pub fn main_entry(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            status::note(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::Failed;
        }
    };
    let is_compare = matches!(cli.command, Command::Compare(_));
    let result = runtime.block_on(async {
        let cancel = CancellationToken::new();
        watch_signals(cancel.clone())?;
        match cli.command {
            Command::Run(args) => run(&args, &cancel).await,
            Command::Compare(args) => rehearsal::compare::compare(&args, &cancel).await,
            Command::Snapshot(args) => snapshot::snapshot(&args).map(|()| ExitCode::Ok),
            Command::Record(args) => recorder::record(&args).await.map(|()| ExitCode::Ok),
            Command::Bench(args) => bench::bench(&args, &cancel).await.map(|()| ExitCode::Ok),
            Command::Clean(args) => clean::clean(&args).await.map(|()| ExitCode::Ok),
        }
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(code) => {
            if let Some(line) = exit_line(code, is_compare) {
                // Last, after the report and the clone's removal: what a
                // terminal shows at the bottom says the exit code is an answer.
                status::note(&line);
            }
            code
        }
        Err(e) => {
            status::note(&format!("error: {e}"));
            e.exit_code()
        }
    }
}

/// The line that says, in words, why a finished `run` or `compare` exits
/// non-zero by design (1, 3); `None` for 0 and for the codes of errors and
/// interruptions, which say so in their own messages. Written on stderr
/// only, never into the report or an `--out` file.
fn exit_line(code: ExitCode, compare: bool) -> Option<String> {
    let why = match (code, compare) {
        (ExitCode::BudgetExceeded, false) => "the verdict is FAIL: a budget was exceeded or the migration failed",
        (ExitCode::BudgetExceeded, true) => "a candidate failed: it exceeded its budget or its migration failed",
        (ExitCode::Inconclusive, false) => "inconclusive: no budget was exceeded, but the run is no evidence",
        (ExitCode::Inconclusive, true) => "inconclusive: no candidate failed, but a candidate's run is no evidence",
        _ => return None,
    };
    Some(format!("exit code {}: {why} (see the verdict above); this is lockimpact's answer, not a crash", code.code()))
}

/// Cancels on Ctrl-C, SIGTERM or SIGHUP (a closed terminal or ssh session):
/// the run stops, writes what it measured, and its guards clean up. The
/// handlers are installed before this returns, so no signal is missed.
fn watch_signals(cancel: CancellationToken) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut streams = Vec::new();
    for kind in [SignalKind::interrupt(), SignalKind::terminate(), SignalKind::hangup()] {
        streams.push(signal(kind).map_err(|e| Error::env(format!("cannot install a signal handler: {e}")))?);
    }
    tokio::spawn(async move {
        let [int, term, hup] = &mut streams[..] else { return };
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
                _ = hup.recv() => {}
            }
            if cancel.is_cancelled() {
                status::note("still cleaning up; the clone is being removed");
            } else {
                status::note("interrupted: stopping the rehearsal and removing the clone");
            }
            cancel.cancel();
        }
    });
    Ok(())
}

/// `lockimpact run`: returns `Ok`, `BudgetExceeded` when the verdict fails,
/// or `Inconclusive` when the run is no evidence.
pub async fn run(args: &RunArgs, cancel: &CancellationToken) -> Result<ExitCode> {
    if let Some(scales) = &args.scales {
        return rehearsal::scales::run(args, scales, cancel).await;
    }
    let mut opts = args.opts.clone();
    opts.migration = args.migration.clone();
    let plan = scenario::load(args.scenario.as_deref(), &opts)?;
    if let Some(spec) = &args.fail_at {
        check_fail_at(&plan, spec)?;
    }
    let outputs = Outputs::parse(&args.opts, &plan.inputs)?;
    let progress = Progress::new(args.opts.quiet);
    clean::mention(&progress).await;
    let mut server = start_server(&plan, &progress, cancel).await?;
    scenario::guard::check(&plan, server.backend(), server.existing_database().as_deref())?;
    let dataset = guarded(&server, cancel, rehearsal::prepare(&plan, &server, &progress)).await?;
    let (record, mut copy) = rehearse_once(&plan, (&mut server, &dataset), &progress, cancel, None).await?;
    let mut report = report::build(&record);
    let mut stops = vec![record.stop];
    if let Some(spec) = args.fail_at.as_ref().filter(|_| record.stop.is_none()) {
        let forward = &record.migration.steps;
        let (points, stop) = stop_points(&plan, (&mut server, &dataset), &progress, cancel, spec, forward).await?;
        report::builder::attach_stop_points(&mut report, points);
        stops.push(stop);
    }
    if plan.clone.keep {
        // Printed even with --quiet: a server left running is never silent.
        let kept = copy.as_mut().and_then(|c| c.server.as_mut()).unwrap_or(&mut server);
        progress.warn(&kept.keep(rehearsal::RUN_DB));
    }
    // The report first: nothing measured waits for the server's removal.
    outputs.write(Doc::Run(&report))?;
    drop(copy);
    drop(server);
    Ok(exit_code(&progress, stops, report.verdict.status()))
}

/// One rehearsal of `plan` (failing at `point`, if given) on a fresh copy
/// of the template (`fresh_copy`: by reflink on a server of its own when
/// the server's data directory shares blocks); returns the copy, whose own
/// server (if any) runs until it is dropped.
pub(crate) async fn rehearse_once(
    plan: &scenario::Plan,
    (server, dataset): (&mut clone::Server, &clone::template::Dataset),
    progress: &Progress,
    cancel: &CancellationToken,
    point: Option<&migration::failpoint::StopPoint>,
) -> Result<(run_record::RunRecord, Option<clone::reflink::Reset>)> {
    if server.existing_database().is_some() {
        // The url backend: its one database, no copy (and no --fail-at).
        let record = with_log(server, rehearsal::rehearse(plan, server, dataset, progress, cancel)).await?;
        return Ok((record, None));
    }
    let reset = fresh_copy(server, plan, cancel).await?;
    let made = made(&reset, progress);
    let on = reset.server(server);
    let record = with_log(on, rehearsal::rehearse_on(plan, (on, dataset, &made), progress, cancel, point)).await?;
    Ok((record, Some(reset)))
}

/// How `reset` made the run database, said and as the rehearsal records it.
pub(crate) fn made(reset: &clone::reflink::Reset, progress: &Progress) -> rehearsal::Made {
    progress.say(&format!(
        "fresh copy: {} in {:.2} s ({})",
        report::render::copy_method(reset.method.as_str()),
        reset.took.as_secs_f64(),
        reset.why
    ));
    rehearsal::Made { took: reset.took, method: reset.method, why: reset.why.clone() }
}

/// The run database, copied fresh: by `clone::reflink::reset`, or by
/// template copy when the template's server must stay (`template_bound`).
pub(crate) async fn fresh_copy(
    server: &mut clone::Server,
    plan: &scenario::Plan,
    cancel: &CancellationToken,
) -> Result<clone::reflink::Reset> {
    if plan.clone.replicas.logical {
        // An earlier run's slot on the run database would keep it from being dropped.
        clone::logical::unsubscribe(server).await?;
    }
    match template_bound(server, plan) {
        None => clone::reflink::reset(server, rehearsal::RUN_DB, cancel).await,
        Some(why) => clone::reflink::copy_template(server, rehearsal::RUN_DB, why.into(), cancel).await,
    }
}

/// Why the run's copy must be made on the template's own server, which a
/// reflink reset stops: standbys follow it, and a logical subscriber is a
/// second copy of its template.
pub(crate) fn template_bound(server: &clone::Server, plan: &scenario::Plan) -> Option<&'static str> {
    if !server.standbys().is_empty() {
        Some("the standbys follow the template's server")
    } else if plan.clone.replicas.logical {
        Some("the logical subscriber is a copy of the template on its server")
    } else {
        None
    }
}

/// `--fail-at` before anything starts: each stop point needs a fresh copy
/// (not the url backend) and steps known beforehand (not a command).
fn check_fail_at(plan: &scenario::Plan, spec: &migration::failpoint::FailAt) -> Result<()> {
    if plan.clone.backend == clone::plan::Backend::Url {
        return Err(Error::input(
            "--fail-at rehearses each stop point on a fresh copy of the data, and the url backend has only the one \
             database; use the local or docker backend",
        ));
    }
    if let migration::Source::Command { .. } = plan.migration.source {
        return Err(Error::input(
            "--fail-at needs the migration's steps before it runs, and a migration.command's statements are only \
             known once it ran; rehearse its SQL (e.g. `sqlmigrate` output) with --migration instead",
        ));
    }
    spec.points(&plan.migration.forward(), &[]).map(|_| ())
}

/// `run --fail-at`: one failing rehearsal per stop point, each on a fresh
/// copy of the template; `forward` is how long each step took in the
/// forward run. Stops at the first run that ends early (and says why).
async fn stop_points(
    plan: &scenario::Plan,
    (server, dataset): (&mut clone::Server, &clone::template::Dataset),
    progress: &Progress,
    cancel: &CancellationToken,
    spec: &migration::failpoint::FailAt,
    forward: &[run_record::StepRecord],
) -> Result<(Vec<report::model::StopPointReport>, Option<run_record::Stop>)> {
    // The forward run checked the data already (preflight).
    let plan = scenario::Plan { migration: plan.migration.forward(), preflight: false, ..plan.clone() };
    let points = spec.points(&plan.migration, forward)?;
    let mut out = Vec::new();
    for (k, p) in points.iter().enumerate() {
        progress.say(&format!("fail-at {}/{}: {} (a fresh copy)", k + 1, points.len(), p.describe()));
        let (rec, _copy) = rehearse_once(&plan, (server, dataset), progress, cancel, Some(p)).await?;
        out.extend(report::builder::stop_point(&rec));
        if rec.stop.is_some() {
            return Ok((out, rec.stop));
        }
    }
    Ok((out, None))
}

/// `Interrupted` when interrupted, `Failed` when the server was lost (the
/// partial report is written either way), else by the verdict.
pub(crate) fn exit_code(
    progress: &Progress,
    stops: impl IntoIterator<Item = Option<run_record::Stop>>,
    status: report::model::VerdictStatus,
) -> ExitCode {
    let stops: Vec<run_record::Stop> = stops.into_iter().flatten().collect();
    if let Some(stop) = stops.first() {
        progress
            .say(&format!("the run is incomplete: {}; the report covers what was measured until then", stop.reason()));
    }
    if stops.contains(&run_record::Stop::Interrupted) {
        ExitCode::Interrupted
    } else if !stops.is_empty() {
        ExitCode::Failed
    } else {
        match status {
            report::model::VerdictStatus::Pass => ExitCode::Ok,
            report::model::VerdictStatus::Fail => ExitCode::BudgetExceeded,
            report::model::VerdictStatus::Inconclusive => ExitCode::Inconclusive,
        }
    }
}

/// Starts the clone a plan asks for; Ctrl-C during a slow start (an image
/// pull) stops it.
pub(crate) async fn start_server(
    plan: &scenario::Plan,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<clone::Server> {
    let dump = plan.dump.as_ref().map(|d| d.path.as_path());
    let server = clone::start_cancellable(&plan.clone, dump, &|m: &str| progress.say(m), Some(cancel)).await?;
    if cancel.is_cancelled() {
        return Err(Error::interrupted());
    }
    Ok(server)
}

/// Runs `work` against `server` unless interrupted or the server stops
/// answering (the watchdog): it is dropped then. A database error gets the
/// server's log tail attached.
pub(crate) async fn guarded<T>(
    server: &clone::Server,
    cancel: &CancellationToken,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let watchdog = clone::watchdog::Watchdog::start(server.target(&clone::control_db(server)));
    with_log(server, async {
        tokio::select! {
            r = watchdog.guard(work) => r,
            _ = cancel.cancelled() => Err(Error::interrupted()),
        }
    })
    .await
}

/// Runs `work` to its end (it handles interruption itself); a database error
/// gets the server's log tail attached.
pub(crate) async fn with_log<T>(
    server: &clone::Server,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    work.await.map_err(|e| match e.kind {
        // The url backend cannot read its server's log: nothing to attach.
        error::Kind::Database if server.backend() != clone::plan::Backend::Url => {
            e.detail(format!("last lines of the server log:\n{}", server.log_tail()))
        }
        _ => e,
    })
}
