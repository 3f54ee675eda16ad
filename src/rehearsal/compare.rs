//! `lockimpact compare`: the command that rehearses each candidate and puts
//! the reports side by side (`report::compare`). Each candidate runs on a
//! fresh copy of the same template, made as `run` makes it
//! (`crate::fresh_copy`: a reflink copy on a server of its own where the
//! server's data directory shares blocks, else a template copy), one after
//! the other; with `--parallel`, all at once, each on its own reflink copy
//! and server, when the machine allows it (`blocker`), else one after the
//! other with a note saying why.

use tokio_util::sync::CancellationToken;

use crate::cli::CompareArgs;
use crate::clone::{self, Server, reflink::Reset, template::Dataset};
use crate::error::{Error, ExitCode, Result};
use crate::report::{self, Report, compare};
use crate::report::{output::Outputs, render::Doc};
use crate::run_record::{RunRecord, Stop};
use crate::scenario::{self, Plan};
use crate::status::Progress;
use crate::{clean, guarded, rehearsal, rehearse_once, start_server, with_log};

/// Cores `--parallel` needs per candidate: its server and its workload each
/// keep one busy at the rates a rehearsal runs.
pub const CORES_PER_CANDIDATE: usize = 2;

/// The variable that overrides the cores counted (default: those this
/// process may use, as `nproc` counts them).
pub const CORES_VARIABLE: &str = "LOCKIMPACT_CORES";

/// A server with its template database built, and the state of the server
/// then (to tell whether a candidate changed it).
struct Prepared {
    server: Server,
    dataset: Dataset,
    state: Option<clone::state::ServerState>,
}

/// What the candidates measured, and what still runs until the report is
/// written: the template's server and the last reflink copies.
#[derive(Default)]
struct Ran {
    reports: Vec<Report>,
    stops: Vec<Option<Stop>>,
    /// A candidate that failed after others ran (their reports are kept).
    failed: Option<Error>,
    current: Option<Prepared>,
    copies: Vec<Reset>,
}

impl Ran {
    fn push(&mut self, record: &RunRecord) {
        self.reports.push(report::build(record));
        self.stops.push(record.stop);
    }

    /// `--keep`: the servers the last candidates ran on stay (said even
    /// with --quiet: a server left running is never silent), each labelled
    /// with its candidate when they ran at once.
    fn keep(&mut self, progress: &Progress) {
        let copies: Vec<&mut Server> = self.copies.iter_mut().filter_map(|c| c.server.as_mut()).collect();
        let at_once = copies.len() > 1;
        if !copies.is_empty() {
            for (i, server) in copies.into_iter().enumerate() {
                let progress = if at_once { of(progress, i) } else { *progress };
                progress.warn(&server.keep(rehearsal::RUN_DB));
            }
        } else if let Some(p) = &mut self.current {
            progress.warn(&p.server.keep(rehearsal::RUN_DB));
        }
    }
}

/// `lockimpact compare`: rehearses each candidate on a fresh copy of the same
/// template; returns `Ok`, or `BudgetExceeded` when any candidate exceeds its
/// budget. One after the other, a candidate that changed the server (its
/// settings, roles, databases, the template) leaves it to itself: the next
/// one runs on a fresh server. When a later candidate fails, the comparison
/// of those that ran is written before the error is returned.
pub async fn compare(args: &CompareArgs, cancel: &CancellationToken) -> Result<ExitCode> {
    let plans = compare_plans(args)?;
    if plans.iter().any(|p| p.clone.backend == clone::plan::Backend::Url) {
        return Err(Error::input(
            "compare needs a fresh copy of the data for each candidate, and the url backend has only the one \
             database; use the local or docker backend",
        ));
    }
    let mut differences = compare::differences(&plans[0], &plans[1], args.allow_different)?;
    let inputs: Vec<std::path::PathBuf> = plans.iter().flat_map(|p| p.inputs.iter().cloned()).collect();
    let outputs = Outputs::parse(&args.opts, &inputs)?;
    let progress = Progress::new(args.opts.quiet);
    let cores = if args.parallel { Some(cores()?) } else { None };
    clean::mention(&progress).await;
    let mut ran = Ran::default();
    let sequential_why = match cores {
        Some(cores) => parallel(&plans, cores, &progress, cancel, &mut ran).await?,
        None => None,
    };
    if let Some(why) = &sequential_why {
        progress.warn(&format!("--parallel: the candidates run one after the other: {why}"));
    }
    let concurrent = args.parallel && sequential_why.is_none();
    if !concurrent {
        one_by_one(&plans, &progress, cancel, &mut ran, &mut differences).await?;
    }
    if args.opts.keep {
        ran.keep(&progress);
    }
    let mut comparison = compare::build(std::mem::take(&mut ran.reports), differences);
    comparison.concurrent = concurrent;
    comparison.sequential_why = sequential_why;
    outputs.write(Doc::Compare(&comparison))?;
    let (failed, stops) = (ran.failed.take(), std::mem::take(&mut ran.stops));
    drop(ran); // the servers, after the report: nothing measured waits for them
    if let Some(e) = failed {
        progress.warn(&format!(
            "the comparison written holds the {} candidate(s) that ran before the failure",
            comparison.candidates.len()
        ));
        return Err(e);
    }
    Ok(crate::exit_code(&progress, stops, comparison.status()))
}

/// The candidates one after the other, each on a server of `ran.current`
/// (started here when it holds none, or none fit); an error before any
/// candidate ran is returned, a later one kept in `ran.failed`.
async fn one_by_one(
    plans: &[Plan],
    progress: &Progress,
    cancel: &CancellationToken,
    ran: &mut Ran,
    differences: &mut Vec<String>,
) -> Result<()> {
    for i in 0..plans.len() {
        ran.copies.clear(); // the previous candidate's server first
        let record = match candidate(plans, i, ran, progress, cancel).await {
            Ok(r) => r,
            Err(e) if ran.reports.is_empty() => return Err(e),
            Err(e) => {
                ran.failed = Some(e);
                break; // keep what the earlier candidates measured
            }
        };
        ran.push(&record);
        if record.stop.is_some() {
            break; // keep what was measured; start no further candidate
        }
        match changed_server(plans, i, ran, cancel).await {
            Ok(None) => {}
            Ok(Some(note)) => {
                progress.say(&note);
                differences.push(note); // the reviewer sees it in the comparison too
                drop(ran.current.take());
            }
            Err(e) => {
                ran.failed = Some(e);
                break;
            }
        }
    }
    Ok(())
}

/// How candidate `i` changed the server the next candidate would reuse, if
/// it did. A candidate on a reflink copy of its own changed nothing the next
/// one sees: its copy is made again from the stopped template.
async fn changed_server(plans: &[Plan], i: usize, ran: &Ran, cancel: &CancellationToken) -> Result<Option<String>> {
    let on_template = ran.copies.iter().all(|c| c.server.is_none());
    let reused = plans.get(i + 1).is_some_and(|next| compare::same_clone(&plans[0], next));
    let Some(Prepared { server, state: Some(before), .. }) = ran.current.as_ref().filter(|_| on_template && reused)
    else {
        return Ok(None);
    };
    let changes = guarded(server, cancel, async { Ok(before.changes_since(server).await) }).await?;
    Ok((!changes.is_empty()).then(|| {
        format!(
            "candidate {} changed the server ({}); candidate {} runs on a fresh server",
            compare::label(i),
            changes.join("; "),
            compare::label(i + 1)
        )
    }))
}

/// Starts the server candidate `i` asks for and builds its template.
async fn prepare(plans: &[Plan], i: usize, progress: &Progress, cancel: &CancellationToken) -> Result<Prepared> {
    let plan = &plans[i];
    let server = start_server(plan, progress, cancel).await?;
    // Every candidate still to run, before any runs: a refusal loses no report.
    for later in &plans[i..] {
        scenario::guard::check(later, server.backend(), None)?;
    }
    let dataset = guarded(&server, cancel, rehearsal::prepare(plan, &server, progress)).await?;
    let reused_later = plans[i + 1..].iter().any(|p| compare::same_clone(plan, p));
    let state = match reused_later {
        true => Some(guarded(&server, cancel, clone::state::ServerState::capture(&server)).await?),
        false => None,
    };
    Ok(Prepared { server, dataset, state })
}

/// Rehearses candidate `i` of `plans` on a fresh copy of the template on
/// `ran.current` when it can be reused (same data on the same kind of
/// server, not changed by an earlier candidate), else on a new one that
/// replaces it; the copy's own server, if any, goes to `ran.copies`.
async fn candidate(
    plans: &[Plan],
    i: usize,
    ran: &mut Ran,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<RunRecord> {
    let plan = &plans[i];
    if ran.current.is_none() || !compare::same_clone(&plans[0], plan) {
        drop(ran.current.take()); // stops the previous server first
        ran.current = Some(prepare(plans, i, progress, cancel).await?);
    }
    let Prepared { server, dataset, .. } = ran.current.as_mut().expect("a server");
    progress.say(&format!("candidate {}: {} ({})", compare::label(i), plan.name, plan.migration_path.display()));
    let (record, copy) = rehearse_once(plan, (server, dataset), progress, cancel, None).await?;
    ran.copies.extend(copy);
    Ok(record)
}

/// `--parallel`: every candidate at once, each on a reflink copy of one
/// template with a server of its own. Returns why not instead, when the
/// candidates cannot (`blocker`; the server started for it is left in
/// `ran.current` for the candidates one after the other).
async fn parallel(
    plans: &[Plan],
    cores: usize,
    progress: &Progress,
    cancel: &CancellationToken,
    ran: &mut Ran,
) -> Result<Option<String>> {
    if let Some(why) = blocker(plans, cores) {
        return Ok(Some(why));
    }
    let mut prepared = prepare(plans, 0, progress, cancel).await?;
    if let Some(why) = reflink_blocker(&mut prepared.server, &plans[0]) {
        ran.current = Some(prepared);
        return Ok(Some(why));
    }
    let mut made = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        let reset = crate::fresh_copy(&mut prepared.server, plan, cancel).await?;
        made.push(crate::made(&reset, &of(progress, i)));
        ran.copies.push(reset);
    }
    let results = at_once(plans, (&prepared, &ran.copies, &made), progress, cancel).await;
    ran.current = Some(prepared);
    // Interrupted by the failure of another, not by the user: not measured.
    let (records, error) = leading(results, |r| r.stop == Some(Stop::Interrupted) && !cancel.is_cancelled());
    records.iter().for_each(|r| ran.push(r));
    match error {
        Some(e) if ran.reports.is_empty() => Err(e),
        e => {
            ran.failed = e;
            Ok(None)
        }
    }
}

/// Rehearses candidate `i` on `copies[i]`, all at once. The first that
/// fails stops the others (as Ctrl-C stops them all).
async fn at_once(
    plans: &[Plan],
    (prepared, copies, made): (&Prepared, &[Reset], &[rehearsal::Made]),
    progress: &Progress,
    cancel: &CancellationToken,
) -> Vec<Result<RunRecord>> {
    let group = cancel.child_token();
    let runs = plans.iter().zip(copies.iter().zip(made)).enumerate().map(|(i, (plan, (copy, made)))| {
        let (group, progress) = (&group, of(progress, i));
        async move {
            progress.say(&format!(
                "candidate {}: {} ({})",
                compare::label(i),
                plan.name,
                plan.migration_path.display()
            ));
            let on = copy.server(&prepared.server);
            let work = rehearsal::rehearse_on(plan, (on, &prepared.dataset, made), &progress, group, None);
            let record = with_log(on, work).await.map_err(|e| e.context(format!("candidate {}", compare::label(i))));
            if record.is_err() {
                group.cancel();
            }
            record
        }
    });
    futures_util::future::join_all(runs).await
}

/// Of candidates that ran at once, the records to keep and the error to
/// report: the records before the candidate that failed, as one after the
/// other would have kept, but none `stopped` by that failure; its error, not
/// that of a candidate it interrupted.
fn leading<T>(mut results: Vec<Result<T>>, stopped: impl Fn(&T) -> bool) -> (Vec<T>, Option<Error>) {
    let cause = |r: &Result<T>| matches!(r, Err(e) if e.kind != crate::error::Kind::Interrupted);
    let Some(at) = results.iter().position(cause).or_else(|| results.iter().position(Result::is_err)) else {
        return (results.into_iter().flatten().collect(), None);
    };
    let Err(error) = results.remove(at) else { unreachable!("an error at {at}") };
    let kept = results.into_iter().take(at).map_while(|r| r.ok().filter(|r| !stopped(r))).collect();
    (kept, Some(error))
}

/// Progress lines of candidate `i`, labelled with it (no live line: the
/// candidates' would take turns).
fn of(progress: &Progress, i: usize) -> Progress {
    progress.labelled(compare::label(i).chars().next().unwrap_or('?'))
}

/// Why the candidates cannot run at once, known before any server starts.
fn blocker(plans: &[Plan], cores: usize) -> Option<String> {
    if plans.iter().skip(1).any(|p| !compare::same_clone(&plans[0], p)) {
        return Some(
            "their datasets or server settings differ, and --parallel copies one template for all candidates".into(),
        );
    }
    let needed = CORES_PER_CANDIDATE * plans.len();
    (cores < needed).then(|| {
        format!(
            "{needed} cores are needed ({CORES_PER_CANDIDATE} per candidate: its server and its workload) and this \
             machine has {cores} ({CORES_VARIABLE} overrides the count)"
        )
    })
}

/// Why the candidates cannot each get a reflink copy of `server`'s template.
fn reflink_blocker(server: &mut Server, plan: &Plan) -> Option<String> {
    if let Some(why) = crate::template_bound(server, plan) {
        return Some(format!("{why}, so each candidate needs a template copy"));
    }
    let support = clone::reflink::support(server);
    (!support.is_supported()).then(|| {
        format!(
            "each candidate needs a copy-on-write copy of the template, and there is none here ({}); put TMPDIR on \
             XFS made with reflink=1 or on btrfs",
            support.describe()
        )
    })
}

/// The cores counted for `--parallel`: `LOCKIMPACT_CORES`, else those this
/// process may use.
fn cores() -> Result<usize> {
    match std::env::var(CORES_VARIABLE) {
        Ok(v) => v.trim().parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
            Error::input(format!("{CORES_VARIABLE}={v}: give a number of cores, e.g. {CORES_VARIABLE}=4"))
        }),
        Err(_) => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// The candidates of `compare`: two scenarios, or one scenario with two `--migration`s.
fn compare_plans(args: &CompareArgs) -> Result<Vec<Plan>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn two() -> Vec<Plan> {
        let plan = scenario::load(None, &Default::default()).unwrap();
        vec![plan.clone(), plan]
    }

    #[test]
    fn a_failure_keeps_the_candidates_before_it_and_reports_its_own_error() {
        let stopped = |r: &&str| *r == "stopped";
        let (kept, e) = leading(vec![Ok("a"), Err(Error::db("B's error"))], stopped);
        assert_eq!((kept, e.unwrap().message), (vec!["a"], "B's error".to_string()));
        // A, stopped by B's failure, is not kept; B's error is the one reported, not A's interruption.
        let (kept, e) = leading(vec![Ok("stopped"), Err(Error::db("B's error"))], stopped);
        assert_eq!((kept, e.unwrap().message), (vec![], "B's error".to_string()));
        let (kept, e) = leading(vec![Err(Error::interrupted()), Err(Error::db("B's error"))], stopped);
        assert_eq!((kept, e.unwrap().message), (vec![], "B's error".to_string()));
        // A later candidate's record is not kept when an earlier one failed.
        let (kept, e) = leading(vec![Err(Error::env("A's error")), Ok("b")], stopped);
        assert_eq!((kept, e.unwrap().message), (vec![], "A's error".to_string()));
        let (kept, e) = leading::<&str>(vec![Ok("a"), Ok("b")], stopped);
        assert_eq!((kept, e.is_none()), (vec!["a", "b"], true));
    }

    #[test]
    fn parallel_needs_two_cores_per_candidate() {
        let why = blocker(&two(), 3).unwrap();
        assert!(why.contains("4 cores are needed (2 per candidate") && why.contains("has 3"), "{why}");
        assert!(why.contains(CORES_VARIABLE), "{why}");
        assert_eq!(blocker(&two(), 4), None);
    }

    #[test]
    fn parallel_copies_one_template() {
        let mut plans = two();
        plans[1].clone.settings.push(("work_mem".into(), "8MB".into()));
        assert!(blocker(&plans, 8).unwrap().contains("server settings differ"));
    }
}
