//! Terminal renderer: steps (longest marked), the migration annotated,
//! latency per class and phase, blocked sessions, errors, the verdict and
//! each exceeded budget's remedy. Formats the report; computes nothing.

use std::io::{self, Write};

use super::{
    budget_text, command_lines, during_rows, episode_rows, fmt_bytes, fmt_ms, group_rows, latency_rows, preflight_rows,
    side_by_side_rows, step_rows, table, tables_text,
};
use crate::report::compare::Comparison;
use crate::report::model::{Phase, Report};

pub fn render(r: &Report, out: &mut impl Write) -> io::Result<()> {
    header(r, out)?;
    findings(r, out)?;
    steps(r, out)?;
    annotated(r, out)?;
    writeln!(out, "\nLatency per query class (from intended start)")?;
    latency_rows(r).text(out)?;
    timeline(r, out)?;
    blocked(r, out)?;
    if let Some(rep) = super::replica::replica_section(r) {
        writeln!(out, "\n{}", rep.title)?;
        rep.standbys.text(out)?;
        rep.steps.text(out)?;
        for l in rep.notes {
            writeln!(out, "  - {l}")?;
        }
    }
    with_notes(super::stop_point_rows(r), out)?;
    with_notes(super::extrapolation::extrapolation_tables(r), out)?;
    verdict(r, out)
}

/// A section of a table and lines under it: `--fail-at`'s stop points and
/// what each left; `--scales`' extrapolation and its warnings.
fn with_notes(section: Option<(String, super::Rows, Vec<String>)>, out: &mut impl Write) -> io::Result<()> {
    let Some((title, rows, lines)) = section else { return Ok(()) };
    writeln!(out, "\n{title}")?;
    rows.text(out)?;
    for l in lines {
        writeln!(out, "  - {l}")?;
    }
    Ok(())
}

/// How long the run's fresh copy took, and by which method when recorded.
fn copied(r: &Report) -> String {
    match &r.dataset.copy_method {
        Some(m) => format!("{} ({})", fmt_ms(r.dataset.copy_ms), super::copy_method(m)),
        None => fmt_ms(r.dataset.copy_ms),
    }
}

/// The scenario, clone, dataset, workload and phases.
fn header(r: &Report, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "lockimpact rehearsal: {}", r.scenario.name)?;
    if let Some(reason) = &r.incomplete_reason {
        writeln!(out, "  INCOMPLETE: {reason}; the numbers cover what was measured until then")?;
    }
    writeln!(out, "  clone:     PostgreSQL {}, {}", r.clone.server_version, r.clone.backend)?;
    let tables = tables_text(r);
    match (&r.dataset.dump, r.dataset.restore_ms) {
        (Some(dump), Some(restore_ms)) => writeln!(
            out,
            "  dataset:   {} (restored from {} ({} dump{}) in {}, {}, copied in {})",
            tables,
            dump.file,
            dump.format,
            dump.sample.map(|f| format!(", {f} of its rows sampled")).unwrap_or_default(),
            fmt_ms(restore_ms),
            fmt_bytes(r.dataset.bytes.unwrap_or(0).max(0) as u64),
            copied(r)
        )?,
        _ => match &r.dataset.synthetic {
            Some(syn) => writeln!(
                out,
                "  dataset:   {} (generated from the statistics in {} at scale {}{} in {}, copied in {})",
                tables,
                syn.stats_file,
                syn.scale,
                syn.seed.map(|s| format!(", seed {s}")).unwrap_or_default(),
                fmt_ms(r.dataset.seed_ms),
                copied(r)
            )?,
            None => writeln!(
                out,
                "  dataset:   {} (seeded in {}, copied in {})",
                tables,
                fmt_ms(r.dataset.seed_ms),
                copied(r)
            )?,
        },
    }
    let w = &r.workload;
    writeln!(
        out,
        "  workload:  target {:.1} ops/s, achieved {:.1} ops/s (issued {:.1}), {} connections, {} errors, schedule lag p99 {}",
        w.target_rate,
        w.achieved_rate,
        w.issued_rate,
        w.connections,
        w.errors,
        fmt_ms(w.schedule_lag_p99_ms)
    )?;
    if let Some(p) = &w.pool {
        let waits: Vec<String> = Phase::MEASURED
            .iter()
            .filter_map(|phase| p.wait.get(phase).map(|l| (phase, l)))
            .map(|(phase, l)| format!("{phase} p99 {} (max {})", fmt_ms(l.p99_ms), fmt_ms(l.max_ms)))
            .collect();
        writeln!(out, "  pool:      {} connections; wait for a connection: {}", p.size, waits.join(", "))?;
    }
    writeln!(
        out,
        "  phases:    warmup {}, baseline {}, migration {}, after {}",
        fmt_ms(r.phases.warmup_ms),
        fmt_ms(r.phases.baseline_ms),
        fmt_ms(r.phases.migration_ms),
        fmt_ms(r.phases.after_ms)
    )?;
    Ok(())
}

/// What was found before the steps: new error classes, preflight checks, migration files, a captured command.
fn findings(r: &Report, out: &mut impl Write) -> io::Result<()> {
    if let Some((title, lines)) = super::new_error_findings(r) {
        writeln!(out, "\n{title}")?;
        for l in lines {
            writeln!(out, "  {l}")?;
        }
    }
    if let Some((title, rows, findings)) = preflight_rows(r) {
        writeln!(out, "\n{title}")?;
        rows.text(out)?;
        for f in findings {
            writeln!(out, "  {f}")?;
        }
    }
    if let Some((title, rows)) = group_rows(r) {
        writeln!(out, "\n{title}")?;
        rows.text(out)?;
    }
    for line in command_lines(r).unwrap_or_default() {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

/// The steps, the migration's own lock waits and the steps' errors.
fn steps(r: &Report, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "\nSteps (transaction: {}, {})",
        r.migration.transaction,
        if r.migration.committed { "completed" } else { "did not complete" }
    )?;
    step_rows(r).text(out)?;
    if let Some(i) = r.longest_step {
        writeln!(out, "  * longest step: {} ({})", r.steps[i].name, fmt_ms(r.steps[i].duration_ms))?;
    }
    const WAITS_SHOWN: usize = 8;
    for wait in r.blocked.migration_waits.iter().take(WAITS_SHOWN) {
        let behind = if wait.blocker_classes.is_empty() {
            String::new()
        } else {
            format!(", behind {}", wait.blocker_classes.join(", "))
        };
        writeln!(
            out,
            "  step {} waited {} for {} on {}{behind}",
            wait.step.map(|s| (s + 1).to_string()).unwrap_or_else(|| "-".into()),
            fmt_ms(wait.duration_ms),
            wait.mode,
            wait.relation.clone().unwrap_or_else(|| wait.locktype.clone()),
        )?;
    }
    if r.blocked.migration_waits.len() > WAITS_SHOWN {
        writeln!(
            out,
            "  … and {} more lock waits (see the JSON report)",
            r.blocked.migration_waits.len() - WAITS_SHOWN
        )?;
    }
    writeln!(
        out,
        "  lock wait: time the migration itself waited for locks; blocked: time workload sessions waited on the \
         migration during the step (summed over the sessions)"
    )?;
    for (i, s) in r.steps.iter().enumerate() {
        if let Some(e) = &s.error {
            let at = s.failed_statement.map(|n| format!(" (statement {n})")).unwrap_or_default();
            writeln!(out, "  step {}{at}: {e}", i + 1)?;
        }
    }
    Ok(())
}

/// The migration's SQL with what each step did.
fn annotated(r: &Report, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "\nMigration, annotated (what each step did, beside its SQL)")?;
    for line in super::annotated::annotated(r).concat().lines() {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

/// Who the migration blocked, and the longest episodes.
fn blocked(r: &Report, out: &mut impl Write) -> io::Result<()> {
    let b = &r.blocked;
    writeln!(out, "\nBlocked sessions")?;
    writeln!(
        out,
        "  by the migration: {} sessions in {} episodes, at most {} at once, {} summed over the sessions, longest {}",
        b.by_migration_sessions,
        b.by_migration_episodes,
        b.max_concurrent,
        fmt_ms(b.total_ms),
        fmt_ms(b.longest_ms)
    )?;
    if b.other_episodes > 0 {
        writeln!(out, "  by something else: {} episodes", b.other_episodes)?;
    }
    let episodes = episode_rows(r, 5);
    if !episodes.rows.is_empty() {
        writeln!(out, "  longest episodes:")?;
        episodes.text(out)?;
    }
    Ok(())
}

/// Workload errors, warnings and the verdict.
fn verdict(r: &Report, out: &mut impl Write) -> io::Result<()> {
    let w = &r.workload;
    if !w.error_detail.is_empty() {
        writeln!(out, "\nWorkload errors")?;
        let rows: Vec<Vec<String>> = w
            .error_detail
            .iter()
            .map(|e| vec![e.class.clone(), e.sqlstate.clone(), e.count.to_string(), e.message.clone()])
            .collect();
        table(out, &["class", "sqlstate", "count", "first message"], &rows, &[2])?;
    }
    for warning in &r.warnings {
        writeln!(out, "\nwarning: {warning}")?;
    }
    writeln!(out, "\nVerdict: {}", r.verdict.status().label())?;
    for v in &r.verdict.violations {
        writeln!(out, "  - {}: {}", v.budget, v.message)?;
    }
    for i in &r.verdict.inconclusive {
        writeln!(out, "  - inconclusive ({}): {}", i.reason, i.message)?;
    }
    if let Some(budget) = budget_text(r) {
        writeln!(out, "  {budget}")?;
    }
    remedies(&r.verdict.violations, "", out)
}

/// One line per exceeded budget with its most likely remedy.
fn remedies(violations: &[crate::report::model::Violation], who: &str, out: &mut impl Write) -> io::Result<()> {
    for line in super::remedy_lines(violations) {
        writeln!(out, "  remedy for {who}{line}")?;
    }
    Ok(())
}

/// Most seconds the timeline shows; longer migrations show their first and last seconds.
const TIMELINE_ROWS: usize = 40;

/// Per-second rows around the migration: one second before it to two after.
fn timeline(r: &Report, out: &mut impl Write) -> io::Result<()> {
    let during: Vec<usize> = (0..r.timeline.len()).filter(|&i| r.timeline[i].phase == Phase::During).collect();
    let (Some(&first), Some(&last)) = (during.first(), during.last()) else { return Ok(()) };
    let from = first.saturating_sub(1);
    let to = (last + 2).min(r.timeline.len() - 1);
    let mut shown: Vec<usize> = (from..=to).collect();
    if shown.len() > TIMELINE_ROWS {
        let tail = shown.split_off(shown.len() - TIMELINE_ROWS / 2);
        shown.truncate(TIMELINE_ROWS / 2);
        shown.push(usize::MAX); // the elision marker
        shown.extend(tail);
    }
    writeln!(out, "\nTimeline around the migration (per second since warmup started)")?;
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|&i| match r.timeline.get(i) {
            None => vec!["…".into(); 7],
            Some(s) => {
                // By intended start when recorded; older reports have only completions.
                let (ops, p99) = s.started.as_ref().map_or((s.ops, s.p99_ms), |b| (b.ops, b.p99_ms));
                vec![
                    format!("{} s", s.t),
                    s.phase.to_string(),
                    ops.to_string(),
                    if ops == 0 { "-".into() } else { fmt_ms(p99) },
                    s.waiting.map_or_else(|| "-".into(), |w| w.to_string()),
                    s.errors.to_string(),
                    format!("{} ({} by the migration)", s.blocked, s.blocked_by_migration),
                ]
            }
        })
        .collect();
    writeln!(
        out,
        "  ops: operations intended to start in that second, p99 their latency; waiting: most operations started \
         and not finished at once"
    )?;
    let header = ["second", "phase", "ops", "p99", "waiting", "errors", "blocked sessions"];
    table(out, &header, &rows, &[0, 2, 3, 4, 5])
}

/// The comparison: the verdict line, the side-by-side table, latency during
/// the migration per class, then each candidate's steps.
pub fn render_comparison(c: &Comparison, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "lockimpact comparison")?;
    for cand in &c.candidates {
        writeln!(out, "  {}: {} ({})", cand.label, cand.report.scenario.name, cand.report.scenario.migration_file)?;
    }
    writeln!(out, "\n{}", c.summary)?;
    if let Some(note) = super::concurrency_note(c) {
        writeln!(out, "\n{note}")?;
    }
    writeln!(out, "\nSide by side")?;
    side_by_side_rows(c).text(out)?;
    writeln!(out, "\nLatency during the migration (p99 / max)")?;
    during_rows(c).text(out)?;
    for cand in &c.candidates {
        writeln!(out, "\nSteps of {} ({})", cand.label, cand.report.scenario.name)?;
        step_rows(&cand.report).text(out)?;
    }
    for cand in &c.candidates {
        writeln!(out, "\nMigration of {}, annotated", cand.label)?;
        for line in super::annotated::annotated(&cand.report).concat().lines() {
            writeln!(out, "  {line}")?;
        }
    }
    for d in &c.differences {
        writeln!(out, "\nnote: {d}")?;
    }
    let ranking: Vec<&str> = c.ranking.iter().map(|&i| c.candidates[i].label.as_str()).collect();
    writeln!(out, "\nRanking (safest first): {}", ranking.join(", "))?;
    writeln!(out, "Recommendation: {}", super::comparison_headline(c).0)?;
    writeln!(out, "Verdict: {}", c.status().label())?;
    for cand in &c.candidates {
        for v in &cand.report.verdict.violations {
            writeln!(out, "  - {}: {}: {}", cand.label, v.budget, v.message)?;
        }
        for i in &cand.report.verdict.inconclusive {
            writeln!(out, "  - {}: inconclusive ({}): {}", cand.label, i.reason, i.message)?;
        }
    }
    for cand in &c.candidates {
        remedies(&cand.report.verdict.violations, &format!("{} ", cand.label), out)?;
    }
    Ok(())
}
