//! `run --scales`: the scenario rehearsed once per size, each on a server
//! of its own with that many rows (every other variable as the scenario sets
//! it unless `--scale-vars` grows it in proportion; the workload's rate and
//! connections and the phases as set: the same load shape), then each step's
//! figures fitted against the rows and
//! predicted at production's row count (`report::builder::extrapolate`).
//! The report is the largest scale's, with its `extrapolation`. A size is
//! the seed script's `vars.rows`, or for a dataset generated from
//! statistics (`[snapshot] synthetic`) the rows of its largest table, made
//! by setting `snapshot.scale`, or for a dump a percentage of its rows kept
//! by `snapshot.sample` (sampled across foreign keys), measured by the
//! largest table's rows in each sample (`Axis`).

use tokio_util::sync::CancellationToken;

use crate::cli::{RunArgs, RunOptions, Scales, Size};
use crate::clone::plan::Backend;
use crate::clone::synthetic::{SyntheticPlan, target_rows};
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
    let axis = check(&base, args, scales)?;
    let sizes = sizes(scales, &axis)?;
    let outputs = Outputs::parse(&args.opts, &base.inputs)?;
    let progress = Progress::new(args.opts.quiet);
    clean::mention(&progress).await;
    let mut runs: Vec<(u64, Report)> = Vec::new();
    for (k, &size) in sizes.iter().enumerate() {
        progress.say(&format!("scale {}/{}: {}", k + 1, sizes.len(), axis.describe(size)));
        let plan = axis.plan_at(args, &opts, size)?;
        let (report, stop) = one_scale(&plan, &progress, cancel).await?;
        if stop.is_some() {
            // What was measured is written; no fit from a partial series.
            outputs.write(Doc::Run(&report))?;
            return Ok(exit_code(&progress, [stop], report.verdict.status()));
        }
        runs.push((axis.rows(size, &report), report));
    }
    let largest = (*sizes.last().expect("sizes"), runs.last().map_or(0, |r| r.0));
    let (predict, source) = match args.predict_rows {
        Some(n) => (n, PredictSource::Flag),
        None => axis.production(largest),
    };
    let refs: Vec<(u64, &Report)> = runs.iter().map(|(n, r)| (*n, r)).collect();
    let mut extrapolation = report::builder::extrapolate(&refs, predict, source);
    extrapolation.scaled_vars = axis.scaled_vars();
    for risk in &extrapolation.risks {
        progress.warn(&risk.message);
    }
    let (_, mut last) = runs.pop().expect("three scales or more");
    last.extrapolation = Some(extrapolation);
    outputs.write(Doc::Run(&last))?;
    Ok(exit_code(&progress, [None], last.verdict.status()))
}

/// What a size sets: the seed script's row count, the scale of a dataset
/// generated from statistics, measured by its largest table, or the
/// fraction of a dump kept (in parts per million), measured by its largest
/// table once sampled.
enum Axis {
    /// `vars.rows`, as the scenario sets it, and the `[vars]` that grow
    /// with it (`--scale-vars`) with their values.
    VarsRows(u64, Vec<(String, u64)>),
    Synthetic {
        /// The largest table, and its rows in the statistics (production's).
        table: String,
        production: u64,
        /// Its rows at the scenario's `snapshot.scale`.
        configured: u64,
    },
    /// `snapshot.sample` of a dump, in parts per million.
    Dump,
}

impl Axis {
    /// What a percentage is of: the dataset as the scenario sets it.
    fn base(&self) -> u64 {
        match self {
            Axis::VarsRows(n, _) => *n,
            Axis::Synthetic { configured, .. } => *configured,
            Axis::Dump => 1_000_000,
        }
    }

    /// The rows a rehearsal at `size` had: the size itself, or a sampled
    /// dump's largest table.
    fn rows(&self, size: u64, report: &Report) -> u64 {
        match self {
            Axis::Dump => report.dataset.tables.iter().map(|t| t.rows.max(0) as u64).max().unwrap_or(0),
            _ => size,
        }
    }

    /// The row count predicted at without `--predict-rows`, given the
    /// largest size and the rows it had (a dump: them over its fraction).
    fn production(&self, (size, rows): (u64, u64)) -> (u64, PredictSource) {
        match self {
            Axis::VarsRows(n, _) => (*n, PredictSource::Scenario),
            Axis::Synthetic { production, .. } => (*production, PredictSource::Statistics),
            Axis::Dump => ((rows as f64 * 1e6 / size.max(1) as f64).round() as u64, PredictSource::Dump),
        }
    }

    /// The snapshot.scale that gives the largest table `rows` rows.
    fn scale(production: u64, rows: u64) -> f64 {
        rows as f64 / production.max(1) as f64
    }

    fn describe(&self, rows: u64) -> String {
        match self {
            Axis::VarsRows(..) => {
                self.vars_at(rows).iter().map(|(k, v)| format!("vars.{k} = {v}")).collect::<Vec<_>>().join(", ")
            }
            Axis::Synthetic { table, production, .. } => {
                format!("snapshot.scale = {} ({rows} rows in {table})", Axis::scale(*production, rows))
            }
            Axis::Dump => format!("snapshot.sample = {} of the dump", rows as f64 / 1e6),
        }
    }

    /// The scenario loaded again at `rows` (after any `--set`).
    fn plan_at(&self, args: &RunArgs, opts: &RunOptions, rows: u64) -> Result<Plan> {
        let mut opts = opts.clone();
        match self {
            Axis::VarsRows(..) => opts.set.extend(self.vars_at(rows).iter().map(|(k, v)| format!("vars.{k}={v}"))),
            Axis::Synthetic { production, .. } => {
                opts.set.push(format!("snapshot.scale={}", Axis::scale(*production, rows)))
            }
            Axis::Dump => opts.set.push(format!("snapshot.sample={}", rows as f64 / 1e6)),
        }
        scenario::load(args.scenario.as_deref(), &opts)
    }

    /// `vars.rows` and each var that grows with it at `rows`: its value
    /// times `rows` over the scenario's `vars.rows`, at least 1.
    fn vars_at(&self, rows: u64) -> Vec<(String, u64)> {
        let Axis::VarsRows(base, with) = self else { return Vec::new() };
        let ratio = rows as f64 / (*base).max(1) as f64;
        let grown = with.iter().map(|(k, v)| (k.clone(), ((*v as f64 * ratio).round() as u64).max(1)));
        std::iter::once(("rows".to_string(), rows)).chain(grown).collect()
    }

    /// The vars `--scale-vars` grows with the rows.
    fn scaled_vars(&self) -> Vec<String> {
        match self {
            Axis::VarsRows(_, with) => with.iter().map(|(k, _)| k.clone()).collect(),
            _ => Vec::new(),
        }
    }
}

/// What the sizes set, after refusing what `--scales` cannot do.
fn check(plan: &Plan, args: &RunArgs, scales: &Scales) -> Result<Axis> {
    let refuse = |why: &str| Err(Error::input(format!("--scales {why}")));
    if plan.clone.backend == Backend::Url {
        return refuse("seeds a server per size, and the url backend has only its one database");
    }
    if args.fail_at.is_some() {
        return refuse("and --fail-at cannot be combined: rehearse the stop points at one size");
    }
    if plan.clone.keep {
        return refuse("removes each size's server after its rehearsal; --keep is not supported with it");
    }
    if !args.scale_vars.is_empty() && (plan.dump.is_some() || plan.synthetic.is_some()) {
        return Err(Error::input(
            "--scale-vars grows [vars] with vars.rows for a seed script; a dump's sample or a generated dataset's \
             scale sizes every table already: remove it"
                .to_string(),
        ));
    }
    if let Some(dump) = &plan.dump {
        if dump.sample.is_some() {
            return refuse("sets snapshot.sample of the dump itself; remove it from the scenario");
        }
        if scales.0.iter().any(|s| !matches!(s, Size::Percent(p) if *p <= 100.0)) {
            return refuse(
                "over a dump takes percentages of it, up to 100% (e.g. 1%,3%,10%): its row counts are known only \
                 once it is restored",
            );
        }
        return Ok(Axis::Dump);
    }
    if let Some(synthetic) = &plan.synthetic {
        return synthetic_axis(synthetic).ok_or_else(|| {
            Error::input(format!(
                "--scales sizes the largest table of {}, and its statistics count no rows in any table; take \
                 them again after ANALYZE on the source",
                synthetic.path.display()
            ))
        });
    }
    match plan.vars.get("rows").map(|v| crate::cli::rows_arg(v)) {
        Some(Ok(n)) => Ok(Axis::VarsRows(n, grown_vars(plan, &args.scale_vars)?)),
        Some(Err(e)) => refuse(&format!("sets vars.rows, and scenario {}'s [vars] rows: {}", plan.name, e.message)),
        None => refuse(&format!(
            "sets vars.rows, and scenario {} has no [vars] rows (its seed script's row count)",
            plan.name
        )),
    }
}

/// The `--scale-vars` with their values in the scenario: each a count in its `[vars]`.
fn grown_vars(plan: &Plan, names: &[String]) -> Result<Vec<(String, u64)>> {
    let refuse = |why: String| Error::input(format!("--scale-vars: {why}"));
    let mut out: Vec<(String, u64)> = Vec::new();
    for name in names.iter().map(|n| n.trim()) {
        if name == "rows" {
            return Err(refuse("rows is what --scales sets; name the other [vars] that grow with it".into()));
        }
        let text = (plan.vars.get(name))
            .ok_or_else(|| refuse(format!("scenario {} has no [vars] {name:?} to grow with the rows", plan.name)))?;
        let value = crate::cli::rows_arg(text)
            .map_err(|e| refuse(format!("vars.{name} of scenario {} must be a count: {}", plan.name, e.message)))?;
        if !out.iter().any(|(k, _)| k == name) {
            out.push((name.to_string(), value));
        }
    }
    Ok(out)
}

/// The largest table of a generated dataset; `None` when no table has rows.
fn synthetic_axis(plan: &SyntheticPlan) -> Option<Axis> {
    let (table, production) = plan
        .stats
        .tables
        .iter()
        .map(|t| (t, target_rows(t, 1.0)))
        .max_by_key(|(_, rows)| *rows)
        .filter(|(_, rows)| *rows > 0)?;
    let configured = target_rows(table, plan.scale);
    Some(Axis::Synthetic { table: table.name.clone(), production, configured })
}

/// The row counts to rehearse, ascending; at least two distinct ones.
fn sizes(scales: &Scales, axis: &Axis) -> Result<Vec<u64>> {
    let base = axis.base();
    let mut rows: Vec<u64> = scales.0.iter().map(|s| s.rows(base)).collect();
    if rows.contains(&0) {
        let of = match axis {
            Axis::VarsRows(..) => "vars.rows".to_string(),
            Axis::Synthetic { table, .. } => format!("{table}'s rows at snapshot.scale"),
            Axis::Dump => "the dump's rows (in parts per million)".to_string(),
        };
        return Err(Error::input(format!(
            "--scales: a percentage of {of} = {base} rounds to no row at all; use a larger one"
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
