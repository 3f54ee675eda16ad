//! Renderers: each writes a `Report` (or a `Comparison`) to `impl Write`
//! and computes nothing.

mod annotated;
mod extrapolation;
pub mod html;
pub mod json;
pub mod markdown;
mod replica;
mod svg;
pub mod terminal;

use crate::fmt::{fmt_bytes, fmt_count, fmt_ms};
use crate::report::Report;
use crate::report::compare::{Comparison, ReplicaTotals};
use crate::report::model::{BudgetLimit, BudgetSource, Phase, VerdictStatus};
use crate::report::output::Format;

/// What is rendered: one rehearsal, or a comparison of candidates.
#[derive(Debug, Clone, Copy)]
pub enum Doc<'a> {
    Run(&'a Report),
    Compare(&'a Comparison),
}

/// Writes `doc` in `format`.
pub fn render(doc: Doc, format: Format, out: &mut impl std::io::Write) -> std::io::Result<()> {
    match (format, doc) {
        (Format::Text, Doc::Run(r)) => terminal::render(r, out),
        (Format::Text, Doc::Compare(c)) => terminal::render_comparison(c, out),
        (Format::Json, Doc::Run(r)) => json::render(r, out),
        (Format::Json, Doc::Compare(c)) => json::render(c, out),
        (Format::Markdown, Doc::Run(r)) => markdown::render(r, out),
        (Format::Markdown, Doc::Compare(c)) => markdown::render_comparison(c, out),
        (Format::Html, Doc::Run(r)) => html::render(r, out),
        (Format::Html, Doc::Compare(c)) => html::render_comparison(c, out),
    }
}

/// A plain-text table: columns sized to their widest cell; columns listed in
/// `right` are right-aligned.
pub fn table(
    out: &mut impl std::io::Write,
    header: &[&str],
    rows: &[Vec<String>],
    right: &[usize],
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = widths[i] - c.chars().count();
                if right.contains(&i) { format!("{}{c}", " ".repeat(pad)) } else { format!("{c}{}", " ".repeat(pad)) }
            })
            .collect();
        format!("  {}", parts.join("  ").trim_end())
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for r in rows {
        writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// A table as header and rows of cell text, shared by the text, Markdown and
/// HTML renderers; `right` lists the right-aligned (numeric) columns.
pub struct Rows {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub right: Vec<usize>,
}

impl Rows {
    /// Writes it as a plain-text table.
    pub fn text(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let header: Vec<&str> = self.header.iter().map(String::as_str).collect();
        table(out, &header, &self.rows, &self.right)
    }
}

fn strings(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

/// Whether step `s` is a statement captured from a command's session.
fn captured(r: &Report, s: &crate::report::model::StepReport) -> bool {
    s.group.and_then(|g| r.migration.groups.get(g)).is_some_and(|g| g.captured)
}

/// One row per step; the longest is marked `*`.
pub fn step_rows(r: &Report) -> Rows {
    let rows = r
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut outcome = s.outcome.as_str().to_string();
            if let Some(code) = &s.sqlstate {
                outcome.push_str(&format!(" {code}"));
            }
            if s.retries > 0 {
                outcome.push_str(&format!(" ({} retries)", s.retries));
            }
            // A captured statement ran on the framework's session: rows and rewrites are the command's.
            let captured = captured(r, s);
            let locks = if s.locks.is_empty() {
                "-".to_string()
            } else {
                s.locks
                    .iter()
                    .map(|l| format!("{} {}{}", l.relation, l.mode, if l.sampled { " (sampled)" } else { "" }))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            vec![
                format!("{}{}", i + 1, if r.longest_step == Some(i) { " *" } else { "" }),
                s.name.clone(),
                fmt_ms(s.duration_ms),
                fmt_ms(s.lock_wait_ms),
                outcome,
                match (s.rewrote, captured) {
                    (true, _) => format!("yes ({})", s.rewritten.join(", ")),
                    (false, true) => "-".into(),
                    (false, false) => "no".into(),
                },
                s.wal_bytes.map(fmt_bytes).unwrap_or_else(|| "-".into()),
                if captured { "-".into() } else { s.rows.to_string() },
                fmt_ms(s.blocked_ms),
                s.blocked_sessions.to_string(),
                locks,
            ]
        })
        .collect();
    Rows {
        header: strings(&[
            "#",
            "step",
            "duration",
            "lock wait",
            "outcome",
            "rewrite",
            "WAL",
            "rows",
            "blocked",
            "sessions",
            "locks held",
        ]),
        rows,
        right: vec![2, 3, 6, 7, 8, 9],
    }
}

/// The migration's groups (files), when it has more than one or came from a
/// directory or a command: a heading and one row per group.
pub fn group_rows(r: &Report) -> Option<(String, Rows)> {
    let m = &r.migration;
    if m.groups.len() < 2 && m.selection.is_none() && !m.groups.iter().any(|g| g.captured) {
        return None;
    }
    let mut title = format!("Migration files of {}", m.source.as_deref().unwrap_or(&r.scenario.migration_file));
    if let Some(s) = &m.selection {
        title.push_str(&format!(
            ": {} found, {} recorded as applied{}, {} rehearsed",
            s.found,
            s.applied.len(),
            s.history_table.as_ref().map(|t| format!(" in {t}")).unwrap_or_default(),
            s.rehearsed
        ));
        if !s.applied_before_baseline.is_empty() {
            title.push_str(&format!(
                "; applied before the baseline, unmeasured ({}): {}",
                fmt_ms(s.setup_ms),
                s.applied_before_baseline.join(", ")
            ));
        }
    }
    let rows = m
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let steps = match g.steps {
                0 => "-".to_string(),
                1 => (g.first_step + 1).to_string(),
                n => format!("{}-{}", g.first_step + 1, g.first_step + n),
            };
            vec![
                (i + 1).to_string(),
                g.name.clone(),
                g.version.clone().unwrap_or_else(|| "-".into()),
                g.transaction.clone(),
                steps,
                fmt_ms(g.duration_ms),
                if g.committed { "applied".into() } else { "not applied".into() },
                if g.has_down { "yes".into() } else { "-".into() },
            ]
        })
        .collect();
    let header = strings(&["#", "file", "version", "transaction", "steps", "duration", "outcome", "down"]);
    Some((title, Rows { header, rows, right: vec![5] }))
}

/// For `migration.command`: how the command ended, what it wrote, and (when
/// it failed) the last lines it printed.
pub fn command_lines(r: &Report) -> Option<Vec<String>> {
    let c = r.migration.command.as_ref()?;
    let ended = match c.exit_code {
        Some(code) => format!("exited with code {code}"),
        None => "was stopped or could not start".into(),
    };
    let mut lines = vec![format!(
        "command `{}` {ended} after {}; {} on the clone; WAL {}; rewrote {} (rows, WAL and rewrites are measured \
         for the whole command)",
        c.command,
        fmt_ms(c.duration_ms),
        if c.sessions == 1 { "1 session".to_string() } else { format!("{} sessions", c.sessions) },
        c.wal_bytes.map(fmt_bytes).unwrap_or_else(|| "-".into()),
        if c.rewritten.is_empty() { "no table".to_string() } else { c.rewritten.join(", ") }
    )];
    if c.exit_code != Some(0) && !c.output_tail.is_empty() {
        lines.push("its last output:".into());
        lines.extend(c.output_tail.lines().map(|l| format!("  {l}")));
    }
    Some(lines)
}

/// The preflight data checks: a heading with their cost, one row per check,
/// and the findings as sentences.
pub fn preflight_rows(r: &Report) -> Option<(String, Rows, Vec<String>)> {
    let p = r.preflight.as_ref()?;
    let title = format!("Preflight data checks ({} in total, {})", fmt_ms(p.duration_ms), p.place);
    let rows = p
        .checks
        .iter()
        .map(|c| {
            vec![
                (c.step + 1).to_string(),
                c.kind_name().to_string(),
                if c.columns.is_empty() {
                    c.relation.clone()
                } else {
                    format!("{} ({})", c.relation, c.columns.join(", "))
                },
                short(&c.detail, 50),
                c.violations.map(fmt_count).unwrap_or_else(|| "-".into()),
                if c.examples.is_empty() { "-".into() } else { c.examples.join("; ") },
                fmt_ms(c.duration_ms),
            ]
        })
        .collect();
    let header = strings(&["step", "check", "relation", "checked", "violating rows", "examples", "time"]);
    let findings = p.checks.iter().map(|c| c.message.clone()).collect();
    Some((title, Rows { header, rows, right: vec![4, 6] }, findings))
}

/// `--fail-at`: a heading, one row per stop point (what was left, the
/// rollback from it), and what each left in words.
pub fn stop_point_rows(r: &Report) -> Option<(String, Rows, Vec<String>)> {
    if r.stop_points.is_empty() {
        return None;
    }
    let title = format!("Stop points (--fail-at): {} rehearsals, each on a fresh copy", r.stop_points.len());
    let steps = |v: &[usize]| match v {
        [] => "none".to_string(),
        _ => v.iter().map(|i| (i + 1).to_string()).collect::<Vec<_>>().join(","),
    };
    let rows = r
        .stop_points
        .iter()
        .map(|p| {
            let b = &p.rollback;
            vec![
                format!("{} {}", p.step + 1, p.at.as_str()),
                steps(&p.completed_steps),
                fmt_count(p.rows_kept),
                p.left.len().to_string(),
                match (b.steps.len(), b.ok) {
                    (0, _) => "nothing to undo".into(),
                    (n, true) => format!("{n} down step(s) ok"),
                    (n, false) => format!("{n} down step(s) FAILED"),
                },
                fmt_ms(b.duration_ms),
                fmt_ms(b.longest_blocked_ms),
                if b.clean { "yes".into() } else { format!("no ({} differ)", b.residue.len()) },
            ]
        })
        .collect();
    let header = strings(&[
        "stop point",
        "completed",
        "rows kept",
        "objects left",
        "rollback",
        "time",
        "longest blocked",
        "clean",
    ]);
    let mut lines = Vec::new();
    for p in &r.stop_points {
        let mut what = vec![p.fired.clone().unwrap_or_else(|| "the migration ended before reaching it".into())];
        what.extend(p.rolled_back_as_one.clone());
        what.push(if p.left.is_empty() { "left nothing".into() } else { format!("left {}", p.left.join("; ")) });
        if !p.rollback.residue.is_empty() {
            what.push(format!("after the rollback still differs: {}", p.rollback.residue.join("; ")));
        }
        what.extend(p.error.clone());
        lines.push(format!("{}: {}", p.point, what.join("; ")));
    }
    Some((title, Rows { header, rows, right: vec![2, 3, 5, 6] }, lines))
}

/// Errors the migration caused (see `Report::new_errors`): a title and,
/// per new error class, what happened and what it means.
pub fn new_error_findings(r: &Report) -> Option<(String, Vec<String>)> {
    if r.new_errors.is_empty() {
        return None;
    }
    let title = format!("Errors the migration caused ({} new error classes)", r.new_errors.len());
    let lines = r
        .new_errors
        .iter()
        .map(|e| format!("{}. {}", crate::report::builder::new_error_line(r, e), e.meaning))
        .collect();
    Some((title, lines))
}

/// Latency per class and phase (baseline, during, after); the classes with
/// no operation in any phase (a replay's rare statements) fold into one row.
pub fn latency_rows(r: &Report) -> Rows {
    let mut rows = Vec::new();
    let (idle, busy): (Vec<_>, Vec<_>) =
        r.latency.iter().partition(|(_, phases)| phases.values().all(|l| l.count == 0));
    for (class, phases) in busy {
        for phase in Phase::MEASURED {
            if let Some(l) = phases.get(&phase) {
                let q = |v: f64| if l.count == 0 { "-".to_string() } else { fmt_ms(v) };
                rows.push(vec![
                    class.clone(),
                    phase.to_string(),
                    l.count.to_string(),
                    q(l.p50_ms),
                    q(l.p95_ms),
                    q(l.p99_ms),
                    q(l.max_ms),
                ]);
            }
        }
    }
    if !idle.is_empty() {
        let names: Vec<&str> = idle.iter().map(|(c, _)| c.as_str()).collect();
        let mut row = vec![format!("{} classes without operations: {}", idle.len(), short(&names.join(", "), 80))];
        row.extend(["", "0", "-", "-", "-", "-"].map(String::from));
        rows.push(row);
    }
    Rows { header: strings(&["class", "phase", "ops", "p50", "p95", "p99", "max"]), rows, right: vec![2, 3, 4, 5, 6] }
}

/// The comparison's totals: one row per measure, one column per candidate.
pub fn side_by_side_rows(c: &Comparison) -> Rows {
    let cell = |f: &dyn Fn(&crate::report::compare::Totals) -> String| -> Vec<String> {
        c.candidates.iter().map(|x| f(&x.totals)).collect()
    };
    let mut measures: Vec<(&str, Vec<String>)> = vec![
        ("outcome", cell(&|t| t.outcome.clone())),
        ("time blocked (summed over sessions)", cell(&|t| fmt_ms(t.blocked_ms))),
        ("sessions blocked", cell(&|t| t.blocked_sessions.to_string())),
        ("most blocked at once", cell(&|t| t.max_concurrent.to_string())),
        ("longest blocked wait", cell(&|t| fmt_ms(t.longest_blocked_ms))),
        ("migration duration", cell(&|t| fmt_ms(t.migration_ms))),
        (
            "longest step",
            cell(&|t| match &t.longest_step {
                Some(name) => format!("{} ({})", fmt_ms(t.longest_step_ms), short(name, 40)),
                None => "-".into(),
            }),
        ),
        ("table rewrites", cell(&|t| t.rewrites.to_string())),
        ("WAL", cell(&|t| fmt_bytes(t.wal_bytes))),
        ("workload errors", cell(&|t| t.errors.to_string())),
    ];
    if c.candidates.iter().any(|x| x.totals.replicas.is_some()) {
        let standby = |f: &dyn Fn(&ReplicaTotals) -> String| cell(&|t| t.replicas.as_ref().map_or("-".into(), f));
        measures.extend([
            ("standby max lag", standby(&|s| fmt_bytes(s.max_lag_bytes))),
            ("standby max replay_lag", standby(&|s| s.max_replay_lag_ms.map_or("-".into(), fmt_ms))),
            ("standby queries cancelled", standby(&|s| s.cancels.to_string())),
            ("standby reads blocked by a replayed lock", standby(&|s| s.blocked_sessions.to_string())),
            ("longest standby wait", standby(&|s| fmt_ms(s.longest_blocked_ms))),
        ]);
    }
    if c.candidates.iter().any(|x| x.report.dataset.copy_method.is_some()) {
        let method = |x: &crate::report::compare::Candidate| x.report.dataset.copy_method.as_deref().map(copy_method);
        let cells = c.candidates.iter().map(|x| method(x).unwrap_or_else(|| "-".into())).collect();
        measures.push(("fresh copy", cells));
    }
    measures.push((
        "budget",
        cell(&|t| match t.status() {
            VerdictStatus::Pass => "pass".into(),
            VerdictStatus::Fail => "FAIL".into(),
            VerdictStatus::Inconclusive => "INCONCLUSIVE".into(),
        }),
    ));
    let rows =
        measures.into_iter().map(|(name, cells)| std::iter::once(name.to_string()).chain(cells).collect()).collect();
    comparison_rows(c, rows)
}

/// A report's `copy_method` for people: `reflink`, `template copy`.
pub fn copy_method(method: &str) -> String {
    method.replace('_', " ")
}

/// How the candidates ran, when there is something to say: at the same
/// time (`concurrent`), or one after the other although `--parallel` was asked.
pub fn concurrency_note(c: &Comparison) -> Option<String> {
    if c.concurrent {
        let labels: Vec<&str> = c.candidates.iter().map(|x| x.label.as_str()).collect();
        return Some(format!(
            "{} ran at the same time (--parallel), each on its own copy-on-write clone and server: their loads \
             shared this machine, so each one's latency includes the other's load",
            labels.join(" and ")
        ));
    }
    let why = c.sequential_why.as_ref()?;
    Some(format!("--parallel was asked, but the candidates ran one after the other: {why}"))
}

/// The comparison's heading: the recommendation and its candidate's own
/// verdict ("B is safer and passes its budget"), or, with no safer
/// candidate, the overall status. The status colours it.
pub fn comparison_headline(c: &Comparison) -> (String, VerdictStatus) {
    let Some(cand) = c.recommended.and_then(|i| c.candidates.get(i)) else {
        return (format!("no candidate is safer ({})", c.status().label()), c.status());
    };
    let status = cand.totals.status();
    let verdict = match status {
        VerdictStatus::Pass => "and passes its budget",
        VerdictStatus::Fail => "but fails its budget too",
        VerdictStatus::Inconclusive => "but its run is inconclusive",
    };
    (format!("{} is safer {verdict}", cand.label), status)
}

/// p99 / max latency during the migration, one row per class.
pub fn during_rows(c: &Comparison) -> Rows {
    let mut classes: Vec<&String> = c.candidates.iter().flat_map(|x| x.totals.during.keys()).collect();
    classes.sort();
    classes.dedup();
    let rows = classes
        .into_iter()
        .map(|class| {
            std::iter::once(class.clone())
                .chain(c.candidates.iter().map(|x| match x.totals.during.get(class) {
                    Some(l) if l.count > 0 => format!("{} / {}", fmt_ms(l.p99_ms), fmt_ms(l.max_ms)),
                    _ => "-".into(),
                }))
                .collect()
        })
        .collect();
    comparison_rows(c, rows)
}

fn comparison_rows(c: &Comparison, rows: Vec<Vec<String>>) -> Rows {
    let mut header = vec![String::new()];
    header.extend(c.candidates.iter().map(|x| format!("{}: {}", x.label, x.report.scenario.name)));
    let right = (1..header.len()).collect();
    Rows { header, rows, right }
}

pub use crate::fmt::short;

/// The longest blocked episodes (at most `limit`).
pub fn episode_rows(r: &Report, limit: usize) -> Rows {
    let rows = r
        .blocked
        .episodes
        .iter()
        .take(limit)
        .map(|e| {
            vec![
                e.class.clone(),
                e.pid.to_string(),
                fmt_ms(e.start_ms),
                fmt_ms(e.duration_ms),
                format!("{} on {}", e.mode, e.relation.clone().unwrap_or_else(|| e.locktype.clone())),
                e.blockers.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(","),
                e.step.map(|s| (s + 1).to_string()).unwrap_or_else(|| "-".into()),
                if e.by_migration { "yes" } else { "no" }.to_string(),
            ]
        })
        .collect();
    Rows {
        header: strings(&["class", "pid", "at", "waited", "wanted", "blockers", "step", "migration"]),
        rows,
        right: vec![1, 2, 3],
    }
}

/// "orders 1000000 rows, 100.9 MB; customers …".
pub fn tables_text(r: &Report) -> String {
    let tables: Vec<String> = r
        .dataset
        .tables
        .iter()
        .map(|t| format!("{} {} rows, {}", t.name, t.rows, fmt_bytes(t.bytes.max(0) as u64)))
        .collect();
    tables.join("; ")
}

/// The verdict in a few words: `PASS`, `FAIL (2 budget violations)`, `INCONCLUSIVE (…)`.
pub fn verdict_text(r: &Report) -> String {
    let v = &r.verdict;
    match v.status() {
        VerdictStatus::Pass => "PASS".to_string(),
        VerdictStatus::Fail => format!("FAIL ({} budget violations)", v.violations.len()),
        VerdictStatus::Inconclusive => {
            format!("INCONCLUSIVE: {}", v.inconclusive.iter().map(|i| i.reason.as_str()).collect::<Vec<_>>().join(", "))
        }
    }
}

/// The budget checked, e.g. "default budget: no session waits on the
/// migration longer than 1.00 s; the migration completes" (`None` for a
/// report written before the budget was recorded).
pub fn budget_text(r: &Report) -> Option<String> {
    let b = r.budget.as_ref()?;
    let mut parts: Vec<String> = b.limits.iter().map(limit_text).collect();
    parts.push("the migration completes".into());
    let source = match b.source {
        BudgetSource::Default => "default budget (the scenario sets none)",
        BudgetSource::Scenario => "scenario budget",
    };
    Some(format!("{source}: {}", parts.join("; ")))
}

/// One threshold for a reader.
fn limit_text(l: &BudgetLimit) -> String {
    let d = fmt_ms(l.limit);
    let n = l.limit;
    match l.budget.as_str() {
        "max_blocked" => format!("sessions blocked by the migration for at most {d} summed over the sessions"),
        "max_blocked_wait" => format!("no session waits on the migration longer than {d}"),
        "max_blocked_sessions" => format!("at most {n} sessions blocked by the migration at once"),
        "max_p99_during" => format!("p99 of every class during the migration at most {d}"),
        "max_step" => format!("no step longer than {d}"),
        "max_errors" => format!("at most {n} workload errors"),
        "max_replica_lag" => format!("no standby's replay_lag above {d}"),
        "max_replica_lag_bytes" => format!("no standby more than {} behind the primary", fmt_bytes(n as u64)),
        "max_standby_cancels" => format!("at most {n} standby queries cancelled by recovery conflicts"),
        "max_standby_blocked" => format!("no standby session waits on a replayed lock longer than {d}"),
        "max_sync_commit_added" => format!("the synchronous standby adds at most {d} to the median commit"),
        "max_subscriber_errors" => format!("at most {n} errors of the logical subscriber"),
        other => match other.strip_prefix("max_p99_during_class.") {
            Some(class) => format!("p99 of {class} during the migration at most {d}"),
            None => format!("{other} {n}"),
        },
    }
}

/// Whether a summary names the disposable server's details (its port): a
/// pull-request comment does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerDetail {
    Shown,
    Hidden,
}

/// "Blocked time is summed over …": what a first reader of a blocked total
/// needs to know (`None` when no session was blocked).
pub fn blocked_note(r: &Report) -> Option<String> {
    let b = &r.blocked;
    (b.by_migration_sessions > 0).then(|| {
        format!(
            "Blocked time is summed over the sessions: {} sessions waited {} together while the migration ran {}.",
            b.by_migration_sessions,
            fmt_ms(b.total_ms),
            fmt_ms(r.migration.duration_ms)
        )
    })
}

/// "budget: remedy", once per budget key and remedy (a p99 budget exceeded
/// by several classes of the same step has one remedy).
pub fn remedy_lines(violations: &[crate::report::model::Violation]) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for v in violations {
        let Some(remedy) = &v.remedy else { continue };
        let line = format!("{}: {remedy}", v.budget);
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    lines
}

/// The one-screen summary of a run (Markdown and HTML put it first).
pub fn summary_rows(r: &Report, server: ServerDetail) -> Rows {
    let b = &r.blocked;
    let w = &r.workload;
    let mut rows = vec![vec!["verdict".to_string(), verdict_text(r)]];
    if let Some(budget) = budget_text(r) {
        rows.push(vec!["budget".into(), budget]);
    }
    if let Some(reason) = &r.incomplete_reason {
        rows.push(vec!["INCOMPLETE".into(), format!("{reason}; the numbers cover what was measured until then")]);
    }
    rows.extend([vec![
        "migration".into(),
        format!(
            "{} steps, transaction {}, {} in {}",
            r.steps.len(),
            r.migration.transaction,
            if r.migration.committed { "completed" } else { "did not complete" },
            fmt_ms(r.migration.duration_ms)
        ),
    ]]);
    if let Some(i) = r.longest_step {
        rows.push(vec![
            "longest step".into(),
            format!("#{} {} ({})", i + 1, short(&r.steps[i].name, 60), fmt_ms(r.steps[i].duration_ms)),
        ]);
    }
    rows.push(vec![
        "blocked by the migration".into(),
        if b.by_migration_sessions == 0 {
            "no session".into()
        } else {
            format!(
                "{} sessions, {} summed over the sessions, longest wait {}, at most {} at once",
                b.by_migration_sessions,
                fmt_ms(b.total_ms),
                fmt_ms(b.longest_ms),
                b.max_concurrent
            )
        },
    ]);
    rows.push(vec![
        "workload".into(),
        format!(
            "target {:.1} ops/s, achieved {:.1} ops/s, {} errors{}",
            w.target_rate,
            w.achieved_rate,
            w.errors,
            if w.kept_schedule { "" } else { " (the client could not keep the schedule)" }
        ),
    ]);
    let backend = match (server, &r.clone.kind) {
        (ServerDetail::Hidden, Some(kind)) => kind,
        _ => &r.clone.backend,
    };
    rows.push(vec!["clone".into(), format!("PostgreSQL {}, {backend}", r.clone.server_version)]);
    rows.push(vec!["dataset".into(), tables_text(r)]);
    Rows { header: strings(&["", ""]), rows, right: vec![] }
}

impl Rows {
    /// Writes it as a GitHub-flavoured Markdown table.
    pub fn markdown(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        let line = |cells: &[String]| format!("| {} |", cells.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | "));
        writeln!(out, "{}", line(&self.header))?;
        let align: Vec<String> =
            (0..self.header.len()).map(|i| if self.right.contains(&i) { "---:" } else { "---" }.to_string()).collect();
        writeln!(out, "|{}|", align.join("|"))?;
        for r in &self.rows {
            writeln!(out, "{}", line(r))?;
        }
        Ok(())
    }
}
