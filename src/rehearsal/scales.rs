//! `run --scales`: the scenario rehearsed once per size, each on a server
//! of its own seeded with `vars.rows` set to that size (every other
//! variable, the workload's rate and connections and the phases as the
//! scenario sets them: the same load shape), then each step's figures
//! fitted against the rows and predicted at production's row count
//! (`report::builder::extrapolate`). The report is the largest scale's,
//! with its `extrapolation`.

use tokio_util::sync::CancellationToken;

use crate::cli::{RunArgs, RunOptions, Scales};
use crate::clone::plan::Backend;
use crate::error::{Error, ExitCode, Result};
use crate::report::model::PredictSource;
use crate::report::{self, Report, output::Outputs, render::Doc};
use crate::run_record::Stop;
use crate::scenario::{self, Plan};
use crate::status::Progress;
use crate::{clean, exit_code, guarded, rehearsal, rehearse_once, start_server};

/// `lockimpact run --scales`: exits as `run` does, by the largest scale's verdict.
pub async fn run(args: &RunArgs, scales: &Scales, cancel: &CancellationToken) -> Result<ExitCode> {
    let mut opts = args.opts.clone();
    opts.migration = args.migration.clone();
    let base = scenario::load(args.scenario.as_deref(), &opts)?;
    let base_rows = check(&base, args)?;
    let sizes = sizes(scales, base_rows)?;
    let (predict, source) = match args.predict_rows {
        Some(n) => (n, PredictSource::Flag),
        None => (base_rows, PredictSource::Scenario),
    };
    let outputs = Outputs::parse(&args.opts, &base.inputs)?;
    let progress = Progress::new(args.opts.quiet);
    clean::mention(&progress).await;
    let mut runs: Vec<(u64, Report)> = Vec::new();
    for (k, &rows) in sizes.iter().enumerate() {
        progress.say(&format!("scale {}/{}: vars.rows = {rows}", k + 1, sizes.len()));
        let plan = at_rows(args, &opts, rows)?;
        let (report, stop) = one_scale(&plan, &progress, cancel).await?;
        if stop.is_some() {
            // What was measured is written; no fit from a partial series.
            outputs.write(Doc::Run(&report))?;
            return Ok(exit_code(&progress, [stop], report.verdict.status()));
        }
        runs.push((rows, report));
    }
    let refs: Vec<(u64, &Report)> = runs.iter().map(|(n, r)| (*n, r)).collect();
    let extrapolation = report::builder::extrapolate(&refs, predict, source);
    for risk in &extrapolation.risks {
        progress.warn(&risk.message);
    }
    let (_, mut last) = runs.pop().expect("three scales or more");
    last.extrapolation = Some(extrapolation);
    outputs.write(Doc::Run(&last))?;
    Ok(exit_code(&progress, [None], last.verdict.status()))
}

/// The scenario's `vars.rows`, after refusing what `--scales` cannot do.
fn check(plan: &Plan, args: &RunArgs) -> Result<u64> {
    let refuse = |why: &str| Err(Error::input(format!("--scales {why}")));
    if plan.dump.is_some() {
        return refuse("sets the seed script's vars.rows, and this scenario restores a dump ([snapshot] dump)");
    }
    if plan.synthetic.is_some() {
        return refuse(
            "sets the seed script's vars.rows, and this scenario generates its data from statistics ([snapshot] \
             synthetic), which vars.rows does not change; rehearse it at several snapshot.scale values instead",
        );
    }
    if plan.clone.backend == Backend::Url {
        return refuse("seeds a server per size, and the url backend has only its one database");
    }
    if args.fail_at.is_some() {
        return refuse("and --fail-at cannot be combined: rehearse the stop points at one size");
    }
    if plan.clone.keep {
        return refuse("removes each size's server after its rehearsal; --keep is not supported with it");
    }
    match plan.vars.get("rows").map(|v| crate::cli::rows_arg(v)) {
        Some(Ok(n)) => Ok(n),
        Some(Err(e)) => refuse(&format!("sets vars.rows, and scenario {}'s [vars] rows: {}", plan.name, e.message)),
        None => refuse(&format!(
            "sets vars.rows, and scenario {} has no [vars] rows (its seed script's row count)",
            plan.name
        )),
    }
}

/// The row counts to rehearse, ascending; at least two distinct ones.
fn sizes(scales: &Scales, base_rows: u64) -> Result<Vec<u64>> {
    let mut rows: Vec<u64> = scales.0.iter().map(|s| s.rows(base_rows)).collect();
    if rows.contains(&0) {
        return Err(Error::input(format!(
            "--scales: a percentage of vars.rows = {base_rows} rounds to no row at all; use a larger one"
        )));
    }
    rows.sort_unstable();
    let mut distinct = rows.clone();
    distinct.dedup();
    if distinct.len() < 2 {
        return Err(Error::input(format!(
            "--scales needs at least two different row counts to fit a curve, got only {}",
            distinct[0]
        )));
    }
    Ok(rows)
}

/// The scenario loaded again with `vars.rows` set to `rows` (after any `--set`).
fn at_rows(args: &RunArgs, opts: &RunOptions, rows: u64) -> Result<Plan> {
    let mut opts = opts.clone();
    opts.set.push(format!("vars.rows={rows}"));
    scenario::load(args.scenario.as_deref(), &opts)
}

/// One size: its own server, template seeded, one rehearsal, server removed.
async fn one_scale(plan: &Plan, progress: &Progress, cancel: &CancellationToken) -> Result<(Report, Option<Stop>)> {
    let mut server = start_server(plan, progress, cancel).await?;
    scenario::guard::check(plan, server.backend(), server.existing_database().as_deref())?;
    let dataset = guarded(&server, cancel, rehearsal::prepare(plan, &server, progress)).await?;
    let (record, copy) = rehearse_once(plan, (&mut server, &dataset), progress, cancel, None).await?;
    drop(copy);
    drop(server);
    Ok((report::build(&record), record.stop))
}
